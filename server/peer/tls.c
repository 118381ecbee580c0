/* server/peer/tls.c - OpenSSL contexts for https:// peer URLs: files from
 * --peer-cert-file/--peer-key-file/--peer-trusted-ca-file, or a self-signed
 * certificate made at start (--peer-auto-tls, as etcd's
 * transport.SelfCert, kept in memory here). */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "server/peer/internal.h"

static void tls_err(char *errbuf, size_t errlen, const char *what, const char *file)
{
    char e[160] = "";
    unsigned long code = ERR_get_error();
    if (code)
        ERR_error_string_n(code, e, sizeof(e));
    snprintf(errbuf, errlen, "%s%s%s: %s", what, file ? " " : "", file ? file : "",
             e[0] ? e : "failed");
    ERR_clear_error();
}

/* A P-256 key and a self-signed certificate for one year, with the names a
 * loopback cluster dials. Caller frees both. */
static int self_cert(EVP_PKEY **key_out, X509 **cert_out)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!key || !x)
        goto err;
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(peer_now_ns() & 0x7fffffff));
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600);
    if (X509_set_version(x, 2) != 1 || X509_set_pubkey(x, key) != 1)
        goto err;
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"metcd", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"metcd peer", -1,
                               -1, 0);
    if (X509_set_issuer_name(x, name) != 1)
        goto err;
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext =
        X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
    if (!ext)
        goto err;
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, "serverAuth,clientAuth");
    if (ext) {
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (X509_sign(x, key, EVP_sha256()) == 0)
        goto err;
    *key_out = key;
    *cert_out = x;
    return 0;
err:
    EVP_PKEY_free(key);
    X509_free(x);
    return -1;
}

static int ctx_setup(struct peer_transport *t, SSL_CTX *ctx, EVP_PKEY *key, X509 *cert,
                     char *errbuf, size_t errlen)
{
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (cert) {
        if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
            tls_err(errbuf, errlen, "auto TLS certificate", NULL);
            return PEER_ERR_TLS;
        }
    } else if (t->cert_file && t->key_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1) {
            tls_err(errbuf, errlen, "cannot load peer certificate", t->cert_file);
            return PEER_ERR_TLS;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, t->key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            tls_err(errbuf, errlen, "cannot load peer key", t->key_file);
            return PEER_ERR_TLS;
        }
    }
    if (t->ca_file && SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL) != 1) {
        tls_err(errbuf, errlen, "cannot load peer trusted CA", t->ca_file);
        return PEER_ERR_TLS;
    }
    return 0;
}

static int on_verify_any(int ok, X509_STORE_CTX *store)
{
    (void)ok;
    (void)store;
    return 1;
}

int peer_tls_init(struct peer_transport *t, bool need_server, char *errbuf, size_t errlen)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int rc = PEER_ERR_TLS;
    bool have_files = t->cert_file && t->key_file;
    if ((t->cert_file != NULL) != (t->key_file != NULL)) {
        snprintf(errbuf, errlen, "--peer-cert-file and --peer-key-file go together");
        return PEER_ERR_INVAL;
    }
    if (need_server && !have_files && !t->cfg.auto_tls) {
        snprintf(errbuf, errlen,
                 "https peer URLs need --peer-cert-file and --peer-key-file "
                 "(or --peer-auto-tls)");
        return PEER_ERR_INVAL;
    }
    if (t->cfg.client_cert_auth && !t->ca_file && !t->cfg.auto_tls) {
        snprintf(errbuf, errlen, "--peer-client-cert-auth needs --peer-trusted-ca-file");
        return PEER_ERR_INVAL;
    }
    if (!have_files && t->cfg.auto_tls && self_cert(&key, &cert) != 0) {
        tls_err(errbuf, errlen, "cannot generate the auto TLS certificate", NULL);
        return PEER_ERR_TLS;
    }
    /* Dialing: present our certificate; verify the server against the CA
     * unless the certificates are self-signed (auto TLS skips it, as etcd). */
    t->ssl_client = SSL_CTX_new(TLS_client_method());
    if (!t->ssl_client) {
        tls_err(errbuf, errlen, "TLS client context", NULL);
        goto out;
    }
    if ((rc = ctx_setup(t, t->ssl_client, key, cert, errbuf, errlen)) != 0)
        goto out;
    SSL_CTX_set_verify(t->ssl_client,
                       t->ca_file && !t->cfg.auto_tls ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (have_files || cert) {
        t->ssl_server = SSL_CTX_new(TLS_server_method());
        if (!t->ssl_server) {
            rc = PEER_ERR_TLS;
            tls_err(errbuf, errlen, "TLS server context", NULL);
            goto out;
        }
        if ((rc = ctx_setup(t, t->ssl_server, key, cert, errbuf, errlen)) != 0)
            goto out;
        int mode = SSL_VERIFY_NONE;
        if (t->cfg.client_cert_auth)
            mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        /* With auto TLS every member's certificate is self-signed: require
         * one but accept it, as etcd does with --peer-auto-tls. */
        SSL_CTX_set_verify(t->ssl_server, mode,
                           t->cfg.auto_tls && !t->ca_file && t->cfg.client_cert_auth ? on_verify_any
                                                                                     : NULL);
    }
    rc = 0;
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

void peer_tls_free(struct peer_transport *t)
{
    SSL_CTX_free(t->ssl_server);
    SSL_CTX_free(t->ssl_client);
    t->ssl_server = t->ssl_client = NULL;
}
