/* mvcc/compact.c - compaction and HashKV.
 *
 * Compaction at revision r (etcd mvcc/kvstore_compaction.go): the index is
 * compacted at once (each key keeps its largest revision <= r unless that is
 * a tombstone, and everything newer); r is recorded as scheduled in the meta
 * bucket; then the key bucket's revisions <= r that the index no longer
 * holds are deleted in bounded steps, and r is recorded as finished. A crash
 * in between is resumed on open. Whether a stored revision is still needed
 * is asked of the index itself (the key's key_index holds it), so no set of
 * kept revisions is built.
 */
#include "mvcc/internal.h"

#include "common/mem.h"

#include <string.h>

const char META_SCHEDULED_COMPACT[] = "scheduledCompactRev";
const char META_FINISHED_COMPACT[] = "finishedCompactRev";
const char META_CONSISTENT_INDEX[] = "consistent_index";

/* Entries examined per step at most, deleted or not. */
#define SCAN_FACTOR 8

static int write_meta_rev(mvcc_store *s, const char *name, int64_t rev)
{
    uint8_t b[MVCC_TOMBSTONE_BYTES];
    size_t n = mvcc_rev_encode((mvcc_rev){rev, 0}, 0, b);
    int rc = backend_put(s->be, BACKEND_META, name, strlen(name), b, n, 0);
    return rc ? store_backend_err(s, rc) : 0;
}

struct ki_list {
    key_index **v;
    size_t n, cap;
    int64_t at;
    int err;
    mvcc_store *s;
};

static bool compact_visit(void *arg, key_index *ki)
{
    struct ki_list *l = arg;
    size_t before = ki_bytes(ki);
    ki_compact(ki, l->at);
    l->s->index_item_bytes += ki_bytes(ki);
    l->s->index_item_bytes -= before;
    if (!ki_is_empty(ki))
        return true;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        key_index **v = metcd_realloc(l->v, cap * sizeof(*v));
        if (!v) {
            /* Leaving an empty key index in the tree is harmless (it
             * reads as absent); it goes at the next compaction. */
            l->err = MVCC_ENOMEM;
            return true;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = ki;
    return true;
}

int mvcc_compact(mvcc_store *s, int64_t rev)
{
    if (rev <= s->compact_rev)
        return MVCC_ECOMPACTED;
    if (rev > s->current_rev)
        return MVCC_EFUTURE_REV;
    int rc = write_meta_rev(s, META_SCHEDULED_COMPACT, rev);
    if (rc)
        return rc;
    struct ki_list l = {.at = rev, .s = s};
    bt_ascend_range(&s->index, NULL, 0, NULL, 0, compact_visit, &l);
    for (size_t i = 0; i < l.n; i++) {
        key_index *ki = l.v[i];
        s->index_item_bytes -= ki_bytes(ki);
        bt_delete(&s->index, ki->key, ki->keylen);
        ki_free(ki);
    }
    metcd_free(l.v);
    s->compact_rev = rev;
    s->compacting = true;
    s->compact_next = (mvcc_rev){0, 0};
    return 0;
}

int mvcc_compact_pending(const mvcc_store *s)
{
    return s->compacting;
}

struct step_ctx {
    mvcc_store *s;
    size_t scanned, max_scan;
    uint8_t (*del)[MVCC_TOMBSTONE_BYTES];
    size_t *del_len;
    size_t ndel, max_del;
    mvcc_rev last;
    bool stopped;
    int err;
};

static int step_visit(void *arg, backend_val k, backend_val v)
{
    struct step_ctx *c = arg;
    if (c->scanned == c->max_scan || c->ndel == c->max_del) {
        c->stopped = true;
        return 1;
    }
    mvcc_rev rev;
    int tomb;
    mvcc_kv kv;
    if (mvcc_rev_decode(k.data, k.len, &rev, &tomb) || kv_decode(v.data, v.len, &kv)) {
        c->err = MVCC_ECORRUPT;
        return 1;
    }
    c->scanned++;
    c->last = rev;
    key_index *ki = bt_get(&c->s->index, kv.key, kv.key_len);
    if (!ki || !ki_has_rev(ki, rev)) {
        memcpy(c->del[c->ndel], k.data, k.len);
        c->del_len[c->ndel] = k.len;
        c->ndel++;
    }
    return 0;
}

int mvcc_compact_step(mvcc_store *s)
{
    if (!s->compacting)
        return 0;
    size_t batch = s->opt.compact_batch;
    struct step_ctx c = {.s = s, .max_scan = batch * SCAN_FACTOR, .max_del = batch};
    c.del = metcd_malloc(batch * sizeof(*c.del));
    c.del_len = metcd_malloc(batch * sizeof(*c.del_len));
    if (!c.del || !c.del_len) {
        metcd_free(c.del);
        metcd_free(c.del_len);
        return MVCC_ENOMEM;
    }
    uint8_t lo[MVCC_TOMBSTONE_BYTES], hi[MVCC_TOMBSTONE_BYTES];
    size_t ll = mvcc_rev_encode(s->compact_next, 0, lo);
    size_t hl = mvcc_rev_encode((mvcc_rev){s->compact_rev + 1, 0}, 0, hi);
    int rc = backend_range(s->be, BACKEND_KEY, lo, ll, hi, hl, 0, step_visit, &c);
    if (rc)
        rc = store_backend_err(s, rc);
    else
        rc = c.err;
    for (size_t i = 0; rc == 0 && i < c.ndel; i++) {
        int brc = backend_del(s->be, BACKEND_KEY, c.del[i], c.del_len[i]);
        if (brc)
            rc = store_backend_err(s, brc);
    }
    metcd_free(c.del);
    metcd_free(c.del_len);
    if (rc)
        return rc;
    if (c.stopped) {
        s->compact_next = (mvcc_rev){c.last.main, c.last.sub + 1};
        return 1;
    }
    rc = write_meta_rev(s, META_FINISHED_COMPACT, s->compact_rev);
    if (rc)
        return rc;
    s->finished_rev = s->compact_rev;
    s->compacting = false;
    return 0;
}

/* ---- HashKV -------------------------------------------------------------------------- */

struct hash_ctx {
    mvcc_store *s;
    int64_t rev;
    int64_t lower; /* revisions with main < lower need to be kept at rev */
    bool any_keep;
    uint32_t crc;
    int err;
};

static bool any_keep_visit(void *arg, key_index *ki)
{
    struct hash_ctx *h = arg;
    mvcc_rev r;
    if (ki_keep_rev(ki, h->rev, &r)) {
        h->any_keep = true;
        return false;
    }
    return true;
}

static int hash_visit(void *arg, backend_val k, backend_val v)
{
    struct hash_ctx *h = arg;
    mvcc_rev rev;
    int tomb;
    if (mvcc_rev_decode(k.data, k.len, &rev, &tomb)) {
        h->err = MVCC_ECORRUPT;
        return 1;
    }
    if (rev.main < h->lower && h->any_keep) {
        mvcc_kv kv;
        if (kv_decode(v.data, v.len, &kv)) {
            h->err = MVCC_ECORRUPT;
            return 1;
        }
        key_index *ki = bt_get(&h->s->index, kv.key, kv.key_len);
        mvcc_rev keep;
        if (!ki || !ki_keep_rev(ki, h->rev, &keep) || mvcc_rev_cmp(keep, rev) != 0)
            return 0;
    }
    h->crc = backend_crc32c(h->crc, k.data, k.len);
    h->crc = backend_crc32c(h->crc, v.data, v.len);
    return 0;
}

int mvcc_hash_kv(mvcc_store *s, int64_t rev, uint32_t *hash, int64_t *hash_rev,
                 int64_t *compact_rev)
{
    *compact_rev = s->compact_rev;
    *hash_rev = s->current_rev;
    if (rev > 0 && rev <= s->compact_rev)
        return MVCC_ECOMPACTED;
    if (rev > s->current_rev)
        return MVCC_EFUTURE_REV;
    if (rev <= 0)
        rev = s->current_rev;
    struct hash_ctx h = {.s = s, .rev = rev, .lower = s->compact_rev + 1};
    bt_ascend_range(&s->index, NULL, 0, NULL, 0, any_keep_visit, &h);
    h.crc = backend_crc32c(0, "key", 3);
    uint8_t hi[MVCC_TOMBSTONE_BYTES];
    size_t hl = mvcc_rev_encode((mvcc_rev){rev + 1, 0}, 0, hi);
    int rc = backend_range(s->be, BACKEND_KEY, NULL, 0, hi, hl, 0, hash_visit, &h);
    if (rc)
        return store_backend_err(s, rc);
    if (h.err)
        return h.err;
    *hash = h.crc;
    return 0;
}
