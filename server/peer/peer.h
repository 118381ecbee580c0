/* server/peer/peer.h - the peer transport: raft messages and database
 * snapshots between metcd members (DESIGN.md, "Wire contracts: Peer port").
 *
 * Our own framing (not etcd-peer compatible). After connect, each side
 * sends a 32-byte hello
 *     u32 magic "MPER" | u16 version | u8 kind | u8 status |
 *     u64 cluster_id | u64 from_id | u64 to_id          (big-endian)
 * kind 1 = message stream, 2 = snapshot stream. The acceptor answers with
 * its own hello whose status says why it refuses (wrong cluster, unknown
 * sender, wrong recipient, version) and closes on refusal. Then frames
 *     u32 len | u8 type | payload[len]
 * type 1 = raftpb.Message; on a snapshot stream type 2 = header
 * (u64 database size | raftpb.Message MsgSnap), type 3 = database bytes
 * (chunks of at most 1 MiB), type 4 = sha256 of those bytes, answered by the
 * receiver with type 5 = ack (u8 0 ok, 1 failed) once the file is verified.
 *
 * Connections (as etcd's rafthttp: one stream per direction): messages from
 * A to B travel over A's outbound connection to B, which A dials and
 * redials with exponential backoff (100 ms .. 5 s) across B's URLs. A
 * snapshot goes over its own connection, so heartbeats never wait behind it.
 *
 * Bounds: per-peer outbound bytes (queue_bytes; a message that does not fit
 * is dropped and the peer reported unreachable, as a lossy network would),
 * 64 MiB per message frame, snapshot chunks of 1 MiB streamed to and from
 * files, inbound reads paused while a connection's unprocessed input is at
 * its bound, and at most 256 frames handled per read event (the rest is
 * resumed from the loop). Bad input from a peer (bad magic, oversize frame,
 * undecodable message, sha mismatch) closes that connection with a log
 * line; nothing a peer sends can crash the member or block other peers.
 *
 * Threading: one event_base; every function runs on its thread. Callbacks
 * run from the loop. on_message and on_snapshot run while the transport
 * reads from a connection: they may call peer_send, peer_send_snapshot,
 * peer_add and peer_remove, but never peer_transport_free. on_unreachable
 * and on_snapshot_status are always deferred to their own loop event (never
 * called from inside a peer_* function), so feeding them to raft is safe.
 *
 * Errors: negative `enum peer_error` (range -1700..-1749); peer_strerror().
 *
 * Host names in peer URLs are resolved with getaddrinfo at each dial (the
 * loop waits for /etc/hosts or DNS; IP literals never wait). Linking:
 * whatever links peer_dep also links channelz_dep (server/meson.build).
 *
 * In a member, in short:
 *
 *   peer_transport_new(&pt, base, &(peer_config){.self_id = id, .cluster_id = cid,
 *       .listen_urls = lpurls, .n_listen_urls = n, .channelz = cz,
 *       .log = log_fn, .log_ctx = lg, .snap_dir = "<data-dir>/member/snap"},
 *       &(peer_callbacks){on_msg, on_snap, on_unreach, on_snap_status, node}, err, len);
 *   for each other member: peer_add(pt, m_id, m_peer_urls, k);
 *   Ready: for each msg: MsgSnap ? peer_send_snapshot(pt, msg, db_copy_fd)
 *                                : peer_send(pt, msg);    (errors need no action)
 *   on_msg -> raft_step; on_unreach -> raft_report_unreachable;
 *   on_snap_status -> raft_report_snapshot; on_snap -> WAL marker, swap db, raft_step.
 */
#ifndef METCD_SERVER_PEER_H
#define METCD_SERVER_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

struct event_base;
struct channelz;

enum peer_error {
    PEER_OK = 0,
    PEER_ERR_NOMEM = -1700,   /* allocation failed */
    PEER_ERR_INVAL = -1701,   /* bad argument (URL, id, message type, fd) */
    PEER_ERR_ADDR = -1702,    /* an address did not resolve or bind failed */
    PEER_ERR_UNKNOWN = -1703, /* no such peer (peer_add it first) */
    PEER_ERR_DROPPED = -1704, /* not queued: no connection or queue full;
                               * on_unreachable follows from the loop */
    PEER_ERR_TOO_BIG = -1705, /* encoded message over the 64 MiB frame limit */
    PEER_ERR_BUSY = -1706,    /* a snapshot to that peer is still in flight */
    PEER_ERR_IO = -1707,      /* file or socket error */
    PEER_ERR_TLS = -1708,     /* TLS setup failed (certificate, key, CA) */
};

/* Static text for a peer_error (any int accepted, never NULL). */
const char *peer_strerror(int err);

/* Log sink: level is 'D', 'I', 'N', 'W' or 'E' (capnslog's letters), pkg is
 * "rafthttp", msg one line without newline (all borrowed for the call). */
typedef void (*peer_log_fn)(void *ctx, int level, const char *pkg, const char *msg);

typedef struct peer_callbacks {
    /* A raft message arrived from a member (m borrowed for the call; the
     * transport frees it). m->from is the authenticated sender, m->to self. */
    void (*on_message)(void *arg, const raft_msg *m);
    /* A snapshot arrived and its sha256 matched: msg is the MsgSnap
     * (msg->snapshot->meta filled; borrowed for the call), fd an open,
     * readable and writable file positioned at 0 holding the whole
     * database (the callee owns fd and closes it). The file is unlinked
     * (O_TMPFILE) in snap_dir. NULL: the file is closed. */
    void (*on_snapshot)(void *arg, const raft_msg *msg, int fd);
    /* Transport feedback for raft (raft_report_unreachable and
     * raft_report_snapshot): a message to peer_id was dropped or its stream
     * was lost; a snapshot sent with peer_send_snapshot finished. */
    void (*on_unreachable)(void *arg, uint64_t peer_id);
    void (*on_snapshot_status)(void *arg, uint64_t peer_id, bool failed);
    /* Optional: a member about to join with --initial-cluster-state existing
     * asks who the cluster is (peer_query_members). The callee returns the
     * answer's bytes in *out (caller frees with metcd_free): 0, or nonzero
     * to refuse. NULL: such queries are refused. */
    int (*members_info)(void *arg, uint8_t **out, size_t *len);
    void *arg;
} peer_callbacks;

typedef struct peer_config {
    uint64_t self_id, cluster_id;
    /* "http://host:port", "https://host:port", "unix://path"; port 0 picks
     * a free port (peer_listen_url tells which). Borrowed for the call. */
    const char *const *listen_urls;
    size_t n_listen_urls;
    size_t queue_bytes;       /* per-peer outbound bound, 0 = 4 MiB */
    uint32_t dial_timeout_ms; /* connect + hello, 0 = 1000; twice that for
                               * an accepted connection's hello */
    uint32_t snap_timeout_ms; /* no progress on a snapshot stream, 0 = 30000 */
    uint64_t snap_max_bytes;  /* largest database accepted, 0 = 64 GiB */
    /* Where received snapshots are written (copied; must exist): an
     * unlinked O_TMPFILE there, so a directory on the database's filesystem
     * lets the member link it into place (linkat of /proc/self/fd/N).
     * NULL = $TMPDIR or /tmp. */
    const char *snap_dir;
    /* Optional (server/channelz/channelz.h; borrowed, must outlive the
     * transport): each peer is a channel "peer <id>" with a subchannel for
     * its message stream (state, trace: connected, lost, snapshot sent or
     * failed) and a socket per live outbound connection; a server "peer"
     * lists the listeners and the inbound connections. */
    struct channelz *channelz;
    peer_log_fn log; /* NULL: silent */
    void *log_ctx;
    /* TLS for https:// URLs (--peer-cert-file, --peer-key-file,
     * --peer-trusted-ca-file, --peer-client-cert-auth, --peer-auto-tls).
     * Paths copied. Listeners on https need cert+key or auto_tls (a
     * self-signed certificate generated at start, as etcd does). Dialing
     * presents the same certificate as a client certificate and verifies
     * the server against trusted_ca_file when given (and not auto_tls,
     * where etcd skips verification too). client_cert_auth makes listeners
     * require a client certificate signed by trusted_ca_file. */
    const char *cert_file, *key_file, *trusted_ca_file;
    bool client_cert_auth;
    bool auto_tls;
    /* Read while peer_transport_new runs, not kept: --peer-crl-file
     * (revoked client certificates refused), --peer-cert-allowed-cn and
     * --peer-cert-allowed-hostname (an inbound peer's certificate must
     * carry this CommonName / be valid for this host name), and the
     * OpenSSL names of --cipher-suites. */
    const char *crl_file, *allowed_cn, *allowed_hostname;
    const char *const *ciphers;
    size_t n_ciphers;
} peer_config;

typedef struct peer_transport peer_transport;

/* Creates a transport on base and binds every listen URL (errbuf gets the
 * reason on failure). cfg and cb are copied. Sets SIGPIPE to ignored when
 * it is at its default (a peer closing its end must not kill the member).
 * Caller frees with peer_transport_free. */
int peer_transport_new(peer_transport **out, struct event_base *base, const peer_config *cfg,
                       const peer_callbacks *cb, char *errbuf, size_t errlen);
/* Closes every listener and connection (queued messages are dropped,
 * snapshot fds closed, no callback runs) and frees t. NULL is a no-op. Not
 * from inside a transport callback. */
void peer_transport_free(peer_transport *t);

/* The URL listener i actually bound (port filled in), or NULL when i is out
 * of range. Borrowed until peer_transport_free. */
const char *peer_listen_url(const peer_transport *t, size_t i);

/* Adds peer id with its peer URLs (copied; "http://", "https://", "unix://"),
 * or replaces the URLs of a known peer (its stream is redialed when the
 * URL in use is gone). Starts dialing at once. Only added peers may
 * connect to us. id 0 and self_id are PEER_ERR_INVAL. */
int peer_add(peer_transport *t, uint64_t id, const char *const *urls, size_t n);
/* Forgets peer id: closes its connections both ways (queued messages and a
 * snapshot in flight are dropped without callback). PEER_ERR_UNKNOWN when
 * absent. */
int peer_remove(peer_transport *t, uint64_t id);

/* Queues m (encoded: m is not kept) for m->to. Never blocks. Messages sent
 * while the stream is being dialed ride it once it is up; while the peer
 * is unreachable (backoff) or its queue is full the message is dropped:
 * PEER_ERR_DROPPED, and on_unreachable(m->to) follows from the loop. MsgSnap
 * is PEER_ERR_INVAL: use peer_send_snapshot. */
int peer_send(peer_transport *t, const raft_msg *m);

/* Streams a snapshot to snap_msg->to over a new connection: snap_msg (a
 * MsgSnap with snapshot meta; copied) then the database in fd, a regular
 * file read from offset 0 to its size at call time. Takes fd in every case
 * (closed when done or on error). On success (0) exactly one
 * on_snapshot_status(to, failed) follows, after the receiver verified the
 * sha256 (failed = false) or when the stream broke (true), unless
 * peer_remove or peer_transport_free comes first. On error no callback
 * follows. One snapshot per peer at a time (PEER_ERR_BUSY). */
int peer_send_snapshot(peer_transport *t, const raft_msg *snap_msg, int fd);

/* Asks the member listening on `url` (http:// or unix://) who its cluster
 * is, blocking for at most timeout_ms: its cluster id and the bytes its
 * members_info callback gave (*payload, caller frees with metcd_free). For a
 * member that joins an existing cluster and does not know its ids yet.
 * Returns 0 or a PEER_ERR_* code with the reason in errbuf. */
int peer_query_members(const char *url, uint32_t timeout_ms, uint64_t *cluster_id,
                       uint8_t **payload, size_t *len, char *errbuf, size_t errlen);

typedef struct peer_stats {
    uint64_t id;
    bool active;         /* our outbound message stream is up */
    bool inbound_active; /* the peer's stream to us is up */
    bool sending_snapshot;
    uint64_t msgs_sent, bytes_sent;         /* queued onto the stream */
    uint64_t msgs_received, bytes_received; /* frames received from it */
    uint64_t msgs_dropped;                  /* not queued (DROPPED / lost with a stream) */
    uint64_t snapshots_sent, snapshots_failed, snapshots_received;
    size_t queued_bytes; /* outbound bytes not yet written */
} peer_stats;

/* Fills out[0..min(n, cap)) with the stats of the n known peers (in
 * peer_add order) and returns n. */
size_t peer_get_stats(const peer_transport *t, peer_stats *out, size_t cap);

#endif
