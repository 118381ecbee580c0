/* backend/wal_segment.c - the WAL's record codec and segment files:
 * encoding and verifying records, telling a torn tail from corruption,
 * segment headers, making a segment (temp file, preallocate, header,
 * fdatasync, rename, directory fsync), and the error helpers. */
#include "backend/wal_int.h"

#include "backend/crc32c.h"
#include "common/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Offset one past the last non-zero byte of p[0, n), 0 if all zero. */
size_t wal_data_end(const unsigned char *p, size_t n)
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

void wal_seg_name(char *buf, uint64_t seq, uint64_t first, int tmp)
{
    snprintf(buf, NAME_LEN + sizeof TMP_SUFFIX, "%016" PRIx64 "-%016" PRIx64 ".wal%s", seq, first,
             tmp ? TMP_SUFFIX : "");
}

int wal_set_err(wal *w, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->errmsg, sizeof w->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/* An I/O failure of `what` on file `name` of the WAL directory (NULL: the
 * directory itself), with errno's text. */
int wal_sys_err(wal *w, const char *what, const char *name)
{
    int e = errno;
    return wal_set_err(w, BACKEND_EWAL_IO, "wal: %s %s%s%s: %s", what, w->dir, name ? "/" : "",
                       name ? name : "", strerror(e));
}

int wal_corrupt(wal *w, const char *name, uint64_t off, const char *why)
{
    return wal_set_err(w, BACKEND_EWAL_CORRUPT, "wal: %s in %s/%s at offset %" PRIu64, why, w->dir,
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

int wal_writev_all(int fd, struct iovec *iov, int n, uint64_t off)
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
int wal_write_zeros(int fd, uint64_t from, uint64_t to)
{
    while (from < to) {
        size_t n = to - from < sizeof zeros ? (size_t)(to - from) : sizeof zeros;
        if (write_all(fd, zeros, n, from) < 0)
            return -1;
        from += n;
    }
    return 0;
}

int wal_prealloc(int fd, uint64_t size)
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
uint32_t wal_rec_header(unsigned char *hdr, uint8_t type, const void *a, size_t alen, const void *b,
                        size_t blen)
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

/* Parses the record at m[off] of a file of `size` bytes. 1: a record that
 * verifies; 0: nine zero bytes (or a zero remainder shorter than a header);
 * -1: a bad record, *why says what is wrong. */
int wal_rec_parse(const unsigned char *m, uint64_t size, uint64_t off, struct rec *r,
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
int wal_is_torn(const unsigned char *m, uint64_t size, uint64_t off)
{
    uint64_t end = wal_data_end(m, (size_t)size), next = 0;
    for (uint64_t p = off + 1; p < end; p++) {
        struct rec r;
        const char *why;
        if (wal_rec_parse(m, size, p, &r, &why) != 1)
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

void wal_build_header(const wal *w, struct seg_header *h, uint64_t seq, uint64_t first,
                      uint32_t prev_crc)
{
    unsigned char *pl = h->crc_rec + REC_HDR;
    put_le64(pl, seq);
    put_le64(pl + 8, first);
    put_le32(pl + 16, prev_crc);
    h->last_crc = wal_rec_header(h->crc_rec, REC_CRC, pl, CRC_LEN, NULL, 0);
    h->iov[0] = (struct iovec){h->crc_rec, sizeof h->crc_rec};
    h->n = 1;
    h->len = sizeof h->crc_rec;
    if (w->has_meta) {
        h->last_crc = wal_rec_header(h->meta_hdr, REC_METADATA, w->meta, w->meta_len, NULL, 0);
        h->iov[h->n++] = (struct iovec){h->meta_hdr, REC_HDR};
        if (w->meta_len)
            h->iov[h->n++] = (struct iovec){w->meta, w->meta_len};
        h->len += REC_HDR + w->meta_len;
    }
    if (w->has_snap) {
        pl = h->snap_rec + REC_HDR;
        put_le64(pl, w->snap.index);
        put_le64(pl + 8, w->snap.term);
        h->last_crc = wal_rec_header(h->snap_rec, REC_SNAPSHOT, pl, SNAPSHOT_LEN, NULL, 0);
        h->iov[h->n++] = (struct iovec){h->snap_rec, sizeof h->snap_rec};
        h->len += sizeof h->snap_rec;
    }
    if (w->has_hs) {
        pl = h->hs_rec + REC_HDR;
        put_le64(pl, w->hs.term);
        put_le64(pl + 8, w->hs.vote);
        put_le64(pl + 16, w->hs.commit);
        h->last_crc = wal_rec_header(h->hs_rec, REC_HARDSTATE, pl, HARDSTATE_LEN, NULL, 0);
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
int wal_make_segment(wal *w, uint64_t seq, uint64_t first, uint32_t prev_crc, int *fd_out,
                     uint64_t *hdr_len, uint32_t *last_crc, char *msg, size_t msglen)
{
    char tmp[NAME_LEN + sizeof TMP_SUFFIX], name[NAME_LEN + 1];
    struct seg_header h;
    const char *what;

    wal_seg_name(tmp, seq, first, 1);
    wal_seg_name(name, seq, first, 0);
    int fd = openat(w->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        what = "create";
        goto err;
    }
    what = "preallocate";
    if (wal_prealloc(fd, w->seg_size) < 0)
        goto err_fd;
    wal_build_header(w, &h, seq, first, prev_crc);
    what = "write";
    if (wal_writev_all(fd, h.iov, h.n, 0) < 0)
        goto err_fd;
    if (wal_write_zeros(fd, h.len, w->seg_size < ZERO_AHEAD ? w->seg_size : ZERO_AHEAD) < 0)
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

/* Makes room for n segments in w->segs. */
int wal_segs_reserve(wal *w, size_t n)
{
    if (n <= w->segs_cap)
        return 0;
    size_t cap = w->segs_cap ? w->segs_cap : 8;
    while (cap < n)
        cap *= 2;
    struct seg *s = metcd_realloc(w->segs, cap * sizeof *s);
    if (!s)
        return wal_set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
    w->segs = s;
    w->segs_cap = cap;
    return 0;
}
