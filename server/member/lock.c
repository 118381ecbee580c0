/* server/member/lock.c - the v3lockpb.Lock service (etcd 3.4's
 * etcdserver/api/v3lock, which runs clientv3/concurrency's Mutex on an
 * in-process client), on the member's loop.
 *
 * Lock(name, lease): the owner key is "name/<lease in hex>". One txn puts
 * it with the lease unless it exists (then its create revision is reused:
 * locking twice with one lease is one acquisition) and reads the first
 * created key under "name/". If that is ours, the lock is held; otherwise
 * waitDeletes waits for every key created before ours to go, and the
 * answer carries the header of its last read. If the client goes away
 * (cancel, deadline) while waiting, or the wait fails, the key is deleted
 * again, as Mutex.Lock's Unlock on failure does.
 *
 * Unlock(key): deletes the key (whoever's it is, as etcd does).
 *
 * Errors reach the client as etcd's in-process client relays them: status
 * UNKNOWN with etcd's text (member_fail_call_relayed). */
#include "server/member/concurrency.h"

#include "common/mem.h"
#include "server/v3lockpb/v3lock.pb-c.h"

#include <string.h>

typedef enum lock_stage {
    LOCK_SESSION, /* lease 0: granting the session's lease */
    LOCK_TXN,     /* the create-if-absent txn is proposed */
    LOCK_WAIT,    /* waiting for the keys created before ours */
    LOCK_RELEASE, /* deleting our key after a cancel or a failure */
} lock_stage;

typedef struct lock_op {
    member *m;
    struct rpc_call *call; /* NULL once the client went away */
    conc_prefix pfx;
    uint8_t *key; /* our owner key */
    size_t key_len;
    int64_t lease;
    int64_t rev; /* our key's create revision */
    lock_stage stage;
    wait_deletes *wd;
    int err; /* answered once the release is done */
} lock_op;

static void lock_op_free(lock_op *op)
{
    wait_deletes_cancel(op->wd);
    conc_prefix_free(&op->pfx);
    metcd_free(op->key);
    op->m->n_conc_ops--;
    metcd_free(op);
}

static void reply_lock(lock_op *op, int64_t rev)
{
    V3lockpb__LockResponse resp = V3LOCKPB__LOCK_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    fill_header(op->m, &h, rev);
    resp.header = &h;
    resp.key.data = op->key;
    resp.key.len = op->key_len;
    rpc_call_reply(op->call, &resp.base);
    op->call = NULL;
}

static void fail_lock(lock_op *op, int err)
{
    if (op->call)
        member_fail_call_relayed(op->call, err);
    op->call = NULL;
}

static void on_release_done(member *m, void *arg, int rc, const mvcc_op_resp *r)
{
    (void)m;
    (void)rc; /* as Mutex.Lock, the release's own failure is not reported */
    (void)r;
    lock_op *op = arg;
    fail_lock(op, op->err);
    lock_op_free(op);
}

/* Deletes our key, then answers err (0: the client is gone) and frees op. */
static void release(lock_op *op, int err)
{
    op->stage = LOCK_RELEASE;
    op->err = err;
    /* a stopping member fails every proposal before it cancels the calls:
     * nothing proposed now would be answered */
    int rc = op->m->stopping
                 ? MERR_STOPPED
                 : conc_propose_delete(op->m, op->key, op->key_len, on_release_done, op);
    if (rc) {
        fail_lock(op, err);
        lock_op_free(op);
    }
}

static void on_wait_done(member *m, void *arg, int rc, int64_t rev)
{
    (void)m;
    lock_op *op = arg;
    op->wd = NULL;
    if (rc) {
        release(op, rc);
        return;
    }
    reply_lock(op, rev);
    lock_op_free(op);
}

static void on_txn_done(member *m, void *arg, int rc, const mvcc_op_resp *r)
{
    lock_op *op = arg;
    if (rc == 0 && (r->type != MVCC_OP_TXN || r->u.txn.nresponses != 2))
        rc = MERR_INTERNAL;
    if (rc) {
        fail_lock(op, rc);
        lock_op_free(op);
        return;
    }
    bool created = r->u.txn.succeeded;
    const mvcc_op_resp *mine = &r->u.txn.responses[0];
    const mvcc_op_resp *owner = &r->u.txn.responses[1];
    if (created) {
        op->rev = r->revision;
    } else if (mine->u.range.nkvs == 1) {
        op->rev = mine->u.range.kvs[0].create_revision;
    } else {
        fail_lock(op, MERR_INTERNAL);
        lock_op_free(op);
        return;
    }
    if (!op->call) {
        /* The client left while the txn was in flight. etcd would leave a
         * key it created behind until its lease ends; take it back now. */
        if (created)
            release(op, 0);
        else
            lock_op_free(op);
        return;
    }
    if (owner->u.range.nkvs == 0 || owner->u.range.kvs[0].create_revision == op->rev) {
        reply_lock(op, r->revision);
        lock_op_free(op);
        return;
    }
    op->stage = LOCK_WAIT;
    rc = wait_deletes_start(m, &op->pfx, op->rev - 1, on_wait_done, op, &op->wd);
    if (rc)
        release(op, rc);
}

/* Mutex.Lock's first txn: if create_revision(key) == 0 then put(key, lease),
 * get first-created(prefix) else get(key), get first-created(prefix). */
static int propose_lock(lock_op *op)
{
    op->key = conc_key(op->pfx.key, op->pfx.len - 1, op->lease, &op->key_len);
    if (!op->key)
        return MERR_INTERNAL;
    conc_op put = {.type = MVCC_OP_PUT, .key = op->key, .key_len = op->key_len, .lease = op->lease};
    conc_op get = {.type = MVCC_OP_RANGE, .key = op->key, .key_len = op->key_len};
    conc_op owner = {.type = MVCC_OP_RANGE, .pfx = &op->pfx};
    conc_op then[2] = {put, owner}, els[2] = {get, owner};
    op->stage = LOCK_TXN;
    return conc_propose_txn(op->m, op->key, op->key_len, 0, then, 2, els, 2, on_txn_done, op);
}

static void on_session_done(member *m, void *arg, int rc, const mvcc_op_resp *r)
{
    (void)m;
    (void)r;
    lock_op *op = arg;
    if (rc == 0 && !op->call)
        rc = MERR_STOPPED; /* the client left: the new lease just runs out */
    if (rc == 0)
        rc = propose_lock(op);
    if (rc) {
        fail_lock(op, rc);
        lock_op_free(op);
    }
}

static void on_lock(struct rpc_call *call, const ProtobufCMessage *msg)
{
    member *m = rpc_call_service_data(call);
    const V3lockpb__LockRequest *req = (const V3lockpb__LockRequest *)msg;
    if (conc_auth_refused(m, call, req->name.data, req->name.len, true, req->lease, NULL, 0,
                          false))
        return;
    if (m->n_conc_ops >= CONC_MAX_OPS) {
        member_fail_call_relayed(call, MERR_TOO_MANY_REQUESTS);
        return;
    }
    lock_op *op = metcd_calloc(1, sizeof(*op));
    if (!op) {
        member_fail_call_relayed(call, MERR_INTERNAL);
        return;
    }
    op->m = m;
    m->n_conc_ops++;
    op->lease = req->lease;
    int rc = conc_prefix_init(&op->pfx, req->name.data, req->name.len);
    if (rc == 0 && op->lease == 0) {
        /* concurrency.NewSession without a lease grants one */
        op->stage = LOCK_SESSION;
        rc = member_lease_grant(m, CONC_SESSION_TTL, &op->lease, on_session_done, op);
    } else if (rc == 0) {
        rc = propose_lock(op);
    }
    if (rc) {
        member_fail_call_relayed(call, rc);
        lock_op_free(op);
        return;
    }
    op->call = call;
    rpc_call_set_data(call, op);
}

static void on_lock_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    lock_op *op = rpc_call_get_data(call);
    if (!op)
        return;
    op->call = NULL;
    if (op->stage == LOCK_WAIT) {
        wait_deletes_cancel(op->wd);
        op->wd = NULL;
        release(op, 0);
    }
    /* the other stages finish in their proposal's callback */
}

/* ---- Unlock -------------------------------------------------------------------- */

typedef struct unlock_op {
    member *m;
    struct rpc_call *call; /* NULL once the client went away */
} unlock_op;

static void unlock_op_free(unlock_op *op)
{
    op->m->n_conc_ops--;
    metcd_free(op);
}

static void on_unlock_done(member *m, void *arg, int rc, const mvcc_op_resp *r)
{
    unlock_op *op = arg;
    if (op->call) {
        if (rc) {
            member_fail_call_relayed(op->call, rc);
        } else {
            V3lockpb__UnlockResponse resp = V3LOCKPB__UNLOCK_RESPONSE__INIT;
            Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
            fill_header(m, &h, r->revision);
            resp.header = &h;
            rpc_call_reply(op->call, &resp.base);
        }
    }
    unlock_op_free(op);
}

static void on_unlock(struct rpc_call *call, const ProtobufCMessage *msg)
{
    member *m = rpc_call_service_data(call);
    const V3lockpb__UnlockRequest *req = (const V3lockpb__UnlockRequest *)msg;
    if (conc_auth_refused(m, call, NULL, 0, false, 0, req->key.data, req->key.len, false))
        return;
    if (m->n_conc_ops >= CONC_MAX_OPS) {
        member_fail_call_relayed(call, MERR_TOO_MANY_REQUESTS);
        return;
    }
    unlock_op *op = metcd_calloc(1, sizeof(*op));
    if (!op) {
        member_fail_call_relayed(call, MERR_INTERNAL);
        return;
    }
    op->m = m;
    m->n_conc_ops++;
    int rc = conc_propose_delete(m, req->key.data, req->key.len, on_unlock_done, op);
    if (rc) {
        member_fail_call_relayed(call, rc);
        unlock_op_free(op);
        return;
    }
    op->call = call;
    rpc_call_set_data(call, op);
}

static void on_unlock_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    unlock_op *op = rpc_call_get_data(call);
    if (op)
        op->call = NULL; /* freed when the delete is applied or fails */
}

static const struct rpc_method lock_methods[] = {
    {"/v3lockpb.Lock/Lock", RPC_UNARY, &v3lockpb__lock_request__descriptor,
     &v3lockpb__lock_response__descriptor, NULL, on_lock, NULL, on_lock_cancel, NULL},
    {"/v3lockpb.Lock/Unlock", RPC_UNARY, &v3lockpb__unlock_request__descriptor,
     &v3lockpb__unlock_response__descriptor, NULL, on_unlock, NULL, on_unlock_cancel, NULL},
};

int lock_register(member *m)
{
    return rpc_server_register(m->rpc, lock_methods, sizeof(lock_methods) / sizeof(lock_methods[0]),
                               m);
}
