/* backend/env.c - the LMDB environment: buckets, the batched write
 * transaction, map growth, size accounting, defrag and consistent copies.
 *
 * One write transaction (the "batch") stays open on the owner's thread;
 * every read and write goes through it, so reads see the batch. It is
 * committed durably every batch interval, after batch_limit writes, or on
 * demand. LMDB aborts a transaction that hits MDB_MAP_FULL, so every write of
 * the batch is also recorded in a redo buffer: on MAP_FULL the map is grown
 * and the batch replayed, and nothing the caller wrote is lost.
 */
#include "backend/backend.h"

#include "common/mem.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_INITIAL_MAP ((size_t)64 << 20)
#define DEFAULT_MAX_MAP ((size_t)8 << 30)
#define DEFAULT_INTERVAL_MS 100
#define DEFAULT_LIMIT 10000
#define ERRMSG_LEN 512

static const char *const bucket_names[BACKEND_NBUCKETS] = {
    "key",  "meta",  "lease", "members",   "members_removed",
    "cluster", "alarm", "auth", "authUsers", "authRoles",
};

enum redo_op { REDO_PUT = 1, REDO_DEL = 2 };

/* The redo buffer: records [u8 op][u8 bucket][u8 flags][u32 klen][u32 vlen]
 * [key][value], packed, appended in write order. */
struct redo {
    unsigned char *buf;
    size_t len, cap;
};

struct backend {
    MDB_env *env;
    MDB_dbi dbi[BACKEND_NBUCKETS];
    MDB_txn *txn; /* the open batch, or NULL */
    struct redo redo;
    uint32_t pending;
    uint32_t holds;
    int64_t free_pages; /* on LMDB's free list after the last commit */
    size_t map_size;
    backend_options opt;
    char *dir;
    struct event *timer;
    backend_stats stats;
    char errmsg[ERRMSG_LEN];
    /* read views open (backend_view_open), maybe read on other threads:
     * growing the map, defrag and close wait until there are none */
    pthread_mutex_t view_mu;
    pthread_cond_t view_cv;
    int views;
};

/* LMDB allows mdb_env_set_mapsize and mdb_env_close only when no
 * transaction is active in the process: wait for the views to close. */
static void wait_views(backend *be)
{
    pthread_mutex_lock(&be->view_mu);
    while (be->views)
        pthread_cond_wait(&be->view_cv, &be->view_mu);
    pthread_mutex_unlock(&be->view_mu);
}

static int set_err(backend *be, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_err(backend *be, int code, const char *fmt, ...)
{
    if (be) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(be->errmsg, sizeof(be->errmsg), fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Maps an LMDB or errno code onto the module's codes. */
static int map_rc(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return BACKEND_ENOTFOUND;
    case MDB_MAP_FULL:
        return BACKEND_ENOSPC;
    case MDB_BAD_VALSIZE:
        return BACKEND_EKEYSIZE;
    case MDB_CORRUPTED:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_PAGE_NOTFOUND:
        return BACKEND_ECORRUPT;
    case ENOMEM:
        return BACKEND_ENOMEM;
    case EAGAIN:
    case EBUSY:
        return BACKEND_EBUSY;
    case EINVAL:
        return BACKEND_EINVAL;
    default:
        return BACKEND_EIO;
    }
}

static int lmdb_err(backend *be, int rc, const char *what)
{
    return set_err(be, map_rc(rc), "%s: %s", what, mdb_strerror(rc));
}

const char *backend_bucket_name(int bucket)
{
    if (bucket < 0 || bucket >= BACKEND_NBUCKETS)
        return NULL;
    return bucket_names[bucket];
}

const char *backend_errmsg(const backend *be)
{
    return be ? be->errmsg : "";
}

const char *backend_strerror(int code)
{
    switch (code) {
    case BACKEND_OK:
        return "success";
    case BACKEND_ENOMEM:
        return "backend: out of memory";
    case BACKEND_EIO:
        return "backend: i/o error";
    case BACKEND_ENOSPC:
        return "backend: database space exceeded";
    case BACKEND_ENOTFOUND:
        return "backend: key not found";
    case BACKEND_EINVAL:
        return "backend: invalid argument";
    case BACKEND_ECORRUPT:
        return "backend: database corrupt";
    case BACKEND_EBUSY:
        return "backend: database in use by another process";
    case BACKEND_EKEYSIZE:
        return "backend: key too large";
    default:
        return "backend: unknown error";
    }
}

/* ---- redo buffer -------------------------------------------------------- */

#define REDO_HDR 11

/* Makes room for `need` more bytes. */
static int redo_reserve(struct redo *r, size_t need)
{
    if (r->len + need <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < r->len + need)
        cap *= 2;
    unsigned char *nb = metcd_realloc(r->buf, cap);
    if (!nb)
        return BACKEND_ENOMEM;
    r->buf = nb;
    r->cap = cap;
    return 0;
}

static int redo_add(struct redo *r, int op, int bucket, unsigned flags, const void *k,
                    size_t kl, const void *v, size_t vl)
{
    size_t need = REDO_HDR + kl + vl;
    if (redo_reserve(r, need))
        return BACKEND_ENOMEM;
    unsigned char *p = r->buf + r->len;
    uint32_t k32 = (uint32_t)kl, v32 = (uint32_t)vl;
    p[0] = (unsigned char)op;
    p[1] = (unsigned char)bucket;
    p[2] = (unsigned char)flags;
    memcpy(p + 3, &k32, 4);
    memcpy(p + 7, &v32, 4);
    memcpy(p + REDO_HDR, k, kl);
    if (vl)
        memcpy(p + REDO_HDR + kl, v, vl);
    r->len += need;
    return 0;
}

static void redo_reset(struct redo *r)
{
    r->len = 0;
    /* Give back a buffer that a huge batch inflated. */
    if (r->cap > ((size_t)16 << 20)) {
        metcd_free(r->buf);
        r->buf = NULL;
        r->cap = 0;
    }
}

/* ---- the batch transaction ------------------------------------------------ */

static int begin_batch(backend *be)
{
    if (be->txn)
        return 0;
    int rc = mdb_txn_begin(be->env, NULL, 0, &be->txn);
    if (rc) {
        be->txn = NULL;
        return lmdb_err(be, rc, "begin write transaction");
    }
    return 0;
}

static int raw_put(backend *be, int bucket, const void *k, size_t kl, const void *v, size_t vl,
                   unsigned flags)
{
    MDB_val mk = {kl, (void *)k}, mv = {vl, (void *)v};
    unsigned mflags = 0;
    if (flags & BACKEND_PUT_APPEND) {
        /* MDB_APPEND is only valid when the key sorts last; check cheaply. */
        MDB_cursor *c;
        int rc = mdb_cursor_open(be->txn, be->dbi[bucket], &c);
        if (rc)
            return rc;
        MDB_val lk, lv;
        rc = mdb_cursor_get(c, &lk, &lv, MDB_LAST);
        if (rc == MDB_NOTFOUND) {
            mflags = MDB_APPEND;
        } else if (rc == 0) {
            size_t n = lk.mv_size < kl ? lk.mv_size : kl;
            int cmp = memcmp(lk.mv_data, k, n);
            if (cmp < 0 || (cmp == 0 && lk.mv_size < kl))
                mflags = MDB_APPEND;
        }
        if (mflags) {
            rc = mdb_cursor_put(c, &mk, &mv, mflags);
            mdb_cursor_close(c);
            return rc;
        }
        mdb_cursor_close(c);
    }
    return mdb_put(be->txn, be->dbi[bucket], &mk, &mv, 0);
}

static int raw_del(backend *be, int bucket, const void *k, size_t kl)
{
    MDB_val mk = {kl, (void *)k};
    int rc = mdb_del(be->txn, be->dbi[bucket], &mk, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Replays the first `upto` bytes of the redo buffer into the (fresh) batch. */
static int redo_replay(backend *be, size_t upto)
{
    size_t off = 0;
    while (off < upto) {
        const unsigned char *p = be->redo.buf + off;
        uint32_t kl, vl;
        memcpy(&kl, p + 3, 4);
        memcpy(&vl, p + 7, 4);
        const unsigned char *k = p + REDO_HDR;
        int rc = p[0] == REDO_PUT ? raw_put(be, p[1], k, kl, k + kl, vl, p[2])
                                  : raw_del(be, p[1], k, kl);
        if (rc)
            return rc;
        off += REDO_HDR + kl + vl;
    }
    return 0;
}

/* Aborts the batch, grows the map (up to `limit`), and replays the first
 * `upto` redo bytes. Returns 0, MDB_MAP_FULL when the map is already at the
 * limit, or an LMDB error. */
static int grow_and_replay(backend *be, size_t upto, size_t limit)
{
    for (;;) {
        mdb_txn_abort(be->txn);
        be->txn = NULL;
        if (be->map_size >= limit)
            return MDB_MAP_FULL;
        size_t next = be->map_size * 2;
        if (next > limit)
            next = limit;
        wait_views(be);
        int rc = mdb_env_set_mapsize(be->env, next);
        if (rc)
            return rc;
        be->map_size = next;
        be->stats.grows++;
        be->stats.map_size = next;
        rc = mdb_txn_begin(be->env, NULL, 0, &be->txn);
        if (rc) {
            be->txn = NULL;
            return rc;
        }
        rc = redo_replay(be, upto);
        if (rc != MDB_MAP_FULL)
            return rc;
    }
}

/* Restores the batch to what the redo buffer holds up to `upto` bytes in a
 * map of the current size (used after an operation failed past the max). */
static int restore_batch(backend *be, size_t upto)
{
    int rc = mdb_txn_begin(be->env, NULL, 0, &be->txn);
    if (rc) {
        be->txn = NULL;
        return rc;
    }
    return redo_replay(be, upto);
}

/* Writes stop at max_map_size; a commit may take the map a little further
 * (LMDB needs pages to commit: free list, meta), so that a batch that filled
 * the map can always become durable. */
static size_t commit_limit(const backend *be)
{
    size_t slack = be->opt.max_map_size / 16;
    if (slack < ((size_t)1 << 20))
        slack = (size_t)1 << 20;
    return be->opt.max_map_size + slack;
}

static int64_t free_pages(backend *be);

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int commit_batch(backend *be)
{
    if (!be->txn)
        return 0;
    uint64_t t0 = mono_ns();
    int rc = mdb_txn_commit(be->txn);
    be->txn = NULL;
    if (rc == MDB_MAP_FULL) {
        /* Committing can need pages too: grow, replay, commit again. */
        size_t upto = be->redo.len;
        if (mdb_txn_begin(be->env, NULL, 0, &be->txn) == 0)
            rc = grow_and_replay(be, upto, commit_limit(be));
        if (rc == 0) {
            rc = mdb_txn_commit(be->txn);
            be->txn = NULL;
        }
    }
    if (rc) {
        if (be->txn) {
            mdb_txn_abort(be->txn);
            be->txn = NULL;
        }
        /* The batch is lost from LMDB but not from the redo buffer: keep it
         * so a later commit can try again. */
        return lmdb_err(be, rc, "commit");
    }
    redo_reset(&be->redo);
    be->pending = 0;
    be->stats.commits++;
    be->free_pages = free_pages(be);
    uint64_t t = mono_ns() - t0;
    be->stats.commit_ns += t;
    int b = backend_latency_bucket(t);
    if (b < BACKEND_LATENCY_BUCKETS)
        be->stats.commit_hist[b]++;
    return 0;
}

/* Runs one write op against the batch with MAP_FULL recovery. The op is in
 * the redo buffer already, starting at redo offset `before`. */
static int apply_logged(backend *be, int rc_first, size_t before)
{
    int rc = rc_first;
    if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL) {
        if (rc == MDB_TXN_FULL) {
            /* Too many dirty pages for one txn: commit what came before
             * and redo this op alone in a new batch. */
            size_t oplen = be->redo.len - before;
            unsigned char *op = metcd_memdup(be->redo.buf + before, oplen);
            if (!op)
                return set_err(be, BACKEND_ENOMEM, "out of memory");
            mdb_txn_abort(be->txn);
            be->txn = NULL;
            be->redo.len = before;
            rc = restore_batch(be, before);
            if (rc == 0) {
                int crc = commit_batch(be);
                if (crc) {
                    metcd_free(op);
                    return crc;
                }
                rc = redo_reserve(&be->redo, oplen);
                if (rc == 0) {
                    memcpy(be->redo.buf, op, oplen);
                    be->redo.len = oplen;
                    rc = restore_batch(be, oplen);
                } else {
                    rc = ENOMEM;
                }
            }
            metcd_free(op);
        } else {
            rc = grow_and_replay(be, be->redo.len, be->opt.max_map_size);
        }
        if (rc == MDB_MAP_FULL) {
            /* At the quota: drop this op, keep the batch as it was. */
            be->redo.len = before;
            int rrc = restore_batch(be, before);
            if (rrc)
                return lmdb_err(be, rrc, "restore batch");
            return set_err(be, BACKEND_ENOSPC,
                           "database map is at its maximum size (%zu bytes)",
                           be->opt.max_map_size);
        }
    }
    if (rc) {
        /* Unknown failure: the txn may be unusable; rebuild the batch
         * without this op so earlier writes survive. */
        int code = lmdb_err(be, rc, "write");
        if (be->txn)
            mdb_txn_abort(be->txn);
        be->txn = NULL;
        be->redo.len = before;
        if (restore_batch(be, before))
            be->txn = NULL;
        return code;
    }
    be->pending++;
    if (be->pending >= be->opt.batch_limit && be->holds == 0)
        return commit_batch(be);
    return 0;
}

static int check_bucket_key(backend *be, int bucket, size_t klen)
{
    if (bucket < 0 || bucket >= BACKEND_NBUCKETS)
        return set_err(be, BACKEND_EINVAL, "no bucket %d", bucket);
    if (klen == 0)
        return set_err(be, BACKEND_EINVAL, "empty key");
    if (klen > (size_t)mdb_env_get_maxkeysize(be->env))
        return set_err(be, BACKEND_EKEYSIZE, "key of %zu bytes is over LMDB's limit of %d", klen,
                       mdb_env_get_maxkeysize(be->env));
    return 0;
}

int backend_put(backend *be, int bucket, const void *key, size_t klen, const void *val,
                size_t vlen, unsigned flags)
{
    int rc = check_bucket_key(be, bucket, klen);
    if (rc)
        return rc;
    if (vlen > UINT32_MAX)
        return set_err(be, BACKEND_EINVAL, "value too large");
    rc = begin_batch(be);
    if (rc)
        return rc;
    size_t before = be->redo.len;
    rc = redo_add(&be->redo, REDO_PUT, bucket, flags, key, klen, val, vlen);
    if (rc)
        return set_err(be, rc, "out of memory");
    return apply_logged(be, raw_put(be, bucket, key, klen, val, vlen, flags), before);
}

int backend_del(backend *be, int bucket, const void *key, size_t klen)
{
    int rc = check_bucket_key(be, bucket, klen);
    if (rc)
        return rc;
    rc = begin_batch(be);
    if (rc)
        return rc;
    size_t before = be->redo.len;
    rc = redo_add(&be->redo, REDO_DEL, bucket, 0, key, klen, NULL, 0);
    if (rc)
        return set_err(be, rc, "out of memory");
    return apply_logged(be, raw_del(be, bucket, key, klen), before);
}

int backend_get(backend *be, int bucket, const void *key, size_t klen, backend_val *out)
{
    int rc = check_bucket_key(be, bucket, klen);
    if (rc)
        return rc;
    rc = begin_batch(be);
    if (rc)
        return rc;
    MDB_val mk = {klen, (void *)key}, mv;
    rc = mdb_get(be->txn, be->dbi[bucket], &mk, &mv);
    if (rc == MDB_NOTFOUND)
        return BACKEND_ENOTFOUND;
    if (rc)
        return lmdb_err(be, rc, "get");
    out->data = mv.mv_data;
    out->len = mv.mv_size;
    return 0;
}

static int key_before(const MDB_val *k, const void *end, size_t elen)
{
    size_t n = k->mv_size < elen ? k->mv_size : elen;
    int c = memcmp(k->mv_data, end, n);
    return c < 0 || (c == 0 && k->mv_size < elen);
}

/* Visits [start, end) of one bucket through txn's cursor (see
 * backend_range). Returns the visitor's negative code, or 0 with the
 * cursor's own failure (other than the end) in *mdb_rc. */
static int cursor_walk(MDB_txn *txn, MDB_dbi dbi, const void *start, size_t slen,
                       const void *end, size_t elen, size_t limit, backend_visit_fn fn, void *arg,
                       int *mdb_rc)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc) {
        *mdb_rc = rc;
        return 0;
    }
    MDB_val k = {slen, (void *)start}, v;
    rc = mdb_cursor_get(c, &k, &v, (start && slen) ? MDB_SET_RANGE : MDB_FIRST);
    size_t n = 0;
    int ret = 0;
    while (rc == 0) {
        if (end && !key_before(&k, end, elen))
            break;
        ret = fn(arg, (backend_val){k.mv_data, k.mv_size}, (backend_val){v.mv_data, v.mv_size});
        if (ret != 0)
            break;
        if (limit && ++n >= limit)
            break;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    *mdb_rc = rc == MDB_NOTFOUND ? 0 : rc;
    return ret < 0 ? ret : 0;
}

int backend_range(backend *be, int bucket, const void *start, size_t slen, const void *end,
                  size_t elen, size_t limit, backend_visit_fn fn, void *arg)
{
    if (bucket < 0 || bucket >= BACKEND_NBUCKETS)
        return set_err(be, BACKEND_EINVAL, "no bucket %d", bucket);
    int rc = begin_batch(be);
    if (rc)
        return rc;
    int mrc = 0;
    rc = cursor_walk(be->txn, be->dbi[bucket], start, slen, end, elen, limit, fn, arg, &mrc);
    if (rc)
        return rc;
    return mrc ? lmdb_err(be, mrc, "range") : 0;
}

int backend_commit(backend *be)
{
    return commit_batch(be);
}

void backend_hold(backend *be)
{
    be->holds++;
}

int backend_release(backend *be)
{
    if (be->holds && --be->holds == 0 && be->pending >= be->opt.batch_limit)
        return commit_batch(be);
    return 0;
}

uint32_t backend_pending(const backend *be)
{
    return be->pending;
}

/* ---- timer --------------------------------------------------------------- */

static void on_batch_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    backend *be = arg;
    if (be->pending && commit_batch(be))
        fprintf(stderr, "backend: periodic commit failed: %s\n", be->errmsg);
}

/* ---- open / close ----------------------------------------------------------- */

static int open_env(backend *be)
{
    int rc = mdb_env_create(&be->env);
    if (rc)
        return lmdb_err(be, rc, "mdb_env_create");
    mdb_env_set_maxdbs(be->env, BACKEND_NBUCKETS + 2);
    rc = mdb_env_set_mapsize(be->env, be->map_size);
    if (rc)
        goto err_env;
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (be->opt.no_sync)
        flags |= MDB_NOSYNC;
    rc = mdb_env_open(be->env, be->dir, flags, 0600);
    if (rc)
        goto err_env;
    /* The file may be larger than our initial map (it grew before). */
    MDB_envinfo info;
    mdb_env_info(be->env, &info);
    if (info.me_mapsize > be->map_size)
        be->map_size = info.me_mapsize;
    be->stats.map_size = be->map_size;

    MDB_txn *txn;
    rc = mdb_txn_begin(be->env, NULL, 0, &txn);
    if (rc)
        goto err_env;
    for (int i = 0; i < BACKEND_NBUCKETS; i++) {
        rc = mdb_dbi_open(txn, bucket_names[i], MDB_CREATE, &be->dbi[i]);
        if (rc) {
            mdb_txn_abort(txn);
            goto err_env;
        }
    }
    rc = mdb_txn_commit(txn);
    if (rc)
        goto err_env;
    be->free_pages = free_pages(be);
    return 0;

err_env:;
    int code = lmdb_err(be, rc, "open database");
    mdb_env_close(be->env);
    be->env = NULL;
    return code;
}

int backend_open(backend **out, const char *dir, const backend_options *opt, char *errbuf,
                 size_t errlen)
{
    *out = NULL;
    int code = BACKEND_ENOMEM;
    backend *be = metcd_calloc(1, sizeof(*be));
    if (!be) {
        if (errbuf)
            snprintf(errbuf, errlen, "out of memory");
        return BACKEND_ENOMEM;
    }
    if (opt)
        be->opt = *opt;
    if (!be->opt.initial_map_size)
        be->opt.initial_map_size = DEFAULT_INITIAL_MAP;
    if (!be->opt.max_map_size)
        be->opt.max_map_size = DEFAULT_MAX_MAP;
    if (be->opt.initial_map_size > be->opt.max_map_size)
        be->opt.initial_map_size = be->opt.max_map_size;
    if (!be->opt.batch_interval_ms)
        be->opt.batch_interval_ms = DEFAULT_INTERVAL_MS;
    if (!be->opt.batch_limit)
        be->opt.batch_limit = DEFAULT_LIMIT;
    be->map_size = be->opt.initial_map_size;
    pthread_mutex_init(&be->view_mu, NULL);
    pthread_cond_init(&be->view_cv, NULL);

    be->dir = metcd_strdup(dir);
    if (!be->dir) {
        set_err(be, BACKEND_ENOMEM, "out of memory");
        goto err_be;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        code = set_err(be, BACKEND_EIO, "mkdir %s: %s", dir, strerror(errno));
        goto err_dir;
    }
    code = open_env(be);
    if (code)
        goto err_dir;
    if (be->opt.base) {
        be->timer = event_new(be->opt.base, -1, EV_PERSIST, on_batch_timer, be);
        if (!be->timer) {
            code = set_err(be, BACKEND_ENOMEM, "out of memory");
            goto err_env;
        }
        struct timeval tv = {be->opt.batch_interval_ms / 1000,
                             (be->opt.batch_interval_ms % 1000) * 1000};
        evtimer_add(be->timer, &tv);
    }
    *out = be;
    return 0;

err_env:
    mdb_env_close(be->env);
err_dir:
    metcd_free(be->dir);
err_be:
    if (errbuf)
        snprintf(errbuf, errlen, "%s", be->errmsg[0] ? be->errmsg : "out of memory");
    pthread_cond_destroy(&be->view_cv);
    pthread_mutex_destroy(&be->view_mu);
    metcd_free(be);
    return code;
}

void backend_close(backend *be)
{
    if (!be)
        return;
    if (be->timer)
        event_free(be->timer);
    if (commit_batch(be))
        fprintf(stderr, "backend: final commit failed: %s\n", be->errmsg);
    if (be->txn)
        mdb_txn_abort(be->txn);
    wait_views(be);
    mdb_env_close(be->env);
    pthread_cond_destroy(&be->view_cv);
    pthread_mutex_destroy(&be->view_mu);
    metcd_free(be->redo.buf);
    metcd_free(be->dir);
    metcd_free(be);
}

/* ---- sizes ---------------------------------------------------------------- */

int64_t backend_size(backend *be)
{
    int fd;
    struct stat st;
    if (mdb_env_get_fd(be->env, &fd) || fstat(fd, &st))
        return 0;
    return (int64_t)st.st_size;
}

/* Pages on LMDB's free list: the values of the FREE_DBI (dbi 0) are ID
 * lists whose first word is their length (lmdb.h: MDB_IDL). Counted in a
 * read transaction of the committed state. */
static int64_t free_pages(backend *be)
{
    MDB_txn *txn;
    if (mdb_txn_begin(be->env, NULL, MDB_RDONLY, &txn))
        return 0;
    MDB_cursor *c;
    int64_t n = 0;
    if (mdb_cursor_open(txn, 0, &c) == 0) {
        MDB_val k, v;
        while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
            size_t cnt;
            if (v.mv_size >= sizeof(cnt)) {
                memcpy(&cnt, v.mv_data, sizeof(cnt));
                n += (int64_t)cnt;
            }
        }
        mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    return n;
}

int64_t backend_size_in_use(backend *be)
{
    /* As of the last commit: the pages up to LMDB's high-water mark less
     * those on its free list (counted at each commit). */
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(be->env, &info) || mdb_env_stat(be->env, &st))
        return 0;
    int64_t used = ((int64_t)info.me_last_pgno + 1 - be->free_pages) * st.ms_psize;
    return used < 0 ? 0 : used;
}

/* ---- copy and defrag ------------------------------------------------------------ */

int backend_copy_fd(backend *be, int fd)
{
    int rc = commit_batch(be);
    if (rc)
        return rc;
    rc = mdb_env_copyfd2(be->env, fd, 0);
    if (rc)
        return lmdb_err(be, rc, "copy");
    return 0;
}

int backend_defrag(backend *be)
{
    int rc = commit_batch(be);
    if (rc)
        return rc;
    wait_views(be); /* the environment is closed and reopened below */
    size_t dl = strlen(be->dir);
    char *tmpdir = metcd_malloc(dl + 16);
    char *src = metcd_malloc(dl + 32);
    char *dst = metcd_malloc(dl + 16);
    if (!tmpdir || !src || !dst) {
        rc = set_err(be, BACKEND_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(tmpdir, dl + 16, "%s/defrag.tmp", be->dir);
    snprintf(src, dl + 32, "%s/defrag.tmp/data.mdb", be->dir);
    snprintf(dst, dl + 16, "%s/data.mdb", be->dir);
    unlink(src);
    rmdir(tmpdir);
    if (mkdir(tmpdir, 0700) != 0) {
        rc = set_err(be, BACKEND_EIO, "mkdir %s: %s", tmpdir, strerror(errno));
        goto out;
    }
    int mrc = mdb_env_copy2(be->env, tmpdir, MDB_CP_COMPACT);
    if (mrc) {
        rc = lmdb_err(be, mrc, "compacting copy");
        unlink(src);
        rmdir(tmpdir);
        goto out;
    }
    /* Make the copy durable before it replaces the original. */
    int cfd = open(src, O_RDONLY);
    if (cfd < 0 || fsync(cfd) != 0) {
        rc = set_err(be, BACKEND_EIO, "fsync %s: %s", src, strerror(errno));
        if (cfd >= 0)
            close(cfd);
        unlink(src);
        rmdir(tmpdir);
        goto out;
    }
    close(cfd);
    mdb_env_close(be->env);
    be->env = NULL;
    if (rename(src, dst) != 0) {
        rc = set_err(be, BACKEND_EIO, "rename %s: %s", src, strerror(errno));
        unlink(src);
    }
    rmdir(tmpdir);
    int dfd = open(be->dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    /* Reopen whatever is in place now (the compacted file, or the original
     * if the rename failed). */
    be->map_size = be->opt.initial_map_size;
    int orc = open_env(be);
    if (orc && rc == 0)
        rc = orc;
out:
    metcd_free(tmpdir);
    metcd_free(src);
    metcd_free(dst);
    return rc;
}

/* ---- read views ------------------------------------------------------------ */

struct backend_view {
    backend *be;
    MDB_txn *txn;
};

int backend_view_open(backend *be, backend_view **out)
{
    *out = NULL;
    int rc = commit_batch(be);
    if (rc)
        return rc;
    backend_view *v = metcd_calloc(1, sizeof(*v));
    if (!v)
        return set_err(be, BACKEND_ENOMEM, "out of memory");
    int mrc = mdb_txn_begin(be->env, NULL, MDB_RDONLY, &v->txn);
    if (mrc) {
        metcd_free(v);
        return lmdb_err(be, mrc, "read view");
    }
    v->be = be;
    pthread_mutex_lock(&be->view_mu);
    be->views++;
    pthread_mutex_unlock(&be->view_mu);
    *out = v;
    return 0;
}

int backend_view_range(backend_view *v, int bucket, backend_visit_fn fn, void *arg)
{
    if (bucket < 0 || bucket >= BACKEND_NBUCKETS)
        return BACKEND_EINVAL;
    /* not lmdb_err: the error text belongs to the owner's thread */
    int mrc = 0;
    int rc = cursor_walk(v->txn, v->be->dbi[bucket], NULL, 0, NULL, 0, 0, fn, arg, &mrc);
    return rc ? rc : map_rc(mrc);
}

void backend_view_close(backend_view *v)
{
    if (!v)
        return;
    backend *be = v->be;
    mdb_txn_abort(v->txn);
    metcd_free(v);
    pthread_mutex_lock(&be->view_mu);
    be->views--;
    pthread_cond_broadcast(&be->view_cv);
    pthread_mutex_unlock(&be->view_mu);
}

/* ---- hash and stats ----------------------------------------------------------- */

struct hash_ctx {
    uint32_t crc;
    int bucket;
    backend_skip_fn skip;
    void *arg;
};

static int hash_visit(void *arg, backend_val k, backend_val v)
{
    struct hash_ctx *h = arg;
    if (h->skip && h->skip(h->arg, h->bucket, k))
        return 0;
    h->crc = backend_crc32c(h->crc, k.data, k.len);
    h->crc = backend_crc32c(h->crc, v.data, v.len);
    return 0;
}

int backend_hash(backend *be, backend_skip_fn skip, void *arg, uint32_t *out)
{
    struct hash_ctx h = {0, 0, skip, arg};
    for (int b = 0; b < BACKEND_NBUCKETS; b++) {
        h.bucket = b;
        h.crc = backend_crc32c(h.crc, bucket_names[b], strlen(bucket_names[b]));
        int rc = backend_range(be, b, NULL, 0, NULL, 0, 0, hash_visit, &h);
        if (rc)
            return rc;
    }
    *out = h.crc;
    return 0;
}

void backend_get_stats(const backend *be, backend_stats *out)
{
    *out = be->stats;
}

int backend_looks_like_lmdb(const void *buf, size_t len)
{
    /* the first page's header (16 bytes on 64-bit), then MDB_meta's
     * mm_magic, 0xBEEFC0DE in the host's order */
    const uint32_t magic = 0xBEEFC0DEu;
    return len >= 20 && memcmp((const uint8_t *)buf + 16, &magic, 4) == 0;
}
