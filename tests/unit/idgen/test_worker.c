/* The Worker over a fake KV and a fake clock: claiming ids (races of many
 * concurrent starts, ids >= max refused, every id taken), the stored
 * bound (reserved ahead, uploaded, waited for on reuse, per owner across
 * restarts, lowered on a clean stop), keep-alives and a lost registration,
 * the drift buckets at the worker level (leaving on the third), a store
 * that cannot be reached, frees with calls in flight, and allocation
 * failures on every path. */
#include "idgen/idgen.h"

#include "common/mem.h"
#include "fake_kv.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1700000000000LL
#define EPOCH IDGEN_DEFAULT_EPOCH_MS

#ifdef METCD_SANITIZED
#define SCALE 4
#else
#define SCALE 1
#endif

struct wk {
    idgen_worker *w;
    int ready, not_ready, stopped, stop_err;
};

static void on_notify(void *arg, int ev, const char *tag, int err)
{
    struct wk *k = arg;
    (void)tag;
    if (ev == IDGEN_EVENT_READY)
        k->ready++;
    else if (ev == IDGEN_EVENT_NOT_READY)
        k->not_ready++;
    else if (ev == IDGEN_EVENT_STOPPED) {
        k->stopped++;
        k->stop_err = err;
    }
}

static void wk_new(struct wk *k, fake_kv *f, const idgen_worker_config *cfg)
{
    memset(k, 0, sizeof(*k));
    ck_assert_int_eq(idgen_worker_new(&k->w, fake_kv_iface(f), fake_clock(f), cfg, on_notify, k),
                     0);
}

static idgen_worker_info info(const struct wk *k)
{
    idgen_worker_info in;
    idgen_worker_get_info(k->w, &in);
    return in;
}

/* Advances the clock by ms in ticks, delivering what is queued. */
static void run(fake_kv *f, struct wk *ks, size_t n, int64_t ms)
{
    for (int64_t t = 0; t < ms; t += IDGEN_TICK_MS) {
        fake_advance(f, IDGEN_TICK_MS);
        for (size_t i = 0; i < n; i++)
            idgen_worker_tick(ks[i].w);
        fake_drain(f);
    }
}

static uint64_t next1(struct wk *k)
{
    idgen_range r;
    int64_t wait;
    int rc = idgen_worker_next(k->w, 1, &r, &wait);
    ck_assert_msg(rc == 0, "next: %s", idgen_strerror(rc));
    return r.start;
}

static int64_t ts_of(fake_kv *f, const char *key)
{
    const char *v = fake_get(f, key);
    return v ? atoll(v) : 0;
}

START_TEST(test_claim_and_serve)
{
    fake_kv *f = fake_new(T0);
    struct wk k;
    idgen_worker_config cfg = {.owner = "m1", .info = "member one"};
    wk_new(&k, f, &cfg);
    /* immediate delivery: grant, claim, first upload in one go */
    idgen_worker_info in = info(&k);
    ck_assert_int_eq(in.state, IDGEN_WORKER_READY);
    ck_assert_int_eq(in.worker_id, 0);
    ck_assert_int_eq(k.ready, 1);
    const idgen_kv_pair *reg = fake_get_pair(f, "/metcd/idgen/workers/0000");
    ck_assert_ptr_nonnull(reg);
    ck_assert_int_eq(reg->lease, in.lease);
    ck_assert_ptr_nonnull(strstr(fake_get(f, "/metcd/idgen/workers/0000"), "\"owner\":\"m1\""));
    ck_assert_ptr_nonnull(strstr(fake_get(f, "/metcd/idgen/workers/0000"), "member one"));
    /* reserved ahead: the default 4 s */
    ck_assert_int_eq(ts_of(f, "/metcd/idgen/ts/0000"), T0 + 4000);
    ck_assert_int_eq(ts_of(f, "/metcd/idgen/owners/m1"), T0 + 4000);
    ck_assert_int_eq(in.bound_ts, T0 + 4000);

    uint64_t id = next1(&k);
    idgen_decoded d;
    idgen_decode(id, EPOCH, &d);
    ck_assert_int_eq(d.time_ms, T0);
    ck_assert_uint_eq(d.worker, 0);
    /* a batch: consecutive IDs of one millisecond */
    idgen_range r;
    int64_t wait;
    ck_assert_int_eq(idgen_worker_next(k.w, 100, &r, &wait), 0);
    ck_assert_uint_eq(r.start, id + 1);
    ck_assert_uint_eq(r.count, 100);

    /* uploads every 2 s keep the bound 4 s ahead; the lease lives on */
    uint64_t prev = r.start + r.count - 1;
    for (int i = 0; i < 300; i++) {
        run(f, &k, 1, 100);
        uint64_t x = next1(&k);
        ck_assert_uint_gt(x, prev);
        prev = x;
        idgen_decode(x, EPOCH, &d);
        ck_assert_int_le(d.time_ms, ts_of(f, "/metcd/idgen/ts/0000"));
    }
    ck_assert_int_ge(ts_of(f, "/metcd/idgen/ts/0000"), fake_now(f) + 2000);
    ck_assert(fake_lease_alive(f, info(&k).lease));
    fake_stats st;
    fake_get_stats(f, &st);
    ck_assert_uint_ge(st.keepalives, 8); /* 30 s at TTL/3 */
    ck_assert_uint_le(st.txns, 2 + 16);  /* claim + about one upload per 2 s */
    idgen_worker_free(k.w);
    fake_free(f);
}
END_TEST

/* Many workers started at once all want id 0 first; the txns are applied
 * one at a time in some order, and each loser learns the taken ids from
 * its failure branch. Every worker ends with its own id. */
START_TEST(test_concurrent_starts)
{
    for (uint64_t seed = 0; seed < 20; seed++) {
        fake_kv *f = fake_new(T0);
        fake_set_deferred(f, true);
        fake_set_random(f, seed);
        enum { N = 20 };
        struct wk ks[N];
        for (int i = 0; i < N; i++)
            wk_new(&ks[i], f, NULL);
        run(f, ks, N, 1000);
        bool seen[IDGEN_MAX_WORKERS] = {false};
        for (int i = 0; i < N; i++) {
            idgen_worker_info in = info(&ks[i]);
            ck_assert_int_eq(in.state, IDGEN_WORKER_READY);
            ck_assert_int_ge(in.worker_id, 0);
            ck_assert_int_lt(in.worker_id, N); /* the lowest free ones */
            ck_assert_msg(!seen[in.worker_id], "worker id %d twice (seed %llu)", in.worker_id,
                          (unsigned long long)seed);
            seen[in.worker_id] = true;
        }
        ck_assert_uint_eq(fake_count_prefix(f, "/metcd/idgen/workers/"), N);
        for (int i = 0; i < N; i++)
            idgen_worker_free(ks[i].w);
        fake_free(f);
    }
}
END_TEST

START_TEST(test_max_workers)
{
    fake_kv *f = fake_new(T0);
    idgen_worker_config cfg = {.max_workers = 3};
    struct wk ks[4];
    for (int i = 0; i < 4; i++)
        wk_new(&ks[i], f, &cfg);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(info(&ks[i]).worker_id, i);
    /* the fourth finds every id below 3 taken and never uses 3 */
    idgen_worker_info in = info(&ks[3]);
    ck_assert_int_eq(in.state, IDGEN_WORKER_CLAIMING);
    ck_assert_int_eq(in.worker_id, -1);
    ck_assert_int_eq(in.last_err, IDGEN_ENO_WORKER_ID);
    run(f, ks, 4, 2000);
    ck_assert_int_eq(info(&ks[3]).worker_id, -1);
    ck_assert_ptr_null(fake_get(f, "/metcd/idgen/workers/0003"));
    /* a registration at an id >= max (another configuration) is ignored */
    fake_put(f, "/metcd/idgen/workers/0500", "{}");
    /* worker 1 leaves cleanly: the fourth takes id 1, after the clock
     * passes what worker 1 issued */
    uint64_t last = next1(&ks[1]);
    idgen_worker_stop(ks[1].w);
    ck_assert_int_eq(ks[1].stopped, 1);
    ck_assert_int_eq(ks[1].stop_err, 0);
    ck_assert_ptr_null(fake_get(f, "/metcd/idgen/workers/0001"));
    /* the stored bound was lowered to the last timestamp issued */
    idgen_decoded d;
    idgen_decode(last, EPOCH, &d);
    ck_assert_int_eq(ts_of(f, "/metcd/idgen/ts/0001"), d.time_ms);
    run(f, ks, 4, 1000);
    in = info(&ks[3]);
    ck_assert_int_eq(in.worker_id, 1);
    ck_assert_int_eq(in.state, IDGEN_WORKER_READY);
    ck_assert_uint_gt(next1(&ks[3]), last);
    for (int i = 0; i < 4; i++)
        idgen_worker_free(ks[i].w);
    fake_free(f);
}
END_TEST

/* A reused id waits until the clock passes the stored bound. */
START_TEST(test_reuse_waits)
{
    fake_kv *f = fake_new(T0);
    fake_put(f, "/metcd/idgen/ts/0000", "1700000003000"); /* T0 + 3 s */
    struct wk k;
    wk_new(&k, f, NULL);
    idgen_worker_info in = info(&k);
    ck_assert_int_eq(in.worker_id, 0);
    ck_assert_int_eq(in.state, IDGEN_WORKER_WAITING);
    ck_assert_int_eq(in.floor_ts, T0 + 3000);
    idgen_range r;
    int64_t wait;
    ck_assert_int_eq(idgen_worker_next(k.w, 1, &r, &wait), IDGEN_ENOT_READY);
    run(f, &k, 1, 2900);
    ck_assert_int_eq(info(&k).state, IDGEN_WORKER_WAITING);
    ck_assert_int_eq(k.ready, 0);
    run(f, &k, 1, 200);
    ck_assert_int_eq(info(&k).state, IDGEN_WORKER_READY);
    ck_assert_int_eq(k.ready, 1);
    idgen_decoded d;
    idgen_decode(next1(&k), EPOCH, &d);
    ck_assert_int_gt(d.time_ms, T0 + 3000);
    /* a value nobody can parse: wait rather than risk */
    idgen_worker_free(k.w);
    fake_put(f, "/metcd/idgen/ts/0001", "garbage");
    fake_put(f, "/metcd/idgen/workers/0000", "{}");
    wk_new(&k, f, NULL);
    ck_assert_int_eq(info(&k).worker_id, 1);
    ck_assert_int_eq(info(&k).state, IDGEN_WORKER_WAITING);
    run(f, &k, 1, 2000);
    ck_assert_int_eq(info(&k).state, IDGEN_WORKER_WAITING);
    idgen_worker_free(k.w);
    fake_free(f);
}
END_TEST

/* An owner restarted with its clock set back, under another worker id,
 * never issues an ID below one it issued before. */
START_TEST(test_restart_clock_back)
{
    fake_kv *f = fake_new(T0);
    idgen_worker_config cfg = {.owner = "m7"};
    struct wk k;
    wk_new(&k, f, &cfg);
    uint64_t max = 0;
    for (int i = 0; i < 50; i++) {
        run(f, &k, 1, 100);
        uint64_t x = next1(&k);
        ck_assert_uint_gt(x, max);
        max = x;
    }
    /* crash: the worker is gone but its lease lives on (kill -9) */
    int64_t lease = info(&k).lease;
    idgen_worker_free(k.w);
    ck_assert(fake_lease_alive(f, lease));
    /* restart with the clock 10 s back: id 0 is still held, so it takes 1 */
    fake_set_now(f, fake_now(f) - 10000);
    wk_new(&k, f, &cfg);
    idgen_worker_info in = info(&k);
    ck_assert_int_eq(in.worker_id, 1);
    ck_assert_int_eq(in.state, IDGEN_WORKER_WAITING);
    int64_t waited = 0;
    while (info(&k).state != IDGEN_WORKER_READY) {
        run(f, &k, 1, 100);
        waited += 100;
        ck_assert_int_lt(waited, 30000);
    }
    ck_assert_int_ge(waited, 10000); /* the clock had to pass the owner's bound */
    for (int i = 0; i < 50; i++) {
        run(f, &k, 1, 100);
        uint64_t x = next1(&k);
        ck_assert_uint_gt(x, max);
        max = x;
    }
    idgen_worker_free(k.w);
    fake_free(f);
}
END_TEST

START_TEST(test_drift_at_worker)
{
    fake_kv *f = fake_new(T0);
    struct wk k;
    wk_new(&k, f, NULL);
    run(f, &k, 1, 500);
    uint64_t a = next1(&k);
    idgen_range r;
    int64_t wait;
    /* 300 ms back: block (wait) */
    fake_set_now(f, fake_now(f) - 300);
    ck_assert_int_eq(idgen_worker_next(k.w, 1, &r, &wait), IDGEN_EWAIT);
    ck_assert_int_eq(wait, 300);
    /* 3 s back: try later, the worker stays */
    fake_set_now(f, fake_now(f) - 2700);
    ck_assert_int_eq(idgen_worker_next(k.w, 1, &r, &wait), IDGEN_EDRIFT);
    ck_assert_int_eq(info(&k).state, IDGEN_WORKER_READY);
    ck_assert_int_eq(k.stopped, 0);
    /* back in line: IDs go on growing */
    fake_set_now(f, fake_now(f) + 3001);
    ck_assert_uint_gt(next1(&k), a);
    /* 6 s back: too large to cover, the worker leaves its id */
    int64_t bound = ts_of(f, "/metcd/idgen/ts/0000");
    fake_set_now(f, fake_now(f) - 6000);
    ck_assert_int_eq(idgen_worker_next(k.w, 1, &r, &wait), IDGEN_EDRIFT_LEAVE);
    ck_assert_int_eq(idgen_worker_next(k.w, 1, &r, &wait), IDGEN_ESTOPPED); /* at once */
    ck_assert_int_eq(k.stopped, 0);
    idgen_worker_tick(k.w); /* the lease goes on the tick */
    ck_assert_int_eq(k.stopped, 1);
    ck_assert_int_eq(k.stop_err, IDGEN_EDRIFT_LEAVE);
    ck_assert_int_eq(info(&k).state, IDGEN_WORKER_STOPPED);
    ck_assert_ptr_null(fake_get(f, "/metcd/idgen/workers/0000"));
    ck_assert_int_eq(ts_of(f, "/metcd/idgen/ts/0000"), bound); /* not lowered */
    ck_assert_int_eq(idgen_worker_next(k.w, 1, &r, &wait), IDGEN_ESTOPPED);
    ck_assert_int_eq(fake_leases(f), 0);
    /* joining again waits for the clock to pass the bound */
    ck_assert_int_eq(idgen_worker_restart(k.w), 0);
    ck_assert_int_eq(info(&k).state, IDGEN_WORKER_WAITING);
    ck_assert_int_eq(info(&k).floor_ts, bound);
    while (fake_now(f) <= bound) {
        ck_assert_int_eq(info(&k).state, IDGEN_WORKER_WAITING);
        run(f, &k, 1, 100);
    }
    run(f, &k, 1, 100);
    ck_assert_int_eq(info(&k).state, IDGEN_WORKER_READY);
    idgen_decoded d;
    idgen_decode(next1(&k), EPOCH, &d);
    ck_assert_int_gt(d.time_ms, bound);
    idgen_worker_free(k.w);
    fake_free(f);
}
END_TEST

/* A store that cannot be reached: IDs stop at the bound; the lease runs
 * out, someone else takes the id, and the old worker, back, sees its
 * registration lost and claims another; the newcomer's IDs come after
 * every ID the old one issued. */
START_TEST(test_unreachable_and_lost)
{
    fake_kv *f = fake_new(T0);
    struct wk a;
    wk_new(&a, f, NULL);
    run(f, &a, 1, 1000);
    fake_set_down(f, true);
    uint64_t max_a = 0;
    int served = 0, refused = 0;
    for (int i = 0; i < 150; i++) { /* 15 s */
        run(f, &a, 1, 100);
        idgen_range r;
        int64_t wait;
        int rc = idgen_worker_next(a.w, 1, &r, &wait);
        if (rc == 0) {
            served++;
            max_a = r.start;
            idgen_decoded d;
            idgen_decode(r.start, EPOCH, &d);
            ck_assert_int_le(d.time_ms, ts_of(f, "/metcd/idgen/ts/0000"));
        } else {
            ck_assert_int_eq(rc, IDGEN_ENOT_READY);
            refused++;
        }
    }
    ck_assert_int_gt(served, 0);
    ck_assert_int_gt(refused, 100);
    /* the lease expired meanwhile (TTL 10 s) */
    ck_assert_ptr_null(fake_get(f, "/metcd/idgen/workers/0000"));
    fake_set_down(f, false);
    struct wk b;
    wk_new(&b, f, NULL);
    ck_assert_int_eq(info(&b).worker_id, 0);
    run(f, &b, 1, 100);
    run(f, &a, 1, 5000);
    ck_assert_int_ge(a.not_ready + (info(&a).worker_id != 0), 1);
    ck_assert_int_eq(info(&a).state, IDGEN_WORKER_READY);
    ck_assert_int_eq(info(&a).worker_id, 1);
    run(f, &b, 1, 100);
    ck_assert_int_eq(info(&b).state, IDGEN_WORKER_READY);
    ck_assert_uint_gt(next1(&b), max_a);
    idgen_worker_free(a.w);
    idgen_worker_free(b.w);
    fake_free(f);
}
END_TEST

/* Someone deletes the registration by hand: the next upload's guard fails
 * and the worker claims again. */
START_TEST(test_registration_deleted)
{
    fake_kv *f = fake_new(T0);
    struct wk k;
    wk_new(&k, f, NULL);
    uint64_t a = next1(&k);
    fake_del(f, "/metcd/idgen/workers/0000");
    run(f, &k, 1, 2100);
    ck_assert_int_eq(k.not_ready, 1);
    run(f, &k, 1, 5000);
    idgen_worker_info in = info(&k);
    ck_assert_int_eq(in.state, IDGEN_WORKER_READY);
    ck_assert_int_eq(k.ready, 2);
    ck_assert_uint_gt(next1(&k), a);
    ck_assert_int_eq(fake_leases(f), 1); /* the old lease was given up */
    idgen_worker_free(k.w);
    fake_free(f);
}
END_TEST

/* An upload stuck in the store (a proposal lost with its leader) is
 * overtaken by a newer one; when it lands late it fails its guard and
 * neither lowers the stored bound nor loses the registration. */
START_TEST(test_upload_overtaken)
{
    fake_kv *f = fake_new(T0);
    struct wk k;
    wk_new(&k, f, NULL);
    ck_assert_int_eq(info(&k).state, IDGEN_WORKER_READY);
    fake_set_deferred(f, true);
    fake_advance(f, 2000);
    idgen_worker_tick(k.w);
    ck_assert_uint_eq(fake_queued(f), 1); /* the upload, stuck */
    fake_advance(f, 500);
    idgen_worker_tick(k.w);
    ck_assert_uint_eq(fake_queued(f), 1); /* not yet half an interval */
    fake_advance(f, 600);
    idgen_worker_tick(k.w);
    ck_assert_uint_eq(fake_queued(f), 2); /* a second one overtakes */
    fake_step_last(f);
    int64_t stored = ts_of(f, "/metcd/idgen/ts/0000");
    ck_assert_int_eq(stored, T0 + 3100 + 4000);
    ck_assert_int_eq(info(&k).bound_ts, stored);
    fake_step(f); /* the stuck one lands: its guard fails */
    ck_assert_int_eq(ts_of(f, "/metcd/idgen/ts/0000"), stored);
    ck_assert_int_eq(info(&k).state, IDGEN_WORKER_READY);
    ck_assert_int_eq(info(&k).worker_id, 0);
    ck_assert_int_eq(k.not_ready, 0);
    /* at most four in flight */
    for (int i = 0; i < 10; i++) {
        fake_advance(f, 1100);
        idgen_worker_tick(k.w);
    }
    ck_assert_uint_le(fake_queued(f), 4 + 4); /* uploads and keep-alives */
    fake_drain(f);
    run(f, &k, 1, 3000);
    ck_assert_int_eq(info(&k).state, IDGEN_WORKER_READY);
    ck_assert_int_eq(info(&k).worker_id, 0);
    idgen_worker_free(k.w);
    fake_free(f);
}
END_TEST

/* Freed with calls in flight: their answers land in a husk (ASan). */
START_TEST(test_free_in_flight)
{
    fake_kv *f = fake_new(T0);
    fake_set_deferred(f, true);
    struct wk k;
    wk_new(&k, f, NULL);
    ck_assert_uint_eq(fake_queued(f), 1); /* the grant */
    idgen_worker_free(k.w);
    fake_drain(f);
    wk_new(&k, f, NULL);
    fake_step(f);
    ck_assert_uint_eq(fake_queued(f), 1); /* the claim */
    idgen_worker_free(k.w);
    fake_drain(f);
    fake_free(f);
}
END_TEST

START_TEST(test_stop_while_claiming)
{
    fake_kv *f = fake_new(T0);
    fake_set_deferred(f, true);
    struct wk k;
    wk_new(&k, f, NULL);
    fake_step(f); /* grant */
    idgen_worker_stop(k.w);
    fake_drain(f); /* the claim lands, then the revoke removes it */
    ck_assert_int_eq(k.stopped, 1);
    ck_assert_uint_eq(fake_count_prefix(f, "/metcd/idgen/workers/"), 0);
    ck_assert_int_eq(fake_leases(f), 0);
    idgen_worker_free(k.w);
    fake_free(f);
}
END_TEST

struct listing {
    int rc, calls;
    size_t n;
    uint32_t id[8];
    bool registered[8];
    char owner[8][8];
    int64_t bound[8];
};

static void on_list(void *arg, int rc, const idgen_worker_rec *w, size_t n)
{
    struct listing *l = arg;
    l->calls++;
    l->rc = rc;
    l->n = n;
    for (size_t i = 0; i < n && i < 8; i++) {
        l->id[i] = w[i].id;
        l->registered[i] = w[i].registered;
        snprintf(l->owner[i], sizeof(l->owner[i]), "%s", w[i].owner);
        l->bound[i] = w[i].bound_ts;
    }
}

START_TEST(test_listing)
{
    fake_kv *f = fake_new(T0);
    struct wk ks[3];
    idgen_worker_config c0 = {.owner = "a", .info = "x"}, c1 = {.owner = "b"};
    wk_new(&ks[0], f, &c0);
    wk_new(&ks[1], f, &c1);
    wk_new(&ks[2], f, NULL);
    idgen_worker_stop(ks[1].w);
    struct listing l = {0};
    ck_assert_int_eq(idgen_workers_list(fake_kv_iface(f), NULL, on_list, &l), 0);
    ck_assert_int_eq(l.calls, 1);
    ck_assert_int_eq(l.rc, 0);
    ck_assert_uint_eq(l.n, 3);
    ck_assert_uint_eq(l.id[0], 0);
    ck_assert(l.registered[0]);
    ck_assert_str_eq(l.owner[0], "a");
    ck_assert_int_eq(l.bound[0], T0 + 4000);
    ck_assert_uint_eq(l.id[1], 1);
    ck_assert(!l.registered[1]);     /* left: only its bound remains */
    ck_assert_int_eq(l.bound[1], 0); /* lowered to what it issued: nothing */
    ck_assert_uint_eq(l.id[2], 2);
    ck_assert_str_eq(l.owner[2], "");
    fake_set_down(f, true);
    memset(&l, 0, sizeof(l));
    ck_assert_int_eq(idgen_workers_list(fake_kv_iface(f), NULL, on_list, &l), 0);
    ck_assert_int_eq(l.calls, 1);
    ck_assert_int_eq(l.rc, IDGEN_EKV);
    for (int i = 0; i < 3; i++)
        idgen_worker_free(ks[i].w);
    fake_free(f);
}
END_TEST

/* Every allocation on the worker's paths fails once in turn: each path
 * unwinds (ASan finds leaks), and the worker recovers by retrying. */
START_TEST(test_alloc_failures)
{
    for (long i = 0;; i++) {
        fake_kv *f = fake_new(T0);
        struct wk k;
        memset(&k, 0, sizeof(k));
        metcd_mem_fail_after(i);
        long before = metcd_mem_count();
        int rc = idgen_worker_new(&k.w, fake_kv_iface(f), fake_clock(f),
                                  &(idgen_worker_config){.owner = "o"}, on_notify, &k);
        bool done = false;
        if (rc == 0) {
            run(f, &k, 1, 3000);
            idgen_worker_stop(k.w);
            run(f, &k, 1, 1000);
            done = metcd_mem_count() - before <= i;
            ck_assert_int_eq(info(&k).state, IDGEN_WORKER_STOPPED);
            idgen_worker_free(k.w);
        } else {
            ck_assert_int_eq(rc, IDGEN_ENOMEM);
        }
        metcd_mem_fail_after(-1);
        struct listing l = {0};
        fake_set_down(f, false);
        metcd_mem_fail_after(i);
        rc = idgen_workers_list(fake_kv_iface(f), NULL, on_list, &l);
        metcd_mem_fail_after(-1);
        ck_assert(rc == 0 || rc == IDGEN_ENOMEM);
        ck_assert_int_eq(l.calls, rc == 0 ? 1 : 0);
        fake_free(f);
        if (done)
            break;
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("idgen_worker");
    TCase *tc = tcase_create("worker");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_claim_and_serve);
    tcase_add_test(tc, test_concurrent_starts);
    tcase_add_test(tc, test_max_workers);
    tcase_add_test(tc, test_reuse_waits);
    tcase_add_test(tc, test_restart_clock_back);
    tcase_add_test(tc, test_drift_at_worker);
    tcase_add_test(tc, test_unreachable_and_lost);
    tcase_add_test(tc, test_registration_deleted);
    tcase_add_test(tc, test_upload_overtaken);
    tcase_add_test(tc, test_free_in_flight);
    tcase_add_test(tc, test_stop_while_claiming);
    tcase_add_test(tc, test_listing);
    tcase_add_test(tc, test_alloc_failures);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
