/* server/rpc/client_sync.c - the blocking unary wrapper for the CLI: runs
 * the client's own event_base until the status arrives. */
#include "server/rpc/internal.h"

#include "common/mem.h"

#include <string.h>

struct sync_result {
    bool done;
    enum rpc_code code;
    char *msg;
    ProtobufCMessage *resp;
};

static void on_sync_done(const ProtobufCMessage *resp, enum rpc_code code, const char *msg,
                         void *data)
{
    struct sync_result *r = data;
    r->done = true;
    r->code = code;
    r->msg = metcd_strdup(msg ? msg : "");
    if (resp) {
        /* resp is borrowed: keep a copy for the caller. */
        size_t n = protobuf_c_message_get_packed_size(resp);
        uint8_t *buf = metcd_malloc(n ? n : 1);
        if (buf) {
            protobuf_c_message_pack(resp, buf);
            r->resp = protobuf_c_message_unpack(resp->descriptor, &metcd_pb_allocator, n, buf);
            metcd_free(buf);
        }
        if (!r->resp) {
            r->code = RPC_CODE_RESOURCE_EXHAUSTED;
            metcd_free(r->msg);
            r->msg = metcd_strdup("grpc: out of memory");
        }
    }
}

int rpc_client_unary_sync(struct rpc_client *cl, const char *path, const ProtobufCMessage *req,
                          const ProtobufCMessageDescriptor *response, const struct rpc_md *md,
                          size_t n_md, uint32_t timeout_ms, ProtobufCMessage **resp,
                          enum rpc_code *code, char **errmsg)
{
    if (!cl || !resp || !code)
        return RPC_ERR_INVAL;
    *resp = NULL;
    if (errmsg)
        *errmsg = NULL;
    struct sync_result r = {0};
    int rc = rpc_client_unary(cl, path, req, response, md, n_md, timeout_ms, on_sync_done, &r);
    if (rc != 0)
        return rc;
    struct event_base *base = rpc_client_base(cl);
    while (!r.done)
        if (event_base_loop(base, EVLOOP_ONCE) != 0)
            break; /* error, or nothing left that could finish the call */
    if (!r.done) {
        /* The loop failed: cancel so the callback still runs. */
        rpc_client_cancel_all(cl);
    }
    *code = r.code;
    *resp = r.resp;
    if (errmsg)
        *errmsg = r.msg;
    else
        metcd_free(r.msg);
    return 0;
}
