/* tools/metcdctl/cmd_lease.c - etcdctl 3.4's lease commands:
 *
 *   lease grant <ttl>
 *   lease revoke <leaseID>
 *   lease timetolive <leaseID> [--keys]
 *   lease list
 *   lease keep-alive [--once] <leaseID>
 *
 * Lease IDs are taken and printed in hex (etcdctl's leaseFromArgs,
 * strconv.ParseInt(arg, 16, 64)). etcdctl prints clientv3's own response
 * structs here, not the protobuf messages: -w json shows the embedded
 * ResponseHeader's fields at the top level ("ID"/"TTL" for grant and
 * keep-alive, "id"/"ttl"/"granted-ttl"/"keys" for timetolive), and -w
 * protobuf marshals only that embedded header. revoke prints the protobuf
 * response itself, except under -w protobuf, which etcdctl refuses for
 * it. No lease command has a table. */
#include "tools/metcdctl/ctl.h"
#include "tools/metcdctl/ctl_session.h"

#include "common/mem.h"
#include "server/etcdserverpb/rpc.pb-c.h"
#include "server/rpc/rpc.h"

#include <event2/event.h>
#include <inttypes.h>
#include <string.h>

int ctl_lease_parse_id(struct ctl *c, const char *s, int64_t *id)
{
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    const char *why = NULL;
    if (!*p)
        why = "invalid syntax";
    for (; *p && !why; p++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (*p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else if (*p >= 'A' && *p <= 'F')
            d = (unsigned)(*p - 'A' + 10);
        else
            d = 16; /* Go takes '_' only after a base prefix, never here */
        if (d > 15) {
            why = "invalid syntax";
            break;
        }
        if (v > (lim - d) / 16)
            why = "value out of range";
        else
            v = v * 16 + d;
    }
    if (why)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "bad lease ID arg (strconv.ParseInt: parsing \"%s\": %s), expecting ID in "
                        "Hex",
                        s, why);
    *id = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

void ctl_json_header_fields(FILE *out, const Etcdserverpb__ResponseHeader *h, bool *first)
{
    if (!h)
        return;
    struct {
        const char *name;
        uint64_t v;
        bool sign;
    } f[] = {{"cluster_id", h->cluster_id, false},
             {"member_id", h->member_id, false},
             {"revision", (uint64_t)h->revision, true},
             {"raft_term", h->raft_term, false}};
    for (size_t i = 0; i < 4; i++) {
        if (!f[i].v)
            continue;
        fprintf(out, "%s\"%s\":", *first ? "" : ",", f[i].name);
        if (f[i].sign)
            fprintf(out, "%" PRId64, (int64_t)f[i].v);
        else
            fprintf(out, "%" PRIu64, f[i].v);
        *first = false;
    }
}

/* The formats clientv3's lease structs support: table is refused. */
static int check_format(struct ctl *c)
{
    if (c->format == CTL_FORMAT_TABLE)
        return ctl_fail(c, CTL_EXIT_BAD_FEATURE, "table not supported as output format");
    return 0;
}

/* Grant and KeepAlive responses print alike. */
static void print_id_ttl(struct ctl *c, const Etcdserverpb__ResponseHeader *h, int64_t id,
                         int64_t ttl, const char *error, const char *simple_fmt)
{
    bool first = true;
    switch (c->format) {
    case CTL_FORMAT_JSON:
        fputc('{', c->out);
        ctl_json_header_fields(c->out, h, &first);
        fprintf(c->out, "%s\"ID\":%" PRId64 ",\"TTL\":%" PRId64, first ? "" : ",", id, ttl);
        if (error) {
            fputs(",\"Error\":", c->out);
            ctl_json_str(c->out, error);
        }
        fputs("}\n", c->out);
        break;
    case CTL_FORMAT_FIELDS:
        ctl_fields_header(c, &h->base);
        fprintf(c->out, "\"ID\" : %" PRId64 "\n\"TTL\" : %" PRId64 "\n", id, ttl);
        break;
    case CTL_FORMAT_PROTOBUF:
        if (h)
            ctl_print_protobuf(c, &h->base);
        break;
    default:
        fprintf(c->out, simple_fmt, (uint64_t)id, ttl);
        break;
    }
    fflush(c->out);
}

static int cmd_grant(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "lease grant command needs TTL argument");
    Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    char err[160];
    /* strconv.ParseInt(s, 10, 64): decimal only, no base prefix */
    const char *d = a->pos[0] + (a->pos[0][0] == '+' || a->pos[0][0] == '-');
    if (!d[0] || strspn(d, "0123456789") != strlen(d))
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "bad TTL (strconv.ParseInt: parsing \"%s\": invalid syntax)", a->pos[0]);
    if (ctl_go_parse_int(a->pos[0], &req.ttl, err, sizeof(err)) != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "bad TTL (%s)", err);
    int rc = ctl_connect(c);
    if (rc != 0)
        return rc;
    ProtobufCMessage *m;
    int code;
    char *msg;
    rc = ctl_unary_quiet(c, "/etcdserverpb.Lease/LeaseGrant", &req.base,
                         &etcdserverpb__lease_grant_response__descriptor, c->command_timeout_ms, &m,
                         &code, &msg);
    if (rc != 0 || code != RPC_CODE_OK) {
        rc = ctl_fail(c, CTL_EXIT_ERROR, "failed to grant lease (%s)",
                      rc != 0 || code == RPC_CODE_DEADLINE_EXCEEDED ? "context deadline exceeded"
                      : msg && msg[0]                               ? msg
                                                                    : rpc_code_name(code));
        metcd_free(msg);
        if (m)
            protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
        return rc;
    }
    metcd_free(msg);
    Etcdserverpb__LeaseGrantResponse *r = (Etcdserverpb__LeaseGrantResponse *)m;
    if ((rc = check_format(c)) == 0)
        print_id_ttl(c, r->header, r->id, r->ttl, r->error ? r->error : "",
                     "lease %016" PRIx64 " granted with TTL(%" PRId64 "s)\n");
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return rc;
}

/* Go's %v of a struct whose one field is a *ResponseHeader: the header's
 * compact proto text in braces, as etcdctl's protobuf refusal shows it. */
static void go_header_text(char *buf, size_t len, const Etcdserverpb__ResponseHeader *h)
{
    size_t n = (size_t)snprintf(buf, len, "{");
    if (h) {
        if (h->cluster_id && n < len)
            n += (size_t)snprintf(buf + n, len - n, "cluster_id:%" PRIu64 " ", h->cluster_id);
        if (h->member_id && n < len)
            n += (size_t)snprintf(buf + n, len - n, "member_id:%" PRIu64 " ", h->member_id);
        if (h->revision && n < len)
            n += (size_t)snprintf(buf + n, len - n, "revision:%" PRId64 " ", h->revision);
        if (h->raft_term && n < len)
            n += (size_t)snprintf(buf + n, len - n, "raft_term:%" PRIu64 " ", h->raft_term);
    } else if (n < len) {
        n += (size_t)snprintf(buf + n, len - n, "<nil>");
    }
    if (n < len)
        snprintf(buf + n, len - n, "}");
}

static int cmd_revoke(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "lease revoke command needs 1 argument");
    Etcdserverpb__LeaseRevokeRequest req = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
    int rc = ctl_lease_parse_id(c, a->pos[0], &req.id);
    if (rc != 0)
        return rc;
    if ((rc = ctl_connect(c)) != 0)
        return rc;
    ProtobufCMessage *m;
    int code;
    char *msg;
    rc = ctl_unary_quiet(c, "/etcdserverpb.Lease/LeaseRevoke", &req.base,
                         &etcdserverpb__lease_revoke_response__descriptor, c->command_timeout_ms,
                         &m, &code, &msg);
    if (rc != 0 || code != RPC_CODE_OK) {
        rc = ctl_fail(c, CTL_EXIT_ERROR, "failed to revoke lease (%s)",
                      rc != 0 || code == RPC_CODE_DEADLINE_EXCEEDED ? "context deadline exceeded"
                      : msg && msg[0]                               ? msg
                                                                    : rpc_code_name(code));
        metcd_free(msg);
        if (m)
            protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
        return rc;
    }
    metcd_free(msg);
    Etcdserverpb__LeaseRevokeResponse *r = (Etcdserverpb__LeaseRevokeResponse *)m;
    switch (c->format) {
    case CTL_FORMAT_JSON:
        ctl_print_json(c, m);
        break;
    case CTL_FORMAT_FIELDS:
        ctl_fields_header(c, r->header ? &r->header->base : NULL);
        break;
    case CTL_FORMAT_PROTOBUF: {
        char text[256];
        go_header_text(text, sizeof(text), r->header);
        rc = ctl_fail(c, CTL_EXIT_BAD_FEATURE,
                      "marshal unsupported for type clientv3.LeaseRevokeResponse (%s)", text);
        break;
    }
    case CTL_FORMAT_TABLE:
        rc = check_format(c);
        break;
    default:
        fprintf(c->out, "lease %016" PRIx64 " revoked\n", (uint64_t)req.id);
        break;
    }
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return rc;
}

static int cmd_timetolive(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "lease timetolive command needs lease ID as argument");
    Etcdserverpb__LeaseTimeToLiveRequest req = ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
    int rc = ctl_lease_parse_id(c, a->pos[0], &req.id);
    if (rc != 0)
        return rc;
    bool keys = ctl_bool(a, "keys");
    req.keys = keys;
    if ((rc = ctl_connect(c)) != 0)
        return rc;
    ProtobufCMessage *m;
    rc = ctl_unary_exit(c, "/etcdserverpb.Lease/LeaseTimeToLive", &req.base,
                        &etcdserverpb__lease_time_to_live_response__descriptor, 0, CTL_EXIT_BAD_CONNECTION,
                        &m);
    if (rc != 0)
        return rc;
    Etcdserverpb__LeaseTimeToLiveResponse *r = (Etcdserverpb__LeaseTimeToLiveResponse *)m;
    bool first = true;
    switch (c->format) {
    case CTL_FORMAT_JSON:
        fputc('{', c->out);
        ctl_json_header_fields(c->out, r->header, &first);
        fprintf(c->out, "%s\"id\":%" PRId64 ",\"ttl\":%" PRId64 ",\"granted-ttl\":%" PRId64,
                first ? "" : ",", r->id, r->ttl, r->grantedttl);
        fputs(",\"keys\":", c->out);
        if (!r->n_keys)
            fputs("null", c->out);
        for (size_t i = 0; i < r->n_keys; i++) {
            fputs(i ? ",\"" : "[\"", c->out);
            ctl_base64(c->out, r->keys[i].data, r->keys[i].len);
            fputc('"', c->out);
        }
        fputs(r->n_keys ? "]}\n" : "}\n", c->out);
        break;
    case CTL_FORMAT_FIELDS:
        ctl_fields_header(c, r->header ? &r->header->base : NULL);
        fprintf(c->out,
                "\"ID\" : %" PRId64 "\n\"TTL\" : %" PRId64 "\n\"GrantedTTL\" : %" PRId64 "\n",
                r->id, r->ttl, r->grantedttl);
        for (size_t i = 0; i < r->n_keys; i++) {
            fputs("\"Key\" : ", c->out);
            ctl_go_quote(c->out, r->keys[i].data, r->keys[i].len);
            fputc('\n', c->out);
        }
        break;
    case CTL_FORMAT_PROTOBUF:
        if (r->header)
            rc = ctl_print_protobuf(c, &r->header->base);
        break;
    case CTL_FORMAT_TABLE:
        rc = check_format(c);
        break;
    default:
        if (r->grantedttl == 0 && r->ttl == -1) {
            fprintf(c->out, "lease %016" PRIx64 " already expired\n", (uint64_t)r->id);
            break;
        }
        fprintf(c->out,
                "lease %016" PRIx64 " granted with TTL(%" PRId64 "s), remaining(%" PRId64 "s)",
                (uint64_t)r->id, r->grantedttl, r->ttl);
        if (keys) {
            fputs(", attached keys([", c->out);
            for (size_t i = 0; i < r->n_keys; i++) {
                if (i)
                    fputc(' ', c->out);
                fwrite(r->keys[i].data, 1, r->keys[i].len, c->out);
            }
            fputs("])", c->out);
        }
        fputc('\n', c->out);
        break;
    }
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return rc;
}

static int cmd_list(struct ctl *c, const struct ctl_args *a)
{
    (void)a;
    Etcdserverpb__LeaseLeasesRequest req = ETCDSERVERPB__LEASE_LEASES_REQUEST__INIT;
    int rc = ctl_connect(c);
    if (rc != 0)
        return rc;
    ProtobufCMessage *m;
    rc = ctl_unary_exit(c, "/etcdserverpb.Lease/LeaseLeases", &req.base,
                        &etcdserverpb__lease_leases_response__descriptor, 0, CTL_EXIT_BAD_CONNECTION,
                        &m);
    if (rc != 0)
        return rc;
    Etcdserverpb__LeaseLeasesResponse *r = (Etcdserverpb__LeaseLeasesResponse *)m;
    bool first = true;
    switch (c->format) {
    case CTL_FORMAT_JSON:
        fputc('{', c->out);
        ctl_json_header_fields(c->out, r->header, &first);
        /* clientv3 makes the slice, so no leases is [] (not null) */
        fprintf(c->out, "%s\"leases\":[", first ? "" : ",");
        for (size_t i = 0; i < r->n_leases; i++)
            fprintf(c->out, "%s{\"id\":%" PRId64 "}", i ? "," : "", r->leases[i]->id);
        fputs("]}\n", c->out);
        break;
    case CTL_FORMAT_FIELDS:
        ctl_fields_header(c, r->header ? &r->header->base : NULL);
        for (size_t i = 0; i < r->n_leases; i++)
            fprintf(c->out, "\"ID\" : %" PRId64 "\n", r->leases[i]->id);
        break;
    case CTL_FORMAT_PROTOBUF:
        if (r->header)
            rc = ctl_print_protobuf(c, &r->header->base);
        break;
    case CTL_FORMAT_TABLE:
        rc = check_format(c);
        break;
    default:
        fprintf(c->out, "found %zu leases\n", r->n_leases);
        for (size_t i = 0; i < r->n_leases; i++)
            fprintf(c->out, "%016" PRIx64 "\n", (uint64_t)r->leases[i]->id);
        break;
    }
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* keep-alive                                                               */

struct ka_cmd {
    struct ctl *c;
    bool once;
    int rc;
    int64_t id;
};

static void on_ka_response(int64_t id, int64_t ttl, const Etcdserverpb__ResponseHeader *h,
                           void *data)
{
    struct ka_cmd *k = data;
    if (check_format(k->c) != 0) {
        k->rc = CTL_EXIT_BAD_FEATURE;
        event_base_loopbreak(k->c->base);
        return;
    }
    print_id_ttl(k->c, h, id, ttl, NULL, "lease %016" PRIx64 " keepalived with TTL(%" PRId64 ")\n");
    if (k->once)
        event_base_loopbreak(k->c->base);
}

static void on_ka_end(int code, const char *msg, void *data)
{
    struct ka_cmd *k = data;
    if (k->once)
        k->rc = ctl_fail(k->c, CTL_EXIT_BAD_CONNECTION, "%s",
                         code == CTL_KA_LEASE_GONE ? "etcdserver: requested lease not found" : msg);
    else if (k->c->format == CTL_FORMAT_SIMPLE)
        fprintf(k->c->out, "lease %016" PRIx64 " expired or revoked.\n", (uint64_t)k->id);
    event_base_loopbreak(k->c->base);
}

static int cmd_keep_alive(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "lease keep-alive command needs lease ID as argument");
    struct ka_cmd k = {.c = c, .once = ctl_bool(a, "once")};
    int rc = ctl_lease_parse_id(c, a->pos[0], &k.id);
    if (rc != 0)
        return rc;
    if ((rc = ctl_connect(c)) != 0)
        return rc;
    struct ctl_keepalive *ka;
    rc = ctl_keepalive_start(c, k.id, on_ka_response, on_ka_end, &k, &ka);
    if (rc != 0)
        return ctl_fail(c, CTL_EXIT_BAD_CONNECTION, "%s", rpc_strerror(rc));
    event_base_loop(c->base, 0);
    ctl_keepalive_stop(ka);
    return k.rc;
}

static const struct ctl_flag ttl_flags[] = {
    {"keys", 0, CTL_FLAG_BOOL, "false", "Get keys attached to this lease"},
};
static const struct ctl_flag ka_flags[] = {
    {"once", 0, CTL_FLAG_BOOL, "false",
     "Resets the keep-alive time to its original value and exits immediately"},
};

static const struct ctl_cmd lease_grant = {
    .name = "grant", .use = "grant <ttl>", .summary = "Creates leases", .run = cmd_grant};
static const struct ctl_cmd lease_revoke = {
    .name = "revoke", .use = "revoke <leaseID>", .summary = "Revokes leases", .run = cmd_revoke};
static const struct ctl_cmd lease_timetolive = {.name = "timetolive",
                                                .use = "timetolive <leaseID> [options]",
                                                .summary = "Get lease information",
                                                .flags = ttl_flags,
                                                .n_flags = 1,
                                                .run = cmd_timetolive};
static const struct ctl_cmd lease_list = {
    .name = "list", .use = "list", .summary = "List all active leases", .run = cmd_list};
static const struct ctl_cmd lease_keep_alive = {.name = "keep-alive",
                                                .use = "keep-alive [options] <leaseID>",
                                                .summary = "Keeps leases alive (renew)",
                                                .flags = ka_flags,
                                                .n_flags = 1,
                                                .run = cmd_keep_alive};

static const struct ctl_cmd *const lease_subs[] = {
    &lease_grant, &lease_revoke, &lease_timetolive, &lease_list, &lease_keep_alive, NULL,
};

const struct ctl_cmd ctl_cmd_lease = {
    .name = "lease",
    .use = "lease <subcommand>",
    .summary = "Lease related commands",
    .subs = lease_subs,
};
