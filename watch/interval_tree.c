/* watch/interval_tree.c - the interval tree of range watchers (etcd's
 * pkg/adt/interval_tree.go plays this part with a red-black tree; ours is a
 * treap: same O(log n) expected depth, simpler rotations).
 *
 * Order: by begin, then by end (+infinity last). Each node keeps the largest
 * end of its subtree, so a stab skips every subtree whose largest end is <=
 * the point and, because begins are ordered, every right subtree once a
 * begin passes the point.
 */
#include "watch/internal.h"

#include "common/mem.h"

#include <string.h>

int watch_bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    if (c)
        return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

/* Compares two ends, +infinity largest. */
static int end_cmp(const uint8_t *a, size_t al, bool ainf, const uint8_t *b, size_t bl, bool binf)
{
    if (ainf || binf)
        return ainf == binf ? 0 : ainf ? 1 : -1;
    return watch_bytes_cmp(a, al, b, bl);
}

static int ivl_cmp(const itree_node *n, const uint8_t *b, size_t blen, const uint8_t *e,
                   size_t elen, bool inf)
{
    int c = watch_bytes_cmp(b, blen, n->begin, n->blen);
    if (c)
        return c;
    return end_cmp(e, elen, inf, n->end, n->elen, n->inf);
}

static void fix_max(itree_node *n)
{
    n->max_end = n->end;
    n->max_len = n->elen;
    n->max_inf = n->inf;
    for (int i = 0; i < 2; i++) {
        itree_node *c = i ? n->right : n->left;
        if (c &&
            end_cmp(c->max_end, c->max_len, c->max_inf, n->max_end, n->max_len, n->max_inf) > 0) {
            n->max_end = c->max_end;
            n->max_len = c->max_len;
            n->max_inf = c->max_inf;
        }
    }
}

static itree_node *rot_right(itree_node *n)
{
    itree_node *l = n->left;
    n->left = l->right;
    l->right = n;
    fix_max(n);
    fix_max(l);
    return l;
}

static itree_node *rot_left(itree_node *n)
{
    itree_node *r = n->right;
    n->right = r->left;
    r->left = n;
    fix_max(n);
    fix_max(r);
    return r;
}

void itree_init(itree *t)
{
    memset(t, 0, sizeof(*t));
    t->seed = 0x9e3779b97f4a7c15ULL;
}

static void free_rec(itree_node *n)
{
    while (n) {
        free_rec(n->left);
        itree_node *r = n->right;
        metcd_free(n);
        n = r;
    }
}

void itree_clear(itree *t)
{
    free_rec(t->root);
    t->root = NULL;
    t->n = 0;
}

itree_node *itree_find(const itree *t, const uint8_t *b, size_t blen, const uint8_t *e, size_t elen,
                       bool inf)
{
    itree_node *n = t->root;
    while (n) {
        int c = ivl_cmp(n, b, blen, e, elen, inf);
        if (!c)
            return n;
        n = c < 0 ? n->left : n->right;
    }
    return NULL;
}

static uint32_t next_prio(itree *t)
{
    /* xorshift64*: priorities only need to be independent of the keys. */
    uint64_t x = t->seed;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t->seed = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

static itree_node *insert_rec(itree_node *n, itree_node *x)
{
    if (!n)
        return x;
    int c = ivl_cmp(n, x->begin, x->blen, x->end, x->elen, x->inf);
    if (c < 0) {
        n->left = insert_rec(n->left, x);
        if (n->left->prio > n->prio)
            return rot_right(n);
    } else {
        n->right = insert_rec(n->right, x);
        if (n->right->prio > n->prio)
            return rot_left(n);
    }
    fix_max(n);
    return n;
}

itree_node *itree_insert(itree *t, const uint8_t *b, size_t blen, const uint8_t *e, size_t elen,
                         bool inf)
{
    if (inf)
        elen = 0;
    itree_node *x = metcd_malloc(sizeof(*x) + blen + elen + 1);
    if (!x)
        return NULL;
    memset(x, 0, sizeof(*x));
    x->begin = x->data;
    x->end = x->data + blen;
    if (blen)
        memcpy(x->begin, b, blen);
    if (elen)
        memcpy(x->end, e, elen);
    x->blen = blen;
    x->elen = elen;
    x->inf = inf;
    x->prio = next_prio(t);
    fix_max(x);
    t->root = insert_rec(t->root, x);
    t->n++;
    return x;
}

/* Removes the node comparing equal; *gone gets it. */
static itree_node *delete_rec(itree_node *n, const uint8_t *b, size_t blen, const uint8_t *e,
                              size_t elen, bool inf, itree_node **gone)
{
    if (!n)
        return NULL;
    int c = ivl_cmp(n, b, blen, e, elen, inf);
    if (c < 0) {
        n->left = delete_rec(n->left, b, blen, e, elen, inf, gone);
    } else if (c > 0) {
        n->right = delete_rec(n->right, b, blen, e, elen, inf, gone);
    } else {
        if (!n->left || !n->right) {
            *gone = n;
            return n->left ? n->left : n->right;
        }
        /* Rotate the higher-priority child up and continue below. */
        if (n->left->prio > n->right->prio) {
            n = rot_right(n);
            n->right = delete_rec(n->right, b, blen, e, elen, inf, gone);
        } else {
            n = rot_left(n);
            n->left = delete_rec(n->left, b, blen, e, elen, inf, gone);
        }
    }
    fix_max(n);
    return n;
}

bool itree_delete(itree *t, const uint8_t *b, size_t blen, const uint8_t *e, size_t elen, bool inf)
{
    if (inf)
        elen = 0;
    itree_node *gone = NULL;
    t->root = delete_rec(t->root, b, blen, e, elen, inf, &gone);
    if (!gone)
        return false;
    metcd_free(gone);
    t->n--;
    return true;
}

static void stab_rec(const itree_node *n, const uint8_t *p, size_t plen, itree_visit_fn fn,
                     void *arg)
{
    while (n) {
        /* Nothing here ends after p. */
        if (!n->max_inf && watch_bytes_cmp(n->max_end, n->max_len, p, plen) <= 0)
            return;
        stab_rec(n->left, p, plen, fn, arg);
        if (watch_bytes_cmp(n->begin, n->blen, p, plen) > 0)
            return; /* this begin and every begin to the right are past p */
        if (n->inf || watch_bytes_cmp(p, plen, n->end, n->elen) < 0)
            fn(arg, (itree_node *)n);
        n = n->right;
    }
}

void itree_stab(const itree *t, const uint8_t *p, size_t plen, itree_visit_fn fn, void *arg)
{
    stab_rec(t->root, p, plen, fn, arg);
}

static bool check_rec(const itree_node *n, const itree_node *lo, const itree_node *hi,
                      size_t *count)
{
    if (!n)
        return true;
    (*count)++;
    if (lo && ivl_cmp(lo, n->begin, n->blen, n->end, n->elen, n->inf) <= 0)
        return false;
    if (hi && ivl_cmp(hi, n->begin, n->blen, n->end, n->elen, n->inf) >= 0)
        return false;
    if ((n->left && n->left->prio > n->prio) || (n->right && n->right->prio > n->prio))
        return false;
    /* max is the largest end of the subtree */
    const uint8_t *me = n->end;
    size_t ml = n->elen;
    bool mi = n->inf;
    for (int i = 0; i < 2; i++) {
        const itree_node *c = i ? n->right : n->left;
        if (c && end_cmp(c->max_end, c->max_len, c->max_inf, me, ml, mi) > 0) {
            me = c->max_end;
            ml = c->max_len;
            mi = c->max_inf;
        }
    }
    if (end_cmp(me, ml, mi, n->max_end, n->max_len, n->max_inf) != 0)
        return false;
    return check_rec(n->left, lo, n, count) && check_rec(n->right, n, hi, count);
}

bool itree_check(const itree *t)
{
    size_t count = 0;
    return check_rec(t->root, NULL, NULL, &count) && count == t->n;
}
