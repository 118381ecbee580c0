/* idgen/idgen.h - ID allocation on ordinary keys: snowflake workers and
 * Leaf-style segments (DESIGN.md "IDs").
 *
 * Everything here is written against a small asynchronous KV interface
 * (idgen_kv: txn, get, lease grant / keep-alive / revoke, watch) and an
 * injected wall clock (idgen_clock), so the same code runs inside a member
 * (server/member/idgen_*.c), inside an application over the gRPC client
 * (idgen/client/) and in the unit tests over a fake KV and a fake clock.
 * Nothing here reads a clock, opens a socket or starts a timer: the host
 * calls the *_tick functions every IDGEN_TICK_MS or so and hands KV
 * completions back.
 *
 * Keys, under a prefix (default "/metcd/idgen/"), readable with
 * `etcdctl get --prefix /metcd/idgen/`:
 *   workers/<id>    a worker's registration (id as 4 decimal digits), on its
 *                   lease: {"owner":...,"info":...,"started":<unix ms>}
 *   ts/<id>         the highest timestamp worker id may have used or may use
 *                   before its next upload (decimal unix ms); never lowered
 *                   below what was issued under that id
 *   owners/<owner>  the same bound for every worker an owner (a member) ever
 *                   ran, so a restarted owner with a new worker id still
 *                   never issues an ID below one it issued before
 *   segments/<tag>  a Leaf tag: {"max_id":N,"step":N,"description":...,
 *                   "update_time":<unix ms>}
 *
 * Snowflake layout (Twitter's, as Leaf): 1 sign bit (0), 41 bits of
 * milliseconds since the epoch, 10 bits of worker id, 12 bits of sequence.
 *
 * Guarantees (the unit and integration tests prove them):
 *   - no ID is issued twice cluster-wide, across crashes and restarts:
 *     worker ids are claimed with create-if-absent txns on a lease; a worker
 *     issues timestamps only up to the bound it stored in ts/<id> (and
 *     owners/<owner>), and a worker that takes an id waits until its clock
 *     passes the stored bound; segments are claimed with compare-and-swap
 *     txns on segments/<tag>, so two claims never overlap;
 *   - per tag and per worker or segment allocator (one per member), IDs only
 *     grow, also across restarts of the owner.
 * The guarantees hold as long as nobody deletes or lowers these keys by hand.
 *
 * Threading: an object belongs to one thread; the KV's callbacks run on it.
 * The application library (idgen/client) serialises its threads with a lock.
 *
 * Ownership: strings passed in are copied unless said otherwise; results
 * handed to callbacks are borrowed for the duration of the callback.
 */
#ifndef METCD_IDGEN_IDGEN_H
#define METCD_IDGEN_IDGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors ------------------------------------------------------------------------ */

/* Reserved range -1800 .. -1849. idgen_strerror() gives the text users see
 * (the seed's texts where it has one). */
enum idgen_error {
    IDGEN_OK = 0,
    IDGEN_ENOMEM = -1800,         /* out of memory */
    IDGEN_EINVAL = -1801,         /* bad argument or configuration */
    IDGEN_ENOT_READY = -1802,     /* worker is not ready to serve request */
    IDGEN_EDRIFT = -1803,         /* clock drift. try later */
    IDGEN_EDRIFT_LEAVE = -1804,   /* clock drift too large to cover (the worker leaves) */
    IDGEN_EWAIT = -1805,          /* not an error for users: ask again after *wait_ms */
    IDGEN_EEPOCH = -1806,         /* the clock is outside the 41 bits after the epoch */
    IDGEN_ETAG_NOT_FOUND = -1807, /* no such tag */
    IDGEN_ETAG_EXISTS = -1808,    /* the tag already exists */
    IDGEN_ESEGMENTS = -1809,      /* both segments not ready (loading failed) */
    IDGEN_EPENDING = -1810,       /* a segment is loading: ask again on IDGEN_EVENT_SEGMENT */
    IDGEN_EKV = -1811,            /* the KV store failed or is unreachable */
    IDGEN_ENO_WORKER_ID = -1812,  /* every worker id below max_workers is taken */
    IDGEN_ECORRUPT = -1813,       /* a value under the prefix cannot be parsed */
    IDGEN_ESTOPPED = -1814,       /* the worker was stopped */
    IDGEN_ELOST = -1815,          /* the worker's registration was lost (lease gone) */
    IDGEN_ETOO_MANY = -1816,      /* too many tags */
};

const char *idgen_strerror(int err);

/* ---- the KV interface ----------------------------------------------------------------- */

/* One key-value pair as read (borrowed for the callback that hands it over). */
typedef struct idgen_kv_pair {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    int64_t create_rev, mod_rev, lease;
} idgen_kv_pair;

/* A txn compare, always "equal": the key's create revision (0: absent),
 * mod revision (0: absent) or value. */
enum idgen_cmp_target { IDGEN_CMP_CREATE = 0, IDGEN_CMP_MOD = 1, IDGEN_CMP_VALUE = 2 };

typedef struct idgen_cmp {
    int target; /* enum idgen_cmp_target */
    const char *key;
    size_t key_len;
    int64_t rev;       /* CREATE, MOD */
    const char *value; /* VALUE */
    size_t value_len;
} idgen_cmp;

enum idgen_op_type { IDGEN_OP_GET = 0, IDGEN_OP_PUT = 1, IDGEN_OP_DEL = 2 };

/* A txn operation. GET and DEL with `prefix` cover every key that starts
 * with `key`. PUT attaches `lease` (0: none). */
typedef struct idgen_op {
    int type; /* enum idgen_op_type */
    const char *key;
    size_t key_len;
    bool prefix;
    const char *value;
    size_t value_len;
    int64_t lease;
} idgen_op;

typedef struct idgen_txn {
    const idgen_cmp *cmp;
    size_t ncmp;
    const idgen_op *success;
    size_t nsuccess;
    const idgen_op *failure;
    size_t nfailure;
} idgen_txn;

/* The keys one GET of a txn read. */
typedef struct idgen_kvs {
    const idgen_kv_pair *kvs;
    size_t n;
} idgen_kvs;

/* A txn's outcome: the branch taken, the store's revision after it, and one
 * idgen_kvs per operation of that branch (empty for PUT and DEL). */
typedef struct idgen_txn_result {
    bool succeeded;
    int64_t revision;
    const idgen_kvs *ops;
    size_t nops;
} idgen_txn_result;

/* Completions. rc is 0 or a negative error (the KV's own codes are passed
 * through; idgen_strerror does not know them, the host's errmsg does). */
typedef void (*idgen_txn_fn)(void *arg, int rc, const idgen_txn_result *r);
typedef void (*idgen_get_fn)(void *arg, int rc, const idgen_kv_pair *kvs, size_t n,
                             int64_t revision);
/* Grant: id and granted ttl (seconds). Keep-alive: ttl > 0 while the lease
 * lives, rc != 0 or ttl <= 0 when it is gone or cannot be reached (rc
 * tells which: IDGEN_ELOST for gone). Revoke: id and ttl are 0. */
typedef void (*idgen_lease_fn)(void *arg, int rc, int64_t id, int64_t ttl);

enum idgen_watch_type { IDGEN_WATCH_PUT = 0, IDGEN_WATCH_DELETE = 1 };

typedef struct idgen_watch_event {
    int type; /* enum idgen_watch_type */
    idgen_kv_pair kv;
} idgen_watch_event;

/* Watch events of one revision (rc 0), or the watch's end (rc != 0: it was
 * compacted away or broke; the KV sends nothing more for it, the caller
 * cancels the handle and lists again). Must not call into the KV. */
typedef void (*idgen_watch_fn)(void *arg, int rc, const idgen_watch_event *ev, size_t n,
                               int64_t revision);

/* Every start function returns 0 and then runs its completion exactly once
 * (possibly before it returns), or returns a negative error and never runs
 * it. The KV guarantees the completion also when it shuts down (with an
 * error), so objects waiting for one can be freed safely (see *_free). */
typedef struct idgen_kv_ops {
    int (*txn)(void *kv, const idgen_txn *t, idgen_txn_fn done, void *arg);
    /* A read of key (or every key under it with prefix); the revision is
     * the store's at the read, a watch from revision + 1 misses nothing. */
    int (*get)(void *kv, const char *key, size_t key_len, bool prefix, idgen_get_fn done,
               void *arg);
    int (*lease_grant)(void *kv, int64_t ttl, idgen_lease_fn done, void *arg);
    int (*lease_keepalive)(void *kv, int64_t id, idgen_lease_fn done, void *arg);
    int (*lease_revoke)(void *kv, int64_t id, idgen_lease_fn done, void *arg);
    /* Watches every key under prefix from start_rev; *handle is set when
     * this returns 0. fn runs until watch_cancel (never after it). */
    int (*watch)(void *kv, const char *prefix, size_t len, int64_t start_rev, idgen_watch_fn fn,
                 void *arg, void **handle);
    void (*watch_cancel)(void *kv, void *handle);
} idgen_kv_ops;

typedef struct idgen_kv {
    const idgen_kv_ops *ops;
    void *data; /* the first argument of every op */
} idgen_kv;

/* The wall clock: milliseconds since the Unix epoch. */
typedef struct idgen_clock {
    int64_t (*now_ms)(void *data);
    void *data;
} idgen_clock;

/* How often the host should call the *_tick functions. */
#define IDGEN_TICK_MS 50

#define IDGEN_DEFAULT_PREFIX "/metcd/idgen/"

/* What a worker or an allocator tells its host: from the *_tick functions
 * and from KV completions (also those a KV runs before its call returns,
 * so from *_new, idgen_worker_stop and idgen_worker_restart with such a
 * KV), never from idgen_segs_take or idgen_worker_next: what arises there
 * is told on the next tick. The host must not free the object from inside
 * its notification. */
enum idgen_event {
    IDGEN_EVENT_READY = 0,     /* the worker serves (err 0) */
    IDGEN_EVENT_NOT_READY = 1, /* the worker stopped serving for a while (err: why) */
    IDGEN_EVENT_STOPPED = 2,   /* the worker left for good (err: why; 0 after idgen_worker_stop) */
    IDGEN_EVENT_SEGMENT = 3,   /* a load of `tag` finished (err 0) or failed, or the tag
                                * is gone: take again (tag NULL: every tag) */
};
typedef void (*idgen_notify_fn)(void *arg, int event, const char *tag, int err);

/* Consecutive IDs start, start + 1, ..., start + count - 1. */
typedef struct idgen_range {
    uint64_t start;
    uint64_t count;
} idgen_range;

/* ---- snowflake layout ----------------------------------------------------------------- */

#define IDGEN_TS_BITS 41
#define IDGEN_WORKER_BITS 10
#define IDGEN_SEQ_BITS 12
#define IDGEN_MAX_WORKERS (1u << IDGEN_WORKER_BITS)
#define IDGEN_MAX_SEQ ((1u << IDGEN_SEQ_BITS) - 1)
/* Twitter's epoch, as Leaf's snowflake uses: IDs of users moving from Leaf
 * keep growing. */
#define IDGEN_DEFAULT_EPOCH_MS 1288834974657LL

typedef struct idgen_decoded {
    int64_t time_ms; /* Unix ms */
    uint32_t worker;
    uint32_t sequence;
} idgen_decoded;

/* Splits id; IDGEN_EINVAL when its sign bit is set. */
int idgen_decode(uint64_t id, int64_t epoch_ms, idgen_decoded *out);
/* Builds an ID; IDGEN_EEPOCH when time_ms is outside the epoch's 41 bits,
 * IDGEN_EINVAL for a worker or sequence too large. */
int idgen_compose(int64_t time_ms, int64_t epoch_ms, uint32_t worker, uint32_t sequence,
                  uint64_t *id);

/* The seed's Generator: the pure arithmetic of one worker id. Fields are
 * public so a host can inspect them; change them only through these
 * functions. */
typedef struct idgen_gen {
    int64_t epoch_ms;
    uint32_t worker_id;
    int64_t last_ts;  /* Unix ms of the last ID issued (or the floor to pass) */
    uint32_t seq;     /* last sequence used at last_ts (IDGEN_MAX_SEQ: none left) */
    int64_t limit_ts; /* IDs may use timestamps up to this (the stored bound) */
    int64_t max_drift_block_ms, max_drift_error_ms;
} idgen_gen;

/* Sets up g: no ID issued yet, nothing allowed until limit_ts is raised. */
void idgen_gen_init(idgen_gen *g, int64_t epoch_ms, uint32_t worker_id, int64_t block_ms,
                    int64_t error_ms);
/* Issues up to count (>= 1) consecutive IDs at time now_ms into *out (they
 * share one millisecond). Returns 0 (out->count >= 1), or:
 *   IDGEN_EWAIT         the clock is behind last_ts by at most
 *                       max_drift_block_ms, or this millisecond's 4096
 *                       sequences are used: ask again after *wait_ms
 *   IDGEN_EDRIFT        behind by at most max_drift_error_ms
 *   IDGEN_EDRIFT_LEAVE  behind by more
 *   IDGEN_ENOT_READY    now_ms is past limit_ts
 *   IDGEN_EEPOCH        now_ms is outside the epoch's 41 bits */
int idgen_gen_next(idgen_gen *g, int64_t now_ms, uint64_t count, idgen_range *out,
                   int64_t *wait_ms);
int64_t idgen_gen_last_ts(const idgen_gen *g);
/* Raises (never lowers) the last used timestamp: IDs come after it. */
void idgen_gen_set_last_ts(idgen_gen *g, int64_t ts);

/* ---- the worker ---------------------------------------------------------------------- */

typedef struct idgen_worker_config {
    const char *prefix;         /* NULL: IDGEN_DEFAULT_PREFIX */
    const char *owner;          /* NULL: none (no bound across restarts of the owner) */
    const char *info;           /* free text stored in workers/<id> (NULL: "") */
    int64_t epoch_ms;           /* 0: IDGEN_DEFAULT_EPOCH_MS */
    uint32_t max_workers;       /* 1..1024; 0: 1024. Ids >= max_workers are never used */
    int64_t lease_ttl_s;        /* 0: 10 */
    int64_t upload_interval_ms; /* 0: 2000 */
    int64_t reserve_ms;         /* how far ahead the stored bound goes; 0: 4000 */
    int64_t max_drift_block_ms; /* 0: 1000; < 0: none */
    int64_t max_drift_error_ms; /* 0: 5000 */
    int64_t retry_ms;           /* after a failed KV call; 0: 500 */
} idgen_worker_config;

typedef struct idgen_worker idgen_worker;

enum idgen_worker_state {
    IDGEN_WORKER_CLAIMING = 0, /* taking a worker id */
    IDGEN_WORKER_WAITING = 1,  /* waiting for the clock to pass the stored bound */
    IDGEN_WORKER_READY = 2,
    IDGEN_WORKER_STOPPING = 3,
    IDGEN_WORKER_STOPPED = 4,
};

/* Creates a worker and starts claiming an id. kv and clock are copied (what
 * they point to is borrowed and must outlive the worker and every KV call
 * it started); cfg is copied. notify may be NULL. Caller frees with
 * idgen_worker_free. */
int idgen_worker_new(idgen_worker **out, const idgen_kv *kv, const idgen_clock *clock,
                     const idgen_worker_config *cfg, idgen_notify_fn notify, void *arg);
/* Drives timers: keep-alives, uploads of the bound, the wait for the
 * clock, retries. Call every IDGEN_TICK_MS. */
void idgen_worker_tick(idgen_worker *w);
/* Issues up to count consecutive IDs (one millisecond) into *out. Errors as
 * idgen_gen_next, plus IDGEN_ENOT_READY while not READY (or the bound was
 * not renewed in time), IDGEN_ESTOPPED after a stop. IDGEN_EDRIFT_LEAVE
 * also makes the worker leave: it stops issuing at once; on the next tick
 * it gives up its lease, then notifies IDGEN_EVENT_STOPPED. Never calls
 * into the KV nor notifies, so a host may call it from other threads under
 * the lock that serialises its ticks and KV completions. */
int idgen_worker_next(idgen_worker *w, uint64_t count, idgen_range *out, int64_t *wait_ms);
/* Leaves: stops issuing at once, lowers the stored bound to what was
 * issued, revokes the lease, then notifies IDGEN_EVENT_STOPPED (err 0). */
void idgen_worker_stop(idgen_worker *w);
/* Starts again after IDGEN_EVENT_STOPPED: claims an id afresh (it waits
 * for the clock to pass every bound it knows). */
int idgen_worker_restart(idgen_worker *w);
/* Frees at once; KV calls still in flight complete into a husk that frees
 * itself with the last of them. Never notifies. NULL is a no-op. */
void idgen_worker_free(idgen_worker *w);

typedef struct idgen_worker_info {
    int state;         /* enum idgen_worker_state */
    int32_t worker_id; /* -1 while none is held */
    int64_t lease;
    int64_t last_ts;  /* Unix ms of the last ID issued, 0: none */
    int64_t bound_ts; /* the stored bound acknowledged by the KV */
    int64_t floor_ts; /* IDs wait for the clock to pass this */
    int64_t epoch_ms;
    int last_err; /* why it is not ready, 0 when it is */
} idgen_worker_info;
void idgen_worker_get_info(const idgen_worker *w, idgen_worker_info *out);

/* A worker as listed from the keys (idgen_workers_list). */
typedef struct idgen_worker_rec {
    uint32_t id;
    bool registered;   /* workers/<id> exists */
    const char *owner; /* borrowed; "" when none */
    const char *info;
    int64_t started_ms;
    int64_t lease;
    int64_t bound_ts; /* ts/<id>; 0 when absent */
} idgen_worker_rec;
typedef void (*idgen_workers_fn)(void *arg, int rc, const idgen_worker_rec *w, size_t n);
/* Reads workers/ and ts/ under prefix (NULL: the default) and hands every
 * worker id that has either, in id order, to done (exactly once, as the
 * KV's completions). Returns 0 or an error with done never run. */
int idgen_workers_list(const idgen_kv *kv, const char *prefix, idgen_workers_fn done, void *arg);

/* ---- segments (Leaf) ----------------------------------------------------------------- */

/* Tags: 1..IDGEN_MAX_TAG_LEN bytes of [A-Za-z0-9_.:-]. */
#define IDGEN_MAX_TAG_LEN 128
bool idgen_tag_valid(const char *tag, size_t len);

typedef struct idgen_segs_config {
    const char *prefix;     /* NULL: IDGEN_DEFAULT_PREFIX */
    int64_t max_step;       /* the adaptive step's upper bound; 0: 1000000 */
    uint32_t prefetch_pct;  /* load the next segment once this % is used; 0: 10 */
    int64_t fast_ms;        /* a segment that lasted less doubles the step; 0: 15 min */
    int64_t slow_ms;        /* one that lasted more halves it; 0: 30 min */
    int64_t retry_ms;       /* after a failed load or watch; 0: 500 */
    size_t max_tags;        /* 0: 100000 */
    uint32_t max_conflicts; /* CAS retries within one load; 0: 16 */
    int64_t stall_ms;       /* a load out this long with both buffers dry is overtaken by
                             * a new one; 0: 1000 */
} idgen_segs_config;

typedef struct idgen_segs idgen_segs;

/* Creates the allocator: it lists segments/ and watches it, so tags appear
 * and disappear as their keys do. Borrowing as idgen_worker_new. Caller
 * frees with idgen_segs_free. */
int idgen_segs_new(idgen_segs **out, const idgen_kv *kv, const idgen_clock *clock,
                   const idgen_segs_config *cfg, idgen_notify_fn notify, void *arg);
/* Retries a failed listing or watch. Call every IDGEN_TICK_MS. */
void idgen_segs_tick(idgen_segs *s);
/* Takes up to count IDs of tag, in increasing order, as at most max_out
 * ranges into out (*n_out of them, *taken IDs in all). Returns 0 when count
 * IDs were taken, or after a partial take (or none):
 *   IDGEN_EPENDING       a segment is loading; take the rest again on
 *                        IDGEN_EVENT_SEGMENT for this tag
 *   IDGEN_ESEGMENTS      both segments are empty and the last load failed
 *   IDGEN_ETAG_NOT_FOUND the tag does not exist
 *   IDGEN_ETOO_MANY      max_tags are known already
 * Starts a load of the next segment once prefetch_pct of the current one
 * is used, and on a miss. A tag not seen yet is probed through the KV (a
 * txn, so a tag created anywhere before is found). */
int idgen_segs_take(idgen_segs *s, const char *tag, uint64_t count, idgen_range *out,
                    size_t max_out, size_t *n_out, uint64_t *taken);

typedef struct idgen_seg_info {
    uint64_t start, end, pos; /* [start, end); pos: next to issue */
    int64_t step;
    bool ready;
} idgen_seg_info;
typedef struct idgen_tag_info {
    const char *tag; /* borrowed */
    const char *description;
    uint64_t max_id; /* stored */
    int64_t step;    /* stored (the minimum of the adaptive step) */
    int64_t update_time_ms;
    bool loaded; /* this allocator has drawn from it */
    bool loading;
    int64_t next_step; /* the adaptive step */
    int current;       /* index of the current buffer */
    idgen_seg_info seg[2];
    int last_err;
} idgen_tag_info;
/* Visits every known tag in name order (borrowed for the call). */
void idgen_segs_list(const idgen_segs *s, void (*fn)(void *arg, const idgen_tag_info *t),
                     void *arg);
size_t idgen_segs_count(const idgen_segs *s);
/* Frees at once (husk as idgen_worker_free). NULL is a no-op. */
void idgen_segs_free(idgen_segs *s);

/* Creates tag (create-if-absent txn): the first ID issued is `start`,
 * segments hold `step` IDs at least. done gets 0, IDGEN_ETAG_EXISTS or a
 * KV error. now_ms is stored as the update time. */
typedef void (*idgen_done_fn)(void *arg, int rc);
int idgen_tag_create(const idgen_kv *kv, const char *prefix, const char *tag, uint64_t start,
                     int64_t step, const char *description, int64_t now_ms, idgen_done_fn done,
                     void *arg);

#endif
