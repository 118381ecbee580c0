/* server/rpc/server.c - the server object: method table, HTTP/1.1 routes,
 * listeners, first-bytes sniffing (MSG_PEEK, nothing consumed), the
 * connection list, graceful shutdown. */
#include "server/rpc/internal.h"

#include "common/mem.h"
#include "server/channelz/channelz.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/* No HTTP/1.1 method starts with "PRI": three bytes decide. */
#define SNIFF_BYTES 3

static void on_conn_flush(evutil_socket_t fd, short what, void *arg);

int rpc_server_new(struct rpc_server **out, struct event_base *base,
                   const struct rpc_server_config *cfg)
{
    if (!out || !base)
        return RPC_ERR_INVAL;
    struct rpc_server *srv = metcd_calloc(1, sizeof *srv);
    if (!srv)
        return RPC_ERR_NOMEM;
    rpc_ignore_sigpipe();
    srv->base = base;
    if (cfg)
        srv->cfg = *cfg;
    struct rpc_server_config *c = &srv->cfg;
    if (!c->max_concurrent_streams)
        c->max_concurrent_streams = 0xffffffffu;
    if (!c->max_recv_msg_size)
        c->max_recv_msg_size = RPC_DEFAULT_MAX_RECV;
    if (!c->max_http_body)
        c->max_http_body = c->max_recv_msg_size;
    if (!c->max_send_msg_size)
        c->max_send_msg_size = RPC_DEFAULT_MAX_SEND;
    if (!c->stream_queue_bytes)
        c->stream_queue_bytes = RPC_DEFAULT_STREAM_QUEUE;
    if (!c->conn_queue_bytes)
        c->conn_queue_bytes = RPC_DEFAULT_CONN_QUEUE;
    if (!c->keepalive_timeout_ms)
        c->keepalive_timeout_ms = 20000;
    if (!c->keepalive_min_time_ms)
        c->keepalive_min_time_ms = 5000;
    if (!c->handshake_timeout_ms)
        c->handshake_timeout_ms = 10000;
    int rc = RPC_ERR_NOMEM;
    srv->name = metcd_strdup(c->name ? c->name : "");
    if (!srv->name)
        goto err_srv;
    c->name = srv->name;
    if (rpc_h2_callbacks_new(&srv->h2_cbs) != 0)
        goto err_name;
    if (nghttp2_option_new(&srv->h2_opt) != 0)
        goto err_cbs;
    /* Per-connection memory: keep no closed streams around for the
     * (deprecated) RFC 7540 priority tree. */
    nghttp2_option_set_no_closed_streams(srv->h2_opt, 1);
    /* grpc-go accepts any :authority: clients that dial "http://host:port"
     * through a passthrough resolver send exactly that (etcdctl defrag,
     * clientv3 with scheme endpoints), and nghttp2 would reset the stream
     * with PROTOCOL_ERROR. The call layer checks what gRPC needs itself
     * (:method POST, :path, content-type), so nghttp2's HTTP messaging
     * checks are off. */
    nghttp2_option_set_no_http_messaging(srv->h2_opt, 1);
    /* Window updates follow what the calls consume (h2conn.c), so a call
     * whose handler paused it stops its client (rpc_call_pause_recv). */
    nghttp2_option_set_no_auto_window_update(srv->h2_opt, 1);
    if (c->channelz) {
        rc = channelz_add(c->channelz, CHANNELZ_SERVER, NULL, srv->name, rpc_wall_ns(),
                          &srv->cz);
        if (rc != 0) {
            rc = RPC_ERR_NOMEM;
            goto err_opt;
        }
    }
    *out = srv;
    return 0;

err_opt:
    nghttp2_option_del(srv->h2_opt);
err_cbs:
    nghttp2_session_callbacks_del(srv->h2_cbs);
err_name:
    metcd_free(srv->name);
err_srv:
    metcd_free(srv);
    return rc;
}

static int method_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rpc_reg_method *)a)->m->path,
                  ((const struct rpc_reg_method *)b)->m->path);
}

int rpc_server_register(struct rpc_server *srv, const struct rpc_method *methods,
                        size_t n, void *data)
{
    if (!srv || (!methods && n))
        return RPC_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        if (!methods[i].path || methods[i].path[0] != '/' || !methods[i].on_message ||
            !methods[i].request || !methods[i].response)
            return RPC_ERR_INVAL;
        if (rpc_server_lookup(srv, methods[i].path))
            return RPC_ERR_EXISTS;
        for (size_t j = 0; j < i; j++)
            if (strcmp(methods[i].path, methods[j].path) == 0)
                return RPC_ERR_EXISTS;
    }
    struct rpc_reg_method *nm =
        metcd_realloc(srv->methods, (srv->n_methods + n + 1) * sizeof *nm);
    if (!nm)
        return RPC_ERR_NOMEM;
    srv->methods = nm;
    for (size_t i = 0; i < n; i++)
        nm[srv->n_methods++] = (struct rpc_reg_method){.m = &methods[i], .data = data};
    qsort(nm, srv->n_methods, sizeof *nm, method_cmp);
    return 0;
}

void rpc_server_method_stats(const struct rpc_server *srv, rpc_method_stats_fn fn, void *arg)
{
    for (size_t i = 0; i < srv->n_methods; i++)
        fn(arg, srv->methods[i].m->path, srv->methods[i].m->kind, srv->methods[i].started,
           srv->methods[i].handled);
}

const double rpc_latency_bounds[RPC_LATENCY_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                         0.5,   1,    2.5,   5,    10};

void rpc_server_method_latency(const struct rpc_server *srv, rpc_method_latency_fn fn,
                               void *arg)
{
    for (size_t i = 0; i < srv->n_methods; i++) {
        const struct rpc_reg_method *rm = &srv->methods[i];
        uint64_t n = 0;
        for (size_t b = 0; b <= RPC_LATENCY_BUCKETS; b++)
            n += rm->lat_hist[b];
        fn(arg, rm->m->path, rm->m->kind, rm->lat_hist, n, rm->lat_sum_s);
    }
}

const struct rpc_reg_method *rpc_server_lookup(const struct rpc_server *srv, const char *path)
{
    size_t lo = 0, hi = srv->n_methods;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(path, srv->methods[mid].m->path);
        if (c == 0)
            return &srv->methods[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

int rpc_server_route(struct rpc_server *srv, const char *path, rpc_http_fn fn,
                     void (*on_abort)(struct rpc_http_req *req, void *data), void *data)
{
    if (!srv || !path || path[0] != '/' || !fn)
        return RPC_ERR_INVAL;
    for (size_t i = 0; i < srv->n_routes; i++)
        if (strcmp(srv->routes[i].path, path) == 0)
            return RPC_ERR_EXISTS;
    struct rpc_route *nr = metcd_realloc(srv->routes, (srv->n_routes + 1) * sizeof *nr);
    if (!nr)
        return RPC_ERR_NOMEM;
    srv->routes = nr;
    char *p = metcd_strdup(path);
    if (!p)
        return RPC_ERR_NOMEM;
    size_t len = strlen(p);
    nr[srv->n_routes++] = (struct rpc_route){p, len, p[len - 1] == '/', fn, on_abort, data};
    return 0;
}

const struct rpc_route *rpc_server_route_find(const struct rpc_server *srv, const char *path)
{
    const struct rpc_route *best = NULL;
    for (size_t i = 0; i < srv->n_routes; i++) {
        const struct rpc_route *r = &srv->routes[i];
        bool hit = r->prefix ? strncmp(path, r->path, r->len) == 0 : strcmp(path, r->path) == 0;
        if (hit && (!best || r->len > best->len))
            best = r;
    }
    return best;
}

/* ---- connections ---- */

void rpc_conn_schedule(struct rpc_conn *c)
{
    if (!event_pending(c->flush_ev, EV_TIMEOUT, NULL))
        event_active(c->flush_ev, EV_TIMEOUT, 0);
}

void rpc_conn_kill(struct rpc_conn *c)
{
    c->dead = true;
    rpc_conn_schedule(c);
}

void rpc_server_conn_gone(struct rpc_server *srv)
{
    if (srv->shutting_down && !srv->conns && srv->done) {
        void (*done)(void *) = srv->done;
        srv->done = NULL;
        if (srv->grace_ev)
            event_del(srv->grace_ev);
        done(srv->done_data);
    }
}

void rpc_conn_free(struct rpc_conn *c)
{
    struct rpc_server *srv = c->srv;
    /* a client that went away cancelled its calls (grpc-go: the stream's
     * context is canceled, counted as Canceled); our own shutdown makes
     * them unavailable */
    if (c->kind == RPC_CONN_H2)
        rpc_h2_drop_calls(c, srv->shutting_down ? RPC_CODE_UNAVAILABLE : RPC_CODE_CANCELLED);
    else if (c->kind == RPC_CONN_HTTP1)
        rpc_http1_drop(c);
    if (c->h2)
        nghttp2_session_del(c->h2);
    if (c->ka_ev)
        event_free(c->ka_ev);
    if (c->sniff_ev)
        event_free(c->sniff_ev);
    if (c->flush_ev)
        event_free(c->flush_ev);
    if (c->bev)
        bufferevent_free(c->bev); /* closes fd */
    else if (c->fd >= 0)
        close(c->fd);
    if (c->cz) {
        channelz_set_state(c->cz, CHANNELZ_STATE_SHUTDOWN);
        channelz_remove(c->cz);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->stats.conns_open--;
    metcd_free(c);
}

static void on_sniff(evutil_socket_t fd, short what, void *arg);

static void conn_sniff(struct rpc_conn *c)
{
    uint8_t buf[SNIFF_BYTES];
    if (rpc_now_ms() > c->deadline_ms) {
        rpc_conn_kill(c);
        return;
    }
    ssize_t n = recv(c->fd, buf, sizeof buf, MSG_PEEK);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        rpc_conn_kill(c);
        return;
    }
    if (n > 0 && buf[0] == 0x16) {
        /* a TLS ClientHello's record type: no HTTP request starts so */
        rpc_server_warnf(c->srv,
                         "rejected connection from \"%s\" (error \"TLS handshake on a "
                         "plaintext port\")",
                         c->peer);
        rpc_conn_kill(c);
        return;
    }
    if (n > 0 && memcmp(buf, h2_preface, (size_t)n) != 0) {
        c->kind = RPC_CONN_HTTP1;
    } else if (n == SNIFF_BYTES) {
        c->kind = RPC_CONN_H2;
    } else {
        /* Too few bytes to decide: look again shortly (level-triggered
         * readability would spin). */
        struct timeval tv = {0, 2000};
        event_del(c->sniff_ev);
        event_add(c->flush_ev, &tv);
        return;
    }
    event_free(c->sniff_ev);
    c->sniff_ev = NULL;
    int rc = c->kind == RPC_CONN_H2 ? rpc_h2_start(c) : rpc_http1_start(c);
    if (rc != 0)
        rpc_conn_kill(c);
}

static void on_sniff(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct rpc_conn *c = arg;
    if (what & EV_TIMEOUT) {
        rpc_conn_kill(c);
        return;
    }
    conn_sniff(c);
}

static void on_conn_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rpc_conn *c = arg;
    if (c->dead) {
        struct rpc_server *srv = c->srv;
        rpc_conn_free(c);
        rpc_server_conn_gone(srv);
        return;
    }
    switch (c->kind) {
    case RPC_CONN_SNIFF:
        conn_sniff(c);
        break;
    case RPC_CONN_H2:
        if (c->resume_pending)
            rpc_h2_resume_calls(c);
        if (c->dead)
            break;
        if (c->read_pending) {
            c->read_pending = false;
            rpc_h2_on_read(c);
        } else {
            rpc_h2_flush(c);
        }
        break;
    case RPC_CONN_HTTP1:
        rpc_http1_on_read(c);
        break;
    }
}

static int conn_new(struct rpc_server *srv, int fd, const struct rpc_adopt_info *info)
{
    const char *peer_name = info ? info->peer : NULL;
    const char *cert_cn = info ? info->cert_cn : NULL;
    if (srv->shutting_down) {
        close(fd);
        return RPC_ERR_STATE;
    }
    struct rpc_conn *c = metcd_calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return RPC_ERR_NOMEM;
    }
    c->srv = srv;
    c->fd = fd;
    c->kind = RPC_CONN_SNIFF;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->stats.conns_open++;
    evutil_make_socket_nonblocking(fd);
    evutil_make_socket_closeonexec(fd);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_storage peer, local;
    socklen_t plen = sizeof peer, llen = sizeof local;
    if (cert_cn)
        snprintf(c->cert_cn, sizeof c->cert_cn, "%s", cert_cn);
    if (peer_name)
        snprintf(c->peer, sizeof c->peer, "%s", peer_name);
    else if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
        rpc_addr_format((struct sockaddr *)&peer, c->peer, sizeof c->peer);
    else
        snprintf(c->peer, sizeof c->peer, "local");
    c->flush_ev = event_new(srv->base, -1, 0, on_conn_flush, c);
    c->sniff_ev = event_new(srv->base, fd, EV_READ | EV_PERSIST, on_sniff, c);
    if (!c->flush_ev || !c->sniff_ev)
        goto err;
    c->deadline_ms = rpc_now_ms() + srv->cfg.handshake_timeout_ms;
    struct timeval tv = {srv->cfg.handshake_timeout_ms / 1000,
                         (srv->cfg.handshake_timeout_ms % 1000) * 1000};
    if (event_add(c->sniff_ev, &tv) != 0)
        goto err;
    if (srv->cz) {
        if (channelz_add(srv->cfg.channelz, CHANNELZ_SOCKET, srv->cz, c->peer, rpc_wall_ns(),
                         &c->cz) != 0)
            goto err;
        if (info && info->remote) {
            /* behind the TLS front end: the client's socket, not the pair */
            channelz_set_addrs(c->cz, info->local, info->local_len, info->remote,
                               info->remote_len);
            rpc_channelz_tls(c->cz, info->ssl);
        } else {
            plen = sizeof peer;
            if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0)
                plen = 0;
            if (getsockname(fd, (struct sockaddr *)&local, &llen) != 0)
                llen = 0;
            channelz_set_addrs(c->cz, llen ? (struct sockaddr *)&local : NULL, llen,
                               plen ? (struct sockaddr *)&peer : NULL, plen);
        }
    }
    return 0;
err:
    rpc_conn_free(c);
    return RPC_ERR_NOMEM;
}

int rpc_server_adopt(struct rpc_server *srv, int fd)
{
    if (!srv || fd < 0) {
        if (fd >= 0)
            close(fd);
        return RPC_ERR_INVAL;
    }
    return conn_new(srv, fd, NULL);
}

int rpc_server_adopt_tls(struct rpc_server *srv, int fd, struct ssl_ctx_st *ctx)
{
    if (!srv || fd < 0 || !ctx) {
        if (fd >= 0)
            close(fd);
        return RPC_ERR_INVAL;
    }
    if (srv->shutting_down) {
        close(fd);
        return RPC_ERR_STATE;
    }
    rpc_tls_accept(srv, ctx, fd);
    return 0;
}

int rpc_server_adopt_peer(struct rpc_server *srv, int fd, const struct rpc_adopt_info *info)
{
    return conn_new(srv, fd, info);
}

void rpc_server_warnf(const struct rpc_server *srv, const char *fmt, ...)
{
    if (!srv->cfg.log_warn)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    srv->cfg.log_warn(srv->cfg.log_arg, msg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    struct rpc_listener *li = arg;
    if (li->tls)
        rpc_tls_accept(li->srv, li->tls, fd);
    else
        conn_new(li->srv, fd, NULL);
}

static int listen_any(struct rpc_server *srv, const char *host, uint16_t port,
                      SSL_CTX *tls, uint16_t *bound_port)
{
    if (!srv || !host)
        return RPC_ERR_INVAL;
    if (srv->shutting_down)
        return RPC_ERR_STATE;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res) != 0 || !res)
        return RPC_ERR_ADDR;
    struct rpc_listener *li = metcd_calloc(1, sizeof *li);
    int rc = RPC_ERR_NOMEM;
    if (!li)
        goto err_res;
    li->srv = srv;
    if (tls) {
        if (SSL_CTX_up_ref(tls) != 1)
            goto err_li;
        li->tls = tls;
    }
    const struct addrinfo *ai = rpc_addrinfo_pick(res);
    li->ev = evconnlistener_new_bind(srv->base, on_accept, li,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                         LEV_OPT_CLOSE_ON_EXEC,
                                     1024, ai->ai_addr, (int)ai->ai_addrlen);
    if (!li->ev) {
        rc = RPC_ERR_ADDR;
        goto err_li;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(evconnlistener_get_fd(li->ev), (struct sockaddr *)&ss, &sl);
    if (bound_port) {
        if (ss.ss_family == AF_INET)
            *bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else
            *bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    if (srv->cz) {
        char name[80];
        rpc_addr_format((struct sockaddr *)&ss, name, sizeof name);
        if (channelz_add(srv->cfg.channelz, CHANNELZ_LISTEN_SOCKET, srv->cz, name,
                         rpc_wall_ns(), &li->cz) != 0)
            goto err_ev;
        channelz_set_addrs(li->cz, (struct sockaddr *)&ss, sl, NULL, 0);
    }
    li->next = srv->listeners;
    srv->listeners = li;
    freeaddrinfo(res);
    return 0;

err_ev:
    evconnlistener_free(li->ev);
err_li:
    SSL_CTX_free(li->tls);
    metcd_free(li);
err_res:
    freeaddrinfo(res);
    return rc;
}

int rpc_server_listen(struct rpc_server *srv, const char *host, uint16_t port,
                      uint16_t *bound_port)
{
    return listen_any(srv, host, port, NULL, bound_port);
}

int rpc_server_listen_tls(struct rpc_server *srv, const char *host, uint16_t port,
                          struct ssl_ctx_st *ctx, uint16_t *bound_port)
{
    if (!ctx)
        return RPC_ERR_INVAL;
    return listen_any(srv, host, port, ctx, bound_port);
}

static void listeners_free(struct rpc_server *srv)
{
    while (srv->listeners) {
        struct rpc_listener *li = srv->listeners;
        srv->listeners = li->next;
        evconnlistener_free(li->ev);
        channelz_remove(li->cz);
        SSL_CTX_free(li->tls);
        metcd_free(li);
    }
}

static void on_grace_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rpc_server *srv = arg;
    for (struct rpc_conn *c = srv->conns; c; c = c->next)
        rpc_conn_kill(c);
}

int rpc_server_shutdown(struct rpc_server *srv, uint32_t grace_ms, void (*done)(void *data),
                        void *data)
{
    if (!srv)
        return RPC_ERR_INVAL;
    if (srv->shutting_down)
        return RPC_ERR_STATE;
    srv->shutting_down = true;
    srv->done = done;
    srv->done_data = data;
    listeners_free(srv);
    rpc_tls_shutdown(srv);
    srv->grace_ev = evtimer_new(srv->base, on_grace_over, srv);
    if (!srv->grace_ev)
        return RPC_ERR_NOMEM;
    struct timeval tv = {grace_ms / 1000, (grace_ms % 1000) * 1000};
    evtimer_add(srv->grace_ev, &tv);
    for (struct rpc_conn *c = srv->conns; c; c = c->next) {
        switch (c->kind) {
        case RPC_CONN_SNIFF:
            rpc_conn_kill(c);
            break;
        case RPC_CONN_H2:
            rpc_h2_goaway(c);
            break;
        case RPC_CONN_HTTP1:
            if (rpc_http1_idle(c))
                rpc_conn_kill(c);
            else
                c->close_after_write = true;
            break;
        }
    }
    if (!srv->conns) {
        srv->done = NULL;
        if (done)
            done(data);
    }
    return 0;
}

void rpc_server_free(struct rpc_server *srv)
{
    if (!srv)
        return;
    srv->done = NULL;
    listeners_free(srv);
    rpc_tls_free_all(srv);
    while (srv->conns)
        rpc_conn_free(srv->conns);
    if (srv->grace_ev)
        event_free(srv->grace_ev);
    metcd_free(srv->health);
    metcd_free(srv->channelz_svc);
    for (size_t i = 0; i < srv->n_routes; i++)
        metcd_free(srv->routes[i].path);
    metcd_free(srv->routes);
    metcd_free(srv->methods);
    channelz_remove(srv->cz);
    nghttp2_option_del(srv->h2_opt);
    nghttp2_session_callbacks_del(srv->h2_cbs);
    metcd_free(srv->name);
    metcd_free(srv);
}

void rpc_server_get_stats(const struct rpc_server *srv, struct rpc_server_stats *st)
{
    *st = srv->stats;
}
