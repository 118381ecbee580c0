/* mvcc-bench: the storage core's benchmark (not a test).
 *
 *   mvcc-bench kv  [--keys N] [--value-size B] [--dir DIR] [--no-sync]
 *   mvcc-bench wal [options of the WAL benchmark]
 *
 * kv: one thread, one core. Puts N keys (16 bytes, random order) with
 * B-byte values through the store with the backend's batched commits
 * (durable every 10000 writes), then point gets of random keys, 1000-key
 * ranges, a close + reopen that restores the index from LMDB, and the heap
 * the index takes per key beyond the key bytes.
 */
#include "backend/backend.h"
#include "common/mem.h"
#include "bench/mvcc/wal_bench.h"
#include "mvcc/mvcc.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KEY_LEN 16

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void key_of(uint64_t i, uint8_t out[KEY_LEN])
{
    char tmp[KEY_LEN + 1];
    snprintf(tmp, sizeof(tmp), "key%013llu", (unsigned long long)i);
    memcpy(out, tmp, KEY_LEN);
}

static int open_store(const char *dir, int no_sync, backend **be, mvcc_store **s)
{
    char err[256];
    backend_options o = {.no_sync = no_sync, .initial_map_size = (size_t)1 << 30};
    if (backend_open(be, dir, &o, err, sizeof(err))) {
        fprintf(stderr, "mvcc-bench: backend: %s\n", err);
        return -1;
    }
    if (mvcc_open(s, *be, NULL)) {
        fprintf(stderr, "mvcc-bench: cannot open the store\n");
        backend_close(*be);
        return -1;
    }
    return 0;
}

static int bench_kv(int argc, char **argv)
{
    uint64_t n = 1000000;
    size_t vsize = 256;
    const char *dir = NULL;
    int no_sync = 0, restore_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--keys") && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--value-size") && i + 1 < argc)
            vsize = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--no-sync"))
            no_sync = 1;
        else if (!strcmp(argv[i], "--restore-only"))
            restore_only = 1;
        else {
            fprintf(stderr, "usage: mvcc-bench kv [--keys N] [--value-size B] [--dir DIR] [--no-sync] [--restore-only]\n");
            return 2;
        }
    }
    if (n < 2000) {
        fprintf(stderr, "mvcc-bench: --keys must be at least 2000\n");
        return 2;
    }
    char tmpl[] = "/tmp/mvcc-bench-XXXXXX";
    if (!dir && !(dir = mkdtemp(tmpl))) {
        perror("mkdtemp");
        return 1;
    }
    backend *be;
    mvcc_store *s;
    if (restore_only) {
        /* time a restore of an existing --dir, nothing else */
        double t = now_s();
        if (open_store(dir, no_sync, &be, &s))
            return 1;
        printf("  restore        %10.3f s for %lld keys\n", now_s() - t,
               (long long)mvcc_keys_total(s));
        mvcc_close(s);
        backend_close(be);
        return 0;
    }
    if (open_store(dir, no_sync, &be, &s))
        return 1;

    uint64_t *perm = malloc(n * sizeof(*perm));
    uint8_t *val = malloc(vsize);
    if (!perm || !val)
        return 1;
    for (uint64_t i = 0; i < n; i++)
        perm[i] = i;
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t j = rnd() % (i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < vsize; i++)
        val[i] = (uint8_t)('a' + i % 26);

    printf("mvcc-bench kv: %llu keys of %d bytes, %zu-byte values, dir %s%s\n",
           (unsigned long long)n, KEY_LEN, vsize, dir, no_sync ? " (no fsync)" : "");
    /* puts */
    uint8_t key[KEY_LEN];
    mvcc_result res = {0};
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        key_of(perm[i], key);
        memcpy(val, &i, sizeof(i));
        mvcc_put_req p = {.key = key, .key_len = KEY_LEN, .value = val, .value_len = vsize};
        if (mvcc_put(s, &p, &res)) {
            fprintf(stderr, "put failed at %llu\n", (unsigned long long)i);
            return 1;
        }
        mvcc_result_free(&res);
    }
    backend_commit(be);
    double put_s = now_s() - t0;
    printf("  put            %10.0f ops/s  (%.2f s, batched durable commits)\n", n / put_s, put_s);

    /* point gets */
    uint64_t gets = n;
    t0 = now_s();
    for (uint64_t i = 0; i < gets; i++) {
        key_of(rnd() % n, key);
        mvcc_range_req r = {.key = key, .key_len = KEY_LEN};
        if (mvcc_range(s, &r, &res) || res.resp.u.range.nkvs != 1) {
            fprintf(stderr, "get failed\n");
            return 1;
        }
        mvcc_result_free(&res);
    }
    double get_s = now_s() - t0;
    /* The floor under a point read: the same number of random reads of
     * stored revisions straight from LMDB through the backend. */
    t0 = now_s();
    for (uint64_t i = 0; i < gets; i++) {
        uint8_t rk[MVCC_TOMBSTONE_BYTES];
        size_t rl = mvcc_rev_encode((mvcc_rev){2 + (int64_t)(rnd() % n), 0}, 0, rk);
        backend_val v;
        if (backend_get(be, BACKEND_KEY, rk, rl, &v)) {
            fprintf(stderr, "backend get failed\n");
            return 1;
        }
    }
    double floor_s = now_s() - t0;
    printf("  get (random)   %10.0f ops/s  (LMDB alone: %.0f reads/s; ratio %.2f)\n",
           gets / get_s, gets / floor_s, floor_s / get_s);

    /* 1000-key ranges */
    uint64_t ranges = 2000;
    uint8_t end[KEY_LEN];
    t0 = now_s();
    for (uint64_t i = 0; i < ranges; i++) {
        uint64_t start = rnd() % (n - 1000);
        key_of(start, key);
        key_of(start + 1000, end);
        mvcc_range_req r = {.key = key, .key_len = KEY_LEN, .range_end = end,
                            .range_end_len = KEY_LEN};
        if (mvcc_range(s, &r, &res) || res.resp.u.range.nkvs != 1000) {
            fprintf(stderr, "range failed\n");
            return 1;
        }
        mvcc_result_free(&res);
    }
    double range_s = now_s() - t0;
    printf("  range 1000 keys%10.0f ops/s  (%.0f keys/s)\n", ranges / range_s,
           ranges * 1000 / range_s);

    /* reopen: restore the index from LMDB */
    size_t index_bytes = mvcc_index_bytes(s);
    mvcc_close(s);
    backend_close(be);
    malloc_trim(0);
    struct mallinfo2 before = mallinfo2();
    long rss_before = rss_kib();
    t0 = now_s();
    if (open_store(dir, no_sync, &be, &s))
        return 1;
    double restore_s = now_s() - t0;
    struct mallinfo2 after = mallinfo2();
    long rss_after = rss_kib();
    double heap_per_key = (double)(after.uordblks - before.uordblks) / (double)n;
    printf("  restore        %10.3f s for %llu keys (revision %lld)\n", restore_s,
           (unsigned long long)n, (long long)mvcc_current_rev(s));
    printf("  index heap     %10.1f bytes/key (%.1f beyond the %d key bytes; store's own count %.1f)\n",
           heap_per_key, heap_per_key - KEY_LEN, KEY_LEN, (double)index_bytes / (double)n);
    printf("  RSS growth     %10.1f bytes/key after restore (includes LMDB pages read)\n",
           (double)(rss_after - rss_before) * 1024.0 / (double)n);
    mvcc_close(s);
    backend_close(be);
    free(perm);
    free(val);
    if (dir == tmpl) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
        if (system(cmd) != 0)
            fprintf(stderr, "mvcc-bench: could not remove %s\n", tmpl);
    }
    return 0;
}

int main(int argc, char **argv)
{
    metcd_mem_tune();
    if (argc >= 2 && !strcmp(argv[1], "wal"))
        return bench_wal_main(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "kv"))
        return bench_kv(argc - 1, argv + 1);
    if (argc >= 2 && argv[1][0] != '-') {
        fprintf(stderr, "usage: mvcc-bench kv|wal [options]\n");
        return 2;
    }
    return bench_kv(argc, argv);
}
