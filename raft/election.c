/* raft/election.c - roles and elections: randomized timeouts (Raft paper
 * 5.2), voting rules (5.4.1), pre-vote (thesis 9.6), CheckQuorum and the
 * leader lease on votes (thesis 6.2, 4.2.3). */
#include "raft/raft_int.h"

#include <assert.h>

bool raft_past_election_timeout(const raft *r)
{
    return r->election_elapsed >= r->randomized_election_timeout;
}

static void reset_randomized_timeout(raft *r)
{
    r->randomized_election_timeout =
        r->election_timeout + (int)raft_rand(r, (uint64_t)r->election_timeout);
}

void raft_reset(raft *r, uint64_t term)
{
    if (r->term != term) {
        r->term = term;
        r->vote = RAFT_NONE;
    }
    r->lead = RAFT_NONE;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    reset_randomized_timeout(r);
    raft_abort_transfer(r);
    tracker_reset_votes(&r->trk);
    uint64_t last = log_last_index(&r->log);
    for (size_t i = 0; i < r->trk.n; i++) {
        raft_progress *p = &r->trk.prs[i];
        pr_reset(p, last + 1);
        if (p->id == r->id)
            p->match = log_persisted_index(&r->log);
    }
    r->pending_conf_index = 0;
    r->uncommitted_size = 0;
    r->pending_bcast = false;
    ro_reset(&r->ro);
}

void raft_become_follower(raft *r, uint64_t term, uint64_t lead)
{
    raft_reset(r, term);
    r->lead = lead;
    r->state = RAFT_FOLLOWER;
}

void raft_become_candidate(raft *r)
{
    assert(r->state != RAFT_LEADER);
    raft_reset(r, r->term + 1);
    r->vote = r->id;
    r->state = RAFT_CANDIDATE;
}

void raft_become_pre_candidate(raft *r)
{
    assert(r->state != RAFT_LEADER);
    /* Neither term nor vote change: a pre-candidate disrupts nobody. */
    tracker_reset_votes(&r->trk);
    r->lead = RAFT_NONE;
    r->state = RAFT_PRE_CANDIDATE;
}

int raft_become_leader(raft *r)
{
    assert(r->state != RAFT_FOLLOWER);
    raft_reset(r, r->term);
    r->lead = r->id;
    r->state = RAFT_LEADER;
    raft_progress *self = tracker_find(&r->trk, r->id);
    if (self) {
        pr_become_replicate(self);
        self->recent_active = true;
    }
    /* Conservatively block conf changes until the previous term's tail is
     * known to be applied. */
    r->pending_conf_index = log_last_index(&r->log);
    /* Thesis 6.4: an entry of the new term lets the leader learn what is
     * committed (and lets reads proceed). */
    raft_entry e = {.type = RAFT_ENTRY_NORMAL};
    return raft_append_entries_leader(r, &e, 1);
}

static void send_vote_requests(raft *r, raft_msg_type t, uint64_t term, bool transfer)
{
    uint64_t last = log_last_index(&r->log);
    uint64_t lt = log_last_term(&r->log);
    for (size_t i = 0; i < r->trk.n; i++) {
        const raft_progress *p = &r->trk.prs[i];
        if (p->learner || p->id == r->id)
            continue;
        raft_msg m = {.type = t,
                      .to = p->id,
                      .term = term,
                      .index = last,
                      .log_term = lt,
                      .transfer = transfer};
        raft_send(r, &m);
    }
}

/* Returns the result of counting our own vote plus whatever arrived. */
static raft_vote_result poll(raft *r, uint64_t id, bool granted)
{
    tracker_record_vote(&r->trk, id, granted);
    return tracker_tally(&r->trk, NULL, NULL);
}

static void campaign(raft *r, bool pre, bool transfer)
{
    uint64_t term;
    raft_msg_type t;
    if (pre) {
        raft_become_pre_candidate(r);
        t = RAFT_MSG_PRE_VOTE;
        term = r->term + 1;
    } else {
        raft_become_candidate(r);
        t = RAFT_MSG_VOTE;
        term = r->term;
    }
    if (poll(r, r->id, true) == VOTE_WON) {
        /* single voter: won already */
        if (pre)
            campaign(r, false, transfer);
        else
            raft_become_leader(r);
        return;
    }
    send_vote_requests(r, t, term, transfer);
}

void raft_hup(raft *r, bool transfer)
{
    if (!raft_promotable(r))
        return;
    /* A node must not campaign while it could still have to apply a
     * conf change that removes it or changes the quorum. */
    if (raft_has_unapplied_conf_change(r))
        return;
    campaign(r, r->pre_vote && !transfer, transfer);
}

void raft_tick_election(raft *r)
{
    r->election_elapsed++;
    if (raft_promotable(r) && raft_past_election_timeout(r)) {
        r->election_elapsed = 0;
        raft_msg m = {.type = RAFT_MSG_HUP, .from = r->id};
        raft_step(r, &m);
    }
}

void raft_tick_heartbeat(raft *r)
{
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->election_elapsed >= r->election_timeout) {
        r->election_elapsed = 0;
        if (r->check_quorum) {
            raft_msg m = {.type = RAFT_MSG_CHECK_QUORUM, .from = r->id};
            raft_step(r, &m);
        }
        /* a transfer that did not finish within an election timeout is
         * abandoned (thesis 3.10) */
        if (r->state == RAFT_LEADER && r->lead_transferee != RAFT_NONE)
            raft_abort_transfer(r);
    }
    if (r->state != RAFT_LEADER)
        return;
    if (r->heartbeat_elapsed >= r->heartbeat_timeout) {
        r->heartbeat_elapsed = 0;
        raft_msg m = {.type = RAFT_MSG_BEAT, .from = r->id};
        raft_step(r, &m);
    }
}

void raft_handle_vote_request(raft *r, const raft_msg *m)
{
    bool pre = m->type == RAFT_MSG_PRE_VOTE;
    /* We may vote again for the node we voted for (a duplicate request),
     * vote if we have not voted and know no leader, or grant a pre-vote
     * for a future term. */
    bool can_vote = r->vote == m->from || (r->vote == RAFT_NONE && r->lead == RAFT_NONE) ||
                    (pre && m->term > r->term);
    raft_msg resp = {.type = pre ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP, .to = m->from};
    if (can_vote && log_is_up_to_date(&r->log, m->index, m->log_term)) {
        /* Reply with the request's term: a pre-vote response must carry
         * the future term for the pre-candidate to count it. */
        resp.term = m->term;
        raft_send(r, &resp);
        if (!pre) {
            r->election_elapsed = 0;
            r->vote = m->from;
        }
    } else {
        /* a node that never saw a term (e.g. a torn first write) answers
         * a pre-vote with the requested term, never with term 0 */
        resp.term = r->term ? r->term : m->term;
        resp.reject = true;
        raft_send(r, &resp);
    }
}

int raft_step_candidate(raft *r, const raft_msg *m)
{
    raft_msg_type my_resp =
        r->state == RAFT_PRE_CANDIDATE ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP;
    switch (m->type) {
    case RAFT_MSG_PROP:
        return RAFT_ENOLEADER;
    case RAFT_MSG_READ_INDEX:
        return RAFT_ENOLEADER;
    case RAFT_MSG_APP:
        raft_become_follower(r, m->term, m->from);
        raft_handle_append(r, m);
        return 0;
    case RAFT_MSG_HEARTBEAT:
        raft_become_follower(r, m->term, m->from);
        raft_handle_heartbeat(r, m);
        return 0;
    case RAFT_MSG_SNAP:
        raft_become_follower(r, m->term, m->from);
        raft_handle_snapshot(r, m);
        return 0;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PRE_VOTE_RESP:
        if (m->type != my_resp)
            return 0;
        switch (poll(r, m->from, !m->reject)) {
        case VOTE_WON:
            if (r->state == RAFT_PRE_CANDIDATE) {
                campaign(r, false, false);
            } else {
                raft_become_leader(r);
                raft_bcast_append(r);
            }
            break;
        case VOTE_LOST:
            /* A rejection carries the voter's term; pre-vote rejections
             * may be from a term we never enter. */
            raft_become_follower(r, r->term, RAFT_NONE);
            break;
        case VOTE_PENDING:
            break;
        }
        return 0;
    case RAFT_MSG_TIMEOUT_NOW:
        return 0;
    default:
        return 0;
    }
}
