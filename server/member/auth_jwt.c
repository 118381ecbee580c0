/* server/member/auth_jwt.c - etcd 3.4's JWT auth tokens (auth/jwt.go,
 * auth/options.go): `--auth-token jwt,pub-key=FILE,priv-key=FILE,
 * sign-method=M,ttl=D`. A token is a JWS (RFC 7515) in compact form whose
 * claims are {"username", "revision", "exp"}; any member holding the key
 * checks it without shared state. Methods: HS256/384/512 (the private key
 * file's bytes are the secret), RS256/384/512, PS256/384/512 and
 * ES256/384/512 through OpenSSL's EVP. With only a public key the member
 * verifies tokens but cannot sign them (etcd's verify-only mode).
 *
 * Only the loop thread uses a jwt object. */
#include "server/member/auth_jwt.h"

#include "common/mem.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum jwt_family { JWT_HS, JWT_RS, JWT_PS, JWT_ES };

struct auth_jwt {
    enum jwt_family family;
    char alg[8];
    const EVP_MD *md;
    size_t ec_size;   /* ES: bytes of r and of s */
    EVP_PKEY *key;    /* RS/PS/ES: private (signs) or public (verify only) */
    bool can_sign;
    uint8_t *secret;  /* HS */
    size_t secret_len;
    int64_t ttl_ms;
};

/* ---- base64url without padding (RFC 7515 section 2) ---------------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64url(const uint8_t *p, size_t n)
{
    char *out = metcd_malloc(n / 3 * 4 + 5);
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = B64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
    }
    out[o] = 0;
    return out;
}

static int b64val(char c)
{
    const char *p = c ? strchr(B64, c) : NULL;
    return p ? (int)(p - B64) : -1;
}

/* Decodes n chars; caller frees *out. -1 on bad input or no memory. */
static int unb64url(const char *s, size_t n, uint8_t **out, size_t *out_len)
{
    if (n % 4 == 1)
        return -1;
    uint8_t *o = metcd_malloc(n / 4 * 3 + 3);
    if (!o)
        return -1;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val(s[i]);
        if (v < 0) {
            metcd_free(o);
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (uint8_t)(acc >> bits);
        }
    }
    *out = o;
    *out_len = k;
    return 0;
}

/* ---- options ------------------------------------------------------------------------------------- */

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 4096;
            uint8_t *nb = metcd_realloc(buf, nc);
            if (!nb) {
                metcd_free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
            cap = nc;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        metcd_free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Go's time.ParseDuration for the forms etcd users write ("5m", "1s",
 * "300ms", "1h30m"). */
static int parse_duration_ms(const char *s, int64_t *out)
{
    double total = 0;
    if (!*s)
        return -1;
    while (*s) {
        char *end;
        double v = strtod(s, &end);
        if (end == s)
            return -1;
        s = end;
        double unit;
        if (!strncmp(s, "ms", 2)) {
            unit = 1;
            s += 2;
        } else if (!strncmp(s, "us", 2) || !strncmp(s, "\xc2\xb5s", 3)) {
            unit = 0.001;
            s += s[0] == 'u' ? 2 : 3;
        } else if (!strncmp(s, "ns", 2)) {
            unit = 0.000001;
            s += 2;
        } else if (*s == 's') {
            unit = 1000;
            s++;
        } else if (*s == 'm') {
            unit = 60000;
            s++;
        } else if (*s == 'h') {
            unit = 3600000;
            s++;
        } else {
            return -1;
        }
        total += v * unit;
    }
    *out = (int64_t)total;
    return 0;
}

static EVP_PKEY *load_public(const uint8_t *pem, size_t len)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (!b)
        return NULL;
    EVP_PKEY *k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
    if (!k) {
        /* a certificate holds one too (jwt-go accepts either) */
        BIO_reset(b);
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (x) {
            k = X509_get_pubkey(x);
            X509_free(x);
        }
    }
    BIO_free(b);
    return k;
}

static EVP_PKEY *load_private(const uint8_t *pem, size_t len)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (!b)
        return NULL;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    return k;
}

static int set_method(struct auth_jwt *j, const char *m)
{
    static const struct {
        const char *name;
        enum jwt_family fam;
        int bits;
    } methods[] = {
        {"HS256", JWT_HS, 256}, {"HS384", JWT_HS, 384}, {"HS512", JWT_HS, 512},
        {"RS256", JWT_RS, 256}, {"RS384", JWT_RS, 384}, {"RS512", JWT_RS, 512},
        {"PS256", JWT_PS, 256}, {"PS384", JWT_PS, 384}, {"PS512", JWT_PS, 512},
        {"ES256", JWT_ES, 256}, {"ES384", JWT_ES, 384}, {"ES512", JWT_ES, 512},
    };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(methods[i].name, m) != 0)
            continue;
        j->family = methods[i].fam;
        snprintf(j->alg, sizeof(j->alg), "%s", m);
        j->md = methods[i].bits == 256 ? EVP_sha256()
                : methods[i].bits == 384 ? EVP_sha384()
                                         : EVP_sha512();
        j->ec_size = methods[i].bits == 256 ? 32 : methods[i].bits == 384 ? 48 : 66;
        return 0;
    }
    return -1;
}

bool auth_jwt_wanted(const char *opts)
{
    return opts && (strcmp(opts, "jwt") == 0 || strncmp(opts, "jwt,", 4) == 0);
}

int auth_jwt_open(struct auth_jwt **out, const char *opts, char *err, size_t errlen)
{
    *out = NULL;
    struct auth_jwt *j = metcd_calloc(1, sizeof(*j));
    char *copy = metcd_strdup(opts);
    if (!j || !copy) {
        metcd_free(j);
        metcd_free(copy);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    j->ttl_ms = 5 * 60 * 1000; /* jwt.go's default */
    const char *pub = NULL, *priv = NULL, *method = NULL;
    int rc = 0;
    char *save = NULL;
    for (char *f = strtok_r(copy, ",", &save); f && rc == 0; f = strtok_r(NULL, ",", &save)) {
        if (strcmp(f, "jwt") == 0)
            continue;
        char *eq = strchr(f, '=');
        if (!eq) {
            snprintf(err, errlen, "auth: invalid auth options (%s)", f);
            rc = -1;
            break;
        }
        *eq = 0;
        const char *v = eq + 1;
        if (!strcmp(f, "pub-key"))
            pub = v;
        else if (!strcmp(f, "priv-key"))
            priv = v;
        else if (!strcmp(f, "sign-method"))
            method = v;
        else if (!strcmp(f, "ttl") && parse_duration_ms(v, &j->ttl_ms) != 0) {
            snprintf(err, errlen, "auth: invalid auth options (ttl=%s)", v);
            rc = -1;
        }
    }
    if (rc == 0 && (!method || set_method(j, method) != 0)) {
        snprintf(err, errlen, "auth: invalid auth signature method");
        rc = -1;
    }
    uint8_t *pem = NULL;
    size_t len = 0;
    if (rc == 0 && j->family == JWT_HS) {
        if (!priv || read_file(priv, &j->secret, &j->secret_len) != 0) {
            snprintf(err, errlen, "auth: missing key data");
            rc = -1;
        }
        j->can_sign = true;
    } else if (rc == 0 && priv) {
        if (read_file(priv, &pem, &len) != 0 || !(j->key = load_private(pem, len))) {
            snprintf(err, errlen, "auth: cannot load the private key %s", priv);
            rc = -1;
        }
        j->can_sign = true;
    } else if (rc == 0 && pub) {
        if (read_file(pub, &pem, &len) != 0 || !(j->key = load_public(pem, len))) {
            snprintf(err, errlen, "auth: cannot load the public key %s", pub);
            rc = -1;
        }
    } else if (rc == 0) {
        snprintf(err, errlen, "auth: missing key data");
        rc = -1;
    }
    if (rc == 0 && j->key) {
        int id = EVP_PKEY_base_id(j->key);
        bool fits = j->family == JWT_ES ? id == EVP_PKEY_EC : id == EVP_PKEY_RSA;
        if (!fits) {
            snprintf(err, errlen, "auth: the key does not fit sign-method %s", j->alg);
            rc = -1;
        }
    }
    metcd_free(pem);
    metcd_free(copy);
    if (rc) {
        auth_jwt_close(j);
        return -1;
    }
    *out = j;
    return 0;
}

void auth_jwt_close(struct auth_jwt *j)
{
    if (!j)
        return;
    EVP_PKEY_free(j->key);
    if (j->secret) {
        OPENSSL_cleanse(j->secret, j->secret_len);
        metcd_free(j->secret);
    }
    metcd_free(j);
}

/* ---- signatures -------------------------------------------------------------------------------------- */

static int set_pss(EVP_PKEY_CTX *pctx, const struct auth_jwt *j)
{
    if (j->family != JWT_PS)
        return 1;
    /* jwt-go signs PSS with the salt as long as the hash */
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
}

/* Signs data into *sig (caller frees). */
static int sign(const struct auth_jwt *j, const char *data, size_t n, uint8_t **sig, size_t *slen)
{
    if (j->family == JWT_HS) {
        unsigned int l = 0;
        uint8_t *out = metcd_malloc(EVP_MAX_MD_SIZE);
        if (!out || !HMAC(j->md, j->secret, (int)j->secret_len, (const uint8_t *)data, n, out,
                          &l)) {
            metcd_free(out);
            return -1;
        }
        *sig = out;
        *slen = l;
        return 0;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t *der = NULL;
    size_t dlen = 0;
    int rc = -1;
    if (ctx && EVP_DigestSignInit(ctx, &pctx, j->md, NULL, j->key) == 1 && set_pss(pctx, j) &&
        EVP_DigestSign(ctx, NULL, &dlen, (const uint8_t *)data, n) == 1 &&
        (der = metcd_malloc(dlen)) &&
        EVP_DigestSign(ctx, der, &dlen, (const uint8_t *)data, n) == 1)
        rc = 0;
    EVP_MD_CTX_free(ctx);
    if (rc) {
        metcd_free(der);
        return -1;
    }
    if (j->family != JWT_ES) {
        *sig = der;
        *slen = dlen;
        return 0;
    }
    /* ES: JWS wants r || s, each ec_size bytes, not DER */
    const uint8_t *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
    metcd_free(der);
    uint8_t *raw = metcd_malloc(2 * j->ec_size);
    if (!es || !raw || BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)j->ec_size) < 0 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + j->ec_size, (int)j->ec_size) < 0) {
        ECDSA_SIG_free(es);
        metcd_free(raw);
        return -1;
    }
    ECDSA_SIG_free(es);
    *sig = raw;
    *slen = 2 * j->ec_size;
    return 0;
}

static bool verify(const struct auth_jwt *j, const char *data, size_t n, const uint8_t *sig,
                   size_t slen)
{
    if (j->family == JWT_HS) {
        uint8_t *mine = NULL;
        size_t mlen = 0;
        if (sign(j, data, n, &mine, &mlen) != 0)
            return false;
        bool ok = mlen == slen && CRYPTO_memcmp(mine, sig, slen) == 0;
        metcd_free(mine);
        return ok;
    }
    uint8_t *der = NULL;
    int dlen = 0;
    if (j->family == JWT_ES) {
        if (slen != 2 * j->ec_size)
            return false;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int)j->ec_size, NULL);
        BIGNUM *s = BN_bin2bn(sig + j->ec_size, (int)j->ec_size, NULL);
        if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
            ECDSA_SIG_free(es);
            BN_free(r);
            BN_free(s);
            return false;
        }
        dlen = i2d_ECDSA_SIG(es, &der); /* OpenSSL allocates der */
        ECDSA_SIG_free(es);
        if (dlen <= 0)
            return false;
        sig = der;
        slen = (size_t)dlen;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = ctx && EVP_DigestVerifyInit(ctx, &pctx, j->md, NULL, j->key) == 1 &&
              set_pss(pctx, j) &&
              EVP_DigestVerify(ctx, sig, slen, (const uint8_t *)data, n) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return ok;
}

/* ---- tokens ---------------------------------------------------------------------------------------------- */

int auth_jwt_sign(const struct auth_jwt *j, const char *user, uint64_t revision, int64_t now_s,
                  char **out)
{
    *out = NULL;
    if (!j->can_sign)
        return AUTH_JWT_VERIFY_ONLY;
    char header[64];
    snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", j->alg);
    json_t *claims = json_pack("{s:s, s:I, s:I}", "username", user, "revision",
                               (json_int_t)revision, "exp",
                               (json_int_t)(now_s + (j->ttl_ms + 999) / 1000));
    char *payload = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
    json_decref(claims);
    char *h64 = b64url((const uint8_t *)header, strlen(header));
    char *p64 = payload ? b64url((const uint8_t *)payload, strlen(payload)) : NULL;
    free(payload); /* jansson's allocation */
    int rc = -1;
    char *signing = NULL, *s64 = NULL;
    uint8_t *sig = NULL;
    size_t slen = 0;
    if (h64 && p64) {
        size_t n = strlen(h64) + 1 + strlen(p64);
        signing = metcd_malloc(n + 1);
        if (signing) {
            snprintf(signing, n + 1, "%s.%s", h64, p64);
            if (sign(j, signing, n, &sig, &slen) == 0 && (s64 = b64url(sig, slen))) {
                size_t tl = n + 1 + strlen(s64) + 1;
                *out = metcd_malloc(tl);
                if (*out) {
                    snprintf(*out, tl, "%s.%s", signing, s64);
                    rc = 0;
                }
            }
        }
    }
    metcd_free(h64);
    metcd_free(p64);
    metcd_free(signing);
    metcd_free(sig);
    metcd_free(s64);
    return rc;
}

int auth_jwt_verify(const struct auth_jwt *j, const char *token, int64_t now_s, char *user,
                    size_t user_len, uint64_t *revision)
{
    const char *d1 = strchr(token, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.'))
        return -1;
    uint8_t *hdr = NULL, *pl = NULL, *sig = NULL;
    size_t hlen, plen, slen;
    int rc = -1;
    json_t *h = NULL, *c = NULL;
    if (unb64url(token, (size_t)(d1 - token), &hdr, &hlen) != 0 ||
        unb64url(d1 + 1, (size_t)(d2 - d1 - 1), &pl, &plen) != 0 ||
        unb64url(d2 + 1, strlen(d2 + 1), &sig, &slen) != 0)
        goto out;
    h = json_loadb((const char *)hdr, hlen, 0, NULL);
    const char *alg = h ? json_string_value(json_object_get(h, "alg")) : NULL;
    if (!alg || strcmp(alg, j->alg) != 0) /* "invalid signing method" */
        goto out;
    if (!verify(j, token, (size_t)(d2 - token), sig, slen))
        goto out;
    c = json_loadb((const char *)pl, plen, 0, NULL);
    json_t *u = c ? json_object_get(c, "username") : NULL;
    json_t *r = c ? json_object_get(c, "revision") : NULL;
    json_t *e = c ? json_object_get(c, "exp") : NULL;
    if (!json_is_string(u) || !json_is_number(r))
        goto out;
    if (e && (!json_is_number(e) || (int64_t)json_number_value(e) < now_s))
        goto out; /* expired */
    snprintf(user, user_len, "%s", json_string_value(u));
    *revision = (uint64_t)json_number_value(r);
    rc = 0;
out:
    json_decref(h);
    json_decref(c);
    metcd_free(hdr);
    metcd_free(pl);
    metcd_free(sig);
    return rc;
}

int64_t auth_jwt_now_s(void)
{
    return (int64_t)time(NULL);
}
