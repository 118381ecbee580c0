/* tools/metcdctl/kv.h - what the key-value commands (cmd_kv.c) share with
 * txn (cmd_txn.c): building a get/put/del request from a parsed command
 * line, as etcdctl's getGetOp/getPutOp/getDelOp do, and printing the
 * responses in every output format (etcdctl's printer_*.go layouts).
 * Internal to tools/metcdctl. */
#ifndef METCD_TOOLS_METCDCTL_KV_H
#define METCD_TOOLS_METCDCTL_KV_H

#include "server/etcdserverpb/rpc.pb-c.h"
#include "tools/metcdctl/ctl.h"

/* Every allocation one command makes for its request, freed at once. */
struct kv_mem {
    void **p;
    size_t n, cap;
};
/* Zeroed memory owned by m; NULL when out of memory. */
void *kv_alloc(struct kv_mem *m, size_t n);
void kv_mem_free(struct kv_mem *m);

/* The commands' tables (their flags parse txn's requests too). */
/* ctl_cmd_get, ctl_cmd_put, ctl_cmd_del (ctl.h) parse txn's requests too. */

/* Fill *r from a parsed get/put/del line; 0, or the error printed and the
 * exit status. Keys and values borrow a's strings or live in m. in_txn:
 * a put without a value fails instead of reading the standard input
 * (etcdctl's txn reader has already buffered it). */
int kv_get_op(struct ctl *c, struct kv_mem *m, const struct ctl_args *a,
              Etcdserverpb__RangeRequest *r);
int kv_put_op(struct ctl *c, struct kv_mem *m, const struct ctl_args *a, bool in_txn,
              Etcdserverpb__PutRequest *r);
int kv_del_op(struct ctl *c, struct kv_mem *m, const struct ctl_args *a,
              Etcdserverpb__DeleteRangeRequest *r);

/* Prints a Range/Put/DeleteRange/Txn response in c->format; value_only:
 * get --print-value-only. 0 or the exit status (error printed). */
int kv_display(struct ctl *c, const ProtobufCMessage *resp, bool value_only);

#endif
