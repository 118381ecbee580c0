/* tools/metcdctl/cmd_mirror.c - etcdctl 3.4's make-mirror:
 *
 *   make-mirror [--prefix P] [--dest-prefix D | --no-dest-prefix]
 *               [--dest-cert F --dest-key F --dest-cacert F]
 *               [--dest-insecure-transport] <destination>
 *
 * As clientv3/mirror's Syncer: copies the keys under the prefix as of one
 * revision (ranges of 1000, key order), then watches from the next
 * revision and replays each revision's events on the destination as one
 * Txn. The first occurrence of the prefix in each key is replaced by the
 * destination prefix (the prefix itself unless --no-dest-prefix). Every 30
 * seconds it prints how many keys it has mirrored so far. Runs until
 * killed or an error (printed, exit 1). */
#include "tools/metcdctl/ctl.h"

#include "common/mem.h"
#include "server/etcdserverpb/rpc.pb-c.h"
#include "server/rpc/rpc.h"

#include <event2/event.h>
#include <inttypes.h>
#include <string.h>

#define MIRROR_BATCH 1000
#define MIRROR_REPORT_SECS 30

struct mirror {
    struct ctl *src;
    struct ctl dst;
    const char *prefix, *dest_prefix;
    int64_t total;
    int rc; /* set when the watch ends the run */
    bool done;
};

/* strings.Replace(key, prefix, dest, 1): a new buffer (metcd_free). */
static int mod_key(const struct mirror *m, ProtobufCBinaryData key, ProtobufCBinaryData *out)
{
    size_t pl = strlen(m->prefix), dl = strlen(m->dest_prefix);
    size_t at = key.len + 1; /* not found */
    if (pl == 0) {
        at = 0;
    } else {
        for (size_t i = 0; i + pl <= key.len; i++)
            if (!memcmp(key.data + i, m->prefix, pl)) {
                at = i;
                break;
            }
    }
    size_t n = at > key.len ? key.len : key.len - pl + dl;
    uint8_t *b = metcd_malloc(n + 1);
    if (!b)
        return -1;
    if (at > key.len) {
        memcpy(b, key.data, key.len);
    } else {
        memcpy(b, key.data, at);
        memcpy(b + at, m->dest_prefix, dl);
        memcpy(b + at + dl, key.data + at + pl, key.len - at - pl);
    }
    *out = (ProtobufCBinaryData){n, b};
    return 0;
}

static int put_dest(struct mirror *m, const Mvccpb__KeyValue *kv)
{
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
    if (mod_key(m, kv->key, &req.key) != 0)
        return ctl_fail(m->src, CTL_EXIT_ERROR, "out of memory");
    req.value = kv->value;
    ProtobufCMessage *resp;
    int rc = ctl_unary(&m->dst, "/etcdserverpb.KV/Put", &req.base,
                       &etcdserverpb__put_response__descriptor, &resp);
    metcd_free(req.key.data);
    if (rc == 0)
        protobuf_c_message_free_unpacked(resp, &metcd_pb_allocator);
    return rc;
}

/* The Syncer's range: the prefix, or every key from "\0". */
static void sync_range(const struct mirror *m, ProtobufCBinaryData *key, ProtobufCBinaryData *end,
                       uint8_t *endbuf)
{
    static uint8_t zero[1] = {0};
    size_t pl = strlen(m->prefix);
    if (!pl) {
        *key = (ProtobufCBinaryData){1, zero};
        *end = (ProtobufCBinaryData){1, zero};
        return;
    }
    *key = (ProtobufCBinaryData){pl, (uint8_t *)m->prefix};
    for (size_t i = pl; i-- > 0;)
        if ((uint8_t)m->prefix[i] < 0xff) {
            memcpy(endbuf, m->prefix, i);
            endbuf[i] = (uint8_t)((uint8_t)m->prefix[i] + 1);
            *end = (ProtobufCBinaryData){i + 1, endbuf};
            return;
        }
    *end = (ProtobufCBinaryData){1, zero};
}

/* SyncBase: copies the range as of its current revision; *rev gets it. */
static int sync_base(struct mirror *m, uint8_t *endbuf, int64_t *rev)
{
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key = (ProtobufCBinaryData){3, (uint8_t *)"foo"};
    ProtobufCMessage *resp;
    int rc = ctl_unary(m->src, "/etcdserverpb.KV/Range", &req.base,
                       &etcdserverpb__range_response__descriptor, &resp);
    if (rc != 0)
        return rc;
    Etcdserverpb__RangeResponse *r = (Etcdserverpb__RangeResponse *)resp;
    *rev = r->header ? r->header->revision : 0;
    protobuf_c_message_free_unpacked(resp, &metcd_pb_allocator);

    ProtobufCBinaryData end;
    sync_range(m, &req.key, &end, endbuf);
    req.range_end = end;
    req.limit = MIRROR_BATCH;
    req.revision = *rev;
    req.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
    req.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY;
    uint8_t *next = NULL;
    for (;;) {
        rc = ctl_unary(m->src, "/etcdserverpb.KV/Range", &req.base,
                       &etcdserverpb__range_response__descriptor, &resp);
        if (rc != 0)
            break;
        r = (Etcdserverpb__RangeResponse *)resp;
        for (size_t i = 0; i < r->n_kvs && rc == 0; i++)
            if ((rc = put_dest(m, r->kvs[i])) == 0)
                m->total++;
        bool more = r->more && r->n_kvs > 0;
        if (rc == 0 && more) {
            /* next batch from the last key + "\0" */
            const ProtobufCBinaryData *last = &r->kvs[r->n_kvs - 1]->key;
            uint8_t *k = metcd_malloc(last->len + 1);
            if (!k) {
                rc = ctl_fail(m->src, CTL_EXIT_ERROR, "out of memory");
            } else {
                memcpy(k, last->data, last->len);
                k[last->len] = 0;
                metcd_free(next);
                next = k;
                req.key = (ProtobufCBinaryData){last->len + 1, k};
            }
        }
        protobuf_c_message_free_unpacked(resp, &metcd_pb_allocator);
        if (rc != 0 || !more)
            break;
    }
    metcd_free(next);
    return rc;
}

/* Replays ops (one revision's events) on the destination as one Txn. */
static int flush_txn(struct mirror *m, Etcdserverpb__RequestOp **ops, size_t n)
{
    if (!n)
        return 0;
    Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
    req.success = ops;
    req.n_success = n;
    ProtobufCMessage *resp;
    int rc = ctl_unary(&m->dst, "/etcdserverpb.KV/Txn", &req.base,
                       &etcdserverpb__txn_response__descriptor, &resp);
    if (rc == 0)
        protobuf_c_message_free_unpacked(resp, &metcd_pb_allocator);
    return rc;
}

struct op_slot {
    Etcdserverpb__RequestOp op;
    Etcdserverpb__PutRequest put;
    Etcdserverpb__DeleteRangeRequest del;
    Etcdserverpb__RequestOp *ptr;
};

static int replay(struct mirror *m, const Etcdserverpb__WatchResponse *w)
{
    if (!w->n_events)
        return 0;
    struct op_slot *s = metcd_calloc(w->n_events, sizeof(*s));
    Etcdserverpb__RequestOp **ops = metcd_calloc(w->n_events, sizeof(*ops));
    if (!s || !ops) {
        metcd_free(s);
        metcd_free(ops);
        return ctl_fail(m->src, CTL_EXIT_ERROR, "out of memory");
    }
    int rc = 0;
    size_t n = 0, first = 0, made = 0;
    int64_t last_rev = 0;
    for (size_t i = 0; i < w->n_events && rc == 0; i++) {
        const Mvccpb__Event *ev = w->events[i];
        int64_t rev = ev->kv ? ev->kv->mod_revision : 0;
        if (last_rev && rev > last_rev) {
            rc = flush_txn(m, ops + first, n - first);
            first = n;
            if (rc != 0)
                break;
        }
        last_rev = rev;
        struct op_slot *o = &s[made];
        ProtobufCBinaryData key;
        if (mod_key(m, ev->kv->key, &key) != 0) {
            rc = ctl_fail(m->src, CTL_EXIT_ERROR, "out of memory");
            break;
        }
        made++;
        o->op = (Etcdserverpb__RequestOp)ETCDSERVERPB__REQUEST_OP__INIT;
        if (ev->type == MVCCPB__EVENT__EVENT_TYPE__PUT) {
            o->put = (Etcdserverpb__PutRequest)ETCDSERVERPB__PUT_REQUEST__INIT;
            o->put.key = key;
            o->put.value = ev->kv->value;
            o->op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
            o->op.request_put = &o->put;
        } else {
            o->del = (Etcdserverpb__DeleteRangeRequest)ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
            o->del.key = key;
            o->op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
            o->op.request_delete_range = &o->del;
        }
        ops[n++] = &o->op;
        m->total++;
    }
    if (rc == 0)
        rc = flush_txn(m, ops + first, n - first);
    for (size_t i = 0; i < made; i++)
        metcd_free(s[i].op.request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT
                       ? s[i].put.key.data
                       : s[i].del.key.data);
    metcd_free(s);
    metcd_free(ops);
    return rc;
}

static void on_watch_message(struct rpc_ccall *call, const ProtobufCMessage *msg, void *data)
{
    (void)call;
    struct mirror *m = data;
    const Etcdserverpb__WatchResponse *w = (const Etcdserverpb__WatchResponse *)msg;
    if (m->done)
        return;
    if (w->compact_revision != 0) {
        m->rc = ctl_fail(m->src, CTL_EXIT_ERROR,
                         "etcdserver: mvcc: required revision has been compacted");
    } else {
        m->rc = replay(m, w);
    }
    if (m->rc != 0) {
        m->done = true;
        event_base_loopbreak(m->src->base);
    }
}

static void on_watch_close(struct rpc_ccall *call, enum rpc_code code, const char *msg, void *data)
{
    (void)call;
    struct mirror *m = data;
    if (!m->done)
        m->rc = ctl_fail(m->src, CTL_EXIT_ERROR, "%s", msg && msg[0] ? msg : rpc_code_name(code));
    m->done = true;
    event_base_loopbreak(m->src->base);
}

static const struct rpc_ccall_ops watch_ops = {
    .on_message = on_watch_message,
    .on_close = on_watch_close,
};

static void on_report(evutil_socket_t fd, short what, void *data)
{
    (void)fd;
    (void)what;
    struct mirror *m = data;
    fprintf(m->src->out, "%" PRId64 "\n", m->total);
    fflush(m->src->out);
}

static int sync_updates(struct mirror *m, uint8_t *endbuf, int64_t rev)
{
    struct ctl *c = m->src;
    Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    sync_range(m, &cr.key, &cr.range_end, endbuf);
    cr.start_revision = rev + 1;
    Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
    req.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    req.create_request = &cr;
    size_t n_md;
    const struct rpc_md *md = ctl_md(c, &n_md);
    struct rpc_ccall *call;
    int rc = rpc_ccall_start(c->client, "/etcdserverpb.Watch/Watch",
                             &etcdserverpb__watch_response__descriptor, md, n_md, 0, &watch_ops, m,
                             &call);
    if (rc != 0)
        return ctl_fail(c, CTL_EXIT_ERROR, "%s", rpc_strerror(rc));
    if (rpc_ccall_send(call, &req.base) != 0) {
        m->done = true;
        rpc_ccall_cancel(call);
        return ctl_fail(c, CTL_EXIT_ERROR, "watch request not sent");
    }
    while (!m->done)
        if (event_base_loop(c->base, 0) != 0)
            break;
    return m->rc;
}

static int cmd_make_mirror(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "make-mirror takes one destination argument");
    struct mirror m = {.src = c, .prefix = ctl_str(a, "prefix")};
    ctl_defaults(&m.dst);
    m.dst.out = c->out;
    m.dst.err = c->err;
    m.dst.in = c->in;
    m.dst.dial_timeout_ms = c->dial_timeout_ms;
    m.dst.command_timeout_ms = c->command_timeout_ms;
    m.dst.cert = ctl_str(a, "dest-cert");
    m.dst.key = ctl_str(a, "dest-key");
    m.dst.cacert = ctl_str(a, "dest-cacert");
    m.dst.insecure_transport = ctl_bool(a, "dest-insecure-transport");
    if (ctl_set_endpoints(&m.dst, a->pos[0]) != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "bad destination %s", a->pos[0]);
    int rc = ctl_connect(&m.dst);
    if (rc == 0)
        rc = ctl_connect(c);
    if (rc != 0) {
        ctl_close(&m.dst);
        return rc;
    }
    struct event *report = event_new(c->base, -1, EV_PERSIST, on_report, &m);
    struct timeval every = {.tv_sec = MIRROR_REPORT_SECS};
    if (!report || event_add(report, &every) != 0) {
        if (report)
            event_free(report);
        ctl_close(&m.dst);
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    }
    const char *dp = ctl_str(a, "dest-prefix");
    bool no_dp = ctl_bool(a, "no-dest-prefix");
    uint8_t *endbuf = metcd_malloc(strlen(m.prefix) + 1);
    int64_t rev = 0;
    if (!endbuf) {
        rc = ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
        goto out;
    }
    if (no_dp && dp[0]) {
        rc = ctl_fail(c, CTL_EXIT_BAD_ARGS,
                      "`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, "
                      "choose one");
        goto out;
    }
    m.dest_prefix = no_dp ? "" : dp[0] ? dp : m.prefix;
    if ((rc = sync_base(&m, endbuf, &rev)) == 0)
        rc = sync_updates(&m, endbuf, rev);
out:
    metcd_free(endbuf);
    event_free(report);
    ctl_close(&m.dst);
    return rc;
}

static const struct ctl_flag mirror_flags[] = {
    {"prefix", 0, CTL_FLAG_STRING, "", "Key-value prefix to mirror"},
    {"dest-prefix", 0, CTL_FLAG_STRING, "",
     "destination prefix to mirror a prefix to a different prefix in the destination cluster"},
    {"no-dest-prefix", 0, CTL_FLAG_BOOL, "false",
     "mirror key-values to the root of the destination cluster"},
    {"dest-cert", 0, CTL_FLAG_STRING, "",
     "Identify secure client using this TLS certificate file for the destination cluster"},
    {"dest-key", 0, CTL_FLAG_STRING, "", "Identify secure client using this TLS key file"},
    {"dest-cacert", 0, CTL_FLAG_STRING, "",
     "Verify certificates of TLS enabled secure servers using this CA bundle"},
    {"dest-insecure-transport", 0, CTL_FLAG_BOOL, "true",
     "Disable transport security for client connections"},
};

const struct ctl_cmd ctl_cmd_make_mirror = {
    .name = "make-mirror",
    .use = "make-mirror [options] <destination>",
    .summary = "Makes a mirror at the destination etcd cluster",
    .flags = mirror_flags,
    .n_flags = 7,
    .run = cmd_make_mirror,
};
