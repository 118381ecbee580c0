/* Leaf segments over a fake KV and a fake clock: creating tags, IDs in
 * order from `start`, the prefetch at 10% used, a miss, the adaptive step
 * (doubling under 15 min, halving over 30, within bounds), several
 * allocators racing on one tag (no ID twice, each one's IDs growing), tags
 * appearing and disappearing through the watch, unknown tags probed, an
 * unreachable store, CAS conflicts, frees in flight, allocation failures. */
#include "idgen/idgen.h"

#include "common/mem.h"
#include "fake_kv.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1700000000000LL
#define MIN_MS 60000LL

struct al {
    idgen_segs *s;
    int events, last_err;
    char last_tag[IDGEN_MAX_TAG_LEN + 1];
};

/* Notifications never come from inside a take (the host is in the middle
 * of its own work there: it once freed requests its caller was walking). */
static bool in_take;

static int tk(idgen_segs *s, const char *tag, uint64_t count, idgen_range *out, size_t max_out,
              size_t *n_out, uint64_t *taken)
{
    in_take = true;
    int rc = idgen_segs_take(s, tag, count, out, max_out, n_out, taken);
    in_take = false;
    return rc;
}

static void on_notify(void *arg, int ev, const char *tag, int err)
{
    struct al *a = arg;
    ck_assert_msg(!in_take, "notified from inside a take");
    ck_assert_int_eq(ev, IDGEN_EVENT_SEGMENT);
    a->events++;
    a->last_err = err;
    snprintf(a->last_tag, sizeof(a->last_tag), "%s", tag ? tag : "*");
}

static void al_new(struct al *a, fake_kv *f, const idgen_segs_config *cfg)
{
    memset(a, 0, sizeof(*a));
    ck_assert_int_eq(idgen_segs_new(&a->s, fake_kv_iface(f), fake_clock(f), cfg, on_notify, a), 0);
}

static int create_rc;
static void on_created(void *arg, int rc)
{
    (void)arg;
    create_rc = rc;
}

static int create(fake_kv *f, const char *tag, uint64_t start, int64_t step)
{
    create_rc = 1;
    int rc = idgen_tag_create(fake_kv_iface(f), NULL, tag, start, step, "test tag", fake_now(f),
                              on_created, NULL);
    if (rc)
        return rc;
    fake_drain(f);
    return create_rc;
}

/* Takes one ID; returns the rc and the ID in *id. */
static int take1(struct al *a, const char *tag, uint64_t *id)
{
    idgen_range r;
    size_t n;
    uint64_t got;
    int rc = tk(a->s, tag, 1, &r, 1, &n, &got);
    if (got == 1)
        *id = r.start;
    return got == 1 ? 0 : rc;
}

static uint64_t must1(struct al *a, const char *tag)
{
    uint64_t id = 0;
    int rc = take1(a, tag, &id);
    ck_assert_msg(rc == 0, "take %s: %s", tag, idgen_strerror(rc));
    return id;
}

struct tinfo {
    bool found;
    idgen_tag_info in;
    const char *want;
    size_t n;
};
static void on_tag(void *arg, const idgen_tag_info *t)
{
    struct tinfo *ti = arg;
    ti->n++;
    if (ti->want && !strcmp(t->tag, ti->want)) {
        ti->found = true;
        ti->in = *t;
        ti->in.tag = ti->in.description = NULL; /* borrowed */
    }
}
static struct tinfo tag_info(struct al *a, const char *tag)
{
    struct tinfo ti = {.want = tag};
    idgen_segs_list(a->s, on_tag, &ti);
    return ti;
}

START_TEST(test_create_and_take)
{
    fake_kv *f = fake_new(T0);
    ck_assert_int_eq(create(f, "orders", 1000, 100), 0);
    ck_assert_int_eq(create(f, "orders", 5, 5), IDGEN_ETAG_EXISTS);
    ck_assert_int_eq(
        idgen_tag_create(fake_kv_iface(f), NULL, "bad tag", 1, 1, NULL, 0, on_created, NULL),
        IDGEN_EINVAL);
    ck_assert_int_eq(idgen_tag_create(fake_kv_iface(f), NULL, "x", 1, 0, NULL, 0, on_created, NULL),
                     IDGEN_EINVAL);
    const char *v = fake_get(f, "/metcd/idgen/segments/orders");
    ck_assert_str_eq(v, "{\"max_id\":1000,\"step\":100,\"description\":\"test tag\","
                        "\"update_time\":1700000000000}");
    struct al a;
    al_new(&a, f, NULL);
    ck_assert_uint_eq(idgen_segs_count(a.s), 1); /* listed */
    for (uint64_t i = 0; i < 1000; i++)
        ck_assert_uint_eq(must1(&a, "orders"), 1000 + i);
    /* a batch spanning the current and the next segment: two ranges */
    idgen_range r[4];
    size_t n;
    uint64_t got;
    ck_assert_int_eq(tk(a.s, "orders", 150, r, 4, &n, &got), 0);
    ck_assert_uint_eq(got, 150);
    ck_assert_uint_eq(r[0].start, 2000);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            ck_assert_uint_eq(r[i].start, r[i - 1].start + r[i - 1].count);
        total += r[i].count;
    }
    ck_assert_uint_eq(total, 150);
    /* the stored max_id stays ahead of everything issued */
    const char *mv = strstr(fake_get(f, "/metcd/idgen/segments/orders"), "\"max_id\":");
    ck_assert_uint_ge(strtoull(mv + 9, NULL, 10), 2150);
    ck_assert_int_eq(tk(a.s, "no such", 1, r, 1, &n, &got), IDGEN_EINVAL);
    idgen_segs_free(a.s);
    fake_free(f);
}
END_TEST

/* The next segment is claimed once 10% of the current one is used, and a
 * take never waits while the prefetch keeps up. */
START_TEST(test_prefetch)
{
    fake_kv *f = fake_new(T0);
    ck_assert_int_eq(create(f, "p", 0, 100), 0);
    fake_set_deferred(f, true);
    struct al a;
    idgen_segs_config cfg = {.max_step = 100}; /* a fixed step */
    al_new(&a, f, &cfg);
    fake_drain(f); /* listing */
    uint64_t id;
    ck_assert_int_eq(take1(&a, "p", &id), IDGEN_EPENDING); /* first load */
    fake_stats st0, st;
    fake_get_stats(f, &st0);
    fake_drain(f);
    ck_assert_int_eq(a.events, 1);
    ck_assert_int_eq(a.last_err, 0);
    ck_assert_str_eq(a.last_tag, "p");
    for (int i = 0; i < 9; i++)
        ck_assert_uint_eq(must1(&a, "p"), (uint64_t)i);
    fake_get_stats(f, &st);
    ck_assert_uint_eq(st.txns, st0.txns); /* 9% used: nothing yet */
    ck_assert_uint_eq(must1(&a, "p"), 9);
    fake_get_stats(f, &st);
    ck_assert_uint_eq(st.txns, st0.txns + 1); /* 10%: the next is on its way */
    ck_assert_uint_eq(must1(&a, "p"), 10);
    fake_get_stats(f, &st);
    ck_assert_uint_eq(st.txns, st0.txns + 1); /* one at a time */
    struct tinfo ti = tag_info(&a, "p");
    ck_assert(ti.found && ti.in.loading);
    fake_drain(f);
    ti = tag_info(&a, "p");
    ck_assert(!ti.in.loading);
    ck_assert(ti.in.seg[ti.in.current ^ 1].ready);
    ck_assert_uint_eq(ti.in.seg[ti.in.current ^ 1].start, 100);
    ck_assert_uint_eq(ti.in.seg[ti.in.current].pos, 11);
    /* the rest of the first and into the second with no wait */
    for (uint64_t i = 11; i < 200; i++) {
        ck_assert_uint_eq(must1(&a, "p"), i);
        fake_drain(f);
    }
    idgen_segs_free(a.s);
    fake_free(f);
}
END_TEST

/* A miss: the caller is told to wait for the load and gets the rest after. */
START_TEST(test_miss)
{
    fake_kv *f = fake_new(T0);
    ck_assert_int_eq(create(f, "m", 50, 10), 0);
    fake_set_deferred(f, true);
    struct al a;
    idgen_segs_config cfg = {.max_step = 10};
    al_new(&a, f, &cfg);
    fake_drain(f);
    idgen_range r[8];
    size_t n;
    uint64_t got;
    ck_assert_int_eq(tk(a.s, "m", 25, r, 8, &n, &got), IDGEN_EPENDING);
    ck_assert_uint_eq(got, 0);
    fake_drain(f);
    ck_assert_int_eq(tk(a.s, "m", 25, r, 8, &n, &got), IDGEN_EPENDING);
    ck_assert_uint_eq(got, 10); /* the one segment */
    ck_assert_uint_eq(r[0].start, 50);
    fake_drain(f);
    ck_assert_int_eq(tk(a.s, "m", 15, r, 8, &n, &got), IDGEN_EPENDING);
    ck_assert_uint_eq(got, 10);
    ck_assert_uint_eq(r[0].start, 60);
    fake_drain(f);
    ck_assert_int_eq(tk(a.s, "m", 5, r, 8, &n, &got), 0);
    ck_assert_uint_eq(r[0].start, 70);
    /* max_out bounds the ranges: a partial take that is not a miss */
    fake_drain(f);
    ck_assert_int_eq(tk(a.s, "m", 30, r, 1, &n, &got), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(got, 5);
    idgen_segs_free(a.s);
    fake_free(f);
}
END_TEST

static int64_t loaded_step(struct al *a, const char *tag)
{
    struct tinfo ti = tag_info(a, tag);
    ck_assert(ti.found);
    return ti.in.next_step;
}

/* Drains the current segment (so the next load happens at the current
 * clock) and returns the step of the segment that load claimed. */
static int64_t load_at(struct al *a, fake_kv *f, const char *tag, int64_t after_ms)
{
    fake_advance(f, after_ms);
    struct tinfo ti = tag_info(a, tag);
    idgen_seg_info c = ti.in.seg[ti.in.current];
    uint64_t left = c.end - c.pos;
    idgen_range r[4];
    size_t n;
    uint64_t got;
    if (left)
        ck_assert_int_eq(tk(a->s, tag, left, r, 4, &n, &got), 0);
    tk(a->s, tag, 1, r, 4, &n, &got); /* the miss loads at this time */
    return loaded_step(a, tag);
}

START_TEST(test_step_adaptation)
{
    fake_kv *f = fake_new(T0);
    ck_assert_int_eq(create(f, "s", 1, 100), 0);
    struct al a;
    idgen_segs_config cfg = {.max_step = 1600, .prefetch_pct = 100};
    al_new(&a, f, &cfg);
    must1(&a, "s");
    ck_assert_int_eq(loaded_step(&a, "s"), 100); /* the first: the stored step */
    /* quick consumption: doubles up to max_step */
    ck_assert_int_eq(load_at(&a, f, "s", 1 * MIN_MS), 200);
    ck_assert_int_eq(load_at(&a, f, "s", 1 * MIN_MS), 400);
    ck_assert_int_eq(load_at(&a, f, "s", 14 * MIN_MS), 800);
    ck_assert_int_eq(load_at(&a, f, "s", 1 * MIN_MS), 1600);
    ck_assert_int_eq(load_at(&a, f, "s", 1 * MIN_MS), 1600); /* the bound */
    /* between 15 and 30 minutes: kept */
    ck_assert_int_eq(load_at(&a, f, "s", 20 * MIN_MS), 1600);
    ck_assert_int_eq(load_at(&a, f, "s", 15 * MIN_MS), 1600);
    /* over 30 minutes: halved, never below the stored step */
    ck_assert_int_eq(load_at(&a, f, "s", 31 * MIN_MS), 800);
    ck_assert_int_eq(load_at(&a, f, "s", 40 * MIN_MS), 400);
    ck_assert_int_eq(load_at(&a, f, "s", 40 * MIN_MS), 200);
    ck_assert_int_eq(load_at(&a, f, "s", 40 * MIN_MS), 100);
    ck_assert_int_eq(load_at(&a, f, "s", 40 * MIN_MS), 100);
    /* the stored max_id advanced by exactly the steps claimed */
    struct tinfo ti = tag_info(&a, "s");
    ck_assert_uint_eq(ti.in.max_id,
                      1 + 100 + 200 + 400 + 800 + 1600 * 4 + 800 + 400 + 200 + 100 + 100);
    ck_assert_int_eq(ti.in.step, 100); /* the stored step is left alone */
    idgen_segs_free(a.s);
    fake_free(f);
}
END_TEST

/* Several allocators (members) on one tag, their claims applied in random
 * order: no ID twice, and each allocator's IDs only grow. */
START_TEST(test_racing_allocators)
{
    for (uint64_t seed = 1; seed <= 8; seed++) {
        fake_kv *f = fake_new(T0);
        ck_assert_int_eq(create(f, "race", 7, 10), 0);
        fake_set_deferred(f, true);
        fake_set_random(f, seed);
        enum { N = 4 };
        struct al a[N];
        idgen_segs_config cfg = {.max_step = 40};
        for (int i = 0; i < N; i++)
            al_new(&a[i], f, &cfg);
        fake_drain(f);
        uint64_t last[N] = {0};
        enum { IDS = 4000 };
        uint8_t *seen = calloc(IDS * 10 + 1000, 1);
        uint64_t issued = 0, rng = seed;
        while (issued < IDS) {
            rng = rng * 6364136223846793005ULL + 1;
            int i = (int)((rng >> 33) % N);
            idgen_range r[4];
            size_t n;
            uint64_t got;
            int rc = tk(a[i].s, "race", 1 + (rng >> 50) % 7, r, 4, &n, &got);
            ck_assert(rc == 0 || rc == IDGEN_EPENDING);
            for (size_t k = 0; k < n; k++) {
                for (uint64_t x = r[k].start; x < r[k].start + r[k].count; x++) {
                    ck_assert_uint_lt(x, IDS * 10 + 1000);
                    ck_assert_msg(!seen[x], "ID %llu twice", (unsigned long long)x);
                    seen[x] = 1;
                    ck_assert_msg(x > last[i] || (last[i] == 0 && x >= 7), "allocator %d went back",
                                  i);
                    last[i] = x;
                    issued++;
                }
            }
            if ((rng >> 40) % 3 == 0)
                fake_step(f);
        }
        free(seen);
        for (int i = 0; i < N; i++)
            idgen_segs_free(a[i].s);
        fake_free(f);
    }
}
END_TEST

/* Tags appear and disappear through the watch; an unknown tag is probed. */
START_TEST(test_watch_and_probe)
{
    fake_kv *f = fake_new(T0);
    struct al a;
    al_new(&a, f, NULL);
    ck_assert_uint_eq(idgen_segs_count(a.s), 0);
    ck_assert_int_eq(create(f, "w1", 1, 10), 0);
    ck_assert_uint_eq(idgen_segs_count(a.s), 1); /* through the watch */
    struct tinfo ti = tag_info(&a, "w1");
    ck_assert(ti.found && !ti.in.loaded);
    ck_assert_uint_eq(must1(&a, "w1"), 1);
    fake_del(f, "/metcd/idgen/segments/w1");
    ck_assert_uint_eq(idgen_segs_count(a.s), 0);
    idgen_segs_tick(a.s); /* the host hears of it on the tick */
    ck_assert_int_eq(a.last_err, IDGEN_ETAG_NOT_FOUND);
    ck_assert_str_eq(a.last_tag, "w1");
    uint64_t id;
    ck_assert_int_eq(take1(&a, "w1", &id), IDGEN_ETAG_NOT_FOUND); /* probed */
    ck_assert_int_eq(take1(&a, "never", &id), IDGEN_ETAG_NOT_FOUND);
    ck_assert_uint_eq(idgen_segs_count(a.s), 0); /* absent tags are not kept */
    /* a tag the watch has not delivered (another member created it just
     * now): the probe finds it */
    fake_set_deferred(f, true);
    ck_assert_int_eq(
        idgen_tag_create(fake_kv_iface(f), NULL, "late", 500, 10, "", T0, on_created, NULL), 0);
    fake_break_watches(f, IDGEN_EKV); /* and the watch breaks, too */
    fake_step(f);                     /* the create is applied */
    ck_assert_int_eq(take1(&a, "late", &id), IDGEN_EPENDING);
    fake_drain(f);
    ck_assert_uint_eq(must1(&a, "late"), 500);
    /* the broken watch is replaced on the next tick by a new listing */
    fake_stats st;
    fake_get_stats(f, &st);
    idgen_segs_tick(a.s);
    fake_drain(f);
    fake_stats st2;
    fake_get_stats(f, &st2);
    ck_assert_uint_eq(st2.gets, st.gets + 1);
    ck_assert_uint_eq(st2.watches, st.watches + 1);
    fake_set_deferred(f, false);
    ck_assert_int_eq(create(f, "w2", 1, 10), 0);
    ck_assert(tag_info(&a, "w2").found);
    /* a value nobody can parse */
    fake_put(f, "/metcd/idgen/segments/junk", "{\"max_id\":-1}");
    ck_assert_int_eq(take1(&a, "junk", &id), IDGEN_ECORRUPT);
    /* a tag changed by hand (a higher max_id): the next claim starts there;
     * the two segments already held are used first */
    ck_assert_uint_eq(must1(&a, "w2"), 1); /* [1, 11) and the prefetched [11, 31) */
    fake_put(f, "/metcd/idgen/segments/w2", "{\"max_id\":9000,\"step\":10}");
    for (uint64_t i = 2; i < 31; i++)
        ck_assert_uint_eq(must1(&a, "w2"), i);
    ck_assert_uint_eq(must1(&a, "w2"), 9000);
    idgen_segs_free(a.s);
    fake_free(f);
}
END_TEST

START_TEST(test_unreachable)
{
    fake_kv *f = fake_new(T0);
    ck_assert_int_eq(create(f, "u", 1, 100), 0);
    struct al a;
    idgen_segs_config cfg = {.max_step = 100};
    al_new(&a, f, &cfg);
    ck_assert_uint_eq(must1(&a, "u"), 1);
    fake_set_down(f, true);
    /* the current segment still serves: the prefetch fails quietly */
    for (uint64_t i = 2; i <= 100; i++)
        ck_assert_uint_eq(must1(&a, "u"), i);
    uint64_t id;
    ck_assert_int_eq(take1(&a, "u", &id), IDGEN_ESEGMENTS);
    idgen_segs_tick(a.s); /* told on the tick */
    ck_assert_int_eq(a.last_err, IDGEN_ESEGMENTS);
    ck_assert_str_eq(idgen_strerror(IDGEN_ESEGMENTS),
                     "idgen: both segments not ready (the cluster cannot be reached)");
    fake_set_down(f, false);
    ck_assert_int_eq(take1(&a, "u", &id), IDGEN_ESEGMENTS); /* within retry_ms */
    fake_advance(f, 600);
    ck_assert_uint_eq(must1(&a, "u"), 101);
    idgen_segs_free(a.s);
    fake_free(f);
}
END_TEST

/* Another allocator claims between our read and our claim, again and
 * again: after max_conflicts the load gives up (and tries later). */
START_TEST(test_conflicts)
{
    fake_kv *f = fake_new(T0);
    ck_assert_int_eq(create(f, "c", 1, 10), 0);
    fake_set_deferred(f, true);
    struct al a;
    idgen_segs_config cfg = {.max_conflicts = 3};
    al_new(&a, f, &cfg);
    fake_drain(f);
    uint64_t id;
    ck_assert_int_eq(take1(&a, "c", &id), IDGEN_EPENDING);
    /* before each of our claims lands, someone moves max_id by hand */
    int conflicts_left = 4;
    while (fake_queued(f) && conflicts_left-- > 0) {
        char v[64];
        snprintf(v, sizeof(v), "{\"max_id\":%d,\"step\":10}", 1000 * (4 - conflicts_left));
        fake_put(f, "/metcd/idgen/segments/c", v);
        fake_step(f);
    }
    ck_assert_uint_eq(fake_queued(f), 0);
    ck_assert_int_eq(a.last_err, IDGEN_ESEGMENTS);
    ck_assert_int_eq(take1(&a, "c", &id), IDGEN_ESEGMENTS);
    fake_advance(f, 1000);
    ck_assert_int_eq(take1(&a, "c", &id), IDGEN_EPENDING);
    fake_drain(f);
    ck_assert_uint_eq(must1(&a, "c"), 4000);
    idgen_segs_free(a.s);
    fake_free(f);
}
END_TEST

/* A load stuck in the store is overtaken once the buffers are dry and it
 * has been out for stall_ms; the late answer of the stuck one is ignored. */
START_TEST(test_stalled_load)
{
    fake_kv *f = fake_new(T0);
    ck_assert_int_eq(create(f, "st", 1, 10), 0);
    fake_set_deferred(f, true);
    struct al a;
    idgen_segs_config cfg = {.max_step = 10};
    al_new(&a, f, &cfg);
    fake_drain(f);
    uint64_t id;
    ck_assert_int_eq(take1(&a, "st", &id), IDGEN_EPENDING);
    ck_assert_uint_eq(fake_queued(f), 1);
    fake_advance(f, 500);
    ck_assert_int_eq(take1(&a, "st", &id), IDGEN_EPENDING);
    ck_assert_uint_eq(fake_queued(f), 1); /* not stalled yet */
    fake_advance(f, 600);
    ck_assert_int_eq(take1(&a, "st", &id), IDGEN_EPENDING);
    ck_assert_uint_eq(fake_queued(f), 2); /* overtaken */
    fake_step_last(f);
    ck_assert_int_eq(a.last_err, 0);
    ck_assert_uint_eq(must1(&a, "st"), 1);
    fake_step(f);                         /* the stuck one: a conflict nobody retries */
    ck_assert_uint_eq(fake_queued(f), 1); /* only the prefetch of the next */
    fake_drain(f);
    for (uint64_t i = 2; i < 40; i++) {
        ck_assert_uint_eq(must1(&a, "st"), i);
        fake_drain(f);
    }
    idgen_segs_free(a.s);
    fake_free(f);
}
END_TEST

START_TEST(test_free_in_flight)
{
    fake_kv *f = fake_new(T0);
    ck_assert_int_eq(create(f, "h", 1, 10), 0);
    fake_set_deferred(f, true);
    struct al a;
    al_new(&a, f, NULL);
    idgen_segs_free(a.s); /* the listing in flight */
    fake_drain(f);
    al_new(&a, f, NULL);
    fake_drain(f);
    uint64_t id;
    ck_assert_int_eq(take1(&a, "h", &id), IDGEN_EPENDING);
    fake_del(f, "/metcd/idgen/segments/h"); /* dropped while loading */
    ck_assert_int_eq(take1(&a, "other", &id), IDGEN_EPENDING);
    idgen_segs_free(a.s);
    fake_drain(f);
    fake_free(f);
}
END_TEST

START_TEST(test_too_many_tags)
{
    fake_kv *f = fake_new(T0);
    struct al a;
    idgen_segs_config cfg = {.max_tags = 3};
    al_new(&a, f, &cfg);
    char name[16];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        ck_assert_int_eq(create(f, name, 1, 10), 0);
    }
    ck_assert_int_eq(create(f, "t3", 1, 10), 0); /* stored, but not held here */
    ck_assert_uint_eq(idgen_segs_count(a.s), 3);
    uint64_t id;
    ck_assert_int_eq(take1(&a, "t3", &id), IDGEN_ETOO_MANY);
    ck_assert_uint_eq(must1(&a, "t1"), 1);
    idgen_segs_free(a.s);
    fake_free(f);
}
END_TEST

START_TEST(test_alloc_failures)
{
    for (long i = 0;; i++) {
        fake_kv *f = fake_new(T0);
        ck_assert_int_eq(create(f, "a", 1, 10), 0);
        ck_assert_int_eq(create(f, "b", 1, 10), 0);
        struct al a;
        memset(&a, 0, sizeof(a));
        long before = metcd_mem_count();
        metcd_mem_fail_after(i);
        int rc = idgen_segs_new(&a.s, fake_kv_iface(f), fake_clock(f), NULL, on_notify, &a);
        if (rc == 0) {
            for (int k = 0; k < 40; k++) {
                uint64_t id;
                take1(&a, k % 3 ? "a" : "c", &id);
                idgen_segs_tick(a.s);
                fake_advance(f, 100);
            }
            fake_del(f, "/metcd/idgen/segments/b");
            idgen_segs_tick(a.s);
            int crc = idgen_tag_create(fake_kv_iface(f), NULL, "d", 1, 1, "", 0, on_created, NULL);
            ck_assert(crc == 0 || crc == IDGEN_ENOMEM);
        } else {
            ck_assert_int_eq(rc, IDGEN_ENOMEM);
        }
        bool done = metcd_mem_count() - before <= i;
        metcd_mem_fail_after(-1);
        /* whatever failed, it works again afterwards */
        if (rc == 0) {
            fake_advance(f, 1000);
            uint64_t id;
            ck_assert_int_eq(take1(&a, "a", &id), 0);
            idgen_segs_free(a.s);
        }
        fake_free(f);
        if (done)
            break;
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("idgen_segments");
    TCase *tc = tcase_create("segments");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_create_and_take);
    tcase_add_test(tc, test_prefetch);
    tcase_add_test(tc, test_miss);
    tcase_add_test(tc, test_step_adaptation);
    tcase_add_test(tc, test_racing_allocators);
    tcase_add_test(tc, test_watch_and_probe);
    tcase_add_test(tc, test_unreachable);
    tcase_add_test(tc, test_conflicts);
    tcase_add_test(tc, test_stalled_load);
    tcase_add_test(tc, test_free_in_flight);
    tcase_add_test(tc, test_too_many_tags);
    tcase_add_test(tc, test_alloc_failures);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
