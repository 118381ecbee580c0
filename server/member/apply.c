/* server/member/apply.c - applies committed entries: KV requests into the
 * MVCC store, and the member's own state (published attributes, cluster
 * version, alarms, configuration), answering the waiting client when the
 * proposal was ours. Runs on the loop, one entry at a time, inside a
 * backend hold (raftnode.c).
 *
 * Persisted here, in the backend's buckets:
 *   members    16-hex member id -> etcdserverpb.Member
 *   cluster    "clusterVersion" -> "3.4"
 *   alarm      etcdserverpb.AlarmMember (packed) -> ""
 *   meta       "confState" -> u32 voters, u32 learners, then u64 ids (BE)
 */
#include "server/member/internal.h"

#include "common/mem.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>

static const char CLUSTER_VERSION_KEY[] = "clusterVersion";
static const char CONF_STATE_KEY[] = "confState";

/* ---- members ---------------------------------------------------------------- */

member_info *membership_find(member *m, uint64_t id)
{
    for (size_t i = 0; i < m->n_members; i++)
        if (m->members[i].id == id)
            return &m->members[i];
    return NULL;
}

void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        metcd_free(v[i]);
    metcd_free(v);
}

char **strv_dup(char *const *v, size_t n)
{
    char **out = metcd_calloc(n ? n : 1, sizeof(*out));
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = metcd_strdup(v[i]);
        if (!out[i]) {
            strv_free(out, i);
            return NULL;
        }
    }
    return out;
}

member_info *membership_add(member *m, uint64_t id)
{
    member_info *mi = membership_find(m, id);
    if (mi)
        return mi;
    member_info *v = metcd_realloc(m->members, (m->n_members + 1) * sizeof(*v));
    if (!v)
        return NULL;
    m->members = v;
    mi = &m->members[m->n_members++];
    memset(mi, 0, sizeof(*mi));
    mi->id = id;
    return mi;
}

void membership_persist(member *m, const member_info *mi)
{
    Etcdserverpb__Member pm = ETCDSERVERPB__MEMBER__INIT;
    pm.id = mi->id;
    pm.name = mi->name ? mi->name : (char *)"";
    pm.n_peerurls = mi->n_peer_urls;
    pm.peerurls = mi->peer_urls;
    pm.n_clienturls = mi->n_client_urls;
    pm.clienturls = mi->client_urls;
    pm.islearner = mi->learner;
    size_t len = etcdserverpb__member__get_packed_size(&pm);
    uint8_t *buf = metcd_malloc(len ? len : 1);
    if (!buf)
        return;
    etcdserverpb__member__pack(&pm, buf);
    char key[17];
    snprintf(key, sizeof(key), "%016llx", (unsigned long long)mi->id);
    if (backend_put(m->be, BACKEND_MEMBERS, key, 16, buf, len, 0))
        member_logf(m, MLOG_ERROR, "etcdserver", "cannot store member %s: %s", key,
                    backend_errmsg(m->be));
    metcd_free(buf);
}

static int load_member(void *arg, backend_val k, backend_val v)
{
    member *m = arg;
    (void)k;
    Etcdserverpb__Member *pm =
        etcdserverpb__member__unpack(&metcd_pb_allocator, v.len, v.data);
    if (!pm)
        return 0;
    member_info *mi = membership_add(m, pm->id);
    if (mi) {
        metcd_free(mi->name);
        strv_free(mi->peer_urls, mi->n_peer_urls);
        strv_free(mi->client_urls, mi->n_client_urls);
        mi->name = metcd_strdup(pm->name);
        mi->peer_urls = strv_dup(pm->peerurls, pm->n_peerurls);
        mi->n_peer_urls = mi->peer_urls ? pm->n_peerurls : 0;
        mi->client_urls = strv_dup(pm->clienturls, pm->n_clienturls);
        mi->n_client_urls = mi->client_urls ? pm->n_clienturls : 0;
        mi->learner = pm->islearner;
    }
    etcdserverpb__member__free_unpacked(pm, &metcd_pb_allocator);
    return 0;
}

/* ---- configuration ------------------------------------------------------------ */

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

void membership_persist_conf(member *m)
{
    uint8_t buf[8 + 8 * 2 * RAFT_MAX_NODES];
    put_be64(buf, ((uint64_t)m->conf.n_voters << 32) | m->conf.n_learners);
    size_t off = 8;
    for (size_t i = 0; i < m->conf.n_voters; i++, off += 8)
        put_be64(buf + off, m->conf.voters[i]);
    for (size_t i = 0; i < m->conf.n_learners; i++, off += 8)
        put_be64(buf + off, m->conf.learners[i]);
    backend_put(m->be, BACKEND_META, CONF_STATE_KEY, strlen(CONF_STATE_KEY), buf, off, 0);
}

static bool load_conf(member *m)
{
    backend_val v;
    if (backend_get(m->be, BACKEND_META, CONF_STATE_KEY, strlen(CONF_STATE_KEY), &v) ||
        v.len < 8)
        return false;
    const uint8_t *p = v.data;
    uint64_t counts = get_be64(p);
    size_t nv = (size_t)(counts >> 32), nl = (size_t)(counts & 0xffffffff);
    if (nv > RAFT_MAX_NODES || nl > RAFT_MAX_NODES || v.len != 8 + 8 * (nv + nl))
        return false;
    m->conf.n_voters = nv;
    m->conf.n_learners = nl;
    for (size_t i = 0; i < nv; i++)
        m->conf.voters[i] = get_be64(p + 8 + 8 * i);
    for (size_t i = 0; i < nl; i++)
        m->conf.learners[i] = get_be64(p + 8 + 8 * (nv + i));
    return true;
}

/* ---- alarms ---------------------------------------------------------------------- */

bool member_alarm_active(const member *m, int type)
{
    for (size_t i = 0; i < m->n_alarms; i++)
        if (m->alarms[i].type == type)
            return true;
    return false;
}

static void alarm_key(uint64_t id, int type, uint8_t *buf, size_t *len)
{
    Etcdserverpb__AlarmMember am = ETCDSERVERPB__ALARM_MEMBER__INIT;
    am.memberid = id;
    am.alarm = (Etcdserverpb__AlarmType)type;
    *len = etcdserverpb__alarm_member__pack(&am, buf);
}

static int load_alarm(void *arg, backend_val k, backend_val v)
{
    member *m = arg;
    (void)v;
    Etcdserverpb__AlarmMember *am =
        etcdserverpb__alarm_member__unpack(&metcd_pb_allocator, k.len, k.data);
    if (!am)
        return 0;
    alarm_rec *a = metcd_realloc(m->alarms, (m->n_alarms + 1) * sizeof(*a));
    if (a) {
        m->alarms = a;
        m->alarms[m->n_alarms++] = (alarm_rec){am->memberid, am->alarm};
    }
    etcdserverpb__alarm_member__free_unpacked(am, &metcd_pb_allocator);
    return 0;
}

/* Returns 1 if the alarm set changed. */
static int alarm_apply(member *m, int action, uint64_t id, int type)
{
    uint8_t key[32];
    size_t klen;
    alarm_key(id, type, key, &klen);
    for (size_t i = 0; i < m->n_alarms; i++) {
        if (m->alarms[i].member_id == id && m->alarms[i].type == type) {
            if (action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE)
                return 0;
            m->alarms[i] = m->alarms[--m->n_alarms];
            backend_del(m->be, BACKEND_ALARM, key, klen);
            return 1;
        }
    }
    if (action != ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE)
        return 0;
    alarm_rec *a = metcd_realloc(m->alarms, (m->n_alarms + 1) * sizeof(*a));
    if (!a)
        return 0;
    m->alarms = a;
    m->alarms[m->n_alarms++] = (alarm_rec){id, type};
    backend_put(m->be, BACKEND_ALARM, key, klen, "", 0, 0);
    return 1;
}

/* ---- load at start ------------------------------------------------------------ */

static void log_version_lines(member *m)
{
    member_logf(m, MLOG_NOTICE, "etcdserver/membership", "set the initial cluster version to %s",
                m->cluster_version);
    member_logf(m, MLOG_INFO, "etcdserver/api", "enabled capabilities for version %s",
                m->cluster_version);
}

int member_meta_load(member *m)
{
    int rc = backend_range(m->be, BACKEND_MEMBERS, NULL, 0, NULL, 0, 0, load_member, m);
    if (rc == 0)
        rc = backend_range(m->be, BACKEND_ALARM, NULL, 0, NULL, 0, 0, load_alarm, m);
    if (rc)
        return rc;
    backend_val v;
    if (backend_get(m->be, BACKEND_CLUSTER, CLUSTER_VERSION_KEY, strlen(CLUSTER_VERSION_KEY),
                    &v) == 0 &&
        v.len < sizeof(m->cluster_version)) {
        memcpy(m->cluster_version, v.data, v.len);
        m->cluster_version[v.len] = 0;
        log_version_lines(m);
    }
    if (!load_conf(m)) {
        /* A new member: the initial cluster is the configuration. */
        memset(&m->conf, 0, sizeof(m->conf));
        for (size_t i = 0; i < m->opt.n_initial_cluster && i < RAFT_MAX_NODES; i++) {
            const member_peer *p = &m->opt.initial_cluster[i];
            if (p->learner)
                m->conf.learners[m->conf.n_learners++] = p->id;
            else
                m->conf.voters[m->conf.n_voters++] = p->id;
            member_info *mi = membership_add(m, p->id);
            if (!mi)
                return MERR_INTERNAL;
            mi->learner = p->learner;
            if (!mi->peer_urls) {
                mi->peer_urls = strv_dup(p->peer_urls, p->n_peer_urls);
                mi->n_peer_urls = mi->peer_urls ? p->n_peer_urls : 0;
                membership_persist(m, mi);
            }
        }
        membership_persist_conf(m);
    }
    return 0;
}

void member_free_meta(member *m)
{
    for (size_t i = 0; i < m->n_members; i++) {
        metcd_free(m->members[i].name);
        strv_free(m->members[i].peer_urls, m->members[i].n_peer_urls);
        strv_free(m->members[i].client_urls, m->members[i].n_client_urls);
    }
    metcd_free(m->members);
    metcd_free(m->alarms);
    m->members = NULL;
    m->alarms = NULL;
    m->n_members = m->n_alarms = 0;
}

/* ---- serving milestones ---------------------------------------------------------- */

static void maybe_serving(member *m);

static void on_corrupt_check_done(member *m, bool ok)
{
    m->corrupt_checked = true;
    if (!ok) {
        member_logf(m, MLOG_CRIT, "etcdmain", "%016llx found data inconsistency with peers",
                    (unsigned long long)m->id);
        m->fatal = true;
        event_base_loopbreak(m->base);
        return;
    }
    member_logf(m, MLOG_INFO, "etcdserver", "%016llx succeeded on initial corruption checking: no corruption",
                (unsigned long long)m->id);
    maybe_serving(m);
}

static void maybe_serving(member *m)
{
    if (m->ready_logged || !m->published || !m->cluster_version[0])
        return;
    if (m->opt.initial_corrupt_check && !m->corrupt_checked && m->n_members > 1) {
        /* compare with the peers before announcing (etcd's
         * CheckInitialHashKV); the answer comes back here */
        if (!m->corrupt_check && corrupt_check_start(m, on_corrupt_check_done) != 0)
            m->corrupt_checked = true; /* could not even start: as etcd, go on */
        else
            return;
    }
    m->ready_logged = true;
    m->serving = true;
    member_logf(m, MLOG_INFO, "embed", "ready to serve client requests");
    for (size_t i = 0; i < m->opt.n_listen_client_urls; i++) {
        const char *u = m->opt.listen_client_urls[i];
        const char *hp = strstr(u, "://");
        member_logf(m, MLOG_NOTICE, "embed",
                    "serving insecure client requests on %s, this is strongly discouraged!",
                    hp ? hp + 3 : u);
    }
}

static void apply_publish(member *m, const Memberpb__Attributes *at)
{
    member_info *mi = membership_add(m, at->member_id);
    if (!mi)
        return;
    metcd_free(mi->name);
    mi->name = metcd_strdup(at->name ? at->name : "");
    strv_free(mi->client_urls, mi->n_client_urls);
    mi->client_urls = strv_dup(at->client_urls, at->n_client_urls);
    mi->n_client_urls = mi->client_urls ? at->n_client_urls : 0;
    membership_persist(m, mi);
    if (at->member_id != m->id)
        return;
    m->published = true;
    char urls[1024] = "";
    for (size_t i = 0; i < at->n_client_urls; i++) {
        size_t l = strlen(urls);
        snprintf(urls + l, sizeof(urls) - l, "%s%s", i ? " " : "", at->client_urls[i]);
    }
    member_logf(m, MLOG_INFO, "etcdserver", "published {Name:%s ClientURLs:[%s]} to cluster %016llx",
                at->name, urls, (unsigned long long)m->cluster_id);
    maybe_serving(m);
}

static void apply_cluster_version(member *m, const char *v)
{
    if (!v || strlen(v) >= sizeof(m->cluster_version) || !strcmp(m->cluster_version, v))
        return;
    snprintf(m->cluster_version, sizeof(m->cluster_version), "%s", v);
    backend_put(m->be, BACKEND_CLUSTER, CLUSTER_VERSION_KEY, strlen(CLUSTER_VERSION_KEY), v,
                strlen(v), 0);
    log_version_lines(m);
    maybe_serving(m);
}

/* ---- compaction steps ---------------------------------------------------------- */

static void on_compact_step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    member *m = arg;
    int rc = mvcc_compact_step(m->kv);
    if (rc == 1) {
        event_active(m->compact_ev, EV_READ, 0); /* more: yield to the loop first */
        return;
    }
    if (rc < 0)
        member_logf(m, MLOG_ERROR, "mvcc", "compaction failed: %s", mvcc_strerror(rc));
    else
        member_logf(m, MLOG_INFO, "mvcc", "finished scheduled compaction at %lld",
                    (long long)mvcc_compact_rev(m->kv));
    while (m->compact_waiters) {
        waiter *w = m->compact_waiters;
        m->compact_waiters = w->next;
        if (w->call) {
            mvcc_op_resp r = {.type = MVCC_OP_NONE, .revision = mvcc_current_rev(m->kv)};
            if (rc < 0)
                member_fail_call(w->call, rc);
            else
                reply_result(m, w->call, &r, MVCC_OP_NONE);
        }
        metcd_free(w);
    }
}

void compaction_kick(member *m)
{
    if (!m->compact_ev)
        m->compact_ev = event_new(m->base, -1, 0, on_compact_step, m);
    if (m->compact_ev)
        event_active(m->compact_ev, EV_READ, 0);
}

/* ---- entries ------------------------------------------------------------------------ */

static void finish(member *m, waiter *w, int rc, const mvcc_op_resp *r, int kind)
{
    if (!w)
        return;
    if (w->done) {
        w->done(m, w->done_arg, rc, rc ? NULL : r);
    } else if (w->call) {
        if (rc)
            member_fail_call(w->call, rc);
        else
            reply_result(m, w->call, r, kind);
    }
    metcd_free(w);
}

void apply_entry(member *m, const raft_entry *e)
{
    Memberpb__Request *req =
        memberpb__request__unpack(&metcd_pb_allocator, e->data->len, e->data->data);
    if (!req) {
        member_logf(m, MLOG_ERROR, "etcdserver", "skipping undecodable entry at index %llu",
                    (unsigned long long)e->index);
        return;
    }
    waiter *w = req->id ? wait_take(m, req->id) : NULL;
    mvcc_result res = {0};
    bool nospace = member_alarm_active(m, ETCDSERVERPB__ALARM_TYPE__NOSPACE);
    int rc = 0;
    m->proposals_applied++;
    if (auth_is_request(req)) {
        auth_apply(m, req, w, e->index);
        memberpb__request__free_unpacked(req, &metcd_pb_allocator);
        return;
    }
    rc = auth_check_apply(m, req);
    if (rc) {
        finish(m, w, rc, NULL, MVCC_OP_NONE);
        memberpb__request__free_unpacked(req, &metcd_pb_allocator);
        return;
    }
    switch (req->op_case) {
    case MEMBERPB__REQUEST__OP_PUT: {
        mvcc_put_req p;
        conv_put_req(req->put, &p);
        rc = nospace ? MVCC_ENOSPACE : mvcc_put(m->kv, &p, &res);
        finish(m, w, rc, &res.resp, MVCC_OP_PUT);
        break;
    }
    case MEMBERPB__REQUEST__OP_DELETE_RANGE: {
        mvcc_delete_req d;
        conv_delete_req(req->delete_range, &d);
        rc = mvcc_delete_range(m->kv, &d, &res);
        finish(m, w, rc, &res.resp, MVCC_OP_DELETE);
        break;
    }
    case MEMBERPB__REQUEST__OP_TXN: {
        mvcc_txn_req t;
        rc = conv_txn_req(req->txn, &t);
        if (rc == 0) {
            rc = nospace && !txn_is_readonly(req->txn) ? MVCC_ENOSPACE : mvcc_txn(m->kv, &t, &res);
            conv_txn_req_free(&t);
        }
        finish(m, w, rc, &res.resp, MVCC_OP_TXN);
        break;
    }
    case MEMBERPB__REQUEST__OP_COMPACTION: {
        rc = mvcc_compact(m->kv, req->compaction->revision);
        if (rc == 0) {
            member_logf(m, MLOG_INFO, "mvcc", "store.index: compact %lld",
                        (long long)req->compaction->revision);
            compaction_kick(m);
            if (w && req->compaction->physical) {
                w->next = m->compact_waiters;
                m->compact_waiters = w;
                w = NULL;
            }
        }
        mvcc_op_resp r = {.type = MVCC_OP_NONE, .revision = mvcc_current_rev(m->kv)};
        finish(m, w, rc, &r, MVCC_OP_NONE);
        break;
    }
    case MEMBERPB__REQUEST__OP_ALARM: {
        const Etcdserverpb__AlarmRequest *a = req->alarm;
        int changed = alarm_apply(m, a->action, a->memberid, a->alarm);
        if (changed)
            member_logf(m, a->action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE
                               ? MLOG_WARN
                               : MLOG_INFO,
                        "etcdserver", "alarm %s %s on member %016llx",
                        a->alarm == ETCDSERVERPB__ALARM_TYPE__NOSPACE ? "NOSPACE" : "CORRUPT",
                        a->action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE
                            ? "raised"
                            : "disarmed",
                        (unsigned long long)a->memberid);
        if (w && w->call) {
            /* no header: etcd's applier answers alarms without one */
            Etcdserverpb__AlarmResponse resp = ETCDSERVERPB__ALARM_RESPONSE__INIT;
            Etcdserverpb__AlarmMember am = ETCDSERVERPB__ALARM_MEMBER__INIT;
            Etcdserverpb__AlarmMember *amp = &am;
            if (changed) {
                am.memberid = a->memberid;
                am.alarm = a->alarm;
                resp.n_alarms = 1;
                resp.alarms = &amp;
            }
            rpc_call_reply(w->call, &resp.base);
        }
        metcd_free(w);
        break;
    }
    case MEMBERPB__REQUEST__OP_LEASE_GRANT:
    case MEMBERPB__REQUEST__OP_LEASE_REVOKE:
    case MEMBERPB__REQUEST__OP_LEASE_CHECKPOINT:
        lease_apply(m, req, w, nospace);
        break;
    case MEMBERPB__REQUEST__OP_PUBLISH:
        apply_publish(m, req->publish);
        finish(m, w, 0, NULL, MVCC_OP_NONE);
        break;
    case MEMBERPB__REQUEST__OP_CLUSTER_VERSION:
        apply_cluster_version(m, req->cluster_version->version);
        finish(m, w, 0, NULL, MVCC_OP_NONE);
        break;
    default:
        finish(m, w, MERR_INTERNAL, NULL, MVCC_OP_NONE);
        break;
    }
    mvcc_result_free(&res);
    memberpb__request__free_unpacked(req, &metcd_pb_allocator);
}
