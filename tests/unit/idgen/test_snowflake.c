/* The snowflake layout and the Generator with time passed in: bit layout,
 * epoch bounds, sequence exhaustion, the three drift buckets, the stored
 * bound, and IDs that only grow. */
#include "idgen/idgen.h"

#include <check.h>
#include <stdlib.h>

#define EPOCH IDGEN_DEFAULT_EPOCH_MS
#define T0 1700000000000LL /* 2023-11-14 */

START_TEST(test_layout)
{
    uint64_t id;
    ck_assert_int_eq(idgen_compose(EPOCH + 5, EPOCH, 3, 7, &id), 0);
    ck_assert_uint_eq(id, (5ULL << 22) | (3ULL << 12) | 7);
    idgen_decoded d;
    ck_assert_int_eq(idgen_decode(id, EPOCH, &d), 0);
    ck_assert_int_eq(d.time_ms, EPOCH + 5);
    ck_assert_uint_eq(d.worker, 3);
    ck_assert_uint_eq(d.sequence, 7);
    /* the largest: 41 bits of time, worker 1023, sequence 4095, sign 0 */
    ck_assert_int_eq(idgen_compose(EPOCH + (1LL << 41) - 1, EPOCH, 1023, 4095, &id), 0);
    ck_assert_uint_eq(id, (uint64_t)INT64_MAX);
    ck_assert_int_eq(idgen_decode(id, EPOCH, &d), 0);
    ck_assert_int_eq(d.time_ms, EPOCH + (1LL << 41) - 1);
    ck_assert_uint_eq(d.worker, 1023);
    ck_assert_uint_eq(d.sequence, 4095);
    ck_assert_int_eq(idgen_decode(1ULL << 63, EPOCH, &d), IDGEN_EINVAL);
    ck_assert_int_eq(idgen_compose(T0, EPOCH, 1024, 0, &id), IDGEN_EINVAL);
    ck_assert_int_eq(idgen_compose(T0, EPOCH, 0, 4096, &id), IDGEN_EINVAL);
    /* Leaf's example: an ID Leaf issued decodes with the same epoch */
    ck_assert_int_eq(idgen_decode(1234567890123456789ULL, EPOCH, &d), 0);
    ck_assert_int_eq(d.time_ms, (int64_t)(1234567890123456789ULL >> 22) + EPOCH);
}
END_TEST

START_TEST(test_epoch_bounds)
{
    idgen_gen g;
    idgen_gen_init(&g, EPOCH, 1, 1000, 5000);
    g.limit_ts = INT64_MAX;
    idgen_range r;
    int64_t wait;
    ck_assert_int_eq(idgen_gen_next(&g, EPOCH - 1, 1, &r, &wait), IDGEN_EEPOCH);
    ck_assert_int_eq(idgen_gen_next(&g, EPOCH, 1, &r, &wait), 0);
    ck_assert_uint_eq(r.start, 1ULL << 12);
    int64_t last = EPOCH + (1LL << 41) - 1;
    ck_assert_int_eq(idgen_gen_next(&g, last, 1, &r, &wait), 0);
    ck_assert_uint_eq(r.start >> 63, 0);
    ck_assert_int_eq(idgen_gen_next(&g, last + 1, 1, &r, &wait), IDGEN_EEPOCH);
    uint64_t id;
    ck_assert_int_eq(idgen_compose(last + 1, EPOCH, 0, 0, &id), IDGEN_EEPOCH);
    ck_assert_int_eq(idgen_compose(EPOCH - 1, EPOCH, 0, 0, &id), IDGEN_EEPOCH);
    ck_assert_int_eq(idgen_gen_next(&g, last, 0, &r, &wait), IDGEN_EINVAL);
}
END_TEST

START_TEST(test_sequence_exhaustion)
{
    idgen_gen g;
    idgen_gen_init(&g, EPOCH, 9, 1000, 5000);
    g.limit_ts = INT64_MAX;
    idgen_range r;
    int64_t wait;
    uint64_t prev = 0;
    /* 4096 single IDs in one millisecond, consecutive */
    for (uint32_t i = 0; i <= IDGEN_MAX_SEQ; i++) {
        ck_assert_int_eq(idgen_gen_next(&g, T0, 1, &r, &wait), 0);
        ck_assert_uint_eq(r.count, 1);
        if (i)
            ck_assert_uint_eq(r.start, prev + 1);
        prev = r.start;
    }
    ck_assert_int_eq(idgen_gen_next(&g, T0, 1, &r, &wait), IDGEN_EWAIT);
    ck_assert_int_eq(wait, 1);
    ck_assert_int_eq(idgen_gen_next(&g, T0 + 1, 1, &r, &wait), 0);
    idgen_decoded d;
    idgen_decode(r.start, EPOCH, &d);
    ck_assert_uint_eq(d.sequence, 0);
    ck_assert_int_eq(d.time_ms, T0 + 1);
    ck_assert_uint_gt(r.start, prev);
    /* a batch takes what is left of the millisecond */
    ck_assert_int_eq(idgen_gen_next(&g, T0 + 1, 5000, &r, &wait), 0);
    ck_assert_uint_eq(r.count, 4095);
    ck_assert_int_eq(idgen_gen_next(&g, T0 + 1, 5000, &r, &wait), IDGEN_EWAIT);
    ck_assert_int_eq(idgen_gen_next(&g, T0 + 2, 5000, &r, &wait), 0);
    ck_assert_uint_eq(r.count, 4096);
}
END_TEST

START_TEST(test_drift_buckets)
{
    idgen_gen g;
    idgen_gen_init(&g, EPOCH, 1, 1000, 5000);
    g.limit_ts = INT64_MAX;
    idgen_range r;
    int64_t wait;
    ck_assert_int_eq(idgen_gen_next(&g, T0, 1, &r, &wait), 0);
    /* behind by up to the block threshold: wait it out */
    ck_assert_int_eq(idgen_gen_next(&g, T0 - 1, 1, &r, &wait), IDGEN_EWAIT);
    ck_assert_int_eq(wait, 1);
    ck_assert_int_eq(idgen_gen_next(&g, T0 - 1000, 1, &r, &wait), IDGEN_EWAIT);
    ck_assert_int_eq(wait, 1000);
    /* up to the error threshold: try later */
    ck_assert_int_eq(idgen_gen_next(&g, T0 - 1001, 1, &r, &wait), IDGEN_EDRIFT);
    ck_assert_int_eq(idgen_gen_next(&g, T0 - 5000, 1, &r, &wait), IDGEN_EDRIFT);
    /* beyond: leave */
    ck_assert_int_eq(idgen_gen_next(&g, T0 - 5001, 1, &r, &wait), IDGEN_EDRIFT_LEAVE);
    ck_assert_int_eq(idgen_gen_next(&g, T0 - 3600000, 1, &r, &wait), IDGEN_EDRIFT_LEAVE);
    /* nothing of that moved the generator */
    ck_assert_int_eq(idgen_gen_last_ts(&g), T0);
    ck_assert_int_eq(idgen_gen_next(&g, T0, 1, &r, &wait), 0);
    idgen_decoded d;
    idgen_decode(r.start, EPOCH, &d);
    ck_assert_uint_eq(d.sequence, 1);
    ck_assert_str_eq(idgen_strerror(IDGEN_EDRIFT), "clock drift. try later");
    ck_assert_str_eq(idgen_strerror(IDGEN_EDRIFT_LEAVE), "clock drift too large to cover");
    ck_assert_str_eq(idgen_strerror(IDGEN_ENOT_READY), "worker is not ready to serve request");
    /* no block bucket: small drifts are errors at once */
    idgen_gen_init(&g, EPOCH, 1, -1, 5000);
    g.limit_ts = INT64_MAX;
    ck_assert_int_eq(idgen_gen_next(&g, T0, 1, &r, &wait), 0);
    ck_assert_int_eq(idgen_gen_next(&g, T0 - 1, 1, &r, &wait), IDGEN_EDRIFT);
}
END_TEST

START_TEST(test_limit_and_floor)
{
    idgen_gen g;
    idgen_gen_init(&g, EPOCH, 2, 1000, 5000);
    idgen_range r;
    int64_t wait;
    ck_assert_int_eq(idgen_gen_next(&g, T0, 1, &r, &wait), IDGEN_ENOT_READY);
    g.limit_ts = T0 + 10;
    ck_assert_int_eq(idgen_gen_next(&g, T0 + 10, 1, &r, &wait), 0);
    ck_assert_int_eq(idgen_gen_next(&g, T0 + 11, 1, &r, &wait), IDGEN_ENOT_READY);
    /* a floor: the next ID comes strictly after it */
    idgen_gen_set_last_ts(&g, T0 + 100);
    idgen_gen_set_last_ts(&g, T0 + 50); /* never lowered */
    ck_assert_int_eq(idgen_gen_last_ts(&g), T0 + 100);
    g.limit_ts = T0 + 1000;
    ck_assert_int_eq(idgen_gen_next(&g, T0 + 100, 1, &r, &wait), IDGEN_EWAIT);
    ck_assert_int_eq(wait, 1);
    ck_assert_int_eq(idgen_gen_next(&g, T0 + 101, 1, &r, &wait), 0);
    idgen_decoded d;
    idgen_decode(r.start, EPOCH, &d);
    ck_assert_int_eq(d.time_ms, T0 + 101);
    ck_assert_uint_eq(d.sequence, 0);
}
END_TEST

/* IDs only grow, whatever the clock does within the block bucket. */
START_TEST(test_monotonic)
{
    idgen_gen g;
    idgen_gen_init(&g, EPOCH, 77, 1000, 5000);
    g.limit_ts = INT64_MAX;
    uint64_t seed = 12345, prev = 0, n = 0;
    int64_t now = T0;
    for (int i = 0; i < 200000; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        int step = (int)((seed >> 33) % 7) - 2; /* -2 .. 4 ms */
        now += step;
        idgen_range r;
        int64_t wait;
        int rc = idgen_gen_next(&g, now, 1 + (seed >> 40) % 300, &r, &wait);
        if (rc == IDGEN_EWAIT)
            continue;
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_gt(r.start, prev);
        prev = r.start + r.count - 1;
        n += r.count;
    }
    ck_assert_uint_gt(n, 1000000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("idgen_snowflake");
    TCase *tc = tcase_create("snowflake");
    tcase_add_test(tc, test_layout);
    tcase_add_test(tc, test_epoch_bounds);
    tcase_add_test(tc, test_sequence_exhaustion);
    tcase_add_test(tc, test_drift_buckets);
    tcase_add_test(tc, test_limit_and_floor);
    tcase_add_test(tc, test_monotonic);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
