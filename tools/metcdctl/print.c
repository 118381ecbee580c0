/* tools/metcdctl/print.c - what metcdctl's output formats share (ctl.h):
 * Go encoding/json of gogo-protobuf structs (etcdctl -w json), the wire
 * bytes of -w protobuf, Go's %q, --hex, the -w fields header and
 * tablewriter's tables. */
#include "tools/metcdctl/ctl.h"

#include "common/mem.h"
#include "mvcc/mvccpb/kv.pb-c.h"
#include "server/pbjson/pbjson.h"

#include <inttypes.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Strings                                                                  */

void ctl_json_bytes_str(FILE *out, const void *s, size_t len)
{
    char *q;
    size_t n;
    if (pbjson_go_string(s, len, &q, &n) != 0) {
        fputs("\"\"", out);
        return;
    }
    fwrite(q, 1, n, out);
    metcd_free(q);
}

void ctl_json_str(FILE *out, const char *s)
{
    ctl_json_bytes_str(out, s, strlen(s));
}

void ctl_go_quote(FILE *out, const void *s, size_t len)
{
    char *q;
    size_t n;
    if (pbjson_go_quote(s, len, &q, &n) != 0) {
        fputs("\"\"", out);
        return;
    }
    fwrite(q, 1, n, out);
    metcd_free(q);
}

void ctl_base64(FILE *out, const void *data, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *p = data;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        fputc(tab[v >> 18], out);
        fputc(tab[(v >> 12) & 63], out);
        fputc(tab[(v >> 6) & 63], out);
        fputc(tab[v & 63], out);
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        fputc(tab[v >> 18], out);
        fputc(tab[(v >> 12) & 63], out);
        fputs("==", out);
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        fputc(tab[v >> 18], out);
        fputc(tab[(v >> 12) & 63], out);
        fputc(tab[(v >> 6) & 63], out);
        fputc('=', out);
    }
}

void ctl_hex_bytes(FILE *out, const void *s, size_t len)
{
    const uint8_t *p = s;
    for (size_t i = 0; i < len; i++)
        fprintf(out, "\\x%02x", p[i]);
}

void ctl_print_bytes(struct ctl *c, const void *s, size_t len)
{
    if (c->hex)
        ctl_hex_bytes(c->out, s, len);
    else if (len) /* an empty protobuf-c bytes field has data NULL */
        fwrite(s, 1, len, c->out);
}

/* ------------------------------------------------------------------------ */
/* Go encoding/json of a gogo-protobuf struct                               */

/* A oneof is one Go struct field named after the oneof (CamelCase); the
 * protobuf-c descriptors do not keep oneof names, so etcd's are listed. */
static const char *oneof_go_name(const ProtobufCMessageDescriptor *d, const char *first_field)
{
    static const struct {
        const char *msg, *name;
    } known[] = {
        {"etcdserverpb.RequestOp", "Request"},
        {"etcdserverpb.ResponseOp", "Response"},
        {"etcdserverpb.Compare", "TargetUnion"},
        {"grpc.channelz.v1.Address", "Address"},
        {"grpc.channelz.v1.Security", "Model"},
        {"grpc.channelz.v1.Security.Tls", "CipherSuite"},
        {"grpc.channelz.v1.ChannelTraceEvent", "ChildRef"},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (!strcmp(d->name, known[i].msg))
            return known[i].name;
    (void)first_field;
    return "Oneof";
}

/* CamelCase of a .proto field name as Go's generator makes it. */
static void go_camel(FILE *out, const char *name)
{
    bool up = true;
    for (const char *p = name; *p; p++) {
        if (*p == '_') {
            up = true;
            continue;
        }
        fputc(up && *p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p, out);
        up = false;
    }
}

static void json_value(FILE *out, const ProtobufCFieldDescriptor *f, const void *p);

static bool is_zero(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return *(const uint32_t *)p == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)p == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0;
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)p;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return !s || !s[0];
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)p == NULL;
    }
    return true;
}

static void json_scalar(FILE *out, const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        fprintf(out, "%" PRId32, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        fprintf(out, "%" PRIu32, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        fprintf(out, "%" PRId64, *(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        fprintf(out, "%" PRIu64, *(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        fprintf(out, "%g", (double)*(const float *)p);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        fprintf(out, "%g", *(const double *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        fputs(*(const protobuf_c_boolean *)p ? "true" : "false", out);
        break;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        ctl_json_str(out, s ? s : "");
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        fputc('"', out);
        ctl_base64(out, b->data, b->len);
        fputc('"', out);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(const ProtobufCMessage *const *)p;
        if (m)
            ctl_json_msg(out, m);
        else
            fputs("null", out);
        break;
    }
    }
}

static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

static void json_value(FILE *out, const ProtobufCFieldDescriptor *f, const void *p)
{
    json_scalar(out, f, p);
}

void ctl_json_msg(FILE *out, const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    const char *base = (const char *)msg;
    bool first = true;
    fputc('{', out);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *p = base + f->offset;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            /* the Go field of the oneof, written where its first member is */
            bool lead = i == 0 || !(d->fields[i - 1].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
                        d->fields[i - 1].quantifier_offset != f->quantifier_offset;
            if (!lead)
                continue;
            uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);
            fprintf(out, "%s\"%s\":", first ? "" : ",", oneof_go_name(d, f->name));
            first = false;
            const ProtobufCFieldDescriptor *set = NULL;
            for (unsigned k = i; k < d->n_fields && !set; k++)
                if ((d->fields[k].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                    d->fields[k].quantifier_offset == f->quantifier_offset &&
                    d->fields[k].id == which)
                    set = &d->fields[k];
            if (!set) {
                fputs("null", out);
                continue;
            }
            fputs("{\"", out);
            go_camel(out, set->name);
            fputs("\":", out);
            json_value(out, set, base + set->offset);
            fputc('}', out);
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (n == 0)
                continue;
            const char *arr = *(const char *const *)p;
            fprintf(out, "%s\"%s\":[", first ? "" : ",", f->name);
            first = false;
            for (size_t k = 0; k < n; k++) {
                if (k)
                    fputc(',', out);
                json_value(out, f, arr + k * elem_size(f));
            }
            fputc(']', out);
            continue;
        }
        if (is_zero(f, p))
            continue;
        fprintf(out, "%s\"%s\":", first ? "" : ",", f->name);
        first = false;
        json_value(out, f, p);
    }
    fputc('}', out);
}

void ctl_print_json(struct ctl *c, const ProtobufCMessage *msg)
{
    ctl_json_msg(c->out, msg);
    fputc('\n', c->out);
}

int ctl_print_protobuf(struct ctl *c, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = metcd_malloc(n ? n : 1);
    if (!buf)
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    protobuf_c_message_pack(msg, buf);
    fwrite(buf, 1, n, c->out);
    metcd_free(buf);
    return 0;
}

void ctl_simple_kv(struct ctl *c, const Mvccpb__KeyValue *kv, bool value_only)
{
    if (!value_only) {
        ctl_print_bytes(c, kv->key.data, kv->key.len);
        fputc('\n', c->out);
    }
    ctl_print_bytes(c, kv->value.data, kv->value.len);
    fputc('\n', c->out);
}

/* ------------------------------------------------------------------------ */
/* -w fields                                                                */

void ctl_fields_kv(struct ctl *c, const char *pfx, const Mvccpb__KeyValue *kv)
{
    fprintf(c->out, "\"%sKey\" : ", pfx);
    ctl_go_quote(c->out, kv->key.data, kv->key.len);
    fprintf(c->out,
            "\n\"%sCreateRevision\" : %" PRId64 "\n\"%sModRevision\" : %" PRId64
            "\n\"%sVersion\" : %" PRId64 "\n\"%sValue\" : ",
            pfx, kv->create_revision, pfx, kv->mod_revision, pfx, kv->version, pfx);
    ctl_go_quote(c->out, kv->value.data, kv->value.len);
    fprintf(c->out, "\n\"%sLease\" : %" PRId64 "\n", pfx, kv->lease);
}

static uint64_t field_u64(const ProtobufCMessage *m, const char *name)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    if (!f)
        return 0;
    return *(const uint64_t *)((const char *)m + f->offset);
}

void ctl_fields_header(struct ctl *c, const ProtobufCMessage *hdr)
{
    /* etcdctl prints the header's fields even when the header is nil? No:
     * it dereferences it; every response carries one. */
    uint64_t cid = hdr ? field_u64(hdr, "cluster_id") : 0;
    uint64_t mid = hdr ? field_u64(hdr, "member_id") : 0;
    int64_t rev = hdr ? (int64_t)field_u64(hdr, "revision") : 0;
    uint64_t term = hdr ? field_u64(hdr, "raft_term") : 0;
    fprintf(c->out,
            "\"ClusterID\" : %" PRIu64 "\n\"MemberID\" : %" PRIu64 "\n\"Revision\" : %" PRId64
            "\n\"RaftTerm\" : %" PRIu64 "\n",
            cid, mid, rev, term);
}

/* ------------------------------------------------------------------------ */
/* Tables (olekukonko/tablewriter as etcdctl configures it)                 */

struct ctl_table {
    size_t n_cols, n_rows, cap_rows;
    char **cells; /* (n_rows + 1) * n_cols; row 0 the headers */
};

static char *dup_upper(const char *s)
{
    char *d = metcd_strdup(s ? s : "");
    if (!d)
        return NULL;
    /* tablewriter's Title: upper case, '_' and '.' as spaces */
    for (char *p = d; *p; p++) {
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
        else if (*p == '_' || *p == '.')
            *p = ' ';
    }
    return d;
}

struct ctl_table *ctl_table_new(size_t n_cols, const char *const *headers)
{
    struct ctl_table *t = metcd_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->n_cols = n_cols;
    t->cap_rows = 8;
    t->cells = metcd_calloc((t->cap_rows + 1) * n_cols, sizeof(char *));
    if (!t->cells) {
        metcd_free(t);
        return NULL;
    }
    for (size_t i = 0; i < n_cols; i++)
        if (!(t->cells[i] = dup_upper(headers[i]))) {
            ctl_table_free(t);
            return NULL;
        }
    return t;
}

int ctl_table_row(struct ctl_table *t, const char *const *cells)
{
    if (t->n_rows == t->cap_rows) {
        size_t cap = t->cap_rows * 2;
        char **n = metcd_realloc(t->cells, (cap + 1) * t->n_cols * sizeof(char *));
        if (!n)
            return -1;
        memset(n + (t->cap_rows + 1) * t->n_cols, 0,
               (cap - t->cap_rows) * t->n_cols * sizeof(char *));
        t->cells = n;
        t->cap_rows = cap;
    }
    char **row = t->cells + (t->n_rows + 1) * t->n_cols;
    for (size_t i = 0; i < t->n_cols; i++) {
        row[i] = metcd_strdup(cells[i] ? cells[i] : "");
        if (!row[i]) {
            for (size_t k = 0; k < i; k++) {
                metcd_free(row[k]);
                row[k] = NULL;
            }
            return -1;
        }
    }
    t->n_rows++;
    return 0;
}

/* Display width: runes, not bytes. */
static size_t width_of(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xc0) != 0x80)
            w++;
    return w;
}

static void line(FILE *out, const size_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fputc('+', out);
        for (size_t k = 0; k < w[i] + 2; k++)
            fputc('-', out);
    }
    fputs("+\n", out);
}

void ctl_table_render(struct ctl_table *t, FILE *out)
{
    size_t w[32] = {0};
    size_t n = t->n_cols < 32 ? t->n_cols : 32;
    for (size_t r = 0; r <= t->n_rows; r++)
        for (size_t i = 0; i < n; i++) {
            size_t l = width_of(t->cells[r * t->n_cols + i]);
            if (l > w[i])
                w[i] = l;
        }
    line(out, w, n);
    /* headers centred: the smaller half of the gap on the left */
    for (size_t i = 0; i < n; i++) {
        const char *h = t->cells[i];
        size_t gap = w[i] - width_of(h), left = gap / 2;
        fprintf(out, "| %*s%s%*s ", (int)left, "", h, (int)(gap - left), "");
    }
    fputs("|\n", out);
    line(out, w, n);
    for (size_t r = 1; r <= t->n_rows; r++) {
        for (size_t i = 0; i < n; i++) {
            const char *s = t->cells[r * t->n_cols + i];
            fprintf(out, "| %*s%s ", (int)(w[i] - width_of(s)), "", s);
        }
        fputs("|\n", out);
    }
    line(out, w, n);
}

void ctl_table_free(struct ctl_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < (t->cap_rows + 1) * t->n_cols; i++)
        metcd_free(t->cells[i]);
    metcd_free(t->cells);
    metcd_free(t);
}
