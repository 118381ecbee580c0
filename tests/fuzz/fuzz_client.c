/* tests/fuzz/fuzz_client.c - libFuzzer target: arbitrary bytes from a
 * "server" into our client (HTTP/2 frames after a valid SETTINGS, response
 * headers, trailers, length-prefixed messages) while it has a unary and a
 * bidi call open. The client must end every call exactly once and free
 * everything. */
#include "echo.pb-c.h"

#include "server/rpc/rpc.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int listen_fd = -1;
static char endpoint[64];

static void setup_listener(void)
{
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) || listen(listen_fd, 16) ||
        getsockname(listen_fd, (struct sockaddr *)&a, &l))
        abort();
    snprintf(endpoint, sizeof endpoint, "127.0.0.1:%u", ntohs(a.sin_port));
}

static int closes;

static void on_unary(const ProtobufCMessage *resp, enum rpc_code code, const char *msg,
                     void *data)
{
    (void)resp;
    (void)code;
    (void)msg;
    (void)data;
    closes++;
}

static void on_msg(struct rpc_ccall *c, const ProtobufCMessage *m, void *data)
{
    (void)c;
    (void)m;
    (void)data;
}

static void on_close(struct rpc_ccall *c, enum rpc_code code, const char *msg, void *data)
{
    (void)c;
    (void)code;
    (void)msg;
    (void)data;
    closes++;
}

static const struct rpc_ccall_ops ops = {.on_message = on_msg, .on_close = on_close};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (listen_fd < 0)
        setup_listener();
    struct event_base *base = event_base_new();
    const char *eps[] = {endpoint};
    struct rpc_client_config cfg = {.endpoints = eps, .n_endpoints = 1,
                                    .max_recv_msg_size = 4096, .dial_timeout_ms = 1000};
    struct rpc_client *cl;
    if (!base || rpc_client_new(&cl, base, &cfg) != 0)
        abort();
    closes = 0;
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.message = "x";
    if (rpc_client_unary(cl, "/metcd.test.Echo/Unary", &req.base,
                         &metcd__test__echo_response__descriptor, NULL, 0, 1000, on_unary,
                         NULL) != 0)
        abort();
    struct rpc_ccall *c;
    if (rpc_ccall_start(cl, "/metcd.test.Echo/Bidi", &metcd__test__echo_response__descriptor,
                        NULL, 0, 1000, &ops, NULL, &c) != 0)
        abort();
    rpc_ccall_send(c, &req.base);
    /* Let the client connect, then accept and speak as the server. */
    int fd = -1;
    for (int i = 0; i < 50 && fd < 0; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK);
    }
    if (fd >= 0) {
        static const uint8_t settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
        send(fd, settings, sizeof settings, MSG_NOSIGNAL);
        send(fd, data, size, MSG_NOSIGNAL);
        shutdown(fd, SHUT_WR);
        uint8_t sink[16384];
        for (int turn = 0; turn < 64 && closes < 2; turn++) {
            event_base_loop(base, EVLOOP_NONBLOCK);
            while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
                ;
        }
        close(fd);
    }
    rpc_client_free(cl); /* ends what is still open */
    if (closes != 2)
        abort(); /* every call reports exactly once */
    event_base_free(base);
    return 0;
}
