/* Unit tests of metcd-bench watch's wire reader (decode.c) against
 * protobuf-c's encoding of etcdserverpb.WatchResponse, and of its /proc
 * readers (proc.c) against this process. */
#include "tools/bench/bench.h"

#include "server/etcdserverpb/rpc.pb-c.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct seen {
    uint64_t times[8];
    size_t n;
};

static void on_time(void *arg, uint64_t ns)
{
    struct seen *s = arg;
    if (s->n < 8)
        s->times[s->n++] = ns;
}

static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Packs r; caller frees. */
static uint8_t *pack(const Etcdserverpb__WatchResponse *r, size_t *len)
{
    *len = etcdserverpb__watch_response__get_packed_size(r);
    uint8_t *buf = malloc(*len ? *len : 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(etcdserverpb__watch_response__pack(r, buf), *len);
    return buf;
}

START_TEST(test_events_and_times)
{
    uint8_t v1[16], v2[8];
    memset(v1, 'x', sizeof v1);
    le64(v1, 123456789012345ull);
    le64(v2, 42);
    Mvccpb__KeyValue kv[3] = {MVCCPB__KEY_VALUE__INIT, MVCCPB__KEY_VALUE__INIT,
                              MVCCPB__KEY_VALUE__INIT};
    kv[0].key.data = (uint8_t *)"k1";
    kv[0].key.len = 2;
    kv[0].value.data = v1;
    kv[0].value.len = sizeof v1;
    kv[0].mod_revision = 99;
    kv[1].key.data = (uint8_t *)"k2";
    kv[1].key.len = 2;
    kv[1].value.data = v2;
    kv[1].value.len = sizeof v2;
    kv[2].key.data = (uint8_t *)"k3"; /* a short value: counted, no time */
    kv[2].key.len = 2;
    kv[2].value.data = (uint8_t *)"abc";
    kv[2].value.len = 3;
    Mvccpb__Event ev[3] = {MVCCPB__EVENT__INIT, MVCCPB__EVENT__INIT, MVCCPB__EVENT__INIT};
    Mvccpb__Event *evp[3];
    for (int i = 0; i < 3; i++) {
        ev[i].kv = &kv[i];
        evp[i] = &ev[i];
    }
    ev[1].prev_kv = &kv[2]; /* prev_kv's value must not be taken for kv's */
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    h.revision = 1000;
    h.cluster_id = 0xffffffffffffffffull;
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.header = &h;
    r.watch_id = 7;
    r.events = evp;
    r.n_events = 3;
    size_t len;
    uint8_t *buf = pack(&r, &len);
    struct seen s = {0};
    uint64_t n;
    bool created, canceled;
    int64_t id;
    ck_assert_int_eq(bench_watch_decode(buf, len, &n, &created, &canceled, &id, on_time, &s), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert(!created && !canceled);
    ck_assert_int_eq(id, 7);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_uint_eq(s.times[0], 123456789012345ull);
    ck_assert_uint_eq(s.times[1], 42);
    /* every truncation is refused or decodes fewer events, never reads past */
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *t = malloc(cut ? cut : 1);
        memcpy(t, buf, cut);
        int rc = bench_watch_decode(t, cut, &n, &created, &canceled, &id, NULL, NULL);
        ck_assert(rc == BENCH_ERR_INVAL || n < 3);
        free(t);
    }
    free(buf);
}
END_TEST

START_TEST(test_created_and_refused)
{
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.watch_id = 0;
    r.created = true;
    size_t len;
    uint8_t *buf = pack(&r, &len);
    uint64_t n;
    bool created, canceled;
    int64_t id = 5;
    ck_assert_int_eq(bench_watch_decode(buf, len, &n, &created, &canceled, &id, NULL, NULL), 0);
    ck_assert(created && !canceled);
    ck_assert_int_eq(id, 0);
    ck_assert_uint_eq(n, 0);
    free(buf);
    r.watch_id = -1;
    r.canceled = true;
    r.cancel_reason = "mvcc: watcher range is empty";
    buf = pack(&r, &len);
    ck_assert_int_eq(bench_watch_decode(buf, len, &n, &created, &canceled, &id, NULL, NULL), 0);
    ck_assert(created && canceled);
    ck_assert_int_eq(id, -1);
    free(buf);
    static const uint8_t junk[] = {0x0f, 0x01}; /* wire type 7 */
    ck_assert_int_eq(
        bench_watch_decode(junk, sizeof junk, &n, &created, &canceled, &id, NULL, NULL),
        BENCH_ERR_INVAL);
}
END_TEST

START_TEST(test_proc_self)
{
    uint64_t kib = 0;
    ck_assert_int_eq(bench_proc_rss_kib(getpid(), &kib), 0);
    ck_assert_uint_gt(kib, 0);
    double cpu = -1;
    ck_assert_int_eq(bench_proc_cpu_secs(getpid(), &cpu), 0);
    ck_assert(cpu >= 0);
    ck_assert_int_eq(bench_proc_rss_kib(0x7ffffffe, &kib), BENCH_ERR_IO);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    uint16_t port = ntohs(sa.sin_port);
    int64_t pid = 0;
    /* bound but not listening: not found */
    ck_assert_int_eq(bench_proc_find_listener(port, &pid), BENCH_ERR_INVAL);
    ck_assert_int_eq(listen(fd, 1), 0);
    ck_assert_int_eq(bench_proc_find_listener(port, &pid), 0);
    ck_assert_int_eq(pid, getpid());
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_watch_decode");
    TCase *tc = tcase_create("decode");
    tcase_add_test(tc, test_events_and_times);
    tcase_add_test(tc, test_created_and_refused);
    tcase_add_test(tc, test_proc_self);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
