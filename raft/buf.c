/* raft/buf.c - lifetimes of the values raft hands around: counted buffers,
 * entry arrays, snapshots, messages; plus names and error strings. */
#include "raft/raft_int.h"

#include "common/mem.h"

#include <assert.h>
#include <string.h>

raft_buf *raft_buf_new(const void *p, size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    raft_buf *b = metcd_malloc(sizeof(*b) + len);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = (uint32_t)len;
    if (len)
        memcpy(b->data, p, len);
    return b;
}

raft_buf *raft_buf_ref(raft_buf *b)
{
    if (b) {
        assert(b->refs > 0);
        b->refs++;
    }
    return b;
}

void raft_buf_unref(raft_buf *b)
{
    if (b) {
        assert(b->refs > 0);
        if (--b->refs == 0)
            metcd_free(b);
    }
}

int raft_entry_vec_push(raft_entry_vec *vec, const raft_entry *e)
{
    if (vec->len == vec->cap) {
        size_t ncap = vec->cap ? vec->cap * 2 : 8;
        raft_entry *nv = metcd_realloc(vec->v, ncap * sizeof(*nv));
        if (!nv)
            return RAFT_ENOMEM;
        vec->v = nv;
        vec->cap = ncap;
    }
    vec->v[vec->len] = *e;
    raft_buf_ref(e->data);
    vec->len++;
    return 0;
}

void raft_entries_free(raft_entry *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        raft_buf_unref(v[i].data);
    metcd_free(v);
}

void raft_entry_vec_free(raft_entry_vec *vec)
{
    raft_entries_free(vec->v, vec->len);
    vec->v = NULL;
    vec->len = vec->cap = 0;
}

raft_snapshot *raft_snapshot_dup(const raft_snapshot *s)
{
    raft_snapshot *d = metcd_malloc(sizeof(*d));
    if (!d)
        return NULL;
    *d = *s;
    raft_buf_ref(d->data);
    return d;
}

void raft_snapshot_free(raft_snapshot *s)
{
    if (s) {
        raft_buf_unref(s->data);
        metcd_free(s);
    }
}

void raft_msg_free(raft_msg *m)
{
    raft_entries_free(m->entries, m->n_entries);
    raft_snapshot_free(m->snapshot);
    memset(m, 0, sizeof(*m));
}

int raft_msg_copy(raft_msg *dst, const raft_msg *src)
{
    *dst = *src;
    dst->entries = NULL;
    dst->n_entries = 0;
    dst->snapshot = NULL;
    if (src->n_entries) {
        dst->entries = metcd_malloc(src->n_entries * sizeof(raft_entry));
        if (!dst->entries)
            return RAFT_ENOMEM;
        for (size_t i = 0; i < src->n_entries; i++) {
            dst->entries[i] = src->entries[i];
            raft_buf_ref(src->entries[i].data);
        }
        dst->n_entries = src->n_entries;
    }
    if (src->snapshot) {
        dst->snapshot = raft_snapshot_dup(src->snapshot);
        if (!dst->snapshot) {
            raft_msg_free(dst);
            return RAFT_ENOMEM;
        }
    }
    return 0;
}

int msg_vec_push(raft_msg_vec *mv, raft_msg *m)
{
    if (mv->len == mv->cap) {
        size_t ncap = mv->cap ? mv->cap * 2 : 8;
        raft_msg *nv = metcd_realloc(mv->v, ncap * sizeof(*nv));
        if (!nv) {
            raft_msg_free(m);
            return RAFT_ENOMEM;
        }
        mv->v = nv;
        mv->cap = ncap;
    }
    mv->v[mv->len++] = *m;
    memset(m, 0, sizeof(*m));
    return 0;
}

void msg_vec_free(raft_msg_vec *mv)
{
    for (size_t i = 0; i < mv->len; i++)
        raft_msg_free(&mv->v[i]);
    metcd_free(mv->v);
    mv->v = NULL;
    mv->len = mv->cap = 0;
}

const char *raft_msg_type_name(raft_msg_type t)
{
    static const char *names[RAFT_MSG_NTYPES] = {
        "MsgHup",           "MsgBeat",           "MsgProp",        "MsgApp",
        "MsgAppResp",       "MsgVote",           "MsgVoteResp",    "MsgSnap",
        "MsgHeartbeat",     "MsgHeartbeatResp",  "MsgUnreachable", "MsgSnapStatus",
        "MsgCheckQuorum",   "MsgTransferLeader", "MsgTimeoutNow",  "MsgReadIndex",
        "MsgReadIndexResp", "MsgPreVote",        "MsgPreVoteResp",
    };
    if ((unsigned)t >= RAFT_MSG_NTYPES)
        return "MsgUnknown";
    return names[t];
}

const char *raft_state_name(raft_state s)
{
    switch (s) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "leader";
    case RAFT_PRE_CANDIDATE:
        return "pre-candidate";
    }
    return "unknown";
}

const char *raft_progress_state_name(raft_progress_state s)
{
    switch (s) {
    case RAFT_PROGRESS_PROBE:
        return "probe";
    case RAFT_PROGRESS_REPLICATE:
        return "replicate";
    case RAFT_PROGRESS_SNAPSHOT:
        return "snapshot";
    }
    return "unknown";
}

const char *raft_strerror(int err)
{
    switch (err) {
    case RAFT_OK:
        return "success";
    case RAFT_ENOMEM:
        return "raft: out of memory";
    case RAFT_ENOLEADER:
        return "raft: no leader";
    case RAFT_EDROPPED:
        return "raft: proposal dropped";
    case RAFT_ECOMPACTED:
        return "raft: requested index is unavailable due to compaction";
    case RAFT_EUNAVAILABLE:
        return "raft: requested entry at index is unavailable";
    case RAFT_ESNAPOUTOFDATE:
        return "raft: requested index is older than the existing snapshot";
    case RAFT_ESNAPTEMP:
        return "raft: snapshot is temporarily unavailable";
    case RAFT_EINVAL:
        return "raft: invalid argument";
    case RAFT_EPEER:
        return "raft: unknown peer";
    case RAFT_EDECODE:
        return "raft: malformed message";
    case RAFT_ESTORAGE:
        return "raft: storage error";
    case RAFT_ETOOMANY:
        return "raft: limit reached";
    }
    return "raft: unknown error";
}
