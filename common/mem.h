/* common/mem.h - the one allocation wrapper of metcd.
 *
 * Every module allocates through these functions so that tests can make the
 * i-th allocation fail and prove that each path unwinds cleanly (the nghttp2
 * failmalloc idea). They behave exactly like their libc namesakes, including
 * metcd_free(NULL) being a no-op. Thread-safe.
 */
#ifndef METCD_COMMON_MEM_H
#define METCD_COMMON_MEM_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

void *metcd_malloc(size_t n);
void *metcd_calloc(size_t nmemb, size_t size);
void *metcd_realloc(void *p, size_t n);
void metcd_free(void *p);

/* Returns a NUL-terminated copy of s (caller frees with metcd_free). */
char *metcd_strdup(const char *s);
/* Returns a copy of n bytes of p (caller frees with metcd_free); n == 0
 * returns a valid 1-byte allocation so callers can tell it from failure. */
void *metcd_memdup(const void *p, size_t n);

/* protobuf-c allocator routed through the wrapper (pass to unpack/free). */
extern ProtobufCAllocator metcd_pb_allocator;

/* Process-wide allocator tuning for long-running programs (the member,
 * benchmarks): glibc's default 128 KiB trim threshold makes every free of a
 * large top chunk shrink the heap with brk, and each shrink is a TLB
 * shootdown. Keep up to 64 MiB of freed heap instead. Call once from main(). */
void metcd_mem_tune(void);

/* Test hooks. metcd_mem_fail_after(n): the n-th allocation from now fails
 * (n = 0: the next one), and every one after it succeeds again.
 * metcd_mem_fail_after(-1) disables injection. metcd_mem_count() returns the
 * number of allocation calls since start (for counting paths in tests). */
void metcd_mem_fail_after(long n);
long metcd_mem_count(void);

#endif
