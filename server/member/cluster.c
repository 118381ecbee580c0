/* server/member/cluster.c - membership: the etcdserverpb.Cluster service
 * (MemberAdd / MemberRemove / MemberUpdate / MemberPromote / MemberList)
 * and the application of raft conf changes, with etcd 3.4's checks and
 * messages (etcdserver/server.go, api/membership/cluster.go,
 * v3rpc/member.go).
 *
 * A change is proposed as a raft conf change whose context is the packed
 * etcdserverpb.Member it concerns; the client waits on the change's id and
 * is answered once the change is applied. */
#include "server/member/internal.h"

#include "common/mem.h"
#include "server/config/ids.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- applying ----------------------------------------------------------------- */

static void remove_member(member *m, uint64_t id)
{
    for (size_t i = 0; i < m->n_members; i++) {
        if (m->members[i].id != id)
            continue;
        member_info *mi = &m->members[i];
        metcd_free(mi->name);
        strv_free(mi->peer_urls, mi->n_peer_urls);
        strv_free(mi->client_urls, mi->n_client_urls);
        m->members[i] = m->members[--m->n_members];
        break;
    }
    char key[17];
    snprintf(key, sizeof(key), "%016llx", (unsigned long long)id);
    backend_del(m->be, BACKEND_MEMBERS, key, 16);
    backend_put(m->be, BACKEND_MEMBERS_REMOVED, key, 16, "removed", 7, 0);
}

static bool was_removed(member *m, uint64_t id)
{
    char key[17];
    snprintf(key, sizeof(key), "%016llx", (unsigned long long)id);
    backend_val v;
    return backend_get(m->be, BACKEND_MEMBERS_REMOVED, key, 16, &v) == 0;
}

static void reply_members(member *m, struct rpc_call *call, const ProtobufCMessageDescriptor *d,
                          const member_info *added);

void apply_conf_change(member *m, const raft_entry *e)
{
    raft_conf_change cc;
    if (!e->data || raft_conf_change_decode(e->data->data, e->data->len, &cc)) {
        member_logf(m, MLOG_ERROR, "etcdserver", "skipping undecodable conf change at %llu",
                    (unsigned long long)e->index);
        return;
    }
    Etcdserverpb__Member *pm = NULL;
    if (cc.context && cc.context->len)
        pm = etcdserverpb__member__unpack(&metcd_pb_allocator, cc.context->len,
                                          cc.context->data);
    waiter *w = cc.id ? wait_take(m, cc.id) : NULL;
    member_info *added = NULL;
    switch (cc.type) {
    case RAFT_CC_ADD_NODE:
    case RAFT_CC_ADD_LEARNER: {
        member_info *mi = membership_add(m, cc.node_id);
        if (!mi)
            break;
        bool promote = cc.type == RAFT_CC_ADD_NODE && mi->learner && !pm;
        mi->learner = cc.type == RAFT_CC_ADD_LEARNER;
        if (pm && !mi->peer_urls) {
            mi->peer_urls = strv_dup(pm->peerurls, pm->n_peerurls);
            mi->n_peer_urls = mi->peer_urls ? pm->n_peerurls : 0;
        }
        membership_persist(m, mi);
        if (cc.node_id != m->id)
            peers_member_changed(m, mi);
        member_logf(m, MLOG_INFO, "etcdserver/membership", "%s member %016llx %s to cluster %016llx",
                    promote ? "promoted" : "added", (unsigned long long)cc.node_id,
                    mi->n_peer_urls ? mi->peer_urls[0] : "", (unsigned long long)m->cluster_id);
        added = mi;
        break;
    }
    case RAFT_CC_REMOVE_NODE:
        remove_member(m, cc.node_id);
        if (cc.node_id != m->id)
            peers_member_removed(m, cc.node_id);
        member_logf(m, MLOG_INFO, "etcdserver/membership", "removed member %016llx from cluster %016llx",
                    (unsigned long long)cc.node_id, (unsigned long long)m->cluster_id);
        break;
    case RAFT_CC_UPDATE_NODE: {
        member_info *mi = membership_find(m, cc.node_id);
        if (mi && pm) {
            strv_free(mi->peer_urls, mi->n_peer_urls);
            mi->peer_urls = strv_dup(pm->peerurls, pm->n_peerurls);
            mi->n_peer_urls = mi->peer_urls ? pm->n_peerurls : 0;
            membership_persist(m, mi);
            if (cc.node_id != m->id)
                peers_member_changed(m, mi);
            member_logf(m, MLOG_INFO, "etcdserver/membership", "updated member %016llx %s in cluster %016llx",
                        (unsigned long long)cc.node_id, mi->n_peer_urls ? mi->peer_urls[0] : "",
                        (unsigned long long)m->cluster_id);
        }
        break;
    }
    }
    if (raft_apply_conf_change(m->raft, &cc, &m->conf) == 0)
        membership_persist_conf(m);
    if (w) {
        if (w->call) {
            const ProtobufCMessageDescriptor *d =
                cc.type == RAFT_CC_REMOVE_NODE ? &etcdserverpb__member_remove_response__descriptor
                : cc.type == RAFT_CC_UPDATE_NODE ? &etcdserverpb__member_update_response__descriptor
                : w->kind == WAIT_PROMOTE ? &etcdserverpb__member_promote_response__descriptor
                                          : &etcdserverpb__member_add_response__descriptor;
            reply_members(m, w->call, d, added);
        }
        metcd_free(w);
    }
    if (pm)
        etcdserverpb__member__free_unpacked(pm, &metcd_pb_allocator);
    raft_buf_unref(cc.context);
    if (cc.type == RAFT_CC_REMOVE_NODE && cc.node_id == m->id) {
        member_logf(m, MLOG_WARN, "etcdserver",
                    "the member has been permanently removed from the cluster");
        m->removed = true;
        member_request_stop(m);
    }
}

/* ---- responses ------------------------------------------------------------------ */

/* Fills pm from mi (pointers borrowed from mi). */
static void to_pb_member(const member_info *mi, Etcdserverpb__Member *pm)
{
    etcdserverpb__member__init(pm);
    pm->id = mi->id;
    pm->name = mi->name ? mi->name : (char *)"";
    pm->peerurls = mi->peer_urls;
    pm->n_peerurls = mi->n_peer_urls;
    pm->clienturls = mi->client_urls;
    pm->n_clienturls = mi->n_client_urls;
    pm->islearner = mi->learner;
}

/* All the Member*Response messages share their first fields' layout in
 * meaning (header = 1, members = 2 or 3); each is built by field. */
static void reply_members(member *m, struct rpc_call *call, const ProtobufCMessageDescriptor *d,
                          const member_info *added)
{
    size_t n = m->n_members;
    Etcdserverpb__Member *pm = metcd_calloc(n ? n : 1, sizeof(*pm));
    Etcdserverpb__Member **ptr = metcd_calloc(n ? n : 1, sizeof(*ptr));
    if (!pm || !ptr) {
        metcd_free(pm);
        metcd_free(ptr);
        member_fail_call(call, MERR_INTERNAL);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        to_pb_member(&m->members[i], &pm[i]);
        ptr[i] = &pm[i];
    }
    /* etcd's Cluster service fills no revision (v3rpc/member.go header()) */
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    fill_header(m, &h, 0);
    if (d == &etcdserverpb__member_add_response__descriptor) {
        Etcdserverpb__MemberAddResponse r = ETCDSERVERPB__MEMBER_ADD_RESPONSE__INIT;
        Etcdserverpb__Member one;
        r.header = &h;
        if (added) {
            to_pb_member(added, &one);
            r.member = &one;
        }
        r.members = ptr;
        r.n_members = n;
        rpc_call_reply(call, &r.base);
    } else if (d == &etcdserverpb__member_remove_response__descriptor) {
        Etcdserverpb__MemberRemoveResponse r = ETCDSERVERPB__MEMBER_REMOVE_RESPONSE__INIT;
        r.header = &h;
        r.members = ptr;
        r.n_members = n;
        rpc_call_reply(call, &r.base);
    } else if (d == &etcdserverpb__member_update_response__descriptor) {
        Etcdserverpb__MemberUpdateResponse r = ETCDSERVERPB__MEMBER_UPDATE_RESPONSE__INIT;
        r.header = &h;
        r.members = ptr;
        r.n_members = n;
        rpc_call_reply(call, &r.base);
    } else if (d == &etcdserverpb__member_promote_response__descriptor) {
        Etcdserverpb__MemberPromoteResponse r = ETCDSERVERPB__MEMBER_PROMOTE_RESPONSE__INIT;
        r.header = &h;
        r.members = ptr;
        r.n_members = n;
        rpc_call_reply(call, &r.base);
    } else {
        Etcdserverpb__MemberListResponse r = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
        r.header = &h;
        r.members = ptr;
        r.n_members = n;
        rpc_call_reply(call, &r.base);
    }
    metcd_free(pm);
    metcd_free(ptr);
}

/* ---- proposing ------------------------------------------------------------------ */

static void on_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    wait_forget_call(rpc_call_service_data(call), call);
}

static bool is_voter(member *m, uint64_t id)
{
    for (size_t i = 0; i < m->conf.n_voters; i++)
        if (m->conf.voters[i] == id)
            return true;
    return false;
}

/* A member is started once it published its name (etcd's IsStarted). */
static bool is_started(const member_info *mi)
{
    return mi->name && mi->name[0];
}

/* etcd's IsReadyToAddVotingMember: a quorum of the grown cluster is
 * started, or a one-member cluster grows to two (restoring a cluster). */
static bool ready_to_add_voter(member *m)
{
    size_t nmembers = 1, nstarted = 0;
    for (size_t i = 0; i < m->n_members; i++) {
        if (!is_voter(m, m->members[i].id))
            continue;
        nmembers++;
        nstarted += is_started(&m->members[i]);
    }
    if (nstarted == 1 && nmembers == 2)
        return true;
    return nstarted >= nmembers / 2 + 1;
}

/* etcd's IsReadyToRemoveVotingMember and mayRemoveMember: the rest keep a
 * started quorum; removing a member that is down is safe; otherwise the
 * members connected to us, less the removed one, keep a quorum. */
static bool ready_to_remove_voter(member *m, uint64_t id)
{
    size_t nmembers = 0, nstarted = 0, nvoters = 0, active = 0;
    for (size_t i = 0; i < m->n_members; i++) {
        uint64_t mid = m->members[i].id;
        if (!is_voter(m, mid))
            continue;
        nvoters++;
        if (mid == m->id || peers_active(m, mid))
            active++;
        if (mid == id)
            continue;
        nmembers++;
        nstarted += is_started(&m->members[i]);
    }
    if (nstarted < nmembers / 2 + 1)
        return false;
    if (id != m->id && !peers_active(m, id))
        return true;
    return active >= 1 && active - 1 >= 1 + (nvoters - 1) / 2;
}

static void propose_cc(member *m, struct rpc_call *call, waiter_kind kind, raft_conf_change_type t,
                       uint64_t node, const Etcdserverpb__Member *ctx)
{
    waiter *w = wait_register(m, kind, call);
    if (!w) {
        member_fail_call(call, MERR_TOO_MANY_REQUESTS);
        return;
    }
    raft_conf_change cc = {.id = w->id, .type = t, .node_id = node};
    if (ctx) {
        size_t len = etcdserverpb__member__get_packed_size(ctx);
        uint8_t *buf = metcd_malloc(len ? len : 1);
        if (buf) {
            etcdserverpb__member__pack(ctx, buf);
            cc.context = raft_buf_new(buf, len);
            metcd_free(buf);
        }
        if (!cc.context) {
            metcd_free(wait_take(m, w->id));
            member_fail_call(call, MERR_INTERNAL);
            return;
        }
    }
    int rc = raft_propose_conf_change(m->raft, &cc);
    raft_buf_unref(cc.context);
    if (rc) {
        metcd_free(wait_take(m, w->id));
        member_fail_call(call, rc);
        return;
    }
    raftnode_kick(m);
}

static bool urls_in_use(member *m, char **urls, size_t n, uint64_t except)
{
    for (size_t i = 0; i < m->n_members; i++) {
        if (m->members[i].id == except)
            continue;
        for (size_t a = 0; a < m->members[i].n_peer_urls; a++)
            for (size_t b = 0; b < n; b++)
                if (!strcmp(m->members[i].peer_urls[a], urls[b]))
                    return true;
    }
    return false;
}

static bool urls_valid(char **urls, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strncmp(urls[i], "http://", 7) && strncmp(urls[i], "https://", 8) &&
            strncmp(urls[i], "unix://", 7))
            return false;
    return true;
}

/* etcd's checkMembershipOperationPermission: with auth enabled, only a
 * user with the root role changes membership. Fails the call and returns
 * true when refused. */
static bool admin_refused(struct rpc_call *call)
{
    int rc = auth_check_call_admin(rpc_call_service_data(call), call);
    if (rc)
        member_fail_call(call, rc);
    return rc != 0;
}

static void on_member_add(struct rpc_call *call, const ProtobufCMessage *msg)
{
    if (admin_refused(call))
        return;
    member *m = rpc_call_service_data(call);
    const Etcdserverpb__MemberAddRequest *req = (const Etcdserverpb__MemberAddRequest *)msg;
    if (!urls_valid(req->peerurls, req->n_peerurls)) {
        member_fail_call(call, MERR_BAD_URLS);
        return;
    }
    if (urls_in_use(m, req->peerurls, req->n_peerurls, 0)) {
        member_fail_call(call, MERR_PEER_URL_EXIST);
        return;
    }
    /* etcd: adding a voter to a cluster that cannot keep quorum with it */
    if (m->opt.strict_reconfig_check && !req->islearner && !ready_to_add_voter(m)) {
        member_fail_call(call, MERR_NOT_ENOUGH_STARTED);
        return;
    }
    /* etcd's NewMember for an added member: sorted URLs, no token, now */
    char **sorted = strv_dup(req->peerurls, req->n_peerurls);
    if (!sorted) {
        member_fail_call(call, MERR_INTERNAL);
        return;
    }
    qsort(sorted, req->n_peerurls, sizeof(char *), strcmp_ptr);
    int64_t now = (int64_t)time(NULL);
    uint64_t id;
    int rc = ids_member_id((const char *const *)sorted, req->n_peerurls, "", &now, &id);
    if (rc || membership_find(m, id)) {
        strv_free(sorted, req->n_peerurls);
        member_fail_call(call, rc ? MERR_INTERNAL : MERR_MEMBER_EXIST);
        return;
    }
    Etcdserverpb__Member pm = ETCDSERVERPB__MEMBER__INIT;
    pm.id = id;
    pm.name = (char *)"";
    pm.peerurls = sorted;
    pm.n_peerurls = req->n_peerurls;
    pm.islearner = req->islearner;
    propose_cc(m, call, WAIT_CONF, req->islearner ? RAFT_CC_ADD_LEARNER : RAFT_CC_ADD_NODE, id,
               &pm);
    strv_free(sorted, req->n_peerurls);
}

static void on_member_remove(struct rpc_call *call, const ProtobufCMessage *msg)
{
    if (admin_refused(call))
        return;
    member *m = rpc_call_service_data(call);
    const Etcdserverpb__MemberRemoveRequest *req = (const Etcdserverpb__MemberRemoveRequest *)msg;
    member_info *mi = membership_find(m, req->id);
    if (!mi) {
        member_fail_call(call, was_removed(m, req->id) ? MERR_MEMBER_REMOVED
                                                        : MERR_MEMBER_NOT_FOUND);
        return;
    }
    if (m->opt.strict_reconfig_check && !mi->learner && !ready_to_remove_voter(m, req->id)) {
        member_fail_call(call, MERR_NOT_ENOUGH_STARTED);
        return;
    }
    propose_cc(m, call, WAIT_CONF, RAFT_CC_REMOVE_NODE, req->id, NULL);
}

static void on_member_update(struct rpc_call *call, const ProtobufCMessage *msg)
{
    if (admin_refused(call))
        return;
    member *m = rpc_call_service_data(call);
    const Etcdserverpb__MemberUpdateRequest *req = (const Etcdserverpb__MemberUpdateRequest *)msg;
    member_info *mi = membership_find(m, req->id);
    if (!mi) {
        member_fail_call(call, MERR_MEMBER_NOT_FOUND);
        return;
    }
    if (!urls_valid(req->peerurls, req->n_peerurls)) {
        member_fail_call(call, MERR_BAD_URLS);
        return;
    }
    if (urls_in_use(m, req->peerurls, req->n_peerurls, req->id)) {
        member_fail_call(call, MERR_PEER_URL_EXIST);
        return;
    }
    Etcdserverpb__Member pm = ETCDSERVERPB__MEMBER__INIT;
    pm.id = req->id;
    pm.name = mi->name ? mi->name : (char *)"";
    pm.peerurls = req->peerurls;
    pm.n_peerurls = req->n_peerurls;
    propose_cc(m, call, WAIT_CONF, RAFT_CC_UPDATE_NODE, req->id, &pm);
}

static void on_member_promote(struct rpc_call *call, const ProtobufCMessage *msg)
{
    if (admin_refused(call))
        return;
    member *m = rpc_call_service_data(call);
    const Etcdserverpb__MemberPromoteRequest *req = (const Etcdserverpb__MemberPromoteRequest *)msg;
    member_info *mi = membership_find(m, req->id);
    if (!mi) {
        member_fail_call(call, MERR_MEMBER_NOT_FOUND);
        return;
    }
    if (!mi->learner) {
        member_fail_call(call, MERR_MEMBER_NOT_LEARNER);
        return;
    }
    /* etcd: the leader promotes a learner only once it holds at least 90%
     * of the leader's log (isLearnerReady) */
    raft_status st;
    raftnode_status(m, &st);
    if (st.state == RAFT_LEADER) {
        for (size_t i = 0; i < st.n_peers; i++) {
            if (st.peers[i].id == req->id &&
                (double)st.peers[i].match < 0.9 * (double)st.commit) {
                member_fail_call(call, MERR_LEARNER_NOT_READY);
                return;
            }
        }
    } else if (!peers_active(m, req->id)) {
        /* etcd forwards a promote to the leader; a follower knows no
         * progress, but a learner it cannot even reach is not in sync */
        member_fail_call(call, MERR_LEARNER_NOT_READY);
        return;
    }
    propose_cc(m, call, WAIT_PROMOTE, RAFT_CC_ADD_NODE, req->id, NULL);
}

static void on_member_list(struct rpc_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    member *m = rpc_call_service_data(call);
    reply_members(m, call, &etcdserverpb__member_list_response__descriptor, NULL);
}

static const struct rpc_method cluster_methods[] = {
    {"/etcdserverpb.Cluster/MemberAdd", RPC_UNARY, &etcdserverpb__member_add_request__descriptor,
     &etcdserverpb__member_add_response__descriptor, NULL, on_member_add, NULL, on_cancel, NULL},
    {"/etcdserverpb.Cluster/MemberRemove", RPC_UNARY,
     &etcdserverpb__member_remove_request__descriptor,
     &etcdserverpb__member_remove_response__descriptor, NULL, on_member_remove, NULL, on_cancel,
     NULL},
    {"/etcdserverpb.Cluster/MemberUpdate", RPC_UNARY,
     &etcdserverpb__member_update_request__descriptor,
     &etcdserverpb__member_update_response__descriptor, NULL, on_member_update, NULL, on_cancel,
     NULL},
    {"/etcdserverpb.Cluster/MemberList", RPC_UNARY, &etcdserverpb__member_list_request__descriptor,
     &etcdserverpb__member_list_response__descriptor, NULL, on_member_list, NULL, NULL, NULL},
    {"/etcdserverpb.Cluster/MemberPromote", RPC_UNARY,
     &etcdserverpb__member_promote_request__descriptor,
     &etcdserverpb__member_promote_response__descriptor, NULL, on_member_promote, NULL,
     on_cancel, NULL},
};

int cluster_register(member *m)
{
    return rpc_server_register(m->rpc, cluster_methods,
                               sizeof(cluster_methods) / sizeof(cluster_methods[0]), m);
}
