/* tests/unit/server/test_client_sync.c - server/rpc/client_sync.c: the
 * blocking unary wrapper the CLI uses. The server runs on the same base,
 * which the wrapper drives. */
#include "harness.h"

#include "common/mem.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

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
    ck_assert_int_eq(echo_live, 0);
}

static int call(const char *message, int delay, int status, uint32_t timeout,
                ProtobufCMessage **resp, enum rpc_code *code, char **msg)
{
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.message = (char *)message;
    req.delay_ms = delay;
    req.status = status;
    return rpc_client_unary_sync(cl, "/metcd.test.Echo/Unary", &req.base,
                                 &metcd__test__echo_response__descriptor, NULL, 0, timeout,
                                 resp, code, msg);
}

START_TEST(blocking_ok)
{
    ProtobufCMessage *resp;
    enum rpc_code code;
    char *msg;
    ck_assert_int_eq(call("sync", 10, 0, 1000, &resp, &code, &msg), 0);
    ck_assert_int_eq(code, RPC_CODE_OK);
    ck_assert_str_eq(msg, "");
    ck_assert_str_eq(((Metcd__Test__EchoResponse *)resp)->message, "sync");
    protobuf_c_message_free_unpacked(resp, &metcd_pb_allocator);
    metcd_free(msg);
}
END_TEST

START_TEST(blocking_error_and_deadline)
{
    ProtobufCMessage *resp;
    enum rpc_code code;
    char *msg;
    ck_assert_int_eq(call("etcdserver: permission denied", 0, RPC_CODE_PERMISSION_DENIED, 1000,
                          &resp, &code, &msg), 0);
    ck_assert_int_eq(code, RPC_CODE_PERMISSION_DENIED);
    ck_assert_str_eq(msg, "etcdserver: permission denied");
    ck_assert_ptr_null(resp);
    metcd_free(msg);
    ck_assert_int_eq(call("slow", 3000, 0, 50, &resp, &code, NULL), 0);
    ck_assert_int_eq(code, RPC_CODE_DEADLINE_EXCEEDED);
    ck_assert_ptr_null(resp);
}
END_TEST

START_TEST(blocking_bad_arguments)
{
    ProtobufCMessage *resp;
    enum rpc_code code;
    ck_assert_int_eq(rpc_client_unary_sync(cl, "/x/y", NULL, &metcd__test__echo_response__descriptor,
                                           NULL, 0, 0, &resp, &code, NULL), RPC_ERR_INVAL);
    ck_assert_int_eq(rpc_client_unary_sync(NULL, "/x/y", NULL, NULL, NULL, 0, 0, &resp, &code,
                                           NULL), RPC_ERR_INVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/client_sync");
    TCase *tc = tcase_create("client_sync");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, blocking_ok);
    tcase_add_test(tc, blocking_error_and_deadline);
    tcase_add_test(tc, blocking_bad_arguments);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
