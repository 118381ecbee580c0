/* metcdctl watch without a server: etcdctl 3.4's argument errors (texts
 * and exit codes, ETCDCTL_WATCH_KEY / ETCDCTL_WATCH_RANGE_END included)
 * and interactive mode's request lines read from stdin (quoting, the
 * non-fatal "Invalid command" lines, the fatal flag errors, EOF). What a
 * watch prints is compared with etcdctl's in
 * tests/integration/test_metcdctl_watch.py; failover is
 * tests/integration/test_metcdctl_watch_failover.py. */
#include "tests/unit/tools/ctl_capture.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* Runs "metcdctl <line>" (words split on spaces) against a port nobody
 * listens on, stdin_text as stdin (NULL: none); the exit status, with
 * stdout and stderr in k. */
static int run(struct cap *k, const char *line, const char *stdin_text)
{
    char buf[600];
    snprintf(buf, sizeof(buf), "--endpoints 127.0.0.1:1 --dial-timeout=200ms %s", line);
    return cap_run(k, buf, stdin_text);
}

static void expect(const char *line, const char *stdin_text, int rc, const char *err)
{
    struct cap k = {0};
    int got = run(&k, line, stdin_text);
    if (got != rc || !strstr(k.err, err))
        ck_abort_msg("%s: status %d (want %d), stderr %s (want %s)", line, got, rc, k.err, err);
    cap_close(&k);
}

START_TEST(test_watch_args)
{
    expect("watch", NULL, 128, "Error: bad number of arguments\n");
    expect("watch --rev 3", NULL, 128, "Error: bad number of arguments\n");
    expect("watch a b --prefix", NULL, 128,
           "Error: `range_end` and `--prefix` are mutually exclusive\n");
    expect("watch a --", NULL, 128,
           "Error: bad number of arguments (found separator --, but no commands)\n");
    expect("watch a --rev x", NULL, 1, "invalid argument \"x\" for \"--rev\" flag");
}
END_TEST

START_TEST(test_watch_env)
{
    setenv("ETCDCTL_WATCH_RANGE_END", "z", 1);
    expect("watch a", NULL, 128,
           "Error: ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=\"z\"\n");
    setenv("ETCDCTL_WATCH_KEY", "k", 1);
    expect("watch a", NULL, 128,
           "Error: bad number of arguments (found conflicting environment key)\n");
    expect("watch a -- echo", NULL, 128,
           "Error: bad number of arguments (found conflicting environment key)\n");
    /* the key from the environment and --prefix: its range_end too */
    expect("watch --prefix", NULL, 128,
           "Error: `range_end` and `--prefix` are mutually exclusive\n");
    unsetenv("ETCDCTL_WATCH_KEY");
    unsetenv("ETCDCTL_WATCH_RANGE_END");
}
END_TEST

START_TEST(test_watch_interactive_lines)
{
    /* bad lines are reported and skipped; EOF ends with status 3 */
    expect("watch -i", "bogus\n\nwatch\nwatch \"a b\" c --prefix\n", 3,
           "Invalid command bogus (only support watch)\n"
           "Invalid command:  (watch and progress supported)\n"
           "Invalid command watch (command type or key is not provided)\n"
           "Invalid command watch \"a b\" c --prefix (`range_end` and `--prefix` are mutually "
           "exclusive)\n"
           "Error: Error reading watch request line: EOF\n");
    /* a watch is opened (the member is not there: it keeps trying), then EOF */
    expect("watch -i", "watch foo --rev 3 --prev-kv -- echo x\nprogress\n", 3,
           "Error: Error reading watch request line: EOF\n");
    /* a last line without its newline is not a request */
    expect("watch -i", "bogus", 3, "Error: Error reading watch request line: EOF\n");
    /* flag and separator errors end interactive mode */
    expect("watch -i", "watch foo --bogus\nbogus\n", 128, "Error: unknown flag: --bogus\n");
    expect("watch -i", "watch foo -x\n", 128, "Error: unknown shorthand flag: 'x' in -x\n");
    expect("watch -i", "watch foo --rev\n", 128, "Error: flag needs an argument: --rev\n");
    expect("watch -i", "watch --prefix\n", 128, "Error: bad number of arguments\n");
    expect("watch -i", "watch foo --\n", 128,
           "Error: bad number of arguments (found separator --, but no commands)\n");
}
END_TEST

int main(void)
{
    unsetenv("ETCDCTL_WATCH_KEY");
    unsetenv("ETCDCTL_WATCH_RANGE_END");
    Suite *s = suite_create("metcdctl_watch");
    TCase *tc = tcase_create("args");
    tcase_add_test(tc, test_watch_args);
    tcase_add_test(tc, test_watch_env);
    tcase_add_test(tc, test_watch_interactive_lines);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
