/* tests/unit/backend/test_bbolt.c - the bbolt writer and reader: round
 * trips (empty buckets, one page, many levels of branches, overflow pages),
 * the order and size refusals, the meta page fallback, corrupt and
 * truncated files (an error, never a crash), and every allocation failure.
 * bbolt itself checks these files in tests/integration/test_snapshot_bbolt.py. */
#include "backend/bbolt.h"

#include "backend/backend.h"

#include "common/mem.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a file in memory -------------------------------------------------------- */

static int tmp_fd(void)
{
    char path[] = "/tmp/test_bbolt.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    return fd;
}

static uint8_t *slurp(int fd, size_t *len)
{
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    *len = (size_t)st.st_size;
    uint8_t *buf = malloc(*len ? *len : 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pread(fd, buf, *len, 0), (ssize_t)*len);
    return buf;
}

/* ---- a collecting visitor ------------------------------------------------------ */

struct seen {
    size_t n;
    char buckets[64][32]; /* the first 31 bytes of each name */
    size_t nbuckets;
    char last[2048];
    size_t last_len;
    uint64_t sum; /* of key and value bytes, to compare contents */
    int stop_at;  /* stop (return 7) at this visit, 0 = never */
    int bad;      /* visits that broke the order or the bucket rules */
};

/* No ck_assert in here: Check writes to its pipe for each one, and this
 * runs for every key. Problems are counted in bad and asserted after. */
static int collect(void *arg, const uint8_t *b, size_t bl, const uint8_t *k, size_t kl,
                   const uint8_t *v, size_t vl)
{
    struct seen *s = arg;
    if (bl > sizeof(s->last)) {
        s->bad++;
        return 0;
    }
    if (!k) { /* a bucket starts */
        if (v || s->nbuckets == 64 ||
            (s->nbuckets && s->last_len == bl && memcmp(s->last, b, bl) == 0))
            s->bad++;
        if (s->nbuckets < 64)
            snprintf(s->buckets[s->nbuckets++], sizeof(s->buckets[0]), "%.*s", (int)bl,
                     (const char *)b);
        memcpy(s->last, b, bl);
        s->last_len = bl;
        return 0;
    }
    if (!s->nbuckets || s->last_len != bl || memcmp(s->last, b, bl) != 0)
        s->bad++;
    for (size_t i = 0; i < kl; i++)
        s->sum = s->sum * 31 + k[i];
    for (size_t i = 0; i < vl; i++)
        s->sum = s->sum * 37 + v[i];
    s->n++;
    return s->stop_at && (int)s->n == s->stop_at ? 7 : 0;
}

/* Reads back the file the test wrote to fd (and closes it): every key
 * through collect, which must find nothing wrong. Returns the bytes. */
static uint8_t *read_back(int fd, struct seen *s, size_t *len)
{
    uint8_t *buf = slurp(fd, len);
    close(fd);
    char err[256] = "";
    ck_assert_msg(bbolt_read(buf, *len, NULL, collect, s, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(s->bad, 0);
    return buf;
}

/* the key of entry i: an etcd revision (8 bytes big-endian main, '_', sub) */
static void rev_key(uint8_t k[17], uint64_t i)
{
    for (int b = 0; b < 8; b++)
        k[b] = (uint8_t)(i >> (56 - 8 * b));
    k[8] = '_';
    memset(k + 9, 0, 8);
}

static uint64_t expect_sum(size_t nkeys, size_t vlen)
{
    uint64_t sum = 0;
    uint8_t k[17];
    for (size_t i = 0; i < nkeys; i++) {
        rev_key(k, i + 1);
        for (size_t j = 0; j < 17; j++)
            sum = sum * 31 + k[j];
        for (size_t j = 0; j < vlen; j++)
            sum = sum * 37 + (uint8_t)(i + j);
    }
    return sum;
}

/* Writes bucket "key" with nkeys revisions of vlen-byte values between the
 * empty buckets "alarm" and "meta"; returns the file (malloc'd). */
static uint8_t *build(size_t nkeys, size_t vlen, size_t *len, int64_t *size)
{
    int fd = tmp_fd();
    bbolt_writer *w = NULL;
    ck_assert_int_eq(bbolt_writer_new(&w, fd), 0);
    ck_assert_int_eq(bbolt_writer_bucket(w, "alarm", 5), 0);
    ck_assert_int_eq(bbolt_writer_bucket(w, "key", 3), 0);
    uint8_t *val = malloc(vlen ? vlen : 1);
    uint8_t k[17];
    for (size_t i = 0; i < nkeys; i++) {
        rev_key(k, i + 1);
        for (size_t j = 0; j < vlen; j++)
            val[j] = (uint8_t)(i + j);
        ck_assert_int_eq(bbolt_writer_put(w, k, sizeof(k), val, vlen), 0);
    }
    free(val);
    ck_assert_int_eq(bbolt_writer_bucket(w, "meta", 4), 0);
    ck_assert_int_eq(bbolt_writer_finish(w, size), 0);
    bbolt_writer_free(w);
    uint8_t *buf = slurp(fd, len);
    close(fd);
    ck_assert_uint_eq((uint64_t)*size, *len);
    return buf;
}

static void round_trip(size_t nkeys, size_t vlen)
{
    size_t len;
    int64_t size;
    uint8_t *buf = build(nkeys, vlen, &len, &size);
    struct seen s = {0};
    bbolt_info info;
    char err[256];
    ck_assert_msg(bbolt_read(buf, len, &info, collect, &s, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(info.page_size, BBOLT_PAGE_SIZE);
    ck_assert_uint_eq(info.high_water * BBOLT_PAGE_SIZE, len);
    ck_assert_int_eq(s.bad, 0);
    ck_assert_uint_eq(s.n, nkeys);
    ck_assert_uint_eq(s.sum, expect_sum(nkeys, vlen));
    ck_assert_uint_eq(s.nbuckets, 3); /* the empty ones too */
    ck_assert_str_eq(s.buckets[0], "alarm");
    ck_assert_str_eq(s.buckets[1], "key");
    ck_assert_str_eq(s.buckets[2], "meta");
    free(buf);
}

START_TEST(test_empty_database)
{
    int fd = tmp_fd();
    bbolt_writer *w = NULL;
    int64_t size = 0;
    ck_assert_int_eq(bbolt_writer_new(&w, fd), 0);
    ck_assert_int_eq(bbolt_writer_finish(w, &size), 0);
    bbolt_writer_free(w);
    /* meta, meta, freelist, the root's empty leaf: bbolt's own fresh file */
    ck_assert_int_eq(size, 4 * BBOLT_PAGE_SIZE);
    size_t len;
    struct seen s = {0};
    uint8_t *buf = read_back(fd, &s, &len);
    ck_assert_uint_eq(s.n, 0);
    /* the meta page as bbolt's init writes it */
    ck_assert_uint_eq(buf[16] | buf[17] << 8 | buf[18] << 16 | (uint32_t)buf[19] << 24,
                      0xED0CDAEDu);
    free(buf);
}
END_TEST

START_TEST(test_round_trips)
{
    round_trip(0, 0);
    round_trip(1, 10);
    round_trip(100, 0);
    round_trip(1000, 50);       /* many leaves, one branch */
    round_trip(20000, 8);       /* two levels of branches (202 leaves) */
    round_trip(3, 100000);      /* overflow pages */
    round_trip(300, 3000);      /* one element per page, near the edge */
}
END_TEST

START_TEST(test_many_buckets_and_stop)
{
    int fd = tmp_fd();
    bbolt_writer *w = NULL;
    ck_assert_int_eq(bbolt_writer_new(&w, fd), 0);
    /* more bucket names than one root leaf holds, with long names */
    char name[1200];
    for (int b = 0; b < 40; b++) {
        memset(name, 'a' + b / 26, sizeof(name));
        name[sizeof(name) - 1] = (char)('a' + b % 26);
        ck_assert_int_eq(bbolt_writer_bucket(w, name, sizeof(name)), 0);
        ck_assert_int_eq(bbolt_writer_put(w, "k", 1, "v", 1), 0);
    }
    ck_assert_int_eq(bbolt_writer_finish(w, NULL), 0);
    bbolt_writer_free(w);
    size_t len;
    struct seen s = {0};
    uint8_t *buf = read_back(fd, &s, &len);
    ck_assert_uint_eq(s.n, 40);
    ck_assert_uint_eq(s.nbuckets, 40);
    struct seen s2 = {.stop_at = 5};
    ck_assert_int_eq(bbolt_read(buf, len, NULL, collect, &s2, NULL, 0), 7);
    ck_assert_uint_eq(s2.n, 5);
    ck_assert_uint_eq(s2.nbuckets, 5);
    free(buf);
}
END_TEST

START_TEST(test_refusals)
{
    int fd = tmp_fd();
    bbolt_writer *w = NULL;
    ck_assert_int_eq(bbolt_writer_new(&w, fd), 0);
    ck_assert_int_eq(bbolt_writer_put(w, "k", 1, "v", 1), BBOLT_EORDER); /* no bucket */
    ck_assert_int_eq(bbolt_writer_bucket(w, "", 0), BBOLT_ESIZE);
    ck_assert_int_eq(bbolt_writer_bucket(w, "m", 1), 0);
    ck_assert_int_eq(bbolt_writer_bucket(w, "m", 1), BBOLT_EORDER);
    ck_assert_int_eq(bbolt_writer_bucket(w, "a", 1), BBOLT_EORDER);
    ck_assert_int_eq(bbolt_writer_put(w, "b", 1, "v", 1), 0);
    ck_assert_int_eq(bbolt_writer_put(w, "b", 1, "v", 1), BBOLT_EORDER);
    ck_assert_int_eq(bbolt_writer_put(w, "a", 1, "v", 1), BBOLT_EORDER);
    ck_assert_int_eq(bbolt_writer_put(w, "ba", 2, "v", 1), 0); /* a longer key sorts after */
    ck_assert_int_eq(bbolt_writer_put(w, "c", 0, "v", 1), BBOLT_ESIZE);
    static char big[BBOLT_MAX_KEY + 1];
    ck_assert_int_eq(bbolt_writer_put(w, big, sizeof(big), "v", 1), BBOLT_ESIZE);
    /* the refusals left the writer usable */
    ck_assert_int_eq(bbolt_writer_put(w, "c", 1, "", 0), 0);
    ck_assert_int_eq(bbolt_writer_finish(w, NULL), 0);
    ck_assert_int_eq(bbolt_writer_finish(w, NULL), BBOLT_EIO);
    ck_assert_int_eq(bbolt_writer_bucket(w, "z", 1), BBOLT_EIO);
    bbolt_writer_free(w);
    size_t len;
    struct seen s = {0};
    uint8_t *buf = read_back(fd, &s, &len);
    ck_assert_uint_eq(s.n, 3);
    free(buf);
    bbolt_writer_free(NULL);
}
END_TEST

START_TEST(test_write_error)
{
    bbolt_writer *w = NULL;
    ck_assert_int_eq(bbolt_writer_new(&w, -1), 0); /* every pwrite fails */
    ck_assert_int_eq(bbolt_writer_bucket(w, "key", 3), 0);
    ck_assert_int_eq(bbolt_writer_put(w, "k", 1, "v", 1), 0);
    ck_assert_int_eq(bbolt_writer_finish(w, NULL), BBOLT_EIO);
    ck_assert_int_eq(bbolt_writer_put(w, "l", 1, "v", 1), BBOLT_EIO); /* stays failed */
    bbolt_writer_free(w);
}
END_TEST

START_TEST(test_meta_fallback)
{
    size_t len;
    int64_t size;
    uint8_t *buf = build(10, 10, &len, &size);
    char err[256];
    /* meta 0 damaged: meta 1 (the default page size away) serves */
    buf[16 + 20] ^= 0xff;
    struct seen s = {0};
    ck_assert_msg(bbolt_read(buf, len, NULL, collect, &s, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(s.n, 10);
    /* both damaged: a clear refusal */
    buf[BBOLT_PAGE_SIZE + 16 + 20] ^= 0xff;
    ck_assert_int_eq(bbolt_read(buf, len, NULL, collect, &s, err, sizeof(err)), BBOLT_ECORRUPT);
    ck_assert_str_eq(err, "invalid database: no valid meta page");
    free(buf);
}
END_TEST

START_TEST(test_corrupt_files)
{
    size_t len;
    int64_t size;
    uint8_t *good = build(2000, 30, &len, &size);
    uint8_t *buf = malloc(len);
    char err[256];
    /* every truncation on a 512-byte grid, and a few odd ones */
    for (size_t cut = 0; cut < len; cut += (cut < 64 ? 7 : 512)) {
        memcpy(buf, good, cut);
        int rc = bbolt_read(buf, cut, NULL, NULL, NULL, err, sizeof(err));
        ck_assert_msg(rc == BBOLT_ECORRUPT, "cut %zu: %d", cut, rc);
    }
    /* flipped bytes all over the data pages: an error or a clean read,
     * never a crash (ASan watches) */
    unsigned seed = 12345;
    int refused = 0;
    for (int round = 0; round < 3000; round++) {
        memcpy(buf, good, len);
        for (int f = 0; f < 4; f++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = 3 * BBOLT_PAGE_SIZE + (seed >> 4) % (len - 3 * BBOLT_PAGE_SIZE);
            buf[at] ^= (uint8_t)(1u << (seed % 8)) | (uint8_t)(round & 0xf0);
        }
        struct seen s = {0};
        int rc = bbolt_read(buf, len, NULL, collect, &s, err, sizeof(err));
        ck_assert(rc == 0 || rc == BBOLT_ECORRUPT);
        refused += rc != 0;
    }
    ck_assert_int_gt(refused, 100);
    /* a page that points at itself is caught as a second reference */
    free(buf);
    free(good);
}
END_TEST

START_TEST(test_cycle_and_page_size)
{
    size_t len;
    int64_t size;
    uint8_t *buf = build(2000, 30, &len, &size);
    char err[256];
    /* the root bucket's page is the last; its "key" entry's root is a
     * branch: point that branch's first child at the branch itself */
    uint64_t root = 0;
    for (int i = 7; i >= 0; i--)
        root = root << 8 | buf[16 + 16 + i];
    const uint8_t *rp = buf + root * BBOLT_PAGE_SIZE;
    ck_assert_uint_eq(rp[8], 0x02); /* leaf */
    /* entries: alarm, key, meta; key's value = its bucket header */
    const uint8_t *e = rp + 16 + 16;
    uint32_t pos = e[4] | e[5] << 8 | e[6] << 16 | (uint32_t)e[7] << 24;
    uint32_t ks = e[8] | e[9] << 8;
    const uint8_t *hdr = e + pos + ks;
    uint64_t kroot = 0;
    for (int i = 7; i >= 0; i--)
        kroot = kroot << 8 | hdr[i];
    uint8_t *bp = buf + kroot * BBOLT_PAGE_SIZE;
    ck_assert_uint_eq(bp[8], 0x01); /* branch */
    for (int i = 0; i < 8; i++)
        bp[16 + 8 + i] = (uint8_t)(kroot >> (8 * i));
    ck_assert_int_eq(bbolt_read(buf, len, NULL, NULL, NULL, err, sizeof(err)), BBOLT_ECORRUPT);
    ck_assert_msg(strstr(err, "multiple references") != NULL, "%s", err);
    free(buf);

    buf = build(1, 1, &len, &size);
    buf[16 + 8] = 0x13; /* page size 0x1013 in meta 0, checksum fixed up */
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < 56; i++) {
        h ^= buf[16 + i];
        h *= 1099511628211ull;
    }
    for (int i = 0; i < 8; i++)
        buf[16 + 56 + i] = (uint8_t)(h >> (8 * i));
    ck_assert_int_eq(bbolt_read(buf, len, NULL, NULL, NULL, err, sizeof(err)), BBOLT_ECORRUPT);
    ck_assert_str_eq(err, "invalid page size 4115");
    free(buf);
}
END_TEST

START_TEST(test_allocation_failures)
{
    for (long n = 0;; n++) {
        int fd = tmp_fd();
        bbolt_writer *w = NULL;
        metcd_mem_fail_after(n);
        int rc = bbolt_writer_new(&w, fd);
        for (int b = 0; rc == 0 && b < 3; b++) {
            char name[2] = {(char)('a' + b), 0};
            rc = bbolt_writer_bucket(w, name, 1);
            uint8_t k[17];
            for (size_t i = 0; rc == 0 && i < 600; i++) {
                rev_key(k, i + 1);
                rc = bbolt_writer_put(w, k, sizeof(k), "value", 5);
            }
        }
        if (rc == 0)
            rc = bbolt_writer_finish(w, NULL);
        metcd_mem_fail_after(-1);
        bbolt_writer_free(w);
        if (rc == 0) {
            size_t len;
            uint8_t *buf = slurp(fd, &len);
            close(fd);
            /* the reader's one allocation */
            metcd_mem_fail_after(0);
            ck_assert_int_eq(bbolt_read(buf, len, NULL, NULL, NULL, NULL, 0), BBOLT_ENOMEM);
            metcd_mem_fail_after(-1);
            struct seen s = {0};
            ck_assert_int_eq(bbolt_read(buf, len, NULL, collect, &s, NULL, 0), 0);
            ck_assert_uint_eq(s.n, 1800);
            free(buf);
            ck_assert_int_gt(n, 5);
            break;
        }
        close(fd);
        ck_assert_int_eq(rc, BBOLT_ENOMEM);
    }
}
END_TEST

/* bbolt_export: every bucket of an LMDB backend's read view, in name
 * order, key for key: what was written before the view opened (committed
 * or still in the batch), not what came after */
struct exp_seen {
    char order[BACKEND_NBUCKETS][24];
    int nb;
    size_t keys[BACKEND_NBUCKETS];
    int bad;
};

static int exp_visit(void *arg, const uint8_t *b, size_t bl, const uint8_t *k, size_t kl,
                     const uint8_t *v, size_t vl)
{
    struct exp_seen *s = arg;
    if (!k) {
        snprintf(s->order[s->nb++], sizeof(s->order[0]), "%.*s", (int)bl, (const char *)b);
        return 0;
    }
    /* the value of key i is "v" + the key (counted, not asserted: see collect) */
    if (vl != kl + 1 || v[0] != 'v' || memcmp(v + 1, k, kl) != 0)
        s->bad++;
    s->keys[s->nb - 1]++;
    return 0;
}

START_TEST(test_export_backend)
{
    char dir[] = "/tmp/test_bbolt_env.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    backend *be = NULL;
    char err[256];
    ck_assert_int_eq(backend_open(&be, dir, NULL, err, sizeof(err)), 0);
    for (int b = 0; b < BACKEND_NBUCKETS; b++) {
        for (int i = 0; i < 100 * b; i++) {
            char k[32], v[33];
            int n = snprintf(k, sizeof(k), "%s-%05d", backend_bucket_name(b), i);
            v[0] = 'v';
            memcpy(v + 1, k, (size_t)n);
            ck_assert_int_eq(backend_put(be, b, k, (size_t)n, v, (size_t)n + 1, 0), 0);
        }
        if (b == 3)
            ck_assert_int_eq(backend_commit(be), 0); /* the rest stays in the batch */
    }
    backend_view *view = NULL;
    ck_assert_int_eq(backend_view_open(be, &view), 0); /* commits the batch */
    /* writes after the view opened are not in it */
    ck_assert_int_eq(backend_put(be, BACKEND_ALARM, "later", 5, "x", 1, 0), 0);
    ck_assert_int_eq(backend_commit(be), 0);
    int fd = tmp_fd();
    int64_t size = 0;
    ck_assert_int_eq(bbolt_export(view, fd, &size), 0);
    backend_view_close(view);
    backend_close(be);
    size_t len;
    uint8_t *buf = slurp(fd, &len);
    close(fd);
    ck_assert_uint_eq((uint64_t)size, len);
    struct exp_seen s = {0};
    ck_assert_msg(bbolt_read(buf, len, NULL, exp_visit, &s, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(s.bad, 0);
    ck_assert_int_eq(s.nb, BACKEND_NBUCKETS);
    for (int i = 1; i < s.nb; i++)
        ck_assert_int_lt(strcmp(s.order[i - 1], s.order[i]), 0);
    for (int i = 0; i < s.nb; i++) {
        int b = 0;
        while (strcmp(backend_bucket_name(b), s.order[i]))
            b++;
        ck_assert_uint_eq(s.keys[i], (size_t)(100 * b));
    }
    free(buf);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_strerror)
{
    ck_assert_str_eq(bbolt_strerror(BBOLT_ECORRUPT), "not a valid bbolt database");
    ck_assert_str_eq(bbolt_strerror(BACKEND_ENOSPC), backend_strerror(BACKEND_ENOSPC));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("backend/bbolt");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_empty_database);
    tcase_add_test(tc, test_round_trips);
    tcase_add_test(tc, test_many_buckets_and_stop);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_write_error);
    tcase_add_test(tc, test_meta_fallback);
    tcase_add_test(tc, test_corrupt_files);
    tcase_add_test(tc, test_cycle_and_page_size);
    tcase_add_test(tc, test_allocation_failures);
    tcase_add_test(tc, test_export_backend);
    tcase_add_test(tc, test_strerror);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
