/* mvcc/lessor.c - leases: the replicated table (id, TTL, checkpointed
 * remaining TTL, attached keys) and, on the primary, expiry and checkpoint
 * timing in two indexed min-heaps. See mvcc.h for the contract.
 *
 * Memory: a lease is one struct in a hash table by id; an attached key is
 * one node holding its bytes, in a hash table by key and in its lease's
 * doubly linked list, so attach, detach and revoke cost O(1) per key and no
 * read of the store. */
#include "mvcc/internal.h"

#include "common/mem.h"

#include <stdlib.h>
#include <string.h>

struct lkey {
    struct lkey *hnext;       /* key table chain */
    struct lkey *prev, *next; /* the lease's keys */
    struct lease *lease;
    uint64_t hash;
    uint32_t len;
    uint8_t key[];
};

enum { HEAP_EXPIRY = 0, HEAP_CP = 1 };
#define NOT_IN_HEAP SIZE_MAX

struct lease {
    int64_t id;
    int64_t ttl;           /* seconds */
    int64_t remaining_ttl; /* checkpoint, seconds; 0 = none */
    struct lease *hnext;
    struct lkey *keys;
    size_t nkeys;
    /* primary only */
    int64_t at[2];     /* expiry, next checkpoint (ms; INT64_MAX = never) */
    size_t pos[2];     /* heap positions */
    int64_t cp_base_ms; /* remaining TTL last recorded (or renewed to) */
    bool cp_clear;      /* a checkpoint is recorded and a renew made it stale */
    bool expired;       /* handed out for revoking: no more renewals */
};

struct heap {
    struct lease **v;
    size_t n, cap;
    int which;
};

struct mvcc_lessor {
    mvcc_store *kv;
    int64_t min_ttl;
    bool primary;
    struct lease **leases; /* hash table by id */
    size_t nbuckets, nleases;
    struct lkey **keys;    /* hash table by key */
    size_t nkbuckets, nkeys;
    struct heap heap[2];
};

/* ---- hashing ------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t key_hash(const uint8_t *k, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, then mixed */
    for (size_t i = 0; i < len; i++) {
        h ^= k[i];
        h *= 1099511628211ULL;
    }
    return mix64(h ^ len);
}

static struct lease *lease_find(const mvcc_lessor *l, int64_t id)
{
    if (!l->nbuckets)
        return NULL;
    for (struct lease *e = l->leases[mix64((uint64_t)id) & (l->nbuckets - 1)]; e; e = e->hnext)
        if (e->id == id)
            return e;
    return NULL;
}

/* Doubles a chained table once it holds more items than buckets. */
static int lease_table_grow(mvcc_lessor *l)
{
    if (l->nleases < l->nbuckets)
        return 0;
    size_t nb = l->nbuckets ? l->nbuckets * 2 : 64;
    struct lease **t = metcd_calloc(nb, sizeof(*t));
    if (!t)
        return MVCC_ENOMEM;
    for (size_t i = 0; i < l->nbuckets; i++) {
        struct lease *e = l->leases[i];
        while (e) {
            struct lease *next = e->hnext;
            size_t b = mix64((uint64_t)e->id) & (nb - 1);
            e->hnext = t[b];
            t[b] = e;
            e = next;
        }
    }
    metcd_free(l->leases);
    l->leases = t;
    l->nbuckets = nb;
    return 0;
}

static struct lkey *key_find(const mvcc_lessor *l, const uint8_t *k, size_t len, uint64_t h)
{
    if (!l->nkbuckets)
        return NULL;
    for (struct lkey *n = l->keys[h & (l->nkbuckets - 1)]; n; n = n->hnext)
        if (n->hash == h && n->len == len && memcmp(n->key, k, len) == 0)
            return n;
    return NULL;
}

static int key_table_grow(mvcc_lessor *l)
{
    if (l->nkeys < l->nkbuckets)
        return 0;
    size_t nb = l->nkbuckets ? l->nkbuckets * 2 : 256;
    struct lkey **t = metcd_calloc(nb, sizeof(*t));
    if (!t)
        return MVCC_ENOMEM;
    for (size_t i = 0; i < l->nkbuckets; i++) {
        struct lkey *n = l->keys[i];
        while (n) {
            struct lkey *next = n->hnext;
            size_t b = n->hash & (nb - 1);
            n->hnext = t[b];
            t[b] = n;
            n = next;
        }
    }
    metcd_free(l->keys);
    l->keys = t;
    l->nkbuckets = nb;
    return 0;
}

/* ---- heaps ---------------------------------------------------------------------- */

static void heap_set(struct heap *h, size_t i, struct lease *e)
{
    h->v[i] = e;
    e->pos[h->which] = i;
}

static void heap_up(struct heap *h, size_t i)
{
    struct lease *e = h->v[i];
    int64_t t = e->at[h->which];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p]->at[h->which] <= t)
            break;
        heap_set(h, i, h->v[p]);
        i = p;
    }
    heap_set(h, i, e);
}

static void heap_down(struct heap *h, size_t i)
{
    struct lease *e = h->v[i];
    int64_t t = e->at[h->which];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1]->at[h->which] < h->v[c]->at[h->which])
            c++;
        if (h->v[c]->at[h->which] >= t)
            break;
        heap_set(h, i, h->v[c]);
        i = c;
    }
    heap_set(h, i, e);
}

static void heap_remove(struct heap *h, struct lease *e)
{
    size_t i = e->pos[h->which];
    if (i == NOT_IN_HEAP)
        return;
    e->pos[h->which] = NOT_IN_HEAP;
    struct lease *last = h->v[--h->n];
    if (i == h->n)
        return;
    heap_set(h, i, last);
    heap_up(h, i);
    heap_down(h, last->pos[h->which]);
}

/* Sets e's time in heap h: INT64_MAX takes it out. Returns MVCC_ENOMEM
 * (e left out of the heap) when the heap cannot grow. */
static int heap_update(struct heap *h, struct lease *e, int64_t at)
{
    e->at[h->which] = at;
    size_t i = e->pos[h->which];
    if (at == INT64_MAX) {
        heap_remove(h, e);
        return 0;
    }
    if (i != NOT_IN_HEAP) {
        heap_up(h, i);
        heap_down(h, e->pos[h->which]);
        return 0;
    }
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 256;
        struct lease **v = metcd_realloc(h->v, nc * sizeof(*v));
        if (!v)
            return MVCC_ENOMEM;
        h->v = v;
        h->cap = nc;
    }
    heap_set(h, h->n, e);
    h->n++;
    heap_up(h, h->n - 1);
    return 0;
}

/* ---- persistence: leasepb.Lease {ID 1, TTL 2, RemainingTTL 3} ------------------- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

static void id_key(int64_t id, uint8_t k[8])
{
    uint64_t v = (uint64_t)id;
    for (int i = 7; i >= 0; i--) {
        k[i] = (uint8_t)v;
        v >>= 8;
    }
}

static int lease_persist(mvcc_lessor *l, const struct lease *e)
{
    uint8_t buf[3 * 11], k[8];
    size_t n = 0;
    buf[n++] = 0x08;
    n += put_varint(buf + n, (uint64_t)e->id);
    buf[n++] = 0x10;
    n += put_varint(buf + n, (uint64_t)e->ttl);
    if (e->remaining_ttl) {
        buf[n++] = 0x18;
        n += put_varint(buf + n, (uint64_t)e->remaining_ttl);
    }
    id_key(e->id, k);
    int rc = backend_put(l->kv->be, BACKEND_LEASE, k, sizeof(k), buf, n, 0);
    return rc ? store_backend_err(l->kv, rc) : 0;
}

static int lease_decode(const uint8_t *p, size_t len, int64_t *id, int64_t *ttl, int64_t *rem)
{
    const uint8_t *end = p + len;
    *id = *ttl = *rem = 0;
    while (p < end) {
        uint64_t tag, v;
        if (!get_varint(&p, end, &tag) || (tag & 7) != 0 || !get_varint(&p, end, &v))
            return MVCC_ECORRUPT;
        if (tag >> 3 == 1)
            *id = (int64_t)v;
        else if (tag >> 3 == 2)
            *ttl = (int64_t)v;
        else if (tag >> 3 == 3)
            *rem = (int64_t)v;
    }
    return *id ? 0 : MVCC_ECORRUPT;
}

/* ---- leases and keys --------------------------------------------------------------- */

static struct lease *lease_add(mvcc_lessor *l, int64_t id, int64_t ttl, int64_t rem)
{
    if (lease_table_grow(l))
        return NULL;
    struct lease *e = metcd_calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->id = id;
    e->ttl = ttl;
    e->remaining_ttl = rem;
    e->at[HEAP_EXPIRY] = e->at[HEAP_CP] = INT64_MAX;
    e->pos[HEAP_EXPIRY] = e->pos[HEAP_CP] = NOT_IN_HEAP;
    size_t b = mix64((uint64_t)id) & (l->nbuckets - 1);
    e->hnext = l->leases[b];
    l->leases[b] = e;
    l->nleases++;
    return e;
}

static void key_unlink(mvcc_lessor *l, struct lkey *n)
{
    struct lkey **pp = &l->keys[n->hash & (l->nkbuckets - 1)];
    while (*pp != n)
        pp = &(*pp)->hnext;
    *pp = n->hnext;
    struct lease *e = n->lease;
    if (n->prev)
        n->prev->next = n->next;
    else
        e->keys = n->next;
    if (n->next)
        n->next->prev = n->prev;
    e->nkeys--;
    l->nkeys--;
    metcd_free(n);
}

static void key_link(mvcc_lessor *l, struct lkey *n, struct lease *e)
{
    size_t b = n->hash & (l->nkbuckets - 1);
    n->hnext = l->keys[b];
    l->keys[b] = n;
    n->lease = e;
    n->prev = NULL;
    n->next = e->keys;
    if (e->keys)
        e->keys->prev = n;
    e->keys = n;
    e->nkeys++;
    l->nkeys++;
}

/* Forgets a lease: its remaining key nodes, its heap entries, itself. */
static void lease_remove(mvcc_lessor *l, struct lease *e)
{
    while (e->keys)
        key_unlink(l, e->keys);
    heap_remove(&l->heap[HEAP_EXPIRY], e);
    heap_remove(&l->heap[HEAP_CP], e);
    struct lease **pp = &l->leases[mix64((uint64_t)e->id) & (l->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    l->nleases--;
    metcd_free(e);
}

/* The store's hook: key now belongs to `lease` (0 = none). A lease that
 * does not exist (only possible for data written without a lessor) leaves
 * the key unattached. An allocation failure leaves the key unattached too:
 * its lease's revoke then misses it, which the log line in the member
 * cannot repair either; it is the one cost of running out of memory here. */
static void on_attach(void *arg, const uint8_t *key, size_t len, int64_t lease)
{
    mvcc_lessor *l = arg;
    if (!lease && !l->nkeys)
        return;
    uint64_t h = key_hash(key, len);
    struct lkey *n = key_find(l, key, len, h);
    if (n && n->lease->id == lease)
        return;
    if (n)
        key_unlink(l, n);
    if (!lease)
        return;
    struct lease *e = lease_find(l, lease);
    if (!e || key_table_grow(l))
        return;
    n = metcd_malloc(sizeof(*n) + len);
    if (!n)
        return;
    n->hash = h;
    n->len = (uint32_t)len;
    memcpy(n->key, key, len);
    key_link(l, n, e);
}

static int on_exists(void *arg, int64_t lease)
{
    return lease_find(arg, lease) != NULL;
}

/* ---- open / close -------------------------------------------------------------------- */

static int load_lease(void *arg, backend_val k, backend_val v)
{
    mvcc_lessor *l = arg;
    (void)k;
    int64_t id, ttl, rem;
    if (lease_decode(v.data, v.len, &id, &ttl, &rem))
        return MVCC_ECORRUPT;
    if (lease_find(l, id))
        return 0;
    return lease_add(l, id, ttl, rem) ? 0 : MVCC_ENOMEM;
}

struct scan_ctx {
    mvcc_lessor *l;
    struct mvcc_arena *a;
    size_t in_arena;
    int rc;
};

static bool scan_key(void *arg, key_index *ki)
{
    struct scan_ctx *c = arg;
    mvcc_kv kv;
    int found = store_get_kv(c->l->kv, ki->key, ki->keylen, c->l->kv->current_rev, c->a, &kv);
    if (found < 0) {
        c->rc = found;
        return false;
    }
    if (found && kv.lease)
        on_attach(c->l, ki->key, ki->keylen, kv.lease);
    if (++c->in_arena == 4096) { /* bound the memory of the scan */
        arena_free(c->a);
        c->a = arena_new();
        c->in_arena = 0;
        if (!c->a) {
            c->rc = MVCC_ENOMEM;
            return false;
        }
    }
    return true;
}

int mvcc_lessor_open(mvcc_lessor **out, mvcc_store *kv, int64_t min_ttl)
{
    *out = NULL;
    mvcc_lessor *l = metcd_calloc(1, sizeof(*l));
    if (!l)
        return MVCC_ENOMEM;
    l->kv = kv;
    l->min_ttl = min_ttl > 0 ? min_ttl : 1;
    l->heap[HEAP_EXPIRY].which = HEAP_EXPIRY;
    l->heap[HEAP_CP].which = HEAP_CP;
    int rc = backend_range(kv->be, BACKEND_LEASE, NULL, 0, NULL, 0, 0, load_lease, l);
    if (rc <= BACKEND_ENOMEM && rc > MVCC_ENOMEM) /* a backend code, not ours */
        rc = store_backend_err(kv, rc);
    if (rc == 0 && l->nleases) {
        struct scan_ctx c = {l, arena_new(), 0, 0};
        if (!c.a) {
            rc = MVCC_ENOMEM;
        } else {
            bt_ascend_range(&kv->index, (const uint8_t *)"", 0, NULL, 0, scan_key, &c);
            arena_free(c.a);
            rc = c.rc;
        }
    }
    if (rc) {
        mvcc_lessor_close(l);
        return rc;
    }
    mvcc_lease_hooks h = {on_exists, on_attach, l};
    mvcc_set_lease_hooks(kv, &h);
    *out = l;
    return 0;
}

void mvcc_lessor_close(mvcc_lessor *l)
{
    if (!l)
        return;
    if (l->kv->lease.arg == l)
        mvcc_set_lease_hooks(l->kv, NULL);
    for (size_t i = 0; i < l->nkbuckets; i++) {
        struct lkey *n = l->keys[i];
        while (n) {
            struct lkey *next = n->hnext;
            metcd_free(n);
            n = next;
        }
    }
    for (size_t i = 0; i < l->nbuckets; i++) {
        struct lease *e = l->leases[i];
        while (e) {
            struct lease *next = e->hnext;
            metcd_free(e);
            e = next;
        }
    }
    metcd_free(l->keys);
    metcd_free(l->leases);
    metcd_free(l->heap[0].v);
    metcd_free(l->heap[1].v);
    metcd_free(l);
}

/* ---- primary timing ------------------------------------------------------------------ */

#define MIN_CP_STEP_MS 1000

/* Arms e to expire `remaining_ms` from now, with its next checkpoint when
 * half of that has passed (none below a second's step). */
static void arm(mvcc_lessor *l, struct lease *e, int64_t now_ms, int64_t remaining_ms)
{
    e->cp_base_ms = remaining_ms;
    int64_t exp = now_ms + remaining_ms;
    /* out of memory leaves the lease out of the heaps: it does not expire
     * until the next renew or promotion rearms it (never early) */
    heap_update(&l->heap[HEAP_EXPIRY], e, exp);
    int64_t cp = remaining_ms / 2 >= MIN_CP_STEP_MS ? exp - remaining_ms / 2 : INT64_MAX;
    if (e->cp_clear)
        cp = now_ms;
    heap_update(&l->heap[HEAP_CP], e, cp);
}

static int64_t ttl_ms(int64_t s)
{
    return s > INT64_MAX / 2000 ? INT64_MAX / 2 : s * 1000;
}

void mvcc_lessor_promote(mvcc_lessor *l, int64_t now_ms, int64_t extend_ms)
{
    l->primary = true;
    for (size_t i = 0; i < l->nbuckets; i++)
        for (struct lease *e = l->leases[i]; e; e = e->hnext) {
            e->cp_clear = false;
            e->expired = false; /* its revoke died with the old term: time again */
            int64_t rem = e->remaining_ttl > 0 ? ttl_ms(e->remaining_ttl) : ttl_ms(e->ttl);
            arm(l, e, now_ms, rem + extend_ms);
            e->cp_base_ms = rem; /* the extension is not the lease's own time */
        }
}

void mvcc_lessor_demote(mvcc_lessor *l)
{
    l->primary = false;
    for (int h = 0; h < 2; h++) {
        for (size_t i = 0; i < l->heap[h].n; i++) {
            l->heap[h].v[i]->pos[h] = NOT_IN_HEAP;
            l->heap[h].v[i]->at[h] = INT64_MAX;
        }
        l->heap[h].n = 0;
    }
}

bool mvcc_lessor_is_primary(const mvcc_lessor *l)
{
    return l->primary;
}

int mvcc_lease_renew(mvcc_lessor *l, int64_t id, int64_t now_ms, int64_t *ttl)
{
    if (!l->primary)
        return MVCC_EINVALID;
    struct lease *e = lease_find(l, id);
    if (!e || e->expired || e->at[HEAP_EXPIRY] <= now_ms)
        return MVCC_ELEASE_NOT_FOUND;
    if (e->remaining_ttl > 0)
        e->cp_clear = true;
    arm(l, e, now_ms, ttl_ms(e->ttl));
    *ttl = e->ttl;
    return 0;
}

size_t mvcc_lessor_expired(mvcc_lessor *l, int64_t now_ms, int64_t retry_ms, int64_t *ids,
                           size_t max)
{
    struct heap *h = &l->heap[HEAP_EXPIRY];
    size_t n = 0;
    while (n < max && h->n && h->v[0]->at[HEAP_EXPIRY] <= now_ms) {
        struct lease *e = h->v[0];
        ids[n++] = e->id;
        e->expired = true;
        heap_update(h, e, now_ms + retry_ms);
        heap_update(&l->heap[HEAP_CP], e, INT64_MAX);
    }
    return n;
}

size_t mvcc_lessor_checkpoints(mvcc_lessor *l, int64_t now_ms, mvcc_lease_cp *out, size_t max)
{
    struct heap *h = &l->heap[HEAP_CP];
    size_t n = 0;
    while (n < max && h->n && h->v[0]->at[HEAP_CP] <= now_ms) {
        struct lease *e = h->v[0];
        int64_t left = e->at[HEAP_EXPIRY] - now_ms;
        out[n].id = e->id;
        if (e->cp_clear) {
            out[n].remaining_ttl = 0;
            e->cp_clear = false;
            e->cp_base_ms = left;
        } else {
            /* whole seconds, rounded up: a checkpoint never shortens a lease */
            out[n].remaining_ttl = left > 0 ? (left + 999) / 1000 : 1;
            e->cp_base_ms = out[n].remaining_ttl * 1000;
        }
        n++;
        int64_t next = e->cp_base_ms / 2 >= MIN_CP_STEP_MS
                           ? e->at[HEAP_EXPIRY] - e->cp_base_ms / 2
                           : INT64_MAX;
        heap_update(h, e, next > now_ms ? next : INT64_MAX);
    }
    return n;
}

void mvcc_lessor_shift(mvcc_lessor *l, int64_t delta_ms)
{
    /* the same shift for all keeps each heap ordered */
    for (int h = 0; h < 2; h++)
        for (size_t i = 0; i < l->heap[h].n; i++)
            if (l->heap[h].v[i]->at[h] < INT64_MAX - delta_ms)
                l->heap[h].v[i]->at[h] += delta_ms;
}

/* ---- apply ------------------------------------------------------------------------- */

int mvcc_lease_grant(mvcc_lessor *l, int64_t id, int64_t ttl, int64_t now_ms, int64_t *granted)
{
    if (id == 0)
        return MVCC_EINVALID;
    if (ttl > MVCC_LEASE_MAX_TTL)
        return MVCC_ELEASE_TTL_TOO_LARGE;
    if (lease_find(l, id))
        return MVCC_ELEASE_EXISTS;
    if (ttl < l->min_ttl)
        ttl = l->min_ttl;
    struct lease *e = lease_add(l, id, ttl, 0);
    if (!e)
        return MVCC_ENOMEM;
    int rc = lease_persist(l, e);
    if (rc) {
        lease_remove(l, e);
        return rc;
    }
    if (l->primary)
        arm(l, e, now_ms, ttl_ms(ttl));
    *granted = ttl;
    return 0;
}

static int key_cmp_ptr(const void *a, const void *b)
{
    const struct lkey *x = *(struct lkey *const *)a, *y = *(struct lkey *const *)b;
    return key_cmp(x->key, x->len, y->key, y->len);
}

int mvcc_lease_revoke(mvcc_lessor *l, int64_t id, mvcc_result *res)
{
    struct lease *e = lease_find(l, id);
    if (!e)
        return MVCC_ELEASE_NOT_FOUND;
    int rc = 0;
    if (e->nkeys) {
        /* in key order, as etcd deletes them: the same sub-revisions on
         * every member */
        struct lkey **v = metcd_malloc(e->nkeys * sizeof(*v));
        struct mvcc_arena *a = arena_new();
        if (!v || !a) {
            metcd_free(v);
            arena_free(a);
            return MVCC_ENOMEM;
        }
        size_t n = 0;
        for (struct lkey *k = e->keys; k; k = k->next)
            v[n++] = k;
        qsort(v, n, sizeof(*v), key_cmp_ptr);
        /* the deletes detach the nodes (the hook frees them): copy first */
        uint8_t **keys = arena_alloc(a, n * sizeof(*keys));
        size_t *lens = arena_alloc(a, n * sizeof(*lens));
        for (size_t i = 0; keys && lens && i < n; i++) {
            lens[i] = v[i]->len;
            keys[i] = arena_dup(a, v[i]->key, v[i]->len ? v[i]->len : 1);
            if (!keys[i])
                keys = NULL;
        }
        metcd_free(v);
        if (!keys || !lens) {
            arena_free(a);
            return MVCC_ENOMEM;
        }
        wtx_begin(l->kv);
        for (size_t i = 0; i < n && rc == 0; i++) {
            mvcc_delete_req d = {.key = keys[i], .key_len = lens[i]};
            mvcc_op_resp r;
            rc = store_delete(l->kv, &d, a, &r);
        }
        wtx_end(l->kv);
        arena_free(a);
        if (rc)
            return rc;
    }
    lease_remove(l, e);
    uint8_t k[8];
    id_key(id, k);
    int brc = backend_del(l->kv->be, BACKEND_LEASE, k, sizeof(k));
    if (brc)
        rc = store_backend_err(l->kv, brc);
    if (res) {
        mvcc_result_free(res);
        res->resp.type = MVCC_OP_NONE;
        res->resp.revision = l->kv->current_rev;
    }
    return rc;
}

int mvcc_lease_checkpoint(mvcc_lessor *l, int64_t id, int64_t remaining_ttl)
{
    struct lease *e = lease_find(l, id);
    if (!e || e->remaining_ttl == remaining_ttl)
        return 0;
    e->remaining_ttl = remaining_ttl > 0 ? remaining_ttl : 0;
    return lease_persist(l, e);
}

/* ---- queries ------------------------------------------------------------------------- */

int mvcc_lease_get(const mvcc_lessor *l, int64_t id, mvcc_lease_info *out)
{
    const struct lease *e = lease_find(l, id);
    if (!e)
        return MVCC_ELEASE_NOT_FOUND;
    out->id = e->id;
    out->ttl = e->ttl;
    out->remaining_ttl = e->remaining_ttl;
    out->expiry_ms = e->at[HEAP_EXPIRY];
    out->nkeys = e->nkeys;
    return 0;
}

int mvcc_lease_keys(const mvcc_lessor *l, int64_t id,
                    int (*fn)(void *arg, const uint8_t *key, size_t len), void *arg)
{
    const struct lease *e = lease_find(l, id);
    if (!e)
        return MVCC_ELEASE_NOT_FOUND;
    for (const struct lkey *k = e->keys; k; k = k->next)
        if (fn(arg, k->key, k->len))
            break;
    return 0;
}

size_t mvcc_lease_count(const mvcc_lessor *l)
{
    return l->nleases;
}

size_t mvcc_lease_list(const mvcc_lessor *l, int64_t *ids, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < l->nbuckets && n < max; i++)
        for (const struct lease *e = l->leases[i]; e && n < max; e = e->hnext)
            ids[n++] = e->id;
    return n;
}
