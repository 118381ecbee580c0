/* tests/unit/peer/test_transport.c - message streams between transports
 * in one process on loopback: delivery both ways and in order, three
 * members, reconnect after a restart, bounded queues, hello checks, bad
 * input, removal and teardown. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/mem.h"
#include "harness.h"
#include "server/channelz/channelz.h"

#define CLUSTER 0x1234abcdULL
#define LOOPBACK "http://127.0.0.1:0"

static struct event_base *base;
static struct node na, nb, nc;

static void setup(void)
{
    base = event_base_new();
    memset(&na, 0, sizeof(na));
    memset(&nb, 0, sizeof(nb));
    memset(&nc, 0, sizeof(nc));
    na.snap_fd = nb.snap_fd = nc.snap_fd = -1;
}

static void teardown(void)
{
    node_stop(&na);
    node_stop(&nb);
    node_stop(&nc);
    event_base_free(base);
}

static int send_app(struct node *from, uint64_t to, uint64_t index, size_t payload)
{
    raft_msg m = mk_msg(RAFT_MSG_APP, from->id, to, index, payload);
    int rc = peer_send(from->t, &m);
    raft_msg_free(&m);
    return rc;
}

START_TEST(two_members_exchange_messages_both_ways_in_order)
{
    node_start(&na, base, 1, CLUSTER, LOOPBACK, NULL);
    node_start(&nb, base, 2, CLUSTER, LOOPBACK, NULL);
    node_link(&na, &nb);
    WAIT_UNTIL(base, node_active(&na, 2) && node_active(&nb, 1), 5000);
    ck_assert(node_active(&na, 2) && node_active(&nb, 1));
    ck_assert(node_log_has(&na, "peer 0000000000000002 became active"));
    for (uint64_t i = 1; i <= 2000; i++) {
        ck_assert_int_eq(send_app(&na, 2, i, i % 7 == 0 ? 5000 : 16), 0);
        ck_assert_int_eq(send_app(&nb, 1, i, 16), 0);
    }
    raft_msg hb = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 3, .commit = 9};
    ck_assert_int_eq(peer_send(na.t, &hb), 0);
    WAIT_UNTIL(base, nb.n_msgs == 2001 && na.n_msgs == 2000, 5000);
    ck_assert_uint_eq(nb.n_msgs, 2001);
    ck_assert_uint_eq(na.n_msgs, 2000);
    ck_assert_uint_eq(nb.n_by_type[RAFT_MSG_HEARTBEAT], 1);
    ck_assert(!na.out_of_order && !nb.out_of_order);
    ck_assert_uint_eq(nb.last_index[1], 2000);
    peer_stats st[2];
    ck_assert_uint_eq(peer_get_stats(na.t, st, 2), 1);
    ck_assert_uint_eq(st[0].id, 2);
    ck_assert(st[0].active && st[0].inbound_active);
    ck_assert_uint_eq(st[0].msgs_sent, 2001);
    ck_assert_uint_eq(st[0].msgs_received, 2000);
    ck_assert_uint_eq(st[0].msgs_dropped, 0);
}
END_TEST

START_TEST(three_members_all_pairs)
{
    node_start(&na, base, 1, CLUSTER, LOOPBACK, NULL);
    node_start(&nb, base, 2, CLUSTER, LOOPBACK, NULL);
    node_start(&nc, base, 3, CLUSTER, LOOPBACK, NULL);
    node_link(&na, &nb);
    node_link(&na, &nc);
    node_link(&nb, &nc);
    struct node *all[3] = {&na, &nb, &nc};
    WAIT_UNTIL(base,
               node_active(&na, 2) && node_active(&na, 3) && node_active(&nb, 1) &&
                   node_active(&nb, 3) && node_active(&nc, 1) && node_active(&nc, 2),
               5000);
    for (uint64_t i = 1; i <= 300; i++)
        for (int f = 0; f < 3; f++)
            for (int t = 0; t < 3; t++)
                if (f != t)
                    ck_assert_int_eq(send_app(all[f], all[t]->id, i, 64), 0);
    WAIT_UNTIL(base, na.n_msgs == 600 && nb.n_msgs == 600 && nc.n_msgs == 600, 5000);
    for (int k = 0; k < 3; k++) {
        ck_assert_uint_eq(all[k]->n_msgs, 600);
        ck_assert(!all[k]->out_of_order);
        for (int f = 0; f < 3; f++)
            if (f != k)
                ck_assert_uint_eq(all[k]->last_index[all[f]->id], 300);
    }
}
END_TEST

START_TEST(reconnects_after_peer_restart)
{
    node_start(&na, base, 1, CLUSTER, LOOPBACK, NULL);
    node_start(&nb, base, 2, CLUSTER, LOOPBACK, NULL);
    node_link(&na, &nb);
    WAIT_UNTIL(base, node_active(&na, 2), 5000);
    ck_assert_int_eq(send_app(&na, 2, 1, 10), 0);
    WAIT_UNTIL(base, nb.n_msgs == 1, 2000);
    ck_assert_uint_eq(nb.n_msgs, 1);

    char url[128];
    strcpy(url, nb.url);
    node_stop(&nb);
    WAIT_UNTIL(base, !node_active(&na, 2), 2000);
    ck_assert(!node_active(&na, 2));
    ck_assert(node_log_has(&na, "lost the TCP streaming connection with peer 0000000000000002"));
    run_for(base, 50);
    ck_assert_uint_ge(na.unreachable[2], 1);
    /* While it is down, messages are dropped and reported. */
    uint64_t before = na.unreachable[2];
    ck_assert_int_eq(send_app(&na, 2, 2, 10), PEER_ERR_DROPPED);
    run_for(base, 20);
    ck_assert_uint_gt(na.unreachable[2], before);
    run_for(base, 300); /* a few redials fail */

    node_start(&nb, base, 2, CLUSTER, url, NULL);
    const char *ua = na.url;
    ck_assert_int_eq(peer_add(nb.t, 1, &ua, 1), 0);
    WAIT_UNTIL(base, node_active(&na, 2), 6000);
    ck_assert(node_active(&na, 2));
    nb.last_index[1] = 2;
    ck_assert_int_eq(send_app(&na, 2, 3, 10), 0);
    WAIT_UNTIL(base, nb.last_index[1] == 3, 2000);
    ck_assert_uint_eq(nb.last_index[1], 3);
}
END_TEST

/* A peer back from a restart dials us first: our own stream to it, in a
 * backoff of seconds by then, is dialed at once instead of when the
 * backoff ends (a restarted member hears from the leader at once). */
START_TEST(a_peer_that_dials_us_is_redialed_at_once)
{
    node_start(&na, base, 1, CLUSTER, LOOPBACK, NULL);
    node_start(&nb, base, 2, CLUSTER, LOOPBACK, NULL);
    node_link(&na, &nb);
    WAIT_UNTIL(base, node_active(&na, 2), 5000);
    char url[128];
    strcpy(url, nb.url);
    node_stop(&nb);
    WAIT_UNTIL(base, !node_active(&na, 2), 2000);
    run_for(base, 3500); /* redials at 0.1, 0.3, 0.7, 1.5, 3.1 s: the next at 6.3 s */
    node_start(&nb, base, 2, CLUSTER, url, NULL);
    const char *ua = na.url;
    ck_assert_int_eq(peer_add(nb.t, 1, &ua, 1), 0);
    WAIT_UNTIL(base, node_active(&na, 2), 1000);
    ck_assert_msg(node_active(&na, 2), "our stream to the restarted peer waited out its backoff");
}
END_TEST

START_TEST(full_queue_drops_and_reports_unreachable)
{
    peer_config cfg = {.queue_bytes = 1 << 20};
    node_start(&na, base, 1, CLUSTER, LOOPBACK, &cfg);
    node_start(&nb, base, 2, CLUSTER, LOOPBACK, NULL);
    node_link(&na, &nb);
    WAIT_UNTIL(base, node_active(&na, 2), 5000);
    /* Without the loop running nothing drains: the bound holds. */
    int ok = 0, dropped = 0;
    for (uint64_t i = 1; i <= 100; i++) {
        int rc = send_app(&na, 2, i, 100 * 1024);
        if (rc == 0)
            ok++;
        else if (rc == PEER_ERR_DROPPED)
            dropped++;
    }
    ck_assert_int_ge(ok, 9);
    ck_assert_int_le(ok, 11);
    ck_assert_int_eq(ok + dropped, 100);
    peer_stats st;
    ck_assert_uint_eq(peer_get_stats(na.t, &st, 1), 1);
    ck_assert_uint_le(st.queued_bytes, 1 << 20);
    ck_assert_uint_eq(st.msgs_dropped, (uint64_t)dropped);
    ck_assert_uint_eq(na.unreachable[2], 0); /* deferred: never from inside peer_send */
    ck_assert(node_log_has(&na, "sending buffer is full"));
    WAIT_UNTIL(base, nb.n_msgs == (uint64_t)ok, 5000);
    ck_assert_uint_ge(na.unreachable[2], 1);
    ck_assert_uint_eq(nb.n_msgs, (uint64_t)ok);
    /* The queue drained: sending works again. */
    ck_assert_int_eq(send_app(&na, 2, 101, 10), 0);
}
END_TEST

START_TEST(unknown_peer_and_bad_arguments)
{
    node_start(&na, base, 1, CLUSTER, LOOPBACK, NULL);
    ck_assert_int_eq(send_app(&na, 9, 1, 0), PEER_ERR_UNKNOWN);
    const char *bad = "ftp://x:1", *good = "http://127.0.0.1:1";
    ck_assert_int_eq(peer_add(na.t, 2, &bad, 1), PEER_ERR_INVAL);
    ck_assert_int_eq(peer_add(na.t, 1, &good, 1), PEER_ERR_INVAL);
    ck_assert_int_eq(peer_add(na.t, 0, &good, 1), PEER_ERR_INVAL);
    ck_assert_int_eq(peer_remove(na.t, 5), PEER_ERR_UNKNOWN);
    ck_assert_int_eq(peer_add(na.t, 2, &good, 1), 0);
    raft_msg snap = {.type = RAFT_MSG_SNAP, .from = 1, .to = 2};
    ck_assert_int_eq(peer_send(na.t, &snap), PEER_ERR_INVAL);
    /* Nothing listens on port 1: the dial fails, messages are dropped. */
    run_for(base, 100);
    ck_assert_int_eq(send_app(&na, 2, 1, 0), PEER_ERR_DROPPED);
    run_for(base, 10);
    ck_assert_uint_ge(na.unreachable[2], 1);
    ck_assert(node_log_has(&na, "failed to dial 0000000000000002"));
    ck_assert_str_eq(peer_strerror(PEER_ERR_DROPPED),
                     "peer: message dropped (peer unreachable or queue full)");
    ck_assert_str_eq(peer_strerror(12345), "peer: unknown error");
    char err[256];
    struct node nx = {.snap_fd = -1};
    ck_assert_int_eq(
        node_try_start(&nx, base, 3, CLUSTER, "http://256.1.1.1:x", NULL, err, sizeof(err)),
        PEER_ERR_INVAL);
    ck_assert_ptr_nonnull(strstr(err, "invalid listen peer URL"));
    ck_assert_int_eq(node_try_start(&nx, base, 3, CLUSTER, na.url, NULL, err, sizeof(err)),
                     PEER_ERR_ADDR);
}
END_TEST

START_TEST(wrong_cluster_id_is_refused)
{
    node_start(&na, base, 1, CLUSTER, LOOPBACK, NULL);
    node_start(&nb, base, 2, CLUSTER + 1, LOOPBACK, NULL);
    node_link(&na, &nb);
    WAIT_UNTIL(base,
               node_log_has(&nb, "cluster ID mismatch") && node_log_has(&na, "cluster ID mismatch"),
               3000);
    ck_assert(node_log_has(&nb, "request sent was ignored (cluster ID mismatch"));
    ck_assert(node_log_has(&na, "cluster ID mismatch"));
    run_for(base, 200);
    ck_assert(!node_active(&na, 2));
    ck_assert(!node_active(&nb, 1));
    ck_assert_uint_eq(na.n_msgs + nb.n_msgs, 0);
}
END_TEST

START_TEST(unknown_sender_is_refused_until_added)
{
    node_start(&na, base, 1, CLUSTER, LOOPBACK, NULL);
    node_start(&nb, base, 2, CLUSTER, LOOPBACK, NULL);
    const char *ub = nb.url, *ua = na.url;
    ck_assert_int_eq(peer_add(na.t, 2, &ub, 1), 0);
    /* With messages riding the dial, A still reads B's reason. */
    for (uint64_t i = 1; i <= 50; i++)
        ck_assert_int_eq(send_app(&na, 2, i, 10000), 0);
    WAIT_UNTIL(base, node_log_has(&na, "peer refused the connection"), 3000);
    ck_assert_msg(node_log_has(&na, "peer refused the connection: sender is not a known member"),
                  "%s", na.log);
    ck_assert(node_log_has(&nb, "rejected the stream from peer 0000000000000001 since it is "
                                "not a known member"));
    ck_assert(!node_active(&na, 2));
    /* Once B knows A, A's next redial (backoff) gets through. */
    ck_assert_int_eq(peer_add(nb.t, 1, &ua, 1), 0);
    WAIT_UNTIL(base, node_active(&na, 2), 6000);
    ck_assert(node_active(&na, 2));
}
END_TEST

START_TEST(refusal_reply_names_the_reason)
{
    node_start(&nb, base, 2, CLUSTER, LOOPBACK, NULL);
    uint8_t buf[64];
    for (int k = 0; k < 3; k++) {
        int fd = raw_connect(nb.url);
        if (k == 0)
            raw_hello(fd, 1, CLUSTER, 1, 2); /* unknown sender */
        else if (k == 1)
            raw_hello(fd, 2, CLUSTER + 5, 1, 2); /* wrong cluster */
        else
            raw_hello(fd, 1, CLUSTER, 1, 3); /* not for us */
        size_t got = 0;
        bool eof = false;
        for (int i = 0; i < 400 && got < 32 && !eof; i++) {
            run_for(base, 5);
            ssize_t r = recv(fd, buf + got, sizeof(buf) - got, MSG_DONTWAIT);
            if (r > 0)
                got += (size_t)r;
            eof = r == 0;
        }
        ck_assert_msg(got == 32, "got %zu; log:\n%s", got, nb.log);
        ck_assert_int_eq(buf[7], k == 0 ? 2 : k == 1 ? 1 : 3);
        WAIT_UNTIL(base, raw_closed(fd), 2000);
        ck_assert(raw_closed(fd));
        close(fd);
    }
}
END_TEST

static void link_ab_and_wait(void)
{
    node_start(&na, base, 1, CLUSTER, LOOPBACK, NULL);
    node_start(&nb, base, 2, CLUSTER, LOOPBACK, NULL);
    node_link(&na, &nb);
    WAIT_UNTIL(base, node_active(&na, 2) && node_active(&nb, 1), 5000);
    ck_assert(node_active(&na, 2));
}

static void still_works(void)
{
    WAIT_UNTIL(base, node_active(&na, 2), 6000);
    uint64_t before = nb.n_msgs;
    ck_assert_int_eq(send_app(&na, 2, nb.last_index[1] + 1, 10), 0);
    WAIT_UNTIL(base, nb.n_msgs == before + 1, 2000);
    ck_assert_uint_eq(nb.n_msgs, before + 1);
}

START_TEST(garbage_is_closed_without_harm)
{
    link_ab_and_wait();
    int fd = raw_connect(nb.url);
    const char *http = "GET /members HTTP/1.1\r\nHost: x\r\n\r\nAAAAAAAAAAAAAAAAAAAAAA";
    raw_send(fd, http, strlen(http));
    WAIT_UNTIL(base, raw_closed(fd), 2000);
    ck_assert(raw_closed(fd));
    ck_assert(node_log_has(&nb, "bad magic"));
    close(fd);
    /* A silent client is dropped after the hello timeout: not needed here. */
    still_works();
}
END_TEST

START_TEST(oversize_frame_is_closed)
{
    link_ab_and_wait();
    int fd = raw_connect(nb.url);
    raw_hello(fd, 1, CLUSTER, 1, 2);
    uint8_t hdr[5] = {0xff, 0xff, 0xff, 0xf0, 1};
    raw_send(fd, hdr, sizeof(hdr));
    WAIT_UNTIL(base, raw_closed(fd), 2000);
    ck_assert(raw_closed(fd));
    ck_assert(node_log_has(&nb, "oversize frame"));
    close(fd);
    /* An unknown frame type too. */
    fd = raw_connect(nb.url);
    raw_hello(fd, 1, CLUSTER, 1, 2);
    raw_frame(fd, 9, "x", 1);
    WAIT_UNTIL(base, raw_closed(fd), 2000);
    ck_assert(raw_closed(fd));
    ck_assert(node_log_has(&nb, "unexpected frame"));
    close(fd);
    /* The raw streams replaced A's reader on B; A's own stream still sends. */
    still_works();
}
END_TEST

START_TEST(undecodable_message_is_closed)
{
    link_ab_and_wait();
    int fd = raw_connect(nb.url);
    raw_hello(fd, 1, CLUSTER, 1, 2);
    uint8_t junk[32];
    memset(junk, 0xff, sizeof(junk));
    raw_frame(fd, 1, junk, sizeof(junk));
    WAIT_UNTIL(base, raw_closed(fd), 2000);
    ck_assert(raw_closed(fd));
    ck_assert(node_log_has(&nb, "undecodable raft message"));
    ck_assert_uint_eq(nb.n_msgs, 0);
    close(fd);
    /* A valid message claiming another sender is dropped, not delivered. */
    fd = raw_connect(nb.url);
    raw_hello(fd, 1, CLUSTER, 1, 2);
    raft_msg m = mk_msg(RAFT_MSG_APP, 7, 2, 1, 0);
    uint8_t *enc;
    size_t len;
    ck_assert_int_eq(raft_msg_encode(&m, &enc, &len), 0);
    raw_frame(fd, 1, enc, (uint32_t)len);
    metcd_free(enc);
    WAIT_UNTIL(base, node_log_has(&nb, "dropped MsgApp from peer 0000000000000001"), 2000);
    ck_assert(node_log_has(&nb, "dropped MsgApp from peer 0000000000000001"));
    ck_assert_uint_eq(nb.n_msgs, 0);
    close(fd);
    still_works();
}
END_TEST

START_TEST(truncated_hello_then_close_is_harmless)
{
    link_ab_and_wait();
    for (int i = 0; i < 20; i++) {
        int fd = raw_connect(nb.url);
        static const uint8_t part[8] = {'M', 'P', 'E', 'R', 0, 1, 1, 0};
        raw_send(fd, part, 6 + (size_t)(i % 3));
        close(fd);
    }
    run_for(base, 100);
    still_works();
}
END_TEST

static void remove_sender(struct node *n, const raft_msg *m)
{
    if (m->index == 5)
        ck_assert_int_eq(peer_remove(n->t, m->from), 0);
}

START_TEST(remove_from_inside_on_message)
{
    link_ab_and_wait();
    nb.on_msg_hook = remove_sender;
    for (uint64_t i = 1; i <= 10; i++)
        ck_assert_int_eq(send_app(&na, 2, i, 10), 0);
    WAIT_UNTIL(base, !node_active(&na, 2), 3000);
    /* B stopped reading at the removal. */
    ck_assert_uint_eq(nb.n_msgs, 5);
    ck_assert_int_eq(send_app(&nb, 1, 1, 0), PEER_ERR_UNKNOWN);
    ck_assert(!node_active(&na, 2));
    run_for(base, 300);
    ck_assert(node_log_has(&nb, "not a known member"));
}
END_TEST

START_TEST(update_urls_redials)
{
    node_start(&na, base, 1, CLUSTER, LOOPBACK, NULL);
    node_start(&nb, base, 2, CLUSTER, LOOPBACK, NULL);
    const char *dead = "http://127.0.0.1:1", *ua = na.url, *ub = nb.url;
    ck_assert_int_eq(peer_add(na.t, 2, &dead, 1), 0);
    ck_assert_int_eq(peer_add(nb.t, 1, &ua, 1), 0);
    run_for(base, 200);
    ck_assert(!node_active(&na, 2));
    ck_assert_int_eq(peer_add(na.t, 2, &ub, 1), 0);
    WAIT_UNTIL(base, node_active(&na, 2), 3000);
    ck_assert(node_active(&na, 2));
    /* Both URLs listed: the working one is kept. */
    const char *both[2] = {dead, ub};
    ck_assert_int_eq(peer_add(na.t, 2, both, 2), 0);
    ck_assert(node_active(&na, 2));
}
END_TEST

START_TEST(unix_socket_urls)
{
    char path_a[64], path_b[64], ua[80], ub[80];
    snprintf(path_a, sizeof(path_a), "/tmp/metcd-peer-test-%d-a.sock", (int)getpid());
    snprintf(path_b, sizeof(path_b), "/tmp/metcd-peer-test-%d-b.sock", (int)getpid());
    snprintf(ua, sizeof(ua), "unix://%s", path_a);
    snprintf(ub, sizeof(ub), "unix://%s", path_b);
    node_start(&na, base, 1, CLUSTER, ua, NULL);
    node_start(&nb, base, 2, CLUSTER, ub, NULL);
    ck_assert_str_eq(na.url, ua);
    node_link(&na, &nb);
    WAIT_UNTIL(base, node_active(&na, 2) && node_active(&nb, 1), 3000);
    ck_assert_int_eq(send_app(&na, 2, 1, 100), 0);
    ck_assert_int_eq(send_app(&nb, 1, 1, 100), 0);
    WAIT_UNTIL(base, na.n_msgs == 1 && nb.n_msgs == 1, 2000);
    ck_assert_uint_eq(na.n_msgs + nb.n_msgs, 2);
    node_stop(&na);
    ck_assert_int_ne(access(path_a, F_OK), 0); /* the socket file goes with it */
}
END_TEST

START_TEST(channelz_shows_peer_links)
{
    struct channelz *cz;
    ck_assert_int_eq(channelz_new(&cz, 30), 0);
    peer_config cfg = {.channelz = cz};
    node_start(&na, base, 1, CLUSTER, LOOPBACK, &cfg);
    node_start(&nb, base, 2, CLUSTER, LOOPBACK, NULL);
    node_link(&na, &nb);
    WAIT_UNTIL(base, node_active(&na, 2) && node_active(&nb, 1), 3000);
    ck_assert_int_eq(send_app(&na, 2, 1, 10), 0);
    WAIT_UNTIL(base, nb.n_msgs == 1, 2000);
    struct channelz_node *chans[4];
    int end;
    ck_assert_uint_eq(channelz_list(cz, CHANNELZ_CHANNEL, NULL, 0, 4, chans, &end), 1);
    ck_assert_str_eq(channelz_name(chans[0]), "peer 0000000000000002");
    ck_assert_int_eq(channelz_state_of(chans[0]), CHANNELZ_STATE_READY);
    struct channelz_node *subs[2];
    ck_assert_uint_eq(channelz_children(chans[0], CHANNELZ_SUBCHANNEL, subs, 2), 1);
    struct channelz_node *socks[2];
    ck_assert_uint_eq(channelz_children(subs[0], CHANNELZ_SOCKET, socks, 2), 1);
    ck_assert_uint_eq(channelz_socket_of(socks[0])->messages_sent, 1);
    size_t n_ev;
    uint64_t logged;
    int64_t created;
    const struct channelz_event *ev = channelz_events(subs[0], &n_ev, &logged, &created);
    bool connected = false;
    for (size_t i = 0; i < n_ev; i++)
        connected |= strstr(ev[i].description, "connected to ") != NULL;
    ck_assert(connected);
    /* B's stream to A shows as a server socket under A's "peer" server. */
    struct channelz_node *srv[2];
    ck_assert_uint_eq(channelz_list(cz, CHANNELZ_SERVER, NULL, 0, 2, srv, &end), 1);
    ck_assert_uint_ge(channelz_children(srv[0], CHANNELZ_SOCKET, socks, 2), 1);
    node_stop(&nb);
    WAIT_UNTIL(base, !node_active(&na, 2), 2000);
    ck_assert_int_eq(channelz_state_of(subs[0]), CHANNELZ_STATE_TRANSIENT_FAILURE);
    node_stop(&na);
    channelz_free(cz);
}
END_TEST

START_TEST(teardown_with_traffic_in_flight)
{
    link_ab_and_wait();
    node_start(&nc, base, 3, CLUSTER, LOOPBACK, NULL);
    node_link(&na, &nc);
    for (uint64_t i = 1; i <= 200; i++) {
        send_app(&na, 2, i, 8192);
        send_app(&nb, 1, i, 8192);
        send_app(&na, 3, i, 8192);
    }
    run_for(base, 2);
    node_stop(&na); /* queued messages, half-read frames: all freed */
    run_for(base, 50);
    node_stop(&nb);
    node_stop(&nc);
}
END_TEST

static uint64_t c_seen_at; /* A's messages B had seen when C's arrived */

static void note_c(struct node *n, const raft_msg *m)
{
    if (m->from == 3 && !c_seen_at)
        c_seen_at = n->last_index[1] ? n->last_index[1] : 1;
}

/* B runs on its own loop, so A's flood piles up in B's socket before B
 * reads: B reads it in bounded steps (at most 256 frames per event) and
 * serves C's stream in between, instead of draining A's megabytes first. */
START_TEST(a_flooding_peer_does_not_starve_another)
{
    struct event_base *base2 = event_base_new();
    peer_config big = {.queue_bytes = 64 << 20};
    node_start(&na, base2, 1, CLUSTER, LOOPBACK, &big);
    node_start(&nb, base, 2, CLUSTER, LOOPBACK, NULL);
    node_start(&nc, base2, 3, CLUSTER, LOOPBACK, NULL);
    node_link(&na, &nb);
    node_link(&nc, &nb);
    for (int i = 0; i < 1000 && !(node_active(&na, 2) && node_active(&nc, 2)); i++) {
        run_for(base, 1);
        run_for(base2, 1);
    }
    ck_assert(node_active(&na, 2) && node_active(&nc, 2));
    c_seen_at = 0;
    nb.on_msg_hook = note_c;
    for (uint64_t i = 1; i <= 20000; i++)
        ck_assert_int_eq(send_app(&na, 2, i, 200), 0);
    run_for(base2, 100); /* A fills the socket; B does not read */
    ck_assert_int_eq(send_app(&nc, 2, 1, 10), 0);
    run_for(base2, 20);
    for (int i = 0; i < 2000 && nb.last_index[3] != 1; i++)
        run_for(base, 1);
    ck_assert_uint_eq(nb.last_index[3], 1);
    ck_assert_uint_gt(c_seen_at, 0);
    ck_assert_uint_lt(c_seen_at, 2000);
    if (getenv("PEER_TEST_VERBOSE"))
        fprintf(stderr, "C served after %llu of A's messages\n", (unsigned long long)c_seen_at);
    for (int i = 0; i < 5000 && nb.last_index[1] != 20000; i++) {
        run_for(base, 1);
        run_for(base2, 1);
    }
    ck_assert_uint_eq(nb.last_index[1], 20000);
    ck_assert(!nb.out_of_order);
    node_stop(&na);
    node_stop(&nc);
    event_base_free(base2);
}
END_TEST

static void answer(struct node *n, const raft_msg *m)
{
    if (m->type != RAFT_MSG_APP)
        return;
    raft_msg r = {.type = RAFT_MSG_APP_RESP, .from = n->id, .to = m->from, .index = m->index};
    ck_assert_int_eq(peer_send(n->t, &r), 0);
}

START_TEST(replies_sent_from_inside_on_message)
{
    link_ab_and_wait();
    nb.on_msg_hook = answer;
    for (uint64_t i = 1; i <= 500; i++)
        ck_assert_int_eq(send_app(&na, 2, i, 100), 0);
    WAIT_UNTIL(base, na.n_by_type[RAFT_MSG_APP_RESP] == 500, 5000);
    ck_assert_uint_eq(na.n_by_type[RAFT_MSG_APP_RESP], 500);
}
END_TEST

START_TEST(random_frames_never_crash)
{
    link_ab_and_wait();
    uint32_t seed = 12345;
    for (int round = 0; round < 40; round++) {
        int fd = raw_connect(nb.url);
        raw_hello(fd, (uint8_t)(1 + round % 2), CLUSTER, 1, 2);
        uint8_t buf[256];
        for (int f = 0; f < 20; f++) {
            for (size_t i = 0; i < sizeof(buf); i++) {
                seed = seed * 1103515245u + 12345u;
                buf[i] = (uint8_t)(seed >> 16);
            }
            uint32_t len = buf[0] % 64;
            raw_frame(fd, (uint8_t)(buf[1] % 6), buf + 2, len);
        }
        run_for(base, 2);
        close(fd);
    }
    run_for(base, 50);
    still_works();
}
END_TEST

START_TEST(silent_connections_time_out_both_ways)
{
    peer_config fast = {.dial_timeout_ms = 100};
    node_start(&na, base, 1, CLUSTER, LOOPBACK, &fast);
    /* A client that connects and says nothing is closed after 2 x 100 ms. */
    int fd = raw_connect(na.url);
    run_for(base, 100);
    ck_assert(!raw_closed(fd));
    WAIT_UNTIL(base, raw_closed(fd), 2000);
    ck_assert(raw_closed(fd));
    ck_assert(node_log_has(&na, "before its hello: i/o timeout"));
    close(fd);
    /* A listener that never answers our hello: the dial times out, and the
     * messages that rode it are reported lost. */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, len), 0);
    ck_assert_int_eq(listen(l, 8), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", ntohs(sa.sin_port));
    const char *u = url;
    ck_assert_int_eq(peer_add(na.t, 2, &u, 1), 0);
    ck_assert_int_eq(send_app(&na, 2, 1, 10), 0); /* rides the first dial */
    WAIT_UNTIL(base, node_log_has(&na, "failed to dial 0000000000000002"), 2000);
    ck_assert(node_log_has(&na, "failed to dial 0000000000000002 on stream Message (" /* url */));
    ck_assert(node_log_has(&na, ": i/o timeout)"));
    run_for(base, 10);
    ck_assert_uint_ge(na.unreachable[2], 1);
    peer_stats st;
    peer_get_stats(na.t, &st, 1);
    ck_assert_uint_eq(st.msgs_dropped, 1);
    ck_assert_int_eq(send_app(&na, 2, 2, 10), PEER_ERR_DROPPED); /* unreachable now */
    close(l);
}
END_TEST

/* Every allocation of a transport's life fails once in turn (nghttp2's
 * failmalloc idea): each path unwinds, nothing leaks (ASan build), the
 * survivor still works. */
START_TEST(allocation_failures_unwind)
{
    node_start(&nb, base, 2, CLUSTER, LOOPBACK, NULL);
    long total = 0;
    for (long i = -1; i < total + 5; i++) {
        struct node *n = &na;
        memset(n, 0, sizeof(*n));
        n->snap_fd = -1;
        raft_msg m = mk_msg(RAFT_MSG_APP, 1, 2, 1, 100);
        raft_msg big = mk_msg(RAFT_MSG_APP, 1, 2, 2, 10000);
        static raft_snapshot snap = {.meta = {.index = 3}};
        raft_msg sm = {.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .snapshot = &snap};
        int fd = make_file(1000, 1);
        const char *ub = nb.url;
        struct channelz *cz = NULL;
        ck_assert_int_eq(channelz_new(&cz, 30), 0);
        peer_config cfg = {.channelz = cz};
        long start = metcd_mem_count();
        metcd_mem_fail_after(i);
        char err[256];
        int rc = node_try_start(n, base, 1, CLUSTER, LOOPBACK, &cfg, err, sizeof(err));
        if (rc == 0) {
            peer_add(n->t, 2, &ub, 1);
            peer_add(nb.t, 1, (const char *const *)&(const char *){n->url}, 1);
            peer_send(n->t, &m);
            peer_send(n->t, &big);
            if (peer_send_snapshot(n->t, &sm, fd) != 0)
                ck_assert_int_lt(fcntl(fd, F_GETFD), 0);
            fd = -1;
            run_for(base, 30);
            peer_send(n->t, &m);
            run_for(base, 5);
        } else {
            ck_assert_int_eq(rc, PEER_ERR_NOMEM);
            ck_assert(n->t == NULL);
        }
        if (i == -1)
            total = metcd_mem_count() - start;
        metcd_mem_fail_after(-1);
        node_stop(n);
        channelz_free(cz);
        if (fd >= 0)
            close(fd);
        raft_msg_free(&m);
        raft_msg_free(&big);
        peer_remove(nb.t, 1);
    }
    ck_assert_int_gt(total, 10);
    if (getenv("PEER_TEST_VERBOSE"))
        fprintf(stderr, "allocations in one life: %ld\n", total);
    /* B survived all of it. */
    node_start(&na, base, 1, CLUSTER, LOOPBACK, NULL);
    node_link(&na, &nb);
    WAIT_UNTIL(base, node_active(&na, 2), 3000);
    still_works();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("peer/transport");
    TCase *tc = tcase_create("transport");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, two_members_exchange_messages_both_ways_in_order);
    tcase_add_test(tc, three_members_all_pairs);
    tcase_add_test(tc, reconnects_after_peer_restart);
    tcase_add_test(tc, a_peer_that_dials_us_is_redialed_at_once);
    tcase_add_test(tc, full_queue_drops_and_reports_unreachable);
    tcase_add_test(tc, unknown_peer_and_bad_arguments);
    tcase_add_test(tc, wrong_cluster_id_is_refused);
    tcase_add_test(tc, unknown_sender_is_refused_until_added);
    tcase_add_test(tc, refusal_reply_names_the_reason);
    tcase_add_test(tc, garbage_is_closed_without_harm);
    tcase_add_test(tc, oversize_frame_is_closed);
    tcase_add_test(tc, undecodable_message_is_closed);
    tcase_add_test(tc, truncated_hello_then_close_is_harmless);
    tcase_add_test(tc, remove_from_inside_on_message);
    tcase_add_test(tc, update_urls_redials);
    tcase_add_test(tc, unix_socket_urls);
    tcase_add_test(tc, channelz_shows_peer_links);
    tcase_add_test(tc, teardown_with_traffic_in_flight);
    tcase_add_test(tc, allocation_failures_unwind);
    tcase_add_test(tc, silent_connections_time_out_both_ways);
    tcase_add_test(tc, a_flooding_peer_does_not_starve_another);
    tcase_add_test(tc, replies_sent_from_inside_on_message);
    tcase_add_test(tc, random_frames_never_crash);
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
