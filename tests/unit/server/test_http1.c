/* tests/unit/server/test_http1.c - server/rpc/http1.c: the HTTP/1.1 side
 * of the client port: routing (exact, prefix, longest match), request
 * parts, late answers, keep-alive and pipelining, limits, aborts. */
#include "harness.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct fixture f;
static int fd;
static struct rpc_http_req *parked;
static int aborted;
static struct event *later_ev;

static void on_echo(struct rpc_http_req *req, void *data)
{
    char body[512];
    size_t blen;
    const char *b = rpc_http_body(req, &blen);
    const char *h = rpc_http_header(req, "X-Test");
    snprintf(body, sizeof body, "%s|%s|%s|%s|%.*s|%s", (const char *)data, rpc_http_method(req),
             rpc_http_path(req), rpc_http_query(req), (int)blen, b, h ? h : "-");
    rpc_http_respond(req, 200, "text/plain", body, strlen(body));
}

static void on_body_echo(struct rpc_http_req *req, void *data)
{
    (void)data;
    size_t n;
    const void *b = rpc_http_body(req, &n);
    rpc_http_respond(req, 200, NULL, b, n); /* the body is the request's own */
}

static struct rpc_http_req *streamed;
static int stream_aborts;

static void on_stream_route(struct rpc_http_req *req, void *data)
{
    (void)data;
    ck_assert_int_eq(rpc_http_stream_begin(req, 200, "application/json"), 0);
    ck_assert_int_eq(rpc_http_stream_write(req, "{\"a\":1}\n", 8), 0);
    streamed = req;
}

static void on_stream_abort(struct rpc_http_req *req, void *data)
{
    (void)data;
    ck_assert_ptr_eq(req, streamed);
    streamed = NULL;
    stream_aborts++;
}

static void on_later_timer(evutil_socket_t s, short what, void *arg)
{
    (void)s;
    (void)what;
    (void)arg;
    rpc_http_respond(parked, 201, NULL, "late", 4);
    parked = NULL;
}

static void on_park(struct rpc_http_req *req, void *data)
{
    (void)data;
    parked = req;
    if (strcmp(rpc_http_query(req), "answer") == 0) {
        struct timeval tv = {0, 30000};
        evtimer_add(later_ev, &tv);
    }
}

static void on_park_abort(struct rpc_http_req *req, void *data)
{
    (void)data;
    ck_assert_ptr_eq(req, parked);
    parked = NULL;
    aborted++;
}

/* /drain: writes until the connection is full, then once more when it
 * has drained, then ends. */
static int drain_calls, drain_chunks;

static void on_drained(struct rpc_http_req *req, void *data)
{
    ck_assert_ptr_eq(data, &drain_calls);
    drain_calls++;
    ck_assert_int_eq(rpc_http_stream_write(req, "last", 4), 0);
    ck_assert_int_eq(rpc_http_stream_end(req), 0);
}

static void on_drain_route(struct rpc_http_req *req, void *data)
{
    (void)data;
    static char chunk[1000];
    memset(chunk, 'z', sizeof chunk);
    ck_assert_int_eq(rpc_http_add_header(req, "X-Extra", "1"), 0);
    ck_assert_int_eq(rpc_http_add_header(req, "Bad:Name", "1"), RPC_ERR_INVAL);
    ck_assert_int_eq(rpc_http_add_header(req, "X-Bad", "a\r\nb"), RPC_ERR_INVAL);
    rpc_http_set_data(req, &drain_chunks);
    ck_assert_ptr_eq(rpc_http_get_data(req), &drain_chunks);
    ck_assert_int_eq(rpc_http_stream_begin(req, 200, NULL), 0);
    ck_assert_int_eq(rpc_http_add_header(req, "X-Late", "1"), RPC_ERR_STATE);
    rpc_http_stream_on_drain(req, on_drained, &drain_calls);
    int rc;
    while ((rc = rpc_http_stream_write(req, chunk, sizeof chunk)) == 0)
        drain_chunks++;
    ck_assert_int_eq(rc, RPC_ERR_FULL);
}

static void setup(void)
{
    struct rpc_server_config cfg = {.max_recv_msg_size = 100, .max_http_body = 150,
                                    .conn_queue_bytes = 4096};
    fixture_setup(&f, &cfg);
    ck_assert_int_eq(rpc_server_route(f.srv, "/v3/", on_echo, NULL, "prefix"), 0);
    ck_assert_int_eq(rpc_server_route(f.srv, "/v3/kv/range", on_echo, NULL, "exact"), 0);
    ck_assert_int_eq(rpc_server_route(f.srv, "/health", on_echo, NULL, "health"), 0);
    ck_assert_int_eq(rpc_server_route(f.srv, "/park", on_park, on_park_abort, NULL), 0);
    ck_assert_int_eq(rpc_server_route(f.srv, "/body", on_body_echo, NULL, NULL), 0);
    ck_assert_int_eq(rpc_server_route(f.srv, "/stream", on_stream_route, on_stream_abort, NULL),
                     0);
    ck_assert_int_eq(rpc_server_route(f.srv, "/drain", on_drain_route, NULL, NULL), 0);
    drain_calls = drain_chunks = 0;
    streamed = NULL;
    stream_aborts = 0;
    later_ev = evtimer_new(f.base, on_later_timer, NULL);
    fd = sock_adopted(&f);
    parked = NULL;
    aborted = 0;
}

static void teardown(void)
{
    close(fd);
    event_free(later_ev);
    fixture_teardown(&f);
}

static char buf[8192];

static const char *roundtrip(const char *req, const char *until)
{
    sock_write(fd, req, strlen(req));
    sock_read_until(&f, fd, buf, sizeof buf, until, 1000, NULL);
    return buf;
}

START_TEST(routes_and_parts)
{
    roundtrip("POST /v3/kv/range?x=1&y=2 HTTP/1.1\r\nHost: a\r\nX-Test:  v  \r\n"
              "Content-Length: 5\r\n\r\nhello", "hello|v");
    ck_assert(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
    ck_assert_ptr_nonnull(strstr(buf, "Content-Type: text/plain\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\nexact|POST|/v3/kv/range|x=1&y=2|hello|v"));
    roundtrip("GET /v3/watch HTTP/1.1\r\n\r\n", "|-");
    ck_assert_ptr_nonnull(strstr(buf, "prefix|GET|/v3/watch||"));
    roundtrip("GET /health HTTP/1.1\r\n\r\n", "|-");
    ck_assert_ptr_nonnull(strstr(buf, "health|GET|/health||"));
    roundtrip("GET /healthz HTTP/1.1\r\n\r\n", "found\n");
    ck_assert(strncmp(buf, "HTTP/1.1 404", 12) == 0);
}
END_TEST

START_TEST(pipelined_requests_in_order)
{
    roundtrip("GET /health?a HTTP/1.1\r\n\r\nGET /health?b HTTP/1.1\r\n\r\n"
              "GET /nope HTTP/1.1\r\n\r\nGET /health?c HTTP/1.1\r\n\r\n",
              "health|GET|/health|c");
    char *a = strstr(buf, "|a|"), *b = strstr(buf, "|b|"), *n = strstr(buf, "404"),
         *c = strstr(buf, "|c|");
    ck_assert(a && b && n && c);
    ck_assert(a < b && b < n && n < c);
}
END_TEST

START_TEST(answer_with_request_body)
{
    /* Found by fuzz_sniff_http1: the answer's body may be the request's. */
    roundtrip("POST /body HTTP/1.1\r\nContent-Length: 7\r\n\r\npayload", "payload");
    ck_assert_ptr_nonnull(strstr(buf, "Content-Length: 7\r\n\r\npayload"));
}
END_TEST

START_TEST(chunked_stream)
{
    roundtrip("GET /stream HTTP/1.1\r\n\r\n", "{\"a\":1}\n\r\n");
    ck_assert_ptr_nonnull(strstr(buf, "Transfer-Encoding: chunked\r\n\r\n8\r\n{\"a\":1}\n\r\n"));
    ck_assert_ptr_nonnull(streamed);
    ck_assert_int_eq(rpc_http_stream_write(streamed, "{\"b\":22}\n", 9), 0);
    ck_assert_int_eq(rpc_http_respond(streamed, 200, NULL, "x", 1), RPC_ERR_INVAL);
    ck_assert_int_eq(rpc_http_stream_end(streamed), 0);
    streamed = NULL;
    sock_read_until(&f, fd, buf, sizeof buf, "0\r\n\r\n", 1000, NULL);
    ck_assert_str_eq(buf, "9\r\n{\"b\":22}\n\r\n0\r\n\r\n");
    /* The connection is still usable, then a stream the client leaves. */
    roundtrip("GET /health HTTP/1.1\r\n\r\n", "|-");
    ck_assert_ptr_nonnull(strstr(buf, "health|GET"));
    roundtrip("GET /stream HTTP/1.1\r\n\r\n", "{\"a\":1}\n\r\n");
    close(fd);
    WAIT_UNTIL(f.base, stream_aborts == 1, 2000);
    ck_assert_int_eq(stream_aborts, 1);
    fd = sock_adopted(&f);
}
END_TEST

START_TEST(late_answer)
{
    roundtrip("GET /park?answer HTTP/1.1\r\n\r\n", "late");
    ck_assert(strncmp(buf, "HTTP/1.1 201 Created\r\n", 22) == 0);
    ck_assert_ptr_nonnull(strstr(buf, "Content-Length: 4\r\n"));
    ck_assert_ptr_null(parked);
}
END_TEST

START_TEST(abort_on_close)
{
    sock_write(fd, "GET /park HTTP/1.1\r\n\r\n", 22);
    WAIT_UNTIL(f.base, parked != NULL, 2000);
    ck_assert_ptr_nonnull(parked);
    close(fd);
    WAIT_UNTIL(f.base, aborted == 1, 2000);
    ck_assert_int_eq(aborted, 1);
    ck_assert_ptr_null(parked);
    fd = sock_adopted(&f); /* for teardown */
}
END_TEST

START_TEST(limits)
{
    /* bodies are bounded by max_http_body, not by the gRPC message limit */
    char body[121];
    memset(body, 'b', 120);
    body[120] = 0;
    char req[300];
    snprintf(req, sizeof req, "POST /health HTTP/1.1\r\nContent-Length: 120\r\n\r\n%s", body);
    roundtrip(req, "|-");
    ck_assert(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    roundtrip("POST /health HTTP/1.1\r\nContent-Length: 151\r\n\r\n", "\r\n\r\n");
    ck_assert(strncmp(buf, "HTTP/1.1 413", 12) == 0);
    bool eof;
    sock_read_until(&f, fd, buf, sizeof buf, NULL, 500, &eof);
    ck_assert(eof);
    close(fd);
    fd = sock_adopted(&f);
    char *big = malloc(20000);
    memset(big, 'a', 20000);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    sock_write(fd, big, 20000);
    free(big);
    sock_read_until(&f, fd, buf, sizeof buf, "\r\n\r\n", 1000, NULL);
    ck_assert(strncmp(buf, "HTTP/1.1 431", 12) == 0);
    close(fd);
    fd = sock_adopted(&f);
    roundtrip("GARBAGE\r\n\r\n", "\r\n\r\n");
    ck_assert(strncmp(buf, "HTTP/1.1 400", 12) == 0);
    close(fd);
    fd = sock_adopted(&f);
    roundtrip("POST /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "\r\n\r\n");
    ck_assert(strncmp(buf, "HTTP/1.1 501", 12) == 0);
}
END_TEST

START_TEST(http10_closes)
{
    roundtrip("GET /health HTTP/1.0\r\n\r\n", "|-");
    ck_assert_ptr_nonnull(strstr(buf, "Connection: close\r\n"));
    bool eof;
    sock_read_until(&f, fd, buf, sizeof buf, NULL, 500, &eof);
    ck_assert(eof);
}
END_TEST

START_TEST(body_arrives_later)
{
    sock_write(fd, "POST /health HTTP/1.1\r\nContent-Length: 6\r\n\r\nab", 46);
    run_for(f.base, 20);
    sock_write(fd, "cdef", 4);
    sock_read_until(&f, fd, buf, sizeof buf, "|-", 1000, NULL);
    ck_assert_ptr_nonnull(strstr(buf, "health|POST|/health||abcdef|-"));
}
END_TEST

START_TEST(expect_continue)
{
    /* as Go's net/http: "100 Continue" before the body, once per request */
    for (int i = 0; i < 2; i++) {
        static const char head[] =
            "POST /health HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 6\r\n\r\n";
        sock_write(fd, head, strlen(head));
        sock_read_until(&f, fd, buf, sizeof buf, "\r\n\r\n", 1000, NULL);
        ck_assert_str_eq(buf, "HTTP/1.1 100 Continue\r\n\r\n");
        sock_write(fd, "abcdef", 6);
        sock_read_until(&f, fd, buf, sizeof buf, "|-", 1000, NULL);
        ck_assert(strncmp(buf, "HTTP/1.1 200 OK", 15) == 0);
        ck_assert_ptr_nonnull(strstr(buf, "health|POST|/health||abcdef|-"));
    }
    /* the body already there: no interim answer */
    roundtrip("POST /health HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nxy",
              "|-");
    ck_assert(strncmp(buf, "HTTP/1.1 200 OK", 15) == 0);
}
END_TEST

START_TEST(headers_and_drain)
{
    static const char get[] = "GET /drain HTTP/1.1\r\n\r\n";
    sock_write(fd, get, strlen(get));
    size_t total = 0;
    char *all = malloc(1 << 20);
    bool done = false;
    for (int i = 0; i < 400 && !done; i++) {
        sock_read_until(&f, fd, buf, sizeof buf, NULL, 5, NULL);
        size_t n = strlen(buf);
        ck_assert_uint_lt(total + n, 1 << 20);
        memcpy(all + total, buf, n);
        total += n;
        all[total] = 0;
        done = strstr(all, "4\r\nlast\r\n0\r\n\r\n") != NULL;
    }
    ck_assert(done);
    ck_assert_ptr_nonnull(strstr(all, "\r\nX-Extra: 1\r\n"));
    ck_assert_ptr_null(strstr(all, "X-Late"));
    ck_assert_int_eq(drain_calls, 1);
    ck_assert_int_ge(drain_chunks, 4);
    free(all);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/http1");
    TCase *tc = tcase_create("http1");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, routes_and_parts);
    tcase_add_test(tc, pipelined_requests_in_order);
    tcase_add_test(tc, answer_with_request_body);
    tcase_add_test(tc, chunked_stream);
    tcase_add_test(tc, late_answer);
    tcase_add_test(tc, abort_on_close);
    tcase_add_test(tc, limits);
    tcase_add_test(tc, http10_closes);
    tcase_add_test(tc, body_arrives_later);
    tcase_add_test(tc, expect_continue);
    tcase_add_test(tc, headers_and_drain);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
