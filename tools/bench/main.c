/* tools/bench/main.c - metcd-bench: drives put or range load against an
 * etcd v3 server and prints a latency summary (see bench.h); the watch
 * mode lives in watch.c.
 *
 * One thread, one libevent loop (DESIGN.md, Threads). --clients "slots"
 * each keep one unary call in flight: when a slot's call closes, its
 * latency or error goes into the report and the slot starts the next call
 * at once (or, with --rate, when the next request is due). Slot i uses
 * connection i mod --conns; every connection is one rpc_client, which
 * dials its endpoints in order, starting at entry i mod n.
 *
 * Before timing starts, every connection answers one serializable Range
 * of a key outside the benchmark's keys, so dialing is not measured.
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
#include <unistd.h>

#define PATH_PUT "/etcdserverpb.KV/Put"
#define PATH_RANGE "/etcdserverpb.KV/Range"
#define WARMUP_KEY "metcd-bench/warmup"
#define PROGRESS_MS 200
#define BAR_WIDTH 40

struct bench;

/* One in-flight request at a time. */
struct slot {
    struct bench *b;
    uint32_t conn;
    uint64_t start_ns;
    bool got_msg;          /* a response message arrived */
    const char *abort_msg; /* set while we cancel a call we failed to send */
};

struct bench {
    struct bench_options o;
    struct event_base *base;
    struct rpc_client **conns; /* o.conns */
    struct slot *slots;        /* o.clients */
    uint32_t *idle;            /* stack of slots waiting for --rate, at most o.clients */
    uint32_t n_idle;
    struct bench_report *rep;
    uint64_t issued, completed;
    uint64_t start_ns, end_ns;
    uint64_t rng;
    char *key;    /* o.key_size bytes; requests are packed at send, so one buffer */
    uint8_t *val; /* o.val_size bytes */
    struct event *rate_ev, *progress_ev, *sigint_ev;
    uint32_t warm_left;
    int warm_failed; /* connection index + 1 of the first failed warm-up */
    char warm_err[256];
    bool stopping; /* finished or interrupted: ignore further closes */
    bool interrupted;
    bool show_progress;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: small, fast, good enough to pick keys. */
static uint64_t next_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t next_key_number(struct bench *b)
{
    if (b->o.key_space == 0)
        return b->issued;
    return (uint64_t)(((unsigned __int128)next_rand(&b->rng) * b->o.key_space) >> 64);
}

/* ---------------- progress ---------------- */

static void progress_draw(struct bench *b, bool final)
{
    uint64_t total = b->o.total, done = b->completed;
    unsigned fill = (unsigned)(done * BAR_WIDTH / total);
    char bar[BAR_WIDTH + 1];
    memset(bar, ' ', BAR_WIDTH);
    memset(bar, '#', fill);
    bar[BAR_WIDTH] = '\0';
    double secs = (double)(now_ns() - b->start_ns) / 1e9;
    printf("\r%3u%% [%s] %" PRIu64 "/%" PRIu64 " %.0f req/s", (unsigned)(done * 100 / total), bar,
           done, total, secs > 0 ? (double)done / secs : 0.0);
    if (final)
        putchar('\n');
    fflush(stdout);
}

static void on_progress_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    progress_draw(arg, false);
}

/* ---------------- the load ---------------- */

static void slot_issue(struct slot *s);

static void finish(struct bench *b)
{
    b->stopping = true;
    b->end_ns = now_ns();
    event_base_loopbreak(b->base);
}

static void on_call_message(struct rpc_ccall *c, const ProtobufCMessage *msg, void *data)
{
    (void)c;
    (void)msg;
    struct slot *s = data;
    s->got_msg = true;
}

static void record_error(struct bench *b, enum rpc_code code, const char *msg)
{
    char text[512];
    snprintf(text, sizeof text, "%s: %s", rpc_code_name(code), msg && msg[0] ? msg : "-");
    bench_report_error(b->rep, text);
}

static void on_call_close(struct rpc_ccall *c, enum rpc_code code, const char *msg, void *data)
{
    (void)c;
    struct slot *s = data;
    struct bench *b = s->b;
    if (b->stopping)
        return;
    if (s->abort_msg) { /* our own cancel after a failed send: slot_issue goes on */
        bench_report_error(b->rep, s->abort_msg);
        b->completed++;
        return;
    }
    uint64_t lat = now_ns() - s->start_ns;
    if (code == RPC_CODE_OK && s->got_msg)
        bench_report_add(b->rep, lat); /* capacity is --total: cannot be full */
    else if (code == RPC_CODE_OK)
        bench_report_error(b->rep, "INTERNAL: no response message for a unary call");
    else
        record_error(b, code, msg);
    b->completed++;
    if (b->completed == b->o.total) {
        finish(b);
        return;
    }
    slot_issue(s);
}

static const struct rpc_ccall_ops call_ops = {
    .on_message = on_call_message,
    .on_close = on_call_close,
};

static uint64_t due_ns(const struct bench *b, uint64_t k)
{
    return b->start_ns + (uint64_t)((double)k * 1e9 / b->o.rate);
}

static void arm_rate_timer(struct bench *b)
{
    if (evtimer_pending(b->rate_ev, NULL))
        return;
    uint64_t due = due_ns(b, b->issued), now = now_ns();
    uint64_t wait = due > now ? due - now : 0;
    struct timeval tv = {(time_t)(wait / 1000000000u), (suseconds_t)(wait % 1000000000u / 1000)};
    evtimer_add(b->rate_ev, &tv);
}

/* Starts the slot's next request, or parks the slot. A request that cannot
 * even be started counts as failed and the slot tries the next one. */
static void slot_issue(struct slot *s)
{
    struct bench *b = s->b;
    while (b->issued < b->o.total && !b->stopping) {
        if (b->o.rate > 0 && due_ns(b, b->issued) > now_ns()) {
            b->idle[b->n_idle++] = (uint32_t)(s - b->slots);
            arm_rate_timer(b);
            return;
        }
        uint64_t k = next_key_number(b);
        bench_format_key(b->key, b->o.key_size, k); /* size checked by the options */
        Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
        Etcdserverpb__RangeRequest range = ETCDSERVERPB__RANGE_REQUEST__INIT;
        const ProtobufCMessage *req;
        const char *path;
        const ProtobufCMessageDescriptor *resp;
        if (b->o.mode == BENCH_PUT) {
            put.key.data = (uint8_t *)b->key;
            put.key.len = b->o.key_size;
            put.value.data = b->val;
            put.value.len = b->o.val_size;
            req = &put.base;
            path = PATH_PUT;
            resp = &etcdserverpb__put_response__descriptor;
        } else {
            range.key.data = (uint8_t *)b->key;
            range.key.len = b->o.key_size;
            range.serializable = b->o.serializable;
            req = &range.base;
            path = PATH_RANGE;
            resp = &etcdserverpb__range_response__descriptor;
        }
        b->issued++;
        s->got_msg = false;
        s->abort_msg = NULL;
        s->start_ns = now_ns();
        struct rpc_ccall *c = NULL;
        int rc = rpc_ccall_start(b->conns[s->conn], path, resp, NULL, 0, b->o.timeout_ms, &call_ops,
                                 s, &c);
        if (rc == 0) {
            rc = rpc_ccall_send(c, req);
            if (rc == 0)
                rc = rpc_ccall_close_send(c);
            if (rc == 0)
                return;
            s->abort_msg = rpc_strerror(rc);
            rpc_ccall_cancel(c); /* on_call_close records abort_msg */
            s->abort_msg = NULL;
        } else {
            char text[128];
            snprintf(text, sizeof text, "client: %s", rpc_strerror(rc));
            bench_report_error(b->rep, text);
            b->completed++;
        }
        if (b->completed == b->o.total) {
            finish(b);
            return;
        }
    }
}

static void on_rate_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bench *b = arg;
    while (b->n_idle > 0 && b->issued < b->o.total && !b->stopping &&
           due_ns(b, b->issued) <= now_ns())
        slot_issue(&b->slots[b->idle[--b->n_idle]]);
    if (b->n_idle > 0 && b->issued < b->o.total && !b->stopping)
        arm_rate_timer(b);
}

static void on_sigint(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bench *b = arg;
    b->interrupted = true;
    finish(b);
}

/* ---------------- warm-up ---------------- */

static void on_warm_close(struct rpc_ccall *c, enum rpc_code code, const char *msg, void *data)
{
    (void)c;
    struct slot *s = data; /* slot index == connection index here */
    struct bench *b = s->b;
    if (code != RPC_CODE_OK && !b->warm_failed) {
        b->warm_failed = (int)s->conn + 1;
        snprintf(b->warm_err, sizeof b->warm_err, "%s: %s", rpc_code_name(code),
                 msg && msg[0] ? msg : "-");
    }
    if (--b->warm_left == 0)
        event_base_loopbreak(b->base);
}

static const struct rpc_ccall_ops warm_ops = {
    .on_message = on_call_message,
    .on_close = on_warm_close,
};

static int warm_up(struct bench *b)
{
    Etcdserverpb__RangeRequest range = ETCDSERVERPB__RANGE_REQUEST__INIT;
    range.key.data = (uint8_t *)WARMUP_KEY;
    range.key.len = strlen(WARMUP_KEY);
    range.serializable = true;
    b->warm_left = b->o.conns;
    for (uint32_t i = 0; i < b->o.conns; i++) {
        struct rpc_ccall *c = NULL;
        int rc = rpc_ccall_start(b->conns[i], PATH_RANGE, &etcdserverpb__range_response__descriptor,
                                 NULL, 0, 10000, &warm_ops, &b->slots[i], &c);
        if (rc == 0)
            rc = rpc_ccall_send(c, &range.base);
        if (rc == 0)
            rc = rpc_ccall_close_send(c);
        if (rc != 0) {
            fprintf(stderr, "metcd-bench: cannot start a call: %s\n", rpc_strerror(rc));
            return -1;
        }
    }
    event_base_dispatch(b->base);
    if (b->warm_failed) {
        uint32_t i = (uint32_t)b->warm_failed - 1;
        fprintf(stderr, "metcd-bench: connection %" PRIu32 " (endpoint %s) failed: %s\n", i,
                b->o.endpoints[i % b->o.n_endpoints], b->warm_err);
        return -1;
    }
    return 0;
}

/* ---------------- setup and output ---------------- */

static int make_conns(struct bench *b)
{
    uint32_t per_conn = (b->o.clients + b->o.conns - 1) / b->o.conns;
    const char *eps[BENCH_MAX_ENDPOINTS];
    size_t n = b->o.n_endpoints;
    for (uint32_t i = 0; i < b->o.conns; i++) {
        for (size_t j = 0; j < n; j++)
            eps[j] = b->o.endpoints[(i + j) % n];
        struct rpc_client_config cfg = {
            .endpoints = eps,
            .n_endpoints = n,
            .max_pending_calls = per_conn + 1,
        };
        int rc = rpc_client_new(&b->conns[i], b->base, &cfg);
        if (rc != 0) {
            fprintf(stderr, "metcd-bench: cannot create gRPC client: %s\n", rpc_strerror(rc));
            return -1;
        }
    }
    return 0;
}

static char *params_json(const struct bench *b)
{
    json_t *eps = json_array();
    for (size_t i = 0; eps && i < b->o.n_endpoints; i++)
        json_array_append_new(eps, json_string(b->o.endpoints[i]));
    json_t *o =
        json_pack("{s:s,s:o,s:i,s:i,s:I,s:i,s:i,s:I,s:s,s:f,s:b}", "mode",
                  b->o.mode == BENCH_PUT ? "put" : "range", "endpoints", eps, "conns",
                  (int)b->o.conns, "clients", (int)b->o.clients, "total", (json_int_t)b->o.total,
                  "key_size", (int)b->o.key_size, "val_size", (int)b->o.val_size, "key_space",
                  (json_int_t)b->o.key_space, "consistency", b->o.serializable ? "s" : "l", "rate",
                  b->o.rate, "interrupted", b->interrupted);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static int report(struct bench *b)
{
    struct bench_summary sum;
    bench_report_summarize(b->rep, b->end_ns - b->start_ns, &sum);
    int rc;
    if (b->o.json) {
        char *extra = params_json(b);
        rc = extra ? bench_summary_print_json(&sum, extra, stdout) : BENCH_ERR_NOMEM;
        metcd_free(extra); /* jansson allocates through metcd_malloc (main) */
    } else {
        rc = bench_summary_print(&sum, stdout);
    }
    if (fflush(stdout) != 0)
        rc = BENCH_ERR_IO;
    if (rc != 0) {
        fprintf(stderr, "metcd-bench: printing the summary: %s\n", bench_strerror(rc));
        return 1;
    }
    if (b->interrupted)
        return 130;
    return sum.ok > 0 ? 0 : 1;
}

static void bench_close(struct bench *b)
{
    b->stopping = true;
    if (b->conns)
        for (uint32_t i = 0; i < b->o.conns; i++)
            rpc_client_free(b->conns[i]);
    if (b->progress_ev)
        event_free(b->progress_ev);
    if (b->rate_ev)
        event_free(b->rate_ev);
    if (b->sigint_ev)
        event_free(b->sigint_ev);
    if (b->base)
        event_base_free(b->base);
    bench_report_free(b->rep);
    metcd_free(b->conns);
    metcd_free(b->slots);
    metcd_free(b->idle);
    metcd_free(b->key);
    metcd_free(b->val);
}

static int bench_setup(struct bench *b)
{
    const struct bench_options *o = &b->o;
    b->rng = o->seed;
    b->base = event_base_new();
    b->conns = metcd_calloc(o->conns, sizeof *b->conns);
    b->slots = metcd_calloc(o->clients, sizeof *b->slots);
    b->idle = metcd_calloc(o->clients, sizeof *b->idle);
    b->key = metcd_malloc(o->key_size);
    b->val = metcd_malloc(o->val_size ? o->val_size : 1);
    if (!b->base || !b->conns || !b->slots || !b->idle || !b->key || !b->val ||
        bench_report_new(&b->rep, o->total) != 0) {
        fprintf(stderr, "metcd-bench: out of memory\n");
        return -1;
    }
    for (uint32_t i = 0; i < o->val_size; i++)
        b->val[i] = (uint8_t)('a' + next_rand(&b->rng) % 26);
    for (uint32_t i = 0; i < o->clients; i++) {
        b->slots[i].b = b;
        b->slots[i].conn = i % o->conns;
    }
    b->rate_ev = evtimer_new(b->base, on_rate_tick, b);
    b->progress_ev = event_new(b->base, -1, EV_PERSIST, on_progress_tick, b);
    b->sigint_ev = evsignal_new(b->base, SIGINT, on_sigint, b);
    if (!b->rate_ev || !b->progress_ev || !b->sigint_ev || event_add(b->sigint_ev, NULL) != 0) {
        fprintf(stderr, "metcd-bench: cannot create loop events\n");
        return -1;
    }
    return make_conns(b);
}

int main(int argc, char **argv)
{
    metcd_mem_tune();
    json_set_alloc_funcs(metcd_malloc, metcd_free);
    static struct bench bench; /* large (options buffer): not on the stack */
    struct bench *b = &bench;
    if (argc >= 2 && strcmp(argv[1], "id") == 0)
        return bench_id_main(argc, argv); /* id.c, its own flags */
    int rc = bench_options_parse(&b->o, argc, argv, stdout, stderr);
    if (rc == 1)
        return 0;
    if (rc != 0)
        return rc;
    if (b->o.mode == BENCH_WATCH)
        return bench_watch_main(&b->o);
    if (b->o.mode == BENCH_LEASE)
        return bench_lease_main(&b->o);
    b->show_progress = b->o.progress && !b->o.json && isatty(STDOUT_FILENO);
    rc = 1;
    if (bench_setup(b) != 0 || warm_up(b) != 0)
        goto out;
    b->start_ns = now_ns();
    if (b->show_progress) {
        struct timeval tv = {0, PROGRESS_MS * 1000};
        event_add(b->progress_ev, &tv);
    }
    for (uint32_t i = 0; i < b->o.clients && !b->stopping; i++)
        slot_issue(&b->slots[i]);
    if (!b->stopping)
        event_base_dispatch(b->base);
    if (!b->end_ns)
        b->end_ns = now_ns();
    if (b->show_progress) {
        event_del(b->progress_ev);
        progress_draw(b, true);
    }
    rc = report(b);
out:
    bench_close(b);
    return rc;
}
