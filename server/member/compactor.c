/* server/member/compactor.c - auto compaction, as etcd 3.4's v3compactor.
 *
 * periodic (retention R): every min(R, 1h)/10 the current revision is
 * sampled (at most R/that + 1 samples kept); once R has passed since the
 * start (later: min(R, 1h) since the last success) the store is compacted
 * to the oldest sample, the revision of R ago.
 * revision (retention N): every 5 minutes, compact to current - N when that
 * is positive and new.
 * Only the leader compacts; the compaction goes through raft like a
 * client's Compact, so every member compacts at the same revision.
 */
#include "server/member/internal.h"

#include "common/mem.h"

#include <event2/event.h>
#include <string.h>

#define HOUR_MS (3600LL * 1000)
#define REVISION_INTERVAL_MS (5LL * 60 * 1000)
#define MAX_SAMPLES 64

struct compactor {
    member *m;
    struct event *ev;
    int mode;
    int64_t retention;    /* ms (periodic) or revisions */
    int64_t interval_ms;  /* sampling / check interval */
    int64_t compact_every_ms;
    int64_t samples[MAX_SAMPLES];
    size_t nsamples, max_samples;
    int64_t last_success_ms;
    int64_t base_ms; /* time to wait since last success */
    int64_t prev_rev;
};

static void propose_compaction(member *m, int64_t rev, const char *mode, int64_t retention)
{
    Memberpb__Request req = MEMBERPB__REQUEST__INIT;
    Etcdserverpb__CompactionRequest c = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
    c.revision = rev;
    req.op_case = MEMBERPB__REQUEST__OP_COMPACTION;
    req.compaction = &c;
    member_logf(m, MLOG_NOTICE, "compactor",
                "Starting auto-compaction at revision %lld (retention: %lld %s)", (long long)rev,
                (long long)retention, mode);
    int rc = raftnode_propose(m, &req);
    if (rc)
        member_logf(m, MLOG_WARN, "compactor", "Failed auto-compaction at revision %lld (%s)",
                    (long long)rev, raft_strerror(rc));
}

static void on_periodic(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct compactor *c = arg;
    member *m = c->m;
    if (c->nsamples == c->max_samples) {
        memmove(c->samples, c->samples + 1, (c->nsamples - 1) * sizeof(c->samples[0]));
        c->nsamples--;
    }
    c->samples[c->nsamples++] = mvcc_current_rev(m->kv);
    if (m->state != RAFT_LEADER)
        return; /* paused */
    int64_t now = member_now_ms();
    if (now - c->last_success_ms < c->base_ms)
        return;
    c->base_ms = c->compact_every_ms;
    int64_t rev = c->samples[0];
    if (rev <= mvcc_compact_rev(m->kv)) {
        c->last_success_ms = now; /* already compacted there: etcd counts it */
        return;
    }
    propose_compaction(m, rev, "ms", c->retention);
    c->last_success_ms = now;
}

static void on_revision(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct compactor *c = arg;
    member *m = c->m;
    if (m->state != RAFT_LEADER)
        return;
    int64_t rev = mvcc_current_rev(m->kv) - c->retention;
    if (rev <= 0 || rev == c->prev_rev)
        return;
    if (rev > mvcc_compact_rev(m->kv))
        propose_compaction(m, rev, "revisions", c->retention);
    c->prev_rev = rev;
}

int compactor_start(member *m)
{
    if (m->opt.auto_compaction_mode == AUTO_COMPACT_NONE || m->opt.auto_compaction_retention <= 0)
        return 0;
    struct compactor *c = metcd_calloc(1, sizeof(*c));
    if (!c)
        return MERR_INTERNAL;
    c->m = m;
    c->mode = m->opt.auto_compaction_mode;
    c->retention = m->opt.auto_compaction_retention;
    event_callback_fn fn;
    if (c->mode == AUTO_COMPACT_PERIODIC) {
        int64_t itv = c->retention > HOUR_MS ? HOUR_MS : c->retention;
        c->interval_ms = itv / 10 > 0 ? itv / 10 : 1;
        c->compact_every_ms = itv;
        c->max_samples = (size_t)(c->retention / c->interval_ms) + 1;
        if (c->max_samples > MAX_SAMPLES)
            c->max_samples = MAX_SAMPLES;
        c->base_ms = c->retention;
        c->last_success_ms = member_now_ms();
        fn = on_periodic;
        c->samples[c->nsamples++] = mvcc_current_rev(m->kv);
    } else {
        c->interval_ms = REVISION_INTERVAL_MS;
        fn = on_revision;
    }
    c->ev = event_new(m->base, -1, EV_PERSIST, fn, c);
    if (!c->ev) {
        metcd_free(c);
        return MERR_INTERNAL;
    }
    struct timeval tv = {(time_t)(c->interval_ms / 1000), (suseconds_t)((c->interval_ms % 1000) * 1000)};
    evtimer_add(c->ev, &tv);
    m->compactor = c;
    member_logf(m, MLOG_INFO, "etcdserver", "auto compaction: mode %s, retention %lld%s",
                c->mode == AUTO_COMPACT_PERIODIC ? "periodic" : "revision",
                (long long)c->retention, c->mode == AUTO_COMPACT_PERIODIC ? "ms" : " revisions");
    return 0;
}

void compactor_stop(member *m)
{
    struct compactor *c = m->compactor;
    if (!c)
        return;
    event_free(c->ev);
    metcd_free(c);
    m->compactor = NULL;
}
