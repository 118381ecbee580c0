/* server/pbjson/encode.c - protobuf-c messages into JSON as jsonpb
 * (golang/protobuf 1.3, OrigName, EmitDefaults off) writes them for etcd's
 * gateway, and the Go-style serialiser of the resulting jansson tree. */
#include "server/pbjson/internal.h"

#include "common/mem.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *enc_message(const ProtobufCMessage *msg);

static json_t *str_json(const char *s)
{
    return json_stringn_nocheck(s, strlen(s));
}

/* A float32 keeps Go's 32-bit shortest form: store the double nearest to
 * that decimal so the 64-bit writer prints the same digits. */
static json_t *float32_json(float f)
{
    char tmp[40];
    for (int prec = 0; prec < 10; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, (double)f);
        if (strtof(tmp, NULL) == f)
            break;
    }
    return json_real(strtod(tmp, NULL));
}

static json_t *enc_float(double d, bool is32)
{
    if (isnan(d))
        return str_json("NaN");
    if (isinf(d))
        return str_json(d > 0 ? "Infinity" : "-Infinity");
    return is32 ? float32_json((float)d) : json_real(d);
}

/* One value of field f stored at p (the field, or an array element). */
static json_t *enc_value(const ProtobufCFieldDescriptor *f, const void *p)
{
    char t[32];
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(t, sizeof t, "%" PRId64, *(const int64_t *)p);
        return str_json(t);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(t, sizeof t, "%" PRIu64, *(const uint64_t *)p);
        return str_json(t);
    case PROTOBUF_C_TYPE_FLOAT:
        return enc_float(*(const float *)p, true);
    case PROTOBUF_C_TYPE_DOUBLE:
        return enc_float(*(const double *)p, false);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        return ev ? str_json(ev->name) : json_integer(v); /* unknown: a bare number */
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return str_json(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bd = p;
        char *s;
        size_t n;
        if (gj_base64_encode(bd->data, bd->len, &s, &n) != 0)
            return NULL;
        json_t *j = json_stringn_nocheck(s, n);
        metcd_free(s);
        return j;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        return m ? enc_message(m) : json_null();
    }
    default:
        return NULL;
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

/* jsonpb leaves out what Go holds as a zero value. */
static bool is_zero(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return *(const uint64_t *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)p == 0;
    case PROTOBUF_C_TYPE_FLOAT: return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_BOOL: return !*(const protobuf_c_boolean *)p;
    case PROTOBUF_C_TYPE_ENUM: return *(const int *)p == 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE: return *(ProtobufCMessage *const *)p == NULL;
    default: return *(const uint32_t *)p == 0;
    }
}

static json_t *enc_message(const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)msg;
        const void *p = base + f->offset;
        json_t *v;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (n == 0)
                continue;
            const char *arr = *(char *const *)p;
            v = json_array();
            if (!v)
                goto err;
            for (size_t k = 0; k < n; k++) {
                if (json_array_append_new(v, enc_value(f, arr + k * elem_size(f))) != 0) {
                    json_decref(v);
                    goto err;
                }
            }
        } else {
            if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                    continue; /* a set member is written even when zero */
            } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
                       f->type != PROTOBUF_C_TYPE_MESSAGE &&
                       f->type != PROTOBUF_C_TYPE_STRING) {
                if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
                    continue;
            } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
                if (*(void *const *)p == NULL)
                    continue;
            } else if (f->label == PROTOBUF_C_LABEL_NONE && is_zero(f, p)) {
                continue;
            }
            v = enc_value(f, p);
        }
        if (json_object_set_new_nocheck(obj, f->name, v) != 0)
            goto err;
    }
    return obj;
err:
    json_decref(obj);
    return NULL;
}

int pbjson_encode(const ProtobufCMessage *msg, json_t **out)
{
    if (!out)
        return PBJSON_ERR_INVAL;
    *out = NULL;
    if (!msg || !msg->descriptor || msg->descriptor->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
        return PBJSON_ERR_INVAL;
    pbjson_init_alloc();
    *out = enc_message(msg);
    return *out ? 0 : PBJSON_ERR_NOMEM;
}

static void dump(struct gj_buf *b, const json_t *v)
{
    char t[32];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        gj_put(b, "{", 1);
        bool first = true;
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            if (!first)
                gj_put(b, ",", 1);
            first = false;
            gj_put_string(b, json_object_iter_key(it), json_object_iter_key_len(it));
            gj_put(b, ":", 1);
            dump(b, json_object_iter_value(it));
        }
        gj_put(b, "}", 1);
        return;
    }
    case JSON_ARRAY:
        gj_put(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                gj_put(b, ",", 1);
            dump(b, json_array_get(v, i));
        }
        gj_put(b, "]", 1);
        return;
    case JSON_STRING:
        gj_put_string(b, json_string_value(v), json_string_length(v));
        return;
    case JSON_INTEGER:
        snprintf(t, sizeof t, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        gj_put(b, t, strlen(t));
        return;
    case JSON_REAL:
        gj_put_float(b, json_real_value(v), 64);
        return;
    case JSON_TRUE:
        gj_put(b, "true", 4);
        return;
    case JSON_FALSE:
        gj_put(b, "false", 5);
        return;
    default:
        gj_put(b, "null", 4);
        return;
    }
}

int pbjson_dump(const json_t *v, char **out, size_t *len)
{
    if (!v || !out)
        return PBJSON_ERR_INVAL;
    struct gj_buf b = {0};
    dump(&b, v);
    gj_put(&b, "", 0);
    if (b.nomem) {
        metcd_free(b.p);
        *out = NULL;
        return PBJSON_ERR_NOMEM;
    }
    *out = b.p;
    if (len)
        *len = b.len;
    return 0;
}

int pbjson_encode_text(const ProtobufCMessage *msg, char **out, size_t *len)
{
    json_t *j;
    int rc = pbjson_encode(msg, &j);
    if (rc)
        return rc;
    rc = pbjson_dump(j, out, len);
    json_decref(j);
    return rc;
}
