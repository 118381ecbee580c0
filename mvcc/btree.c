/* mvcc/btree.c - an in-memory B-tree of key indexes ordered by key bytes.
 *
 * A classic B-tree (items in every node) of minimum degree T: every node but
 * the root holds T-1 .. 2T-1 items; insertion splits full nodes on the way
 * down and deletion fills thin nodes on the way down (CLRS, ch. 18), so each
 * operation is one root-to-leaf pass. Leaves are allocated without a child
 * array. Deletion never allocates, so removing a key cannot fail.
 */
#include "mvcc/internal.h"

#include "common/mem.h"

#include <assert.h>
#include <string.h>

#define T 32
#define MAXK (2 * T - 1)

struct bt_node {
    uint16_t n;
    uint16_t leaf;
    key_index *items[MAXK];
    struct bt_node *child[]; /* MAXK + 1 entries, internal nodes only */
};

int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

static size_t node_size(bool leaf)
{
    return sizeof(struct bt_node) + (leaf ? 0 : (MAXK + 1) * sizeof(struct bt_node *));
}

static struct bt_node *node_new(btree *t, bool leaf)
{
    struct bt_node *x = metcd_malloc(node_size(leaf));
    if (!x)
        return NULL;
    x->n = 0;
    x->leaf = leaf;
    t->node_bytes += node_size(leaf);
    return x;
}

static void node_free(btree *t, struct bt_node *x)
{
    t->node_bytes -= node_size(x->leaf);
    metcd_free(x);
}

static inline void prefetch_item(const key_index *ki)
{
    /* the key length and the key bytes may sit on two cache lines */
    __builtin_prefetch(ki);
    __builtin_prefetch(ki->key);
}

/* First index i with items[i] >= key; *found when equal. Every comparison
 * dereferences an item, a likely cache miss: the two items the next step
 * may compare are prefetched first so their misses overlap this one. */
static int lower_bound(const struct bt_node *x, const uint8_t *key, size_t len, bool *found)
{
    int lo = 0, hi = x->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (hi - lo > 2) {
            prefetch_item(x->items[(lo + mid) / 2]);
            prefetch_item(x->items[(mid + 1 + hi) / 2 < x->n ? (mid + 1 + hi) / 2 : mid]);
        }
        const key_index *k = x->items[mid];
        if (key_cmp(k->key, k->keylen, key, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < x->n && key_cmp(x->items[lo]->key, x->items[lo]->keylen, key, len) == 0;
    return lo;
}

void bt_init(btree *t)
{
    memset(t, 0, sizeof(*t));
}

static void destroy(btree *t, struct bt_node *x, bool free_items)
{
    if (!x)
        return;
    if (!x->leaf)
        for (int i = 0; i <= x->n; i++)
            destroy(t, x->child[i], free_items);
    if (free_items)
        for (int i = 0; i < x->n; i++)
            ki_free(x->items[i]);
    node_free(t, x);
}

void bt_destroy(btree *t, bool free_items)
{
    destroy(t, t->root, free_items);
    bt_init(t);
}

key_index *bt_get(const btree *t, const uint8_t *key, size_t len)
{
    const struct bt_node *x = t->root;
    while (x) {
        bool found;
        int i = lower_bound(x, key, len, &found);
        if (found)
            return x->items[i];
        if (x->leaf)
            return NULL;
        x = x->child[i];
    }
    return NULL;
}

/* Splits the full child i of x around its median. */
static int split_child(btree *t, struct bt_node *x, int i)
{
    struct bt_node *y = x->child[i];
    struct bt_node *z = node_new(t, y->leaf);
    if (!z)
        return MVCC_ENOMEM;
    z->n = T - 1;
    memcpy(z->items, y->items + T, (T - 1) * sizeof(key_index *));
    if (!y->leaf)
        memcpy(z->child, y->child + T, T * sizeof(struct bt_node *));
    y->n = T - 1;
    memmove(x->child + i + 2, x->child + i + 1, (size_t)(x->n - i) * sizeof(struct bt_node *));
    x->child[i + 1] = z;
    memmove(x->items + i + 1, x->items + i, (size_t)(x->n - i) * sizeof(key_index *));
    x->items[i] = y->items[T - 1];
    x->n++;
    return 0;
}

key_index *bt_upsert(btree *t, const uint8_t *key, size_t len, bool *created)
{
    *created = false;
    if (!t->root) {
        t->root = node_new(t, true);
        if (!t->root)
            return NULL;
    }
    if (t->root->n == MAXK) {
        struct bt_node *s = node_new(t, false);
        if (!s)
            return NULL;
        s->child[0] = t->root;
        if (split_child(t, s, 0)) {
            node_free(t, s);
            return NULL;
        }
        t->root = s;
    }
    struct bt_node *x = t->root;
    for (;;) {
        bool found;
        int i = lower_bound(x, key, len, &found);
        if (found)
            return x->items[i];
        if (x->leaf) {
            key_index *ki = ki_new(key, len);
            if (!ki)
                return NULL;
            memmove(x->items + i + 1, x->items + i, (size_t)(x->n - i) * sizeof(key_index *));
            x->items[i] = ki;
            x->n++;
            t->count++;
            *created = true;
            return ki;
        }
        if (x->child[i]->n == MAXK) {
            if (split_child(t, x, i))
                return NULL;
            int c = key_cmp(x->items[i]->key, x->items[i]->keylen, key, len);
            if (c == 0)
                return x->items[i];
            if (c < 0)
                i++;
        }
        x = x->child[i];
    }
}

int bt_insert(btree *t, key_index *ki)
{
    if (!t->root) {
        t->root = node_new(t, true);
        if (!t->root)
            return MVCC_ENOMEM;
    }
    if (t->root->n == MAXK) {
        struct bt_node *s = node_new(t, false);
        if (!s)
            return MVCC_ENOMEM;
        s->child[0] = t->root;
        if (split_child(t, s, 0)) {
            node_free(t, s);
            return MVCC_ENOMEM;
        }
        t->root = s;
    }
    struct bt_node *x = t->root;
    for (;;) {
        bool found;
        int i = lower_bound(x, ki->key, ki->keylen, &found);
        assert(!found);
        if (x->leaf) {
            memmove(x->items + i + 1, x->items + i, (size_t)(x->n - i) * sizeof(key_index *));
            x->items[i] = ki;
            x->n++;
            t->count++;
            return 0;
        }
        if (x->child[i]->n == MAXK) {
            /* A failed split leaves a valid tree with the same items. */
            if (split_child(t, x, i))
                return MVCC_ENOMEM;
            if (key_cmp(x->items[i]->key, x->items[i]->keylen, ki->key, ki->keylen) < 0)
                i++;
        }
        x = x->child[i];
    }
}

/* Merges child i+1 of x and the separator items[i] into child i. */
static void merge(btree *t, struct bt_node *x, int i)
{
    struct bt_node *y = x->child[i], *z = x->child[i + 1];
    y->items[y->n] = x->items[i];
    memcpy(y->items + y->n + 1, z->items, z->n * sizeof(key_index *));
    if (!y->leaf)
        memcpy(y->child + y->n + 1, z->child, (size_t)(z->n + 1) * sizeof(struct bt_node *));
    y->n += z->n + 1;
    memmove(x->items + i, x->items + i + 1, (size_t)(x->n - i - 1) * sizeof(key_index *));
    memmove(x->child + i + 1, x->child + i + 2, (size_t)(x->n - i - 1) * sizeof(struct bt_node *));
    x->n--;
    node_free(t, z);
}

/* Makes sure child i of x has at least T items before descending into it;
 * returns the index of the child to descend into. */
static int fill_child(btree *t, struct bt_node *x, int i)
{
    struct bt_node *c = x->child[i];
    if (c->n >= T)
        return i;
    if (i > 0 && x->child[i - 1]->n >= T) {
        struct bt_node *l = x->child[i - 1];
        memmove(c->items + 1, c->items, c->n * sizeof(key_index *));
        if (!c->leaf)
            memmove(c->child + 1, c->child, (size_t)(c->n + 1) * sizeof(struct bt_node *));
        c->items[0] = x->items[i - 1];
        if (!c->leaf)
            c->child[0] = l->child[l->n];
        x->items[i - 1] = l->items[l->n - 1];
        l->n--;
        c->n++;
        return i;
    }
    if (i < x->n && x->child[i + 1]->n >= T) {
        struct bt_node *r = x->child[i + 1];
        c->items[c->n] = x->items[i];
        if (!c->leaf)
            c->child[c->n + 1] = r->child[0];
        c->n++;
        x->items[i] = r->items[0];
        memmove(r->items, r->items + 1, (size_t)(r->n - 1) * sizeof(key_index *));
        if (!r->leaf)
            memmove(r->child, r->child + 1, r->n * sizeof(struct bt_node *));
        r->n--;
        return i;
    }
    if (i < x->n) {
        merge(t, x, i);
        return i;
    }
    merge(t, x, i - 1);
    return i - 1;
}

static key_index *delete_from(btree *t, struct bt_node *x, const uint8_t *key, size_t len)
{
    for (;;) {
        bool found;
        int i = lower_bound(x, key, len, &found);
        if (found && x->leaf) {
            key_index *ki = x->items[i];
            memmove(x->items + i, x->items + i + 1, (size_t)(x->n - i - 1) * sizeof(key_index *));
            x->n--;
            return ki;
        }
        if (x->leaf)
            return NULL;
        if (found) {
            key_index *ki = x->items[i];
            struct bt_node *y = x->child[i], *z = x->child[i + 1];
            if (y->n >= T) {
                struct bt_node *p = y;
                while (!p->leaf)
                    p = p->child[p->n];
                key_index *pred = p->items[p->n - 1];
                x->items[i] = pred;
                delete_from(t, y, pred->key, pred->keylen);
                return ki;
            }
            if (z->n >= T) {
                struct bt_node *p = z;
                while (!p->leaf)
                    p = p->child[0];
                key_index *succ = p->items[0];
                x->items[i] = succ;
                delete_from(t, z, succ->key, succ->keylen);
                return ki;
            }
            merge(t, x, i);
            x = y;
            continue;
        }
        i = fill_child(t, x, i);
        x = x->child[i];
    }
}

key_index *bt_delete(btree *t, const uint8_t *key, size_t len)
{
    if (!t->root)
        return NULL;
    key_index *ki = delete_from(t, t->root, key, len);
    struct bt_node *r = t->root;
    if (r->n == 0) {
        t->root = r->leaf ? NULL : r->child[0];
        node_free(t, r);
    }
    if (ki)
        t->count--;
    return ki;
}

/* Visits the subtree x from `start` (NULL: from its first item). */
static bool ascend(const struct bt_node *x, const uint8_t *start, size_t slen, const uint8_t *end,
                   size_t elen, bt_visit_fn fn, void *arg)
{
    int i = 0;
    if (start) {
        bool found;
        i = lower_bound(x, start, slen, &found);
    }
    for (; i <= x->n; i++) {
        if (!x->leaf && !ascend(x->child[i], start, slen, end, elen, fn, arg))
            return false;
        start = NULL; /* everything after the first child is >= start */
        if (i == x->n)
            break;
        key_index *ki = x->items[i];
        if (end && key_cmp(ki->key, ki->keylen, end, elen) >= 0)
            return false;
        if (!fn(arg, ki))
            return false;
    }
    return true;
}

void bt_ascend_range(const btree *t, const uint8_t *start, size_t slen, const uint8_t *end,
                     size_t elen, bt_visit_fn fn, void *arg)
{
    if (t->root)
        ascend(t->root, start, slen, end, elen, fn, arg);
}

static bool check_node(const struct bt_node *x, bool is_root, int depth, int *leaf_depth,
                       const key_index **prev, size_t *count)
{
    if (!is_root && (x->n < T - 1 || x->n > MAXK))
        return false;
    if (is_root && (x->n < 1 || x->n > MAXK))
        return false;
    for (int i = 0; i <= x->n; i++) {
        if (!x->leaf && !check_node(x->child[i], false, depth + 1, leaf_depth, prev, count))
            return false;
        if (i == x->n)
            break;
        const key_index *k = x->items[i];
        if (*prev && key_cmp((*prev)->key, (*prev)->keylen, k->key, k->keylen) >= 0)
            return false;
        *prev = k;
        (*count)++;
    }
    if (x->leaf) {
        if (*leaf_depth < 0)
            *leaf_depth = depth;
        else if (*leaf_depth != depth)
            return false;
    }
    return true;
}

bool bt_check(const btree *t)
{
    if (!t->root)
        return t->count == 0;
    int leaf_depth = -1;
    const key_index *prev = NULL;
    size_t count = 0;
    if (!check_node(t->root, true, 0, &leaf_depth, &prev, &count))
        return false;
    return count == t->count;
}
