/* tests/unit/config/test_flags.c - the flag table covers every flag of
 * `etcd --help` (3.4.23) and of etcdmain/config.go; help and version output. */
#include "server/config/config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* `etcd --help | grep -oE '^  --[a-z0-9.-]+'` on etcd 3.4.23, plus the flags
 * config.go registers without listing them in the help. */
static const char *const etcd_flags[] = {
    "name",
    "data-dir",
    "wal-dir",
    "snapshot-count",
    "heartbeat-interval",
    "election-timeout",
    "initial-election-tick-advance",
    "listen-peer-urls",
    "listen-client-urls",
    "max-snapshots",
    "max-wals",
    "quota-backend-bytes",
    "backend-batch-interval",
    "backend-batch-limit",
    "max-txn-ops",
    "max-request-bytes",
    "max-concurrent-streams",
    "grpc-keepalive-min-time",
    "grpc-keepalive-interval",
    "grpc-keepalive-timeout",
    "initial-advertise-peer-urls",
    "initial-cluster",
    "initial-cluster-state",
    "initial-cluster-token",
    "advertise-client-urls",
    "discovery",
    "discovery-fallback",
    "discovery-proxy",
    "discovery-srv",
    "discovery-srv-name",
    "strict-reconfig-check",
    "pre-vote",
    "auto-compaction-retention",
    "auto-compaction-mode",
    "enable-v2",
    "cert-file",
    "key-file",
    "client-cert-auth",
    "client-crl-file",
    "client-cert-allowed-hostname",
    "trusted-ca-file",
    "auto-tls",
    "peer-cert-file",
    "peer-key-file",
    "peer-client-cert-auth",
    "peer-trusted-ca-file",
    "peer-cert-allowed-cn",
    "peer-cert-allowed-hostname",
    "peer-auto-tls",
    "peer-crl-file",
    "cipher-suites",
    "cors",
    "host-whitelist",
    "auth-token",
    "bcrypt-cost",
    "auth-token-ttl",
    "enable-pprof",
    "metrics",
    "listen-metrics-urls",
    "logger",
    "log-outputs",
    "log-level",
    "proxy",
    "proxy-failure-wait",
    "proxy-refresh-interval",
    "proxy-dial-timeout",
    "proxy-write-timeout",
    "proxy-read-timeout",
    "experimental-initial-corrupt-check",
    "experimental-corrupt-check-time",
    "experimental-enable-v2v3",
    "experimental-backend-bbolt-freelist-type",
    "experimental-enable-lease-checkpoint",
    "experimental-compaction-batch-limit",
    "experimental-peer-skip-client-san-verification",
    "experimental-watch-progress-notify-interval",
    "experimental-warning-apply-duration",
    "force-new-cluster",
    "debug",
    "log-package-levels",
    /* registered but not in --help */
    "config-file",
    "version",
    "log-output",
    "enable-grpc-gateway",
    "unsafe-no-fsync",
    "experimental-enable-lease-checkpoint-persist",
    NULL,
};

START_TEST(test_table_sorted_unique)
{
    size_t n = config_flag_count();
    ck_assert_uint_gt(n, 80);
    for (size_t i = 1; i < n; i++)
        ck_assert_msg(strcmp(config_flag_name(i - 1), config_flag_name(i)) < 0, "%s / %s",
                      config_flag_name(i - 1), config_flag_name(i));
    ck_assert_ptr_null(config_flag_name(n));
}
END_TEST

START_TEST(test_every_etcd_flag_known)
{
    struct config cfg;
    ck_assert_int_eq(config_init(&cfg), 0);
    for (int i = 0; etcd_flags[i]; i++) {
        bool found = false;
        for (size_t j = 0; j < config_flag_count(); j++)
            found = found || strcmp(config_flag_name(j), etcd_flags[i]) == 0;
        ck_assert_msg(found, "missing flag --%s", etcd_flags[i]);
    }
    config_free(&cfg);
}
END_TEST

static char *capture(void (*fn)(FILE *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(f);
    fclose(f);
    return buf;
}

START_TEST(test_help_lists_flags_with_defaults)
{
    char *h = capture(config_print_help);
    ck_assert(strncmp(h, "Usage:\n\n  etcd [flags]\n", 23) == 0);
    static const char *const lines[] = {
        "  --name 'default'\n",
        "  --data-dir '${name}.etcd'\n",
        "  --snapshot-count '100000'\n",
        "  --heartbeat-interval '100'\n",
        "  --election-timeout '1000'\n",
        "  --listen-peer-urls 'http://localhost:2380'\n",
        "  --max-concurrent-streams 'math.MaxUint32'\n",
        "  --grpc-keepalive-interval '2h'\n",
        "  --initial-cluster 'default=http://localhost:2380'\n",
        "  --initial-cluster-token 'etcd-cluster'\n",
        "  --auto-compaction-mode 'periodic'\n",
        "  --cors '*'\n",
        "  --logger 'capnslog'\n",
        "  --log-outputs 'default'\n",
        "  --experimental-warning-apply-duration '100ms'\n",
        "  --force-new-cluster 'false'\n",
        "\nMember:\n",
        "\nClustering:\n",
        "\nSecurity:\n",
        "\nLogging:\n",
        NULL,
    };
    for (int i = 0; lines[i]; i++)
        ck_assert_msg(strstr(h, lines[i]) != NULL, "help lacks %s", lines[i]);
    /* every listed etcd flag appears (hidden ones excepted) */
    for (int i = 0; etcd_flags[i] && strcmp(etcd_flags[i], "config-file") != 0; i++) {
        char want[128];
        snprintf(want, sizeof(want), "\n  --%s '", etcd_flags[i]);
        ck_assert_msg(strstr(h, want) != NULL, "help lacks --%s", etcd_flags[i]);
    }
    ck_assert_ptr_null(strstr(h, "--cluster-active-size"));
    free(h);
}
END_TEST

START_TEST(test_version_lines)
{
    char *v = capture(config_print_version);
    /* tools parse the first line exactly like etcd's */
    ck_assert(strncmp(v, "etcd Version: 3.4.23\nGit SHA: ", 30) == 0);
    ck_assert_ptr_nonnull(strstr(v, "\nGo Version: "));
    ck_assert_ptr_nonnull(strstr(v, "\nGo OS/Arch: linux/"));
    ck_assert_str_eq(CONFIG_SERVER_VERSION, "3.4.23");
    free(v);
    char *u = capture(config_print_usage);
    ck_assert_ptr_nonnull(strstr(u, "  etcd gateway\n"));
    ck_assert_ptr_nonnull(strstr(u, "  etcd grpc-proxy\n"));
    free(u);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config/flags");
    TCase *tc = tcase_create("flags");
    tcase_add_test(tc, test_table_sorted_unique);
    tcase_add_test(tc, test_every_etcd_flag_known);
    tcase_add_test(tc, test_help_lists_flags_with_defaults);
    tcase_add_test(tc, test_version_lines);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
