/* server/member/corrupt.c - --experimental-initial-corrupt-check, as etcd
 * 3.4's CheckInitialHashKV: before a member announces that it serves, it
 * asks every started peer for HashKV at this member's revision and compares
 * it with its own. A different hash with the same compaction revision is a
 * mismatch; peers that do not answer, or are at another compaction point,
 * only earn a warning. A mismatch ends the member: "found data
 * inconsistency with peers". Peers are asked over their client URLs with
 * our gRPC client, in parallel, each with a deadline. */
#include "server/member/internal.h"

#include "common/mem.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#define CHECK_TIMEOUT_MS 5000

struct corrupt_check {
    member *m;
    uint32_t hash;
    int64_t rev, compact;
    size_t pending;
    size_t mismatches;
    struct rpc_client **clients;
    size_t n_clients;
    struct event *done_ev;
    void (*done)(member *m, bool ok);
};

struct peer_ask {
    struct corrupt_check *cc;
    uint64_t peer_id;
};

static void on_check_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct corrupt_check *cc = arg;
    member *m = cc->m;
    for (size_t i = 0; i < cc->n_clients; i++)
        rpc_client_free(cc->clients[i]);
    bool ok = cc->mismatches == 0;
    void (*done)(member *, bool) = cc->done;
    event_free(cc->done_ev);
    metcd_free(cc->clients);
    metcd_free(cc);
    m->corrupt_check = NULL;
    done(m, ok);
}

static void on_peer_hash(const ProtobufCMessage *resp, enum rpc_code code, const char *msg,
                         void *data)
{
    struct peer_ask *ask = data;
    struct corrupt_check *cc = ask->cc;
    member *m = cc->m;
    if (code == RPC_CODE_OK && resp) {
        const Etcdserverpb__HashKVResponse *r = (const Etcdserverpb__HashKVResponse *)resp;
        if (r->hash != cc->hash) {
            if (r->compact_revision == cc->compact) {
                member_logf(m, MLOG_ERROR, "etcdserver",
                            "%016llx's hash %u != %016llx's hash %u (revision %lld, peer revision %lld, compact revision %lld)",
                            (unsigned long long)m->id, cc->hash, (unsigned long long)ask->peer_id,
                            r->hash, (long long)cc->rev,
                            (long long)(r->header ? r->header->revision : 0),
                            (long long)cc->compact);
                cc->mismatches++;
            } else {
                member_logf(m, MLOG_WARN, "etcdserver",
                            "%016llx cannot check hash of peer(%016llx): peer has a different compact revision %lld (revision:%lld)",
                            (unsigned long long)m->id, (unsigned long long)ask->peer_id,
                            (long long)r->compact_revision, (long long)cc->rev);
            }
        }
    } else {
        member_logf(m, MLOG_WARN, "etcdserver", "%016llx cannot check the hash of peer(%016llx): %s",
                    (unsigned long long)m->id, (unsigned long long)ask->peer_id,
                    msg && msg[0] ? msg : rpc_code_name(code));
    }
    metcd_free(ask);
    if (--cc->pending == 0)
        event_active(cc->done_ev, EV_READ, 0); /* clients are freed outside their callbacks */
}

int corrupt_check_start(member *m, void (*done)(member *m, bool ok))
{
    struct corrupt_check *cc = metcd_calloc(1, sizeof(*cc));
    if (!cc)
        return MERR_INTERNAL;
    cc->m = m;
    cc->done = done;
    int rc = mvcc_hash_kv(m->kv, 0, &cc->hash, &cc->rev, &cc->compact);
    cc->clients = metcd_calloc(m->n_members ? m->n_members : 1, sizeof(*cc->clients));
    cc->done_ev = event_new(m->base, -1, 0, on_check_done, cc);
    if (rc || !cc->clients || !cc->done_ev) {
        if (cc->done_ev)
            event_free(cc->done_ev);
        metcd_free(cc->clients);
        metcd_free(cc);
        return rc ? rc : MERR_INTERNAL;
    }
    m->corrupt_check = cc;
    member_logf(m, MLOG_INFO, "etcdserver", "%016llx starting initial corruption check with timeout %dms...",
                (unsigned long long)m->id, CHECK_TIMEOUT_MS);
    cc->pending = 1; /* held until every ask is out */
    for (size_t i = 0; i < m->n_members; i++) {
        const member_info *mi = &m->members[i];
        if (mi->id == m->id || mi->learner || mi->n_client_urls == 0)
            continue;
        struct rpc_client_config ccfg = {
            .endpoints = (const char *const *)mi->client_urls,
            .n_endpoints = mi->n_client_urls,
            .dial_timeout_ms = CHECK_TIMEOUT_MS,
            .tls = m->client_dial_tls,
        };
        struct rpc_client *cl;
        if (rpc_client_new(&cl, m->base, &ccfg) != 0)
            continue;
        cc->clients[cc->n_clients++] = cl;
        struct peer_ask *ask = metcd_calloc(1, sizeof(*ask));
        if (!ask)
            continue;
        ask->cc = cc;
        ask->peer_id = mi->id;
        Etcdserverpb__HashKVRequest req = ETCDSERVERPB__HASH_KVREQUEST__INIT;
        req.revision = cc->rev;
        cc->pending++;
        if (rpc_client_unary(cl, "/etcdserverpb.Maintenance/HashKV", &req.base,
                             &etcdserverpb__hash_kvresponse__descriptor, NULL, 0,
                             CHECK_TIMEOUT_MS, on_peer_hash, ask) != 0) {
            cc->pending--;
            metcd_free(ask);
        }
    }
    if (--cc->pending == 0)
        event_active(cc->done_ev, EV_READ, 0);
    return 0;
}

void corrupt_check_cancel(member *m)
{
    struct corrupt_check *cc = m->corrupt_check;
    if (!cc)
        return;
    /* freeing the clients ends their calls (their callbacks free the asks) */
    cc->pending = (size_t)-1;
    for (size_t i = 0; i < cc->n_clients; i++)
        rpc_client_free(cc->clients[i]);
    event_free(cc->done_ev);
    metcd_free(cc->clients);
    metcd_free(cc);
    m->corrupt_check = NULL;
}
