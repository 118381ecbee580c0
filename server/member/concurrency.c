/* server/member/concurrency.c - the building blocks of the Lock and Election
 * services (concurrency.h): session keys, prefix reads, the recipes' txns,
 * and waitDeletes on the watchable store.
 *
 * waitDeletes follows etcd 3.4's clientv3/concurrency/key.go: read the
 * newest key under the prefix created at or below the bound; none left
 * means done; otherwise watch that one key until a DELETE event and read
 * again. A waiter only ever watches its direct predecessor, so releasing a
 * lock wakes one waiter, not all of them. */
#include "server/member/concurrency.h"

#include "common/mem.h"
#include "watch/watch.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- keys ---------------------------------------------------------------------- */

int conc_prefix_init(conc_prefix *p, const uint8_t *name, size_t name_len)
{
    memset(p, 0, sizeof(*p));
    p->len = name_len + 1;
    p->key = metcd_malloc(p->len);
    p->end = metcd_malloc(p->len);
    if (!p->key || !p->end) {
        conc_prefix_free(p);
        return MERR_INTERNAL;
    }
    if (name_len)
        memcpy(p->key, name, name_len);
    p->key[name_len] = '/';
    /* clientv3.GetPrefixRangeEnd: bump the last byte below 0xff and cut
     * what follows it. The prefix ends in '/', so this always finds one. */
    memcpy(p->end, p->key, p->len);
    p->end_len = p->len;
    while (p->end_len > 0 && p->end[p->end_len - 1] == 0xff)
        p->end_len--;
    p->end[p->end_len - 1]++;
    return 0;
}

void conc_prefix_free(conc_prefix *p)
{
    metcd_free(p->key);
    metcd_free(p->end);
    memset(p, 0, sizeof(*p));
}

uint8_t *conc_key(const uint8_t *name, size_t name_len, int64_t lease, size_t *len)
{
    char hex[24];
    uint64_t mag = lease < 0 ? -(uint64_t)lease : (uint64_t)lease;
    int n = snprintf(hex, sizeof(hex), "%s%" PRIx64, lease < 0 ? "-" : "", mag);
    *len = name_len + 1 + (size_t)n;
    uint8_t *k = metcd_malloc(*len);
    if (!k)
        return NULL;
    if (name_len)
        memcpy(k, name, name_len);
    k[name_len] = '/';
    memcpy(k + name_len + 1, hex, (size_t)n);
    return k;
}

/* ---- reads and txns ------------------------------------------------------------ */

int conc_range_edge(member *m, const conc_prefix *p, bool first, int64_t max_create_rev,
                    mvcc_result *res)
{
    mvcc_range_req q = {
        .key = p->key,
        .key_len = p->len,
        .range_end = p->end,
        .range_end_len = p->end_len,
        .limit = 1,
        .sort_order = first ? MVCC_SORT_ASCEND : MVCC_SORT_DESCEND,
        .sort_target = MVCC_SORT_CREATE,
        .max_create_revision = max_create_rev,
    };
    return mvcc_range(m->kv, &q, res);
}

/* The storage of one RequestOp, on the caller's stack. */
struct op_buf {
    Etcdserverpb__RequestOp op;
    Etcdserverpb__PutRequest put;
    Etcdserverpb__RangeRequest range;
    Etcdserverpb__DeleteRangeRequest del;
};

static void build_op(const conc_op *in, struct op_buf *b)
{
    etcdserverpb__request_op__init(&b->op);
    switch (in->type) {
    case MVCC_OP_PUT:
        etcdserverpb__put_request__init(&b->put);
        b->put.key.data = (uint8_t *)in->key;
        b->put.key.len = in->key_len;
        b->put.value.data = (uint8_t *)in->value;
        b->put.value.len = in->value_len;
        b->put.lease = in->lease;
        b->op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
        b->op.request_put = &b->put;
        break;
    case MVCC_OP_RANGE:
        etcdserverpb__range_request__init(&b->range);
        if (in->pfx) {
            b->range.key.data = in->pfx->key;
            b->range.key.len = in->pfx->len;
            b->range.range_end.data = in->pfx->end;
            b->range.range_end.len = in->pfx->end_len;
            b->range.limit = 1;
            b->range.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
            b->range.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE;
        } else {
            b->range.key.data = (uint8_t *)in->key;
            b->range.key.len = in->key_len;
        }
        b->op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
        b->op.request_range = &b->range;
        break;
    default:
        etcdserverpb__delete_range_request__init(&b->del);
        b->del.key.data = (uint8_t *)in->key;
        b->del.key.len = in->key_len;
        b->op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
        b->op.request_delete_range = &b->del;
        break;
    }
}

int conc_propose_txn(member *m, const uint8_t *key, size_t key_len, int64_t cmp_rev,
                     const conc_op *then, size_t nthen, const conc_op *els, size_t nels,
                     member_done_fn done, void *arg)
{
    if (nthen > 2 || nels > 2)
        return MVCC_EINVALID;
    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
    cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
    cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
    cmp.key.data = (uint8_t *)key;
    cmp.key.len = key_len;
    cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
    cmp.create_revision = cmp_rev;
    Etcdserverpb__Compare *cmps[1] = {&cmp};
    struct op_buf tb[2], eb[2];
    Etcdserverpb__RequestOp *tops[2], *eops[2];
    for (size_t i = 0; i < nthen; i++) {
        build_op(&then[i], &tb[i]);
        tops[i] = &tb[i].op;
    }
    for (size_t i = 0; i < nels; i++) {
        build_op(&els[i], &eb[i]);
        eops[i] = &eb[i].op;
    }
    Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
    txn.n_compare = 1;
    txn.compare = cmps;
    txn.n_success = nthen;
    txn.success = nthen ? tops : NULL;
    txn.n_failure = nels;
    txn.failure = nels ? eops : NULL;

    /* etcd's checkTxnRequest, before raft */
    mvcc_txn_req q;
    int rc = conv_txn_req(&txn, &q);
    if (rc == 0) {
        rc = mvcc_txn_validate(m->kv, &q);
        conv_txn_req_free(&q);
    }
    if (rc)
        return rc;
    Memberpb__Request req = MEMBERPB__REQUEST__INIT;
    req.op_case = MEMBERPB__REQUEST__OP_TXN;
    req.txn = &txn;
    return member_propose(m, &req, WAIT_TXN, true, done, arg);
}

int conc_propose_delete(member *m, const uint8_t *key, size_t key_len, member_done_fn done,
                        void *arg)
{
    if (key_len == 0)
        return MVCC_EEMPTY_KEY;
    Etcdserverpb__DeleteRangeRequest d = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    d.key.data = (uint8_t *)key;
    d.key.len = key_len;
    Memberpb__Request req = MEMBERPB__REQUEST__INIT;
    req.op_case = MEMBERPB__REQUEST__OP_DELETE_RANGE;
    req.delete_range = &d;
    return member_propose(m, &req, WAIT_DELETE, false, done, arg);
}

/* ---- waitDeletes --------------------------------------------------------------- */

struct wait_deletes {
    member *m;
    conc_prefix pfx;
    int64_t max_create_rev;
    wait_deletes_fn done;
    void *arg;
    watch_stream *ws; /* watching the predecessor, NULL between reads */
    struct event *step_ev;
    int err; /* the watch ended with an error: report it at the next step */
};

static void wait_deletes_free(wait_deletes *w)
{
    watch_stream_free(w->ws);
    if (w->step_ev)
        event_free(w->step_ev);
    conc_prefix_free(&w->pfx);
    metcd_free(w);
}

static void finish(wait_deletes *w, int rc, int64_t rev)
{
    w->done(w->m, w->arg, rc, rev);
    wait_deletes_free(w);
}

/* The watch's transport. It may not call back into the watch store, so
 * it only notes what happened and lets the step event act on it. */
static int on_watch_send(void *arg, const watch_response *r)
{
    wait_deletes *w = arg;
    bool wake = false;
    if (r->canceled) {
        /* compacted past the predecessor's revision (etcd's watch channel
         * closes with ErrCompacted, which waitDeletes returns) */
        w->err = r->compact_revision ? MVCC_ECOMPACTED : MVCC_EBACKEND;
        wake = true;
    }
    for (size_t i = 0; i < r->nevents; i++)
        if (r->events[i].type == MVCC_EVENT_DELETE)
            wake = true;
    if (wake)
        event_active(w->step_ev, EV_READ, 0);
    return 0;
}

static void on_step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wait_deletes *w = arg;
    member *m = w->m;
    watch_stream_free(w->ws);
    w->ws = NULL;
    if (w->err) {
        finish(w, w->err, 0);
        return;
    }
    mvcc_result res = {0};
    int rc = conc_range_edge(m, &w->pfx, false, w->max_create_rev, &res);
    if (rc) {
        finish(w, rc, 0);
        return;
    }
    if (res.resp.u.range.nkvs == 0) {
        int64_t rev = res.resp.revision;
        mvcc_result_free(&res);
        finish(w, 0, rev);
        return;
    }
    /* Watch the predecessor from the revision after this read: the read
     * saw it alive at res.revision, so its delete comes later. A start
     * revision above the current one makes the watcher synced at once. */
    const mvcc_kv *kv = &res.resp.u.range.kvs[0];
    watch_create c = {
        .key = kv->key,
        .key_len = kv->key_len,
        .start_revision = res.resp.revision + 1,
    };
    if (!m->watch)
        rc = MERR_STOPPED;
    else if (watch_stream_new(&w->ws, m->watch, on_watch_send, w) != 0)
        rc = MERR_INTERNAL;
    else if (watch_stream_create(w->ws, &c) != 0)
        rc = MERR_INTERNAL;
    mvcc_result_free(&res);
    if (rc)
        finish(w, rc, 0);
}

int wait_deletes_start(member *m, const conc_prefix *p, int64_t max_create_rev,
                       wait_deletes_fn done, void *arg, wait_deletes **out)
{
    *out = NULL;
    wait_deletes *w = metcd_calloc(1, sizeof(*w));
    if (!w)
        return MERR_INTERNAL;
    w->m = m;
    w->max_create_rev = max_create_rev;
    w->done = done;
    w->arg = arg;
    if (conc_prefix_init(&w->pfx, p->key, p->len - 1) != 0) {
        metcd_free(w);
        return MERR_INTERNAL;
    }
    w->step_ev = event_new(m->base, -1, 0, on_step, w);
    if (!w->step_ev) {
        wait_deletes_free(w);
        return MERR_INTERNAL;
    }
    /* the first read runs from the loop, so done never runs in here */
    event_active(w->step_ev, EV_READ, 0);
    *out = w;
    return 0;
}

void wait_deletes_cancel(wait_deletes *w)
{
    if (w)
        wait_deletes_free(w);
}

bool conc_auth_refused(member *m, struct rpc_call *call, const uint8_t *name, size_t name_len,
                       bool session, int64_t lease, const uint8_t *wkey, size_t wkey_len,
                       bool read_wkey)
{
    if (!auth_enabled(m))
        return false;
    int rc = 0;
    uint8_t *session_key = NULL;
    if (name) {
        conc_prefix p;
        rc = conc_prefix_init(&p, name, name_len);
        if (rc == 0) {
            rc = auth_check_call_key(m, call, p.key, p.len, p.end, p.end_len, false);
            if (rc == 0 && session && lease == 0)
                rc = auth_check_call_key(m, call, p.key, p.len, p.end, p.end_len, true);
            conc_prefix_free(&p);
        }
        if (rc == 0 && session && lease != 0) {
            session_key = conc_key(name, name_len, lease, &wkey_len);
            if (!session_key)
                rc = MERR_INTERNAL;
            wkey = session_key;
            read_wkey = true;
        }
    }
    if (rc == 0 && wkey)
        rc = auth_check_call_key(m, call, wkey, wkey_len, NULL, 0, true);
    if (rc == 0 && wkey && read_wkey)
        rc = auth_check_call_key(m, call, wkey, wkey_len, NULL, 0, false);
    metcd_free(session_key);
    if (rc)
        member_fail_call_relayed(call, rc);
    return rc != 0;
}
