/* idgen/client/internal.h - shared by idgen/client's own files only. */
#ifndef METCD_IDGEN_CLIENT_INTERNAL_H
#define METCD_IDGEN_CLIENT_INTERNAL_H

#include "idgen/client/idgen_client.h"
#include "server/rpc/rpc.h"

struct event_base;

/* idgen's KV interface over the gRPC client (grpc_kv.c): KV/Txn and
 * KV/Range, Lease/LeaseGrant, LeaseRevoke and one LeaseKeepAlive stream,
 * Watch streams. Everything runs on the loop of `base`. Every completion
 * into idgen runs between enter() and leave() (the client's lock). */
typedef struct grpc_kv grpc_kv;

typedef struct grpc_kv_config {
    struct event_base *base;
    const char *const *endpoints;
    size_t n_endpoints;
    uint32_t timeout_ms; /* each unary call, and a keep-alive's answer */
    void (*enter)(void *arg);
    void (*leave)(void *arg);
    void *lock_arg;
} grpc_kv_config;

/* cfg is copied (endpoints too). Free with grpc_kv_free. */
int grpc_kv_new(grpc_kv **out, const grpc_kv_config *cfg);
/* Sets the auth token sent with every call from now on (copied; NULL:
 * none). IDGEN_ENOMEM. */
int grpc_kv_set_token(grpc_kv *g, const char *token);
/* The rpc client, for calls of the client's own (Authenticate). */
struct rpc_client *grpc_kv_rpc(grpc_kv *g);
void grpc_kv_iface(grpc_kv *g, idgen_kv *out);
/* Closes the connection: calls in flight complete with IDGEN_EKV first.
 * NULL is a no-op. */
void grpc_kv_free(grpc_kv *g);

#endif
