/* server/rpc/h2conn.c - a server-side HTTP/2 connection: the nghttp2
 * session and its callbacks, reading and writing through a bufferevent with
 * backpressure both ways, keepalive (answering, sending and policing PINGs)
 * and GOAWAY. */
#include "server/rpc/internal.h"

#include "common/mem.h"
#include "server/channelz/channelz.h"

#include <string.h>

#define H2_WINDOW (1u << 20)
/* grpc-go: with no active stream, client pings closer than 2 h are strikes. */
#define PING_MIN_IDLE_MS (2u * 3600 * 1000)
#define MAX_PING_STRIKES 2

static struct rpc_call *stream_call(nghttp2_session *s, int32_t id)
{
    return nghttp2_session_get_stream_user_data(s, id);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    struct rpc_conn *c = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (c->queued >= c->srv->cfg.conn_queue_bytes) {
        /* Answers already wait for this client's window: refuse (the
         * client may retry the stream; nothing was processed). */
        c->srv->stats.streams_refused++;
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    struct rpc_call *call = rpc_call_new(c, frame->hd.stream_id);
    if (!call)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, call) != 0) {
        rpc_call_free(call);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud)
{
    (void)flags;
    (void)ud;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct rpc_call *call = stream_call(session, frame->hd.stream_id);
    if (!call)
        return 0;
    if (rpc_call_on_header(call, name, namelen, value, valuelen) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static void on_ping(struct rpc_conn *c)
{
    struct rpc_server *srv = c->srv;
    uint64_t now = rpc_now_ms();
    if (c->reset_strikes) {
        c->reset_strikes = false;
        c->ping_strikes = 0;
        c->last_ping_recv_ms = now;
        return;
    }
    uint64_t min = c->n_calls ? srv->cfg.keepalive_min_time_ms : PING_MIN_IDLE_MS;
    if (c->last_ping_recv_ms && now - c->last_ping_recv_ms < min)
        c->ping_strikes++;
    c->last_ping_recv_ms = now;
    if (c->ping_strikes > MAX_PING_STRIKES && !c->close_after_write) {
        static const char why[] = "too_many_pings";
        nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(c->h2),
                              NGHTTP2_ENHANCE_YOUR_CALM, (const uint8_t *)why, sizeof why - 1);
        c->goaway = true;
        c->close_after_write = true;
    }
}

static void keepalive_arm(struct rpc_conn *c, uint32_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->ka_ev, &tv);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    struct rpc_conn *c = ud;
    struct rpc_call *call;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        call = stream_call(session, frame->hd.stream_id);
        if (!call)
            break;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            rpc_call_on_headers_done(call);
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
            rpc_call_on_remote_close(call);
        break;
    case NGHTTP2_DATA:
        call = stream_call(session, frame->hd.stream_id);
        if (call && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            rpc_call_on_remote_close(call);
        break;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
            if (c->ping_outstanding && c->ka_ev) {
                c->ping_outstanding = false;
                keepalive_arm(c, c->srv->cfg.keepalive_interval_ms);
            }
        } else {
            on_ping(c);
        }
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    /* No automatic window updates (server.c): the connection window is
     * given back at once, a stream's once its call has taken the bytes. */
    if (nghttp2_session_consume_connection(session, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    struct rpc_call *call = stream_call(session, stream_id);
    size_t held = call ? rpc_call_on_data(call, data, len) : 0;
    if (held < len && nghttp2_session_consume_stream(session, stream_id, len - held) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *ud)
{
    (void)ud;
    struct rpc_call *call = stream_call(session, stream_id);
    if (call) {
        nghttp2_session_set_stream_user_data(session, stream_id, NULL);
        rpc_call_on_stream_close(call, error_code, RPC_CODE_CANCELLED);
    }
    return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    struct rpc_conn *c = ud;
    if (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) {
        c->reset_strikes = true;
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            struct rpc_call *call = stream_call(session, frame->hd.stream_id);
            if (call)
                call->eos_sent = true;
        }
    }
    return 0;
}

int rpc_h2_callbacks_new(nghttp2_session_callbacks **out)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return RPC_ERR_NOMEM;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    *out = cbs;
    return 0;
}

/* ---- I/O ---- */

static void on_h2_readable(struct bufferevent *bev, void *arg)
{
    (void)bev;
    rpc_h2_on_read(arg);
}

static void on_h2_written(struct bufferevent *bev, void *arg)
{
    (void)bev;
    rpc_h2_flush(arg);
}

static void on_h2_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        rpc_conn_kill(arg);
}

static void on_keepalive(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rpc_conn *c = arg;
    if (c->ping_outstanding) { /* no ACK within keepalive_timeout */
        rpc_conn_kill(c);
        return;
    }
    if (nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL) != 0) {
        rpc_conn_kill(c);
        return;
    }
    c->ping_outstanding = true;
    if (c->cz)
        channelz_socket_of(c->cz)->keepalives_sent++;
    keepalive_arm(c, c->srv->cfg.keepalive_timeout_ms);
    rpc_conn_schedule(c);
}

int rpc_h2_start(struct rpc_conn *c)
{
    struct rpc_server *srv = c->srv;
    if (nghttp2_session_server_new3(&c->h2, srv->h2_cbs, c, srv->h2_opt, &rpc_nghttp2_mem) != 0)
        return RPC_ERR_NOMEM;
    c->bev = bufferevent_socket_new(srv->base, c->fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev)
        return RPC_ERR_NOMEM;
    c->fd = -1; /* the bufferevent owns it */
    bufferevent_setcb(c->bev, on_h2_readable, on_h2_written, on_h2_event, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, srv->cfg.conn_queue_bytes / 2, 0);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, srv->cfg.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, RPC_MAX_HEADER_BYTES},
    };
    if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0)
        return RPC_ERR_NOMEM;
    if (nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 4 * H2_WINDOW) != 0)
        return RPC_ERR_NOMEM;
    if (srv->cfg.keepalive_interval_ms) {
        c->ka_ev = evtimer_new(srv->base, on_keepalive, c);
        if (!c->ka_ev)
            return RPC_ERR_NOMEM;
        keepalive_arm(c, srv->cfg.keepalive_interval_ms);
    }
    if (c->cz)
        channelz_set_state(c->cz, CHANNELZ_STATE_READY);
    if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0)
        return RPC_ERR_IO;
    rpc_conn_schedule(c);
    return 0;
}

void rpc_h2_on_read(struct rpc_conn *c)
{
    if (c->dead)
        return;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len;
    while ((len = evbuffer_get_contiguous_space(in)) > 0) {
        const uint8_t *data = evbuffer_pullup(in, (ssize_t)len);
        ssize_t n = nghttp2_session_mem_recv(c->h2, data, len);
        if (n < 0) {
            rpc_conn_kill(c);
            return;
        }
        evbuffer_drain(in, (size_t)n);
        if (c->paused)
            break;
    }
    rpc_h2_flush(c);
}

static void run_drains(struct rpc_conn *c)
{
    struct rpc_call *call = c->calls;
    while (c->drain_pending && call) {
        struct rpc_call *next = call->next;
        if (call->drain_flag) {
            call->drain_flag = false;
            c->drain_pending--;
            if (call->owned && call->rm && call->rm->m->on_drain)
                call->rm->m->on_drain(call);
        }
        call = next;
    }
}

void rpc_h2_flush(struct rpc_conn *c)
{
    if (c->dead || !c->h2)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t limit = c->srv->cfg.conn_queue_bytes;
    for (int round = 0; round < 2; round++) {
        while (evbuffer_get_length(out) < limit) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(c->h2, &data);
            if (n < 0) {
                rpc_conn_kill(c);
                return;
            }
            if (n == 0)
                break;
            if (bufferevent_write(c->bev, data, (size_t)n) != 0) {
                rpc_conn_kill(c);
                return;
            }
        }
        if (!c->drain_pending)
            break;
        run_drains(c); /* may queue more: one more round */
    }
    /* Write now rather than on the next loop turn: answers leave in the
     * same turn as the requests that caused them (what the socket does not
     * take, the bufferevent writes when it can). */
    if (evbuffer_get_length(out))
        evbuffer_write(out, bufferevent_getfd(c->bev));
    if (c->drain_pending)
        rpc_conn_schedule(c);
    /* Paused while the socket's queue passes the bound: a client that
     * sends faster than it reads stops being read (TCP pushes back). Not
     * for answers held back by flow control (c->queued): reading is what
     * brings the client's WINDOW_UPDATEs; new streams are refused instead
     * (on_begin_headers). */
    bool over = evbuffer_get_length(out) >= limit;
    if (over && !c->paused) {
        c->paused = true;
        c->srv->stats.conns_paused++;
        bufferevent_disable(c->bev, EV_READ);
    } else if (!over && c->paused) {
        c->paused = false;
        bufferevent_enable(c->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_input(c->bev))) {
            c->read_pending = true;
            rpc_conn_schedule(c);
        }
    }
    if (c->cz) {
        struct channelz_socket_data *sd = channelz_socket_of(c->cz);
        sd->local_window = nghttp2_session_get_local_window_size(c->h2);
        sd->remote_window = nghttp2_session_get_remote_window_size(c->h2);
    }
    bool flushed = evbuffer_get_length(out) == 0;
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2) && flushed)
        rpc_conn_kill(c);
    else if (flushed && (c->close_after_write || (c->goaway && c->n_calls == 0)))
        rpc_conn_kill(c);
}

void rpc_h2_resume_calls(struct rpc_conn *c)
{
    struct rpc_call *call = c->calls;
    while (c->resume_pending && call && !c->dead) {
        struct rpc_call *next = call->next; /* delivering never frees a call */
        if (call->resume_flag) {
            call->resume_flag = false;
            c->resume_pending--;
            rpc_call_deliver_held(call);
        }
        call = next;
    }
    rpc_h2_flush(c);
}

void rpc_h2_goaway(struct rpc_conn *c)
{
    if (c->goaway)
        return;
    c->goaway = true;
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                          NGHTTP2_NO_ERROR, NULL, 0);
    rpc_conn_schedule(c);
}

void rpc_h2_drop_calls(struct rpc_conn *c, enum rpc_code code)
{
    while (c->calls) {
        struct rpc_call *call = c->calls;
        if (c->h2)
            nghttp2_session_set_stream_user_data(c->h2, call->stream_id, NULL);
        rpc_call_on_stream_close(call, NGHTTP2_CANCEL, code);
    }
}
