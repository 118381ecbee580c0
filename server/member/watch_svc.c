/* server/member/watch_svc.c - the etcdserverpb.Watch service: one gRPC
 * bidi stream per watch_stream of the watchable store (watch/). Requests
 * (create, cancel, progress) go to the store; its responses come back
 * through send_response and leave as WatchResponse messages with etcd's
 * header. A full outbound queue is reported back (WATCH_SEND_FULL) so the
 * store parks the watcher as a victim; the transport's drain callback
 * retries it. As etcd 3.4's serverWatchStream, the client closing its
 * side ends nothing (its recvLoop returns on EOF and the stream lives on
 * until the client cancels it): a gateway watch (curl -d, one request and
 * a half-close) keeps delivering events.
 *
 * Requests are bounded too: while WATCH_SVC_MAX_QUEUED control responses
 * (created / canceled / progress) wait for a full transport, the stream's
 * requests are not read (rpc_call_pause_recv), so a client that sends
 * creates and never reads is stopped by HTTP/2 flow control; reading
 * resumes once the queue is down to half. */
#include "server/member/internal.h"

#include "common/mem.h"
#include "watch/watch.h"

#include <string.h>

#define WATCH_SVC_MAX_QUEUED 64

struct watch_call {
    member *m;
    struct rpc_call *call;
    watch_stream *ws;
    bool paused; /* requests not read: control responses pile up */
};

static void check_backpressure(struct watch_call *wc)
{
    size_t q = watch_stream_queued(wc->ws);
    if (!wc->paused && q >= WATCH_SVC_MAX_QUEUED)
        wc->paused = rpc_call_pause_recv(wc->call, 1) == 0;
    else if (wc->paused && q <= WATCH_SVC_MAX_QUEUED / 2)
        wc->paused = rpc_call_pause_recv(wc->call, 0) != 0;
}

struct encoding {
    const watch_response *r;
    watch_header h;
};

static size_t encode_response(void *arg, uint8_t *dst)
{
    const struct encoding *e = arg;
    return watch_response_encode(e->r, &e->h, dst);
}

/* The response goes straight from the store's events into the stream's
 * outbound queue (watch_response_encode: the bytes protobuf-c would pack,
 * without building and walking a message). */
static int send_response(void *arg, const watch_response *r)
{
    struct watch_call *wc = arg;
    member *m = wc->m;
    struct encoding e = {r,
                         {.cluster_id = m->cluster_id, .member_id = m->id, .raft_term = m->term}};
    int rc = rpc_call_send_encoded(wc->call, watch_response_size(r), encode_response, &e);
    if (rc == RPC_ERR_FULL)
        return WATCH_SEND_FULL;
    return rc ? WATCH_ECLOSED : 0;
}

static void watch_call_free(struct watch_call *wc)
{
    watch_stream_free(wc->ws);
    metcd_free(wc);
}

static void on_open(struct rpc_call *call)
{
    member *m = rpc_call_service_data(call);
    struct watch_call *wc = metcd_calloc(1, sizeof(*wc));
    if (!wc) {
        rpc_call_finish(call, RPC_CODE_RESOURCE_EXHAUSTED, "etcdserver: out of memory");
        return;
    }
    wc->m = m;
    wc->call = call;
    if (!m->watch || watch_stream_new(&wc->ws, m->watch, send_response, wc) != 0) {
        metcd_free(wc);
        rpc_call_finish(call, RPC_CODE_UNAVAILABLE, "etcdserver: server stopped");
        return;
    }
    rpc_call_set_data(call, wc);
    /* etcd sends the headers at once, so clients see the stream open */
    rpc_call_send_headers(call);
}

/* etcd 3.4's isWatchPermitted: read permission on the watched range (a
 * from-key watch is checked on its key alone, as etcd does after turning
 * "\0" into an empty range end). A refused create is answered {watch_id -1,
 * created, canceled, cancel_reason}; returns true then. */
static bool watch_refused(struct watch_call *wc, const Etcdserverpb__WatchCreateRequest *c)
{
    member *m = wc->m;
    size_t elen = c->range_end.len == 1 && c->range_end.data[0] == 0 ? 0 : c->range_end.len;
    int rc = auth_check_call_watch(m, wc->call, c->key.data, c->key.len, c->range_end.data, elen);
    if (rc == 0)
        return false;
    const char *reason = "etcdserver: permission denied";
    if (rc == MERR_INVALID_AUTH_TOKEN)
        reason = "etcdserver: invalid auth token";
    else if (rc == MERR_AUTH_OLD_REVISION)
        reason = "etcdserver: revision of auth store is old";
    else if (rc == MERR_USER_EMPTY)
        reason = "etcdserver: user name is empty";
    watch_response r = {
        .revision = mvcc_current_rev(m->kv),
        .watch_id = -1,
        .created = true,
        .canceled = true,
        .cancel_reason = reason,
    };
    send_response(wc, &r);
    return true;
}

static void on_message(struct rpc_call *call, const ProtobufCMessage *msg)
{
    struct watch_call *wc = rpc_call_get_data(call);
    if (!wc)
        return;
    const Etcdserverpb__WatchRequest *req = (const Etcdserverpb__WatchRequest *)msg;
    switch (req->request_union_case) {
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST: {
        const Etcdserverpb__WatchCreateRequest *c = req->create_request;
        if (watch_refused(wc, c))
            break;
        watch_create wcr = {
            .key = c->key.data,
            .key_len = c->key.len,
            .range_end = c->range_end.data,
            .range_end_len = c->range_end.len,
            .start_revision = c->start_revision,
            .progress_notify = c->progress_notify,
            .prev_kv = c->prev_kv,
            .watch_id = c->watch_id,
            .fragment = c->fragment,
        };
        for (size_t i = 0; i < c->n_filters; i++) {
            if (c->filters[i] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT)
                wcr.no_put = true;
            else if (c->filters[i] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE)
                wcr.no_delete = true;
        }
        watch_stream_create(wc->ws, &wcr);
        break;
    }
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST:
        watch_stream_cancel(wc->ws, req->cancel_request->watch_id);
        break;
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST:
        watch_stream_progress(wc->ws);
        break;
    default:
        break; /* etcd ignores an empty request */
    }
    check_backpressure(wc);
}

static void on_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    struct watch_call *wc = rpc_call_get_data(call);
    rpc_call_set_data(call, NULL);
    if (wc)
        watch_call_free(wc);
}

static void on_drain(struct rpc_call *call)
{
    struct watch_call *wc = rpc_call_get_data(call);
    if (wc) {
        watch_stream_drained(wc->ws);
        check_backpressure(wc);
    }
}

static const struct rpc_method watch_methods[] = {
    {"/etcdserverpb.Watch/Watch", RPC_BIDI, &etcdserverpb__watch_request__descriptor,
     &etcdserverpb__watch_response__descriptor, on_open, on_message, NULL, on_cancel,
     on_drain},
};

int watch_register(member *m)
{
    return rpc_server_register(m->rpc, watch_methods, 1, m);
}
