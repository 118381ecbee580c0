/* tests/unit/peer/harness.c - see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/mem.h"

static void on_log(void *ctx, int level, const char *pkg, const char *msg)
{
    struct node *n = ctx;
    char line[600];
    int k = snprintf(line, sizeof(line), "%c | %s: %s\n", level, pkg, msg);
    if (getenv("PEER_TEST_VERBOSE"))
        fprintf(stderr, "[%llu] %s", (unsigned long long)n->id, line);
    if (k > 0 && n->log_len + (size_t)k < sizeof(n->log)) {
        memcpy(n->log + n->log_len, line, (size_t)k);
        n->log_len += (size_t)k;
        n->log[n->log_len] = 0;
    }
}

static void on_message(void *arg, const raft_msg *m)
{
    struct node *n = arg;
    n->n_msgs++;
    if (m->type < RAFT_MSG_NTYPES)
        n->n_by_type[m->type]++;
    if (m->from <= NODE_MAX_PEERS && m->type == RAFT_MSG_APP) {
        if (m->index != n->last_index[m->from] + 1)
            n->out_of_order = true;
        n->last_index[m->from] = m->index;
    }
    if (n->on_msg_hook)
        n->on_msg_hook(n, m);
}

static void on_snapshot(void *arg, const raft_msg *m, int fd)
{
    struct node *n = arg;
    if (n->snap_fd >= 0)
        close(n->snap_fd);
    n->snap_fd = fd;
    n->snap_index = m->snapshot ? m->snapshot->meta.index : 0;
    n->snap_from = m->from;
    n->n_snaps++;
}

static void on_unreachable(void *arg, uint64_t id)
{
    struct node *n = arg;
    if (id <= NODE_MAX_PEERS)
        n->unreachable[id]++;
}

static void on_snapshot_status(void *arg, uint64_t id, bool failed)
{
    struct node *n = arg;
    if (id > NODE_MAX_PEERS)
        return;
    if (failed)
        n->snap_failed[id]++;
    else
        n->snap_ok[id]++;
}

int node_try_start(struct node *n, struct event_base *base, uint64_t id, uint64_t cluster_id,
                   const char *listen_url, const peer_config *extra, char *errbuf, size_t len)
{
    int keep_fd = n->snap_fd;
    bool restart = n->id == id && n->base == base;
    if (!restart) {
        memset(n, 0, sizeof(*n));
        n->snap_fd = -1;
    } else {
        n->snap_fd = keep_fd;
    }
    n->base = base;
    n->id = id;
    n->cluster_id = cluster_id;
    peer_config cfg = {0};
    if (extra)
        cfg = *extra;
    cfg.self_id = id;
    cfg.cluster_id = cluster_id;
    cfg.listen_urls = &listen_url;
    cfg.n_listen_urls = 1;
    cfg.log = on_log;
    cfg.log_ctx = n;
    peer_callbacks cb = {.on_message = on_message,
                         .on_snapshot = on_snapshot,
                         .on_unreachable = on_unreachable,
                         .on_snapshot_status = on_snapshot_status,
                         .arg = n};
    int rc = peer_transport_new(&n->t, base, &cfg, &cb, errbuf, len);
    if (rc == 0)
        snprintf(n->url, sizeof(n->url), "%s", peer_listen_url(n->t, 0));
    return rc;
}

void node_start(struct node *n, struct event_base *base, uint64_t id, uint64_t cluster_id,
                const char *listen_url, const peer_config *extra)
{
    char err[256];
    int rc = node_try_start(n, base, id, cluster_id, listen_url, extra, err, sizeof(err));
    ck_assert_msg(rc == 0, "peer_transport_new: %s (%s)", peer_strerror(rc), err);
}

void node_stop(struct node *n)
{
    peer_transport_free(n->t);
    n->t = NULL;
    if (n->snap_fd >= 0)
        close(n->snap_fd);
    n->snap_fd = -1;
}

void node_link(struct node *a, struct node *b)
{
    const char *ua = a->url, *ub = b->url;
    ck_assert_int_eq(peer_add(a->t, b->id, &ub, 1), 0);
    ck_assert_int_eq(peer_add(b->t, a->id, &ua, 1), 0);
}

bool node_log_has(const struct node *n, const char *needle)
{
    return strstr(n->log, needle) != NULL;
}

bool node_active(const struct node *n, uint64_t peer_id)
{
    peer_stats st[NODE_MAX_PEERS];
    size_t k = peer_get_stats(n->t, st, NODE_MAX_PEERS);
    for (size_t i = 0; i < k && i < NODE_MAX_PEERS; i++)
        if (st[i].id == peer_id)
            return st[i].active;
    return false;
}

raft_msg mk_msg(raft_msg_type type, uint64_t from, uint64_t to, uint64_t index, size_t payload)
{
    raft_msg m = {.type = type, .from = from, .to = to, .term = 1, .index = index};
    if (payload) {
        uint8_t *buf = metcd_malloc(payload);
        ck_assert_ptr_nonnull(buf);
        memset(buf, (int)(index & 0xff), payload);
        m.entries = metcd_calloc(1, sizeof(raft_entry));
        ck_assert_ptr_nonnull(m.entries);
        m.entries[0].term = 1;
        m.entries[0].index = index;
        m.entries[0].data = raft_buf_new(buf, payload);
        m.n_entries = 1;
        metcd_free(buf);
    }
    return m;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

void run_for(struct event_base *base, unsigned ms)
{
    bool done = false;
    struct event *ev = evtimer_new(base, on_tick, &done);
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
    while (!done)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(ev);
}

int raw_connect(const char *url)
{
    char host[64];
    unsigned port;
    ck_assert_int_eq(sscanf(url, "http://%63[^:]:%u", host, &port), 2);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

void raw_send(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len) {
        ssize_t w = send(fd, b, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the server may have closed already: fine for these tests */
        b += w;
        len -= (size_t)w;
    }
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

void raw_hello(int fd, uint8_t kind, uint64_t cluster, uint64_t from, uint64_t to)
{
    uint8_t h[32] = {'M', 'P', 'E', 'R', 0, 1, kind, 0};
    put64(h + 8, cluster);
    put64(h + 16, from);
    put64(h + 24, to);
    raw_send(fd, h, sizeof(h));
}

void raw_frame(int fd, uint8_t type, const void *p, uint32_t len)
{
    uint8_t hdr[5] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len,
                      type};
    raw_send(fd, hdr, sizeof(hdr));
    if (len)
        raw_send(fd, p, len);
}

bool raw_closed(int fd)
{
    uint8_t buf[4096];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r == 0)
            return true;
        if (r < 0)
            return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    }
}

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

int make_file(size_t len, uint32_t seed)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    int fd = dup(fileno(f));
    fclose(f);
    uint32_t s = seed | 1;
    uint8_t buf[65536];
    for (size_t off = 0; off < len;) {
        size_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)xorshift(&s);
        ck_assert_int_eq(write(fd, buf, n), (ssize_t)n);
        off += n;
    }
    lseek(fd, 0, SEEK_SET);
    return fd;
}

bool file_matches(int fd, size_t len, uint32_t seed)
{
    uint32_t s = seed | 1;
    uint8_t buf[65536];
    size_t off = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0)
            return false;
        if (r == 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != (uint8_t)xorshift(&s))
                return false;
        off += (size_t)r;
    }
    return off == len;
}
