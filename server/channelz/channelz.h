/* server/channelz/channelz.h - the channelz registry (grpc's channelz,
 * https://github.com/grpc/proposal/blob/master/A14-channelz.md): servers,
 * listen sockets, server sockets, channels, subchannels and sockets, each
 * with an id from one generator, a parent, a reference name and metrics.
 *
 * Pure data: no I/O, no clocks (times are passed in, ns since the Unix
 * epoch). The rpc module fills it and serves it as grpc.channelz.v1.
 * Single-threaded: the owner's loop thread only.
 *
 * Lifetime (channelz semantics): channelz_remove() asks for removal; the
 * node stays, listed and queryable, while it has children or while a trace
 * event references it; it goes when the last reference goes. Errors are
 * negative `enum channelz_error` values (range -500..-599).
 */
#ifndef METCD_SERVER_CHANNELZ_H
#define METCD_SERVER_CHANNELZ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum channelz_error {
    CHANNELZ_OK = 0,
    CHANNELZ_ERR_NOMEM = -500,
    CHANNELZ_ERR_INVAL = -501,
};
const char *channelz_strerror(int err);

enum channelz_kind {
    CHANNELZ_CHANNEL = 1, /* top channel (a client's target); parent NULL */
    CHANNELZ_SUBCHANNEL,  /* parent: a channel or subchannel */
    CHANNELZ_SERVER,      /* parent NULL */
    CHANNELZ_LISTEN_SOCKET, /* parent: a server */
    CHANNELZ_SOCKET,      /* parent: a server (server socket) or a subchannel */
};

/* Connectivity states, numbered as ChannelConnectivityState.State. */
enum channelz_state {
    CHANNELZ_STATE_UNKNOWN = 0,
    CHANNELZ_STATE_IDLE = 1,
    CHANNELZ_STATE_CONNECTING = 2,
    CHANNELZ_STATE_READY = 3,
    CHANNELZ_STATE_TRANSIENT_FAILURE = 4,
    CHANNELZ_STATE_SHUTDOWN = 5,
};

/* Trace severities, numbered as ChannelTraceEvent.Severity. */
enum channelz_severity {
    CHANNELZ_SEV_INFO = 1,
    CHANNELZ_SEV_WARNING = 2,
    CHANNELZ_SEV_ERROR = 3,
};

/* Call metrics of channels, subchannels and servers. Owners update the
 * fields directly. */
struct channelz_calls {
    uint64_t started, succeeded, failed;
    int64_t last_started_ns;
};

/* Socket metrics (SocketData). Owners update the fields directly. */
struct channelz_socket_data {
    uint64_t streams_started, streams_succeeded, streams_failed;
    uint64_t messages_sent, messages_received, keepalives_sent;
    int64_t last_local_stream_ns, last_remote_stream_ns;
    int64_t last_message_sent_ns, last_message_received_ns;
    int64_t local_window, remote_window; /* -1: unknown */
};

struct channelz;
struct channelz_node;

/* One trace event as stored (read-only view). */
struct channelz_event {
    char *description;
    enum channelz_severity severity;
    int64_t ts_ns;
    struct channelz_node *ref; /* referenced child (channel/subchannel), or NULL */
};

/* Creates a registry; every channel/subchannel keeps up to max_events
 * trace events (30 as grpc; 0 turns tracing off). Caller frees with
 * channelz_free. */
int channelz_new(struct channelz **out, size_t max_events);
/* Frees the registry and every node still in it. NULL is a no-op. */
void channelz_free(struct channelz *cz);

/* Adds a node. parent must fit the kind (see enum) and may not be a node
 * already asked to be removed. name is copied (NULL: ""). The node belongs
 * to the registry; the caller keeps the pointer until it calls
 * channelz_remove (after which it must not use it). */
int channelz_add(struct channelz *cz, enum channelz_kind kind,
                 struct channelz_node *parent, const char *name,
                 int64_t now_ns, struct channelz_node **out);
/* Asks for removal (see lifetime above). NULL is a no-op. */
void channelz_remove(struct channelz_node *n);

uint64_t channelz_id(const struct channelz_node *n);
enum channelz_kind channelz_kind_of(const struct channelz_node *n);
const char *channelz_name(const struct channelz_node *n);
struct channelz_node *channelz_parent(const struct channelz_node *n);
int64_t channelz_created_ns(const struct channelz_node *n);
/* Metrics: non-NULL only for the kinds that have them. */
struct channelz_calls *channelz_calls_of(struct channelz_node *n);
struct channelz_socket_data *channelz_socket_of(struct channelz_node *n);

void channelz_set_state(struct channelz_node *n, enum channelz_state st);
enum channelz_state channelz_state_of(const struct channelz_node *n);
/* Socket addresses (copied); either may be NULL. */
void channelz_set_addrs(struct channelz_node *n, const struct sockaddr *local,
                        socklen_t local_len, const struct sockaddr *remote,
                        socklen_t remote_len);
/* Borrowed views of the stored addresses; *len 0 when unset. */
const struct sockaddr *channelz_local_addr(const struct channelz_node *n, socklen_t *len);
const struct sockaddr *channelz_remote_addr(const struct channelz_node *n, socklen_t *len);

/* A socket's TLS session (channelz.proto Security.Tls): the cipher
 * suite's RFC name (or, when it has none, the library's name) and the DER
 * certificates of both ends (either may be empty). */
struct channelz_tls {
    char *standard_name; /* "TLS_AES_128_GCM_SHA256", or NULL */
    char *other_name;    /* used when standard_name is NULL */
    uint8_t *local_cert, *remote_cert;
    size_t local_cert_len, remote_cert_len;
};
/* Records a socket's TLS session (everything copied; replaces an earlier
 * one). 0, or -1 when out of memory (the socket then shows none). */
int channelz_set_tls(struct channelz_node *n, const char *standard_name, const char *other_name,
                     const uint8_t *local_cert, size_t local_len, const uint8_t *remote_cert,
                     size_t remote_len);
/* The socket's TLS session, or NULL for a plaintext one (borrowed). */
const struct channelz_tls *channelz_tls_of(const struct channelz_node *n);

/* Appends an event to a channel's or subchannel's trace (no-op for other
 * kinds or when tracing is off). `ref`, when non-NULL, is a channel or
 * subchannel the event references: it is kept alive while the event is in
 * the trace. The oldest event goes when the trace is full. */
int channelz_trace(struct channelz_node *n, enum channelz_severity sev,
                   const char *desc, struct channelz_node *ref, int64_t now_ns);
/* Adds an event about `child` to its parent's trace, referencing child. */
int channelz_trace_parent(struct channelz_node *child, enum channelz_severity sev,
                          const char *desc, int64_t now_ns);
/* The trace (borrowed until the next change): oldest first. *logged is
 * the number of events ever logged; *created_ns the trace start. */
const struct channelz_event *channelz_events(const struct channelz_node *n, size_t *n_events,
                                             uint64_t *logged, int64_t *created_ns);

/* Looks up a node by id and kind (LISTEN_SOCKET and SOCKET both match
 * kind SOCKET). NULL when absent. */
struct channelz_node *channelz_find(const struct channelz *cz, enum channelz_kind kind,
                                    uint64_t id);

/* Pagination (channelz.proto): nodes of `kind` (and child of `parent` when
 * non-NULL) with id >= start_id in ascending id order, at most max
 * (0 means 50) written to out (room for max, or 50). Returns the count;
 * *end is 1 when no further node follows. */
size_t channelz_list(const struct channelz *cz, enum channelz_kind kind,
                     const struct channelz_node *parent, uint64_t start_id,
                     size_t max, struct channelz_node **out, int *end);

/* Children of n of `kind` (all, ascending id), up to cap; returns count. */
size_t channelz_children(const struct channelz_node *n, enum channelz_kind kind,
                         struct channelz_node **out, size_t cap);

/* Total number of nodes held (tests). */
size_t channelz_count(const struct channelz *cz);

#endif
