/* idgen/client/client.c - the application library (idgen_client.h): one
 * idgen_worker over grpc_kv, on a thread of its own.
 *
 * The client's thread runs a libevent loop: the gRPC connection, the
 * worker's tick (IDGEN_TICK_MS) and a command event other threads activate
 * (stop, restart, quit). The worker is touched under one (recursive) lock:
 * by that thread for ticks and KV completions, and by callers for
 * idgen_worker_next, which never calls into the KV. Notifications are
 * collected under the lock and acted on (the condition variable, the
 * stopped callback) once it is released. */
#include "idgen/client/internal.h"

#include "common/mem.h"
#include "server/etcdserverpb/rpc.pb-c.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 5000
#define WAIT_SLICE_MS 1000 /* a wait for the clock longer than this is a drift error */

struct idgen_client {
    idgen_client_config cfg;
    char *prefix, *owner, *info, *user, *password;
    char **endpoints;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;

    struct event_base *base;
    struct event *tick_ev, *cmd_ev;
    grpc_kv *kv;
    idgen_kv iface;
    idgen_clock clock;
    idgen_worker *w;

    /* under mu */
    bool setup_done;
    int setup_rc;
    char setup_err[256];
    bool want_stop, want_restart, want_quit;
    bool ready, stopped;
    int stop_reason;
    bool stopped_pending; /* the callback is due once the lock is released */
};

static int64_t wall_ms(void *data)
{
    idgen_client *c = data;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + c->cfg.clock_offset_ms;
}

static void lock(void *arg)
{
    pthread_mutex_lock(&((idgen_client *)arg)->mu);
}

/* Releases the lock, then runs what the notifications asked for. */
static void unlock(void *arg)
{
    idgen_client *c = arg;
    bool fire = c->stopped_pending;
    int reason = c->stop_reason;
    c->stopped_pending = false;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (fire && c->cfg.on_stopped)
        c->cfg.on_stopped(c->cfg.arg, reason);
}

static void on_notify(void *arg, int event, const char *tag, int err)
{
    (void)tag;
    idgen_client *c = arg; /* the lock is held */
    switch (event) {
    case IDGEN_EVENT_READY:
        c->ready = true;
        c->stopped = false;
        break;
    case IDGEN_EVENT_NOT_READY:
        c->ready = false;
        break;
    case IDGEN_EVENT_STOPPED:
        c->ready = false;
        c->stopped = true;
        c->stop_reason = err;
        c->stopped_pending = true;
        break;
    default:
        break;
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    idgen_client *c = arg;
    lock(c);
    idgen_worker_tick(c->w);
    unlock(c);
}

static void on_cmd(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    idgen_client *c = arg;
    lock(c);
    if (c->want_quit) {
        unlock(c);
        event_base_loopbreak(c->base);
        return;
    }
    if (c->want_stop) {
        c->want_stop = false;
        idgen_worker_stop(c->w);
    }
    if (c->want_restart) {
        c->want_restart = false;
        if (idgen_worker_restart(c->w) == 0)
            c->stopped = false;
    }
    unlock(c);
}

/* ---- the thread ------------------------------------------------------------------------ */

static int authenticate(idgen_client *c)
{
    Etcdserverpb__AuthenticateRequest req = ETCDSERVERPB__AUTHENTICATE_REQUEST__INIT;
    req.name = c->user;
    req.password = c->password ? c->password : (char *)"";
    ProtobufCMessage *resp = NULL;
    enum rpc_code code = RPC_CODE_UNKNOWN;
    char *msg = NULL;
    int rc = rpc_client_unary_sync(grpc_kv_rpc(c->kv), "/etcdserverpb.Auth/Authenticate", &req.base,
                                   &etcdserverpb__authenticate_response__descriptor, NULL, 0,
                                   c->cfg.call_timeout_ms, &resp, &code, &msg);
    if (rc == 0 && code == RPC_CODE_OK && resp)
        rc = grpc_kv_set_token(c->kv, ((Etcdserverpb__AuthenticateResponse *)resp)->token);
    else
        rc = IDGEN_EKV;
    if (rc != 0)
        snprintf(c->setup_err, sizeof(c->setup_err), "authentication failed: %s: %s",
                 rpc_code_name(code), msg ? msg : "-");
    metcd_free(msg);
    if (resp)
        protobuf_c_message_free_unpacked(resp, &metcd_pb_allocator);
    return rc;
}

static int setup(idgen_client *c)
{
    grpc_kv_config kc = {
        .base = c->base,
        .endpoints = (const char *const *)c->endpoints,
        .n_endpoints = c->cfg.n_endpoints,
        .timeout_ms = c->cfg.call_timeout_ms,
        .enter = lock,
        .leave = unlock,
        .lock_arg = c,
    };
    int rc = grpc_kv_new(&c->kv, &kc);
    if (rc != 0) {
        snprintf(c->setup_err, sizeof(c->setup_err), "cannot set up the gRPC client: %s",
                 idgen_strerror(rc));
        return rc;
    }
    if (c->user && (rc = authenticate(c)) != 0)
        return rc;
    grpc_kv_iface(c->kv, &c->iface);
    c->clock.now_ms = wall_ms;
    c->clock.data = c;
    idgen_worker_config wc = {
        .prefix = c->prefix,
        .owner = c->owner,
        .info = c->info,
        .epoch_ms = c->cfg.epoch_ms,
        .max_workers = c->cfg.max_workers,
        .lease_ttl_s = c->cfg.lease_ttl_s,
        .max_drift_block_ms = c->cfg.max_drift_block_ms,
        .max_drift_error_ms = c->cfg.max_drift_error_ms,
    };
    c->tick_ev = event_new(c->base, -1, EV_PERSIST, on_tick, c);
    c->cmd_ev = event_new(c->base, -1, 0, on_cmd, c);
    struct timeval tv = {0, IDGEN_TICK_MS * 1000};
    if (!c->tick_ev || !c->cmd_ev || event_add(c->tick_ev, &tv) != 0) {
        snprintf(c->setup_err, sizeof(c->setup_err), "out of memory");
        return IDGEN_ENOMEM;
    }
    lock(c);
    rc = idgen_worker_new(&c->w, &c->iface, &c->clock, &wc, on_notify, c);
    unlock(c);
    if (rc != 0)
        snprintf(c->setup_err, sizeof(c->setup_err), "cannot start the worker: %s",
                 idgen_strerror(rc));
    return rc;
}

static void *run(void *arg)
{
    idgen_client *c = arg;
    int rc = setup(c);
    pthread_mutex_lock(&c->mu);
    c->setup_done = true;
    c->setup_rc = rc;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (rc == 0)
        event_base_dispatch(c->base);
    /* teardown on this thread: the loop's objects belong to it */
    lock(c);
    idgen_worker_free(c->w); /* a husk until the KV's answers are in */
    c->w = NULL;
    unlock(c);
    grpc_kv_free(c->kv); /* answers everything in flight (into the husk) */
    c->kv = NULL;
    if (c->tick_ev)
        event_free(c->tick_ev);
    if (c->cmd_ev)
        event_free(c->cmd_ev);
    c->tick_ev = c->cmd_ev = NULL;
    return NULL;
}

/* ---- the API ----------------------------------------------------------------------------- */

static void client_destroy(idgen_client *c)
{
    if (c->base)
        event_base_free(c->base);
    for (size_t i = 0; c->endpoints && i < c->cfg.n_endpoints; i++)
        metcd_free(c->endpoints[i]);
    metcd_free(c->endpoints);
    metcd_free(c->prefix);
    metcd_free(c->owner);
    metcd_free(c->info);
    metcd_free(c->user);
    metcd_free(c->password);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    metcd_free(c);
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = metcd_strdup(s);
    if (!d)
        *oom = true;
    return d;
}

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
static int evthread_rc;
static void evthread_init(void)
{
    evthread_rc = evthread_use_pthreads();
}

int idgen_client_new(idgen_client **out, const idgen_client_config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg || !cfg->endpoints || cfg->n_endpoints == 0) {
        snprintf(err, errlen, "no endpoints");
        return IDGEN_EINVAL;
    }
    pthread_once(&evthread_once, evthread_init);
    if (evthread_rc != 0) {
        snprintf(err, errlen, "libevent has no thread support");
        return IDGEN_EKV;
    }
    idgen_client *c = metcd_calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return IDGEN_ENOMEM;
    }
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&c->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_cond_init(&c->cv, NULL);
    c->cfg = *cfg;
    if (!c->cfg.call_timeout_ms)
        c->cfg.call_timeout_ms = DEFAULT_TIMEOUT_MS;
    bool oom = false;
    c->endpoints = metcd_calloc(cfg->n_endpoints, sizeof(*c->endpoints));
    oom = !c->endpoints;
    for (size_t i = 0; !oom && i < cfg->n_endpoints; i++)
        c->endpoints[i] = dup_or_null(cfg->endpoints[i], &oom);
    c->prefix = dup_or_null(cfg->prefix, &oom);
    c->owner = dup_or_null(cfg->owner, &oom);
    c->user = dup_or_null(cfg->user, &oom);
    c->password = dup_or_null(cfg->password, &oom);
    if (cfg->info) {
        c->info = dup_or_null(cfg->info, &oom);
    } else {
        char host[128] = "?", info[256];
        gethostname(host, sizeof(host) - 1);
        snprintf(info, sizeof(info), "idgen-client %s %ld", host, (long)getpid());
        c->info = dup_or_null(info, &oom);
    }
    c->cfg.endpoints = NULL;
    c->cfg.prefix = c->cfg.owner = c->cfg.info = c->cfg.user = c->cfg.password = NULL;
    if (oom) {
        client_destroy(c);
        snprintf(err, errlen, "out of memory");
        return IDGEN_ENOMEM;
    }
    c->base = event_base_new();
    if (!c->base || pthread_create(&c->thread, NULL, run, c) != 0) {
        client_destroy(c);
        snprintf(err, errlen, "cannot start the client's thread");
        return IDGEN_EKV;
    }
    c->thread_started = true;
    pthread_mutex_lock(&c->mu);
    while (!c->setup_done)
        pthread_cond_wait(&c->cv, &c->mu);
    int rc = c->setup_rc;
    pthread_mutex_unlock(&c->mu);
    if (rc != 0) {
        snprintf(err, errlen, "%s", c->setup_err);
        pthread_join(c->thread, NULL);
        client_destroy(c);
        return rc == IDGEN_ENOMEM ? rc : IDGEN_EKV;
    }
    *out = c;
    return 0;
}

static void deadline_of(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

int idgen_client_wait_ready(idgen_client *c, int64_t timeout_ms)
{
    struct timespec dl;
    deadline_of(&dl, timeout_ms);
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    while (!c->ready && !c->stopped && rc == 0)
        rc = pthread_cond_timedwait(&c->cv, &c->mu, &dl);
    int out = c->ready ? 0 : c->stopped ? IDGEN_ESTOPPED : IDGEN_ENOT_READY;
    pthread_mutex_unlock(&c->mu);
    return out;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int idgen_client_next_n(idgen_client *c, uint64_t count, idgen_range *out, size_t max_out,
                        size_t *n_out)
{
    *n_out = 0;
    if (count == 0 || max_out == 0)
        return IDGEN_EINVAL;
    uint64_t left = count;
    int64_t waited = 0;
    while (left > 0 && *n_out < max_out) {
        int64_t wait = 0;
        pthread_mutex_lock(&c->mu);
        int rc = idgen_worker_next(c->w, left, &out[*n_out], &wait);
        pthread_mutex_unlock(&c->mu);
        if (rc == 0) {
            left -= out[*n_out].count;
            (*n_out)++;
            continue;
        }
        if (rc == IDGEN_EWAIT && wait <= 1) {
            /* this millisecond's 4096 are used (or the clock is a hair
             * behind): spin until it turns, as snowflake generators do */
            int64_t until = c->clock.now_ms(c) + 1;
            while (c->clock.now_ms(c) < until) {
            }
            continue;
        }
        if (rc == IDGEN_EWAIT && waited + wait <= WAIT_SLICE_MS) {
            sleep_ms(wait);
            waited += wait;
            continue;
        }
        if (*n_out > 0)
            return 0; /* what was taken is the caller's */
        return rc == IDGEN_EWAIT ? IDGEN_EDRIFT : rc;
    }
    return 0;
}

int idgen_client_next(idgen_client *c, uint64_t *id)
{
    idgen_range r;
    size_t n;
    int rc = idgen_client_next_n(c, 1, &r, 1, &n);
    if (rc == 0)
        *id = r.start;
    return rc;
}

void idgen_client_info(idgen_client *c, idgen_worker_info *out)
{
    pthread_mutex_lock(&c->mu);
    idgen_worker_get_info(c->w, out);
    pthread_mutex_unlock(&c->mu);
}

int idgen_client_stop(idgen_client *c, int64_t timeout_ms)
{
    struct timespec dl;
    deadline_of(&dl, timeout_ms);
    pthread_mutex_lock(&c->mu);
    c->want_stop = true;
    event_active(c->cmd_ev, EV_TIMEOUT, 0);
    int rc = 0;
    while (!c->stopped && rc == 0)
        rc = pthread_cond_timedwait(&c->cv, &c->mu, &dl);
    int out = c->stopped ? 0 : IDGEN_ENOT_READY;
    pthread_mutex_unlock(&c->mu);
    return out;
}

int idgen_client_restart(idgen_client *c)
{
    pthread_mutex_lock(&c->mu);
    int rc = c->stopped ? 0 : IDGEN_EINVAL;
    if (rc == 0) {
        c->want_restart = true;
        event_active(c->cmd_ev, EV_TIMEOUT, 0);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void idgen_client_free(idgen_client *c)
{
    if (!c)
        return;
    if (c->thread_started) {
        pthread_mutex_lock(&c->mu);
        c->want_quit = true;
        event_active(c->cmd_ev, EV_TIMEOUT, 0);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
    }
    client_destroy(c);
}
