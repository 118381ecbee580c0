/* tests/unit/raft/test_progress.c - flow control and quorum arithmetic of
 * raft/progress.c (internal header: raft/'s own test). */
#include "tests/unit/raft/check_main.h"

#include "raft/raft_int.h"

START_TEST(test_inflights_ring_wraps_and_frees)
{
    uint64_t buf[4];
    raft_inflights in = {.buf = buf, .size = 4};
    for (uint64_t i = 1; i <= 4; i++)
        ins_add(&in, i * 10);
    ck_assert(ins_full(&in));
    ins_free_le(&in, 25);
    ck_assert_uint_eq(in.count, 2);
    ins_add(&in, 50);
    ins_add(&in, 60); /* wraps */
    ck_assert(ins_full(&in));
    ins_free_first(&in);
    ck_assert_uint_eq(in.count, 3);
    ins_free_le(&in, 100);
    ck_assert_uint_eq(in.count, 0);
}
END_TEST

START_TEST(test_probe_pauses_after_one_message)
{
    raft_tracker t;
    tracker_init(&t, 8);
    ck_assert_int_eq(tracker_add(&t, 2, false, 5), 0);
    raft_progress *p = tracker_find(&t, 2);
    ck_assert_int_eq(p->state, RAFT_PROGRESS_PROBE);
    ck_assert(!pr_is_paused(p));
    p->probe_sent = true;
    ck_assert(pr_is_paused(p));
    /* an ack resumes and moves to replicate */
    ck_assert(pr_maybe_update(p, 4));
    ck_assert(!p->probe_sent);
    pr_become_replicate(p);
    ck_assert_uint_eq(p->next, 5);
    ck_assert(!pr_maybe_update(p, 3)); /* stale */
    tracker_free(&t);
}
END_TEST

START_TEST(test_decr_to_uses_hint_and_ignores_stale)
{
    raft_tracker t;
    tracker_init(&t, 8);
    tracker_add(&t, 2, false, 11);
    raft_progress *p = tracker_find(&t, 2);
    ck_assert(!pr_maybe_decr_to(p, 5, 3)); /* not the probe we sent */
    ck_assert(pr_maybe_decr_to(p, 10, 6));
    ck_assert_uint_eq(p->next, 7);
    p->match = 4;
    pr_become_replicate(p);
    ck_assert_uint_eq(p->next, 5);
    ck_assert(!pr_maybe_decr_to(p, 3, 0)); /* below match: stale */
    ck_assert(pr_maybe_decr_to(p, 6, 0));
    ck_assert_uint_eq(p->next, 5);
    tracker_free(&t);
}
END_TEST

START_TEST(test_snapshot_state_resumes_after_snapshot)
{
    raft_tracker t;
    tracker_init(&t, 8);
    tracker_add(&t, 2, false, 3);
    raft_progress *p = tracker_find(&t, 2);
    pr_become_snapshot(p, 20);
    ck_assert(pr_is_paused(p));
    pr_become_probe(p);
    ck_assert_uint_eq(p->next, 21);
    tracker_free(&t);
}
END_TEST

START_TEST(test_commit_index_is_quorum_match_of_voters)
{
    struct {
        uint64_t matches[5];
        size_t n;
        uint64_t want;
    } cases[] = {
        {{5}, 1, 5},          {{5, 3}, 2, 3},          {{5, 3, 1}, 3, 3},
        {{5, 3, 1, 4}, 4, 3}, {{5, 3, 1, 4, 2}, 5, 3}, {{1, 1, 9, 9, 9}, 5, 9},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        raft_tracker t;
        tracker_init(&t, 4);
        for (size_t i = 0; i < cases[c].n; i++) {
            tracker_add(&t, i + 1, false, 1);
            tracker_find(&t, i + 1)->match = cases[c].matches[i];
        }
        /* learners never count */
        tracker_add(&t, 9, true, 1);
        tracker_find(&t, 9)->match = 100;
        ck_assert_uint_eq(tracker_committed(&t), cases[c].want);
        tracker_free(&t);
    }
}
END_TEST

START_TEST(test_vote_tally)
{
    raft_tracker t;
    tracker_init(&t, 4);
    for (uint64_t i = 1; i <= 5; i++)
        tracker_add(&t, i, false, 1);
    tracker_add(&t, 6, true, 1);
    tracker_record_vote(&t, 1, true);
    tracker_record_vote(&t, 6, true); /* learner: ignored */
    tracker_record_vote(&t, 2, true);
    ck_assert_int_eq(tracker_tally(&t, NULL, NULL), VOTE_PENDING);
    tracker_record_vote(&t, 2, false); /* first answer sticks */
    tracker_record_vote(&t, 3, false);
    tracker_record_vote(&t, 4, false);
    ck_assert_int_eq(tracker_tally(&t, NULL, NULL), VOTE_PENDING);
    tracker_record_vote(&t, 5, false);
    size_t g, r;
    ck_assert_int_eq(tracker_tally(&t, &g, &r), VOTE_LOST);
    ck_assert_uint_eq(g, 2);
    ck_assert_uint_eq(r, 3);
    tracker_reset_votes(&t);
    for (uint64_t i = 1; i <= 3; i++)
        tracker_record_vote(&t, i, true);
    ck_assert_int_eq(tracker_tally(&t, NULL, NULL), VOTE_WON);
    tracker_free(&t);
}
END_TEST

START_TEST(test_quorum_active_counts_self)
{
    raft_tracker t;
    tracker_init(&t, 4);
    for (uint64_t i = 1; i <= 3; i++)
        tracker_add(&t, i, false, 1);
    ck_assert(!tracker_quorum_active(&t, 1));
    tracker_find(&t, 3)->recent_active = true;
    ck_assert(tracker_quorum_active(&t, 1));
    tracker_remove(&t, 3);
    ck_assert_uint_eq(tracker_voters(&t), 2);
    ck_assert(!tracker_quorum_active(&t, 1));
    tracker_free(&t);
}
END_TEST

START_TEST(test_tracker_bounds_and_conf_state)
{
    raft_tracker t;
    tracker_init(&t, 2);
    for (uint64_t i = 1; i <= RAFT_MAX_NODES; i++)
        ck_assert_int_eq(tracker_add(&t, i, i > 20, 1), 0);
    ck_assert_int_eq(tracker_add(&t, 99, false, 1), RAFT_ETOOMANY);
    ck_assert_int_eq(tracker_add(&t, 3, false, 1), RAFT_EINVAL);
    raft_conf_state cs;
    tracker_conf_state(&t, &cs);
    ck_assert_uint_eq(cs.n_voters, 20);
    ck_assert_uint_eq(cs.n_learners, RAFT_MAX_NODES - 20);
    tracker_free(&t);
}
END_TEST

RAFT_TEST_MAIN("raft/progress", test_inflights_ring_wraps_and_frees,
               test_probe_pauses_after_one_message, test_decr_to_uses_hint_and_ignores_stale,
               test_snapshot_state_resumes_after_snapshot,
               test_commit_index_is_quorum_match_of_voters, test_vote_tally,
               test_quorum_active_counts_self, test_tracker_bounds_and_conf_state)
