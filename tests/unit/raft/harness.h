/* tests/unit/raft/harness.h - a tiny in-process cluster for unit tests:
 * nodes with in-memory storage, a FIFO network with cut links, and a
 * driver that persists every Ready at once. */
#ifndef METCD_TESTS_RAFT_HARNESS_H
#define METCD_TESTS_RAFT_HARNESS_H

#include "raft/raft.h"

#define H_MAX 8

typedef struct h_node {
    uint64_t id;
    raft *r;
    raft_mem_storage *ms;
    uint64_t applied;
    uint64_t applied_data[512]; /* first 8 bytes of each applied entry */
    size_t n_applied_data;
    raft_read_state reads[64];
    size_t n_reads;
    bool down;
} h_node;

typedef struct h_net {
    h_node nodes[H_MAX + 1]; /* by id, 1-based */
    size_t n;
    bool cut[H_MAX + 1][H_MAX + 1];
    bool drop_type[RAFT_MSG_NTYPES];
    raft_msg *q;
    size_t qlen, qcap;
    size_t delivered[RAFT_MSG_NTYPES];
} h_net;

/* Default config for node id of an n-node cluster with voters 1..n. */
raft_config h_config(uint64_t id, size_t n, raft_mem_storage *ms);
/* A raft over a fresh storage with voters 1..n (not in a net). */
raft *h_raft(uint64_t id, size_t n, raft_mem_storage **ms);

h_net *h_net_new(size_t n, bool pre_vote, bool check_quorum);
void h_net_free(h_net *net);
/* Persist/apply every Ready of every node and deliver all messages until
 * quiet. */
void h_net_settle(h_net *net);
void h_net_tick(h_net *net, uint64_t id, int ticks);
void h_net_isolate(h_net *net, uint64_t id);
void h_net_cut(h_net *net, uint64_t a, uint64_t b);
void h_net_heal(h_net *net);
/* Elects id by campaigning and settling. */
void h_net_elect(h_net *net, uint64_t id);
uint64_t h_net_leader(h_net *net);
raft_status h_status(raft *r);
/* Runs one node's Ready cycle (persist everything at once, apply, queue
 * messages in the net if given). */
void h_drive(h_net *net, h_node *nd);

#endif
