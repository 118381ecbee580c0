/* tools/metcdctl/ctl.c - what every metcdctl command needs (ctl.h). */
#include "tools/metcdctl/ctl.h"

#include "common/mem.h"
#include "server/rpc/rpc.h"

#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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

static int connect_once(struct ctl *c)
{
    if (c->client)
        return 0;
    c->base = event_base_new();
    if (!c->base)
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    struct rpc_client_config cfg = {
        .endpoints = c->endpoints,
        .n_endpoints = c->n_endpoints,
        .dial_timeout_ms = c->dial_timeout_ms,
    };
    int rc = rpc_client_new(&c->client, c->base, &cfg);
    if (rc != 0) {
        c->client = NULL;
        return ctl_fail(c, CTL_EXIT_BAD_CONNECTION, "%s", rpc_strerror(rc));
    }
    return 0;
}

int ctl_unary(struct ctl *c, const char *path, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp)
{
    *resp = NULL;
    int rc = connect_once(c);
    if (rc != 0)
        return rc;
    enum rpc_code code = RPC_CODE_UNKNOWN;
    char *msg = NULL;
    rc = rpc_client_unary_sync(c->client, path, req, resp_desc, NULL, 0, c->command_timeout_ms,
                               resp, &code, &msg);
    if (rc != 0) {
        metcd_free(msg);
        return ctl_fail(c, CTL_EXIT_BAD_CONNECTION, "%s", rpc_strerror(rc));
    }
    if (code != RPC_CODE_OK) {
        /* etcdctl: the server's text; a connection that never came up is
         * "context deadline exceeded" with ExitBadConnection */
        int exit = code == RPC_CODE_UNAVAILABLE && msg && strstr(msg, "connect")
                       ? CTL_EXIT_BAD_CONNECTION
                       : CTL_EXIT_ERROR;
        if (code == RPC_CODE_DEADLINE_EXCEEDED)
            exit = CTL_EXIT_BAD_CONNECTION;
        ctl_fail(c, exit, "%s", msg && msg[0] ? msg : rpc_code_name(code));
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
}

int ctl_flags(struct ctl *c, int argc, char **argv, const char *const *names, const char **values,
              const char **pos, size_t max_pos, size_t *n_pos)
{
    *n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || !a[2]) {
            if (*n_pos == max_pos)
                return ctl_fail(c, CTL_EXIT_BAD_ARGS, "too many arguments: %s", a);
            pos[(*n_pos)++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        size_t k = 0;
        while (names[k] && !(strlen(names[k]) == nl && !strncmp(names[k], a, nl)))
            k++;
        if (!names[k])
            return ctl_fail(c, CTL_EXIT_BAD_ARGS, "unknown flag: %.*s", (int)nl, a);
        if (eq) {
            values[k] = eq + 1;
        } else if (i + 1 < argc) {
            values[k] = argv[++i];
        } else {
            return ctl_fail(c, CTL_EXIT_BAD_ARGS, "flag needs an argument: %s", a);
        }
    }
    return 0;
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

int ctl_parse_duration_ms(const char *s, uint32_t *ms)
{
    if (!s || !s[0])
        return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    double mult;
    if (!*end || !strcmp(end, "s"))
        mult = 1000;
    else if (!strcmp(end, "ms"))
        mult = 1;
    else if (!strcmp(end, "m"))
        mult = 60000;
    else if (!strcmp(end, "h"))
        mult = 3600000;
    else
        return -1;
    double r = v * mult;
    if (r > 4e9)
        return -1;
    *ms = (uint32_t)r;
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

void ctl_json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}
