/* server/member/lease.c - leases in the member: the etcdserverpb.Lease
 * service, the apply of lease requests into the lessor (mvcc/), and the
 * leader's side of time (etcd 3.4's etcdserver/v3_server.go lease calls,
 * api/v3rpc/lease.go, the lessor's revoke and checkpoint loops).
 *
 *   Grant, Revoke      proposed through raft; every member applies them.
 *   KeepAlive          renewed by the leader alone (it alone keeps time). A
 *                      follower forwards its clients' keep-alives over one
 *                      LeaseKeepAlive stream of its own to the leader's client
 *                      URL and hands each answer to every stream waiting on
 *                      that lease.
 *   TimeToLive         answered by the leader (remaining time is the
 *                      leader's); a follower forwards it as a unary call.
 *   Leases             answered locally.
 *
 * The leader's timer (every 500 ms): leases past their expiry are revoked
 * through raft, at most 500 a pass (etcd's 1000/s), and only after a
 * ReadIndex round confirmed this member still leads — a leader that stalled
 * and was replaced revokes nothing; due checkpoints go out in one entry of
 * at most 1000; and a timer that fired late (the loop or the process was
 * stalled) moves every expiry later by the delay, since nobody could renew
 * meanwhile. A new leader gives every lease its checkpointed remaining TTL
 * plus an election timeout (mvcc_lessor_promote).
 */
#include "server/member/internal.h"

#include "common/mem.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMER_MS 500
#define REVOKES_PER_PASS 500
#define CHECKPOINTS_PER_ENTRY 1000
#define REVOKE_RETRY_MS 3000
#define STALL_SLACK_MS 100
#define FWD_STALE_MS 5000
#define CONFIRM_CTX_BIT (1ULL << 63)

/* A client's LeaseKeepAlive stream; refcounted, as forwarded keep-alives
 * may outlive it. */
struct ka_stream {
    member *m;
    struct rpc_call *call; /* NULL once the client went away */
    int refs;              /* the call's own, and one per forwarded ask waiting */
    bool half_closed;      /* the client is done sending; end after the answers */
};

/* Client streams waiting for the leader's answer about one lease. */
struct fwd_wait {
    int64_t id;
    int64_t sent_ms;
    struct ka_stream **v;
    size_t n, cap;
    struct fwd_wait *hnext;
};

/* A TimeToLive forwarded to the leader. */
struct ttl_fwd {
    member *m;
    struct rpc_call *call; /* NULL once the client went away */
    struct ttl_fwd *prev, *next;
};

#define FWD_BUCKETS 1024

struct lease_state {
    struct event *timer;
    int64_t last_tick_ms;

    /* expired leases waiting for the leadership check */
    int64_t *expired;
    size_t n_expired, cap_expired;
    uint64_t confirm_ctx; /* the ReadIndex round asked, 0 when none */
    uint64_t confirm_seq;

    /* forwarding to the leader */
    uint64_t fwd_leader;
    struct rpc_client *fwd;
    struct rpc_ccall *fwd_ka;
    struct fwd_wait *waits[FWD_BUCKETS];
    size_t n_waits;
    struct ttl_fwd *ttl_fwds;

    uint64_t id_seq;
};

/* ---- helpers -------------------------------------------------------------------- */

static int64_t min_ttl_seconds(const member *m)
{
    /* etcd: (3 * election ticks / 2) heartbeats, rounded up to a second */
    uint64_t hb = m->opt.heartbeat_ms ? m->opt.heartbeat_ms : 100;
    uint64_t ticks = (m->opt.election_ms ? m->opt.election_ms : 1000) / hb;
    uint64_t ms = (3 * ticks / 2) * hb;
    return (int64_t)((ms + 999) / 1000);
}

static void ka_unref(struct ka_stream *k)
{
    if (!k)
        return;
    if (--k->refs == 1 && k->half_closed && k->call) {
        /* the last answer from the leader went out: the stream ends as
         * etcd's keep-alive loop ends, after answering what it read */
        struct rpc_call *call = k->call;
        k->call = NULL;
        k->refs--;
        rpc_call_set_data(call, NULL);
        rpc_call_finish(call, RPC_CODE_OK, NULL);
    }
    if (k->refs == 0)
        metcd_free(k);
}

static void ka_reply(member *m, struct ka_stream *k, int64_t id, int64_t ttl)
{
    if (!k->call)
        return;
    Etcdserverpb__LeaseKeepAliveResponse resp = ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    fill_header(m, &h, mvcc_current_rev(m->kv));
    resp.header = &h;
    resp.id = id;
    resp.ttl = ttl;
    /* a full queue drops the answer: the client asks again on its schedule */
    rpc_call_send(k->call, &resp.base);
}

static size_t fwd_bucket(int64_t id)
{
    uint64_t x = (uint64_t)id;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)(x % FWD_BUCKETS);
}

static struct fwd_wait **fwd_find(struct lease_state *ls, int64_t id)
{
    struct fwd_wait **pp = &ls->waits[fwd_bucket(id)];
    while (*pp && (*pp)->id != id)
        pp = &(*pp)->hnext;
    return pp;
}

static void fwd_wait_free(struct fwd_wait *w)
{
    for (size_t i = 0; i < w->n; i++)
        ka_unref(w->v[i]);
    metcd_free(w->v);
    metcd_free(w);
}

static void fwd_drop_all(struct lease_state *ls)
{
    for (size_t b = 0; b < FWD_BUCKETS; b++) {
        while (ls->waits[b]) {
            struct fwd_wait *w = ls->waits[b];
            ls->waits[b] = w->hnext;
            fwd_wait_free(w);
        }
    }
    ls->n_waits = 0;
}

/* ---- forwarding to the leader ---------------------------------------------------- */

static void fwd_ka_message(struct rpc_ccall *c, const ProtobufCMessage *msg, void *data)
{
    (void)c;
    member *m = data;
    struct lease_state *ls = m->lease;
    const Etcdserverpb__LeaseKeepAliveResponse *r =
        (const Etcdserverpb__LeaseKeepAliveResponse *)msg;
    struct fwd_wait **pp = fwd_find(ls, r->id);
    struct fwd_wait *w = *pp;
    if (!w)
        return;
    *pp = w->hnext;
    ls->n_waits--;
    for (size_t i = 0; i < w->n; i++)
        ka_reply(m, w->v[i], r->id, r->ttl);
    fwd_wait_free(w);
}

static void fwd_ka_close(struct rpc_ccall *c, enum rpc_code code, const char *msg, void *data)
{
    (void)c;
    (void)code;
    (void)msg;
    member *m = data;
    m->lease->fwd_ka = NULL;
    /* what was in flight is lost; clients ask again */
    fwd_drop_all(m->lease);
}

static const struct rpc_ccall_ops fwd_ka_ops = {fwd_ka_message, fwd_ka_close, NULL};

static void fwd_reset(member *m)
{
    struct lease_state *ls = m->lease;
    if (ls->fwd) {
        struct rpc_client *cl = ls->fwd;
        ls->fwd = NULL;
        rpc_client_free(cl); /* closes fwd_ka and TimeToLive calls */
    }
    ls->fwd_ka = NULL;
    ls->fwd_leader = 0;
    fwd_drop_all(ls);
}

/* The client to the current leader's client URLs, made on first use. */
static struct rpc_client *fwd_client(member *m)
{
    struct lease_state *ls = m->lease;
    if (m->lead == RAFT_NONE || m->lead == m->id)
        return NULL;
    if (ls->fwd && ls->fwd_leader == m->lead)
        return ls->fwd;
    fwd_reset(m);
    member_info *mi = membership_find(m, m->lead);
    if (!mi || !mi->n_client_urls)
        return NULL; /* not published yet */
    struct rpc_client_config cfg = {
        .endpoints = (const char *const *)mi->client_urls,
        .n_endpoints = mi->n_client_urls,
        .dial_timeout_ms = (uint32_t)member_request_timeout_ms(m),
        .channelz = m->cz,
        .target = "lease forwarding to the leader",
        .tls = m->client_dial_tls,
    };
    if (rpc_client_new(&ls->fwd, m->base, &cfg) != 0) {
        ls->fwd = NULL;
        return NULL;
    }
    ls->fwd_leader = m->lead;
    return ls->fwd;
}

static void forward_keepalive(member *m, struct ka_stream *k, int64_t id)
{
    struct lease_state *ls = m->lease;
    struct rpc_client *cl = fwd_client(m);
    if (!cl)
        return;
    if (!ls->fwd_ka &&
        rpc_ccall_start(cl, "/etcdserverpb.Lease/LeaseKeepAlive",
                        &etcdserverpb__lease_keep_alive_response__descriptor, NULL, 0, 0,
                        &fwd_ka_ops, m, &ls->fwd_ka) != 0) {
        ls->fwd_ka = NULL;
        return;
    }
    struct fwd_wait **pp = fwd_find(ls, id);
    struct fwd_wait *w = *pp;
    bool send = false;
    int64_t now = member_now_ms();
    if (!w) {
        w = metcd_calloc(1, sizeof(*w));
        if (!w)
            return;
        w->id = id;
        *pp = w;
        ls->n_waits++;
        send = true;
    } else if (now - w->sent_ms > FWD_STALE_MS) {
        send = true; /* the first ask got no answer: ask again */
    }
    if (!k)
        goto sent; /* an in-process renewal: nobody waits for the answer */
    for (size_t i = 0; i < w->n; i++)
        if (w->v[i] == k)
            goto sent;
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 2;
        struct ka_stream **v = metcd_realloc(w->v, nc * sizeof(*v));
        if (!v)
            goto sent;
        w->v = v;
        w->cap = nc;
    }
    w->v[w->n++] = k;
    k->refs++;
sent:
    if (send) {
        Etcdserverpb__LeaseKeepAliveRequest req = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
        req.id = id;
        w->sent_ms = now;
        rpc_ccall_send(ls->fwd_ka, &req.base);
    }
}

static void ttl_fwd_unlink(struct lease_state *ls, struct ttl_fwd *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        ls->ttl_fwds = t->next;
    if (t->next)
        t->next->prev = t->prev;
}

static void ttl_fwd_done(const ProtobufCMessage *resp, enum rpc_code code, const char *msg,
                         void *data)
{
    struct ttl_fwd *t = data;
    member *m = t->m;
    if (m->lease)
        ttl_fwd_unlink(m->lease, t);
    if (t->call) {
        if (code != RPC_CODE_OK || !resp) {
            rpc_call_finish(t->call, code == RPC_CODE_OK ? RPC_CODE_INTERNAL : code, msg);
        } else {
            Etcdserverpb__LeaseTimeToLiveResponse *r = (Etcdserverpb__LeaseTimeToLiveResponse *)resp;
            Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
            fill_header(m, &h, mvcc_current_rev(m->kv));
            Etcdserverpb__ResponseHeader *theirs = r->header;
            r->header = &h;
            rpc_call_reply(t->call, &r->base);
            r->header = theirs;
        }
    }
    metcd_free(t);
}

/* ---- the leader's timer ------------------------------------------------------------ */

static void propose_plain(member *m, Memberpb__Request *req)
{
    req->id = 0; /* nobody waits */
    req->system = true; /* the lessor's own: no permission checks (etcd's WithRoot) */
    if (raftnode_propose(m, req) != 0)
        m->proposals_failed++;
}

static void propose_revokes(member *m)
{
    struct lease_state *ls = m->lease;
    for (size_t i = 0; i < ls->n_expired; i++) {
        Memberpb__Request req = MEMBERPB__REQUEST__INIT;
        Etcdserverpb__LeaseRevokeRequest r = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
        r.id = ls->expired[i];
        req.op_case = MEMBERPB__REQUEST__OP_LEASE_REVOKE;
        req.lease_revoke = &r;
        propose_plain(m, &req);
        m->leases_expired++;
    }
    ls->n_expired = 0;
}

void lease_on_read_state(member *m, uint64_t ctx)
{
    struct lease_state *ls = m->lease;
    if (!ls || ctx != ls->confirm_ctx)
        return;
    ls->confirm_ctx = 0;
    if (m->lessor && mvcc_lessor_is_primary(m->lessor))
        propose_revokes(m);
    else
        ls->n_expired = 0;
}

bool lease_is_ctx(uint64_t ctx)
{
    return (ctx & CONFIRM_CTX_BIT) != 0;
}

static void collect_expired(member *m, int64_t now)
{
    struct lease_state *ls = m->lease;
    if (ls->n_expired + REVOKES_PER_PASS > ls->cap_expired) {
        size_t nc = ls->n_expired + REVOKES_PER_PASS;
        int64_t *v = metcd_realloc(ls->expired, nc * sizeof(*v));
        if (!v)
            return;
        ls->expired = v;
        ls->cap_expired = nc;
    }
    if (ls->confirm_ctx)
        return; /* one round at a time; the next pass collects more */
    size_t n = mvcc_lessor_expired(m->lessor, now, REVOKE_RETRY_MS, ls->expired + ls->n_expired,
                                   REVOKES_PER_PASS);
    ls->n_expired += n;
    if (!ls->n_expired)
        return;
    ls->confirm_ctx = CONFIRM_CTX_BIT | ++ls->confirm_seq;
    if (raftnode_read_index(m, ls->confirm_ctx) != 0) {
        /* no leader after all: the leases are retried after REVOKE_RETRY_MS */
        ls->confirm_ctx = 0;
        ls->n_expired = 0;
    }
}

static void send_checkpoints(member *m, int64_t now)
{
    mvcc_lease_cp cps[CHECKPOINTS_PER_ENTRY];
    size_t n = mvcc_lessor_checkpoints(m->lessor, now, cps, CHECKPOINTS_PER_ENTRY);
    if (!n)
        return;
    Etcdserverpb__LeaseCheckpoint *v = metcd_calloc(n, sizeof(*v));
    Etcdserverpb__LeaseCheckpoint **p = metcd_calloc(n, sizeof(*p));
    if (v && p) {
        for (size_t i = 0; i < n; i++) {
            etcdserverpb__lease_checkpoint__init(&v[i]);
            v[i].id = cps[i].id;
            v[i].remaining_ttl = cps[i].remaining_ttl;
            p[i] = &v[i];
        }
        Etcdserverpb__LeaseCheckpointRequest r = ETCDSERVERPB__LEASE_CHECKPOINT_REQUEST__INIT;
        r.n_checkpoints = n;
        r.checkpoints = p;
        Memberpb__Request req = MEMBERPB__REQUEST__INIT;
        req.op_case = MEMBERPB__REQUEST__OP_LEASE_CHECKPOINT;
        req.lease_checkpoint = &r;
        propose_plain(m, &req);
    }
    metcd_free(v);
    metcd_free(p);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    member *m = arg;
    struct lease_state *ls = m->lease;
    int64_t now = member_now_ms();
    int64_t late = now - ls->last_tick_ms - TIMER_MS;
    ls->last_tick_ms = now;
    if (!m->lessor || !mvcc_lessor_is_primary(m->lessor))
        return;
    if (late > STALL_SLACK_MS) {
        member_logf(m, MLOG_WARN, "lease", "the loop stalled for %lld ms: extending every lease by it",
                    (long long)late);
        mvcc_lessor_shift(m->lessor, late);
    }
    collect_expired(m, now);
    send_checkpoints(m, now);
}

/* ---- leadership ------------------------------------------------------------------ */

void lease_on_state(member *m)
{
    struct lease_state *ls = m->lease;
    if (!ls || !m->lessor)
        return;
    bool leader = m->state == RAFT_LEADER;
    if (leader && !mvcc_lessor_is_primary(m->lessor)) {
        mvcc_lessor_promote(m->lessor, member_now_ms(), (int64_t)m->opt.election_ms);
        ls->last_tick_ms = member_now_ms();
    } else if (!leader && mvcc_lessor_is_primary(m->lessor)) {
        mvcc_lessor_demote(m->lessor);
        ls->n_expired = 0;
        ls->confirm_ctx = 0;
    }
    if (ls->fwd && ls->fwd_leader != m->lead)
        fwd_reset(m);
}

/* ---- store lifecycle ------------------------------------------------------------- */

int lease_store_open(member *m, char *errbuf, size_t errlen)
{
    int rc = mvcc_lessor_open(&m->lessor, m->kv, min_ttl_seconds(m));
    if (rc) {
        snprintf(errbuf, errlen, "cannot restore the leases: %s", mvcc_strerror(rc));
        m->lessor = NULL;
        return -1;
    }
    if (m->state == RAFT_LEADER) /* a snapshot replaced the store under a leader */
        mvcc_lessor_promote(m->lessor, member_now_ms(), (int64_t)m->opt.election_ms);
    return 0;
}

void lease_store_close(member *m)
{
    mvcc_lessor_close(m->lessor);
    m->lessor = NULL;
    if (m->lease) {
        m->lease->n_expired = 0;
        m->lease->confirm_ctx = 0;
    }
}

/* ---- apply ------------------------------------------------------------------------ */

static void lease_finish(member *m, waiter *w, int rc, const ProtobufCMessage *resp)
{
    if (!w)
        return;
    if (w->done) {
        mvcc_op_resp r = {.type = MVCC_OP_NONE, .revision = mvcc_current_rev(m->kv)};
        w->done(m, w->done_arg, rc, rc ? NULL : &r);
    } else if (w->call) {
        if (rc)
            member_fail_call(w->call, rc);
        else
            rpc_call_reply(w->call, resp);
    }
    metcd_free(w);
}

void lease_apply(member *m, const Memberpb__Request *req, waiter *w, bool nospace)
{
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    int rc = 0;
    switch (req->op_case) {
    case MEMBERPB__REQUEST__OP_LEASE_GRANT: {
        Etcdserverpb__LeaseGrantResponse resp = ETCDSERVERPB__LEASE_GRANT_RESPONSE__INIT;
        int64_t ttl = 0;
        rc = nospace ? MVCC_ENOSPACE
                     : mvcc_lease_grant(m->lessor, req->lease_grant->id, req->lease_grant->ttl,
                                        member_now_ms(), &ttl);
        if (rc == 0)
            m->leases_granted++;
        fill_header(m, &h, mvcc_current_rev(m->kv));
        resp.header = &h;
        resp.id = req->lease_grant->id;
        resp.ttl = ttl;
        lease_finish(m, w, rc, &resp.base);
        break;
    }
    case MEMBERPB__REQUEST__OP_LEASE_REVOKE: {
        Etcdserverpb__LeaseRevokeResponse resp = ETCDSERVERPB__LEASE_REVOKE_RESPONSE__INIT;
        rc = mvcc_lease_revoke(m->lessor, req->lease_revoke->id, NULL);
        if (rc == 0)
            m->leases_revoked++;
        else if (rc != MVCC_ELEASE_NOT_FOUND)
            member_logf(m, MLOG_ERROR, "lease", "cannot revoke lease %016llx: %s",
                        (unsigned long long)req->lease_revoke->id, mvcc_strerror(rc));
        fill_header(m, &h, mvcc_current_rev(m->kv));
        resp.header = &h;
        lease_finish(m, w, rc, &resp.base);
        break;
    }
    case MEMBERPB__REQUEST__OP_LEASE_CHECKPOINT: {
        const Etcdserverpb__LeaseCheckpointRequest *c = req->lease_checkpoint;
        for (size_t i = 0; i < c->n_checkpoints && rc == 0; i++)
            rc = mvcc_lease_checkpoint(m->lessor, c->checkpoints[i]->id,
                                       c->checkpoints[i]->remaining_ttl);
        Etcdserverpb__LeaseCheckpointResponse resp = ETCDSERVERPB__LEASE_CHECKPOINT_RESPONSE__INIT;
        fill_header(m, &h, mvcc_current_rev(m->kv));
        resp.header = &h;
        lease_finish(m, w, rc, &resp.base);
        break;
    }
    default:
        lease_finish(m, w, MERR_INTERNAL, NULL);
        break;
    }
}

/* ---- the service ---------------------------------------------------------------- */

static void on_unary_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    member *m = rpc_call_service_data(call);
    wait_forget_call(m, call);
    if (m->lease)
        for (struct ttl_fwd *t = m->lease->ttl_fwds; t; t = t->next)
            if (t->call == call)
                t->call = NULL;
}

/* etcd: the member's request-id generator, made positive */
static int64_t new_lease_id(member *m)
{
    struct lease_state *ls = m->lease;
    uint64_t id;
    do {
        id = (((m->id & 0xffff) << 48) | ((uint64_t)ls->id_seq++ & 0xffffffffffffULL)) &
             (uint64_t)INT64_MAX;
    } while (id == 0);
    return (int64_t)id;
}

int member_lease_grant(member *m, int64_t ttl, int64_t *id, member_done_fn done, void *arg)
{
    if (!m->lease)
        return MERR_STOPPED;
    Etcdserverpb__LeaseGrantRequest r = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    r.ttl = ttl;
    r.id = new_lease_id(m);
    Memberpb__Request req = MEMBERPB__REQUEST__INIT;
    req.op_case = MEMBERPB__REQUEST__OP_LEASE_GRANT;
    req.lease_grant = &r;
    int rc = member_propose(m, &req, WAIT_LEASE, true, done, arg);
    if (rc == 0)
        *id = r.id;
    return rc;
}

static void on_grant(struct rpc_call *call, const ProtobufCMessage *msg)
{
    member *m = rpc_call_service_data(call);
    Etcdserverpb__LeaseGrantRequest r = *(const Etcdserverpb__LeaseGrantRequest *)msg;
    if (r.ttl > MVCC_LEASE_MAX_TTL) {
        member_fail_call(call, MVCC_ELEASE_TTL_TOO_LARGE);
        return;
    }
    if (r.id == 0)
        r.id = new_lease_id(m);
    Memberpb__Request req = MEMBERPB__REQUEST__INIT;
    req.op_case = MEMBERPB__REQUEST__OP_LEASE_GRANT;
    req.lease_grant = &r;
    member_propose_call(m, call, WAIT_LEASE, &req, true);
}

static void on_revoke(struct rpc_call *call, const ProtobufCMessage *msg)
{
    member *m = rpc_call_service_data(call);
    Memberpb__Request req = MEMBERPB__REQUEST__INIT;
    req.op_case = MEMBERPB__REQUEST__OP_LEASE_REVOKE;
    req.lease_revoke = (Etcdserverpb__LeaseRevokeRequest *)msg;
    member_propose_call(m, call, WAIT_LEASE, &req, false);
}

struct key_list {
    ProtobufCBinaryData *v;
    size_t n, cap;
    bool oom;
};

static int add_key(void *arg, const uint8_t *key, size_t len)
{
    struct key_list *kl = arg;
    if (kl->n == kl->cap) {
        size_t nc = kl->cap ? kl->cap * 2 : 16;
        ProtobufCBinaryData *v = metcd_realloc(kl->v, nc * sizeof(*v));
        if (!v) {
            kl->oom = true;
            return 1;
        }
        kl->v = v;
        kl->cap = nc;
    }
    kl->v[kl->n].data = (uint8_t *)key;
    kl->v[kl->n].len = len;
    kl->n++;
    return 0;
}

static int cmp_bin(const void *a, const void *b)
{
    const ProtobufCBinaryData *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->data, y->data, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void answer_ttl(member *m, struct rpc_call *call, const Etcdserverpb__LeaseTimeToLiveRequest *r)
{
    Etcdserverpb__LeaseTimeToLiveResponse resp = ETCDSERVERPB__LEASE_TIME_TO_LIVE_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    fill_header(m, &h, mvcc_current_rev(m->kv));
    resp.header = &h;
    resp.id = r->id;
    mvcc_lease_info in;
    struct key_list kl = {0};
    if (mvcc_lease_get(m->lessor, r->id, &in) != 0) {
        resp.ttl = -1; /* etcd answers a missing lease this way, not with an error */
    } else {
        int64_t left = in.expiry_ms == INT64_MAX ? in.ttl * 1000 : in.expiry_ms - member_now_ms();
        resp.ttl = left / 1000; /* whole seconds, truncated as etcd's */
        resp.grantedttl = in.ttl;
        if (r->keys) {
            mvcc_lease_keys(m->lessor, r->id, add_key, &kl);
            if (kl.oom) {
                metcd_free(kl.v);
                member_fail_call(call, MERR_INTERNAL);
                return;
            }
            qsort(kl.v, kl.n, sizeof(*kl.v), cmp_bin);
            resp.keys = kl.v;
            resp.n_keys = kl.n;
        }
    }
    rpc_call_reply(call, &resp.base);
    metcd_free(kl.v);
}

static void on_time_to_live(struct rpc_call *call, const ProtobufCMessage *msg)
{
    member *m = rpc_call_service_data(call);
    const Etcdserverpb__LeaseTimeToLiveRequest *r = (const Etcdserverpb__LeaseTimeToLiveRequest *)msg;
    if (!m->lessor) {
        member_fail_call(call, MERR_STOPPED);
        return;
    }
    if (mvcc_lessor_is_primary(m->lessor)) {
        answer_ttl(m, call, r);
        return;
    }
    struct rpc_client *cl = fwd_client(m);
    if (!cl) {
        member_fail_call(call, m->lead == RAFT_NONE ? RAFT_ENOLEADER : MERR_TIMEOUT);
        return;
    }
    struct ttl_fwd *t = metcd_calloc(1, sizeof(*t));
    if (!t) {
        member_fail_call(call, MERR_INTERNAL);
        return;
    }
    t->m = m;
    t->call = call;
    t->next = m->lease->ttl_fwds;
    if (t->next)
        t->next->prev = t;
    m->lease->ttl_fwds = t;
    if (rpc_client_unary(cl, "/etcdserverpb.Lease/LeaseTimeToLive", msg,
                         &etcdserverpb__lease_time_to_live_response__descriptor, NULL, 0,
                         (uint32_t)member_request_timeout_ms(m), ttl_fwd_done, t) != 0) {
        ttl_fwd_unlink(m->lease, t);
        metcd_free(t);
        member_fail_call(call, MERR_TIMEOUT);
    }
}

static void on_leases(struct rpc_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    member *m = rpc_call_service_data(call);
    if (!m->lessor) {
        member_fail_call(call, MERR_STOPPED);
        return;
    }
    size_t n = mvcc_lease_count(m->lessor);
    int64_t *ids = metcd_malloc((n ? n : 1) * sizeof(*ids));
    Etcdserverpb__LeaseStatus *st = metcd_calloc(n ? n : 1, sizeof(*st));
    Etcdserverpb__LeaseStatus **p = metcd_calloc(n ? n : 1, sizeof(*p));
    if (!ids || !st || !p) {
        metcd_free(ids);
        metcd_free(st);
        metcd_free(p);
        member_fail_call(call, MERR_INTERNAL);
        return;
    }
    n = mvcc_lease_list(m->lessor, ids, n);
    for (size_t i = 0; i < n; i++) {
        etcdserverpb__lease_status__init(&st[i]);
        st[i].id = ids[i];
        p[i] = &st[i];
    }
    Etcdserverpb__LeaseLeasesResponse resp = ETCDSERVERPB__LEASE_LEASES_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    fill_header(m, &h, mvcc_current_rev(m->kv));
    resp.header = &h;
    resp.n_leases = n;
    resp.leases = p;
    rpc_call_reply(call, &resp.base);
    metcd_free(ids);
    metcd_free(st);
    metcd_free(p);
}

static void ka_open(struct rpc_call *call)
{
    member *m = rpc_call_service_data(call);
    struct ka_stream *k = metcd_calloc(1, sizeof(*k));
    if (!k) {
        rpc_call_finish(call, RPC_CODE_RESOURCE_EXHAUSTED, "etcdserver: out of memory");
        return;
    }
    k->m = m;
    k->call = call;
    k->refs = 1;
    rpc_call_set_data(call, k);
    rpc_call_send_headers(call);
}

static void ka_message(struct rpc_call *call, const ProtobufCMessage *msg)
{
    struct ka_stream *k = rpc_call_get_data(call);
    if (!k)
        return;
    member *m = k->m;
    int64_t id = ((const Etcdserverpb__LeaseKeepAliveRequest *)msg)->id;
    if (m->lessor && mvcc_lessor_is_primary(m->lessor)) {
        int64_t ttl = 0;
        int rc = mvcc_lease_renew(m->lessor, id, member_now_ms(), &ttl);
        if (rc == 0)
            m->leases_renewed++;
        ka_reply(m, k, id, rc == 0 ? ttl : 0); /* not found: TTL 0, as etcd */
        return;
    }
    forward_keepalive(m, k, id);
}

int member_lease_keepalive(member *m, int64_t id, int64_t *ttl)
{
    if (!m->lessor || !m->lease)
        return MERR_STOPPED;
    if (mvcc_lessor_is_primary(m->lessor)) {
        int rc = mvcc_lease_renew(m->lessor, id, member_now_ms(), ttl);
        if (rc == 0)
            m->leases_renewed++;
        return rc;
    }
    mvcc_lease_info in;
    if (mvcc_lease_get(m->lessor, id, &in) != 0)
        return MVCC_ELEASE_NOT_FOUND;
    forward_keepalive(m, NULL, id);
    *ttl = in.ttl;
    return 0;
}

static void ka_end(struct rpc_call *call)
{
    struct ka_stream *k = rpc_call_get_data(call);
    rpc_call_set_data(call, NULL);
    if (k) {
        k->call = NULL;
        ka_unref(k);
    }
}

static void ka_half_close(struct rpc_call *call)
{
    struct ka_stream *k = rpc_call_get_data(call);
    if (k && k->refs > 1) {
        /* keep-alives forwarded to the leader are not answered yet (etcd
         * answers each request before it reads the end): wait for them */
        k->half_closed = true;
        return;
    }
    ka_end(call);
    rpc_call_finish(call, RPC_CODE_OK, NULL);
}

static void ka_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    ka_end(call);
}

static const struct rpc_method lease_methods[] = {
    {"/etcdserverpb.Lease/LeaseGrant", RPC_UNARY, &etcdserverpb__lease_grant_request__descriptor,
     &etcdserverpb__lease_grant_response__descriptor, NULL, on_grant, NULL, on_unary_cancel,
     NULL},
    {"/etcdserverpb.Lease/LeaseRevoke", RPC_UNARY,
     &etcdserverpb__lease_revoke_request__descriptor,
     &etcdserverpb__lease_revoke_response__descriptor, NULL, on_revoke, NULL, on_unary_cancel,
     NULL},
    {"/etcdserverpb.Lease/LeaseKeepAlive", RPC_BIDI,
     &etcdserverpb__lease_keep_alive_request__descriptor,
     &etcdserverpb__lease_keep_alive_response__descriptor, ka_open, ka_message, ka_half_close,
     ka_cancel, NULL},
    {"/etcdserverpb.Lease/LeaseTimeToLive", RPC_UNARY,
     &etcdserverpb__lease_time_to_live_request__descriptor,
     &etcdserverpb__lease_time_to_live_response__descriptor, NULL, on_time_to_live, NULL,
     on_unary_cancel, NULL},
    {"/etcdserverpb.Lease/LeaseLeases", RPC_UNARY,
     &etcdserverpb__lease_leases_request__descriptor,
     &etcdserverpb__lease_leases_response__descriptor, NULL, on_leases, NULL, on_unary_cancel,
     NULL},
};

int lease_start(member *m)
{
    m->lease = metcd_calloc(1, sizeof(*m->lease));
    if (!m->lease)
        return -1;
    m->lease->id_seq = ((uint64_t)member_now_ms() & 0xffffffffffULL) << 8;
    m->lease->last_tick_ms = member_now_ms();
    m->lease->timer = event_new(m->base, -1, EV_PERSIST, on_timer, m);
    struct timeval tv = {0, TIMER_MS * 1000};
    if (!m->lease->timer || event_add(m->lease->timer, &tv) != 0)
        return -1;
    int rc = rpc_server_register(m->rpc, lease_methods,
                                 sizeof(lease_methods) / sizeof(lease_methods[0]), m);
    if (rc == 0)
        lease_on_state(m); /* raft may have elected this member already */
    return rc;
}

void lease_stop(member *m)
{
    struct lease_state *ls = m->lease;
    if (!ls)
        return;
    if (ls->timer)
        event_free(ls->timer);
    fwd_reset(m); /* TimeToLive forwards end in their callbacks */
    while (ls->ttl_fwds) { /* a client freed above runs them; anything left goes */
        struct ttl_fwd *t = ls->ttl_fwds;
        ttl_fwd_unlink(ls, t);
        metcd_free(t);
    }
    metcd_free(ls->expired);
    metcd_free(ls);
    m->lease = NULL;
}
