/* server/member/raftnode.c - drives raft/ on the member's loop.
 *
 * Ticks every heartbeat interval; after anything that may give raft work
 * (a tick, a proposal, a persisted WAL batch) one deferred event drains
 * raft_ready():
 *   - hard state, snapshot marker and entries go to the WAL thread
 *     (wal_append; group commit); when they are durable they join the
 *     in-memory raft storage, raft_persisted() is called and the messages
 *     that vouch for them are released (votes, append acknowledgements);
 *   - committed entries (raft hands out only locally persisted ones) are
 *     applied in order, each inside one backend hold with its consistent
 *     index, so LMDB never holds half an entry;
 *   - read states release linearizable reads.
 * Restart: the WAL's metadata, hard state, snapshot marker and entries fill
 * the raft storage; raft resumes at the consistent index LMDB holds and
 * re-applies what came after it.
 */
#include "server/member/internal.h"

#include "common/mem.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct persist_job {
    member *m;
    raft_entry_vec ents;
    raft_snapshot *snap;
    bool has_hs;
    raft_hard_state hs;
    raft_msg *msgs;
    size_t n_msgs;
};

static void job_free(struct persist_job *j)
{
    raft_entry_vec_free(&j->ents);
    raft_snapshot_free(j->snap);
    for (size_t i = 0; i < j->n_msgs; i++)
        raft_msg_free(&j->msgs[i]);
    metcd_free(j->msgs);
    metcd_free(j);
}

static void fatal(member *m, const char *what, int rc, const char *detail)
{
    member_logf(m, MLOG_CRIT, "etcdserver", "%s: %s (%s)", what, wal_strerror(rc),
                detail ? detail : "");
    m->fatal = true;
    event_base_loopbreak(m->base);
}

static void job_durable(struct persist_job *j)
{
    member *m = j->m;
    if (j->snap)
        raft_mem_storage_apply_snapshot(m->ms, j->snap);
    if (j->ents.len)
        raft_mem_storage_append(m->ms, j->ents.v, j->ents.len);
    if (j->has_hs)
        raft_mem_storage_set_hard_state(m->ms, &j->hs);
    if (j->ents.len) {
        const raft_entry *last = &j->ents.v[j->ents.len - 1];
        raft_persisted(m->raft, last->index, last->term);
    } else if (j->snap) {
        raft_persisted(m->raft, j->snap->meta.index, j->snap->meta.term);
    }
    if (j->snap) {
        /* the database was swapped in when the Ready came (peers.c) */
        m->snapshot_index = j->snap->meta.index;
        raft_applied(m->raft, j->snap->meta.index);
    }
    peers_send(m, j->msgs, j->n_msgs);
}

static void on_wal_done(void *arg, int status)
{
    struct persist_job *j = arg;
    member *m = j->m;
    if (status) {
        fatal(m, "failed to save raft state to the WAL", status, wal_errmsg(m->wal));
        job_free(j);
        return;
    }
    if (!m->stopping)
        job_durable(j);
    job_free(j);
    raftnode_kick(m);
}

/* A Ready whose only durable change is the commit index need not be synced
 * (raft's MustSync; etcd's WAL saves it without fsync): the commit index is
 * relearned from the leader, and everything applied is in LMDB. Its
 * messages still wait for the Readies before it: a WAL barrier completes
 * once those are durable, and costs no fdatasync of its own. */
static int persist_barrier(member *m, struct raft_ready *rd)
{
    if (rd->has_hard_state)
        raft_mem_storage_set_hard_state(m->ms, &rd->hard_state);
    if (rd->n_msgs_after_persist == 0)
        return 0;
    struct persist_job *j = metcd_calloc(1, sizeof(*j));
    if (!j)
        return RAFT_ENOMEM;
    j->m = m;
    j->msgs = rd->msgs_after_persist;
    j->n_msgs = rd->n_msgs_after_persist;
    rd->msgs_after_persist = NULL;
    rd->n_msgs_after_persist = 0;
    wal_write wr = {0};
    int rc = wal_append(m->wal, &wr, on_wal_done, j);
    if (rc == 0) {
        return 0;
    }
    if (rc == BACKEND_EWAL_FULL && wal_append_sync(m->wal, &wr) == 0) {
        job_durable(j);
        job_free(j);
        return 0;
    }
    job_free(j);
    fatal(m, "failed to append to the WAL", rc, wal_errmsg(m->wal));
    return rc;
}

/* Hands one Ready's durable parts to the WAL thread. */
static int persist(member *m, struct raft_ready *rd)
{
    if (!rd->snapshot && rd->n_entries == 0 && !rd->must_sync)
        return persist_barrier(m, rd);
    struct persist_job *j = metcd_calloc(1, sizeof(*j));
    if (!j)
        return RAFT_ENOMEM;
    j->m = m;
    wal_entry *we = NULL;
    uint8_t **enc = NULL;
    int rc = 0;
    if (rd->n_entries) {
        we = metcd_calloc(rd->n_entries, sizeof(*we));
        enc = metcd_calloc(rd->n_entries, sizeof(*enc));
        if (!we || !enc) {
            rc = RAFT_ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < rd->n_entries; i++) {
        size_t len;
        rc = raft_entry_encode(&rd->entries[i], &enc[i], &len);
        if (rc == 0)
            rc = raft_entry_vec_push(&j->ents, &rd->entries[i]);
        if (rc)
            goto out;
        we[i] = (wal_entry){rd->entries[i].index, rd->entries[i].term, enc[i], len};
    }
    wal_snapshot ws;
    wal_hardstate wh;
    wal_write wr = {0};
    if (rd->snapshot) {
        j->snap = raft_snapshot_dup(rd->snapshot);
        if (!j->snap) {
            rc = RAFT_ENOMEM;
            goto out;
        }
        ws = (wal_snapshot){rd->snapshot->meta.index, rd->snapshot->meta.term};
        wr.snapshot = &ws;
    }
    if (rd->has_hard_state) {
        j->has_hs = true;
        j->hs = rd->hard_state;
        wh = (wal_hardstate){rd->hard_state.term, rd->hard_state.vote, rd->hard_state.commit};
        wr.hardstate = &wh;
    }
    wr.entries = we;
    wr.n_entries = rd->n_entries;
    /* The messages that vouch for this Ready leave once it is durable. */
    j->msgs = rd->msgs_after_persist;
    j->n_msgs = rd->n_msgs_after_persist;
    rd->msgs_after_persist = NULL;
    rd->n_msgs_after_persist = 0;

    rc = wal_append(m->wal, &wr, on_wal_done, j);
    if (rc == BACKEND_EWAL_FULL) {
        /* Backpressure past the queue bound: wait for this one on the
         * loop thread rather than grow without limit. */
        rc = wal_append_sync(m->wal, &wr);
        if (rc == 0) {
            job_durable(j);
            job_free(j);
            j = NULL;
        }
    } else if (rc == 0) {
        j = NULL;
    }
    if (rc)
        fatal(m, "failed to append to the WAL", rc, wal_errmsg(m->wal));
out:
    if (enc)
        for (size_t i = 0; i < rd->n_entries; i++)
            metcd_free(enc[i]);
    metcd_free(enc);
    metcd_free(we);
    if (j)
        job_free(j);
    return rc;
}

static void propose_internal(member *m, Memberpb__Request *req)
{
    req->id = 0; /* nobody waits */
    int rc = raftnode_propose(m, req);
    if (rc)
        member_logf(m, MLOG_WARN, "etcdserver", "failed to propose: %s", raft_strerror(rc));
}

/* After a leader is known: publish our attributes once (etcd's publish),
 * and as leader of a cluster without a version, set it. */
static void after_leader_known(member *m)
{
    if (m->state == RAFT_LEADER && !m->cluster_version[0]) {
        Memberpb__Request req = MEMBERPB__REQUEST__INIT;
        Memberpb__ClusterVersionSet cv = MEMBERPB__CLUSTER_VERSION_SET__INIT;
        cv.version = (char *)METCD_CLUSTER_VERSION;
        req.op_case = MEMBERPB__REQUEST__OP_CLUSTER_VERSION;
        req.cluster_version = &cv;
        member_logf(m, MLOG_INFO, "etcdserver", "setting up the initial cluster version to %s",
                    METCD_CLUSTER_VERSION);
        propose_internal(m, &req);
    }
    if (!m->published) {
        Memberpb__Request req = MEMBERPB__REQUEST__INIT;
        Memberpb__Attributes at = MEMBERPB__ATTRIBUTES__INIT;
        at.member_id = m->id;
        at.name = (char *)m->opt.name;
        at.n_client_urls = m->opt.n_advertise_client_urls;
        at.client_urls = (char **)m->opt.advertise_client_urls;
        req.op_case = MEMBERPB__REQUEST__OP_PUBLISH;
        req.publish = &at;
        propose_internal(m, &req);
    }
}

static void on_soft_state(member *m, const raft_soft_state *ss)
{
    bool lead_changed = ss->lead != m->lead;
    m->state = ss->state;
    if (lead_changed) {
        if (ss->lead != RAFT_NONE) {
            member_logf(m, MLOG_INFO, "raft", "raft.node: %016llx elected leader %016llx at term %llu",
                        (unsigned long long)m->id, (unsigned long long)ss->lead,
                        (unsigned long long)m->term);
            m->leader_changes++;
        } else {
            member_logf(m, MLOG_INFO, "raft", "raft.node: %016llx lost leader %016llx at term %llu",
                        (unsigned long long)m->id, (unsigned long long)m->lead,
                        (unsigned long long)m->term);
        }
        m->lead = ss->lead;
    }
    if (m->lead != RAFT_NONE && (lead_changed || m->state == RAFT_LEADER))
        after_leader_known(m);
    lease_on_state(m);
    if (lead_changed)
        move_leader_check(m, member_now_ms());
}

static void maybe_snapshot(member *m)
{
    if (m->opt.snapshot_count == 0 || m->applied < m->snapshot_index + m->opt.snapshot_count)
        return;
    uint64_t idx = m->applied;
    member_logf(m, MLOG_INFO, "etcdserver", "start to snapshot (applied: %llu, lastsnap: %llu)",
                (unsigned long long)idx, (unsigned long long)m->snapshot_index);
    /* The state machine's state is LMDB itself: make it durable first. */
    int rc = backend_commit(m->be);
    if (rc) {
        member_logf(m, MLOG_ERROR, "etcdserver", "snapshot: backend commit failed: %s",
                    backend_errmsg(m->be));
        return;
    }
    rc = raft_mem_storage_create_snapshot(m->ms, idx, &m->conf, NULL);
    if (rc && rc != RAFT_ESNAPOUTOFDATE) {
        member_logf(m, MLOG_ERROR, "etcdserver", "snapshot: %s", raft_strerror(rc));
        return;
    }
    uint64_t term = 0;
    raft_storage view = raft_mem_storage_view(m->ms);
    view.ops->term(view.data, idx, &term);
    wal_snapshot ws = {idx, term};
    wal_write wr = {.snapshot = &ws};
    rc = wal_append_sync(m->wal, &wr);
    if (rc) {
        fatal(m, "failed to write the snapshot marker", rc, wal_errmsg(m->wal));
        return;
    }
    m->snapshot_index = idx;
    member_logf(m, MLOG_INFO, "etcdserver", "saved snapshot at index %llu",
                (unsigned long long)idx);
    /* Keep a catch-up window of entries for slow followers (etcd: 5000). */
    if (idx > 5000) {
        uint64_t compact_to = idx - 5000;
        if (compact_to > raft_mem_storage_first_index(m->ms) &&
            raft_mem_storage_compact(m->ms, compact_to) == 0) {
            member_logf(m, MLOG_INFO, "etcdserver", "compacted raft log at %llu",
                        (unsigned long long)compact_to);
            wal_release(m->wal, compact_to);
        }
    }
}

static void relearn_conf_change(member *m, const raft_entry *e)
{
    raft_conf_change cc;
    if (e->data && raft_conf_change_decode(e->data->data, e->data->len, &cc) == 0) {
        raft_apply_conf_change(m->raft, &cc, NULL);
        raft_buf_unref(cc.context);
    }
}

static void process_ready(member *m)
{
    while (!m->fatal && raft_has_ready(m->raft)) {
        struct raft_ready rd;
        if (raft_ready(m->raft, &rd))
            break;
        if (rd.has_hard_state)
            m->term = rd.hard_state.term;
        if (rd.has_soft_state)
            on_soft_state(m, &rd.soft_state);
        peers_send(m, rd.msgs, rd.n_msgs);
        if (rd.snapshot) {
            char err[512];
            if (peers_install_snapshot(m, rd.snapshot, err, sizeof(err)) != 0) {
                member_logf(m, MLOG_CRIT, "etcdserver", "failed to install snapshot: %s", err);
                m->fatal = true;
                event_base_loopbreak(m->base);
                raft_advance(m->raft, &rd);
                return;
            }
            reads_on_applied(m);
        }
        if (rd.snapshot || rd.n_entries || rd.has_hard_state || rd.n_msgs_after_persist) {
            if (persist(m, &rd)) {
                raft_advance(m->raft, &rd);
                return;
            }
        }
        for (size_t i = 0; i < rd.n_committed && !m->fatal; i++) {
            const raft_entry *e = &rd.committed[i];
            if (e->index <= m->applied) {
                /* Already in LMDB (raft restarts from the snapshot index):
                 * skip the data, but raft relearns membership from every
                 * conf change after its snapshot. */
                if (e->type == RAFT_ENTRY_CONF_CHANGE)
                    relearn_conf_change(m, e);
                raft_applied(m->raft, e->index);
                continue;
            }
            backend_hold(m->be);
            if (e->type == RAFT_ENTRY_CONF_CHANGE)
                apply_conf_change(m, e);
            else if (e->data && e->data->len)
                apply_entry(m, e);
            mvcc_set_consistent_index(m->kv, e->index);
            int rc = backend_release(m->be);
            if (rc)
                member_logf(m, MLOG_ERROR, "etcdserver", "backend commit failed: %s",
                            backend_errmsg(m->be));
            m->applied = e->index;
            m->committed = e->index > m->committed ? e->index : m->committed;
            raft_applied(m->raft, e->index);
        }
        for (size_t i = 0; i < rd.n_read_states; i++) {
            if (lease_is_ctx(rd.read_states[i].ctx))
                lease_on_read_state(m, rd.read_states[i].ctx);
            else
                reads_on_read_state(m, rd.read_states[i].ctx, rd.read_states[i].index);
        }
        bool applied_some = rd.n_committed > 0; /* raft_advance zeroes rd */
        raft_advance(m->raft, &rd);
        if (applied_some) {
            reads_on_applied(m);
            maybe_snapshot(m);
        }
    }
}

static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    process_ready(arg);
}

void raftnode_kick(member *m)
{
    if (m->ready_ev)
        event_active(m->ready_ev, EV_READ, 0);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    member *m = arg;
    raft_tick(m->raft);
    raftnode_kick(m);
}

int raftnode_propose(member *m, const Memberpb__Request *req)
{
    size_t len = memberpb__request__get_packed_size(req);
    uint8_t *buf = metcd_malloc(len ? len : 1);
    if (!buf)
        return RAFT_ENOMEM;
    memberpb__request__pack(req, buf);
    int rc = raft_propose(m->raft, buf, len);
    metcd_free(buf);
    if (rc == 0)
        raftnode_kick(m);
    return rc;
}

int raftnode_read_index(member *m, uint64_t round)
{
    int rc = raft_read_index(m->raft, round);
    if (rc == 0)
        raftnode_kick(m);
    return rc;
}

void raftnode_status(const member *m, raft_status *st)
{
    raft_status_get(m->raft, st);
}

/* ---- start / stop ------------------------------------------------------------- */

static int write_bootstrap_metadata(member *m, char *errbuf, size_t errlen)
{
    Memberpb__WalMetadata md = MEMBERPB__WAL_METADATA__INIT;
    md.node_id = m->id;
    md.cluster_id = m->cluster_id;
    uint8_t buf[64];
    size_t len = memberpb__wal_metadata__pack(&md, buf);
    wal_write wr = {.metadata = buf, .metadata_len = len};
    int rc = wal_append_sync(m->wal, &wr);
    if (rc)
        snprintf(errbuf, errlen, "cannot write WAL metadata: %s", wal_errmsg(m->wal));
    return rc;
}

static uint64_t rand_fn(void *data, uint64_t n)
{
    (void)data;
    return n ? ((uint64_t)random() << 31 ^ (uint64_t)random()) % n : 0;
}

int raftnode_start(member *m, char *errbuf, size_t errlen)
{
    wal_options wo = {.base = m->base};
    int rc = wal_open(&m->wal, m->wal_path, &wo, errbuf, errlen);
    if (rc)
        return rc;
    wal_replay_result *rr = NULL;
    rc = wal_replay(m->wal, WAL_FROM_SNAPSHOT, &rr);
    if (rc) {
        snprintf(errbuf, errlen, "cannot read the WAL: %s", wal_errmsg(m->wal));
        return rc;
    }
    m->ms = raft_mem_storage_new();
    if (!m->ms) {
        wal_replay_free(rr);
        snprintf(errbuf, errlen, "out of memory");
        return RAFT_ENOMEM;
    }
    bool restart = rr->metadata != NULL;
    if (restart) {
        Memberpb__WalMetadata *md =
            memberpb__wal_metadata__unpack(&metcd_pb_allocator, rr->metadata_len, rr->metadata);
        if (!md) {
            wal_replay_free(rr);
            snprintf(errbuf, errlen, "the WAL metadata record is not readable");
            return BACKEND_EWAL_CORRUPT;
        }
        m->id = md->node_id;
        m->cluster_id = md->cluster_id;
        memberpb__wal_metadata__free_unpacked(md, &metcd_pb_allocator);
        member_logf(m, MLOG_INFO, "etcdserver", "restarting member %016llx in cluster %016llx at commit index %llu",
                    (unsigned long long)m->id, (unsigned long long)m->cluster_id,
                    (unsigned long long)(rr->has_hardstate ? rr->hardstate.commit : 0));
        if (rr->has_snapshot) {
            raft_snapshot snap = {.meta = {rr->snapshot.index, rr->snapshot.term, m->conf}};
            raft_mem_storage_apply_snapshot(m->ms, &snap);
            m->snapshot_index = rr->snapshot.index;
        }
        for (size_t i = 0; i < rr->n_entries && rc == 0; i++) {
            raft_entry e;
            rc = raft_entry_decode(rr->entries[i].data, rr->entries[i].len, &e);
            if (rc == 0) {
                rc = raft_mem_storage_append(m->ms, &e, 1);
                raft_buf_unref(e.data);
            }
        }
        if (rc == 0 && rr->has_hardstate) {
            raft_hard_state hs = {rr->hardstate.term, rr->hardstate.vote, rr->hardstate.commit};
            rc = raft_mem_storage_set_hard_state(m->ms, &hs);
            m->term = hs.term;
        }
        if (rc) {
            wal_replay_free(rr);
            snprintf(errbuf, errlen, "cannot rebuild the raft log from the WAL: %s",
                     raft_strerror(rc));
            return rc;
        }
    } else {
        rc = write_bootstrap_metadata(m, errbuf, errlen);
        if (rc) {
            wal_replay_free(rr);
            return rc;
        }
        member_logf(m, MLOG_INFO, "etcdserver", "starting member %016llx in cluster %016llx",
                    (unsigned long long)m->id, (unsigned long long)m->cluster_id);
    }
    wal_replay_free(rr);

    /* LMDB holds everything up to its consistent index; raft restarts from
     * its snapshot and hands the rest out again (skipped in process_ready). */
    uint64_t applied = mvcc_consistent_index(m->kv);
    if (applied < m->snapshot_index)
        applied = m->snapshot_index;
    m->applied = applied;
    uint64_t hb = m->opt.heartbeat_ms ? m->opt.heartbeat_ms : 100;
    uint64_t el = m->opt.election_ms ? m->opt.election_ms : 1000;
    raft_config rc_cfg = {
        .id = m->id,
        .voters = m->conf.voters,
        .n_voters = m->conf.n_voters,
        .learners = m->conf.learners,
        .n_learners = m->conf.n_learners,
        .election_tick = (int)(el / hb),
        .heartbeat_tick = 1,
        .check_quorum = true,
        .pre_vote = m->opt.pre_vote,
        .max_size_per_msg = 1 << 20,
        .max_inflight_msgs = 512,
        .max_uncommitted_size = (uint64_t)1 << 30,
        .applied = m->snapshot_index,
        .storage = raft_mem_storage_view(m->ms),
        .rand = rand_fn,
    };
    srandom((unsigned)(m->id ^ (uint64_t)member_now_ms()));
    rc = raft_new(&rc_cfg, &m->raft);
    if (rc) {
        snprintf(errbuf, errlen, "cannot start raft: %s", raft_strerror(rc));
        return rc;
    }
    m->ready_ev = event_new(m->base, -1, 0, on_ready, m);
    m->tick_ev = event_new(m->base, -1, EV_PERSIST, on_tick, m);
    if (!m->ready_ev || !m->tick_ev) {
        snprintf(errbuf, errlen, "out of memory");
        return RAFT_ENOMEM;
    }
    struct timeval tv = {(time_t)(hb / 1000), (suseconds_t)((hb % 1000) * 1000)};
    evtimer_add(m->tick_ev, &tv);
    /* A cluster of one need not wait an election timeout. */
    if (m->conf.n_voters == 1 && m->conf.voters[0] == m->id)
        raft_campaign(m->raft);
    raftnode_kick(m);
    return 0;
}

void raftnode_stop(member *m)
{
    m->stopping = true;
    if (m->tick_ev)
        event_free(m->tick_ev);
    m->tick_ev = NULL;
    /* Drains the WAL queue: completions run from inside wal_close. */
    wal_close(m->wal);
    m->wal = NULL;
    if (m->ready_ev)
        event_free(m->ready_ev);
    m->ready_ev = NULL;
    raft_free(m->raft);
    m->raft = NULL;
    raft_mem_storage_free(m->ms);
    m->ms = NULL;
}
