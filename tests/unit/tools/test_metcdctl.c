/* metcdctl without a server: flag parsing, durations, endpoints, JSON
 * strings, the id commands' argument errors (etcdctl's "Error: ..." lines
 * and exit codes), and a command against an endpoint nobody listens on
 * (ExitBadConnection). */
#include "tools/metcdctl/ctl.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

struct cap {
    struct ctl c;
    char *out, *err;
    size_t outlen, errlen;
};

static void cap_open(struct cap *k)
{
    memset(k, 0, sizeof(*k));
    k->c.out = open_memstream(&k->out, &k->outlen);
    k->c.err = open_memstream(&k->err, &k->errlen);
    ck_assert_ptr_nonnull(k->c.out);
    ck_assert_ptr_nonnull(k->c.err);
    ck_assert_int_eq(ctl_set_endpoints(&k->c, "127.0.0.1:1"), 0);
    k->c.dial_timeout_ms = 300;
    k->c.command_timeout_ms = 1000;
}

static void cap_flush(struct cap *k)
{
    fflush(k->c.out);
    fflush(k->c.err);
}

static void cap_close(struct cap *k)
{
    ctl_close(&k->c);
    fclose(k->c.out);
    fclose(k->c.err);
    free(k->out);
    free(k->err);
}

static const struct ctl_command *id_cmd(const char *name)
{
    for (size_t i = 0; i < ctl_id_group.n_commands; i++)
        if (!strcmp(ctl_id_group.commands[i].name, name))
            return &ctl_id_group.commands[i];
    return NULL;
}

static int run(struct cap *k, const char *name, int argc, char **argv)
{
    const struct ctl_command *cmd = id_cmd(name);
    ck_assert_ptr_nonnull(cmd);
    int rc = cmd->run(&k->c, argc, argv);
    cap_flush(k);
    return rc;
}

START_TEST(test_flags)
{
    struct cap k;
    cap_open(&k);
    static const char *const names[] = {"--count", "--step", NULL};
    const char *vals[2] = {NULL, NULL}, *pos[2];
    size_t np;
    char *a1[] = {"next", "orders", "--count", "7", "--step=3"};
    ck_assert_int_eq(ctl_flags(&k.c, 5, a1, names, vals, pos, 2, &np), 0);
    ck_assert_uint_eq(np, 1);
    ck_assert_str_eq(pos[0], "orders");
    ck_assert_str_eq(vals[0], "7");
    ck_assert_str_eq(vals[1], "3");
    char *a2[] = {"next", "--bogus", "1"};
    ck_assert_int_eq(ctl_flags(&k.c, 3, a2, names, vals, pos, 2, &np), CTL_EXIT_BAD_ARGS);
    char *a3[] = {"next", "--count"};
    ck_assert_int_eq(ctl_flags(&k.c, 2, a3, names, vals, pos, 2, &np), CTL_EXIT_BAD_ARGS);
    char *a4[] = {"next", "a", "b", "c"};
    ck_assert_int_eq(ctl_flags(&k.c, 4, a4, names, vals, pos, 2, &np), CTL_EXIT_BAD_ARGS);
    cap_flush(&k);
    ck_assert_ptr_nonnull(strstr(k.err, "Error: unknown flag: --bogus"));
    ck_assert_ptr_nonnull(strstr(k.err, "Error: flag needs an argument: --count"));
    ck_assert_ptr_nonnull(strstr(k.err, "Error: too many arguments: c"));
    cap_close(&k);
}
END_TEST

START_TEST(test_parsing)
{
    uint32_t ms;
    ck_assert_int_eq(ctl_parse_duration_ms("5s", &ms), 0);
    ck_assert_uint_eq(ms, 5000);
    ck_assert_int_eq(ctl_parse_duration_ms("250ms", &ms), 0);
    ck_assert_uint_eq(ms, 250);
    ck_assert_int_eq(ctl_parse_duration_ms("1.5s", &ms), 0);
    ck_assert_uint_eq(ms, 1500);
    ck_assert_int_eq(ctl_parse_duration_ms("2m", &ms), 0);
    ck_assert_uint_eq(ms, 120000);
    ck_assert_int_eq(ctl_parse_duration_ms("3", &ms), 0);
    ck_assert_uint_eq(ms, 3000);
    ck_assert_int_eq(ctl_parse_duration_ms("3x", &ms), -1);
    ck_assert_int_eq(ctl_parse_duration_ms("", &ms), -1);
    ck_assert_int_eq(ctl_parse_duration_ms("-1s", &ms), -1);
    uint64_t v;
    ck_assert_int_eq(ctl_parse_u64("42", 1, 100, &v), 0);
    ck_assert_uint_eq(v, 42);
    ck_assert_int_eq(ctl_parse_u64("0", 1, 100, &v), -1);
    ck_assert_int_eq(ctl_parse_u64("-3", 0, 100, &v), -1);
    ck_assert_int_eq(ctl_parse_u64("1e3", 0, 10000, &v), -1);
    ck_assert_int_eq(ctl_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    ck_assert_int_eq(ctl_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -1);
    struct ctl c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(ctl_set_endpoints(&c, "a:1,http://b:2"), 0);
    ck_assert_uint_eq(c.n_endpoints, 2);
    ck_assert_str_eq(c.endpoints[1], "http://b:2");
    ck_assert_int_eq(ctl_set_endpoints(&c, "a:1,,b:2"), -1);
    ck_assert_int_eq(ctl_set_endpoints(&c, ""), -1);
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    ctl_json_str(f, "a\"b\\c\n");
    fclose(f);
    ck_assert_str_eq(buf, "\"a\\\"b\\\\c\\u000a\"");
    free(buf);
}
END_TEST

START_TEST(test_id_arguments)
{
    struct cap k;
    cap_open(&k);
    char *next0[] = {"next"};
    ck_assert_int_eq(run(&k, "next", 1, next0), CTL_EXIT_BAD_ARGS);
    ck_assert_ptr_nonnull(strstr(k.err, "Error: id next needs a tag"));
    char *next1[] = {"next", "t", "--count", "0"};
    ck_assert_int_eq(run(&k, "next", 4, next1), CTL_EXIT_BAD_ARGS);
    ck_assert_ptr_nonnull(strstr(k.err, "--count wants an integer in 1..1000000"));
    char *sf[] = {"snowflake", "extra"};
    ck_assert_int_eq(run(&k, "snowflake", 2, sf), CTL_EXIT_BAD_ARGS);
    char *dec[] = {"decode", "x12"};
    ck_assert_int_eq(run(&k, "decode", 2, dec), CTL_EXIT_BAD_ARGS);
    char *ct[] = {"create-tag", "t", "--step", "0"};
    ck_assert_int_eq(run(&k, "create-tag", 4, ct), CTL_EXIT_BAD_ARGS);
    ck_assert_ptr_nonnull(strstr(k.err, "--step wants a positive integer"));
    char *tags[] = {"tags", "x"};
    ck_assert_int_eq(run(&k, "tags", 2, tags), CTL_EXIT_BAD_ARGS);
    ck_assert_uint_eq(k.outlen, 0); /* nothing on stdout for errors */
    /* a well-formed command to an endpoint nobody listens on */
    char *ok[] = {"next", "t"};
    ck_assert_int_eq(run(&k, "next", 2, ok), CTL_EXIT_BAD_CONNECTION);
    ck_assert_uint_eq(k.outlen, 0);
    cap_close(&k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metcdctl");
    TCase *tc = tcase_create("metcdctl");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_flags);
    tcase_add_test(tc, test_parsing);
    tcase_add_test(tc, test_id_arguments);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
