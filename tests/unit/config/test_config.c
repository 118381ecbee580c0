/* tests/unit/config/test_config.c - defaults, flag forms, env, precedence,
 * derived values, validation and reporting. Every quoted error text and exit
 * status was observed from the real etcd 3.4.23 binary with the same input. */
#include "server/config/config.h"
#include "server/config/log.h"
#include "common/mem.h"

#include <check.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct config cfg;

/* Parses NULL-terminated argv (program name added) with env (NULL-terminated
 * or NULL). cfg stays valid until the next call / teardown. */
static int parse_env(char *const *env, ...)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "etcd";
    va_list ap;
    va_start(ap, env);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    config_free(&cfg);
    ck_assert_int_eq(config_init(&cfg), 0);
    return config_parse(&cfg, argc, argv, env);
}

#define parse(...) parse_env(NULL, __VA_ARGS__, (char *)NULL)
#define parse0() parse_env(NULL, (char *)NULL)
#define PEERS                                                                                      \
    "--listen-peer-urls", "http://127.0.0.1:42380", "--listen-client-urls",                        \
        "http://127.0.0.1:42379", "--advertise-client-urls", "http://127.0.0.1:42379"

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    metcd_mem_fail_after(-1);
}

static void teardown(void)
{
    config_free(&cfg);
}

static bool has_note(const char *needle)
{
    for (size_t i = 0; i < cfg.notes.n; i++)
        if (strstr(cfg.notes.v[i], needle))
            return true;
    return false;
}

START_TEST(test_defaults_are_etcds)
{
    ck_assert_int_eq(parse0(), 0);
    ck_assert_int_eq(cfg.command, CONFIG_CMD_SERVE);
    ck_assert_str_eq(cfg.name, "default");
    ck_assert_str_eq(cfg.data_dir, "default.etcd");
    ck_assert_str_eq(cfg.wal_dir, "");
    ck_assert_uint_eq(cfg.snapshot_count, 100000);
    ck_assert_uint_eq(cfg.heartbeat_interval_ms, 100);
    ck_assert_uint_eq(cfg.election_timeout_ms, 1000);
    ck_assert(cfg.initial_election_tick_advance);
    ck_assert_uint_eq(cfg.listen_peer_urls.n, 1);
    ck_assert_str_eq(cfg.listen_peer_urls.v[0], "http://localhost:2380");
    ck_assert_str_eq(cfg.listen_client_urls.v[0], "http://localhost:2379");
    ck_assert_str_eq(cfg.advertise_client_urls.v[0], "http://localhost:2379");
    ck_assert_str_eq(cfg.initial_advertise_peer_urls.v[0], "http://localhost:2380");
    ck_assert_uint_eq(cfg.max_snapshots, 5);
    ck_assert_uint_eq(cfg.max_wals, 5);
    ck_assert_int_eq(cfg.quota_backend_bytes, 0);
    ck_assert_int_eq(cfg.backend_batch_interval_ns, 0);
    ck_assert_int_eq(cfg.backend_batch_limit, 0);
    ck_assert_uint_eq(cfg.max_txn_ops, 128);
    ck_assert_uint_eq(cfg.max_request_bytes, 1572864);
    ck_assert_uint_eq(cfg.max_concurrent_streams, 4294967295u);
    ck_assert_int_eq(cfg.grpc_keepalive_min_time_ns, 5000000000LL);
    ck_assert_int_eq(cfg.grpc_keepalive_interval_ns, 7200000000000LL);
    ck_assert_int_eq(cfg.grpc_keepalive_timeout_ns, 20000000000LL);
    ck_assert_str_eq(cfg.initial_cluster, "default=http://localhost:2380");
    ck_assert_str_eq(cfg.initial_cluster_state, "new");
    ck_assert_str_eq(cfg.initial_cluster_token, "etcd-cluster");
    ck_assert_str_eq(cfg.discovery_fallback, "proxy");
    ck_assert(cfg.strict_reconfig_check);
    ck_assert(!cfg.pre_vote);
    ck_assert_str_eq(cfg.auto_compaction_retention, "0");
    ck_assert_str_eq(cfg.auto_compaction_mode, "periodic");
    ck_assert(!cfg.enable_v2);
    ck_assert(!cfg.client_cert_auth && !cfg.auto_tls && !cfg.peer_auto_tls);
    ck_assert_uint_eq(cfg.cipher_suites.n, 0);
    ck_assert_uint_eq(cfg.cors.n, 1);
    ck_assert_str_eq(cfg.cors.v[0], "*");
    ck_assert_str_eq(cfg.host_whitelist.v[0], "*");
    ck_assert_str_eq(cfg.auth_token, "simple");
    ck_assert_uint_eq(cfg.bcrypt_cost, 10);
    ck_assert_uint_eq(cfg.auth_token_ttl, 300);
    ck_assert_str_eq(cfg.metrics, "basic");
    ck_assert_uint_eq(cfg.listen_metrics_urls.n, 0);
    ck_assert_str_eq(cfg.logger, "capnslog");
    ck_assert_str_eq(cfg.log_outputs.v[0], "default");
    ck_assert_str_eq(cfg.log_level, "info");
    ck_assert_str_eq(cfg.proxy, "off");
    ck_assert_uint_eq(cfg.proxy_failure_wait_ms, 5000);
    ck_assert_uint_eq(cfg.proxy_refresh_interval_ms, 30000);
    ck_assert_uint_eq(cfg.proxy_dial_timeout_ms, 1000);
    ck_assert_uint_eq(cfg.proxy_write_timeout_ms, 5000);
    ck_assert_uint_eq(cfg.proxy_read_timeout_ms, 0);
    ck_assert(cfg.enable_grpc_gateway);
    ck_assert(!cfg.experimental_initial_corrupt_check);
    ck_assert_int_eq(cfg.experimental_compaction_batch_limit, 1000);
    ck_assert_int_eq(cfg.experimental_watch_progress_notify_interval_ns, 600000000000LL);
    ck_assert_int_eq(cfg.experimental_warning_apply_duration_ns, 100000000LL);
    ck_assert(!cfg.force_new_cluster && !cfg.unsafe_no_fsync);
    ck_assert(!config_is_set(&cfg, "name"));
    ck_assert(!config_is_set(&cfg, "no-such-flag"));
    /* the capnslog deprecation line etcd prints on stderr */
    ck_assert(has_note(
        "[WARNING] Deprecated '--logger=capnslog' flag is set; use '--logger=zap' flag instead"));
}
END_TEST

START_TEST(test_flag_forms)
{
    ck_assert_int_eq(parse("--name", "n1", "-data-dir=/tmp/x", "--snapshot-count=3",
                           "-heartbeat-interval", "50", "--election-timeout=500", "--enable-v2",
                           "--strict-reconfig-check=false", "--experimental-initial-corrupt-check",
                           "--peer-auto-tls=true", "--max-concurrent-streams", "100",
                           "--quota-backend-bytes", "53248", "--grpc-keepalive-min-time=1m30s",
                           "--backend-batch-interval", "1.5s", "--initial-cluster-token", "new",
                           "--max-txn-ops", "0x10", "--initial-advertise-peer-urls",
                           "http://localhost:2380", "--initial-cluster",
                           "n1=http://localhost:2380"),
                     0);
    ck_assert_str_eq(cfg.name, "n1");
    ck_assert_str_eq(cfg.data_dir, "/tmp/x");
    ck_assert_uint_eq(cfg.snapshot_count, 3);
    ck_assert_uint_eq(cfg.heartbeat_interval_ms, 50);
    ck_assert_uint_eq(cfg.election_timeout_ms, 500);
    ck_assert(cfg.enable_v2);
    ck_assert(!cfg.strict_reconfig_check);
    ck_assert(cfg.experimental_initial_corrupt_check);
    ck_assert(cfg.peer_auto_tls);
    ck_assert_uint_eq(cfg.max_concurrent_streams, 100);
    ck_assert_int_eq(cfg.quota_backend_bytes, 53248);
    ck_assert_int_eq(cfg.grpc_keepalive_min_time_ns, 90000000000LL);
    ck_assert_int_eq(cfg.backend_batch_interval_ns, 1500000000LL);
    ck_assert_str_eq(cfg.initial_cluster_token, "new");
    ck_assert_uint_eq(cfg.max_txn_ops, 16); /* Go's base-0 integers */
    ck_assert(config_is_set(&cfg, "name"));
    ck_assert(config_is_set(&cfg, "enable-v2"));
    ck_assert(!config_is_set(&cfg, "wal-dir"));

    /* Go's literal rules (each checked against etcd 3.4.23) */
    ck_assert_int_eq(parse("--snapshot-count=1_000", "--max-txn-ops=0x_1f", "--max-wals", "0b101",
                           "--max-snapshots", "0o17", "--heartbeat-interval", "010",
                           "--election-timeout", "0_1750", "--quota-backend-bytes=-0x10"),
                     0);
    ck_assert_uint_eq(cfg.snapshot_count, 1000);
    ck_assert_uint_eq(cfg.max_txn_ops, 31);
    ck_assert_uint_eq(cfg.max_wals, 5);
    ck_assert_uint_eq(cfg.max_snapshots, 15);
    ck_assert_uint_eq(cfg.heartbeat_interval_ms, 8);
    ck_assert_uint_eq(cfg.election_timeout_ms, 1000);
    ck_assert_int_eq(cfg.quota_backend_bytes, -16);
    ck_assert_int_eq(parse("--snapshot-count=_1"), CONFIG_ERR_USAGE);
    ck_assert_int_eq(parse("--max-txn-ops=1__0"), CONFIG_ERR_USAGE);
    ck_assert_int_eq(parse("--max-txn-ops=10_"), CONFIG_ERR_USAGE);
    ck_assert_int_eq(parse("--snapshot-count=+5"), CONFIG_ERR_USAGE);
    ck_assert_int_eq(parse("--heartbeat-interval=08"), CONFIG_ERR_USAGE);
    ck_assert_int_eq(parse("--enable-v2=tRUE"), CONFIG_ERR_USAGE);
    ck_assert_int_eq(parse("--enable-v2=TRUE", "--pre-vote=T", "--grpc-keepalive-min-time=.5s",
                           "--grpc-keepalive-interval=5.s", "--grpc-keepalive-timeout=1h1h"),
                     0);
    ck_assert_int_eq(cfg.grpc_keepalive_min_time_ns, 500000000);
    ck_assert_int_eq(cfg.grpc_keepalive_interval_ns, 5000000000LL);
    ck_assert_int_eq(cfg.grpc_keepalive_timeout_ns, 7200000000000LL);

    /* "--" ends the flags; what follows is an argument, which etcd refuses */
    ck_assert_int_eq(parse("--name", "x", "--", "--bogus"), CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "'--bogus' is not a valid flag");
    /* a boolean never takes the next word */
    ck_assert_int_eq(parse("--enable-v2", "false"), CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "'false' is not a valid flag");
    ck_assert_int_eq(parse("extra"), CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "'extra' is not a valid flag");
    /* a value may start with '-' */
    ck_assert_int_eq(parse("--auto-compaction-retention", "-1"), 0);
    ck_assert_str_eq(cfg.auto_compaction_retention, "-1");
}
END_TEST

START_TEST(test_url_lists)
{
    ck_assert_int_eq(
        parse("--listen-peer-urls",
              "https://127.0.0.1:20003, https://127.0.0.1:20000,https://127.0.0.1:20000",
              "--listen-client-urls", "http://localhost:20000,https://localhost:20000",
              "--advertise-client-urls", "HTTP://localhost:20000", "--initial-advertise-peer-urls",
              "unix://etcd.unix:1", "--initial-cluster", "e1=unix://etcd.unix:1", "--name", "e1"),
        0);
    ck_assert_uint_eq(cfg.listen_peer_urls.n, 3); /* sorted, duplicates kept */
    ck_assert_str_eq(cfg.listen_peer_urls.v[0], "https://127.0.0.1:20000");
    ck_assert_str_eq(cfg.listen_peer_urls.v[1], "https://127.0.0.1:20000");
    ck_assert_str_eq(cfg.listen_peer_urls.v[2], "https://127.0.0.1:20003");
    ck_assert_uint_eq(cfg.listen_client_urls.n, 2);
    ck_assert_str_eq(cfg.advertise_client_urls.v[0], "http://localhost:20000");
    ck_assert_int_eq(parse("--listen-client-urls", "http://0.0.0.0:0", "--advertise-client-urls",
                           "http://0.0.0.0:0", "--listen-peer-urls", "http://[::1]:2380"),
                     0);
    ck_assert_int_eq(
        parse("--cipher-suites",
              "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,"
              "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,"
              "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
              "--host-whitelist", "b,a,b", "--log-outputs", "stderr"),
        0);
    ck_assert_uint_eq(cfg.cipher_suites.n, 6);
    ck_assert_str_eq(cfg.cipher_suites.v[0],
                     "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"); /* order kept */
    ck_assert_str_eq(config_cipher_openssl_name(cfg.cipher_suites.v[4]),
                     "ECDHE-RSA-CHACHA20-POLY1305");
    ck_assert_uint_eq(cfg.host_whitelist.n, 2);
    ck_assert_str_eq(cfg.host_whitelist.v[0], "a");
    ck_assert_int_eq(parse("--cipher-suites", "TLS_FOO"), CONFIG_ERR_FATAL);
    ck_assert_int_eq(config_exit_status(CONFIG_ERR_FATAL), 1);
    ck_assert_str_eq(cfg.errmsg, "unexpected TLS cipher suite \"TLS_FOO\"");
    ck_assert_ptr_null(config_cipher_openssl_name("nope"));
    ck_assert_int_eq(parse("--cors", "*"), 0);
    ck_assert_str_eq(cfg.cors.v[0], "*");
    ck_assert_int_eq(parse("--cors", "http://a.example:1"), 0);
    ck_assert_str_eq(cfg.cors.v[0], "http://a.example:1");
}
END_TEST

/* Command-line errors: etcd prints these + usage and exits 2. */
START_TEST(test_usage_errors_match_etcd)
{
    static const struct {
        const char *a, *b;
        const char *msg;
    } cases[] = {
        {"--bogus", NULL, "flag provided but not defined: -bogus"},
        {"--name", NULL, "flag needs an argument: -name"},
        {"--snapshot-count", "abc", "invalid value \"abc\" for flag -snapshot-count: parse error"},
        {"--snapshot-count=-1", NULL, "invalid value \"-1\" for flag -snapshot-count: parse error"},
        {"--snapshot-count", "99999999999999999999",
         "invalid value \"99999999999999999999\" for flag -snapshot-count: value out of range"},
        {"--listen-client-urls", "ftp://127.0.0.1:42379",
         "invalid value \"ftp://127.0.0.1:42379\" for flag -listen-client-urls: URL scheme must be "
         "http, https, unix, or unixs: ftp://127.0.0.1:42379"},
        {"--listen-client-urls", "http://127.0.0.1",
         "invalid value \"http://127.0.0.1\" for flag -listen-client-urls: URL address does not "
         "have the form \"host:port\": http://127.0.0.1"},
        {"--listen-peer-urls", "http://127.0.0.1:1/p",
         "invalid value \"http://127.0.0.1:1/p\" for flag -listen-peer-urls: URL must not contain "
         "a path: http://127.0.0.1:1/p"},
        {"--initial-cluster-state", "bogus",
         "invalid value \"bogus\" for flag -initial-cluster-state: invalid value"},
        {"--proxy", "maybe", "invalid value \"maybe\" for flag -proxy: invalid value"},
        {"--enable-v2=maybe", NULL, "invalid boolean value \"maybe\" for -enable-v2: parse error"},
        {"--grpc-keepalive-min-time", "5",
         "invalid value \"5\" for flag -grpc-keepalive-min-time: parse error"},
        {"--backend-batch-interval", "5x",
         "invalid value \"5x\" for flag -backend-batch-interval: parse error"},
        {"--max-concurrent-streams", "-1",
         "invalid value \"-1\" for flag -max-concurrent-streams: strconv.ParseUint: parsing "
         "\"-1\": invalid syntax"},
        {"--max-concurrent-streams", "99999999999",
         "invalid value \"99999999999\" for flag -max-concurrent-streams: strconv.ParseUint: "
         "parsing \"99999999999\": value out of range"},
        {"--listen-peer-urls", "127.0.0.1:43380",
         "invalid value \"127.0.0.1:43380\" for flag -listen-peer-urls: parse \"127.0.0.1:43380\": "
         "first path segment in URL cannot contain colon"},
        {"--listen-peer-urls", "localhost:2380",
         "invalid value \"localhost:2380\" for flag -listen-peer-urls: URL scheme must be http, "
         "https, unix, or unixs: localhost:2380"},
        {"--listen-peer-urls", "http://[::1",
         "invalid value \"http://[::1\" for flag -listen-peer-urls: parse \"http://[::1\": missing "
         "']' in host"},
        {"--listen-peer-urls", "://x:1",
         "invalid value \"://x:1\" for flag -listen-peer-urls: parse \"://x:1\": missing protocol "
         "scheme"},
        {"--listen-peer-urls", "http://a b:1",
         "invalid value \"http://a b:1\" for flag -listen-peer-urls: parse \"http://a b:1\": "
         "invalid character \" \" in host name"},
        {"---x", NULL, "bad flag syntax: ---x"},
        {"-=x", NULL, "bad flag syntax: -=x"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = cases[i].b ? parse(cases[i].a, cases[i].b) : parse(cases[i].a);
        ck_assert_msg(rc == CONFIG_ERR_USAGE, "%s: rc %d", cases[i].a, rc);
        ck_assert_str_eq(cfg.errmsg, cases[i].msg);
        ck_assert_int_eq(config_exit_status(rc), 2);
    }
}
END_TEST

/* Validation errors: "error verifying flags, <msg>. See 'etcd --help'.", exit 1. */
START_TEST(test_validation_errors_match_etcd)
{
    ck_assert_int_eq(parse("--heartbeat-interval", "300", PEERS), CONFIG_ERR_INVALID);
    ck_assert_str_eq(
        cfg.errmsg,
        "--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]");
    ck_assert_int_eq(parse("--heartbeat-interval", "0", PEERS), CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "--heartbeat-interval must be >0 (set to 0ms)");
    ck_assert_int_eq(parse("--election-timeout", "0", PEERS), CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "--election-timeout must be >0 (set to 0ms)");
    ck_assert_int_eq(parse("--election-timeout", "60000", PEERS), CONFIG_ERR_INVALID);
    ck_assert_str_eq(
        cfg.errmsg, "--election-timeout[60000ms] is too long, and should be set less than 50000ms");
    ck_assert_int_eq(parse("--listen-client-urls", "http://127.0.0.1:42379"), CONFIG_ERR_INVALID);
    ck_assert_str_eq(
        cfg.errmsg,
        "--advertise-client-urls is required when --listen-client-urls is set explicitly");
    ck_assert_int_eq(parse("--listen-client-urls", "http://example.com:42379",
                           "--advertise-client-urls", "http://127.0.0.1:42379"),
                     CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "expected IP in URL for binding (http://example.com:42379)");
    ck_assert_int_eq(parse("--auto-compaction-mode", "bogus", PEERS), CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "unknown auto-compaction-mode \"bogus\"");
    ck_assert_int_eq(
        parse("--discovery-srv", "example.com", "--initial-cluster", "foo=http://127.0.0.1:42380"),
        CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "multiple discovery or bootstrap flags are set. Choose one of "
                                 "\"initial-cluster\", \"discovery\" or \"discovery-srv\"");
    ck_assert_int_eq(parse("--logger", "bogus", PEERS), CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "unknown logger option \"bogus\"");
    ck_assert_int_eq(parse("--log-level", "bogus", PEERS), CONFIG_ERR_LOG_LEVEL);
    ck_assert_str_eq(cfg.errmsg, "unknown level \"bogus\"");
    ck_assert_int_eq(config_exit_status(CONFIG_ERR_LOG_LEVEL), 2); /* etcd panics: status 2 */
    ck_assert_int_eq(parse("--logger", "zap", "--log-level", "bogus"), CONFIG_ERR_LOG_LEVEL);
    ck_assert_int_eq(parse("--log-outputs", "stderr,stdout"), CONFIG_ERR_INVALID);
    ck_assert_str_eq(
        cfg.errmsg,
        "--logger=capnslog supports only 1 value in '--log-outputs', got [\"stderr\" \"stdout\"]");
    ck_assert_int_eq(parse("--log-outputs", "/tmp/x.log"), CONFIG_ERR_INVALID);
    ck_assert_str_eq(
        cfg.errmsg,
        "unknown log-output \"/tmp/x.log\" (only supports \"default\", \"stderr\", \"stdout\")");
    ck_assert_int_eq(parse("--logger", "zap", "--log-outputs", "default,stderr"),
                     CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "multi logoutput for \"default\" is not supported yet");
    ck_assert_int_eq(parse("--logger", "zap", "--log-outputs", "stderr,stdout,/tmp/x.log"), 0);
    /* the deprecated --log-output, as etcd 3.4 treats it */
    ck_assert_int_eq(parse("--log-output", "stdout", "--log-outputs", "stdout"),
                     CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "'--log-output=[\"stdout\"]' and '--log-outputs=[\"stdout\"]' are "
                                 "incompatible; only set --log-outputs");
    ck_assert_int_eq(parse("--log-output", "stdout", "--log-outputs", "stderr"), 0);
    ck_assert_str_eq(cfg.log_outputs.v[0], "stderr");
    ck_assert(has_note("[WARNING] Deprecated '--log-output' flag is set to [\"stdout\"]"));
    ck_assert_int_eq(parse("--log-output", "stdout"), 0);
    ck_assert_str_eq(cfg.log_outputs.v[0], "default"); /* only a warning */
    ck_assert_int_eq(parse("--logger", "zap", "--log-output", "stdout,/tmp/x.log"), 0);
    ck_assert_uint_eq(cfg.log_outputs.n, 2);
    ck_assert(has_note("'--log-output' flag has been deprecated! Please use '--log-outputs'!"));
    ck_assert_int_eq(parse("--log-output", "stdout,stderr", "--log-outputs", "stdout,stderr"),
                     CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg,
                     "both '--log-output' and '--log-outputs' are set; only set '--log-outputs'");
    ck_assert_int_eq(parse("--logger", "zap", "--log-output", "", "--log-outputs", ""),
                     CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "either '--log-output' or '--log-outputs' flag must be set");
    ck_assert_int_eq(parse("--initial-advertise-peer-urls", "http://:2380"), CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "--initial-advertise-peer-urls \"http://:2380\" must be "
                                 "\"host:port\" (unexpected empty host (http://:2380))");
    ck_assert_int_eq(parse("--experimental-enable-lease-checkpoint-persist"), CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "setting experimental-enable-lease-checkpoint-persist requires "
                                 "experimental-enable-lease-checkpoint");
    ck_assert_int_eq(parse("--debug"), 0);
    ck_assert(has_note("[WARNING] Deprecated '--debug' flag is set to true with inconsistent "
                       "'--log-level=info' flag"));
    ck_assert_int_eq(parse("--log-package-levels", "etcdmain=DEBUG"), 0);
    ck_assert(has_note("[WARNING] Deprecated '--log-package-levels=etcdmain=DEBUG' flag is set; "
                       "use '--logger=zap' flag instead"));
    ck_assert_int_eq(parse("--experimental-enable-lease-checkpoint"), 0);
    ck_assert(has_note("checkpointing is enabled without persistence"));
    ck_assert_int_eq(config_exit_status(CONFIG_ERR_INVALID), 1);
}
END_TEST

START_TEST(test_env_and_precedence)
{
    char *env1[] = {"PATH=/bin",
                    "ETCD_NAME=fromenv",
                    "ETCD_SNAPSHOT_COUNT=7",
                    "ETCD_ENABLE_V2=true",
                    "ETCD_UNSUPPORTED_ARCH=amd64",
                    "ETCD_FOO_BAR=1",
                    "ETCD_DATA_DIR=",
                    NULL};
    ck_assert_int_eq(parse_env(env1, "--heartbeat-interval", "10", (char *)NULL), 0);
    ck_assert_str_eq(cfg.name, "fromenv");
    ck_assert_str_eq(cfg.data_dir, "fromenv.etcd"); /* empty variables are skipped */
    ck_assert_uint_eq(cfg.snapshot_count, 7);
    ck_assert(cfg.enable_v2);
    ck_assert_uint_eq(cfg.heartbeat_interval_ms, 10);
    ck_assert(config_is_set(&cfg, "name"));
    ck_assert(has_note("recognized and used environment variable ETCD_NAME=fromenv"));
    ck_assert(
        has_note("Wpkg/flags\tunrecognized environment variable ETCD_UNSUPPORTED_ARCH=amd64"));
    ck_assert(has_note("unrecognized environment variable ETCD_FOO_BAR=1"));
    /* the initial cluster follows the name from the environment too */
    ck_assert_str_eq(cfg.initial_cluster, "fromenv=http://localhost:2380");

    /* a flag and its variable both set: etcd refuses (fatal, exit 1) */
    char *env2[] = {"ETCD_NAME=bar", NULL};
    ck_assert_int_eq(parse_env(env2, "--name", "foo", (char *)NULL), CONFIG_ERR_ENV_CONFLICT);
    ck_assert_str_eq(cfg.errmsg,
                     "conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding "
                     "command-line flag (either unset environment variable or disable flag)");
    ck_assert_int_eq(config_exit_status(CONFIG_ERR_ENV_CONFLICT), 1);

    char *env3[] = {"ETCD_SNAPSHOT_COUNT=abc", NULL};
    ck_assert_int_eq(parse_env(env3, (char *)NULL), CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "invalid value \"abc\" for ETCD_SNAPSHOT_COUNT: parse error");
    char *env4[] = {"ETCD_ENABLE_V2=maybe", NULL};
    ck_assert_int_eq(parse_env(env4, (char *)NULL), CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "invalid value \"maybe\" for ETCD_ENABLE_V2: parse error");
    char *env5[] = {"ETCD_HEARTBEAT_INTERVAL=300", NULL};
    ck_assert_int_eq(parse_env(env5, (char *)NULL), CONFIG_ERR_INVALID);
    ck_assert_str_eq(
        cfg.errmsg,
        "--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]");
    /* env counts as "set": listen-client-urls from env needs advertise too */
    char *env6[] = {"ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:1", NULL};
    ck_assert_int_eq(parse_env(env6, (char *)NULL), CONFIG_ERR_INVALID);
}
END_TEST

START_TEST(test_derived_values)
{
    ck_assert_int_eq(parse("--name", "foo", "--initial-advertise-peer-urls",
                           "http://127.0.0.1:2,http://127.0.0.1:1"),
                     0);
    ck_assert_str_eq(cfg.initial_cluster, "foo=http://127.0.0.1:1,foo=http://127.0.0.1:2");
    ck_assert_str_eq(cfg.data_dir, "foo.etcd");
    /* an explicit initial cluster is kept */
    ck_assert_int_eq(
        parse("--name", "foo", "--initial-cluster", "foo=http://localhost:2380,b=http://h:1"), 0);
    ck_assert_str_eq(cfg.initial_cluster, "foo=http://localhost:2380,b=http://h:1");
    /* discovery drops the default initial cluster */
    ck_assert_int_eq(parse("--discovery", "https://discovery.example/x"), 0);
    ck_assert_str_eq(cfg.initial_cluster, "");
    /* snapshot-count 0 means the default */
    ck_assert_int_eq(parse("--snapshot-count", "0"), 0);
    ck_assert_uint_eq(cfg.snapshot_count, 100000);
    /* in v2 proxy mode the default advertise-client-urls stays */
    ck_assert_int_eq(parse("--proxy", "on", "--listen-client-urls", "http://127.0.0.1:1"), 0);
    ck_assert_uint_eq(cfg.advertise_client_urls.n, 1);
    /* quota notes */
    ck_assert_int_eq(parse("--quota-backend-bytes", "-1"), 0);
    ck_assert(has_note("disabling backend quota"));
    ck_assert_int_eq(parse("--quota-backend-bytes", "9000000000"), 0);
    ck_assert(has_note("backend quota 9000000000 exceeds maximum recommended quota 8589934592"));
    /* legacy flags are accepted with a warning */
    ck_assert_int_eq(parse("-v", "--peer-heartbeat-interval"), 0);
    ck_assert(has_note("flag \"-v\" is no longer supported - ignoring."));
}
END_TEST

START_TEST(test_commands)
{
    ck_assert_int_eq(parse("gateway", "--endpoints=http://localhost:20000", "start"), 0);
    ck_assert_int_eq(cfg.command, CONFIG_CMD_GATEWAY);
    ck_assert_int_eq(parse("grpc-proxy", "start", "--cert", "x"), 0);
    ck_assert_int_eq(cfg.command, CONFIG_CMD_GRPC_PROXY);
    ck_assert_int_eq(parse("--version"), 0);
    ck_assert_int_eq(cfg.command, CONFIG_CMD_VERSION);
    ck_assert_int_eq(parse("--name", "x", "-h", "--bogus"), 0); /* help stops parsing */
    ck_assert_int_eq(cfg.command, CONFIG_CMD_HELP);
    ck_assert_int_eq(parse("--help"), 0);
    ck_assert_int_eq(cfg.command, CONFIG_CMD_HELP);
    ck_assert_int_eq(parse("--version", "extra"), CONFIG_ERR_INVALID);
}
END_TEST

START_TEST(test_check_implemented)
{
    static const char *const impl[] = {"name", "data-dir", "listen-client-urls",
                                       "advertise-client-urls", NULL};
    ck_assert_int_eq(parse("--name", "a", "--data-dir", "/tmp/d"), 0);
    ck_assert_int_eq(config_check_implemented(&cfg, impl), 0);
    ck_assert_int_eq(parse("--name", "a", "--enable-v2"), 0);
    ck_assert_int_eq(config_check_implemented(&cfg, impl), CONFIG_ERR_UNIMPLEMENTED);
    ck_assert_str_eq(cfg.errmsg,
                     "--enable-v2 (set in the command line) is not implemented by metcd yet");
    char *env[] = {"ETCD_PRE_VOTE=true", NULL};
    ck_assert_int_eq(parse_env(env, (char *)NULL), 0);
    ck_assert_int_eq(config_check_implemented(&cfg, impl), CONFIG_ERR_UNIMPLEMENTED);
    ck_assert_str_eq(
        cfg.errmsg,
        "--pre-vote (set by environment variable ETCD_PRE_VOTE) is not implemented by metcd yet");
    /* legacy ignored flags and defaults never count */
    ck_assert_int_eq(parse("-v"), 0);
    ck_assert_int_eq(config_check_implemented(&cfg, impl), 0);
    ck_assert_int_eq(config_check_implemented(&cfg, NULL), 0);
}
END_TEST

static char *report(int rc, int *status)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *status = config_report(&cfg, rc, f);
    fclose(f);
    return buf;
}

START_TEST(test_report_shapes)
{
    int st;
    ck_assert_int_eq(parse("--heartbeat-interval", "300", PEERS), CONFIG_ERR_INVALID);
    char *out = report(CONFIG_ERR_INVALID, &st);
    ck_assert_int_eq(st, 1);
    ck_assert_msg(
        strlen(out) > 27 &&
            strcmp(out + 26,
                   " E | etcdmain: error verifying flags, --election-timeout[1000ms] should be at "
                   "least as 5 times as --heartbeat-interval[300ms]. See 'etcd --help'.\n") == 0,
        "got %s", out);
    free(out);
    ck_assert_int_eq(parse("--bogus"), CONFIG_ERR_USAGE);
    out = report(CONFIG_ERR_USAGE, &st);
    ck_assert_int_eq(st, 2);
    const char *want = "flag provided but not defined: -bogus\nUsage:\n\n  etcd [flags]\n";
    ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "got %s", out);
    free(out);
    ck_assert_int_eq(parse("--listen-client-urls", "http://127.0.0.1:42379"), CONFIG_ERR_INVALID);
    out = report(CONFIG_ERR_INVALID, &st);
    ck_assert_ptr_nonnull(
        strstr(out, "E | etcdmain: When listening on specific address(es), this etcd process must "
                    "advertise accessible url(s) to each connected client.\n"));
    free(out);
    char *env[] = {"ETCD_NAME=bar", NULL};
    ck_assert_int_eq(parse_env(env, "--name", "foo", (char *)NULL), CONFIG_ERR_ENV_CONFLICT);
    out = report(CONFIG_ERR_ENV_CONFLICT, &st);
    ck_assert_int_eq(st, 1);
    ck_assert_ptr_nonnull(
        strstr(out, " C | pkg/flags: conflicting environment variable \"ETCD_NAME\""));
    free(out);
    ck_assert_int_eq(parse("--log-level", "x"), CONFIG_ERR_LOG_LEVEL);
    out = report(CONFIG_ERR_LOG_LEVEL, &st);
    ck_assert_int_eq(st, 2);
    ck_assert_str_eq(out, "panic: unknown level \"x\"\n");
    free(out);
    /* with --logger zap the verification failure is one JSON warning line
     * (observed: {"level":"warn","ts":"...","caller":"etcdmain/etcd.go:66",
     * "msg":"failed to verify flags","error":"--election-timeout[1000ms] ..."}) */
    ck_assert_int_eq(parse("--logger", "zap", "--heartbeat-interval", "300", PEERS),
                     CONFIG_ERR_INVALID);
    out = report(CONFIG_ERR_INVALID, &st);
    ck_assert_int_eq(st, 1);
    ck_assert_msg(
        strncmp(out, "{\"level\":\"warn\",\"ts\":\"", 22) == 0 &&
            strstr(out, "\",\"caller\":\"etcdmain/etcd.go:66\",\"msg\":\"failed to verify flags\","
                        "\"error\":\"--election-timeout[1000ms] should be at least as 5 times as "
                        "--heartbeat-interval[300ms]\"}\n") != NULL,
        "got %s", out);
    free(out);
    /* a logging error happens before etcd's zap logger exists: text line */
    ck_assert_int_eq(
        parse("--logger", "zap", "--log-output", "stdout,stderr", "--log-outputs", "stdout,stderr"),
        CONFIG_ERR_INVALID);
    out = report(CONFIG_ERR_INVALID, &st);
    ck_assert_ptr_nonnull(
        strstr(out, " E | etcdmain: error verifying flags, both '--log-output' and '--log-outputs' "
                    "are set; only set '--log-outputs'. See 'etcd --help'.\n"));
    free(out);
    out = report(CONFIG_OK, &st);
    ck_assert_int_eq(st, 0);
    free(out);
    ck_assert_str_eq(config_strerror(CONFIG_ERR_USAGE), "invalid command line");
    ck_assert_str_eq(config_strerror(12345), "unknown config error");
}
END_TEST

START_TEST(test_notes_logged_through_logger)
{
    ck_assert_int_eq(parse("--name", "n9"), 0);
    ck_assert(has_note("Wetcdmain\tno data-dir provided, using default data-dir ./n9.etcd"));
    ck_assert(has_note("Ietcdmain\tetcd Version: 3.4.23"));
    char path[] = "/tmp/metcd-notes-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    struct metcd_log *lg;
    ck_assert_int_eq(log_open_fd(&lg, LOG_FMT_CAPNSLOG, LOG_LVL_INFO, fd), 0);
    int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2); /* the raw [WARNING] lines */
    config_log_notes(&cfg, lg);
    dup2(saved, 2);
    close(saved);
    close(devnull);
    log_close(lg);
    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, " I | etcdmain: etcd Version: 3.4.23\n"));
    ck_assert_ptr_nonnull(
        strstr(buf, " W | etcdmain: no data-dir provided, using default data-dir ./n9.etcd\n"));
    ck_assert_ptr_null(strstr(buf, "[WARNING]"));
    close(fd);
    unlink(path);
}
END_TEST

START_TEST(test_durations)
{
    int64_t ns;
    ck_assert_int_eq(config_parse_duration("0", &ns), 0);
    ck_assert_int_eq(ns, 0);
    ck_assert_int_eq(config_parse_duration("2h45m", &ns), 0);
    ck_assert_int_eq(ns, 9900000000000LL);
    ck_assert_int_eq(config_parse_duration("-1.5s", &ns), 0);
    ck_assert_int_eq(ns, -1500000000LL);
    ck_assert_int_eq(config_parse_duration("300us", &ns), 0);
    ck_assert_int_eq(ns, 300000);
    ck_assert_int_eq(config_parse_duration("10ns", &ns), 0);
    ck_assert_int_eq(ns, 10);
    ck_assert_int_eq(config_parse_duration("5", &ns), -1);
    ck_assert_int_eq(config_parse_duration("", &ns), -1);
    ck_assert_int_eq(config_parse_duration("1d", &ns), -1);
    ck_assert_int_eq(config_parse_duration("s", &ns), -1);
    ck_assert_int_eq(config_parse_duration(".s", &ns), -1);
    ck_assert_int_eq(config_parse_duration("99999999999h", &ns), -1);
}
END_TEST

START_TEST(test_oom_every_allocation_unwinds)
{
    /* A rich command line; each allocation fails in turn. */
    char *env[] = {"ETCD_PRE_VOTE=true", "ETCD_FOO=1", NULL};
    char *argv[] = {"etcd",
                    "--name",
                    "n1",
                    "--listen-peer-urls",
                    "http://127.0.0.1:2,http://127.0.0.1:1",
                    "--initial-advertise-peer-urls",
                    "http://127.0.0.1:1",
                    "--cipher-suites",
                    "TLS_AES_128_GCM_SHA256",
                    "--host-whitelist",
                    "a,b",
                    "--log-output",
                    "stdout",
                    "-v",
                    NULL};
    int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;
    bool saw_ok = false;
    for (long i = 0; i < 2000 && !saw_ok; i++) {
        struct config c;
        metcd_mem_fail_after(-1);
        ck_assert_int_eq(config_init(&c), 0);
        metcd_mem_fail_after(i);
        int rc = config_parse(&c, argc, argv, env);
        metcd_mem_fail_after(-1);
        ck_assert_msg(rc == 0 || rc == CONFIG_ERR_NOMEM, "i=%ld rc=%d %s", i, rc, c.errmsg);
        saw_ok = rc == 0;
        config_free(&c);
        config_free(&c);
    }
    ck_assert(saw_ok);
    for (long i = 0; i < 500; i++) {
        struct config c;
        metcd_mem_fail_after(i);
        int rc = config_init(&c);
        metcd_mem_fail_after(-1);
        if (rc == 0) {
            config_free(&c);
            break;
        }
        ck_assert_int_eq(rc, CONFIG_ERR_NOMEM);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config/config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_defaults_are_etcds);
    tcase_add_test(tc, test_flag_forms);
    tcase_add_test(tc, test_url_lists);
    tcase_add_test(tc, test_usage_errors_match_etcd);
    tcase_add_test(tc, test_validation_errors_match_etcd);
    tcase_add_test(tc, test_env_and_precedence);
    tcase_add_test(tc, test_derived_values);
    tcase_add_test(tc, test_commands);
    tcase_add_test(tc, test_check_implemented);
    tcase_add_test(tc, test_report_shapes);
    tcase_add_test(tc, test_notes_logged_through_logger);
    tcase_add_test(tc, test_durations);
    tcase_add_test(tc, test_oom_every_allocation_unwinds);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
