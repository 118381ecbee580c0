/* backend/wal.c - the write-ahead log: opening (listing segments,
 * verifying every record, repairing a torn tail), closing, releasing old
 * segments, stats and errors. Appends and the WAL thread are in
 * wal_sync.c, replay in wal_replay.c, records and segment files in
 * wal_segment.c; internals shared between them in wal_int.h. Contracts and
 * the on-disk format are in backend/wal.h.
 */
#include "backend/wal_int.h"

#include "backend/crc32c.h"
#include "common/mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ---- opening: listing, verifying, repairing -------------------------------- */

static int mkdir_p(wal *w, const char *dir)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return wal_set_err(w, BACKEND_EWAL_INVAL, "wal: bad directory name");
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST) {
            int e = errno;
            return wal_set_err(w, BACKEND_EWAL_IO, "wal: mkdir %s: %s", path, strerror(e));
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

/* Reads the directory: deletes leftover temporary files, collects the
 * segments sorted by sequence and checks the sequence has no gap. */
static int list_segments(wal *w)
{
    int rc = 0;
    int fd = openat(w->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return wal_sys_err(w, "open", NULL);
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return wal_sys_err(w, "opendir", NULL);
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
        if ((rc = wal_segs_reserve(w, w->nsegs + 1)) != 0)
            goto out;
        w->segs[w->nsegs++] = (struct seg){.seq = seq, .first = first};
    }
    if (w->nsegs)
        qsort(w->segs, w->nsegs, sizeof *w->segs, seg_cmp);
    for (size_t i = 1; i < w->nsegs; i++) {
        if (w->segs[i].seq != w->segs[i - 1].seq + 1) {
            char a[NAME_LEN + 1], b[NAME_LEN + 1];
            wal_seg_name(a, w->segs[i - 1].seq, w->segs[i - 1].first, 0);
            wal_seg_name(b, w->segs[i].seq, w->segs[i].first, 0);
            rc = wal_set_err(w, BACKEND_EWAL_CORRUPT,
                             "wal: segment sequence gap between %s/%s and %s", w->dir, a, b);
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
    if (wal_write_zeros(fd, from, to) < 0)
        return -1;
    return fdatasync(fd);
}

/* Keeps a copy of the latest metadata payload for segment headers. */
static int keep_meta(wal *w, const void *p, size_t n)
{
    void *m = metcd_memdup(p, n);
    if (!m)
        return wal_set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
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

    wal_seg_name(name, s->seq, s->first, 0);
    int fd = openat(w->dirfd, name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return wal_sys_err(w, "open", name);
    if (fstat(fd, &sb) < 0) {
        rc = wal_sys_err(w, "stat", name);
        goto out_fd;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size) {
        map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            map = NULL;
            rc = wal_sys_err(w, "mmap", name);
            goto out_fd;
        }
    }
    for (;;) {
        struct rec r;
        const char *why = NULL;
        int k = off < size ? wal_rec_parse(map, size, off, &r, &why) : 0;
        if (k == 0) {
            if (off >= size || all_zero(map + off, (size_t)(size - off)))
                break; /* clean end of the data */
            why = "zero record header followed by data";
            k = -1;
        }
        if (k < 0) {
            if (!last || !wal_is_torn(map, size, off)) {
                rc = wal_corrupt(w, name, off, why);
                goto out_map;
            }
            /* torn tail: a batch whose fdatasync never returned */
            uint64_t end = wal_data_end(map, (size_t)size);
            if (zero_range(fd, off, end) < 0) {
                rc = wal_sys_err(w, "zero torn tail of", name);
                goto out_map;
            }
            w->st.torn_bytes += end - off;
            break;
        }
        if (off == 0 && r.type != REC_CRC) {
            rc = wal_corrupt(w, name, off, "segment does not start with a crc record");
            goto out_map;
        }
        switch (r.type) {
        case REC_CRC: {
            uint64_t seq = get_le64(r.payload), first = get_le64(r.payload + 8);
            uint32_t prev = get_le32(r.payload + 16);
            if (seq != s->seq || first != s->first) {
                rc = wal_corrupt(w, name, off, "segment header disagrees with the file name");
                goto out_map;
            }
            if ((off > 0 || i > 0) && prev != w->last_crc) {
                rc = wal_corrupt(w, name, off,
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
            rc = wal_corrupt(w, name, 0, "segment has no records");
            goto out_map;
        }
        uint64_t cap = size > w->seg_size ? size : w->seg_size;
        struct seg_header h;
        wal_build_header(w, &h, s->seq, s->first, i > 0 ? w->last_crc : 0);
        if (wal_prealloc(fd, cap) < 0 || wal_writev_all(fd, h.iov, h.n, 0) < 0 ||
            fdatasync(fd) < 0) {
            rc = wal_sys_err(w, "rewrite header of", name);
            goto out_map;
        }
        off = h.len;
        w->last_crc = h.last_crc;
    }
    s->end = off;
    if (last) {
        uint64_t cap = size > w->seg_size ? size : w->seg_size;
        if (cap > size && wal_prealloc(fd, cap) < 0) {
            rc = wal_sys_err(w, "preallocate", name);
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
        wal_deliver(w);
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
        return wal_sys_err(w, "open", NULL);
    if (flock(w->dirfd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            return wal_set_err(w, BACKEND_EWAL_LOCKED, "wal: %s is locked by another wal_open",
                               w->dir);
        return wal_sys_err(w, "flock", NULL);
    }
    return 0;
}

static int start_thread(wal *w)
{
    if (pthread_mutex_init(&w->lock, NULL))
        return wal_set_err(w, BACKEND_EWAL_NOMEM, "wal: pthread_mutex_init failed");
    if (pthread_cond_init(&w->work, NULL)) {
        pthread_mutex_destroy(&w->lock);
        return wal_set_err(w, BACKEND_EWAL_NOMEM, "wal: pthread_cond_init failed");
    }
    if (pthread_cond_init(&w->done_cond, NULL)) {
        pthread_cond_destroy(&w->work);
        pthread_mutex_destroy(&w->lock);
        return wal_set_err(w, BACKEND_EWAL_NOMEM, "wal: pthread_cond_init failed");
    }
    w->sync_init = 1;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0)
        return wal_sys_err(w, "eventfd for", NULL);
    if (w->base) {
        w->ev = event_new(w->base, w->efd, EV_READ | EV_PERSIST, wal_on_synced, w);
        if (!w->ev)
            return wal_set_err(w, BACKEND_EWAL_NOMEM, "wal: event_new failed");
        if (event_add(w->ev, NULL) < 0)
            return wal_set_err(w, BACKEND_EWAL_IO, "wal: event_add failed");
        w->kick = event_new(w->base, -1, 0, wal_on_kick, w);
        if (!w->kick)
            return wal_set_err(w, BACKEND_EWAL_NOMEM, "wal: event_new failed");
    }
    int e = pthread_create(&w->thread, NULL, wal_thread_main, w);
    if (e)
        return wal_set_err(w, BACKEND_EWAL_IO, "wal: pthread_create: %s", strerror(e));
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
        rc = wal_set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
        goto err;
    }
    for (size_t n = strlen(w->dir); n > 1 && w->dir[n - 1] == '/'; n--)
        w->dir[n - 1] = '\0'; /* "member/wal/" names files "member/wal/x" */
    if ((rc = open_dir(w)) != 0 || (rc = list_segments(w)) != 0)
        goto err;
    if (w->nsegs == 0) {
        char msg[sizeof w->errmsg];
        if ((rc = wal_segs_reserve(w, 1)) != 0)
            goto err;
        rc = wal_make_segment(w, 0, 0, 0, &w->cur_fd, &w->cur_off, &w->last_crc, msg, sizeof msg);
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
        wal_seg_name(name, w->segs[done].seq, w->segs[done].first, 0);
        if (unlinkat(w->dirfd, name, 0) < 0 && errno != ENOENT) {
            rc = wal_sys_err(w, "unlink", name);
            break;
        }
    }
    if (done && fsync(w->dirfd) < 0 && rc == 0)
        rc = wal_sys_err(w, "fsync", NULL);
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
