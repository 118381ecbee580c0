/* tools/metcdctl/cmd_kv.c - etcdctl 3.4's key-value commands: get, put,
 * del, compaction (etcdctl/ctlv3/command/{get,put,del,compaction}_command.go
 * for the flags, argument checks, messages and exit codes), and the
 * printing of their responses that txn shares (kv.h):
 *
 *   simple    get: key and value lines (--hex: \xNN bytes,
 *             --print-value-only: values alone); put: "OK" and the
 *             previous pair; del: the count and the deleted pairs;
 *             txn: SUCCESS/FAILURE, then a blank line before each result;
 *   fields    printer_fields.go's "Name" : value lines;
 *   json      Go's encoding/json of the response message;
 *   protobuf  its wire bytes;
 *   table     not supported: etcdctl fails after the call. */
#include "tools/metcdctl/kv.h"

#include "common/mem.h"

#include <inttypes.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Request memory                                                           */

void *kv_alloc(struct kv_mem *m, size_t n)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        void **p = metcd_realloc(m->p, cap * sizeof(*p));
        if (!p)
            return NULL;
        m->p = p;
        m->cap = cap;
    }
    void *p = metcd_calloc(1, n ? n : 1);
    if (p)
        m->p[m->n++] = p;
    return p;
}

void kv_mem_free(struct kv_mem *m)
{
    for (size_t i = 0; i < m->n; i++)
        metcd_free(m->p[i]);
    metcd_free(m->p);
    m->p = NULL;
    m->n = m->cap = 0;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */

static ProtobufCBinaryData str_bytes(const char *s)
{
    ProtobufCBinaryData b = {strlen(s), (uint8_t *)s};
    return b;
}

static const uint8_t zero_byte[1] = {0};

/* clientv3's prefix range end: the key with its last byte below 0xff
 * incremented and the rest dropped; "\0" (every key) when there is none. */
static int prefix_end(struct ctl *c, struct kv_mem *m, ProtobufCBinaryData key,
                      ProtobufCBinaryData *end)
{
    for (size_t i = key.len; i-- > 0;) {
        if (key.data[i] == 0xff)
            continue;
        uint8_t *e = kv_alloc(m, i + 1);
        if (!e)
            return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
        memcpy(e, key.data, i + 1);
        e[i]++;
        end->data = e;
        end->len = i + 1;
        return 0;
    }
    end->data = (uint8_t *)zero_byte;
    end->len = 1;
    return 0;
}

/* The range both get and del build from key, [range_end], --prefix and
 * --from-key (the caller has checked the combination). */
static int key_range(struct ctl *c, struct kv_mem *m, const struct ctl_args *a, bool prefix,
                     bool from_key, ProtobufCBinaryData *key, ProtobufCBinaryData *end)
{
    *key = str_bytes(a->pos[0]);
    if (a->n_pos > 1)
        *end = str_bytes(a->pos[1]);
    if ((prefix || from_key) && key->len == 0) {
        key->data = (uint8_t *)zero_byte;
        key->len = 1;
        end->data = (uint8_t *)zero_byte;
        end->len = 1;
        return 0;
    }
    if (prefix)
        return prefix_end(c, m, *key, end);
    if (from_key) {
        end->data = (uint8_t *)zero_byte;
        end->len = 1;
    }
    return 0;
}

static void upper(char *dst, size_t len, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++)
        dst[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 'a' + 'A' : s[i]);
    dst[i] = 0;
}

int kv_get_op(struct ctl *c, struct kv_mem *m, const struct ctl_args *a,
              Etcdserverpb__RangeRequest *r)
{
    if (a->n_pos == 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "get command needs one argument as key and an "
                                              "optional argument as range_end");
    bool prefix = ctl_bool(a, "prefix"), from_key = ctl_bool(a, "from-key");
    if (prefix && from_key)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "`--prefix` and `--from-key` cannot be set at the "
                                              "same time, choose one");
    const char *cons = ctl_str(a, "consistency");
    if (!strcmp(cons, "s")) {
        r->serializable = true;
    } else if (strcmp(cons, "l") != 0) {
        fputs("Error: unknown consistency flag ", c->err);
        ctl_go_quote(c->err, cons, strlen(cons));
        fputc('\n', c->err);
        return CTL_EXIT_BAD_FEATURE;
    }
    if (a->n_pos > 1 && (prefix || from_key))
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "too many arguments, only accept one argument when "
                                              "`--prefix` or `--from-key` is set");
    r->limit = ctl_int(a, "limit");
    int64_t rev = ctl_int(a, "rev");
    if (rev > 0)
        r->revision = rev;
    char buf[64];
    const char *order = ctl_str(a, "order");
    upper(buf, sizeof(buf), order);
    if (!strcmp(buf, "ASCEND"))
        r->sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
    else if (!strcmp(buf, "DESCEND"))
        r->sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
    else if (buf[0] || strlen(order) >= sizeof(buf))
        return ctl_fail(c, CTL_EXIT_BAD_FEATURE, "bad sort order %s", order);
    static const struct {
        const char *name;
        Etcdserverpb__RangeRequest__SortTarget t;
    } targets[] = {
        {"CREATE", ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE},
        {"KEY", ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY},
        {"MODIFY", ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__MOD},
        {"VALUE", ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VALUE},
        {"VERSION", ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VERSION},
    };
    const char *by = ctl_str(a, "sort-by");
    upper(buf, sizeof(buf), by);
    bool known = !buf[0] && strlen(by) < sizeof(buf);
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]) && !known; i++)
        if (!strcmp(buf, targets[i].name)) {
            r->sort_target = targets[i].t;
            known = true;
        }
    if (!known)
        return ctl_fail(c, CTL_EXIT_BAD_FEATURE, "bad sort target %s", by);
    /* clientv3.WithSort: ascending by key is the server's own order */
    if (r->sort_target == ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY &&
        r->sort_order == ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND)
        r->sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE;
    int rc = key_range(c, m, a, prefix, from_key, &r->key, &r->range_end);
    if (rc != 0)
        return rc;
    r->keys_only = ctl_bool(a, "keys-only");
    return 0;
}

/* strconv.ParseInt(s, 16, 64); 0 or -1 with Go's error text in err. */
static int parse_hex_i64(const char *s, int64_t *out, char *err, size_t errlen)
{
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    const char *why = NULL;
    uint64_t v = 0;
    if (!*p)
        why = "invalid syntax";
    for (; *p && !why; p++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')
            d = (*p | 0x20) - 'a' + 10;
        else {
            why = "invalid syntax";
            break;
        }
        if (v >> 60) {
            why = "value out of range";
            break;
        }
        v = v * 16 + (uint64_t)d;
    }
    if (!why && (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX))
        why = "value out of range";
    if (why) {
        snprintf(err, errlen, "strconv.ParseInt: parsing \"%s\": %s", s, why);
        return -1;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* ioutil.ReadAll of the standard input into m. */
static int read_all(FILE *in, struct kv_mem *m, ProtobufCBinaryData *out)
{
    size_t cap = 4096, len = 0;
    uint8_t *buf = metcd_malloc(cap);
    if (!buf)
        return -1;
    for (;;) {
        if (len == cap) {
            uint8_t *n = metcd_realloc(buf, cap * 2);
            if (!n) {
                metcd_free(buf);
                return -1;
            }
            buf = n;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, in);
        len += got;
        if (got == 0)
            break;
    }
    uint8_t *keep = kv_alloc(m, len);
    if (!keep) {
        metcd_free(buf);
        return -1;
    }
    memcpy(keep, buf, len);
    metcd_free(buf);
    out->data = keep;
    out->len = len;
    return 0;
}

int kv_put_op(struct ctl *c, struct kv_mem *m, const struct ctl_args *a, bool in_txn,
              Etcdserverpb__PutRequest *r)
{
    static const char need[] = "put command needs 1 argument and input from stdin or 2 arguments";
    if (a->n_pos == 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "%s", need);
    r->key = str_bytes(a->pos[0]);
    r->ignore_value = ctl_bool(a, "ignore-value");
    if (r->ignore_value && a->n_pos > 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "put command needs only 1 argument when 'ignore-value' is set");
    if (!r->ignore_value) {
        if (a->n_pos > 1)
            r->value = str_bytes(a->pos[1]);
        else if (in_txn || read_all(c->in, m, &r->value) != 0 || r->value.len == 0)
            return ctl_fail(c, CTL_EXIT_BAD_ARGS, "%s", need);
    }
    char err[256];
    if (parse_hex_i64(ctl_str(a, "lease"), &r->lease, err, sizeof(err)) != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "bad lease ID (%s), expecting ID in Hex", err);
    r->prev_kv = ctl_bool(a, "prev-kv");
    r->ignore_lease = ctl_bool(a, "ignore-lease");
    return 0;
}

int kv_del_op(struct ctl *c, struct kv_mem *m, const struct ctl_args *a,
              Etcdserverpb__DeleteRangeRequest *r)
{
    if (a->n_pos == 0 || a->n_pos > 2)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "del command needs one argument as key and an "
                                              "optional argument as range_end");
    bool prefix = ctl_bool(a, "prefix"), from_key = ctl_bool(a, "from-key");
    if (prefix && from_key)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "`--prefix` and `--from-key` cannot be set at the "
                                              "same time, choose one");
    if (a->n_pos > 1 && (prefix || from_key))
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "too many arguments, only accept one argument when "
                                              "`--prefix` or `--from-key` is set");
    r->prev_kv = ctl_bool(a, "prev-kv");
    return key_range(c, m, a, prefix, from_key, &r->key, &r->range_end);
}

/* ------------------------------------------------------------------------ */
/* Printing                                                                 */

static void print_range(struct ctl *c, const Etcdserverpb__RangeResponse *r, bool value_only)
{
    if (c->format == CTL_FORMAT_SIMPLE) {
        for (size_t i = 0; i < r->n_kvs; i++)
            ctl_simple_kv(c, r->kvs[i], value_only);
        return;
    }
    ctl_fields_header(c, &r->header->base);
    for (size_t i = 0; i < r->n_kvs; i++)
        ctl_fields_kv(c, "", r->kvs[i]);
    fprintf(c->out, "\"More\" : %s\n\"Count\" : %" PRId64 "\n", r->more ? "true" : "false",
            r->count);
}

static void print_put(struct ctl *c, const Etcdserverpb__PutResponse *r)
{
    if (c->format == CTL_FORMAT_SIMPLE) {
        fputs("OK\n", c->out);
        if (r->prev_kv)
            ctl_simple_kv(c, r->prev_kv, false);
        return;
    }
    ctl_fields_header(c, &r->header->base);
    if (r->prev_kv)
        ctl_fields_kv(c, "Prev", r->prev_kv);
}

static void print_del(struct ctl *c, const Etcdserverpb__DeleteRangeResponse *r)
{
    if (c->format == CTL_FORMAT_SIMPLE)
        fprintf(c->out, "%" PRId64 "\n", r->deleted);
    else {
        ctl_fields_header(c, &r->header->base);
        fprintf(c->out, "\"Deleted\" : %" PRId64 "\n", r->deleted);
    }
    for (size_t i = 0; i < r->n_prev_kvs; i++) {
        if (c->format == CTL_FORMAT_SIMPLE)
            ctl_simple_kv(c, r->prev_kvs[i], false);
        else
            ctl_fields_kv(c, "Prev", r->prev_kvs[i]);
    }
}

static void print_txn(struct ctl *c, const Etcdserverpb__TxnResponse *r)
{
    bool simple = c->format == CTL_FORMAT_SIMPLE;
    if (simple) {
        fputs(r->succeeded ? "SUCCESS\n" : "FAILURE\n", c->out);
    } else {
        ctl_fields_header(c, &r->header->base);
        fprintf(c->out, "\"Succeeded\" : %s\n", r->succeeded ? "true" : "false");
    }
    for (size_t i = 0; i < r->n_responses; i++) {
        const Etcdserverpb__ResponseOp *op = r->responses[i];
        if (simple)
            fputc('\n', c->out);
        switch (op->response_case) {
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE:
            print_range(c, op->response_range, false);
            break;
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
            print_put(c, op->response_put);
            break;
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
            print_del(c, op->response_delete_range);
            break;
        default: /* etcdctl's txn never asks for a nested txn */
            break;
        }
    }
}

int kv_display(struct ctl *c, const ProtobufCMessage *resp, bool value_only)
{
    switch (c->format) {
    case CTL_FORMAT_JSON:
        ctl_print_json(c, resp);
        return 0;
    case CTL_FORMAT_PROTOBUF:
        return ctl_print_protobuf(c, resp);
    case CTL_FORMAT_TABLE:
        return ctl_fail(c, CTL_EXIT_BAD_FEATURE, "table not supported as output format");
    default:
        break;
    }
    const ProtobufCMessageDescriptor *d = resp->descriptor;
    if (d == &etcdserverpb__range_response__descriptor)
        print_range(c, (const Etcdserverpb__RangeResponse *)resp, value_only);
    else if (d == &etcdserverpb__put_response__descriptor)
        print_put(c, (const Etcdserverpb__PutResponse *)resp);
    else if (d == &etcdserverpb__delete_range_response__descriptor)
        print_del(c, (const Etcdserverpb__DeleteRangeResponse *)resp);
    else
        print_txn(c, (const Etcdserverpb__TxnResponse *)resp);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Commands                                                                 */

static int call_and_print(struct ctl *c, const char *path, const ProtobufCMessage *req,
                          const ProtobufCMessageDescriptor *desc, bool value_only)
{
    ProtobufCMessage *resp;
    int rc = ctl_unary(c, path, req, desc, &resp);
    if (rc != 0)
        return rc;
    if (value_only && c->format != CTL_FORMAT_SIMPLE)
        rc = ctl_fail(c, CTL_EXIT_BAD_ARGS, "print-value-only is only for `--write-out=simple`");
    else
        rc = kv_display(c, resp, value_only);
    protobuf_c_message_free_unpacked(resp, &metcd_pb_allocator);
    return rc;
}

static int cmd_get(struct ctl *c, const struct ctl_args *a)
{
    struct kv_mem m = {0};
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    int rc = kv_get_op(c, &m, a, &req);
    if (rc == 0)
        rc = call_and_print(c, "/etcdserverpb.KV/Range", &req.base,
                            &etcdserverpb__range_response__descriptor,
                            ctl_bool(a, "print-value-only"));
    kv_mem_free(&m);
    return rc;
}

static int cmd_put(struct ctl *c, const struct ctl_args *a)
{
    struct kv_mem m = {0};
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
    int rc = kv_put_op(c, &m, a, false, &req);
    if (rc == 0)
        rc = call_and_print(c, "/etcdserverpb.KV/Put", &req.base,
                            &etcdserverpb__put_response__descriptor, false);
    kv_mem_free(&m);
    return rc;
}

static int cmd_del(struct ctl *c, const struct ctl_args *a)
{
    struct kv_mem m = {0};
    Etcdserverpb__DeleteRangeRequest req = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    int rc = kv_del_op(c, &m, a, &req);
    if (rc == 0)
        rc = call_and_print(c, "/etcdserverpb.KV/DeleteRange", &req.base,
                            &etcdserverpb__delete_range_response__descriptor, false);
    kv_mem_free(&m);
    return rc;
}

static int cmd_compaction(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "compaction command needs 1 argument");
    Etcdserverpb__CompactionRequest req = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
    char err[256];
    if (ctl_go_parse_int(a->pos[0], &req.revision, err, sizeof(err)) != 0)
        return ctl_fail(c, CTL_EXIT_ERROR, "%s", err);
    req.physical = ctl_bool(a, "physical");
    ProtobufCMessage *resp;
    int rc = ctl_unary(c, "/etcdserverpb.KV/Compact", &req.base,
                       &etcdserverpb__compaction_response__descriptor, &resp);
    if (rc != 0)
        return rc;
    protobuf_c_message_free_unpacked(resp, &metcd_pb_allocator);
    fprintf(c->out, "compacted revision %" PRId64 "\n", req.revision);
    return 0;
}

static const struct ctl_flag get_flags[] = {
    {"consistency", 0, CTL_FLAG_STRING, "l", "Linearizable(l) or Serializable(s)"},
    {"order", 0, CTL_FLAG_STRING, "", "Order of results; ASCEND or DESCEND (ASCEND by default)"},
    {"sort-by", 0, CTL_FLAG_STRING, "", "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION"},
    {"limit", 0, CTL_FLAG_INT, "0", "Maximum number of results"},
    {"prefix", 0, CTL_FLAG_BOOL, "false", "Get keys with matching prefix"},
    {"from-key", 0, CTL_FLAG_BOOL, "false",
     "Get keys that are greater than or equal to the given key using byte compare"},
    {"rev", 0, CTL_FLAG_INT, "0", "Specify the kv revision"},
    {"keys-only", 0, CTL_FLAG_BOOL, "false", "Get only the keys"},
    {"print-value-only", 0, CTL_FLAG_BOOL, "false",
     "Only write values when using the \"simple\" output format"},
};

static const struct ctl_flag put_flags[] = {
    {"lease", 0, CTL_FLAG_STRING, "0", "lease ID (in hexadecimal) to attach to the key"},
    {"prev-kv", 0, CTL_FLAG_BOOL, "false",
     "return the previous key-value pair before modification"},
    {"ignore-value", 0, CTL_FLAG_BOOL, "false", "updates the key using its current value"},
    {"ignore-lease", 0, CTL_FLAG_BOOL, "false", "updates the key using its current lease"},
};

static const struct ctl_flag del_flags[] = {
    {"prefix", 0, CTL_FLAG_BOOL, "false", "delete keys with matching prefix"},
    {"prev-kv", 0, CTL_FLAG_BOOL, "false", "return deleted key-value pairs"},
    {"from-key", 0, CTL_FLAG_BOOL, "false",
     "delete keys that are greater than or equal to the given key using byte compare"},
};

static const struct ctl_flag compaction_flags[] = {
    {"physical", 0, CTL_FLAG_BOOL, "false",
     "'true' to wait for compaction to physically remove all old revisions"},
};

const struct ctl_cmd ctl_cmd_get = {
    .name = "get",
    .use = "get [options] <key> [range_end]",
    .summary = "Gets the key or a range of keys",
    .flags = get_flags,
    .n_flags = sizeof(get_flags) / sizeof(get_flags[0]),
    .run = cmd_get,
};

const struct ctl_cmd ctl_cmd_put = {
    .name = "put",
    .use = "put [options] <key> <value> (<value> can also be given from stdin)",
    .summary = "Puts the given key into the store",
    .description =
        "Puts the given key into the store.\n\n"
        "When <value> begins with '-', <value> is interpreted as a flag.\n"
        "Insert '--' for workaround:\n\n"
        "$ put <key> -- <value>\n"
        "$ put -- <key> <value>\n\n"
        "If <value> isn't given as a command line argument and '--ignore-value' is not "
        "specified,\nthis command tries to read the value from standard input.\n\n"
        "If <lease> isn't given as a command line argument and '--ignore-lease' is not "
        "specified,\nthis command tries to read the value from standard input.\n\n"
        "For example,\n$ cat file | put <key>\nwill store the content of the file to <key>.\n",
    .flags = put_flags,
    .n_flags = sizeof(put_flags) / sizeof(put_flags[0]),
    .run = cmd_put,
};

const struct ctl_cmd ctl_cmd_del = {
    .name = "del",
    .use = "del [options] <key> [range_end]",
    .summary = "Removes the specified key or range of keys [key, range_end)",
    .flags = del_flags,
    .n_flags = sizeof(del_flags) / sizeof(del_flags[0]),
    .run = cmd_del,
};

const struct ctl_cmd ctl_cmd_compaction = {
    .name = "compaction",
    .use = "compaction [options] <revision>",
    .summary = "Compacts the event history in etcd",
    .flags = compaction_flags,
    .n_flags = 1,
    .run = cmd_compaction,
};
