/* server/rpc/health.c - grpc.health.v1.Health/Check (grpc/doc/health-checking.md).
 * The owner decides what SERVING means through a callback. Watch is not
 * offered: clients get UNIMPLEMENTED for it, which grpc's clients accept. */
#include "server/rpc/internal.h"

#include "common/mem.h"
#include "grpc/health/v1/health.pb-c.h"

struct health_svc {
    rpc_health_fn check;
    void *data;
};

static void on_health_check(struct rpc_call *call, const ProtobufCMessage *msg)
{
    const Grpc__Health__V1__HealthCheckRequest *req =
        (const Grpc__Health__V1__HealthCheckRequest *)msg;
    struct health_svc *h = rpc_call_service_data(call);
    int st = h->check(req->service ? req->service : "", h->data);
    if (st != 1 && st != 2) {
        rpc_call_finish(call, RPC_CODE_NOT_FOUND, "unknown service");
        return;
    }
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = st == 1 ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                          : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    rpc_call_reply(call, &resp.base);
}

static const struct rpc_method health_methods[] = {
    {.path = "/grpc.health.v1.Health/Check",
     .kind = RPC_UNARY,
     .request = &grpc__health__v1__health_check_request__descriptor,
     .response = &grpc__health__v1__health_check_response__descriptor,
     .on_message = on_health_check},
};

int rpc_server_add_health(struct rpc_server *srv, rpc_health_fn check, void *data)
{
    if (!srv || !check)
        return RPC_ERR_INVAL;
    if (srv->health)
        return RPC_ERR_EXISTS;
    struct health_svc *h = metcd_calloc(1, sizeof *h);
    if (!h)
        return RPC_ERR_NOMEM;
    h->check = check;
    h->data = data;
    int rc = rpc_server_register(srv, health_methods, 1, h);
    if (rc != 0) {
        metcd_free(h);
        return rc;
    }
    srv->health = h;
    return 0;
}
