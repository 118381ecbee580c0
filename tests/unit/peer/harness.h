/* tests/unit/peer/harness.h - members' transports in one process on
 * loopback: a node records what its callbacks saw; a bounded loop runner;
 * a raw client for feeding bad bytes to a listener. */
#ifndef METCD_TESTS_PEER_HARNESS_H
#define METCD_TESTS_PEER_HARNESS_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/peer/peer.h"

#define NODE_MAX_PEERS 8
#define NODE_LOG_CAP (64 * 1024)

struct node {
    struct event_base *base;
    peer_transport *t;
    uint64_t id, cluster_id;
    char url[128];
    /* messages received */
    uint64_t n_msgs, n_by_type[RAFT_MSG_NTYPES];
    uint64_t last_index[NODE_MAX_PEERS + 1]; /* by sender id (ids are 1..8) */
    bool out_of_order;
    /* feedback */
    uint64_t unreachable[NODE_MAX_PEERS + 1];
    uint64_t snap_ok[NODE_MAX_PEERS + 1], snap_failed[NODE_MAX_PEERS + 1];
    /* snapshots received (fd kept open until node_stop or taken) */
    int snap_fd;
    uint64_t snap_index, snap_from, n_snaps;
    /* optional hook run on every message */
    void (*on_msg_hook)(struct node *n, const raft_msg *m);
    char log[NODE_LOG_CAP];
    size_t log_len;
};

/* Starts node id on listen_url ("http://127.0.0.1:0" picks a port; n->url
 * receives the bound URL). extra may be NULL (fields other than ids, urls,
 * log and channelz are taken from it). Fails the test on error. */
void node_start(struct node *n, struct event_base *base, uint64_t id, uint64_t cluster_id,
                const char *listen_url, const peer_config *extra);
/* Same, returning the peer_transport_new code and leaving errbuf. */
int node_try_start(struct node *n, struct event_base *base, uint64_t id, uint64_t cluster_id,
                   const char *listen_url, const peer_config *extra, char *errbuf, size_t len);
/* Frees the transport (node may be restarted with node_start). */
void node_stop(struct node *n);
/* a and b know each other. */
void node_link(struct node *a, struct node *b);
bool node_log_has(const struct node *n, const char *needle);
bool node_active(const struct node *n, uint64_t peer_id);

/* A message of type t from->to with index i and an optional payload entry. */
raft_msg mk_msg(raft_msg_type type, uint64_t from, uint64_t to, uint64_t index, size_t payload);

void run_for(struct event_base *base, unsigned ms);
#define WAIT_UNTIL(base, cond, ms)                                                                 \
    do {                                                                                           \
        for (unsigned wait_i_ = 0; wait_i_ < (ms) / 5 && !(cond); wait_i_++)                       \
            run_for((base), 5);                                                                    \
    } while (0)

/* Raw client: a blocking TCP connection to a node's URL. */
int raw_connect(const char *url);
void raw_send(int fd, const void *p, size_t len);
/* Sends our hello (kind 1 stream / 2 snapshot). */
void raw_hello(int fd, uint8_t kind, uint64_t cluster, uint64_t from, uint64_t to);
void raw_frame(int fd, uint8_t type, const void *p, uint32_t len);
/* True once the server closed fd (reads and discards what arrives). */
bool raw_closed(int fd);

/* A regular file of len pseudo-random bytes (seeded), unlinked; fd at 0. */
int make_file(size_t len, uint32_t seed);
/* True when the file behind fd holds exactly make_file(len, seed)'s bytes. */
bool file_matches(int fd, size_t len, uint32_t seed);

#endif
