/* backend/bbolt.c - writing and reading etcd's snapshot format (a bbolt
 * file); the format is described in backend/bbolt.h. */
#include "backend/bbolt.h"

#include "backend/backend.h"
#include "common/mem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HDR 16u      /* page header */
#define ELEM 16u     /* leaf and branch element */
#define META_LEN 64u /* the meta struct, checksum included */
#define MAGIC 0xED0CDAEDu
#define VERSION 2u

#define F_BRANCH 0x01u
#define F_LEAF 0x02u
#define F_META 0x04u
#define F_FREELIST 0x10u
#define F_BUCKET 0x01u /* leaf element: the value is a bucket */

#define FIRST_DATA_PAGE 3u /* 0, 1 meta; 2 freelist */
#define MAX_DEPTH 64

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* FNV-1a, 64 bits: the meta page checksum */
static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* bytewise order, shorter first on a common prefix (Go's bytes.Compare) */
static int cmp_bytes(const void *a, size_t al, const void *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

/* ==== writer ============================================================== */

struct ref {
    uint8_t *key; /* owned copy */
    size_t klen;
    uint64_t pgid; /* the child page, or the bucket's root */
};

struct refs {
    struct ref *v;
    size_t n, cap;
};

struct bbolt_writer {
    int fd;
    uint64_t next_pgid;
    bool in_bucket, finished, failed;
    /* the leaf being filled: its elements' sizes and flags, and their bytes */
    uint32_t *ksz, *vsz, *flg;
    size_t nelem, elem_cap;
    uint8_t *data;
    size_t dlen, dcap;
    /* the last key put in the current bucket (for the order check); keys
     * are never empty, so last_len 0 means none yet */
    uint8_t *last;
    size_t last_len, last_cap;
    struct refs level;   /* pages written for the tree being built */
    struct refs buckets; /* closed buckets: name -> root page */
    uint8_t *page;       /* scratch for one page run */
    size_t page_cap;
};

static void refs_clear(struct refs *r)
{
    for (size_t i = 0; i < r->n; i++)
        metcd_free(r->v[i].key);
    r->n = 0;
}

static int refs_add(struct refs *r, const void *key, size_t klen, uint64_t pgid)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct ref *v = metcd_realloc(r->v, cap * sizeof(*v));
        if (!v)
            return BBOLT_ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    uint8_t *k = metcd_memdup(key, klen);
    if (!k)
        return BBOLT_ENOMEM;
    r->v[r->n++] = (struct ref){k, klen, pgid};
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return BBOLT_EIO;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* A zeroed scratch run of npages pages. */
static uint8_t *scratch(bbolt_writer *w, size_t npages)
{
    size_t need = npages * BBOLT_PAGE_SIZE;
    if (need > w->page_cap) {
        uint8_t *p = metcd_realloc(w->page, need);
        if (!p)
            return NULL;
        w->page = p;
        w->page_cap = need;
    }
    memset(w->page, 0, need);
    return w->page;
}

static size_t pages_for(size_t bytes)
{
    return (bytes + BBOLT_PAGE_SIZE - 1) / BBOLT_PAGE_SIZE;
}

/* Writes the pending leaf elements as one page run and records it. */
static int leaf_flush(bbolt_writer *w)
{
    size_t total = HDR + ELEM * w->nelem + w->dlen;
    size_t np = pages_for(total);
    uint8_t *p = scratch(w, np);
    if (!p)
        return BBOLT_ENOMEM;
    uint64_t id = w->next_pgid;
    put64(p, id);
    put16(p + 8, F_LEAF);
    put16(p + 10, (uint16_t)w->nelem);
    put32(p + 12, (uint32_t)(np - 1));
    size_t doff = HDR + ELEM * w->nelem, src = 0;
    for (size_t i = 0; i < w->nelem; i++) {
        size_t eoff = HDR + ELEM * i;
        uint8_t *e = p + eoff;
        put32(e, w->flg[i]);
        put32(e + 4, (uint32_t)(doff - eoff));
        put32(e + 8, w->ksz[i]);
        put32(e + 12, w->vsz[i]);
        size_t n = (size_t)w->ksz[i] + w->vsz[i];
        memcpy(p + doff, w->data + src, n);
        doff += n;
        src += n;
    }
    int rc = write_all(w->fd, p, np * BBOLT_PAGE_SIZE, id * BBOLT_PAGE_SIZE);
    if (rc)
        return rc;
    /* the page's first key leads it in the branch above */
    rc = refs_add(&w->level, w->nelem ? w->data : (const uint8_t *)"", w->nelem ? w->ksz[0] : 0, id);
    if (rc)
        return rc;
    w->next_pgid += np;
    w->nelem = 0;
    w->dlen = 0;
    return 0;
}

static int leaf_add(bbolt_writer *w, uint32_t flags, const void *k, size_t kl, const void *v,
                    size_t vl)
{
    size_t used = HDR + ELEM * w->nelem + w->dlen;
    if (w->nelem && used + ELEM + kl + vl > BBOLT_PAGE_SIZE) {
        int rc = leaf_flush(w);
        if (rc)
            return rc;
    }
    if (w->nelem == w->elem_cap) {
        size_t cap = w->elem_cap ? w->elem_cap * 2 : 64;
        uint32_t *a = metcd_realloc(w->ksz, cap * sizeof(*a));
        if (!a)
            return BBOLT_ENOMEM;
        w->ksz = a;
        a = metcd_realloc(w->vsz, cap * sizeof(*a));
        if (!a)
            return BBOLT_ENOMEM;
        w->vsz = a;
        a = metcd_realloc(w->flg, cap * sizeof(*a));
        if (!a)
            return BBOLT_ENOMEM;
        w->flg = a;
        w->elem_cap = cap;
    }
    if (w->dlen + kl + vl > w->dcap) {
        size_t cap = w->dcap ? w->dcap : BBOLT_PAGE_SIZE;
        while (cap < w->dlen + kl + vl)
            cap *= 2;
        uint8_t *d = metcd_realloc(w->data, cap);
        if (!d)
            return BBOLT_ENOMEM;
        w->data = d;
        w->dcap = cap;
    }
    memcpy(w->data + w->dlen, k, kl);
    if (vl)
        memcpy(w->data + w->dlen + kl, v, vl);
    w->dlen += kl + vl;
    w->ksz[w->nelem] = (uint32_t)kl;
    w->vsz[w->nelem] = (uint32_t)vl;
    w->flg[w->nelem] = flags;
    w->nelem++;
    return 0;
}

/* Writes one level of branch pages over w->level, replacing it with the
 * refs of the new pages. */
static int branch_level(bbolt_writer *w)
{
    struct refs up = {0};
    size_t i = 0;
    int rc = 0;
    while (i < w->level.n && rc == 0) {
        /* as many children as fit one page (at least one) */
        size_t j = i, bytes = HDR;
        do {
            bytes += ELEM + w->level.v[j].klen;
            j++;
        } while (j < w->level.n && j - i < 0xFFFF &&
                 bytes + ELEM + w->level.v[j].klen <= BBOLT_PAGE_SIZE);
        size_t np = pages_for(bytes);
        uint8_t *p = scratch(w, np);
        if (!p) {
            rc = BBOLT_ENOMEM;
            break;
        }
        uint64_t id = w->next_pgid;
        put64(p, id);
        put16(p + 8, F_BRANCH);
        put16(p + 10, (uint16_t)(j - i));
        put32(p + 12, (uint32_t)(np - 1));
        size_t doff = HDR + ELEM * (j - i);
        for (size_t c = i; c < j; c++) {
            size_t eoff = HDR + ELEM * (c - i);
            put32(p + eoff, (uint32_t)(doff - eoff));
            put32(p + eoff + 4, (uint32_t)w->level.v[c].klen);
            put64(p + eoff + 8, w->level.v[c].pgid);
            memcpy(p + doff, w->level.v[c].key, w->level.v[c].klen);
            doff += w->level.v[c].klen;
        }
        rc = write_all(w->fd, p, np * BBOLT_PAGE_SIZE, id * BBOLT_PAGE_SIZE);
        if (rc == 0)
            rc = refs_add(&up, w->level.v[i].key, w->level.v[i].klen, id);
        w->next_pgid += np;
        i = j;
    }
    refs_clear(&w->level);
    metcd_free(w->level.v);
    w->level = up;
    return rc;
}

/* Flushes the leaf and builds the branches: *root is the tree's root page. */
static int tree_close(bbolt_writer *w, uint64_t *root)
{
    int rc = 0;
    if (w->nelem || w->level.n == 0)
        rc = leaf_flush(w); /* an empty bucket is one empty leaf */
    while (rc == 0 && w->level.n > 1)
        rc = branch_level(w);
    if (rc == 0)
        *root = w->level.v[0].pgid;
    refs_clear(&w->level);
    return rc;
}

static int bucket_close(bbolt_writer *w)
{
    if (!w->in_bucket)
        return 0;
    uint64_t root = 0;
    int rc = tree_close(w, &root);
    if (rc == 0)
        w->buckets.v[w->buckets.n - 1].pgid = root;
    w->in_bucket = false;
    return rc;
}

int bbolt_writer_new(bbolt_writer **out, int fd)
{
    *out = NULL;
    bbolt_writer *w = metcd_calloc(1, sizeof(*w));
    if (!w)
        return BBOLT_ENOMEM;
    w->fd = fd;
    w->next_pgid = FIRST_DATA_PAGE;
    *out = w;
    return 0;
}

/* a failed writer refuses everything after */
static int fail(bbolt_writer *w, int rc)
{
    if (rc && rc != BBOLT_EORDER && rc != BBOLT_ESIZE)
        w->failed = true;
    return rc;
}

int bbolt_writer_bucket(bbolt_writer *w, const void *name, size_t len)
{
    if (w->failed || w->finished)
        return BBOLT_EIO;
    if (len == 0 || len > BBOLT_MAX_KEY)
        return BBOLT_ESIZE;
    if (w->buckets.n) {
        const struct ref *prev = &w->buckets.v[w->buckets.n - 1];
        if (cmp_bytes(prev->key, prev->klen, name, len) >= 0)
            return BBOLT_EORDER;
    }
    int rc = bucket_close(w);
    if (rc == 0)
        rc = refs_add(&w->buckets, name, len, 0);
    if (rc == 0) {
        w->in_bucket = true;
        w->last_len = 0;
    }
    return fail(w, rc);
}

int bbolt_writer_put(bbolt_writer *w, const void *key, size_t klen, const void *val, size_t vlen)
{
    if (w->failed || w->finished)
        return BBOLT_EIO;
    if (!w->in_bucket)
        return BBOLT_EORDER;
    if (klen == 0 || klen > BBOLT_MAX_KEY || vlen > BBOLT_MAX_VALUE)
        return BBOLT_ESIZE;
    if (w->last_len && cmp_bytes(w->last, w->last_len, key, klen) >= 0)
        return BBOLT_EORDER;
    if (klen > w->last_cap) {
        uint8_t *l = metcd_realloc(w->last, klen);
        if (!l)
            return fail(w, BBOLT_ENOMEM);
        w->last = l;
        w->last_cap = klen;
    }
    int rc = leaf_add(w, 0, key, klen, val, vlen);
    if (rc)
        return fail(w, rc);
    memcpy(w->last, key, klen);
    w->last_len = klen;
    return 0;
}

int bbolt_writer_finish(bbolt_writer *w, int64_t *size)
{
    if (w->failed || w->finished)
        return BBOLT_EIO;
    int rc = bucket_close(w);
    /* the root bucket: one bucket entry per top-level bucket */
    for (size_t i = 0; rc == 0 && i < w->buckets.n; i++) {
        uint8_t hdr[16];
        put64(hdr, w->buckets.v[i].pgid);
        put64(hdr + 8, 0); /* sequence */
        rc = leaf_add(w, F_BUCKET, w->buckets.v[i].key, w->buckets.v[i].klen, hdr, sizeof(hdr));
    }
    uint64_t root = 0;
    if (rc == 0)
        rc = tree_close(w, &root);
    uint8_t *p = rc == 0 ? scratch(w, FIRST_DATA_PAGE) : NULL;
    if (rc == 0 && !p)
        rc = BBOLT_ENOMEM;
    if (rc == 0) {
        for (uint64_t i = 0; i < 2; i++) {
            uint8_t *pg = p + i * BBOLT_PAGE_SIZE, *m = pg + HDR;
            put64(pg, i);
            put16(pg + 8, F_META);
            put32(m, MAGIC);
            put32(m + 4, VERSION);
            put32(m + 8, BBOLT_PAGE_SIZE);
            put32(m + 12, 0);
            put64(m + 16, root);
            put64(m + 24, 0); /* root sequence */
            put64(m + 32, 2); /* freelist page */
            put64(m + 40, w->next_pgid);
            put64(m + 48, i); /* txid */
            put64(m + 56, fnv1a64(m, 56));
        }
        uint8_t *fl = p + 2 * BBOLT_PAGE_SIZE; /* an empty freelist */
        put64(fl, 2);
        put16(fl + 8, F_FREELIST);
        rc = write_all(w->fd, p, FIRST_DATA_PAGE * BBOLT_PAGE_SIZE, 0);
    }
    if (rc)
        return fail(w, rc);
    w->finished = true;
    if (size)
        *size = (int64_t)(w->next_pgid * BBOLT_PAGE_SIZE);
    return 0;
}

void bbolt_writer_free(bbolt_writer *w)
{
    if (!w)
        return;
    refs_clear(&w->level);
    refs_clear(&w->buckets);
    metcd_free(w->level.v);
    metcd_free(w->buckets.v);
    metcd_free(w->ksz);
    metcd_free(w->vsz);
    metcd_free(w->flg);
    metcd_free(w->data);
    metcd_free(w->last);
    metcd_free(w->page);
    metcd_free(w);
}

/* ==== export ============================================================== */

static int export_put(void *arg, backend_val k, backend_val v)
{
    return bbolt_writer_put(arg, k.data, k.len, v.data, v.len);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(backend_bucket_name(*(const int *)a), backend_bucket_name(*(const int *)b));
}

int bbolt_export(struct backend_view *view, int fd, int64_t *size)
{
    int order[BACKEND_NBUCKETS];
    for (int i = 0; i < BACKEND_NBUCKETS; i++)
        order[i] = i;
    qsort(order, BACKEND_NBUCKETS, sizeof(order[0]), by_name);
    bbolt_writer *w = NULL;
    int rc = bbolt_writer_new(&w, fd);
    for (int i = 0; rc == 0 && i < BACKEND_NBUCKETS; i++) {
        const char *name = backend_bucket_name(order[i]);
        rc = bbolt_writer_bucket(w, name, strlen(name));
        if (rc == 0)
            rc = backend_view_range(view, order[i], export_put, w);
    }
    if (rc == 0)
        rc = bbolt_writer_finish(w, size);
    bbolt_writer_free(w);
    return rc;
}

/* ==== reader ============================================================== */

struct reader {
    const uint8_t *buf;
    size_t len;
    uint32_t ps;
    uint64_t hw;
    uint8_t *seen; /* one bit per page below the high-water mark */
    bbolt_visit_fn fn;
    void *arg;
    char *err;
    size_t errlen;
    /* the bucket being read */
    const uint8_t *bname;
    size_t blen;
    int stop; /* the visitor's nonzero answer */
};

static int corrupt(struct reader *r, const char *fmt, ...)
{
    if (r->err && r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
    }
    return BBOLT_ECORRUPT;
}

/* A page run: its bytes (header first) and length. */
struct span {
    const uint8_t *p;
    size_t len;
};

/* The page run of pgid, checked and marked seen. */
static int page_at(struct reader *r, uint64_t pgid, struct span *out)
{
    if (pgid < FIRST_DATA_PAGE - 1 || pgid >= r->hw)
        return corrupt(r, "page %llu: out of bounds (high water %llu)", (unsigned long long)pgid,
                       (unsigned long long)r->hw);
    const uint8_t *p = r->buf + pgid * r->ps;
    uint64_t overflow = get32(p + 12);
    if (pgid + overflow + 1 > r->hw)
        return corrupt(r, "page %llu: overflow %llu runs past the high water %llu",
                       (unsigned long long)pgid, (unsigned long long)overflow,
                       (unsigned long long)r->hw);
    if (get64(p) != pgid)
        return corrupt(r, "page %llu: header says page %llu", (unsigned long long)pgid,
                       (unsigned long long)get64(p));
    for (uint64_t i = pgid; i <= pgid + overflow; i++) {
        if (r->seen[i / 8] & (1u << (i % 8)))
            return corrupt(r, "page %llu: multiple references", (unsigned long long)i);
        r->seen[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    out->p = p;
    out->len = (size_t)(overflow + 1) * r->ps;
    return 0;
}

static int walk_bucket(struct reader *r, const uint8_t *v, size_t vlen, int depth);

/* a name for a message: at most 64 bytes of it */
static int shown(size_t n)
{
    return n > 64 ? 64 : (int)n;
}

/* Visits the elements of one page (a run, or an inline bucket's page) and
 * the pages below it. top: the root bucket, whose entries are buckets. */
static int walk_page(struct reader *r, struct span s, bool top, int depth)
{
    if (depth > MAX_DEPTH)
        return corrupt(r, "tree deeper than %d pages", MAX_DEPTH);
    if (s.len < HDR)
        return corrupt(r, "page shorter than its header");
    uint16_t flags = get16(s.p + 8), count = get16(s.p + 10);
    uint64_t id = get64(s.p);
    if ((size_t)HDR + (size_t)ELEM * count > s.len)
        return corrupt(r, "page %llu: %u elements do not fit", (unsigned long long)id, count);
    if (flags & F_BRANCH) {
        for (uint16_t i = 0; i < count; i++) {
            size_t eoff = HDR + (size_t)ELEM * i;
            const uint8_t *e = s.p + eoff;
            uint64_t kend = (uint64_t)eoff + get32(e) + get32(e + 4);
            if (kend > s.len)
                return corrupt(r, "page %llu: branch element %u out of bounds",
                               (unsigned long long)id, i);
            struct span child;
            int rc = page_at(r, get64(e + 8), &child);
            if (rc == 0)
                rc = walk_page(r, child, top, depth + 1);
            if (rc || r->stop)
                return rc;
        }
        return 0;
    }
    if (!(flags & F_LEAF))
        return corrupt(r, "page %llu: not a branch or leaf page (flags %#x)",
                       (unsigned long long)id, flags);
    for (uint16_t i = 0; i < count; i++) {
        size_t eoff = HDR + (size_t)ELEM * i;
        const uint8_t *e = s.p + eoff;
        uint32_t eflags = get32(e), ks = get32(e + 8), vs = get32(e + 12);
        uint64_t kstart = (uint64_t)eoff + get32(e + 4);
        if (kstart + ks + vs > s.len)
            return corrupt(r, "page %llu: leaf element %u out of bounds", (unsigned long long)id,
                           i);
        const uint8_t *k = s.p + kstart, *v = k + ks;
        if (top) {
            if (!(eflags & F_BUCKET))
                return corrupt(r, "cannot get hash of bucket %.*s", shown(ks), (const char *)k);
            r->bname = k;
            r->blen = ks;
            int stop = r->fn ? r->fn(r->arg, k, ks, NULL, 0, NULL, 0) : 0;
            if (stop) {
                r->stop = stop;
                return 0;
            }
            int rc = walk_bucket(r, v, vs, depth + 1);
            if (rc || r->stop)
                return rc;
            continue;
        }
        if (eflags & F_BUCKET)
            return corrupt(r, "bucket %.*s: nested bucket %.*s (not in etcd's format)",
                           shown(r->blen), (const char *)r->bname, shown(ks), (const char *)k);
        if (r->fn) {
            int stop = r->fn(r->arg, r->bname, r->blen, k, ks, v, vs);
            if (stop) {
                r->stop = stop;
                return 0;
            }
        }
    }
    return 0;
}

static int walk_bucket(struct reader *r, const uint8_t *v, size_t vlen, int depth)
{
    if (vlen < 16)
        return corrupt(r, "bucket %.*s: header too short", shown(r->blen), (const char *)r->bname);
    uint64_t root = get64(v);
    if (root == 0) /* inline: the page follows the header */
        return walk_page(r, (struct span){v + 16, vlen - 16}, false, depth);
    struct span s;
    int rc = page_at(r, root, &s);
    return rc ? rc : walk_page(r, s, false, depth);
}

/* The meta at page run offset off, or NULL when not valid. */
static const uint8_t *meta_at(const uint8_t *buf, size_t len, size_t off)
{
    if (off + HDR + META_LEN > len)
        return NULL;
    const uint8_t *m = buf + off + HDR;
    if (get32(m) != MAGIC || get32(m + 4) != VERSION)
        return NULL;
    uint64_t sum = get64(m + 56);
    if (sum != 0 && sum != fnv1a64(m, 56))
        return NULL;
    return m;
}

static bool good_page_size(uint32_t ps)
{
    return ps >= 512 && ps <= 65536 && (ps & (ps - 1)) == 0;
}

int bbolt_read(const uint8_t *buf, size_t len, bbolt_info *info, bbolt_visit_fn fn, void *arg,
               char *err, size_t errlen)
{
    struct reader r = {.buf = buf, .len = len, .fn = fn, .arg = arg, .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = 0;
    /* as bbolt: the page size from meta 0, or the default to find meta 1 */
    const uint8_t *m0 = meta_at(buf, len, 0), *m1;
    uint32_t ps = m0 ? get32(m0 + 8) : BBOLT_PAGE_SIZE;
    if (m0 && !good_page_size(ps))
        return corrupt(&r, "invalid page size %u", ps);
    m1 = meta_at(buf, len, ps);
    if (m1 && get32(m1 + 8) != ps)
        m1 = NULL;
    if (len < 2 * (size_t)ps)
        return corrupt(&r, "file size too small"); /* bbolt's words */
    const uint8_t *m = m0;
    if (!m || (m1 && get64(m1 + 48) > get64(m0 + 48)))
        m = m1;
    if (!m)
        return corrupt(&r, "invalid database: no valid meta page");
    r.ps = ps;
    r.hw = get64(m + 40);
    uint64_t root = get64(m + 16);
    if (r.hw < FIRST_DATA_PAGE || r.hw > len / ps)
        return corrupt(&r, "high water page %llu beyond the file's %zu pages",
                       (unsigned long long)r.hw, len / ps);
    r.seen = metcd_calloc(1, (size_t)(r.hw / 8 + 1));
    if (!r.seen)
        return BBOLT_ENOMEM;
    struct span s;
    int rc = page_at(&r, root, &s);
    if (rc == 0)
        rc = walk_page(&r, s, true, 0);
    metcd_free(r.seen);
    if (rc == 0 && info) {
        info->page_size = ps;
        info->high_water = r.hw;
        info->txid = get64(m + 48);
    }
    return rc ? rc : r.stop;
}

const char *bbolt_strerror(int code)
{
    switch (code) {
    case BBOLT_OK:
        return "ok";
    case BBOLT_ENOMEM:
        return "out of memory";
    case BBOLT_EIO:
        return "write failed";
    case BBOLT_EORDER:
        return "bucket or key out of order";
    case BBOLT_ESIZE:
        return "key or value size out of bbolt's limits";
    case BBOLT_ECORRUPT:
        return "not a valid bbolt database";
    default:
        return backend_strerror(code); /* bbolt_export passes the backend's on */
    }
}
