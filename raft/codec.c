/* raft/codec.c - the protobuf edge: plain C structs <-> raftpb messages.
 * Inside raft everything is plain structs; only the transport and the WAL
 * see the wire format. */
#include "raft/raft_int.h"

#include "common/mem.h"
#include "raft/raftpb/raft.pb-c.h"

#include <string.h>

static int pack_out(const ProtobufCMessage *pm, uint8_t **out, size_t *out_len)
{
    size_t n = protobuf_c_message_get_packed_size(pm);
    uint8_t *buf = metcd_malloc(n ? n : 1);
    if (!buf)
        return RAFT_ENOMEM;
    protobuf_c_message_pack(pm, buf);
    *out = buf;
    *out_len = n;
    return 0;
}

static void conf_to_pb(const raft_conf_state *cs, Raftpb__ConfState *p)
{
    raftpb__conf_state__init(p);
    p->n_voters = cs->n_voters;
    p->voters = (uint64_t *)cs->voters;
    p->n_learners = cs->n_learners;
    p->learners = (uint64_t *)cs->learners;
}

static int conf_from_pb(const Raftpb__ConfState *p, raft_conf_state *cs)
{
    memset(cs, 0, sizeof(*cs));
    if (!p)
        return 0;
    if (p->n_voters > RAFT_MAX_NODES || p->n_learners > RAFT_MAX_NODES)
        return RAFT_EDECODE;
    if (p->n_voters)
        memcpy(cs->voters, p->voters, p->n_voters * sizeof(uint64_t));
    cs->n_voters = p->n_voters;
    if (p->n_learners)
        memcpy(cs->learners, p->learners, p->n_learners * sizeof(uint64_t));
    cs->n_learners = p->n_learners;
    return 0;
}

static void entry_to_pb(const raft_entry *e, Raftpb__Entry *p)
{
    raftpb__entry__init(p);
    p->term = e->term;
    p->index = e->index;
    p->type = e->type == RAFT_ENTRY_CONF_CHANGE ? RAFTPB__ENTRY_TYPE__EntryConfChange
                                                : RAFTPB__ENTRY_TYPE__EntryNormal;
    if (e->data) {
        p->data.len = e->data->len;
        p->data.data = e->data->data;
    }
}

static int entry_from_pb(const Raftpb__Entry *p, raft_entry *e)
{
    memset(e, 0, sizeof(*e));
    e->term = p->term;
    e->index = p->index;
    if (p->type == RAFTPB__ENTRY_TYPE__EntryConfChange)
        e->type = RAFT_ENTRY_CONF_CHANGE;
    else if (p->type == RAFTPB__ENTRY_TYPE__EntryNormal)
        e->type = RAFT_ENTRY_NORMAL;
    else
        return RAFT_EDECODE;
    if (p->data.len) {
        e->data = raft_buf_new(p->data.data, p->data.len);
        if (!e->data)
            return RAFT_ENOMEM;
    }
    return 0;
}

int raft_msg_encode(const raft_msg *m, uint8_t **out, size_t *out_len)
{
    Raftpb__Message pm;
    raftpb__message__init(&pm);
    pm.type = (Raftpb__MessageType)m->type;
    pm.to = m->to;
    pm.from = m->from;
    pm.term = m->term;
    pm.log_term = m->log_term;
    pm.index = m->index;
    pm.commit = m->commit;
    pm.reject = m->reject;
    pm.reject_hint = m->reject_hint;
    pm.context = m->context;
    pm.transfer = m->transfer;
    Raftpb__Entry *pe = NULL;
    Raftpb__Entry **pp = NULL;
    int rc;
    if (m->n_entries) {
        pe = metcd_malloc(m->n_entries * sizeof(*pe));
        pp = metcd_malloc(m->n_entries * sizeof(*pp));
        if (!pe || !pp) {
            rc = RAFT_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < m->n_entries; i++) {
            entry_to_pb(&m->entries[i], &pe[i]);
            pp[i] = &pe[i];
        }
        pm.n_entries = m->n_entries;
        pm.entries = pp;
    }
    Raftpb__Snapshot ps;
    Raftpb__SnapshotMetadata pmeta;
    Raftpb__ConfState pcs;
    if (m->snapshot) {
        raftpb__snapshot__init(&ps);
        raftpb__snapshot_metadata__init(&pmeta);
        conf_to_pb(&m->snapshot->meta.conf, &pcs);
        pmeta.conf_state = &pcs;
        pmeta.index = m->snapshot->meta.index;
        pmeta.term = m->snapshot->meta.term;
        ps.metadata = &pmeta;
        if (m->snapshot->data) {
            ps.data.len = m->snapshot->data->len;
            ps.data.data = m->snapshot->data->data;
        }
        pm.snapshot = &ps;
    }
    rc = pack_out(&pm.base, out, out_len);
out:
    metcd_free(pe);
    metcd_free(pp);
    return rc;
}

int raft_msg_decode(const uint8_t *buf, size_t len, raft_msg *m)
{
    memset(m, 0, sizeof(*m));
    Raftpb__Message *pm = raftpb__message__unpack(&metcd_pb_allocator, len, buf);
    if (!pm)
        return RAFT_EDECODE;
    int rc = 0;
    if ((unsigned)pm->type >= RAFT_MSG_NTYPES) {
        rc = RAFT_EDECODE;
        goto out;
    }
    m->type = (raft_msg_type)pm->type;
    m->to = pm->to;
    m->from = pm->from;
    m->term = pm->term;
    m->log_term = pm->log_term;
    m->index = pm->index;
    m->commit = pm->commit;
    m->reject = pm->reject;
    m->reject_hint = pm->reject_hint;
    m->context = pm->context;
    m->transfer = pm->transfer;
    if (pm->n_entries) {
        m->entries = metcd_calloc(pm->n_entries, sizeof(raft_entry));
        if (!m->entries) {
            rc = RAFT_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < pm->n_entries; i++) {
            rc = entry_from_pb(pm->entries[i], &m->entries[i]);
            m->n_entries = i + 1;
            if (rc)
                goto out;
        }
    }
    if (pm->snapshot) {
        m->snapshot = metcd_calloc(1, sizeof(raft_snapshot));
        if (!m->snapshot) {
            rc = RAFT_ENOMEM;
            goto out;
        }
        if (pm->snapshot->metadata) {
            m->snapshot->meta.index = pm->snapshot->metadata->index;
            m->snapshot->meta.term = pm->snapshot->metadata->term;
            rc = conf_from_pb(pm->snapshot->metadata->conf_state, &m->snapshot->meta.conf);
            if (rc)
                goto out;
        }
        if (pm->snapshot->data.len) {
            m->snapshot->data = raft_buf_new(pm->snapshot->data.data, pm->snapshot->data.len);
            if (!m->snapshot->data) {
                rc = RAFT_ENOMEM;
                goto out;
            }
        }
    }
out:
    raftpb__message__free_unpacked(pm, &metcd_pb_allocator);
    if (rc)
        raft_msg_free(m);
    return rc;
}

int raft_entry_encode(const raft_entry *e, uint8_t **out, size_t *out_len)
{
    Raftpb__Entry pe;
    entry_to_pb(e, &pe);
    return pack_out(&pe.base, out, out_len);
}

int raft_entry_decode(const uint8_t *buf, size_t len, raft_entry *e)
{
    memset(e, 0, sizeof(*e));
    Raftpb__Entry *pe = raftpb__entry__unpack(&metcd_pb_allocator, len, buf);
    if (!pe)
        return RAFT_EDECODE;
    int rc = entry_from_pb(pe, e);
    raftpb__entry__free_unpacked(pe, &metcd_pb_allocator);
    return rc;
}

int raft_hard_state_encode(const raft_hard_state *hs, uint8_t **out, size_t *out_len)
{
    Raftpb__HardState p;
    raftpb__hard_state__init(&p);
    p.term = hs->term;
    p.vote = hs->vote;
    p.commit = hs->commit;
    return pack_out(&p.base, out, out_len);
}

int raft_hard_state_decode(const uint8_t *buf, size_t len, raft_hard_state *hs)
{
    Raftpb__HardState *p = raftpb__hard_state__unpack(&metcd_pb_allocator, len, buf);
    if (!p)
        return RAFT_EDECODE;
    hs->term = p->term;
    hs->vote = p->vote;
    hs->commit = p->commit;
    raftpb__hard_state__free_unpacked(p, &metcd_pb_allocator);
    return 0;
}

int raft_snapshot_meta_encode(const raft_snapshot_meta *m, uint8_t **out, size_t *out_len)
{
    Raftpb__SnapshotMetadata p;
    Raftpb__ConfState pcs;
    raftpb__snapshot_metadata__init(&p);
    conf_to_pb(&m->conf, &pcs);
    p.conf_state = &pcs;
    p.index = m->index;
    p.term = m->term;
    return pack_out(&p.base, out, out_len);
}

int raft_snapshot_meta_decode(const uint8_t *buf, size_t len, raft_snapshot_meta *m)
{
    Raftpb__SnapshotMetadata *p = raftpb__snapshot_metadata__unpack(&metcd_pb_allocator, len, buf);
    if (!p)
        return RAFT_EDECODE;
    m->index = p->index;
    m->term = p->term;
    int rc = conf_from_pb(p->conf_state, &m->conf);
    raftpb__snapshot_metadata__free_unpacked(p, &metcd_pb_allocator);
    return rc;
}

int raft_conf_change_encode(const raft_conf_change *cc, uint8_t **out, size_t *out_len)
{
    Raftpb__ConfChange p;
    raftpb__conf_change__init(&p);
    p.id = cc->id;
    p.type = (Raftpb__ConfChangeType)cc->type;
    p.node_id = cc->node_id;
    if (cc->context) {
        p.context.len = cc->context->len;
        p.context.data = cc->context->data;
    }
    return pack_out(&p.base, out, out_len);
}

int raft_conf_change_decode(const uint8_t *buf, size_t len, raft_conf_change *cc)
{
    memset(cc, 0, sizeof(*cc));
    Raftpb__ConfChange *p = raftpb__conf_change__unpack(&metcd_pb_allocator, len, buf);
    if (!p)
        return RAFT_EDECODE;
    int rc = 0;
    if (p->type > RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode) {
        rc = RAFT_EDECODE;
        goto out;
    }
    cc->id = p->id;
    cc->type = (raft_conf_change_type)p->type;
    cc->node_id = p->node_id;
    if (p->context.len) {
        cc->context = raft_buf_new(p->context.data, p->context.len);
        if (!cc->context)
            rc = RAFT_ENOMEM;
    }
out:
    raftpb__conf_change__free_unpacked(p, &metcd_pb_allocator);
    return rc;
}
