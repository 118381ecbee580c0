/* tools/metcdctl/ctl_session.h - what metcdctl's lease, lock and elect
 * commands share: hex lease IDs, the ResponseHeader as clientv3's structs
 * embed it in JSON, and a lease kept alive over a LeaseKeepAlive stream
 * (clientv3's KeepAlive: one request, then one every TTL/3 after each
 * answer). Internal to tools/metcdctl. */
#ifndef METCD_TOOLS_METCDCTL_CTL_SESSION_H
#define METCD_TOOLS_METCDCTL_CTL_SESSION_H

#include "server/etcdserverpb/rpc.pb-c.h"
#include "tools/metcdctl/ctl.h"

/* Parses a lease ID as etcdctl does (hex, strconv.ParseInt(s, 16, 64)).
 * 0, or prints etcdctl's "bad lease ID arg" error and returns its exit
 * status. */
int ctl_lease_parse_id(struct ctl *c, const char *s, int64_t *id);

/* Writes h's non-zero fields as "cluster_id":N,... (Go's json of an
 * embedded *pb.ResponseHeader), each preceded by a comma unless *first;
 * clears *first when it writes one. h may be NULL. */
void ctl_json_header_fields(FILE *out, const Etcdserverpb__ResponseHeader *h, bool *first);

/* A lease kept alive on c->base (the caller runs the loop). */
struct ctl_keepalive;
/* Each answer with a live lease (h borrowed until return). */
typedef void (*ctl_ka_response_fn)(int64_t id, int64_t ttl, const Etcdserverpb__ResponseHeader *h,
                                   void *data);
/* Once, when keeping alive ends: code CTL_KA_LEASE_GONE when the server
 * says the lease is expired or revoked (TTL <= 0), else the stream's gRPC
 * code with its message (borrowed). Not called after ctl_keepalive_stop. */
#define CTL_KA_LEASE_GONE (-1)
typedef void (*ctl_ka_end_fn)(int code, const char *msg, void *data);

/* Starts keeping lease id alive: the first request goes out now. c must be
 * connected. 0 or a negative rpc error; *out freed by ctl_keepalive_stop. */
int ctl_keepalive_start(struct ctl *c, int64_t id, ctl_ka_response_fn on_response,
                        ctl_ka_end_fn on_end, void *data, struct ctl_keepalive **out);
/* Stops and frees (NULL allowed); no callback runs after it. */
void ctl_keepalive_stop(struct ctl_keepalive *ka);

#endif
