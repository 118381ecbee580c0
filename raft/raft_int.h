/* raft/raft_int.h - internals shared by the files of raft/ (never included
 * from outside the module). */
#ifndef METCD_RAFT_INT_H
#define METCD_RAFT_INT_H

#include "raft/raft.h"

/* ---- log.c: the log = stable storage + unstable tail -------------------- */

typedef struct raft_log {
    raft_storage st;
    /* Unstable part: a snapshot and/or entries not yet reported persisted.
     * ents[head, len) hold indexes offset, offset + 1, ... */
    raft_snapshot *snap;
    bool snap_in_progress; /* handed out in a Ready */
    raft_entry *ents;
    size_t head, len, cap;
    uint64_t offset;
    uint64_t in_progress; /* first index not yet handed out */
    uint64_t committed;
    uint64_t applying; /* last index handed out for apply */
    uint64_t applied;
} raft_log;

int log_init(raft_log *l, raft_storage st);
void log_free(raft_log *l);
uint64_t log_first_index(const raft_log *l);
uint64_t log_last_index(const raft_log *l);
/* Last index present in stable storage (entries below offset). */
uint64_t log_persisted_index(const raft_log *l);
int log_term(const raft_log *l, uint64_t i, uint64_t *t);
uint64_t log_term_or0(const raft_log *l, uint64_t i);
uint64_t log_last_term(const raft_log *l);
bool log_match_term(const raft_log *l, uint64_t i, uint64_t t);
bool log_is_up_to_date(const raft_log *l, uint64_t lasti, uint64_t term);
/* Appends to the unstable tail, truncating a conflicting suffix; entries
 * get new references. Returns the new last index in *last. */
int log_append(raft_log *l, const raft_entry *ents, size_t n);
/* Follower-side append (Figure 2 AppendEntries receiver rules 2-5). *ok is
 * false when (index, log_term) does not match. */
int log_maybe_append(raft_log *l, uint64_t index, uint64_t log_term, uint64_t committed,
                     const raft_entry *ents, size_t n, bool *ok, uint64_t *lastnew);
uint64_t log_find_conflict(const raft_log *l, const raft_entry *ents, size_t n);
/* Largest index <= index whose term is <= term (fast backtracking). */
uint64_t log_find_conflict_by_term(const raft_log *l, uint64_t index, uint64_t term);
/* Appends entries [lo, hi) limited to max_bytes (at least one) to out. */
int log_entries(const raft_log *l, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                raft_entry_vec *out);
void log_commit_to(raft_log *l, uint64_t tocommit);
bool log_maybe_commit(raft_log *l, uint64_t max_index, uint64_t term);
void log_stable_to(raft_log *l, uint64_t i, uint64_t t);
/* Replaces the log by snapshot s (reference taken on s's data). */
int log_restore(raft_log *l, const raft_snapshot *s);
bool log_has_unsent(const raft_log *l);
bool log_has_committed_to_apply(const raft_log *l);
/* First index / last index bound of committed entries ready to apply. */
void log_apply_window(const raft_log *l, uint64_t *lo, uint64_t *hi);

/* ---- progress.c: per-peer replication state and quorums ---------------- */

typedef struct raft_inflights {
    uint64_t *buf;
    size_t start, count, size;
} raft_inflights;

typedef struct raft_progress {
    uint64_t id;
    uint64_t match, next;
    raft_progress_state state;
    uint64_t pending_snapshot;
    bool recent_active;
    bool probe_sent;
    bool learner;
    int8_t vote;       /* 0 unknown, 1 granted, -1 rejected */
    uint64_t read_ack; /* highest read round this peer echoed */
    raft_inflights ins;
} raft_progress;

typedef struct raft_tracker {
    raft_progress prs[RAFT_MAX_NODES];
    size_t n;
    size_t max_inflight;
} raft_tracker;

typedef enum { VOTE_PENDING, VOTE_WON, VOTE_LOST } raft_vote_result;

void tracker_init(raft_tracker *t, size_t max_inflight);
void tracker_free(raft_tracker *t);
raft_progress *tracker_find(raft_tracker *t, uint64_t id);
const raft_progress *tracker_find_c(const raft_tracker *t, uint64_t id);
int tracker_add(raft_tracker *t, uint64_t id, bool learner, uint64_t next);
void tracker_remove(raft_tracker *t, uint64_t id);
size_t tracker_voters(const raft_tracker *t);
void tracker_conf_state(const raft_tracker *t, raft_conf_state *cs);
/* Largest index acknowledged by a quorum of voters (0 without voters). */
uint64_t tracker_committed(const raft_tracker *t);
/* Largest read round echoed by a quorum of voters. */
uint64_t tracker_read_quorum(const raft_tracker *t);
bool tracker_quorum_active(const raft_tracker *t, uint64_t self);
void tracker_reset_votes(raft_tracker *t);
void tracker_record_vote(raft_tracker *t, uint64_t id, bool granted);
raft_vote_result tracker_tally(const raft_tracker *t, size_t *granted, size_t *rejected);

void pr_reset(raft_progress *p, uint64_t next);
void pr_become_probe(raft_progress *p);
void pr_become_replicate(raft_progress *p);
void pr_become_snapshot(raft_progress *p, uint64_t snapi);
bool pr_maybe_update(raft_progress *p, uint64_t n);
void pr_optimistic_update(raft_progress *p, uint64_t n);
bool pr_maybe_decr_to(raft_progress *p, uint64_t rejected, uint64_t match_hint);
bool pr_is_paused(const raft_progress *p);

void ins_add(raft_inflights *in, uint64_t index);
void ins_free_le(raft_inflights *in, uint64_t index);
void ins_free_first(raft_inflights *in);
bool ins_full(const raft_inflights *in);
void ins_reset(raft_inflights *in);

/* ---- read_index.c ------------------------------------------------------- */

typedef struct raft_read_req {
    uint64_t ctx;
    uint64_t from;
    uint64_t index; /* 0: fixed when the term's first entry commits */
    uint64_t round;
} raft_read_req;

typedef struct raft_read_only {
    raft_read_req *q;
    size_t head, len, cap, max;
    uint64_t round_issued;
    uint64_t round_confirmed;
} raft_read_only;

/* ---- the node ------------------------------------------------------------ */

typedef struct raft_msg_vec {
    raft_msg *v;
    size_t len, cap;
} raft_msg_vec;

struct raft {
    uint64_t id;
    uint64_t term;
    uint64_t vote;
    uint64_t lead;
    uint64_t lead_transferee;
    raft_state state;
    raft_log log;
    raft_tracker trk;
    raft_read_only ro;

    uint64_t pending_conf_index;
    uint64_t uncommitted_size;
    uint64_t max_uncommitted_size;
    uint64_t max_msg_size;
    uint64_t max_committed_size;

    int election_elapsed;
    int heartbeat_elapsed;
    int election_timeout;
    int heartbeat_timeout;
    int randomized_election_timeout;
    bool check_quorum;
    bool pre_vote;

    uint64_t (*rand)(void *, uint64_t);
    void *rand_data;
    uint64_t rand_state;

    raft_msg_vec msgs;
    raft_msg_vec msgs_after;
    raft_read_state *read_states;
    size_t n_read_states, cap_read_states;

    /* arrays handed back by raft_advance, reused by the next Ready */
    raft_entry *spare_ents, *spare_committed;
    size_t spare_ents_cap, spare_committed_cap;

    raft_soft_state prev_soft;
    raft_hard_state prev_hard;
    int err; /* sticky ENOMEM while building messages */
    /* proposals since the last Ready: appends go out in one batch when
     * the Ready is built */
    bool pending_bcast;
};

/* buf.c */
int msg_vec_push(raft_msg_vec *mv, raft_msg *m); /* moves m */
void msg_vec_free(raft_msg_vec *mv);

/* raft.c */
void raft_send(raft *r, raft_msg *m); /* moves m into the right queue */
bool raft_promotable(const raft *r);
uint64_t raft_rand(raft *r, uint64_t n);
int raft_push_read_state(raft *r, uint64_t index, uint64_t ctx);

/* election.c */
void raft_become_follower(raft *r, uint64_t term, uint64_t lead);
void raft_become_candidate(raft *r);
void raft_become_pre_candidate(raft *r);
int raft_become_leader(raft *r);
void raft_reset(raft *r, uint64_t term);
void raft_hup(raft *r, bool transfer);
void raft_tick_election(raft *r);
void raft_tick_heartbeat(raft *r);
int raft_step_candidate(raft *r, const raft_msg *m);
void raft_handle_vote_request(raft *r, const raft_msg *m);
bool raft_past_election_timeout(const raft *r);

/* replication.c */
bool raft_maybe_send_append(raft *r, uint64_t to, bool send_if_empty);
void raft_bcast_append(raft *r);
void raft_send_heartbeat(raft *r, uint64_t to, uint64_t ctx);
void raft_bcast_heartbeat(raft *r);
bool raft_maybe_commit(raft *r);
int raft_append_entries_leader(raft *r, raft_entry *ents, size_t n);
int raft_step_leader(raft *r, const raft_msg *m);
int raft_step_follower(raft *r, const raft_msg *m);
void raft_handle_append(raft *r, const raft_msg *m);
void raft_handle_heartbeat(raft *r, const raft_msg *m);
void raft_handle_snapshot(raft *r, const raft_msg *m);
bool raft_committed_in_term(const raft *r);

/* read_index.c */
void ro_init(raft_read_only *ro, size_t max);
void ro_free(raft_read_only *ro);
void ro_reset(raft_read_only *ro);
int raft_leader_read_index(raft *r, const raft_msg *m);
void raft_read_heartbeat_ack(raft *r, raft_progress *pr, uint64_t round);
void raft_read_release(raft *r);

/* membership.c */
int raft_conf_build(raft *r, const raft_conf_state *cs, raft_tracker *nt);
void raft_conf_swap(raft *r, raft_tracker *nt);
int raft_conf_from_state(raft *r, const raft_conf_state *cs);
int raft_leader_transfer(raft *r, const raft_msg *m);
void raft_send_timeout_now(raft *r, uint64_t to);
void raft_abort_transfer(raft *r);
bool raft_has_unapplied_conf_change(const raft *r);

#endif
