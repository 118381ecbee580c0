/* tests/unit/server/test_client.c - server/rpc/client.c against our
 * server: unary, streaming both ways, statuses, metadata, deadlines,
 * cancellation, failover between endpoints, the pending-call bound, GOAWAY
 * and channelz channel/subchannel/socket nodes. */
#include "harness.h"

#include "common/mem.h"

#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct fixture f;
static struct rpc_client *cl;
static char ep[64];

struct result {
    bool done;
    enum rpc_code code;
    char msg[256];
    char resp_msg[256];
    char token[64];
    int n_msgs;
    int last_index;
};

static void on_unary_done(const ProtobufCMessage *resp, enum rpc_code code, const char *msg,
                          void *data)
{
    struct result *r = data;
    r->done = true;
    r->code = code;
    snprintf(r->msg, sizeof r->msg, "%s", msg);
    if (resp) {
        const Metcd__Test__EchoResponse *e = (const Metcd__Test__EchoResponse *)resp;
        snprintf(r->resp_msg, sizeof r->resp_msg, "%s", e->message);
        snprintf(r->token, sizeof r->token, "%s", e->token);
    }
}

static void on_stream_msg(struct rpc_ccall *c, const ProtobufCMessage *msg, void *data)
{
    (void)c;
    struct result *r = data;
    r->last_index = ((const Metcd__Test__EchoResponse *)msg)->index;
    r->n_msgs++;
}

static void on_stream_close(struct rpc_ccall *c, enum rpc_code code, const char *msg, void *data)
{
    (void)c;
    struct result *r = data;
    r->done = true;
    r->code = code;
    snprintf(r->msg, sizeof r->msg, "%s", msg);
}

static const struct rpc_ccall_ops stream_ops = {.on_message = on_stream_msg,
                                                .on_close = on_stream_close};

static uint16_t dead_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s, (struct sockaddr *)&a, sizeof a);
    socklen_t l = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &l);
    close(s);
    return ntohs(a.sin_port);
}

static void setup(void)
{
    fixture_setup(&f, NULL);
    snprintf(ep, sizeof ep, "127.0.0.1:%u", f.port);
    const char *eps[] = {ep};
    struct rpc_client_config cfg = {.endpoints = eps, .n_endpoints = 1, .channelz = f.cz,
                                    .target = "test-target"};
    ck_assert_int_eq(rpc_client_new(&cl, f.base, &cfg), 0);
    echo_cancelled = 0;
}

static void teardown(void)
{
    rpc_client_free(cl);
    run_for(f.base, 10);
    fixture_teardown(&f);
    ck_assert_int_eq(echo_live, 0);
}

static int unary(struct rpc_client *c, const char *message, int delay, int status,
                 uint32_t timeout, struct result *r)
{
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.message = (char *)message;
    req.delay_ms = delay;
    req.status = status;
    struct rpc_md md[] = {{"token", "tok"}};
    memset(r, 0, sizeof *r);
    return rpc_client_unary(c, "/metcd.test.Echo/Unary", &req.base,
                            &metcd__test__echo_response__descriptor, md, 1, timeout,
                            on_unary_done, r);
}

START_TEST(unary_ok_and_metadata)
{
    struct result r;
    ck_assert_int_eq(unary(cl, "hi", 0, 0, 1000, &r), 0);
    ck_assert(run_until(f.base, &r.done, 2000));
    ck_assert_int_eq(r.code, RPC_CODE_OK);
    ck_assert_str_eq(r.resp_msg, "hi");
    ck_assert_str_eq(r.token, "tok");
    ck_assert_int_eq(rpc_client_endpoint(cl), 0);
    /* 100 more on the same connection. */
    struct result many[100];
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(unary(cl, "m", i % 3, 0, 2000, &many[i]), 0);
    for (int i = 0; i < 100; i++) {
        ck_assert(run_until(f.base, &many[i].done, 2000));
        ck_assert_int_eq(many[i].code, RPC_CODE_OK);
    }
}
END_TEST

START_TEST(status_and_message_decoded)
{
    struct result r;
    ck_assert_int_eq(unary(cl, "etcdserver: mvcc: required revision has been compacted \xe2\x9c\x93%",
                           0, RPC_CODE_OUT_OF_RANGE, 1000, &r), 0);
    ck_assert(run_until(f.base, &r.done, 2000));
    ck_assert_int_eq(r.code, RPC_CODE_OUT_OF_RANGE);
    ck_assert_str_eq(r.msg, "etcdserver: mvcc: required revision has been compacted \xe2\x9c\x93%");
    ck_assert(!rpc_client_unary(cl, "/metcd.test.Echo/Nope",
                                &(Metcd__Test__EchoRequest)METCD__TEST__ECHO_REQUEST__INIT.base,
                                &metcd__test__echo_response__descriptor, NULL, 0, 1000,
                                on_unary_done, memset(&r, 0, sizeof r)));
    ck_assert(run_until(f.base, &r.done, 2000));
    ck_assert_int_eq(r.code, RPC_CODE_UNIMPLEMENTED);
    ck_assert_str_eq(r.msg, "unknown method Nope for service metcd.test.Echo");
}
END_TEST

START_TEST(deadline)
{
    struct result r;
    ck_assert_int_eq(unary(cl, "slow", 5000, 0, 50, &r), 0);
    ck_assert(run_until(f.base, &r.done, 1000));
    ck_assert_int_eq(r.code, RPC_CODE_DEADLINE_EXCEEDED);
    ck_assert_str_eq(r.msg, "context deadline exceeded");
    WAIT_UNTIL(f.base, echo_cancelled == 1, 2000);
    ck_assert_uint_eq(echo_cancelled, 1); /* the server side ended too */
    ck_assert_int_eq(echo_live, 0);
}
END_TEST

START_TEST(server_stream_and_cancel)
{
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.count = 500;
    struct result r = {0};
    struct rpc_ccall *c;
    ck_assert_int_eq(rpc_ccall_start(cl, "/metcd.test.Echo/ServerStream",
                                     &metcd__test__echo_response__descriptor, NULL, 0, 2000,
                                     &stream_ops, &r, &c), 0);
    ck_assert_int_eq(rpc_ccall_send(c, &req.base), 0);
    ck_assert_int_eq(rpc_ccall_close_send(c), 0);
    ck_assert_int_eq(rpc_ccall_close_send(c), RPC_ERR_CLOSED);
    ck_assert(run_until(f.base, &r.done, 2000));
    ck_assert_int_eq(r.code, RPC_CODE_OK);
    ck_assert_int_eq(r.n_msgs, 500);
    ck_assert_int_eq(r.last_index, 499);
    /* Cancel a long stream. */
    req.count = 1000000;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(rpc_ccall_start(cl, "/metcd.test.Echo/ServerStream",
                                     &metcd__test__echo_response__descriptor, NULL, 0, 0,
                                     &stream_ops, &r, &c), 0);
    rpc_ccall_send(c, &req.base);
    rpc_ccall_close_send(c);
    for (int i = 0; i < 100 && r.n_msgs == 0; i++)
        run_for(f.base, 10);
    ck_assert(!r.done);
    ck_assert_int_gt(r.n_msgs, 0);
    rpc_ccall_cancel(c);
    ck_assert(r.done);
    ck_assert_int_eq(r.code, RPC_CODE_CANCELLED);
    ck_assert_str_eq(r.msg, "context canceled");
    WAIT_UNTIL(f.base, echo_cancelled == 1, 2000);
    ck_assert_uint_eq(echo_cancelled, 1);
}
END_TEST

/* A paused call holds the server back by flow control; the connection's
 * other calls go on; resuming lets the stream finish. */
START_TEST(pause_recv_holds_the_server_back)
{
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    static uint8_t payload[16384];
    req.payload = (ProtobufCBinaryData){sizeof payload, payload};
    req.count = 1000; /* 16 MiB in all */
    struct result r = {0};
    struct rpc_ccall *c;
    ck_assert_int_eq(rpc_ccall_start(cl, "/metcd.test.Echo/ServerStream",
                                     &metcd__test__echo_response__descriptor, NULL, 0, 0,
                                     &stream_ops, &r, &c), 0);
    ck_assert_int_eq(rpc_ccall_pause_recv(c, 1), 0);
    rpc_ccall_send(c, &req.base);
    rpc_ccall_close_send(c);
    run_for(f.base, 300);
    int held = r.n_msgs;
    run_for(f.base, 200);
    ck_assert_int_eq(r.n_msgs, held); /* stopped after one stream window */
    ck_assert_int_lt(held, 200);
    ck_assert(!r.done);
    struct result u;
    ck_assert_int_eq(unary(cl, "meanwhile", 0, 0, 2000, &u), 0);
    ck_assert(run_until(f.base, &u.done, 2000));
    ck_assert_int_eq(u.code, RPC_CODE_OK);
    ck_assert_int_eq(rpc_ccall_pause_recv(c, 0), 0);
    ck_assert(run_until(f.base, &r.done, 5000));
    ck_assert_int_eq(r.code, RPC_CODE_OK);
    ck_assert_int_eq(r.n_msgs, 1000);
    ck_assert_int_eq(rpc_ccall_pause_recv(NULL, 1), RPC_ERR_INVAL);
}
END_TEST

struct raw_result {
    struct result r;
    int n_raw;
    int last_index;
};

static void on_raw_msg(struct rpc_ccall *c, const uint8_t *msg, size_t len, void *data)
{
    (void)c;
    struct raw_result *rr = data;
    Metcd__Test__EchoResponse *e = metcd__test__echo_response__unpack(NULL, len, msg);
    ck_assert_ptr_nonnull(e);
    rr->last_index = e->index;
    rr->n_raw++;
    metcd__test__echo_response__free_unpacked(e, NULL);
}

static void on_raw_close(struct rpc_ccall *c, enum rpc_code code, const char *msg, void *data)
{
    on_stream_close(c, code, msg, &((struct raw_result *)data)->r);
}

/* on_raw replaces on_message: the packed bytes, nothing unpacked for us. */
START_TEST(raw_messages)
{
    static const struct rpc_ccall_ops raw_ops = {
        .on_message = on_stream_msg, .on_close = on_raw_close, .on_raw = on_raw_msg};
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.count = 50;
    struct raw_result rr = {0};
    struct rpc_ccall *c;
    ck_assert_int_eq(rpc_ccall_start(cl, "/metcd.test.Echo/ServerStream",
                                     &metcd__test__echo_response__descriptor, NULL, 0, 2000,
                                     &raw_ops, &rr, &c), 0);
    ck_assert_int_eq(rpc_ccall_send(c, &req.base), 0);
    ck_assert_int_eq(rpc_ccall_close_send(c), 0);
    ck_assert(run_until(f.base, &rr.r.done, 2000));
    ck_assert_int_eq(rr.r.code, RPC_CODE_OK);
    ck_assert_int_eq(rr.n_raw, 50);
    ck_assert_int_eq(rr.last_index, 49);
    ck_assert_int_eq(rr.r.n_msgs, 0); /* on_message never ran */
}
END_TEST

START_TEST(bidi_and_client_stream)
{
    struct result r = {0};
    struct rpc_ccall *c;
    ck_assert_int_eq(rpc_ccall_start(cl, "/metcd.test.Echo/Bidi",
                                     &metcd__test__echo_response__descriptor, NULL, 0, 0,
                                     &stream_ops, &r, &c), 0);
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(rpc_ccall_send(c, &req.base), 0);
        run_for(f.base, 2);
    }
    WAIT_UNTIL(f.base, r.n_msgs == 20, 2000);
    ck_assert_int_eq(r.n_msgs, 20); /* answers arrive while the stream is open */
    ck_assert(!r.done);
    rpc_ccall_close_send(c);
    ck_assert(run_until(f.base, &r.done, 2000));
    ck_assert_int_eq(r.code, RPC_CODE_OK);
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(rpc_ccall_start(cl, "/metcd.test.Echo/ClientStream",
                                     &metcd__test__echo_response__descriptor, NULL, 0, 0,
                                     &stream_ops, &r, &c), 0);
    req.message = "ab";
    for (int i = 0; i < 5; i++)
        rpc_ccall_send(c, &req.base);
    rpc_ccall_close_send(c);
    ck_assert(run_until(f.base, &r.done, 2000));
    ck_assert_int_eq(r.code, RPC_CODE_OK);
    ck_assert_int_eq(r.n_msgs, 1);
    ck_assert_int_eq(r.last_index, 5);
}
END_TEST

START_TEST(failover_to_next_endpoint)
{
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%u", dead_port());
    const char *eps[] = {dead, ep};
    struct rpc_client *c2;
    struct rpc_client_config cfg = {.endpoints = eps, .n_endpoints = 2};
    ck_assert_int_eq(rpc_client_new(&c2, f.base, &cfg), 0);
    struct result r;
    ck_assert_int_eq(unary(c2, "fo", 0, 0, 2000, &r), 0);
    ck_assert(run_until(f.base, &r.done, 2000));
    ck_assert_int_eq(r.code, RPC_CODE_OK);
    ck_assert_int_eq(rpc_client_endpoint(c2), 1);
    rpc_client_free(c2);
}
END_TEST

START_TEST(all_endpoints_down)
{
    char d1[64], d2[64];
    snprintf(d1, sizeof d1, "127.0.0.1:%u", dead_port());
    snprintf(d2, sizeof d2, "127.0.0.1:%u", dead_port());
    const char *eps[] = {d1, d2};
    struct rpc_client *c2;
    struct rpc_client_config cfg = {.endpoints = eps, .n_endpoints = 2, .max_pending_calls = 2};
    ck_assert_int_eq(rpc_client_new(&c2, f.base, &cfg), 0);
    struct result r[3];
    ck_assert_int_eq(unary(c2, "a", 0, 0, 2000, &r[0]), 0);
    ck_assert_int_eq(unary(c2, "b", 0, 0, 2000, &r[1]), 0);
    ck_assert_int_eq(unary(c2, "c", 0, 0, 2000, &r[2]), RPC_ERR_FULL); /* bounded */
    ck_assert(run_until(f.base, &r[1].done, 2000));
    ck_assert(r[0].done);
    ck_assert_int_eq(r[0].code, RPC_CODE_UNAVAILABLE);
    ck_assert_int_eq(r[1].code, RPC_CODE_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(r[0].msg, "connection error"));
    rpc_client_free(c2);
}
END_TEST

/* Keepalive: a server that accepted the connection and then went silent
 * (a hung or partitioned member) ends the open call UNAVAILABLE once a
 * PING goes unanswered, and the next call fails over to the live
 * endpoint, whose connection then stays up while idle. */
START_TEST(keepalive_ends_calls_on_a_silent_server)
{
    int silent = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(silent, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(silent, 4), 0); /* the kernel accepts; nobody answers */
    socklen_t l = sizeof a;
    getsockname(silent, (struct sockaddr *)&a, &l);
    char hung[64];
    snprintf(hung, sizeof hung, "127.0.0.1:%u", ntohs(a.sin_port));
    const char *eps[] = {hung, ep};
    struct rpc_client *c2;
    struct rpc_client_config cfg = {.endpoints = eps, .n_endpoints = 2, .channelz = f.cz,
                                    .keepalive_time_ms = 100, .keepalive_timeout_ms = 200};
    ck_assert_int_eq(rpc_client_new(&c2, f.base, &cfg), 0);
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.count = 1;
    struct result r = {0};
    struct rpc_ccall *c;
    ck_assert_int_eq(rpc_ccall_start(c2, "/metcd.test.Echo/ServerStream",
                                     &metcd__test__echo_response__descriptor, NULL, 0, 0,
                                     &stream_ops, &r, &c), 0);
    ck_assert_int_eq(rpc_ccall_send(c, &req.base), 0);
    ck_assert(run_until(f.base, &r.done, 3000));
    ck_assert_int_eq(r.code, RPC_CODE_UNAVAILABLE);
    ck_assert_str_eq(r.msg, "keepalive ping failed to receive ACK within timeout");
    struct result u;
    ck_assert_int_eq(unary(c2, "after", 0, 0, 2000, &u), 0);
    ck_assert(run_until(f.base, &u.done, 2000));
    ck_assert_int_eq(u.code, RPC_CODE_OK);
    ck_assert_int_eq(rpc_client_endpoint(c2), 1);
    /* idle now (no call open): several intervals pass without a PING */
    run_for(f.base, 400);
    ck_assert_int_eq(rpc_client_endpoint(c2), 1);
    rpc_client_free(c2);
    close(silent);
}
END_TEST

START_TEST(server_goaway_then_reconnect)
{
    struct result r;
    ck_assert_int_eq(unary(cl, "x", 100, 0, 2000, &r), 0);
    WAIT_UNTIL(f.base, echo_live == 1, 2000);
    bool dummy = false;
    /* A second server on the same port is not possible; use shutdown of
     * the fixture: the in-flight call still completes. */
    ck_assert_int_eq(rpc_server_shutdown(f.srv, 1000, NULL, NULL), 0);
    ck_assert(run_until(f.base, &r.done, 2000));
    ck_assert_int_eq(r.code, RPC_CODE_OK);
    run_for(f.base, 20);
    ck_assert_int_eq(unary(cl, "y", 0, 0, 500, &r), 0);
    ck_assert(run_until(f.base, &r.done, 2000));
    ck_assert_int_eq(r.code, RPC_CODE_UNAVAILABLE); /* nobody listens any more */
    (void)dummy;
}
END_TEST

START_TEST(client_channelz_nodes)
{
    struct result r;
    ck_assert_int_eq(unary(cl, "x", 0, 0, 1000, &r), 0);
    ck_assert(run_until(f.base, &r.done, 2000));
    ck_assert_int_eq(unary(cl, "x", 0, 3, 1000, &r), 0);
    ck_assert(run_until(f.base, &r.done, 2000));
    struct channelz_node *out[4];
    int end;
    ck_assert_uint_eq(channelz_list(f.cz, CHANNELZ_CHANNEL, NULL, 0, 4, out, &end), 1);
    struct channelz_node *ch = out[0];
    ck_assert_str_eq(channelz_name(ch), "test-target");
    ck_assert_uint_eq(channelz_calls_of(ch)->started, 2);
    ck_assert_uint_eq(channelz_calls_of(ch)->succeeded, 1);
    ck_assert_uint_eq(channelz_calls_of(ch)->failed, 1);
    ck_assert_int_eq(channelz_state_of(ch), CHANNELZ_STATE_READY);
    struct channelz_node *subs[2];
    ck_assert_uint_eq(channelz_children(ch, CHANNELZ_SUBCHANNEL, subs, 2), 1);
    ck_assert_str_eq(channelz_name(subs[0]), ep);
    size_t n;
    const struct channelz_event *ev = channelz_events(ch, &n, NULL, NULL);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(ev[0].description, "Channel created");
    ck_assert_ptr_eq(ev[1].ref, subs[0]);
    struct channelz_node *socks[2];
    ck_assert_uint_eq(channelz_children(subs[0], CHANNELZ_SOCKET, socks, 2), 1);
    struct channelz_socket_data *sd = channelz_socket_of(socks[0]);
    ck_assert_uint_eq(sd->streams_started, 2);
    ck_assert_uint_eq(sd->streams_succeeded, 2); /* both got END_STREAM */
    ck_assert_uint_eq(sd->streams_failed, 0);
    ck_assert_uint_eq(sd->messages_sent, 2);
    ck_assert_uint_eq(sd->messages_received, 1);
    /* Freeing the client removes all three (nothing else holds them). */
    size_t before = channelz_count(f.cz);
    rpc_client_free(cl);
    cl = NULL;
    ck_assert_uint_eq(channelz_count(f.cz), before - 3);
}
END_TEST

static void on_close_restart(struct rpc_ccall *c, enum rpc_code code, const char *msg,
                             void *data)
{
    (void)c;
    (void)msg;
    struct result *r = data;
    r->n_msgs++;
    r->code = code;
    if (r->n_msgs < 50) {
        Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
        struct rpc_ccall *n;
        static const struct rpc_ccall_ops ops = {.on_close = on_close_restart};
        ck_assert_int_eq(rpc_ccall_start(cl, "/metcd.test.Echo/Unary",
                                         &metcd__test__echo_response__descriptor, NULL, 0, 1000,
                                         &ops, r, &n), 0);
        rpc_ccall_send(n, &req.base);
        rpc_ccall_close_send(n);
    } else {
        r->done = true;
    }
}

START_TEST(new_call_from_on_close)
{
    struct result r = {0};
    r.n_msgs = -1;
    on_close_restart(NULL, RPC_CODE_OK, "", &r);
    ck_assert(run_until(f.base, &r.done, 3000));
    ck_assert_int_eq(r.code, RPC_CODE_OK);
}
END_TEST

static int restarts_refused;

static void on_close_try_restart(struct rpc_ccall *c, enum rpc_code code, const char *msg,
                                 void *data)
{
    (void)c;
    (void)msg;
    (void)data;
    ck_assert_int_eq(code, RPC_CODE_CANCELLED);
    struct rpc_ccall *n;
    static const struct rpc_ccall_ops ops = {.on_close = on_close_try_restart};
    if (rpc_ccall_start(cl, "/metcd.test.Echo/Bidi", &metcd__test__echo_response__descriptor,
                        NULL, 0, 0, &ops, NULL, &n) == RPC_ERR_STATE)
        restarts_refused++;
}

START_TEST(free_refuses_new_calls)
{
    static const struct rpc_ccall_ops ops = {.on_close = on_close_try_restart};
    struct rpc_ccall *c;
    restarts_refused = 0;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(rpc_ccall_start(cl, "/metcd.test.Echo/Bidi",
                                         &metcd__test__echo_response__descriptor, NULL, 0, 0,
                                         &ops, NULL, &c), 0);
    WAIT_UNTIL(f.base, echo_live == 3, 2000);
    rpc_client_free(cl); /* terminates although every on_close tries again */
    cl = NULL;
    ck_assert_int_eq(restarts_refused, 3);
}
END_TEST

START_TEST(bad_arguments)
{
    struct rpc_client *c2;
    const char *bad[] = {"no-port"};
    struct rpc_client_config cfg = {.endpoints = bad, .n_endpoints = 1};
    ck_assert_int_eq(rpc_client_new(&c2, f.base, &cfg), RPC_ERR_INVAL);
    cfg.n_endpoints = 0;
    ck_assert_int_eq(rpc_client_new(&c2, f.base, &cfg), RPC_ERR_INVAL);
    struct rpc_ccall *c;
    ck_assert_int_eq(rpc_ccall_start(cl, "nopath", &metcd__test__echo_response__descriptor, NULL,
                                     0, 0, &stream_ops, NULL, &c), RPC_ERR_INVAL);
}
END_TEST

START_TEST(allocation_failures_unwind)
{
    /* Every allocation of start + send + the round trip may fail: the
     * call either never starts or ends with a status; nothing leaks. */
    for (long i = 0; i < 40; i++) {
        struct result r;
        metcd_mem_fail_after(i);
        int rc = unary(cl, "x", 0, 0, 1000, &r);
        metcd_mem_fail_after(-1);
        if (rc == 0)
            ck_assert(run_until(f.base, &r.done, 2000));
        else
            ck_assert_int_eq(rc, RPC_ERR_NOMEM);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/client");
    TCase *tc = tcase_create("client");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, unary_ok_and_metadata);
    tcase_add_test(tc, status_and_message_decoded);
    tcase_add_test(tc, deadline);
    tcase_add_test(tc, server_stream_and_cancel);
    tcase_add_test(tc, pause_recv_holds_the_server_back);
    tcase_add_test(tc, raw_messages);
    tcase_add_test(tc, bidi_and_client_stream);
    tcase_add_test(tc, failover_to_next_endpoint);
    tcase_add_test(tc, all_endpoints_down);
    tcase_add_test(tc, server_goaway_then_reconnect);
    tcase_add_test(tc, client_channelz_nodes);
    tcase_add_test(tc, new_call_from_on_close);
    tcase_add_test(tc, free_refuses_new_calls);
    tcase_add_test(tc, keepalive_ends_calls_on_a_silent_server);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, allocation_failures_unwind);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
