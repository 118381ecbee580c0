/* raft/log.c - the Raft log: stable storage plus an unstable tail.
 *
 * Entries below `offset` live in the caller's storage (durable); entries from
 * `offset` on, and a snapshot being installed, are unstable until the caller
 * reports them persisted (raft_persisted). `in_progress` marks what has been
 * handed out in a Ready already, so the caller writes each entry once while
 * raft keeps serving it from memory until it is durable. */
#include "raft/raft_int.h"

#include "common/mem.h"

#include <assert.h>
#include <string.h>

static size_t ucount(const raft_log *l)
{
    return l->len - l->head;
}

static const raft_entry *uat(const raft_log *l, uint64_t i)
{
    assert(i >= l->offset && i < l->offset + ucount(l));
    return &l->ents[l->head + (size_t)(i - l->offset)];
}

static uint64_t st_first(const raft_log *l)
{
    uint64_t v = 1;
    if (l->st.ops->first_index(l->st.data, &v) != 0)
        return 1;
    return v;
}

static uint64_t st_last(const raft_log *l)
{
    uint64_t v = 0;
    if (l->st.ops->last_index(l->st.data, &v) != 0)
        return 0;
    return v;
}

int log_init(raft_log *l, raft_storage st)
{
    memset(l, 0, sizeof(*l));
    if (!st.ops)
        return RAFT_EINVAL;
    l->st = st;
    uint64_t first, last;
    if (st.ops->first_index(st.data, &first) != 0 || st.ops->last_index(st.data, &last) != 0)
        return RAFT_ESTORAGE;
    l->offset = last + 1;
    l->in_progress = last + 1;
    l->committed = first - 1;
    l->applying = first - 1;
    l->applied = first - 1;
    return 0;
}

static void drop_unstable(raft_log *l)
{
    for (size_t i = l->head; i < l->len; i++)
        raft_buf_unref(l->ents[i].data);
    l->head = l->len = 0;
}

void log_free(raft_log *l)
{
    drop_unstable(l);
    metcd_free(l->ents);
    l->ents = NULL;
    l->cap = 0;
    raft_snapshot_free(l->snap);
    l->snap = NULL;
}

uint64_t log_first_index(const raft_log *l)
{
    if (l->snap)
        return l->snap->meta.index + 1;
    return st_first(l);
}

uint64_t log_last_index(const raft_log *l)
{
    if (ucount(l))
        return l->offset + ucount(l) - 1;
    if (l->snap)
        return l->snap->meta.index;
    return st_last(l);
}

uint64_t log_persisted_index(const raft_log *l)
{
    return l->offset - 1;
}

int log_term(const raft_log *l, uint64_t i, uint64_t *t)
{
    uint64_t dummy = log_first_index(l) - 1;
    if (i < dummy)
        return RAFT_ECOMPACTED;
    if (i > log_last_index(l))
        return RAFT_EUNAVAILABLE;
    if (ucount(l) && i >= l->offset) {
        *t = uat(l, i)->term;
        return 0;
    }
    if (l->snap && i == l->snap->meta.index) {
        *t = l->snap->meta.term;
        return 0;
    }
    int rc = l->st.ops->term(l->st.data, i, t);
    if (rc == RAFT_ECOMPACTED || rc == RAFT_EUNAVAILABLE || rc == 0)
        return rc;
    return RAFT_ESTORAGE;
}

uint64_t log_term_or0(const raft_log *l, uint64_t i)
{
    uint64_t t = 0;
    if (log_term(l, i, &t) != 0)
        return 0;
    return t;
}

uint64_t log_last_term(const raft_log *l)
{
    return log_term_or0(l, log_last_index(l));
}

bool log_match_term(const raft_log *l, uint64_t i, uint64_t t)
{
    uint64_t ours;
    if (log_term(l, i, &ours) != 0)
        return false;
    return ours == t;
}

/* Raft paper 5.4.1: the later term wins, then the longer log. */
bool log_is_up_to_date(const raft_log *l, uint64_t lasti, uint64_t term)
{
    uint64_t lt = log_last_term(l);
    return term > lt || (term == lt && lasti >= log_last_index(l));
}

static int ureserve(raft_log *l, size_t extra)
{
    if (l->head > 0 && (l->head >= l->len / 2 || l->len + extra > l->cap)) {
        memmove(l->ents, l->ents + l->head, ucount(l) * sizeof(raft_entry));
        l->len -= l->head;
        l->head = 0;
    }
    if (l->len + extra <= l->cap)
        return 0;
    size_t ncap = l->cap ? l->cap : 64;
    while (ncap < l->len + extra)
        ncap *= 2;
    raft_entry *nv = metcd_realloc(l->ents, ncap * sizeof(*nv));
    if (!nv)
        return RAFT_ENOMEM;
    l->ents = nv;
    l->cap = ncap;
    return 0;
}

int log_append(raft_log *l, const raft_entry *ents, size_t n)
{
    if (n == 0)
        return 0;
    uint64_t after = ents[0].index - 1;
    assert(after >= l->committed); /* never rewrite committed entries */
    int rc = ureserve(l, n);
    if (rc)
        return rc;
    uint64_t uend = l->offset + ucount(l); /* one past last unstable */
    if (after + 1 == uend) {
        /* plain append */
    } else if (after < l->offset) {
        /* the new entries replace part of the stable log: the caller's
         * storage truncates when it appends them */
        drop_unstable(l);
        l->offset = after + 1;
    } else {
        /* truncate the unstable tail after `after` */
        size_t keep = (size_t)(after + 1 - l->offset);
        for (size_t i = l->head + keep; i < l->len; i++)
            raft_buf_unref(l->ents[i].data);
        l->len = l->head + keep;
    }
    if (l->in_progress > after + 1)
        l->in_progress = after + 1;
    for (size_t i = 0; i < n; i++) {
        assert(ents[i].index == after + 1 + i);
        l->ents[l->len] = ents[i];
        raft_buf_ref(ents[i].data);
        l->len++;
    }
    return 0;
}

uint64_t log_find_conflict(const raft_log *l, const raft_entry *ents, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!log_match_term(l, ents[i].index, ents[i].term))
            return ents[i].index;
    return 0;
}

uint64_t log_find_conflict_by_term(const raft_log *l, uint64_t index, uint64_t term)
{
    for (; index > 0; index--) {
        uint64_t t;
        if (log_term(l, index, &t) != 0)
            return index;
        if (t <= term)
            return index;
    }
    return 0;
}

int log_maybe_append(raft_log *l, uint64_t index, uint64_t log_term_, uint64_t committed,
                     const raft_entry *ents, size_t n, bool *ok, uint64_t *lastnew)
{
    *ok = false;
    *lastnew = 0;
    if (!log_match_term(l, index, log_term_))
        return 0;
    uint64_t last = index + n;
    uint64_t ci = log_find_conflict(l, ents, n);
    if (ci != 0) {
        /* Leader Completeness: a leader never contradicts committed
         * entries. A message that does is corrupt or forged: refuse it
         * rather than rewrite what may have been applied. */
        if (ci <= l->committed)
            return RAFT_EINVAL;
        size_t skip = (size_t)(ci - (index + 1));
        int rc = log_append(l, ents + skip, n - skip);
        if (rc)
            return rc;
    }
    log_commit_to(l, committed < last ? committed : last);
    *ok = true;
    *lastnew = last;
    return 0;
}

int log_entries(const raft_log *l, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                raft_entry_vec *out)
{
    if (lo >= hi)
        return 0;
    if (lo < log_first_index(l))
        return RAFT_ECOMPACTED;
    if (hi > log_last_index(l) + 1)
        return RAFT_EUNAVAILABLE;
    uint64_t size = 0;
    size_t start = out->len;
    if (lo < l->offset) {
        uint64_t shi = hi < l->offset ? hi : l->offset;
        int rc = l->st.ops->entries(l->st.data, lo, shi, max_bytes, out);
        if (rc == RAFT_ECOMPACTED || rc == RAFT_ENOMEM)
            return rc;
        if (rc)
            return RAFT_ESTORAGE;
        size_t got = out->len - start;
        if (got < shi - lo)
            return 0; /* size limit reached */
        for (size_t i = start; i < out->len; i++)
            size += out->v[i].data ? out->v[i].data->len : 0;
    }
    uint64_t from = lo > l->offset ? lo : l->offset;
    for (uint64_t i = from; i < hi; i++) {
        const raft_entry *e = uat(l, i);
        uint64_t es = e->data ? e->data->len : 0;
        if (out->len > start && size + es > max_bytes)
            break;
        int rc = raft_entry_vec_push(out, e);
        if (rc)
            return rc;
        size += es;
    }
    return 0;
}

void log_commit_to(raft_log *l, uint64_t tocommit)
{
    if (tocommit > l->committed) {
        assert(tocommit <= log_last_index(l));
        l->committed = tocommit;
    }
}

bool log_maybe_commit(raft_log *l, uint64_t max_index, uint64_t term)
{
    if (max_index > l->committed && log_term_or0(l, max_index) == term) {
        log_commit_to(l, max_index);
        return true;
    }
    return false;
}

void log_stable_to(raft_log *l, uint64_t i, uint64_t t)
{
    if (!log_match_term(l, i, t))
        return; /* stale report: the entry was replaced meanwhile */
    if (l->snap && l->snap_in_progress && i >= l->snap->meta.index) {
        raft_snapshot_free(l->snap);
        l->snap = NULL;
        l->snap_in_progress = false;
    }
    if (ucount(l) && i >= l->offset && i < l->in_progress) {
        size_t drop = (size_t)(i + 1 - l->offset);
        for (size_t k = l->head; k < l->head + drop; k++)
            raft_buf_unref(l->ents[k].data);
        l->head += drop;
        l->offset = i + 1;
        if (l->head == l->len)
            l->head = l->len = 0;
    }
}

int log_restore(raft_log *l, const raft_snapshot *s)
{
    raft_snapshot *d = raft_snapshot_dup(s);
    if (!d)
        return RAFT_ENOMEM;
    drop_unstable(l);
    raft_snapshot_free(l->snap);
    l->snap = d;
    l->snap_in_progress = false;
    l->committed = s->meta.index;
    l->offset = s->meta.index + 1;
    l->in_progress = l->offset;
    return 0;
}

bool log_has_unsent(const raft_log *l)
{
    return ucount(l) && l->in_progress <= log_last_index(l);
}

void log_apply_window(const raft_log *l, uint64_t *lo, uint64_t *hi)
{
    uint64_t first = log_first_index(l);
    *lo = l->applying + 1 > first ? l->applying + 1 : first;
    uint64_t p = log_persisted_index(l);
    *hi = l->committed < p ? l->committed : p;
}

bool log_has_committed_to_apply(const raft_log *l)
{
    uint64_t lo, hi;
    log_apply_window(l, &lo, &hi);
    return lo <= hi;
}
