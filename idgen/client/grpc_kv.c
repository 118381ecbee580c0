/* idgen/client/grpc_kv.c - idgen's KV interface over etcd's gRPC API (see
 * internal.h): the same calls a member makes inside itself
 * (server/member/idgen_kv.c), made by an application over the network.
 *
 *   txn        KV/Txn (the TxnRequest of idgen/etcdkv)
 *   get        KV/Range (linearizable)
 *   grant      Lease/LeaseGrant; revoke: Lease/LeaseRevoke ("not found"
 *              counts as done)
 *   keep-alive one Lease/LeaseKeepAlive stream, opened on first use and
 *              again after it closes; an answer with TTL <= 0 means the
 *              lease is gone (IDGEN_ELOST); one not answered within the
 *              call timeout fails (IDGEN_EKV)
 *   watch      one Watch stream per watch
 *
 * Every failure reaches idgen as IDGEN_EKV (or IDGEN_ELOST), once. */
#include "idgen/client/internal.h"

#include "common/mem.h"
#include "idgen/etcdkv/etcdkv.h"
#include "server/etcdserverpb/rpc.pb-c.h"

#include <event2/event.h>
#include <string.h>
#include <time.h>

#define SWEEP_MS 500

struct ka_wait {
    int64_t id;
    int64_t sent_ms;
    idgen_lease_fn done;
    void *arg;
    struct ka_wait *next;
};

struct gwatch {
    grpc_kv *g;
    struct rpc_ccall *call;
    idgen_watch_fn fn;
    void *arg;
    bool cancelled, ended;
    struct gwatch *prev, *next;
};

struct grpc_kv {
    grpc_kv_config cfg;
    char **endpoints;
    struct rpc_client *rpc;
    char *token;
    struct rpc_md md;
    struct rpc_ccall *ka;
    struct ka_wait *ka_head, *ka_tail;
    struct event *sweep_ev;
    struct gwatch *watches;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void enter(grpc_kv *g)
{
    if (g->cfg.enter)
        g->cfg.enter(g->cfg.lock_arg);
}

static void leave(grpc_kv *g)
{
    if (g->cfg.leave)
        g->cfg.leave(g->cfg.lock_arg);
}

static const struct rpc_md *md_of(const grpc_kv *g, size_t *n)
{
    *n = g->token ? 1 : 0;
    return g->token ? &g->md : NULL;
}

/* ---- unary calls --------------------------------------------------------------------------- */

enum unary_kind { U_TXN, U_GET, U_GRANT, U_REVOKE };

struct unary {
    grpc_kv *g;
    int kind;
    idgen_txn_fn txn_done;
    idgen_get_fn get_done;
    idgen_lease_fn lease_done;
    void *arg;
};

static void on_unary(const ProtobufCMessage *resp, enum rpc_code code, const char *msg, void *data)
{
    (void)msg;
    struct unary *u = data;
    grpc_kv *g = u->g;
    int rc = code == RPC_CODE_OK && resp ? 0 : IDGEN_EKV;
    enter(g);
    switch (u->kind) {
    case U_TXN: {
        idgen_etcd_result res;
        if (rc == 0)
            rc = idgen_etcd_txn_result((const Etcdserverpb__TxnResponse *)resp, &res);
        u->txn_done(u->arg, rc, rc ? NULL : &res.r);
        if (rc == 0)
            idgen_etcd_result_free(&res);
        break;
    }
    case U_GET: {
        const Etcdserverpb__RangeResponse *r = (const Etcdserverpb__RangeResponse *)resp;
        idgen_kv_pair *pairs = rc ? NULL : metcd_calloc(r->n_kvs + 1, sizeof(*pairs));
        if (rc == 0 && !pairs)
            rc = IDGEN_ENOMEM;
        if (rc == 0) {
            for (size_t i = 0; i < r->n_kvs; i++)
                idgen_etcd_pair(r->kvs[i], &pairs[i]);
            u->get_done(u->arg, 0, pairs, r->n_kvs, r->header ? r->header->revision : 0);
        } else {
            u->get_done(u->arg, rc, NULL, 0, 0);
        }
        metcd_free(pairs);
        break;
    }
    case U_GRANT: {
        const Etcdserverpb__LeaseGrantResponse *r = (const Etcdserverpb__LeaseGrantResponse *)resp;
        if (rc == 0 && r->error && r->error[0])
            rc = IDGEN_EKV;
        u->lease_done(u->arg, rc, rc ? 0 : r->id, rc ? 0 : r->ttl);
        break;
    }
    default:
        u->lease_done(u->arg, rc && code != RPC_CODE_NOT_FOUND ? rc : 0, 0, 0);
        break;
    }
    leave(g);
    metcd_free(u);
}

static int start_unary(grpc_kv *g, struct unary *u, const char *path, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *resp)
{
    u->g = g;
    size_t n_md;
    const struct rpc_md *md = md_of(g, &n_md);
    int rc = rpc_client_unary(g->rpc, path, req, resp, md, n_md, g->cfg.timeout_ms, on_unary, u);
    if (rc != 0) {
        metcd_free(u);
        return IDGEN_EKV;
    }
    return 0;
}

static struct unary *unary_new(int kind, void *arg)
{
    struct unary *u = metcd_calloc(1, sizeof(*u));
    if (u) {
        u->kind = kind;
        u->arg = arg;
    }
    return u;
}

static int g_txn(void *kv, const idgen_txn *t, idgen_txn_fn done, void *arg)
{
    grpc_kv *g = kv;
    struct unary *u = unary_new(U_TXN, arg);
    if (!u)
        return IDGEN_ENOMEM;
    u->txn_done = done;
    idgen_etcd_txn et;
    if (idgen_etcd_txn_build(t, &et) != 0) {
        metcd_free(u);
        return IDGEN_ENOMEM;
    }
    int rc = start_unary(g, u, "/etcdserverpb.KV/Txn", &et.req.base,
                         &etcdserverpb__txn_response__descriptor);
    idgen_etcd_txn_free(&et);
    return rc;
}

static int g_get(void *kv, const char *key, size_t key_len, bool prefix, idgen_get_fn done,
                 void *arg)
{
    grpc_kv *g = kv;
    struct unary *u = unary_new(U_GET, arg);
    char *end = metcd_malloc(key_len + 1);
    if (!u || !end) {
        metcd_free(u);
        metcd_free(end);
        return IDGEN_ENOMEM;
    }
    u->get_done = done;
    Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
    r.key.data = (uint8_t *)key;
    r.key.len = key_len;
    if (prefix) {
        r.range_end.data = (uint8_t *)end;
        r.range_end.len = idgen_etcd_prefix_end(key, key_len, end);
    }
    int rc = start_unary(g, u, "/etcdserverpb.KV/Range", &r.base,
                         &etcdserverpb__range_response__descriptor);
    metcd_free(end);
    return rc;
}

static int g_grant(void *kv, int64_t ttl, idgen_lease_fn done, void *arg)
{
    grpc_kv *g = kv;
    struct unary *u = unary_new(U_GRANT, arg);
    if (!u)
        return IDGEN_ENOMEM;
    u->lease_done = done;
    Etcdserverpb__LeaseGrantRequest r = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    r.ttl = ttl;
    return start_unary(g, u, "/etcdserverpb.Lease/LeaseGrant", &r.base,
                       &etcdserverpb__lease_grant_response__descriptor);
}

static int g_revoke(void *kv, int64_t id, idgen_lease_fn done, void *arg)
{
    grpc_kv *g = kv;
    struct unary *u = unary_new(U_REVOKE, arg);
    if (!u)
        return IDGEN_ENOMEM;
    u->lease_done = done;
    Etcdserverpb__LeaseRevokeRequest r = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
    r.id = id;
    return start_unary(g, u, "/etcdserverpb.Lease/LeaseRevoke", &r.base,
                       &etcdserverpb__lease_revoke_response__descriptor);
}

/* ---- keep-alives ------------------------------------------------------------------------ */

/* Answers (and frees) the first waiting keep-alive for id, or the first
 * one of all when id is 0. */
static bool ka_answer(grpc_kv *g, int64_t id, int rc, int64_t ttl)
{
    struct ka_wait **pp = &g->ka_head, *prev = NULL;
    while (*pp && id && (*pp)->id != id) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    struct ka_wait *w = *pp;
    if (!w)
        return false;
    *pp = w->next;
    if (g->ka_tail == w)
        g->ka_tail = prev;
    enter(g);
    w->done(w->arg, rc, w->id, ttl);
    leave(g);
    metcd_free(w);
    return true;
}

static void ka_message(struct rpc_ccall *c, const ProtobufCMessage *msg, void *data)
{
    (void)c;
    grpc_kv *g = data;
    const Etcdserverpb__LeaseKeepAliveResponse *r =
        (const Etcdserverpb__LeaseKeepAliveResponse *)msg;
    ka_answer(g, r->id, r->ttl > 0 ? 0 : IDGEN_ELOST, r->ttl);
}

static void ka_close(struct rpc_ccall *c, enum rpc_code code, const char *msg, void *data)
{
    (void)c;
    (void)code;
    (void)msg;
    grpc_kv *g = data;
    g->ka = NULL;
    while (ka_answer(g, 0, IDGEN_EKV, 0)) {
    }
}

static const struct rpc_ccall_ops ka_ops = {ka_message, ka_close, NULL};

static int g_keepalive(void *kv, int64_t id, idgen_lease_fn done, void *arg)
{
    grpc_kv *g = kv;
    size_t n_md;
    const struct rpc_md *md = md_of(g, &n_md);
    if (!g->ka && rpc_ccall_start(g->rpc, "/etcdserverpb.Lease/LeaseKeepAlive",
                                  &etcdserverpb__lease_keep_alive_response__descriptor, md, n_md, 0,
                                  &ka_ops, g, &g->ka) != 0) {
        g->ka = NULL;
        return IDGEN_EKV;
    }
    struct ka_wait *w = metcd_calloc(1, sizeof(*w));
    if (!w)
        return IDGEN_ENOMEM;
    Etcdserverpb__LeaseKeepAliveRequest r = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
    r.id = id;
    if (rpc_ccall_send(g->ka, &r.base) != 0) {
        metcd_free(w);
        return IDGEN_EKV;
    }
    *w = (struct ka_wait){.id = id, .sent_ms = mono_ms(), .done = done, .arg = arg};
    if (g->ka_tail)
        g->ka_tail->next = w;
    else
        g->ka_head = w;
    g->ka_tail = w;
    return 0;
}

/* Keep-alives nobody answered in time fail (the stream may be stuck). */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    grpc_kv *g = arg;
    int64_t now = mono_ms();
    while (g->ka_head && now - g->ka_head->sent_ms > (int64_t)g->cfg.timeout_ms)
        ka_answer(g, g->ka_head->id, IDGEN_EKV, 0);
}

/* ---- watches ---------------------------------------------------------------------------- */

static void gw_unlink(struct gwatch *w)
{
    grpc_kv *g = w->g;
    if (w->prev)
        w->prev->next = w->next;
    else if (g->watches == w)
        g->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

static void gw_end(struct gwatch *w)
{
    if (w->ended || w->cancelled)
        return;
    w->ended = true;
    enter(w->g);
    w->fn(w->arg, IDGEN_EKV, NULL, 0, 0);
    leave(w->g);
}

static void gw_message(struct rpc_ccall *c, const ProtobufCMessage *msg, void *data)
{
    (void)c;
    struct gwatch *w = data;
    const Etcdserverpb__WatchResponse *r = (const Etcdserverpb__WatchResponse *)msg;
    if (w->ended || w->cancelled)
        return;
    if (r->canceled) {
        gw_end(w);
        return;
    }
    if (!r->n_events)
        return;
    idgen_watch_event *ev = metcd_calloc(r->n_events, sizeof(*ev));
    if (!ev) {
        gw_end(w); /* the caller lists again */
        return;
    }
    for (size_t i = 0; i < r->n_events; i++) {
        ev[i].type = r->events[i]->type == MVCCPB__EVENT__EVENT_TYPE__DELETE ? IDGEN_WATCH_DELETE
                                                                             : IDGEN_WATCH_PUT;
        if (r->events[i]->kv)
            idgen_etcd_pair(r->events[i]->kv, &ev[i].kv);
    }
    enter(w->g);
    for (size_t i = 0; i < r->n_events && !w->cancelled;) {
        size_t j = i + 1;
        while (j < r->n_events && ev[j].kv.mod_rev == ev[i].kv.mod_rev)
            j++;
        w->fn(w->arg, 0, ev + i, j - i, ev[i].kv.mod_rev);
        i = j;
    }
    leave(w->g);
    metcd_free(ev);
}

static void gw_close(struct rpc_ccall *c, enum rpc_code code, const char *msg, void *data)
{
    (void)c;
    (void)code;
    (void)msg;
    struct gwatch *w = data;
    w->call = NULL;
    gw_end(w);
    if (w->cancelled) { /* the handle is gone: nothing else refers to w */
        metcd_free(w);
    }
}

static const struct rpc_ccall_ops gw_ops = {gw_message, gw_close, NULL};

static int g_watch(void *kv, const char *prefix, size_t len, int64_t start_rev, idgen_watch_fn fn,
                   void *arg, void **handle)
{
    grpc_kv *g = kv;
    struct gwatch *w = metcd_calloc(1, sizeof(*w));
    char *end = metcd_malloc(len + 1);
    if (!w || !end) {
        metcd_free(w);
        metcd_free(end);
        return IDGEN_ENOMEM;
    }
    w->g = g;
    w->fn = fn;
    w->arg = arg;
    size_t n_md;
    const struct rpc_md *md = md_of(g, &n_md);
    int rc = rpc_ccall_start(g->rpc, "/etcdserverpb.Watch/Watch",
                             &etcdserverpb__watch_response__descriptor, md, n_md, 0, &gw_ops, w,
                             &w->call);
    if (rc == 0) {
        Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
        cr.key.data = (uint8_t *)prefix;
        cr.key.len = len;
        cr.range_end.data = (uint8_t *)end;
        cr.range_end.len = idgen_etcd_prefix_end(prefix, len, end);
        cr.start_revision = start_rev;
        Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
        req.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
        req.create_request = &cr;
        if (rpc_ccall_send(w->call, &req.base) != 0) {
            w->cancelled = true; /* gw_close frees w */
            rpc_ccall_cancel(w->call);
            metcd_free(end);
            return IDGEN_EKV;
        }
    }
    metcd_free(end);
    if (rc != 0) {
        metcd_free(w);
        return IDGEN_EKV;
    }
    w->next = g->watches;
    if (w->next)
        w->next->prev = w;
    g->watches = w;
    *handle = w;
    return 0;
}

static void g_watch_cancel(void *kv, void *handle)
{
    (void)kv;
    struct gwatch *w = handle;
    gw_unlink(w);
    w->cancelled = true;
    if (w->call)
        rpc_ccall_cancel(w->call); /* gw_close frees w */
    else
        metcd_free(w);
}

static const idgen_kv_ops grpc_kv_ops = {
    .txn = g_txn,
    .get = g_get,
    .lease_grant = g_grant,
    .lease_keepalive = g_keepalive,
    .lease_revoke = g_revoke,
    .watch = g_watch,
    .watch_cancel = g_watch_cancel,
};

/* ---- life ------------------------------------------------------------------------------- */

int grpc_kv_new(grpc_kv **out, const grpc_kv_config *cfg)
{
    *out = NULL;
    grpc_kv *g = metcd_calloc(1, sizeof(*g));
    if (!g)
        return IDGEN_ENOMEM;
    g->cfg = *cfg;
    g->endpoints = metcd_calloc(cfg->n_endpoints + 1, sizeof(*g->endpoints));
    int rc = g->endpoints ? 0 : IDGEN_ENOMEM;
    for (size_t i = 0; rc == 0 && i < cfg->n_endpoints; i++)
        if (!(g->endpoints[i] = metcd_strdup(cfg->endpoints[i])))
            rc = IDGEN_ENOMEM;
    if (rc == 0) {
        struct rpc_client_config rc_cfg = {
            .endpoints = (const char *const *)g->endpoints,
            .n_endpoints = cfg->n_endpoints,
            .dial_timeout_ms = cfg->timeout_ms,
            .target = "idgen client",
        };
        rc = rpc_client_new(&g->rpc, cfg->base, &rc_cfg) == 0 ? 0 : IDGEN_EKV;
    }
    if (rc == 0) {
        g->sweep_ev = event_new(cfg->base, -1, EV_PERSIST, on_sweep, g);
        struct timeval tv = {0, SWEEP_MS * 1000};
        if (!g->sweep_ev || event_add(g->sweep_ev, &tv) != 0)
            rc = IDGEN_ENOMEM;
    }
    if (rc != 0) {
        grpc_kv_free(g);
        return rc;
    }
    g->cfg.endpoints = NULL; /* the copies above */
    *out = g;
    return 0;
}

int grpc_kv_set_token(grpc_kv *g, const char *token)
{
    char *t = token ? metcd_strdup(token) : NULL;
    if (token && !t)
        return IDGEN_ENOMEM;
    metcd_free(g->token);
    g->token = t;
    g->md.key = "token";
    g->md.value = t;
    return 0;
}

struct rpc_client *grpc_kv_rpc(grpc_kv *g)
{
    return g->rpc;
}

void grpc_kv_iface(grpc_kv *g, idgen_kv *out)
{
    out->ops = &grpc_kv_ops;
    out->data = g;
}

void grpc_kv_free(grpc_kv *g)
{
    if (!g)
        return;
    if (g->sweep_ev)
        event_free(g->sweep_ev);
    while (g->watches) { /* their owners are gone: end them without a word */
        struct gwatch *w = g->watches;
        gw_unlink(w);
        w->cancelled = true;
        if (w->call)
            rpc_ccall_cancel(w->call);
        else
            metcd_free(w);
    }
    rpc_client_free(g->rpc); /* unary calls and the keep-alive stream close with errors */
    while (ka_answer(g, 0, IDGEN_EKV, 0)) {
    }
    for (size_t i = 0; g->endpoints && i < g->cfg.n_endpoints; i++)
        metcd_free(g->endpoints[i]);
    metcd_free(g->endpoints);
    metcd_free(g->token);
    metcd_free(g);
}
