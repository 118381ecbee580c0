/* tests/interop/echo_server.c - a server/rpc server for the interop tests:
 * metcd.test.Echo, grpc.health.v1.Health, grpc.channelz.v1.Channelz and an
 * HTTP/1.1 route /hello, on 127.0.0.1 with a free port printed as
 * "PORT <n>" on stdout. Exits on SIGTERM/SIGINT (graceful) or stdin EOF. */
#include "echo_service.h"

#include "common/mem.h"
#include "server/channelz/channelz.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct event_base *base;
static struct rpc_server *srv;

static int health_check(const char *service, void *data)
{
    (void)data;
    if (strcmp(service, "") == 0 || strcmp(service, "metcd.test.Echo") == 0)
        return 1;
    if (strcmp(service, "notserving") == 0)
        return 2;
    return 0;
}

static void on_hello(struct rpc_http_req *req, void *data)
{
    (void)data;
    char body[256];
    snprintf(body, sizeof body, "{\"method\":\"%s\",\"path\":\"%s\",\"query\":\"%s\"}",
             rpc_http_method(req), rpc_http_path(req), rpc_http_query(req));
    rpc_http_respond(req, 200, "application/json", body, strlen(body));
}

static void on_shutdown_done(void *data)
{
    (void)data;
    event_base_loopexit(base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    rpc_server_shutdown(srv, 2000, on_shutdown_done, NULL);
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    char buf[64];
    if (read(fd, buf, sizeof buf) <= 0)
        event_base_loopexit(base, NULL);
}

int main(int argc, char **argv)
{
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    struct channelz *cz;
    if (channelz_new(&cz, 30) != 0)
        return 1;
    base = event_base_new();
    struct rpc_server_config cfg = {.channelz = cz, .name = "echo-server",
                                    .max_recv_msg_size = 1024 * 1024};
    if (!base || rpc_server_new(&srv, base, &cfg) != 0)
        return 1;
    uint16_t port = 0;
    int rc = echo_service_register(srv, base);
    if (!rc)
        rc = rpc_server_add_health(srv, health_check, NULL);
    if (!rc)
        rc = rpc_server_add_channelz(srv, cz);
    if (!rc)
        rc = rpc_server_route(srv, "/hello", on_hello, NULL, NULL);
    if (!rc)
        rc = rpc_server_listen(srv, host, 0, &port);
    if (rc) {
        fprintf(stderr, "echo_server: %s\n", rpc_strerror(rc));
        return 1;
    }
    printf("PORT %u\n", port);
    fflush(stdout);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, NULL);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, NULL);
    struct event *in = event_new(base, 0, EV_READ | EV_PERSIST, on_stdin, NULL);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    if (argc > 2 && strcmp(argv[2], "--stdin") == 0)
        event_add(in, NULL);
    event_base_dispatch(base);
    event_free(in);
    event_free(sigint);
    event_free(sigterm);
    rpc_server_free(srv);
    event_base_free(base);
    channelz_free(cz);
    return 0;
}
