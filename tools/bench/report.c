/* tools/bench/report.c - latency samples, error counts and the summary of
 * one metcd-bench run (see bench.h). Samples live in one array sized at
 * creation, so recording on the hot path never allocates. */
#include "tools/bench/bench.h"

#include "common/mem.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const double bench_pcts[BENCH_N_PCTS] = {10, 25, 50, 75, 90, 95, 99, 99.9};

struct error_kind {
    char *msg; /* owned */
    uint64_t count;
};

struct bench_report {
    uint64_t *lat; /* nanoseconds, `cap` slots */
    size_t n, cap;
    struct error_kind kinds[BENCH_MAX_ERROR_KINDS];
    size_t n_kinds;
    uint64_t other; /* errors past the table, or whose copy failed */
    uint64_t failed;
};

const char *bench_strerror(int err)
{
    switch (err) {
    case BENCH_OK:
        return "success";
    case BENCH_ERR_NOMEM:
        return "out of memory";
    case BENCH_ERR_INVAL:
        return "invalid argument";
    case BENCH_ERR_FULL:
        return "sample capacity reached";
    case BENCH_ERR_IO:
        return "write failed";
    default:
        return "unknown error";
    }
}

int bench_report_new(struct bench_report **out, size_t capacity)
{
    if (!out || capacity == 0 || capacity > SIZE_MAX / sizeof(uint64_t))
        return BENCH_ERR_INVAL;
    struct bench_report *r = metcd_calloc(1, sizeof *r);
    if (!r)
        return BENCH_ERR_NOMEM;
    r->lat = metcd_malloc(capacity * sizeof *r->lat);
    if (!r->lat)
        goto err_report;
    r->cap = capacity;
    *out = r;
    return 0;
err_report:
    metcd_free(r);
    return BENCH_ERR_NOMEM;
}

void bench_report_free(struct bench_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_kinds; i++)
        metcd_free(r->kinds[i].msg);
    metcd_free(r->lat);
    metcd_free(r);
}

int bench_report_add(struct bench_report *r, uint64_t latency_ns)
{
    if (r->n == r->cap)
        return BENCH_ERR_FULL;
    r->lat[r->n++] = latency_ns;
    return 0;
}

void bench_report_error(struct bench_report *r, const char *msg)
{
    if (!msg)
        msg = "";
    r->failed++;
    for (size_t i = 0; i < r->n_kinds; i++) {
        if (strcmp(r->kinds[i].msg, msg) == 0) {
            r->kinds[i].count++;
            return;
        }
    }
    if (r->n_kinds == BENCH_MAX_ERROR_KINDS) {
        r->other++;
        return;
    }
    char *copy = metcd_strdup(msg);
    if (!copy) {
        r->other++;
        return;
    }
    r->kinds[r->n_kinds].msg = copy;
    r->kinds[r->n_kinds].count = 1;
    r->n_kinds++;
}

uint64_t bench_report_done(const struct bench_report *r)
{
    return r->n + r->failed;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Index of the nearest-rank p-th percentile among n sorted samples:
 * the smallest rank k (1-based) with k >= p/100 * n. */
static size_t pct_index(double p, size_t n)
{
    double rank = ceil(p / 100.0 * (double)n - 1e-9);
    if (rank < 1)
        rank = 1;
    if (rank > (double)n)
        rank = (double)n;
    return (size_t)rank - 1;
}

static void summarize_errors(const struct bench_report *r, struct bench_summary *s)
{
    s->n_errors = 0;
    for (size_t i = 0; i < r->n_kinds; i++) {
        /* Insertion sort by count, stable: the table holds at most 33. */
        size_t j = s->n_errors;
        while (j > 0 && s->errors[j - 1].count < r->kinds[i].count) {
            s->errors[j] = s->errors[j - 1];
            j--;
        }
        s->errors[j].msg = r->kinds[i].msg;
        s->errors[j].count = r->kinds[i].count;
        s->n_errors++;
    }
    if (r->other) {
        s->errors[s->n_errors].msg = BENCH_OTHER_ERRORS;
        s->errors[s->n_errors].count = r->other;
        s->n_errors++;
    }
}

void bench_report_summarize(struct bench_report *r, uint64_t total_ns, struct bench_summary *s)
{
    memset(s, 0, sizeof *s);
    s->ok = r->n;
    s->failed = r->failed;
    s->total = (double)total_ns / 1e9;
    summarize_errors(r, s);
    size_t n = r->n;
    if (n == 0)
        return;
    qsort(r->lat, n, sizeof *r->lat, cmp_u64);
    uint64_t lo = r->lat[0], hi = r->lat[n - 1];
    s->fastest = (double)lo / 1e9;
    s->slowest = (double)hi / 1e9;
    /* Sum in integer ns: 2^64 ns is 584 years, no overflow in practice. */
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += r->lat[i];
    double mean_ns = (double)sum / (double)n;
    double var = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)r->lat[i] - mean_ns;
        var += d * d;
    }
    s->average = mean_ns / 1e9;
    s->stddev = sqrt(var / (double)n) / 1e9;
    s->rps = total_ns ? (double)n / s->total : 0;
    for (int i = 0; i < BENCH_N_PCTS; i++)
        s->pct[i] = (double)r->lat[pct_index(bench_pcts[i], n)] / 1e9;
    /* Histogram over integer ns bounds so that the bucket of a sample does
     * not depend on rounding: upper bound of bucket i is
     * lo + (hi - lo) * (i + 1) / N, the last one exactly hi. */
    uint64_t span = hi - lo;
    size_t b = 0;
    for (int i = 0; i < BENCH_N_BUCKETS; i++) {
        uint64_t up = lo + (uint64_t)((long double)span * (i + 1) / BENCH_N_BUCKETS);
        if (i == BENCH_N_BUCKETS - 1)
            up = hi;
        s->upper[i] = (double)up / 1e9;
        while (b < n && r->lat[b] <= up) {
            s->count[i]++;
            b++;
        }
    }
}

/* Seconds with 4 decimals, as the summary prints every time. */
#define SEC "%.4f"

int bench_summary_print(const struct bench_summary *s, FILE *out)
{
    if (s->ok > 0) {
        fprintf(out, "\nSummary:\n");
        fprintf(out, "  Total:\t" SEC " secs.\n", s->total);
        fprintf(out, "  Slowest:\t" SEC " secs.\n", s->slowest);
        fprintf(out, "  Fastest:\t" SEC " secs.\n", s->fastest);
        fprintf(out, "  Average:\t" SEC " secs.\n", s->average);
        fprintf(out, "  Stddev:\t" SEC " secs.\n", s->stddev);
        fprintf(out, "  Requests/sec:\t%.4f\n", s->rps);
        uint64_t most = 0;
        for (int i = 0; i < BENCH_N_BUCKETS; i++)
            if (s->count[i] > most)
                most = s->count[i];
        fprintf(out, "\nResponse time histogram:\n");
        for (int i = 0; i < BENCH_N_BUCKETS; i++) {
            /* Bars up to 40 marks, scaled to the fullest bucket. */
            uint64_t len = most ? s->count[i] * 40 / most : 0;
            fprintf(out, "  " SEC " [%" PRIu64 "]\t|", s->upper[i], s->count[i]);
            for (uint64_t k = 0; k < len; k++)
                fputs("\xe2\x88\x8e", out); /* U+220E END OF PROOF */
            fputc('\n', out);
        }
        fprintf(out, "\nLatency distribution:\n");
        for (int i = 0; i < BENCH_N_PCTS; i++)
            fprintf(out, "  %g%% in " SEC " secs.\n", bench_pcts[i], s->pct[i]);
    } else {
        fprintf(out, "\nSummary:\n  no successful request (%" PRIu64 " failed)\n", s->failed);
    }
    if (s->n_errors > 0) {
        fprintf(out, "\nError distribution:\n");
        for (size_t i = 0; i < s->n_errors; i++)
            fprintf(out, "  [%" PRIu64 "]\t%s\n", s->errors[i].count, s->errors[i].msg);
    }
    return ferror(out) ? BENCH_ERR_IO : 0;
}

static int json_set(json_t *obj, const char *key, json_t *v)
{
    return v ? json_object_set_new(obj, key, v) : -1;
}

/* The summary as a JSON object, extra's members first. 0 and *out (a new
 * reference), or BENCH_ERR_INVAL / BENCH_ERR_NOMEM. */
static int summary_json(const struct bench_summary *s, const char *extra, json_t **out)
{
    int rc = BENCH_ERR_NOMEM;
    json_t *root = NULL;
    if (extra) {
        json_error_t jerr;
        root = json_loads(extra, 0, &jerr);
        if (!root || !json_is_object(root)) {
            json_decref(root);
            return BENCH_ERR_INVAL;
        }
    } else {
        root = json_object();
        if (!root)
            return BENCH_ERR_NOMEM;
    }
    json_t *hist = json_array(), *pcts = json_array(), *errs = json_array();
    if (!hist || !pcts || !errs)
        goto err_arrays;
    int bad = 0;
    bad |= json_set(root, "ok", json_integer((json_int_t)s->ok));
    bad |= json_set(root, "failed", json_integer((json_int_t)s->failed));
    bad |= json_set(root, "total_s", json_real(s->total));
    bad |= json_set(root, "slowest_s", json_real(s->slowest));
    bad |= json_set(root, "fastest_s", json_real(s->fastest));
    bad |= json_set(root, "average_s", json_real(s->average));
    bad |= json_set(root, "stddev_s", json_real(s->stddev));
    bad |= json_set(root, "requests_per_sec", json_real(s->rps));
    for (int i = 0; s->ok && i < BENCH_N_BUCKETS; i++)
        bad |= json_array_append_new(
            hist, json_pack("{s:f,s:I}", "le_s", s->upper[i], "count", (json_int_t)s->count[i]));
    for (int i = 0; s->ok && i < BENCH_N_PCTS; i++)
        bad |= json_array_append_new(
            pcts, json_pack("{s:f,s:f}", "percent", bench_pcts[i], "s", s->pct[i]));
    for (size_t i = 0; i < s->n_errors; i++)
        bad |= json_array_append_new(errs, json_pack("{s:s,s:I}", "message", s->errors[i].msg,
                                                     "count", (json_int_t)s->errors[i].count));
    bad |= json_object_set(root, "histogram", hist);
    bad |= json_object_set(root, "percentiles", pcts);
    bad |= json_object_set(root, "errors", errs);
    if (bad)
        goto err_arrays;
    *out = root;
    root = NULL;
    rc = 0;
err_arrays:
    json_decref(errs);
    json_decref(pcts);
    json_decref(hist);
    json_decref(root);
    return rc;
}

static int dump_line(json_t *root, FILE *out)
{
    if (json_dumpf(root, out, JSON_REAL_PRECISION(9)) != 0 || fputc('\n', out) == EOF)
        return BENCH_ERR_IO;
    return ferror(out) ? BENCH_ERR_IO : 0;
}

int bench_summary_print_json(const struct bench_summary *s, const char *extra, FILE *out)
{
    json_t *root = NULL;
    int rc = summary_json(s, extra, &root);
    if (rc != 0)
        return rc;
    rc = dump_line(root, out);
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* --compare                                                                */

/* One row of the comparison: a figure of each run. */
struct cmp_row {
    const char *label; /* text table */
    const char *key;   /* JSON */
    double a, b;
    bool latency; /* milliseconds, lower is better */
    bool higher_better;
    bool defined; /* both runs have the figure (latencies need a success) */
};

#define N_CMP_ROWS 7

/* Indices into bench_pcts of p50, p90, p99, p99.9. */
static const int cmp_pct_index[4] = {2, 4, 6, 7};
static const char *const cmp_pct_label[4] = {"p50", "p90", "p99", "p99.9"};
static const char *const cmp_pct_text[4] = {"p50 (ms)", "p90 (ms)", "p99 (ms)", "p99.9 (ms)"};

static void cmp_rows(const struct bench_summary *x, const struct bench_summary *y,
                     struct cmp_row rows[N_CMP_ROWS])
{
    bool lat = x->ok > 0 && y->ok > 0;
    rows[0] =
        (struct cmp_row){"Requests/sec", "requests_per_sec", x->rps, y->rps, false, true, true};
    rows[1] = (struct cmp_row){"Average (ms)", "average", x->average * 1e3, y->average * 1e3, true,
                               false,          lat};
    for (int i = 0; i < 4; i++) {
        int k = cmp_pct_index[i];
        rows[2 + i] = (struct cmp_row){
            cmp_pct_text[i], cmp_pct_label[i], x->pct[k] * 1e3, y->pct[k] * 1e3, true, false, lat};
    }
    rows[6] = (struct cmp_row){"errors", "errors", (double)x->failed, (double)y->failed, false,
                               false,    true};
}

/* "first", "second", "same", or NULL when the row has no figures. */
static const char *cmp_better(const struct cmp_row *r)
{
    if (!r->defined)
        return NULL;
    if (r->a == r->b)
        return "same";
    bool first = r->higher_better ? r->a > r->b : r->a < r->b;
    return first ? "first" : "second";
}

/* Ratio first/second; false when the row has none (undefined, or 0 below). */
static bool cmp_ratio(const struct cmp_row *r, double *ratio)
{
    if (!r->defined || r->b == 0)
        return false;
    *ratio = r->a / r->b;
    return true;
}

int bench_compare_print(const struct bench_summary *first, const struct bench_summary *second,
                        FILE *out)
{
    struct cmp_row rows[N_CMP_ROWS];
    cmp_rows(first, second, rows);
    fprintf(out, "\nComparison (latencies in ms; first/second: below 1 means the first has"
                 " less):\n");
    fprintf(out, "  %-14s %14s %14s %14s  %s\n", "", "first", "second", "first/second", "better");
    for (int i = 0; i < N_CMP_ROWS; i++) {
        const struct cmp_row *r = &rows[i];
        char a[32], b[32], q[32];
        if (!r->defined) {
            snprintf(a, sizeof a, "-");
            snprintf(b, sizeof b, "-");
        } else if (r->latency) {
            snprintf(a, sizeof a, "%.3f", r->a);
            snprintf(b, sizeof b, "%.3f", r->b);
        } else if (i == N_CMP_ROWS - 1) {
            snprintf(a, sizeof a, "%.0f", r->a);
            snprintf(b, sizeof b, "%.0f", r->b);
        } else {
            snprintf(a, sizeof a, "%.1f", r->a);
            snprintf(b, sizeof b, "%.1f", r->b);
        }
        double ratio;
        if (cmp_ratio(r, &ratio))
            snprintf(q, sizeof q, "%.2f", ratio);
        else
            snprintf(q, sizeof q, "-");
        const char *better = cmp_better(r);
        fprintf(out, "  %-14s %14s %14s %14s  %s\n", r->label, a, b, q, better ? better : "-");
    }
    return ferror(out) ? BENCH_ERR_IO : 0;
}

int bench_compare_print_json(const struct bench_summary *first, const char *extra_first,
                             const struct bench_summary *second, const char *extra_second,
                             FILE *out)
{
    json_t *a = NULL, *b = NULL;
    int rc = summary_json(first, extra_first, &a);
    if (rc != 0)
        return rc;
    rc = summary_json(second, extra_second, &b);
    if (rc != 0)
        goto err_a;
    rc = BENCH_ERR_NOMEM;
    json_t *root = json_object(), *ratios = json_object(), *better = json_object();
    if (!root || !ratios || !better)
        goto err_objects;
    struct cmp_row rows[N_CMP_ROWS];
    cmp_rows(first, second, rows);
    int bad = 0;
    for (int i = 0; i < N_CMP_ROWS; i++) {
        double q;
        const char *w = cmp_better(&rows[i]);
        bad |= json_set(ratios, rows[i].key, cmp_ratio(&rows[i], &q) ? json_real(q) : json_null());
        bad |= json_set(better, rows[i].key, w ? json_string(w) : json_null());
    }
    bad |= json_object_set(root, "first", a);
    bad |= json_object_set(root, "second", b);
    bad |= json_object_set(root, "ratios", ratios);
    bad |= json_object_set(root, "better", better);
    if (bad)
        goto err_objects;
    rc = dump_line(root, out);
err_objects:
    json_decref(better);
    json_decref(ratios);
    json_decref(root);
    json_decref(b);
err_a:
    json_decref(a);
    return rc;
}
