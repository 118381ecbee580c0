/* server/member/idgen_kv.c - idgen's KV interface (idgen/idgen.h) inside a
 * member, on the loop:
 *
 *   txn        proposed through raft (member_propose), answered when
 *              applied on this member, with the applied result;
 *   get        a local (serializable) range of the MVCC store, answered
 *              before the call returns;
 *   grant      member_lease_grant; the granted TTL read from the lessor;
 *   keep-alive member_lease_keepalive, answered before the call returns;
 *   revoke     proposed through raft;
 *   watch      a watch_stream of the watchable store with its own send
 *              callback, events handed over as they are applied.
 *
 * Every completion runs exactly once: proposals are failed by the wait
 * table on timeout and at shutdown (MERR_STOPPED). */
#include "server/member/internal.h"

#include "common/mem.h"
#include "idgen/etcdkv/etcdkv.h"
#include "watch/watch.h"

#include <string.h>

/* ---- txn ---------------------------------------------------------------------------------- */

struct txn_ctx {
    idgen_txn_fn done;
    void *arg;
};

/* The idgen result of an applied txn (arrays freed after the callback). */
static void txn_applied(member *m, void *arg, int rc, const mvcc_op_resp *r)
{
    (void)m;
    struct txn_ctx *c = arg;
    if (rc != 0 || !r || r->type != MVCC_OP_TXN) {
        c->done(c->arg, rc ? rc : MERR_INTERNAL, NULL);
        metcd_free(c);
        return;
    }
    size_t n = r->u.txn.nresponses, npairs = 0;
    for (size_t i = 0; i < n; i++)
        if (r->u.txn.responses[i].type == MVCC_OP_RANGE)
            npairs += r->u.txn.responses[i].u.range.nkvs;
    idgen_kvs *ops = metcd_calloc(n + 1, sizeof(*ops));
    idgen_kv_pair *pairs = metcd_calloc(npairs + 1, sizeof(*pairs));
    if (!ops || !pairs) {
        c->done(c->arg, MVCC_ENOMEM, NULL);
    } else {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            const mvcc_op_resp *o = &r->u.txn.responses[i];
            ops[i].kvs = pairs + k;
            if (o->type != MVCC_OP_RANGE)
                continue;
            for (size_t j = 0; j < o->u.range.nkvs; j++) {
                const mvcc_kv *kv = &o->u.range.kvs[j];
                pairs[k++] = (idgen_kv_pair){.key = (const char *)kv->key,
                                             .key_len = kv->key_len,
                                             .value = (const char *)kv->value,
                                             .value_len = kv->value_len,
                                             .create_rev = kv->create_revision,
                                             .mod_rev = kv->mod_revision,
                                             .lease = kv->lease};
            }
            ops[i].n = o->u.range.nkvs;
        }
        idgen_txn_result res = {
            .succeeded = r->u.txn.succeeded, .revision = r->revision, .ops = ops, .nops = n};
        c->done(c->arg, 0, &res);
    }
    metcd_free(ops);
    metcd_free(pairs);
    metcd_free(c);
}

static int k_txn(void *kv, const idgen_txn *t, idgen_txn_fn done, void *arg)
{
    member *m = kv;
    struct txn_ctx *c = metcd_malloc(sizeof(*c));
    if (!c)
        return MVCC_ENOMEM;
    c->done = done;
    c->arg = arg;
    idgen_etcd_txn et;
    int rc = idgen_etcd_txn_build(t, &et);
    if (rc == 0) {
        Memberpb__Request req = MEMBERPB__REQUEST__INIT;
        req.op_case = MEMBERPB__REQUEST__OP_TXN;
        req.txn = &et.req;
        rc = member_propose(m, &req, WAIT_TXN, true, txn_applied, c);
        idgen_etcd_txn_free(&et);
    }
    if (rc != 0)
        metcd_free(c);
    return rc;
}

/* ---- get ----------------------------------------------------------------------------------- */

static int k_get(void *kv, const char *key, size_t key_len, bool prefix, idgen_get_fn done,
                 void *arg)
{
    member *m = kv;
    char *end = prefix ? metcd_malloc(key_len + 1) : NULL;
    if (prefix && !end)
        return MVCC_ENOMEM;
    mvcc_range_req rr = {.key = (const uint8_t *)key, .key_len = key_len};
    if (prefix) {
        rr.range_end = (const uint8_t *)end;
        rr.range_end_len = idgen_etcd_prefix_end(key, key_len, end);
    }
    mvcc_result res = {0};
    int rc = mvcc_range(m->kv, &rr, &res);
    metcd_free(end);
    if (rc != 0)
        return rc;
    size_t n = res.resp.u.range.nkvs;
    idgen_kv_pair *pairs = metcd_calloc(n + 1, sizeof(*pairs));
    if (!pairs) {
        mvcc_result_free(&res);
        return MVCC_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const mvcc_kv *x = &res.resp.u.range.kvs[i];
        pairs[i] = (idgen_kv_pair){.key = (const char *)x->key,
                                   .key_len = x->key_len,
                                   .value = (const char *)x->value,
                                   .value_len = x->value_len,
                                   .create_rev = x->create_revision,
                                   .mod_rev = x->mod_revision,
                                   .lease = x->lease};
    }
    done(arg, 0, pairs, n, res.resp.revision ? res.resp.revision : mvcc_current_rev(m->kv));
    metcd_free(pairs);
    mvcc_result_free(&res);
    return 0;
}

/* ---- leases --------------------------------------------------------------------------------- */

struct lease_ctx {
    idgen_lease_fn done;
    void *arg;
    int64_t id;
};

static void lease_granted(member *m, void *arg, int rc, const mvcc_op_resp *r)
{
    (void)r;
    struct lease_ctx *c = arg;
    mvcc_lease_info in = {0};
    if (rc == 0 && (!m->lessor || mvcc_lease_get(m->lessor, c->id, &in) != 0))
        rc = MVCC_ELEASE_NOT_FOUND; /* revoked again before we heard of it */
    c->done(c->arg, rc, rc ? 0 : c->id, rc ? 0 : in.ttl);
    metcd_free(c);
}

static int k_grant(void *kv, int64_t ttl, idgen_lease_fn done, void *arg)
{
    member *m = kv;
    struct lease_ctx *c = metcd_calloc(1, sizeof(*c));
    if (!c)
        return MVCC_ENOMEM;
    c->done = done;
    c->arg = arg;
    int rc = member_lease_grant(m, ttl, &c->id, lease_granted, c);
    if (rc != 0)
        metcd_free(c);
    return rc;
}

static int k_keepalive(void *kv, int64_t id, idgen_lease_fn done, void *arg)
{
    member *m = kv;
    int64_t ttl = 0;
    int rc = member_lease_keepalive(m, id, &ttl);
    if (rc == MVCC_ELEASE_NOT_FOUND)
        rc = IDGEN_ELOST;
    done(arg, rc, id, rc ? 0 : ttl);
    return 0;
}

static void lease_revoked(member *m, void *arg, int rc, const mvcc_op_resp *r)
{
    (void)m;
    (void)r;
    struct lease_ctx *c = arg;
    c->done(c->arg, rc == MVCC_ELEASE_NOT_FOUND ? 0 : rc, 0, 0);
    metcd_free(c);
}

static int k_revoke(void *kv, int64_t id, idgen_lease_fn done, void *arg)
{
    member *m = kv;
    struct lease_ctx *c = metcd_calloc(1, sizeof(*c));
    if (!c)
        return MVCC_ENOMEM;
    c->done = done;
    c->arg = arg;
    Etcdserverpb__LeaseRevokeRequest r = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
    r.id = id;
    Memberpb__Request req = MEMBERPB__REQUEST__INIT;
    req.op_case = MEMBERPB__REQUEST__OP_LEASE_REVOKE;
    req.lease_revoke = &r;
    int rc = member_propose(m, &req, WAIT_LEASE, false, lease_revoked, c);
    if (rc != 0)
        metcd_free(c);
    return rc;
}

/* ---- watch --------------------------------------------------------------------------------- */

struct kwatch {
    watch_stream *ws;
    idgen_watch_fn fn;
    void *arg;
    bool ended;
};

static void to_pair(const mvcc_kv *kv, idgen_kv_pair *out)
{
    *out = (idgen_kv_pair){.key = (const char *)kv->key,
                           .key_len = kv->key_len,
                           .value = (const char *)kv->value,
                           .value_len = kv->value_len,
                           .create_rev = kv->create_revision,
                           .mod_rev = kv->mod_revision,
                           .lease = kv->lease};
}

static int kw_send(void *arg, const watch_response *r)
{
    struct kwatch *w = arg;
    if (w->ended)
        return 0;
    if (r->canceled) { /* compacted away (or refused): the caller lists again */
        w->ended = true;
        w->fn(w->arg, IDGEN_EKV, NULL, 0, r->revision);
        return 0;
    }
    if (!r->nevents)
        return 0; /* created, progress */
    idgen_watch_event *ev = metcd_calloc(r->nevents, sizeof(*ev));
    if (!ev)
        return WATCH_SEND_FULL; /* parked as a victim and sent again */
    for (size_t i = 0; i < r->nevents; i++) {
        ev[i].type = r->events[i].type == MVCC_EVENT_DELETE ? IDGEN_WATCH_DELETE : IDGEN_WATCH_PUT;
        to_pair(r->events[i].kv, &ev[i].kv);
    }
    /* a response may hold several revisions (catch-up): hand them over one
     * revision at a time, as the interface promises */
    size_t i = 0;
    while (i < r->nevents) {
        size_t j = i + 1;
        while (j < r->nevents && ev[j].kv.mod_rev == ev[i].kv.mod_rev)
            j++;
        w->fn(w->arg, 0, ev + i, j - i, ev[i].kv.mod_rev);
        i = j;
    }
    metcd_free(ev);
    return 0;
}

static int k_watch(void *kv, const char *prefix, size_t len, int64_t start_rev, idgen_watch_fn fn,
                   void *arg, void **handle)
{
    member *m = kv;
    if (!m->watch)
        return MERR_STOPPED;
    struct kwatch *w = metcd_calloc(1, sizeof(*w));
    char *end = metcd_malloc(len + 1);
    if (!w || !end) {
        metcd_free(w);
        metcd_free(end);
        return MVCC_ENOMEM;
    }
    w->fn = fn;
    w->arg = arg;
    int rc = watch_stream_new(&w->ws, m->watch, kw_send, w);
    if (rc == 0) {
        watch_create c = {.key = (const uint8_t *)prefix,
                          .key_len = len,
                          .range_end = (const uint8_t *)end,
                          .range_end_len = idgen_etcd_prefix_end(prefix, len, end),
                          .start_revision = start_rev};
        rc = watch_stream_create(w->ws, &c);
        if (rc != 0)
            watch_stream_free(w->ws);
    }
    metcd_free(end);
    if (rc != 0) {
        metcd_free(w);
        return rc;
    }
    *handle = w;
    return 0;
}

static void k_watch_cancel(void *kv, void *handle)
{
    (void)kv;
    struct kwatch *w = handle;
    watch_stream_free(w->ws);
    metcd_free(w);
}

static const idgen_kv_ops member_kv_ops = {
    .txn = k_txn,
    .get = k_get,
    .lease_grant = k_grant,
    .lease_keepalive = k_keepalive,
    .lease_revoke = k_revoke,
    .watch = k_watch,
    .watch_cancel = k_watch_cancel,
};

void idgen_member_kv(member *m, idgen_kv *out)
{
    out->ops = &member_kv_ops;
    out->data = m;
}
