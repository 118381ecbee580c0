/* Interval tree: random inserts, deletes and stabs against a brute-force
 * list of intervals; the treap and max-end invariants after every change. */
#include "util.h"

typedef struct ivl {
    char b[4], e[4];
    bool inf;
    bool live;
} ivl;

static void rand_key(char *out, unsigned *seed)
{
    int n = 1 + (int)(rand_r(seed) % 3);
    for (int i = 0; i < n; i++)
        out[i] = (char)('a' + rand_r(seed) % 5);
    out[n] = 0;
}

static int cmps(const char *a, const char *b)
{
    return watch_bytes_cmp((const uint8_t *)a, strlen(a), (const uint8_t *)b, strlen(b));
}

struct hits {
    itree_node *got[512];
    size_t n;
};

static void on_hit(void *arg, itree_node *n)
{
    struct hits *h = arg;
    ck_assert_uint_lt(h->n, 512);
    h->got[h->n++] = n;
}

START_TEST(test_stab_matches_brute_force)
{
    unsigned seed = 7u + (unsigned)_i;
    itree t;
    itree_init(&t);
    ivl iv[400];
    size_t niv = 0;
    int rounds = SCALE(4000);
    for (int r = 0; r < rounds; r++) {
        int op = (int)(rand_r(&seed) % 10);
        if (op < 5 && niv < 400) {
            ivl x = {0};
            rand_key(x.b, &seed);
            x.inf = rand_r(&seed) % 6 == 0;
            if (!x.inf) {
                do
                    rand_key(x.e, &seed);
                while (cmps(x.b, x.e) >= 0 && (rand_r(&seed) % 8));
                if (cmps(x.b, x.e) >= 0)
                    continue;
            }
            itree_node *f = itree_find(&t, (const uint8_t *)x.b, strlen(x.b), (const uint8_t *)x.e,
                                       strlen(x.e), x.inf);
            bool present = false;
            for (size_t i = 0; i < niv; i++)
                if (iv[i].live && !strcmp(iv[i].b, x.b) && iv[i].inf == x.inf &&
                    (x.inf || !strcmp(iv[i].e, x.e)))
                    present = true;
            ck_assert_int_eq(present, f != NULL);
            if (!present) {
                x.live = true;
                itree_node *n = itree_insert(&t, (const uint8_t *)x.b, strlen(x.b),
                                             (const uint8_t *)x.e, strlen(x.e), x.inf);
                ck_assert_ptr_nonnull(n);
                iv[niv++] = x;
            }
        } else if (op < 7 && niv) {
            size_t k = rand_r(&seed) % niv;
            if (iv[k].live) {
                ck_assert(itree_delete(&t, (const uint8_t *)iv[k].b, strlen(iv[k].b),
                                       (const uint8_t *)iv[k].e, strlen(iv[k].e), iv[k].inf));
                iv[k].live = false;
                ck_assert(!itree_delete(&t, (const uint8_t *)iv[k].b, strlen(iv[k].b),
                                        (const uint8_t *)iv[k].e, strlen(iv[k].e), iv[k].inf));
            }
        } else {
            char p[4];
            rand_key(p, &seed);
            struct hits h = {.n = 0};
            itree_stab(&t, (const uint8_t *)p, strlen(p), on_hit, &h);
            size_t want = 0;
            for (size_t i = 0; i < niv; i++) {
                if (!iv[i].live)
                    continue;
                if (cmps(iv[i].b, p) <= 0 && (iv[i].inf || cmps(p, iv[i].e) < 0)) {
                    want++;
                    bool found = false;
                    for (size_t j = 0; j < h.n; j++) {
                        itree_node *n = h.got[j];
                        if (n->blen == strlen(iv[i].b) && !memcmp(n->begin, iv[i].b, n->blen) &&
                            n->inf == iv[i].inf &&
                            (n->inf ||
                             (n->elen == strlen(iv[i].e) && !memcmp(n->end, iv[i].e, n->elen))))
                            found = true;
                    }
                    ck_assert_msg(found, "interval [%s,%s) missing for %s", iv[i].b,
                                  iv[i].inf ? "inf" : iv[i].e, p);
                }
            }
            ck_assert_uint_eq(h.n, want);
            /* reported in begin order */
            for (size_t j = 1; j < h.n; j++)
                ck_assert_int_le(watch_bytes_cmp(h.got[j - 1]->begin, h.got[j - 1]->blen,
                                                 h.got[j]->begin, h.got[j]->blen),
                                 0);
        }
        ck_assert(itree_check(&t));
    }
    itree_clear(&t);
    ck_assert_uint_eq(t.n, 0);
}
END_TEST

/* An empty key, the smallest one, is inside [a-less, ...) intervals only
 * when begin is empty too. */
START_TEST(test_empty_point_and_bounds)
{
    itree t;
    itree_init(&t);
    ck_assert_ptr_nonnull(itree_insert(&t, (const uint8_t *)"", 0, (const uint8_t *)"b", 1, false));
    ck_assert_ptr_nonnull(itree_insert(&t, (const uint8_t *)"b", 1, NULL, 0, true));
    struct hits h = {.n = 0};
    itree_stab(&t, (const uint8_t *)"", 0, on_hit, &h);
    ck_assert_uint_eq(h.n, 1);
    h.n = 0;
    itree_stab(&t, (const uint8_t *)"b", 1, on_hit, &h); /* end is exclusive */
    ck_assert_uint_eq(h.n, 1);
    ck_assert(h.got[0]->inf);
    h.n = 0;
    itree_stab(&t, (const uint8_t *)"\xff\xff", 2, on_hit, &h);
    ck_assert_uint_eq(h.n, 1);
    ck_assert(itree_check(&t));
    itree_clear(&t);
}
END_TEST

/* Every allocation failure in insert leaves the tree unchanged. */
START_TEST(test_insert_allocation_failure)
{
    itree t;
    itree_init(&t);
    metcd_mem_fail_after(0);
    ck_assert_ptr_null(itree_insert(&t, (const uint8_t *)"a", 1, (const uint8_t *)"b", 1, false));
    metcd_mem_fail_after(-1);
    ck_assert_uint_eq(t.n, 0);
    ck_assert(itree_check(&t));
    itree_clear(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("watch/interval_tree");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_stab_matches_brute_force, 0, 4);
    tcase_add_test(tc, test_empty_point_and_bounds);
    tcase_add_test(tc, test_insert_allocation_failure);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
