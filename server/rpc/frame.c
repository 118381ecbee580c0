/* server/rpc/frame.c - gRPC length-prefixed messages: 1 byte compressed
 * flag, 4 bytes big-endian length, then the message (PROTOCOL-HTTP2.md,
 * "Length-Prefixed-Message"). Messages may be split across any number of
 * DATA frames and one frame may carry many messages; this file neither
 * knows nor cares. */
#include "server/rpc/internal.h"

#include "common/mem.h"

#include <assert.h>
#include <string.h>

void rpc_deframer_init(struct rpc_deframer *d, size_t limit)
{
    memset(d, 0, sizeof *d);
    d->limit = limit;
}

void rpc_deframer_reset(struct rpc_deframer *d)
{
    metcd_free(d->buf);
    d->buf = NULL;
    d->hdr_len = 0;
    d->have = 0;
    d->len = 0;
}

bool rpc_deframer_idle(const struct rpc_deframer *d)
{
    return d->hdr_len == 0;
}

int rpc_deframe(struct rpc_deframer *d, const uint8_t **data, size_t *len,
                uint8_t **msg, size_t *msg_len, int *compressed)
{
    for (;;) {
        if (d->hdr_len < RPC_FRAME_HDR) {
            if (*len == 0)
                return RPC_DEFRAME_MORE;
            size_t take = RPC_FRAME_HDR - d->hdr_len;
            if (take > *len)
                take = *len;
            memcpy(d->hdr + d->hdr_len, *data, take);
            d->hdr_len = (uint8_t)(d->hdr_len + take);
            *data += take;
            *len -= take;
            if (d->hdr_len < RPC_FRAME_HDR)
                return RPC_DEFRAME_MORE;
            d->compressed = d->hdr[0];
            d->len = (uint32_t)d->hdr[1] << 24 | (uint32_t)d->hdr[2] << 16 |
                     (uint32_t)d->hdr[3] << 8 | d->hdr[4];
            d->have = 0;
            if (d->len > d->limit) {
                d->too_big_len = d->len;
                return RPC_DEFRAME_TOO_BIG;
            }
            if (d->len > 0) {
                d->buf = metcd_malloc(d->len);
                if (!d->buf)
                    return RPC_DEFRAME_NOMEM;
            }
        }
        size_t take = d->len - d->have;
        if (take > *len)
            take = *len;
        if (take) {
            memcpy(d->buf + d->have, *data, take);
            d->have += (uint32_t)take;
            *data += take;
            *len -= take;
        }
        if (d->have == d->len) {
            *msg = d->buf;
            *msg_len = d->len;
            *compressed = d->compressed;
            d->buf = NULL;
            d->hdr_len = 0;
            d->have = d->len = 0;
            return RPC_DEFRAME_MSG;
        }
        return RPC_DEFRAME_MORE; /* all input taken, message incomplete */
    }
}

int rpc_frame_encode(struct evbuffer *out, size_t max_len, size_t (*encode)(void *arg, uint8_t *dst),
                     void *arg, size_t max, size_t *framed_len)
{
    if (max_len > max || max_len > 0xffffffffu)
        return RPC_ERR_TOO_BIG;
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, max_len + RPC_FRAME_HDR, &v, 1) < 1)
        return RPC_ERR_NOMEM;
    uint8_t *p = v.iov_base;
    size_t n = encode(arg, p + RPC_FRAME_HDR);
    assert(n <= max_len);
    p[0] = 0;
    p[1] = (uint8_t)(n >> 24);
    p[2] = (uint8_t)(n >> 16);
    p[3] = (uint8_t)(n >> 8);
    p[4] = (uint8_t)n;
    v.iov_len = n + RPC_FRAME_HDR;
    if (evbuffer_commit_space(out, &v, 1) < 0)
        return RPC_ERR_NOMEM;
    if (framed_len)
        *framed_len = n + RPC_FRAME_HDR;
    return 0;
}

int rpc_frame_pack(struct evbuffer *out, const ProtobufCMessage *msg, size_t max,
                   size_t *framed_len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n > max || n > 0xffffffffu)
        return RPC_ERR_TOO_BIG;
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, n + RPC_FRAME_HDR, &v, 1) < 1)
        return RPC_ERR_NOMEM;
    uint8_t *p = v.iov_base;
    p[0] = 0;
    p[1] = (uint8_t)(n >> 24);
    p[2] = (uint8_t)(n >> 16);
    p[3] = (uint8_t)(n >> 8);
    p[4] = (uint8_t)n;
    protobuf_c_message_pack(msg, p + RPC_FRAME_HDR);
    v.iov_len = n + RPC_FRAME_HDR;
    if (evbuffer_commit_space(out, &v, 1) < 0)
        return RPC_ERR_NOMEM;
    if (framed_len)
        *framed_len = n + RPC_FRAME_HDR;
    return 0;
}
