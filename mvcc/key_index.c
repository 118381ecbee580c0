/* mvcc/key_index.c - the revisions of one key, in generations.
 *
 * The rules are etcd's keyIndex (mvcc/key_index.go): a generation runs from
 * a key's creation to its deletion, whose tombstone revision is the last
 * revision of the generation; a new, empty generation then waits for the
 * next creation. Reads at revision r find the generation alive at r and the
 * last revision <= r in it; compaction at r keeps, per key, the largest
 * revision <= r (unless it is a tombstone) and everything newer.
 *
 * Memory: the first generation is inline in the key index and a generation
 * of one revision keeps it inline, so a key written once costs one
 * allocation (key_index + key bytes).
 */
#include "mvcc/internal.h"

#include "common/mem.h"

#include <assert.h>
#include <string.h>

static struct ki_gen *gen_at(key_index *ki, uint32_t i)
{
    return i == 0 ? &ki->g0 : &ki->more[i - 1];
}

static const struct ki_gen *cgen_at(const key_index *ki, uint32_t i)
{
    return i == 0 ? &ki->g0 : &ki->more[i - 1];
}

static const mvcc_rev *gen_revs(const struct ki_gen *g)
{
    return g->cap ? g->r.many : &g->r.one;
}

static void gen_free(struct ki_gen *g)
{
    if (g->cap)
        metcd_free(g->r.many);
    memset(g, 0, sizeof(*g));
}

static int gen_push(struct ki_gen *g, mvcc_rev rev)
{
    if (g->cap == 0 && g->n == 0) {
        g->r.one = rev;
        g->n = 1;
        return 0;
    }
    if (g->cap == 0) {
        mvcc_rev *m = metcd_malloc(4 * sizeof(*m));
        if (!m)
            return MVCC_ENOMEM;
        m[0] = g->r.one;
        g->r.many = m;
        g->cap = 4;
    } else if (g->n == g->cap) {
        mvcc_rev *m = metcd_realloc(g->r.many, (size_t)g->cap * 2 * sizeof(*m));
        if (!m)
            return MVCC_ENOMEM;
        g->r.many = m;
        g->cap *= 2;
    }
    g->r.many[g->n++] = rev;
    return 0;
}

/* Drops the first k revisions of g; goes back inline when one is left. */
static void gen_drop_front(struct ki_gen *g, uint32_t k)
{
    if (k == 0)
        return;
    assert(k <= g->n);
    if (g->cap == 0) {
        g->n -= k;
        return;
    }
    uint32_t left = g->n - k;
    if (left <= 1) {
        mvcc_rev keep = left ? g->r.many[k] : (mvcc_rev){0, 0};
        metcd_free(g->r.many);
        g->cap = 0;
        g->r.one = keep;
        g->n = left;
        return;
    }
    memmove(g->r.many, g->r.many + k, (size_t)left * sizeof(mvcc_rev));
    g->n = left;
}

/* Index of the last revision of g with main <= at_rev, or -1 (etcd's
 * generation.walk with `rev.main > atRev`). */
static int gen_walk(const struct ki_gen *g, int64_t at_rev)
{
    const mvcc_rev *r = gen_revs(g);
    for (int i = (int)g->n - 1; i >= 0; i--)
        if (r[i].main <= at_rev)
            return i;
    return -1;
}

key_index *ki_new(const uint8_t *key, size_t len)
{
    key_index *ki = metcd_malloc(sizeof(*ki) + len);
    if (!ki)
        return NULL;
    memset(ki, 0, sizeof(*ki));
    ki->keylen = (uint32_t)len;
    ki->ngens = 1;
    memcpy(ki->key, key, len);
    return ki;
}

void ki_free(key_index *ki)
{
    if (!ki)
        return;
    for (uint32_t i = 0; i < ki->ngens; i++)
        gen_free(gen_at(ki, i));
    metcd_free(ki->more);
    metcd_free(ki);
}

size_t ki_bytes(const key_index *ki)
{
    size_t n = sizeof(*ki) + ki->keylen;
    n += (size_t)(ki->ngens - 1) * sizeof(struct ki_gen);
    for (uint32_t i = 0; i < ki->ngens; i++)
        n += (size_t)cgen_at(ki, i)->cap * sizeof(mvcc_rev);
    return n;
}

bool ki_is_empty(const key_index *ki)
{
    return ki->ngens == 1 && ki->g0.n == 0;
}

bool ki_last_rev(const key_index *ki, mvcc_rev *out)
{
    for (int i = (int)ki->ngens - 1; i >= 0; i--) {
        const struct ki_gen *g = cgen_at(ki, (uint32_t)i);
        if (g->n) {
            *out = gen_revs(g)[g->n - 1];
            return true;
        }
    }
    return false;
}

int ki_put(key_index *ki, mvcc_rev rev)
{
    mvcc_rev last;
    if (ki_last_rev(ki, &last))
        assert(mvcc_rev_cmp(rev, last) > 0);
    struct ki_gen *g = gen_at(ki, ki->ngens - 1);
    bool fresh = g->n == 0;
    int rc = gen_push(g, rev);
    if (rc)
        return rc;
    if (fresh)
        g->created = rev;
    g->ver++;
    return 0;
}

int ki_restore(key_index *ki, mvcc_rev created, mvcc_rev modified, int64_t ver)
{
    assert(ki_is_empty(ki));
    struct ki_gen *g = &ki->g0;
    g->created = created;
    g->ver = ver;
    g->r.one = modified;
    g->n = 1;
    return 0;
}

int ki_tombstone(key_index *ki, mvcc_rev rev)
{
    if (gen_at(ki, ki->ngens - 1)->n == 0)
        return MVCC_EKEY_NOT_FOUND;
    /* Reserve the new generation first so a failure changes nothing. */
    struct ki_gen *more = metcd_realloc(ki->more, (size_t)ki->ngens * sizeof(*more));
    if (!more)
        return MVCC_ENOMEM;
    ki->more = more;
    int rc = ki_put(ki, rev);
    if (rc)
        return rc;
    memset(&ki->more[ki->ngens - 1], 0, sizeof(struct ki_gen));
    ki->ngens++;
    return 0;
}

/* The generation that holds at_rev, or -1 (etcd's findGeneration). */
static int find_gen(const key_index *ki, int64_t at_rev)
{
    int last = (int)ki->ngens - 1;
    for (int cg = last; cg >= 0; cg--) {
        const struct ki_gen *g = cgen_at(ki, (uint32_t)cg);
        if (g->n == 0)
            continue;
        const mvcc_rev *r = gen_revs(g);
        if (cg != last && r[g->n - 1].main <= at_rev)
            return -1; /* deleted at or before at_rev */
        if (r[0].main <= at_rev)
            return cg;
    }
    return -1;
}

bool ki_get(const key_index *ki, int64_t at_rev, mvcc_rev *mod, mvcc_rev *created, int64_t *ver)
{
    int gi = find_gen(ki, at_rev);
    if (gi < 0)
        return false;
    const struct ki_gen *g = cgen_at(ki, (uint32_t)gi);
    int n = gen_walk(g, at_rev);
    if (n < 0)
        return false;
    if (mod)
        *mod = gen_revs(g)[n];
    if (created)
        *created = g->created;
    if (ver)
        *ver = g->ver - (int64_t)(g->n - (uint32_t)n - 1);
    return true;
}

/* etcd's doCompact: the first generation that is alive at or created after
 * at_rev, and in it the index of the largest revision <= at_rev. */
static void do_compact(const key_index *ki, int64_t at_rev, uint32_t *gen_idx, int *rev_idx)
{
    uint32_t gi = 0;
    const struct ki_gen *g = cgen_at(ki, 0);
    while (gi < ki->ngens - 1) {
        if (gen_revs(g)[g->n - 1].main > at_rev)
            break;
        gi++;
        g = cgen_at(ki, gi);
    }
    *gen_idx = gi;
    *rev_idx = gen_walk(g, at_rev);
}

void ki_compact(key_index *ki, int64_t at_rev)
{
    if (ki_is_empty(ki))
        return;
    uint32_t gi;
    int ri;
    do_compact(ki, at_rev, &gi, &ri);
    struct ki_gen *g = gen_at(ki, gi);
    if (g->n) {
        if (ri > 0)
            gen_drop_front(g, (uint32_t)ri);
        /* A finished generation reduced to its tombstone goes entirely. */
        if (g->n == 1 && gi != ki->ngens - 1)
            gi++;
    }
    if (gi == 0)
        return;
    for (uint32_t i = 0; i < gi; i++)
        gen_free(gen_at(ki, i));
    uint32_t left = ki->ngens - gi;
    ki->g0 = *gen_at(ki, gi);
    if (left > 1)
        memmove(ki->more, ki->more + gi, (size_t)(left - 1) * sizeof(struct ki_gen));
    ki->ngens = left;
    if (left == 1) {
        metcd_free(ki->more);
        ki->more = NULL;
    }
}

bool ki_keep_rev(const key_index *ki, int64_t at_rev, mvcc_rev *out)
{
    if (ki_is_empty(ki))
        return false;
    uint32_t gi;
    int ri;
    do_compact(ki, at_rev, &gi, &ri);
    const struct ki_gen *g = cgen_at(ki, gi);
    if (g->n == 0 || ri < 0)
        return false;
    if ((uint32_t)ri == g->n - 1 && gi != ki->ngens - 1)
        return false; /* a tombstone is not kept */
    *out = gen_revs(g)[ri];
    return true;
}

bool ki_has_rev(const key_index *ki, mvcc_rev rev)
{
    for (uint32_t i = 0; i < ki->ngens; i++) {
        const struct ki_gen *g = cgen_at(ki, i);
        const mvcc_rev *r = gen_revs(g);
        int lo = 0, hi = (int)g->n - 1;
        while (lo <= hi) {
            int mid = (lo + hi) / 2;
            int c = mvcc_rev_cmp(r[mid], rev);
            if (c == 0)
                return true;
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid - 1;
        }
    }
    return false;
}

const mvcc_rev *ki_gen_revs(const key_index *ki, uint32_t gen, uint32_t *n)
{
    if (gen >= ki->ngens)
        return NULL;
    const struct ki_gen *g = cgen_at(ki, gen);
    *n = g->n;
    return gen_revs(g);
}
