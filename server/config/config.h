/* server/config/config.h - the member's configuration: etcd 3.4.23's flags,
 * ETCD_* environment variables and --config-file YAML.
 *
 * Facts followed (etcd 3.4.23 etcdmain/config.go, embed/config.go, pkg/flags,
 * and the real binary's behaviour, observed): flag names, defaults and
 * meanings; `-flag` and `--flag`, `--flag value` and `--flag=value`; booleans
 * take no value (only `--flag=false`); parsing stops at the first non-flag
 * argument, which is then an error; env variables ETCD_<NAME_UPPER> fill flags
 * not given on the command line, an env variable for a flag that *was* given
 * is fatal ("conflicting environment variable ... is shadowed"), and unknown
 * ETCD_* variables only produce a warning; with --config-file (or
 * ETCD_CONFIG_FILE) every other flag and env variable is ignored.
 *
 * What main() calls, in order:
 *
 *     struct config cfg;
 *     int rc = config_init(&cfg);                         // defaults
 *     if (rc == 0) rc = config_parse(&cfg, argc, argv, environ);
 *     if (rc != 0) exit(config_report(&cfg, rc, stderr)); // etcd's texts and status
 *     if (cfg.command == CONFIG_CMD_HELP)    { config_print_help(stdout); exit(0); }
 *     if (cfg.command == CONFIG_CMD_VERSION) { config_print_version(stdout); exit(0); }
 *     if (cfg.command != CONFIG_CMD_SERVE)   refuse (gateway / grpc-proxy);
 *     log_open_config(&lg, &cfg, errmsg, len);             // log.h
 *     config_log_notes(&cfg, lg);                          // lines gathered while parsing
 *     rc = config_check_implemented(&cfg, implemented_flag_names);
 *     if (rc != 0) exit(config_report(&cfg, rc, stderr));
 *     rc = ids_cluster_from_config(&cluster, &cfg);        // ids.h
 *     if (rc != 0) exit(config_report(&cfg, rc, stderr));
 *     ... run the member ...
 *     ids_cluster_free(&cluster); log_close(lg); config_free(&cfg);
 */
#ifndef METCD_SERVER_CONFIG_CONFIG_H
#define METCD_SERVER_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct metcd_log;

enum config_err {
    CONFIG_OK = 0,
    CONFIG_ERR_NOMEM = -1600,
    /* Command-line syntax or a malformed flag value. etcd prints the message
     * and its usage summary on stderr and exits 2. */
    CONFIG_ERR_USAGE = -1601,
    /* A value that parses but is not acceptable, a bad ETCD_* value, or a
     * stray argument: etcd logs "error verifying flags, <msg>. See 'etcd
     * --help'." and exits 1. */
    CONFIG_ERR_INVALID = -1602,
    /* The config file cannot be read or is not YAML we understand (exit 1). */
    CONFIG_ERR_FILE = -1603,
    /* ETCD_X set for a flag also given on the command line (fatal, exit 1). */
    CONFIG_ERR_ENV_CONFLICT = -1604,
    /* A flag the user set explicitly that the member does not implement. */
    CONFIG_ERR_UNIMPLEMENTED = -1605,
    /* --log-level not one etcd knows: etcd panics, exit status 2. */
    CONFIG_ERR_LOG_LEVEL = -1606,
    /* Bootstrap checks on --initial-cluster (see ids.h), logged at C, exit 1. */
    CONFIG_ERR_CLUSTER = -1607,
    /* Other checks etcd makes while starting (e.g. an unknown cipher suite):
     * logged at C level by etcdmain, exit 1. */
    CONFIG_ERR_FATAL = -1608,
};

/* Static text for a config_err (never NULL). */
const char *config_strerror(int err);

enum config_command {
    CONFIG_CMD_SERVE = 0,  /* `etcd [flags]` */
    CONFIG_CMD_HELP,       /* -h / --help */
    CONFIG_CMD_VERSION,    /* --version */
    CONFIG_CMD_GATEWAY,    /* `etcd gateway ...` (not supported by metcd) */
    CONFIG_CMD_GRPC_PROXY, /* `etcd grpc-proxy ...` (not supported by metcd) */
};

/* Where a value came from. */
enum config_source {
    CONFIG_SRC_DEFAULT = 0,
    CONFIG_SRC_FLAG,
    CONFIG_SRC_ENV,
    CONFIG_SRC_FILE,
};

/* A list of strings, owned by the config. URL lists are sorted (duplicates
 * kept, as etcd's UniqueURLs hands them to the server); host-whitelist and
 * log-outputs are sorted and unique; cipher suites keep the user's order. */
struct config_list {
    size_t n;
    char **v;
};

/* Durations are nanoseconds (Go time.Duration). */
struct config {
    enum config_command command;
    char *config_file;

    /* Member */
    char *name;
    char *data_dir; /* "" until config_parse derives "<name>.etcd" */
    char *wal_dir;
    uint64_t snapshot_count;
    uint64_t heartbeat_interval_ms;
    uint64_t election_timeout_ms;
    bool initial_election_tick_advance;
    struct config_list listen_peer_urls;
    struct config_list listen_client_urls;
    uint64_t max_snapshots;
    uint64_t max_wals;
    int64_t quota_backend_bytes;
    int64_t backend_batch_interval_ns;
    int64_t backend_batch_limit;
    uint64_t max_txn_ops;
    uint64_t max_request_bytes;
    uint32_t max_concurrent_streams;
    int64_t grpc_keepalive_min_time_ns;
    int64_t grpc_keepalive_interval_ns;
    int64_t grpc_keepalive_timeout_ns;

    /* Clustering */
    struct config_list initial_advertise_peer_urls;
    char *initial_cluster;
    char *initial_cluster_state; /* "new" | "existing" */
    char *initial_cluster_token;
    struct config_list advertise_client_urls;
    char *discovery;
    char *discovery_fallback; /* "proxy" | "exit" */
    char *discovery_proxy;
    char *discovery_srv;
    char *discovery_srv_name;
    bool strict_reconfig_check;
    bool pre_vote;
    char *auto_compaction_retention;
    char *auto_compaction_mode; /* "periodic" | "revision" */
    bool enable_v2;

    /* Security */
    char *cert_file;
    char *key_file;
    bool client_cert_auth;
    char *client_crl_file;
    char *client_cert_allowed_hostname;
    char *trusted_ca_file;
    bool auto_tls;
    char *peer_cert_file;
    char *peer_key_file;
    bool peer_client_cert_auth;
    char *peer_trusted_ca_file;
    char *peer_cert_allowed_cn;
    char *peer_cert_allowed_hostname;
    bool peer_auto_tls;
    char *peer_crl_file;
    struct config_list cipher_suites;
    struct config_list cors;
    struct config_list host_whitelist;
    bool experimental_peer_skip_client_san_verification;

    /* Auth */
    char *auth_token;
    uint64_t bcrypt_cost;
    uint64_t auth_token_ttl;

    /* Profiling and monitoring */
    bool enable_pprof;
    char *metrics; /* "basic" | "extensive" */
    struct config_list listen_metrics_urls;

    /* Logging */
    char *logger; /* "capnslog" | "zap" */
    struct config_list log_outputs;
    struct config_list log_output; /* deprecated --log-output */
    char *log_level;
    bool debug;
    char *log_package_levels;

    /* v2 proxy */
    char *proxy; /* "off" | "readonly" | "on" */
    uint64_t proxy_failure_wait_ms;
    uint64_t proxy_refresh_interval_ms;
    uint64_t proxy_dial_timeout_ms;
    uint64_t proxy_write_timeout_ms;
    uint64_t proxy_read_timeout_ms;

    /* Gateway */
    bool enable_grpc_gateway;

    /* Experimental */
    bool experimental_initial_corrupt_check;
    int64_t experimental_corrupt_check_time_ns;
    char *experimental_enable_v2v3;
    char *experimental_backend_bbolt_freelist_type;
    bool experimental_enable_lease_checkpoint;
    bool experimental_enable_lease_checkpoint_persist;
    int64_t experimental_compaction_batch_limit;
    int64_t experimental_watch_progress_notify_interval_ns;
    int64_t experimental_warning_apply_duration_ns;

    /* Unsafe */
    bool unsafe_no_fsync;
    bool force_new_cluster;

    bool version;

    /* Bookkeeping (read-only for callers). */
    unsigned char *source;    /* per flag index: enum config_source */
    struct config_list notes; /* "<L><pkg>\t<message>" lines to log, see config_log_notes */
    bool logging_valid;       /* --logger & co. passed validation (etcd's logger exists) */
    char errmsg[1024];        /* details of the last error */
};

/* Fills cfg with etcd 3.4.23's defaults. 0 or CONFIG_ERR_NOMEM (then cfg is
 * already freed). Every string and list in cfg is owned by cfg. */
int config_init(struct config *cfg);

/* Frees everything cfg owns; idempotent. */
void config_free(struct config *cfg);

/* The whole of etcd's startup parsing: subcommand, flags (argv[0] is the
 * program name), then either the config file or the environment (envp: a
 * NULL-terminated "K=V" array, borrowed; NULL means none), derived defaults
 * and validation. On error returns a config_err with cfg->errmsg set. */
int config_parse(struct config *cfg, int argc, char *const argv[], char *const envp[]);

/* The steps of config_parse, exposed for tests and tools. */
int config_parse_args(struct config *cfg, int argc, char *const argv[]);
int config_apply_env(struct config *cfg, char *const envp[]);
int config_load_file(struct config *cfg, const char *path);
/* Derived values: data dir "<name>.etcd", --initial-cluster from --name and
 * the advertised peer URLs, advertise-client-urls dropped when
 * listen-client-urls was set without it. */
int config_finalize(struct config *cfg);
int config_validate(struct config *cfg);

/* Sets one flag from text, as `--name=value` would (source says from where).
 * Returns 0, CONFIG_ERR_USAGE (unknown flag or malformed value: errmsg says
 * which, in Go flag's words) or CONFIG_ERR_NOMEM. */
int config_set(struct config *cfg, const char *name, const char *value, enum config_source source);

/* Explicitly set (flag, env or file)? false for unknown names. */
bool config_is_set(const struct config *cfg, const char *name);

/* Refuses any flag the user set explicitly that is not in `implemented`
 * (a NULL-terminated list of flag names, borrowed). Returns 0 or
 * CONFIG_ERR_UNIMPLEMENTED with errmsg naming the first such flag. */
int config_check_implemented(struct config *cfg, const char *const implemented[]);

/* Prints what etcd prints for err (message, usage or log line) on `out` and
 * returns the process exit status etcd uses for it (2 for usage errors and
 * bad log levels, 1 otherwise). */
int config_report(const struct config *cfg, int err, FILE *out);

/* Exit status etcd uses for an error code. */
int config_exit_status(int err);

/* Logs, through lg, the notes gathered while parsing (env variables used or
 * unrecognised, ignored legacy flags, config-file notice, quota warnings). */
void config_log_notes(const struct config *cfg, struct metcd_log *lg);

/* --help: etcd prints the short usage on stderr and the flag list on stdout
 * (exit 0); config_print_help prints both, ours in our words, with etcd's
 * flag names, defaults and groups. config_print_usage is the short usage that
 * config_report also prints after a command-line error. */
void config_print_help(FILE *out);
void config_print_usage(FILE *out);
/* --version lines: "etcd Version: 3.4.23", "Git SHA: ...", ... */
void config_print_version(FILE *out);

/* The server version metcd reports (etcd compatibility). */
#define CONFIG_SERVER_VERSION "3.4.23"
#define CONFIG_CLUSTER_VERSION "3.4"

/* Number of known flags, and the name of flag i (for iteration in tests). */
size_t config_flag_count(void);
const char *config_flag_name(size_t i);

/* Checks one URL as etcd's types.NewURLs does (Go's url.Parse errors, scheme
 * http/https/unix/unixs, "host:port", no path). Returns 0 or -1 with etcd's
 * message in errmsg. */
int config_url_check(const char *url, char *errmsg, size_t errlen);

/* OpenSSL name of a Go cipher-suite name accepted by --cipher-suites, or
 * NULL when etcd would refuse it (static string). */
const char *config_cipher_openssl_name(const char *go_name);

/* Parses a Go duration ("1h2m", "300ms", "0"). Returns 0 or -1. */
int config_parse_duration(const char *s, int64_t *ns);

#endif
