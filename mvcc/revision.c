/* mvcc/revision.c - revisions and their 17-byte on-disk form (etcd's
 * revToBytes: main as 8 bytes big-endian, '_', sub as 8 bytes big-endian;
 * a tombstone appends 't'). Big-endian keeps LMDB's byte order equal to
 * revision order. */
#include "mvcc/internal.h"

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

size_t mvcc_rev_encode(mvcc_rev rev, int tombstone, uint8_t out[MVCC_TOMBSTONE_BYTES])
{
    put_be64(out, (uint64_t)rev.main);
    out[8] = '_';
    put_be64(out + 9, (uint64_t)rev.sub);
    if (tombstone) {
        out[17] = 't';
        return MVCC_TOMBSTONE_BYTES;
    }
    return MVCC_REV_BYTES;
}

int mvcc_rev_decode(const void *buf, size_t len, mvcc_rev *rev, int *tombstone)
{
    const uint8_t *p = buf;
    if ((len != MVCC_REV_BYTES && len != MVCC_TOMBSTONE_BYTES) || p[8] != '_')
        return MVCC_ECORRUPT;
    if (len == MVCC_TOMBSTONE_BYTES && p[17] != 't')
        return MVCC_ECORRUPT;
    rev->main = (int64_t)get_be64(p);
    rev->sub = (int64_t)get_be64(p + 9);
    if (tombstone)
        *tombstone = len == MVCC_TOMBSTONE_BYTES;
    return 0;
}

int mvcc_rev_cmp(mvcc_rev a, mvcc_rev b)
{
    if (a.main != b.main)
        return a.main < b.main ? -1 : 1;
    if (a.sub != b.sub)
        return a.sub < b.sub ? -1 : 1;
    return 0;
}
