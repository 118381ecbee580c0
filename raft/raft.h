/* raft/raft.h - Raft consensus as a pure state machine.
 *
 * The one public header of raft/. The core does no I/O, reads no clock and
 * starts no thread. The caller (the member's raft driver, the simulator, the
 * benchmark) feeds it events:
 *
 *   raft_tick()              one logical clock tick
 *   raft_step()              a message from a peer
 *   raft_propose()...        local requests
 *   raft_persisted()         "entries up to (index, term) are durable"
 *   raft_applied()           "the state machine applied up to index"
 *
 * and takes back work through raft_ready():
 *
 *   1. rd.msgs               send now, in any order, may be lost.
 *   2. rd.snapshot, rd.entries, rd.hard_state
 *                            write to stable storage (WAL) in this order
 *                            (the hard state last: its commit index must
 *                            never be durable without the entries it
 *                            covers, even in a torn tail) and fsync; then
 *                            add them to the raft_storage
 *                            (raft_mem_storage_set_hard_state /
 *                            apply_snapshot / append), call
 *                            raft_persisted(index, term) of the last entry
 *                            (or of the snapshot when there is no entry) and
 *                            send rd.msgs_after_persist. Readies are
 *                            persisted in the order they were returned; a
 *                            Ready with only msgs_after_persist still waits
 *                            for the Readies before it.
 *   3. rd.snapshot           once durable, install it in the state machine
 *                            and call raft_applied(snapshot index).
 *   4. rd.committed          apply in order (after the snapshot, if any);
 *                            call raft_applied(index) as you go. Conf-change
 *                            entries are applied with
 *                            raft_apply_conf_change().
 *   5. rd.read_states        reads whose index is confirmed (ReadIndex):
 *                            serve each once applied >= its index.
 *   6. raft_advance(&rd)     releases what the caller did not take.
 *
 * The leader replicates entries before its own fsync but counts itself
 * toward the commit quorum only for what raft_persisted() reported (Raft
 * thesis 10.2.1). Votes, vote requests and append acknowledgements are only
 * ever put in rd.msgs_after_persist, so they leave after the hard state and
 * entries they vouch for are durable (thesis 3.8). Committed entries are
 * handed out only once they are persisted locally.
 *
 * Membership: config.voters/learners is the configuration "at index 0"
 * (bootstrap). Every member, including one that joins later with an empty
 * log, passes the same bootstrap membership, so that replaying the log from
 * index 1 yields the right configuration; a snapshot replaces it. (A
 * member joining an existing cluster may instead pass the membership it
 * learned from the cluster: node ids are never reused, so replaying the
 * adds and removes on top of it converges to the same configuration, and
 * the joiner is not a voter until its own addition is applied.) On
 * restart the configuration comes from the storage's snapshot, and conf
 * changes after it are applied again as their entries are re-delivered.
 *
 * Threading: none. A raft object is touched by one thread at a time.
 * Errors: functions return 0 or a negative raft_err; raft_strerror() names it.
 */
#ifndef METCD_RAFT_RAFT_H
#define METCD_RAFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAFT_NONE ((uint64_t)0)
/* Upper bound of voters + learners in one configuration. */
#define RAFT_MAX_NODES 32

/* Errors: the raft module owns the range [-3099, -3000]. */
typedef enum raft_err {
    RAFT_OK = 0,
    RAFT_ENOMEM = -3000,         /* allocation failed: the request or message is
                                  * lost (as on a network), state stays valid */
    RAFT_ENOLEADER = -3001,      /* no known leader ("etcdserver: no leader") */
    RAFT_EDROPPED = -3002,       /* proposal dropped: leadership transfer in
                                  * progress, conf change pending, too much
                                  * uncommitted data, or this node is a learner */
    RAFT_ECOMPACTED = -3003,     /* storage: index is below the first index */
    RAFT_EUNAVAILABLE = -3004,   /* storage: index is above the last index */
    RAFT_ESNAPOUTOFDATE = -3005, /* storage: snapshot older than current */
    RAFT_ESNAPTEMP = -3006,      /* storage: snapshot not ready yet, retry */
    RAFT_EINVAL = -3007,         /* invalid argument or configuration */
    RAFT_EPEER = -3008,          /* message from/to a node we do not know */
    RAFT_EDECODE = -3009,        /* malformed protobuf */
    RAFT_ESTORAGE = -3010,       /* storage returned an unexpected error */
    RAFT_ETOOMANY = -3011,       /* more than RAFT_MAX_NODES / queue full */
} raft_err;

/* Returns a static string naming err (any int is accepted). */
const char *raft_strerror(int err);

/* ---- Buffers ---------------------------------------------------------- */

/* Immutable, reference-counted byte string: entry payloads, snapshot data.
 * Messages, logs, storages and readies share one copy by reference. Not
 * thread-safe: hand a copy (raft_buf_new) to another thread. */
typedef struct raft_buf {
    uint32_t refs;
    uint32_t len;
    uint8_t data[];
} raft_buf;

/* Returns a buffer holding a copy of len bytes of p, with one reference
 * (caller releases with raft_buf_unref), or NULL on allocation failure. */
raft_buf *raft_buf_new(const void *p, size_t len);
/* Adds a reference; returns b. NULL-safe. */
raft_buf *raft_buf_ref(raft_buf *b);
/* Drops a reference, freeing at zero. NULL-safe. */
void raft_buf_unref(raft_buf *b);

/* ---- Log entries, configuration, snapshots ------------------------------ */

typedef enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 0,
    RAFT_ENTRY_CONF_CHANGE = 1,
} raft_entry_type;

/* A log entry. `data` is a counted reference (NULL: empty entry); whoever
 * holds a raft_entry holds that reference. */
typedef struct raft_entry {
    uint64_t term;
    uint64_t index;
    raft_entry_type type;
    raft_buf *data;
} raft_entry;

/* Growable array of entries; each element holds its data reference. */
typedef struct raft_entry_vec {
    raft_entry *v;
    size_t len, cap;
} raft_entry_vec;

/* Appends e, taking a new reference on e->data. */
int raft_entry_vec_push(raft_entry_vec *vec, const raft_entry *e);
/* Drops every reference and the array. Idempotent. */
void raft_entry_vec_free(raft_entry_vec *vec);
/* Drops references of entries [0, n) of v, then frees v. NULL-safe. */
void raft_entries_free(raft_entry *v, size_t n);

/* Membership: inline arrays, copy by assignment. */
typedef struct raft_conf_state {
    uint64_t voters[RAFT_MAX_NODES];
    size_t n_voters;
    uint64_t learners[RAFT_MAX_NODES];
    size_t n_learners;
} raft_conf_state;

typedef struct raft_hard_state {
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
} raft_hard_state;

typedef struct raft_snapshot_meta {
    uint64_t index;
    uint64_t term;
    raft_conf_state conf;
} raft_snapshot_meta;

/* A snapshot: metadata plus opaque application data (may be NULL, e.g.
 * when the member streams its database beside the message). */
typedef struct raft_snapshot {
    raft_snapshot_meta meta;
    raft_buf *data;
} raft_snapshot;

/* Returns a heap copy sharing data by reference, or NULL (ENOMEM). Caller
 * frees with raft_snapshot_free. */
raft_snapshot *raft_snapshot_dup(const raft_snapshot *s);
void raft_snapshot_free(raft_snapshot *s);

typedef enum raft_conf_change_type {
    RAFT_CC_ADD_NODE = 0, /* add a voter, or promote a learner */
    RAFT_CC_REMOVE_NODE = 1,
    RAFT_CC_UPDATE_NODE = 2, /* no effect on raft; context for the member */
    RAFT_CC_ADD_LEARNER = 3,
} raft_conf_change_type;

typedef struct raft_conf_change {
    uint64_t id;
    raft_conf_change_type type;
    uint64_t node_id;
    raft_buf *context; /* counted reference or NULL */
} raft_conf_change;

/* ---- Messages ---------------------------------------------------------- */

typedef enum raft_msg_type {
    RAFT_MSG_HUP = 0,  /* local: start an election */
    RAFT_MSG_BEAT = 1, /* local: leader sends heartbeats */
    RAFT_MSG_PROP = 2, /* proposal (forwarded to the leader) */
    RAFT_MSG_APP = 3,
    RAFT_MSG_APP_RESP = 4,
    RAFT_MSG_VOTE = 5,
    RAFT_MSG_VOTE_RESP = 6,
    RAFT_MSG_SNAP = 7,
    RAFT_MSG_HEARTBEAT = 8,
    RAFT_MSG_HEARTBEAT_RESP = 9,
    RAFT_MSG_UNREACHABLE = 10,  /* local: transport could not reach `from` */
    RAFT_MSG_SNAP_STATUS = 11,  /* local: snapshot to `from` done/failed */
    RAFT_MSG_CHECK_QUORUM = 12, /* local */
    RAFT_MSG_TRANSFER_LEADER = 13,
    RAFT_MSG_TIMEOUT_NOW = 14,
    RAFT_MSG_READ_INDEX = 15,
    RAFT_MSG_READ_INDEX_RESP = 16,
    RAFT_MSG_PRE_VOTE = 17,
    RAFT_MSG_PRE_VOTE_RESP = 18,
    RAFT_MSG_NTYPES
} raft_msg_type;

/* A message. It owns `entries` (an array of n_entries, each holding its
 * data reference) and `snapshot`; free with raft_msg_free. Moving the
 * struct by assignment moves ownership. */
typedef struct raft_msg {
    raft_msg_type type;
    uint64_t to;
    uint64_t from;
    uint64_t term;
    uint64_t log_term;
    uint64_t index;
    uint64_t commit;
    bool reject;
    bool transfer; /* vote request triggered by MsgTimeoutNow */
    uint64_t reject_hint;
    uint64_t context; /* read-index request id / read round */
    raft_entry *entries;
    size_t n_entries;
    raft_snapshot *snapshot;
} raft_msg;

/* Releases what m owns and zeroes it. Idempotent. */
void raft_msg_free(raft_msg *m);
/* Deep enough copy: shares entry data and snapshot data by reference. */
int raft_msg_copy(raft_msg *dst, const raft_msg *src);
const char *raft_msg_type_name(raft_msg_type t);

/* ---- Wire codec (raftpb) ------------------------------------------------ */

/* Encodes m as a raftpb.Message into a new buffer *out (*out_len bytes;
 * caller frees with metcd_free). */
int raft_msg_encode(const raft_msg *m, uint8_t **out, size_t *out_len);
/* Decodes a raftpb.Message into *m (caller frees with raft_msg_free).
 * Returns RAFT_EDECODE on malformed input; *m is then zeroed. */
int raft_msg_decode(const uint8_t *buf, size_t len, raft_msg *m);
/* The same for the WAL's records and conf-change entry payloads. */
int raft_entry_encode(const raft_entry *e, uint8_t **out, size_t *out_len);
int raft_entry_decode(const uint8_t *buf, size_t len, raft_entry *e);
int raft_hard_state_encode(const raft_hard_state *hs, uint8_t **out, size_t *out_len);
int raft_hard_state_decode(const uint8_t *buf, size_t len, raft_hard_state *hs);
int raft_snapshot_meta_encode(const raft_snapshot_meta *m, uint8_t **out, size_t *out_len);
int raft_snapshot_meta_decode(const uint8_t *buf, size_t len, raft_snapshot_meta *m);
int raft_conf_change_encode(const raft_conf_change *cc, uint8_t **out, size_t *out_len);
/* cc->context gets a new reference (caller unrefs). */
int raft_conf_change_decode(const uint8_t *buf, size_t len, raft_conf_change *cc);

/* ---- Stable storage ----------------------------------------------------- */

/* Read side of the stable log. raft calls these on its own thread; an
 * implementation reports only what the caller has made durable. Log indexes
 * live in [first_index, last_index]; term() also answers first_index - 1
 * (the snapshot's index). Errors: RAFT_ECOMPACTED, RAFT_EUNAVAILABLE,
 * RAFT_ESNAPTEMP, RAFT_ENOMEM, anything else is treated as fatal. */
typedef struct raft_storage_ops {
    /* Fills the hard state and the configuration of the latest snapshot. */
    int (*initial_state)(void *data, raft_hard_state *hs, raft_conf_state *cs);
    /* Appends entries [lo, hi) to out, each with a new data reference, up
     * to max_bytes of payload (at least one entry is returned). */
    int (*entries)(void *data, uint64_t lo, uint64_t hi, uint64_t max_bytes, raft_entry_vec *out);
    int (*term)(void *data, uint64_t index, uint64_t *term);
    int (*first_index)(void *data, uint64_t *index);
    int (*last_index)(void *data, uint64_t *index);
    /* Returns the latest snapshot in *out (caller frees with
     * raft_snapshot_free). */
    int (*snapshot)(void *data, raft_snapshot **out);
} raft_storage_ops;

typedef struct raft_storage {
    const raft_storage_ops *ops;
    void *data;
} raft_storage;

/* In-memory storage: the member fills it from the WAL on restart and keeps
 * appending what it has fsynced. */
typedef struct raft_mem_storage raft_mem_storage;

/* Returns a new empty storage (a dummy entry at index 0, term 0), or NULL.
 * Free with raft_mem_storage_free (NULL-safe). */
raft_mem_storage *raft_mem_storage_new(void);
void raft_mem_storage_free(raft_mem_storage *ms);
/* The vtable view of ms (borrowed; valid while ms lives). */
raft_storage raft_mem_storage_view(raft_mem_storage *ms);
int raft_mem_storage_set_hard_state(raft_mem_storage *ms, const raft_hard_state *hs);
raft_hard_state raft_mem_storage_hard_state(const raft_mem_storage *ms);
/* Appends entries (new references taken), truncating any conflicting
 * suffix. Entries must be contiguous and must not leave a gap. Entries at
 * or below the snapshot index are skipped. */
int raft_mem_storage_append(raft_mem_storage *ms, const raft_entry *ents, size_t n);
/* Replaces everything with snapshot s (copied by reference). Returns
 * RAFT_ESNAPOUTOFDATE if s is older than the current snapshot. */
int raft_mem_storage_apply_snapshot(raft_mem_storage *ms, const raft_snapshot *s);
/* Makes a snapshot at index i (<= last index) with conf cs and data (new
 * reference taken; may be NULL). RAFT_ESNAPOUTOFDATE if i <= current. */
int raft_mem_storage_create_snapshot(raft_mem_storage *ms, uint64_t i, const raft_conf_state *cs,
                                     raft_buf *data);
/* Discards entries before index i (i becomes the new dummy/snapshot index).
 * RAFT_ECOMPACTED if already compacted; RAFT_EUNAVAILABLE if i > last. */
int raft_mem_storage_compact(raft_mem_storage *ms, uint64_t i);
uint64_t raft_mem_storage_first_index(const raft_mem_storage *ms);
uint64_t raft_mem_storage_last_index(const raft_mem_storage *ms);

/* ---- The state machine -------------------------------------------------- */

typedef enum raft_state {
    RAFT_FOLLOWER = 0,
    RAFT_CANDIDATE = 1,
    RAFT_LEADER = 2,
    RAFT_PRE_CANDIDATE = 3,
} raft_state;

const char *raft_state_name(raft_state s);

typedef struct raft_config {
    uint64_t id; /* this node, != RAFT_NONE */
    /* Bootstrap membership (borrowed during raft_new), used only when
     * storage has no configuration (no snapshot yet). Conf changes since
     * are replayed through raft_apply_conf_change as their entries come
     * out of rd.committed. See "Membership" above. */
    const uint64_t *voters;
    size_t n_voters;
    const uint64_t *learners;
    size_t n_learners;
    int election_tick;                     /* follower timeout, in ticks (> heartbeat) */
    int heartbeat_tick;                    /* leader heartbeat interval, in ticks */
    bool check_quorum;                     /* leader steps down without a quorum */
    bool pre_vote;                         /* pre-vote before disrupting a term */
    uint64_t max_size_per_msg;             /* bytes of entries per MsgApp (0: 1 entry) */
    size_t max_inflight_msgs;              /* MsgApp window per follower (> 0) */
    uint64_t max_uncommitted_size;         /* bytes; proposals beyond are dropped
                                            * with RAFT_EDROPPED (0: 256 MiB) */
    size_t max_pending_reads;              /* ReadIndex queue bound (0: 4096) */
    uint64_t max_committed_size_per_ready; /* payload bytes of rd.committed
                                            * (at least one entry; 0: 64 MiB) */
    /* Restart point of rd.committed: pass the storage's snapshot index
     * (or 0), not the state machine's consistent index. Entries after it
     * are handed out again; the member skips those its state machine
     * already holds (still reporting them with raft_applied), but calls
     * raft_apply_conf_change for every
     * conf-change entry, which is how raft relearns configuration changes
     * made after the snapshot (etcd does the same). */
    uint64_t applied;
    raft_storage storage; /* borrowed for the life of the raft */
    /* Random source for election timeouts: returns a value in [0, n).
     * NULL: an internal xorshift seeded from id. */
    uint64_t (*rand)(void *rand_data, uint64_t n);
    void *rand_data;
} raft_config;

typedef struct raft raft;

/* Creates a raft node from cfg and cfg->storage (hard state, conf state,
 * log). Returns 0 and *out (free with raft_free), or RAFT_EINVAL for a bad
 * config, RAFT_ENOMEM, or a storage error. */
int raft_new(const raft_config *cfg, raft **out);
void raft_free(raft *r); /* NULL-safe */

/* Advances the logical clock by one tick (elections, heartbeats, quorum
 * checks, transfer timeouts). */
int raft_tick(raft *r);
/* Feeds one message from the network (the transport drops messages whose
 * `to` is not us, and local types arriving from peers). Local types (HUP,
 * BEAT, UNREACHABLE, SNAP_STATUS, CHECK_QUORUM) carry term 0. The message
 * is borrowed; entry data are shared by new references. Malformed input
 * (a term-0 peer message, one claiming to come from us, non-contiguous
 * entries, a log contradicting our commit index) returns RAFT_EINVAL and
 * changes nothing; it never asserts. */
int raft_step(raft *r, const raft_msg *m);
/* Starts an election now (MsgHup). */
int raft_campaign(raft *r);
/* Proposes a normal entry with a copy of data. Returns RAFT_ENOLEADER when
 * no leader is known, RAFT_EDROPPED if the leader refuses. A forwarded
 * proposal may still be lost: clients time out and retry. */
int raft_propose(raft *r, const void *data, size_t len);
/* The same with a counted buffer (a new reference is taken). */
int raft_propose_buf(raft *r, raft_buf *data);
/* Proposes a conf change (encoded into an EntryConfChange). One change at a
 * time: the leader drops it (RAFT_EDROPPED) while an earlier one is not
 * applied. */
int raft_propose_conf_change(raft *r, const raft_conf_change *cc);
/* Applies a committed conf change (call when its entry comes out of
 * rd.committed, in order). Fills *cs (may be NULL) with the new
 * configuration, to store with the applied state. */
int raft_apply_conf_change(raft *r, const raft_conf_change *cc, raft_conf_state *cs);
/* Requests a linearizable read tagged ctx. When the leadership is confirmed
 * by a heartbeat quorum, a raft_read_state {index, ctx} comes out of a
 * Ready; the read is served once applied >= index. Many requests share one
 * heartbeat round. RAFT_ENOLEADER without a leader, RAFT_ETOOMANY when the
 * queue is full. */
int raft_read_index(raft *r, uint64_t ctx);
/* Asks the leadership to move to transferee (MsgTransferLeader). The
 * transfer aborts after an election timeout. */
int raft_transfer_leader(raft *r, uint64_t transferee);
/* Transport feedback. */
int raft_report_unreachable(raft *r, uint64_t id);
int raft_report_snapshot(raft *r, uint64_t id, bool failed);

/* Durability feedback: entries up to index, whose term is `term`, and the
 * hard state and snapshot of every Ready containing them, are durable and
 * present in the storage. Stale reports (index/term no longer in the log)
 * are ignored. */
int raft_persisted(raft *r, uint64_t index, uint64_t term);
/* The state machine applied everything up to index (<= the last committed
 * entry handed out). */
int raft_applied(raft *r, uint64_t index);

typedef struct raft_read_state {
    uint64_t index;
    uint64_t ctx;
} raft_read_state;

typedef struct raft_soft_state {
    uint64_t lead;
    raft_state state;
} raft_soft_state;

/* Work for the caller (a plain struct tag: raft_ready() is the function).
 * Everything in it is owned by the Ready until raft_advance, which hands
 * the arrays back to raft for reuse. The caller may move a message out of
 * msgs[] / msgs_after_persist[] by copying the struct and zeroing the slot
 * (memset 0), may take references (raft_buf_ref) on payloads, and may take
 * a whole array (set the pointer to NULL; free it with raft_entries_free /
 * raft_msg_free + metcd_free). Arrays may be non-NULL with a count of 0. */
struct raft_ready {
    bool has_soft_state;
    raft_soft_state soft_state;
    bool has_hard_state;
    raft_hard_state hard_state;
    raft_snapshot *snapshot; /* to persist and install, or NULL */
    raft_entry *entries;     /* to persist */
    size_t n_entries;
    raft_entry *committed; /* to apply, in order */
    size_t n_committed;
    raft_msg *msgs; /* to send now */
    size_t n_msgs;
    raft_msg *msgs_after_persist; /* to send once this Ready is durable */
    size_t n_msgs_after_persist;
    raft_read_state *read_states;
    size_t n_read_states;
    bool must_sync; /* entries or term/vote changed */
    /* private: array capacities, so raft_advance can recycle them */
    size_t cap_msgs_, cap_after_, cap_entries_, cap_committed_;
};

bool raft_has_ready(const raft *r);
/* Moves pending work into *rd (zeroed first). Returns 0 or RAFT_ENOMEM (rd
 * is then empty and the work is still pending). */
int raft_ready(raft *r, struct raft_ready *rd);
/* Releases everything left in rd. Idempotent. Does not imply persistence
 * or application: report those with raft_persisted / raft_applied. */
void raft_advance(raft *r, struct raft_ready *rd);

typedef enum raft_progress_state {
    RAFT_PROGRESS_PROBE = 0,
    RAFT_PROGRESS_REPLICATE = 1,
    RAFT_PROGRESS_SNAPSHOT = 2,
} raft_progress_state;

typedef struct raft_peer_status {
    uint64_t id;
    uint64_t match;
    uint64_t next;
    raft_progress_state state;
    bool learner;
    bool recent_active;
    size_t inflight;
} raft_peer_status;

typedef struct raft_status {
    uint64_t id;
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
    uint64_t applied;
    uint64_t lead;
    raft_state state;
    uint64_t last_index;
    uint64_t first_index;
    uint64_t persisted; /* last locally durable index */
    uint64_t lead_transferee;
    raft_conf_state conf;
    raft_peer_status peers[RAFT_MAX_NODES]; /* leader only */
    size_t n_peers;
} raft_status;

void raft_status_get(const raft *r, raft_status *st);
const char *raft_progress_state_name(raft_progress_state s);

#endif
