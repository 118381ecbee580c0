/* metcdctl's lease, user, role, auth, lock, elect and make-mirror commands
 * without a server: the argument errors etcdctl 3.4 reports before it
 * dials (texts and exit codes), and hex lease IDs. The answers themselves
 * are compared with etcdctl's in
 * tests/integration/test_metcdctl_ctllease.py. */
#include "tests/unit/tools/ctl_capture.h"
#include "tools/metcdctl/ctl_session.h"

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

static void expect(struct cap *k, const char *line, int rc, const char *err)
{
    ck_assert_int_eq(run(k, line), rc);
    if (!strstr(k->err, err))
        ck_abort_msg("%s: stderr %s lacks %s", line, k->err, err);
}

START_TEST(test_lease_args)
{
    struct cap k = {0};
    expect(&k, "lease grant", 128, "Error: lease grant command needs TTL argument\n");
    expect(&k, "lease grant 0x10", 128,
           "Error: bad TTL (strconv.ParseInt: parsing \"0x10\": invalid syntax)\n");
    expect(&k, "lease grant 99999999999999999999", 128, "value out of range)\n");
    expect(&k, "lease revoke", 128, "Error: lease revoke command needs 1 argument\n");
    expect(&k, "lease revoke zz", 128,
           "Error: bad lease ID arg (strconv.ParseInt: parsing \"zz\": invalid syntax), "
           "expecting ID in Hex\n");
    expect(&k, "lease revoke 8000000000000000", 128, "value out of range), expecting ID in Hex");
    expect(&k, "lease timetolive", 128, "needs lease ID as argument\n");
    expect(&k, "lease keep-alive --once", 128,
           "Error: lease keep-alive command needs lease ID as argument\n");
    cap_close(&k);
}
END_TEST

START_TEST(test_lease_id_hex)
{
    struct cap k = {0};
    cap_open(&k, NULL);
    int64_t id;
    ck_assert_int_eq(ctl_lease_parse_id(&k.c, "694d7a3b1c2e0f10", &id), 0);
    ck_assert_int_eq(id, 0x694d7a3b1c2e0f10LL);
    ck_assert_int_eq(ctl_lease_parse_id(&k.c, "7FFFFFFFFFFFFFFF", &id), 0);
    ck_assert_int_eq(id, INT64_MAX);
    ck_assert_int_eq(ctl_lease_parse_id(&k.c, "-8000000000000000", &id), 0);
    ck_assert_int_eq(id, INT64_MIN);
    ck_assert_int_eq(ctl_lease_parse_id(&k.c, "0x10", &id), 128); /* base 16 takes no prefix */
    ck_assert_int_eq(ctl_lease_parse_id(&k.c, "", &id), 128);
    cap_close(&k);
}
END_TEST

START_TEST(test_auth_args)
{
    struct cap k = {0};
    expect(&k, "user add", 128, "Error: user add command requires user name as its argument\n");
    expect(&k, "user add :pw", 128, "Error: empty user name is not allowed\n");
    expect(&k, "user grant-role u", 128,
           "user grant command requires user name and role name as its argument\n");
    expect(&k, "user list x", 128, "Error: user list command requires no arguments\n");
    expect(&k, "role grant-permission r read", 128,
           "role grant command requires role name, permission type, and key [endkey]");
    expect(&k, "role grant-permission r bogus k", 128, "Error: invalid permission type: bogus\n");
    expect(&k, "role grant-permission --prefix --from-key r read k", 128,
           "Error: --from-key and --prefix flags are mutually exclusive\n");
    expect(&k, "role grant-permission --prefix r read a b", 128,
           "Error: unexpected endkey argument with --prefix flag\n");
    expect(&k, "role revoke-permission --from-key r a b", 128,
           "Error: unexpected endkey argument with --from-key flag\n");
    expect(&k, "auth enable x", 128, "Error: auth enable command does not accept any arguments\n");
    cap_close(&k);
}
END_TEST

START_TEST(test_lock_elect_mirror_args)
{
    struct cap k = {0};
    expect(&k, "lock", 128,
           "Error: lock takes a lock name argument and an optional command to execute\n");
    expect(&k, "elect e", 128, "Error: no proposal argument but -l not set\n");
    expect(&k, "elect -l e p", 128, "Error: proposal given but -l is set\n");
    expect(&k, "elect a b c", 128, "elect takes one election name argument");
    expect(&k, "make-mirror", 128, "Error: make-mirror takes one destination argument\n");
    cap_close(&k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metcdctl_ctllease");
    TCase *tc = tcase_create("args");
    tcase_add_test(tc, test_lease_args);
    tcase_add_test(tc, test_lease_id_hex);
    tcase_add_test(tc, test_auth_args);
    tcase_add_test(tc, test_lock_elect_mirror_args);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
