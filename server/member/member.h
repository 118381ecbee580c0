/* server/member/member.h - the metcd member: one process, one event loop
 * owning raft, the WAL, the MVCC store and the client services
 * (DESIGN.md "A write, end to end").
 *
 * This header is shared by the member's own files and main(); nothing
 * outside server/ includes it.
 */
#ifndef METCD_SERVER_MEMBER_H
#define METCD_SERVER_MEMBER_H

#include "backend/backend.h"
#include "mvcc/mvcc.h"
#include "raft/raft.h"
#include "server/rpc/rpc.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct event;

#define METCD_VERSION "3.4.23"        /* the etcd version metcd speaks */
#define METCD_CLUSTER_VERSION "3.4"

/* Log levels as etcd's capnslog letters. */
enum mlog_level { MLOG_DEBUG = 'D', MLOG_INFO = 'I', MLOG_NOTICE = 'N', MLOG_WARN = 'W',
                  MLOG_ERROR = 'E', MLOG_CRIT = 'C' };

/* Where log lines go: main() plugs the configured logger in. `pkg` is the
 * etcd package name the line belongs to ("etcdserver", "embed", ...). */
typedef void (*member_log_fn)(void *ctx, int level, const char *pkg, const char *msg);

/* One member of the initial cluster. */
typedef struct member_peer {
    uint64_t id;
    char *name;
    char **peer_urls;
    size_t n_peer_urls;
    bool learner;
} member_peer;

enum auto_compact_mode { AUTO_COMPACT_NONE = 0, AUTO_COMPACT_PERIODIC, AUTO_COMPACT_REVISION };

typedef struct member_options {
    const char *name;
    const char *data_dir;
    const char *wal_dir; /* NULL: <data_dir>/member/wal */
    /* client listeners, "http://host:port" */
    char *const *listen_client_urls;
    size_t n_listen_client_urls;
    char *const *advertise_client_urls;
    size_t n_advertise_client_urls;
    /* peer listeners, "http://host:port" or "unix://path" */
    char *const *listen_peer_urls;
    size_t n_listen_peer_urls;
    /* identity and bootstrap (ids derived as etcd derives them) */
    uint64_t member_id;
    uint64_t cluster_id;
    const member_peer *initial_cluster;
    size_t n_initial_cluster;
    /* raft */
    uint32_t heartbeat_ms;   /* etcd default 100 */
    uint32_t election_ms;    /* etcd default 1000 */
    uint64_t snapshot_count; /* etcd default 100000 */
    bool pre_vote;
    bool strict_reconfig_check;
    /* peer TLS (https peer URLs): paths, or auto_tls for a self-signed
     * certificate made at start, as etcd's --peer-auto-tls */
    const char *peer_cert_file, *peer_key_file, *peer_trusted_ca_file;
    bool peer_client_cert_auth;
    /* --peer-crl-file, --peer-cert-allowed-cn, --peer-cert-allowed-hostname */
    const char *peer_crl_file, *peer_cert_allowed_cn, *peer_cert_allowed_hostname;
    bool peer_auto_tls;
    /* client TLS (https listen-client-urls), etcd's --cert-file,
     * --key-file, --trusted-ca-file, --client-cert-auth, --client-crl-file,
     * --client-cert-allowed-hostname, --auto-tls; cipher suites are OpenSSL
     * names (config_cipher_openssl_name). Paths read at start. The member's
     * own clients (lease forwarding, the initial corruption check) dial
     * https client URLs with cert/key (or the auto TLS certificate),
     * verifying the server against trusted_ca_file when given. */
    const char *cert_file, *key_file, *trusted_ca_file, *client_crl_file;
    const char *client_cert_allowed_hostname;
    bool client_cert_auth;
    bool auto_tls;
    const char *const *cipher_suites;
    size_t n_cipher_suites;
    /* storage */
    int64_t quota_backend_bytes; /* 0: 2 GiB */
    uint32_t backend_batch_interval_ms;
    uint32_t backend_batch_limit;
    /* requests */
    uint32_t max_txn_ops;
    size_t max_request_bytes;
    uint32_t max_concurrent_streams;
    uint32_t grpc_keepalive_min_time_ms;
    uint32_t grpc_keepalive_interval_ms;
    uint32_t grpc_keepalive_timeout_ms;
    bool initial_corrupt_check;
    /* observability: extra listeners for /metrics and /health only
     * ("http://host:port"), and --metrics extensive (per-method gRPC
     * handling-time histograms) */
    char *const *listen_metrics_urls;
    size_t n_listen_metrics_urls;
    bool metrics_extensive;
    /* --auto-compaction-mode / -retention: retention in ms (periodic) or
     * revisions (revision); 0 disables */
    int auto_compaction_mode;
    int64_t auto_compaction_retention;
    /* auth: --auth-token ("simple" or NULL, or etcd's "jwt,..." options),
     * --bcrypt-cost (0: 10), --auth-token-ttl seconds (0: 300) */
    const char *auth_token;
    uint32_t bcrypt_cost;
    uint32_t auth_token_ttl;
    /* logging */
    member_log_fn log;
    void *log_ctx;
} member_options;

typedef struct member member;

/* Opens storage (bootstrapping a new member or restarting from the WAL and
 * LMDB), binds the client listeners and starts raft on `base`. The member
 * logs etcd's milestone lines once it serves. Returns 0 or -1 with the
 * reason logged (and in errbuf). */
int member_start(member **out, struct event_base *base, const member_options *opt,
                 char *errbuf, size_t errlen);

/* True once this member was removed from its cluster (it then stops by
 * itself and the process should exit 0, as etcd does). */
bool member_removed(const member *m);

/* Stops serving, flushes the backend, closes the WAL and frees. NULL-safe. */
void member_stop(member *m);

/* Formatted logging through the configured logger. */
void member_logf(const member *m, int level, const char *pkg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
