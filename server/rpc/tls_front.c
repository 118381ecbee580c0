/* server/rpc/tls_front.c - the TLS front end of https listeners: each
 * accepted socket gets a server-side TLS handshake (libevent's
 * bufferevent_openssl) bounded by handshake_timeout_ms; once it completes,
 * a socketpair carries the decrypted stream to an ordinary connection
 * (rpc_server_adopt_peer), so the sniffer, HTTP/2 and HTTP/1.1 code serve
 * TLS and plaintext clients alike. The relay moves bytes both ways and
 * stops reading a side while the other side's unsent bytes pass
 * conn_queue_bytes, so it holds at most that much per direction. */
#include "server/rpc/internal.h"

#include "common/mem.h"
#include "server/channelz/channelz.h"
#include "server/tls/tls.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct rpc_tls_conn {
    struct rpc_server *srv;
    struct bufferevent *tls;   /* the client's socket, encrypted side */
    struct bufferevent *plain; /* our end of the socketpair; NULL in handshake */
    bool closing;              /* flushing the last bytes to one side */
    char peer[64];
    struct rpc_tls_conn *prev, *next;
};

static void tconn_free(struct rpc_tls_conn *t)
{
    struct rpc_server *srv = t->srv;
    if (t->prev)
        t->prev->next = t->next;
    else
        srv->tls_conns = t->next;
    if (t->next)
        t->next->prev = t->prev;
    if (t->plain)
        bufferevent_free(t->plain); /* closes our end: the connection sees EOF */
    if (t->tls)
        bufferevent_free(t->tls); /* frees the SSL, closes the socket */
    metcd_free(t);
}

static size_t relay_bound(const struct rpc_tls_conn *t)
{
    return t->srv->cfg.conn_queue_bytes;
}

/* Moves what `from` has read into `to`'s output; pauses `from` while `to`
 * holds a full bound. */
static void relay(struct rpc_tls_conn *t, struct bufferevent *from, struct bufferevent *to)
{
    struct evbuffer *out = bufferevent_get_output(to);
    if (evbuffer_add_buffer(out, bufferevent_get_input(from)) != 0) {
        tconn_free(t);
        return;
    }
    if (evbuffer_get_length(out) >= relay_bound(t))
        bufferevent_disable(from, EV_READ);
}

static void on_tls_read(struct bufferevent *bev, void *arg)
{
    struct rpc_tls_conn *t = arg;
    if (t->plain && !t->closing)
        relay(t, bev, t->plain);
}

static void on_plain_read(struct bufferevent *bev, void *arg)
{
    struct rpc_tls_conn *t = arg;
    if (!t->closing)
        relay(t, bev, t->tls);
}

/* `bev`'s output fell below half the bound (or emptied, when closing):
 * resume the side that feeds it, or finish closing. */
static void on_written(struct bufferevent *bev, void *arg)
{
    struct rpc_tls_conn *t = arg;
    if (t->closing) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            tconn_free(t);
        return;
    }
    struct bufferevent *feeder = bev == t->tls ? t->plain : t->tls;
    if (feeder)
        bufferevent_enable(feeder, EV_READ);
}

/* One side ended: hand the other side what is left, then close both. */
static void relay_end(struct rpc_tls_conn *t, struct bufferevent *ended, bool error)
{
    struct bufferevent *other = ended == t->tls ? t->plain : t->tls;
    if (!error && other) {
        struct evbuffer *in = bufferevent_get_input(ended);
        if (evbuffer_get_length(in))
            evbuffer_add_buffer(bufferevent_get_output(other), in);
    }
    if (error || !other || evbuffer_get_length(bufferevent_get_output(other)) == 0) {
        tconn_free(t);
        return;
    }
    t->closing = true;
    bufferevent_disable(ended, EV_READ);
    bufferevent_disable(other, EV_READ);
    bufferevent_setwatermark(other, EV_WRITE, 0, 0);
}

static void on_plain_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        relay_end(arg, bev, (what & BEV_EVENT_ERROR) != 0);
}

/* The common name of the client's certificate when the handshake verified
 * it (etcd's AuthInfoFromTLS reads the verified chain's leaf); "" otherwise. */
static void peer_cn(struct rpc_tls_conn *t, char *out, size_t len)
{
    out[0] = 0;
    SSL *ssl = bufferevent_openssl_get_ssl(t->tls);
    if (!ssl || SSL_get_verify_result(ssl) != X509_V_OK)
        return;
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (!cert)
        return;
    X509_NAME *name = X509_get_subject_name(cert);
    if (name && X509_NAME_get_text_by_NID(name, NID_commonName, out, (int)len) < 0)
        out[0] = 0;
    X509_free(cert);
}

void rpc_channelz_tls(struct channelz_node *n, SSL *ssl)
{
    if (!n || !ssl)
        return;
    const SSL_CIPHER *ciph = SSL_get_current_cipher(ssl);
    const char *std = ciph ? SSL_CIPHER_standard_name(ciph) : NULL;
    const char *other = std || !ciph ? NULL : SSL_CIPHER_get_name(ciph);
    uint8_t *lder = NULL, *rder = NULL;
    X509 *lc = SSL_get_certificate(ssl); /* borrowed */
    int ln = lc ? i2d_X509(lc, &lder) : -1;
    X509 *rc = SSL_get1_peer_certificate(ssl);
    int rn = rc ? i2d_X509(rc, &rder) : -1;
    X509_free(rc);
    /* out of memory: the socket shows no security, nothing else changes */
    (void)channelz_set_tls(n, std, other, ln > 0 ? lder : NULL, ln > 0 ? (size_t)ln : 0,
                           rn > 0 ? rder : NULL, rn > 0 ? (size_t)rn : 0);
    OPENSSL_free(lder);
    OPENSSL_free(rder);
}

/* The handshake is done: start the connection behind a socketpair. */
static void tls_established(struct rpc_tls_conn *t)
{
    struct rpc_server *srv = t->srv;
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) != 0) {
        rpc_server_warnf(srv, "closing TLS connection from \"%s\": socketpair failed",
                         t->peer);
        tconn_free(t);
        return;
    }
    t->plain = bufferevent_socket_new(srv->base, sp[0], BEV_OPT_CLOSE_ON_FREE);
    if (!t->plain) {
        close(sp[0]);
        close(sp[1]);
        tconn_free(t);
        return;
    }
    char cn[256] = "";
    peer_cn(t, cn, sizeof(cn));
    struct rpc_adopt_info info = {.peer = t->peer, .cert_cn = cn};
    /* for channelz: the client's socket and the session */
    struct sockaddr_storage la, ra;
    socklen_t ll = sizeof la, rl = sizeof ra;
    evutil_socket_t fd = bufferevent_getfd(t->tls);
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&la, &ll) == 0 &&
        getpeername(fd, (struct sockaddr *)&ra, &rl) == 0) {
        info.local = (struct sockaddr *)&la;
        info.local_len = ll;
        info.remote = (struct sockaddr *)&ra;
        info.remote_len = rl;
    }
    info.ssl = bufferevent_openssl_get_ssl(t->tls);
    int adopted = rpc_server_adopt_peer(srv, sp[1], &info);
    if (adopted != 0) { /* sp[1] closed */
        tconn_free(t);
        return;
    }
    size_t bound = relay_bound(t);
    bufferevent_set_timeouts(t->tls, NULL, NULL);
    bufferevent_setcb(t->plain, on_plain_read, on_written, on_plain_event, t);
    bufferevent_setwatermark(t->plain, EV_WRITE, bound / 2, 0);
    bufferevent_setwatermark(t->tls, EV_WRITE, bound / 2, 0);
    if (bufferevent_enable(t->plain, EV_READ | EV_WRITE) != 0) {
        tconn_free(t);
        return;
    }
    if (evbuffer_get_length(bufferevent_get_input(t->tls)))
        relay(t, t->tls, t->plain);
}

static void on_tls_event(struct bufferevent *bev, short what, void *arg)
{
    struct rpc_tls_conn *t = arg;
    if (what & BEV_EVENT_CONNECTED) {
        tls_established(t);
        return;
    }
    if (t->plain) {
        if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
            relay_end(t, bev, (what & BEV_EVENT_ERROR) != 0);
        return;
    }
    /* The handshake failed: say why, as etcd does. */
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    const char *sni = ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
    char why[256];
    /* bufferevent_openssl keeps OpenSSL's errors on the bufferevent, the
     * newest first, after SSL_get_error's code (library 0) */
    unsigned long e, last = 0;
    while ((e = bufferevent_get_openssl_error(bev)) != 0)
        if (!last && ERR_GET_LIB(e) != 0)
            last = e;
    if (what & BEV_EVENT_TIMEOUT)
        snprintf(why, sizeof why, "tls: handshake timed out");
    else
        tls_error_text(ssl, last, why, sizeof why, (what & BEV_EVENT_EOF) ? "EOF" : "handshake failed");
    rpc_server_warnf(t->srv, "rejected connection from \"%s\" (error \"%s\", ServerName \"%s\")",
                     t->peer, why, sni ? sni : "");
    tconn_free(t);
}

void rpc_tls_accept(struct rpc_server *srv, SSL_CTX *ctx, int fd)
{
    if (srv->shutting_down) {
        close(fd);
        return;
    }
    struct rpc_tls_conn *t = metcd_calloc(1, sizeof *t);
    SSL *ssl = t ? SSL_new(ctx) : NULL; /* the SSL holds its own reference to ctx */
    if (!ssl) {
        metcd_free(t);
        close(fd);
        return;
    }
    t->srv = srv;
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
        rpc_addr_format((struct sockaddr *)&peer, t->peer, sizeof t->peer);
    else
        snprintf(t->peer, sizeof t->peer, "unknown");
    evutil_make_socket_nonblocking(fd);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    t->tls = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (!t->tls) {
        SSL_free(ssl);
        close(fd);
        metcd_free(t);
        return;
    }
    t->next = srv->tls_conns;
    if (srv->tls_conns)
        srv->tls_conns->prev = t;
    srv->tls_conns = t;
    uint32_t ms = srv->cfg.handshake_timeout_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    bufferevent_set_timeouts(t->tls, &tv, &tv);
    bufferevent_setcb(t->tls, on_tls_read, on_written, on_tls_event, t);
    if (bufferevent_enable(t->tls, EV_READ | EV_WRITE) != 0)
        tconn_free(t);
}

void rpc_tls_shutdown(struct rpc_server *srv)
{
    for (struct rpc_tls_conn *t = srv->tls_conns, *next; t; t = next) {
        next = t->next;
        if (!t->plain)
            tconn_free(t);
    }
}

void rpc_tls_free_all(struct rpc_server *srv)
{
    while (srv->tls_conns)
        tconn_free(srv->tls_conns);
}
