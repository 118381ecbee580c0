/* B-tree: order, fill and depth invariants under random insert/delete,
 * range visits with etcd's end conventions, allocation failure. */
#include "mvcc/internal.h"
#include "common/mem.h"
#include "util.h"

static key_index *mk(int i)
{
    char k[32];
    int n = snprintf(k, sizeof(k), "key%08d", i);
    return ki_new((const uint8_t *)k, (size_t)n);
}

static bool collect(void *arg, key_index *ki)
{
    int *count = arg;
    (*count)++;
    (void)ki;
    return true;
}

START_TEST(test_random_insert_delete_keeps_invariants)
{
    btree t;
    bt_init(&t);
    enum { N = 20000 };
    static bool present[N];
    memset(present, 0, sizeof(present));
    srand(42);
    for (int step = 0; step < 3 * N; step++) {
        int i = rand() % N;
        char k[32];
        int n = snprintf(k, sizeof(k), "key%08d", i);
        if (present[i]) {
            key_index *ki = bt_delete(&t, (const uint8_t *)k, (size_t)n);
            ck_assert_ptr_nonnull(ki);
            ck_assert_int_eq(memcmp(ki->key, k, (size_t)n), 0);
            ki_free(ki);
            present[i] = false;
        } else {
            ck_assert_ptr_null(bt_get(&t, (const uint8_t *)k, (size_t)n));
            ck_assert_int_eq(bt_insert(&t, mk(i)), 0);
            present[i] = true;
        }
        if (step % 997 == 0)
            ck_assert(bt_check(&t));
    }
    ck_assert(bt_check(&t));
    size_t want = 0;
    for (int i = 0; i < N; i++) {
        char k[32];
        int n = snprintf(k, sizeof(k), "key%08d", i);
        key_index *ki = bt_get(&t, (const uint8_t *)k, (size_t)n);
        ck_assert(present[i] == (ki != NULL));
        want += present[i];
    }
    ck_assert_uint_eq(t.count, want);
    bt_destroy(&t, true);
    ck_assert_uint_eq(t.node_bytes, 0);
}
END_TEST

START_TEST(test_sequential_delete_all)
{
    btree t;
    bt_init(&t);
    for (int i = 0; i < 5000; i++)
        ck_assert_int_eq(bt_insert(&t, mk(i)), 0);
    ck_assert(bt_check(&t));
    for (int i = 4999; i >= 0; i--) {
        char k[32];
        int n = snprintf(k, sizeof(k), "key%08d", i);
        ki_free(bt_delete(&t, (const uint8_t *)k, (size_t)n));
        if (i % 500 == 0)
            ck_assert(bt_check(&t));
    }
    ck_assert_ptr_null(t.root);
    ck_assert_uint_eq(t.count, 0);
    ck_assert_ptr_null(bt_delete(&t, S("nope")));
    bt_destroy(&t, true);
}
END_TEST

struct order_ctx {
    char last[64];
    size_t last_len;
    int n;
    int stop_after;
};

static bool order_visit(void *arg, key_index *ki)
{
    struct order_ctx *c = arg;
    if (c->n)
        ck_assert_int_lt(key_cmp((uint8_t *)c->last, c->last_len, ki->key, ki->keylen), 0);
    memcpy(c->last, ki->key, ki->keylen);
    c->last_len = ki->keylen;
    c->n++;
    return c->stop_after == 0 || c->n < c->stop_after;
}

START_TEST(test_ascend_range_bounds)
{
    btree t;
    bt_init(&t);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(bt_insert(&t, mk(i)), 0);
    struct order_ctx c = {0};
    bt_ascend_range(&t, NULL, 0, NULL, 0, order_visit, &c);
    ck_assert_int_eq(c.n, 1000);
    /* [key00000100, key00000200) */
    int n = 0;
    bt_ascend_range(&t, S("key00000100"), (const uint8_t *)"key00000200", 11, collect, &n);
    ck_assert_int_eq(n, 100);
    /* start between keys */
    n = 0;
    bt_ascend_range(&t, S("key00000100x"), (const uint8_t *)"key00000103", 11, collect, &n);
    ck_assert_int_eq(n, 2);
    /* end <= start: nothing */
    n = 0;
    bt_ascend_range(&t, S("key00000500"), (const uint8_t *)"key00000400", 11, collect, &n);
    ck_assert_int_eq(n, 0);
    /* unbounded end from the middle */
    n = 0;
    bt_ascend_range(&t, S("key00000990"), NULL, 0, collect, &n);
    ck_assert_int_eq(n, 10);
    /* early stop */
    struct order_ctx c2 = {.stop_after = 7};
    bt_ascend_range(&t, NULL, 0, NULL, 0, order_visit, &c2);
    ck_assert_int_eq(c2.n, 7);
    bt_destroy(&t, true);
}
END_TEST

START_TEST(test_insert_allocation_failure_leaves_tree_valid)
{
    btree t;
    bt_init(&t);
    int inserted = 0;
    for (int i = 0; i < 3000; i++) {
        key_index *ki = mk(i);
        metcd_mem_fail_after(i % 3 == 0 ? 0 : -1);
        int rc = bt_insert(&t, ki);
        metcd_mem_fail_after(-1);
        if (rc) {
            ck_assert_int_eq(rc, MVCC_ENOMEM);
            ki_free(ki);
        } else {
            inserted++;
        }
    }
    ck_assert(bt_check(&t));
    ck_assert_uint_eq(t.count, (size_t)inserted);
    bt_destroy(&t, true);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mvcc/btree");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_random_insert_delete_keeps_invariants);
    tcase_add_test(tc, test_sequential_delete_all);
    tcase_add_test(tc, test_ascend_range_bounds);
    tcase_add_test(tc, test_insert_allocation_failure_leaves_tree_valid);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
