/* server/gateway/gateway.h - etcd 3.4's HTTP/JSON gateway on the client
 * port: every v3 RPC at its grpc-gateway path under /v3/ and /v3beta/
 * (etcd's `google.api.http` annotations, quirks included: Hash and HashKV
 * share /v3/maintenance/hash and Hash, registered first, answers), the
 * body read as JSON (pbjson), the answer written as JSON.
 *
 * Like etcd's, the gateway is a client of the member's own gRPC server:
 * every request becomes a call over ONE HTTP/2 connection to the member's
 * first client URL, so gateway calls share that connection's
 * SETTINGS_MAX_CONCURRENT_STREAMS (--max-concurrent-streams) and wait for
 * a free stream as grpc-go's do, and whatever the gRPC side answers is
 * what the HTTP client gets:
 *   - unary: 200 and the response's JSON, or grpc-gateway's error body
 *     {"error":m,"message":m,"code":c} with its status for the code
 *     (InvalidArgument 400, NotFound 404, Unavailable 503, ...);
 *   - streams (watch, lease keep-alive, snapshot, observe): chunked 200,
 *     one {"result":...} object and a newline per response; a bidi body
 *     may hold several requests one after the other; the call stays open
 *     until the server ends it or the HTTP client goes;
 *   - a body that is not the request's JSON: 400 with Go's text and code
 *     3 (500 and code 2 for the first request of a bidi stream, as etcd);
 *   - an unknown path under /v3/: 404 "Not Found", a method other than
 *     POST on a known one: 405 "Method Not Allowed" (grpc-gateway's mux);
 *     /v3 alone: 301 to /v3/.
 * Request headers "Authorization", "Grpc-Metadata-Token" and
 * "Grpc-Metadata-Hasleader" become call metadata ("authorization",
 * "token", "hasleader": what etcd's server reads). Responses carry etcd's CORS
 * headers; OPTIONS gets an empty 200.
 *
 * Bounded: while a stream's HTTP client reads slower than the server
 * sends, the call stops giving the server HTTP/2 window (as etcd's gateway
 * blocks in its Write), so the server waits. At most GATEWAY_MAX_PAUSED
 * streams are held back that way at once: each can leave up to the
 * server's stream_queue_bytes (256 KiB) waiting on the shared connection,
 * and the server refuses new streams on a connection holding
 * conn_queue_bytes (1 MiB) of them, which would stop every gateway call.
 * A further slow stream is read on; what its client has not taken is
 * bounded by GATEWAY_MAX_PENDING, past which the call is cancelled and
 * the HTTP stream ended.
 *
 * Loop thread only. Errors are negative `enum gateway_error` values
 * (range -4300..-4399). */
#ifndef METCD_SERVER_GATEWAY_H
#define METCD_SERVER_GATEWAY_H

#include <stddef.h>

struct channelz;
struct event_base;
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */
struct rpc_server;
struct gateway;

enum gateway_error {
    GATEWAY_OK = 0,
    GATEWAY_ERR_NOMEM = -4300,
    GATEWAY_ERR_INVAL = -4301,
};

#define GATEWAY_MAX_PENDING (4u << 20)
#define GATEWAY_MAX_PAUSED 2

struct gateway_config {
    /* The gRPC server to forward to: "http://host:port" or
     * "https://host:port" (copied). A wildcard host (0.0.0.0, ::) is
     * reached through loopback. */
    const char *endpoint;
    /* For https: the TLS client context to dial with (borrowed; the
     * gateway's client takes its own reference). */
    struct ssl_ctx_st *tls;
    /* Largest response message accepted from the server (0: 2 GiB - 1,
     * as etcd's gateway dials with math.MaxInt32). */
    size_t max_recv_msg_size;
    /* Optional (borrowed, must outlive the gateway): the client connection
     * is registered as a channel, as grpc-go registers etcd's gateway's. */
    struct channelz *channelz;
};

/* Registers the gateway's routes on srv (borrowed; must outlive the
 * gateway) and prepares its client on base (borrowed); the connection is
 * made at the first request. Caller frees with gateway_free. */
int gateway_new(struct gateway **out, struct rpc_server *srv, struct event_base *base,
                const struct gateway_config *cfg);

/* Ends every open request (a unary one gets 503, a stream is ended),
 * cancels the calls, closes the connection and frees. The routes stay
 * registered with the freed gateway as their data: free the rpc server
 * right after, before the loop runs again. NULL-safe. */
void gateway_free(struct gateway *gw);

const char *gateway_strerror(int err);

#endif
