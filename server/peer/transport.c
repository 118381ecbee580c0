/* server/peer/transport.c - the transport object: listeners, the peer
 * table, peer_send, stats, logging and the deferred raft feedback. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "common/mem.h"
#include "server/channelz/channelz.h"
#include "server/peer/internal.h"

const char *peer_strerror(int err)
{
    switch (err) {
    case PEER_OK:
        return "ok";
    case PEER_ERR_NOMEM:
        return "peer: out of memory";
    case PEER_ERR_INVAL:
        return "peer: invalid argument";
    case PEER_ERR_ADDR:
        return "peer: address did not resolve or could not be bound";
    case PEER_ERR_UNKNOWN:
        return "peer: unknown peer";
    case PEER_ERR_DROPPED:
        return "peer: message dropped (peer unreachable or queue full)";
    case PEER_ERR_TOO_BIG:
        return "peer: message over the frame size limit";
    case PEER_ERR_BUSY:
        return "peer: a snapshot to this peer is in flight";
    case PEER_ERR_IO:
        return "peer: I/O error";
    case PEER_ERR_TLS:
        return "peer: TLS setup failed";
    default:
        return "peer: unknown error";
    }
}

void peer_logf(struct peer_transport *t, int level, const char *fmt, ...)
{
    if (!t->cfg.log)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    t->cfg.log(t->cfg.log_ctx, level, "rafthttp", buf);
}

int64_t peer_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void peer_trace(struct peer *p, int sev, const char *fmt, ...)
{
    if (!p->cz_sub)
        return;
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    /* On the subchannel, and on the channel referencing it. */
    channelz_trace(p->cz_sub, (enum channelz_severity)sev, buf, NULL, peer_now_ns());
    channelz_trace_parent(p->cz_sub, (enum channelz_severity)sev, buf, peer_now_ns());
}

struct peer *peer_find(struct peer_transport *t, uint64_t id)
{
    for (struct peer *p = t->peers; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

/* ---- deferred raft feedback ---------------------------------------------- */

void peer_notify_unreachable(struct peer *p)
{
    p->pending_unreachable = true;
    event_active(p->t->notify, EV_TIMEOUT, 0);
}

void peer_notify_snap(struct peer *p, bool failed)
{
    p->pending_snap = failed ? 2 : 1;
    event_active(p->t->notify, EV_TIMEOUT, 0);
}

/* Each callback may add or remove peers: clear the flag, call, and rescan. */
static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct peer_transport *t = arg;
    for (;;) {
        struct peer *p = t->peers;
        while (p && !p->pending_unreachable && !p->pending_snap)
            p = p->next;
        if (!p)
            return;
        uint64_t id = p->id;
        if (p->pending_unreachable) {
            p->pending_unreachable = false;
            if (t->cb.on_unreachable)
                t->cb.on_unreachable(t->cb.arg, id);
        } else {
            bool failed = p->pending_snap == 2;
            p->pending_snap = 0;
            if (t->cb.on_snapshot_status)
                t->cb.on_snapshot_status(t->cb.arg, id, failed);
        }
    }
}

/* ---- listeners ----------------------------------------------------------- */

static int url_from_sockaddr(const struct peer_url *u, const struct sockaddr_storage *ss,
                             char **out)
{
    char host[INET6_ADDRSTRLEN] = "", buf[256];
    const char *scheme = u->scheme == SCHEME_HTTPS ? "https" : "http";
    if (u->scheme == SCHEME_UNIX) {
        *out = metcd_strdup(u->text);
        return *out ? 0 : PEER_ERR_NOMEM;
    }
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
        snprintf(buf, sizeof(buf), "%s://%s:%u", scheme, host, ntohs(in4->sin_port));
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, sizeof(buf), "%s://[%s]:%u", scheme, host, ntohs(in6->sin6_port));
    }
    *out = metcd_strdup(buf);
    return *out ? 0 : PEER_ERR_NOMEM;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct peer_transport *t = arg;
    bool tls = false;
    for (size_t i = 0; i < t->n_listeners; i++)
        if (t->listeners[i].l == l)
            tls = t->listeners[i].tls;
    peer_accept(t, fd, sa, salen, tls);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct peer_transport *t = arg;
    int err = EVUTIL_SOCKET_ERROR();
    peer_logf(t, 'W', "failed to accept a peer connection (%s)",
              evutil_socket_error_to_string(err));
}

static int listen_one(struct peer_transport *t, struct peer_listener *pl, const char *s,
                      char *errbuf, size_t errlen)
{
    struct peer_url u;
    int rc = peer_url_parse(s, &u);
    if (rc) {
        snprintf(errbuf, errlen, "invalid listen peer URL %s", s);
        return rc;
    }
    struct sockaddr_storage ss;
    socklen_t len;
    rc = peer_url_sockaddr(&u, &ss, &len);
    if (rc) {
        snprintf(errbuf, errlen, "cannot resolve listen peer URL %s", s);
        goto out;
    }
    if (u.scheme == SCHEME_UNIX) {
        unlink(u.host); /* a stale socket from a previous run */
        pl->unix_path = metcd_strdup(u.host);
        if (!pl->unix_path) {
            rc = PEER_ERR_NOMEM;
            goto out;
        }
    }
    pl->tls = u.scheme == SCHEME_HTTPS;
    pl->l = evconnlistener_new_bind(
        t->base, on_accept, t, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        128, (struct sockaddr *)&ss, (int)len);
    if (!pl->l) {
        snprintf(errbuf, errlen, "listen tcp %s: %s", s, strerror(errno));
        metcd_free(pl->unix_path);
        pl->unix_path = NULL;
        rc = PEER_ERR_ADDR;
        goto out;
    }
    evconnlistener_set_error_cb(pl->l, on_accept_error);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    if (u.scheme != SCHEME_UNIX &&
        getsockname(evconnlistener_get_fd(pl->l), (struct sockaddr *)&bound, &blen) == 0)
        rc = url_from_sockaddr(&u, &bound, &pl->url);
    else
        rc = url_from_sockaddr(&u, &ss, &pl->url);
    if (rc)
        goto out;
    if (t->cz_server) {
        channelz_add(t->cfg.channelz, CHANNELZ_LISTEN_SOCKET, t->cz_server, pl->url, peer_now_ns(),
                     &pl->cz);
        if (pl->cz && u.scheme != SCHEME_UNIX)
            channelz_set_addrs(pl->cz, (struct sockaddr *)&bound, blen, NULL, 0);
    }
out:
    peer_url_clear(&u);
    return rc;
}

static char *dup_opt(const char *s, bool *fail)
{
    if (!s)
        return NULL;
    char *d = metcd_strdup(s);
    if (!d)
        *fail = true;
    return d;
}

/* libevent writes with writev(2): a peer that closed its end would raise
 * SIGPIPE and kill the member. Ignored unless the program chose otherwise. */
static void ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

int peer_transport_new(peer_transport **out, struct event_base *base, const peer_config *cfg,
                       const peer_callbacks *cb, char *errbuf, size_t errlen)
{
    char dummy[8];
    if (!errbuf || !errlen) {
        errbuf = dummy;
        errlen = sizeof(dummy);
    }
    errbuf[0] = 0;
    *out = NULL;
    if (!base || !cfg || cfg->self_id == 0 || (cfg->n_listen_urls && !cfg->listen_urls)) {
        snprintf(errbuf, errlen, "invalid peer transport configuration");
        return PEER_ERR_INVAL;
    }
    ignore_sigpipe();
    struct peer_transport *t = metcd_calloc(1, sizeof(*t));
    if (!t)
        return PEER_ERR_NOMEM;
    t->base = base;
    t->cfg = *cfg;
    if (cb)
        t->cb = *cb;
    if (!t->cfg.queue_bytes)
        t->cfg.queue_bytes = 4u << 20;
    if (!t->cfg.dial_timeout_ms)
        t->cfg.dial_timeout_ms = 1000;
    if (!t->cfg.snap_timeout_ms)
        t->cfg.snap_timeout_ms = 30000;
    if (!t->cfg.snap_max_bytes)
        t->cfg.snap_max_bytes = (uint64_t)64 << 30;
    t->cfg.listen_urls = NULL;
    t->cfg.n_listen_urls = 0;
    int rc = PEER_ERR_NOMEM;
    bool fail = false;
    const char *dir = cfg->snap_dir;
    if (!dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    t->snap_dir = dup_opt(dir, &fail);
    t->cert_file = dup_opt(cfg->cert_file, &fail);
    t->key_file = dup_opt(cfg->key_file, &fail);
    t->ca_file = dup_opt(cfg->trusted_ca_file, &fail);
    t->cfg.snap_dir = t->snap_dir;
    t->cfg.cert_file = t->cert_file;
    t->cfg.key_file = t->key_file;
    t->cfg.trusted_ca_file = t->ca_file;
    if (fail)
        goto err;
    t->notify = event_new(base, -1, 0, on_notify, t);
    if (!t->notify)
        goto err;
    bool need_server = false;
    for (size_t i = 0; i < cfg->n_listen_urls; i++)
        if (strncmp(cfg->listen_urls[i], "https://", 8) == 0)
            need_server = true;
    rc = peer_tls_init(t, cfg, need_server, errbuf, errlen);
    if (rc)
        goto err;
    if (t->cfg.channelz) {
        if (channelz_add(t->cfg.channelz, CHANNELZ_SERVER, NULL, "peer", peer_now_ns(),
                         &t->cz_server) != 0) {
            rc = PEER_ERR_NOMEM;
            goto err;
        }
    }
    if (cfg->n_listen_urls) {
        t->listeners = metcd_calloc(cfg->n_listen_urls, sizeof(*t->listeners));
        if (!t->listeners) {
            rc = PEER_ERR_NOMEM;
            goto err;
        }
    }
    for (size_t i = 0; i < cfg->n_listen_urls; i++) {
        rc = listen_one(t, &t->listeners[i], cfg->listen_urls[i], errbuf, errlen);
        t->n_listeners = i + 1; /* partially set up entries are freed too */
        if (rc)
            goto err;
        peer_logf(t, 'I', "listening for peers on %s", t->listeners[i].url);
    }
    *out = t;
    return 0;
err:
    if (rc == PEER_ERR_NOMEM && !errbuf[0])
        snprintf(errbuf, errlen, "out of memory");
    peer_transport_free(t);
    return rc;
}

static void peer_free(struct peer *p)
{
    peer_stream_stop(p);
    if (p->snap_out)
        peer_conn_close(p->snap_out);
    if (p->in)
        peer_conn_close(p->in);
    /* Inbound snapshot connections of this peer go too. */
    for (struct peer_conn *c = p->t->conns, *n; c; c = n) {
        n = c->next;
        if (c->p == p)
            peer_conn_close(c);
    }
    if (p->redial)
        event_free(p->redial);
    for (size_t i = 0; i < p->n_urls; i++)
        peer_url_clear(&p->urls[i]);
    metcd_free(p->urls);
    if (p->cz_sub) {
        channelz_set_state(p->cz_sub, CHANNELZ_STATE_SHUTDOWN);
        channelz_remove(p->cz_sub);
    }
    channelz_remove(p->cz_channel);
    metcd_free(p);
}

void peer_transport_free(peer_transport *t)
{
    if (!t)
        return;
    while (t->peers) {
        struct peer *p = t->peers;
        t->peers = p->next;
        peer_free(p);
    }
    while (t->conns)
        peer_conn_close(t->conns);
    for (size_t i = 0; i < t->n_listeners; i++) {
        struct peer_listener *pl = &t->listeners[i];
        if (pl->l)
            evconnlistener_free(pl->l);
        if (pl->unix_path) {
            unlink(pl->unix_path);
            metcd_free(pl->unix_path);
        }
        channelz_remove(pl->cz);
        metcd_free(pl->url);
    }
    metcd_free(t->listeners);
    channelz_remove(t->cz_server);
    if (t->notify)
        event_free(t->notify);
    peer_tls_free(t);
    metcd_free(t->snap_dir);
    metcd_free(t->cert_file);
    metcd_free(t->key_file);
    metcd_free(t->ca_file);
    metcd_free(t);
}

const char *peer_listen_url(const peer_transport *t, size_t i)
{
    return i < t->n_listeners ? t->listeners[i].url : NULL;
}

/* ---- the peer table -------------------------------------------------------- */

static int parse_urls(const char *const *urls, size_t n, struct peer_url **out)
{
    struct peer_url *v = metcd_calloc(n ? n : 1, sizeof(*v));
    if (!v)
        return PEER_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = urls[i] ? peer_url_parse(urls[i], &v[i]) : PEER_ERR_INVAL;
        if (rc) {
            for (size_t j = 0; j < i; j++)
                peer_url_clear(&v[j]);
            metcd_free(v);
            return rc;
        }
    }
    *out = v;
    return 0;
}

static void on_redial(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    peer_stream_start(arg);
}

int peer_add(peer_transport *t, uint64_t id, const char *const *urls, size_t n)
{
    if (id == 0 || id == t->cfg.self_id || (n && !urls))
        return PEER_ERR_INVAL;
    struct peer_url *v;
    int rc = parse_urls(urls, n, &v);
    if (rc)
        return rc;
    struct peer *p = peer_find(t, id);
    if (p) {
        /* Keep the stream when its URL is still listed. */
        bool keep = false;
        if (p->out)
            for (size_t i = 0; i < n; i++)
                keep |= strcmp(v[i].text, p->out->url) == 0;
        for (size_t i = 0; i < p->n_urls; i++)
            peer_url_clear(&p->urls[i]);
        metcd_free(p->urls);
        p->urls = v;
        p->n_urls = n;
        p->next_url = 0;
        if (!keep) {
            peer_stream_stop(p);
            p->backoff_ms = 0;
            peer_stream_start(p);
        }
        return 0;
    }
    p = metcd_calloc(1, sizeof(*p));
    if (!p)
        goto err_urls;
    p->t = t;
    p->id = id;
    p->urls = v;
    p->n_urls = n;
    p->st.id = id;
    p->redial = evtimer_new(t->base, on_redial, p);
    if (!p->redial)
        goto err_peer;
    if (t->cfg.channelz) {
        char name[64];
        snprintf(name, sizeof(name), "peer %016llx", (unsigned long long)id);
        if (channelz_add(t->cfg.channelz, CHANNELZ_CHANNEL, NULL, name, peer_now_ns(),
                         &p->cz_channel) != 0)
            goto err_event;
        if (channelz_add(t->cfg.channelz, CHANNELZ_SUBCHANNEL, p->cz_channel, "stream Message",
                         peer_now_ns(), &p->cz_sub) != 0)
            goto err_cz;
        channelz_set_state(p->cz_channel, CHANNELZ_STATE_IDLE);
        channelz_set_state(p->cz_sub, CHANNELZ_STATE_IDLE);
    }
    /* Appended: stats come out in peer_add order. */
    struct peer **tail = &t->peers;
    while (*tail)
        tail = &(*tail)->next;
    *tail = p;
    peer_logf(t, 'I', "added peer %016llx", (unsigned long long)id);
    peer_stream_start(p);
    return 0;
err_cz:
    channelz_remove(p->cz_channel);
err_event:
    event_free(p->redial);
err_peer:
    metcd_free(p);
err_urls:
    for (size_t i = 0; i < n; i++)
        peer_url_clear(&v[i]);
    metcd_free(v);
    return PEER_ERR_NOMEM;
}

int peer_remove(peer_transport *t, uint64_t id)
{
    for (struct peer **pp = &t->peers; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct peer *p = *pp;
            *pp = p->next;
            peer_free(p);
            peer_logf(t, 'I', "removed peer %016llx", (unsigned long long)id);
            return 0;
        }
    }
    return PEER_ERR_UNKNOWN;
}

/* ---- sending ---------------------------------------------------------------- */

static int drop(struct peer *p, const raft_msg *m, const char *why)
{
    p->st.msgs_dropped++;
    if (!p->full_logged) {
        p->full_logged = true;
        peer_logf(p->t, 'W', "dropped internal raft message (%s) to %016llx since %s",
                  raft_msg_type_name(m->type), (unsigned long long)p->id, why);
    }
    peer_notify_unreachable(p);
    return PEER_ERR_DROPPED;
}

int peer_send(peer_transport *t, const raft_msg *m)
{
    if (m->type == RAFT_MSG_SNAP)
        return PEER_ERR_INVAL;
    struct peer *p = peer_find(t, m->to);
    if (!p)
        return PEER_ERR_UNKNOWN;
    /* Until the stream is up, messages ride the first dial only. */
    if (!p->out || (p->out->state != CS_ACTIVE && p->unreachable))
        return drop(p, m, "it is unreachable");
    uint8_t *buf;
    size_t len;
    int rc = raft_msg_encode(m, &buf, &len);
    if (rc)
        return rc == RAFT_ENOMEM ? PEER_ERR_NOMEM : PEER_ERR_INVAL;
    if (len > PEER_MAX_MSG_FRAME) {
        metcd_free(buf);
        p->st.msgs_dropped++;
        return PEER_ERR_TOO_BIG;
    }
    /* One message larger than the bound still goes through an empty queue. */
    size_t queued = peer_conn_queued(p->out);
    if (queued && queued + PEER_FRAME_HDR + len > t->cfg.queue_bytes) {
        metcd_free(buf);
        return drop(p, m, "its sending buffer is full (bad/overloaded network)");
    }
    rc = peer_conn_write_frame(p->out, FRAME_MSG, buf, len, true);
    if (rc)
        return rc;
    p->full_logged = false;
    p->out->msgs_queued++;
    p->st.msgs_sent++;
    p->st.bytes_sent += PEER_FRAME_HDR + len;
    if (p->out->cz_socket) {
        struct channelz_socket_data *sd = channelz_socket_of(p->out->cz_socket);
        if (sd) {
            sd->messages_sent++;
            sd->last_message_sent_ns = peer_now_ns();
        }
    }
    return 0;
}

int peer_send_snapshot(peer_transport *t, const raft_msg *snap_msg, int fd)
{
    if (fd < 0)
        return PEER_ERR_INVAL;
    struct peer *p;
    int rc;
    if (snap_msg->type != RAFT_MSG_SNAP || !snap_msg->snapshot) {
        rc = PEER_ERR_INVAL;
    } else if (!(p = peer_find(t, snap_msg->to))) {
        rc = PEER_ERR_UNKNOWN;
    } else if (p->snap_out) {
        rc = PEER_ERR_BUSY;
    } else {
        return peer_snap_start(p, snap_msg, fd); /* takes fd */
    }
    close(fd);
    return rc;
}

size_t peer_get_stats(const peer_transport *t, peer_stats *out, size_t cap)
{
    size_t n = 0;
    for (struct peer *p = t->peers; p; p = p->next, n++) {
        if (n >= cap)
            continue;
        out[n] = p->st;
        out[n].active = p->out && p->out->state == CS_ACTIVE;
        out[n].inbound_active = p->in != NULL;
        out[n].sending_snapshot = p->snap_out != NULL;
        out[n].queued_bytes = p->out ? peer_conn_queued(p->out) : 0;
    }
    return n;
}
