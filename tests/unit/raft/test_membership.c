/* tests/unit/raft/test_membership.c - conf changes and leader transfer. */
#include "tests/unit/raft/check_main.h"
#include "tests/unit/raft/harness.h"

#include <string.h>

/* A net of n started nodes out of cap ids; the rest start empty with the
 * same bootstrap membership (1..n), as a joining member would. */
static h_net *net_with_spare(size_t n, size_t cap)
{
    h_net *net = h_net_new(cap, false, false);
    static uint64_t voters[] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (uint64_t id = 1; id <= cap; id++) {
        h_node *nd = &net->nodes[id];
        raft_free(nd->r);
        raft_config c = h_config(id, n, nd->ms);
        c.voters = voters;
        ck_assert_int_eq(raft_new(&c, &nd->r), 0);
    }
    return net;
}

static int propose_cc(raft *r, raft_conf_change_type t, uint64_t id)
{
    raft_conf_change cc = {.type = t, .node_id = id};
    return raft_propose_conf_change(r, &cc);
}

START_TEST(test_add_learner_then_promote)
{
    h_net *net = net_with_spare(3, 4);
    h_net_elect(net, 1);
    raft *l = net->nodes[1].r;
    ck_assert_int_eq(propose_cc(l, RAFT_CC_ADD_LEARNER, 4), 0);
    h_net_settle(net);
    h_net_tick(net, 1, 3);
    raft_status st = h_status(l);
    ck_assert_uint_eq(st.conf.n_voters, 3);
    ck_assert_uint_eq(st.conf.n_learners, 1);
    /* the learner replicates */
    ck_assert_uint_eq(h_status(net->nodes[4].r).commit, st.commit);
    ck_assert_int_eq(propose_cc(l, RAFT_CC_ADD_NODE, 4), 0);
    h_net_settle(net);
    h_net_tick(net, 1, 3);
    st = h_status(l);
    ck_assert_uint_eq(st.conf.n_voters, 4);
    ck_assert_uint_eq(st.conf.n_learners, 0);
    ck_assert_uint_eq(h_status(net->nodes[4].r).conf.n_voters, 4);
    h_net_free(net);
}
END_TEST

START_TEST(test_one_conf_change_at_a_time)
{
    h_net *net = net_with_spare(3, 5);
    h_net_elect(net, 1);
    h_net_tick(net, 1, 1);
    raft *l = net->nodes[1].r;
    h_net_isolate(net, 2);
    h_net_isolate(net, 3); /* nothing commits */
    ck_assert_int_eq(propose_cc(l, RAFT_CC_ADD_NODE, 4), 0);
    ck_assert_int_eq(propose_cc(l, RAFT_CC_ADD_NODE, 5), RAFT_EDROPPED);
    h_net_heal(net);
    h_net_tick(net, 1, 3);
    ck_assert_uint_eq(h_status(l).conf.n_voters, 4);
    ck_assert_int_eq(propose_cc(l, RAFT_CC_ADD_NODE, 5), 0);
    h_net_free(net);
}
END_TEST

START_TEST(test_remove_follower_shrinks_quorum)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    raft *l = net->nodes[1].r;
    ck_assert_int_eq(propose_cc(l, RAFT_CC_REMOVE_NODE, 3), 0);
    h_net_settle(net);
    h_net_tick(net, 1, 2);
    ck_assert_uint_eq(h_status(l).conf.n_voters, 2);
    net->nodes[3].down = true;
    /* 2 of 2 still commit */
    raft_propose(l, "abcdefgh", 8);
    h_net_settle(net);
    ck_assert_uint_eq(net->nodes[2].n_applied_data, 1);
    h_net_free(net);
}
END_TEST

START_TEST(test_removed_leader_steps_down_and_cluster_recovers)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    ck_assert_int_eq(propose_cc(net->nodes[1].r, RAFT_CC_REMOVE_NODE, 1), 0);
    h_net_settle(net);
    h_net_tick(net, 1, 1);
    ck_assert_int_eq(h_status(net->nodes[1].r).state, RAFT_FOLLOWER);
    net->nodes[1].down = true;
    for (int i = 0; i < 30 && !h_net_leader(net); i++) {
        h_net_tick(net, 2, 1);
        h_net_tick(net, 3, 1);
    }
    uint64_t nl = h_net_leader(net);
    ck_assert(nl == 2 || nl == 3);
    ck_assert_uint_eq(h_status(net->nodes[nl].r).conf.n_voters, 2);
    h_net_free(net);
}
END_TEST

START_TEST(test_transfer_to_up_to_date_follower)
{
    h_net *net = h_net_new(3, true, true);
    h_net_elect(net, 1);
    h_net_tick(net, 1, 1);
    ck_assert_int_eq(raft_transfer_leader(net->nodes[1].r, 2), 0);
    h_net_settle(net);
    ck_assert_uint_eq(h_net_leader(net), 2);
    ck_assert_uint_eq(h_status(net->nodes[2].r).term, 2);
    ck_assert_uint_gt(net->delivered[RAFT_MSG_TIMEOUT_NOW], 0);
    h_net_free(net);
}
END_TEST

START_TEST(test_transfer_waits_for_lagging_follower)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    h_net_isolate(net, 3);
    raft_propose(net->nodes[1].r, "abcdefgh", 8);
    h_net_settle(net);
    ck_assert_int_eq(raft_transfer_leader(net->nodes[1].r, 3), 0);
    h_net_settle(net);
    ck_assert_uint_eq(h_net_leader(net), 1);
    /* proposals are refused while the transfer is under way */
    ck_assert_int_eq(raft_propose(net->nodes[1].r, "x", 1), RAFT_EDROPPED);
    h_net_heal(net);
    h_net_tick(net, 1, 1); /* heartbeat -> catch up -> TimeoutNow */
    ck_assert_uint_eq(h_net_leader(net), 3);
    h_net_free(net);
}
END_TEST

START_TEST(test_transfer_times_out)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    h_net_isolate(net, 3);
    ck_assert_int_eq(raft_transfer_leader(net->nodes[1].r, 3), 0);
    ck_assert_uint_eq(h_status(net->nodes[1].r).lead_transferee, 3);
    h_net_tick(net, 1, 10);
    ck_assert_uint_eq(h_status(net->nodes[1].r).lead_transferee, 0);
    ck_assert_int_eq(raft_propose(net->nodes[1].r, "x", 1), 0);
    h_net_free(net);
}
END_TEST

START_TEST(test_transfer_to_learner_or_unknown_is_refused)
{
    raft_mem_storage *ms = raft_mem_storage_new();
    uint64_t v[] = {1}, l[] = {2};
    raft_config c = h_config(1, 1, ms);
    c.voters = v;
    c.learners = l;
    c.n_learners = 1;
    raft *r;
    ck_assert_int_eq(raft_new(&c, &r), 0);
    raft_campaign(r);
    ck_assert_int_eq(raft_transfer_leader(r, 2), RAFT_EINVAL);
    ck_assert_int_eq(raft_transfer_leader(r, 9), RAFT_EINVAL);
    ck_assert_int_eq(raft_transfer_leader(r, 1), 0);
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_snapshot_carries_configuration)
{
    h_net *net = net_with_spare(3, 4);
    h_net_elect(net, 1);
    h_node *l = &net->nodes[1];
    ck_assert_int_eq(propose_cc(l->r, RAFT_CC_ADD_LEARNER, 4), 0);
    h_net_settle(net);
    h_net_tick(net, 1, 1);
    net->nodes[4].down = true;
    for (uint64_t i = 0; i < 10; i++)
        raft_propose(l->r, &i, 8);
    h_net_settle(net);
    raft_status st = h_status(l->r);
    ck_assert_int_eq(raft_mem_storage_create_snapshot(l->ms, st.applied, &st.conf, NULL), 0);
    ck_assert_int_eq(raft_mem_storage_compact(l->ms, st.applied), 0);
    /* a fresh node 4 only learns the configuration from the snapshot */
    h_node *n4 = &net->nodes[4];
    raft_free(n4->r);
    raft_mem_storage_free(n4->ms);
    n4->ms = raft_mem_storage_new();
    raft_config c = h_config(4, 0, n4->ms);
    ck_assert_int_eq(raft_new(&c, &n4->r), 0);
    n4->applied = 0;
    n4->down = false;
    h_net_tick(net, 1, 2);
    raft_report_snapshot(l->r, 4, false);
    h_net_tick(net, 1, 2);
    raft_status s4 = h_status(n4->r);
    ck_assert_uint_eq(s4.conf.n_voters, 3);
    ck_assert_uint_eq(s4.conf.n_learners, 1);
    ck_assert_uint_eq(s4.commit, st.commit);
    h_net_free(net);
}
END_TEST

START_TEST(test_unknown_peer_messages_are_ignored_by_leader)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    raft_msg m = {.type = RAFT_MSG_APP_RESP, .from = 7, .to = 1, .term = 1, .index = 100};
    ck_assert_int_eq(raft_step(net->nodes[1].r, &m), 0);
    ck_assert_uint_eq(h_status(net->nodes[1].r).commit, 1);
    h_net_free(net);
}
END_TEST

RAFT_TEST_MAIN("raft/membership", test_add_learner_then_promote, test_one_conf_change_at_a_time,
               test_remove_follower_shrinks_quorum,
               test_removed_leader_steps_down_and_cluster_recovers,
               test_transfer_to_up_to_date_follower, test_transfer_waits_for_lagging_follower,
               test_transfer_times_out, test_transfer_to_learner_or_unknown_is_refused,
               test_snapshot_carries_configuration,
               test_unknown_peer_messages_are_ignored_by_leader)
