/* server/member/peers.c - the member's side of the peer transport
 * (server/peer): raft messages out and in, transport feedback to raft, and
 * database snapshots.
 *
 * Sending a snapshot: raft asks for one (MsgSnap) when a follower is behind
 * the compacted log. Like etcd's merged snapshot, the member sends its
 * current database, a consistent LMDB copy whose consistent index is the
 * applied index, and rewrites the message's metadata to that index.
 *
 * Receiving one: the database arrives in a file; raft is stepped with the
 * MsgSnap. Only if raft accepts it (a Ready carries the snapshot) is the
 * database swapped in (rename over data.mdb, reopen, rebuild the index);
 * the WAL marker follows. A crash in between leaves LMDB ahead of the WAL,
 * which restart handles: entries at or below LMDB's consistent index are
 * never applied twice. */
#include "server/member/internal.h"

#include "common/mem.h"
#include "server/peer/peer.h"
#include "watch/watch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void on_peer_message(void *arg, const raft_msg *msg)
{
    member *m = arg;
    if (m->stopping || !m->raft)
        return;
    int rc = raft_step(m->raft, msg);
    if (rc && rc != RAFT_EPEER)
        member_logf(m, MLOG_DEBUG, "raft", "step %s from %016llx: %s",
                    raft_msg_type_name(msg->type), (unsigned long long)msg->from,
                    raft_strerror(rc));
    raftnode_kick(m);
}

static void on_peer_snapshot(void *arg, const raft_msg *msg, int fd)
{
    member *m = arg;
    if (m->stopping || !m->raft || !msg->snapshot) {
        close(fd);
        return;
    }
    if (m->snap_fd >= 0)
        close(m->snap_fd);
    m->snap_fd = fd;
    m->snap_index = msg->snapshot->meta.index;
    member_logf(m, MLOG_INFO, "rafthttp", "received database snapshot [index: %llu, from: %016llx]",
                (unsigned long long)m->snap_index, (unsigned long long)msg->from);
    raft_step(m->raft, msg);
    raftnode_kick(m);
}

static void on_peer_unreachable(void *arg, uint64_t id)
{
    member *m = arg;
    if (m->raft)
        raft_report_unreachable(m->raft, id);
}

static void on_peer_snapshot_status(void *arg, uint64_t id, bool failed)
{
    member *m = arg;
    if (m->raft) {
        raft_report_snapshot(m->raft, id, failed);
        raftnode_kick(m);
    }
}

/* A joining member's question: the cluster's members as a packed
 * etcdserverpb.MemberListResponse (its header names cluster and member). */
static int on_members_query(void *arg, uint8_t **out, size_t *len)
{
    member *m = arg;
    size_t n = m->n_members;
    Etcdserverpb__Member *pm = metcd_calloc(n ? n : 1, sizeof(*pm));
    Etcdserverpb__Member **ptr = metcd_calloc(n ? n : 1, sizeof(*ptr));
    if (!pm || !ptr) {
        metcd_free(pm);
        metcd_free(ptr);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const member_info *mi = &m->members[i];
        etcdserverpb__member__init(&pm[i]);
        pm[i].id = mi->id;
        pm[i].name = mi->name ? mi->name : (char *)"";
        pm[i].peerurls = mi->peer_urls;
        pm[i].n_peerurls = mi->n_peer_urls;
        pm[i].clienturls = mi->client_urls;
        pm[i].n_clienturls = mi->n_client_urls;
        pm[i].islearner = mi->learner;
        ptr[i] = &pm[i];
    }
    Etcdserverpb__MemberListResponse r = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    fill_header(m, &h, 0);
    r.header = &h;
    r.members = ptr;
    r.n_members = n;
    *len = etcdserverpb__member_list_response__get_packed_size(&r);
    *out = metcd_malloc(*len ? *len : 1);
    if (*out)
        etcdserverpb__member_list_response__pack(&r, *out);
    metcd_free(pm);
    metcd_free(ptr);
    return *out ? 0 : -1;
}

static void peer_log(void *ctx, int level, const char *pkg, const char *msg)
{
    member_logf(ctx, level, pkg, "%s", msg);
}

int peers_start(member *m, char *errbuf, size_t errlen)
{
    m->snap_fd = -1;
    peer_config pc = {
        .self_id = m->id,
        .cluster_id = m->cluster_id,
        .listen_urls = (const char *const *)m->opt.listen_peer_urls,
        .n_listen_urls = m->opt.n_listen_peer_urls,
        .log = peer_log,
        .log_ctx = m,
        .snap_dir = m->db_path, /* same file system as the database */
        .channelz = m->cz,
        .cert_file = m->opt.peer_cert_file,
        .key_file = m->opt.peer_key_file,
        .trusted_ca_file = m->opt.peer_trusted_ca_file,
        .client_cert_auth = m->opt.peer_client_cert_auth,
        .auto_tls = m->opt.peer_auto_tls,
        .crl_file = m->opt.peer_crl_file,
        .allowed_cn = m->opt.peer_cert_allowed_cn,
        .allowed_hostname = m->opt.peer_cert_allowed_hostname,
        .ciphers = m->opt.cipher_suites,
        .n_ciphers = m->opt.n_cipher_suites,
    };
    peer_callbacks cb = {
        .on_message = on_peer_message,
        .on_snapshot = on_peer_snapshot,
        .on_unreachable = on_peer_unreachable,
        .on_snapshot_status = on_peer_snapshot_status,
        .members_info = on_members_query,
        .arg = m,
    };
    int rc = peer_transport_new(&m->peers, m->base, &pc, &cb, errbuf, errlen);
    if (rc)
        return rc;
    for (size_t i = 0; i < m->n_members; i++)
        if (m->members[i].id != m->id)
            peers_member_changed(m, &m->members[i]);
    return 0;
}

void peers_stop(member *m)
{
    peer_transport_free(m->peers);
    m->peers = NULL;
    if (m->snap_fd >= 0)
        close(m->snap_fd);
    m->snap_fd = -1;
}

void peers_member_changed(member *m, const member_info *mi)
{
    if (m->peers && mi->n_peer_urls)
        peer_add(m->peers, mi->id, (const char *const *)mi->peer_urls, mi->n_peer_urls);
}

void peers_member_removed(member *m, uint64_t id)
{
    if (m->peers)
        peer_remove(m->peers, id);
}

bool peers_active(member *m, uint64_t id)
{
    if (!m->peers)
        return false;
    peer_stats st[RAFT_MAX_NODES];
    size_t n = peer_get_stats(m->peers, st, RAFT_MAX_NODES);
    for (size_t i = 0; i < n && i < RAFT_MAX_NODES; i++)
        if (st[i].id == id)
            return st[i].active;
    return false;
}

/* A consistent copy of the database in an unlinked temporary file. */
static int db_copy_fd(member *m)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/snapshot-send.XXXXXX", m->db_path);
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path);
    if (backend_copy_fd(m->be, fd) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_snapshot(member *m, raft_msg *msg)
{
    if (!msg->snapshot) {
        raft_report_snapshot(m->raft, msg->to, true);
        return;
    }
    /* merged snapshot: the current database and its applied index */
    int fd = db_copy_fd(m);
    if (fd < 0) {
        member_logf(m, MLOG_ERROR, "etcdserver", "cannot copy the database for a snapshot: %s",
                    backend_errmsg(m->be));
        raft_report_snapshot(m->raft, msg->to, true);
        return;
    }
    uint64_t term = 0;
    raft_storage view = raft_mem_storage_view(m->ms);
    if (view.ops->term(view.data, m->applied, &term) == 0) {
        msg->snapshot->meta.index = m->applied;
        msg->snapshot->meta.term = term;
    }
    msg->snapshot->meta.conf = m->conf;
    member_logf(m, MLOG_INFO, "rafthttp", "start to send database snapshot [index: %llu, to %016llx]",
                (unsigned long long)msg->snapshot->meta.index, (unsigned long long)msg->to);
    if (peer_send_snapshot(m->peers, msg, fd) != 0)
        raft_report_snapshot(m->raft, msg->to, true);
}

void peers_send(member *m, raft_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        raft_msg *msg = &msgs[i];
        if (msg->to == m->id || msg->to == RAFT_NONE)
            continue;
        if (!m->peers)
            continue;
        if (msg->type == RAFT_MSG_SNAP)
            send_snapshot(m, msg);
        else if (peer_send(m->peers, msg) == PEER_ERR_UNKNOWN)
            raft_report_unreachable(m->raft, msg->to); /* DROPPED: the transport reports it */
    }
}

/* ---- installing a received snapshot ---------------------------------------------- */

static int copy_fd_to(int in, const char *path)
{
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0)
        return -1;
    char buf[1 << 16];
    ssize_t n;
    if (lseek(in, 0, SEEK_SET) != 0) {
        close(out);
        return -1;
    }
    while ((n = read(in, buf, sizeof(buf))) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) {
                close(out);
                return -1;
            }
            off += w;
        }
    }
    int rc = n < 0 || fsync(out) != 0 ? -1 : 0;
    close(out);
    return rc;
}

int peers_install_snapshot(member *m, const raft_snapshot *snap, char *errbuf, size_t errlen)
{
    if (m->snap_fd < 0 || m->snap_index != snap->meta.index) {
        snprintf(errbuf, errlen, "no received database for snapshot index %llu",
                 (unsigned long long)snap->meta.index);
        return -1;
    }
    char tmp[4096], dst[4096];
    snprintf(tmp, sizeof(tmp), "%s/data.mdb.snapshot", m->db_path);
    snprintf(dst, sizeof(dst), "%s/data.mdb", m->db_path);
    if (copy_fd_to(m->snap_fd, tmp) != 0) {
        snprintf(errbuf, errlen, "cannot write the received snapshot: %s", strerror(errno));
        unlink(tmp);
        return -1;
    }
    close(m->snap_fd);
    m->snap_fd = -1;
    /* swap: close the store, rename over the database, reopen */
    lease_store_close(m);
    mvcc_close(m->kv);
    m->kv = NULL;
    backend_close(m->be);
    m->be = NULL;
    if (rename(tmp, dst) != 0) {
        snprintf(errbuf, errlen, "cannot install the received snapshot: %s", strerror(errno));
        return -1;
    }
    int dfd = open(m->db_path, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    if (member_open_store(m, errbuf, errlen) != 0)
        return -1;
    if (m->watch)
        watch_store_set_kv(m->watch, m->kv); /* watchers catch up from the new store */
    member_free_meta(m);
    if (member_meta_load(m) != 0) {
        snprintf(errbuf, errlen, "cannot load the member's state from the snapshot");
        return -1;
    }
    m->conf = snap->meta.conf;
    for (size_t i = 0; i < m->n_members; i++)
        if (m->members[i].id != m->id)
            peers_member_changed(m, &m->members[i]);
    uint64_t ci = mvcc_consistent_index(m->kv);
    m->applied = ci > snap->meta.index ? ci : snap->meta.index;
    member_logf(m, MLOG_INFO, "etcdserver", "applied snapshot at index %llu (database at %llu)",
                (unsigned long long)snap->meta.index, (unsigned long long)ci);
    return 0;
}
