/* tests/unit/raft/test_raft.c - the node API of raft/raft.c: config
 * validation, restart from storage, the Ready contract, durability and
 * apply feedback, status, every message type in every role, and clean
 * unwinding when any allocation fails. */
#include "tests/unit/raft/check_main.h"
#include "tests/unit/raft/harness.h"

#include "common/mem.h"

#include <string.h>

START_TEST(test_invalid_config_is_refused)
{
    raft_mem_storage *ms = raft_mem_storage_new();
    raft *r = NULL;
    raft_config c = h_config(1, 3, ms);
    c.id = RAFT_NONE;
    ck_assert_int_eq(raft_new(&c, &r), RAFT_EINVAL);
    c = h_config(1, 3, ms);
    c.election_tick = 1;
    ck_assert_int_eq(raft_new(&c, &r), RAFT_EINVAL);
    c = h_config(1, 3, ms);
    c.max_inflight_msgs = 0;
    ck_assert_int_eq(raft_new(&c, &r), RAFT_EINVAL);
    c = h_config(1, 3, ms);
    uint64_t both[] = {2};
    c.learners = both;
    c.n_learners = 1;
    ck_assert_int_eq(raft_new(&c, &r), RAFT_EINVAL);
    c = h_config(1, 3, ms);
    c.applied = 5; /* beyond the log */
    ck_assert_int_eq(raft_new(&c, &r), RAFT_EINVAL);
    ck_assert_ptr_null(r);
    raft_free(NULL);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_restart_restores_hard_state_and_log)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    for (uint64_t i = 0; i < 5; i++)
        raft_propose(net->nodes[1].r, &i, 8);
    h_net_settle(net);
    h_net_tick(net, 1, 1);
    h_node *n2 = &net->nodes[2];
    raft_status before = h_status(n2->r);
    raft_free(n2->r);
    raft_config c = h_config(2, 3, n2->ms);
    c.applied = 3;
    ck_assert_int_eq(raft_new(&c, &n2->r), 0);
    raft_status after = h_status(n2->r);
    ck_assert_uint_eq(after.term, before.term);
    ck_assert_uint_eq(after.vote, before.vote);
    ck_assert_uint_eq(after.commit, before.commit);
    ck_assert_uint_eq(after.last_index, before.last_index);
    ck_assert_int_eq(after.state, RAFT_FOLLOWER);
    /* committed entries after `applied` are handed out again */
    struct raft_ready rd;
    ck_assert_int_eq(raft_ready(n2->r, &rd), 0);
    ck_assert_uint_eq(rd.n_committed, 3);
    ck_assert_uint_eq(rd.committed[0].index, 4);
    ck_assert(!rd.has_hard_state);
    ck_assert_uint_eq(rd.n_entries, 0);
    raft_advance(n2->r, &rd);
    h_net_free(net);
}
END_TEST

START_TEST(test_ready_hands_out_each_thing_once)
{
    raft_mem_storage *ms;
    raft *r = h_raft(1, 1, &ms);
    ck_assert(!raft_has_ready(r));
    raft_campaign(r);
    ck_assert(raft_has_ready(r));
    struct raft_ready rd;
    raft_ready(r, &rd);
    ck_assert(rd.has_soft_state);
    ck_assert_int_eq(rd.soft_state.state, RAFT_LEADER);
    ck_assert(rd.has_hard_state);
    ck_assert(rd.must_sync);
    ck_assert_uint_eq(rd.n_entries, 1);
    ck_assert_uint_eq(rd.n_committed, 0); /* not durable yet */
    raft_entry e = rd.entries[0];
    raft_mem_storage_append(ms, &e, 1);
    raft_mem_storage_set_hard_state(ms, &rd.hard_state);
    raft_advance(r, &rd);
    raft_advance(r, &rd); /* idempotent */
    ck_assert(!raft_has_ready(r));
    raft_persisted(r, e.index, e.term);
    ck_assert(raft_has_ready(r));
    raft_ready(r, &rd);
    ck_assert(!rd.has_soft_state);
    ck_assert(rd.has_hard_state); /* commit moved */
    ck_assert(!rd.must_sync);
    ck_assert_uint_eq(rd.hard_state.commit, 1);
    ck_assert_uint_eq(rd.n_committed, 1);
    ck_assert_uint_eq(rd.n_entries, 0);
    raft_advance(r, &rd);
    ck_assert(!raft_has_ready(r));
    ck_assert_int_eq(raft_applied(r, 1), 0);
    ck_assert_int_eq(raft_applied(r, 2), RAFT_EINVAL);
    ck_assert_uint_eq(h_status(r).applied, 1);
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_stale_persisted_report_is_ignored)
{
    raft_mem_storage *ms;
    raft *r = h_raft(1, 1, &ms);
    raft_campaign(r);
    struct raft_ready rd;
    raft_ready(r, &rd);
    raft_advance(r, &rd);
    ck_assert_int_eq(raft_persisted(r, 1, 7), 0); /* wrong term */
    ck_assert_int_eq(raft_persisted(r, 9, 1), 0); /* beyond the log */
    ck_assert_uint_eq(h_status(r).commit, 0);
    ck_assert_uint_eq(h_status(r).persisted, 0);
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_status_reports_progress)
{
    h_net *net = h_net_new(3, false, false);
    h_net_elect(net, 1);
    h_net_tick(net, 1, 1);
    raft_status st = h_status(net->nodes[1].r);
    ck_assert_uint_eq(st.id, 1);
    ck_assert_uint_eq(st.lead, 1);
    ck_assert_uint_eq(st.vote, 1);
    ck_assert_uint_eq(st.n_peers, 3);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_uint_eq(st.peers[i].match, 1);
        ck_assert_int_eq(st.peers[i].state, RAFT_PROGRESS_REPLICATE);
    }
    raft_status fs = h_status(net->nodes[2].r);
    ck_assert_uint_eq(fs.n_peers, 0);
    ck_assert_uint_eq(fs.conf.n_voters, 3);
    h_net_free(net);
}
END_TEST

START_TEST(test_every_message_type_in_every_role)
{
    /* Robustness: any message, in any role, with any term relation, is
     * handled without crashing and never breaks the single-leader rule. */
    for (int role = 0; role < 4; role++) {
        for (int t = 0; t < RAFT_MSG_NTYPES; t++) {
            for (int dterm = -1; dterm <= 1; dterm++) {
                h_net *net = h_net_new(3, role == 3, role == 3);
                raft *r = net->nodes[1].r;
                if (role >= 1)
                    h_net_elect(net, 1);
                if (role == 2) {
                    h_net_isolate(net, 1);
                    h_net_elect(net, 2);
                    raft_campaign(r); /* candidate in term 2 */
                }
                raft_status st = h_status(r);
                raft_buf *b = raft_buf_new("e", 1);
                raft_entry e = {.term = st.term, .index = st.last_index + 1, .data = b};
                raft_snapshot snap = {.meta = {.index = 50, .term = 1}};
                snap.meta.conf.voters[0] = 1;
                snap.meta.conf.voters[1] = 2;
                snap.meta.conf.voters[2] = 3;
                snap.meta.conf.n_voters = 3;
                raft_msg m = {.type = (raft_msg_type)t,
                              .from = 2,
                              .to = 1,
                              .term = st.term + (uint64_t)(dterm + 1),
                              .index = st.last_index,
                              .log_term = st.term,
                              .commit = st.commit,
                              .entries = &e,
                              .n_entries = 1};
                if (t == RAFT_MSG_SNAP)
                    m.snapshot = &snap;
                int rc = raft_step(r, &m);
                ck_assert(rc == 0 || rc == RAFT_ENOLEADER || rc == RAFT_EDROPPED ||
                          rc == RAFT_EINVAL);
                raft_buf_unref(b);
                h_net_heal(net);
                h_net_settle(net);
                for (int k = 0; k < 40; k++) {
                    for (uint64_t id = 1; id <= 3; id++)
                        raft_tick(net->nodes[id].r);
                    h_net_settle(net);
                }
                size_t leaders = 0;
                uint64_t top = 0;
                for (uint64_t id = 1; id <= 3; id++) {
                    raft_status s = h_status(net->nodes[id].r);
                    if (s.term > top)
                        top = s.term;
                }
                for (uint64_t id = 1; id <= 3; id++) {
                    raft_status s = h_status(net->nodes[id].r);
                    leaders += s.state == RAFT_LEADER && s.term == top;
                }
                ck_assert_uint_le(leaders, 1);
                h_net_free(net);
            }
        }
    }
}
END_TEST

START_TEST(test_local_messages_require_no_term)
{
    h_net *net = h_net_new(3, false, false);
    raft_msg hup = {.type = RAFT_MSG_HUP};
    ck_assert_int_eq(raft_step(net->nodes[1].r, &hup), 0);
    h_net_settle(net);
    ck_assert_uint_eq(h_net_leader(net), 1);
    raft_msg beat = {.type = RAFT_MSG_BEAT};
    size_t hb = net->delivered[RAFT_MSG_HEARTBEAT];
    raft_step(net->nodes[1].r, &beat);
    h_net_settle(net);
    ck_assert_uint_eq(net->delivered[RAFT_MSG_HEARTBEAT], hb + 2);
    raft_msg bad = {.type = RAFT_MSG_NTYPES};
    ck_assert_int_eq(raft_step(net->nodes[1].r, &bad), RAFT_EINVAL);
    h_net_free(net);
}
END_TEST

START_TEST(test_uncommitted_size_bounds_proposals)
{
    raft_mem_storage *ms = raft_mem_storage_new();
    raft_config c = h_config(1, 3, ms);
    c.max_uncommitted_size = 1000;
    raft *r;
    ck_assert_int_eq(raft_new(&c, &r), 0);
    raft_campaign(r);
    raft_msg v = {.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = 1};
    raft_step(r, &v);
    char buf[300] = {0};
    int rc = 0, n = 0;
    while ((rc = raft_propose(r, buf, sizeof(buf))) == 0)
        n++;
    ck_assert_int_eq(rc, RAFT_EDROPPED);
    ck_assert_int_eq(n, 3);
    /* once committed, the room comes back */
    h_node nd = {.id = 1, .r = r, .ms = ms};
    h_drive(NULL, &nd);
    raft_msg ack = {.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 1, .index = 4};
    raft_step(r, &ack);
    h_drive(NULL, &nd);
    ck_assert_uint_eq(nd.applied, 4);
    ck_assert_int_eq(raft_propose(r, buf, sizeof(buf)), 0);
    raft_free(r);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_committed_entries_come_in_bounded_batches)
{
    h_net *net = h_net_new(1, false, false);
    h_net_elect(net, 1);
    char buf[100] = {0};
    for (int i = 0; i < 10; i++)
        raft_propose(net->nodes[1].r, buf, sizeof(buf));
    h_net_settle(net);
    /* restart with a small batch size: replay comes in slices */
    h_node *nd = &net->nodes[1];
    raft_free(nd->r);
    raft_config c = h_config(1, 1, nd->ms);
    c.max_committed_size_per_ready = 250;
    ck_assert_int_eq(raft_new(&c, &nd->r), 0);
    size_t readies = 0, total = 0;
    while (raft_has_ready(nd->r)) {
        struct raft_ready rd;
        raft_ready(nd->r, &rd);
        ck_assert_uint_le(rd.n_committed, 3);
        total += rd.n_committed;
        if (rd.n_committed)
            raft_applied(nd->r, rd.committed[rd.n_committed - 1].index);
        readies++;
        raft_advance(nd->r, &rd);
    }
    ck_assert_uint_eq(total, 11);
    ck_assert_uint_ge(readies, 5);
    h_net_free(net);
}
END_TEST

static uint64_t fuzz_state = 88172645463325252ull;

static uint64_t fuzz(uint64_t n)
{
    fuzz_state ^= fuzz_state << 13;
    fuzz_state ^= fuzz_state >> 7;
    fuzz_state ^= fuzz_state << 17;
    return n ? fuzz_state % n : 0;
}

START_TEST(test_random_messages_never_crash)
{
    /* Bad input from outside is an error, never an assert: forged and
     * garbled messages of every type, with terms, indexes and entries
     * near the real ones, into a running cluster. */
    for (int round = 0; round < 60; round++) {
        h_net *net = h_net_new(3, round % 2, round % 3 == 0);
        h_net_elect(net, 1 + (uint64_t)(round % 3));
        for (uint64_t i = 0; i < 5; i++)
            raft_propose(net->nodes[1].r, &i, 8);
        h_net_settle(net);
        for (int k = 0; k < 300; k++) {
            uint64_t to = 1 + fuzz(3);
            raft_status st = h_status(net->nodes[to].r);
            raft_entry ents[4];
            size_t n = fuzz(5);
            uint64_t base = st.last_index > 3 ? st.last_index - 3 + fuzz(6) : fuzz(6);
            for (size_t i = 0; i < n; i++) {
                ents[i].term = st.term > 0 ? st.term - fuzz(2) + fuzz(2) : fuzz(2);
                ents[i].index = fuzz(8) ? base + 1 + i : fuzz(100);
                ents[i].type = (raft_entry_type)fuzz(2);
                ents[i].data = NULL;
            }
            raft_snapshot snap = {.meta = {.index = fuzz(40), .term = fuzz(st.term + 2)}};
            snap.meta.conf.n_voters = fuzz(4);
            for (size_t i = 0; i < snap.meta.conf.n_voters; i++)
                snap.meta.conf.voters[i] = 1 + fuzz(4);
            raft_msg m = {
                .type = (raft_msg_type)fuzz(RAFT_MSG_NTYPES + 1),
                .from = fuzz(5),
                .to = to,
                .term = fuzz(4) ? st.term + fuzz(3) - (st.term > 0 ? fuzz(2) : 0) : 0,
                .log_term = fuzz(st.term + 2),
                .index = base,
                .commit = fuzz(st.last_index + 4),
                .reject = fuzz(2),
                .transfer = fuzz(4) == 0,
                .reject_hint = fuzz(st.last_index + 4),
                .context = fuzz(5),
                .entries = n ? ents : NULL,
                .n_entries = n,
                .snapshot = fuzz(3) == 0 ? &snap : NULL,
            };
            int rc = raft_step(net->nodes[to].r, &m);
            ck_assert(rc <= 0 && rc >= RAFT_ETOOMANY);
            if (fuzz(4) == 0)
                raft_tick(net->nodes[to].r);
            h_net_settle(net);
        }
        h_net_free(net);
    }
}
END_TEST

/* ---- failmalloc: every allocation of a busy cluster may fail ---------- */

static long budget; /* allocations left before the injected failure */

static void arm(void)
{
    if (budget >= 0)
        metcd_mem_fail_after(budget);
}

static void disarm(long before)
{
    metcd_mem_fail_after(-1);
    if (budget >= 0) {
        budget -= metcd_mem_count() - before;
        if (budget < 0)
            budget = -1; /* fired */
    }
}

#define FAULTY(call)                                                                               \
    do {                                                                                           \
        long b_ = metcd_mem_count();                                                               \
        arm();                                                                                     \
        (void)(call);                                                                              \
        disarm(b_);                                                                                \
    } while (0)

static void tolerant_drive(h_net *net, h_node *nd, raft_msg *q, size_t *qn)
{
    for (int loops = 0; loops < 10 && raft_has_ready(nd->r); loops++) {
        struct raft_ready rd;
        long b = metcd_mem_count();
        arm();
        int rc = raft_ready(nd->r, &rd);
        disarm(b);
        if (rc) {
            ck_assert_int_eq(rc, RAFT_ENOMEM);
            continue;
        }
        for (size_t i = 0; i < rd.n_msgs && *qn < 4096; i++) {
            q[(*qn)++] = rd.msgs[i];
            memset(&rd.msgs[i], 0, sizeof(raft_msg));
        }
        if (rd.has_hard_state)
            raft_mem_storage_set_hard_state(nd->ms, &rd.hard_state);
        if (rd.n_entries) {
            ck_assert_int_eq(raft_mem_storage_append(nd->ms, rd.entries, rd.n_entries), 0);
            raft_entry *l = &rd.entries[rd.n_entries - 1];
            FAULTY(raft_persisted(nd->r, l->index, l->term));
        }
        for (size_t i = 0; i < rd.n_msgs_after_persist && *qn < 4096; i++) {
            q[(*qn)++] = rd.msgs_after_persist[i];
            memset(&rd.msgs_after_persist[i], 0, sizeof(raft_msg));
        }
        for (size_t i = 0; i < rd.n_committed; i++) {
            nd->applied = rd.committed[i].index;
            raft_applied(nd->r, nd->applied);
        }
        raft_advance(nd->r, &rd);
    }
    (void)net;
}

static void tolerant_round(h_net *net, raft_msg *q, size_t *qn)
{
    for (uint64_t id = 1; id <= net->n; id++)
        tolerant_drive(net, &net->nodes[id], q, qn);
    size_t n = *qn;
    raft_msg *batch = malloc(n * sizeof(raft_msg) + 1);
    memcpy(batch, q, n * sizeof(raft_msg));
    *qn = 0;
    for (size_t i = 0; i < n; i++) {
        if (batch[i].to >= 1 && batch[i].to <= net->n)
            FAULTY(raft_step(net->nodes[batch[i].to].r, &batch[i]));
        raft_msg_free(&batch[i]);
    }
    free(batch);
}

START_TEST(test_allocation_failures_unwind_cleanly)
{
    static raft_msg q[4096];
    size_t fired = 0;
    for (long inject = 0; inject < 300; inject += 2) {
        h_net *net = h_net_new(3, true, true);
        size_t qn = 0;
        budget = inject;
        FAULTY(raft_campaign(net->nodes[1].r));
        for (int round = 0; round < 12; round++) {
            for (uint64_t id = 1; id <= 3; id++) {
                uint64_t v = (uint64_t)round;
                FAULTY(raft_propose(net->nodes[id].r, &v, 8));
                FAULTY(raft_read_index(net->nodes[id].r, v + 1));
                FAULTY(raft_tick(net->nodes[id].r));
            }
            tolerant_round(net, q, &qn);
        }
        if (budget < 0)
            fired++;
        budget = -1;
        /* without failures the cluster recovers and commits */
        for (int round = 0; round < 200; round++) {
            for (uint64_t id = 1; id <= 3; id++)
                raft_tick(net->nodes[id].r);
            tolerant_round(net, q, &qn);
        }
        uint64_t lead = h_net_leader(net);
        ck_assert_uint_ne(lead, 0);
        uint64_t v = 99;
        ck_assert_int_eq(raft_propose(net->nodes[lead].r, &v, 8), 0);
        for (int round = 0; round < 20; round++)
            tolerant_round(net, q, &qn);
        uint64_t commit = h_status(net->nodes[lead].r).commit;
        for (uint64_t id = 1; id <= 3; id++)
            ck_assert_uint_eq(net->nodes[id].applied, commit);
        for (size_t i = 0; i < qn; i++)
            raft_msg_free(&q[i]);
        h_net_free(net);
    }
    ck_assert_uint_gt(fired, 40);
}
END_TEST

RAFT_TEST_MAIN("raft/raft", test_invalid_config_is_refused,
               test_restart_restores_hard_state_and_log, test_ready_hands_out_each_thing_once,
               test_stale_persisted_report_is_ignored, test_status_reports_progress,
               test_every_message_type_in_every_role, test_local_messages_require_no_term,
               test_uncommitted_size_bounds_proposals,
               test_committed_entries_come_in_bounded_batches, test_random_messages_never_crash,
               test_allocation_failures_unwind_cleanly)
