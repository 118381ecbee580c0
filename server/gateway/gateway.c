/* server/gateway/gateway.c - the HTTP/JSON gateway (see gateway.h): the
 * path table, HTTP requests turned into calls on the member's own gRPC
 * server, answers turned back into JSON. */
#include "server/gateway/gateway.h"

#include "common/mem.h"
#include "server/etcdserverpb/rpc.pb-c.h"
#include "server/pbjson/pbjson.h"
#include "server/rpc/rpc.h"
#ifdef METCD_GATEWAY_V3LOCK
#include "server/v3lockpb/v3lock.pb-c.h"
#endif
#ifdef METCD_GATEWAY_V3ELECTION
#include "server/v3electionpb/v3election.pb-c.h"
#endif

#include <event2/buffer.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- the path table (etcd 3.4's google.api.http annotations) ---- */

enum gw_kind { GW_UNARY, GW_SERVER_STREAM, GW_BIDI };

struct gw_route {
    const char *path;   /* after /v3/ */
    const char *method; /* the gRPC method */
    enum gw_kind kind;
    const ProtobufCMessageDescriptor *req, *resp; /* NULL: service not built in */
};

#define PB(x) &etcdserverpb__##x##__descriptor
#define RT(path, svc, m, kind, req, resp)                                                   \
    {path, "/etcdserverpb." svc "/" m, kind, PB(req), PB(resp)}
#ifdef METCD_GATEWAY_V3LOCK
#define LOCK(x) &v3lockpb__##x##__descriptor
#else
#define LOCK(x) NULL
#endif
#ifdef METCD_GATEWAY_V3ELECTION
#define ELECT(x) &v3electionpb__##x##__descriptor
#else
#define ELECT(x) NULL
#endif

/* In registration order: the first match wins, as in grpc-gateway's mux
 * (so /v3/maintenance/hash is Hash, never HashKV). */
static const struct gw_route routes[] = {
    RT("kv/range", "KV", "Range", GW_UNARY, range_request, range_response),
    RT("kv/put", "KV", "Put", GW_UNARY, put_request, put_response),
    RT("kv/deleterange", "KV", "DeleteRange", GW_UNARY, delete_range_request,
       delete_range_response),
    RT("kv/txn", "KV", "Txn", GW_UNARY, txn_request, txn_response),
    RT("kv/compaction", "KV", "Compact", GW_UNARY, compaction_request, compaction_response),
    RT("watch", "Watch", "Watch", GW_BIDI, watch_request, watch_response),
    RT("lease/grant", "Lease", "LeaseGrant", GW_UNARY, lease_grant_request,
       lease_grant_response),
    RT("lease/revoke", "Lease", "LeaseRevoke", GW_UNARY, lease_revoke_request,
       lease_revoke_response),
    RT("kv/lease/revoke", "Lease", "LeaseRevoke", GW_UNARY, lease_revoke_request,
       lease_revoke_response),
    RT("lease/keepalive", "Lease", "LeaseKeepAlive", GW_BIDI, lease_keep_alive_request,
       lease_keep_alive_response),
    RT("lease/timetolive", "Lease", "LeaseTimeToLive", GW_UNARY, lease_time_to_live_request,
       lease_time_to_live_response),
    RT("kv/lease/timetolive", "Lease", "LeaseTimeToLive", GW_UNARY,
       lease_time_to_live_request, lease_time_to_live_response),
    RT("lease/leases", "Lease", "LeaseLeases", GW_UNARY, lease_leases_request,
       lease_leases_response),
    RT("kv/lease/leases", "Lease", "LeaseLeases", GW_UNARY, lease_leases_request,
       lease_leases_response),
    RT("cluster/member/add", "Cluster", "MemberAdd", GW_UNARY, member_add_request,
       member_add_response),
    RT("cluster/member/remove", "Cluster", "MemberRemove", GW_UNARY, member_remove_request,
       member_remove_response),
    RT("cluster/member/update", "Cluster", "MemberUpdate", GW_UNARY, member_update_request,
       member_update_response),
    RT("cluster/member/list", "Cluster", "MemberList", GW_UNARY, member_list_request,
       member_list_response),
    RT("cluster/member/promote", "Cluster", "MemberPromote", GW_UNARY,
       member_promote_request, member_promote_response),
    RT("maintenance/alarm", "Maintenance", "Alarm", GW_UNARY, alarm_request, alarm_response),
    RT("maintenance/status", "Maintenance", "Status", GW_UNARY, status_request,
       status_response),
    RT("maintenance/defragment", "Maintenance", "Defragment", GW_UNARY, defragment_request,
       defragment_response),
    RT("maintenance/hash", "Maintenance", "Hash", GW_UNARY, hash_request, hash_response),
    RT("maintenance/hash", "Maintenance", "HashKV", GW_UNARY, hash_kvrequest,
       hash_kvresponse),
    RT("maintenance/snapshot", "Maintenance", "Snapshot", GW_SERVER_STREAM, snapshot_request,
       snapshot_response),
    RT("maintenance/transfer-leadership", "Maintenance", "MoveLeader", GW_UNARY,
       move_leader_request, move_leader_response),
    RT("auth/enable", "Auth", "AuthEnable", GW_UNARY, auth_enable_request,
       auth_enable_response),
    RT("auth/disable", "Auth", "AuthDisable", GW_UNARY, auth_disable_request,
       auth_disable_response),
    RT("auth/authenticate", "Auth", "Authenticate", GW_UNARY, authenticate_request,
       authenticate_response),
    RT("auth/user/add", "Auth", "UserAdd", GW_UNARY, auth_user_add_request,
       auth_user_add_response),
    RT("auth/user/get", "Auth", "UserGet", GW_UNARY, auth_user_get_request,
       auth_user_get_response),
    RT("auth/user/list", "Auth", "UserList", GW_UNARY, auth_user_list_request,
       auth_user_list_response),
    RT("auth/user/delete", "Auth", "UserDelete", GW_UNARY, auth_user_delete_request,
       auth_user_delete_response),
    RT("auth/user/changepw", "Auth", "UserChangePassword", GW_UNARY,
       auth_user_change_password_request, auth_user_change_password_response),
    RT("auth/user/grant", "Auth", "UserGrantRole", GW_UNARY, auth_user_grant_role_request,
       auth_user_grant_role_response),
    RT("auth/user/revoke", "Auth", "UserRevokeRole", GW_UNARY, auth_user_revoke_role_request,
       auth_user_revoke_role_response),
    RT("auth/role/add", "Auth", "RoleAdd", GW_UNARY, auth_role_add_request,
       auth_role_add_response),
    RT("auth/role/get", "Auth", "RoleGet", GW_UNARY, auth_role_get_request,
       auth_role_get_response),
    RT("auth/role/list", "Auth", "RoleList", GW_UNARY, auth_role_list_request,
       auth_role_list_response),
    RT("auth/role/delete", "Auth", "RoleDelete", GW_UNARY, auth_role_delete_request,
       auth_role_delete_response),
    RT("auth/role/grant", "Auth", "RoleGrantPermission", GW_UNARY,
       auth_role_grant_permission_request, auth_role_grant_permission_response),
    RT("auth/role/revoke", "Auth", "RoleRevokePermission", GW_UNARY,
       auth_role_revoke_permission_request, auth_role_revoke_permission_response),
    {"lock/lock", "/v3lockpb.Lock/Lock", GW_UNARY, LOCK(lock_request), LOCK(lock_response)},
    {"lock/unlock", "/v3lockpb.Lock/Unlock", GW_UNARY, LOCK(unlock_request),
     LOCK(unlock_response)},
    {"election/campaign", "/v3electionpb.Election/Campaign", GW_UNARY,
     ELECT(campaign_request), ELECT(campaign_response)},
    {"election/proclaim", "/v3electionpb.Election/Proclaim", GW_UNARY,
     ELECT(proclaim_request), ELECT(proclaim_response)},
    {"election/leader", "/v3electionpb.Election/Leader", GW_UNARY, ELECT(leader_request),
     ELECT(leader_response)},
    {"election/observe", "/v3electionpb.Election/Observe", GW_SERVER_STREAM,
     ELECT(leader_request), ELECT(leader_response)},
    {"election/resign", "/v3electionpb.Election/Resign", GW_UNARY, ELECT(resign_request),
     ELECT(resign_response)},
};

static const struct gw_route *find_route(const char *rest)
{
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++)
        if (strcmp(routes[i].path, rest) == 0)
            return &routes[i];
    return NULL;
}

/* ---- statuses (grpc-gateway's HTTPStatusFromCode, Go's StatusText) ---- */

static int http_status(enum rpc_code code)
{
    switch (code) {
    case RPC_CODE_OK: return 200;
    case RPC_CODE_CANCELLED: return 408;
    case RPC_CODE_UNKNOWN: return 500;
    case RPC_CODE_INVALID_ARGUMENT: return 400;
    case RPC_CODE_DEADLINE_EXCEEDED: return 504;
    case RPC_CODE_NOT_FOUND: return 404;
    case RPC_CODE_ALREADY_EXISTS: return 409;
    case RPC_CODE_PERMISSION_DENIED: return 403;
    case RPC_CODE_UNAUTHENTICATED: return 401;
    case RPC_CODE_RESOURCE_EXHAUSTED: return 429;
    case RPC_CODE_FAILED_PRECONDITION: return 412;
    case RPC_CODE_ABORTED: return 409;
    case RPC_CODE_OUT_OF_RANGE: return 400;
    case RPC_CODE_UNIMPLEMENTED: return 501;
    case RPC_CODE_INTERNAL: return 500;
    case RPC_CODE_UNAVAILABLE: return 503;
    case RPC_CODE_DATA_LOSS: return 500;
    default: return 500;
    }
}

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 429: return "Too Many Requests";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Internal Server Error";
    }
}

/* ---- the gateway and its requests ---- */

struct gw_req;

struct gateway {
    struct rpc_server *srv;
    struct rpc_client *cl;
    struct gw_req *reqs; /* every open request */
    unsigned n_paused;   /* streams whose server is held back (<= GATEWAY_MAX_PAUSED) */
    bool closing;
};

struct gw_req {
    struct gateway *gw;
    struct rpc_http_req *http;  /* NULL once answered or gone */
    const struct gw_route *route;
    struct rpc_ccall *call;     /* NULL once closed */
    struct pbjson_reader body;  /* a bidi body: the requests after the first */
    ProtobufCMessage *held;     /* a request waiting for room in the call */
    bool sending;               /* bidi: requests still to send */
    bool began;                 /* HTTP answer begun (streams) */
    bool got_message;           /* a response arrived */
    bool paused;                /* the call's server is held back (counted in n_paused) */
    struct evbuffer *pending;   /* stream chunks waiting for the HTTP client */
    struct gw_req *prev, *next;
};

static void add_cors(struct rpc_http_req *h)
{
    /* etcd's accessController with the default --cors "*" */
    rpc_http_add_header(h, "Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE");
    rpc_http_add_header(h, "Access-Control-Allow-Origin", "*");
    rpc_http_add_header(h, "Access-Control-Allow-Headers", "accept, content-type, authorization");
}

/* Go's http.Error. */
static void http_error_text(struct rpc_http_req *h, int status, const char *text)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%s\n", text);
    add_cors(h);
    rpc_http_add_header(h, "X-Content-Type-Options", "nosniff");
    rpc_http_respond(h, status, "text/plain; charset=utf-8", body, (size_t)n);
}

/* grpc-gateway's DefaultHTTPError body: {"error":m,"message":m,"code":c}
 * through jsonpb (an empty message is left out). */
static int error_body(enum rpc_code code, const char *msg, char **out, size_t *len)
{
    json_t *o = json_object();
    if (!o)
        return -1;
    int rc = 0;
    if (msg && *msg) {
        rc |= json_object_set_new(o, "error", json_stringn_nocheck(msg, strlen(msg)));
        rc |= json_object_set_new(o, "message", json_stringn_nocheck(msg, strlen(msg)));
    }
    if (code)
        rc |= json_object_set_new(o, "code", json_integer(code));
    if (rc == 0)
        rc = pbjson_dump(o, out, len);
    json_decref(o);
    return rc ? -1 : 0;
}

/* Answers h with the error (unary form) and lets go of it. */
static void respond_error(struct rpc_http_req *h, enum rpc_code code, const char *msg)
{
    char *body;
    size_t len;
    add_cors(h);
    if (error_body(code, msg, &body, &len) != 0) {
        static const char fallback[] = "{\"error\": \"failed to marshal error message\"}";
        rpc_http_respond(h, 500, "application/json", fallback, sizeof fallback - 1);
        return;
    }
    rpc_http_respond(h, http_status(code), "application/json", body, len);
    metcd_free(body);
}

static void req_unlink(struct gw_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        r->gw->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

static void set_paused(struct gw_req *r, bool pause)
{
    if (pause == r->paused)
        return;
    if (pause && r->gw->n_paused >= GATEWAY_MAX_PAUSED)
        return; /* read on and buffer: GATEWAY_MAX_PENDING bounds it */
    if (r->call)
        rpc_ccall_pause_recv(r->call, pause);
    r->paused = pause;
    if (pause)
        r->gw->n_paused++;
    else
        r->gw->n_paused--;
}

static void req_free(struct gw_req *r)
{
    set_paused(r, false);
    req_unlink(r);
    if (r->held)
        protobuf_c_message_free_unpacked(r->held, &metcd_pb_allocator);
    if (r->pending)
        evbuffer_free(r->pending);
    metcd_free(r);
}

/* The HTTP side is done with (answered or gone). */
static void req_detach_http(struct gw_req *r)
{
    if (r->http)
        rpc_http_set_data(r->http, NULL);
    r->http = NULL;
}

/* Begins the streamed answer if not yet: 200 and JSON. */
static int stream_begin(struct gw_req *r, int status)
{
    if (r->began)
        return 0;
    add_cors(r->http);
    if (status == 200)
        rpc_http_add_header(r->http, "Grpc-Metadata-Content-Type", "application/grpc");
    int rc = rpc_http_stream_begin(r->http, status, "application/json");
    r->began = rc == 0;
    return rc;
}

/* Ends the streamed answer (pending chunks dropped: the client is gone
 * or too slow) and lets go of the HTTP request. */
static void stream_end(struct gw_req *r)
{
    if (!r->http)
        return;
    struct rpc_http_req *h = r->http;
    req_detach_http(r);
    rpc_http_stream_end(h);
}

/* Writes a chunk, or queues it behind earlier ones while the HTTP client
 * is slow. Returns -1 when the bound is passed (the caller gives up). */
static int stream_write(struct gw_req *r, const char *data, size_t len)
{
    if (r->pending && evbuffer_get_length(r->pending)) {
        if (evbuffer_get_length(r->pending) + len > GATEWAY_MAX_PENDING)
            return -1;
        set_paused(r, true); /* a pause slot may have freed up meanwhile */
        return evbuffer_add(r->pending, data, len) == 0 ? 0 : -1;
    }
    int rc = rpc_http_stream_write(r->http, data, len);
    if (rc == 0)
        return 0;
    if (rc != RPC_ERR_FULL)
        return -1;
    if (!r->pending && !(r->pending = evbuffer_new()))
        return -1;
    /* the HTTP client is behind: stop the server through HTTP/2 flow
     * control until it catches up (etcd's gateway blocks in Write) */
    set_paused(r, true);
    return evbuffer_add(r->pending, data, len) == 0 ? 0 : -1;
}

static void on_http_drain(struct rpc_http_req *h, void *data)
{
    (void)h;
    struct gw_req *r = data;
    size_t n = r->pending ? evbuffer_get_length(r->pending) : 0;
    if (!n || !r->http)
        return;
    unsigned char *p = evbuffer_pullup(r->pending, -1);
    int rc = p ? rpc_http_stream_write(r->http, p, n) : RPC_ERR_NOMEM;
    if (rc == 0) {
        evbuffer_drain(r->pending, n);
        set_paused(r, false);
    }
    if (rc != 0 && rc != RPC_ERR_FULL && r->call) {
        rpc_ccall_cancel(r->call); /* ends the HTTP stream through on_call_close */
        return;
    }
    if (!r->call && (rc != 0 || evbuffer_get_length(r->pending) == 0)) {
        /* the call ended while this waited: the answer is complete */
        stream_end(r);
        req_free(r);
    }
}

/* ---- calls ---- */

static void send_requests(struct gw_req *r);

static void on_call_message(struct rpc_ccall *c, const ProtobufCMessage *msg, void *data)
{
    struct gw_req *r = data;
    if (!r->http)
        return;
    if (r->route->kind == GW_UNARY) {
        /* the answer is written at close, when the status is known */
        char *text;
        size_t len;
        if (r->got_message || pbjson_encode_text(msg, &text, &len) != 0)
            return;
        r->got_message = true;
        /* stash the body in pending until the status arrives */
        if (!r->pending && !(r->pending = evbuffer_new())) {
            metcd_free(text);
            rpc_ccall_cancel(c);
            return;
        }
        if (evbuffer_add(r->pending, text, len) != 0)
            rpc_ccall_cancel(c);
        metcd_free(text);
        return;
    }
    json_t *o = json_object(), *m = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = o && pbjson_encode(msg, &m) == 0 ? json_object_set_new(o, "result", m) : -1;
    if (rc == 0)
        rc = pbjson_dump(o, &text, &len);
    json_decref(o);
    r->got_message = true;
    if (rc == 0)
        rc = stream_begin(r, 200);
    if (rc == 0) {
        /* the delimiter goes in the same chunk, as Go's flush writes it */
        text[len] = '\n'; /* over the NUL pbjson_dump leaves */
        rc = stream_write(r, text, len + 1);
    }
    metcd_free(text);
    if (rc != 0)
        rpc_ccall_cancel(c); /* out of memory or a client too slow: give up */
}

static void on_call_close(struct rpc_ccall *c, enum rpc_code code, const char *msg, void *data)
{
    (void)c;
    struct gw_req *r = data;
    set_paused(r, false);
    r->call = NULL;
    if (!r->http) {
        req_free(r);
        return;
    }
    struct rpc_http_req *h = r->http;
    if (r->route->kind == GW_UNARY) {
        req_detach_http(r);
        size_t n = r->pending ? evbuffer_get_length(r->pending) : 0;
        if (code == RPC_CODE_OK && n) {
            add_cors(h);
            rpc_http_add_header(h, "Grpc-Metadata-Content-Type", "application/grpc");
            unsigned char *p = evbuffer_pullup(r->pending, -1);
            if (p)
                rpc_http_respond(h, 200, "application/json", p, n);
            else
                respond_error(h, RPC_CODE_INTERNAL, "out of memory");
        } else {
            if (code == RPC_CODE_OK) {
                code = RPC_CODE_INTERNAL;
                msg = "grpc: no response message for a unary call";
            }
            respond_error(h, code, msg);
        }
        req_free(r);
        return;
    }
    if (code != RPC_CODE_OK && !r->began) {
        /* no answer yet: the error as grpc-gateway's HTTPError writes it */
        req_detach_http(r);
        respond_error(h, code, msg);
        req_free(r);
        return;
    }
    if (code != RPC_CODE_OK) {
        /* after results: grpc-gateway's stream error chunk */
        int hs = http_status(code);
        json_t *e = json_object(), *o = json_object();
        char *text = NULL;
        size_t len = 0;
        if (e && o && json_object_set_new(e, "grpc_code", json_integer(code)) == 0 &&
            json_object_set_new(e, "http_code", json_integer(hs)) == 0 &&
            (!msg || !*msg ||
             json_object_set_new(e, "message", json_stringn_nocheck(msg, strlen(msg))) == 0) &&
            json_object_set_new(e, "http_status", json_string(status_text(hs))) == 0 &&
            json_object_set(o, "error", e) == 0 && pbjson_dump(o, &text, &len) == 0)
            stream_write(r, text, len);
        json_decref(e);
        json_decref(o);
        metcd_free(text);
    } else if (stream_begin(r, 200) != 0) {
        req_detach_http(r);
        respond_error(h, RPC_CODE_INTERNAL, "out of memory");
        req_free(r);
        return;
    }
    if (r->pending && evbuffer_get_length(r->pending))
        return; /* on_http_drain writes the rest, then ends */
    stream_end(r);
    req_free(r);
}

static void on_call_drain(struct rpc_ccall *c, void *data)
{
    (void)c;
    send_requests(data);
}

static const struct rpc_ccall_ops call_ops = {
    .on_message = on_call_message,
    .on_close = on_call_close,
    .on_drain = on_call_drain,
};

/* Bidi: sends the body's requests (as etcd's gateway does, one JSON value
 * after another) until the body ends, a value is bad (the rest is
 * dropped, as etcd does) or the call's queue is full (on_call_drain). */
static void send_requests(struct gw_req *r)
{
    while (r->call && r->sending) {
        if (!r->held) {
            char err[8];
            int rc = pbjson_read(&r->body, r->route->req, &r->held, err, sizeof err);
            if (rc == PBJSON_ERR_NOMEM) {
                rpc_ccall_cancel(r->call); /* not the client's fault: say so */
                return;
            }
            if (rc != 0) {
                r->sending = false;
                rpc_ccall_close_send(r->call);
                return;
            }
        }
        int rc = rpc_ccall_send(r->call, r->held);
        if (rc == RPC_ERR_FULL)
            return;
        protobuf_c_message_free_unpacked(r->held, &metcd_pb_allocator);
        r->held = NULL;
        if (rc != 0) {
            rpc_ccall_cancel(r->call);
            return;
        }
    }
}

/* Call metadata from the HTTP headers (grpc-gateway's AnnotateContext):
 * Authorization as "authorization", Grpc-Metadata-<K> as "<k>". */
#define MAX_MD 16

struct md_set {
    struct rpc_md md[MAX_MD];
    char keys[MAX_MD][64];
    size_t n;
};

static bool md_value_ok(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 && *v != '\t')
            return false;
    return true;
}

static void collect_md(struct rpc_http_req *h, struct md_set *s)
{
    const char *auth = rpc_http_header(h, "authorization");
    if (auth && md_value_ok(auth)) {
        s->md[s->n].key = "authorization";
        s->md[s->n++].value = auth;
    }
    static const char *const known[] = {"token", "hasleader"};
    for (size_t i = 0; i < sizeof known / sizeof *known && s->n < MAX_MD; i++) {
        char name[80];
        snprintf(name, sizeof name, "grpc-metadata-%s", known[i]);
        const char *v = rpc_http_header(h, name);
        if (v && md_value_ok(v)) {
            snprintf(s->keys[s->n], sizeof s->keys[s->n], "%s", known[i]);
            s->md[s->n].key = s->keys[s->n];
            s->md[s->n++].value = v;
        }
    }
}

/* ---- HTTP ---- */

static void on_http(struct rpc_http_req *h, void *data)
{
    struct gateway *gw = data;
    const char *path = rpc_http_path(h);
    const char *method = rpc_http_method(h);
    if (strcmp(method, "OPTIONS") == 0) {
        add_cors(h);
        rpc_http_respond(h, 200, NULL, NULL, 0);
        return;
    }
    if (strcmp(path, "/v3") == 0) {
        /* Go's ServeMux: the subtree without its slash is redirected */
        char loc[256];
        const char *q = rpc_http_query(h);
        snprintf(loc, sizeof loc, "/v3/%s%s", *q ? "?" : "", q);
        add_cors(h);
        rpc_http_add_header(h, "Location", loc);
        rpc_http_respond(h, 301, NULL, NULL, 0);
        return;
    }
    const char *rest = strncmp(path, "/v3beta/", 8) == 0 ? path + 8 : path + 4;
    const struct gw_route *rt = find_route(rest);
    if (!rt) {
        http_error_text(h, 404, "Not Found");
        return;
    }
    if (strcmp(method, "POST") != 0) {
        http_error_text(h, 405, "Method Not Allowed");
        return;
    }
    if (gw->closing) {
        respond_error(h, RPC_CODE_UNAVAILABLE, "etcdserver: server stopped");
        return;
    }
    if (!rt->req) {
        /* the member does not serve this service: what its gRPC server says */
        char text[96];
        const char *svc = rt->method + 1;
        snprintf(text, sizeof text, "unknown service %.*s", (int)(strchr(svc, '/') - svc), svc);
        respond_error(h, RPC_CODE_UNIMPLEMENTED, text);
        return;
    }
    size_t blen;
    const void *body = rpc_http_body(h, &blen);
    char err[256];
    ProtobufCMessage *first = NULL;
    struct gw_req *r = metcd_calloc(1, sizeof *r);
    if (!r) {
        respond_error(h, RPC_CODE_INTERNAL, "out of memory");
        return;
    }
    r->gw = gw;
    r->route = rt;
    r->next = gw->reqs;
    if (r->next)
        r->next->prev = r;
    gw->reqs = r;
    int rc;
    if (rt->kind == GW_BIDI) {
        /* the body is a stream of requests; the first one's error is the
         * answer (Unknown: grpc-gateway passes the decoder's error on) */
        pbjson_reader_init(&r->body, body, blen);
        rc = pbjson_read(&r->body, rt->req, &first, err, sizeof err);
        if (rc == PBJSON_ERR_NOMEM) {
            respond_error(h, RPC_CODE_INTERNAL, "out of memory");
            req_free(r);
            return;
        }
        if (rc != 0 && rc != PBJSON_EOF) {
            respond_error(h, RPC_CODE_UNKNOWN, err);
            req_free(r);
            return;
        }
        r->sending = rc == 0;
    } else {
        rc = pbjson_decode(rt->req, body, blen, &first, err, sizeof err);
        if (rc != 0) {
            respond_error(h, rc == PBJSON_ERR_NOMEM ? RPC_CODE_INTERNAL
                                                    : RPC_CODE_INVALID_ARGUMENT,
                          err);
            req_free(r);
            return;
        }
    }
    struct md_set md = {0};
    collect_md(h, &md);
    r->http = h;
    rpc_http_set_data(h, r);
    if (rt->kind != GW_UNARY)
        rpc_http_stream_on_drain(h, on_http_drain, r);
    rc = rpc_ccall_start(gw->cl, rt->method, rt->resp, md.md, md.n, 0, &call_ops, r, &r->call);
    if (rc != 0) {
        if (first)
            protobuf_c_message_free_unpacked(first, &metcd_pb_allocator);
        req_detach_http(r);
        respond_error(h, RPC_CODE_UNAVAILABLE, rpc_strerror(rc));
        req_free(r);
        return;
    }
    /* rpc_ccall_start never closes the call inline: r->call is live */
    if (rt->kind == GW_BIDI) {
        r->held = first;
        if (r->sending)
            send_requests(r);
        else
            rpc_ccall_close_send(r->call);
        return;
    }
    rc = rpc_ccall_send(r->call, first);
    protobuf_c_message_free_unpacked(first, &metcd_pb_allocator);
    if (rc == 0)
        rc = rpc_ccall_close_send(r->call);
    if (rc != 0)
        rpc_ccall_cancel(r->call); /* answers through on_call_close */
}

static void on_http_abort(struct rpc_http_req *h, void *data)
{
    (void)data;
    struct gw_req *r = rpc_http_get_data(h);
    if (!r)
        return;
    r->http = NULL;
    if (r->call)
        rpc_ccall_cancel(r->call); /* on_call_close frees r */
    else
        req_free(r);
}

/* ---- life ---- */

/* "http://0.0.0.0:2379" -> "http://127.0.0.1:2379": a wildcard listener is
 * reached through loopback. */
static int client_endpoint(const char *url, char *buf, size_t n)
{
    const char *scheme = strncmp(url, "https://", 8) == 0 ? "https://" : "http://";
    const char *hp = strstr(url, "://") ? strstr(url, "://") + 3 : url;
    const char *host = NULL;
    if (strncmp(hp, "0.0.0.0:", 8) == 0)
        host = "127.0.0.1";
    else if (strncmp(hp, "[::]:", 5) == 0)
        host = "[::1]";
    int w = host ? snprintf(buf, n, "%s%s%s", scheme, host, strchr(hp + (hp[0] == '[' ? 3 : 0), ':'))
                 : snprintf(buf, n, "%s%s", scheme, hp);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

int gateway_new(struct gateway **out, struct rpc_server *srv, struct event_base *base,
                const struct gateway_config *cfg)
{
    if (!out || !srv || !base || !cfg || !cfg->endpoint)
        return GATEWAY_ERR_INVAL;
    *out = NULL;
    char ep[300];
    if (client_endpoint(cfg->endpoint, ep, sizeof ep) != 0)
        return GATEWAY_ERR_INVAL;
    struct gateway *gw = metcd_calloc(1, sizeof *gw);
    if (!gw)
        return GATEWAY_ERR_NOMEM;
    gw->srv = srv;
    const char *eps[] = {ep};
    struct rpc_client_config cc = {
        .endpoints = eps,
        .n_endpoints = 1,
        .max_recv_msg_size = cfg->max_recv_msg_size ? cfg->max_recv_msg_size : 0x7fffffff,
        .max_pending_calls = 65536,
        .channelz = cfg->channelz,
        .tls = cfg->tls,
        .target = ep,
    };
    int rc = rpc_client_new(&gw->cl, base, &cc);
    if (rc == 0)
        rc = rpc_server_route(srv, "/v3/", on_http, on_http_abort, gw);
    if (rc == 0)
        rc = rpc_server_route(srv, "/v3beta/", on_http, on_http_abort, gw);
    if (rc == 0)
        rc = rpc_server_route(srv, "/v3", on_http, on_http_abort, gw);
    if (rc != 0) {
        rpc_client_free(gw->cl);
        metcd_free(gw);
        return rc == RPC_ERR_NOMEM ? GATEWAY_ERR_NOMEM : GATEWAY_ERR_INVAL;
    }
    *out = gw;
    return 0;
}

void gateway_free(struct gateway *gw)
{
    if (!gw)
        return;
    gw->closing = true;
    /* answer what is open, then let the client's close callbacks free */
    for (struct gw_req *r = gw->reqs; r; r = r->next) {
        struct rpc_http_req *h = r->http;
        if (!h)
            continue;
        req_detach_http(r);
        if (r->began)
            rpc_http_stream_end(h);
        else
            respond_error(h, RPC_CODE_UNAVAILABLE, "etcdserver: server stopped");
    }
    rpc_client_free(gw->cl); /* on_call_close for every call: frees them */
    while (gw->reqs)
        req_free(gw->reqs);
    metcd_free(gw);
}

const char *gateway_strerror(int err)
{
    switch (err) {
    case GATEWAY_OK: return "success";
    case GATEWAY_ERR_NOMEM: return "out of memory";
    case GATEWAY_ERR_INVAL: return "invalid argument";
    default: return "unknown gateway error";
    }
}
