/* backend/backend.h - every byte metcd keeps on disk.
 *
 * Two parts:
 *  - the LMDB environment (this header): named databases mirroring etcd's
 *    bolt buckets, one batched write transaction committed durably every
 *    batch interval / batch limit / on demand, reads that see the open
 *    batch, size accounting, defragmentation and consistent copies;
 *  - the write-ahead log (backend/wal.h).
 *
 * Threading: a backend object belongs to one thread (the member's loop).
 * backend_copy_fd() is the one call that may run while that thread keeps
 * writing: it reads through its own LMDB read transaction.
 *
 * Errors: functions return 0 or a negative BACKEND_E* code; the detail of
 * the last failure (the LMDB or errno text) is kept in backend_errmsg().
 */
#ifndef METCD_BACKEND_BACKEND_H
#define METCD_BACKEND_BACKEND_H

#include "backend/wal.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;

/* Error codes of the LMDB half: reserved range -1000 .. -1049. */
enum backend_error {
    BACKEND_OK = 0,
    BACKEND_ENOMEM = -1000,   /* allocation failed */
    BACKEND_EIO = -1001,      /* the OS or LMDB failed to read/write */
    BACKEND_ENOSPC = -1002,   /* the map cannot grow past max_map_size */
    BACKEND_ENOTFOUND = -1003, /* no such key */
    BACKEND_EINVAL = -1004,   /* bad argument (bucket, empty key, ...) */
    BACKEND_ECORRUPT = -1005, /* the database file is damaged or not LMDB */
    BACKEND_EBUSY = -1006,    /* another process holds the environment */
    BACKEND_EKEYSIZE = -1007, /* key longer than LMDB allows */
};

/* The buckets (LMDB named databases), named as etcd names its bolt buckets. */
enum backend_bucket {
    BACKEND_KEY = 0,         /* "key": 17-byte revision -> mvccpb.KeyValue */
    BACKEND_META,            /* "meta": consistent_index, compaction revs */
    BACKEND_LEASE,           /* "lease" */
    BACKEND_MEMBERS,         /* "members" */
    BACKEND_MEMBERS_REMOVED, /* "members_removed" */
    BACKEND_CLUSTER,         /* "cluster" */
    BACKEND_ALARM,           /* "alarm" */
    BACKEND_AUTH,            /* "auth" */
    BACKEND_AUTH_USERS,      /* "authUsers" */
    BACKEND_AUTH_ROLES,      /* "authRoles" */
    BACKEND_NBUCKETS
};

typedef struct backend backend;

typedef struct backend_options {
    size_t initial_map_size;     /* first LMDB map size; 0 = 64 MiB */
    size_t max_map_size;         /* the map never grows past this; 0 = 8 GiB */
    uint32_t batch_interval_ms;  /* commit the batch this often; 0 = 100 ms */
    uint32_t batch_limit;        /* or after this many writes; 0 = 10000 */
    struct event_base *base;     /* optional: arms the batch-interval timer on
                                    this loop; without it the caller commits */
    int no_sync;                 /* benchmarks only: commits skip fsync */
} backend_options;

/* A value borrowed from LMDB: valid until the next write, commit, defrag or
 * close on the same backend (LMDB's MDB_val rule). Copy it to keep it. */
typedef struct backend_val {
    const void *data;
    size_t len;
} backend_val;

/* Flags for backend_put. */
#define BACKEND_PUT_APPEND 0x1u /* hint: key sorts after every key of the
                                   bucket (revisions); falls back if not */

/* Opens (creating if needed) the environment in directory `dir` (created
 * if missing, mode 0700). `opt` may be NULL for defaults. On failure *out is
 * NULL and, when errbuf is given, the reason is written there. */
int backend_open(backend **out, const char *dir, const backend_options *opt, char *errbuf,
                 size_t errlen);

/* Commits the open batch (durably) and closes. NULL is a no-op. Never fails;
 * a failed final commit is reported to stderr. */
void backend_close(backend *be);

/* Writes into the open batch (starting one if needed). Key and value are
 * copied. Commits by itself when the batch reaches batch_limit writes. When
 * the LMDB map is full it grows (doubling, up to max_map_size) and the batch
 * is replayed; past max_map_size it returns BACKEND_ENOSPC and the batch
 * stays as it was before this call. */
int backend_put(backend *be, int bucket, const void *key, size_t klen, const void *val,
                size_t vlen, unsigned flags);

/* Deletes a key in the open batch; deleting a missing key is not an error. */
int backend_del(backend *be, int bucket, const void *key, size_t klen);

/* Point read, seeing the open batch. BACKEND_ENOTFOUND when absent. */
int backend_get(backend *be, int bucket, const void *key, size_t klen, backend_val *out);

/* Visit keys in [start, end) in ascending order, seeing the open batch.
 * start == NULL/0 starts at the first key; end == NULL visits to the last
 * key. limit == 0 means no limit. The callback returns 0 to go on, 1 to stop,
 * or a negative code that is returned. k and v are borrowed for the call. */
typedef int (*backend_visit_fn)(void *arg, backend_val k, backend_val v);
int backend_range(backend *be, int bucket, const void *start, size_t slen, const void *end,
                  size_t elen, size_t limit, backend_visit_fn fn, void *arg);

/* Commits the open batch durably now (no-op when nothing is pending). */
int backend_commit(backend *be);

/* Brackets a group of writes that must reach disk together (one applied
 * raft entry with its consistent index): while held, reaching batch_limit
 * does not commit; backend_release() commits then if the limit was passed.
 * Holds nest. The interval timer never fires inside a hold, since holds
 * live within one callback of the owner's loop. */
void backend_hold(backend *be);
int backend_release(backend *be);

/* Writes in the open batch, not yet committed. */
uint32_t backend_pending(const backend *be);

/* Total size of the database file, and the part of it in use as of the
 * last commit (LMDB's high-water mark less its free pages), in bytes:
 * etcd's dbSize / dbSizeInUse. Neither commits. */
int64_t backend_size(backend *be);
int64_t backend_size_in_use(backend *be);

/* Rewrites the database compactly (commit, compacting copy, swap, reopen).
 * Every borrowed value is invalid afterwards. */
int backend_defrag(backend *be);

/* Writes a consistent copy of the committed database to fd (commits the
 * open batch first). Usable for raft snapshots and `snapshot save`. */
int backend_copy_fd(backend *be, int fd);

/* A read-only view of the committed database (the open batch is committed
 * first): an LMDB read transaction of its own, so another thread may read
 * it while the owner goes on writing. Open it on the owner's thread (as
 * every other call); read and close it from any one thread at a time. While views are open, growing the map,
 * backend_defrag and backend_close wait for them to close (LMDB allows
 * neither a map resize nor closing the environment under a reader), so a
 * view must not wait on the owner's thread. */
typedef struct backend_view backend_view;
int backend_view_open(backend *be, backend_view **out);
/* Every key of the bucket in order, as backend_range (no bounds, no limit). */
int backend_view_range(backend_view *v, int bucket, backend_visit_fn fn, void *arg);
void backend_view_close(backend_view *v);

/* Whether buf (a file's first bytes) starts like an LMDB database file (the
 * meta page's magic): metcd's live database rather than a snapshot. */
int backend_looks_like_lmdb(const void *buf, size_t len);

/* CRC-32C over every bucket (bucket name, then each key and value in
 * order), seeing the open batch. skip(arg, bucket, key) returning nonzero
 * leaves a key out (e.g. meta keys that differ between members). */
typedef int (*backend_skip_fn)(void *arg, int bucket, backend_val key);
int backend_hash(backend *be, backend_skip_fn skip, void *arg, uint32_t *out);

/* Counters for tests and metrics. */
typedef struct backend_stats {
    uint64_t commits;   /* durable commits done */
    uint64_t commit_ns; /* total time in them */
    uint64_t commit_hist[BACKEND_LATENCY_BUCKETS]; /* per bucket, see wal.h */
    uint64_t grows;     /* map growths */
    uint64_t map_size;  /* current map size */
} backend_stats;
void backend_get_stats(const backend *be, backend_stats *out);

const char *backend_bucket_name(int bucket);
const char *backend_errmsg(const backend *be);
const char *backend_strerror(int code);

/* CRC-32C (Castagnoli) update: crc32c(0, buf, n) is the standard CRC-32C of
 * buf; chain calls to hash in pieces. Implemented in backend/crc32c.c. */
uint32_t backend_crc32c(uint32_t crc, const void *buf, size_t n);

#endif
