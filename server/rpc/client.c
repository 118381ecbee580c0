/* server/rpc/client.c - the gRPC client: HTTP/2 (h2c prior knowledge) on
 * libevent + nghttp2 (or HTTP/2 over TLS with ALPN h2, through
 * bufferevent_openssl, when given a TLS context), endpoints tried in order with failover, calls waiting
 * (bounded) while a connection comes up, deadlines sent as grpc-timeout and
 * enforced locally, streaming both ways, channelz channel/subchannel/socket
 * registration. The blocking wrapper is in client_sync.c. */
#include "server/rpc/internal.h"

#include "common/mem.h"
#include "server/channelz/channelz.h"
#include "server/tls/tls.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define CLIENT_WINDOW (1u << 20)
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}

struct rpc_cconn;

struct rpc_ccall {
    struct rpc_client *cl;
    struct rpc_cconn *conn;          /* NULL while pending */
    int32_t stream_id;
    char *path;
    struct rpc_md *md;
    size_t n_md;
    uint32_t timeout_ms;
    uint64_t deadline_ms;
    struct event *deadline_ev;
    const ProtobufCMessageDescriptor *resp_desc;
    const struct rpc_ccall_ops *ops;
    void *data;
    struct evbuffer *out;
    struct rpc_deframer in;
    int http_status;
    int grpc_status;                 /* -1 until trailers */
    uint64_t msgs_waiting;           /* sent while pending (channelz) */
    char *grpc_message;
    bool send_closed, deferred, full, closing;
    bool recv_paused;                /* stream window withheld (rpc_ccall_pause_recv) */
    size_t unconsumed;               /* bytes received and not given back meanwhile */
    bool aborted;                    /* ended by us (cancel, deadline, error) */
    struct rpc_ccall *prev, *next;   /* client's call list */
    struct rpc_ccall *pnext;         /* pending queue */
};

struct rpc_cconn {
    struct rpc_client *cl;
    int ep;
    struct bufferevent *bev;
    nghttp2_session *h2;
    struct event *flush_ev;
    struct event *dial_ev;
    struct event *ka_ev;             /* keepalive: idle check, then PING deadline */
    uint64_t last_read_ms;           /* when the server last sent anything */
    uint64_t ping_sent_ms;           /* 0: no PING outstanding */
    bool connected, dead, draining;
    size_t n_streams;
    struct channelz_node *cz;
    struct rpc_cconn *next;
};

struct endpoint {
    char *host;
    char *port;
    char *authority;
    bool tls;                        /* dialed over TLS */
    struct channelz_node *cz;        /* subchannel */
};

struct rpc_client {
    struct event_base *base;
    struct rpc_client_config cfg;    /* cfg.tls: an owned reference */
    struct endpoint *eps;
    size_t n_eps;
    int cur;
    unsigned failures;               /* consecutive failed dials */
    struct rpc_cconn *conn;          /* the one new calls go to */
    struct rpc_cconn *conns;         /* all, including draining ones */
    struct rpc_ccall *calls;
    struct rpc_ccall *pending, *pending_tail;
    size_t n_pending;
    nghttp2_session_callbacks *cbs;
    nghttp2_option *h2_opt;          /* window updates follow rpc_ccall_pause_recv */
    struct event *kick_ev;           /* dials from the loop, never inline */
    struct channelz_node *cz;        /* channel */
    char *target;
    bool closing;                    /* rpc_client_free under way */
};

static void cconn_dial(struct rpc_client *cl);
static void cconn_schedule(struct rpc_cconn *cc);
static void cconn_kill(struct rpc_cconn *cc, const char *why);

static struct channelz *client_cz(const struct rpc_client *cl) { return cl->cfg.channelz; }

/* ---- call end ---- */

static void call_free(struct rpc_ccall *c)
{
    struct rpc_client *cl = c->cl;
    if (c->prev)
        c->prev->next = c->next;
    else
        cl->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->deadline_ev)
        event_free(c->deadline_ev);
    if (c->out)
        evbuffer_free(c->out);
    rpc_deframer_reset(&c->in);
    for (size_t i = 0; i < c->n_md; i++)
        metcd_free((char *)c->md[i].key);
    metcd_free(c->md);
    metcd_free(c->path);
    metcd_free(c->grpc_message);
    metcd_free(c);
}

static void pending_remove(struct rpc_client *cl, struct rpc_ccall *c)
{
    struct rpc_ccall **pp = &cl->pending;
    cl->pending_tail = NULL;
    while (*pp) {
        if (*pp == c) {
            *pp = c->pnext;
            cl->n_pending--;
            continue;
        }
        cl->pending_tail = *pp;
        pp = &(*pp)->pnext;
    }
}

static void count_call(struct rpc_ccall *c, enum rpc_code code)
{
    struct rpc_client *cl = c->cl;
    struct channelz_node *nodes[2] = {cl->cz, c->conn ? cl->eps[c->conn->ep].cz : NULL};
    for (int i = 0; i < 2; i++) {
        if (!nodes[i])
            continue;
        struct channelz_calls *cc = channelz_calls_of(nodes[i]);
        if (code == RPC_CODE_OK)
            cc->succeeded++;
        else
            cc->failed++;
    }
    if (c->conn && c->conn->cz) {
        /* channelz.proto: on the client side a stream succeeded when a
         * frame with END_STREAM arrived (the trailers), whatever the
         * status; resets, local cancels and deadlines are failures. */
        struct channelz_socket_data *sd = channelz_socket_of(c->conn->cz);
        if (c->grpc_status >= 0 && !c->aborted)
            sd->streams_succeeded++;
        else
            sd->streams_failed++;
    }
}

/* Reports the status once and frees the call. The stream, if any, must
 * already be detached from it. */
static void call_close(struct rpc_ccall *c, enum rpc_code code, const char *msg)
{
    if (c->closing)
        return;
    c->closing = true;
    if (!c->conn)
        pending_remove(c->cl, c);
    count_call(c, code);
    c->ops->on_close(c, code, msg ? msg : "", c->data);
    call_free(c);
}

static void call_detach(struct rpc_ccall *c)
{
    if (c->conn && c->stream_id > 0 && c->conn->h2) {
        nghttp2_session_set_stream_user_data(c->conn->h2, c->stream_id, NULL);
        c->conn->n_streams--;
    }
}

/* Ends a call from our side: RST_STREAM(CANCEL) if it is on the wire. */
static void call_abort(struct rpc_ccall *c, enum rpc_code code, const char *msg)
{
    c->aborted = true;
    if (c->conn && c->stream_id > 0 && c->conn->h2 && !c->conn->dead) {
        nghttp2_submit_rst_stream(c->conn->h2, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
        cconn_schedule(c->conn);
    }
    struct rpc_cconn *cc = c->conn;
    call_detach(c);
    call_close(c, code, msg);
    if (cc && cc->draining && cc->n_streams == 0)
        cconn_kill(cc, NULL);
}

/* ---- request submission ---- */

static ssize_t on_request_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                               size_t length, uint32_t *flags, nghttp2_data_source *source,
                               void *ud)
{
    (void)session;
    (void)stream_id;
    (void)ud;
    struct rpc_ccall *c = source->ptr;
    size_t avail = c->out ? evbuffer_get_length(c->out) : 0;
    size_t n = avail < length ? avail : length;
    if (n)
        evbuffer_remove(c->out, buf, n);
    avail -= n;
    if (c->full && avail <= c->cl->cfg.stream_queue_bytes / 2) {
        c->full = false;
        if (c->ops->on_drain)
            c->ops->on_drain(c, c->data);
    }
    if (avail == 0 && c->send_closed) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
    }
    if (n == 0) {
        c->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static int call_submit(struct rpc_ccall *c, struct rpc_cconn *cc)
{
    struct rpc_client *cl = c->cl;
    struct endpoint *ep = &cl->eps[cc->ep];
    char tmo[24];
    nghttp2_nv nva[9 + c->n_md];
    size_t n = 0;
    nva[n++] = (nghttp2_nv)NV(":method", "POST");
    nva[n++] = (nghttp2_nv)NV(":scheme", "http");
    nva[n++] = (nghttp2_nv)NV(":path", c->path);
    nva[n++] = (nghttp2_nv)NV(":authority", ep->authority);
    nva[n++] = (nghttp2_nv)NV("content-type", "application/grpc");
    nva[n++] = (nghttp2_nv)NV("te", "trailers");
    nva[n++] = (nghttp2_nv)NV("user-agent", "metcd-rpc/0.1");
    if (c->deadline_ms) {
        uint64_t now = rpc_now_ms();
        rpc_timeout_format(c->deadline_ms > now ? c->deadline_ms - now : 1, tmo, sizeof tmo);
        nva[n++] = (nghttp2_nv)NV("grpc-timeout", tmo);
    }
    for (size_t i = 0; i < c->n_md; i++)
        nva[n++] = (nghttp2_nv)NV(c->md[i].key, c->md[i].value);
    nghttp2_data_provider prd = {.source.ptr = c, .read_callback = on_request_read};
    int32_t id = nghttp2_submit_request(cc->h2, NULL, nva, n, &prd, c);
    if (id < 0)
        return id == NGHTTP2_ERR_NOMEM ? RPC_ERR_NOMEM : RPC_ERR_PROTO;
    c->conn = cc;
    c->stream_id = id;
    cc->n_streams++;
    if (cc->cz) {
        struct channelz_socket_data *sd = channelz_socket_of(cc->cz);
        sd->streams_started++;
        sd->last_local_stream_ns = rpc_wall_ns();
        if (c->msgs_waiting) { /* queued while the call waited */
            sd->messages_sent += c->msgs_waiting;
            sd->last_message_sent_ns = rpc_wall_ns();
        }
    }
    c->msgs_waiting = 0;
    if (ep->cz) {
        struct channelz_calls *calls = channelz_calls_of(ep->cz);
        calls->started++;
        calls->last_started_ns = rpc_wall_ns();
    }
    cconn_schedule(cc);
    return 0;
}

static void submit_pending(struct rpc_client *cl)
{
    while (cl->pending && cl->conn && cl->conn->connected) {
        struct rpc_ccall *c = cl->pending;
        cl->pending = c->pnext;
        if (!cl->pending)
            cl->pending_tail = NULL;
        cl->n_pending--;
        c->pnext = NULL;
        if (call_submit(c, cl->conn) != 0)
            call_close(c, RPC_CODE_INTERNAL, "grpc: failed to start the stream");
    }
}

static void fail_pending(struct rpc_client *cl, const char *why)
{
    while (cl->pending)
        call_close(cl->pending, RPC_CODE_UNAVAILABLE, why);
}

/* ---- nghttp2 callbacks ---- */

static int on_c_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                       size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct rpc_ccall *c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!c)
        return 0;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        c->http_status = 0;
        for (size_t i = 0; i < vlen && i < 4; i++)
            c->http_status = c->http_status * 10 + (value[i] - '0');
    } else if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        int v = 0;
        for (size_t i = 0; i < vlen && i < 4; i++)
            v = v * 10 + (value[i] - '0');
        c->grpc_status = v;
    } else if (nlen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        metcd_free(c->grpc_message);
        c->grpc_message = rpc_pct_decode((const char *)value, vlen);
    }
    return 0;
}

static int on_c_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                           const uint8_t *data, size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    /* No automatic window updates: the connection's window is given back
     * at once, a stream's unless its call is paused (rpc_ccall_pause_recv). */
    size_t total = len;
    if (nghttp2_session_consume_connection(session, total) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    struct rpc_ccall *c = nghttp2_session_get_stream_user_data(session, stream_id);
    while (c && len > 0) {
        uint8_t *msg = NULL;
        size_t mlen = 0;
        int compressed = 0;
        int r = rpc_deframe(&c->in, &data, &len, &msg, &mlen, &compressed);
        if (r == RPC_DEFRAME_MORE)
            break;
        if (r == RPC_DEFRAME_TOO_BIG) {
            char text[128];
            snprintf(text, sizeof text, "grpc: received message larger than max (%u vs. %zu)",
                     c->in.too_big_len, c->in.limit);
            call_abort(c, RPC_CODE_RESOURCE_EXHAUSTED, text);
            break;
        }
        if (r == RPC_DEFRAME_NOMEM) {
            call_abort(c, RPC_CODE_RESOURCE_EXHAUSTED, "grpc: out of memory");
            break;
        }
        if (compressed) {
            metcd_free(msg);
            call_abort(c, RPC_CODE_INTERNAL,
                       "grpc: compressed flag set with identity or empty encoding");
            break;
        }
        if (c->conn && c->conn->cz) {
            struct channelz_socket_data *sd = channelz_socket_of(c->conn->cz);
            sd->messages_received++;
            sd->last_message_received_ns = rpc_wall_ns();
        }
        if (c->ops->on_raw) {
            c->ops->on_raw(c, msg, mlen, c->data);
            metcd_free(msg);
            c = nghttp2_session_get_stream_user_data(session, stream_id);
            continue;
        }
        ProtobufCMessage *m = protobuf_c_message_unpack(c->resp_desc, &metcd_pb_allocator, mlen, msg);
        metcd_free(msg);
        if (!m) {
            call_abort(c, RPC_CODE_INTERNAL, "grpc: failed to unmarshal the received message");
            break;
        }
        if (c->ops->on_message)
            c->ops->on_message(c, m, c->data);
        protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
        /* The callback may have cancelled the call. */
        c = nghttp2_session_get_stream_user_data(session, stream_id);
    }
    c = nghttp2_session_get_stream_user_data(session, stream_id);
    if (c && c->recv_paused)
        c->unconsumed += total;
    else
        nghttp2_session_consume_stream(session, stream_id, total); /* a closed stream: no-op */
    return 0;
}

static enum rpc_code http_to_grpc(int status)
{
    switch (status) {
    case 400: return RPC_CODE_INTERNAL;
    case 401: return RPC_CODE_UNAUTHENTICATED;
    case 403: return RPC_CODE_PERMISSION_DENIED;
    case 404: return RPC_CODE_UNIMPLEMENTED;
    case 429: case 502: case 503: case 504: return RPC_CODE_UNAVAILABLE;
    default: return RPC_CODE_UNKNOWN;
    }
}

static int on_c_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                             void *ud)
{
    (void)ud;
    struct rpc_ccall *c = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!c)
        return 0;
    struct rpc_cconn *cc = c->conn;
    call_detach(c);
    char text[96];
    if (c->grpc_status >= 0) {
        call_close(c, (enum rpc_code)c->grpc_status, c->grpc_message);
    } else if (c->http_status && c->http_status != 200) {
        snprintf(text, sizeof text, "unexpected HTTP status code received from server: %d",
                 c->http_status);
        call_close(c, http_to_grpc(c->http_status), text);
    } else if (error_code == NGHTTP2_REFUSED_STREAM) {
        call_close(c, RPC_CODE_UNAVAILABLE, "the server refused the stream");
    } else if (error_code == NGHTTP2_CANCEL) {
        call_close(c, RPC_CODE_CANCELLED, "stream reset by the server");
    } else {
        snprintf(text, sizeof text, "stream terminated by RST_STREAM with error code: %u",
                 error_code);
        call_close(c, RPC_CODE_INTERNAL, error_code ? text : "server closed the stream without sending trailers");
    }
    if (cc->draining && cc->n_streams == 0)
        cconn_kill(cc, NULL);
    return 0;
}

static int on_c_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    (void)session;
    struct rpc_cconn *cc = ud;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        /* No new streams here: later calls go to a new connection. */
        cc->draining = true;
        if (cc->cl->conn == cc)
            cc->cl->conn = NULL;
        if (cc->n_streams == 0)
            cconn_kill(cc, NULL);
        else if (cc->cl->pending)
            event_active(cc->cl->kick_ev, EV_TIMEOUT, 0);
    }
    return 0;
}

static int on_c_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    (void)session;
    struct rpc_cconn *cc = ud;
    if (frame->hd.type == NGHTTP2_PING && !(frame->hd.flags & NGHTTP2_FLAG_ACK) && cc->cz)
        channelz_socket_of(cc->cz)->keepalives_sent++;
    return 0;
}

/* ---- connection ---- */

static void cconn_free(struct rpc_cconn *cc)
{
    struct rpc_client *cl = cc->cl;
    struct rpc_cconn **pp = &cl->conns;
    while (*pp && *pp != cc)
        pp = &(*pp)->next;
    if (*pp)
        *pp = cc->next;
    if (cl->conn == cc)
        cl->conn = NULL;
    if (cc->h2)
        nghttp2_session_del(cc->h2);
    if (cc->dial_ev)
        event_free(cc->dial_ev);
    if (cc->ka_ev)
        event_free(cc->ka_ev);
    if (cc->flush_ev)
        event_free(cc->flush_ev);
    if (cc->bev)
        bufferevent_free(cc->bev);
    channelz_remove(cc->cz);
    metcd_free(cc);
}

/* Fails every call on cc; marks it for freeing; fails over if it was the
 * current connection. why NULL: a clean end. */
static void cconn_kill(struct rpc_cconn *cc, const char *why)
{
    if (cc->dead)
        return;
    struct rpc_client *cl = cc->cl;
    cc->dead = true;
    bool was_current = cl->conn == cc;
    if (was_current)
        cl->conn = NULL;
    for (struct rpc_ccall *c = cl->calls, *next; c; c = next) {
        next = c->next;
        if (c->conn == cc) {
            call_detach(c);
            call_close(c, RPC_CODE_UNAVAILABLE, why ? why : "transport is closing");
        }
    }
    struct endpoint *ep = &cl->eps[cc->ep];
    if (ep->cz) {
        channelz_set_state(ep->cz, CHANNELZ_STATE_TRANSIENT_FAILURE);
        channelz_trace(ep->cz, CHANNELZ_SEV_WARNING,
                       why ? why : "Subchannel state changed to IDLE", NULL, rpc_wall_ns());
    }
    if (why && was_current) {
        /* Failover: the next call (or a pending one) uses the next endpoint. */
        cl->cur = (cc->ep + 1) % (int)cl->n_eps;
        if (!cc->connected)
            cl->failures++;
        if (cl->pending) {
            if (cl->failures >= cl->n_eps) {
                cl->failures = 0;
                fail_pending(cl, why);
            } else {
                event_active(cl->kick_ev, EV_TIMEOUT, 0);
            }
        }
    }
    cconn_schedule(cc);
}

static void cconn_flush(struct rpc_cconn *cc)
{
    if (!cc->h2 || cc->dead)
        return;
    struct evbuffer *out = bufferevent_get_output(cc->bev);
    while (evbuffer_get_length(out) < RPC_DEFAULT_CONN_QUEUE) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(cc->h2, &data);
        if (n < 0) {
            cconn_kill(cc, "connection error: protocol error");
            return;
        }
        if (n == 0)
            break;
        if (bufferevent_write(cc->bev, data, (size_t)n) != 0) {
            cconn_kill(cc, "connection error: out of memory");
            return;
        }
    }
    if (evbuffer_get_length(out) && !cc->cl->eps[cc->ep].tls)
        evbuffer_write(out, bufferevent_getfd(cc->bev)); /* now, not next turn */
    if (cc->cz) {
        struct channelz_socket_data *sd = channelz_socket_of(cc->cz);
        sd->local_window = nghttp2_session_get_local_window_size(cc->h2);
        sd->remote_window = nghttp2_session_get_remote_window_size(cc->h2);
    }
}

static void on_cconn_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rpc_cconn *cc = arg;
    if (cc->dead)
        cconn_free(cc);
    else
        cconn_flush(cc);
}

static void cconn_schedule(struct rpc_cconn *cc)
{
    event_active(cc->flush_ev, EV_TIMEOUT, 0);
}

static void on_cconn_read(struct bufferevent *bev, void *arg)
{
    struct rpc_cconn *cc = arg;
    if (!cc->h2)
        return; /* readable before the CONNECTED event ran: taken up there */
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len;
    if (evbuffer_get_length(in))
        cc->last_read_ms = rpc_now_ms(); /* anything from the server shows it alive */
    while (!cc->dead && (len = evbuffer_get_contiguous_space(in)) > 0) {
        const uint8_t *data = evbuffer_pullup(in, (ssize_t)len);
        ssize_t n = nghttp2_session_mem_recv(cc->h2, data, len);
        if (n < 0) {
            cconn_kill(cc, "connection error: protocol error");
            return;
        }
        evbuffer_drain(in, (size_t)n);
    }
    cconn_flush(cc);
}

static void on_cconn_written(struct bufferevent *bev, void *arg)
{
    (void)bev;
    cconn_flush(arg);
}

static int cconn_start_h2(struct rpc_cconn *cc)
{
    if (nghttp2_session_client_new3(&cc->h2, cc->cl->cbs, cc, cc->cl->h2_opt,
                                    &rpc_nghttp2_mem) != 0)
        return RPC_ERR_NOMEM;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, CLIENT_WINDOW},
    };
    if (nghttp2_submit_settings(cc->h2, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
        nghttp2_session_set_local_window_size(cc->h2, NGHTTP2_FLAG_NONE, 0, 4 * CLIENT_WINDOW))
        return RPC_ERR_NOMEM;
    return 0;
}

/* ---- keepalive (grpc-go's client keepalive: PING after keepalive_time of
 * silence while calls are open; no answer within keepalive_timeout kills
 * the connection, so its calls end and new ones fail over) ---- */

static void keepalive_arm(struct rpc_cconn *cc, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(cc->ka_ev, &tv);
}

static void on_keepalive(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rpc_cconn *cc = arg;
    struct rpc_client *cl = cc->cl;
    if (cc->dead || !cc->h2)
        return;
    uint64_t now = rpc_now_ms(), time_ms = cl->cfg.keepalive_time_ms;
    uint64_t timeout_ms = cl->cfg.keepalive_timeout_ms ? cl->cfg.keepalive_timeout_ms : 20000;
    if (cc->ping_sent_ms) {
        if (cc->last_read_ms >= cc->ping_sent_ms) {
            cc->ping_sent_ms = 0; /* answered (or other frames came) */
        } else if (now - cc->ping_sent_ms >= timeout_ms) {
            cconn_kill(cc, "keepalive ping failed to receive ACK within timeout");
            return;
        } else {
            keepalive_arm(cc, timeout_ms - (now - cc->ping_sent_ms));
            return;
        }
    }
    uint64_t quiet = now - cc->last_read_ms;
    if (quiet < time_ms) {
        keepalive_arm(cc, time_ms - quiet);
        return;
    }
    if (cc->n_streams == 0 && !cl->cfg.keepalive_idle) {
        keepalive_arm(cc, time_ms);
        return;
    }
    if (nghttp2_submit_ping(cc->h2, NGHTTP2_FLAG_NONE, NULL) != 0) {
        cconn_kill(cc, "connection error: out of memory");
        return;
    }
    cc->ping_sent_ms = now;
    cconn_flush(cc);
    if (!cc->dead)
        keepalive_arm(cc, timeout_ms);
}

static void on_cconn_event(struct bufferevent *bev, short what, void *arg)
{
    struct rpc_cconn *cc = arg;
    struct rpc_client *cl = cc->cl;
    if (what & BEV_EVENT_CONNECTED) {
        event_del(cc->dial_ev);
        if (cconn_start_h2(cc) != 0) {
            cconn_kill(cc, "connection error: out of memory");
            return;
        }
        int fd = bufferevent_getfd(bev), one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        cc->connected = true;
        cl->failures = 0;
        cc->last_read_ms = rpc_now_ms();
        if (cc->ka_ev)
            keepalive_arm(cc, cl->cfg.keepalive_time_ms);
        struct endpoint *ep = &cl->eps[cc->ep];
        if (cl->cfg.channelz && ep->cz) {
            channelz_set_state(ep->cz, CHANNELZ_STATE_READY);
            channelz_trace(ep->cz, CHANNELZ_SEV_INFO, "Subchannel state changed to READY", NULL,
                           rpc_wall_ns());
            if (channelz_add(client_cz(cl), CHANNELZ_SOCKET, ep->cz, ep->authority,
                             rpc_wall_ns(), &cc->cz) == 0) {
                struct sockaddr_storage l, r;
                socklen_t ll = sizeof l, rl = sizeof r;
                getsockname(fd, (struct sockaddr *)&l, &ll);
                getpeername(fd, (struct sockaddr *)&r, &rl);
                channelz_set_addrs(cc->cz, (struct sockaddr *)&l, ll, (struct sockaddr *)&r, rl);
                if (cl->cfg.tls)
                    rpc_channelz_tls(cc->cz, bufferevent_openssl_get_ssl(bev));
            }
        }
        if (cl->cz)
            channelz_set_state(cl->cz, CHANNELZ_STATE_READY);
        submit_pending(cl);
        if (evbuffer_get_length(bufferevent_get_input(bev)))
            on_cconn_read(bev, cc); /* the server spoke first */
        else
            cconn_flush(cc);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        char why[400];
        struct endpoint *ep = &cl->eps[cc->ep];
        int n = snprintf(why, sizeof why, "connection error: %s %s",
                         cc->connected ? "lost connection to" : "cannot connect to",
                         ep->authority);
        unsigned long e, last = 0;
        while (ep->tls && (e = bufferevent_get_openssl_error(bev)) != 0)
            if (!last && ERR_GET_LIB(e) != 0)
                last = e; /* the newest OpenSSL error (tls_front.c) */
        if (last && n > 0 && (size_t)n < sizeof why) {
            char tls_why[200];
            tls_error_text(bufferevent_openssl_get_ssl(bev), last, tls_why, sizeof tls_why,
                           "TLS handshake failed");
            snprintf(why + n, sizeof why - (size_t)n, ": %s", tls_why);
        }
        cconn_kill(cc, why);
    }
}

static void on_dial_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rpc_cconn *cc = arg;
    char why[160];
    snprintf(why, sizeof why, "connection error: timed out dialing %s",
             cc->cl->eps[cc->ep].authority);
    cconn_kill(cc, why);
}

/* Starts connecting to the current endpoint (if not already). */
static void cconn_dial(struct rpc_client *cl)
{
    if (cl->conn)
        return;
    for (size_t tries = 0; tries < cl->n_eps; tries++) {
        struct endpoint *ep = &cl->eps[cl->cur];
        struct rpc_cconn *cc = metcd_calloc(1, sizeof *cc);
        if (!cc)
            break;
        cc->cl = cl;
        cc->ep = cl->cur;
        cc->next = cl->conns;
        cl->conns = cc;
        cc->flush_ev = event_new(cl->base, -1, 0, on_cconn_flush, cc);
        cc->dial_ev = evtimer_new(cl->base, on_dial_timeout, cc);
        if (cl->cfg.keepalive_time_ms && !(cc->ka_ev = evtimer_new(cl->base, on_keepalive, cc))) {
            cc->dead = true;
            cconn_free(cc);
            break;
        }
        if (ep->tls) {
            SSL *ssl = tls_client_ssl_new(cl->cfg.tls, ep->host);
            cc->bev = ssl ? bufferevent_openssl_socket_new(cl->base, -1, ssl,
                                                           BUFFEREVENT_SSL_CONNECTING,
                                                           BEV_OPT_CLOSE_ON_FREE)
                          : NULL;
            if (ssl && !cc->bev)
                SSL_free(ssl);
        } else {
            cc->bev = bufferevent_socket_new(cl->base, -1, BEV_OPT_CLOSE_ON_FREE);
        }
        if (!cc->flush_ev || !cc->dial_ev || !cc->bev) {
            cc->dead = true;
            cconn_free(cc);
            break;
        }
        bufferevent_setcb(cc->bev, on_cconn_read, on_cconn_written, on_cconn_event, cc);
        bufferevent_setwatermark(cc->bev, EV_WRITE, RPC_DEFAULT_CONN_QUEUE / 2, 0);
        if (cl->cfg.channelz && !ep->cz && cl->cz) {
            if (channelz_add(client_cz(cl), CHANNELZ_SUBCHANNEL, cl->cz, ep->authority,
                             rpc_wall_ns(), &ep->cz) == 0)
                channelz_trace_parent(ep->cz, CHANNELZ_SEV_INFO, "Created subchannel",
                                      rpc_wall_ns());
        }
        if (ep->cz)
            channelz_set_state(ep->cz, CHANNELZ_STATE_CONNECTING);
        cl->conn = cc;
        struct addrinfo hints = {0}, *res = NULL;
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        int rc = getaddrinfo(ep->host, ep->port, &hints, &res);
        const struct addrinfo *ai = rc == 0 && res ? rpc_addrinfo_pick(res) : NULL;
        if (ai && bufferevent_socket_connect(cc->bev, ai->ai_addr, (int)ai->ai_addrlen) == 0) {
            freeaddrinfo(res);
            struct timeval tv = {cl->cfg.dial_timeout_ms / 1000,
                                 (cl->cfg.dial_timeout_ms % 1000) * 1000};
            evtimer_add(cc->dial_ev, &tv);
            bufferevent_enable(cc->bev, EV_READ | EV_WRITE);
            return;
        }
        if (res)
            freeaddrinfo(res);
        /* Immediate failure: kill (fails over, may re-enter dial). */
        char why[160];
        snprintf(why, sizeof why, "connection error: cannot connect to %s", ep->authority);
        cconn_kill(cc, why);
        return;
    }
    fail_pending(cl, "connection error: out of memory");
}

static void on_client_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rpc_client *cl = arg;
    if (cl->pending)
        cconn_dial(cl);
}

/* ---- public API ---- */

static int parse_endpoint(struct endpoint *ep, const char *s, bool have_tls)
{
    ep->tls = have_tls;
    if (strncmp(s, "http://", 7) == 0) {
        s += 7;
        ep->tls = false;
    } else if (strncmp(s, "https://", 8) == 0 && have_tls) {
        s += 8;
    } else if (strncmp(s, "unix://", 7) == 0 || strncmp(s, "https://", 8) == 0) {
        return RPC_ERR_INVAL;
    }
    const char *colon;
    const char *host = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return RPC_ERR_INVAL;
        host = s + 1;
        hlen = (size_t)(rb - host);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return RPC_ERR_INVAL;
        hlen = (size_t)(colon - s);
    }
    size_t alen = strcspn(s, "/");
    ep->host = metcd_memdup(host, hlen + 1);
    ep->port = metcd_memdup(colon + 1, strcspn(colon + 1, "/") + 1);
    ep->authority = metcd_memdup(s, alen + 1);
    if (!ep->host || !ep->port || !ep->authority)
        return RPC_ERR_NOMEM;
    ep->host[hlen] = 0;
    ep->port[strcspn(colon + 1, "/")] = 0;
    ep->authority[alen] = 0;
    return 0;
}

int rpc_client_new(struct rpc_client **out, struct event_base *base,
                   const struct rpc_client_config *cfg)
{
    if (!out || !base || !cfg || !cfg->endpoints || cfg->n_endpoints == 0)
        return RPC_ERR_INVAL;
    struct rpc_client *cl = metcd_calloc(1, sizeof *cl);
    if (!cl)
        return RPC_ERR_NOMEM;
    rpc_ignore_sigpipe();
    cl->base = base;
    cl->cfg = *cfg;
    cl->cfg.endpoints = NULL;
    cl->cfg.tls = NULL;
    if (cfg->tls) {
        if (SSL_CTX_up_ref(cfg->tls) != 1) {
            metcd_free(cl);
            return RPC_ERR_NOMEM;
        }
        cl->cfg.tls = cfg->tls;
    }
    if (!cl->cfg.dial_timeout_ms)
        cl->cfg.dial_timeout_ms = 5000;
    if (!cl->cfg.max_recv_msg_size)
        cl->cfg.max_recv_msg_size = RPC_DEFAULT_MAX_RECV;
    if (!cl->cfg.max_pending_calls)
        cl->cfg.max_pending_calls = 1024;
    if (!cl->cfg.stream_queue_bytes)
        cl->cfg.stream_queue_bytes = RPC_DEFAULT_STREAM_QUEUE;
    int rc = RPC_ERR_NOMEM;
    cl->eps = metcd_calloc(cfg->n_endpoints, sizeof *cl->eps);
    if (!cl->eps)
        goto err;
    cl->n_eps = cfg->n_endpoints;
    for (size_t i = 0; i < cl->n_eps; i++) {
        rc = parse_endpoint(&cl->eps[i], cfg->endpoints[i], cfg->tls != NULL);
        if (rc != 0)
            goto err;
    }
    rc = RPC_ERR_NOMEM;
    cl->target = metcd_strdup(cfg->target ? cfg->target : cfg->endpoints[0]);
    if (!cl->target)
        goto err;
    cl->cfg.target = cl->target;
    if (rpc_h2_client_callbacks(&cl->cbs) != 0)
        goto err;
    if (nghttp2_option_new(&cl->h2_opt) != 0)
        goto err;
    nghttp2_option_set_no_auto_window_update(cl->h2_opt, 1);
    cl->kick_ev = event_new(base, -1, 0, on_client_kick, cl);
    if (!cl->kick_ev)
        goto err;
    if (cfg->channelz) {
        if (channelz_add(cfg->channelz, CHANNELZ_CHANNEL, NULL, cl->target, rpc_wall_ns(),
                         &cl->cz) != 0)
            goto err;
        channelz_trace(cl->cz, CHANNELZ_SEV_INFO, "Channel created", NULL, rpc_wall_ns());
    }
    *out = cl;
    return 0;
err:
    rpc_client_free(cl);
    return rc;
}

int rpc_h2_client_callbacks(nghttp2_session_callbacks **out)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return RPC_ERR_NOMEM;
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_c_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_c_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_c_stream_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_c_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_c_frame_send);
    *out = cbs;
    return 0;
}

void rpc_client_free(struct rpc_client *cl)
{
    if (!cl)
        return;
    cl->closing = true; /* on_close callbacks cannot start new calls */
    while (cl->calls)
        call_abort(cl->calls, RPC_CODE_CANCELLED, "grpc: the client connection is closing");
    while (cl->conns) {
        cl->conns->dead = true;
        cconn_free(cl->conns);
    }
    if (cl->cbs)
        nghttp2_session_callbacks_del(cl->cbs);
    if (cl->h2_opt)
        nghttp2_option_del(cl->h2_opt);
    if (cl->kick_ev)
        event_free(cl->kick_ev);
    for (size_t i = 0; cl->eps && i < cl->n_eps; i++) {
        metcd_free(cl->eps[i].host);
        metcd_free(cl->eps[i].port);
        metcd_free(cl->eps[i].authority);
        channelz_remove(cl->eps[i].cz);
    }
    metcd_free(cl->eps);
    channelz_remove(cl->cz);
    metcd_free(cl->target);
    SSL_CTX_free(cl->cfg.tls);
    metcd_free(cl);
}

struct event_base *rpc_client_base(const struct rpc_client *cl) { return cl->base; }

void rpc_client_cancel_all(struct rpc_client *cl)
{
    while (cl->calls)
        call_abort(cl->calls, RPC_CODE_CANCELLED, "context canceled");
}

int rpc_client_endpoint(const struct rpc_client *cl)
{
    return cl->conn && cl->conn->connected ? cl->conn->ep : -1;
}

static void on_ccall_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    call_abort(arg, RPC_CODE_DEADLINE_EXCEEDED, "context deadline exceeded");
}

int rpc_ccall_start(struct rpc_client *cl, const char *path,
                    const ProtobufCMessageDescriptor *response, const struct rpc_md *md,
                    size_t n_md, uint32_t timeout_ms, const struct rpc_ccall_ops *ops,
                    void *data, struct rpc_ccall **out)
{
    if (!cl || !path || path[0] != '/' || !response || !ops || !ops->on_close ||
        (n_md && !md))
        return RPC_ERR_INVAL;
    if (cl->closing)
        return RPC_ERR_STATE;
    bool ready = cl->conn && cl->conn->connected;
    if (!ready && cl->n_pending >= cl->cfg.max_pending_calls)
        return RPC_ERR_FULL;
    struct rpc_ccall *c = metcd_calloc(1, sizeof *c);
    if (!c)
        return RPC_ERR_NOMEM;
    c->cl = cl;
    c->resp_desc = response;
    c->ops = ops;
    c->data = data;
    c->grpc_status = -1;
    c->timeout_ms = timeout_ms;
    rpc_deframer_init(&c->in, cl->cfg.max_recv_msg_size);
    c->next = cl->calls;
    if (cl->calls)
        cl->calls->prev = c;
    cl->calls = c;
    c->closing = true; /* until fully set up: errors free without on_close */
    int rc = RPC_ERR_NOMEM;
    c->path = metcd_strdup(path);
    c->out = evbuffer_new();
    if (!c->path || !c->out)
        goto err;
    if (n_md) {
        c->md = metcd_calloc(n_md, sizeof *c->md);
        if (!c->md)
            goto err;
        for (size_t i = 0; i < n_md; i++) {
            size_t kl = strlen(md[i].key), vl = strlen(md[i].value);
            char *kv = metcd_malloc(kl + vl + 2);
            if (!kv)
                goto err;
            memcpy(kv, md[i].key, kl + 1);
            memcpy(kv + kl + 1, md[i].value, vl + 1);
            c->md[c->n_md].key = kv;
            c->md[c->n_md++].value = kv + kl + 1;
        }
    }
    if (timeout_ms) {
        c->deadline_ms = rpc_now_ms() + timeout_ms;
        c->deadline_ev = evtimer_new(cl->base, on_ccall_deadline, c);
        if (!c->deadline_ev)
            goto err;
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        evtimer_add(c->deadline_ev, &tv);
    }
    if (cl->cz) {
        struct channelz_calls *calls = channelz_calls_of(cl->cz);
        calls->started++;
        calls->last_started_ns = rpc_wall_ns();
    }
    c->closing = false;
    if (ready) {
        rc = call_submit(c, cl->conn);
        if (rc != 0)
            goto err;
    } else {
        if (cl->pending_tail)
            cl->pending_tail->pnext = c;
        else
            cl->pending = c;
        cl->pending_tail = c;
        cl->n_pending++;
    }
    if (out)
        *out = c;
    if (!ready && !cl->conn)
        event_active(cl->kick_ev, EV_TIMEOUT, 0);
    return 0;
err:
    c->closing = true;
    call_free(c);
    return rc;
}

int rpc_ccall_send(struct rpc_ccall *c, const ProtobufCMessage *msg)
{
    if (!c || !msg)
        return RPC_ERR_INVAL;
    if (c->send_closed || c->closing)
        return RPC_ERR_CLOSED;
    if (evbuffer_get_length(c->out) >= c->cl->cfg.stream_queue_bytes) {
        c->full = true;
        return RPC_ERR_FULL;
    }
    int rc = rpc_frame_pack(c->out, msg, 0xffffffffu, NULL);
    if (rc != 0)
        return rc;
    if (c->conn && c->conn->cz) {
        struct channelz_socket_data *sd = channelz_socket_of(c->conn->cz);
        sd->messages_sent++;
        sd->last_message_sent_ns = rpc_wall_ns();
    } else if (!c->conn) {
        c->msgs_waiting++;
    }
    if (c->conn && c->deferred) {
        c->deferred = false;
        nghttp2_session_resume_data(c->conn->h2, c->stream_id);
        cconn_schedule(c->conn);
    }
    return 0;
}

int rpc_ccall_close_send(struct rpc_ccall *c)
{
    if (!c)
        return RPC_ERR_INVAL;
    if (c->send_closed || c->closing)
        return RPC_ERR_CLOSED;
    c->send_closed = true;
    if (c->conn && c->deferred) {
        c->deferred = false;
        nghttp2_session_resume_data(c->conn->h2, c->stream_id);
        cconn_schedule(c->conn);
    }
    return 0;
}

void rpc_ccall_cancel(struct rpc_ccall *c)
{
    if (c && !c->closing)
        call_abort(c, RPC_CODE_CANCELLED, "context canceled");
}

int rpc_ccall_pause_recv(struct rpc_ccall *c, int pause)
{
    if (!c)
        return RPC_ERR_INVAL;
    if (c->closing)
        return RPC_ERR_CLOSED;
    if (pause) {
        c->recv_paused = true;
        return 0;
    }
    if (!c->recv_paused)
        return 0;
    c->recv_paused = false;
    size_t n = c->unconsumed;
    c->unconsumed = 0;
    if (n && c->conn && c->stream_id > 0 && c->conn->h2 && !c->conn->dead) {
        nghttp2_session_consume_stream(c->conn->h2, c->stream_id, n);
        cconn_schedule(c->conn); /* the WINDOW_UPDATE goes out from the loop */
    }
    return 0;
}

/* ---- async unary ---- */

struct unary_ctx {
    rpc_unary_done_fn done;
    void *data;
    const ProtobufCMessage *resp; /* borrowed during on_message */
    ProtobufCMessage *kept;
};

static void on_unary_message(struct rpc_ccall *c, const ProtobufCMessage *msg, void *data)
{
    struct unary_ctx *u = data;
    (void)c;
    if (u->kept)
        return; /* a unary answer has one message; ignore extras */
    /* Keep a copy until the status arrives (msg is borrowed). */
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = metcd_malloc(n ? n : 1);
    if (!buf)
        return;
    protobuf_c_message_pack(msg, buf);
    u->kept = protobuf_c_message_unpack(msg->descriptor, &metcd_pb_allocator, n, buf);
    metcd_free(buf);
}

static void on_unary_close(struct rpc_ccall *c, enum rpc_code code, const char *msg, void *data)
{
    (void)c;
    struct unary_ctx *u = data;
    if (code == RPC_CODE_OK && !u->kept) {
        code = RPC_CODE_INTERNAL;
        msg = "grpc: no response message for a unary call";
    }
    u->done(code == RPC_CODE_OK ? u->kept : NULL, code, msg, u->data);
    if (u->kept)
        protobuf_c_message_free_unpacked(u->kept, &metcd_pb_allocator);
    metcd_free(u);
}

static const struct rpc_ccall_ops unary_ops = {
    .on_message = on_unary_message,
    .on_close = on_unary_close,
};

int rpc_client_unary(struct rpc_client *cl, const char *path, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *response, const struct rpc_md *md,
                     size_t n_md, uint32_t timeout_ms, rpc_unary_done_fn done, void *data)
{
    if (!req || !done)
        return RPC_ERR_INVAL;
    struct unary_ctx *u = metcd_calloc(1, sizeof *u);
    if (!u)
        return RPC_ERR_NOMEM;
    u->done = done;
    u->data = data;
    struct rpc_ccall *c = NULL;
    int rc = rpc_ccall_start(cl, path, response, md, n_md, timeout_ms, &unary_ops, u, &c);
    if (rc != 0) {
        metcd_free(u);
        return rc;
    }
    /* Start never closes a call inline: c is live here. */
    rc = rpc_ccall_send(c, req);
    if (rc == 0)
        rc = rpc_ccall_close_send(c);
    if (rc != 0)
        call_abort(c, RPC_CODE_INTERNAL, rpc_strerror(rc));
    return 0;
}
