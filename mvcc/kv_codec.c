/* mvcc/kv_codec.c - mvccpb.KeyValue encoding.
 *
 * Encoding goes through protobuf-c's generated code (the schema is the
 * source of truth). Decoding is a small hand-written reader that points into
 * the stored bytes instead of copying them: reads are the hot path, and
 * this keeps one range from doing three allocations per key. Unknown fields
 * are skipped as protobuf requires; the unit tests check it against
 * protobuf-c's unpacker. */
#include "mvcc/internal.h"

#include "common/mem.h"
#include "mvcc/mvccpb/kv.pb-c.h"

#include <string.h>

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -1;
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

int kv_decode(const uint8_t *buf, size_t len, mvcc_kv *out)
{
    const uint8_t *p = buf, *end = buf + len;
    memset(out, 0, sizeof(*out));
    out->raw = buf;
    out->raw_len = len;
    while (p < end) {
        uint64_t tag, v;
        if (read_varint(&p, end, &tag))
            return MVCC_ECORRUPT;
        unsigned field = (unsigned)(tag >> 3), wt = (unsigned)(tag & 7);
        switch (wt) {
        case 0: /* varint */
            if (read_varint(&p, end, &v))
                return MVCC_ECORRUPT;
            switch (field) {
            case 2:
                out->create_revision = (int64_t)v;
                break;
            case 3:
                out->mod_revision = (int64_t)v;
                break;
            case 4:
                out->version = (int64_t)v;
                break;
            case 6:
                out->lease = (int64_t)v;
                break;
            default:
                break;
            }
            break;
        case 2: /* length-delimited */
            if (read_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return MVCC_ECORRUPT;
            if (field == 1) {
                out->key = p;
                out->key_len = (size_t)v;
            } else if (field == 5) {
                out->value = p;
                out->value_len = (size_t)v;
            }
            p += v;
            break;
        case 1: /* 64-bit */
            if (end - p < 8)
                return MVCC_ECORRUPT;
            p += 8;
            break;
        case 5: /* 32-bit */
            if (end - p < 4)
                return MVCC_ECORRUPT;
            p += 4;
            break;
        default:
            return MVCC_ECORRUPT;
        }
    }
    return 0;
}

int kv_encode(uint8_t **buf, size_t *cap, const uint8_t *key, size_t klen, const uint8_t *val,
              size_t vlen, int64_t create, int64_t mod, int64_t ver, int64_t lease, size_t *len)
{
    Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
    kv.key.data = (uint8_t *)key;
    kv.key.len = klen;
    kv.value.data = (uint8_t *)val;
    kv.value.len = vlen;
    kv.create_revision = create;
    kv.mod_revision = mod;
    kv.version = ver;
    kv.lease = lease;
    size_t n = mvccpb__key_value__get_packed_size(&kv);
    if (n > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < n)
            c *= 2;
        uint8_t *nb = metcd_realloc(*buf, c);
        if (!nb)
            return MVCC_ENOMEM;
        *buf = nb;
        *cap = c;
    }
    *len = mvccpb__key_value__pack(&kv, *buf);
    return 0;
}
