/* tests/unit/server/harness.c - see harness.h. */
#include "harness.h"

#include "common/mem.h"

#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int health_all(const char *service, void *data)
{
    (void)data;
    return strcmp(service, "bad") == 0 ? 2 : strcmp(service, "") == 0 ? 1 : 0;
}

void fixture_setup(struct fixture *f, const struct rpc_server_config *cfg)
{
    memset(f, 0, sizeof *f);
    f->base = event_base_new();
    ck_assert_ptr_nonnull(f->base);
    ck_assert_int_eq(channelz_new(&f->cz, 30), 0);
    struct rpc_server_config c = cfg ? *cfg : (struct rpc_server_config){0};
    c.channelz = f->cz;
    if (!c.name)
        c.name = "test";
    ck_assert_int_eq(rpc_server_new(&f->srv, f->base, &c), 0);
    ck_assert_int_eq(echo_service_register(f->srv, f->base), 0);
    ck_assert_int_eq(rpc_server_add_health(f->srv, health_all, NULL), 0);
    ck_assert_int_eq(rpc_server_add_channelz(f->srv, f->cz), 0);
    ck_assert_int_eq(rpc_server_listen(f->srv, "127.0.0.1", 0, &f->port), 0);
    ck_assert_uint_gt(f->port, 0);
}

void fixture_teardown(struct fixture *f)
{
    rpc_server_free(f->srv);
    channelz_free(f->cz);
    event_base_free(f->base);
}

static void on_run_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

bool run_until(struct event_base *base, const bool *flag, unsigned ms)
{
    bool expired = false;
    struct event *t = evtimer_new(base, on_run_timeout, &expired);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(t, &tv);
    while (!*flag && !expired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    return *flag;
}

void run_for(struct event_base *base, unsigned ms)
{
    bool never = false;
    run_until(base, &never, ms);
}

/* ---- raw client ---- */

static struct raw_stream *find(struct raw *r, int32_t id)
{
    for (size_t i = 0; i < r->n_streams; i++)
        if (r->streams[i].id == id)
            return &r->streams[i];
    return NULL;
}

static ssize_t raw_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)s;
    (void)flags;
    struct raw *r = ud;
    ssize_t n = send(r->fd, data, len, MSG_NOSIGNAL);
    if (n < 0)
        return NGHTTP2_ERR_WOULDBLOCK;
    return n;
}

static int raw_on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                         size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)s;
    (void)flags;
    struct raw_stream *st = find(ud, frame->hd.stream_id);
    if (!st)
        return 0;
    char v[512];
    size_t n = vlen < sizeof v - 1 ? vlen : sizeof v - 1;
    memcpy(v, value, n);
    v[n] = 0;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0)
        st->http_status = atoi(v);
    else if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0)
        st->grpc_status = atoi(v);
    else if (nlen == 12 && memcmp(name, "grpc-message", 12) == 0)
        memcpy(st->grpc_message, v, n + 1);
    return 0;
}

static int raw_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                       size_t len, void *ud)
{
    (void)s;
    (void)flags;
    struct raw_stream *st = find(ud, id);
    if (!st)
        return 0;
    if (st->len + len + 1 > st->cap) {
        st->cap = (st->len + len + 1) * 2;
        st->data = realloc(st->data, st->cap);
    }
    memcpy(st->data + st->len, data, len);
    st->len += len;
    return 0;
}

static int raw_on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    (void)s;
    struct raw_stream *st = find(ud, id);
    if (st) {
        st->closed = true;
        st->rst_code = code;
    }
    return 0;
}

static int raw_on_frame(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    (void)s;
    struct raw *r = ud;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        r->goaway = true;
        r->goaway_code = frame->goaway.error_code;
        size_t n = frame->goaway.opaque_data_len < 63 ? frame->goaway.opaque_data_len : 63;
        if (n)
            memcpy(r->goaway_data, frame->goaway.opaque_data, n);
        r->goaway_data[n] = 0;
    } else if (frame->hd.type == NGHTTP2_PING) {
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            r->pings_acked++;
        else
            r->pings_received++;
    }
    return 0;
}

static void on_raw_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct raw *r = arg;
    if (r->read_paused) {
        event_del(r->ev); /* level-triggered: would spin */
        return;
    }
    if (!r->eof)
        event_add(r->ev, NULL);
    uint8_t buf[16384];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
        r->eof = true;
        event_del(r->ev);
        return;
    }
    nghttp2_session_mem_recv(r->h2, buf, (size_t)n);
    raw_flush(r);
}

struct raw *raw_new(struct fixture *f)
{
    struct raw *r = calloc(1, sizeof *r);
    r->f = f;
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    r->fd = sv[0];
    fcntl(r->fd, F_SETFL, O_NONBLOCK);
    ck_assert_int_eq(rpc_server_adopt(f->srv, sv[1]), 0);
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, raw_send);
    nghttp2_session_callbacks_set_on_header_callback(cbs, raw_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, raw_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, raw_on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, raw_on_frame);
    nghttp2_session_client_new(&r->h2, cbs, r);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(r->h2, NGHTTP2_FLAG_NONE, NULL, 0);
    r->ev = event_new(f->base, r->fd, EV_READ | EV_PERSIST, on_raw_readable, r);
    event_add(r->ev, NULL);
    raw_flush(r);
    return r;
}

void raw_free(struct raw *r)
{
    for (size_t i = 0; i < r->n_streams; i++)
        free(r->streams[i].data);
    event_free(r->ev);
    nghttp2_session_del(r->h2);
    close(r->fd);
    free(r);
}

void raw_flush(struct raw *r)
{
    nghttp2_session_send(r->h2);
}

static ssize_t raw_read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                             uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)ud;
    struct raw_stream *st = src->ptr;
    size_t left = st->out_len - st->out_off;
    size_t n = left < length ? left : length;
    if (st->chunk && n > st->chunk)
        n = st->chunk;
    if (n)
        memcpy(buf, st->out + st->out_off, n);
    st->out_off += n;
    if (st->out_off == st->out_len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (!st->end)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return (ssize_t)n;
}

struct raw_stream *raw_call(struct raw *r, const char *path, const struct rpc_md *extra,
                            size_t n_extra, const uint8_t *body, size_t len, size_t chunk,
                            bool end)
{
    ck_assert_uint_lt(r->n_streams, RAW_MAX_STREAMS);
    struct raw_stream *st = &r->streams[r->n_streams++];
    memset(st, 0, sizeof *st);
    st->grpc_status = -1;
    st->out = body;
    st->out_len = len;
    st->chunk = chunk;
    st->end = end;
    nghttp2_nv nva[16];
    size_t n = 0;
#define RNV(k, v) nva[n++] = (nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), 0}
    RNV(":method", "POST");
    RNV(":scheme", "http");
    RNV(":path", path);
    RNV(":authority", "test");
    RNV("te", "trailers");
    bool has_ct = false;
    for (size_t i = 0; i < n_extra; i++)
        has_ct |= strcmp(extra[i].key, "content-type") == 0;
    if (!has_ct)
        RNV("content-type", "application/grpc");
    for (size_t i = 0; i < n_extra && n < 16; i++)
        RNV(extra[i].key, extra[i].value);
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = raw_read_body};
    st->id = nghttp2_submit_request(r->h2, NULL, nva, n, (len || end) ? &prd : NULL, NULL);
    ck_assert_int_gt(st->id, 0);
    raw_flush(r);
    return st;
}

void raw_rst(struct raw *r, struct raw_stream *s)
{
    nghttp2_submit_rst_stream(r->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
    raw_flush(r);
}

void raw_ping(struct raw *r)
{
    nghttp2_submit_ping(r->h2, NGHTTP2_FLAG_NONE, NULL);
    raw_flush(r);
}

bool raw_wait_closed(struct raw *r, struct raw_stream *s, unsigned ms)
{
    (void)r;
    return run_until(r->f->base, &s->closed, ms);
}

size_t frame_msg(uint8_t **buf, size_t len, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    *buf = realloc(*buf, len + 5 + n);
    uint8_t *p = *buf + len;
    p[0] = 0;
    p[1] = (uint8_t)(n >> 24);
    p[2] = (uint8_t)(n >> 16);
    p[3] = (uint8_t)(n >> 8);
    p[4] = (uint8_t)n;
    protobuf_c_message_pack(msg, p + 5);
    return len + 5 + n;
}

static const uint8_t *nth(const struct raw_stream *s, size_t i, size_t *mlen)
{
    size_t off = 0;
    for (;;) {
        if (off + 5 > s->len)
            return NULL;
        size_t n = (size_t)s->data[off + 1] << 24 | (size_t)s->data[off + 2] << 16 |
                   (size_t)s->data[off + 3] << 8 | s->data[off + 4];
        if (off + 5 + n > s->len)
            return NULL;
        if (i == 0) {
            *mlen = n;
            return s->data + off + 5;
        }
        i--;
        off += 5 + n;
    }
}

Metcd__Test__EchoResponse *raw_response(const struct raw_stream *s, size_t i)
{
    size_t n;
    const uint8_t *p = nth(s, i, &n);
    if (!p)
        return NULL;
    return metcd__test__echo_response__unpack(NULL, n, p);
}

size_t raw_count_messages(const struct raw_stream *s)
{
    size_t i = 0, n;
    while (nth(s, i, &n))
        i++;
    return i;
}

int sock_adopted(struct fixture *f)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    ck_assert_int_eq(rpc_server_adopt(f->srv, sv[1]), 0);
    return sv[0];
}

size_t sock_read_until(struct fixture *f, int fd, char *buf, size_t cap, const char *needle,
                       unsigned ms, bool *eof)
{
    size_t len = 0;
    bool dummy;
    if (!eof)
        eof = &dummy;
    *eof = false;
    for (unsigned waited = 0; waited <= ms; waited += 5) {
        for (;;) {
            ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
            if (n == 0) {
                *eof = true;
                break;
            }
            if (n < 0)
                break;
            len += (size_t)n;
        }
        buf[len] = 0;
        if (*eof || (needle && strstr(buf, needle)) || len == cap - 1)
            return len;
        run_for(f->base, 5);
    }
    return len;
}

void sock_write(int fd, const void *s, size_t len)
{
    const char *p = s;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

unsigned long conns_open(const struct fixture *f)
{
    struct rpc_server_stats st;
    rpc_server_get_stats(f->srv, &st);
    return (unsigned long)st.conns_open;
}
