/* tests/unit/raft/test_replication.c - rules of raft/replication.c. */
#include "tests/unit/raft/check_main.h"
#include "tests/unit/raft/harness.h"

#include "common/mem.h"

#include <string.h>

/* Builds a raft over a storage holding entries with the given terms
 * (indexes 1..n) and a hard state term. */
static raft *raft_with_log(uint64_t id, size_t voters, const uint64_t *terms, size_t n,
                           uint64_t hs_term, raft_mem_storage **msp)
{
    raft_mem_storage *ms = raft_mem_storage_new();
    for (size_t i = 0; i < n; i++) {
        raft_entry e = {.term = terms[i], .index = i + 1};
        ck_assert_int_eq(raft_mem_storage_append(ms, &e, 1), 0);
    }
    raft_hard_state hs = {.term = hs_term};
    raft_mem_storage_set_hard_state(ms, &hs);
    raft_config c = h_config(id, voters, ms);
    raft *r;
    ck_assert_int_eq(raft_new(&c, &r), 0);
    *msp = ms;
    return r;
}

static void net_replace(h_net *net, uint64_t id, const uint64_t *terms, size_t n, uint64_t hs_term)
{
    h_node *nd = &net->nodes[id];
    raft_free(nd->r);
    raft_mem_storage_free(nd->ms);
    nd->r = raft_with_log(id, net->n, terms, n, hs_term, &nd->ms);
}

static void assert_same_log(raft_mem_storage *a, raft_mem_storage *b)
{
    uint64_t la = raft_mem_storage_last_index(a);
    ck_assert_uint_eq(la, raft_mem_storage_last_index(b));
    raft_storage sa = raft_mem_storage_view(a), sb = raft_mem_storage_view(b);
    uint64_t from = raft_mem_storage_first_index(a);
    if (raft_mem_storage_first_index(b) > from)
        from = raft_mem_storage_first_index(b);
    for (uint64_t i = from; i <= la; i++) {
        uint64_t ta, tb;
        ck_assert_int_eq(sa.ops->term(sa.data, i, &ta), 0);
        ck_assert_int_eq(sb.ops->term(sb.data, i, &tb), 0);
        ck_assert_uint_eq(ta, tb);
    }
}

START_TEST(test_figure7_leader_brings_every_follower_in_line)
{
    /* Raft paper figure 7: the leader of term 8 and followers (a)-(f). */
    static const uint64_t lead[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
    static const uint64_t a[] = {1, 1, 1, 4, 4, 5, 5, 6, 6};
    static const uint64_t b[] = {1, 1, 1, 4};
    static const uint64_t c[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6};
    static const uint64_t d[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7};
    static const uint64_t e[] = {1, 1, 1, 4, 4, 4, 4};
    static const uint64_t f[] = {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3};
    const uint64_t *fl[] = {a, b, c, d, e, f};
    size_t fn[] = {9, 4, 11, 12, 7, 11};
    for (size_t k = 0; k < 6; k++) {
        h_net *net = h_net_new(3, false, false);
        net_replace(net, 1, lead, 10, 7);
        net_replace(net, 2, fl[k], fn[k], 7);
        net_replace(net, 3, lead, 10, 7);
        h_net_elect(net, 1);
        ck_assert_uint_eq(h_net_leader(net), 1);
        ck_assert_uint_eq(h_status(net->nodes[1].r).term, 8);
        raft_propose(net->nodes[1].r, "x", 1);
        h_net_settle(net);
        h_net_tick(net, 1, 1);
        assert_same_log(net->nodes[1].ms, net->nodes[2].ms);
        ck_assert_uint_eq(h_status(net->nodes[2].r).commit, 12);
        h_net_free(net);
    }
}
END_TEST

static raft_msg app_resp(uint64_t from, uint64_t term, uint64_t index)
{
    raft_msg m = {.type = RAFT_MSG_APP_RESP, .from = from, .to = 1, .term = term, .index = index};
    return m;
}

/* Makes r (id 1) leader of term hs_term + 1 with a vote from 2, persists
 * its Ready and returns the new leader's last index. */
static uint64_t become_leader(raft *r, raft_mem_storage *ms)
{
    raft_campaign(r);
    uint64_t term = h_status(r).term;
    raft_msg v = {.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = term};
    raft_step(r, &v);
    ck_assert_int_eq(h_status(r).state, RAFT_LEADER);
    h_node nd = {.id = 1, .r = r, .ms = ms};
    h_drive(NULL, &nd);
    return h_status(r).last_index;
}

START_TEST(test_figure8_only_current_term_entries_commit_by_counting)
{
    /* Paper 5.4.2 / figure 8: an entry of an older term replicated on a
     * majority is not committed until an entry of the leader's term is. */
    static const uint64_t terms[] = {1, 2};
    raft_mem_storage *ms;
    raft *r = raft_with_log(1, 3, terms, 2, 2, &ms);
    uint64_t last = become_leader(r, ms); /* term 3, empty entry at 3 */
    ck_assert_uint_eq(last, 3);
    ck_assert_uint_eq(h_status(r).term, 3);
    raft_msg m = app_resp(2, 3, 1);
    raft_step(r, &m);
    ck_assert_uint_eq(h_status(r).commit, 0);
    m = app_resp(2, 3, 2);
    raft_step(r, &m);
    ck_assert_uint_eq(h_status(r).commit, 0); /* term 2 entry on 2 of 3 */
    m = app_resp(2, 3, 3);
    raft_step(r, &m);
    ck_assert_uint_eq(h_status(r).commit, 3);
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_leader_counts_itself_only_when_persisted)
{
    /* Thesis 10.2.1: the leader writes its log in parallel. */
    raft_mem_storage *ms = raft_mem_storage_new();
    raft_config c = h_config(1, 3, ms);
    raft *r;
    ck_assert_int_eq(raft_new(&c, &r), 0);
    become_leader(r, ms); /* entry 1 persisted */
    raft_msg m = app_resp(2, 1, 1);
    raft_step(r, &m);
    ck_assert_uint_eq(h_status(r).commit, 1);
    h_node nd = {.id = 1, .r = r, .ms = ms};
    h_drive(NULL, &nd);
    raft_propose(r, "abc", 3);
    struct raft_ready rd;
    raft_ready(r, &rd);
    /* the append goes out before the leader's own write */
    ck_assert_uint_eq(rd.n_entries, 1);
    ck_assert_uint_ge(rd.n_msgs, 1);
    ck_assert_int_eq(rd.msgs[0].type, RAFT_MSG_APP);
    ck_assert_uint_eq(rd.msgs[0].n_entries, 1);
    raft_entry e = rd.entries[0];
    raft_buf_ref(e.data);
    raft_advance(r, &rd);
    /* one follower acked, leader not durable: 1 of 3 */
    m = app_resp(2, 1, 2);
    raft_step(r, &m);
    ck_assert_uint_eq(h_status(r).commit, 1);
    ck_assert_uint_eq(h_status(r).persisted, 1);
    raft_mem_storage_append(ms, &e, 1);
    raft_persisted(r, e.index, e.term);
    raft_buf_unref(e.data);
    ck_assert_uint_eq(h_status(r).commit, 2);
    ck_assert_uint_eq(h_status(r).persisted, 2);
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_quorum_of_followers_commits_without_leader_fsync)
{
    raft_mem_storage *ms = raft_mem_storage_new();
    raft_config c = h_config(1, 3, ms);
    raft *r;
    ck_assert_int_eq(raft_new(&c, &r), 0);
    become_leader(r, ms);
    raft_propose(r, "abc", 3);
    raft_msg m = app_resp(2, 1, 2);
    raft_step(r, &m);
    m = app_resp(3, 1, 2);
    raft_step(r, &m);
    ck_assert_uint_eq(h_status(r).commit, 2);
    /* but it is applied only once it is durable locally */
    struct raft_ready rd;
    raft_ready(r, &rd);
    ck_assert_uint_eq(rd.n_committed, 1);
    ck_assert_uint_eq(rd.committed[0].index, 1);
    ck_assert_uint_eq(rd.n_entries, 1);
    raft_mem_storage_append(ms, rd.entries, 1);
    raft_persisted(r, 2, 1);
    raft_advance(r, &rd);
    raft_ready(r, &rd);
    ck_assert_uint_eq(rd.n_committed, 1);
    ck_assert_uint_eq(rd.committed[0].index, 2);
    raft_advance(r, &rd);
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_follower_acks_append_only_after_persist)
{
    raft_mem_storage *ms;
    raft *r = h_raft(2, 3, &ms);
    raft_buf *b = raft_buf_new("v", 1);
    raft_entry e = {.term = 1, .index = 1, .data = b};
    raft_msg m = {.type = RAFT_MSG_APP,
                  .from = 1,
                  .to = 2,
                  .term = 1,
                  .index = 0,
                  .log_term = 0,
                  .commit = 1,
                  .entries = &e,
                  .n_entries = 1};
    raft_step(r, &m);
    struct raft_ready rd;
    raft_ready(r, &rd);
    ck_assert_uint_eq(rd.n_entries, 1);
    ck_assert_uint_eq(rd.n_msgs, 0);
    ck_assert_uint_eq(rd.n_msgs_after_persist, 1);
    ck_assert_int_eq(rd.msgs_after_persist[0].type, RAFT_MSG_APP_RESP);
    ck_assert_uint_eq(rd.msgs_after_persist[0].index, 1);
    /* committed but not durable locally: not handed out for apply */
    ck_assert_uint_eq(rd.n_committed, 0);
    ck_assert_uint_eq(h_status(r).commit, 1);
    raft_mem_storage_append(ms, rd.entries, 1);
    raft_advance(r, &rd);
    raft_persisted(r, 1, 1);
    raft_ready(r, &rd);
    ck_assert_uint_eq(rd.n_committed, 1);
    ck_assert_uint_eq(rd.n_entries, 0); /* not handed out twice */
    raft_advance(r, &rd);
    raft_buf_unref(b);
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_reject_carries_hint_for_fast_backtracking)
{
    /* follower has [1,1,1,2,2,2,3,3,3,3,3] (figure 7 f); leader sends
     * prev (11, term 6): the hint skips the whole term-3 run. */
    static const uint64_t f[] = {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3};
    raft_mem_storage *ms;
    raft *r = raft_with_log(2, 3, f, 11, 7, &ms);
    raft_msg m = {.type = RAFT_MSG_APP, .from = 1, .to = 2, .term = 8, .index = 11, .log_term = 6};
    raft_step(r, &m);
    struct raft_ready rd;
    raft_ready(r, &rd);
    ck_assert_uint_eq(rd.n_msgs_after_persist, 1);
    raft_msg *resp = &rd.msgs_after_persist[0];
    ck_assert(resp->reject);
    ck_assert_uint_eq(resp->index, 11);
    ck_assert_uint_eq(resp->reject_hint, 11); /* term 3 <= 6 */
    ck_assert_uint_eq(resp->log_term, 3);
    raft_advance(r, &rd);
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_figure7_backtracking_takes_few_round_trips)
{
    static const uint64_t lead[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
    static const uint64_t f[] = {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3};
    h_net *net = h_net_new(3, false, false);
    net_replace(net, 1, lead, 10, 7);
    net_replace(net, 2, f, 11, 7);
    net_replace(net, 3, lead, 10, 7);
    h_net_elect(net, 1);
    h_net_tick(net, 1, 1);
    assert_same_log(net->nodes[1].ms, net->nodes[2].ms);
    /* one probe per differing term, not one per entry */
    ck_assert_uint_le(net->delivered[RAFT_MSG_APP], 12);
    h_net_free(net);
}
END_TEST

START_TEST(test_inflight_window_bounds_appends)
{
    raft_mem_storage *ms = raft_mem_storage_new();
    raft_config c = h_config(1, 2, ms);
    c.max_inflight_msgs = 3;
    raft *r;
    ck_assert_int_eq(raft_new(&c, &r), 0);
    become_leader(r, ms);
    raft_msg m = app_resp(2, 1, 1); /* probe -> replicate */
    raft_step(r, &m);
    h_node nd = {.id = 1, .r = r, .ms = ms};
    h_drive(NULL, &nd);
    size_t apps = 0;
    for (int i = 0; i < 10; i++) {
        raft_propose(r, "p", 1);
        struct raft_ready rd;
        raft_ready(r, &rd);
        for (size_t k = 0; k < rd.n_msgs; k++)
            apps += rd.msgs[k].type == RAFT_MSG_APP && rd.msgs[k].n_entries > 0;
        raft_advance(r, &rd);
    }
    ck_assert_uint_eq(apps, 3);
    raft_status st = h_status(r);
    ck_assert_uint_eq(st.peers[1].inflight, 3);
    ck_assert_int_eq(st.peers[1].state, RAFT_PROGRESS_REPLICATE);
    /* an ack frees the window and the rest goes out in one batch */
    m = app_resp(2, 1, 4);
    raft_step(r, &m);
    struct raft_ready rd;
    raft_ready(r, &rd);
    size_t ents = 0;
    for (size_t k = 0; k < rd.n_msgs; k++)
        if (rd.msgs[k].type == RAFT_MSG_APP)
            ents += rd.msgs[k].n_entries;
    ck_assert_uint_eq(ents, 7);
    raft_advance(r, &rd);
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_max_size_per_msg_splits_batches)
{
    raft_mem_storage *ms = raft_mem_storage_new();
    raft_config c = h_config(1, 2, ms);
    c.max_size_per_msg = 250;
    raft *r;
    ck_assert_int_eq(raft_new(&c, &r), 0);
    become_leader(r, ms);
    raft_msg m = app_resp(2, 1, 1);
    raft_step(r, &m);
    h_node nd = {.id = 1, .r = r, .ms = ms};
    h_drive(NULL, &nd);
    /* follower paused while we propose: drop its window */
    raft_report_unreachable(r, 2);
    char buf[100] = {0};
    for (int i = 0; i < 10; i++)
        raft_propose(r, buf, sizeof(buf));
    h_drive(NULL, &nd);
    /* probe state: one message, then replicate */
    m = app_resp(2, 1, 1);
    m.reject = false;
    raft_msg hb = {.type = RAFT_MSG_HEARTBEAT_RESP, .from = 2, .to = 1, .term = 1};
    raft_step(r, &hb);
    struct raft_ready rd;
    raft_ready(r, &rd);
    ck_assert_uint_ge(rd.n_msgs, 1);
    for (size_t k = 0; k < rd.n_msgs; k++)
        if (rd.msgs[k].type == RAFT_MSG_APP)
            ck_assert_uint_le(rd.msgs[k].n_entries, 2);
    raft_advance(r, &rd);
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_heartbeat_commit_bounded_by_match)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    h_net_tick(net, 1, 1);
    h_net_isolate(net, 3);
    raft_propose(net->nodes[1].r, "x", 1);
    h_net_settle(net);
    ck_assert_uint_eq(h_status(net->nodes[1].r).commit, 2);
    raft_tick(net->nodes[1].r);
    struct raft_ready rd;
    raft_ready(net->nodes[1].r, &rd);
    int seen = 0;
    for (size_t k = 0; k < rd.n_msgs; k++) {
        if (rd.msgs[k].type != RAFT_MSG_HEARTBEAT)
            continue;
        seen++;
        if (rd.msgs[k].to == 2)
            ck_assert_uint_eq(rd.msgs[k].commit, 2);
        else
            ck_assert_uint_eq(rd.msgs[k].commit, 1);
    }
    ck_assert_int_eq(seen, 2);
    raft_advance(net->nodes[1].r, &rd);
    h_net_free(net);
}
END_TEST

START_TEST(test_follower_forwards_proposal_to_leader)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    uint64_t v = 42;
    ck_assert_int_eq(raft_propose(net->nodes[3].r, &v, 8), 0);
    h_net_settle(net);
    h_net_tick(net, 1, 1);
    for (uint64_t id = 1; id <= 3; id++) {
        ck_assert_uint_eq(net->nodes[id].n_applied_data, 1);
        ck_assert_uint_eq(net->nodes[id].applied_data[0], 42);
    }
    h_net_free(net);
}
END_TEST

START_TEST(test_proposal_without_leader_fails)
{
    raft_mem_storage *ms;
    raft *r = h_raft(1, 3, &ms);
    ck_assert_int_eq(raft_propose(r, "x", 1), RAFT_ENOLEADER);
    raft_campaign(r);
    ck_assert_int_eq(raft_propose(r, "x", 1), RAFT_ENOLEADER);
    ck_assert_str_eq(raft_strerror(RAFT_ENOLEADER), "raft: no leader");
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_lagging_follower_gets_snapshot)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    h_net_isolate(net, 3);
    for (uint64_t i = 0; i < 20; i++)
        raft_propose(net->nodes[1].r, &i, 8);
    h_net_settle(net);
    h_node *l = &net->nodes[1];
    raft_status st = h_status(l->r);
    ck_assert_uint_eq(st.commit, 21);
    raft_buf *data = raft_buf_new("state", 5);
    ck_assert_int_eq(raft_mem_storage_create_snapshot(l->ms, 15, &st.conf, data), 0);
    ck_assert_int_eq(raft_mem_storage_compact(l->ms, 15), 0);
    raft_buf_unref(data);
    h_net_heal(net);
    h_net_tick(net, 1, 2);
    ck_assert_uint_eq(net->delivered[RAFT_MSG_SNAP], 1);
    raft_report_snapshot(l->r, 3, false);
    h_net_tick(net, 1, 2);
    raft_status s3 = h_status(net->nodes[3].r);
    ck_assert_uint_eq(s3.commit, 21);
    ck_assert_uint_eq(s3.first_index, 16);
    ck_assert_uint_eq(net->nodes[3].applied, 21);
    assert_same_log(l->ms, net->nodes[3].ms);
    h_net_free(net);
}
END_TEST

START_TEST(test_stale_leader_steps_down_on_higher_term_response)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    h_net_isolate(net, 1);
    h_net_elect(net, 2);
    ck_assert_uint_eq(h_status(net->nodes[2].r).term, 2);
    h_net_heal(net);
    h_net_tick(net, 2, 1); /* the new leader's heartbeat */
    ck_assert_int_eq(h_status(net->nodes[1].r).state, RAFT_FOLLOWER);
    ck_assert_uint_eq(h_status(net->nodes[1].r).term, 2);
    h_net_free(net);
}
END_TEST

START_TEST(test_failed_snapshot_pauses_until_heartbeat_response)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    h_node *l = &net->nodes[1];
    h_net_isolate(net, 3);
    for (uint64_t i = 0; i < 5; i++)
        raft_propose(l->r, &i, 8);
    h_net_settle(net);
    raft_status st = h_status(l->r);
    raft_mem_storage_create_snapshot(l->ms, st.applied, &st.conf, NULL);
    raft_mem_storage_compact(l->ms, st.applied);
    h_net_heal(net);
    net->drop_type[RAFT_MSG_SNAP] = true;
    h_net_tick(net, 1, 1);
    st = h_status(l->r);
    ck_assert_int_eq(st.peers[2].state, RAFT_PROGRESS_SNAPSHOT);
    /* while a snapshot is in flight nothing else is sent to the peer */
    raft_propose(l->r, "abcdefgh", 8);
    struct raft_ready rd;
    ck_assert_int_eq(raft_ready(l->r, &rd), 0);
    size_t to2 = 0;
    for (size_t k = 0; k < rd.n_msgs; k++) {
        ck_assert_uint_ne(rd.msgs[k].to, 3);
        to2 += rd.msgs[k].to == 2;
    }
    ck_assert_uint_eq(to2, 1);
    raft_mem_storage_append(l->ms, rd.entries, rd.n_entries);
    raft_persisted(l->r, rd.entries[0].index, rd.entries[0].term);
    raft_advance(l->r, &rd);
    h_net_settle(net);
    /* the transport reports the failure: probe, paused */
    raft_report_snapshot(l->r, 3, true);
    st = h_status(l->r);
    ck_assert_int_eq(st.peers[2].state, RAFT_PROGRESS_PROBE);
    net->drop_type[RAFT_MSG_SNAP] = false;
    h_net_tick(net, 1, 1); /* heartbeat response unpauses: snapshot again */
    raft_report_snapshot(l->r, 3, false);
    h_net_tick(net, 1, 2);
    ck_assert_uint_eq(h_status(net->nodes[3].r).commit, h_status(l->r).commit);
    h_net_free(net);
}
END_TEST

START_TEST(test_unreachable_peer_falls_back_to_probe)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    h_net_tick(net, 1, 1);
    raft *l = net->nodes[1].r;
    ck_assert_int_eq(h_status(l).peers[1].state, RAFT_PROGRESS_REPLICATE);
    raft_report_unreachable(l, 2);
    ck_assert_int_eq(h_status(l).peers[1].state, RAFT_PROGRESS_PROBE);
    h_net_tick(net, 1, 1);
    raft_propose(l, "abcdefgh", 8);
    h_net_settle(net);
    ck_assert_int_eq(h_status(l).peers[1].state, RAFT_PROGRESS_REPLICATE);
    h_net_free(net);
}
END_TEST

START_TEST(test_duplicate_and_reordered_appends_are_harmless)
{
    raft_mem_storage *ms;
    raft *r = h_raft(2, 3, &ms);
    h_node nd = {.id = 2, .r = r, .ms = ms};
    raft_entry e[3] = {{.term = 1, .index = 1}, {.term = 1, .index = 2}, {.term = 1, .index = 3}};
    raft_msg full = {.type = RAFT_MSG_APP,
                     .from = 1,
                     .to = 2,
                     .term = 1,
                     .index = 0,
                     .log_term = 0,
                     .commit = 0,
                     .entries = e,
                     .n_entries = 3};
    raft_msg prefix = full;
    prefix.n_entries = 1;
    raft_step(r, &full);
    h_drive(NULL, &nd);
    /* an older, shorter append arrives late: nothing is truncated */
    raft_step(r, &prefix);
    h_drive(NULL, &nd);
    ck_assert_uint_eq(h_status(r).last_index, 3);
    ck_assert_uint_eq(raft_mem_storage_last_index(ms), 3);
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_malformed_append_is_refused)
{
    raft_mem_storage *ms;
    raft *r = h_raft(2, 3, &ms);
    raft_entry gap[2] = {{.term = 1, .index = 1}, {.term = 1, .index = 3}};
    raft_msg m = {
        .type = RAFT_MSG_APP, .from = 1, .to = 2, .term = 1, .entries = gap, .n_entries = 2};
    ck_assert_int_eq(raft_step(r, &m), RAFT_EINVAL);
    raft_entry future[1] = {{.term = 5, .index = 1}};
    m.entries = future;
    m.n_entries = 1;
    ck_assert_int_eq(raft_step(r, &m), RAFT_EINVAL);
    ck_assert_uint_eq(h_status(r).last_index, 0);
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_termless_node_rejects_prevote_with_a_term)
{
    /* entries durable, hard state not (torn write): term 0, longer log */
    static const uint64_t t[] = {1, 1};
    raft_mem_storage *ms;
    raft *r = raft_with_log(2, 3, t, 2, 0, &ms);
    raft_msg pv = {.type = RAFT_MSG_PRE_VOTE, .from = 1, .to = 2, .term = 1};
    ck_assert_int_eq(raft_step(r, &pv), 0);
    struct raft_ready rd;
    raft_ready(r, &rd);
    ck_assert_uint_eq(rd.n_msgs, 1);
    ck_assert(rd.msgs[0].reject);
    ck_assert_uint_eq(rd.msgs[0].term, 1);
    raft_advance(r, &rd);
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_snapshot_rules_on_follower)
{
    static const uint64_t t[] = {1, 1, 2, 2};
    raft_mem_storage *ms;
    raft *r = raft_with_log(2, 3, t, 4, 2, &ms);
    raft_snapshot s = {.meta = {.index = 3, .term = 2}};
    s.meta.conf.voters[0] = 1;
    s.meta.conf.voters[1] = 2;
    s.meta.conf.voters[2] = 3;
    s.meta.conf.n_voters = 3;
    raft_msg m = {.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 2, .snapshot = &s};
    /* we hold the snapshot's last entry: only the commit index moves */
    raft_step(r, &m);
    struct raft_ready rd;
    raft_ready(r, &rd);
    ck_assert_ptr_null(rd.snapshot);
    ck_assert_uint_eq(h_status(r).commit, 3);
    ck_assert_uint_eq(h_status(r).last_index, 4);
    ck_assert_uint_eq(rd.n_msgs_after_persist, 1);
    ck_assert_uint_eq(rd.msgs_after_persist[0].index, 3);
    raft_advance(r, &rd);
    /* a snapshot at or below commit is ignored */
    s.meta.index = 2;
    s.meta.term = 1;
    raft_step(r, &m);
    raft_ready(r, &rd);
    ck_assert_ptr_null(rd.snapshot);
    raft_advance(r, &rd);
    /* a newer snapshot with a different history replaces the log */
    s.meta.index = 10;
    s.meta.term = 3;
    m.term = 3;
    raft_step(r, &m);
    raft_ready(r, &rd);
    ck_assert_ptr_nonnull(rd.snapshot);
    ck_assert_uint_eq(rd.snapshot->meta.index, 10);
    ck_assert_uint_eq(rd.n_committed, 0);
    ck_assert_uint_eq(h_status(r).commit, 10);
    ck_assert_uint_eq(h_status(r).first_index, 11);
    ck_assert_uint_eq(rd.n_msgs_after_persist, 1);
    ck_assert_uint_eq(rd.msgs_after_persist[0].index, 10);
    raft_mem_storage_apply_snapshot(ms, rd.snapshot);
    raft_persisted(r, 10, 3);
    ck_assert_int_eq(raft_applied(r, 10), 0);
    raft_advance(r, &rd);
    ck_assert_uint_eq(h_status(r).persisted, 10);
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

static void restart(h_net *net, uint64_t id)
{
    h_node *nd = &net->nodes[id];
    raft_free(nd->r);
    raft_config c = h_config(id, net->n, nd->ms);
    ck_assert_int_eq(raft_new(&c, &nd->r), 0);
    nd->down = false;
    nd->applied = 0; /* committed entries are handed out again */
    nd->n_applied_data = 0;
}

static uint64_t term_at(h_node *nd, uint64_t i)
{
    raft_storage st = raft_mem_storage_view(nd->ms);
    uint64_t t = 0;
    ck_assert_int_eq(st.ops->term(st.data, i, &t), 0);
    return t;
}

START_TEST(test_figure8_scenario_old_term_entry_is_overwritten_safely)
{
    /* Raft paper figure 8, with terms shifted by one (our first leader
     * has term 1). */
    h_net *net = h_net_new(5, false, false);
    h_net_elect(net, 1);
    h_net_tick(net, 1, 1);
    /* (a) S1 leads term 1 and replicates index 2 to S2 only */
    h_net_cut(net, 1, 3);
    h_net_cut(net, 1, 4);
    h_net_cut(net, 1, 5);
    ck_assert_int_eq(raft_propose(net->nodes[1].r, "x", 1), 0);
    h_net_settle(net);
    ck_assert_uint_eq(term_at(&net->nodes[2], 2), 1);
    ck_assert_uint_eq(h_status(net->nodes[1].r).commit, 1);
    /* (b) S1 crashes; S5 wins term 2 with S3, S4 and appends its own
     * index 2 but crashes before replicating it */
    net->nodes[1].down = true;
    h_net_heal(net);
    h_net_cut(net, 5, 2);
    net->drop_type[RAFT_MSG_APP] = true;
    h_net_elect(net, 5);
    ck_assert_int_eq(h_status(net->nodes[5].r).state, RAFT_LEADER);
    ck_assert_uint_eq(h_status(net->nodes[5].r).term, 2);
    ck_assert_uint_eq(term_at(&net->nodes[5], 2), 2);
    net->nodes[5].down = true;
    /* (c) S1 restarts and wins term 3 with S2, S3 (S4 follows) */
    restart(net, 1);
    h_net_heal(net);
    net->drop_type[RAFT_MSG_APP] = true;
    h_net_elect(net, 1);
    if (h_status(net->nodes[1].r).state != RAFT_LEADER)
        h_net_elect(net, 1); /* first attempt only caught up on terms */
    ck_assert_int_eq(h_status(net->nodes[1].r).state, RAFT_LEADER);
    uint64_t t1 = h_status(net->nodes[1].r).term;
    /* it gets index 2 (term 1) onto S3: a majority (S1, S2, S3) holds it */
    raft_buf *x = raft_buf_new("x", 1);
    raft_entry e2 = {.term = 1, .index = 2, .data = x};
    raft_msg app = {.type = RAFT_MSG_APP,
                    .from = 1,
                    .to = 3,
                    .term = t1,
                    .index = 1,
                    .log_term = 1,
                    .commit = 1,
                    .entries = &e2,
                    .n_entries = 1};
    net->drop_type[RAFT_MSG_APP] = false;
    raft_step(net->nodes[3].r, &app);
    app.to = 2; /* S2 has it already; its ack tells S1 */
    raft_step(net->nodes[2].r, &app);
    raft_buf_unref(x);
    net->drop_type[RAFT_MSG_APP] = true; /* S1 sends nothing else */
    h_net_settle(net);
    ck_assert_uint_eq(term_at(&net->nodes[3], 2), 1);
    raft_status st = h_status(net->nodes[1].r);
    ck_assert_uint_eq(st.peers[1].match, 2);
    ck_assert_uint_eq(st.peers[2].match, 2);
    /* ... yet it is not committed: it is not of the leader's term */
    ck_assert_uint_eq(st.commit, 1);
    /* (d) S1 crashes; S5 restarts and wins with S2, S3, S4 (its last
     * term 2 beats their term 1), overwriting index 2 everywhere */
    net->nodes[1].down = true;
    restart(net, 5);
    net->drop_type[RAFT_MSG_APP] = false;
    for (int i = 0; i < 3 && h_status(net->nodes[5].r).state != RAFT_LEADER; i++)
        h_net_elect(net, 5);
    ck_assert_int_eq(h_status(net->nodes[5].r).state, RAFT_LEADER);
    h_net_tick(net, 5, 2);
    for (uint64_t id = 2; id <= 5; id++) {
        ck_assert_uint_eq(term_at(&net->nodes[id], 2), 2);
        ck_assert_uint_ge(h_status(net->nodes[id].r).commit, 3);
    }
    h_net_free(net);
}
END_TEST

RAFT_TEST_MAIN("raft/replication", test_figure8_scenario_old_term_entry_is_overwritten_safely,
               test_snapshot_rules_on_follower, test_malformed_append_is_refused,
               test_termless_node_rejects_prevote_with_a_term,
               test_failed_snapshot_pauses_until_heartbeat_response,
               test_unreachable_peer_falls_back_to_probe,
               test_duplicate_and_reordered_appends_are_harmless,
               test_figure7_leader_brings_every_follower_in_line,
               test_figure8_only_current_term_entries_commit_by_counting,
               test_leader_counts_itself_only_when_persisted,
               test_quorum_of_followers_commits_without_leader_fsync,
               test_follower_acks_append_only_after_persist,
               test_reject_carries_hint_for_fast_backtracking,
               test_figure7_backtracking_takes_few_round_trips, test_inflight_window_bounds_appends,
               test_max_size_per_msg_splits_batches, test_heartbeat_commit_bounded_by_match,
               test_follower_forwards_proposal_to_leader, test_proposal_without_leader_fails,
               test_lagging_follower_gets_snapshot,
               test_stale_leader_steps_down_on_higher_term_response)
