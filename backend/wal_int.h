/* backend/wal_int.h - internals shared by the WAL's source files (never
 * included outside backend/wal*.c):
 *   wal.c          open (listing, verifying, repairing), close, release,
 *                  stats, errors
 *   wal_segment.c  record codec, segment files, error helpers
 *   wal_sync.c     appends, the WAL thread (batches, cuts, fdatasync) and
 *                  the delivery of completions on the loop
 *   wal_replay.c   replay
 * The format and every contract are in backend/wal.h.
 *
 * Who owns what in struct wal:
 *  - the loop thread (the caller) owns errmsg and everything of a request
 *    until it is queued, and again once it is handed back for delivery;
 *  - the WAL thread owns the current segment (fd, offset, capacity), the
 *    chaining crc, the last entry index and the copies of the latest
 *    metadata / snapshot marker / hard state that every new segment repeats;
 *    wal_open() sets them before the thread starts;
 *  - `lock` guards the queue, the delivery list, the segment list (the WAL
 *    thread appends to it on a cut, wal_release() removes from its head),
 *    the counters and the sticky failure.
 */
#ifndef METCD_BACKEND_WAL_INT_H
#define METCD_BACKEND_WAL_INT_H

#include "backend/wal.h"

#include <event2/event.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#define REC_HDR 9u /* u32 len | u32 crc | u8 type */

enum rec_type {
    REC_METADATA = 1,
    REC_HARDSTATE = 2,
    REC_ENTRY = 3,
    REC_SNAPSHOT = 4,
    REC_CRC = 5,
};

#define HARDSTATE_LEN 24u
#define SNAPSHOT_LEN 16u
#define ENTRY_FIXED_LEN 16u
#define CRC_LEN 20u

/* Room kept in every segment for its header records (crc, metadata of at
 * most WAL_METADATA_MAX, snapshot marker, hard state) and the crc record
 * that starts a batch. One append never exceeds segment size less this. */
#define SEG_HDR_BUDGET (5 * REC_HDR + 2 * CRC_LEN + WAL_METADATA_MAX + SNAPSHOT_LEN + HARDSTATE_LEN)

/* How far ahead of the data the WAL thread keeps the current segment
 * written with zeros. fallocate() leaves unwritten extents: the first write
 * into one makes ext4 journal its conversion, so every fdatasync of a batch
 * that reaches new blocks costs a journal commit on top of the data flush.
 * Writing zeros ahead, half a chunk at a time inside a batch's fdatasync,
 * pays that once per half chunk instead (PostgreSQL zero-fills its WAL
 * segments for the same reason). */
#define ZERO_AHEAD (1u << 20)

#define NAME_LEN 37 /* "%016x-%016x.wal" */
#define TMP_SUFFIX ".tmp"
#define IOV_BATCH 1024 /* IOV_MAX on Linux: one pwritev per batch */

struct seg {
    uint64_t seq, first; /* from the file name */
    uint64_t end;        /* bytes of verified, durable records */
    uint64_t max_index;  /* highest entry index in the segment */
    int has_entries;
};

struct req {
    struct req *next;
    wal_done_fn done;
    void *arg;
    int sync;      /* wal_append_sync: its caller waits on done_cond */
    int completed; /* sync only: set by the WAL thread */
    int status;
    size_t len;    /* bytes of records in buf */
    size_t charge; /* bytes counted against queue_limit (0 for sync) */
    size_t n_records;
    uint32_t last_crc;
    int has_entries;
    uint64_t last_index;
    void *meta; /* copy of the metadata payload, handed to the WAL thread */
    size_t meta_len;
    int has_meta, has_hs, has_snap;
    wal_hardstate hs;
    wal_snapshot snap;
    unsigned char buf[];
};

struct wal {
    char *dir;
    int dirfd;
    uint64_t seg_size;
    size_t queue_limit;
    struct event_base *base;
    struct event *ev;
    int efd;

    pthread_mutex_t lock;
    pthread_cond_t work;      /* the WAL thread waits for requests */
    pthread_cond_t done_cond; /* wal_append_sync waits for its request */
    int sync_init;
    int thread_started;
    pthread_t thread;

    /* guarded by lock */
    struct seg *segs;
    size_t nsegs, segs_cap;
    struct req *q_head, *q_tail; /* accepted, not yet taken by the thread */
    struct req *d_head, *d_tail; /* done, waiting for the loop */
    size_t inflight;             /* accepted and not yet done */
    size_t bytes;                /* counted against queue_limit */
    int stop;
    int failed;
    char fail_msg[256];
    wal_stats st;

    /* WAL thread (wal_open before it starts) */
    int cur_fd;
    uint64_t cur_off, cur_cap, cur_seq, cur_first;
    uint64_t cur_zeroed; /* [0, cur_zeroed) of the segment has been written */
    uint32_t last_crc;
    uint64_t last_index;
    void *meta;
    size_t meta_len;
    int has_meta, has_hs, has_snap;
    wal_hardstate hs;
    wal_snapshot snap;

    /* loop thread */
    struct event *kick; /* wakes the WAL thread once per loop pass */
    int kick_pending;
    uint64_t appended_index;
    char errmsg[512];
};

static inline void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t get_le32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline int all_zero(const unsigned char *p, size_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

struct rec {
    uint8_t type;
    uint32_t len, crc;
    const unsigned char *payload;
};

/* The header records of a new segment: crc, then copies of the latest
 * metadata, snapshot marker and hard state the WAL thread knows. */
struct seg_header {
    unsigned char crc_rec[REC_HDR + CRC_LEN];
    unsigned char meta_hdr[REC_HDR];
    unsigned char snap_rec[REC_HDR + SNAPSHOT_LEN];
    unsigned char hs_rec[REC_HDR + HARDSTATE_LEN];
    struct iovec iov[5];
    int n;
    size_t len;
    uint32_t last_crc;
};

/* ---- wal_segment.c ----------------------------------------------------------- */

/* Offset one past the last non-zero byte of p[0, n), 0 if all zero. */
size_t wal_data_end(const unsigned char *p, size_t n);
/* "%016x-%016x.wal" (+ ".tmp" when tmp) into buf of NAME_LEN + 5 bytes. */
void wal_seg_name(char *buf, uint64_t seq, uint64_t first, int tmp);

/* Error helpers: write w->errmsg and return the code. */
int wal_set_err(wal *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* BACKEND_EWAL_IO for `what` failing on file `name` (NULL: the directory). */
int wal_sys_err(wal *w, const char *what, const char *name);
/* BACKEND_EWAL_CORRUPT naming the file and the offset. */
int wal_corrupt(wal *w, const char *name, uint64_t off, const char *why);

/* pwritev/pwrite loops (EINTR, short writes); -1 with errno on failure. */
int wal_writev_all(int fd, struct iovec *iov, int n, uint64_t off);
int wal_write_zeros(int fd, uint64_t from, uint64_t to);
/* fallocate, or posix_fallocate where the file system lacks it. */
int wal_prealloc(int fd, uint64_t size);

uint32_t wal_rec_header(unsigned char *hdr, uint8_t type, const void *a, size_t alen, const void *b,
                        size_t blen);
int wal_rec_parse(const unsigned char *m, uint64_t size, uint64_t off, struct rec *r,
                  const char **why);
int wal_is_torn(const unsigned char *m, uint64_t size, uint64_t off);
void wal_build_header(const wal *w, struct seg_header *h, uint64_t seq, uint64_t first,
                      uint32_t prev_crc);
int wal_make_segment(wal *w, uint64_t seq, uint64_t first, uint32_t prev_crc, int *fd_out,
                     uint64_t *hdr_len, uint32_t *last_crc, char *msg, size_t msglen);
/* Makes room for n segments in w->segs (caller holds the lock, if any). */
int wal_segs_reserve(wal *w, size_t n);

/* ---- wal_sync.c -------------------------------------------------------------- */

/* The WAL thread (pthread_create start routine; arg is the wal). */
void *wal_thread_main(void *arg);
/* Runs the callbacks of every done request, in order (loop thread). */
void wal_deliver(wal *w);
/* libevent callbacks: the eventfd became readable; the once-per-pass kick. */
void wal_on_synced(evutil_socket_t fd, short what, void *arg);
void wal_on_kick(evutil_socket_t fd, short what, void *arg);

#endif
