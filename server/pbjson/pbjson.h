/* server/pbjson/pbjson.h - protobuf <-> JSON exactly as etcd 3.4's HTTP
 * gateway does it, driven by protobuf-c descriptors (no per-message code).
 *
 * etcd 3.4 (Debian's build: grpc-gateway 1.6.4, golang/protobuf 1.3 jsonpb,
 * Go 1.19 encoding/json) marshals with jsonpb {OrigName: true}: fields in
 * field-number order under their .proto names, zero values omitted (a set
 * oneof member is always written), 64-bit integers as decimal strings,
 * 32-bit ones as numbers, bytes as padded standard base64, enums by name
 * (an unknown number stays a number), strings escaped as Go's
 * encoding/json escapes them (<, >, & and U+2028/9 as \u escapes, invalid
 * UTF-8 as \ufffd).
 *
 * It reads with a Go json.Decoder feeding jsonpb.Unmarshaler
 * {AllowUnknownFields: true}: one JSON value at a time from a stream of
 * them (trailing bytes after the value are left for the next read), both
 * the .proto name and the lowerCamel JSON name of a field accepted (the
 * camel one wins when both are given), unknown fields ignored, 64-bit and
 * 32-bit integers as numbers or strings, enums by name or number, null as
 * "not set". Every error carries the text Go would give, since clients and
 * etcd's tests match on it: "invalid character 'b' looking for beginning
 * of object key string", "json: cannot unmarshal number 1.5 into Go value
 * of type int64", "illegal base64 data at input byte 0", "unknown value
 * \"FOO\" for enum etcdserverpb.RangeRequest_SortOrder", ...
 *
 * Map fields (none in etcd's API) are treated as the repeated entry
 * messages protobuf-c sees. Errors are negative `enum pbjson_error` values
 * (range -4200..-4299). Thread-safe: no shared state beyond jansson's
 * allocator, pointed at common/mem.h once (so allocation failures can be
 * injected in tests).
 */
#ifndef METCD_SERVER_PBJSON_H
#define METCD_SERVER_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

enum pbjson_error {
    PBJSON_OK = 0,
    PBJSON_ERR_NOMEM = -4200,  /* allocation failed; nothing returned */
    PBJSON_ERR_INVAL = -4201,  /* bad argument */
    PBJSON_ERR_SYNTAX = -4202, /* not JSON: Go's SyntaxError text in err */
    PBJSON_ERR_VALUE = -4203,  /* JSON that does not fit the message: Go's text */
    PBJSON_EOF = -4204,        /* no value left, only white space (Go's io.EOF) */
};

/* Static text for an enum pbjson_error value (never NULL). */
const char *pbjson_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */

/* Builds the JSON of msg (jsonpb, OrigName) as a jansson object. Object
 * members keep field order; 64-bit integers are JSON strings, so the tree
 * holds the exact text. Caller frees with json_decref. PBJSON_ERR_NOMEM
 * or PBJSON_ERR_INVAL (a message that is not protobuf-c's). */
int pbjson_encode(const ProtobufCMessage *msg, json_t **out);

/* Serialises v compactly as Go's encoding/json would (member order kept,
 * HTML-safe string escapes, integers as is, reals in Go's shortest form).
 * *out is NUL-terminated, *len excludes the NUL; caller frees with
 * metcd_free. PBJSON_ERR_NOMEM. */
int pbjson_dump(const json_t *v, char **out, size_t *len);

/* pbjson_encode + pbjson_dump. */
int pbjson_encode_text(const ProtobufCMessage *msg, char **out, size_t *len);

/* Go's strconv.Quote (what fmt's %q prints) of s[0..n), quotes
 * included; invalid UTF-8 bytes as \x escapes. *out NUL-terminated,
 * caller frees with metcd_free. PBJSON_ERR_NOMEM. */
int pbjson_go_quote(const void *s, size_t n, char **out, size_t *len);

/* A JSON string as Go's encoding/json writes it (quotes, HTML-safe
 * escapes, invalid UTF-8 as \ufffd). Same ownership as pbjson_go_quote. */
int pbjson_go_string(const void *s, size_t n, char **out, size_t *len);

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */

/* A stream of JSON values over one buffer, as Go's json.Decoder reads a
 * request body. The buffer is borrowed for the reader's life. */
struct pbjson_reader {
    const char *buf;
    size_t len;
    size_t pos;   /* start of what is not read yet */
    int failed;   /* a syntax error stays (Go's Decoder keeps it) */
    char failmsg[160];
};

void pbjson_reader_init(struct pbjson_reader *r, const void *buf, size_t len);

/* Reads the next value into a new message of type desc. Returns 0 with
 * *out set (caller frees with protobuf_c_message_free_unpacked(*out,
 * &metcd_pb_allocator)); PBJSON_EOF when only white space is left (*out
 * NULL); PBJSON_ERR_SYNTAX or PBJSON_ERR_VALUE with Go's text in err
 * (NUL-terminated, cut to errlen) and *out NULL; PBJSON_ERR_NOMEM. A value
 * error consumes the value (the next read starts after it); a syntax error
 * ends the stream (every later read repeats it). */
int pbjson_read(struct pbjson_reader *r, const ProtobufCMessageDescriptor *desc,
                ProtobufCMessage **out, char *err, size_t errlen);

/* One whole buffer as one message: the first value (later bytes ignored,
 * as the gateway's unary handlers do); an empty or blank buffer gives an
 * empty message. Same results as pbjson_read otherwise. */
int pbjson_decode(const ProtobufCMessageDescriptor *desc, const void *buf, size_t len,
                  ProtobufCMessage **out, char *err, size_t errlen);

/* A new message of type desc with its defaults (caller frees as above). */
ProtobufCMessage *pbjson_message_new(const ProtobufCMessageDescriptor *desc);

/* Go's name for a proto enum or message as jsonpb prints it in errors:
 * "etcdserverpb.RangeRequest_SortOrder" for etcdserverpb.RangeRequest.SortOrder.
 * Writes at most n bytes including the NUL. */
void pbjson_go_type_name(const char *package_name, const char *full_name, char *buf, size_t n);

#endif
