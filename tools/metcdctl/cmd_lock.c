/* tools/metcdctl/cmd_lock.c - etcdctl 3.4's lock and elect, over metcd's
 * v3lockpb.Lock and v3electionpb.Election services:
 *
 *   lock <lockname> [exec-command arg1 arg2 ...] [--ttl N]
 *   elect <election-name> [proposal] [-l]
 *
 * Both hold a session as clientv3/concurrency does: a lease (lock: --ttl,
 * default 10 s; elect: 60 s) kept alive in the background. lock prints the
 * lock's key (as `get` prints it) and holds it until SIGINT or SIGTERM,
 * or runs the command with ETCD_LOCK_KEY and ETCD_LOCK_REV in its
 * environment and releases the lock when it exits. elect campaigns, prints
 * its leader key and resigns on SIGINT/SIGTERM; elect -l prints each
 * leader as it is proclaimed until SIGINT/SIGTERM. */
#include "tools/metcdctl/ctl.h"
#include "tools/metcdctl/ctl_session.h"

#include "common/mem.h"
#include "server/rpc/rpc.h"
#include "server/v3electionpb/v3election.pb-c.h"
#include "server/v3lockpb/v3lock.pb-c.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A concurrency.Session: a lease kept alive, and what ends the wait. */
struct session {
    struct ctl *c;
    int64_t lease;
    struct ctl_keepalive *ka;
    struct event *sigint, *sigterm, *sigchld;
    bool expired, signalled, child_done;
    pid_t child;
    int child_status;
};

static void on_sess_response(int64_t id, int64_t ttl, const Etcdserverpb__ResponseHeader *h,
                             void *data)
{
    (void)id;
    (void)ttl;
    (void)h;
    (void)data;
}

static void on_sess_end(int code, const char *msg, void *data)
{
    (void)code;
    (void)msg;
    struct session *s = data;
    s->expired = true;
    event_base_loopbreak(s->c->base);
}

static void on_signal(evutil_socket_t sig, short what, void *data)
{
    (void)what;
    struct session *s = data;
    if (sig == SIGCHLD) {
        int st;
        if (s->child > 0 && waitpid(s->child, &st, WNOHANG) == s->child) {
            s->child_status = st;
            s->child_done = true;
            event_base_loopbreak(s->c->base);
        }
        return;
    }
    s->signalled = true;
    event_base_loopbreak(s->c->base);
}

static void session_close(struct session *s)
{
    ctl_keepalive_stop(s->ka);
    s->ka = NULL;
    struct event **evs[] = {&s->sigint, &s->sigterm, &s->sigchld};
    for (size_t i = 0; i < 3; i++)
        if (*evs[i]) {
            event_free(*evs[i]);
            *evs[i] = NULL;
        }
}

/* Grants the session's lease and keeps it alive; catches SIGINT and
 * SIGTERM from now on. 0 or the exit status (error printed). */
static int session_open(struct ctl *c, int64_t ttl, struct session *s)
{
    *s = (struct session){.c = c};
    Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    req.ttl = ttl;
    ProtobufCMessage *m;
    int rc = ctl_unary(c, "/etcdserverpb.Lease/LeaseGrant", &req.base,
                       &etcdserverpb__lease_grant_response__descriptor, &m);
    if (rc != 0)
        return rc;
    s->lease = ((Etcdserverpb__LeaseGrantResponse *)m)->id;
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    s->sigint = evsignal_new(c->base, SIGINT, on_signal, s);
    s->sigterm = evsignal_new(c->base, SIGTERM, on_signal, s);
    s->sigchld = evsignal_new(c->base, SIGCHLD, on_signal, s);
    if (!s->sigint || !s->sigterm || !s->sigchld || evsignal_add(s->sigint, NULL) != 0 ||
        evsignal_add(s->sigterm, NULL) != 0 || evsignal_add(s->sigchld, NULL) != 0) {
        session_close(s);
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    }
    rc = ctl_keepalive_start(c, s->lease, on_sess_response, on_sess_end, s, &s->ka);
    if (rc != 0) {
        session_close(s);
        return ctl_fail(c, CTL_EXIT_ERROR, "%s", rpc_strerror(rc));
    }
    return 0;
}

/* Runs the loop until a signal, the session's end or the child's exit. */
static void session_wait(struct session *s)
{
    while (!s->signalled && !s->expired && !(s->child > 0 && s->child_done))
        if (event_base_loop(s->c->base, 0) != 0)
            break;
}

/* A blocking call without the command timeout (Lock and Campaign wait for
 * their turn); the session's keep-alives go on meanwhile. */
static int call_unbounded(struct ctl *c, const char *path, const ProtobufCMessage *req,
                          const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp)
{
    return ctl_unary_exit(c, path, req, desc, 0, CTL_EXIT_ERROR, resp);
}

/* display.Get of a range answer, in the formats etcdctl's get has. */
static int print_range(struct ctl *c, const Etcdserverpb__RangeResponse *r)
{
    switch (c->format) {
    case CTL_FORMAT_JSON:
        ctl_print_json(c, &r->base);
        break;
    case CTL_FORMAT_PROTOBUF:
        return ctl_print_protobuf(c, &r->base);
    case CTL_FORMAT_TABLE:
        return ctl_fail(c, CTL_EXIT_BAD_FEATURE, "table not supported as output format");
    case CTL_FORMAT_FIELDS:
        ctl_fields_header(c, r->header ? &r->header->base : NULL);
        for (size_t i = 0; i < r->n_kvs; i++)
            ctl_fields_kv(c, "", r->kvs[i]);
        fprintf(c->out, "\"More\" : %s\n\"Count\" : %" PRId64 "\n", r->more ? "true" : "false",
                r->count);
        break;
    default:
        for (size_t i = 0; i < r->n_kvs; i++)
            ctl_simple_kv(c, r->kvs[i], false);
        break;
    }
    fflush(c->out);
    return 0;
}

/* Gets key and prints it as get would. 0 or the exit status; *found says
 * whether the key exists. */
static int get_and_print(struct ctl *c, ProtobufCBinaryData key, bool *found)
{
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key = key;
    ProtobufCMessage *m;
    int rc = ctl_unary(c, "/etcdserverpb.KV/Range", &req.base,
                       &etcdserverpb__range_response__descriptor, &m);
    if (rc != 0)
        return rc;
    Etcdserverpb__RangeResponse *r = (Etcdserverpb__RangeResponse *)m;
    *found = r->n_kvs > 0;
    if (*found)
        rc = print_range(c, r);
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* lock                                                                     */

/* exec.LookPath's answer for a name without a slash: 0 when found. */
static int look_path(const char *name)
{
    if (strchr(name, '/'))
        return 0;
    const char *path = getenv("PATH");
    if (!path)
        return -1;
    size_t nlen = strlen(name);
    for (const char *p = path; *p;) {
        size_t dlen = strcspn(p, ":");
        char *full = metcd_malloc(dlen + nlen + 3);
        if (!full)
            return -1;
        snprintf(full, dlen + nlen + 3, "%.*s/%s", (int)dlen, dlen ? p : ".", name);
        struct stat st;
        bool ok = stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0;
        metcd_free(full);
        if (ok)
            return 0;
        p += dlen;
        if (*p == ':')
            p++;
    }
    return -1;
}

/* Go's (*exec.ExitError).Error() for a wait status. */
static void exit_text(int st, char *buf, size_t len)
{
    if (WIFEXITED(st)) {
        snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
        return;
    }
    static const struct {
        int sig;
        const char *name;
    } names[] = {{SIGKILL, "killed"},  {SIGTERM, "terminated"}, {SIGINT, "interrupt"},
                 {SIGHUP, "hangup"},   {SIGQUIT, "quit"},       {SIGSEGV, "segmentation fault"},
                 {SIGABRT, "aborted"}, {SIGPIPE, "broken pipe"}};
    int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].sig == sig) {
            snprintf(buf, len, "signal: %s", names[i].name);
            return;
        }
    snprintf(buf, len, "signal: %d", sig);
}

static int unlock(struct ctl *c, ProtobufCBinaryData key)
{
    V3lockpb__UnlockRequest req = V3LOCKPB__UNLOCK_REQUEST__INIT;
    req.key = key;
    ProtobufCMessage *m;
    int rc = ctl_unary(c, "/v3lockpb.Lock/Unlock", &req.base,
                       &v3lockpb__unlock_response__descriptor, &m);
    if (rc == 0)
        protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return rc;
}

/* Runs the command with the lock's variables; 0 or the exit status. */
static int run_locked(struct ctl *c, struct session *s, const struct ctl_args *a,
                      const V3lockpb__LockResponse *lr)
{
    const char *prog = a->pos[1];
    if (look_path(prog) != 0)
        return ctl_fail(c, CTL_EXIT_ERROR, "exec: \"%s\": executable file not found in $PATH",
                        prog);
    char rev[32];
    snprintf(rev, sizeof(rev), "%" PRId64, lr->header ? lr->header->revision : 0);
    char *key = metcd_malloc(lr->key.len + 1);
    if (!key)
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    memcpy(key, lr->key.data, lr->key.len);
    key[lr->key.len] = 0;
    char *argv[CTL_MAX_ARGS + 1];
    size_t n = 0;
    for (size_t i = 1; i < a->n_pos; i++)
        argv[n++] = (char *)a->pos[i];
    argv[n] = NULL;
    fflush(c->out);
    fflush(c->err);
    pid_t pid = fork();
    if (pid < 0) {
        metcd_free(key);
        return ctl_fail(c, CTL_EXIT_ERROR, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        setenv("ETCD_LOCK_KEY", key, 1);
        setenv("ETCD_LOCK_REV", rev, 1);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        execvp(prog, argv);
        _exit(127);
    }
    metcd_free(key);
    s->child = pid;
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
        s->child_status = st;
        s->child_done = true;
    }
    while (!s->child_done && !s->expired)
        session_wait(s);
    if (!s->child_done) {
        /* the session ended first: etcdctl still waits for the command */
        waitpid(pid, &s->child_status, 0);
    }
    int rc = unlock(c, lr->key);
    if (!WIFEXITED(s->child_status) || WEXITSTATUS(s->child_status) != 0) {
        char text[64];
        exit_text(s->child_status, text, sizeof(text));
        return ctl_fail(c, CTL_EXIT_ERROR, "%s", text);
    }
    return rc;
}

static int cmd_lock(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos == 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "lock takes a lock name argument and an optional command to execute");
    int rc = ctl_connect(c);
    if (rc != 0)
        return rc;
    struct session s;
    if ((rc = session_open(c, ctl_int(a, "ttl"), &s)) != 0)
        return rc;
    V3lockpb__LockRequest req = V3LOCKPB__LOCK_REQUEST__INIT;
    req.name = (ProtobufCBinaryData){strlen(a->pos[0]), (uint8_t *)a->pos[0]};
    req.lease = s.lease;
    ProtobufCMessage *m;
    rc = call_unbounded(c, "/v3lockpb.Lock/Lock", &req.base, &v3lockpb__lock_response__descriptor,
                        &m);
    if (rc != 0)
        goto out;
    V3lockpb__LockResponse *lr = (V3lockpb__LockResponse *)m;
    if (a->n_pos > 1) {
        rc = run_locked(c, &s, a, lr);
    } else {
        bool found = false;
        rc = get_and_print(c, lr->key, &found);
        if (rc == 0 && !found)
            rc = ctl_fail(c, CTL_EXIT_ERROR, "lock lost on init");
        if (rc == 0) {
            session_wait(&s);
            if (s.signalled)
                rc = unlock(c, lr->key);
            else
                rc = ctl_fail(c, CTL_EXIT_ERROR, "session expired");
        }
    }
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
out:
    session_close(&s);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* elect                                                                    */

static int campaign(struct ctl *c, const char *name, const char *prop)
{
    struct session s;
    int rc = session_open(c, 60, &s); /* concurrency.NewSession's default TTL */
    if (rc != 0)
        return rc;
    V3electionpb__CampaignRequest req = V3ELECTIONPB__CAMPAIGN_REQUEST__INIT;
    req.name = (ProtobufCBinaryData){strlen(name), (uint8_t *)name};
    req.lease = s.lease;
    req.value = (ProtobufCBinaryData){strlen(prop), (uint8_t *)prop};
    ProtobufCMessage *m;
    rc = call_unbounded(c, "/v3electionpb.Election/Campaign", &req.base,
                        &v3electionpb__campaign_response__descriptor, &m);
    if (rc != 0)
        goto out;
    V3electionpb__CampaignResponse *cr = (V3electionpb__CampaignResponse *)m;
    if (!cr->leader) {
        rc = ctl_fail(c, CTL_EXIT_ERROR, "elect: no leader key in the answer");
    } else {
        bool found;
        rc = get_and_print(c, cr->leader->key, &found);
        if (rc == 0) {
            session_wait(&s);
            if (s.signalled) {
                V3electionpb__ResignRequest rr = V3ELECTIONPB__RESIGN_REQUEST__INIT;
                rr.leader = cr->leader;
                ProtobufCMessage *rm;
                rc = ctl_unary(c, "/v3electionpb.Election/Resign", &rr.base,
                               &v3electionpb__resign_response__descriptor, &rm);
                if (rc == 0)
                    protobuf_c_message_free_unpacked(rm, &metcd_pb_allocator);
            } else {
                rc = ctl_fail(c, CTL_EXIT_ERROR, "elect: session expired");
            }
        }
    }
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
out:
    session_close(&s);
    return rc;
}

struct observer {
    struct ctl *c;
    struct session *s;
    bool lost;
    int rc;
};

static void on_observe_message(struct rpc_ccall *call, const ProtobufCMessage *msg, void *data)
{
    (void)call;
    struct observer *o = data;
    const V3electionpb__LeaderResponse *lr = (const V3electionpb__LeaderResponse *)msg;
    if (!lr->kv || o->rc != 0)
        return;
    /* concurrency's Observe hands out a GetResponse with the leader's kv */
    Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
    Mvccpb__KeyValue *kvs[1] = {lr->kv};
    r.header = lr->header;
    r.kvs = kvs;
    r.n_kvs = 1;
    r.count = 1;
    if ((o->rc = print_range(o->c, &r)) != 0)
        event_base_loopbreak(o->c->base);
}

static void on_observe_close(struct rpc_ccall *call, enum rpc_code code, const char *msg,
                             void *data)
{
    (void)call;
    (void)code;
    (void)msg;
    struct observer *o = data;
    o->lost = true;
    event_base_loopbreak(o->c->base);
}

static const struct rpc_ccall_ops observe_ops = {
    .on_message = on_observe_message,
    .on_close = on_observe_close,
};

static int observe(struct ctl *c, const char *name)
{
    struct session s;
    int rc = session_open(c, 60, &s);
    if (rc != 0)
        return rc;
    struct observer o = {.c = c, .s = &s};
    size_t n_md;
    const struct rpc_md *md = ctl_md(c, &n_md);
    struct rpc_ccall *call = NULL;
    rc = rpc_ccall_start(c->client, "/v3electionpb.Election/Observe",
                         &v3electionpb__leader_response__descriptor, md, n_md, 0, &observe_ops, &o,
                         &call);
    if (rc != 0) {
        rc = ctl_fail(c, CTL_EXIT_ERROR, "%s", rpc_strerror(rc));
        goto out;
    }
    V3electionpb__LeaderRequest req = V3ELECTIONPB__LEADER_REQUEST__INIT;
    req.name = (ProtobufCBinaryData){strlen(name), (uint8_t *)name};
    if (rpc_ccall_send(call, &req.base) != 0 || rpc_ccall_close_send(call) != 0) {
        rpc_ccall_cancel(call);
        rc = ctl_fail(c, CTL_EXIT_ERROR, "elect: observer lost");
        goto out;
    }
    while (!s.signalled && !o.lost && o.rc == 0)
        if (event_base_loop(c->base, 0) != 0)
            break;
    if (!o.lost)
        rpc_ccall_cancel(call);
    if (o.rc != 0)
        rc = o.rc;
    else if (!s.signalled)
        rc = ctl_fail(c, CTL_EXIT_ERROR, "elect: observer lost");
out:
    session_close(&s);
    return rc;
}

static int cmd_elect(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1 && a->n_pos != 2)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "elect takes one election name argument and an "
                        "optional proposal argument");
    bool listen = ctl_bool(a, "listen");
    if (a->n_pos == 1 && !listen)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "no proposal argument but -l not set");
    if (a->n_pos == 2 && listen)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "proposal given but -l is set");
    int rc = ctl_connect(c);
    if (rc != 0)
        return rc;
    return a->n_pos == 1 ? observe(c, a->pos[0]) : campaign(c, a->pos[0], a->pos[1]);
}

static const struct ctl_flag lock_flags[] = {
    {"ttl", 0, CTL_FLAG_INT, "10", "timeout for session"},
};
static const struct ctl_flag elect_flags[] = {
    {"listen", 'l', CTL_FLAG_BOOL, "false", "observation mode"},
};

const struct ctl_cmd ctl_cmd_lock = {
    .name = "lock",
    .use = "lock <lockname> [exec-command arg1 arg2 ...]",
    .summary = "Acquires a named lock",
    .flags = lock_flags,
    .n_flags = 1,
    .run = cmd_lock,
};

const struct ctl_cmd ctl_cmd_elect = {
    .name = "elect",
    .use = "elect <election-name> [proposal]",
    .summary = "Observes and participates in leader election",
    .flags = elect_flags,
    .n_flags = 1,
    .run = cmd_elect,
};
