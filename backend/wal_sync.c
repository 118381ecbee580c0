/* backend/wal_sync.c - appends and the WAL thread: requests queued from
 * the loop, batches written with one fdatasync each (group commit), segment
 * cuts, and completions handed back to the loop in order. */
#include "backend/wal_int.h"

#include "backend/crc32c.h"
#include "common/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    int b = backend_latency_bucket(t);
    if (b < BACKEND_LATENCY_BUCKETS)
        w->st.sync_hist[b]++;
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
    if (wal_write_zeros(w->cur_fd, from, to) < 0)
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

    int rc = wal_make_segment(w, seq, first, w->last_crc, &fd, &hdr_len, &crc, msg, msglen);
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
    w->last_crc = wal_rec_header(rec, REC_CRC, pl, CRC_LEN, NULL, 0);
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
            if (niov && wal_writev_all(w->cur_fd, iov, niov, start) < 0)
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
    if (niov && wal_writev_all(w->cur_fd, iov, niov, start) < 0)
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

void *wal_thread_main(void *arg)
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
        /* the loop is woken when the delivery list becomes non-empty; while
           it is non-empty a wake-up is pending and the loop takes the whole
           list, these included */
        int wake_loop = 0, wake_sync = 0, was_empty = w->d_head == NULL;
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
        if (wake_loop && was_empty) {
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
void wal_deliver(wal *w)
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
void wal_on_kick(evutil_socket_t fd, short what, void *arg)
{
    wal *w = arg;
    (void)fd;
    (void)what;
    w->kick_pending = 0;
    pthread_mutex_lock(&w->lock);
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->lock);
}

void wal_on_synced(evutil_socket_t fd, short what, void *arg)
{
    uint64_t v;
    (void)what;
    ssize_t k = read(fd, &v, sizeof v);
    (void)k; /* EAGAIN: a concurrent wake-up was already consumed */
    wal_deliver(arg);
}

/* ---- appending ---------------------------------------------------------------- */

/* Validates and encodes one append into a new request. */
static int make_req(wal *w, const wal_write *wr, int sync, struct req **out)
{
    size_t len = 0;
    size_t max = (size_t)(w->seg_size - SEG_HDR_BUDGET);

    if (wr->metadata) {
        if (wr->metadata_len > WAL_METADATA_MAX)
            return wal_set_err(w, BACKEND_EWAL_INVAL, "wal: metadata of %zu bytes (at most %u)",
                               wr->metadata_len, WAL_METADATA_MAX);
        len += REC_HDR + wr->metadata_len;
    }
    if (wr->snapshot)
        len += REC_HDR + SNAPSHOT_LEN;
    if (wr->hardstate)
        len += REC_HDR + HARDSTATE_LEN;
    if (wr->n_entries && !wr->entries)
        return wal_set_err(w, BACKEND_EWAL_INVAL, "wal: entries missing");
    for (size_t i = 0; i < wr->n_entries; i++) {
        const wal_entry *e = &wr->entries[i];
        if (e->index != wr->entries[0].index + i)
            return wal_set_err(w, BACKEND_EWAL_INVAL,
                               "wal: entry %" PRIu64 " does not follow %" PRIu64 " in one append",
                               e->index, wr->entries[0].index + i - 1);
        if (e->len && !e->data)
            return wal_set_err(w, BACKEND_EWAL_INVAL, "wal: entry %" PRIu64 " has no data",
                               e->index);
        if (e->len > max || len > max)
            return wal_set_err(w, BACKEND_EWAL_TOOBIG, "wal: append larger than a segment holds");
        len += REC_HDR + ENTRY_FIXED_LEN + e->len;
    }
    if (len > max)
        return wal_set_err(w, BACKEND_EWAL_TOOBIG, "wal: append of %zu bytes, a segment holds %zu",
                           len, max);
    size_t charge = sync ? 0 : sizeof(struct req) + len;
    if (charge > w->queue_limit)
        return wal_set_err(w, BACKEND_EWAL_TOOBIG, "wal: append of %zu bytes, the queue holds %zu",
                           charge, w->queue_limit);

    struct req *r = metcd_calloc(1, sizeof *r + len);
    if (!r)
        return wal_set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
    if (wr->metadata) {
        r->meta = metcd_memdup(wr->metadata, wr->metadata_len);
        if (!r->meta) {
            metcd_free(r);
            return wal_set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
        }
        r->meta_len = wr->metadata_len;
        r->has_meta = 1;
    }
    r->len = len;
    r->charge = charge;
    r->sync = sync;

    unsigned char *p = r->buf;
    if (wr->metadata) {
        r->last_crc = wal_rec_header(p, REC_METADATA, wr->metadata, wr->metadata_len, NULL, 0);
        if (wr->metadata_len)
            memcpy(p + REC_HDR, wr->metadata, wr->metadata_len);
        p += REC_HDR + wr->metadata_len;
        r->n_records++;
    }
    if (wr->snapshot) {
        put_le64(p + REC_HDR, wr->snapshot->index);
        put_le64(p + REC_HDR + 8, wr->snapshot->term);
        r->last_crc = wal_rec_header(p, REC_SNAPSHOT, p + REC_HDR, SNAPSHOT_LEN, NULL, 0);
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
        r->last_crc = wal_rec_header(p, REC_ENTRY, p + REC_HDR, ENTRY_FIXED_LEN + e->len, NULL, 0);
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
        r->last_crc = wal_rec_header(p, REC_HARDSTATE, p + REC_HDR, HARDSTATE_LEN, NULL, 0);
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
        rc = wal_set_err(w, BACKEND_EWAL_CLOSED, "wal: append during wal_close");
        goto out;
    }
    if (w->failed) {
        memcpy(w->errmsg, w->fail_msg, sizeof w->fail_msg);
        rc = w->failed;
        goto out;
    }
    if (r->charge && w->bytes + r->charge > w->queue_limit) {
        w->st.queue_full++;
        rc = wal_set_err(w, BACKEND_EWAL_FULL, "wal: append queue full (%zu of %zu bytes)",
                         w->bytes, w->queue_limit);
        goto out;
    }
    /* every request may cause one cut: keep room so the thread never
       allocates */
    if ((rc = wal_segs_reserve(w, w->nsegs + w->inflight + 1)) != 0)
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
        return wal_set_err(w, BACKEND_EWAL_INVAL, "wal: wal_append needs an event_base");
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
