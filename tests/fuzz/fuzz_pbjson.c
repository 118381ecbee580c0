/* tests/fuzz/fuzz_pbjson.c - libFuzzer target: the gateway's JSON decoder
 * (server/pbjson). Input: a message type name, a newline, then a request
 * body (an unknown name picks a type from its bytes). Every value of the
 * body is read as the gateway reads a bidi stream; each decoded message
 * must encode, decode again and pack to the same bytes, and the encoding
 * must be JSON jansson accepts. */
#include "pbjson_types.h"

#include "common/mem.h"
#include "server/pbjson/pbjson.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *pick(const uint8_t *name, size_t n)
{
    size_t count;
    const ProtobufCMessageDescriptor *const *all = pbjson_types_all(&count);
    char buf[128];
    if (n < sizeof buf) {
        memcpy(buf, name, n);
        buf[n] = 0;
        const ProtobufCMessageDescriptor *d = pbjson_types_find(buf);
        if (d)
            return d;
    }
    size_t h = 0;
    for (size_t i = 0; i < n; i++)
        h = h * 31 + name[i];
    return all[h % count];
}

static void check_round_trip(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *m)
{
    char *text;
    size_t len;
    int rc = pbjson_encode_text(m, &text, &len);
    if (rc == PBJSON_ERR_NOMEM)
        return;
    if (rc != 0)
        abort();
    json_error_t jerr;
    json_t *j = json_loadb(text, len, JSON_ALLOW_NUL, &jerr);
    if (!j)
        abort(); /* not JSON */
    json_decref(j);
    ProtobufCMessage *back = NULL;
    char err[256];
    rc = pbjson_decode(d, text, len, &back, err, sizeof err);
    metcd_free(text);
    if (rc == PBJSON_ERR_NOMEM)
        return;
    if (rc != 0)
        abort(); /* our own output refused */
    size_t a = protobuf_c_message_get_packed_size(m), b = protobuf_c_message_get_packed_size(back);
    uint8_t *pa = malloc(a + 1), *pb = malloc(b + 1);
    if (pa && pb) {
        protobuf_c_message_pack(m, pa);
        protobuf_c_message_pack(back, pb);
        if (a != b || memcmp(pa, pb, a) != 0)
            abort(); /* lost or changed something */
    }
    free(pa);
    free(pb);
    protobuf_c_message_free_unpacked(back, &metcd_pb_allocator);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t name_len = nl ? (size_t)(nl - data) : 0;
    const uint8_t *body = nl ? nl + 1 : data;
    size_t blen = size - (size_t)(body - data);
    const ProtobufCMessageDescriptor *d = pick(data, name_len);
    struct pbjson_reader r;
    pbjson_reader_init(&r, body, blen);
    for (int i = 0; i < 64; i++) {
        ProtobufCMessage *m = NULL;
        char err[256];
        int rc = pbjson_read(&r, d, &m, err, sizeof err);
        if (rc == PBJSON_EOF || rc == PBJSON_ERR_SYNTAX || rc == PBJSON_ERR_NOMEM)
            break;
        if (rc == PBJSON_ERR_VALUE) {
            if (!err[0])
                abort(); /* every refusal says why */
            continue;
        }
        if (rc != 0 || !m)
            abort();
        check_round_trip(d, m);
        protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    }
    return 0;
}
