/* tests/unit/config/test_log.c - exact shapes of etcd 3.4's capnslog and zap
 * lines (as printed by the real etcd 3.4.23, e.g.
 *   2026-11-23 15:56:57.889021 I | etcdserver: published {...} to cluster 9d77c969a38e041d
 *   {"level":"warn","ts":"2026-11-23T17:07:07.273Z","caller":"etcdmain/etcd.go:66",
 *    "msg":"failed to verify flags","error":"--election-timeout[1000ms] ..."}),
 * levels, outputs, thread safety. Runs with TZ=UTC. */
#include "server/config/log.h"
#include "server/config/config.h"
#include "common/mem.h"

#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpl[64];
static int tfd = -1;

static void setup(void)
{
    snprintf(tmpl, sizeof(tmpl), "/tmp/metcd-logtest-XXXXXX");
    tfd = mkstemp(tmpl);
    ck_assert_int_ge(tfd, 0);
}

static void teardown(void)
{
    close(tfd);
    unlink(tmpl);
}

/* Whole content of the temp file; caller frees. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static bool matches(const char *re, const char *s)
{
    regex_t r;
    ck_assert_int_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&r, s, 0, NULL, 0);
    regfree(&r);
    return rc == 0;
}

#define CAPN_TS "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}"
#define ZAP_TS "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"

START_TEST(test_capnslog_line_shape)
{
    struct metcd_log *lg;
    ck_assert_int_eq(log_open_fd(&lg, LOG_FMT_CAPNSLOG, LOG_LVL_DEBUG, tfd), 0);
    log_printf(lg, LOG_LVL_INFO, "etcdserver",
               "published {Name:%s ClientURLs:[%s]} to cluster %016llx", "n0",
               "http://localhost:42479", 0x9d77c969a38e041dULL);
    log_printf(lg, LOG_LVL_NOTICE, "embed",
               "serving insecure client requests on %s, this is strongly discouraged!",
               "127.0.0.1:42479");
    log_printf(lg, LOG_LVL_DEBUG, "raft", "d");
    log_printf(lg, LOG_LVL_WARN, "pkg/flags", "w");
    log_printf(lg, LOG_LVL_ERROR, "etcdmain", "e\n"); /* a trailing newline is not doubled */
    log_printf(lg, LOG_LVL_CRIT, "etcdmain", "c");
    log_close(lg);
    char *s = slurp(tmpl);
    ck_assert_msg(
        matches("^" CAPN_TS " I \\| etcdserver: published \\{Name:n0 "
                "ClientURLs:\\[http://localhost:42479\\]\\} to cluster 9d77c969a38e041d\n" CAPN_TS
                " N \\| embed: serving insecure client requests on 127.0.0.1:42479, this is "
                "strongly discouraged!\n" CAPN_TS " D \\| raft: d\n" CAPN_TS
                " W \\| pkg/flags: w\n" CAPN_TS " E \\| etcdmain: e\n" CAPN_TS
                " C \\| etcdmain: c\n$",
                s),
        "got: %s", s);
    free(s);
}
END_TEST

START_TEST(test_level_filter)
{
    struct metcd_log *lg;
    ck_assert_int_eq(log_open_fd(&lg, LOG_FMT_CAPNSLOG, LOG_LVL_WARN, tfd), 0);
    ck_assert(!log_enabled(lg, LOG_LVL_NOTICE));
    ck_assert(log_enabled(lg, LOG_LVL_WARN));
    log_printf(lg, LOG_LVL_INFO, "p", "info");
    log_printf(lg, LOG_LVL_NOTICE, "p", "notice");
    log_printf(lg, LOG_LVL_DEBUG, "p", "debug");
    log_printf(lg, LOG_LVL_ERROR, "p", "error");
    log_close(lg);
    char *s = slurp(tmpl);
    ck_assert_msg(matches("^" CAPN_TS " E \\| p: error\n$", s), "got: %s", s);
    free(s);
    enum log_level l;
    ck_assert_int_eq(log_level_parse("warn", &l), 0);
    ck_assert_int_eq(l, LOG_LVL_WARN);
    ck_assert_int_eq(log_level_parse("fatal", &l), 0);
    ck_assert_int_eq(l, LOG_LVL_CRIT);
    ck_assert_int_eq(log_level_parse("panic", &l), 0);
    ck_assert_int_eq(log_level_parse("debug", &l), 0);
    ck_assert_int_eq(l, LOG_LVL_DEBUG);
    ck_assert_int_eq(log_level_parse("verbose", &l), -1);
}
END_TEST

START_TEST(test_zap_line_shape)
{
    struct metcd_log *lg;
    ck_assert_int_eq(log_open_fd(&lg, LOG_FMT_ZAP, LOG_LVL_INFO, tfd), 0);
    const char *urls[] = {"http://127.0.0.1:42380", "http://a\"b"};
    struct log_field f[] = {
        LOG_HEX("local-member-id", 0x8e9e05c52164694dULL),
        LOG_STRS("listen-peer-urls", urls, 2),
        LOG_DUR("publish-timeout", 7000000000LL),
        LOG_INT("n", -3),
        LOG_UINT("u", 4294967296ULL),
        LOG_BOOL("b", true),
        LOG_STR("error", "line1\nline2\t\"q\"\\"),
    };
    log_event(lg, LOG_LVL_INFO, "etcdserver", "etcdserver/server.go:2051",
              "published local member to cluster through raft", f, 7, "capnslog text %d", 1);
    log_event(lg, LOG_LVL_WARN, "etcdmain", NULL, NULL, NULL, 0, "failed to %s", "verify flags");
    log_printf(lg, LOG_LVL_NOTICE, "embed", "notice is info in zap");
    log_printf(lg, LOG_LVL_CRIT, "etcdmain", "crit");
    log_printf(lg, LOG_LVL_DEBUG, "etcdmain", "dropped");
    log_close(lg);
    char *s = slurp(tmpl);
    ck_assert_msg(
        matches("^\\{\"level\":\"info\",\"ts\":\"" ZAP_TS
                "\",\"caller\":\"etcdserver/server.go:2051\","
                "\"msg\":\"published local member to cluster through raft\","
                "\"local-member-id\":\"8e9e05c52164694d\","
                "\"listen-peer-urls\":\\[\"http://127.0.0.1:42380\",\"http://a\\\\\"b\"\\],"
                "\"publish-timeout\":\"7s\",\"n\":-3,\"u\":4294967296,\"b\":true,"
                "\"error\":\"line1\\\\nline2\\\\t\\\\\"q\\\\\"\\\\\\\\\"\\}\n"
                "\\{\"level\":\"warn\",\"ts\":\"" ZAP_TS
                "\",\"caller\":\"etcdmain\",\"msg\":\"failed to verify flags\"\\}\n"
                "\\{\"level\":\"info\",\"ts\":\"" ZAP_TS
                "\",\"caller\":\"embed\",\"msg\":\"notice is info in zap\"\\}\n"
                "\\{\"level\":\"fatal\",\"ts\":\"" ZAP_TS
                "\",\"caller\":\"etcdmain\",\"msg\":\"crit\"\\}\n$",
                s),
        "got: %s", s);
    /* every line is valid JSON with the decoded values */
    char *save = NULL;
    int lines = 0;
    for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_error_t je;
        json_t *j = json_loads(l, 0, &je);
        ck_assert_msg(j != NULL, "bad json: %s", l);
        if (lines == 0)
            ck_assert_str_eq(json_string_value(json_object_get(j, "error")),
                             "line1\nline2\t\"q\"\\");
        json_decref(j);
        lines++;
    }
    ck_assert_int_eq(lines, 4);
    free(s);
}
END_TEST

START_TEST(test_zap_durations_like_go)
{
    struct metcd_log *lg;
    ck_assert_int_eq(log_open_fd(&lg, LOG_FMT_ZAP, LOG_LVL_INFO, tfd), 0);
    struct log_field f[] = {
        LOG_DUR("a", 0),
        LOG_DUR("b", 100000000LL),
        LOG_DUR("c", 1500000000LL),
        LOG_DUR("d", 7200000000000LL),
        LOG_DUR("e", 90000000000LL),
        LOG_DUR("f", 500),
        LOG_DUR("g", 1500),
    };
    log_event(lg, LOG_LVL_INFO, "x", "x.go:1", "m", f, 7, "unused");
    log_close(lg);
    char *s = slurp(tmpl);
    ck_assert_msg(
        strstr(s, "\"a\":\"0s\",\"b\":\"100ms\",\"c\":\"1.5s\",\"d\":\"2h0m0s\",\"e\":\"1m30s\","
                  "\"f\":\"500ns\",\"g\":\"1.5\xc2\xb5s\"}") != NULL,
        "got: %s", s);
    free(s);
}
END_TEST

struct thr {
    struct metcd_log *lg;
    int id;
};

static void *writer(void *arg)
{
    struct thr *t = arg;
    for (int i = 0; i < 2000; i++)
        log_printf(t->lg, LOG_LVL_INFO, "wal", "thread %d line %d %s", t->id, i,
                   "padding-padding-padding-padding-padding-padding-padding-padding");
    return NULL;
}

START_TEST(test_threads_never_interleave)
{
    struct metcd_log *lg;
    ck_assert_int_eq(log_open_fd(&lg, LOG_FMT_CAPNSLOG, LOG_LVL_INFO, tfd), 0);
    pthread_t th[4];
    struct thr a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (struct thr){lg, i};
        pthread_create(&th[i], NULL, writer, &a[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    log_close(lg);
    char *s = slurp(tmpl);
    regex_t r;
    ck_assert_int_eq(regcomp(&r, "^" CAPN_TS " I \\| wal: thread [0-3] line [0-9]+ (padding-?){8}$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    int n = 0;
    char *save = NULL;
    for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        ck_assert_msg(regexec(&r, l, 0, NULL, 0) == 0, "torn line: %s", l);
        n++;
    }
    regfree(&r);
    ck_assert_int_eq(n, 8000);
    free(s);
}
END_TEST

START_TEST(test_long_line_and_oom)
{
    struct metcd_log *lg;
    ck_assert_int_eq(log_open_fd(&lg, LOG_FMT_CAPNSLOG, LOG_LVL_INFO, tfd), 0);
    static char big[10000];
    memset(big, 'x', sizeof(big) - 1);
    log_printf(lg, LOG_LVL_INFO, "p", "%s", big);
    metcd_mem_fail_after(0);
    log_printf(lg, LOG_LVL_INFO, "p", "%s", big); /* no memory: still one (cut) line */
    metcd_mem_fail_after(-1);
    log_close(lg);
    char *s = slurp(tmpl);
    char *nl = strchr(s, '\n');
    ck_assert_ptr_nonnull(nl);
    ck_assert_uint_eq((size_t)(nl - s), 26 + 5 + 3 + sizeof(big) - 1);
    char *nl2 = strchr(nl + 1, '\n');
    ck_assert_ptr_nonnull(nl2);
    ck_assert_ptr_eq(nl2[1] == '\0' ? nl2 : NULL, nl2);
    free(s);
}
END_TEST

START_TEST(test_package_levels)
{
    struct metcd_log *lg;
    char errmsg[128];
    ck_assert_int_eq(log_open_fd(&lg, LOG_FMT_CAPNSLOG, LOG_LVL_INFO, tfd), 0);
    ck_assert_int_eq(log_set_package_levels(lg, "etcdmain=CRITICAL,raft=D,etcdserver=WARNING",
                                            errmsg, sizeof(errmsg)),
                     0);
    ck_assert_int_eq(log_set_package_levels(lg, "etcdmain", errmsg, sizeof(errmsg)), LOG_ERR_INVAL);
    ck_assert_str_eq(errmsg, "bad log level format \"etcdmain\"");
    ck_assert_int_eq(log_set_package_levels(lg, "x=LOUD", errmsg, sizeof(errmsg)), LOG_ERR_INVAL);
    log_printf(lg, LOG_LVL_ERROR, "etcdmain", "dropped");
    log_printf(lg, LOG_LVL_CRIT, "etcdmain", "kept1");
    log_printf(lg, LOG_LVL_DEBUG, "raft", "kept2");
    log_printf(lg, LOG_LVL_INFO, "etcdserver", "dropped");
    log_printf(lg, LOG_LVL_INFO, "embed", "kept3");
    log_printf(lg, LOG_LVL_DEBUG, "embed", "dropped");
    ck_assert_int_eq(log_set_package_levels(lg, "*=ERROR", errmsg, sizeof(errmsg)), 0);
    log_printf(lg, LOG_LVL_INFO, "embed", "dropped");
    log_close(lg);
    char *s = slurp(tmpl);
    ck_assert_msg(matches("^" CAPN_TS " C \\| etcdmain: kept1\n" CAPN_TS
                          " D \\| raft: kept2\n" CAPN_TS " I \\| embed: kept3\n$",
                          s),
                  "got: %s", s);
    free(s);
}
END_TEST

START_TEST(test_outputs)
{
    char p1[80], p2[80], errmsg[256];
    snprintf(p1, sizeof(p1), "%s.a", tmpl);
    snprintf(p2, sizeof(p2), "%s.b", tmpl);
    const char *outs[] = {p1, p2};
    struct metcd_log *lg;
    ck_assert_int_eq(log_open(&lg, LOG_FMT_ZAP, LOG_LVL_INFO, outs, 2, errmsg, sizeof(errmsg)), 0);
    log_printf(lg, LOG_LVL_INFO, "embed", "to both");
    log_close(lg);
    char *a = slurp(p1), *b = slurp(p2);
    ck_assert_str_eq(a, b);
    ck_assert_ptr_nonnull(strstr(a, "\"msg\":\"to both\""));
    free(a);
    free(b);
    /* files are appended to */
    ck_assert_int_eq(log_open(&lg, LOG_FMT_CAPNSLOG, LOG_LVL_INFO, outs, 1, errmsg, sizeof(errmsg)),
                     0);
    log_printf(lg, LOG_LVL_INFO, "embed", "second");
    log_close(lg);
    a = slurp(p1);
    ck_assert_ptr_nonnull(strstr(a, "to both"));
    ck_assert_ptr_nonnull(strstr(a, "embed: second\n"));
    free(a);
    unlink(p1);
    unlink(p2);
    /* capnslog takes one output only; bad paths say which */
    ck_assert_int_eq(log_open(&lg, LOG_FMT_CAPNSLOG, LOG_LVL_INFO, outs, 2, errmsg, sizeof(errmsg)),
                     LOG_ERR_INVAL);
    const char *bad[] = {"stdout", "/nonexistent-dir/metcd.log"};
    ck_assert_int_eq(log_open(&lg, LOG_FMT_ZAP, LOG_LVL_INFO, bad, 2, errmsg, sizeof(errmsg)),
                     LOG_ERR_OPEN);
    ck_assert_ptr_nonnull(strstr(errmsg, "/nonexistent-dir/metcd.log"));
    ck_assert_str_eq(log_strerror(LOG_ERR_OPEN), "cannot open log output");
    metcd_mem_fail_after(0);
    ck_assert_int_eq(log_open(&lg, LOG_FMT_ZAP, LOG_LVL_INFO, bad, 1, errmsg, sizeof(errmsg)),
                     LOG_ERR_NOMEM);
    metcd_mem_fail_after(-1);
}
END_TEST

START_TEST(test_open_from_config_and_null_logger)
{
    struct config cfg;
    ck_assert_int_eq(config_init(&cfg), 0);
    struct metcd_log *lg = NULL;
    char errmsg[256];
    ck_assert_int_eq(log_open_config(&lg, &cfg, errmsg, sizeof(errmsg)), 0);
    ck_assert_int_eq(log_format_of(lg), LOG_FMT_CAPNSLOG);
    ck_assert(!log_enabled(lg, LOG_LVL_DEBUG));
    log_close(lg);
    ck_assert_int_eq(config_set(&cfg, "logger", "zap", CONFIG_SRC_FLAG), 0);
    ck_assert_int_eq(config_set(&cfg, "log-level", "debug", CONFIG_SRC_FLAG), 0);
    ck_assert_int_eq(log_open_config(&lg, &cfg, errmsg, sizeof(errmsg)), 0);
    ck_assert_int_eq(log_format_of(lg), LOG_FMT_ZAP);
    ck_assert(log_enabled(lg, LOG_LVL_DEBUG));
    log_close(lg);
    /* --log-package-levels: applied for capnslog, a bad one only warns */
    ck_assert_int_eq(config_set(&cfg, "logger", "capnslog", CONFIG_SRC_FLAG), 0);
    ck_assert_int_eq(config_set(&cfg, "log-level", "info", CONFIG_SRC_FLAG), 0);
    ck_assert_int_eq(config_set(&cfg, "log-package-levels", "embed=ERROR", CONFIG_SRC_FLAG), 0);
    ck_assert_int_eq(log_open_config(&lg, &cfg, errmsg, sizeof(errmsg)), 0);
    ck_assert(!log_enabled_pkg(lg, LOG_LVL_WARN, "embed"));
    ck_assert(log_enabled_pkg(lg, LOG_LVL_WARN, "etcdserver"));
    log_close(lg);
    ck_assert_int_eq(config_set(&cfg, "log-package-levels", "garbage", CONFIG_SRC_FLAG), 0);
    {
        int saved2 = dup(2);
        dup2(tfd, 2);
        ck_assert_int_eq(log_open_config(&lg, &cfg, errmsg, sizeof(errmsg)), 0);
        dup2(saved2, 2);
        close(saved2);
        log_close(lg);
        char *w = slurp(tmpl);
        ck_assert_msg(matches("^" CAPN_TS " W \\| embed: couldn't parse log level string: bad log "
                              "level format \"garbage\", continuing with default levels\n$",
                              w),
                      "got: %s", w);
        free(w);
        ck_assert_int_eq(ftruncate(tfd, 0), 0);
        lseek(tfd, 0, SEEK_SET);
    }
    ck_assert_int_eq(config_set(&cfg, "log-package-levels", "", CONFIG_SRC_FLAG), 0);
    ck_assert_int_eq(config_set(&cfg, "log-level", "loud", CONFIG_SRC_FLAG), 0);
    ck_assert_int_eq(log_open_config(&lg, &cfg, errmsg, sizeof(errmsg)), LOG_ERR_INVAL);
    ck_assert_str_eq(errmsg, "unknown level \"loud\"");
    config_free(&cfg);
    log_close(NULL);

    /* NULL logger: capnslog on stderr */
    int saved = dup(2);
    dup2(tfd, 2);
    log_printf(NULL, LOG_LVL_INFO, "etcdmain", "to stderr");
    log_printf(NULL, LOG_LVL_DEBUG, "etcdmain", "dropped");
    log_raw_stderr("[WARNING] raw\n", 14);
    dup2(saved, 2);
    close(saved);
    char *s = slurp(tmpl);
    ck_assert_msg(matches("^" CAPN_TS " I \\| etcdmain: to stderr\n\\[WARNING\\] raw\n$", s),
                  "got: %s", s);
    free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config/log");
    TCase *tc = tcase_create("log");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_capnslog_line_shape);
    tcase_add_test(tc, test_level_filter);
    tcase_add_test(tc, test_zap_line_shape);
    tcase_add_test(tc, test_zap_durations_like_go);
    tcase_add_test(tc, test_threads_never_interleave);
    tcase_add_test(tc, test_long_line_and_oom);
    tcase_add_test(tc, test_package_levels);
    tcase_add_test(tc, test_outputs);
    tcase_add_test(tc, test_open_from_config_and_null_logger);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
