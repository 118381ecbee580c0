/* tests/unit/peer/test_wire.c - the hello, frame headers and peer URLs. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "server/peer/internal.h"

START_TEST(hello_round_trips_big_endian)
{
    struct peer_hello h = {.version = 1,
                           .kind = HELLO_SNAP,
                           .status = HELLO_UNKNOWN_SENDER,
                           .cluster_id = 0x0102030405060708ULL,
                           .from = 0xa1,
                           .to = 0xffffffffffffffffULL};
    uint8_t buf[PEER_HELLO_LEN];
    peer_hello_encode(&h, buf);
    ck_assert_int_eq(memcmp(buf, "MPER\0\1\2\2\1\2\3\4\5\6\7\10", 16), 0);
    struct peer_hello d;
    ck_assert_int_eq(peer_hello_decode(buf, &d), 0);
    ck_assert_uint_eq(d.version, 1);
    ck_assert_uint_eq(d.kind, HELLO_SNAP);
    ck_assert_uint_eq(d.status, HELLO_UNKNOWN_SENDER);
    ck_assert_uint_eq(d.cluster_id, h.cluster_id);
    ck_assert_uint_eq(d.from, 0xa1);
    ck_assert_uint_eq(d.to, h.to);
    buf[0] = 'G';
    ck_assert_int_eq(peer_hello_decode(buf, &d), -1);
    ck_assert_str_eq(peer_hello_status_text(HELLO_BAD_CLUSTER), "cluster ID mismatch");
    ck_assert_str_eq(peer_hello_status_text(200), "refused");
}
END_TEST

START_TEST(frame_header_layout)
{
    uint8_t h[PEER_FRAME_HDR];
    peer_frame_hdr(h, 0x01020304, FRAME_SNAP_CHUNK);
    ck_assert_int_eq(memcmp(h, "\1\2\3\4\3", 5), 0);
    ck_assert_uint_eq(peer_get_u32(h), 0x01020304);
    uint8_t b[8];
    peer_put_u64(b, 0x1122334455667788ULL);
    ck_assert_uint_eq(b[0], 0x11);
    ck_assert_uint_eq(peer_get_u64(b), 0x1122334455667788ULL);
}
END_TEST

START_TEST(urls_parse)
{
    struct peer_url u;
    ck_assert_int_eq(peer_url_parse("http://127.0.0.1:2380", &u), 0);
    ck_assert_int_eq(u.scheme, SCHEME_HTTP);
    ck_assert_str_eq(u.host, "127.0.0.1");
    ck_assert_uint_eq(u.port, 2380);
    ck_assert_str_eq(u.text, "http://127.0.0.1:2380");
    struct sockaddr_storage ss;
    socklen_t len;
    ck_assert_int_eq(peer_url_sockaddr(&u, &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 2380);
    peer_url_clear(&u);

    ck_assert_int_eq(peer_url_parse("https://[::1]:22380/", &u), 0);
    ck_assert_int_eq(u.scheme, SCHEME_HTTPS);
    ck_assert_str_eq(u.host, "::1");
    ck_assert_int_eq(peer_url_sockaddr(&u, &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    peer_url_clear(&u);

    ck_assert_int_eq(peer_url_parse("http://localhost:32380", &u), 0);
    ck_assert_int_eq(peer_url_sockaddr(&u, &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET); /* its IPv4 address first */
    peer_url_clear(&u);

    ck_assert_int_eq(peer_url_parse("unix:///tmp/x.sock", &u), 0);
    ck_assert_int_eq(u.scheme, SCHEME_UNIX);
    ck_assert_str_eq(u.host, "/tmp/x.sock");
    ck_assert_int_eq(peer_url_sockaddr(&u, &ss, &len), 0);
    ck_assert_str_eq(((struct sockaddr_un *)&ss)->sun_path, "/tmp/x.sock");
    peer_url_clear(&u);

    const char *bad[] = {"127.0.0.1:2380", "http://127.0.0.1", "http://:2380",
                         "http://h:99999", "http://h:12x",     "ftp://h:1",
                         "http://[::1:1",  "unix://",          "http://h:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(peer_url_parse(bad[i], &u) == PEER_ERR_INVAL, "%s", bad[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("peer/wire");
    TCase *tc = tcase_create("wire");
    tcase_add_test(tc, hello_round_trips_big_endian);
    tcase_add_test(tc, frame_header_layout);
    tcase_add_test(tc, urls_parse);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
