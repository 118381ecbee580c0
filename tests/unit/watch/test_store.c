/* The watchable store: unsynced catch-up from history in bounded passes,
 * compaction cancel, victims (FULL then drained: nothing lost, nothing
 * repeated, order kept), bounded memory for a client that stops reading,
 * progress notifications, splitting at revision boundaries, and the swap of
 * the kv after a snapshot install. */
#include "util.h"

static watch_stream *stream(fixture *f, recorder *r)
{
    watch_stream *s;
    ck_assert_int_eq(watch_stream_new(&s, f->ws, rec_send, r), 0);
    return s;
}

/* Runs passes until nothing is unsynced; returns the number of passes. */
static int sync_all(fixture *f)
{
    int passes = 0;
    while (f->ws->unsynced.n) {
        ck_assert_int_ge(watch_store_sync_pass(f->ws), 0);
        ck_assert_int_lt(++passes, 10000);
    }
    return passes;
}

START_TEST(test_unsynced_catch_up_many_revisions)
{
    fixture f;
    fx_init(&f);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    int n = SCALE(2600);
    char v[16];
    for (int i = 0; i < n; i++) {
        snprintf(v, sizeof(v), "%d", i);
        put(f.kv, i % 3 ? "a" : "b", v);
    }
    watch_create c = wc("a", NULL, 2);
    ck_assert_int_eq(watch_stream_create(s, &c), 0);
    watch_create pre = wc("", "", 100); /* everything from revision 100 */
    ck_assert_int_eq(watch_stream_create(s, &pre), 0);
    ck_assert_uint_eq(f.ws->unsynced.n, 2);
    int passes = sync_all(&f);
    /* at most 1000 revisions a batch (etcd's watchBatchMaxRevs) */
    ck_assert_int_ge(passes, (n - 100) / 1000 + 1);
    ck_assert_uint_eq(f.ws->synced.n, 2);
    /* every event once, in order; the header revision of a catch-up
     * response is the current revision at the pass */
    int64_t last = 0;
    size_t na = 0, nall = 0;
    for (size_t i = 0; i < r.n; i++) {
        const rec_resp *x = &r.r[i];
        for (size_t j = 0; j < x->nev; j++) {
            if (x->watch_id == 0) {
                ck_assert_str_eq(x->ev[j].key, "a");
                ck_assert_int_gt(x->ev[j].mod, last);
                last = x->ev[j].mod;
                na++;
            } else {
                ck_assert_int_eq(x->ev[j].mod, 100 + (int64_t)nall);
                nall++;
            }
            ck_assert_int_le(x->ev[j].mod, x->revision);
        }
    }
    int want_a = 0;
    for (int i = 0; i < n; i++)
        want_a += i % 3 ? 1 : 0;
    ck_assert_uint_eq(na, (size_t)want_a);
    ck_assert_uint_eq(nall, (size_t)(n + 1 - 99));
    /* then synced: the next write arrives directly */
    rec_clear(&r);
    put(f.kv, "a", "last");
    ck_assert_uint_eq(rec_count(&r, 0), 1);
    ck_assert_uint_eq(rec_count(&r, 1), 1);
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

/* At most max_watchers_per_sync (512) watchers a pass. */
START_TEST(test_pass_bounded_to_512_watchers)
{
    fixture f;
    fx_init(&f);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    put(f.kv, "k", "1");
    put(f.kv, "k", "2");
    for (int i = 0; i < 600; i++) {
        watch_create c = wc("k", NULL, 2);
        ck_assert_int_eq(watch_stream_create(s, &c), 0);
    }
    ck_assert_int_eq(watch_store_sync_pass(f.ws), 600 - 512);
    ck_assert_uint_eq(f.ws->synced.n, 512);
    ck_assert_int_eq(watch_store_sync_pass(f.ws), 0);
    size_t got = 0;
    for (size_t i = 0; i < r.n; i++)
        got += r.r[i].nev;
    ck_assert_uint_eq(got, 1200);
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

START_TEST(test_compacted_watcher_is_cancelled)
{
    fixture f;
    fx_init(&f);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    for (int i = 0; i < 10; i++)
        put(f.kv, "a", "v");
    compact(f.kv, 6);
    watch_create c = wc("a", NULL, 3);
    ck_assert_int_eq(watch_stream_create(s, &c), 0);
    watch_create ok = wc("a", NULL, 6); /* exactly the compaction point: fine */
    ck_assert_int_eq(watch_stream_create(s, &ok), 0);
    sync_all(&f);
    ck_assert_uint_eq(r.n, 4);
    const rec_resp *x = &r.r[2];
    ck_assert_int_eq(x->watch_id, 0);
    ck_assert(x->canceled && !x->created);
    ck_assert_int_eq(x->compact_revision, 6);
    ck_assert_int_eq(x->revision, 0); /* etcd 3.4 leaves the header revision 0 */
    ck_assert_uint_eq(x->nev, 0);
    char got[256];
    rec_events(&r, 1, got, sizeof(got));
    ck_assert_str_eq(got, "P a=v@6 P a=v@7 P a=v@8 P a=v@9 P a=v@10 P a=v@11");
    watch_stats st;
    watch_store_stats(f.ws, &st);
    ck_assert_uint_eq(st.compacted, 1);
    /* still known to the stream: a duplicate id is refused, cancel answers */
    c.watch_id = 0;
    ck_assert_int_eq(watch_stream_create(s, &c), 0); /* auto: gets 2 */
    ck_assert_int_eq(r.r[r.n - 1].watch_id, 2);
    put(f.kv, "a", "w");
    ck_assert_uint_eq(rec_count(&r, 0), 0);
    ck_assert_int_eq(watch_stream_cancel(s, 0), 0);
    ck_assert(r.r[r.n - 1].canceled && r.r[r.n - 1].watch_id == 0);
    watch_store_stats(f.ws, &st);
    ck_assert_uint_eq(st.compacted, 0);
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

/* A transport that accepts a few responses, then is full until drained:
 * every watcher (synced, unsynced, ranges) still sees exactly the history. */
START_TEST(test_victims_lose_nothing)
{
    fixture f;
    fx_init(&f);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    unsigned seed = 11;
    const char *keys[] = {"a", "b", "c", "ab"};
    for (int i = 0; i < 30; i++)
        put(f.kv, keys[rand_r(&seed) % 4], "old");
    struct {
        const char *k, *e;
        int64_t rev;
    } ws[] = {{"a", NULL, 0}, {"a", "b", 0}, {"b", NULL, 5}, {"", "", 1}, {"ab", NULL, 20}};
    for (int i = 0; i < 5; i++) {
        watch_create c = wc(ws[i].k, ws[i].e, ws[i].rev);
        ck_assert_int_eq(watch_stream_create(s, &c), 0);
    }
    int n = SCALE(2000);
    for (int i = 0; i < n; i++) {
        if (rand_r(&seed) % 5 == 0)
            r.budget = (long)(rand_r(&seed) % 3);
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        const char *k = keys[rand_r(&seed) % 4];
        if (rand_r(&seed) % 7 == 0)
            del(f.kv, k, NULL);
        else
            put(f.kv, k, v);
        switch (rand_r(&seed) % 6) {
        case 0:
            r.budget = -1;
            watch_stream_drained(s);
            break;
        case 1:
            watch_store_sync_pass(f.ws);
            break;
        case 2:
            watch_store_retry_victims(f.ws);
            break;
        default:
            break;
        }
    }
    r.budget = -1;
    for (int k = 0; k < 1000 && (f.ws->nvictims || f.ws->unsynced.n); k++) {
        watch_store_retry_victims(f.ws);
        watch_store_sync_pass(f.ws);
    }
    ck_assert_uint_eq(f.ws->nvictims + f.ws->unsynced.n, 0);
    ck_assert_uint_gt(r.fulls, 0);
    /* expected: the history through each watcher's range */
    char *want = malloc(1 << 18), *got = malloc(1 << 18);
    for (int w = 0; w < 5; w++) {
        expect_events(f.kv, ws[w].k, ws[w].e, ws[w].rev ? ws[w].rev : 31, false, false, want,
                      1 << 18);
        rec_events(&r, w, got, 1 << 18);
        ck_assert_str_eq(got, want);
        ck_assert_uint_gt(strlen(want), 0);
    }
    free(want);
    free(got);
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

/* etcd's progress ticker: a synced watcher that asked and got no event
 * since the last tick gets {watch_id, header revision = current}. */
START_TEST(test_progress_notify)
{
    fixture f;
    fx_init(&f);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    put(f.kv, "a", "1");
    watch_create p = wc("a", NULL, 0);
    p.progress_notify = true;
    watch_create quiet = wc("a", NULL, 0);
    watch_create old = wc("a", NULL, 1);
    old.progress_notify = true;
    r.budget = -1;
    ck_assert_int_eq(watch_stream_create(s, &p), 0);     /* 0 */
    ck_assert_int_eq(watch_stream_create(s, &quiet), 0); /* 1 */
    ck_assert_int_eq(watch_stream_create(s, &old), 0);   /* 2: unsynced, no progress */
    rec_clear(&r);
    watch_store_progress_tick(f.ws);
    ck_assert_uint_eq(r.n, 1);
    ck_assert_int_eq(r.r[0].watch_id, 0);
    ck_assert_int_eq(r.r[0].revision, mvcc_current_rev(f.kv));
    ck_assert(!r.r[0].created && !r.r[0].canceled && r.r[0].nev == 0);
    /* an event since the last tick elides the next progress */
    put(f.kv, "a", "2");
    rec_clear(&r);
    watch_store_progress_tick(f.ws);
    ck_assert_uint_eq(r.n, 0);
    watch_store_progress_tick(f.ws);
    ck_assert_uint_eq(r.n, 1);
    ck_assert_int_eq(r.r[0].watch_id, 0);
    /* once synced, the other progress watcher reports too */
    sync_all(&f);
    rec_clear(&r);
    watch_store_progress_tick(f.ws);
    watch_store_progress_tick(f.ws);
    ck_assert_uint_eq(r.n, 3);
    /* a full transport drops a progress response (etcd: w.send fails) */
    rec_clear(&r);
    r.budget = 0;
    watch_store_progress_tick(f.ws);
    r.budget = -1;
    watch_stream_drained(s);
    ck_assert_uint_eq(r.n, 0);
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

/* A catch-up batch over the response limit goes out in several responses
 * split at revision boundaries, never inside a revision. */
START_TEST(test_split_at_revision_boundaries)
{
    watch_options o = {.max_response_bytes = 400};
    fixture f;
    fx_init_opt(&f, &o);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    char k[8];
    for (int i = 0; i < 30; i++) {
        snprintf(k, sizeof(k), "k%02d", i);
        put(f.kv, k, "0123456789012345678901234567890123456789");
        if (i % 10 == 9)
            del(f.kv, "k", "l"); /* one revision of 10 events (about 150 bytes) */
    }
    watch_create c = wc("k", "l", 1);
    ck_assert_int_eq(watch_stream_create(s, &c), 0);
    sync_all(&f);
    ck_assert_uint_gt(rec_count(&r, 0), 3);
    int64_t prev_last = 0;
    size_t total = 0;
    for (size_t i = 0; i < r.n; i++) {
        const rec_resp *x = &r.r[i];
        if (!x->nev)
            continue;
        ck_assert(!x->fragment);
        /* no revision continues from the previous response */
        ck_assert_int_gt(x->ev[0].mod, prev_last);
        prev_last = x->ev[x->nev - 1].mod;
        ck_assert(x->size <= 400 || x->ev[0].mod == x->ev[x->nev - 1].mod);
        total += x->nev;
    }
    ck_assert_uint_eq(total, 60);
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

/* A client that stops reading: its watchers become victims holding at
 * most one batch; the store's memory stays flat while writes continue,
 * and other streams keep getting every event at once. */
START_TEST(test_slow_consumer_memory_bounded)
{
    fixture f;
    fx_init(&f);
    recorder slow = {.budget = 0}, fast = {.budget = -1};
    watch_stream *ss = stream(&f, &slow), *fs = stream(&f, &fast);
    for (int i = 0; i < 100; i++) {
        watch_create c = wc("k", i % 2 ? "l" : NULL, 0);
        ck_assert_int_eq(watch_stream_create(ss, &c), 0);
    }
    watch_create c = wc("k", NULL, 0);
    ck_assert_int_eq(watch_stream_create(fs, &c), 0);
    char val[1024];
    memset(val, 'x', sizeof(val) - 1);
    val[sizeof(val) - 1] = 0;
    size_t peak = 0;
    int n = SCALE(4000);
    for (int i = 0; i < n; i++) {
        put(f.kv, "k", val);
        if (i % 50 == 0) {
            watch_store_retry_victims(f.ws);
            watch_store_sync_pass(f.ws);
        }
        watch_stats st;
        watch_store_stats(f.ws, &st);
        if (st.pending_bytes > peak)
            peak = st.pending_bytes;
    }
    /* one shared copy of one write, whatever the number of writes */
    ck_assert_uint_lt(peak, 4 * sizeof(val) + 4096);
    ck_assert_uint_eq(rec_count(&fast, 0), (size_t)n);
    watch_stats st;
    watch_store_stats(f.ws, &st);
    ck_assert_uint_eq(st.victims + st.unsynced, 100);
    /* the slow client reads again: it gets everything, in order, once */
    slow.budget = -1;
    watch_stream_drained(ss);
    for (int k = 0; k < 100 && (f.ws->nvictims || f.ws->unsynced.n); k++) {
        watch_store_retry_victims(f.ws);
        watch_store_sync_pass(f.ws);
    }
    char *want = malloc(1 << 16), *got = malloc(1 << 16);
    for (int64_t id = 0; id < 100; id += 33) {
        size_t cnt = 0;
        int64_t last = 0;
        for (size_t i = 0; i < slow.n; i++)
            if (slow.r[i].watch_id == id)
                for (size_t j = 0; j < slow.r[i].nev; j++) {
                    ck_assert_int_eq(slow.r[i].ev[j].mod, last ? last + 1 : 2);
                    last = slow.r[i].ev[j].mod;
                    cnt++;
                }
        ck_assert_uint_eq(cnt, (size_t)n);
    }
    free(want);
    free(got);
    watch_stream_free(ss);
    watch_stream_free(fs);
    rec_free(&slow);
    rec_free(&fast);
    fx_done(&f);
}
END_TEST

/* After a snapshot install the store reads a new kv: synced watchers catch
 * up from it (no gap, no repeat), and those whose revision is gone are
 * cancelled with compact_revision. */
START_TEST(test_set_kv_after_snapshot)
{
    fixture f;
    fx_init(&f);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    put(f.kv, "a", "1"); /* rev 2 */
    watch_create c = wc("a", NULL, 0);
    ck_assert_int_eq(watch_stream_create(s, &c), 0); /* 0: next 3 */
    watch_create fut = wc("a", NULL, 50);
    ck_assert_int_eq(watch_stream_create(s, &fut), 0); /* 1: from 50 */

    /* the "leader's" database: same first revision, then more */
    fixture g;
    fx_init(&g);
    put(g.kv, "a", "1");
    for (int i = 0; i < 60; i++)
        put(g.kv, i % 2 ? "a" : "b", "new");
    watch_store_set_kv(f.ws, g.kv); /* takes g's observer slot from g.ws */
    mvcc_set_observer(f.kv, NULL, NULL);
    sync_all(&f);
    put(g.kv, "a", "last");
    char want[4096], got[4096];
    expect_events(g.kv, "a", NULL, 3, false, false, want, sizeof(want));
    rec_events(&r, 0, got, sizeof(got));
    ck_assert_str_eq(got, want);
    expect_events(g.kv, "a", NULL, 50, false, false, want, sizeof(want));
    rec_events(&r, 1, got, sizeof(got));
    ck_assert_str_eq(got, want);

    /* a compacted new kv cancels a watcher behind it */
    fixture h;
    fx_init(&h);
    for (int i = 0; i < 100; i++)
        put(h.kv, "a", "h");
    compact(h.kv, 90);
    watch_store_set_kv(f.ws, h.kv);
    mvcc_set_observer(g.kv, NULL, NULL);
    rec_clear(&r);
    sync_all(&f);
    ck_assert_uint_eq(r.n, 2);
    ck_assert(r.r[0].canceled && r.r[0].compact_revision == 90);
    ck_assert(r.r[1].canceled && r.r[1].compact_revision == 90);
    watch_stream_free(s);
    rec_free(&r);
    /* f's store is freed first: it must not touch h's observer after */
    watch_store_free(f.ws);
    f.ws = NULL;
    mvcc_set_observer(h.kv, NULL, NULL);
    fx_done(&h);
    fx_done(&g);
    fx_done(&f);
}
END_TEST

/* A watcher on a rarely written key far behind: each pass reads a bounded
 * slice of history (the loop is never held by one long replay). */
START_TEST(test_pass_scan_bounded)
{
    watch_options o = {.max_pass_events = 100};
    fixture f;
    fx_init_opt(&f, &o);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    put(f.kv, "rare", "1");
    for (int i = 0; i < 1000; i++)
        put(f.kv, "busy", "v");
    put(f.kv, "rare", "2");
    watch_create c = wc("rare", NULL, 1);
    ck_assert_int_eq(watch_stream_create(s, &c), 0);
    ck_assert_int_eq(watch_store_sync_pass(f.ws), 1);
    char got[256];
    rec_events(&r, 0, got, sizeof(got));
    ck_assert_str_eq(got, "P rare=1@2");
    int passes = 1 + sync_all(&f);
    ck_assert_int_ge(passes, 10);
    rec_events(&r, 0, got, sizeof(got));
    ck_assert_str_eq(got, "P rare=1@2 P rare=2@1003");
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

/* The i-th allocation of a catch-up pass fails, for every i: the pass
 * unwinds, and later passes still deliver every event exactly once. */
START_TEST(test_sync_pass_allocation_failures)
{
    watch_options o = {.max_batch_revs = 5};
    fixture f;
    fx_init_opt(&f, &o);
    recorder r = {.budget = -1};
    watch_stream *s = stream(&f, &r);
    char v[16];
    for (int i = 0; i < 40; i++) {
        snprintf(v, sizeof(v), "%d", i);
        put(f.kv, i % 2 ? "a" : "ab", v);
    }
    watch_create c1 = wc("a", NULL, 2), c2 = wc("a", "b", 10);
    c2.prev_kv = true;
    ck_assert_int_eq(watch_stream_create(s, &c1), 0);
    ck_assert_int_eq(watch_stream_create(s, &c2), 0);
    for (long i = 0; f.ws->unsynced.n || f.ws->nvictims; i++) {
        ck_assert_int_lt(i, 10000);
        metcd_mem_fail_after(i % 12);
        int rc = watch_store_sync_pass(f.ws);
        metcd_mem_fail_after(-1);
        ck_assert(rc >= 0 || rc == WATCH_EBACKEND);
        watch_store_retry_victims(f.ws);
    }
    char want[4096], got[4096];
    expect_events(f.kv, "a", NULL, 2, false, false, want, sizeof(want));
    rec_events(&r, 0, got, sizeof(got));
    ck_assert_str_eq(got, want);
    expect_events(f.kv, "a", "b", 10, false, false, want, sizeof(want));
    rec_events(&r, 1, got, sizeof(got));
    ck_assert_str_eq(got, want);
    for (size_t i = 0; i < r.n; i++) /* updates only: every one has its prev_kv */
        if (r.r[i].watch_id == 1)
            for (size_t j = 0; j < r.r[i].nev; j++)
                ck_assert(r.r[i].ev[j].has_prev);
    watch_stats st;
    watch_store_stats(f.ws, &st);
    ck_assert_uint_eq(st.pending_bytes, 0);
    watch_stream_free(s);
    rec_free(&r);
    fx_done(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("watch/store");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_unsynced_catch_up_many_revisions);
    tcase_add_test(tc, test_pass_bounded_to_512_watchers);
    tcase_add_test(tc, test_compacted_watcher_is_cancelled);
    tcase_add_test(tc, test_victims_lose_nothing);
    tcase_add_test(tc, test_progress_notify);
    tcase_add_test(tc, test_pass_scan_bounded);
    tcase_add_test(tc, test_sync_pass_allocation_failures);
    tcase_add_test(tc, test_split_at_revision_boundaries);
    tcase_add_test(tc, test_slow_consumer_memory_bounded);
    tcase_add_test(tc, test_set_kv_after_snapshot);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
