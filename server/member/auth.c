/* server/member/auth.c - etcd 3.4's authentication and role-based access:
 * the auth store (users, roles, key-range permissions, the enabled flag and
 * the auth revision, as auth/store.go defines them), simple tokens
 * (auth/simple_token.go), the permission checks of apply_auth.go and
 * v3_server.go, and the etcdserverpb.Auth service.
 *
 * Every change goes through raft and is applied here on every member.
 * Persisted in the backend (the store is read from it, so it is rebuilt
 * by itself on restart and after a snapshot install):
 *   auth       "authEnabled" -> {1} or {0}, "authRevision" -> u64 BE
 *   authUsers  name -> authpb.User (password: the bcrypt hash)
 *   authRoles  name -> authpb.Role (permissions sorted by key)
 *
 * bcrypt runs on one worker thread (DESIGN.md, Threads): the loop queues a
 * job (hash a new password, or verify one against a stored hash) and the
 * worker hands it back through an eventfd watched by the loop. The worker
 * allocates nothing and touches nothing but the jobs it is given.
 */
#include "server/member/internal.h"

#include "common/mem.h"
#include "server/authpb/auth.pb-c.h"
#include "server/member/auth_jwt.h"
#include "server/member/auth_perm.h"

#include <crypt.h>
#include <errno.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static const char ENABLED_KEY[] = "authEnabled";
static const char REVISION_KEY[] = "authRevision";
static const char ROOT[] = "root";

#define MAX_AUTH_JOBS 1024
#define MAX_TOKENS 65536
#define HASH_MAX 128

/* ---- state ------------------------------------------------------------------------ */

typedef struct auth_token {
    char *token;
    char *user;
    int64_t expire_ms;
    struct auth_token *hnext; /* hash chain */
} auth_token;

#define TOKEN_BUCKETS 4096

enum job_kind { JOB_HASH_ADD, JOB_HASH_CHANGE, JOB_VERIFY };

typedef struct auth_job {
    struct auth_job *next;
    enum job_kind kind;
    struct rpc_call *call; /* NULL once the client went away (loop only) */
    char *name;
    char *password;
    char hash[HASH_MAX]; /* verify: the stored hash; hash: the result */
    bool ok;             /* worker's answer */
    uint64_t checked_rev;
    pending_read *read; /* Authenticate's read barrier, until it is done */
} auth_job;

struct auth_state {
    bool enabled;
    uint64_t revision;
    /* simple tokens, hashed by token */
    auth_token *tokens[TOKEN_BUCKETS];
    size_t n_tokens;
    struct event *sweep_ev;
    /* the bcrypt worker */
    pthread_t thread;
    bool thread_started, quit;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int efd;
    struct event *done_ev;
    auth_job *todo_head, *todo_tail; /* under lock */
    auth_job *done_head, *done_tail; /* under lock */
    size_t n_jobs;                   /* loop only: queued + running + done */
    unsigned cost;
    struct auth_jwt *jwt; /* --auth-token jwt,...: signed tokens instead of the table */
    char user_buf[256];   /* auth_call_info's answer */
};

bool auth_enabled(const member *m)
{
    return m->auth && m->auth->enabled;
}

/* ---- persistence ------------------------------------------------------------------------ */

static Authpb__User *get_user(member *m, const char *name)
{
    backend_val v;
    if (!name || !name[0] || backend_get(m->be, BACKEND_AUTH_USERS, name, strlen(name), &v))
        return NULL;
    return authpb__user__unpack(&metcd_pb_allocator, v.len, v.data);
}

static void free_user(Authpb__User *u)
{
    if (u)
        authpb__user__free_unpacked(u, &metcd_pb_allocator);
}

static Authpb__Role *get_role(member *m, const char *name)
{
    backend_val v;
    if (!name || !name[0] || backend_get(m->be, BACKEND_AUTH_ROLES, name, strlen(name), &v))
        return NULL;
    return authpb__role__unpack(&metcd_pb_allocator, v.len, v.data);
}

static void free_role(Authpb__Role *r)
{
    if (r)
        authpb__role__free_unpacked(r, &metcd_pb_allocator);
}

static int put_msg(member *m, int bucket, const void *key, size_t klen, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = metcd_malloc(len ? len : 1);
    if (!buf)
        return MERR_INTERNAL;
    protobuf_c_message_pack(msg, buf);
    int rc = backend_put(m->be, bucket, key, klen, buf, len, 0);
    metcd_free(buf);
    if (rc)
        member_logf(m, MLOG_ERROR, "auth", "cannot store %s: %s", backend_bucket_name(bucket),
                    backend_errmsg(m->be));
    return rc;
}

static int put_user(member *m, const Authpb__User *u)
{
    return put_msg(m, BACKEND_AUTH_USERS, u->name.data, u->name.len, &u->base);
}

static int put_role(member *m, const Authpb__Role *r)
{
    return put_msg(m, BACKEND_AUTH_ROLES, r->name.data, r->name.len, &r->base);
}

static void commit_revision(member *m)
{
    struct auth_state *a = m->auth;
    a->revision++;
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(a->revision >> (56 - 8 * i));
    backend_put(m->be, BACKEND_AUTH, REVISION_KEY, strlen(REVISION_KEY), b, 8, 0);
}

static bool has_root_role(const Authpb__User *u)
{
    for (size_t i = 0; i < u->n_roles; i++)
        if (strcmp(u->roles[i], ROOT) == 0)
            return true;
    return false;
}

/* ---- tokens (simple_token.go) ------------------------------------------------------------ */

static int64_t token_ttl_ms(const member *m)
{
    return (int64_t)(m->opt.auth_token_ttl ? m->opt.auth_token_ttl : 300) * 1000;
}

static size_t token_bucket(const char *token)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)token; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h & (TOKEN_BUCKETS - 1);
}

/* Unlinks and frees *pp's token. */
static void token_drop(struct auth_state *a, auth_token **pp)
{
    auth_token *t = *pp;
    *pp = t->hnext;
    metcd_free(t->token);
    metcd_free(t->user);
    metcd_free(t);
    a->n_tokens--;
}

/* Drops the tokens for which drop(t, arg) holds. */
static void tokens_drop_if(struct auth_state *a, bool (*drop)(const auth_token *, const void *),
                           const void *arg)
{
    for (size_t b = 0; b < TOKEN_BUCKETS && a->n_tokens; b++)
        for (auth_token **pp = &a->tokens[b]; *pp;)
            if (drop(*pp, arg))
                token_drop(a, pp);
            else
                pp = &(*pp)->hnext;
}

static bool drop_all(const auth_token *t, const void *arg)
{
    (void)t;
    (void)arg;
    return true;
}

static bool drop_user(const auth_token *t, const void *user)
{
    return strcmp(t->user, user) == 0;
}

static bool drop_expired(const auth_token *t, const void *now)
{
    return t->expire_ms <= *(const int64_t *)now;
}

static void tokens_clear(struct auth_state *a)
{
    tokens_drop_if(a, drop_all, NULL);
}

static void tokens_drop_user(struct auth_state *a, const char *user)
{
    tokens_drop_if(a, drop_user, user);
}

static auth_token *token_find(struct auth_state *a, const char *token)
{
    for (auth_token **pp = &a->tokens[token_bucket(token)]; *pp; pp = &(*pp)->hnext) {
        if (strcmp((*pp)->token, token) != 0)
            continue;
        if ((*pp)->expire_ms <= member_now_ms()) {
            token_drop(a, pp);
            return NULL;
        }
        return *pp;
    }
    return NULL;
}

static int token_add(member *m, const char *token, const char *user)
{
    struct auth_state *a = m->auth;
    if (a->n_tokens >= MAX_TOKENS) {
        /* full: the one closest to expiry goes (bounded, DESIGN.md) */
        auth_token **old = NULL;
        for (size_t b = 0; b < TOKEN_BUCKETS; b++)
            for (auth_token **pp = &a->tokens[b]; *pp; pp = &(*pp)->hnext)
                if (!old || (*pp)->expire_ms < (*old)->expire_ms)
                    old = pp;
        if (old)
            token_drop(a, old);
    }
    auth_token *t = metcd_calloc(1, sizeof(*t));
    if (!t)
        return MERR_INTERNAL;
    t->token = metcd_strdup(token);
    t->user = metcd_strdup(user);
    if (!t->token || !t->user) {
        metcd_free(t->token);
        metcd_free(t->user);
        metcd_free(t);
        return MERR_INTERNAL;
    }
    t->expire_ms = member_now_ms() + token_ttl_ms(m);
    size_t b = token_bucket(token);
    t->hnext = a->tokens[b];
    a->tokens[b] = t;
    a->n_tokens++;
    return 0;
}

static void on_token_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    int64_t now = member_now_ms();
    tokens_drop_if(((member *)arg)->auth, drop_expired, &now);
}

/* GenTokenPrefix: 16 random letters. */
static int gen_token_prefix(char out[17])
{
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    uint8_t r[16];
    if (RAND_bytes(r, sizeof(r)) != 1)
        return MERR_INTERNAL;
    for (int i = 0; i < 16; i++)
        out[i] = letters[r[i] % 52];
    out[16] = 0;
    return 0;
}

int auth_call_info(member *m, struct rpc_call *call, const char **user, uint64_t *rev)
{
    *user = NULL;
    *rev = 0;
    const char *tok = call ? rpc_call_metadata(call, "token") : NULL;
    if (!tok)
        tok = call ? rpc_call_metadata(call, "authorization") : NULL;
    if (!tok) {
        /* AuthInfoFromTLS: with --client-cert-auth, the verified client
         * certificate's common name is the user */
        const char *cn = call ? rpc_call_peer_cn(call) : NULL;
        if (m->opt.client_cert_auth && cn && cn[0]) {
            snprintf(m->auth->user_buf, sizeof(m->auth->user_buf), "%s", cn);
            *user = m->auth->user_buf;
            *rev = m->auth->revision;
        }
        return 0;
    }
    if (m->auth->jwt) {
        /* the token says who and at which auth revision (jwt.go's info) */
        if (auth_jwt_verify(m->auth->jwt, tok, auth_jwt_now_s(), m->auth->user_buf,
                            sizeof(m->auth->user_buf), rev) != 0)
            return MERR_INVALID_AUTH_TOKEN;
        *user = m->auth->user_buf;
        return 0;
    }
    auth_token *t = token_find(m->auth, tok);
    if (!t)
        return MERR_INVALID_AUTH_TOKEN;
    t->expire_ms = member_now_ms() + token_ttl_ms(m); /* each use renews it */
    snprintf(m->auth->user_buf, sizeof(m->auth->user_buf), "%s", t->user);
    *user = m->auth->user_buf;
    *rev = m->auth->revision;
    return 0;
}

int auth_stamp(member *m, struct rpc_call *call, Memberpb__Request *req)
{
    if (!call) {
        req->system = true;
        return 0;
    }
    const char *user;
    uint64_t rev;
    int rc = auth_call_info(m, call, &user, &rev);
    if (rc)
        return rc;
    req->username = user ? (char *)user : (char *)"";
    req->auth_revision = rev;
    return 0;
}

/* ---- permission checks (store.go isOpPermitted, range_perm_cache.go) -------------- */

/* The intervals of user's roles that grant `want` (READ or WRITE). The
 * roles stay unpacked in *roles (the intervals point into them). */
static int collect(member *m, const Authpb__User *u, int want, Authpb__Role ***roles_out,
                   auth_ivl **out, size_t *n_out)
{
    Authpb__Role **roles = metcd_calloc(u->n_roles ? u->n_roles : 1, sizeof(*roles));
    if (!roles)
        return MERR_INTERNAL;
    size_t total = 0;
    for (size_t i = 0; i < u->n_roles; i++) {
        roles[i] = get_role(m, u->roles[i]);
        if (roles[i])
            total += roles[i]->n_keypermission;
    }
    auth_ivl *v = metcd_calloc(total ? total : 1, sizeof(*v));
    if (!v) {
        for (size_t i = 0; i < u->n_roles; i++)
            free_role(roles[i]);
        metcd_free(roles);
        return MERR_INTERNAL;
    }
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < u->n_roles && rc == 0; i++) {
        if (!roles[i])
            continue;
        for (size_t j = 0; j < roles[i]->n_keypermission; j++) {
            const Authpb__Permission *p = roles[i]->keypermission[j];
            bool rw = p->permtype == AUTHPB__PERMISSION__TYPE__READWRITE;
            if (!rw && (int)p->permtype != want)
                continue;
            auth_ivl *x = &v[n];
            x->b = (auth_bytes){p->key.data, p->key.len};
            if (p->range_end.len != 0) {
                bool fromkey = p->range_end.len == 1 && p->range_end.data[0] == 0;
                x->e = fromkey ? (auth_bytes){NULL, 0}
                               : (auth_bytes){p->range_end.data, p->range_end.len};
            } else {
                x->own = metcd_malloc(p->key.len + 1);
                if (!x->own) {
                    rc = MERR_INTERNAL;
                    break;
                }
                if (p->key.len)
                    memcpy(x->own, p->key.data, p->key.len);
                x->own[p->key.len] = 0;
                x->e = (auth_bytes){x->own, p->key.len + 1};
            }
            n++;
        }
    }
    *roles_out = roles;
    *out = v;
    *n_out = n;
    return rc;
}

/* isOpPermitted: want is AUTHPB__PERMISSION__TYPE__READ or __WRITE. */
static int op_permitted(member *m, const char *user, uint64_t rev, const uint8_t *key,
                        size_t klen, const uint8_t *end, size_t elen, int want)
{
    if (!auth_enabled(m))
        return 0;
    if (rev == 0)
        return MERR_USER_EMPTY;
    if (rev < m->auth->revision)
        return MERR_AUTH_OLD_REVISION;
    Authpb__User *u = get_user(m, user);
    if (!u)
        return MERR_PERMISSION_DENIED;
    if (has_root_role(u)) {
        free_user(u);
        return 0;
    }
    Authpb__Role **roles = NULL;
    auth_ivl *v = NULL;
    size_t n = 0;
    int rc = collect(m, u, want, &roles, &v, &n);
    if (rc == 0)
        rc = auth_range_permitted(v, n, key, klen, end, elen) ? 0 : MERR_PERMISSION_DENIED;
    for (size_t i = 0; v && i < n; i++)
        metcd_free(v[i].own);
    metcd_free(v);
    for (size_t i = 0; roles && i < u->n_roles; i++)
        free_role(roles[i]);
    metcd_free(roles);
    free_user(u);
    return rc;
}

static int admin_permitted(member *m, const char *user)
{
    if (!auth_enabled(m))
        return 0;
    if (!user || !user[0])
        return MERR_USER_EMPTY;
    Authpb__User *u = get_user(m, user);
    if (!u)
        return MERR_USER_NOT_FOUND;
    int rc = has_root_role(u) ? 0 : MERR_PERMISSION_DENIED;
    free_user(u);
    return rc;
}

int auth_check_call_admin(member *m, struct rpc_call *call)
{
    if (!m->auth)
        return 0;
    const char *user;
    uint64_t rev;
    int rc = auth_call_info(m, call, &user, &rev);
    return rc ? rc : admin_permitted(m, user);
}

#define READ AUTHPB__PERMISSION__TYPE__READ
#define WRITE AUTHPB__PERMISSION__TYPE__WRITE

static int check_ops(member *m, const char *user, uint64_t rev, Etcdserverpb__RequestOp **ops,
                     size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const Etcdserverpb__RequestOp *op = ops[i];
        switch (op->request_case) {
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE: {
            const Etcdserverpb__RangeRequest *r = op->request_range;
            rc = op_permitted(m, user, rev, r->key.data, r->key.len, r->range_end.data,
                              r->range_end.len, READ);
            break;
        }
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT: {
            const Etcdserverpb__PutRequest *p = op->request_put;
            rc = op_permitted(m, user, rev, p->key.data, p->key.len, NULL, 0, WRITE);
            break;
        }
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE: {
            const Etcdserverpb__DeleteRangeRequest *d = op->request_delete_range;
            if (d->prev_kv)
                rc = op_permitted(m, user, rev, d->key.data, d->key.len, d->range_end.data,
                                  d->range_end.len, READ);
            if (rc == 0)
                rc = op_permitted(m, user, rev, d->key.data, d->key.len, d->range_end.data,
                                  d->range_end.len, WRITE);
            break;
        }
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
            /* nested txns came after 3.4; check their parts all the same */
            rc = check_ops(m, user, rev, op->request_txn->success, op->request_txn->n_success);
            if (rc == 0)
                rc = check_ops(m, user, rev, op->request_txn->failure,
                               op->request_txn->n_failure);
            break;
        default:
            break;
        }
    }
    return rc;
}

/* checkTxnAuth: every compare, then both branches. */
static int check_txn(member *m, const char *user, uint64_t rev, const Etcdserverpb__TxnRequest *t)
{
    int rc = 0;
    for (size_t i = 0; i < t->n_compare && rc == 0; i++)
        rc = op_permitted(m, user, rev, t->compare[i]->key.data, t->compare[i]->key.len,
                          t->compare[i]->range_end.data, t->compare[i]->range_end.len, READ);
    if (rc == 0)
        rc = check_ops(m, user, rev, t->success, t->n_success);
    if (rc == 0)
        rc = check_ops(m, user, rev, t->failure, t->n_failure);
    return rc;
}

int auth_check_call_range(member *m, struct rpc_call *call, const Etcdserverpb__RangeRequest *r)
{
    if (!auth_enabled(m))
        return 0;
    const char *user;
    uint64_t rev;
    int rc = auth_call_info(m, call, &user, &rev);
    return rc ? rc
              : op_permitted(m, user, rev, r->key.data, r->key.len, r->range_end.data,
                             r->range_end.len, READ);
}

int auth_check_call_txn(member *m, struct rpc_call *call, const Etcdserverpb__TxnRequest *t)
{
    if (!auth_enabled(m))
        return 0;
    const char *user;
    uint64_t rev;
    int rc = auth_call_info(m, call, &user, &rev);
    return rc ? rc : check_txn(m, user, rev, t);
}

int auth_check_call_watch(member *m, struct rpc_call *call, const uint8_t *key, size_t klen,
                          const uint8_t *end, size_t elen)
{
    if (!auth_enabled(m))
        return 0;
    const char *user;
    uint64_t rev;
    int rc = auth_call_info(m, call, &user, &rev);
    return rc ? rc : op_permitted(m, user, rev, key, klen, end, elen, READ);
}

int auth_check_call_key(member *m, struct rpc_call *call, const uint8_t *key, size_t klen,
                        const uint8_t *end, size_t elen, bool write)
{
    if (!auth_enabled(m))
        return 0;
    const char *user;
    uint64_t rev;
    int rc = auth_call_info(m, call, &user, &rev);
    return rc ? rc : op_permitted(m, user, rev, key, klen, end, elen, write ? WRITE : READ);
}

struct lease_check {
    member *m;
    const char *user;
    uint64_t rev;
    int rc;
};

static int on_lease_key(void *arg, const uint8_t *key, size_t len)
{
    struct lease_check *c = arg;
    c->rc = op_permitted(c->m, c->user, c->rev, key, len, NULL, 0, WRITE);
    return c->rc != 0;
}

/* checkLeasePuts: write permission on every key of the lease. */
static int check_lease_puts(member *m, const char *user, uint64_t rev, int64_t id)
{
    if (!id || !m->lessor)
        return 0;
    struct lease_check c = {m, user, rev, 0};
    mvcc_lease_keys(m->lessor, id, on_lease_key, &c); /* a missing lease: nothing to check */
    return c.rc;
}

int auth_check_apply(member *m, const Memberpb__Request *req)
{
    if (!auth_enabled(m) || req->system)
        return 0;
    const char *user = req->username;
    uint64_t rev = req->auth_revision;
    int rc = 0;
    switch (req->op_case) {
    case MEMBERPB__REQUEST__OP_PUT: {
        const Etcdserverpb__PutRequest *p = req->put;
        rc = op_permitted(m, user, rev, p->key.data, p->key.len, NULL, 0, WRITE);
        if (rc == 0)
            rc = check_lease_puts(m, user, rev, p->lease);
        if (rc == 0 && p->prev_kv)
            rc = op_permitted(m, user, rev, p->key.data, p->key.len, NULL, 0, READ);
        break;
    }
    case MEMBERPB__REQUEST__OP_DELETE_RANGE: {
        const Etcdserverpb__DeleteRangeRequest *d = req->delete_range;
        rc = op_permitted(m, user, rev, d->key.data, d->key.len, d->range_end.data,
                          d->range_end.len, WRITE);
        if (rc == 0 && d->prev_kv)
            rc = op_permitted(m, user, rev, d->key.data, d->key.len, d->range_end.data,
                              d->range_end.len, READ);
        break;
    }
    case MEMBERPB__REQUEST__OP_TXN:
        rc = check_txn(m, user, rev, req->txn);
        break;
    case MEMBERPB__REQUEST__OP_LEASE_REVOKE:
        rc = check_lease_puts(m, user, rev, req->lease_revoke->id);
        break;
    default:
        break;
    }
    return rc;
}

/* ---- apply (store.go) -------------------------------------------------------------------- */

bool auth_is_request(const Memberpb__Request *req)
{
    return req->op_case >= MEMBERPB__REQUEST__OP_AUTH_ENABLE &&
           req->op_case <= MEMBERPB__REQUEST__OP_AUTH_ROLE_REVOKE_PERMISSION;
}

static bool needs_admin(int op)
{
    switch (op) {
    case MEMBERPB__REQUEST__OP_AUTHENTICATE:
    case MEMBERPB__REQUEST__OP_AUTH_USER_GET:
    case MEMBERPB__REQUEST__OP_AUTH_ROLE_GET:
        return false;
    default:
        return true;
    }
}

static void set_enabled(member *m, bool on)
{
    uint8_t v = on ? 1 : 0;
    backend_put(m->be, BACKEND_AUTH, ENABLED_KEY, strlen(ENABLED_KEY), &v, 1, 0);
    m->auth->enabled = on;
}

static int apply_enable(member *m)
{
    if (m->auth->enabled)
        return 0;
    Authpb__User *u = get_user(m, ROOT);
    if (!u)
        return MERR_ROOT_USER_NOT_EXIST;
    bool root = has_root_role(u);
    free_user(u);
    if (!root)
        return MERR_ROOT_ROLE_NOT_EXIST;
    set_enabled(m, true);
    member_logf(m, MLOG_NOTICE, "auth", "Authentication enabled");
    return 0;
}

static void apply_disable(member *m)
{
    if (!m->auth->enabled)
        return;
    set_enabled(m, false);
    commit_revision(m);
    tokens_clear(m->auth);
    member_logf(m, MLOG_NOTICE, "auth", "Authentication disabled");
}

static int apply_user_add(member *m, const Memberpb__AuthUserAdd *r)
{
    if (!r->name || !r->name[0])
        return MERR_USER_EMPTY;
    Authpb__User *old = get_user(m, r->name);
    if (old) {
        free_user(old);
        return MERR_USER_ALREADY_EXIST;
    }
    Authpb__User u = AUTHPB__USER__INIT;
    Authpb__UserAddOptions o = AUTHPB__USER_ADD_OPTIONS__INIT;
    o.no_password = r->no_password;
    u.name = (ProtobufCBinaryData){strlen(r->name), (uint8_t *)r->name};
    u.password = r->hashed_password;
    u.options = &o;
    int rc = put_user(m, &u);
    if (rc == 0)
        commit_revision(m);
    return rc;
}

static int apply_user_delete(member *m, const char *name)
{
    if (m->auth->enabled && name && strcmp(name, ROOT) == 0)
        return MERR_INVALID_AUTH_MGMT;
    Authpb__User *u = get_user(m, name);
    if (!u)
        return MERR_USER_NOT_FOUND;
    free_user(u);
    backend_del(m->be, BACKEND_AUTH_USERS, name, strlen(name));
    commit_revision(m);
    tokens_drop_user(m->auth, name);
    return 0;
}

static int apply_change_password(member *m, const Memberpb__AuthUserChangePassword *r)
{
    Authpb__User *u = get_user(m, r->name);
    if (!u)
        return MERR_USER_NOT_FOUND;
    ProtobufCBinaryData old = u->password;
    u->password = r->hashed_password;
    int rc = put_user(m, u);
    u->password = old;
    free_user(u);
    if (rc == 0) {
        commit_revision(m);
        tokens_drop_user(m->auth, r->name);
    }
    return rc;
}

static int apply_grant_role(member *m, const Etcdserverpb__AuthUserGrantRoleRequest *r)
{
    Authpb__User *u = get_user(m, r->user);
    if (!u)
        return MERR_USER_NOT_FOUND;
    if (strcmp(r->role, ROOT) != 0) {
        Authpb__Role *role = get_role(m, r->role);
        if (!role) {
            free_user(u);
            return MERR_ROLE_NOT_FOUND;
        }
        free_role(role);
    }
    size_t at = 0;
    while (at < u->n_roles && strcmp(u->roles[at], r->role) < 0)
        at++;
    if (at < u->n_roles && strcmp(u->roles[at], r->role) == 0) {
        free_user(u); /* already granted: ignored, as etcd */
        return 0;
    }
    char **roles = metcd_calloc(u->n_roles + 1, sizeof(*roles));
    if (!roles) {
        free_user(u);
        return MERR_INTERNAL;
    }
    for (size_t i = 0, j = 0; i <= u->n_roles; i++)
        roles[i] = i == at ? r->role : u->roles[j++];
    char **old = u->roles;
    size_t n_old = u->n_roles;
    u->roles = roles;
    u->n_roles = n_old + 1;
    int rc = put_user(m, u);
    u->roles = old;
    u->n_roles = n_old;
    metcd_free(roles);
    free_user(u);
    if (rc == 0)
        commit_revision(m);
    return rc;
}

static int apply_revoke_role(member *m, const Etcdserverpb__AuthUserRevokeRoleRequest *r)
{
    if (m->auth->enabled && strcmp(r->name, ROOT) == 0 && strcmp(r->role, ROOT) == 0)
        return MERR_INVALID_AUTH_MGMT;
    Authpb__User *u = get_user(m, r->name);
    if (!u)
        return MERR_USER_NOT_FOUND;
    size_t n_old = u->n_roles, k = 0;
    char **old = u->roles;
    char **roles = metcd_calloc(n_old ? n_old : 1, sizeof(*roles));
    if (!roles) {
        free_user(u);
        return MERR_INTERNAL;
    }
    for (size_t i = 0; i < n_old; i++)
        if (strcmp(old[i], r->role) != 0)
            roles[k++] = old[i];
    int rc = MERR_ROLE_NOT_GRANTED;
    if (k != n_old) {
        u->roles = roles;
        u->n_roles = k;
        rc = put_user(m, u);
        u->roles = old;
        u->n_roles = n_old;
        if (rc == 0)
            commit_revision(m);
    }
    metcd_free(roles);
    free_user(u);
    return rc;
}

static int apply_role_add(member *m, const char *name)
{
    if (!name || !name[0])
        return MERR_ROLE_EMPTY;
    Authpb__Role *old = get_role(m, name);
    if (old) {
        free_role(old);
        return MERR_ROLE_ALREADY_EXIST;
    }
    Authpb__Role r = AUTHPB__ROLE__INIT;
    r.name = (ProtobufCBinaryData){strlen(name), (uint8_t *)name};
    int rc = put_role(m, &r);
    if (rc == 0)
        commit_revision(m);
    return rc;
}

struct role_strip {
    member *m;
    const char *role;
    Authpb__User **users;
    size_t n;
    int rc;
};

static int on_user_for_strip(void *arg, backend_val k, backend_val v)
{
    struct role_strip *s = arg;
    (void)k;
    Authpb__User *u = authpb__user__unpack(&metcd_pb_allocator, v.len, v.data);
    if (!u)
        return 0;
    Authpb__User **nu = metcd_realloc(s->users, (s->n + 1) * sizeof(*nu));
    if (!nu) {
        free_user(u);
        s->rc = MERR_INTERNAL;
        return 1;
    }
    s->users = nu;
    s->users[s->n++] = u;
    return 0;
}

static int apply_role_delete(member *m, const char *name)
{
    if (m->auth->enabled && strcmp(name, ROOT) == 0)
        return MERR_INVALID_AUTH_MGMT;
    Authpb__Role *role = get_role(m, name);
    if (!role)
        return MERR_ROLE_NOT_FOUND;
    free_role(role);
    backend_del(m->be, BACKEND_AUTH_ROLES, name, strlen(name));
    /* the role leaves every user that had it (collected first: no writes
     * while the bucket is visited) */
    struct role_strip s = {m, name, NULL, 0, 0};
    backend_range(m->be, BACKEND_AUTH_USERS, NULL, 0, NULL, 0, 0, on_user_for_strip, &s);
    for (size_t i = 0; i < s.n; i++) {
        Authpb__User *u = s.users[i];
        size_t k = 0;
        for (size_t j = 0; j < u->n_roles; j++)
            if (strcmp(u->roles[j], name) != 0)
                u->roles[k++] = u->roles[j];
            else
                metcd_free(u->roles[j]);
        if (k != u->n_roles) {
            u->n_roles = k;
            put_user(m, u);
        }
        free_user(u);
    }
    metcd_free(s.users);
    commit_revision(m);
    return s.rc;
}

static int perm_cmp(const Authpb__Permission *a, const ProtobufCBinaryData *key)
{
    size_t n = a->key.len < key->len ? a->key.len : key->len;
    int c = n ? memcmp(a->key.data, key->data, n) : 0;
    if (c)
        return c;
    return a->key.len < key->len ? -1 : a->key.len > key->len ? 1 : 0;
}

static bool bin_eq(ProtobufCBinaryData a, ProtobufCBinaryData b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

static int apply_grant_permission(member *m, const Etcdserverpb__AuthRoleGrantPermissionRequest *r)
{
    Authpb__Role *role = get_role(m, r->name);
    if (!role)
        return MERR_ROLE_NOT_FOUND;
    if (!r->perm) {
        free_role(role);
        return MVCC_EINVALID;
    }
    size_t at = 0;
    while (at < role->n_keypermission && perm_cmp(role->keypermission[at], &r->perm->key) < 0)
        at++;
    int rc;
    if (at < role->n_keypermission && bin_eq(role->keypermission[at]->key, r->perm->key) &&
        bin_eq(role->keypermission[at]->range_end, r->perm->range_end)) {
        role->keypermission[at]->permtype = r->perm->permtype;
        rc = put_role(m, role);
    } else {
        /* a new permission, kept sorted by key (stable after equal keys) */
        while (at < role->n_keypermission &&
               perm_cmp(role->keypermission[at], &r->perm->key) == 0)
            at++;
        size_t n_old = role->n_keypermission;
        Authpb__Permission **old = role->keypermission;
        Authpb__Permission **v = metcd_calloc(n_old + 1, sizeof(*v));
        if (!v) {
            free_role(role);
            return MERR_INTERNAL;
        }
        for (size_t i = 0, j = 0; i <= n_old; i++)
            v[i] = i == at ? r->perm : old[j++];
        role->keypermission = v;
        role->n_keypermission = n_old + 1;
        rc = put_role(m, role);
        role->keypermission = old;
        role->n_keypermission = n_old;
        metcd_free(v);
    }
    free_role(role);
    if (rc == 0)
        commit_revision(m);
    return rc;
}

static int apply_revoke_permission(member *m,
                                   const Etcdserverpb__AuthRoleRevokePermissionRequest *r)
{
    Authpb__Role *role = get_role(m, r->role);
    if (!role)
        return MERR_ROLE_NOT_FOUND;
    size_t n_old = role->n_keypermission, k = 0;
    Authpb__Permission **old = role->keypermission;
    Authpb__Permission **v = metcd_calloc(n_old ? n_old : 1, sizeof(*v));
    if (!v) {
        free_role(role);
        return MERR_INTERNAL;
    }
    for (size_t i = 0; i < n_old; i++)
        if (!bin_eq(old[i]->key, r->key) || !bin_eq(old[i]->range_end, r->range_end))
            v[k++] = old[i];
    int rc = MERR_PERMISSION_NOT_GRANTED;
    if (k != n_old) {
        role->keypermission = v;
        role->n_keypermission = k;
        rc = put_role(m, role);
        role->keypermission = old;
        role->n_keypermission = n_old;
        if (rc == 0)
            commit_revision(m);
    }
    metcd_free(v);
    free_role(role);
    return rc;
}

struct name_list {
    char **v;
    size_t n;
    int rc;
};

static int on_name(void *arg, backend_val k, backend_val v)
{
    struct name_list *l = arg;
    (void)v;
    char **nv = metcd_realloc(l->v, (l->n + 1) * sizeof(*nv));
    char *s = metcd_malloc(k.len + 1);
    if (nv)
        l->v = nv;
    if (!nv || !s) {
        metcd_free(s);
        l->rc = MERR_INTERNAL;
        return 1;
    }
    memcpy(s, k.data, k.len);
    s[k.len] = 0;
    l->v[l->n++] = s;
    return 0;
}

static void name_list_free(struct name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        metcd_free(l->v[i]);
    metcd_free(l->v);
}

/* A response whose only field is the header (most Auth* responses). */
static void reply_header_only(member *m, struct rpc_call *call,
                              const ProtobufCMessageDescriptor *desc)
{
    union {
        ProtobufCMessage base;
        Etcdserverpb__AuthEnableResponse r;
    } u;
    /* every header-only Auth*Response has this same layout */
    protobuf_c_message_init(&etcdserverpb__auth_enable_response__descriptor, &u.r);
    u.base.descriptor = desc;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    fill_header(m, &h, mvcc_current_rev(m->kv));
    u.r.header = &h;
    rpc_call_reply(call, &u.base);
}

static const ProtobufCMessageDescriptor *header_only_desc(int op)
{
    switch (op) {
    case MEMBERPB__REQUEST__OP_AUTH_ENABLE:
        return &etcdserverpb__auth_enable_response__descriptor;
    case MEMBERPB__REQUEST__OP_AUTH_DISABLE:
        return &etcdserverpb__auth_disable_response__descriptor;
    case MEMBERPB__REQUEST__OP_AUTH_USER_ADD:
        return &etcdserverpb__auth_user_add_response__descriptor;
    case MEMBERPB__REQUEST__OP_AUTH_USER_DELETE:
        return &etcdserverpb__auth_user_delete_response__descriptor;
    case MEMBERPB__REQUEST__OP_AUTH_USER_CHANGE_PASSWORD:
        return &etcdserverpb__auth_user_change_password_response__descriptor;
    case MEMBERPB__REQUEST__OP_AUTH_USER_GRANT_ROLE:
        return &etcdserverpb__auth_user_grant_role_response__descriptor;
    case MEMBERPB__REQUEST__OP_AUTH_USER_REVOKE_ROLE:
        return &etcdserverpb__auth_user_revoke_role_response__descriptor;
    case MEMBERPB__REQUEST__OP_AUTH_ROLE_ADD:
        return &etcdserverpb__auth_role_add_response__descriptor;
    case MEMBERPB__REQUEST__OP_AUTH_ROLE_DELETE:
        return &etcdserverpb__auth_role_delete_response__descriptor;
    case MEMBERPB__REQUEST__OP_AUTH_ROLE_GRANT_PERMISSION:
        return &etcdserverpb__auth_role_grant_permission_response__descriptor;
    case MEMBERPB__REQUEST__OP_AUTH_ROLE_REVOKE_PERMISSION:
        return &etcdserverpb__auth_role_revoke_permission_response__descriptor;
    default:
        return NULL;
    }
}

static bool user_has_role(member *m, const char *user, const char *role)
{
    Authpb__User *u = get_user(m, user);
    bool has = false;
    for (size_t i = 0; u && i < u->n_roles; i++)
        if (strcmp(u->roles[i], role) == 0)
            has = true;
    free_user(u);
    return has;
}

/* The read-only requests: answered into the waiting call. */
static int apply_read(member *m, const Memberpb__Request *req, struct rpc_call *call)
{
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    fill_header(m, &h, mvcc_current_rev(m->kv));
    switch (req->op_case) {
    case MEMBERPB__REQUEST__OP_AUTH_USER_GET: {
        const char *name = req->auth_user_get->name;
        if (!req->system && admin_permitted(m, req->username) != 0 &&
            strcmp(name, req->username) != 0)
            return admin_permitted(m, req->username);
        Authpb__User *u = get_user(m, name);
        if (!u)
            return MERR_USER_NOT_FOUND;
        Etcdserverpb__AuthUserGetResponse r = ETCDSERVERPB__AUTH_USER_GET_RESPONSE__INIT;
        r.header = &h;
        r.roles = u->roles;
        r.n_roles = u->n_roles;
        if (call)
            rpc_call_reply(call, &r.base);
        free_user(u);
        return 0;
    }
    case MEMBERPB__REQUEST__OP_AUTH_ROLE_GET: {
        const char *name = req->auth_role_get->role;
        if (!req->system && admin_permitted(m, req->username) != 0 &&
            !user_has_role(m, req->username, name))
            return admin_permitted(m, req->username);
        Authpb__Role *role = get_role(m, name);
        if (!role)
            return MERR_ROLE_NOT_FOUND;
        Etcdserverpb__AuthRoleGetResponse r = ETCDSERVERPB__AUTH_ROLE_GET_RESPONSE__INIT;
        r.header = &h;
        r.perm = role->keypermission;
        r.n_perm = role->n_keypermission;
        if (call)
            rpc_call_reply(call, &r.base);
        free_role(role);
        return 0;
    }
    case MEMBERPB__REQUEST__OP_AUTH_USER_LIST:
    case MEMBERPB__REQUEST__OP_AUTH_ROLE_LIST: {
        bool users = req->op_case == MEMBERPB__REQUEST__OP_AUTH_USER_LIST;
        struct name_list l = {0};
        backend_range(m->be, users ? BACKEND_AUTH_USERS : BACKEND_AUTH_ROLES, NULL, 0, NULL, 0,
                      0, on_name, &l);
        if (l.rc) {
            name_list_free(&l);
            return l.rc;
        }
        if (call && users) {
            Etcdserverpb__AuthUserListResponse r = ETCDSERVERPB__AUTH_USER_LIST_RESPONSE__INIT;
            r.header = &h;
            r.users = l.v;
            r.n_users = l.n;
            rpc_call_reply(call, &r.base);
        } else if (call) {
            Etcdserverpb__AuthRoleListResponse r = ETCDSERVERPB__AUTH_ROLE_LIST_RESPONSE__INIT;
            r.header = &h;
            r.roles = l.v;
            r.n_roles = l.n;
            rpc_call_reply(call, &r.base);
        }
        name_list_free(&l);
        return 0;
    }
    default:
        return MERR_INTERNAL;
    }
}

static int apply_authenticate(member *m, const Memberpb__AuthAuthenticate *r, uint64_t index,
                              struct rpc_call *call)
{
    if (!m->auth->enabled)
        return MERR_AUTH_NOT_ENABLED;
    Authpb__User *u = get_user(m, r->name);
    if (!u)
        return MERR_AUTH_FAILED;
    bool nopw = u->options && u->options->no_password;
    free_user(u);
    if (nopw)
        return MERR_AUTH_FAILED;
    char simple[256];
    char *token = simple;
    char *signed_token = NULL;
    int rc;
    if (m->auth->jwt) {
        rc = auth_jwt_sign(m->auth->jwt, r->name, m->auth->revision, auth_jwt_now_s(),
                           &signed_token);
        if (rc == AUTH_JWT_VERIFY_ONLY)
            member_logf(m, MLOG_ERROR, "auth", "token signing attempted with verify-only key");
        if (rc)
            return MERR_INTERNAL;
        token = signed_token;
    } else {
        snprintf(simple, sizeof(simple), "%s.%llu", r->simple_token, (unsigned long long)index);
        rc = token_add(m, simple, r->name);
        if (rc)
            return rc;
    }
    if (call) {
        Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
        fill_header(m, &h, mvcc_current_rev(m->kv));
        Etcdserverpb__AuthenticateResponse resp = ETCDSERVERPB__AUTHENTICATE_RESPONSE__INIT;
        resp.header = &h;
        resp.token = token;
        rpc_call_reply(call, &resp.base);
    }
    metcd_free(signed_token);
    return 0;
}

void auth_apply(member *m, const Memberpb__Request *req, waiter *w, uint64_t index)
{
    struct rpc_call *call = w && !w->done ? w->call : NULL;
    int rc = 0;
    bool answered = false;
    if (!req->system && needs_admin(req->op_case))
        rc = admin_permitted(m, req->username);
    if (rc == 0) {
        switch (req->op_case) {
        case MEMBERPB__REQUEST__OP_AUTH_ENABLE:
            rc = apply_enable(m);
            break;
        case MEMBERPB__REQUEST__OP_AUTH_DISABLE:
            apply_disable(m);
            break;
        case MEMBERPB__REQUEST__OP_AUTHENTICATE:
            rc = apply_authenticate(m, req->authenticate, index, call);
            answered = rc == 0;
            break;
        case MEMBERPB__REQUEST__OP_AUTH_USER_ADD:
            rc = apply_user_add(m, req->auth_user_add);
            break;
        case MEMBERPB__REQUEST__OP_AUTH_USER_DELETE:
            rc = apply_user_delete(m, req->auth_user_delete->name);
            break;
        case MEMBERPB__REQUEST__OP_AUTH_USER_CHANGE_PASSWORD:
            rc = apply_change_password(m, req->auth_user_change_password);
            break;
        case MEMBERPB__REQUEST__OP_AUTH_USER_GRANT_ROLE:
            rc = apply_grant_role(m, req->auth_user_grant_role);
            break;
        case MEMBERPB__REQUEST__OP_AUTH_USER_REVOKE_ROLE:
            rc = apply_revoke_role(m, req->auth_user_revoke_role);
            break;
        case MEMBERPB__REQUEST__OP_AUTH_ROLE_ADD:
            rc = apply_role_add(m, req->auth_role_add->name);
            break;
        case MEMBERPB__REQUEST__OP_AUTH_ROLE_DELETE:
            rc = apply_role_delete(m, req->auth_role_delete->role);
            break;
        case MEMBERPB__REQUEST__OP_AUTH_ROLE_GRANT_PERMISSION:
            rc = apply_grant_permission(m, req->auth_role_grant_permission);
            break;
        case MEMBERPB__REQUEST__OP_AUTH_ROLE_REVOKE_PERMISSION:
            rc = apply_revoke_permission(m, req->auth_role_revoke_permission);
            break;
        default:
            rc = apply_read(m, req, call);
            answered = rc == 0;
            break;
        }
    }
    if (!w)
        return;
    if (w->done) {
        w->done(m, w->done_arg, rc, NULL);
    } else if (w->call && !answered) {
        if (rc)
            member_fail_call(w->call, rc);
        else
            reply_header_only(m, w->call, header_only_desc(req->op_case));
    }
    metcd_free(w);
}

/* ---- open / close --------------------------------------------------------------------------- */

int auth_store_open(member *m, char *errbuf, size_t errlen)
{
    if (!m->auth) {
        m->auth = metcd_calloc(1, sizeof(*m->auth));
        if (!m->auth) {
            snprintf(errbuf, errlen, "out of memory");
            return -1;
        }
        m->auth->efd = -1;
    }
    struct auth_state *a = m->auth;
    backend_val v;
    a->enabled = backend_get(m->be, BACKEND_AUTH, ENABLED_KEY, strlen(ENABLED_KEY), &v) == 0 &&
                 v.len == 1 && ((const uint8_t *)v.data)[0] == 1;
    a->revision = 0;
    if (backend_get(m->be, BACKEND_AUTH, REVISION_KEY, strlen(REVISION_KEY), &v) == 0 &&
        v.len == 8) {
        const uint8_t *p = v.data;
        for (int i = 0; i < 8; i++)
            a->revision = (a->revision << 8) | p[i];
    }
    if (a->revision == 0)
        commit_revision(m); /* a new store starts at 1, as etcd's NewAuthStore */
    return 0;
}

/* ---- the bcrypt worker ----------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    struct auth_state *a = arg;
    struct crypt_data *cd = calloc(1, sizeof(*cd)); /* ~32 KiB: not on the stack */
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (!a->quit && !a->todo_head)
            pthread_cond_wait(&a->cond, &a->lock);
        if (a->quit)
            break;
        auth_job *j = a->todo_head;
        a->todo_head = j->next;
        if (!a->todo_head)
            a->todo_tail = NULL;
        pthread_mutex_unlock(&a->lock);

        j->ok = false;
        if (cd && j->kind == JOB_VERIFY) {
            memset(cd, 0, sizeof(*cd));
            const char *out = crypt_r(j->password, j->hash, cd);
            size_t n = strlen(j->hash);
            j->ok = out && out[0] != '*' && strlen(out) == n && CRYPTO_memcmp(out, j->hash, n) == 0;
        } else if (cd) {
            char salt[CRYPT_GENSALT_OUTPUT_SIZE];
            memset(cd, 0, sizeof(*cd));
            if (crypt_gensalt_rn("$2b$", a->cost, NULL, 0, salt, sizeof(salt))) {
                const char *out = crypt_r(j->password, salt, cd);
                if (out && out[0] != '*' && strlen(out) < sizeof(j->hash)) {
                    memcpy(j->hash, out, strlen(out) + 1);
                    j->ok = true;
                }
            }
        }

        pthread_mutex_lock(&a->lock);
        j->next = NULL;
        if (a->done_tail)
            a->done_tail->next = j;
        else
            a->done_head = j;
        a->done_tail = j;
        uint64_t one = 1;
        ssize_t w = write(a->efd, &one, sizeof(one));
        (void)w; /* a full counter still wakes the loop */
    }
    pthread_mutex_unlock(&a->lock);
    free(cd);
    return NULL;
}

static void job_free(auth_job *j)
{
    if (!j)
        return;
    if (j->password) {
        OPENSSL_cleanse(j->password, strlen(j->password));
        metcd_free(j->password);
    }
    OPENSSL_cleanse(j->hash, sizeof(j->hash));
    metcd_free(j->name);
    metcd_free(j);
}

static int job_queue(member *m, auth_job *j)
{
    struct auth_state *a = m->auth;
    if (!a->thread_started)
        return MERR_STOPPED;
    if (a->n_jobs >= MAX_AUTH_JOBS)
        return MERR_TOO_MANY_REQUESTS;
    a->n_jobs++;
    pthread_mutex_lock(&a->lock);
    j->next = NULL;
    if (a->todo_tail)
        a->todo_tail->next = j;
    else
        a->todo_head = j;
    a->todo_tail = j;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
    return 0;
}

/* Looks the user up for Authenticate (CheckPassword's first half) and fills
 * the job's stored hash. */
static int verify_prepare(member *m, auth_job *j)
{
    if (!m->auth->enabled)
        return MERR_AUTH_NOT_ENABLED;
    Authpb__User *u = get_user(m, j->name);
    if (!u)
        return MERR_AUTH_FAILED;
    int rc = 0;
    if (u->options && u->options->no_password)
        rc = MERR_NO_PASSWORD_USER;
    else if (u->password.len == 0 || u->password.len >= sizeof(j->hash))
        rc = MERR_AUTH_FAILED;
    else {
        memcpy(j->hash, u->password.data, u->password.len);
        j->hash[u->password.len] = 0;
        j->checked_rev = m->auth->revision;
    }
    free_user(u);
    return rc;
}

static void job_done(member *m, auth_job *j)
{
    struct rpc_call *call = j->call;
    if (!call)
        return;
    int rc = 0;
    Memberpb__Request req = MEMBERPB__REQUEST__INIT;
    Memberpb__AuthAuthenticate au = MEMBERPB__AUTH_AUTHENTICATE__INIT;
    Memberpb__AuthUserAdd ua = MEMBERPB__AUTH_USER_ADD__INIT;
    Memberpb__AuthUserChangePassword cp = MEMBERPB__AUTH_USER_CHANGE_PASSWORD__INIT;
    char prefix[17];
    switch (j->kind) {
    case JOB_VERIFY:
        if (!j->ok) {
            member_logf(m, MLOG_ERROR, "auth", "invalid authentication request to user %s was issued",
                        j->name);
            rc = MERR_AUTH_FAILED;
            break;
        }
        if (j->checked_rev != m->auth->revision) {
            /* the store changed while the password was checked: again,
             * against what it holds now (etcd retries the same way) */
            rc = verify_prepare(m, j);
            if (rc == 0 && (rc = job_queue(m, j)) == 0) {
                rpc_call_set_data(call, j);
                return;
            }
            break;
        }
        rc = gen_token_prefix(prefix);
        au.name = j->name;
        au.simple_token = prefix;
        req.op_case = MEMBERPB__REQUEST__OP_AUTHENTICATE;
        req.authenticate = &au;
        break;
    case JOB_HASH_ADD:
        ua.name = j->name;
        ua.hashed_password = (ProtobufCBinaryData){strlen(j->hash), (uint8_t *)j->hash};
        req.op_case = MEMBERPB__REQUEST__OP_AUTH_USER_ADD;
        req.auth_user_add = &ua;
        rc = j->ok ? 0 : MERR_INTERNAL;
        break;
    case JOB_HASH_CHANGE:
        cp.name = j->name;
        cp.hashed_password = (ProtobufCBinaryData){strlen(j->hash), (uint8_t *)j->hash};
        req.op_case = MEMBERPB__REQUEST__OP_AUTH_USER_CHANGE_PASSWORD;
        req.auth_user_change_password = &cp;
        rc = j->ok ? 0 : MERR_INTERNAL;
        break;
    }
    rpc_call_set_data(call, NULL);
    j->call = NULL;
    if (rc)
        member_fail_call(call, rc);
    else
        member_propose_call(m, call, WAIT_AUTH, &req, false);
}

static void on_jobs_done(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    member *m = arg;
    struct auth_state *a = m->auth;
    uint64_t cnt;
    ssize_t r = read(fd, &cnt, sizeof(cnt));
    (void)r;
    pthread_mutex_lock(&a->lock);
    auth_job *list = a->done_head;
    a->done_head = a->done_tail = NULL;
    pthread_mutex_unlock(&a->lock);
    while (list) {
        auth_job *j = list;
        list = j->next;
        a->n_jobs--;
        job_done(m, j);
        if (!j->call) /* requeued jobs keep their call */
            job_free(j);
    }
}

/* ---- the Auth service ------------------------------------------------------------------------ */

static void on_auth_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)code;
    member *m = rpc_call_service_data(call);
    auth_job *j = rpc_call_get_data(call);
    if (j && j->read) {
        member_read_cancel(j->read); /* still before the worker: ours to free */
        job_free(j);
    } else if (j) {
        j->call = NULL; /* the worker's answer is dropped on return */
    }
    wait_forget_call(m, call);
}

static void propose_op(struct rpc_call *call, Memberpb__Request *req)
{
    member *m = rpc_call_service_data(call);
    member_propose_call(m, call, WAIT_AUTH, req, false);
}

static void fail_job_call(member *m, auth_job *j, int rc)
{
    if (rc == MERR_AUTH_FAILED || rc == MERR_NO_PASSWORD_USER)
        member_logf(m, MLOG_ERROR, "auth", "invalid authentication request to user %s was issued",
                    j && j->name ? j->name : "");
    struct rpc_call *call = j ? j->call : NULL;
    job_free(j);
    if (call) {
        rpc_call_set_data(call, NULL);
        member_fail_call(call, rc);
    }
}

/* Authenticate reads the store after a linearizable barrier, as etcd's
 * linearizableReadNotify: a user just added elsewhere is seen. */
static void on_auth_read(member *m, void *arg, int rc)
{
    auth_job *j = arg;
    j->read = NULL;
    if (rc == 0)
        rc = verify_prepare(m, j);
    if (rc == 0)
        rc = job_queue(m, j);
    if (rc)
        fail_job_call(m, j, rc);
}

static void start_job(struct rpc_call *call, enum job_kind kind, const char *name,
                      const char *password)
{
    member *m = rpc_call_service_data(call);
    auth_job *j = metcd_calloc(1, sizeof(*j));
    if (!j) {
        member_fail_call(call, MERR_INTERNAL);
        return;
    }
    j->kind = kind;
    j->name = metcd_strdup(name ? name : "");
    j->password = metcd_strdup(password ? password : "");
    j->call = call;
    rpc_call_set_data(call, j);
    if (!j->name || !j->password) {
        fail_job_call(m, j, MERR_INTERNAL);
        return;
    }
    if (kind == JOB_VERIFY) {
        if (!m->auth->enabled) {
            fail_job_call(m, j, MERR_AUTH_NOT_ENABLED);
            return;
        }
        /* on_auth_read may run (and end the job) before this returns */
        int rc = member_read_index(m, on_auth_read, j, &j->read);
        if (rc) {
            j->read = NULL;
            fail_job_call(m, j, rc);
        }
        return;
    }
    int rc = job_queue(m, j);
    if (rc)
        fail_job_call(m, j, rc);
}

#define SIMPLE_OP(fn, CASE, field, type)                                                          \
    static void fn(struct rpc_call *call, const ProtobufCMessage *msg)                            \
    {                                                                                             \
        Memberpb__Request req = MEMBERPB__REQUEST__INIT;                                          \
        req.op_case = MEMBERPB__REQUEST__OP_##CASE;                                               \
        req.field = (type *)msg;                                                                  \
        propose_op(call, &req);                                                                   \
    }

SIMPLE_OP(on_enable, AUTH_ENABLE, auth_enable, Etcdserverpb__AuthEnableRequest)
SIMPLE_OP(on_disable, AUTH_DISABLE, auth_disable, Etcdserverpb__AuthDisableRequest)
SIMPLE_OP(on_user_get, AUTH_USER_GET, auth_user_get, Etcdserverpb__AuthUserGetRequest)
SIMPLE_OP(on_user_list, AUTH_USER_LIST, auth_user_list, Etcdserverpb__AuthUserListRequest)
SIMPLE_OP(on_user_delete, AUTH_USER_DELETE, auth_user_delete, Etcdserverpb__AuthUserDeleteRequest)
SIMPLE_OP(on_user_grant, AUTH_USER_GRANT_ROLE, auth_user_grant_role,
          Etcdserverpb__AuthUserGrantRoleRequest)
SIMPLE_OP(on_user_revoke, AUTH_USER_REVOKE_ROLE, auth_user_revoke_role,
          Etcdserverpb__AuthUserRevokeRoleRequest)
SIMPLE_OP(on_role_add, AUTH_ROLE_ADD, auth_role_add, Etcdserverpb__AuthRoleAddRequest)
SIMPLE_OP(on_role_get, AUTH_ROLE_GET, auth_role_get, Etcdserverpb__AuthRoleGetRequest)
SIMPLE_OP(on_role_list, AUTH_ROLE_LIST, auth_role_list, Etcdserverpb__AuthRoleListRequest)
SIMPLE_OP(on_role_delete, AUTH_ROLE_DELETE, auth_role_delete, Etcdserverpb__AuthRoleDeleteRequest)
SIMPLE_OP(on_role_grant, AUTH_ROLE_GRANT_PERMISSION, auth_role_grant_permission,
          Etcdserverpb__AuthRoleGrantPermissionRequest)
SIMPLE_OP(on_role_revoke, AUTH_ROLE_REVOKE_PERMISSION, auth_role_revoke_permission,
          Etcdserverpb__AuthRoleRevokePermissionRequest)

static void on_authenticate(struct rpc_call *call, const ProtobufCMessage *msg)
{
    const Etcdserverpb__AuthenticateRequest *r = (const Etcdserverpb__AuthenticateRequest *)msg;
    start_job(call, JOB_VERIFY, r->name, r->password);
}

static void on_user_add(struct rpc_call *call, const ProtobufCMessage *msg)
{
    const Etcdserverpb__AuthUserAddRequest *r = (const Etcdserverpb__AuthUserAddRequest *)msg;
    if (r->options && r->options->no_password) {
        Memberpb__Request req = MEMBERPB__REQUEST__INIT;
        Memberpb__AuthUserAdd ua = MEMBERPB__AUTH_USER_ADD__INIT;
        ua.name = r->name;
        ua.no_password = true;
        req.op_case = MEMBERPB__REQUEST__OP_AUTH_USER_ADD;
        req.auth_user_add = &ua;
        propose_op(call, &req);
        return;
    }
    start_job(call, JOB_HASH_ADD, r->name, r->password);
}

static void on_user_change_password(struct rpc_call *call, const ProtobufCMessage *msg)
{
    const Etcdserverpb__AuthUserChangePasswordRequest *r =
        (const Etcdserverpb__AuthUserChangePasswordRequest *)msg;
    start_job(call, JOB_HASH_CHANGE, r->name, r->password);
}

#define M(name, req, resp, fn)                                                                    \
    {"/etcdserverpb.Auth/" name, RPC_UNARY, &etcdserverpb__##req##__descriptor,                  \
     &etcdserverpb__##resp##__descriptor, NULL, fn, NULL, on_auth_cancel, NULL}

static const struct rpc_method auth_methods[] = {
    M("AuthEnable", auth_enable_request, auth_enable_response, on_enable),
    M("AuthDisable", auth_disable_request, auth_disable_response, on_disable),
    M("Authenticate", authenticate_request, authenticate_response, on_authenticate),
    M("UserAdd", auth_user_add_request, auth_user_add_response, on_user_add),
    M("UserGet", auth_user_get_request, auth_user_get_response, on_user_get),
    M("UserList", auth_user_list_request, auth_user_list_response, on_user_list),
    M("UserDelete", auth_user_delete_request, auth_user_delete_response, on_user_delete),
    M("UserChangePassword", auth_user_change_password_request,
      auth_user_change_password_response, on_user_change_password),
    M("UserGrantRole", auth_user_grant_role_request, auth_user_grant_role_response,
      on_user_grant),
    M("UserRevokeRole", auth_user_revoke_role_request, auth_user_revoke_role_response,
      on_user_revoke),
    M("RoleAdd", auth_role_add_request, auth_role_add_response, on_role_add),
    M("RoleGet", auth_role_get_request, auth_role_get_response, on_role_get),
    M("RoleList", auth_role_list_request, auth_role_list_response, on_role_list),
    M("RoleDelete", auth_role_delete_request, auth_role_delete_response, on_role_delete),
    M("RoleGrantPermission", auth_role_grant_permission_request,
      auth_role_grant_permission_response, on_role_grant),
    M("RoleRevokePermission", auth_role_revoke_permission_request,
      auth_role_revoke_permission_response, on_role_revoke),
};

int auth_start(member *m)
{
    struct auth_state *a = m->auth;
    if (!a)
        return RPC_ERR_STATE;
    a->cost = m->opt.bcrypt_cost ? m->opt.bcrypt_cost : 10;
    if (auth_jwt_wanted(m->opt.auth_token)) {
        char err[256];
        if (auth_jwt_open(&a->jwt, m->opt.auth_token, err, sizeof(err)) != 0) {
            member_logf(m, MLOG_CRIT, "etcdmain", "failed to create auth token provider: %s", err);
            return RPC_ERR_INVAL;
        }
    } else {
        member_logf(m, MLOG_WARN, "auth", "simple token is not cryptographically signed");
    }
    int rc = rpc_server_register(m->rpc, auth_methods, sizeof(auth_methods) / sizeof(auth_methods[0]),
                                 m);
    if (rc)
        return rc;
    a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->efd < 0)
        return RPC_ERR_IO;
    a->done_ev = event_new(m->base, a->efd, EV_READ | EV_PERSIST, on_jobs_done, m);
    a->sweep_ev = event_new(m->base, -1, EV_PERSIST, on_token_sweep, m);
    if (!a->done_ev || !a->sweep_ev)
        return RPC_ERR_NOMEM;
    struct timeval one_s = {1, 0};
    if (event_add(a->done_ev, NULL) || event_add(a->sweep_ev, &one_s))
        return RPC_ERR_IO;
    if (pthread_mutex_init(&a->lock, NULL))
        return RPC_ERR_NOMEM;
    if (pthread_cond_init(&a->cond, NULL)) {
        pthread_mutex_destroy(&a->lock);
        return RPC_ERR_NOMEM;
    }
    if (pthread_create(&a->thread, NULL, worker_main, a)) {
        pthread_cond_destroy(&a->cond);
        pthread_mutex_destroy(&a->lock);
        return RPC_ERR_NOMEM;
    }
    a->thread_started = true;
    return 0;
}

void auth_stop(member *m)
{
    struct auth_state *a = m->auth;
    if (!a)
        return;
    if (a->thread_started) {
        pthread_mutex_lock(&a->lock);
        a->quit = true;
        pthread_cond_signal(&a->cond);
        pthread_mutex_unlock(&a->lock);
        pthread_join(a->thread, NULL);
        a->thread_started = false;
        /* the worker is gone: both queues are the loop's now */
        auth_job *lists[2] = {a->todo_head, a->done_head};
        a->todo_head = a->todo_tail = a->done_head = a->done_tail = NULL;
        for (int i = 0; i < 2; i++) {
            while (lists[i]) {
                auth_job *j = lists[i];
                lists[i] = j->next;
                if (j->call) {
                    rpc_call_set_data(j->call, NULL);
                    member_fail_call(j->call, MERR_STOPPED);
                }
                job_free(j);
            }
        }
        pthread_cond_destroy(&a->cond);
        pthread_mutex_destroy(&a->lock);
    }
    if (a->done_ev)
        event_free(a->done_ev);
    if (a->sweep_ev)
        event_free(a->sweep_ev);
    if (a->efd >= 0)
        close(a->efd);
    tokens_clear(a);
    auth_jwt_close(a->jwt);
    metcd_free(a);
    m->auth = NULL;
}
