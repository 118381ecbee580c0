/* tests/fuzz/fuzz_jwt.c - JWT auth tokens as a client may send them
 * (server/member/auth_jwt.c's auth_jwt_verify): any bytes in the `token`
 * metadata reach the base64url, JSON and signature code. Checked with an
 * HS256 secret and with an ES256 key (its raw r||s to DER conversion).
 * Must never crash, leak or read out of bounds; a made-up token must
 * never verify. */
#include "server/member/auth_jwt.h"

#include "common/mem.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct auth_jwt *hs, *es;

static struct auth_jwt *open_with(const char *method, const char *path)
{
    char opts[512], err[256];
    snprintf(opts, sizeof opts, "jwt,priv-key=%s,sign-method=%s", path, method);
    struct auth_jwt *j = NULL;
    if (auth_jwt_open(&j, opts, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_jwt: %s\n", err);
        abort();
    }
    return j;
}

static void init(void)
{
    char dir[] = "/tmp/metcd-fuzz-jwt-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    char secret[256], ec[256];
    snprintf(secret, sizeof secret, "%s/secret", dir);
    snprintf(ec, sizeof ec, "%s/ec.key", dir);
    FILE *f = fopen(secret, "w");
    if (!f)
        abort();
    fputs("fuzz-secret", f);
    fclose(f);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    f = fopen(ec, "w");
    if (!k || !f || PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1)
        abort();
    fclose(f);
    EVP_PKEY_free(k);
    hs = open_with("HS256", secret);
    es = open_with("ES256", ec);
    unlink(secret);
    unlink(ec);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!hs)
        init();
    char *tok = malloc(size + 1);
    if (!tok)
        return 0;
    memcpy(tok, data, size);
    tok[size] = 0;
    char user[256];
    uint64_t rev;
    if (auth_jwt_verify(hs, tok, 0, user, sizeof user, &rev) == 0 ||
        auth_jwt_verify(es, tok, 0, user, sizeof user, &rev) == 0) {
        /* only a signed token verifies; random input never is one */
        fprintf(stderr, "fuzz_jwt: a made-up token verified\n");
        abort();
    }
    free(tok);
    return 0;
}
