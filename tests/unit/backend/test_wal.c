/* tests/unit/backend/test_wal.c - the write-ahead log: format, recovery from
 * crashes (torn tails, corruption, half-made segments), replay rules, group
 * commit, completion delivery, backpressure and allocation failures. */
#include "backend/wal.h"

#include "common/mem.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEG (32u << 10) /* small segments so that cuts happen quickly */

static char dir[256];

static void rm_rf(const char *d)
{
    DIR *dd = opendir(d);
    if (!dd)
        return;
    struct dirent *de;
    char p[512];
    while ((de = readdir(dd)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", d, de->d_name);
        unlink(p);
    }
    closedir(dd);
    rmdir(d);
}

static void setup(void)
{
    char base[] = "/tmp/metcd-test-wal-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(base));
    /* the WAL directory itself does not exist yet: wal_open makes it */
    snprintf(dir, sizeof dir, "%s/member/wal", base);
}

static void teardown(void)
{
    metcd_mem_fail_after(-1);
    rm_rf(dir);
    char *slash = strrchr(dir, '/');
    *slash = '\0';
    rmdir(dir);
    slash = strrchr(dir, '/');
    *slash = '\0';
    rmdir(dir);
}

/* ---- helpers ------------------------------------------------------------ */

static wal *open_ok(uint64_t seg, struct event_base *base)
{
    wal *w = NULL;
    char err[512];
    wal_options o = {.segment_size = seg, .base = base};
    int rc = wal_open(&w, dir, &o, err, sizeof err);
    ck_assert_msg(rc == 0, "wal_open: %s (%s)", wal_strerror(rc), err);
    ck_assert_ptr_nonnull(w);
    return w;
}

static int open_fails(uint64_t seg, char *err, size_t errlen)
{
    wal *w = (wal *)1;
    wal_options o = {.segment_size = seg};
    int rc = wal_open(&w, dir, &o, err, errlen);
    ck_assert_int_ne(rc, 0);
    ck_assert_ptr_null(w);
    return rc;
}

/* Entry data derived from (index, term) so replays can be checked. */
static size_t entry_data(uint64_t index, uint64_t term, unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(index * 7 + term * 13 + i);
    return len;
}

/* Appends entries [first, last] of `term` with `len` bytes of data each, one
 * sync append per `per` entries. */
static void append_range(wal *w, uint64_t first, uint64_t last, uint64_t term, size_t len,
                         size_t per)
{
    static unsigned char bufs[64][2048];
    wal_entry e[64];
    ck_assert(per <= 64 && len <= 2048);
    for (uint64_t i = first; i <= last;) {
        size_t n = 0;
        for (; n < per && i <= last; n++, i++) {
            entry_data(i, term, bufs[n], len);
            e[n] = (wal_entry){i, term, bufs[n], len};
        }
        wal_write wr = {.entries = e, .n_entries = n};
        int rc = wal_append_sync(w, &wr);
        ck_assert_msg(rc == 0, "append: %s: %s", wal_strerror(rc), wal_errmsg(w));
    }
}

static void check_entry(const wal_entry *e, uint64_t index, uint64_t term, size_t len)
{
    unsigned char buf[2048];
    ck_assert_uint_eq(e->index, index);
    ck_assert_uint_eq(e->term, term);
    ck_assert_uint_eq(e->len, len);
    entry_data(index, term, buf, len);
    ck_assert(len == 0 || memcmp(e->data, buf, len) == 0);
}

static wal_replay_result *replay_ok(wal *w, uint64_t from)
{
    wal_replay_result *r = NULL;
    int rc = wal_replay(w, from, &r);
    ck_assert_msg(rc == 0, "replay: %s: %s", wal_strerror(rc), wal_errmsg(w));
    return r;
}

/* Sorted segment file names of the WAL directory. */
static int list_segs(char names[][64], int max)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > 4 && l < 64 && !strcmp(de->d_name + l - 4, ".wal") && n < max)
            memcpy(names[n++], de->d_name, l + 1);
    }
    closedir(d);
    qsort(names, (size_t)n, 64, (int (*)(const void *, const void *))strcmp);
    return n;
}

static void seg_path(char *p, size_t n, const char *name)
{
    snprintf(p, n, "%s/%s", dir, name);
}

/* Offset one past the last non-zero byte of a file. */
static off_t file_data_end(const char *path)
{
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    off_t size = lseek(fd, 0, SEEK_END), end = 0;
    unsigned char buf[4096];
    for (off_t off = 0; off < size; off += (off_t)sizeof buf) {
        ssize_t k = pread(fd, buf, sizeof buf, off);
        for (ssize_t i = 0; i < k; i++)
            if (buf[i])
                end = off + i + 1;
    }
    close(fd);
    return end;
}

static void pwrite_file(const char *path, const void *buf, size_t n, off_t off)
{
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, buf, n, off), (ssize_t)n);
    close(fd);
}

static void pread_file(const char *path, void *buf, size_t n, off_t off)
{
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, buf, n, off), (ssize_t)n);
    close(fd);
}

/* Offset of the record holding entry `index` in a segment (walks records). */
static off_t record_offset(const char *path, uint64_t index)
{
    unsigned char h[25];
    off_t off = 0;
    for (;;) {
        pread_file(path, h, sizeof h, off);
        uint32_t len =
            (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
        ck_assert_uint_ne(len, 0);
        if (h[8] == 3) {
            uint64_t idx = 0;
            for (int i = 7; i >= 0; i--)
                idx = idx << 8 | h[9 + i];
            if (idx == index)
                return off;
        }
        off += 9 + len;
    }
}

/* Offset of the last record of a segment; *end is where it ends. */
static off_t last_record(const char *path, off_t *end)
{
    unsigned char h[9];
    off_t off = 0, last = 0;
    for (;;) {
        pread_file(path, h, sizeof h, off);
        uint32_t len =
            (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
        if (len == 0 && h[8] == 0)
            break;
        last = off;
        off += 9 + len;
    }
    *end = off;
    return last;
}

static const char META[] = "node=1 cluster=2";

static void write_meta_hs(wal *w, uint64_t term, uint64_t commit)
{
    wal_hardstate hs = {term, 1, commit};
    wal_write wr = {.metadata = META, .metadata_len = sizeof META, .hardstate = &hs};
    ck_assert_int_eq(wal_append_sync(w, &wr), 0);
}

/* ---- format, open, lock ----------------------------------------------------- */

START_TEST(test_open_creates_first_segment)
{
    wal *w = open_ok(SEG, NULL);
    char names[8][64];
    ck_assert_int_eq(list_segs(names, 8), 1);
    ck_assert_str_eq(names[0], "0000000000000000-0000000000000000.wal");
    char p[512];
    seg_path(p, sizeof p, names[0]);
    struct stat sb;
    ck_assert_int_eq(stat(p, &sb), 0);
    ck_assert_int_eq(sb.st_size, SEG); /* preallocated */
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_ptr_null(r->metadata);
    ck_assert_int_eq(r->has_hardstate, 0);
    ck_assert_int_eq(r->has_snapshot, 0);
    ck_assert_uint_eq(r->n_entries, 0);
    wal_replay_free(r);
    wal_close(w);
    wal_close(NULL); /* no-op */
}
END_TEST

START_TEST(test_second_open_is_locked)
{
    wal *w = open_ok(SEG, NULL);
    char err[256];
    ck_assert_int_eq(open_fails(SEG, err, sizeof err), BACKEND_EWAL_LOCKED);
    ck_assert_ptr_nonnull(strstr(err, dir));
    wal_close(w);
    w = open_ok(SEG, NULL); /* the lock went with the close */
    wal_close(w);
}
END_TEST

START_TEST(test_lock_holds_across_processes)
{
    wal *w = open_ok(SEG, NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        wal *w2 = NULL;
        char d2[300];
        snprintf(d2, sizeof d2, "%s/", dir); /* same directory, other spelling */
        int rc = wal_open(&w2, d2, NULL, NULL, 0);
        _exit(rc == BACKEND_EWAL_LOCKED && w2 == NULL ? 0 : 1);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    wal_close(w);
}
END_TEST

START_TEST(test_append_reopen_replay)
{
    wal *w = open_ok(SEG, NULL);
    write_meta_hs(w, 1, 0);
    append_range(w, 1, 20, 1, 100, 3);
    wal_hardstate hs = {2, 3, 15};
    wal_write wr = {.hardstate = &hs};
    ck_assert_int_eq(wal_append_sync(w, &wr), 0);
    ck_assert_uint_eq(wal_last_index(w), 20);
    wal_close(w);

    w = open_ok(SEG, NULL);
    ck_assert_uint_eq(wal_last_index(w), 20);
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_uint_eq(r->metadata_len, sizeof META);
    ck_assert_mem_eq(r->metadata, META, sizeof META);
    ck_assert_int_eq(r->has_hardstate, 1);
    ck_assert_uint_eq(r->hardstate.term, 2);
    ck_assert_uint_eq(r->hardstate.vote, 3);
    ck_assert_uint_eq(r->hardstate.commit, 15);
    ck_assert_uint_eq(r->n_entries, 20);
    for (uint64_t i = 0; i < 20; i++)
        check_entry(&r->entries[i], i + 1, 1, 100);
    wal_replay_free(r);

    r = replay_ok(w, 12); /* only entries after 12 */
    ck_assert_uint_eq(r->n_entries, 8);
    check_entry(&r->entries[0], 13, 1, 100);
    ck_assert_ptr_nonnull(r->metadata);
    wal_replay_free(r);

    r = replay_ok(w, 20);
    ck_assert_uint_eq(r->n_entries, 0);
    wal_replay_free(r);
    wal_close(w);
}
END_TEST

START_TEST(test_empty_data_entries_and_barrier)
{
    wal *w = open_ok(SEG, NULL);
    wal_entry e[2] = {{1, 1, NULL, 0}, {2, 1, NULL, 0}};
    wal_write wr = {.entries = e, .n_entries = 2};
    ck_assert_int_eq(wal_append_sync(w, &wr), 0);
    wal_write none = {0};
    ck_assert_int_eq(wal_append_sync(w, &none), 0); /* a barrier */
    wal_close(w);
    w = open_ok(SEG, NULL);
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, 2);
    ck_assert_uint_eq(r->entries[1].index, 2);
    ck_assert_uint_eq(r->entries[1].len, 0);
    wal_replay_free(r);
    wal_close(w);
}
END_TEST

START_TEST(test_bad_arguments)
{
    wal *w = NULL;
    wal_options o = {.segment_size = 1000};
    ck_assert_int_eq(wal_open(&w, dir, &o, NULL, 0), BACKEND_EWAL_INVAL);
    ck_assert_int_eq(wal_open(&w, "", NULL, NULL, 0), BACKEND_EWAL_INVAL);
    ck_assert_int_eq(wal_open(NULL, dir, NULL, NULL, 0), BACKEND_EWAL_INVAL);

    w = open_ok(SEG, NULL);
    unsigned char d[8] = {0};
    wal_entry e[2] = {{5, 1, d, 8}, {7, 1, d, 8}};
    wal_write wr = {.entries = e, .n_entries = 2};
    ck_assert_int_eq(wal_append_sync(w, &wr), BACKEND_EWAL_INVAL); /* not consecutive */
    ck_assert_ptr_nonnull(strstr(wal_errmsg(w), "does not follow"));
    static char big[WAL_METADATA_MAX + 1];
    wal_write m = {.metadata = big, .metadata_len = sizeof big};
    ck_assert_int_eq(wal_append_sync(w, &m), BACKEND_EWAL_INVAL);
    static unsigned char huge[SEG];
    wal_entry h = {1, 1, huge, sizeof huge};
    wal_write hw = {.entries = &h, .n_entries = 1};
    ck_assert_int_eq(wal_append_sync(w, &hw), BACKEND_EWAL_TOOBIG);
    /* without an event_base only synchronous appends work */
    ck_assert_int_eq(wal_append(w, &m, (wal_done_fn)abort, NULL), BACKEND_EWAL_INVAL);
    ck_assert_str_ne(wal_strerror(BACKEND_EWAL_CORRUPT), wal_strerror(-1));
    ck_assert_str_eq(wal_strerror(12345), "wal: unknown error");
    wal_close(w);
}
END_TEST

/* ---- replay rules ------------------------------------------------------------- */

START_TEST(test_replay_overwrites_conflicting_suffix)
{
    wal *w = open_ok(SEG, NULL);
    append_range(w, 1, 10, 1, 50, 10);
    append_range(w, 6, 8, 2, 60, 3); /* a new leader overwrote 6..10 */
    wal_close(w);
    w = open_ok(SEG, NULL);
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, 8);
    for (uint64_t i = 1; i <= 5; i++)
        check_entry(&r->entries[i - 1], i, 1, 50);
    for (uint64_t i = 6; i <= 8; i++)
        check_entry(&r->entries[i - 1], i, 2, 60);
    wal_replay_free(r);
    /* from inside the overwritten range */
    r = replay_ok(w, 7);
    ck_assert_uint_eq(r->n_entries, 1);
    check_entry(&r->entries[0], 8, 2, 60);
    wal_replay_free(r);
    /* the truncation also applies when the overwriting entry is <= from */
    append_range(w, 4, 4, 3, 10, 1);
    r = replay_ok(w, 5);
    ck_assert_uint_eq(r->n_entries, 0);
    wal_replay_free(r);
    wal_close(w);
}
END_TEST

START_TEST(test_replay_overwrite_across_segments)
{
    wal *w = open_ok(SEG, NULL);
    append_range(w, 1, 100, 1, 1000, 4); /* ~100 KiB: several segments */
    append_range(w, 30, 40, 2, 500, 2);
    wal_stats st;
    wal_get_stats(w, &st);
    ck_assert_uint_ge(st.segments, 3);
    wal_close(w);
    w = open_ok(SEG, NULL);
    wal_replay_result *r = replay_ok(w, 25);
    ck_assert_uint_eq(r->n_entries, 15);
    for (uint64_t i = 26; i <= 29; i++)
        check_entry(&r->entries[i - 26], i, 1, 1000);
    for (uint64_t i = 30; i <= 40; i++)
        check_entry(&r->entries[i - 26], i, 2, 500);
    wal_replay_free(r);
    wal_close(w);
}
END_TEST

START_TEST(test_replay_snapshot_markers)
{
    wal *w = open_ok(SEG, NULL);
    /* a leader snapshots inside its own log: nothing is dropped */
    append_range(w, 1, 10, 1, 20, 10);
    wal_snapshot s1 = {8, 1};
    wal_write ws = {.snapshot = &s1};
    ck_assert_int_eq(wal_append_sync(w, &ws), 0);
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, 10);
    ck_assert_int_eq(r->has_snapshot, 1);
    ck_assert_uint_eq(r->snapshot.index, 8);
    wal_replay_free(r);
    r = replay_ok(w, WAL_FROM_SNAPSHOT);
    ck_assert_uint_eq(r->n_entries, 2);
    check_entry(&r->entries[0], 9, 1, 20);
    wal_replay_free(r);

    /* a follower receives a snapshot beyond its log: the log restarts */
    wal_snapshot s2 = {100, 3};
    unsigned char d[20];
    wal_entry e = {101, 3, d, entry_data(101, 3, d, 20)};
    wal_write wf = {.snapshot = &s2, .entries = &e, .n_entries = 1};
    ck_assert_int_eq(wal_append_sync(w, &wf), 0);
    wal_close(w);
    w = open_ok(SEG, NULL);
    r = replay_ok(w, 0);
    ck_assert_uint_eq(r->snapshot.index, 100);
    ck_assert_uint_eq(r->snapshot.term, 3);
    ck_assert_uint_eq(r->n_entries, 1);
    check_entry(&r->entries[0], 101, 3, 20);
    wal_replay_free(r);

    /* a snapshot whose term disagrees with the log replaces it */
    append_range(w, 102, 105, 3, 20, 4);
    wal_snapshot s3 = {103, 4};
    wal_write w3 = {.snapshot = &s3};
    ck_assert_int_eq(wal_append_sync(w, &w3), 0);
    append_range(w, 104, 104, 4, 20, 1);
    r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, 1);
    check_entry(&r->entries[0], 104, 4, 20);
    wal_replay_free(r);
    wal_close(w);
}
END_TEST

START_TEST(test_replay_gap_is_corruption)
{
    wal *w = open_ok(SEG, NULL);
    append_range(w, 1, 3, 1, 10, 3);
    append_range(w, 5, 6, 1, 10, 2); /* 4 is missing */
    wal_replay_result *r = (wal_replay_result *)1;
    ck_assert_int_eq(wal_replay(w, 0, &r), BACKEND_EWAL_CORRUPT);
    ck_assert_ptr_null(r);
    ck_assert_ptr_nonnull(strstr(wal_errmsg(w), "gap"));
    ck_assert_ptr_nonnull(strstr(wal_errmsg(w), "0000000000000000-0000000000000000.wal"));
    wal_close(w);
}
END_TEST

/* ---- segments, release ---------------------------------------------------------- */

START_TEST(test_segment_cut_names_and_headers)
{
    wal *w = open_ok(SEG, NULL);
    write_meta_hs(w, 1, 0);
    append_range(w, 1, 200, 1, 1000, 8);
    wal_stats st;
    wal_get_stats(w, &st);
    ck_assert_uint_ge(st.cuts, 5);
    wal_close(w);

    char names[64][64];
    int n = list_segs(names, 64);
    ck_assert_int_ge(n, 6);
    uint64_t prev_first = 0;
    for (int i = 0; i < n; i++) {
        unsigned long long seq, first;
        ck_assert_int_eq(sscanf(names[i], "%16llx-%16llx.wal", &seq, &first), 2);
        ck_assert_uint_eq(seq, (uint64_t)i);
        ck_assert(i == 0 || first > prev_first);
        prev_first = first;
        if (i > 0) {
            /* the segment's first entry is the one its name says */
            char p[512];
            seg_path(p, sizeof p, names[i]);
            record_offset(p, first);
        }
    }
    w = open_ok(SEG, NULL);
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, 200);
    for (uint64_t i = 0; i < 200; i++)
        check_entry(&r->entries[i], i + 1, 1, 1000);
    ck_assert_mem_eq(r->metadata, META, sizeof META);
    wal_replay_free(r);
    wal_close(w);
}
END_TEST

START_TEST(test_release_and_restart)
{
    wal *w = open_ok(SEG, NULL);
    write_meta_hs(w, 5, 7);
    append_range(w, 1, 200, 5, 1000, 8);
    wal_snapshot s = {150, 5};
    wal_write ws = {.snapshot = &s};
    ck_assert_int_eq(wal_append_sync(w, &ws), 0);
    wal_stats st;
    wal_get_stats(w, &st);
    uint64_t before = st.segments;

    ck_assert_int_eq(wal_release(w, 100), 0);
    wal_get_stats(w, &st);
    ck_assert_uint_gt(st.released, 0);
    ck_assert_uint_eq(st.segments, before - st.released);
    char names[64][64];
    int n = list_segs(names, 64);
    ck_assert_int_eq((uint64_t)n, st.segments);
    /* the oldest kept segment still holds entry 100 */
    wal_replay_result *r = replay_ok(w, 99);
    ck_assert_uint_eq(r->entries[0].index, 100);
    wal_replay_free(r);

    /* never the current segment, however high the index */
    ck_assert_int_eq(wal_release(w, UINT64_MAX), 0);
    ck_assert_int_eq(list_segs(names, 64), 1);
    wal_close(w);

    /* restart after release: metadata, hard state and snapshot marker were
       repeated in the kept segment's header */
    w = open_ok(SEG, NULL);
    r = replay_ok(w, 0);
    ck_assert_mem_eq(r->metadata, META, sizeof META);
    ck_assert_uint_eq(r->hardstate.term, 5);
    ck_assert_uint_eq(r->hardstate.commit, 7);
    ck_assert_int_eq(r->has_snapshot, 1);
    ck_assert_uint_eq(r->snapshot.index, 150);
    ck_assert_uint_gt(r->n_entries, 0);
    ck_assert_uint_eq(r->entries[r->n_entries - 1].index, 200);
    wal_replay_free(r);
    append_range(w, 201, 260, 5, 1000, 8);
    wal_close(w);
    w = open_ok(SEG, NULL);
    r = replay_ok(w, 200);
    ck_assert_uint_eq(r->n_entries, 60);
    check_entry(&r->entries[59], 260, 5, 1000);
    wal_replay_free(r);
    wal_close(w);
}
END_TEST

/* Segment headers repeat the latest snapshot marker; those copies are state,
 * not a new snapshot: reading from a later segment (after a release, or
 * skipping segments below `from`) must not see them as a log reset. */
START_TEST(test_replay_after_release_with_snapshot_in_headers)
{
    wal *w = open_ok(SEG, NULL);
    write_meta_hs(w, 1, 0);
    append_range(w, 1, 50, 1, 1000, 1);
    wal_snapshot s = {40, 1};
    wal_write ws = {.snapshot = &s};
    ck_assert_int_eq(wal_append_sync(w, &ws), 0);
    append_range(w, 51, 150, 1, 1000, 1);
    for (uint64_t from = 0; from <= 150; from += 10) {
        wal_replay_result *r = replay_ok(w, from);
        ck_assert_uint_eq(r->n_entries, 150 - from);
        ck_assert_uint_eq(r->snapshot.index, 40);
        if (r->n_entries)
            check_entry(&r->entries[0], from + 1, 1, 1000);
        wal_replay_free(r);
    }
    ck_assert_int_eq(wal_release(w, 100), 0);
    wal_close(w);
    w = open_ok(SEG, NULL);
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_uint_gt(r->entries[0].index, 60);
    ck_assert_uint_le(r->entries[0].index, 100);
    ck_assert_uint_eq(r->entries[r->n_entries - 1].index, 150);
    ck_assert_uint_eq(r->snapshot.index, 40);
    ck_assert_mem_eq(r->metadata, META, sizeof META);
    wal_replay_free(r);
    r = replay_ok(w, WAL_FROM_SNAPSHOT);
    ck_assert_uint_eq(r->entries[r->n_entries - 1].index, 150);
    wal_replay_free(r);
    wal_close(w);
}
END_TEST

/* A leader's snapshot marker (inside its log) that happens to open a segment:
 * replay from past the segments before it does not know where the log
 * ended, and must not mistake the marker for a reset. */
START_TEST(test_replay_from_segment_opening_with_snapshot)
{
    wal *w = open_ok(2 * SEG, NULL);
    uint64_t last = 0;
    char names[64][64], p[512];
    /* fill until the current segment is more than half used */
    for (;;) {
        append_range(w, last + 1, last + 1, 1, 1000, 1);
        last++;
        int n = list_segs(names, 64);
        seg_path(p, sizeof p, names[n - 1]);
        if (n > 1 && file_data_end(p) > 2 * SEG - 30000)
            break;
    }
    int before = list_segs(names, 64);
    /* one append of a marker at last - 10 and 30 more entries: too big for
       what is left, so it opens the next segment */
    static unsigned char d[30][1000];
    wal_entry e[30];
    for (int i = 0; i < 30; i++)
        e[i] = (wal_entry){last + 1 + (uint64_t)i, 1, d[i],
                           entry_data(last + 1 + (uint64_t)i, 1, d[i], 1000)};
    wal_snapshot s = {last - 10, 1};
    wal_write wr = {.snapshot = &s, .entries = e, .n_entries = 30};
    ck_assert_int_eq(wal_append_sync(w, &wr), 0);
    ck_assert_int_eq(list_segs(names, 64), before + 1);
    wal_replay_result *r = replay_ok(w, last);
    ck_assert_uint_eq(r->n_entries, 30);
    check_entry(&r->entries[0], last + 1, 1, 1000);
    ck_assert_uint_eq(r->snapshot.index, last - 10);
    wal_replay_free(r);
    r = replay_ok(w, WAL_FROM_SNAPSHOT);
    ck_assert_uint_eq(r->n_entries, 40);
    wal_replay_free(r);
    wal_close(w);
}
END_TEST

START_TEST(test_missing_middle_segment_is_corruption)
{
    wal *w = open_ok(SEG, NULL);
    append_range(w, 1, 100, 1, 1000, 8);
    wal_close(w);
    char names[64][64], p[512], err[512];
    int n = list_segs(names, 64);
    ck_assert_int_ge(n, 3);
    seg_path(p, sizeof p, names[1]);
    ck_assert_int_eq(unlink(p), 0);
    ck_assert_int_eq(open_fails(SEG, err, sizeof err), BACKEND_EWAL_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "gap"));
}
END_TEST

START_TEST(test_swapped_segment_breaks_chain)
{
    wal *w = open_ok(SEG, NULL);
    append_range(w, 1, 100, 1, 1000, 8);
    wal_close(w);
    char names[64][64], p[512], err[512];
    ck_assert_int_ge(list_segs(names, 64), 3);
    /* segment 1 loses its last record cleanly (as if an older copy of it
       came back): it still verifies on its own, but segment 2 no longer
       chains to it */
    seg_path(p, sizeof p, names[1]);
    off_t end;
    off_t last = last_record(p, &end);
    static const unsigned char zeros[4096];
    ck_assert_int_le(end - last, (off_t)sizeof zeros);
    pwrite_file(p, zeros, (size_t)(end - last), last);
    ck_assert_int_eq(open_fails(SEG, err, sizeof err), BACKEND_EWAL_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "chain"));
    ck_assert_ptr_nonnull(strstr(err, names[2]));
}
END_TEST

START_TEST(test_leftover_tmp_is_removed)
{
    wal *w = open_ok(SEG, NULL);
    wal_close(w);
    char p[512];
    seg_path(p, sizeof p, "0000000000000001-0000000000000005.wal.tmp");
    int fd = open(p, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "junk", 4), 4);
    close(fd);
    w = open_ok(SEG, NULL);
    ck_assert_int_eq(access(p, F_OK), -1);
    wal_close(w);
}
END_TEST

/* ---- crash cases ------------------------------------------------------------------ */

/* One segment with metadata and entries 1..n (each 300 bytes of data). */
static void make_wal(uint64_t n)
{
    wal *w = open_ok(SEG, NULL);
    write_meta_hs(w, 1, 0);
    append_range(w, 1, n, 1, 300, 1);
    wal_close(w);
}

static void first_seg_path(char *p, size_t n)
{
    char names[8][64];
    ck_assert_int_ge(list_segs(names, 8), 1);
    seg_path(p, n, names[0]);
}

static void check_entries_then_append(uint64_t n_expected)
{
    wal *w = open_ok(SEG, NULL);
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, n_expected);
    for (uint64_t i = 0; i < n_expected; i++)
        check_entry(&r->entries[i], i + 1, 1, 300);
    ck_assert_mem_eq(r->metadata, META, sizeof META);
    wal_replay_free(r);
    /* the WAL continues where the good data ended */
    append_range(w, n_expected + 1, n_expected + 3, 1, 300, 1);
    wal_close(w);
    w = open_ok(SEG, NULL);
    r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, n_expected + 3);
    check_entry(&r->entries[n_expected + 2], n_expected + 3, 1, 300);
    wal_replay_free(r);
    wal_stats st;
    wal_get_stats(w, &st);
    ck_assert_uint_eq(st.torn_bytes, 0); /* the repair was durable */
    wal_close(w);
}

START_TEST(test_torn_tail_file_truncated_mid_record)
{
    make_wal(10);
    char p[512];
    first_seg_path(p, sizeof p);
    off_t last = record_offset(p, 10);
    ck_assert_int_eq(truncate(p, last + 9 + 100), 0); /* header + part of payload */
    wal *w = open_ok(SEG, NULL);
    wal_stats st;
    wal_get_stats(w, &st);
    ck_assert_uint_eq(st.torn_bytes, 9 + 100);
    wal_close(w);
    struct stat sb;
    ck_assert_int_eq(stat(p, &sb), 0);
    ck_assert_int_eq(sb.st_size, SEG); /* preallocated again */
    ck_assert_int_eq(file_data_end(p), last);
    check_entries_then_append(9);
}
END_TEST

START_TEST(test_torn_tail_header_only)
{
    make_wal(10);
    char p[512];
    first_seg_path(p, sizeof p);
    off_t last = record_offset(p, 10);
    ck_assert_int_eq(truncate(p, last + 5), 0); /* not even a whole header */
    check_entries_then_append(9);
}
END_TEST

START_TEST(test_torn_tail_garbage_after_last_record)
{
    make_wal(10);
    char p[512];
    first_seg_path(p, sizeof p);
    off_t end = file_data_end(p);
    unsigned char junk[700];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 151 + 7) | 1;
    pwrite_file(p, junk, sizeof junk, end);
    wal_close(open_ok(SEG, NULL));
    ck_assert_int_eq(file_data_end(p), end); /* the garbage was zeroed */
    check_entries_then_append(10);
}
END_TEST

START_TEST(test_torn_tail_lost_sector)
{
    /* the last record's payload end never reached the disk (zeros) */
    make_wal(10);
    char p[512];
    first_seg_path(p, sizeof p);
    off_t last = record_offset(p, 10);
    static const unsigned char zeros[200];
    pwrite_file(p, zeros, sizeof zeros, last + 9 + 16 + 50);
    check_entries_then_append(9);
}
END_TEST

/* Entries 1..30 written by one append: one batch, one fdatasync. */
static void make_wal_one_batch(void)
{
    wal *w = open_ok(SEG, NULL);
    write_meta_hs(w, 1, 0);
    append_range(w, 1, 30, 1, 300, 30);
    wal_close(w);
}

START_TEST(test_torn_last_batch_sectors_out_of_order)
{
    /* a crash let later sectors of the last batch reach the disk but not an
       earlier one: records that verify follow the hole, yet none of them is
       a crc record starting a later batch, so this batch never finished its
       fdatasync and is cut at the hole */
    make_wal_one_batch();
    char p[512];
    first_seg_path(p, sizeof p);
    off_t z = (record_offset(p, 10) / 512 + 1) * 512;
    uint64_t hit = 10;
    while (record_offset(p, hit + 1) <= z)
        hit++;
    ck_assert_int_gt(record_offset(p, 30), z + 512); /* valid records after */
    static const unsigned char zeros[512];
    pwrite_file(p, zeros, sizeof zeros, z);
    wal *w = open_ok(SEG, NULL);
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, hit - 1);
    check_entry(&r->entries[hit - 2], hit - 1, 1, 300);
    wal_replay_free(r);
    wal_close(w);
    check_entries_then_append(hit - 1);
}
END_TEST

START_TEST(test_bit_flip_in_last_batch_is_corruption)
{
    /* a flipped bit leaves no zeros: the batch was whole on disk once, so
       this is damage, not a torn write */
    make_wal_one_batch();
    char p[512], err[512], want[64];
    first_seg_path(p, sizeof p);
    off_t off = record_offset(p, 12);
    unsigned char b;
    pread_file(p, &b, 1, off + 9 + 16 + 33);
    b ^= 0x01;
    pwrite_file(p, &b, 1, off + 9 + 16 + 33);
    ck_assert_int_eq(open_fails(SEG, err, sizeof err), BACKEND_EWAL_CORRUPT);
    snprintf(want, sizeof want, "offset %lld", (long long)off);
    ck_assert_msg(strstr(err, want) != NULL, "%s lacks %s", err, want);
}
END_TEST

START_TEST(test_bad_crc_mid_file_names_file_and_offset)
{
    make_wal(10);
    char p[512], err[512], want[64];
    first_seg_path(p, sizeof p);
    off_t off = record_offset(p, 4);
    unsigned char b;
    pread_file(p, &b, 1, off + 9 + 16 + 10);
    b ^= 0x40;
    pwrite_file(p, &b, 1, off + 9 + 16 + 10);
    ck_assert_int_eq(open_fails(SEG, err, sizeof err), BACKEND_EWAL_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "crc"));
    ck_assert_ptr_nonnull(strstr(err, "0000000000000000-0000000000000000.wal"));
    snprintf(want, sizeof want, "offset %lld", (long long)off);
    ck_assert_msg(strstr(err, want) != NULL, "%s lacks %s", err, want);
    /* refusing to open changed nothing: still corrupt, data still there */
    ck_assert_int_eq(open_fails(SEG, err, sizeof err), BACKEND_EWAL_CORRUPT);
    ck_assert_int_gt(file_data_end(p), record_offset(p, 10));
}
END_TEST

START_TEST(test_bad_length_mid_file)
{
    make_wal(10);
    char p[512], err[512], want[64];
    first_seg_path(p, sizeof p);
    off_t off = record_offset(p, 6);
    unsigned char len[4] = {0x10, 0, 0, 0}; /* shorter than the record */
    pwrite_file(p, len, 4, off);
    ck_assert_int_eq(open_fails(SEG, err, sizeof err), BACKEND_EWAL_CORRUPT);
    snprintf(want, sizeof want, "offset %lld", (long long)off);
    ck_assert_msg(strstr(err, want) != NULL, "%s lacks %s", err, want);
}
END_TEST

START_TEST(test_zeroed_record_mid_file)
{
    make_wal(10);
    char p[512], err[512];
    first_seg_path(p, sizeof p);
    off_t off = record_offset(p, 5);
    static const unsigned char zeros[9];
    pwrite_file(p, zeros, sizeof zeros, off);
    ck_assert_int_eq(open_fails(SEG, err, sizeof err), BACKEND_EWAL_CORRUPT);
}
END_TEST

START_TEST(test_bad_crc_in_older_segment)
{
    wal *w = open_ok(SEG, NULL);
    append_range(w, 1, 100, 1, 1000, 8);
    wal_close(w);
    char names[64][64], p[512], err[512];
    ck_assert_int_ge(list_segs(names, 64), 3);
    seg_path(p, sizeof p, names[1]);
    /* the last record of a full segment, followed by zeros: still corruption
       because it is not the last segment */
    off_t end = file_data_end(p);
    unsigned char b;
    pread_file(p, &b, 1, end - 1);
    b ^= 0xff;
    pwrite_file(p, &b, 1, end - 1);
    ck_assert_int_eq(open_fails(SEG, err, sizeof err), BACKEND_EWAL_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, names[1]));
}
END_TEST

START_TEST(test_empty_last_segment)
{
    /* a crash right after a cut: the new segment holds only its header */
    wal *w = open_ok(SEG, NULL);
    write_meta_hs(w, 1, 0);
    append_range(w, 1, 40, 1, 1000, 1);
    wal_close(w);
    char names[64][64], p[512];
    int n = list_segs(names, 64);
    ck_assert_int_ge(n, 2);
    seg_path(p, sizeof p, names[n - 1]);
    unsigned long long seq, first;
    sscanf(names[n - 1], "%16llx-%16llx.wal", &seq, &first);
    off_t off = record_offset(p, first);
    static unsigned char zeros[SEG];
    pwrite_file(p, zeros, (size_t)(file_data_end(p) - off), off);

    w = open_ok(SEG, NULL);
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, first - 1);
    ck_assert_mem_eq(r->metadata, META, sizeof META);
    wal_replay_free(r);
    append_range(w, first, first + 2, 1, 1000, 1);
    wal_close(w);
    w = open_ok(SEG, NULL);
    r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, first + 2);
    wal_replay_free(r);
    wal_close(w);
}
END_TEST

static void last_segment_lost(int zero_length)
{
    wal *w = open_ok(SEG, NULL);
    write_meta_hs(w, 1, 0);
    append_range(w, 1, 40, 1, 1000, 1);
    wal_close(w);
    char names[64][64], p[512];
    int n = list_segs(names, 64);
    ck_assert_int_ge(n, 2);
    seg_path(p, sizeof p, names[n - 1]);
    unsigned long long seq, first;
    sscanf(names[n - 1], "%16llx-%16llx.wal", &seq, &first);
    ck_assert_int_eq(truncate(p, 0), 0);
    if (!zero_length)
        ck_assert_int_eq(truncate(p, SEG), 0); /* only preallocated zeros */

    w = open_ok(SEG, NULL);
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, first - 1);
    ck_assert_mem_eq(r->metadata, META, sizeof META);
    wal_replay_free(r);
    append_range(w, first, first + 2, 1, 1000, 1);
    wal_close(w);
    w = open_ok(SEG, NULL);
    r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, first + 2);
    check_entry(&r->entries[first + 1], first + 2, 1, 1000);
    wal_replay_free(r);
    wal_close(w);
}

START_TEST(test_last_segment_only_zeros)
{
    last_segment_lost(0);
}
END_TEST

START_TEST(test_last_segment_zero_length)
{
    last_segment_lost(1);
}
END_TEST

START_TEST(test_zeroed_older_segment_is_corruption)
{
    wal *w = open_ok(SEG, NULL);
    append_range(w, 1, 100, 1, 1000, 8);
    wal_close(w);
    char names[64][64], p[512], err[512];
    ck_assert_int_ge(list_segs(names, 64), 3);
    seg_path(p, sizeof p, names[1]);
    ck_assert_int_eq(truncate(p, 0), 0);
    ck_assert_int_eq(truncate(p, SEG), 0);
    ck_assert_int_eq(open_fails(SEG, err, sizeof err), BACKEND_EWAL_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, names[1]));
}
END_TEST

/* ---- asynchronous appends ------------------------------------------------------------ */

struct order {
    struct event_base *base;
    int n, got, bad_status;
    int seen[1024];
};

struct done_ctx {
    struct order *o;
    int i;
};

static void on_ordered_done(void *arg, int status)
{
    struct done_ctx *c = arg;
    struct order *o = c->o;
    if (status)
        o->bad_status++;
    o->seen[o->got++] = c->i;
    if (o->got == o->n)
        event_base_loopbreak(o->base);
}

static void run_until_done(struct order *o)
{
    while (o->got < o->n)
        ck_assert_int_ge(event_base_loop(o->base, EVLOOP_ONCE), 0);
}

START_TEST(test_async_completion_order_and_group_commit)
{
    struct event_base *base = event_base_new();
    wal *w = open_ok(SEG * 8, base);
    static struct order o;
    static struct done_ctx ctx[1024];
    memset(&o, 0, sizeof o);
    o.base = base;
    o.n = 256;
    unsigned char d[128];
    for (int i = 0; i < o.n; i++) {
        wal_entry e = {(uint64_t)i + 1, 1, d, entry_data((uint64_t)i + 1, 1, d, sizeof d)};
        wal_write wr = {.entries = &e, .n_entries = 1};
        ctx[i] = (struct done_ctx){&o, i};
        ck_assert_int_eq(wal_append(w, &wr, on_ordered_done, &ctx[i]), 0);
    }
    run_until_done(&o);
    ck_assert_int_eq(o.bad_status, 0);
    for (int i = 0; i < o.n; i++)
        ck_assert_int_eq(o.seen[i], i);
    wal_stats st;
    wal_get_stats(w, &st);
    ck_assert_uint_eq(st.appends, 256);
    ck_assert_uint_eq(st.records, 256);
    /* group commit: appends queued during one fdatasync share the next */
    ck_assert_msg(st.syncs * 4 < 256, "%" PRIu64 " fdatasyncs for 256 appends", st.syncs);
    ck_assert_uint_gt(st.max_batch, 16);
    ck_assert_uint_eq(st.queued_bytes, 0);
    wal_close(w);
    event_base_free(base);

    w = open_ok(SEG * 8, NULL);
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, 256);
    check_entry(&r->entries[255], 256, 1, 128);
    wal_replay_free(r);
    wal_close(w);
}
END_TEST

/* Appends from completion callbacks keep `outstanding` appends in flight,
 * the way the member's loop issues them. */
struct chain {
    struct event_base *base;
    wal *w;
    uint64_t next, last;
    int done, bad;
};

static void on_chain_done(void *arg, int status);

static void chain_issue(struct chain *c)
{
    unsigned char d[64];
    wal_entry e = {c->next, 1, d, entry_data(c->next, 1, d, sizeof d)};
    wal_write wr = {.entries = &e, .n_entries = 1};
    ck_assert_int_eq(wal_append(c->w, &wr, on_chain_done, c), 0);
    c->next++;
}

static void on_chain_done(void *arg, int status)
{
    struct chain *c = arg;
    if (status)
        c->bad++;
    c->done++;
    if (c->next <= c->last)
        chain_issue(c);
}

START_TEST(test_appends_from_callbacks)
{
    struct event_base *base = event_base_new();
    struct chain c = {base, NULL, 1, 300, 0, 0};
    c.w = open_ok(SEG, base);
    for (int i = 0; i < 8; i++)
        chain_issue(&c);
    while (c.done < 300)
        ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE), 0);
    ck_assert_int_eq(c.bad, 0);
    /* replay while the WAL is open and idle sees everything */
    wal_replay_result *r = replay_ok(c.w, 0);
    ck_assert_uint_eq(r->n_entries, 300);
    wal_replay_free(r);
    wal_close(c.w);
    event_base_free(base);
}
END_TEST

static int full_done;
static void on_full_done(void *arg, int status)
{
    (void)arg;
    ck_assert_int_eq(status, 0);
    full_done++;
}

START_TEST(test_queue_full_is_backpressure)
{
    struct event_base *base = event_base_new();
    wal *w = NULL;
    wal_options o = {.segment_size = SEG, .queue_limit = 4096, .base = base};
    ck_assert_int_eq(wal_open(&w, dir, &o, NULL, 0), 0);
    static unsigned char d[1000];
    int accepted = 0, rc;
    full_done = 0;
    for (uint64_t i = 1;; i++) {
        wal_entry e = {i, 1, d, sizeof d};
        wal_write wr = {.entries = &e, .n_entries = 1};
        rc = wal_append(w, &wr, on_full_done, NULL);
        if (rc)
            break;
        accepted++;
    }
    /* nothing is delivered before the loop runs: the queue stays charged */
    ck_assert_int_eq(rc, BACKEND_EWAL_FULL);
    ck_assert_int_eq(accepted, 3);
    wal_stats st;
    wal_get_stats(w, &st);
    ck_assert_uint_eq(st.queue_full, 1);
    ck_assert_uint_gt(st.queued_bytes, 3000);
    /* a single append larger than the queue could never go */
    static unsigned char big[8192];
    wal_entry e = {4, 1, big, sizeof big};
    wal_write wr = {.entries = &e, .n_entries = 1};
    ck_assert_int_eq(wal_append(w, &wr, on_full_done, NULL), BACKEND_EWAL_TOOBIG);
    while (full_done < accepted)
        ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE), 0);
    wal_get_stats(w, &st);
    ck_assert_uint_eq(st.queued_bytes, 0);
    e = (wal_entry){4, 1, d, sizeof d};
    ck_assert_int_eq(wal_append(w, &wr, on_full_done, NULL), 0); /* room again */
    wal_close(w);                                                /* delivers the last completion */
    ck_assert_int_eq(full_done, accepted + 1);
    event_base_free(base);
}
END_TEST

static int close_done, close_bad;
static void on_close_done(void *arg, int status)
{
    (void)arg;
    if (status)
        close_bad++;
    close_done++;
}

START_TEST(test_close_drains_and_delivers)
{
    struct event_base *base = event_base_new();
    wal *w = open_ok(SEG, base);
    unsigned char d[100];
    close_done = close_bad = 0;
    for (uint64_t i = 1; i <= 50; i++) {
        wal_entry e = {i, 1, d, entry_data(i, 1, d, sizeof d)};
        wal_write wr = {.entries = &e, .n_entries = 1};
        ck_assert_int_eq(wal_append(w, &wr, on_close_done, NULL), 0);
    }
    wal_close(w); /* without running the loop */
    ck_assert_int_eq(close_done, 50);
    ck_assert_int_eq(close_bad, 0);
    event_base_free(base);
    w = open_ok(SEG, NULL);
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, 50);
    wal_replay_free(r);
    wal_close(w);
}
END_TEST

/* Replay reads only what the WAL thread has synced: while appends are in
 * flight it returns a prefix of them, never a half-written record. */
START_TEST(test_replay_while_appending)
{
    struct event_base *base = event_base_new();
    wal *w = open_ok(SEG, base);
    unsigned char d[700];
    close_done = close_bad = 0;
    uint64_t issued = 0;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 10; i++) {
            issued++;
            wal_entry e = {issued, 1, d, entry_data(issued, 1, d, sizeof d)};
            wal_write wr = {.entries = &e, .n_entries = 1};
            ck_assert_int_eq(wal_append(w, &wr, on_close_done, NULL), 0);
        }
        event_base_loop(base, EVLOOP_NONBLOCK); /* kick the WAL thread */
        wal_replay_result *r = replay_ok(w, 0);
        ck_assert_uint_le(r->n_entries, issued);
        for (size_t k = 0; k < r->n_entries; k++)
            check_entry(&r->entries[k], k + 1, 1, sizeof d);
        wal_replay_free(r);
    }
    while (close_done < (int)issued)
        ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE), 0);
    ck_assert_int_eq(close_bad, 0);
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, issued);
    wal_replay_free(r);
    wal_close(w);
    event_base_free(base);
}
END_TEST

START_TEST(test_sync_append_orders_after_async)
{
    struct event_base *base = event_base_new();
    wal *w = open_ok(SEG, base);
    unsigned char d[100];
    close_done = close_bad = 0;
    for (uint64_t i = 1; i <= 20; i++) {
        wal_entry e = {i, 1, d, entry_data(i, 1, d, sizeof d)};
        wal_write wr = {.entries = &e, .n_entries = 1};
        ck_assert_int_eq(wal_append(w, &wr, on_close_done, NULL), 0);
    }
    append_range(w, 21, 21, 1, 100, 1);
    /* the async ones before it are durable already */
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, 21);
    wal_replay_free(r);
    while (close_done < 20)
        ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE), 0);
    wal_close(w);
    event_base_free(base);
}
END_TEST

/* A write the kernel refuses (RLIMIT_FSIZE makes pwrite fail with EFBIG
 * past the limit) fails the WAL for good: that append reports
 * BACKEND_EWAL_IO, later ones BACKEND_EWAL_FAILED, nothing is retried. */
static int io_done, io_status[8];
static void on_io_done(void *arg, int status)
{
    (void)arg;
    io_status[io_done++] = status;
}

START_TEST(test_write_failure_is_sticky)
{
    struct event_base *base = event_base_new();
    wal *w = open_ok(SEG, base);
    append_range(w, 1, 2, 1, 1000, 1);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl, saved;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    rl = saved;
    rl.rlim_cur = 12 << 10; /* soft limit only: it can be raised again */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);

    static unsigned char d[6000];
    wal_entry e = {3, 1, d, sizeof d};
    wal_write wr = {.entries = &e, .n_entries = 1};
    ck_assert_int_eq(wal_append(w, &wr, on_io_done, NULL), 0);
    e.index = 4;
    ck_assert_int_eq(wal_append(w, &wr, on_io_done, NULL), 0);
    while (io_done < 2)
        ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE), 0);
    ck_assert_int_eq(io_status[0], BACKEND_EWAL_IO);
    /* 4 went out in the same batch as 3, or after it as FAILED */
    ck_assert(io_status[1] == BACKEND_EWAL_IO || io_status[1] == BACKEND_EWAL_FAILED);
    ck_assert_ptr_nonnull(strstr(wal_errmsg(w), "File too large"));
    e.index = 5;
    ck_assert_int_eq(wal_append(w, &wr, on_io_done, NULL), BACKEND_EWAL_FAILED);
    ck_assert_int_eq(wal_append_sync(w, &wr), BACKEND_EWAL_FAILED);
    wal_close(w);
    event_base_free(base);

    /* what reached the disk is consistent again after a reopen */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    w = open_ok(SEG, NULL);
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_uint_ge(r->n_entries, 2);
    wal_replay_free(r);
    wal_close(w);
}
END_TEST

/* ---- allocation failures ------------------------------------------------------------- */

START_TEST(test_alloc_failures_open)
{
    /* a WAL with several segments and metadata, so every path allocates */
    wal *w = open_ok(SEG, NULL);
    write_meta_hs(w, 1, 0);
    append_range(w, 1, 80, 1, 1000, 8);
    wal_close(w);
    int failures = 0;
    for (long i = 0;; i++) {
        char err[256];
        metcd_mem_fail_after(i);
        wal_options o = {.segment_size = SEG};
        int rc = wal_open(&w, dir, &o, err, sizeof err);
        metcd_mem_fail_after(-1);
        if (rc == 0)
            break;
        ck_assert_int_eq(rc, BACKEND_EWAL_NOMEM);
        ck_assert_ptr_null(w);
        failures++;
        ck_assert_int_lt(i, 1000);
    }
    ck_assert_int_gt(failures, 2);
    wal_replay_result *r = replay_ok(w, 0);
    ck_assert_uint_eq(r->n_entries, 80);
    wal_replay_free(r);
    wal_close(w);
}
END_TEST

START_TEST(test_alloc_failures_new_wal)
{
    wal *w = NULL;
    for (long i = 0;; i++) {
        metcd_mem_fail_after(i);
        int rc = wal_open(&w, dir, NULL, NULL, 0);
        metcd_mem_fail_after(-1);
        if (rc == 0)
            break;
        ck_assert_int_eq(rc, BACKEND_EWAL_NOMEM);
        ck_assert_int_lt(i, 1000);
    }
    wal_close(w);
}
END_TEST

START_TEST(test_alloc_failures_append_and_replay)
{
    struct event_base *base = event_base_new();
    wal *w = open_ok(SEG, base);
    append_range(w, 1, 60, 1, 1000, 4);
    close_done = close_bad = 0;
    unsigned char d[100];
    int accepted = 0;
    for (long i = 0; i < 4; i++) {
        wal_entry e = {61 + (uint64_t)accepted, 1, d,
                       entry_data(61 + (uint64_t)accepted, 1, d, 100)};
        wal_write wr = {
            .metadata = META, .metadata_len = sizeof META, .entries = &e, .n_entries = 1};
        metcd_mem_fail_after(i);
        int rc = wal_append(w, &wr, on_close_done, NULL);
        metcd_mem_fail_after(-1);
        if (rc == 0)
            accepted++;
        else
            ck_assert_int_eq(rc, BACKEND_EWAL_NOMEM);
    }
    ck_assert_int_gt(accepted, 0);
    ck_assert_int_lt(accepted, 4);
    while (close_done < accepted)
        ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE), 0);
    ck_assert_int_eq(close_bad, 0);

    int failures = 0;
    for (long i = 0;; i++) {
        wal_replay_result *r = (wal_replay_result *)1;
        metcd_mem_fail_after(i);
        int rc = wal_replay(w, 0, &r);
        metcd_mem_fail_after(-1);
        if (rc == 0) {
            ck_assert_uint_eq(r->n_entries, 60 + (uint64_t)accepted);
            wal_replay_free(r);
            break;
        }
        ck_assert_int_eq(rc, BACKEND_EWAL_NOMEM);
        ck_assert_ptr_null(r);
        failures++;
        ck_assert_int_lt(i, 1000);
    }
    ck_assert_int_gt(failures, 3);
    wal_close(w);
    event_base_free(base);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("backend/wal");
    TCase *tc;

    tc = tcase_create("format");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_open_creates_first_segment);
    tcase_add_test(tc, test_second_open_is_locked);
    tcase_add_test(tc, test_lock_holds_across_processes);
    tcase_add_test(tc, test_append_reopen_replay);
    tcase_add_test(tc, test_empty_data_entries_and_barrier);
    tcase_add_test(tc, test_bad_arguments);
    suite_add_tcase(s, tc);

    tc = tcase_create("replay");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_replay_overwrites_conflicting_suffix);
    tcase_add_test(tc, test_replay_overwrite_across_segments);
    tcase_add_test(tc, test_replay_snapshot_markers);
    tcase_add_test(tc, test_replay_gap_is_corruption);
    suite_add_tcase(s, tc);

    tc = tcase_create("segments");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_segment_cut_names_and_headers);
    tcase_add_test(tc, test_release_and_restart);
    tcase_add_test(tc, test_replay_after_release_with_snapshot_in_headers);
    tcase_add_test(tc, test_replay_from_segment_opening_with_snapshot);
    tcase_add_test(tc, test_missing_middle_segment_is_corruption);
    tcase_add_test(tc, test_swapped_segment_breaks_chain);
    tcase_add_test(tc, test_leftover_tmp_is_removed);
    suite_add_tcase(s, tc);

    tc = tcase_create("crash");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_torn_tail_file_truncated_mid_record);
    tcase_add_test(tc, test_torn_tail_header_only);
    tcase_add_test(tc, test_torn_tail_garbage_after_last_record);
    tcase_add_test(tc, test_torn_tail_lost_sector);
    tcase_add_test(tc, test_torn_last_batch_sectors_out_of_order);
    tcase_add_test(tc, test_bit_flip_in_last_batch_is_corruption);
    tcase_add_test(tc, test_bad_crc_mid_file_names_file_and_offset);
    tcase_add_test(tc, test_bad_length_mid_file);
    tcase_add_test(tc, test_zeroed_record_mid_file);
    tcase_add_test(tc, test_bad_crc_in_older_segment);
    tcase_add_test(tc, test_empty_last_segment);
    tcase_add_test(tc, test_last_segment_only_zeros);
    tcase_add_test(tc, test_last_segment_zero_length);
    tcase_add_test(tc, test_zeroed_older_segment_is_corruption);
    suite_add_tcase(s, tc);

    tc = tcase_create("async");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_async_completion_order_and_group_commit);
    tcase_add_test(tc, test_appends_from_callbacks);
    tcase_add_test(tc, test_queue_full_is_backpressure);
    tcase_add_test(tc, test_close_drains_and_delivers);
    tcase_add_test(tc, test_replay_while_appending);
    tcase_add_test(tc, test_sync_append_orders_after_async);
    tcase_add_test(tc, test_write_failure_is_sticky);
    suite_add_tcase(s, tc);

    tc = tcase_create("alloc");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_alloc_failures_open);
    tcase_add_test(tc, test_alloc_failures_new_wal);
    tcase_add_test(tc, test_alloc_failures_append_and_replay);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
