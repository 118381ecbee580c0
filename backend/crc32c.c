/* backend/crc32c.c - CRC-32C, hardware (SSE4.2) and software (slicing-by-8).
 *
 * Both paths keep the register in its reflected, pre-inverted form: the
 * public functions invert on entry and on exit so that calls chain.
 */
#include "backend/crc32c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define CRC32C_POLY 0x82F63B78u /* 0x1EDC6F41 bit-reflected */

/* ---- software: slicing-by-8 ---------------------------------------------- */

/* table[k][b] is the CRC of byte b followed by k zero bytes. */
static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int i = 0; i < 8; i++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
        table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = table[0][b];
        for (int k = 1; k < 8; k++) {
            c = (c >> 8) ^ table[0][c & 0xffu];
            table[k][b] = c;
        }
    }
}

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

uint32_t backend_crc32c_sw(uint32_t crc, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    uint32_t c = ~crc;

    pthread_once(&table_once, table_init);
    while (n && ((uintptr_t)p & 7u)) {
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xffu];
        n--;
    }
    while (n >= 8) {
        uint64_t v = load_le64(p) ^ c;
        c = table[7][v & 0xffu] ^ table[6][(v >> 8) & 0xffu] ^ table[5][(v >> 16) & 0xffu] ^
            table[4][(v >> 24) & 0xffu] ^ table[3][(v >> 32) & 0xffu] ^
            table[2][(v >> 40) & 0xffu] ^ table[1][(v >> 48) & 0xffu] ^ table[0][v >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xffu];
    return ~c;
}

/* ---- hardware: SSE4.2 crc32 ----------------------------------------------- */

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) uint32_t backend_crc32c_hw(uint32_t crc, const void *buf,
                                                             size_t n)
{
    const unsigned char *p = buf;
    uint64_t c = ~crc;

    while (n && ((uintptr_t)p & 7u)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        n--;
    }
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    while (n--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

int backend_crc32c_hw_available(void)
{
    /* 0: not checked yet, 1: no, 2: yes. Racing first callers store the
     * same value. */
    static atomic_int state;
    int s = atomic_load_explicit(&state, memory_order_relaxed);
    if (s == 0) {
        __builtin_cpu_init();
        s = __builtin_cpu_supports("sse4.2") ? 2 : 1;
        atomic_store_explicit(&state, s, memory_order_relaxed);
    }
    return s == 2;
}

#else /* no hardware path on this architecture */

uint32_t backend_crc32c_hw(uint32_t crc, const void *buf, size_t n)
{
    return backend_crc32c_sw(crc, buf, n);
}

int backend_crc32c_hw_available(void)
{
    return 0;
}

#endif

uint32_t backend_crc32c(uint32_t crc, const void *buf, size_t n)
{
    if (backend_crc32c_hw_available())
        return backend_crc32c_hw(crc, buf, n);
    return backend_crc32c_sw(crc, buf, n);
}
