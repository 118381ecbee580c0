/* tests/unit/server/test_h2conn.c - server/rpc/h2conn.c: connection-level
 * backpressure, keepalive (server pings, ping timeout, min-time policing
 * with GOAWAY too_many_pings) and max concurrent streams. */
#include "harness.h"

#include <check.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct fixture f;

static void teardown(void)
{
    fixture_teardown(&f);
    ck_assert_int_eq(echo_live, 0);
}

static size_t echo_body(uint8_t **body, int delay, size_t payload)
{
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.delay_ms = delay;
    uint8_t *p = calloc(1, payload + 1);
    req.payload.data = p;
    req.payload.len = payload;
    *body = NULL;
    size_t n = frame_msg(body, 0, &req.base);
    free(p);
    return n;
}

START_TEST(client_that_does_not_read_is_bounded)
{
    struct rpc_server_config cfg = {.conn_queue_bytes = 64 * 1024};
    fixture_setup(&f, &cfg);
    struct raw *r = raw_new(&f);
    /* SETTINGS exchanged: the server's 1 MiB windows */
    WAIT_UNTIL(f.base, nghttp2_session_get_remote_settings(
                           r->h2, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE) == 1u << 20, 2000);
    /* Small requests, 20 KB answers (20 x 1000-byte stream messages). */
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    uint8_t pay[1000] = {0};
    req.payload.data = pay;
    req.payload.len = sizeof pay;
    req.count = 20;
    uint8_t *body = NULL;
    size_t len = frame_msg(&body, 0, &req.base);
    r->read_paused = true;
    struct raw_stream *s[60];
    for (int i = 0; i < 60; i++)
        s[i] = raw_call(r, "/metcd.test.Echo/ServerStream", NULL, 0, body, len, 0, true);
    run_for(f.base, 300);
    struct rpc_server_stats st;
    rpc_server_get_stats(f.srv, &st);
    /* 60 answers of 20 KB cannot all wait in memory: the server refused
     * streams and/or stopped reading once its bound was passed. */
    ck_assert_uint_gt(st.streams_refused + st.conns_paused, 0);
    ck_assert_uint_lt(st.calls_succeeded, 60);
    r->read_paused = false;
    event_active(r->ev, EV_READ, 0);
    for (int i = 0; i < 60; i++)
        ck_assert(raw_wait_closed(r, s[i], 3000));
    int ok = 0, refused = 0;
    for (int i = 0; i < 60; i++) {
        if (s[i]->grpc_status == 0)
            ok++;
        else if (s[i]->rst_code == NGHTTP2_REFUSED_STREAM)
            refused++;
    }
    ck_assert_int_eq(ok + refused, 60);
    ck_assert_int_gt(ok, 0);
    raw_free(r);
    free(body);
}
END_TEST

START_TEST(too_many_pings_get_goaway)
{
    fixture_setup(&f, NULL);
    struct raw *r = raw_new(&f);
    run_for(f.base, 10);
    for (int i = 0; i < 4; i++) {
        raw_ping(r);
        run_for(f.base, 5);
    }
    WAIT_UNTIL(f.base, r->eof, 2000);
    ck_assert(r->goaway);
    ck_assert_uint_eq(r->goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
    ck_assert_str_eq(r->goaway_data, "too_many_pings");
    ck_assert(r->eof);
    raw_free(r);
}
END_TEST

START_TEST(pings_within_policy_are_fine)
{
    struct rpc_server_config cfg = {.keepalive_min_time_ms = 1};
    fixture_setup(&f, &cfg);
    struct raw *r = raw_new(&f);
    uint8_t *body;
    size_t len = echo_body(&body, 1000, 0);
    raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, body, len, 0, true); /* an open stream */
    run_for(f.base, 10);
    for (int i = 0; i < 6; i++) {
        raw_ping(r);
        run_for(f.base, 10);
    }
    ck_assert(!r->goaway);
    ck_assert_uint_eq(r->pings_acked, 6);
    raw_free(r);
    run_for(f.base, 20);
    free(body);
}
END_TEST

START_TEST(server_keepalive_pings_and_timeout)
{
    struct rpc_server_config cfg = {.keepalive_interval_ms = 40, .keepalive_timeout_ms = 60};
    fixture_setup(&f, &cfg);
    struct raw *r = raw_new(&f);
    WAIT_UNTIL(f.base, r->pings_received >= 2, 2000);
    ck_assert_uint_ge(r->pings_received, 2); /* answered by nghttp2 */
    struct rpc_server_stats st;
    rpc_server_get_stats(f.srv, &st);
    ck_assert_uint_eq(st.conns_open, 1);
    r->read_paused = true; /* no more ACKs */
    WAIT_UNTIL(f.base, conns_open(&f) == 0, 2000);
    rpc_server_get_stats(f.srv, &st);
    ck_assert_uint_eq(st.conns_open, 0);
    raw_free(r);
}
END_TEST

START_TEST(max_concurrent_streams_advertised)
{
    struct rpc_server_config cfg = {.max_concurrent_streams = 2};
    fixture_setup(&f, &cfg);
    struct raw *r = raw_new(&f);
    WAIT_UNTIL(f.base, nghttp2_session_get_remote_settings(
                           r->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) == 2, 2000);
    ck_assert_uint_eq(nghttp2_session_get_remote_settings(
                          r->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS), 2);
    uint8_t *body;
    size_t len = echo_body(&body, 100, 0);
    struct raw_stream *s[3];
    for (int i = 0; i < 3; i++)
        s[i] = raw_call(r, "/metcd.test.Echo/Unary", NULL, 0, body, len, 0, true);
    WAIT_UNTIL(f.base, echo_live == 2, 2000);
    run_for(f.base, 30);
    ck_assert_int_eq(echo_live, 2); /* the third waits */
    for (int i = 0; i < 3; i++) {
        ck_assert(raw_wait_closed(r, s[i], 2000));
        ck_assert_int_eq(s[i]->grpc_status, 0);
    }
    raw_free(r);
    free(body);
}
END_TEST

START_TEST(garbage_after_preface_closes)
{
    fixture_setup(&f, NULL);
    int fd = sock_adopted(&f);
    static const char junk[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff";
    sock_write(fd, junk, sizeof junk - 1);
    char buf[512];
    bool eof = false;
    sock_read_until(&f, fd, buf, sizeof buf, NULL, 500, &eof);
    ck_assert(eof);
    struct rpc_server_stats st;
    rpc_server_get_stats(f.srv, &st);
    ck_assert_uint_eq(st.conns_open, 0);
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/h2conn");
    TCase *tc = tcase_create("h2conn");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, client_that_does_not_read_is_bounded);
    tcase_add_test(tc, too_many_pings_get_goaway);
    tcase_add_test(tc, pings_within_policy_are_fine);
    tcase_add_test(tc, server_keepalive_pings_and_timeout);
    tcase_add_test(tc, max_concurrent_streams_advertised);
    tcase_add_test(tc, garbage_after_preface_closes);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
