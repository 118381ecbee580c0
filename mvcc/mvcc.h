/* mvcc/mvcc.h - revisions, the B-tree key index and the KV store.
 *
 * The store keeps every revision of every key in the backend's "key" bucket
 * (17-byte revision -> mvccpb.KeyValue, tombstones marked with a trailing
 * 't', as etcd lays out its bolt bucket) and an in-memory B-tree of key
 * indexes (generations of revisions per key) to answer reads at any
 * revision above the compaction point. Semantics follow etcd 3.4's mvcc
 * package and its apply layer (etcdserver/apply.go): sorting, filters,
 * `more`/`count`, txn compares and branches, ignore_value/ignore_lease,
 * compaction, HashKV.
 *
 * Threading: one store belongs to one thread (the member's loop).
 *
 * Results: every call that returns data fills an mvcc_result whose memory is
 * one arena owned by the result; everything it points to (keys, values,
 * nested responses) lives until mvcc_result_free(). A result may be reused
 * after mvcc_result_free(). On error the result is left empty.
 */
#ifndef METCD_MVCC_MVCC_H
#define METCD_MVCC_MVCC_H

#include "backend/backend.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Error codes: reserved range -1100 .. -1149. mvcc_strerror() gives etcd's
 * message for each (the text etcdctl users see). */
enum mvcc_error {
    MVCC_OK = 0,
    MVCC_ENOMEM = -1100,        /* out of memory */
    MVCC_EBACKEND = -1101,      /* the backend failed; see mvcc_errmsg() */
    MVCC_ECOMPACTED = -1102,    /* mvcc: required revision has been compacted */
    MVCC_EFUTURE_REV = -1103,   /* mvcc: required revision is a future revision */
    MVCC_EEMPTY_KEY = -1104,    /* etcdserver: key is not provided */
    MVCC_EKEY_NOT_FOUND = -1105, /* etcdserver: key not found (ignore_value/lease) */
    MVCC_EVALUE_PROVIDED = -1106, /* etcdserver: value is provided */
    MVCC_ELEASE_PROVIDED = -1107, /* etcdserver: lease is provided */
    MVCC_ETOO_MANY_OPS = -1108, /* etcdserver: too many operations in txn request */
    MVCC_EDUPLICATE_KEY = -1109, /* etcdserver: duplicate key given in txn request */
    MVCC_EINVALID_SORT = -1110, /* etcdserver: invalid sort option */
    MVCC_EINVALID = -1111,      /* malformed request (unknown enum, missing op) */
    MVCC_ELEASE_NOT_FOUND = -1112, /* etcdserver: requested lease not found */
    MVCC_ENOSPACE = -1113,      /* mvcc: database space exceeded */
    MVCC_ECORRUPT = -1114,      /* stored data cannot be decoded */
    MVCC_ELEASE_EXISTS = -1115, /* etcdserver: lease already exists */
    MVCC_ELEASE_TTL_TOO_LARGE = -1116, /* etcdserver: too large lease TTL */
};

const char *mvcc_strerror(int code);

/* A revision: `main` counts write transactions, `sub` the changes inside
 * one. Ordered by (main, sub). */
typedef struct mvcc_rev {
    int64_t main;
    int64_t sub;
} mvcc_rev;

#define MVCC_REV_BYTES 17 /* 8 bytes main big-endian, '_', 8 bytes sub */
#define MVCC_TOMBSTONE_BYTES 18

/* Writes the on-disk key of rev into out (17 bytes, or 18 with the 't'
 * mark when tombstone is nonzero). Returns the length written. */
size_t mvcc_rev_encode(mvcc_rev rev, int tombstone, uint8_t out[MVCC_TOMBSTONE_BYTES]);
/* Parses an on-disk key; returns 0 and sets *tombstone, or MVCC_ECORRUPT. */
int mvcc_rev_decode(const void *buf, size_t len, mvcc_rev *rev, int *tombstone);
int mvcc_rev_cmp(mvcc_rev a, mvcc_rev b);

/* A key-value pair as stored (mvccpb.KeyValue), every pointer into the
 * owning result's arena. raw/raw_len is the stored encoding of exactly
 * these fields (for zero-copy re-emission), or NULL when a field was
 * changed (keys_only). */
typedef struct mvcc_kv {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
    const uint8_t *raw;
    size_t raw_len;
} mvcc_kv;

/* ---- requests (mirror etcdserverpb's messages, by field) ------------------- */

enum mvcc_sort_order { MVCC_SORT_NONE = 0, MVCC_SORT_ASCEND = 1, MVCC_SORT_DESCEND = 2 };
enum mvcc_sort_target {
    MVCC_SORT_KEY = 0,
    MVCC_SORT_VERSION = 1,
    MVCC_SORT_CREATE = 2,
    MVCC_SORT_MOD = 3,
    MVCC_SORT_VALUE = 4
};

/* Range end conventions (etcd): end_len == 0 -> the single key `key`;
 * end == "\0" (one zero byte) -> every key >= key; otherwise [key, end).
 * An end <= key selects nothing (as etcd: an empty result, no error). */
typedef struct mvcc_range_req {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *range_end;
    size_t range_end_len;
    int64_t limit;    /* <= 0: no limit */
    int64_t revision; /* <= 0: the current revision */
    int sort_order;   /* enum mvcc_sort_order */
    int sort_target;  /* enum mvcc_sort_target */
    int keys_only;
    int count_only;
    int64_t min_mod_revision, max_mod_revision;
    int64_t min_create_revision, max_create_revision;
} mvcc_range_req;

typedef struct mvcc_put_req {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    int64_t lease;
    int prev_kv;
    int ignore_value;
    int ignore_lease;
} mvcc_put_req;

typedef struct mvcc_delete_req {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *range_end;
    size_t range_end_len;
    int prev_kv;
} mvcc_delete_req;

enum mvcc_cmp_result { MVCC_CMP_EQUAL = 0, MVCC_CMP_GREATER = 1, MVCC_CMP_LESS = 2, MVCC_CMP_NOT_EQUAL = 3 };
enum mvcc_cmp_target {
    MVCC_CMP_VERSION = 0,
    MVCC_CMP_CREATE = 1,
    MVCC_CMP_MOD = 2,
    MVCC_CMP_VALUE = 3,
    MVCC_CMP_LEASE = 4
};

/* A txn compare. `number` holds the version / create / mod revision / lease
 * to compare against (the caller puts there the oneof member that matches
 * `target`, or 0 when it is missing); `value` is used for MVCC_CMP_VALUE. */
typedef struct mvcc_compare {
    int result; /* enum mvcc_cmp_result */
    int target; /* enum mvcc_cmp_target */
    const uint8_t *key;
    size_t key_len;
    const uint8_t *range_end;
    size_t range_end_len;
    int64_t number;
    const uint8_t *value;
    size_t value_len;
} mvcc_compare;

enum mvcc_op_type { MVCC_OP_NONE = 0, MVCC_OP_RANGE, MVCC_OP_PUT, MVCC_OP_DELETE, MVCC_OP_TXN };

struct mvcc_op;

typedef struct mvcc_txn_req {
    const mvcc_compare *compare;
    size_t ncompare;
    const struct mvcc_op *success;
    size_t nsuccess;
    const struct mvcc_op *failure;
    size_t nfailure;
} mvcc_txn_req;

typedef struct mvcc_op {
    int type; /* enum mvcc_op_type; MVCC_OP_NONE is rejected (MVCC_EINVALID) */
    union {
        mvcc_range_req range;
        mvcc_put_req put;
        mvcc_delete_req del;
        mvcc_txn_req txn;
    } u;
} mvcc_op;

/* ---- responses ------------------------------------------------------------------ */

typedef struct mvcc_op_resp mvcc_op_resp;

struct mvcc_op_resp {
    int type;         /* enum mvcc_op_type */
    int64_t revision; /* the response header's revision, as etcd sets it */
    union {
        struct {
            mvcc_kv *kvs;
            size_t nkvs;
            int64_t count;
            int more;
        } range;
        struct {
            mvcc_kv *prev_kv; /* NULL unless asked for and the key existed */
        } put;
        struct {
            int64_t deleted;
            mvcc_kv *prev_kvs;
            size_t nprev_kvs;
        } del;
        struct {
            int succeeded;
            mvcc_op_resp *responses;
            size_t nresponses;
        } txn;
    } u;
};

struct mvcc_arena;

typedef struct mvcc_result {
    mvcc_op_resp resp;
    struct mvcc_arena *arena; /* owned; freed by mvcc_result_free */
} mvcc_result;

/* Frees everything the result points to and zeroes it. Idempotent. */
void mvcc_result_free(mvcc_result *res);

/* ---- the store ------------------------------------------------------------------- */

typedef struct mvcc_store mvcc_store;

typedef enum mvcc_event_type { MVCC_EVENT_PUT = 0, MVCC_EVENT_DELETE = 1 } mvcc_event_type;

/* An event of one write transaction. For a delete, kv holds the key and
 * mod_revision = the tombstone's main revision (as etcd's watch sends it). */
typedef struct mvcc_event {
    mvcc_event_type type;
    mvcc_kv kv;
    mvcc_rev rev;
} mvcc_event;

/* Called at the end of every write transaction that changed something,
 * with its events in order (borrowed for the call) and its revision. */
typedef void (*mvcc_observer_fn)(void *arg, const mvcc_event *events, size_t n, int64_t rev);

/* Lessor hooks (optional; the lessor below sets its own): lease_exists
 * decides whether a Put may attach a lease (0 -> MVCC_ELEASE_NOT_FOUND);
 * lease_attach is told, for every key a write puts or deletes, which lease
 * the key now belongs to (0 = none, also on delete), so the lessor can
 * track its keys without the store reading previous values. */
typedef struct mvcc_lease_hooks {
    int (*lease_exists)(void *arg, int64_t lease);
    void (*lease_attach)(void *arg, const uint8_t *key, size_t key_len, int64_t lease);
    void *arg;
} mvcc_lease_hooks;

typedef struct mvcc_options {
    uint32_t max_txn_ops;       /* 0 = 128 (etcd's --max-txn-ops default) */
    uint32_t compact_batch;     /* revisions deleted per compaction step; 0 = 1000 */
} mvcc_options;

/* Opens the store over an open backend (borrowed; must outlive the store).
 * Restores the index, current and compacted revisions from the backend
 * and resumes an unfinished compaction. `opt` may be NULL. */
int mvcc_open(mvcc_store **out, backend *be, const mvcc_options *opt);
/* Frees the store (does not close the backend). NULL is a no-op. */
void mvcc_close(mvcc_store *s);

void mvcc_set_observer(mvcc_store *s, mvcc_observer_fn fn, void *arg);
void mvcc_set_lease_hooks(mvcc_store *s, const mvcc_lease_hooks *hooks);

/* Last detail text of a failure (backend messages). */
const char *mvcc_errmsg(const mvcc_store *s);

int64_t mvcc_current_rev(const mvcc_store *s);
/* The compaction revision (etcd's compactMainRev; 0 when never compacted). */
int64_t mvcc_compact_rev(const mvcc_store *s);
/* Keys alive at the current revision (etcd_debugging_mvcc_keys_total). */
int64_t mvcc_keys_total(const mvcc_store *s);

/* The KV API. Each validates first and changes nothing on error. A write
 * that changes nothing (delete of absent keys, read-only txn) makes no
 * revision. */
int mvcc_range(mvcc_store *s, const mvcc_range_req *req, mvcc_result *res);
int mvcc_put(mvcc_store *s, const mvcc_put_req *req, mvcc_result *res);
int mvcc_delete_range(mvcc_store *s, const mvcc_delete_req *req, mvcc_result *res);
int mvcc_txn(mvcc_store *s, const mvcc_txn_req *req, mvcc_result *res);

/* Checks a txn as etcd's gRPC layer does before proposing it (op counts,
 * empty keys, duplicate keys across puts and deletes, nested). mvcc_txn
 * runs it too; exposed so a server can refuse before raft. */
int mvcc_txn_validate(const mvcc_store *s, const mvcc_txn_req *req);

/* Compaction. mvcc_compact compacts the index at `rev` and records it;
 * the physical deletion of old revisions then runs in bounded steps:
 * call mvcc_compact_step until it returns 0 (it returns 1 while work is
 * left, or a negative error). */
int mvcc_compact(mvcc_store *s, int64_t rev);
int mvcc_compact_step(mvcc_store *s);
int mvcc_compact_pending(const mvcc_store *s);

/* HashKV: CRC-32C of the key bucket up to `rev` (0 = current), leaving out
 * revisions that compaction at `rev` would remove, as etcd's hashByRev.
 * Deterministic across members that applied the same history. */
int mvcc_hash_kv(mvcc_store *s, int64_t rev, uint32_t *hash, int64_t *hash_rev,
                 int64_t *compact_rev);

/* The raft consistent index, kept in the meta bucket in the same batch as
 * the writes it covers. */
uint64_t mvcc_consistent_index(mvcc_store *s);
int mvcc_set_consistent_index(mvcc_store *s, uint64_t index);

/* History: visits the stored changes with revision main in [min_rev, max_rev]
 * (max_rev <= 0: up to the current revision) in revision order, at most
 * `limit` of them (0: all), as events (watch catch-up). Events are borrowed
 * for the call. Returns 1 when stopped by the limit with more left. */
typedef int (*mvcc_history_fn)(void *arg, const mvcc_event *ev);
int mvcc_history(mvcc_store *s, int64_t min_rev, int64_t max_rev, size_t limit,
                 mvcc_history_fn fn, void *arg);

/* Operation counters, as etcd's mvcc metrics count them: puts per Put,
 * deletes per DeleteRange (whatever it deleted), ranges per Range, and one
 * txn per read or write transaction (each top-level call here). */
typedef struct mvcc_stats {
    uint64_t puts, deletes, ranges, txns;
} mvcc_stats;
void mvcc_get_stats(const mvcc_store *s, mvcc_stats *out);

/* Memory held by the key index in bytes (B-tree nodes + key indexes). */
size_t mvcc_index_bytes(const mvcc_store *s);

/* ---- the lessor ------------------------------------------------------------------ */

/* Leases (etcd 3.4's lease/lessor.go, with lease checkpointing always on).
 *
 * Replicated state (changed only by the apply calls, identically on every
 * member): each lease's id, granted TTL, checkpointed remaining TTL and the
 * keys attached to it. It lives in the backend's "lease" bucket (8-byte
 * big-endian id -> leasepb.Lease: ID 1, TTL 2, RemainingTTL 3), written in
 * the same batch as the writes it belongs to; attached keys are found from
 * the store at open. The lessor installs the store's lease hooks, so Puts
 * that name a missing lease fail and every put and delete keeps the
 * attachments current.
 *
 * Timing state exists only on the primary (the raft leader): each lease's
 * expiry and its next checkpoint. Time is passed in (monotonic ms), never
 * read here, so tests drive it. Promotion gives every lease its checkpointed
 * remaining TTL (or its full TTL) plus `extend`, so a new leader never
 * expires a lease sooner than a fresh election timeout.
 *
 * Checkpoints: a lease whose remaining TTL fell below half of what was last
 * recorded for it (its TTL after a grant or renew) is due for a checkpoint,
 * so a lease kept alive on clientv3's schedule (every TTL/3) costs none,
 * while an abandoned one is recorded at TTL/2, TTL/4, ... down to a second,
 * and a leader change cannot give it its full TTL back. A renew after a
 * checkpoint clears it (remaining 0 = the full TTL) with one more.
 *
 * Threading: the store's thread. */
#define MVCC_LEASE_MAX_TTL 9000000000LL /* seconds (etcd's MaxLeaseTTL) */

typedef struct mvcc_lessor mvcc_lessor;

/* Opens the lessor over an open store (borrowed; outlives the lessor):
 * loads the lease bucket and the keys attached to each lease, and installs
 * the store's lease hooks. Grants below min_ttl seconds are raised to it. */
int mvcc_lessor_open(mvcc_lessor **out, mvcc_store *kv, int64_t min_ttl);
/* Removes the hooks and frees the lessor. NULL is a no-op. */
void mvcc_lessor_close(mvcc_lessor *l);

/* -- apply (replicated) -- */

/* Grants lease id (nonzero) for ttl seconds (raised to min_ttl); *granted
 * gets the TTL granted. MVCC_ELEASE_EXISTS, MVCC_ELEASE_TTL_TOO_LARGE. On
 * the primary the lease expires at now_ms + TTL. */
int mvcc_lease_grant(mvcc_lessor *l, int64_t id, int64_t ttl, int64_t now_ms, int64_t *granted);
/* Revokes a lease: its keys are deleted in one write transaction (one
 * revision, events to the observer), then the lease. res (may be NULL)
 * gets the revision in resp.revision. MVCC_ELEASE_NOT_FOUND. */
int mvcc_lease_revoke(mvcc_lessor *l, int64_t id, mvcc_result *res);
/* Records a checkpoint (remaining seconds; 0 = none). Unknown ids are
 * ignored (the lease was revoked meanwhile). */
int mvcc_lease_checkpoint(mvcc_lessor *l, int64_t id, int64_t remaining_ttl);

/* -- queries -- */

typedef struct mvcc_lease_info {
    int64_t id;
    int64_t ttl;           /* granted, seconds */
    int64_t remaining_ttl; /* last checkpoint, seconds (0: none) */
    int64_t expiry_ms;     /* primary: when it expires; INT64_MAX elsewhere */
    size_t nkeys;
} mvcc_lease_info;

int mvcc_lease_get(const mvcc_lessor *l, int64_t id, mvcc_lease_info *out);
/* Visits the keys of lease id in no particular order (borrowed for the
 * call); fn returns nonzero to stop. MVCC_ELEASE_NOT_FOUND. */
int mvcc_lease_keys(const mvcc_lessor *l, int64_t id,
                    int (*fn)(void *arg, const uint8_t *key, size_t len), void *arg);
size_t mvcc_lease_count(const mvcc_lessor *l);
/* Copies up to max lease ids into ids; returns how many. */
size_t mvcc_lease_list(const mvcc_lessor *l, int64_t *ids, size_t max);

/* -- the primary -- */

void mvcc_lessor_promote(mvcc_lessor *l, int64_t now_ms, int64_t extend_ms);
void mvcc_lessor_demote(mvcc_lessor *l);
bool mvcc_lessor_is_primary(const mvcc_lessor *l);
/* Renews a lease on the primary: it expires TTL seconds from now; *ttl
 * gets the TTL. MVCC_ELEASE_NOT_FOUND for a missing lease or one already
 * expired (its revoke is on its way), MVCC_EINVALID when not primary. */
int mvcc_lease_renew(mvcc_lessor *l, int64_t id, int64_t now_ms, int64_t *ttl);
/* Up to max leases expired at now_ms, soonest first, into ids. Each is
 * re-armed to expire again at now_ms + retry_ms, so a revoke that does not
 * go through is proposed again. */
size_t mvcc_lessor_expired(mvcc_lessor *l, int64_t now_ms, int64_t retry_ms, int64_t *ids,
                           size_t max);
typedef struct mvcc_lease_cp {
    int64_t id;
    int64_t remaining_ttl; /* seconds; 0 clears */
} mvcc_lease_cp;
/* Up to max checkpoints due at now_ms. */
size_t mvcc_lessor_checkpoints(mvcc_lessor *l, int64_t now_ms, mvcc_lease_cp *out, size_t max);
/* Moves every expiry and checkpoint later by delta_ms (the primary was
 * stalled and could not serve renewals meanwhile). */
void mvcc_lessor_shift(mvcc_lessor *l, int64_t delta_ms);

#endif
