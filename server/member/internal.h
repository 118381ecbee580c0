/* server/member/internal.h - shared by the member's files only. */
#ifndef METCD_SERVER_MEMBER_INTERNAL_H
#define METCD_SERVER_MEMBER_INTERNAL_H

#include "server/member/member.h"

#include "server/etcdserverpb/rpc.pb-c.h"
#include "server/member/memberpb/internal.pb-c.h"

#include <stdbool.h>

/* ---- errors (errors.c): the one table from internal errors to etcd's gRPC
 * statuses and messages ---- */
typedef enum member_error {
    MERR_OK = 0,
    MERR_TIMEOUT = -2001,
    MERR_STOPPED = -2002,
    MERR_TOO_MANY_REQUESTS = -2003,
    MERR_REQUEST_TOO_LARGE = -2004,
    MERR_NO_SPACE = -2005,
    MERR_MEMBER_NOT_FOUND = -2006,
    MERR_INTERNAL = -2008,
    MERR_BAD_LEADER_TRANSFEREE = -2010,
    MERR_BAD_URLS = -2012,
    MERR_PEER_URL_EXIST = -2013,
    MERR_NOT_ENOUGH_STARTED = -2014,
    MERR_MEMBER_EXIST = -2015,
    MERR_MEMBER_REMOVED = -2016,
    MERR_MEMBER_NOT_LEARNER = -2017,
    MERR_LEARNER_NOT_READY = -2018,
    MERR_NOT_LEADER = -2019,
    MERR_LEADER_TRANSFER_TIMEOUT = -2020,
    MERR_ELECTION_NOT_LEADER = -2021,
    MERR_ELECTION_NO_LEADER = -2022,
    MERR_ELECTION_NO_LEADER_KEY = -2023,
    /* auth (etcd's auth package errors, rpctypes texts) */
    MERR_AUTH_NOT_ENABLED = -2030,
    MERR_ROOT_USER_NOT_EXIST = -2031,
    MERR_ROOT_ROLE_NOT_EXIST = -2032,
    MERR_USER_ALREADY_EXIST = -2033,
    MERR_USER_EMPTY = -2034,
    MERR_USER_NOT_FOUND = -2035,
    MERR_ROLE_ALREADY_EXIST = -2036,
    MERR_ROLE_NOT_FOUND = -2037,
    MERR_ROLE_EMPTY = -2038,
    MERR_AUTH_FAILED = -2039,
    MERR_PERMISSION_DENIED = -2040,
    MERR_ROLE_NOT_GRANTED = -2041,
    MERR_PERMISSION_NOT_GRANTED = -2042,
    MERR_INVALID_AUTH_TOKEN = -2043,
    MERR_INVALID_AUTH_MGMT = -2044,
    MERR_AUTH_OLD_REVISION = -2045,
    MERR_NO_PASSWORD_USER = -2046,
} member_error;

/* Finishes call with the gRPC status for err (an MVCC_E*, MERR_*, RAFT_E*
 * or backend code). */
void member_fail_call(struct rpc_call *call, int err);
/* As the Lock and Election services answer err: etcd runs them on an
 * in-process client, which turns every server error into a plain error, so
 * the status is UNKNOWN with etcd's text. */
void member_fail_call_relayed(struct rpc_call *call, int err);
/* As etcd's authMaintenanceServer answers an auth error: not converted to
 * a gRPC status, so UNKNOWN with the auth package's text ("auth:
 * permission denied"); other errors as member_fail_call. */
void member_fail_call_auth_raw(struct rpc_call *call, int err);
/* The gRPC code and etcd message for err. */
void member_error_status(int err, enum rpc_code *code, const char **msg);

/* ---- waiters: proposals parked until applied, with a deadline ---- */
typedef enum waiter_kind { WAIT_PUT, WAIT_DELETE, WAIT_TXN, WAIT_COMPACT, WAIT_ALARM,
                           WAIT_CONF, WAIT_PROMOTE, WAIT_LEASE, WAIT_AUTH } waiter_kind;

/* An internal proposal's completion (member_propose): rc is 0 and r the
 * applied result (borrowed for the call; NULL for requests without one),
 * or rc is an error (timeout, stopped, the apply's own error) and r NULL.
 * Runs on the loop, exactly once. */
typedef void (*member_done_fn)(member *m, void *arg, int rc, const mvcc_op_resp *r);

typedef struct waiter {
    uint64_t id;
    waiter_kind kind;
    struct rpc_call *call; /* NULL once the client went away */
    member_done_fn done;   /* internal proposals instead of a call */
    void *done_arg;
    int64_t deadline_ms;
    bool physical; /* compaction: answer once the physical work is done */
    struct waiter *hnext;             /* hash chain */
    struct waiter *prev, *next;       /* FIFO = deadline order */
} waiter;

#define WAIT_BUCKETS 4096
#define MAX_PENDING_PROPOSALS 65536

/* An internal read barrier's completion (member_read_index): rc is 0 once
 * the member has applied up to a confirmed read index, or an error (no
 * leader, timeout, stopped). Runs on the loop, at most once. */
typedef void (*member_read_fn)(member *m, void *arg, int rc);

/* A linearizable read waiting for its ReadIndex round and then for apply. */
typedef struct pending_read {
    struct rpc_call *call;
    member_read_fn done; /* internal barriers instead of a call; NULL once cancelled */
    void *done_arg;
    ProtobufCMessage *req; /* owned copy (RangeRequest or TxnRequest); NULL for barriers */
    uint64_t round;        /* the read-index round it joined */
    uint64_t index;        /* read index once known, 0 before */
    int64_t deadline_ms;
    struct pending_read *next;
} pending_read;

/* A persisted-then-done job for one Ready (raftnode.c). */
struct persist_job;

typedef struct member_info {
    uint64_t id;
    char *name;
    char **peer_urls;
    size_t n_peer_urls;
    char **client_urls;
    size_t n_client_urls;
    bool learner;
} member_info;

typedef struct alarm_rec {
    uint64_t member_id;
    int type; /* ETCDSERVERPB__ALARM_TYPE__* */
} alarm_rec;

struct member {
    struct event_base *base;
    member_options opt;
    char *wal_path, *db_path;

    backend *be;
    mvcc_store *kv;
    wal *wal;
    raft *raft;
    raft_mem_storage *ms;
    struct rpc_server *rpc;
    struct gateway *gw; /* the JSON gateway on the client port */
    struct ssl_ctx_st *client_tls;      /* https client listeners (owned) */
    struct ssl_ctx_st *client_dial_tls; /* the member's own clients (owned) */

    uint64_t id, cluster_id;
    uint64_t term, lead;
    raft_state state;
    uint64_t applied, committed;
    uint64_t snapshot_index;
    raft_conf_state conf;

    struct event *tick_ev, *ready_ev, *sweep_ev, *compact_ev;
    bool stopping;
    bool fatal;

    /* proposals */
    uint64_t next_req_id;
    waiter *wait[WAIT_BUCKETS];
    waiter *fifo_head, *fifo_tail;
    size_t n_waiters;
    waiter *compact_waiters; /* physical compactions, chained by next */

    /* linearizable reads */
    pending_read *reads_head, *reads_tail;
    size_t n_reads;
    uint64_t read_round;       /* last round asked of raft */
    bool read_round_open;      /* a round is asked and not answered */

    /* cluster state */
    member_info *members;
    size_t n_members;
    alarm_rec *alarms;
    size_t n_alarms;
    char cluster_version[16];
    bool published, serving, ready_logged;

    struct compactor *compactor;

    /* leases (lease.c) */
    mvcc_lessor *lessor;
    struct lease_state *lease;
    uint64_t leases_granted, leases_revoked, leases_renewed, leases_expired;

    struct idgen_host *idgen; /* the ID service (idgen_svc.c) */
    struct channelz *cz; /* client connections and peer links */
    struct watch_store *watch; /* watch/: the watchable store over kv */

    /* --experimental-initial-corrupt-check (corrupt.c) */
    struct corrupt_check *corrupt_check;
    bool corrupt_checked;

    /* a MoveLeader in progress: answered once `transferee` leads */
    struct rpc_call *move_call;
    uint64_t move_transferee, move_from;
    int64_t move_deadline_ms, move_start_ms;

    /* peers (peers.c) */
    struct peer_transport *peers;
    int snap_fd;         /* a received database waiting for raft's Ready */
    struct snap_stream *snap_exports; /* Snapshot RPC exports running (maintenance.c) */
    uint64_t snap_index;
    bool removed;

    /* auth store, tokens and the bcrypt worker (auth.c) */
    struct auth_state *auth;

    /* Lock and Election calls and their clean-ups (lock.c, election.c) */
    size_t n_conc_ops;

    /* metrics */
    struct rpc_server *metrics_rpc; /* --listen-metrics-urls: /metrics and /health only */
    uint64_t health_success, health_failures;
    int64_t nospace_proposed_ms; /* last NOSPACE alarm proposal (kv.c quota) */
    uint64_t proposals_applied, proposals_failed;
    uint64_t leader_changes;
};

int64_t member_now_ms(void);
uint64_t member_request_timeout_ms(const member *m);

/* raftnode.c */
int raftnode_start(member *m, char *errbuf, size_t errlen);
void raftnode_stop(member *m);
void raftnode_kick(member *m);   /* schedules Ready processing */
/* Proposes a memberpb.Request (its id set by the caller). */
int raftnode_propose(member *m, const Memberpb__Request *req);
int raftnode_read_index(member *m, uint64_t round);
void raftnode_status(const member *m, raft_status *st);

/* wait.c */
waiter *wait_register(member *m, waiter_kind kind, struct rpc_call *call);
waiter *wait_take(member *m, uint64_t id);
void wait_forget_call(member *m, struct rpc_call *call);
void wait_sweep(member *m, int64_t now_ms);
void wait_fail_all(member *m, int err);
/* Ends a waiter that will not be applied: fails its call or runs its
 * callback with err, then frees it. */
void wait_fail(member *m, waiter *w, int err);

/* Proposes req (its id is set here) and runs done(arg) once it is applied
 * or failed. check_quota: refuse with MERR_NO_SPACE past the backend quota
 * (writes that may grow the database). Returns 0, or an error with done
 * never called. */
int member_propose(member *m, Memberpb__Request *req, waiter_kind kind, bool check_quota,
                   member_done_fn done, void *arg);
/* The same for a client's call: answered when applied, failed otherwise. */
void member_propose_call(member *m, struct rpc_call *call, waiter_kind kind,
                         Memberpb__Request *req, bool check_quota);

/* apply.c */
void apply_entry(member *m, const raft_entry *e);
/* membership bookkeeping (apply.c) */
member_info *membership_find(member *m, uint64_t id);
member_info *membership_add(member *m, uint64_t id); /* finds or appends */
void membership_persist(member *m, const member_info *mi);
void membership_persist_conf(member *m);
char **strv_dup(char *const *v, size_t n);
void strv_free(char **v, size_t n);
/* cluster.c: conf changes and the Cluster service */
void apply_conf_change(member *m, const raft_entry *e);
int member_meta_load(member *m);
void member_free_meta(member *m);
void compaction_kick(member *m);

/* kv.c */
int kv_register(member *m);
void reads_on_read_state(member *m, uint64_t round, uint64_t index);
void reads_on_applied(member *m);
void reads_fail_all(member *m, int err);
void reads_sweep(member *m, int64_t now_ms);
void fill_header(const member *m, Etcdserverpb__ResponseHeader *h, int64_t rev);
/* A linearizable read barrier for internal reads (etcd's linearizableReadNotify):
 * done(arg, 0) runs once the member has applied up to the index of a
 * ReadIndex round started after this call, then local reads are
 * linearizable; or done(arg, err) on no leader, timeout or stop. Sets
 * *handle before starting the round, so done may run (and the handle is
 * then dead) before this returns. Returns 0, or an error with done never
 * called. member_read_cancel(handle) stops done from running. */
int member_read_index(member *m, member_read_fn done, void *arg, pending_read **handle);
void member_read_cancel(pending_read *r);
/* Points a protobuf KeyValue at an mvcc_kv's memory (no copy). */
void kv_to_pb(const mvcc_kv *kv, Mvccpb__KeyValue *out);
/* Conversions between etcdserverpb messages and mvcc requests/results. */
int conv_txn_req(const Etcdserverpb__TxnRequest *in, mvcc_txn_req *out);
void conv_txn_req_free(mvcc_txn_req *t);
void conv_range_req(const Etcdserverpb__RangeRequest *in, mvcc_range_req *out);
void conv_put_req(const Etcdserverpb__PutRequest *in, mvcc_put_req *out);
void conv_delete_req(const Etcdserverpb__DeleteRangeRequest *in, mvcc_delete_req *out);
/* Replies to `call` with the response for an mvcc result of `kind`. */
void reply_result(member *m, struct rpc_call *call, const mvcc_op_resp *r, int kind);
bool txn_is_readonly(const Etcdserverpb__TxnRequest *t);

/* peers.c */
int peers_start(member *m, char *errbuf, size_t errlen);
void peers_stop(member *m);
void peers_send(member *m, raft_msg *msgs, size_t n);
void peers_member_changed(member *m, const member_info *mi);
void peers_member_removed(member *m, uint64_t id);
bool peers_active(member *m, uint64_t id);
int peers_install_snapshot(member *m, const raft_snapshot *snap, char *errbuf, size_t errlen);

/* member.c */
int member_open_store(member *m, char *errbuf, size_t errlen);
void member_request_stop(member *m);
int strcmp_ptr(const void *a, const void *b); /* qsort over char * */

/* corrupt.c */
int corrupt_check_start(member *m, void (*done)(member *m, bool ok));
void corrupt_check_cancel(member *m);

/* compactor.c */
int compactor_start(member *m);
void compactor_stop(member *m);

/* maintenance.c */
int maintenance_register(member *m);
int cluster_register(member *m);
int http_register(member *m);
/* watch_svc.c */
int watch_register(member *m);
/* lock.c, election.c */
int lock_register(member *m);
int election_register(member *m);
/* idgen_svc.c: the IdGen service and Leaf's HTTP API; the worker and the
 * segments start once the member serves. idgen_stop comes before the
 * waiters are failed (KV calls in flight then end in husks). */
int idgen_register(member *m);
void idgen_stop(member *m);
/* idgen_kv.c: idgen's KV interface over this member (raft, MVCC, lessor,
 * watchable store). */
struct idgen_kv;
void idgen_member_kv(member *m, struct idgen_kv *out);

/* lease.c */
int lease_start(member *m); /* registers the Lease service, starts the timer */
void lease_stop(member *m);
int lease_store_open(member *m, char *errbuf, size_t errlen); /* after mvcc_open */
void lease_store_close(member *m);                            /* before mvcc_close */
void lease_apply(member *m, const Memberpb__Request *req, waiter *w, bool nospace);
void lease_on_state(member *m);                  /* raft state or leader changed */
bool lease_is_ctx(uint64_t ctx);                 /* a ReadIndex ctx of lease.c's */
void lease_on_read_state(member *m, uint64_t ctx);
/* Grants a new lease of ttl seconds with a fresh id (*id, set when this
 * returns 0) through raft, as the Lease service's Grant; done as in
 * member_propose. Returns 0, or an error with done never called. */
int member_lease_grant(member *m, int64_t ttl, int64_t *id, member_done_fn done, void *arg);
/* An in-process keep-alive: the leader renews at once; a follower forwards
 * the renewal to the leader (nobody waits for its answer) and reports what
 * its own lessor holds (a lease the leader let expire is revoked through
 * raft, so it disappears here too). *ttl gets the granted TTL. Returns 0 or
 * MVCC_ELEASE_NOT_FOUND (or MERR_STOPPED). */
int member_lease_keepalive(member *m, int64_t id, int64_t *ttl);

/* auth.c: etcd's auth store (auth/store.go semantics) over the auth,
 * authUsers and authRoles buckets, simple tokens, and the Auth service. */
int auth_store_open(member *m, char *errbuf, size_t errlen); /* after lease_store_open */
int auth_start(member *m);  /* registers the Auth service, starts the bcrypt worker */
void auth_stop(member *m);  /* fails pending calls, joins the worker, frees */
bool auth_enabled(const member *m);
/* The caller's identity from the call's `token` metadata (etcd's
 * AuthInfoFromCtx): *user NULL (and *rev 0) without a token; *user is
 * borrowed until the loop next runs auth code. MERR_INVALID_AUTH_TOKEN for
 * an unknown or expired token. */
int auth_call_info(member *m, struct rpc_call *call, const char **user, uint64_t *rev);
/* Stamps a client's proposal with its identity (or fails with the token
 * error); proposals without a call are marked system. */
int auth_stamp(member *m, struct rpc_call *call, Memberpb__Request *req);
/* etcd's IsAdminPermitted for the caller of call (token looked up). */
int auth_check_call_admin(member *m, struct rpc_call *call);
/* Read checks of a served read (doSerialize's chk): range or txn. */
int auth_check_call_range(member *m, struct rpc_call *call, const Etcdserverpb__RangeRequest *r);
int auth_check_call_txn(member *m, struct rpc_call *call, const Etcdserverpb__TxnRequest *t);
int auth_check_call_watch(member *m, struct rpc_call *call, const uint8_t *key, size_t klen,
                          const uint8_t *end, size_t elen);
/* The caller's read (or write) permission on [key, end) (end empty: the
 * key alone; "\0": every key from key). */
int auth_check_call_key(member *m, struct rpc_call *call, const uint8_t *key, size_t klen,
                        const uint8_t *end, size_t elen, bool write);
/* apply_auth.go's checks of a KV or lease request at apply; 0 or an error. */
int auth_check_apply(member *m, const Memberpb__Request *req);
/* Applies an Auth* request (index: the entry's, for tokens). */
void auth_apply(member *m, const Memberpb__Request *req, waiter *w, uint64_t index);
bool auth_is_request(const Memberpb__Request *req);

/* metrics.c: /metrics on srv (the client server or the metrics one) */
int metrics_register(member *m, struct rpc_server *srv);
/* observe.c: /health on srv, and /debug/channelz when debug */
int observe_register(member *m, struct rpc_server *srv, bool debug);
void observe_stop(member *m); /* answers health checks in flight */
void snapshot_stop(member *m); /* joins Snapshot exports still running */
/* maintenance.c: a MoveLeader waiting for the transfer */
void move_leader_check(member *m, int64_t now_ms);
bool member_has_leader(const member *m);
bool member_alarm_active(const member *m, int type);

#endif
