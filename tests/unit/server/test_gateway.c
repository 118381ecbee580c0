/* tests/unit/server/test_gateway.c - server/gateway against stand-in etcd
 * services on a real rpc server: answers and errors in grpc-gateway's
 * forms, streams (several requests in one body, results as lines, the
 * error forms before and after results), a client that leaves cancels
 * its call, a client that does not read holds the server back through
 * HTTP/2 flow control (and lets it go on when it reads again), calls
 * wait for a free HTTP/2 stream under SETTINGS_MAX_CONCURRENT_STREAMS,
 * and gateway_free answers what is open. Runs under ASan in the
 * sanitized build: every path must free what it holds. */
#include "harness.h"

#include "common/mem.h"
#include "server/etcdserverpb/rpc.pb-c.h"
#include "server/gateway/gateway.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct fixture f;
static struct gateway *gw;
static struct rpc_call *parked[4];
static int n_parked, cancels;

/* ---- stand-in services ---- */

static bool key_is(const ProtobufCBinaryData *k, const char *s)
{
    return k->len == strlen(s) && memcmp(k->data, s, k->len) == 0;
}

static void on_range(struct rpc_call *call, const ProtobufCMessage *msg)
{
    const Etcdserverpb__RangeRequest *r = (const Etcdserverpb__RangeRequest *)msg;
    if (key_is(&r->key, "park")) {
        parked[n_parked++] = call;
        return;
    }
    if (key_is(&r->key, "nf")) {
        rpc_call_finish(call, RPC_CODE_NOT_FOUND, "etcdserver: requested lease not found");
        return;
    }
    Etcdserverpb__RangeResponse resp = ETCDSERVERPB__RANGE_RESPONSE__INIT;
    resp.count = r->limit;
    const char *tok = rpc_call_metadata(call, "authorization");
    resp.more = tok && strcmp(tok, "t0k") == 0;
    rpc_call_reply(call, &resp.base);
}

static void on_unary_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    for (int i = 0; i < n_parked; i++)
        if (parked[i] == call)
            parked[i] = NULL;
    cancels++;
}

/* Watch: a create for "flood" sends 64 KiB answers for as long as the
 * stream takes them; "err" ends the call with an error; "late-err" sends
 * one answer, then the error; anything else is answered with the number of
 * requests seen so far as its watch_id. */
struct wstate {
    int requests;
    bool flood;
    int sent;
};
static int watch_cancels, flood_sent;
static uint8_t blob[65536];

static void flood_more(struct rpc_call *call)
{
    struct wstate *w = rpc_call_get_data(call);
    for (;;) {
        Etcdserverpb__WatchResponse resp = ETCDSERVERPB__WATCH_RESPONSE__INIT;
        resp.cancel_reason = (char *)"x";
        Mvccpb__Event ev = MVCCPB__EVENT__INIT;
        Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
        kv.value = (ProtobufCBinaryData){sizeof blob, blob};
        ev.kv = &kv;
        Mvccpb__Event *evs[] = {&ev};
        resp.events = evs;
        resp.n_events = 1;
        if (rpc_call_send(call, &resp.base) != 0)
            return; /* on_drain goes on */
        w->sent++;
        flood_sent++;
        if (w->sent > 400)
            return; /* 25 MiB: far past any bound */
    }
}

static void on_watch_open(struct rpc_call *call)
{
    rpc_call_set_data(call, calloc(1, sizeof(struct wstate)));
}

static void on_watch_message(struct rpc_call *call, const ProtobufCMessage *msg)
{
    const Etcdserverpb__WatchRequest *r = (const Etcdserverpb__WatchRequest *)msg;
    struct wstate *w = rpc_call_get_data(call);
    w->requests++;
    const Etcdserverpb__WatchCreateRequest *c = r->create_request;
    if (c && key_is(&c->key, "flood")) {
        w->flood = true;
        flood_more(call);
        return;
    }
    if (c && key_is(&c->key, "err")) {
        free(w);
        rpc_call_set_data(call, NULL);
        rpc_call_finish(call, RPC_CODE_FAILED_PRECONDITION, "etcdserver: no leader");
        return;
    }
    Etcdserverpb__WatchResponse resp = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    resp.watch_id = w->requests;
    resp.created = 1;
    rpc_call_send(call, &resp.base);
    if (c && key_is(&c->key, "late-err")) {
        free(w);
        rpc_call_set_data(call, NULL);
        rpc_call_finish(call, RPC_CODE_OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted");
    }
}

static void on_watch_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    free(rpc_call_get_data(call));
    watch_cancels++;
}

static void on_watch_drain(struct rpc_call *call)
{
    struct wstate *w = rpc_call_get_data(call);
    if (w && w->flood)
        flood_more(call);
}

/* Snapshot: three blobs, then OK. */
static void on_snapshot(struct rpc_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    for (int i = 3; i > 0; i--) {
        Etcdserverpb__SnapshotResponse resp = ETCDSERVERPB__SNAPSHOT_RESPONSE__INIT;
        resp.remaining_bytes = (uint64_t)(i - 1);
        resp.blob = (ProtobufCBinaryData){3, (uint8_t *)"abc"};
        rpc_call_send(call, &resp.base);
    }
    rpc_call_finish(call, RPC_CODE_OK, NULL);
}

static const struct rpc_method fake[] = {
    {"/etcdserverpb.KV/Range", RPC_UNARY, &etcdserverpb__range_request__descriptor,
     &etcdserverpb__range_response__descriptor, NULL, on_range, NULL, on_unary_cancel, NULL},
    {"/etcdserverpb.Watch/Watch", RPC_BIDI, &etcdserverpb__watch_request__descriptor,
     &etcdserverpb__watch_response__descriptor, on_watch_open, on_watch_message, NULL,
     on_watch_cancel, on_watch_drain},
    {"/etcdserverpb.Maintenance/Snapshot", RPC_SERVER_STREAM,
     &etcdserverpb__snapshot_request__descriptor, &etcdserverpb__snapshot_response__descriptor,
     NULL, on_snapshot, NULL, NULL, NULL},
};

static void start(uint32_t max_streams)
{
    struct rpc_server_config cfg = {.max_concurrent_streams = max_streams};
    fixture_setup(&f, &cfg);
    ck_assert_int_eq(rpc_server_register(f.srv, fake, 3, NULL), 0);
    char url[64];
    snprintf(url, sizeof url, "http://0.0.0.0:%u", f.port); /* reached through loopback */
    struct gateway_config gc = {.endpoint = url};
    ck_assert_int_eq(gateway_new(&gw, f.srv, f.base, &gc), 0);
    n_parked = cancels = watch_cancels = flood_sent = 0;
    memset(parked, 0, sizeof parked);
}

static void setup(void)
{
    start(0);
}

static void teardown(void)
{
    gateway_free(gw);
    gw = NULL;
    fixture_teardown(&f);
}

static char buf[1 << 16];

/* Sends one request on a new connection; returns the socket. */
static int request(const char *method, const char *path, const char *body, const char *hdrs)
{
    int fd = sock_adopted(&f);
    char req[4096];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %zu\r\n\r\n%s",
                     method, path, hdrs ? hdrs : "", strlen(body), body);
    sock_write(fd, req, (size_t)n);
    return fd;
}

static const char *answer(const char *method, const char *path, const char *body,
                          const char *hdrs, const char *until)
{
    int fd = request(method, path, body, hdrs);
    sock_read_until(&f, fd, buf, sizeof buf, until, 3000, NULL);
    close(fd);
    return buf;
}

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? b + 4 : "";
}

START_TEST(unary_answers)
{
    answer("POST", "/v3/kv/range", "{\"key\":\"YQ==\",\"limit\":\"5\"}",
           "Authorization: t0k\r\nContent-Type: application/x-www-form-urlencoded\r\n", "}");
    ck_assert(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
    ck_assert_ptr_nonnull(strstr(buf, "Content-Type: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "Grpc-Metadata-Content-Type: application/grpc\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "Access-Control-Allow-Origin: *\r\n"));
    ck_assert_str_eq(body_of(buf), "{\"more\":true,\"count\":\"5\"}");
    /* /v3beta/ is the same; an empty body is an empty request */
    answer("POST", "/v3beta/kv/range", "", NULL, "}");
    ck_assert_str_eq(body_of(buf), "{}");
    /* a gRPC error: grpc-gateway's body and status */
    answer("POST", "/v3/kv/range", "{\"key\":\"bmY=\"}", NULL, "}");
    ck_assert(strncmp(buf, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    ck_assert_str_eq(body_of(buf),
                     "{\"error\":\"etcdserver: requested lease not found\",\"message\":"
                     "\"etcdserver: requested lease not found\",\"code\":5}");
    /* a body that does not decode: 400, Go's text, code 3 */
    answer("POST", "/v3/kv/range", "{\"limit\":1.5}", NULL, "}");
    ck_assert(strncmp(buf, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"code\":3}"));
    ck_assert_ptr_nonnull(strstr(buf, "cannot unmarshal number 1.5 into Go value of type int64"));
    /* a service the member does not serve */
    answer("POST", "/v3/auth/enable", "{}", NULL, "}");
    ck_assert(strncmp(buf, "HTTP/1.1 501", 12) == 0);
    ck_assert_str_eq(body_of(buf), "{\"error\":\"unknown service etcdserverpb.Auth\",\"message\":"
                                   "\"unknown service etcdserverpb.Auth\",\"code\":12}");
}
END_TEST

START_TEST(paths_and_methods)
{
    answer("POST", "/v3/kv/nope", "{}", NULL, "\n");
    ck_assert(strncmp(buf, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    ck_assert_ptr_nonnull(strstr(buf, "X-Content-Type-Options: nosniff\r\n"));
    ck_assert_str_eq(body_of(buf), "Not Found\n");
    answer("GET", "/v3/kv/range", "", NULL, "\n");
    ck_assert(strncmp(buf, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0);
    ck_assert_str_eq(body_of(buf), "Method Not Allowed\n");
    answer("POST", "/v3?a=b", "", NULL, "\r\n\r\n");
    ck_assert(strncmp(buf, "HTTP/1.1 301", 12) == 0);
    ck_assert_ptr_nonnull(strstr(buf, "Location: /v3/?a=b\r\n"));
    answer("OPTIONS", "/v3/kv/put", "", NULL, "\r\n\r\n");
    ck_assert(strncmp(buf, "HTTP/1.1 200 OK", 15) == 0);
    ck_assert_ptr_nonnull(strstr(buf, "Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE"));
}
END_TEST

START_TEST(leaving_client_cancels)
{
    int fd = request("POST", "/v3/kv/range", "{\"key\":\"cGFyaw==\"}", NULL);
    WAIT_UNTIL(f.base, n_parked == 1, 3000);
    ck_assert_int_eq(n_parked, 1);
    close(fd);
    WAIT_UNTIL(f.base, cancels == 1, 3000);
    ck_assert_int_eq(cancels, 1);
}
END_TEST

START_TEST(watch_stream)
{
    /* two requests in one body; the stream stays after the body ends */
    int fd = request("POST", "/v3/watch",
                     "{\"create_request\":{\"key\":\"YQ==\"}}\n{\"create_request\":{\"key\":\"Yg==\"}}",
                     NULL);
    sock_read_until(&f, fd, buf, sizeof buf, "\"watch_id\":\"2\"", 3000, NULL);
    ck_assert_ptr_nonnull(strstr(buf, "Transfer-Encoding: chunked\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "{\"result\":{\"watch_id\":\"1\",\"created\":true}}\n"));
    ck_assert_ptr_nonnull(strstr(buf, "{\"result\":{\"watch_id\":\"2\",\"created\":true}}\n"));
    run_for(f.base, 50);
    ck_assert_int_eq(watch_cancels, 0);
    close(fd);
    WAIT_UNTIL(f.base, watch_cancels == 1, 3000);
    ck_assert_int_eq(watch_cancels, 1);
    /* a bad first request: 500, code 2 (grpc-gateway passes the error on) */
    answer("POST", "/v3/watch", "{\"create_request\":5}", NULL, "}");
    ck_assert(strncmp(buf, "HTTP/1.1 500", 12) == 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"code\":2}"));
    /* an error before any result: the unary form; after: the stream form */
    answer("POST", "/v3/watch", "{\"create_request\":{\"key\":\"ZXJy\"}}", NULL, "}");
    ck_assert(strncmp(buf, "HTTP/1.1 412", 12) == 0);
    ck_assert_str_eq(body_of(buf), "{\"error\":\"etcdserver: no leader\",\"message\":"
                                   "\"etcdserver: no leader\",\"code\":9}");
    answer("POST", "/v3/watch", "{\"create_request\":{\"key\":\"bGF0ZS1lcnI=\"}}", NULL,
           "0\r\n\r\n");
    ck_assert(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    ck_assert_ptr_nonnull(strstr(buf, "{\"error\":{\"grpc_code\":11,\"http_code\":400,\"message\":"
                                      "\"etcdserver: mvcc: required revision has been "
                                      "compacted\",\"http_status\":\"Bad Request\"}}"));
}
END_TEST

START_TEST(server_stream)
{
    answer("POST", "/v3/maintenance/snapshot", "{}", NULL, "0\r\n\r\n");
    ck_assert(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    const char *p = buf;
    int n = 0;
    while ((p = strstr(p, "{\"result\":{")) != NULL) {
        n++;
        p++;
    }
    ck_assert_int_eq(n, 3);
    ck_assert_ptr_nonnull(strstr(buf, "{\"result\":{\"remaining_bytes\":\"2\",\"blob\":\"YWJj\"}}\n"));
    ck_assert_ptr_nonnull(strstr(buf, "{\"result\":{\"blob\":\"YWJj\"}}\n"));
}
END_TEST

START_TEST(slow_client_holds_the_server_back)
{
    memset(blob, 'q', sizeof blob);
    int fd = request("POST", "/v3/watch", "{\"create_request\":{\"key\":\"Zmxvb2Q=\"}}", NULL);
    /* never read: the gateway stops giving the server window, so the
     * server stops after a bounded amount (the socket's buffers, the
     * connection's 1 MiB, one stream window) */
    run_for(f.base, 1500);
    int stalled = flood_sent;
    run_for(f.base, 500);
    ck_assert_int_eq(flood_sent, stalled);
    ck_assert_int_lt(stalled, 200);
    ck_assert_int_eq(watch_cancels, 0);
    /* reading again lets it go on to the end */
    static char sink[1 << 16];
    for (int i = 0; i < 20000 && flood_sent <= 400; i++)
        sock_read_until(&f, fd, sink, sizeof sink, NULL, 0, NULL);
    ck_assert_int_gt(flood_sent, 400);
    ck_assert_int_eq(watch_cancels, 0);
    close(fd);
    WAIT_UNTIL(f.base, watch_cancels == 1, 3000);
    ck_assert_int_eq(watch_cancels, 1);
}
END_TEST

/* Past GATEWAY_MAX_PAUSED slow streams, the others are read on and cut
 * off at their bound instead: held-back answers never reach the server's
 * per-connection bound, which would refuse every new gateway stream. */
START_TEST(many_slow_clients_do_not_stop_the_gateway)
{
    memset(blob, 'q', sizeof blob);
    int fds[5];
    for (int i = 0; i < 5; i++)
        fds[i] = request("POST", "/v3/watch", "{\"create_request\":{\"key\":\"Zmxvb2Q=\"}}", NULL);
    WAIT_UNTIL(f.base, watch_cancels == 5 - GATEWAY_MAX_PAUSED, 20000);
    run_for(f.base, 300); /* the paused ones settle */
    answer("POST", "/v3/kv/range", "{\"limit\":4}", NULL, "}");
    ck_assert_str_eq(body_of(buf), "{\"count\":\"4\"}");
    struct rpc_server_stats st;
    rpc_server_get_stats(f.srv, &st);
    ck_assert_uint_eq(st.streams_refused, 0);
    ck_assert_int_eq(watch_cancels, 5 - GATEWAY_MAX_PAUSED);
    for (int i = 0; i < 5; i++)
        close(fds[i]);
    WAIT_UNTIL(f.base, watch_cancels == 5, 3000);
    ck_assert_int_eq(watch_cancels, 5);
}
END_TEST

START_TEST(streams_wait_for_room)
{
    teardown();
    start(2);
    int a = request("POST", "/v3/kv/range", "{\"key\":\"cGFyaw==\"}", NULL);
    int b = request("POST", "/v3/kv/range", "{\"key\":\"cGFyaw==\"}", NULL);
    WAIT_UNTIL(f.base, n_parked == 2, 3000);
    ck_assert_int_eq(n_parked, 2);
    /* a third waits for a stream, as grpc-go's calls do */
    int c = request("POST", "/v3/kv/range", "{\"limit\":7}", NULL);
    sock_read_until(&f, c, buf, sizeof buf, "}", 300, NULL);
    ck_assert_str_eq(buf, "");
    /* one that waits and leaves costs nothing */
    int d = request("POST", "/v3/kv/range", "{\"limit\":8}", NULL);
    run_for(f.base, 50);
    close(d);
    /* a stream frees up: the third goes */
    rpc_call_reply(parked[0], &(Etcdserverpb__RangeResponse)ETCDSERVERPB__RANGE_RESPONSE__INIT.base);
    parked[0] = NULL;
    sock_read_until(&f, c, buf, sizeof buf, "}", 3000, NULL);
    ck_assert_str_eq(body_of(buf), "{\"count\":\"7\"}");
    sock_read_until(&f, a, buf, sizeof buf, "}", 3000, NULL);
    ck_assert_str_eq(body_of(buf), "{}");
    close(a);
    close(c);
    close(b);
    WAIT_UNTIL(f.base, cancels == 1, 3000);
    ck_assert_int_eq(cancels, 1);
}
END_TEST

START_TEST(free_answers_open_requests)
{
    int u = request("POST", "/v3/kv/range", "{\"key\":\"cGFyaw==\"}", NULL);
    int w = request("POST", "/v3/watch", "{\"create_request\":{\"key\":\"YQ==\"}}", NULL);
    WAIT_UNTIL(f.base, n_parked == 1, 3000);
    sock_read_until(&f, w, buf, sizeof buf, "created", 3000, NULL);
    gateway_free(gw);
    gw = NULL;
    sock_read_until(&f, u, buf, sizeof buf, "}", 3000, NULL);
    ck_assert(strncmp(buf, "HTTP/1.1 503", 12) == 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"code\":14}"));
    sock_read_until(&f, w, buf, sizeof buf, "0\r\n\r\n", 3000, NULL);
    ck_assert_str_eq(buf, "0\r\n\r\n");
    close(u);
    close(w);
}
END_TEST

/* Each allocation from the request on fails once in turn, for a unary
 * call and a watch: every request ends (answered, or its connection
 * closed) and nothing leaks (ASan build). */
START_TEST(allocation_failures)
{
    static const char *const reqs[][2] = {
        {"/v3/kv/range", "{\"key\":\"YQ==\",\"limit\":3,\"x\":[1,{\"y\":\"z\"}]}"},
        {"/v3/watch", "{\"create_request\":{\"key\":\"YQ==\"}}{\"create_request\":{}}"},
    };
    /* warm the gateway's connection up first */
    answer("POST", "/v3/kv/range", "{}", NULL, "}");
    for (size_t k = 0; k < 2; k++) {
        bool clean = false;
        for (long i = 0; i < 400 && !clean; i++) {
            int fd = sock_adopted(&f);
            char req[512];
            int n = snprintf(req, sizeof req,
                             "POST %s HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s", reqs[k][0],
                             strlen(reqs[k][1]), reqs[k][1]);
            long before = metcd_mem_count();
            metcd_mem_fail_after(i);
            sock_write(fd, req, (size_t)n);
            bool eof = false;
            const char *until = k == 0 ? "}" : "\"watch_id\":\"2\"";
            /* an answer (an error's body ends in '}'), or the connection
             * closed; a watch that started goes on to its second result */
            size_t len = sock_read_until(&f, fd, buf, sizeof buf, "}", 2000, &eof);
            if (!eof && k == 1 && strncmp(buf, "HTTP/1.1 200", 12) == 0 && !strstr(buf, until))
                sock_read_until(&f, fd, buf + len, sizeof buf - len, until, 300, &eof);
            metcd_mem_fail_after(-1);
            ck_assert_msg(eof || strstr(buf, "HTTP/1.1 "), "request %zu, failure %ld: no end",
                          k, i);
            clean = metcd_mem_count() - before <= i && strstr(buf, until);
            close(fd);
            run_for(f.base, 5);
        }
        ck_assert(clean);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/gateway");
    TCase *tc = tcase_create("gateway");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, unary_answers);
    tcase_add_test(tc, paths_and_methods);
    tcase_add_test(tc, leaving_client_cancels);
    tcase_add_test(tc, watch_stream);
    tcase_add_test(tc, server_stream);
    tcase_add_test(tc, slow_client_holds_the_server_back);
    tcase_add_test(tc, many_slow_clients_do_not_stop_the_gateway);
    tcase_add_test(tc, streams_wait_for_room);
    tcase_add_test(tc, free_answers_open_requests);
    tcase_add_test(tc, allocation_failures);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
