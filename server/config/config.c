/* server/config/config.c - defaults, value parsing, command line, ETCD_*
 * environment, derived values and validation, with etcd 3.4.23's messages
 * (observed from the real binary; see tests/unit/config/test_config.c). */
#include "server/config/config_internal.h"
#include "server/config/log.h"
#include "common/mem.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FIELD(cfg, f, T) ((T *)((char *)(cfg) + (f)->off))

const char *config_strerror(int err)
{
    switch (err) {
    case CONFIG_OK:
        return "success";
    case CONFIG_ERR_NOMEM:
        return "out of memory";
    case CONFIG_ERR_USAGE:
        return "invalid command line";
    case CONFIG_ERR_INVALID:
        return "invalid configuration";
    case CONFIG_ERR_FILE:
        return "bad configuration file";
    case CONFIG_ERR_ENV_CONFLICT:
        return "environment variable shadowed by a flag";
    case CONFIG_ERR_UNIMPLEMENTED:
        return "flag not implemented by metcd";
    case CONFIG_ERR_LOG_LEVEL:
        return "unknown log level";
    case CONFIG_ERR_CLUSTER:
        return "bad initial cluster";
    case CONFIG_ERR_FATAL:
        return "invalid server configuration";
    default:
        return "unknown config error";
    }
}

int config_exit_status(int err)
{
    if (err == CONFIG_OK)
        return 0;
    if (err == CONFIG_ERR_USAGE || err == CONFIG_ERR_LOG_LEVEL)
        return 2;
    return 1;
}

void cfg_errf(struct config *cfg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cfg->errmsg, sizeof(cfg->errmsg), fmt, ap);
    va_end(ap);
}

const char *cfg_goquote(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    if (len < 3) {
        if (len)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (; *s && o + 5 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (c == '\t') {
            buf[o++] = '\\';
            buf[o++] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* ---- lists ---- */

void cfg_list_free(struct config_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        metcd_free(l->v[i]);
    metcd_free(l->v);
    l->v = NULL;
    l->n = 0;
}

int cfg_list_push(struct config_list *l, const char *s)
{
    char *d = metcd_strdup(s);
    if (!d)
        return CONFIG_ERR_NOMEM;
    char **nv = metcd_realloc(l->v, (l->n + 1) * sizeof(*nv));
    if (!nv) {
        metcd_free(d);
        return CONFIG_ERR_NOMEM;
    }
    nv[l->n++] = d;
    l->v = nv;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_sort_unique(struct config_list *l)
{
    if (l->n < 2)
        return;
    qsort(l->v, l->n, sizeof(*l->v), cmp_str);
    size_t o = 1;
    for (size_t i = 1; i < l->n; i++) {
        if (strcmp(l->v[i], l->v[o - 1]) == 0)
            metcd_free(l->v[i]);
        else
            l->v[o++] = l->v[i];
    }
    l->n = o;
}

/* Splits s on ',' into out (appending). */
static int split_push(struct config_list *out, const char *s, bool trim)
{
    const char *p = s;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        const char *b = p;
        if (trim) {
            while (n && isspace((unsigned char)*b)) {
                b++;
                n--;
            }
            while (n && isspace((unsigned char)b[n - 1]))
                n--;
        }
        char *item = metcd_malloc(n + 1);
        if (!item)
            return CONFIG_ERR_NOMEM;
        memcpy(item, b, n);
        item[n] = '\0';
        int rc = cfg_list_push(out, item);
        metcd_free(item);
        if (rc)
            return rc;
        if (!c)
            return 0;
        p = c + 1;
    }
}

/* ---- notes ---- */

int cfg_note(struct config *cfg, char lvl, const char *pkg, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t n = strlen(pkg) + strlen(msg) + 3;
    char *line = metcd_malloc(n);
    if (!line)
        return CONFIG_ERR_NOMEM;
    snprintf(line, n, "%c%s\t%s", lvl, pkg, msg);
    int rc = cfg_list_push(&cfg->notes, line);
    metcd_free(line);
    return rc;
}

void config_log_notes(const struct config *cfg, struct metcd_log *lg)
{
    for (size_t i = 0; i < cfg->notes.n; i++) {
        const char *line = cfg->notes.v[i];
        const char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        char pkg[64];
        size_t pn = (size_t)(tab - line - 1);
        if (pn >= sizeof(pkg))
            pn = sizeof(pkg) - 1;
        memcpy(pkg, line + 1, pn);
        pkg[pn] = '\0';
        enum log_level lvl;
        switch (line[0]) {
        case 'R': {
            /* etcd writes these straight to stderr, outside its logger. */
            char raw[1100];
            int n = snprintf(raw, sizeof(raw), "%s\n", tab + 1);
            if (n > 0)
                log_raw_stderr(raw, (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1);
            continue;
        }
        case 'D':
            lvl = LOG_LVL_DEBUG;
            break;
        case 'N':
            lvl = LOG_LVL_NOTICE;
            break;
        case 'W':
            lvl = LOG_LVL_WARN;
            break;
        case 'E':
            lvl = LOG_LVL_ERROR;
            break;
        case 'C':
            lvl = LOG_LVL_CRIT;
            break;
        default:
            lvl = LOG_LVL_INFO;
            break;
        }
        log_printf(lg, lvl, pkg, "%s", tab + 1);
    }
}

/* ---- scalar parsers (Go semantics) ---- */

/* Go's rule for '_' in base-0 integer literals: each one sits between two
 * digits, or between the base prefix (0x, 0o, 0b) and a digit. */
static bool underscores_ok(const char *s)
{
    char prev = '^'; /* '^' start, 'd' digit or prefix, '_' underscore, '!' other */
    bool hex = false;
    if (*s == '+' || *s == '-')
        s++;
    if (s[0] == '0' && s[1] && strchr("bBoOxX", s[1])) {
        hex = s[1] == 'x' || s[1] == 'X';
        s += 2;
        prev = 'd';
    }
    for (; *s; s++) {
        if (isdigit((unsigned char)*s) || (hex && isxdigit((unsigned char)*s))) {
            prev = 'd';
        } else if (*s == '_') {
            if (prev != 'd')
                return false;
            prev = '_';
        } else {
            if (prev == '_')
                return false;
            prev = '!';
        }
    }
    return prev != '_';
}

/* strconv.ParseUint(s, 0, 64): 0x / 0o / 0b / leading-0 octal prefixes,
 * underscores only with a prefix. Returns 0, -1 syntax, -2 range. */
static int go_parse_uint(const char *s, uint64_t *out)
{
    const char *p = s;
    unsigned base = 10;
    bool prefixed = false;
    if (*p == '\0')
        return -1;
    if (p[0] == '0' && p[1]) {
        char c = (char)tolower((unsigned char)p[1]);
        if (c == 'x') {
            base = 16;
            p += 2;
        } else if (c == 'o') {
            base = 8;
            p += 2;
        } else if (c == 'b') {
            base = 2;
            p += 2;
        } else {
            base = 8;
            p += 1;
        }
        prefixed = true;
    }
    uint64_t v = 0;
    bool any = prefixed && base == 8 && p == s + 1;
    bool range = false;
    for (; *p; p++) {
        if (*p == '_')
            continue; /* placement checked by underscores_ok */
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (*p >= 'a' && *p <= 'z')
            d = (unsigned)(*p - 'a' + 10);
        else if (*p >= 'A' && *p <= 'Z')
            d = (unsigned)(*p - 'A' + 10);
        else
            return -1;
        if (d >= base)
            return -1;
        any = true;
        if (v > (UINT64_MAX - d) / base)
            range = true;
        else
            v = v * base + d;
    }
    if (!any || (strchr(s, '_') && !underscores_ok(s)))
        return -1;
    if (range)
        return -2;
    *out = v;
    return 0;
}

static int go_parse_int(const char *s, int64_t *out)
{
    bool neg = false;
    if (*s == '+' || *s == '-') {
        neg = *s == '-';
        s++;
    }
    uint64_t u;
    int rc = go_parse_uint(s, &u);
    if (rc)
        return rc;
    if (!neg && u > (uint64_t)INT64_MAX)
        return -2;
    if (neg && u > (uint64_t)INT64_MAX + 1)
        return -2;
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    return 0;
}

static int go_parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"1", "t", "T", "true", "TRUE", "True", NULL};
    static const char *const f[] = {"0", "f", "F", "false", "FALSE", "False", NULL};
    for (int i = 0; t[i]; i++) {
        if (strcmp(s, t[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, f[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

int config_parse_duration(const char *s, int64_t *ns)
{
    static const struct {
        const char *u;
        double mul;
    } units[] = {
        {"ns", 1.0}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
        {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9},
    };
    bool neg = false;
    if (*s == '+' || *s == '-') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (*s == '\0')
        return -1;
    long double total = 0;
    while (*s) {
        const char *b = s;
        long double v = 0;
        bool digits = false;
        while (*s >= '0' && *s <= '9') {
            v = v * 10 + (*s++ - '0');
            digits = true;
        }
        if (*s == '.') {
            s++;
            long double scale = 0.1L;
            while (*s >= '0' && *s <= '9') {
                v += (*s++ - '0') * scale;
                scale /= 10;
                digits = true;
            }
        }
        if (!digits || s == b)
            return -1;
        const char *ue = s;
        while (*ue && !(*ue >= '0' && *ue <= '9') && *ue != '.')
            ue++;
        size_t ul = (size_t)(ue - s);
        if (ul == 0)
            return -1; /* missing unit */
        bool found = false;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (strlen(units[i].u) == ul && memcmp(units[i].u, s, ul) == 0) {
                total += v * (long double)units[i].mul;
                found = true;
                break;
            }
        }
        if (!found)
            return -1;
        s = ue;
    }
    if (total > (long double)INT64_MAX)
        return -1;
    *ns = neg ? -(int64_t)total : (int64_t)total;
    return 0;
}

/* ---- URLs (types.NewURLs) ---- */

/* Go net.SplitHostPort. Returns 0 and host in host_out, or -1 with message. */
static int split_host_port(const char *hostport, char *host_out, size_t hlen, char *err,
                           size_t elen)
{
    const char *host_b, *host_e, *after;
    if (hostport[0] == '[') {
        const char *rb = strchr(hostport, ']');
        if (!rb) {
            snprintf(err, elen, "address %s: missing ']' in address", hostport);
            return -1;
        }
        if (rb[1] == '\0') {
            snprintf(err, elen, "address %s: missing port in address", hostport);
            return -1;
        }
        if (rb[1] != ':') {
            if (strchr(rb + 1, ':'))
                snprintf(err, elen, "address %s: too many colons in address", hostport);
            else
                snprintf(err, elen, "address %s: missing port in address", hostport);
            return -1;
        }
        host_b = hostport + 1;
        host_e = rb;
        after = rb + 2;
        if (memchr(host_b, '[', (size_t)(host_e - host_b))) {
            snprintf(err, elen, "address %s: unexpected '[' in address", hostport);
            return -1;
        }
    } else {
        const char *c = strrchr(hostport, ':');
        if (!c) {
            snprintf(err, elen, "address %s: missing port in address", hostport);
            return -1;
        }
        host_b = hostport;
        host_e = c;
        after = c + 1;
        if (memchr(host_b, ':', (size_t)(host_e - host_b))) {
            snprintf(err, elen, "address %s: too many colons in address", hostport);
            return -1;
        }
        if (memchr(host_b, '[', (size_t)(host_e - host_b)) ||
            memchr(host_b, ']', (size_t)(host_e - host_b))) {
            snprintf(err, elen, "address %s: unexpected '[' in address", hostport);
            return -1;
        }
    }
    if (strchr(after, '[') || strchr(after, ']')) {
        snprintf(err, elen, "address %s: unexpected ']' in address", hostport);
        return -1;
    }
    size_t hl = (size_t)(host_e - host_b);
    if (hl >= hlen)
        hl = hlen - 1;
    memcpy(host_out, host_b, hl);
    host_out[hl] = '\0';
    return 0;
}

/* Splits "scheme://host/path" (loosely like net/url): scheme lowercased. */
struct url_parts {
    char scheme[16];
    char host[256];
    const char *path; /* into the input */
};

static int url_split(const char *in, struct url_parts *u)
{
    const char *c = strstr(in, "://");
    u->scheme[0] = u->host[0] = '\0';
    u->path = "";
    if (!c) {
        /* No authority: Go parses "host:port" as scheme "host". */
        const char *colon = strchr(in, ':');
        size_t sl = colon ? (size_t)(colon - in) : 0;
        if (sl >= sizeof(u->scheme))
            sl = sizeof(u->scheme) - 1;
        for (size_t i = 0; i < sl; i++)
            u->scheme[i] = (char)tolower((unsigned char)in[i]);
        u->scheme[sl] = '\0';
        u->path = colon ? colon + 1 : in;
        return -1;
    }
    size_t sl = (size_t)(c - in);
    if (sl >= sizeof(u->scheme))
        sl = sizeof(u->scheme) - 1;
    for (size_t i = 0; i < sl; i++)
        u->scheme[i] = (char)tolower((unsigned char)in[i]);
    u->scheme[sl] = '\0';
    const char *h = c + 3;
    size_t hl = strcspn(h, "/?#");
    if (hl >= sizeof(u->host))
        hl = sizeof(u->host) - 1;
    memcpy(u->host, h, hl);
    u->host[hl] = '\0';
    u->path = h + strcspn(h, "/?#");
    return 0;
}

/* The errors Go's url.Parse reports before etcd looks at the scheme. */
static int go_url_parse_error(const char *in, char *errmsg, size_t errlen)
{
    for (const char *c = in; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            snprintf(errmsg, errlen, "parse \"%s\": net/url: invalid control character in URL", in);
            return -1;
        }
    /* scheme: a letter, then letters, digits, '+', '-', '.', up to ':' */
    size_t i = 0;
    bool has_scheme = false;
    for (; in[i]; i++) {
        char c = in[i];
        if (isalpha((unsigned char)c))
            continue;
        if (isdigit((unsigned char)c) || c == '+' || c == '-' || c == '.') {
            if (i == 0)
                break;
            continue;
        }
        if (c == ':') {
            if (i == 0) {
                snprintf(errmsg, errlen, "parse \"%s\": missing protocol scheme", in);
                return -1;
            }
            has_scheme = true;
        }
        break;
    }
    if (!has_scheme) {
        size_t seg = strcspn(in, "/?#");
        if (memchr(in, ':', seg)) {
            snprintf(errmsg, errlen, "parse \"%s\": first path segment in URL cannot contain colon",
                     in);
            return -1;
        }
        return 0;
    }
    const char *auth = strstr(in, "://");
    if (!auth || auth != in + i)
        return 0;
    auth += 3;
    size_t al = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', al);
    if (at) {
        al -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    if (al && auth[0] == '[' && !memchr(auth, ']', al)) {
        snprintf(errmsg, errlen, "parse \"%s\": missing ']' in host", in);
        return -1;
    }
    for (size_t k = 0; k < al; k++) {
        char c = auth[k];
        if (c == ' ' || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' ||
            c == '{' || c == '|' || c == '}') {
            snprintf(errmsg, errlen, "parse \"%s\": invalid character \"%c\" in host name", in, c);
            return -1;
        }
    }
    return 0;
}

int config_url_check(const char *in, char *errmsg, size_t errlen)
{
    struct url_parts u;
    if (go_url_parse_error(in, errmsg, errlen))
        return -1;
    url_split(in, &u);
    if (strcmp(u.scheme, "http") && strcmp(u.scheme, "https") && strcmp(u.scheme, "unix") &&
        strcmp(u.scheme, "unixs")) {
        snprintf(errmsg, errlen, "URL scheme must be http, https, unix, or unixs: %s", in);
        return -1;
    }
    char host[256], e[300];
    if (split_host_port(u.host, host, sizeof(host), e, sizeof(e))) {
        snprintf(errmsg, errlen, "URL address does not have the form \"host:port\": %s", in);
        return -1;
    }
    if (u.path[0] == '/') {
        snprintf(errmsg, errlen, "URL must not contain a path: %s", in);
        return -1;
    }
    return 0;
}

/* Normalised form of a valid URL (scheme lowercased, spaces trimmed); caller
 * frees. */
static char *url_normalize(const char *in)
{
    struct url_parts u;
    url_split(in, &u);
    const char *rest = strstr(in, "://");
    size_t n = strlen(u.scheme) + strlen(rest) + 1;
    char *s = metcd_malloc(n);
    if (s)
        snprintf(s, n, "%s%s", u.scheme, rest);
    return s;
}

/* Parses a comma-separated URL list into out (sorted, unique). On a bad URL,
 * errmsg gets etcd's text and -1 is returned; CONFIG_ERR_NOMEM on OOM. */
static int parse_urls(const char *s, struct config_list *out, char *errmsg, size_t errlen)
{
    struct config_list raw = {0}, res = {0};
    int rc = split_push(&raw, s, true);
    if (rc)
        goto done;
    for (size_t i = 0; i < raw.n; i++) {
        if (config_url_check(raw.v[i], errmsg, errlen)) {
            rc = -1;
            goto done;
        }
        char *nu = url_normalize(raw.v[i]);
        if (!nu) {
            rc = CONFIG_ERR_NOMEM;
            goto done;
        }
        rc = cfg_list_push(&res, nu);
        metcd_free(nu);
        if (rc)
            goto done;
    }
    /* Sorted like etcd's types.URLs; duplicates stay, as UniqueURLs keeps
     * them in the list it hands to the server. */
    qsort(res.v, res.n, sizeof(*res.v), cmp_str);
    cfg_list_free(out);
    *out = res;
    res = (struct config_list){0};
done:
    cfg_list_free(&raw);
    cfg_list_free(&res);
    return rc;
}

/* ---- setting one value ---- */

/* Applies text to flag f. On a malformed value returns -1 with the reason
 * (Go's wording) in why; CONFIG_ERR_NOMEM on OOM. */
static int set_value(struct config *cfg, const struct cfg_flag *f, const char *v, char *why,
                     size_t wlen)
{
    switch (f->type) {
    case CT_STR:
    case CT_SELECT: {
        if (f->type == CT_SELECT) {
            bool ok = false;
            for (int i = 0; f->choices[i]; i++)
                ok = ok || strcmp(v, f->choices[i]) == 0;
            if (!ok) {
                snprintf(why, wlen, "invalid value");
                return -1;
            }
        }
        char *d = metcd_strdup(v);
        if (!d)
            return CONFIG_ERR_NOMEM;
        char **slot = FIELD(cfg, f, char *);
        metcd_free(*slot);
        *slot = d;
        return 0;
    }
    case CT_BOOL: {
        bool b;
        if (go_parse_bool(v, &b)) {
            snprintf(why, wlen, "parse error");
            return -1;
        }
        *FIELD(cfg, f, bool) = b;
        return 0;
    }
    case CT_IGNORED:
        return cfg_note(cfg, 'W', "pkg/flags", "flag \"-%s\" is no longer supported - ignoring.",
                        f->name);
    case CT_UINT: {
        uint64_t u;
        int rc = go_parse_uint(v, &u);
        if (rc) {
            snprintf(why, wlen, rc == -2 ? "value out of range" : "parse error");
            return -1;
        }
        *FIELD(cfg, f, uint64_t) = u;
        return 0;
    }
    case CT_INT: {
        int64_t i;
        int rc = go_parse_int(v, &i);
        if (rc) {
            snprintf(why, wlen, rc == -2 ? "value out of range" : "parse error");
            return -1;
        }
        *FIELD(cfg, f, int64_t) = i;
        return 0;
    }
    case CT_UINT32: {
        const char *p = v;
        uint64_t u = 0;
        bool range = false;
        if (*p == '\0') {
            snprintf(why, wlen, "strconv.ParseUint: parsing \"%s\": invalid syntax", v);
            return -1;
        }
        for (; *p; p++) {
            if (*p < '0' || *p > '9') {
                snprintf(why, wlen, "strconv.ParseUint: parsing \"%s\": invalid syntax", v);
                return -1;
            }
            u = u * 10 + (uint64_t)(*p - '0');
            if (u > UINT32_MAX)
                range = true, u = UINT32_MAX;
        }
        if (range) {
            snprintf(why, wlen, "strconv.ParseUint: parsing \"%s\": value out of range", v);
            return -1;
        }
        *FIELD(cfg, f, uint32_t) = (uint32_t)u;
        return 0;
    }
    case CT_DUR: {
        int64_t ns;
        if (config_parse_duration(v, &ns)) {
            snprintf(why, wlen, "parse error");
            return -1;
        }
        *FIELD(cfg, f, int64_t) = ns;
        return 0;
    }
    case CT_URLS: {
        struct config_list *l = FIELD(cfg, f, struct config_list);
        if (f->allow && strcmp(v, f->allow) == 0) {
            cfg_list_free(l);
            return v[0] ? cfg_list_push(l, v) : 0;
        }
        if (v[0] == '\0') {
            snprintf(why, wlen, "URL scheme must be http, https, unix, or unixs: ");
            return -1;
        }
        int rc = parse_urls(v, l, why, wlen);
        return rc;
    }
    case CT_STRS:
    case CT_USTRS: {
        struct config_list *l = FIELD(cfg, f, struct config_list);
        struct config_list nl = {0};
        int rc = v[0] ? split_push(&nl, v, false) : 0;
        if (rc) {
            cfg_list_free(&nl);
            return rc;
        }
        if (f->type == CT_USTRS)
            list_sort_unique(&nl);
        cfg_list_free(l);
        *l = nl;
        return 0;
    }
    }
    return 0;
}

int config_set(struct config *cfg, const char *name, const char *value, enum config_source src)
{
    long i = cfg_flag_find(name);
    if (i < 0) {
        cfg_errf(cfg, "flag provided but not defined: -%s", name);
        return CONFIG_ERR_USAGE;
    }
    const struct cfg_flag *f = &cfg_flags[i];
    char why[600];
    int rc = set_value(cfg, f, value, why, sizeof(why));
    if (rc == -1) {
        char q[600];
        if (f->type == CT_BOOL)
            cfg_errf(cfg, "invalid boolean value %s for -%s: %s", cfg_goquote(value, q, sizeof(q)),
                     name, why);
        else
            cfg_errf(cfg, "invalid value %s for flag -%s: %s", cfg_goquote(value, q, sizeof(q)),
                     name, why);
        return CONFIG_ERR_USAGE;
    }
    if (rc)
        return rc;
    cfg->source[i] = (unsigned char)src;
    return 0;
}

bool config_is_set(const struct config *cfg, const char *name)
{
    long i = cfg_flag_find(name);
    return i >= 0 && cfg->source && cfg->source[i] != CONFIG_SRC_DEFAULT;
}

/* ---- init / free ---- */

void config_free(struct config *cfg)
{
    if (!cfg->source && !cfg->name)
        return;
    for (size_t i = 0; i < cfg_nflags; i++) {
        const struct cfg_flag *f = &cfg_flags[i];
        switch (f->type) {
        case CT_STR:
        case CT_SELECT: {
            char **slot = FIELD(cfg, f, char *);
            metcd_free(*slot);
            *slot = NULL;
            break;
        }
        case CT_URLS:
        case CT_STRS:
        case CT_USTRS:
            cfg_list_free(FIELD(cfg, f, struct config_list));
            break;
        default:
            break;
        }
    }
    cfg_list_free(&cfg->notes);
    metcd_free(cfg->source);
    cfg->source = NULL;
}

int config_init(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->source = metcd_calloc(cfg_nflags, 1);
    if (!cfg->source)
        return CONFIG_ERR_NOMEM;
    for (size_t i = 0; i < cfg_nflags; i++) {
        const struct cfg_flag *f = &cfg_flags[i];
        if (f->type == CT_IGNORED)
            continue;
        char why[256];
        int rc = set_value(cfg, f, f->def, why, sizeof(why));
        if (rc) {
            config_free(cfg);
            return CONFIG_ERR_NOMEM; /* defaults are valid: only OOM */
        }
    }
    return 0;
}

/* ---- command line (Go's flag package rules) ---- */

int config_parse_args(struct config *cfg, int argc, char *const argv[])
{
    int i = 1;
    cfg->command = CONFIG_CMD_SERVE;
    if (argc > 1 && strcmp(argv[1], "gateway") == 0) {
        cfg->command = CONFIG_CMD_GATEWAY;
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "grpc-proxy") == 0) {
        cfg->command = CONFIG_CMD_GRPC_PROXY;
        return 0;
    }
    while (i < argc) {
        const char *s = argv[i];
        if (strlen(s) < 2 || s[0] != '-')
            break;
        size_t minuses = 1;
        if (s[1] == '-') {
            minuses = 2;
            if (s[2] == '\0') {
                i++;
                break;
            }
        }
        const char *name = s + minuses;
        if (name[0] == '-' || name[0] == '=') {
            cfg_errf(cfg, "bad flag syntax: %s", s);
            return CONFIG_ERR_USAGE;
        }
        i++;
        const char *eq = strchr(name, '=');
        char nbuf[256];
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        if (nl >= sizeof(nbuf))
            nl = sizeof(nbuf) - 1;
        memcpy(nbuf, name, nl);
        nbuf[nl] = '\0';
        long fi = cfg_flag_find(nbuf);
        if (fi < 0) {
            if (strcmp(nbuf, "help") == 0 || strcmp(nbuf, "h") == 0) {
                cfg->command = CONFIG_CMD_HELP;
                return 0;
            }
            cfg_errf(cfg, "flag provided but not defined: -%s", nbuf);
            return CONFIG_ERR_USAGE;
        }
        const struct cfg_flag *f = &cfg_flags[fi];
        const char *value;
        if (f->type == CT_BOOL || f->type == CT_IGNORED) {
            value = eq ? eq + 1 : "true";
        } else if (eq) {
            value = eq + 1;
        } else if (i < argc) {
            value = argv[i++];
        } else {
            cfg_errf(cfg, "flag needs an argument: -%s", nbuf);
            return CONFIG_ERR_USAGE;
        }
        int rc = config_set(cfg, nbuf, value, CONFIG_SRC_FLAG);
        if (rc)
            return rc;
    }
    if (i < argc) {
        cfg_errf(cfg, "'%s' is not a valid flag", argv[i]);
        return CONFIG_ERR_INVALID;
    }
    if (cfg->version)
        cfg->command = CONFIG_CMD_VERSION;
    return 0;
}

/* ---- environment ---- */

static void flag_to_env(const char *name, char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len, "ETCD_");
    for (; *name && o + 1 < len; name++)
        buf[o++] = *name == '-' ? '_' : (char)toupper((unsigned char)*name);
    buf[o] = '\0';
}

static const char *env_get(char *const envp[], const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], key, kl) == 0 && envp[i][kl] == '=')
            return envp[i] + kl + 1;
    return NULL;
}

int config_apply_env(struct config *cfg, char *const envp[])
{
    unsigned char *used = metcd_calloc(cfg_nflags, 1);
    if (!used)
        return CONFIG_ERR_NOMEM;
    int rc = 0, first_err = 0;
    char key[128];
    for (size_t i = 0; i < cfg_nflags; i++) {
        const struct cfg_flag *f = &cfg_flags[i];
        if (cfg->source[i] == CONFIG_SRC_FLAG)
            continue;
        flag_to_env(f->name, key, sizeof(key));
        const char *v = env_get(envp, key);
        if (!v || !*v)
            continue;
        used[i] = 1;
        char why[600], q[600];
        rc = set_value(cfg, f, v, why, sizeof(why));
        if (rc == -1) {
            if (!first_err) {
                cfg_errf(cfg, "invalid value %s for %s: %s", cfg_goquote(v, q, sizeof(q)), key,
                         why);
                first_err = CONFIG_ERR_INVALID;
            }
            continue;
        }
        if (rc)
            goto out;
        cfg->source[i] = CONFIG_SRC_ENV;
        if ((rc = cfg_note(cfg, 'I', "pkg/flags", "recognized and used environment variable %s=%s",
                           key, v)))
            goto out;
    }
    /* Unused ETCD_* variables: shadowed by a flag (fatal) or unknown (warning),
     * in environment order as etcd reports them. */
    for (size_t e = 0; envp && envp[e]; e++) {
        const char *kv = envp[e];
        const char *eq = strchr(kv, '=');
        size_t kl = eq ? (size_t)(eq - kv) : strlen(kv);
        if (kl < 5 || strncmp(kv, "ETCD_", 5) != 0)
            continue;
        bool known = false;
        for (size_t i = 0; i < cfg_nflags; i++) {
            flag_to_env(cfg_flags[i].name, key, sizeof(key));
            if (strlen(key) != kl || strncmp(key, kv, kl) != 0)
                continue;
            known = true;
            if (used[i])
                break;
            if (cfg->source[i] == CONFIG_SRC_FLAG) {
                cfg_errf(cfg,
                         "conflicting environment variable \"%.*s\" is shadowed by corresponding "
                         "command-line flag (either unset environment variable or disable flag)",
                         (int)kl, kv);
                rc = CONFIG_ERR_ENV_CONFLICT;
                goto out;
            }
            break;
        }
        if (!known &&
            (rc = cfg_note(cfg, 'W', "pkg/flags", "unrecognized environment variable %s", kv)))
            goto out;
    }
    rc = first_err;
out:
    metcd_free(used);
    return rc;
}

/* ---- config file ---- */

/* Go spells errno texts in lower case ("no such file or directory"). */
static const char *go_errno_text(int e)
{
    static __thread char buf[128];
    snprintf(buf, sizeof(buf), "%s", strerror(e));
    buf[0] = (char)tolower((unsigned char)buf[0]);
    return buf;
}

int config_load_file(struct config *cfg, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cfg_errf(cfg, "open %s: %s", path, go_errno_text(errno));
        return CONFIG_ERR_FILE;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        cfg_errf(cfg, "read %s: %s", path, go_errno_text(errno));
        close(fd);
        return CONFIG_ERR_FILE;
    }
    if (S_ISDIR(st.st_mode)) {
        cfg_errf(cfg, "read %s: %s", path, go_errno_text(EISDIR));
        close(fd);
        return CONFIG_ERR_FILE;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (1 << 22)) {
        cfg_errf(cfg, "read %s: not a regular file of at most 4 MiB", path);
        close(fd);
        return CONFIG_ERR_FILE;
    }
    size_t len = (size_t)st.st_size;
    char *buf = metcd_malloc(len + 1);
    if (!buf) {
        close(fd);
        return CONFIG_ERR_NOMEM;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    int rc = cfg_load_yaml(cfg, buf, got);
    metcd_free(buf);
    if (rc)
        return rc;
    return cfg_note(cfg, 'I', "etcdmain",
                    "Loading server configuration from \"%s\". Other configuration command line "
                    "flags and environment variables will be ignored if provided.",
                    path);
}

/* ---- derived values ---- */

static bool list_eq1(const struct config_list *l, const char *s)
{
    return l->n == 1 && strcmp(l->v[0], s) == 0;
}

int config_finalize(struct config *cfg)
{
    bool from_file = cfg->config_file && cfg->config_file[0];
    /* listen-client-urls given without advertise-client-urls: no default AC
     * (etcd then refuses unless it may become a v2 proxy). */
    if (!from_file && config_is_set(cfg, "listen-client-urls") &&
        !config_is_set(cfg, "advertise-client-urls")) {
        bool may_proxy = strcmp(cfg->proxy, "off") != 0 ||
                         (cfg->discovery[0] && strcmp(cfg->discovery_fallback, "proxy") == 0);
        if (!may_proxy)
            cfg_list_free(&cfg->advertise_client_urls);
    }
    /* Discovery set: the default initial cluster goes away. */
    if ((cfg->discovery[0] || cfg->discovery_srv[0] ||
         (!from_file && cfg->discovery_srv_name[0])) &&
        (from_file ? strcmp(cfg->initial_cluster, "default=http://localhost:2380") == 0
                   : !config_is_set(cfg, "initial-cluster"))) {
        char *e = metcd_strdup("");
        if (!e)
            return CONFIG_ERR_NOMEM;
        metcd_free(cfg->initial_cluster);
        cfg->initial_cluster = e;
    }
    /* `--name abc` alone: the initial cluster follows the name. */
    if (strcmp(cfg->name, "default") != 0 &&
        strcmp(cfg->initial_cluster, "default=http://localhost:2380") == 0) {
        size_t n = 1;
        const char *nm = cfg->name[0] ? cfg->name : "default";
        for (size_t i = 0; i < cfg->initial_advertise_peer_urls.n; i++)
            n += strlen(nm) + strlen(cfg->initial_advertise_peer_urls.v[i]) + 2;
        char *ic = metcd_malloc(n);
        if (!ic)
            return CONFIG_ERR_NOMEM;
        ic[0] = '\0';
        for (size_t i = 0; i < cfg->initial_advertise_peer_urls.n; i++) {
            if (i)
                strcat(ic, ",");
            strcat(ic, nm);
            strcat(ic, "=");
            strcat(ic, cfg->initial_advertise_peer_urls.v[i]);
        }
        metcd_free(cfg->initial_cluster);
        cfg->initial_cluster = ic;
    }
    if (cfg->data_dir[0] == '\0') {
        size_t n = strlen(cfg->name) + 6;
        char *d = metcd_malloc(n);
        if (!d)
            return CONFIG_ERR_NOMEM;
        snprintf(d, n, "%s.etcd", cfg->name);
        metcd_free(cfg->data_dir);
        cfg->data_dir = d;
        int rc =
            cfg_note(cfg, 'W', "etcdmain", "no data-dir provided, using default data-dir ./%s", d);
        if (rc)
            return rc;
    }
    if (cfg->snapshot_count == 0) {
        cfg->snapshot_count = 100000;
        int rc = cfg_note(cfg, 'I', "etcdserver", "set snapshot count to default %d", 100000);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- validation (embed.Config.Validate order) ---- */

static const char *const go_ciphers[][2] = {
    {"TLS_RSA_WITH_RC4_128_SHA", "RC4-SHA"},
    {"TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256"},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "ECDHE-ECDSA-RC4-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
    {"TLS_ECDHE_RSA_WITH_RC4_128_SHA", "ECDHE-RSA-RC4-SHA"},
    {"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE-RSA-DES-CBC3-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"},
    {"TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"},
    {"TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256"},
};

const char *config_cipher_openssl_name(const char *go_name)
{
    for (size_t i = 0; i < sizeof(go_ciphers) / sizeof(go_ciphers[0]); i++)
        if (strcmp(go_ciphers[i][0], go_name) == 0)
            return go_ciphers[i][1];
    return NULL;
}

static int check_bind_urls(struct config *cfg, const struct config_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct url_parts u;
        url_split(l->v[i], &u);
        if (strcmp(u.scheme, "unix") == 0 || strcmp(u.scheme, "unixs") == 0)
            continue;
        char host[256], e[400];
        if (split_host_port(u.host, host, sizeof(host), e, sizeof(e))) {
            cfg_errf(cfg, "%s", e);
            return CONFIG_ERR_INVALID;
        }
        if (strcmp(host, "localhost") == 0)
            continue;
        unsigned char a[16];
        if (inet_pton(AF_INET, host, a) != 1 && inet_pton(AF_INET6, host, a) != 1) {
            cfg_errf(cfg, "expected IP in URL for binding (%s)", l->v[i]);
            return CONFIG_ERR_INVALID;
        }
    }
    return 0;
}

static int check_host_urls(struct config *cfg, const struct config_list *l, const char *flag)
{
    for (size_t i = 0; i < l->n; i++) {
        struct url_parts u;
        url_split(l->v[i], &u);
        char host[256], e[400];
        bool bad = false;
        if (split_host_port(u.host, host, sizeof(host), e, sizeof(e)))
            bad = true;
        else if (host[0] == '\0') {
            snprintf(e, sizeof(e), "unexpected empty host (%s)", l->v[i]);
            bad = true;
        }
        if (bad) {
            char joined[700] = "", q[800];
            for (size_t j = 0; j < l->n; j++) {
                if (j)
                    strncat(joined, ",", sizeof(joined) - strlen(joined) - 1);
                strncat(joined, l->v[j], sizeof(joined) - strlen(joined) - 1);
            }
            cfg_errf(cfg, "--%s %s must be \"host:port\" (%s)", flag,
                     cfg_goquote(joined, q, sizeof(q)), e);
            return CONFIG_ERR_INVALID;
        }
    }
    return 0;
}

/* Go's %q of a []string: ["a" "b"]. */
static const char *goquote_list(const struct config_list *l, char *buf, size_t len)
{
    size_t o = 0;
    buf[o++] = '[';
    for (size_t i = 0; i < l->n && o + 4 < len; i++) {
        char q[600];
        if (i)
            buf[o++] = ' ';
        o += (size_t)snprintf(buf + o, len - o, "%s", cfg_goquote(l->v[i], q, sizeof(q)));
        if (o >= len - 2)
            o = len - 3;
    }
    buf[o++] = ']';
    buf[o] = '\0';
    return buf;
}

static int validate_logging(struct config *cfg)
{
    static const char *const levels[] = {"debug",  "info",  "warn",  "error",
                                         "dpanic", "panic", "fatal", NULL};
    char q[600], q2[600];
    bool lvl_ok = false;
    for (int i = 0; levels[i]; i++)
        lvl_ok = lvl_ok || strcmp(cfg->log_level, levels[i]) == 0;
    /* etcd 3.4's handling of the deprecated --log-output (embed/config_logging.go):
     * it only replaces --log-outputs when it has more values. */
    size_t len1 = cfg->log_output.n, len2 = cfg->log_outputs.n;
    if (len1 != len2) {
        if (len1 > len2) {
            int rc =
                cfg_note(cfg, 'R', "",
                         "'--log-output' flag has been deprecated! Please use '--log-outputs'!");
            struct config_list copy = {0};
            for (size_t i = 0; !rc && i < len1; i++)
                rc = cfg_list_push(&copy, cfg->log_output.v[i]);
            if (rc) {
                cfg_list_free(&copy);
                return rc;
            }
            cfg_list_free(&cfg->log_outputs);
            cfg->log_outputs = copy;
        } else {
            cfg_list_free(&cfg->log_output);
        }
    } else {
        if (len1 > 1) {
            cfg_errf(cfg,
                     "both '--log-output' and '--log-outputs' are set; only set '--log-outputs'");
            return CONFIG_ERR_INVALID;
        }
        if (len1 < 1) {
            cfg_errf(cfg, "either '--log-output' or '--log-outputs' flag must be set");
            return CONFIG_ERR_INVALID;
        }
        if (strcmp(cfg->log_output.v[0], cfg->log_outputs.v[0]) == 0 &&
            strcmp(cfg->log_output.v[0], "default") != 0) {
            cfg_errf(cfg,
                     "'--log-output=%s' and '--log-outputs=%s' are incompatible; only set "
                     "--log-outputs",
                     goquote_list(&cfg->log_output, q, sizeof(q)),
                     goquote_list(&cfg->log_outputs, q2, sizeof(q2)));
            return CONFIG_ERR_INVALID;
        }
        if (!list_eq1(&cfg->log_output, "default")) {
            int rc = cfg_note(cfg, 'R', "", "[WARNING] Deprecated '--log-output' flag is set to %s",
                              goquote_list(&cfg->log_output, q, sizeof(q)));
            if (!rc)
                rc = cfg_note(cfg, 'R', "", "Please use '--log-outputs' flag");
            if (rc)
                return rc;
        }
    }
    if (cfg->debug) {
        int rc = cfg_note(cfg, 'R', "",
                          "[WARNING] Deprecated '--debug' flag is set to true (use "
                          "'--log-level=debug' instead");
        if (rc)
            return rc;
        if (strcmp(cfg->log_level, "debug") != 0 &&
            (rc = cfg_note(cfg, 'R', "",
                           "[WARNING] Deprecated '--debug' flag is set to true with inconsistent "
                           "'--log-level=%s' flag",
                           cfg->log_level)))
            return rc;
    }
    if (strcmp(cfg->logger, "capnslog") == 0) {
        int rc = cfg_note(cfg, 'R', "",
                          "[WARNING] Deprecated '--logger=capnslog' flag is set; use "
                          "'--logger=zap' flag instead");
        if (rc)
            return rc;
    }
    if (cfg->log_package_levels[0]) {
        int rc = cfg_note(cfg, 'R', "",
                          "[WARNING] Deprecated '--log-package-levels=%s' flag is set; use "
                          "'--logger=zap' flag instead",
                          cfg->log_package_levels);
        if (rc)
            return rc;
    }
    if (strcmp(cfg->logger, "capnslog") == 0) {
        if (!lvl_ok && !cfg->debug) {
            cfg_errf(cfg, "unknown level %s", cfg_goquote(cfg->log_level, q, sizeof(q)));
            return CONFIG_ERR_LOG_LEVEL;
        }
        if (cfg->log_outputs.n != 1) {
            cfg_errf(cfg, "--logger=capnslog supports only 1 value in '--log-outputs', got %s",
                     goquote_list(&cfg->log_outputs, q, sizeof(q)));
            return CONFIG_ERR_INVALID;
        }
        const char *o = cfg->log_outputs.v[0];
        if (strcmp(o, "stderr") && strcmp(o, "stdout") && strcmp(o, "default")) {
            cfg_errf(cfg,
                     "unknown log-output %s (only supports \"default\", \"stderr\", \"stdout\")",
                     cfg_goquote(o, q, sizeof(q)));
            return CONFIG_ERR_INVALID;
        }
    } else if (strcmp(cfg->logger, "zap") == 0) {
        if (!lvl_ok) {
            cfg_errf(cfg, "unknown level %s", cfg_goquote(cfg->log_level, q, sizeof(q)));
            return CONFIG_ERR_LOG_LEVEL;
        }
        if (cfg->log_outputs.n > 1)
            for (size_t i = 0; i < cfg->log_outputs.n; i++)
                if (strcmp(cfg->log_outputs.v[i], "default") == 0) {
                    cfg_errf(cfg, "multi logoutput for \"default\" is not supported yet");
                    return CONFIG_ERR_INVALID;
                }
    } else {
        cfg_errf(cfg, "unknown logger option %s", cfg_goquote(cfg->logger, q, sizeof(q)));
        return CONFIG_ERR_INVALID;
    }
    return 0;
}

int config_validate(struct config *cfg)
{
    int rc;
    char q[600];
    if ((rc = validate_logging(cfg)))
        return rc;
    /* With --config-file, etcd reports errors before its logger exists. */
    cfg->logging_valid = !(cfg->config_file && cfg->config_file[0]);
    if ((rc = check_bind_urls(cfg, &cfg->listen_peer_urls)) ||
        (rc = check_bind_urls(cfg, &cfg->listen_client_urls)) ||
        (rc = check_bind_urls(cfg, &cfg->listen_metrics_urls)))
        return rc;
    if ((rc = check_host_urls(cfg, &cfg->initial_advertise_peer_urls,
                              "initial-advertise-peer-urls")) ||
        (rc = check_host_urls(cfg, &cfg->advertise_client_urls, "advertise-client-urls")))
        return rc;
    if (strcmp(cfg->initial_cluster_state, "new") &&
        strcmp(cfg->initial_cluster_state, "existing")) {
        cfg_errf(cfg, "unexpected clusterState %s",
                 cfg_goquote(cfg->initial_cluster_state, q, sizeof(q)));
        return CONFIG_ERR_INVALID;
    }
    int nset =
        (cfg->discovery[0] != 0) + (cfg->initial_cluster[0] != 0) + (cfg->discovery_srv[0] != 0);
    if (nset > 1) {
        cfg_errf(cfg, "multiple discovery or bootstrap flags are set. Choose one of "
                      "\"initial-cluster\", \"discovery\" or \"discovery-srv\"");
        return CONFIG_ERR_INVALID;
    }
    if (cfg->heartbeat_interval_ms == 0) {
        cfg_errf(cfg, "--heartbeat-interval must be >0 (set to %llums)",
                 (unsigned long long)cfg->heartbeat_interval_ms);
        return CONFIG_ERR_INVALID;
    }
    if (cfg->election_timeout_ms == 0) {
        cfg_errf(cfg, "--election-timeout must be >0 (set to %llums)",
                 (unsigned long long)cfg->election_timeout_ms);
        return CONFIG_ERR_INVALID;
    }
    if (cfg->heartbeat_interval_ms > UINT64_MAX / 5 ||
        5 * cfg->heartbeat_interval_ms > cfg->election_timeout_ms) {
        cfg_errf(cfg,
                 "--election-timeout[%llums] should be at least as 5 times as "
                 "--heartbeat-interval[%llums]",
                 (unsigned long long)cfg->election_timeout_ms,
                 (unsigned long long)cfg->heartbeat_interval_ms);
        return CONFIG_ERR_INVALID;
    }
    if (cfg->election_timeout_ms > 50000) {
        cfg_errf(cfg, "--election-timeout[%llums] is too long, and should be set less than 50000ms",
                 (unsigned long long)cfg->election_timeout_ms);
        return CONFIG_ERR_INVALID;
    }
    if (cfg->listen_client_urls.n > 0 && cfg->advertise_client_urls.n == 0) {
        bool may_proxy = strcmp(cfg->proxy, "off") != 0 ||
                         (cfg->discovery[0] && strcmp(cfg->discovery_fallback, "proxy") == 0);
        if (!may_proxy) {
            cfg_errf(cfg, "--advertise-client-urls is required when --listen-client-urls is set "
                          "explicitly");
            return CONFIG_ERR_INVALID;
        }
    }
    if (cfg->auto_compaction_mode[0] && strcmp(cfg->auto_compaction_mode, "periodic") &&
        strcmp(cfg->auto_compaction_mode, "revision")) {
        cfg_errf(cfg, "unknown auto-compaction-mode %s",
                 cfg_goquote(cfg->auto_compaction_mode, q, sizeof(q)));
        return CONFIG_ERR_INVALID;
    }
    if (cfg->experimental_enable_lease_checkpoint &&
        !cfg->experimental_enable_lease_checkpoint_persist) {
        if ((rc = cfg_note(cfg, 'W', "embed",
                           "Detected that checkpointing is enabled without persistence. Consider "
                           "enabling experimental-enable-lease-checkpoint-persist")))
            return rc;
    }
    if (cfg->experimental_enable_lease_checkpoint_persist &&
        !cfg->experimental_enable_lease_checkpoint) {
        cfg_errf(cfg, "setting experimental-enable-lease-checkpoint-persist requires "
                      "experimental-enable-lease-checkpoint");
        return CONFIG_ERR_INVALID;
    }
    /* Checks etcd makes when it starts the server (embed / etcdserver). */
    for (size_t i = 0; i < cfg->cipher_suites.n; i++) {
        if (!config_cipher_openssl_name(cfg->cipher_suites.v[i])) {
            cfg_errf(cfg, "unexpected TLS cipher suite %s",
                     cfg_goquote(cfg->cipher_suites.v[i], q, sizeof(q)));
            return CONFIG_ERR_FATAL;
        }
    }
    if (cfg->quota_backend_bytes < 0) {
        if ((rc = cfg_note(cfg, 'W', "etcdserver",
                           "disabling backend quota (quota-backend-bytes %lld < 0)",
                           (long long)cfg->quota_backend_bytes)))
            return rc;
    } else if (cfg->quota_backend_bytes > 8LL * 1024 * 1024 * 1024) {
        if ((rc = cfg_note(cfg, 'W', "etcdserver",
                           "backend quota %lld exceeds maximum recommended quota %lld",
                           (long long)cfg->quota_backend_bytes, 8LL * 1024 * 1024 * 1024)))
            return rc;
    }
    if (cfg->max_request_bytes > 10 * 1024 * 1024) {
        if ((rc = cfg_note(cfg, 'W', "etcdserver",
                           "MaxRequestBytes %llu exceeds maximum recommended size %d",
                           (unsigned long long)cfg->max_request_bytes, 10 * 1024 * 1024)))
            return rc;
    }
    return 0;
}

/* ---- the whole sequence ---- */

int config_parse(struct config *cfg, int argc, char *const argv[], char *const envp[])
{
    int rc = config_parse_args(cfg, argc, argv);
    if (rc || cfg->command != CONFIG_CMD_SERVE)
        return rc;
    if (cfg->config_file[0] == '\0') {
        const char *ef = env_get(envp, "ETCD_CONFIG_FILE");
        if (ef && *ef) {
            char *d = metcd_strdup(ef);
            if (!d)
                return CONFIG_ERR_NOMEM;
            metcd_free(cfg->config_file);
            cfg->config_file = d;
        }
    }
    if (cfg->config_file[0]) {
        /* etcd starts over from the defaults: flags and env are ignored. */
        struct config fresh;
        char *path = metcd_strdup(cfg->config_file);
        if (!path)
            return CONFIG_ERR_NOMEM;
        if ((rc = config_init(&fresh))) {
            metcd_free(path);
            return rc;
        }
        char *pdup = metcd_strdup(path);
        if (!pdup) {
            metcd_free(path);
            config_free(&fresh);
            return CONFIG_ERR_NOMEM;
        }
        metcd_free(fresh.config_file);
        fresh.config_file = pdup;
        config_free(cfg);
        *cfg = fresh;
        rc = config_load_file(cfg, path);
        metcd_free(path);
    } else {
        rc = config_apply_env(cfg, envp);
    }
    if (rc)
        return rc;
    /* etcd's first lines after a successful parse (the notes are only
     * logged when the whole parse succeeds) */
    if ((rc = cfg_note(cfg, 'I', "etcdmain", "etcd Version: %s", CONFIG_SERVER_VERSION)) ||
        (rc = cfg_note(cfg, 'I', "etcdmain", "Git SHA: metcd")) ||
        (rc = cfg_note(cfg, 'I', "etcdmain", "Go Version: none (metcd is written in C)")))
        return rc;
    if ((rc = config_finalize(cfg)))
        return rc;
    return config_validate(cfg);
}

int config_check_implemented(struct config *cfg, const char *const implemented[])
{
    for (size_t i = 0; i < cfg_nflags; i++) {
        if (cfg->source[i] == CONFIG_SRC_DEFAULT || cfg_flags[i].type == CT_IGNORED)
            continue;
        const char *n = cfg_flags[i].name;
        if (strcmp(n, "config-file") == 0 || strcmp(n, "version") == 0)
            continue;
        bool ok = false;
        for (size_t j = 0; implemented && implemented[j]; j++)
            ok = ok || strcmp(implemented[j], n) == 0;
        if (!ok) {
            static const char *const how[] = {"", "command line", "environment variable",
                                              "config file"};
            if (cfg->source[i] == CONFIG_SRC_ENV) {
                char key[128];
                flag_to_env(n, key, sizeof(key));
                cfg_errf(cfg, "--%s (set by %s %s) is not implemented by metcd yet", n,
                         how[cfg->source[i]], key);
            } else {
                cfg_errf(cfg, "--%s (set in the %s) is not implemented by metcd yet", n,
                         how[cfg->source[i]]);
            }
            return CONFIG_ERR_UNIMPLEMENTED;
        }
    }
    return 0;
}

int config_report(const struct config *cfg, int err, FILE *out)
{
    char ts[64];
    log_timestamp_capnslog(ts, sizeof(ts));
    switch (err) {
    case CONFIG_OK:
        return 0;
    case CONFIG_ERR_USAGE:
        fprintf(out, "%s\n", cfg->errmsg);
        config_print_usage(out);
        break;
    case CONFIG_ERR_LOG_LEVEL:
        fprintf(out, "panic: %s\n", cfg->errmsg);
        break;
    case CONFIG_ERR_ENV_CONFLICT:
        fprintf(out, "%s C | pkg/flags: %s\n", ts, cfg->errmsg);
        break;
    case CONFIG_ERR_CLUSTER:
    case CONFIG_ERR_FATAL:
    case CONFIG_ERR_UNIMPLEMENTED:
        fprintf(out, "%s C | etcdmain: %s\n", ts, cfg->errmsg);
        break;
    case CONFIG_ERR_NOMEM:
        fprintf(out, "%s C | etcdmain: %s\n", ts, config_strerror(err));
        break;
    case CONFIG_ERR_FILE:
        if (strncmp(cfg->errmsg, "unexpected error setting up ", 28) == 0) {
            /* etcd prints these raw; the proxy ones through Go's log package */
            if (strstr(cfg->errmsg, " flag: ") || strstr(cfg->errmsg, "proxyFlag: ")) {
                char gts[32];
                time_t now = time(NULL);
                struct tm tm;
                localtime_r(&now, &tm);
                strftime(gts, sizeof(gts), "%Y/%m/%d %H:%M:%S ", &tm);
                fputs(gts, out);
            }
            fprintf(out, "%s\n", cfg->errmsg);
            break;
        }
        fprintf(out, "%s E | etcdmain: error verifying flags, %s. See 'etcd --help'.\n", ts,
                cfg->errmsg);
        break;
    default:
        if (cfg->logging_valid && cfg->logger && strcmp(cfg->logger, "zap") == 0) {
            /* etcd with --logger zap: one JSON warning line */
            struct log_field f = LOG_STR("error", cfg->errmsg);
            char *line =
                log_format_line(LOG_FMT_ZAP, LOG_LVL_WARN, "etcdmain", "etcdmain/etcd.go:66",
                                "failed to verify flags", &f, 1, "%s", "");
            if (line) {
                fputs(line, out);
                metcd_free(line);
                break;
            }
        }
        fprintf(out, "%s E | etcdmain: error verifying flags, %s. See 'etcd --help'.\n", ts,
                cfg->errmsg);
        if (strstr(cfg->errmsg, "--advertise-client-urls is required"))
            fprintf(out,
                    "%s E | etcdmain: When listening on specific address(es), this etcd "
                    "process must advertise accessible url(s) to each connected client.\n",
                    ts);
        break;
    }
    fflush(out);
    return config_exit_status(err);
}
