/* KV store: Range with every option, Put and DeleteRange flags and errors,
 * restore after reopen, events and history. Expected values follow etcd
 * 3.4 (checked against the real etcd by the integration tests). */
#include "mvcc/internal.h"
#include "util.h"

static mvcc_range_req rq(const char *k, const char *end)
{
    mvcc_range_req r = {.key = (const uint8_t *)k, .key_len = strlen(k)};
    if (end) {
        r.range_end = (const uint8_t *)end;
        r.range_end_len = end[0] ? strlen(end) : 1; /* "" means "\0" here */
    }
    return r;
}

/* keys of a range result joined by ',' */
static void keys_of(const mvcc_result *res, char *out, size_t cap)
{
    out[0] = 0;
    for (size_t i = 0; i < res->resp.u.range.nkvs; i++) {
        const mvcc_kv *kv = &res->resp.u.range.kvs[i];
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%.*s", i ? "," : "", (int)kv->key_len, kv->key);
    }
}

static void check_range(mvcc_store *s, mvcc_range_req r, const char *want_keys, int64_t count,
                        int more)
{
    mvcc_result res = {0};
    ck_assert_int_eq(mvcc_range(s, &r, &res), 0);
    char got[512];
    keys_of(&res, got, sizeof(got));
    ck_assert_str_eq(got, want_keys);
    ck_assert_int_eq(res.resp.u.range.count, count);
    ck_assert_int_eq(res.resp.u.range.more, more);
    ck_assert_int_eq(res.resp.revision, mvcc_current_rev(s));
    mvcc_result_free(&res);
}

START_TEST(test_put_get_versions)
{
    fixture f;
    fx_init(&f);
    ck_assert_int_eq(mvcc_current_rev(f.s), 1);
    ck_assert_int_eq(put(f.s, "a", "1"), 2);
    ck_assert_int_eq(put(f.s, "b", "2"), 3);
    ck_assert_int_eq(put(f.s, "a", "3"), 4);
    mvcc_range_req r = rq("a", NULL);
    mvcc_result res = {0};
    ck_assert_int_eq(mvcc_range(f.s, &r, &res), 0);
    ck_assert_uint_eq(res.resp.u.range.nkvs, 1);
    const mvcc_kv *kv = &res.resp.u.range.kvs[0];
    ck_assert_int_eq(kv->create_revision, 2);
    ck_assert_int_eq(kv->mod_revision, 4);
    ck_assert_int_eq(kv->version, 2);
    ck_assert_int_eq(kv->value_len, 1);
    ck_assert_int_eq(kv->value[0], '3');
    mvcc_result_free(&res);
    char buf[16];
    ck_assert_str_eq(get(f.s, "a", 2, buf, sizeof(buf)), "1");
    ck_assert_str_eq(get(f.s, "a", 3, buf, sizeof(buf)), "1");
    ck_assert_ptr_null(get(f.s, "b", 2, buf, sizeof(buf)));
    ck_assert_int_eq(mvcc_keys_total(f.s), 2);
    fx_done(&f);
}
END_TEST

START_TEST(test_range_end_conventions_limit_count)
{
    fixture f;
    fx_init(&f);
    const char *keys[] = {"a", "ab", "abc", "b", "c", "d"};
    for (int i = 0; i < 6; i++)
        put(f.s, keys[i], "v");
    check_range(f.s, rq("a", "b"), "a,ab,abc", 3, 0);          /* prefix a */
    check_range(f.s, rq("b", ""), "b,c,d", 3, 0);              /* "\0": from key */
    check_range(f.s, rq("ab", NULL), "ab", 1, 0);              /* single key */
    check_range(f.s, rq("zz", NULL), "", 0, 0);
    check_range(f.s, rq("c", "b"), "", 0, 0);                  /* end < key: empty */
    check_range(f.s, rq("c", "c"), "", 0, 0);                  /* end == key: empty */
    mvcc_range_req r = rq("a", "");
    r.limit = 2;
    check_range(f.s, r, "a,ab", 6, 1);
    r.limit = 6;
    check_range(f.s, r, "a,ab,abc,b,c,d", 6, 0);
    r.limit = 0;
    r.count_only = 1;
    check_range(f.s, r, "", 6, 0);
    r.count_only = 0;
    r.keys_only = 1;
    mvcc_result res = {0};
    ck_assert_int_eq(mvcc_range(f.s, &r, &res), 0);
    for (size_t i = 0; i < res.resp.u.range.nkvs; i++) {
        ck_assert_uint_eq(res.resp.u.range.kvs[i].value_len, 0);
        ck_assert_ptr_null(res.resp.u.range.kvs[i].raw);
    }
    mvcc_result_free(&res);
    fx_done(&f);
}
END_TEST

START_TEST(test_range_revisions_and_errors)
{
    fixture f;
    fx_init(&f);
    put(f.s, "k1", "a"); /* 2 */
    put(f.s, "k2", "b"); /* 3 */
    del(f.s, "k1", NULL); /* 4 */
    mvcc_range_req r = rq("k", "l");
    r.revision = 3;
    check_range(f.s, r, "k1,k2", 2, 0);
    r.revision = 4;
    check_range(f.s, r, "k2", 1, 0);
    r.revision = 5;
    mvcc_result res = {0};
    ck_assert_int_eq(mvcc_range(f.s, &r, &res), MVCC_EFUTURE_REV);
    r.revision = 0;
    r.key_len = 0;
    ck_assert_int_eq(mvcc_range(f.s, &r, &res), MVCC_EEMPTY_KEY);
    r = rq("k", "l");
    r.sort_order = 3;
    ck_assert_int_eq(mvcc_range(f.s, &r, &res), MVCC_EINVALID_SORT);
    r.sort_order = 0;
    r.sort_target = 5;
    ck_assert_int_eq(mvcc_range(f.s, &r, &res), MVCC_EINVALID_SORT);
    ck_assert_str_eq(mvcc_strerror(MVCC_EFUTURE_REV), "mvcc: required revision is a future revision");
    ck_assert_ptr_null(res.arena);
    fx_done(&f);
}
END_TEST

START_TEST(test_sort_and_filters)
{
    fixture f;
    fx_init(&f);
    put(f.s, "a", "z");  /* 2 */
    put(f.s, "b", "y");  /* 3 */
    put(f.s, "c", "x");  /* 4 */
    put(f.s, "b", "w");  /* 5: b version 2 */
    put(f.s, "d", "x");  /* 6 */
    mvcc_range_req r = rq("a", "");
    r.sort_order = MVCC_SORT_DESCEND;
    check_range(f.s, r, "d,c,b,a", 4, 0);
    r.sort_target = MVCC_SORT_VALUE;
    r.sort_order = MVCC_SORT_ASCEND;
    check_range(f.s, r, "b,c,d,a", 4, 0); /* w,x,x,z: ties keep key order */
    r.sort_order = MVCC_SORT_DESCEND;
    check_range(f.s, r, "a,c,d,b", 4, 0);
    r.sort_order = MVCC_SORT_NONE; /* non-key target: ascend by default */
    check_range(f.s, r, "b,c,d,a", 4, 0);
    r.sort_target = MVCC_SORT_VERSION;
    r.sort_order = MVCC_SORT_DESCEND;
    check_range(f.s, r, "b,a,c,d", 4, 0);
    r.sort_target = MVCC_SORT_MOD;
    r.sort_order = MVCC_SORT_ASCEND;
    check_range(f.s, r, "a,c,b,d", 4, 0);
    r.sort_target = MVCC_SORT_CREATE;
    r.sort_order = MVCC_SORT_DESCEND;
    r.limit = 2;
    check_range(f.s, r, "d,c", 4, 1);
    /* filters prune, count stays the total */
    r = rq("a", "");
    r.min_mod_revision = 4;
    check_range(f.s, r, "b,c,d", 4, 0);
    r.max_mod_revision = 5;
    check_range(f.s, r, "b,c", 4, 0);
    r = rq("a", "");
    r.max_create_revision = 3;
    r.limit = 1;
    check_range(f.s, r, "a", 4, 1);
    r.min_create_revision = 3;
    check_range(f.s, r, "b", 4, 0);
    fx_done(&f);
}
END_TEST

START_TEST(test_put_flags_and_errors)
{
    fixture f;
    fx_init(&f);
    mvcc_result res = {0};
    mvcc_put_req p = {.key = (const uint8_t *)"k", .key_len = 1,
                      .value = (const uint8_t *)"v1", .value_len = 2, .lease = 7};
    ck_assert_int_eq(mvcc_put(f.s, &p, &res), 0);
    ck_assert_ptr_null(res.resp.u.put.prev_kv);
    mvcc_result_free(&res);
    /* ignore_value keeps v1, prev_kv returns it */
    mvcc_put_req p2 = {.key = (const uint8_t *)"k", .key_len = 1, .ignore_value = 1,
                       .prev_kv = 1, .lease = 9};
    ck_assert_int_eq(mvcc_put(f.s, &p2, &res), 0);
    ck_assert_ptr_nonnull(res.resp.u.put.prev_kv);
    ck_assert_int_eq(res.resp.u.put.prev_kv->lease, 7);
    ck_assert_int_eq(res.resp.revision, 3);
    mvcc_result_free(&res);
    mvcc_range_req r = rq("k", NULL);
    ck_assert_int_eq(mvcc_range(f.s, &r, &res), 0);
    ck_assert_int_eq(memcmp(res.resp.u.range.kvs[0].value, "v1", 2), 0);
    ck_assert_int_eq(res.resp.u.range.kvs[0].lease, 9);
    mvcc_result_free(&res);
    /* ignore_lease keeps 9 */
    mvcc_put_req p3 = {.key = (const uint8_t *)"k", .key_len = 1, .value = (const uint8_t *)"v3",
                       .value_len = 2, .ignore_lease = 1};
    ck_assert_int_eq(mvcc_put(f.s, &p3, &res), 0);
    mvcc_result_free(&res);
    ck_assert_int_eq(mvcc_range(f.s, &r, &res), 0);
    ck_assert_int_eq(res.resp.u.range.kvs[0].lease, 9);
    ck_assert_int_eq(res.resp.u.range.kvs[0].version, 3);
    mvcc_result_free(&res);
    /* errors change nothing */
    int64_t rev = mvcc_current_rev(f.s);
    mvcc_put_req bad = {.key = (const uint8_t *)"", .key_len = 0};
    ck_assert_int_eq(mvcc_put(f.s, &bad, &res), MVCC_EEMPTY_KEY);
    bad = (mvcc_put_req){.key = (const uint8_t *)"k", .key_len = 1, .ignore_value = 1,
                         .value = (const uint8_t *)"x", .value_len = 1};
    ck_assert_int_eq(mvcc_put(f.s, &bad, &res), MVCC_EVALUE_PROVIDED);
    bad = (mvcc_put_req){.key = (const uint8_t *)"k", .key_len = 1, .ignore_lease = 1, .lease = 3};
    ck_assert_int_eq(mvcc_put(f.s, &bad, &res), MVCC_ELEASE_PROVIDED);
    bad = (mvcc_put_req){.key = (const uint8_t *)"nokey", .key_len = 5, .ignore_value = 1};
    ck_assert_int_eq(mvcc_put(f.s, &bad, &res), MVCC_EKEY_NOT_FOUND);
    ck_assert_int_eq(mvcc_current_rev(f.s), rev);
    ck_assert_int_eq(mvcc_keys_total(f.s), 1);
    fx_done(&f);
}
END_TEST

static int lease_7_only(void *arg, int64_t lease)
{
    (void)arg;
    return lease == 7;
}

struct attach_log {
    int calls;
    int64_t last_new;
};

static void on_attach(void *arg, const uint8_t *key, size_t key_len, int64_t lease)
{
    struct attach_log *l = arg;
    (void)key;
    (void)key_len;
    l->calls++;
    l->last_new = lease;
}

START_TEST(test_lease_hooks)
{
    fixture f;
    fx_init(&f);
    struct attach_log log = {0};
    mvcc_lease_hooks h = {lease_7_only, on_attach, &log};
    mvcc_set_lease_hooks(f.s, &h);
    mvcc_result res = {0};
    mvcc_put_req p = {.key = (const uint8_t *)"k", .key_len = 1, .lease = 8};
    ck_assert_int_eq(mvcc_put(f.s, &p, &res), MVCC_ELEASE_NOT_FOUND);
    ck_assert_int_eq(mvcc_current_rev(f.s), 1);
    p.lease = 7;
    ck_assert_int_eq(mvcc_put(f.s, &p, &res), 0);
    mvcc_result_free(&res);
    ck_assert_int_eq(log.calls, 1);
    ck_assert_int_eq(log.last_new, 7);
    del(f.s, "k", NULL);
    ck_assert_int_eq(log.calls, 2);
    ck_assert_int_eq(log.last_new, 0);
    del(f.s, "k", NULL); /* nothing to delete: no call */
    ck_assert_int_eq(log.calls, 2);
    fx_done(&f);
}
END_TEST

START_TEST(test_delete_range)
{
    fixture f;
    fx_init(&f);
    put(f.s, "a", "1");
    put(f.s, "b", "2");
    put(f.s, "c", "3");
    int64_t rev = mvcc_current_rev(f.s);
    ck_assert_int_eq(del(f.s, "x", NULL), 0);
    ck_assert_int_eq(mvcc_current_rev(f.s), rev); /* nothing deleted: no revision */
    mvcc_delete_req d = {.key = (const uint8_t *)"a", .key_len = 1,
                         .range_end = (const uint8_t *)"c", .range_end_len = 1, .prev_kv = 1};
    mvcc_result res = {0};
    ck_assert_int_eq(mvcc_delete_range(f.s, &d, &res), 0);
    ck_assert_int_eq(res.resp.u.del.deleted, 2);
    ck_assert_uint_eq(res.resp.u.del.nprev_kvs, 2);
    ck_assert_int_eq(res.resp.u.del.prev_kvs[1].key[0], 'b');
    ck_assert_int_eq(res.resp.revision, rev + 1);
    mvcc_result_free(&res);
    ck_assert_int_eq(mvcc_current_rev(f.s), rev + 1);
    char buf[8];
    ck_assert_ptr_null(get(f.s, "a", 0, buf, sizeof(buf)));
    ck_assert_str_eq(get(f.s, "a", rev, buf, sizeof(buf)), "1");
    ck_assert_int_eq(mvcc_keys_total(f.s), 1);
    /* re-create: new generation, version 1 */
    put(f.s, "a", "again");
    mvcc_range_req r = rq("a", NULL);
    ck_assert_int_eq(mvcc_range(f.s, &r, &res), 0);
    ck_assert_int_eq(res.resp.u.range.kvs[0].version, 1);
    ck_assert_int_eq(res.resp.u.range.kvs[0].create_revision, rev + 2);
    mvcc_result_free(&res);
    fx_done(&f);
}
END_TEST

START_TEST(test_restore_after_reopen)
{
    fixture f;
    fx_init(&f);
    for (int i = 0; i < 500; i++) {
        char k[16], v[16];
        snprintf(k, sizeof(k), "key%03d", i % 100);
        snprintf(v, sizeof(v), "v%d", i);
        put(f.s, k, v);
        if (i % 7 == 0)
            del(f.s, k, NULL);
    }
    int64_t rev = mvcc_current_rev(f.s);
    int64_t keys = mvcc_keys_total(f.s);
    uint32_t h1, h2;
    int64_t hr, cr;
    ck_assert_int_eq(mvcc_hash_kv(f.s, 0, &h1, &hr, &cr), 0);
    mvcc_range_req r = rq("key", "kez");
    mvcc_result before = {0}, after = {0};
    ck_assert_int_eq(mvcc_range(f.s, &r, &before), 0);
    fx_reopen(&f);
    ck_assert_int_eq(mvcc_current_rev(f.s), rev);
    ck_assert_int_eq(mvcc_keys_total(f.s), keys);
    ck_assert_int_eq(mvcc_hash_kv(f.s, 0, &h2, &hr, &cr), 0);
    ck_assert_uint_eq(h1, h2);
    ck_assert_int_eq(mvcc_range(f.s, &r, &after), 0);
    ck_assert_uint_eq(before.resp.u.range.nkvs, after.resp.u.range.nkvs);
    for (size_t i = 0; i < before.resp.u.range.nkvs; i++) {
        const mvcc_kv *a = &before.resp.u.range.kvs[i], *b = &after.resp.u.range.kvs[i];
        ck_assert_uint_eq(a->raw_len, b->raw_len);
        ck_assert_int_eq(memcmp(a->raw, b->raw, a->raw_len), 0);
    }
    mvcc_result_free(&before);
    mvcc_result_free(&after);
    ck_assert_int_eq(put(f.s, "new", "x"), rev + 1);
    fx_done(&f);
}
END_TEST

struct ev_log {
    int batches;
    int64_t last_rev;
    int nevents;
    mvcc_event_type types[8];
};

static void observe(void *arg, const mvcc_event *evs, size_t n, int64_t rev)
{
    struct ev_log *l = arg;
    l->batches++;
    l->last_rev = rev;
    for (size_t i = 0; i < n && l->nevents < 8; i++) {
        ck_assert_int_eq(evs[i].rev.main, rev);
        if (evs[i].type == MVCC_EVENT_DELETE)
            ck_assert_int_eq(evs[i].kv.mod_revision, rev);
        l->types[l->nevents++] = evs[i].type;
    }
}

static int hist_count(void *arg, const mvcc_event *ev)
{
    int *n = arg;
    (*n)++;
    (void)ev;
    return 1;
}

START_TEST(test_events_and_history)
{
    fixture f;
    fx_init(&f);
    struct ev_log log = {0};
    mvcc_set_observer(f.s, observe, &log);
    put(f.s, "a", "1");
    put(f.s, "b", "2");
    del(f.s, "a", "c");
    del(f.s, "zzz", NULL); /* no change: no notification */
    ck_assert_int_eq(log.batches, 3);
    ck_assert_int_eq(log.last_rev, 4);
    ck_assert_int_eq(log.nevents, 4);
    ck_assert_int_eq(log.types[2], MVCC_EVENT_DELETE);
    int n = 0;
    ck_assert_int_eq(mvcc_history(f.s, 2, 0, 0, hist_count, &n), 0);
    ck_assert_int_eq(n, 4);
    n = 0;
    ck_assert_int_eq(mvcc_history(f.s, 3, 3, 0, hist_count, &n), 0);
    ck_assert_int_eq(n, 1);
    n = 0;
    ck_assert_int_eq(mvcc_history(f.s, 2, 0, 2, hist_count, &n), 1);
    ck_assert_int_eq(n, 2);
    fx_done(&f);
}
END_TEST

START_TEST(test_operation_counters)
{
    fixture f;
    fx_init(&f);
    put(f.s, "a", "1");
    put(f.s, "b", "2");
    del(f.s, "a", NULL);
    del(f.s, "zz", NULL); /* deletes nothing, still counted (as etcd) */
    char buf[8];
    get(f.s, "b", 0, buf, sizeof(buf));
    mvcc_stats st;
    mvcc_get_stats(f.s, &st);
    ck_assert_uint_eq(st.puts, 2);
    ck_assert_uint_eq(st.deletes, 2);
    ck_assert_uint_eq(st.ranges, 1);
    ck_assert_uint_eq(st.txns, 5);
    fx_done(&f);
}
END_TEST

START_TEST(test_consistent_index_persists)
{
    fixture f;
    fx_init(&f);
    ck_assert_uint_eq(mvcc_consistent_index(f.s), 0);
    ck_assert_int_eq(mvcc_set_consistent_index(f.s, 0x1122334455667788ULL), 0);
    fx_reopen(&f);
    ck_assert_uint_eq(mvcc_consistent_index(f.s), 0x1122334455667788ULL);
    fx_done(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mvcc/kvstore");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_put_get_versions);
    tcase_add_test(tc, test_range_end_conventions_limit_count);
    tcase_add_test(tc, test_range_revisions_and_errors);
    tcase_add_test(tc, test_sort_and_filters);
    tcase_add_test(tc, test_put_flags_and_errors);
    tcase_add_test(tc, test_lease_hooks);
    tcase_add_test(tc, test_delete_range);
    tcase_add_test(tc, test_restore_after_reopen);
    tcase_add_test(tc, test_events_and_history);
    tcase_add_test(tc, test_consistent_index_persists);
    tcase_add_test(tc, test_operation_counters);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
