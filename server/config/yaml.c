/* server/config/yaml.c - the YAML subset etcd's --config-file uses, read
 * into a struct config.
 *
 * Understood: `key: value` mappings at the top level; one nested level of
 * `key:` + indented `sub: value` lines (client-transport-security,
 * peer-transport-security); block sequences (`- item`) and flow sequences
 * (`[a, 'b', "c"]`, also across lines); plain, 'single' and "double" quoted
 * scalars; empty values / `~` / `null` (the default stays, as with Go's yaml);
 * `#` comments; a leading `---`. Anything else (anchors, aliases, tags, block
 * scalars, flow mappings, deeper nesting, tabs in indentation) is refused
 * with its line number, in the shape of etcd's own message
 * ("error converting YAML to JSON: yaml: line N: ...").
 *
 * Keys are flag names (etcd reads the same names). Values are typed the way
 * etcd's YAML -> JSON -> Go decoding types them, with etcd's messages: YAML
 * 1.1 booleans (yes/no/on/off/y/n/true/false, unquoted) are booleans, so
 * `name: n` is refused as in etcd; numbers go only into numeric fields;
 * durations are integers of nanoseconds; only cipher-suites, log-outputs and
 * log-output take sequences. A repeated key: the last one wins. Unknown keys
 * are ignored with a warning, as Go's non-strict decoding ignores them; so
 * are top-level TLS keys (cert-file, peer-auto-tls, ...), which etcd reads
 * only from the transport-security maps. In those maps we also read crl-file,
 * allowed-cn and allowed-hostname (later etcd versions do; 3.4.23 ignores them).
 */
#include "server/config/config_internal.h"
#include "common/mem.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct yline {
    int no; /* 1-based */
    int indent;
    char *text; /* content after indent, comment stripped, trailing space trimmed */
};

struct yscalar {
    bool null;
    bool quoted;
    char *s; /* owned; NULL when null */
};

struct yparser {
    struct config *cfg;
    struct yline *lines;
    size_t n, pos;
    /* inside a transport-security map: its name and the current sub-key,
     * for Go's error path "securityConfig.<map>.<sub>" */
    const char *map_name, *sub_key;
};

static int yerr(struct yparser *p, int line, const char *what)
{
    cfg_errf(p->cfg, "error converting YAML to JSON: yaml: line %d: %s", line, what);
    return CONFIG_ERR_FILE;
}

/* Strips a comment ('#' at start or after blank, outside quotes). */
static void strip_comment(char *s)
{
    char q = 0;
    for (char *c = s; *c; c++) {
        if (q) {
            if (*c == q) {
                if (q == '\'' && c[1] == '\'')
                    c++;
                else
                    q = 0;
            } else if (q == '"' && *c == '\\' && c[1]) {
                c++;
            }
            continue;
        }
        if ((*c == '\'' || *c == '"') && (c == s || c[-1] == ' ' || c[-1] == '[' || c[-1] == ',' ||
                                          c[-1] == ':' || c[-1] == '-')) {
            q = *c;
            continue;
        }
        if (*c == '#' && (c == s || c[-1] == ' ' || c[-1] == '\t')) {
            *c = '\0';
            return;
        }
    }
}

static void rtrim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

static int split_lines(struct yparser *p, const char *text, size_t len)
{
    size_t cap = 0;
    const char *b = text, *end = text + len;
    int no = 0;
    while (b < end) {
        const char *e = memchr(b, '\n', (size_t)(end - b));
        if (!e)
            e = end;
        no++;
        size_t l = (size_t)(e - b);
        char *t = metcd_malloc(l + 1);
        if (!t)
            return CONFIG_ERR_NOMEM;
        memcpy(t, b, l);
        t[l] = '\0';
        if (memchr(t, '\0', l) != NULL && strlen(t) != l) {
            metcd_free(t);
            return yerr(p, no, "control characters are not allowed");
        }
        int ind = 0;
        while (t[ind] == ' ')
            ind++;
        if (t[ind] == '\t') {
            metcd_free(t);
            return yerr(p, no, "found a tab character that violates indentation");
        }
        strip_comment(t + ind);
        rtrim(t + ind);
        if (t[ind] == '\0' || (no == 1 && strcmp(t, "---") == 0)) {
            metcd_free(t);
            b = e + 1;
            continue;
        }
        if (strcmp(t, "...") == 0) {
            metcd_free(t);
            break;
        }
        if (p->n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            struct yline *nl = metcd_realloc(p->lines, nc * sizeof(*nl));
            if (!nl) {
                metcd_free(t);
                return CONFIG_ERR_NOMEM;
            }
            p->lines = nl;
            cap = nc;
        }
        memmove(t, t + ind, strlen(t + ind) + 1);
        p->lines[p->n++] = (struct yline){.no = no, .indent = ind, .text = t};
        b = e + 1;
    }
    return 0;
}

/* Parses one scalar from *sp up to a terminator in `stops` (or end).
 * Quoted scalars are unescaped. Advances *sp. */
static int parse_scalar(struct yparser *p, int line, const char **sp, const char *stops,
                        struct yscalar *out)
{
    const char *s = *sp;
    while (*s == ' ')
        s++;
    out->null = false;
    out->quoted = false;
    out->s = NULL;
    size_t cap = strlen(s) + 1;
    char *buf = metcd_malloc(cap);
    if (!buf)
        return CONFIG_ERR_NOMEM;
    size_t o = 0;
    if (*s == '\'' || *s == '"') {
        char q = *s++;
        out->quoted = true;
        for (;;) {
            if (*s == '\0') {
                metcd_free(buf);
                return yerr(p, line, "found unexpected end of stream");
            }
            if (*s == q) {
                if (q == '\'' && s[1] == '\'') {
                    buf[o++] = '\'';
                    s += 2;
                    continue;
                }
                s++;
                break;
            }
            if (q == '"' && *s == '\\') {
                s++;
                switch (*s) {
                case 'n':
                    buf[o++] = '\n';
                    break;
                case 't':
                    buf[o++] = '\t';
                    break;
                case '\\':
                    buf[o++] = '\\';
                    break;
                case '"':
                    buf[o++] = '"';
                    break;
                case '/':
                    buf[o++] = '/';
                    break;
                case '0':
                    buf[o++] = '\0';
                    break;
                default:
                    metcd_free(buf);
                    return yerr(p, line,
                                "found unknown escape character while parsing a quoted scalar");
                }
                s++;
                continue;
            }
            buf[o++] = *s++;
        }
        while (*s == ' ')
            s++;
        if (*s && !strchr(stops, *s)) {
            metcd_free(buf);
            return yerr(p, line, "did not find expected key");
        }
    } else {
        if (*s && strchr("&*!|>{%@`", *s)) {
            metcd_free(buf);
            return yerr(p, line, "this YAML feature is not supported in a metcd config file");
        }
        while (*s && !strchr(stops, *s))
            buf[o++] = *s++;
        while (o && buf[o - 1] == ' ')
            o--;
        buf[o] = '\0';
        if (o == 0 || strcmp(buf, "~") == 0 || strcmp(buf, "null") == 0 ||
            strcmp(buf, "Null") == 0 || strcmp(buf, "NULL") == 0) {
            metcd_free(buf);
            out->null = true;
            *sp = s;
            return 0;
        }
    }
    buf[o] = '\0';
    out->s = buf;
    *sp = s;
    return 0;
}

/* Splits "key: rest" (key plain or quoted). */
static int split_key(struct yparser *p, const struct yline *l, char *key, size_t klen,
                     const char **rest)
{
    const char *s = l->text;
    struct yscalar k;
    if (s[0] == '-' && (s[1] == ' ' || s[1] == '\0'))
        return yerr(p, l->no, "did not find expected key");
    if (s[0] == '\'' || s[0] == '"') {
        int rc = parse_scalar(p, l->no, &s, ":", &k);
        if (rc)
            return rc;
    } else {
        const char *c = s;
        while (*c && !(*c == ':' && (c[1] == ' ' || c[1] == '\0')))
            c++;
        if (*c != ':') {
            return yerr(p, l->no, "could not find expected ':'");
        }
        size_t n = (size_t)(c - s);
        while (n && s[n - 1] == ' ')
            n--;
        k.s = metcd_malloc(n + 1);
        if (!k.s)
            return CONFIG_ERR_NOMEM;
        memcpy(k.s, s, n);
        k.s[n] = '\0';
        s = c;
    }
    if (*s != ':') {
        metcd_free(k.s);
        return yerr(p, l->no, "could not find expected ':'");
    }
    snprintf(key, klen, "%s", k.s);
    metcd_free(k.s);
    s++;
    while (*s == ' ')
        s++;
    *rest = s;
    return 0;
}

/* Flow sequence starting at '[' in *rest on line index *li; may continue on
 * following lines. Appends items to out. */
static int parse_flow_seq(struct yparser *p, const char *rest, struct config_list *out)
{
    int line = p->lines[p->pos].no;
    size_t total = strlen(rest) + 1;
    size_t j = p->pos;
    /* Join lines until the bracket closes (simple: count unquoted ']'). */
    char *joined = metcd_strdup(rest);
    if (!joined)
        return CONFIG_ERR_NOMEM;
    while (!strchr(joined, ']')) {
        if (++j >= p->n) {
            metcd_free(joined);
            return yerr(p, line, "did not find expected ',' or ']'");
        }
        total += strlen(p->lines[j].text) + 1;
        char *nj = metcd_realloc(joined, total);
        if (!nj) {
            metcd_free(joined);
            return CONFIG_ERR_NOMEM;
        }
        joined = nj;
        strcat(joined, " ");
        strcat(joined, p->lines[j].text);
    }
    p->pos = j;
    const char *s = joined + 1;
    int rc = 0;
    for (;;) {
        while (*s == ' ')
            s++;
        if (*s == ']') {
            s++;
            break;
        }
        if (*s == '[' || *s == '{') {
            rc = yerr(p, line, "nested collections are not supported in a metcd config file");
            goto out;
        }
        struct yscalar v;
        if ((rc = parse_scalar(p, line, &s, ",]", &v)))
            goto out;
        if (v.null) {
            if (*s == ']' && out->n == 0) {
                s++;
                break;
            }
            rc = yerr(p, line, "did not find expected node content");
            goto out;
        }
        rc = cfg_list_push(out, v.s);
        metcd_free(v.s);
        if (rc)
            goto out;
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == ']') {
            s++;
            break;
        }
        rc = yerr(p, line, "did not find expected ',' or ']'");
        goto out;
    }
    while (*s == ' ')
        s++;
    if (*s)
        rc = yerr(p, line, "did not find expected <document start>");
out:
    metcd_free(joined);
    return rc;
}

/* ---- applying values ---- */

static const char *const sec_client[][2] = {
    {"cert-file", "cert-file"},
    {"key-file", "key-file"},
    {"client-cert-auth", "client-cert-auth"},
    {"trusted-ca-file", "trusted-ca-file"},
    {"auto-tls", "auto-tls"},
    {"crl-file", "client-crl-file"},
    {"allowed-hostname", "client-cert-allowed-hostname"},
    {NULL, NULL},
};
static const char *const sec_peer[][2] = {
    {"cert-file", "peer-cert-file"},
    {"key-file", "peer-key-file"},
    {"client-cert-auth", "peer-client-cert-auth"},
    {"trusted-ca-file", "peer-trusted-ca-file"},
    {"auto-tls", "peer-auto-tls"},
    {"crl-file", "peer-crl-file"},
    {"allowed-cn", "peer-cert-allowed-cn"},
    {"allowed-hostname", "peer-cert-allowed-hostname"},
    {NULL, NULL},
};

static bool yaml_bool(const char *s, bool *b)
{
    static const char *const t[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                    "on",   "On",   "ON",   "y",   "Y",   NULL};
    static const char *const f[] = {"false", "False", "FALSE", "no", "No", "NO",
                                    "off",   "Off",   "OFF",   "n",  "N",  NULL};
    for (int i = 0; t[i]; i++) {
        if (strcmp(s, t[i]) == 0) {
            *b = true;
            return true;
        }
        if (strcmp(s, f[i]) == 0) {
            *b = false;
            return true;
        }
    }
    return false;
}

/* The Go type etcd decodes each key into (for its error messages). */
static const char *go_type(const char *key, enum cfg_type t)
{
    switch (t) {
    case CT_BOOL:
        return "bool";
    case CT_UINT:
        return strcmp(key, "snapshot-count") == 0 ? "uint64" : "uint";
    case CT_INT:
        return strcmp(key, "quota-backend-bytes") == 0 ? "int64" : "int";
    case CT_UINT32:
        return "uint32";
    case CT_DUR:
        return "time.Duration";
    case CT_STRS:
    case CT_USTRS:
        return "[]string";
    default:
        return "string";
    }
}

/* cors and host-whitelist are comma-separated strings in etcd's file. */
static bool json_array_field(const struct cfg_flag *f)
{
    return (f->type == CT_STRS || f->type == CT_USTRS) && strcmp(f->name, "host-whitelist") != 0;
}

/* A plain YAML 1.1 scalar that Go's yaml reads as a number: decimal, 0x hex,
 * 0b binary, leading-0 octal, '_' separators, floats (1.5, 1e3, .5).
 * *integral tells whether the value is a whole number that fits in 64 bits
 * (then *mag and *neg hold it). */
static bool yaml_numeric(const struct yscalar *v, bool *integral, unsigned long long *mag,
                         bool *neg)
{
    char buf[64];
    size_t o = 0;
    *integral = false;
    if (v->quoted || strlen(v->s) >= sizeof(buf))
        return false;
    for (const char *c = v->s; *c; c++)
        if (*c != '_')
            buf[o++] = *c;
    buf[o] = '\0';
    const char *d = buf;
    *neg = false;
    if (*d == '+' || *d == '-') {
        *neg = *d == '-';
        d++;
    }
    if (*d == '\0')
        return false;
    int base = 10;
    const char *digits = d;
    if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) {
        base = 16;
        digits = d + 2;
    } else if (d[0] == '0' && (d[1] == 'b' || d[1] == 'B')) {
        base = 2;
        digits = d + 2;
    } else if (d[0] == '0' && d[1]) {
        base = 8;
        digits = d + 1;
    }
    bool all = *digits != '\0';
    for (const char *c = digits; *c && all; c++) {
        int dv = isdigit((unsigned char)*c)    ? *c - '0'
                 : isxdigit((unsigned char)*c) ? tolower((unsigned char)*c) - 'a' + 10
                                               : 99;
        all = dv < base;
    }
    if (all) {
        errno = 0;
        *mag = strtoull(digits, NULL, base);
        *integral = errno != ERANGE;
        return true;
    }
    if (base == 16 || base == 2)
        return false;
    /* float: digits, optional '.', optional exponent; at least one digit */
    bool dig = false;
    const char *c = d;
    while (isdigit((unsigned char)*c))
        c++, dig = true;
    if (*c == '.')
        for (c++; isdigit((unsigned char)*c); c++)
            dig = true;
    if (!dig)
        return false;
    if (*c == 'e' || *c == 'E') {
        c++;
        if (*c == '+' || *c == '-')
            c++;
        if (!isdigit((unsigned char)*c))
            return false;
        while (isdigit((unsigned char)*c))
            c++;
    }
    if (*c != '\0')
        return false;
    long double f = strtold(d, NULL);
    if (f == (long double)(unsigned long long)f && f < 18446744073709551616.0L) {
        *mag = (unsigned long long)f;
        *integral = true;
    }
    return true;
}

/* A float64 as Go's encoding/json writes it (the text its errors show). */
static void go_float(double f, char *out, size_t len)
{
    char e[64];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f)
            break;
    }
    /* e: [-]d[.ddd]e[+-]XX */
    char *ep = strchr(e, 'e');
    int exp = atoi(ep + 1);
    *ep = '\0';
    char digs[32];
    size_t nd = 0;
    bool neg = e[0] == '-';
    for (char *c = e; *c; c++)
        if (isdigit((unsigned char)*c))
            digs[nd++] = *c;
    digs[nd] = '\0';
    double af = f < 0 ? -f : f;
    if (af != 0 && (af < 1e-6 || af >= 1e21)) {
        /* encoding/json: exponent form, "e-07" shortened to "e-7" */
        snprintf(out, len, "%s%c%s%se%c%0*d", neg ? "-" : "", digs[0], nd > 1 ? "." : "", digs + 1,
                 exp < 0 ? '-' : '+', exp < 0 ? 1 : 2, exp < 0 ? -exp : exp);
        return;
    }
    /* fixed notation */
    char buf[64];
    size_t o = 0;
    if (neg)
        buf[o++] = '-';
    if (exp < 0) {
        buf[o++] = '0';
        buf[o++] = '.';
        for (int i = -1; i > exp; i--)
            buf[o++] = '0';
        for (size_t i = 0; i < nd; i++)
            buf[o++] = digs[i];
    } else {
        for (int i = 0; i <= exp; i++)
            buf[o++] = (size_t)i < nd ? digs[i] : '0';
        if ((size_t)exp + 1 < nd) {
            buf[o++] = '.';
            for (size_t i = (size_t)exp + 1; i < nd; i++)
                buf[o++] = digs[i];
        }
    }
    buf[o] = '\0';
    snprintf(out, len, "%s", buf);
}

static bool yaml_number(const struct yscalar *v)
{
    bool integral, neg;
    unsigned long long mag;
    return yaml_numeric(v, &integral, &mag, &neg);
}

/* The JSON type Go sees for a scalar: "string", "number" or "bool". */
static const char *json_kind(const struct yscalar *v)
{
    if (!v->quoted && yaml_bool(v->s, &(bool){false}))
        return "bool";
    return yaml_number(v) ? "number" : "string";
}

static int type_error(struct yparser *p, const char *key, const char *kind, const char *value,
                      const struct cfg_flag *f)
{
    if (p->map_name)
        cfg_errf(p->cfg,
                 "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal %s%s%s into "
                 "Go struct field securityConfig.%s.%s of type %s",
                 kind, value ? " " : "", value ? value : "", p->map_name, p->sub_key,
                 go_type(key, f->type));
    else
        cfg_errf(p->cfg,
                 "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal %s%s%s into "
                 "Go struct field configYAML.%s of type %s",
                 kind, value ? " " : "", value ? value : "", key, go_type(key, f->type));
    return CONFIG_ERR_FILE;
}

static int apply_scalar(struct yparser *p, int line, const char *key, const struct yscalar *v)
{
    long fi = cfg_flag_find(key);
    (void)line;
    const struct cfg_flag *f = &cfg_flags[fi];
    if (v->null) {
        /* Go leaves the default; a repeated key replaced an earlier value. */
        if (p->cfg->source[fi] != CONFIG_SRC_FILE)
            return 0;
        int rc = config_set(p->cfg, key, f->def, CONFIG_SRC_DEFAULT);
        return rc == CONFIG_ERR_NOMEM ? rc : 0;
    }
    const char *kind = json_kind(v);
    char numbuf[32];
    const char *text = v->s;
    switch (f->type) {
    case CT_BOOL: {
        if (strcmp(kind, "bool") != 0)
            return type_error(p, key, kind, NULL, f);
        bool b = false;
        yaml_bool(v->s, &b);
        text = b ? "true" : "false";
        break;
    }
    case CT_UINT:
    case CT_INT:
    case CT_UINT32:
    case CT_DUR: {
        if (strcmp(kind, "number") != 0)
            return type_error(p, key, kind, NULL, f);
        /* Go's JSON wants a whole number that fits the field. */
        bool integral, neg;
        unsigned long long u;
        yaml_numeric(v, &integral, &u, &neg);
        if (!integral || (neg && u != 0 && f->type != CT_INT && f->type != CT_DUR) ||
            (f->type == CT_UINT32 && u > UINT32_MAX) ||
            ((f->type == CT_INT || f->type == CT_DUR) &&
             u > (unsigned long long)INT64_MAX + (neg ? 1 : 0))) {
            /* Go shows floats in its own shortest form (0.5, 1e+30) */
            char shown[64];
            if (strpbrk(v->s, ".eE") && !strpbrk(v->s, "xX")) {
                char clean[64];
                size_t o = 0;
                for (const char *c = v->s; *c && o + 1 < sizeof(clean); c++)
                    if (*c != '_')
                        clean[o++] = *c;
                clean[o] = '\0';
                go_float(strtod(clean, NULL), shown, sizeof(shown));
            } else {
                snprintf(shown, sizeof(shown), "%s", v->s);
            }
            return type_error(p, key, "number", shown, f);
        }
        if (f->type == CT_DUR) {
            int64_t *slot = (int64_t *)((char *)p->cfg + f->off);
            *slot = neg ? -(int64_t)u : (int64_t)u; /* nanoseconds */
            p->cfg->source[fi] = CONFIG_SRC_FILE;
            return 0;
        }
        snprintf(numbuf, sizeof(numbuf), "%s%llu", neg ? "-" : "", u);
        text = numbuf;
        break;
    }
    case CT_STRS:
    case CT_USTRS:
        if (json_array_field(f))
            return type_error(p, key, kind, NULL, f);
        break;
    case CT_SELECT:
        if (strcmp(kind, "string") != 0)
            return type_error(p, key, kind, NULL, f);
        if (strcmp(key, "initial-cluster-state") == 0) {
            /* etcd takes any string here and refuses it in Validate. */
            char *d = metcd_strdup(v->s);
            if (!d)
                return CONFIG_ERR_NOMEM;
            char **slot = (char **)((char *)p->cfg + f->off);
            metcd_free(*slot);
            *slot = d;
            p->cfg->source[fi] = CONFIG_SRC_FILE;
            return 0;
        }
        break;
    default:
        if (strcmp(kind, "string") != 0)
            return type_error(p, key, kind, NULL, f);
        break;
    }
    int rc = config_set(p->cfg, key, text, CONFIG_SRC_FILE);
    if (rc != CONFIG_ERR_USAGE)
        return rc;
    char msg[sizeof(p->cfg->errmsg)];
    const char *colon = strstr(p->cfg->errmsg, ": ");
    snprintf(msg, sizeof(msg), "%s", colon ? colon + 2 : p->cfg->errmsg);
    if (f->type == CT_URLS && strcmp(key, "cors") != 0)
        cfg_errf(p->cfg, "unexpected error setting up %s: %s", key, msg); /* printed raw */
    else if (f->type == CT_SELECT && strcmp(key, "proxy") == 0)
        cfg_errf(p->cfg, "unexpected error setting up proxyFlag: %s", msg);
    else if (f->type == CT_SELECT)
        cfg_errf(p->cfg, "unexpected error setting up %s flag: %s", key, msg);
    else
        cfg_errf(p->cfg, "error unmarshaling JSON: while decoding JSON: %s: %s", key, msg);
    return CONFIG_ERR_FILE;
}

static int apply_list(struct yparser *p, int line, const char *key, struct config_list *items)
{
    long fi = cfg_flag_find(key);
    const struct cfg_flag *f = &cfg_flags[fi];
    (void)line;
    if (!json_array_field(f))
        return type_error(p, key, "array", NULL, f);
    struct config_list *l = (struct config_list *)((char *)p->cfg + f->off);
    struct config_list nl = {0};
    for (size_t i = 0; i < items->n; i++) {
        int rc = cfg_list_push(&nl, items->v[i]);
        if (rc) {
            cfg_list_free(&nl);
            return rc;
        }
    }
    cfg_list_free(l);
    *l = nl;
    p->cfg->source[fi] = CONFIG_SRC_FILE;
    return 0;
}

/* Flags etcd 3.4 does not read from the file's top level: TLS settings come
 * only from the two *-transport-security maps there. */
static const char *const not_file_keys[] = {
    "config-file",
    "version",
    "cert-file",
    "key-file",
    "client-cert-auth",
    "client-crl-file",
    "client-cert-allowed-hostname",
    "trusted-ca-file",
    "auto-tls",
    "peer-cert-file",
    "peer-key-file",
    "peer-client-cert-auth",
    "peer-trusted-ca-file",
    "peer-cert-allowed-cn",
    "peer-cert-allowed-hostname",
    "peer-auto-tls",
    "peer-crl-file",
    "experimental-peer-skip-client-san-verification",
    NULL,
};

static bool key_known(const char *key)
{
    long fi = cfg_flag_find(key);
    if (fi < 0 || cfg_flags[fi].type == CT_IGNORED)
        return false;
    for (int i = 0; not_file_keys[i]; i++)
        if (strcmp(key, not_file_keys[i]) == 0)
            return false;
    return true;
}

/* The value of a top-level (or nested) key: scalar on the line, flow
 * sequence, or an indented block (sequence, or map when allowed). */
static int parse_value(struct yparser *p, const char *key, const char *rest, int indent,
                       const char *const (*submap)[2]);

static int parse_block_map(struct yparser *p, const char *parent, int indent,
                           const char *const (*submap)[2])
{
    int child = p->lines[p->pos + 1].indent;
    int rc = 0;
    while (p->pos + 1 < p->n && p->lines[p->pos + 1].indent > indent) {
        p->pos++;
        const struct yline *l = &p->lines[p->pos];
        if (l->indent != child) {
            rc = yerr(p, l->no, "mapping values are not allowed in this context");
            break;
        }
        char key[128];
        const char *rest;
        if ((rc = split_key(p, l, key, sizeof(key), &rest)))
            break;
        const char *target = NULL;
        for (int i = 0; submap && submap[i][0]; i++)
            if (strcmp(submap[i][0], key) == 0)
                target = submap[i][1];
        if (!target) {
            rc = cfg_note(p->cfg, 'W', "etcdmain",
                          "config file line %d: unknown key \"%s\" in \"%s\" ignored", l->no, key,
                          parent);
            if (rc)
                break;
            if ((rc = parse_value(p, NULL, rest, child, NULL)))
                break;
            continue;
        }
        p->map_name = parent;
        p->sub_key = key;
        rc = parse_value(p, target, rest, child, NULL);
        p->map_name = p->sub_key = NULL;
        if (rc)
            break;
    }
    return rc;
}

static int parse_value(struct yparser *p, const char *key, const char *rest, int indent,
                       const char *const (*submap)[2])
{
    int line = p->lines[p->pos].no;
    int rc;
    if (rest[0] == '[') {
        struct config_list items = {0};
        rc = parse_flow_seq(p, rest, &items);
        if (!rc && key)
            rc = apply_list(p, line, key, &items);
        cfg_list_free(&items);
        return rc;
    }
    if (rest[0] == '{') {
        if (strcmp(rest, "{}") == 0)
            return 0;
        return yerr(p, line, "flow mappings are not supported in a metcd config file");
    }
    const struct yline *peek = p->pos + 1 < p->n ? &p->lines[p->pos + 1] : NULL;
    bool seq_same_indent = peek && peek->indent == indent && peek->text[0] == '-' &&
                           (peek->text[1] == ' ' || peek->text[1] == '\0');
    if (rest[0] == '\0' && peek && (peek->indent > indent || seq_same_indent)) {
        const struct yline *nx = &p->lines[p->pos + 1];
        if (nx->text[0] == '-' && (nx->text[1] == ' ' || nx->text[1] == '\0')) {
            struct config_list items = {0};
            int ind = nx->indent;
            rc = 0;
            while (p->pos + 1 < p->n && p->lines[p->pos + 1].indent >= ind &&
                   p->lines[p->pos + 1].text[0] == '-') {
                p->pos++;
                const struct yline *l = &p->lines[p->pos];
                if (l->indent != ind) {
                    rc = yerr(p, l->no, "did not find expected '-' indicator");
                    break;
                }
                const char *s = l->text + 1;
                while (*s == ' ')
                    s++;
                if (*s == '[' || *s == '{' || *s == '-') {
                    rc = yerr(p, l->no,
                              "nested collections are not supported in a metcd config file");
                    break;
                }
                struct yscalar v;
                if ((rc = parse_scalar(p, l->no, &s, "", &v)))
                    break;
                if (v.null) {
                    rc = yerr(p, l->no, "empty sequence items are not supported");
                    break;
                }
                rc = cfg_list_push(&items, v.s);
                metcd_free(v.s);
                if (rc)
                    break;
            }
            if (!rc && p->pos + 1 < p->n && p->lines[p->pos + 1].indent > indent)
                rc = yerr(p, p->lines[p->pos + 1].no, "did not find expected key");
            if (!rc && key)
                rc = apply_list(p, line, key, &items);
            cfg_list_free(&items);
            return rc;
        }
        if (!submap && key)
            return yerr(p, nx->no, "mapping values are not allowed in this context");
        if (indent > 0)
            return yerr(p, nx->no, "only one level of nesting is supported in a metcd config file");
        return parse_block_map(p, key ? key : "", indent, submap);
    }
    struct yscalar v;
    const char *s = rest;
    if ((rc = parse_scalar(p, line, &s, "", &v)))
        return rc;
    if (!v.null && !v.quoted && strchr(v.s, ':') && strstr(v.s, ": ")) {
        metcd_free(v.s);
        return yerr(p, line, "mapping values are not allowed in this context");
    }
    if (key && submap && !v.null) {
        metcd_free(v.s);
        return yerr(p, line, "expected a mapping");
    }
    rc = key && !submap ? apply_scalar(p, line, key, &v) : 0;
    metcd_free(v.s);
    return rc;
}

int cfg_load_yaml(struct config *cfg, const char *text, size_t len)
{
    struct yparser p = {.cfg = cfg};
    int rc = split_lines(&p, text, len);
    if (rc)
        goto out;
    for (p.pos = 0; p.pos < p.n; p.pos++) {
        const struct yline *l = &p.lines[p.pos];
        if (l->indent != 0) {
            rc = yerr(&p, l->no, "mapping values are not allowed in this context");
            goto out;
        }
        char key[128];
        const char *rest;
        if ((rc = split_key(&p, l, key, sizeof(key), &rest)))
            goto out;
        if (strcmp(key, "client-transport-security") == 0) {
            rc = parse_value(&p, key, rest, 0, sec_client);
        } else if (strcmp(key, "peer-transport-security") == 0) {
            rc = parse_value(&p, key, rest, 0, sec_peer);
        } else if (key_known(key)) {
            rc = parse_value(&p, key, rest, 0, NULL);
        } else {
            rc = cfg_note(cfg, 'W', "etcdmain", "config file line %d: unknown key \"%s\" ignored",
                          l->no, key);
            if (!rc)
                rc = parse_value(&p, NULL, rest, 0, NULL);
        }
        if (rc)
            goto out;
    }
out:
    for (size_t i = 0; i < p.n; i++)
        metcd_free(p.lines[i].text);
    metcd_free(p.lines);
    return rc;
}
