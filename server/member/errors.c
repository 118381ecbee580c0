/* server/member/errors.c - the one table from metcd's internal errors to
 * etcd's gRPC status codes and exact messages
 * (etcdserver/api/v3rpc/rpctypes/error.go). Clients match on these texts. */
#include "server/member/internal.h"

#include "backend/backend.h"
#include "idgen/idgen.h"

struct status_entry {
    int err;
    enum rpc_code code;
    const char *msg;
};

static const struct status_entry table[] = {
    {MVCC_EEMPTY_KEY, RPC_CODE_INVALID_ARGUMENT, "etcdserver: key is not provided"},
    {MVCC_EKEY_NOT_FOUND, RPC_CODE_INVALID_ARGUMENT, "etcdserver: key not found"},
    {MVCC_EVALUE_PROVIDED, RPC_CODE_INVALID_ARGUMENT, "etcdserver: value is provided"},
    {MVCC_ELEASE_PROVIDED, RPC_CODE_INVALID_ARGUMENT, "etcdserver: lease is provided"},
    {MVCC_ETOO_MANY_OPS, RPC_CODE_INVALID_ARGUMENT,
     "etcdserver: too many operations in txn request"},
    {MVCC_EDUPLICATE_KEY, RPC_CODE_INVALID_ARGUMENT,
     "etcdserver: duplicate key given in txn request"},
    {MVCC_EINVALID_SORT, RPC_CODE_INVALID_ARGUMENT, "etcdserver: invalid sort option"},
    {MVCC_EINVALID, RPC_CODE_INVALID_ARGUMENT, "etcdserver: request is invalid"},
    {MVCC_ECOMPACTED, RPC_CODE_OUT_OF_RANGE,
     "etcdserver: mvcc: required revision has been compacted"},
    {MVCC_EFUTURE_REV, RPC_CODE_OUT_OF_RANGE,
     "etcdserver: mvcc: required revision is a future revision"},
    {MVCC_ENOSPACE, RPC_CODE_RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded"},
    {MERR_NO_SPACE, RPC_CODE_RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded"},
    {BACKEND_ENOSPC, RPC_CODE_RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded"},
    {MVCC_ELEASE_NOT_FOUND, RPC_CODE_NOT_FOUND, "etcdserver: requested lease not found"},
    {MVCC_ELEASE_EXISTS, RPC_CODE_FAILED_PRECONDITION, "etcdserver: lease already exists"},
    {MVCC_ELEASE_TTL_TOO_LARGE, RPC_CODE_OUT_OF_RANGE, "etcdserver: too large lease TTL"},
    {RAFT_ENOLEADER, RPC_CODE_UNAVAILABLE, "etcdserver: no leader"},
    {MERR_TIMEOUT, RPC_CODE_UNAVAILABLE, "etcdserver: request timed out"},
    {MERR_STOPPED, RPC_CODE_UNAVAILABLE, "etcdserver: server stopped"},
    {MERR_TOO_MANY_REQUESTS, RPC_CODE_RESOURCE_EXHAUSTED, "etcdserver: too many requests"},
    {RAFT_EDROPPED, RPC_CODE_RESOURCE_EXHAUSTED, "etcdserver: too many requests"},
    {MERR_REQUEST_TOO_LARGE, RPC_CODE_INVALID_ARGUMENT, "etcdserver: request is too large"},
    {MERR_MEMBER_NOT_FOUND, RPC_CODE_NOT_FOUND, "etcdserver: member not found"},
    {MERR_MEMBER_REMOVED, RPC_CODE_NOT_FOUND, "etcdserver: member not found"},
    {MERR_BAD_URLS, RPC_CODE_INVALID_ARGUMENT, "etcdserver: given member URLs are invalid"},
    {MERR_PEER_URL_EXIST, RPC_CODE_FAILED_PRECONDITION, "etcdserver: Peer URLs already exists"},
    {MERR_NOT_ENOUGH_STARTED, RPC_CODE_FAILED_PRECONDITION,
     "etcdserver: re-configuration failed due to not enough started members"},
    {MERR_MEMBER_EXIST, RPC_CODE_FAILED_PRECONDITION, "etcdserver: member ID already exist"},
    {MERR_NOT_LEADER, RPC_CODE_FAILED_PRECONDITION, "etcdserver: not leader"},
    {MERR_LEADER_TRANSFER_TIMEOUT, RPC_CODE_UNAVAILABLE,
     "etcdserver: request timed out, leader transfer took too long"},
    {MERR_MEMBER_NOT_LEARNER, RPC_CODE_FAILED_PRECONDITION,
     "etcdserver: can only promote a learner member"},
    {MERR_LEARNER_NOT_READY, RPC_CODE_FAILED_PRECONDITION,
     "etcdserver: can only promote a learner member which is in sync with leader"},
    {MERR_BAD_LEADER_TRANSFEREE, RPC_CODE_FAILED_PRECONDITION,
     "etcdserver: bad leader transferee"},
    /* auth (rpctypes/error.go) */
    {MERR_AUTH_NOT_ENABLED, RPC_CODE_FAILED_PRECONDITION,
     "etcdserver: authentication is not enabled"},
    {MERR_ROOT_USER_NOT_EXIST, RPC_CODE_FAILED_PRECONDITION,
     "etcdserver: root user does not exist"},
    {MERR_ROOT_ROLE_NOT_EXIST, RPC_CODE_FAILED_PRECONDITION,
     "etcdserver: root user does not have root role"},
    {MERR_USER_ALREADY_EXIST, RPC_CODE_FAILED_PRECONDITION, "etcdserver: user name already exists"},
    {MERR_USER_EMPTY, RPC_CODE_INVALID_ARGUMENT, "etcdserver: user name is empty"},
    {MERR_USER_NOT_FOUND, RPC_CODE_FAILED_PRECONDITION, "etcdserver: user name not found"},
    {MERR_ROLE_ALREADY_EXIST, RPC_CODE_FAILED_PRECONDITION, "etcdserver: role name already exists"},
    {MERR_ROLE_NOT_FOUND, RPC_CODE_FAILED_PRECONDITION, "etcdserver: role name not found"},
    {MERR_ROLE_EMPTY, RPC_CODE_INVALID_ARGUMENT, "etcdserver: role name is empty"},
    {MERR_AUTH_FAILED, RPC_CODE_INVALID_ARGUMENT,
     "etcdserver: authentication failed, invalid user ID or password"},
    {MERR_PERMISSION_DENIED, RPC_CODE_PERMISSION_DENIED, "etcdserver: permission denied"},
    {MERR_ROLE_NOT_GRANTED, RPC_CODE_FAILED_PRECONDITION,
     "etcdserver: role is not granted to the user"},
    {MERR_PERMISSION_NOT_GRANTED, RPC_CODE_FAILED_PRECONDITION,
     "etcdserver: permission is not granted to the role"},
    {MERR_INVALID_AUTH_TOKEN, RPC_CODE_UNAUTHENTICATED, "etcdserver: invalid auth token"},
    {MERR_INVALID_AUTH_MGMT, RPC_CODE_INVALID_ARGUMENT, "etcdserver: invalid auth management"},
    {MERR_AUTH_OLD_REVISION, RPC_CODE_INVALID_ARGUMENT,
     "etcdserver: revision of auth store is old"},
    /* not in etcd's gRPC table: a plain error, UNKNOWN with the auth text */
    {MERR_NO_PASSWORD_USER, RPC_CODE_UNKNOWN,
     "auth: authentication failed, password was given for no password user"},
    /* clientv3/concurrency and v3election: plain Go errors, UNKNOWN on the wire */
    {MERR_ELECTION_NOT_LEADER, RPC_CODE_UNKNOWN, "election: not leader"},
    {MERR_ELECTION_NO_LEADER, RPC_CODE_UNKNOWN, "election: no leader"},
    {MERR_ELECTION_NO_LEADER_KEY, RPC_CODE_UNKNOWN, "\"leader\" field must be provided"},
    /* the ID service (idgen_svc.c): texts from idgen_strerror */
    {IDGEN_EINVAL, RPC_CODE_INVALID_ARGUMENT, NULL},
    {IDGEN_ENOT_READY, RPC_CODE_UNAVAILABLE, NULL},
    {IDGEN_EDRIFT, RPC_CODE_UNAVAILABLE, NULL},
    {IDGEN_EDRIFT_LEAVE, RPC_CODE_UNAVAILABLE, NULL},
    {IDGEN_ESTOPPED, RPC_CODE_UNAVAILABLE, NULL},
    {IDGEN_EEPOCH, RPC_CODE_FAILED_PRECONDITION, NULL},
    {IDGEN_ETAG_NOT_FOUND, RPC_CODE_NOT_FOUND, NULL},
    {IDGEN_ETAG_EXISTS, RPC_CODE_ALREADY_EXISTS, NULL},
    {IDGEN_ESEGMENTS, RPC_CODE_UNAVAILABLE, NULL},
    {IDGEN_ETOO_MANY, RPC_CODE_RESOURCE_EXHAUSTED, NULL},
    {IDGEN_ECORRUPT, RPC_CODE_DATA_LOSS, NULL},
};

void member_error_status(int err, enum rpc_code *code, const char **msg)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (table[i].err == err) {
            *code = table[i].code;
            *msg = table[i].msg ? table[i].msg : idgen_strerror(err);
            return;
        }
    }
    /* Anything else is a failure of ours (backend, allocation): etcd
     * answers those as unknown errors with their text. */
    *code = RPC_CODE_UNKNOWN;
    if (err <= -1000 && err > -1050)
        *msg = backend_strerror(err);
    else if (err <= -1050 && err > -1100)
        *msg = wal_strerror(err);
    else if (err <= -1100 && err > -1150)
        *msg = mvcc_strerror(err);
    else if (err <= -3000 && err > -3100)
        *msg = raft_strerror(err);
    else if (err <= -1800 && err > -1850)
        *msg = idgen_strerror(err);
    else
        *msg = "etcdserver: internal error";
}

void member_fail_call(struct rpc_call *call, int err)
{
    enum rpc_code code;
    const char *msg;
    member_error_status(err, &code, &msg);
    rpc_call_finish(call, code, msg);
}

void member_fail_call_relayed(struct rpc_call *call, int err)
{
    enum rpc_code code;
    const char *msg;
    member_error_status(err, &code, &msg);
    rpc_call_finish(call, RPC_CODE_UNKNOWN, msg);
}

/* The auth package's own texts (auth/store.go), for the services that hand
 * them to gRPC unconverted. */
static const struct {
    int err;
    const char *msg;
} auth_raw[] = {
    {MERR_USER_EMPTY, "auth: user name is empty"},
    {MERR_USER_NOT_FOUND, "auth: user not found"},
    {MERR_PERMISSION_DENIED, "auth: permission denied"},
    {MERR_INVALID_AUTH_TOKEN, "auth: invalid auth token"},
    {MERR_AUTH_OLD_REVISION, "auth: revision in header is old"},
};

void member_fail_call_auth_raw(struct rpc_call *call, int err)
{
    for (size_t i = 0; i < sizeof(auth_raw) / sizeof(auth_raw[0]); i++) {
        if (auth_raw[i].err == err) {
            rpc_call_finish(call, RPC_CODE_UNKNOWN, auth_raw[i].msg);
            return;
        }
    }
    member_fail_call(call, err);
}
