/* server/tls/tls.h - OpenSSL contexts built from etcd 3.4's TLS flags, shared
 * by the client listeners (server/rpc), our gRPC client and the peer
 * transport: certificate and key files or a self-signed certificate made at
 * start (--auto-tls / --peer-auto-tls, as etcd's transport.SelfCert, kept in
 * memory), a trusted CA, client-certificate authentication, a CRL checked
 * the way etcd checks it (a revoked serial is refused; the CRL's own dates
 * and signature are not judged, as Go's crypto/tls wrapper in etcd does
 * not), an allowed hostname for client certificates, cipher suites, and
 * ALPN (server: "h2" when offered, else "http/1.1"; client: "h2").
 *
 * Errors: functions returning int give 0 or a negative `enum tls_error`
 * (range -1800..-1899); the cause is written to errbuf. */
#ifndef METCD_SERVER_TLS_H
#define METCD_SERVER_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

enum tls_error {
    TLS_OK = 0,
    TLS_ERR_NOMEM = -1800, /* allocation failed */
    TLS_ERR_INVAL = -1801, /* flags that do not go together */
    TLS_ERR_FILE = -1802,  /* a certificate, key, CA or CRL file did not load */
    TLS_ERR_CRYPTO = -1803 /* OpenSSL refused (key generation, cipher list...) */
};

/* Static text for an enum tls_error value (never NULL). */
const char *tls_strerror(int err);

struct tls_options {
    const char *cert_file; /* PEM chain; with key_file, or neither */
    const char *key_file;
    const char *ca_file;   /* trusted CA (PEM), optional */
    const char *crl_file;  /* server: revoked client certificates (PEM or DER) */
    /* server: a client certificate is required and verified against ca_file
     * (or, with auto_tls and no CA, required and accepted as etcd does) */
    bool client_cert_auth;
    /* no cert_file/key_file: make a self-signed certificate (CN cn_hint) */
    bool auto_tls;
    /* client: do not verify the server (etcdctl --insecure-skip-tls-verify,
     * or a self-signed --auto-tls cluster) */
    bool insecure_skip_verify;
    /* server: the client certificate must be valid for this DNS name or IP
     * (--client-cert-allowed-hostname / --peer-cert-allowed-hostname) */
    const char *allowed_hostname;
    /* server: the client certificate's subject CN must equal this
     * (--peer-cert-allowed-cn) */
    const char *allowed_cn;
    /* OpenSSL names of the TLS 1.2 cipher suites allowed (config.h's
     * config_cipher_openssl_name maps Go's); none: OpenSSL's defaults */
    const char *const *ciphers;
    size_t n_ciphers;
    const char *cn_hint; /* auto_tls certificate's CN ("metcd" when NULL) */
};

/* A server context for a listener. Paths are read now (not kept). The
 * caller frees *out with SSL_CTX_free. TLS_ERR_INVAL when there is neither
 * a certificate nor auto_tls, or cert_file comes without key_file. */
int tls_server_ctx_new(SSL_CTX **out, const struct tls_options *o, char *errbuf, size_t errlen);

/* A client context: verifies the server against ca_file (the system store
 * when there is none) unless insecure_skip_verify; presents cert_file/
 * key_file when given (or a self-signed one with auto_tls); offers ALPN
 * "h2". Caller frees *out with SSL_CTX_free. Host name checks are per
 * connection (tls_client_ssl_new). */
int tls_client_ctx_new(SSL_CTX **out, const struct tls_options *o, char *errbuf, size_t errlen);

/* A client SSL for dialing `host` (SNI unless host is an IP address; the
 * certificate must name it unless the context skips verification). NULL
 * when out of memory. Caller owns it (bufferevent_openssl takes it). */
SSL *tls_client_ssl_new(SSL_CTX *ctx, const char *host);

/* A P-256 key and a self-signed certificate valid for a year, for
 * localhost, 127.0.0.1 and ::1, usable for server and client auth. Caller
 * frees both (EVP_PKEY_free, X509_free). */
int tls_self_cert(const char *cn, EVP_PKEY **key_out, X509 **cert_out);

/* Writes OpenSSL error `code` (0: the last queued one), or `fallback`
 * when there is none, to buf and clears the queue: for log lines about failed handshakes, in Go's wording for the
 * common ones ("tls: first record does not look like a TLS handshake",
 * "remote error: tls: bad certificate"). ssl (optional) adds the
 * certificate verification result. */
void tls_error_text(const SSL *ssl, unsigned long code, char *buf, size_t len,
                    const char *fallback);

#endif
