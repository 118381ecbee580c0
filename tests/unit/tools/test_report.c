/* Unit tests of metcd-bench's report: percentiles, summary, histogram,
 * error table, text and JSON output. */
#include "tools/bench/bench.h"

#include "common/mem.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static struct bench_report *report_of(const uint64_t *ns, size_t n, size_t cap)
{
    struct bench_report *r = NULL;
    ck_assert_int_eq(bench_report_new(&r, cap), 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(bench_report_add(r, ns[i]), 0);
    return r;
}

/* Samples 1..n ns, added in a scrambled order (the summary sorts). */
static struct bench_report *report_1_to_n(size_t n)
{
    struct bench_report *r = NULL;
    ck_assert_int_eq(bench_report_new(&r, n), 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(bench_report_add(r, (i * 7919) % n + 1), 0);
    return r;
}

#define NS(x) ((double)(x) / 1e9)

START_TEST(test_percentiles_are_nearest_rank)
{
    struct bench_report *r = report_1_to_n(100);
    struct bench_summary s;
    bench_report_summarize(r, 1000000000, &s);
    /* With samples 1..100, the p-th percentile is ceil(p) (nearest rank). */
    const double want[BENCH_N_PCTS] = {10, 25, 50, 75, 90, 95, 99, 100};
    for (int i = 0; i < BENCH_N_PCTS; i++)
        ck_assert_double_eq_tol(s.pct[i], NS(want[i]), 1e-15);
    bench_report_free(r);

    r = report_1_to_n(1000);
    bench_report_summarize(r, 1000000000, &s);
    ck_assert_double_eq_tol(s.pct[BENCH_N_PCTS - 1], NS(999), 1e-15); /* 99.9% */
    ck_assert_double_eq_tol(s.pct[2], NS(500), 1e-15);                /* 50% */
    bench_report_free(r);
}
END_TEST

START_TEST(test_percentiles_of_one_sample)
{
    uint64_t one = 4242;
    struct bench_report *r = report_of(&one, 1, 1);
    struct bench_summary s;
    bench_report_summarize(r, 1000, &s);
    for (int i = 0; i < BENCH_N_PCTS; i++)
        ck_assert_double_eq(s.pct[i], NS(4242));
    ck_assert_double_eq(s.fastest, NS(4242));
    ck_assert_double_eq(s.slowest, NS(4242));
    ck_assert_double_eq(s.stddev, 0);
    bench_report_free(r);
}
END_TEST

START_TEST(test_percentiles_never_decrease)
{
    struct bench_report *r = NULL;
    ck_assert_int_eq(bench_report_new(&r, 5000), 0);
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < 5000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ck_assert_int_eq(bench_report_add(r, x % 1000000), 0);
    }
    struct bench_summary s;
    bench_report_summarize(r, 2000000000, &s);
    ck_assert(s.fastest <= s.pct[0]);
    for (int i = 1; i < BENCH_N_PCTS; i++)
        ck_assert(s.pct[i - 1] <= s.pct[i]);
    ck_assert(s.pct[BENCH_N_PCTS - 1] <= s.slowest);
    bench_report_free(r);
}
END_TEST

START_TEST(test_summary_mean_stddev_rps)
{
    /* Mean 5, population standard deviation 2. */
    const uint64_t ns[] = {2000, 4000, 4000, 4000, 5000, 5000, 7000, 9000};
    struct bench_report *r = report_of(ns, 8, 8);
    struct bench_summary s;
    bench_report_summarize(r, 2000000000, &s); /* 2 s */
    ck_assert_uint_eq(s.ok, 8);
    ck_assert_uint_eq(s.failed, 0);
    ck_assert_double_eq_tol(s.total, 2.0, 1e-12);
    ck_assert_double_eq_tol(s.average, 5e-6, 1e-15);
    ck_assert_double_eq_tol(s.stddev, 2e-6, 1e-15);
    ck_assert_double_eq_tol(s.fastest, 2e-6, 1e-15);
    ck_assert_double_eq_tol(s.slowest, 9e-6, 1e-15);
    ck_assert_double_eq_tol(s.rps, 4.0, 1e-12); /* successes / wall seconds */
    ck_assert_uint_eq(s.n_errors, 0);
    bench_report_free(r);
}
END_TEST

START_TEST(test_rps_counts_only_successes)
{
    const uint64_t ns[] = {1000, 1000};
    struct bench_report *r = report_of(ns, 2, 10);
    bench_report_error(r, "UNAVAILABLE: x");
    bench_report_error(r, "UNAVAILABLE: x");
    ck_assert_uint_eq(bench_report_done(r), 4);
    struct bench_summary s;
    bench_report_summarize(r, 1000000000, &s);
    ck_assert_uint_eq(s.ok, 2);
    ck_assert_uint_eq(s.failed, 2);
    ck_assert_double_eq_tol(s.rps, 2.0, 1e-12);
    bench_report_free(r);
}
END_TEST

START_TEST(test_histogram_equal_width_buckets)
{
    /* 0, 10, ..., 100 ns: eleven samples over ten buckets of 10 ns each.
     * Bucket 0 = [0, 10] holds 0 and 10; bucket i > 0 = (10i, 10(i+1)]. */
    uint64_t ns[11];
    for (int i = 0; i <= 10; i++)
        ns[i] = (uint64_t)(100 - 10 * i);
    struct bench_report *r = report_of(ns, 11, 11);
    struct bench_summary s;
    bench_report_summarize(r, 1000, &s);
    ck_assert_uint_eq(s.count[0], 2);
    for (int i = 1; i < BENCH_N_BUCKETS; i++) {
        ck_assert_uint_eq(s.count[i], 1);
        ck_assert_double_eq_tol(s.upper[i], NS(10 * (i + 1)), 1e-18);
    }
    ck_assert_double_eq(s.upper[BENCH_N_BUCKETS - 1], s.slowest);
    bench_report_free(r);
}
END_TEST

START_TEST(test_histogram_counts_every_sample)
{
    struct bench_report *r = NULL;
    ck_assert_int_eq(bench_report_new(&r, 10007), 0);
    uint64_t x = 1;
    for (int i = 0; i < 10007; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        ck_assert_int_eq(bench_report_add(r, 1000 + (x >> 40)), 0);
    }
    struct bench_summary s;
    bench_report_summarize(r, 1000, &s);
    uint64_t sum = 0;
    for (int i = 0; i < BENCH_N_BUCKETS; i++) {
        sum += s.count[i];
        if (i)
            ck_assert(s.upper[i - 1] <= s.upper[i]);
    }
    ck_assert_uint_eq(sum, 10007);
    ck_assert_double_eq(s.upper[BENCH_N_BUCKETS - 1], s.slowest);
    bench_report_free(r);
}
END_TEST

START_TEST(test_histogram_all_equal_samples)
{
    const uint64_t ns[] = {500, 500, 500};
    struct bench_report *r = report_of(ns, 3, 3);
    struct bench_summary s;
    bench_report_summarize(r, 1000, &s);
    ck_assert_uint_eq(s.count[0], 3);
    for (int i = 1; i < BENCH_N_BUCKETS; i++)
        ck_assert_uint_eq(s.count[i], 0);
    bench_report_free(r);
}
END_TEST

START_TEST(test_capacity_is_a_bound)
{
    struct bench_report *r = NULL;
    ck_assert_int_eq(bench_report_new(&r, 2), 0);
    ck_assert_int_eq(bench_report_add(r, 1), 0);
    ck_assert_int_eq(bench_report_add(r, 2), 0);
    ck_assert_int_eq(bench_report_add(r, 3), BENCH_ERR_FULL);
    struct bench_summary s;
    bench_report_summarize(r, 10, &s);
    ck_assert_uint_eq(s.ok, 2);
    ck_assert_double_eq(s.slowest, NS(2));
    bench_report_free(r);
    ck_assert_int_eq(bench_report_new(&r, 0), BENCH_ERR_INVAL);
    ck_assert_int_eq(bench_report_new(&r, SIZE_MAX), BENCH_ERR_INVAL);
    bench_report_free(NULL);
}
END_TEST

START_TEST(test_new_unwinds_on_every_allocation_failure)
{
    long before = metcd_mem_count();
    struct bench_report *r = NULL;
    ck_assert_int_eq(bench_report_new(&r, 16), 0);
    long allocs = metcd_mem_count() - before;
    bench_report_free(r);
    ck_assert_int_gt(allocs, 0);
    for (long i = 0; i < allocs; i++) {
        r = NULL;
        metcd_mem_fail_after(i);
        ck_assert_int_eq(bench_report_new(&r, 16), BENCH_ERR_NOMEM);
        ck_assert_ptr_null(r);
    }
    metcd_mem_fail_after(-1);
}
END_TEST

START_TEST(test_errors_by_message_most_frequent_first)
{
    struct bench_report *r = NULL;
    ck_assert_int_eq(bench_report_new(&r, 1), 0);
    bench_report_error(r, "A");
    bench_report_error(r, "B");
    bench_report_error(r, "B");
    bench_report_error(r, "C");
    bench_report_error(r, NULL);
    bench_report_error(r, "B");
    bench_report_error(r, "C");
    struct bench_summary s;
    bench_report_summarize(r, 1000, &s);
    ck_assert_uint_eq(s.failed, 7);
    ck_assert_uint_eq(s.n_errors, 4);
    ck_assert_str_eq(s.errors[0].msg, "B");
    ck_assert_uint_eq(s.errors[0].count, 3);
    ck_assert_str_eq(s.errors[1].msg, "C");
    ck_assert_uint_eq(s.errors[1].count, 2);
    ck_assert_str_eq(s.errors[2].msg, "A"); /* tie with "": first seen first */
    ck_assert_str_eq(s.errors[3].msg, "");
    bench_report_free(r);
}
END_TEST

START_TEST(test_error_table_is_bounded)
{
    struct bench_report *r = NULL;
    ck_assert_int_eq(bench_report_new(&r, 1), 0);
    char msg[32];
    for (int i = 0; i < BENCH_MAX_ERROR_KINDS + 10; i++) {
        snprintf(msg, sizeof msg, "error %d", i);
        bench_report_error(r, msg);
    }
    bench_report_error(r, "error 0"); /* known kind: still counted by name */
    struct bench_summary s;
    bench_report_summarize(r, 1000, &s);
    ck_assert_uint_eq(s.failed, BENCH_MAX_ERROR_KINDS + 11);
    ck_assert_uint_eq(s.n_errors, BENCH_MAX_ERROR_KINDS + 1);
    ck_assert_str_eq(s.errors[0].msg, "error 0");
    ck_assert_uint_eq(s.errors[0].count, 2);
    ck_assert_str_eq(s.errors[s.n_errors - 1].msg, BENCH_OTHER_ERRORS);
    ck_assert_uint_eq(s.errors[s.n_errors - 1].count, 10);
    bench_report_free(r);
}
END_TEST

START_TEST(test_error_copy_failure_is_still_counted)
{
    struct bench_report *r = NULL;
    ck_assert_int_eq(bench_report_new(&r, 1), 0);
    metcd_mem_fail_after(0);
    bench_report_error(r, "lost copy");
    metcd_mem_fail_after(-1);
    struct bench_summary s;
    bench_report_summarize(r, 1000, &s);
    ck_assert_uint_eq(s.failed, 1);
    ck_assert_uint_eq(s.n_errors, 1);
    ck_assert_str_eq(s.errors[0].msg, BENCH_OTHER_ERRORS);
    bench_report_free(r);
}
END_TEST

static char *print_text(const struct bench_summary *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(bench_summary_print(s, f), 0);
    fclose(f);
    return buf;
}

START_TEST(test_text_output_sections)
{
    struct bench_report *r = report_1_to_n(1000);
    bench_report_error(r, "UNAVAILABLE: connection refused");
    struct bench_summary s;
    bench_report_summarize(r, 500000000, &s);
    char *t = print_text(&s);
    ck_assert_ptr_nonnull(strstr(t, "\nSummary:\n  Total:\t0.5000 secs.\n"));
    ck_assert_ptr_nonnull(strstr(t, "  Requests/sec:\t2000.0000\n"));
    ck_assert_ptr_nonnull(strstr(t, "\nResponse time histogram:\n"));
    ck_assert_ptr_nonnull(strstr(t, "  0.0000 [100]\t|"));
    ck_assert_ptr_nonnull(strstr(t, "\nLatency distribution:\n  10% in 0.0000 secs.\n"));
    ck_assert_ptr_nonnull(strstr(t, "  99.9% in 0.0000 secs.\n"));
    ck_assert_ptr_nonnull(
        strstr(t, "\nError distribution:\n  [1]\tUNAVAILABLE: connection refused\n"));
    /* Fullest bucket: a 40-mark bar. */
    char bar[40 * 3 + 1] = "";
    for (int i = 0; i < 40; i++)
        strcat(bar, "\xe2\x88\x8e");
    ck_assert_ptr_nonnull(strstr(t, bar));
    free(t);
    bench_report_free(r);
}
END_TEST

START_TEST(test_text_output_without_successes)
{
    struct bench_report *r = NULL;
    ck_assert_int_eq(bench_report_new(&r, 4), 0);
    bench_report_error(r, "DEADLINE_EXCEEDED: context deadline exceeded");
    struct bench_summary s;
    bench_report_summarize(r, 1000, &s);
    ck_assert_double_eq(s.rps, 0);
    ck_assert_double_eq(s.slowest, 0);
    char *t = print_text(&s);
    ck_assert_ptr_null(strstr(t, "Latency distribution"));
    ck_assert_ptr_nonnull(strstr(t, "no successful request (1 failed)"));
    ck_assert_ptr_nonnull(strstr(t, "[1]\tDEADLINE_EXCEEDED: context deadline exceeded\n"));
    free(t);
    bench_report_free(r);
}
END_TEST

START_TEST(test_json_output_round_trips)
{
    const uint64_t ns[] = {1000000, 2000000, 3000000, 4000000};
    struct bench_report *r = report_of(ns, 4, 4);
    bench_report_error(r, "quote \" and tab \t");
    struct bench_summary s;
    bench_report_summarize(r, 1000000000, &s);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(bench_summary_print_json(&s, "{\"mode\":\"put\",\"clients\":64}", f), 0);
    fclose(f);
    ck_assert_uint_gt(len, 0);
    ck_assert_int_eq(buf[len - 1], '\n');
    json_error_t jerr;
    json_t *j = json_loads(buf, 0, &jerr);
    ck_assert_msg(j != NULL, "%s", jerr.text);
    ck_assert_str_eq(json_string_value(json_object_get(j, "mode")), "put");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "clients")), 64);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "ok")), 4);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "failed")), 1);
    ck_assert_double_eq_tol(json_real_value(json_object_get(j, "requests_per_sec")), 4, 1e-9);
    ck_assert_double_eq_tol(json_real_value(json_object_get(j, "average_s")), 0.0025, 1e-12);
    ck_assert_double_eq_tol(json_real_value(json_object_get(j, "slowest_s")), 0.004, 1e-12);
    json_t *h = json_object_get(j, "histogram");
    ck_assert_uint_eq(json_array_size(h), BENCH_N_BUCKETS);
    json_t *p = json_object_get(j, "percentiles");
    ck_assert_uint_eq(json_array_size(p), BENCH_N_PCTS);
    json_t *p50 = json_array_get(p, 2);
    ck_assert_double_eq(json_real_value(json_object_get(p50, "percent")), 50);
    ck_assert_double_eq_tol(json_real_value(json_object_get(p50, "s")), 0.002, 1e-12);
    json_t *e = json_array_get(json_object_get(j, "errors"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(e, "message")), "quote \" and tab \t");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "count")), 1);
    json_decref(j);
    free(buf);
    bench_report_free(r);
}
END_TEST

START_TEST(test_json_extra_must_be_an_object)
{
    struct bench_report *r = report_1_to_n(3);
    struct bench_summary s;
    bench_report_summarize(r, 1000, &s);
    FILE *f = fopen("/dev/null", "w");
    ck_assert_int_eq(bench_summary_print_json(&s, "[1,2]", f), BENCH_ERR_INVAL);
    ck_assert_int_eq(bench_summary_print_json(&s, "{not json", f), BENCH_ERR_INVAL);
    ck_assert_int_eq(bench_summary_print_json(&s, NULL, f), 0);
    fclose(f);
    bench_report_free(r);
}
END_TEST

/* Two runs: `fast` has 1..4 ms latencies and 4 requests/s, `slow` 2..8 ms,
 * 2 requests/s and one error. */
static void two_runs(struct bench_report **rf, struct bench_report **rs, struct bench_summary *f,
                     struct bench_summary *sl)
{
    const uint64_t fast[] = {1000000, 2000000, 3000000, 4000000};
    const uint64_t slow[] = {2000000, 4000000, 6000000, 8000000};
    *rf = report_of(fast, 4, 4);
    *rs = report_of(slow, 4, 4);
    bench_report_error(*rs, "UNAVAILABLE: x");
    bench_report_summarize(*rf, 1000000000, f);
    bench_report_summarize(*rs, 2000000000, sl);
}

static char *print_compare(const struct bench_summary *a, const struct bench_summary *b)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(bench_compare_print(a, b, f), 0);
    fclose(f);
    return buf;
}

START_TEST(test_compare_table_rows_and_ratios)
{
    struct bench_report *rf, *rs;
    struct bench_summary f, sl;
    two_runs(&rf, &rs, &f, &sl);
    char *t = print_compare(&f, &sl);
    ck_assert_msg(strstr(t, "\nComparison") != NULL, "%s", t);
    ck_assert_msg(strstr(t, "                          first         second   first/second  "
                            "better\n") != NULL,
                  "%s", t);
    /* rps 4 vs 2: first better; latencies half: ratio 0.50, first better */
    ck_assert_msg(strstr(t, "  Requests/sec              4.0            2.0           2.00"
                            "  first\n") != NULL,
                  "%s", t);
    ck_assert_msg(strstr(t, "  Average (ms)            2.500          5.000           0.50"
                            "  first\n") != NULL,
                  "%s", t);
    ck_assert_msg(strstr(t, "  p50 (ms)                2.000          4.000           0.50"
                            "  first\n") != NULL,
                  "%s", t);
    ck_assert_msg(strstr(t, "  p90 (ms)                4.000          8.000") != NULL, "%s", t);
    ck_assert_msg(strstr(t, "  p99 (ms) ") != NULL, "%s", t);
    ck_assert_msg(strstr(t, "  p99.9 (ms) ") != NULL, "%s", t);
    /* errors 0 vs 1: ratio 0.00, first better */
    ck_assert_msg(strstr(t, "  errors                      0              1           0.00"
                            "  first\n") != NULL,
                  "%s", t);
    free(t);
    /* The other way round: second better, ratios inverted, errors 1/0 has no ratio. */
    t = print_compare(&sl, &f);
    ck_assert_msg(strstr(t, "  Requests/sec              2.0            4.0           0.50"
                            "  second\n") != NULL,
                  "%s", t);
    ck_assert_msg(strstr(t, "  p50 (ms)                4.000          2.000           2.00"
                            "  second\n") != NULL,
                  "%s", t);
    ck_assert_msg(strstr(t, "  errors                      1              0              -"
                            "  second\n") != NULL,
                  "%s", t);
    free(t);
    /* Equal runs: "same"; errors 0/0 has no ratio. */
    t = print_compare(&f, &f);
    ck_assert_msg(strstr(t, "           1.00  same\n") != NULL, "%s", t);
    ck_assert_msg(strstr(t, "  errors                      0              0              -"
                            "  same\n") != NULL,
                  "%s", t);
    free(t);
    bench_report_free(rf);
    bench_report_free(rs);
}
END_TEST

START_TEST(test_compare_without_successes_has_no_latency_ratio)
{
    struct bench_report *rf, *rs, *none = NULL;
    struct bench_summary f, sl, n;
    two_runs(&rf, &rs, &f, &sl);
    ck_assert_int_eq(bench_report_new(&none, 4), 0);
    bench_report_error(none, "UNAVAILABLE: refused");
    bench_report_summarize(none, 1000, &n);
    char *t = print_compare(&f, &n);
    ck_assert_msg(strstr(t, "  Requests/sec              4.0            0.0              -"
                            "  first\n") != NULL,
                  "%s", t);
    ck_assert_msg(strstr(t, "  p99 (ms)                    -              -              -"
                            "  -\n") != NULL,
                  "%s", t);
    free(t);
    bench_report_free(none);
    bench_report_free(rf);
    bench_report_free(rs);
}
END_TEST

START_TEST(test_compare_json_holds_both_runs_and_ratios)
{
    struct bench_report *rf, *rs;
    struct bench_summary f, sl;
    two_runs(&rf, &rs, &f, &sl);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    ck_assert_int_eq(bench_compare_print_json(&f, "{\"endpoints\":[\"a:1\"]}", &sl,
                                              "{\"endpoints\":[\"b:2\"]}", out),
                     0);
    fclose(out);
    ck_assert_int_eq(buf[len - 1], '\n');
    ck_assert_ptr_null(memchr(buf, '\n', len - 1)); /* one line */
    json_error_t jerr;
    json_t *j = json_loads(buf, 0, &jerr);
    ck_assert_msg(j != NULL, "%s", jerr.text);
    json_t *a = json_object_get(j, "first"), *b = json_object_get(j, "second");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(a, "endpoints"), 0)), "a:1");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(b, "endpoints"), 0)), "b:2");
    ck_assert_int_eq(json_integer_value(json_object_get(a, "ok")), 4);
    ck_assert_int_eq(json_integer_value(json_object_get(b, "failed")), 1);
    ck_assert_uint_eq(json_array_size(json_object_get(b, "percentiles")), BENCH_N_PCTS);
    json_t *q = json_object_get(j, "ratios"), *w = json_object_get(j, "better");
    ck_assert_double_eq_tol(json_real_value(json_object_get(q, "requests_per_sec")), 2, 1e-9);
    ck_assert_double_eq_tol(json_real_value(json_object_get(q, "average")), 0.5, 1e-9);
    ck_assert_double_eq_tol(json_real_value(json_object_get(q, "p50")), 0.5, 1e-9);
    ck_assert_double_eq_tol(json_real_value(json_object_get(q, "p90")), 0.5, 1e-9);
    ck_assert_double_eq_tol(json_real_value(json_object_get(q, "p99")), 0.5, 1e-9);
    ck_assert_double_eq_tol(json_real_value(json_object_get(q, "p99.9")), 0.5, 1e-9);
    ck_assert_double_eq_tol(json_real_value(json_object_get(q, "errors")), 0, 1e-9);
    ck_assert_str_eq(json_string_value(json_object_get(w, "requests_per_sec")), "first");
    ck_assert_str_eq(json_string_value(json_object_get(w, "p99")), "first");
    json_decref(j);
    free(buf);
    /* errors 1/0: null ratio; a bad extra is refused. */
    out = open_memstream(&buf, &len);
    ck_assert_int_eq(bench_compare_print_json(&sl, NULL, &f, NULL, out), 0);
    fclose(out);
    j = json_loads(buf, 0, &jerr);
    ck_assert_ptr_nonnull(j);
    ck_assert(json_is_null(json_object_get(json_object_get(j, "ratios"), "errors")));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "better"), "errors")),
                     "second");
    json_decref(j);
    free(buf);
    out = fopen("/dev/null", "w");
    ck_assert_int_eq(bench_compare_print_json(&f, NULL, &sl, "[1]", out), BENCH_ERR_INVAL);
    ck_assert_int_eq(bench_compare_print_json(&f, "{x", &sl, NULL, out), BENCH_ERR_INVAL);
    fclose(out);
    bench_report_free(rf);
    bench_report_free(rs);
}
END_TEST

START_TEST(test_strerror_names_every_code)
{
    ck_assert_str_eq(bench_strerror(BENCH_ERR_FULL), "sample capacity reached");
    ck_assert_str_eq(bench_strerror(BENCH_ERR_NOMEM), "out of memory");
    ck_assert_str_eq(bench_strerror(-1), "unknown error");
}
END_TEST

static Suite *report_suite(void)
{
    Suite *s = suite_create("bench_report");
    TCase *tc = tcase_create("report");
    tcase_add_test(tc, test_percentiles_are_nearest_rank);
    tcase_add_test(tc, test_percentiles_of_one_sample);
    tcase_add_test(tc, test_percentiles_never_decrease);
    tcase_add_test(tc, test_summary_mean_stddev_rps);
    tcase_add_test(tc, test_rps_counts_only_successes);
    tcase_add_test(tc, test_histogram_equal_width_buckets);
    tcase_add_test(tc, test_histogram_counts_every_sample);
    tcase_add_test(tc, test_histogram_all_equal_samples);
    tcase_add_test(tc, test_capacity_is_a_bound);
    tcase_add_test(tc, test_new_unwinds_on_every_allocation_failure);
    tcase_add_test(tc, test_errors_by_message_most_frequent_first);
    tcase_add_test(tc, test_error_table_is_bounded);
    tcase_add_test(tc, test_error_copy_failure_is_still_counted);
    tcase_add_test(tc, test_text_output_sections);
    tcase_add_test(tc, test_text_output_without_successes);
    tcase_add_test(tc, test_json_output_round_trips);
    tcase_add_test(tc, test_json_extra_must_be_an_object);
    tcase_add_test(tc, test_compare_table_rows_and_ratios);
    tcase_add_test(tc, test_compare_without_successes_has_no_latency_ratio);
    tcase_add_test(tc, test_compare_json_holds_both_runs_and_ratios);
    tcase_add_test(tc, test_strerror_names_every_code);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(report_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
