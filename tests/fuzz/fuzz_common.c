/* tests/fuzz/fuzz_common.c - see fuzz_common.h. */
#include "fuzz_common.h"

#include "echo_service.h"
#include "server/channelz/channelz.h"
#include "server/rpc/rpc.h"
#include "server/tls/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int health_ok(const char *service, void *data)
{
    (void)data;
    return service[0] ? 0 : 1;
}

static void on_route(struct rpc_http_req *req, void *data)
{
    (void)data;
    size_t n;
    const void *body = rpc_http_body(req, &n);
    rpc_http_respond(req, 200, "text/plain", body, n);
}

static void write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0)
            return; /* socket buffer full: the rest is dropped (max_len keeps it rare) */
        p += n;
        len -= (size_t)n;
    }
}

/* sv[0] the client's end (non-blocking, a large send buffer), sv[1] the
 * server's. */
static void socket_pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    int bufsz = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof bufsz);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
}

struct fuzz_server {
    struct event_base *base;
    struct channelz *cz;
    struct rpc_server *srv;
};

static void server_new(struct fuzz_server *fs)
{
    struct event_base *base = event_base_new();
    struct channelz *cz;
    if (!base || channelz_new(&cz, 4) != 0)
        abort();
    struct rpc_server_config cfg = {.channelz = cz, .max_recv_msg_size = 4096,
                                    .stream_queue_bytes = 4096, .conn_queue_bytes = 16384,
                                    .handshake_timeout_ms = 50, .max_concurrent_streams = 16};
    struct rpc_server *srv;
    if (rpc_server_new(&srv, base, &cfg) != 0 || echo_service_register(srv, base) != 0 ||
        rpc_server_add_health(srv, health_ok, NULL) != 0 ||
        rpc_server_add_channelz(srv, cz) != 0 ||
        rpc_server_route(srv, "/v3/", on_route, NULL, NULL) != 0 ||
        rpc_server_route(srv, "/health", on_route, NULL, NULL) != 0)
        abort();
    fs->base = base;
    fs->cz = cz;
    fs->srv = srv;
}

static void server_free(struct fuzz_server *fs)
{
    rpc_server_free(fs->srv);
    channelz_free(fs->cz);
    event_base_free(fs->base);
}

void fuzz_one_connection(const uint8_t *prefix, size_t prefix_len, const uint8_t *data,
                         size_t len)
{
    struct fuzz_server fs;
    server_new(&fs);
    struct event_base *base = fs.base;
    struct rpc_server *srv = fs.srv;
    int sv[2];
    socket_pair(sv);
    if (rpc_server_adopt(srv, sv[1]) != 0)
        abort();
    if (prefix)
        write_all(sv[0], prefix, prefix_len);
    write_all(sv[0], data, len);
    shutdown(sv[0], SHUT_WR);
    uint8_t sink[16384];
    for (int turn = 0; turn < 64; turn++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        ssize_t n;
        while ((n = recv(sv[0], sink, sizeof sink, MSG_DONTWAIT)) > 0)
            ;
        struct rpc_server_stats st;
        rpc_server_get_stats(srv, &st);
        if (st.conns_open == 0 || n == 0)
            break;
    }
    close(sv[0]);
    server_free(&fs);
}

/* Contexts made once per process (the server's certificate is generated). */
static SSL_CTX *tls_ctx(bool server)
{
    static SSL_CTX *srv_ctx, *cli_ctx;
    SSL_CTX **slot = server ? &srv_ctx : &cli_ctx;
    if (!*slot) {
        struct tls_options o = {.auto_tls = server, .insecure_skip_verify = !server,
                                .cn_hint = "fuzz"};
        char err[256];
        int rc = server ? tls_server_ctx_new(slot, &o, err, sizeof err)
                        : tls_client_ctx_new(slot, &o, err, sizeof err);
        if (rc != 0)
            abort();
    }
    return *slot;
}

/* Runs the server's loop a turn; false once the client's end has read
 * everything the server will send (it closed). */
static bool pump(struct event_base *base, SSL *ssl)
{
    event_base_loop(base, EVLOOP_NONBLOCK);
    uint8_t sink[16384];
    for (;;) {
        int n = SSL_read(ssl, sink, sizeof sink);
        if (n > 0)
            continue;
        int e = SSL_get_error(ssl, n);
        ERR_clear_error();
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
    }
}

/* SSL_write of all of p, pumping the server while the socket is full;
 * gives up after a bounded number of turns. */
static void tls_write_all(struct event_base *base, SSL *ssl, const uint8_t *p, size_t len)
{
    for (int turn = 0; len && turn < 256; turn++) {
        int n = SSL_write(ssl, p, (int)(len > 16384 ? 16384 : len));
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        int e = SSL_get_error(ssl, n);
        ERR_clear_error();
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return;
        if (!pump(base, ssl))
            return;
    }
}

void fuzz_one_tls_connection(int mode, const uint8_t *data, size_t len)
{
    struct fuzz_server fs;
    server_new(&fs);
    int sv[2];
    socket_pair(sv);
    if (rpc_server_adopt_tls(fs.srv, sv[1], tls_ctx(true)) != 0)
        abort();
    if (mode == 0) {
        /* raw records: ClientHello parsing, alerts, garbage */
        write_all(sv[0], data, len);
        shutdown(sv[0], SHUT_WR);
        uint8_t sink[16384];
        for (int turn = 0; turn < 64; turn++) {
            event_base_loop(fs.base, EVLOOP_NONBLOCK);
            ssize_t n;
            while ((n = recv(sv[0], sink, sizeof sink, MSG_DONTWAIT)) > 0)
                ;
            if (n == 0)
                break;
        }
        close(sv[0]);
        server_free(&fs);
        return;
    }
    SSL *ssl = SSL_new(tls_ctx(false));
    if (!ssl || SSL_set_fd(ssl, sv[0]) != 1)
        abort();
    SSL_set_connect_state(ssl);
    bool up = false;
    for (int turn = 0; turn < 256 && !up; turn++) {
        int rc = SSL_do_handshake(ssl);
        if (rc == 1) {
            up = true;
            break;
        }
        int e = SSL_get_error(ssl, rc);
        ERR_clear_error();
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            break;
        event_base_loop(fs.base, EVLOOP_NONBLOCK);
    }
    if (up) {
        static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        if (mode == 1)
            tls_write_all(fs.base, ssl, preface, sizeof preface - 1);
        tls_write_all(fs.base, ssl, data, len);
        SSL_shutdown(ssl); /* close_notify: the server sees the end of input */
        ERR_clear_error();
        shutdown(sv[0], SHUT_WR);
        for (int turn = 0; turn < 64 && pump(fs.base, ssl); turn++)
            ;
    }
    SSL_free(ssl);
    ERR_clear_error();
    close(sv[0]);
    server_free(&fs);
}
