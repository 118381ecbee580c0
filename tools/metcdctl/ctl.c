/* tools/metcdctl/ctl.c - the connection, calls, errors and small parsers
 * every metcdctl command uses (ctl.h). */
#include "tools/metcdctl/ctl.h"

#include "common/mem.h"
#include "server/etcdserverpb/rpc.pb-c.h"
#include "server/rpc/rpc.h"
#include "server/tls/tls.h"

#include <errno.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

int ctl_fail(struct ctl *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("Error: ", c->err);
    vfprintf(c->err, fmt, ap);
    fputc('\n', c->err);
    va_end(ap);
    return code;
}

/* etcdctl asks for a missing password on the terminal without echo
 * (speakeasy): "Password: ". */
static int ask_password(struct ctl *c, char *buf, size_t len)
{
    FILE *tty = fopen("/dev/tty", "r+");
    FILE *in = tty ? tty : c->in;
    fputs("Password: ", tty ? tty : c->err);
    fflush(tty ? tty : c->err);
    struct termios old, quiet;
    bool restore = false;
    if (tty && tcgetattr(fileno(tty), &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        restore = tcsetattr(fileno(tty), TCSAFLUSH, &quiet) == 0;
    }
    char *r = fgets(buf, (int)len, in);
    if (restore)
        tcsetattr(fileno(tty), TCSAFLUSH, &old);
    if (tty) {
        fputc('\n', tty);
        fclose(tty);
    }
    if (!r)
        return -1;
    buf[strcspn(buf, "\r\n")] = 0;
    return 0;
}

static int authenticate(struct ctl *c)
{
    char user[256], pass[256];
    const char *colon = strchr(c->user, ':');
    if (c->password && c->password[0]) {
        snprintf(user, sizeof(user), "%s", c->user);
        snprintf(pass, sizeof(pass), "%s", c->password);
    } else if (colon) {
        snprintf(user, sizeof(user), "%.*s", (int)(colon - c->user), c->user);
        snprintf(pass, sizeof(pass), "%s", colon + 1);
    } else {
        snprintf(user, sizeof(user), "%s", c->user);
        if (ask_password(c, pass, sizeof(pass)) != 0)
            return ctl_fail(c, CTL_EXIT_ERROR, "EOF");
    }
    Etcdserverpb__AuthenticateRequest req = ETCDSERVERPB__AUTHENTICATE_REQUEST__INIT;
    req.name = user;
    req.password = pass;
    ProtobufCMessage *m = NULL;
    int code = 0;
    char *msg = NULL;
    uint32_t t = c->dial_timeout_ms ? c->dial_timeout_ms : 2000;
    int rc = ctl_unary_quiet(c, "/etcdserverpb.Auth/Authenticate", &req.base,
                             &etcdserverpb__authenticate_response__descriptor, t, &m, &code, &msg);
    explicit_bzero(pass, sizeof(pass));
    if (rc != 0 || code != RPC_CODE_OK) {
        rc = ctl_fail(c, CTL_EXIT_BAD_CONNECTION, "%s",
                      rc != 0                 ? "context deadline exceeded"
                      : msg && msg[0]         ? msg
                                              : rpc_code_name(code));
        metcd_free(msg);
        return rc;
    }
    metcd_free(msg);
    Etcdserverpb__AuthenticateResponse *r = (Etcdserverpb__AuthenticateResponse *)m;
    c->token = metcd_strdup(r->token ? r->token : "");
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    if (!c->token)
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    return 0;
}

static int make_tls(struct ctl *c)
{
    bool want = (c->cert && c->cert[0]) || (c->key && c->key[0]) || (c->cacert && c->cacert[0]) ||
                !c->insecure_transport;
    for (size_t i = 0; i < c->n_endpoints; i++)
        if (!strncmp(c->endpoints[i], "https://", 8))
            want = true;
    if (!want)
        return 0;
    struct tls_options o = {
        .cert_file = c->cert && c->cert[0] ? c->cert : NULL,
        .key_file = c->key && c->key[0] ? c->key : NULL,
        .ca_file = c->cacert && c->cacert[0] ? c->cacert : NULL,
        .insecure_skip_verify = c->insecure_skip_verify,
    };
    char err[256] = "";
    int rc = tls_client_ctx_new(&c->tls, &o, err, sizeof(err));
    if (rc != 0) {
        c->tls = NULL;
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "%s", err[0] ? err : tls_strerror(rc));
    }
    return 0;
}

int ctl_connect(struct ctl *c)
{
    if (c->client)
        return 0;
    int rc = make_tls(c);
    if (rc != 0)
        return rc;
    c->base = event_base_new();
    if (!c->base)
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    struct rpc_client_config cfg = {
        .endpoints = c->endpoints,
        .n_endpoints = c->n_endpoints,
        .dial_timeout_ms = c->dial_timeout_ms,
        .max_recv_msg_size = (size_t)INT32_MAX, /* etcdctl: math.MaxInt32 */
        .tls = c->tls,
        /* --keepalive-time/--keepalive-timeout; grpc-go raises a time
         * under 10 s to 10 s (and etcd's servers refuse pings closer than
         * 5 s), so a watch on a member that hangs ends within ~16 s and
         * resumes on another endpoint */
        .keepalive_time_ms = c->keepalive_time_ms && c->keepalive_time_ms < 10000
                                 ? 10000
                                 : c->keepalive_time_ms,
        .keepalive_timeout_ms = c->keepalive_timeout_ms,
    };
    rc = rpc_client_new(&c->client, c->base, &cfg);
    if (rc != 0) {
        c->client = NULL;
        return ctl_fail(c, CTL_EXIT_BAD_CONNECTION, "%s", rpc_strerror(rc));
    }
    if (c->user && c->user[0])
        return authenticate(c);
    return 0;
}

const struct rpc_md *ctl_md(struct ctl *c, size_t *n)
{
    static struct rpc_md md[1];
    if (!c->token) {
        *n = 0;
        return NULL;
    }
    md[0].key = "token";
    md[0].value = c->token;
    *n = 1;
    return md;
}

int ctl_unary_quiet(struct ctl *c, const char *path, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, uint32_t timeout_ms,
                    ProtobufCMessage **resp, int *code, char **msg)
{
    *resp = NULL;
    *msg = NULL;
    *code = RPC_CODE_UNKNOWN;
    size_t n_md;
    const struct rpc_md *md = ctl_md(c, &n_md);
    enum rpc_code rcode = RPC_CODE_UNKNOWN;
    int rc = rpc_client_unary_sync(c->client, path, req, resp_desc, md, n_md, timeout_ms, resp,
                                   &rcode, msg);
    *code = (int)rcode;
    return rc;
}

int ctl_unary_exit(struct ctl *c, const char *path, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *resp_desc, uint32_t timeout_ms,
                   int exit_code, ProtobufCMessage **resp)
{
    int code;
    char *msg;
    int rc = ctl_unary_quiet(c, path, req, resp_desc, timeout_ms, resp, &code, &msg);
    if (rc != 0 || code != RPC_CODE_OK) {
        rc = ctl_fail(c, exit_code, "%s",
                      rc != 0         ? rpc_strerror(rc)
                      : msg && msg[0] ? msg
                                      : rpc_code_name(code));
        metcd_free(msg);
        if (*resp)
            protobuf_c_message_free_unpacked(*resp, &metcd_pb_allocator);
        *resp = NULL;
        return rc;
    }
    metcd_free(msg);
    return 0;
}

int ctl_unary(struct ctl *c, const char *path, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp)
{
    *resp = NULL;
    int rc = ctl_connect(c);
    if (rc != 0)
        return rc;
    int code;
    char *msg;
    rc = ctl_unary_quiet(c, path, req, resp_desc, c->command_timeout_ms, resp, &code, &msg);
    if (rc != 0) {
        metcd_free(msg);
        return ctl_fail(c, CTL_EXIT_BAD_CONNECTION, "%s", rpc_strerror(rc));
    }
    if (code != RPC_CODE_OK) {
        /* etcdctl: the server's text with ExitError; a call that never
         * got through (no connection, deadline) is "context deadline
         * exceeded", also ExitError */
        int exit = CTL_EXIT_ERROR;
        const char *text = msg && msg[0] ? msg : rpc_code_name(code);
        if (code == RPC_CODE_DEADLINE_EXCEEDED ||
            (code == RPC_CODE_UNAVAILABLE && rpc_client_endpoint(c->client) < 0))
            text = "context deadline exceeded";
        ctl_fail(c, exit, "%s", text);
        metcd_free(msg);
        if (*resp)
            protobuf_c_message_free_unpacked(*resp, &metcd_pb_allocator);
        *resp = NULL;
        return exit;
    }
    metcd_free(msg);
    return 0;
}

void ctl_close(struct ctl *c)
{
    rpc_client_free(c->client);
    c->client = NULL;
    if (c->base)
        event_base_free(c->base);
    c->base = NULL;
    if (c->tls)
        SSL_CTX_free(c->tls);
    c->tls = NULL;
    metcd_free(c->token);
    c->token = NULL;
}

int ctl_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!s || !s[0])
        return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int ctl_set_endpoints(struct ctl *c, const char *list)
{
    if (!list || !list[0] || strlen(list) >= sizeof(c->endpoints_buf))
        return -1;
    strcpy(c->endpoints_buf, list);
    c->n_endpoints = 0;
    for (char *p = c->endpoints_buf; p;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = 0;
        if (!p[0] || c->n_endpoints == CTL_MAX_ENDPOINTS)
            return -1;
        c->endpoints[c->n_endpoints++] = p;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}
