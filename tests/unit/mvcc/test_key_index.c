/* Key index: generations, reads at revisions, compaction and keep, as
 * etcd's keyIndex defines them. The fixture key has three finished
 * generations: {2, 4, 6t} {8, 10, 12t} {14, 14.1, 16t} and an empty one. */
#include "mvcc/internal.h"
#include "common/mem.h"
#include "util.h"

static mvcc_rev R(int64_t m, int64_t s)
{
    return (mvcc_rev){m, s};
}

static key_index *fixture_ki(void)
{
    key_index *ki = ki_new(S("foo"));
    ck_assert_int_eq(ki_put(ki, R(2, 0)), 0);
    ck_assert_int_eq(ki_put(ki, R(4, 0)), 0);
    ck_assert_int_eq(ki_tombstone(ki, R(6, 0)), 0);
    ck_assert_int_eq(ki_put(ki, R(8, 0)), 0);
    ck_assert_int_eq(ki_put(ki, R(10, 0)), 0);
    ck_assert_int_eq(ki_tombstone(ki, R(12, 0)), 0);
    ck_assert_int_eq(ki_put(ki, R(14, 0)), 0);
    ck_assert_int_eq(ki_put(ki, R(14, 1)), 0);
    ck_assert_int_eq(ki_tombstone(ki, R(16, 0)), 0);
    return ki;
}

START_TEST(test_get_at_every_revision)
{
    key_index *ki = fixture_ki();
    struct {
        int64_t at;
        bool found;
        mvcc_rev mod, created;
        int64_t ver;
    } cases[] = {
        {0, false}, {1, false},
        {2, true, {2, 0}, {2, 0}, 1}, {3, true, {2, 0}, {2, 0}, 1},
        {4, true, {4, 0}, {2, 0}, 2}, {5, true, {4, 0}, {2, 0}, 2},
        {6, false}, {7, false},
        {8, true, {8, 0}, {8, 0}, 1}, {9, true, {8, 0}, {8, 0}, 1},
        {10, true, {10, 0}, {8, 0}, 2}, {11, true, {10, 0}, {8, 0}, 2},
        {12, false}, {13, false},
        {14, true, {14, 1}, {14, 0}, 2}, {15, true, {14, 1}, {14, 0}, 2},
        {16, false}, {17, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mvcc_rev mod, created;
        int64_t ver;
        bool f = ki_get(ki, cases[i].at, &mod, &created, &ver);
        ck_assert_msg(f == cases[i].found, "at %lld", (long long)cases[i].at);
        if (!f)
            continue;
        ck_assert_int_eq(mvcc_rev_cmp(mod, cases[i].mod), 0);
        ck_assert_int_eq(mvcc_rev_cmp(created, cases[i].created), 0);
        ck_assert_int_eq(ver, cases[i].ver);
    }
    ki_free(ki);
}
END_TEST

START_TEST(test_tombstone_of_dead_key_fails)
{
    key_index *ki = ki_new(S("k"));
    ck_assert_int_eq(ki_tombstone(ki, R(1, 0)), MVCC_EKEY_NOT_FOUND);
    ck_assert_int_eq(ki_put(ki, R(2, 0)), 0);
    ck_assert_int_eq(ki_tombstone(ki, R(3, 0)), 0);
    ck_assert_int_eq(ki_tombstone(ki, R(4, 0)), MVCC_EKEY_NOT_FOUND);
    ck_assert(!ki_is_empty(ki));
    ki_free(ki);
}
END_TEST

START_TEST(test_compact_and_keep)
{
    struct {
        int64_t at;
        bool keep_found;
        mvcc_rev keep;
        bool empty_after;
        int64_t first_readable; /* a revision still readable after compaction, 0 = none */
    } cases[] = {
        {1, false, {0, 0}, false, 2},
        {2, true, {2, 0}, false, 2},
        {3, true, {2, 0}, false, 3},
        {4, true, {4, 0}, false, 4},
        {6, false, {0, 0}, false, 8},
        {7, false, {0, 0}, false, 8},
        {8, true, {8, 0}, false, 8},
        {11, true, {10, 0}, false, 11},
        {12, false, {0, 0}, false, 14},
        {15, true, {14, 1}, false, 15},
        {16, false, {0, 0}, true, 0},
        {20, false, {0, 0}, true, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        key_index *ki = fixture_ki();
        mvcc_rev keep;
        bool kf = ki_keep_rev(ki, cases[i].at, &keep);
        ck_assert_msg(kf == cases[i].keep_found, "keep at %lld", (long long)cases[i].at);
        if (kf)
            ck_assert_int_eq(mvcc_rev_cmp(keep, cases[i].keep), 0);
        /* reads at or above the compaction point are unchanged */
        key_index *ref = fixture_ki();
        ki_compact(ki, cases[i].at);
        ck_assert(ki_is_empty(ki) == cases[i].empty_after);
        for (int64_t r = cases[i].at; r < 20; r++) {
            mvcc_rev m1, m2, c1, c2;
            int64_t v1, v2;
            bool f1 = ki_get(ki, r, &m1, &c1, &v1);
            bool f2 = ki_get(ref, r, &m2, &c2, &v2);
            ck_assert_msg(f1 == f2, "compact %lld read %lld", (long long)cases[i].at,
                          (long long)r);
            if (f1) {
                ck_assert_int_eq(mvcc_rev_cmp(m1, m2), 0);
                ck_assert_int_eq(mvcc_rev_cmp(c1, c2), 0);
                ck_assert_int_eq(v1, v2);
            }
        }
        if (kf)
            ck_assert(ki_has_rev(ki, keep));
        /* revisions below the kept one are gone */
        ck_assert(!ki_has_rev(ki, R(1, 0)));
        if (cases[i].at >= 4)
            ck_assert(!ki_has_rev(ki, R(2, 0)));
        if (cases[i].first_readable)
            ck_assert(ki_get(ki, cases[i].first_readable, NULL, NULL, NULL));
        ki_free(ki);
        ki_free(ref);
    }
}
END_TEST

START_TEST(test_restore_then_put_continues_version)
{
    key_index *ki = ki_new(S("k"));
    ki_restore(ki, R(5, 0), R(9, 0), 3);
    mvcc_rev mod, created;
    int64_t ver;
    ck_assert(ki_get(ki, 9, &mod, &created, &ver));
    ck_assert_int_eq(ver, 3);
    ck_assert_int_eq(created.main, 5);
    ck_assert_int_eq(ki_put(ki, R(11, 0)), 0);
    ck_assert(ki_get(ki, 11, &mod, &created, &ver));
    ck_assert_int_eq(ver, 4);
    ck_assert_int_eq(created.main, 5);
    ck_assert(!ki_get(ki, 8, NULL, NULL, NULL) || true);
    ki_free(ki);
}
END_TEST

START_TEST(test_many_revisions_grow_and_shrink)
{
    key_index *ki = ki_new(S("k"));
    for (int i = 1; i <= 1000; i++)
        ck_assert_int_eq(ki_put(ki, R(i, 0)), 0);
    size_t big = ki_bytes(ki);
    ki_compact(ki, 1000);
    ck_assert_uint_lt(ki_bytes(ki), big);
    uint32_t n;
    const mvcc_rev *r = ki_gen_revs(ki, 0, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(r[0].main, 1000);
    int64_t ver;
    ck_assert(ki_get(ki, 1000, NULL, NULL, &ver));
    ck_assert_int_eq(ver, 1000);
    ki_free(ki);
}
END_TEST

START_TEST(test_put_allocation_failure_changes_nothing)
{
    key_index *ki = ki_new(S("k"));
    ck_assert_int_eq(ki_put(ki, R(1, 0)), 0);
    metcd_mem_fail_after(0);
    ck_assert_int_eq(ki_put(ki, R(2, 0)), MVCC_ENOMEM);
    metcd_mem_fail_after(0);
    ck_assert_int_eq(ki_tombstone(ki, R(2, 0)), MVCC_ENOMEM);
    metcd_mem_fail_after(-1);
    int64_t ver;
    mvcc_rev mod;
    ck_assert(ki_get(ki, 5, &mod, NULL, &ver));
    ck_assert_int_eq(mod.main, 1);
    ck_assert_int_eq(ver, 1);
    ki_free(ki);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mvcc/key_index");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_get_at_every_revision);
    tcase_add_test(tc, test_tombstone_of_dead_key_fails);
    tcase_add_test(tc, test_compact_and_keep);
    tcase_add_test(tc, test_restore_then_put_continues_version);
    tcase_add_test(tc, test_many_revisions_grow_and_shrink);
    tcase_add_test(tc, test_put_allocation_failure_changes_nothing);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
