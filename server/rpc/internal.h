/* server/rpc/internal.h - shared between the files of server/rpc only.
 * Never included from outside the module (tests of the module excepted). */
#ifndef METCD_SERVER_RPC_INTERNAL_H
#define METCD_SERVER_RPC_INTERNAL_H

#include "server/rpc/rpc.h"

#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <nghttp2/nghttp2.h>
#include <stdbool.h>

#define RPC_DEFAULT_MAX_RECV (4u * 1024 * 1024)
#define RPC_DEFAULT_MAX_SEND (0x7fffffffu)
#define RPC_DEFAULT_STREAM_QUEUE (256u * 1024)
#define RPC_DEFAULT_CONN_QUEUE (1024u * 1024)
#define RPC_MAX_HEADER_BYTES (64u * 1024)
#define RPC_HTTP1_MAX_HEAD (16u * 1024)
#define RPC_FRAME_HDR 5

/* ---- status.c: texts, percent-encoding, grpc-timeout ---- */

/* Percent-encodes a grpc-message (PROTOCOL-HTTP2.md: bytes outside
 * 0x20..0x7E and '%' become %XX). Caller frees with metcd_free. */
char *rpc_pct_encode(const char *s);
/* Decodes in place-safe copy; malformed escapes are kept verbatim as grpc
 * does. Caller frees. */
char *rpc_pct_decode(const char *s, size_t len);
/* Parses grpc-timeout ("1*8DIGIT unit", unit H M S m u n) into ms, rounded
 * up. -1 when malformed. */
int64_t rpc_timeout_parse(const char *s, size_t len);
/* Formats ms as grpc-timeout into buf (>= 16 bytes). */
void rpc_timeout_format(uint64_t ms, char *buf, size_t cap);
uint64_t rpc_now_ms(void);   /* monotonic */
/* libevent writes with write(2): a peer gone must not kill the process.
 * Sets SIGPIPE to SIG_IGN unless the process installed its own handler. */
void rpc_ignore_sigpipe(void);
int64_t rpc_wall_ns(void);   /* realtime, for channelz */
/* Realtime as of the loop iteration's start (libevent's cached time): for
 * per-message channelz stamps, where a clock read per message costs. */
int64_t rpc_loop_wall_ns(struct event_base *base);
/* nghttp2 allocator through common/mem.h */
extern nghttp2_mem rpc_nghttp2_mem;
/* The address to use among getaddrinfo's: the first IPv4 one, else the
 * first (as Go's net.Listen/Dial do for "localhost", which etcd defaults
 * to while etcdctl dials 127.0.0.1). */
struct addrinfo;
const struct addrinfo *rpc_addrinfo_pick(const struct addrinfo *res);
/* "ip:port" of a sockaddr into buf. */
void rpc_addr_format(const struct sockaddr *sa, char *buf, size_t cap);

/* ---- frame.c: gRPC length-prefixed message reassembly ---- */

enum rpc_deframe_result {
    RPC_DEFRAME_MORE = 0, /* consumed everything, need more bytes */
    RPC_DEFRAME_MSG = 1,  /* a message is complete: take it */
    RPC_DEFRAME_TOO_BIG = 2,
    RPC_DEFRAME_NOMEM = 3,
};

struct rpc_deframer {
    uint8_t hdr[RPC_FRAME_HDR];
    uint8_t hdr_len;
    uint8_t compressed;
    uint32_t len;   /* announced length of the current message */
    uint32_t have;  /* bytes of it received */
    uint8_t *buf;   /* owned; NULL when len == 0 or no message in progress */
    size_t limit;   /* max message length */
    uint32_t too_big_len; /* announced length when TOO_BIG */
};

void rpc_deframer_init(struct rpc_deframer *d, size_t limit);
void rpc_deframer_reset(struct rpc_deframer *d); /* frees the buffer */
/* Consumes bytes from *data and *len (advanced). On RPC_DEFRAME_MSG the
 * message is in *msg and *msg_len (owned by the caller, metcd_free; NULL with
 * length 0 for an empty message) and *compressed holds the flag. Call
 * again with the rest. */
int rpc_deframe(struct rpc_deframer *d, const uint8_t **data, size_t *len,
                uint8_t **msg, size_t *msg_len, int *compressed);
/* True when no partial message is pending. */
bool rpc_deframer_idle(const struct rpc_deframer *d);
/* Appends a framed message (5-byte prefix + packed msg) to out. */
int rpc_frame_pack(struct evbuffer *out, const ProtobufCMessage *msg, size_t max,
                   size_t *framed_len);
/* The same for a message `encode` writes (at most max_len bytes). */
int rpc_frame_encode(struct evbuffer *out, size_t max_len, size_t (*encode)(void *arg, uint8_t *dst),
                     void *arg, size_t max, size_t *framed_len);

/* ---- server.c ---- */

struct rpc_reg_method {
    const struct rpc_method *m;
    void *data;
    /* calls of this method started, and finished by status code */
    uint64_t started;
    uint64_t handled[RPC_CODE_COUNT];
    /* handling time of finished calls (rpc_server_method_latency) */
    uint64_t lat_hist[RPC_LATENCY_BUCKETS + 1];
    double lat_sum_s;
};

struct rpc_route {
    char *path;
    size_t len;
    bool prefix;
    rpc_http_fn fn;
    void (*on_abort)(struct rpc_http_req *req, void *data);
    void *data;
};

struct rpc_listener {
    struct rpc_server *srv;
    struct evconnlistener *ev;
    struct channelz_node *cz;
    struct ssl_ctx_st *tls; /* https listener: owned reference */
    struct rpc_listener *next;
};

enum rpc_conn_kind { RPC_CONN_SNIFF, RPC_CONN_H2, RPC_CONN_HTTP1 };

struct rpc_call;
struct rpc_http_conn;

struct rpc_conn {
    struct rpc_server *srv;
    enum rpc_conn_kind kind;
    int fd;
    struct event *sniff_ev;          /* SNIFF only */
    uint64_t deadline_ms;            /* SNIFF: handshake deadline */
    struct bufferevent *bev;         /* H2 and HTTP1 */
    struct event *flush_ev;          /* deferred flush / free */
    nghttp2_session *h2;
    struct rpc_http_conn *h1;
    struct rpc_call *calls;          /* open streams (H2) */
    size_t n_calls;
    size_t queued;                   /* bytes in all calls' outbound queues */
    unsigned drain_pending;          /* calls flagged for on_drain */
    unsigned resume_pending;         /* calls flagged by rpc_call_pause_recv(0) */
    bool dead;                       /* free at the next flush */
    bool paused;                     /* reading disabled (backpressure) */
    bool goaway;                     /* GOAWAY submitted */
    bool close_after_write;
    bool read_pending;               /* input buffered while paused */
    bool reset_strikes;
    /* keepalive */
    struct event *ka_ev;
    uint64_t last_ping_recv_ms;
    unsigned ping_strikes;
    bool ping_outstanding;
    uint64_t ping_sent_ms;
    char peer[64];
    char cert_cn[256]; /* verified TLS client certificate's common name, or "" */
    struct channelz_node *cz;
    struct rpc_conn *prev, *next;
};

struct rpc_server {
    struct event_base *base;
    struct rpc_server_config cfg;
    char *name;
    struct rpc_reg_method *methods; /* sorted by path */
    size_t n_methods;
    struct rpc_route *routes;
    size_t n_routes;
    struct rpc_listener *listeners;
    struct rpc_conn *conns;
    struct rpc_tls_conn *tls_conns; /* tls_front.c: handshakes and relays */
    struct rpc_server_stats stats;
    struct channelz_node *cz;
    nghttp2_session_callbacks *h2_cbs;
    nghttp2_option *h2_opt;
    /* shutdown */
    bool shutting_down;
    struct event *grace_ev;
    void (*done)(void *data);
    void *done_data;
    /* services owned by the server */
    void *health;
    void *channelz_svc;
};

const struct rpc_reg_method *rpc_server_lookup(const struct rpc_server *srv, const char *path);
const struct rpc_route *rpc_server_route_find(const struct rpc_server *srv, const char *path);
/* Schedules a flush (and, if dead, the free) of a connection. */
void rpc_conn_schedule(struct rpc_conn *c);
/* Marks a connection for closing; freed at the next scheduled flush. */
void rpc_conn_kill(struct rpc_conn *c);
/* Frees a connection: the one place its resources go. */
void rpc_conn_free(struct rpc_conn *c);
void rpc_server_conn_gone(struct rpc_server *srv);
/* What the TLS front end knows of a connection it hands over: the
 * client's address ("ip:port") and both socket addresses (the adopted fd
 * is one end of a socketpair), the common name of its verified client
 * certificate ("" without one), and the session for channelz. Everything
 * borrowed for the call (copied). */
struct rpc_adopt_info {
    const char *peer;
    const char *cert_cn;
    const struct sockaddr *local, *remote;
    socklen_t local_len, remote_len;
    struct ssl_st *ssl; /* the session (OpenSSL's SSL) */
};
/* rpc_server_adopt of a connection the TLS front end terminated. */
int rpc_server_adopt_peer(struct rpc_server *srv, int fd, const struct rpc_adopt_info *info);
/* Records a TLS session's cipher suite and both certificates on a
 * channelz socket (tls_front.c). No-op when either is NULL. */
void rpc_channelz_tls(struct channelz_node *n, struct ssl_st *ssl);
/* Logs through cfg.log_warn (printf-style), if set. */
void rpc_server_warnf(const struct rpc_server *srv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- tls_front.c: the TLS front end of https listeners ---- */

struct rpc_tls_conn;
/* Takes an accepted socket of a TLS listener (fd owned, closed on error). */
void rpc_tls_accept(struct rpc_server *srv, struct ssl_ctx_st *ctx, int fd);
/* Shutdown: drop the connections still in their handshake. */
void rpc_tls_shutdown(struct rpc_server *srv);
/* Frees every TLS connection (handshaking or relaying). */
void rpc_tls_free_all(struct rpc_server *srv);

/* ---- call.c: a server-side call (one HTTP/2 stream) ---- */

struct rpc_call {
    struct rpc_conn *conn;
    int32_t stream_id;
    const struct rpc_reg_method *rm; /* NULL until routed */
    char *path;
    char *encoding;
    struct rpc_md *md;
    size_t n_md;
    size_t hdr_bytes;
    int64_t timeout_ms;              /* -1 none, -2 malformed */
    struct rpc_deframer in;
    struct evbuffer *out;            /* framed messages not yet in DATA */
    struct rpc_md *resp_md;
    size_t n_resp_md;
    struct event *deadline_ev;
    uint64_t deadline_ms;
    void *data;
    enum rpc_code status;
    char *status_msg;                /* percent-encoded */
    struct rpc_call *prev, *next;
    bool bad_method, bad_te;
    char *content_type;
    bool started;      /* request headers done and routed */
    int64_t start_ns;  /* when, on the loop's cached wall clock */
    bool owned;        /* the handler holds it */
    bool got_msg;      /* unary / server-stream: request received */
    bool headers_sent;
    bool finishing;    /* status decided: trailers after the queue */
    bool trailers_sent;
    bool deferred;
    bool full;
    bool drain_flag;
    bool remote_closed;
    bool eos_sent;     /* a frame with END_STREAM went out (channelz) */
    /* rpc_call_pause_recv: request bytes that arrived while paused, not yet
     * given back to the client's stream window (so at most one window) */
    bool recv_paused;
    bool resume_flag;  /* held bytes or a half-close to deliver from the loop */
    bool close_held;   /* END_STREAM arrived behind held bytes or a pause */
    struct evbuffer *held;
};

struct rpc_call *rpc_call_new(struct rpc_conn *c, int32_t stream_id);
void rpc_call_free(struct rpc_call *call);
int rpc_call_on_header(struct rpc_call *call, const uint8_t *name, size_t nlen,
                       const uint8_t *value, size_t vlen);
void rpc_call_on_headers_done(struct rpc_call *call);
/* Request DATA bytes; returns how many of them the call holds (paused):
 * the caller gives the rest back to the stream window at once. */
size_t rpc_call_on_data(struct rpc_call *call, const uint8_t *data, size_t len);
/* Delivers what resumed calls hold (from the loop, on_conn_flush). */
void rpc_h2_resume_calls(struct rpc_conn *c);
/* Delivers a resumed call's held bytes (and held half-close). */
void rpc_call_deliver_held(struct rpc_call *call);
void rpc_call_on_remote_close(struct rpc_call *call);
/* The stream is gone (reset or closed); frees the call. */
void rpc_call_on_stream_close(struct rpc_call *call, uint32_t error_code, enum rpc_code why);
/* Ends the call from the transport side: the handler (if it holds the call)
 * gets on_cancel(code); then the status goes out if the stream lives. */
void rpc_call_abort(struct rpc_call *call, enum rpc_code code, const char *msg);
ssize_t rpc_call_read_data(struct rpc_call *call, uint8_t *buf, size_t length,
                           uint32_t *flags);

/* ---- h2conn.c ---- */
int rpc_h2_callbacks_new(nghttp2_session_callbacks **out);
int rpc_h2_start(struct rpc_conn *c);
void rpc_h2_flush(struct rpc_conn *c);
void rpc_h2_on_read(struct rpc_conn *c);
/* Cancels every call (on_cancel(code)) and frees their memory. */
void rpc_h2_drop_calls(struct rpc_conn *c, enum rpc_code code);
void rpc_h2_goaway(struct rpc_conn *c);

/* ---- client.c ---- */
int rpc_h2_client_callbacks(nghttp2_session_callbacks **out);
struct event_base *rpc_client_base(const struct rpc_client *cl);
void rpc_client_cancel_all(struct rpc_client *cl);

/* ---- http1.c ---- */
int rpc_http1_start(struct rpc_conn *c);
void rpc_http1_on_read(struct rpc_conn *c);
void rpc_http1_on_written(struct rpc_conn *c);
void rpc_http1_drop(struct rpc_conn *c);
bool rpc_http1_idle(const struct rpc_conn *c);

#endif
