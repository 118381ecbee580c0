/* tests/unit/raft/harness.c - see harness.h. */
#include "tests/unit/raft/harness.h"

#include "common/mem.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static uint64_t voters[H_MAX] = {1, 2, 3, 4, 5, 6, 7, 8};

raft_config h_config(uint64_t id, size_t n, raft_mem_storage *ms)
{
    raft_config c = {
        .id = id,
        .voters = voters,
        .n_voters = n,
        .election_tick = 10,
        .heartbeat_tick = 1,
        .max_size_per_msg = UINT64_MAX,
        .max_inflight_msgs = 256,
        .storage = raft_mem_storage_view(ms),
    };
    return c;
}

raft *h_raft(uint64_t id, size_t n, raft_mem_storage **msp)
{
    raft_mem_storage *ms = raft_mem_storage_new();
    ck_assert_ptr_nonnull(ms);
    raft_config c = h_config(id, n, ms);
    raft *r;
    ck_assert_int_eq(raft_new(&c, &r), 0);
    *msp = ms;
    return r;
}

h_net *h_net_new(size_t n, bool pre_vote, bool check_quorum)
{
    h_net *net = calloc(1, sizeof(*net));
    net->n = n;
    for (uint64_t id = 1; id <= n; id++) {
        h_node *nd = &net->nodes[id];
        nd->id = id;
        nd->ms = raft_mem_storage_new();
        raft_config c = h_config(id, n, nd->ms);
        c.pre_vote = pre_vote;
        c.check_quorum = check_quorum;
        ck_assert_int_eq(raft_new(&c, &nd->r), 0);
    }
    return net;
}

void h_net_free(h_net *net)
{
    for (size_t i = 0; i < net->qlen; i++)
        raft_msg_free(&net->q[i]);
    free(net->q);
    for (uint64_t id = 1; id <= net->n; id++) {
        raft_free(net->nodes[id].r);
        raft_mem_storage_free(net->nodes[id].ms);
    }
    free(net);
}

static void enqueue(h_net *net, raft_msg *m)
{
    if (!net) {
        raft_msg_free(m);
        return;
    }
    if (net->qlen == net->qcap) {
        net->qcap = net->qcap ? net->qcap * 2 : 64;
        net->q = realloc(net->q, net->qcap * sizeof(*net->q));
    }
    net->q[net->qlen++] = *m;
    memset(m, 0, sizeof(*m));
}

void h_drive(h_net *net, h_node *nd)
{
    while (raft_has_ready(nd->r)) {
        struct raft_ready rd;
        ck_assert_int_eq(raft_ready(nd->r, &rd), 0);
        for (size_t i = 0; i < rd.n_msgs; i++)
            enqueue(net, &rd.msgs[i]);
        if (rd.has_hard_state)
            raft_mem_storage_set_hard_state(nd->ms, &rd.hard_state);
        if (rd.snapshot) {
            ck_assert_int_eq(raft_mem_storage_apply_snapshot(nd->ms, rd.snapshot), 0);
            nd->applied = rd.snapshot->meta.index;
            ck_assert_int_eq(raft_persisted(nd->r, rd.snapshot->meta.index, rd.snapshot->meta.term),
                             0);
            ck_assert_int_eq(raft_applied(nd->r, nd->applied), 0);
        }
        if (rd.n_entries) {
            ck_assert_int_eq(raft_mem_storage_append(nd->ms, rd.entries, rd.n_entries), 0);
            raft_entry *last = &rd.entries[rd.n_entries - 1];
            raft_persisted(nd->r, last->index, last->term);
        }
        for (size_t i = 0; i < rd.n_msgs_after_persist; i++)
            enqueue(net, &rd.msgs_after_persist[i]);
        for (size_t i = 0; i < rd.n_committed; i++) {
            raft_entry *e = &rd.committed[i];
            ck_assert_uint_eq(e->index, nd->applied + 1);
            if (e->type == RAFT_ENTRY_CONF_CHANGE) {
                /* (fuzzed entries may carry no payload: an empty change) */
                raft_conf_change cc;
                const uint8_t *d = e->data ? e->data->data : (const uint8_t *)"";
                ck_assert_int_eq(raft_conf_change_decode(d, e->data ? e->data->len : 0, &cc), 0);
                ck_assert_int_eq(raft_apply_conf_change(nd->r, &cc, NULL), 0);
                raft_buf_unref(cc.context);
            } else if (e->data && e->data->len >= 8 && nd->n_applied_data < 512) {
                uint64_t v;
                memcpy(&v, e->data->data, 8);
                nd->applied_data[nd->n_applied_data++] = v;
            }
            nd->applied = e->index;
            ck_assert_int_eq(raft_applied(nd->r, e->index), 0);
        }
        for (size_t i = 0; i < rd.n_read_states && nd->n_reads < 64; i++)
            nd->reads[nd->n_reads++] = rd.read_states[i];
        raft_advance(nd->r, &rd);
    }
}

void h_net_settle(h_net *net)
{
    for (int round = 0; round < 10000; round++) {
        for (uint64_t id = 1; id <= net->n; id++)
            if (!net->nodes[id].down)
                h_drive(net, &net->nodes[id]);
        if (net->qlen == 0)
            return;
        raft_msg *q = net->q;
        size_t n = net->qlen;
        net->q = NULL;
        net->qlen = net->qcap = 0;
        for (size_t i = 0; i < n; i++) {
            raft_msg *m = &q[i];
            bool drop = m->to == 0 || m->to > net->n || net->nodes[m->to].down ||
                        net->cut[m->from][m->to] || net->drop_type[m->type];
            if (!drop) {
                net->delivered[m->type]++;
                raft_step(net->nodes[m->to].r, m);
            }
            raft_msg_free(m);
        }
        free(q);
    }
    ck_abort_msg("network did not settle");
}

void h_net_tick(h_net *net, uint64_t id, int ticks)
{
    for (int i = 0; i < ticks; i++) {
        raft_tick(net->nodes[id].r);
        h_net_settle(net);
    }
}

void h_net_isolate(h_net *net, uint64_t id)
{
    for (uint64_t o = 1; o <= H_MAX; o++) {
        net->cut[id][o] = true;
        net->cut[o][id] = true;
    }
}

void h_net_cut(h_net *net, uint64_t a, uint64_t b)
{
    net->cut[a][b] = net->cut[b][a] = true;
}

void h_net_heal(h_net *net)
{
    memset(net->cut, 0, sizeof(net->cut));
    memset(net->drop_type, 0, sizeof(net->drop_type));
}

void h_net_elect(h_net *net, uint64_t id)
{
    raft_campaign(net->nodes[id].r);
    h_net_settle(net);
}

uint64_t h_net_leader(h_net *net)
{
    for (uint64_t id = 1; id <= net->n; id++) {
        raft_status st = h_status(net->nodes[id].r);
        if (!net->nodes[id].down && st.state == RAFT_LEADER)
            return id;
    }
    return 0;
}

raft_status h_status(raft *r)
{
    raft_status st;
    raft_status_get(r, &st);
    return st;
}
