/* server/config/log.h - the member's logger: etcd 3.4's two formats.
 *
 * capnslog (etcd 3.4's default, `--logger capnslog`), one line per record:
 *     2026-11-23 15:56:57.889021 I | etcdserver: published {...} to cluster 9d77c969a38e041d
 * (local time with microseconds, level letter D I N W E C, package, message).
 *
 * zap (`--logger zap`), one JSON object per line, fields in this order:
 *     {"level":"info","ts":"2026-11-23T17:07:07.273Z","caller":"etcdserver/server.go:2051",
 *      "msg":"published local member to cluster through raft", <extra fields>}
 * (ts: local time, milliseconds, zone as Go's "Z0700"; levels debug, info,
 * warn, error, fatal).
 *
 * Every record is formatted into one buffer and written with write(2) to each
 * output while a mutex is held: lines never interleave between threads (the
 * WAL thread logs too), and nothing sits in a stdio buffer when the process
 * dies. A NULL logger writes capnslog lines to stderr at level info.
 */
#ifndef METCD_SERVER_CONFIG_LOG_H
#define METCD_SERVER_CONFIG_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;

enum log_err {
    LOG_ERR_NOMEM = -1650,
    LOG_ERR_INVAL = -1651, /* unknown format, level or output combination */
    LOG_ERR_OPEN = -1652,  /* an output file could not be opened (errmsg says which) */
};

const char *log_strerror(int err);

/* Ordered by severity. NOTICE exists in capnslog only (zap prints "info"). */
enum log_level {
    LOG_LVL_DEBUG = 0,
    LOG_LVL_INFO,
    LOG_LVL_NOTICE,
    LOG_LVL_WARN,
    LOG_LVL_ERROR,
    LOG_LVL_CRIT, /* capnslog C, zap "fatal"; the caller decides whether to exit */
};

enum log_format {
    LOG_FMT_CAPNSLOG = 0,
    LOG_FMT_ZAP,
};

struct metcd_log;

/* Opens a logger writing to each of outputs ("stderr", "default" = stderr,
 * "stdout", or a file path opened for append, created 0666 & ~umask).
 * outputs is borrowed. Records below min are dropped. Caller closes with
 * log_close. */
int log_open(struct metcd_log **out, enum log_format fmt, enum log_level min,
             const char *const *outputs, size_t n, char *errmsg, size_t errlen);

/* Opens the logger described by a parsed config (--logger, --log-level,
 * --debug, --log-outputs, --log-package-levels). */
int log_open_config(struct metcd_log **out, const struct config *cfg, char *errmsg, size_t errlen);

/* Logger on one already-open descriptor (borrowed: not closed by log_close).
 * For tests and for tools. */
int log_open_fd(struct metcd_log **out, enum log_format fmt, enum log_level min, int fd);

/* Closes files the logger opened and frees it; NULL is a no-op. */
void log_close(struct metcd_log *lg);

/* Maps an etcd --log-level word (debug, info, warn, error, dpanic, panic,
 * fatal) to a level; -1 if unknown. */
int log_level_parse(const char *s, enum log_level *out);

bool log_enabled(const struct metcd_log *lg, enum log_level lvl);
/* Same, honouring per-package levels (--log-package-levels). */
bool log_enabled_pkg(const struct metcd_log *lg, enum log_level lvl, const char *pkg);

/* capnslog's per-package levels: "pkg=LEVEL,pkg2=LEVEL" with CRITICAL, ERROR,
 * WARNING, NOTICE, INFO, DEBUG, TRACE (or their first letter); "*" sets the
 * global level. A bad spec changes nothing and returns LOG_ERR_INVAL.
 * log_open_config applies --log-package-levels (capnslog only, as etcd), and
 * logs etcd's warning when it cannot be parsed. Not thread-safe: call before
 * other threads log. */
int log_set_package_levels(struct metcd_log *lg, const char *spec, char *errmsg, size_t errlen);
enum log_format log_format_of(const struct metcd_log *lg);

/* A record whose text is the same in both formats: capnslog prints
 * "<pkg>: <text>", zap {"caller":pkg,"msg":text}. */
void log_printf(struct metcd_log *lg, enum log_level lvl, const char *pkg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Structured fields for zap records. Strings are borrowed for the call. */
enum log_field_type {
    LOG_F_STR,
    LOG_F_INT,
    LOG_F_UINT,
    LOG_F_BOOL,
    LOG_F_HEX,  /* uint64 printed as a 16-digit lowercase hex string (member/cluster ids) */
    LOG_F_DUR,  /* int64 nanoseconds printed like Go's Duration.String ("1.5s") */
    LOG_F_STRS, /* array of strings */
};

struct log_field {
    const char *key;
    enum log_field_type type;
    union {
        const char *s;
        int64_t i;
        uint64_t u;
        bool b;
        struct {
            const char *const *v;
            size_t n;
        } strs;
    } v;
};

#define LOG_STR(k, x) ((struct log_field){.key = (k), .type = LOG_F_STR, .v.s = (x)})
#define LOG_INT(k, x) ((struct log_field){.key = (k), .type = LOG_F_INT, .v.i = (int64_t)(x)})
#define LOG_UINT(k, x) ((struct log_field){.key = (k), .type = LOG_F_UINT, .v.u = (uint64_t)(x)})
#define LOG_BOOL(k, x) ((struct log_field){.key = (k), .type = LOG_F_BOOL, .v.b = (x)})
#define LOG_HEX(k, x) ((struct log_field){.key = (k), .type = LOG_F_HEX, .v.u = (uint64_t)(x)})
#define LOG_DUR(k, x) ((struct log_field){.key = (k), .type = LOG_F_DUR, .v.i = (int64_t)(x)})
#define LOG_STRS(k, arr, cnt)                                                                      \
    ((struct log_field){.key = (k), .type = LOG_F_STRS, .v.strs = {(arr), (cnt)}})

/* One event, written the way etcd writes it in each format: in capnslog mode
 * the printf text (`fmt`) after "<pkg>: "; in zap mode `zap_msg` (or the
 * printf text when zap_msg is NULL) with "caller" (or pkg when NULL) and the
 * fields appended in order. Example (etcd's milestone):
 *   log_event(lg, LOG_LVL_INFO, "etcdserver", "etcdserver/server.go:2051",
 *             "published local member to cluster through raft", f, 3,
 *             "published {Name:%s ClientURLs:[%s]} to cluster %016" PRIx64, ...);
 */
void log_event(struct metcd_log *lg, enum log_level lvl, const char *pkg, const char *caller,
               const char *zap_msg, const struct log_field *fields, size_t nfields, const char *fmt,
               ...) __attribute__((format(printf, 8, 9)));

/* The same record as one '\n'-terminated line in a new string (caller frees
 * with metcd_free; NULL on OOM), for output that does not go through a
 * logger (e.g. errors printed before the logger exists). */
char *log_format_line(enum log_format fmt, enum log_level lvl, const char *pkg, const char *caller,
                      const char *zap_msg, const struct log_field *fields, size_t nfields,
                      const char *fmt_s, ...) __attribute__((format(printf, 8, 9)));

/* "2006-01-02 15:04:05.000000" (local time) / "2006-01-02T15:04:05.000Z0700". */
void log_timestamp_capnslog(char *buf, size_t len);
void log_timestamp_zap(char *buf, size_t len);

/* Writes bytes to stderr unbuffered (for etcd's raw "[WARNING] ..." lines). */
void log_raw_stderr(const char *s, size_t n);

#endif
