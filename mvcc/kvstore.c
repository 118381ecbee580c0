/* mvcc/kvstore.c - the KV store: open/restore, Range, Put, DeleteRange and
 * the write transaction they run in.
 *
 * Semantics are etcd 3.4's mvcc store plus the sorting, filtering and limit
 * handling of its apply layer (etcdserver/apply.go applierV3backend.Range).
 */
#include "mvcc/internal.h"

#include "common/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_TXN_OPS 128
#define DEFAULT_COMPACT_BATCH 1000

const char *mvcc_strerror(int code)
{
    switch (code) {
    case MVCC_OK:
        return "success";
    case MVCC_ENOMEM:
        return "mvcc: out of memory";
    case MVCC_EBACKEND:
        return "mvcc: backend failure";
    case MVCC_ECOMPACTED:
        return "mvcc: required revision has been compacted";
    case MVCC_EFUTURE_REV:
        return "mvcc: required revision is a future revision";
    case MVCC_EEMPTY_KEY:
        return "etcdserver: key is not provided";
    case MVCC_EKEY_NOT_FOUND:
        return "etcdserver: key not found";
    case MVCC_EVALUE_PROVIDED:
        return "etcdserver: value is provided";
    case MVCC_ELEASE_PROVIDED:
        return "etcdserver: lease is provided";
    case MVCC_ETOO_MANY_OPS:
        return "etcdserver: too many operations in txn request";
    case MVCC_EDUPLICATE_KEY:
        return "etcdserver: duplicate key given in txn request";
    case MVCC_EINVALID_SORT:
        return "etcdserver: invalid sort option";
    case MVCC_EINVALID:
        return "etcdserver: request is invalid";
    case MVCC_ELEASE_NOT_FOUND:
        return "etcdserver: requested lease not found";
    case MVCC_ENOSPACE:
        return "mvcc: database space exceeded";
    case MVCC_ECORRUPT:
        return "mvcc: stored data is corrupt";
    case MVCC_ELEASE_EXISTS:
        return "etcdserver: lease already exists";
    case MVCC_ELEASE_TTL_TOO_LARGE:
        return "etcdserver: too large lease TTL";
    default:
        return "mvcc: unknown error";
    }
}

int store_backend_err(mvcc_store *s, int rc)
{
    if (rc == BACKEND_ENOSPC)
        return MVCC_ENOSPACE;
    if (rc == BACKEND_ENOMEM)
        return MVCC_ENOMEM;
    snprintf(s->errmsg, sizeof(s->errmsg), "%s: %s", backend_strerror(rc),
             backend_errmsg(s->be));
    return MVCC_EBACKEND;
}

const char *mvcc_errmsg(const mvcc_store *s)
{
    return s->errmsg;
}

int64_t mvcc_current_rev(const mvcc_store *s)
{
    return s->current_rev;
}

int64_t mvcc_compact_rev(const mvcc_store *s)
{
    return s->compact_rev;
}

int64_t mvcc_keys_total(const mvcc_store *s)
{
    return s->keys_total;
}

void mvcc_get_stats(const mvcc_store *s, mvcc_stats *out)
{
    *out = s->stats;
}

size_t mvcc_index_bytes(const mvcc_store *s)
{
    return s->index.node_bytes + s->index_item_bytes;
}

void mvcc_set_observer(mvcc_store *s, mvcc_observer_fn fn, void *arg)
{
    s->observer = fn;
    s->observer_arg = arg;
}

void mvcc_set_lease_hooks(mvcc_store *s, const mvcc_lease_hooks *hooks)
{
    if (hooks)
        s->lease = *hooks;
    else
        memset(&s->lease, 0, sizeof(s->lease));
}

/* ---- write transaction ------------------------------------------------------ */

int wtx_begin(mvcc_store *s)
{
    s->stats.txns++;
    s->in_write = true;
    s->begin_rev = s->current_rev;
    s->sub = 0;
    s->events.n = 0;
    return 0;
}

int64_t wtx_read_rev(const mvcc_store *s)
{
    if (!s->in_write)
        return s->current_rev;
    return s->sub > 0 ? s->begin_rev + 1 : s->begin_rev;
}

int wtx_end(mvcc_store *s)
{
    if (s->sub > 0) {
        s->current_rev = s->begin_rev + 1;
        if (s->observer && s->events.n)
            s->observer(s->observer_arg, s->events.evs, s->events.n, s->current_rev);
    }
    s->in_write = false;
    s->events.n = 0;
    arena_free(s->ev_arena);
    s->ev_arena = NULL;
    return 0;
}

static mvcc_rev next_rev(mvcc_store *s)
{
    return (mvcc_rev){s->begin_rev + 1, s->sub++};
}

/* Records an event for the observer; `raw` (the stored KeyValue) is copied. */
static int record_event(mvcc_store *s, mvcc_event_type type, mvcc_rev rev, const uint8_t *raw,
                        size_t raw_len)
{
    if (!s->observer)
        return 0;
    if (!s->ev_arena && !(s->ev_arena = arena_new()))
        return MVCC_ENOMEM;
    if (s->events.n == s->events.cap) {
        size_t cap = s->events.cap ? s->events.cap * 2 : 16;
        mvcc_event *e = metcd_realloc(s->events.evs, cap * sizeof(*e));
        if (!e)
            return MVCC_ENOMEM;
        s->events.evs = e;
        s->events.cap = cap;
    }
    uint8_t *copy = arena_dup(s->ev_arena, raw, raw_len);
    if (!copy)
        return MVCC_ENOMEM;
    mvcc_event *ev = &s->events.evs[s->events.n];
    if (kv_decode(copy, raw_len, &ev->kv))
        return MVCC_ECORRUPT;
    ev->type = type;
    ev->rev = rev;
    if (type == MVCC_EVENT_DELETE)
        ev->kv.mod_revision = rev.main;
    s->events.n++;
    return 0;
}

/* ---- reads -------------------------------------------------------------------- */

/* Loads the stored KeyValue at rev into the arena. */
static int load_kv(mvcc_store *s, mvcc_rev rev, struct mvcc_arena *a, mvcc_kv *out)
{
    uint8_t rk[MVCC_TOMBSTONE_BYTES];
    size_t rl = mvcc_rev_encode(rev, 0, rk);
    backend_val v;
    int rc = backend_get(s->be, BACKEND_KEY, rk, rl, &v);
    if (rc == BACKEND_ENOTFOUND) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "index names revision %lld_%lld but the key bucket does not hold it",
                 (long long)rev.main, (long long)rev.sub);
        return MVCC_ECORRUPT;
    }
    if (rc)
        return store_backend_err(s, rc);
    uint8_t *copy = arena_dup(a, v.data, v.len);
    if (!copy)
        return MVCC_ENOMEM;
    return kv_decode(copy, v.len, out);
}

int store_get_kv(mvcc_store *s, const uint8_t *key, size_t klen, int64_t rev,
                 struct mvcc_arena *a, mvcc_kv *out)
{
    key_index *ki = bt_get(&s->index, key, klen);
    mvcc_rev mod;
    if (!ki || !ki_get(ki, rev, &mod, NULL, NULL))
        return 0;
    int rc = load_kv(s, mod, a, out);
    return rc ? rc : 1;
}

struct pair {
    key_index *ki;
    mvcc_rev mod;
};

struct collect {
    int64_t rev;
    bool count_only;
    int64_t count;
    struct pair *pairs;
    size_t n, cap;
    int err;
};

static bool collect_visit(void *arg, key_index *ki)
{
    struct collect *c = arg;
    mvcc_rev mod;
    if (!ki_get(ki, c->rev, &mod, NULL, NULL))
        return true;
    c->count++;
    if (c->count_only)
        return true;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct pair *p = metcd_realloc(c->pairs, cap * sizeof(*p));
        if (!p) {
            c->err = MVCC_ENOMEM;
            return false;
        }
        c->pairs = p;
        c->cap = cap;
    }
    c->pairs[c->n++] = (struct pair){ki, mod};
    return true;
}

/* Visits the key indexes selected by (key, range_end) with etcd's
 * conventions (see mvcc_range_req). */
static void visit_range(mvcc_store *s, const uint8_t *key, size_t klen, const uint8_t *end,
                        size_t elen, bt_visit_fn fn, void *arg)
{
    if (elen == 0) {
        key_index *ki = bt_get(&s->index, key, klen);
        if (ki)
            fn(arg, ki);
        return;
    }
    if (elen == 1 && end[0] == 0)
        end = NULL; /* "\0": every key >= key */
    bt_ascend_range(&s->index, key, klen, end, elen, fn, arg);
}

int check_range_req(const mvcc_range_req *req)
{
    if (req->key_len == 0)
        return MVCC_EEMPTY_KEY;
    if (req->sort_order < MVCC_SORT_NONE || req->sort_order > MVCC_SORT_DESCEND)
        return MVCC_EINVALID_SORT;
    if (req->sort_target < MVCC_SORT_KEY || req->sort_target > MVCC_SORT_VALUE)
        return MVCC_EINVALID_SORT;
    return 0;
}

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b ? 1 : 0;
}

struct sort_item {
    mvcc_kv *kv;
    size_t pos;
};

/* A stable order: ties keep their key order (etcd sorts few keys with an
 * insertion sort, which is stable, and clients see that order). */
struct sort_how {
    int target;
    bool desc;
};

static int sort_cmp(const void *pa, const void *pb, void *arg)
{
    const struct sort_how *how = arg;
    const struct sort_item *ia = pa, *ib = pb;
    const mvcc_kv *a = ia->kv, *b = ib->kv;
    int c;
    switch (how->target) {
    case MVCC_SORT_VERSION:
        c = cmp_i64(a->version, b->version);
        break;
    case MVCC_SORT_CREATE:
        c = cmp_i64(a->create_revision, b->create_revision);
        break;
    case MVCC_SORT_MOD:
        c = cmp_i64(a->mod_revision, b->mod_revision);
        break;
    case MVCC_SORT_VALUE:
        c = key_cmp(a->value, a->value_len, b->value, b->value_len);
        break;
    default:
        c = key_cmp(a->key, a->key_len, b->key, b->key_len);
        break;
    }
    if (how->desc)
        c = -c;
    if (c)
        return c;
    return ia->pos < ib->pos ? -1 : ia->pos > ib->pos ? 1 : 0;
}

static int sort_kvs(mvcc_kv *kvs, size_t n, int target, bool desc)
{
    if (n < 2)
        return 0;
    struct sort_item *items = metcd_malloc(n * sizeof(*items));
    mvcc_kv *tmp = metcd_malloc(n * sizeof(*tmp));
    if (!items || !tmp) {
        metcd_free(items);
        metcd_free(tmp);
        return MVCC_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        items[i] = (struct sort_item){&kvs[i], i};
    struct sort_how how = {target, desc};
    qsort_r(items, n, sizeof(*items), sort_cmp, &how);
    for (size_t i = 0; i < n; i++)
        tmp[i] = *items[i].kv;
    memcpy(kvs, tmp, n * sizeof(*tmp));
    metcd_free(items);
    metcd_free(tmp);
    return 0;
}

static bool pruned(const mvcc_range_req *r, const mvcc_kv *kv)
{
    if (r->max_mod_revision && kv->mod_revision > r->max_mod_revision)
        return true;
    if (r->min_mod_revision && kv->mod_revision < r->min_mod_revision)
        return true;
    if (r->max_create_revision && kv->create_revision > r->max_create_revision)
        return true;
    if (r->min_create_revision && kv->create_revision < r->min_create_revision)
        return true;
    return false;
}

int store_range(mvcc_store *s, const mvcc_range_req *req, int64_t cur_rev, struct mvcc_arena *a,
                mvcc_op_resp *out)
{
    int rc = check_range_req(req);
    if (rc)
        return rc;
    s->stats.ranges++;
    int64_t rev = req->revision > 0 ? req->revision : cur_rev;
    if (rev > cur_rev)
        return MVCC_EFUTURE_REV;
    if (rev < s->compact_rev)
        return MVCC_ECOMPACTED;

    bool filtered = req->min_mod_revision || req->max_mod_revision ||
                    req->min_create_revision || req->max_create_revision;
    int order = req->sort_order;
    if (req->sort_target != MVCC_SORT_KEY && order == MVCC_SORT_NONE)
        order = MVCC_SORT_ASCEND; /* etcd: results come key-ascending */
    /* Fetch everything when sorting or filtering, else one more than the
     * limit to learn `more`. */
    int64_t fetch = (req->sort_order != MVCC_SORT_NONE || filtered) ? 0 : req->limit;
    if (fetch > 0)
        fetch++;

    struct collect c = {.rev = rev, .count_only = req->count_only != 0};
    struct pair one;
    if (req->range_end_len == 0) {
        /* a point read: no pair vector */
        key_index *ki = bt_get(&s->index, req->key, req->key_len);
        if (ki && ki_get(ki, rev, &one.mod, NULL, NULL)) {
            one.ki = ki;
            c.count = 1;
            c.n = !c.count_only;
        }
    } else {
        visit_range(s, req->key, req->key_len, req->range_end, req->range_end_len, collect_visit,
                    &c);
    }
    struct pair *pairs = c.pairs ? c.pairs : &one;
    if (c.err) {
        metcd_free(c.pairs);
        return c.err;
    }
    out->type = MVCC_OP_RANGE;
    out->revision = cur_rev;
    out->u.range.count = c.count;
    out->u.range.kvs = NULL;
    out->u.range.nkvs = 0;
    out->u.range.more = 0;
    if (c.count_only || c.n == 0) {
        metcd_free(c.pairs);
        return 0;
    }
    size_t n = c.n;
    if (fetch > 0 && (size_t)fetch < n)
        n = (size_t)fetch;
    mvcc_kv *kvs = arena_alloc(a, n * sizeof(*kvs));
    if (!kvs) {
        metcd_free(c.pairs);
        return MVCC_ENOMEM;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        rc = load_kv(s, pairs[i].mod, a, &kvs[kept]);
        if (rc) {
            metcd_free(c.pairs);
            return rc;
        }
        if (!filtered || !pruned(req, &kvs[kept]))
            kept++;
    }
    metcd_free(c.pairs);
    if (order == MVCC_SORT_ASCEND || order == MVCC_SORT_DESCEND) {
        /* Key-ascending is the natural order: skip that sort. */
        if (!(order == MVCC_SORT_ASCEND && req->sort_target == MVCC_SORT_KEY)) {
            rc = sort_kvs(kvs, kept, req->sort_target, order == MVCC_SORT_DESCEND);
            if (rc)
                return rc;
        }
    }
    if (req->limit > 0 && kept > (size_t)req->limit) {
        kept = (size_t)req->limit;
        out->u.range.more = 1;
    }
    if (req->keys_only) {
        for (size_t i = 0; i < kept; i++) {
            kvs[i].value = NULL;
            kvs[i].value_len = 0;
            kvs[i].raw = NULL;
            kvs[i].raw_len = 0;
        }
    }
    out->u.range.kvs = kvs;
    out->u.range.nkvs = kept;
    return 0;
}

int mvcc_range(mvcc_store *s, const mvcc_range_req *req, mvcc_result *res)
{
    s->stats.txns++;
    struct mvcc_arena *a = result_arena(res);
    if (!a)
        return MVCC_ENOMEM;
    int rc = store_range(s, req, s->current_rev, a, &res->resp);
    if (rc)
        mvcc_result_free(res);
    return rc;
}

/* ---- writes ------------------------------------------------------------------- */

int check_put_req(const mvcc_put_req *req)
{
    if (req->key_len == 0)
        return MVCC_EEMPTY_KEY;
    if (req->ignore_value && req->value_len != 0)
        return MVCC_EVALUE_PROVIDED;
    if (req->ignore_lease && req->lease != 0)
        return MVCC_ELEASE_PROVIDED;
    return 0;
}

/* The live KeyValue of a key at the head of the store, if any. */
static int head_kv(mvcc_store *s, key_index *ki, struct mvcc_arena *a, mvcc_kv *out)
{
    if (!ki)
        return 0;
    mvcc_rev mod;
    if (!ki_get(ki, INT64_MAX, &mod, NULL, NULL))
        return 0;
    int rc = load_kv(s, mod, a, out);
    return rc ? rc : 1;
}

static void index_add_bytes(mvcc_store *s, key_index *ki, size_t before)
{
    s->index_item_bytes += ki_bytes(ki);
    s->index_item_bytes -= before;
}

int store_put(mvcc_store *s, const mvcc_put_req *req, struct mvcc_arena *a, mvcc_op_resp *out)
{
    int rc = check_put_req(req);
    if (rc)
        return rc;
    s->stats.puts++;
    if (!req->ignore_lease && req->lease != 0 && s->lease.lease_exists &&
        !s->lease.lease_exists(s->lease.arg, req->lease))
        return MVCC_ELEASE_NOT_FOUND;
    /* One descent finds the key or makes its (empty) key index. */
    bool fresh;
    key_index *ki = bt_upsert(&s->index, req->key, req->key_len, &fresh);
    if (!ki)
        return MVCC_ENOMEM;
    if (fresh)
        s->index_item_bytes += ki_bytes(ki);
    mvcc_kv prev = {0};
    int have_prev = 0;
    if (!fresh && (req->prev_kv || req->ignore_value || req->ignore_lease)) {
        have_prev = head_kv(s, ki, a, &prev);
        if (have_prev < 0) {
            rc = have_prev;
            goto err_ki;
        }
    }
    if ((req->ignore_value || req->ignore_lease) && !have_prev) {
        rc = MVCC_EKEY_NOT_FOUND;
        goto err_ki;
    }
    int64_t lease = req->ignore_lease ? prev.lease : req->lease;
    const uint8_t *val = req->ignore_value ? prev.value : req->value;
    size_t vlen = req->ignore_value ? prev.value_len : req->value_len;

    size_t ki_before = ki_bytes(ki);
    mvcc_rev mod_before, created;
    int64_t ver = 0;
    bool alive = ki_get(ki, INT64_MAX, &mod_before, &created, &ver);
    mvcc_rev rev = next_rev(s);
    if (!alive) {
        created = rev;
        ver = 0;
    }
    size_t enc_len;
    rc = kv_encode(&s->scratch, &s->scratch_cap, req->key, req->key_len, val, vlen,
                   created.main, rev.main, ver + 1, lease, &enc_len);
    if (rc)
        goto err_rev;
    uint8_t rk[MVCC_TOMBSTONE_BYTES];
    size_t rl = mvcc_rev_encode(rev, 0, rk);
    rc = backend_put(s->be, BACKEND_KEY, rk, rl, s->scratch, enc_len, BACKEND_PUT_APPEND);
    if (rc) {
        rc = store_backend_err(s, rc);
        goto err_rev;
    }
    rc = ki_put(ki, rev);
    if (rc) {
        backend_del(s->be, BACKEND_KEY, rk, rl);
        goto err_rev;
    }
    index_add_bytes(s, ki, ki_before);
    if (!alive)
        s->keys_total++;
    rc = record_event(s, MVCC_EVENT_PUT, rev, s->scratch, enc_len);
    if (rc)
        return rc;
    if (s->lease.lease_attach)
        s->lease.lease_attach(s->lease.arg, req->key, req->key_len, lease);
    out->type = MVCC_OP_PUT;
    out->revision = rev.main;
    out->u.put.prev_kv = NULL;
    if (req->prev_kv && have_prev) {
        mvcc_kv *p = arena_dup(a, &prev, sizeof(prev));
        if (!p)
            return MVCC_ENOMEM;
        out->u.put.prev_kv = p;
    }
    return 0;

err_rev:
    s->sub--;
err_ki:
    if (fresh) {
        s->index_item_bytes -= ki_bytes(ki);
        bt_delete(&s->index, req->key, req->key_len);
        ki_free(ki);
    }
    return rc;
}

struct del_collect {
    key_index **kis;
    size_t n, cap;
    int err;
};

static bool del_visit(void *arg, key_index *ki)
{
    struct del_collect *c = arg;
    if (!ki_get(ki, INT64_MAX, NULL, NULL, NULL))
        return true;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        key_index **p = metcd_realloc(c->kis, cap * sizeof(*p));
        if (!p) {
            c->err = MVCC_ENOMEM;
            return false;
        }
        c->kis = p;
        c->cap = cap;
    }
    c->kis[c->n++] = ki;
    return true;
}

int store_delete(mvcc_store *s, const mvcc_delete_req *req, struct mvcc_arena *a,
                 mvcc_op_resp *out)
{
    if (req->key_len == 0)
        return MVCC_EEMPTY_KEY;
    s->stats.deletes++;
    struct del_collect c = {0};
    visit_range(s, req->key, req->key_len, req->range_end, req->range_end_len, del_visit, &c);
    if (c.err) {
        metcd_free(c.kis);
        return c.err;
    }
    out->type = MVCC_OP_DELETE;
    out->u.del.deleted = 0;
    out->u.del.prev_kvs = NULL;
    out->u.del.nprev_kvs = 0;
    int rc = 0;
    bool want_prev = req->prev_kv;
    mvcc_kv *prevs = NULL;
    if (want_prev && c.n) {
        prevs = arena_alloc(a, c.n * sizeof(*prevs));
        if (!prevs) {
            rc = MVCC_ENOMEM;
            goto out;
        }
        /* Load every previous value before writing anything. */
        for (size_t i = 0; i < c.n; i++) {
            mvcc_rev mod;
            ki_get(c.kis[i], INT64_MAX, &mod, NULL, NULL);
            rc = load_kv(s, mod, a, &prevs[i]);
            if (rc)
                goto out;
        }
    }
    for (size_t i = 0; i < c.n; i++) {
        key_index *ki = c.kis[i];
        size_t before = ki_bytes(ki);
        mvcc_rev rev = next_rev(s);
        size_t enc_len;
        rc = kv_encode(&s->scratch, &s->scratch_cap, ki->key, ki->keylen, NULL, 0, 0, 0, 0, 0,
                       &enc_len);
        if (rc)
            goto out;
        uint8_t rk[MVCC_TOMBSTONE_BYTES];
        size_t rl = mvcc_rev_encode(rev, 1, rk);
        rc = backend_put(s->be, BACKEND_KEY, rk, rl, s->scratch, enc_len, BACKEND_PUT_APPEND);
        if (rc) {
            rc = store_backend_err(s, rc);
            goto out;
        }
        rc = ki_tombstone(ki, rev);
        if (rc)
            goto out;
        index_add_bytes(s, ki, before);
        s->keys_total--;
        out->u.del.deleted++;
        rc = record_event(s, MVCC_EVENT_DELETE, rev, s->scratch, enc_len);
        if (rc)
            goto out;
        if (s->lease.lease_attach)
            s->lease.lease_attach(s->lease.arg, ki->key, ki->keylen, 0);
    }
    if (req->prev_kv) {
        out->u.del.prev_kvs = prevs;
        out->u.del.nprev_kvs = c.n;
    }
    out->revision = wtx_read_rev(s);
out:
    metcd_free(c.kis);
    return rc;
}

int mvcc_put(mvcc_store *s, const mvcc_put_req *req, mvcc_result *res)
{
    struct mvcc_arena *a = result_arena(res);
    if (!a)
        return MVCC_ENOMEM;
    wtx_begin(s);
    int rc = store_put(s, req, a, &res->resp);
    wtx_end(s);
    if (rc)
        mvcc_result_free(res);
    return rc;
}

int mvcc_delete_range(mvcc_store *s, const mvcc_delete_req *req, mvcc_result *res)
{
    struct mvcc_arena *a = result_arena(res);
    if (!a)
        return MVCC_ENOMEM;
    wtx_begin(s);
    int rc = store_delete(s, req, a, &res->resp);
    wtx_end(s);
    if (rc)
        mvcc_result_free(res);
    return rc;
}

/* ---- history ------------------------------------------------------------------- */

struct hist_ctx {
    mvcc_history_fn fn;
    void *arg;
    size_t limit, n;
    bool more;
    int err;
};

static int hist_visit(void *arg, backend_val k, backend_val v)
{
    struct hist_ctx *h = arg;
    if (h->limit && h->n == h->limit) {
        h->more = true;
        return 1;
    }
    mvcc_event ev;
    int tomb;
    if (mvcc_rev_decode(k.data, k.len, &ev.rev, &tomb) || kv_decode(v.data, v.len, &ev.kv)) {
        h->err = MVCC_ECORRUPT;
        return 1;
    }
    ev.type = tomb ? MVCC_EVENT_DELETE : MVCC_EVENT_PUT;
    if (tomb)
        ev.kv.mod_revision = ev.rev.main;
    h->n++;
    return h->fn(h->arg, &ev) ? 0 : 1;
}

int mvcc_history(mvcc_store *s, int64_t min_rev, int64_t max_rev, size_t limit,
                 mvcc_history_fn fn, void *arg)
{
    if (max_rev <= 0 || max_rev > s->current_rev)
        max_rev = s->current_rev;
    if (min_rev < s->compact_rev)
        return MVCC_ECOMPACTED;
    uint8_t lo[MVCC_TOMBSTONE_BYTES], hi[MVCC_TOMBSTONE_BYTES];
    size_t ll = mvcc_rev_encode((mvcc_rev){min_rev, 0}, 0, lo);
    size_t hl = mvcc_rev_encode((mvcc_rev){max_rev + 1, 0}, 0, hi);
    struct hist_ctx h = {fn, arg, limit, 0, false, 0};
    int rc = backend_range(s->be, BACKEND_KEY, lo, ll, hi, hl, 0, hist_visit, &h);
    if (rc)
        return store_backend_err(s, rc);
    if (h.err)
        return h.err;
    return h.more ? 1 : 0;
}

/* ---- consistent index ------------------------------------------------------------ */

uint64_t mvcc_consistent_index(mvcc_store *s)
{
    backend_val v;
    if (backend_get(s->be, BACKEND_META, META_CONSISTENT_INDEX, strlen(META_CONSISTENT_INDEX),
                    &v) ||
        v.len != 8)
        return 0;
    const uint8_t *p = v.data;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = (x << 8) | p[i];
    return x;
}

int mvcc_set_consistent_index(mvcc_store *s, uint64_t index)
{
    uint8_t b[8];
    for (int i = 7; i >= 0; i--) {
        b[i] = (uint8_t)index;
        index >>= 8;
    }
    int rc = backend_put(s->be, BACKEND_META, META_CONSISTENT_INDEX,
                         strlen(META_CONSISTENT_INDEX), b, 8, 0);
    return rc ? store_backend_err(s, rc) : 0;
}

/* ---- open / restore ---------------------------------------------------------------- */

static int64_t read_meta_rev(mvcc_store *s, const char *name)
{
    backend_val v;
    mvcc_rev r;
    if (backend_get(s->be, BACKEND_META, name, strlen(name), &v) ||
        mvcc_rev_decode(v.data, v.len, &r, NULL))
        return 0;
    return r.main;
}

struct restore_ctx {
    mvcc_store *s;
    int err;
};

static int restore_visit(void *arg, backend_val k, backend_val v)
{
    struct restore_ctx *r = arg;
    mvcc_store *s = r->s;
    mvcc_rev rev;
    int tomb;
    mvcc_kv kv;
    if (mvcc_rev_decode(k.data, k.len, &rev, &tomb) || kv_decode(v.data, v.len, &kv) ||
        kv.key_len == 0) {
        r->err = MVCC_ECORRUPT;
        snprintf(s->errmsg, sizeof(s->errmsg), "undecodable record in the key bucket");
        return 1;
    }
    s->current_rev = rev.main;
    bool created;
    key_index *ki = bt_upsert(&s->index, kv.key, kv.key_len, &created);
    if (!ki) {
        r->err = MVCC_ENOMEM;
        return 1;
    }
    if (created) {
        s->index_item_bytes += ki_bytes(ki);
        if (tomb) {
            /* the key's earlier revisions were compacted away: an empty
             * key index reads as absent and goes at the next compaction */
            return 0;
        }
        ki_restore(ki, (mvcc_rev){kv.create_revision, 0}, rev, kv.version);
        s->keys_total++;
        return 0;
    }
    size_t before = ki_bytes(ki);
    bool was_alive = ki_get(ki, INT64_MAX, NULL, NULL, NULL);
    int rc = tomb ? (was_alive ? ki_tombstone(ki, rev) : 0) : ki_put(ki, rev);
    if (rc) {
        r->err = rc;
        return 1;
    }
    index_add_bytes(s, ki, before);
    if (tomb && was_alive)
        s->keys_total--;
    else if (!tomb && !was_alive)
        s->keys_total++;
    return 0;
}

int mvcc_open(mvcc_store **out, backend *be, const mvcc_options *opt)
{
    *out = NULL;
    mvcc_store *s = metcd_calloc(1, sizeof(*s));
    if (!s)
        return MVCC_ENOMEM;
    s->be = be;
    if (opt)
        s->opt = *opt;
    if (!s->opt.max_txn_ops)
        s->opt.max_txn_ops = DEFAULT_MAX_TXN_OPS;
    if (!s->opt.compact_batch)
        s->opt.compact_batch = DEFAULT_COMPACT_BATCH;
    bt_init(&s->index);
    s->current_rev = 1; /* etcd: an empty store is at revision 1 */
    s->compact_rev = -1;

    int64_t finished = read_meta_rev(s, META_FINISHED_COMPACT);
    int64_t scheduled = read_meta_rev(s, META_SCHEDULED_COMPACT);
    if (finished > 0)
        s->compact_rev = finished;

    struct restore_ctx r = {s, 0};
    int rc = backend_range(be, BACKEND_KEY, NULL, 0, NULL, 0, 0, restore_visit, &r);
    if (rc)
        rc = store_backend_err(s, rc);
    else
        rc = r.err;
    if (rc)
        goto err;
    if (s->current_rev < s->compact_rev)
        s->current_rev = s->compact_rev;
    s->finished_rev = finished;
    if (scheduled > finished) {
        rc = mvcc_compact(s, scheduled);
        if (rc)
            goto err;
    }
    *out = s;
    return 0;
err:
    fprintf(stderr, "mvcc: restore failed: %s %s\n", mvcc_strerror(rc), s->errmsg);
    mvcc_close(s);
    return rc;
}

void mvcc_close(mvcc_store *s)
{
    if (!s)
        return;
    bt_destroy(&s->index, true);
    metcd_free(s->events.evs);
    arena_free(s->ev_arena);
    metcd_free(s->scratch);
    metcd_free(s);
    arena_release_spare();
}
