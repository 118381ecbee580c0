/* server/tls/tls.c - OpenSSL contexts from etcd's TLS flags (tls.h). */
#include "server/tls/tls.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/mem.h"

const char *tls_strerror(int err)
{
    switch (err) {
    case TLS_OK:
        return "success";
    case TLS_ERR_NOMEM:
        return "out of memory";
    case TLS_ERR_INVAL:
        return "invalid TLS configuration";
    case TLS_ERR_FILE:
        return "cannot load a TLS file";
    case TLS_ERR_CRYPTO:
        return "TLS library error";
    default:
        return "unknown tls error";
    }
}

/* Per server context: what the verify callback needs beyond OpenSSL's own
 * checks. Owned by the SSL_CTX (freed with it through the ex_data hook). */
struct ctx_data {
    STACK_OF(X509_CRL) *crls;
    char *allowed_cn;
    bool accept_any; /* auto TLS without a CA: a certificate is enough */
};

static int ex_idx = -1;
static CRYPTO_ONCE ex_once = CRYPTO_ONCE_STATIC_INIT;

static void on_ctx_data_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                             void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    struct ctx_data *d = ptr;
    if (!d)
        return;
    sk_X509_CRL_pop_free(d->crls, X509_CRL_free);
    metcd_free(d->allowed_cn);
    metcd_free(d);
}

static void ex_init(void)
{
    ex_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, on_ctx_data_free);
}

static void set_err(char *errbuf, size_t errlen, const char *what, const char *file)
{
    char e[160] = "";
    unsigned long code = ERR_get_error();
    if (code)
        ERR_error_string_n(code, e, sizeof(e));
    snprintf(errbuf, errlen, "%s%s%s: %s", what, file ? " " : "", file ? file : "",
             e[0] ? e : "failed");
    ERR_clear_error();
}

int tls_self_cert(const char *cn, EVP_PKEY **key_out, X509 **cert_out)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_EXTENSION *ext = NULL;
    if (!key || !x)
        goto err;
    /* a random serial: two members' certificates must differ */
    unsigned char rnd[8];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        goto err;
    uint64_t bits = 0; /* unsigned: shifting a signed long past its top is UB */
    for (size_t i = 0; i < sizeof rnd; i++)
        bits = (bits << 8) | rnd[i];
    long serial = (long)(bits & 0x7fffffffffffffffULL);
    if (ASN1_INTEGER_set(X509_get_serialNumber(x), serial ? serial : 1) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600) ||
        X509_set_version(x, 2) != 1 || X509_set_pubkey(x, key) != 1)
        goto err;
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"metcd", -1,
                                   -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   (const unsigned char *)(cn ? cn : "metcd"), -1, -1, 0) != 1 ||
        X509_set_issuer_name(x, name) != 1)
        goto err;
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    static const struct {
        int nid;
        const char *value;
    } exts[] = {
        {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"},
        {NID_ext_key_usage, "serverAuth,clientAuth"},
        {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
    };
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        ext = X509V3_EXT_conf_nid(NULL, &v3, exts[i].nid, exts[i].value);
        if (!ext || X509_add_ext(x, ext, -1) != 1)
            goto err;
        X509_EXTENSION_free(ext);
        ext = NULL;
    }
    if (X509_sign(x, key, EVP_sha256()) == 0)
        goto err;
    *key_out = key;
    *cert_out = x;
    return 0;
err:
    X509_EXTENSION_free(ext);
    EVP_PKEY_free(key);
    X509_free(x);
    return TLS_ERR_CRYPTO;
}

/* The certificate, the key and the CA of either side. */
static int load_identity(SSL_CTX *ctx, const struct tls_options *o, char *errbuf,
                         size_t errlen)
{
    if ((o->cert_file != NULL) != (o->key_file != NULL)) {
        snprintf(errbuf, errlen, "a certificate file and a key file go together");
        return TLS_ERR_INVAL;
    }
    if (o->cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1) {
            set_err(errbuf, errlen, "cannot load certificate", o->cert_file);
            return TLS_ERR_FILE;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            set_err(errbuf, errlen, "cannot load key", o->key_file);
            return TLS_ERR_FILE;
        }
    } else if (o->auto_tls) {
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        if (tls_self_cert(o->cn_hint, &key, &cert) != 0) {
            set_err(errbuf, errlen, "cannot generate the auto TLS certificate", NULL);
            return TLS_ERR_CRYPTO;
        }
        int ok = SSL_CTX_use_certificate(ctx, cert) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1;
        EVP_PKEY_free(key);
        X509_free(cert);
        if (!ok) {
            set_err(errbuf, errlen, "auto TLS certificate", NULL);
            return TLS_ERR_CRYPTO;
        }
    }
    if (o->ca_file && SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1) {
        set_err(errbuf, errlen, "cannot load trusted CA", o->ca_file);
        return TLS_ERR_FILE;
    }
    if (o->n_ciphers) {
        char list[1024];
        size_t used = 0;
        for (size_t i = 0; i < o->n_ciphers; i++) {
            int n = snprintf(list + used, sizeof list - used, "%s%s", i ? ":" : "",
                             o->ciphers[i]);
            if (n < 0 || (size_t)n >= sizeof list - used) {
                snprintf(errbuf, errlen, "too many cipher suites");
                return TLS_ERR_INVAL;
            }
            used += (size_t)n;
        }
        if (SSL_CTX_set_cipher_list(ctx, list) != 1) {
            set_err(errbuf, errlen, "cipher suites", list);
            return TLS_ERR_CRYPTO;
        }
    }
    return 0;
}

/* Every CRL in a PEM file, or the one in a DER file. */
static int load_crls(STACK_OF(X509_CRL) * *out, const char *file, char *errbuf, size_t errlen)
{
    BIO *bio = BIO_new_file(file, "rb");
    if (!bio) {
        set_err(errbuf, errlen, "cannot open CRL", file);
        return TLS_ERR_FILE;
    }
    STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
    if (!crls) {
        BIO_free(bio);
        return TLS_ERR_NOMEM;
    }
    X509_CRL *crl;
    while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_CRL_push(crls, crl)) {
            X509_CRL_free(crl);
            goto err;
        }
    }
    ERR_clear_error();
    if (sk_X509_CRL_num(crls) == 0 && BIO_reset(bio) == 0 &&
        (crl = d2i_X509_CRL_bio(bio, NULL)) != NULL && !sk_X509_CRL_push(crls, crl)) {
        X509_CRL_free(crl);
        goto err;
    }
    BIO_free(bio);
    if (sk_X509_CRL_num(crls) == 0) {
        sk_X509_CRL_free(crls);
        set_err(errbuf, errlen, "no CRL in", file);
        return TLS_ERR_FILE;
    }
    *out = crls;
    return 0;
err:
    BIO_free(bio);
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    return TLS_ERR_NOMEM;
}

/* Server side: OpenSSL's chain verdict, relaxed for auto TLS, then the
 * CRL: a revoked leaf is refused (etcd: "transport: certificate revoked"). */
static int on_verify(int ok, X509_STORE_CTX *sctx)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct ctx_data *d = ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_idx) : NULL;
    if (!d)
        return ok;
    if (d->accept_any)
        ok = 1;
    if (ok && d->crls && X509_STORE_CTX_get_error_depth(sctx) == 0) {
        X509 *cert = X509_STORE_CTX_get_current_cert(sctx);
        for (int i = 0; cert && i < sk_X509_CRL_num(d->crls); i++) {
            X509_REVOKED *rev = NULL;
            if (X509_CRL_get0_by_serial(sk_X509_CRL_value(d->crls, i), &rev,
                                        X509_get_serialNumber(cert)) == 1) {
                X509_STORE_CTX_set_error(sctx, X509_V_ERR_CERT_REVOKED);
                return 0;
            }
        }
    }
    if (ok && d->allowed_cn && X509_STORE_CTX_get_error_depth(sctx) == 0) {
        /* etcd: the leaf's subject CommonName must be the allowed one;
         * rejected as a bad certificate (the alert Go's server sends) */
        X509 *cert = X509_STORE_CTX_get_current_cert(sctx);
        char cn[256] = "";
        X509_NAME *subj = cert ? X509_get_subject_name(cert) : NULL;
        if (!subj || X509_NAME_get_text_by_NID(subj, NID_commonName, cn, sizeof cn) < 0 ||
            strcmp(cn, d->allowed_cn) != 0) {
            X509_STORE_CTX_set_error(sctx, X509_V_ERR_CERT_REJECTED);
            return 0;
        }
    }
    return ok;
}

/* ALPN: gRPC clients offer only "h2" and get it. A client that offers
 * "http/1.1" as well (curl, browsers) gets http/1.1 for now: etcd would
 * pick h2 and serve its gateway over HTTP/2, but our HTTP/2 connections
 * carry only gRPC so far, while /health, /metrics and the gateway are on
 * the HTTP/1.1 path. No ALPN at all: the sniffer decides. */
static int on_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const char *const prefs[] = {"http/1.1", "h2"};
    for (size_t p = 0; p < 2; p++) {
        size_t plen = strlen(prefs[p]);
        for (unsigned int i = 0; i < inlen;) {
            unsigned int n = in[i];
            if (i + 1 + n > inlen)
                return SSL_TLSEXT_ERR_NOACK;
            if (n == plen && memcmp(in + i + 1, prefs[p], n) == 0) {
                *out = in + i + 1;
                *outlen = (unsigned char)n;
                return SSL_TLSEXT_ERR_OK;
            }
            i += 1 + n;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

int tls_server_ctx_new(SSL_CTX **out, const struct tls_options *o, char *errbuf, size_t errlen)
{
    if (!o->cert_file && !o->key_file && !o->auto_tls) {
        snprintf(errbuf, errlen, "https listeners need a certificate and a key (or auto TLS)");
        return TLS_ERR_INVAL;
    }
    if (o->client_cert_auth && !o->ca_file && !o->auto_tls) {
        snprintf(errbuf, errlen, "client certificate authentication needs a trusted CA file");
        return TLS_ERR_INVAL;
    }
    if (!CRYPTO_THREAD_run_once(&ex_once, ex_init) || ex_idx < 0) {
        snprintf(errbuf, errlen, "TLS library initialisation failed");
        return TLS_ERR_CRYPTO;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        set_err(errbuf, errlen, "TLS server context", NULL);
        return TLS_ERR_NOMEM;
    }
    int rc;
    struct ctx_data *d = metcd_calloc(1, sizeof *d);
    if (!d || !SSL_CTX_set_ex_data(ctx, ex_idx, d)) {
        metcd_free(d);
        rc = TLS_ERR_NOMEM;
        snprintf(errbuf, errlen, "out of memory");
        goto err;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if ((rc = load_identity(ctx, o, errbuf, errlen)) != 0)
        goto err;
    if (o->crl_file && (rc = load_crls(&d->crls, o->crl_file, errbuf, errlen)) != 0)
        goto err;
    if (o->allowed_hostname &&
        X509_VERIFY_PARAM_set1_host(SSL_CTX_get0_param(ctx), o->allowed_hostname, 0) != 1) {
        set_err(errbuf, errlen, "allowed hostname", o->allowed_hostname);
        rc = TLS_ERR_CRYPTO;
        goto err;
    }
    if (o->allowed_cn && !(d->allowed_cn = metcd_strdup(o->allowed_cn))) {
        rc = TLS_ERR_NOMEM;
        snprintf(errbuf, errlen, "out of memory");
        goto err;
    }
    d->accept_any = o->auto_tls && !o->ca_file;
    int mode = SSL_VERIFY_NONE;
    if (o->client_cert_auth)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    /* without client-cert-auth no certificate is asked for (Go's
     * tls.NoClientCert, as etcd configures it) */
    SSL_CTX_set_verify(ctx, mode, on_verify);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, NULL);
    /* sessions are not resumed across listeners of different settings */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    *out = ctx;
    return 0;
err:
    SSL_CTX_free(ctx);
    return rc;
}

int tls_client_ctx_new(SSL_CTX **out, const struct tls_options *o, char *errbuf, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        set_err(errbuf, errlen, "TLS client context", NULL);
        return TLS_ERR_NOMEM;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    int rc = load_identity(ctx, o, errbuf, errlen);
    if (rc != 0)
        goto err;
    if (!o->ca_file && !o->insecure_skip_verify && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        set_err(errbuf, errlen, "system trust store", NULL);
        rc = TLS_ERR_FILE;
        goto err;
    }
    SSL_CTX_set_verify(ctx, o->insecure_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    static const unsigned char alpn[] = {2, 'h', '2'};
    if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn) != 0) {
        set_err(errbuf, errlen, "ALPN", NULL);
        rc = TLS_ERR_NOMEM;
        goto err;
    }
    *out = ctx;
    return 0;
err:
    SSL_CTX_free(ctx);
    return rc;
}

SSL *tls_client_ssl_new(SSL_CTX *ctx, const char *host)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    unsigned char addr[16];
    bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    if (!is_ip && SSL_set_tlsext_host_name(ssl, host) != 1)
        goto err;
    if (SSL_get_verify_mode(ssl) != SSL_VERIFY_NONE) {
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
                       : SSL_set1_host(ssl, host);
        if (ok != 1)
            goto err;
    }
    return ssl;
err:
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
}

void tls_error_text(const SSL *ssl, unsigned long code, char *buf, size_t len,
                    const char *fallback)
{
    if (!code)
        code = ERR_peek_last_error();
    const char *text = NULL;
    char tmp[200];
    if (code && ERR_GET_LIB(code) == ERR_LIB_SSL) {
        switch (ERR_GET_REASON(code)) {
        case SSL_R_WRONG_VERSION_NUMBER:
        case SSL_R_HTTP_REQUEST:
        case SSL_R_HTTPS_PROXY_REQUEST:
        case SSL_R_PACKET_LENGTH_TOO_LONG:
        case SSL_R_UNKNOWN_PROTOCOL:
            text = "tls: first record does not look like a TLS handshake";
            break;
        case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
            text = "remote error: tls: bad certificate";
            break;
        case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
            text = "remote error: tls: unknown certificate authority";
            break;
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
            text = "tls: client didn't provide a certificate";
            break;
        case SSL_R_NO_SHARED_CIPHER:
            text = "tls: no cipher suite supported by both client and server";
            break;
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
            /* etcd's own refusals (pkg/transport's verify hooks) */
            if (ssl && SSL_get_verify_result(ssl) == X509_V_ERR_HOSTNAME_MISMATCH) {
                text = "client certificate authentication failed";
            } else if (ssl && SSL_get_verify_result(ssl) == X509_V_ERR_CERT_REJECTED) {
                text = "CommonName authentication failed";
            } else if (ssl && SSL_get_verify_result(ssl) == X509_V_ERR_CERT_REVOKED) {
                text = "transport: certificate revoked";
            } else if (ssl && SSL_get_verify_result(ssl) != X509_V_OK) {
                snprintf(tmp, sizeof tmp, "tls: failed to verify certificate: %s",
                         X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
                text = tmp;
            } else {
                text = "tls: failed to verify certificate";
            }
            break;
        default:
            break;
        }
    }
    if (!text && code) {
        ERR_error_string_n(code, tmp, sizeof tmp);
        text = tmp;
    }
    snprintf(buf, len, "%s", text ? text : fallback);
    ERR_clear_error();
}
