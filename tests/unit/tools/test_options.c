/* Unit tests of metcd-bench's command line and key format. */
#include "tools/bench/bench.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static char errbuf[1024];

/* Parses a NULL-terminated argument list; the error text lands in errbuf. */
static int parse(struct bench_options *o, const char *const *args)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "metcd-bench";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    memset(errbuf, 0, sizeof errbuf);
    FILE *err = fmemopen(errbuf, sizeof errbuf - 1, "w");
    FILE *out = fopen("/dev/null", "w");
    int rc = bench_options_parse(o, argc, argv, out, err);
    fclose(err);
    fclose(out);
    return rc;
}

#define PARSE(o, ...) parse(o, (const char *const[]){__VA_ARGS__, NULL})

START_TEST(test_defaults)
{
    struct bench_options o;
    ck_assert_int_eq(PARSE(&o, "put"), 0);
    ck_assert_int_eq(o.mode, BENCH_PUT);
    ck_assert_uint_eq(o.n_endpoints, 1);
    ck_assert_str_eq(o.endpoints[0], "127.0.0.1:2379");
    ck_assert_uint_eq(o.conns, 1);
    ck_assert_uint_eq(o.clients, 1);
    ck_assert_uint_eq(o.total, 10000);
    ck_assert_uint_eq(o.key_size, 8);
    ck_assert_uint_eq(o.val_size, 8);
    ck_assert_uint_eq(o.key_space, 0);
    ck_assert(!o.serializable);
    ck_assert(!o.json);
    ck_assert(o.progress);
    ck_assert_double_eq(o.rate, 0);
}
END_TEST

START_TEST(test_every_flag_both_spellings)
{
    struct bench_options o;
    ck_assert_int_eq(PARSE(&o, "range", "--endpoints", "http://127.0.0.1:1,127.0.0.1:2",
                           "--conns=4", "--clients", "64", "--total=5000", "--key-size", "10",
                           "--val-size=0", "--key-space", "100000", "--consistency=s", "--rate",
                           "1500.5", "--timeout-ms=0", "--seed", "9", "--json", "--no-progress"),
                     0);
    ck_assert_int_eq(o.mode, BENCH_RANGE);
    ck_assert_uint_eq(o.n_endpoints, 2);
    ck_assert_str_eq(o.endpoints[0], "http://127.0.0.1:1");
    ck_assert_str_eq(o.endpoints[1], "127.0.0.1:2");
    ck_assert_uint_eq(o.conns, 4);
    ck_assert_uint_eq(o.clients, 64);
    ck_assert_uint_eq(o.total, 5000);
    ck_assert_uint_eq(o.key_size, 10);
    ck_assert_uint_eq(o.val_size, 0);
    ck_assert_uint_eq(o.key_space, 100000);
    ck_assert(o.serializable);
    ck_assert_double_eq(o.rate, 1500.5);
    ck_assert_uint_eq(o.timeout_ms, 0);
    ck_assert_uint_eq(o.seed, 9);
    ck_assert(o.json);
    ck_assert(!o.progress);
}
END_TEST

/* Each bad input exits with status 2 and a message naming the culprit. */
START_TEST(test_bad_input_names_the_flag)
{
    static const struct {
        const char *args[5]; /* NULL-terminated */
        const char *names;
    } cases[] = {
        {{NULL}, "missing mode"},
        {{"get"}, "\"get\""},
        {{"put", "--conns", "0"}, "--conns"},
        {{"put", "--conns", "1001"}, "--conns"},
        {{"put", "--clients", "-3"}, "--clients"},
        {{"put", "--clients", "1x"}, "--clients"},
        {{"put", "--total", ""}, "--total"},
        {{"put", "--total", "99999999999999999999999"}, "--total"},
        {{"put", "--key-size", "0"}, "--key-size"},
        {{"put", "--val-size", "16777217"}, "--val-size"},
        {{"put", "--key-space", "x"}, "--key-space"},
        {{"range", "--consistency", "strong"}, "--consistency"},
        {{"put", "--rate", "-1"}, "--rate"},
        {{"put", "--rate", "nan"}, "--rate"},
        {{"put", "--timeout-ms", "1s"}, "--timeout-ms"},
        {{"put", "--endpoints", ""}, "--endpoints"},
        {{"put", "--endpoints", "a:1,,b:2"}, "--endpoints"},
        {{"put", "--endpoints", "localhost"}, "--endpoints"},
        {{"put", "--endpoints", "https://h:1"}, "--endpoints"},
        {{"put", "--endpoints", "h:70000"}, "--endpoints"},
        {{"put", "--conns"}, "--conns"},
        {{"put", "--json=true"}, "--json"},
        {{"put", "--frobnicate", "1"}, "--frobnicate"},
        {{"put", "extra"}, "\"extra\""},
        {{"put", "--conns", "8", "--clients=4"}, "--clients"},
        {{"put", "--total", "1001", "--key-size=3"}, "--key-size"},
        {{"put", "--key-space", "101", "--key-size=2"}, "--key-size"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bench_options o;
        ck_assert_msg(parse(&o, cases[i].args) == 2, "case %zu", i);
        ck_assert_msg(strstr(errbuf, cases[i].names) != NULL, "case %zu: %s", i, errbuf);
        ck_assert_msg(strncmp(errbuf, "metcd-bench: ", 13) == 0, "case %zu: %s", i, errbuf);
    }
}
END_TEST

START_TEST(test_watch_flags)
{
    struct bench_options o;
    ck_assert_int_eq(PARSE(&o, "watch"), 0);
    ck_assert_int_eq(o.mode, BENCH_WATCH);
    ck_assert_uint_eq(o.watchers, 100000);
    ck_assert_uint_eq(o.keys, 1000);
    ck_assert_uint_eq(o.streams, 100);
    ck_assert_int_eq(o.server_pid, 0);
    ck_assert_int_eq(PARSE(&o, "watch", "--watchers=10", "--keys", "5", "--streams=2", "--conns",
                           "2", "--clients", "1", "--server-pid", "port", "--settle-ms=0",
                           "--drain-ms", "5", "--max-samples", "7"),
                     0);
    ck_assert_uint_eq(o.watchers, 10);
    ck_assert_uint_eq(o.keys, 5);
    ck_assert_uint_eq(o.streams, 2);
    ck_assert_uint_eq(o.conns, 2);
    ck_assert_int_eq(o.server_pid, -1);
    ck_assert_uint_eq(o.settle_ms, 0);
    ck_assert_uint_eq(o.drain_ms, 5);
    ck_assert_uint_eq(o.max_samples, 7);
    ck_assert_int_eq(PARSE(&o, "watch", "--server-pid", "1234"), 0);
    ck_assert_int_eq(o.server_pid, 1234);
    static const struct {
        const char *args[5];
        const char *names;
    } cases[] = {
        {{"watch", "--val-size", "7"}, "--val-size"},
        {{"watch", "--watchers", "3", "--streams=4"}, "--streams"},
        {{"watch", "--streams", "2", "--conns=3"}, "--conns"},
        {{"watch", "--keys", "1001", "--key-size=3"}, "--key-size"},
        {{"watch", "--server-pid", "me"}, "--server-pid"},
        {{"watch", "--watchers", "0"}, "--watchers"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_msg(parse(&o, cases[i].args) == 2, "case %zu", i);
        ck_assert_msg(strstr(errbuf, cases[i].names) != NULL, "case %zu: %s", i, errbuf);
    }
}
END_TEST

START_TEST(test_key_size_boundaries)
{
    struct bench_options o;
    /* Sequential keys 0..999 need 3 digits; random keys 0..99 need 2. */
    ck_assert_int_eq(PARSE(&o, "put", "--total", "1000", "--key-size", "3"), 0);
    ck_assert_int_eq(
        PARSE(&o, "put", "--total", "1000000", "--key-space", "100", "--key-size", "2"), 0);
    ck_assert_int_eq(PARSE(&o, "put", "--total", "1", "--key-size", "1"), 0);
}
END_TEST

START_TEST(test_txn_mixed_compare_flags)
{
    struct bench_options o;
    ck_assert_int_eq(PARSE(&o, "txn"), 0);
    ck_assert_int_eq(o.mode, BENCH_TXN);
    ck_assert_uint_eq(o.txn_ops, 1);
    ck_assert(!o.txn_compare);
    ck_assert_uint_eq(o.n_compare, 0);
    ck_assert_int_eq(PARSE(&o, "mixed"), 0);
    ck_assert_int_eq(o.mode, BENCH_MIXED);
    ck_assert_double_eq(o.read_ratio, 0.9);
    ck_assert_int_eq(PARSE(&o, "txn", "--txn-ops=128", "--txn-compare", "--key-space", "1000",
                           "--compare", "127.0.0.1:3,http://h:4"),
                     0);
    ck_assert_uint_eq(o.txn_ops, 128);
    ck_assert(o.txn_compare);
    ck_assert_uint_eq(o.n_compare, 2);
    ck_assert_str_eq(o.compare[0], "127.0.0.1:3");
    ck_assert_str_eq(o.compare[1], "http://h:4");
    ck_assert_str_eq(o.endpoints[0], "127.0.0.1:2379"); /* --compare leaves --endpoints */
    ck_assert_int_eq(PARSE(&o, "mixed", "--read-ratio", "0", "--consistency=s", "--compare=a:1"),
                     0);
    ck_assert_double_eq(o.read_ratio, 0);
    ck_assert(o.serializable);
    ck_assert_int_eq(PARSE(&o, "mixed", "--read-ratio=1"), 0);
    ck_assert_double_eq(o.read_ratio, 1);
    /* A txn's key numbers run to total * txn-ops - 1 when sequential. */
    ck_assert_int_eq(PARSE(&o, "txn", "--total", "100", "--txn-ops", "10", "--key-size", "3"), 0);
    ck_assert_int_eq(PARSE(&o, "txn", "--total", "100", "--txn-ops", "11", "--key-size", "3"), 2);
    ck_assert_ptr_nonnull(strstr(errbuf, "--key-size"));
    /* Random keys: the key space must hold one txn's distinct keys. */
    ck_assert_int_eq(PARSE(&o, "txn", "--txn-ops", "4", "--key-space", "4"), 0);
    static const struct {
        const char *args[5];
        const char *names;
    } cases[] = {
        {{"txn", "--txn-ops", "0"}, "--txn-ops"},
        {{"txn", "--txn-ops", "129"}, "--txn-ops"},
        {{"txn", "--txn-ops", "4", "--key-space=3"}, "--key-space"},
        {{"txn", "--txn-compare=yes"}, "--txn-compare"},
        {{"mixed", "--read-ratio", "1.5"}, "--read-ratio"},
        {{"mixed", "--read-ratio", "-0.1"}, "--read-ratio"},
        {{"mixed", "--read-ratio", "nan"}, "--read-ratio"},
        {{"mixed", "--read-ratio", ""}, "--read-ratio"},
        {{"put", "--compare", "a:1,,b:2"}, "--compare"},
        {{"put", "--compare", "nohost"}, "--compare"},
        {{"put", "--compare"}, "--compare"},
        {{"watch", "--compare", "a:1"}, "--compare"},
        {{"lease", "--compare", "a:1"}, "--compare"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_msg(parse(&o, cases[i].args) == 2, "case %zu", i);
        ck_assert_msg(strstr(errbuf, cases[i].names) != NULL, "case %zu: %s", i, errbuf);
    }
}
END_TEST

START_TEST(test_help)
{
    struct bench_options o;
    ck_assert_int_eq(PARSE(&o, "--help"), 1);
    ck_assert_int_eq(PARSE(&o, "range", "-h"), 1);
}
END_TEST

START_TEST(test_format_key)
{
    char buf[8];
    ck_assert_int_eq(bench_format_key(buf, 8, 0), 0);
    ck_assert_int_eq(memcmp(buf, "00000000", 8), 0);
    ck_assert_int_eq(bench_format_key(buf, 8, 12345678), 0);
    ck_assert_int_eq(memcmp(buf, "12345678", 8), 0);
    ck_assert_int_eq(bench_format_key(buf, 5, 42), 0);
    ck_assert_int_eq(memcmp(buf, "00042", 5), 0);
    ck_assert_int_eq(bench_format_key(buf, 8, 123456789), BENCH_ERR_INVAL);
    ck_assert_uint_eq(bench_digits(0), 1);
    ck_assert_uint_eq(bench_digits(9), 1);
    ck_assert_uint_eq(bench_digits(10), 2);
    ck_assert_uint_eq(bench_digits(UINT64_MAX), 20);
}
END_TEST

static Suite *options_suite(void)
{
    Suite *s = suite_create("bench_options");
    TCase *tc = tcase_create("options");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_every_flag_both_spellings);
    tcase_add_test(tc, test_bad_input_names_the_flag);
    tcase_add_test(tc, test_watch_flags);
    tcase_add_test(tc, test_key_size_boundaries);
    tcase_add_test(tc, test_txn_mixed_compare_flags);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_format_key);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(options_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
