/* tests/unit/raft/test_storage.c - the in-memory stable log. */
#include "tests/unit/raft/check_main.h"

#include "raft/raft.h"

static raft_mem_storage *with_terms(const uint64_t *terms, size_t n)
{
    raft_mem_storage *ms = raft_mem_storage_new();
    for (size_t i = 0; i < n; i++) {
        raft_entry e = {.term = terms[i], .index = i + 1};
        ck_assert_int_eq(raft_mem_storage_append(ms, &e, 1), 0);
    }
    return ms;
}

static uint64_t term_at(raft_mem_storage *ms, uint64_t i, int *rc)
{
    raft_storage s = raft_mem_storage_view(ms);
    uint64_t t = 0;
    *rc = s.ops->term(s.data, i, &t);
    return t;
}

START_TEST(test_empty_storage_has_dummy_entry)
{
    raft_mem_storage *ms = raft_mem_storage_new();
    ck_assert_uint_eq(raft_mem_storage_first_index(ms), 1);
    ck_assert_uint_eq(raft_mem_storage_last_index(ms), 0);
    int rc;
    ck_assert_uint_eq(term_at(ms, 0, &rc), 0);
    ck_assert_int_eq(rc, 0);
    term_at(ms, 1, &rc);
    ck_assert_int_eq(rc, RAFT_EUNAVAILABLE);
    raft_storage s = raft_mem_storage_view(ms);
    raft_hard_state hs;
    raft_conf_state cs;
    ck_assert_int_eq(s.ops->initial_state(s.data, &hs, &cs), 0);
    ck_assert_uint_eq(hs.term, 0);
    ck_assert_uint_eq(cs.n_voters, 0);
    raft_mem_storage_free(ms);
    raft_mem_storage_free(NULL);
}
END_TEST

START_TEST(test_append_truncates_conflicting_suffix)
{
    static const uint64_t t[] = {1, 1, 2, 2};
    raft_mem_storage *ms = with_terms(t, 4);
    raft_entry e[2] = {{.term = 3, .index = 3}, {.term = 3, .index = 4}};
    ck_assert_int_eq(raft_mem_storage_append(ms, e, 1), 0);
    ck_assert_uint_eq(raft_mem_storage_last_index(ms), 3);
    int rc;
    ck_assert_uint_eq(term_at(ms, 3, &rc), 3);
    ck_assert_int_eq(raft_mem_storage_append(ms, &e[1], 1), 0);
    ck_assert_uint_eq(raft_mem_storage_last_index(ms), 4);
    /* a gap is refused */
    raft_entry gap = {.term = 3, .index = 9};
    ck_assert_int_eq(raft_mem_storage_append(ms, &gap, 1), RAFT_EINVAL);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_compact_and_snapshot)
{
    static const uint64_t t[] = {1, 1, 2, 2, 3};
    raft_mem_storage *ms = with_terms(t, 5);
    raft_conf_state cs = {.voters = {1, 2, 3}, .n_voters = 3};
    raft_buf *data = raft_buf_new("snap", 4);
    ck_assert_int_eq(raft_mem_storage_create_snapshot(ms, 3, &cs, data), 0);
    ck_assert_int_eq(raft_mem_storage_create_snapshot(ms, 3, &cs, data), RAFT_ESNAPOUTOFDATE);
    ck_assert_int_eq(raft_mem_storage_create_snapshot(ms, 9, &cs, data), RAFT_EUNAVAILABLE);
    ck_assert_int_eq(raft_mem_storage_compact(ms, 3), 0);
    ck_assert_int_eq(raft_mem_storage_compact(ms, 2), RAFT_ECOMPACTED);
    ck_assert_int_eq(raft_mem_storage_compact(ms, 9), RAFT_EUNAVAILABLE);
    ck_assert_uint_eq(raft_mem_storage_first_index(ms), 4);
    int rc;
    ck_assert_uint_eq(term_at(ms, 3, &rc), 2);
    ck_assert_int_eq(rc, 0);
    term_at(ms, 2, &rc);
    ck_assert_int_eq(rc, RAFT_ECOMPACTED);
    raft_storage s = raft_mem_storage_view(ms);
    raft_entry_vec v = {0};
    ck_assert_int_eq(s.ops->entries(s.data, 3, 5, UINT64_MAX, &v), RAFT_ECOMPACTED);
    ck_assert_int_eq(s.ops->entries(s.data, 4, 6, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v.len, 2);
    raft_entry_vec_free(&v);
    raft_snapshot *snap;
    ck_assert_int_eq(s.ops->snapshot(s.data, &snap), 0);
    ck_assert_uint_eq(snap->meta.index, 3);
    ck_assert_uint_eq(snap->meta.term, 2);
    ck_assert_uint_eq(snap->meta.conf.n_voters, 3);
    ck_assert_mem_eq(snap->data->data, "snap", 4);
    raft_snapshot_free(snap);
    raft_hard_state hs;
    raft_conf_state got;
    s.ops->initial_state(s.data, &hs, &got);
    ck_assert_uint_eq(got.n_voters, 3);
    raft_buf_unref(data);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_apply_snapshot_replaces_log)
{
    static const uint64_t t[] = {1, 1, 2};
    raft_mem_storage *ms = with_terms(t, 3);
    raft_snapshot s = {.meta = {.index = 10, .term = 4}};
    s.meta.conf.voters[0] = 1;
    s.meta.conf.n_voters = 1;
    ck_assert_int_eq(raft_mem_storage_apply_snapshot(ms, &s), 0);
    ck_assert_uint_eq(raft_mem_storage_first_index(ms), 11);
    ck_assert_uint_eq(raft_mem_storage_last_index(ms), 10);
    ck_assert_uint_eq(raft_mem_storage_hard_state(ms).commit, 10);
    raft_snapshot old = {.meta = {.index = 5, .term = 3}};
    ck_assert_int_eq(raft_mem_storage_apply_snapshot(ms, &old), RAFT_ESNAPOUTOFDATE);
    /* entries below the snapshot are skipped on append */
    raft_entry e[3] = {
        {.term = 4, .index = 10}, {.term = 4, .index = 11}, {.term = 4, .index = 12}};
    ck_assert_int_eq(raft_mem_storage_append(ms, e, 3), 0);
    ck_assert_uint_eq(raft_mem_storage_last_index(ms), 12);
    raft_mem_storage_free(ms);
}
END_TEST

START_TEST(test_entries_respect_max_bytes)
{
    raft_mem_storage *ms = raft_mem_storage_new();
    raft_buf *b = raft_buf_new("0123456789", 10);
    for (uint64_t i = 1; i <= 10; i++) {
        raft_entry e = {.term = 1, .index = i, .data = b};
        raft_mem_storage_append(ms, &e, 1);
    }
    raft_storage s = raft_mem_storage_view(ms);
    raft_entry_vec v = {0};
    ck_assert_int_eq(s.ops->entries(s.data, 1, 11, 35, &v), 0);
    ck_assert_uint_eq(v.len, 3);
    raft_entry_vec_free(&v);
    ck_assert_int_eq(s.ops->entries(s.data, 1, 11, 0, &v), 0);
    ck_assert_uint_eq(v.len, 1); /* always at least one */
    raft_entry_vec_free(&v);
    ck_assert_int_eq(s.ops->entries(s.data, 5, 12, 1000, &v), RAFT_EUNAVAILABLE);
    raft_entry_vec_free(&v);
    ck_assert_uint_eq(b->refs, 11);
    raft_mem_storage_free(ms);
    ck_assert_uint_eq(b->refs, 1);
    raft_buf_unref(b);
}
END_TEST

RAFT_TEST_MAIN("raft/storage", test_empty_storage_has_dummy_entry,
               test_append_truncates_conflicting_suffix, test_compact_and_snapshot,
               test_apply_snapshot_replaces_log, test_entries_respect_max_bytes)
