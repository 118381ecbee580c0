/* tests/interop/echo_service.c - metcd.test.Echo: unary (optionally late,
 * optionally failing), server-streaming with backpressure, client-streaming
 * and bidi. */
#include "echo_service.h"

#include "common/mem.h"

#include <event2/event.h>
#include <string.h>

unsigned long echo_cancelled;
long echo_live;

struct echo_call {
    struct rpc_call *call;
    struct event *timer;
    Metcd__Test__EchoRequest *req; /* kept for late answers */
    int32_t sent, total;
    int32_t received;
    char *joined;
};

static struct event_base *echo_base;

static void echo_call_free(struct echo_call *ec)
{
    if (!ec)
        return;
    if (ec->timer)
        event_free(ec->timer);
    if (ec->req)
        protobuf_c_message_free_unpacked(&ec->req->base, &metcd_pb_allocator);
    metcd_free(ec->joined);
    metcd_free(ec);
    echo_live--;
}

static struct echo_call *echo_call_new(struct rpc_call *call)
{
    struct echo_call *ec = metcd_calloc(1, sizeof *ec);
    if (!ec)
        return NULL;
    ec->call = call;
    rpc_call_set_data(call, ec);
    echo_live++;
    return ec;
}

static void reply_to(struct rpc_call *call, const Metcd__Test__EchoRequest *req)
{
    Metcd__Test__EchoResponse resp = METCD__TEST__ECHO_RESPONSE__INIT;
    resp.message = req->message;
    resp.payload = req->payload;
    const char *tok = rpc_call_metadata(call, "token");
    resp.token = (char *)(tok ? tok : "");
    if (req->status)
        rpc_call_finish(call, (enum rpc_code)req->status, req->message);
    else
        rpc_call_reply(call, &resp.base);
}

static void on_unary_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct echo_call *ec = arg;
    reply_to(ec->call, ec->req);
    echo_call_free(ec);
}

static void on_unary(struct rpc_call *call, const ProtobufCMessage *msg)
{
    const Metcd__Test__EchoRequest *req = (const Metcd__Test__EchoRequest *)msg;
    if (req->delay_ms <= 0) {
        reply_to(call, req);
        return;
    }
    struct echo_call *ec = echo_call_new(call);
    if (!ec) {
        rpc_call_finish(call, RPC_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    /* Keep a copy of the request: msg is borrowed. */
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = metcd_malloc(n ? n : 1);
    if (buf) {
        protobuf_c_message_pack(msg, buf);
        ec->req = (Metcd__Test__EchoRequest *)protobuf_c_message_unpack(
            &metcd__test__echo_request__descriptor, &metcd_pb_allocator, n, buf);
        metcd_free(buf);
    }
    ec->timer = evtimer_new(echo_base, on_unary_timer, ec);
    if (!ec->req || !ec->timer) {
        rpc_call_set_data(call, NULL);
        echo_call_free(ec);
        rpc_call_finish(call, RPC_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    struct timeval tv = {req->delay_ms / 1000, (req->delay_ms % 1000) * 1000};
    evtimer_add(ec->timer, &tv);
}

static void on_any_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    echo_cancelled++;
    echo_call_free(rpc_call_get_data(call));
}

/* Sends until done or the queue is full (then on_drain resumes). */
static void stream_pump(struct echo_call *ec)
{
    while (ec->sent < ec->total) {
        Metcd__Test__EchoResponse resp = METCD__TEST__ECHO_RESPONSE__INIT;
        resp.message = ec->req->message;
        resp.payload = ec->req->payload;
        resp.index = ec->sent;
        int rc = rpc_call_send(ec->call, &resp.base);
        if (rc == RPC_ERR_FULL)
            return;
        if (rc != 0) {
            rpc_call_finish(ec->call, RPC_CODE_INTERNAL, rpc_strerror(rc));
            echo_call_free(ec);
            return;
        }
        ec->sent++;
    }
    rpc_call_finish(ec->call, RPC_CODE_OK, NULL);
    echo_call_free(ec);
}

static void on_server_stream(struct rpc_call *call, const ProtobufCMessage *msg)
{
    struct echo_call *ec = echo_call_new(call);
    if (!ec) {
        rpc_call_finish(call, RPC_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = metcd_malloc(n ? n : 1);
    if (buf) {
        protobuf_c_message_pack(msg, buf);
        ec->req = (Metcd__Test__EchoRequest *)protobuf_c_message_unpack(
            &metcd__test__echo_request__descriptor, &metcd_pb_allocator, n, buf);
        metcd_free(buf);
    }
    if (!ec->req) {
        echo_call_free(ec);
        rpc_call_finish(call, RPC_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    ec->total = ec->req->count;
    stream_pump(ec);
}

static void on_stream_drain(struct rpc_call *call)
{
    stream_pump(rpc_call_get_data(call));
}

static void on_stream_open(struct rpc_call *call)
{
    if (!echo_call_new(call))
        rpc_call_finish(call, RPC_CODE_RESOURCE_EXHAUSTED, "out of memory");
}

static void on_client_stream_msg(struct rpc_call *call, const ProtobufCMessage *msg)
{
    struct echo_call *ec = rpc_call_get_data(call);
    const Metcd__Test__EchoRequest *req = (const Metcd__Test__EchoRequest *)msg;
    size_t old = ec->joined ? strlen(ec->joined) : 0, add = strlen(req->message);
    char *j = metcd_realloc(ec->joined, old + add + 1);
    if (!j) {
        rpc_call_finish(call, RPC_CODE_RESOURCE_EXHAUSTED, "out of memory");
        echo_call_free(ec);
        return;
    }
    memcpy(j + old, req->message, add + 1);
    ec->joined = j;
    ec->received++;
}

static void on_client_stream_end(struct rpc_call *call)
{
    struct echo_call *ec = rpc_call_get_data(call);
    Metcd__Test__EchoResponse resp = METCD__TEST__ECHO_RESPONSE__INIT;
    resp.message = ec->joined ? ec->joined : (char *)"";
    resp.index = ec->received;
    rpc_call_reply(call, &resp.base);
    echo_call_free(ec);
}

static void on_bidi_msg(struct rpc_call *call, const ProtobufCMessage *msg)
{
    struct echo_call *ec = rpc_call_get_data(call);
    const Metcd__Test__EchoRequest *req = (const Metcd__Test__EchoRequest *)msg;
    if (req->status) {
        rpc_call_finish(call, (enum rpc_code)req->status, req->message);
        echo_call_free(ec);
        return;
    }
    Metcd__Test__EchoResponse resp = METCD__TEST__ECHO_RESPONSE__INIT;
    resp.message = req->message;
    resp.payload = req->payload;
    resp.index = ec->received++;
    int rc = rpc_call_send(call, &resp.base);
    if (rc != 0) {
        rpc_call_finish(call, RPC_CODE_RESOURCE_EXHAUSTED, rpc_strerror(rc));
        echo_call_free(ec);
    }
}

static void on_bidi_end(struct rpc_call *call)
{
    rpc_call_finish(call, RPC_CODE_OK, NULL);
    echo_call_free(rpc_call_get_data(call));
}

static const struct rpc_method echo_methods[] = {
    {.path = "/metcd.test.Echo/Unary", .kind = RPC_UNARY,
     .request = &metcd__test__echo_request__descriptor,
     .response = &metcd__test__echo_response__descriptor,
     .on_message = on_unary, .on_cancel = on_any_cancel},
    {.path = "/metcd.test.Echo/ServerStream", .kind = RPC_SERVER_STREAM,
     .request = &metcd__test__echo_request__descriptor,
     .response = &metcd__test__echo_response__descriptor,
     .on_message = on_server_stream, .on_cancel = on_any_cancel,
     .on_drain = on_stream_drain},
    {.path = "/metcd.test.Echo/ClientStream", .kind = RPC_CLIENT_STREAM,
     .request = &metcd__test__echo_request__descriptor,
     .response = &metcd__test__echo_response__descriptor,
     .on_open = on_stream_open, .on_message = on_client_stream_msg,
     .on_half_close = on_client_stream_end, .on_cancel = on_any_cancel},
    {.path = "/metcd.test.Echo/Bidi", .kind = RPC_BIDI,
     .request = &metcd__test__echo_request__descriptor,
     .response = &metcd__test__echo_response__descriptor,
     .on_open = on_stream_open, .on_message = on_bidi_msg,
     .on_half_close = on_bidi_end, .on_cancel = on_any_cancel},
};

int echo_service_register(struct rpc_server *srv, struct event_base *base)
{
    echo_base = base;
    return rpc_server_register(srv, echo_methods, sizeof echo_methods / sizeof echo_methods[0],
                               NULL);
}
