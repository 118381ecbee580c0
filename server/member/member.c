/* server/member/member.c - the member's life: open the backend and the
 * store, load the member's own state, bind the client listeners, start
 * raft; stop in reverse order.
 *
 * The listeners are bound before raft starts, so by the time the
 * "published ... to cluster" line is logged (after our attributes went
 * through raft) every client URL already accepts gRPC and HTTP/1.1. */
#include "server/member/internal.h"

#include "common/mem.h"
#include "server/channelz/channelz.h"
#include "server/gateway/gateway.h"
#include "server/tls/tls.h"
#include "watch/watch.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SWEEP_MS 100

void member_logf(const member *m, int level, const char *pkg, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (m->opt.log) {
        m->opt.log(m->opt.log_ctx, level, pkg, msg);
        return;
    }
    /* etcd 3.4's default text format (capnslog) */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02d %02d:%02d:%02d.%06ld %c | %s: %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000,
            level, pkg, msg);
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                return -1;
            buf[i] = c;
        }
    }
    return 0;
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = metcd_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* Splits "http://host:port" or "https://host:port" into host and port:
 * 0 for http, 1 for https, -1 when it is neither. */
static int parse_listen_url(const char *url, char *host, size_t hostlen, uint16_t *port)
{
    const char *p = strstr(url, "://");
    if (!p || strncmp(url, "http", 4) != 0)
        return -1;
    int tls = !strncmp(url, "https://", 8);
    p += 3;
    const char *colon = strrchr(p, ':');
    if (!colon)
        return -1;
    const char *end = strchr(colon, '/');
    size_t hl = (size_t)(colon - p);
    if (hl >= hostlen)
        return -1;
    memcpy(host, p, hl);
    host[hl] = 0;
    /* [::1]:2379 */
    if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    char *e;
    long v = strtol(colon + 1, &e, 10);
    if (e == colon + 1 || (*e && e != end) || v < 0 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return tls;
}

static void on_rpc_warn(void *arg, const char *msg)
{
    member_logf(arg, MLOG_WARN, "embed", "%s", msg);
}

static void tls_options_of(const member *m, struct tls_options *o)
{
    const member_options *opt = &m->opt;
    *o = (struct tls_options){
        .cert_file = opt->cert_file,
        .key_file = opt->key_file,
        .ca_file = opt->trusted_ca_file,
        .crl_file = opt->client_crl_file,
        .client_cert_auth = opt->client_cert_auth,
        .auto_tls = opt->auto_tls && !(opt->cert_file && opt->key_file),
        .allowed_hostname = opt->client_cert_allowed_hostname,
        .ciphers = opt->cipher_suites,
        .n_ciphers = opt->n_cipher_suites,
        .cn_hint = "metcd",
    };
}

/* The contexts of https client listeners and of the member's own clients,
 * made once, when a client URL is https or client TLS flags are set. */
static int client_tls_setup(member *m, bool need_server, char *errbuf, size_t errlen)
{
    const member_options *opt = &m->opt;
    struct tls_options o;
    tls_options_of(m, &o);
    char why[400];
    if (need_server && !m->client_tls) {
        int rc = tls_server_ctx_new(&m->client_tls, &o, why, sizeof why);
        if (rc) {
            snprintf(errbuf, errlen, "client TLS: %s", why);
            return rc;
        }
        if (opt->auto_tls && !(opt->cert_file && opt->key_file))
            member_logf(m, MLOG_INFO, "embed",
                        "client TLS: using a self-signed certificate (--auto-tls)");
        member_logf(m, MLOG_INFO, "embed",
                    "ClientTLS: cert = %s, key = %s, trusted-ca = %s, client-cert-auth = %s, "
                    "crl-file = %s",
                    opt->cert_file ? opt->cert_file : "", opt->key_file ? opt->key_file : "",
                    opt->trusted_ca_file ? opt->trusted_ca_file : "",
                    opt->client_cert_auth ? "true" : "false",
                    opt->client_crl_file ? opt->client_crl_file : "");
    }
    if (!m->client_dial_tls && (need_server || opt->cert_file || opt->auto_tls || opt->trusted_ca_file)) {
        o.crl_file = NULL;
        o.allowed_hostname = NULL;
        o.insecure_skip_verify = !opt->trusted_ca_file;
        int rc = tls_client_ctx_new(&m->client_dial_tls, &o, why, sizeof why);
        if (rc) {
            snprintf(errbuf, errlen, "client TLS (dialing): %s", why);
            return rc;
        }
    }
    return 0;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    member *m = arg;
    int64_t now = member_now_ms();
    wait_sweep(m, now);
    reads_sweep(m, now);
    move_leader_check(m, now);
}

/* The JSON gateway: a client of this member's gRPC server on its first
 * client URL, as etcd's (over TLS for https, the server's certificate not
 * checked, as etcd's gateway dials with InsecureSkipVerify). */
static int gateway_start(member *m, const char *host, uint16_t port, bool tls, char *errbuf,
                         size_t errlen)
{
    char url[300];
    snprintf(url, sizeof url, strchr(host, ':') ? "%s://[%s]:%u" : "%s://%s:%u",
             tls ? "https" : "http", host, port);
    struct gateway_config gc = {.endpoint = url, .channelz = m->cz};
    if (tls) {
        struct tls_options o;
        tls_options_of(m, &o);
        o.crl_file = NULL;
        o.allowed_hostname = NULL;
        o.insecure_skip_verify = true;
        char why[400];
        if (tls_client_ctx_new(&gc.tls, &o, why, sizeof why) != 0) {
            snprintf(errbuf, errlen, "cannot start the gateway: client TLS: %s", why);
            return -1;
        }
    }
    int rc = gateway_new(&m->gw, m->rpc, m->base, &gc);
    SSL_CTX_free(gc.tls); /* the gateway's client keeps its own reference */
    if (rc) {
        snprintf(errbuf, errlen, "cannot start the gateway: %s", gateway_strerror(rc));
        return -1;
    }
    return 0;
}


/* Listens on one http:// or https:// URL of srv (TLS with the client
 * settings); host, the asked and the bound port and whether it is TLS come
 * back for logging. Returns 0, or an rpc error with errbuf set. */
static int listen_url(member *m, struct rpc_server *srv, const char *u, char *host,
                      size_t hostlen, uint16_t *port, uint16_t *bound, bool *tls, char *errbuf,
                      size_t errlen)
{
    int prc = parse_listen_url(u, host, hostlen, port);
    if (prc < 0) {
        snprintf(errbuf, errlen, "%s: not an http(s)://host:port URL", u);
        return RPC_ERR_INVAL;
    }
    *tls = prc == 1;
    if (*tls && client_tls_setup(m, true, errbuf, errlen) != 0)
        return RPC_ERR_INVAL;
    *bound = *port;
    int rc = *tls ? rpc_server_listen_tls(srv, host, *port, m->client_tls, bound)
                  : rpc_server_listen(srv, host, *port, bound);
    if (rc)
        snprintf(errbuf, errlen, "listen tcp %s:%u: %s", host, *port, rpc_strerror(rc));
    return rc;
}

static int start_rpc(member *m, char *errbuf, size_t errlen)
{
    struct rpc_server_config rc_cfg = {
        .max_concurrent_streams = m->opt.max_concurrent_streams,
        /* grpc-go in etcd takes the request limit plus 512 KiB of overhead */
        .max_recv_msg_size = (m->opt.max_request_bytes ? m->opt.max_request_bytes : 1572864) +
                             512 * 1024,
        .keepalive_interval_ms = m->opt.grpc_keepalive_interval_ms,
        .keepalive_timeout_ms = m->opt.grpc_keepalive_timeout_ms,
        .keepalive_min_time_ms = m->opt.grpc_keepalive_min_time_ms,
        /* gateway bodies: base64 and field names around the message */
        .max_http_body = 4 * ((m->opt.max_request_bytes ? m->opt.max_request_bytes : 1572864) +
                              512 * 1024),
        .name = m->opt.name,
        .channelz = m->cz,
        .log_warn = on_rpc_warn,
        .log_arg = m,
    };
    int rc = rpc_server_new(&m->rpc, m->base, &rc_cfg);
    if (rc == 0)
        rc = kv_register(m);
    if (rc == 0)
        rc = maintenance_register(m);
    if (rc == 0)
        rc = cluster_register(m);
    if (rc == 0)
        rc = watch_register(m);
    if (rc == 0)
        rc = lease_start(m);
    if (rc == 0)
        rc = auth_start(m);
    if (rc == 0)
        rc = lock_register(m);
    if (rc == 0)
        rc = election_register(m);
    if (rc == 0)
        rc = idgen_register(m);
    if (rc == 0)
        rc = http_register(m);
    if (rc == 0)
        rc = metrics_register(m, m->rpc);
    if (rc == 0)
        rc = rpc_server_add_channelz(m->rpc, m->cz);
    if (rc) {
        snprintf(errbuf, errlen, "cannot set up the client services: %s", rpc_strerror(rc));
        return rc;
    }
    if (client_tls_setup(m, false, errbuf, errlen) != 0)
        return RPC_ERR_INVAL;
    for (size_t i = 0; i < m->opt.n_listen_client_urls; i++) {
        char host[256];
        uint16_t port, bound;
        bool tls;
        rc = listen_url(m, m->rpc, m->opt.listen_client_urls[i], host, sizeof(host), &port,
                        &bound, &tls, errbuf, errlen);
        if (rc)
            return rc;
        member_logf(m, MLOG_INFO, "embed", "listening for client requests on %s:%u%s", host, port,
                    tls ? " (TLS)" : "");
        if (i == 0 && gateway_start(m, host, bound, tls, errbuf, errlen) != 0)
            return RPC_ERR_INVAL;
    }
    /* --listen-metrics-urls: a server of its own with /metrics and /health */
    for (size_t i = 0; i < m->opt.n_listen_metrics_urls; i++) {
        const char *u = m->opt.listen_metrics_urls[i];
        if (!m->metrics_rpc) {
            struct rpc_server_config mc = {
                .name = "metrics", .log_warn = on_rpc_warn, .log_arg = m};
            rc = rpc_server_new(&m->metrics_rpc, m->base, &mc);
            if (rc == 0)
                rc = metrics_register(m, m->metrics_rpc);
            if (rc == 0)
                rc = observe_register(m, m->metrics_rpc, false);
            if (rc) {
                snprintf(errbuf, errlen, "cannot set up the metrics listener: %s",
                         rpc_strerror(rc));
                return rc;
            }
        }
        char host[256];
        uint16_t port, bound;
        bool tls;
        rc = listen_url(m, m->metrics_rpc, u, host, sizeof(host), &port, &bound, &tls, errbuf,
                        errlen);
        if (rc)
            return rc;
        member_logf(m, MLOG_INFO, "embed", "listening for metrics on %s", u);
    }
    return 0;
}

int strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

bool member_removed(const member *m)
{
    return m->removed;
}

void member_request_stop(member *m)
{
    event_base_loopbreak(m->base);
}

/* Opens the backend and the MVCC store (at start and after a snapshot
 * replaced the database). */
int member_open_store(member *m, char *errbuf, size_t errlen)
{
    const member_options *opt = &m->opt;
    backend_options bo = {
        .batch_interval_ms = opt->backend_batch_interval_ms,
        .batch_limit = opt->backend_batch_limit,
        .base = m->base,
        /* room above the quota so a full batch can commit; the quota itself
         * is enforced before proposing (etcd's backendQuota) */
        .max_map_size = (size_t)(opt->quota_backend_bytes > 0 ? opt->quota_backend_bytes
                                                              : (int64_t)2 << 30) +
                        ((size_t)256 << 20),
    };
    if (backend_open(&m->be, m->db_path, &bo, errbuf, errlen))
        return -1;
    mvcc_options mo = {.max_txn_ops = opt->max_txn_ops};
    int rc = mvcc_open(&m->kv, m->be, &mo);
    if (rc) {
        snprintf(errbuf, errlen, "cannot restore the key-value store: %s", mvcc_strerror(rc));
        return -1;
    }
    if (lease_store_open(m, errbuf, errlen) != 0)
        return -1;
    return auth_store_open(m, errbuf, errlen);
}

int member_start(member **out, struct event_base *base, const member_options *opt,
                 char *errbuf, size_t errlen)
{
    *out = NULL;
    member *m = metcd_calloc(1, sizeof(*m));
    if (!m) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    m->snap_fd = -1;
    m->base = base;
    m->opt = *opt;
    m->id = opt->member_id;
    m->cluster_id = opt->cluster_id;
    m->next_req_id = ((m->id & 0xffff) << 48) | (((uint64_t)member_now_ms() & 0xffffffffffULL) << 8);

    char *member_dir = path_join(opt->data_dir, "member");
    m->db_path = member_dir ? path_join(member_dir, "db") : NULL;
    m->wal_path = opt->wal_dir ? metcd_strdup(opt->wal_dir)
                               : (member_dir ? path_join(member_dir, "wal") : NULL);
    if (!m->db_path || !m->wal_path || mkdir_p(member_dir) != 0) {
        snprintf(errbuf, errlen, "cannot create data dir %s: %s", opt->data_dir,
                 strerror(errno));
        metcd_free(member_dir);
        goto err;
    }
    metcd_free(member_dir);
    if (channelz_new(&m->cz, 0) != 0) {
        snprintf(errbuf, errlen, "out of memory");
        goto err;
    }
    if (member_open_store(m, errbuf, errlen))
        goto err;
    watch_options wo = {.max_request_bytes = opt->max_request_bytes};
    if (watch_store_new(&m->watch, m->kv, base, &wo) != 0) {
        snprintf(errbuf, errlen, "cannot start the watchable store");
        goto err;
    }
    if (member_meta_load(m)) {
        snprintf(errbuf, errlen, "cannot load the member's state: %s", backend_errmsg(m->be));
        goto err;
    }
    if (start_rpc(m, errbuf, errlen))
        goto err;
    if (peers_start(m, errbuf, errlen))
        goto err;
    if (raftnode_start(m, errbuf, errlen))
        goto err;
    if (mvcc_compact_pending(m->kv))
        compaction_kick(m); /* an interrupted compaction resumes */
    if (compactor_start(m)) {
        snprintf(errbuf, errlen, "cannot start auto compaction");
        goto err;
    }
    m->sweep_ev = event_new(base, -1, EV_PERSIST, on_sweep, m);
    if (!m->sweep_ev) {
        snprintf(errbuf, errlen, "out of memory");
        goto err;
    }
    struct timeval tv = {0, SWEEP_MS * 1000};
    evtimer_add(m->sweep_ev, &tv);
    *out = m;
    return 0;
err:
    member_logf(m, MLOG_CRIT, "etcdmain", "%s", errbuf);
    member_stop(m);
    return -1;
}

void member_stop(member *m)
{
    if (!m)
        return;
    m->stopping = true;
    compactor_stop(m);
    if (m->sweep_ev)
        event_free(m->sweep_ev);
    if (m->compact_ev)
        event_free(m->compact_ev);
    corrupt_check_cancel(m);
    idgen_stop(m);
    /* Clients first: nothing new arrives while we shut the rest. */
    if (m->move_call) {
        member_fail_call(m->move_call, MERR_STOPPED);
        m->move_call = NULL;
    }
    wait_fail_all(m, MERR_STOPPED);
    reads_fail_all(m, MERR_STOPPED);
    lease_stop(m);
    gateway_free(m->gw); /* answers its HTTP requests: before the server goes */
    m->gw = NULL;
    auth_stop(m);
    observe_stop(m);
    rpc_server_free(m->metrics_rpc);
    m->metrics_rpc = NULL;
    rpc_server_free(m->rpc); /* cancels the watch streams too */
    m->rpc = NULL;
    snapshot_stop(m); /* after the server: their calls are gone */
    SSL_CTX_free(m->client_tls);
    SSL_CTX_free(m->client_dial_tls);
    m->client_tls = m->client_dial_tls = NULL;
    watch_store_free(m->watch);
    m->watch = NULL;
    if (m->wal)
        raftnode_stop(m);
    peers_stop(m);
    channelz_free(m->cz);
    lease_store_close(m);
    mvcc_close(m->kv);
    backend_close(m->be);
    member_free_meta(m);
    metcd_free(m->db_path);
    metcd_free(m->wal_path);
    metcd_free(m);
}
