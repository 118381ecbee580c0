/* Lessor: grant/revoke/attach with a fake clock, persistence and rebuild
 * on reopen, expiry only on the primary, promotion with the checkpointed
 * remaining TTL plus the extension, checkpoint schedule, renew clearing a
 * checkpoint, stall shift, and errors. */
#include "mvcc/mvcc.h"
#include "util.h"

static int64_t put_lease(mvcc_store *s, const char *k, int64_t lease)
{
    mvcc_put_req r = {.key = (const uint8_t *)k, .key_len = strlen(k),
                      .value = (const uint8_t *)"v", .value_len = 1, .lease = lease};
    mvcc_result res = {0};
    int rc = mvcc_put(s, &r, &res);
    mvcc_result_free(&res);
    return rc;
}

static int64_t del_key(mvcc_store *s, const char *k)
{
    mvcc_delete_req d = {.key = (const uint8_t *)k, .key_len = strlen(k)};
    mvcc_result res = {0};
    ck_assert_int_eq(mvcc_delete_range(s, &d, &res), 0);
    int64_t n = res.resp.u.del.deleted;
    mvcc_result_free(&res);
    return n;
}

static bool exists(mvcc_store *s, const char *k)
{
    mvcc_range_req r = {.key = (const uint8_t *)k, .key_len = strlen(k)};
    mvcc_result res = {0};
    ck_assert_int_eq(mvcc_range(s, &r, &res), 0);
    bool e = res.resp.u.range.nkvs == 1;
    mvcc_result_free(&res);
    return e;
}

static size_t nkeys(mvcc_lessor *l, int64_t id)
{
    mvcc_lease_info in;
    ck_assert_int_eq(mvcc_lease_get(l, id, &in), 0);
    return in.nkeys;
}

struct evlog {
    int writes;
    size_t events;
    int64_t rev;
};

static void observe(void *arg, const mvcc_event *ev, size_t n, int64_t rev)
{
    struct evlog *e = arg;
    (void)ev;
    e->writes++;
    e->events += n;
    e->rev = rev;
}

START_TEST(test_grant_attach_revoke)
{
    fixture f;
    fx_init(&f);
    mvcc_lessor *l;
    ck_assert_int_eq(mvcc_lessor_open(&l, f.s, 2), 0);
    int64_t ttl;
    ck_assert_int_eq(mvcc_lease_grant(l, 7, 1, 0, &ttl), 0);
    ck_assert_int_eq(ttl, 2); /* raised to the minimum */
    ck_assert_int_eq(mvcc_lease_grant(l, 7, 10, 0, &ttl), MVCC_ELEASE_EXISTS);
    ck_assert_int_eq(mvcc_lease_grant(l, 8, MVCC_LEASE_MAX_TTL + 1, 0, &ttl),
                     MVCC_ELEASE_TTL_TOO_LARGE);
    ck_assert_int_eq(mvcc_lease_grant(l, 9, MVCC_LEASE_MAX_TTL, 0, &ttl), 0);
    ck_assert_str_eq(mvcc_strerror(MVCC_ELEASE_EXISTS), "etcdserver: lease already exists");
    ck_assert_str_eq(mvcc_strerror(MVCC_ELEASE_TTL_TOO_LARGE), "etcdserver: too large lease TTL");

    ck_assert_int_eq(put_lease(f.s, "x", 5), MVCC_ELEASE_NOT_FOUND);
    ck_assert_int_eq(put_lease(f.s, "a", 7), 0);
    ck_assert_int_eq(put_lease(f.s, "b", 7), 0);
    ck_assert_int_eq(put_lease(f.s, "c", 7), 0);
    ck_assert_int_eq(put_lease(f.s, "c", 9), 0); /* moves to 9 */
    ck_assert_int_eq(put_lease(f.s, "b", 0), 0); /* detached */
    ck_assert_uint_eq(nkeys(l, 7), 1);
    ck_assert_uint_eq(nkeys(l, 9), 1);
    ck_assert_int_eq(put_lease(f.s, "d", 7), 0);
    ck_assert_int_eq(del_key(f.s, "d"), 1); /* deleted: detached */
    ck_assert_uint_eq(nkeys(l, 7), 1);
    ck_assert_int_eq(put_lease(f.s, "e", 7), 0);
    ck_assert_int_eq(put_lease(f.s, "f", 7), 0);

    struct evlog ev = {0};
    mvcc_set_observer(f.s, observe, &ev);
    int64_t before = mvcc_current_rev(f.s);
    mvcc_result res = {0};
    ck_assert_int_eq(mvcc_lease_revoke(l, 7, &res), 0);
    ck_assert_int_eq(res.resp.revision, before + 1); /* one revision for all keys */
    mvcc_result_free(&res);
    ck_assert_int_eq(ev.writes, 1);
    ck_assert_uint_eq(ev.events, 3);
    ck_assert(!exists(f.s, "a") && !exists(f.s, "e") && !exists(f.s, "f"));
    ck_assert(exists(f.s, "b") && exists(f.s, "c"));
    mvcc_lease_info in;
    ck_assert_int_eq(mvcc_lease_get(l, 7, &in), MVCC_ELEASE_NOT_FOUND);
    ck_assert_int_eq(mvcc_lease_revoke(l, 7, NULL), MVCC_ELEASE_NOT_FOUND);
    /* a lease without keys: no revision */
    ck_assert_int_eq(mvcc_lease_grant(l, 10, 5, 0, &ttl), 0);
    ck_assert_int_eq(mvcc_lease_revoke(l, 10, &res), 0);
    ck_assert_int_eq(res.resp.revision, before + 1);
    mvcc_result_free(&res);
    ck_assert_uint_eq(mvcc_lease_count(l), 1);
    int64_t ids[4];
    ck_assert_uint_eq(mvcc_lease_list(l, ids, 4), 1);
    ck_assert_int_eq(ids[0], 9);
    mvcc_set_observer(f.s, NULL, NULL);
    mvcc_lessor_close(l);
    fx_done(&f);
}
END_TEST

START_TEST(test_reopen_rebuilds)
{
    fixture f;
    fx_init(&f);
    mvcc_lessor *l;
    ck_assert_int_eq(mvcc_lessor_open(&l, f.s, 1), 0);
    int64_t ttl;
    ck_assert_int_eq(mvcc_lease_grant(l, 0x1234567890abLL, 30, 0, &ttl), 0);
    ck_assert_int_eq(mvcc_lease_grant(l, 2, 60, 0, &ttl), 0);
    char k[16];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof(k), "k%05d", i);
        ck_assert_int_eq(put_lease(f.s, k, i % 2 ? 2 : 0x1234567890abLL), 0);
    }
    ck_assert_int_eq(mvcc_lease_checkpoint(l, 2, 17), 0);
    ck_assert_int_eq(mvcc_lease_checkpoint(l, 99, 17), 0); /* unknown: ignored */
    mvcc_lessor_close(l);
    fx_reopen(&f);
    ck_assert_int_eq(mvcc_lessor_open(&l, f.s, 1), 0);
    mvcc_lease_info in;
    ck_assert_int_eq(mvcc_lease_get(l, 2, &in), 0);
    ck_assert_int_eq(in.ttl, 60);
    ck_assert_int_eq(in.remaining_ttl, 17);
    ck_assert_uint_eq(in.nkeys, 2500);
    ck_assert_int_eq(mvcc_lease_get(l, 0x1234567890abLL, &in), 0);
    ck_assert_int_eq(in.ttl, 30);
    ck_assert_int_eq(in.remaining_ttl, 0);
    ck_assert_uint_eq(in.nkeys, 2500);
    ck_assert_int_eq(mvcc_lease_revoke(l, 2, NULL), 0);
    ck_assert(!exists(f.s, "k00001") && exists(f.s, "k00000"));
    mvcc_lessor_close(l);
    /* without a lessor the store accepts any lease again */
    ck_assert_int_eq(put_lease(f.s, "z", 12345), 0);
    fx_done(&f);
}
END_TEST

START_TEST(test_expiry_primary_only)
{
    fixture f;
    fx_init(&f);
    mvcc_lessor *l;
    ck_assert_int_eq(mvcc_lessor_open(&l, f.s, 1), 0);
    int64_t ttl, ids[8];
    ck_assert_int_eq(mvcc_lease_grant(l, 1, 10, 0, &ttl), 0);
    /* a follower never expires anything and cannot renew */
    ck_assert_uint_eq(mvcc_lessor_expired(l, 1000000, 3000, ids, 8), 0);
    ck_assert_int_eq(mvcc_lease_renew(l, 1, 0, &ttl), MVCC_EINVALID);
    ck_assert(!mvcc_lessor_is_primary(l));

    mvcc_lessor_promote(l, 100000, 1000); /* expires at 100000 + 10 s + 1 s */
    ck_assert(mvcc_lessor_is_primary(l));
    ck_assert_int_eq(mvcc_lease_grant(l, 2, 5, 100000, &ttl), 0);
    ck_assert_uint_eq(mvcc_lessor_expired(l, 104999, 3000, ids, 8), 0);
    ck_assert_uint_eq(mvcc_lessor_expired(l, 105000, 3000, ids, 8), 1);
    ck_assert_int_eq(ids[0], 2);
    /* re-armed for a retry, not returned again before it */
    ck_assert_uint_eq(mvcc_lessor_expired(l, 107999, 3000, ids, 8), 0);
    ck_assert_uint_eq(mvcc_lessor_expired(l, 108000, 3000, ids, 8), 1);
    /* an expired lease cannot be renewed */
    ck_assert_int_eq(mvcc_lease_renew(l, 2, 108000, &ttl), MVCC_ELEASE_NOT_FOUND);
    ck_assert_int_eq(mvcc_lease_revoke(l, 2, NULL), 0);
    /* renew pushes the expiry */
    ck_assert_int_eq(mvcc_lease_renew(l, 1, 110000, &ttl), 0);
    ck_assert_int_eq(ttl, 10);
    ck_assert_uint_eq(mvcc_lessor_expired(l, 119999, 3000, ids, 8), 0);
    /* a stall of 30 s: nothing expires for it */
    mvcc_lessor_shift(l, 30000);
    ck_assert_uint_eq(mvcc_lessor_expired(l, 149999, 3000, ids, 8), 0);
    ck_assert_uint_eq(mvcc_lessor_expired(l, 150000, 3000, ids, 8), 1);
    mvcc_lessor_demote(l);
    ck_assert_uint_eq(mvcc_lessor_expired(l, 10000000, 3000, ids, 8), 0);
    mvcc_lease_info in;
    ck_assert_int_eq(mvcc_lease_get(l, 1, &in), 0);
    ck_assert_int_eq(in.expiry_ms, INT64_MAX);
    mvcc_lessor_close(l);
    fx_done(&f);
}
END_TEST

START_TEST(test_checkpoints)
{
    fixture f;
    fx_init(&f);
    mvcc_lessor *l;
    ck_assert_int_eq(mvcc_lessor_open(&l, f.s, 1), 0);
    mvcc_lessor_promote(l, 0, 1000);
    int64_t ttl;
    mvcc_lease_cp cp[8];
    ck_assert_int_eq(mvcc_lease_grant(l, 1, 60, 0, &ttl), 0);
    /* kept alive every TTL/3: never due */
    for (int64_t t = 20000; t <= 200000; t += 20000) {
        ck_assert_uint_eq(mvcc_lessor_checkpoints(l, t, cp, 8), 0);
        ck_assert_int_eq(mvcc_lease_renew(l, 1, t, &ttl), 0);
    }
    ck_assert_int_eq(mvcc_lease_revoke(l, 1, NULL), 0);
    ck_assert_int_eq(mvcc_lease_grant(l, 2, 60, 0, &ttl), 0);
    /* lease 2 was abandoned at 0: due at 30 s (half its TTL left) */
    mvcc_lease_info in;
    ck_assert_int_eq(mvcc_lease_get(l, 2, &in), 0);
    ck_assert_uint_eq(mvcc_lessor_checkpoints(l, 29999, cp, 8), 0);
    ck_assert_uint_eq(mvcc_lessor_checkpoints(l, 30000, cp, 8), 1);
    ck_assert_int_eq(cp[0].id, 2);
    ck_assert_int_eq(cp[0].remaining_ttl, 30);
    ck_assert_int_eq(mvcc_lease_checkpoint(l, 2, cp[0].remaining_ttl), 0);
    /* next at 15 s left, then 8 s ... */
    ck_assert_uint_eq(mvcc_lessor_checkpoints(l, 44999, cp, 8), 0);
    ck_assert_uint_eq(mvcc_lessor_checkpoints(l, 45000, cp, 8), 1);
    ck_assert_int_eq(cp[0].remaining_ttl, 15);
    ck_assert_int_eq(mvcc_lease_checkpoint(l, 2, 15), 0);
    /* a new leader gives it 15 s + the extension, not 60 s */
    mvcc_lessor_demote(l);
    mvcc_lessor_promote(l, 50000, 1000);
    ck_assert_int_eq(mvcc_lease_get(l, 2, &in), 0);
    ck_assert_int_eq(in.expiry_ms, 50000 + 15000 + 1000);
    /* a renew after a checkpoint clears it at once */
    ck_assert_int_eq(mvcc_lease_renew(l, 2, 51000, &ttl), 0);
    ck_assert_uint_eq(mvcc_lessor_checkpoints(l, 51000, cp, 8), 1);
    ck_assert_int_eq(cp[0].id, 2);
    ck_assert_int_eq(cp[0].remaining_ttl, 0);
    ck_assert_int_eq(mvcc_lease_checkpoint(l, 2, 0), 0);
    ck_assert_uint_eq(mvcc_lessor_checkpoints(l, 80999, cp, 8), 0);
    ck_assert_uint_eq(mvcc_lessor_checkpoints(l, 81000, cp, 8), 1);
    ck_assert_int_eq(cp[0].remaining_ttl, 30);
    ck_assert_int_eq(mvcc_lease_revoke(l, 2, NULL), 0);
    /* a short lease is checkpointed down to a 1 s step and no further */
    ck_assert_int_eq(mvcc_lease_grant(l, 3, 2, 100000, &ttl), 0);
    ck_assert_uint_eq(mvcc_lessor_checkpoints(l, 101000, cp, 8), 1);
    ck_assert_int_eq(cp[0].remaining_ttl, 1);
    ck_assert_uint_eq(mvcc_lessor_checkpoints(l, 101999, cp, 8), 0);
    mvcc_lessor_close(l);
    fx_done(&f);
}
END_TEST

/* Many leases, random renew/expire order: the expiry heap pops in time
 * order and never loses a lease. */
START_TEST(test_heap_order)
{
    fixture f;
    fx_init(&f);
    mvcc_lessor *l;
    ck_assert_int_eq(mvcc_lessor_open(&l, f.s, 1), 0);
    mvcc_lessor_promote(l, 0, 0);
    int64_t ttl;
    srand(7);
    enum { N = 3000 };
    for (int64_t i = 1; i <= N; i++)
        ck_assert_int_eq(mvcc_lease_grant(l, i, 1 + rand() % 100, 0, &ttl), 0);
    for (int i = 0; i < N; i++) {
        int64_t id = 1 + rand() % N;
        mvcc_lease_renew(l, id, rand() % 1000, &ttl);
    }
    int64_t ids[N], seen = 0;
    for (int64_t t = 0; t <= 200000; t += 250) {
        size_t n = mvcc_lessor_expired(l, t, 1000000, ids, N);
        for (size_t i = 0; i < n; i++) {
            ck_assert_int_eq(mvcc_lease_revoke(l, ids[i], NULL), 0);
            seen++;
        }
        /* what is left expires later */
        size_t left = mvcc_lease_list(l, ids, N);
        for (size_t i = 0; i < left; i++) {
            mvcc_lease_info in;
            ck_assert_int_eq(mvcc_lease_get(l, ids[i], &in), 0);
            ck_assert_int_gt(in.expiry_ms, t);
        }
    }
    ck_assert_int_eq(seen, N);
    ck_assert_uint_eq(mvcc_lease_count(l), 0);
    mvcc_lessor_close(l);
    fx_done(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lessor");
    TCase *tc = tcase_create("lessor");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_grant_attach_revoke);
    tcase_add_test(tc, test_reopen_rebuilds);
    tcase_add_test(tc, test_expiry_primary_only);
    tcase_add_test(tc, test_checkpoints);
    tcase_add_test(tc, test_heap_order);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
