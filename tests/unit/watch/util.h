/* Shared helpers for the watch unit tests (header-only, test code): a store
 * over a fresh backend, and a recording transport whose capacity the test
 * controls (FULL when its budget is spent, dead on demand). */
#ifndef METCD_TEST_WATCH_UTIL_H
#define METCD_TEST_WATCH_UTIL_H

#include "backend/backend.h"
#include "common/mem.h"
#include "mvcc/mvcc.h"
#include "watch/internal.h"
#include "watch/watch.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef METCD_SANITIZED
#define SCALE(n) ((n) / 4 ? (n) / 4 : 1)
#else
#define SCALE(n) (n)
#endif

/* ---- recorded responses ---------------------------------------------------------- */

typedef struct rec_event {
    int type;
    char *key, *value;
    int64_t create, mod, version, lease;
    bool has_prev;
    char *prev_value;
    int64_t prev_mod;
} rec_event;

typedef struct rec_resp {
    int64_t revision, watch_id, compact_revision;
    bool created, canceled, fragment;
    char reason[128];
    size_t size;
    size_t nev;
    rec_event *ev;
} rec_resp;

typedef struct recorder {
    rec_resp *r;
    size_t n, cap;
    long budget; /* responses accepted before FULL; < 0: unlimited */
    bool dead;
    size_t calls, fulls;
} recorder;

static inline char *dupn(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (n)
        memcpy(s, p, n);
    s[n] = 0;
    return s;
}

static inline int rec_send(void *arg, const watch_response *r)
{
    recorder *rc = arg;
    rc->calls++;
    if (rc->dead)
        return WATCH_ECLOSED;
    if (rc->budget == 0) {
        rc->fulls++;
        return WATCH_SEND_FULL;
    }
    if (rc->budget > 0)
        rc->budget--;
    if (rc->n == rc->cap) {
        rc->cap = rc->cap ? rc->cap * 2 : 16;
        rc->r = realloc(rc->r, rc->cap * sizeof(*rc->r));
    }
    rec_resp *x = &rc->r[rc->n++];
    memset(x, 0, sizeof(*x));
    x->revision = r->revision;
    x->watch_id = r->watch_id;
    x->compact_revision = r->compact_revision;
    x->created = r->created;
    x->canceled = r->canceled;
    x->fragment = r->fragment;
    ck_assert_ptr_nonnull(r->cancel_reason);
    snprintf(x->reason, sizeof(x->reason), "%s", r->cancel_reason);
    x->size = watch_response_size(r);
    x->nev = r->nevents;
    x->ev = calloc(r->nevents ? r->nevents : 1, sizeof(rec_event));
    for (size_t i = 0; i < r->nevents; i++) {
        const watch_event *e = &r->events[i];
        rec_event *y = &x->ev[i];
        y->type = e->type;
        y->key = dupn(e->kv->key, e->kv->key_len);
        y->value = dupn(e->kv->value, e->kv->value_len);
        y->create = e->kv->create_revision;
        y->mod = e->kv->mod_revision;
        y->version = e->kv->version;
        y->lease = e->kv->lease;
        if (e->prev_kv) {
            y->has_prev = true;
            y->prev_value = dupn(e->prev_kv->value, e->prev_kv->value_len);
            y->prev_mod = e->prev_kv->mod_revision;
        }
    }
    return 0;
}

static inline void rec_clear(recorder *rc)
{
    for (size_t i = 0; i < rc->n; i++) {
        for (size_t j = 0; j < rc->r[i].nev; j++) {
            free(rc->r[i].ev[j].key);
            free(rc->r[i].ev[j].value);
            free(rc->r[i].ev[j].prev_value);
        }
        free(rc->r[i].ev);
    }
    rc->n = 0;
}

static inline void rec_free(recorder *rc)
{
    rec_clear(rc);
    free(rc->r);
    memset(rc, 0, sizeof(*rc));
}

/* Events of watch id `id` as "P k=v@mod D k@mod ..." in arrival order. */
static inline void rec_events(const recorder *rc, int64_t id, char *out, size_t cap)
{
    size_t l = 0;
    out[0] = 0;
    for (size_t i = 0; i < rc->n; i++) {
        const rec_resp *x = &rc->r[i];
        if (x->watch_id != id)
            continue;
        for (size_t j = 0; j < x->nev; j++) {
            const rec_event *e = &x->ev[j];
            if (e->type == MVCC_EVENT_PUT)
                l += (size_t)snprintf(out + l, cap - l, "%sP %s=%s@%lld", l ? " " : "", e->key,
                                      e->value, (long long)e->mod);
            else
                l += (size_t)snprintf(out + l, cap - l, "%sD %s@%lld", l ? " " : "", e->key,
                                      (long long)e->mod);
            ck_assert_uint_lt(l, cap);
        }
    }
}

/* Number of responses of id with events. */
static inline size_t rec_count(const recorder *rc, int64_t id)
{
    size_t n = 0;
    for (size_t i = 0; i < rc->n; i++)
        if (rc->r[i].watch_id == id && rc->r[i].nev)
            n++;
    return n;
}

/* The events a watcher on (key, end) from revision `from` must see, from
 * the store's history, in rec_events' format (end as in wc()). */
struct expect_ctx {
    const char *key, *end;
    char *out;
    size_t l, cap;
    bool no_put, no_delete;
};

static inline int expect_cb(void *arg, const mvcc_event *ev)
{
    struct expect_ctx *c = arg;
    char k[256];
    ck_assert_uint_lt(ev->kv.key_len, sizeof(k));
    memcpy(k, ev->kv.key, ev->kv.key_len);
    k[ev->kv.key_len] = 0;
    const char *key = c->key[0] ? c->key : "\0";
    size_t kl = c->key[0] ? strlen(c->key) : 1;
    int lo = watch_bytes_cmp(ev->kv.key, ev->kv.key_len, (const uint8_t *)key, kl);
    bool in;
    if (!c->end)
        in = lo == 0;
    else if (!c->end[0])
        in = lo >= 0;
    else
        in = lo >= 0 && watch_bytes_cmp(ev->kv.key, ev->kv.key_len, (const uint8_t *)c->end,
                                        strlen(c->end)) < 0;
    if (!in || (ev->type == MVCC_EVENT_PUT ? c->no_put : c->no_delete))
        return 1;
    if (ev->type == MVCC_EVENT_PUT)
        c->l +=
            (size_t)snprintf(c->out + c->l, c->cap - c->l, "%sP %s=%.*s@%lld", c->l ? " " : "", k,
                             (int)ev->kv.value_len, ev->kv.value, (long long)ev->kv.mod_revision);
    else
        c->l += (size_t)snprintf(c->out + c->l, c->cap - c->l, "%sD %s@%lld", c->l ? " " : "", k,
                                 (long long)ev->kv.mod_revision);
    ck_assert_uint_lt(c->l, c->cap);
    return 1;
}

static inline void expect_events(mvcc_store *kv, const char *key, const char *end, int64_t from,
                                 bool no_put, bool no_delete, char *out, size_t cap)
{
    struct expect_ctx c = {key, end, out, 0, cap, no_put, no_delete};
    out[0] = 0;
    ck_assert_int_ge(mvcc_history(kv, from, 0, 0, expect_cb, &c), 0);
}

/* ---- the store ------------------------------------------------------------------- */

typedef struct fixture {
    char *dir;
    backend *be;
    mvcc_store *kv;
    watch_store *ws;
} fixture;

static inline void fx_init_opt(fixture *f, const watch_options *o)
{
    char tmpl[] = "/tmp/metcd-watch-XXXXXX";
    char *d = mkdtemp(tmpl);
    ck_assert_ptr_nonnull(d);
    f->dir = strdup(d);
    char err[256];
    backend_options bo = {.no_sync = 1};
    ck_assert_int_eq(backend_open(&f->be, f->dir, &bo, err, sizeof(err)), 0);
    ck_assert_int_eq(mvcc_open(&f->kv, f->be, NULL), 0);
    ck_assert_int_eq(watch_store_new(&f->ws, f->kv, NULL, o), 0);
}

static inline void fx_init(fixture *f)
{
    fx_init_opt(f, NULL);
}

static inline void fx_done(fixture *f)
{
    watch_store_free(f->ws);
    mvcc_close(f->kv);
    backend_close(f->be);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    ck_assert_int_eq(system(cmd), 0);
    free(f->dir);
}

static inline int64_t put(mvcc_store *s, const char *k, const char *v)
{
    mvcc_put_req r = {.key = (const uint8_t *)k,
                      .key_len = strlen(k),
                      .value = (const uint8_t *)v,
                      .value_len = strlen(v)};
    mvcc_result res = {0};
    ck_assert_int_eq(mvcc_put(s, &r, &res), 0);
    int64_t rev = res.resp.revision;
    mvcc_result_free(&res);
    return rev;
}

static inline int64_t del(mvcc_store *s, const char *k, const char *end)
{
    mvcc_delete_req r = {.key = (const uint8_t *)k,
                         .key_len = strlen(k),
                         .range_end = (const uint8_t *)end,
                         .range_end_len = end ? strlen(end) : 0};
    mvcc_result res = {0};
    ck_assert_int_eq(mvcc_delete_range(s, &r, &res), 0);
    int64_t n = res.resp.u.del.deleted;
    mvcc_result_free(&res);
    return n;
}

static inline void compact(mvcc_store *s, int64_t rev)
{
    ck_assert_int_eq(mvcc_compact(s, rev), 0);
    int rc;
    while ((rc = mvcc_compact_step(s)) == 1)
        ;
    ck_assert_int_eq(rc, 0);
}

/* A create request for key (end NULL: single key; "" : from key). */
static inline watch_create wc(const char *key, const char *end, int64_t rev)
{
    watch_create c = {.key = (const uint8_t *)key, .key_len = strlen(key), .start_revision = rev};
    if (end) {
        c.range_end = (const uint8_t *)(end[0] ? end : "\0");
        c.range_end_len = end[0] ? strlen(end) : 1;
    }
    return c;
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
