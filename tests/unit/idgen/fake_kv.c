/* tests/unit/idgen/fake_kv.c - see fake_kv.h. Allocates with libc
 * directly, so allocation-failure injection (common/mem.h) hits only the
 * code under test. Aborts on its own allocation failures. */
#include "fake_kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    char *key;
    size_t klen;
    char *val;
    size_t vlen;
    int64_t create, mod, lease;
};

struct lease {
    int64_t id, ttl, expiry;
};

struct watcher {
    char *prefix;
    size_t len;
    idgen_watch_fn fn;
    void *arg;
    bool live;
};

enum op_kind { OP_TXN, OP_GET, OP_GRANT, OP_KEEPALIVE, OP_REVOKE };

/* A queued op with deep copies of its request. */
struct op {
    enum op_kind kind;
    void *arg;
    idgen_txn_fn txn_done;
    idgen_get_fn get_done;
    idgen_lease_fn lease_done;
    /* txn */
    idgen_cmp *cmp;
    size_t ncmp;
    idgen_op *ops[2];
    size_t nops[2];
    /* get */
    char *key;
    size_t klen;
    bool prefix;
    /* lease */
    int64_t id, ttl;
};

struct fake_kv {
    idgen_kv iface;
    idgen_kv_ops ops;
    idgen_clock clock;
    int64_t now;
    int64_t rev;
    struct entry *e;
    size_t n, cap;
    struct lease *leases;
    size_t nleases;
    int64_t next_lease;
    struct watcher **w;
    size_t nw;
    struct op **q;
    size_t nq;
    bool deferred, down;
    uint64_t rng;
    fake_stats st;
    char *getbuf;
};

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p)
        abort();
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        abort();
    return p;
}

static char *xdup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* ---- the store --------------------------------------------------------------------------- */

static struct entry *find(fake_kv *f, const char *k, size_t kl)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->e[i].klen == kl && memcmp(f->e[i].key, k, kl) == 0)
            return &f->e[i];
    return NULL;
}

static bool has_prefix(const struct entry *e, const char *p, size_t pl)
{
    return e->klen >= pl && memcmp(e->key, p, pl) == 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

/* Events of one write, collected to hand to watchers. */
struct evlist {
    idgen_watch_event *v;
    char **owned; /* copies the events point to */
    size_t n, cap;
};

static void ev_add(struct evlist *l, int type, const struct entry *e, int64_t mod)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
        l->owned = xrealloc(l->owned, 2 * l->cap * sizeof(*l->owned));
    }
    char *k = xdup(e->key, e->klen),
         *v = xdup(type == IDGEN_WATCH_PUT ? e->val : "", type == IDGEN_WATCH_PUT ? e->vlen : 0);
    l->owned[2 * l->n] = k;
    l->owned[2 * l->n + 1] = v;
    l->v[l->n++] = (idgen_watch_event){.type = type,
                                       .kv = {.key = k,
                                              .key_len = e->klen,
                                              .value = v,
                                              .value_len = type == IDGEN_WATCH_PUT ? e->vlen : 0,
                                              .create_rev = type == IDGEN_WATCH_PUT ? e->create : 0,
                                              .mod_rev = mod,
                                              .lease = type == IDGEN_WATCH_PUT ? e->lease : 0}};
}

static void ev_send(fake_kv *f, struct evlist *l)
{
    if (l->n) {
        for (size_t i = 0; i < f->nw; i++) {
            struct watcher *w = f->w[i];
            if (!w->live)
                continue;
            idgen_watch_event *mine = xmalloc(l->n * sizeof(*mine));
            size_t k = 0;
            for (size_t j = 0; j < l->n; j++)
                if (l->v[j].kv.key_len >= w->len && memcmp(l->v[j].kv.key, w->prefix, w->len) == 0)
                    mine[k++] = l->v[j];
            if (k)
                w->fn(w->arg, 0, mine, k, f->rev);
            free(mine);
        }
    }
    for (size_t i = 0; i < 2 * l->n; i++)
        free(l->owned[i]);
    free(l->v);
    free(l->owned);
}

static void del_entry(fake_kv *f, struct entry *e, struct evlist *ev, int64_t rev)
{
    ev_add(ev, IDGEN_WATCH_DELETE, e, rev);
    free(e->key);
    free(e->val);
    size_t i = (size_t)(e - f->e);
    memmove(&f->e[i], &f->e[i + 1], (f->n - i - 1) * sizeof(*e));
    f->n--;
}

static void put_entry(fake_kv *f, const char *k, size_t kl, const char *v, size_t vl, int64_t lease,
                      int64_t rev, struct evlist *ev)
{
    struct entry *e = find(f, k, kl);
    if (!e) {
        if (f->n == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 16;
            f->e = xrealloc(f->e, f->cap * sizeof(*f->e));
        }
        e = &f->e[f->n++];
        memset(e, 0, sizeof(*e));
        e->key = xdup(k, kl);
        e->klen = kl;
        e->create = rev;
    }
    free(e->val);
    e->val = xdup(v ? v : "", vl);
    e->vlen = vl;
    e->mod = rev;
    e->lease = lease;
    ev_add(ev, IDGEN_WATCH_PUT, e, rev);
    qsort(f->e, f->n, sizeof(*f->e), cmp_entry);
}

static struct lease *find_lease(const fake_kv *f, int64_t id)
{
    for (size_t i = 0; i < f->nleases; i++)
        if (f->leases[i].id == id)
            return &f->leases[i];
    return NULL;
}

static void revoke(fake_kv *f, int64_t id)
{
    struct lease *l = find_lease(f, id);
    if (!l)
        return;
    *l = f->leases[--f->nleases];
    struct evlist ev = {0};
    bool wrote = false;
    for (size_t i = 0; i < f->n;) {
        if (f->e[i].lease == id) {
            if (!wrote)
                f->rev++;
            wrote = true;
            del_entry(f, &f->e[i], &ev, f->rev);
        } else {
            i++;
        }
    }
    ev_send(f, &ev);
}

static void expire(fake_kv *f)
{
    for (size_t i = 0; i < f->nleases;) {
        if (f->leases[i].expiry <= f->now)
            revoke(f, f->leases[i].id);
        else
            i++;
    }
}

/* ---- ops ---------------------------------------------------------------------------------- */

static bool cmp_ok(fake_kv *f, const idgen_cmp *c)
{
    struct entry *e = find(f, c->key, c->key_len);
    switch (c->target) {
    case IDGEN_CMP_CREATE:
        return (e ? e->create : 0) == c->rev;
    case IDGEN_CMP_MOD:
        return (e ? e->mod : 0) == c->rev;
    default:
        return e && e->vlen == c->value_len && memcmp(e->val, c->value, e->vlen) == 0;
    }
}

/* Copies of the kvs a get returns, freed after the answer. */
struct getres {
    idgen_kv_pair *kv;
    size_t n;
};

static void get_into(fake_kv *f, const char *k, size_t kl, bool prefix, struct getres *g)
{
    g->kv = xmalloc((f->n + 1) * sizeof(*g->kv));
    g->n = 0;
    for (size_t i = 0; i < f->n; i++) {
        struct entry *e = &f->e[i];
        bool hit = prefix ? has_prefix(e, k, kl) : (e->klen == kl && !memcmp(e->key, k, kl));
        if (!hit)
            continue;
        g->kv[g->n++] = (idgen_kv_pair){.key = xdup(e->key, e->klen),
                                        .key_len = e->klen,
                                        .value = xdup(e->val, e->vlen),
                                        .value_len = e->vlen,
                                        .create_rev = e->create,
                                        .mod_rev = e->mod,
                                        .lease = e->lease};
    }
}

static void getres_free(struct getres *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free((char *)g->kv[i].key);
        free((char *)g->kv[i].value);
    }
    free(g->kv);
}

static void apply_txn(fake_kv *f, struct op *o)
{
    bool ok = true;
    for (size_t i = 0; i < o->ncmp; i++)
        ok = ok && cmp_ok(f, &o->cmp[i]);
    int b = ok ? 0 : 1;
    size_t n = o->nops[b];
    /* leases of puts must exist (etcd fails the whole txn) */
    for (size_t i = 0; i < n; i++) {
        const idgen_op *op = &o->ops[b][i];
        if (op->type == IDGEN_OP_PUT && op->lease && !find_lease(f, op->lease)) {
            o->txn_done(o->arg, IDGEN_EKV, NULL);
            return;
        }
    }
    struct getres *gets = xmalloc((n + 1) * sizeof(*gets));
    idgen_kvs *res = xmalloc((n + 1) * sizeof(*res));
    struct evlist ev = {0};
    bool writes = false;
    for (size_t i = 0; i < n; i++) {
        const idgen_op *op = &o->ops[b][i];
        if (op->type != IDGEN_OP_GET) {
            bool hit = op->type == IDGEN_OP_PUT;
            for (size_t j = 0; !hit && j < f->n; j++)
                hit = op->prefix ? has_prefix(&f->e[j], op->key, op->key_len)
                                 : (f->e[j].klen == op->key_len &&
                                    !memcmp(f->e[j].key, op->key, op->key_len));
            writes = writes || hit;
        }
    }
    int64_t rev = writes ? f->rev + 1 : f->rev;
    for (size_t i = 0; i < n; i++) {
        const idgen_op *op = &o->ops[b][i];
        if (op->type == IDGEN_OP_GET) {
            get_into(f, op->key, op->key_len, op->prefix, &gets[i]);
        } else if (op->type == IDGEN_OP_PUT) {
            put_entry(f, op->key, op->key_len, op->value, op->value_len, op->lease, rev, &ev);
        } else {
            for (size_t j = 0; j < f->n;) {
                bool hit = op->prefix ? has_prefix(&f->e[j], op->key, op->key_len)
                                      : (f->e[j].klen == op->key_len &&
                                         !memcmp(f->e[j].key, op->key, op->key_len));
                if (hit)
                    del_entry(f, &f->e[j], &ev, rev);
                else
                    j++;
            }
        }
        res[i] = (idgen_kvs){gets[i].kv, gets[i].n};
    }
    f->rev = rev;
    ev_send(f, &ev);
    idgen_txn_result r = {.succeeded = ok, .revision = f->rev, .ops = res, .nops = n};
    o->txn_done(o->arg, 0, &r);
    for (size_t i = 0; i < n; i++)
        getres_free(&gets[i]);
    free(gets);
    free(res);
}

static void op_free(struct op *o)
{
    for (size_t i = 0; i < o->ncmp; i++) {
        free((char *)o->cmp[i].key);
        free((char *)o->cmp[i].value);
    }
    free(o->cmp);
    for (int b = 0; b < 2; b++) {
        for (size_t i = 0; i < o->nops[b]; i++) {
            free((char *)o->ops[b][i].key);
            free((char *)o->ops[b][i].value);
        }
        free(o->ops[b]);
    }
    free(o->key);
    free(o);
}

static void deliver(fake_kv *f, struct op *o)
{
    if (f->down) {
        switch (o->kind) {
        case OP_TXN:
            o->txn_done(o->arg, IDGEN_EKV, NULL);
            break;
        case OP_GET:
            o->get_done(o->arg, IDGEN_EKV, NULL, 0, 0);
            break;
        default:
            o->lease_done(o->arg, IDGEN_EKV, 0, 0);
            break;
        }
        op_free(o);
        return;
    }
    switch (o->kind) {
    case OP_TXN:
        apply_txn(f, o);
        break;
    case OP_GET: {
        struct getres g;
        get_into(f, o->key, o->klen, o->prefix, &g);
        o->get_done(o->arg, 0, g.kv, g.n, f->rev);
        getres_free(&g);
        break;
    }
    case OP_GRANT: {
        f->leases = xrealloc(f->leases, (f->nleases + 1) * sizeof(*f->leases));
        int64_t id = ++f->next_lease;
        f->leases[f->nleases++] = (struct lease){id, o->ttl, f->now + o->ttl * 1000};
        o->lease_done(o->arg, 0, id, o->ttl);
        break;
    }
    case OP_KEEPALIVE: {
        struct lease *l = find_lease(f, o->id);
        if (l)
            l->expiry = f->now + l->ttl * 1000;
        o->lease_done(o->arg, l ? 0 : IDGEN_ELOST, o->id, l ? l->ttl : 0);
        break;
    }
    case OP_REVOKE:
        revoke(f, o->id);
        o->lease_done(o->arg, 0, 0, 0);
        break;
    }
    op_free(o);
}

static int submit(fake_kv *f, struct op *o)
{
    if (!f->deferred) {
        deliver(f, o);
        return 0;
    }
    f->q = xrealloc(f->q, (f->nq + 1) * sizeof(*f->q));
    f->q[f->nq++] = o;
    return 0;
}

static idgen_op *copy_ops(const idgen_op *v, size_t n)
{
    idgen_op *c = xmalloc((n + 1) * sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        c[i] = v[i];
        c[i].key = xdup(v[i].key, v[i].key_len);
        c[i].value = v[i].value ? xdup(v[i].value, v[i].value_len) : NULL;
    }
    return c;
}

static int f_txn(void *kv, const idgen_txn *t, idgen_txn_fn done, void *arg)
{
    fake_kv *f = kv;
    f->st.txns++;
    struct op *o = xmalloc(sizeof(*o));
    o->kind = OP_TXN;
    o->txn_done = done;
    o->arg = arg;
    o->cmp = xmalloc((t->ncmp + 1) * sizeof(*o->cmp));
    for (size_t i = 0; i < t->ncmp; i++) {
        o->cmp[i] = t->cmp[i];
        o->cmp[i].key = xdup(t->cmp[i].key, t->cmp[i].key_len);
        o->cmp[i].value = t->cmp[i].value ? xdup(t->cmp[i].value, t->cmp[i].value_len) : NULL;
    }
    o->ncmp = t->ncmp;
    o->ops[0] = copy_ops(t->success, t->nsuccess);
    o->nops[0] = t->nsuccess;
    o->ops[1] = copy_ops(t->failure, t->nfailure);
    o->nops[1] = t->nfailure;
    return submit(f, o);
}

static int f_get(void *kv, const char *key, size_t len, bool prefix, idgen_get_fn done, void *arg)
{
    fake_kv *f = kv;
    f->st.gets++;
    struct op *o = xmalloc(sizeof(*o));
    o->kind = OP_GET;
    o->get_done = done;
    o->arg = arg;
    o->key = xdup(key, len);
    o->klen = len;
    o->prefix = prefix;
    return submit(f, o);
}

static int lease_op(fake_kv *f, enum op_kind kind, int64_t id, int64_t ttl, idgen_lease_fn done,
                    void *arg)
{
    struct op *o = xmalloc(sizeof(*o));
    o->kind = kind;
    o->lease_done = done;
    o->arg = arg;
    o->id = id;
    o->ttl = ttl;
    return submit(f, o);
}

static int f_grant(void *kv, int64_t ttl, idgen_lease_fn done, void *arg)
{
    fake_kv *f = kv;
    f->st.grants++;
    return lease_op(f, OP_GRANT, 0, ttl, done, arg);
}

static int f_keepalive(void *kv, int64_t id, idgen_lease_fn done, void *arg)
{
    fake_kv *f = kv;
    f->st.keepalives++;
    return lease_op(f, OP_KEEPALIVE, id, 0, done, arg);
}

static int f_revoke(void *kv, int64_t id, idgen_lease_fn done, void *arg)
{
    fake_kv *f = kv;
    f->st.revokes++;
    return lease_op(f, OP_REVOKE, id, 0, done, arg);
}

static int f_watch(void *kv, const char *prefix, size_t len, int64_t start_rev, idgen_watch_fn fn,
                   void *arg, void **handle)
{
    fake_kv *f = kv;
    (void)start_rev; /* no history: watches start from the present */
    f->st.watches++;
    struct watcher *w = xmalloc(sizeof(*w));
    w->prefix = xdup(prefix, len);
    w->len = len;
    w->fn = fn;
    w->arg = arg;
    w->live = true;
    f->w = xrealloc(f->w, (f->nw + 1) * sizeof(*f->w));
    f->w[f->nw++] = w;
    *handle = w;
    return 0;
}

static void f_watch_cancel(void *kv, void *handle)
{
    fake_kv *f = kv;
    for (size_t i = 0; i < f->nw; i++) {
        if (f->w[i] == handle) {
            free(f->w[i]->prefix);
            free(f->w[i]);
            f->w[i] = f->w[--f->nw];
            return;
        }
    }
    abort(); /* cancel of an unknown handle: a bug in the code under test */
}

static int64_t f_now(void *data)
{
    return ((fake_kv *)data)->now;
}

/* ---- the test API ------------------------------------------------------------------------ */

fake_kv *fake_new(int64_t now_ms)
{
    fake_kv *f = xmalloc(sizeof(*f));
    f->now = now_ms;
    f->rev = 1;
    f->ops = (idgen_kv_ops){f_txn, f_get, f_grant, f_keepalive, f_revoke, f_watch, f_watch_cancel};
    f->iface.ops = &f->ops;
    f->iface.data = f;
    f->clock.now_ms = f_now;
    f->clock.data = f;
    f->next_lease = 0x1000;
    return f;
}

void fake_free(fake_kv *f)
{
    while (f->nq) {
        f->deferred = false;
        fake_step(f);
    }
    for (size_t i = 0; i < f->n; i++) {
        free(f->e[i].key);
        free(f->e[i].val);
    }
    free(f->e);
    free(f->leases);
    for (size_t i = 0; i < f->nw; i++) {
        free(f->w[i]->prefix);
        free(f->w[i]);
    }
    free(f->w);
    free(f->q);
    free(f->getbuf);
    free(f);
}

const idgen_kv *fake_kv_iface(fake_kv *f)
{
    return &f->iface;
}

const idgen_clock *fake_clock(fake_kv *f)
{
    return &f->clock;
}

int64_t fake_now(const fake_kv *f)
{
    return f->now;
}

void fake_set_now(fake_kv *f, int64_t now_ms)
{
    f->now = now_ms;
    expire(f);
}

void fake_advance(fake_kv *f, int64_t ms)
{
    fake_set_now(f, f->now + ms);
}

void fake_set_deferred(fake_kv *f, bool deferred)
{
    f->deferred = deferred;
}

void fake_set_random(fake_kv *f, uint64_t seed)
{
    f->rng = seed;
}

size_t fake_queued(const fake_kv *f)
{
    return f->nq;
}

static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

bool fake_step(fake_kv *f)
{
    if (!f->nq)
        return false;
    size_t k = f->rng ? (size_t)(next_rand(&f->rng) % f->nq) : 0;
    struct op *o = f->q[k];
    memmove(&f->q[k], &f->q[k + 1], (f->nq - k - 1) * sizeof(*f->q));
    f->nq--;
    deliver(f, o);
    return true;
}

bool fake_step_last(fake_kv *f)
{
    if (!f->nq)
        return false;
    deliver(f, f->q[--f->nq]);
    return true;
}

size_t fake_drain(fake_kv *f)
{
    size_t n = 0;
    while (fake_step(f))
        n++;
    return n;
}

void fake_set_down(fake_kv *f, bool down)
{
    f->down = down;
}

void fake_break_watches(fake_kv *f, int rc)
{
    for (size_t i = 0; i < f->nw; i++) {
        if (f->w[i]->live) {
            f->w[i]->live = false;
            f->w[i]->fn(f->w[i]->arg, rc, NULL, 0, f->rev);
        }
    }
}

const idgen_kv_pair *fake_get_pair(fake_kv *f, const char *key)
{
    static idgen_kv_pair p;
    struct entry *e = find(f, key, strlen(key));
    if (!e)
        return NULL;
    p = (idgen_kv_pair){e->key, e->klen, e->val, e->vlen, e->create, e->mod, e->lease};
    return &p;
}

const char *fake_get(fake_kv *f, const char *key)
{
    struct entry *e = find(f, key, strlen(key));
    if (!e)
        return NULL;
    free(f->getbuf);
    f->getbuf = xdup(e->val, e->vlen);
    return f->getbuf;
}

void fake_put(fake_kv *f, const char *key, const char *value)
{
    struct evlist ev = {0};
    f->rev++;
    put_entry(f, key, strlen(key), value, strlen(value), 0, f->rev, &ev);
    ev_send(f, &ev);
}

void fake_del(fake_kv *f, const char *key)
{
    struct entry *e = find(f, key, strlen(key));
    if (!e)
        return;
    struct evlist ev = {0};
    f->rev++;
    del_entry(f, e, &ev, f->rev);
    ev_send(f, &ev);
}

size_t fake_count_prefix(fake_kv *f, const char *prefix)
{
    size_t n = 0, pl = strlen(prefix);
    for (size_t i = 0; i < f->n; i++)
        n += has_prefix(&f->e[i], prefix, pl);
    return n;
}

int64_t fake_rev(const fake_kv *f)
{
    return f->rev;
}

bool fake_lease_alive(const fake_kv *f, int64_t id)
{
    return find_lease(f, id) != NULL;
}

size_t fake_leases(const fake_kv *f)
{
    return f->nleases;
}

void fake_get_stats(const fake_kv *f, fake_stats *out)
{
    *out = f->st;
}
