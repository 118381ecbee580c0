/* raft/membership.c - configuration: bootstrap and snapshot conf states,
 * single-server changes applied when committed (thesis 4.1: one change at a
 * time, the next one blocked until the previous is applied), learners and
 * their promotion, removing the leader, and leadership transfer
 * (MsgTimeoutNow, thesis 3.10). */
#include "raft/raft_int.h"

#include "common/mem.h"

#include <string.h>

static bool contains(const uint64_t *v, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

/* Builds a tracker for configuration cs into *nt (free with tracker_free
 * unless swapped in with raft_conf_swap). */
int raft_conf_build(raft *r, const raft_conf_state *cs, raft_tracker *nt)
{
    tracker_init(nt, r->trk.max_inflight);
    if (cs->n_voters + cs->n_learners > RAFT_MAX_NODES)
        return RAFT_ETOOMANY;
    for (size_t i = 0; i < cs->n_learners; i++)
        if (contains(cs->voters, cs->n_voters, cs->learners[i]))
            return RAFT_EINVAL;
    int rc = 0;
    for (size_t i = 0; i < cs->n_voters && !rc; i++)
        rc = tracker_add(nt, cs->voters[i], false, 1);
    for (size_t i = 0; i < cs->n_learners && !rc; i++)
        rc = tracker_add(nt, cs->learners[i], true, 1);
    if (rc)
        tracker_free(nt);
    return rc;
}

/* Installs nt (moved) as the configuration; progress restarts from the
 * current log. */
void raft_conf_swap(raft *r, raft_tracker *nt)
{
    uint64_t next = log_last_index(&r->log) + 1;
    for (size_t i = 0; i < nt->n; i++) {
        pr_reset(&nt->prs[i], next);
        if (nt->prs[i].id == r->id)
            nt->prs[i].match = log_persisted_index(&r->log);
    }
    tracker_free(&r->trk);
    r->trk = *nt;
    nt->n = 0;
}

/* Replaces the tracker by the configuration cs. All or nothing. */
int raft_conf_from_state(raft *r, const raft_conf_state *cs)
{
    raft_tracker nt;
    int rc = raft_conf_build(r, cs, &nt);
    if (rc)
        return rc;
    raft_conf_swap(r, &nt);
    return 0;
}

int raft_apply_conf_change(raft *r, const raft_conf_change *cc, raft_conf_state *cs)
{
    int rc = 0;
    uint64_t id = cc->node_id;
    r->err = 0;
    if (id != RAFT_NONE) {
        raft_progress *pr = tracker_find(&r->trk, id);
        uint64_t next = log_last_index(&r->log) + 1;
        switch (cc->type) {
        case RAFT_CC_ADD_NODE:
            if (pr) {
                pr->learner = false; /* promotion */
            } else {
                rc = tracker_add(&r->trk, id, false, next);
                if (!rc) /* give it an election timeout to show up */
                    tracker_find(&r->trk, id)->recent_active = true;
            }
            break;
        case RAFT_CC_ADD_LEARNER:
            if (pr)
                break; /* a voter is never demoted; a learner stays one */
            rc = tracker_add(&r->trk, id, true, next);
            if (!rc)
                tracker_find(&r->trk, id)->recent_active = true;
            break;
        case RAFT_CC_REMOVE_NODE:
            tracker_remove(&r->trk, id);
            break;
        case RAFT_CC_UPDATE_NODE:
            break;
        default:
            rc = RAFT_EINVAL;
        }
    }
    if (rc)
        return rc;
    if (r->state == RAFT_LEADER) {
        if (r->lead_transferee != RAFT_NONE && !tracker_find(&r->trk, r->lead_transferee))
            raft_abort_transfer(r);
        if (!raft_promotable(r)) {
            /* The leader was removed (or is a learner): it stops leading
             * and the remaining voters elect a new leader after their
             * election timeout. Its removal entry is committed, so every
             * future leader holds it. */
            raft_become_follower(r, r->term, RAFT_NONE);
        } else if (tracker_voters(&r->trk) > 0 && raft_maybe_commit(r)) {
            /* a removal can shrink the quorum below what is acked */
            raft_read_release(r);
            raft_bcast_append(r);
        }
    }
    if (cs)
        tracker_conf_state(&r->trk, cs);
    return r->err;
}

bool raft_has_unapplied_conf_change(const raft *r)
{
    uint64_t lo = r->log.applied + 1, hi = r->log.committed;
    if (lo > hi)
        return false;
    uint64_t first = log_first_index(&r->log);
    if (lo < first)
        lo = first;
    while (lo <= hi) {
        raft_entry_vec v = {0};
        int rc = log_entries(&r->log, lo, hi + 1, 1 << 20, &v);
        if (rc || v.len == 0) {
            raft_entry_vec_free(&v);
            return true; /* be conservative */
        }
        for (size_t i = 0; i < v.len; i++) {
            if (v.v[i].type == RAFT_ENTRY_CONF_CHANGE) {
                raft_entry_vec_free(&v);
                return true;
            }
        }
        lo = v.v[v.len - 1].index + 1;
        raft_entry_vec_free(&v);
    }
    return false;
}

void raft_send_timeout_now(raft *r, uint64_t to)
{
    raft_msg m = {.type = RAFT_MSG_TIMEOUT_NOW, .to = to};
    raft_send(r, &m);
}

void raft_abort_transfer(raft *r)
{
    r->lead_transferee = RAFT_NONE;
}

int raft_leader_transfer(raft *r, const raft_msg *m)
{
    uint64_t transferee = m->from;
    raft_progress *pr = tracker_find(&r->trk, transferee);
    if (!pr || pr->learner)
        return RAFT_EINVAL;
    if (r->lead_transferee != RAFT_NONE) {
        if (r->lead_transferee == transferee)
            return 0; /* already under way */
        raft_abort_transfer(r);
    }
    if (transferee == r->id)
        return 0; /* already leader */
    /* the transfer must finish within one election timeout */
    r->election_elapsed = 0;
    r->lead_transferee = transferee;
    if (pr->match == log_last_index(&r->log))
        raft_send_timeout_now(r, transferee);
    else
        raft_maybe_send_append(r, transferee, true);
    return 0;
}
