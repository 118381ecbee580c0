/* server/config/ids.h - member and cluster IDs as etcd 3.4 derives them, and
 * --initial-cluster parsing with etcd's bootstrap checks.
 *
 * Facts (etcd 3.4 etcdserver/api/membership):
 *  - member ID: SHA-1 over the member's peer URLs sorted and concatenated with
 *    nothing between them, then the cluster token, then (only for members
 *    added at runtime) the decimal Unix time in seconds; the first 8 bytes of
 *    the digest read big-endian. A member added at runtime (MemberAdd RPC)
 *    gets an *empty* token and the time of the request: observed with real
 *    etcd, peer URL http://127.0.0.1:42399 at 1795454009 -> 24f817d74baa4440.
 *  - cluster ID: SHA-1 over the member IDs sorted ascending, each as 8
 *    big-endian bytes; the first 8 bytes of the digest, big-endian.
 *  - --initial-cluster is "name=url,name=url2,..."; a name may repeat to give
 *    a member several URLs; empty items are skipped.
 * Checked against the real etcd 3.4.23 (tests/unit/config/test_ids.c).
 *
 * main() after config_parse():
 *     struct ids_cluster cl;
 *     rc = ids_cluster_from_config(&cl, &cfg);
 *     if (rc) exit(config_report(&cfg, rc, stderr));
 *     self = ids_cluster_member(&cl, cfg.name)->id;   cluster = cl.cluster_id;
 *     ids_cluster_free(&cl);
 * Errors there are what etcd logs at C level from etcdmain and exits 1 for
 * (see config_report with CONFIG_ERR_CLUSTER).
 */
#ifndef METCD_SERVER_CONFIG_IDS_H
#define METCD_SERVER_CONFIG_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ids_err {
    IDS_ERR_NOMEM = -1680,
    IDS_ERR_PARSE = -1681,     /* malformed --initial-cluster (errmsg: etcd's text) */
    IDS_ERR_BOOTSTRAP = -1682, /* bootstrap check failed (errmsg: etcd's text) */
    IDS_ERR_CRYPTO = -1683,    /* SHA-1 unavailable */
};

const char *ids_strerror(int err);

/* ID of a member with these peer URLs (borrowed; order does not matter) and
 * cluster token. unix_now: NULL for bootstrap members, else the seconds
 * etcd mixes in for a member added at runtime (`member add`). */
int ids_member_id(const char *const *peer_urls, size_t n, const char *token,
                  const int64_t *unix_now, uint64_t *out);

/* Cluster ID from member IDs (borrowed; order does not matter). */
int ids_cluster_id(const uint64_t *member_ids, size_t n, uint64_t *out);

struct ids_member {
    char *name;
    size_t nurls;
    char **urls; /* sorted, as given (duplicates kept, as etcd does) */
    uint64_t id;
};

/* Members sorted by ID. Everything owned by the cluster. */
struct ids_cluster {
    size_t n;
    struct ids_member *members;
    uint64_t cluster_id;
};

/* Parses --initial-cluster and computes every ID. On error, errmsg holds
 * etcd's message (without the "error setting up initial cluster: " prefix
 * etcdmain adds). out is zeroed on error. Free with ids_cluster_free. */
int ids_cluster_parse(struct ids_cluster *out, const char *initial_cluster, const char *token,
                      char *errmsg, size_t errlen);

void ids_cluster_free(struct ids_cluster *c);

/* Member by name (borrowed from c) or NULL. */
const struct ids_member *ids_cluster_member(const struct ids_cluster *c, const char *name);

/* etcd's checks before bootstrapping (new) or joining (existing), in etcd's
 * order: the local name is in the cluster, its URLs equal
 * --initial-advertise-peer-urls (string comparison; etcd also resolves DNS
 * names), no URL appears twice, no two members share an ID. */
int ids_verify_bootstrap(const struct ids_cluster *c, const char *name,
                         const char *const *adv_peer_urls, size_t n, bool existing, char *errmsg,
                         size_t errlen);

struct config;

/* What main() calls: parses cfg->initial_cluster with the cluster token and
 * runs ids_verify_bootstrap for cfg->name, --initial-advertise-peer-urls and
 * --initial-cluster-state. Returns 0 (out filled, free with
 * ids_cluster_free), CONFIG_ERR_CLUSTER with etcd's text in cfg->errmsg
 * (config_report prints it as etcd's C-level etcdmain line, exit 1), or
 * CONFIG_ERR_NOMEM. */
int ids_cluster_from_config(struct ids_cluster *out, struct config *cfg);

/* "name=url,..." sorted (etcd's URLsMap.String); caller frees with metcd_free. */
char *ids_cluster_string(const struct ids_cluster *c);

#endif
