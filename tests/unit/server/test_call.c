/* tests/unit/server/test_call.c - server/rpc/call.c: gRPC framing edge
 * cases, statuses as grpc-go words them, metadata, deadlines, cancellation
 * and the bounded per-stream outbound queue, driven by a raw HTTP/2
 * client. */
#include "harness.h"

#include "common/mem.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct fixture f;
static struct raw *r;

static void setup_small(void)
{
    struct rpc_server_config cfg = {.max_recv_msg_size = 1024};
    fixture_setup(&f, &cfg);
    r = raw_new(&f);
    echo_cancelled = 0;
}

static void teardown(void)
{
    raw_free(r);
    fixture_teardown(&f);
    ck_assert_int_eq(echo_live, 0);
}

static size_t echo_req(uint8_t **buf, size_t len, const char *message, size_t payload_len)
{
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.message = (char *)message;
    uint8_t *p = calloc(1, payload_len + 1);
    req.payload.data = p;
    req.payload.len = payload_len;
    size_t n = frame_msg(buf, len, &req.base);
    free(p);
    return n;
}

START_TEST(unary_split_byte_by_byte)
{
    uint8_t *body = NULL;
    size_t len = echo_req(&body, 0, "hello", 100);
    struct raw_stream *s = raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, body, len, 1, true);
    ck_assert(raw_wait_closed(r, s, 2000));
    ck_assert_int_eq(s->http_status, 200);
    ck_assert_int_eq(s->grpc_status, 0);
    ck_assert_uint_eq(raw_count_messages(s), 1);
    Metcd__Test__EchoResponse *resp = raw_response(s, 0);
    ck_assert_str_eq(resp->message, "hello");
    ck_assert_uint_eq(resp->payload.len, 100);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    free(body);
}
END_TEST

START_TEST(many_messages_in_one_frame)
{
    uint8_t *body = NULL;
    size_t len = 0;
    for (int i = 0; i < 100; i++)
        len = echo_req(&body, len, "x", 0);
    struct raw_stream *s = raw_call(r, "/metcd.test.Echo/ClientStream", NULL, 0, body, len, 0,
                                    true);
    ck_assert(raw_wait_closed(r, s, 2000));
    ck_assert_int_eq(s->grpc_status, 0);
    Metcd__Test__EchoResponse *resp = raw_response(s, 0);
    ck_assert_ptr_nonnull(resp);
    ck_assert_int_eq(resp->index, 100);
    ck_assert_uint_eq(strlen(resp->message), 100);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    free(body);
}
END_TEST

START_TEST(zero_length_messages)
{
    /* EchoRequest{} packs to zero bytes: frames of just the 5-byte prefix,
     * here split at every byte to cross frame boundaries too. */
    uint8_t body[15] = {0};
    struct raw_stream *s = raw_call(r, "/metcd.test.Echo/Bidi", NULL, 0, body, sizeof body, 1,
                                    true);
    ck_assert(raw_wait_closed(r, s, 2000));
    ck_assert_int_eq(s->grpc_status, 0);
    ck_assert_uint_eq(raw_count_messages(s), 3);
    for (size_t i = 0; i < 3; i++) {
        Metcd__Test__EchoResponse *resp = raw_response(s, i);
        ck_assert_int_eq(resp->index, (int)i);
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    }
}
END_TEST

START_TEST(oversize_message)
{
    uint8_t *body = NULL;
    size_t len = echo_req(&body, 0, "big", 2000);
    struct raw_stream *s = raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, body, len, 0, true);
    ck_assert(raw_wait_closed(r, s, 2000));
    ck_assert_int_eq(s->grpc_status, RPC_CODE_RESOURCE_EXHAUSTED);
    char want[128];
    snprintf(want, sizeof want, "grpc: received message larger than max (%zu vs. 1024)",
             len - 5);
    ck_assert_str_eq(s->grpc_message, want);
    ck_assert_uint_eq(raw_count_messages(s), 0);
    free(body);
}
END_TEST

START_TEST(unknown_method_and_service)
{
    struct raw_stream *a = raw_call(r, "/metcd.test.Echo/Nope", NULL, 0, NULL, 0, 0, true);
    struct raw_stream *b = raw_call(r, "/no.Such/Thing", NULL, 0, NULL, 0, 0, true);
    struct raw_stream *c = raw_call(r, "nonsense", NULL, 0, NULL, 0, 0, true);
    ck_assert(raw_wait_closed(r, a, 2000));
    ck_assert(raw_wait_closed(r, b, 2000));
    ck_assert(raw_wait_closed(r, c, 2000));
    ck_assert_int_eq(a->grpc_status, RPC_CODE_UNIMPLEMENTED);
    ck_assert_str_eq(a->grpc_message, "unknown method Nope for service metcd.test.Echo");
    ck_assert_int_eq(b->grpc_status, RPC_CODE_UNIMPLEMENTED);
    ck_assert_str_eq(b->grpc_message, "unknown service no.Such");
    /* nghttp2 itself refuses a :path that is not absolute. */
    ck_assert(c->grpc_status == RPC_CODE_UNIMPLEMENTED || c->rst_code != 0);
}
END_TEST

START_TEST(bad_content_type_is_415)
{
    struct rpc_md md[] = {{"content-type", "application/json"}};
    struct raw_stream *s = raw_call(r, "/metcd.test.Echo/Unary", md, 1, NULL, 0, 0, true);
    ck_assert(raw_wait_closed(r, s, 2000));
    ck_assert_int_eq(s->http_status, 415);
    ck_assert_int_eq(s->grpc_status, RPC_CODE_INTERNAL);
    ck_assert_str_eq(s->grpc_message, "invalid gRPC request content-type \"application/json\"");
}
END_TEST

START_TEST(compression_refused)
{
    struct rpc_md md[] = {{"grpc-encoding", "gzip"}};
    uint8_t *body = NULL;
    size_t len = echo_req(&body, 0, "z", 0);
    struct raw_stream *s = raw_call(r, "/metcd.test.Echo/Unary", md, 1, body, len, 0, true);
    ck_assert(raw_wait_closed(r, s, 2000));
    ck_assert_int_eq(s->grpc_status, RPC_CODE_UNIMPLEMENTED);
    ck_assert_str_eq(s->grpc_message,
                     "grpc: Decompressor is not installed for grpc-encoding \"gzip\"");
    /* A compressed flag without an encoding is INTERNAL. */
    body[0] = 1;
    struct raw_stream *t = raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, body, len, 0, true);
    ck_assert(raw_wait_closed(r, t, 2000));
    ck_assert_int_eq(t->grpc_status, RPC_CODE_INTERNAL);
    ck_assert_str_eq(t->grpc_message, "grpc: compressed flag set with identity or empty encoding");
    free(body);
}
END_TEST

START_TEST(undecodable_is_internal)
{
    uint8_t body[] = {0, 0, 0, 0, 3, 0x0a, 0x05, 'a'}; /* string field cut short */
    struct raw_stream *s = raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, body, sizeof body, 0,
                                    true);
    ck_assert(raw_wait_closed(r, s, 2000));
    ck_assert_int_eq(s->grpc_status, RPC_CODE_INTERNAL);
    ck_assert(strncmp(s->grpc_message, "grpc: error unmarshalling request", 33) == 0);
}
END_TEST

START_TEST(end_without_message)
{
    struct raw_stream *s = raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, NULL, 0, 0, true);
    ck_assert(raw_wait_closed(r, s, 2000));
    ck_assert_int_eq(s->grpc_status, RPC_CODE_INTERNAL);
    /* A message cut off by END_STREAM. */
    uint8_t body[] = {0, 0, 0, 0, 10, 1, 2};
    struct raw_stream *t = raw_call(r, "/metcd.test.Echo/Bidi", NULL, 0, body, sizeof body, 0,
                                    true);
    ck_assert(raw_wait_closed(r, t, 2000));
    ck_assert_int_eq(t->grpc_status, RPC_CODE_INTERNAL);
    ck_assert_uint_eq(echo_cancelled, 1); /* the bidi handler held it */
}
END_TEST

START_TEST(metadata_reaches_handler)
{
    struct rpc_md md[] = {{"token", "abc123"}, {"hasleader", "true"}};
    uint8_t *body = NULL;
    size_t len = echo_req(&body, 0, "m", 0);
    struct raw_stream *s = raw_call(r, "/metcd.test.Echo/Unary", md, 2, body, len, 0, true);
    ck_assert(raw_wait_closed(r, s, 2000));
    Metcd__Test__EchoResponse *resp = raw_response(s, 0);
    ck_assert_str_eq(resp->token, "abc123");
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    free(body);
}
END_TEST

START_TEST(status_message_percent_encoded)
{
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.message = "50% off\n\xc3\xa9";
    req.status = RPC_CODE_OUT_OF_RANGE;
    uint8_t *body = NULL;
    size_t len = frame_msg(&body, 0, &req.base);
    struct raw_stream *s = raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, body, len, 0, true);
    ck_assert(raw_wait_closed(r, s, 2000));
    ck_assert_int_eq(s->grpc_status, RPC_CODE_OUT_OF_RANGE);
    ck_assert_str_eq(s->grpc_message, "50%25 off%0A%C3%A9");
    ck_assert_int_eq(s->http_status, 200);
    free(body);
}
END_TEST

START_TEST(deadline_cancels_handler)
{
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.delay_ms = 5000;
    uint8_t *body = NULL;
    size_t len = frame_msg(&body, 0, &req.base);
    struct rpc_md md[] = {{"grpc-timeout", "50m"}};
    struct raw_stream *s = raw_call(r, "/metcd.test.Echo/Unary", md, 1, body, len, 0, true);
    ck_assert(raw_wait_closed(r, s, 1000));
    ck_assert_int_eq(s->grpc_status, RPC_CODE_DEADLINE_EXCEEDED);
    ck_assert_str_eq(s->grpc_message, "context deadline exceeded");
    ck_assert_uint_eq(echo_cancelled, 1);
    ck_assert_int_eq(echo_live, 0);
    struct rpc_server_stats st;
    rpc_server_get_stats(f.srv, &st);
    ck_assert_uint_eq(st.calls_open, 0);
    free(body);
}
END_TEST

START_TEST(reset_cancels_handler)
{
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.delay_ms = 5000;
    uint8_t *body = NULL;
    size_t len = frame_msg(&body, 0, &req.base);
    struct raw_stream *s = raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, body, len, 0, true);
    WAIT_UNTIL(f.base, echo_live == 1, 2000);
    ck_assert_int_eq(echo_live, 1);
    raw_rst(r, s);
    WAIT_UNTIL(f.base, echo_cancelled == 1, 2000);
    ck_assert_uint_eq(echo_cancelled, 1);
    ck_assert_int_eq(echo_live, 0);
    struct rpc_server_stats st;
    rpc_server_get_stats(f.srv, &st);
    ck_assert_uint_eq(st.calls_open, 0);
    free(body);
}
END_TEST

START_TEST(closed_connection_cancels_handler)
{
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.delay_ms = 5000;
    uint8_t *body = NULL;
    size_t len = frame_msg(&body, 0, &req.base);
    raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, body, len, 0, true);
    raw_call(r, "/metcd.test.Echo/Bidi", NULL, 0, body, len, 0, false);
    WAIT_UNTIL(f.base, echo_live == 2, 2000);
    ck_assert_int_eq(echo_live, 2);
    raw_free(r);
    r = raw_new(&f);
    WAIT_UNTIL(f.base, echo_cancelled == 2 && conns_open(&f) == 1, 2000);
    ck_assert_uint_eq(echo_cancelled, 2);
    ck_assert_int_eq(echo_live, 0);
    struct rpc_server_stats st;
    rpc_server_get_stats(f.srv, &st);
    ck_assert_uint_eq(st.conns_open, 1);
    free(body);
}
END_TEST

/* ---- backpressure: a flood method that sends until the queue is full ---- */

static int flood_accepted, flood_full, flood_drains;
static size_t flood_max_queued;
static struct rpc_call *flood_call;

static void flood_pump(struct rpc_call *call)
{
    Metcd__Test__EchoResponse resp = METCD__TEST__ECHO_RESPONSE__INIT;
    static uint8_t pay[1000];
    resp.payload.data = pay;
    resp.payload.len = sizeof pay;
    while (flood_accepted < 3000) {
        int rc = rpc_call_send(call, &resp.base);
        size_t q = rpc_call_queued_bytes(call);
        if (q > flood_max_queued)
            flood_max_queued = q;
        if (rc == RPC_ERR_FULL) {
            flood_full++;
            return;
        }
        ck_assert_int_eq(rc, 0);
        flood_accepted++;
    }
    rpc_call_finish(call, RPC_CODE_OK, NULL);
    flood_call = NULL;
}

static void on_flood(struct rpc_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    flood_call = call;
    flood_pump(call);
}

static void on_flood_drain(struct rpc_call *call)
{
    flood_drains++;
    flood_pump(call);
}

static void on_flood_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)call;
    (void)code;
    flood_call = NULL;
}

static const struct rpc_method flood_method[] = {
    {.path = "/t.T/Flood", .kind = RPC_SERVER_STREAM,
     .request = &metcd__test__echo_request__descriptor,
     .response = &metcd__test__echo_response__descriptor,
     .on_message = on_flood, .on_drain = on_flood_drain, .on_cancel = on_flood_cancel},
};

START_TEST(stream_queue_is_bounded)
{
    struct rpc_server_config cfg = {.stream_queue_bytes = 16 * 1024};
    raw_free(r);
    fixture_teardown(&f);
    fixture_setup(&f, &cfg);
    ck_assert_int_eq(rpc_server_register(f.srv, flood_method, 1, NULL), 0);
    r = raw_new(&f);
    flood_accepted = flood_full = flood_drains = 0;
    flood_max_queued = 0;
    uint8_t *body = NULL;
    size_t len = echo_req(&body, 0, "", 0);
    r->read_paused = true; /* the client does not read */
    struct raw_stream *s = raw_call(r, "/t.T/Flood", NULL, 0, body, len, 0, true);
    WAIT_UNTIL(f.base, flood_full > 0, 2000);
    run_for(f.base, 100);
    /* Bounded: the queue never passed its bound by more than a message,
     * and the handler was told (FULL) instead of memory growing. */
    ck_assert_int_gt(flood_full, 0);
    ck_assert_uint_le(flood_max_queued, 16 * 1024 + 1005);
    ck_assert_int_lt(flood_accepted, 3000);
    int stuck = flood_accepted;
    run_for(f.base, 100);
    ck_assert_int_eq(flood_accepted, stuck);
    /* Reading again drains the queue; on_drain resumes the handler. */
    r->read_paused = false;
    event_active(r->ev, EV_READ, 0);
    bool ok = raw_wait_closed(r, s, 5000);
    if (!ok)
        fprintf(stderr, "accepted %d full %d drains %d got %zu bytes eof %d\n", flood_accepted,
                flood_full, flood_drains, s->len, r->eof);
    ck_assert(ok);
    ck_assert_int_eq(s->grpc_status, 0);
    ck_assert_int_gt(flood_drains, 0);
    ck_assert_uint_eq(raw_count_messages(s), 3000);
    free(body);
}
END_TEST

/* ---- rpc_call_pause_recv: a handler stops taking requests ---- */

static int pz_msgs, pz_half_closes, pz_pause_at;
static struct rpc_call *pz_call;

static void on_pz_msg(struct rpc_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    pz_call = call;
    if (++pz_msgs == pz_pause_at)
        ck_assert_int_eq(rpc_call_pause_recv(call, 1), 0);
}

static void on_pz_half_close(struct rpc_call *call)
{
    pz_half_closes++;
    pz_call = NULL;
    rpc_call_finish(call, RPC_CODE_OK, NULL);
}

static void on_pz_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)call;
    (void)code;
    pz_call = NULL;
}

static const struct rpc_method pz_method[] = {
    {.path = "/t.T/Pausable", .kind = RPC_BIDI, .request = &metcd__test__echo_request__descriptor,
     .response = &metcd__test__echo_response__descriptor, .on_message = on_pz_msg,
     .on_half_close = on_pz_half_close, .on_cancel = on_pz_cancel},
};

/* While paused the client can send one stream window and no more (the
 * member holds at most that), other streams of the connection go on, and
 * on resume every held message and then the half-close arrive in order. */
START_TEST(paused_call_stops_its_client)
{
    ck_assert_int_eq(rpc_server_register(f.srv, pz_method, 1, NULL), 0);
    pz_msgs = pz_half_closes = 0;
    pz_pause_at = 5;
    uint8_t *body = NULL;
    size_t len = 0, n = 0;
    while (len < 3u * 1024 * 1024) { /* three stream windows of requests */
        len = echo_req(&body, len, "m", 500);
        n++;
    }
    struct raw_stream *s = raw_call(r, "/t.T/Pausable", NULL, 0, body, len, 16384, true);
    /* the raw client writes only when called (no EV_WRITE): push it */
    for (int i = 0; i < 200; i++) {
        raw_flush(r);
        run_for(f.base, 5);
    }
    ck_assert_int_eq(pz_msgs, 5);
    ck_assert_int_eq(pz_half_closes, 0);
    /* stopped by flow control after one stream window */
    ck_assert_uint_ge(s->out_off, 1024 * 1024 - 16384);
    ck_assert_uint_le(s->out_off, 1024 * 1024);
    struct rpc_server_stats st;
    rpc_server_get_stats(f.srv, &st);
    ck_assert_uint_eq(st.calls_recv_paused, 1);

    /* the connection is not stopped: a unary call on it is answered */
    uint8_t *ubody = NULL;
    size_t ulen = echo_req(&ubody, 0, "other", 10);
    struct raw_stream *u = raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, ubody, ulen, 0, true);
    ck_assert(raw_wait_closed(r, u, 2000));
    ck_assert_int_eq(u->grpc_status, 0);
    ck_assert_int_eq(pz_msgs, 5);

    /* resume: the rest, then the half-close */
    ck_assert_ptr_nonnull(pz_call);
    ck_assert_int_eq(rpc_call_pause_recv(pz_call, 0), 0);
    ck_assert_int_eq(pz_msgs, 5); /* delivered from the loop, not from here */
    for (int i = 0; i < 1000 && !s->closed; i++) {
        raw_flush(r);
        run_for(f.base, 5);
    }
    ck_assert(raw_wait_closed(r, s, 5000));
    ck_assert_int_eq(s->grpc_status, 0);
    ck_assert_int_eq((size_t)pz_msgs, n);
    ck_assert_int_eq(pz_half_closes, 1);
    free(body);
    free(ubody);
}
END_TEST

/* A half-close that arrives while paused waits behind the held messages. */
START_TEST(paused_call_holds_half_close)
{
    ck_assert_int_eq(rpc_server_register(f.srv, pz_method, 1, NULL), 0);
    pz_msgs = pz_half_closes = 0;
    pz_pause_at = 1;
    uint8_t *body = NULL;
    size_t len = 0;
    for (int i = 0; i < 3; i++)
        len = echo_req(&body, len, "m", 10);
    struct raw_stream *s = raw_call(r, "/t.T/Pausable", NULL, 0, body, len, 0, true);
    WAIT_UNTIL(f.base, pz_msgs >= 1, 2000);
    run_for(f.base, 100);
    ck_assert_int_eq(pz_msgs, 1);
    ck_assert_int_eq(pz_half_closes, 0);
    ck_assert(!s->closed);
    ck_assert_int_eq(rpc_call_pause_recv(pz_call, 0), 0);
    ck_assert(raw_wait_closed(r, s, 2000));
    ck_assert_int_eq(pz_msgs, 3);
    ck_assert_int_eq(pz_half_closes, 1);
    ck_assert_int_eq(rpc_call_pause_recv(NULL, 1), RPC_ERR_CLOSED);
    free(body);
}
END_TEST

START_TEST(allocation_failures_unwind)
{
    /* Fail the i-th allocation of the server while it takes a connection
     * and answers a unary call, for every i the path has: the call ends
     * one way or another, nothing leaks (LeakSanitizer in the sanitizer
     * build), and the server serves the next connection. */
    uint8_t *body = NULL;
    size_t len = echo_req(&body, 0, "alloc", 10);
    raw_free(r);
    long before = metcd_mem_count();
    r = raw_new(&f);
    struct raw_stream *s = raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, body, len, 0, true);
    ck_assert(raw_wait_closed(r, s, 1000));
    long per_call = metcd_mem_count() - before;
    raw_free(r);
    run_for(f.base, 10);
    ck_assert_int_gt(per_call, 5);
    for (long i = 0; i < per_call + 5; i++) {
        r = raw_new(&f);
        metcd_mem_fail_after(i);
        s = raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, body, len, 0, true);
        for (int t = 0; t < 100 && !s->closed && !r->eof; t++)
            run_for(f.base, 2);
        metcd_mem_fail_after(-1);
        if (!(s->closed || r->eof)) {
            struct rpc_server_stats st;
            rpc_server_get_stats(f.srv, &st);
            fprintf(stderr, "i=%ld of %ld: conns %lu calls %lu\n", i, per_call,
                    (unsigned long)st.conns_open, (unsigned long)st.calls_open);
        }
        ck_assert(s->closed || r->eof);
        raw_free(r);
        run_for(f.base, 5);
    }
    struct rpc_server_stats st;
    rpc_server_get_stats(f.srv, &st);
    ck_assert_uint_eq(st.calls_open, 0);
    ck_assert_uint_eq(st.conns_open, 0);
    r = raw_new(&f);
    s = raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, body, len, 0, true);
    ck_assert(raw_wait_closed(r, s, 1000));
    ck_assert_int_eq(s->grpc_status, 0);
    free(body);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("server/call");
    TCase *tc = tcase_create("call");
    tcase_add_checked_fixture(tc, setup_small, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, unary_split_byte_by_byte);
    tcase_add_test(tc, many_messages_in_one_frame);
    tcase_add_test(tc, zero_length_messages);
    tcase_add_test(tc, oversize_message);
    tcase_add_test(tc, unknown_method_and_service);
    tcase_add_test(tc, bad_content_type_is_415);
    tcase_add_test(tc, compression_refused);
    tcase_add_test(tc, undecodable_is_internal);
    tcase_add_test(tc, end_without_message);
    tcase_add_test(tc, metadata_reaches_handler);
    tcase_add_test(tc, status_message_percent_encoded);
    tcase_add_test(tc, deadline_cancels_handler);
    tcase_add_test(tc, reset_cancels_handler);
    tcase_add_test(tc, closed_connection_cancels_handler);
    tcase_add_test(tc, stream_queue_is_bounded);
    tcase_add_test(tc, paused_call_stops_its_client);
    tcase_add_test(tc, paused_call_holds_half_close);
    tcase_add_test(tc, allocation_failures_unwind);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
