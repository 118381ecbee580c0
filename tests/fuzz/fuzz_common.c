/* tests/fuzz/fuzz_common.c - see fuzz_common.h. */
#include "fuzz_common.h"

#include "echo_service.h"
#include "server/channelz/channelz.h"
#include "server/rpc/rpc.h"

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

void fuzz_one_connection(const uint8_t *prefix, size_t prefix_len, const uint8_t *data,
                         size_t len)
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
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    int bufsz = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof bufsz);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
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
    rpc_server_free(srv);
    channelz_free(cz);
    event_base_free(base);
}
