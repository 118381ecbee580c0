/* tests/unit/peer/test_tls.c - https:// peer URLs: auto TLS (a self-signed
 * certificate made at start), certificate files with a trusted CA and
 * client certificate auth, and the refusals around them. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define CLUSTER 0x99ULL
#define TLS_LOOPBACK "https://127.0.0.1:0"

static struct event_base *base;
static struct node na, nb;
static char dir[64];

static void setup(void)
{
    base = event_base_new();
    memset(&na, 0, sizeof(na));
    memset(&nb, 0, sizeof(nb));
    na.snap_fd = nb.snap_fd = -1;
    dir[0] = 0;
}

static void teardown(void)
{
    node_stop(&na);
    node_stop(&nb);
    event_base_free(base);
    if (dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        ck_assert_int_eq(system(cmd), 0);
    }
}

static void exchange(void)
{
    node_link(&na, &nb);
    WAIT_UNTIL(base, node_active(&na, 2) && node_active(&nb, 1), 5000);
    ck_assert_msg(node_active(&na, 2) && node_active(&nb, 1), "a:\n%s\nb:\n%s", na.log, nb.log);
    for (uint64_t i = 1; i <= 100; i++) {
        raft_msg m = mk_msg(RAFT_MSG_APP, 1, 2, i, 3000);
        ck_assert_int_eq(peer_send(na.t, &m), 0);
        raft_msg_free(&m);
        m = mk_msg(RAFT_MSG_APP, 2, 1, i, 10);
        ck_assert_int_eq(peer_send(nb.t, &m), 0);
        raft_msg_free(&m);
    }
    WAIT_UNTIL(base, na.n_msgs == 100 && nb.n_msgs == 100, 5000);
    ck_assert_uint_eq(na.n_msgs, 100);
    ck_assert_uint_eq(nb.n_msgs, 100);
    ck_assert(!na.out_of_order && !nb.out_of_order);
}

START_TEST(auto_tls_members_exchange_messages_and_snapshots)
{
    peer_config cfg = {.auto_tls = true};
    node_start(&na, base, 1, CLUSTER, TLS_LOOPBACK, &cfg);
    node_start(&nb, base, 2, CLUSTER, TLS_LOOPBACK, &cfg);
    ck_assert_int_eq(strncmp(na.url, "https://127.0.0.1:", 18), 0);
    exchange();
    static raft_snapshot snap = {.meta = {.index = 77, .term = 2}};
    raft_msg m = {.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 2, .snapshot = &snap};
    ck_assert_int_eq(peer_send_snapshot(na.t, &m, make_file(3 << 20, 11)), 0);
    WAIT_UNTIL(base, nb.n_snaps == 1 && na.snap_ok[2] == 1, 10000);
    ck_assert_uint_eq(nb.n_snaps, 1);
    ck_assert_uint_eq(nb.snap_index, 77);
    ck_assert(file_matches(nb.snap_fd, 3 << 20, 11));
    ck_assert_uint_eq(na.snap_ok[2], 1);
}
END_TEST

START_TEST(auto_tls_with_client_cert_auth)
{
    peer_config cfg = {.auto_tls = true, .client_cert_auth = true};
    node_start(&na, base, 1, CLUSTER, TLS_LOOPBACK, &cfg);
    node_start(&nb, base, 2, CLUSTER, TLS_LOOPBACK, &cfg);
    exchange();
}
END_TEST

START_TEST(plaintext_and_tls_do_not_mix)
{
    peer_config tls = {.auto_tls = true};
    node_start(&na, base, 1, CLUSTER, "http://127.0.0.1:0", &tls); /* dials https only */
    node_start(&nb, base, 2, CLUSTER, TLS_LOOPBACK, &tls);
    /* A dials B's https URL with http://: its plaintext hello meets a TLS
     * server, which closes the connection. */
    char plain[256], tls_a[256];
    snprintf(plain, sizeof(plain), "http://%.200s", nb.url + strlen("https://"));
    snprintf(tls_a, sizeof(tls_a), "https://%.200s", na.url + strlen("http://"));
    const char *ub = plain, *ua = tls_a;
    ck_assert_int_eq(peer_add(na.t, 2, &ub, 1), 0);
    ck_assert_int_eq(peer_add(nb.t, 1, &ua, 1), 0);
    run_for(base, 500);
    ck_assert(!node_active(&na, 2));
    ck_assert(node_log_has(&na, "failed to dial 0000000000000002"));
    /* B dials A's plain listener over TLS: the handshake fails. */
    ck_assert(!node_active(&nb, 1));
    ck_assert(node_log_has(&nb, "failed to dial 0000000000000001"));
    ck_assert_uint_eq(na.n_msgs + nb.n_msgs, 0);
}
END_TEST

START_TEST(https_listener_needs_a_certificate)
{
    char err[256];
    ck_assert_int_eq(node_try_start(&na, base, 1, CLUSTER, TLS_LOOPBACK, NULL, err, sizeof(err)),
                     PEER_ERR_INVAL);
    ck_assert_ptr_nonnull(strstr(err, "--peer-cert-file"));
    peer_config missing = {.cert_file = "/nonexistent/peer.crt", .key_file = "/nonexistent/k"};
    ck_assert_int_eq(
        node_try_start(&na, base, 1, CLUSTER, TLS_LOOPBACK, &missing, err, sizeof(err)),
        PEER_ERR_TLS);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/peer.crt"));
    peer_config auth = {
        .auto_tls = false, .client_cert_auth = true, .cert_file = "a", .key_file = "b"};
    ck_assert_int_eq(node_try_start(&na, base, 1, CLUSTER, TLS_LOOPBACK, &auth, err, sizeof(err)),
                     PEER_ERR_INVAL);
    ck_assert_ptr_nonnull(strstr(err, "--peer-trusted-ca-file"));
}
END_TEST

/* A CA and a member certificate for 127.0.0.1 made with the openssl tool;
 * false (test skipped) when the tool is missing. */
static bool make_certs(const char *ca_name)
{
    if (system("command -v openssl >/dev/null 2>&1") != 0)
        return false;
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/metcd-peer-tls-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
    }
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "cd %s && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-subj /CN=%s -keyout %s.key -out %s.crt >/dev/null 2>&1 && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-subj /CN=member -keyout member.key -out member.csr >/dev/null 2>&1 && "
             "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' "
             "> ext.cnf && "
             "openssl x509 -req -in member.csr -CA %s.crt -CAkey %s.key -CAcreateserial "
             "-days 2 -extfile ext.cnf -out member.crt >/dev/null 2>&1",
             dir, ca_name, ca_name, ca_name, ca_name, ca_name);
    ck_assert_int_eq(system(cmd), 0);
    return true;
}

START_TEST(certificate_files_with_trusted_ca_and_client_auth)
{
    if (!make_certs("ca"))
        return;
    char crt[128], key[128], ca[128];
    snprintf(crt, sizeof(crt), "%s/member.crt", dir);
    snprintf(key, sizeof(key), "%s/member.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    peer_config cfg = {
        .cert_file = crt, .key_file = key, .trusted_ca_file = ca, .client_cert_auth = true};
    node_start(&na, base, 1, CLUSTER, TLS_LOOPBACK, &cfg);
    node_start(&nb, base, 2, CLUSTER, TLS_LOOPBACK, &cfg);
    exchange();
}
END_TEST

START_TEST(untrusted_server_certificate_is_refused)
{
    if (!make_certs("other"))
        return;
    ck_assert(make_certs("ca")); /* member.crt now signed by "ca" */
    char crt[128], key[128], ca[128], other[128];
    snprintf(crt, sizeof(crt), "%s/member.crt", dir);
    snprintf(key, sizeof(key), "%s/member.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    snprintf(other, sizeof(other), "%s/other.crt", dir);
    peer_config good = {.cert_file = crt, .key_file = key, .trusted_ca_file = ca};
    peer_config wrong = {.cert_file = crt, .key_file = key, .trusted_ca_file = other};
    node_start(&na, base, 1, CLUSTER, TLS_LOOPBACK, &wrong);
    node_start(&nb, base, 2, CLUSTER, TLS_LOOPBACK, &good);
    node_link(&na, &nb);
    WAIT_UNTIL(base, node_active(&nb, 1), 3000);
    ck_assert(node_active(&nb, 1)); /* B trusts A's certificate's CA */
    run_for(base, 300);
    ck_assert(!node_active(&na, 2)); /* A does not trust B's */
    ck_assert_msg(node_log_has(&na, "failed to verify certificate"), "%s", na.log);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("peer/tls");
    TCase *tc = tcase_create("tls");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, auto_tls_members_exchange_messages_and_snapshots);
    tcase_add_test(tc, auto_tls_with_client_cert_auth);
    tcase_add_test(tc, plaintext_and_tls_do_not_mix);
    tcase_add_test(tc, https_listener_needs_a_certificate);
    tcase_add_test(tc, certificate_files_with_trusted_ca_and_client_auth);
    tcase_add_test(tc, untrusted_server_certificate_is_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
