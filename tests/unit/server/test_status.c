/* tests/unit/server/test_status.c - server/rpc/status.c: grpc-message
 * percent-encoding (PROTOCOL-HTTP2.md), grpc-timeout units, names. */
#include "server/rpc/internal.h"

#include "common/mem.h"

#include <check.h>
#include <string.h>

START_TEST(percent_encoding_round_trip)
{
    char *e = rpc_pct_encode("a b%c\n\xc3\xa9~");
    ck_assert_str_eq(e, "a b%25c%0A%C3%A9~");
    char *d = rpc_pct_decode(e, strlen(e));
    ck_assert_str_eq(d, "a b%c\n\xc3\xa9~");
    metcd_free(e);
    metcd_free(d);
    /* Malformed escapes are kept as they are. */
    d = rpc_pct_decode("100%", 4);
    ck_assert_str_eq(d, "100%");
    metcd_free(d);
    d = rpc_pct_decode("%zz%4", 5);
    ck_assert_str_eq(d, "%zz%4");
    metcd_free(d);
}
END_TEST

START_TEST(timeout_units)
{
    ck_assert_int_eq(rpc_timeout_parse("1H", 2), 3600000);
    ck_assert_int_eq(rpc_timeout_parse("2M", 2), 120000);
    ck_assert_int_eq(rpc_timeout_parse("3S", 2), 3000);
    ck_assert_int_eq(rpc_timeout_parse("50m", 3), 50);
    ck_assert_int_eq(rpc_timeout_parse("1500u", 5), 2);   /* rounded up */
    ck_assert_int_eq(rpc_timeout_parse("1n", 2), 1);
    ck_assert_int_eq(rpc_timeout_parse("99999999S", 9), 99999999000LL);
    ck_assert_int_eq(rpc_timeout_parse("123456789S", 10), -1); /* > 8 digits */
    ck_assert_int_eq(rpc_timeout_parse("S", 1), -1);
    ck_assert_int_eq(rpc_timeout_parse("10x", 3), -1);
    ck_assert_int_eq(rpc_timeout_parse("1-m", 3), -1);
    char buf[24];
    rpc_timeout_format(1500, buf, sizeof buf);
    ck_assert_str_eq(buf, "1500m");
    rpc_timeout_format(200000000, buf, sizeof buf);
    ck_assert_str_eq(buf, "200000S");
    ck_assert_int_eq(rpc_timeout_parse(buf, strlen(buf)), 200000000);
}
END_TEST

START_TEST(names)
{
    ck_assert_str_eq(rpc_code_name(RPC_CODE_OK), "OK");
    ck_assert_str_eq(rpc_code_name(RPC_CODE_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
    ck_assert_str_eq(rpc_code_name(RPC_CODE_UNAUTHENTICATED), "UNAUTHENTICATED");
    ck_assert_str_eq(rpc_code_name(99), "UNKNOWN");
    ck_assert_str_eq(rpc_strerror(RPC_ERR_FULL), "rpc: outbound queue full");
    ck_assert_str_eq(rpc_strerror(-1), "rpc: unknown error");
    for (int e = RPC_ERR_STATE; e <= RPC_ERR_NOMEM; e++)
        ck_assert(strcmp(rpc_strerror(e), "rpc: unknown error") != 0);
}
END_TEST

START_TEST(encode_survives_allocation_failure)
{
    metcd_mem_fail_after(0);
    ck_assert_ptr_null(rpc_pct_encode("x"));
    metcd_mem_fail_after(-1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/status");
    TCase *tc = tcase_create("status");
    tcase_add_test(tc, percent_encoding_round_trip);
    tcase_add_test(tc, timeout_units);
    tcase_add_test(tc, names);
    tcase_add_test(tc, encode_survives_allocation_failure);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
