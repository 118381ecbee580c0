/* metcdctl's cluster and maintenance commands without a server: their
 * argument errors and exit codes as etcdctl's (member IDs in hex, counts
 * of arguments, check perf's load models, snapshot files), go-humanize's
 * sizes, version. The answers of a real cluster are compared with
 * etcdctl's in tests/integration/test_metcdctl_ctlmaint.py. */
#include "tests/unit/tools/ctl_capture.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* Runs one command line (words split on spaces) against a port nobody
 * listens on; returns the exit status with out/err captured. */
static int run(struct cap *k, const char *line)
{
    char buf[600];
    snprintf(buf, sizeof(buf), "--endpoints 127.0.0.1:1 --dial-timeout=200ms %s", line);
    return cap_run(k, buf, NULL);
}

#define ERR_IS(k, text) ck_assert_str_eq((k).err, "Error: " text "\n")

START_TEST(test_member_arguments)
{
    struct cap k = {0};
    ck_assert_int_eq(run(&k, "member remove"), CTL_EXIT_BAD_ARGS);
    ERR_IS(k, "member ID is not provided");
    ck_assert_int_eq(run(&k, "member promote a b"), CTL_EXIT_BAD_ARGS);
    ERR_IS(k, "member ID is not provided");
    ck_assert_int_eq(run(&k, "member remove zz"), CTL_EXIT_BAD_ARGS);
    ERR_IS(k, "bad member ID arg (strconv.ParseUint: parsing \"zz\": invalid syntax), expecting "
              "ID in Hex");
    ck_assert_int_eq(run(&k, "member update 10000000000000000 --peer-urls=http://a:1"),
                     CTL_EXIT_BAD_ARGS);
    ERR_IS(k, "bad member ID arg (strconv.ParseUint: parsing \"10000000000000000\": value out of "
              "range), expecting ID in Hex");
    ck_assert_int_eq(run(&k, "member update ab"), CTL_EXIT_BAD_ARGS);
    ERR_IS(k, "member peer urls not provided");
    ck_assert_int_eq(run(&k, "member add"), CTL_EXIT_BAD_ARGS);
    ERR_IS(k, "member name not provided");
    ck_assert_int_eq(run(&k, "member add n http://x:1 HTTPS://y:2"), CTL_EXIT_BAD_ARGS);
    ERR_IS(k, "too many arguments, did you mean --peer-urls=http://x:1, did you mean "
              "--peer-urls=HTTPS://y:2");
    ck_assert_int_eq(run(&k, "member add n"), CTL_EXIT_BAD_ARGS);
    ERR_IS(k, "member peer urls not provided");
    ck_assert_str_eq(k.out, "");
    cap_close(&k);
}
END_TEST

START_TEST(test_maintenance_arguments)
{
    struct cap k = {0};
    ck_assert_int_eq(run(&k, "move-leader"), CTL_EXIT_BAD_ARGS);
    ERR_IS(k, "move-leader command needs 1 argument");
    ck_assert_int_eq(run(&k, "move-leader 0x1"), CTL_EXIT_BAD_ARGS);
    ERR_IS(k, "strconv.ParseUint: parsing \"0x1\": invalid syntax");
    ck_assert_int_eq(run(&k, "alarm list x"), CTL_EXIT_BAD_ARGS);
    ERR_IS(k, "alarm list command accepts no arguments");
    ck_assert_int_eq(run(&k, "alarm disarm x"), CTL_EXIT_BAD_ARGS);
    ERR_IS(k, "alarm disarm command accepts no arguments");
    ck_assert_int_eq(run(&k, "snapshot save"), CTL_EXIT_BAD_ARGS);
    ERR_IS(k, "snapshot save expects one argument");
    ck_assert_int_eq(run(&k, "--endpoints=a:1,b:2 snapshot save f"), CTL_EXIT_INTERRUPTED);
    ERR_IS(k, "snapshot must be requested to one selected node, not multiple [a:1 b:2]");
    ck_assert_int_eq(run(&k, "snapshot status"), CTL_EXIT_BAD_ARGS);
    ERR_IS(k, "snapshot status requires exactly one argument");
    ck_assert_int_eq(run(&k, "snapshot status /nonexistent/f.db"), CTL_EXIT_ERROR);
    ERR_IS(k, "stat /nonexistent/f.db: no such file or directory");
    ck_assert_int_eq(run(&k, "snapshot restore"), CTL_EXIT_BAD_ARGS);
    ERR_IS(k, "snapshot restore requires exactly one argument");
    ck_assert_int_eq(run(&k, "snapshot restore /nonexistent/f.db --data-dir /nonexistent/d"),
                     CTL_EXIT_ERROR);
    ERR_IS(k, "open /nonexistent/f.db: no such file or directory");
    ck_assert_int_eq(run(&k, "check perf --load huge"), CTL_EXIT_BAD_FEATURE);
    ERR_IS(k, "unknown load option huge");
    ck_assert_int_eq(run(&k, "version"), CTL_EXIT_OK);
    ck_assert_str_eq(k.out, "etcdctl version: 3.4.23\nAPI version: 3.4\n");
    cap_close(&k);
}
END_TEST

START_TEST(test_humanize_bytes)
{
    static const struct {
        uint64_t n;
        const char *want;
    } cases[] = {
        {0, "0 B"},          {9, "9 B"},
        {10, "10 B"},        {999, "999 B"},
        {1000, "1.0 kB"},    {1049, "1.0 kB"},
        {1050, "1.1 kB"},    {9949, "9.9 kB"},
        {9950, "10 kB"},     {20480, "20 kB"},
        {69632, "70 kB"},    {998400, "998 kB"},
        {1000000, "1.0 MB"}, {2500000000ULL, "2.5 GB"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        ctl_humanize_bytes(cases[i].n, buf, sizeof(buf));
        ck_assert_msg(!strcmp(buf, cases[i].want), "%llu: %s, want %s",
                      (unsigned long long)cases[i].n, buf, cases[i].want);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("metcdctl_maint");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_member_arguments);
    tcase_add_test(tc, test_maintenance_arguments);
    tcase_add_test(tc, test_humanize_bytes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
