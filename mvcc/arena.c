/* mvcc/arena.c - the bump allocator that owns everything in an mvcc_result.
 * Chunks grow geometrically; a request larger than a chunk gets its own. */
#include "mvcc/internal.h"

#include "common/mem.h"

#include <string.h>

#define CHUNK_MIN 1024
#define CHUNK_MAX (64 * 1024)

struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

struct mvcc_arena {
    struct chunk *head;
    size_t next_cap;
};

/* One arena with a single small chunk is kept per thread for the next
 * result: a point read then allocates nothing. Freed by arena_release_spare
 * (mvcc_close). */
static _Thread_local struct mvcc_arena *spare;

struct mvcc_arena *arena_new(void)
{
    struct mvcc_arena *a = spare;
    if (a) {
        spare = NULL;
        a->head->used = 0;
        return a;
    }
    a = metcd_calloc(1, sizeof(*a));
    if (a)
        a->next_cap = CHUNK_MIN;
    return a;
}

static void destroy(struct mvcc_arena *a)
{
    struct chunk *c = a->head;
    while (c) {
        struct chunk *n = c->next;
        metcd_free(c);
        c = n;
    }
    metcd_free(a);
}

void arena_free(struct mvcc_arena *a)
{
    if (!a)
        return;
    if (!spare && a->head && !a->head->next && a->head->cap <= CHUNK_MAX) {
        spare = a;
        return;
    }
    destroy(a);
}

void arena_release_spare(void)
{
    if (spare) {
        destroy(spare);
        spare = NULL;
    }
}

void *arena_alloc(struct mvcc_arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n == 0)
        n = 8;
    struct chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = a->next_cap;
        if (cap < n)
            cap = n;
        c = metcd_malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        if (a->head && n > a->next_cap) {
            /* A big one-off: keep the current chunk in front for small
             * allocations that follow. */
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
            if (a->next_cap < CHUNK_MAX)
                a->next_cap *= 2;
        }
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

void *arena_dup(struct mvcc_arena *a, const void *p, size_t n)
{
    void *d = arena_alloc(a, n);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

struct mvcc_arena *result_arena(mvcc_result *res)
{
    if (!res->arena)
        res->arena = arena_new();
    return res->arena;
}

void mvcc_result_free(mvcc_result *res)
{
    if (!res)
        return;
    arena_free(res->arena);
    memset(res, 0, sizeof(*res));
}
