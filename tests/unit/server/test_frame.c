/* tests/unit/server/test_frame.c - server/rpc/frame.c: the length-prefixed
 * message reassembler fed in every possible split. */
#include "server/rpc/internal.h"

#include "common/mem.h"
#include "grpc/health/v1/health.pb-c.h"

#include <check.h>
#include <string.h>

/* Feeds `in` in pieces of `step` bytes; collects message lengths and the
 * first byte of each. Returns the number of messages. */
static int feed(struct rpc_deframer *d, const uint8_t *in, size_t len, size_t step,
                size_t *lens, uint8_t *first, int *last_rc)
{
    int n = 0;
    for (size_t off = 0; off < len;) {
        size_t take = len - off < step ? len - off : step;
        const uint8_t *p = in + off;
        size_t left = take;
        for (;;) {
            uint8_t *msg = NULL;
            size_t mlen = 0;
            int comp = 0;
            int rc = rpc_deframe(d, &p, &left, &msg, &mlen, &comp);
            *last_rc = rc;
            if (rc == RPC_DEFRAME_MSG) {
                lens[n] = mlen;
                first[n] = mlen ? msg[0] : 0;
                n++;
                metcd_free(msg);
                continue;
            }
            if (rc != RPC_DEFRAME_MORE)
                return n;
            break;
        }
        ck_assert_uint_eq(left, 0);
        off += take;
    }
    return n;
}

static size_t put(uint8_t *buf, size_t off, size_t len, uint8_t fill)
{
    buf[off] = 0;
    buf[off + 1] = (uint8_t)(len >> 24);
    buf[off + 2] = (uint8_t)(len >> 16);
    buf[off + 3] = (uint8_t)(len >> 8);
    buf[off + 4] = (uint8_t)len;
    memset(buf + off + 5, fill, len);
    return off + 5 + len;
}

START_TEST(every_split)
{
    uint8_t buf[512];
    size_t len = 0;
    len = put(buf, len, 10, 'a');
    len = put(buf, len, 0, 0);
    len = put(buf, len, 300, 'b');
    len = put(buf, len, 0, 0);
    len = put(buf, len, 1, 'c');
    for (size_t step = 1; step <= len; step++) {
        struct rpc_deframer d;
        rpc_deframer_init(&d, 1000);
        size_t lens[8];
        uint8_t first[8];
        int rc;
        int n = feed(&d, buf, len, step, lens, first, &rc);
        ck_assert_int_eq(n, 5);
        ck_assert_uint_eq(lens[0], 10);
        ck_assert_uint_eq(first[0], 'a');
        ck_assert_uint_eq(lens[1], 0);
        ck_assert_uint_eq(lens[2], 300);
        ck_assert_uint_eq(first[2], 'b');
        ck_assert_uint_eq(lens[3], 0);
        ck_assert_uint_eq(lens[4], 1);
        ck_assert(rpc_deframer_idle(&d));
        rpc_deframer_reset(&d);
    }
}
END_TEST

START_TEST(partial_is_not_idle)
{
    uint8_t buf[32];
    size_t len = put(buf, 0, 20, 'x');
    struct rpc_deframer d;
    rpc_deframer_init(&d, 100);
    size_t lens[2];
    uint8_t first[2];
    int rc;
    ck_assert_int_eq(feed(&d, buf, 3, 1, lens, first, &rc), 0);
    ck_assert(!rpc_deframer_idle(&d));
    ck_assert_int_eq(feed(&d, buf + 3, 10, 4, lens, first, &rc), 0);
    ck_assert(!rpc_deframer_idle(&d));
    rpc_deframer_reset(&d); /* frees the partial buffer */
    ck_assert(rpc_deframer_idle(&d));
    (void)len;
}
END_TEST

START_TEST(oversize_detected_from_prefix)
{
    uint8_t hdr[5] = {0, 0, 0x10, 0, 0}; /* 1 MiB announced */
    struct rpc_deframer d;
    rpc_deframer_init(&d, 1024);
    size_t lens[1];
    uint8_t first[1];
    int rc;
    ck_assert_int_eq(feed(&d, hdr, 5, 5, lens, first, &rc), 0);
    ck_assert_int_eq(rc, RPC_DEFRAME_TOO_BIG);
    ck_assert_uint_eq(d.too_big_len, 0x100000);
    rpc_deframer_reset(&d);
    /* Exactly at the limit is fine. */
    uint8_t buf[1100];
    size_t len = put(buf, 0, 1024, 'q');
    rpc_deframer_init(&d, 1024);
    ck_assert_int_eq(feed(&d, buf, len, 7, lens, first, &rc), 1);
    ck_assert_uint_eq(lens[0], 1024);
    rpc_deframer_reset(&d);
}
END_TEST

START_TEST(compressed_flag_reported)
{
    uint8_t buf[8] = {1, 0, 0, 0, 1, 'z'};
    struct rpc_deframer d;
    rpc_deframer_init(&d, 10);
    const uint8_t *p = buf;
    size_t left = 6, mlen;
    uint8_t *msg;
    int comp = 0;
    ck_assert_int_eq(rpc_deframe(&d, &p, &left, &msg, &mlen, &comp), RPC_DEFRAME_MSG);
    ck_assert_int_eq(comp, 1);
    metcd_free(msg);
}
END_TEST

START_TEST(allocation_failure_reported)
{
    uint8_t buf[16];
    size_t len = put(buf, 0, 4, 'n');
    struct rpc_deframer d;
    rpc_deframer_init(&d, 10);
    const uint8_t *p = buf;
    size_t left = len, mlen;
    uint8_t *msg;
    int comp;
    metcd_mem_fail_after(0);
    ck_assert_int_eq(rpc_deframe(&d, &p, &left, &msg, &mlen, &comp), RPC_DEFRAME_NOMEM);
    metcd_mem_fail_after(-1);
    rpc_deframer_reset(&d);
}
END_TEST

START_TEST(pack_prefix)
{
    struct evbuffer *out = evbuffer_new();
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = "ab";
    size_t framed = 0;
    ck_assert_int_eq(rpc_frame_pack(out, &req.base, 100, &framed), 0);
    ck_assert_uint_eq(framed, 9);
    uint8_t got[9], want[9] = {0, 0, 0, 0, 4, 0x0a, 2, 'a', 'b'};
    ck_assert_uint_eq(evbuffer_get_length(out), 9);
    evbuffer_copyout(out, got, 9);
    ck_assert_mem_eq(got, want, 9);
    /* Over the send limit: refused, nothing appended. */
    ck_assert_int_eq(rpc_frame_pack(out, &req.base, 3, NULL), RPC_ERR_TOO_BIG);
    ck_assert_uint_eq(evbuffer_get_length(out), 9);
    evbuffer_free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/frame");
    TCase *tc = tcase_create("frame");
    tcase_add_test(tc, every_split);
    tcase_add_test(tc, partial_is_not_idle);
    tcase_add_test(tc, oversize_detected_from_prefix);
    tcase_add_test(tc, compressed_flag_reported);
    tcase_add_test(tc, allocation_failure_reported);
    tcase_add_test(tc, pack_prefix);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
