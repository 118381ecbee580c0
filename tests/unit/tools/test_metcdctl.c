/* metcdctl without a server: pflag-style flag parsing and its error texts
 * (etcdctl's "Error: ..." lines and exit codes), Go's value parsers,
 * prefix matching of commands, help, the output helpers (Go JSON of a
 * message, %q, --hex, tables), the id commands' argument errors, and a
 * command against an endpoint nobody listens on. */
#include "tests/unit/tools/ctl_capture.h"

#include "server/etcdserverpb/rpc.pb-c.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* Runs one command line in a fresh ctl; out/err captured. */
static int run(struct cap *k, const char *line)
{
    return cap_run(k, line, NULL);
}

START_TEST(test_flag_errors)
{
    struct cap k = {0};
    ck_assert_int_eq(run(&k, "id next --bogus 1"), CTL_EXIT_ERROR);
    ck_assert_ptr_nonnull(strstr(k.err, "Error: unknown flag: --bogus\n"));
    ck_assert_ptr_nonnull(strstr(k.out, "USAGE:\n\tmetcdctl id next")); /* usage on stdout */
    ck_assert_int_eq(run(&k, "id next t --count"), CTL_EXIT_ERROR);
    ck_assert_ptr_nonnull(strstr(k.err, "Error: flag needs an argument: --count\n"));
    ck_assert_int_eq(run(&k, "id next t --count x"), CTL_EXIT_ERROR);
    ck_assert_ptr_nonnull(strstr(
        k.err,
        "invalid argument \"x\" for \"--count\" flag: strconv.ParseInt: parsing \"x\": invalid "
        "syntax"));
    ck_assert_int_eq(run(&k, "id next t -q"), CTL_EXIT_ERROR);
    ck_assert_ptr_nonnull(strstr(k.err, "unknown shorthand flag: 'q' in -q"));
    ck_assert_int_eq(run(&k, "--dial-timeout=zz id tags"), CTL_EXIT_ERROR);
    ck_assert_ptr_nonnull(strstr(k.err, "time: invalid duration \"zz\""));
    ck_assert_int_eq(run(&k, "bogus"), CTL_EXIT_ERROR);
    ck_assert_ptr_nonnull(strstr(k.err, "Error: unknown command \"bogus\" for \"metcdctl\""));
    ck_assert_int_eq(run(&k, "-w yaml id tags"), CTL_EXIT_BAD_FEATURE);
    ck_assert_ptr_nonnull(strstr(k.err, "Error: unsupported output format"));
    ck_assert_int_eq(run(&k, "--cert= id tags"), CTL_EXIT_BAD_ARGS);
    ck_assert_ptr_nonnull(strstr(k.err, "empty string is passed to --cert option"));
    cap_close(&k);
}
END_TEST

START_TEST(test_help_and_prefix)
{
    struct cap k = {0};
    ck_assert_int_eq(run(&k, "--help"), 0);
    ck_assert_ptr_nonnull(strstr(k.out, "\tid next\t"));
    ck_assert_int_eq(run(&k, "i n -h"), 0); /* unique prefixes */
    ck_assert_ptr_nonnull(strstr(k.out, "NAME:\n\tid next - "));
    ck_assert_ptr_nonnull(strstr(k.out, "      --count=1\t"));
    ck_assert_ptr_nonnull(strstr(k.out, "  -w, --write-out=\"simple\"\t"));
    ck_assert_int_eq(run(&k, "id"), 0); /* a group alone: its help */
    ck_assert_ptr_nonnull(strstr(k.out, "COMMANDS:\n\tcreate-tag\t"));
    cap_close(&k);
}
END_TEST

START_TEST(test_go_parsers)
{
    int64_t v;
    uint64_t u;
    char err[128];
    ck_assert_int_eq(ctl_go_parse_duration_ms("1m30s", &v, err, sizeof(err)), 0);
    ck_assert_int_eq(v, 90000);
    ck_assert_int_eq(ctl_go_parse_duration_ms("250ms", &v, err, sizeof(err)), 0);
    ck_assert_int_eq(v, 250);
    ck_assert_int_eq(ctl_go_parse_duration_ms("1.5h", &v, err, sizeof(err)), 0);
    ck_assert_int_eq(v, 5400000);
    ck_assert_int_eq(ctl_go_parse_duration_ms("0", &v, err, sizeof(err)), 0);
    ck_assert_int_eq(ctl_go_parse_duration_ms("3", &v, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "time: missing unit in duration \"3\"");
    ck_assert_int_eq(ctl_go_parse_duration_ms("3x", &v, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "time: unknown unit \"x\" in duration \"3x\"");
    ck_assert_int_eq(ctl_go_parse_int("0x10", &v, err, sizeof(err)), 0);
    ck_assert_int_eq(v, 16);
    ck_assert_int_eq(ctl_go_parse_int("-9223372036854775808", &v, err, sizeof(err)), 0);
    ck_assert_int_eq(ctl_go_parse_int("9223372036854775808", &v, err, sizeof(err)), -1);
    ck_assert_str_eq(err,
                     "strconv.ParseInt: parsing \"9223372036854775808\": value out of range");
    ck_assert_int_eq(ctl_go_parse_uint("18446744073709551615", &u, err, sizeof(err)), 0);
    ck_assert_uint_eq(u, UINT64_MAX);
    ck_assert_int_eq(ctl_go_parse_uint("-1", &u, err, sizeof(err)), -1);
    bool b;
    ck_assert_int_eq(ctl_go_parse_bool("T", &b), 0);
    ck_assert(b);
    ck_assert_int_eq(ctl_go_parse_bool("yes", &b), -1);
    struct ctl c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(ctl_set_endpoints(&c, "a:1,http://b:2"), 0);
    ck_assert_uint_eq(c.n_endpoints, 2);
    ck_assert_str_eq(c.endpoints[1], "http://b:2");
    ck_assert_int_eq(ctl_set_endpoints(&c, "a:1,,b:2"), -1);
}
END_TEST

static char *capture(void (*fn)(FILE *, void *), void *arg)
{
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    fn(f, arg);
    fclose(f);
    return buf;
}

static void json_of(FILE *f, void *m)
{
    ctl_json_msg(f, m);
}

START_TEST(test_output)
{
    /* a RangeResponse as etcdctl -w json prints it */
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    h.cluster_id = 14841639068965178418ULL;
    h.member_id = 10276657743932975437ULL;
    h.revision = 2;
    h.raft_term = 2;
    Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
    kv.key.data = (uint8_t *)"foo";
    kv.key.len = 3;
    kv.value.data = (uint8_t *)"<b>";
    kv.value.len = 3;
    kv.create_revision = 2;
    kv.mod_revision = 2;
    kv.version = 1;
    Mvccpb__KeyValue *kvs[] = {&kv};
    Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
    r.header = &h;
    r.kvs = kvs;
    r.n_kvs = 1;
    r.count = 1;
    char *s = capture(json_of, &r);
    ck_assert_str_eq(s, "{\"header\":{\"cluster_id\":14841639068965178418,\"member_id\":"
                        "10276657743932975437,\"revision\":2,\"raft_term\":2},\"kvs\":[{\"key\":"
                        "\"Zm9v\",\"create_revision\":2,\"mod_revision\":2,\"version\":1,"
                        "\"value\":\"PGI+\"}],\"count\":1}");
    free(s);
    /* a oneof: {"Response":{"ResponsePut":{...}}} */
    Etcdserverpb__PutResponse pr = ETCDSERVERPB__PUT_RESPONSE__INIT;
    Etcdserverpb__ResponseOp op = ETCDSERVERPB__RESPONSE_OP__INIT;
    op.response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
    op.response_put = &pr;
    s = capture(json_of, &op);
    ck_assert_str_eq(s, "{\"Response\":{\"ResponsePut\":{}}}");
    free(s);

    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    ctl_go_quote(f, "a\"b\n\xff", 5);
    fputc(' ', f);
    ctl_hex_bytes(f, "fo", 2);
    fputc(' ', f);
    ctl_json_str(f, "<&>\"");
    fputc('\n', f);
    const char *hdr[] = {"id", "is_learner"};
    struct ctl_table *t = ctl_table_new(2, hdr);
    const char *row[] = {"8e9e05c52164694d", "false"};
    ck_assert_int_eq(ctl_table_row(t, row), 0);
    ctl_table_render(t, f);
    ctl_table_free(t);
    fclose(f);
    ck_assert_str_eq(buf, "\"a\\\"b\\n\\xff\" \\x66\\x6f \"\\u003c\\u0026\\u003e\\\"\"\n"
                          "+------------------+------------+\n"
                          "|        ID        | IS LEARNER |\n"
                          "+------------------+------------+\n"
                          "| 8e9e05c52164694d |      false |\n"
                          "+------------------+------------+\n");
    free(buf);
}
END_TEST

/* txn inputs on which etcdctl panics (exit 2, Go's panic line): the
 * golden test cannot compare a Go stack trace. Parsing ends before any
 * call, so no server is needed. */
static int run_txn(struct cap *k, const char *input)
{
    return cap_run(k, "--endpoints 127.0.0.1:1 --dial-timeout 300ms txn", input);
}

START_TEST(test_txn_panics)
{
    struct cap k = {0};
    /* clientv3.Compare knows = != < > only */
    ck_assert_int_eq(run_txn(&k, "val(\"k\") >= \"1\"\n\n\n\n"), 2);
    ck_assert_ptr_nonnull(strstr(k.err, "panic: Unknown result op\n"));
    /* a number target checks the number first */
    ck_assert_int_eq(run_txn(&k, "ver(\"k\") >= \"x\"\n\n\n\n"), CTL_EXIT_INVALID_INPUT);
    ck_assert_ptr_nonnull(strstr(k.err, "Error: invalid txn compare request: ver(\"k\")"));
    /* txn passes a lease compare's value as a string: clientv3 panics */
    ck_assert_int_eq(run_txn(&k, "lease(\"k\") = \"1\"\n\n\n\n"), 2);
    ck_assert_ptr_nonnull(strstr(k.err, "panic: bad value\n"));
    /* argify slices a 'quoted' word to [1, words - 1): out of range here */
    ck_assert_int_eq(run_txn(&k, "\nput a 'b'\n\n"), CTL_EXIT_INVALID_INPUT);
    ck_assert_ptr_nonnull(strstr(k.err, "Error: EOF")); /* "b" parsed; then no failure block */
    ck_assert_int_eq(run_txn(&k, "\n'x'\n\n\n"), 2);
    ck_assert_ptr_nonnull(strstr(k.err, "panic: runtime error: slice bounds out of range"));
    ck_assert_int_eq(run_txn(&k, "\nput a b c 'd'\n\n\n"), 2);
    /* help is cobra's command: etcdctl never gets a request */
    ck_assert_int_eq(run_txn(&k, "\nhelp get\n\n\n"), CTL_EXIT_INVALID_INPUT);
    ck_assert_int_eq(run_txn(&k, "\nget -h\n\n\n"), CTL_EXIT_INVALID_INPUT);
    cap_close(&k);
}
END_TEST

START_TEST(test_id_arguments)
{
    struct cap k = {0};
    ck_assert_int_eq(run(&k, "id next"), CTL_EXIT_BAD_ARGS);
    ck_assert_ptr_nonnull(strstr(k.err, "Error: id next needs a tag"));
    ck_assert_int_eq(run(&k, "id next t --count 0"), CTL_EXIT_BAD_ARGS);
    ck_assert_ptr_nonnull(strstr(k.err, "--count wants an integer in 1..1000000"));
    ck_assert_int_eq(run(&k, "id snowflake extra"), CTL_EXIT_BAD_ARGS);
    ck_assert_int_eq(run(&k, "id decode x12"), CTL_EXIT_BAD_ARGS);
    ck_assert_int_eq(run(&k, "id create-tag t --step 0"), CTL_EXIT_BAD_ARGS);
    ck_assert_ptr_nonnull(strstr(k.err, "--step wants a positive integer"));
    ck_assert_int_eq(run(&k, "id tags x"), CTL_EXIT_BAD_ARGS);
    ck_assert_uint_eq(k.outlen, 0); /* nothing on stdout for errors */
    /* a well-formed command to an endpoint nobody listens on: etcdctl's
     * line and exit status */
    ck_assert_int_eq(
        run(&k, "--endpoints 127.0.0.1:1 --dial-timeout 300ms --command-timeout 1s id next t"),
        CTL_EXIT_ERROR);
    ck_assert_str_eq(k.err, "Error: context deadline exceeded\n");
    ck_assert_uint_eq(k.outlen, 0);
    cap_close(&k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metcdctl");
    TCase *tc = tcase_create("metcdctl");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_flag_errors);
    tcase_add_test(tc, test_help_and_prefix);
    tcase_add_test(tc, test_go_parsers);
    tcase_add_test(tc, test_output);
    tcase_add_test(tc, test_id_arguments);
    tcase_add_test(tc, test_txn_panics);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
