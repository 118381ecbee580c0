/* server/peer/conn.c - connections: our message stream to each peer (dial,
 * hello, backoff), accepted connections (hello check, frame reading) and
 * the one place a connection is freed. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "common/mem.h"
#include "server/channelz/channelz.h"
#include "server/peer/internal.h"
#include "server/tls/tls.h"

#define MAX_INBOUND_CONNS 1024
#define STREAM_WRITE_TIMEOUT_MS 5000 /* etcd's ConnWriteTimeout */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define READ_HWM (1u << 20)
#define FRAMES_PER_EVENT 256
#define IO_SIZE (256 << 10)

static void on_conn_read(struct bufferevent *bev, void *arg);
static void on_conn_write(struct bufferevent *bev, void *arg);
static void on_conn_event(struct bufferevent *bev, short what, void *arg);

static struct timeval ms_tv(uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static void set_nodelay(struct bufferevent *bev)
{
    int one = 1;
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails on unix: fine */
}

static void on_resume(evutil_socket_t fd, short what, void *arg);

struct peer_conn *peer_conn_new(struct peer_transport *t, enum conn_kind kind)
{
    struct peer_conn *c = metcd_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->t = t;
    c->kind = kind;
    c->snap_fd = -1;
    c->resume = event_new(t->base, -1, 0, on_resume, c);
    if (!c->resume) {
        metcd_free(c);
        return NULL;
    }
    return c;
}

static void conn_detach(struct peer_conn *c)
{
    struct peer *p = c->p;
    if (!p)
        return;
    if (p->out == c)
        p->out = NULL;
    if (p->snap_out == c)
        p->snap_out = NULL;
    if (p->in == c)
        p->in = NULL;
    c->p = NULL;
}

void peer_conn_close(struct peer_conn *c)
{
    conn_detach(c);
    if (c->dispatching) {
        c->dead = true;
        if (c->bev)
            bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        return;
    }
    if (c->kind == CONN_IN) {
        if (c->prev)
            c->prev->next = c->next;
        else
            c->t->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        c->t->n_conns--;
    }
    if (c->bev)
        bufferevent_free(c->bev);
    event_free(c->resume);
    if (c->cz_socket)
        channelz_remove(c->cz_socket);
    peer_snap_clear(c);
    metcd_free(c);
}

size_t peer_conn_queued(const struct peer_conn *c)
{
    return c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

static void free_payload(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    metcd_free((void *)data);
}

int peer_conn_write_frame(struct peer_conn *c, uint8_t type, const void *payload, size_t len,
                          bool take)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    uint8_t hdr[PEER_FRAME_HDR];
    peer_frame_hdr(hdr, (uint32_t)len, type);
    int rc = evbuffer_add(out, hdr, sizeof(hdr));
    if (rc == 0 && len) {
        /* Large payloads are handed over without a copy. */
        if (take && len >= 4096) {
            rc = evbuffer_add_reference(out, payload, len, free_payload, NULL);
            if (rc == 0)
                return 0;
        } else {
            rc = evbuffer_add(out, payload, len);
        }
    }
    if (take)
        metcd_free((void *)payload);
    return rc ? PEER_ERR_NOMEM : 0;
}

/* libevent writes at most 16 KiB per write event by default: small for
 * streams of appends and for snapshots. (Its reads stay at 4 KiB per
 * event: evbuffer_read's own cap in 2.1.) Fairness between peers comes
 * from FRAMES_PER_EVENT and from those bounded reads. */
static void set_io_size(struct bufferevent *bev)
{
    bufferevent_set_max_single_read(bev, IO_SIZE);
    bufferevent_set_max_single_write(bev, IO_SIZE);
}

static struct bufferevent *new_bev(struct peer_transport *t, int fd, bool tls, bool server)
{
    int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    struct bufferevent *bev;
    if (!tls) {
        bev = bufferevent_socket_new(t->base, fd, opts);
        if (bev)
            set_io_size(bev);
        return bev;
    }
    SSL_CTX *ctx = server ? t->ssl_server : t->ssl_client;
    if (!ctx)
        return NULL;
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    bev = bufferevent_openssl_socket_new(
        t->base, fd, ssl, server ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING, opts);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    set_io_size(bev);
    return bev;
}

int peer_conn_dial(struct peer_conn *c, const struct peer_url *url, const struct peer_hello *h)
{
    struct peer_transport *t = c->t;
    snprintf(c->url, sizeof(c->url), "%s", url->text);
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = peer_url_sockaddr(url, &ss, &len);
    if (rc)
        return rc;
    c->bev = new_bev(t, -1, url->scheme == SCHEME_HTTPS, false);
    if (!c->bev)
        return url->scheme == SCHEME_HTTPS && !t->ssl_client ? PEER_ERR_TLS : PEER_ERR_NOMEM;
    bufferevent_setcb(c->bev, on_conn_read, on_conn_write, on_conn_event, c);
    struct timeval tv = ms_tv(t->cfg.dial_timeout_ms);
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    uint8_t hello[PEER_HELLO_LEN];
    peer_hello_encode(h, hello);
    if (bufferevent_write(c->bev, hello, sizeof(hello)) != 0)
        goto err;
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->state = CS_CONNECTING;
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, (int)len) != 0)
        goto err;
    return 0;
err:
    bufferevent_free(c->bev);
    c->bev = NULL;
    return PEER_ERR_IO;
}

/* ---- our message stream to a peer ------------------------------------------ */

static void stream_schedule_redial(struct peer *p)
{
    if (p->backoff_ms == 0)
        p->backoff_ms = BACKOFF_MIN_MS;
    else if (p->backoff_ms < BACKOFF_MAX_MS)
        p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
    struct timeval tv = ms_tv(p->backoff_ms);
    evtimer_add(p->redial, &tv);
}

static void stream_lost(struct peer_conn *c, const char *why)
{
    struct peer *p = c->p;
    struct peer_transport *t = c->t;
    bool was_active = c->state == CS_ACTIVE;
    if (p) {
        if (was_active) {
            peer_logf(t, 'W',
                      "lost the TCP streaming connection with peer %016llx (stream "
                      "Message writer): %s",
                      (unsigned long long)p->id, why);
            peer_logf(t, 'W', "peer %016llx became inactive (message send to peer failed)",
                      (unsigned long long)p->id);
            peer_trace(p, CHANNELZ_SEV_WARNING, "lost connection to %s: %s", c->url, why);
            p->backoff_ms = 0;
        } else if (!p->fail_logged || strncmp(p->fail_why, why, sizeof(p->fail_why) - 1) != 0) {
            peer_logf(t, 'W', "failed to dial %016llx on stream Message (%s: %s)",
                      (unsigned long long)p->id, c->url, why);
            peer_trace(p, CHANNELZ_SEV_WARNING, "failed to dial %s: %s", c->url, why);
        }
        snprintf(p->fail_why, sizeof(p->fail_why), "%s", why);
        p->fail_logged = true;
        p->unreachable = true;
        if (c->msgs_queued && !was_active) {
            /* Messages that rode the dial are lost with it. */
            p->st.msgs_dropped += c->msgs_queued;
            peer_notify_unreachable(p);
        }
        if (p->cz_sub) {
            channelz_set_state(p->cz_sub, CHANNELZ_STATE_TRANSIENT_FAILURE);
            channelz_set_state(p->cz_channel, CHANNELZ_STATE_TRANSIENT_FAILURE);
        }
        if (was_active)
            peer_notify_unreachable(p);
        stream_schedule_redial(p);
    }
    peer_conn_close(c);
}

void peer_stream_start(struct peer *p)
{
    if (p->out || p->n_urls == 0)
        return;
    evtimer_del(p->redial);
    struct peer_conn *c = peer_conn_new(p->t, CONN_OUT_STREAM);
    if (!c) {
        stream_schedule_redial(p);
        return;
    }
    c->p = p;
    p->out = c;
    const struct peer_url *url = &p->urls[p->next_url++ % p->n_urls];
    struct peer_hello h = {.version = PEER_VERSION,
                           .kind = HELLO_STREAM,
                           .cluster_id = p->t->cfg.cluster_id,
                           .from = p->t->cfg.self_id,
                           .to = p->id};
    if (p->cz_sub)
        channelz_set_state(p->cz_sub, CHANNELZ_STATE_CONNECTING);
    int rc = peer_conn_dial(c, url, &h);
    if (rc)
        stream_lost(c, peer_strerror(rc));
}

void peer_stream_stop(struct peer *p)
{
    evtimer_del(p->redial);
    if (p->out)
        peer_conn_close(p->out);
}

static void stream_add_socket(struct peer_conn *c)
{
    struct peer *p = c->p;
    if (!p->cz_sub)
        return;
    if (channelz_add(c->t->cfg.channelz, CHANNELZ_SOCKET, p->cz_sub, c->url, peer_now_ns(),
                     &c->cz_socket) != 0)
        return;
    struct sockaddr_storage la, ra;
    socklen_t ll = sizeof(la), rl = sizeof(ra);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&la, &ll) == 0 &&
        getpeername(fd, (struct sockaddr *)&ra, &rl) == 0)
        channelz_set_addrs(c->cz_socket, (struct sockaddr *)&la, ll, (struct sockaddr *)&ra, rl);
}

const char *peer_check_reply(struct peer_conn *c, char *why, size_t len)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    uint8_t buf[PEER_HELLO_LEN];
    evbuffer_remove(in, buf, sizeof(buf));
    struct peer_hello h;
    struct peer_transport *t = c->t;
    if (peer_hello_decode(buf, &h) != 0) {
        snprintf(why, len, "bad hello from %s (not a metcd peer)", c->url);
    } else if (h.status != HELLO_OK) {
        snprintf(why, len, "peer refused the connection: %s", peer_hello_status_text(h.status));
        if (h.status == HELLO_BAD_CLUSTER && c->p && !c->p->fail_logged)
            peer_logf(t, 'E', "request sent was ignored by peer %016llx (cluster ID mismatch)",
                      (unsigned long long)c->p->id);
    } else if (h.cluster_id != t->cfg.cluster_id) {
        snprintf(why, len, "cluster ID mismatch (remote %016llx, local %016llx)",
                 (unsigned long long)h.cluster_id, (unsigned long long)t->cfg.cluster_id);
    } else if (h.from != c->p->id || h.to != t->cfg.self_id) {
        snprintf(why, len, "member ID mismatch (answered by %016llx)", (unsigned long long)h.from);
    } else {
        return NULL;
    }
    return why;
}

static void stream_read(struct peer_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct peer *p = c->p;
    char why[160];
    if (c->state == CS_ACTIVE || !p) {
        stream_lost(c, "unexpected data from the peer");
        return;
    }
    if (evbuffer_get_length(in) < PEER_HELLO_LEN)
        return;
    if (peer_check_reply(c, why, sizeof(why))) {
        stream_lost(c, why);
        return;
    }
    if (evbuffer_get_length(in)) {
        stream_lost(c, "unexpected data from the peer");
        return;
    }
    c->state = CS_ACTIVE;
    struct timeval wtv = ms_tv(STREAM_WRITE_TIMEOUT_MS);
    bufferevent_set_timeouts(c->bev, NULL, &wtv);
    p->backoff_ms = 0;
    p->fail_logged = false;
    p->fail_why[0] = 0;
    p->full_logged = false;
    p->unreachable = false;
    peer_logf(c->t, 'I', "peer %016llx became active", (unsigned long long)p->id);
    peer_logf(c->t, 'I',
              "established a TCP streaming connection with peer %016llx (stream Message writer)",
              (unsigned long long)p->id);
    if (p->cz_sub) {
        channelz_set_state(p->cz_sub, CHANNELZ_STATE_READY);
        channelz_set_state(p->cz_channel, CHANNELZ_STATE_READY);
        peer_trace(p, CHANNELZ_SEV_INFO, "connected to %s", c->url);
        stream_add_socket(c);
    }
}

/* ---- accepted connections ---------------------------------------------------- */

int peer_accept(struct peer_transport *t, int fd, const struct sockaddr *sa, int salen, bool tls)
{
    if (t->n_conns >= MAX_INBOUND_CONNS) {
        peer_logf(t, 'W', "too many peer connections (%d); closing a new one", MAX_INBOUND_CONNS);
        close(fd);
        return PEER_ERR_IO;
    }
    struct peer_conn *c = peer_conn_new(t, CONN_IN);
    if (!c) {
        close(fd);
        return PEER_ERR_NOMEM;
    }
    c->bev = new_bev(t, fd, tls, true);
    if (!c->bev) {
        close(fd);
        event_free(c->resume);
        metcd_free(c);
        return tls ? PEER_ERR_TLS : PEER_ERR_NOMEM;
    }
    c->next = t->conns;
    if (t->conns)
        t->conns->prev = c;
    t->conns = c;
    t->n_conns++;
    snprintf(c->url, sizeof(c->url), "inbound");
    if (sa && sa->sa_family == AF_INET) {
        char host[64];
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        if (evutil_inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host)))
            snprintf(c->url, sizeof(c->url), "%s:%u", host, ntohs(in4->sin_port));
    }
    (void)salen;
    set_nodelay(c->bev);
    c->state = CS_HELLO;
    bufferevent_setcb(c->bev, on_conn_read, on_conn_write, on_conn_event, c);
    /* The hello (and a refusal's flush) within twice the dial timeout. */
    struct timeval tv = ms_tv(2 * t->cfg.dial_timeout_ms);
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HWM);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return 0;
}

static void refuse(struct peer_conn *c, const struct peer_hello *req, uint8_t status)
{
    struct peer_hello h = {.version = PEER_VERSION,
                           .kind = req->kind,
                           .status = status,
                           .cluster_id = c->t->cfg.cluster_id,
                           .from = c->t->cfg.self_id,
                           .to = req->from};
    uint8_t buf[PEER_HELLO_LEN];
    peer_hello_encode(&h, buf);
    c->state = CS_CLOSING;
    if (bufferevent_write(c->bev, buf, sizeof(buf)) != 0)
        peer_conn_close(c);
    /* on_conn_write half-closes once the reply is out; what the dialer
     * still sends is read and dropped until its EOF (or the hello timeout)
     * frees the connection, so no RST overtakes the reply. */
}

static void in_add_socket(struct peer_conn *c)
{
    if (!c->t->cz_server)
        return;
    if (channelz_add(c->t->cfg.channelz, CHANNELZ_SOCKET, c->t->cz_server, c->url, peer_now_ns(),
                     &c->cz_socket) != 0)
        return;
    struct sockaddr_storage la, ra;
    socklen_t ll = sizeof(la), rl = sizeof(ra);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&la, &ll) == 0 &&
        getpeername(fd, (struct sockaddr *)&ra, &rl) == 0)
        channelz_set_addrs(c->cz_socket, (struct sockaddr *)&la, ll, (struct sockaddr *)&ra, rl);
}

/* A members query (a member about to join): the hello answer, one
 * FRAME_MEMBERS frame with the member's description of the cluster, then
 * the connection closes as after a refusal. Returns -1 (the connection is
 * not a stream). */
static int in_members(struct peer_conn *c, const struct peer_hello *req)
{
    struct peer_transport *t = c->t;
    uint8_t *payload = NULL;
    size_t len = 0;
    if (!t->cb.members_info || t->cb.members_info(t->cb.arg, &payload, &len) != 0) {
        refuse(c, req, HELLO_BAD_KIND);
        return -1;
    }
    struct peer_hello ok = {.version = PEER_VERSION,
                            .kind = HELLO_MEMBERS,
                            .cluster_id = t->cfg.cluster_id,
                            .from = t->cfg.self_id};
    uint8_t hello[PEER_HELLO_LEN], hdr[PEER_FRAME_HDR];
    peer_hello_encode(&ok, hello);
    peer_frame_hdr(hdr, (uint32_t)len, FRAME_MEMBERS);
    c->state = CS_CLOSING;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_add(out, hello, sizeof(hello)) != 0 || evbuffer_add(out, hdr, sizeof(hdr)) != 0 ||
        (len && evbuffer_add(out, payload, len) != 0))
        peer_conn_close(c);
    metcd_free(payload);
    peer_logf(t, 'I', "answered a members query from %s", c->url);
    return -1;
}

/* The hello of an accepted connection: 0 accepted, -1 refused/closed. */
static int in_hello(struct peer_conn *c)
{
    struct peer_transport *t = c->t;
    uint8_t buf[PEER_HELLO_LEN];
    evbuffer_remove(bufferevent_get_input(c->bev), buf, sizeof(buf));
    struct peer_hello h;
    if (peer_hello_decode(buf, &h) != 0) {
        peer_logf(t, 'W', "closed a peer connection from %s: bad magic (not a metcd peer)", c->url);
        peer_conn_close(c);
        return -1;
    }
    if (h.version != PEER_VERSION) {
        peer_logf(t, 'W', "closed a peer connection from %s: unsupported version %u", c->url,
                  h.version);
        refuse(c, &h, HELLO_BAD_VERSION);
        return -1;
    }
    if (h.kind == HELLO_MEMBERS)
        return in_members(c, &h);
    if (h.kind != HELLO_STREAM && h.kind != HELLO_SNAP) {
        peer_logf(t, 'W', "closed a peer connection from %s: unknown stream kind %u", c->url,
                  h.kind);
        refuse(c, &h, HELLO_BAD_KIND);
        return -1;
    }
    if (h.cluster_id != t->cfg.cluster_id) {
        peer_logf(t, 'E',
                  "request sent was ignored (cluster ID mismatch: peer[%016llx]=%016llx, "
                  "local=%016llx)",
                  (unsigned long long)h.from, (unsigned long long)h.cluster_id,
                  (unsigned long long)t->cfg.cluster_id);
        refuse(c, &h, HELLO_BAD_CLUSTER);
        return -1;
    }
    if (h.to != t->cfg.self_id) {
        peer_logf(t, 'E',
                  "rejected the stream from peer %016llx (member ID mismatch: to %016llx, "
                  "local %016llx)",
                  (unsigned long long)h.from, (unsigned long long)h.to,
                  (unsigned long long)t->cfg.self_id);
        refuse(c, &h, HELLO_WRONG_RECIPIENT);
        return -1;
    }
    struct peer *p = peer_find(t, h.from);
    if (!p) {
        peer_logf(t, 'W', "rejected the stream from peer %016llx since it is not a known member",
                  (unsigned long long)h.from);
        refuse(c, &h, HELLO_UNKNOWN_SENDER);
        return -1;
    }
    struct peer_hello ok = {.version = PEER_VERSION,
                            .kind = h.kind,
                            .cluster_id = t->cfg.cluster_id,
                            .from = t->cfg.self_id,
                            .to = h.from};
    peer_hello_encode(&ok, buf);
    if (bufferevent_write(c->bev, buf, sizeof(buf)) != 0) {
        peer_conn_close(c);
        return -1;
    }
    c->p = p;
    c->in_kind = h.kind;
    c->state = CS_ACTIVE;
    if (h.kind == HELLO_STREAM) {
        if (p->in) {
            peer_logf(t, 'I', "closed an older stream from peer %016llx (replaced)",
                      (unsigned long long)p->id);
            peer_conn_close(p->in);
        }
        p->in = c;
        bufferevent_set_timeouts(c->bev, NULL, NULL);
        peer_logf(t, 'I',
                  "established a TCP streaming connection with peer %016llx (stream Message "
                  "reader)",
                  (unsigned long long)p->id);
        /* The peer is up (it just dialed us): if our own stream to it is
         * down and waiting out its backoff (up to 5 s after a restart),
         * dial now, so a restarted member hears from the leader at once. */
        if (!p->out && evtimer_pending(p->redial, NULL)) {
            p->backoff_ms = 0;
            peer_stream_start(p);
        }
    } else {
        struct timeval tv = ms_tv(t->cfg.snap_timeout_ms);
        bufferevent_set_timeouts(c->bev, &tv, &tv);
        bufferevent_setwatermark(c->bev, EV_READ, 0, 2 * PEER_MAX_SNAP_CHUNK);
    }
    in_add_socket(c);
    return 0;
}

static int in_message(struct peer_conn *c, const uint8_t *buf, size_t len)
{
    struct peer_transport *t = c->t;
    struct peer *p = c->p;
    raft_msg m;
    if (raft_msg_decode(buf, len, &m) != 0) {
        peer_logf(t, 'W',
                  "closed the stream from peer %016llx: undecodable raft message (%zu "
                  "bytes)",
                  (unsigned long long)p->id, len);
        return -1;
    }
    p->st.msgs_received++;
    p->st.bytes_received += PEER_FRAME_HDR + len;
    if (c->cz_socket) {
        struct channelz_socket_data *sd = channelz_socket_of(c->cz_socket);
        if (sd) {
            sd->messages_received++;
            sd->last_message_received_ns = peer_now_ns();
        }
    }
    if (m.from != p->id || m.to != t->cfg.self_id || m.type == RAFT_MSG_SNAP) {
        peer_logf(t, 'W', "dropped %s from peer %016llx (from %016llx to %016llx)",
                  raft_msg_type_name(m.type), (unsigned long long)p->id, (unsigned long long)m.from,
                  (unsigned long long)m.to);
    } else if (t->cb.on_message) {
        t->cb.on_message(t->cb.arg, &m);
    }
    raft_msg_free(&m);
    return 0;
}

/* Limit of a frame's payload on an accepted connection; 0: not allowed. */
static size_t frame_limit(const struct peer_conn *c, uint8_t type)
{
    if (c->in_kind == HELLO_STREAM)
        return type == FRAME_MSG ? PEER_MAX_MSG_FRAME : 0;
    switch (type) {
    case FRAME_SNAP_HDR:
        return PEER_MAX_MSG_FRAME;
    case FRAME_SNAP_CHUNK:
        return PEER_MAX_SNAP_CHUNK;
    case FRAME_SNAP_END:
        return 32;
    default:
        return 0;
    }
}

static void in_process(struct peer_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct peer_transport *t = c->t;
    if (c->state == CS_CLOSING) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    if (c->state == CS_HELLO) {
        if (evbuffer_get_length(in) < PEER_HELLO_LEN)
            return;
        if (in_hello(c) != 0)
            return;
    }
    c->dispatching = true;
    size_t hwm = READ_HWM;
    for (int n = 0; !c->dead; n++) {
        size_t avail = evbuffer_get_length(in);
        if (avail < PEER_FRAME_HDR)
            break;
        if (n == FRAMES_PER_EVENT) {
            event_active(c->resume, EV_TIMEOUT, 0); /* let other connections run */
            break;
        }
        uint8_t hdr[PEER_FRAME_HDR];
        evbuffer_copyout(in, hdr, sizeof(hdr));
        uint32_t len = peer_get_u32(hdr);
        uint8_t type = hdr[4];
        size_t limit = frame_limit(c, type);
        if (len > limit) {
            peer_logf(t, 'W',
                      "closed the connection from peer %016llx: %s frame (type %u, %u "
                      "bytes)",
                      (unsigned long long)(c->p ? c->p->id : 0), limit ? "oversize" : "unexpected",
                      type, len);
            peer_conn_close(c);
            break;
        }
        if (avail < PEER_FRAME_HDR + (size_t)len) {
            if (PEER_FRAME_HDR + (size_t)len > hwm)
                hwm = PEER_FRAME_HDR + (size_t)len;
            break;
        }
        const uint8_t *buf = evbuffer_pullup(in, PEER_FRAME_HDR + (ssize_t)len);
        if (!buf) {
            peer_logf(t, 'E', "out of memory reading from a peer; closing the connection");
            peer_conn_close(c);
            break;
        }
        int rc = c->in_kind == HELLO_STREAM
                     ? in_message(c, buf + PEER_FRAME_HDR, len)
                     : peer_snap_in_frame(c, type, buf + PEER_FRAME_HDR, len);
        if (!c->dead)
            evbuffer_drain(in, PEER_FRAME_HDR + (size_t)len);
        if (rc != 0)
            peer_conn_close(c);
    }
    c->dispatching = false;
    if (c->dead) {
        peer_conn_close(c);
        return;
    }
    /* Back to the usual bound once a large frame is consumed. */
    if (c->in_kind == HELLO_SNAP && hwm < 2 * PEER_MAX_SNAP_CHUNK)
        hwm = 2 * PEER_MAX_SNAP_CHUNK;
    bufferevent_setwatermark(c->bev, EV_READ, 0, hwm);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct peer_conn *c = arg;
    if (c->kind == CONN_IN)
        in_process(c);
}

/* ---- libevent callbacks -------------------------------------------------------- */

static void on_conn_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct peer_conn *c = arg;
    switch (c->kind) {
    case CONN_OUT_STREAM:
        stream_read(c);
        break;
    case CONN_OUT_SNAP:
        peer_snap_out_read(c);
        break;
    case CONN_IN:
        in_process(c);
        break;
    }
}

static void on_conn_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct peer_conn *c = arg;
    /* libevent also calls this when a fresh socket first turns writable. */
    if (c->kind == CONN_IN && c->state == CS_CLOSING && peer_conn_queued(c) == 0) {
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        if (fd < 0 || shutdown(fd, SHUT_WR) != 0)
            peer_conn_close(c);
    } else if (c->kind == CONN_OUT_SNAP && c->state == CS_ACTIVE)
        peer_snap_out_fill(c);
}

static const char *event_text(short what, bool connecting, char *buf, size_t len)
{
    if (what & BEV_EVENT_TIMEOUT)
        return "i/o timeout";
    if ((what & BEV_EVENT_EOF) && connecting)
        return "connection refused or closed while connecting"; /* as TLS reports a refusal */
    if (what & BEV_EVENT_EOF)
        return "connection closed by peer";
    int err = EVUTIL_SOCKET_ERROR();
    snprintf(buf, len, "%s", err ? evutil_socket_error_to_string(err) : "connection error");
    return buf;
}

static void on_conn_event(struct bufferevent *bev, short what, void *arg)
{
    struct peer_conn *c = arg;
    char buf[128];
    if (what & BEV_EVENT_CONNECTED) {
        set_nodelay(bev);
        if (c->state == CS_CONNECTING)
            c->state = CS_HELLO;
        return;
    }
    const char *why = event_text(what, c->state == CS_CONNECTING, buf, sizeof(buf));
    bool tls_failed = false;
    if (what & BEV_EVENT_ERROR) {
        unsigned long e = bufferevent_get_openssl_error(bev);
        if (e) {
            /* in Go's words where etcd's logs have them ("remote error:
             * tls: bad certificate", "client certificate authentication
             * failed") */
            tls_error_text(bufferevent_openssl_get_ssl(bev), e, buf, sizeof(buf),
                           "tls: handshake failed");
            why = buf;
            tls_failed = true;
        }
    }
    switch (c->kind) {
    case CONN_OUT_STREAM:
        stream_lost(c, why);
        break;
    case CONN_OUT_SNAP:
        peer_snap_out_failed(c, why);
        break;
    case CONN_IN:
        if (c->p && c->in_kind == HELLO_STREAM)
            peer_logf(c->t, 'W',
                      "lost the TCP streaming connection with peer %016llx (stream Message "
                      "reader): %s",
                      (unsigned long long)c->p->id, why);
        else if (!c->p && c->state == CS_HELLO && tls_failed)
            /* etcd's listener: a peer whose certificate is refused */
            peer_logf(c->t, 'W', "rejected connection from \"%s\" (error \"%s\", ServerName \"\")",
                      c->url, why);
        else if (!c->p && c->state == CS_HELLO)
            peer_logf(c->t, 'D', "closed a peer connection from %s before its hello: %s", c->url,
                      why);
        else if (c->p && c->in_kind == HELLO_SNAP && c->snap_fd >= 0)
            peer_logf(c->t, 'W', "failed to receive a database snapshot from peer %016llx: %s",
                      (unsigned long long)c->p->id, why);
        peer_conn_close(c);
        break;
    }
}
