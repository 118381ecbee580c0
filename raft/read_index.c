/* raft/read_index.c - linearizable reads without log writes (thesis 6.4).
 *
 * The leader answers a read with its commit index once (1) an entry of its
 * own term is committed, so the commit index is at least that of any
 * earlier leader, and (2) a quorum of voters acknowledged a heartbeat sent
 * after the read arrived, so no newer leader existed at that time.
 *
 * Heartbeats carry a "read round" in their context and followers echo it.
 * A read that arrives joins the next round; a round is broadcast when none
 * is in flight, so every request arriving during one round trip shares the
 * next single quorum check (batching). Periodic heartbeats repeat the
 * latest round, which makes lost heartbeats harmless. The queue is bounded
 * by config.max_pending_reads. */
#include "raft/raft_int.h"

#include "common/mem.h"

#include <string.h>

void ro_init(raft_read_only *ro, size_t max)
{
    memset(ro, 0, sizeof(*ro));
    ro->max = max;
}

void ro_free(raft_read_only *ro)
{
    metcd_free(ro->q);
    memset(ro, 0, sizeof(*ro));
}

void ro_reset(raft_read_only *ro)
{
    /* Pending reads die with the leadership; clients retry. */
    ro->head = ro->len = 0;
    ro->round_issued = 0;
    ro->round_confirmed = 0;
}

static size_t pending(const raft_read_only *ro)
{
    return ro->len - ro->head;
}

static int push(raft_read_only *ro, const raft_read_req *req)
{
    if (pending(ro) >= ro->max)
        return RAFT_ETOOMANY;
    if (ro->head > 0 && ro->len == ro->cap) {
        memmove(ro->q, ro->q + ro->head, pending(ro) * sizeof(*ro->q));
        ro->len -= ro->head;
        ro->head = 0;
    }
    if (ro->len == ro->cap) {
        size_t ncap = ro->cap ? ro->cap * 2 : 16;
        raft_read_req *nq = metcd_realloc(ro->q, ncap * sizeof(*nq));
        if (!nq)
            return RAFT_ENOMEM;
        ro->q = nq;
        ro->cap = ncap;
    }
    ro->q[ro->len++] = *req;
    return 0;
}

static void confirm(raft *r)
{
    raft_progress *self = tracker_find(&r->trk, r->id);
    if (self)
        self->read_ack = r->ro.round_issued;
    uint64_t q = tracker_read_quorum(&r->trk);
    if (q > r->ro.round_confirmed)
        r->ro.round_confirmed = q;
}

static void issue_round(raft *r)
{
    r->ro.round_issued++;
    confirm(r); /* a lone voter confirms itself */
    raft_bcast_heartbeat(r);
}

void raft_read_release(raft *r)
{
    raft_read_only *ro = &r->ro;
    if (r->state != RAFT_LEADER || !raft_committed_in_term(r))
        return;
    while (pending(ro) && ro->q[ro->head].round <= ro->round_confirmed) {
        raft_read_req *req = &ro->q[ro->head];
        uint64_t index = req->index ? req->index : r->log.committed;
        if (req->from == r->id) {
            if (raft_push_read_state(r, index, req->ctx) != 0) {
                r->err = RAFT_ENOMEM;
                return;
            }
        } else {
            raft_msg m = {.type = RAFT_MSG_READ_INDEX_RESP,
                          .to = req->from,
                          .index = index,
                          .context = req->ctx};
            raft_send(r, &m);
        }
        ro->head++;
    }
    if (!pending(ro)) {
        ro->head = ro->len = 0;
        return;
    }
    /* requests queued behind the round just confirmed start the next */
    if (ro->round_issued == ro->round_confirmed) {
        issue_round(r);
        if (ro->round_confirmed == ro->round_issued)
            raft_read_release(r);
    }
}

int raft_leader_read_index(raft *r, const raft_msg *m)
{
    raft_read_only *ro = &r->ro;
    raft_read_req req = {
        .ctx = m->context,
        .from = m->from ? m->from : r->id,
        .index = raft_committed_in_term(r) ? r->log.committed : 0,
        .round = ro->round_issued + 1,
    };
    int rc = push(ro, &req);
    if (rc)
        return rc;
    if (ro->round_issued == ro->round_confirmed)
        issue_round(r);
    raft_read_release(r);
    return r->err;
}

void raft_read_heartbeat_ack(raft *r, raft_progress *pr, uint64_t round)
{
    if (round > r->ro.round_issued || round <= pr->read_ack)
        return;
    pr->read_ack = round;
    uint64_t before = r->ro.round_confirmed;
    confirm(r);
    if (r->ro.round_confirmed > before)
        raft_read_release(r);
}
