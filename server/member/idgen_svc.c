/* server/member/idgen_svc.c - the member's ID service: one snowflake
 * worker (its own worker id, owner = this member's id) and one segment
 * allocator (its own double buffers per tag), both from idgen/ over the
 * member's KV (idgen_kv.c), served as
 *
 *   idgenpb.IdGen (idgen/idgenpb/idgen.proto): Next, Snowflake, Decode,
 *                 CreateTag, ListTags, Workers;
 *   Leaf's HTTP API on the client port: GET /api/segment/get/{tag},
 *                 GET /api/snowflake/get/{tag}, GET /decodeSnowflakeId?snowflakeId=,
 *                 GET /cache (both buffers of every tag; ?format=json).
 *
 * A request that cannot be answered at once (a segment is loading, the
 * clock must catch up a few ms) is parked with what it has so far and
 * taken up again when the load ends (IDGEN_EVENT_SEGMENT) or on a 1 ms
 * timer; parked requests are answered in arrival order, so the IDs of one
 * tag leave this member in increasing order. At most MAX_PARKED wait, each
 * up to the request timeout.
 *
 * The segment allocator (reads only: a listing and a watch of segments/)
 * starts once the member serves. The snowflake worker starts with the first
 * snowflake request (or at once with METCD_IDGEN_WORKER=eager): until then
 * the member writes nothing of its own, so its revisions stay those of its
 * clients', as etcd's do. Requests that arrive while the worker claims its
 * id wait for it. A worker that left (clock drift too large) joins again
 * after RESTART_MS. Settings come from the environment (METCD_IDGEN_*, see
 * the README), among them a clock offset for tests that set a member's
 * clock back. */
#include "server/member/internal.h"

#include "common/mem.h"
#include "idgen/idgen.h"
#include "idgen/idgenpb/idgen.pb-c.h"

#include <errno.h>
#include <event2/event.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_NEXT_COUNT 1000000
#define MAX_SNOWFLAKE_COUNT 100000
#define MAX_RANGES 4096 /* per response: a tag with tiny segments gets fewer IDs */
#define MAX_PARKED 65536
#define RESTART_MS 1000
#define DEFAULT_STEP 1000

enum pend_kind { PEND_NEXT, PEND_SNOWFLAKE };

/* What a parked call's data points to. */
enum wait_type { WAIT_IDS = 1, WAIT_KV = 2 };

/* A request waiting for IDs: a gRPC call or an HTTP request. */
struct pend {
    int type; /* WAIT_IDS */
    struct idgen_host *h;
    struct pend *prev, *next;
    int kind;
    struct rpc_call *call;
    struct rpc_http_req *http;
    char tag[IDGEN_MAX_TAG_LEN + 1];
    uint64_t want, got;
    idgen_range *ranges; /* inl, or allocated once more are needed */
    size_t n, cap;
    idgen_range inl[4];
    bool heap; /* parked: allocated (a request answered at once lives on the stack) */
    int64_t deadline_ms;
};

/* A CreateTag or Workers call waiting for the KV. */
struct kv_wait {
    int type;              /* WAIT_KV */
    struct idgen_host *h;  /* NULL once the host is gone */
    struct rpc_call *call; /* NULL once the client went away */
    struct kv_wait *prev, *next;
};

struct idgen_host {
    member *m;
    idgen_kv kv;
    idgen_clock clock;
    int64_t clock_offset_ms;
    idgen_worker_config wcfg;
    idgen_segs_config scfg;
    char owner[17];
    char info[512];
    char *prefix;

    idgen_worker *worker;
    bool want_worker; /* a snowflake request came (or METCD_IDGEN_WORKER=eager) */
    idgen_segs *segs;
    struct event *tick_ev, *wait_ev;
    int64_t restart_at; /* the worker left: join again then (0: no) */

    struct pend *seg_head, *seg_tail; /* waiting for a segment load */
    struct pend *sf_head, *sf_tail;   /* waiting for the clock */
    size_t n_parked;
    /* a walk of the lists is under way (a notification arriving inside it
     * is handled once it ends, as a retry of everything) */
    int walking;
    bool walk_again;
    struct kv_wait *kv_waits;
};

/* ---- settings --------------------------------------------------------------------------- */

static int64_t wall_ms(void *data)
{
    struct idgen_host *h = data;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + h->clock_offset_ms;
}

/* Reads METCD_IDGEN_<name> as an integer in [lo, hi] into *out (left
 * alone when unset). */
static int env_i64(member *m, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    char var[64];
    snprintf(var, sizeof(var), "METCD_IDGEN_%s", name);
    const char *v = getenv(var);
    if (!v || !v[0])
        return 0;
    errno = 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < lo || x > hi) {
        member_logf(m, MLOG_CRIT, "idgen", "%s=%s: want an integer in [%lld, %lld]", var, v,
                    (long long)lo, (long long)hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int read_settings(struct idgen_host *h)
{
    member *m = h->m;
    int64_t epoch = 0, maxw = 0, block = 0, error = 0, ttl = 0, upload = 0, reserve = 0,
            maxstep = 0;
    const int64_t day = 86400000LL;
    if (env_i64(m, "CLOCK_OFFSET_MS", -3650 * day, 3650 * day, &h->clock_offset_ms) ||
        env_i64(m, "EPOCH_MS", 1, 4102444800000LL, &epoch) ||
        env_i64(m, "MAX_WORKERS", 1, IDGEN_MAX_WORKERS, &maxw) ||
        env_i64(m, "MAX_DRIFT_BLOCK_MS", -1, day, &block) ||
        env_i64(m, "MAX_DRIFT_ERROR_MS", 1, day, &error) ||
        env_i64(m, "LEASE_TTL", 1, 3600, &ttl) ||
        env_i64(m, "UPLOAD_INTERVAL_MS", 100, 3600000, &upload) ||
        env_i64(m, "RESERVE_MS", 100, 3600000, &reserve) ||
        env_i64(m, "MAX_STEP", 1, INT64_MAX / 4, &maxstep))
        return -1;
    const char *start = getenv("METCD_IDGEN_WORKER");
    if (start && start[0] && strcmp(start, "eager") != 0 && strcmp(start, "lazy") != 0) {
        member_logf(m, MLOG_CRIT, "idgen", "METCD_IDGEN_WORKER=%s: want eager or lazy", start);
        return -1;
    }
    h->want_worker = start && !strcmp(start, "eager");
    const char *prefix = getenv("METCD_IDGEN_PREFIX");
    h->prefix = metcd_strdup(prefix && prefix[0] ? prefix : IDGEN_DEFAULT_PREFIX);
    if (!h->prefix)
        return -1;
    snprintf(h->owner, sizeof(h->owner), "%016llx", (unsigned long long)m->id);
    snprintf(h->info, sizeof(h->info), "%s %s", m->opt.name ? m->opt.name : "",
             m->opt.n_advertise_client_urls ? m->opt.advertise_client_urls[0] : "");
    h->wcfg = (idgen_worker_config){
        .prefix = h->prefix,
        .owner = h->owner,
        .info = h->info,
        .epoch_ms = epoch,
        .max_workers = (uint32_t)maxw,
        .lease_ttl_s = ttl,
        .upload_interval_ms = upload,
        .reserve_ms = reserve,
        .max_drift_block_ms = block,
        .max_drift_error_ms = error,
    };
    h->scfg = (idgen_segs_config){.prefix = h->prefix, .max_step = maxstep};
    /* checked now, so a bad combination stops the member at start */
    int64_t b = block ? block : 1000, e = error ? error : 5000;
    int64_t u = upload ? upload : 2000, r = reserve ? reserve : 4000;
    if (e < b || r < u) {
        member_logf(m, MLOG_CRIT, "idgen",
                    "METCD_IDGEN_MAX_DRIFT_ERROR_MS must be >= METCD_IDGEN_MAX_DRIFT_BLOCK_MS and "
                    "METCD_IDGEN_RESERVE_MS >= METCD_IDGEN_UPLOAD_INTERVAL_MS");
        return -1;
    }
    return 0;
}

/* ---- answers ---------------------------------------------------------------------------- */

static void fail_call(struct rpc_call *call, int err)
{
    rpc_call_set_data(call, NULL);
    member_fail_call(call, err);
}

static int http_status(int err)
{
    enum rpc_code code;
    const char *msg;
    member_error_status(err, &code, &msg);
    return code == RPC_CODE_INVALID_ARGUMENT ? 400 : code == RPC_CODE_NOT_FOUND ? 404 : 500;
}

static void http_fail(struct rpc_http_req *req, int err)
{
    enum rpc_code code;
    const char *msg;
    member_error_status(err, &code, &msg);
    rpc_http_respond(req, http_status(err), "text/plain; charset=utf-8", msg, strlen(msg));
}

static void pend_free(struct pend *p)
{
    if (p->ranges != p->inl)
        metcd_free(p->ranges);
    if (p->heap)
        metcd_free(p);
}

/* Answers p with what it holds (or err), and frees it (unlinked before). */
static void pend_answer(struct pend *p, int err)
{
    member *m = p->h->m;
    if (p->call) {
        rpc_call_set_data(p->call, NULL);
        if (err) {
            member_fail_call(p->call, err); /* what it took is left unused */
        } else {
            Idgenpb__IdRange rv_inl[4], *pv_inl[4];
            bool small = p->n <= 4;
            Idgenpb__IdRange *rv = small ? rv_inl : metcd_calloc(p->n, sizeof(*rv));
            Idgenpb__IdRange **pv = small ? pv_inl : metcd_calloc(p->n, sizeof(*pv));
            if (!rv || !pv) {
                member_fail_call(p->call, MERR_INTERNAL);
            } else {
                for (size_t i = 0; i < p->n; i++) {
                    idgenpb__id_range__init(&rv[i]);
                    rv[i].start = p->ranges[i].start;
                    rv[i].count = p->ranges[i].count;
                    pv[i] = &rv[i];
                }
                if (p->kind == PEND_NEXT) {
                    Idgenpb__NextResponse r = IDGENPB__NEXT_RESPONSE__INIT;
                    r.member_id = m->id;
                    r.n_ranges = p->n;
                    r.ranges = pv;
                    rpc_call_reply(p->call, &r.base);
                } else {
                    Idgenpb__SnowflakeResponse r = IDGENPB__SNOWFLAKE_RESPONSE__INIT;
                    idgen_worker_info in;
                    idgen_worker_get_info(p->h->worker, &in);
                    r.member_id = m->id;
                    r.worker_id = in.worker_id >= 0 ? (uint32_t)in.worker_id : 0;
                    r.n_ranges = p->n;
                    r.ranges = pv;
                    rpc_call_reply(p->call, &r.base);
                }
            }
            if (!small) {
                metcd_free(rv);
                metcd_free(pv);
            }
        }
    } else if (p->http) {
        if (err) {
            http_fail(p->http, err);
        } else {
            char body[32];
            int n = snprintf(body, sizeof(body), "%llu", (unsigned long long)p->ranges[0].start);
            rpc_http_respond(p->http, 200, "text/plain; charset=utf-8", body, (size_t)n);
        }
    }
    pend_free(p);
}

static int pend_add_range(struct pend *p, const idgen_range *r)
{
    if (p->n > 0 && p->ranges[p->n - 1].start + p->ranges[p->n - 1].count == r->start) {
        p->ranges[p->n - 1].count += r->count; /* contiguous: one range */
    } else {
        if (p->n == p->cap) {
            size_t nc = p->cap * 2;
            idgen_range *v = metcd_malloc(nc * sizeof(*v));
            if (!v)
                return MERR_INTERNAL;
            memcpy(v, p->ranges, p->n * sizeof(*v));
            if (p->ranges != p->inl)
                metcd_free(p->ranges);
            p->ranges = v;
            p->cap = nc;
        }
        p->ranges[p->n++] = *r;
    }
    p->got += r->count;
    return 0;
}

/* Takes what it can for p. Returns 0 when p is complete (or full),
 * IDGEN_EPENDING / IDGEN_EWAIT (*wait_ms set) to park, or an error. */
static int pend_fill(struct pend *p, int64_t *wait_ms)
{
    struct idgen_host *h = p->h;
    *wait_ms = 0;
    while (p->got < p->want && p->n < MAX_RANGES) {
        idgen_range r[8];
        int rc;
        if (p->kind == PEND_NEXT) {
            if (!h->segs)
                return IDGEN_EPENDING; /* the member does not serve yet */
            size_t n = 0;
            uint64_t taken = 0;
            rc = idgen_segs_take(h->segs, p->tag, p->want - p->got, r, 8, &n, &taken);
            for (size_t i = 0; i < n; i++)
                if (pend_add_range(p, &r[i]) != 0)
                    return MERR_INTERNAL;
        } else {
            h->want_worker = true;
            if (!h->worker)
                return IDGEN_EPENDING; /* started on the next tick */
            rc = idgen_worker_next(h->worker, p->want - p->got, &r[0], wait_ms);
            if (rc == 0 && pend_add_range(p, &r[0]) != 0)
                return MERR_INTERNAL;
            if (rc == IDGEN_ENOT_READY) {
                idgen_worker_info in;
                idgen_worker_get_info(h->worker, &in);
                if (in.state == IDGEN_WORKER_CLAIMING || in.state == IDGEN_WORKER_WAITING)
                    return IDGEN_EPENDING; /* until IDGEN_EVENT_READY */
            }
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void list_unlink(struct pend **head, struct pend **tail, struct pend *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        *head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        *tail = p->prev;
    p->prev = p->next = NULL;
}

static void list_append(struct pend **head, struct pend **tail, struct pend *p)
{
    p->prev = *tail;
    p->next = NULL;
    if (*tail)
        (*tail)->next = p;
    else
        *head = p;
    *tail = p;
}

static void pend_unlink(struct pend *p)
{
    struct idgen_host *h = p->h;
    if (p->kind == PEND_NEXT)
        list_unlink(&h->seg_head, &h->seg_tail, p);
    else
        list_unlink(&h->sf_head, &h->sf_tail, p);
    h->n_parked--;
}

/* Arms the clock wait. A used-up millisecond (wait_ms 1) is polled: the
 * timer fires on the next loop pass, after the sockets are served, until
 * the millisecond turns (the loop's timers are often milliseconds late, and
 * one late timer per 4096 IDs would cap batches far below the layout's
 * 4.096M/s). Longer waits (a clock a little behind) sleep, from the
 * present and not from the loop's cached time. */
static void arm_wait(struct idgen_host *h, int64_t wait_ms)
{
    if (evtimer_pending(h->wait_ev, NULL))
        return;
    struct timeval tv = {0, 0};
    if (wait_ms > 1) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t us = wait_ms * 1000 - ts.tv_nsec / 1000 % 1000 + 50;
        tv.tv_sec = (time_t)(us / 1000000);
        tv.tv_usec = (suseconds_t)(us % 1000000);
        event_base_update_cache_time(h->m->base);
    }
    evtimer_add(h->wait_ev, &tv);
}

/* Parks p: behind a segment load, behind the worker's start (rc
 * IDGEN_EPENDING), or for the clock (IDGEN_EWAIT, wait_ms). */
static void park(struct pend *p, int rc, int64_t wait_ms)
{
    struct idgen_host *h = p->h;
    p->deadline_ms = member_now_ms() + (int64_t)member_request_timeout_ms(h->m);
    if (p->kind == PEND_NEXT) {
        list_append(&h->seg_head, &h->seg_tail, p);
    } else {
        list_append(&h->sf_head, &h->sf_tail, p);
        if (rc == IDGEN_EWAIT)
            arm_wait(h, wait_ms);
    }
    h->n_parked++;
    if (p->call)
        rpc_call_set_data(p->call, p);
}

/* True when a request of p's kind (and tag) already waits: p queues
 * behind it, so IDs leave in arrival order. */
static bool must_queue(const struct pend *p)
{
    const struct idgen_host *h = p->h;
    if (p->kind == PEND_SNOWFLAKE)
        return h->sf_head != NULL;
    for (const struct pend *q = h->seg_head; q; q = q->next)
        if (!strcmp(q->tag, p->tag))
            return true;
    return false;
}

/* Serves a new request (on the caller's stack) at once, or parks a copy. */
static void pend_start(struct pend *p)
{
    struct idgen_host *h = p->h;
    int64_t wait = 0;
    int rc = must_queue(p) ? IDGEN_EPENDING : pend_fill(p, &wait);
    if (rc == IDGEN_EPENDING || rc == IDGEN_EWAIT) {
        struct pend *q = h->n_parked < MAX_PARKED ? metcd_malloc(sizeof(*q)) : NULL;
        if (q) {
            *q = *p;
            q->heap = true;
            if (p->ranges == p->inl)
                q->ranges = q->inl;
            park(q, rc, wait);
            return;
        }
        rc = h->n_parked < MAX_PARKED ? MERR_INTERNAL : MERR_TOO_MANY_REQUESTS;
    }
    pend_answer(p, rc);
}

/* Takes up parked requests in order: snowflake ones until one must still
 * wait; segment ones of `tag` (NULL: every tag) likewise, per tag. */
static void retry_list(struct idgen_host *h, int kind, const char *tag);

static void walk_begin(struct idgen_host *h)
{
    h->walking++;
}

static void walk_end(struct idgen_host *h)
{
    if (--h->walking > 0 || !h->walk_again)
        return;
    h->walk_again = false;
    retry_list(h, PEND_SNOWFLAKE, NULL);
    retry_list(h, PEND_NEXT, NULL);
}

static void retry_walk(struct idgen_host *h, int kind, const char *tag)
{
    struct pend *p = kind == PEND_NEXT ? h->seg_head : h->sf_head;
    int64_t wait_ms = 0;
    while (p) {
        struct pend *next = p->next;
        if (tag && strcmp(p->tag, tag) != 0) {
            p = next;
            continue;
        }
        int rc = pend_fill(p, &wait_ms);
        if (rc == IDGEN_EWAIT) {
            arm_wait(h, wait_ms);
            return;
        }
        if (rc == IDGEN_EPENDING) {
            if (tag || kind == PEND_SNOWFLAKE)
                return; /* the later ones (of this tag) wait behind it */
            p = next;
            continue;
        }
        pend_unlink(p);
        pend_answer(p, rc);
        p = next;
    }
}

static void retry_list(struct idgen_host *h, int kind, const char *tag)
{
    if (h->walking) {
        h->walk_again = true;
        return;
    }
    walk_begin(h);
    retry_walk(h, kind, tag);
    walk_end(h);
}

/* Answers every parked request of tag with err. */
static void fail_tag(struct idgen_host *h, const char *tag, int err)
{
    if (h->walking) {
        h->walk_again = true; /* taking again finds the tag gone */
        return;
    }
    walk_begin(h);
    struct pend *p = h->seg_head;
    while (p) {
        struct pend *next = p->next;
        if (!strcmp(p->tag, tag)) {
            pend_unlink(p);
            pend_answer(p, err);
        }
        p = next;
    }
    walk_end(h);
}

static void on_wait_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    retry_list(arg, PEND_SNOWFLAKE, NULL);
}

/* ---- the core's events and the tick ----------------------------------------------------- */

static void on_event(void *arg, int event, const char *tag, int err)
{
    struct idgen_host *h = arg;
    member *m = h->m;
    switch (event) {
    case IDGEN_EVENT_READY: {
        idgen_worker_info in;
        idgen_worker_get_info(h->worker, &in);
        member_logf(m, MLOG_INFO, "idgen", "snowflake worker %d ready (timestamps above %lld)",
                    in.worker_id, (long long)in.floor_ts);
        retry_list(h, PEND_SNOWFLAKE, NULL);
        break;
    }
    case IDGEN_EVENT_NOT_READY:
        member_logf(m, MLOG_WARN, "idgen", "snowflake worker not ready: %s", idgen_strerror(err));
        break;
    case IDGEN_EVENT_STOPPED:
        member_logf(m, MLOG_WARN, "idgen", "snowflake worker left: %s; joining again in %d ms",
                    idgen_strerror(err), RESTART_MS);
        h->restart_at = member_now_ms() + RESTART_MS;
        break;
    case IDGEN_EVENT_SEGMENT:
        if (tag && err == IDGEN_ETAG_NOT_FOUND)
            fail_tag(h, tag, err); /* taking again would only probe again */
        else
            retry_list(h, PEND_NEXT, tag);
        break;
    default:
        break;
    }
}

static void sweep(struct idgen_host *h, struct pend **head, int err)
{
    int64_t now = member_now_ms();
    walk_begin(h);
    struct pend *p = *head;
    while (p) {
        struct pend *next = p->next;
        if (p->deadline_ms <= now) {
            pend_unlink(p);
            pend_answer(p, err);
        }
        p = next;
    }
    walk_end(h);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct idgen_host *h = arg;
    member *m = h->m;
    if (!m->serving)
        return;
    if (!h->segs) {
        int rc = idgen_segs_new(&h->segs, &h->kv, &h->clock, &h->scfg, on_event, h);
        if (rc != 0)
            member_logf(m, MLOG_ERROR, "idgen", "cannot start segments: %s", idgen_strerror(rc));
    }
    if (!h->worker && h->want_worker) {
        int rc = idgen_worker_new(&h->worker, &h->kv, &h->clock, &h->wcfg, on_event, h);
        if (rc != 0)
            member_logf(m, MLOG_ERROR, "idgen", "cannot start the snowflake worker: %s",
                        idgen_strerror(rc));
    }
    if (h->restart_at && member_now_ms() >= h->restart_at && h->worker) {
        h->restart_at = 0;
        idgen_worker_restart(h->worker);
    }
    idgen_worker_tick(h->worker);
    idgen_segs_tick(h->segs);
    /* parked requests take again: a load stuck in the store is overtaken */
    if (h->seg_head)
        retry_list(h, PEND_NEXT, NULL);
    sweep(h, &h->seg_head, IDGEN_ESEGMENTS);
    sweep(h, &h->sf_head, IDGEN_ENOT_READY);
}

/* ---- gRPC ---------------------------------------------------------------------------------- */

static struct idgen_host *host_of(struct rpc_call *call)
{
    member *m = rpc_call_service_data(call);
    return m->idgen;
}

static void on_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    int *d = rpc_call_get_data(call);
    rpc_call_set_data(call, NULL);
    if (!d)
        return;
    if (*d == WAIT_KV) {
        ((struct kv_wait *)d)->call = NULL;
        return;
    }
    struct pend *p = (struct pend *)d;
    pend_unlink(p);
    pend_free(p);
}

static void pend_init(struct pend *p, struct idgen_host *h, int kind, uint64_t count)
{
    memset(p, 0, offsetof(struct pend, inl));
    p->type = WAIT_IDS;
    p->h = h;
    p->kind = kind;
    p->want = count ? count : 1;
    p->ranges = p->inl;
    p->cap = sizeof(p->inl) / sizeof(p->inl[0]);
    p->heap = false;
}

static void on_next(struct rpc_call *call, const ProtobufCMessage *msg)
{
    struct idgen_host *h = host_of(call);
    const Idgenpb__NextRequest *r = (const Idgenpb__NextRequest *)msg;
    size_t len = r->tag ? strlen(r->tag) : 0;
    if (!idgen_tag_valid(r->tag, len) || r->count > MAX_NEXT_COUNT) {
        member_fail_call(call, IDGEN_EINVAL);
        return;
    }
    struct pend p;
    pend_init(&p, h, PEND_NEXT, r->count);
    memcpy(p.tag, r->tag, len + 1);
    p.call = call;
    pend_start(&p);
}

static void on_snowflake(struct rpc_call *call, const ProtobufCMessage *msg)
{
    struct idgen_host *h = host_of(call);
    const Idgenpb__SnowflakeRequest *r = (const Idgenpb__SnowflakeRequest *)msg;
    if (r->count > MAX_SNOWFLAKE_COUNT) {
        member_fail_call(call, IDGEN_EINVAL);
        return;
    }
    struct pend p;
    pend_init(&p, h, PEND_SNOWFLAKE, r->count);
    p.call = call;
    pend_start(&p);
}

static int64_t epoch_of(const struct idgen_host *h)
{
    return h->wcfg.epoch_ms ? h->wcfg.epoch_ms : IDGEN_DEFAULT_EPOCH_MS;
}

static void on_decode(struct rpc_call *call, const ProtobufCMessage *msg)
{
    struct idgen_host *h = host_of(call);
    const Idgenpb__DecodeRequest *r = (const Idgenpb__DecodeRequest *)msg;
    idgen_decoded d;
    int rc = idgen_decode(r->id, epoch_of(h), &d);
    if (rc != 0) {
        member_fail_call(call, rc);
        return;
    }
    Idgenpb__DecodeResponse resp = IDGENPB__DECODE_RESPONSE__INIT;
    resp.time_ms = d.time_ms;
    resp.worker_id = d.worker;
    resp.sequence = d.sequence;
    resp.epoch_ms = epoch_of(h);
    rpc_call_reply(call, &resp.base);
}

static struct kv_wait *kv_wait_new(struct idgen_host *h, struct rpc_call *call)
{
    struct kv_wait *w = metcd_calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->type = WAIT_KV;
    w->h = h;
    w->call = call;
    w->next = h->kv_waits;
    if (w->next)
        w->next->prev = w;
    h->kv_waits = w;
    rpc_call_set_data(call, w);
    return w;
}

/* Takes w off its host's list; returns its call (NULL when gone). */
static struct rpc_call *kv_wait_end(struct kv_wait *w)
{
    if (w->h) {
        if (w->prev)
            w->prev->next = w->next;
        else
            w->h->kv_waits = w->next;
        if (w->next)
            w->next->prev = w->prev;
    }
    struct rpc_call *call = w->call;
    if (call)
        rpc_call_set_data(call, NULL);
    metcd_free(w);
    return call;
}

static void on_tag_created(void *arg, int rc)
{
    struct rpc_call *call = kv_wait_end(arg);
    if (!call)
        return;
    if (rc != 0) {
        member_fail_call(call, rc);
        return;
    }
    Idgenpb__CreateTagResponse resp = IDGENPB__CREATE_TAG_RESPONSE__INIT;
    rpc_call_reply(call, &resp.base);
}

static void on_create_tag(struct rpc_call *call, const ProtobufCMessage *msg)
{
    struct idgen_host *h = host_of(call);
    const Idgenpb__CreateTagRequest *r = (const Idgenpb__CreateTagRequest *)msg;
    int64_t step = r->step ? r->step : DEFAULT_STEP;
    if (!idgen_tag_valid(r->tag, r->tag ? strlen(r->tag) : 0) || step < 1 ||
        r->start > (uint64_t)INT64_MAX) {
        member_fail_call(call, IDGEN_EINVAL);
        return;
    }
    struct kv_wait *w = kv_wait_new(h, call);
    if (!w) {
        member_fail_call(call, MERR_INTERNAL);
        return;
    }
    int rc = idgen_tag_create(&h->kv, h->prefix, r->tag, r->start, step, r->description,
                              h->clock.now_ms(h), on_tag_created, w);
    if (rc != 0) {
        kv_wait_end(w);
        fail_call(call, rc);
    }
}

struct tag_list {
    Idgenpb__Tag *tags;
    Idgenpb__Tag **ptags;
    Idgenpb__Segment *segs;
    Idgenpb__Segment **psegs;
    char **strs; /* tag and description copies */
    size_t n, cap;
    bool oom;
};

static void add_tag(void *arg, const idgen_tag_info *t)
{
    struct tag_list *l = arg;
    if (l->oom || l->n == l->cap)
        return;
    Idgenpb__Tag *g = &l->tags[l->n];
    idgenpb__tag__init(g);
    char *name = metcd_strdup(t->tag), *desc = metcd_strdup(t->description);
    l->strs[2 * l->n] = name;
    l->strs[2 * l->n + 1] = desc;
    if (!name || !desc) {
        l->oom = true;
        l->n++;
        return;
    }
    g->tag = name;
    g->description = desc;
    g->max_id = t->max_id;
    g->step = t->step;
    g->update_time_ms = t->update_time_ms;
    g->loaded = t->loaded;
    g->loading = t->loading;
    g->next_step = t->next_step;
    g->current = (uint32_t)t->current;
    for (int k = 0; k < 2; k++) {
        Idgenpb__Segment *s = &l->segs[2 * l->n + (size_t)k];
        idgenpb__segment__init(s);
        s->start = t->seg[k].start;
        s->end = t->seg[k].end;
        s->pos = t->seg[k].pos;
        s->step = t->seg[k].step;
        s->ready = t->seg[k].ready;
        l->psegs[2 * l->n + (size_t)k] = s;
    }
    g->n_segments = 2;
    g->segments = &l->psegs[2 * l->n];
    l->ptags[l->n] = g;
    l->n++;
}

static void tag_list_free(struct tag_list *l)
{
    for (size_t i = 0; l->strs && i < 2 * l->n; i++)
        metcd_free(l->strs[i]);
    metcd_free(l->tags);
    metcd_free(l->ptags);
    metcd_free(l->segs);
    metcd_free(l->psegs);
    metcd_free(l->strs);
}

/* Every tag with both buffers; 0 or MERR_INTERNAL. */
static int tag_list_make(struct idgen_host *h, struct tag_list *l)
{
    memset(l, 0, sizeof(*l));
    size_t cap = h->segs ? idgen_segs_count(h->segs) : 0;
    l->cap = cap;
    l->tags = metcd_calloc(cap + 1, sizeof(*l->tags));
    l->ptags = metcd_calloc(cap + 1, sizeof(*l->ptags));
    l->segs = metcd_calloc(2 * cap + 1, sizeof(*l->segs));
    l->psegs = metcd_calloc(2 * cap + 1, sizeof(*l->psegs));
    l->strs = metcd_calloc(2 * cap + 1, sizeof(*l->strs));
    if (!l->tags || !l->ptags || !l->segs || !l->psegs || !l->strs)
        l->oom = true;
    else if (h->segs)
        idgen_segs_list(h->segs, add_tag, l);
    return l->oom ? MERR_INTERNAL : 0;
}

static void on_list_tags(struct rpc_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    struct idgen_host *h = host_of(call);
    struct tag_list l;
    if (tag_list_make(h, &l) != 0) {
        tag_list_free(&l);
        member_fail_call(call, MERR_INTERNAL);
        return;
    }
    Idgenpb__ListTagsResponse resp = IDGENPB__LIST_TAGS_RESPONSE__INIT;
    resp.member_id = h->m->id;
    resp.n_tags = l.n;
    resp.tags = l.ptags;
    rpc_call_reply(call, &resp.base);
    tag_list_free(&l);
}

static const char *state_name(int st)
{
    switch (st) {
    case IDGEN_WORKER_CLAIMING:
        return "claiming";
    case IDGEN_WORKER_WAITING:
        return "waiting";
    case IDGEN_WORKER_READY:
        return "ready";
    case IDGEN_WORKER_STOPPING:
        return "stopping";
    default:
        return "stopped";
    }
}

static void on_workers_listed(void *arg, int rc, const idgen_worker_rec *w, size_t n)
{
    struct kv_wait *kw = arg;
    struct idgen_host *h = kw->h;
    struct rpc_call *call = kv_wait_end(kw);
    if (!call)
        return;
    if (rc != 0) {
        member_fail_call(call, rc);
        return;
    }
    Idgenpb__Worker *v = metcd_calloc(n + 1, sizeof(*v));
    Idgenpb__Worker **pv = metcd_calloc(n + 1, sizeof(*pv));
    if (!v || !pv) {
        metcd_free(v);
        metcd_free(pv);
        member_fail_call(call, MERR_INTERNAL);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        idgenpb__worker__init(&v[i]);
        v[i].id = w[i].id;
        v[i].registered = w[i].registered;
        v[i].owner = (char *)w[i].owner;
        v[i].info = (char *)w[i].info;
        v[i].started_ms = w[i].started_ms;
        v[i].lease = w[i].lease;
        v[i].last_timestamp_ms = w[i].bound_ts;
        pv[i] = &v[i];
    }
    Idgenpb__WorkersResponse resp = IDGENPB__WORKERS_RESPONSE__INIT;
    resp.member_id = h ? h->m->id : 0;
    resp.worker_id = -1;
    resp.worker_state = (char *)"stopped";
    if (h && h->worker) {
        idgen_worker_info in;
        idgen_worker_get_info(h->worker, &in);
        resp.worker_id = in.worker_id;
        resp.worker_state = (char *)state_name(in.state);
    }
    resp.n_workers = n;
    resp.workers = pv;
    rpc_call_reply(call, &resp.base);
    metcd_free(v);
    metcd_free(pv);
}

static void on_workers(struct rpc_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    struct idgen_host *h = host_of(call);
    struct kv_wait *w = kv_wait_new(h, call);
    if (!w) {
        member_fail_call(call, MERR_INTERNAL);
        return;
    }
    int rc = idgen_workers_list(&h->kv, h->prefix, on_workers_listed, w);
    if (rc != 0) {
        kv_wait_end(w);
        fail_call(call, rc);
    }
}

#define M(name, req, resp, fn)                                                                     \
    {                                                                                              \
        "/idgenpb.IdGen/" name, RPC_UNARY, &idgenpb__##req##__descriptor,                          \
            &idgenpb__##resp##__descriptor, NULL, fn, NULL, on_cancel, NULL                        \
    }

static const struct rpc_method idgen_methods[] = {
    M("Next", next_request, next_response, on_next),
    M("Snowflake", snowflake_request, snowflake_response, on_snowflake),
    M("Decode", decode_request, decode_response, on_decode),
    M("CreateTag", create_tag_request, create_tag_response, on_create_tag),
    M("ListTags", list_tags_request, list_tags_response, on_list_tags),
    M("Workers", workers_request, workers_response, on_workers),
};

/* ---- Leaf's HTTP API ------------------------------------------------------------------------ */

static void http_abort(struct rpc_http_req *req, void *data)
{
    member *m = data;
    struct idgen_host *h = m->idgen;
    if (!h)
        return;
    struct pend *lists[2] = {h->seg_head, h->sf_head};
    for (int k = 0; k < 2; k++) {
        for (struct pend *p = lists[k]; p; p = p->next) {
            if (p->http == req) {
                pend_unlink(p);
                pend_free(p);
                return;
            }
        }
    }
}

static bool http_get_only(struct rpc_http_req *req)
{
    if (!strcmp(rpc_http_method(req), "GET"))
        return true;
    const char *msg = "method not allowed";
    rpc_http_respond(req, 405, "text/plain; charset=utf-8", msg, strlen(msg));
    return false;
}

/* GET /api/segment/get/{tag} and /api/snowflake/get/{tag}: one ID as text. */
static void http_get_id(struct rpc_http_req *req, void *data, int kind, const char *route)
{
    member *m = data;
    struct idgen_host *h = m->idgen;
    if (!http_get_only(req))
        return;
    const char *key = rpc_http_path(req) + strlen(route);
    if (!key[0]) {
        const char *msg = "key is none";
        rpc_http_respond(req, 400, "text/plain; charset=utf-8", msg, strlen(msg));
        return;
    }
    if (kind == PEND_NEXT && !idgen_tag_valid(key, strlen(key))) {
        http_fail(req, IDGEN_EINVAL);
        return;
    }
    if (!h) {
        http_fail(req, MERR_STOPPED);
        return;
    }
    struct pend p;
    pend_init(&p, h, kind, 1);
    if (kind == PEND_NEXT)
        snprintf(p.tag, sizeof(p.tag), "%s", key);
    p.http = req;
    pend_start(&p);
}

static void http_segment(struct rpc_http_req *req, void *data)
{
    http_get_id(req, data, PEND_NEXT, "/api/segment/get/");
}

static void http_snowflake(struct rpc_http_req *req, void *data)
{
    http_get_id(req, data, PEND_SNOWFLAKE, "/api/snowflake/get/");
}

/* The value of `name` in a query string, copied into out. */
static bool query_param(const char *q, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > nl && !strncmp(q, name, nl) && q[nl] == '=') {
            size_t vl = len - nl - 1;
            if (vl >= outlen)
                return false;
            memcpy(out, q + nl + 1, vl);
            out[vl] = 0;
            return true;
        }
        q = amp ? amp + 1 : NULL;
    }
    return false;
}

/* GET /decodeSnowflakeId?snowflakeId=N, answered as Leaf's monitor does. */
static void http_decode(struct rpc_http_req *req, void *data)
{
    member *m = data;
    struct idgen_host *h = m->idgen;
    if (!http_get_only(req))
        return;
    char v[32], body[256];
    idgen_decoded d;
    char *end = NULL;
    int n;
    errno = 0;
    unsigned long long id = 0;
    bool ok = query_param(rpc_http_query(req), "snowflakeId", v, sizeof(v)) && v[0] &&
              v[0] != '-' && (id = strtoull(v, &end, 10), errno == 0 && *end == 0) && h &&
              idgen_decode(id, epoch_of(h), &d) == 0;
    if (!ok) {
        n = snprintf(body, sizeof(body), "{\"errorMsg\":\"cannot decode the snowflake id\"}");
    } else {
        time_t secs = (time_t)(d.time_ms / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        char when[64];
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        n = snprintf(body, sizeof(body),
                     "{\"timestamp\":\"%lld(%s UTC)\",\"workerId\":\"%u\",\"sequenceId\":\"%u\"}",
                     (long long)d.time_ms, when, d.worker, d.sequence);
    }
    rpc_http_respond(req, 200, "application/json", body, (size_t)n);
}

struct page {
    char *p;
    size_t len, cap;
    bool oom;
};

static void page_printf(struct page *pg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void page_printf(struct page *pg, const char *fmt, ...)
{
    if (pg->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || pg->len + (size_t)n + 1 > pg->cap) {
        size_t nc = pg->cap ? pg->cap : 4096;
        while (n >= 0 && nc < pg->len + (size_t)n + 1)
            nc *= 2;
        char *q = n < 0 ? NULL : metcd_realloc(pg->p, nc);
        if (!q) {
            pg->oom = true;
            return;
        }
        pg->p = q;
        pg->cap = nc;
    }
    va_start(ap, fmt);
    vsnprintf(pg->p + pg->len, pg->cap - pg->len, fmt, ap);
    va_end(ap);
    pg->len += (size_t)n;
}

/* Tag names are [A-Za-z0-9_.:-] (safe in HTML and JSON); descriptions are
 * escaped. */
static void page_escaped(struct page *pg, const char *s, bool html)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (html && (c == '<' || c == '>' || c == '&' || c == '"'))
            page_printf(pg, "&#%d;", c);
        else if (!html && (c == '"' || c == '\\'))
            page_printf(pg, "\\%c", c);
        else if (c < 0x20)
            page_printf(pg, html ? "&#%d;" : "\\u%04x", c);
        else
            page_printf(pg, "%c", c);
    }
}

/* GET /cache: every tag with both of this member's buffers (Leaf's cache
 * page); ?format=json for the same as JSON. */
static void http_cache(struct rpc_http_req *req, void *data)
{
    member *m = data;
    struct idgen_host *h = m->idgen;
    if (!http_get_only(req))
        return;
    char fmt[16] = "";
    bool json =
        query_param(rpc_http_query(req), "format", fmt, sizeof(fmt)) && !strcmp(fmt, "json");
    struct tag_list l = {0};
    if (!h || tag_list_make(h, &l) != 0) {
        tag_list_free(&l);
        http_fail(req, MERR_INTERNAL);
        return;
    }
    struct page pg = {0};
    if (json)
        page_printf(&pg, "{\"member\":\"%016llx\",\"tags\":[", (unsigned long long)m->id);
    else
        page_printf(&pg,
                    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>metcd idgen "
                    "cache</title></head><body>\n<h1>Segment buffers of member %016llx</h1>\n"
                    "<table border=\"1\">\n<tr><th>key</th><th>description</th><th>initOk</th>"
                    "<th>pos</th><th>nextReady</th><th>loading</th><th>step</th>"
                    "<th>value0</th><th>max0</th><th>step0</th><th>value1</th><th>max1</th>"
                    "<th>step1</th></tr>\n",
                    (unsigned long long)m->id);
    for (size_t i = 0; i < l.n; i++) {
        const Idgenpb__Tag *t = l.ptags[i];
        const Idgenpb__Segment *s0 = t->segments[0], *s1 = t->segments[1];
        bool next_ready = t->segments[t->current ^ 1]->ready;
        if (json) {
            page_printf(&pg, "%s{\"key\":\"%s\",\"description\":\"", i ? "," : "", t->tag);
            page_escaped(&pg, t->description, false);
            page_printf(&pg,
                        "\",\"initOk\":%s,\"pos\":%u,\"nextReady\":%s,\"loading\":%s,"
                        "\"maxId\":%llu,\"step\":%lld,\"nextStep\":%lld,\"segments\":["
                        "{\"value\":%llu,\"max\":%llu,\"step\":%lld},"
                        "{\"value\":%llu,\"max\":%llu,\"step\":%lld}]}",
                        t->loaded ? "true" : "false", t->current, next_ready ? "true" : "false",
                        t->loading ? "true" : "false", (unsigned long long)t->max_id,
                        (long long)t->step, (long long)t->next_step, (unsigned long long)s0->pos,
                        (unsigned long long)s0->end, (long long)s0->step,
                        (unsigned long long)s1->pos, (unsigned long long)s1->end,
                        (long long)s1->step);
        } else {
            page_printf(&pg, "<tr><td>%s</td><td>", t->tag);
            page_escaped(&pg, t->description, true);
            page_printf(&pg,
                        "</td><td>%s</td><td>%u</td><td>%s</td><td>%s</td><td>%lld</td>"
                        "<td>%llu</td><td>%llu</td><td>%lld</td><td>%llu</td><td>%llu</td>"
                        "<td>%lld</td></tr>\n",
                        t->loaded ? "true" : "false", t->current, next_ready ? "true" : "false",
                        t->loading ? "true" : "false", (long long)t->next_step,
                        (unsigned long long)s0->pos, (unsigned long long)s0->end,
                        (long long)s0->step, (unsigned long long)s1->pos,
                        (unsigned long long)s1->end, (long long)s1->step);
        }
    }
    page_printf(&pg, json ? "]}" : "</table>\n</body></html>\n");
    if (pg.oom)
        http_fail(req, MERR_INTERNAL);
    else
        rpc_http_respond(req, 200, json ? "application/json" : "text/html; charset=utf-8", pg.p,
                         pg.len);
    metcd_free(pg.p);
    tag_list_free(&l);
}

/* ---- life --------------------------------------------------------------------------------- */

int idgen_register(member *m)
{
    struct idgen_host *h = metcd_calloc(1, sizeof(*h));
    if (!h)
        return RPC_ERR_NOMEM;
    m->idgen = h;
    h->m = m;
    if (read_settings(h) != 0)
        return RPC_ERR_INVAL;
    idgen_member_kv(m, &h->kv);
    h->clock.now_ms = wall_ms;
    h->clock.data = h;
    if (h->clock_offset_ms)
        member_logf(m, MLOG_WARN, "idgen", "the ID clock runs %lld ms off the system clock",
                    (long long)h->clock_offset_ms);
    h->tick_ev = event_new(m->base, -1, EV_PERSIST, on_tick, h);
    h->wait_ev = evtimer_new(m->base, on_wait_timer, h);
    struct timeval tv = {0, IDGEN_TICK_MS * 1000};
    if (!h->tick_ev || !h->wait_ev || event_add(h->tick_ev, &tv) != 0)
        return RPC_ERR_NOMEM;
    int rc = rpc_server_register(m->rpc, idgen_methods,
                                 sizeof(idgen_methods) / sizeof(idgen_methods[0]), m);
    if (rc == 0)
        rc = rpc_server_route(m->rpc, "/api/segment/get/", http_segment, http_abort, m);
    if (rc == 0)
        rc = rpc_server_route(m->rpc, "/api/snowflake/get/", http_snowflake, http_abort, m);
    if (rc == 0)
        rc = rpc_server_route(m->rpc, "/decodeSnowflakeId", http_decode, NULL, m);
    if (rc == 0)
        rc = rpc_server_route(m->rpc, "/cache", http_cache, NULL, m);
    return rc;
}

void idgen_stop(member *m)
{
    struct idgen_host *h = m->idgen;
    if (!h)
        return;
    m->idgen = NULL;
    if (h->tick_ev)
        event_free(h->tick_ev);
    if (h->wait_ev)
        event_free(h->wait_ev);
    struct pend *lists[2] = {h->seg_head, h->sf_head};
    for (int k = 0; k < 2; k++) {
        struct pend *p = lists[k];
        while (p) {
            struct pend *next = p->next;
            pend_answer(p, MERR_STOPPED);
            p = next;
        }
    }
    for (struct kv_wait *w = h->kv_waits; w; w = w->next)
        w->h = NULL; /* their KV answers come (MERR_STOPPED) after the host is gone */
    /* calls in flight answer into husks */
    idgen_worker_free(h->worker);
    idgen_segs_free(h->segs);
    metcd_free(h->prefix);
    metcd_free(h);
}
