/* server/rpc/channelz_svc.c - grpc.channelz.v1.Channelz over the channelz
 * registry: the seven Get methods, with channelz.proto's pagination
 * (id >= start, ascending, at most max_results with 0 meaning 50, `end`
 * when nothing follows) and grpc-go's NOT_FOUND texts. Answers are built
 * in a per-call arena freed after packing. */
#include "server/rpc/internal.h"

#include "common/mem.h"
#include "grpc/channelz/v1/channelz.pb-c.h"
#include "server/channelz/channelz.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#define PAGE_DEFAULT 50
#define PAGE_MAX 1000
#define REFS_MAX 1000

struct arena {
    void **ptrs;
    size_t n, cap;
    bool failed;
};

static void *az(struct arena *a, size_t n)
{
    if (a->failed)
        return NULL;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        void **np = metcd_realloc(a->ptrs, cap * sizeof *np);
        if (!np) {
            a->failed = true;
            return NULL;
        }
        a->ptrs = np;
        a->cap = cap;
    }
    void *p = metcd_calloc(1, n ? n : 1);
    if (!p) {
        a->failed = true;
        return NULL;
    }
    a->ptrs[a->n++] = p;
    return p;
}

static void *mk_init(void *p, const void *init, size_t n)
{
    if (p)
        memcpy(p, init, n);
    return p;
}

#define MK(a, T, INIT) ((T *)mk_init(az((a), sizeof(T)), &(T)INIT, sizeof(T)))

static void arena_free(struct arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        metcd_free(a->ptrs[i]);
    metcd_free(a->ptrs);
}

static char *astr(struct arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = az(a, n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static Google__Protobuf__Timestamp *ts(struct arena *a, int64_t ns)
{
    if (ns <= 0)
        return NULL;
    Google__Protobuf__Timestamp *t = MK(a, Google__Protobuf__Timestamp,
                                        GOOGLE__PROTOBUF__TIMESTAMP__INIT);
    if (t) {
        t->seconds = ns / 1000000000;
        t->nanos = (int32_t)(ns % 1000000000);
    }
    return t;
}

static Grpc__Channelz__V1__ChannelRef *channel_ref(struct arena *a, const struct channelz_node *n)
{
    Grpc__Channelz__V1__ChannelRef *r =
        MK(a, Grpc__Channelz__V1__ChannelRef, GRPC__CHANNELZ__V1__CHANNEL_REF__INIT);
    if (r) {
        r->channel_id = (int64_t)channelz_id(n);
        r->name = astr(a, channelz_name(n));
    }
    return r;
}

static Grpc__Channelz__V1__SubchannelRef *subchannel_ref(struct arena *a,
                                                         const struct channelz_node *n)
{
    Grpc__Channelz__V1__SubchannelRef *r =
        MK(a, Grpc__Channelz__V1__SubchannelRef, GRPC__CHANNELZ__V1__SUBCHANNEL_REF__INIT);
    if (r) {
        r->subchannel_id = (int64_t)channelz_id(n);
        r->name = astr(a, channelz_name(n));
    }
    return r;
}

static Grpc__Channelz__V1__SocketRef *socket_ref(struct arena *a, const struct channelz_node *n)
{
    Grpc__Channelz__V1__SocketRef *r =
        MK(a, Grpc__Channelz__V1__SocketRef, GRPC__CHANNELZ__V1__SOCKET_REF__INIT);
    if (r) {
        r->socket_id = (int64_t)channelz_id(n);
        r->name = astr(a, channelz_name(n));
    }
    return r;
}

static Grpc__Channelz__V1__ChannelTrace *trace(struct arena *a, const struct channelz_node *n)
{
    size_t cnt;
    uint64_t logged;
    int64_t created;
    const struct channelz_event *ev = channelz_events(n, &cnt, &logged, &created);
    Grpc__Channelz__V1__ChannelTrace *t =
        MK(a, Grpc__Channelz__V1__ChannelTrace, GRPC__CHANNELZ__V1__CHANNEL_TRACE__INIT);
    if (!t)
        return NULL;
    t->num_events_logged = (int64_t)logged;
    t->creation_timestamp = ts(a, created);
    t->events = az(a, cnt * sizeof *t->events);
    if (!t->events)
        return t;
    for (size_t i = 0; i < cnt; i++) {
        Grpc__Channelz__V1__ChannelTraceEvent *e = MK(a, Grpc__Channelz__V1__ChannelTraceEvent,
                                                      GRPC__CHANNELZ__V1__CHANNEL_TRACE_EVENT__INIT);
        if (!e)
            return t;
        e->description = astr(a, ev[i].description);
        e->severity = (Grpc__Channelz__V1__ChannelTraceEvent__Severity)ev[i].severity;
        e->timestamp = ts(a, ev[i].ts_ns);
        if (ev[i].ref && channelz_kind_of(ev[i].ref) == CHANNELZ_CHANNEL) {
            e->child_ref_case = GRPC__CHANNELZ__V1__CHANNEL_TRACE_EVENT__CHILD_REF_CHANNEL_REF;
            e->channel_ref = channel_ref(a, ev[i].ref);
        } else if (ev[i].ref) {
            e->child_ref_case = GRPC__CHANNELZ__V1__CHANNEL_TRACE_EVENT__CHILD_REF_SUBCHANNEL_REF;
            e->subchannel_ref = subchannel_ref(a, ev[i].ref);
        }
        t->events[t->n_events++] = e;
    }
    return t;
}

static Grpc__Channelz__V1__ChannelData *channel_data(struct arena *a, struct channelz_node *n)
{
    Grpc__Channelz__V1__ChannelData *d =
        MK(a, Grpc__Channelz__V1__ChannelData, GRPC__CHANNELZ__V1__CHANNEL_DATA__INIT);
    if (!d)
        return NULL;
    d->state = MK(a, Grpc__Channelz__V1__ChannelConnectivityState,
                  GRPC__CHANNELZ__V1__CHANNEL_CONNECTIVITY_STATE__INIT);
    if (d->state)
        d->state->state = (Grpc__Channelz__V1__ChannelConnectivityState__State)channelz_state_of(n);
    d->target = astr(a, channelz_name(n));
    d->trace = trace(a, n);
    const struct channelz_calls *c = channelz_calls_of(n);
    d->calls_started = (int64_t)c->started;
    d->calls_succeeded = (int64_t)c->succeeded;
    d->calls_failed = (int64_t)c->failed;
    d->last_call_started_timestamp = ts(a, c->last_started_ns);
    return d;
}

/* Fills the child refs of a channel or subchannel. */
static void child_refs(struct arena *a, struct channelz_node *n, size_t *n_ch,
                       Grpc__Channelz__V1__ChannelRef ***ch, size_t *n_sub,
                       Grpc__Channelz__V1__SubchannelRef ***sub, size_t *n_sock,
                       Grpc__Channelz__V1__SocketRef ***sock)
{
    struct channelz_node **kids = az(a, REFS_MAX * sizeof *kids);
    if (!kids)
        return;
    (void)n_ch;
    (void)ch;
    size_t k = channelz_children(n, CHANNELZ_SUBCHANNEL, kids, REFS_MAX);
    *sub = az(a, k * sizeof **sub);
    for (size_t i = 0; *sub && i < k; i++)
        (*sub)[(*n_sub)++] = subchannel_ref(a, kids[i]);
    k = channelz_children(n, CHANNELZ_SOCKET, kids, REFS_MAX);
    *sock = az(a, k * sizeof **sock);
    for (size_t i = 0; *sock && i < k; i++)
        (*sock)[(*n_sock)++] = socket_ref(a, kids[i]);
}

static Grpc__Channelz__V1__Channel *channel_msg(struct arena *a, struct channelz_node *n)
{
    Grpc__Channelz__V1__Channel *c =
        MK(a, Grpc__Channelz__V1__Channel, GRPC__CHANNELZ__V1__CHANNEL__INIT);
    if (!c)
        return NULL;
    c->ref = channel_ref(a, n);
    c->data = channel_data(a, n);
    child_refs(a, n, &c->n_channel_ref, &c->channel_ref, &c->n_subchannel_ref,
               &c->subchannel_ref, &c->n_socket_ref, &c->socket_ref);
    return c;
}

static Grpc__Channelz__V1__Subchannel *subchannel_msg(struct arena *a, struct channelz_node *n)
{
    Grpc__Channelz__V1__Subchannel *c =
        MK(a, Grpc__Channelz__V1__Subchannel, GRPC__CHANNELZ__V1__SUBCHANNEL__INIT);
    if (!c)
        return NULL;
    c->ref = subchannel_ref(a, n);
    c->data = channel_data(a, n);
    child_refs(a, n, &c->n_channel_ref, &c->channel_ref, &c->n_subchannel_ref,
               &c->subchannel_ref, &c->n_socket_ref, &c->socket_ref);
    return c;
}

static Grpc__Channelz__V1__Server *server_msg(struct arena *a, struct channelz_node *n)
{
    Grpc__Channelz__V1__Server *s =
        MK(a, Grpc__Channelz__V1__Server, GRPC__CHANNELZ__V1__SERVER__INIT);
    if (!s)
        return NULL;
    s->ref = MK(a, Grpc__Channelz__V1__ServerRef, GRPC__CHANNELZ__V1__SERVER_REF__INIT);
    if (s->ref) {
        s->ref->server_id = (int64_t)channelz_id(n);
        s->ref->name = astr(a, channelz_name(n));
    }
    s->data = MK(a, Grpc__Channelz__V1__ServerData, GRPC__CHANNELZ__V1__SERVER_DATA__INIT);
    if (s->data) {
        const struct channelz_calls *c = channelz_calls_of(n);
        s->data->calls_started = (int64_t)c->started;
        s->data->calls_succeeded = (int64_t)c->succeeded;
        s->data->calls_failed = (int64_t)c->failed;
        s->data->last_call_started_timestamp = ts(a, c->last_started_ns);
    }
    struct channelz_node **kids = az(a, REFS_MAX * sizeof *kids);
    if (!kids)
        return s;
    size_t k = channelz_children(n, CHANNELZ_LISTEN_SOCKET, kids, REFS_MAX);
    s->listen_socket = az(a, k * sizeof *s->listen_socket);
    for (size_t i = 0; s->listen_socket && i < k; i++)
        s->listen_socket[s->n_listen_socket++] = socket_ref(a, kids[i]);
    return s;
}

static Grpc__Channelz__V1__Address *address(struct arena *a, const struct sockaddr *sa,
                                            socklen_t len)
{
    if (len == 0)
        return NULL;
    Grpc__Channelz__V1__Address *ad =
        MK(a, Grpc__Channelz__V1__Address, GRPC__CHANNELZ__V1__ADDRESS__INIT);
    if (!ad)
        return NULL;
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        Grpc__Channelz__V1__Address__TcpIpAddress *t =
            MK(a, Grpc__Channelz__V1__Address__TcpIpAddress,
               GRPC__CHANNELZ__V1__ADDRESS__TCP_IP_ADDRESS__INIT);
        if (!t)
            return ad;
        const void *ip;
        size_t iplen;
        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
            ip = &in->sin_addr;
            iplen = 4;
            t->port = ntohs(in->sin_port);
        } else {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
            ip = &in6->sin6_addr;
            iplen = 16;
            t->port = ntohs(in6->sin6_port);
        }
        t->ip_address.data = az(a, iplen);
        if (t->ip_address.data) {
            memcpy(t->ip_address.data, ip, iplen);
            t->ip_address.len = iplen;
        }
        ad->address_case = GRPC__CHANNELZ__V1__ADDRESS__ADDRESS_TCPIP_ADDRESS;
        ad->tcpip_address = t;
    } else {
        Grpc__Channelz__V1__Address__OtherAddress *o =
            MK(a, Grpc__Channelz__V1__Address__OtherAddress,
               GRPC__CHANNELZ__V1__ADDRESS__OTHER_ADDRESS__INIT);
        if (!o)
            return ad;
        o->name = astr(a, "local");
        ad->address_case = GRPC__CHANNELZ__V1__ADDRESS__ADDRESS_OTHER_ADDRESS;
        ad->other_address = o;
    }
    return ad;
}

static Google__Protobuf__Int64Value *i64(struct arena *a, int64_t v)
{
    if (v < 0)
        return NULL;
    Google__Protobuf__Int64Value *w =
        MK(a, Google__Protobuf__Int64Value, GOOGLE__PROTOBUF__INT64_VALUE__INIT);
    if (w)
        w->value = v;
    return w;
}

static Grpc__Channelz__V1__Socket *socket_msg(struct arena *a, struct channelz_node *n,
                                              bool summary)
{
    Grpc__Channelz__V1__Socket *s =
        MK(a, Grpc__Channelz__V1__Socket, GRPC__CHANNELZ__V1__SOCKET__INIT);
    if (!s)
        return NULL;
    s->ref = socket_ref(a, n);
    socklen_t len;
    const struct sockaddr *sa = channelz_local_addr(n, &len);
    s->local = address(a, sa, len);
    sa = channelz_remote_addr(n, &len);
    s->remote = address(a, sa, len);
    const struct channelz_tls *tls = channelz_tls_of(n);
    if (tls) {
        Grpc__Channelz__V1__Security *sec =
            MK(a, Grpc__Channelz__V1__Security, GRPC__CHANNELZ__V1__SECURITY__INIT);
        Grpc__Channelz__V1__Security__Tls *st =
            MK(a, Grpc__Channelz__V1__Security__Tls, GRPC__CHANNELZ__V1__SECURITY__TLS__INIT);
        if (sec && st) {
            /* borrowed from the registry until the reply is packed */
            if (tls->standard_name) {
                st->cipher_suite_case = GRPC__CHANNELZ__V1__SECURITY__TLS__CIPHER_SUITE_STANDARD_NAME;
                st->standard_name = tls->standard_name;
            } else if (tls->other_name) {
                st->cipher_suite_case = GRPC__CHANNELZ__V1__SECURITY__TLS__CIPHER_SUITE_OTHER_NAME;
                st->other_name = tls->other_name;
            }
            st->local_certificate.data = tls->local_cert;
            st->local_certificate.len = tls->local_cert_len;
            st->remote_certificate.data = tls->remote_cert;
            st->remote_certificate.len = tls->remote_cert_len;
            sec->model_case = GRPC__CHANNELZ__V1__SECURITY__MODEL_TLS;
            sec->tls = st;
            s->security = sec;
        }
    }
    const struct channelz_socket_data *sd = channelz_socket_of(n);
    Grpc__Channelz__V1__SocketData *d =
        MK(a, Grpc__Channelz__V1__SocketData, GRPC__CHANNELZ__V1__SOCKET_DATA__INIT);
    s->data = d;
    if (!d)
        return s;
    d->streams_started = (int64_t)sd->streams_started;
    d->streams_succeeded = (int64_t)sd->streams_succeeded;
    d->streams_failed = (int64_t)sd->streams_failed;
    d->messages_sent = (int64_t)sd->messages_sent;
    d->messages_received = (int64_t)sd->messages_received;
    d->keep_alives_sent = (int64_t)sd->keepalives_sent;
    if (summary)
        return s;
    d->last_local_stream_created_timestamp = ts(a, sd->last_local_stream_ns);
    d->last_remote_stream_created_timestamp = ts(a, sd->last_remote_stream_ns);
    d->last_message_sent_timestamp = ts(a, sd->last_message_sent_ns);
    d->last_message_received_timestamp = ts(a, sd->last_message_received_ns);
    d->local_flow_control_window = i64(a, sd->local_window);
    d->remote_flow_control_window = i64(a, sd->remote_window);
    return s;
}

/* ---- handlers ---- */

static size_t page_size(int64_t max)
{
    if (max <= 0)
        return PAGE_DEFAULT;
    return max > PAGE_MAX ? PAGE_MAX : (size_t)max;
}

static uint64_t start_id(int64_t v)
{
    return v < 0 ? 0 : (uint64_t)v;
}

static void answer(struct rpc_call *call, struct arena *a, const ProtobufCMessage *resp)
{
    if (a->failed)
        rpc_call_finish(call, RPC_CODE_RESOURCE_EXHAUSTED, "channelz: out of memory");
    else
        rpc_call_reply(call, resp);
    arena_free(a);
}

static void not_found(struct rpc_call *call, struct arena *a, const char *what, int64_t id)
{
    char text[96];
    snprintf(text, sizeof text, "requested %s %lld not found", what, (long long)id);
    arena_free(a);
    rpc_call_finish(call, RPC_CODE_NOT_FOUND, text);
}

static void on_get_top_channels(struct rpc_call *call, const ProtobufCMessage *msg)
{
    const Grpc__Channelz__V1__GetTopChannelsRequest *req = (const void *)msg;
    struct channelz *cz = rpc_call_service_data(call);
    struct arena a = {0};
    size_t max = page_size(req->max_results);
    Grpc__Channelz__V1__GetTopChannelsResponse resp =
        GRPC__CHANNELZ__V1__GET_TOP_CHANNELS_RESPONSE__INIT;
    struct channelz_node **nodes = az(&a, max * sizeof *nodes);
    resp.channel = az(&a, max * sizeof *resp.channel);
    if (nodes && resp.channel) {
        int end;
        size_t n = channelz_list(cz, CHANNELZ_CHANNEL, NULL, start_id(req->start_channel_id),
                                 max, nodes, &end);
        resp.end = end;
        for (size_t i = 0; i < n; i++)
            resp.channel[resp.n_channel++] = channel_msg(&a, nodes[i]);
    }
    answer(call, &a, &resp.base);
}

static void on_get_servers(struct rpc_call *call, const ProtobufCMessage *msg)
{
    const Grpc__Channelz__V1__GetServersRequest *req = (const void *)msg;
    struct channelz *cz = rpc_call_service_data(call);
    struct arena a = {0};
    size_t max = page_size(req->max_results);
    Grpc__Channelz__V1__GetServersResponse resp = GRPC__CHANNELZ__V1__GET_SERVERS_RESPONSE__INIT;
    struct channelz_node **nodes = az(&a, max * sizeof *nodes);
    resp.server = az(&a, max * sizeof *resp.server);
    if (nodes && resp.server) {
        int end;
        size_t n = channelz_list(cz, CHANNELZ_SERVER, NULL, start_id(req->start_server_id), max,
                                 nodes, &end);
        resp.end = end;
        for (size_t i = 0; i < n; i++)
            resp.server[resp.n_server++] = server_msg(&a, nodes[i]);
    }
    answer(call, &a, &resp.base);
}

static void on_get_server(struct rpc_call *call, const ProtobufCMessage *msg)
{
    const Grpc__Channelz__V1__GetServerRequest *req = (const void *)msg;
    struct channelz *cz = rpc_call_service_data(call);
    struct arena a = {0};
    struct channelz_node *n = channelz_find(cz, CHANNELZ_SERVER, start_id(req->server_id));
    if (!n) {
        not_found(call, &a, "server", req->server_id);
        return;
    }
    Grpc__Channelz__V1__GetServerResponse resp = GRPC__CHANNELZ__V1__GET_SERVER_RESPONSE__INIT;
    resp.server = server_msg(&a, n);
    answer(call, &a, &resp.base);
}

static void on_get_server_sockets(struct rpc_call *call, const ProtobufCMessage *msg)
{
    const Grpc__Channelz__V1__GetServerSocketsRequest *req = (const void *)msg;
    struct channelz *cz = rpc_call_service_data(call);
    struct arena a = {0};
    Grpc__Channelz__V1__GetServerSocketsResponse resp =
        GRPC__CHANNELZ__V1__GET_SERVER_SOCKETS_RESPONSE__INIT;
    struct channelz_node *srv = channelz_find(cz, CHANNELZ_SERVER, start_id(req->server_id));
    resp.end = 1;
    if (srv) {
        size_t max = page_size(req->max_results);
        struct channelz_node **nodes = az(&a, max * sizeof *nodes);
        resp.socket_ref = az(&a, max * sizeof *resp.socket_ref);
        if (nodes && resp.socket_ref) {
            int end;
            size_t n = channelz_list(cz, CHANNELZ_SOCKET, srv, start_id(req->start_socket_id),
                                     max, nodes, &end);
            resp.end = end;
            for (size_t i = 0; i < n; i++)
                resp.socket_ref[resp.n_socket_ref++] = socket_ref(&a, nodes[i]);
        }
    }
    answer(call, &a, &resp.base);
}

static void on_get_channel(struct rpc_call *call, const ProtobufCMessage *msg)
{
    const Grpc__Channelz__V1__GetChannelRequest *req = (const void *)msg;
    struct channelz *cz = rpc_call_service_data(call);
    struct arena a = {0};
    struct channelz_node *n = channelz_find(cz, CHANNELZ_CHANNEL, start_id(req->channel_id));
    if (!n) {
        not_found(call, &a, "channel", req->channel_id);
        return;
    }
    Grpc__Channelz__V1__GetChannelResponse resp = GRPC__CHANNELZ__V1__GET_CHANNEL_RESPONSE__INIT;
    resp.channel = channel_msg(&a, n);
    answer(call, &a, &resp.base);
}

static void on_get_subchannel(struct rpc_call *call, const ProtobufCMessage *msg)
{
    const Grpc__Channelz__V1__GetSubchannelRequest *req = (const void *)msg;
    struct channelz *cz = rpc_call_service_data(call);
    struct arena a = {0};
    struct channelz_node *n =
        channelz_find(cz, CHANNELZ_SUBCHANNEL, start_id(req->subchannel_id));
    if (!n) {
        not_found(call, &a, "subchannel", req->subchannel_id);
        return;
    }
    Grpc__Channelz__V1__GetSubchannelResponse resp =
        GRPC__CHANNELZ__V1__GET_SUBCHANNEL_RESPONSE__INIT;
    resp.subchannel = subchannel_msg(&a, n);
    answer(call, &a, &resp.base);
}

static void on_get_socket(struct rpc_call *call, const ProtobufCMessage *msg)
{
    const Grpc__Channelz__V1__GetSocketRequest *req = (const void *)msg;
    struct channelz *cz = rpc_call_service_data(call);
    struct arena a = {0};
    struct channelz_node *n = channelz_find(cz, CHANNELZ_SOCKET, start_id(req->socket_id));
    if (!n) {
        not_found(call, &a, "socket", req->socket_id);
        return;
    }
    Grpc__Channelz__V1__GetSocketResponse resp = GRPC__CHANNELZ__V1__GET_SOCKET_RESPONSE__INIT;
    resp.socket = socket_msg(&a, n, req->summary);
    answer(call, &a, &resp.base);
}

#define CZ_METHOD(name, fn, req, resp)                                                          \
    {.path = "/grpc.channelz.v1.Channelz/" name, .kind = RPC_UNARY,                             \
     .request = &grpc__channelz__v1__##req##__descriptor,                                       \
     .response = &grpc__channelz__v1__##resp##__descriptor, .on_message = fn}

static const struct rpc_method channelz_methods[] = {
    CZ_METHOD("GetTopChannels", on_get_top_channels, get_top_channels_request,
              get_top_channels_response),
    CZ_METHOD("GetServers", on_get_servers, get_servers_request, get_servers_response),
    CZ_METHOD("GetServer", on_get_server, get_server_request, get_server_response),
    CZ_METHOD("GetServerSockets", on_get_server_sockets, get_server_sockets_request,
              get_server_sockets_response),
    CZ_METHOD("GetChannel", on_get_channel, get_channel_request, get_channel_response),
    CZ_METHOD("GetSubchannel", on_get_subchannel, get_subchannel_request,
              get_subchannel_response),
    CZ_METHOD("GetSocket", on_get_socket, get_socket_request, get_socket_response),
};

int rpc_server_add_channelz(struct rpc_server *srv, struct channelz *cz)
{
    if (!srv || !cz)
        return RPC_ERR_INVAL;
    return rpc_server_register(srv, channelz_methods,
                               sizeof channelz_methods / sizeof channelz_methods[0], cz);
}
