/* tools/metcdctl/session.c - a lease kept alive over a LeaseKeepAlive
 * stream (ctl_session.h), for lease keep-alive, lock and elect. */
#include "tools/metcdctl/ctl_session.h"

#include "common/mem.h"
#include "server/rpc/rpc.h"

#include <event2/event.h>

struct ctl_keepalive {
    struct ctl *c;
    int64_t id;
    struct rpc_ccall *call; /* NULL once closed */
    struct event *timer;
    bool ended; /* on_end ran, or stop began: no more callbacks */
    ctl_ka_response_fn on_response;
    ctl_ka_end_fn on_end;
    void *data;
};

static void end(struct ctl_keepalive *ka, int code, const char *msg)
{
    if (ka->ended)
        return;
    ka->ended = true;
    evtimer_del(ka->timer);
    ka->on_end(code, msg, ka->data);
}

static void send_keepalive(struct ctl_keepalive *ka)
{
    Etcdserverpb__LeaseKeepAliveRequest req = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
    req.id = ka->id;
    if (ka->call && rpc_ccall_send(ka->call, &req.base) != 0)
        end(ka, RPC_CODE_UNAVAILABLE, "keep-alive request not sent");
}

static void on_ka_timer(evutil_socket_t fd, short what, void *data)
{
    (void)fd;
    (void)what;
    send_keepalive(data);
}

static void on_ka_message(struct rpc_ccall *call, const ProtobufCMessage *msg, void *data)
{
    (void)call;
    struct ctl_keepalive *ka = data;
    const Etcdserverpb__LeaseKeepAliveResponse *r =
        (const Etcdserverpb__LeaseKeepAliveResponse *)msg;
    if (ka->ended)
        return;
    if (r->ttl <= 0) {
        end(ka, CTL_KA_LEASE_GONE, "lease expired or revoked");
        return;
    }
    /* clientv3: the next keep-alive TTL/3 after this answer */
    int64_t ms = r->ttl * 1000 / 3;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(ka->timer, &tv);
    ka->on_response(r->id, r->ttl, r->header, ka->data);
}

static void on_ka_close(struct rpc_ccall *call, enum rpc_code code, const char *msg, void *data)
{
    (void)call;
    struct ctl_keepalive *ka = data;
    ka->call = NULL;
    end(ka, (int)code, msg && msg[0] ? msg : rpc_code_name(code));
}

static const struct rpc_ccall_ops ka_ops = {
    .on_message = on_ka_message,
    .on_close = on_ka_close,
};

int ctl_keepalive_start(struct ctl *c, int64_t id, ctl_ka_response_fn on_response,
                        ctl_ka_end_fn on_end, void *data, struct ctl_keepalive **out)
{
    struct ctl_keepalive *ka = metcd_calloc(1, sizeof(*ka));
    if (!ka)
        return RPC_ERR_NOMEM;
    *ka = (struct ctl_keepalive){
        .c = c, .id = id, .on_response = on_response, .on_end = on_end, .data = data};
    ka->timer = evtimer_new(c->base, on_ka_timer, ka);
    if (!ka->timer) {
        metcd_free(ka);
        return RPC_ERR_NOMEM;
    }
    size_t n_md;
    const struct rpc_md *md = ctl_md(c, &n_md);
    int rc = rpc_ccall_start(c->client, "/etcdserverpb.Lease/LeaseKeepAlive",
                             &etcdserverpb__lease_keep_alive_response__descriptor, md, n_md, 0,
                             &ka_ops, ka, &ka->call);
    if (rc != 0) {
        event_free(ka->timer);
        metcd_free(ka);
        return rc;
    }
    send_keepalive(ka);
    *out = ka;
    return 0;
}

void ctl_keepalive_stop(struct ctl_keepalive *ka)
{
    if (!ka)
        return;
    ka->ended = true;
    if (ka->call)
        rpc_ccall_cancel(ka->call);
    event_free(ka->timer);
    metcd_free(ka);
}
