/* server/rpc/rpc.h - gRPC over HTTP/2 (and a small HTTP/1.1 router) on
 * libevent + nghttp2, messages in protobuf-c. The one public header of the
 * rpc module: server, client, and the health service.
 *
 * The transport knows nothing about keys or raft. Services register method
 * tables (`/package.Service/Method` -> callbacks + protobuf-c descriptors);
 * the transport reassembles length-prefixed messages (gRPC over HTTP/2,
 * https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md), unpacks
 * them, hands them to the method, and moves the answers back.
 *
 * Threading: every object here belongs to the thread running its
 * event_base. No function may be called from another thread; a worker thread
 * hands results back through an event on the loop (DESIGN.md, Threads).
 *
 * Errors: functions returning int give 0 or a negative `enum rpc_error`
 * (range -400..-499); rpc_strerror() names it. gRPC statuses sent to peers
 * are `enum rpc_code`.
 *
 * A service, in short:
 *
 *   static void on_put(struct rpc_call *call, const ProtobufCMessage *msg)
 *   {
 *       struct kv *kv = rpc_call_service_data(call);
 *       const char *token = rpc_call_metadata(call, "token");
 *       ... answer now with rpc_call_reply(call, &resp.base), or keep
 *       `call` (rpc_call_set_data) and answer later from the loop, minding
 *       on_cancel, which ends the call for the handler ...
 *   }
 *   static const struct rpc_method kv_methods[] = {
 *       {.path = "/etcdserverpb.KV/Put", .kind = RPC_UNARY,
 *        .request = &etcdserverpb__put_request__descriptor,
 *        .response = &etcdserverpb__put_response__descriptor,
 *        .on_message = on_put, .on_cancel = on_put_cancel},
 *   };
 *   rpc_server_new(&srv, base, &cfg);
 *   rpc_server_register(srv, kv_methods, 1, kv);
 *   rpc_server_route(srv, "/health", on_http_health, NULL, member);
 *   rpc_server_listen(srv, "127.0.0.1", 2379, NULL);
 */
#ifndef METCD_SERVER_RPC_H
#define METCD_SERVER_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

struct event_base;
struct channelz;
struct ssl_ctx_st; /* OpenSSL's SSL_CTX (server/tls builds them) */

/* ------------------------------------------------------------------------ */
/* Errors and status codes                                                  */

enum rpc_error {
    RPC_OK = 0,
    RPC_ERR_NOMEM = -400,   /* allocation failed */
    RPC_ERR_INVAL = -401,   /* bad argument */
    RPC_ERR_EXISTS = -402,  /* method or route already registered */
    RPC_ERR_ADDR = -403,    /* address did not resolve / bind failed */
    RPC_ERR_IO = -404,      /* socket error */
    RPC_ERR_CLOSED = -405,  /* call or connection already finished */
    RPC_ERR_FULL = -406,    /* outbound queue at its bound (not queued) */
    RPC_ERR_TOO_BIG = -407, /* message over the size limit */
    RPC_ERR_PROTO = -408,   /* HTTP/2 or gRPC protocol violation */
    RPC_ERR_STATE = -409,   /* not allowed in this state (e.g. shutting down) */
};

/* Static text for an enum rpc_error value (never NULL). */
const char *rpc_strerror(int err);

/* gRPC status codes (grpc/doc/statuscodes.md). */
enum rpc_code {
    RPC_CODE_OK = 0,
    RPC_CODE_CANCELLED = 1,
    RPC_CODE_UNKNOWN = 2,
    RPC_CODE_INVALID_ARGUMENT = 3,
    RPC_CODE_DEADLINE_EXCEEDED = 4,
    RPC_CODE_NOT_FOUND = 5,
    RPC_CODE_ALREADY_EXISTS = 6,
    RPC_CODE_PERMISSION_DENIED = 7,
    RPC_CODE_RESOURCE_EXHAUSTED = 8,
    RPC_CODE_FAILED_PRECONDITION = 9,
    RPC_CODE_ABORTED = 10,
    RPC_CODE_OUT_OF_RANGE = 11,
    RPC_CODE_UNIMPLEMENTED = 12,
    RPC_CODE_INTERNAL = 13,
    RPC_CODE_UNAVAILABLE = 14,
    RPC_CODE_DATA_LOSS = 15,
    RPC_CODE_UNAUTHENTICATED = 16,
};

#define RPC_CODE_COUNT 17

/* "OK", "CANCELLED", ... as grpc names them; "UNKNOWN" for out-of-range. */
const char *rpc_code_name(int code);

/* One metadata entry (an HTTP/2 header that is not a pseudo-header).
 * Keys are lowercase ASCII. */
struct rpc_md {
    const char *key;
    const char *value;
};

/* ------------------------------------------------------------------------ */
/* Server                                                                   */

struct rpc_server;
struct rpc_call;

enum rpc_kind {
    RPC_UNARY,         /* one request, one response */
    RPC_SERVER_STREAM, /* one request, any number of responses */
    RPC_CLIENT_STREAM, /* any number of requests, one response */
    RPC_BIDI,          /* any number each way */
};

/* A method's callbacks. All run on the loop thread. A call's life:
 *   on_message (0..n times; exactly once for unary and server-streaming,
 *   where it is the start of the call), on_half_close (client finished
 *   sending; streaming kinds only), then either the handler finishes the
 *   call (rpc_call_finish / rpc_call_reply) or the transport ends it and
 *   calls on_cancel exactly once. After rpc_call_finish returns or
 *   on_cancel returns, the call pointer is dead to the handler.
 *
 * For RPC_CLIENT_STREAM and RPC_BIDI, on_open runs when the request headers
 * arrive (before any message) so a handler can set up per-call state. */
struct rpc_method {
    const char *path; /* "/package.Service/Method"; borrowed, must outlive the server */
    enum rpc_kind kind;
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *response;
    /* Optional (streaming kinds). */
    void (*on_open)(struct rpc_call *call);
    /* Required. msg is borrowed until the callback returns (the transport
     * frees it with metcd_pb_allocator afterwards). */
    void (*on_message)(struct rpc_call *call, const ProtobufCMessage *msg);
    /* Optional (RPC_CLIENT_STREAM and RPC_BIDI only). The client
     * half-closed; the call stays open for sending. */
    void (*on_half_close)(struct rpc_call *call);
    /* Optional but needed by any handler that keeps the call past
     * on_message: the call ended without the handler finishing it (stream
     * reset, connection closed, deadline, server shutdown). `code` says why
     * (CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE). Drop every reference. */
    void (*on_cancel)(struct rpc_call *call, enum rpc_code code);
    /* Optional. The outbound queue, after rpc_call_send returned
     * RPC_ERR_FULL, has drained below half its bound: send again. */
    void (*on_drain)(struct rpc_call *call);
};

struct rpc_server_config {
    /* SETTINGS_MAX_CONCURRENT_STREAMS per connection (0: 4294967295 as etcd). */
    uint32_t max_concurrent_streams;
    /* Largest request message accepted, bytes (0: 4 MiB, grpc-go's default;
     * etcd passes --max-request-bytes + 512 KiB). */
    size_t max_recv_msg_size;
    /* Largest response message sent (0: 2 GiB - 1). */
    size_t max_send_msg_size;
    /* Per-stream outbound bound in bytes (0: 256 KiB). A send that would go
     * past it returns RPC_ERR_FULL instead of queueing. */
    size_t stream_queue_bytes;
    /* Per-connection outbound bound (0: 1 MiB): while the bytes written to
     * the socket but not yet taken by the kernel pass it, the connection is
     * not read (a client that sends faster than it reads is paused); while
     * the answers of its streams held back by HTTP/2 flow control pass it,
     * new streams are refused with REFUSED_STREAM (safe to retry). */
    size_t conn_queue_bytes;
    /* Server keepalive pings (--grpc-keepalive-interval/-timeout), ms; 0 off. */
    uint32_t keepalive_interval_ms;
    uint32_t keepalive_timeout_ms; /* 0: 20000 */
    /* --grpc-keepalive-min-time, ms (0: 5000). Client pings more often than
     * this (or with no open stream, more than every 2 h) earn strikes; after
     * 2 the connection gets GOAWAY ENHANCE_YOUR_CALM "too_many_pings". */
    uint32_t keepalive_min_time_ms;
    /* Largest HTTP/1.1 request body (0: max_recv_msg_size). The JSON
     * gateway's bodies carry base64 and field names: they run larger than
     * the protobuf messages they become. */
    size_t max_http_body;
    /* Sniffing: a connection whose first bytes do not arrive within this
     * many ms is closed (0: 10000). Also the HTTP/1.1 idle timeout. */
    uint32_t handshake_timeout_ms;
    /* Optional channelz registry (borrowed, must outlive the server): the
     * server, its listen sockets and connections are registered in it. */
    struct channelz *channelz;
    const char *name; /* channelz reference name (copied); may be NULL */
    /* Optional: warnings about connections refused before any request
     * (failed TLS handshakes, TLS sent to a plaintext port), one line each,
     * e.g. `rejected connection from "127.0.0.1:5000" (error "remote
     * error: tls: bad certificate", ServerName "")` (etcd's wording).
     * msg is borrowed until the call returns. */
    void (*log_warn)(void *arg, const char *msg);
    void *log_arg;
};

/* Creates a server on `base` (borrowed; must outlive the server). Sets
 * SIGPIPE to SIG_IGN if it is at SIG_DFL (libevent writes with write(2)).
 * cfg is copied; NULL means all defaults. Caller frees with
 * rpc_server_free. */
int rpc_server_new(struct rpc_server **out, struct event_base *base,
                   const struct rpc_server_config *cfg);

/* Registers n methods. The table and its strings are borrowed and must
 * outlive the server. `data` is the service's context, returned by
 * rpc_call_service_data. RPC_ERR_EXISTS if a path is already taken (then
 * nothing of this table is registered). */
int rpc_server_register(struct rpc_server *srv, const struct rpc_method *methods,
                        size_t n, void *data);

/* Listens on host:port (host a numeric IPv4/IPv6 address or a name;
 * port 0 picks a free one, written to *bound_port when non-NULL). Each
 * listener sniffs: HTTP/2 preface -> gRPC, anything else -> HTTP/1.1. */
int rpc_server_listen(struct rpc_server *srv, const char *host, uint16_t port,
                      uint16_t *bound_port);

/* rpc_server_listen for https: every connection first completes a TLS
 * handshake with `ctx` (a server context from server/tls; the listener
 * takes a reference) within handshake_timeout_ms, then its decrypted
 * stream is served as any other (ALPN picks h2 or http/1.1; the sniffer
 * decides either way). Failed handshakes are logged through log_warn and
 * closed. The relay between the TLS socket and the connection is bounded
 * (conn_queue_bytes each way). */
int rpc_server_listen_tls(struct rpc_server *srv, const char *host, uint16_t port,
                          struct ssl_ctx_st *ctx, uint16_t *bound_port);

/* Hands the server an already-connected stream socket; the server owns fd
 * from now on (closes it even on error). The same sniffing applies. Used by
 * tests and fuzzers (a socketpair end) and by future TLS front ends. */
int rpc_server_adopt(struct rpc_server *srv, int fd);

/* rpc_server_adopt for a socket to serve over TLS with `ctx` (a server
 * context; borrowed: each connection keeps its own reference): the TLS
 * front end's handshake, then the same serving (tests and fuzzers). */
int rpc_server_adopt_tls(struct rpc_server *srv, int fd, struct ssl_ctx_st *ctx);

/* Graceful shutdown (grpc-go GracefulStop with a deadline): stop
 * listening, send GOAWAY, let in-flight calls finish for up to grace_ms,
 * then cancel what remains (on_cancel with UNAVAILABLE) and close every
 * connection. `done` (optional) runs on the loop once all connections are
 * gone (before this returns when there is none). HTTP/1.1 requests being
 * handled are answered, then their connections close. The server must
 * still be freed with rpc_server_free. RPC_ERR_STATE when called twice. */
int rpc_server_shutdown(struct rpc_server *srv, uint32_t grace_ms,
                        void (*done)(void *data), void *data);

/* Closes everything at once (cancelling calls with UNAVAILABLE) and frees
 * the server. Idempotent on NULL. Not from inside one of its callbacks. */
void rpc_server_free(struct rpc_server *srv);

/* Counters for tests and /metrics. */
struct rpc_server_stats {
    uint64_t conns_open;
    uint64_t calls_open;
    uint64_t calls_started, calls_succeeded, calls_failed;
    uint64_t conns_paused;    /* times a connection's reading was paused */
    uint64_t streams_refused; /* REFUSED_STREAM: answers were piling up */
    uint64_t calls_recv_paused; /* times a handler paused a call's requests */
    /* gRPC message bytes (payloads, without the 5-byte prefix) received and
     * queued for sending (etcd_network_client_grpc_{received,sent}_bytes_total) */
    uint64_t msg_bytes_received, msg_bytes_sent;
};
void rpc_server_get_stats(const struct rpc_server *srv, struct rpc_server_stats *st);

/* Per registered method: calls started and calls finished by gRPC status
 * code (handled[code], code < RPC_CODE_COUNT), in path order, for
 * grpc_server_started_total / grpc_server_handled_total. Calls to unknown
 * methods are not counted (as grpc-go's interceptors never see them). */
typedef void (*rpc_method_stats_fn)(void *arg, const char *path, enum rpc_kind kind,
                                    uint64_t started, const uint64_t *handled);
void rpc_server_method_stats(const struct rpc_server *srv, rpc_method_stats_fn fn, void *arg);

/* Per registered method: how long its finished calls took, from routing
 * to the status (the loop's cached clock, so calls answered within one
 * loop pass count as 0), over go-grpc-prometheus's default buckets (upper
 * bounds in seconds, rpc_latency_bounds); buckets[RPC_LATENCY_BUCKETS] is
 * the +Inf one. Counts per bucket, not cumulative. For
 * grpc_server_handling_seconds (etcd --metrics extensive). */
#define RPC_LATENCY_BUCKETS 11
extern const double rpc_latency_bounds[RPC_LATENCY_BUCKETS];
typedef void (*rpc_method_latency_fn)(void *arg, const char *path, enum rpc_kind kind,
                                      const uint64_t *buckets, uint64_t count, double sum_s);
void rpc_server_method_latency(const struct rpc_server *srv, rpc_method_latency_fn fn,
                               void *arg);

/* --- Calls (server side) --- */

/* Queues one response message (packed at once: msg is borrowed for the
 * duration of the call). Sends the response headers first if not yet sent.
 * Returns RPC_ERR_FULL (nothing queued) when the stream's outbound queue
 * is at its bound: the owner should park its output and wait for
 * on_drain. RPC_ERR_TOO_BIG if the packed message exceeds
 * max_send_msg_size. RPC_ERR_CLOSED after finish. */
int rpc_call_send(struct rpc_call *call, const ProtobufCMessage *msg);

/* rpc_call_send for a message the caller encodes itself: `encode` writes
 * the packed message (at most max_len bytes) to dst and returns its length;
 * it runs once, before this returns, straight into the outbound queue. For
 * hot paths where a generic packer's two walks (size, then pack) cost more
 * than the message. Same results as rpc_call_send (RPC_ERR_TOO_BIG when
 * max_len passes max_send_msg_size). */
int rpc_call_send_encoded(struct rpc_call *call, size_t max_len,
                          size_t (*encode)(void *arg, uint8_t *dst), void *arg);

/* Ends the call with a status: queued messages are sent first, then
 * trailers with grpc-status and the percent-encoded grpc-message (msg may
 * be NULL; it is copied). The call is dead to the handler afterwards.
 * Never fails once the call is live (a dead stream just drops it). */
int rpc_call_finish(struct rpc_call *call, enum rpc_code code, const char *msg);

/* rpc_call_send + rpc_call_finish(OK): the unary answer. If the send
 * fails, the call is finished with RESOURCE_EXHAUSTED/INTERNAL instead
 * and that error is returned. The call is dead afterwards either way. */
int rpc_call_reply(struct rpc_call *call, const ProtobufCMessage *msg);

/* Adds a response header (sent with the response headers; copied). Only
 * before the first send or finish; RPC_ERR_STATE afterwards. */
int rpc_call_add_header(struct rpc_call *call, const char *key, const char *value);
/* Sends the response headers now (grpc-go SendHeader). */
int rpc_call_send_headers(struct rpc_call *call);

/* First value of request metadata `key` (lowercase), NULL when absent.
 * Borrowed until the call ends. Values are as received: "-bin" keys stay
 * base64 (gRPC over HTTP/2); grpc-timeout, grpc-encoding and te are
 * consumed by the transport, everything else (content-type, user-agent,
 * token, hasleader, ...) is here. */
const char *rpc_call_metadata(const struct rpc_call *call, const char *key);
/* All request metadata; *n receives the count. Borrowed until call end. */
const struct rpc_md *rpc_call_metadata_all(const struct rpc_call *call, size_t *n);

const char *rpc_call_path(const struct rpc_call *call);     /* borrowed */
const char *rpc_call_peer(const struct rpc_call *call);     /* "ip:port", borrowed */
/* The common name of the connection's verified TLS client certificate
 * (https listeners with client certificates); "" without one. Borrowed. */
const char *rpc_call_peer_cn(const struct rpc_call *call);
void *rpc_call_service_data(const struct rpc_call *call);   /* from rpc_server_register */
/* Per-call handler pointer, NULL until set. */
void rpc_call_set_data(struct rpc_call *call, void *data);
void *rpc_call_get_data(const struct rpc_call *call);
/* Milliseconds left before the grpc-timeout deadline; -1 when none. */
int64_t rpc_call_remaining_ms(const struct rpc_call *call);
/* Bytes queued for this stream and not yet handed to HTTP/2. */
size_t rpc_call_queued_bytes(const struct rpc_call *call);

/* Stops (pause != 0) or resumes handing this call's requests to the
 * handler. While paused, on_message and on_half_close wait; the bytes the
 * client sends meanwhile are held without a WINDOW_UPDATE for the stream,
 * so HTTP/2 flow control stops the client after one stream window (1 MiB)
 * and the member's memory for it stays bounded (RFC 9113 section 5.2); the
 * connection's other streams are not affected. On resume, what was held is
 * delivered from the loop, never from inside this function. For handlers
 * whose answers pile up while the client keeps sending (a watch stream
 * whose client does not read). RPC_ERR_CLOSED after finish. */
int rpc_call_pause_recv(struct rpc_call *call, int pause);

/* --- HTTP/1.1 router --- */

struct rpc_http_req;

/* A route handler. The request stays valid until rpc_http_respond is called
 * (now or later, from the loop); if the connection closes first,
 * on_abort (optional, given to rpc_server_route) is called instead and the
 * request is dead afterwards. */
typedef void (*rpc_http_fn)(struct rpc_http_req *req, void *data);

/* Routes requests whose path (without query) equals `path`, or, when path
 * ends in '/', starts with it. Longest match wins. path is copied. */
int rpc_server_route(struct rpc_server *srv, const char *path, rpc_http_fn fn,
                     void (*on_abort)(struct rpc_http_req *req, void *data),
                     void *data);

const char *rpc_http_method(const struct rpc_http_req *req); /* "GET", ... */
const char *rpc_http_path(const struct rpc_http_req *req);   /* without query */
const char *rpc_http_query(const struct rpc_http_req *req);  /* after '?', or "" */
/* Header value (case-insensitive name), NULL when absent. */
const char *rpc_http_header(const struct rpc_http_req *req, const char *name);
/* Request body (borrowed; *len set). A request with "Expect:
 * 100-continue" got its "100 Continue" before the body was read, as
 * Go's net/http sends it. */
const void *rpc_http_body(const struct rpc_http_req *req, size_t *len);
/* The route handler's pointer for this request (NULL until set). */
void rpc_http_set_data(struct rpc_http_req *req, void *data);
void *rpc_http_get_data(const struct rpc_http_req *req);
/* Adds a response header (name and value copied; no CR or LF in them)
 * to the answer not begun yet: RPC_ERR_STATE after rpc_http_respond or
 * rpc_http_stream_begin, RPC_ERR_INVAL for a bad name or value. */
int rpc_http_add_header(struct rpc_http_req *req, const char *name, const char *value);
/* Answers: body copied; content_type may be NULL. Frees the request. */
int rpc_http_respond(struct rpc_http_req *req, int status, const char *content_type,
                     const void *body, size_t len);

/* Streamed answer (chunked transfer encoding), e.g. the gateway's watch:
 * begin once, write any number of chunks (copied), end once (frees the
 * request). A write returns RPC_ERR_FULL, queueing nothing, while the
 * connection's unsent bytes pass conn_queue_bytes: try again later. If the
 * client leaves first, the route's on_abort runs instead (request dead). */
int rpc_http_stream_begin(struct rpc_http_req *req, int status, const char *content_type);
int rpc_http_stream_write(struct rpc_http_req *req, const void *data, size_t len);
int rpc_http_stream_end(struct rpc_http_req *req);
/* After a write returned RPC_ERR_FULL, `fn` (borrowed) runs on the loop
 * once the connection has written out what it held: write again then.
 * Set it once per request (NULL: none). */
void rpc_http_stream_on_drain(struct rpc_http_req *req,
                              void (*fn)(struct rpc_http_req *req, void *data), void *data);

/* ------------------------------------------------------------------------ */
/* Client                                                                   */

struct rpc_client;
struct rpc_ccall;

struct rpc_client_config {
    /* "host:port" or "http://host:port" entries; copied. At least one. */
    const char *const *endpoints;
    size_t n_endpoints;
    uint32_t dial_timeout_ms;       /* 0: 5000 */
    size_t max_recv_msg_size;       /* 0: 4 MiB */
    size_t max_pending_calls;       /* calls waiting for a connection (0: 1024) */
    size_t stream_queue_bytes;      /* per-call outbound bound (0: 256 KiB) */
    struct channelz *channelz;      /* optional, borrowed */
    const char *target;             /* channelz name (copied), may be NULL */
    /* Optional TLS client context (server/tls tls_client_ctx_new; the
     * client takes a reference). With it, "https://" and bare "host:port"
     * endpoints are dialed over TLS (the server's name checked unless the
     * context skips verification); "http://" stays plaintext. Without it,
     * "https://" endpoints are refused (RPC_ERR_INVAL). */
    struct ssl_ctx_st *tls;
    /* Keepalive (grpc-go's ClientParameters): when a connection with calls
     * open has received nothing for keepalive_time_ms, a PING goes out;
     * if nothing arrives within keepalive_timeout_ms (0: 20000) after it,
     * the connection is closed (its calls end UNAVAILABLE "keepalive ping
     * failed to receive ACK within timeout") and new calls fail over. 0:
     * off. keepalive_idle also pings connections without calls. Mind the
     * server's minimum (etcd: --grpc-keepalive-min-time, 5 s). */
    uint32_t keepalive_time_ms;
    uint32_t keepalive_timeout_ms;
    bool keepalive_idle;
};

/* Callbacks of a client call, run on the loop. on_message gets each
 * response (borrowed until it returns). on_close runs exactly once, last:
 * status, message (borrowed, may be ""), and the call is freed after it. */
struct rpc_ccall_ops {
    void (*on_message)(struct rpc_ccall *c, const ProtobufCMessage *msg, void *data);
    void (*on_close)(struct rpc_ccall *c, enum rpc_code code, const char *msg,
                     void *data);
    /* Optional: the outbound queue drained after RPC_ERR_FULL. */
    void (*on_drain)(struct rpc_ccall *c, void *data);
    /* Optional: when set, each response message's bytes (the packed
     * protobuf, without the gRPC prefix; borrowed until it returns) come
     * here instead of on_message and nothing is unpacked (a reader that
     * decodes only a few fields of many messages, e.g. metcd-bench). */
    void (*on_raw)(struct rpc_ccall *c, const uint8_t *msg, size_t len, void *data);
};

/* Creates a client on `base` (borrowed). Connects lazily, to endpoints in
 * order; when a connection fails or closes, the next endpoint is used
 * (failover). Caller frees with rpc_client_free. */
int rpc_client_new(struct rpc_client **out, struct event_base *base,
                   const struct rpc_client_config *cfg);

/* Frees the client; open calls get on_close(CANCELLED, "grpc: the client
 * connection is closing") first (rpc_ccall_start answers RPC_ERR_STATE
 * meanwhile). Not from inside one of its callbacks. */
void rpc_client_free(struct rpc_client *cl);

/* Starts a call to `path` with optional metadata (copied) and a timeout
 * (ms, 0: none; sent as grpc-timeout and enforced locally). `response` is
 * the descriptor used to unpack answers. On success *out (if non-NULL)
 * receives the call, valid until on_close. Calls started before a
 * connection is up wait (bounded by max_pending_calls: RPC_ERR_FULL). */
int rpc_ccall_start(struct rpc_client *cl, const char *path,
                    const ProtobufCMessageDescriptor *response,
                    const struct rpc_md *md, size_t n_md, uint32_t timeout_ms,
                    const struct rpc_ccall_ops *ops, void *data,
                    struct rpc_ccall **out);
/* Queues a request message (packed now; msg borrowed). RPC_ERR_FULL when
 * the call's outbound queue is at its bound. */
int rpc_ccall_send(struct rpc_ccall *c, const ProtobufCMessage *msg);
/* Half-closes the sending side (END_STREAM after what is queued). */
int rpc_ccall_close_send(struct rpc_ccall *c);
/* Cancels: RST_STREAM(CANCEL); on_close(CANCELLED, "context canceled")
 * runs before this returns. */
void rpc_ccall_cancel(struct rpc_ccall *c);
/* Stops (pause != 0) or resumes giving the server window for this call's
 * answers: while paused, what has arrived is still handed to on_message,
 * but no WINDOW_UPDATE goes out for the stream, so HTTP/2 flow control
 * stops the server after at most one stream window (1 MiB) more; the
 * connection's other calls go on. For a caller whose own output is
 * blocked (the JSON gateway's slow HTTP client). RPC_ERR_CLOSED once the
 * call is ending. */
int rpc_ccall_pause_recv(struct rpc_ccall *c, int pause);

/* Async unary: start + send + close_send. `done` gets the response
 * (borrowed until it returns; NULL unless code is OK). */
typedef void (*rpc_unary_done_fn)(const ProtobufCMessage *resp, enum rpc_code code,
                                  const char *msg, void *data);
int rpc_client_unary(struct rpc_client *cl, const char *path,
                     const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *response,
                     const struct rpc_md *md, size_t n_md, uint32_t timeout_ms,
                     rpc_unary_done_fn done, void *data);

/* Blocking unary (for the CLI): runs the client's event_base until the
 * answer arrives; the base must not be running and should belong to the
 * caller alone. On return *code and *errmsg hold the gRPC status (errmsg
 * caller-freed with metcd_free, may be NULL arg); *resp receives the
 * response on OK (caller frees with protobuf_c_message_free_unpacked(...,
 * &metcd_pb_allocator)). Returns 0 when a status was obtained (check
 * *code), or a negative rpc_error when the call could not be started. */
int rpc_client_unary_sync(struct rpc_client *cl, const char *path,
                          const ProtobufCMessage *req,
                          const ProtobufCMessageDescriptor *response,
                          const struct rpc_md *md, size_t n_md, uint32_t timeout_ms,
                          ProtobufCMessage **resp, enum rpc_code *code,
                          char **errmsg);

/* Index into cfg->endpoints of the endpoint in use, -1 if none. */
int rpc_client_endpoint(const struct rpc_client *cl);

/* ------------------------------------------------------------------------ */
/* Services the transport itself offers                                     */

/* grpc.health.v1.Health/Check. `check` decides: it returns 1 (SERVING),
 * 2 (NOT_SERVING) or 0 for an unknown service (-> NOT_FOUND "unknown
 * service", as grpc-go's health server). service is "" for the server as a
 * whole. check and data are borrowed. */
typedef int (*rpc_health_fn)(const char *service, void *data);
int rpc_server_add_health(struct rpc_server *srv, rpc_health_fn check, void *data);

/* grpc.channelz.v1.Channelz (all seven methods) over `cz` (borrowed, must
 * outlive the server). */
int rpc_server_add_channelz(struct rpc_server *srv, struct channelz *cz);

#endif
