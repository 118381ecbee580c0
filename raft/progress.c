/* raft/progress.c - the leader's view of each peer (Raft thesis 3.5, 4.2.1
 * and etcd's probe/replicate/snapshot flow control), the inflight window,
 * and quorum arithmetic over the voters (commit index, votes, read rounds,
 * CheckQuorum activity). */
#include "raft/raft_int.h"

#include "common/mem.h"

#include <assert.h>
#include <string.h>

/* ---- inflights: a ring of the last index of each unacknowledged MsgApp -- */

void ins_add(raft_inflights *in, uint64_t index)
{
    assert(in->count < in->size);
    size_t next = (in->start + in->count) % in->size;
    in->buf[next] = index;
    in->count++;
}

void ins_free_le(raft_inflights *in, uint64_t index)
{
    while (in->count > 0 && in->buf[in->start] <= index) {
        in->start = (in->start + 1) % in->size;
        in->count--;
    }
    if (in->count == 0)
        in->start = 0;
}

void ins_free_first(raft_inflights *in)
{
    if (in->count > 0)
        ins_free_le(in, in->buf[in->start]);
}

bool ins_full(const raft_inflights *in)
{
    return in->count == in->size;
}

void ins_reset(raft_inflights *in)
{
    in->start = in->count = 0;
}

/* ---- progress state machine --------------------------------------------- */

void pr_reset(raft_progress *p, uint64_t next)
{
    p->match = 0;
    p->next = next;
    p->state = RAFT_PROGRESS_PROBE;
    p->pending_snapshot = 0;
    p->probe_sent = false;
    p->recent_active = false;
    p->read_ack = 0;
    ins_reset(&p->ins);
}

static void reset_state(raft_progress *p, raft_progress_state s)
{
    p->probe_sent = false;
    p->pending_snapshot = 0;
    p->state = s;
    ins_reset(&p->ins);
}

void pr_become_probe(raft_progress *p)
{
    /* Coming back from a snapshot, resume right after it. */
    if (p->state == RAFT_PROGRESS_SNAPSHOT) {
        uint64_t ps = p->pending_snapshot;
        reset_state(p, RAFT_PROGRESS_PROBE);
        p->next = (p->match + 1 > ps + 1) ? p->match + 1 : ps + 1;
    } else {
        reset_state(p, RAFT_PROGRESS_PROBE);
        p->next = p->match + 1;
    }
}

void pr_become_replicate(raft_progress *p)
{
    reset_state(p, RAFT_PROGRESS_REPLICATE);
    p->next = p->match + 1;
}

void pr_become_snapshot(raft_progress *p, uint64_t snapi)
{
    reset_state(p, RAFT_PROGRESS_SNAPSHOT);
    p->pending_snapshot = snapi;
}

/* Records an acknowledgement of index n; false if it was stale. */
bool pr_maybe_update(raft_progress *p, uint64_t n)
{
    bool updated = false;
    if (p->match < n) {
        p->match = n;
        updated = true;
        p->probe_sent = false;
    }
    if (p->next < n + 1)
        p->next = n + 1;
    return updated;
}

void pr_optimistic_update(raft_progress *p, uint64_t n)
{
    p->next = n + 1;
}

/* A rejection of the MsgApp at index `rejected`; match_hint is the index to
 * retry from (fast backtracking). False if the rejection is stale. */
bool pr_maybe_decr_to(raft_progress *p, uint64_t rejected, uint64_t match_hint)
{
    if (p->state == RAFT_PROGRESS_REPLICATE) {
        if (rejected <= p->match)
            return false;
        p->next = p->match + 1;
        return true;
    }
    if (p->next - 1 != rejected)
        return false;
    uint64_t n = match_hint + 1;
    if (n > rejected)
        n = rejected;
    /* strictly below the rejected probe: the retry loop always ends */
    p->next = n > 1 ? n : 1;
    p->probe_sent = false;
    return true;
}

bool pr_is_paused(const raft_progress *p)
{
    switch (p->state) {
    case RAFT_PROGRESS_PROBE:
        return p->probe_sent;
    case RAFT_PROGRESS_REPLICATE:
        return ins_full(&p->ins);
    case RAFT_PROGRESS_SNAPSHOT:
        return true;
    }
    return true;
}

/* ---- tracker -------------------------------------------------------------- */

void tracker_init(raft_tracker *t, size_t max_inflight)
{
    memset(t, 0, sizeof(*t));
    t->max_inflight = max_inflight;
}

void tracker_free(raft_tracker *t)
{
    for (size_t i = 0; i < t->n; i++)
        metcd_free(t->prs[i].ins.buf);
    t->n = 0;
}

raft_progress *tracker_find(raft_tracker *t, uint64_t id)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->prs[i].id == id)
            return &t->prs[i];
    return NULL;
}

const raft_progress *tracker_find_c(const raft_tracker *t, uint64_t id)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->prs[i].id == id)
            return &t->prs[i];
    return NULL;
}

int tracker_add(raft_tracker *t, uint64_t id, bool learner, uint64_t next)
{
    if (id == RAFT_NONE)
        return RAFT_EINVAL;
    if (tracker_find(t, id))
        return RAFT_EINVAL;
    if (t->n == RAFT_MAX_NODES)
        return RAFT_ETOOMANY;
    uint64_t *buf = metcd_malloc(t->max_inflight * sizeof(uint64_t));
    if (!buf)
        return RAFT_ENOMEM;
    raft_progress *p = &t->prs[t->n++];
    memset(p, 0, sizeof(*p));
    p->id = id;
    p->learner = learner;
    p->ins.buf = buf;
    p->ins.size = t->max_inflight;
    pr_reset(p, next);
    return 0;
}

void tracker_remove(raft_tracker *t, uint64_t id)
{
    raft_progress *p = tracker_find(t, id);
    if (!p)
        return;
    metcd_free(p->ins.buf);
    size_t i = (size_t)(p - t->prs);
    memmove(&t->prs[i], &t->prs[i + 1], (t->n - i - 1) * sizeof(*p));
    t->n--;
}

size_t tracker_voters(const raft_tracker *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        n += !t->prs[i].learner;
    return n;
}

void tracker_conf_state(const raft_tracker *t, raft_conf_state *cs)
{
    memset(cs, 0, sizeof(*cs));
    for (size_t i = 0; i < t->n; i++) {
        if (t->prs[i].learner)
            cs->learners[cs->n_learners++] = t->prs[i].id;
        else
            cs->voters[cs->n_voters++] = t->prs[i].id;
    }
}

/* The k-th largest value among voters, k = quorum size. */
static uint64_t quorum_value(const raft_tracker *t, bool read_ack)
{
    uint64_t v[RAFT_MAX_NODES];
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->prs[i].learner)
            continue;
        uint64_t x = read_ack ? t->prs[i].read_ack : t->prs[i].match;
        /* insertion sort, descending */
        size_t j = n++;
        while (j > 0 && v[j - 1] < x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
    if (n == 0)
        return 0;
    return v[n / 2];
}

uint64_t tracker_committed(const raft_tracker *t)
{
    return quorum_value(t, false);
}

uint64_t tracker_read_quorum(const raft_tracker *t)
{
    return quorum_value(t, true);
}

bool tracker_quorum_active(const raft_tracker *t, uint64_t self)
{
    size_t act = 0, voters = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->prs[i].learner)
            continue;
        voters++;
        if (t->prs[i].id == self || t->prs[i].recent_active)
            act++;
    }
    return act >= voters / 2 + 1;
}

void tracker_reset_votes(raft_tracker *t)
{
    for (size_t i = 0; i < t->n; i++)
        t->prs[i].vote = 0;
}

void tracker_record_vote(raft_tracker *t, uint64_t id, bool granted)
{
    raft_progress *p = tracker_find(t, id);
    if (p && p->vote == 0)
        p->vote = granted ? 1 : -1;
}

raft_vote_result tracker_tally(const raft_tracker *t, size_t *granted, size_t *rejected)
{
    size_t g = 0, r = 0, voters = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->prs[i].learner)
            continue;
        voters++;
        if (t->prs[i].vote > 0)
            g++;
        else if (t->prs[i].vote < 0)
            r++;
    }
    if (granted)
        *granted = g;
    if (rejected)
        *rejected = r;
    size_t q = voters / 2 + 1;
    if (voters == 0)
        return VOTE_LOST;
    if (g >= q)
        return VOTE_WON;
    if (r > voters - q)
        return VOTE_LOST;
    return VOTE_PENDING;
}
