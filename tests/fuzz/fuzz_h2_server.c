/* tests/fuzz/fuzz_h2_server.c - libFuzzer target: arbitrary bytes after the
 * HTTP/2 client preface into a server connection (nghttp2 framing, gRPC
 * headers, length-prefixed messages, the echo handlers, channelz, health). */
#include "fuzz_common.h"

#include <stdint.h>
#include <stddef.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    fuzz_one_connection(preface, sizeof preface - 1, data, size);
    return 0;
}
