/* server/peer/internal.h - shared by the files of server/peer only. */
#ifndef METCD_SERVER_PEER_INTERNAL_H
#define METCD_SERVER_PEER_INTERNAL_H

#include <stdarg.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "server/peer/peer.h"

struct bufferevent;
struct event;
struct evconnlistener;
struct channelz_node;

/* ---- wire.c: hello, frames, URLs ---------------------------------------- */

#define PEER_MAGIC 0x4d504552u /* "MPER" */
#define PEER_VERSION 1
#define PEER_HELLO_LEN 32
#define PEER_FRAME_HDR 5
#define PEER_MAX_MSG_FRAME (64u << 20)
#define PEER_SNAP_CHUNK (64u << 10)
#define PEER_MAX_SNAP_CHUNK (1u << 20)

enum peer_frame_type {
    FRAME_MSG = 1,
    FRAME_SNAP_HDR = 2,
    FRAME_SNAP_CHUNK = 3,
    FRAME_SNAP_END = 4,
    FRAME_SNAP_ACK = 5,
    FRAME_MEMBERS = 6, /* answer to a HELLO_MEMBERS query */
};

enum peer_hello_kind {
    HELLO_STREAM = 1,
    HELLO_SNAP = 2,
    HELLO_MEMBERS = 3, /* a joining member asks who the cluster is */
};

enum peer_hello_status {
    HELLO_OK = 0,
    HELLO_BAD_CLUSTER = 1,
    HELLO_UNKNOWN_SENDER = 2,
    HELLO_WRONG_RECIPIENT = 3,
    HELLO_BAD_VERSION = 4,
    HELLO_BAD_KIND = 5,
};

struct peer_hello {
    uint16_t version;
    uint8_t kind, status;
    uint64_t cluster_id, from, to;
};

void peer_hello_encode(const struct peer_hello *h, uint8_t out[PEER_HELLO_LEN]);
/* 0, or -1 when the magic is wrong. */
int peer_hello_decode(const uint8_t in[PEER_HELLO_LEN], struct peer_hello *h);
const char *peer_hello_status_text(int status);
void peer_frame_hdr(uint8_t out[PEER_FRAME_HDR], uint32_t len, uint8_t type);
void peer_put_u64(uint8_t *p, uint64_t v);
uint64_t peer_get_u64(const uint8_t *p);
uint32_t peer_get_u32(const uint8_t *p);

enum peer_scheme { SCHEME_HTTP, SCHEME_HTTPS, SCHEME_UNIX };

struct peer_url {
    char *text; /* as given */
    enum peer_scheme scheme;
    char *host; /* tcp: host (no brackets); unix: the path */
    uint16_t port;
};

/* Parses s into u (u owns copies; peer_url_clear frees). */
int peer_url_parse(const char *s, struct peer_url *u);
void peer_url_clear(struct peer_url *u);
/* Resolves u (numeric first, then getaddrinfo preferring IPv4). */
int peer_url_sockaddr(const struct peer_url *u, struct sockaddr_storage *ss, socklen_t *len);

/* ---- objects ------------------------------------------------------------ */

enum conn_kind {
    CONN_OUT_STREAM, /* our message stream to a peer */
    CONN_OUT_SNAP,   /* a snapshot we send */
    CONN_IN,         /* accepted; hello decides stream or snapshot */
};

enum conn_state {
    CS_CONNECTING, /* out: TCP/TLS connect under way (hello queued) */
    CS_HELLO,      /* out: waiting for the hello reply; in: for the hello */
    CS_ACTIVE,     /* stream up / snapshot streaming or receiving */
    CS_AWAIT_ACK,  /* out snapshot: all sent, waiting for the ack */
    CS_CLOSING,    /* in: flushing a refusal, then draining until EOF */
};

struct peer;

struct peer_conn {
    struct peer_transport *t;
    struct peer *p; /* NULL for inbound until its hello names a known peer */
    struct bufferevent *bev;
    enum conn_kind kind;
    enum conn_state state;
    uint8_t in_kind;  /* inbound: HELLO_STREAM or HELLO_SNAP once known */
    bool dispatching; /* inside a callback from this connection's read */
    bool dead;        /* close requested while dispatching */
    struct event *resume;
    struct peer_conn *prev, *next; /* t->conns: every inbound connection */
    struct channelz_node *cz_socket;
    char url[160];
    /* snapshot (send: fd/size/off/sha/index; receive: fd/size/off/sha/msg) */
    int snap_fd;
    uint64_t snap_size, snap_off, snap_index;
    EVP_MD_CTX *sha;
    uint8_t *snap_hdr; /* send: header frame payload until streamed */
    size_t snap_hdr_len;
    raft_msg snap_msg; /* receive: the decoded MsgSnap */
    bool snap_have_hdr;
    uint64_t msgs_queued; /* out stream: messages written into it */
};

struct peer {
    struct peer_transport *t;
    uint64_t id;
    struct peer_url *urls;
    size_t n_urls, next_url;
    struct peer_conn *out;      /* message stream (NULL while backing off) */
    struct peer_conn *snap_out; /* snapshot in flight */
    struct peer_conn *in;       /* the peer's message stream to us */
    struct event *redial;
    uint32_t backoff_ms;
    bool fail_logged, full_logged;
    /* the reason of the last dial failure logged: a failure is logged
     * again only when its reason changes (refused while the peer starts,
     * then its TLS refusal: both reach the log) */
    char fail_why[96];
    bool unreachable; /* a dial or the stream failed since it was last active */
    bool pending_unreachable;
    int pending_snap; /* 0 none, 1 succeeded, 2 failed */
    peer_stats st;
    struct channelz_node *cz_channel, *cz_sub;
    struct peer *next;
};

struct peer_listener {
    struct evconnlistener *l;
    char *url;
    bool tls;
    char *unix_path; /* unlinked on free */
    struct channelz_node *cz;
};

struct peer_transport {
    struct event_base *base;
    peer_config cfg; /* string fields point into copies below */
    char *snap_dir, *cert_file, *key_file, *ca_file;
    peer_callbacks cb;
    struct peer_listener *listeners;
    size_t n_listeners;
    struct peer *peers;
    struct peer_conn *conns; /* inbound */
    size_t n_conns;
    struct event *notify;
    SSL_CTX *ssl_server, *ssl_client;
    struct channelz_node *cz_server;
};

/* transport.c */
void peer_logf(struct peer_transport *t, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int64_t peer_now_ns(void);
struct peer *peer_find(struct peer_transport *t, uint64_t id);
void peer_notify_unreachable(struct peer *p);
void peer_notify_snap(struct peer *p, bool failed);
void peer_trace(struct peer *p, int sev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* conn.c: connections */
struct peer_conn *peer_conn_new(struct peer_transport *t, enum conn_kind kind);
/* Frees c now, or marks it dead when inside one of its callbacks. */
void peer_conn_close(struct peer_conn *c);
/* Creates c->bev for an outbound connection to url and starts connecting;
 * the hello is queued first. */
int peer_conn_dial(struct peer_conn *c, const struct peer_url *url, const struct peer_hello *h);
void peer_stream_start(struct peer *p);
void peer_stream_stop(struct peer *p);
int peer_accept(struct peer_transport *t, int fd, const struct sockaddr *sa, int salen, bool tls);
/* Reads and checks the acceptor's hello reply on an outbound connection
 * (PEER_HELLO_LEN bytes must be there): NULL when accepted, else why not. */
const char *peer_check_reply(struct peer_conn *c, char *why, size_t len);
size_t peer_conn_queued(const struct peer_conn *c);
int peer_conn_write_frame(struct peer_conn *c, uint8_t type, const void *payload, size_t len,
                          bool take);

/* snapshot.c */
int peer_snap_start(struct peer *p, const raft_msg *m, int fd);
void peer_snap_out_fill(struct peer_conn *c); /* output drained */
void peer_snap_out_read(struct peer_conn *c); /* ack arrived */
void peer_snap_out_failed(struct peer_conn *c, const char *why);
/* Handles one inbound snapshot frame; 0 or -1 (conn to close). */
int peer_snap_in_frame(struct peer_conn *c, uint8_t type, const uint8_t *p, size_t len);
void peer_snap_clear(struct peer_conn *c);

/* tls.c */
int peer_tls_init(struct peer_transport *t, const peer_config *cfg, bool need_server,
                  char *errbuf, size_t errlen);
void peer_tls_free(struct peer_transport *t);

#endif
