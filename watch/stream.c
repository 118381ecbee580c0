/* watch/stream.c - watch streams (etcd 3.4's watchStream plus the request
 * side of v3rpc's serverWatchStream): watch ids, create / cancel / progress
 * and their control responses, queued in order while the transport is full.
 */
#include "watch/internal.h"

#include "common/mem.h"

#include <stddef.h>
#include <string.h>

/* ---- id table ------------------------------------------------------------------------- */

static size_t id_bucket(const watch_stream *s, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 32) & (s->nids_buckets - 1);
}

static watcher *id_find(const watch_stream *s, int64_t id)
{
    if (!s->nids_buckets)
        return NULL;
    for (watcher *w = s->ids[id_bucket(s, id)]; w; w = w->id_next)
        if (w->id == id)
            return w;
    return NULL;
}

/* Makes room for one more id (the table doubles when full). */
static int id_reserve(watch_stream *s)
{
    if (s->nids_buckets && s->nwatchers < s->nids_buckets)
        return 0;
    size_t nb = s->nids_buckets ? s->nids_buckets * 2 : 8;
    watcher **b = metcd_calloc(nb, sizeof(*b));
    if (!b)
        return s->nids_buckets ? 0 : WATCH_ENOMEM; /* longer chains are fine */
    watcher **old = s->ids;
    size_t on = s->nids_buckets;
    s->ids = b;
    s->nids_buckets = nb;
    for (size_t i = 0; i < on; i++) {
        watcher *w = old[i];
        while (w) {
            watcher *nx = w->id_next;
            size_t k = id_bucket(s, w->id);
            w->id_next = b[k];
            b[k] = w;
            w = nx;
        }
    }
    metcd_free(old);
    return 0;
}

static void id_insert(watch_stream *s, watcher *w)
{
    size_t k = id_bucket(s, w->id);
    w->id_next = s->ids[k];
    s->ids[k] = w;
    s->nwatchers++;
}

static void id_remove(watch_stream *s, watcher *w)
{
    watcher **pp = &s->ids[id_bucket(s, w->id)];
    while (*pp != w)
        pp = &(*pp)->id_next;
    *pp = w->id_next;
    w->id_next = NULL;
    s->nwatchers--;
}

/* ---- control responses ----------------------------------------------------------------- */

static int ctrl_reserve(watch_stream *s)
{
    if (s->ctrl_n < s->ctrl_cap)
        return 0;
    size_t nc = s->ctrl_cap ? s->ctrl_cap * 2 : 4;
    wctrl *q = metcd_malloc(nc * sizeof(*q));
    if (!q)
        return WATCH_ENOMEM;
    for (size_t i = 0; i < s->ctrl_n; i++)
        q[i] = s->ctrl[(s->ctrl_head + i) % s->ctrl_cap];
    metcd_free(s->ctrl);
    s->ctrl = q;
    s->ctrl_cap = nc;
    s->ctrl_head = 0;
    return 0;
}

/* Sends a control response, or queues it behind earlier ones (room was
 * reserved by the caller). */
static int ctrl_send(watch_stream *s, const wctrl *c)
{
    if (s->dead)
        return WATCH_ECLOSED;
    if (!s->ctrl_n && !s->blocked) {
        watch_response r = {
            .revision = c->revision,
            .watch_id = c->watch_id,
            .created = c->created,
            .canceled = c->canceled,
            .cancel_reason = c->reason ? c->reason : "",
        };
        int rc = stream_send(s, &r);
        if (rc != WATCH_SEND_FULL)
            return rc;
    }
    s->ctrl[(s->ctrl_head + s->ctrl_n) % s->ctrl_cap] = *c;
    s->ctrl_n++;
    store_want_retry(s->ws, s);
    return 0;
}

size_t watch_stream_queued(const watch_stream *s)
{
    return s ? s->ctrl_n : 0;
}

/* ---- streams ---------------------------------------------------------------------------- */

int watch_stream_new(watch_stream **out, watch_store *ws, watch_send_fn send, void *arg)
{
    if (!out || !ws || !send)
        return WATCH_EINVALID;
    watch_stream *s = metcd_calloc(1, sizeof(*s));
    if (!s)
        return WATCH_ENOMEM;
    s->ws = ws;
    s->send = send;
    s->arg = arg;
    s->next = ws->streams;
    if (ws->streams)
        ws->streams->prev = s;
    ws->streams = s;
    ws->nstreams++;
    *out = s;
    return 0;
}

static void watcher_free(watcher *w)
{
    metcd_free(w->evs);
    metcd_free(w);
}

/* Frees every watcher and the queues of s (the store stays linked). */
void stream_release_all(watch_stream *s)
{
    watch_store *ws = s->ws;
    for (size_t b = 0; b < s->nids_buckets; b++) {
        watcher *w = s->ids[b];
        while (w) {
            watcher *nx = w->id_next;
            store_detach(ws, w);
            ws->nwatchers--;
            watcher_free(w);
            w = nx;
        }
        s->ids[b] = NULL;
    }
    metcd_free(s->ids);
    s->ids = NULL;
    s->nids_buckets = 0;
    s->nwatchers = 0;
    metcd_free(s->ctrl);
    s->ctrl = NULL;
    s->ctrl_n = s->ctrl_cap = s->ctrl_head = 0;
}

void watch_stream_free(watch_stream *s)
{
    if (!s)
        return;
    if (s->ws) {
        stream_release_all(s);
        store_stream_unlink(s->ws, s);
    }
    metcd_free(s);
}

static int refuse(watch_stream *s, int64_t rev, const char *reason)
{
    wctrl c = {.revision = rev,
               .watch_id = WATCH_INVALID_ID,
               .created = true,
               .canceled = true,
               .reason = reason};
    return ctrl_send(s, &c);
}

int watch_stream_create(watch_stream *s, const watch_create *c)
{
    if (!s || !c)
        return WATCH_EINVALID;
    if (!s->ws)
        return WATCH_EINVALID;
    if (s->dead)
        return WATCH_ECLOSED;
    watch_store *ws = s->ws;
    if (ctrl_reserve(s))
        return WATCH_ENOMEM;
    int64_t wsrev = mvcc_current_rev(ws->kv);

    /* v3rpc's recvLoop normalisation: an empty key is "\0", the smallest
     * key; range_end "\0" means every key >= key. */
    static const uint8_t zero = 0;
    const uint8_t *key = c->key_len ? c->key : &zero;
    size_t key_len = c->key_len ? c->key_len : 1;
    bool single = c->range_end_len == 0;
    bool from_key = c->range_end_len == 1 && c->range_end[0] == 0;
    if (!single && !from_key && watch_bytes_cmp(key, key_len, c->range_end, c->range_end_len) >= 0)
        return refuse(s, wsrev, WATCH_REASON_EMPTY_RANGE);

    int64_t id = c->watch_id;
    if (id == 0) {
        while (id_find(s, s->next_id))
            s->next_id++;
        id = s->next_id++;
    } else if (id_find(s, id)) {
        return refuse(s, wsrev, WATCH_REASON_DUPLICATE_ID);
    }
    if (id_reserve(s))
        return WATCH_ENOMEM;

    size_t end_len = single || from_key ? 0 : c->range_end_len;
    if (key_len > UINT32_MAX || end_len > UINT32_MAX)
        return WATCH_EINVALID;
    watcher *w = metcd_calloc(1, offsetof(watcher, key) + key_len + end_len);
    if (!w)
        return WATCH_ENOMEM;
    memcpy(w->key, key, key_len);
    w->key_len = (uint32_t)key_len;
    if (end_len) {
        w->end = w->key + key_len;
        memcpy(w->end, c->range_end, end_len);
        w->end_len = (uint32_t)end_len;
    }
    w->stream = s;
    w->id = id;
    w->single = single;
    w->from_key = from_key;
    w->no_put = c->no_put;
    w->no_delete = c->no_delete;
    w->prev_kv = c->prev_kv;
    w->fragment = c->fragment;
    w->progress = c->progress_notify;
    w->progress_due = true;

    /* etcd's watchableStore.watch: start 0 (current + 1 after v3rpc) or a
     * future revision is synced, anything older replays history. */
    int64_t start = c->start_revision ? c->start_revision : wsrev + 1;
    bool synced = start > wsrev;
    w->min_rev = start;
    if (synced && w->min_rev < wsrev + 1)
        w->min_rev = wsrev + 1;
    if (wgroup_add(synced ? &ws->synced : &ws->unsynced, w))
        goto err_watcher;
    w->state = synced ? W_SYNCED : W_UNSYNCED;
    id_insert(s, w);
    ws->nwatchers++;

    wctrl cr = {.revision = wsrev, .watch_id = id, .created = true};
    int rc = ctrl_send(s, &cr);
    if (!synced)
        store_arm_sync(ws, true);
    return rc;

err_watcher:
    watcher_free(w);
    return WATCH_ENOMEM;
}

int watch_stream_cancel(watch_stream *s, int64_t watch_id)
{
    if (!s || !s->ws)
        return WATCH_EINVALID;
    watcher *w = id_find(s, watch_id);
    if (!w)
        return WATCH_ENOT_FOUND;
    if (s->dead)
        return WATCH_ECLOSED;
    if (ctrl_reserve(s))
        return WATCH_ENOMEM;
    watch_store *ws = s->ws;
    store_detach(ws, w);
    id_remove(s, w);
    ws->nwatchers--;
    watcher_free(w);
    wctrl c = {.revision = mvcc_current_rev(ws->kv), .watch_id = watch_id, .canceled = true};
    return ctrl_send(s, &c);
}

int watch_stream_progress(watch_stream *s)
{
    if (!s || !s->ws)
        return WATCH_EINVALID;
    if (s->dead)
        return WATCH_ECLOSED;
    if (ctrl_reserve(s))
        return WATCH_ENOMEM;
    wctrl c = {.revision = mvcc_current_rev(s->ws->kv), .watch_id = WATCH_INVALID_ID};
    return ctrl_send(s, &c);
}
