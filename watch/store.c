/* watch/store.c - the watchable store (etcd 3.4's watchableStore): the
 * synced group fed by mvcc's observer (notify), the unsynced group replayed
 * from history in bounded passes (syncWatchers), the victims retried on a
 * short timer (moveVictims), progress notifications, and the swap of the
 * underlying kv after a snapshot install (Restore).
 */
#include "watch/internal.h"

#include "common/mem.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_SYNC_MS 100
#define DEFAULT_VICTIM_MS 10
#define DEFAULT_PER_SYNC 512
#define DEFAULT_BATCH_REVS 1000
#define DEFAULT_PROGRESS_MS 600000
#define DEFAULT_MAX_REQUEST ((size_t)3 * 1024 * 1024 / 2)
#define GRPC_OVERHEAD ((size_t)512 * 1024)
#define DEFAULT_PASS_BYTES ((size_t)64 * 1024 * 1024)
#define DEFAULT_PASS_EVENTS 100000

/* ---- timers --------------------------------------------------------------------------- */

static void ms_to_tv(uint64_t ms, struct timeval *tv)
{
    tv->tv_sec = (time_t)(ms / 1000);
    tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void store_arm_sync(watch_store *ws, bool now)
{
    if (!ws->sync_ev)
        return;
    struct timeval tv;
    if (now) {
        ms_to_tv(0, &tv);
        event_add(ws->sync_ev, &tv);
    } else if (!event_pending(ws->sync_ev, EV_TIMEOUT, NULL)) {
        ms_to_tv(ws->opt.sync_interval_ms, &tv);
        event_add(ws->sync_ev, &tv);
    }
}

static void on_sync_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    watch_store *ws = arg;
    size_t before = ws->unsynced.n;
    uint64_t t0 = now_us();
    int left = watch_store_sync_pass(ws);
    if (left <= 0 && ws->unsynced.n == 0)
        return;
    /* etcd's syncWatchersLoop: run again after the pass's own duration while
     * the backlog shrinks, else after the interval. */
    struct timeval tv;
    if (left > 0 && (size_t)left < before)
        ms_to_tv((now_us() - t0) / 1000, &tv);
    else
        ms_to_tv(ws->opt.sync_interval_ms, &tv);
    event_add(ws->sync_ev, &tv);
}

static void on_victim_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    watch_store *ws = arg;
    watch_store_retry_victims(ws);
    if (ws->retry && !event_pending(ws->victim_ev, EV_TIMEOUT, NULL)) {
        struct timeval tv;
        ms_to_tv(ws->opt.victim_interval_ms, &tv);
        event_add(ws->victim_ev, &tv);
    }
}

static void on_progress_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    watch_store_progress_tick(arg);
}

void store_want_retry(watch_store *ws, watch_stream *s)
{
    if (!s->on_retry) {
        s->on_retry = true;
        s->rprev = NULL;
        s->rnext = ws->retry;
        if (ws->retry)
            ws->retry->rprev = s;
        ws->retry = s;
    }
    if (ws->victim_ev && !event_pending(ws->victim_ev, EV_TIMEOUT, NULL)) {
        struct timeval tv;
        ms_to_tv(ws->opt.victim_interval_ms, &tv);
        event_add(ws->victim_ev, &tv);
    }
}

static void retry_unlink(watch_store *ws, watch_stream *s)
{
    if (!s->on_retry)
        return;
    if (s->rprev)
        s->rprev->rnext = s->rnext;
    else
        ws->retry = s->rnext;
    if (s->rnext)
        s->rnext->rprev = s->rprev;
    s->rprev = s->rnext = NULL;
    s->on_retry = false;
}

void store_stream_unlink(watch_store *ws, watch_stream *s)
{
    retry_unlink(ws, s);
    if (s->prev)
        s->prev->next = s->next;
    else
        ws->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    ws->nstreams--;
}

/* ---- placing watchers ------------------------------------------------------------------- */

static void victim_link(watch_stream *s, watcher *w)
{
    w->g_next = NULL;
    w->g_prev = s->vtail;
    if (s->vtail)
        s->vtail->g_next = w;
    else
        s->vhead = w;
    s->vtail = w;
    s->nvictims++;
}

static void victim_unlink(watch_stream *s, watcher *w)
{
    if (w->g_prev)
        w->g_prev->g_next = w->g_next;
    else
        s->vhead = w->g_next;
    if (w->g_next)
        w->g_next->g_prev = w->g_prev;
    else
        s->vtail = w->g_prev;
    w->g_prev = w->g_next = NULL;
    s->nvictims--;
}

void store_make_victim(watch_store *ws, watcher *w)
{
    w->state = W_VICTIM;
    victim_link(w->stream, w);
    ws->nvictims++;
    store_want_retry(ws, w->stream);
}

void store_place(watch_store *ws, watcher *w)
{
    int64_t cur = mvcc_current_rev(ws->kv);
    if (w->min_rev > cur) {
        if (wgroup_add(&ws->synced, w) == 0) {
            w->state = W_SYNCED;
            return;
        }
    } else if (wgroup_add(&ws->unsynced, w) == 0) {
        w->state = W_UNSYNCED;
        store_arm_sync(ws, false);
        return;
    }
    store_make_victim(ws, w); /* no memory for the index: retried later */
}

void store_detach(watch_store *ws, watcher *w)
{
    switch (w->state) {
    case W_SYNCED:
        wgroup_remove(&ws->synced, w);
        break;
    case W_UNSYNCED:
        wgroup_remove(&ws->unsynced, w);
        break;
    case W_VICTIM:
        victim_unlink(w->stream, w);
        ws->nvictims--;
        break;
    case W_COMPACTED:
        ws->ncompacted--;
        break;
    default:
        break;
    }
    w->state = W_NONE;
    batch_clear(ws, w);
}

/* ---- create / free ------------------------------------------------------------------- */

int watch_store_new(watch_store **out, mvcc_store *kv, struct event_base *base,
                    const watch_options *opt)
{
    if (!out || !kv)
        return WATCH_EINVALID;
    watch_store *ws = metcd_calloc(1, sizeof(*ws));
    if (!ws)
        return WATCH_ENOMEM;
    if (opt)
        ws->opt = *opt;
    watch_options *o = &ws->opt;
    if (!o->sync_interval_ms)
        o->sync_interval_ms = DEFAULT_SYNC_MS;
    if (!o->victim_interval_ms)
        o->victim_interval_ms = DEFAULT_VICTIM_MS;
    if (!o->max_watchers_per_sync)
        o->max_watchers_per_sync = DEFAULT_PER_SYNC;
    if (!o->max_batch_revs)
        o->max_batch_revs = DEFAULT_BATCH_REVS;
    if (!o->progress_notify_interval_ms)
        o->progress_notify_interval_ms = DEFAULT_PROGRESS_MS;
    if (!o->max_request_bytes)
        o->max_request_bytes = DEFAULT_MAX_REQUEST;
    if (!o->max_response_bytes)
        o->max_response_bytes = o->max_request_bytes + GRPC_OVERHEAD;
    if (!o->max_pass_bytes)
        o->max_pass_bytes = DEFAULT_PASS_BYTES;
    if (!o->max_pass_events)
        o->max_pass_events = DEFAULT_PASS_EVENTS;
    ws->kv = kv;
    ws->base = base;
    wgroup_init(&ws->synced);
    wgroup_init(&ws->unsynced);
    if (base) {
        ws->sync_ev = event_new(base, -1, 0, on_sync_timer, ws);
        if (!ws->sync_ev)
            goto err_events;
        ws->victim_ev = event_new(base, -1, 0, on_victim_timer, ws);
        if (!ws->victim_ev)
            goto err_events;
        ws->progress_ev = event_new(base, -1, EV_PERSIST, on_progress_timer, ws);
        if (!ws->progress_ev)
            goto err_events;
        struct timeval tv;
        ms_to_tv(o->progress_notify_interval_ms, &tv);
        if (event_add(ws->progress_ev, &tv))
            goto err_events;
    }
    mvcc_set_observer(kv, store_on_write, ws);
    *out = ws;
    return 0;

err_events:
    if (ws->progress_ev)
        event_free(ws->progress_ev);
    if (ws->victim_ev)
        event_free(ws->victim_ev);
    if (ws->sync_ev)
        event_free(ws->sync_ev);
    metcd_free(ws);
    return WATCH_ENOMEM;
}

void watch_store_free(watch_store *ws)
{
    if (!ws)
        return;
    mvcc_set_observer(ws->kv, NULL, NULL);
    while (ws->streams) {
        watch_stream *s = ws->streams;
        stream_release_all(s);
        store_stream_unlink(ws, s);
        s->ws = NULL;
    }
    if (ws->progress_ev)
        event_free(ws->progress_ev);
    if (ws->victim_ev)
        event_free(ws->victim_ev);
    if (ws->sync_ev)
        event_free(ws->sync_ev);
    wgroup_clear(&ws->synced);
    wgroup_clear(&ws->unsynced);
    metcd_free(ws->pairs);
    metcd_free(ws->evcache);
    metcd_free(ws->evptrs);
    metcd_free(ws);
}

void watch_store_set_kv(watch_store *ws, mvcc_store *kv)
{
    /* The old kv may already be closed: it is not touched. */
    ws->kv = kv;
    mvcc_set_observer(kv, store_on_write, ws);
    /* etcd's Restore: every synced watcher catches up from the new store;
     * the pass keeps a min_rev beyond the new current revision. */
    while (ws->synced.head) {
        watcher *w = ws->synced.head;
        wgroup_remove(&ws->synced, w);
        w->state = W_NONE;
        if (wgroup_add(&ws->unsynced, w) == 0)
            w->state = W_UNSYNCED;
        else
            store_make_victim(ws, w);
    }
    store_arm_sync(ws, true);
}

void watch_store_stats(const watch_store *ws, watch_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->streams = ws->nstreams;
    out->watchers = ws->nwatchers;
    out->synced = ws->synced.n;
    out->unsynced = ws->unsynced.n;
    out->victims = ws->nvictims;
    out->compacted = ws->ncompacted;
    for (const watch_stream *s = ws->streams; s; s = s->next)
        for (const watcher *w = s->vhead; w; w = w->g_next)
            out->pending_events += w->nev - w->next;
    out->pending_bytes = ws->pending_bytes;
    out->events_sent = ws->events_sent;
    out->responses_sent = ws->responses_sent;
}

/* ---- scratch arrays ------------------------------------------------------------------ */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (*cap >= need)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *np = metcd_realloc(*p, c * elem);
    if (!np)
        return WATCH_ENOMEM;
    *p = np;
    *cap = c;
    return 0;
}

/* Pointers to the unsent events of w's batch, in ws->evptrs. */
static int batch_ptrs(watch_store *ws, watcher *w)
{
    size_t n = w->nev - w->next;
    if (grow((void **)&ws->evptrs, &ws->cap_evptrs, n, sizeof(*ws->evptrs)))
        return WATCH_ENOMEM;
    for (size_t i = 0; i < n; i++)
        ws->evptrs[i] = &w->evs[w->next + i]->ev;
    return 0;
}

/* ---- notify: the synced group ---------------------------------------------------------- */

struct notify_ctx {
    watch_store *ws;
    const mvcc_event *ev;
    uint32_t idx;
    uint32_t seq;
    bool sorted;
    watcher *lost;
};

static void collect_synced(void *arg, watcher *w)
{
    struct notify_ctx *c = arg;
    watch_store *ws = c->ws;
    if (!watcher_wants(w, c->ev))
        return;
    if (w->gen != ws->gen) {
        w->gen = ws->gen;
        w->seq = c->seq++;
        w->lost = false;
    }
    if (w->lost)
        return;
    if (grow((void **)&ws->pairs, &ws->cap_pairs, ws->npairs + 1, sizeof(*ws->pairs))) {
        w->lost = true;
        w->lnext = c->lost;
        c->lost = w;
        return;
    }
    if (ws->npairs && ws->pairs[ws->npairs - 1].seq > w->seq)
        c->sorted = false;
    ws->pairs[ws->npairs++] = (struct wpair){w, w->seq, c->idx};
}

static int pair_cmp(const void *a, const void *b)
{
    const struct wpair *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->ev < y->ev ? -1 : x->ev > y->ev;
}

/* Parks the unsent events evs[from..n) of one notify on w (now out of the
 * synced group). On allocation failure w re-reads the revision from history. */
static void park_notify(watch_store *ws, watcher *w, const mvcc_event *all, const struct wpair *run,
                        size_t n, size_t from, int64_t rev)
{
    w->batch_rev = rev;
    w->min_rev = rev + 1;
    for (size_t k = from; k < n; k++) {
        uint32_t i = run[k].ev;
        if (!ws->evcache[i] && !(ws->evcache[i] = wevent_new(ws, &all[i])))
            goto err;
        if (batch_push(ws, w, ws->evcache[i]))
            goto err;
    }
    store_make_victim(ws, w);
    return;
err:
    batch_clear(ws, w);
    w->min_rev = rev;
    store_make_victim(ws, w);
}

void store_on_write(void *arg, const mvcc_event *evs, size_t n, int64_t rev)
{
    watch_store *ws = arg;
    if (!ws->synced.n || !n)
        return;
    ws->gen++;
    ws->npairs = 0;
    struct notify_ctx c = {.ws = ws, .sorted = true};
    for (size_t i = 0; i < n; i++) {
        c.ev = &evs[i];
        c.idx = (uint32_t)i;
        wgroup_match(&ws->synced, evs[i].kv.key, evs[i].kv.key_len, collect_synced, &c);
    }
    if (!c.sorted)
        qsort(ws->pairs, ws->npairs, sizeof(*ws->pairs), pair_cmp);

    bool scratch = grow((void **)&ws->evptrs, &ws->cap_evptrs, n, sizeof(*ws->evptrs)) == 0 &&
                   grow((void **)&ws->evcache, &ws->cap_evcache, n, sizeof(*ws->evcache)) == 0;
    if (scratch)
        memset(ws->evcache, 0, n * sizeof(*ws->evcache));
    const mvcc_event **ptrs = ws->evptrs;
    size_t i = 0;
    while (i < ws->npairs) {
        watcher *w = ws->pairs[i].w;
        size_t j = i;
        while (j < ws->npairs && ws->pairs[j].w == w)
            j++;
        const struct wpair *run = &ws->pairs[i];
        size_t cnt = j - i;
        i = j;
        if (w->lost)
            continue;
        if (!scratch) {
            w->lost = true;
            w->lnext = c.lost;
            c.lost = w;
            continue;
        }
        for (size_t k = 0; k < cnt; k++)
            ptrs[k] = &evs[run[k].ev];
        int rc;
        size_t sent = deliver_events(ws, w, ptrs, cnt, rev, &rc);
        if (rc == 0 || rc == WATCH_ECLOSED) {
            w->min_rev = rev + 1;
            continue;
        }
        /* etcd's notify: the stream is full; the watcher leaves the synced
         * group with what did not go out. */
        wgroup_remove(&ws->synced, w);
        park_notify(ws, w, evs, run, cnt, sent, rev);
    }
    /* Watchers whose events could not even be listed re-read this revision. */
    for (watcher *w = c.lost; w; w = w->lnext) {
        if (w->state != W_SYNCED)
            continue;
        wgroup_remove(&ws->synced, w);
        w->min_rev = rev;
        store_make_victim(ws, w);
    }
    if (scratch)
        for (size_t k = 0; k < n; k++)
            wevent_unref(ws, ws->evcache[k]);
    ws->npairs = 0;
}

/* ---- the unsynced replay ---------------------------------------------------------------- */

struct sync_ctx {
    watch_store *ws;
    uint64_t gen;
    size_t active;
    size_t bytes, scanned;
    int64_t last_rev, stop_rev;
    const mvcc_event *ev;
    wevent *wev;
    bool oom;
};

static void collect_unsynced(void *arg, watcher *w)
{
    struct sync_ctx *c = arg;
    watch_store *ws = c->ws;
    const mvcc_event *ev = c->ev;
    if (w->gen != c->gen || w->full || c->oom || !watcher_wants(w, ev))
        return;
    bool new_rev = ev->rev.main != w->last_rev;
    if (new_rev &&
        (w->nrevs >= ws->opt.max_batch_revs || w->bbytes >= ws->opt.max_response_bytes)) {
        w->full = true;
        w->more_rev = ev->rev.main;
        c->active--;
        return;
    }
    if (!c->wev && !(c->wev = wevent_new(ws, ev))) {
        c->oom = true;
        return;
    }
    if (batch_push(ws, w, c->wev)) {
        batch_truncate_from(ws, w, ev->rev.main);
        w->full = true;
        w->more_rev = ev->rev.main;
        c->active--;
        return;
    }
    if (new_rev) {
        w->nrevs++;
        w->last_rev = ev->rev.main;
    }
    w->bbytes += c->wev->bytes;
    c->bytes += c->wev->bytes;
}

static int on_history(void *arg, const mvcc_event *ev)
{
    struct sync_ctx *c = arg;
    if (ev->rev.main != c->last_rev) {
        if (c->last_rev && (!c->active || c->bytes >= c->ws->opt.max_pass_bytes ||
                            c->scanned >= c->ws->opt.max_pass_events)) {
            c->stop_rev = ev->rev.main;
            return 0;
        }
        c->last_rev = ev->rev.main;
    }
    c->scanned++;
    c->ev = ev;
    c->wev = NULL;
    wgroup_match(&c->ws->unsynced, ev->kv.key, ev->kv.key_len, collect_unsynced, c);
    wevent_unref(c->ws, c->wev);
    c->wev = NULL;
    if (c->oom) {
        c->stop_rev = ev->rev.main;
        return 0;
    }
    return 1;
}

static void to_synced(watch_store *ws, watcher *w)
{
    wgroup_remove(&ws->unsynced, w);
    w->state = W_NONE;
    if (wgroup_add(&ws->synced, w) == 0)
        w->state = W_SYNCED;
    else
        store_make_victim(ws, w);
}

int watch_store_sync_pass(watch_store *ws)
{
    if (!ws->unsynced.n)
        return 0;
    int64_t cur = mvcc_current_rev(ws->kv);
    int64_t compact = mvcc_compact_rev(ws->kv);
    uint64_t gen = ++ws->gen;
    watcher *chosen = NULL, **tailp = &chosen;
    size_t nchosen = 0, examined = 0, total = ws->unsynced.n;
    int64_t minrev = INT64_MAX;
    watcher *w = ws->unsynced.head;
    while (w && examined < total && nchosen < ws->opt.max_watchers_per_sync) {
        watcher *nx = w->g_next;
        examined++;
        watch_stream *s = w->stream;
        if (s->blocked || s->dead) {
            w = nx;
            continue;
        }
        if (w->min_rev < compact) {
            /* etcd's chooseAll: cancelled with the compaction revision. */
            watch_response r = {
                .watch_id = w->id,
                .canceled = true,
                .compact_revision = compact,
                .cancel_reason = "",
            };
            int rc = stream_send(s, &r);
            if (rc == 0 || rc == WATCH_ECLOSED) {
                wgroup_remove(&ws->unsynced, w);
                w->state = W_COMPACTED;
                ws->ncompacted++;
            }
            w = nx;
            continue;
        }
        w->gen = gen;
        w->full = false;
        w->more_rev = 0;
        w->lnext = NULL;
        *tailp = w;
        tailp = &w->lnext;
        nchosen++;
        if (w->min_rev < minrev)
            minrev = w->min_rev;
        w = nx;
    }
    if (!nchosen)
        return (int)ws->unsynced.n;

    struct sync_ctx c = {.ws = ws, .gen = gen, .active = nchosen};
    int err = 0;
    if (minrev <= cur) {
        int rc = mvcc_history(ws->kv, minrev < 1 ? 1 : minrev, cur, 0, on_history, &c);
        if (rc < 0)
            err = WATCH_EBACKEND;
    }
    for (w = chosen; w;) {
        watcher *nx = w->lnext;
        w->gen = 0;
        if (err) {
            batch_clear(ws, w);
            w = nx;
            continue;
        }
        int64_t next_min = w->full ? w->more_rev : c.stop_rev ? c.stop_rev : cur + 1;
        if (c.stop_rev && !w->full)
            batch_truncate_from(ws, w, c.stop_rev);
        if (next_min < w->min_rev)
            next_min = w->min_rev;
        if (w->nev == 0) {
            batch_clear(ws, w);
            w->min_rev = next_min;
            if (next_min > cur)
                to_synced(ws, w);
            else
                wgroup_rotate(&ws->unsynced, w);
            w = nx;
            continue;
        }
        int rc = 0;
        size_t sent = 0;
        w->batch_rev = cur;
        if (batch_ptrs(ws, w) == 0)
            sent = deliver_events(ws, w, ws->evptrs, w->nev, cur, &rc);
        else
            rc = WATCH_ENOMEM;
        w->next += sent;
        w->min_rev = next_min;
        if (rc == 0 || rc == WATCH_ECLOSED) {
            batch_clear(ws, w);
            if (next_min > cur)
                to_synced(ws, w);
            else
                wgroup_rotate(&ws->unsynced, w);
        } else {
            wgroup_remove(&ws->unsynced, w);
            store_make_victim(ws, w);
        }
        w = nx;
    }
    if (err)
        return err;
    return (int)ws->unsynced.n;
}

/* ---- victims -------------------------------------------------------------------------- */

int stream_retry(watch_stream *s)
{
    watch_store *ws = s->ws;
    if (s->dead)
        return 0;
    s->blocked = false;
    while (s->ctrl_n) {
        wctrl *q = &s->ctrl[s->ctrl_head];
        watch_response r = {
            .revision = q->revision,
            .watch_id = q->watch_id,
            .created = q->created,
            .canceled = q->canceled,
            .cancel_reason = q->reason ? q->reason : "",
        };
        int rc = stream_send(s, &r);
        if (rc == WATCH_SEND_FULL)
            return 0;
        s->ctrl_head = (s->ctrl_head + 1) % s->ctrl_cap;
        s->ctrl_n--;
        if (rc)
            return 0;
    }
    int moved = 0;
    size_t budget = s->nvictims;
    while (s->vhead && budget--) {
        watcher *w = s->vhead;
        int rc = 0;
        if (w->nev > w->next) {
            if (batch_ptrs(ws, w)) {
                store_want_retry(ws, s);
                break;
            }
            size_t sent = deliver_events(ws, w, ws->evptrs, w->nev - w->next, w->batch_rev, &rc);
            w->next += sent;
        }
        if (rc != 0 && rc != WATCH_ECLOSED)
            break;
        victim_unlink(s, w);
        ws->nvictims--;
        w->state = W_NONE;
        batch_clear(ws, w);
        store_place(ws, w);
        moved++;
    }
    return moved;
}

static bool stream_idle(const watch_stream *s)
{
    return s->dead || (!s->ctrl_n && !s->vhead);
}

int watch_store_retry_victims(watch_store *ws)
{
    int moved = 0;
    watch_stream *s = ws->retry;
    while (s) {
        watch_stream *nx = s->rnext;
        moved += stream_retry(s);
        if (stream_idle(s))
            retry_unlink(ws, s);
        s = nx;
    }
    return moved;
}

void watch_stream_drained(watch_stream *s)
{
    if (!s || !s->ws)
        return;
    stream_retry(s);
    if (stream_idle(s))
        retry_unlink(s->ws, s);
}

/* ---- progress -------------------------------------------------------------------------- */

void watch_store_progress_tick(watch_store *ws)
{
    int64_t cur = mvcc_current_rev(ws->kv);
    for (watch_stream *s = ws->streams; s; s = s->next) {
        for (size_t b = 0; b < s->nids_buckets; b++) {
            for (watcher *w = s->ids[b]; w; w = w->id_next) {
                if (!w->progress)
                    continue;
                /* etcd: only a synced watcher reports progress; a failed
                 * send is dropped. */
                if (w->progress_due && w->state == W_SYNCED) {
                    watch_response r = {.revision = cur, .watch_id = w->id, .cancel_reason = ""};
                    stream_send(s, &r);
                }
                w->progress_due = true;
            }
        }
    }
}
