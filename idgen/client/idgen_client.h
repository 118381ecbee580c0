/* idgen/client/idgen_client.h - snowflake IDs in an application, without
 * an RPC per ID: the seed's Worker (idgen/idgen.h) over metcd's (or etcd
 * 3.4's) gRPC API.
 *
 * A client owns one thread running its own event loop: the gRPC
 * connection (etcdserverpb KV, Lease, Watch), the worker's registration,
 * keep-alives and uploads of its stored bound. IDs are made in the
 * caller's thread under a lock: a few hundred nanoseconds per call, up to
 * the layout's 4096 per millisecond.
 *
 *   idgen_client *c;
 *   char err[256];
 *   const char *eps[] = {"127.0.0.1:2379", "127.0.0.1:22379"};
 *   idgen_client_config cfg = {.endpoints = eps, .n_endpoints = 2};
 *   if (idgen_client_new(&c, &cfg, err, sizeof(err)) != 0) ... err says why
 *   if (idgen_client_wait_ready(c, 10000) != 0) ...
 *   uint64_t id;
 *   int rc = idgen_client_next(c, &id); // 0, or an idgen error: idgen_strerror(rc)
 *   idgen_client_stop(c);               // leave: the worker id is free again
 *   idgen_client_free(c);
 *
 * See idgen/client/example.c. Every function is thread-safe except
 * idgen_client_free, which must be the last call.
 */
#ifndef METCD_IDGEN_CLIENT_H
#define METCD_IDGEN_CLIENT_H

#include "idgen/idgen.h"

#include <stddef.h>
#include <stdint.h>

typedef struct idgen_client idgen_client;

typedef struct idgen_client_config {
    /* "host:port" or "http://host:port"; copied. At least one; on failure
     * the next one is used. */
    const char *const *endpoints;
    size_t n_endpoints;
    /* etcd authentication (Authenticate, then the token on every call);
     * NULL: none. */
    const char *user, *password;
    /* The worker (idgen_worker_config; 0 / NULL: its defaults). */
    const char *prefix;
    uint32_t max_workers;
    const char *owner; /* a name no other running worker uses, or NULL */
    const char *info;  /* NULL: "idgen-client <hostname> <pid>" */
    int64_t epoch_ms;
    int64_t lease_ttl_s;
    int64_t max_drift_block_ms, max_drift_error_ms;
    /* Added to the system clock (tests); 0: none. */
    int64_t clock_offset_ms;
    uint32_t call_timeout_ms; /* each call to the cluster; 0: 5000 */
    /* The stopped notification: the worker left for good (reason 0 after
     * idgen_client_stop; IDGEN_EDRIFT_LEAVE when the clock went back too
     * far). Runs on the client's thread; it may call idgen_client_restart
     * but not idgen_client_free. NULL: none. */
    void (*on_stopped)(void *arg, int reason);
    void *arg;
} idgen_client_config;

/* Starts the client's thread and the worker's registration. Returns 0, or
 * IDGEN_EINVAL (err says what) / IDGEN_ENOMEM / IDGEN_EKV (the thread or the
 * connection could not be set up; err says why). cfg and what it points to
 * are copied. Free with idgen_client_free. */
int idgen_client_new(idgen_client **out, const idgen_client_config *cfg, char *err, size_t errlen);

/* Waits until the worker serves (0), up to timeout_ms (IDGEN_ENOT_READY),
 * or until it stopped (IDGEN_ESTOPPED). */
int idgen_client_wait_ready(idgen_client *c, int64_t timeout_ms);

/* One ID. Waits out a clock a little behind (the first drift bucket) and
 * a used-up millisecond; otherwise returns at once: 0, or
 * IDGEN_ENOT_READY ("worker is not ready to serve request"), IDGEN_EDRIFT
 * ("clock drift. try later"), IDGEN_EDRIFT_LEAVE ("clock drift too large
 * to cover": the worker leaves; restart it with idgen_client_restart),
 * IDGEN_ESTOPPED, IDGEN_EEPOCH. */
int idgen_client_next(idgen_client *c, uint64_t *id);

/* count IDs as at most max_out ranges of consecutive IDs (one per
 * millisecond used); *n_out gets the number of ranges. Fewer than count
 * IDs only when max_out ranges are full. Errors as idgen_client_next
 * (with no ID taken). */
int idgen_client_next_n(idgen_client *c, uint64_t count, idgen_range *out, size_t max_out,
                        size_t *n_out);

/* The worker's state (idgen_worker_get_info). */
void idgen_client_info(idgen_client *c, idgen_worker_info *out);

/* Leaves (idgen_worker_stop) and waits for it, up to timeout_ms: 0 or
 * IDGEN_ENOT_READY on timeout. */
int idgen_client_stop(idgen_client *c, int64_t timeout_ms);
/* Joins again after a stop (idgen_worker_restart). */
int idgen_client_restart(idgen_client *c);

/* Stops the thread and frees everything (a worker still registered is not
 * stopped: its lease runs out). NULL is a no-op. */
void idgen_client_free(idgen_client *c);

#endif
