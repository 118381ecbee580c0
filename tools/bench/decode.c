/* tools/bench/decode.c - the few etcdserverpb.WatchResponse fields
 * metcd-bench watch needs, read straight from the wire bytes (no unpack,
 * no allocation: the reader keeps up with a million events a second). */
#include "tools/bench/bench.h"

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*p == end)
            return BENCH_ERR_INVAL;
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return BENCH_ERR_INVAL;
}

/* Reads one field's key; for length-delimited fields also its bytes. For
 * other wire types *v is the value (fixed ones are skipped). */
static int field(const uint8_t **p, const uint8_t *end, uint32_t *num, const uint8_t **body,
                 uint64_t *v)
{
    uint64_t key;
    if (varint(p, end, &key) != 0)
        return BENCH_ERR_INVAL;
    *num = (uint32_t)(key >> 3);
    *body = NULL;
    *v = 0;
    switch (key & 7) {
    case 0:
        return varint(p, end, v);
    case 1:
        if (end - *p < 8)
            return BENCH_ERR_INVAL;
        *p += 8;
        return 0;
    case 2:
        if (varint(p, end, v) != 0 || *v > (uint64_t)(end - *p))
            return BENCH_ERR_INVAL;
        *body = *p;
        *p += *v;
        return 0;
    case 5:
        if (end - *p < 4)
            return BENCH_ERR_INVAL;
        *p += 4;
        return 0;
    default:
        return BENCH_ERR_INVAL;
    }
}

/* mvccpb.Event: field 2 is kv, whose field 5 is the value. */
static int event_time(const uint8_t *p, const uint8_t *end, bool *found, uint64_t *ns)
{
    *found = false;
    while (p < end) {
        uint32_t num;
        const uint8_t *body;
        uint64_t v;
        if (field(&p, end, &num, &body, &v) != 0)
            return BENCH_ERR_INVAL;
        if (num != 2 || !body)
            continue;
        const uint8_t *q = body, *qend = body + v;
        while (q < qend) {
            const uint8_t *vb;
            uint64_t vl;
            if (field(&q, qend, &num, &vb, &vl) != 0)
                return BENCH_ERR_INVAL;
            if (num == 5 && vb && vl >= 8) {
                uint64_t t = 0;
                for (int i = 7; i >= 0; i--)
                    t = t << 8 | vb[i];
                *ns = t;
                *found = true;
            }
        }
    }
    return 0;
}

int bench_watch_decode(const uint8_t *msg, size_t len, uint64_t *nevents, bool *created,
                       bool *canceled, int64_t *watch_id, void (*fn)(void *arg, uint64_t send_ns),
                       void *arg)
{
    const uint8_t *p = msg, *end = msg + len;
    *nevents = 0;
    *created = *canceled = false;
    *watch_id = 0;
    while (p < end) {
        uint32_t num;
        const uint8_t *body;
        uint64_t v;
        if (field(&p, end, &num, &body, &v) != 0)
            return BENCH_ERR_INVAL;
        if (num == 2 && !body) {
            *watch_id = (int64_t)v;
        } else if (num == 3 && !body) {
            *created = v != 0;
        } else if (num == 4 && !body) {
            *canceled = v != 0;
        } else if (num == 11 && body) {
            bool found;
            uint64_t ns = 0;
            if (event_time(body, body + v, &found, &ns) != 0)
                return BENCH_ERR_INVAL;
            (*nevents)++;
            if (found && fn)
                fn(arg, ns);
        }
    }
    return 0;
}
