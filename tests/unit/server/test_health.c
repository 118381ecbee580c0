/* tests/unit/server/test_health.c - server/rpc/health.c:
 * grpc.health.v1.Health/Check answers as the owner's callback decides. */
#include "harness.h"

#include "common/mem.h"
#include "grpc/health/v1/health.pb-c.h"

#include <check.h>
#include <stdio.h>

static struct fixture f;
static struct rpc_client *cl;

static void setup(void)
{
    fixture_setup(&f, NULL);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", f.port);
    const char *eps[] = {ep};
    struct rpc_client_config cfg = {.endpoints = eps, .n_endpoints = 1};
    ck_assert_int_eq(rpc_client_new(&cl, f.base, &cfg), 0);
}

static void teardown(void)
{
    rpc_client_free(cl);
    fixture_teardown(&f);
}

static enum rpc_code check_service(const char *service, int *status, char **msg)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    ProtobufCMessage *resp;
    enum rpc_code code;
    ck_assert_int_eq(rpc_client_unary_sync(cl, "/grpc.health.v1.Health/Check", &req.base,
                                           &grpc__health__v1__health_check_response__descriptor,
                                           NULL, 0, 1000, &resp, &code, msg), 0);
    *status = -1;
    if (resp) {
        *status = ((Grpc__Health__V1__HealthCheckResponse *)resp)->status;
        protobuf_c_message_free_unpacked(resp, &metcd_pb_allocator);
    }
    return code;
}

START_TEST(serving_states)
{
    int st;
    char *msg;
    ck_assert_int_eq(check_service("", &st, &msg), RPC_CODE_OK);
    ck_assert_int_eq(st, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    metcd_free(msg);
    ck_assert_int_eq(check_service("bad", &st, &msg), RPC_CODE_OK);
    ck_assert_int_eq(st, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
    metcd_free(msg);
    ck_assert_int_eq(check_service("other", &st, &msg), RPC_CODE_NOT_FOUND);
    ck_assert_str_eq(msg, "unknown service");
    metcd_free(msg);
}
END_TEST

static int never(const char *s, void *d)
{
    (void)s;
    (void)d;
    return 1;
}

START_TEST(registered_once)
{
    ck_assert_int_eq(rpc_server_add_health(f.srv, never, NULL), RPC_ERR_EXISTS);
    ck_assert_int_eq(rpc_server_add_health(f.srv, NULL, NULL), RPC_ERR_INVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/health");
    TCase *tc = tcase_create("health");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, serving_states);
    tcase_add_test(tc, registered_once);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
