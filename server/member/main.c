/* server/member/main.c - `metcd`: etcd 3.4's command line, one member.
 *
 * Flags, ETCD_* variables and --config-file are read by server/config with
 * etcd's semantics and messages; a flag the user set that this member does
 * not implement yet is refused by name, never ignored. SIGINT and SIGTERM
 * stop the member cleanly (the backend is committed, the WAL drained) and
 * exit 0, which supervisors and etcd's e2e suite accept as they accept
 * Go's death by the signal; SIGKILL at any moment loses nothing
 * acknowledged (the WAL is fsynced before any answer).
 */
#include "server/member/member.h"

#include "common/mem.h"
#include "server/config/config.h"
#include "server/config/ids.h"
#include "server/config/log.h"
#include "server/etcdserverpb/rpc.pb-c.h"
#include "server/peer/peer.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* The flags this member implements. Anything else the user sets is refused
 * with a message that names it. */
static const char *const implemented[] = {
    "name", "data-dir", "wal-dir", "listen-client-urls", "advertise-client-urls",
    "listen-peer-urls", "initial-advertise-peer-urls", "initial-cluster",
    "initial-cluster-state", "initial-cluster-token", "snapshot-count", "heartbeat-interval",
    "election-timeout", "quota-backend-bytes", "backend-batch-interval", "backend-batch-limit",
    "max-txn-ops", "max-request-bytes", "max-concurrent-streams", "grpc-keepalive-min-time",
    "grpc-keepalive-interval", "grpc-keepalive-timeout", "pre-vote", "strict-reconfig-check",
    "logger", "log-level", "log-outputs", "log-output", "debug", "config-file",
    "experimental-initial-corrupt-check", "enable-grpc-gateway", "version", "help",
    "auto-compaction-mode", "auto-compaction-retention",
    "peer-auto-tls", "peer-cert-file", "peer-key-file", "peer-trusted-ca-file",
    "peer-client-cert-auth",
    "cert-file", "key-file", "trusted-ca-file", "client-cert-auth", "client-crl-file",
    "client-cert-allowed-hostname", "auto-tls", "cipher-suites",
    "peer-crl-file", "peer-cert-allowed-cn", "peer-cert-allowed-hostname",
    /* metcd always checkpoints lease TTLs and persists them (lease.c) */
    "experimental-enable-lease-checkpoint", "experimental-enable-lease-checkpoint-persist",
    "listen-metrics-urls", "metrics",
    "auth-token", "auth-token-ttl", "bcrypt-cost",
    NULL,
};

static int signal_caught;

/* An optional path flag: NULL when unset or empty. */
static const char *nonempty(const char *s)
{
    return s && s[0] ? s : NULL;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    signal_caught = (int)sig;
    event_base_loopbreak(arg);
}

static enum log_level map_level(int l)
{
    switch (l) {
    case MLOG_DEBUG:
        return LOG_LVL_DEBUG;
    case MLOG_NOTICE:
        return LOG_LVL_NOTICE;
    case MLOG_WARN:
        return LOG_LVL_WARN;
    case MLOG_ERROR:
        return LOG_LVL_ERROR;
    case MLOG_CRIT:
        return LOG_LVL_CRIT;
    default:
        return LOG_LVL_INFO;
    }
}

static void log_adapter(void *ctx, int level, const char *pkg, const char *msg)
{
    log_printf(ctx, map_level(level), pkg, "%s", msg);
}

/* etcd's parseCompactionRetention: a plain integer is hours (periodic) or
 * revisions (revision); otherwise a Go duration. */
static int parse_retention(const struct config *cfg, int *mode, int64_t *out, char *err,
                           size_t errlen)
{
    *mode = cfg->auto_compaction_mode && !strcmp(cfg->auto_compaction_mode, "revision")
                ? AUTO_COMPACT_REVISION
                : AUTO_COMPACT_PERIODIC;
    const char *r = cfg->auto_compaction_retention ? cfg->auto_compaction_retention : "0";
    char *end;
    long long v = strtoll(r, &end, 10);
    if (*r && !*end && v >= 0) {
        *out = *mode == AUTO_COMPACT_REVISION ? v : v * 3600LL * 1000;
        return 0;
    }
    int64_t ns;
    if (config_parse_duration(r, &ns) != 0 || ns < 0) {
        snprintf(err, errlen, "error parsing CompactionRetention: time: invalid duration \"%s\"",
                 r);
        return -1;
    }
    *out = *mode == AUTO_COMPACT_REVISION ? ns : ns / 1000000;
    return 0;
}

/* Sorted-set equality of two URL lists. */
static bool same_urls(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t j = 0; j < nb && !found; j++)
            found = !strcmp(a[i], b[j]);
        if (!found)
            return false;
    }
    return true;
}

/* --initial-cluster-state existing: ask the other members of
 * --initial-cluster who the cluster is (etcd's GetClusterFromRemotePeers);
 * the answer is kept in *out (free with
 * etcdserverpb__member_list_response__free_unpacked). */
static int fetch_cluster(const struct ids_cluster *cl, const char *self_name, uint64_t *cid,
                         Etcdserverpb__MemberListResponse **out, char *err, size_t errlen,
                         uint32_t timeout_ms)
{
    snprintf(err, errlen, "no other member in --initial-cluster");
    for (size_t i = 0; i < cl->n; i++) {
        if (!strcmp(cl->members[i].name, self_name))
            continue;
        for (size_t u = 0; u < cl->members[i].nurls; u++) {
            uint8_t *buf;
            size_t len;
            if (peer_query_members(cl->members[i].urls[u], timeout_ms, cid, &buf, &len, err,
                                   errlen))
                continue;
            *out = etcdserverpb__member_list_response__unpack(&metcd_pb_allocator, len, buf);
            metcd_free(buf);
            if (*out)
                return 0;
            snprintf(err, errlen, "%s: undecodable members answer", cl->members[i].urls[u]);
        }
    }
    return -1;
}

static uint32_t ns_to_ms(int64_t ns)
{
    return ns <= 0 ? 0 : (uint32_t)(ns / 1000000);
}

int main(int argc, char **argv)
{
    metcd_mem_tune();
    struct config cfg;
    int rc = config_init(&cfg);
    if (rc == 0)
        rc = config_parse(&cfg, argc, argv, environ);
    if (rc != 0) {
        int st = config_report(&cfg, rc, stderr);
        config_free(&cfg);
        return st;
    }
    if (cfg.command == CONFIG_CMD_HELP) {
        config_print_help(stdout);
        config_free(&cfg);
        return 0;
    }
    if (cfg.command == CONFIG_CMD_VERSION) {
        config_print_version(stdout);
        config_free(&cfg);
        return 0;
    }
    if (cfg.command != CONFIG_CMD_SERVE) {
        fprintf(stderr, "metcd: the '%s' subcommand is not supported\n",
                cfg.command == CONFIG_CMD_GATEWAY ? "gateway" : "grpc-proxy");
        config_free(&cfg);
        return 1;
    }
    struct metcd_log *lg = NULL;
    char err[1024];
    if (log_open_config(&lg, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "metcd: %s\n", err);
        config_free(&cfg);
        return 1;
    }
    config_log_notes(&cfg, lg);
    rc = config_check_implemented(&cfg, implemented);
    if (rc != 0) {
        int st = config_report(&cfg, rc, stderr);
        log_close(lg);
        config_free(&cfg);
        return st;
    }

    struct ids_cluster cl = {0};
    rc = ids_cluster_from_config(&cl, &cfg);
    if (rc != 0) {
        int st = config_report(&cfg, rc, stderr);
        ids_cluster_free(&cl);
        log_close(lg);
        config_free(&cfg);
        return st;
    }
    bool existing = cfg.initial_cluster_state && !strcmp(cfg.initial_cluster_state, "existing");
    const struct ids_member *self = ids_cluster_member(&cl, cfg.name);
    if (!self) {
        log_printf(lg, LOG_LVL_CRIT, "etcdmain", "couldn't find local name %s in the initial cluster configuration",
                   cfg.name);
        ids_cluster_free(&cl);
        log_close(lg);
        config_free(&cfg);
        return 1;
    }
    /* existing: the member was added with `member add`; its id and the
     * cluster's come from the running members */
    Etcdserverpb__MemberListResponse *joined = NULL;
    uint64_t member_id = self->id, cluster_id = cl.cluster_id;
    char wal_probe[4096];
    snprintf(wal_probe, sizeof(wal_probe), "%s/member/wal",
             cfg.wal_dir && cfg.wal_dir[0] ? cfg.wal_dir : cfg.data_dir);
    if (cfg.wal_dir && cfg.wal_dir[0])
        snprintf(wal_probe, sizeof(wal_probe), "%s", cfg.wal_dir);
    bool have_wal = access(wal_probe, F_OK) == 0;
    if (!existing && !have_wal && cl.n > 1) {
        /* a new member with no data: if the running cluster knows it as
         * started, its data was lost; etcd refuses ("already bootstrapped")
         * rather than let it vote again in terms it voted in */
        Etcdserverpb__MemberListResponse *ml = NULL;
        uint64_t cid;
        char qerr[256];
        if (fetch_cluster(&cl, cfg.name, &cid, &ml, qerr, sizeof(qerr), 1000) == 0) {
            bool started = false;
            for (size_t i = 0; i < ml->n_members; i++)
                started |= ml->members[i]->id == self->id && ml->members[i]->name &&
                           ml->members[i]->name[0];
            etcdserverpb__member_list_response__free_unpacked(ml, &metcd_pb_allocator);
            if (started) {
                log_printf(lg, LOG_LVL_CRIT, "etcdmain",
                           "member %016llx has already been bootstrapped",
                           (unsigned long long)self->id);
                ids_cluster_free(&cl);
                log_close(lg);
                config_free(&cfg);
                return 1;
            }
        }
    }
    if (existing) {
        if (!have_wal) {
            if (fetch_cluster(&cl, cfg.name, &cluster_id, &joined, err, sizeof(err), 3000) != 0) {
                log_printf(lg, LOG_LVL_CRIT, "etcdmain",
                           "cannot fetch cluster info from peer urls: %s", err);
                ids_cluster_free(&cl);
                log_close(lg);
                config_free(&cfg);
                return 1;
            }
            bool found = false;
            for (size_t i = 0; i < joined->n_members && !found; i++) {
                if (same_urls(joined->members[i]->peerurls, joined->members[i]->n_peerurls,
                              cfg.initial_advertise_peer_urls.v,
                              cfg.initial_advertise_peer_urls.n)) {
                    member_id = joined->members[i]->id;
                    found = true;
                }
            }
            if (!found) {
                log_printf(lg, LOG_LVL_CRIT, "etcdmain",
                           "error validating peerURLs: member has not been added to the cluster "
                           "(add it with `member add` first)");
                etcdserverpb__member_list_response__free_unpacked(joined, &metcd_pb_allocator);
                ids_cluster_free(&cl);
                log_close(lg);
                config_free(&cfg);
                return 1;
            }
        }
    }
    int ac_mode;
    int64_t ac_retention;
    if (parse_retention(&cfg, &ac_mode, &ac_retention, err, sizeof(err)) != 0) {
        log_printf(lg, LOG_LVL_CRIT, "etcdmain", "%s", err);
        ids_cluster_free(&cl);
        log_close(lg);
        config_free(&cfg);
        return 1;
    }
    size_t npeers = joined ? joined->n_members : cl.n;
    member_peer *peers = metcd_calloc(npeers ? npeers : 1, sizeof(*peers));
    if (!peers) {
        log_printf(lg, LOG_LVL_CRIT, "etcdmain", "out of memory");
        return 1;
    }
    for (size_t i = 0; i < npeers; i++) {
        if (joined)
            peers[i] = (member_peer){joined->members[i]->id, joined->members[i]->name,
                                     joined->members[i]->peerurls,
                                     joined->members[i]->n_peerurls,
                                     joined->members[i]->islearner};
        else
            peers[i] = (member_peer){cl.members[i].id, cl.members[i].name, cl.members[i].urls,
                                     cl.members[i].nurls, false};
    }

    /* --auth-token: simple or jwt,... (checked when the member starts) */
    if (cfg.auth_token && strcmp(cfg.auth_token, "simple") != 0 &&
        strcmp(cfg.auth_token, "jwt") != 0 && strncmp(cfg.auth_token, "jwt,", 4) != 0) {
        metcd_free(peers);
        log_printf(lg, LOG_LVL_CRIT, "etcdmain", "failed to create auth token provider: %s",
                   "auth: invalid auth options");
        return 1;
    }
    if (cfg.bcrypt_cost < 4 || cfg.bcrypt_cost > 31) {
        metcd_free(peers);
        log_printf(lg, LOG_LVL_CRIT, "etcdmain", "invalid --bcrypt-cost %llu (4 to 31)",
                   (unsigned long long)cfg.bcrypt_cost);
        return 1;
    }

    /* --cipher-suites, in OpenSSL's names (validated by config.c) */
    const char **ciphers = metcd_calloc(cfg.cipher_suites.n + 1, sizeof(*ciphers));
    if (!ciphers) {
        metcd_free(peers);
        log_printf(lg, LOG_LVL_CRIT, "etcdmain", "out of memory");
        return 1;
    }
    for (size_t i = 0; i < cfg.cipher_suites.n; i++)
        ciphers[i] = config_cipher_openssl_name(cfg.cipher_suites.v[i]);
    member_options mo = {
        .name = cfg.name,
        .data_dir = cfg.data_dir,
        .wal_dir = cfg.wal_dir && cfg.wal_dir[0] ? cfg.wal_dir : NULL,
        .listen_client_urls = cfg.listen_client_urls.v,
        .n_listen_client_urls = cfg.listen_client_urls.n,
        .advertise_client_urls = cfg.advertise_client_urls.v,
        .n_advertise_client_urls = cfg.advertise_client_urls.n,
        .listen_peer_urls = cfg.listen_peer_urls.v,
        .n_listen_peer_urls = cfg.listen_peer_urls.n,
        .strict_reconfig_check = cfg.strict_reconfig_check,
        .peer_cert_file = cfg.peer_cert_file && cfg.peer_cert_file[0] ? cfg.peer_cert_file : NULL,
        .peer_key_file = cfg.peer_key_file && cfg.peer_key_file[0] ? cfg.peer_key_file : NULL,
        .peer_trusted_ca_file = cfg.peer_trusted_ca_file && cfg.peer_trusted_ca_file[0]
                                    ? cfg.peer_trusted_ca_file
                                    : NULL,
        .peer_client_cert_auth = cfg.peer_client_cert_auth,
        .peer_crl_file = nonempty(cfg.peer_crl_file),
        .peer_cert_allowed_cn = nonempty(cfg.peer_cert_allowed_cn),
        .peer_cert_allowed_hostname = nonempty(cfg.peer_cert_allowed_hostname),
        .peer_auto_tls = cfg.peer_auto_tls,
        .cert_file = nonempty(cfg.cert_file),
        .key_file = nonempty(cfg.key_file),
        .trusted_ca_file = nonempty(cfg.trusted_ca_file),
        .client_crl_file = nonempty(cfg.client_crl_file),
        .client_cert_allowed_hostname = nonempty(cfg.client_cert_allowed_hostname),
        .client_cert_auth = cfg.client_cert_auth,
        .auto_tls = cfg.auto_tls,
        .cipher_suites = ciphers,
        .n_cipher_suites = cfg.cipher_suites.n,
        .member_id = member_id,
        .cluster_id = cluster_id,
        .initial_cluster = peers,
        .n_initial_cluster = npeers,
        .heartbeat_ms = (uint32_t)cfg.heartbeat_interval_ms,
        .election_ms = (uint32_t)cfg.election_timeout_ms,
        .snapshot_count = cfg.snapshot_count,
        .pre_vote = cfg.pre_vote,
        .quota_backend_bytes = cfg.quota_backend_bytes,
        .backend_batch_interval_ms = ns_to_ms(cfg.backend_batch_interval_ns),
        .backend_batch_limit = cfg.backend_batch_limit > 0 ? (uint32_t)cfg.backend_batch_limit : 0,
        .max_txn_ops = (uint32_t)cfg.max_txn_ops,
        .max_request_bytes = (size_t)cfg.max_request_bytes,
        .max_concurrent_streams = cfg.max_concurrent_streams,
        .grpc_keepalive_min_time_ms = ns_to_ms(cfg.grpc_keepalive_min_time_ns),
        .grpc_keepalive_interval_ms = ns_to_ms(cfg.grpc_keepalive_interval_ns),
        .grpc_keepalive_timeout_ms = ns_to_ms(cfg.grpc_keepalive_timeout_ns),
        .initial_corrupt_check = cfg.experimental_initial_corrupt_check,
        .listen_metrics_urls = cfg.listen_metrics_urls.v,
        .n_listen_metrics_urls = cfg.listen_metrics_urls.n,
        .metrics_extensive = cfg.metrics && strcmp(cfg.metrics, "extensive") == 0,
        .auth_token = cfg.auth_token,
        .bcrypt_cost = (uint32_t)cfg.bcrypt_cost,
        .auth_token_ttl = (uint32_t)cfg.auth_token_ttl,
        .auto_compaction_mode = ac_mode,
        .auto_compaction_retention = ac_retention,
        .log = log_adapter,
        .log_ctx = lg,
    };

    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    struct event *sigint = base ? evsignal_new(base, SIGINT, on_signal, base) : NULL;
    struct event *sigterm = base ? evsignal_new(base, SIGTERM, on_signal, base) : NULL;
    member *m = NULL;
    int status = 1;
    if (!base || !sigint || !sigterm) {
        log_printf(lg, LOG_LVL_CRIT, "etcdmain", "cannot set up the event loop");
    } else {
        evsignal_add(sigint, NULL);
        evsignal_add(sigterm, NULL);
        if (member_start(&m, base, &mo, err, sizeof(err)) == 0) {
            event_base_dispatch(base);
            /* a loop that ends by itself is fatal, unless this member was
             * removed from its cluster (etcd exits 0 then) */
            status = signal_caught || member_removed(m) ? 0 : 1;
            if (signal_caught)
                log_printf(lg, LOG_LVL_NOTICE, "etcdmain", "received %s, shutting down...",
                           strsignal(signal_caught));
            member_stop(m);
        }
    }
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    if (base)
        event_base_free(base);
    metcd_free(peers);
    metcd_free(ciphers);
    if (joined)
        etcdserverpb__member_list_response__free_unpacked(joined, &metcd_pb_allocator);
    ids_cluster_free(&cl);
    log_close(lg);
    config_free(&cfg);
    return status;
}
