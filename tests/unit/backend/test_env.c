/* LMDB environment: batches and their visibility, durability across
 * reopen, batch limit and interval commits, map growth with replay, the
 * quota, sizes, defrag, consistent copies, read views on other threads,
 * bad input. */
#include "backend/backend.h"
#include "common/mem.h"

#include <check.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *tmpdir_new(void)
{
    char tmpl[] = "/tmp/metcd-env-XXXXXX";
    char *d = mkdtemp(tmpl);
    ck_assert_ptr_nonnull(d);
    return strdup(d);
}

static void tmpdir_rm(char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(dir);
}

static backend *open_be(const char *dir, const backend_options *o)
{
    backend *be;
    char err[256];
    int rc = backend_open(&be, dir, o, err, sizeof(err));
    ck_assert_msg(rc == 0, "open: %s", err);
    return be;
}

static void putkv(backend *be, int b, const char *k, const char *v)
{
    ck_assert_int_eq(backend_put(be, b, k, strlen(k), v, strlen(v), 0), 0);
}

static int has(backend *be, int b, const char *k, const char *v)
{
    backend_val out;
    int rc = backend_get(be, b, k, strlen(k), &out);
    if (rc == BACKEND_ENOTFOUND)
        return 0;
    ck_assert_int_eq(rc, 0);
    return out.len == strlen(v) && memcmp(out.data, v, out.len) == 0;
}

START_TEST(test_batch_visible_and_durable)
{
    char *dir = tmpdir_new();
    backend *be = open_be(dir, NULL);
    putkv(be, BACKEND_META, "a", "1");
    ck_assert(has(be, BACKEND_META, "a", "1")); /* read sees the open batch */
    ck_assert(!has(be, BACKEND_KEY, "a", "1")); /* buckets are separate */
    ck_assert_uint_eq(backend_pending(be), 1);
    ck_assert_int_eq(backend_commit(be), 0);
    ck_assert_uint_eq(backend_pending(be), 0);
    ck_assert_int_eq(backend_del(be, BACKEND_META, "a", 1), 0);
    ck_assert_int_eq(backend_del(be, BACKEND_META, "zz", 2), 0); /* absent: fine */
    putkv(be, BACKEND_LEASE, "l", "x");
    backend_close(be); /* close commits */
    be = open_be(dir, NULL);
    ck_assert(!has(be, BACKEND_META, "a", "1"));
    ck_assert(has(be, BACKEND_LEASE, "l", "x"));
    for (int b = 0; b < BACKEND_NBUCKETS; b++)
        ck_assert_ptr_nonnull(backend_bucket_name(b));
    ck_assert_str_eq(backend_bucket_name(BACKEND_AUTH_USERS), "authUsers");
    backend_close(be);
    tmpdir_rm(dir);
}
END_TEST

static int collect(void *arg, backend_val k, backend_val v)
{
    char *out = arg;
    (void)v;
    strncat(out, k.data, k.len);
    return strlen(out) >= 4 && out[0] == 'X' ? 1 : 0;
}

START_TEST(test_range_bounds_and_limit)
{
    char *dir = tmpdir_new();
    backend *be = open_be(dir, NULL);
    const char *keys[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++)
        putkv(be, BACKEND_KEY, keys[i], "v");
    char out[32] = "";
    ck_assert_int_eq(backend_range(be, BACKEND_KEY, "b", 1, "d", 1, 0, collect, out), 0);
    ck_assert_str_eq(out, "bc");
    out[0] = 0;
    ck_assert_int_eq(backend_range(be, BACKEND_KEY, NULL, 0, NULL, 0, 2, collect, out), 0);
    ck_assert_str_eq(out, "ab");
    out[0] = 0;
    ck_assert_int_eq(backend_range(be, BACKEND_KEY, "c", 1, NULL, 0, 0, collect, out), 0);
    ck_assert_str_eq(out, "cde");
    ck_assert_int_eq(backend_range(be, 99, NULL, 0, NULL, 0, 0, collect, out), BACKEND_EINVAL);
    backend_close(be);
    tmpdir_rm(dir);
}
END_TEST

START_TEST(test_batch_limit_commits)
{
    char *dir = tmpdir_new();
    backend_options o = {.batch_limit = 10, .no_sync = 1};
    backend *be = open_be(dir, &o);
    for (int i = 0; i < 25; i++) {
        char k[16];
        snprintf(k, sizeof(k), "%02d", i);
        putkv(be, BACKEND_KEY, k, "v");
    }
    backend_stats st;
    backend_get_stats(be, &st);
    ck_assert_uint_eq(st.commits, 2);
    ck_assert_uint_eq(backend_pending(be), 5);
    /* held: the limit does not commit until the release */
    backend_hold(be);
    for (int i = 0; i < 10; i++) {
        char k[16];
        snprintf(k, sizeof(k), "h%02d", i);
        putkv(be, BACKEND_KEY, k, "v");
    }
    backend_get_stats(be, &st);
    ck_assert_uint_eq(st.commits, 2);
    ck_assert_uint_eq(backend_pending(be), 15);
    ck_assert_int_eq(backend_release(be), 0);
    backend_get_stats(be, &st);
    ck_assert_uint_eq(st.commits, 3);
    ck_assert_uint_eq(backend_pending(be), 0);
    backend_close(be);
    tmpdir_rm(dir);
}
END_TEST

static void stop_loop(evutil_socket_t fd, short w, void *arg)
{
    (void)fd;
    (void)w;
    event_base_loopbreak(arg);
}

START_TEST(test_interval_timer_commits)
{
    char *dir = tmpdir_new();
    struct event_base *base = event_base_new();
    backend_options o = {.batch_interval_ms = 20, .base = base};
    backend *be = open_be(dir, &o);
    putkv(be, BACKEND_KEY, "k", "v");
    struct event *stop = evtimer_new(base, stop_loop, base);
    struct timeval tv = {0, 120000};
    evtimer_add(stop, &tv);
    event_base_dispatch(base);
    ck_assert_uint_eq(backend_pending(be), 0);
    backend_stats st;
    backend_get_stats(be, &st);
    ck_assert_uint_ge(st.commits, 1);
    event_free(stop);
    backend_close(be);
    event_base_free(base);
    tmpdir_rm(dir);
}
END_TEST

START_TEST(test_map_grows_and_keeps_batch)
{
    char *dir = tmpdir_new();
    backend_options o = {.initial_map_size = 1 << 20, .max_map_size = 64 << 20,
                         .batch_limit = 100000, .no_sync = 1};
    backend *be = open_be(dir, &o);
    char val[1000];
    memset(val, 'x', sizeof(val));
    /* ~8 MiB in one batch: must grow several times without losing writes */
    for (int i = 0; i < 8000; i++) {
        char k[16];
        snprintf(k, sizeof(k), "%08d", i);
        ck_assert_int_eq(backend_put(be, BACKEND_KEY, k, 8, val, sizeof(val), BACKEND_PUT_APPEND), 0);
    }
    backend_stats st;
    backend_get_stats(be, &st);
    ck_assert_uint_ge(st.grows, 3);
    ck_assert_int_eq(backend_commit(be), 0);
    backend_close(be);
    be = open_be(dir, &o);
    for (int i = 0; i < 8000; i += 997) {
        char k[16];
        snprintf(k, sizeof(k), "%08d", i);
        backend_val v;
        ck_assert_int_eq(backend_get(be, BACKEND_KEY, k, 8, &v), 0);
        ck_assert_uint_eq(v.len, sizeof(val));
    }
    backend_close(be);
    tmpdir_rm(dir);
}
END_TEST

/* A read view is read on another thread while the owner writes; the map
 * growth those writes need waits for the view to close (LMDB forbids a
 * resize under a reader), and the view sees only what came before it. */
struct view_reader {
    backend_view *view;
    size_t keys;
    int rc;
    int closed; /* set just before the view closes */
};

static int count_key(void *arg, backend_val k, backend_val v)
{
    (void)k;
    (void)v;
    ((struct view_reader *)arg)->keys++;
    return 0;
}

static void *read_view(void *arg)
{
    struct view_reader *r = arg;
    usleep(300 * 1000); /* the owner is growing the map meanwhile */
    r->rc = backend_view_range(r->view, BACKEND_KEY, count_key, r);
    __atomic_store_n(&r->closed, 1, __ATOMIC_SEQ_CST);
    backend_view_close(r->view);
    return NULL;
}

START_TEST(test_view_on_another_thread)
{
    char *dir = tmpdir_new();
    backend_options o = {.initial_map_size = 1 << 20, .max_map_size = 64 << 20,
                         .batch_limit = 100000, .no_sync = 1};
    backend *be = open_be(dir, &o);
    char val[1000];
    memset(val, 'v', sizeof(val));
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof(k), "a%07d", i);
        ck_assert_int_eq(backend_put(be, BACKEND_KEY, k, 8, val, sizeof(val), 0), 0);
    }
    struct view_reader r = {0};
    ck_assert_int_eq(backend_view_open(be, &r.view), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, read_view, &r), 0);
    /* ~8 MiB more: the map must grow, which waits for the view */
    for (int i = 0; i < 8000; i++) {
        char k[16];
        snprintf(k, sizeof(k), "b%07d", i);
        ck_assert_int_eq(backend_put(be, BACKEND_KEY, k, 8, val, sizeof(val), 0), 0);
    }
    backend_stats st;
    backend_get_stats(be, &st);
    ck_assert_uint_ge(st.grows, 1);
    ck_assert_int_eq(__atomic_load_n(&r.closed, __ATOMIC_SEQ_CST), 1);
    pthread_join(th, NULL);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_uint_eq(r.keys, 100);
    backend_val v;
    ck_assert_int_eq(backend_get(be, BACKEND_KEY, "b0007999", 8, &v), 0);
    /* a view outlives nothing: close and defrag wait for open ones */
    ck_assert_int_eq(backend_view_open(be, &r.view), 0);
    r.keys = 0;
    __atomic_store_n(&r.closed, 0, __ATOMIC_SEQ_CST);
    ck_assert_int_eq(pthread_create(&th, NULL, read_view, &r), 0);
    ck_assert_int_eq(backend_defrag(be), 0);
    ck_assert_int_eq(__atomic_load_n(&r.closed, __ATOMIC_SEQ_CST), 1);
    pthread_join(th, NULL);
    ck_assert_uint_eq(r.keys, 8100);
    ck_assert_int_eq(backend_view_range(NULL, -1, count_key, &r), BACKEND_EINVAL);
    backend_view_close(NULL);
    backend_close(be);
    tmpdir_rm(dir);
}
END_TEST

START_TEST(test_quota_refuses_and_keeps_batch)
{
    char *dir = tmpdir_new();
    backend_options o = {.initial_map_size = 1 << 20, .max_map_size = 2 << 20,
                         .batch_limit = 100000, .no_sync = 1};
    backend *be = open_be(dir, &o);
    char val[4000];
    memset(val, 'q', sizeof(val));
    int i, rc = 0;
    for (i = 0; i < 10000; i++) {
        char k[16];
        snprintf(k, sizeof(k), "%08d", i);
        rc = backend_put(be, BACKEND_KEY, k, 8, val, sizeof(val), 0);
        if (rc)
            break;
    }
    ck_assert_int_eq(rc, BACKEND_ENOSPC);
    ck_assert_int_gt(i, 100);
    /* everything before the refused write is still there and commits */
    ck_assert(has(be, BACKEND_KEY, "00000000", "") == 0);
    backend_val v;
    ck_assert_int_eq(backend_get(be, BACKEND_KEY, "00000000", 8, &v), 0);
    char last[16];
    snprintf(last, sizeof(last), "%08d", i - 1);
    ck_assert_int_eq(backend_get(be, BACKEND_KEY, last, 8, &v), 0);
    ck_assert_int_eq(backend_del(be, BACKEND_KEY, last, 8), 0);
    ck_assert_int_eq(backend_commit(be), 0);
    ck_assert_str_eq(backend_strerror(BACKEND_ENOSPC), "backend: database space exceeded");
    backend_close(be);
    tmpdir_rm(dir);
}
END_TEST

START_TEST(test_sizes_defrag_and_copy)
{
    char *dir = tmpdir_new();
    backend_options o = {.no_sync = 1};
    backend *be = open_be(dir, &o);
    char val[2000];
    memset(val, 'd', sizeof(val));
    for (int i = 0; i < 3000; i++) {
        char k[16];
        snprintf(k, sizeof(k), "%08d", i);
        ck_assert_int_eq(backend_put(be, BACKEND_KEY, k, 8, val, sizeof(val), 0), 0);
    }
    ck_assert_int_eq(backend_commit(be), 0);
    for (int i = 0; i < 3000; i++) {
        if (i % 10 == 0)
            continue;
        char k[16];
        snprintf(k, sizeof(k), "%08d", i);
        ck_assert_int_eq(backend_del(be, BACKEND_KEY, k, 8), 0);
    }
    ck_assert_int_eq(backend_commit(be), 0);
    int64_t size = backend_size(be), in_use = backend_size_in_use(be);
    ck_assert_int_gt(size, 3000 * 2000);
    ck_assert_int_lt(in_use, size / 2);
    ck_assert_int_eq(backend_defrag(be), 0);
    int64_t after = backend_size(be);
    ck_assert_int_lt(after, size / 2);
    ck_assert_int_ge(after, in_use / 2);
    backend_val v;
    ck_assert_int_eq(backend_get(be, BACKEND_KEY, "00000010", 8, &v), 0);
    ck_assert_int_eq(backend_get(be, BACKEND_KEY, "00000011", 8, &v), BACKEND_ENOTFOUND);
    putkv(be, BACKEND_KEY, "zz-after-defrag", "1");
    /* a consistent copy opens as a database with the same content */
    char *dir2 = tmpdir_new();
    char path[600];
    snprintf(path, sizeof(path), "%s/data.mdb", dir2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(backend_copy_fd(be, fd), 0);
    close(fd);
    /* and is known for an LMDB file (restore and status say so) */
    unsigned char head[64];
    fd = open(path, O_RDONLY);
    ck_assert_int_eq(read(fd, head, sizeof(head)), (ssize_t)sizeof(head));
    close(fd);
    ck_assert(backend_looks_like_lmdb(head, sizeof(head)));
    ck_assert(!backend_looks_like_lmdb(head, 19));
    head[17] ^= 1;
    ck_assert(!backend_looks_like_lmdb(head, sizeof(head)));
    backend *copy = open_be(dir2, &o);
    ck_assert(has(copy, BACKEND_KEY, "zz-after-defrag", "1"));
    uint32_t h1, h2;
    ck_assert_int_eq(backend_hash(be, NULL, NULL, &h1), 0);
    ck_assert_int_eq(backend_hash(copy, NULL, NULL, &h2), 0);
    ck_assert_uint_eq(h1, h2);
    putkv(copy, BACKEND_META, "m", "1");
    ck_assert_int_eq(backend_hash(copy, NULL, NULL, &h2), 0);
    ck_assert_uint_ne(h1, h2);
    backend_close(copy);
    backend_close(be);
    tmpdir_rm(dir2);
    tmpdir_rm(dir);
}
END_TEST

START_TEST(test_bad_input_and_corrupt_file)
{
    char *dir = tmpdir_new();
    backend *be = open_be(dir, NULL);
    ck_assert_int_eq(backend_put(be, BACKEND_KEY, "", 0, "v", 1, 0), BACKEND_EINVAL);
    ck_assert_int_eq(backend_put(be, -1, "k", 1, "v", 1, 0), BACKEND_EINVAL);
    char big[1024];
    memset(big, 'k', sizeof(big));
    ck_assert_int_eq(backend_put(be, BACKEND_KEY, big, sizeof(big), "v", 1, 0), BACKEND_EKEYSIZE);
    ck_assert_uint_eq(backend_pending(be), 0);
    backend_close(be);
    /* a file that is not LMDB is refused with a clear error */
    char path[600];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    FILE *fp = fopen(path, "w");
    for (int i = 0; i < 5000; i++)
        fputs("garbage!", fp);
    fclose(fp);
    char err[256] = "";
    ck_assert_int_ne(backend_open(&be, dir, NULL, err, sizeof(err)), 0);
    ck_assert_ptr_null(be);
    ck_assert_int_gt(strlen(err), 0);
    tmpdir_rm(dir);
}
END_TEST

START_TEST(test_allocation_failures_unwind)
{
    char *dir = tmpdir_new();
    for (long n = 0; n < 8; n++) {
        backend *be = NULL;
        metcd_mem_fail_after(n);
        int rc = backend_open(&be, dir, NULL, NULL, 0);
        metcd_mem_fail_after(-1);
        if (rc == 0) {
            putkv(be, BACKEND_KEY, "k", "v");
            backend_close(be);
        } else {
            ck_assert_ptr_null(be);
        }
    }
    backend *be = open_be(dir, NULL);
    metcd_mem_fail_after(0); /* the redo record allocation fails */
    int rc = backend_put(be, BACKEND_KEY, "x", 1, "v", 1, 0);
    metcd_mem_fail_after(-1);
    ck_assert_int_eq(rc, BACKEND_ENOMEM);
    putkv(be, BACKEND_KEY, "y", "v");
    ck_assert(has(be, BACKEND_KEY, "y", "v"));
    backend_close(be);
    tmpdir_rm(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("backend/env");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_batch_visible_and_durable);
    tcase_add_test(tc, test_range_bounds_and_limit);
    tcase_add_test(tc, test_batch_limit_commits);
    tcase_add_test(tc, test_interval_timer_commits);
    tcase_add_test(tc, test_map_grows_and_keeps_batch);
    tcase_add_test(tc, test_view_on_another_thread);
    tcase_add_test(tc, test_quota_refuses_and_keeps_batch);
    tcase_add_test(tc, test_sizes_defrag_and_copy);
    tcase_add_test(tc, test_bad_input_and_corrupt_file);
    tcase_add_test(tc, test_allocation_failures_unwind);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
