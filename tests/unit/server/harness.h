/* tests/unit/server/harness.h - shared fixtures for the server/rpc tests:
 * a server with metcd.test.Echo on a loopback port or a socketpair, a
 * bounded loop runner, and a raw HTTP/2 client (nghttp2 directly) that can
 * split DATA frames at will, reset streams and send PINGs. */
#ifndef METCD_TESTS_SERVER_HARNESS_H
#define METCD_TESTS_SERVER_HARNESS_H

#include "server/rpc/rpc.h"
#include "server/channelz/channelz.h"
#include "echo_service.h"

#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <stdbool.h>

struct fixture {
    struct event_base *base;
    struct channelz *cz;
    struct rpc_server *srv;
    uint16_t port;
};

/* Server with echo + health + channelz on 127.0.0.1:0. cfg may be NULL. */
void fixture_setup(struct fixture *f, const struct rpc_server_config *cfg);
void fixture_teardown(struct fixture *f);

/* Runs the loop until *flag is true or ms pass. Returns *flag. */
bool run_until(struct event_base *base, const bool *flag, unsigned ms);
/* Runs the loop until cond holds or ms pass (robust under load). */
#define WAIT_UNTIL(base, cond, ms)                                                             \
    do {                                                                                       \
        for (unsigned wait_i_ = 0; wait_i_ < (ms) / 5 && !(cond); wait_i_++)                   \
            run_for((base), 5);                                                                \
    } while (0)
/* The server's open connection count. */
unsigned long conns_open(const struct fixture *f);
/* Runs the loop for ms. */
void run_for(struct event_base *base, unsigned ms);

#define RAW_MAX_STREAMS 64

struct raw_stream {
    int32_t id;
    int http_status;
    int grpc_status; /* -1 until seen */
    char grpc_message[512];
    uint8_t *data;   /* received DATA bytes (gRPC framed), owned */
    size_t len, cap;
    bool closed;
    uint32_t rst_code;
    /* outbound */
    const uint8_t *out;
    size_t out_len, out_off, chunk;
    bool end;
    bool deferred;
};

struct raw {
    struct fixture *f;
    int fd;
    struct event *ev;
    nghttp2_session *h2;
    struct raw_stream streams[RAW_MAX_STREAMS];
    size_t n_streams;
    bool eof;
    bool goaway;
    uint32_t goaway_code;
    char goaway_data[64];
    unsigned pings_acked, pings_received;
    bool read_paused; /* stop reading the socket (backpressure tests) */
};

/* Connects over a socketpair adopted by f->srv. */
struct raw *raw_new(struct fixture *f);
void raw_free(struct raw *r);
/* Starts a gRPC request. body (borrowed until sent) goes out in DATA frames
 * of at most `chunk` bytes (0: as large as allowed); end: END_STREAM after
 * it. extra metadata may be NULL. Returns the stream. */
struct raw_stream *raw_call(struct raw *r, const char *path, const struct rpc_md *extra,
                            size_t n_extra, const uint8_t *body, size_t len, size_t chunk,
                            bool end);
void raw_flush(struct raw *r);
void raw_rst(struct raw *r, struct raw_stream *s);
void raw_ping(struct raw *r);
bool raw_wait_closed(struct raw *r, struct raw_stream *s, unsigned ms);

/* Frames a message: 5-byte prefix + packed msg appended to buf (realloc'd,
 * caller frees with free()). */
size_t frame_msg(uint8_t **buf, size_t len, const ProtobufCMessage *msg);
/* Unpacks the i-th EchoResponse of a stream's data (NULL when absent);
 * caller frees with protobuf_c_message_free_unpacked(.., NULL). */
Metcd__Test__EchoResponse *raw_response(const struct raw_stream *s, size_t i);
size_t raw_count_messages(const struct raw_stream *s);

/* A socketpair end adopted by the server; returns the other end
 * (non-blocking). */
int sock_adopted(struct fixture *f);
/* Runs the loop while reading fd into buf until `needle` appears (or EOF
 * when needle is NULL) or ms pass. Returns bytes read; *eof set on EOF. */
size_t sock_read_until(struct fixture *f, int fd, char *buf, size_t cap, const char *needle,
                       unsigned ms, bool *eof);
/* Writes all of s (blocking-ish loop on a non-blocking fd). */
void sock_write(int fd, const void *s, size_t len);

#endif
