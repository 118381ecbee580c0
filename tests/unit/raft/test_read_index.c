/* tests/unit/raft/test_read_index.c - ReadIndex (thesis 6.4). */
#include "tests/unit/raft/check_main.h"
#include "tests/unit/raft/harness.h"

START_TEST(test_leader_read_confirmed_by_heartbeat_quorum)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    raft_propose(net->nodes[1].r, "abcdefgh", 8);
    h_net_settle(net);
    size_t hb = net->delivered[RAFT_MSG_HEARTBEAT];
    ck_assert_int_eq(raft_read_index(net->nodes[1].r, 42), 0);
    h_net_settle(net);
    ck_assert_uint_eq(net->nodes[1].n_reads, 1);
    ck_assert_uint_eq(net->nodes[1].reads[0].ctx, 42);
    ck_assert_uint_eq(net->nodes[1].reads[0].index, 2);
    ck_assert_uint_eq(net->delivered[RAFT_MSG_HEARTBEAT], hb + 2);
    h_net_free(net);
}
END_TEST

START_TEST(test_reads_are_batched_behind_one_round)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    h_net_settle(net);
    size_t hb = net->delivered[RAFT_MSG_HEARTBEAT];
    for (uint64_t c = 1; c <= 50; c++)
        ck_assert_int_eq(raft_read_index(net->nodes[1].r, c), 0);
    h_net_settle(net);
    ck_assert_uint_eq(net->nodes[1].n_reads, 50);
    /* one round for the first request, one for the 49 queued behind it */
    ck_assert_uint_le(net->delivered[RAFT_MSG_HEARTBEAT], hb + 4);
    h_net_free(net);
}
END_TEST

START_TEST(test_isolated_leader_serves_no_reads)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    h_net_isolate(net, 1);
    ck_assert_int_eq(raft_read_index(net->nodes[1].r, 7), 0);
    for (int i = 0; i < 5; i++)
        h_net_tick(net, 1, 1);
    ck_assert_uint_eq(net->nodes[1].n_reads, 0);
    /* once the quorum answers a heartbeat again, the read completes */
    h_net_heal(net);
    h_net_tick(net, 1, 1);
    ck_assert_uint_eq(net->nodes[1].n_reads, 1);
    h_net_free(net);
}
END_TEST

START_TEST(test_follower_read_is_forwarded)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    raft_propose(net->nodes[1].r, "abcdefgh", 8);
    h_net_settle(net);
    ck_assert_int_eq(raft_read_index(net->nodes[3].r, 9), 0);
    h_net_settle(net);
    ck_assert_uint_eq(net->nodes[3].n_reads, 1);
    ck_assert_uint_eq(net->nodes[3].reads[0].ctx, 9);
    ck_assert_uint_eq(net->nodes[3].reads[0].index, 2);
    ck_assert_uint_gt(net->delivered[RAFT_MSG_READ_INDEX_RESP], 0);
    h_net_free(net);
}
END_TEST

START_TEST(test_read_without_leader_fails)
{
    raft_mem_storage *ms;
    raft *r = h_raft(1, 3, &ms);
    ck_assert_int_eq(raft_read_index(r, 1), RAFT_ENOLEADER);
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_read_waits_for_commit_in_term)
{
    /* A new leader does not know the commit index until its first entry
     * commits; the read waits for it. */
    h_net *net = h_net_new(3, false, false);
    net->drop_type[RAFT_MSG_APP_RESP] = true;
    h_net_elect(net, 1);
    ck_assert_int_eq(raft_read_index(net->nodes[1].r, 5), 0);
    h_net_settle(net);
    ck_assert_uint_eq(net->nodes[1].n_reads, 0);
    net->drop_type[RAFT_MSG_APP_RESP] = false;
    h_net_tick(net, 1, 1); /* heartbeat -> append retry -> commit */
    h_net_tick(net, 1, 1);
    ck_assert_uint_eq(net->nodes[1].n_reads, 1);
    ck_assert_uint_eq(net->nodes[1].reads[0].index, 1);
    h_net_free(net);
}
END_TEST

START_TEST(test_single_voter_reads_at_once)
{
    h_net *net = h_net_new(1, false, false);
    h_net_elect(net, 1);
    ck_assert_int_eq(raft_read_index(net->nodes[1].r, 3), 0);
    h_net_settle(net);
    ck_assert_uint_eq(net->nodes[1].n_reads, 1);
    ck_assert_uint_eq(net->nodes[1].reads[0].index, 1);
    h_net_free(net);
}
END_TEST

START_TEST(test_read_queue_is_bounded)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    h_net_isolate(net, 1);
    int rc = 0;
    uint64_t c;
    for (c = 0; c < 10000 && rc == 0; c++)
        rc = raft_read_index(net->nodes[1].r, c);
    ck_assert_int_eq(rc, RAFT_ETOOMANY);
    ck_assert_uint_eq(c, 4097); /* default bound: 4096 */
    h_net_free(net);
}
END_TEST

RAFT_TEST_MAIN("raft/read_index", test_leader_read_confirmed_by_heartbeat_quorum,
               test_reads_are_batched_behind_one_round, test_isolated_leader_serves_no_reads,
               test_follower_read_is_forwarded, test_read_without_leader_fails,
               test_read_waits_for_commit_in_term, test_single_voter_reads_at_once,
               test_read_queue_is_bounded)
