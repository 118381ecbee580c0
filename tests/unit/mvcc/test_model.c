/* Model test: long random sequences of put / delete / txn / compact /
 * range at random revisions, with close-and-reopen in the middle, run
 * against the store and against a deliberately simple reference model (the
 * full history per key, scanned). Every read must agree exactly.
 *
 * Reproducible: METCD_MODEL_SEED=<n> runs that one seed; a failure names the
 * seed and the step. METCD_MODEL_SEEDS / METCD_MODEL_STEPS scale the run. */
#include "mvcc/internal.h"
#include "util.h"

#define NKEYS 24
#define MAXH 20000

typedef struct mev {
    int64_t main, create, ver;
    int tomb, val;
} mev;

typedef struct model {
    mev *h[NKEYS];
    size_t n[NKEYS];
    int64_t rev, compact;
} model;

static uint64_t rng;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static int rint_(int n)
{
    return (int)(rnd() % (uint64_t)n);
}

static void keyname(int k, char *out)
{
    snprintf(out, 8, "k%02d", k);
}

/* The state of key k at revision r: NULL if absent. */
static const mev *m_at(const model *m, int k, int64_t r)
{
    for (size_t i = m->n[k]; i-- > 0;) {
        if (m->h[k][i].main <= r)
            return m->h[k][i].tomb ? NULL : &m->h[k][i];
    }
    return NULL;
}

static void m_push(model *m, int k, mev e)
{
    ck_assert_uint_lt(m->n[k], MAXH);
    m->h[k][m->n[k]++] = e;
}

static bool m_put(model *m, int k, int val, int64_t rev)
{
    const mev *cur = m_at(m, k, INT64_MAX);
    mev e = {rev, cur ? cur->create : rev, cur ? cur->ver + 1 : 1, 0, val};
    m_push(m, k, e);
    return true;
}

static int m_del(model *m, int lo, int hi, int64_t rev)
{
    int n = 0;
    for (int k = lo; k < hi; k++) {
        if (m_at(m, k, INT64_MAX)) {
            m_push(m, k, (mev){rev, 0, 0, 1, 0});
            n++;
        }
    }
    return n;
}

static int step_no;
static uint64_t seed_no;

/* Range [lo, hi) at rev on both and compare. */
static void check_read(model *m, mvcc_store *s, int lo, int hi, int64_t rev, int limit)
{
    char k1[8], k2[8];
    keyname(lo, k1);
    keyname(hi, k2);
    mvcc_range_req r = {.key = (const uint8_t *)k1, .key_len = 3, .revision = rev,
                        .limit = limit};
    if (hi == lo + 1) {
        r.range_end_len = 0;
    } else {
        r.range_end = (const uint8_t *)k2;
        r.range_end_len = 3;
    }
    mvcc_result res = {0};
    int rc = mvcc_range(s, &r, &res);
    int64_t at = rev > 0 ? rev : m->rev;
    if (at < m->compact) {
        ck_assert_msg(rc == MVCC_ECOMPACTED, "seed %llu step %d: read at %lld below %lld: rc %d",
                      (unsigned long long)seed_no, step_no, (long long)at, (long long)m->compact, rc);
        return;
    }
    ck_assert_msg(rc == 0, "seed %llu step %d: range rc %d", (unsigned long long)seed_no, step_no, rc);
    size_t got = 0;
    int64_t count = 0;
    for (int k = lo; k < hi; k++) {
        const mev *e = m_at(m, k, at);
        if (!e)
            continue;
        count++;
        if (limit > 0 && (int)got >= limit)
            continue;
        ck_assert_msg(got < res.resp.u.range.nkvs, "seed %llu step %d: missing key %d",
                      (unsigned long long)seed_no, step_no, k);
        const mvcc_kv *kv = &res.resp.u.range.kvs[got++];
        char name[8], val[16];
        keyname(k, name);
        snprintf(val, sizeof(val), "v%d", e->val);
        ck_assert_msg(kv->key_len == 3 && memcmp(kv->key, name, 3) == 0,
                      "seed %llu step %d: key mismatch", (unsigned long long)seed_no, step_no);
        ck_assert_msg(kv->value_len == strlen(val) && memcmp(kv->value, val, kv->value_len) == 0,
                      "seed %llu step %d: value mismatch on %s", (unsigned long long)seed_no,
                      step_no, name);
        ck_assert_msg(kv->mod_revision == e->main && kv->create_revision == e->create &&
                          kv->version == e->ver,
                      "seed %llu step %d: %s mod %lld/%lld create %lld/%lld ver %lld/%lld",
                      (unsigned long long)seed_no, step_no, name, (long long)kv->mod_revision,
                      (long long)e->main, (long long)kv->create_revision, (long long)e->create,
                      (long long)kv->version, (long long)e->ver);
    }
    ck_assert_uint_eq(got, res.resp.u.range.nkvs);
    ck_assert_int_eq(count, res.resp.u.range.count);
    ck_assert_int_eq(res.resp.u.range.more, limit > 0 && count > limit);
    ck_assert_int_eq(res.resp.revision, m->rev);
    mvcc_result_free(&res);
}

static void run_seed(uint64_t seed, int steps)
{
    seed_no = seed;
    rng = seed * 2654435761u + 1;
    model m = {.rev = 1, .compact = -1};
    for (int k = 0; k < NKEYS; k++)
        m.h[k] = malloc(MAXH * sizeof(mev));
    fixture f;
    fx_init(&f);
    char k1[8], k2[8], val[16];
    for (step_no = 0; step_no < steps; step_no++) {
        int op = rint_(100);
        if (op < 35) { /* put */
            int k = rint_(NKEYS), v = rint_(1000);
            keyname(k, k1);
            snprintf(val, sizeof(val), "v%d", v);
            ck_assert_int_eq(put(f.s, k1, val), m.rev + 1);
            m.rev++;
            m_put(&m, k, v, m.rev);
        } else if (op < 45) { /* delete one or a range */
            int lo = rint_(NKEYS), hi = lo + 1 + rint_(4);
            if (hi > NKEYS)
                hi = NKEYS;
            keyname(lo, k1);
            keyname(hi, k2);
            int64_t n = del(f.s, k1, hi == lo + 1 ? NULL : k2);
            int want = m_del(&m, lo, hi, m.rev + 1);
            ck_assert_int_eq(n, want);
            if (want)
                m.rev++;
            ck_assert_int_eq(mvcc_current_rev(f.s), m.rev);
        } else if (op < 60) { /* txn: if version(a) == x then put b, del c else put d */
            int a = rint_(NKEYS), b = rint_(NKEYS), c = rint_(NKEYS), d = rint_(NKEYS);
            if (b == c)
                c = (c + 1) % NKEYS;
            const mev *ea = m_at(&m, a, INT64_MAX);
            int64_t want_ver = rint_(2) ? (ea ? ea->ver : 0) : rint_(3);
            char ka[8], kb[8], kc[8], kd[8], vb[16], vd[16];
            keyname(a, ka);
            keyname(b, kb);
            keyname(c, kc);
            keyname(d, kd);
            int vbn = rint_(1000), vdn = rint_(1000);
            snprintf(vb, sizeof(vb), "v%d", vbn);
            snprintf(vd, sizeof(vd), "v%d", vdn);
            mvcc_compare cmp = {.key = (const uint8_t *)ka, .key_len = 3,
                                .target = MVCC_CMP_VERSION, .result = MVCC_CMP_EQUAL,
                                .number = want_ver};
            mvcc_op ok[2] = {{.type = MVCC_OP_PUT}, {.type = MVCC_OP_DELETE}};
            ok[0].u.put = (mvcc_put_req){.key = (const uint8_t *)kb, .key_len = 3,
                                         .value = (const uint8_t *)vb, .value_len = strlen(vb)};
            ok[1].u.del = (mvcc_delete_req){.key = (const uint8_t *)kc, .key_len = 3};
            mvcc_op ko[1] = {{.type = MVCC_OP_PUT}};
            ko[0].u.put = (mvcc_put_req){.key = (const uint8_t *)kd, .key_len = 3,
                                         .value = (const uint8_t *)vd, .value_len = strlen(vd)};
            mvcc_txn_req t = {&cmp, 1, ok, 2, ko, 1};
            mvcc_result res = {0};
            ck_assert_int_eq(mvcc_txn(f.s, &t, &res), 0);
            bool taken = (ea ? ea->ver : 0) == want_ver;
            ck_assert_int_eq(res.resp.u.txn.succeeded, taken);
            mvcc_result_free(&res);
            int64_t nrev = m.rev + 1;
            if (taken) {
                m_put(&m, b, vbn, nrev);
                m_del(&m, c, c + 1, nrev);
            } else {
                m_put(&m, d, vdn, nrev);
            }
            m.rev = nrev;
            ck_assert_int_eq(mvcc_current_rev(f.s), m.rev);
        } else if (op < 63) { /* compact */
            if (m.rev > 1 && m.compact < m.rev) {
                int64_t lo = m.compact < 1 ? 1 : m.compact + 1;
                int64_t at = lo + (int64_t)(rnd() % (uint64_t)(m.rev - lo + 1));
                ck_assert_int_eq(mvcc_compact(f.s, at), 0);
                m.compact = at;
            }
        } else if (op < 68) { /* some physical compaction work */
            int n = rint_(3);
            while (n-- > 0 && mvcc_compact_step(f.s) == 1)
                ;
        } else if (op < 70) { /* close and reopen */
            fx_reopen(&f);
            ck_assert_int_eq(mvcc_current_rev(f.s), m.rev);
            ck_assert_int_eq(mvcc_compact_rev(f.s), m.compact);
        } else { /* read */
            int lo = rint_(NKEYS), hi = lo + 1 + rint_(NKEYS - lo);
            int64_t lo_rev = m.compact > 1 ? m.compact - 1 : 1;
            int64_t at = rint_(4) == 0 ? 0 : lo_rev + (int64_t)(rnd() % (uint64_t)(m.rev - lo_rev + 1));
            check_read(&m, f.s, lo, hi, at, rint_(3) == 0 ? 1 + rint_(5) : 0);
        }
    }
    /* the final state in full, at every readable revision of the last few */
    for (int64_t r = m.rev; r > m.rev - 5 && r >= m.compact && r >= 1; r--)
        check_read(&m, f.s, 0, NKEYS, r, 0);
    int64_t alive = 0;
    for (int k = 0; k < NKEYS; k++)
        alive += m_at(&m, k, INT64_MAX) != NULL;
    ck_assert_int_eq(mvcc_keys_total(f.s), alive);
    fx_done(&f);
    for (int k = 0; k < NKEYS; k++)
        free(m.h[k]);
}

START_TEST(test_store_matches_model)
{
    const char *one = getenv("METCD_MODEL_SEED");
    const char *ns = getenv("METCD_MODEL_SEEDS");
    const char *nst = getenv("METCD_MODEL_STEPS");
#ifdef METCD_SANITIZED
    int seeds = 8, steps = 1500;
#else
    int seeds = 40, steps = 3000;
#endif
    if (ns)
        seeds = atoi(ns);
    if (nst)
        steps = atoi(nst);
    if (one) {
        run_seed(strtoull(one, NULL, 10), steps);
        return;
    }
    for (int i = 1; i <= seeds; i++)
        run_seed((uint64_t)i, steps);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mvcc/model");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 280);
    tcase_add_test(tc, test_store_matches_model);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
