/* Txn: compares on every target and result over keys and ranges,
 * branches, nested txns evaluated before writes, shared revision,
 * validation errors that change nothing (etcd 3.4's rules). */
#include "mvcc/internal.h"
#include "util.h"

static mvcc_op op_put(const char *k, const char *v)
{
    mvcc_op o = {.type = MVCC_OP_PUT};
    o.u.put = (mvcc_put_req){.key = (const uint8_t *)k, .key_len = strlen(k),
                             .value = (const uint8_t *)v, .value_len = strlen(v)};
    return o;
}

static mvcc_op op_del(const char *k, const char *end)
{
    mvcc_op o = {.type = MVCC_OP_DELETE};
    o.u.del = (mvcc_delete_req){.key = (const uint8_t *)k, .key_len = strlen(k),
                                .range_end = (const uint8_t *)end,
                                .range_end_len = end ? strlen(end) : 0};
    return o;
}

static mvcc_op op_get(const char *k)
{
    mvcc_op o = {.type = MVCC_OP_RANGE};
    o.u.range = (mvcc_range_req){.key = (const uint8_t *)k, .key_len = strlen(k)};
    return o;
}

static mvcc_compare cmp_num(const char *k, int target, int result, int64_t n)
{
    return (mvcc_compare){.key = (const uint8_t *)k, .key_len = strlen(k), .target = target,
                          .result = result, .number = n};
}

static mvcc_compare cmp_val(const char *k, int result, const char *v)
{
    return (mvcc_compare){.key = (const uint8_t *)k, .key_len = strlen(k),
                          .target = MVCC_CMP_VALUE, .result = result,
                          .value = (const uint8_t *)v, .value_len = strlen(v)};
}

static int run(mvcc_store *s, mvcc_compare *c, size_t nc, mvcc_op *ok, size_t nok, mvcc_op *ko,
               size_t nko, mvcc_result *res)
{
    mvcc_txn_req t = {c, nc, ok, nok, ko, nko};
    return mvcc_txn(s, &t, res);
}

static int succeeded(mvcc_store *s, mvcc_compare c)
{
    mvcc_result res = {0};
    ck_assert_int_eq(run(s, &c, 1, NULL, 0, NULL, 0, &res), 0);
    int ok = res.resp.u.txn.succeeded;
    mvcc_result_free(&res);
    return ok;
}

START_TEST(test_compare_targets_and_results)
{
    fixture f;
    fx_init(&f);
    put(f.s, "k", "m");  /* rev 2 */
    put(f.s, "k", "n");  /* rev 3: version 2, create 2, mod 3 */
    ck_assert(succeeded(f.s, cmp_num("k", MVCC_CMP_VERSION, MVCC_CMP_EQUAL, 2)));
    ck_assert(!succeeded(f.s, cmp_num("k", MVCC_CMP_VERSION, MVCC_CMP_EQUAL, 1)));
    ck_assert(succeeded(f.s, cmp_num("k", MVCC_CMP_CREATE, MVCC_CMP_LESS, 3)));
    ck_assert(succeeded(f.s, cmp_num("k", MVCC_CMP_MOD, MVCC_CMP_GREATER, 2)));
    ck_assert(succeeded(f.s, cmp_num("k", MVCC_CMP_MOD, MVCC_CMP_NOT_EQUAL, 2)));
    ck_assert(succeeded(f.s, cmp_num("k", MVCC_CMP_LEASE, MVCC_CMP_EQUAL, 0)));
    ck_assert(succeeded(f.s, cmp_val("k", MVCC_CMP_EQUAL, "n")));
    ck_assert(succeeded(f.s, cmp_val("k", MVCC_CMP_GREATER, "m")));
    ck_assert(succeeded(f.s, cmp_val("k", MVCC_CMP_LESS, "nn")));
    /* a missing key compares as zeroes, but a VALUE compare fails */
    ck_assert(succeeded(f.s, cmp_num("missing", MVCC_CMP_VERSION, MVCC_CMP_EQUAL, 0)));
    ck_assert(succeeded(f.s, cmp_num("missing", MVCC_CMP_CREATE, MVCC_CMP_EQUAL, 0)));
    ck_assert(!succeeded(f.s, cmp_val("missing", MVCC_CMP_EQUAL, "")));
    ck_assert(!succeeded(f.s, cmp_val("missing", MVCC_CMP_NOT_EQUAL, "x")));
    fx_done(&f);
}
END_TEST

START_TEST(test_range_compare_needs_every_key)
{
    fixture f;
    fx_init(&f);
    put(f.s, "p/a", "1");
    put(f.s, "p/b", "1");
    put(f.s, "p/c", "2");
    mvcc_compare c = cmp_val("p/", MVCC_CMP_EQUAL, "1");
    c.range_end = (const uint8_t *)"p0";
    c.range_end_len = 2;
    ck_assert(!succeeded(f.s, c));
    c.range_end = (const uint8_t *)"p/c";
    c.range_end_len = 3;
    ck_assert(succeeded(f.s, c));
    fx_done(&f);
}
END_TEST

START_TEST(test_branches_share_one_revision)
{
    fixture f;
    fx_init(&f);
    put(f.s, "k", "v");
    mvcc_compare c = cmp_val("k", MVCC_CMP_EQUAL, "v");
    mvcc_op ok[] = {op_put("a", "1"), op_put("b", "2"), op_get("a"), op_del("k", NULL)};
    mvcc_op ko[] = {op_put("fail", "1")};
    mvcc_result res = {0};
    ck_assert_int_eq(run(f.s, &c, 1, ok, 4, ko, 1, &res), 0);
    ck_assert(res.resp.u.txn.succeeded);
    ck_assert_int_eq(res.resp.revision, 3);
    ck_assert_uint_eq(res.resp.u.txn.nresponses, 4);
    const mvcc_op_resp *r = res.resp.u.txn.responses;
    ck_assert_int_eq(r[0].revision, 3);
    ck_assert_int_eq(r[1].revision, 3);
    /* the range inside the txn sees the txn's own put */
    ck_assert_int_eq(r[2].type, MVCC_OP_RANGE);
    ck_assert_uint_eq(r[2].u.range.nkvs, 1);
    ck_assert_int_eq(r[2].u.range.kvs[0].mod_revision, 3);
    ck_assert_int_eq(r[2].revision, 3);
    ck_assert_int_eq(r[3].u.del.deleted, 1);
    mvcc_result_free(&res);
    ck_assert_int_eq(mvcc_current_rev(f.s), 3);
    /* subs grow inside the revision: b's stored mod revision is 3 */
    char buf[8];
    ck_assert_ptr_null(get(f.s, "k", 0, buf, sizeof(buf)));
    ck_assert_str_eq(get(f.s, "b", 0, buf, sizeof(buf)), "2");
    /* failure branch */
    ck_assert_int_eq(run(f.s, &c, 1, ok, 4, ko, 1, &res), 0);
    ck_assert(!res.resp.u.txn.succeeded);
    ck_assert_int_eq(res.resp.revision, 4);
    mvcc_result_free(&res);
    /* read-only txn makes no revision */
    mvcc_op ro[] = {op_get("a")};
    ck_assert_int_eq(run(f.s, NULL, 0, ro, 1, NULL, 0, &res), 0);
    ck_assert_int_eq(res.resp.revision, 4);
    mvcc_result_free(&res);
    ck_assert_int_eq(mvcc_current_rev(f.s), 4);
    fx_done(&f);
}
END_TEST

START_TEST(test_nested_compares_see_state_before_writes)
{
    fixture f;
    fx_init(&f);
    /* outer puts x; the nested txn compares x's version: it must see the
     * state before the outer txn (x absent), as etcd's compareToPath */
    mvcc_compare inner_c = cmp_num("x", MVCC_CMP_VERSION, MVCC_CMP_EQUAL, 0);
    mvcc_op inner_ok[] = {op_put("saw-absent", "1")};
    mvcc_op inner_ko[] = {op_put("saw-present", "1")};
    mvcc_op outer[2];
    outer[0] = op_put("x", "1");
    outer[1] = (mvcc_op){.type = MVCC_OP_TXN};
    outer[1].u.txn = (mvcc_txn_req){&inner_c, 1, inner_ok, 1, inner_ko, 1};
    mvcc_result res = {0};
    ck_assert_int_eq(run(f.s, NULL, 0, outer, 2, NULL, 0, &res), 0);
    const mvcc_op_resp *nested = &res.resp.u.txn.responses[1];
    ck_assert_int_eq(nested->type, MVCC_OP_TXN);
    ck_assert(nested->u.txn.succeeded);
    ck_assert_int_eq(nested->revision, 0);
    mvcc_result_free(&res);
    char buf[8];
    ck_assert_ptr_nonnull(get(f.s, "saw-absent", 0, buf, sizeof(buf)));
    ck_assert_ptr_null(get(f.s, "saw-present", 0, buf, sizeof(buf)));
    fx_done(&f);
}
END_TEST

START_TEST(test_validation_errors_change_nothing)
{
    fixture f;
    fx_init(&f);
    put(f.s, "k", "v");
    int64_t rev = mvcc_current_rev(f.s);
    mvcc_result res = {0};
    mvcc_op dup[] = {op_put("a", "1"), op_put("a", "2")};
    ck_assert_int_eq(run(f.s, NULL, 0, dup, 2, NULL, 0, &res), MVCC_EDUPLICATE_KEY);
    mvcc_op putdel[] = {op_put("b", "1"), op_del("a", "c")};
    ck_assert_int_eq(run(f.s, NULL, 0, putdel, 2, NULL, 0, &res), MVCC_EDUPLICATE_KEY);
    /* the same key in then and else of a nested txn is fine */
    mvcc_op t_ok[] = {op_put("n", "1")}, t_ko[] = {op_put("n", "2")};
    mvcc_op nested[1] = {{.type = MVCC_OP_TXN}};
    nested[0].u.txn = (mvcc_txn_req){NULL, 0, t_ok, 1, t_ko, 1};
    ck_assert_int_eq(run(f.s, NULL, 0, nested, 1, NULL, 0, &res), 0);
    mvcc_result_free(&res);
    rev = mvcc_current_rev(f.s);
    /* but a put outside and inside a nested txn collides */
    mvcc_op both[2] = {op_put("n", "3"), {.type = MVCC_OP_TXN}};
    both[1].u.txn = (mvcc_txn_req){NULL, 0, t_ok, 1, NULL, 0};
    ck_assert_int_eq(run(f.s, NULL, 0, both, 2, NULL, 0, &res), MVCC_EDUPLICATE_KEY);
    mvcc_op empty_key[] = {op_put("", "1")};
    ck_assert_int_eq(run(f.s, NULL, 0, empty_key, 1, NULL, 0, &res), MVCC_EEMPTY_KEY);
    mvcc_op none[] = {{.type = MVCC_OP_NONE}};
    ck_assert_int_eq(run(f.s, NULL, 0, none, 1, NULL, 0, &res), MVCC_EKEY_NOT_FOUND);
    mvcc_compare c = cmp_num("", MVCC_CMP_VERSION, MVCC_CMP_EQUAL, 0);
    ck_assert_int_eq(run(f.s, &c, 1, NULL, 0, NULL, 0, &res), MVCC_EEMPTY_KEY);
    c = cmp_num("k", 9, MVCC_CMP_EQUAL, 0);
    ck_assert_int_eq(run(f.s, &c, 1, NULL, 0, NULL, 0, &res), MVCC_EINVALID);
    /* too many ops (default limit 128) */
    static mvcc_op many[129];
    static char keys[129][16];
    for (int i = 0; i < 129; i++) {
        snprintf(keys[i], sizeof(keys[i]), "m%d", i);
        many[i] = op_put(keys[i], "v");
    }
    ck_assert_int_eq(run(f.s, NULL, 0, many, 129, NULL, 0, &res), MVCC_ETOO_MANY_OPS);
    ck_assert_int_eq(run(f.s, NULL, 0, many, 128, NULL, 0, &res), 0);
    mvcc_result_free(&res);
    ck_assert_int_eq(mvcc_current_rev(f.s), rev + 1);
    rev = mvcc_current_rev(f.s);
    /* path checks: ignore_value on a missing key, future revision range */
    mvcc_op iv[] = {op_put("nope", "")};
    iv[0].u.put.ignore_value = 1;
    iv[0].u.put.value_len = 0;
    mvcc_op first[] = {op_put("z", "1"), iv[0]};
    ck_assert_int_eq(run(f.s, NULL, 0, first, 2, NULL, 0, &res), MVCC_EKEY_NOT_FOUND);
    mvcc_op fut[] = {op_put("z", "1"), op_get("k")};
    fut[1].u.range.revision = rev + 1;
    ck_assert_int_eq(run(f.s, NULL, 0, fut, 2, NULL, 0, &res), MVCC_EFUTURE_REV);
    ck_assert_int_eq(mvcc_current_rev(f.s), rev);
    char buf[8];
    ck_assert_ptr_null(get(f.s, "z", 0, buf, sizeof(buf)));
    fx_done(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mvcc/txn");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_compare_targets_and_results);
    tcase_add_test(tc, test_range_compare_needs_every_key);
    tcase_add_test(tc, test_branches_share_one_revision);
    tcase_add_test(tc, test_nested_compares_see_state_before_writes);
    tcase_add_test(tc, test_validation_errors_change_nothing);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
