/* watch/deliver.c - turning a watcher's events into WatchResponses: filters,
 * prev_kv, the split at revision boundaries, fragments (etcd 3.4's
 * watcher.send and v3rpc sendFragments), and the shared event copies that
 * victims park.
 */
#include "watch/internal.h"

#include "common/mem.h"

#include <stddef.h>
#include <string.h>

/* ---- shared event copies -------------------------------------------------------- */

wevent *wevent_new(watch_store *ws, const mvcc_event *ev)
{
    size_t kl = ev->kv.key_len, vl = ev->kv.value_len;
    size_t bytes = sizeof(wevent) + kl + vl + 1;
    wevent *e = metcd_malloc(bytes);
    if (!e)
        return NULL;
    e->refs = 1;
    e->bytes = bytes;
    e->ev = *ev;
    uint8_t *p = e->data;
    if (kl)
        memcpy(p, ev->kv.key, kl);
    e->ev.kv.key = p;
    p += kl;
    if (vl)
        memcpy(p, ev->kv.value, vl);
    e->ev.kv.value = p;
    e->ev.kv.raw = NULL;
    e->ev.kv.raw_len = 0;
    ws->pending_bytes += bytes;
    return e;
}

void wevent_ref(watch_store *ws, wevent *e)
{
    (void)ws;
    e->refs++;
}

void wevent_unref(watch_store *ws, wevent *e)
{
    if (e && --e->refs == 0) {
        ws->pending_bytes -= e->bytes;
        metcd_free(e);
    }
}

int batch_push(watch_store *ws, watcher *w, wevent *e)
{
    if (w->nev == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4;
        wevent **a = metcd_realloc(w->evs, cap * sizeof(*a));
        if (!a)
            return WATCH_ENOMEM;
        w->evs = a;
        w->cap = cap;
    }
    wevent_ref(ws, e);
    w->evs[w->nev++] = e;
    return 0;
}

void batch_clear(watch_store *ws, watcher *w)
{
    for (size_t i = 0; i < w->nev; i++)
        wevent_unref(ws, w->evs[i]);
    metcd_free(w->evs);
    w->evs = NULL;
    w->nev = w->cap = w->next = 0;
    w->nrevs = 0;
    w->bbytes = 0;
    w->last_rev = 0;
}

void batch_truncate_from(watch_store *ws, watcher *w, int64_t rev)
{
    while (w->nev > w->next && w->evs[w->nev - 1]->ev.rev.main >= rev) {
        wevent *e = w->evs[--w->nev];
        w->bbytes -= e->bytes;
        wevent_unref(ws, e);
    }
    w->nrevs = 0;
    w->last_rev = 0;
    for (size_t i = w->next; i < w->nev; i++) {
        if (w->evs[i]->ev.rev.main != w->last_rev)
            w->nrevs++;
        w->last_rev = w->evs[i]->ev.rev.main;
    }
}

/* ---- sizes (protobuf encoding of etcdserverpb.WatchResponse) ----------------------- */

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t int_field(int64_t v)
{
    return v ? 1 + varint_len((uint64_t)v) : 0;
}

static size_t bytes_field(size_t len)
{
    return len ? 1 + varint_len(len) + len : 0;
}

static size_t msg_field(size_t len)
{
    return 1 + varint_len(len) + len;
}

static size_t kv_size(const mvcc_kv *kv)
{
    if (kv->raw)
        return kv->raw_len;
    return bytes_field(kv->key_len) + int_field(kv->create_revision) + int_field(kv->mod_revision) +
           int_field(kv->version) + bytes_field(kv->value_len) + int_field(kv->lease);
}

static size_t event_size(const watch_event *e)
{
    size_t n = (e->type ? 2 : 0) + msg_field(kv_size(e->kv));
    if (e->prev_kv)
        n += msg_field(kv_size(e->prev_kv));
    return n;
}

/* The header at its largest: 4 fields of 1 tag byte + 10 varint bytes. */
#define HEADER_MAX_BYTES (1 + 1 + 4 * 11)

static size_t base_size(const watch_response *r)
{
    return HEADER_MAX_BYTES + int_field(r->watch_id) + (r->created ? 2 : 0) +
           (r->canceled ? 2 : 0) + int_field(r->compact_revision) +
           bytes_field(r->cancel_reason ? strlen(r->cancel_reason) : 0) + (r->fragment ? 2 : 0);
}

size_t watch_response_size(const watch_response *r)
{
    size_t n = base_size(r);
    for (size_t i = 0; i < r->nevents; i++)
        n += msg_field(event_size(&r->events[i]));
    return n;
}

/* ---- encoding ----------------------------------------------------------------------- */

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* A varint field, left out at zero (proto3). */
static uint8_t *put_int(uint8_t *p, uint32_t field, uint64_t v)
{
    if (!v)
        return p;
    *p++ = (uint8_t)(field << 3);
    return put_varint(p, v);
}

static uint8_t *put_bytes(uint8_t *p, uint32_t field, const void *data, size_t len)
{
    if (!len)
        return p;
    *p++ = (uint8_t)(field << 3 | 2);
    p = put_varint(p, len);
    memcpy(p, data, len);
    return p + len;
}

static uint8_t *put_kv(uint8_t *p, uint32_t field, const mvcc_kv *kv)
{
    *p++ = (uint8_t)(field << 3 | 2);
    p = put_varint(p, kv_size(kv));
    if (kv->raw) {
        memcpy(p, kv->raw, kv->raw_len);
        return p + kv->raw_len;
    }
    p = put_bytes(p, 1, kv->key, kv->key_len);
    p = put_int(p, 2, (uint64_t)kv->create_revision);
    p = put_int(p, 3, (uint64_t)kv->mod_revision);
    p = put_int(p, 4, (uint64_t)kv->version);
    p = put_bytes(p, 5, kv->value, kv->value_len);
    return put_int(p, 6, (uint64_t)kv->lease);
}

size_t watch_response_encode(const watch_response *r, const watch_header *h, uint8_t *buf)
{
    uint8_t hdr[HEADER_MAX_BYTES], *q = hdr;
    q = put_int(q, 1, h->cluster_id);
    q = put_int(q, 2, h->member_id);
    q = put_int(q, 3, (uint64_t)r->revision);
    q = put_int(q, 4, h->raft_term);
    uint8_t *p = buf;
    *p++ = 1 << 3 | 2; /* header: always present */
    p = put_varint(p, (size_t)(q - hdr));
    memcpy(p, hdr, (size_t)(q - hdr));
    p += q - hdr;
    p = put_int(p, 2, (uint64_t)r->watch_id);
    p = put_int(p, 3, r->created);
    p = put_int(p, 4, r->canceled);
    p = put_int(p, 5, (uint64_t)r->compact_revision);
    if (r->cancel_reason)
        p = put_bytes(p, 6, r->cancel_reason, strlen(r->cancel_reason));
    p = put_int(p, 7, r->fragment);
    for (size_t i = 0; i < r->nevents; i++) {
        const watch_event *e = &r->events[i];
        *p++ = 11 << 3 | 2;
        p = put_varint(p, event_size(e));
        p = put_int(p, 1, e->type == MVCC_EVENT_DELETE ? 1 : 0);
        p = put_kv(p, 2, e->kv);
        if (e->prev_kv)
            p = put_kv(p, 3, e->prev_kv);
    }
    return (size_t)(p - buf);
}

/* ---- sending ------------------------------------------------------------------------ */

/* Bytes of deliver_events' scratch kept on the stack. */
#define SMALL_DELIVERY 1024

int stream_send(watch_stream *s, const watch_response *r)
{
    if (s->dead)
        return WATCH_ECLOSED;
    if (s->blocked)
        return WATCH_SEND_FULL;
    int rc = s->send(s->arg, r);
    if (rc == 0) {
        s->ws->responses_sent++;
        s->ws->events_sent += r->nevents;
        return 0;
    }
    if (rc == WATCH_SEND_FULL) {
        s->blocked = true;
        store_want_retry(s->ws, s);
        return WATCH_SEND_FULL;
    }
    s->dead = true;
    return WATCH_ECLOSED;
}

bool watcher_wants(const watcher *w, const mvcc_event *ev)
{
    if (ev->rev.main < w->min_rev)
        return false;
    if (ev->type == MVCC_EVENT_PUT ? w->no_put : w->no_delete)
        return false;
    return true;
}

/* etcd's isCreateEvent: prev_kv is not looked up for creations. */
static bool is_create(const mvcc_event *ev)
{
    return ev->type == MVCC_EVENT_PUT && ev->kv.create_revision == ev->kv.mod_revision;
}

static int send_part(watcher *w, int64_t rev, const watch_event *evs, size_t n, bool fragment)
{
    watch_response r = {
        .revision = rev,
        .watch_id = w->id,
        .cancel_reason = "",
        .fragment = fragment,
        .events = evs,
        .nevents = n,
    };
    int rc = stream_send(w->stream, &r);
    if (rc == 0 && n)
        w->progress_due = false;
    return rc;
}

size_t deliver_events(watch_store *ws, watcher *w, const mvcc_event *const *evs, size_t n,
                      int64_t rev, int *rcp)
{
    watch_stream *s = w->stream;
    *rcp = 0;
    if (!n)
        return 0;
    if (s->dead) {
        *rcp = WATCH_ECLOSED;
        return n;
    }
    if (s->blocked) {
        *rcp = WATCH_SEND_FULL;
        return 0;
    }
    /* One block: response events, kv copies, prev_kv results, sizes. */
    size_t per = sizeof(watch_event) + sizeof(mvcc_kv) + sizeof(size_t) +
                 (w->prev_kv ? sizeof(mvcc_result) : 0);
    /* the common case (a few events) needs no allocation */
    union {
        max_align_t align;
        uint8_t bytes[SMALL_DELIVERY];
    } small;
    bool heap = n > SMALL_DELIVERY / per;
    uint8_t *mem = heap ? metcd_calloc(n, per) : memset(small.bytes, 0, n * per);
    if (!mem) {
        *rcp = WATCH_ENOMEM;
        store_want_retry(ws, s);
        return 0;
    }
    watch_event *wev = (watch_event *)mem;
    mvcc_kv *kvs = (mvcc_kv *)(wev + n);
    size_t *fsz = (size_t *)(kvs + n);
    mvcc_result *res = w->prev_kv ? (mvcc_result *)(fsz + n) : NULL;

    for (size_t i = 0; i < n; i++) {
        kvs[i] = evs[i]->kv;
        if (evs[i]->type == MVCC_EVENT_DELETE) {
            /* the stored tombstone does not encode mod_revision */
            kvs[i].raw = NULL;
            kvs[i].raw_len = 0;
        }
        wev[i].type = evs[i]->type;
        wev[i].kv = &kvs[i];
        wev[i].prev_kv = NULL;
        if (res && !is_create(evs[i])) {
            mvcc_range_req q = {
                .key = evs[i]->kv.key,
                .key_len = evs[i]->kv.key_len,
                .revision = evs[i]->rev.main - 1,
            };
            /* etcd: a failed lookup (compacted) just leaves prev_kv out;
             * out of memory is retried like a full transport */
            int prc = q.revision > 0 ? mvcc_range(ws->kv, &q, &res[i]) : MVCC_ECOMPACTED;
            if (prc == MVCC_ENOMEM) {
                for (size_t k = 0; k <= i; k++)
                    mvcc_result_free(&res[k]);
                if (heap)
                    metcd_free(mem);
                *rcp = WATCH_ENOMEM;
                store_want_retry(ws, s);
                return 0;
            }
            if (prc == 0 && res[i].resp.u.range.nkvs)
                wev[i].prev_kv = &res[i].resp.u.range.kvs[0];
        }
        fsz[i] = msg_field(event_size(&wev[i]));
    }

    watch_response probe = {.watch_id = w->id};
    size_t base = base_size(&probe);
    size_t i = 0;
    int rc = 0;
    if (w->fragment) {
        size_t total = base;
        for (size_t k = 0; k < n; k++)
            total += fsz[k];
        if (total < ws->opt.max_request_bytes || n < 2) {
            rc = send_part(w, rev, wev, n, false);
            if (rc == 0)
                i = n;
        } else {
            while (i < n) {
                size_t j = i, size = base + 2;
                while (j < n) {
                    size += fsz[j];
                    j++;
                    if (j - i > 1 && size >= ws->opt.max_request_bytes) {
                        j--;
                        break;
                    }
                }
                rc = send_part(w, rev, wev + i, j - i, j < n);
                if (rc)
                    break;
                i = j;
            }
        }
    } else {
        while (i < n) {
            size_t j = i, size = base;
            while (j < n) {
                size_t k = j, gsz = 0;
                while (k < n && evs[k]->rev.main == evs[j]->rev.main)
                    gsz += fsz[k++];
                if (j > i && size + gsz > ws->opt.max_response_bytes)
                    break;
                size += gsz;
                j = k;
            }
            rc = send_part(w, rev, wev + i, j - i, false);
            if (rc)
                break;
            i = j;
        }
    }
    if (rc == WATCH_ECLOSED)
        i = n;
    if (res)
        for (size_t k = 0; k < n; k++)
            mvcc_result_free(&res[k]);
    if (heap)
        metcd_free(mem);
    *rcp = rc;
    return i;
}
