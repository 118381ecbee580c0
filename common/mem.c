/* common/mem.c - allocation wrapper with failure injection for tests. */
#include "common/mem.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_countdown = -1; /* < 0: never fail */
static atomic_long alloc_calls;

static int should_fail(void)
{
    atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
    long v = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    while (v >= 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &v, v - 1))
            return v == 0;
    }
    return 0;
}

void *metcd_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n);
}

void *metcd_calloc(size_t nmemb, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(nmemb, size);
}

void *metcd_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n);
}

void metcd_free(void *p)
{
    free(p);
}

char *metcd_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = metcd_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void *metcd_memdup(const void *p, size_t n)
{
    void *d = metcd_malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

static void *pb_alloc(void *data, size_t n)
{
    (void)data;
    return metcd_malloc(n);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    metcd_free(p);
}

ProtobufCAllocator metcd_pb_allocator = {pb_alloc, pb_free, NULL};

void metcd_mem_fail_after(long n)
{
    atomic_store(&fail_countdown, n < 0 ? -1 : n);
}

long metcd_mem_count(void)
{
    return atomic_load(&alloc_calls);
}

void metcd_mem_tune(void)
{
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_TOP_PAD, 1 << 20);
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
}
