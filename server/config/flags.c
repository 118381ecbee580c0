/* server/config/flags.c - the table of etcd 3.4.23's server flags (names,
 * defaults, types: facts from etcdmain/config.go and `etcd --help`), and the
 * --help / --version / usage output. The help wording is ours. */
#include "server/config/config_internal.h"

#include <stddef.h>
#include <string.h>

#define OFF(f) offsetof(struct config, f)

static const char *const states[] = {"new", "existing", NULL};
static const char *const fallbacks[] = {"proxy", "exit", NULL};
static const char *const proxies[] = {"off", "readonly", "on", NULL};

/* Kept sorted by name: etcd visits flags (and so environment variables) in
 * lexical order, and cfg_flag_find bisects. */
const struct cfg_flag cfg_flags[] = {
    {"advertise-client-urls", CT_URLS, OFF(advertise_client_urls), "http://localhost:2379", NULL,
     "", G_CLUSTER, NULL,
     "Client URLs of this member that are announced to the cluster and to clients."},
    {"auth-token", CT_STR, OFF(auth_token), "simple", NULL, NULL, G_AUTH, NULL,
     "Auth token type for the v3 API and its options: 'simple' or 'jwt,...'."},
    {"auth-token-ttl", CT_UINT, OFF(auth_token_ttl), "300", NULL, NULL, G_AUTH, NULL,
     "Lifetime of a simple auth token, in seconds."},
    {"auto-compaction-mode", CT_STR, OFF(auto_compaction_mode), "periodic", NULL, NULL, G_CLUSTER,
     NULL,
     "How auto-compaction-retention is read: 'periodic' (a duration, hours when no unit is "
     "given) or 'revision' (a number of revisions)."},
    {"auto-compaction-retention", CT_STR, OFF(auto_compaction_retention), "0", NULL, NULL,
     G_CLUSTER, NULL, "How much history auto compaction keeps; 0 turns it off."},
    {"auto-tls", CT_BOOL, OFF(auto_tls), "false", NULL, NULL, G_SECURITY, NULL,
     "Serve clients over TLS with a self-signed certificate made at start."},
    {"backend-batch-interval", CT_DUR, OFF(backend_batch_interval_ns), "0", NULL, NULL, G_MEMBER,
     "", "Longest time a backend write transaction stays open before it is committed."},
    {"backend-batch-limit", CT_INT, OFF(backend_batch_limit), "0", NULL, NULL, G_MEMBER, NULL,
     "Most writes a backend transaction takes before it is committed."},
    {"bcrypt-cost", CT_UINT, OFF(bcrypt_cost), "10", NULL, NULL, G_AUTH, NULL,
     "bcrypt cost for password hashes (4 to 31)."},
    {"cert-file", CT_STR, OFF(cert_file), "", NULL, NULL, G_SECURITY, NULL,
     "TLS certificate for the client port."},
    {"cipher-suites", CT_STRS, OFF(cipher_suites), "", NULL, NULL, G_SECURITY, NULL,
     "Comma-separated TLS cipher suites (Go names) for clients and peers; empty means the "
     "library's defaults."},
    {"client-cert-allowed-hostname", CT_STR, OFF(client_cert_allowed_hostname), "", NULL, NULL,
     G_SECURITY, NULL, "Hostname a client certificate must carry."},
    {"client-cert-auth", CT_BOOL, OFF(client_cert_auth), "false", NULL, NULL, G_SECURITY, NULL,
     "Require and verify client certificates."},
    {"client-crl-file", CT_STR, OFF(client_crl_file), "", NULL, NULL, G_SECURITY, NULL,
     "Certificate revocation list checked for client certificates."},
    {"cluster-active-size", CT_IGNORED, 0, "", NULL, NULL, G_NONE, NULL, NULL},
    {"cluster-remove-delay", CT_IGNORED, 0, "", NULL, NULL, G_NONE, NULL, NULL},
    {"cluster-sync-interval", CT_IGNORED, 0, "", NULL, NULL, G_NONE, NULL, NULL},
    {"config", CT_IGNORED, 0, "", NULL, NULL, G_NONE, NULL, NULL},
    {"config-file", CT_STR, OFF(config_file), "", NULL, NULL, G_HIDDEN, NULL,
     "YAML configuration file; when given, other flags and ETCD_* variables are ignored."},
    {"cors", CT_URLS, OFF(cors), "*", NULL, "*", G_SECURITY, NULL,
     "Comma-separated origins allowed by CORS ('*' or empty: any)."},
    {"data-dir", CT_STR, OFF(data_dir), "", NULL, NULL, G_MEMBER, "${name}.etcd",
     "Directory holding the member's data."},
    {"debug", CT_BOOL, OFF(debug), "false", NULL, NULL, G_DEPRECATED, NULL,
     "Debug-level logging (prefer --log-level=debug)."},
    {"discovery", CT_STR, OFF(discovery), "", NULL, NULL, G_CLUSTER, NULL,
     "Discovery service URL used to bootstrap the cluster."},
    {"discovery-fallback", CT_SELECT, OFF(discovery_fallback), "proxy", fallbacks, NULL, G_CLUSTER,
     NULL, "What to do when discovery fails: 'exit' or 'proxy' (v2 only)."},
    {"discovery-proxy", CT_STR, OFF(discovery_proxy), "", NULL, NULL, G_CLUSTER, NULL,
     "HTTP proxy for discovery service traffic."},
    {"discovery-srv", CT_STR, OFF(discovery_srv), "", NULL, NULL, G_CLUSTER, NULL,
     "DNS domain whose SRV records bootstrap the cluster."},
    {"discovery-srv-name", CT_STR, OFF(discovery_srv_name), "", NULL, NULL, G_CLUSTER, NULL,
     "Suffix of the SRV name queried for discovery."},
    {"election-timeout", CT_UINT, OFF(election_timeout_ms), "1000", NULL, NULL, G_MEMBER, NULL,
     "Election timeout, in milliseconds."},
    {"enable-grpc-gateway", CT_BOOL, OFF(enable_grpc_gateway), "true", NULL, NULL, G_HIDDEN, NULL,
     "Serve the JSON gateway on the client port."},
    {"enable-pprof", CT_BOOL, OFF(enable_pprof), "false", NULL, NULL, G_MONITOR, NULL,
     "Serve profiling data under /debug/pprof/ on the client URLs."},
    {"enable-v2", CT_BOOL, OFF(enable_v2), "false", NULL, NULL, G_CLUSTER, NULL,
     "Serve the v2 API."},
    {"experimental-backend-bbolt-freelist-type", CT_STR,
     OFF(experimental_backend_bbolt_freelist_type), "", NULL, NULL, G_EXPERIMENTAL, "array",
     "Freelist type of the backend database ('array' or 'map')."},
    {"experimental-compaction-batch-limit", CT_INT, OFF(experimental_compaction_batch_limit),
     "1000", NULL, NULL, G_EXPERIMENTAL, NULL, "Most revisions removed per compaction batch."},
    {"experimental-corrupt-check-time", CT_DUR, OFF(experimental_corrupt_check_time_ns), "0", NULL,
     NULL, G_EXPERIMENTAL, "0s", "Period of the cluster-wide corruption check (0: off)."},
    {"experimental-enable-lease-checkpoint", CT_BOOL, OFF(experimental_enable_lease_checkpoint),
     "false", NULL, NULL, G_EXPERIMENTAL, NULL,
     "Leader checkpoints remaining lease TTLs to the other members."},
    {"experimental-enable-lease-checkpoint-persist", CT_BOOL,
     OFF(experimental_enable_lease_checkpoint_persist), "false", NULL, NULL, G_EXPERIMENTAL, NULL,
     "Persist lease checkpoints (needs --experimental-enable-lease-checkpoint)."},
    {"experimental-enable-v2v3", CT_STR, OFF(experimental_enable_v2v3), "", NULL, NULL,
     G_EXPERIMENTAL, NULL, "Serve v2 requests from the v3 store under this prefix."},
    {"experimental-initial-corrupt-check", CT_BOOL, OFF(experimental_initial_corrupt_check),
     "false", NULL, NULL, G_EXPERIMENTAL, NULL,
     "Compare this member's data hash with its peers' before serving."},
    {"experimental-peer-skip-client-san-verification", CT_BOOL,
     OFF(experimental_peer_skip_client_san_verification), "false", NULL, NULL, G_EXPERIMENTAL, NULL,
     "Do not check the SAN of peer client certificates."},
    {"experimental-warning-apply-duration", CT_DUR, OFF(experimental_warning_apply_duration_ns),
     "100ms", NULL, NULL, G_EXPERIMENTAL, NULL, "Applies slower than this are logged."},
    {"experimental-watch-progress-notify-interval", CT_DUR,
     OFF(experimental_watch_progress_notify_interval_ns), "10m", NULL, NULL, G_EXPERIMENTAL, NULL,
     "Period of watch progress notifications."},
    {"force", CT_IGNORED, 0, "", NULL, NULL, G_NONE, NULL, NULL},
    {"force-new-cluster", CT_BOOL, OFF(force_new_cluster), "false", NULL, NULL, G_UNSAFE, NULL,
     "Restart as a one-member cluster from the existing data."},
    {"grpc-keepalive-interval", CT_DUR, OFF(grpc_keepalive_interval_ns), "2h", NULL, NULL, G_MEMBER,
     NULL, "Period of server pings on idle client connections (0: never)."},
    {"grpc-keepalive-min-time", CT_DUR, OFF(grpc_keepalive_min_time_ns), "5s", NULL, NULL, G_MEMBER,
     NULL, "Shortest interval allowed between client pings."},
    {"grpc-keepalive-timeout", CT_DUR, OFF(grpc_keepalive_timeout_ns), "20s", NULL, NULL, G_MEMBER,
     NULL, "Wait for a ping answer before closing the connection (0: forever)."},
    {"heartbeat-interval", CT_UINT, OFF(heartbeat_interval_ms), "100", NULL, NULL, G_MEMBER, NULL,
     "Heartbeat period, in milliseconds."},
    {"host-whitelist", CT_USTRS, OFF(host_whitelist), "*", NULL, NULL, G_SECURITY, NULL,
     "Comma-separated Host header values accepted without TLS ('*' or empty: any)."},
    {"initial-advertise-peer-urls", CT_URLS, OFF(initial_advertise_peer_urls),
     "http://localhost:2380", NULL, "", G_CLUSTER, NULL,
     "Peer URLs of this member announced to the rest of the cluster."},
    {"initial-cluster", CT_STR, OFF(initial_cluster), "default=http://localhost:2380", NULL, NULL,
     G_CLUSTER, NULL, "Bootstrap membership: name=peerURL,name=peerURL,..."},
    {"initial-cluster-state", CT_SELECT, OFF(initial_cluster_state), "new", states, NULL, G_CLUSTER,
     NULL, "'new' to bootstrap a cluster, 'existing' to join one."},
    {"initial-cluster-token", CT_STR, OFF(initial_cluster_token), "etcd-cluster", NULL, NULL,
     G_CLUSTER, NULL,
     "Token mixed into member and cluster IDs, so that separate clusters never share IDs."},
    {"initial-election-tick-advance", CT_BOOL, OFF(initial_election_tick_advance), "true", NULL,
     NULL, G_MEMBER, NULL, "Fast-forward election ticks at boot to elect sooner."},
    {"key-file", CT_STR, OFF(key_file), "", NULL, NULL, G_SECURITY, NULL,
     "TLS key for the client port."},
    {"listen-client-urls", CT_URLS, OFF(listen_client_urls), "http://localhost:2379", NULL, "",
     G_MEMBER, NULL, "URLs the member accepts client traffic on."},
    {"listen-metrics-urls", CT_URLS, OFF(listen_metrics_urls), "", NULL, "", G_MONITOR, NULL,
     "Extra URLs serving only /metrics and /health."},
    {"listen-peer-urls", CT_URLS, OFF(listen_peer_urls), "http://localhost:2380", NULL, "",
     G_MEMBER, NULL, "URLs the member accepts peer traffic on."},
    {"log-level", CT_STR, OFF(log_level), "info", NULL, NULL, G_LOGGING, NULL,
     "Least severe level logged: debug, info, warn, error, panic or fatal."},
    {"log-output", CT_USTRS, OFF(log_output), "default", NULL, NULL, G_HIDDEN, NULL,
     "Deprecated spelling of --log-outputs."},
    {"log-outputs", CT_USTRS, OFF(log_outputs), "default", NULL, NULL, G_LOGGING, NULL,
     "Where logs go: 'stderr', 'stdout', 'default' or file paths (comma-separated)."},
    {"log-package-levels", CT_STR, OFF(log_package_levels), "", NULL, NULL, G_DEPRECATED, NULL,
     "Per-package levels, e.g. 'etcdmain=CRITICAL,etcdserver=DEBUG'."},
    {"logger", CT_STR, OFF(logger), "capnslog", NULL, NULL, G_LOGGING, NULL,
     "'capnslog' for etcd 3.4's text lines or 'zap' for JSON lines."},
    {"max-concurrent-streams", CT_UINT32, OFF(max_concurrent_streams), "4294967295", NULL, NULL,
     G_MEMBER, "math.MaxUint32", "Most concurrent streams per client connection."},
    {"max-request-bytes", CT_UINT, OFF(max_request_bytes), "1572864", NULL, NULL, G_MEMBER, NULL,
     "Largest client request accepted, in bytes."},
    {"max-result-buffer", CT_IGNORED, 0, "", NULL, NULL, G_NONE, NULL, NULL},
    {"max-retry-attempts", CT_IGNORED, 0, "", NULL, NULL, G_NONE, NULL, NULL},
    {"max-snapshots", CT_UINT, OFF(max_snapshots), "5", NULL, NULL, G_MEMBER, NULL,
     "Snapshot files kept (0: all)."},
    {"max-txn-ops", CT_UINT, OFF(max_txn_ops), "128", NULL, NULL, G_MEMBER, NULL,
     "Most operations in one transaction."},
    {"max-wals", CT_UINT, OFF(max_wals), "5", NULL, NULL, G_MEMBER, NULL,
     "WAL files kept (0: all)."},
    {"metrics", CT_STR, OFF(metrics), "basic", NULL, NULL, G_MONITOR, NULL,
     "Metrics detail: 'basic' or 'extensive' (adds histograms)."},
    {"name", CT_STR, OFF(name), "default", NULL, NULL, G_MEMBER, NULL,
     "Human-readable name of this member."},
    {"peer-auto-tls", CT_BOOL, OFF(peer_auto_tls), "false", NULL, NULL, G_SECURITY, NULL,
     "Peer TLS with a self-signed certificate when no peer cert/key is given."},
    {"peer-cert-allowed-cn", CT_STR, OFF(peer_cert_allowed_cn), "", NULL, NULL, G_SECURITY, NULL,
     "Common Name a peer's client certificate must carry."},
    {"peer-cert-allowed-hostname", CT_STR, OFF(peer_cert_allowed_hostname), "", NULL, NULL,
     G_SECURITY, NULL, "Hostname a peer's client certificate must carry."},
    {"peer-cert-file", CT_STR, OFF(peer_cert_file), "", NULL, NULL, G_SECURITY, NULL,
     "TLS certificate for the peer port."},
    {"peer-client-cert-auth", CT_BOOL, OFF(peer_client_cert_auth), "false", NULL, NULL, G_SECURITY,
     NULL, "Require and verify peer client certificates."},
    {"peer-crl-file", CT_STR, OFF(peer_crl_file), "", NULL, NULL, G_SECURITY, NULL,
     "Certificate revocation list checked for peer certificates."},
    {"peer-election-timeout", CT_IGNORED, 0, "", NULL, NULL, G_NONE, NULL, NULL},
    {"peer-heartbeat-interval", CT_IGNORED, 0, "", NULL, NULL, G_NONE, NULL, NULL},
    {"peer-key-file", CT_STR, OFF(peer_key_file), "", NULL, NULL, G_SECURITY, NULL,
     "TLS key for the peer port."},
    {"peer-trusted-ca-file", CT_STR, OFF(peer_trusted_ca_file), "", NULL, NULL, G_SECURITY, NULL,
     "CA bundle that verifies peer certificates."},
    {"pre-vote", CT_BOOL, OFF(pre_vote), "false", NULL, NULL, G_CLUSTER, NULL,
     "Run raft's pre-vote phase before elections."},
    {"proxy", CT_SELECT, OFF(proxy), "off", proxies, NULL, G_PROXY, NULL,
     "v2 proxy mode: 'off', 'readonly' or 'on'."},
    {"proxy-dial-timeout", CT_UINT, OFF(proxy_dial_timeout_ms), "1000", NULL, NULL, G_PROXY, NULL,
     "Proxy dial timeout, in milliseconds."},
    {"proxy-failure-wait", CT_UINT, OFF(proxy_failure_wait_ms), "5000", NULL, NULL, G_PROXY, NULL,
     "How long a failed endpoint stays failed, in milliseconds."},
    {"proxy-read-timeout", CT_UINT, OFF(proxy_read_timeout_ms), "0", NULL, NULL, G_PROXY, NULL,
     "Proxy read timeout, in milliseconds."},
    {"proxy-refresh-interval", CT_UINT, OFF(proxy_refresh_interval_ms), "30000", NULL, NULL,
     G_PROXY, NULL, "Endpoint refresh period, in milliseconds."},
    {"proxy-write-timeout", CT_UINT, OFF(proxy_write_timeout_ms), "5000", NULL, NULL, G_PROXY, NULL,
     "Proxy write timeout, in milliseconds."},
    {"quota-backend-bytes", CT_INT, OFF(quota_backend_bytes), "0", NULL, NULL, G_MEMBER, NULL,
     "Backend size that raises the NOSPACE alarm (0: the default quota)."},
    {"retry-interval", CT_IGNORED, 0, "", NULL, NULL, G_NONE, NULL, NULL},
    {"snapshot", CT_IGNORED, 0, "", NULL, NULL, G_NONE, NULL, NULL},
    {"snapshot-count", CT_UINT, OFF(snapshot_count), "100000", NULL, NULL, G_MEMBER, NULL,
     "Applied entries between two snapshots."},
    {"strict-reconfig-check", CT_BOOL, OFF(strict_reconfig_check), "true", NULL, NULL, G_CLUSTER,
     NULL, "Refuse membership changes that would lose quorum."},
    {"test.coverprofile", CT_IGNORED, 0, "", NULL, NULL, G_NONE, NULL, NULL},
    {"test.outputdir", CT_IGNORED, 0, "", NULL, NULL, G_NONE, NULL, NULL},
    {"trusted-ca-file", CT_STR, OFF(trusted_ca_file), "", NULL, NULL, G_SECURITY, NULL,
     "CA bundle that verifies client certificates."},
    {"unsafe-no-fsync", CT_BOOL, OFF(unsafe_no_fsync), "false", NULL, NULL, G_HIDDEN, NULL,
     "Never fsync (loses data on a crash)."},
    {"v", CT_IGNORED, 0, "", NULL, NULL, G_NONE, NULL, NULL},
    {"version", CT_BOOL, OFF(version), "false", NULL, NULL, G_HIDDEN, NULL,
     "Print the version and exit."},
    {"vv", CT_IGNORED, 0, "", NULL, NULL, G_NONE, NULL, NULL},
    {"wal-dir", CT_STR, OFF(wal_dir), "", NULL, NULL, G_MEMBER, NULL,
     "Separate directory for the write-ahead log."},
};

const size_t cfg_nflags = sizeof(cfg_flags) / sizeof(cfg_flags[0]);

long cfg_flag_find(const char *name)
{
    size_t lo = 0, hi = cfg_nflags;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, cfg_flags[mid].name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

size_t config_flag_count(void)
{
    return cfg_nflags;
}

const char *config_flag_name(size_t i)
{
    return i < cfg_nflags ? cfg_flags[i].name : NULL;
}

void config_print_usage(FILE *out)
{
    fputs("Usage:\n"
          "\n"
          "  etcd [flags]\n"
          "    Start a metcd member (etcd 3.4 compatible).\n"
          "\n"
          "  etcd --version\n"
          "    Print version information.\n"
          "\n"
          "  etcd -h | --help\n"
          "    Print this help.\n"
          "\n"
          "  etcd --config-file\n"
          "    Read the configuration from a YAML file; other flags and ETCD_* environment "
          "variables are then ignored.\n"
          "\n"
          "  etcd gateway\n"
          "    (etcd's TCP gateway: not provided by metcd.)\n"
          "\n"
          "  etcd grpc-proxy\n"
          "    (etcd's gRPC proxy: not provided by metcd.)\n"
          "\n",
          out);
}

static const char *const group_titles[] = {
    [G_MEMBER] = "Member",
    [G_CLUSTER] = "Clustering",
    [G_SECURITY] = "Security",
    [G_AUTH] = "Auth",
    [G_MONITOR] = "Profiling and Monitoring",
    [G_LOGGING] = "Logging",
    [G_PROXY] = "v2 Proxy",
    [G_EXPERIMENTAL] = "Experimental feature",
    [G_UNSAFE] = "Unsafe feature",
    [G_DEPRECATED] = "To be deprecated",
};

void config_print_help(FILE *out)
{
    config_print_usage(out);
    for (int g = G_MEMBER; g <= G_DEPRECATED; g++) {
        fprintf(out, "\n%s:\n", group_titles[g]);
        for (size_t i = 0; i < cfg_nflags; i++) {
            const struct cfg_flag *f = &cfg_flags[i];
            if ((int)f->group != g)
                continue;
            fprintf(out, "  --%s '%s'\n    %s\n", f->name, f->shown ? f->shown : f->def, f->help);
        }
        if (g == G_UNSAFE)
            fputs("\nUnsafe flags can break the guarantees of the consensus protocol.\n", out);
    }
    fputs("\nEvery flag can also be given as an environment variable: ETCD_ followed by the\n"
          "flag name in upper case with '-' turned into '_' (--snapshot-count:\n"
          "ETCD_SNAPSHOT_COUNT). Command-line flags and the same variable must not both be set.\n",
          out);
}

void config_print_version(FILE *out)
{
    /* Tools parse "etcd Version: X"; keep etcd's four lines. */
    fprintf(out, "etcd Version: %s\n", CONFIG_SERVER_VERSION);
    fputs("Git SHA: metcd\n", out);
    fputs("Go Version: none (metcd is written in C)\n", out);
#if defined(__x86_64__)
    fputs("Go OS/Arch: linux/amd64\n", out);
#elif defined(__aarch64__)
    fputs("Go OS/Arch: linux/arm64\n", out);
#else
    fputs("Go OS/Arch: linux/unknown\n", out);
#endif
}
