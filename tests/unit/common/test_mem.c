#include "common/mem.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_fail_after_fails_exactly_once)
{
    metcd_mem_fail_after(2);
    void *a = metcd_malloc(8);
    void *b = metcd_malloc(8);
    void *c = metcd_malloc(8); /* the third call from now fails */
    void *d = metcd_malloc(8);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(d);
    metcd_free(a);
    metcd_free(b);
    metcd_free(d);
}
END_TEST

START_TEST(test_disabled_never_fails)
{
    metcd_mem_fail_after(-1);
    for (int i = 0; i < 1000; i++) {
        void *p = metcd_calloc(1, 16);
        ck_assert_ptr_nonnull(p);
        metcd_free(p);
    }
}
END_TEST

START_TEST(test_dup_helpers)
{
    char *s = metcd_strdup("metcd");
    ck_assert_str_eq(s, "metcd");
    void *z = metcd_memdup("", 0);
    ck_assert_ptr_nonnull(z);
    long before = metcd_mem_count();
    metcd_mem_fail_after(0);
    ck_assert_ptr_null(metcd_strdup("x"));
    ck_assert_int_eq(metcd_mem_count(), before + 1);
    metcd_free(s);
    metcd_free(z);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common/mem");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_fail_after_fails_exactly_once);
    tcase_add_test(tc, test_disabled_never_fails);
    tcase_add_test(tc, test_dup_helpers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
