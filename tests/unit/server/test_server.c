/* tests/unit/server/test_server.c - server/rpc/server.c: method table,
 * listeners, sniffing the first bytes (MSG_PEEK: nothing lost, however they
 * trickle in), handshake timeout, graceful shutdown and teardown. */
#include "harness.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static struct fixture f;

static void setup(void)
{
    struct rpc_server_config cfg = {.handshake_timeout_ms = 300};
    fixture_setup(&f, &cfg);
    echo_cancelled = 0;
}

static void teardown(void)
{
    fixture_teardown(&f);
    ck_assert_int_eq(echo_live, 0);
}

static void on_msg_noop(struct rpc_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    rpc_call_finish(call, RPC_CODE_OK, NULL);
}

START_TEST(register_rules)
{
    ck_assert_int_eq(echo_service_register(f.srv, f.base), RPC_ERR_EXISTS);
    struct rpc_method bad[] = {{.path = "no-slash", .request = &metcd__test__echo_request__descriptor,
                                .response = &metcd__test__echo_response__descriptor,
                                .on_message = on_msg_noop}};
    ck_assert_int_eq(rpc_server_register(f.srv, bad, 1, NULL), RPC_ERR_INVAL);
    struct rpc_method dup[] = {
        {.path = "/a.B/C", .request = &metcd__test__echo_request__descriptor,
         .response = &metcd__test__echo_response__descriptor, .on_message = on_msg_noop},
        {.path = "/a.B/C", .request = &metcd__test__echo_request__descriptor,
         .response = &metcd__test__echo_response__descriptor, .on_message = on_msg_noop},
    };
    ck_assert_int_eq(rpc_server_register(f.srv, dup, 2, NULL), RPC_ERR_EXISTS);
    ck_assert_int_eq(rpc_server_register(f.srv, dup, 1, NULL), 0);
    ck_assert_int_eq(rpc_server_route(f.srv, "/x", (rpc_http_fn)on_msg_noop, NULL, NULL), 0);
    ck_assert_int_eq(rpc_server_route(f.srv, "/x", (rpc_http_fn)on_msg_noop, NULL, NULL),
                     RPC_ERR_EXISTS);
    ck_assert_int_eq(rpc_server_route(f.srv, "x", (rpc_http_fn)on_msg_noop, NULL, NULL),
                     RPC_ERR_INVAL);
}
END_TEST

START_TEST(listen_errors)
{
    ck_assert_int_eq(rpc_server_listen(f.srv, "256.1.1.1", 0, NULL), RPC_ERR_ADDR);
    /* The port is taken by the fixture's listener. */
    struct rpc_server *other;
    ck_assert_int_eq(rpc_server_new(&other, f.base, NULL), 0);
    ck_assert_int_eq(rpc_server_listen(other, "127.0.0.1", f.port, NULL), RPC_ERR_ADDR);
    /* "localhost" binds IPv4 loopback, where etcdctl dials. */
    uint16_t pl = 0;
    ck_assert_int_eq(rpc_server_listen(other, "localhost", 0, &pl), 0);
    int s4 = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(pl),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(s4, (struct sockaddr *)&a4, sizeof a4), 0);
    close(s4);
    uint16_t p6 = 0;
    int rc = rpc_server_listen(other, "::1", 0, &p6);
    ck_assert(rc == 0 || rc == RPC_ERR_ADDR); /* no IPv6 in some sandboxes */
    rpc_server_free(other);
}
END_TEST

START_TEST(sniff_h2_preface_trickled)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    int fd = sock_adopted(&f);
    /* One byte at a time with pauses: the decision waits for 3 bytes and
     * then nghttp2 must still see every byte. */
    for (size_t i = 0; i < 24; i++) {
        sock_write(fd, preface + i, 1);
        run_for(f.base, i < 4 ? 10 : 1);
    }
    static const uint8_t settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    sock_write(fd, settings, sizeof settings);
    char buf[256];
    size_t n = sock_read_until(&f, fd, buf, sizeof buf, NULL, 200, NULL);
    /* The server's first frame is its SETTINGS (type 4, stream 0); a lost
     * byte would have given a GOAWAY (type 7) instead. */
    ck_assert_uint_ge(n, 9);
    ck_assert_uint_eq((uint8_t)buf[3], 4);
    for (size_t off = 0; off + 9 <= n;) {
        size_t flen = (size_t)(uint8_t)buf[off] << 16 | (size_t)(uint8_t)buf[off + 1] << 8 |
                      (uint8_t)buf[off + 2];
        ck_assert_uint_ne((uint8_t)buf[off + 3], 7);
        off += 9 + flen;
    }
    close(fd);
}
END_TEST

START_TEST(sniff_http1_trickled)
{
    static const char req[] = "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n";
    int fd = sock_adopted(&f);
    for (size_t i = 0; i < sizeof req - 1; i++) {
        sock_write(fd, req + i, 1);
        run_for(f.base, 1);
    }
    char buf[512];
    sock_read_until(&f, fd, buf, sizeof buf, "page not found\n", 500, NULL);
    ck_assert(strncmp(buf, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\n404 page not found\n"));
    close(fd);
}
END_TEST

START_TEST(silent_connection_times_out)
{
    int fd = sock_adopted(&f);
    struct rpc_server_stats st;
    rpc_server_get_stats(f.srv, &st);
    ck_assert_uint_eq(st.conns_open, 1);
    char buf[16];
    bool eof = false;
    sock_read_until(&f, fd, buf, sizeof buf, NULL, 1000, &eof);
    ck_assert(eof);
    rpc_server_get_stats(f.srv, &st);
    ck_assert_uint_eq(st.conns_open, 0);
    close(fd);
}
END_TEST

START_TEST(peer_close_during_sniff)
{
    int fd = sock_adopted(&f);
    sock_write(fd, "P", 1);
    run_for(f.base, 10);
    close(fd);
    /* The lone byte stays readable, so EOF shows only once the handshake
     * timeout (300 ms here) ends the wait. */
    run_for(f.base, 500);
    struct rpc_server_stats st;
    rpc_server_get_stats(f.srv, &st);
    ck_assert_uint_eq(st.conns_open, 0);
}
END_TEST

static bool shutdown_done;
static void on_done(void *data)
{
    (void)data;
    shutdown_done = true;
}

static size_t delayed(uint8_t **body, int delay)
{
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.message = "d";
    req.delay_ms = delay;
    *body = NULL;
    return frame_msg(body, 0, &req.base);
}

START_TEST(graceful_shutdown_finishes_in_flight)
{
    struct raw *r = raw_new(&f);
    uint8_t *body;
    size_t len = delayed(&body, 100);
    struct raw_stream *s = raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, body, len, 0, true);
    WAIT_UNTIL(f.base, echo_live == 1, 2000);
    ck_assert_int_eq(echo_live, 1);
    shutdown_done = false;
    ck_assert_int_eq(rpc_server_shutdown(f.srv, 2000, on_done, NULL), 0);
    ck_assert_int_eq(rpc_server_shutdown(f.srv, 2000, on_done, NULL), RPC_ERR_STATE);
    WAIT_UNTIL(f.base, r->goaway, 2000);
    ck_assert(r->goaway);
    ck_assert_uint_eq(r->goaway_code, 0);
    ck_assert(!shutdown_done);
    ck_assert(raw_wait_closed(r, s, 1000));
    ck_assert_int_eq(s->grpc_status, 0);
    ck_assert(run_until(f.base, &shutdown_done, 1000));
    ck_assert_uint_eq(echo_cancelled, 0);
    /* Listeners are gone: new connections are refused at once. */
    ck_assert_int_eq(rpc_server_listen(f.srv, "127.0.0.1", 0, NULL), RPC_ERR_STATE);
    raw_free(r);
    free(body);
}
END_TEST

START_TEST(graceful_shutdown_deadline_cancels)
{
    struct raw *r = raw_new(&f);
    uint8_t *body;
    size_t len = delayed(&body, 5000);
    raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, body, len, 0, true);
    WAIT_UNTIL(f.base, echo_live == 1, 2000);
    shutdown_done = false;
    ck_assert_int_eq(rpc_server_shutdown(f.srv, 100, on_done, NULL), 0);
    ck_assert(run_until(f.base, &shutdown_done, 1000));
    ck_assert_uint_eq(echo_cancelled, 1);
    ck_assert_int_eq(echo_live, 0);
    raw_free(r);
    free(body);
}
END_TEST

START_TEST(free_with_live_calls)
{
    struct raw *r = raw_new(&f);
    uint8_t *body;
    size_t len = delayed(&body, 5000);
    raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, body, len, 0, true);
    raw_call(r, "/metcd.test.Echo/Bidi", NULL, 0, body, len, 0, false);
    WAIT_UNTIL(f.base, echo_live == 2, 2000);
    ck_assert_int_eq(echo_live, 2);
    rpc_server_free(f.srv);
    f.srv = NULL;
    ck_assert_uint_eq(echo_cancelled, 2);
    ck_assert_int_eq(echo_live, 0);
    raw_free(r);
    free(body);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/server");
    TCase *tc = tcase_create("server");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, register_rules);
    tcase_add_test(tc, listen_errors);
    tcase_add_test(tc, sniff_h2_preface_trickled);
    tcase_add_test(tc, sniff_http1_trickled);
    tcase_add_test(tc, silent_connection_times_out);
    tcase_add_test(tc, peer_close_during_sniff);
    tcase_add_test(tc, graceful_shutdown_finishes_in_flight);
    tcase_add_test(tc, graceful_shutdown_deadline_cancels);
    tcase_add_test(tc, free_with_live_calls);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
