/* tests/unit/idgen/fake_kv.h - an in-memory KV store behind idgen's KV
 * interface, with a fake clock, for the unit tests.
 *
 * Revisions, create/mod revisions, leases (expiring by the fake clock) with
 * attached keys, txns with compares, and prefix watches behave as etcd's.
 * Two delivery modes: immediate (every op completes inside the call), or
 * deferred: ops queue up and are applied and answered one at a time by
 * fake_step(), in FIFO or a seeded random order, so tests can interleave
 * concurrent clients as raft would order their proposals. */
#ifndef METCD_TESTS_IDGEN_FAKE_KV_H
#define METCD_TESTS_IDGEN_FAKE_KV_H

#include "idgen/idgen.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fake_kv fake_kv;

fake_kv *fake_new(int64_t now_ms);
void fake_free(fake_kv *f);

/* The interface and the clock to hand to idgen. */
const idgen_kv *fake_kv_iface(fake_kv *f);
const idgen_clock *fake_clock(fake_kv *f);

/* The clock (Unix ms). Setting it expires leases whose time has come. */
int64_t fake_now(const fake_kv *f);
void fake_set_now(fake_kv *f, int64_t now_ms);
void fake_advance(fake_kv *f, int64_t ms);

/* Delivery. */
void fake_set_deferred(fake_kv *f, bool deferred);
/* Shuffle the queue before each step with this seed (0: FIFO). */
void fake_set_random(fake_kv *f, uint64_t seed);
size_t fake_queued(const fake_kv *f);
/* Applies and answers one queued op; false when none. */
bool fake_step(fake_kv *f);
/* The same for the newest queued op (one that overtakes the others). */
bool fake_step_last(fake_kv *f);
/* Steps until the queue is empty (ops queued by answers too). */
size_t fake_drain(fake_kv *f);

/* Failures: while down, every op is answered with IDGEN_EKV (a timeout)
 * and changes nothing; lease time still runs. */
void fake_set_down(fake_kv *f, bool down);
/* Ends every watch with rc (as a compaction would). */
void fake_break_watches(fake_kv *f, int rc);

/* Direct access (no op, no delivery): returns the value (NUL-terminated
 * copy owned by the fake until the next change) or NULL. */
const char *fake_get(fake_kv *f, const char *key);
const idgen_kv_pair *fake_get_pair(fake_kv *f, const char *key);
void fake_put(fake_kv *f, const char *key, const char *value);
void fake_del(fake_kv *f, const char *key);
size_t fake_count_prefix(fake_kv *f, const char *prefix);
int64_t fake_rev(const fake_kv *f);
bool fake_lease_alive(const fake_kv *f, int64_t id);
size_t fake_leases(const fake_kv *f);

/* Counters of ops started. */
typedef struct fake_stats {
    uint64_t txns, gets, grants, keepalives, revokes, watches;
} fake_stats;
void fake_get_stats(const fake_kv *f, fake_stats *out);

#endif
