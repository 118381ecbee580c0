/* tests/interop/echo_client.c - our client (server/rpc) against a server
 * that is not ours: interop.py runs it against a python3-grpcio server of
 * metcd.test.Echo. Usage: echo_client PORT DEAD_PORT. Exits 0 when every
 * check holds, printing the first failure otherwise. */
#include "echo.pb-c.h"

#include "common/mem.h"
#include "server/rpc/rpc.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks;

#define CHECK(cond, what)                                                                      \
    do {                                                                                       \
        checks++;                                                                              \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "echo_client: check failed: %s (%s:%d)\n", what, __FILE__,        \
                    __LINE__);                                                                 \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

static struct event_base *base;
static struct rpc_client *cl;

static enum rpc_code unary(const char *message, int delay, int status, uint32_t timeout,
                           Metcd__Test__EchoResponse **resp, char **msg)
{
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.message = (char *)message;
    req.delay_ms = delay;
    req.status = status;
    struct rpc_md md[] = {{"token", "tok-123"}};
    enum rpc_code code;
    ProtobufCMessage *r = NULL;
    int rc = rpc_client_unary_sync(cl, "/metcd.test.Echo/Unary", &req.base,
                                   &metcd__test__echo_response__descriptor, md, 1, timeout, &r,
                                   &code, msg);
    CHECK(rc == 0, "unary started");
    *resp = (Metcd__Test__EchoResponse *)r;
    return code;
}

struct stream_state {
    bool done;
    enum rpc_code code;
    int n;
    int bad;
};

static void on_msg(struct rpc_ccall *c, const ProtobufCMessage *m, void *data)
{
    (void)c;
    struct stream_state *s = data;
    if (((const Metcd__Test__EchoResponse *)m)->index != s->n)
        s->bad++;
    s->n++;
}

static void on_close(struct rpc_ccall *c, enum rpc_code code, const char *msg, void *data)
{
    (void)c;
    (void)msg;
    struct stream_state *s = data;
    s->done = true;
    s->code = code;
}

static const struct rpc_ccall_ops ops = {.on_message = on_msg, .on_close = on_close};

static void wait_done(struct stream_state *s)
{
    while (!s->done)
        if (event_base_loop(base, EVLOOP_ONCE) != 0)
            break;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    char ep[64], dead[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%s", argv[1]);
    snprintf(dead, sizeof dead, "http://127.0.0.1:%s", argv[2]);
    const char *eps[] = {dead, ep};
    base = event_base_new();
    struct rpc_client_config cfg = {.endpoints = eps, .n_endpoints = 2};
    CHECK(rpc_client_new(&cl, base, &cfg) == 0, "client");

    Metcd__Test__EchoResponse *resp;
    char *msg;
    enum rpc_code code = unary("hello", 0, 0, 5000, &resp, &msg);
    CHECK(code == RPC_CODE_OK, "unary OK (after failing over from a dead endpoint)");
    CHECK(strcmp(resp->message, "hello") == 0, "unary message");
    CHECK(strcmp(resp->token, "tok-123") == 0, "metadata reaches a grpcio server");
    CHECK(rpc_client_endpoint(cl) == 1, "second endpoint in use");
    protobuf_c_message_free_unpacked(&resp->base, &metcd_pb_allocator);
    metcd_free(msg);

    code = unary("etcdserver: requested lease not found \xc3\xa9 100%", 0, 5, 5000, &resp, &msg);
    CHECK(code == RPC_CODE_NOT_FOUND, "status code from grpcio");
    CHECK(strcmp(msg, "etcdserver: requested lease not found \xc3\xa9 100%") == 0,
          "percent-decoded grpc-message");
    CHECK(resp == NULL, "no response with an error");
    metcd_free(msg);

    code = unary("slow", 2000, 0, 100, &resp, &msg);
    CHECK(code == RPC_CODE_DEADLINE_EXCEEDED, "deadline");
    metcd_free(msg);

    /* Server streaming: 1000 answers in order. */
    struct stream_state s = {0};
    struct rpc_ccall *c;
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.count = 1000;
    CHECK(rpc_ccall_start(cl, "/metcd.test.Echo/ServerStream",
                          &metcd__test__echo_response__descriptor, NULL, 0, 5000, &ops, &s,
                          &c) == 0, "stream start");
    rpc_ccall_send(c, &req.base);
    rpc_ccall_close_send(c);
    wait_done(&s);
    CHECK(s.code == RPC_CODE_OK && s.n == 1000 && s.bad == 0, "server stream from grpcio");

    /* Bidi: 100 messages, answers while the stream is open. */
    memset(&s, 0, sizeof s);
    CHECK(rpc_ccall_start(cl, "/metcd.test.Echo/Bidi", &metcd__test__echo_response__descriptor,
                          NULL, 0, 5000, &ops, &s, &c) == 0, "bidi start");
    Metcd__Test__EchoRequest b = METCD__TEST__ECHO_REQUEST__INIT;
    b.message = "b";
    for (int i = 0; i < 100; i++)
        CHECK(rpc_ccall_send(c, &b.base) == 0, "bidi send");
    while (s.n < 100 && !s.done)
        event_base_loop(base, EVLOOP_ONCE);
    CHECK(s.n == 100 && !s.done, "bidi answers before half-close");
    rpc_ccall_close_send(c);
    wait_done(&s);
    CHECK(s.code == RPC_CODE_OK && s.bad == 0, "bidi status");

    /* Unknown method as grpcio words it. */
    ProtobufCMessage *r;
    CHECK(rpc_client_unary_sync(cl, "/metcd.test.Echo/Nope", &b.base,
                                &metcd__test__echo_response__descriptor, NULL, 0, 5000, &r, &code,
                                &msg) == 0, "nope");
    CHECK(code == RPC_CODE_UNIMPLEMENTED, "unimplemented from grpcio");
    metcd_free(msg);

    rpc_client_free(cl);
    event_base_free(base);
    printf("echo_client: %d checks passed\n", checks);
    return 0;
}
