/* backend/wal.h - the write-ahead log: the member's raft log and hard state,
 * made durable before anything depends on them (DESIGN.md "On disk").
 *
 * Files. A WAL is a directory (the member passes `member/wal/`) of segment
 * files named "%016llx-%016llx.wal", both hex: the sequence number (0, 1,
 * 2, ... without gaps) and the first raft index of the segment (the index
 * after the last entry written before it was made; 0 for the first one).
 * Each segment is preallocated to the segment size and
 * filled from its start with records; the unused rest stays zero. New
 * segments are made as "<name>.tmp", preallocated, given their header,
 * fdatasync'ed, renamed to their name, and the directory is fsync'ed, so a
 * segment exists under its name only complete with its header. The
 * directory is locked with flock(LOCK_EX) while open: a second wal_open()
 * (from any process, or the same one) fails with BACKEND_EWAL_LOCKED.
 *
 * Records, all integers little-endian:
 *
 *     u32 len | u32 crc | u8 type | payload (len bytes)
 *
 * crc is CRC-32C (backend/crc32c.h) over the 4 bytes of len, the type byte
 * and the payload, so every record can be verified on its own. Type 0 does
 * not exist, so a header of nine zero bytes is never a record: zeros mark the
 * end of the data. Types and payloads:
 *
 *     1 metadata   opaque bytes (the member's node and cluster ids), at most
 *                  WAL_METADATA_MAX bytes
 *     2 hardstate  u64 term | u64 vote | u64 commit
 *     3 entry      u64 index | u64 term | data (the encoded raft entry)
 *     4 snapshot   u64 index | u64 term (a snapshot marker)
 *     5 crc        u64 seq | u64 first_index | u32 prev_crc: starts every
 *                  segment (at offset 0: the segment header) and every batch
 *                  of records made durable by one fdatasync. seq and
 *                  first_index repeat the segment's file name. prev_crc is
 *                  the crc field of the record before it (for a segment
 *                  header: the last record of the previous segment; 0 for the
 *                  first segment of a new WAL). This chains every batch to
 *                  the one before and every segment to its predecessor, so a
 *                  missing, swapped or shortened segment or batch is
 *                  detected on open, and it marks where batches begin.
 *
 * A segment header is followed by copies of the latest metadata, snapshot
 * marker and hard state written before the cut (those that exist), so every
 * segment is self-describing and releasing old segments never loses them.
 * The WAL thread keeps about 1 MiB past the data written with zeros (ext4
 * journals the first write into fallocate'd space; doing it ahead keeps
 * that cost out of most fdatasyncs).
 *
 * Crash recovery (wal_open). Every segment is read and every record verified.
 * A bad record (bad length, type, size for its type or CRC; or a zero header
 * with data after it) is:
 *  - corruption when it is not in the last segment, or when a crc record
 *    that verifies follows it: a batch is written only after the previous
 *    one's fdatasync returned, so the bad record was durable once.
 *    BACKEND_EWAL_CORRUPT, and the error text names the file and the byte
 *    offset of the bad record;
 *  - a torn tail when nothing that verifies follows it (a partial write
 *    followed by zeros or garbage): it belongs to the last batch, whose
 *    fdatasync never returned, so no append that reported success is lost;
 *  - when records that verify follow it but no crc record (all within the
 *    last batch, whose sectors may reach the disk in any order on a power
 *    loss): a torn tail if the bad stretch shows what a lost sector leaves
 *    (zeros up to the next 512-byte boundary, or a whole zero sector), else
 *    corruption (a flipped bit).
 * A torn tail is zeroed from the bad record to the last non-zero byte of the
 * file, synced, and the WAL continues at that offset. A last segment holding
 * no record at all (only zeros, or empty: torn while it was made) gets its
 * header written again. Leftover "*.tmp" files are deleted. A gap in the
 * sequence numbers, a crc record that disagrees with the file name or does
 * not chain is BACKEND_EWAL_CORRUPT. A WAL found corrupt is not modified
 * (beyond deleting "*.tmp" leftovers).
 *
 * Threads. wal_open() starts one WAL thread that writes and fdatasyncs
 * appended records (group commit: everything queued while one fdatasync runs
 * goes into the next one) and hands completions back to the caller's
 * libevent loop through an eventfd watched by an event on that loop. Every
 * function here is called from that one loop thread (the thread that owns
 * the event_base; without an event_base, from any one thread at a time);
 * wal_get_stats() may be called from anywhere. The WAL thread never
 * allocates: everything it needs is reserved by the call that queues.
 *
 * Errors: 0 or a negative BACKEND_EWAL_* code (range -1050 .. -1099 of the
 * backend module; backend.h's LMDB half owns -1000 .. -1049). The detail of
 * the last failure (which file, which offset, which system call and its
 * strerror) is kept in wal_errmsg(). No errno value leaves this module.
 *
 * Use by the member:
 *     wal_open(&w, "member/wal", &(wal_options){.base = base}, err, sizeof err);
 *     wal_replay(w, WAL_FROM_SNAPSHOT or the stored consistent index, &r);
 *     ... hand r->hardstate, r->entries to raft; wal_replay_free(r);
 *     first boot: wal_append_sync(w, &(wal_write){.metadata = ids, ...});
 *     each Ready: wal_append(w, &(wal_write){.snapshot = ..., .entries = ...,
 *                 .hardstate = ...}, on_wal_synced, ctx), and only once
 *                 on_wal_synced(ctx, 0) runs: votes and acknowledgements
 *                 leave, the leader counts itself (DESIGN.md safety rules);
 *     after a snapshot at index s > 5000: wal_release(w, s - 5000);
 *     shutdown: wal_close(w) before event_base_free(base).
 */
#ifndef METCD_BACKEND_WAL_H
#define METCD_BACKEND_WAL_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

enum wal_error {
    BACKEND_EWAL_NOMEM = -1050,   /* allocation failed; nothing changed */
    BACKEND_EWAL_IO = -1051,      /* a system call failed (errmsg: which, on what) */
    BACKEND_EWAL_INVAL = -1052,   /* bad argument */
    BACKEND_EWAL_LOCKED = -1053,  /* the directory is held by another wal_open() */
    BACKEND_EWAL_CORRUPT = -1054, /* a bad record that is not a torn tail; errmsg
                                     names the file and byte offset */
    BACKEND_EWAL_FULL = -1055,    /* append queue full: backpressure. Nothing was
                                     queued; retry after completions arrive */
    BACKEND_EWAL_TOOBIG = -1056,  /* one append larger than the queue limit or a
                                     segment can hold */
    BACKEND_EWAL_FAILED = -1057,  /* an earlier write or fdatasync failed: the WAL
                                     accepts nothing more; close and reopen (the
                                     page cache can no longer be trusted) */
    BACKEND_EWAL_CLOSED = -1058,  /* appended from a callback run by wal_close */
};

/* Latency histograms (fdatasync here, commits in backend.h) use etcd's
 * buckets: upper bounds 1 ms * 2^i for i in [0, 14); an observation above
 * the last bound counts only in the total. */
#define BACKEND_LATENCY_BUCKETS 14
static inline int backend_latency_bucket(uint64_t ns)
{
    uint64_t bound = 1000000; /* 1 ms */
    for (int i = 0; i < BACKEND_LATENCY_BUCKETS; i++, bound *= 2)
        if (ns <= bound)
            return i;
    return BACKEND_LATENCY_BUCKETS;
}

#define WAL_METADATA_MAX 4096u /* bytes of one metadata record */
#define WAL_SEGMENT_SIZE_DEFAULT (64u << 20)
#define WAL_SEGMENT_SIZE_MIN (32u << 10)
#define WAL_QUEUE_LIMIT_DEFAULT (16u << 20)

typedef struct wal wal;

typedef struct wal_options {
    uint64_t segment_size;   /* bytes per segment; 0 = 64 MiB, at least 32 KiB */
    size_t queue_limit;      /* bytes of appends accepted and not yet delivered
                                (queued, being written, or waiting for the loop);
                                0 = 16 MiB */
    struct event_base *base; /* the loop that receives completions; NULL allows
                                only wal_append_sync() */
} wal_options;

/* Opens the WAL in directory `dir` (created with its parents, mode 0700, if
 * missing; an empty directory becomes a new WAL of one segment), verifies
 * every segment, repairs a torn tail (see above), locks the directory and
 * starts the WAL thread. `opt` may be NULL for defaults; it is copied. On
 * success *out is the WAL (close with wal_close). On failure *out is NULL,
 * nothing is left open, and when errbuf is given the reason (file and
 * offset for corruption) is written there, NUL-terminated. */
int wal_open(wal **out, const char *dir, const wal_options *opt, char *errbuf, size_t errlen);

/* Drains: every append accepted so far is written and synced. Joins the WAL
 * thread. Completions not yet delivered are delivered from inside this call
 * (each callback still runs exactly once; appends they make fail with
 * BACKEND_EWAL_CLOSED). Then releases the lock and frees everything,
 * including the events it put on the loop (the event_base itself stays the
 * caller's, and must outlive the WAL). NULL is a no-op, so closing a handle
 * that was set to NULL after its close is harmless. Never fails. Must not
 * be called from inside a completion callback. */
void wal_close(wal *w);

/* ---- appending ------------------------------------------------------------ */

typedef struct wal_hardstate {
    uint64_t term, vote, commit;
} wal_hardstate;

typedef struct wal_snapshot {
    uint64_t index, term;
} wal_snapshot;

typedef struct wal_entry {
    uint64_t index, term;
    const void *data; /* the encoded raft entry; may be NULL when len == 0 */
    size_t len;
} wal_entry;

/* One append: any subset of the parts (all absent is a barrier that completes
 * once everything appended before it is durable). Records are written in the
 * order metadata, snapshot marker, entries, hard state, all into one segment.
 * Entries must have consecutive indexes. Everything is borrowed for the
 * duration of the call only: wal_append() copies it. */
typedef struct wal_write {
    const void *metadata; /* non-NULL: write a metadata record */
    size_t metadata_len;  /* at most WAL_METADATA_MAX */
    const wal_snapshot *snapshot;
    const wal_entry *entries;
    size_t n_entries;
    const wal_hardstate *hardstate;
} wal_write;

/* Called on the loop thread, exactly once per accepted wal_append(), in the
 * order the appends were made. status is 0 when the records are durable
 * (written and fdatasync'ed), BACKEND_EWAL_IO when their write or sync
 * failed, BACKEND_EWAL_FAILED when an earlier one had failed. The callback
 * may call wal_append(), wal_append_sync(), wal_replay(), wal_release(),
 * but not wal_close(). */
typedef void (*wal_done_fn)(void *arg, int status);

/* Queues an append for the WAL thread and returns at once. 0: accepted, and
 * done(arg, status) will follow. Otherwise nothing was queued and done will
 * not be called: BACKEND_EWAL_FULL when the queue holds queue_limit bytes
 * (backpressure: retry after completions), BACKEND_EWAL_TOOBIG when this one
 * append could never fit, BACKEND_EWAL_INVAL (no event_base, or entries not
 * consecutive, or metadata too long), BACKEND_EWAL_NOMEM,
 * BACKEND_EWAL_FAILED, BACKEND_EWAL_CLOSED. */
int wal_append(wal *w, const wal_write *wr, wal_done_fn done, void *arg);

/* Appends and waits until the records are durable (for tests and restart
 * paths; it blocks the calling thread for one fdatasync or more). Ordered
 * with wal_append(): everything appended before is durable too when it
 * returns, though those callbacks still arrive through the loop. Returns the
 * status the callback would have seen, or one of wal_append()'s errors
 * (except BACKEND_EWAL_FULL: it is not bounded by the queue limit). */
int wal_append_sync(wal *w, const wal_write *wr);

/* ---- reading ------------------------------------------------------------- */

/* What wal_replay() returns. The result owns all its memory (metadata and
 * every entries[i].data point into it); free it with wal_replay_free(). */
typedef struct wal_replay_result {
    const void *metadata; /* the latest metadata record; NULL if none */
    size_t metadata_len;
    int has_hardstate;
    wal_hardstate hardstate; /* the latest hard state */
    int has_snapshot;
    wal_snapshot snapshot; /* the latest snapshot marker */
    wal_entry *entries;    /* the effective log after `from`, ascending */
    size_t n_entries;
} wal_replay_result;

/* `from` for wal_replay(): entries after the latest snapshot marker (after 0
 * when there is none). */
#define WAL_FROM_SNAPSHOT UINT64_MAX

/* Reads the WAL as it is durable now (safe while appends are in flight: it
 * stops where the WAL thread's last fdatasync ended) and returns in *out the
 * latest metadata, hard state and snapshot marker, and the effective entries
 * with index > from. Records are applied in the order written, as raft
 * wrote them:
 *  - an entry with index i discards every entry >= i gathered so far (raft
 *    overwrote a conflicting suffix), then becomes the entry for i; an entry
 *    more than one past the last one seen is BACKEND_EWAL_CORRUPT (a gap);
 *  - a snapshot marker (i, t) beyond the last entry seen, or whose term
 *    differs from the gathered entry at i, discards every gathered entry: raft
 *    replaced its log by the snapshot, and entries continue at i + 1. A marker
 *    of a snapshot taken inside the log changes nothing, nor does one read
 *    before any entry, nor the copies segment headers carry (they restate
 *    the state: metadata, hard state and snapshot are still returned).
 * So entries[] is contiguous; entries[0].index may be greater than from + 1
 * when the log before it was released or replaced by a snapshot: the caller
 * checks it against its own position. Segments wholly at or below `from` are
 * not read. BACKEND_EWAL_CORRUPT if a record no longer verifies, or
 * BACKEND_EWAL_NOMEM, BACKEND_EWAL_IO; *out is NULL then. */
int wal_replay(wal *w, uint64_t from, wal_replay_result **out);

/* Frees a result of wal_replay(). NULL is a no-op. */
void wal_replay_free(wal_replay_result *r);

/* ---- space --------------------------------------------------------------- */

/* Deletes the oldest segments whose entries are all below `index` (segments
 * holding no entry count as below), stopping at the first one that is not,
 * and never the segment being written. Deletes oldest first and fsyncs the
 * directory, so a crash leaves a contiguous run of segments. Runs on the
 * calling thread (unlink + one directory fsync). Returns 0 (also when
 * nothing was deletable) or BACKEND_EWAL_IO. */
int wal_release(wal *w, uint64_t index);

/* ---- introspection ------------------------------------------------------- */

typedef struct wal_stats {
    uint64_t appends;      /* appends accepted (async and sync) */
    uint64_t records;      /* records appended (segment headers not counted) */
    uint64_t bytes;        /* bytes written, segment headers included */
    uint64_t syncs;        /* fdatasync calls on segments by the WAL thread */
    uint64_t sync_ns;      /* total time spent in those fdatasyncs */
    uint64_t max_sync_ns;  /* the longest one */
    /* fdatasyncs per latency bucket (not cumulative; see
     * backend_latency_bucket) */
    uint64_t sync_hist[BACKEND_LATENCY_BUCKETS];
    uint64_t batches;      /* batches the WAL thread took off the queue */
    uint64_t max_batch;    /* most appends in one batch */
    uint64_t cuts;         /* segments made after open */
    uint64_t released;     /* segments deleted by wal_release */
    uint64_t queue_full;   /* appends refused with BACKEND_EWAL_FULL */
    uint64_t queued_bytes; /* bytes counted against queue_limit now */
    uint64_t segments;     /* segment files now */
    uint64_t torn_bytes;   /* bytes zeroed by wal_open's torn-tail repair */
} wal_stats;

void wal_get_stats(wal *w, wal_stats *out);

/* Index of the last entry appended (accepted by wal_append or
 * wal_append_sync, or found by wal_open); 0 if none. */
uint64_t wal_last_index(wal *w);

/* The detail of the last failure on this WAL (never NULL). */
const char *wal_errmsg(const wal *w);

/* A fixed text for a BACKEND_EWAL_* code ("wal: unknown error" otherwise). */
const char *wal_strerror(int code);

#endif
