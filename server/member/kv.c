/* server/member/kv.c - the etcdserverpb.KV service.
 *
 * Writes (Put, DeleteRange, Txn with writes, Compact) are checked as etcd's
 * gRPC layer checks them (v3rpc/key.go), go through raft, and are answered
 * by apply.c once applied. Reads are served from the local store:
 * serializable ones at once, linearizable ones after a ReadIndex round
 * (etcd's linearizableReadLoop): every read that arrives while a round is
 * out joins the next round, one round confirms leadership for all of them,
 * and each is served once the member has applied up to the round's index.
 */
#include "server/member/internal.h"

#include "common/mem.h"

#include <string.h>

/* ---- building responses --------------------------------------------------------- */

/* Every allocation of one response, freed together after it is sent. */
struct build {
    void **p;
    size_t n, cap;
    bool failed;
};

static void *balloc(struct build *b, size_t size)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        void **p = metcd_realloc(b->p, cap * sizeof(*p));
        if (!p) {
            b->failed = true;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    void *x = metcd_calloc(1, size ? size : 1);
    if (!x) {
        b->failed = true;
        return NULL;
    }
    b->p[b->n++] = x;
    return x;
}

static void bfree(struct build *b)
{
    for (size_t i = 0; i < b->n; i++)
        metcd_free(b->p[i]);
    metcd_free(b->p);
}

void fill_header(const member *m, Etcdserverpb__ResponseHeader *h, int64_t rev)
{
    h->cluster_id = m->cluster_id;
    h->member_id = m->id;
    h->revision = rev;
    h->raft_term = m->term;
}

/* Points a protobuf KeyValue at an mvcc result's memory (no copy). */
void kv_to_pb(const mvcc_kv *kv, Mvccpb__KeyValue *out)
{
    mvccpb__key_value__init(out);
    out->key.data = (uint8_t *)kv->key;
    out->key.len = kv->key_len;
    out->value.data = (uint8_t *)kv->value;
    out->value.len = kv->value_len;
    out->create_revision = kv->create_revision;
    out->mod_revision = kv->mod_revision;
    out->version = kv->version;
    out->lease = kv->lease;
}

static Mvccpb__KeyValue **pb_kvs(struct build *b, const mvcc_kv *kvs, size_t n)
{
    if (n == 0)
        return NULL;
    Mvccpb__KeyValue *arr = balloc(b, n * sizeof(*arr));
    Mvccpb__KeyValue **ptrs = balloc(b, n * sizeof(*ptrs));
    if (!arr || !ptrs)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        kv_to_pb(&kvs[i], &arr[i]);
        ptrs[i] = &arr[i];
    }
    return ptrs;
}

/* Builds the response message for r. `outer` responses carry the full
 * header; those nested in a txn carry only the revision, as etcd's. */
static ProtobufCMessage *build_resp(member *m, struct build *b, const mvcc_op_resp *r, int kind,
                                   bool outer)
{
    Etcdserverpb__ResponseHeader *h = balloc(b, sizeof(*h));
    if (!h)
        return NULL;
    etcdserverpb__response_header__init(h);
    if (outer)
        fill_header(m, h, r->revision);
    else
        h->revision = r->revision;
    switch (kind) {
    case MVCC_OP_RANGE: {
        Etcdserverpb__RangeResponse *x = balloc(b, sizeof(*x));
        if (!x)
            return NULL;
        etcdserverpb__range_response__init(x);
        x->header = h;
        x->kvs = pb_kvs(b, r->u.range.kvs, r->u.range.nkvs);
        x->n_kvs = x->kvs ? r->u.range.nkvs : 0;
        x->more = r->u.range.more;
        x->count = r->u.range.count;
        return &x->base;
    }
    case MVCC_OP_PUT: {
        Etcdserverpb__PutResponse *x = balloc(b, sizeof(*x));
        if (!x)
            return NULL;
        etcdserverpb__put_response__init(x);
        x->header = h;
        if (r->u.put.prev_kv) {
            x->prev_kv = balloc(b, sizeof(*x->prev_kv));
            if (!x->prev_kv)
                return NULL;
            kv_to_pb(r->u.put.prev_kv, x->prev_kv);
        }
        return &x->base;
    }
    case MVCC_OP_DELETE: {
        Etcdserverpb__DeleteRangeResponse *x = balloc(b, sizeof(*x));
        if (!x)
            return NULL;
        etcdserverpb__delete_range_response__init(x);
        x->header = h;
        x->deleted = r->u.del.deleted;
        x->prev_kvs = pb_kvs(b, r->u.del.prev_kvs, r->u.del.nprev_kvs);
        x->n_prev_kvs = x->prev_kvs ? r->u.del.nprev_kvs : 0;
        return &x->base;
    }
    case MVCC_OP_TXN: {
        Etcdserverpb__TxnResponse *x = balloc(b, sizeof(*x));
        if (!x)
            return NULL;
        etcdserverpb__txn_response__init(x);
        x->header = h;
        x->succeeded = r->u.txn.succeeded;
        size_t n = r->u.txn.nresponses;
        if (n) {
            x->responses = balloc(b, n * sizeof(*x->responses));
            if (!x->responses)
                return NULL;
            x->n_responses = n;
        }
        for (size_t i = 0; i < n; i++) {
            const mvcc_op_resp *ri = &r->u.txn.responses[i];
            Etcdserverpb__ResponseOp *op = balloc(b, sizeof(*op));
            ProtobufCMessage *inner = build_resp(m, b, ri, ri->type, false);
            if (!op || !inner)
                return NULL;
            etcdserverpb__response_op__init(op);
            switch (ri->type) {
            case MVCC_OP_RANGE:
                op->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
                op->response_range = (Etcdserverpb__RangeResponse *)inner;
                break;
            case MVCC_OP_PUT:
                op->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
                op->response_put = (Etcdserverpb__PutResponse *)inner;
                break;
            case MVCC_OP_DELETE:
                op->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
                op->response_delete_range = (Etcdserverpb__DeleteRangeResponse *)inner;
                break;
            default:
                op->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN;
                op->response_txn = (Etcdserverpb__TxnResponse *)inner;
                break;
            }
            x->responses[i] = op;
        }
        return &x->base;
    }
    default: {
        Etcdserverpb__CompactionResponse *x = balloc(b, sizeof(*x));
        if (!x)
            return NULL;
        etcdserverpb__compaction_response__init(x);
        x->header = h;
        return &x->base;
    }
    }
}

void reply_result(member *m, struct rpc_call *call, const mvcc_op_resp *r, int kind)
{
    struct build b = {0};
    ProtobufCMessage *msg = build_resp(m, &b, r, kind, true);
    if (!msg || b.failed)
        rpc_call_finish(call, RPC_CODE_RESOURCE_EXHAUSTED, "etcdserver: out of memory");
    else
        rpc_call_reply(call, msg);
    bfree(&b);
}

/* ---- conversions ------------------------------------------------------------------ */

void conv_range_req(const Etcdserverpb__RangeRequest *in, mvcc_range_req *out)
{
    *out = (mvcc_range_req){
        .key = in->key.data,
        .key_len = in->key.len,
        .range_end = in->range_end.data,
        .range_end_len = in->range_end.len,
        .limit = in->limit,
        .revision = in->revision,
        .sort_order = (int)in->sort_order,
        .sort_target = (int)in->sort_target,
        .keys_only = in->keys_only,
        .count_only = in->count_only,
        .min_mod_revision = in->min_mod_revision,
        .max_mod_revision = in->max_mod_revision,
        .min_create_revision = in->min_create_revision,
        .max_create_revision = in->max_create_revision,
    };
}

void conv_put_req(const Etcdserverpb__PutRequest *in, mvcc_put_req *out)
{
    *out = (mvcc_put_req){
        .key = in->key.data,
        .key_len = in->key.len,
        .value = in->value.data,
        .value_len = in->value.len,
        .lease = in->lease,
        .prev_kv = in->prev_kv,
        .ignore_value = in->ignore_value,
        .ignore_lease = in->ignore_lease,
    };
}

void conv_delete_req(const Etcdserverpb__DeleteRangeRequest *in, mvcc_delete_req *out)
{
    *out = (mvcc_delete_req){
        .key = in->key.data,
        .key_len = in->key.len,
        .range_end = in->range_end.data,
        .range_end_len = in->range_end.len,
        .prev_kv = in->prev_kv,
    };
}

static void conv_compare(const Etcdserverpb__Compare *in, mvcc_compare *out)
{
    *out = (mvcc_compare){
        .result = (int)in->result,
        .target = (int)in->target,
        .key = in->key.data,
        .key_len = in->key.len,
        .range_end = in->range_end.data,
        .range_end_len = in->range_end.len,
    };
    /* etcd reads the oneof member that matches the target, else zero */
    switch (in->target) {
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION:
        if (in->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION)
            out->number = in->version;
        break;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE:
        if (in->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION)
            out->number = in->create_revision;
        break;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD:
        if (in->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION)
            out->number = in->mod_revision;
        break;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE:
        if (in->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE)
            out->number = in->lease;
        break;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE:
        if (in->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE) {
            out->value = in->value.data;
            out->value_len = in->value.len;
        }
        break;
    default:
        break;
    }
}

static int conv_ops(Etcdserverpb__RequestOp **in, size_t n, const mvcc_op **out);

int conv_txn_req(const Etcdserverpb__TxnRequest *in, mvcc_txn_req *out)
{
    memset(out, 0, sizeof(*out));
    if (in->n_compare) {
        mvcc_compare *c = metcd_calloc(in->n_compare, sizeof(*c));
        if (!c)
            return MVCC_ENOMEM;
        for (size_t i = 0; i < in->n_compare; i++)
            conv_compare(in->compare[i], &c[i]);
        out->compare = c;
        out->ncompare = in->n_compare;
    }
    int rc = conv_ops(in->success, in->n_success, &out->success);
    if (rc == 0) {
        out->nsuccess = in->n_success;
        rc = conv_ops(in->failure, in->n_failure, &out->failure);
        if (rc == 0)
            out->nfailure = in->n_failure;
    }
    if (rc)
        conv_txn_req_free(out);
    return rc;
}

static void free_ops(const mvcc_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ops[i].type == MVCC_OP_TXN)
            conv_txn_req_free((mvcc_txn_req *)&ops[i].u.txn);
    metcd_free((void *)ops);
}

void conv_txn_req_free(mvcc_txn_req *t)
{
    metcd_free((void *)t->compare);
    free_ops(t->success, t->nsuccess);
    free_ops(t->failure, t->nfailure);
    memset(t, 0, sizeof(*t));
}

static int conv_ops(Etcdserverpb__RequestOp **in, size_t n, const mvcc_op **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    mvcc_op *ops = metcd_calloc(n, sizeof(*ops));
    if (!ops)
        return MVCC_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const Etcdserverpb__RequestOp *op = in[i];
        switch (op->request_case) {
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
            ops[i].type = MVCC_OP_RANGE;
            conv_range_req(op->request_range, &ops[i].u.range);
            break;
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
            ops[i].type = MVCC_OP_PUT;
            conv_put_req(op->request_put, &ops[i].u.put);
            break;
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
            ops[i].type = MVCC_OP_DELETE;
            conv_delete_req(op->request_delete_range, &ops[i].u.del);
            break;
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN: {
            ops[i].type = MVCC_OP_TXN;
            int rc = conv_txn_req(op->request_txn, &ops[i].u.txn);
            if (rc) {
                free_ops(ops, i);
                return rc;
            }
            break;
        }
        default:
            ops[i].type = MVCC_OP_NONE;
            break;
        }
    }
    *out = ops;
    return 0;
}

bool txn_is_readonly(const Etcdserverpb__TxnRequest *t)
{
    for (int pass = 0; pass < 2; pass++) {
        size_t n = pass ? t->n_failure : t->n_success;
        Etcdserverpb__RequestOp **ops = pass ? t->failure : t->success;
        for (size_t i = 0; i < n; i++) {
            switch (ops[i]->request_case) {
            case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
                break;
            case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
                if (!txn_is_readonly(ops[i]->request_txn))
                    return false;
                break;
            default:
                return false;
            }
        }
    }
    return true;
}

/* etcd's isTxnSerializable: read-only and every range serializable. */
static bool txn_is_serializable(const Etcdserverpb__TxnRequest *t)
{
    for (int pass = 0; pass < 2; pass++) {
        size_t n = pass ? t->n_failure : t->n_success;
        Etcdserverpb__RequestOp **ops = pass ? t->failure : t->success;
        for (size_t i = 0; i < n; i++) {
            if (ops[i]->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE) {
                if (!ops[i]->request_range->serializable)
                    return false;
            } else if (ops[i]->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN) {
                if (!txn_is_serializable(ops[i]->request_txn))
                    return false;
            } else {
                return false;
            }
        }
    }
    return true;
}

/* ---- reads -------------------------------------------------------------------------- */

static void serve_range(member *m, struct rpc_call *call, const Etcdserverpb__RangeRequest *r)
{
    int rc = auth_check_call_range(m, call, r);
    if (rc) {
        member_fail_call(call, rc);
        return;
    }
    mvcc_range_req q;
    conv_range_req(r, &q);
    mvcc_result res = {0};
    rc = mvcc_range(m->kv, &q, &res);
    if (rc)
        member_fail_call(call, rc);
    else
        reply_result(m, call, &res.resp, MVCC_OP_RANGE);
    mvcc_result_free(&res);
}

static void serve_txn_read(member *m, struct rpc_call *call, const Etcdserverpb__TxnRequest *t)
{
    int rc = auth_check_call_txn(m, call, t);
    if (rc) {
        member_fail_call(call, rc);
        return;
    }
    mvcc_txn_req q;
    rc = conv_txn_req(t, &q);
    if (rc) {
        member_fail_call(call, rc);
        return;
    }
    mvcc_result res = {0};
    rc = mvcc_txn(m->kv, &q, &res);
    conv_txn_req_free(&q);
    if (rc)
        member_fail_call(call, rc);
    else
        reply_result(m, call, &res.resp, MVCC_OP_TXN);
    mvcc_result_free(&res);
}

static void serve_read(member *m, pending_read *r)
{
    if (!r->req) {
        if (r->done)
            r->done(m, r->done_arg, 0);
        return;
    }
    if (!r->call)
        return;
    if (r->req->descriptor == &etcdserverpb__range_request__descriptor)
        serve_range(m, r->call, (const Etcdserverpb__RangeRequest *)r->req);
    else
        serve_txn_read(m, r->call, (const Etcdserverpb__TxnRequest *)r->req);
}

static void read_free(pending_read *r)
{
    if (r->req)
        protobuf_c_message_free_unpacked(r->req, &metcd_pb_allocator);
    metcd_free(r);
}

/* Fails a read that will not be served (its call's or barrier's owner). */
static void read_fail(member *m, pending_read *r, int err)
{
    if (r->call)
        member_fail_call(r->call, err);
    else if (r->done)
        r->done(m, r->done_arg, err);
}

/* Takes the read at the head of the queue (NULL when empty). */
static pending_read *reads_pop(member *m)
{
    pending_read *r = m->reads_head;
    if (r) {
        m->reads_head = r->next;
        if (!m->reads_head)
            m->reads_tail = NULL;
        m->n_reads--;
    }
    return r;
}

static void start_round(member *m)
{
    m->read_round++;
    m->read_round_open = true;
    int rc = raftnode_read_index(m, m->read_round);
    if (rc) {
        /* no leader: every read of this round fails now */
        m->read_round_open = false;
        pending_read **pp = &m->reads_head;
        pending_read *prev = NULL;
        while (*pp) {
            pending_read *r = *pp;
            if (r->round == m->read_round) {
                *pp = r->next;
                if (m->reads_tail == r)
                    m->reads_tail = prev;
                m->n_reads--;
                read_fail(m, r, rc);
                read_free(r);
            } else {
                prev = r;
                pp = &r->next;
            }
        }
    }
}

/* Queues r (its call or barrier set) for the next ReadIndex round. */
static void enqueue_read(member *m, pending_read *r)
{
    r->deadline_ms = member_now_ms() + (int64_t)member_request_timeout_ms(m);
    /* A round already out may have confirmed leadership before this read
     * arrived: join the next one (started below when none is out, or when
     * the current one answers). */
    r->round = m->read_round + 1;
    if (m->reads_tail)
        m->reads_tail->next = r;
    else
        m->reads_head = r;
    m->reads_tail = r;
    m->n_reads++;
    if (!m->read_round_open)
        start_round(m);
}

static void queue_read(member *m, struct rpc_call *call, const ProtobufCMessage *msg)
{
    if (m->n_reads >= MAX_PENDING_PROPOSALS) {
        member_fail_call(call, MERR_TOO_MANY_REQUESTS);
        return;
    }
    pending_read *r = metcd_calloc(1, sizeof(*r));
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = metcd_malloc(len ? len : 1);
    if (!r || !buf) {
        metcd_free(r);
        metcd_free(buf);
        member_fail_call(call, MERR_INTERNAL);
        return;
    }
    protobuf_c_message_pack(msg, buf);
    r->req = protobuf_c_message_unpack(msg->descriptor, &metcd_pb_allocator, len, buf);
    metcd_free(buf);
    if (!r->req) {
        metcd_free(r);
        member_fail_call(call, MERR_INTERNAL);
        return;
    }
    r->call = call;
    enqueue_read(m, r);
}

void reads_on_read_state(member *m, uint64_t round, uint64_t index)
{
    bool waiting_next = false;
    for (pending_read *r = m->reads_head; r; r = r->next) {
        if (r->round <= round && r->index == 0)
            r->index = index ? index : 1;
        else if (r->round > round)
            waiting_next = true;
    }
    if (round == m->read_round)
        m->read_round_open = false;
    if (waiting_next && !m->read_round_open)
        start_round(m);
    reads_on_applied(m);
}

void reads_on_applied(member *m)
{
    while (m->reads_head && m->reads_head->index && m->reads_head->index <= m->applied) {
        pending_read *r = reads_pop(m);
        serve_read(m, r);
        read_free(r);
    }
}

void reads_sweep(member *m, int64_t now_ms)
{
    while (m->reads_head && m->reads_head->deadline_ms <= now_ms) {
        pending_read *r = reads_pop(m);
        read_fail(m, r, MERR_TIMEOUT);
        read_free(r);
    }
    if (!m->reads_head)
        m->read_round_open = false;
}

void reads_fail_all(member *m, int err)
{
    pending_read *r;
    while ((r = reads_pop(m))) {
        read_fail(m, r, err);
        read_free(r);
    }
}

int member_read_index(member *m, member_read_fn done, void *arg, pending_read **handle)
{
    if (m->n_reads >= MAX_PENDING_PROPOSALS)
        return MERR_TOO_MANY_REQUESTS;
    pending_read *r = metcd_calloc(1, sizeof(*r));
    if (!r)
        return MERR_INTERNAL;
    r->done = done;
    r->done_arg = arg;
    *handle = r;
    enqueue_read(m, r);
    return 0;
}

void member_read_cancel(pending_read *r)
{
    if (r) {
        r->done = NULL;
        r->done_arg = NULL;
    }
}

/* ---- writes ------------------------------------------------------------------------ */

/* etcd's quota check before proposing (backendQuota.Available): a write that
 * would take the database past the quota raises NOSPACE and fails. */
static bool quota_ok(member *m, size_t cost)
{
    if (member_alarm_active(m, ETCDSERVERPB__ALARM_TYPE__NOSPACE))
        return false;
    int64_t quota = m->opt.quota_backend_bytes > 0 ? m->opt.quota_backend_bytes
                                                   : (int64_t)2 << 30;
    /* what is in use, not the file: LMDB grows its file after a defrag
     * before freed pages come back into use */
    if (backend_size_in_use(m->be) + (int64_t)cost <= quota)
        return true;
    /* one alarm proposal per second at most: the refused writes that come
     * before it is applied need not propose it again */
    int64_t now = member_now_ms();
    if (m->nospace_proposed_ms && now - m->nospace_proposed_ms < 1000)
        return false;
    m->nospace_proposed_ms = now;
    Memberpb__Request req = MEMBERPB__REQUEST__INIT;
    Etcdserverpb__AlarmRequest a = ETCDSERVERPB__ALARM_REQUEST__INIT;
    a.action = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE;
    a.memberid = m->id;
    a.alarm = ETCDSERVERPB__ALARM_TYPE__NOSPACE;
    req.op_case = MEMBERPB__REQUEST__OP_ALARM;
    req.alarm = &a;
    raftnode_propose(m, &req);
    return false;
}

/* Registers a waiter for req (a call's or a callback's) and proposes it.
 * Returns 0, or an error with nothing registered. */
static int propose(member *m, Memberpb__Request *req, waiter_kind kind, bool check_quota,
                   struct rpc_call *call, member_done_fn done, void *arg, bool physical)
{
    int arc = auth_stamp(m, call, req);
    if (arc)
        return arc;
    if (check_quota && !quota_ok(m, memberpb__request__get_packed_size(req) + 64))
        return MERR_NO_SPACE;
    waiter *w = wait_register(m, kind, call);
    if (!w)
        return MERR_TOO_MANY_REQUESTS;
    w->done = done;
    w->done_arg = arg;
    w->physical = physical;
    req->id = w->id;
    size_t max = m->opt.max_request_bytes ? m->opt.max_request_bytes : 1572864;
    int rc = 0;
    if (memberpb__request__get_packed_size(req) > max)
        rc = MERR_REQUEST_TOO_LARGE;
    else
        rc = raftnode_propose(m, req);
    if (rc) {
        metcd_free(wait_take(m, w->id));
        m->proposals_failed++;
    }
    return rc;
}

int member_propose(member *m, Memberpb__Request *req, waiter_kind kind, bool check_quota,
                   member_done_fn done, void *arg)
{
    return propose(m, req, kind, check_quota, NULL, done, arg, false);
}

static void propose_call(member *m, struct rpc_call *call, waiter_kind kind,
                         Memberpb__Request *req, bool check_quota, bool physical)
{
    int rc = propose(m, req, kind, check_quota, call, NULL, NULL, physical);
    if (rc)
        member_fail_call(call, rc);
}

void member_propose_call(member *m, struct rpc_call *call, waiter_kind kind,
                         Memberpb__Request *req, bool check_quota)
{
    propose_call(m, call, kind, req, check_quota, false);
}

/* ---- handlers ------------------------------------------------------------------------ */

static void on_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    member *m = rpc_call_service_data(call);
    wait_forget_call(m, call);
    for (pending_read *r = m->reads_head; r; r = r->next)
        if (r->call == call)
            r->call = NULL;
}

static void on_range(struct rpc_call *call, const ProtobufCMessage *msg)
{
    member *m = rpc_call_service_data(call);
    const Etcdserverpb__RangeRequest *r = (const Etcdserverpb__RangeRequest *)msg;
    if (r->key.len == 0) {
        member_fail_call(call, MVCC_EEMPTY_KEY);
        return;
    }
    if (r->serializable)
        serve_range(m, call, r);
    else
        queue_read(m, call, msg);
}

static void on_put(struct rpc_call *call, const ProtobufCMessage *msg)
{
    member *m = rpc_call_service_data(call);
    Etcdserverpb__PutRequest *p = (Etcdserverpb__PutRequest *)msg;
    if (p->key.len == 0) {
        member_fail_call(call, MVCC_EEMPTY_KEY);
        return;
    }
    if (p->ignore_value && p->value.len) {
        member_fail_call(call, MVCC_EVALUE_PROVIDED);
        return;
    }
    if (p->ignore_lease && p->lease) {
        member_fail_call(call, MVCC_ELEASE_PROVIDED);
        return;
    }
    Memberpb__Request req = MEMBERPB__REQUEST__INIT;
    req.op_case = MEMBERPB__REQUEST__OP_PUT;
    req.put = p;
    propose_call(m, call, WAIT_PUT, &req, true, false);
}

static void on_delete_range(struct rpc_call *call, const ProtobufCMessage *msg)
{
    member *m = rpc_call_service_data(call);
    Etcdserverpb__DeleteRangeRequest *d = (Etcdserverpb__DeleteRangeRequest *)msg;
    if (d->key.len == 0) {
        member_fail_call(call, MVCC_EEMPTY_KEY);
        return;
    }
    Memberpb__Request req = MEMBERPB__REQUEST__INIT;
    req.op_case = MEMBERPB__REQUEST__OP_DELETE_RANGE;
    req.delete_range = d;
    propose_call(m, call, WAIT_DELETE, &req, false, false);
}

static void on_txn(struct rpc_call *call, const ProtobufCMessage *msg)
{
    member *m = rpc_call_service_data(call);
    Etcdserverpb__TxnRequest *t = (Etcdserverpb__TxnRequest *)msg;
    mvcc_txn_req q;
    int rc = conv_txn_req(t, &q);
    if (rc == 0) {
        rc = mvcc_txn_validate(m->kv, &q);
        conv_txn_req_free(&q);
    }
    if (rc) {
        member_fail_call(call, rc);
        return;
    }
    if (txn_is_readonly(t)) {
        if (txn_is_serializable(t))
            serve_txn_read(m, call, t);
        else
            queue_read(m, call, msg);
        return;
    }
    Memberpb__Request req = MEMBERPB__REQUEST__INIT;
    req.op_case = MEMBERPB__REQUEST__OP_TXN;
    req.txn = t;
    propose_call(m, call, WAIT_TXN, &req, true, false);
}

static void on_compact(struct rpc_call *call, const ProtobufCMessage *msg)
{
    member *m = rpc_call_service_data(call);
    Etcdserverpb__CompactionRequest *c = (Etcdserverpb__CompactionRequest *)msg;
    Memberpb__Request req = MEMBERPB__REQUEST__INIT;
    req.op_case = MEMBERPB__REQUEST__OP_COMPACTION;
    req.compaction = c;
    propose_call(m, call, WAIT_COMPACT, &req, false, c->physical);
}

static const struct rpc_method kv_methods[] = {
    {"/etcdserverpb.KV/Range", RPC_UNARY, &etcdserverpb__range_request__descriptor,
     &etcdserverpb__range_response__descriptor, NULL, on_range, NULL, on_cancel, NULL},
    {"/etcdserverpb.KV/Put", RPC_UNARY, &etcdserverpb__put_request__descriptor,
     &etcdserverpb__put_response__descriptor, NULL, on_put, NULL, on_cancel, NULL},
    {"/etcdserverpb.KV/DeleteRange", RPC_UNARY, &etcdserverpb__delete_range_request__descriptor,
     &etcdserverpb__delete_range_response__descriptor, NULL, on_delete_range, NULL, on_cancel,
     NULL},
    {"/etcdserverpb.KV/Txn", RPC_UNARY, &etcdserverpb__txn_request__descriptor,
     &etcdserverpb__txn_response__descriptor, NULL, on_txn, NULL, on_cancel, NULL},
    {"/etcdserverpb.KV/Compact", RPC_UNARY, &etcdserverpb__compaction_request__descriptor,
     &etcdserverpb__compaction_response__descriptor, NULL, on_compact, NULL, on_cancel, NULL},
};

int kv_register(member *m)
{
    return rpc_server_register(m->rpc, kv_methods, sizeof(kv_methods) / sizeof(kv_methods[0]),
                               m);
}
