/* watch/internal.h - structures shared by the watch module's files. Never
 * included outside watch/ (and its unit tests). */
#ifndef METCD_WATCH_INTERNAL_H
#define METCD_WATCH_INTERNAL_H

#include "watch/watch.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event;
typedef struct watcher watcher;

/* ---- interval tree (interval_tree.c) ------------------------------------------------
 * A treap of distinct half-open byte-string intervals [begin, end), `end`
 * possibly +infinity, each node augmented with the largest end in its
 * subtree, so a stab (every interval containing a point) costs
 * O(log n + k) expected. Nodes copy their bounds. */
typedef struct itree_node {
    struct itree_node *left, *right;
    uint32_t prio;
    bool inf;     /* end = +infinity */
    bool max_inf; /* the subtree's largest end is +infinity */
    size_t blen, elen, max_len;
    const uint8_t *max_end; /* points into some node of the subtree */
    uint8_t *begin, *end;   /* into data[] */
    void *val;              /* the user's payload (the group: a watcher list) */
    size_t nval;
    uint8_t data[];
} itree_node;

typedef struct itree {
    itree_node *root;
    size_t n;
    uint64_t seed;
} itree;

void itree_init(itree *t);
/* Frees every node (not the payloads). */
void itree_clear(itree *t);
itree_node *itree_find(const itree *t, const uint8_t *b, size_t blen, const uint8_t *e, size_t elen,
                       bool inf);
/* Inserts the interval (which must not be present); returns the node or NULL
 * on allocation failure. */
itree_node *itree_insert(itree *t, const uint8_t *b, size_t blen, const uint8_t *e, size_t elen,
                         bool inf);
/* Removes and frees the node with these bounds; returns false if absent. */
bool itree_delete(itree *t, const uint8_t *b, size_t blen, const uint8_t *e, size_t elen, bool inf);
/* Calls fn for every interval containing point p, in begin order. fn must
 * not change the tree. */
typedef void (*itree_visit_fn)(void *arg, itree_node *n);
void itree_stab(const itree *t, const uint8_t *p, size_t plen, itree_visit_fn fn, void *arg);
/* Checks the treap and augmentation invariants (tests). */
bool itree_check(const itree *t);

int watch_bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl);

/* ---- watcher groups (group.c) -------------------------------------------------------
 * Single-key watchers by key in a chained hash table, range watchers in the
 * interval tree; every member also on the group's list (for choosing and
 * iteration). A watcher is in at most one group. */
typedef struct kslot {
    struct kslot *next;
    uint64_t hash;
    watcher *head;
    size_t n;
    size_t len;
    uint8_t key[];
} kslot;

typedef struct wgroup {
    kslot **buckets;
    size_t nbuckets, nslots;
    itree ranges;
    watcher *head, *tail; /* all members, in insertion order */
    size_t n;
} wgroup;

void wgroup_init(wgroup *g);
/* Frees the index (not the watchers). */
void wgroup_clear(wgroup *g);
/* Adds w (must be in no group); WATCH_ENOMEM leaves w outside. */
int wgroup_add(wgroup *g, watcher *w);
void wgroup_remove(wgroup *g, watcher *w);
/* Calls fn for every member watching `key` (single-key and ranges). fn
 * must not change the group. */
typedef void (*wgroup_visit_fn)(void *arg, watcher *w);
void wgroup_match(const wgroup *g, const uint8_t *key, size_t len, wgroup_visit_fn fn, void *arg);
/* Moves w to the end of the group's list (fairness of choosing). */
void wgroup_rotate(wgroup *g, watcher *w);

/* ---- shared event copies (deliver.c) ----------------------------------------------- */
typedef struct wevent {
    uint32_t refs;
    size_t bytes;
    mvcc_event ev; /* kv.key / kv.value point into data[]; kv.raw is NULL */
    uint8_t data[];
} wevent;

/* Copies ev (refs = 1; kv.raw cleared); NULL on allocation failure. */
wevent *wevent_new(watch_store *ws, const mvcc_event *ev);
void wevent_unref(watch_store *ws, wevent *e);
void wevent_ref(watch_store *ws, wevent *e);

/* ---- watchers ----------------------------------------------------------------------- */
enum watcher_state { W_NONE = 0, W_SYNCED, W_UNSYNCED, W_VICTIM, W_COMPACTED };

struct watcher {
    watch_stream *stream;
    int64_t id;
    int64_t min_rev; /* next revision the watcher needs */
    uint8_t *end;    /* range end, into key[] after the key; NULL when none */
    uint32_t key_len, end_len;
    bool single;   /* no range_end */
    bool from_key; /* range_end "\0": end is +infinity */
    bool no_put, no_delete, prev_kv, fragment, progress, progress_due;
    uint8_t state;
    bool lost, full; /* notify / sync scratch */
    uint32_t seq;

    /* group membership */
    void *slot; /* kslot or itree_node */
    watcher *slot_prev, *slot_next;
    watcher *g_prev, *g_next; /* group list, or the stream's victim list */
    watcher *id_next;         /* stream id table chain */

    /* notify / sync scratch */
    uint64_t gen;
    watcher *lnext; /* scratch list link (chosen / lost) */

    /* events parked (victim) or gathered (sync pass), in order */
    wevent **evs;
    size_t nev, cap, next;
    int64_t batch_rev; /* header revision of the batch's responses */
    int64_t more_rev;  /* first revision left out of a full batch */
    int64_t last_rev;  /* revision of the last gathered event */
    size_t bbytes;
    uint32_t nrevs;
    /* The key, then the range end, in the watcher's own allocation: one
     * allocation per watcher (issue 7: memory per watcher). */
    uint8_t key[];
};

/* A queued control response (created / canceled / progress). */
typedef struct wctrl {
    int64_t revision, watch_id;
    bool created, canceled;
    const char *reason;
} wctrl;

struct watch_stream {
    watch_store *ws;
    watch_send_fn send;
    void *arg;
    bool blocked; /* the transport said FULL; cleared by drained / the retry timer */
    bool dead;
    int64_t next_id;
    watcher **ids; /* id hash table */
    size_t nids_buckets, nwatchers;
    watcher *vhead, *vtail; /* victims */
    size_t nvictims;
    wctrl *ctrl; /* ring */
    size_t ctrl_head, ctrl_n, ctrl_cap;
    watch_stream *prev, *next;   /* store's stream list */
    watch_stream *rprev, *rnext; /* store's list of streams with retry work */
    bool on_retry;
};

struct watch_store {
    mvcc_store *kv;
    struct event_base *base;
    watch_options opt;
    wgroup synced, unsynced;
    watch_stream *streams;
    watch_stream *retry; /* streams with victims or queued control responses */
    size_t nstreams, nwatchers, ncompacted, nvictims;
    struct event *sync_ev, *victim_ev, *progress_ev;
    uint64_t gen;
    /* notify scratch */
    struct wpair *pairs;
    size_t npairs, cap_pairs;
    wevent **evcache;
    size_t cap_evcache;
    const mvcc_event **evptrs;
    size_t cap_evptrs;
    /* stats */
    size_t pending_events, pending_bytes;
    uint64_t events_sent, responses_sent;
};

struct wpair {
    watcher *w;
    uint32_t seq;
    uint32_t ev;
};

/* ---- delivery (deliver.c) ---------------------------------------------------------- */

/* Sends evs[0..n) (already filtered for w) for watcher w with header
 * revision `rev`, split as the contract of watch.h says. Returns the number
 * of events that went out (n when all did); *rc gets 0, WATCH_SEND_FULL or
 * WATCH_ECLOSED. */
size_t deliver_events(watch_store *ws, watcher *w, const mvcc_event *const *evs, size_t n,
                      int64_t rev, int *rc);
/* Sends one response on s, honouring blocked/dead; returns 0,
 * WATCH_SEND_FULL or WATCH_ECLOSED. */
int stream_send(watch_stream *s, const watch_response *r);
bool watcher_wants(const watcher *w, const mvcc_event *ev);

/* Batch helpers. */
int batch_push(watch_store *ws, watcher *w, wevent *e);
void batch_clear(watch_store *ws, watcher *w);
/* Drops the batch's events of revision >= rev. */
void batch_truncate_from(watch_store *ws, watcher *w, int64_t rev);

/* ---- store internals (store.c) ----------------------------------------------------- */
/* mvcc's observer (etcd's notify): delivers a write's events to the synced
 * group. */
void store_on_write(void *arg, const mvcc_event *evs, size_t n, int64_t rev);
/* Places w (in no group) as synced or unsynced by its min_rev, or parks it
 * as an empty victim when the group cannot grow. */
void store_place(watch_store *ws, watcher *w);
void store_make_victim(watch_store *ws, watcher *w);
/* Removes w from whatever group or list holds it and drops its batch. */
void store_detach(watch_store *ws, watcher *w);
void store_arm_sync(watch_store *ws, bool now);
void store_want_retry(watch_store *ws, watch_stream *s);
void store_stream_unlink(watch_store *ws, watch_stream *s);
/* Detaches and frees every watcher of s and its control queue. */
void stream_release_all(watch_stream *s);
/* Retries s's control queue then its victims; returns watchers moved out. */
int stream_retry(watch_stream *s);

#endif
