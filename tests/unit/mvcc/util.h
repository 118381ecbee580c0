/* Shared helpers for the mvcc unit tests (header-only, test code). */
#ifndef METCD_TEST_MVCC_UTIL_H
#define METCD_TEST_MVCC_UTIL_H

#include "backend/backend.h"
#include "mvcc/mvcc.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S(x) ((const uint8_t *)(x)), strlen(x)

static inline char *tmpdir_new(void)
{
    char tmpl[] = "/tmp/metcd-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    ck_assert_ptr_nonnull(d);
    return strdup(d);
}

static inline void tmpdir_rm(char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(dir);
}

/* A store over a fresh backend in dir. */
typedef struct fixture {
    char *dir;
    backend *be;
    mvcc_store *s;
} fixture;

static inline void fx_open(fixture *f)
{
    char err[256];
    backend_options o = {.no_sync = 1};
    ck_assert_int_eq(backend_open(&f->be, f->dir, &o, err, sizeof(err)), 0);
    ck_assert_int_eq(mvcc_open(&f->s, f->be, NULL), 0);
}

static inline void fx_init(fixture *f)
{
    f->dir = tmpdir_new();
    fx_open(f);
}

static inline void fx_close(fixture *f)
{
    mvcc_close(f->s);
    backend_close(f->be);
    f->s = NULL;
    f->be = NULL;
}

static inline void fx_reopen(fixture *f)
{
    fx_close(f);
    fx_open(f);
}

static inline void fx_done(fixture *f)
{
    fx_close(f);
    tmpdir_rm(f->dir);
}

static inline int64_t put(mvcc_store *s, const char *k, const char *v)
{
    mvcc_put_req r = {.key = (const uint8_t *)k, .key_len = strlen(k),
                      .value = (const uint8_t *)v, .value_len = strlen(v)};
    mvcc_result res = {0};
    ck_assert_int_eq(mvcc_put(s, &r, &res), 0);
    int64_t rev = res.resp.revision;
    mvcc_result_free(&res);
    return rev;
}

static inline int64_t del(mvcc_store *s, const char *k, const char *end)
{
    mvcc_delete_req r = {.key = (const uint8_t *)k, .key_len = strlen(k),
                         .range_end = (const uint8_t *)end, .range_end_len = end ? strlen(end) : 0};
    mvcc_result res = {0};
    ck_assert_int_eq(mvcc_delete_range(s, &r, &res), 0);
    int64_t n = res.resp.u.del.deleted;
    mvcc_result_free(&res);
    return n;
}

/* Value of key at rev (0 = current) into buf, or NULL if absent. */
static inline const char *get(mvcc_store *s, const char *k, int64_t rev, char *buf, size_t cap)
{
    mvcc_range_req r = {.key = (const uint8_t *)k, .key_len = strlen(k), .revision = rev};
    mvcc_result res = {0};
    ck_assert_int_eq(mvcc_range(s, &r, &res), 0);
    const char *out = NULL;
    if (res.resp.u.range.nkvs) {
        const mvcc_kv *kv = &res.resp.u.range.kvs[0];
        ck_assert_uint_lt(kv->value_len, cap);
        memcpy(buf, kv->value, kv->value_len);
        buf[kv->value_len] = 0;
        out = buf;
    }
    mvcc_result_free(&res);
    return out;
}

static inline int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
