/* Model test: random writes (puts, single and range deletes), compactions,
 * restarts of the kv (a new mvcc store over the same backend handed over
 * with watch_store_set_kv), watch creations at random revisions with
 * random ranges and filters, cancels, and transports that fill and drain at
 * random. Every watcher's stream must equal the history computed from the
 * write log: no gap, no duplicate, no reordering; a watcher cancelled by
 * compaction got a prefix and was really behind the compaction point. */
#include "util.h"

typedef struct mev {
    int type;
    char key[8], value[16];
    int64_t rev;
} mev;

typedef struct model {
    mev *log;
    size_t n, cap;
    watch_store *ws;
} model;

static void log_observer(void *arg, const mvcc_event *evs, size_t n, int64_t rev)
{
    model *m = arg;
    for (size_t i = 0; i < n; i++) {
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 256;
            m->log = realloc(m->log, m->cap * sizeof(*m->log));
        }
        mev *e = &m->log[m->n++];
        memset(e, 0, sizeof(*e));
        e->type = evs[i].type;
        ck_assert_uint_lt(evs[i].kv.key_len, sizeof(e->key));
        if (evs[i].kv.key_len)
            memcpy(e->key, evs[i].kv.key, evs[i].kv.key_len);
        ck_assert_uint_lt(evs[i].kv.value_len, sizeof(e->value));
        if (evs[i].kv.value_len)
            memcpy(e->value, evs[i].kv.value, evs[i].kv.value_len);
        e->rev = evs[i].rev.main;
        ck_assert_int_eq(e->rev, rev);
    }
    store_on_write(m->ws, evs, n, rev);
}

typedef struct mw {
    int stream;
    int64_t id;
    char key[8], end[8];
    bool has_end;
    int64_t start; /* effective first revision */
    bool no_put, no_delete, prev_kv;
    bool cancelled;
} mw;

#define NSTREAMS 3
#define MAXW 200

static const char *KEYS[] = {"a", "ab", "abc", "b", "ba", "c", "d"};
#define NKEYS 7

/* Compaction revisions: a tombstone at exactly the compaction revision is
 * removed by compaction (etcd's keyIndex.compact) while a watcher from that
 * revision is still valid, so such events are left out of both sides. */
static int64_t comps[4096];
static size_t ncomps;

static bool at_compaction(int type, int64_t rev)
{
    if (type != MVCC_EVENT_DELETE)
        return false;
    for (size_t i = 0; i < ncomps; i++)
        if (comps[i] == rev)
            return true;
    return false;
}

/* rec_events without the tombstones at compaction revisions. */
static void got_events(const recorder *rc, int64_t id, char *out, size_t cap)
{
    size_t l = 0;
    out[0] = 0;
    for (size_t i = 0; i < rc->n; i++) {
        const rec_resp *x = &rc->r[i];
        if (x->watch_id != id)
            continue;
        for (size_t j = 0; j < x->nev; j++) {
            const rec_event *e = &x->ev[j];
            if (at_compaction(e->type, e->mod))
                continue;
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

static bool in_range(const mw *w, const char *k)
{
    if (!w->has_end)
        return !strcmp(k, w->key);
    if (strcmp(k, w->key) < 0)
        return false;
    return !w->end[0] || strcmp(k, w->end) < 0;
}

START_TEST(test_model_random)
{
    unsigned seed = 1000u + (unsigned)_i;
    ncomps = 0;
    watch_options o = {.max_watchers_per_sync = 7,
                       .max_batch_revs = 13,
                       .max_response_bytes = 600,
                       .max_request_bytes = 200};
    fixture f;
    fx_init_opt(&f, &o);
    model m = {.ws = f.ws};
    mvcc_set_observer(f.kv, log_observer, &m);
    recorder rec[NSTREAMS];
    watch_stream *st[NSTREAMS];
    int64_t next_id[NSTREAMS];
    for (int i = 0; i < NSTREAMS; i++) {
        memset(&rec[i], 0, sizeof(rec[i]));
        rec[i].budget = -1;
        ck_assert_int_eq(watch_stream_new(&st[i], f.ws, rec_send, &rec[i]), 0);
        next_id[i] = 1;
    }
    mw *ws = calloc(MAXW, sizeof(*ws));
    size_t nw = 0;
    int steps = SCALE(3000);
    for (int step = 0; step < steps; step++) {
        int op = (int)(rand_r(&seed) % 100);
        int64_t cur = mvcc_current_rev(f.kv);
        if (op < 45) {
            char v[16];
            snprintf(v, sizeof(v), "%d", step);
            put(f.kv, KEYS[rand_r(&seed) % NKEYS], v);
        } else if (op < 55) {
            const char *k = KEYS[rand_r(&seed) % NKEYS];
            del(f.kv, k, rand_r(&seed) % 2 ? NULL : "c");
        } else if (op < 65 && nw < MAXW) {
            mw *w = &ws[nw];
            memset(w, 0, sizeof(*w));
            w->stream = (int)(rand_r(&seed) % NSTREAMS);
            w->id = next_id[w->stream]++;
            snprintf(w->key, sizeof(w->key), "%s", KEYS[rand_r(&seed) % NKEYS]);
            int shape = (int)(rand_r(&seed) % 3);
            if (shape == 1) {
                w->has_end = true; /* prefix */
                snprintf(w->end, sizeof(w->end), "%s", w->key);
                w->end[strlen(w->end) - 1]++;
            } else if (shape == 2) {
                w->has_end = true; /* from key */
            }
            int64_t start =
                rand_r(&seed) % 3 ? 0 : 1 + (int64_t)(rand_r(&seed) % (uint64_t)(cur + 3));
            w->start = start ? start : cur + 1;
            w->no_put = rand_r(&seed) % 8 == 0;
            w->no_delete = !w->no_put && rand_r(&seed) % 8 == 0;
            w->prev_kv = rand_r(&seed) % 4 == 0;
            watch_create c = wc(w->key, w->has_end ? w->end : NULL, start);
            c.watch_id = w->id;
            c.no_put = w->no_put;
            c.no_delete = w->no_delete;
            c.prev_kv = w->prev_kv;
            c.fragment = rand_r(&seed) % 2;
            ck_assert_int_eq(watch_stream_create(st[w->stream], &c), 0);
            nw++;
        } else if (op < 68 && nw) {
            mw *w = &ws[rand_r(&seed) % nw];
            if (!w->cancelled) {
                ck_assert_int_eq(watch_stream_cancel(st[w->stream], w->id), 0);
                w->cancelled = true;
            }
        } else if (op < 70) {
            int64_t c = mvcc_compact_rev(f.kv) + 1 + (int64_t)(rand_r(&seed) % 40);
            if (c < cur && rand_r(&seed) % 4 == 0) {
                compact(f.kv, c);
                ck_assert_uint_lt(ncomps, 4096);
                comps[ncomps++] = c;
                if (getenv("WATCH_MODEL_DEBUG"))
                    fprintf(stderr, "compact %lld\n", (long long)c);
            }
        } else if (op < 71) {
            /* restart of the kv over the same backend */
            mvcc_store *nk;
            ck_assert_int_eq(mvcc_open(&nk, f.be, NULL), 0);
            ck_assert_int_eq(mvcc_current_rev(nk), cur);
            mvcc_close(f.kv); /* closed before the hand-over: not touched */
            watch_store_set_kv(f.ws, nk);
            mvcc_set_observer(nk, log_observer, &m);
            f.kv = nk;
        } else if (op < 80) {
            rec[rand_r(&seed) % NSTREAMS].budget = (long)(rand_r(&seed) % 4);
        } else if (op < 86) {
            int k = (int)(rand_r(&seed) % NSTREAMS);
            rec[k].budget = -1;
            watch_stream_drained(st[k]);
        } else if (op < 93) {
            ck_assert_int_ge(watch_store_sync_pass(f.ws), 0);
        } else {
            watch_store_retry_victims(f.ws);
        }
    }
    for (int i = 0; i < NSTREAMS; i++) {
        rec[i].budget = -1;
        watch_stream_drained(st[i]);
    }
    for (int k = 0; k < 10000 && (f.ws->nvictims || f.ws->unsynced.n); k++) {
        watch_store_retry_victims(f.ws);
        ck_assert_int_ge(watch_store_sync_pass(f.ws), 0);
    }
    ck_assert_uint_eq(f.ws->nvictims + f.ws->unsynced.n, 0);

    char *want = malloc(1 << 18), *got = malloc(1 << 18);
    size_t compacted = 0, checked = 0;
    for (size_t i = 0; i < nw; i++) {
        mw *w = &ws[i];
        recorder *r = &rec[w->stream];
        /* expected history, with the revision of each event */
        size_t l = 0;
        want[0] = 0;
        int64_t *revs = malloc((m.n + 1) * sizeof(*revs));
        size_t nrev = 0;
        for (size_t j = 0; j < m.n; j++) {
            const mev *e = &m.log[j];
            if (e->rev < w->start || !in_range(w, e->key))
                continue;
            if (e->type == MVCC_EVENT_PUT ? w->no_put : w->no_delete)
                continue;
            if (at_compaction(e->type, e->rev))
                continue;
            if (e->type == MVCC_EVENT_PUT)
                l += (size_t)snprintf(want + l, (1 << 18) - l, "%sP %s=%s@%lld", l ? " " : "",
                                      e->key, e->value, (long long)e->rev);
            else
                l += (size_t)snprintf(want + l, (1 << 18) - l, "%sD %s@%lld", l ? " " : "", e->key,
                                      (long long)e->rev);
            revs[nrev++] = e->rev;
        }
        got_events(r, w->id, got, 1 << 18);
        /* created first; a compaction cancel, if any, is the last word */
        bool created = false, comp = false;
        int64_t comp_rev = 0;
        size_t nevents = 0;
        int64_t last_got = 0;
        for (size_t j = 0; j < r->n; j++) {
            const rec_resp *x = &r->r[j];
            if (x->watch_id != w->id)
                continue;
            if (x->created) {
                ck_assert(!created);
                created = true;
                continue;
            }
            ck_assert_msg(created, "event before created (watcher %zu)", i);
            if (x->compact_revision) {
                ck_assert(!comp);
                comp = true;
                comp_rev = x->compact_revision;
                continue;
            }
            if (x->canceled)
                continue;
            if (x->nev)
                ck_assert_msg(!comp, "event after compaction cancel");
            nevents += x->nev;
            if (x->nev)
                last_got = x->ev[x->nev - 1].mod;
            if (w->prev_kv)
                for (size_t e = 0; e < x->nev; e++)
                    if (x->ev[e].has_prev)
                        ck_assert_int_lt(x->ev[e].prev_mod, x->ev[e].mod);
        }
        ck_assert(created);
        if (comp || w->cancelled) {
            ck_assert_msg(!strncmp(got, want, strlen(got)),
                          "watcher %zu: not a prefix\n got %.400s\nwant %.400s", i, got, want);
            ck_assert(!got[0] || want[strlen(got)] == ' ' || want[strlen(got)] == 0);
            if (comp) {
                compacted++;
                /* it really needed a revision below the compaction */
                int64_t from = last_got ? last_got + 1 : w->start;
                ck_assert_int_lt(from, comp_rev);
            }
        } else {
            ck_assert_msg(!strcmp(got, want),
                          "watcher %zu [%s,%s) from %lld:\n got %.400s\nwant %.400s", i, w->key,
                          w->has_end ? w->end : "-", (long long)w->start, got, want);
            checked++;
        }
        free(revs);
    }
    ck_assert_uint_gt(checked, 3);
    ck_assert_uint_gt(rec[0].fulls + rec[1].fulls + rec[2].fulls, 0);
    (void)compacted;
    free(want);
    free(got);
    for (int i = 0; i < NSTREAMS; i++) {
        watch_stream_free(st[i]);
        rec_free(&rec[i]);
    }
    watch_stats stt;
    watch_store_stats(f.ws, &stt);
    ck_assert_uint_eq(stt.pending_bytes, 0);
    free(ws);
    free(m.log);
    fx_done(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("watch/model");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    /* WATCH_MODEL_SEEDS=n runs more seeds (bug hunting) */
    const char *ns = getenv("WATCH_MODEL_SEEDS"), *first = getenv("WATCH_MODEL_FIRST");
    int lo = first ? atoi(first) : 0;
    tcase_add_loop_test(tc, test_model_random, lo, lo + (ns ? atoi(ns) : 8));
    suite_add_tcase(s, tc);
    return run_suite(s);
}
