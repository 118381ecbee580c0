/* tests/fuzz/fuzz_tls_server.c - libFuzzer target: a connection to an
 * https listener (server/rpc/tls_front.c in front of the same HTTP/2,
 * gRPC and HTTP/1.1 code as the plaintext targets). The first byte picks
 * the mode (fuzz_common.h): the raw TLS stream, or a real handshake then
 * the rest of the input through it (after the HTTP/2 preface, or as it
 * is). */
#include "fuzz_common.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    fuzz_one_tls_connection(data[0] % 3, data + 1, size - 1);
    return 0;
}
