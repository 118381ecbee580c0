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
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PATH_PUT "/etcdserverpb.KV/Put"
#define PATH_RANGE "/etcdserverpb.KV/Range"
#define PATH_TXN "/etcdserverpb.KV/Txn"
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
    /* Everything below is per run (bench_reset clears it); base first. */
    struct event_base *base;
    const char *const *eps; /* this run's endpoints: o.endpoints or o.compare */
    size_t n_eps;
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
    /* txn: o.txn_ops puts, their ops and keys (o.key_size bytes each) */
    char *txn_keys;
    Etcdserverpb__PutRequest *txn_puts;
    Etcdserverpb__RequestOp *txn_req_ops;
    Etcdserverpb__RequestOp **txn_op_ptrs;
    uint64_t reads, writes; /* mixed: requests of each kind issued */
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

/* Fills txn with the next request's o.txn_ops puts (their keys in
 * b->txn_keys, borrowed until it is packed) and the optional compare. */
static void txn_fill(struct bench *b, Etcdserverpb__TxnRequest *txn, Etcdserverpb__Compare *cmp,
                     Etcdserverpb__Compare **cmps)
{
    uint32_t n = b->o.txn_ops, ks = b->o.key_size;
    uint64_t space = b->o.key_space;
    uint64_t first =
        space ? (uint64_t)(((unsigned __int128)next_rand(&b->rng) * space) >> 64) : b->issued * n;
    for (uint32_t j = 0; j < n; j++) {
        /* distinct keys: etcd refuses a txn that puts one key twice */
        uint64_t k = space ? (first + j) % space : first + j;
        bench_format_key(b->txn_keys + (size_t)j * ks, ks, k); /* size checked */
    }
    txn->n_success = n;
    txn->success = b->txn_op_ptrs;
    if (b->o.txn_compare) {
        cmp->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__GREATER;
        cmp->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION;
        cmp->key.data = (uint8_t *)b->txn_keys;
        cmp->key.len = ks;
        cmp->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
        cmp->version = -1; /* version(key) >= 0: always true */
        txn->n_compare = 1;
        txn->compare = cmps;
    }
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
        Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
        Etcdserverpb__RangeRequest range = ETCDSERVERPB__RANGE_REQUEST__INIT;
        Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
        Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
        Etcdserverpb__Compare *cmps[1] = {&cmp};
        const ProtobufCMessage *req;
        const char *path;
        const ProtobufCMessageDescriptor *resp;
        enum bench_mode kind = b->o.mode;
        if (kind == BENCH_MIXED) {
            /* 53 random bits as a double in [0, 1) */
            double u = (double)(next_rand(&b->rng) >> 11) * 0x1p-53;
            kind = u < b->o.read_ratio ? BENCH_RANGE : BENCH_PUT;
            if (kind == BENCH_RANGE)
                b->reads++;
            else
                b->writes++;
        }
        if (kind == BENCH_TXN)
            txn_fill(b, &txn, &cmp, cmps);
        else /* size checked by the options */
            bench_format_key(b->key, b->o.key_size, next_key_number(b));
        if (kind == BENCH_TXN) {
            req = &txn.base;
            path = PATH_TXN;
            resp = &etcdserverpb__txn_response__descriptor;
        } else if (kind == BENCH_PUT) {
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
                b->eps[i % b->n_eps], b->warm_err);
        return -1;
    }
    return 0;
}

/* ---------------- setup and output ---------------- */

static int make_conns(struct bench *b)
{
    uint32_t per_conn = (b->o.clients + b->o.conns - 1) / b->o.conns;
    const char *eps[BENCH_MAX_ENDPOINTS];
    size_t n = b->n_eps;
    for (uint32_t i = 0; i < b->o.conns; i++) {
        for (size_t j = 0; j < n; j++)
            eps[j] = b->eps[(i + j) % n];
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

static const char *mode_name(enum bench_mode m)
{
    switch (m) {
    case BENCH_PUT:
        return "put";
    case BENCH_RANGE:
        return "range";
    case BENCH_TXN:
        return "txn";
    case BENCH_MIXED:
        return "mixed";
    default:
        return "other";
    }
}

/* The run's parameters as a JSON object text; caller frees with metcd_free. */
static char *params_json(const struct bench *b)
{
    json_t *eps = json_array();
    for (size_t i = 0; eps && i < b->n_eps; i++)
        json_array_append_new(eps, json_string(b->eps[i]));
    json_t *o = json_pack(
        "{s:s,s:o,s:i,s:i,s:I,s:i,s:i,s:I,s:s,s:f,s:b,s:I}", "mode", mode_name(b->o.mode),
        "endpoints", eps, "conns", (int)b->o.conns, "clients", (int)b->o.clients, "total",
        (json_int_t)b->o.total, "key_size", (int)b->o.key_size, "val_size", (int)b->o.val_size,
        "key_space", (json_int_t)b->o.key_space, "consistency", b->o.serializable ? "s" : "l",
        "rate", b->o.rate, "interrupted", b->interrupted, "seed", (json_int_t)b->o.seed);
    int bad = !o;
    if (o && b->o.mode == BENCH_TXN) {
        bad |= json_object_set_new(o, "txn_ops", json_integer(b->o.txn_ops));
        bad |= json_object_set_new(o, "txn_compare", json_boolean(b->o.txn_compare));
    } else if (o && b->o.mode == BENCH_MIXED) {
        bad |= json_object_set_new(o, "read_ratio", json_real(b->o.read_ratio));
        bad |= json_object_set_new(o, "reads", json_integer((json_int_t)b->reads));
        bad |= json_object_set_new(o, "writes", json_integer((json_int_t)b->writes));
    }
    char *s = bad ? NULL : json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* The outcome of one finished run, kept for --compare. */
struct run_result {
    struct bench_report *rep; /* owned */
    struct bench_summary sum; /* its errors point into rep */
    char *params;             /* JSON text (metcd_free), NULL without --json */
    bool interrupted;
};

static void run_result_free(struct run_result *r)
{
    bench_report_free(r->rep);
    metcd_free(r->params);
    memset(r, 0, sizeof *r);
}

/* Takes the finished run's report out of b into *r. */
static int run_result_take(struct bench *b, struct run_result *r)
{
    memset(r, 0, sizeof *r);
    bench_report_summarize(b->rep, b->end_ns - b->start_ns, &r->sum);
    r->interrupted = b->interrupted;
    if (b->o.json) {
        r->params = params_json(b); /* jansson allocates through metcd_malloc (main) */
        if (!r->params) {
            fprintf(stderr, "metcd-bench: out of memory\n");
            return -1;
        }
    }
    r->rep = b->rep;
    b->rep = NULL;
    return 0;
}

static int print_failed(int rc)
{
    if (fflush(stdout) != 0)
        rc = BENCH_ERR_IO;
    if (rc != 0) {
        fprintf(stderr, "metcd-bench: printing the summary: %s\n", bench_strerror(rc));
        return 1;
    }
    return 0;
}

static int report(const struct bench *b, const struct run_result *r)
{
    int rc = b->o.json ? bench_summary_print_json(&r->sum, r->params, stdout)
                       : bench_summary_print(&r->sum, stdout);
    if (print_failed(rc))
        return 1;
    if (r->interrupted)
        return 130;
    return r->sum.ok > 0 ? 0 : 1;
}

static int report_compare(const struct bench *b, const struct run_result *first,
                          const struct run_result *second)
{
    int rc = b->o.json ? bench_compare_print_json(&first->sum, first->params, &second->sum,
                                                  second->params, stdout)
                       : bench_summary_print(&second->sum, stdout);
    if (rc == 0 && !b->o.json)
        rc = bench_compare_print(&first->sum, &second->sum, stdout);
    if (print_failed(rc))
        return 1;
    if (second->interrupted)
        return 130;
    return first->sum.ok > 0 && second->sum.ok > 0 ? 0 : 1;
}

/* Frees everything of one run and clears it, keeping the options. */
static void bench_reset(struct bench *b)
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
    metcd_free(b->txn_keys);
    metcd_free(b->txn_puts);
    metcd_free(b->txn_req_ops);
    metcd_free(b->txn_op_ptrs);
    size_t off = offsetof(struct bench, base);
    memset((char *)b + off, 0, sizeof *b - off);
}

static int txn_setup(struct bench *b)
{
    uint32_t n = b->o.txn_ops;
    b->txn_keys = metcd_malloc((size_t)n * b->o.key_size);
    b->txn_puts = metcd_calloc(n, sizeof *b->txn_puts);
    b->txn_req_ops = metcd_calloc(n, sizeof *b->txn_req_ops);
    b->txn_op_ptrs = metcd_calloc(n, sizeof *b->txn_op_ptrs);
    if (!b->txn_keys || !b->txn_puts || !b->txn_req_ops || !b->txn_op_ptrs)
        return -1;
    for (uint32_t j = 0; j < n; j++) {
        Etcdserverpb__PutRequest *put = &b->txn_puts[j];
        Etcdserverpb__RequestOp *op = &b->txn_req_ops[j];
        etcdserverpb__put_request__init(put);
        put->key.data = (uint8_t *)b->txn_keys + (size_t)j * b->o.key_size;
        put->key.len = b->o.key_size;
        put->value.data = b->val;
        put->value.len = b->o.val_size;
        etcdserverpb__request_op__init(op);
        op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
        op->request_put = put;
        b->txn_op_ptrs[j] = op;
    }
    return 0;
}

static int bench_setup(struct bench *b, const char *const *eps, size_t n_eps)
{
    const struct bench_options *o = &b->o;
    b->eps = eps;
    b->n_eps = n_eps;
    b->rng = o->seed;
    b->base = event_base_new();
    b->conns = metcd_calloc(o->conns, sizeof *b->conns);
    b->slots = metcd_calloc(o->clients, sizeof *b->slots);
    b->idle = metcd_calloc(o->clients, sizeof *b->idle);
    b->key = metcd_malloc(o->key_size);
    b->val = metcd_malloc(o->val_size ? o->val_size : 1);
    if (!b->base || !b->conns || !b->slots || !b->idle || !b->key || !b->val ||
        bench_report_new(&b->rep, o->total) != 0 || (o->mode == BENCH_TXN && txn_setup(b) != 0)) {
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

/* One run of the load against eps: set up, warm up, send o.total
 * requests, then take the outcome into *r. 0, or -1 after a message. */
static int bench_run(struct bench *b, const char *const *eps, size_t n_eps, struct run_result *r)
{
    if (bench_setup(b, eps, n_eps) != 0 || warm_up(b) != 0)
        return -1;
    b->show_progress = b->o.progress && !b->o.json && isatty(STDOUT_FILENO);
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
    return run_result_take(b, r);
}

static void print_run_header(const struct bench *b, const char *which, const char *const *eps,
                             size_t n)
{
    if (b->o.json || b->o.n_compare == 0)
        return;
    printf("\n== %s: metcd-bench %s against ", which, mode_name(b->o.mode));
    for (size_t i = 0; i < n; i++)
        printf("%s%s", i ? "," : "", eps[i]);
    printf("\n");
    fflush(stdout);
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
    struct run_result first = {0}, second = {0};
    rc = 1;
    print_run_header(b, "first", b->o.endpoints, b->o.n_endpoints);
    if (bench_run(b, b->o.endpoints, b->o.n_endpoints, &first) != 0)
        goto out;
    bench_reset(b);
    if (b->o.n_compare == 0 || first.interrupted) {
        rc = report(b, &first);
        goto out;
    }
    if (!b->o.json && print_failed(bench_summary_print(&first.sum, stdout)))
        goto out;
    print_run_header(b, "second", b->o.compare, b->o.n_compare);
    if (bench_run(b, b->o.compare, b->o.n_compare, &second) != 0)
        goto out;
    rc = report_compare(b, &first, &second);
out:
    bench_reset(b);
    run_result_free(&second);
    run_result_free(&first);
    return rc;
}
