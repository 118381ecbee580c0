/* watch/group.c - watcher groups (etcd's watcherGroup): single-key watchers
 * in a hash table by key, range and prefix watchers in the interval tree,
 * every member also on one list for choosing and iteration.
 *
 * Watchers that watch the same key (or the same interval) share one slot
 * holding an intrusive list, so an event costs one lookup plus one stab and
 * then touches only its k watchers.
 */
#include "watch/internal.h"

#include "common/mem.h"

#include <string.h>

#define MIN_BUCKETS 16

static uint64_t hash_key(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}

void wgroup_init(wgroup *g)
{
    memset(g, 0, sizeof(*g));
    itree_init(&g->ranges);
}

void wgroup_clear(wgroup *g)
{
    for (size_t i = 0; i < g->nbuckets; i++) {
        kslot *k = g->buckets[i];
        while (k) {
            kslot *nx = k->next;
            metcd_free(k);
            k = nx;
        }
    }
    metcd_free(g->buckets);
    itree_clear(&g->ranges);
    wgroup_init(g);
}

static kslot *kslot_find(const wgroup *g, const uint8_t *key, size_t len, uint64_t h)
{
    if (!g->nbuckets)
        return NULL;
    for (kslot *k = g->buckets[h & (g->nbuckets - 1)]; k; k = k->next)
        if (k->hash == h && k->len == len && (!len || !memcmp(k->key, key, len)))
            return k;
    return NULL;
}

/* Doubles the table when it gets full; failure only makes chains longer. */
static void maybe_grow(wgroup *g)
{
    if (g->nbuckets && g->nslots < g->nbuckets)
        return;
    size_t nb = g->nbuckets ? g->nbuckets * 2 : MIN_BUCKETS;
    kslot **b = metcd_calloc(nb, sizeof(*b));
    if (!b)
        return;
    for (size_t i = 0; i < g->nbuckets; i++) {
        kslot *k = g->buckets[i];
        while (k) {
            kslot *nx = k->next;
            k->next = b[k->hash & (nb - 1)];
            b[k->hash & (nb - 1)] = k;
            k = nx;
        }
    }
    metcd_free(g->buckets);
    g->buckets = b;
    g->nbuckets = nb;
}

static void slot_link(watcher **head, watcher *w)
{
    w->slot_prev = NULL;
    w->slot_next = *head;
    if (*head)
        (*head)->slot_prev = w;
    *head = w;
}

static void slot_unlink(watcher **head, watcher *w)
{
    if (w->slot_prev)
        w->slot_prev->slot_next = w->slot_next;
    else
        *head = w->slot_next;
    if (w->slot_next)
        w->slot_next->slot_prev = w->slot_prev;
    w->slot_prev = w->slot_next = NULL;
}

static void list_append(wgroup *g, watcher *w)
{
    w->g_next = NULL;
    w->g_prev = g->tail;
    if (g->tail)
        g->tail->g_next = w;
    else
        g->head = w;
    g->tail = w;
}

static void list_unlink(wgroup *g, watcher *w)
{
    if (w->g_prev)
        w->g_prev->g_next = w->g_next;
    else
        g->head = w->g_next;
    if (w->g_next)
        w->g_next->g_prev = w->g_prev;
    else
        g->tail = w->g_prev;
    w->g_prev = w->g_next = NULL;
}

int wgroup_add(wgroup *g, watcher *w)
{
    if (w->single) {
        maybe_grow(g);
        if (!g->nbuckets)
            return WATCH_ENOMEM;
        uint64_t h = hash_key(w->key, w->key_len);
        kslot *k = kslot_find(g, w->key, w->key_len, h);
        if (!k) {
            k = metcd_malloc(sizeof(*k) + w->key_len + 1);
            if (!k)
                return WATCH_ENOMEM;
            memset(k, 0, sizeof(*k));
            k->hash = h;
            k->len = w->key_len;
            if (w->key_len)
                memcpy(k->key, w->key, w->key_len);
            size_t b = h & (g->nbuckets - 1);
            k->next = g->buckets[b];
            g->buckets[b] = k;
            g->nslots++;
        }
        slot_link(&k->head, w);
        k->n++;
        w->slot = k;
    } else {
        itree_node *n = itree_find(&g->ranges, w->key, w->key_len, w->end, w->end_len, w->from_key);
        if (!n) {
            n = itree_insert(&g->ranges, w->key, w->key_len, w->end, w->end_len, w->from_key);
            if (!n)
                return WATCH_ENOMEM;
        }
        watcher *head = n->val;
        slot_link(&head, w);
        n->val = head;
        n->nval++;
        w->slot = n;
    }
    list_append(g, w);
    g->n++;
    return 0;
}

void wgroup_remove(wgroup *g, watcher *w)
{
    if (w->single) {
        kslot *k = w->slot;
        slot_unlink(&k->head, w);
        if (--k->n == 0) {
            kslot **pp = &g->buckets[k->hash & (g->nbuckets - 1)];
            while (*pp != k)
                pp = &(*pp)->next;
            *pp = k->next;
            g->nslots--;
            metcd_free(k);
        }
    } else {
        itree_node *n = w->slot;
        watcher *head = n->val;
        slot_unlink(&head, w);
        n->val = head;
        if (--n->nval == 0)
            itree_delete(&g->ranges, w->key, w->key_len, w->end, w->end_len, w->from_key);
    }
    w->slot = NULL;
    list_unlink(g, w);
    g->n--;
}

void wgroup_rotate(wgroup *g, watcher *w)
{
    if (g->tail == w)
        return;
    list_unlink(g, w);
    list_append(g, w);
}

struct match_ctx {
    wgroup_visit_fn fn;
    void *arg;
};

static void on_stab(void *arg, itree_node *n)
{
    struct match_ctx *m = arg;
    for (watcher *w = n->val; w; w = w->slot_next)
        m->fn(m->arg, w);
}

void wgroup_match(const wgroup *g, const uint8_t *key, size_t len, wgroup_visit_fn fn, void *arg)
{
    if (g->nslots) {
        kslot *k = kslot_find(g, key, len, hash_key(key, len));
        if (k)
            for (watcher *w = k->head; w; w = w->slot_next) {
                /* the list walk misses the cache at every watcher: start
                 * the next miss while fn works on this one */
                if (w->slot_next)
                    __builtin_prefetch(w->slot_next);
                fn(arg, w);
            }
    }
    if (g->ranges.n) {
        struct match_ctx m = {fn, arg};
        itree_stab(&g->ranges, key, len, on_stab, &m);
    }
}
