/* backend/wal.c - the write-ahead log: segments, records, crash recovery,
 * replay, release, and the WAL thread with group commit. Contracts and the
 * on-disk format are in backend/wal.h.
 *
 * Who owns what:
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
#include "backend/wal.h"

#include "backend/crc32c.h"
#include "common/mem.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

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
#define SEG_HDR_BUDGET                                                                         \
    (5 * REC_HDR + 2 * CRC_LEN + WAL_METADATA_MAX + SNAPSHOT_LEN + HARDSTATE_LEN)

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
#define IOV_BATCH 64

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

/* ---- small helpers -------------------------------------------------------- */

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int all_zero(const unsigned char *p, size_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Offset one past the last non-zero byte of p[0, n), 0 if all zero. */
static size_t data_end(const unsigned char *p, size_t n)
{
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p + n - 8, 8);
        if (v)
            break;
        n -= 8;
    }
    while (n && !p[n - 1])
        n--;
    return n;
}

static void seg_name(char *buf, uint64_t seq, uint64_t first, int tmp)
{
    snprintf(buf, NAME_LEN + sizeof TMP_SUFFIX, "%016" PRIx64 "-%016" PRIx64 ".wal%s", seq,
             first, tmp ? TMP_SUFFIX : "");
}

static int parse_hex16(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9')
            v = (v << 4) | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = (v << 4) | (uint64_t)(c - 'a' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

static int parse_name(const char *name, uint64_t *seq, uint64_t *first)
{
    return strlen(name) == NAME_LEN && name[16] == '-' && strcmp(name + 33, ".wal") == 0 &&
           parse_hex16(name, seq) && parse_hex16(name + 17, first);
}

static int set_err(wal *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_err(wal *w, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->errmsg, sizeof w->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/* An I/O failure of `what` on file `name` of the WAL directory (NULL: the
 * directory itself), with errno's text. */
static int sys_err(wal *w, const char *what, const char *name)
{
    int e = errno;
    return set_err(w, BACKEND_EWAL_IO, "wal: %s %s%s%s: %s", what, w->dir, name ? "/" : "",
                   name ? name : "", strerror(e));
}

static int corrupt(wal *w, const char *name, uint64_t off, const char *why)
{
    return set_err(w, BACKEND_EWAL_CORRUPT, "wal: %s in %s/%s at offset %" PRIu64, why, w->dir,
                   name, off);
}

static int write_all(int fd, const void *buf, size_t n, uint64_t off)
{
    const unsigned char *p = buf;
    while (n) {
        ssize_t k = pwrite(fd, p, n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

static int writev_all(int fd, struct iovec *iov, int n, uint64_t off)
{
    while (n > 0) {
        ssize_t k = pwritev(fd, iov, n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        off += (uint64_t)k;
        while (n > 0 && (size_t)k >= iov->iov_len) {
            k -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + k;
            iov->iov_len -= (size_t)k;
        }
    }
    return 0;
}

static const unsigned char zeros[65536];

/* Writes zeros over [from, to) (no sync). */
static int write_zeros(int fd, uint64_t from, uint64_t to)
{
    while (from < to) {
        size_t n = to - from < sizeof zeros ? (size_t)(to - from) : sizeof zeros;
        if (write_all(fd, zeros, n, from) < 0)
            return -1;
        from += n;
    }
    return 0;
}

static int prealloc(int fd, uint64_t size)
{
    if (fallocate(fd, 0, 0, (off_t)size) == 0)
        return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS)
        return -1;
    int e = posix_fallocate(fd, 0, (off_t)size);
    if (e) {
        errno = e;
        return -1;
    }
    return 0;
}

/* ---- records -------------------------------------------------------------- */

/* Writes the 9-byte header for a record whose payload is a || b and returns
 * its crc. The payload itself is written by the caller. */
static uint32_t rec_header(unsigned char *hdr, uint8_t type, const void *a, size_t alen,
                           const void *b, size_t blen)
{
    put_le32(hdr, (uint32_t)(alen + blen));
    hdr[8] = type;
    uint32_t c = backend_crc32c(0, hdr, 4);
    c = backend_crc32c(c, hdr + 8, 1);
    c = backend_crc32c(c, a, alen);
    c = backend_crc32c(c, b, blen);
    put_le32(hdr + 4, c);
    return c;
}

struct rec {
    uint8_t type;
    uint32_t len, crc;
    const unsigned char *payload;
};

/* Parses the record at m[off] of a file of `size` bytes. 1: a record that
 * verifies; 0: nine zero bytes (or a zero remainder shorter than a header);
 * -1: a bad record, *why says what is wrong. */
static int rec_parse(const unsigned char *m, uint64_t size, uint64_t off, struct rec *r,
                     const char **why)
{
    const unsigned char *p = m + off;
    uint64_t left = size - off;

    if (left < REC_HDR) {
        if (all_zero(p, (size_t)left))
            return 0;
        *why = "truncated record header";
        return -1;
    }
    r->len = get_le32(p);
    r->crc = get_le32(p + 4);
    r->type = p[8];
    if (r->len == 0 && r->crc == 0 && r->type == 0)
        return 0;
    if (r->type < REC_METADATA || r->type > REC_CRC) {
        *why = "bad record type";
        return -1;
    }
    if (r->len > left - REC_HDR) {
        *why = "bad record length";
        return -1;
    }
    int ok;
    switch (r->type) {
    case REC_METADATA:
        ok = r->len <= WAL_METADATA_MAX;
        break;
    case REC_HARDSTATE:
        ok = r->len == HARDSTATE_LEN;
        break;
    case REC_ENTRY:
        ok = r->len >= ENTRY_FIXED_LEN;
        break;
    case REC_SNAPSHOT:
        ok = r->len == SNAPSHOT_LEN;
        break;
    default:
        ok = r->len == CRC_LEN;
        break;
    }
    if (!ok) {
        *why = "bad record length";
        return -1;
    }
    uint32_t c = backend_crc32c(0, p, 4);
    c = backend_crc32c(c, p + 8, 1 + (size_t)r->len);
    if (c != r->crc) {
        *why = "bad record crc";
        return -1;
    }
    r->payload = p + REC_HDR;
    return 1;
}

#define SECTOR 512u

/* Decides whether the bad record at m[off] of the last segment is a torn
 * tail (1) or corruption (0). Every batch made durable by one fdatasync
 * starts with a crc record, and a batch is written only after the previous
 * one's fdatasync returned; so:
 *  - a crc record that verifies after off proves the bad record belongs to
 *    a batch that was synced: corruption;
 *  - nothing that verifies after off: the tail of the last batch never
 *    fully reached the disk: torn;
 *  - records that verify after off but no crc record: all of it is the
 *    last batch, whose sectors may have reached the disk in any order on a
 *    crash. Torn if the bad stretch shows what a lost sector leaves, zeros
 *    from off to the next sector boundary or a whole zero sector; a bad
 *    record without any (a flipped bit) is corruption. */
static int is_torn(const unsigned char *m, uint64_t size, uint64_t off)
{
    uint64_t end = data_end(m, (size_t)size), next = 0;
    for (uint64_t p = off + 1; p < end; p++) {
        struct rec r;
        const char *why;
        if (rec_parse(m, size, p, &r, &why) != 1)
            continue;
        if (r.type == REC_CRC)
            return 0;
        if (!next)
            next = p;
    }
    if (!next)
        return 1;
    uint64_t b = (off / SECTOR + 1) * SECTOR;
    if (all_zero(m + off, (size_t)((b < next ? b : next) - off)))
        return 1;
    for (; b + SECTOR <= next; b += SECTOR)
        if (all_zero(m + b, SECTOR))
            return 1;
    return 0;
}

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

static void build_header(const wal *w, struct seg_header *h, uint64_t seq, uint64_t first,
                         uint32_t prev_crc)
{
    unsigned char *pl = h->crc_rec + REC_HDR;
    put_le64(pl, seq);
    put_le64(pl + 8, first);
    put_le32(pl + 16, prev_crc);
    h->last_crc = rec_header(h->crc_rec, REC_CRC, pl, CRC_LEN, NULL, 0);
    h->iov[0] = (struct iovec){h->crc_rec, sizeof h->crc_rec};
    h->n = 1;
    h->len = sizeof h->crc_rec;
    if (w->has_meta) {
        h->last_crc = rec_header(h->meta_hdr, REC_METADATA, w->meta, w->meta_len, NULL, 0);
        h->iov[h->n++] = (struct iovec){h->meta_hdr, REC_HDR};
        if (w->meta_len)
            h->iov[h->n++] = (struct iovec){w->meta, w->meta_len};
        h->len += REC_HDR + w->meta_len;
    }
    if (w->has_snap) {
        pl = h->snap_rec + REC_HDR;
        put_le64(pl, w->snap.index);
        put_le64(pl + 8, w->snap.term);
        h->last_crc = rec_header(h->snap_rec, REC_SNAPSHOT, pl, SNAPSHOT_LEN, NULL, 0);
        h->iov[h->n++] = (struct iovec){h->snap_rec, sizeof h->snap_rec};
        h->len += sizeof h->snap_rec;
    }
    if (w->has_hs) {
        pl = h->hs_rec + REC_HDR;
        put_le64(pl, w->hs.term);
        put_le64(pl + 8, w->hs.vote);
        put_le64(pl + 16, w->hs.commit);
        h->last_crc = rec_header(h->hs_rec, REC_HARDSTATE, pl, HARDSTATE_LEN, NULL, 0);
        h->iov[h->n++] = (struct iovec){h->hs_rec, sizeof h->hs_rec};
        h->len += sizeof h->hs_rec;
    }
}

/* ---- making segments ------------------------------------------------------ */

/* Makes segment (seq, first) through a temporary file: preallocate, header,
 * the first ZERO_AHEAD bytes zeroed (see zero_ahead), fdatasync, rename,
 * directory fsync. On success *fd_out is open read-write and *hdr_len is the
 * size of the header written. The error text goes to msg (the WAL thread has
 * no errmsg of its own). */
static int make_segment(wal *w, uint64_t seq, uint64_t first, uint32_t prev_crc, int *fd_out,
                        uint64_t *hdr_len, uint32_t *last_crc, char *msg, size_t msglen)
{
    char tmp[NAME_LEN + sizeof TMP_SUFFIX], name[NAME_LEN + 1];
    struct seg_header h;
    const char *what;

    seg_name(tmp, seq, first, 1);
    seg_name(name, seq, first, 0);
    int fd = openat(w->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        what = "create";
        goto err;
    }
    what = "preallocate";
    if (prealloc(fd, w->seg_size) < 0)
        goto err_fd;
    build_header(w, &h, seq, first, prev_crc);
    what = "write";
    if (writev_all(fd, h.iov, h.n, 0) < 0)
        goto err_fd;
    if (write_zeros(fd, h.len, w->seg_size < ZERO_AHEAD ? w->seg_size : ZERO_AHEAD) < 0)
        goto err_fd;
    what = "fdatasync";
    if (fdatasync(fd) < 0)
        goto err_fd;
    what = "rename";
    if (renameat(w->dirfd, tmp, w->dirfd, name) < 0)
        goto err_fd;
    if (fsync(w->dirfd) < 0) {
        /* the segment is complete under its name; only its name may not be
           durable yet, and nothing was acknowledged through it */
        int e = errno;
        close(fd);
        unlinkat(w->dirfd, name, 0);
        errno = e;
        what = "fsync directory for";
        goto err;
    }
    *fd_out = fd;
    *hdr_len = h.len;
    *last_crc = h.last_crc;
    return 0;

err_fd : {
    int e = errno;
    close(fd);
    unlinkat(w->dirfd, tmp, 0);
    errno = e;
}
err:
    snprintf(msg, msglen, "wal: %s %s/%s: %s", what, w->dir, tmp, strerror(errno));
    return BACKEND_EWAL_IO;
}

/* ---- opening: listing, verifying, repairing -------------------------------- */

static int mkdir_p(wal *w, const char *dir)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return set_err(w, BACKEND_EWAL_INVAL, "wal: bad directory name");
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST) {
            int e = errno;
            return set_err(w, BACKEND_EWAL_IO, "wal: mkdir %s: %s", path, strerror(e));
        }
        path[i] = c;
    }
    return 0;
}

static int seg_cmp(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Makes room for n segments in w->segs. */
static int segs_reserve(wal *w, size_t n)
{
    if (n <= w->segs_cap)
        return 0;
    size_t cap = w->segs_cap ? w->segs_cap : 8;
    while (cap < n)
        cap *= 2;
    struct seg *s = metcd_realloc(w->segs, cap * sizeof *s);
    if (!s)
        return set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
    w->segs = s;
    w->segs_cap = cap;
    return 0;
}

/* Reads the directory: deletes leftover temporary files, collects the
 * segments sorted by sequence and checks the sequence has no gap. */
static int list_segments(wal *w)
{
    int rc = 0;
    int fd = openat(w->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return sys_err(w, "open", NULL);
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return sys_err(w, "opendir", NULL);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t seq, first;
        size_t n = strlen(de->d_name);
        if (n == NAME_LEN + strlen(TMP_SUFFIX) && strcmp(de->d_name + NAME_LEN, TMP_SUFFIX) == 0) {
            unlinkat(w->dirfd, de->d_name, 0); /* a cut that never finished */
            continue;
        }
        if (!parse_name(de->d_name, &seq, &first))
            continue;
        if ((rc = segs_reserve(w, w->nsegs + 1)) != 0)
            goto out;
        w->segs[w->nsegs++] = (struct seg){.seq = seq, .first = first};
    }
    if (w->nsegs)
        qsort(w->segs, w->nsegs, sizeof *w->segs, seg_cmp);
    for (size_t i = 1; i < w->nsegs; i++) {
        if (w->segs[i].seq != w->segs[i - 1].seq + 1) {
            char a[NAME_LEN + 1], b[NAME_LEN + 1];
            seg_name(a, w->segs[i - 1].seq, w->segs[i - 1].first, 0);
            seg_name(b, w->segs[i].seq, w->segs[i].first, 0);
            rc = set_err(w, BACKEND_EWAL_CORRUPT, "wal: segment sequence gap between %s/%s and %s",
                         w->dir, a, b);
            goto out;
        }
    }
out:
    closedir(d);
    return rc;
}

/* Zeroes [from, to) of fd and syncs it. */
static int zero_range(int fd, uint64_t from, uint64_t to)
{
    if (write_zeros(fd, from, to) < 0)
        return -1;
    return fdatasync(fd);
}

/* Keeps a copy of the latest metadata payload for segment headers. */
static int keep_meta(wal *w, const void *p, size_t n)
{
    void *m = metcd_memdup(p, n);
    if (!m)
        return set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
    metcd_free(w->meta);
    w->meta = m;
    w->meta_len = n;
    w->has_meta = 1;
    return 0;
}

/* Verifies segment i (opening it; the last one stays open as the current
 * segment), updating the chaining crc, the last entry index and the latest
 * metadata / snapshot / hard state. In the last segment a torn tail is
 * zeroed and a missing header is written again. */
static int scan_segment(wal *w, size_t i)
{
    struct seg *s = &w->segs[i];
    int last = i + 1 == w->nsegs;
    char name[NAME_LEN + 1];
    const unsigned char *map = NULL, *meta = NULL;
    size_t meta_len = 0;
    uint64_t off = 0;
    struct stat sb;
    int rc = 0;

    seg_name(name, s->seq, s->first, 0);
    int fd = openat(w->dirfd, name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return sys_err(w, "open", name);
    if (fstat(fd, &sb) < 0) {
        rc = sys_err(w, "stat", name);
        goto out_fd;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size) {
        map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            map = NULL;
            rc = sys_err(w, "mmap", name);
            goto out_fd;
        }
    }
    for (;;) {
        struct rec r;
        const char *why = NULL;
        int k = off < size ? rec_parse(map, size, off, &r, &why) : 0;
        if (k == 0) {
            if (off >= size || all_zero(map + off, (size_t)(size - off)))
                break; /* clean end of the data */
            why = "zero record header followed by data";
            k = -1;
        }
        if (k < 0) {
            if (!last || !is_torn(map, size, off)) {
                rc = corrupt(w, name, off, why);
                goto out_map;
            }
            /* torn tail: a batch whose fdatasync never returned */
            uint64_t end = data_end(map, (size_t)size);
            if (zero_range(fd, off, end) < 0) {
                rc = sys_err(w, "zero torn tail of", name);
                goto out_map;
            }
            w->st.torn_bytes += end - off;
            break;
        }
        if (off == 0 && r.type != REC_CRC) {
            rc = corrupt(w, name, off, "segment does not start with a crc record");
            goto out_map;
        }
        switch (r.type) {
        case REC_CRC: {
            uint64_t seq = get_le64(r.payload), first = get_le64(r.payload + 8);
            uint32_t prev = get_le32(r.payload + 16);
            if (seq != s->seq || first != s->first) {
                rc = corrupt(w, name, off, "segment header disagrees with the file name");
                goto out_map;
            }
            if ((off > 0 || i > 0) && prev != w->last_crc) {
                rc = corrupt(w, name, off,
                             off ? "crc record does not chain to the record before it"
                                 : "segment does not chain to the previous one");
                goto out_map;
            }
            break;
        }
        case REC_METADATA:
            meta = r.payload;
            meta_len = r.len;
            break;
        case REC_HARDSTATE:
            w->hs = (wal_hardstate){get_le64(r.payload), get_le64(r.payload + 8),
                                    get_le64(r.payload + 16)};
            w->has_hs = 1;
            break;
        case REC_SNAPSHOT:
            w->snap = (wal_snapshot){get_le64(r.payload), get_le64(r.payload + 8)};
            w->has_snap = 1;
            break;
        case REC_ENTRY: {
            uint64_t idx = get_le64(r.payload);
            w->last_index = idx;
            if (!s->has_entries || idx > s->max_index)
                s->max_index = idx;
            s->has_entries = 1;
            break;
        }
        }
        w->last_crc = r.crc;
        off += REC_HDR + r.len;
    }
    if (meta && (rc = keep_meta(w, meta, meta_len)) != 0)
        goto out_map;
    if (off == 0) {
        /* no record at all: a non-last segment lost its data; the last one
           was torn while being made and gets its header again */
        if (!last) {
            rc = corrupt(w, name, 0, "segment has no records");
            goto out_map;
        }
        uint64_t cap = size > w->seg_size ? size : w->seg_size;
        struct seg_header h;
        build_header(w, &h, s->seq, s->first, i > 0 ? w->last_crc : 0);
        if (prealloc(fd, cap) < 0 || writev_all(fd, h.iov, h.n, 0) < 0 || fdatasync(fd) < 0) {
            rc = sys_err(w, "rewrite header of", name);
            goto out_map;
        }
        off = h.len;
        w->last_crc = h.last_crc;
    }
    s->end = off;
    if (last) {
        uint64_t cap = size > w->seg_size ? size : w->seg_size;
        if (cap > size && prealloc(fd, cap) < 0) {
            rc = sys_err(w, "preallocate", name);
            goto out_map;
        }
        w->cur_fd = fd;
        w->cur_off = off;
        w->cur_cap = cap;
        w->cur_zeroed = off; /* unknown beyond: zero_ahead redoes it */
        w->cur_seq = s->seq;
        w->cur_first = s->first;
        fd = -1;
    }
out_map:
    if (map)
        munmap((void *)map, (size_t)size);
out_fd:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---- the WAL thread --------------------------------------------------------- */

/* Applies what a written request changes in the thread's state. */
static void note_written(wal *w, struct req *r, int *has_entries, uint64_t *max_index)
{
    w->last_crc = r->n_records ? r->last_crc : w->last_crc;
    if (r->has_entries) {
        w->last_index = r->last_index;
        if (!*has_entries || r->last_index > *max_index)
            *max_index = r->last_index;
        *has_entries = 1;
    }
    if (r->has_meta) {
        metcd_free(w->meta);
        w->meta = r->meta;
        w->meta_len = r->meta_len;
        w->has_meta = 1;
        r->meta = NULL;
    }
    if (r->has_snap) {
        w->snap = r->snap;
        w->has_snap = 1;
    }
    if (r->has_hs) {
        w->hs = r->hs;
        w->has_hs = 1;
    }
}

/* Publishes the durable state of the current segment. */
static void publish_current(wal *w, int has_entries, uint64_t max_index, uint64_t syncs)
{
    pthread_mutex_lock(&w->lock);
    struct seg *s = &w->segs[w->nsegs - 1];
    s->end = w->cur_off;
    if (has_entries && (!s->has_entries || max_index > s->max_index))
        s->max_index = max_index;
    s->has_entries |= has_entries;
    w->st.syncs += syncs;
    pthread_mutex_unlock(&w->lock);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* fdatasync of the current segment, adding its duration to the stats. */
static int timed_fdatasync(wal *w, int fd)
{
    uint64_t t0 = now_ns();
    int rc = fdatasync(fd);
    uint64_t t = now_ns() - t0;
    pthread_mutex_lock(&w->lock);
    w->st.sync_ns += t;
    if (t > w->st.max_sync_ns)
        w->st.max_sync_ns = t;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

/* Keeps at least half of ZERO_AHEAD written with zeros ahead of the data
 * (flushed by the caller's fdatasync). */
static int zero_ahead(wal *w)
{
    uint64_t want = w->cur_off + ZERO_AHEAD / 2;
    if (w->cur_zeroed >= want || w->cur_zeroed >= w->cur_cap)
        return 0;
    uint64_t from = w->cur_zeroed > w->cur_off ? w->cur_zeroed : w->cur_off;
    uint64_t to = w->cur_off + ZERO_AHEAD;
    if (to > w->cur_cap)
        to = w->cur_cap;
    if (write_zeros(w->cur_fd, from, to) < 0)
        return -1;
    w->cur_zeroed = to;
    return 0;
}

/* Closes the current segment (already synced) and continues in a new one. */
static int cut(wal *w, char *msg, size_t msglen)
{
    int fd;
    uint64_t hdr_len;
    uint32_t crc;
    uint64_t seq = w->cur_seq + 1, first = w->last_index + 1;

    int rc = make_segment(w, seq, first, w->last_crc, &fd, &hdr_len, &crc, msg, msglen);
    if (rc)
        return rc;
    pthread_mutex_lock(&w->lock);
    /* wal_append reserved room for one cut per request in flight */
    w->segs[w->nsegs++] = (struct seg){.seq = seq, .first = first, .end = hdr_len};
    w->st.cuts++;
    w->st.bytes += hdr_len;
    pthread_mutex_unlock(&w->lock);
    close(w->cur_fd);
    w->cur_fd = fd;
    w->cur_off = hdr_len;
    w->cur_cap = w->seg_size;
    w->cur_zeroed = w->seg_size < ZERO_AHEAD ? w->seg_size : ZERO_AHEAD;
    w->cur_seq = seq;
    w->cur_first = first;
    w->last_crc = crc;
    return 0;
}

/* Fills `rec` with the crc record that starts a batch in the current
 * segment, chained to the record before it. */
static void batch_marker(wal *w, unsigned char *rec)
{
    unsigned char *pl = rec + REC_HDR;
    put_le64(pl, w->cur_seq);
    put_le64(pl + 8, w->cur_first);
    put_le32(pl + 16, w->last_crc);
    w->last_crc = rec_header(rec, REC_CRC, pl, CRC_LEN, NULL, 0);
}

/* Writes one batch of requests and makes it durable: a crc record, then
 * the requests' records go into the current segment with pwritev; a request
 * that does not fit ends the run: the segment is synced and cut, and the
 * rest starts again with a crc record in the new one. One fdatasync at the
 * end. */
static int write_batch(wal *w, struct req *batch, char *msg, size_t msglen)
{
    struct iovec iov[IOV_BATCH];
    unsigned char marker[REC_HDR + CRC_LEN];
    int niov = 0, dirty = 0, has_entries = 0;
    uint64_t start = w->cur_off, max_index = 0, nbytes = 0, nrec = 0;
    const char *what;

    for (struct req *r = batch; r; r = r->next) {
        if (r->len == 0)
            continue;
        uint64_t need = r->len + (dirty ? 0 : sizeof marker);
        if (niov + 2 > IOV_BATCH || w->cur_off + need > w->cur_cap) {
            what = "write";
            if (niov && writev_all(w->cur_fd, iov, niov, start) < 0)
                goto err;
            niov = 0;
            start = w->cur_off;
        }
        if (w->cur_off + need > w->cur_cap) {
            what = "fdatasync";
            if (dirty && timed_fdatasync(w, w->cur_fd) < 0)
                goto err;
            if (dirty)
                publish_current(w, has_entries, max_index, 1);
            dirty = has_entries = 0;
            max_index = 0;
            int rc = cut(w, msg, msglen);
            if (rc)
                return rc;
            start = w->cur_off;
        }
        if (!dirty) {
            batch_marker(w, marker);
            iov[niov++] = (struct iovec){marker, sizeof marker};
            w->cur_off += sizeof marker;
            nbytes += sizeof marker;
            dirty = 1;
        }
        iov[niov++] = (struct iovec){r->buf, r->len};
        w->cur_off += r->len;
        nbytes += r->len;
        nrec += r->n_records;
        note_written(w, r, &has_entries, &max_index);
    }
    what = "write";
    if (niov && writev_all(w->cur_fd, iov, niov, start) < 0)
        goto err;
    if (dirty && zero_ahead(w) < 0)
        goto err;
    what = "fdatasync";
    if (dirty && timed_fdatasync(w, w->cur_fd) < 0)
        goto err;
    if (dirty)
        publish_current(w, has_entries, max_index, 1);
    pthread_mutex_lock(&w->lock);
    w->st.bytes += nbytes;
    w->st.records += nrec;
    pthread_mutex_unlock(&w->lock);
    return 0;

err:
    snprintf(msg, msglen, "wal: %s segment %016" PRIx64 " in %s: %s", what, w->cur_seq, w->dir,
             strerror(errno));
    return BACKEND_EWAL_IO;
}

static void *wal_thread(void *arg)
{
    wal *w = arg;
    char msg[sizeof w->fail_msg];

    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->q_head && !w->stop)
            pthread_cond_wait(&w->work, &w->lock);
        if (!w->q_head)
            break; /* stopping, and drained */
        struct req *batch = w->q_head;
        w->q_head = w->q_tail = NULL;
        int status = w->failed;
        pthread_mutex_unlock(&w->lock);

        uint64_t n = 0;
        for (struct req *r = batch; r; r = r->next)
            n++;
        if (status == 0) {
            status = write_batch(w, batch, msg, sizeof msg);
            if (status) {
                pthread_mutex_lock(&w->lock);
                w->failed = BACKEND_EWAL_FAILED;
                memcpy(w->fail_msg, msg, sizeof msg);
                pthread_mutex_unlock(&w->lock);
            }
        }

        pthread_mutex_lock(&w->lock);
        w->st.batches++;
        if (n > w->st.max_batch)
            w->st.max_batch = n;
        int wake_loop = 0, wake_sync = 0;
        struct req *next;
        for (struct req *r = batch; r; r = next) {
            next = r->next;
            r->next = NULL;
            r->status = status;
            w->inflight--;
            if (r->sync) {
                r->completed = 1; /* its waiter frees it: no touching after */
                wake_sync = 1;
                continue;
            }
            if (w->d_tail)
                w->d_tail->next = r;
            else
                w->d_head = r;
            w->d_tail = r;
            wake_loop = 1;
        }
        if (wake_sync)
            pthread_cond_broadcast(&w->done_cond);
        if (wake_loop) {
            uint64_t one = 1;
            ssize_t k = write(w->efd, &one, sizeof one);
            (void)k; /* only fails if the counter is saturated: still readable */
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* ---- delivering completions on the loop ------------------------------------ */

static void req_free(struct req *r)
{
    if (r) {
        metcd_free(r->meta);
        metcd_free(r);
    }
}

/* Runs the callbacks of every done request, in order. */
static void deliver(wal *w)
{
    pthread_mutex_lock(&w->lock);
    struct req *list = w->d_head;
    w->d_head = w->d_tail = NULL;
    for (struct req *r = list; r; r = r->next)
        w->bytes -= r->charge;
    w->st.queued_bytes = w->bytes;
    int failed = w->failed;
    if (failed)
        memcpy(w->errmsg, w->fail_msg, sizeof w->fail_msg);
    pthread_mutex_unlock(&w->lock);

    struct req *next;
    for (struct req *r = list; r; r = next) {
        next = r->next;
        r->done(r->arg, r->status);
        req_free(r);
    }
}

/* Asynchronous appends do not wake the WAL thread themselves: the first one
 * of a loop pass activates this event, which runs after the callbacks of
 * that pass. Everything appended in one pass (all the completions delivered
 * together, all the requests read together) then goes out as one batch,
 * instead of the first append alone and the rest in the next fdatasync, a
 * split that would otherwise persist from one round to the next. */
static void on_wal_kick(evutil_socket_t fd, short what, void *arg)
{
    wal *w = arg;
    (void)fd;
    (void)what;
    w->kick_pending = 0;
    pthread_mutex_lock(&w->lock);
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->lock);
}

static void on_wal_synced(evutil_socket_t fd, short what, void *arg)
{
    uint64_t v;
    (void)what;
    ssize_t k = read(fd, &v, sizeof v);
    (void)k; /* EAGAIN: a concurrent wake-up was already consumed */
    deliver(arg);
}

/* ---- open / close ------------------------------------------------------------ */

static void wal_free(wal *w)
{
    if (w->thread_started) {
        pthread_mutex_lock(&w->lock);
        w->stop = 1;
        pthread_cond_signal(&w->work);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
    }
    if (w->sync_init && w->d_head)
        deliver(w);
    if (w->kick)
        event_free(w->kick);
    if (w->ev)
        event_free(w->ev);
    if (w->efd >= 0)
        close(w->efd);
    if (w->cur_fd >= 0)
        close(w->cur_fd);
    if (w->dirfd >= 0)
        close(w->dirfd); /* drops the flock */
    if (w->sync_init) {
        pthread_cond_destroy(&w->done_cond);
        pthread_cond_destroy(&w->work);
        pthread_mutex_destroy(&w->lock);
    }
    metcd_free(w->segs);
    metcd_free(w->meta);
    metcd_free(w->dir);
    metcd_free(w);
}

static int open_dir(wal *w)
{
    int rc = mkdir_p(w, w->dir);
    if (rc)
        return rc;
    w->dirfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dirfd < 0)
        return sys_err(w, "open", NULL);
    if (flock(w->dirfd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            return set_err(w, BACKEND_EWAL_LOCKED, "wal: %s is locked by another wal_open",
                           w->dir);
        return sys_err(w, "flock", NULL);
    }
    return 0;
}

static int start_thread(wal *w)
{
    if (pthread_mutex_init(&w->lock, NULL))
        return set_err(w, BACKEND_EWAL_NOMEM, "wal: pthread_mutex_init failed");
    if (pthread_cond_init(&w->work, NULL)) {
        pthread_mutex_destroy(&w->lock);
        return set_err(w, BACKEND_EWAL_NOMEM, "wal: pthread_cond_init failed");
    }
    if (pthread_cond_init(&w->done_cond, NULL)) {
        pthread_cond_destroy(&w->work);
        pthread_mutex_destroy(&w->lock);
        return set_err(w, BACKEND_EWAL_NOMEM, "wal: pthread_cond_init failed");
    }
    w->sync_init = 1;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0)
        return sys_err(w, "eventfd for", NULL);
    if (w->base) {
        w->ev = event_new(w->base, w->efd, EV_READ | EV_PERSIST, on_wal_synced, w);
        if (!w->ev)
            return set_err(w, BACKEND_EWAL_NOMEM, "wal: event_new failed");
        if (event_add(w->ev, NULL) < 0)
            return set_err(w, BACKEND_EWAL_IO, "wal: event_add failed");
        w->kick = event_new(w->base, -1, 0, on_wal_kick, w);
        if (!w->kick)
            return set_err(w, BACKEND_EWAL_NOMEM, "wal: event_new failed");
    }
    int e = pthread_create(&w->thread, NULL, wal_thread, w);
    if (e)
        return set_err(w, BACKEND_EWAL_IO, "wal: pthread_create: %s", strerror(e));
    w->thread_started = 1;
    return 0;
}

int wal_open(wal **out, const char *dir, const wal_options *opt, char *errbuf, size_t errlen)
{
    int rc;
    wal *w = NULL;

    if (out)
        *out = NULL;
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (!out || !dir || !*dir || strlen(dir) > PATH_MAX - NAME_LEN - 16) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "wal: bad argument to wal_open");
        return BACKEND_EWAL_INVAL;
    }
    uint64_t seg_size = opt && opt->segment_size ? opt->segment_size : WAL_SEGMENT_SIZE_DEFAULT;
    if (seg_size < WAL_SEGMENT_SIZE_MIN || seg_size > UINT32_MAX) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "wal: segment size %" PRIu64 " out of range", seg_size);
        return BACKEND_EWAL_INVAL;
    }
    w = metcd_calloc(1, sizeof *w);
    if (!w) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "wal: out of memory");
        return BACKEND_EWAL_NOMEM;
    }
    w->dirfd = w->cur_fd = w->efd = -1;
    w->seg_size = seg_size;
    w->queue_limit = opt && opt->queue_limit ? opt->queue_limit : WAL_QUEUE_LIMIT_DEFAULT;
    w->base = opt ? opt->base : NULL;
    w->dir = metcd_strdup(dir);
    if (!w->dir) {
        rc = set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
        goto err;
    }
    if ((rc = open_dir(w)) != 0 || (rc = list_segments(w)) != 0)
        goto err;
    if (w->nsegs == 0) {
        char msg[sizeof w->errmsg];
        if ((rc = segs_reserve(w, 1)) != 0)
            goto err;
        rc = make_segment(w, 0, 0, 0, &w->cur_fd, &w->cur_off, &w->last_crc, msg, sizeof msg);
        if (rc) {
            memcpy(w->errmsg, msg, sizeof msg);
            goto err;
        }
        w->segs[0] = (struct seg){.seq = 0, .first = 0, .end = w->cur_off};
        w->nsegs = 1;
        w->cur_cap = w->seg_size;
        w->cur_zeroed = w->seg_size < ZERO_AHEAD ? w->seg_size : ZERO_AHEAD;
        w->cur_seq = 0;
        w->cur_first = 0;
    } else {
        for (size_t i = 0; i < w->nsegs; i++)
            if ((rc = scan_segment(w, i)) != 0)
                goto err;
    }
    w->appended_index = w->last_index;
    w->st.segments = w->nsegs;
    if ((rc = start_thread(w)) != 0)
        goto err;
    *out = w;
    return 0;

err:
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "%s", w->errmsg);
    wal_free(w);
    return rc;
}

void wal_close(wal *w)
{
    if (w)
        wal_free(w);
}

/* ---- appending ---------------------------------------------------------------- */

/* Validates and encodes one append into a new request. */
static int make_req(wal *w, const wal_write *wr, int sync, struct req **out)
{
    size_t len = 0;
    size_t max = (size_t)(w->seg_size - SEG_HDR_BUDGET);

    if (wr->metadata) {
        if (wr->metadata_len > WAL_METADATA_MAX)
            return set_err(w, BACKEND_EWAL_INVAL, "wal: metadata of %zu bytes (at most %u)",
                           wr->metadata_len, WAL_METADATA_MAX);
        len += REC_HDR + wr->metadata_len;
    }
    if (wr->snapshot)
        len += REC_HDR + SNAPSHOT_LEN;
    if (wr->hardstate)
        len += REC_HDR + HARDSTATE_LEN;
    if (wr->n_entries && !wr->entries)
        return set_err(w, BACKEND_EWAL_INVAL, "wal: entries missing");
    for (size_t i = 0; i < wr->n_entries; i++) {
        const wal_entry *e = &wr->entries[i];
        if (e->index != wr->entries[0].index + i)
            return set_err(w, BACKEND_EWAL_INVAL,
                           "wal: entry %" PRIu64 " does not follow %" PRIu64 " in one append",
                           e->index, wr->entries[0].index + i - 1);
        if (e->len && !e->data)
            return set_err(w, BACKEND_EWAL_INVAL, "wal: entry %" PRIu64 " has no data", e->index);
        if (e->len > max || len > max)
            return set_err(w, BACKEND_EWAL_TOOBIG, "wal: append larger than a segment holds");
        len += REC_HDR + ENTRY_FIXED_LEN + e->len;
    }
    if (len > max)
        return set_err(w, BACKEND_EWAL_TOOBIG, "wal: append of %zu bytes, a segment holds %zu", len,
                       max);
    size_t charge = sync ? 0 : sizeof(struct req) + len;
    if (charge > w->queue_limit)
        return set_err(w, BACKEND_EWAL_TOOBIG, "wal: append of %zu bytes, the queue holds %zu",
                       charge, w->queue_limit);

    struct req *r = metcd_calloc(1, sizeof *r + len);
    if (!r)
        return set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
    if (wr->metadata) {
        r->meta = metcd_memdup(wr->metadata, wr->metadata_len);
        if (!r->meta) {
            metcd_free(r);
            return set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
        }
        r->meta_len = wr->metadata_len;
        r->has_meta = 1;
    }
    r->len = len;
    r->charge = charge;
    r->sync = sync;

    unsigned char *p = r->buf;
    if (wr->metadata) {
        r->last_crc = rec_header(p, REC_METADATA, wr->metadata, wr->metadata_len, NULL, 0);
        if (wr->metadata_len)
            memcpy(p + REC_HDR, wr->metadata, wr->metadata_len);
        p += REC_HDR + wr->metadata_len;
        r->n_records++;
    }
    if (wr->snapshot) {
        put_le64(p + REC_HDR, wr->snapshot->index);
        put_le64(p + REC_HDR + 8, wr->snapshot->term);
        r->last_crc = rec_header(p, REC_SNAPSHOT, p + REC_HDR, SNAPSHOT_LEN, NULL, 0);
        p += REC_HDR + SNAPSHOT_LEN;
        r->n_records++;
        r->snap = *wr->snapshot;
        r->has_snap = 1;
    }
    for (size_t i = 0; i < wr->n_entries; i++) {
        const wal_entry *e = &wr->entries[i];
        put_le64(p + REC_HDR, e->index);
        put_le64(p + REC_HDR + 8, e->term);
        if (e->len)
            memcpy(p + REC_HDR + ENTRY_FIXED_LEN, e->data, e->len);
        r->last_crc = rec_header(p, REC_ENTRY, p + REC_HDR, ENTRY_FIXED_LEN + e->len, NULL, 0);
        p += REC_HDR + ENTRY_FIXED_LEN + e->len;
        r->n_records++;
    }
    if (wr->n_entries) {
        r->has_entries = 1;
        r->last_index = wr->entries[wr->n_entries - 1].index;
    }
    if (wr->hardstate) {
        put_le64(p + REC_HDR, wr->hardstate->term);
        put_le64(p + REC_HDR + 8, wr->hardstate->vote);
        put_le64(p + REC_HDR + 16, wr->hardstate->commit);
        r->last_crc = rec_header(p, REC_HARDSTATE, p + REC_HDR, HARDSTATE_LEN, NULL, 0);
        p += REC_HDR + HARDSTATE_LEN;
        r->n_records++;
        r->hs = *wr->hardstate;
        r->has_hs = 1;
    }
    *out = r;
    return 0;
}

/* Hands r to the WAL thread; on failure r is untouched (caller frees). */
static int enqueue(wal *w, struct req *r)
{
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    if (w->stop) {
        rc = set_err(w, BACKEND_EWAL_CLOSED, "wal: append during wal_close");
        goto out;
    }
    if (w->failed) {
        memcpy(w->errmsg, w->fail_msg, sizeof w->fail_msg);
        rc = w->failed;
        goto out;
    }
    if (r->charge && w->bytes + r->charge > w->queue_limit) {
        w->st.queue_full++;
        rc = set_err(w, BACKEND_EWAL_FULL, "wal: append queue full (%zu of %zu bytes)", w->bytes,
                     w->queue_limit);
        goto out;
    }
    /* every request may cause one cut: keep room so the thread never
       allocates */
    if ((rc = segs_reserve(w, w->nsegs + w->inflight + 1)) != 0)
        goto out;
    w->bytes += r->charge;
    w->st.queued_bytes = w->bytes;
    w->inflight++;
    w->st.appends++;
    if (w->q_tail)
        w->q_tail->next = r;
    else
        w->q_head = r;
    w->q_tail = r;
    if (r->sync)
        pthread_cond_signal(&w->work);
out:
    pthread_mutex_unlock(&w->lock);
    return rc;
}

int wal_append(wal *w, const wal_write *wr, wal_done_fn done, void *arg)
{
    struct req *r;
    if (!w || !wr || !done)
        return BACKEND_EWAL_INVAL;
    if (!w->base)
        return set_err(w, BACKEND_EWAL_INVAL, "wal: wal_append needs an event_base");
    int rc = make_req(w, wr, 0, &r);
    if (rc)
        return rc;
    r->done = done;
    r->arg = arg;
    if ((rc = enqueue(w, r)) != 0) {
        req_free(r);
        return rc;
    }
    if (!w->kick_pending) {
        w->kick_pending = 1;
        event_active(w->kick, EV_TIMEOUT, 1);
    }
    if (wr->n_entries) /* r is the thread's now: use wr */
        w->appended_index = wr->entries[wr->n_entries - 1].index;
    return 0;
}

int wal_append_sync(wal *w, const wal_write *wr)
{
    struct req *r;
    if (!w || !wr)
        return BACKEND_EWAL_INVAL;
    int rc = make_req(w, wr, 1, &r);
    if (rc)
        return rc;
    if ((rc = enqueue(w, r)) != 0) {
        req_free(r);
        return rc;
    }
    pthread_mutex_lock(&w->lock);
    while (!r->completed)
        pthread_cond_wait(&w->done_cond, &w->lock);
    rc = r->status;
    if (rc)
        memcpy(w->errmsg, w->fail_msg, sizeof w->fail_msg);
    pthread_mutex_unlock(&w->lock);
    if (r->has_entries)
        w->appended_index = r->last_index;
    req_free(r);
    return rc;
}

/* ---- replay -------------------------------------------------------------------- */

struct replay_ent {
    uint64_t index, term;
    size_t off, len; /* data in the arena */
};

struct replay {
    wal_replay_result pub; /* first: wal_replay_free casts back */
    void *meta;
    unsigned char *arena;
    size_t alen, acap;
    struct replay_ent *ents;
    size_t n, cap;
    int have_last;
    uint64_t last; /* index of the last entry seen, or of a snapshot that reset the log */
};

static void replay_truncate(struct replay *rp, uint64_t from_index)
{
    if (rp->n == 0 || from_index > rp->ents[rp->n - 1].index)
        return;
    size_t pos = from_index <= rp->ents[0].index ? 0 : (size_t)(from_index - rp->ents[0].index);
    rp->alen = rp->ents[pos].off;
    rp->n = pos;
}

/* Drops the gathered entries with index <= upto (their data stays in the
 * arena, unreferenced). */
static void replay_truncate_below(struct replay *rp, uint64_t upto)
{
    size_t k = 0;
    while (k < rp->n && rp->ents[k].index <= upto)
        k++;
    memmove(rp->ents, rp->ents + k, (rp->n - k) * sizeof *rp->ents);
    rp->n -= k;
}

static int replay_add(wal *w, struct replay *rp, uint64_t index, uint64_t term,
                      const unsigned char *data, size_t len)
{
    if (rp->n == rp->cap) {
        size_t cap = rp->cap ? rp->cap * 2 : 256;
        struct replay_ent *e = metcd_realloc(rp->ents, cap * sizeof *e);
        if (!e)
            return set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
        rp->ents = e;
        rp->cap = cap;
    }
    if (rp->alen + len > rp->acap) {
        size_t cap = rp->acap ? rp->acap : 4096;
        while (cap < rp->alen + len)
            cap *= 2;
        unsigned char *a = metcd_realloc(rp->arena, cap);
        if (!a)
            return set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
        rp->arena = a;
        rp->acap = cap;
    }
    if (len)
        memcpy(rp->arena + rp->alen, data, len);
    rp->ents[rp->n++] = (struct replay_ent){index, term, rp->alen, len};
    rp->alen += len;
    return 0;
}

/* Applies one verified record to the replay state (rules in wal.h).
 * header_copy: the record is one of the copies that follow a segment's
 * header, which restate the state and are no new event. */
static int replay_record(wal *w, struct replay *rp, const struct rec *r, uint64_t from,
                         int header_copy, const char *name, uint64_t off)
{
    switch (r->type) {
    case REC_METADATA: {
        void *m = metcd_memdup(r->payload, r->len);
        if (!m)
            return set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
        metcd_free(rp->meta);
        rp->meta = m;
        rp->pub.metadata = m;
        rp->pub.metadata_len = r->len;
        return 0;
    }
    case REC_HARDSTATE:
        rp->pub.hardstate = (wal_hardstate){get_le64(r->payload), get_le64(r->payload + 8),
                                            get_le64(r->payload + 16)};
        rp->pub.has_hardstate = 1;
        return 0;
    case REC_SNAPSHOT: {
        wal_snapshot s = {get_le64(r->payload), get_le64(r->payload + 8)};
        rp->pub.snapshot = s;
        rp->pub.has_snapshot = 1;
        if (header_copy)
            return 0; /* the marker was applied where it was first written */
        /* without an entry seen yet (a new log, or reading from past the
           segments before) nothing is gathered and where the log ended is
           unknown: the marker changes nothing */
        int reset = rp->have_last && s.index > rp->last;
        if (!reset && rp->n && s.index >= rp->ents[0].index &&
            s.index <= rp->ents[rp->n - 1].index)
            reset = rp->ents[s.index - rp->ents[0].index].term != s.term;
        if (reset) {
            rp->n = rp->alen = 0;
            rp->last = s.index;
            rp->have_last = 1;
        }
        return 0;
    }
    case REC_ENTRY: {
        uint64_t index = get_le64(r->payload), term = get_le64(r->payload + 8);
        if (rp->have_last && index > rp->last + 1) {
            char why[96];
            snprintf(why, sizeof why, "entry %" PRIu64 " after entry %" PRIu64 " (a gap)", index,
                     rp->last);
            return corrupt(w, name, off, why);
        }
        replay_truncate(rp, index);
        rp->last = index;
        rp->have_last = 1;
        if (index <= from)
            return 0;
        return replay_add(w, rp, index, term, r->payload + ENTRY_FIXED_LEN,
                          r->len - ENTRY_FIXED_LEN);
    }
    default:
        return 0;
    }
}

static int replay_segment(wal *w, struct replay *rp, const struct seg *s, uint64_t from)
{
    char name[NAME_LEN + 1];
    int rc = 0;

    if (s->end == 0)
        return 0;
    seg_name(name, s->seq, s->first, 0);
    int fd = openat(w->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys_err(w, "open", name);
    const unsigned char *map = mmap(NULL, (size_t)s->end, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        rc = sys_err(w, "mmap", name);
        goto out_fd;
    }
    /* the records between the crc record at offset 0 and the next crc
       record (which starts the first batch) are the header's copies */
    int header = 0;
    for (uint64_t off = 0; off < s->end;) {
        struct rec r;
        const char *why = "zero record header";
        if (rec_parse(map, s->end, off, &r, &why) != 1) {
            rc = corrupt(w, name, off, why);
            break;
        }
        if (r.type == REC_CRC)
            header = off == 0;
        else if ((rc = replay_record(w, rp, &r, from, header, name, off)) != 0)
            break;
        off += REC_HDR + r.len;
    }
    munmap((void *)map, (size_t)s->end);
out_fd:
    close(fd);
    return rc;
}

int wal_replay(wal *w, uint64_t from, wal_replay_result **out)
{
    int rc;
    if (!w || !out)
        return BACKEND_EWAL_INVAL;
    *out = NULL;

    struct replay *rp = metcd_calloc(1, sizeof *rp);
    if (!rp)
        return set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
    /* a copy of the segment list as durable now: the WAL thread may cut */
    pthread_mutex_lock(&w->lock);
    size_t n = w->nsegs;
    struct seg *segs = metcd_malloc(n * sizeof *segs);
    if (segs)
        memcpy(segs, w->segs, n * sizeof *segs);
    pthread_mutex_unlock(&w->lock);
    if (!segs) {
        rc = set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
        goto err;
    }

    int to_snapshot = from == WAL_FROM_SNAPSHOT;
    uint64_t eff_from = to_snapshot ? 0 : from;
    size_t i = 0;
    /* segments wholly at or below `from` hold nothing to return, and the
       first segment read repeats their metadata, snapshot and hard state */
    if (!to_snapshot)
        while (i + 1 < n && (!segs[i].has_entries || segs[i].max_index <= from))
            i++;
    for (; i < n; i++)
        if ((rc = replay_segment(w, rp, &segs[i], eff_from)) != 0)
            goto err;
    metcd_free(segs);
    segs = NULL;
    if (to_snapshot && rp->pub.has_snapshot)
        replay_truncate_below(rp, rp->pub.snapshot.index);

    if (rp->n) {
        rp->pub.entries = metcd_malloc(rp->n * sizeof *rp->pub.entries);
        if (!rp->pub.entries) {
            rc = set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
            goto err;
        }
        for (size_t k = 0; k < rp->n; k++)
            rp->pub.entries[k] = (wal_entry){rp->ents[k].index, rp->ents[k].term,
                                             rp->arena + rp->ents[k].off, rp->ents[k].len};
        rp->pub.n_entries = rp->n;
    }
    metcd_free(rp->ents);
    rp->ents = NULL;
    *out = &rp->pub;
    return 0;

err:
    metcd_free(segs);
    wal_replay_free(&rp->pub);
    return rc;
}

void wal_replay_free(wal_replay_result *res)
{
    if (!res)
        return;
    struct replay *rp = (struct replay *)res;
    metcd_free(rp->pub.entries);
    metcd_free(rp->ents);
    metcd_free(rp->arena);
    metcd_free(rp->meta);
    metcd_free(rp);
}

/* ---- release ---------------------------------------------------------------------- */

int wal_release(wal *w, uint64_t index)
{
    if (!w)
        return BACKEND_EWAL_INVAL;
    pthread_mutex_lock(&w->lock);
    size_t k = 0;
    while (k + 1 < w->nsegs && (!w->segs[k].has_entries || w->segs[k].max_index < index))
        k++;
    pthread_mutex_unlock(&w->lock);

    /* only this thread removes segments, and never the last one: the first
       k entries stay put while the WAL thread may append behind them */
    int rc = 0;
    size_t done = 0;
    for (; done < k; done++) {
        char name[NAME_LEN + 1];
        seg_name(name, w->segs[done].seq, w->segs[done].first, 0);
        if (unlinkat(w->dirfd, name, 0) < 0 && errno != ENOENT) {
            rc = sys_err(w, "unlink", name);
            break;
        }
    }
    if (done && fsync(w->dirfd) < 0 && rc == 0)
        rc = sys_err(w, "fsync", NULL);
    pthread_mutex_lock(&w->lock);
    memmove(w->segs, w->segs + done, (w->nsegs - done) * sizeof *w->segs);
    w->nsegs -= done;
    w->st.released += done;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

/* ---- introspection ------------------------------------------------------------------ */

void wal_get_stats(wal *w, wal_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->st;
    out->queued_bytes = w->bytes;
    out->segments = w->nsegs;
    pthread_mutex_unlock(&w->lock);
}

uint64_t wal_last_index(wal *w)
{
    return w->appended_index;
}

const char *wal_errmsg(const wal *w)
{
    return w ? w->errmsg : "";
}

const char *wal_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case BACKEND_EWAL_NOMEM:
        return "wal: out of memory";
    case BACKEND_EWAL_IO:
        return "wal: i/o error";
    case BACKEND_EWAL_INVAL:
        return "wal: invalid argument";
    case BACKEND_EWAL_LOCKED:
        return "wal: directory locked by another process";
    case BACKEND_EWAL_CORRUPT:
        return "wal: corrupt record";
    case BACKEND_EWAL_FULL:
        return "wal: append queue full";
    case BACKEND_EWAL_TOOBIG:
        return "wal: append too large";
    case BACKEND_EWAL_FAILED:
        return "wal: an earlier write failed; reopen the wal";
    case BACKEND_EWAL_CLOSED:
        return "wal: closing";
    default:
        return "wal: unknown error";
    }
}
