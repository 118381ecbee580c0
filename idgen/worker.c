/* idgen/worker.c - the seed's Worker: a snowflake generator whose worker id
 * is claimed through the KV store, and whose timestamps are bounded by a
 * value stored there.
 *
 *   CLAIMING  grant a lease; txn "workers/<c> absent -> put it on the
 *             lease, read ts/<c> and owners/<owner>; else read workers/";
 *             on a conflict take the lowest id the failure branch shows
 *             free, and try again. The txn's own reads give the bounds
 *             stored for that id and for this owner: the floor.
 *   WAITING   until the clock passes the floor; then the first upload.
 *   READY     IDs only up to the acknowledged bound. Every
 *             upload_interval_ms (sooner when less than half of
 *             reserve_ms is left) store max(bound, now + reserve_ms) in
 *             ts/<id> and owners/<owner>, guarded by the registration's
 *             create revision and by ts/<id>'s mod revision as this worker
 *             last wrote it: an upload stuck in the store (a proposal lost
 *             with a leader) may be overtaken by a newer one, and if it
 *             lands later it fails instead of lowering the bound. The
 *             lease is kept alive every TTL/3. A lost registration (lease
 *             gone, guard failed with another registration) stops issuing
 *             at once and claims again.
 *   STOPPING  a clean stop lowers the stored bound to the last timestamp
 *             issued (a restart waits less), then revokes the lease (which
 *             deletes workers/<id>); a drift too large leaves the bound.
 *
 * Uniqueness does not depend on the lease: a worker that cannot reach the
 * store stops at its bound, and whoever takes its id later waits for the
 * clock to pass that bound. Every step is driven by advance(), which runs
 * after each completion and on each tick and starts whatever is due; at
 * most one claim, one keep-alive and MAX_UPLOADS uploads (a new one only
 * when the last has been out for half an upload interval) are in flight. */
#include "idgen/internal.h"

#include "common/mem.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_TTL_S 10
#define DEFAULT_UPLOAD_MS 2000
#define DEFAULT_RESERVE_MS 4000
#define DEFAULT_BLOCK_MS 1000
#define DEFAULT_ERROR_MS 5000
#define DEFAULT_RETRY_MS 500
#define MAX_UPLOADS 4

struct idgen_worker {
    idgen_kv kv;
    idgen_clock clock;
    idgen_notify_fn notify;
    void *notify_arg;
    char *prefix, *owner, *info;
    idgen_worker_config cfg; /* numbers resolved; strings above */

    int state;
    idgen_gen gen;
    int32_t id;
    int64_t create_rev;
    int64_t lease, lease_ttl;
    int64_t floor, bound;
    int64_t next_upload, next_ka, retry_at;
    uint32_t candidate;
    int last_err;
    uint64_t epoch; /* bumped when a registration is lost: late answers are ignored */

    bool claim_busy, ka_busy, revoke_busy;
    uint64_t claim_epoch;
    int64_t ka_lease;
    int uploads;             /* in flight */
    int64_t upload_start_ms; /* of the newest in flight */
    int64_t ts_mod;          /* mod revision of ts/<id> as last written or read */

    /* stopping */
    int stop_reason;
    bool stop_lower, lowered, lowering;

    /* re-entrancy of advance() under synchronous completions */
    bool in_advance, again;

    int pending; /* KV completions outstanding */
    bool dead;   /* freed by the host while some were */
};

static void advance(idgen_worker *w);

static int64_t now_ms(const idgen_worker *w)
{
    return w->clock.now_ms(w->clock.data);
}

static void worker_destroy(idgen_worker *w)
{
    metcd_free(w->prefix);
    metcd_free(w->owner);
    metcd_free(w->info);
    metcd_free(w);
}

/* Every completion starts here: true when the worker is a husk (freed by
 * its host) and must not be touched any more. */
static bool op_done(idgen_worker *w)
{
    w->pending--;
    if (!w->dead)
        return false;
    if (w->pending == 0)
        worker_destroy(w);
    return true;
}

static void notify(idgen_worker *w, int ev, int err)
{
    if (w->notify)
        w->notify(w->notify_arg, ev, NULL, err);
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static void key_of(idgen_buf *b, const idgen_worker *w, const char *dir, int32_t id)
{
    idgen_buf_reset(b);
    idgen_buf_printf(b, "%s%s%04d", w->prefix, dir, (int)id);
}

/* Parses the id of ".../workers/0012"; -1 when it is not one. */
static int32_t parse_id(const char *key, size_t len, size_t dir_len)
{
    int64_t v;
    if (len <= dir_len || idgen_parse_i64(key + dir_len, len - dir_len, &v) != 0 || v < 0 ||
        v >= IDGEN_MAX_WORKERS)
        return -1;
    return (int32_t)v;
}

/* A stored bound (ts/<id> or owners/<owner>): 0 when absent, the largest
 * possible value when it cannot be parsed (wait rather than risk). */
static int64_t stored_bound(const idgen_kvs *g)
{
    if (!g || g->n == 0)
        return 0;
    int64_t v;
    if (idgen_parse_i64(g->kvs[0].value, g->kvs[0].value_len, &v) != 0)
        return INT64_MAX / 2;
    return v;
}

/* ---- losing and leaving ---------------------------------------------------------------- */

static void on_revoke_lost(void *arg, int rc, int64_t id, int64_t ttl)
{
    (void)rc;
    (void)id;
    (void)ttl;
    op_done(arg);
}

/* Gives up a lease nobody waits for (the registration is gone anyway). */
static void revoke_quietly(idgen_worker *w, int64_t lease)
{
    w->pending++;
    if (w->kv.ops->lease_revoke(w->kv.data, lease, on_revoke_lost, w) != 0)
        w->pending--;
}

static void lose(idgen_worker *w, int err, bool lease_alive)
{
    bool was_ready = w->state == IDGEN_WORKER_READY;
    w->epoch++;
    w->floor = max64(w->floor, idgen_gen_last_ts(&w->gen));
    w->gen.limit_ts = INT64_MIN;
    w->id = -1;
    w->create_rev = 0;
    w->bound = 0;
    w->last_err = err;
    int64_t lease = w->lease;
    w->lease = 0;
    w->state = IDGEN_WORKER_CLAIMING;
    w->candidate = 0;
    if (lease && lease_alive)
        revoke_quietly(w, lease);
    if (was_ready)
        notify(w, IDGEN_EVENT_NOT_READY, err);
}

static void start_stop(idgen_worker *w, int reason, bool lower)
{
    if (w->state == IDGEN_WORKER_STOPPING || w->state == IDGEN_WORKER_STOPPED)
        return;
    w->state = IDGEN_WORKER_STOPPING;
    w->stop_reason = reason;
    w->stop_lower = lower && w->id >= 0;
    w->lowered = false;
    w->gen.limit_ts = INT64_MIN;
    w->last_err = reason ? reason : IDGEN_ESTOPPED;
}

/* ---- the lease ------------------------------------------------------------------------- */

static void on_grant(void *arg, int rc, int64_t id, int64_t ttl)
{
    idgen_worker *w = arg;
    if (op_done(w))
        return;
    w->claim_busy = false;
    if (w->claim_epoch != w->epoch || w->state != IDGEN_WORKER_CLAIMING) {
        if (rc == 0)
            revoke_quietly(w, id);
    } else if (rc != 0) {
        w->last_err = IDGEN_EKV;
        w->retry_at = now_ms(w) + w->cfg.retry_ms;
    } else {
        w->lease = id;
        w->lease_ttl = ttl > 0 ? ttl : w->cfg.lease_ttl_s;
        w->next_ka = now_ms(w) + w->lease_ttl * 1000 / 3;
    }
    advance(w);
}

static void on_keepalive(void *arg, int rc, int64_t id, int64_t ttl)
{
    idgen_worker *w = arg;
    (void)id;
    if (op_done(w))
        return;
    w->ka_busy = false;
    if (w->ka_lease == w->lease && w->lease != 0 && w->state != IDGEN_WORKER_STOPPING) {
        if (rc == IDGEN_ELOST || (rc == 0 && ttl <= 0)) {
            if (w->state == IDGEN_WORKER_CLAIMING && !w->claim_busy)
                w->lease = 0; /* nothing registered on it yet: grant another */
            else if (w->state != IDGEN_WORKER_CLAIMING)
                lose(w, IDGEN_ELOST, false);
            /* a claim in flight on the dead lease fails by itself */
        } else if (rc != 0) {
            w->next_ka = now_ms(w) + w->cfg.retry_ms;
        } else {
            w->next_ka = now_ms(w) + ttl * 1000 / 3;
        }
    }
    advance(w);
}

static void start_keepalive(idgen_worker *w)
{
    w->ka_busy = true;
    w->ka_lease = w->lease;
    w->pending++;
    if (w->kv.ops->lease_keepalive(w->kv.data, w->lease, on_keepalive, w) != 0) {
        w->pending--;
        w->ka_busy = false;
        w->next_ka = now_ms(w) + w->cfg.retry_ms;
    }
}

static void on_revoke(void *arg, int rc, int64_t id, int64_t ttl)
{
    idgen_worker *w = arg;
    (void)rc; /* a lease that could not be revoked expires by itself */
    (void)id;
    (void)ttl;
    if (op_done(w))
        return;
    w->revoke_busy = false;
    w->lease = 0;
    advance(w);
}

/* ---- claiming ------------------------------------------------------------------------- */

/* The lowest id below max_workers that the listing does not show taken;
 * -1 when all are. */
static int32_t lowest_free(const idgen_worker *w, const idgen_kvs *g)
{
    size_t dir_len = strlen(w->prefix) + strlen(IDGEN_WORKERS_DIR);
    uint8_t taken[IDGEN_MAX_WORKERS] = {0};
    for (size_t i = 0; g && i < g->n; i++) {
        int32_t id = parse_id(g->kvs[i].key, g->kvs[i].key_len, dir_len);
        if (id >= 0)
            taken[id] = 1;
    }
    for (uint32_t i = 0; i < w->cfg.max_workers; i++)
        if (!taken[i])
            return (int32_t)i;
    return -1;
}

static void on_claim(void *arg, int rc, const idgen_txn_result *r)
{
    idgen_worker *w = arg;
    if (op_done(w))
        return;
    w->claim_busy = false;
    int64_t now = now_ms(w);
    if (w->claim_epoch != w->epoch || w->state != IDGEN_WORKER_CLAIMING) {
        /* stopped meanwhile: the lease revoke in STOPPING removes a
         * registration this txn may have made */
    } else if (rc != 0) {
        w->last_err = IDGEN_EKV;
        w->retry_at = now + w->cfg.retry_ms;
    } else if (!r->succeeded) {
        int32_t c = lowest_free(w, r->nops > 0 ? &r->ops[0] : NULL);
        if (c < 0) {
            w->last_err = IDGEN_ENO_WORKER_ID;
            w->retry_at = now + w->cfg.retry_ms;
            w->candidate = 0;
        } else {
            w->candidate = (uint32_t)c;
        }
    } else {
        w->id = (int32_t)w->candidate;
        w->create_rev = r->revision;
        w->ts_mod = r->nops > 1 && r->ops[1].n ? r->ops[1].kvs[0].mod_rev : 0;
        int64_t floor = max64(w->floor, idgen_gen_last_ts(&w->gen));
        floor = max64(floor, stored_bound(r->nops > 1 ? &r->ops[1] : NULL));
        floor = max64(floor, stored_bound(r->nops > 2 ? &r->ops[2] : NULL));
        w->floor = floor;
        idgen_gen_init(&w->gen, w->cfg.epoch_ms, (uint32_t)w->id, w->cfg.max_drift_block_ms,
                       w->cfg.max_drift_error_ms);
        idgen_gen_set_last_ts(&w->gen, floor);
        w->state = IDGEN_WORKER_WAITING;
        w->last_err = IDGEN_ENOT_READY;
        w->retry_at = 0;
    }
    advance(w);
}

static void start_claim_txn(idgen_worker *w)
{
    idgen_buf kw = {0}, kt = {0}, ko = {0}, kdir = {0}, val = {0};
    key_of(&kw, w, IDGEN_WORKERS_DIR, (int32_t)w->candidate);
    key_of(&kt, w, IDGEN_TS_DIR, (int32_t)w->candidate);
    if (w->owner)
        idgen_buf_printf(&ko, "%s%s%s", w->prefix, IDGEN_OWNERS_DIR, w->owner);
    idgen_buf_printf(&kdir, "%s%s", w->prefix, IDGEN_WORKERS_DIR);
    idgen_buf_printf(&val, "{\"owner\":");
    idgen_buf_json_str(&val, w->owner ? w->owner : "");
    idgen_buf_printf(&val, ",\"info\":");
    idgen_buf_json_str(&val, w->info);
    idgen_buf_printf(&val, ",\"started\":%lld}", (long long)now_ms(w));
    int rc = IDGEN_ENOMEM;
    if (!kw.oom && !kt.oom && !ko.oom && !kdir.oom && !val.oom) {
        idgen_cmp cmp = {.target = IDGEN_CMP_CREATE, .key = kw.p, .key_len = kw.len, .rev = 0};
        idgen_op succ[3] = {
            {.type = IDGEN_OP_PUT,
             .key = kw.p,
             .key_len = kw.len,
             .value = val.p,
             .value_len = val.len,
             .lease = w->lease},
            {.type = IDGEN_OP_GET, .key = kt.p, .key_len = kt.len},
            {.type = IDGEN_OP_GET, .key = ko.p, .key_len = ko.len},
        };
        idgen_op fail = {.type = IDGEN_OP_GET, .key = kdir.p, .key_len = kdir.len, .prefix = true};
        idgen_txn t = {.cmp = &cmp,
                       .ncmp = 1,
                       .success = succ,
                       .nsuccess = w->owner ? 3 : 2,
                       .failure = &fail,
                       .nfailure = 1};
        w->claim_busy = true;
        w->claim_epoch = w->epoch;
        w->pending++;
        rc = w->kv.ops->txn(w->kv.data, &t, on_claim, w);
        if (rc != 0) {
            w->pending--;
            w->claim_busy = false;
        }
    }
    if (rc != 0) {
        w->last_err = rc == IDGEN_ENOMEM ? rc : IDGEN_EKV;
        w->retry_at = now_ms(w) + w->cfg.retry_ms;
    }
    idgen_buf_free(&kw);
    idgen_buf_free(&kt);
    idgen_buf_free(&ko);
    idgen_buf_free(&kdir);
    idgen_buf_free(&val);
}

static void start_grant(idgen_worker *w)
{
    w->claim_busy = true;
    w->claim_epoch = w->epoch;
    w->pending++;
    if (w->kv.ops->lease_grant(w->kv.data, w->cfg.lease_ttl_s, on_grant, w) != 0) {
        w->pending--;
        w->claim_busy = false;
        w->last_err = IDGEN_EKV;
        w->retry_at = now_ms(w) + w->cfg.retry_ms;
    }
}

/* ---- the stored bound ------------------------------------------------------------------ */

struct upload {
    idgen_worker *w;
    uint64_t epoch;
    int64_t value;
    bool lowering;
};

static void on_upload(void *arg, int rc, const idgen_txn_result *r)
{
    struct upload *u = arg;
    idgen_worker *w = u->w;
    if (op_done(w)) {
        metcd_free(u);
        return;
    }
    w->uploads--;
    int64_t now = now_ms(w);
    if (u->lowering) {
        w->lowered = true; /* done or failed: a bound left higher is still safe */
        w->lowering = false;
    } else if (u->epoch != w->epoch || w->state == IDGEN_WORKER_STOPPING) {
        /* for a registration lost meanwhile, or a stop began */
    } else if (rc != 0) {
        w->retry_at = now + w->cfg.retry_ms;
        if (w->state == IDGEN_WORKER_WAITING)
            w->last_err = IDGEN_EKV;
    } else if (!r->succeeded) {
        /* the failure branch read our registration: still ours means a
         * newer upload of ours overtook this one */
        const idgen_kvs *g = r->nops > 0 ? &r->ops[0] : NULL;
        if (!g || g->n == 0 || g->kvs[0].create_rev != w->create_rev)
            lose(w, IDGEN_ELOST, true);
    } else {
        w->ts_mod = r->revision;
        w->bound = max64(w->bound, u->value);
        w->gen.limit_ts = w->bound;
        w->next_upload = now + w->cfg.upload_interval_ms;
        if (w->state == IDGEN_WORKER_WAITING) {
            w->state = IDGEN_WORKER_READY;
            w->last_err = 0;
            notify(w, IDGEN_EVENT_READY, 0);
        }
    }
    metcd_free(u);
    advance(w);
}

/* Stores `value` as the bound of this worker id (and owner). */
static void start_upload(idgen_worker *w, int64_t value, bool lowering)
{
    idgen_buf kw = {0}, kt = {0}, ko = {0}, val = {0};
    key_of(&kw, w, IDGEN_WORKERS_DIR, w->id);
    key_of(&kt, w, IDGEN_TS_DIR, w->id);
    if (w->owner)
        idgen_buf_printf(&ko, "%s%s%s", w->prefix, IDGEN_OWNERS_DIR, w->owner);
    idgen_buf_printf(&val, "%lld", (long long)value);
    struct upload *u = metcd_malloc(sizeof(*u));
    int rc = IDGEN_ENOMEM;
    if (u && !kw.oom && !kt.oom && !ko.oom && !val.oom) {
        *u = (struct upload){.w = w, .epoch = w->epoch, .value = value, .lowering = lowering};
        idgen_cmp cmp[2] = {
            {.target = IDGEN_CMP_CREATE, .key = kw.p, .key_len = kw.len, .rev = w->create_rev},
            {.target = IDGEN_CMP_MOD, .key = kt.p, .key_len = kt.len, .rev = w->ts_mod},
        };
        idgen_op succ[2] = {
            {.type = IDGEN_OP_PUT,
             .key = kt.p,
             .key_len = kt.len,
             .value = val.p,
             .value_len = val.len},
            {.type = IDGEN_OP_PUT,
             .key = ko.p,
             .key_len = ko.len,
             .value = val.p,
             .value_len = val.len},
        };
        idgen_op fail = {.type = IDGEN_OP_GET, .key = kw.p, .key_len = kw.len};
        idgen_txn t = {.cmp = cmp,
                       .ncmp = 2,
                       .success = succ,
                       .nsuccess = w->owner ? 2 : 1,
                       .failure = &fail,
                       .nfailure = 1};
        w->uploads++;
        w->upload_start_ms = now_ms(w);
        if (lowering)
            w->lowering = true;
        w->pending++;
        rc = w->kv.ops->txn(w->kv.data, &t, on_upload, u);
        if (rc == 0) {
            u = NULL;
        } else {
            w->pending--;
            w->uploads--;
            w->lowering = false;
        }
    }
    metcd_free(u);
    if (rc != 0) {
        w->retry_at = now_ms(w) + w->cfg.retry_ms;
        if (lowering) {
            w->lowered = true; /* give up lowering: the bound stays higher, still safe */
            w->again = true;
        }
    }
    idgen_buf_free(&kw);
    idgen_buf_free(&kt);
    idgen_buf_free(&ko);
    idgen_buf_free(&val);
}

/* Another upload may start: none in flight, or the newest has been out for
 * half an upload interval (stuck behind a lost proposal, say). */
static bool upload_room(const idgen_worker *w, int64_t now)
{
    return w->uploads == 0 ||
           (w->uploads < MAX_UPLOADS && now - w->upload_start_ms >= w->cfg.upload_interval_ms / 2);
}

/* ---- the state machine ---------------------------------------------------------------- */

static void step(idgen_worker *w)
{
    int64_t now = now_ms(w);
    if (w->lease && !w->ka_busy && !w->revoke_busy && now >= w->next_ka &&
        w->state != IDGEN_WORKER_STOPPING && w->state != IDGEN_WORKER_STOPPED)
        start_keepalive(w);
    switch (w->state) {
    case IDGEN_WORKER_CLAIMING:
        if (w->claim_busy || now < w->retry_at)
            break;
        if (!w->lease)
            start_grant(w);
        else
            start_claim_txn(w);
        break;
    case IDGEN_WORKER_WAITING:
        if (upload_room(w, now) && now > w->floor && now >= w->retry_at)
            start_upload(w, max64(w->bound, now + w->cfg.reserve_ms), false);
        break;
    case IDGEN_WORKER_READY:
        if (upload_room(w, now) && now >= w->retry_at &&
            (now >= w->next_upload || w->bound - now < w->cfg.reserve_ms / 2))
            start_upload(w, max64(w->bound, now + w->cfg.reserve_ms), false);
        break;
    case IDGEN_WORKER_STOPPING:
        if (w->claim_busy || w->uploads || w->revoke_busy)
            break;
        if (w->stop_lower && !w->lowered && w->id >= 0) {
            start_upload(w, max64(idgen_gen_last_ts(&w->gen), w->floor), true);
            break;
        }
        if (w->lease) {
            w->revoke_busy = true;
            w->pending++;
            if (w->kv.ops->lease_revoke(w->kv.data, w->lease, on_revoke, w) != 0) {
                w->pending--;
                w->revoke_busy = false;
                w->lease = 0; /* it expires by itself */
                w->again = true;
            }
            break;
        }
        w->floor = max64(w->floor, idgen_gen_last_ts(&w->gen));
        w->state = IDGEN_WORKER_STOPPED;
        w->id = -1;
        w->bound = 0;
        w->epoch++;
        notify(w, IDGEN_EVENT_STOPPED, w->stop_reason);
        break;
    default:
        break;
    }
}

static void advance(idgen_worker *w)
{
    if (w->in_advance) {
        w->again = true;
        return;
    }
    w->in_advance = true;
    do {
        w->again = false;
        step(w);
    } while (w->again && !w->dead);
    w->in_advance = false;
}

/* ---- the API -------------------------------------------------------------------------- */

int idgen_worker_new(idgen_worker **out, const idgen_kv *kv, const idgen_clock *clock,
                     const idgen_worker_config *cfg, idgen_notify_fn notify_fn, void *arg)
{
    *out = NULL;
    idgen_worker_config c = cfg ? *cfg : (idgen_worker_config){0};
    if (!kv || !kv->ops || !clock || !clock->now_ms || c.max_workers > IDGEN_MAX_WORKERS ||
        c.lease_ttl_s < 0 || c.upload_interval_ms < 0 || c.reserve_ms < 0 ||
        c.max_drift_error_ms < 0 || c.retry_ms < 0)
        return IDGEN_EINVAL;
    if (!c.max_workers)
        c.max_workers = IDGEN_MAX_WORKERS;
    if (!c.epoch_ms)
        c.epoch_ms = IDGEN_DEFAULT_EPOCH_MS;
    if (!c.lease_ttl_s)
        c.lease_ttl_s = DEFAULT_TTL_S;
    if (!c.upload_interval_ms)
        c.upload_interval_ms = DEFAULT_UPLOAD_MS;
    if (!c.reserve_ms)
        c.reserve_ms = DEFAULT_RESERVE_MS;
    if (!c.max_drift_block_ms)
        c.max_drift_block_ms = DEFAULT_BLOCK_MS;
    if (!c.max_drift_error_ms)
        c.max_drift_error_ms = DEFAULT_ERROR_MS;
    if (!c.retry_ms)
        c.retry_ms = DEFAULT_RETRY_MS;
    if (c.max_drift_error_ms < c.max_drift_block_ms || c.reserve_ms < c.upload_interval_ms)
        return IDGEN_EINVAL;
    if (c.owner && (!c.owner[0] || strchr(c.owner, '/')))
        return IDGEN_EINVAL;
    idgen_worker *w = metcd_calloc(1, sizeof(*w));
    if (!w)
        return IDGEN_ENOMEM;
    w->prefix = idgen_prefix_dup(c.prefix);
    w->owner = c.owner ? metcd_strdup(c.owner) : NULL;
    w->info = metcd_strdup(c.info ? c.info : "");
    if (!w->prefix || (c.owner && !w->owner) || !w->info) {
        worker_destroy(w);
        return IDGEN_ENOMEM;
    }
    c.prefix = c.owner = c.info = NULL;
    w->cfg = c;
    w->kv = *kv;
    w->clock = *clock;
    w->notify = notify_fn;
    w->notify_arg = arg;
    w->id = -1;
    w->state = IDGEN_WORKER_CLAIMING;
    w->last_err = IDGEN_ENOT_READY;
    idgen_gen_init(&w->gen, c.epoch_ms, 0, c.max_drift_block_ms, c.max_drift_error_ms);
    *out = w;
    advance(w);
    return 0;
}

void idgen_worker_tick(idgen_worker *w)
{
    if (w && !w->dead)
        advance(w);
}

int idgen_worker_next(idgen_worker *w, uint64_t count, idgen_range *out, int64_t *wait_ms)
{
    *wait_ms = 0;
    if (w->state == IDGEN_WORKER_STOPPING || w->state == IDGEN_WORKER_STOPPED)
        return IDGEN_ESTOPPED;
    if (w->state != IDGEN_WORKER_READY)
        return IDGEN_ENOT_READY;
    int rc = idgen_gen_next(&w->gen, now_ms(w), count, out, wait_ms);
    if (rc == IDGEN_EDRIFT_LEAVE)
        start_stop(w, IDGEN_EDRIFT_LEAVE, false); /* the KV work follows on the next tick */
    return rc;
}

void idgen_worker_stop(idgen_worker *w)
{
    start_stop(w, 0, true);
    advance(w);
}

int idgen_worker_restart(idgen_worker *w)
{
    if (w->state != IDGEN_WORKER_STOPPED)
        return IDGEN_EINVAL;
    w->state = IDGEN_WORKER_CLAIMING;
    w->last_err = IDGEN_ENOT_READY;
    w->retry_at = 0;
    w->candidate = 0;
    advance(w);
    return 0;
}

void idgen_worker_free(idgen_worker *w)
{
    if (!w)
        return;
    if (w->pending > 0) {
        w->dead = true;
        return;
    }
    worker_destroy(w);
}

void idgen_worker_get_info(const idgen_worker *w, idgen_worker_info *out)
{
    out->state = w->state;
    out->worker_id = w->id;
    out->lease = w->lease;
    out->last_ts = idgen_gen_last_ts(&w->gen) > w->floor ? idgen_gen_last_ts(&w->gen) : 0;
    out->bound_ts = w->bound;
    out->floor_ts = w->floor;
    out->epoch_ms = w->cfg.epoch_ms;
    out->last_err = w->state == IDGEN_WORKER_READY ? 0 : w->last_err;
}

/* ---- listing --------------------------------------------------------------------------- */

struct list_ctx {
    idgen_kv kv;
    char *prefix;
    idgen_workers_fn done;
    void *arg;
    idgen_worker_rec *recs; /* by id; owner and info owned */
    bool *seen;
};

static void list_free(struct list_ctx *c)
{
    if (c->recs) {
        for (size_t i = 0; i < IDGEN_MAX_WORKERS; i++) {
            metcd_free((char *)c->recs[i].owner);
            metcd_free((char *)c->recs[i].info);
        }
    }
    metcd_free(c->recs);
    metcd_free(c->seen);
    metcd_free(c->prefix);
    metcd_free(c);
}

static char *json_str_dup(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    return metcd_strdup(json_is_string(v) ? json_string_value(v) : "");
}

static void on_list_ts(void *arg, int rc, const idgen_kv_pair *kvs, size_t n, int64_t revision)
{
    struct list_ctx *c = arg;
    (void)revision;
    if (rc != 0) {
        c->done(c->arg, rc, NULL, 0);
        list_free(c);
        return;
    }
    size_t dir_len = strlen(c->prefix) + strlen(IDGEN_TS_DIR);
    for (size_t i = 0; i < n; i++) {
        int32_t id = parse_id(kvs[i].key, kvs[i].key_len, dir_len);
        int64_t v;
        if (id < 0 || idgen_parse_i64(kvs[i].value, kvs[i].value_len, &v) != 0)
            continue;
        c->recs[id].bound_ts = v;
        c->seen[id] = true;
    }
    idgen_worker_rec *out = metcd_calloc(IDGEN_MAX_WORKERS, sizeof(*out));
    if (!out) {
        c->done(c->arg, IDGEN_ENOMEM, NULL, 0);
        list_free(c);
        return;
    }
    size_t k = 0;
    for (uint32_t id = 0; id < IDGEN_MAX_WORKERS; id++) {
        if (!c->seen[id])
            continue;
        out[k] = c->recs[id];
        out[k].id = id;
        if (!out[k].owner)
            out[k].owner = "";
        if (!out[k].info)
            out[k].info = "";
        k++;
    }
    c->done(c->arg, 0, out, k);
    metcd_free(out);
    list_free(c);
}

static void on_list_workers(void *arg, int rc, const idgen_kv_pair *kvs, size_t n, int64_t revision)
{
    struct list_ctx *c = arg;
    (void)revision;
    if (rc == 0) {
        size_t dir_len = strlen(c->prefix) + strlen(IDGEN_WORKERS_DIR);
        for (size_t i = 0; i < n && rc == 0; i++) {
            int32_t id = parse_id(kvs[i].key, kvs[i].key_len, dir_len);
            if (id < 0)
                continue;
            idgen_worker_rec *r = &c->recs[id];
            c->seen[id] = true;
            r->registered = true;
            r->lease = kvs[i].lease;
            json_t *o = json_loadb(kvs[i].value, kvs[i].value_len, 0, NULL);
            r->owner = json_str_dup(o, "owner");
            r->info = json_str_dup(o, "info");
            json_t *st = json_object_get(o, "started");
            r->started_ms = json_is_integer(st) ? json_integer_value(st) : 0;
            json_decref(o);
            if (!r->owner || !r->info)
                rc = IDGEN_ENOMEM;
        }
    }
    idgen_buf key = {0};
    idgen_buf_printf(&key, "%s%s", c->prefix, IDGEN_TS_DIR);
    if (rc == 0 && key.oom)
        rc = IDGEN_ENOMEM;
    if (rc == 0)
        rc = c->kv.ops->get(c->kv.data, key.p, key.len, true, on_list_ts, c);
    idgen_buf_free(&key);
    if (rc != 0) {
        c->done(c->arg, rc, NULL, 0);
        list_free(c);
    }
}

int idgen_workers_list(const idgen_kv *kv, const char *prefix, idgen_workers_fn done, void *arg)
{
    struct list_ctx *c = metcd_calloc(1, sizeof(*c));
    if (!c)
        return IDGEN_ENOMEM;
    c->kv = *kv;
    c->done = done;
    c->arg = arg;
    c->prefix = idgen_prefix_dup(prefix);
    c->recs = metcd_calloc(IDGEN_MAX_WORKERS, sizeof(*c->recs));
    c->seen = metcd_calloc(IDGEN_MAX_WORKERS, sizeof(*c->seen));
    idgen_buf key = {0};
    if (c->prefix)
        idgen_buf_printf(&key, "%s%s", c->prefix, IDGEN_WORKERS_DIR);
    int rc = IDGEN_ENOMEM;
    if (c->prefix && c->recs && c->seen && !key.oom)
        rc = kv->ops->get(kv->data, key.p, key.len, true, on_list_workers, c);
    idgen_buf_free(&key);
    if (rc != 0)
        list_free(c);
    return rc;
}
