/* Revision encoding: etcd's 17-byte layout, ordering, tombstone mark. */
#include "mvcc/internal.h"
#include "util.h"

START_TEST(test_layout_matches_etcd)
{
    uint8_t b[18];
    size_t n = mvcc_rev_encode((mvcc_rev){0x0102030405060708LL, 9}, 0, b);
    ck_assert_uint_eq(n, 17);
    const uint8_t want[17] = {1, 2, 3, 4, 5, 6, 7, 8, '_', 0, 0, 0, 0, 0, 0, 0, 9};
    ck_assert_int_eq(memcmp(b, want, 17), 0);
    n = mvcc_rev_encode((mvcc_rev){5, 1}, 1, b);
    ck_assert_uint_eq(n, 18);
    ck_assert_int_eq(b[17], 't');
    mvcc_rev r;
    int tomb;
    ck_assert_int_eq(mvcc_rev_decode(b, n, &r, &tomb), 0);
    ck_assert_int_eq(r.main, 5);
    ck_assert_int_eq(r.sub, 1);
    ck_assert_int_eq(tomb, 1);
}
END_TEST

START_TEST(test_byte_order_is_revision_order)
{
    mvcc_rev revs[] = {{1, 0}, {1, 1}, {1, 255}, {2, 0}, {255, 0}, {256, 0}, {1LL << 40, 3}};
    size_t n = sizeof(revs) / sizeof(revs[0]);
    for (size_t i = 0; i + 1 < n; i++) {
        uint8_t a[18], b[18];
        mvcc_rev_encode(revs[i], 0, a);
        mvcc_rev_encode(revs[i + 1], 0, b);
        ck_assert_int_lt(memcmp(a, b, 17), 0);
        ck_assert_int_lt(mvcc_rev_cmp(revs[i], revs[i + 1]), 0);
    }
}
END_TEST

START_TEST(test_bad_encodings_rejected)
{
    uint8_t b[18] = {0};
    mvcc_rev r;
    ck_assert_int_eq(mvcc_rev_decode(b, 16, &r, NULL), MVCC_ECORRUPT);
    ck_assert_int_eq(mvcc_rev_decode(b, 17, &r, NULL), MVCC_ECORRUPT); /* no '_' */
    mvcc_rev_encode((mvcc_rev){1, 1}, 0, b);
    b[17] = 'x';
    ck_assert_int_eq(mvcc_rev_decode(b, 18, &r, NULL), MVCC_ECORRUPT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mvcc/revision");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_layout_matches_etcd);
    tcase_add_test(tc, test_byte_order_is_revision_order);
    tcase_add_test(tc, test_bad_encodings_rejected);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
