/* tests/unit/config/test_ids.c - member / cluster IDs against values
 * observed from the real etcd 3.4.23 on this machine:
 *  - `etcd --name n0 --initial-cluster n0=http://127.0.0.1:42380
 *    --initial-cluster-token tok-a ...`, then `etcdctl member list -w json`
 *    and `endpoint status -w json`: member_id 11736944023068365374
 *    (a2e200676ba2523e), cluster_id 16122780350172778796 (dfbf9f4e6bb2512c).
 *  - `etcdctl member add m1 --peer-urls=http://127.0.0.1:42399` at Unix
 *    second 1795454009 on that cluster: ID 2663905393044505664.
 *  - etcd's log lines "added member ... to cluster ..." for the other sets. */
#include "server/config/ids.h"
#include "server/config/config.h"
#include "common/mem.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char err[1024];

START_TEST(test_single_member_matches_etcdctl)
{
    struct ids_cluster c;
    ck_assert_int_eq(ids_cluster_parse(&c, "n0=http://127.0.0.1:42380", "tok-a", err, sizeof(err)),
                     0);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_str_eq(c.members[0].name, "n0");
    ck_assert(c.members[0].id == 11736944023068365374ULL);
    ck_assert(c.cluster_id == 16122780350172778796ULL);
    ids_cluster_free(&c);
}
END_TEST

START_TEST(test_etcd_default_cluster)
{
    struct ids_cluster c;
    ck_assert_int_eq(
        ids_cluster_parse(&c, "default=http://localhost:2380", "etcd-cluster", err, sizeof(err)),
        0);
    ck_assert(c.members[0].id == 0x8e9e05c52164694dULL);
    ck_assert(c.cluster_id == 0xcdf818194e3a8c32ULL);
    ids_cluster_free(&c);
}
END_TEST

START_TEST(test_three_members_several_urls_sorted)
{
    struct ids_cluster c;
    ck_assert_int_eq(
        ids_cluster_parse(
            &c,
            "n0=http://127.0.0.1:42390,n1=http://127.0.0.1:42381,n1=http://127.0.0.1:42380,"
            "n2=https://10.0.0.3:2380",
            "etcd-cluster", err, sizeof(err)),
        0);
    ck_assert_uint_eq(c.n, 3);
    /* members come sorted by ID */
    ck_assert(c.members[0].id == 0x26129ddf465384edULL);
    ck_assert_str_eq(c.members[0].name, "n2");
    ck_assert(c.members[1].id == 0x484727eb11cfa5f2ULL);
    ck_assert(c.members[2].id == 0x6d8bf1f5a8690d02ULL);
    const struct ids_member *n1 = ids_cluster_member(&c, "n1");
    ck_assert_ptr_nonnull(n1);
    ck_assert_uint_eq(n1->nurls, 2);
    ck_assert_str_eq(n1->urls[0], "http://127.0.0.1:42380");
    ck_assert_str_eq(n1->urls[1], "http://127.0.0.1:42381");
    ck_assert(c.cluster_id == 0x1659f0a0b96f021aULL);
    ck_assert_ptr_null(ids_cluster_member(&c, "n9"));
    char *s = ids_cluster_string(&c);
    ck_assert_str_eq(s, "n0=http://127.0.0.1:42390,n1=http://127.0.0.1:42380,"
                        "n1=http://127.0.0.1:42381,n2=https://10.0.0.3:2380");
    metcd_free(s);
    ids_cluster_free(&c);
}
END_TEST

START_TEST(test_token_changes_ids)
{
    const char *u[] = {"http://127.0.0.1:42380"};
    uint64_t id;
    ck_assert_int_eq(ids_member_id(u, 1, "etcd-cluster", NULL, &id), 0);
    ck_assert(id == 0x667880157b8812c8ULL);
    ck_assert_int_eq(ids_member_id(u, 1, "", NULL, &id), 0);
    ck_assert(id == 0x1c1db987c94d78f5ULL);
}
END_TEST

START_TEST(test_runtime_added_member_uses_time)
{
    const char *u[] = {"http://127.0.0.1:42399"};
    int64_t t = 1795454009;
    uint64_t id;
    ck_assert_int_eq(ids_member_id(u, 1, "", &t, &id), 0);
    ck_assert(id == 2663905393044505664ULL);
    t++;
    ck_assert_int_eq(ids_member_id(u, 1, "", &t, &id), 0);
    ck_assert(id != 2663905393044505664ULL);
}
END_TEST

START_TEST(test_url_order_irrelevant)
{
    const char *a[] = {"http://b:1", "http://a:1"};
    const char *b[] = {"http://a:1", "http://b:1"};
    uint64_t x, y;
    ck_assert_int_eq(ids_member_id(a, 2, "t", NULL, &x), 0);
    ck_assert_int_eq(ids_member_id(b, 2, "t", NULL, &y), 0);
    ck_assert(x == y);
    uint64_t ids1[] = {3, 1, 2}, ids2[] = {1, 2, 3};
    ck_assert_int_eq(ids_cluster_id(ids1, 3, &x), 0);
    ck_assert_int_eq(ids_cluster_id(ids2, 3, &y), 0);
    ck_assert(x == y);
}
END_TEST

START_TEST(test_parse_errors)
{
    struct ids_cluster c;
    ck_assert_int_eq(ids_cluster_parse(&c, "foo", "t", err, sizeof(err)), IDS_ERR_PARSE);
    ck_assert_str_eq(err, "URL scheme must be http, https, unix, or unixs: ");
    ck_assert_int_eq(ids_cluster_parse(&c, "foo=ftp://127.0.0.1:42380", "t", err, sizeof(err)),
                     IDS_ERR_PARSE);
    ck_assert_str_eq(err, "URL scheme must be http, https, unix, or unixs: ftp://127.0.0.1:42380");
    ck_assert_int_eq(ids_cluster_parse(&c, "foo=http://127.0.0.1", "t", err, sizeof(err)),
                     IDS_ERR_PARSE);
    ck_assert_str_eq(err, "URL address does not have the form \"host:port\": http://127.0.0.1");
    ck_assert_int_eq(ids_cluster_parse(&c, "foo=http://127.0.0.1:1/x", "t", err, sizeof(err)),
                     IDS_ERR_PARSE);
    ck_assert_str_eq(err, "URL must not contain a path: http://127.0.0.1:1/x");
    ck_assert_uint_eq(c.n, 0);
    /* empty items are skipped; unix URLs accepted */
    ck_assert_int_eq(ids_cluster_parse(&c, ",e1=unix://etcd.unix:1,,", "new", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.n, 1);
    ids_cluster_free(&c);
    ids_cluster_free(&c); /* idempotent */
}
END_TEST

START_TEST(test_verify_bootstrap_messages)
{
    struct ids_cluster c;
    const char *ap[] = {"http://127.0.0.1:42380"};
    ck_assert_int_eq(
        ids_cluster_parse(&c, "foo=http://127.0.0.1:42381", "etcd-cluster", err, sizeof(err)), 0);
    ck_assert_int_eq(ids_verify_bootstrap(&c, "foo", ap, 1, false, err, sizeof(err)),
                     IDS_ERR_BOOTSTRAP);
    /* etcd 3.4.23, verbatim */
    ck_assert_str_eq(err, "--initial-cluster has foo=http://127.0.0.1:42381 but missing from "
                          "--initial-advertise-peer-urls=http://127.0.0.1:42380 (resolved urls: "
                          "\"http://127.0.0.1:42380\" != \"http://127.0.0.1:42381\")");
    ck_assert_int_eq(ids_verify_bootstrap(&c, "bar", ap, 1, false, err, sizeof(err)),
                     IDS_ERR_BOOTSTRAP);
    ck_assert_str_eq(err, "couldn't find local name \"bar\" in the initial cluster configuration");
    /* joining an existing cluster does not compare the advertised URLs */
    ck_assert_int_eq(ids_verify_bootstrap(&c, "foo", ap, 1, true, err, sizeof(err)), 0);
    ids_cluster_free(&c);

    ck_assert_int_eq(ids_cluster_parse(&c, "foo=http://127.0.0.1:42380,foo=http://127.0.0.1:42380",
                                       "etcd-cluster", err, sizeof(err)),
                     0);
    ck_assert_int_eq(ids_verify_bootstrap(&c, "foo", ap, 1, false, err, sizeof(err)),
                     IDS_ERR_BOOTSTRAP);
    ck_assert_str_eq(err, "failed to resolve http://127.0.0.1:42380 to match "
                          "--initial-cluster=foo=http://127.0.0.1:42380 "
                          "(len([\"http://127.0.0.1:42380\"]) != len([\"http://127.0.0.1:42380\" "
                          "\"http://127.0.0.1:42380\"]))");
    ids_cluster_free(&c);

    ck_assert_int_eq(ids_cluster_parse(&c, "foo=http://127.0.0.1:42380,bar=http://127.0.0.1:42380",
                                       "x", err, sizeof(err)),
                     0);
    ck_assert_int_eq(ids_verify_bootstrap(&c, "foo", ap, 1, false, err, sizeof(err)),
                     IDS_ERR_BOOTSTRAP);
    ck_assert_str_eq(
        err,
        "initial cluster bar=http://127.0.0.1:42380,foo=http://127.0.0.1:42380 has duplicate url");
    ids_cluster_free(&c);

    const char *ap2[] = {"http://127.0.0.1:42380", "http://127.0.0.1:42381"};
    ck_assert_int_eq(ids_cluster_parse(&c, "foo=http://127.0.0.1:42380", "x", err, sizeof(err)), 0);
    ck_assert_int_eq(ids_verify_bootstrap(&c, "foo", ap2, 2, false, err, sizeof(err)),
                     IDS_ERR_BOOTSTRAP);
    ck_assert_str_eq(err,
                     "--initial-advertise-peer-urls has http://127.0.0.1:42381 but missing from "
                     "--initial-cluster=foo=http://127.0.0.1:42380,foo=http://127.0.0.1:42381");
    ck_assert_int_eq(ids_verify_bootstrap(&c, "foo", ap, 1, false, err, sizeof(err)), 0);
    /* observed: --initial-advertise-peer-urls=a,a against --initial-cluster default=a */
    const char *ap3[] = {"http://127.0.0.1:42380", "http://127.0.0.1:42380"};
    ck_assert_int_eq(ids_verify_bootstrap(&c, "foo", ap3, 2, false, err, sizeof(err)),
                     IDS_ERR_BOOTSTRAP);
    ck_assert_str_eq(err,
                     "failed to resolve http://127.0.0.1:42380,http://127.0.0.1:42380 to match "
                     "--initial-cluster=foo=http://127.0.0.1:42380,foo=http://127.0.0.1:42380 "
                     "(len([\"http://127.0.0.1:42380\" \"http://127.0.0.1:42380\"]) != "
                     "len([\"http://127.0.0.1:42380\"]))");
    ids_cluster_free(&c);
}
END_TEST

/* What main() calls, with etcd's message shapes (observed: `etcd --name foo
 * --initial-cluster foo ...` logs "C | etcdmain: error setting up initial
 * cluster: URL scheme must be http, https, unix, or unixs: " and exits 1). */
START_TEST(test_from_config)
{
    struct config cfg;
    struct ids_cluster c;
    char *argv[] = {"etcd", "--name", "foo", "--initial-cluster", "foo", NULL};
    ck_assert_int_eq(config_init(&cfg), 0);
    ck_assert_int_eq(config_parse(&cfg, 5, argv, NULL), 0);
    int rc = ids_cluster_from_config(&c, &cfg);
    ck_assert_int_eq(rc, CONFIG_ERR_CLUSTER);
    ck_assert_str_eq(
        cfg.errmsg,
        "error setting up initial cluster: URL scheme must be http, https, unix, or unixs: ");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(config_report(&cfg, rc, f), 1);
    fclose(f);
    ck_assert_msg(strlen(buf) > 26 &&
                      strcmp(buf + 26, " C | etcdmain: error setting up initial cluster: URL "
                                       "scheme must be http, https, unix, or unixs: \n") == 0,
                  "got %s", buf);
    free(buf);
    config_free(&cfg);

    char *argv2[] = {"etcd",
                     "--name",
                     "n0",
                     "--initial-cluster",
                     "n0=http://127.0.0.1:42380",
                     "--initial-advertise-peer-urls",
                     "http://127.0.0.1:42380",
                     "--initial-cluster-token",
                     "tok-a",
                     NULL};
    ck_assert_int_eq(config_init(&cfg), 0);
    ck_assert_int_eq(config_parse(&cfg, 9, argv2, NULL), 0);
    ck_assert_int_eq(ids_cluster_from_config(&c, &cfg), 0);
    ck_assert(ids_cluster_member(&c, "n0")->id == 11736944023068365374ULL);
    ck_assert(c.cluster_id == 16122780350172778796ULL);
    ids_cluster_free(&c);
    config_free(&cfg);

    /* `--name foo` alone: the initial cluster follows the name (observed ID) */
    char *argv3[] = {
        "etcd", "--name", "foo", "--initial-advertise-peer-urls", "http://127.0.0.1:42380", NULL};
    ck_assert_int_eq(config_init(&cfg), 0);
    ck_assert_int_eq(config_parse(&cfg, 5, argv3, NULL), 0);
    ck_assert_int_eq(ids_cluster_from_config(&c, &cfg), 0);
    ck_assert(c.members[0].id == 0x667880157b8812c8ULL);
    ids_cluster_free(&c);
    config_free(&cfg);

    char *argv4[] = {"etcd", "--name", "bar", "--initial-cluster", "foo=http://localhost:2380",
                     NULL};
    ck_assert_int_eq(config_init(&cfg), 0);
    ck_assert_int_eq(config_parse(&cfg, 5, argv4, NULL), 0);
    ck_assert_int_eq(ids_cluster_from_config(&c, &cfg), CONFIG_ERR_CLUSTER);
    ck_assert_str_eq(cfg.errmsg,
                     "couldn't find local name \"bar\" in the initial cluster configuration");
    config_free(&cfg);
}
END_TEST

START_TEST(test_oom_unwinds)
{
    /* Every allocation of a parse + verify fails in turn; nothing leaks. */
    for (long i = 0; i < 200; i++) {
        struct ids_cluster c;
        metcd_mem_fail_after(i);
        int rc =
            ids_cluster_parse(&c, "a=http://h:1,b=http://h:2,b=http://h:3", "t", err, sizeof(err));
        if (rc == 0) {
            const char *ap[] = {"http://h:1"};
            rc = ids_verify_bootstrap(&c, "a", ap, 1, false, err, sizeof(err));
            char *s = ids_cluster_string(&c);
            metcd_free(s);
            ids_cluster_free(&c);
        } else {
            ck_assert_int_eq(rc, IDS_ERR_NOMEM);
        }
        metcd_mem_fail_after(-1);
    }
    ck_assert_str_eq(ids_strerror(IDS_ERR_NOMEM), "out of memory");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config/ids");
    TCase *tc = tcase_create("ids");
    tcase_add_test(tc, test_single_member_matches_etcdctl);
    tcase_add_test(tc, test_etcd_default_cluster);
    tcase_add_test(tc, test_three_members_several_urls_sorted);
    tcase_add_test(tc, test_token_changes_ids);
    tcase_add_test(tc, test_runtime_added_member_uses_time);
    tcase_add_test(tc, test_url_order_irrelevant);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_verify_bootstrap_messages);
    tcase_add_test(tc, test_from_config);
    tcase_add_test(tc, test_oom_unwinds);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
