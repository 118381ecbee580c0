/* tools/bench/bench.h - metcd-bench: a load generator for etcd's v3 API.
 *
 * Two halves, kept apart so the arithmetic can be tested without a server:
 *   - the report (report.c): latency samples and error counts of one run,
 *     and the summary computed from them (total, slowest, fastest, average,
 *     stddev, requests/s, a response time histogram, percentiles, errors),
 *     printed as text or JSON;
 *   - the options (options.c): command-line parsing with one clear message
 *     per bad flag.
 * The driver (main.c) runs the calls on one libevent loop (DESIGN.md,
 * Threads) and feeds the report.
 *
 * Errors: functions returning int give 0 or a negative `enum bench_error`
 * (range -4000..-4049); bench_strerror() names it.
 */
#ifndef METCD_TOOLS_BENCH_H
#define METCD_TOOLS_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum bench_error {
    BENCH_OK = 0,
    BENCH_ERR_NOMEM = -4000, /* allocation failed */
    BENCH_ERR_INVAL = -4001, /* bad argument */
    BENCH_ERR_FULL = -4002,  /* sample capacity reached (nothing recorded) */
    BENCH_ERR_IO = -4003,    /* writing the output failed */
};

/* Static text for an enum bench_error value (never NULL). */
const char *bench_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Report                                                                   */

/* Percentiles reported, in percent, ascending. */
#define BENCH_N_PCTS 8
extern const double bench_pcts[BENCH_N_PCTS];

/* Buckets of the response time histogram. */
#define BENCH_N_BUCKETS 10

/* Distinct error messages kept; further distinct messages are counted
 * under BENCH_OTHER_ERRORS (the table is bounded like every queue). */
#define BENCH_MAX_ERROR_KINDS 32
#define BENCH_OTHER_ERRORS "(other errors)"

struct bench_report;

struct bench_error_count {
    const char *msg; /* borrowed from the report, valid until it is freed */
    uint64_t count;
};

/* What a run comes to. Times are in seconds. With no successful request
 * every latency figure is 0 and the histogram is empty. */
struct bench_summary {
    uint64_t ok;     /* successful requests (latency samples) */
    uint64_t failed; /* requests that ended with an error */
    double total;    /* wall time of the run */
    double slowest, fastest, average;
    double stddev; /* population standard deviation of the latencies */
    double rps;    /* successful requests per second of wall time */
    /* Histogram: BENCH_N_BUCKETS equal-width buckets from fastest to
     * slowest. Bucket i counts latencies in (upper[i-1], upper[i]]; the
     * first bucket also holds `fastest` itself, the last ends at slowest. */
    double upper[BENCH_N_BUCKETS];
    uint64_t count[BENCH_N_BUCKETS];
    /* pct[i]: the smallest latency such that at least bench_pcts[i] percent
     * of the samples are <= it (nearest rank). */
    double pct[BENCH_N_PCTS];
    /* Errors by message, most frequent first (ties: first seen first). */
    struct bench_error_count errors[BENCH_MAX_ERROR_KINDS + 1];
    size_t n_errors;
};

/* Creates a report that holds up to `capacity` latency samples (allocated
 * now, so recording never allocates). Caller frees with bench_report_free. */
int bench_report_new(struct bench_report **out, size_t capacity);

/* Frees the report and every string it holds. Idempotent on NULL. */
void bench_report_free(struct bench_report *r);

/* Records one successful request that took latency_ns nanoseconds.
 * BENCH_ERR_FULL when `capacity` samples are already recorded. */
int bench_report_add(struct bench_report *r, uint64_t latency_ns);

/* Records one failed request. msg is copied the first time it is seen;
 * after BENCH_MAX_ERROR_KINDS distinct messages, new ones are counted under
 * BENCH_OTHER_ERRORS. A NULL msg counts as "". An allocation failure while
 * copying also counts the request under BENCH_OTHER_ERRORS, so a failure
 * is never lost. */
void bench_report_error(struct bench_report *r, const char *msg);

/* Number of requests recorded so far (successes + failures). */
uint64_t bench_report_done(const struct bench_report *r);

/* Computes the summary of the samples recorded so far over a run of
 * total_ns wall nanoseconds. Sorts the samples in place (recording may go
 * on afterwards). s->errors point into the report. */
void bench_report_summarize(struct bench_report *r, uint64_t total_ns, struct bench_summary *s);

/* Prints the summary as text: Summary, Response time histogram, Latency
 * distribution, Error distribution. BENCH_ERR_IO when the write fails. */
int bench_summary_print(const struct bench_summary *s, FILE *out);

/* Prints the summary as one JSON object followed by a newline. `extra`
 * (optional, may be NULL) is a JSON object text whose members are merged
 * in first (the driver passes the run's parameters). BENCH_ERR_INVAL when
 * extra is not a JSON object; BENCH_ERR_IO when the write fails. */
int bench_summary_print_json(const struct bench_summary *s, const char *extra, FILE *out);

/* --compare: the same load against two servers. Prints a table with one
 * row each for Requests/sec, Average, p50, p90, p99, p99.9 (milliseconds)
 * and errors (failed requests), columns `first`, `second`, first/second and
 * which side is better (higher requests/s, lower latency and errors; "same"
 * when equal, "-" when there is nothing to compare). A ratio whose
 * denominator is 0 prints "-". BENCH_ERR_IO when the write fails. */
int bench_compare_print(const struct bench_summary *first, const struct bench_summary *second,
                        FILE *out);

/* --compare --json: one JSON object {"first": {...}, "second": {...},
 * "ratios": {...}, "better": {...}} followed by a newline. first/second are
 * what bench_summary_print_json prints for each run (extra_first and
 * extra_second, optional, merged in as there); "ratios" holds first/second
 * for requests_per_sec, average, p50, p90, p99, p99.9 and errors (null
 * when the denominator is 0); "better" names "first", "second" or "same"
 * for each (null when either run had no success, for the latency rows).
 * BENCH_ERR_INVAL when an extra is not a JSON object, BENCH_ERR_IO when the
 * write fails. */
int bench_compare_print_json(const struct bench_summary *first, const char *extra_first,
                             const struct bench_summary *second, const char *extra_second,
                             FILE *out);

/* ------------------------------------------------------------------------ */
/* Options                                                                  */

enum bench_mode {
    BENCH_PUT,
    BENCH_RANGE,
    BENCH_WATCH, /* watchers on --keys keys, then puts to them (watch.c) */
    BENCH_LEASE, /* --leases leases kept alive over --clients streams (lease.c) */
    BENCH_TXN,   /* a Txn of --txn-ops puts per request (etcd's benchmark txn-put) */
    BENCH_MIXED, /* a Range with probability --read-ratio, else a Put */
};

/* Most puts in one txn (etcd's default --max-txn-ops). */
#define BENCH_MAX_TXN_OPS 128

#define BENCH_MAX_ENDPOINTS 16

struct bench_options {
    enum bench_mode mode;
    /* Endpoints as given ("host:port" or "http://host:port"); each points
     * into `endpoints_buf`, which the options own. */
    const char *endpoints[BENCH_MAX_ENDPOINTS];
    size_t n_endpoints;
    char endpoints_buf[1024];
    uint32_t conns;      /* gRPC connections (1..1000) */
    uint32_t clients;    /* requests in flight (1..100000) */
    uint64_t total;      /* requests to send (1..100000000) */
    uint32_t key_size;   /* bytes per key (1..65536) */
    uint32_t val_size;   /* bytes per value, put only (0..16 MiB) */
    uint64_t key_space;  /* keys drawn uniformly from this many; 0: sequential */
    bool serializable;   /* range: --consistency s */
    double rate;         /* requests/s over all clients; 0: as fast as possible */
    uint32_t timeout_ms; /* per request (0: none) */
    bool json;           /* --json: print a JSON summary instead of text */
    bool progress;       /* progress bar (off with --no-progress) */
    uint64_t seed;       /* random key choice */
    /* watch mode: --watchers watchers over --streams Watch streams (stream i
     * on connection i mod --conns), watcher i on key i mod --keys; then
     * --total puts (--clients in flight, --rate puts/s) round-robin over
     * the keys, on a connection of their own. */
    uint32_t watchers;      /* 1..10000000 (default 100000) */
    uint32_t keys;          /* 1..10000000 (default 1000) */
    uint32_t streams;       /* 1..100000 (default 100) */
    int64_t server_pid;     /* VmRSS and CPU of this process; 0: none, -1: find it by port */
    uint32_t settle_ms;     /* wait after the creates before reading VmRSS (default 2000) */
    uint32_t drain_ms;      /* wait for events after the last put (default 10000) */
    uint64_t max_samples;   /* latency samples kept (default 20000000; later ones counted) */
    /* lease mode: --leases leases of --ttl seconds, kept alive by --clients
     * LeaseKeepAlive streams (one keep-alive in flight each), --total
     * keep-alives in all */
    uint32_t leases;        /* 1..10000000 (default 100000) */
    int64_t ttl;            /* seconds, 1..9000000000 (default 60) */
    /* txn mode: each request puts --txn-ops keys (key numbers k, k+1, ...
     * k+N-1: the first drawn like a put's, modulo --key-space), after one
     * always-true compare version(first key) > -1 with --txn-compare */
    uint32_t txn_ops; /* 1..BENCH_MAX_TXN_OPS (default 1) */
    bool txn_compare;
    /* mixed mode: a Range (--consistency) with probability read_ratio */
    double read_ratio; /* 0..1 (default 0.9) */
    /* --compare: the same load (seed, flags) against these endpoints after
     * the run against `endpoints`; 0 entries when not given. They point
     * into `compare_buf`. put, range, txn and mixed only. */
    const char *compare[BENCH_MAX_ENDPOINTS];
    size_t n_compare;
    char compare_buf[1024];
};

/* Parses argv (argv[0] is the program, argv[1] the mode) into *o.
 * Returns 0, 1 when help was asked for (usage printed to out), or 2 after
 * printing one message naming the bad flag or mode to err: the caller exits
 * with that status. Flags take "--flag value" or "--flag=value". */
int bench_options_parse(struct bench_options *o, int argc, char **argv, FILE *out, FILE *err);

/* Prints the usage text. */
void bench_usage(FILE *out);

/* Writes key number `n` into buf (key_size bytes, no NUL): the decimal
 * digits of n left-padded with '0'. BENCH_ERR_INVAL when n has more digits
 * than key_size. */
int bench_format_key(char *buf, uint32_t key_size, uint64_t n);

/* Number of decimal digits of n (1 for 0). */
uint32_t bench_digits(uint64_t n);

/* ------------------------------------------------------------------------ */
/* Watch mode (watch.c) and the server process it measures (proc.c)        */

/* Runs the watch benchmark described by o (o->mode == BENCH_WATCH) and
 * prints its report; returns the exit status (0, 1, 130). */
int bench_watch_main(const struct bench_options *o);

/* Runs the lease benchmark (o->mode == BENCH_LEASE; lease.c) and prints
 * its report; returns the exit status (0, 1, 130). */
int bench_lease_main(const struct bench_options *o);

/* VmRSS of process pid in KiB, from /proc/<pid>/status: 0 or a negative
 * enum bench_error (BENCH_ERR_IO when it cannot be read). */
int bench_proc_rss_kib(int64_t pid, uint64_t *kib);

/* utime + stime of process pid in seconds, from /proc/<pid>/stat. */
int bench_proc_cpu_secs(int64_t pid, double *secs);

/* The process that listens on TCP port `port` (IPv4 or IPv6, any
 * address): the owner of the socket inode found in /proc/net/tcp{,6}.
 * BENCH_ERR_INVAL when there is none or it is not visible to us. */
int bench_proc_find_listener(uint16_t port, int64_t *pid);

/* Decodes the little-endian 8-byte send time metcd-bench watch puts at the
 * start of each value from a packed etcdserverpb.WatchResponse. Counts its
 * events into *nevents, calls fn(arg, send_ns) for each event whose value
 * carries a time, and sets *created / *canceled and *watch_id from the
 * response's fields. BENCH_ERR_INVAL when the bytes are not a valid
 * encoding (fields it does not need are skipped, not checked). */
int bench_watch_decode(const uint8_t *msg, size_t len, uint64_t *nevents, bool *created,
                       bool *canceled, int64_t *watch_id, void (*fn)(void *arg, uint64_t send_ns),
                       void *arg);

/* metcd-bench id (id.c): load on the ID service or the embedded library,
 * with flags of its own (argv[1] is "id"). Returns the exit status. */
int bench_id_main(int argc, char **argv);

#endif
