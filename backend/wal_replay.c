/* backend/wal_replay.c - replay: the latest metadata, hard state and
 * snapshot marker, and the effective log after an index (rules in wal.h). */
#include "backend/wal_int.h"

#include "backend/crc32c.h"
#include "common/mem.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
            return wal_set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
        rp->ents = e;
        rp->cap = cap;
    }
    if (rp->alen + len > rp->acap) {
        size_t cap = rp->acap ? rp->acap : 4096;
        while (cap < rp->alen + len)
            cap *= 2;
        unsigned char *a = metcd_realloc(rp->arena, cap);
        if (!a)
            return wal_set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
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
            return wal_set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
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
        if (!reset && rp->n && s.index >= rp->ents[0].index && s.index <= rp->ents[rp->n - 1].index)
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
            return wal_corrupt(w, name, off, why);
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
    wal_seg_name(name, s->seq, s->first, 0);
    int fd = openat(w->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return wal_sys_err(w, "open", name);
    const unsigned char *map = mmap(NULL, (size_t)s->end, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        rc = wal_sys_err(w, "mmap", name);
        goto out_fd;
    }
    /* the records between the crc record at offset 0 and the next crc
       record (which starts the first batch) are the header's copies */
    int header = 0;
    for (uint64_t off = 0; off < s->end;) {
        struct rec r;
        const char *why = "zero record header";
        if (wal_rec_parse(map, s->end, off, &r, &why) != 1) {
            rc = wal_corrupt(w, name, off, why);
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
        return wal_set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
    /* a copy of the segment list as durable now: the WAL thread may cut */
    pthread_mutex_lock(&w->lock);
    size_t n = w->nsegs;
    struct seg *segs = metcd_malloc(n * sizeof *segs);
    if (segs)
        memcpy(segs, w->segs, n * sizeof *segs);
    pthread_mutex_unlock(&w->lock);
    if (!segs) {
        rc = wal_set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
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
            rc = wal_set_err(w, BACKEND_EWAL_NOMEM, "wal: out of memory");
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
