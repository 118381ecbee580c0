/* tests/unit/config/test_yaml.c - --config-file: etcd's sample-shaped file,
 * the YAML subset, errors with line numbers (texts observed from etcd 3.4.23
 * where etcd has them), and "the file wins over flags and env". */
#include "server/config/config.h"
#include "common/mem.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct config cfg;
static char path[128];

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    snprintf(path, sizeof(path), "/tmp/metcd-yaml-%d.yml", (int)getpid());
}

static void teardown(void)
{
    config_free(&cfg);
    unlink(path);
}

static int load_text(const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    config_free(&cfg);
    ck_assert_int_eq(config_init(&cfg), 0);
    char *argv[] = {"etcd", "--config-file", path, NULL};
    return config_parse(&cfg, 3, argv, NULL);
}

static bool has_note(const char *needle)
{
    for (size_t i = 0; i < cfg.notes.n; i++)
        if (strstr(cfg.notes.v[i], needle))
            return true;
    return false;
}

static const char *sample_path(void)
{
    static char p[512];
    const char *d = getenv("CONFIG_TEST_DATA");
    snprintf(p, sizeof(p), "%s/etcd-sample.yml", d ? d : ".");
    return p;
}

START_TEST(test_sample_file)
{
    ck_assert_int_eq(config_init(&cfg), 0);
    char *env[] = {"ETCD_NAME=ignored", "ETCD_SNAPSHOT_COUNT=abc", NULL};
    char *argv[] = {"etcd", "--config-file", (char *)sample_path(), "--name", "ignored-too", NULL};
    int rc = config_parse(&cfg, 5, argv, env);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, cfg.errmsg);
    ck_assert_str_eq(cfg.name, "default");
    ck_assert_str_eq(cfg.data_dir, "default.etcd");
    ck_assert_uint_eq(cfg.snapshot_count, 10000);
    ck_assert_uint_eq(cfg.heartbeat_interval_ms, 100);
    ck_assert_uint_eq(cfg.election_timeout_ms, 1000);
    ck_assert_str_eq(cfg.listen_peer_urls.v[0], "http://localhost:2380");
    ck_assert_str_eq(cfg.listen_client_urls.v[0], "http://localhost:2379");
    ck_assert_str_eq(cfg.advertise_client_urls.v[0], "http://localhost:2379");
    ck_assert_str_eq(cfg.cors.v[0], "*"); /* empty: default stays */
    ck_assert_str_eq(cfg.initial_cluster, "default=http://localhost:2380");
    ck_assert_str_eq(cfg.initial_cluster_token, "etcd-cluster");
    ck_assert_str_eq(cfg.initial_cluster_state, "new");
    ck_assert(!cfg.strict_reconfig_check);
    ck_assert(cfg.enable_pprof);
    ck_assert_str_eq(cfg.proxy, "off");
    ck_assert_str_eq(cfg.discovery_fallback, "proxy");
    ck_assert_uint_eq(cfg.proxy_refresh_interval_ms, 30000);
    ck_assert(!cfg.client_cert_auth && !cfg.auto_tls && !cfg.peer_auto_tls);
    ck_assert_str_eq(cfg.log_level, "debug");
    ck_assert_str_eq(cfg.logger, "zap");
    ck_assert_uint_eq(cfg.log_outputs.n, 1);
    ck_assert_str_eq(cfg.log_outputs.v[0], "stderr");
    ck_assert_str_eq(cfg.auto_compaction_mode, "periodic");
    ck_assert_str_eq(cfg.auto_compaction_retention, "1");
    ck_assert_uint_eq(cfg.cipher_suites.n, 2);
    ck_assert_str_eq(cfg.cipher_suites.v[1], "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
    ck_assert(config_is_set(&cfg, "logger"));
    ck_assert(!config_is_set(&cfg, "data-dir")); /* empty value */
    ck_assert(has_note("Loading server configuration from"));
    /* flags and env were ignored, as etcd does */
    ck_assert(!has_note("ETCD_NAME"));
}
END_TEST

START_TEST(test_config_file_from_env)
{
    ck_assert_int_eq(config_init(&cfg), 0);
    char envv[600];
    snprintf(envv, sizeof(envv), "ETCD_CONFIG_FILE=%s", sample_path());
    char *env[] = {envv, "ETCD_NAME=ignored", NULL};
    char *argv[] = {"etcd", NULL};
    ck_assert_int_eq(config_parse(&cfg, 1, argv, env), 0);
    ck_assert_str_eq(cfg.name, "default");
    ck_assert_str_eq(cfg.logger, "zap");
}
END_TEST

START_TEST(test_transport_security_and_lists)
{
    int rc = load_text("name: \"n1\"  # trailing comment\n"
                       "initial-cluster: n1=https://127.0.0.1:2380\n"
                       "initial-advertise-peer-urls: https://127.0.0.1:2380\n"
                       "listen-peer-urls: https://127.0.0.1:2380\n"
                       "listen-client-urls: 'https://127.0.0.1:2379,https://127.0.0.1:2378'\n"
                       "advertise-client-urls: https://127.0.0.1:2379,https://127.0.0.1:2378\n"
                       "client-transport-security:\n"
                       "    cert-file: /c/server.crt\n"
                       "    key-file: '/c/it''s.key'\n"
                       "    client-cert-auth: true\n"
                       "    trusted-ca-file: /c/ca.crt\n"
                       "    auto-tls: false\n"
                       "    crl-file: /c/revoke.crl\n"
                       "    allowed-hostname: client.example\n"
                       "peer-transport-security:\n"
                       "  cert-file: /p/peer.crt\n"
                       "  key-file: /p/peer.key\n"
                       "  client-cert-auth: yes\n"
                       "  trusted-ca-file: /p/ca.crt\n"
                       "  auto-tls: True\n"
                       "  allowed-cn: example.com\n"
                       "  allowed-hostname: example2.com\n"
                       "  crl-file: /p/x.crl\n"
                       "grpc-keepalive-min-time: 3000000000\n"
                       "grpc-keepalive-timeout: 60000000000\n"
                       "max-request-bytes: 0x100\n"
                       "log-outputs: []\n"
                       "logger: zap\n"
                       "host-whitelist: \"a,b\"\n"
                       "self-signed-cert-validity: 1\n");
    ck_assert_msg(rc == 0, "rc %d: %s", rc, cfg.errmsg);
    ck_assert_str_eq(cfg.name, "n1");
    ck_assert_str_eq(cfg.data_dir, "n1.etcd");
    ck_assert_uint_eq(cfg.listen_client_urls.n, 2);
    ck_assert_str_eq(cfg.listen_client_urls.v[0], "https://127.0.0.1:2378");
    ck_assert_uint_eq(cfg.advertise_client_urls.n, 2);
    ck_assert_str_eq(cfg.cert_file, "/c/server.crt");
    ck_assert_str_eq(cfg.key_file, "/c/it's.key");
    ck_assert(cfg.client_cert_auth);
    ck_assert_str_eq(cfg.trusted_ca_file, "/c/ca.crt");
    ck_assert_str_eq(cfg.client_crl_file, "/c/revoke.crl");
    ck_assert_str_eq(cfg.client_cert_allowed_hostname, "client.example");
    ck_assert_str_eq(cfg.peer_cert_file, "/p/peer.crt");
    ck_assert(cfg.peer_client_cert_auth);
    ck_assert(cfg.peer_auto_tls);
    ck_assert_str_eq(cfg.peer_cert_allowed_cn, "example.com");
    ck_assert_str_eq(cfg.peer_cert_allowed_hostname, "example2.com");
    ck_assert_str_eq(cfg.peer_crl_file, "/p/x.crl");
    ck_assert_int_eq(cfg.grpc_keepalive_min_time_ns, 3000000000LL); /* JSON number: ns */
    ck_assert_int_eq(cfg.grpc_keepalive_timeout_ns, 60000000000LL);
    ck_assert_uint_eq(cfg.max_request_bytes, 256);
    /* an empty list: etcd falls back to the deprecated log-output default */
    ck_assert_uint_eq(cfg.log_outputs.n, 1);
    ck_assert_str_eq(cfg.log_outputs.v[0], "default");
    ck_assert_uint_eq(cfg.host_whitelist.n, 2);
    ck_assert(config_is_set(&cfg, "peer-cert-allowed-cn"));
    ck_assert(has_note("unknown key \"self-signed-cert-validity\" ignored"));
    /* top-level TLS keys are not read by etcd from a file */
    ck_assert_int_eq(load_text("cert-file: /x.crt\npeer-auto-tls: true\n"), 0);
    ck_assert_str_eq(cfg.cert_file, "");
    ck_assert(!cfg.peer_auto_tls);
    ck_assert(has_note("unknown key \"cert-file\" ignored"));
}
END_TEST

START_TEST(test_syntax_errors_with_line_numbers)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"name: x\n\tfoo: 1\n", "error converting YAML to JSON: yaml: line 2: found a tab "
                                "character that violates indentation"},
        {"name: [a\n",
         "error converting YAML to JSON: yaml: line 1: did not find expected ',' or ']'"},
        {"# c\nname x\n",
         "error converting YAML to JSON: yaml: line 2: could not find expected ':'"},
        {"name: &a x\n", "error converting YAML to JSON: yaml: line 1: this YAML feature is not "
                         "supported in a metcd config file"},
        {"name: *a\n", "error converting YAML to JSON: yaml: line 1: this YAML feature is not "
                       "supported in a metcd config file"},
        {"name: !!str x\n", "error converting YAML to JSON: yaml: line 1: this YAML feature is not "
                            "supported in a metcd config file"},
        {"name: |\n  x\n", "error converting YAML to JSON: yaml: line 1: this YAML feature is not "
                           "supported in a metcd config file"},
        {"name: {a: b}\n", "error converting YAML to JSON: yaml: line 1: flow mappings are not "
                           "supported in a metcd config file"},
        {"name: 'x\n",
         "error converting YAML to JSON: yaml: line 1: found unexpected end of stream"},
        {"name: x\n  data-dir: y\n", "error converting YAML to JSON: yaml: line 2: mapping values "
                                     "are not allowed in this context"},
        {"name:\n  a: b\n", "error converting YAML to JSON: yaml: line 2: mapping values are not "
                            "allowed in this context"},
        {"peer-transport-security:\n  cert-file:\n    deeper: x\n",
         "error converting YAML to JSON: yaml: line 3: mapping values are not allowed in this "
         "context"},
        {"peer-transport-security: x\n",
         "error converting YAML to JSON: yaml: line 1: expected a mapping"},
        {"cipher-suites:\n  - [a]\n", "error converting YAML to JSON: yaml: line 2: nested "
                                      "collections are not supported in a metcd config file"},
        {"- a\n", "error converting YAML to JSON: yaml: line 1: did not find expected key"},
        {"name: a: b\n", "error converting YAML to JSON: yaml: line 1: mapping values are not "
                         "allowed in this context"},
        {"name: \"a\\q\"\n", "error converting YAML to JSON: yaml: line 1: found unknown escape "
                             "character while parsing a quoted scalar"},
        {"cipher-suites: [a,,b]\n",
         "error converting YAML to JSON: yaml: line 1: did not find expected node content"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = load_text(cases[i].text);
        ck_assert_msg(rc == CONFIG_ERR_FILE, "case %zu rc %d", i, rc);
        ck_assert_msg(strcmp(cfg.errmsg, cases[i].msg) == 0, "case %zu: %s", i, cfg.errmsg);
        ck_assert_int_eq(config_exit_status(rc), 1);
    }
}
END_TEST

START_TEST(test_value_errors_match_etcd)
{
    /* observed: etcd --config-file with `snapshot-count: "abc"` */
    ck_assert_int_eq(load_text("snapshot-count: \"abc\"\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg,
                     "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string "
                     "into Go struct field configYAML.snapshot-count of type uint64");
    ck_assert_int_eq(load_text("snapshot-count: -1\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg,
                     "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number "
                     "-1 into Go struct field configYAML.snapshot-count of type uint64");
    ck_assert_int_eq(load_text("enable-v2: 'true'\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg,
                     "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string "
                     "into Go struct field configYAML.enable-v2 of type bool");
    ck_assert_int_eq(load_text("name: [a, b]\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg,
                     "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array "
                     "into Go struct field configYAML.name of type string");
    /* observed: printed raw by etcd, exit 1 */
    ck_assert_int_eq(load_text("name: x\nlisten-peer-urls: ftp://x:1\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg, "unexpected error setting up listen-peer-urls: URL scheme must be "
                                 "http, https, unix, or unixs: ftp://x:1");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(config_report(&cfg, CONFIG_ERR_FILE, f), 1);
    fclose(f);
    ck_assert_str_eq(buf, "unexpected error setting up listen-peer-urls: URL scheme must be http, "
                          "https, unix, or unixs: ftp://x:1\n");
    free(buf);
    ck_assert_int_eq(load_text("proxy: maybe\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg, "unexpected error setting up proxyFlag: invalid value");
    ck_assert_int_eq(load_text("discovery-fallback: bogus\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg,
                     "unexpected error setting up discovery-fallback flag: invalid value");
    /* validated later, with etcd's message */
    ck_assert_int_eq(load_text("initial-cluster-state: bogus\n"), CONFIG_ERR_INVALID);
    ck_assert_str_eq(cfg.errmsg, "unexpected clusterState \"bogus\"");
    ck_assert_int_eq(load_text("heartbeat-interval: 300\n"), CONFIG_ERR_INVALID);
    ck_assert_str_eq(
        cfg.errmsg,
        "--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]");
    /* YAML 1.1 booleans and numbers are typed before Go sees them
     * (observed: etcd refuses `name: n` and `auto-compaction-retention: 1`) */
    ck_assert_int_eq(load_text("name: n\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg,
                     "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal bool "
                     "into Go struct field configYAML.name of type string");
    ck_assert_int_eq(load_text("auto-compaction-retention: 1\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg,
                     "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number "
                     "into Go struct field configYAML.auto-compaction-retention of type string");
    ck_assert_int_eq(load_text("grpc-keepalive-min-time: 5s\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(
        cfg.errmsg,
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go "
        "struct field configYAML.grpc-keepalive-min-time of type time.Duration");
    ck_assert_int_eq(load_text("listen-client-urls: [http://127.0.0.1:1]\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg,
                     "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array "
                     "into Go struct field configYAML.listen-client-urls of type string");
    ck_assert_int_eq(load_text("log-outputs: stderr\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg,
                     "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string "
                     "into Go struct field configYAML.log-outputs of type []string");
    ck_assert_int_eq(load_text("heartbeat-interval: 1.5\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg,
                     "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number "
                     "1.5 into Go struct field configYAML.heartbeat-interval of type uint");
    ck_assert_int_eq(load_text("max-concurrent-streams: 99999999999\n"), CONFIG_ERR_FILE);
    /* observed: Go prints the float in its shortest form */
    ck_assert_int_eq(load_text("snapshot-count: .5\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg,
                     "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number "
                     "0.5 into Go struct field configYAML.snapshot-count of type uint64");
    ck_assert_int_eq(load_text("snapshot-count: 1e30\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg,
                     "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number "
                     "1e+30 into Go struct field configYAML.snapshot-count of type uint64");
    ck_assert_int_eq(load_text("snapshot-count: -2.25e-7\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg,
                     "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number "
                     "-2.25e-7 into Go struct field configYAML.snapshot-count of type uint64");
    ck_assert_int_eq(load_text("snapshot-count: 1234567.5e3\n"), 0);
    ck_assert_uint_eq(cfg.snapshot_count, 1234567500);
    ck_assert_int_eq(load_text("snapshot-count: 1234.5\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg,
                     "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number "
                     "1234.5 into Go struct field configYAML.snapshot-count of type uint64");
    /* whole floats and '_' separators are YAML 1.1 numbers Go accepts (observed) */
    ck_assert_int_eq(load_text("quota-backend-bytes: 1e3\nsnapshot-count: 1_000\n"), 0);
    ck_assert_int_eq(cfg.quota_backend_bytes, 1000);
    ck_assert_uint_eq(cfg.snapshot_count, 1000);
    ck_assert_int_eq(load_text("quota-backend-bytes: -5\nmax-request-bytes: 010\n"), 0);
    ck_assert_int_eq(cfg.quota_backend_bytes, -5);
    ck_assert_uint_eq(cfg.max_request_bytes, 8); /* YAML 1.1 octal */
    /* a repeated key: the last one wins, as with Go's yaml (observed) */
    ck_assert_int_eq(load_text("name: x\nname: 'n'\n"), 0);
    ck_assert_str_eq(cfg.name, "n");
    ck_assert_int_eq(load_text("name: x\nname: ~\n"), 0); /* observed: back to the default */
    ck_assert_str_eq(cfg.name, "default");
    ck_assert(!config_is_set(&cfg, "name"));
    /* observed: errors inside a transport-security map name Go's nested path */
    ck_assert_int_eq(load_text("peer-transport-security:\n  client-cert-auth: 'true'\n"),
                     CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg, "error unmarshaling JSON: while decoding JSON: json: cannot "
                                 "unmarshal string into Go struct field "
                                 "securityConfig.peer-transport-security.client-cert-auth of type "
                                 "bool");
    ck_assert_int_eq(load_text("client-transport-security:\n  cert-file: [a]\n"), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg,
                     "error unmarshaling JSON: while decoding JSON: json: cannot "
                     "unmarshal array into Go struct field "
                     "securityConfig.client-transport-security.cert-file of type string");
    /* missing file */
    config_free(&cfg);
    ck_assert_int_eq(config_init(&cfg), 0);
    char *argv[] = {"etcd", "--config-file", "/nonexistent/metcd.yml", NULL};
    ck_assert_int_eq(config_parse(&cfg, 3, argv, NULL), CONFIG_ERR_FILE);
    /* observed: etcd's texts for these */
    ck_assert_str_eq(cfg.errmsg, "open /nonexistent/metcd.yml: no such file or directory");
    config_free(&cfg);
    ck_assert_int_eq(config_init(&cfg), 0);
    char *argv2[] = {"etcd", "--config-file", "/tmp", NULL};
    ck_assert_int_eq(config_parse(&cfg, 3, argv2, NULL), CONFIG_ERR_FILE);
    ck_assert_str_eq(cfg.errmsg, "read /tmp: is a directory");
}
END_TEST

START_TEST(test_misc_constructs)
{
    int rc = load_text("---\n"
                       "# only comments and blanks around\n"
                       "\n"
                       "'name': n#1   # the # in a value stays\n"
                       "data-dir: ~\n"
                       "wal-dir: null\n"
                       "cipher-suites: [ 'TLS_AES_128_GCM_SHA256' ,\"TLS_AES_256_GCM_SHA384\" ]\n"
                       "unknown-map:\n"
                       "  a: 1\n"
                       "  b: [x, y]\n"
                       "log-outputs:\n"
                       "- stderr\n"
                       "logger: zap\n"
                       "experimental-warning-apply-duration: 250000000\n"
                       "client-transport-security: {}\n"
                       "...\n"
                       "garbage after the document end: is ignored\n");
    ck_assert_msg(rc == 0, "rc %d: %s", rc, cfg.errmsg);
    ck_assert_str_eq(cfg.name, "n#1");
    ck_assert_str_eq(cfg.data_dir, "n#1.etcd");
    ck_assert_uint_eq(cfg.cipher_suites.n, 2);
    ck_assert_str_eq(cfg.cipher_suites.v[0], "TLS_AES_128_GCM_SHA256");
    ck_assert_str_eq(cfg.log_outputs.v[0], "stderr");
    ck_assert_int_eq(cfg.experimental_warning_apply_duration_ns, 250000000LL);
    ck_assert(has_note("unknown key \"unknown-map\" ignored"));
}
END_TEST

/* Mutated copies of the sample never crash the parser (run under ASan). */
START_TEST(test_mutations_never_crash)
{
    FILE *f = fopen(sample_path(), "r");
    ck_assert_ptr_nonnull(f);
    static char orig[8192], buf[8192];
    size_t n = fread(orig, 1, sizeof(orig) - 1, f);
    fclose(f);
    static const char alphabet[] = " \t\n:-#'\"[],{}&*!|>~0aZ";
    unsigned long x = 88172645463325252UL;
    for (int iter = 0; iter < 800; iter++) {
        memcpy(buf, orig, n);
        size_t len = n;
        int edits = 1 + iter % 8;
        for (int e = 0; e < edits; e++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t pos = (size_t)(x % len);
            char c = alphabet[(x >> 20) % (sizeof(alphabet) - 1)];
            if ((x >> 40) % 3 == 0 && len > 1) { /* delete */
                memmove(buf + pos, buf + pos + 1, len - pos - 1);
                len--;
            } else if ((x >> 40) % 3 == 1 && len + 1 < sizeof(buf)) { /* insert */
                memmove(buf + pos + 1, buf + pos, len - pos);
                buf[pos] = c;
                len++;
            } else {
                buf[pos] = c;
            }
        }
        buf[len] = '\0';
        int rc = load_text(buf);
        ck_assert_msg(rc == 0 || rc == CONFIG_ERR_FILE || rc == CONFIG_ERR_INVALID ||
                          rc == CONFIG_ERR_LOG_LEVEL || rc == CONFIG_ERR_FATAL,
                      "iter %d rc %d", iter, rc);
        ck_assert_uint_lt(strlen(cfg.errmsg), sizeof(cfg.errmsg));
    }
}
END_TEST

START_TEST(test_oom_unwinds)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("name: n1\nlisten-peer-urls: http://127.0.0.1:1\ncipher-suites: [\n "
          "TLS_AES_128_GCM_SHA256\n]\n"
          "peer-transport-security:\n  cert-file: x\n  weird: 1\nlog-outputs:\n  - "
          "stderr\nunknown: 1\n",
          f);
    fclose(f);
    char *argv[] = {"etcd", "--config-file", path, NULL};
    bool ok = false;
    for (long i = 0; i < 3000 && !ok; i++) {
        struct config c;
        ck_assert_int_eq(config_init(&c), 0);
        metcd_mem_fail_after(i);
        int rc = config_parse(&c, 3, argv, NULL);
        metcd_mem_fail_after(-1);
        ck_assert_msg(rc == 0 || rc == CONFIG_ERR_NOMEM, "i=%ld rc=%d %s", i, rc, c.errmsg);
        ok = rc == 0;
        config_free(&c);
    }
    ck_assert(ok);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config/yaml");
    TCase *tc = tcase_create("yaml");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sample_file);
    tcase_add_test(tc, test_config_file_from_env);
    tcase_add_test(tc, test_transport_security_and_lists);
    tcase_add_test(tc, test_syntax_errors_with_line_numbers);
    tcase_add_test(tc, test_value_errors_match_etcd);
    tcase_add_test(tc, test_misc_constructs);
    tcase_add_test(tc, test_mutations_never_crash);
    tcase_add_test(tc, test_oom_unwinds);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
