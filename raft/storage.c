/* raft/storage.c - in-memory stable log behind the raft_storage vtable.
 *
 * ents[0] is a dummy entry carrying the snapshot's index and term, so term()
 * answers first_index - 1 without a special case. The member appends what it
 * has fsynced in its WAL and fills this on restart. */
#include "raft/raft_int.h"

#include "common/mem.h"

#include <string.h>

struct raft_mem_storage {
    raft_hard_state hs;
    raft_snapshot snap; /* meta + data reference */
    raft_entry *ents;
    size_t len, cap;
};

raft_mem_storage *raft_mem_storage_new(void)
{
    raft_mem_storage *ms = metcd_calloc(1, sizeof(*ms));
    if (!ms)
        return NULL;
    ms->ents = metcd_calloc(16, sizeof(raft_entry));
    if (!ms->ents) {
        metcd_free(ms);
        return NULL;
    }
    ms->cap = 16;
    ms->len = 1;
    return ms;
}

void raft_mem_storage_free(raft_mem_storage *ms)
{
    if (!ms)
        return;
    raft_entries_free(ms->ents, ms->len);
    raft_buf_unref(ms->snap.data);
    metcd_free(ms);
}

static uint64_t off(const raft_mem_storage *ms)
{
    return ms->ents[0].index;
}

uint64_t raft_mem_storage_first_index(const raft_mem_storage *ms)
{
    return off(ms) + 1;
}

uint64_t raft_mem_storage_last_index(const raft_mem_storage *ms)
{
    return off(ms) + ms->len - 1;
}

static int ms_initial_state(void *data, raft_hard_state *hs, raft_conf_state *cs)
{
    raft_mem_storage *ms = data;
    *hs = ms->hs;
    *cs = ms->snap.meta.conf;
    return 0;
}

static int ms_entries(void *data, uint64_t lo, uint64_t hi, uint64_t max_bytes, raft_entry_vec *out)
{
    raft_mem_storage *ms = data;
    if (lo <= off(ms))
        return RAFT_ECOMPACTED;
    if (hi > raft_mem_storage_last_index(ms) + 1)
        return RAFT_EUNAVAILABLE;
    uint64_t size = 0;
    for (uint64_t i = lo; i < hi; i++) {
        const raft_entry *e = &ms->ents[i - off(ms)];
        uint64_t es = e->data ? e->data->len : 0;
        if (i > lo && size + es > max_bytes)
            break;
        int rc = raft_entry_vec_push(out, e);
        if (rc)
            return rc;
        size += es;
    }
    return 0;
}

static int ms_term(void *data, uint64_t i, uint64_t *t)
{
    raft_mem_storage *ms = data;
    if (i < off(ms))
        return RAFT_ECOMPACTED;
    if (i > raft_mem_storage_last_index(ms))
        return RAFT_EUNAVAILABLE;
    *t = ms->ents[i - off(ms)].term;
    return 0;
}

static int ms_first(void *data, uint64_t *i)
{
    *i = raft_mem_storage_first_index(data);
    return 0;
}

static int ms_last(void *data, uint64_t *i)
{
    *i = raft_mem_storage_last_index(data);
    return 0;
}

static int ms_snapshot(void *data, raft_snapshot **out)
{
    raft_mem_storage *ms = data;
    *out = raft_snapshot_dup(&ms->snap);
    return *out ? 0 : RAFT_ENOMEM;
}

static const raft_storage_ops mem_ops = {
    .initial_state = ms_initial_state,
    .entries = ms_entries,
    .term = ms_term,
    .first_index = ms_first,
    .last_index = ms_last,
    .snapshot = ms_snapshot,
};

raft_storage raft_mem_storage_view(raft_mem_storage *ms)
{
    raft_storage s = {&mem_ops, ms};
    return s;
}

int raft_mem_storage_set_hard_state(raft_mem_storage *ms, const raft_hard_state *hs)
{
    ms->hs = *hs;
    return 0;
}

raft_hard_state raft_mem_storage_hard_state(const raft_mem_storage *ms)
{
    return ms->hs;
}

static int reserve(raft_mem_storage *ms, size_t n)
{
    if (n <= ms->cap)
        return 0;
    size_t ncap = ms->cap;
    while (ncap < n)
        ncap *= 2;
    raft_entry *nv = metcd_realloc(ms->ents, ncap * sizeof(*nv));
    if (!nv)
        return RAFT_ENOMEM;
    ms->ents = nv;
    ms->cap = ncap;
    return 0;
}

int raft_mem_storage_append(raft_mem_storage *ms, const raft_entry *ents, size_t n)
{
    if (n == 0)
        return 0;
    uint64_t first = raft_mem_storage_first_index(ms);
    uint64_t last = ents[0].index + n - 1;
    if (last < first)
        return 0; /* all compacted */
    if (first > ents[0].index) {
        size_t skip = (size_t)(first - ents[0].index);
        ents += skip;
        n -= skip;
    }
    for (size_t i = 1; i < n; i++)
        if (ents[i].index != ents[0].index + i)
            return RAFT_EINVAL;
    uint64_t o = ents[0].index - off(ms);
    if (o > ms->len)
        return RAFT_EINVAL; /* gap */
    int rc = reserve(ms, (size_t)o + n);
    if (rc)
        return rc;
    for (size_t i = (size_t)o; i < ms->len; i++)
        raft_buf_unref(ms->ents[i].data);
    for (size_t i = 0; i < n; i++) {
        ms->ents[o + i] = ents[i];
        raft_buf_ref(ents[i].data);
    }
    ms->len = (size_t)o + n;
    return 0;
}

int raft_mem_storage_apply_snapshot(raft_mem_storage *ms, const raft_snapshot *s)
{
    if (s->meta.index < ms->snap.meta.index)
        return RAFT_ESNAPOUTOFDATE;
    raft_buf_ref(s->data);
    raft_buf_unref(ms->snap.data);
    ms->snap = *s;
    for (size_t i = 0; i < ms->len; i++)
        raft_buf_unref(ms->ents[i].data);
    memset(&ms->ents[0], 0, sizeof(raft_entry));
    ms->ents[0].index = s->meta.index;
    ms->ents[0].term = s->meta.term;
    ms->len = 1;
    if (ms->hs.commit < s->meta.index)
        ms->hs.commit = s->meta.index;
    if (ms->hs.term < s->meta.term)
        ms->hs.term = s->meta.term;
    return 0;
}

int raft_mem_storage_create_snapshot(raft_mem_storage *ms, uint64_t i, const raft_conf_state *cs,
                                     raft_buf *data)
{
    if (i <= ms->snap.meta.index)
        return RAFT_ESNAPOUTOFDATE;
    if (i > raft_mem_storage_last_index(ms))
        return RAFT_EUNAVAILABLE;
    raft_buf_ref(data);
    raft_buf_unref(ms->snap.data);
    ms->snap.data = data;
    ms->snap.meta.index = i;
    ms->snap.meta.term = ms->ents[i - off(ms)].term;
    if (cs)
        ms->snap.meta.conf = *cs;
    return 0;
}

int raft_mem_storage_compact(raft_mem_storage *ms, uint64_t i)
{
    if (i <= off(ms))
        return RAFT_ECOMPACTED;
    if (i > raft_mem_storage_last_index(ms))
        return RAFT_EUNAVAILABLE;
    size_t o = (size_t)(i - off(ms));
    /* ents[o] becomes the dummy: keep index/term, drop its payload */
    for (size_t k = 0; k <= o; k++)
        raft_buf_unref(ms->ents[k].data);
    ms->ents[o].data = NULL;
    memmove(ms->ents, ms->ents + o, (ms->len - o) * sizeof(raft_entry));
    ms->len -= o;
    return 0;
}
