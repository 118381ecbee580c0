/* tests/unit/peer/test_snapshot.c - database snapshots over their own
 * connection: a multi-MiB file arrives intact beside live heartbeats, a
 * corrupted or oversized stream is refused, the sender hears the outcome. */
#include <check.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mem.h"
#include "harness.h"

#define CLUSTER 0x77ULL
#define LOOPBACK "http://127.0.0.1:0"

#ifdef METCD_SANITIZED
#define BIG (8u << 20)
#else
#define BIG (24u << 20)
#endif

static struct event_base *base;
static struct node na, nb;

static void setup(void)
{
    base = event_base_new();
    memset(&na, 0, sizeof(na));
    memset(&nb, 0, sizeof(nb));
    na.snap_fd = nb.snap_fd = -1;
}

static void teardown(void)
{
    node_stop(&na);
    node_stop(&nb);
    event_base_free(base);
}

static void start_pair(const peer_config *cfg_b)
{
    node_start(&na, base, 1, CLUSTER, LOOPBACK, NULL);
    node_start(&nb, base, 2, CLUSTER, LOOPBACK, cfg_b);
    node_link(&na, &nb);
    WAIT_UNTIL(base, node_active(&na, 2) && node_active(&nb, 1), 5000);
    ck_assert(node_active(&na, 2));
}

static raft_msg snap_msg(uint64_t from, uint64_t to, uint64_t index)
{
    static raft_snapshot snap;
    memset(&snap, 0, sizeof(snap));
    snap.meta.index = index;
    snap.meta.term = 4;
    snap.meta.conf.voters[0] = 1;
    snap.meta.conf.voters[1] = 2;
    snap.meta.conf.n_voters = 2;
    raft_msg m = {.type = RAFT_MSG_SNAP, .from = from, .to = to, .term = 4, .snapshot = &snap};
    return m;
}

static bool fd_closed(int fd)
{
    return fcntl(fd, F_GETFD) < 0;
}

START_TEST(multi_mib_snapshot_arrives_intact_beside_heartbeats)
{
    start_pair(NULL);
    int fd = make_file(BIG, 42);
    raft_msg m = snap_msg(1, 2, 1234);
    ck_assert_int_eq(peer_send_snapshot(na.t, &m, fd), 0);
    /* Heartbeats do not wait behind the database. */
    for (int i = 0; i < 10; i++) {
        raft_msg hb = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 4};
        ck_assert_int_eq(peer_send(na.t, &hb), 0);
    }
    WAIT_UNTIL(base, nb.n_by_type[RAFT_MSG_HEARTBEAT] == 10, 3000);
    ck_assert_uint_eq(nb.n_by_type[RAFT_MSG_HEARTBEAT], 10);
    ck_assert_uint_eq(nb.n_snaps, 0);
    ck_assert_int_eq(peer_send_snapshot(na.t, &m, make_file(10, 1)), PEER_ERR_BUSY);
    WAIT_UNTIL(base, nb.n_snaps == 1 && na.snap_ok[2] == 1, 15000);
    ck_assert_uint_eq(nb.n_snaps, 1);
    ck_assert_uint_eq(nb.snap_index, 1234);
    ck_assert_uint_eq(nb.snap_from, 1);
    ck_assert(file_matches(nb.snap_fd, BIG, 42));
    ck_assert_uint_eq(na.snap_ok[2], 1);
    ck_assert_uint_eq(na.snap_failed[2], 0);
    ck_assert(node_log_has(&na, "database snapshot [index: 1234, to: 0000000000000002] sent out "
                                "successfully"));
    ck_assert(node_log_has(&nb, "received and saved database snapshot [index: 1234"));
    peer_stats st;
    peer_get_stats(na.t, &st, 1);
    ck_assert_uint_eq(st.snapshots_sent, 1);
    ck_assert(!st.sending_snapshot);
    peer_get_stats(nb.t, &st, 1);
    ck_assert_uint_eq(st.snapshots_received, 1);
    /* A second one is accepted now; an empty database is fine too. */
    m = snap_msg(1, 2, 1300);
    ck_assert_int_eq(peer_send_snapshot(na.t, &m, make_file(0, 3)), 0);
    WAIT_UNTIL(base, nb.n_snaps == 2 && na.snap_ok[2] == 2, 5000);
    ck_assert_uint_eq(nb.snap_index, 1300);
    ck_assert(file_matches(nb.snap_fd, 0, 3));
}
END_TEST

/* A raw sender: hello, header, the bytes of make_file(len, seed), then a
 * digest (corrupt: flipped). Returns the connection. */
static int raw_snapshot(size_t announce, size_t len, uint32_t seed, bool corrupt)
{
    int fd = raw_connect(nb.url);
    raw_hello(fd, 2, CLUSTER, 1, 2);
    raft_msg m = snap_msg(1, 2, 99);
    uint8_t *enc;
    size_t enc_len;
    ck_assert_int_eq(raft_msg_encode(&m, &enc, &enc_len), 0);
    uint8_t *hdr = metcd_malloc(enc_len + 8);
    for (int i = 0; i < 8; i++)
        hdr[i] = (uint8_t)((uint64_t)announce >> (56 - 8 * i));
    memcpy(hdr + 8, enc, enc_len);
    raw_frame(fd, 2, hdr, (uint32_t)(enc_len + 8));
    metcd_free(hdr);
    metcd_free(enc);
    int src = make_file(len, seed);
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
    uint8_t buf[50000];
    ssize_t r;
    while ((r = read(src, buf, sizeof(buf))) > 0) {
        EVP_DigestUpdate(sha, buf, (size_t)r);
        raw_frame(fd, 3, buf, (uint32_t)r);
        run_for(base, 0);
    }
    close(src);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len;
    EVP_DigestFinal_ex(sha, md, &md_len);
    EVP_MD_CTX_free(sha);
    if (corrupt)
        md[5] ^= 1;
    raw_frame(fd, 4, md, 32);
    return fd;
}

START_TEST(corrupted_snapshot_is_rejected)
{
    start_pair(NULL);
    int fd = raw_snapshot(300000, 300000, 7, true);
    WAIT_UNTIL(base, raw_closed(fd), 3000);
    ck_assert(raw_closed(fd));
    close(fd);
    ck_assert(node_log_has(&nb, "sha256 mismatch"));
    ck_assert_uint_eq(nb.n_snaps, 0);
    /* The same bytes with the right digest are accepted (the raw sender
     * works), and the message stream was never disturbed. */
    fd = raw_snapshot(300000, 300000, 7, false);
    WAIT_UNTIL(base, nb.n_snaps == 1, 3000);
    ck_assert_uint_eq(nb.n_snaps, 1);
    ck_assert(file_matches(nb.snap_fd, 300000, 7));
    close(fd);
    ck_assert(node_active(&na, 2));
}
END_TEST

START_TEST(more_bytes_than_announced_is_rejected)
{
    start_pair(NULL);
    int fd = raw_snapshot(1000, 200000, 9, false);
    WAIT_UNTIL(base, raw_closed(fd), 3000);
    ck_assert(raw_closed(fd));
    close(fd);
    ck_assert(node_log_has(&nb, "more data than announced"));
    fd = raw_snapshot(300000, 1000, 9, false); /* short */
    WAIT_UNTIL(base, raw_closed(fd), 3000);
    ck_assert(raw_closed(fd));
    close(fd);
    ck_assert(node_log_has(&nb, "short stream"));
    ck_assert_uint_eq(nb.n_snaps, 0);
}
END_TEST

START_TEST(receiver_limit_fails_the_sender)
{
    peer_config cfg = {.snap_max_bytes = 1 << 20};
    start_pair(&cfg);
    raft_msg m = snap_msg(1, 2, 5);
    ck_assert_int_eq(peer_send_snapshot(na.t, &m, make_file(2 << 20, 5)), 0);
    WAIT_UNTIL(base, na.snap_failed[2] == 1, 5000);
    ck_assert_uint_eq(na.snap_failed[2], 1);
    ck_assert_uint_eq(na.snap_ok[2], 0);
    ck_assert_uint_eq(nb.n_snaps, 0);
    ck_assert(node_log_has(&nb, "over the limit"));
    ck_assert(node_log_has(&na, "failed to be sent out"));
}
END_TEST

START_TEST(unreachable_peer_fails_the_snapshot)
{
    node_start(&na, base, 1, CLUSTER, LOOPBACK, NULL);
    const char *dead = "http://127.0.0.1:1";
    ck_assert_int_eq(peer_add(na.t, 2, &dead, 1), 0);
    raft_msg m = snap_msg(1, 2, 5);
    int fd = make_file(1000, 1);
    ck_assert_int_eq(peer_send_snapshot(na.t, &m, fd), 0);
    ck_assert_uint_eq(na.snap_failed[2], 0); /* never from inside the call */
    WAIT_UNTIL(base, na.snap_failed[2] == 1, 3000);
    ck_assert_uint_eq(na.snap_failed[2], 1);
    ck_assert(fd_closed(fd));
}
END_TEST

START_TEST(bad_calls_close_the_fd)
{
    node_start(&na, base, 1, CLUSTER, LOOPBACK, NULL);
    raft_msg m = snap_msg(1, 9, 5);
    int fd = make_file(10, 1);
    ck_assert_int_eq(peer_send_snapshot(na.t, &m, fd), PEER_ERR_UNKNOWN);
    ck_assert(fd_closed(fd));
    const char *u = "http://127.0.0.1:1";
    ck_assert_int_eq(peer_add(na.t, 2, &u, 1), 0);
    raft_msg app = {.type = RAFT_MSG_APP, .from = 1, .to = 2};
    fd = make_file(10, 1);
    ck_assert_int_eq(peer_send_snapshot(na.t, &app, fd), PEER_ERR_INVAL);
    ck_assert(fd_closed(fd));
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    m = snap_msg(1, 2, 5);
    ck_assert_int_eq(peer_send_snapshot(na.t, &m, pfd[0]), PEER_ERR_INVAL); /* not a file */
    ck_assert(fd_closed(pfd[0]));
    close(pfd[1]);
    run_for(base, 20);
    ck_assert_uint_eq(na.snap_failed[2] + na.snap_ok[2], 0);
}
END_TEST

START_TEST(removed_peer_drops_the_snapshot_silently)
{
    start_pair(NULL);
    raft_msg m = snap_msg(1, 2, 5);
    int fd = make_file(4 << 20, 5);
    ck_assert_int_eq(peer_send_snapshot(na.t, &m, fd), 0);
    /* removed before the loop runs: a 4 MiB stream on loopback can finish
     * within a few ms, so letting it start made this test timing-dependent */
    ck_assert_int_eq(peer_remove(na.t, 2), 0);
    ck_assert(fd_closed(fd));
    run_for(base, 200);
    ck_assert_uint_eq(na.snap_failed[2] + na.snap_ok[2], 0);
    ck_assert_uint_eq(nb.n_snaps, 0);
    /* Mid-stream: B has begun receiving (a 16 MiB stream takes many loop
     * turns, since B reads 4 KiB per event), then A forgets B. */
    const char *ub = nb.url;
    ck_assert_int_eq(peer_add(na.t, 2, &ub, 1), 0);
    WAIT_UNTIL(base, node_active(&na, 2), 3000);
    fd = make_file(16 << 20, 6);
    ck_assert_int_eq(peer_send_snapshot(na.t, &m, fd), 0);
    WAIT_UNTIL(base, node_log_has(&nb, "receiving database snapshot"), 3000);
    ck_assert(node_log_has(&nb, "receiving database snapshot"));
    ck_assert_uint_eq(nb.n_snaps, 0);
    ck_assert_int_eq(peer_remove(na.t, 2), 0);
    ck_assert(fd_closed(fd));
    run_for(base, 200);
    ck_assert_uint_eq(na.snap_failed[2] + na.snap_ok[2], 0);
    ck_assert_uint_eq(nb.n_snaps, 0);
}
END_TEST

START_TEST(snapshot_from_unknown_sender_is_refused)
{
    node_start(&na, base, 1, CLUSTER, LOOPBACK, NULL);
    node_start(&nb, base, 2, CLUSTER, LOOPBACK, NULL);
    const char *ub = nb.url;
    ck_assert_int_eq(peer_add(na.t, 2, &ub, 1), 0); /* B does not know A */
    raft_msg m = snap_msg(1, 2, 5);
    ck_assert_int_eq(peer_send_snapshot(na.t, &m, make_file(1000, 1)), 0);
    WAIT_UNTIL(base, na.snap_failed[2] == 1, 3000);
    ck_assert_uint_eq(na.snap_failed[2], 1);
    ck_assert(node_log_has(&na, "sender is not a known member"));
    ck_assert_uint_eq(nb.n_snaps, 0);
}
END_TEST

START_TEST(teardown_mid_snapshot)
{
    start_pair(NULL);
    raft_msg m = snap_msg(1, 2, 5);
    ck_assert_int_eq(peer_send_snapshot(na.t, &m, make_file(16 << 20, 5)), 0);
    WAIT_UNTIL(base, node_log_has(&nb, "receiving database snapshot"), 3000);
    ck_assert_uint_eq(nb.n_snaps, 0);
    node_stop(&nb); /* receiver goes mid-stream: its temp file is closed */
    WAIT_UNTIL(base, na.snap_failed[2] == 1, 3000);
    ck_assert_uint_eq(na.snap_failed[2], 1);
    ck_assert_int_eq(peer_send_snapshot(na.t, &m, make_file(4 << 20, 5)), 0);
    run_for(base, 5);
    node_stop(&na); /* sender goes mid-stream */
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("peer/snapshot");
    TCase *tc = tcase_create("snapshot");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, multi_mib_snapshot_arrives_intact_beside_heartbeats);
    tcase_add_test(tc, corrupted_snapshot_is_rejected);
    tcase_add_test(tc, more_bytes_than_announced_is_rejected);
    tcase_add_test(tc, receiver_limit_fails_the_sender);
    tcase_add_test(tc, unreachable_peer_fails_the_snapshot);
    tcase_add_test(tc, bad_calls_close_the_fd);
    tcase_add_test(tc, removed_peer_drops_the_snapshot_silently);
    tcase_add_test(tc, snapshot_from_unknown_sender_is_refused);
    tcase_add_test(tc, teardown_mid_snapshot);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
