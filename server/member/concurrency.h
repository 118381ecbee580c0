/* server/member/concurrency.h - shared by lock.c and election.c only: the
 * pieces of etcd 3.4's clientv3/concurrency (key.go's waitDeletes, the
 * session key scheme, the recipes' one-compare txns) that its server-side
 * Lock and Election services are built from, run asynchronously on the
 * member's loop instead of through an in-process client.
 *
 * Reads here are local (the applied state): every caller reads after its
 * own proposal was applied on this member, so the state it sees already
 * contains everything that proposal's revision depends on. */
#ifndef METCD_SERVER_MEMBER_CONCURRENCY_H
#define METCD_SERVER_MEMBER_CONCURRENCY_H

#include "server/member/internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Lock and Election calls (and their clean-ups) alive at once; past it new
 * calls fail with "etcdserver: too many requests". */
#define CONC_MAX_OPS 65536

/* The TTL of a lease the services grant for a call with lease 0, in seconds
 * (concurrency.NewSession's defaultSessionTTL; the services orphan the
 * session at once, so the lease simply runs out unless someone renews it). */
#define CONC_SESSION_TTL 60

/* A recipe's key prefix "name/" and its range end (clientv3.WithPrefix). */
typedef struct conc_prefix {
    uint8_t *key; /* name + "/" */
    size_t len;
    uint8_t *end; /* the prefix's range end */
    size_t end_len;
} conc_prefix;

/* Fills p from name (copied). Returns 0 or MERR_INTERNAL (no memory). */
int conc_prefix_init(conc_prefix *p, const uint8_t *name, size_t name_len);
void conc_prefix_free(conc_prefix *p);

/* A session's key under an election or lock: name "/" lease in lowercase
 * hex, as etcd formats it with Go's %x on an int64 (a negative lease is "-"
 * and the hex of its magnitude). Caller frees with metcd_free; *len gets
 * the length; NULL on no memory. */
uint8_t *conc_key(const uint8_t *name, size_t name_len, int64_t lease, size_t *len);

/* Local read of the key under p with the lowest create revision (first:
 * clientv3.WithFirstCreate) or the highest one not above max_create_rev
 * (!first: WithLastCreate + WithMaxCreateRev; 0 = no bound). res holds at
 * most one kv; res->resp.revision is the current revision. Caller frees res
 * with mvcc_result_free. */
int conc_range_edge(member *m, const conc_prefix *p, bool first, int64_t max_create_rev,
                    mvcc_result *res);

/* One operation of a recipe's txn. Everything is borrowed for the call. */
typedef struct conc_op {
    int type; /* MVCC_OP_PUT, MVCC_OP_RANGE or MVCC_OP_DELETE */
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value; /* put */
    size_t value_len;
    int64_t lease;          /* put */
    const conc_prefix *pfx; /* range: the first-created key under pfx instead of key */
} conc_op;

/* Proposes "if create_revision(key) == cmp_rev then `then` else `els`"
 * (at most 2 ops a branch) and runs done(arg) with the applied TxnResponse
 * (member_propose's contract). The txn is checked as etcd's gRPC layer
 * checks it first (an empty key: "etcdserver: key is not provided").
 * Returns 0, or an error with done never called. */
int conc_propose_txn(member *m, const uint8_t *key, size_t key_len, int64_t cmp_rev,
                     const conc_op *then, size_t nthen, const conc_op *els, size_t nels,
                     member_done_fn done, void *arg);

/* Proposes DeleteRange(key) (etcd's Mutex.Unlock); done as above with the
 * DeleteRangeResponse. Returns 0, or an error with done never called. */
int conc_propose_delete(member *m, const uint8_t *key, size_t key_len, member_done_fn done,
                        void *arg);

/* etcd runs Lock and Election on an in-process client that carries the
 * caller's token, so with auth enabled the caller needs the permissions of
 * the recipe's requests. Checked once, when the call starts: read on the
 * prefix name "/" (when name is given), write on wkey (when given) and
 * read on it too when read_wkey (a compare). A session (Lock, Campaign)
 * also writes its key name "/" lease (read and write checked), or with
 * lease 0 (the key is not known before the server grants a lease) needs
 * write on the whole prefix. Fails the call as the services relay errors
 * and returns true when refused. */
bool conc_auth_refused(member *m, struct rpc_call *call, const uint8_t *name, size_t name_len,
                       bool session, int64_t lease, const uint8_t *wkey, size_t wkey_len,
                       bool read_wkey);

/* ---- waitDeletes --------------------------------------------------------------- */

typedef struct wait_deletes wait_deletes;

/* rc 0: no key under the prefix has a create revision at or below the
 * bound any more, and rev is the revision of the read that saw it (etcd
 * answers with that read's header); or rc is an error (the watch was
 * compacted away, the store failed or stopped). */
typedef void (*wait_deletes_fn)(member *m, void *arg, int rc, int64_t rev);

/* etcd's waitDeletes(pfx, max_create_rev): repeatedly reads the newest key
 * under p created at or below max_create_rev and watches it until it is
 * deleted, so each waiter wakes only for its predecessor (no herd). p is
 * copied. done runs exactly once, never before this returns, unless
 * wait_deletes_cancel comes first; the handle is dead once done has run.
 * Returns 0, or an error with done never called. */
int wait_deletes_start(member *m, const conc_prefix *p, int64_t max_create_rev,
                       wait_deletes_fn done, void *arg, wait_deletes **out);
/* Stops waiting and frees the handle; done will not run. NULL is a no-op. */
void wait_deletes_cancel(wait_deletes *w);

#endif
