/* Watch streams: created / canceled / progress responses as etcd 3.4's
 * serverWatchStream sends them, ids (assigned and duplicate), filters,
 * prev_kv, range and prefix watchers, fragments, created-before-events
 * while the transport is full, and freeing a stream with pending work. */
#include "util.h"

#include <event2/event.h>

static watch_stream *stream(fixture *f, recorder *r)
{
    watch_stream *s;
    ck_assert_int_eq(watch_stream_new(&s, f->ws, rec_send, r), 0);
    return s;
}

START_TEST(test_created_then_synced_events)
{
    fixture f;
    fx_init(&f);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    put(f.kv, "x", "0");
    int64_t cur = mvcc_current_rev(f.kv);
    watch_create c = wc("a", NULL, 0);
    ck_assert_int_eq(watch_stream_create(s, &c), 0);
    ck_assert_uint_eq(r.n, 1);
    ck_assert(r.r[0].created);
    ck_assert(!r.r[0].canceled);
    ck_assert_int_eq(r.r[0].watch_id, 0);
    ck_assert_int_eq(r.r[0].revision, cur);
    ck_assert_uint_eq(r.r[0].nev, 0);
    int64_t r1 = put(f.kv, "a", "1");
    put(f.kv, "b", "2");
    del(f.kv, "a", NULL);
    ck_assert_uint_eq(r.n, 3);
    ck_assert_int_eq(r.r[1].revision, r1);
    ck_assert(!r.r[1].created);
    char got[256];
    rec_events(&r, 0, got, sizeof(got));
    ck_assert_str_eq(got, "P a=1@3 D a@5");
    /* a delete's kv: key and the tombstone revision only (etcd) */
    ck_assert_int_eq(r.r[2].ev[0].create, 0);
    ck_assert_int_eq(r.r[2].ev[0].version, 0);
    watch_stats st;
    watch_store_stats(f.ws, &st);
    ck_assert_uint_eq(st.synced, 1);
    ck_assert_uint_eq(st.events_sent, 2);
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

START_TEST(test_ids_auto_explicit_duplicate_and_empty_range)
{
    fixture f;
    fx_init(&f);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    watch_create c = wc("a", NULL, 0);
    ck_assert_int_eq(watch_stream_create(s, &c), 0); /* 0 */
    c.watch_id = 2;
    ck_assert_int_eq(watch_stream_create(s, &c), 0); /* 2 */
    c.watch_id = 0;
    ck_assert_int_eq(watch_stream_create(s, &c), 0); /* 1 */
    ck_assert_int_eq(watch_stream_create(s, &c), 0); /* 3: 2 is taken */
    c.watch_id = 2;
    ck_assert_int_eq(watch_stream_create(s, &c), 0); /* duplicate */
    watch_create bad = wc("b", "a", 0);
    ck_assert_int_eq(watch_stream_create(s, &bad), 0);
    watch_create same = wc("b", "b", 0);
    ck_assert_int_eq(watch_stream_create(s, &same), 0);
    ck_assert_uint_eq(r.n, 7);
    int64_t want[] = {0, 2, 1, 3};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(r.r[i].watch_id, want[i]);
        ck_assert(r.r[i].created && !r.r[i].canceled);
    }
    ck_assert_int_eq(r.r[4].watch_id, -1);
    ck_assert(r.r[4].created && r.r[4].canceled);
    ck_assert_str_eq(r.r[4].reason, "mvcc: duplicate watch ID provided on the WatchStream");
    ck_assert_str_eq(r.r[5].reason, "mvcc: watcher range is empty");
    ck_assert_int_eq(r.r[5].watch_id, -1);
    ck_assert_str_eq(r.r[6].reason, "mvcc: watcher range is empty");
    /* ids are per stream */
    recorder r2 = {.budget = -1};
    watch_stream *s2 = stream(&f, &r2);
    c.watch_id = 0;
    ck_assert_int_eq(watch_stream_create(s2, &c), 0);
    ck_assert_int_eq(r2.r[0].watch_id, 0);
    watch_stats st;
    watch_store_stats(f.ws, &st);
    ck_assert_uint_eq(st.watchers, 5);
    ck_assert_uint_eq(st.streams, 2);
    watch_stream_free(s2);
    watch_stream_free(s);
    rec_free(&r);
    rec_free(&r2);
    fx_done(&f);
}
END_TEST

START_TEST(test_cancel_and_progress_request)
{
    fixture f;
    fx_init(&f);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    watch_create c = wc("a", NULL, 0);
    ck_assert_int_eq(watch_stream_create(s, &c), 0);
    put(f.kv, "a", "1");
    ck_assert_int_eq(watch_stream_cancel(s, 0), 0);
    ck_assert_uint_eq(r.n, 3);
    ck_assert(r.r[2].canceled && !r.r[2].created);
    ck_assert_int_eq(r.r[2].watch_id, 0);
    ck_assert_int_eq(r.r[2].revision, mvcc_current_rev(f.kv));
    ck_assert_int_eq(watch_stream_cancel(s, 0), WATCH_ENOT_FOUND);
    ck_assert_int_eq(watch_stream_cancel(s, 77), WATCH_ENOT_FOUND);
    ck_assert_uint_eq(r.n, 3);
    put(f.kv, "a", "2"); /* no event after cancel */
    ck_assert_uint_eq(r.n, 3);
    ck_assert_int_eq(watch_stream_progress(s), 0);
    ck_assert_uint_eq(r.n, 4);
    ck_assert_int_eq(r.r[3].watch_id, -1);
    ck_assert_int_eq(r.r[3].revision, mvcc_current_rev(f.kv));
    ck_assert(!r.r[3].created && !r.r[3].canceled);
    /* etcd's watchStream never hands out an assigned id twice */
    c.watch_id = 0;
    ck_assert_int_eq(watch_stream_create(s, &c), 0);
    ck_assert_int_eq(r.r[4].watch_id, 1);
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

START_TEST(test_filters_and_prev_kv)
{
    fixture f;
    fx_init(&f);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    watch_create noput = wc("k", NULL, 0);
    noput.no_put = true;
    watch_create nodel = wc("k", NULL, 0);
    nodel.no_delete = true;
    watch_create prev = wc("k", NULL, 0);
    prev.prev_kv = true;
    ck_assert_int_eq(watch_stream_create(s, &noput), 0); /* 0 */
    ck_assert_int_eq(watch_stream_create(s, &nodel), 0); /* 1 */
    ck_assert_int_eq(watch_stream_create(s, &prev), 0);  /* 2 */
    put(f.kv, "k", "1");
    put(f.kv, "k", "2");
    del(f.kv, "k", NULL);
    put(f.kv, "k", "3");
    char got[256];
    rec_events(&r, 0, got, sizeof(got));
    ck_assert_str_eq(got, "D k@4");
    rec_events(&r, 1, got, sizeof(got));
    ck_assert_str_eq(got, "P k=1@2 P k=2@3 P k=3@5");
    rec_events(&r, 2, got, sizeof(got));
    ck_assert_str_eq(got, "P k=1@2 P k=2@3 D k@4 P k=3@5");
    /* prev_kv: not for creations (etcd's isCreateEvent), else the value
     * before the event */
    bool seen[4] = {false};
    int k = 0;
    for (size_t i = 0; i < r.n; i++) {
        if (r.r[i].watch_id != 2)
            continue;
        for (size_t j = 0; j < r.r[i].nev; j++, k++) {
            const rec_event *e = &r.r[i].ev[j];
            seen[k] = e->has_prev;
            if (k == 1) {
                ck_assert_str_eq(e->prev_value, "1");
                ck_assert_int_eq(e->prev_mod, 2);
            }
            if (k == 2)
                ck_assert_str_eq(e->prev_value, "2");
        }
    }
    ck_assert_int_eq(k, 4);
    ck_assert(!seen[0] && seen[1] && seen[2] && !seen[3]);
    /* watchers without prev_kv never get one */
    for (size_t i = 0; i < r.n; i++)
        if (r.r[i].watch_id != 2)
            for (size_t j = 0; j < r.r[i].nev; j++)
                ck_assert(!r.r[i].ev[j].has_prev);
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

START_TEST(test_range_prefix_from_key_and_empty_key)
{
    fixture f;
    fx_init(&f);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    watch_create pre = wc("a", "b", 0); /* prefix "a" */
    watch_create from = wc("b", "", 0); /* >= "b" */
    watch_create rng = wc("ab", "ac", 0);
    watch_create all = wc("", "", 0); /* empty key + "\0": every key */
    ck_assert_int_eq(watch_stream_create(s, &pre), 0);
    ck_assert_int_eq(watch_stream_create(s, &from), 0);
    ck_assert_int_eq(watch_stream_create(s, &rng), 0);
    ck_assert_int_eq(watch_stream_create(s, &all), 0);
    const char *keys[] = {"a", "ab", "abc", "ac", "b", "zz", "\x01"};
    for (int i = 0; i < 7; i++)
        put(f.kv, keys[i], "v");
    char got[512];
    rec_events(&r, 0, got, sizeof(got));
    ck_assert_str_eq(got, "P a=v@2 P ab=v@3 P abc=v@4 P ac=v@5");
    rec_events(&r, 1, got, sizeof(got));
    ck_assert_str_eq(got, "P b=v@6 P zz=v@7");
    rec_events(&r, 2, got, sizeof(got));
    ck_assert_str_eq(got, "P ab=v@3 P abc=v@4");
    ck_assert_uint_eq(rec_count(&r, 3), 7);
    /* one transaction touching several keys: one response per watcher */
    rec_clear(&r);
    ck_assert_int_eq(del(f.kv, "a", "b"), 4);
    ck_assert_uint_eq(rec_count(&r, 0), 1);
    rec_events(&r, 0, got, sizeof(got));
    ck_assert_str_eq(got, "D a@9 D ab@9 D abc@9 D ac@9");
    rec_events(&r, 2, got, sizeof(got));
    ck_assert_str_eq(got, "D ab@9 D abc@9");
    ck_assert_uint_eq(rec_count(&r, 1), 0);
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

/* Same interval and same key on many watchers of several streams: the
 * group shares slots, and removing some keeps the others. */
START_TEST(test_shared_slots)
{
    fixture f;
    fx_init(&f);
    recorder r1 = {.budget = -1}, r2 = {.budget = -1};
    watch_stream *s1 = stream(&f, &r1), *s2 = stream(&f, &r2);
    for (int i = 0; i < 10; i++) {
        watch_create a = wc("k", NULL, 0), p = wc("k", "l", 0);
        ck_assert_int_eq(watch_stream_create(i % 2 ? s1 : s2, &a), 0);
        ck_assert_int_eq(watch_stream_create(i % 2 ? s1 : s2, &p), 0);
    }
    ck_assert_uint_eq(f.ws->synced.nslots, 1);
    ck_assert_uint_eq(f.ws->synced.ranges.n, 1);
    for (int64_t id = 0; id < 6; id++)
        ck_assert_int_eq(watch_stream_cancel(s1, id), 0);
    put(f.kv, "k", "1");
    size_t n1 = 0, n2 = 0;
    for (size_t i = 0; i < r1.n; i++)
        n1 += r1.r[i].nev;
    for (size_t i = 0; i < r2.n; i++)
        n2 += r2.r[i].nev;
    ck_assert_uint_eq(n1, 4);
    ck_assert_uint_eq(n2, 10);
    watch_stream_free(s2);
    ck_assert_uint_eq(f.ws->synced.n, 4);
    watch_stream_free(s1);
    ck_assert_uint_eq(f.ws->synced.nslots, 0);
    ck_assert_uint_eq(f.ws->synced.ranges.n, 0);
    rec_free(&r1);
    rec_free(&r2);
    fx_done(&f);
}
END_TEST

/* The created response goes out before any event of its watcher, even when
 * the transport is full at creation time. */
START_TEST(test_created_before_events_when_full)
{
    fixture f;
    fx_init(&f);
    recorder r = {.budget = 0};
    watch_stream *s = stream(&f, &r);
    watch_create c = wc("a", NULL, 0);
    ck_assert_int_eq(watch_stream_create(s, &c), 0);
    ck_assert_uint_eq(watch_stream_queued(s), 1);
    put(f.kv, "a", "1");
    put(f.kv, "a", "2");
    watch_create old = wc("a", NULL, 1); /* unsynced */
    ck_assert_int_eq(watch_stream_create(s, &old), 0);
    ck_assert_uint_eq(watch_stream_queued(s), 2);
    ck_assert_int_eq(watch_store_sync_pass(f.ws), 1); /* stream blocked: not chosen */
    ck_assert_uint_eq(r.n, 0);
    r.budget = -1;
    watch_stream_drained(s);
    ck_assert_uint_eq(watch_stream_queued(s), 0);
    ck_assert(r.r[0].created && r.r[0].watch_id == 0);
    ck_assert(r.r[1].created && r.r[1].watch_id == 1);
    watch_store_sync_pass(f.ws);
    put(f.kv, "a", "3");
    char got[256];
    rec_events(&r, 0, got, sizeof(got));
    ck_assert_str_eq(got, "P a=1@2 P a=2@3 P a=3@4");
    rec_events(&r, 1, got, sizeof(got));
    ck_assert_str_eq(got, "P a=1@2 P a=2@3 P a=3@4");
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

/* fragment: one revision over the limit is split, every part but the last
 * marked; without fragment the revision goes out whole. */
START_TEST(test_fragment)
{
    watch_options o = {.max_request_bytes = 100};
    fixture f;
    fx_init_opt(&f, &o);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    watch_create fr = wc("k", "l", 0);
    fr.fragment = true;
    watch_create whole = wc("k", "l", 0);
    ck_assert_int_eq(watch_stream_create(s, &fr), 0);
    ck_assert_int_eq(watch_stream_create(s, &whole), 0);
    char key[8], val[64];
    memset(val, 'v', sizeof(val) - 1);
    val[sizeof(val) - 1] = 0;
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        put(f.kv, key, val);
    }
    rec_clear(&r);
    ck_assert_int_eq(del(f.kv, "k", "l"), 20);
    size_t parts = 0, evs = 0;
    for (size_t i = 0; i < r.n; i++) {
        if (r.r[i].watch_id != 0)
            continue;
        parts++;
        evs += r.r[i].nev;
        ck_assert(r.r[i].nev >= 1);
        ck_assert(r.r[i].size < 100 || r.r[i].nev == 1);
        bool last = evs == 20;
        ck_assert_int_eq(r.r[i].fragment, !last);
    }
    ck_assert_uint_eq(evs, 20);
    ck_assert_uint_gt(parts, 2);
    ck_assert_uint_eq(rec_count(&r, 1), 1);
    /* a fragmenting watcher under the limit gets one plain response */
    rec_clear(&r);
    put(f.kv, "k00", "x");
    ck_assert_uint_eq(rec_count(&r, 0), 1);
    ck_assert(!r.r[0].fragment);
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

/* A transport that fills in the middle of a fragment sequence: the rest
 * follows after the drain, nothing lost or repeated. */
START_TEST(test_fragment_interrupted)
{
    watch_options o = {.max_request_bytes = 100};
    fixture f;
    fx_init_opt(&f, &o);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    watch_create fr = wc("k", "l", 0);
    fr.fragment = true;
    ck_assert_int_eq(watch_stream_create(s, &fr), 0);
    char key[8];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        put(f.kv, key, "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv");
    }
    rec_clear(&r);
    r.budget = 2;
    del(f.kv, "k", "l");
    ck_assert_uint_eq(r.n, 2);
    ck_assert(r.r[1].fragment);
    watch_stats st;
    watch_store_stats(f.ws, &st);
    ck_assert_uint_eq(st.victims, 1);
    r.budget = -1;
    watch_stream_drained(s);
    char got[2048];
    rec_events(&r, 0, got, sizeof(got));
    char want[2048];
    size_t l = 0;
    for (int i = 0; i < 20; i++)
        l += (size_t)snprintf(want + l, sizeof(want) - l, "%sD k%02d@22", i ? " " : "", i);
    ck_assert_str_eq(got, want);
    ck_assert(!r.r[r.n - 1].fragment);
    watch_store_stats(f.ws, &st);
    ck_assert_uint_eq(st.victims, 0);
    ck_assert_uint_eq(st.pending_bytes, 0);
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

/* Freeing a stream with victims, queued control responses and unsynced
 * watchers releases everything (ASan checks the leaks). */
START_TEST(test_free_with_pending_work)
{
    fixture f;
    fx_init(&f);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    for (int i = 0; i < 50; i++)
        put(f.kv, i % 2 ? "a" : "b", "v");
    watch_create c = wc("a", "c", 0);
    ck_assert_int_eq(watch_stream_create(s, &c), 0);
    watch_create old = wc("a", NULL, 2);
    ck_assert_int_eq(watch_stream_create(s, &old), 0);
    r.budget = 0;
    put(f.kv, "a", "x");                           /* victim */
    ck_assert_int_eq(watch_stream_progress(s), 0); /* queued */
    watch_create more = wc("b", NULL, 0);
    ck_assert_int_eq(watch_stream_create(s, &more), 0); /* queued */
    watch_stats st;
    watch_store_stats(f.ws, &st);
    ck_assert_uint_eq(st.victims, 1);
    ck_assert_uint_eq(st.unsynced, 1);
    ck_assert_uint_gt(st.pending_bytes, 0);
    watch_stream_free(s);
    watch_store_stats(f.ws, &st);
    ck_assert_uint_eq(st.watchers, 0);
    ck_assert_uint_eq(st.victims + st.unsynced + st.synced, 0);
    ck_assert_uint_eq(st.pending_bytes, 0);
    ck_assert_uint_eq(st.streams, 0);
    ck_assert_int_eq(watch_store_retry_victims(f.ws), 0);
    put(f.kv, "a", "y");
    rec_free(&r);
    fx_done(&f);
}
END_TEST

/* A dead transport: calls say so and nothing accumulates. */
START_TEST(test_dead_stream)
{
    fixture f;
    fx_init(&f);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    watch_create c = wc("a", NULL, 0);
    ck_assert_int_eq(watch_stream_create(s, &c), 0);
    r.dead = true;
    for (int i = 0; i < 10; i++)
        put(f.kv, "a", "v");
    ck_assert_int_eq(watch_stream_create(s, &c), WATCH_ECLOSED);
    watch_stats st;
    watch_store_stats(f.ws, &st);
    ck_assert_uint_eq(st.victims, 0);
    ck_assert_uint_eq(st.pending_bytes, 0);
    ck_assert_uint_eq(r.calls, 2); /* created, then the first event failed */
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

/* Every allocation failure while creating leaves no watcher and no leak, and
 * the stream keeps working. */
START_TEST(test_create_allocation_failures)
{
    fixture f;
    fx_init(&f);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    int ok = 0;
    for (long i = 0; i < 40 && !ok; i++) {
        watch_create c = wc("a", i % 2 ? "b" : NULL, 0);
        metcd_mem_fail_after(i);
        int rc = watch_stream_create(s, &c);
        metcd_mem_fail_after(-1);
        if (rc == 0) {
            ok = 1;
            break;
        }
        ck_assert_int_eq(rc, WATCH_ENOMEM);
        watch_stats st;
        watch_store_stats(f.ws, &st);
        ck_assert_uint_eq(st.watchers, 0);
    }
    ck_assert(ok);
    put(f.kv, "a", "1");
    ck_assert_uint_eq(rec_count(&r, r.r[0].watch_id), 1);
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

/* Allocation failures while writes are delivered: each watcher still sees
 * every event exactly once in order, after retries. The i-th allocation of
 * the watch store's observer fails (mvcc's own allocations are spared). */
struct fail_obs {
    watch_store *ws;
    long k;
};

static void fail_observer(void *arg, const mvcc_event *evs, size_t n, int64_t rev)
{
    struct fail_obs *fo = arg;
    metcd_mem_fail_after(fo->k);
    store_on_write(fo->ws, evs, n, rev);
    metcd_mem_fail_after(-1);
}

START_TEST(test_notify_allocation_failures)
{
    fixture f;
    fx_init(&f);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    for (int i = 0; i < 4; i++) {
        watch_create c = wc("a", i % 2 ? "b" : NULL, 0);
        c.prev_kv = i >= 2;
        ck_assert_int_eq(watch_stream_create(s, &c), 0);
    }
    struct fail_obs fo = {f.ws, 0};
    mvcc_set_observer(f.kv, fail_observer, &fo);
    char want[8192] = "";
    size_t l = 0;
    for (long i = 0; i < 40; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%ld", i);
        fo.k = i % 10;
        r.budget = i % 3 ? -1 : 1; /* sometimes full too */
        int64_t rev = put(f.kv, "a", v);
        l += (size_t)snprintf(want + l, sizeof(want) - l, "%sP a=%s@%lld", l ? " " : "", v,
                              (long long)rev);
        r.budget = -1;
        for (int k = 0; k < 100 && (f.ws->nvictims || f.ws->unsynced.n); k++) {
            watch_store_retry_victims(f.ws);
            watch_store_sync_pass(f.ws);
        }
        ck_assert_uint_eq(f.ws->nvictims + f.ws->unsynced.n, 0);
    }
    char got[8192];
    for (int id = 0; id < 4; id++) {
        rec_events(&r, id, got, sizeof(got));
        ck_assert_str_eq(got, want);
    }
    mvcc_set_observer(f.kv, store_on_write, f.ws);
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

/* The timers on a real loop: an unsynced watcher catches up and a victim is
 * retried without any explicit call. */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

START_TEST(test_timers_on_loop)
{
    struct event_base *base = event_base_new();
    fixture f;
    f.dir = NULL;
    char tmpl[] = "/tmp/metcd-watch-XXXXXX";
    f.dir = strdup(mkdtemp(tmpl));
    char err[256];
    backend_options bo = {.no_sync = 1};
    ck_assert_int_eq(backend_open(&f.be, f.dir, &bo, err, sizeof(err)), 0);
    ck_assert_int_eq(mvcc_open(&f.kv, f.be, NULL), 0);
    watch_options o = {.progress_notify_interval_ms = 50};
    ck_assert_int_eq(watch_store_new(&f.ws, f.kv, base, &o), 0);
    recorder r = {.budget = -1};
    watch_stream *s;
    ck_assert_int_eq(watch_stream_new(&s, f.ws, rec_send, &r), 0);
    for (int i = 0; i < 5; i++)
        put(f.kv, "a", "v");
    watch_create c = wc("a", NULL, 1);
    ck_assert_int_eq(watch_stream_create(s, &c), 0);
    watch_create p = wc("zz", NULL, 0);
    p.progress_notify = true;
    ck_assert_int_eq(watch_stream_create(s, &p), 0);
    r.budget = 0;
    struct event *stop = evtimer_new(base, on_stop, base);
    struct timeval tv = {0, 120 * 1000};
    evtimer_add(stop, &tv);
    event_base_dispatch(base);
    ck_assert_uint_eq(rec_count(&r, 0), 0); /* full: nothing yet */
    r.budget = -1;                          /* no drained call: the 10 ms timer */
    evtimer_add(stop, &tv);
    event_base_dispatch(base);
    char got[256];
    rec_events(&r, 0, got, sizeof(got));
    ck_assert_str_eq(got, "P a=v@2 P a=v@3 P a=v@4 P a=v@5 P a=v@6");
    size_t progress = 0;
    for (size_t i = 0; i < r.n; i++)
        if (r.r[i].watch_id == 1 && !r.r[i].created)
            progress++;
    ck_assert_uint_ge(progress, 1);
    event_free(stop);
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
    event_base_free(base);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("watch/stream");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_created_then_synced_events);
    tcase_add_test(tc, test_ids_auto_explicit_duplicate_and_empty_range);
    tcase_add_test(tc, test_cancel_and_progress_request);
    tcase_add_test(tc, test_filters_and_prev_kv);
    tcase_add_test(tc, test_range_prefix_from_key_and_empty_key);
    tcase_add_test(tc, test_shared_slots);
    tcase_add_test(tc, test_created_before_events_when_full);
    tcase_add_test(tc, test_fragment);
    tcase_add_test(tc, test_fragment_interrupted);
    tcase_add_test(tc, test_free_with_pending_work);
    tcase_add_test(tc, test_dead_stream);
    tcase_add_test(tc, test_create_allocation_failures);
    tcase_add_test(tc, test_notify_allocation_failures);
    tcase_add_test(tc, test_timers_on_loop);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
