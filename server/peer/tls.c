/* server/peer/tls.c - OpenSSL contexts for https:// peer URLs, built by
 * server/tls from --peer-cert-file/--peer-key-file/--peer-trusted-ca-file,
 * --peer-client-cert-auth, --peer-auto-tls (a self-signed certificate made
 * at start), --peer-crl-file, --peer-cert-allowed-cn,
 * --peer-cert-allowed-hostname and --cipher-suites. */
#include <stdio.h>
#include <string.h>

#include "server/peer/internal.h"
#include "server/tls/tls.h"

int peer_tls_init(struct peer_transport *t, const peer_config *cfg, bool need_server,
                  char *errbuf, size_t errlen)
{
    bool have_files = t->cert_file && t->key_file;
    if ((t->cert_file != NULL) != (t->key_file != NULL)) {
        snprintf(errbuf, errlen, "--peer-cert-file and --peer-key-file go together");
        return PEER_ERR_INVAL;
    }
    if (need_server && !have_files && !cfg->auto_tls) {
        snprintf(errbuf, errlen,
                 "https peer URLs need --peer-cert-file and --peer-key-file "
                 "(or --peer-auto-tls)");
        return PEER_ERR_INVAL;
    }
    if (cfg->client_cert_auth && !t->ca_file && !cfg->auto_tls) {
        snprintf(errbuf, errlen, "--peer-client-cert-auth needs --peer-trusted-ca-file");
        return PEER_ERR_INVAL;
    }
    struct tls_options o = {
        .cert_file = t->cert_file,
        .key_file = t->key_file,
        .ca_file = t->ca_file,
        .crl_file = cfg->crl_file,
        .client_cert_auth = cfg->client_cert_auth,
        .auto_tls = cfg->auto_tls && !have_files,
        /* dialing verifies the server against the CA when there is one
         * and the certificates are not self-signed (etcd skips it then) */
        .insecure_skip_verify = cfg->auto_tls || !t->ca_file,
        .allowed_hostname = cfg->allowed_hostname,
        .allowed_cn = cfg->allowed_cn,
        .ciphers = cfg->ciphers,
        .n_ciphers = cfg->n_ciphers,
        .cn_hint = "metcd peer",
    };
    if (!have_files && !cfg->auto_tls) {
        /* plain dialing of https peers without a certificate of ours:
         * a client context with the CA only */
        o.auto_tls = false;
    }
    int rc = tls_client_ctx_new(&t->ssl_client, &o, errbuf, errlen);
    if (rc == 0 && (have_files || cfg->auto_tls))
        rc = tls_server_ctx_new(&t->ssl_server, &o, errbuf, errlen);
    if (rc) {
        peer_tls_free(t);
        return rc == TLS_ERR_NOMEM ? PEER_ERR_NOMEM
               : rc == TLS_ERR_INVAL ? PEER_ERR_INVAL
                                     : PEER_ERR_TLS;
    }
    return 0;
}

void peer_tls_free(struct peer_transport *t)
{
    SSL_CTX_free(t->ssl_server);
    SSL_CTX_free(t->ssl_client);
    t->ssl_server = t->ssl_client = NULL;
}
