/* bench/raft/raft_bench.c - in-process Raft throughput, no I/O.
 *
 * Three members in one thread; "persisting" is appending to the in-memory
 * storage, the network is a FIFO handing messages straight to raft_step.
 * A client keeps N proposals of 128 bytes in flight at the leader; an entry
 * counts when the leader applies it. Reports committed entries/s and
 * allocations (metcd_mem_count) per committed entry.
 *
 * Usage: raft-bench [--seconds S] [--inflight N ...]
 */
#include "raft/raft.h"

#include "common/mem.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NODES 3
#define ENTRY_SIZE 128

typedef struct bnode {
    raft *r;
    raft_mem_storage *ms;
    uint64_t applied;
    raft_conf_state conf;
} bnode;

static bnode nodes[NODES + 1];
static raft_msg *q;
static size_t qhead, qlen, qcap;
static uint64_t committed_user;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void enqueue(raft_msg *m)
{
    if (qlen == qcap) {
        if (qhead > 0) {
            memmove(q, q + qhead, (qlen - qhead) * sizeof(*q));
            qlen -= qhead;
            qhead = 0;
        }
        if (qlen == qcap) {
            qcap = qcap ? qcap * 2 : 1024;
            q = realloc(q, qcap * sizeof(*q));
        }
    }
    q[qlen++] = *m;
    memset(m, 0, sizeof(*m));
}

static void drive(uint64_t id)
{
    bnode *nd = &nodes[id];
    while (raft_has_ready(nd->r)) {
        struct raft_ready rd;
        if (raft_ready(nd->r, &rd) != 0)
            abort();
        for (size_t i = 0; i < rd.n_msgs; i++)
            enqueue(&rd.msgs[i]);
        if (rd.has_hard_state)
            raft_mem_storage_set_hard_state(nd->ms, &rd.hard_state);
        if (rd.n_entries) {
            if (raft_mem_storage_append(nd->ms, rd.entries, rd.n_entries))
                abort();
            raft_entry *l = &rd.entries[rd.n_entries - 1];
            raft_persisted(nd->r, l->index, l->term);
        }
        for (size_t i = 0; i < rd.n_msgs_after_persist; i++)
            enqueue(&rd.msgs_after_persist[i]);
        for (size_t i = 0; i < rd.n_committed; i++) {
            raft_entry *e = &rd.committed[i];
            if (id == 1 && e->data && e->data->len == ENTRY_SIZE)
                committed_user++;
            nd->applied = e->index;
        }
        if (rd.n_committed)
            raft_applied(nd->r, nd->applied);
        raft_advance(nd->r, &rd);
    }
    /* keep memory flat: compact what every node applied long ago */
    uint64_t first = raft_mem_storage_first_index(nd->ms);
    if (nd->applied > first + 20000) {
        raft_mem_storage_create_snapshot(nd->ms, nd->applied - 10000, &nd->conf, NULL);
        raft_mem_storage_compact(nd->ms, nd->applied - 10000);
    }
}

static void pump(void)
{
    for (;;) {
        for (uint64_t id = 1; id <= NODES; id++)
            drive(id);
        if (qhead == qlen)
            return;
        while (qhead < qlen) {
            raft_msg m = q[qhead++];
            if (m.to >= 1 && m.to <= NODES)
                raft_step(nodes[m.to].r, &m);
            raft_msg_free(&m);
        }
        qhead = qlen = 0;
    }
}

static void setup(void)
{
    static const uint64_t voters[NODES] = {1, 2, 3};
    for (uint64_t id = 1; id <= NODES; id++) {
        bnode *nd = &nodes[id];
        memset(nd, 0, sizeof(*nd));
        nd->ms = raft_mem_storage_new();
        raft_config c = {
            .id = id,
            .voters = voters,
            .n_voters = NODES,
            .election_tick = 10,
            .heartbeat_tick = 1,
            .max_size_per_msg = 1 << 20,
            .max_inflight_msgs = 256,
            .storage = raft_mem_storage_view(nd->ms),
        };
        for (size_t i = 0; i < NODES; i++)
            nd->conf.voters[nd->conf.n_voters++] = voters[i];
        if (raft_new(&c, &nd->r) != 0)
            abort();
    }
    raft_campaign(nodes[1].r);
    pump();
}

static void teardown(void)
{
    for (uint64_t id = 1; id <= NODES; id++) {
        raft_free(nodes[id].r);
        raft_mem_storage_free(nodes[id].ms);
    }
    for (size_t i = qhead; i < qlen; i++)
        raft_msg_free(&q[i]);
    free(q);
    q = NULL;
    qhead = qlen = qcap = 0;
}

static void run(uint64_t inflight, double seconds)
{
    setup();
    uint8_t payload[ENTRY_SIZE];
    memset(payload, 'x', sizeof(payload));
    committed_user = 0;
    uint64_t proposed = 0;
    long allocs0 = metcd_mem_count();
    double t0 = now_s(), t1 = t0;
    uint64_t rounds = 0;
    while (t1 - t0 < seconds) {
        while (proposed - committed_user < inflight) {
            if (raft_propose(nodes[1].r, payload, sizeof(payload)) != 0)
                abort();
            proposed++;
        }
        pump();
        if ((++rounds & 63) == 0)
            t1 = now_s();
    }
    t1 = now_s();
    long allocs = metcd_mem_count() - allocs0;
    printf("inflight %5" PRIu64 ": %10.0f entries/s  (%" PRIu64
           " entries in %.2f s)  %.2f allocations/entry\n",
           inflight, (double)committed_user / (t1 - t0), committed_user, t1 - t0,
           (double)allocs / (double)committed_user);
    teardown();
}

int main(int argc, char **argv)
{
    double seconds = 2.0;
    uint64_t list[16] = {1, 64, 1024};
    size_t n = 3, given = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--inflight") && i + 1 < argc && given < 16)
            list[given++] = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: raft-bench [--seconds S] "
                            "[--inflight N ...]\n");
            return 2;
        }
    }
    if (given)
        n = given;
    printf("raft-bench: %d members in-process, no I/O, %d-byte entries\n", NODES, ENTRY_SIZE);
    for (size_t i = 0; i < n; i++)
        run(list[i], seconds);
    return 0;
}
