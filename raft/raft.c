/* raft/raft.c - the node: creation, the message dispatcher (term rules of
 * Raft paper figure 2 and thesis 9.6 for pre-vote), local requests, the
 * Ready hand-off, durability feedback and status. */
#include "raft/raft_int.h"

#include "common/mem.h"

#include <assert.h>
#include <string.h>

static uint64_t default_rand(void *data, uint64_t n)
{
    raft *r = data;
    uint64_t x = r->rand_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->rand_state = x;
    return n ? x % n : 0;
}

uint64_t raft_rand(raft *r, uint64_t n)
{
    return r->rand(r->rand_data, n);
}

bool raft_promotable(const raft *r)
{
    const raft_progress *p = tracker_find_c(&r->trk, r->id);
    return p && !p->learner;
}

int raft_new(const raft_config *cfg, raft **out)
{
    *out = NULL;
    if (cfg->id == RAFT_NONE || cfg->heartbeat_tick <= 0 ||
        cfg->election_tick <= cfg->heartbeat_tick || cfg->max_inflight_msgs == 0 ||
        !cfg->storage.ops || cfg->n_voters + cfg->n_learners > RAFT_MAX_NODES)
        return RAFT_EINVAL;
    raft *r = metcd_calloc(1, sizeof(*r));
    if (!r)
        return RAFT_ENOMEM;
    r->id = cfg->id;
    r->election_timeout = cfg->election_tick;
    r->heartbeat_timeout = cfg->heartbeat_tick;
    r->check_quorum = cfg->check_quorum;
    r->pre_vote = cfg->pre_vote;
    r->max_msg_size = cfg->max_size_per_msg;
    r->max_uncommitted_size =
        cfg->max_uncommitted_size ? cfg->max_uncommitted_size : (uint64_t)256 << 20;
    r->max_committed_size =
        cfg->max_committed_size_per_ready ? cfg->max_committed_size_per_ready : (uint64_t)64 << 20;
    r->rand = cfg->rand ? cfg->rand : default_rand;
    r->rand_data = cfg->rand ? cfg->rand_data : r;
    r->rand_state = cfg->id * 0x9E3779B97F4A7C15ull + 1;
    tracker_init(&r->trk, cfg->max_inflight_msgs);
    ro_init(&r->ro, cfg->max_pending_reads ? cfg->max_pending_reads : 4096);

    int rc = log_init(&r->log, cfg->storage);
    if (rc)
        goto err;
    raft_hard_state hs;
    raft_conf_state cs;
    memset(&cs, 0, sizeof(cs));
    rc = cfg->storage.ops->initial_state(cfg->storage.data, &hs, &cs);
    if (rc) {
        rc = RAFT_ESTORAGE;
        goto err;
    }
    if (cs.n_voters == 0 && cs.n_learners == 0) {
        for (size_t i = 0; i < cfg->n_voters; i++)
            cs.voters[cs.n_voters++] = cfg->voters[i];
        for (size_t i = 0; i < cfg->n_learners; i++)
            cs.learners[cs.n_learners++] = cfg->learners[i];
    }
    rc = raft_conf_from_state(r, &cs);
    if (rc)
        goto err;
    if (hs.term || hs.vote || hs.commit) {
        uint64_t last = log_last_index(&r->log);
        /* a torn WAL tail may have lost entries the hard state covers */
        log_commit_to(&r->log, hs.commit < last ? hs.commit : last);
        r->term = hs.term;
        r->vote = hs.vote;
    }
    if (cfg->applied) {
        /* Applied entries were committed, even if the hard state saying
         * so was not yet durable when the member went down. */
        if (cfg->applied > log_last_index(&r->log)) {
            rc = RAFT_EINVAL;
            goto err;
        }
        log_commit_to(&r->log, cfg->applied);
        if (cfg->applied > r->log.applied)
            r->log.applied = r->log.applying = cfg->applied;
    }
    raft_become_follower(r, r->term, RAFT_NONE);
    r->prev_hard.term = r->term;
    r->prev_hard.vote = r->vote;
    r->prev_hard.commit = r->log.committed;
    r->prev_soft.lead = RAFT_NONE;
    r->prev_soft.state = RAFT_FOLLOWER;
    *out = r;
    return 0;
err:
    raft_free(r);
    return rc;
}

void raft_free(raft *r)
{
    if (!r)
        return;
    log_free(&r->log);
    tracker_free(&r->trk);
    ro_free(&r->ro);
    msg_vec_free(&r->msgs);
    msg_vec_free(&r->msgs_after);
    metcd_free(r->read_states);
    metcd_free(r->spare_ents);
    metcd_free(r->spare_committed);
    metcd_free(r);
}

/* Queues m (moved). Messages that vouch for durable state (votes, vote
 * requests, append responses) wait for their Ready to be persisted. */
void raft_send(raft *r, raft_msg *m)
{
    m->from = r->id;
    if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_VOTE_RESP || m->type == RAFT_MSG_PRE_VOTE ||
        m->type == RAFT_MSG_PRE_VOTE_RESP) {
        assert(m->term != 0); /* set by the caller */
    } else if (m->type == RAFT_MSG_PROP || m->type == RAFT_MSG_READ_INDEX ||
               m->type == RAFT_MSG_TRANSFER_LEADER) {
        /* forwarded local requests carry no term */
    } else {
        m->term = r->term;
    }
    /* A candidate's own vote must be durable before it asks for others:
     * after a crash it must not vote again in that term (thesis 3.8). */
    raft_msg_vec *q = &r->msgs;
    if (m->type == RAFT_MSG_APP_RESP || m->type == RAFT_MSG_VOTE_RESP || m->type == RAFT_MSG_VOTE)
        q = &r->msgs_after;
    if (msg_vec_push(q, m) != 0)
        r->err = RAFT_ENOMEM; /* the message is lost, as on a network */
}

int raft_push_read_state(raft *r, uint64_t index, uint64_t ctx)
{
    if (r->n_read_states == r->cap_read_states) {
        size_t ncap = r->cap_read_states ? r->cap_read_states * 2 : 16;
        raft_read_state *nv = metcd_realloc(r->read_states, ncap * sizeof(*nv));
        if (!nv)
            return RAFT_ENOMEM;
        r->read_states = nv;
        r->cap_read_states = ncap;
    }
    r->read_states[r->n_read_states].index = index;
    r->read_states[r->n_read_states].ctx = ctx;
    r->n_read_states++;
    return 0;
}

int raft_step(raft *r, const raft_msg *m)
{
    if ((unsigned)m->type >= RAFT_MSG_NTYPES)
        return RAFT_EINVAL;
    r->err = 0;
    if (m->term == 0) {
        /* local message, or a forwarded local request; anything else
         * without a term is malformed */
        switch (m->type) {
        case RAFT_MSG_HUP:
        case RAFT_MSG_BEAT:
        case RAFT_MSG_PROP:
        case RAFT_MSG_UNREACHABLE:
        case RAFT_MSG_SNAP_STATUS:
        case RAFT_MSG_CHECK_QUORUM:
        case RAFT_MSG_TRANSFER_LEADER:
        case RAFT_MSG_READ_INDEX:
            break;
        default:
            return RAFT_EINVAL;
        }
    } else if (m->from == r->id || m->from == RAFT_NONE) {
        return RAFT_EINVAL; /* we never message ourselves */
    } else if (m->term > r->term) {
        if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PRE_VOTE) {
            /* Thesis 4.2.3: within the minimum election timeout of
             * hearing from a leader, ignore vote requests, unless the
             * leader itself asked for it (MsgTimeoutNow). */
            bool in_lease = r->check_quorum && r->lead != RAFT_NONE &&
                            r->election_elapsed < r->election_timeout;
            if (!m->transfer && in_lease)
                return 0;
        }
        if (m->type == RAFT_MSG_PRE_VOTE) {
            /* never change term for a pre-vote */
        } else if (m->type == RAFT_MSG_PRE_VOTE_RESP && !m->reject) {
            /* a granted pre-vote carries the term we will campaign at */
        } else if (m->type == RAFT_MSG_APP || m->type == RAFT_MSG_HEARTBEAT ||
                   m->type == RAFT_MSG_SNAP) {
            raft_become_follower(r, m->term, m->from);
        } else {
            raft_become_follower(r, m->term, RAFT_NONE);
        }
    } else if (m->term < r->term) {
        if ((r->check_quorum || r->pre_vote) &&
            (m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_APP)) {
            /* A stale leader (e.g. after a partition) learns our term so
             * it steps down; otherwise pre-vote/check-quorum could leave
             * it and us stuck. */
            raft_msg resp = {.type = RAFT_MSG_APP_RESP, .to = m->from};
            raft_send(r, &resp);
        } else if (m->type == RAFT_MSG_PRE_VOTE) {
            raft_msg resp = {
                .type = RAFT_MSG_PRE_VOTE_RESP, .to = m->from, .term = r->term, .reject = true};
            raft_send(r, &resp);
        }
        return r->err;
    }

    switch (m->type) {
    case RAFT_MSG_HUP:
        if (r->state != RAFT_LEADER)
            raft_hup(r, false);
        return r->err;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PRE_VOTE:
        raft_handle_vote_request(r, m);
        return r->err;
    default:
        break;
    }
    int rc;
    switch (r->state) {
    case RAFT_LEADER:
        rc = raft_step_leader(r, m);
        break;
    case RAFT_CANDIDATE:
    case RAFT_PRE_CANDIDATE:
        rc = raft_step_candidate(r, m);
        break;
    default:
        rc = raft_step_follower(r, m);
        break;
    }
    return rc ? rc : r->err;
}

int raft_tick(raft *r)
{
    r->err = 0;
    if (r->state == RAFT_LEADER)
        raft_tick_heartbeat(r);
    else
        raft_tick_election(r);
    return r->err;
}

int raft_campaign(raft *r)
{
    raft_msg m = {.type = RAFT_MSG_HUP, .from = r->id};
    return raft_step(r, &m);
}

int raft_propose_buf(raft *r, raft_buf *data)
{
    raft_entry e = {.type = RAFT_ENTRY_NORMAL, .data = data};
    raft_msg m = {.type = RAFT_MSG_PROP, .from = r->id, .entries = &e, .n_entries = 1};
    return raft_step(r, &m);
}

int raft_propose(raft *r, const void *data, size_t len)
{
    raft_buf *b = raft_buf_new(data, len);
    if (!b)
        return RAFT_ENOMEM;
    int rc = raft_propose_buf(r, b);
    raft_buf_unref(b);
    return rc;
}

int raft_propose_conf_change(raft *r, const raft_conf_change *cc)
{
    uint8_t *enc;
    size_t n;
    int rc = raft_conf_change_encode(cc, &enc, &n);
    if (rc)
        return rc;
    raft_buf *b = raft_buf_new(enc, n);
    metcd_free(enc);
    if (!b)
        return RAFT_ENOMEM;
    raft_entry e = {.type = RAFT_ENTRY_CONF_CHANGE, .data = b};
    raft_msg m = {.type = RAFT_MSG_PROP, .from = r->id, .entries = &e, .n_entries = 1};
    rc = raft_step(r, &m);
    raft_buf_unref(b);
    return rc;
}

int raft_read_index(raft *r, uint64_t ctx)
{
    raft_msg m = {.type = RAFT_MSG_READ_INDEX, .from = r->id, .context = ctx};
    return raft_step(r, &m);
}

int raft_transfer_leader(raft *r, uint64_t transferee)
{
    raft_msg m = {.type = RAFT_MSG_TRANSFER_LEADER, .from = transferee};
    return raft_step(r, &m);
}

int raft_report_unreachable(raft *r, uint64_t id)
{
    raft_msg m = {.type = RAFT_MSG_UNREACHABLE, .from = id};
    return raft_step(r, &m);
}

int raft_report_snapshot(raft *r, uint64_t id, bool failed)
{
    raft_msg m = {.type = RAFT_MSG_SNAP_STATUS, .from = id, .reject = failed};
    return raft_step(r, &m);
}

int raft_persisted(raft *r, uint64_t index, uint64_t term)
{
    r->err = 0;
    if (!log_match_term(&r->log, index, term))
        return 0; /* stale: the entry has been replaced or compacted */
    log_stable_to(&r->log, index, term);
    if (r->state == RAFT_LEADER) {
        /* Thesis 10.2.1: the leader is one vote of the commit quorum, for
         * what its own disk holds. */
        raft_progress *self = tracker_find(&r->trk, r->id);
        if (self && pr_maybe_update(self, index) && raft_maybe_commit(r)) {
            raft_read_release(r);
            raft_bcast_append(r);
        }
    }
    return r->err;
}

int raft_applied(raft *r, uint64_t index)
{
    if (index > r->log.applying || index < r->log.applied)
        return index < r->log.applied ? 0 : RAFT_EINVAL;
    r->log.applied = index;
    return 0;
}

static raft_hard_state hard_state(const raft *r)
{
    raft_hard_state hs = {r->term, r->vote, r->log.committed};
    return hs;
}

static bool hs_equal(const raft_hard_state *a, const raft_hard_state *b)
{
    return a->term == b->term && a->vote == b->vote && a->commit == b->commit;
}

bool raft_has_ready(const raft *r)
{
    raft_hard_state hs = hard_state(r);
    if (r->lead != r->prev_soft.lead || r->state != r->prev_soft.state)
        return true;
    if (!hs_equal(&hs, &r->prev_hard))
        return true;
    if (r->log.snap && !r->log.snap_in_progress)
        return true;
    if (r->pending_bcast)
        return true;
    return log_has_unsent(&r->log) || log_has_committed_to_apply(&r->log) || r->msgs.len ||
           r->msgs_after.len || r->n_read_states;
}

int raft_ready(raft *r, struct raft_ready *rd)
{
    memset(rd, 0, sizeof(*rd));
    raft_entry_vec ents = {r->spare_ents, 0, r->spare_ents_cap};
    raft_entry_vec committed = {r->spare_committed, 0, r->spare_committed_cap};
    r->spare_ents = r->spare_committed = NULL;
    r->spare_ents_cap = r->spare_committed_cap = 0;
    raft_snapshot *snap = NULL;
    int rc;
    if (r->pending_bcast) {
        r->pending_bcast = false;
        if (r->state == RAFT_LEADER)
            raft_bcast_append(r); /* a lost message is retried later */
    }
    if (r->log.snap && !r->log.snap_in_progress) {
        snap = raft_snapshot_dup(r->log.snap);
        if (!snap)
            return RAFT_ENOMEM;
    }
    if (log_has_unsent(&r->log)) {
        rc = log_entries(&r->log, r->log.in_progress, log_last_index(&r->log) + 1, UINT64_MAX,
                         &ents);
        if (rc)
            goto err;
    }
    uint64_t lo, hi;
    log_apply_window(&r->log, &lo, &hi);
    if (lo <= hi) {
        rc = log_entries(&r->log, lo, hi + 1, r->max_committed_size, &committed);
        if (rc)
            goto err;
    }
    /* commit: nothing below can fail */
    if (r->lead != r->prev_soft.lead || r->state != r->prev_soft.state) {
        rd->has_soft_state = true;
        rd->soft_state.lead = r->lead;
        rd->soft_state.state = r->state;
        r->prev_soft = rd->soft_state;
    }
    raft_hard_state hs = hard_state(r);
    if (!hs_equal(&hs, &r->prev_hard)) {
        rd->has_hard_state = true;
        rd->hard_state = hs;
        rd->must_sync = hs.term != r->prev_hard.term || hs.vote != r->prev_hard.vote;
        r->prev_hard = hs;
    }
    if (snap) {
        rd->snapshot = snap;
        r->log.snap_in_progress = true;
        if (r->log.applying < snap->meta.index)
            r->log.applying = snap->meta.index;
        rd->must_sync = true;
    }
    if (ents.len) {
        r->log.in_progress = ents.v[ents.len - 1].index + 1;
        rd->must_sync = true;
    }
    rd->entries = ents.v;
    rd->n_entries = ents.len;
    rd->cap_entries_ = ents.cap;
    if (committed.len) {
        r->log.applying = committed.v[committed.len - 1].index;
        /* committed entries no longer count against the proposal bound */
        uint64_t sz = 0;
        for (size_t i = 0; i < committed.len; i++)
            sz += committed.v[i].data ? committed.v[i].data->len : 0;
        r->uncommitted_size = sz < r->uncommitted_size ? r->uncommitted_size - sz : 0;
    }
    rd->committed = committed.v;
    rd->n_committed = committed.len;
    rd->cap_committed_ = committed.cap;
    if (r->msgs.len) {
        rd->msgs = r->msgs.v;
        rd->n_msgs = r->msgs.len;
        rd->cap_msgs_ = r->msgs.cap;
        memset(&r->msgs, 0, sizeof(r->msgs));
    }
    if (r->msgs_after.len) {
        rd->msgs_after_persist = r->msgs_after.v;
        rd->n_msgs_after_persist = r->msgs_after.len;
        rd->cap_after_ = r->msgs_after.cap;
        memset(&r->msgs_after, 0, sizeof(r->msgs_after));
    }
    rd->read_states = r->read_states;
    rd->n_read_states = r->n_read_states;
    r->read_states = NULL;
    r->n_read_states = r->cap_read_states = 0;
    return 0;
err:
    raft_snapshot_free(snap);
    raft_entry_vec_free(&ents);
    raft_entry_vec_free(&committed);
    return rc;
}

/* Drops the references in v[0, n) and keeps the array as *spare (if the
 * slot is free) or frees it. */
static void recycle_entries(raft_entry *v, size_t n, size_t cap, raft_entry **spare,
                            size_t *spare_cap)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        raft_buf_unref(v[i].data);
    if (!*spare && cap) {
        *spare = v;
        *spare_cap = cap;
    } else {
        metcd_free(v);
    }
}

static void recycle_msgs(raft_msg *v, size_t n, size_t cap, raft_msg_vec *q)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        raft_msg_free(&v[i]);
    if (!q->v && cap) {
        q->v = v;
        q->cap = cap;
        q->len = 0;
    } else {
        metcd_free(v);
    }
}

void raft_advance(raft *r, struct raft_ready *rd)
{
    raft_snapshot_free(rd->snapshot);
    recycle_entries(rd->entries, rd->n_entries, rd->cap_entries_, &r->spare_ents,
                    &r->spare_ents_cap);
    recycle_entries(rd->committed, rd->n_committed, rd->cap_committed_, &r->spare_committed,
                    &r->spare_committed_cap);
    recycle_msgs(rd->msgs, rd->n_msgs, rd->cap_msgs_, &r->msgs);
    recycle_msgs(rd->msgs_after_persist, rd->n_msgs_after_persist, rd->cap_after_, &r->msgs_after);
    metcd_free(rd->read_states);
    memset(rd, 0, sizeof(*rd));
}

void raft_status_get(const raft *r, raft_status *st)
{
    memset(st, 0, sizeof(*st));
    st->id = r->id;
    st->term = r->term;
    st->vote = r->vote;
    st->commit = r->log.committed;
    st->applied = r->log.applied;
    st->lead = r->lead;
    st->state = r->state;
    st->last_index = log_last_index(&r->log);
    st->first_index = log_first_index(&r->log);
    st->persisted = log_persisted_index(&r->log);
    st->lead_transferee = r->lead_transferee;
    tracker_conf_state(&r->trk, &st->conf);
    if (r->state != RAFT_LEADER)
        return;
    for (size_t i = 0; i < r->trk.n; i++) {
        const raft_progress *p = &r->trk.prs[i];
        raft_peer_status *ps = &st->peers[st->n_peers++];
        ps->id = p->id;
        ps->match = p->match;
        ps->next = p->next;
        ps->state = p->state;
        ps->learner = p->learner;
        ps->recent_active = p->recent_active;
        ps->inflight = p->ins.count;
    }
}
