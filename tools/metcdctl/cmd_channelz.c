/* tools/metcdctl/cmd_channelz.c - metcdctl channelz: the member's
 * grpc.channelz.v1.Channelz service (server/rpc/channelz_svc.c, grpc's
 * channelz.proto), metcd's own command.
 *
 *   channelz servers                 the gRPC servers: calls, listen sockets
 *   channelz sockets [--server ID]   the connections of every server (or one)
 *   channelz channels                the top-level client channels
 *   channelz socket ID [--summary]   one socket in full, TLS data included
 *
 * simple and table print tables; -w json prints the answers as Go's
 * encoding/json prints the golang/protobuf structs (ctl_print_json), the
 * pages of a paginated listing merged into one answer; -w protobuf their
 * wire bytes. `sockets` shows one Socket per connection, so its json is
 * {"socket":[Socket...]} and its protobuf a message whose field 1 repeats
 * the Socket messages. -w fields is refused as etcdctl refuses a format a
 * command has no printer for. */
#include "tools/metcdctl/ctl.h"

#include "common/mem.h"
#include "grpc/channelz/v1/channelz.pb-c.h"
#include "server/rpc/rpc.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <openssl/x509.h>
#include <string.h>
#include <time.h>

#define MAX_PAGES 10000 /* stops a server that never says `end` */

/* ------------------------------------------------------------------------ */
/* Answers kept for merging                                                 */

/* The answers a listing received; each freed with
 * protobuf_c_message_free_unpacked. */
struct pages {
    ProtobufCMessage **m;
    size_t n, cap;
};

static int pages_add(struct pages *p, ProtobufCMessage *m)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4;
        ProtobufCMessage **nm = metcd_realloc(p->m, cap * sizeof(*nm));
        if (!nm)
            return -1;
        p->m = nm;
        p->cap = cap;
    }
    p->m[p->n++] = m;
    return 0;
}

static void pages_free(struct pages *p)
{
    for (size_t i = 0; i < p->n; i++)
        protobuf_c_message_free_unpacked(p->m[i], &metcd_pb_allocator);
    metcd_free(p->m);
    memset(p, 0, sizeof(*p));
}

/* A growing array of borrowed message pointers. */
struct ptrs {
    void **v;
    size_t n, cap;
};

static int ptrs_add(struct ptrs *p, void *x)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        void **nv = metcd_realloc(p->v, cap * sizeof(*nv));
        if (!nv)
            return -1;
        p->v = nv;
        p->cap = cap;
    }
    p->v[p->n++] = x;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Formatting                                                               */

static int check_format(struct ctl *c)
{
    if (c->format == CTL_FORMAT_FIELDS)
        return ctl_fail(c, CTL_EXIT_BAD_FEATURE, "fields not supported as output format");
    return 0;
}

/* "ip:port" ("[ip6]:port"), a UDS file name, another address's name, or
 * "-" when the socket has none. */
static void fmt_addr(const Grpc__Channelz__V1__Address *a, char *buf, size_t len)
{
    snprintf(buf, len, "-");
    if (!a)
        return;
    switch (a->address_case) {
    case GRPC__CHANNELZ__V1__ADDRESS__ADDRESS_TCPIP_ADDRESS: {
        const Grpc__Channelz__V1__Address__TcpIpAddress *t = a->tcpip_address;
        char ip[INET6_ADDRSTRLEN] = "?";
        if (t->ip_address.len == 4) {
            inet_ntop(AF_INET, t->ip_address.data, ip, sizeof(ip));
            snprintf(buf, len, "%s:%" PRId32, ip, t->port);
        } else if (t->ip_address.len == 16) {
            inet_ntop(AF_INET6, t->ip_address.data, ip, sizeof(ip));
            snprintf(buf, len, "[%s]:%" PRId32, ip, t->port);
        } else {
            snprintf(buf, len, "?:%" PRId32, t->port);
        }
        break;
    }
    case GRPC__CHANNELZ__V1__ADDRESS__ADDRESS_UDS_ADDRESS:
        snprintf(buf, len, "unix:%s", a->uds_address->filename ? a->uds_address->filename : "");
        break;
    case GRPC__CHANNELZ__V1__ADDRESS__ADDRESS_OTHER_ADDRESS:
        snprintf(buf, len, "%s", a->other_address->name ? a->other_address->name : "?");
        break;
    default:
        break;
    }
}

/* "2026-12-03T06:21:11.123Z" (UTC), or "-" when unset. */
static void fmt_ts(const Google__Protobuf__Timestamp *t, char *buf, size_t len)
{
    if (!t || (t->seconds == 0 && t->nanos == 0)) {
        snprintf(buf, len, "-");
        return;
    }
    time_t secs = (time_t)t->seconds;
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) {
        snprintf(buf, len, "-");
        return;
    }
    char s[32];
    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", s, (int)(t->nanos / 1000000));
}

static const Google__Protobuf__Timestamp *later(const Google__Protobuf__Timestamp *a,
                                                const Google__Protobuf__Timestamp *b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    if (a->seconds != b->seconds)
        return a->seconds > b->seconds ? a : b;
    return a->nanos >= b->nanos ? a : b;
}

static const char *state_name(const Grpc__Channelz__V1__ChannelData *d)
{
    static const char *const names[] = {"UNKNOWN",           "IDLE",    "CONNECTING", "READY",
                                        "TRANSIENT_FAILURE", "SHUTDOWN"};
    if (!d || !d->state)
        return "UNKNOWN";
    unsigned s = (unsigned)d->state->state;
    return s < sizeof(names) / sizeof(names[0]) ? names[s] : "UNKNOWN";
}

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%" PRId64, (int64_t)(v)), (buf))

/* Renders and frees t; CTL_EXIT_ERROR when building it failed. */
static int table_done(struct ctl *c, struct ctl_table *t, bool failed)
{
    if (!t || failed) {
        ctl_table_free(t);
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    }
    ctl_table_render(t, c->out);
    ctl_table_free(t);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* servers                                                                  */

/* Every server, page after page; *all borrows from pages. */
static int list_servers(struct ctl *c, struct pages *pg, struct ptrs *all)
{
    int64_t start = 0;
    for (size_t page = 0; page < MAX_PAGES; page++) {
        Grpc__Channelz__V1__GetServersRequest req = GRPC__CHANNELZ__V1__GET_SERVERS_REQUEST__INIT;
        req.start_server_id = start;
        ProtobufCMessage *m;
        int rc = ctl_unary(c, "/grpc.channelz.v1.Channelz/GetServers", &req.base,
                           &grpc__channelz__v1__get_servers_response__descriptor, &m);
        if (rc != 0)
            return rc;
        if (pages_add(pg, m) != 0) {
            protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
            return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
        }
        Grpc__Channelz__V1__GetServersResponse *r = (Grpc__Channelz__V1__GetServersResponse *)m;
        for (size_t i = 0; i < r->n_server; i++) {
            if (ptrs_add(all, r->server[i]) != 0)
                return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
            if (r->server[i]->ref && r->server[i]->ref->server_id >= start)
                start = r->server[i]->ref->server_id + 1;
        }
        if (r->end || r->n_server == 0)
            return 0;
    }
    return 0;
}

static int print_servers(struct ctl *c, Grpc__Channelz__V1__Server **s, size_t n)
{
    static const char *const hdr[] = {"ID",     "NAME",      "CALLS STARTED", "SUCCEEDED",
                                      "FAILED", "LAST CALL", "LISTEN SOCKETS"};
    struct ctl_table *t = ctl_table_new(7, hdr);
    bool failed = false;
    for (size_t i = 0; t && i < n; i++) {
        const Grpc__Channelz__V1__ServerData *d = s[i]->data;
        char id[24], st[24], ok[24], bad[24], last[40], ls[256] = "";
        size_t off = 0;
        for (size_t k = 0; k < s[i]->n_listen_socket && off < sizeof(ls); k++) {
            int w = snprintf(ls + off, sizeof(ls) - off, "%s%" PRId64, k ? "," : "",
                             s[i]->listen_socket[k]->socket_id);
            if (w < 0)
                break;
            off += (size_t)w;
        }
        fmt_ts(d ? d->last_call_started_timestamp : NULL, last, sizeof(last));
        const char *row[] = {I64(id, s[i]->ref ? s[i]->ref->server_id : 0),
                             s[i]->ref && s[i]->ref->name ? s[i]->ref->name : "",
                             I64(st, d ? d->calls_started : 0),
                             I64(ok, d ? d->calls_succeeded : 0),
                             I64(bad, d ? d->calls_failed : 0),
                             last,
                             ls};
        if (ctl_table_row(t, row) != 0)
            failed = true;
    }
    return table_done(c, t, failed);
}

static int cmd_servers(struct ctl *c, const struct ctl_args *a)
{
    int rc = check_format(c);
    if (rc != 0)
        return rc;
    if (a->n_pos != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "channelz servers takes no arguments");
    struct pages pg = {0};
    struct ptrs all = {0};
    rc = list_servers(c, &pg, &all);
    if (rc == 0) {
        Grpc__Channelz__V1__GetServersResponse merged =
            GRPC__CHANNELZ__V1__GET_SERVERS_RESPONSE__INIT;
        merged.server = (Grpc__Channelz__V1__Server **)all.v;
        merged.n_server = all.n;
        merged.end = 1;
        if (c->format == CTL_FORMAT_JSON)
            ctl_print_json(c, &merged.base);
        else if (c->format == CTL_FORMAT_PROTOBUF)
            rc = ctl_print_protobuf(c, &merged.base);
        else
            rc = print_servers(c, merged.server, merged.n_server);
    }
    metcd_free(all.v);
    pages_free(&pg);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* sockets                                                                  */

/* GetSocket; *s NULL (and 0 returned) when the socket closed meanwhile. */
static int get_socket(struct ctl *c, int64_t id, bool summary, struct pages *pg,
                      Grpc__Channelz__V1__Socket **s)
{
    *s = NULL;
    Grpc__Channelz__V1__GetSocketRequest req = GRPC__CHANNELZ__V1__GET_SOCKET_REQUEST__INIT;
    req.socket_id = id;
    req.summary = summary;
    ProtobufCMessage *m = NULL;
    int code;
    char *msg = NULL;
    int rc = ctl_unary_quiet(c, "/grpc.channelz.v1.Channelz/GetSocket", &req.base,
                             &grpc__channelz__v1__get_socket_response__descriptor,
                             c->command_timeout_ms, &m, &code, &msg);
    if (rc != 0) {
        metcd_free(msg);
        return ctl_fail(c, CTL_EXIT_BAD_CONNECTION, "%s", rpc_strerror(rc));
    }
    if (code != RPC_CODE_OK) {
        if (m)
            protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
        rc = code == RPC_CODE_NOT_FOUND
                 ? 0
                 : ctl_fail(c, CTL_EXIT_ERROR, "%s", msg && msg[0] ? msg : rpc_code_name(code));
        metcd_free(msg);
        return rc;
    }
    metcd_free(msg);
    if (pages_add(pg, m) != 0) {
        protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    }
    *s = ((Grpc__Channelz__V1__GetSocketResponse *)m)->socket;
    return 0;
}

/* The sockets of server sid, each in full, appended to *out (borrowed
 * from pg); *owner gets sid once per socket. */
static int list_server_sockets(struct ctl *c, int64_t sid, struct pages *pg, struct ptrs *out,
                               struct ptrs *owner)
{
    int64_t start = 0;
    for (size_t page = 0; page < MAX_PAGES; page++) {
        Grpc__Channelz__V1__GetServerSocketsRequest req =
            GRPC__CHANNELZ__V1__GET_SERVER_SOCKETS_REQUEST__INIT;
        req.server_id = sid;
        req.start_socket_id = start;
        ProtobufCMessage *m;
        int rc = ctl_unary(c, "/grpc.channelz.v1.Channelz/GetServerSockets", &req.base,
                           &grpc__channelz__v1__get_server_sockets_response__descriptor, &m);
        if (rc != 0)
            return rc;
        if (pages_add(pg, m) != 0) {
            protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
            return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
        }
        Grpc__Channelz__V1__GetServerSocketsResponse *r =
            (Grpc__Channelz__V1__GetServerSocketsResponse *)m;
        for (size_t i = 0; i < r->n_socket_ref; i++) {
            int64_t id = r->socket_ref[i]->socket_id;
            if (id >= start)
                start = id + 1;
            Grpc__Channelz__V1__Socket *s;
            if ((rc = get_socket(c, id, false, pg, &s)) != 0)
                return rc;
            if (!s)
                continue;
            if (ptrs_add(out, s) != 0 || ptrs_add(owner, (void *)(intptr_t)sid) != 0)
                return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
        }
        if (r->end || r->n_socket_ref == 0)
            return 0;
    }
    return 0;
}

static int print_sockets(struct ctl *c, const struct ptrs *socks, const struct ptrs *owner)
{
    static const char *const hdr[] = {"ID",
                                      "SERVER",
                                      "LOCAL",
                                      "REMOTE",
                                      "STREAMS STARTED",
                                      "STREAMS SUCCEEDED",
                                      "STREAMS FAILED",
                                      "MESSAGES SENT",
                                      "MESSAGES RECV",
                                      "KEEPALIVES",
                                      "LAST MESSAGE"};
    struct ctl_table *t = ctl_table_new(11, hdr);
    bool failed = false;
    for (size_t i = 0; t && i < socks->n; i++) {
        const Grpc__Channelz__V1__Socket *s = socks->v[i];
        const Grpc__Channelz__V1__SocketData *d = s->data;
        char id[24], srv[24], loc[80], rem[80], ss[24], sok[24], sf[24], ms[24], mr[24], ka[24],
            last[40];
        fmt_addr(s->local, loc, sizeof(loc));
        fmt_addr(s->remote, rem, sizeof(rem));
        fmt_ts(d ? later(d->last_message_sent_timestamp, d->last_message_received_timestamp) : NULL,
               last, sizeof(last));
        const char *row[] = {I64(id, s->ref ? s->ref->socket_id : 0),
                             I64(srv, (intptr_t)owner->v[i]),
                             loc,
                             rem,
                             I64(ss, d ? d->streams_started : 0),
                             I64(sok, d ? d->streams_succeeded : 0),
                             I64(sf, d ? d->streams_failed : 0),
                             I64(ms, d ? d->messages_sent : 0),
                             I64(mr, d ? d->messages_received : 0),
                             I64(ka, d ? d->keep_alives_sent : 0),
                             last};
        if (ctl_table_row(t, row) != 0)
            failed = true;
    }
    return table_done(c, t, failed);
}

/* -w protobuf of a socket list: each Socket as field 1 (length-delimited),
 * the wire form of `message { repeated Socket socket = 1; }`. */
static int print_sockets_protobuf(struct ctl *c, const struct ptrs *socks)
{
    for (size_t i = 0; i < socks->n; i++) {
        const ProtobufCMessage *m = socks->v[i];
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t hdr[11];
        size_t h = 0;
        hdr[h++] = 0x0a;
        for (size_t v = n; h < sizeof(hdr); v >>= 7) {
            hdr[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            if (v <= 0x7f)
                break;
        }
        fwrite(hdr, 1, h, c->out);
        int rc = ctl_print_protobuf(c, m);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int cmd_sockets(struct ctl *c, const struct ctl_args *a)
{
    int rc = check_format(c);
    if (rc != 0)
        return rc;
    if (a->n_pos != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "channelz sockets takes no arguments but --server");
    struct pages pg = {0};
    struct ptrs servers = {0}, socks = {0}, owner = {0};
    if (ctl_changed(a, "server")) {
        int64_t sid = ctl_int(a, "server");
        if (sid <= 0) {
            rc = ctl_fail(c, CTL_EXIT_BAD_ARGS, "--server wants a server ID (a positive integer)");
            goto out;
        }
        /* GetServer says NOT_FOUND for an unknown server */
        Grpc__Channelz__V1__GetServerRequest req = GRPC__CHANNELZ__V1__GET_SERVER_REQUEST__INIT;
        req.server_id = sid;
        ProtobufCMessage *m;
        rc = ctl_unary(c, "/grpc.channelz.v1.Channelz/GetServer", &req.base,
                       &grpc__channelz__v1__get_server_response__descriptor, &m);
        if (rc != 0)
            goto out;
        if (pages_add(&pg, m) != 0) {
            protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
            rc = ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
            goto out;
        }
        Grpc__Channelz__V1__GetServerResponse *r = (Grpc__Channelz__V1__GetServerResponse *)m;
        if (r->server && ptrs_add(&servers, r->server) != 0) {
            rc = ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
            goto out;
        }
    } else if ((rc = list_servers(c, &pg, &servers)) != 0) {
        goto out;
    }
    for (size_t i = 0; i < servers.n; i++) {
        const Grpc__Channelz__V1__Server *s = servers.v[i];
        if (s->ref && (rc = list_server_sockets(c, s->ref->server_id, &pg, &socks, &owner)) != 0)
            goto out;
    }
    if (c->format == CTL_FORMAT_JSON) {
        fputs("{", c->out);
        if (socks.n) {
            fputs("\"socket\":[", c->out);
            for (size_t i = 0; i < socks.n; i++) {
                if (i)
                    fputc(',', c->out);
                ctl_json_msg(c->out, socks.v[i]);
            }
            fputc(']', c->out);
        }
        fputs("}\n", c->out);
    } else if (c->format == CTL_FORMAT_PROTOBUF) {
        rc = print_sockets_protobuf(c, &socks);
    } else {
        rc = print_sockets(c, &socks, &owner);
    }
out:
    metcd_free(servers.v);
    metcd_free(socks.v);
    metcd_free(owner.v);
    pages_free(&pg);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* channels                                                                 */

static int print_channels(struct ctl *c, Grpc__Channelz__V1__Channel **ch, size_t n)
{
    static const char *const hdr[] = {"ID",        "TARGET", "STATE",     "CALLS STARTED",
                                      "SUCCEEDED", "FAILED", "LAST CALL", "SUBCHANNELS",
                                      "SOCKETS"};
    struct ctl_table *t = ctl_table_new(9, hdr);
    bool failed = false;
    for (size_t i = 0; t && i < n; i++) {
        const Grpc__Channelz__V1__ChannelData *d = ch[i]->data;
        char id[24], st[24], ok[24], bad[24], last[40], subs[24], socks[24];
        fmt_ts(d ? d->last_call_started_timestamp : NULL, last, sizeof(last));
        const char *row[] = {I64(id, ch[i]->ref ? ch[i]->ref->channel_id : 0),
                             d && d->target ? d->target : "",
                             state_name(d),
                             I64(st, d ? d->calls_started : 0),
                             I64(ok, d ? d->calls_succeeded : 0),
                             I64(bad, d ? d->calls_failed : 0),
                             last,
                             I64(subs, ch[i]->n_subchannel_ref),
                             I64(socks, ch[i]->n_socket_ref)};
        if (ctl_table_row(t, row) != 0)
            failed = true;
    }
    return table_done(c, t, failed);
}

static int cmd_channels(struct ctl *c, const struct ctl_args *a)
{
    int rc = check_format(c);
    if (rc != 0)
        return rc;
    if (a->n_pos != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "channelz channels takes no arguments");
    struct pages pg = {0};
    struct ptrs all = {0};
    int64_t start = 0;
    for (size_t page = 0; page < MAX_PAGES; page++) {
        Grpc__Channelz__V1__GetTopChannelsRequest req =
            GRPC__CHANNELZ__V1__GET_TOP_CHANNELS_REQUEST__INIT;
        req.start_channel_id = start;
        ProtobufCMessage *m;
        rc = ctl_unary(c, "/grpc.channelz.v1.Channelz/GetTopChannels", &req.base,
                       &grpc__channelz__v1__get_top_channels_response__descriptor, &m);
        if (rc != 0)
            goto out;
        if (pages_add(&pg, m) != 0) {
            protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
            rc = ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
            goto out;
        }
        Grpc__Channelz__V1__GetTopChannelsResponse *r =
            (Grpc__Channelz__V1__GetTopChannelsResponse *)m;
        for (size_t i = 0; i < r->n_channel; i++) {
            if (ptrs_add(&all, r->channel[i]) != 0) {
                rc = ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
                goto out;
            }
            if (r->channel[i]->ref && r->channel[i]->ref->channel_id >= start)
                start = r->channel[i]->ref->channel_id + 1;
        }
        if (r->end || r->n_channel == 0)
            break;
    }
    Grpc__Channelz__V1__GetTopChannelsResponse merged =
        GRPC__CHANNELZ__V1__GET_TOP_CHANNELS_RESPONSE__INIT;
    merged.channel = (Grpc__Channelz__V1__Channel **)all.v;
    merged.n_channel = all.n;
    merged.end = 1;
    if (c->format == CTL_FORMAT_JSON)
        ctl_print_json(c, &merged.base);
    else if (c->format == CTL_FORMAT_PROTOBUF)
        rc = ctl_print_protobuf(c, &merged.base);
    else
        rc = print_channels(c, merged.channel, merged.n_channel);
out:
    metcd_free(all.v);
    pages_free(&pg);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* socket ID                                                                */

/* "subject CN=..., 1234 bytes" of a DER certificate. */
static void fmt_cert(const ProtobufCBinaryData *der, char *buf, size_t len)
{
    if (der->len == 0) {
        snprintf(buf, len, "-");
        return;
    }
    const unsigned char *p = der->data;
    X509 *x = d2i_X509(NULL, &p, (long)der->len);
    char subj[256] = "(not a DER certificate)";
    if (x) {
        X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
        X509_free(x);
    }
    snprintf(buf, len, "%s, %zu bytes", subj, der->len);
}

static int kv(struct ctl_table *t, const char *k, const char *v)
{
    const char *row[] = {k, v};
    return ctl_table_row(t, row);
}

static int print_socket(struct ctl *c, const Grpc__Channelz__V1__Socket *s)
{
    static const char *const hdr[] = {"FIELD", "VALUE"};
    struct ctl_table *t = ctl_table_new(2, hdr);
    if (!t)
        return table_done(c, t, true);
    int bad = 0;
    char b[512];
    const Grpc__Channelz__V1__SocketData *d = s->data;
    bad |= kv(t, "ID", I64(b, s->ref ? s->ref->socket_id : 0));
    bad |= kv(t, "NAME", s->ref && s->ref->name ? s->ref->name : "");
    fmt_addr(s->local, b, sizeof(b));
    bad |= kv(t, "LOCAL", b);
    fmt_addr(s->remote, b, sizeof(b));
    bad |= kv(t, "REMOTE", b);
    if (s->remote_name && s->remote_name[0])
        bad |= kv(t, "REMOTE NAME", s->remote_name);
    if (d) {
        bad |= kv(t, "STREAMS STARTED", I64(b, d->streams_started));
        bad |= kv(t, "STREAMS SUCCEEDED", I64(b, d->streams_succeeded));
        bad |= kv(t, "STREAMS FAILED", I64(b, d->streams_failed));
        bad |= kv(t, "MESSAGES SENT", I64(b, d->messages_sent));
        bad |= kv(t, "MESSAGES RECEIVED", I64(b, d->messages_received));
        bad |= kv(t, "KEEPALIVES SENT", I64(b, d->keep_alives_sent));
        fmt_ts(d->last_local_stream_created_timestamp, b, sizeof(b));
        bad |= kv(t, "LAST LOCAL STREAM", b);
        fmt_ts(d->last_remote_stream_created_timestamp, b, sizeof(b));
        bad |= kv(t, "LAST REMOTE STREAM", b);
        fmt_ts(d->last_message_sent_timestamp, b, sizeof(b));
        bad |= kv(t, "LAST MESSAGE SENT", b);
        fmt_ts(d->last_message_received_timestamp, b, sizeof(b));
        bad |= kv(t, "LAST MESSAGE RECEIVED", b);
        if (d->local_flow_control_window)
            bad |= kv(t, "LOCAL FLOW CONTROL WINDOW", I64(b, d->local_flow_control_window->value));
        if (d->remote_flow_control_window)
            bad |=
                kv(t, "REMOTE FLOW CONTROL WINDOW", I64(b, d->remote_flow_control_window->value));
        for (size_t i = 0; i < d->n_option; i++) {
            char k[160];
            snprintf(k, sizeof(k), "OPTION %s", d->option[i]->name ? d->option[i]->name : "");
            bad |= kv(t, k, d->option[i]->value ? d->option[i]->value : "");
        }
    }
    const Grpc__Channelz__V1__Security *sec = s->security;
    if (!sec || sec->model_case == GRPC__CHANNELZ__V1__SECURITY__MODEL__NOT_SET) {
        bad |= kv(t, "SECURITY", "none");
    } else if (sec->model_case == GRPC__CHANNELZ__V1__SECURITY__MODEL_TLS) {
        const Grpc__Channelz__V1__Security__Tls *tls = sec->tls;
        bad |= kv(t, "SECURITY", "tls");
        const char *cs =
            tls->cipher_suite_case == GRPC__CHANNELZ__V1__SECURITY__TLS__CIPHER_SUITE_STANDARD_NAME
                ? tls->standard_name
            : tls->cipher_suite_case == GRPC__CHANNELZ__V1__SECURITY__TLS__CIPHER_SUITE_OTHER_NAME
                ? tls->other_name
                : NULL;
        bad |= kv(t, "TLS CIPHER SUITE", cs ? cs : "-");
        fmt_cert(&tls->local_certificate, b, sizeof(b));
        bad |= kv(t, "TLS LOCAL CERTIFICATE", b);
        fmt_cert(&tls->remote_certificate, b, sizeof(b));
        bad |= kv(t, "TLS REMOTE CERTIFICATE", b);
    } else {
        bad |= kv(t, "SECURITY", sec->other && sec->other->name ? sec->other->name : "other");
    }
    return table_done(c, t, bad != 0);
}

static int cmd_socket(struct ctl *c, const struct ctl_args *a)
{
    int rc = check_format(c);
    if (rc != 0)
        return rc;
    uint64_t id;
    if (a->n_pos != 1 || ctl_parse_u64(a->pos[0], 1, INT64_MAX, &id) != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "channelz socket needs a socket ID: channelz socket ID");
    Grpc__Channelz__V1__GetSocketRequest req = GRPC__CHANNELZ__V1__GET_SOCKET_REQUEST__INIT;
    req.socket_id = (int64_t)id;
    req.summary = ctl_bool(a, "summary");
    ProtobufCMessage *m;
    rc = ctl_unary(c, "/grpc.channelz.v1.Channelz/GetSocket", &req.base,
                   &grpc__channelz__v1__get_socket_response__descriptor, &m);
    if (rc != 0)
        return rc;
    Grpc__Channelz__V1__GetSocketResponse *r = (Grpc__Channelz__V1__GetSocketResponse *)m;
    if (c->format == CTL_FORMAT_JSON)
        ctl_print_json(c, m);
    else if (c->format == CTL_FORMAT_PROTOBUF)
        rc = ctl_print_protobuf(c, m);
    else if (r->socket)
        rc = print_socket(c, r->socket);
    else
        rc = ctl_fail(c, CTL_EXIT_ERROR, "the member answered without a socket");
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The command                                                              */

static const struct ctl_flag sockets_flags[] = {
    {"server", 0, CTL_FLAG_INT, "0", "only the sockets of this server ID (default: every server)"},
};
static const struct ctl_flag socket_flags[] = {
    {"summary", 0, CTL_FLAG_BOOL, "false", "ask for the counters only (GetSocket's summary)"},
};

static const struct ctl_cmd cz_servers = {
    .name = "servers",
    .use = "servers",
    .summary = "Lists the member's gRPC servers, their calls and listen sockets",
    .run = cmd_servers};
static const struct ctl_cmd cz_sockets = {
    .name = "sockets",
    .use = "sockets [options]",
    .summary = "Lists the connections of every server (or of --server ID) with their counters",
    .flags = sockets_flags,
    .n_flags = 1,
    .run = cmd_sockets};
static const struct ctl_cmd cz_channels = {.name = "channels",
                                           .use = "channels",
                                           .summary =
                                               "Lists the member's top-level client channels",
                                           .run = cmd_channels};
static const struct ctl_cmd cz_socket = {.name = "socket",
                                         .use = "socket <id> [options]",
                                         .summary =
                                             "Shows one socket in full, with its TLS data if any",
                                         .flags = socket_flags,
                                         .n_flags = 1,
                                         .run = cmd_socket};

static const struct ctl_cmd *const cz_subs[] = {
    &cz_channels, &cz_servers, &cz_socket, &cz_sockets, NULL,
};

const struct ctl_cmd ctl_cmd_channelz = {
    .name = "channelz",
    .use = "channelz <subcommand>",
    .summary = "gRPC channelz: the member's servers, sockets and channels (metcd's own)",
    .subs = cz_subs,
};
