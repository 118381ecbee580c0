/* tests/unit/server/pbjson_cli.c - differential driver (not a test by
 * itself): reads lines "etcdserverpb.Type<TAB>base64(body)" and prints what
 * the gateway's decoder makes of each body: "OK<TAB>json" (the message
 * re-encoded), "ERR<TAB>text" or "EOF", the same protocol as a small Go
 * program built on etcd 3.4's grpc-gateway runtime, so the two can be
 * compared on many inputs (tests/unit/server/pbjson_diff.py). */
#include "pbjson_types.h"

#include "common/mem.h"
#include "server/pbjson/pbjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t b64dec(const char *s, unsigned char *out)
{
    size_t n = 0;
    unsigned v = 0, bits = 0;
    for (; *s && *s != '\n'; s++) {
        const char *p = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", *s);
        if (!p || *s == '=')
            continue;
        v = (v << 6) | (unsigned)(p - "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(v >> bits);
        }
    }
    return n;
}

int main(void)
{
    size_t cap = 64 << 20;
    char *line = malloc(cap);
    unsigned char *body = malloc(cap);
    if (!line || !body)
        return 1;
    while (fgets(line, (int)cap, stdin)) {
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = 0;
        size_t n = b64dec(tab + 1, body);
        const ProtobufCMessageDescriptor *d = pbjson_types_find(line);
        if (!d) {
            printf("NOTYPE\n");
            fflush(stdout);
            continue;
        }
        struct pbjson_reader r;
        pbjson_reader_init(&r, body, n);
        ProtobufCMessage *m = NULL;
        char err[512];
        int rc = pbjson_read(&r, d, &m, err, sizeof err);
        if (rc == PBJSON_EOF) {
            printf("EOF\n");
        } else if (rc) {
            printf("ERR\t%s\n", err);
        } else {
            /* what the gRPC server would see: packed and unpacked */
            size_t plen = protobuf_c_message_get_packed_size(m);
            uint8_t *pb = malloc(plen ? plen : 1);
            protobuf_c_message_pack(m, pb);
            protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
            m = protobuf_c_message_unpack(d, &metcd_pb_allocator, plen, pb);
            free(pb);
            char *out;
            size_t olen;
            if (!m || pbjson_encode_text(m, &out, &olen) != 0) {
                printf("MERR\n");
            } else {
                printf("OK\t%s\n", out);
                metcd_free(out);
            }
            protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
        }
        fflush(stdout);
    }
    free(line);
    free(body);
    return 0;
}
