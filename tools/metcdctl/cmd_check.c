/* tools/metcdctl/cmd_check.c - etcdctl 3.4's `check perf`: 60 seconds of
 * rate-limited puts of 256-byte keys with 1 KiB values under --prefix from
 * the load model's number of concurrent requests, then the PASS/FAIL
 * verdict on throughput (over 90% of the model's rate), the slowest
 * request (at most 0.5 s) and the latencies' standard deviation (at most
 * 0.1 s); the keys are deleted afterwards (--auto-compact and --auto-defrag
 * tidy up after them).
 *
 * The requests share one HTTP/2 connection (etcdctl opens one client per
 * concurrent request). The progress line on stdout is etcdctl's (its
 * progress bar without a terminal: "\r 12 / 60   20.00% 00m48s", redrawn
 * every 200 ms, and " 60 / 60  100.00% 1m0s" at the end). */
#include "tools/metcdctl/ctl.h"

#include "common/mem.h"
#include "server/etcdserverpb/rpc.pb-c.h"
#include "server/rpc/rpc.h"

#include <event2/event.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PERF_SECONDS 60
#define KEY_SIZE 256
#define VALUE_SIZE 1024
#define MAX_ERROR_KINDS 16

struct load {
    const char *name;
    const char *alias;
    uint32_t limit;   /* puts per second */
    uint32_t clients; /* requests in flight at most */
};

static const struct load loads[] = {
    {"s", "small", 150, 50},
    {"m", "medium", 1000, 200},
    {"l", "large", 8000, 500},
    {"xl", "xLarge", 15000, 1000},
};

struct perf {
    struct ctl *c;
    const struct load *load;
    const char *prefix;
    size_t plen;
    int64_t start_ns, end_ns, done_ns;
    uint64_t issued;
    uint32_t inflight;
    bool stopped;
    double *lats; /* seconds of each successful put */
    size_t n_lats, cap_lats;
    bool oom;
    char *err_text[MAX_ERROR_KINDS];
    uint64_t err_count[MAX_ERROR_KINDS];
    size_t n_err;
    uint8_t value[VALUE_SIZE];
    struct event *tick, *bar;
    bool bar_done;
};

struct put {
    struct perf *p;
    int64_t start_ns;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void record_error(struct perf *p, const char *msg)
{
    for (size_t i = 0; i < p->n_err; i++)
        if (!strcmp(p->err_text[i], msg)) {
            p->err_count[i]++;
            return;
        }
    if (p->n_err == MAX_ERROR_KINDS)
        return;
    if ((p->err_text[p->n_err] = metcd_strdup(msg)))
        p->err_count[p->n_err++] = 1;
}

static void on_put_done(const ProtobufCMessage *resp, enum rpc_code code, const char *msg,
                        void *data)
{
    (void)resp;
    struct put *u = data;
    struct perf *p = u->p;
    int64_t end = now_ns();
    if (code == RPC_CODE_OK) {
        if (p->n_lats == p->cap_lats) {
            size_t cap = p->cap_lats ? p->cap_lats * 2 : 4096;
            double *n = metcd_realloc(p->lats, cap * sizeof(*n));
            if (!n)
                p->oom = true;
            else
                p->lats = n, p->cap_lats = cap;
        }
        if (p->n_lats < p->cap_lats)
            p->lats[p->n_lats++] = (double)(end - u->start_ns) / 1e9;
    } else {
        record_error(p, msg && msg[0] ? msg : rpc_code_name(code));
    }
    metcd_free(u);
    p->inflight--;
    if (p->stopped && p->inflight == 0) {
        p->done_ns = end;
        event_base_loopbreak(p->c->base);
    }
}

/* Go's binary.PutVarint: zig-zag, then 7 bits a byte. */
static size_t put_varint(uint8_t *buf, int64_t x)
{
    uint64_t ux = (uint64_t)x << 1;
    if (x < 0)
        ux = ~ux;
    size_t i = 0;
    while (ux >= 0x80) {
        buf[i++] = (uint8_t)(ux | 0x80);
        ux >>= 7;
    }
    buf[i++] = (uint8_t)ux;
    return i;
}

static void issue(struct perf *p, int64_t now)
{
    uint8_t key[512 + KEY_SIZE];
    memcpy(key, p->prefix, p->plen);
    memset(key + p->plen, 0, KEY_SIZE);
    int64_t r = (int64_t)(((uint64_t)random() << 32 | (uint64_t)random()) & INT64_MAX);
    put_varint(key + p->plen, r);
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
    req.key.data = key;
    req.key.len = p->plen + KEY_SIZE;
    req.value.data = p->value;
    req.value.len = VALUE_SIZE;
    struct put *u = metcd_malloc(sizeof(*u));
    if (!u) {
        p->oom = true;
        return;
    }
    u->p = p;
    u->start_ns = now;
    size_t n_md;
    const struct rpc_md *md = ctl_md(p->c, &n_md);
    p->issued++;
    p->inflight++;
    if (rpc_client_unary(p->c->client, "/etcdserverpb.KV/Put", &req.base,
                         &etcdserverpb__put_response__descriptor, md, n_md, 0, on_put_done,
                         u) != 0) {
        p->inflight--;
        record_error(p, "cannot start the request");
        metcd_free(u);
    }
}

/* The progress line: seconds done of PERF_SECONDS, the percentage, the
 * time left (whole seconds, when over zero). */
static void on_bar(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct perf *p = arg;
    FILE *out = p->c->out;
    int64_t el = now_ns() - p->start_ns;
    int64_t cur = el / 1000000000;
    if (cur >= PERF_SECONDS) {
        if (!p->bar_done) {
            int64_t secs = (el + 500000000) / 1000000000;
            fprintf(out, "\r %d / %d  100.00%% %" PRId64 "m%" PRId64 "s\n", PERF_SECONDS,
                    PERF_SECONDS, secs / 60, secs % 60);
            p->bar_done = true;
        }
        event_del(p->bar);
        fflush(out);
        return;
    }
    fprintf(out, "\r %" PRId64 " / %d  %6.2f%%", cur, PERF_SECONDS,
            (double)cur * 100.0 / PERF_SECONDS);
    if (cur > 0) {
        int64_t left = (el / cur) * (PERF_SECONDS - cur) / 1000000000;
        if (left > 0)
            fprintf(out, " %02" PRId64 "m%02" PRId64 "s", left / 60, left % 60);
    }
    fflush(out);
}

/* The rate limiter (a token bucket of one at the load's rate) and the
 * bound on requests in flight. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct perf *p = arg;
    int64_t now = now_ns();
    if (now >= p->end_ns || p->oom) {
        p->stopped = true;
        event_del(p->tick);
        if (p->inflight == 0) {
            p->done_ns = now;
            event_base_loopbreak(p->c->base);
        }
        return;
    }
    uint64_t due = (uint64_t)((double)(now - p->start_ns) / 1e9 * p->load->limit) + 1;
    while (p->issued < due && p->inflight < p->load->clients && !p->oom)
        issue(p, now);
}

/* The end of the prefix range, as clientv3.GetPrefixRangeEnd. */
static size_t prefix_end(const char *prefix, uint8_t *end)
{
    size_t n = strlen(prefix);
    memcpy(end, prefix, n);
    while (n > 0) {
        if (end[n - 1] < 0xff) {
            end[n - 1]++;
            return n;
        }
        n--;
    }
    end[0] = 0;
    return 1;
}

static int run_load(struct ctl *c, struct perf *p)
{
    p->tick = event_new(c->base, -1, EV_PERSIST, on_tick, p);
    p->bar = event_new(c->base, -1, EV_PERSIST, on_bar, p);
    if (!p->tick || !p->bar) {
        if (p->tick)
            event_free(p->tick);
        if (p->bar)
            event_free(p->bar);
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    }
    struct timeval bar_tv = {0, 200000};
    struct timeval tv = {0, 1000000 / p->load->limit > 1000 ? 1000 : 1000000 / p->load->limit};
    if (tv.tv_usec < 1000)
        tv.tv_usec = 1000;
    p->start_ns = now_ns();
    p->end_ns = p->start_ns + (int64_t)PERF_SECONDS * 1000000000;
    event_add(p->tick, &tv);
    event_add(p->bar, &bar_tv);
    on_bar(-1, 0, p);
    on_tick(-1, 0, p);
    while (!(p->stopped && p->inflight == 0))
        event_base_loop(c->base, EVLOOP_ONCE);
    if (!p->done_ns)
        p->done_ns = now_ns();
    on_bar(-1, 0, p); /* the last line, if the load ended at the deadline */
    event_free(p->tick);
    event_free(p->bar);
    p->tick = p->bar = NULL;
    return p->oom ? ctl_fail(c, CTL_EXIT_ERROR, "out of memory") : 0;
}

static int tidy(struct ctl *c, const struct ctl_args *a, const char *prefix)
{
    uint8_t end[600];
    Etcdserverpb__DeleteRangeRequest del = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    del.key.data = (uint8_t *)prefix;
    del.key.len = strlen(prefix);
    del.range_end.data = end;
    del.range_end.len = prefix_end(prefix, end);
    uint32_t saved = c->command_timeout_ms;
    c->command_timeout_ms = 30000;
    ProtobufCMessage *m;
    int rc = ctl_unary(c, "/etcdserverpb.KV/DeleteRange", &del.base,
                       &etcdserverpb__delete_range_response__descriptor, &m);
    if (rc != 0)
        goto out;
    Etcdserverpb__DeleteRangeResponse *dr = (Etcdserverpb__DeleteRangeResponse *)m;
    int64_t rev = dr->header ? dr->header->revision : 0;
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    if (ctl_bool(a, "auto-compact")) {
        fprintf(c->out, "Compacting with revision %" PRId64 "\n", rev);
        Etcdserverpb__CompactionRequest cr = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
        cr.revision = rev;
        cr.physical = true;
        if ((rc = ctl_unary(c, "/etcdserverpb.KV/Compact", &cr.base,
                            &etcdserverpb__compaction_response__descriptor, &m)) != 0)
            goto out;
        protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
        fprintf(c->out, "Compacted with revision %" PRId64 "\n", rev);
    }
    if (ctl_bool(a, "auto-defrag")) {
        for (size_t i = 0; i < c->n_endpoints && rc == 0; i++) {
            const char *ep = c->endpoints[i];
            fputs("Defragmenting ", c->out);
            ctl_go_quote(c->out, ep, strlen(ep));
            fputc('\n', c->out);
            fflush(c->out);
            struct ctl sub;
            char err[256] = "context deadline exceeded";
            Etcdserverpb__DefragmentRequest req = ETCDSERVERPB__DEFRAGMENT_REQUEST__INIT;
            ProtobufCMessage *dm = NULL;
            rc = ctl_open_endpoint(c, ep, &sub);
            if (rc == 0 &&
                ctl_endpoint_call(&sub, "/etcdserverpb.Maintenance/Defragment", &req.base,
                                  &etcdserverpb__defragment_response__descriptor, &dm, err,
                                  sizeof(err)) != 0)
                rc = ctl_fail(c, CTL_EXIT_ERROR, "%s", err);
            if (dm)
                protobuf_c_message_free_unpacked(dm, &metcd_pb_allocator);
            ctl_close(&sub);
            if (rc == 0) {
                fputs("Defragmented ", c->out);
                ctl_go_quote(c->out, ep, strlen(ep));
                fputc('\n', c->out);
            }
        }
    }
out:
    c->command_timeout_ms = saved;
    return rc;
}

static int cmd_perf(struct ctl *c, const struct ctl_args *a)
{
    const char *model = ctl_str(a, "load");
    const struct load *load = NULL;
    for (size_t i = 0; i < sizeof(loads) / sizeof(loads[0]); i++)
        if (!strcmp(model, loads[i].name) || !strcmp(model, loads[i].alias))
            load = &loads[i];
    if (!load)
        return ctl_fail(c, CTL_EXIT_BAD_FEATURE, "unknown load option %s", model);
    const char *prefix = ctl_str(a, "prefix");
    if (strlen(prefix) > 512)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "--prefix is longer than 512 bytes");
    int rc = ctl_connect(c);
    if (rc != 0)
        return rc;

    /* the prefix must be empty */
    uint8_t end[600];
    Etcdserverpb__RangeRequest rr = ETCDSERVERPB__RANGE_REQUEST__INIT;
    rr.key.data = (uint8_t *)prefix;
    rr.key.len = strlen(prefix);
    rr.range_end.data = end;
    rr.range_end.len = prefix_end(prefix, end);
    rr.limit = 1;
    ProtobufCMessage *m;
    uint32_t saved = c->command_timeout_ms;
    c->command_timeout_ms = PERF_SECONDS * 1000;
    rc = ctl_unary(c, "/etcdserverpb.KV/Range", &rr.base, &etcdserverpb__range_response__descriptor,
                   &m);
    c->command_timeout_ms = saved;
    if (rc != 0)
        return rc;
    size_t n_kvs = ((Etcdserverpb__RangeResponse *)m)->n_kvs;
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    if (n_kvs > 0) {
        fputs("Error: prefix ", c->err);
        ctl_go_quote(c->err, prefix, strlen(prefix));
        fprintf(c->err, " has keys. Delete with etcdctl del --prefix %s first\n", prefix);
        return CTL_EXIT_INVALID_INPUT;
    }

    struct perf *p = metcd_calloc(1, sizeof(*p));
    if (!p)
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    p->c = c;
    p->load = load;
    p->prefix = prefix;
    p->plen = strlen(prefix);
    rc = run_load(c, p);
    if (rc == 0)
        rc = tidy(c, a, prefix);
    if (rc == 0) {
        bool ok = true;
        double total = (double)(p->done_ns - p->start_ns) / 1e9;
        double rps = total > 0 ? (double)p->n_lats / total : 0, slowest = 0, sum = 0, var = 0;
        for (size_t i = 0; i < p->n_lats; i++) {
            sum += p->lats[i];
            if (p->lats[i] > slowest)
                slowest = p->lats[i];
        }
        double avg = p->n_lats ? sum / (double)p->n_lats : 0;
        for (size_t i = 0; i < p->n_lats; i++)
            var += (p->lats[i] - avg) * (p->lats[i] - avg);
        double stddev = p->n_lats ? sqrt(var / (double)p->n_lats) : 0;
        if (p->n_err) {
            fputs("FAIL: too many errors\n", c->out);
            for (size_t i = 0; i < p->n_err; i++)
                fprintf(c->out, "FAIL: ERROR(%s) -> %" PRIu64 "\n", p->err_text[i],
                        p->err_count[i]);
            ok = false;
        }
        if (rps / load->limit <= 0.9) {
            fprintf(c->out, "FAIL: Throughput too low: %d writes/s\n", (int)rps + 1);
            ok = false;
        } else {
            fprintf(c->out, "PASS: Throughput is %d writes/s\n", (int)rps + 1);
        }
        if (slowest > 0.5) {
            fprintf(c->out, "Slowest request took too long: %fs\n", slowest);
            ok = false;
        } else {
            fprintf(c->out, "PASS: Slowest request took %fs\n", slowest);
        }
        if (stddev > 0.1) {
            fprintf(c->out, "Stddev too high: %fs\n", stddev);
            ok = false;
        } else {
            fprintf(c->out, "PASS: Stddev is %fs\n", stddev);
        }
        fputs(ok ? "PASS\n" : "FAIL\n", c->out);
        rc = ok ? 0 : CTL_EXIT_ERROR;
    }
    for (size_t i = 0; i < p->n_err; i++)
        metcd_free(p->err_text[i]);
    metcd_free(p->lats);
    metcd_free(p);
    return rc;
}

static const struct ctl_flag perf_flags[] = {
    {"auto-compact", 0, CTL_FLAG_BOOL, "false",
     "Compact storage with last revision after test is finished."},
    {"auto-defrag", 0, CTL_FLAG_BOOL, "false", "Defragment storage after test is finished."},
    {"load", 0, CTL_FLAG_STRING, "s",
     "The performance check's workload model. Accepted workloads: s(small), m(medium), "
     "l(large), xl(xLarge)"},
    {"prefix", 0, CTL_FLAG_STRING, "/etcdctl-check-perf/",
     "The prefix for writing the performance check's keys."},
};

static const struct ctl_cmd check_perf = {.name = "perf",
                                          .use = "perf [options]",
                                          .summary = "Check the performance of the etcd cluster",
                                          .flags = perf_flags,
                                          .n_flags = 4,
                                          .run = cmd_perf};

static const struct ctl_cmd *const check_subs[] = {&check_perf, NULL};

const struct ctl_cmd ctl_cmd_check = {.name = "check",
                                      .use = "check <subcommand>",
                                      .summary =
                                          "commands for checking properties of the etcd cluster",
                                      .subs = check_subs};
