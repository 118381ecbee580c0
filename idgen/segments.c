/* idgen/segments.c - Leaf's segment mode on segments/<tag> keys.
 *
 * Each tag has two buffers (Leaf's SegmentBuffer): IDs come from the
 * current one; once prefetch_pct of it is used the next segment is claimed
 * in the background, and a miss (both empty) claims one too. A claim is a
 * compare-and-swap txn: "mod revision of segments/<tag> is what we last saw
 * -> put max_id + step; else read it", so two claims never share IDs and
 * the segment [old max_id, new max_id) is ours. The step adapts as Leaf's
 * (SegmentIDGenImpl.updateSegmentFromDb): the time since the previous claim
 * under fast_ms doubles it (up to max_step), over slow_ms halves it (down
 * to the tag's stored step).
 *
 * Tags come from a listing of segments/ and a watch from the listing's
 * revision, so they appear and disappear as their keys do. A tag this
 * allocator has not seen is probed with a txn (absent -> nothing; present
 * -> read it), so a tag created through any member before the request is
 * found even if the watch has not delivered it yet.
 *
 * Stored state only moves forward: a value is taken from a txn result or an
 * event only when its mod revision is newer than the one held.
 *
 * A load stuck in the store (a proposal lost with its leader waits for the
 * request timeout) is overtaken once the buffers are dry and it has been
 * out for stall_ms: a new claim goes out, and only the newest load's answer
 * counts. Two claims made from the same stored revision cannot both
 * succeed; a stale one that did is a segment nobody uses (a gap, never a
 * duplicate). */
#include "idgen/internal.h"

#include "common/mem.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_STEP 1000000
#define DEFAULT_PREFETCH_PCT 10
#define DEFAULT_FAST_MS (15 * 60 * 1000LL)
#define DEFAULT_SLOW_MS (30 * 60 * 1000LL)
#define DEFAULT_RETRY_MS 500
#define DEFAULT_MAX_TAGS 100000
#define DEFAULT_MAX_CONFLICTS 16
#define TAKE_ROUNDS 4
#define DEFAULT_STALL_MS 1000
#define MAX_LOADS 4 /* in flight per tag, stale ones included */

struct seg {
    uint64_t start, end, pos;
    int64_t step;
};

struct tag {
    idgen_segs *s;
    char *name;
    size_t len;
    struct tag *hnext;

    bool known; /* stored value held (the key exists as far as we know) */
    int64_t mod_rev;
    idgen_tag_value v;
    uint64_t list_gen;

    struct seg buf[2];
    int cur;
    bool next_ready;
    bool loaded; /* a segment was claimed at least once */

    bool loading;          /* the newest load is in flight */
    int inflight;          /* loads in flight, stale ones included */
    uint64_t load_seq;     /* of the newest load */
    int64_t load_start_ms; /* when it went out */
    int64_t last_load_ms;  /* Leaf's updateTimestamp */
    int64_t next_step;     /* Leaf's buffer step */
    uint32_t conflicts;
    int last_err;
    int64_t retry_at;
    bool dropped; /* out of the table while loads were in flight */
};

struct note {
    char *name;
    int err;
};

struct idgen_segs {
    idgen_kv kv;
    idgen_clock clock;
    idgen_notify_fn notify;
    void *notify_arg;
    char *prefix;
    char *dir; /* prefix + "segments/" */
    size_t dir_len;
    idgen_segs_config cfg;

    struct tag **buckets;
    size_t nbuckets, ntags;

    void *watch;
    bool listed, list_busy, watch_broken;
    /* Notifications raised inside idgen_segs_take or a watch callback are
     * told to the host on the next tick instead: the host is in the middle
     * of its own work there (a take), or must not reach the KV (a watch
     * callback). notes_all when one could not be recorded. */
    int defer;
    struct note *notes;
    size_t nnotes, cap_notes;
    bool notes_all;
    uint64_t list_gen;
    int64_t retry_at;

    int pending;
    bool dead;
};

static void start_load(idgen_segs *s, struct tag *t);

static int64_t now_ms(const idgen_segs *s)
{
    return s->clock.now_ms(s->clock.data);
}

/* ---- the tag table ---------------------------------------------------------------------- */

static size_t hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

static struct tag **find_slot(idgen_segs *s, const char *name, size_t len)
{
    struct tag **pp = &s->buckets[hash(name, len) & (s->nbuckets - 1)];
    while (*pp && !((*pp)->len == len && memcmp((*pp)->name, name, len) == 0))
        pp = &(*pp)->hnext;
    return pp;
}

static struct tag *find(idgen_segs *s, const char *name, size_t len)
{
    return *find_slot(s, name, len);
}

static void tag_free(struct tag *t)
{
    metcd_free(t->v.description);
    metcd_free(t->name);
    metcd_free(t);
}

static int grow(idgen_segs *s)
{
    size_t nb = s->nbuckets * 2;
    struct tag **b = metcd_calloc(nb, sizeof(*b));
    if (!b)
        return IDGEN_ENOMEM;
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct tag *t = s->buckets[i];
        while (t) {
            struct tag *next = t->hnext;
            size_t k = hash(t->name, t->len) & (nb - 1);
            t->hnext = b[k];
            b[k] = t;
            t = next;
        }
    }
    metcd_free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
    return 0;
}

static struct tag *insert(idgen_segs *s, const char *name, size_t len)
{
    if (s->ntags >= s->nbuckets && grow(s) != 0)
        return NULL;
    struct tag *t = metcd_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->name = metcd_malloc(len + 1);
    if (!t->name) {
        metcd_free(t);
        return NULL;
    }
    memcpy(t->name, name, len);
    t->name[len] = 0;
    t->len = len;
    t->s = s;
    struct tag **pp = find_slot(s, name, len);
    t->hnext = *pp;
    *pp = t;
    s->ntags++;
    return t;
}

/* Takes t out of the table; a tag with a load in flight is freed when the
 * load completes. */
static void drop(idgen_segs *s, struct tag *t)
{
    struct tag **pp = find_slot(s, t->name, t->len);
    if (*pp == t)
        *pp = t->hnext;
    s->ntags--;
    if (t->inflight)
        t->dropped = true;
    else
        tag_free(t);
}

static void note_later(idgen_segs *s, const char *tag, int err)
{
    if (s->nnotes == s->cap_notes) {
        size_t nc = s->cap_notes ? s->cap_notes * 2 : 8;
        struct note *v = metcd_realloc(s->notes, nc * sizeof(*v));
        if (v) {
            s->notes = v;
            s->cap_notes = nc;
        }
    }
    char *name = s->nnotes < s->cap_notes && tag ? metcd_strdup(tag) : NULL;
    if (name)
        s->notes[s->nnotes++] = (struct note){name, err};
    else
        s->notes_all = true;
}

static void notify(idgen_segs *s, const char *tag, int err)
{
    if (s->defer)
        note_later(s, tag, err);
    else if (s->notify)
        s->notify(s->notify_arg, IDGEN_EVENT_SEGMENT, tag, err);
}

/* Drops t and tells the host its waiters will find no tag. */
static void drop_notify(idgen_segs *s, struct tag *t)
{
    char name[IDGEN_MAX_TAG_LEN + 1];
    memcpy(name, t->name, t->len + 1);
    drop(s, t);
    notify(s, name, IDGEN_ETAG_NOT_FOUND);
}

static void flush_notes(idgen_segs *s)
{
    struct note *v = s->notes;
    size_t n = s->nnotes;
    bool all = s->notes_all;
    s->notes = NULL;
    s->nnotes = s->cap_notes = 0;
    s->notes_all = false;
    for (size_t i = 0; i < n; i++) {
        if (!s->dead && s->notify)
            s->notify(s->notify_arg, IDGEN_EVENT_SEGMENT, v[i].name, v[i].err);
        metcd_free(v[i].name);
    }
    metcd_free(v);
    if (all && !s->dead && s->notify)
        s->notify(s->notify_arg, IDGEN_EVENT_SEGMENT, NULL, 0);
}

/* Takes a stored value if it is newer than what t holds. A value that
 * cannot be parsed leaves t as it was, with the error. */
static int apply_kv(struct tag *t, const idgen_kv_pair *kv)
{
    if (t->known && kv->mod_rev <= t->mod_rev)
        return 0;
    idgen_tag_value v;
    int rc = idgen_tag_decode(kv->value, kv->value_len, &v);
    if (rc != 0)
        return rc;
    metcd_free(t->v.description);
    t->v = v;
    t->mod_rev = kv->mod_rev;
    t->known = true;
    return 0;
}

/* The name of a key under segments/, or NULL. */
static const char *tag_of(const idgen_segs *s, const char *key, size_t key_len, size_t *len)
{
    if (key_len <= s->dir_len || memcmp(key, s->dir, s->dir_len) != 0)
        return NULL;
    *len = key_len - s->dir_len;
    return idgen_tag_valid(key + s->dir_len, *len) ? key + s->dir_len : NULL;
}

/* ---- claims -------------------------------------------------------------------------- */

static void segs_destroy(idgen_segs *s)
{
    for (size_t i = 0; s->buckets && i < s->nbuckets; i++) {
        struct tag *t = s->buckets[i];
        while (t) {
            struct tag *next = t->hnext;
            tag_free(t);
            t = next;
        }
    }
    metcd_free(s->buckets);
    for (size_t i = 0; i < s->nnotes; i++)
        metcd_free(s->notes[i].name);
    metcd_free(s->notes);
    metcd_free(s->prefix);
    metcd_free(s->dir);
    metcd_free(s);
}

static int64_t choose_step(const idgen_segs *s, const struct tag *t, int64_t now)
{
    int64_t min = t->v.step;
    int64_t max = s->cfg.max_step > min ? s->cfg.max_step : min;
    int64_t st = t->next_step;
    if (!t->loaded || st <= 0) {
        st = min;
    } else {
        int64_t d = now - t->last_load_ms;
        if (d < s->cfg.fast_ms) {
            if (st <= max / 2)
                st *= 2;
        } else if (d >= s->cfg.slow_ms) {
            if (st / 2 >= min)
                st /= 2;
        }
    }
    if (st < min)
        st = min;
    if (st > max)
        st = max;
    return st;
}

static void install(struct tag *t, uint64_t start, uint64_t end, int64_t step)
{
    struct seg sg = {.start = start, .end = end, .pos = start, .step = step};
    struct seg *c = &t->buf[t->cur];
    if (c->pos == c->end && !t->next_ready) {
        *c = sg;
    } else {
        t->buf[t->cur ^ 1] = sg;
        t->next_ready = true;
    }
    t->loaded = true;
}

static void load_failed(idgen_segs *s, struct tag *t, int err)
{
    t->last_err = err;
    t->retry_at = now_ms(s) + s->cfg.retry_ms;
    t->conflicts = 0;
    notify(s, t->name, err);
}

/* One claim (or probe) in flight. */
struct load {
    struct tag *t;
    uint64_t seq;
    bool probe;
    uint64_t base;
    int64_t step, now;
};

static void on_load(void *arg, int rc, const idgen_txn_result *r)
{
    struct load *ld = arg;
    struct tag *t = ld->t;
    idgen_segs *s = t->s;
    s->pending--;
    t->inflight--;
    bool stale = ld->seq != t->load_seq;
    struct load l = *ld;
    metcd_free(ld);
    if (s->dead || t->dropped) {
        if (t->dropped && t->inflight == 0)
            tag_free(t);
        if (s->dead && s->pending == 0)
            segs_destroy(s);
        return;
    }
    if (stale)
        return; /* overtaken by a newer load: only its answer counts */
    t->loading = false;
    if (rc != 0) {
        load_failed(s, t, IDGEN_ESEGMENTS);
        return;
    }
    if (l.probe && r->succeeded) { /* absent */
        drop_notify(s, t);
        return;
    }
    if (!l.probe && r->succeeded) {
        uint64_t end = l.base + (uint64_t)l.step;
        install(t, l.base, end, l.step);
        if (r->revision > t->mod_rev) {
            t->v.max_id = end;
            t->v.update_time_ms = l.now;
            t->mod_rev = r->revision;
        }
        t->last_load_ms = now_ms(s);
        t->next_step = l.step;
        t->last_err = 0;
        t->conflicts = 0;
        notify(s, t->name, 0);
        return;
    }
    /* the failure branch read the key */
    if (r->nops == 0 || r->ops[0].n == 0) {
        drop_notify(s, t); /* deleted */
        return;
    }
    int arc = apply_kv(t, &r->ops[0].kvs[0]);
    if (arc != 0) {
        load_failed(s, t, arc);
        return;
    }
    if (!l.probe && ++t->conflicts > s->cfg.max_conflicts) {
        load_failed(s, t, IDGEN_ESEGMENTS);
        return;
    }
    start_load(s, t);
}

/* Claims the next segment of t (or probes t when its value is unknown). */
static void start_load(idgen_segs *s, struct tag *t)
{
    idgen_buf key = {0}, val = {0};
    idgen_buf_printf(&key, "%s%s", s->dir, t->name);
    int64_t now = now_ms(s);
    idgen_cmp cmp = {.target = IDGEN_CMP_MOD, .rev = t->known ? t->mod_rev : 0};
    idgen_op put = {.type = IDGEN_OP_PUT};
    idgen_op get = {.type = IDGEN_OP_GET};
    idgen_txn txn = {.cmp = &cmp, .ncmp = 1, .failure = &get, .nfailure = 1};
    struct load *ld = metcd_calloc(1, sizeof(*ld));
    int rc = ld ? 0 : IDGEN_ENOMEM;
    if (rc == 0 && t->known) {
        int64_t st = choose_step(s, t, now);
        if (t->v.max_id > (uint64_t)INT64_MAX - (uint64_t)st) {
            rc = IDGEN_ESEGMENTS; /* the tag's 63 bits are used up */
        } else {
            idgen_tag_value nv = t->v;
            nv.max_id = t->v.max_id + (uint64_t)st;
            nv.update_time_ms = now;
            idgen_tag_encode(&val, &nv);
            ld->base = t->v.max_id;
            ld->step = st;
            ld->now = now;
            put.value = val.p;
            put.value_len = val.len;
            txn.success = &put;
            txn.nsuccess = 1;
        }
    }
    if (rc == 0 && (key.oom || val.oom))
        rc = IDGEN_ENOMEM;
    if (rc == 0) {
        cmp.key = put.key = get.key = key.p;
        cmp.key_len = put.key_len = get.key_len = key.len;
        ld->t = t;
        ld->seq = ++t->load_seq;
        ld->probe = !t->known;
        t->loading = true;
        t->load_start_ms = now;
        t->inflight++;
        s->pending++;
        rc = s->kv.ops->txn(s->kv.data, &txn, on_load, ld);
        if (rc == 0) {
            ld = NULL;
        } else {
            s->pending--;
            t->inflight--;
            t->loading = false;
            rc = IDGEN_ESEGMENTS;
        }
    }
    metcd_free(ld);
    idgen_buf_free(&key);
    idgen_buf_free(&val);
    if (rc != 0)
        load_failed(s, t, rc);
}

/* ---- taking -------------------------------------------------------------------------- */

static bool may_load(const struct tag *t, int64_t now)
{
    return !t->loading && !(t->last_err && now < t->retry_at);
}

/* The newest load has been out for stall_ms: overtake it. */
static bool stalled(const idgen_segs *s, const struct tag *t, int64_t now)
{
    return t->loading && t->inflight < MAX_LOADS && now - t->load_start_ms >= s->cfg.stall_ms;
}

static int take(idgen_segs *s, const char *tag, uint64_t count, idgen_range *out, size_t max_out,
                size_t *n_out, uint64_t *taken)
{
    *n_out = 0;
    *taken = 0;
    size_t len = tag ? strlen(tag) : 0;
    if (count == 0 || max_out == 0 || !idgen_tag_valid(tag, len))
        return IDGEN_EINVAL;
    uint64_t left = count;
    for (int round = 0; round < TAKE_ROUNDS; round++) {
        int64_t now = now_ms(s);
        struct tag *t = find(s, tag, len);
        if (!t) {
            if (round > 0)
                return IDGEN_ETAG_NOT_FOUND; /* a probe answered at once */
            if (s->ntags >= s->cfg.max_tags)
                return IDGEN_ETOO_MANY;
            t = insert(s, tag, len);
            if (!t)
                return IDGEN_ENOMEM;
        }
        if (!t->known) {
            if (t->loading && !stalled(s, t, now))
                return IDGEN_EPENDING;
            if (!t->loading && !may_load(t, now))
                return t->last_err;
            start_load(s, t);
            continue;
        }
        while (left > 0 && *n_out < max_out) {
            struct seg *c = &t->buf[t->cur];
            uint64_t avail = c->end - c->pos;
            if (avail == 0) {
                if (!t->next_ready)
                    break;
                t->cur ^= 1;
                t->next_ready = false;
                continue;
            }
            uint64_t k = avail < left ? avail : left;
            out[*n_out].start = c->pos;
            out[*n_out].count = k;
            (*n_out)++;
            c->pos += k;
            left -= k;
            *taken += k;
        }
        struct seg *c = &t->buf[t->cur];
        uint64_t size = c->end - c->start, used = c->pos - c->start;
        bool dry = c->pos == c->end;
        bool due = dry || used * 100 >= (uint64_t)s->cfg.prefetch_pct * size;
        if (!t->next_ready && due && (may_load(t, now) || (dry && stalled(s, t, now)))) {
            start_load(s, t);
            if (left > 0 && dry)
                continue; /* the load may have answered at once */
        }
        if (left == 0 || *n_out == max_out)
            return 0;
        t = find(s, tag, len);
        if (!t)
            return IDGEN_ETAG_NOT_FOUND;
        if (t->loading)
            return IDGEN_EPENDING;
        return t->last_err ? t->last_err : IDGEN_ESEGMENTS;
    }
    return IDGEN_EPENDING;
}

int idgen_segs_take(idgen_segs *s, const char *tag, uint64_t count, idgen_range *out,
                    size_t max_out, size_t *n_out, uint64_t *taken)
{
    s->defer++;
    int rc = take(s, tag, count, out, max_out, n_out, taken);
    s->defer--;
    return rc;
}

/* ---- listing and watching ---------------------------------------------------------------- */

static void on_watch(void *arg, int rc, const idgen_watch_event *ev, size_t n, int64_t revision)
{
    idgen_segs *s = arg;
    (void)revision;
    if (rc != 0) {
        s->watch_broken = true; /* cancelled and listed again on the next tick */
        return;
    }
    s->defer++;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *name = tag_of(s, ev[i].kv.key, ev[i].kv.key_len, &len);
        if (!name)
            continue;
        struct tag *t = find(s, name, len);
        if (ev[i].type == IDGEN_WATCH_DELETE) {
            if (t && ev[i].kv.mod_rev > t->mod_rev)
                drop_notify(s, t);
            continue;
        }
        if (!t) {
            if (s->ntags >= s->cfg.max_tags)
                continue;
            t = insert(s, name, len);
            if (!t)
                continue; /* it is probed when asked for */
        }
        apply_kv(t, &ev[i].kv);
    }
    s->defer--;
}

static void on_list(void *arg, int rc, const idgen_kv_pair *kvs, size_t n, int64_t revision)
{
    idgen_segs *s = arg;
    s->pending--;
    s->list_busy = false;
    if (s->dead) {
        if (s->pending == 0)
            segs_destroy(s);
        return;
    }
    if (rc != 0) {
        s->retry_at = now_ms(s) + s->cfg.retry_ms;
        return;
    }
    uint64_t gen = ++s->list_gen;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *name = tag_of(s, kvs[i].key, kvs[i].key_len, &len);
        if (!name)
            continue;
        struct tag *t = find(s, name, len);
        if (!t) {
            if (s->ntags >= s->cfg.max_tags)
                continue;
            t = insert(s, name, len);
            if (!t)
                continue;
        }
        t->list_gen = gen;
        apply_kv(t, &kvs[i]);
    }
    /* tags deleted while nobody watched */
    for (size_t b = 0; b < s->nbuckets; b++) {
        struct tag *t = s->buckets[b];
        while (t) {
            struct tag *next = t->hnext;
            if (t->known && t->list_gen != gen && t->mod_rev <= revision && !t->inflight)
                drop_notify(s, t);
            t = next;
        }
    }
    void *h = NULL;
    if (s->kv.ops->watch(s->kv.data, s->dir, s->dir_len, revision + 1, on_watch, s, &h) != 0) {
        s->retry_at = now_ms(s) + s->cfg.retry_ms;
        return;
    }
    s->watch = h;
    s->watch_broken = false;
    s->listed = true;
}

static void start_list(idgen_segs *s)
{
    if (s->watch) {
        s->kv.ops->watch_cancel(s->kv.data, s->watch);
        s->watch = NULL;
    }
    s->listed = false;
    s->list_busy = true;
    s->pending++;
    if (s->kv.ops->get(s->kv.data, s->dir, s->dir_len, true, on_list, s) != 0) {
        s->pending--;
        s->list_busy = false;
        s->retry_at = now_ms(s) + s->cfg.retry_ms;
    }
}

void idgen_segs_tick(idgen_segs *s)
{
    if (!s || s->dead)
        return;
    flush_notes(s);
    if (!s->list_busy && (!s->listed || s->watch_broken) && now_ms(s) >= s->retry_at)
        start_list(s);
}

/* ---- life ------------------------------------------------------------------------------ */

int idgen_segs_new(idgen_segs **out, const idgen_kv *kv, const idgen_clock *clock,
                   const idgen_segs_config *cfg, idgen_notify_fn notify_fn, void *arg)
{
    *out = NULL;
    idgen_segs_config c = cfg ? *cfg : (idgen_segs_config){0};
    if (!kv || !kv->ops || !clock || !clock->now_ms || c.max_step < 0 || c.prefetch_pct > 100 ||
        c.fast_ms < 0 || c.slow_ms < 0 || c.retry_ms < 0 || c.stall_ms < 0)
        return IDGEN_EINVAL;
    if (!c.max_step)
        c.max_step = DEFAULT_MAX_STEP;
    if (!c.prefetch_pct)
        c.prefetch_pct = DEFAULT_PREFETCH_PCT;
    if (!c.fast_ms)
        c.fast_ms = DEFAULT_FAST_MS;
    if (!c.slow_ms)
        c.slow_ms = DEFAULT_SLOW_MS;
    if (!c.retry_ms)
        c.retry_ms = DEFAULT_RETRY_MS;
    if (!c.max_tags)
        c.max_tags = DEFAULT_MAX_TAGS;
    if (!c.max_conflicts)
        c.max_conflicts = DEFAULT_MAX_CONFLICTS;
    if (!c.stall_ms)
        c.stall_ms = DEFAULT_STALL_MS;
    if (c.slow_ms < c.fast_ms)
        return IDGEN_EINVAL;
    idgen_segs *s = metcd_calloc(1, sizeof(*s));
    if (!s)
        return IDGEN_ENOMEM;
    s->prefix = idgen_prefix_dup(c.prefix);
    idgen_buf dir = {0};
    if (s->prefix)
        idgen_buf_printf(&dir, "%s%s", s->prefix, IDGEN_SEGMENTS_DIR);
    s->dir = dir.p;
    s->dir_len = dir.len;
    s->nbuckets = 64;
    s->buckets = metcd_calloc(s->nbuckets, sizeof(*s->buckets));
    if (!s->prefix || dir.oom || !s->buckets) {
        segs_destroy(s);
        return IDGEN_ENOMEM;
    }
    c.prefix = NULL;
    s->cfg = c;
    s->kv = *kv;
    s->clock = *clock;
    s->notify = notify_fn;
    s->notify_arg = arg;
    *out = s;
    start_list(s);
    return 0;
}

void idgen_segs_free(idgen_segs *s)
{
    if (!s)
        return;
    if (s->watch) {
        s->kv.ops->watch_cancel(s->kv.data, s->watch);
        s->watch = NULL;
    }
    if (s->pending > 0) {
        s->dead = true;
        return;
    }
    segs_destroy(s);
}

size_t idgen_segs_count(const idgen_segs *s)
{
    return s->ntags;
}

static int cmp_tag(const void *a, const void *b)
{
    const struct tag *x = *(const struct tag *const *)a, *y = *(const struct tag *const *)b;
    return strcmp(x->name, y->name);
}

void idgen_segs_list(const idgen_segs *s, void (*fn)(void *arg, const idgen_tag_info *t), void *arg)
{
    struct tag **v = metcd_malloc((s->ntags ? s->ntags : 1) * sizeof(*v));
    size_t n = 0;
    if (!v)
        return;
    for (size_t b = 0; b < s->nbuckets; b++)
        for (struct tag *t = s->buckets[b]; t; t = t->hnext)
            if (t->known)
                v[n++] = t;
    qsort(v, n, sizeof(*v), cmp_tag);
    for (size_t i = 0; i < n; i++) {
        const struct tag *t = v[i];
        idgen_tag_info in = {
            .tag = t->name,
            .description = t->v.description ? t->v.description : "",
            .max_id = t->v.max_id,
            .step = t->v.step,
            .update_time_ms = t->v.update_time_ms,
            .loaded = t->loaded,
            .loading = t->loading,
            .next_step = t->next_step,
            .current = t->cur,
            .last_err = t->last_err,
        };
        for (int k = 0; k < 2; k++) {
            const struct seg *g = &t->buf[k];
            in.seg[k] = (idgen_seg_info){.start = g->start,
                                         .end = g->end,
                                         .pos = g->pos,
                                         .step = g->step,
                                         .ready = k == t->cur ? g->pos < g->end : t->next_ready};
        }
        fn(arg, &in);
    }
    metcd_free(v);
}

/* ---- creating a tag ----------------------------------------------------------------------- */

struct create_ctx {
    idgen_done_fn done;
    void *arg;
};

static void on_create(void *arg, int rc, const idgen_txn_result *r)
{
    struct create_ctx *c = arg;
    c->done(c->arg, rc != 0 ? rc : r->succeeded ? 0 : IDGEN_ETAG_EXISTS);
    metcd_free(c);
}

int idgen_tag_create(const idgen_kv *kv, const char *prefix, const char *tag, uint64_t start,
                     int64_t step, const char *description, int64_t now_ms, idgen_done_fn done,
                     void *arg)
{
    if (!tag || !idgen_tag_valid(tag, strlen(tag)) || step < 1 || start > (uint64_t)INT64_MAX)
        return IDGEN_EINVAL;
    char *p = idgen_prefix_dup(prefix);
    struct create_ctx *c = metcd_malloc(sizeof(*c));
    idgen_buf key = {0}, val = {0};
    if (p)
        idgen_buf_printf(&key, "%s%s%s", p, IDGEN_SEGMENTS_DIR, tag);
    idgen_tag_value v = {.max_id = start,
                         .step = step,
                         .description = (char *)(description ? description : ""),
                         .update_time_ms = now_ms};
    idgen_tag_encode(&val, &v);
    int rc = IDGEN_ENOMEM;
    if (p && c && !key.oom && !val.oom) {
        c->done = done;
        c->arg = arg;
        idgen_cmp cmp = {.target = IDGEN_CMP_CREATE, .key = key.p, .key_len = key.len, .rev = 0};
        idgen_op put = {.type = IDGEN_OP_PUT,
                        .key = key.p,
                        .key_len = key.len,
                        .value = val.p,
                        .value_len = val.len};
        idgen_txn t = {.cmp = &cmp, .ncmp = 1, .success = &put, .nsuccess = 1};
        rc = kv->ops->txn(kv->data, &t, on_create, c);
        if (rc == 0)
            c = NULL;
    }
    metcd_free(c);
    metcd_free(p);
    idgen_buf_free(&key);
    idgen_buf_free(&val);
    return rc;
}
