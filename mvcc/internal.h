/* mvcc/internal.h - shared inside mvcc/ only; never included elsewhere. */
#ifndef METCD_MVCC_INTERNAL_H
#define METCD_MVCC_INTERNAL_H

#include "mvcc/mvcc.h"

#include <stdbool.h>

/* ---- arena (arena.c): bump allocator behind every mvcc_result ------------ */

struct mvcc_arena;
struct mvcc_arena *arena_new(void);
void arena_free(struct mvcc_arena *a);
/* Frees the calling thread's cached arena. */
void arena_release_spare(void);
void *arena_alloc(struct mvcc_arena *a, size_t n); /* 8-aligned, NULL on OOM */
void *arena_dup(struct mvcc_arena *a, const void *p, size_t n);
/* Ensures res has an arena; returns it or NULL on OOM. */
struct mvcc_arena *result_arena(mvcc_result *res);

/* ---- key index (key_index.c) ----------------------------------------------- */

/* A generation: the revisions of one key from its creation to its deletion
 * (the tombstone is the last revision of a finished generation). When
 * cap == 0 the generation holds at most one revision, inline. */
struct ki_gen {
    int64_t ver;
    mvcc_rev created;
    uint32_t n, cap;
    union {
        mvcc_rev one;
        mvcc_rev *many;
    } r;
};

/* The key index of one key: its generations, oldest first; the last one is
 * the current (possibly empty) generation. The first generation is inline;
 * more generations (a key deleted and re-created) live in `more`. */
typedef struct key_index {
    uint32_t keylen;
    uint32_t ngens;
    struct ki_gen g0;
    struct ki_gen *more;
    uint8_t key[];
} key_index;

key_index *ki_new(const uint8_t *key, size_t len);
void ki_free(key_index *ki);
size_t ki_bytes(const key_index *ki);
/* Appends rev to the current generation (starting one if it is empty). */
int ki_put(key_index *ki, mvcc_rev rev);
/* Restores a generation known from a stored KeyValue whose older
 * revisions may have been compacted (etcd keyIndex.restore). */
int ki_restore(key_index *ki, mvcc_rev created, mvcc_rev modified, int64_t ver);
/* Ends the current generation with the tombstone rev; MVCC_EKEY_NOT_FOUND if
 * the key is not alive. */
int ki_tombstone(key_index *ki, mvcc_rev rev);
/* The revision of the key visible at main revision at_rev, with the
 * generation's created revision and the version at that point; false if
 * the key did not exist then. */
bool ki_get(const key_index *ki, int64_t at_rev, mvcc_rev *mod, mvcc_rev *created, int64_t *ver);
/* True if the key index holds no revision (only an empty generation). */
bool ki_is_empty(const key_index *ki);
/* Compacts at at_rev (etcd keyIndex.compact). */
void ki_compact(key_index *ki, int64_t at_rev);
/* The one revision <= at_rev that a compaction at at_rev keeps (etcd
 * keyIndex.keep); false if none. */
bool ki_keep_rev(const key_index *ki, int64_t at_rev, mvcc_rev *out);
/* True if rev is one of the key index's revisions. */
bool ki_has_rev(const key_index *ki, mvcc_rev rev);
/* The revisions of generation `gen` (NULL if there is no such generation). */
const mvcc_rev *ki_gen_revs(const key_index *ki, uint32_t gen, uint32_t *n);
/* The latest revision of the key (alive or tombstone); false if none. */
bool ki_last_rev(const key_index *ki, mvcc_rev *out);

/* ---- B-tree of key indexes ordered by key bytes (btree.c) ------------------- */

struct bt_node;
typedef struct btree {
    struct bt_node *root;
    size_t count;
    size_t node_bytes;
} btree;

void bt_init(btree *t);
/* Frees the nodes and, when free_items, every key index. */
void bt_destroy(btree *t, bool free_items);
key_index *bt_get(const btree *t, const uint8_t *key, size_t len);
/* Inserts ki, whose key must not be present. MVCC_ENOMEM on failure (the
 * tree is unchanged). */
int bt_insert(btree *t, key_index *ki);
/* The key index of key, created (empty, by ki_new) and inserted in the
 * same descent when absent (*created set). NULL on allocation failure, with
 * the tree's items unchanged. */
key_index *bt_upsert(btree *t, const uint8_t *key, size_t len, bool *created);
/* Removes and returns the key index of key, or NULL. */
key_index *bt_delete(btree *t, const uint8_t *key, size_t len);
/* Visits key indexes with start <= key < end in order (end == NULL: no upper
 * bound). fn returns true to go on. */
typedef bool (*bt_visit_fn)(void *arg, key_index *ki);
void bt_ascend_range(const btree *t, const uint8_t *start, size_t slen, const uint8_t *end,
                     size_t elen, bt_visit_fn fn, void *arg);
/* Checks the B-tree invariants (order, fill, depth); for tests. */
bool bt_check(const btree *t);

int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl);

/* ---- KeyValue codec (kv_codec.c) ---------------------------------------------------- */

/* Parses an encoded mvccpb.KeyValue without copying: pointers refer into
 * buf. Returns 0 or MVCC_ECORRUPT. */
int kv_decode(const uint8_t *buf, size_t len, mvcc_kv *out);
/* Encodes a KeyValue with protobuf-c into *buf (capacity *cap, grown with
 * metcd_realloc as needed; the caller owns it). Returns 0 or MVCC_ENOMEM. */
int kv_encode(uint8_t **buf, size_t *cap, const uint8_t *key, size_t klen, const uint8_t *val,
              size_t vlen, int64_t create, int64_t mod, int64_t ver, int64_t lease, size_t *len);

/* ---- the store (kvstore.c, txn.c, compact.c) --------------------------------------- */

struct event_buf {
    mvcc_event *evs;
    size_t n, cap;
};

struct mvcc_store {
    backend *be;
    btree index;
    size_t index_item_bytes; /* key indexes (the B-tree counts its nodes) */
    mvcc_options opt;
    int64_t current_rev;
    int64_t compact_rev;  /* scheduled (index compacted); 0 = never */
    int64_t finished_rev; /* physically finished */
    int64_t keys_total;

    /* the write transaction in progress */
    bool in_write;
    int64_t begin_rev;
    int64_t sub;
    struct event_buf events;
    struct mvcc_arena *ev_arena;

    /* physical compaction in progress */
    bool compacting;
    mvcc_rev compact_next; /* next revision to examine */

    mvcc_stats stats;

    mvcc_observer_fn observer;
    void *observer_arg;
    mvcc_lease_hooks lease;
    uint8_t *scratch; /* encode buffer for puts */
    size_t scratch_cap;
    char errmsg[256];
};

int store_backend_err(mvcc_store *s, int rc);

/* Write transaction core (kvstore.c). */
int wtx_begin(mvcc_store *s);
int wtx_end(mvcc_store *s); /* notifies the observer, bumps current_rev */
/* The revision reads inside the open write txn see. */
int64_t wtx_read_rev(const mvcc_store *s);
int store_range(mvcc_store *s, const mvcc_range_req *req, int64_t cur_rev, struct mvcc_arena *a,
                mvcc_op_resp *out);
int store_put(mvcc_store *s, const mvcc_put_req *req, struct mvcc_arena *a, mvcc_op_resp *out);
int store_delete(mvcc_store *s, const mvcc_delete_req *req, struct mvcc_arena *a,
                 mvcc_op_resp *out);
/* Reads the KeyValue of `key` visible at main revision rev into the arena;
 * returns 1 if found, 0 if not, or an error. */
int store_get_kv(mvcc_store *s, const uint8_t *key, size_t klen, int64_t rev,
                 struct mvcc_arena *a, mvcc_kv *out);
int check_range_req(const mvcc_range_req *req);
int check_put_req(const mvcc_put_req *req);

/* meta bucket keys (compact.c) */
extern const char META_SCHEDULED_COMPACT[];
extern const char META_FINISHED_COMPACT[];
extern const char META_CONSISTENT_INDEX[];

#endif
