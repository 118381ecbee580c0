/* tests/fuzz/fuzz_deframe.c - libFuzzer target: the gRPC message
 * reassembler. The first byte chooses how the rest is split into pieces;
 * whatever the split, the messages must come out the same. */
#include "server/rpc/internal.h"

#include "common/mem.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Returns a checksum of (count, lengths, bytes) of the messages. */
static uint64_t run(const uint8_t *data, size_t size, size_t step, int *err)
{
    struct rpc_deframer d;
    rpc_deframer_init(&d, 1024);
    uint64_t sum = 0;
    *err = 0;
    for (size_t off = 0; off < size && !*err; off += step) {
        size_t left = size - off < step ? size - off : step;
        const uint8_t *p = data + off;
        for (;;) {
            uint8_t *msg;
            size_t mlen;
            int comp;
            int rc = rpc_deframe(&d, &p, &left, &msg, &mlen, &comp);
            if (rc == RPC_DEFRAME_MORE)
                break;
            if (rc != RPC_DEFRAME_MSG) {
                *err = rc;
                break;
            }
            sum = sum * 31 + mlen + (uint64_t)comp;
            for (size_t i = 0; i < mlen; i++)
                sum = sum * 131 + msg[i];
            metcd_free(msg);
        }
    }
    rpc_deframer_reset(&d);
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    int e1, e2;
    uint64_t a = run(data + 1, size - 1, size, &e1);
    uint64_t b = run(data + 1, size - 1, step, &e2);
    if (e1 != e2 || (!e1 && a != b))
        abort();
    return 0;
}
