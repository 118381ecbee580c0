/* tests/unit/server/test_tls.c - https listeners (server/rpc/tls_front.c)
 * with contexts from server/tls, reached by our gRPC client over TLS: the
 * handshake and a unary call, ALPN's choice, client-certificate refusal,
 * plaintext to the TLS port and TLS to a plaintext port (both refused and
 * logged, the server unharmed). */
#include "harness.h"

#include "server/tls/tls.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

static struct fixture f;
static uint16_t tls_port;
static char warn[1024];
static int n_warn;

static void on_warn(void *arg, const char *msg)
{
    (void)arg;
    snprintf(warn, sizeof warn, "%s", msg);
    n_warn++;
}

struct result {
    bool done;
    enum rpc_code code;
    char resp_msg[64];
};

static void on_done(const ProtobufCMessage *resp, enum rpc_code code, const char *msg, void *data)
{
    (void)msg;
    struct result *r = data;
    r->done = true;
    r->code = code;
    if (resp)
        snprintf(r->resp_msg, sizeof r->resp_msg, "%s",
                 ((const Metcd__Test__EchoResponse *)resp)->message);
}

/* A server with the plain listener of the fixture and a TLS one. */
static void start(const struct tls_options *o)
{
    struct rpc_server_config cfg = {.log_warn = on_warn, .handshake_timeout_ms = 1000};
    fixture_setup(&f, &cfg);
    SSL_CTX *ctx = NULL;
    char err[256];
    ck_assert_msg(tls_server_ctx_new(&ctx, o, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(rpc_server_listen_tls(f.srv, "127.0.0.1", 0, ctx, &tls_port), 0);
    SSL_CTX_free(ctx); /* the listener holds its own reference */
    warn[0] = 0;
    n_warn = 0;
}

static void teardown(void)
{
    fixture_teardown(&f);
}

/* One unary Echo call over TLS with a client context from `o`. */
static struct result call_tls(const struct tls_options *o, uint16_t port)
{
    SSL_CTX *cctx = NULL;
    char err[256];
    ck_assert_msg(tls_client_ctx_new(&cctx, o, err, sizeof err) == 0, "%s", err);
    char ep[64];
    snprintf(ep, sizeof ep, "https://127.0.0.1:%u", port);
    const char *eps[] = {ep};
    struct rpc_client_config cc = {.endpoints = eps, .n_endpoints = 1, .tls = cctx,
                                   .dial_timeout_ms = 2000};
    struct rpc_client *cl = NULL;
    ck_assert_int_eq(rpc_client_new(&cl, f.base, &cc), 0);
    SSL_CTX_free(cctx);
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.message = "over tls";
    struct result r = {0};
    ck_assert_int_eq(rpc_client_unary(cl, "/metcd.test.Echo/Unary", &req.base,
                                      &metcd__test__echo_response__descriptor, NULL, 0, 3000,
                                      on_done, &r),
                     0);
    run_until(f.base, &r.done, 5000);
    rpc_client_free(cl);
    return r;
}

START_TEST(auto_tls_handshake_and_call)
{
    start(&(struct tls_options){.auto_tls = true});
    struct result r = call_tls(&(struct tls_options){.insecure_skip_verify = true}, tls_port);
    ck_assert(r.done);
    ck_assert_int_eq(r.code, RPC_CODE_OK);
    ck_assert_str_eq(r.resp_msg, "over tls");
    ck_assert_int_eq(n_warn, 0);
}
END_TEST

START_TEST(verifying_client_refuses_self_signed)
{
    start(&(struct tls_options){.auto_tls = true});
    /* the system trust store does not know the self-signed certificate */
    struct result r = call_tls(&(struct tls_options){0}, tls_port);
    ck_assert(r.done);
    ck_assert_int_eq(r.code, RPC_CODE_UNAVAILABLE);
    WAIT_UNTIL(f.base, n_warn > 0, 2000);
    ck_assert_msg(strstr(warn, "rejected connection from \"127.0.0.1:"), "%s", warn);
}
END_TEST

START_TEST(client_cert_auth_refuses_client_without_certificate)
{
    start(&(struct tls_options){.auto_tls = true, .client_cert_auth = true});
    struct result r = call_tls(&(struct tls_options){.insecure_skip_verify = true}, tls_port);
    ck_assert_int_eq(r.code, RPC_CODE_UNAVAILABLE);
    WAIT_UNTIL(f.base, n_warn > 0, 2000);
    ck_assert_msg(strstr(warn, "didn't provide a certificate"), "%s", warn);
    /* with a certificate (auto TLS server without a CA accepts any) */
    r = call_tls(&(struct tls_options){.insecure_skip_verify = true, .auto_tls = true},
                 tls_port);
    ck_assert_int_eq(r.code, RPC_CODE_OK);
}
END_TEST

static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

START_TEST(plaintext_to_tls_port_refused)
{
    start(&(struct tls_options){.auto_tls = true});
    int fd = raw_connect(tls_port);
    const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    WAIT_UNTIL(f.base, n_warn > 0, 2000);
    ck_assert_msg(strstr(warn, "first record does not look like a TLS handshake"), "%s", warn);
    close(fd);
    /* the server still serves */
    struct result r = call_tls(&(struct tls_options){.insecure_skip_verify = true}, tls_port);
    ck_assert_int_eq(r.code, RPC_CODE_OK);
}
END_TEST

START_TEST(tls_to_plaintext_port_refused)
{
    start(&(struct tls_options){.auto_tls = true});
    struct result r = call_tls(&(struct tls_options){.insecure_skip_verify = true}, f.port);
    ck_assert_int_eq(r.code, RPC_CODE_UNAVAILABLE);
    WAIT_UNTIL(f.base, n_warn > 0, 2000);
    ck_assert_msg(strstr(warn, "TLS handshake on a plaintext port"), "%s", warn);
}
END_TEST

START_TEST(handshake_timeout_closes)
{
    start(&(struct tls_options){.auto_tls = true});
    int fd = raw_connect(tls_port);
    WAIT_UNTIL(f.base, n_warn > 0, 3000);
    ck_assert_msg(strstr(warn, "handshake timed out"), "%s", warn);
    close(fd);
}
END_TEST

/* ALPN: h2 for a client that offers only h2 (gRPC), http/1.1 when offered
 * (tls.c says why). Checked with a blocking OpenSSL client on a thread-free
 * loop: the handshake needs the server's loop, so drive it step by step. */
static const char *alpn_of(const unsigned char *offer, unsigned len)
{
    static char got[32];
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(cctx);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
    ck_assert_int_eq(SSL_CTX_set_alpn_protos(cctx, offer, len), 0);
    SSL *ssl = SSL_new(cctx);
    int fd = raw_connect(tls_port);
    evutil_make_socket_nonblocking(fd);
    SSL_set_fd(ssl, fd);
    int rc = 0;
    for (int i = 0; i < 400 && rc != 1; i++) {
        rc = SSL_connect(ssl);
        if (rc != 1) {
            int e = SSL_get_error(ssl, rc);
            ck_assert(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE);
            run_for(f.base, 5);
        }
    }
    ck_assert_int_eq(rc, 1);
    const unsigned char *p = NULL;
    unsigned plen = 0;
    SSL_get0_alpn_selected(ssl, &p, &plen);
    snprintf(got, sizeof got, "%.*s", (int)plen, p ? (const char *)p : "");
    SSL_free(ssl);
    SSL_CTX_free(cctx);
    close(fd);
    return got;
}

START_TEST(alpn_choice)
{
    start(&(struct tls_options){.auto_tls = true});
    static const unsigned char h2[] = {2, 'h', '2'};
    static const unsigned char both[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    static const unsigned char other[] = {3, 'f', 'o', 'o'};
    ck_assert_str_eq(alpn_of(h2, sizeof h2), "h2");
    ck_assert_str_eq(alpn_of(both, sizeof both), "http/1.1");
    ck_assert_str_eq(alpn_of(other, sizeof other), "");
}
END_TEST

START_TEST(config_errors)
{
    SSL_CTX *ctx = NULL;
    char err[256];
    ck_assert_int_eq(tls_server_ctx_new(&ctx, &(struct tls_options){0}, err, sizeof err),
                     TLS_ERR_INVAL);
    ck_assert_int_eq(tls_server_ctx_new(&ctx,
                                        &(struct tls_options){.cert_file = "/nonexistent.crt",
                                                              .key_file = "/nonexistent.key"},
                                        err, sizeof err),
                     TLS_ERR_FILE);
    ck_assert_int_eq(tls_server_ctx_new(&ctx,
                                        &(struct tls_options){.auto_tls = true,
                                                              .crl_file = "/nonexistent.crl"},
                                        err, sizeof err),
                     TLS_ERR_FILE);
    ck_assert_ptr_null(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/tls");
    TCase *tc = tcase_create("tls");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, auto_tls_handshake_and_call);
    tcase_add_test(tc, verifying_client_refuses_self_signed);
    tcase_add_test(tc, client_cert_auth_refuses_client_without_certificate);
    tcase_add_test(tc, plaintext_to_tls_port_refused);
    tcase_add_test(tc, tls_to_plaintext_port_refused);
    tcase_add_test(tc, handshake_timeout_closes);
    tcase_add_test(tc, alpn_choice);
    suite_add_tcase(s, tc);
    TCase *tc2 = tcase_create("config");
    tcase_add_test(tc2, config_errors);
    suite_add_tcase(s, tc2);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
