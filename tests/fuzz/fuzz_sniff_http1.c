/* tests/fuzz/fuzz_sniff_http1.c - libFuzzer target: a connection's first
 * bytes as they come (the MSG_PEEK sniff, then the HTTP/1.1 parser and
 * router, or HTTP/2 when they happen to start with "PRI"). */
#include "fuzz_common.h"

#include <stdint.h>
#include <stddef.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_one_connection(NULL, 0, data, size);
    return 0;
}
