/* tools/bench/watch.c - metcd-bench watch: fan-out of puts to many
 * watchers (issue 7, "Benchmark").
 *
 * Phases, on one libevent loop:
 *   1. create: --streams Watch streams (stream i on connection i mod
 *      --conns), watcher i on stream i / ceil(watchers/streams) and key
 *      i mod --keys, so every stream watches a run of keys and the
 *      watchers of one key sit on different streams. Creates are sent as
 *      fast as each stream's outbound queue takes them.
 *   2. settle: after the last created response, wait --settle-ms, then
 *      read the server's VmRSS (before - after = the watchers' memory).
 *   3. put: --total puts round-robin over the keys, --clients in flight,
 *      paced at --rate puts/s (0: as fast as they complete), on a
 *      connection of their own. Each value starts with the put's send time
 *      (CLOCK_MONOTONIC ns, little-endian): an event's latency is its
 *      arrival time minus that.
 *   4. drain: after the last put, wait until every expected event has
 *      arrived (the key's watcher count per successful put) or --drain-ms.
 * Responses are never unpacked: the rpc client hands the raw bytes
 * (rpc_ccall_ops.on_raw) to bench_watch_decode, which reads watch_id,
 * created, canceled and each event value's first 8 bytes.
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
#include <sys/resource.h>
#include <time.h>

#define PATH_WATCH "/etcdserverpb.Watch/Watch"
#define PATH_PUT "/etcdserverpb.KV/Put"
#define PATH_RANGE "/etcdserverpb.KV/Range"
#define CREATE_TIMEOUT_S 600

enum phase { PH_CREATE, PH_SETTLE, PH_PUT, PH_DRAIN, PH_DONE };

struct wbench;

struct wstream {
    struct wbench *b;
    struct rpc_ccall *call; /* NULL once closed */
    uint32_t first, count;  /* its watchers: first .. first+count-1 */
    uint32_t next;          /* next one to create */
};

struct wbench {
    const struct bench_options *o;
    struct event_base *base;
    struct rpc_client **conns; /* o->conns, for the streams */
    struct rpc_client *putc;   /* the puts' connection */
    struct wstream *streams;
    uint32_t *per_key; /* watchers per key */
    struct bench_report *rep;
    enum phase phase;
    int64_t pid;
    uint64_t created, refused;
    uint64_t events, expected, unsampled, bad_msgs;
    uint64_t puts_issued, puts_ok, puts_failed, inflight;
    uint64_t t_create0, t_created, t_put0, t_puts_done, t_last_event, t_end;
    uint64_t rss_before, rss_after;
    double cpu0, cpu1, client_cpu0, client_cpu1;
    bool have_rss, have_cpu;
    char *key;
    uint8_t *val;
    struct event *timer_ev, *rate_ev, *sigint_ev;
    bool interrupted, failed;
    char err[512];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double self_cpu(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void arm(struct event *ev, uint64_t ns)
{
    struct timeval tv = {(time_t)(ns / 1000000000u), (suseconds_t)(ns % 1000000000u / 1000)};
    evtimer_add(ev, &tv);
}

static void finish(struct wbench *b)
{
    if (b->phase == PH_DONE)
        return;
    b->phase = PH_DONE;
    b->t_end = now_ns();
    event_base_loopbreak(b->base);
}

static void fail(struct wbench *b, const char *what, enum rpc_code code, const char *msg)
{
    if (!b->failed) {
        b->failed = true;
        snprintf(b->err, sizeof b->err, "%s: %s: %s", what, rpc_code_name(code),
                 msg && msg[0] ? msg : "-");
    }
    finish(b);
}

/* ---------------- puts ---------------- */

static void put_issue(struct wbench *b);

static void maybe_done(struct wbench *b)
{
    if (b->phase == PH_DRAIN && b->events >= b->expected)
        finish(b);
}

static void on_put_done(const ProtobufCMessage *resp, enum rpc_code code, const char *msg,
                        void *data)
{
    (void)resp;
    struct wbench *b = data;
    b->inflight--;
    if (b->phase == PH_DONE)
        return;
    if (code == RPC_CODE_OK) {
        b->puts_ok++;
    } else {
        b->puts_failed++;
        char text[512];
        snprintf(text, sizeof text, "put: %s: %s", rpc_code_name(code), msg && msg[0] ? msg : "-");
        bench_report_error(b->rep, text);
    }
    if (b->puts_ok + b->puts_failed == b->o->total) {
        b->t_puts_done = now_ns();
        b->phase = PH_DRAIN;
        arm(b->timer_ev, (uint64_t)b->o->drain_ms * 1000000u);
        maybe_done(b);
        return;
    }
    put_issue(b);
}

static uint64_t due_ns(const struct wbench *b, uint64_t k)
{
    return b->t_put0 + (uint64_t)((double)k * 1e9 / b->o->rate);
}

static void put_issue(struct wbench *b)
{
    const struct bench_options *o = b->o;
    while (b->phase == PH_PUT && b->puts_issued < o->total && b->inflight < o->clients) {
        uint64_t now = now_ns();
        if (o->rate > 0 && due_ns(b, b->puts_issued) > now) {
            if (!evtimer_pending(b->rate_ev, NULL))
                arm(b->rate_ev, due_ns(b, b->puts_issued) - now);
            return;
        }
        uint32_t k = (uint32_t)(b->puts_issued % o->keys);
        bench_format_key(b->key, o->key_size, k); /* size checked by the options */
        for (int i = 0; i < 8; i++)
            b->val[i] = (uint8_t)(now >> (8 * i));
        Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
        put.key.data = (uint8_t *)b->key;
        put.key.len = o->key_size;
        put.value.data = b->val;
        put.value.len = o->val_size;
        b->puts_issued++;
        /* the events of this put are expected once it is sent: a put that
         * times out may still be applied (counted as failed either way) */
        b->expected += b->per_key[k];
        b->inflight++;
        int rc =
            rpc_client_unary(b->putc, PATH_PUT, &put.base, &etcdserverpb__put_response__descriptor,
                             NULL, 0, o->timeout_ms, on_put_done, b);
        if (rc != 0) {
            b->inflight--;
            b->expected -= b->per_key[k];
            fail(b, "put", RPC_CODE_INTERNAL, rpc_strerror(rc));
            return;
        }
    }
}

static void on_rate_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    put_issue(arg);
}

static void start_puts(struct wbench *b)
{
    if (b->pid > 0) {
        b->have_rss = bench_proc_rss_kib(b->pid, &b->rss_after) == 0 && b->have_rss;
        b->have_cpu = bench_proc_cpu_secs(b->pid, &b->cpu0) == 0;
    }
    b->client_cpu0 = self_cpu();
    b->phase = PH_PUT;
    b->t_put0 = now_ns();
    put_issue(b);
}

/* ---------------- watch streams ---------------- */

static void sample(void *arg, uint64_t send_ns)
{
    struct wbench *b = arg;
    uint64_t now = b->t_last_event;
    if (b->phase != PH_PUT && b->phase != PH_DRAIN)
        return;
    if (send_ns > now || bench_report_add(b->rep, now - send_ns) != 0)
        b->unsampled++;
}

static void created_one(struct wbench *b)
{
    if (b->created + b->refused < b->o->watchers)
        return;
    b->t_created = now_ns();
    b->phase = PH_SETTLE;
    event_del(b->timer_ev);
    arm(b->timer_ev, (uint64_t)b->o->settle_ms * 1000000u);
}

static void on_watch_raw(struct rpc_ccall *c, const uint8_t *msg, size_t len, void *data)
{
    (void)c;
    struct wstream *st = data;
    struct wbench *b = st->b;
    uint64_t n;
    bool created, canceled;
    int64_t id;
    b->t_last_event = now_ns();
    if (bench_watch_decode(msg, len, &n, &created, &canceled, &id, sample, b) != 0) {
        b->bad_msgs++;
        return;
    }
    if (created) {
        if (canceled || id < 0)
            b->refused++;
        else
            b->created++;
        if (b->phase == PH_CREATE)
            created_one(b);
    }
    b->events += n;
    if (n)
        maybe_done(b);
}

static void stream_fill(struct wstream *st);

static void on_watch_drain(struct rpc_ccall *c, void *data)
{
    (void)c;
    stream_fill(data);
}

static void on_watch_close(struct rpc_ccall *c, enum rpc_code code, const char *msg, void *data)
{
    (void)c;
    struct wstream *st = data;
    st->call = NULL;
    if (st->b->phase != PH_DONE)
        fail(st->b, "watch stream closed", code, msg);
}

static const struct rpc_ccall_ops watch_ops = {
    .on_close = on_watch_close,
    .on_drain = on_watch_drain,
    .on_raw = on_watch_raw,
};

/* Sends the stream's creates until its outbound queue is full (on_drain
 * goes on) or all are sent. */
static void stream_fill(struct wstream *st)
{
    struct wbench *b = st->b;
    const struct bench_options *o = b->o;
    char key[64];
    while (st->call && st->next < st->count) {
        uint32_t i = st->first + st->next;
        bench_format_key(key, o->key_size, i % o->keys);
        Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
        cr.key.data = (uint8_t *)key;
        cr.key.len = o->key_size;
        Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
        req.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
        req.create_request = &cr;
        int rc = rpc_ccall_send(st->call, &req.base);
        if (rc == RPC_ERR_FULL)
            return;
        if (rc != 0) {
            fail(b, "watch create", RPC_CODE_INTERNAL, rpc_strerror(rc));
            return;
        }
        st->next++;
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wbench *b = arg;
    switch (b->phase) {
    case PH_CREATE:
        fail(b, "watch create", RPC_CODE_DEADLINE_EXCEEDED, "not every watcher was created");
        break;
    case PH_SETTLE:
        start_puts(b);
        break;
    case PH_DRAIN:
        finish(b); /* the report says how many events are missing */
        break;
    default:
        break;
    }
}

static void on_sigint(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wbench *b = arg;
    b->interrupted = true;
    finish(b);
}

/* ---------------- setup ---------------- */

static int new_client(struct wbench *b, struct rpc_client **out, uint32_t i)
{
    const char *eps[BENCH_MAX_ENDPOINTS];
    size_t n = b->o->n_endpoints;
    for (size_t j = 0; j < n; j++)
        eps[j] = b->o->endpoints[(i + j) % n];
    struct rpc_client_config cfg = {
        .endpoints = eps,
        .n_endpoints = n,
        .max_pending_calls = (size_t)b->o->streams + b->o->clients + 16,
    };
    int rc = rpc_client_new(out, b->base, &cfg);
    if (rc != 0) {
        fprintf(stderr, "metcd-bench: cannot create gRPC client: %s\n", rpc_strerror(rc));
        return -1;
    }
    /* one serializable range, so dialing is not measured */
    Etcdserverpb__RangeRequest range = ETCDSERVERPB__RANGE_REQUEST__INIT;
    range.key.data = (uint8_t *)"metcd-bench/warmup";
    range.key.len = strlen("metcd-bench/warmup");
    range.serializable = true;
    ProtobufCMessage *resp = NULL;
    enum rpc_code code = RPC_CODE_OK;
    char *msg = NULL;
    rc = rpc_client_unary_sync(*out, PATH_RANGE, &range.base,
                               &etcdserverpb__range_response__descriptor, NULL, 0, 10000, &resp,
                               &code, &msg);
    if (resp)
        protobuf_c_message_free_unpacked(resp, &metcd_pb_allocator);
    if (rc != 0 || code != RPC_CODE_OK) {
        fprintf(stderr, "metcd-bench: connection %" PRIu32 " (endpoint %s) failed: %s\n", i, eps[0],
                rc    ? rpc_strerror(rc)
                : msg ? msg
                      : rpc_code_name(code));
        metcd_free(msg);
        return -1;
    }
    metcd_free(msg);
    return 0;
}

static int find_pid(struct wbench *b)
{
    int64_t pid = b->o->server_pid;
    if (pid == -1) {
        const char *ep = b->o->endpoints[0];
        const char *colon = strrchr(ep, ':');
        uint16_t port = colon ? (uint16_t)strtoul(colon + 1, NULL, 10) : 0;
        if (bench_proc_find_listener(port, &pid) != 0) {
            fprintf(stderr, "metcd-bench: no process of ours listens on port %u\n", port);
            return -1;
        }
    }
    b->pid = pid;
    if (pid > 0) {
        if (bench_proc_rss_kib(pid, &b->rss_before) != 0) {
            fprintf(stderr, "metcd-bench: cannot read /proc/%" PRId64 "/status\n", pid);
            return -1;
        }
        b->have_rss = true;
    }
    return 0;
}

static int setup(struct wbench *b)
{
    const struct bench_options *o = b->o;
    b->base = event_base_new();
    b->conns = metcd_calloc(o->conns, sizeof *b->conns);
    b->streams = metcd_calloc(o->streams, sizeof *b->streams);
    b->per_key = metcd_calloc(o->keys, sizeof *b->per_key);
    b->key = metcd_malloc(o->key_size);
    b->val = metcd_malloc(o->val_size);
    uint64_t cap = (uint64_t)o->total * ((o->watchers + o->keys - 1) / o->keys);
    if (cap > o->max_samples)
        cap = o->max_samples;
    if (!b->base || !b->conns || !b->streams || !b->per_key || !b->key || !b->val ||
        bench_report_new(&b->rep, (size_t)(cap ? cap : 1)) != 0) {
        fprintf(stderr, "metcd-bench: out of memory\n");
        return -1;
    }
    memset(b->val, 'v', o->val_size);
    for (uint32_t i = 0; i < o->watchers; i++)
        b->per_key[i % o->keys]++;
    uint32_t per = (o->watchers + o->streams - 1) / o->streams;
    for (uint32_t s = 0; s < o->streams; s++) {
        struct wstream *st = &b->streams[s];
        st->b = b;
        st->first = s * per;
        st->count = st->first >= o->watchers        ? 0
                    : o->watchers - st->first < per ? o->watchers - st->first
                                                    : per;
    }
    b->timer_ev = evtimer_new(b->base, on_timer, b);
    b->rate_ev = evtimer_new(b->base, on_rate_tick, b);
    b->sigint_ev = evsignal_new(b->base, SIGINT, on_sigint, b);
    if (!b->timer_ev || !b->rate_ev || !b->sigint_ev || event_add(b->sigint_ev, NULL) != 0) {
        fprintf(stderr, "metcd-bench: cannot create loop events\n");
        return -1;
    }
    for (uint32_t i = 0; i < o->conns; i++)
        if (new_client(b, &b->conns[i], i) != 0)
            return -1;
    if (new_client(b, &b->putc, o->conns) != 0)
        return -1;
    return find_pid(b);
}

static void teardown(struct wbench *b)
{
    b->phase = PH_DONE;
    if (b->conns)
        for (uint32_t i = 0; i < b->o->conns; i++)
            rpc_client_free(b->conns[i]);
    rpc_client_free(b->putc);
    if (b->timer_ev)
        event_free(b->timer_ev);
    if (b->rate_ev)
        event_free(b->rate_ev);
    if (b->sigint_ev)
        event_free(b->sigint_ev);
    if (b->base)
        event_base_free(b->base);
    bench_report_free(b->rep);
    metcd_free(b->conns);
    metcd_free(b->streams);
    metcd_free(b->per_key);
    metcd_free(b->key);
    metcd_free(b->val);
}

/* ---------------- report ---------------- */

static double secs(uint64_t from, uint64_t to)
{
    return to > from ? (double)(to - from) / 1e9 : 0;
}

struct figures {
    double create_s, put_s, events_s, eps, pps, rss_per_watcher, server_cpu, client_cpu;
};

static void figures(const struct wbench *b, struct figures *f)
{
    memset(f, 0, sizeof *f);
    f->create_s = secs(b->t_create0, b->t_created);
    uint64_t puts_end = b->t_puts_done ? b->t_puts_done : b->t_end;
    f->put_s = b->t_put0 ? secs(b->t_put0, puts_end) : 0;
    f->events_s = b->t_put0 && b->t_last_event > b->t_put0 ? secs(b->t_put0, b->t_last_event) : 0;
    f->eps = f->events_s > 0 ? (double)b->events / f->events_s : 0;
    f->pps = f->put_s > 0 ? (double)b->puts_ok / f->put_s : 0;
    if (b->have_rss && b->rss_after >= b->rss_before)
        f->rss_per_watcher = (double)(b->rss_after - b->rss_before) * 1024.0 / b->o->watchers;
    f->server_cpu = b->have_cpu ? b->cpu1 - b->cpu0 : 0;
    f->client_cpu = b->client_cpu1 - b->client_cpu0;
}

static char *params_json(const struct wbench *b, const struct figures *f)
{
    const struct bench_options *o = b->o;
    json_t *eps = json_array();
    for (size_t i = 0; eps && i < o->n_endpoints; i++)
        json_array_append_new(eps, json_string(o->endpoints[i]));
    json_t *obj = json_pack(
        "{s:s,s:o,s:i,s:i,s:I,s:i,s:i,s:I,s:I,s:I,s:f,s:b,"
        "s:I,s:I,s:f,s:I,s:I,s:f,s:f,s:I,s:I,s:f,s:f,s:I,s:I,s:f,s:f,s:f,s:I,s:I}",
        "mode", "watch", "endpoints", eps, "conns", (int)o->conns, "clients", (int)o->clients,
        "total", (json_int_t)o->total, "key_size", (int)o->key_size, "val_size", (int)o->val_size,
        "watchers", (json_int_t)o->watchers, "keys", (json_int_t)o->keys, "streams",
        (json_int_t)o->streams, "rate", o->rate, "interrupted", b->interrupted, "created",
        (json_int_t)b->created, "refused", (json_int_t)b->refused, "create_s", f->create_s,
        "puts_ok", (json_int_t)b->puts_ok, "puts_failed", (json_int_t)b->puts_failed, "put_s",
        f->put_s, "puts_per_s", f->pps, "events", (json_int_t)b->events, "events_expected",
        (json_int_t)b->expected, "events_s", f->events_s, "events_per_s", f->eps, "rss_before_kib",
        (json_int_t)(b->have_rss ? b->rss_before : 0), "rss_after_kib",
        (json_int_t)(b->have_rss ? b->rss_after : 0), "rss_per_watcher_bytes", f->rss_per_watcher,
        "server_cpu_s", f->server_cpu, "client_cpu_s", f->client_cpu, "server_pid",
        (json_int_t)b->pid, "unsampled", (json_int_t)b->unsampled);
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    return s;
}

static int print_text(const struct wbench *b, const struct figures *f,
                      const struct bench_summary *sum)
{
    const struct bench_options *o = b->o;
    printf("Watchers:     %" PRIu32 " on %" PRIu32 " keys over %" PRIu32 " streams, %" PRIu32
           " connections\n",
           o->watchers, o->keys, o->streams, o->conns);
    printf("Create:       %" PRIu64 " created, %" PRIu64 " refused in %.3f s (%.0f watchers/s)\n",
           b->created, b->refused, f->create_s,
           f->create_s > 0 ? (double)(b->created + b->refused) / f->create_s : 0.0);
    if (b->have_rss)
        printf("Server VmRSS: %.1f MiB before, %.1f MiB after: %.1f bytes per watcher\n",
               (double)b->rss_before / 1024, (double)b->rss_after / 1024, f->rss_per_watcher);
    printf("Puts:         %" PRIu64 " ok, %" PRIu64 " failed in %.3f s (%.1f puts/s", b->puts_ok,
           b->puts_failed, f->put_s, f->pps);
    if (o->rate > 0)
        printf(", --rate %.0f", o->rate);
    printf(")\n");
    printf("Events:       %" PRIu64 " of %" PRIu64 " expected in %.3f s: %.0f events/s\n",
           b->events, b->expected, f->events_s, f->eps);
    if (b->have_cpu)
        printf("Server CPU:   %.2f s from the first put to the end (%.0f events per CPU-second)\n",
               f->server_cpu, f->server_cpu > 0 ? (double)b->events / f->server_cpu : 0.0);
    printf("Client CPU:   %.2f s\n", f->client_cpu);
    printf("Put-to-event latency (%" PRIu64 " samples", sum->ok);
    if (b->unsampled)
        printf(", %" PRIu64 " not sampled", b->unsampled);
    printf("):\n");
    for (size_t i = 0; i < BENCH_N_PCTS; i++)
        printf("  %5.1f%% in %.3f ms\n", bench_pcts[i], sum->pct[i] * 1e3);
    printf("  slowest    %.3f ms\n", sum->slowest * 1e3);
    if (sum->n_errors) {
        printf("Errors:\n");
        for (size_t i = 0; i < sum->n_errors; i++)
            printf("  [%" PRIu64 "] %s\n", sum->errors[i].count, sum->errors[i].msg);
    }
    if (b->bad_msgs)
        printf("Undecodable responses: %" PRIu64 "\n", b->bad_msgs);
    return ferror(stdout) ? BENCH_ERR_IO : 0;
}

static int report(struct wbench *b)
{
    if (b->pid > 0 && b->have_cpu && bench_proc_cpu_secs(b->pid, &b->cpu1) != 0)
        b->have_cpu = false;
    b->client_cpu1 = self_cpu();
    struct figures f;
    figures(b, &f);
    struct bench_summary sum;
    bench_report_summarize(b->rep, b->t_end - (b->t_put0 ? b->t_put0 : b->t_end), &sum);
    int rc;
    if (b->o->json) {
        char *extra = params_json(b, &f);
        rc = extra ? bench_summary_print_json(&sum, extra, stdout) : BENCH_ERR_NOMEM;
        metcd_free(extra);
    } else {
        rc = print_text(b, &f, &sum);
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
    return !b->failed && b->puts_ok > 0 && b->events > 0 ? 0 : 1;
}

int bench_watch_main(const struct bench_options *o)
{
    static struct wbench bench; /* one run per process */
    struct wbench *b = &bench;
    memset(b, 0, sizeof *b);
    b->o = o;
    int rc = 1;
    if (setup(b) != 0)
        goto out;
    b->t_create0 = now_ns();
    arm(b->timer_ev, (uint64_t)CREATE_TIMEOUT_S * 1000000000u);
    for (uint32_t s = 0; s < o->streams && !b->failed; s++) {
        struct wstream *st = &b->streams[s];
        int src = rpc_ccall_start(b->conns[s % o->conns], PATH_WATCH,
                                  &etcdserverpb__watch_response__descriptor, NULL, 0, 0, &watch_ops,
                                  st, &st->call);
        if (src != 0) {
            fprintf(stderr, "metcd-bench: cannot start a watch stream: %s\n", rpc_strerror(src));
            goto out;
        }
        stream_fill(st);
    }
    if (b->phase != PH_DONE)
        event_base_dispatch(b->base);
    if (!b->t_end)
        b->t_end = now_ns();
    rc = report(b);
out:
    teardown(b);
    return rc;
}
