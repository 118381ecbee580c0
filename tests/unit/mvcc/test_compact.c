/* Compaction: errors, reads after it, physical deletion in bounded steps,
 * resumption after a crash between scheduling and finishing, HashKV. */
#include "mvcc/internal.h"
#include "util.h"

static int counter(void *arg, backend_val k, backend_val v)
{
    (void)k;
    (void)v;
    (*(int *)arg)++;
    return 0;
}

static int stored_revisions(backend *be)
{
    int n = 0;
    ck_assert_int_eq(backend_range(be, BACKEND_KEY, NULL, 0, NULL, 0, 0, counter, &n), 0);
    return n;
}

START_TEST(test_compact_errors_and_reads)
{
    fixture f;
    fx_init(&f);
    put(f.s, "a", "1"); /* 2 */
    put(f.s, "a", "2"); /* 3 */
    put(f.s, "b", "1"); /* 4 */
    del(f.s, "b", NULL); /* 5 */
    put(f.s, "a", "3"); /* 6 */
    ck_assert_int_eq(mvcc_compact(f.s, 7), MVCC_EFUTURE_REV);
    ck_assert_int_eq(mvcc_compact(f.s, 5), 0);
    ck_assert_int_eq(mvcc_compact(f.s, 5), MVCC_ECOMPACTED);
    ck_assert_int_eq(mvcc_compact(f.s, 4), MVCC_ECOMPACTED);
    ck_assert_int_eq(mvcc_compact_rev(f.s), 5);
    char buf[8];
    mvcc_range_req r = {.key = (const uint8_t *)"a", .key_len = 1, .revision = 4};
    mvcc_result res = {0};
    ck_assert_int_eq(mvcc_range(f.s, &r, &res), MVCC_ECOMPACTED);
    ck_assert_str_eq(get(f.s, "a", 5, buf, sizeof(buf)), "2");
    ck_assert_ptr_null(get(f.s, "b", 5, buf, sizeof(buf)));
    ck_assert_str_eq(get(f.s, "a", 6, buf, sizeof(buf)), "3");
    fx_done(&f);
}
END_TEST

START_TEST(test_physical_compaction_in_steps)
{
    fixture f;
    f.dir = tmpdir_new();
    char err[256];
    backend_options o = {.no_sync = 1};
    ck_assert_int_eq(backend_open(&f.be, f.dir, &o, err, sizeof(err)), 0);
    mvcc_options mo = {.compact_batch = 10};
    ck_assert_int_eq(mvcc_open(&f.s, f.be, &mo), 0);
    for (int i = 0; i < 100; i++)
        put(f.s, "hot", "v");     /* 100 revisions of one key */
    put(f.s, "gone", "x");
    del(f.s, "gone", NULL);
    put(f.s, "cold", "c");
    ck_assert_int_eq(stored_revisions(f.be), 103);
    int64_t rev = mvcc_current_rev(f.s);
    uint32_t h_before, h_after;
    int64_t hr, cr;
    ck_assert_int_eq(mvcc_compact(f.s, rev), 0);
    ck_assert(mvcc_compact_pending(f.s));
    /* HashKV is the same while the physical work is pending and after it */
    ck_assert_int_eq(mvcc_hash_kv(f.s, 0, &h_before, &hr, &cr), 0);
    int steps = 0, rc;
    while ((rc = mvcc_compact_step(f.s)) == 1)
        steps++;
    ck_assert_int_eq(rc, 0);
    ck_assert_int_ge(steps, 9); /* 100 deletions, 10 per step */
    ck_assert(!mvcc_compact_pending(f.s));
    /* left: hot's last revision and cold; gone's put and tombstone removed */
    ck_assert_int_eq(stored_revisions(f.be), 2);
    ck_assert_int_eq(mvcc_hash_kv(f.s, 0, &h_after, &hr, &cr), 0);
    ck_assert_uint_eq(h_before, h_after);
    ck_assert_int_eq(cr, rev);
    ck_assert_int_eq(mvcc_hash_kv(f.s, rev, &h_after, &hr, &cr), MVCC_ECOMPACTED);
    fx_reopen(&f);
    ck_assert_int_eq(mvcc_current_rev(f.s), rev);
    ck_assert_int_eq(mvcc_compact_rev(f.s), rev);
    ck_assert_int_eq(mvcc_keys_total(f.s), 2);
    char buf[8];
    ck_assert_str_eq(get(f.s, "hot", 0, buf, sizeof(buf)), "v");
    fx_done(&f);
}
END_TEST

START_TEST(test_unfinished_compaction_resumes_on_open)
{
    fixture f;
    fx_init(&f);
    for (int i = 0; i < 50; i++)
        put(f.s, "k", "v");
    int64_t rev = mvcc_current_rev(f.s);
    ck_assert_int_eq(mvcc_compact(f.s, rev - 10), 0);
    /* crash before any physical step: only the schedule is on disk */
    ck_assert_int_eq(backend_commit(f.be), 0);
    fx_reopen(&f);
    ck_assert_int_eq(mvcc_compact_rev(f.s), rev - 10);
    ck_assert(mvcc_compact_pending(f.s));
    while (mvcc_compact_step(f.s) == 1)
        ;
    ck_assert_int_eq(stored_revisions(f.be), 11);
    mvcc_range_req r = {.key = (const uint8_t *)"k", .key_len = 1, .revision = rev - 11};
    mvcc_result res = {0};
    ck_assert_int_eq(mvcc_range(f.s, &r, &res), MVCC_ECOMPACTED);
    fx_done(&f);
}
END_TEST

START_TEST(test_hash_is_deterministic_across_stores)
{
    fixture a, b;
    fx_init(&a);
    fx_init(&b);
    for (int i = 0; i < 200; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i % 37);
        put(a.s, k, "v");
        put(b.s, k, "v");
        if (i % 11 == 0) {
            del(a.s, k, NULL);
            del(b.s, k, NULL);
        }
    }
    /* both compact at the same revision (as raft orders it); a finishes the
     * physical deletion, b has not started it: HashKV agrees */
    int64_t rev = mvcc_current_rev(a.s);
    uint32_t ha, hb;
    int64_t hr, cr;
    ck_assert_int_eq(mvcc_hash_kv(a.s, rev, &ha, &hr, &cr), 0);
    ck_assert_int_eq(mvcc_hash_kv(b.s, rev, &hb, &hr, &cr), 0);
    ck_assert_uint_eq(ha, hb);
    put(a.s, "later", "x");
    put(b.s, "later", "x");
    ck_assert_int_eq(mvcc_compact(a.s, rev - 20), 0);
    ck_assert_int_eq(mvcc_compact(b.s, rev - 20), 0);
    while (mvcc_compact_step(a.s) == 1)
        ;
    ck_assert(mvcc_compact_pending(b.s));
    ck_assert_int_eq(mvcc_hash_kv(a.s, rev, &ha, &hr, &cr), 0);
    ck_assert_int_eq(mvcc_hash_kv(b.s, rev, &hb, &hr, &cr), 0);
    ck_assert_uint_eq(ha, hb);
    put(b.s, "extra", "1");
    put(a.s, "extra", "2");
    ck_assert_int_eq(mvcc_hash_kv(a.s, 0, &ha, &hr, &cr), 0);
    ck_assert_int_eq(mvcc_hash_kv(b.s, 0, &hb, &hr, &cr), 0);
    ck_assert_uint_ne(ha, hb);
    fx_done(&a);
    fx_done(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mvcc/compact");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_compact_errors_and_reads);
    tcase_add_test(tc, test_physical_compaction_in_steps);
    tcase_add_test(tc, test_unfinished_compaction_resumes_on_open);
    tcase_add_test(tc, test_hash_is_deterministic_across_stores);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
