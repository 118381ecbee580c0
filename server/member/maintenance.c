/* server/member/maintenance.c - etcdserverpb.Maintenance, Cluster
 * (MemberList), grpc.health.v1 and the plain HTTP endpoints /health and
 * /version, answering as etcd 3.4 does (v3rpc/maintenance.go,
 * v3rpc/member.go, etcdhttp). */
#include "server/member/internal.h"

#include "backend/bbolt.h"
#include "common/mem.h"

#include <errno.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAPSHOT_CHUNK (32 * 1024) /* etcd's snapshotSendBufferSize */
#define SNAPSHOT_MAX_EXPORTS 4     /* threads writing snapshot images at once */

bool member_has_leader(const member *m)
{
    return m->lead != RAFT_NONE;
}

/* ---- Status / Hash / HashKV / Defragment ------------------------------------------ */

static void on_status(struct rpc_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    member *m = rpc_call_service_data(call);
    Etcdserverpb__StatusResponse resp = ETCDSERVERPB__STATUS_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    fill_header(m, &h, mvcc_current_rev(m->kv));
    resp.header = &h;
    resp.version = (char *)METCD_VERSION;
    resp.leader = m->lead;
    raft_status st;
    raftnode_status(m, &st);
    resp.raftindex = st.commit;
    resp.raftappliedindex = m->applied;
    resp.raftterm = st.term;
    resp.dbsize = backend_size(m->be);
    resp.dbsizeinuse = backend_size_in_use(m->be);
    for (size_t i = 0; i < st.conf.n_learners; i++)
        if (st.conf.learners[i] == m->id)
            resp.islearner = 1;
    char *errs[1 + 16];
    char bufs[16][96];
    size_t n = 0;
    if (m->lead == RAFT_NONE)
        errs[n++] = (char *)"etcdserver: no leader";
    for (size_t i = 0; i < m->n_alarms && i < 16; i++) {
        snprintf(bufs[i], sizeof(bufs[i]), "memberID:%llu alarm:%s ",
                 (unsigned long long)m->alarms[i].member_id,
                 m->alarms[i].type == ETCDSERVERPB__ALARM_TYPE__NOSPACE ? "NOSPACE" : "CORRUPT");
        errs[n++] = bufs[i];
    }
    resp.errors = errs;
    resp.n_errors = n;
    rpc_call_reply(call, &resp.base);
}

static int skip_consistent_index(void *arg, int bucket, backend_val key)
{
    (void)arg;
    /* members may differ in it (etcd's Hash ignores it too) */
    return bucket == BACKEND_META && key.len == strlen("consistent_index") &&
           memcmp(key.data, "consistent_index", key.len) == 0;
}

/* etcd's admin-only maintenance (authMaintenanceServer.isAuthenticated):
 * with auth enabled, only a user with the root role. Fails the call with
 * the unconverted auth error, as etcd, and returns true when refused. */
static bool admin_refused(struct rpc_call *call)
{
    int rc = auth_check_call_admin(rpc_call_service_data(call), call);
    if (rc)
        member_fail_call_auth_raw(call, rc);
    return rc != 0;
}

static void on_hash(struct rpc_call *call, const ProtobufCMessage *msg)
{
    if (admin_refused(call))
        return;
    (void)msg;
    member *m = rpc_call_service_data(call);
    uint32_t hash;
    int rc = backend_hash(m->be, skip_consistent_index, NULL, &hash);
    if (rc) {
        member_fail_call(call, rc);
        return;
    }
    Etcdserverpb__HashResponse resp = ETCDSERVERPB__HASH_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    fill_header(m, &h, mvcc_current_rev(m->kv));
    resp.header = &h;
    resp.hash = hash;
    rpc_call_reply(call, &resp.base);
}

static void on_hash_kv(struct rpc_call *call, const ProtobufCMessage *msg)
{
    if (admin_refused(call))
        return;
    member *m = rpc_call_service_data(call);
    const Etcdserverpb__HashKVRequest *req = (const Etcdserverpb__HashKVRequest *)msg;
    uint32_t hash;
    int64_t rev, compact;
    int rc = mvcc_hash_kv(m->kv, req->revision, &hash, &rev, &compact);
    if (rc) {
        member_fail_call(call, rc);
        return;
    }
    Etcdserverpb__HashKVResponse resp = ETCDSERVERPB__HASH_KVRESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    fill_header(m, &h, rev);
    resp.header = &h;
    resp.hash = hash;
    resp.compact_revision = compact;
    rpc_call_reply(call, &resp.base);
}

static void on_defragment(struct rpc_call *call, const ProtobufCMessage *msg)
{
    if (admin_refused(call))
        return;
    (void)msg;
    member *m = rpc_call_service_data(call);
    member_logf(m, MLOG_NOTICE, "etcdserver", "starting to defragment the storage backend...");
    int64_t before = backend_size(m->be);
    int rc = backend_defrag(m->be);
    if (rc) {
        member_logf(m, MLOG_ERROR, "etcdserver", "failed to defragment the storage backend (%s)",
                    backend_errmsg(m->be));
        member_fail_call(call, rc);
        return;
    }
    member_logf(m, MLOG_NOTICE, "etcdserver",
                "finished defragmenting the storage backend (%lld bytes -> %lld bytes)",
                (long long)before, (long long)backend_size(m->be));
    /* an empty answer, as etcd 3.4's */
    Etcdserverpb__DefragmentResponse resp = ETCDSERVERPB__DEFRAGMENT_RESPONSE__INIT;
    rpc_call_reply(call, &resp.base);
}

/* ---- Snapshot: the database stream, then its SHA-256 (as etcd) ----------------------
 *
 * The bbolt image is written by a thread of its own from an LMDB read view,
 * so the member goes on serving (and heartbeating) while a large database
 * is exported; the loop learns of the end through an eventfd and streams
 * the file. A call that goes away meanwhile only marks the stream; the end
 * of the export frees it. member_stop joins exports still running. */

struct snap_stream {
    member *m;
    int fd;
    int64_t total, sent;
    EVP_MD_CTX *sha;
    uint8_t *buf;
    size_t pending_len; /* a chunk read but refused by a full queue */
    /* the export, while its thread runs */
    bool exporting;
    struct rpc_call *call; /* NULL once the call ended during the export */
    backend_view *view;
    pthread_t thread;
    int efd;
    struct event *done_ev;
    int export_rc;
    int64_t export_size;
    struct snap_stream *next; /* m->snap_exports */
};

static void snap_free(struct snap_stream *s)
{
    if (s->fd >= 0)
        close(s->fd);
    if (s->done_ev)
        event_free(s->done_ev);
    if (s->efd >= 0)
        close(s->efd);
    backend_view_close(s->view);
    EVP_MD_CTX_free(s->sha);
    metcd_free(s->buf);
    metcd_free(s);
}

static int snap_send(struct rpc_call *call, const uint8_t *blob, size_t len, uint64_t remaining)
{
    Etcdserverpb__SnapshotResponse resp = ETCDSERVERPB__SNAPSHOT_RESPONSE__INIT;
    resp.remaining_bytes = remaining;
    resp.blob.data = (uint8_t *)blob;
    resp.blob.len = len;
    return rpc_call_send(call, &resp.base);
}

/* Sends until the stream's queue is full or everything is out. */
static void snap_pump(struct rpc_call *call)
{
    struct snap_stream *s = rpc_call_get_data(call);
    for (;;) {
        if (s->pending_len == 0 && s->sent < s->total) {
            ssize_t n = read(s->fd, s->buf, SNAPSHOT_CHUNK);
            if (n <= 0) {
                rpc_call_set_data(call, NULL);
                snap_free(s);
                rpc_call_finish(call, RPC_CODE_UNKNOWN, "etcdserver: snapshot read failed");
                return;
            }
            s->pending_len = (size_t)n;
        }
        if (s->pending_len) {
            int rc = snap_send(call, s->buf, s->pending_len,
                               (uint64_t)(s->total - s->sent - (int64_t)s->pending_len));
            if (rc == RPC_ERR_FULL)
                return; /* on_drain resumes */
            if (rc) {
                rpc_call_set_data(call, NULL);
                snap_free(s);
                rpc_call_finish(call, RPC_CODE_INTERNAL, rpc_strerror(rc));
                return;
            }
            EVP_DigestUpdate(s->sha, s->buf, s->pending_len);
            s->sent += (int64_t)s->pending_len;
            s->pending_len = 0;
            continue;
        }
        /* all of the database is out: the digest closes the stream */
        uint8_t digest[32];
        unsigned int dlen = 0;
        EVP_DigestFinal_ex(s->sha, digest, &dlen);
        int rc = snap_send(call, digest, sizeof(digest), 0);
        if (rc == RPC_ERR_FULL) {
            /* keep the digest for on_drain: re-init is not possible, so
             * stash it as the pending chunk */
            memcpy(s->buf, digest, sizeof(digest));
            s->pending_len = 0;
            s->total = -1;
            return;
        }
        member_logf(s->m, MLOG_INFO, "etcdserver/api/v3rpc",
                    "finished sending database snapshot (%lld bytes)", (long long)s->sent);
        rpc_call_set_data(call, NULL);
        snap_free(s);
        rpc_call_finish(call, RPC_CODE_OK, NULL);
        return;
    }
}

static void snap_drain(struct rpc_call *call)
{
    struct snap_stream *s = rpc_call_get_data(call);
    if (!s || s->exporting)
        return;
    if (s->total == -1) {
        /* only the digest is left */
        if (snap_send(call, s->buf, 32, 0) == RPC_ERR_FULL)
            return;
        rpc_call_set_data(call, NULL);
        snap_free(s);
        rpc_call_finish(call, RPC_CODE_OK, NULL);
        return;
    }
    snap_pump(call);
}

static void snap_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    struct snap_stream *s = rpc_call_get_data(call);
    rpc_call_set_data(call, NULL);
    if (!s)
        return;
    if (s->exporting) {
        s->call = NULL; /* snap_export_done frees it */
        return;
    }
    snap_free(s);
}

static void *snap_export_main(void *arg)
{
    struct snap_stream *s = arg;
    s->export_rc = bbolt_export(s->view, s->fd, &s->export_size);
    backend_view_close(s->view);
    s->view = NULL;
    uint64_t one = 1;
    while (write(s->efd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
    return NULL;
}

/* Takes s off the member's list of running exports and joins its thread. */
static void snap_export_join(struct snap_stream *s)
{
    for (struct snap_stream **pp = &s->m->snap_exports; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    pthread_join(s->thread, NULL);
    s->exporting = false;
}

static void snap_export_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct snap_stream *s = arg;
    member *m = s->m;
    snap_export_join(s);
    struct rpc_call *call = s->call;
    if (!call) { /* the call went away meanwhile */
        snap_free(s);
        return;
    }
    int rc = s->export_rc;
    if (rc) {
        member_logf(m, MLOG_WARN, "etcdserver/api/v3rpc", "failed to write the snapshot: %s",
                    bbolt_strerror(rc));
        rpc_call_set_data(call, NULL);
        snap_free(s);
        rpc_call_finish(call, RPC_CODE_UNKNOWN, bbolt_strerror(rc));
        return;
    }
    s->total = s->export_size;
    s->sha = EVP_MD_CTX_new();
    if (lseek(s->fd, 0, SEEK_SET) != 0 || !s->sha ||
        EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL) != 1) {
        rpc_call_set_data(call, NULL);
        snap_free(s);
        member_fail_call(call, MERR_INTERNAL);
        return;
    }
    member_logf(m, MLOG_INFO, "etcdserver/api/v3rpc",
                "sending database snapshot to client (%lld bytes)", (long long)s->total);
    snap_pump(call);
}

void snapshot_stop(member *m)
{
    while (m->snap_exports) {
        struct snap_stream *s = m->snap_exports;
        snap_export_join(s); /* the export ends by itself: it waits on nothing */
        snap_free(s);        /* its call was cancelled with the server */
    }
}

static void on_snapshot(struct rpc_call *call, const ProtobufCMessage *msg)
{
    if (admin_refused(call))
        return;
    (void)msg;
    member *m = rpc_call_service_data(call);
    size_t running = 0;
    for (const struct snap_stream *e = m->snap_exports; e; e = e->next)
        running++;
    if (running >= SNAPSHOT_MAX_EXPORTS) { /* each is a thread and a database-sized file */
        member_fail_call(call, MERR_TOO_MANY_REQUESTS);
        return;
    }
    struct snap_stream *s = metcd_calloc(1, sizeof(*s));
    if (!s || !(s->buf = metcd_malloc(SNAPSHOT_CHUNK))) {
        metcd_free(s);
        member_fail_call(call, MERR_INTERNAL);
        return;
    }
    s->m = m;
    s->call = call;
    s->efd = -1;
    char path[4096];
    snprintf(path, sizeof(path), "%s/snapshot.XXXXXX", m->db_path);
    s->fd = mkstemp(path);
    if (s->fd < 0) {
        int e = errno;
        snap_free(s);
        rpc_call_finish(call, RPC_CODE_UNKNOWN, strerror(e));
        return;
    }
    unlink(path); /* only the descriptor keeps it */
    /* etcd streams its bbolt file, and etcdctl's snapshot status and
     * restore read what it saved with bbolt: write the buckets as one,
     * from a read view (what is applied now), on a thread of its own */
    int rc = backend_view_open(m->be, &s->view);
    if (rc == 0) {
        s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        s->done_ev = s->efd >= 0 ? event_new(m->base, s->efd, EV_READ, snap_export_done, s) : NULL;
        if (!s->done_ev || event_add(s->done_ev, NULL) != 0)
            rc = MERR_INTERNAL;
    }
    if (rc == 0) {
        s->exporting = true;
        if (pthread_create(&s->thread, NULL, snap_export_main, s) != 0) {
            s->exporting = false;
            rc = MERR_INTERNAL;
        }
    }
    if (rc) {
        snap_free(s);
        member_fail_call(call, rc);
        return;
    }
    s->next = m->snap_exports;
    m->snap_exports = s;
    rpc_call_set_data(call, s);
}

/* ---- Alarm / MoveLeader -------------------------------------------------------------- */

static void on_alarm(struct rpc_call *call, const ProtobufCMessage *msg)
{
    member *m = rpc_call_service_data(call);
    Etcdserverpb__AlarmRequest *a = (Etcdserverpb__AlarmRequest *)msg;
    if (a->action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET) {
        /* no header, as etcd 3.4 (its applier fills none for alarms) */
        Etcdserverpb__AlarmResponse resp = ETCDSERVERPB__ALARM_RESPONSE__INIT;
        Etcdserverpb__AlarmMember am[16];
        Etcdserverpb__AlarmMember *ptr[16];
        size_t n = 0;
        for (size_t i = 0; i < m->n_alarms && n < 16; i++) {
            if (a->alarm != ETCDSERVERPB__ALARM_TYPE__NONE && m->alarms[i].type != (int)a->alarm)
                continue;
            etcdserverpb__alarm_member__init(&am[n]);
            am[n].memberid = m->alarms[i].member_id;
            am[n].alarm = (Etcdserverpb__AlarmType)m->alarms[i].type;
            ptr[n] = &am[n];
            n++;
        }
        resp.alarms = ptr;
        resp.n_alarms = n;
        rpc_call_reply(call, &resp.base);
        return;
    }
    if (a->action != ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE &&
        a->action != ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE) {
        rpc_call_finish(call, RPC_CODE_INVALID_ARGUMENT, "etcdserver: invalid alarm action");
        return;
    }
    waiter *w = wait_register(m, WAIT_ALARM, call);
    if (!w) {
        member_fail_call(call, MERR_TOO_MANY_REQUESTS);
        return;
    }
    Memberpb__Request req = MEMBERPB__REQUEST__INIT;
    req.id = w->id;
    req.op_case = MEMBERPB__REQUEST__OP_ALARM;
    req.alarm = a;
    int rc = raftnode_propose(m, &req);
    if (rc) {
        metcd_free(wait_take(m, w->id));
        member_fail_call(call, rc);
    }
}

static void move_leader_reply(member *m, int err)
{
    struct rpc_call *call = m->move_call;
    m->move_call = NULL;
    if (err) {
        member_fail_call(call, err);
        return;
    }
    member_logf(m, MLOG_INFO, "etcdserver", "%016llx finished leadership transfer from %016llx to %016llx (took %lldms)",
                (unsigned long long)m->id, (unsigned long long)m->move_from,
                (unsigned long long)m->move_transferee,
                (long long)(member_now_ms() - m->move_start_ms));
    /* an empty answer, as etcd 3.4's */
    Etcdserverpb__MoveLeaderResponse resp = ETCDSERVERPB__MOVE_LEADER_RESPONSE__INIT;
    rpc_call_reply(call, &resp.base);
}

/* Called when the leader changes and from the sweep timer. */
void move_leader_check(member *m, int64_t now_ms)
{
    if (!m->move_call)
        return;
    if (m->lead == m->move_transferee)
        move_leader_reply(m, 0);
    else if (now_ms >= m->move_deadline_ms)
        move_leader_reply(m, MERR_LEADER_TRANSFER_TIMEOUT);
}

static void on_move_leader_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    member *m = rpc_call_service_data(call);
    if (m->move_call == call)
        m->move_call = NULL;
}

/* etcd's MoveLeader: only the leader moves the leadership, to a voting
 * member, and answers once the transferee leads (or the request's time is
 * up: "leader transfer took too long"). */
static void on_move_leader(struct rpc_call *call, const ProtobufCMessage *msg)
{
    if (admin_refused(call))
        return;
    member *m = rpc_call_service_data(call);
    const Etcdserverpb__MoveLeaderRequest *req = (const Etcdserverpb__MoveLeaderRequest *)msg;
    if (m->state != RAFT_LEADER) {
        member_fail_call(call, MERR_NOT_LEADER);
        return;
    }
    bool voter = false;
    for (size_t i = 0; i < m->conf.n_voters; i++)
        voter |= m->conf.voters[i] == req->targetid;
    if (!voter) {
        member_fail_call(call, MERR_BAD_LEADER_TRANSFEREE);
        return;
    }
    if (m->move_call) {
        member_fail_call(call, MERR_TOO_MANY_REQUESTS);
        return;
    }
    m->move_call = call;
    m->move_transferee = req->targetid;
    m->move_from = m->id;
    m->move_start_ms = member_now_ms();
    int64_t left = rpc_call_remaining_ms(call);
    m->move_deadline_ms =
        m->move_start_ms + (left >= 0 ? left : (int64_t)member_request_timeout_ms(m));
    if (req->targetid == m->id) {
        move_leader_reply(m, 0);
        return;
    }
    member_logf(m, MLOG_INFO, "etcdserver", "%016llx starts leadership transfer from %016llx to %016llx",
                (unsigned long long)m->id, (unsigned long long)m->id,
                (unsigned long long)req->targetid);
    raft_transfer_leader(m->raft, req->targetid);
    raftnode_kick(m);
}

static void on_cancel_forget(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    wait_forget_call(rpc_call_service_data(call), call);
}

static const struct rpc_method maintenance_methods[] = {
    {"/etcdserverpb.Maintenance/Alarm", RPC_UNARY, &etcdserverpb__alarm_request__descriptor,
     &etcdserverpb__alarm_response__descriptor, NULL, on_alarm, NULL, on_cancel_forget, NULL},
    {"/etcdserverpb.Maintenance/Status", RPC_UNARY, &etcdserverpb__status_request__descriptor,
     &etcdserverpb__status_response__descriptor, NULL, on_status, NULL, NULL, NULL},
    {"/etcdserverpb.Maintenance/Defragment", RPC_UNARY,
     &etcdserverpb__defragment_request__descriptor,
     &etcdserverpb__defragment_response__descriptor, NULL, on_defragment, NULL, NULL, NULL},
    {"/etcdserverpb.Maintenance/Hash", RPC_UNARY, &etcdserverpb__hash_request__descriptor,
     &etcdserverpb__hash_response__descriptor, NULL, on_hash, NULL, NULL, NULL},
    {"/etcdserverpb.Maintenance/HashKV", RPC_UNARY, &etcdserverpb__hash_kvrequest__descriptor,
     &etcdserverpb__hash_kvresponse__descriptor, NULL, on_hash_kv, NULL, NULL, NULL},
    {"/etcdserverpb.Maintenance/Snapshot", RPC_SERVER_STREAM,
     &etcdserverpb__snapshot_request__descriptor, &etcdserverpb__snapshot_response__descriptor,
     NULL, on_snapshot, NULL, snap_cancel, snap_drain},
    {"/etcdserverpb.Maintenance/MoveLeader", RPC_UNARY,
     &etcdserverpb__move_leader_request__descriptor,
     &etcdserverpb__move_leader_response__descriptor, NULL, on_move_leader, NULL,
     on_move_leader_cancel, NULL},
};

int maintenance_register(member *m)
{
    return rpc_server_register(m->rpc, maintenance_methods,
                               sizeof(maintenance_methods) / sizeof(maintenance_methods[0]), m);
}

/* ---- health and HTTP ---------------------------------------------------------------------- */

static int health_check(const char *service, void *data)
{
    member *m = data;
    if (service[0])
        return 0;
    return m->serving && member_has_leader(m) ? 1 : 2;
}

static void http_version(struct rpc_http_req *req, void *data)
{
    member *m = data;
    char body[128];
    /* etcd prints the cluster version as a full semver ("3.4.0") */
    int n = m->cluster_version[0]
                ? snprintf(body, sizeof(body), "{\"etcdserver\":\"%s\",\"etcdcluster\":\"%s.0\"}",
                           METCD_VERSION, m->cluster_version)
                : snprintf(body, sizeof(body),
                           "{\"etcdserver\":\"%s\",\"etcdcluster\":\"not_decided\"}",
                           METCD_VERSION);
    rpc_http_respond(req, 200, "application/json", body, (size_t)n);
}

int http_register(member *m)
{
    int rc = rpc_server_add_health(m->rpc, health_check, m);
    if (rc == 0)
        rc = observe_register(m, m->rpc, true);
    if (rc == 0)
        rc = rpc_server_route(m->rpc, "/version", http_version, NULL, m);
    return rc;
}
