/* backend/bbolt.h - etcd's snapshot file format: a bbolt database.
 *
 * `etcdctl snapshot save` stores what the Snapshot RPC streams, and etcd
 * streams its bbolt file; `etcdctl snapshot status` and `restore` open that
 * file with bbolt. So metcd's Snapshot RPC writes its buckets as a bbolt
 * file (the writer), and metcd's status and restore read one, metcd's or
 * etcd's own (the reader). metcd's live database stays LMDB.
 *
 * The format, from bbolt's page.go / db.go / bucket.go (facts, not code):
 * pages of page_size bytes, little-endian, each with a 16-byte header
 * {u64 id, u16 flags, u16 count, u32 overflow}; a page with overflow n
 * spans n+1 page sizes. Pages 0 and 1 are meta pages {u32 magic 0xED0CDAED,
 * u32 version 2, u32 page_size, u32 flags, {u64 root, u64 sequence} root
 * bucket, u64 freelist page, u64 high-water page id, u64 txid, u64 FNV-1a
 * of the preceding 56 bytes}; the valid one with the larger txid wins.
 * Leaf elements are {u32 flags, u32 pos, u32 ksize, u32 vsize}, branch
 * elements {u32 pos, u32 ksize, u64 child}, pos counted from the element
 * itself. The root bucket's leaf entries are the buckets (flag 1), each
 * value a {u64 root, u64 sequence} header; root 0 means an inline bucket
 * whose page follows the header inside the value.
 *
 * The writer streams: pages go to the file as they fill, only the first key
 * and page id of every page is kept until its bucket's branch levels are
 * written. Pages: 0-1 meta, 2 an empty freelist, 3.. the data, the root
 * bucket's page last. Every page is reachable and nothing is freed, so
 * bbolt's Tx.Check passes.
 */
#ifndef METCD_BACKEND_BBOLT_H
#define METCD_BACKEND_BBOLT_H

#include <stddef.h>
#include <stdint.h>

/* Error codes: reserved range -1070 .. -1089. */
enum bbolt_error {
    BBOLT_OK = 0,
    BBOLT_ENOMEM = -1070,  /* allocation failed */
    BBOLT_EIO = -1071,     /* the file could not be written, or the writer
                              already failed or finished */
    BBOLT_EORDER = -1072,  /* a bucket or key not in ascending order */
    BBOLT_ESIZE = -1073,   /* an empty or too large key, or too large value */
    BBOLT_ECORRUPT = -1074 /* the reader met something that is not bbolt */
};

#define BBOLT_PAGE_SIZE 4096u
#define BBOLT_MAX_KEY 32768u             /* bbolt's MaxKeySize */
#define BBOLT_MAX_VALUE ((1u << 31) - 2) /* bbolt's MaxValueSize */

/* ---- writer ---------------------------------------------------------------- */

typedef struct bbolt_writer bbolt_writer;

/* A writer of a new bbolt file into fd, from offset 0 (the caller owns fd). */
int bbolt_writer_new(bbolt_writer **out, int fd);

/* Starts the next top-level bucket; names strictly ascending (bytewise). */
int bbolt_writer_bucket(bbolt_writer *w, const void *name, size_t len);

/* Adds a key to the current bucket; keys strictly ascending (bytewise). */
int bbolt_writer_put(bbolt_writer *w, const void *key, size_t klen, const void *val,
                     size_t vlen);

/* Closes the last bucket and writes the root and the meta pages. *size
 * (optional) is the file size: high-water page id * page size. */
int bbolt_writer_finish(bbolt_writer *w, int64_t *size);

/* Frees the writer (finished or not; an unfinished file is not valid). */
void bbolt_writer_free(bbolt_writer *w);

/* ---- from the LMDB backend ---------------------------------------------------- */

struct backend_view;

/* Writes every bucket of a backend read view (backend_view_open) to fd as
 * a bbolt file: the `snapshot save` image. *size (optional) is its size.
 * May run on any thread: the view is an LMDB read transaction. */
int bbolt_export(struct backend_view *view, int fd, int64_t *size);

/* ---- reader ---------------------------------------------------------------- */

typedef struct bbolt_info {
    uint32_t page_size;
    uint64_t high_water; /* pages in use: the size is high_water * page_size */
    uint64_t txid;
} bbolt_info;

/* Called at the start of every top-level bucket with key and val NULL (so
 * empty buckets are seen too), then for each of its keys; buckets and keys
 * in order. Returns 0 to go on, nonzero to stop (returned by bbolt_read). */
typedef int (*bbolt_visit_fn)(void *arg, const uint8_t *bucket, size_t blen, const uint8_t *key,
                              size_t klen, const uint8_t *val, size_t vlen);

/* Reads the bbolt file held in buf[0..len) (trailing bytes past the last
 * page, such as a snapshot's SHA-256, are ignored). Every page is bounds-
 * and type-checked and visited at most once, so a corrupt or hostile file
 * gives BBOLT_ECORRUPT with the reason in err, never a crash. info and
 * fn may be NULL. */
int bbolt_read(const uint8_t *buf, size_t len, bbolt_info *info, bbolt_visit_fn fn, void *arg,
               char *err, size_t errlen);

const char *bbolt_strerror(int code);

#endif
