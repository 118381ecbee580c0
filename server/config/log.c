/* server/config/log.c - capnslog text lines and zap JSON lines, one write(2)
 * per output per record, under a mutex. */
#include "server/config/log.h"
#include "server/config/config.h"
#include "common/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_MAX_OUTPUTS 16

#define LOG_MAX_PKG_LEVELS 32

struct metcd_log {
    enum log_format fmt;
    enum log_level min;
    size_t npkg;
    struct {
        char pkg[64];
        enum log_level min;
    } pkg[LOG_MAX_PKG_LEVELS];
    size_t nfd;
    int fd[LOG_MAX_OUTPUTS];
    bool owned[LOG_MAX_OUTPUTS];
    pthread_mutex_t mu;
};

/* Line buffer: stack first, heap when a record is longer. */
struct lbuf {
    char *p;
    size_t len, cap;
    bool heap, oom;
    char stack[2048];
};

static void lb_init(struct lbuf *b)
{
    b->p = b->stack;
    b->len = 0;
    b->cap = sizeof(b->stack);
    b->heap = b->oom = false;
}

static bool lb_reserve(struct lbuf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t nc = b->cap * 2;
    while (nc < b->len + extra + 1)
        nc *= 2;
    char *np = b->heap ? metcd_realloc(b->p, nc) : metcd_malloc(nc);
    if (!np) {
        b->oom = true;
        return false;
    }
    if (!b->heap)
        memcpy(np, b->p, b->len);
    b->p = np;
    b->cap = nc;
    b->heap = true;
    return true;
}

static void lb_add(struct lbuf *b, const char *s, size_t n)
{
    if (!lb_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void lb_puts(struct lbuf *b, const char *s)
{
    lb_add(b, s, strlen(s));
}

static void lb_vprintf(struct lbuf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || !lb_reserve(b, (size_t)n))
        return;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

static void lb_printf(struct lbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lb_printf(struct lbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lb_vprintf(b, fmt, ap);
    va_end(ap);
}

static void lb_free(struct lbuf *b)
{
    if (b->heap)
        metcd_free(b->p);
}

/* JSON string body (no quotes). */
static void lb_json(struct lbuf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"':
            lb_add(b, "\\\"", 2);
            break;
        case '\\':
            lb_add(b, "\\\\", 2);
            break;
        case '\n':
            lb_add(b, "\\n", 2);
            break;
        case '\r':
            lb_add(b, "\\r", 2);
            break;
        case '\t':
            lb_add(b, "\\t", 2);
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                lb_printf(b, "\\u%04x", c);
            else
                lb_add(b, (const char *)&c, 1);
        }
    }
}

const char *log_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case LOG_ERR_NOMEM:
        return "out of memory";
    case LOG_ERR_INVAL:
        return "invalid logger configuration";
    case LOG_ERR_OPEN:
        return "cannot open log output";
    default:
        return "unknown log error";
    }
}

int log_level_parse(const char *s, enum log_level *out)
{
    static const struct {
        const char *w;
        enum log_level l;
    } m[] = {{"debug", LOG_LVL_DEBUG}, {"info", LOG_LVL_INFO},   {"warn", LOG_LVL_WARN},
             {"error", LOG_LVL_ERROR}, {"dpanic", LOG_LVL_CRIT}, {"panic", LOG_LVL_CRIT},
             {"fatal", LOG_LVL_CRIT}};
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        if (strcmp(s, m[i].w) == 0) {
            *out = m[i].l;
            return 0;
        }
    return -1;
}

static struct metcd_log *log_new(enum log_format fmt, enum log_level min)
{
    struct metcd_log *lg = metcd_calloc(1, sizeof(*lg));
    if (!lg)
        return NULL;
    lg->fmt = fmt;
    lg->min = min;
    pthread_mutex_init(&lg->mu, NULL);
    return lg;
}

int log_open_fd(struct metcd_log **out, enum log_format fmt, enum log_level min, int fd)
{
    struct metcd_log *lg = log_new(fmt, min);
    if (!lg)
        return LOG_ERR_NOMEM;
    lg->fd[0] = fd;
    lg->nfd = 1;
    *out = lg;
    return 0;
}

int log_open(struct metcd_log **out, enum log_format fmt, enum log_level min,
             const char *const *outputs, size_t n, char *errmsg, size_t errlen)
{
    if (n == 0 || n > LOG_MAX_OUTPUTS || (fmt == LOG_FMT_CAPNSLOG && n != 1)) {
        snprintf(errmsg, errlen, "unsupported number of log outputs: %zu", n);
        return LOG_ERR_INVAL;
    }
    struct metcd_log *lg = log_new(fmt, min);
    if (!lg)
        return LOG_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *o = outputs[i];
        int fd;
        bool own = false;
        if (strcmp(o, "stderr") == 0 || strcmp(o, "default") == 0) {
            fd = 2;
        } else if (strcmp(o, "stdout") == 0) {
            fd = 1;
        } else {
            fd = open(o, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
            if (fd < 0) {
                snprintf(errmsg, errlen, "open %s: %s", o, strerror(errno));
                lg->nfd = i;
                log_close(lg);
                return LOG_ERR_OPEN;
            }
            own = true;
        }
        lg->fd[i] = fd;
        lg->owned[i] = own;
        lg->nfd = i + 1;
    }
    *out = lg;
    return 0;
}

int log_open_config(struct metcd_log **out, const struct config *cfg, char *errmsg, size_t errlen)
{
    enum log_format fmt;
    enum log_level min;
    if (strcmp(cfg->logger, "zap") == 0)
        fmt = LOG_FMT_ZAP;
    else if (strcmp(cfg->logger, "capnslog") == 0)
        fmt = LOG_FMT_CAPNSLOG;
    else {
        snprintf(errmsg, errlen, "unknown logger option \"%s\"", cfg->logger);
        return LOG_ERR_INVAL;
    }
    if (cfg->debug && fmt == LOG_FMT_CAPNSLOG)
        min = LOG_LVL_DEBUG;
    else if (log_level_parse(cfg->log_level, &min)) {
        snprintf(errmsg, errlen, "unknown level \"%s\"", cfg->log_level);
        return LOG_ERR_INVAL;
    }
    static const char *const def[] = {"default"};
    const char *const *outs = cfg->log_outputs.n ? (const char *const *)cfg->log_outputs.v : def;
    size_t n = cfg->log_outputs.n ? cfg->log_outputs.n : 1;
    int rc = log_open(out, fmt, min, outs, n, errmsg, errlen);
    if (rc == 0 && fmt == LOG_FMT_CAPNSLOG && cfg->log_package_levels[0]) {
        char why[256];
        if (log_set_package_levels(*out, cfg->log_package_levels, why, sizeof(why)) != 0)
            log_printf(*out, LOG_LVL_WARN, "embed",
                       "couldn't parse log level string: %s, continuing with default levels", why);
    }
    return rc;
}

void log_close(struct metcd_log *lg)
{
    if (!lg)
        return;
    for (size_t i = 0; i < lg->nfd; i++)
        if (lg->owned[i])
            close(lg->fd[i]);
    pthread_mutex_destroy(&lg->mu);
    metcd_free(lg);
}

bool log_enabled(const struct metcd_log *lg, enum log_level lvl)
{
    return lvl >= (lg ? lg->min : LOG_LVL_INFO);
}

bool log_enabled_pkg(const struct metcd_log *lg, enum log_level lvl, const char *pkg)
{
    if (lg && pkg)
        for (size_t i = 0; i < lg->npkg; i++)
            if (strcmp(lg->pkg[i].pkg, pkg) == 0)
                return lvl >= lg->pkg[i].min;
    return log_enabled(lg, lvl);
}

/* capnslog's level names (and their first letters). */
static int capnslog_level(const char *s, size_t n, enum log_level *out)
{
    static const struct {
        const char *w;
        enum log_level l;
    } m[] = {{"CRITICAL", LOG_LVL_CRIT}, {"ERROR", LOG_LVL_ERROR}, {"WARNING", LOG_LVL_WARN},
             {"NOTICE", LOG_LVL_NOTICE}, {"INFO", LOG_LVL_INFO},   {"DEBUG", LOG_LVL_DEBUG},
             {"TRACE", LOG_LVL_DEBUG}};
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        if ((strlen(m[i].w) == n && strncmp(m[i].w, s, n) == 0) || (n == 1 && s[0] == m[i].w[0])) {
            *out = m[i].l;
            return 0;
        }
    return -1;
}

int log_set_package_levels(struct metcd_log *lg, const char *spec, char *errmsg, size_t errlen)
{
    /* Validate everything first: a bad spec changes nothing. */
    size_t count = 0;
    for (const char *p = spec; *p;) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        enum log_level l;
        if (!eq || eq == p || capnslog_level(eq + 1, n - (size_t)(eq + 1 - p), &l) != 0 ||
            (size_t)(eq - p) >= sizeof(lg->pkg[0].pkg)) {
            snprintf(errmsg, errlen, "bad log level format \"%.*s\"", (int)n, p);
            return LOG_ERR_INVAL;
        }
        if (!(eq - p == 1 && p[0] == '*'))
            count++;
        p += n;
        if (*p == ',')
            p++;
    }
    if (lg->npkg + count > LOG_MAX_PKG_LEVELS) {
        snprintf(errmsg, errlen, "too many package log levels (at most %d)", LOG_MAX_PKG_LEVELS);
        return LOG_ERR_INVAL;
    }
    for (const char *p = spec; *p;) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        enum log_level l = LOG_LVL_INFO;
        capnslog_level(eq + 1, n - (size_t)(eq + 1 - p), &l);
        size_t pl = (size_t)(eq - p);
        if (pl == 1 && p[0] == '*') {
            lg->min = l;
        } else {
            size_t i = 0;
            while (i < lg->npkg &&
                   !(strlen(lg->pkg[i].pkg) == pl && strncmp(lg->pkg[i].pkg, p, pl) == 0))
                i++;
            memcpy(lg->pkg[i].pkg, p, pl);
            lg->pkg[i].pkg[pl] = '\0';
            lg->pkg[i].min = l;
            if (i == lg->npkg)
                lg->npkg++;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

enum log_format log_format_of(const struct metcd_log *lg)
{
    return lg ? lg->fmt : LOG_FMT_CAPNSLOG;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere left to report a logging failure */
        p += w;
        n -= (size_t)w;
    }
}

void log_raw_stderr(const char *s, size_t n)
{
    write_all(2, s, n);
}

static void emit(struct metcd_log *lg, struct lbuf *b)
{
    if (b->oom) /* keep what fits, never drop the record */
        b->len = b->len ? b->len : 0;
    if (b->len == 0 || b->p[b->len - 1] != '\n') {
        if (b->oom || !lb_reserve(b, 1)) {
            if (b->len)
                b->p[b->len - 1] = '\n';
        } else {
            b->p[b->len++] = '\n';
        }
    }
    if (!lg) {
        write_all(2, b->p, b->len);
        return;
    }
    pthread_mutex_lock(&lg->mu);
    for (size_t i = 0; i < lg->nfd; i++)
        write_all(lg->fd[i], b->p, b->len);
    pthread_mutex_unlock(&lg->mu);
}

void log_timestamp_capnslog(char *buf, size_t len)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    char d[32];
    strftime(d, sizeof(d), "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf, len, "%s.%06ld", d, (long)tv.tv_usec);
}

void log_timestamp_zap(char *buf, size_t len)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    char d[32], z[40];
    strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
    long off = tm.tm_gmtoff;
    if (off == 0) {
        snprintf(z, sizeof(z), "Z");
    } else {
        char sign = off < 0 ? '-' : '+';
        if (off < 0)
            off = -off;
        snprintf(z, sizeof(z), "%c%02ld%02ld", sign, off / 3600, (off % 3600) / 60);
    }
    snprintf(buf, len, "%s.%03ld%s", d, (long)(tv.tv_usec / 1000), z);
}

static const char capn_letter[] = {'D', 'I', 'N', 'W', 'E', 'C'};
static const char *const zap_level[] = {"debug", "info", "info", "warn", "error", "fatal"};

static void capn_head(struct lbuf *b, enum log_level lvl, const char *pkg)
{
    char ts[48];
    log_timestamp_capnslog(ts, sizeof(ts));
    lb_printf(b, "%s %c | ", ts, capn_letter[lvl]);
    if (pkg && *pkg)
        lb_printf(b, "%s: ", pkg);
}

static void zap_head(struct lbuf *b, enum log_level lvl, const char *caller)
{
    char ts[48];
    log_timestamp_zap(ts, sizeof(ts));
    lb_printf(b, "{\"level\":\"%s\",\"ts\":\"%s\",\"caller\":\"", zap_level[lvl], ts);
    lb_json(b, caller ? caller : "");
    lb_puts(b, "\",\"msg\":\"");
}

/* Go's time.Duration.String for the common cases. */
static void go_duration(struct lbuf *b, int64_t ns)
{
    if (ns == 0) {
        lb_puts(b, "0s");
        return;
    }
    uint64_t u = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    if (ns < 0)
        lb_puts(b, "-");
    if (u < 1000) {
        lb_printf(b, "%" PRIu64 "ns", u);
        return;
    }
    if (u < 1000000) {
        lb_printf(b, "%g\xc2\xb5s", (double)u / 1e3);
        return;
    }
    if (u < 1000000000) {
        lb_printf(b, "%gms", (double)u / 1e6);
        return;
    }
    uint64_t h = u / 3600000000000ULL, rem = u % 3600000000000ULL;
    uint64_t m = rem / 60000000000ULL;
    double s = (double)(rem % 60000000000ULL) / 1e9;
    if (h)
        lb_printf(b, "%" PRIu64 "h%" PRIu64 "m", h, m);
    else if (m)
        lb_printf(b, "%" PRIu64 "m", m);
    char sb[32];
    snprintf(sb, sizeof(sb), "%.9f", s);
    char *e = sb + strlen(sb) - 1;
    while (*e == '0')
        *e-- = '\0';
    if (*e == '.')
        *e = '\0';
    lb_printf(b, "%ss", sb);
}

static void zap_fields(struct lbuf *b, const struct log_field *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lb_puts(b, ",\"");
        lb_json(b, f[i].key);
        lb_puts(b, "\":");
        switch (f[i].type) {
        case LOG_F_STR:
            lb_puts(b, "\"");
            lb_json(b, f[i].v.s ? f[i].v.s : "");
            lb_puts(b, "\"");
            break;
        case LOG_F_INT:
            lb_printf(b, "%" PRId64, f[i].v.i);
            break;
        case LOG_F_UINT:
            lb_printf(b, "%" PRIu64, f[i].v.u);
            break;
        case LOG_F_BOOL:
            lb_puts(b, f[i].v.b ? "true" : "false");
            break;
        case LOG_F_HEX:
            lb_printf(b, "\"%016" PRIx64 "\"", f[i].v.u);
            break;
        case LOG_F_DUR:
            lb_puts(b, "\"");
            go_duration(b, f[i].v.i);
            lb_puts(b, "\"");
            break;
        case LOG_F_STRS:
            lb_puts(b, "[");
            for (size_t j = 0; j < f[i].v.strs.n; j++) {
                lb_puts(b, j ? ",\"" : "\"");
                lb_json(b, f[i].v.strs.v[j]);
                lb_puts(b, "\"");
            }
            lb_puts(b, "]");
            break;
        }
    }
}

static void build(struct lbuf *b, enum log_format fmt, enum log_level lvl, const char *pkg,
                  const char *caller, const char *zap_msg, const struct log_field *fields,
                  size_t nfields, const char *fmt_s, va_list ap)
{
    if (fmt == LOG_FMT_ZAP) {
        zap_head(b, lvl, caller ? caller : pkg);
        if (zap_msg) {
            lb_json(b, zap_msg);
        } else {
            struct lbuf m;
            lb_init(&m);
            lb_vprintf(&m, fmt_s, ap);
            size_t l = m.len;
            while (l && m.p[l - 1] == '\n')
                m.p[--l] = '\0';
            lb_json(b, m.p);
            lb_free(&m);
        }
        lb_puts(b, "\"");
        zap_fields(b, fields, nfields);
        lb_puts(b, "}\n");
    } else {
        capn_head(b, lvl, pkg);
        lb_vprintf(b, fmt_s, ap);
    }
}

static void vrecord(struct metcd_log *lg, enum log_level lvl, const char *pkg, const char *caller,
                    const char *zap_msg, const struct log_field *fields, size_t nfields,
                    const char *fmt, va_list ap)
{
    if ((unsigned)lvl > LOG_LVL_CRIT)
        lvl = LOG_LVL_CRIT;
    if (!log_enabled_pkg(lg, lvl, pkg))
        return;
    struct lbuf b;
    lb_init(&b);
    build(&b, log_format_of(lg), lvl, pkg, caller, zap_msg, fields, nfields, fmt, ap);
    emit(lg, &b);
    lb_free(&b);
}

char *log_format_line(enum log_format fmt, enum log_level lvl, const char *pkg, const char *caller,
                      const char *zap_msg, const struct log_field *fields, size_t nfields,
                      const char *fmt_s, ...)
{
    if ((unsigned)lvl > LOG_LVL_CRIT)
        lvl = LOG_LVL_CRIT;
    struct lbuf b;
    lb_init(&b);
    va_list ap;
    va_start(ap, fmt_s);
    build(&b, fmt, lvl, pkg, caller, zap_msg, fields, nfields, fmt_s, ap);
    va_end(ap);
    if (b.len == 0 || b.p[b.len - 1] != '\n')
        lb_add(&b, "\n", 1);
    char *out = b.oom ? NULL : metcd_strdup(b.p);
    lb_free(&b);
    return out;
}

void log_printf(struct metcd_log *lg, enum log_level lvl, const char *pkg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrecord(lg, lvl, pkg, NULL, NULL, NULL, 0, fmt, ap);
    va_end(ap);
}

void log_event(struct metcd_log *lg, enum log_level lvl, const char *pkg, const char *caller,
               const char *zap_msg, const struct log_field *fields, size_t nfields, const char *fmt,
               ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrecord(lg, lvl, pkg, caller, zap_msg, fields, nfields, fmt, ap);
    va_end(ap);
}
