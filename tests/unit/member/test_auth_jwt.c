/* tests/unit/member/test_auth_jwt.c - server/member/auth_jwt.c: etcd's JWT
 * tokens signed and checked with each method family (HS, RS, PS, ES), a
 * token made elsewhere (an HS256 JWS computed independently) accepted,
 * and every way a token can be bad refused: tampered claims or signature,
 * expiry, another algorithm, another key; a public key alone verifies
 * but does not sign. */
#include "server/member/auth_jwt.h"

#include "common/mem.h"

#include <check.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/metcd-jwt-XXXXXX";
static char rsa_priv[256], rsa_pub[256], ec_priv[256], ec_pub[256], secret[256];

static void write_key(const char *path, EVP_PKEY *k, bool priv)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    int ok = priv ? PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)
                  : PEM_write_PUBKEY(f, k);
    ck_assert_int_eq(ok, 1);
    fclose(f);
}

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(rsa_priv, sizeof rsa_priv, "%s/rsa.key", dir);
    snprintf(rsa_pub, sizeof rsa_pub, "%s/rsa.pub", dir);
    snprintf(ec_priv, sizeof ec_priv, "%s/ec.key", dir);
    snprintf(ec_pub, sizeof ec_pub, "%s/ec.pub", dir);
    snprintf(secret, sizeof secret, "%s/secret", dir);
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(rsa);
    ck_assert_ptr_nonnull(ec);
    write_key(rsa_priv, rsa, true);
    write_key(rsa_pub, rsa, false);
    write_key(ec_priv, ec, true);
    write_key(ec_pub, ec, false);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    FILE *f = fopen(secret, "w");
    ck_assert_ptr_nonnull(f);
    fputs("metcd-test-secret", f);
    fclose(f);
}

static void teardown(void)
{
    const char *files[] = {rsa_priv, rsa_pub, ec_priv, ec_pub, secret};
    for (size_t i = 0; i < 5; i++)
        unlink(files[i]);
    rmdir(dir);
}

static struct auth_jwt *open_opts(const char *fmt, const char *a, const char *b)
{
    char opts[1024], err[256];
    snprintf(opts, sizeof opts, fmt, a, b);
    struct auth_jwt *j = NULL;
    ck_assert_msg(auth_jwt_open(&j, opts, err, sizeof err) == 0, "%s: %s", opts, err);
    return j;
}

static void round_trip(const char *method, const char *priv, const char *pub)
{
    char opts[1024];
    snprintf(opts, sizeof opts, "jwt,priv-key=%%s,pub-key=%%s,sign-method=%s,ttl=5m", method);
    struct auth_jwt *signer = open_opts(opts, priv, pub);
    char *tok = NULL;
    ck_assert_int_eq(auth_jwt_sign(signer, "alice", 42, 1000, &tok), 0);
    char user[64];
    uint64_t rev = 0;
    ck_assert_int_eq(auth_jwt_verify(signer, tok, 1000, user, sizeof user, &rev), 0);
    ck_assert_str_eq(user, "alice");
    ck_assert_uint_eq(rev, 42);
    /* exp = 1000 + 300: valid through that second (jwt-go's now <= exp) */
    ck_assert_int_eq(auth_jwt_verify(signer, tok, 1300, user, sizeof user, &rev), 0);
    ck_assert_int_eq(auth_jwt_verify(signer, tok, 1301, user, sizeof user, &rev), -1);
    /* a tampered signature */
    size_t n = strlen(tok);
    tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(auth_jwt_verify(signer, tok, 1000, user, sizeof user, &rev), -1);
    metcd_free(tok);
    /* a public key alone checks tokens but cannot sign */
    if (pub) {
        snprintf(opts, sizeof opts, "jwt,pub-key=%%s%%s,sign-method=%s", method);
        struct auth_jwt *checker = open_opts(opts, pub, "");
        ck_assert_int_eq(auth_jwt_sign(signer, "bob", 1, 1000, &tok), 0);
        ck_assert_int_eq(auth_jwt_verify(checker, tok, 1000, user, sizeof user, &rev), 0);
        ck_assert_str_eq(user, "bob");
        char *none = NULL;
        ck_assert_int_eq(auth_jwt_sign(checker, "x", 1, 1000, &none), AUTH_JWT_VERIFY_ONLY);
        ck_assert_ptr_null(none);
        metcd_free(tok);
        auth_jwt_close(checker);
    }
    auth_jwt_close(signer);
}

START_TEST(test_rs256) { round_trip("RS256", rsa_priv, rsa_pub); }
END_TEST

START_TEST(test_ps384) { round_trip("PS384", rsa_priv, rsa_pub); }
END_TEST

START_TEST(test_es256) { round_trip("ES256", ec_priv, ec_pub); }
END_TEST

START_TEST(test_hs512) { round_trip("HS512", secret, NULL); }
END_TEST

/* An HS256 token computed independently (Python's hmac over the JWS
 * signing input, claims as Go's encoding/json writes them). */
START_TEST(test_foreign_token)
{
    struct auth_jwt *j = open_opts("jwt,priv-key=%s%s,sign-method=HS256", secret, "");
    const char *tok = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                      "eyJleHAiOjIwMDAwMDAwMDAsInJldmlzaW9uIjo3LCJ1c2VybmFtZSI6ImFsaWNlIn0."
                      "VlTtMX2uitPC_lETrIFOkc6TI7Eaa7X5lXDUP8y4C6Y";
    char user[64];
    uint64_t rev = 0;
    ck_assert_int_eq(auth_jwt_verify(j, tok, 1700000000, user, sizeof user, &rev), 0);
    ck_assert_str_eq(user, "alice");
    ck_assert_uint_eq(rev, 7);
    /* the same claims with another revision: the signature no longer fits */
    const char *forged = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                         "eyJleHAiOjIwMDAwMDAwMDAsInJldmlzaW9uIjo5LCJ1c2VybmFtZSI6ImFsaWNlIn0."
                         "VlTtMX2uitPC_lETrIFOkc6TI7Eaa7X5lXDUP8y4C6Y";
    ck_assert_int_eq(auth_jwt_verify(j, forged, 1700000000, user, sizeof user, &rev), -1);
    ck_assert_int_eq(auth_jwt_verify(j, "not.a.token", 1, user, sizeof user, &rev), -1);
    ck_assert_int_eq(auth_jwt_verify(j, "nodots", 1, user, sizeof user, &rev), -1);
    auth_jwt_close(j);
}
END_TEST

START_TEST(test_other_alg_or_key_refused)
{
    struct auth_jwt *rs = open_opts("jwt,priv-key=%s,pub-key=%s,sign-method=RS256", rsa_priv,
                                    rsa_pub);
    struct auth_jwt *ps = open_opts("jwt,priv-key=%s,pub-key=%s,sign-method=PS256", rsa_priv,
                                    rsa_pub);
    struct auth_jwt *hs = open_opts("jwt,priv-key=%s%s,sign-method=HS256", secret, "");
    char *tok = NULL;
    ck_assert_int_eq(auth_jwt_sign(rs, "alice", 1, 1000, &tok), 0);
    char user[64];
    uint64_t rev;
    ck_assert_int_eq(auth_jwt_verify(ps, tok, 1000, user, sizeof user, &rev), -1);
    ck_assert_int_eq(auth_jwt_verify(hs, tok, 1000, user, sizeof user, &rev), -1);
    metcd_free(tok);
    auth_jwt_close(rs);
    auth_jwt_close(ps);
    auth_jwt_close(hs);
}
END_TEST

START_TEST(test_bad_options)
{
    struct auth_jwt *j = NULL;
    char err[256];
    ck_assert_int_eq(auth_jwt_open(&j, "jwt,sign-method=XX256", err, sizeof err), -1);
    ck_assert_str_eq(err, "auth: invalid auth signature method");
    ck_assert_int_eq(auth_jwt_open(&j, "jwt,sign-method=RS256", err, sizeof err), -1);
    ck_assert_str_eq(err, "auth: missing key data");
    char opts[512];
    snprintf(opts, sizeof opts, "jwt,priv-key=%s,sign-method=ES256", rsa_priv);
    ck_assert_int_eq(auth_jwt_open(&j, opts, err, sizeof err), -1); /* an RSA key for ES */
    snprintf(opts, sizeof opts, "jwt,priv-key=%s,sign-method=RS256,ttl=soon", rsa_priv);
    ck_assert_int_eq(auth_jwt_open(&j, opts, err, sizeof err), -1);
    ck_assert_ptr_null(j);
    ck_assert(auth_jwt_wanted("jwt,sign-method=RS256"));
    ck_assert(!auth_jwt_wanted("simple"));
    ck_assert(!auth_jwt_wanted("jwtx"));
}
END_TEST

START_TEST(test_ttl)
{
    struct auth_jwt *j = open_opts("jwt,priv-key=%s,sign-method=HS256,ttl=1m30s%s", secret, "");
    char *tok = NULL;
    ck_assert_int_eq(auth_jwt_sign(j, "u", 3, 5000, &tok), 0);
    char user[8];
    uint64_t rev;
    ck_assert_int_eq(auth_jwt_verify(j, tok, 5090, user, sizeof user, &rev), 0);
    ck_assert_int_eq(auth_jwt_verify(j, tok, 5091, user, sizeof user, &rev), -1);
    metcd_free(tok);
    auth_jwt_close(j);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("member/auth_jwt");
    TCase *tc = tcase_create("jwt");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rs256);
    tcase_add_test(tc, test_ps384);
    tcase_add_test(tc, test_es256);
    tcase_add_test(tc, test_hs512);
    tcase_add_test(tc, test_foreign_token);
    tcase_add_test(tc, test_other_alg_or_key_refused);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_ttl);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
