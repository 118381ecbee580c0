/* tests/unit/raft/test_buf.c - lifetimes in raft/buf.c. */
#include "tests/unit/raft/check_main.h"

#include "common/mem.h"
#include "raft/raft.h"

#include <string.h>

START_TEST(test_buf_is_shared_by_reference)
{
    raft_buf *b = raft_buf_new("hello", 5);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(b->len, 5);
    ck_assert_mem_eq(b->data, "hello", 5);
    ck_assert_ptr_eq(raft_buf_ref(b), b);
    ck_assert_uint_eq(b->refs, 2);
    raft_buf_unref(b);
    ck_assert_uint_eq(b->refs, 1);
    raft_buf_unref(b);
    raft_buf_unref(NULL);
    ck_assert_ptr_null(raft_buf_ref(NULL));
}
END_TEST

START_TEST(test_buf_allocation_failure_is_reported)
{
    metcd_mem_fail_after(0);
    ck_assert_ptr_null(raft_buf_new("x", 1));
    metcd_mem_fail_after(-1);
}
END_TEST

START_TEST(test_entry_vec_takes_references)
{
    raft_buf *b = raft_buf_new("e", 1);
    raft_entry_vec v = {0};
    for (uint64_t i = 1; i <= 100; i++) {
        raft_entry e = {.term = 1, .index = i, .data = b};
        ck_assert_int_eq(raft_entry_vec_push(&v, &e), 0);
    }
    ck_assert_uint_eq(v.len, 100);
    ck_assert_uint_eq(b->refs, 101);
    raft_entry_vec_free(&v);
    raft_entry_vec_free(&v);
    ck_assert_uint_eq(b->refs, 1);
    raft_buf_unref(b);
}
END_TEST

START_TEST(test_msg_copy_shares_payloads)
{
    raft_buf *b = raft_buf_new("payload", 7);
    raft_msg m = {.type = RAFT_MSG_APP, .to = 2, .from = 1, .term = 3};
    m.entries = metcd_malloc(2 * sizeof(raft_entry));
    m.entries[0] = (raft_entry){.term = 3, .index = 1, .data = raft_buf_ref(b)};
    m.entries[1] = (raft_entry){.term = 3, .index = 2, .data = NULL};
    m.n_entries = 2;
    raft_snapshot s = {.meta = {.index = 9, .term = 2}, .data = b};
    m.snapshot = raft_snapshot_dup(&s);
    ck_assert_uint_eq(b->refs, 3);
    raft_msg c;
    ck_assert_int_eq(raft_msg_copy(&c, &m), 0);
    ck_assert_uint_eq(b->refs, 5);
    ck_assert_uint_eq(c.n_entries, 2);
    ck_assert_uint_eq(c.snapshot->meta.index, 9);
    raft_msg_free(&m);
    raft_msg_free(&m); /* idempotent */
    ck_assert_uint_eq(b->refs, 3);
    raft_msg_free(&c);
    ck_assert_uint_eq(b->refs, 1);
    raft_buf_unref(b);
}
END_TEST

START_TEST(test_msg_copy_unwinds_on_allocation_failure)
{
    raft_buf *b = raft_buf_new("p", 1);
    raft_entry e = {.term = 1, .index = 1, .data = b};
    raft_snapshot s = {.meta = {.index = 1}, .data = b};
    raft_msg m = {.type = RAFT_MSG_APP, .entries = &e, .n_entries = 1, .snapshot = &s};
    for (long i = 0; i < 2; i++) {
        metcd_mem_fail_after(i);
        raft_msg c;
        ck_assert_int_eq(raft_msg_copy(&c, &m), RAFT_ENOMEM);
        ck_assert_ptr_null(c.entries);
        ck_assert_uint_eq(b->refs, 1);
    }
    metcd_mem_fail_after(-1);
    raft_buf_unref(b);
}
END_TEST

START_TEST(test_names_and_errors)
{
    ck_assert_str_eq(raft_msg_type_name(RAFT_MSG_APP), "MsgApp");
    ck_assert_str_eq(raft_msg_type_name(RAFT_MSG_PRE_VOTE_RESP), "MsgPreVoteResp");
    ck_assert_str_eq(raft_msg_type_name(RAFT_MSG_NTYPES), "MsgUnknown");
    ck_assert_str_eq(raft_state_name(RAFT_LEADER), "leader");
    ck_assert_str_eq(raft_progress_state_name(RAFT_PROGRESS_SNAPSHOT), "snapshot");
    for (int e = RAFT_ETOOMANY; e <= RAFT_ENOMEM; e++)
        ck_assert_str_ne(raft_strerror(e), "raft: unknown error");
    ck_assert_str_eq(raft_strerror(-1), "raft: unknown error");
    ck_assert_str_eq(raft_strerror(0), "success");
}
END_TEST

RAFT_TEST_MAIN("raft/buf", test_buf_is_shared_by_reference, test_buf_allocation_failure_is_reported,
               test_entry_vec_takes_references, test_msg_copy_shares_payloads,
               test_msg_copy_unwinds_on_allocation_failure, test_names_and_errors)
