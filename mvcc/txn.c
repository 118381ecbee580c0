/* mvcc/txn.c - Txn: validation, compares and branches.
 *
 * Follows etcd 3.4: the request is checked as its gRPC layer checks it
 * (v3rpc/key.go checkTxnRequest + checkIntervals: op counts, empty keys,
 * a key put twice or put and deleted in one txn); every compare of the
 * whole txn tree is evaluated against the state before the txn
 * (compareToPath), puts and ranges on the chosen path are checked
 * (ignore_value/ignore_lease need the key, leases must exist, revisions must
 * be readable), and only then is anything written. All writes share one
 * main revision.
 */
#include "mvcc/internal.h"

#include "common/mem.h"

#include <string.h>

/* ---- validation ------------------------------------------------------------- */

static int check_op(const mvcc_store *s, const mvcc_op *op, uint32_t max_ops);

static int check_txn(const mvcc_store *s, const mvcc_txn_req *r, uint32_t max_ops)
{
    size_t opc = r->ncompare;
    if (opc < r->nsuccess)
        opc = r->nsuccess;
    if (opc < r->nfailure)
        opc = r->nfailure;
    if (opc > max_ops)
        return MVCC_ETOO_MANY_OPS;
    for (size_t i = 0; i < r->ncompare; i++) {
        const mvcc_compare *c = &r->compare[i];
        if (c->key_len == 0)
            return MVCC_EEMPTY_KEY;
        if (c->result < MVCC_CMP_EQUAL || c->result > MVCC_CMP_NOT_EQUAL ||
            c->target < MVCC_CMP_VERSION || c->target > MVCC_CMP_LEASE)
            return MVCC_EINVALID;
    }
    for (size_t i = 0; i < r->nsuccess; i++) {
        int rc = check_op(s, &r->success[i], max_ops - (uint32_t)opc);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < r->nfailure; i++) {
        int rc = check_op(s, &r->failure[i], max_ops - (uint32_t)opc);
        if (rc)
            return rc;
    }
    return 0;
}

static int check_op(const mvcc_store *s, const mvcc_op *op, uint32_t max_ops)
{
    switch (op->type) {
    case MVCC_OP_RANGE:
        return check_range_req(&op->u.range);
    case MVCC_OP_PUT:
        return check_put_req(&op->u.put);
    case MVCC_OP_DELETE:
        return op->u.del.key_len ? 0 : MVCC_EEMPTY_KEY;
    case MVCC_OP_TXN:
        return check_txn(s, &op->u.txn, max_ops);
    default:
        return MVCC_EKEY_NOT_FOUND; /* etcd answers an empty op so */
    }
}

/* Interval bookkeeping for the duplicate-key check. Bounds compare as etcd's
 * adt "affine" strings: an empty end is +infinity; "\0" is literal. */
struct ival {
    const uint8_t *lo;
    size_t lo_len;
    const uint8_t *hi; /* NULL: the point lo */
    size_t hi_len;
};

struct keyset {
    struct ival *v;
    size_t n, cap;
};

static int set_add(struct keyset *s, struct ival iv)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct ival *v = metcd_realloc(s->v, cap * sizeof(*v));
        if (!v)
            return MVCC_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = iv;
    return 0;
}

static bool set_has_key(const struct keyset *s, const uint8_t *k, size_t kl)
{
    for (size_t i = 0; i < s->n; i++)
        if (key_cmp(s->v[i].lo, s->v[i].lo_len, k, kl) == 0)
            return true;
    return false;
}

static bool dels_intersect(const struct keyset *dels, const uint8_t *k, size_t kl)
{
    for (size_t i = 0; i < dels->n; i++) {
        const struct ival *d = &dels->v[i];
        if (!d->hi) {
            if (key_cmp(d->lo, d->lo_len, k, kl) == 0)
                return true;
        } else if (key_cmp(d->lo, d->lo_len, k, kl) <= 0 &&
                   key_cmp(k, kl, d->hi, d->hi_len) < 0) {
            return true;
        }
    }
    return false;
}

static int set_merge(struct keyset *dst, const struct keyset *src)
{
    for (size_t i = 0; i < src->n; i++) {
        int rc = set_add(dst, src->v[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* etcd's checkIntervals over one op list: fills puts and dels. */
static int check_intervals(const mvcc_op *ops, size_t n, struct keyset *puts, struct keyset *dels)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].type != MVCC_OP_DELETE)
            continue;
        const mvcc_delete_req *d = &ops[i].u.del;
        struct ival iv = {d->key, d->key_len, d->range_end_len ? d->range_end : NULL,
                          d->range_end_len};
        if ((rc = set_add(dels, iv)))
            return rc;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (ops[i].type != MVCC_OP_TXN)
            continue;
        const mvcc_txn_req *t = &ops[i].u.txn;
        struct keyset pt = {0}, dt = {0}, pe = {0}, de = {0};
        rc = check_intervals(t->success, t->nsuccess, &pt, &dt);
        if (rc == 0)
            rc = check_intervals(t->failure, t->nfailure, &pe, &de);
        for (size_t j = 0; rc == 0 && j < pt.n; j++) {
            if (set_has_key(puts, pt.v[j].lo, pt.v[j].lo_len) ||
                dels_intersect(dels, pt.v[j].lo, pt.v[j].lo_len))
                rc = MVCC_EDUPLICATE_KEY;
            else
                rc = set_add(puts, pt.v[j]);
        }
        for (size_t j = 0; rc == 0 && j < pe.n; j++) {
            /* then/else are exclusive: the same key in both is fine */
            if ((set_has_key(puts, pe.v[j].lo, pe.v[j].lo_len) &&
                 !set_has_key(&pt, pe.v[j].lo, pe.v[j].lo_len)) ||
                dels_intersect(dels, pe.v[j].lo, pe.v[j].lo_len))
                rc = MVCC_EDUPLICATE_KEY;
            else
                rc = set_add(puts, pe.v[j]);
        }
        if (rc == 0)
            rc = set_merge(dels, &dt);
        if (rc == 0)
            rc = set_merge(dels, &de);
        metcd_free(pt.v);
        metcd_free(dt.v);
        metcd_free(pe.v);
        metcd_free(de.v);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (ops[i].type != MVCC_OP_PUT)
            continue;
        const mvcc_put_req *p = &ops[i].u.put;
        if (set_has_key(puts, p->key, p->key_len) || dels_intersect(dels, p->key, p->key_len))
            return MVCC_EDUPLICATE_KEY;
        rc = set_add(puts, (struct ival){p->key, p->key_len, NULL, 0});
    }
    return rc;
}

static int check_dups(const mvcc_op *ops, size_t n)
{
    struct keyset puts = {0}, dels = {0};
    int rc = check_intervals(ops, n, &puts, &dels);
    metcd_free(puts.v);
    metcd_free(dels.v);
    return rc;
}

int mvcc_txn_validate(const mvcc_store *s, const mvcc_txn_req *req)
{
    int rc = check_txn(s, req, s->opt.max_txn_ops);
    if (rc)
        return rc;
    rc = check_dups(req->success, req->nsuccess);
    if (rc)
        return rc;
    return check_dups(req->failure, req->nfailure);
}

/* ---- compares ------------------------------------------------------------------ */

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b ? 1 : 0;
}

static bool compare_kv(const mvcc_compare *c, const mvcc_kv *kv)
{
    int r = 0;
    switch (c->target) {
    case MVCC_CMP_VALUE:
        r = key_cmp(kv->value, kv->value_len, c->value, c->value_len);
        break;
    case MVCC_CMP_CREATE:
        r = cmp_i64(kv->create_revision, c->number);
        break;
    case MVCC_CMP_MOD:
        r = cmp_i64(kv->mod_revision, c->number);
        break;
    case MVCC_CMP_VERSION:
        r = cmp_i64(kv->version, c->number);
        break;
    case MVCC_CMP_LEASE:
        r = cmp_i64(kv->lease, c->number);
        break;
    }
    switch (c->result) {
    case MVCC_CMP_EQUAL:
        return r == 0;
    case MVCC_CMP_NOT_EQUAL:
        return r != 0;
    case MVCC_CMP_GREATER:
        return r > 0;
    case MVCC_CMP_LESS:
        return r < 0;
    }
    return true;
}

/* etcd's applyCompare: every key in the range must satisfy the compare; no
 * key compares as a zero KeyValue, except that a VALUE compare fails. */
static int apply_compare(mvcc_store *s, const mvcc_compare *c, bool *ok)
{
    mvcc_result res = {0};
    mvcc_range_req rr = {.key = c->key,
                         .key_len = c->key_len,
                         .range_end = c->range_end,
                         .range_end_len = c->range_end_len};
    struct mvcc_arena *a = result_arena(&res);
    if (!a)
        return MVCC_ENOMEM;
    /* a range inside this txn (etcd counts it as one, not as a txn) */
    int rc = store_range(s, &rr, s->current_rev, a, &res.resp);
    if (rc) {
        mvcc_result_free(&res);
        *ok = false;
        return rc == MVCC_ENOMEM || rc == MVCC_EBACKEND || rc == MVCC_ECORRUPT ? rc : 0;
    }
    const mvcc_op_resp *r = &res.resp;
    if (r->u.range.nkvs == 0) {
        mvcc_kv zero = {0};
        *ok = c->target == MVCC_CMP_VALUE ? false : compare_kv(c, &zero);
    } else {
        *ok = true;
        for (size_t i = 0; i < r->u.range.nkvs && *ok; i++)
            *ok = compare_kv(c, &r->u.range.kvs[i]);
    }
    mvcc_result_free(&res);
    return 0;
}

struct path {
    bool *v;
    size_t n, cap;
};

static int path_push(struct path *p, bool b)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        bool *v = metcd_realloc(p->v, cap * sizeof(*v));
        if (!v)
            return MVCC_ENOMEM;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = b;
    return 0;
}

/* etcd's compareToPath: the branch taken by the txn and by every nested
 * txn on that branch, in pre-order, all against the state before writes. */
static int compare_to_path(mvcc_store *s, const mvcc_txn_req *r, struct path *p)
{
    bool ok = true;
    for (size_t i = 0; i < r->ncompare && ok; i++) {
        int rc = apply_compare(s, &r->compare[i], &ok);
        if (rc)
            return rc;
    }
    int rc = path_push(p, ok);
    if (rc)
        return rc;
    const mvcc_op *ops = ok ? r->success : r->failure;
    size_t n = ok ? r->nsuccess : r->nfailure;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].type != MVCC_OP_TXN)
            continue;
        rc = compare_to_path(s, &ops[i].u.txn, p);
        if (rc)
            return rc;
    }
    return 0;
}

/* Pre-write checks along the path (etcd's checkPut and checkRange). */
static int check_path(mvcc_store *s, const mvcc_txn_req *r, const struct path *p, size_t *pi)
{
    bool ok = p->v[(*pi)++];
    const mvcc_op *ops = ok ? r->success : r->failure;
    size_t n = ok ? r->nsuccess : r->nfailure;
    for (size_t i = 0; i < n; i++) {
        const mvcc_op *op = &ops[i];
        int rc = 0;
        if (op->type == MVCC_OP_PUT) {
            const mvcc_put_req *pr = &op->u.put;
            if (pr->ignore_value || pr->ignore_lease) {
                key_index *ki = bt_get(&s->index, pr->key, pr->key_len);
                if (!ki || !ki_get(ki, INT64_MAX, NULL, NULL, NULL))
                    return MVCC_EKEY_NOT_FOUND;
            }
            if (pr->lease && s->lease.lease_exists &&
                !s->lease.lease_exists(s->lease.arg, pr->lease))
                return MVCC_ELEASE_NOT_FOUND;
        } else if (op->type == MVCC_OP_RANGE) {
            int64_t rev = op->u.range.revision;
            if (rev > 0 && rev > s->current_rev)
                return MVCC_EFUTURE_REV;
            if (rev > 0 && rev < s->compact_rev)
                return MVCC_ECOMPACTED;
        } else if (op->type == MVCC_OP_TXN) {
            rc = check_path(s, &op->u.txn, p, pi);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* Applies the chosen branch (etcd's applyTxn); nested txn responses carry
 * no revision, as etcd leaves their headers empty. */
static int apply_path(mvcc_store *s, const mvcc_txn_req *r, const struct path *p, size_t *pi,
                      struct mvcc_arena *a, mvcc_op_resp *out)
{
    bool ok = p->v[(*pi)++];
    const mvcc_op *ops = ok ? r->success : r->failure;
    size_t n = ok ? r->nsuccess : r->nfailure;
    out->type = MVCC_OP_TXN;
    out->revision = 0;
    out->u.txn.succeeded = ok;
    out->u.txn.nresponses = n;
    out->u.txn.responses = NULL;
    if (n) {
        out->u.txn.responses = arena_alloc(a, n * sizeof(mvcc_op_resp));
        if (!out->u.txn.responses)
            return MVCC_ENOMEM;
        memset(out->u.txn.responses, 0, n * sizeof(mvcc_op_resp));
    }
    for (size_t i = 0; i < n; i++) {
        const mvcc_op *op = &ops[i];
        mvcc_op_resp *ro = &out->u.txn.responses[i];
        int rc;
        switch (op->type) {
        case MVCC_OP_RANGE:
            rc = store_range(s, &op->u.range, wtx_read_rev(s), a, ro);
            break;
        case MVCC_OP_PUT:
            rc = store_put(s, &op->u.put, a, ro);
            break;
        case MVCC_OP_DELETE:
            rc = store_delete(s, &op->u.del, a, ro);
            break;
        default:
            rc = apply_path(s, &op->u.txn, p, pi, a, ro);
            break;
        }
        if (rc)
            return rc;
    }
    return 0;
}

int mvcc_txn(mvcc_store *s, const mvcc_txn_req *req, mvcc_result *res)
{
    int rc = mvcc_txn_validate(s, req);
    if (rc)
        return rc;
    struct mvcc_arena *a = result_arena(res);
    if (!a)
        return MVCC_ENOMEM;
    struct path p = {0};
    rc = compare_to_path(s, req, &p);
    size_t pi = 0;
    if (rc == 0)
        rc = check_path(s, req, &p, &pi);
    if (rc == 0) {
        pi = 0;
        wtx_begin(s);
        rc = apply_path(s, req, &p, &pi, a, &res->resp);
        res->resp.revision = wtx_read_rev(s);
        wtx_end(s);
    }
    metcd_free(p.v);
    if (rc)
        mvcc_result_free(res);
    return rc;
}
