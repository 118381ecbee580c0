/* tests/sim/sim.c - deterministic simulator for raft/.
 *
 * 3 or 5 members in one process over a simulated network that drops,
 * duplicates, delays and reorders messages, partitions and heals; members
 * crash and restart from what their simulated disk fsynced; clients
 * propose; the leader adds and removes members (learners first or
 * directly, the leader itself included) and transfers leadership; members
 * snapshot and compact, lagging followers get snapshots.
 *
 * After every step it checks:
 *   - election safety: at most one leader per term;
 *   - log matching: an (index, term) names one entry with one predecessor
 *     term, across all members' logs ever seen (induction gives the full
 *     property);
 *   - leader completeness: a new leader's log holds every applied entry;
 *   - state machine safety: no two members apply different entries (or
 *     reach different state) at one index, entries are applied in order;
 *   - acknowledged proposals (applied on the member that took them) are
 *     never lost: at the end every member applied them;
 * and, after the chaos phase, liveness: once the network heals and every
 * member is up, a leader is elected and a fresh proposal is applied by
 * every member within a bounded number of ticks.
 *
 * Usage: sim [--seeds N] [--first S] [--seed S] [--ticks T] [--trace]
 * Any failure prints the seed, the command replaying it, and the trace of
 * the last events (--trace prints every event as it happens).
 */
#include "raft/raft.h"

#include "common/mem.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IDS 10
#define ELECTION_TICK 10
#define LIVENESS_TICKS 600

/* ---- deterministic randomness --------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rndn(uint64_t n)
{
    return n ? rnd() % n : 0;
}

/* chance in parts per million */
static bool chance(uint32_t ppm)
{
    return rndn(1000000) < ppm;
}

static uint64_t raft_rand_cb(void *data, uint64_t n)
{
    (void)data;
    return rndn(n);
}

/* ---- trace ------------------------------------------------------------------ */

static uint64_t cur_seed;
static uint64_t now;
static bool trace_all;
#define TRACE_RING 400
static char trace_ring[TRACE_RING][160];
static size_t trace_n;

static void tracef(const char *fmt, ...)
{
    char *line = trace_ring[trace_n++ % TRACE_RING];
    int off = snprintf(line, 160, "[t=%" PRIu64 "] ", now);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + off, 160 - (size_t)off, fmt, ap);
    va_end(ap);
    if (trace_all)
        printf("%s\n", line);
}

static void dump_nodes(void);

static void fail(const char *fmt, ...)
{
    dump_nodes();
    if (!trace_all) {
        size_t start = trace_n > TRACE_RING ? trace_n - TRACE_RING : 0;
        fprintf(stderr, "---- last %zu events ----\n", trace_n - start);
        for (size_t i = start; i < trace_n; i++)
            fprintf(stderr, "%s\n", trace_ring[i % TRACE_RING]);
    }
    fprintf(stderr, "SIM FAILURE seed=%" PRIu64 " tick=%" PRIu64 ": ", cur_seed, now);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nreplay: sim --seed %" PRIu64 " --trace\n", cur_seed);
    exit(1);
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail(__VA_ARGS__);                                                                     \
    } while (0)

/* ---- global invariant state ------------------------------------------------- */

typedef struct {
    uint64_t *v;
    size_t cap;
} u64arr;

static void arr_set(u64arr *a, size_t i, uint64_t x)
{
    if (i >= a->cap) {
        size_t ncap = a->cap ? a->cap : 1024;
        while (ncap <= i)
            ncap *= 2;
        a->v = realloc(a->v, ncap * sizeof(uint64_t));
        memset(a->v + a->cap, 0, (ncap - a->cap) * sizeof(uint64_t));
        a->cap = ncap;
    }
    a->v[i] = x;
}

static uint64_t arr_get(const u64arr *a, size_t i)
{
    return i < a->cap ? a->v[i] : 0;
}

static u64arr leader_of_term; /* term -> leader id */
static u64arr state_hash;     /* index -> state hash after applying it */
static u64arr applied_term;   /* index -> term of the entry applied there */
static uint64_t max_applied;

/* log matching registry: (index, term) -> (payload hash, previous term) */
typedef struct {
    uint64_t index, term, hash, prev;
} reg_slot;
static reg_slot *reg;
static size_t reg_cap, reg_len;

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

static void reg_grow(void);

static reg_slot *reg_find(uint64_t index, uint64_t term, bool insert)
{
    if (insert && (reg_len + 1) * 2 > reg_cap)
        reg_grow();
    size_t i = (size_t)(mix(index, term) & (reg_cap - 1));
    for (;;) {
        reg_slot *s = &reg[i];
        if (s->index == 0) {
            if (!insert)
                return NULL;
            s->index = index;
            s->term = term;
            s->hash = 0;
            s->prev = UINT64_MAX;
            reg_len++;
            return s;
        }
        if (s->index == index && s->term == term)
            return s;
        i = (i + 1) & (reg_cap - 1);
    }
}

static void reg_grow(void)
{
    reg_slot *old = reg;
    size_t ocap = reg_cap;
    reg_cap = reg_cap ? reg_cap * 2 : 4096;
    reg = calloc(reg_cap, sizeof(reg_slot));
    reg_len = 0;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].index) {
            reg_slot *s = reg_find(old[i].index, old[i].term, true);
            *s = old[i];
        }
    }
    free(old);
}

static uint64_t payload_hash(const raft_entry *e)
{
    uint64_t h = mix(0x1234, (uint64_t)e->type);
    if (e->data) {
        for (uint32_t i = 0; i < e->data->len; i++)
            h = mix(h, e->data->data[i]);
        h = mix(h, e->data->len);
    }
    return h;
}

/* ---- the simulated cluster -------------------------------------------------- */

typedef struct pending_write {
    bool has_hs;
    raft_hard_state hs;
    raft_snapshot *snap;
    raft_entry *ents;
    size_t n_ents;
    raft_msg *after;
    size_t n_after;
    struct pending_write *next;
} pending_write;

typedef struct node {
    uint64_t id;
    bool started; /* has a storage (was bootstrapped or added) */
    bool up;
    bool removed; /* applied its own removal: stopped for good */
    raft *r;
    raft_mem_storage *ms;   /* durable: what fsync made stable */
    raft_mem_storage *view; /* the log as raft sees it: ms + pending */
    pending_write *head, *tail;
    uint64_t applied;
    uint64_t hash;
    raft_conf_state conf;
    raft_conf_state boot; /* membership passed at creation (index 0) */
    uint64_t last_snap;
    uint64_t seq;
    uint64_t term;
    raft_state state;
} node;

typedef struct net_msg {
    raft_msg m;
    uint64_t at;
} net_msg;

/* read-index requests in flight: ctx -> highest index applied anywhere
 * when the read was issued (a linearizable read must see it) */
typedef struct read_req {
    uint64_t ctx, min_index;
} read_req;

typedef struct acked {
    uint64_t index, value;
} acked;

static struct sim {
    node nodes[MAX_IDS + 1];
    uint64_t bootstrap[5];
    size_t n_bootstrap;
    uint64_t next_id;
    net_msg *net;
    size_t n_net, cap_net;
    int group[MAX_IDS + 1]; /* partition: members of different groups */
    bool partitioned;
    uint32_t drop_ppm, dup_ppm;
    uint64_t max_delay;
    uint64_t max_msg;
    size_t max_inflight;
    uint32_t crash_ppm, leader_crash_ppm, partition_ppm;
    bool pre_vote, check_quorum;
    bool join_current; /* joiners boot with the leader's membership */
    acked *acks;
    size_t n_acks, cap_acks;
    read_req reads[4096];
    size_t n_reads;
    uint64_t reads_done;
    uint64_t proposals, applied_total, elections, snapshots, restarts;
} S;

/* stats over all seeds */
static uint64_t tot_reads, tot_applied, tot_elections, tot_snapshots, tot_restarts, tot_confs,
    tot_transfers;

static void net_send(raft_msg *m)
{
    if (S.n_net == S.cap_net) {
        S.cap_net = S.cap_net ? S.cap_net * 2 : 256;
        S.net = realloc(S.net, S.cap_net * sizeof(net_msg));
    }
    net_msg *nm = &S.net[S.n_net++];
    nm->m = *m;
    memset(m, 0, sizeof(*m));
    nm->at = now + rndn(S.max_delay + 1);
    if (chance(S.dup_ppm)) {
        raft_msg copy;
        if (raft_msg_copy(&copy, &nm->m) == 0) {
            uint64_t at = now + rndn(S.max_delay + 1);
            if (S.n_net == S.cap_net) {
                S.cap_net *= 2;
                S.net = realloc(S.net, S.cap_net * sizeof(net_msg));
            }
            S.net[S.n_net].m = copy;
            S.net[S.n_net].at = at;
            S.n_net++;
        }
    }
}

static void free_pending(node *nd)
{
    pending_write *pw = nd->head;
    while (pw) {
        pending_write *next = pw->next;
        raft_snapshot_free(pw->snap);
        raft_entries_free(pw->ents, pw->n_ents);
        for (size_t i = 0; i < pw->n_after; i++)
            raft_msg_free(&pw->after[i]);
        free(pw->after);
        free(pw);
        pw = next;
    }
    nd->head = nd->tail = NULL;
}

static raft_mem_storage *copy_storage(raft_mem_storage *src)
{
    raft_mem_storage *dst = raft_mem_storage_new();
    raft_storage s = raft_mem_storage_view(src);
    raft_snapshot *snap;
    CHECK(s.ops->snapshot(s.data, &snap) == 0, "snapshot copy");
    if (snap->meta.index)
        CHECK(raft_mem_storage_apply_snapshot(dst, snap) == 0, "apply copy");
    raft_snapshot_free(snap);
    raft_hard_state hs = raft_mem_storage_hard_state(src);
    raft_mem_storage_set_hard_state(dst, &hs);
    uint64_t first = raft_mem_storage_first_index(src);
    uint64_t last = raft_mem_storage_last_index(src);
    if (last >= first) {
        raft_entry_vec v = {0};
        CHECK(s.ops->entries(s.data, first, last + 1, UINT64_MAX, &v) == 0, "entries copy");
        CHECK(raft_mem_storage_append(dst, v.v, v.len) == 0, "append copy");
        raft_entry_vec_free(&v);
    }
    return dst;
}

static uint64_t view_term(node *nd, uint64_t i, bool *ok)
{
    raft_storage s = raft_mem_storage_view(nd->view);
    uint64_t t = 0;
    *ok = s.ops->term(s.data, i, &t) == 0;
    return t;
}

/* Snapshot payload: applied index and state hash. */
static raft_buf *state_blob(const node *nd)
{
    uint64_t v[2] = {nd->applied, nd->hash};
    return raft_buf_new(v, sizeof(v));
}

static void install_state_from(node *nd, const raft_snapshot *s)
{
    uint64_t v[2] = {0, 0};
    if (s->data && s->data->len == sizeof(v))
        memcpy(v, s->data->data, sizeof(v));
    CHECK(v[0] == s->meta.index, "snapshot data index %" PRIu64 " != meta index %" PRIu64, v[0],
          s->meta.index);
    if (s->meta.index) {
        uint64_t g = arr_get(&state_hash, s->meta.index);
        CHECK(g == v[1],
              "node %" PRIu64 " installs snapshot at %" PRIu64
              " whose state differs from what was applied there",
              nd->id, s->meta.index);
    }
    nd->applied = s->meta.index;
    nd->hash = v[1];
    nd->conf = s->meta.conf;
}

static void start_node(node *nd, bool fresh)
{
    raft_config c = {
        .id = nd->id,
        .voters = nd->boot.voters,
        .n_voters = nd->boot.n_voters,
        .learners = nd->boot.learners,
        .n_learners = nd->boot.n_learners,
        .election_tick = ELECTION_TICK,
        .heartbeat_tick = 1,
        .check_quorum = S.check_quorum,
        .pre_vote = S.pre_vote,
        .max_size_per_msg = S.max_msg,
        .max_inflight_msgs = S.max_inflight,
        .max_uncommitted_size = 4096,
        .max_pending_reads = 256,
        .rand = raft_rand_cb,
    };
    if (fresh) {
        nd->ms = raft_mem_storage_new();
        nd->started = true;
    }
    raft_storage st = raft_mem_storage_view(nd->ms);
    raft_snapshot *snap;
    CHECK(st.ops->snapshot(st.data, &snap) == 0, "snapshot");
    if (snap->meta.index) {
        install_state_from(nd, snap);
    } else {
        nd->applied = 0;
        nd->hash = 0;
        nd->conf = nd->boot;
    }
    raft_snapshot_free(snap);
    c.applied = nd->applied;
    c.storage = st;
    int rc = raft_new(&c, &nd->r);
    CHECK(rc == 0, "raft_new(%" PRIu64 "): %s", nd->id, raft_strerror(rc));
    raft_mem_storage_free(nd->view);
    nd->view = copy_storage(nd->ms);
    nd->up = true;
    nd->term = raft_mem_storage_hard_state(nd->ms).term;
    nd->state = RAFT_FOLLOWER;
    tracef("start %" PRIu64 " (applied %" PRIu64 ")", nd->id, nd->applied);
}

/* A crash during the oldest pending write leaves a prefix of it on disk
 * (WAL record order: snapshot, entries, hard state). */
static void torn_write(node *nd)
{
    pending_write *pw = nd->head;
    if (!pw || !chance(500000))
        return;
    if (pw->snap) {
        if (chance(500000))
            return;
        CHECK(raft_mem_storage_apply_snapshot(nd->ms, pw->snap) == 0, "torn snapshot");
    }
    size_t k = (size_t)rndn(pw->n_ents + 1);
    if (k)
        CHECK(raft_mem_storage_append(nd->ms, pw->ents, k) == 0, "torn append");
    bool hs = k == pw->n_ents && pw->has_hs && chance(500000);
    if (hs)
        raft_mem_storage_set_hard_state(nd->ms, &pw->hs);
    tracef("torn write on %" PRIu64 ": snap=%d %zu/%zu entries hs=%d", nd->id, pw->snap != NULL, k,
           pw->n_ents, hs);
}

static void crash_node(node *nd)
{
    tracef("crash %" PRIu64 " (%s, term %" PRIu64 ")", nd->id, raft_state_name(nd->state),
           nd->term);
    torn_write(nd);
    free_pending(nd);
    raft_free(nd->r);
    nd->r = NULL;
    nd->up = false;
}

/* Registers entries as they enter a member's log (log matching). */
static void check_log_entries(node *nd, const raft_entry *ents, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        const raft_entry *e = &ents[k];
        bool ok;
        uint64_t prev = e->index > 1 ? view_term(nd, e->index - 1, &ok) : 0;
        if (e->index > 1 && !ok)
            prev = UINT64_MAX - 1; /* unknown (snapshot boundary) */
        reg_slot *s = reg_find(e->index, e->term, true);
        uint64_t h = payload_hash(e);
        if (s->hash == 0) {
            s->hash = h;
        } else {
            CHECK(s->hash == h,
                  "log matching: two different entries at "
                  "index %" PRIu64 " term %" PRIu64,
                  e->index, e->term);
        }
        if (prev != UINT64_MAX - 1) {
            if (s->prev == UINT64_MAX)
                s->prev = prev;
            else
                CHECK(s->prev == prev,
                      "log matching: entry %" PRIu64 "/%" PRIu64 " follows term %" PRIu64
                      " on node %" PRIu64 " but term %" PRIu64 " elsewhere",
                      e->index, e->term, prev, nd->id, s->prev);
        }
        /* append one by one so the next entry sees this one */
        CHECK(raft_mem_storage_append(nd->view, e, 1) == 0, "view append");
    }
}

static void check_leader_completeness(node *nd)
{
    raft_storage s = raft_mem_storage_view(nd->view);
    uint64_t first = raft_mem_storage_first_index(nd->view);
    uint64_t last = raft_mem_storage_last_index(nd->view);
    CHECK(last >= max_applied,
          "leader completeness: new leader %" PRIu64 " (term %" PRIu64 ") has last index %" PRIu64
          " below applied index %" PRIu64,
          nd->id, nd->term, last, max_applied);
    for (uint64_t i = first; i <= max_applied; i++) {
        uint64_t t = 0;
        CHECK(s.ops->term(s.data, i, &t) == 0, "term lookup");
        CHECK(t == arr_get(&applied_term, i),
              "leader completeness: leader %" PRIu64 " of term %" PRIu64 " has term %" PRIu64
              " at applied index %" PRIu64 " (applied: term %" PRIu64 ")",
              nd->id, nd->term, t, i, arr_get(&applied_term, i));
    }
}

static void apply_entry(node *nd, const raft_entry *e, bool *removed_self)
{
    CHECK(e->index == nd->applied + 1, "node %" PRIu64 " applies %" PRIu64 " after %" PRIu64,
          nd->id, e->index, nd->applied);
    nd->hash = mix(mix(nd->hash, e->index), payload_hash(e));
    nd->applied = e->index;
    uint64_t g = arr_get(&state_hash, e->index);
    if (g == 0) {
        arr_set(&state_hash, e->index, nd->hash);
        arr_set(&applied_term, e->index, e->term);
        if (e->index > max_applied)
            max_applied = e->index;
    } else {
        CHECK(g == nd->hash && arr_get(&applied_term, e->index) == e->term,
              "state machine safety: node %" PRIu64 " applied a different "
              "entry (term %" PRIu64 ") at index %" PRIu64,
              nd->id, e->term, e->index);
    }
    if (e->type == RAFT_ENTRY_CONF_CHANGE) {
        raft_conf_change cc;
        CHECK(raft_conf_change_decode(e->data->data, e->data->len, &cc) == 0, "bad conf change");
        int rc = raft_apply_conf_change(nd->r, &cc, &nd->conf);
        CHECK(rc == 0, "apply conf change: %s", raft_strerror(rc));
        tracef("node %" PRIu64 " applies conf change %d of %" PRIu64 " at %" PRIu64, nd->id,
               (int)cc.type, cc.node_id, e->index);
        if (cc.type == RAFT_CC_REMOVE_NODE && cc.node_id == nd->id)
            *removed_self = true;
        raft_buf_unref(cc.context);
    } else if (e->data && e->data->len == 8) {
        uint64_t v;
        memcpy(&v, e->data->data, 8);
        if ((v >> 48) == nd->id) {
            if (S.n_acks == S.cap_acks) {
                S.cap_acks = S.cap_acks ? S.cap_acks * 2 : 256;
                S.acks = realloc(S.acks, S.cap_acks * sizeof(acked));
            }
            S.acks[S.n_acks].index = e->index;
            S.acks[S.n_acks].value = v;
            S.n_acks++;
        }
    }
    CHECK(raft_applied(nd->r, e->index) == 0, "raft_applied");
    S.applied_total++;
}

static void maybe_snapshot(node *nd)
{
    if (nd->applied < nd->last_snap + 40 || !chance(300000))
        return;
    uint64_t last_snap = raft_mem_storage_first_index(nd->ms) - 1;
    if (nd->applied <= last_snap || nd->applied > raft_mem_storage_last_index(nd->ms))
        return;
    raft_buf *b = state_blob(nd);
    int rc = raft_mem_storage_create_snapshot(nd->ms, nd->applied, &nd->conf, b);
    raft_buf_unref(b);
    CHECK(rc == 0, "create snapshot: %s", raft_strerror(rc));
    uint64_t keep = rndn(20);
    if (nd->applied > keep + last_snap + 1)
        raft_mem_storage_compact(nd->ms, nd->applied - keep);
    nd->last_snap = nd->applied;
    S.snapshots++;
    tracef("node %" PRIu64 " snapshots at %" PRIu64, nd->id, nd->applied);
}

static void stop_removed(node *nd)
{
    tracef("node %" PRIu64 " removed: stops", nd->id);
    crash_node(nd);
    nd->removed = true;
}

static void check_read(node *nd, const raft_read_state *rs)
{
    for (size_t i = 0; i < S.n_reads; i++) {
        if (S.reads[i].ctx != rs->ctx)
            continue;
        CHECK(rs->index >= S.reads[i].min_index,
              "linearizable read: node %" PRIu64 " got read index %" PRIu64 " but index %" PRIu64
              " was applied before the read was issued",
              nd->id, rs->index, S.reads[i].min_index);
        tracef("node %" PRIu64 " read %" PRIx64 " at %" PRIu64, nd->id, rs->ctx, rs->index);
        S.reads_done++; /* kept: a duplicated request is answered twice */
        return;
    }
    fail("read state for unknown ctx %" PRIx64, rs->ctx);
}

/* Takes every Ready of nd: messages out, writes queued for fsync,
 * committed entries applied. */
static void drive(node *nd)
{
    bool removed_self = false;
    while (nd->up && raft_has_ready(nd->r)) {
        struct raft_ready rd;
        int rc = raft_ready(nd->r, &rd);
        CHECK(rc == 0, "raft_ready: %s", raft_strerror(rc));
        if (rd.has_hard_state) {
            CHECK(rd.hard_state.term >= nd->term, "term went backwards");
            nd->term = rd.hard_state.term;
        }
        if (rd.has_soft_state) {
            nd->state = rd.soft_state.state;
            if (nd->state == RAFT_LEADER) {
                raft_status st;
                raft_status_get(nd->r, &st);
                nd->term = st.term;
                uint64_t other = arr_get(&leader_of_term, st.term);
                CHECK(other == 0 || other == nd->id,
                      "election safety: nodes %" PRIu64 " and %" PRIu64 " both lead term %" PRIu64,
                      other, nd->id, st.term);
                arr_set(&leader_of_term, st.term, nd->id);
                S.elections++;
                tracef("node %" PRIu64 " leads term %" PRIu64, nd->id, st.term);
            }
        }
        for (size_t i = 0; i < rd.n_msgs; i++)
            net_send(&rd.msgs[i]);
        if (rd.snapshot) {
            CHECK(raft_mem_storage_apply_snapshot(nd->view, rd.snapshot) == 0, "view snapshot");
        }
        if (rd.n_entries)
            check_log_entries(nd, rd.entries, rd.n_entries);
        if (rd.has_hard_state || rd.snapshot || rd.n_entries || rd.n_msgs_after_persist) {
            pending_write *pw = calloc(1, sizeof(*pw));
            pw->has_hs = rd.has_hard_state;
            pw->hs = rd.hard_state;
            pw->snap = rd.snapshot;
            rd.snapshot = NULL;
            pw->ents = rd.entries;
            pw->n_ents = rd.n_entries;
            rd.entries = NULL;
            rd.n_entries = 0;
            pw->after = calloc(rd.n_msgs_after_persist + 1, sizeof(raft_msg));
            for (size_t i = 0; i < rd.n_msgs_after_persist; i++) {
                pw->after[i] = rd.msgs_after_persist[i];
                memset(&rd.msgs_after_persist[i], 0, sizeof(raft_msg));
            }
            pw->n_after = rd.n_msgs_after_persist;
            if (nd->tail)
                nd->tail->next = pw;
            else
                nd->head = pw;
            nd->tail = pw;
        }
        for (size_t i = 0; i < rd.n_read_states; i++)
            check_read(nd, &rd.read_states[i]);
        if (rd.n_committed) {
            /* a leader's own term entries are applied once committed */
            for (size_t i = 0; i < rd.n_committed; i++)
                apply_entry(nd, &rd.committed[i], &removed_self);
        }
        raft_advance(nd->r, &rd);
        if (nd->state == RAFT_LEADER && rd.has_soft_state)
            check_leader_completeness(nd);
        if (removed_self) {
            stop_removed(nd);
            return;
        }
    }
    maybe_snapshot(nd);
}

/* The disk finishes the oldest writes of nd. */
static void fsync_some(node *nd, bool all)
{
    size_t n = all ? SIZE_MAX : 1 + rndn(3);
    while (nd->up && nd->head && n--) {
        pending_write *pw = nd->head;
        nd->head = pw->next;
        if (!nd->head)
            nd->tail = NULL;
        uint64_t pi = 0, pt = 0;
        if (pw->snap) {
            CHECK(raft_mem_storage_apply_snapshot(nd->ms, pw->snap) == 0, "apply snapshot");
            pi = pw->snap->meta.index;
            pt = pw->snap->meta.term;
        }
        if (pw->n_ents) {
            CHECK(raft_mem_storage_append(nd->ms, pw->ents, pw->n_ents) == 0, "append");
            pi = pw->ents[pw->n_ents - 1].index;
            pt = pw->ents[pw->n_ents - 1].term;
        }
        if (pw->has_hs)
            raft_mem_storage_set_hard_state(nd->ms, &pw->hs);
        if (pi)
            CHECK(raft_persisted(nd->r, pi, pt) == 0, "persisted");
        for (size_t i = 0; i < pw->n_after; i++)
            net_send(&pw->after[i]);
        if (pw->snap) {
            install_state_from(nd, pw->snap);
            nd->last_snap = nd->applied;
            tracef("node %" PRIu64 " installs snapshot %" PRIu64, nd->id, nd->applied);
            CHECK(raft_applied(nd->r, nd->applied) == 0, "applied snap");
        }
        raft_snapshot_free(pw->snap);
        raft_entries_free(pw->ents, pw->n_ents);
        free(pw->after);
        free(pw);
        drive(nd);
    }
}

static bool linked(uint64_t a, uint64_t b)
{
    return !S.partitioned || S.group[a] == S.group[b];
}

/* Delivers due messages in random order; returns how many. */
static size_t deliver_due(void)
{
    size_t delivered = 0;
    for (;;) {
        size_t due = 0;
        for (size_t i = 0; i < S.n_net; i++)
            due += S.net[i].at <= now;
        if (!due)
            break;
        /* pick a random due message each time: reordering */
        size_t k = rndn(due);
        size_t idx = 0;
        for (size_t i = 0; i < S.n_net; i++) {
            if (S.net[i].at <= now) {
                if (k == 0) {
                    idx = i;
                    break;
                }
                k--;
            }
        }
        raft_msg m = S.net[idx].m;
        S.net[idx] = S.net[--S.n_net];
        node *to = m.to <= MAX_IDS ? &S.nodes[m.to] : NULL;
        bool drop = !to || !to->up || !linked(m.from, m.to) || chance(S.drop_ppm);
        if (m.type == RAFT_MSG_SNAP) {
            node *from = &S.nodes[m.from];
            if (from->up && from->state == RAFT_LEADER)
                raft_report_snapshot(from->r, m.to, drop);
        }
        if (!drop) {
            raft_step(to->r, &m);
            drive(to);
        }
        raft_msg_free(&m);
        if (++delivered > 200000)
            fail("message storm");
    }
    return delivered;
}

static node *find_leader(void)
{
    node *best = NULL;
    for (uint64_t id = 1; id <= MAX_IDS; id++) {
        node *nd = &S.nodes[id];
        if (nd->up && nd->state == RAFT_LEADER && (!best || nd->term > best->term))
            best = nd;
    }
    return best;
}

static size_t conf_voters(const raft_conf_state *cs)
{
    return cs->n_voters;
}

/* Proposes a fresh value; the Ready is taken at once or later (then
 * several proposals share a batch). */
static void propose_value(node *nd, bool drive_now)
{
    uint64_t v = (nd->id << 48) | ++nd->seq;
    int rc = raft_propose(nd->r, &v, 8);
    S.proposals++;
    tracef("propose %" PRIx64 " at %" PRIu64 ": %s", v, nd->id, rc ? raft_strerror(rc) : "ok");
    if (drive_now)
        drive(nd);
}

static void chaos_conf_change(void)
{
    node *l = find_leader();
    if (!l)
        return;
    raft_conf_change cc = {0};
    const raft_conf_state *cs = &l->conf;
    uint64_t r = rndn(4);
    if (r == 0 && S.next_id <= MAX_IDS && conf_voters(cs) < 5) {
        cc.type = chance(500000) ? RAFT_CC_ADD_LEARNER : RAFT_CC_ADD_NODE;
        cc.node_id = S.next_id;
    } else if (r == 1 && cs->n_learners) {
        cc.type = RAFT_CC_ADD_NODE; /* promote */
        cc.node_id = cs->learners[rndn(cs->n_learners)];
    } else if (r == 2 && conf_voters(cs) > 3) {
        cc.type = RAFT_CC_REMOVE_NODE;
        cc.node_id = cs->voters[rndn(cs->n_voters)];
    } else if (r == 3 && cs->n_learners) {
        cc.type = RAFT_CC_REMOVE_NODE;
        cc.node_id = cs->learners[rndn(cs->n_learners)];
    } else {
        return;
    }
    cc.id = rnd();
    int rc = raft_propose_conf_change(l->r, &cc);
    tracef("leader %" PRIu64 " proposes conf change %d of %" PRIu64 ": %s", l->id, (int)cc.type,
           cc.node_id, rc ? raft_strerror(rc) : "ok");
    if (rc == 0) {
        tot_confs++;
        if (cc.node_id == S.next_id) {
            node *nd = &S.nodes[S.next_id++];
            nd->id = cc.node_id;
            nd->boot = S.nodes[1].boot;
            if (S.join_current)
                nd->boot = l->conf;
            start_node(nd, true);
        }
    }
    drive(l);
}

static void chaos_partition(void)
{
    S.partitioned = true;
    for (uint64_t id = 1; id <= MAX_IDS; id++)
        S.group[id] = (int)rndn(2);
    tracef("partition");
}

static void tick_all(void)
{
    for (uint64_t id = 1; id <= MAX_IDS; id++) {
        node *nd = &S.nodes[id];
        if (!nd->up)
            continue;
        if (chance(20000))
            continue; /* clock skew: a missed tick */
        raft_tick(nd->r);
        drive(nd);
    }
}

static void disks(bool all)
{
    for (uint64_t id = 1; id <= MAX_IDS; id++) {
        node *nd = &S.nodes[id];
        if (nd->up && nd->head && (all || chance(600000)))
            fsync_some(nd, all);
    }
}

static void chaos_step(void)
{
    /* clients */
    int props = (int)rndn(4);
    for (int i = 0; i < props; i++) {
        node *nd = &S.nodes[1 + rndn(MAX_IDS)];
        if (nd->up)
            propose_value(nd, chance(500000));
    }
    if (chance(S.leader_crash_ppm)) {
        node *l = find_leader();
        if (l) {
            crash_node(l);
            S.restarts++;
        }
    }
    if (chance(S.crash_ppm)) {
        for (uint64_t id = 1; id <= MAX_IDS; id++) {
            node *nd = &S.nodes[id];
            if (nd->up && chance(400000)) {
                crash_node(nd);
                S.restarts++;
            }
        }
    }
    if (chance(40000)) {
        node *nd = &S.nodes[1 + rndn(MAX_IDS)];
        if (nd->started && !nd->up && !nd->removed)
            start_node(nd, false), drive(nd);
    }
    if (chance(S.partition_ppm))
        chaos_partition();
    if (chance(15000) && S.partitioned) {
        S.partitioned = false;
        tracef("heal");
    }
    if (chance(6000))
        chaos_conf_change();
    if (chance(4000)) {
        node *l = find_leader();
        if (l && l->conf.n_voters) {
            uint64_t to = l->conf.voters[rndn(l->conf.n_voters)];
            raft_transfer_leader(l->r, to);
            tracef("leader %" PRIu64 " transfers to %" PRIu64, l->id, to);
            tot_transfers++;
            drive(l);
        }
    }
    int reads = chance(100000) ? (int)rndn(5) : 0;
    for (int i = 0; i < reads && S.n_reads < 4096; i++) {
        node *nd = &S.nodes[1 + rndn(MAX_IDS)];
        if (!nd->up)
            continue;
        uint64_t ctx = rnd() | 1;
        S.reads[S.n_reads].ctx = ctx;
        S.reads[S.n_reads].min_index = max_applied;
        S.n_reads++;
        int rc = raft_read_index(nd->r, ctx);
        tracef("read %" PRIx64 " at %" PRIu64 ": %s", ctx, nd->id, rc ? raft_strerror(rc) : "ok");
        drive(nd);
    }
}

static void dump_nodes(void)
{
    for (uint64_t id = 1; id <= MAX_IDS; id++) {
        node *nd = &S.nodes[id];
        if (!nd->up)
            continue;
        raft_status st;
        raft_status_get(nd->r, &st);
        fprintf(stderr,
                "node %" PRIu64 ": %s term %" PRIu64 " lead %" PRIu64 " commit %" PRIu64
                " applied %" PRIu64 "/%" PRIu64 " first %" PRIu64 " last %" PRIu64
                " persisted %" PRIu64 " voters %zu learners %zu\n",
                id, raft_state_name(st.state), st.term, st.lead, st.commit, st.applied, nd->applied,
                st.first_index, st.last_index, st.persisted, st.conf.n_voters, st.conf.n_learners);
        for (size_t i = 0; i < st.n_peers; i++)
            fprintf(stderr,
                    "   peer %" PRIu64 " match %" PRIu64 " next %" PRIu64 " %s%s inflight %zu\n",
                    st.peers[i].id, st.peers[i].match, st.peers[i].next,
                    raft_progress_state_name(st.peers[i].state),
                    st.peers[i].recent_active ? " active" : "", st.peers[i].inflight);
    }
}

static void reset_sim(void)
{
    for (uint64_t id = 0; id <= MAX_IDS; id++) {
        node *nd = &S.nodes[id];
        free_pending(nd);
        raft_free(nd->r);
        raft_mem_storage_free(nd->ms);
        raft_mem_storage_free(nd->view);
    }
    for (size_t i = 0; i < S.n_net; i++)
        raft_msg_free(&S.net[i].m);
    free(S.net);
    free(S.acks);
    memset(&S, 0, sizeof(S));
    free(leader_of_term.v);
    free(state_hash.v);
    free(applied_term.v);
    memset(&leader_of_term, 0, sizeof(u64arr));
    memset(&state_hash, 0, sizeof(u64arr));
    memset(&applied_term, 0, sizeof(u64arr));
    max_applied = 0;
    free(reg);
    reg = NULL;
    reg_cap = reg_len = 0;
    trace_n = 0;
}

/* After healing: every member of the leader's configuration is up and has
 * applied a fresh proposal. */
static bool converged(uint64_t *probe_index)
{
    node *l = find_leader();
    if (!l)
        return false;
    raft_status st;
    raft_status_get(l->r, &st);
    if (*probe_index == 0 || arr_get(&applied_term, *probe_index) == 0)
        return false;
    uint64_t target = st.commit;
    if (target < *probe_index)
        return false;
    for (size_t i = 0; i < st.conf.n_voters + st.conf.n_learners; i++) {
        uint64_t id =
            i < st.conf.n_voters ? st.conf.voters[i] : st.conf.learners[i - st.conf.n_voters];
        node *nd = &S.nodes[id];
        if (!nd->up || nd->applied < target)
            return false;
    }
    return true;
}

static void run_seed(uint64_t seed, uint64_t ticks)
{
    reset_sim();
    cur_seed = seed;
    rng_state = seed * 0x2545F4914F6CDD1Dull + 7;
    S.n_bootstrap = seed % 2 ? 5 : 3;
    for (size_t i = 0; i < S.n_bootstrap; i++)
        S.bootstrap[i] = i + 1;
    S.next_id = S.n_bootstrap + 1;
    S.pre_vote = rndn(4) != 0;
    S.check_quorum = rndn(4) != 0;
    S.drop_ppm = (uint32_t)rndn(150000);
    S.dup_ppm = (uint32_t)rndn(50000);
    S.max_delay = rndn(4);
    static const uint64_t msg_sizes[] = {8, 24, 64, 1024};
    static const size_t inflights[] = {1, 2, 4, 16};
    S.max_msg = msg_sizes[rndn(4)];
    S.max_inflight = inflights[rndn(4)];
    S.crash_ppm = (uint32_t)rndn(8000);
    S.leader_crash_ppm = (uint32_t)rndn(15000);
    S.partition_ppm = (uint32_t)rndn(15000);
    tracef("seed %" PRIu64 ": %zu members, pre_vote=%d check_quorum=%d "
           "drop=%u dup=%u delay<=%" PRIu64,
           seed, S.n_bootstrap, S.pre_vote, S.check_quorum, S.drop_ppm, S.dup_ppm, S.max_delay);
    S.join_current = rndn(2);
    for (uint64_t id = 1; id <= S.n_bootstrap; id++) {
        S.nodes[id].id = id;
        S.nodes[id].boot.n_voters = S.n_bootstrap;
        for (size_t i = 0; i < S.n_bootstrap; i++)
            S.nodes[id].boot.voters[i] = S.bootstrap[i];
        start_node(&S.nodes[id], true);
    }
    for (now = 1; now <= ticks; now++) {
        chaos_step();
        tick_all();
        deliver_due();
        disks(false);
    }
    /* heal: reliable network, everyone (still a member) back up */
    tracef("heal all");
    S.partitioned = false;
    S.drop_ppm = 0;
    S.dup_ppm = 0;
    S.max_delay = 1;
    for (uint64_t id = 1; id <= MAX_IDS; id++) {
        node *nd = &S.nodes[id];
        if (nd->started && !nd->up && !nd->removed) {
            start_node(nd, false);
            drive(nd);
        }
    }
    uint64_t probe_index = 0, probe_value = 0, probe_term = 0;
    uint64_t healed = now;
    /* The bound grows with the backlog left by the chaos phase: with one
     * message in flight of one entry, a follower catches up by about one
     * entry per round trip. */
    uint64_t backlog = 0;
    for (uint64_t id = 1; id <= MAX_IDS; id++) {
        node *nd = &S.nodes[id];
        if (nd->up) {
            uint64_t last = raft_mem_storage_last_index(nd->view);
            if (last > max_applied && last - max_applied > backlog)
                backlog = last - max_applied;
        }
    }
    uint64_t bound = LIVENESS_TICKS + 4 * backlog;
    tracef("liveness bound: %" PRIu64 " ticks (backlog %" PRIu64 ")", bound, backlog);
    for (;; now++) {
        CHECK(now - healed <= bound, "liveness: no convergence %" PRIu64 " ticks after healing",
              bound);
        node *l = find_leader();
        if (l && (probe_term != l->term)) {
            /* (re)propose a probe to the current leader */
            uint64_t v = (l->id << 48) | ++l->seq;
            if (raft_propose(l->r, &v, 8) == 0) {
                probe_term = l->term;
                probe_value = v;
                probe_index = 0;
            }
            drive(l);
        }
        if (probe_value && probe_index == 0) {
            for (size_t i = 0; i < S.n_acks; i++)
                if (S.acks[i].value == probe_value)
                    probe_index = S.acks[i].index;
        }
        if (converged(&probe_index))
            break;
        if ((now - healed) % 50 == 0 && l) {
            raft_status st;
            raft_status_get(l->r, &st);
            tracef("liveness: leader %" PRIu64 " term %" PRIu64 " commit %" PRIu64 " last %" PRIu64
                   " probe %" PRIu64,
                   l->id, st.term, st.commit, st.last_index, probe_index);
        }
        tick_all();
        deliver_due();
        disks(true);
    }
    /* no acknowledged proposal lost: every member applied it, the same */
    node *l = find_leader();
    raft_status st;
    raft_status_get(l->r, &st);
    for (size_t i = 0; i < S.n_acks; i++) {
        for (size_t k = 0; k < st.conf.n_voters; k++) {
            node *nd = &S.nodes[st.conf.voters[k]];
            CHECK(nd->applied >= S.acks[i].index,
                  "acknowledged proposal %" PRIx64 " at %" PRIu64 " not applied by %" PRIu64,
                  S.acks[i].value, S.acks[i].index, nd->id);
        }
    }
    tot_applied += S.applied_total;
    tot_reads += S.reads_done;
    tot_elections += S.elections;
    tot_snapshots += S.snapshots;
    tot_restarts += S.restarts;
}

int main(int argc, char **argv)
{
    uint64_t first = 1, seeds = 200, ticks = 1000;
    bool single = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seeds") && i + 1 < argc)
            seeds = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--first") && i + 1 < argc)
            first = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            first = strtoull(argv[++i], NULL, 10);
            seeds = 1;
            single = true;
        } else if (!strcmp(argv[i], "--ticks") && i + 1 < argc)
            ticks = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--trace"))
            trace_all = true;
        else {
            fprintf(stderr, "usage: sim [--seeds N] [--first S] [--seed S] "
                            "[--ticks T] [--trace]\n");
            return 2;
        }
    }
    const char *env = getenv("RAFT_SIM_SEEDS");
    if (env && !single)
        seeds = strtoull(env, NULL, 10);
    for (uint64_t s = first; s < first + seeds; s++)
        run_seed(s, ticks);
    reset_sim();
    printf("sim: %" PRIu64 " seeds from %" PRIu64 " ok: %" PRIu64 " entries applied, %" PRIu64
           " elections, %" PRIu64 " snapshots, %" PRIu64 " crashes, %" PRIu64
           " conf changes, %" PRIu64 " transfers, %" PRIu64 " reads\n",
           seeds, first, tot_applied, tot_elections, tot_snapshots, tot_restarts, tot_confs,
           tot_transfers, tot_reads);
    return 0;
}
