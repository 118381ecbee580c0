/* tests/unit/member/test_auth_perm.c - server/member/auth_perm.c: which
 * requests a set of granted key ranges allows, as etcd 3.4 decides it
 * (range_perm_cache.go: a key must fall in a granted interval; a range
 * must be covered by the granted intervals merged, with no gap). */
#include "server/member/auth_perm.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define S(x) (const uint8_t *)(x), strlen(x)

/* [b, e) with e "" = +infinity; a NULL e is the single key b. */
static auth_ivl iv(const char *b, const char *e)
{
    auth_ivl v = {{(const uint8_t *)b, strlen(b)}, {NULL, 0}, NULL};
    if (e)
        v.e = (auth_bytes){(const uint8_t *)e, strlen(e)};
    else {
        size_t n = strlen(b);
        v.own = malloc(n + 1);
        memcpy(v.own, b, n);
        v.own[n] = 0;
        v.e = (auth_bytes){v.own, n + 1};
    }
    return v;
}

static bool key_ok(auth_ivl *v, size_t n, const char *k)
{
    return auth_range_permitted(v, n, S(k), NULL, 0);
}

static bool range_ok(auth_ivl *v, size_t n, const char *k, const char *e)
{
    return auth_range_permitted(v, n, S(k), S(e));
}

static bool from_ok(auth_ivl *v, size_t n, const char *k)
{
    static const uint8_t zero = 0;
    return auth_range_permitted(v, n, S(k), &zero, 1);
}

static void free_all(auth_ivl *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].own);
}

START_TEST(test_single_key)
{
    auth_ivl v[] = {iv("foo", NULL)};
    ck_assert(key_ok(v, 1, "foo"));
    ck_assert(!key_ok(v, 1, "fo"));
    ck_assert(!key_ok(v, 1, "foo0"));
    ck_assert(!key_ok(v, 1, "foo\x01"));
    /* the range holding just "foo" is "foo" .. "foo\0" */
    ck_assert(auth_range_permitted(v, 1, S("foo"), (const uint8_t *)"foo\0", 4));
    ck_assert(!range_ok(v, 1, "foo", "fop"));
    free_all(v, 1);
}
END_TEST

START_TEST(test_prefix)
{
    auth_ivl v[] = {iv("a/", "a0")}; /* --prefix a/ */
    ck_assert(key_ok(v, 1, "a/"));
    ck_assert(key_ok(v, 1, "a/x/y"));
    ck_assert(!key_ok(v, 1, "a"));
    ck_assert(!key_ok(v, 1, "a0"));
    ck_assert(range_ok(v, 1, "a/", "a0"));
    ck_assert(range_ok(v, 1, "a/b", "a/c"));
    ck_assert(!range_ok(v, 1, "a", "a0"));  /* starts before */
    ck_assert(!range_ok(v, 1, "a/", "a1")); /* ends after */
    ck_assert(!from_ok(v, 1, "a/"));        /* to the end of the keyspace */
}
END_TEST

START_TEST(test_from_key)
{
    auth_ivl v[] = {iv("m", "")}; /* --from-key m */
    ck_assert(key_ok(v, 1, "m"));
    ck_assert(key_ok(v, 1, "zzzz"));
    ck_assert(!key_ok(v, 1, "l"));
    ck_assert(from_ok(v, 1, "m"));
    ck_assert(from_ok(v, 1, "x"));
    ck_assert(!from_ok(v, 1, "a"));
    ck_assert(range_ok(v, 1, "n", "p"));
}
END_TEST

START_TEST(test_adjacent_and_overlapping_merge)
{
    auth_ivl v[] = {iv("c", "e"), iv("a", "c"), iv("d", "g")};
    ck_assert(range_ok(v, 3, "a", "g"));
    ck_assert(range_ok(v, 3, "b", "f"));
    ck_assert(!range_ok(v, 3, "a", "h"));
    ck_assert(key_ok(v, 3, "f"));
}
END_TEST

START_TEST(test_gap_refused)
{
    auth_ivl v[] = {iv("a", "c"), iv("d", "f")};
    ck_assert(range_ok(v, 2, "a", "c"));
    ck_assert(range_ok(v, 2, "d", "e"));
    ck_assert(!range_ok(v, 2, "a", "f")); /* "c" .. "d" is not granted */
    ck_assert(!key_ok(v, 2, "c"));
    ck_assert(!key_ok(v, 2, "cz"));
}
END_TEST

START_TEST(test_nothing_granted)
{
    ck_assert(!key_ok(NULL, 0, "a"));
    ck_assert(!range_ok(NULL, 0, "a", "b"));
    ck_assert(!from_ok(NULL, 0, "a"));
}
END_TEST

START_TEST(test_order)
{
    auth_bytes inf = {NULL, 0}, a = {(const uint8_t *)"a", 1}, ab = {(const uint8_t *)"ab", 2};
    ck_assert_int_lt(auth_bytes_cmp(a, ab), 0);
    ck_assert_int_gt(auth_bytes_cmp(ab, a), 0);
    ck_assert_int_lt(auth_bytes_cmp(ab, inf), 0);
    ck_assert_int_gt(auth_bytes_cmp(inf, a), 0);
    ck_assert_int_eq(auth_bytes_cmp(inf, inf), 0);
    auth_bytes hi = {(const uint8_t *)"\xff", 1};
    ck_assert_int_gt(auth_bytes_cmp(hi, a), 0); /* unsigned bytes */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("member/auth_perm");
    TCase *tc = tcase_create("perm");
    tcase_add_test(tc, test_single_key);
    tcase_add_test(tc, test_prefix);
    tcase_add_test(tc, test_from_key);
    tcase_add_test(tc, test_adjacent_and_overlapping_merge);
    tcase_add_test(tc, test_gap_refused);
    tcase_add_test(tc, test_nothing_granted);
    tcase_add_test(tc, test_order);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
