/* tools/bench/lease.c - metcd-bench lease: many leases kept alive by many
 * clients (issue 8, "Benchmark").
 *
 * Phases, on one libevent loop:
 *   1. grant: --leases LeaseGrant calls (TTL --ttl), --clients in flight,
 *      spread over --conns connections (connection i starts at endpoint
 *      i mod n, so clients go through every member of a cluster).
 *   2. keep-alive: --clients LeaseKeepAlive streams (stream i on connection
 *      i mod --conns); stream i owns leases i, i + clients, ... and keeps
 *      one keep-alive in flight, cycling through them; --total keep-alives
 *      in all, paced at --rate per second over all streams (0: as fast as
 *      the answers come). A keep-alive's latency is from its send to its
 *      answer; an answer with TTL <= 0 (the lease is gone) is an error.
 * The server's VmRSS (--server-pid) is read before the grants, after them,
 * and at the end.
 */
#include "tools/bench/bench.h"

#include "common/mem.h"
#include "server/etcdserverpb/rpc.pb-c.h"
#include "server/rpc/rpc.h"

#include <event2/event.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PATH_GRANT "/etcdserverpb.Lease/LeaseGrant"
#define PATH_KA "/etcdserverpb.Lease/LeaseKeepAlive"
#define RUN_TIMEOUT_S 1800
#define WATCHDOG_S 10
#define WATCHDOG_TEXT "10 s"

enum lphase { LP_GRANT, LP_KEEPALIVE, LP_DONE };

struct lbench;

struct kstream {
    struct lbench *b;
    struct rpc_ccall *call; /* NULL once closed */
    uint32_t next;          /* index among its leases of the next keep-alive */
    uint32_t nleases;
    bool inflight;
    int64_t id;      /* the lease in flight */
    uint64_t sent_ns;
};

struct lbench {
    const struct bench_options *o;
    struct event_base *base;
    struct rpc_client **conns;
    struct kstream *streams;
    int64_t *ids;
    struct bench_report *rep;
    enum lphase phase;
    int64_t pid;
    uint64_t grants_issued, granted, grant_failed, grant_inflight;
    uint64_t ka_issued, ka_ok, ka_lost, ka_other;
    uint64_t t_grant0, t_granted, t_ka0, t_end;
    uint64_t rss0, rss1, rss2;
    double cpu0, cpu1;
    bool have_rss, have_cpu;
    struct event *timer_ev, *rate_ev, *sigint_ev, *watchdog_ev;
    uint64_t answers_seen; /* at the last watchdog tick */
    bool interrupted, failed;
    char err[512];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void arm(struct event *ev, uint64_t ns)
{
    struct timeval tv = {(time_t)(ns / 1000000000u), (suseconds_t)(ns % 1000000000u / 1000)};
    evtimer_add(ev, &tv);
}

static void finish(struct lbench *b)
{
    if (b->phase == LP_DONE)
        return;
    b->phase = LP_DONE;
    b->t_end = now_ns();
    event_base_loopbreak(b->base);
}

static void fail(struct lbench *b, const char *what, enum rpc_code code, const char *msg)
{
    if (!b->failed) {
        b->failed = true;
        snprintf(b->err, sizeof b->err, "%s: %s: %s", what, rpc_code_name(code),
                 msg && msg[0] ? msg : "-");
    }
    finish(b);
}

/* ---------------- keep-alives ---------------- */

static void ka_issue_all(struct lbench *b);

static void ka_send(struct kstream *st)
{
    struct lbench *b = st->b;
    const struct bench_options *o = b->o;
    uint32_t i = (uint32_t)(st - b->streams);
    uint64_t idx = (uint64_t)i + (uint64_t)st->next * o->clients;
    st->next = (st->next + 1) % st->nleases;
    Etcdserverpb__LeaseKeepAliveRequest req = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
    req.id = b->ids[idx];
    st->id = req.id;
    st->sent_ns = now_ns();
    st->inflight = true;
    b->ka_issued++;
    int rc = rpc_ccall_send(st->call, &req.base);
    if (rc != 0) {
        st->inflight = false;
        b->ka_issued--;
        if (rc != RPC_ERR_FULL)
            fail(b, "keep-alive", RPC_CODE_INTERNAL, rpc_strerror(rc));
    }
}

static uint64_t due_ns(const struct lbench *b, uint64_t k)
{
    return b->t_ka0 + (uint64_t)((double)k * 1e9 / b->o->rate);
}

/* Sends on every idle stream while the budget and the pace allow. */
static void ka_issue_all(struct lbench *b)
{
    const struct bench_options *o = b->o;
    for (uint32_t i = 0; i < o->clients && b->phase == LP_KEEPALIVE; i++) {
        struct kstream *st = &b->streams[i];
        if (st->inflight || !st->call || !st->nleases)
            continue;
        if (b->ka_issued >= o->total)
            return;
        if (o->rate > 0) {
            uint64_t now = now_ns(), due = due_ns(b, b->ka_issued);
            if (due > now) {
                if (!evtimer_pending(b->rate_ev, NULL))
                    arm(b->rate_ev, due - now);
                return;
            }
        }
        ka_send(st);
    }
}

static void on_ka_message(struct rpc_ccall *c, const ProtobufCMessage *msg, void *data)
{
    (void)c;
    struct kstream *st = data;
    struct lbench *b = st->b;
    const Etcdserverpb__LeaseKeepAliveResponse *r =
        (const Etcdserverpb__LeaseKeepAliveResponse *)msg;
    if (!st->inflight || r->id != st->id) {
        b->ka_other++;
        return;
    }
    st->inflight = false;
    uint64_t now = now_ns();
    if (r->ttl > 0) {
        b->ka_ok++;
        bench_report_add(b->rep, now - st->sent_ns);
    } else {
        b->ka_lost++;
        bench_report_error(b->rep, "keep-alive: the lease is gone (TTL 0)");
    }
    if (b->ka_ok + b->ka_lost >= b->o->total) {
        finish(b);
        return;
    }
    if (b->phase != LP_KEEPALIVE)
        return;
    if (b->o->rate > 0)
        ka_issue_all(b);
    else if (b->ka_issued < b->o->total)
        ka_send(st);
}

static void on_ka_drain(struct rpc_ccall *c, void *data)
{
    (void)c;
    ka_issue_all(((struct kstream *)data)->b);
}

static void on_ka_close(struct rpc_ccall *c, enum rpc_code code, const char *msg, void *data)
{
    (void)c;
    struct kstream *st = data;
    st->call = NULL;
    if (st->b->phase != LP_DONE)
        fail(st->b, "keep-alive stream closed", code, msg);
}

static const struct rpc_ccall_ops ka_ops = {
    .on_message = on_ka_message,
    .on_close = on_ka_close,
    .on_drain = on_ka_drain,
};

static void on_rate_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ka_issue_all(arg);
}

static void start_keepalives(struct lbench *b)
{
    const struct bench_options *o = b->o;
    b->t_granted = now_ns();
    if (b->pid > 0)
        b->have_rss = b->have_rss && bench_proc_rss_kib(b->pid, &b->rss1) == 0;
    if (b->granted < o->leases) {
        fail(b, "grant", RPC_CODE_UNKNOWN, "not every lease was granted");
        return;
    }
    for (uint32_t i = 0; i < o->clients; i++) {
        struct kstream *st = &b->streams[i];
        st->b = b;
        st->nleases = o->leases / o->clients + (i < o->leases % o->clients ? 1 : 0);
        int rc = rpc_ccall_start(b->conns[i % o->conns], PATH_KA,
                                 &etcdserverpb__lease_keep_alive_response__descriptor, NULL, 0, 0,
                                 &ka_ops, st, &st->call);
        if (rc != 0) {
            fail(b, "keep-alive stream", RPC_CODE_INTERNAL, rpc_strerror(rc));
            return;
        }
    }
    if (b->pid > 0)
        b->have_cpu = bench_proc_cpu_secs(b->pid, &b->cpu0) == 0;
    b->phase = LP_KEEPALIVE;
    b->t_ka0 = now_ns();
    ka_issue_all(b);
}

/* ---------------- grants ---------------- */

static void grant_issue(struct lbench *b);

static void on_grant_done(const ProtobufCMessage *resp, enum rpc_code code, const char *msg,
                          void *data)
{
    struct lbench *b = data;
    b->grant_inflight--;
    if (b->phase != LP_GRANT)
        return;
    if (code == RPC_CODE_OK) {
        const Etcdserverpb__LeaseGrantResponse *r = (const Etcdserverpb__LeaseGrantResponse *)resp;
        b->ids[b->granted++] = r->id;
    } else {
        b->grant_failed++;
        fail(b, "grant", code, msg);
        return;
    }
    if (b->granted == b->o->leases) {
        start_keepalives(b);
        return;
    }
    grant_issue(b);
}

static void grant_issue(struct lbench *b)
{
    const struct bench_options *o = b->o;
    while (b->phase == LP_GRANT && b->grants_issued < o->leases &&
           b->grant_inflight < o->clients) {
        Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
        req.ttl = o->ttl;
        struct rpc_client *cl = b->conns[b->grants_issued % o->conns];
        b->grants_issued++;
        b->grant_inflight++;
        int rc = rpc_client_unary(cl, PATH_GRANT, &req.base,
                                  &etcdserverpb__lease_grant_response__descriptor, NULL, 0,
                                  o->timeout_ms, on_grant_done, b);
        if (rc != 0) {
            b->grant_inflight--;
            fail(b, "grant", RPC_CODE_INTERNAL, rpc_strerror(rc));
            return;
        }
    }
}

/* ---------------- setup ---------------- */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fail(arg, "run", RPC_CODE_DEADLINE_EXCEEDED, "the run took too long");
}

/* Every WATCHDOG_S: a run whose answers stopped coming ends (the report
 * says how many were answered) instead of waiting for RUN_TIMEOUT_S. */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lbench *b = arg;
    uint64_t answers = b->granted + b->grant_failed + b->ka_ok + b->ka_lost;
    if (answers == b->answers_seen)
        fail(b, "run", RPC_CODE_DEADLINE_EXCEEDED, "no answer for " WATCHDOG_TEXT);
    b->answers_seen = answers;
}

static void on_sigint(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lbench *b = arg;
    b->interrupted = true;
    finish(b);
}

static int setup(struct lbench *b)
{
    const struct bench_options *o = b->o;
    b->base = event_base_new();
    b->conns = metcd_calloc(o->conns, sizeof *b->conns);
    b->streams = metcd_calloc(o->clients, sizeof *b->streams);
    b->ids = metcd_calloc(o->leases, sizeof *b->ids);
    uint64_t cap = o->total < o->max_samples ? o->total : o->max_samples;
    if (!b->base || !b->conns || !b->streams || !b->ids ||
        bench_report_new(&b->rep, (size_t)cap) != 0) {
        fprintf(stderr, "metcd-bench: out of memory\n");
        return -1;
    }
    b->timer_ev = evtimer_new(b->base, on_timer, b);
    b->rate_ev = evtimer_new(b->base, on_rate_tick, b);
    b->sigint_ev = evsignal_new(b->base, SIGINT, on_sigint, b);
    b->watchdog_ev = event_new(b->base, -1, EV_PERSIST, on_watchdog, b);
    struct timeval wd = {WATCHDOG_S, 0};
    if (!b->timer_ev || !b->rate_ev || !b->sigint_ev || !b->watchdog_ev ||
        event_add(b->sigint_ev, NULL) != 0 || event_add(b->watchdog_ev, &wd) != 0) {
        fprintf(stderr, "metcd-bench: cannot create loop events\n");
        return -1;
    }
    for (uint32_t i = 0; i < o->conns; i++) {
        const char *eps[BENCH_MAX_ENDPOINTS];
        size_t n = o->n_endpoints;
        for (size_t j = 0; j < n; j++)
            eps[j] = o->endpoints[(i + j) % n];
        struct rpc_client_config cfg = {
            .endpoints = eps,
            .n_endpoints = n,
            .max_pending_calls = (size_t)o->clients + 16,
        };
        if (rpc_client_new(&b->conns[i], b->base, &cfg) != 0) {
            fprintf(stderr, "metcd-bench: cannot create gRPC client\n");
            return -1;
        }
    }
    b->pid = o->server_pid;
    if (b->pid == -1) {
        const char *colon = strrchr(o->endpoints[0], ':');
        uint16_t port = colon ? (uint16_t)strtoul(colon + 1, NULL, 10) : 0;
        if (bench_proc_find_listener(port, &b->pid) != 0) {
            fprintf(stderr, "metcd-bench: no process of ours listens on port %u\n", port);
            return -1;
        }
    }
    if (b->pid > 0) {
        if (bench_proc_rss_kib(b->pid, &b->rss0) != 0) {
            fprintf(stderr, "metcd-bench: cannot read /proc/%" PRId64 "/status\n", b->pid);
            return -1;
        }
        b->have_rss = true;
    }
    return 0;
}

static void teardown(struct lbench *b)
{
    b->phase = LP_DONE;
    if (b->conns)
        for (uint32_t i = 0; i < b->o->conns; i++)
            rpc_client_free(b->conns[i]);
    if (b->timer_ev)
        event_free(b->timer_ev);
    if (b->rate_ev)
        event_free(b->rate_ev);
    if (b->sigint_ev)
        event_free(b->sigint_ev);
    if (b->watchdog_ev)
        event_free(b->watchdog_ev);
    if (b->base)
        event_base_free(b->base);
    bench_report_free(b->rep);
    metcd_free(b->conns);
    metcd_free(b->streams);
    metcd_free(b->ids);
}

/* ---------------- report ---------------- */

static double secs(uint64_t from, uint64_t to)
{
    return to > from ? (double)(to - from) / 1e9 : 0;
}

static int report(struct lbench *b)
{
    const struct bench_options *o = b->o;
    if (b->pid > 0) {
        b->have_rss = b->have_rss && bench_proc_rss_kib(b->pid, &b->rss2) == 0;
        if (b->have_cpu && bench_proc_cpu_secs(b->pid, &b->cpu1) != 0)
            b->have_cpu = false;
    }
    double grant_s = secs(b->t_grant0, b->t_granted ? b->t_granted : b->t_end);
    double ka_s = b->t_ka0 ? secs(b->t_ka0, b->t_end) : 0;
    double rps = ka_s > 0 ? (double)b->ka_ok / ka_s : 0;
    double per_lease =
        b->have_rss && b->rss1 >= b->rss0 ? (double)(b->rss1 - b->rss0) * 1024.0 / o->leases : 0;
    struct bench_summary sum;
    bench_report_summarize(b->rep, b->t_end - (b->t_ka0 ? b->t_ka0 : b->t_end), &sum);
    int rc = 0;
    if (o->json) {
        json_t *eps = json_array();
        for (size_t i = 0; eps && i < o->n_endpoints; i++)
            json_array_append_new(eps, json_string(o->endpoints[i]));
        json_t *obj = json_pack(
            "{s:s,s:o,s:i,s:i,s:I,s:I,s:I,s:f,s:b,s:I,s:f,s:I,s:I,s:f,s:f,s:I,s:I,s:I,s:f,s:I}",
            "mode", "lease", "endpoints", eps, "conns", (int)o->conns, "clients", (int)o->clients,
            "leases", (json_int_t)o->leases, "ttl", (json_int_t)o->ttl, "total",
            (json_int_t)o->total, "rate", o->rate, "interrupted", b->interrupted, "granted",
            (json_int_t)b->granted, "grant_s", grant_s, "keepalives_ok", (json_int_t)b->ka_ok,
            "keepalives_lost", (json_int_t)b->ka_lost, "keepalive_s", ka_s, "keepalives_per_s",
            rps, "rss_start_kib", (json_int_t)b->rss0, "rss_granted_kib", (json_int_t)b->rss1,
            "rss_end_kib", (json_int_t)b->rss2, "server_cpu_s",
            b->have_cpu ? b->cpu1 - b->cpu0 : 0.0, "server_pid", (json_int_t)b->pid);
        char *extra = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
        json_decref(obj);
        rc = extra ? bench_summary_print_json(&sum, extra, stdout) : BENCH_ERR_NOMEM;
        metcd_free(extra);
    } else {
        printf("Leases:       %" PRIu64 " of %" PRIu64 " granted (TTL %" PRId64
               " s) in %.3f s (%.0f grants/s)\n",
               b->granted, (uint64_t)o->leases, o->ttl, grant_s,
               grant_s > 0 ? (double)b->granted / grant_s : 0.0);
        printf("Keep-alives:  %" PRIu64 " answered, %" PRIu64 " lost, over %" PRIu32
               " streams in %.3f s: %.0f keep-alives/s\n",
               b->ka_ok, b->ka_lost, o->clients, ka_s, rps);
        if (b->have_rss)
            printf("Server VmRSS: %.1f MiB before, %.1f MiB with the leases (%.0f bytes per "
                   "lease), %.1f MiB at the end\n",
                   (double)b->rss0 / 1024, (double)b->rss1 / 1024, per_lease,
                   (double)b->rss2 / 1024);
        if (b->have_cpu)
            printf("Server CPU:   %.2f s during the keep-alives\n", b->cpu1 - b->cpu0);
        printf("Keep-alive latency (%" PRIu64 " samples):\n", sum.ok);
        for (size_t i = 0; i < BENCH_N_PCTS; i++)
            printf("  %5.1f%% in %.3f ms\n", bench_pcts[i], sum.pct[i] * 1e3);
        printf("  slowest    %.3f ms\n", sum.slowest * 1e3);
        for (size_t i = 0; i < sum.n_errors; i++)
            printf("  error [%" PRIu64 "] %s\n", sum.errors[i].count, sum.errors[i].msg);
        if (ferror(stdout))
            rc = BENCH_ERR_IO;
    }
    if (fflush(stdout) != 0)
        rc = BENCH_ERR_IO;
    if (rc != 0) {
        fprintf(stderr, "metcd-bench: printing the summary: %s\n", bench_strerror(rc));
        return 1;
    }
    if (b->failed)
        fprintf(stderr, "metcd-bench: %s\n", b->err);
    if (b->interrupted)
        return 130;
    return !b->failed && b->ka_ok > 0 && b->ka_lost == 0 ? 0 : 1;
}

int bench_lease_main(const struct bench_options *o)
{
    static struct lbench bench; /* one run per process */
    struct lbench *b = &bench;
    memset(b, 0, sizeof *b);
    b->o = o;
    int rc = 1;
    if (setup(b) != 0)
        goto out;
    arm(b->timer_ev, (uint64_t)RUN_TIMEOUT_S * 1000000000u);
    b->t_grant0 = now_ns();
    grant_issue(b);
    if (b->phase != LP_DONE)
        event_base_dispatch(b->base);
    if (!b->t_end)
        b->t_end = now_ns();
    rc = report(b);
out:
    teardown(b);
    return rc;
}
