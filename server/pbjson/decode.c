/* server/pbjson/decode.c - JSON into protobuf-c messages as
 * jsonpb.Unmarshaler{AllowUnknownFields: true} (golang/protobuf 1.3) does
 * it under etcd's gateway: regular fields in field-number order, then
 * oneof members; the first error ends the decoding. Every value goes
 * through the rules Go applies to it (see pbjson.h), with Go's texts. */
#include "server/pbjson/internal.h"

#include "common/mem.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct dctx {
    const struct gj_doc *doc;
    char *err;
    size_t errlen;
};

static int value_error(struct dctx *c, const char *fmt, const char *a, const char *b)
{
    snprintf(c->err, c->errlen, fmt, a, b);
    return PBJSON_ERR_VALUE;
}

static int nomem(struct dctx *c)
{
    snprintf(c->err, c->errlen, "out of memory");
    return PBJSON_ERR_NOMEM;
}

/* "json: cannot unmarshal <kind> into Go value of type <type>" */
static int type_error(struct dctx *c, enum gj_kind k, const char *go_type)
{
    return value_error(c, "json: cannot unmarshal %s into Go value of type %s", gj_kind_name(k),
                       go_type);
}

void pbjson_go_type_name(const char *package_name, const char *full_name, char *buf, size_t n)
{
    if (!n)
        return;
    size_t pl = package_name ? strlen(package_name) : 0;
    const char *rest = full_name;
    if (pl && strncmp(full_name, package_name, pl) == 0 && full_name[pl] == '.')
        rest = full_name + pl + 1;
    size_t o = 0;
    /* Go's package name is the last element of the proto package */
    const char *pkg = package_name ? strrchr(package_name, '.') : NULL;
    pkg = pkg ? pkg + 1 : package_name;
    if (pkg && *pkg) {
        o = (size_t)snprintf(buf, n, "%s.", pkg);
        if (o >= n)
            return;
    }
    for (; *rest && o + 1 < n; rest++)
        buf[o++] = *rest == '.' ? '_' : *rest;
    buf[o] = 0;
}

static void enum_go_name(const ProtobufCEnumDescriptor *e, char *buf, size_t n)
{
    pbjson_go_type_name(e->package_name, e->name, buf, n);
}

/* protoc's json_name: underscores dropped, the next letter upper-cased. */
static void camel_name(const char *name, char *buf, size_t n)
{
    size_t o = 0;
    bool up = false;
    for (; *name && o + 1 < n; name++) {
        if (*name == '_') {
            up = true;
        } else if (up) {
            buf[o++] = (*name >= 'a' && *name <= 'z') ? (char)(*name - 'a' + 'A') : *name;
            up = false;
        } else {
            buf[o++] = *name;
        }
    }
    buf[o] = 0;
}

/* The member of object v for field f: its .proto name or its JSON name
 * (favoured when both are there), NULL when neither is. */
static json_t *field_value(json_t *v, const ProtobufCFieldDescriptor *f)
{
    char camel[256];
    camel_name(f->name, camel, sizeof camel);
    json_t *c = strcmp(camel, f->name) != 0 ? json_object_get(v, camel) : NULL;
    return c ? c : json_object_get(v, f->name);
}

/* The text json.Unmarshal would get for a number-typed target, as jsonpb
 * hands it over: a string loses its outer quotes (not unescaped); objects
 * and arrays only need their first character. */
static void number_text(struct dctx *c, const json_t *v, enum gj_kind k, const char **p,
                        size_t *n)
{
    switch (k) {
    case GJ_NULL: *p = "null"; *n = 4; return;
    case GJ_BOOL: *p = json_is_true(v) ? "true" : "false"; *n = strlen(*p); return;
    case GJ_OBJECT: *p = "{}"; *n = 2; return;
    case GJ_ARRAY: *p = "[]"; *n = 2; return;
    case GJ_NUMBER: gj_raw(c->doc, v, p, n); return;
    case GJ_STRING:
        gj_raw(c->doc, v, p, n);
        *p += 1;
        *n -= 2;
        return;
    }
}

static int dec_enum(struct dctx *c, const ProtobufCFieldDescriptor *f, const json_t *v, int *out)
{
    const ProtobufCEnumDescriptor *e = f->descriptor;
    char go_name[256];
    enum_go_name(e, go_name, sizeof go_name);
    enum gj_kind k = gj_kind_of(c->doc, v);
    if (k == GJ_STRING) {
        /* by name: the raw text between the quotes, as jsonpb compares it */
        const char *raw;
        size_t n;
        gj_raw(c->doc, v, &raw, &n);
        for (unsigned i = 0; i < e->n_values; i++) {
            if (strlen(e->values[i].name) == n - 2 && memcmp(e->values[i].name, raw + 1, n - 2) == 0) {
                *out = e->values[i].value;
                return 0;
            }
        }
        char q[160];
        gj_quote(raw + 1, n - 2, q, sizeof q);
        return value_error(c, "unknown value %s for enum %s", q, go_name);
    }
    const char *p;
    size_t n;
    number_text(c, v, k, &p, &n);
    union gj_num num;
    bool set;
    int rc = gj_unmarshal_number(p, n, GJ_INT32, go_name, &num, &set, c->err, c->errlen);
    if (rc == 0 && set)
        *out = (int)num.i;
    return rc;
}

static int dec_number(struct dctx *c, const ProtobufCFieldDescriptor *f, const json_t *v,
                      void *out)
{
    enum gj_kind k = gj_kind_of(c->doc, v);
    enum gj_num_type t;
    const char *go_type;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: t = GJ_INT32; go_type = "int32"; break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: t = GJ_INT64; go_type = "int64"; break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: t = GJ_UINT32; go_type = "uint32"; break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: t = GJ_UINT64; go_type = "uint64"; break;
    case PROTOBUF_C_TYPE_FLOAT: t = GJ_FLOAT32; go_type = "float32"; break;
    default: t = GJ_FLOAT64; go_type = "float64"; break;
    }
    union gj_num num = {0};
    bool set = false;
    if (k == GJ_STRING && (t == GJ_FLOAT32 || t == GJ_FLOAT64)) {
        /* jsonpb's non-finite names, compared on the raw text */
        const char *raw;
        size_t n;
        gj_raw(c->doc, v, &raw, &n);
        static const char *const names[] = {"\"NaN\"", "\"Infinity\"", "\"-Infinity\""};
        static const double vals[] = {NAN, INFINITY, -INFINITY};
        for (int i = 0; i < 3; i++) {
            if (strlen(names[i]) == n && memcmp(names[i], raw, n) == 0) {
                num.d = vals[i];
                set = true;
            }
        }
    }
    if (!set) {
        const char *p;
        size_t n;
        number_text(c, v, k, &p, &n);
        int rc = gj_unmarshal_number(p, n, t, go_type, &num, &set, c->err, c->errlen);
        if (rc)
            return rc;
        if (!set)
            return 0;
    }
    switch (t) {
    case GJ_INT32: *(int32_t *)out = (int32_t)num.i; break;
    case GJ_INT64: *(int64_t *)out = num.i; break;
    case GJ_UINT32: *(uint32_t *)out = (uint32_t)num.u; break;
    case GJ_UINT64: *(uint64_t *)out = num.u; break;
    case GJ_FLOAT32: *(float *)out = (float)num.d; break;
    case GJ_FLOAT64: *(double *)out = num.d; break;
    }
    return 0;
}

/* Go decodes a JSON array into []byte element by element. */
static int bytes_from_array(struct dctx *c, const json_t *v, ProtobufCBinaryData *out)
{
    size_t n = json_array_size(v);
    uint8_t *data = metcd_malloc(n ? n : 1);
    if (!data)
        return nomem(c);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        enum gj_kind k = gj_kind_of(c->doc, e);
        data[i] = 0;
        if (k == GJ_NULL)
            continue;
        const char *p;
        size_t pl;
        number_text(c, e, k, &p, &pl);
        if (k == GJ_STRING) {
            metcd_free(data);
            return type_error(c, GJ_STRING, "uint8");
        }
        union gj_num num;
        bool set;
        int rc = gj_unmarshal_number(p, pl, GJ_UINT64, "uint8", &num, &set, c->err, c->errlen);
        if (rc == 0 && set && num.u > 255) {
            snprintf(c->err, c->errlen, "json: cannot unmarshal number %.*s into Go value of type uint8",
                     (int)pl, p);
            rc = PBJSON_ERR_VALUE;
        }
        if (rc) {
            metcd_free(data);
            return rc;
        }
        data[i] = (uint8_t)num.u;
    }
    out->data = data;
    out->len = n;
    return 0;
}

static int dec_bytes(struct dctx *c, const json_t *v, ProtobufCBinaryData *out)
{
    enum gj_kind k = gj_kind_of(c->doc, v);
    if (k == GJ_NULL)
        return 0;
    if (k == GJ_ARRAY)
        return bytes_from_array(c, v, out);
    if (k != GJ_STRING)
        return type_error(c, k, "[]uint8");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    uint8_t *data = metcd_malloc(n / 4 * 3 + 4);
    if (!data)
        return nomem(c);
    size_t bad = 0;
    long dl = gj_base64_decode(s, n, data, &bad);
    if (dl < 0) {
        metcd_free(data);
        snprintf(c->err, c->errlen, "illegal base64 data at input byte %zu", bad);
        return PBJSON_ERR_VALUE;
    }
    metcd_free(out->data);
    out->data = data;
    out->len = (size_t)dl;
    return 0;
}

static int dec_string(struct dctx *c, const json_t *v, char **out)
{
    enum gj_kind k = gj_kind_of(c->doc, v);
    if (k == GJ_NULL)
        return 0;
    if (k != GJ_STRING)
        return type_error(c, k, "string");
    size_t n = json_string_length(v);
    char *s = metcd_malloc(n + 1);
    if (!s)
        return nomem(c);
    memcpy(s, json_string_value(v), n + 1);
    *out = s;
    return 0;
}

static int dec_bool(struct dctx *c, const json_t *v, protobuf_c_boolean *out)
{
    enum gj_kind k = gj_kind_of(c->doc, v);
    if (k == GJ_NULL)
        return 0;
    if (k != GJ_BOOL)
        return type_error(c, k, "bool");
    *out = json_is_true(v);
    return 0;
}

static int dec_message(struct dctx *c, const ProtobufCMessageDescriptor *d, const json_t *v,
                       ProtobufCMessage *msg);

static ProtobufCMessage *message_new(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = metcd_malloc(d->sizeof_message);
    if (m)
        d->message_init(m);
    return m;
}

ProtobufCMessage *pbjson_message_new(const ProtobufCMessageDescriptor *desc)
{
    return desc ? message_new(desc) : NULL;
}

/* One value of field f's type into `out` (the field's storage, or an
 * element of its array). Strings, bytes and messages own what they get. */
static int dec_one(struct dctx *c, const ProtobufCFieldDescriptor *f, const json_t *v, void *out)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_ENUM:
        return dec_enum(c, f, v, out);
    case PROTOBUF_C_TYPE_BOOL:
        return dec_bool(c, v, out);
    case PROTOBUF_C_TYPE_STRING:
        return dec_string(c, v, out);
    case PROTOBUF_C_TYPE_BYTES:
        return dec_bytes(c, v, out);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        ProtobufCMessage **slot = out;
        if (gj_kind_of(c->doc, v) == GJ_NULL)
            return 0;
        ProtobufCMessage *sm = message_new(sd);
        if (!sm)
            return nomem(c);
        *slot = sm; /* owned by the parent from here on, even on error */
        return dec_message(c, sd, v, sm);
    }
    default:
        return dec_number(c, f, v, out);
    }
}

static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return sizeof(uint64_t);
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    default: return sizeof(uint32_t);
    }
}

static int dec_repeated(struct dctx *c, const ProtobufCFieldDescriptor *f, const json_t *v,
                        ProtobufCMessage *msg)
{
    enum gj_kind k = gj_kind_of(c->doc, v);
    if (f->type == PROTOBUF_C_TYPE_ENUM && k == GJ_STRING) {
        /* jsonpb tries a quoted value as an enum name before looking at
         * the target's kind */
        int tmp;
        int rc = dec_enum(c, f, v, &tmp);
        if (rc)
            return rc;
        char go_name[256];
        enum_go_name(f->descriptor, go_name, sizeof go_name);
        return value_error(c, "invalid target %s for enum %s", "\"slice\"", go_name);
    }
    if (k == GJ_NULL)
        return 0;
    if (k != GJ_ARRAY)
        return type_error(c, k, "[]json.RawMessage");
    size_t n = json_array_size(v);
    size_t *count = (size_t *)((char *)msg + f->quantifier_offset);
    void **arr = (void **)((char *)msg + f->offset);
    if (n == 0)
        return 0;
    size_t es = elem_size(f);
    char *a = metcd_calloc(n, es);
    if (!a)
        return nomem(c);
    *arr = a;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        void *slot = a + i * es;
        const json_t *e = json_array_get(v, i);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            /* a null element becomes an empty message (Go would hand a
             * nil one to the gRPC marshaller) */
            ProtobufCMessage *sm = message_new(f->descriptor);
            if (!sm)
                return nomem(c);
            *(ProtobufCMessage **)slot = sm;
            *count = i + 1; /* freed with the message from here on */
            int rc = dec_message(c, f->descriptor, e, sm);
            if (rc)
                return rc;
            continue;
        }
        int rc = dec_one(c, f, e, slot); /* allocates only on success */
        if (rc)
            return rc;
        if (f->type == PROTOBUF_C_TYPE_STRING && !*(char **)slot) {
            char *s = metcd_malloc(1);
            if (!s)
                return nomem(c);
            *s = 0;
            *(char **)slot = s;
        } else if (f->type == PROTOBUF_C_TYPE_BYTES && !((ProtobufCBinaryData *)slot)->data) {
            if (!(((ProtobufCBinaryData *)slot)->data = metcd_malloc(1)))
                return nomem(c);
        }
        *count = i + 1;
    }
    return 0;
}

static int dec_field(struct dctx *c, const ProtobufCFieldDescriptor *f, const json_t *v,
                     ProtobufCMessage *msg)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return dec_repeated(c, f, v, msg);
    void *slot = (char *)msg + f->offset;
    bool oneof = (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
    if (oneof) {
        uint32_t *qcase = (uint32_t *)((char *)msg + f->quantifier_offset);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && gj_kind_of(c->doc, v) == GJ_NULL)
            return 0; /* a nil message member: nothing on the wire */
        /* Another member may hold an allocation: the last given wins. */
        if (*qcase != 0 && *qcase != f->id) {
            for (unsigned i = 0; i < msg->descriptor->n_fields; i++) {
                const ProtobufCFieldDescriptor *o = &msg->descriptor->fields[i];
                if (o->id != *qcase)
                    continue;
                void *os = (char *)msg + o->offset;
                if (o->type == PROTOBUF_C_TYPE_STRING)
                    metcd_free(*(char **)os);
                else if (o->type == PROTOBUF_C_TYPE_BYTES)
                    metcd_free(((ProtobufCBinaryData *)os)->data);
                else if (o->type == PROTOBUF_C_TYPE_MESSAGE)
                    protobuf_c_message_free_unpacked(*(ProtobufCMessage **)os,
                                                     &metcd_pb_allocator);
            }
        }
        /* the member starts from its zero value (nothing allocated) */
        memset(slot, 0, elem_size(f));
        *qcase = f->id;
        int rc = dec_one(c, f, v, slot);
        if (rc)
            return rc;
        /* null still selects a scalar member: give it a real empty value */
        if (f->type == PROTOBUF_C_TYPE_STRING && !*(char **)slot) {
            char *s = metcd_malloc(1);
            if (!s)
                return nomem(c);
            *s = 0;
            *(char **)slot = s;
        } else if (f->type == PROTOBUF_C_TYPE_BYTES && !((ProtobufCBinaryData *)slot)->data) {
            if (!(((ProtobufCBinaryData *)slot)->data = metcd_malloc(1)))
                return nomem(c);
        }
        return 0;
    }
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        char *old = *(char **)slot;
        char *s = NULL;
        int rc = dec_string(c, v, &s);
        if (rc == 0 && s) {
            if (old != (const char *)f->default_value && old != protobuf_c_empty_string)
                metcd_free(old);
            *(char **)slot = s;
        }
        return rc;
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE) {
        /* proto2 optional: set has_ when a value arrives (null leaves it) */
        protobuf_c_boolean *has = (protobuf_c_boolean *)((char *)msg + f->quantifier_offset);
        if (gj_kind_of(c->doc, v) != GJ_NULL)
            *has = 1;
    }
    return dec_one(c, f, v, slot);
}

static int dec_message(struct dctx *c, const ProtobufCMessageDescriptor *d, const json_t *v,
                       ProtobufCMessage *msg)
{
    enum gj_kind k = gj_kind_of(c->doc, v);
    if (k == GJ_NULL)
        return 0; /* json.Unmarshal of null into a map: no members */
    if (k != GJ_OBJECT)
        return type_error(c, k, "map[string]json.RawMessage");
    json_t *obj = (json_t *)v;
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < d->n_fields; i++) {
            const ProtobufCFieldDescriptor *f = &d->fields[i];
            bool oneof = (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
            if (oneof != (pass == 1))
                continue;
            const json_t *fv = field_value(obj, f);
            if (!fv)
                continue;
            int rc = dec_field(c, f, fv, msg);
            if (rc)
                return rc;
        }
    }
    return 0;
}

void pbjson_reader_init(struct pbjson_reader *r, const void *buf, size_t len)
{
    memset(r, 0, sizeof *r);
    r->buf = buf;
    r->len = len;
}

int pbjson_read(struct pbjson_reader *r, const ProtobufCMessageDescriptor *desc,
                ProtobufCMessage **out, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = 0;
    if (!out)
        return PBJSON_ERR_INVAL;
    *out = NULL;
    if (!r || !desc || desc->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
        return PBJSON_ERR_INVAL;
    pbjson_init_alloc();
    if (r->failed) {
        snprintf(err, errlen, "%s", r->failmsg);
        return r->failed;
    }
    struct gj_doc doc;
    int rc = gj_read(r->buf, r->len, &r->pos, &doc, err, errlen);
    if (rc == PBJSON_ERR_SYNTAX) {
        r->failed = rc;
        snprintf(r->failmsg, sizeof r->failmsg, "%s", err);
    }
    if (rc)
        return rc;
    ProtobufCMessage *msg = message_new(desc);
    if (!msg) {
        gj_doc_free(&doc);
        snprintf(err, errlen, "out of memory");
        return PBJSON_ERR_NOMEM;
    }
    struct dctx c = {.doc = &doc, .err = err, .errlen = errlen};
    rc = dec_message(&c, desc, doc.root, msg);
    gj_doc_free(&doc);
    if (rc) {
        protobuf_c_message_free_unpacked(msg, &metcd_pb_allocator);
        return rc;
    }
    *out = msg;
    return 0;
}

int pbjson_decode(const ProtobufCMessageDescriptor *desc, const void *buf, size_t len,
                  ProtobufCMessage **out, char *err, size_t errlen)
{
    struct pbjson_reader r;
    pbjson_reader_init(&r, buf, len);
    int rc = pbjson_read(&r, desc, out, err, errlen);
    if (rc != PBJSON_EOF)
        return rc;
    *out = message_new(desc);
    if (!*out) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return PBJSON_ERR_NOMEM;
    }
    if (err && errlen)
        err[0] = 0;
    return 0;
}

const char *pbjson_strerror(int err)
{
    switch (err) {
    case PBJSON_OK: return "success";
    case PBJSON_ERR_NOMEM: return "out of memory";
    case PBJSON_ERR_INVAL: return "invalid argument";
    case PBJSON_ERR_SYNTAX: return "malformed JSON";
    case PBJSON_ERR_VALUE: return "JSON value does not fit the message";
    case PBJSON_EOF: return "no JSON value";
    default: return "unknown pbjson error";
    }
}
