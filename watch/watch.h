/* watch/watch.h - the watchable store and watch streams (etcd 3.4's
 * mvcc/watchable_store.go, watcher_group.go, watcher.go and the semantics
 * of etcdserver/api/v3rpc/watch.go's serverWatchStream).
 *
 * A watcher is in exactly one of these states:
 *   synced    caught up: it gets the events of each write transaction
 *             straight from mvcc's observer;
 *   unsynced  it asked for an older revision: a timer (every 100 ms, sooner
 *             while the backlog shrinks) replays history from the backend
 *             for at most 512 watchers a pass;
 *   victim    its stream's transport said WATCH_SEND_FULL: the events that
 *             did not go out are parked on the watcher (shared, refcounted)
 *             and retried every 10 ms and on watch_stream_drained(); it then
 *             rejoins synced or unsynced;
 *   compacted its revision fell below the compaction point: it got a
 *             response with compact_revision and canceled, and stays known
 *             to its stream (for duplicate ids and a later cancel) until the
 *             client cancels it or the stream is freed.
 * Synced and unsynced watchers live in watcher groups: single-key watchers
 * in a hash table by key, range watchers in an interval tree, so an event
 * finds its k watchers in O(log n + k).
 *
 * Memory is bounded: a victim holds at most one batch (one write's events,
 * or one catch-up batch bounded by revisions and bytes), never more, because
 * a victim leaves the synced group and catches up from the backend later.
 * Control responses (created / canceled / progress) that meet a full
 * transport wait in a per-stream queue; watch_stream_queued() lets the
 * service stop reading requests while it is long.
 *
 * Threading: one store and its streams belong to one thread (the loop of
 * `base`). Send callbacks run on it, from inside watch_* calls, from the
 * mvcc write that produced the events, and from the store's timers.
 */
#ifndef METCD_WATCH_WATCH_H
#define METCD_WATCH_WATCH_H

#include "mvcc/mvcc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/* Error codes: reserved range -1750 .. -1799. */
enum watch_error {
    WATCH_OK = 0,
    WATCH_ENOMEM = -1750,     /* out of memory */
    WATCH_EINVALID = -1751,   /* bad argument (NULL store, bad options) */
    WATCH_EBACKEND = -1752,   /* mvcc failed while replaying history */
    WATCH_ENOT_FOUND = -1753, /* mvcc: watcher does not exist (cancel of an unknown id) */
    WATCH_ECLOSED = -1754,    /* the stream's transport reported it dead */
    WATCH_SEND_FULL = -1755,  /* send callback only: outbound queue full, nothing queued */
};

const char *watch_strerror(int code);

/* etcd's texts (mvcc/watcher.go, mvcc/kvstore.go), as cancel_reason. */
#define WATCH_REASON_EMPTY_RANGE "mvcc: watcher range is empty"
#define WATCH_REASON_DUPLICATE_ID "mvcc: duplicate watch ID provided on the WatchStream"

/* clientv3.InvalidWatchID: the watch_id of failed creates and of progress
 * responses that belong to no watcher. */
#define WATCH_INVALID_ID ((int64_t)-1)

typedef struct watch_options {
    uint32_t sync_interval_ms;      /* unsynced replay period; 0 = 100 */
    uint32_t victim_interval_ms;    /* victim retry period; 0 = 10 */
    uint32_t max_watchers_per_sync; /* 0 = 512 (etcd's maxWatchersPerSync) */
    uint32_t max_batch_revs;        /* revisions per catch-up batch; 0 = 1000 (watchBatchMaxRevs) */
    uint64_t progress_notify_interval_ms; /* 0 = 600000 (10 min, etcd's default) */
    /* Fragment threshold (etcd: --max-request-bytes, sendFragments); 0 = 1.5 MiB. */
    size_t max_request_bytes;
    /* A response of several revisions is split at revision boundaries to stay
     * under this (etcd's gRPC send limit: max_request_bytes + 512 KiB);
     * 0 = max_request_bytes + 512 KiB. One revision is never split unless
     * the watcher asked for fragments. */
    size_t max_response_bytes;
    /* Bytes of event copies one catch-up pass may hold; 0 = 64 MiB. The
     * history scan stops at a revision boundary past it. */
    size_t max_pass_bytes;
    /* History events one pass may read before it stops at the next revision
     * boundary (the loop thread is never held by one long replay; the rest
     * follows in the next pass); 0 = 100000. */
    uint32_t max_pass_events;
} watch_options;

typedef struct watch_store watch_store;
typedef struct watch_stream watch_stream;

/* Creates the watchable store over `kv` (borrowed; must outlive the store
 * or be replaced by watch_store_set_kv) and takes kv's observer slot.
 * Timers run on `base` (borrowed; NULL: no timers, the caller drives
 * watch_store_sync_pass / _retry_victims / _progress_tick itself). `opt`
 * may be NULL (all defaults); it is copied. Caller frees with watch_store_free. */
int watch_store_new(watch_store **out, mvcc_store *kv, struct event_base *base,
                    const watch_options *opt);
/* Frees every stream's watchers and queues, the timers, and releases the
 * observer slot. Streams must not be used afterwards except by
 * watch_stream_free (which then only frees the stream). NULL is a no-op. */
void watch_store_free(watch_store *ws);

/* After the member swaps its database (snapshot install; etcd's
 * watchableStore.Restore): `kv` (borrowed, as in watch_store_new) takes the
 * place of the old one, which is not touched any more (it may already be
 * closed; the caller clears its observer if it keeps it open). The
 * observer moves to `kv`; every synced watcher becomes unsynced and catches
 * up from the new store, or is cancelled with compact_revision if its
 * revision is gone. Victims keep their parked events. */
void watch_store_set_kv(watch_store *ws, mvcc_store *kv);

/* Counts, for metrics and tests. */
typedef struct watch_stats {
    size_t streams, watchers;
    size_t synced, unsynced, victims, compacted;
    size_t pending_events; /* events parked on victims */
    size_t pending_bytes;  /* bytes of parked event copies (shared ones once) */
    uint64_t events_sent;  /* events handed to send callbacks */
    uint64_t responses_sent;
} watch_stats;
void watch_store_stats(const watch_store *ws, watch_stats *out);

/* Bounded steps the timers run, exposed so tests and benchmarks can drive
 * time themselves. watch_store_sync_pass: one unsynced replay pass; returns
 * the number of watchers still unsynced, or a negative error.
 * watch_store_retry_victims: one retry of every stream's control queue and
 * victims; returns how many watchers left the victim state.
 * watch_store_progress_tick: what the progress timer does (etcd's
 * progressTicker): a progress response to every synced watcher that asked
 * for progress_notify and got no event since the last tick. */
int watch_store_sync_pass(watch_store *ws);
int watch_store_retry_victims(watch_store *ws);
void watch_store_progress_tick(watch_store *ws);

/* ---- responses ------------------------------------------------------------------ */

/* One mvccpb.Event. `kv` and `prev_kv` point into memory borrowed for the
 * send callback only. kv->raw, when not NULL, is the exact mvccpb.KeyValue
 * encoding of kv's fields (re-emit it zero-copy); prev_kv is NULL unless
 * the watcher asked for prev_kv and the previous version exists (etcd skips
 * it for creations and when the revision is compacted). */
typedef struct watch_event {
    mvcc_event_type type; /* mvccpb.Event.EventType: PUT = 0, DELETE = 1 */
    const mvcc_kv *kv;
    const mvcc_kv *prev_kv;
} watch_event;

/* etcdserverpb.WatchResponse without the header's cluster_id, member_id and
 * raft_term (the service fills those). Everything is borrowed for the
 * duration of the send callback. */
typedef struct watch_response {
    int64_t revision; /* header.revision */
    int64_t watch_id;
    bool created;
    bool canceled;
    int64_t compact_revision;
    const char *cancel_reason; /* "" when none; static text */
    bool fragment;
    const watch_event *events;
    size_t nevents;
} watch_response;

/* Encoded size of r as an etcdserverpb.WatchResponse, counting the header
 * at its largest (every header field present with 10-byte varints). */
size_t watch_response_size(const watch_response *r);

/* The etcdserverpb.ResponseHeader fields the service adds. */
typedef struct watch_header {
    uint64_t cluster_id, member_id, raft_term;
} watch_header;

/* Encodes r, with h and header.revision = r->revision, as an
 * etcdserverpb.WatchResponse into buf, which holds at least
 * watch_response_size(r) bytes; returns the bytes written. The bytes are
 * those protobuf-c packs for the same message (fields by number, proto3
 * zero values left out); a kv with `raw` is copied as it is (zero-copy
 * from the store's encoding). For the fan-out path, where a generic
 * packer's two walks (size, then pack) cost more than the events. */
size_t watch_response_encode(const watch_response *r, const watch_header *h, uint8_t *buf);

/* The transport of one stream. Returns 0 when r was queued (copied: r is
 * borrowed for the call only), WATCH_SEND_FULL when the stream's outbound
 * queue is full (nothing queued: the store parks the response's watcher as
 * a victim, or keeps a control response, and retries), or another negative
 * value when the stream is dead (the store stops sending on it; the service
 * then frees it). Must not call back into the watch store. */
typedef int (*watch_send_fn)(void *arg, const watch_response *r);

/* Creates a stream (etcd's serverWatchStream + watchStream). `arg` is
 * borrowed. Caller frees with watch_stream_free. */
int watch_stream_new(watch_stream **out, watch_store *ws, watch_send_fn send, void *arg);
/* Cancels and frees every watcher of the stream with its parked events and
 * queued control responses; sends nothing. NULL is a no-op. */
void watch_stream_free(watch_stream *s);
/* The transport has room again: flush queued control responses, then retry
 * this stream's victims now. */
void watch_stream_drained(watch_stream *s);
/* Control responses waiting for the transport (the service may stop
 * reading requests while this is large). */
size_t watch_stream_queued(const watch_stream *s);

/* etcdserverpb.WatchCreateRequest. Everything is borrowed for the call. */
typedef struct watch_create {
    const uint8_t *key; /* empty: "\0", the smallest key (as etcd) */
    size_t key_len;
    const uint8_t *range_end; /* empty: key only; "\0": every key >= key */
    size_t range_end_len;
    int64_t start_revision; /* 0: current revision + 1 */
    bool progress_notify;
    bool no_put, no_delete; /* filters NOPUT / NODELETE */
    bool prev_kv;
    int64_t watch_id; /* 0 = assign (etcd's AutoWatchID is 0 on the wire) */
    bool fragment;
} watch_create;

/* Creates a watcher as etcd 3.4's serverWatchStream does and sends (or
 * queues) its response: {header revision = current revision, watch_id,
 * created} before any event of the watcher; or on refusal {watch_id -1,
 * created, canceled, cancel_reason} with WATCH_REASON_EMPTY_RANGE (key >=
 * range_end) or WATCH_REASON_DUPLICATE_ID (id in use on this stream).
 * Assigned ids count from 0 per stream, skipping ids in use. Returns 0 when
 * a response went out or was queued (including refusals), WATCH_ENOMEM, or
 * WATCH_ECLOSED once the transport reported the stream dead. */
int watch_stream_create(watch_stream *s, const watch_create *c);
/* Cancels a watcher (its parked events are dropped) and sends {header
 * revision = current, watch_id, canceled}. Unknown ids send nothing and
 * return WATCH_ENOT_FOUND (etcd ignores them). */
int watch_stream_cancel(watch_stream *s, int64_t watch_id);
/* WatchProgressRequest: sends {header revision = current, watch_id -1}
 * (etcd 3.4: a broadcast to all the stream's watch channels). */
int watch_stream_progress(watch_stream *s);

#endif
