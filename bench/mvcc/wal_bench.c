/* bench/mvcc/wal_bench.c - WAL entries/s with group commit at 1, 16 and 256
 * producers, against the raw fdatasync rate of the same disk.
 *
 * A producer is one append kept outstanding from the loop, the way the
 * member issues them: each completion issues the next append of a small
 * entry (128 bytes of data by default). The raw rate is a loop of pwrite of
 * one record of the same size + fdatasync on a preallocated file in the same
 * directory. Group commit is on target when entries/s reaches 80% of
 * (raw fdatasync rate x achieved batch size), i.e. when the WAL thread's
 * fdatasync rate stays within 80% of the raw one while it batches.
 * "busy" is the share of the WAL's wall time spent inside fdatasync (the
 * rest is the loop's work, thread hand-offs and writes); "ms/sync" the mean
 * fdatasync time of the WAL thread.
 */
#include "bench/mvcc/wal_bench.h"

#include "backend/wal.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS 16

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    char p[4096];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

/* The raw side: write + fdatasync of one record-sized write at a time,
 * appending (and wrapping around) in a file whose blocks were all written
 * with zeros first: the disk's best case for small synchronous writes, with
 * no allocation or extent conversion in any fdatasync. */
#define RAW_FILE_SIZE (8 << 20)

struct raw {
    int fd;
    char path[4096];
    off_t off;
    uint64_t n;
    double t;
};

static int raw_open(struct raw *r, const char *dir)
{
    static const unsigned char zeros[1 << 16];
    snprintf(r->path, sizeof r->path, "%s/raw-fdatasync.dat", dir);
    r->fd = open(r->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (r->fd < 0) {
        fprintf(stderr, "wal bench: %s: %s\n", r->path, strerror(errno));
        return -1;
    }
    for (off_t off = 0; off < RAW_FILE_SIZE; off += (off_t)sizeof zeros) {
        if (pwrite(r->fd, zeros, sizeof zeros, off) != (ssize_t)sizeof zeros) {
            fprintf(stderr, "wal bench: write %s: %s\n", r->path, strerror(errno));
            close(r->fd);
            unlink(r->path);
            return -1;
        }
    }
    if (fsync(r->fd) < 0) {
        fprintf(stderr, "wal bench: fsync %s: %s\n", r->path, strerror(errno));
        close(r->fd);
        unlink(r->path);
        return -1;
    }
    r->off = 0;
    r->n = 0;
    r->t = 0;
    return 0;
}

static void raw_close(struct raw *r)
{
    close(r->fd);
    unlink(r->path);
}

static int raw_slice(struct raw *r, double seconds, size_t rec)
{
    static unsigned char buf[65536];
    memset(buf, 0xab, sizeof buf);
    if (rec > sizeof buf)
        rec = sizeof buf;
    double t0 = now(), t;
    do {
        if (pwrite(r->fd, buf, rec, r->off) != (ssize_t)rec || fdatasync(r->fd) < 0) {
            fprintf(stderr, "wal bench: write %s: %s\n", r->path, strerror(errno));
            return -1;
        }
        r->off += (off_t)rec;
        if (r->off + (off_t)rec > RAW_FILE_SIZE)
            r->off = 0;
        r->n++;
        t = now();
    } while (t - t0 < seconds);
    r->t += t - t0;
    return 0;
}

struct run {
    struct event_base *base;
    wal *w;
    unsigned char *data;
    size_t size;
    uint64_t next_index;
    uint64_t completed;
    int outstanding;
    int errors;
    double deadline;
    double t; /* seconds spent in WAL slices */
};

static void on_appended(void *arg, int status);

static int issue(struct run *r)
{
    wal_entry e = {r->next_index, 1, r->data, r->size};
    wal_write wr = {.entries = &e, .n_entries = 1};
    int rc = wal_append(r->w, &wr, on_appended, r);
    if (rc) {
        r->errors++;
        return rc;
    }
    r->next_index++;
    r->outstanding++;
    return 0;
}

static void on_appended(void *arg, int status)
{
    struct run *r = arg;
    r->outstanding--;
    if (status)
        r->errors++;
    else
        r->completed++;
    if (now() < r->deadline && r->errors == 0)
        issue(r);
    else if (r->outstanding == 0)
        event_base_loopbreak(r->base);
}

/* Keeps `producers` appends outstanding for `seconds`, then drains. */
static void wal_slice(struct run *r, int producers, double seconds)
{
    double t0 = now();
    r->deadline = t0 + seconds;
    for (int i = 0; i < producers; i++)
        if (issue(r))
            break;
    while (r->outstanding > 0)
        if (event_base_loop(r->base, EVLOOP_ONCE) < 0)
            break;
    r->t += now() - t0;
}

struct result {
    int producers;
    double raw_per_s, entries_per_s, syncs_per_s, batch, busy, sync_ms;
};

/* Alternates `rounds` slices of the raw loop and of the WAL so that both
 * see the same background load on a shared disk. */
static int run_producers(const char *dir, int producers, double seconds, int rounds, size_t size,
                         uint64_t seg_size, struct result *res)
{
    char wdir[4096], err[512];
    struct raw raw;
    snprintf(wdir, sizeof wdir, "%s/wal-bench-%d", dir, producers);
    rm_dir(wdir);

    struct run r = {.size = size, .next_index = 1};
    r.base = event_base_new();
    r.data = malloc(size ? size : 1);
    if (!r.base || !r.data) {
        fprintf(stderr, "wal bench: out of memory\n");
        goto fail;
    }
    memset(r.data, 0x5a, size ? size : 1);
    wal_options o = {.segment_size = seg_size, .base = r.base};
    int rc = wal_open(&r.w, wdir, &o, err, sizeof err);
    if (rc) {
        fprintf(stderr, "wal bench: %s\n", err);
        goto fail;
    }
    if (raw_open(&raw, dir) < 0) {
        wal_close(r.w);
        goto fail;
    }
    wal_stats s0, s1;
    wal_get_stats(r.w, &s0);
    double slice = seconds / rounds;
    for (int i = 0; i < rounds && r.errors == 0; i++) {
        if (raw_slice(&raw, slice / 2, 9 + 16 + size) < 0)
            r.errors++;
        wal_slice(&r, producers, slice);
        if (raw_slice(&raw, slice / 2, 9 + 16 + size) < 0)
            r.errors++;
    }
    raw_close(&raw);
    wal_get_stats(r.w, &s1);
    if (r.errors)
        fprintf(stderr, "wal bench: %d appends failed: %s\n", r.errors, wal_errmsg(r.w));
    wal_close(r.w);
    event_base_free(r.base);
    free(r.data);
    rm_dir(wdir);
    uint64_t syncs = s1.syncs - s0.syncs;
    res->producers = producers;
    res->raw_per_s = (double)raw.n / raw.t;
    res->entries_per_s = (double)r.completed / r.t;
    res->syncs_per_s = (double)syncs / r.t;
    res->batch = syncs ? (double)r.completed / (double)syncs : 0;
    res->busy = (double)(s1.sync_ns - s0.sync_ns) / 1e9 / r.t;
    res->sync_ms = syncs ? (double)(s1.sync_ns - s0.sync_ns) / 1e6 / (double)syncs : 0;
    return r.errors ? -1 : 0;

fail:
    if (r.base)
        event_base_free(r.base);
    free(r.data);
    return -1;
}

static void usage(const char *name)
{
    fprintf(stderr,
            "usage: %s [--dir DIR] [--seconds S] [--rounds R] [--producers N[,N...]]\n"
            "          [--size BYTES] [--segment-size BYTES]\n"
            "  Each producer count runs S seconds of WAL appends in R slices, each\n"
            "  between two half-slices of the raw write+fdatasync loop.\n"
            "  defaults: --dir . --seconds 4 --rounds 8 --producers 1,16,256 --size 128\n"
            "            --segment-size 67108864\n",
            name);
}

int bench_wal_main(int argc, char **argv)
{
    const char *dir = ".";
    double seconds = 4;
    int rounds = 8;
    size_t size = 128;
    uint64_t seg_size = WAL_SEGMENT_SIZE_DEFAULT;
    int producers[MAX_RUNS] = {1, 16, 256}, nprod = 3;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(argv[0]);
            return 0;
        }
        if (!v) {
            usage(argv[0]);
            return 1;
        }
        i++;
        if (!strcmp(a, "--dir")) {
            dir = v;
        } else if (!strcmp(a, "--seconds")) {
            seconds = strtod(v, NULL);
        } else if (!strcmp(a, "--rounds")) {
            rounds = atoi(v);
        } else if (!strcmp(a, "--size")) {
            size = strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--segment-size")) {
            seg_size = strtoull(v, NULL, 10);
        } else if (!strcmp(a, "--producers")) {
            nprod = 0;
            char *end = (char *)v;
            while (*end && nprod < MAX_RUNS) {
                long p = strtol(end, &end, 10);
                if (p <= 0)
                    break;
                producers[nprod++] = (int)p;
                if (*end == ',')
                    end++;
            }
        } else {
            usage(argv[0]);
            return 1;
        }
    }
    if (seconds <= 0 || rounds <= 0 || nprod == 0) {
        usage(argv[0]);
        return 1;
    }
    mkdir(dir, 0700);

    /* an entry record is 9 (header) + 16 (index, term) + data bytes */
    printf("wal bench: dir %s, %zu-byte entries (%zu-byte records), %.1f s in %d slices per run\n",
           dir, size, 9 + 16 + size, seconds, rounds);
    printf("%9s %8s %11s %12s %7s %12s %6s %9s %6s\n", "producers", "raw/s", "entries/s",
           "fdatasync/s", "batch", "raw*batch", "ratio", "ms/sync", "busy");
    int status = 0;
    for (int i = 0; i < nprod; i++) {
        struct result res;
        if (run_producers(dir, producers[i], seconds, rounds, size, seg_size, &res) < 0)
            return 1;
        double bound = res.raw_per_s * res.batch;
        double ratio = bound > 0 ? res.entries_per_s / bound : 0;
        printf("%9d %8.0f %11.0f %12.0f %7.1f %12.0f %5.0f%% %9.3f %5.0f%%%s\n", res.producers,
               res.raw_per_s, res.entries_per_s, res.syncs_per_s, res.batch, bound, ratio * 100,
               res.sync_ms, res.busy * 100, ratio < 0.8 ? "  (< 80%)" : "");
        fflush(stdout);
        if (ratio < 0.8)
            status = 2;
    }
    return status;
}
