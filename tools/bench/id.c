/* tools/bench/id.c - metcd-bench id: load on the ID service
 * (idgenpb.IdGen, idgen/idgenpb/idgen.proto) or on the embedded library
 * (idgen/client).
 *
 *   segment    Next(tag, --count) calls, --clients in flight over --conns
 *              connections (the tag is created first when absent);
 *   snowflake  Snowflake(--count) calls, the same way;
 *   library    --clients threads drawing --count IDs per call from one
 *              library worker (idgen_client_next_n), no RPC per ID.
 *
 * Prints the latency summary of the calls (report.c) and the IDs/s, and
 * checks every ID came once (the ranges of all answers sorted, no overlap).
 * One loop, as main.c; options of its own (this mode is wired in by one
 * line in main.c). */
#include "tools/bench/bench.h"

#include "common/mem.h"
#include "idgen/client/idgen_client.h"
#include "idgen/idgenpb/idgen.pb-c.h"
#include "server/rpc/rpc.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum id_kind { ID_SEGMENT, ID_SNOWFLAKE, ID_LIBRARY };

struct id_opts {
    int kind;
    char endpoints_buf[1024];
    const char *endpoints[BENCH_MAX_ENDPOINTS];
    size_t n_endpoints;
    uint32_t conns, clients;
    uint64_t total; /* calls */
    uint64_t count; /* IDs per call */
    char tag[129];
    int64_t step; /* for a tag created here */
    uint32_t timeout_ms;
    bool json, check;
    int64_t server_pid; /* its CPU time over the run; 0: none */
};

struct id_range {
    uint64_t start, count;
};

struct id_bench;

struct id_slot {
    struct id_bench *b;
    uint32_t conn;
    uint64_t start_ns;
};

struct id_bench {
    struct id_opts o;
    struct event_base *base;
    struct rpc_client **conns;
    struct id_slot *slots;
    struct bench_report *rep;
    uint64_t issued, completed, ids;
    uint64_t start_ns, end_ns;
    struct id_range *ranges; /* for the check; bounded by cap */
    size_t nranges, cap;
    bool ranges_full;
    bool stopping, interrupted;
    double cpu0, cpu1; /* the server's CPU seconds at start and end (-1: unknown) */
    struct event *sigint_ev;
    pthread_mutex_t lock; /* library mode: the threads share the report and ranges */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- options --------------------------------------------------------------------------- */

static void id_usage(FILE *out)
{
    fputs("Usage: metcd-bench id [flags]\n"
          "\n"
          "Draws IDs from metcd's ID service (or the embedded library) and prints the\n"
          "latency of the calls, the IDs/s, and whether any ID came twice.\n"
          "\n"
          "Flags:\n"
          "  --kind K           segment (Next), snowflake (Snowflake) or library (the\n"
          "                     idgen/client worker in this process) (default segment)\n"
          "  --endpoints LIST   comma-separated host:port (default 127.0.0.1:2379)\n"
          "  --conns N          gRPC connections (default 8)\n"
          "  --clients N        calls in flight (library: threads) (default 64)\n"
          "  --total N          calls (default 200000)\n"
          "  --count N          IDs per call (default 1)\n"
          "  --tag NAME         segment tag, created when absent (default bench)\n"
          "  --step N           the step of a tag created here (default 1000)\n"
          "  --timeout-ms N     deadline of each call (default 10000)\n"
          "  --server-pid PID   report the CPU time of that process (the member) per call\n"
          "  --no-check         do not keep the IDs to look for duplicates\n"
          "  --json             print the summary as one JSON object\n",
          out);
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!s || !s[0] || s[0] == '-')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int id_bad(const char *flag, const char *val, const char *want)
{
    fprintf(stderr, "metcd-bench: invalid value \"%s\" for %s: %s\n", val ? val : "", flag, want);
    return 2;
}

static int split(struct id_opts *o, const char *val)
{
    if (!val[0] || strlen(val) >= sizeof(o->endpoints_buf))
        return -1;
    strcpy(o->endpoints_buf, val);
    o->n_endpoints = 0;
    for (char *p = o->endpoints_buf; p;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = 0;
        if (!p[0] || o->n_endpoints == BENCH_MAX_ENDPOINTS)
            return -1;
        o->endpoints[o->n_endpoints++] = p;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

/* 0, 1 (help printed) or 2 (bad flag, reported). */
static int id_parse(struct id_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->kind = ID_SEGMENT;
    split(o, "127.0.0.1:2379");
    o->conns = 8;
    o->clients = 64;
    o->total = 200000;
    o->count = 1;
    strcpy(o->tag, "bench");
    o->step = 1000;
    o->timeout_ms = 10000;
    o->check = true;
    for (int i = 2; i < argc; i++) {
        char name[64];
        const char *val = NULL;
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        if (eq && (size_t)(eq - a) < sizeof(name)) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = 0;
            val = eq + 1;
        } else {
            snprintf(name, sizeof(name), "%s", a);
        }
        if (!strcmp(name, "-h") || !strcmp(name, "--help")) {
            id_usage(stdout);
            return 1;
        }
        if (!strcmp(name, "--json")) {
            o->json = true;
            continue;
        }
        if (!strcmp(name, "--no-check")) {
            o->check = false;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "metcd-bench: flag needs an argument: %s\n", name);
                return 2;
            }
            val = argv[++i];
        }
        uint64_t v;
        if (!strcmp(name, "--kind")) {
            if (!strcmp(val, "segment"))
                o->kind = ID_SEGMENT;
            else if (!strcmp(val, "snowflake"))
                o->kind = ID_SNOWFLAKE;
            else if (!strcmp(val, "library"))
                o->kind = ID_LIBRARY;
            else
                return id_bad(name, val, "want segment, snowflake or library");
        } else if (!strcmp(name, "--endpoints")) {
            if (split(o, val) != 0)
                return id_bad(name, val, "want host:port[,host:port...] (at most 16)");
        } else if (!strcmp(name, "--conns")) {
            if (parse_u64(val, 1, 1000, &v) != 0)
                return id_bad(name, val, "want an integer in 1..1000");
            o->conns = (uint32_t)v;
        } else if (!strcmp(name, "--clients")) {
            if (parse_u64(val, 1, 100000, &v) != 0)
                return id_bad(name, val, "want an integer in 1..100000");
            o->clients = (uint32_t)v;
        } else if (!strcmp(name, "--total")) {
            if (parse_u64(val, 1, 1000000000, &v) != 0)
                return id_bad(name, val, "want an integer in 1..1000000000");
            o->total = v;
        } else if (!strcmp(name, "--count")) {
            if (parse_u64(val, 1, 100000, &v) != 0)
                return id_bad(name, val, "want an integer in 1..100000");
            o->count = v;
        } else if (!strcmp(name, "--tag")) {
            if (strlen(val) >= sizeof(o->tag) || !idgen_tag_valid(val, strlen(val)))
                return id_bad(name, val, "want 1..128 characters of [A-Za-z0-9_.:-]");
            strcpy(o->tag, val);
        } else if (!strcmp(name, "--step")) {
            if (parse_u64(val, 1, INT64_MAX / 4, &v) != 0)
                return id_bad(name, val, "want a positive integer");
            o->step = (int64_t)v;
        } else if (!strcmp(name, "--server-pid")) {
            if (parse_u64(val, 1, INT32_MAX, &v) != 0)
                return id_bad(name, val, "want a process id");
            o->server_pid = (int64_t)v;
        } else if (!strcmp(name, "--timeout-ms")) {
            if (parse_u64(val, 0, 3600000, &v) != 0)
                return id_bad(name, val, "want milliseconds in 0..3600000");
            o->timeout_ms = (uint32_t)v;
        } else {
            fprintf(stderr, "metcd-bench: unknown flag: %s\n", name);
            return 2;
        }
    }
    if (o->kind != ID_LIBRARY && o->clients < o->conns) {
        fprintf(stderr,
                "metcd-bench: --clients (%" PRIu32 ") must be at least --conns (%" PRIu32 ")\n",
                o->clients, o->conns);
        return 2;
    }
    return 0;
}

/* utime + stime of pid in seconds, -1 when unknown (proc.c). */
static double cpu_secs(int64_t pid)
{
    double secs;
    return pid > 0 && bench_proc_cpu_secs(pid, &secs) == 0 ? secs : -1;
}

/* ---- recording -------------------------------------------------------------------------- */

static void keep_range(struct id_bench *b, uint64_t start, uint64_t count)
{
    b->ids += count;
    if (!b->o.check || b->ranges_full)
        return;
    if (b->nranges > 0 &&
        b->ranges[b->nranges - 1].start + b->ranges[b->nranges - 1].count == start) {
        b->ranges[b->nranges - 1].count += count;
        return;
    }
    if (b->nranges == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1 << 16;
        struct id_range *v =
            nc <= ((size_t)1 << 28) ? metcd_realloc(b->ranges, nc * sizeof(*v)) : NULL;
        if (!v) {
            b->ranges_full = true; /* the check is skipped, and said so */
            return;
        }
        b->ranges = v;
        b->cap = nc;
    }
    b->ranges[b->nranges++] = (struct id_range){start, count};
}

static int cmp_range(const void *a, const void *b)
{
    const struct id_range *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

/* IDs that came more than once (0 when none). */
static uint64_t duplicates(struct id_bench *b)
{
    qsort(b->ranges, b->nranges, sizeof(*b->ranges), cmp_range);
    uint64_t dup = 0, end = 0;
    for (size_t i = 0; i < b->nranges; i++) {
        const struct id_range *r = &b->ranges[i];
        if (i > 0 && r->start < end) {
            uint64_t e = r->start + r->count;
            dup += (e < end ? e : end) - r->start;
        }
        if (i == 0 || r->start + r->count > end)
            end = r->start + r->count;
    }
    return dup;
}

/* ---- the service load ------------------------------------------------------------------ */

static void slot_issue(struct id_slot *s);

static void finish(struct id_bench *b)
{
    b->stopping = true;
    b->end_ns = now_ns();
    event_base_loopbreak(b->base);
}

static void on_answer(const ProtobufCMessage *resp, enum rpc_code code, const char *msg, void *data)
{
    struct id_slot *s = data;
    struct id_bench *b = s->b;
    if (b->stopping)
        return;
    uint64_t lat = now_ns() - s->start_ns;
    if (code == RPC_CODE_OK && resp) {
        size_t n;
        Idgenpb__IdRange **rs;
        if (b->o.kind == ID_SEGMENT) {
            const Idgenpb__NextResponse *r = (const Idgenpb__NextResponse *)resp;
            n = r->n_ranges;
            rs = r->ranges;
        } else {
            const Idgenpb__SnowflakeResponse *r = (const Idgenpb__SnowflakeResponse *)resp;
            n = r->n_ranges;
            rs = r->ranges;
        }
        for (size_t i = 0; i < n; i++)
            keep_range(b, rs[i]->start, rs[i]->count);
        bench_report_add(b->rep, lat);
    } else {
        char text[512];
        snprintf(text, sizeof(text), "%s: %s", rpc_code_name(code), msg && msg[0] ? msg : "-");
        bench_report_error(b->rep, text);
    }
    if (++b->completed == b->o.total) {
        finish(b);
        return;
    }
    slot_issue(s);
}

static void slot_issue(struct id_slot *s)
{
    struct id_bench *b = s->b;
    while (b->issued < b->o.total && !b->stopping) {
        b->issued++;
        s->start_ns = now_ns();
        Idgenpb__NextRequest next = IDGENPB__NEXT_REQUEST__INIT;
        Idgenpb__SnowflakeRequest sf = IDGENPB__SNOWFLAKE_REQUEST__INIT;
        int rc;
        if (b->o.kind == ID_SEGMENT) {
            next.tag = b->o.tag;
            next.count = b->o.count;
            rc = rpc_client_unary(b->conns[s->conn], "/idgenpb.IdGen/Next", &next.base,
                                  &idgenpb__next_response__descriptor, NULL, 0, b->o.timeout_ms,
                                  on_answer, s);
        } else {
            sf.count = b->o.count;
            rc = rpc_client_unary(b->conns[s->conn], "/idgenpb.IdGen/Snowflake", &sf.base,
                                  &idgenpb__snowflake_response__descriptor, NULL, 0,
                                  b->o.timeout_ms, on_answer, s);
        }
        if (rc == 0)
            return;
        char text[128];
        snprintf(text, sizeof(text), "client: %s", rpc_strerror(rc));
        bench_report_error(b->rep, text);
        if (++b->completed == b->o.total) {
            finish(b);
            return;
        }
    }
}

struct sync_call {
    bool done;
    enum rpc_code code;
    char msg[256];
};

static void on_sync(const ProtobufCMessage *resp, enum rpc_code code, const char *msg, void *data)
{
    (void)resp;
    struct sync_call *c = data;
    c->done = true;
    c->code = code;
    snprintf(c->msg, sizeof(c->msg), "%s", msg ? msg : "");
}

/* One call on every connection before timing (dials them), and the tag. */
static int warm_up(struct id_bench *b)
{
    for (uint32_t i = 0; i < b->o.conns; i++) {
        struct sync_call c = {0};
        int rc;
        if (i == 0 && b->o.kind == ID_SEGMENT) {
            Idgenpb__CreateTagRequest req = IDGENPB__CREATE_TAG_REQUEST__INIT;
            req.tag = b->o.tag;
            req.start = 1;
            req.step = b->o.step;
            req.description = (char *)"metcd-bench id";
            rc = rpc_client_unary(b->conns[i], "/idgenpb.IdGen/CreateTag", &req.base,
                                  &idgenpb__create_tag_response__descriptor, NULL, 0, 10000,
                                  on_sync, &c);
        } else {
            Idgenpb__DecodeRequest req = IDGENPB__DECODE_REQUEST__INIT;
            rc = rpc_client_unary(b->conns[i], "/idgenpb.IdGen/Decode", &req.base,
                                  &idgenpb__decode_response__descriptor, NULL, 0, 10000, on_sync,
                                  &c);
        }
        if (rc != 0) {
            fprintf(stderr, "metcd-bench: cannot start a call: %s\n", rpc_strerror(rc));
            return -1;
        }
        while (!c.done)
            if (event_base_loop(b->base, EVLOOP_ONCE) != 0)
                break;
        if (!c.done || (c.code != RPC_CODE_OK && c.code != RPC_CODE_ALREADY_EXISTS)) {
            fprintf(stderr, "metcd-bench: connection %" PRIu32 " (endpoint %s): %s: %s\n", i,
                    b->o.endpoints[i % b->o.n_endpoints], rpc_code_name(c.code), c.msg);
            return -1;
        }
    }
    return 0;
}

static void on_sigint(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct id_bench *b = arg;
    b->interrupted = true;
    finish(b);
}

static int run_service(struct id_bench *b)
{
    const struct id_opts *o = &b->o;
    b->base = event_base_new();
    b->conns = metcd_calloc(o->conns, sizeof(*b->conns));
    b->slots = metcd_calloc(o->clients, sizeof(*b->slots));
    if (!b->base || !b->conns || !b->slots)
        return -1;
    const char *eps[BENCH_MAX_ENDPOINTS];
    for (uint32_t i = 0; i < o->conns; i++) {
        for (size_t j = 0; j < o->n_endpoints; j++)
            eps[j] = o->endpoints[(i + j) % o->n_endpoints];
        struct rpc_client_config cfg = {.endpoints = eps,
                                        .n_endpoints = o->n_endpoints,
                                        .max_pending_calls = o->clients / o->conns + 2};
        int rc = rpc_client_new(&b->conns[i], b->base, &cfg);
        if (rc != 0) {
            fprintf(stderr, "metcd-bench: cannot create gRPC client: %s\n", rpc_strerror(rc));
            return -1;
        }
    }
    b->sigint_ev = evsignal_new(b->base, SIGINT, on_sigint, b);
    if (!b->sigint_ev || event_add(b->sigint_ev, NULL) != 0 || warm_up(b) != 0)
        return -1;
    b->cpu0 = cpu_secs(o->server_pid);
    b->start_ns = now_ns();
    for (uint32_t i = 0; i < o->clients && !b->stopping; i++) {
        b->slots[i] = (struct id_slot){.b = b, .conn = i % o->conns};
        slot_issue(&b->slots[i]);
    }
    if (!b->stopping)
        event_base_dispatch(b->base);
    if (!b->end_ns)
        b->end_ns = now_ns();
    b->cpu1 = cpu_secs(o->server_pid);
    return 0;
}

/* ---- the library load -------------------------------------------------------------------- */

struct lib_thread {
    struct id_bench *b;
    idgen_client *c;
    pthread_t th;
    uint64_t calls;
    uint64_t *lat; /* per call, merged into the report afterwards */
    size_t nlat;
    struct id_range *rs;
    size_t nrs, caprs;
    int err;
};

static void *lib_run(void *arg)
{
    struct lib_thread *t = arg;
    struct id_bench *b = t->b;
    idgen_range r[8];
    for (uint64_t k = 0; k < t->calls; k++) {
        uint64_t t0 = now_ns();
        size_t n = 0;
        int rc = idgen_client_next_n(t->c, b->o.count, r, 8, &n);
        if (rc != 0) {
            t->err = rc;
            return NULL;
        }
        t->lat[t->nlat++] = now_ns() - t0;
        for (size_t i = 0; b->o.check && i < n; i++) {
            if (t->nrs > 0 && t->rs[t->nrs - 1].start + t->rs[t->nrs - 1].count == r[i].start) {
                t->rs[t->nrs - 1].count += r[i].count; /* consecutive: one range */
                continue;
            }
            if (t->nrs == t->caprs) {
                size_t nc = t->caprs ? t->caprs * 2 : 4096;
                struct id_range *v = metcd_realloc(t->rs, nc * sizeof(*v));
                if (!v) {
                    t->err = IDGEN_ENOMEM;
                    return NULL;
                }
                t->rs = v;
                t->caprs = nc;
            }
            t->rs[t->nrs++] = (struct id_range){r[i].start, r[i].count};
        }
    }
    return NULL;
}

static int run_library(struct id_bench *b)
{
    const struct id_opts *o = &b->o;
    idgen_client_config cfg = {.endpoints = o->endpoints, .n_endpoints = o->n_endpoints};
    idgen_client *c = NULL;
    char err[256];
    int rc = idgen_client_new(&c, &cfg, err, sizeof(err));
    if (rc == 0)
        rc = idgen_client_wait_ready(c, 30000);
    if (rc != 0) {
        fprintf(stderr, "metcd-bench: library worker: %s\n",
                rc == IDGEN_EINVAL ? err : idgen_strerror(rc));
        idgen_client_free(c);
        return -1;
    }
    struct lib_thread *ts = metcd_calloc(o->clients, sizeof(*ts));
    if (!ts) {
        idgen_client_free(c);
        return -1;
    }
    uint64_t per = o->total / o->clients, extra = o->total % o->clients;
    for (uint32_t i = 0; i < o->clients; i++) {
        ts[i].b = b;
        ts[i].c = c;
        ts[i].calls = per + (i < extra);
        ts[i].lat = metcd_malloc((ts[i].calls + 1) * sizeof(*ts[i].lat));
        if (!ts[i].lat)
            rc = -1;
    }
    uint32_t started = 0;
    b->start_ns = now_ns();
    for (; rc == 0 && started < o->clients; started++)
        if (pthread_create(&ts[started].th, NULL, lib_run, &ts[started]) != 0)
            rc = -1;
    for (uint32_t i = 0; i < started; i++)
        pthread_join(ts[i].th, NULL);
    b->end_ns = now_ns();
    for (uint32_t i = 0; i < o->clients; i++) {
        for (size_t k = 0; k < ts[i].nlat; k++)
            bench_report_add(b->rep, ts[i].lat[k]);
        for (uint64_t k = ts[i].nlat; k < ts[i].calls; k++)
            bench_report_error(b->rep, idgen_strerror(ts[i].err));
        for (size_t k = 0; k < ts[i].nrs; k++)
            keep_range(b, ts[i].rs[k].start, ts[i].rs[k].count);
        if (!o->check)
            b->ids += ts[i].nlat * o->count;
        metcd_free(ts[i].lat);
        metcd_free(ts[i].rs);
    }
    metcd_free(ts);
    idgen_client_free(c);
    return rc;
}

/* ---- the report --------------------------------------------------------------------------- */

static const char *kind_name(int k)
{
    return k == ID_SEGMENT ? "segment" : k == ID_SNOWFLAKE ? "snowflake" : "library";
}

static int report(struct id_bench *b)
{
    struct bench_summary sum;
    uint64_t total_ns = b->end_ns - b->start_ns;
    bench_report_summarize(b->rep, total_ns, &sum);
    double secs = (double)total_ns / 1e9;
    double ids_s = secs > 0 ? (double)b->ids / secs : 0;
    bool checked = b->o.check && !b->ranges_full;
    uint64_t dup = checked ? duplicates(b) : 0;
    double cpu = b->cpu0 >= 0 && b->cpu1 >= 0 && b->o.server_pid ? b->cpu1 - b->cpu0 : -1;
    double us_call = cpu >= 0 && sum.ok ? cpu * 1e6 / (double)sum.ok : 0;
    int rc;
    if (b->o.json) {
        char extra[1024];
        snprintf(extra, sizeof(extra),
                 "{\"mode\":\"id\",\"kind\":\"%s\",\"tag\":\"%s\",\"conns\":%" PRIu32
                 ",\"clients\":%" PRIu32 ",\"total\":%" PRIu64 ",\"count\":%" PRIu64
                 ",\"ids\":%" PRIu64 ",\"ids_per_sec\":%.1f,\"checked\":%s,\"duplicates\":%" PRIu64
                 ",\"server_cpu_secs\":%.3f,\"server_cpu_us_per_call\":%.3f,\"interrupted\":%s}",
                 kind_name(b->o.kind), b->o.tag, b->o.conns, b->o.clients, b->o.total, b->o.count,
                 b->ids, ids_s, checked ? "true" : "false", dup, cpu, us_call,
                 b->interrupted ? "true" : "false");
        rc = bench_summary_print_json(&sum, extra, stdout);
    } else {
        rc = bench_summary_print(&sum, stdout);
        if (rc == 0 &&
            printf("\nIDs:\n  Kind:\t%s\n  Total:\t%" PRIu64 "\n  IDs/sec:\t%.1f\n"
                   "  Duplicates:\t%s%" PRIu64 "\n",
                   kind_name(b->o.kind), b->ids, ids_s, checked ? "" : "not checked ", dup) < 0)
            rc = BENCH_ERR_IO;
        if (rc == 0 && cpu >= 0 &&
            printf("  Server CPU:\t%.3f secs (%.2f us per call, %.0f calls per CPU-second)\n", cpu,
                   us_call, us_call > 0 ? 1e6 / us_call : 0) < 0)
            rc = BENCH_ERR_IO;
    }
    if (fflush(stdout) != 0)
        rc = BENCH_ERR_IO;
    if (rc != 0) {
        fprintf(stderr, "metcd-bench: printing the summary: %s\n", bench_strerror(rc));
        return 1;
    }
    if (b->interrupted)
        return 130;
    return sum.ok > 0 && dup == 0 ? 0 : 1;
}

int bench_id_main(int argc, char **argv)
{
    static struct id_bench bench; /* large (options buffer): not on the stack */
    struct id_bench *b = &bench;
    int rc = id_parse(&b->o, argc, argv);
    if (rc == 1)
        return 0;
    if (rc != 0)
        return rc;
    if (bench_report_new(&b->rep, b->o.total) != 0) {
        fprintf(stderr, "metcd-bench: out of memory\n");
        return 1;
    }
    rc = b->o.kind == ID_LIBRARY ? run_library(b) : run_service(b);
    int status = rc == 0 ? report(b) : 1;
    for (uint32_t i = 0; b->conns && i < b->o.conns; i++)
        rpc_client_free(b->conns[i]);
    if (b->sigint_ev)
        event_free(b->sigint_ev);
    if (b->base)
        event_base_free(b->base);
    metcd_free(b->conns);
    metcd_free(b->slots);
    metcd_free(b->ranges);
    bench_report_free(b->rep);
    return status;
}
