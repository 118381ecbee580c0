/* tests/unit/raft/test_log.c - raft/log.c: stable + unstable log. Uses the
 * module's internal header: this is raft/'s own test. */
#include "tests/unit/raft/check_main.h"

#include "raft/raft_int.h"

static raft_mem_storage *ms;
static raft_log lg;

static void setup_terms(const uint64_t *stable, size_t ns, const uint64_t *unstable, size_t nu)
{
    ms = raft_mem_storage_new();
    for (size_t i = 0; i < ns; i++) {
        raft_entry e = {.term = stable[i], .index = i + 1};
        raft_mem_storage_append(ms, &e, 1);
    }
    ck_assert_int_eq(log_init(&lg, raft_mem_storage_view(ms)), 0);
    for (size_t i = 0; i < nu; i++) {
        raft_entry e = {.term = unstable[i], .index = ns + i + 1};
        ck_assert_int_eq(log_append(&lg, &e, 1), 0);
    }
}

static void teardown_log(void)
{
    log_free(&lg);
    raft_mem_storage_free(ms);
}

START_TEST(test_terms_across_stable_and_unstable)
{
    static const uint64_t s[] = {1, 1, 2}, u[] = {3, 3};
    setup_terms(s, 3, u, 2);
    ck_assert_uint_eq(log_first_index(&lg), 1);
    ck_assert_uint_eq(log_last_index(&lg), 5);
    ck_assert_uint_eq(log_persisted_index(&lg), 3);
    ck_assert_uint_eq(log_term_or0(&lg, 0), 0);
    ck_assert_uint_eq(log_term_or0(&lg, 3), 2);
    ck_assert_uint_eq(log_term_or0(&lg, 5), 3);
    uint64_t t;
    ck_assert_int_eq(log_term(&lg, 6, &t), RAFT_EUNAVAILABLE);
    ck_assert_uint_eq(log_last_term(&lg), 3);
    teardown_log();
}
END_TEST

START_TEST(test_up_to_date_compares_term_then_length)
{
    static const uint64_t s[] = {1, 2, 2};
    setup_terms(s, 3, NULL, 0);
    ck_assert(log_is_up_to_date(&lg, 3, 2));
    ck_assert(log_is_up_to_date(&lg, 1, 3));
    ck_assert(!log_is_up_to_date(&lg, 2, 2));
    ck_assert(!log_is_up_to_date(&lg, 9, 1));
    teardown_log();
}
END_TEST

START_TEST(test_maybe_append_matches_and_truncates)
{
    static const uint64_t s[] = {1, 2, 3};
    setup_terms(s, 3, NULL, 0);
    bool ok;
    uint64_t last;
    raft_entry e[2] = {{.term = 4, .index = 3}, {.term = 4, .index = 4}};
    /* mismatching previous entry */
    ck_assert_int_eq(log_maybe_append(&lg, 2, 1, 0, e, 2, &ok, &last), 0);
    ck_assert(!ok);
    /* matching: 3 conflicts (term 3 vs 4) and is replaced */
    ck_assert_int_eq(log_maybe_append(&lg, 2, 2, 3, e, 2, &ok, &last), 0);
    ck_assert(ok);
    ck_assert_uint_eq(last, 4);
    ck_assert_uint_eq(log_term_or0(&lg, 3), 4);
    ck_assert_uint_eq(log_last_index(&lg), 4);
    ck_assert_uint_eq(lg.committed, 3);
    /* the unstable tail now starts below the stable end */
    ck_assert_uint_eq(log_persisted_index(&lg), 2);
    /* a stale duplicate changes nothing */
    ck_assert_int_eq(log_maybe_append(&lg, 2, 2, 3, e, 1, &ok, &last), 0);
    ck_assert(ok);
    ck_assert_uint_eq(log_last_index(&lg), 4);
    teardown_log();
}
END_TEST

START_TEST(test_find_conflict_by_term_skips_runs)
{
    static const uint64_t s[] = {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3};
    setup_terms(s, 11, NULL, 0);
    ck_assert_uint_eq(log_find_conflict_by_term(&lg, 11, 6), 11);
    ck_assert_uint_eq(log_find_conflict_by_term(&lg, 11, 2), 6);
    ck_assert_uint_eq(log_find_conflict_by_term(&lg, 11, 1), 3);
    ck_assert_uint_eq(log_find_conflict_by_term(&lg, 11, 0), 0);
    raft_entry e[3] = {{.term = 1, .index = 3}, {.term = 2, .index = 4}, {.term = 4, .index = 5}};
    ck_assert_uint_eq(log_find_conflict(&lg, e, 2), 0);
    ck_assert_uint_eq(log_find_conflict(&lg, e, 3), 5);
    teardown_log();
}
END_TEST

START_TEST(test_stable_to_ignores_replaced_entries)
{
    static const uint64_t s[] = {1}, u[] = {2, 2};
    setup_terms(s, 1, u, 2);
    lg.in_progress = 4; /* both handed out */
    /* entry 3 gets replaced by a term-3 entry */
    raft_entry e = {.term = 3, .index = 3};
    ck_assert_int_eq(log_append(&lg, &e, 1), 0);
    ck_assert_uint_eq(lg.in_progress, 3);
    log_stable_to(&lg, 3, 2); /* stale report */
    ck_assert_uint_eq(log_persisted_index(&lg), 1);
    raft_entry_vec v = {0};
    ck_assert_int_eq(log_entries(&lg, 2, 3, UINT64_MAX, &v), 0);
    raft_mem_storage_append(ms, v.v, v.len);
    raft_entry_vec_free(&v);
    log_stable_to(&lg, 2, 2);
    ck_assert_uint_eq(log_persisted_index(&lg), 2);
    teardown_log();
}
END_TEST

START_TEST(test_entries_span_storage_and_unstable_with_limit)
{
    static const uint64_t s[] = {1, 1}, u[] = {2, 2};
    setup_terms(s, 2, u, 2);
    raft_entry_vec v = {0};
    ck_assert_int_eq(log_entries(&lg, 1, 5, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v.len, 4);
    ck_assert_uint_eq(v.v[3].term, 2);
    raft_entry_vec_free(&v);
    /* limits count payload bytes; empty entries cost nothing */
    ck_assert_int_eq(log_entries(&lg, 2, 5, 0, &v), 0);
    ck_assert_uint_eq(v.len, 3);
    raft_entry_vec_free(&v);
    raft_buf *b = raft_buf_new("xx", 2);
    raft_entry e = {.term = 2, .index = 5, .data = b};
    ck_assert_int_eq(log_append(&lg, &e, 1), 0);
    e.index = 6;
    ck_assert_int_eq(log_append(&lg, &e, 1), 0);
    raft_buf_unref(b);
    ck_assert_int_eq(log_entries(&lg, 5, 7, 0, &v), 0);
    ck_assert_uint_eq(v.len, 1);
    raft_entry_vec_free(&v);
    ck_assert_int_eq(log_entries(&lg, 4, 7, 3, &v), 0);
    ck_assert_uint_eq(v.len, 2);
    raft_entry_vec_free(&v);
    ck_assert_int_eq(log_entries(&lg, 0, 2, 0, &v), RAFT_ECOMPACTED);
    ck_assert_int_eq(log_entries(&lg, 1, 8, 0, &v), RAFT_EUNAVAILABLE);
    raft_entry_vec_free(&v);
    teardown_log();
}
END_TEST

START_TEST(test_restore_snapshot_and_apply_window)
{
    static const uint64_t s[] = {1, 1, 1};
    setup_terms(s, 3, NULL, 0);
    log_commit_to(&lg, 3);
    uint64_t lo, hi;
    log_apply_window(&lg, &lo, &hi);
    ck_assert_uint_eq(lo, 1);
    ck_assert_uint_eq(hi, 3);
    raft_snapshot snap = {.meta = {.index = 10, .term = 5}};
    ck_assert_int_eq(log_restore(&lg, &snap), 0);
    ck_assert_uint_eq(lg.committed, 10);
    ck_assert_uint_eq(log_first_index(&lg), 11);
    ck_assert_uint_eq(log_last_index(&lg), 10);
    ck_assert_uint_eq(log_term_or0(&lg, 10), 5);
    /* nothing after the snapshot may be applied before it is installed */
    ck_assert(!log_has_committed_to_apply(&lg));
    uint64_t t;
    ck_assert_int_eq(log_term(&lg, 3, &t), RAFT_ECOMPACTED);
    teardown_log();
}
END_TEST

START_TEST(test_maybe_commit_only_in_term)
{
    static const uint64_t s[] = {1, 2};
    setup_terms(s, 2, NULL, 0);
    ck_assert(!log_maybe_commit(&lg, 1, 2));
    ck_assert(log_maybe_commit(&lg, 2, 2));
    ck_assert_uint_eq(lg.committed, 2);
    ck_assert(!log_maybe_commit(&lg, 1, 1)); /* never backwards */
    teardown_log();
}
END_TEST

RAFT_TEST_MAIN("raft/log", test_terms_across_stable_and_unstable,
               test_up_to_date_compares_term_then_length, test_maybe_append_matches_and_truncates,
               test_find_conflict_by_term_skips_runs, test_stable_to_ignores_replaced_entries,
               test_entries_span_storage_and_unstable_with_limit,
               test_restore_snapshot_and_apply_window, test_maybe_commit_only_in_term)
