/* tests/fuzz/fuzz_common.h - runs one connection's worth of input through
 * a server/rpc server: a socketpair end is adopted by the server, the
 * input is written to the other end (then shut down for writing), and the
 * loop runs until the server has closed the connection or a bounded number
 * of turns passed. Everything is freed before returning, so LeakSanitizer
 * sees any leak of the connection path. */
#ifndef METCD_TESTS_FUZZ_COMMON_H
#define METCD_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* prefix (may be NULL) is written before data. */
void fuzz_one_connection(const uint8_t *prefix, size_t prefix_len, const uint8_t *data,
                         size_t len);

/* The same over TLS (the https listeners' front end, server/rpc/tls_front.c):
 * mode 0 writes the input as the raw TLS byte stream (handshake records
 * and all); modes 1 and 2 first complete a real handshake with an
 * in-process OpenSSL client, then send the input through the encrypted
 * connection, after the HTTP/2 preface in mode 1, as it is in mode 2. */
void fuzz_one_tls_connection(int mode, const uint8_t *data, size_t len);

#endif
