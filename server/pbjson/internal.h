/* server/pbjson/internal.h - shared by pbjson's files only.
 *
 * gojson.c reproduces the parts of Go's encoding/json (1.19) and
 * encoding/base64 whose behaviour and error texts the gateway shows:
 * the scanner (its states and messages), a json.Decoder reading one value
 * of a stream into a jansson tree, json.Unmarshal of a scalar text, string
 * unquoting, strconv.Quote, base64.StdEncoding and the string escaping of
 * Marshal. */
#ifndef METCD_SERVER_PBJSON_INTERNAL_H
#define METCD_SERVER_PBJSON_INTERNAL_H

#include "server/pbjson/pbjson.h"

#include <stdint.h>

/* The kinds json.Unmarshal tells apart. */
enum gj_kind { GJ_NULL, GJ_BOOL, GJ_NUMBER, GJ_STRING, GJ_OBJECT, GJ_ARRAY };

/* Where a string or number value came from in the input. */
struct gj_span {
    const json_t *v;
    size_t off, len; /* raw text, quotes included for strings */
    bool number;
};

/* One decoded value. Strings are unquoted as Go unquotes them (invalid
 * UTF-8 and lone surrogates become U+FFFD); numbers are kept as JSON
 * strings of their exact text, told apart through `spans`. */
struct gj_doc {
    json_t *root;
    const char *text; /* borrowed input */
    struct gj_span *spans; /* sorted by v once the value is complete */
    size_t n_spans, cap_spans;
};

/* Go json.Decoder.Decode into a json.RawMessage, then the value parsed:
 * reads the value starting at *pos of buf[0..len) (the whole body is
 * there: the end of buf is the end of the stream). On success *pos is
 * where the next read starts and doc holds the value (free with
 * gj_doc_free). PBJSON_EOF: only white space left. PBJSON_ERR_SYNTAX: err
 * has Go's text ("unexpected EOF" when the stream ends inside a value). */
int gj_read(const char *buf, size_t len, size_t *pos, struct gj_doc *doc, char *err,
            size_t errlen);
void gj_doc_free(struct gj_doc *doc);

enum gj_kind gj_kind_of(const struct gj_doc *doc, const json_t *v);
/* "null", "bool", "number", "string", "object", "array" (Go's words). */
const char *gj_kind_name(enum gj_kind k);
/* Raw text of a string (with its quotes) or number; false for others. */
bool gj_raw(const struct gj_doc *doc, const json_t *v, const char **p, size_t *n);

/* Go types a JSON scalar text can be unmarshalled into. */
enum gj_num_type { GJ_INT64, GJ_INT32, GJ_UINT64, GJ_UINT32, GJ_FLOAT64, GJ_FLOAT32 };

union gj_num {
    int64_t i;
    uint64_t u;
    double d;
};

/* json.Unmarshal(text, &x) with x of Go type `t` (type_name: how Go names
 * it in errors, e.g. "int64" or an enum's type). Returns 0 with *set true
 * and *out filled, 0 with *set false (null: x untouched), or
 * PBJSON_ERR_VALUE / PBJSON_ERR_SYNTAX with Go's text in err. */
int gj_unmarshal_number(const char *text, size_t len, enum gj_num_type t,
                        const char *type_name, union gj_num *out, bool *set, char *err,
                        size_t errlen);

/* base64.StdEncoding.Decode of s[0..n) into dst (room for n*3/4+3 bytes).
 * Returns the decoded length, or -1 with *bad_at set to the offset Go
 * reports ("illegal base64 data at input byte %d"). */
long gj_base64_decode(const char *s, size_t n, uint8_t *dst, size_t *bad_at);
/* base64.StdEncoding.EncodeToString; *out caller-freed (metcd_free). */
int gj_base64_encode(const uint8_t *p, size_t n, char **out, size_t *olen);

/* strconv.Quote of s[0..n) into buf (cut to bufsize, NUL-terminated). */
void gj_quote(const char *s, size_t n, char *buf, size_t bufsize);

/* Growable output buffer. */
struct gj_buf {
    char *p;
    size_t len, cap;
    bool nomem;
};
void gj_put(struct gj_buf *b, const char *s, size_t n);
/* A JSON string as Go's encoding/json writes it (HTML escaping on). */
void gj_put_string(struct gj_buf *b, const char *s, size_t n);
/* A float64 (bits 64) or float32 (bits 32) as encoding/json writes it. */
void gj_put_float(struct gj_buf *b, double f, int bits);

/* jansson's allocator pointed at common/mem.h (once per process). */
void pbjson_init_alloc(void);

#endif
