/* idgen/etcdkv/etcdkv.c - see etcdkv.h. */
#include "idgen/etcdkv/etcdkv.h"

#include "common/mem.h"

#include <string.h>

size_t idgen_etcd_prefix_end(const char *key, size_t len, char *out)
{
    memcpy(out, key, len);
    for (size_t i = len; i > 0; i--) {
        if ((uint8_t)out[i - 1] < 0xff) {
            out[i - 1] = (char)((uint8_t)out[i - 1] + 1);
            return i;
        }
    }
    out[0] = 0;
    return 1;
}

/* Everything one TxnRequest needs, in separate arrays freed together. */
struct txn_mem {
    Etcdserverpb__Compare *cmp;
    Etcdserverpb__Compare **pcmp;
    Etcdserverpb__RequestOp *ops;
    Etcdserverpb__RequestOp **pops;
    Etcdserverpb__RangeRequest *ranges;
    Etcdserverpb__PutRequest *puts;
    Etcdserverpb__DeleteRangeRequest *dels;
    char *ends; /* range ends, one slot of key_len + 1 bytes per op */
};

static void txn_mem_free(struct txn_mem *m)
{
    if (!m)
        return;
    metcd_free(m->cmp);
    metcd_free(m->pcmp);
    metcd_free(m->ops);
    metcd_free(m->pops);
    metcd_free(m->ranges);
    metcd_free(m->puts);
    metcd_free(m->dels);
    metcd_free(m->ends);
    metcd_free(m);
}

static void build_op(const idgen_op *in, Etcdserverpb__RequestOp *op,
                     Etcdserverpb__RangeRequest *rg, Etcdserverpb__PutRequest *put,
                     Etcdserverpb__DeleteRangeRequest *del, char *end)
{
    etcdserverpb__request_op__init(op);
    ProtobufCBinaryData key = {in->key_len, (uint8_t *)in->key};
    ProtobufCBinaryData range_end = {0, NULL};
    if (in->prefix) {
        range_end.len = idgen_etcd_prefix_end(in->key, in->key_len, end);
        range_end.data = (uint8_t *)end;
    }
    switch (in->type) {
    case IDGEN_OP_GET:
        etcdserverpb__range_request__init(rg);
        rg->key = key;
        rg->range_end = range_end;
        op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
        op->request_range = rg;
        break;
    case IDGEN_OP_PUT:
        etcdserverpb__put_request__init(put);
        put->key = key;
        put->value.data = (uint8_t *)in->value;
        put->value.len = in->value_len;
        put->lease = in->lease;
        op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
        op->request_put = put;
        break;
    default:
        etcdserverpb__delete_range_request__init(del);
        del->key = key;
        del->range_end = range_end;
        op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
        op->request_delete_range = del;
        break;
    }
}

int idgen_etcd_txn_build(const idgen_txn *t, idgen_etcd_txn *out)
{
    memset(out, 0, sizeof(*out));
    etcdserverpb__txn_request__init(&out->req);
    size_t nops = t->nsuccess + t->nfailure, ends = 0;
    for (size_t i = 0; i < t->nsuccess; i++)
        ends += t->success[i].key_len + 1;
    for (size_t i = 0; i < t->nfailure; i++)
        ends += t->failure[i].key_len + 1;
    struct txn_mem *m = metcd_calloc(1, sizeof(*m));
    if (!m)
        return IDGEN_ENOMEM;
    m->cmp = metcd_calloc(t->ncmp + 1, sizeof(*m->cmp));
    m->pcmp = metcd_calloc(t->ncmp + 1, sizeof(*m->pcmp));
    m->ops = metcd_calloc(nops + 1, sizeof(*m->ops));
    m->pops = metcd_calloc(nops + 1, sizeof(*m->pops));
    m->ranges = metcd_calloc(nops + 1, sizeof(*m->ranges));
    m->puts = metcd_calloc(nops + 1, sizeof(*m->puts));
    m->dels = metcd_calloc(nops + 1, sizeof(*m->dels));
    m->ends = metcd_malloc(ends + 1);
    if (!m->cmp || !m->pcmp || !m->ops || !m->pops || !m->ranges || !m->puts || !m->dels ||
        !m->ends) {
        txn_mem_free(m);
        return IDGEN_ENOMEM;
    }
    for (size_t i = 0; i < t->ncmp; i++) {
        const idgen_cmp *c = &t->cmp[i];
        Etcdserverpb__Compare *e = &m->cmp[i];
        etcdserverpb__compare__init(e);
        e->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
        e->key.data = (uint8_t *)c->key;
        e->key.len = c->key_len;
        switch (c->target) {
        case IDGEN_CMP_CREATE:
            e->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
            e->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
            e->create_revision = c->rev;
            break;
        case IDGEN_CMP_MOD:
            e->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
            e->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
            e->mod_revision = c->rev;
            break;
        default:
            e->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE;
            e->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
            e->value.data = (uint8_t *)c->value;
            e->value.len = c->value_len;
            break;
        }
        m->pcmp[i] = e;
    }
    size_t k = 0, off = 0;
    for (int branch = 0; branch < 2; branch++) {
        const idgen_op *v = branch ? t->failure : t->success;
        size_t n = branch ? t->nfailure : t->nsuccess;
        for (size_t i = 0; i < n; i++, k++) {
            build_op(&v[i], &m->ops[k], &m->ranges[k], &m->puts[k], &m->dels[k], m->ends + off);
            off += v[i].key_len + 1;
            m->pops[k] = &m->ops[k];
        }
    }
    out->req.n_compare = t->ncmp;
    out->req.compare = m->pcmp;
    out->req.n_success = t->nsuccess;
    out->req.success = m->pops;
    out->req.n_failure = t->nfailure;
    out->req.failure = m->pops + t->nsuccess;
    out->mem = m;
    return 0;
}

void idgen_etcd_txn_free(idgen_etcd_txn *x)
{
    txn_mem_free(x->mem);
    memset(x, 0, sizeof(*x));
}

void idgen_etcd_pair(const Mvccpb__KeyValue *kv, idgen_kv_pair *out)
{
    out->key = (const char *)kv->key.data;
    out->key_len = kv->key.len;
    out->value = (const char *)kv->value.data;
    out->value_len = kv->value.len;
    out->create_rev = kv->create_revision;
    out->mod_rev = kv->mod_revision;
    out->lease = kv->lease;
}

struct result_mem {
    idgen_kvs *ops;
    idgen_kv_pair *pairs;
};

int idgen_etcd_txn_result(const Etcdserverpb__TxnResponse *r, idgen_etcd_result *out)
{
    memset(out, 0, sizeof(*out));
    size_t npairs = 0;
    for (size_t i = 0; i < r->n_responses; i++) {
        const Etcdserverpb__ResponseOp *op = r->responses[i];
        if (op->response_case == ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE &&
            op->response_range)
            npairs += op->response_range->n_kvs;
    }
    struct result_mem *m = metcd_calloc(1, sizeof(*m));
    if (m) {
        m->ops = metcd_calloc(r->n_responses + 1, sizeof(*m->ops));
        m->pairs = metcd_calloc(npairs + 1, sizeof(*m->pairs));
    }
    if (!m || !m->ops || !m->pairs) {
        if (m) {
            metcd_free(m->ops);
            metcd_free(m->pairs);
        }
        metcd_free(m);
        return IDGEN_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < r->n_responses; i++) {
        const Etcdserverpb__ResponseOp *op = r->responses[i];
        m->ops[i].kvs = m->pairs + k;
        if (op->response_case == ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE &&
            op->response_range) {
            for (size_t j = 0; j < op->response_range->n_kvs; j++)
                idgen_etcd_pair(op->response_range->kvs[j], &m->pairs[k++]);
            m->ops[i].n = op->response_range->n_kvs;
        }
    }
    out->r.succeeded = r->succeeded;
    out->r.revision = r->header ? r->header->revision : 0;
    out->r.ops = m->ops;
    out->r.nops = r->n_responses;
    out->mem = m;
    return 0;
}

void idgen_etcd_result_free(idgen_etcd_result *x)
{
    struct result_mem *m = x->mem;
    if (m) {
        metcd_free(m->ops);
        metcd_free(m->pairs);
        metcd_free(m);
    }
    memset(x, 0, sizeof(*x));
}
