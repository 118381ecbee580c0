/* server/rpc/call.c - one server-side gRPC call on an HTTP/2 stream:
 * request headers and metadata, routing, message reassembly and dispatch,
 * the bounded outbound queue, status and trailers, deadline, and the
 * public rpc_call_* API handlers use. */
#include "server/rpc/internal.h"

#include "common/mem.h"
#include "server/channelz/channelz.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), \
                   NGHTTP2_NV_FLAG_NO_COPY_NAME}

static struct channelz_socket_data *call_sock(const struct rpc_call *call)
{
    return call->conn->cz ? channelz_socket_of(call->conn->cz) : NULL;
}

struct rpc_call *rpc_call_new(struct rpc_conn *c, int32_t stream_id)
{
    struct rpc_call *call = metcd_calloc(1, sizeof *call);
    if (!call)
        return NULL;
    call->conn = c;
    call->stream_id = stream_id;
    call->timeout_ms = -1;
    rpc_deframer_init(&call->in, c->srv->cfg.max_recv_msg_size);
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->n_calls++;
    struct channelz_socket_data *sd = call_sock(call);
    if (sd) {
        sd->streams_started++;
        sd->last_remote_stream_ns = rpc_wall_ns();
    }
    return call;
}

void rpc_call_free(struct rpc_call *call)
{
    struct rpc_conn *c = call->conn;
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    c->n_calls--;
    if (call->drain_flag)
        c->drain_pending--;
    if (call->resume_flag)
        c->resume_pending--;
    if (call->held)
        evbuffer_free(call->held);
    if (call->started)
        c->srv->stats.calls_open--;
    if (call->deadline_ev)
        event_free(call->deadline_ev);
    if (call->out) {
        c->queued -= evbuffer_get_length(call->out);
        evbuffer_free(call->out);
    }
    rpc_deframer_reset(&call->in);
    for (size_t i = 0; i < call->n_md; i++)
        metcd_free((char *)call->md[i].key);
    metcd_free(call->md);
    for (size_t i = 0; i < call->n_resp_md; i++)
        metcd_free((char *)call->resp_md[i].key);
    metcd_free(call->resp_md);
    metcd_free(call->path);
    metcd_free(call->encoding);
    metcd_free(call->content_type);
    metcd_free(call->status_msg);
    metcd_free(call);
}

/* key and value in one allocation: "key\0value\0". */
static int md_append(struct rpc_md **arr, size_t *n, const uint8_t *k, size_t klen,
                     const uint8_t *v, size_t vlen)
{
    struct rpc_md *na = metcd_realloc(*arr, (*n + 1) * sizeof *na);
    if (!na)
        return RPC_ERR_NOMEM;
    *arr = na;
    char *kv = metcd_malloc(klen + vlen + 2);
    if (!kv)
        return RPC_ERR_NOMEM;
    memcpy(kv, k, klen);
    kv[klen] = 0;
    memcpy(kv + klen + 1, v, vlen);
    kv[klen + 1 + vlen] = 0;
    na[*n].key = kv;
    na[*n].value = kv + klen + 1;
    (*n)++;
    return 0;
}

static bool name_is(const uint8_t *name, size_t nlen, const char *lit)
{
    return strlen(lit) == nlen && memcmp(name, lit, nlen) == 0;
}

int rpc_call_on_header(struct rpc_call *call, const uint8_t *name, size_t nlen,
                       const uint8_t *value, size_t vlen)
{
    call->hdr_bytes += nlen + vlen + 32;
    if (call->hdr_bytes > RPC_MAX_HEADER_BYTES)
        return RPC_ERR_TOO_BIG;
    if (call->started) /* trailers from the client: ignored */
        return 0;
    if (nlen > 0 && name[0] == ':') {
        if (name_is(name, nlen, ":path")) {
            metcd_free(call->path);
            call->path = metcd_memdup(value, vlen + 1);
            if (!call->path)
                return RPC_ERR_NOMEM;
            call->path[vlen] = 0;
        } else if (name_is(name, nlen, ":method")) {
            call->bad_method = !(vlen == 4 && memcmp(value, "POST", 4) == 0);
        }
        return 0;
    }
    if (name_is(name, nlen, "content-type")) {
        metcd_free(call->content_type);
        call->content_type = metcd_memdup(value, vlen + 1);
        if (!call->content_type)
            return RPC_ERR_NOMEM;
        call->content_type[vlen] = 0;
    } else if (name_is(name, nlen, "grpc-encoding")) {
        metcd_free(call->encoding);
        call->encoding = metcd_memdup(value, vlen + 1);
        if (!call->encoding)
            return RPC_ERR_NOMEM;
        call->encoding[vlen] = 0;
        return 0;
    } else if (name_is(name, nlen, "grpc-timeout")) {
        call->timeout_ms = rpc_timeout_parse((const char *)value, vlen);
        if (call->timeout_ms < 0)
            call->timeout_ms = -2;
        return 0;
    } else if (name_is(name, nlen, "te")) {
        return 0;
    }
    return md_append(&call->md, &call->n_md, name, nlen, value, vlen);
}

/* ---- sending ---- */

static void count_status(struct rpc_call *call, enum rpc_code code)
{
    struct rpc_server *srv = call->conn->srv;
    if (!call->started)
        return;
    struct channelz_calls *cc = srv->cz ? channelz_calls_of(srv->cz) : NULL;
    if (call->rm && (unsigned)code < RPC_CODE_COUNT) {
        struct rpc_reg_method *rm = (struct rpc_reg_method *)call->rm;
        rm->handled[code]++;
        int64_t d = rpc_loop_wall_ns(srv->base) - call->start_ns;
        double s = d > 0 ? (double)d / 1e9 : 0;
        size_t b = 0;
        while (b < RPC_LATENCY_BUCKETS && s > rpc_latency_bounds[b])
            b++;
        rm->lat_hist[b]++;
        rm->lat_sum_s += s;
    }
    if (code == RPC_CODE_OK) {
        srv->stats.calls_succeeded++;
        if (cc)
            cc->succeeded++;
    } else {
        srv->stats.calls_failed++;
        if (cc)
            cc->failed++;
    }
}

/* Builds :status, content-type, extra metadata into nva (room for
 * 2 + n_resp_md + 2). Returns the count. */
static size_t response_nv(struct rpc_call *call, nghttp2_nv *nva, const char *status)
{
    size_t n = 0;
    nva[n++] = (nghttp2_nv)NV(":status", status);
    nva[n++] = (nghttp2_nv)NV("content-type", "application/grpc");
    for (size_t i = 0; i < call->n_resp_md; i++) {
        nva[n++] = (nghttp2_nv){(uint8_t *)call->resp_md[i].key,
                                (uint8_t *)call->resp_md[i].value,
                                strlen(call->resp_md[i].key), strlen(call->resp_md[i].value),
                                NGHTTP2_NV_FLAG_NONE};
    }
    return n;
}

static ssize_t on_data_source_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                                   size_t length, uint32_t *data_flags,
                                   nghttp2_data_source *source, void *user_data)
{
    (void)session;
    (void)stream_id;
    (void)user_data;
    return rpc_call_read_data(source->ptr, buf, length, data_flags);
}

static int submit_headers(struct rpc_call *call)
{
    nghttp2_nv nva[4 + call->n_resp_md];
    size_t n = response_nv(call, nva, "200");
    nghttp2_data_provider prd = {.source.ptr = call, .read_callback = on_data_source_read};
    if (nghttp2_submit_response(call->conn->h2, call->stream_id, nva, n, &prd) != 0)
        return RPC_ERR_PROTO;
    call->headers_sent = true;
    return 0;
}

static int submit_trailers(struct rpc_call *call)
{
    char code[12];
    snprintf(code, sizeof code, "%d", (int)call->status);
    nghttp2_nv nva[2] = {NV("grpc-status", code)};
    size_t n = 1;
    if (call->status_msg && call->status_msg[0])
        nva[n++] = (nghttp2_nv)NV("grpc-message", call->status_msg);
    int rc = nghttp2_submit_trailer(call->conn->h2, call->stream_id, nva, n);
    call->trailers_sent = rc == 0;
    return rc;
}

/* The stream cannot be ended properly (out of memory): reset it, or, if
 * even that fails, drop the connection (its one place of cleanup frees
 * the call). */
static void stream_give_up(struct rpc_call *call)
{
    if (nghttp2_submit_rst_stream(call->conn->h2, NGHTTP2_FLAG_NONE, call->stream_id,
                                  NGHTTP2_INTERNAL_ERROR) != 0)
        rpc_conn_kill(call->conn);
    else
        rpc_conn_schedule(call->conn);
}

/* Trailers-only response: one HEADERS frame with END_STREAM. */
static void submit_trailers_only(struct rpc_call *call, const char *http_status)
{
    char code[12];
    snprintf(code, sizeof code, "%d", (int)call->status);
    nghttp2_nv nva[6 + call->n_resp_md];
    size_t n = response_nv(call, nva, http_status);
    nva[n++] = (nghttp2_nv)NV("grpc-status", code);
    if (call->status_msg && call->status_msg[0])
        nva[n++] = (nghttp2_nv)NV("grpc-message", call->status_msg);
    if (nghttp2_submit_response(call->conn->h2, call->stream_id, nva, n, NULL) != 0) {
        stream_give_up(call);
        return;
    }
    call->headers_sent = true;
    call->trailers_sent = true;
}

ssize_t rpc_call_read_data(struct rpc_call *call, uint8_t *buf, size_t length,
                           uint32_t *flags)
{
    size_t avail = call->out ? evbuffer_get_length(call->out) : 0;
    size_t n = avail < length ? avail : length;
    if (n)
        evbuffer_remove(call->out, buf, n);
    avail -= n;
    call->conn->queued -= n;
    if (call->full && avail <= call->conn->srv->cfg.stream_queue_bytes / 2) {
        call->full = false;
        if (!call->drain_flag) {
            call->drain_flag = true;
            call->conn->drain_pending++;
        }
    }
    if (avail == 0 && call->finishing) {
        if (submit_trailers(call) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        return (ssize_t)n;
    }
    if (n == 0) {
        call->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static void call_kick(struct rpc_call *call)
{
    if (call->deferred) {
        call->deferred = false;
        nghttp2_session_resume_data(call->conn->h2, call->stream_id);
    }
    rpc_conn_schedule(call->conn);
}

/* Decides the status and sends it (after queued data, unless `drop`). */
static void call_set_status(struct rpc_call *call, enum rpc_code code, const char *msg,
                            bool drop, const char *http_status)
{
    if (call->finishing)
        return;
    call->finishing = true;
    call->status = code;
    if (msg && msg[0])
        call->status_msg = rpc_pct_encode(msg); /* NULL on OOM: no message */
    count_status(call, code);
    if (call->deadline_ev)
        event_del(call->deadline_ev);
    if (drop && call->out) {
        call->conn->queued -= evbuffer_get_length(call->out);
        evbuffer_drain(call->out, evbuffer_get_length(call->out));
    }
    if (!call->headers_sent) {
        submit_trailers_only(call, http_status ? http_status : "200");
        rpc_conn_schedule(call->conn);
    } else {
        call_kick(call);
    }
}

void rpc_call_abort(struct rpc_call *call, enum rpc_code code, const char *msg)
{
    if (call->owned) {
        call->owned = false;
        if (call->rm->m->on_cancel)
            call->rm->m->on_cancel(call, code);
    }
    call_set_status(call, code, msg, true, NULL);
}

/* The checks before a send: 0, or why nothing may be queued. */
static int send_check(struct rpc_call *call)
{
    if (!call->owned)
        return RPC_ERR_CLOSED;
    if (!call->out) {
        call->out = evbuffer_new();
        if (!call->out)
            return RPC_ERR_NOMEM;
    }
    if (evbuffer_get_length(call->out) >= call->conn->srv->cfg.stream_queue_bytes) {
        call->full = true;
        return RPC_ERR_FULL;
    }
    return 0;
}

/* After a message of `framed` bytes went into call->out. */
static int send_queued(struct rpc_call *call, size_t framed)
{
    call->conn->queued += framed;
    call->conn->srv->stats.msg_bytes_sent += framed >= 5 ? framed - 5 : 0;
    struct channelz_socket_data *sd = call_sock(call);
    if (sd) {
        sd->messages_sent++;
        sd->last_message_sent_ns = rpc_loop_wall_ns(call->conn->srv->base);
    }
    if (!call->headers_sent) {
        int rc = submit_headers(call);
        if (rc != 0)
            return rc;
        rpc_conn_schedule(call->conn);
        return 0;
    }
    call_kick(call);
    return 0;
}

int rpc_call_send(struct rpc_call *call, const ProtobufCMessage *msg)
{
    if (!call || !msg)
        return RPC_ERR_INVAL;
    int rc = send_check(call);
    if (rc != 0)
        return rc;
    size_t framed = 0;
    rc = rpc_frame_pack(call->out, msg, call->conn->srv->cfg.max_send_msg_size, &framed);
    if (rc != 0)
        return rc;
    return send_queued(call, framed);
}

int rpc_call_send_encoded(struct rpc_call *call, size_t max_len,
                          size_t (*encode)(void *arg, uint8_t *dst), void *arg)
{
    if (!call || !encode)
        return RPC_ERR_INVAL;
    int rc = send_check(call);
    if (rc != 0)
        return rc;
    size_t framed = 0;
    rc = rpc_frame_encode(call->out, max_len, encode, arg, call->conn->srv->cfg.max_send_msg_size,
                          &framed);
    if (rc != 0)
        return rc;
    return send_queued(call, framed);
}

int rpc_call_finish(struct rpc_call *call, enum rpc_code code, const char *msg)
{
    if (!call)
        return RPC_ERR_INVAL;
    if (!call->owned)
        return RPC_ERR_CLOSED;
    call->owned = false;
    call_set_status(call, code, msg, false, NULL);
    return 0;
}

int rpc_call_reply(struct rpc_call *call, const ProtobufCMessage *msg)
{
    int rc = rpc_call_send(call, msg);
    if (rc == RPC_ERR_CLOSED || rc == RPC_ERR_INVAL)
        return rc;
    if (rc == RPC_ERR_TOO_BIG) {
        char text[128];
        snprintf(text, sizeof text, "grpc: trying to send message larger than max (%zu vs. %zu)",
                 protobuf_c_message_get_packed_size(msg),
                 call->conn->srv->cfg.max_send_msg_size);
        rpc_call_finish(call, RPC_CODE_RESOURCE_EXHAUSTED, text);
        return rc;
    }
    if (rc != 0) {
        rpc_call_finish(call, RPC_CODE_INTERNAL, rpc_strerror(rc));
        return rc;
    }
    return rpc_call_finish(call, RPC_CODE_OK, NULL);
}

int rpc_call_add_header(struct rpc_call *call, const char *key, const char *value)
{
    if (!call || !key || !value)
        return RPC_ERR_INVAL;
    if (call->headers_sent || !call->owned)
        return RPC_ERR_STATE;
    return md_append(&call->resp_md, &call->n_resp_md, (const uint8_t *)key, strlen(key),
                     (const uint8_t *)value, strlen(value));
}

int rpc_call_send_headers(struct rpc_call *call)
{
    if (!call)
        return RPC_ERR_INVAL;
    if (!call->owned)
        return RPC_ERR_CLOSED;
    if (call->headers_sent)
        return 0;
    int rc = submit_headers(call);
    if (rc == 0)
        rpc_conn_schedule(call->conn);
    return rc;
}

const char *rpc_call_metadata(const struct rpc_call *call, const char *key)
{
    for (size_t i = 0; i < call->n_md; i++)
        if (strcmp(call->md[i].key, key) == 0)
            return call->md[i].value;
    return NULL;
}

const struct rpc_md *rpc_call_metadata_all(const struct rpc_call *call, size_t *n)
{
    *n = call->n_md;
    return call->md;
}

const char *rpc_call_path(const struct rpc_call *call) { return call->path; }
const char *rpc_call_peer(const struct rpc_call *call) { return call->conn->peer; }
const char *rpc_call_peer_cn(const struct rpc_call *call) { return call->conn->cert_cn; }
void *rpc_call_service_data(const struct rpc_call *call) { return call->rm ? call->rm->data : NULL; }
void rpc_call_set_data(struct rpc_call *call, void *data) { call->data = data; }
void *rpc_call_get_data(const struct rpc_call *call) { return call->data; }

int64_t rpc_call_remaining_ms(const struct rpc_call *call)
{
    if (!call->deadline_ms)
        return -1;
    uint64_t now = rpc_now_ms();
    return now >= call->deadline_ms ? 0 : (int64_t)(call->deadline_ms - now);
}

size_t rpc_call_queued_bytes(const struct rpc_call *call)
{
    return call->out ? evbuffer_get_length(call->out) : 0;
}

/* ---- receiving ---- */

static void on_call_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rpc_call *call = arg;
    rpc_call_abort(call, RPC_CODE_DEADLINE_EXCEEDED, "context deadline exceeded");
}

/* Fails a call the handler never saw. */
static void call_reject(struct rpc_call *call, enum rpc_code code, const char *msg,
                        const char *http_status)
{
    call_set_status(call, code, msg, true, http_status);
}

static bool content_type_ok(const char *ct)
{
    if (!ct || strncasecmp(ct, "application/grpc", 16) != 0)
        return false;
    return ct[16] == 0 || ct[16] == '+' || ct[16] == ';';
}

void rpc_call_on_headers_done(struct rpc_call *call)
{
    struct rpc_conn *c = call->conn;
    struct rpc_server *srv = c->srv;
    char text[320];
    if (call->started)
        return;
    if (call->bad_method || !call->path) {
        nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, call->stream_id,
                                  NGHTTP2_PROTOCOL_ERROR);
        call->finishing = true;
        return;
    }
    call->started = true;
    call->start_ns = rpc_loop_wall_ns(srv->base);
    srv->stats.calls_started++;
    srv->stats.calls_open++;
    if (srv->cz) {
        struct channelz_calls *cc = channelz_calls_of(srv->cz);
        cc->started++;
        cc->last_started_ns = rpc_wall_ns();
    }
    if (!content_type_ok(call->content_type)) {
        snprintf(text, sizeof text, "invalid gRPC request content-type \"%.200s\"",
                 call->content_type ? call->content_type : "");
        call_reject(call, RPC_CODE_INTERNAL, text, "415");
        return;
    }
    if (call->timeout_ms == -2) {
        call_reject(call, RPC_CODE_INTERNAL, "transport: malformed grpc-timeout", NULL);
        return;
    }
    call->rm = rpc_server_lookup(srv, call->path);
    if (call->rm)
        ((struct rpc_reg_method *)call->rm)->started++;
    if (!call->rm) {
        const char *p = call->path[0] == '/' ? call->path + 1 : call->path;
        const char *slash = strrchr(p, '/');
        if (call->path[0] != '/' || !slash || slash == p) {
            snprintf(text, sizeof text, "malformed method name: \"%.200s\"", call->path);
        } else {
            /* Known service? */
            size_t svc_len = (size_t)(slash - call->path);
            bool known = false;
            for (size_t i = 0; i < srv->n_methods && !known; i++)
                known = strncmp(srv->methods[i].m->path, call->path, svc_len + 1) == 0;
            if (known)
                snprintf(text, sizeof text, "unknown method %.100s for service %.*s", slash + 1,
                         (int)(slash - p) > 150 ? 150 : (int)(slash - p), p);
            else
                snprintf(text, sizeof text, "unknown service %.*s",
                         (int)(slash - p) > 200 ? 200 : (int)(slash - p), p);
        }
        call_reject(call, RPC_CODE_UNIMPLEMENTED, text, NULL);
        return;
    }
    if (call->encoding && strcmp(call->encoding, "identity") != 0) {
        snprintf(text, sizeof text,
                 "grpc: Decompressor is not installed for grpc-encoding \"%.100s\"",
                 call->encoding);
        call_reject(call, RPC_CODE_UNIMPLEMENTED, text, NULL);
        return;
    }
    if (call->timeout_ms >= 0) {
        call->deadline_ms = rpc_now_ms() + (uint64_t)call->timeout_ms;
        call->deadline_ev = evtimer_new(srv->base, on_call_deadline, call);
        if (!call->deadline_ev) {
            call_reject(call, RPC_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL);
            return;
        }
        struct timeval tv = {call->timeout_ms / 1000, (call->timeout_ms % 1000) * 1000};
        evtimer_add(call->deadline_ev, &tv);
    }
    enum rpc_kind k = call->rm->m->kind;
    if (k == RPC_CLIENT_STREAM || k == RPC_BIDI) {
        call->owned = true;
        if (call->rm->m->on_open)
            call->rm->m->on_open(call);
    }
}

static void call_message(struct rpc_call *call, uint8_t *buf, size_t len, int compressed)
{
    const struct rpc_method *m = call->rm->m;
    if (compressed) {
        metcd_free(buf);
        rpc_call_abort(call, RPC_CODE_INTERNAL,
                       "grpc: compressed flag set with identity or empty encoding");
        return;
    }
    ProtobufCMessage *msg = protobuf_c_message_unpack(m->request, &metcd_pb_allocator, len, buf);
    metcd_free(buf);
    call->conn->srv->stats.msg_bytes_received += len;
    if (!msg) {
        rpc_call_abort(call, RPC_CODE_INTERNAL,
                       "grpc: error unmarshalling request: proto: cannot parse invalid "
                       "wire-format data");
        return;
    }
    struct channelz_socket_data *sd = call_sock(call);
    if (sd) {
        sd->messages_received++;
        sd->last_message_received_ns = rpc_wall_ns();
    }
    if (m->kind == RPC_UNARY || m->kind == RPC_SERVER_STREAM) {
        call->got_msg = true;
        call->owned = true;
    }
    m->on_message(call, msg);
    protobuf_c_message_free_unpacked(msg, &metcd_pb_allocator);
}

/* Hands complete messages to the handler until the bytes run out or the
 * handler pauses the call; *data and *len are left at what was not
 * taken (nothing is left unless the call is paused and still live). */
static void deliver(struct rpc_call *call, const uint8_t **datap, size_t *lenp)
{
    const uint8_t *data = *datap;
    size_t len = *lenp;
    while (len > 0 && call->rm && !call->finishing && !call->recv_paused) {
        enum rpc_kind k = call->rm->m->kind;
        if ((k == RPC_UNARY || k == RPC_SERVER_STREAM) && call->got_msg)
            break; /* one request message; the rest is ignored */
        uint8_t *msg = NULL;
        size_t mlen = 0;
        int compressed = 0;
        int r = rpc_deframe(&call->in, &data, &len, &msg, &mlen, &compressed);
        if (r == RPC_DEFRAME_MORE)
            break;
        if (r == RPC_DEFRAME_TOO_BIG) {
            char text[128];
            snprintf(text, sizeof text, "grpc: received message larger than max (%u vs. %zu)",
                     call->in.too_big_len, call->in.limit);
            rpc_call_abort(call, RPC_CODE_RESOURCE_EXHAUSTED, text);
            break;
        }
        if (r == RPC_DEFRAME_NOMEM) {
            rpc_call_abort(call, RPC_CODE_RESOURCE_EXHAUSTED, "grpc: out of memory");
            break;
        }
        call_message(call, msg, mlen, compressed);
    }
    if (!call->recv_paused || call->finishing || !call->rm)
        len = 0; /* taken, or ignored */
    *datap = data;
    *lenp = len;
}

size_t rpc_call_on_data(struct rpc_call *call, const uint8_t *data, size_t len)
{
    if (!call->recv_paused && !(call->held && evbuffer_get_length(call->held)))
        deliver(call, &data, &len);
    if (len == 0 || call->finishing)
        return 0;
    if (!call->held)
        call->held = evbuffer_new();
    if (!call->held || evbuffer_add(call->held, data, len) != 0) {
        rpc_call_abort(call, RPC_CODE_RESOURCE_EXHAUSTED, "grpc: out of memory");
        return 0;
    }
    return len;
}

void rpc_call_deliver_held(struct rpc_call *call)
{
    struct rpc_conn *c = call->conn;
    size_t n;
    while (!call->recv_paused && call->held && (n = evbuffer_get_contiguous_space(call->held)) > 0) {
        const uint8_t *p = evbuffer_pullup(call->held, (ssize_t)n);
        size_t left = n;
        deliver(call, &p, &left);
        if (call->finishing)
            left = 0;
        evbuffer_drain(call->held, n - left);
        if (c->h2 && n > left &&
            nghttp2_session_consume_stream(c->h2, call->stream_id, n - left) != 0) {
            rpc_conn_kill(c);
            return;
        }
        if (call->finishing && call->held) {
            evbuffer_drain(call->held, evbuffer_get_length(call->held));
            break;
        }
    }
    if (!call->recv_paused && call->close_held &&
        !(call->held && evbuffer_get_length(call->held))) {
        call->close_held = false;
        call->remote_closed = false;
        rpc_call_on_remote_close(call);
    }
}

int rpc_call_pause_recv(struct rpc_call *call, int pause)
{
    if (!call || call->finishing)
        return RPC_ERR_CLOSED;
    struct rpc_conn *c = call->conn;
    if (pause) {
        if (!call->recv_paused)
            c->srv->stats.calls_recv_paused++;
        call->recv_paused = true;
        return 0;
    }
    if (!call->recv_paused)
        return 0;
    call->recv_paused = false;
    bool held = call->held && evbuffer_get_length(call->held);
    if ((held || call->close_held) && !call->resume_flag) {
        call->resume_flag = true;
        c->resume_pending++;
        rpc_conn_schedule(c);
    }
    return 0;
}

void rpc_call_on_remote_close(struct rpc_call *call)
{
    if (call->remote_closed)
        return;
    call->remote_closed = true;
    if (!call->rm || call->finishing)
        return;
    if (call->recv_paused || (call->held && evbuffer_get_length(call->held))) {
        call->close_held = true; /* after the held messages, on resume */
        return;
    }
    if (!rpc_deframer_idle(&call->in)) {
        rpc_call_abort(call, RPC_CODE_INTERNAL, "unexpected EOF");
        return;
    }
    enum rpc_kind k = call->rm->m->kind;
    if (k == RPC_UNARY || k == RPC_SERVER_STREAM) {
        if (!call->got_msg)
            call_reject(call, RPC_CODE_INTERNAL,
                        "grpc: error while receiving message: EOF", NULL);
        return;
    }
    if (call->owned && call->rm->m->on_half_close)
        call->rm->m->on_half_close(call);
}

void rpc_call_on_stream_close(struct rpc_call *call, uint32_t error_code, enum rpc_code why)
{
    struct channelz_socket_data *sd = call_sock(call);
    if (sd) {
        /* channelz.proto: on the server side a stream succeeded when we
         * sent a frame with END_STREAM (whatever its grpc-status; a
         * client's RST_STREAM after it changes nothing). */
        (void)error_code;
        if (call->eos_sent)
            sd->streams_succeeded++;
        else
            sd->streams_failed++;
    }
    if (call->owned) {
        call->owned = false;
        if (!call->finishing)
            count_status(call, why);
        call->finishing = true;
        if (call->rm->m->on_cancel)
            call->rm->m->on_cancel(call, why);
    } else if (call->started && !call->finishing) {
        count_status(call, RPC_CODE_CANCELLED);
    }
    rpc_call_free(call);
}
