/* raft/replication.c - log replication (Raft paper 5.3, thesis 3.5):
 * the leader's AppendEntries flow control per follower (probe / replicate /
 * snapshot, inflight window, size-bounded batches), fast backtracking on
 * rejection, heartbeats carrying commit, the commit rule of 5.4.2 (count
 * only entries of the current term), snapshots to followers that fell
 * behind compaction (thesis 5.1), and the follower side of all of it. */
#include "raft/raft_int.h"

#include "common/mem.h"

#include <assert.h>
#include <string.h>

bool raft_committed_in_term(const raft *r)
{
    return log_term_or0(&r->log, r->log.committed) == r->term;
}

/* Sends a snapshot to pr; false if none could be sent now. */
static bool send_snapshot(raft *r, raft_progress *pr)
{
    if (!pr->recent_active)
        return false; /* don't ship a snapshot to a node that is down */
    raft_snapshot *s = NULL;
    int rc = r->log.st.ops->snapshot(r->log.st.data, &s);
    if (rc != 0) {
        if (rc == RAFT_ENOMEM)
            r->err = RAFT_ENOMEM;
        return false; /* RAFT_ESNAPTEMP: try again later */
    }
    if (s->meta.index == 0) {
        raft_snapshot_free(s);
        return false;
    }
    raft_msg m = {.type = RAFT_MSG_SNAP, .to = pr->id, .snapshot = s};
    pr_become_snapshot(pr, s->meta.index);
    raft_send(r, &m);
    return true;
}

bool raft_maybe_send_append(raft *r, uint64_t to, bool send_if_empty)
{
    raft_progress *pr = tracker_find(&r->trk, to);
    if (!pr || to == r->id || pr_is_paused(pr))
        return false;
    uint64_t prev_term;
    int trc = log_term(&r->log, pr->next - 1, &prev_term);
    raft_entry_vec ents = {0};
    int erc = 0;
    uint64_t last = log_last_index(&r->log);
    if (trc == 0 && pr->next <= last)
        erc = log_entries(&r->log, pr->next, last + 1, r->max_msg_size, &ents);
    if (trc == RAFT_ECOMPACTED || erc == RAFT_ECOMPACTED) {
        raft_entry_vec_free(&ents);
        return send_snapshot(r, pr);
    }
    if (trc || erc) {
        raft_entry_vec_free(&ents);
        r->err = trc ? trc : erc;
        return false;
    }
    if (ents.len == 0 && !send_if_empty)
        return false;
    raft_msg m = {.type = RAFT_MSG_APP,
                  .to = to,
                  .index = pr->next - 1,
                  .log_term = prev_term,
                  .commit = r->log.committed,
                  .entries = ents.v,
                  .n_entries = ents.len};
    if (ents.len) {
        uint64_t lasti = ents.v[ents.len - 1].index;
        switch (pr->state) {
        case RAFT_PROGRESS_REPLICATE:
            pr_optimistic_update(pr, lasti);
            ins_add(&pr->ins, lasti);
            break;
        case RAFT_PROGRESS_PROBE:
            pr->probe_sent = true;
            break;
        default:
            assert(0 && "sending append to a node receiving a snapshot");
        }
    }
    raft_send(r, &m);
    return true;
}

void raft_bcast_append(raft *r)
{
    for (size_t i = 0; i < r->trk.n; i++)
        if (r->trk.prs[i].id != r->id)
            raft_maybe_send_append(r, r->trk.prs[i].id, true);
}

void raft_send_heartbeat(raft *r, uint64_t to, uint64_t ctx)
{
    const raft_progress *pr = tracker_find_c(&r->trk, to);
    /* Never tell a follower to commit past what it is known to hold. */
    uint64_t commit = pr && pr->match < r->log.committed ? pr->match : r->log.committed;
    raft_msg m = {.type = RAFT_MSG_HEARTBEAT, .to = to, .commit = commit, .context = ctx};
    raft_send(r, &m);
}

void raft_bcast_heartbeat(raft *r)
{
    for (size_t i = 0; i < r->trk.n; i++)
        if (r->trk.prs[i].id != r->id)
            raft_send_heartbeat(r, r->trk.prs[i].id, r->ro.round_issued);
}

/* Paper 5.4.2: commit by counting replicas only for current-term entries. */
bool raft_maybe_commit(raft *r)
{
    uint64_t mci = tracker_committed(&r->trk);
    return log_maybe_commit(&r->log, mci, r->term);
}

static uint64_t payload_size(const raft_entry *ents, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += ents[i].data ? ents[i].data->len : 0;
    return s;
}

/* Stamps term and index on ents (the caller's array) and appends them. */
int raft_append_entries_leader(raft *r, raft_entry *ents, size_t n)
{
    uint64_t li = log_last_index(&r->log);
    for (size_t i = 0; i < n; i++) {
        ents[i].term = r->term;
        ents[i].index = li + 1 + i;
    }
    int rc = log_append(&r->log, ents, n);
    if (rc)
        return rc;
    r->uncommitted_size += payload_size(ents, n);
    return 0;
}

static int leader_propose(raft *r, const raft_msg *m)
{
    if (m->n_entries == 0)
        return RAFT_EINVAL;
    raft_progress *self = tracker_find(&r->trk, r->id);
    if (!self)
        return RAFT_EDROPPED; /* removed from the cluster */
    if (r->lead_transferee != RAFT_NONE)
        return RAFT_EDROPPED; /* thesis 3.10: stop taking requests */
    uint64_t size = payload_size(m->entries, m->n_entries);
    if (r->uncommitted_size > 0 && r->uncommitted_size + size > r->max_uncommitted_size)
        return RAFT_EDROPPED;
    raft_entry local[16];
    raft_entry *ents = m->n_entries <= 16 ? local : metcd_malloc(m->n_entries * sizeof(raft_entry));
    if (!ents)
        return RAFT_ENOMEM;
    memcpy(ents, m->entries, m->n_entries * sizeof(raft_entry));
    for (size_t i = 0; i < m->n_entries; i++) {
        if (ents[i].type != RAFT_ENTRY_CONF_CHANGE)
            continue;
        if (r->pending_conf_index > r->log.applied) {
            /* one change at a time: replace by an empty entry, or refuse
             * outright when it is the only thing proposed */
            if (m->n_entries == 1) {
                if (ents != local)
                    metcd_free(ents);
                return RAFT_EDROPPED;
            }
            ents[i].type = RAFT_ENTRY_NORMAL;
            ents[i].data = NULL;
        } else {
            r->pending_conf_index = log_last_index(&r->log) + i + 1;
        }
    }
    int rc = raft_append_entries_leader(r, ents, m->n_entries);
    if (ents != local)
        metcd_free(ents);
    if (rc)
        return rc;
    /* batch: every proposal until the next Ready shares one MsgApp */
    r->pending_bcast = true;
    return 0;
}

static void handle_app_resp(raft *r, raft_progress *pr, const raft_msg *m)
{
    uint64_t id = pr->id;
    pr->recent_active = true;
    if (m->reject) {
        /* Fast backtracking: the follower told us where its log (term
         * <= log_term) ends; jump to the last index we share a term
         * with. */
        uint64_t hint = m->reject_hint;
        if (m->log_term > 0)
            hint = log_find_conflict_by_term(&r->log, m->reject_hint, m->log_term);
        if (pr_maybe_decr_to(pr, m->index, hint)) {
            if (pr->state == RAFT_PROGRESS_REPLICATE)
                pr_become_probe(pr);
            raft_maybe_send_append(r, id, true);
        }
        return;
    }
    bool was_paused = pr_is_paused(pr);
    if (!pr_maybe_update(pr, m->index))
        return;
    switch (pr->state) {
    case RAFT_PROGRESS_PROBE:
        pr_become_replicate(pr);
        break;
    case RAFT_PROGRESS_SNAPSHOT:
        if (pr->match >= pr->pending_snapshot) {
            pr_become_probe(pr);
            pr_become_replicate(pr);
        }
        break;
    case RAFT_PROGRESS_REPLICATE:
        ins_free_le(&pr->ins, m->index);
        break;
    }
    if (raft_maybe_commit(r)) {
        raft_read_release(r);
        raft_bcast_append(r);
    } else if (was_paused) {
        raft_maybe_send_append(r, id, true);
    }
    /* fill the window */
    while (raft_maybe_send_append(r, id, false)) {
    }
    pr = tracker_find(&r->trk, id);
    if (pr && id == r->lead_transferee && pr->match == log_last_index(&r->log))
        raft_send_timeout_now(r, id);
}

int raft_step_leader(raft *r, const raft_msg *m)
{
    switch (m->type) {
    case RAFT_MSG_BEAT:
        raft_bcast_heartbeat(r);
        return 0;
    case RAFT_MSG_CHECK_QUORUM:
        if (!tracker_quorum_active(&r->trk, r->id)) {
            raft_become_follower(r, r->term, RAFT_NONE);
            return 0;
        }
        for (size_t i = 0; i < r->trk.n; i++)
            if (r->trk.prs[i].id != r->id)
                r->trk.prs[i].recent_active = false;
        return 0;
    case RAFT_MSG_PROP:
        return leader_propose(r, m);
    case RAFT_MSG_READ_INDEX:
        return raft_leader_read_index(r, m);
    case RAFT_MSG_TRANSFER_LEADER:
        return raft_leader_transfer(r, m);
    default:
        break;
    }
    raft_progress *pr = tracker_find(&r->trk, m->from);
    if (!pr)
        return 0; /* not (or no longer) a member */
    switch (m->type) {
    case RAFT_MSG_APP_RESP:
        handle_app_resp(r, pr, m);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        pr->recent_active = true;
        pr->probe_sent = false;
        if (pr->state == RAFT_PROGRESS_REPLICATE && ins_full(&pr->ins))
            ins_free_first(&pr->ins);
        if (pr->match < log_last_index(&r->log))
            raft_maybe_send_append(r, m->from, true);
        pr = tracker_find(&r->trk, m->from);
        if (pr)
            raft_read_heartbeat_ack(r, pr, m->context);
        break;
    case RAFT_MSG_SNAP_STATUS:
        if (pr->state != RAFT_PROGRESS_SNAPSHOT)
            break;
        if (m->reject)
            pr->pending_snapshot = 0;
        pr_become_probe(pr);
        /* wait for a heartbeat response before probing again */
        pr->probe_sent = true;
        break;
    case RAFT_MSG_UNREACHABLE:
        if (pr->state == RAFT_PROGRESS_REPLICATE)
            pr_become_probe(pr);
        break;
    default:
        break;
    }
    return 0;
}

static int forward(raft *r, const raft_msg *m)
{
    raft_msg f;
    int rc = raft_msg_copy(&f, m);
    if (rc)
        return rc;
    f.to = r->lead;
    f.term = 0;
    raft_msg_vec *q = &r->msgs;
    size_t before = q->len;
    raft_send(r, &f);
    /* raft_send stamps our id; a transfer request names the transferee */
    if (m->type == RAFT_MSG_TRANSFER_LEADER && q->len > before)
        q->v[q->len - 1].from = m->from;
    return r->err;
}

/* Only local requests are forwarded: a request that reached a follower
 * from the network is dropped, so stale or forged views of who leads can
 * never route messages in a cycle. */
static bool is_local_request(const raft *r, const raft_msg *m)
{
    if (m->type == RAFT_MSG_TRANSFER_LEADER)
        return m->to == RAFT_NONE; /* `from` names the transferee */
    return m->from == r->id;
}

int raft_step_follower(raft *r, const raft_msg *m)
{
    switch (m->type) {
    case RAFT_MSG_PROP:
    case RAFT_MSG_TRANSFER_LEADER:
    case RAFT_MSG_READ_INDEX:
        if (r->lead == RAFT_NONE)
            return RAFT_ENOLEADER;
        if (!is_local_request(r, m))
            return 0;
        return forward(r, m);
    case RAFT_MSG_APP:
        r->election_elapsed = 0;
        r->lead = m->from;
        raft_handle_append(r, m);
        return 0;
    case RAFT_MSG_HEARTBEAT:
        r->election_elapsed = 0;
        r->lead = m->from;
        raft_handle_heartbeat(r, m);
        return 0;
    case RAFT_MSG_SNAP:
        r->election_elapsed = 0;
        r->lead = m->from;
        raft_handle_snapshot(r, m);
        return 0;
    case RAFT_MSG_TIMEOUT_NOW:
        /* Thesis 3.10: the leader asks us to start an election at once,
         * bypassing pre-vote and the lease. */
        raft_hup(r, true);
        return 0;
    case RAFT_MSG_READ_INDEX_RESP:
        return raft_push_read_state(r, m->index, m->context);
    default:
        return 0;
    }
}

void raft_handle_append(raft *r, const raft_msg *m)
{
    /* malformed input is dropped, never asserted on */
    for (size_t i = 0; i < m->n_entries; i++) {
        if (m->entries[i].index != m->index + 1 + i || m->entries[i].term > m->term) {
            r->err = RAFT_EINVAL;
            return;
        }
    }
    raft_msg resp = {.type = RAFT_MSG_APP_RESP, .to = m->from};
    if (m->index < r->log.committed) {
        resp.index = r->log.committed;
        raft_send(r, &resp);
        return;
    }
    bool ok;
    uint64_t lastnew;
    int rc = log_maybe_append(&r->log, m->index, m->log_term, m->commit, m->entries, m->n_entries,
                              &ok, &lastnew);
    if (rc) {
        r->err = rc;
        return;
    }
    if (ok) {
        resp.index = lastnew;
        raft_send(r, &resp);
        return;
    }
    /* Reject with a hint: the last index whose term is <= the leader's
     * log_term, so the leader can skip a whole term per round trip. */
    uint64_t last = log_last_index(&r->log);
    uint64_t hint =
        log_find_conflict_by_term(&r->log, m->index < last ? m->index : last, m->log_term);
    resp.index = m->index;
    resp.reject = true;
    resp.reject_hint = hint;
    resp.log_term = log_term_or0(&r->log, hint);
    raft_send(r, &resp);
}

void raft_handle_heartbeat(raft *r, const raft_msg *m)
{
    uint64_t last = log_last_index(&r->log);
    log_commit_to(&r->log, m->commit < last ? m->commit : last);
    raft_msg resp = {.type = RAFT_MSG_HEARTBEAT_RESP, .to = m->from, .context = m->context};
    raft_send(r, &resp);
}

/* Installs snapshot s if it is news to us; true if the log was replaced. */
static bool restore(raft *r, const raft_snapshot *s)
{
    if (s->meta.index <= r->log.committed)
        return false;
    if (log_match_term(&r->log, s->meta.index, s->meta.term)) {
        /* we have the snapshot's last entry: just fast-forward commit */
        log_commit_to(&r->log, s->meta.index);
        return false;
    }
    /* log and configuration change together, or not at all */
    raft_tracker nt;
    int rc = raft_conf_build(r, &s->meta.conf, &nt);
    if (rc) {
        r->err = rc;
        return false;
    }
    rc = log_restore(&r->log, s);
    if (rc) {
        tracker_free(&nt);
        r->err = rc;
        return false;
    }
    raft_conf_swap(r, &nt);
    return true;
}

void raft_handle_snapshot(raft *r, const raft_msg *m)
{
    raft_msg resp = {.type = RAFT_MSG_APP_RESP, .to = m->from};
    if (m->snapshot && restore(r, m->snapshot))
        resp.index = log_last_index(&r->log);
    else
        resp.index = r->log.committed;
    raft_send(r, &resp);
}
