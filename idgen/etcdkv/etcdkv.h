/* idgen/etcdkv/etcdkv.h - idgen's KV interface (idgen/idgen.h) in etcd's
 * protobuf messages: the TxnRequest a member proposes and a client sends
 * for an idgen_txn, and the idgen results of what comes back. Shared by
 * the member's implementation (server/member/idgen_kv.c) and the gRPC one
 * (idgen/client). */
#ifndef METCD_IDGEN_ETCDKV_H
#define METCD_IDGEN_ETCDKV_H

#include "idgen/idgen.h"
#include "server/etcdserverpb/rpc.pb-c.h"

/* A TxnRequest for an idgen_txn. `req` points into memory this object
 * owns and into the idgen_txn's keys and values (borrowed: they must
 * outlive the request's use, which is one pack). */
typedef struct idgen_etcd_txn {
    Etcdserverpb__TxnRequest req;
    void *mem; /* private */
} idgen_etcd_txn;

/* 0 or IDGEN_ENOMEM (out is then empty). Free with idgen_etcd_txn_free. */
int idgen_etcd_txn_build(const idgen_txn *t, idgen_etcd_txn *out);
void idgen_etcd_txn_free(idgen_etcd_txn *x);

/* The range end of every key starting with key[0..len) (etcd's
 * GetPrefixRangeEnd): written into out (len bytes at most); returns its
 * length (1 with out[0] = 0 when every byte is 0xff: "to the end"). */
size_t idgen_etcd_prefix_end(const char *key, size_t len, char *out);

/* A KeyValue as an idgen pair (pointers into kv). */
void idgen_etcd_pair(const Mvccpb__KeyValue *kv, idgen_kv_pair *out);

/* The idgen result of a TxnResponse: out->ops and the pairs they hold are
 * arrays this object owns; keys and values point into r (borrowed). */
typedef struct idgen_etcd_result {
    idgen_txn_result r;
    void *mem; /* private */
} idgen_etcd_result;
int idgen_etcd_txn_result(const Etcdserverpb__TxnResponse *r, idgen_etcd_result *out);
void idgen_etcd_result_free(idgen_etcd_result *x);

#endif
