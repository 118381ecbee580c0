/* server/member/election.c - the v3electionpb.Election service (etcd 3.4's
 * etcdserver/api/v3election, which runs clientv3/concurrency's Election on
 * an in-process client), on the member's loop.
 *
 * Candidates hold keys "name/<lease in hex>"; the leader is the candidate
 * whose key was created first, and its value is the proclamation.
 *   Campaign: put the key with the value unless it exists (then reuse its
 *     create revision, and proclaim the new value if it differs), then
 *     waitDeletes for every candidate created before it. The answer carries
 *     the header of the first txn and LeaderKey{name, key, rev, lease}. A
 *     client that goes away while waiting resigns.
 *   Proclaim: put the value if the key's create revision is still rev, else
 *     "election: not leader".
 *   Resign: delete the key if its create revision is still rev.
 *   Leader: the first-created key after a linearizable read barrier, else
 *     "election: no leader".
 *   Observe: the current leader's key-value (or the first one put), then
 *     every put to that key until it is deleted, then the next leader, and
 *     so on until the client leaves (Election.observe). A slow client only
 *     ever lags: the watch store parks its watcher, and puts already sent
 *     are never sent twice.
 * Errors reach the client as etcd's in-process client relays them: status
 * UNKNOWN with etcd's text (member_fail_call_relayed). */
#include "server/member/concurrency.h"

#include "common/mem.h"
#include "server/v3electionpb/v3election.pb-c.h"
#include "watch/watch.h"

#include <event2/event.h>
#include <string.h>

static bool conc_full(member *m, struct rpc_call *call)
{
    if (m->n_conc_ops < CONC_MAX_OPS)
        return false;
    member_fail_call_relayed(call, MERR_TOO_MANY_REQUESTS);
    return true;
}

static void answer_header(struct rpc_call *call, const member *m, ProtobufCMessage *resp,
                          Etcdserverpb__ResponseHeader **slot, int64_t rev)
{
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    fill_header(m, &h, rev);
    *slot = &h;
    rpc_call_reply(call, resp);
    *slot = NULL;
}

/* ---- Campaign ------------------------------------------------------------------ */

typedef enum campaign_stage {
    CAMP_SESSION,  /* lease 0: granting the session's lease */
    CAMP_TXN,      /* the create-if-absent txn is proposed */
    CAMP_PROCLAIM, /* our key existed with another value: proclaiming ours */
    CAMP_WAIT,     /* waiting for the candidates created before us */
    CAMP_RESIGN,   /* deleting our key after a cancel or a failure */
} campaign_stage;

typedef struct campaign {
    member *m;
    struct rpc_call *call; /* NULL once answered or the client went away */
    uint8_t *name;
    size_t name_len;
    conc_prefix pfx;
    uint8_t *key;
    size_t key_len;
    uint8_t *value;
    size_t value_len;
    int64_t lease;
    int64_t rev;     /* our key's create revision */
    int64_t hdr_rev; /* the first txn's revision: the answer's header */
    campaign_stage stage;
    wait_deletes *wd;
    int err; /* answered once the resignation is done */
} campaign;

static void campaign_free(campaign *c)
{
    wait_deletes_cancel(c->wd);
    metcd_free(c->name);
    conc_prefix_free(&c->pfx);
    metcd_free(c->key);
    metcd_free(c->value);
    c->m->n_conc_ops--;
    metcd_free(c);
}

static void campaign_fail(campaign *c, int err)
{
    if (c->call)
        member_fail_call_relayed(c->call, err);
    c->call = NULL;
}

static void campaign_reply(campaign *c)
{
    V3electionpb__CampaignResponse resp = V3ELECTIONPB__CAMPAIGN_RESPONSE__INIT;
    V3electionpb__LeaderKey lk = V3ELECTIONPB__LEADER_KEY__INIT;
    lk.name.data = c->name;
    lk.name.len = c->name_len;
    lk.key.data = c->key;
    lk.key.len = c->key_len;
    lk.rev = c->rev;
    lk.lease = c->lease;
    resp.leader = &lk;
    answer_header(c->call, c->m, &resp.base, &resp.header, c->hdr_rev);
    c->call = NULL;
}

static void on_resign_done(member *m, void *arg, int rc, const mvcc_op_resp *r)
{
    (void)m;
    (void)rc; /* as Election.Campaign, the resignation's own failure is not reported */
    (void)r;
    campaign *c = arg;
    campaign_fail(c, c->err);
    campaign_free(c);
}

/* Election.Resign on our key, then answers err (0: the client is gone) and
 * frees c. */
static void campaign_resign(campaign *c, int err)
{
    c->stage = CAMP_RESIGN;
    c->err = err;
    conc_op del = {.type = MVCC_OP_DELETE, .key = c->key, .key_len = c->key_len};
    /* a stopping member fails every proposal before it cancels the calls:
     * nothing proposed now would be answered */
    int rc = c->m->stopping ? MERR_STOPPED
                            : conc_propose_txn(c->m, c->key, c->key_len, c->rev, &del, 1, NULL, 0,
                                               on_resign_done, c);
    if (rc) {
        campaign_fail(c, err);
        campaign_free(c);
    }
}

static void on_campaign_wait_done(member *m, void *arg, int rc, int64_t rev)
{
    (void)m;
    (void)rev; /* the answer carries the first txn's header */
    campaign *c = arg;
    c->wd = NULL;
    if (rc)
        campaign_fail(c, rc); /* not cancelled: etcd keeps the key */
    else
        campaign_reply(c);
    campaign_free(c);
}

static void campaign_wait(campaign *c)
{
    if (!c->call) {
        campaign_resign(c, 0);
        return;
    }
    c->stage = CAMP_WAIT;
    int rc = wait_deletes_start(c->m, &c->pfx, c->rev - 1, on_campaign_wait_done, c, &c->wd);
    if (rc) {
        campaign_fail(c, rc);
        campaign_free(c);
    }
}

static void on_campaign_proclaim_done(member *m, void *arg, int rc, const mvcc_op_resp *r)
{
    (void)m;
    campaign *c = arg;
    if (rc) {
        campaign_resign(c, rc);
        return;
    }
    if (!r->u.txn.succeeded) {
        /* our key is gone or new: nothing of ours left to resign */
        campaign_fail(c, MERR_ELECTION_NOT_LEADER);
        campaign_free(c);
        return;
    }
    campaign_wait(c);
}

static void on_campaign_txn_done(member *m, void *arg, int rc, const mvcc_op_resp *r)
{
    campaign *c = arg;
    if (rc == 0 && (r->type != MVCC_OP_TXN ||
                    (!r->u.txn.succeeded &&
                     (r->u.txn.nresponses != 1 || r->u.txn.responses[0].u.range.nkvs != 1))))
        rc = MERR_INTERNAL;
    if (rc) {
        campaign_fail(c, rc);
        campaign_free(c);
        return;
    }
    c->hdr_rev = r->revision;
    if (r->u.txn.succeeded) {
        c->rev = r->revision;
        campaign_wait(c);
        return;
    }
    const mvcc_kv *kv = &r->u.txn.responses[0].u.range.kvs[0];
    c->rev = kv->create_revision;
    if (!c->call) {
        campaign_free(c); /* the key was there before this call */
        return;
    }
    if (kv->value_len == c->value_len &&
        (c->value_len == 0 || !memcmp(kv->value, c->value, c->value_len))) {
        campaign_wait(c);
        return;
    }
    c->stage = CAMP_PROCLAIM;
    conc_op put = {.type = MVCC_OP_PUT,
                   .key = c->key,
                   .key_len = c->key_len,
                   .value = c->value,
                   .value_len = c->value_len,
                   .lease = c->lease};
    rc = conc_propose_txn(m, c->key, c->key_len, c->rev, &put, 1, NULL, 0,
                          on_campaign_proclaim_done, c);
    if (rc)
        campaign_resign(c, rc);
}

/* Election.Campaign's first txn: if create_revision(key) == 0 then
 * put(key, value, lease) else get(key). */
static int propose_campaign(campaign *c)
{
    c->key = conc_key(c->name, c->name_len, c->lease, &c->key_len);
    if (!c->key)
        return MERR_INTERNAL;
    conc_op put = {.type = MVCC_OP_PUT,
                   .key = c->key,
                   .key_len = c->key_len,
                   .value = c->value,
                   .value_len = c->value_len,
                   .lease = c->lease};
    conc_op get = {.type = MVCC_OP_RANGE, .key = c->key, .key_len = c->key_len};
    c->stage = CAMP_TXN;
    return conc_propose_txn(c->m, c->key, c->key_len, 0, &put, 1, &get, 1, on_campaign_txn_done, c);
}

static void on_campaign_session(member *m, void *arg, int rc, const mvcc_op_resp *r)
{
    (void)m;
    (void)r;
    campaign *c = arg;
    if (rc == 0 && !c->call)
        rc = MERR_STOPPED; /* the client left: the new lease just runs out */
    if (rc == 0)
        rc = propose_campaign(c);
    if (rc) {
        campaign_fail(c, rc);
        campaign_free(c);
    }
}

static void on_campaign(struct rpc_call *call, const ProtobufCMessage *msg)
{
    member *m = rpc_call_service_data(call);
    const V3electionpb__CampaignRequest *req = (const V3electionpb__CampaignRequest *)msg;
    if (conc_auth_refused(m, call, req->name.data, req->name.len, true, req->lease, NULL, 0,
                          false))
        return;
    if (conc_full(m, call))
        return;
    campaign *c = metcd_calloc(1, sizeof(*c));
    if (!c) {
        member_fail_call_relayed(call, MERR_INTERNAL);
        return;
    }
    c->m = m;
    m->n_conc_ops++;
    c->lease = req->lease;
    c->name_len = req->name.len;
    c->value_len = req->value.len;
    c->name = metcd_memdup(req->name.data, req->name.len);
    c->value = metcd_memdup(req->value.data, req->value.len);
    int rc = 0;
    if (!c->name || !c->value)
        rc = MERR_INTERNAL;
    if (rc == 0)
        rc = conc_prefix_init(&c->pfx, req->name.data, req->name.len);
    if (rc == 0 && c->lease == 0) {
        /* concurrency.NewSession without a lease grants one */
        c->stage = CAMP_SESSION;
        rc = member_lease_grant(m, CONC_SESSION_TTL, &c->lease, on_campaign_session, c);
    } else if (rc == 0) {
        rc = propose_campaign(c);
    }
    if (rc) {
        member_fail_call_relayed(call, rc);
        campaign_free(c);
        return;
    }
    c->call = call;
    rpc_call_set_data(call, c);
}

static void on_campaign_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    campaign *c = rpc_call_get_data(call);
    if (!c)
        return;
    c->call = NULL;
    if (c->stage == CAMP_WAIT) {
        wait_deletes_cancel(c->wd);
        c->wd = NULL;
        campaign_resign(c, 0);
    }
    /* the other stages continue in their proposal's callback */
}

/* ---- Proclaim and Resign --------------------------------------------------------- */

/* Proclaim or Resign: one txn guarded by the leader key's create revision
 * (ResumeElection + Proclaim / Resign). */
typedef struct leader_op {
    member *m;
    struct rpc_call *call; /* NULL once the client went away */
    bool proclaim;
    uint8_t *key;
    size_t key_len;
    uint8_t *value;
    size_t value_len;
    int64_t rev, lease;
} leader_op;

static void leader_op_free(leader_op *op)
{
    metcd_free(op->key);
    metcd_free(op->value);
    op->m->n_conc_ops--;
    metcd_free(op);
}

static void on_leader_op_done(member *m, void *arg, int rc, const mvcc_op_resp *r)
{
    leader_op *op = arg;
    if (op->call) {
        if (rc) {
            member_fail_call_relayed(op->call, rc);
        } else if (op->proclaim && !r->u.txn.succeeded) {
            member_fail_call_relayed(op->call, MERR_ELECTION_NOT_LEADER);
        } else if (op->proclaim) {
            V3electionpb__ProclaimResponse resp = V3ELECTIONPB__PROCLAIM_RESPONSE__INIT;
            answer_header(op->call, m, &resp.base, &resp.header, r->revision);
        } else {
            /* Election.Resign: not being the leader is no error */
            V3electionpb__ResignResponse resp = V3ELECTIONPB__RESIGN_RESPONSE__INIT;
            answer_header(op->call, m, &resp.base, &resp.header, r->revision);
        }
    }
    leader_op_free(op);
}

/* if create_revision(key) == rev then put(key, value, lease) / delete(key) */
static int propose_leader_op(leader_op *op)
{
    conc_op o = {.type = op->proclaim ? MVCC_OP_PUT : MVCC_OP_DELETE,
                 .key = op->key,
                 .key_len = op->key_len,
                 .value = op->value,
                 .value_len = op->value_len,
                 .lease = op->lease};
    return conc_propose_txn(op->m, op->key, op->key_len, op->rev, &o, 1, NULL, 0, on_leader_op_done,
                            op);
}

static void on_leader_op_session(member *m, void *arg, int rc, const mvcc_op_resp *r)
{
    (void)m;
    (void)r;
    leader_op *op = arg;
    if (rc == 0 && !op->call)
        rc = MERR_STOPPED; /* the client left: the new lease just runs out */
    if (rc == 0)
        rc = propose_leader_op(op);
    if (rc) {
        if (op->call)
            member_fail_call_relayed(op->call, rc);
        leader_op_free(op);
    }
}

static void start_leader_op(struct rpc_call *call, const V3electionpb__LeaderKey *lk, bool proclaim,
                            const ProtobufCBinaryData *value)
{
    member *m = rpc_call_service_data(call);
    if (!lk) {
        member_fail_call_relayed(call, MERR_ELECTION_NO_LEADER_KEY);
        return;
    }
    if (conc_auth_refused(m, call, NULL, 0, false, 0, lk->key.data, lk->key.len, true))
        return;
    if (conc_full(m, call))
        return;
    leader_op *op = metcd_calloc(1, sizeof(*op));
    if (!op) {
        member_fail_call_relayed(call, MERR_INTERNAL);
        return;
    }
    op->m = m;
    m->n_conc_ops++;
    op->proclaim = proclaim;
    op->rev = lk->rev;
    op->lease = lk->lease;
    op->key_len = lk->key.len;
    op->key = metcd_memdup(lk->key.data, lk->key.len);
    op->value_len = proclaim ? value->len : 0;
    op->value = proclaim ? metcd_memdup(value->data, value->len) : NULL;
    int rc = 0;
    if (!op->key || (proclaim && !op->value))
        rc = MERR_INTERNAL;
    else if (proclaim && op->lease == 0)
        /* etcd's session for a LeaderKey without a lease grants one, and
         * Proclaim puts the value with it */
        rc = member_lease_grant(m, CONC_SESSION_TTL, &op->lease, on_leader_op_session, op);
    else
        rc = propose_leader_op(op);
    if (rc) {
        member_fail_call_relayed(call, rc);
        leader_op_free(op);
        return;
    }
    op->call = call;
    rpc_call_set_data(call, op);
}

static void on_proclaim(struct rpc_call *call, const ProtobufCMessage *msg)
{
    const V3electionpb__ProclaimRequest *req = (const V3electionpb__ProclaimRequest *)msg;
    start_leader_op(call, req->leader, true, &req->value);
}

static void on_resign(struct rpc_call *call, const ProtobufCMessage *msg)
{
    const V3electionpb__ResignRequest *req = (const V3electionpb__ResignRequest *)msg;
    start_leader_op(call, req->leader, false, NULL);
}

static void on_leader_op_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    leader_op *op = rpc_call_get_data(call);
    if (op)
        op->call = NULL; /* freed when the txn is applied or fails */
}

/* ---- Leader ------------------------------------------------------------------------ */

typedef struct leader_query {
    member *m;
    struct rpc_call *call;
    conc_prefix pfx;
    pending_read *read; /* the read barrier, NULL once it answered */
} leader_query;

static void leader_query_free(leader_query *q)
{
    member_read_cancel(q->read);
    conc_prefix_free(&q->pfx);
    q->m->n_conc_ops--;
    metcd_free(q);
}

static void on_leader_read(member *m, void *arg, int rc)
{
    leader_query *q = arg;
    q->read = NULL;
    mvcc_result res = {0};
    if (rc == 0)
        rc = conc_range_edge(m, &q->pfx, true, 0, &res);
    if (rc == 0 && res.resp.u.range.nkvs == 0)
        rc = MERR_ELECTION_NO_LEADER;
    if (rc) {
        member_fail_call_relayed(q->call, rc);
    } else {
        V3electionpb__LeaderResponse resp = V3ELECTIONPB__LEADER_RESPONSE__INIT;
        Mvccpb__KeyValue kv;
        kv_to_pb(&res.resp.u.range.kvs[0], &kv);
        resp.kv = &kv;
        answer_header(q->call, m, &resp.base, &resp.header, res.resp.revision);
    }
    mvcc_result_free(&res);
    leader_query_free(q);
}

static void on_leader(struct rpc_call *call, const ProtobufCMessage *msg)
{
    member *m = rpc_call_service_data(call);
    const V3electionpb__LeaderRequest *req = (const V3electionpb__LeaderRequest *)msg;
    if (conc_auth_refused(m, call, req->name.data, req->name.len, false, 0, NULL, 0,
                          false))
        return;
    if (conc_full(m, call))
        return;
    leader_query *q = metcd_calloc(1, sizeof(*q));
    if (!q) {
        member_fail_call_relayed(call, MERR_INTERNAL);
        return;
    }
    q->m = m;
    q->call = call;
    m->n_conc_ops++;
    int rc = conc_prefix_init(&q->pfx, req->name.data, req->name.len);
    if (rc) {
        member_fail_call_relayed(call, rc);
        leader_query_free(q);
        return;
    }
    rpc_call_set_data(call, q);
    /* on_leader_read may run (and end the call) before this returns */
    rc = member_read_index(m, on_leader_read, q, &q->read);
    if (rc) {
        member_fail_call_relayed(call, rc);
        leader_query_free(q);
    }
}

static void on_leader_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    leader_query *q = rpc_call_get_data(call);
    if (q)
        leader_query_free(q);
}

/* ---- Observe ----------------------------------------------------------------------- */

typedef enum observe_stage {
    OBS_READ,     /* waiting for the read barrier */
    OBS_WAIT_PUT, /* no leader: watching the prefix for the first put */
    OBS_PARKED,   /* a response waits for room in the stream */
    OBS_FOLLOW,   /* watching the leader's key */
} observe_stage;

typedef struct observer {
    member *m;
    struct rpc_call *call;
    conc_prefix pfx;
    observe_stage stage;
    pending_read *read;
    watch_stream *ws;
    struct event *step_ev;
    bool restart; /* the followed key is gone (or its watch ended): read again */
    /* the response to send next (OBS_WAIT_PUT once found, OBS_PARKED) */
    bool have_next;
    mvcc_kv next;
    uint8_t *next_buf; /* owns next.key and next.value */
    int64_t next_rev;  /* its header revision */
    /* the key followed, and the mod revision of the last of its puts sent */
    uint8_t *key;
    size_t key_len;
    int64_t last_mod;
} observer;

static void observer_free(observer *o)
{
    member_read_cancel(o->read);
    watch_stream_free(o->ws);
    if (o->step_ev)
        event_free(o->step_ev);
    conc_prefix_free(&o->pfx);
    metcd_free(o->next_buf);
    metcd_free(o->key);
    o->m->n_conc_ops--;
    metcd_free(o);
}

/* Election.observe returns, closing its channel, when a read fails; etcd's
 * Observe then ends the stream with status OK. */
static void observe_end(observer *o)
{
    struct rpc_call *call = o->call;
    rpc_call_set_data(call, NULL);
    observer_free(o);
    rpc_call_finish(call, RPC_CODE_OK, NULL);
}

static int set_next(observer *o, const mvcc_kv *kv, int64_t rev)
{
    uint8_t *buf = metcd_malloc(kv->key_len + kv->value_len + 1);
    if (!buf)
        return MERR_INTERNAL;
    memcpy(buf, kv->key, kv->key_len);
    if (kv->value_len)
        memcpy(buf + kv->key_len, kv->value, kv->value_len);
    metcd_free(o->next_buf);
    o->next_buf = buf;
    o->next = *kv;
    o->next.key = buf;
    o->next.value = buf + kv->key_len;
    o->next.raw = NULL;
    o->next.raw_len = 0;
    o->next_rev = rev;
    o->have_next = true;
    return 0;
}

static int send_leader(observer *o, const mvcc_kv *kv, int64_t rev)
{
    V3electionpb__LeaderResponse resp = V3ELECTIONPB__LEADER_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    Mvccpb__KeyValue pkv;
    fill_header(o->m, &h, rev);
    kv_to_pb(kv, &pkv);
    resp.header = &h;
    resp.kv = &pkv;
    return rpc_call_send(o->call, &resp.base);
}

/* The watch's transport: it may not call back into the watch store, so
 * anything but sending is left to the step event. */
static int on_observe_watch(void *arg, const watch_response *r)
{
    observer *o = arg;
    if (o->restart || (o->stage == OBS_WAIT_PUT && o->have_next))
        return 0;
    if (r->canceled) {
        /* compacted away: read the current leader again */
        o->restart = true;
        event_active(o->step_ev, EV_READ, 0);
        return 0;
    }
    for (size_t i = 0; i < r->nevents; i++) {
        const watch_event *e = &r->events[i];
        if (o->stage == OBS_WAIT_PUT) {
            if (e->type != MVCC_EVENT_PUT)
                continue; /* only puts: a delete would make observe spin */
            if (set_next(o, e->kv, e->kv->mod_revision) != 0)
                o->restart = true;
            event_active(o->step_ev, EV_READ, 0);
            return 0;
        }
        if (e->type == MVCC_EVENT_DELETE) {
            o->restart = true;
            event_active(o->step_ev, EV_READ, 0);
            return 0;
        }
        if (e->kv->mod_revision <= o->last_mod)
            continue; /* sent before the stream filled up */
        int rc = send_leader(o, e->kv, r->revision);
        if (rc == RPC_ERR_FULL)
            return WATCH_SEND_FULL; /* parked; retried on drain */
        if (rc)
            return WATCH_ECLOSED;
        o->last_mod = e->kv->mod_revision;
    }
    return 0;
}

/* Watches [key, end) (end NULL: the key alone) from rev on a fresh stream. */
static int observe_watch(observer *o, const uint8_t *key, size_t key_len, const uint8_t *end,
                         size_t end_len, int64_t rev)
{
    watch_stream_free(o->ws);
    o->ws = NULL;
    if (!o->m->watch)
        return MERR_STOPPED;
    watch_create c = {.key = key,
                      .key_len = key_len,
                      .range_end = end,
                      .range_end_len = end_len,
                      .start_revision = rev};
    if (watch_stream_new(&o->ws, o->m->watch, on_observe_watch, o) != 0)
        return MERR_INTERNAL;
    if (watch_stream_create(o->ws, &c) != 0)
        return MERR_INTERNAL;
    return 0;
}

/* Sends the pending response (unless it was sent before), then follows its
 * key from the revision after it. Returns 0 (sent and following, or parked
 * until the stream drains) or an error that ends the stream. */
static int observe_emit(observer *o)
{
    watch_stream_free(o->ws);
    o->ws = NULL;
    /* After a watch was compacted away the leader may still be the key we
     * followed, with nothing new since the last put we sent. */
    bool sent = o->key && o->key_len == o->next.key_len &&
                !memcmp(o->key, o->next.key, o->key_len) && o->next.mod_revision <= o->last_mod;
    int rc = sent ? 0 : send_leader(o, &o->next, o->next_rev);
    if (rc == RPC_ERR_FULL) {
        o->stage = OBS_PARKED;
        return 0;
    }
    if (rc)
        return 0; /* the stream is gone: on_cancel frees us */
    o->have_next = false;
    metcd_free(o->key);
    o->key = o->next_buf; /* next.key is at its start */
    o->key_len = o->next.key_len;
    o->next_buf = NULL;
    if (!sent)
        o->last_mod = o->next.mod_revision;
    o->stage = OBS_FOLLOW;
    o->restart = false;
    return observe_watch(o, o->key, o->key_len, NULL, 0, o->next_rev + 1);
}

/* One round of Election.observe: read the first-created key under the
 * prefix; send it, or wait for the first put under the prefix. */
static int observe_read(observer *o)
{
    o->restart = false;
    o->have_next = false;
    mvcc_result res = {0};
    int rc = conc_range_edge(o->m, &o->pfx, true, 0, &res);
    if (rc)
        return rc;
    if (res.resp.u.range.nkvs == 0) {
        /* Nothing under the prefix at this revision, so the first put
         * comes after it: from the next revision the watcher is synced. */
        o->stage = OBS_WAIT_PUT;
        rc = observe_watch(o, o->pfx.key, o->pfx.len, o->pfx.end, o->pfx.end_len,
                           res.resp.revision + 1);
    } else {
        rc = set_next(o, &res.resp.u.range.kvs[0], res.resp.revision);
        if (rc == 0)
            rc = observe_emit(o);
    }
    mvcc_result_free(&res);
    return rc;
}

static void on_observe_step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    observer *o = arg;
    int rc = 0;
    if (o->restart)
        rc = observe_read(o);
    else if (o->stage == OBS_WAIT_PUT && o->have_next)
        rc = observe_emit(o);
    if (rc)
        observe_end(o);
}

static void on_observe_read(member *m, void *arg, int rc)
{
    (void)m;
    observer *o = arg;
    o->read = NULL;
    if (rc == 0)
        rc = observe_read(o);
    if (rc)
        observe_end(o);
}

static void on_observe(struct rpc_call *call, const ProtobufCMessage *msg)
{
    member *m = rpc_call_service_data(call);
    const V3electionpb__LeaderRequest *req = (const V3electionpb__LeaderRequest *)msg;
    if (conc_auth_refused(m, call, req->name.data, req->name.len, false, 0, NULL, 0,
                          false))
        return;
    if (conc_full(m, call))
        return;
    observer *o = metcd_calloc(1, sizeof(*o));
    if (!o) {
        member_fail_call_relayed(call, MERR_INTERNAL);
        return;
    }
    o->m = m;
    o->call = call;
    m->n_conc_ops++;
    int rc = conc_prefix_init(&o->pfx, req->name.data, req->name.len);
    if (rc == 0) {
        o->step_ev = event_new(m->base, -1, 0, on_observe_step, o);
        if (!o->step_ev)
            rc = MERR_INTERNAL;
    }
    if (rc) {
        member_fail_call_relayed(call, rc);
        observer_free(o);
        return;
    }
    rpc_call_set_data(call, o);
    o->stage = OBS_READ;
    /* the first read is linearizable; on_observe_read may run (and end the
     * call) before this returns */
    rc = member_read_index(m, on_observe_read, o, &o->read);
    if (rc)
        observe_end(o);
}

static void on_observe_drain(struct rpc_call *call)
{
    observer *o = rpc_call_get_data(call);
    if (!o)
        return;
    if (o->stage == OBS_PARKED) {
        if (observe_emit(o) != 0)
            observe_end(o);
    } else if (o->stage == OBS_FOLLOW && o->ws) {
        watch_stream_drained(o->ws);
    }
}

static void on_observe_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    observer *o = rpc_call_get_data(call);
    if (o)
        observer_free(o);
}

static const struct rpc_method election_methods[] = {
    {"/v3electionpb.Election/Campaign", RPC_UNARY, &v3electionpb__campaign_request__descriptor,
     &v3electionpb__campaign_response__descriptor, NULL, on_campaign, NULL, on_campaign_cancel,
     NULL},
    {"/v3electionpb.Election/Proclaim", RPC_UNARY, &v3electionpb__proclaim_request__descriptor,
     &v3electionpb__proclaim_response__descriptor, NULL, on_proclaim, NULL, on_leader_op_cancel,
     NULL},
    {"/v3electionpb.Election/Leader", RPC_UNARY, &v3electionpb__leader_request__descriptor,
     &v3electionpb__leader_response__descriptor, NULL, on_leader, NULL, on_leader_cancel, NULL},
    {"/v3electionpb.Election/Observe", RPC_SERVER_STREAM, &v3electionpb__leader_request__descriptor,
     &v3electionpb__leader_response__descriptor, NULL, on_observe, NULL, on_observe_cancel,
     on_observe_drain},
    {"/v3electionpb.Election/Resign", RPC_UNARY, &v3electionpb__resign_request__descriptor,
     &v3electionpb__resign_response__descriptor, NULL, on_resign, NULL, on_leader_op_cancel, NULL},
};

int election_register(member *m)
{
    return rpc_server_register(m->rpc, election_methods,
                               sizeof(election_methods) / sizeof(election_methods[0]), m);
}
