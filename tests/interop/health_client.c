/* tests/interop/health_client.c - our client against a grpc-go server (a
 * real etcd 3.4, which serves grpc.health.v1.Health): interop.py starts
 * etcd and runs this. Usage: health_client HOST:PORT. Exits 0 when the
 * checks hold. */
#include "common/mem.h"
#include "grpc/health/v1/health.pb-c.h"
#include "server/rpc/rpc.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    struct event_base *base = event_base_new();
    const char *eps[] = {argv[1]};
    struct rpc_client_config cfg = {.endpoints = eps, .n_endpoints = 1};
    struct rpc_client *cl;
    if (rpc_client_new(&cl, base, &cfg) != 0)
        return 1;
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *resp;
    enum rpc_code code;
    char *msg;
    int fails = 0;
    if (rpc_client_unary_sync(cl, "/grpc.health.v1.Health/Check", &req.base,
                              &grpc__health__v1__health_check_response__descriptor, NULL, 0, 5000,
                              &resp, &code, &msg) != 0)
        return 1;
    if (code != RPC_CODE_OK || !resp ||
        ((Grpc__Health__V1__HealthCheckResponse *)resp)->status !=
            GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
        fprintf(stderr, "health_client: Check: %s %s\n", rpc_code_name((int)code), msg);
        fails++;
    }
    if (resp)
        protobuf_c_message_free_unpacked(resp, &metcd_pb_allocator);
    metcd_free(msg);
    /* grpc-go's words for an unknown service. */
    if (rpc_client_unary_sync(cl, "/no.Such/Method", &req.base,
                              &grpc__health__v1__health_check_response__descriptor, NULL, 0, 5000,
                              &resp, &code, &msg) != 0)
        return 1;
    if (code != RPC_CODE_UNIMPLEMENTED || strcmp(msg, "unknown service no.Such") != 0) {
        fprintf(stderr, "health_client: unknown service: %s \"%s\"\n", rpc_code_name((int)code),
                msg);
        fails++;
    }
    metcd_free(msg);
    rpc_client_free(cl);
    event_base_free(base);
    if (!fails)
        printf("health_client: grpc-go server answered as expected\n");
    return fails ? 1 : 0;
}
