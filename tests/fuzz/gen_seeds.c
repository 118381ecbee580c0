/* tests/fuzz/gen_seeds.c - writes starting inputs for the fuzz targets into
 * DIR/h2_server, DIR/sniff_http1, DIR/deframe and DIR/pbjson: real client
 * sessions serialised by nghttp2 (the h2 seeds without the preface, which
 * the target adds), HTTP/1.1 requests and gateway bodies ("type\nJSON").
 * Usage: gen_seeds DIR */
#include "echo.pb-c.h"

#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static uint8_t out[1 << 16];
static size_t out_len;

static void put(const uint8_t *p, size_t n)
{
    if (out_len + n <= sizeof out) {
        memcpy(out + out_len, p, n);
        out_len += n;
    }
}

static void drain(nghttp2_session *s)
{
    const uint8_t *p;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(s, &p)) > 0)
        put(p, (size_t)n);
}

static void save(const char *dir, const char *sub, const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fwrite(p, 1, n, f);
    fclose(f);
}

struct body {
    uint8_t buf[4096];
    size_t len, off;
};

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)ud;
    struct body *b = src->ptr;
    size_t n = b->len - b->off < length ? b->len - b->off : length;
    if (n > 7)
        n = 7; /* small DATA frames: messages split across frames */
    memcpy(buf, b->buf + b->off, n);
    b->off += n;
    if (b->off == b->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static size_t frame(uint8_t *p, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    p[0] = 0;
    p[1] = (uint8_t)(n >> 24);
    p[2] = (uint8_t)(n >> 16);
    p[3] = (uint8_t)(n >> 8);
    p[4] = (uint8_t)n;
    protobuf_c_message_pack(m, p + 5);
    return n + 5;
}

static void h2_seed(const char *dir, const char *name, const char *path, int n_msgs,
                    const char *extra_k, const char *extra_v, int reset, int ping)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session *s;
    nghttp2_session_client_new(&s, cbs, NULL);
    nghttp2_session_callbacks_del(cbs);
    out_len = 0;
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
    drain(s);
    /* Drop the preface nghttp2 wrote: the target adds it. */
    memmove(out, out + 24, out_len - 24);
    out_len -= 24;
    static struct body b;
    memset(&b, 0, sizeof b);
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    req.message = "hello";
    req.count = 3;
    for (int i = 0; i < n_msgs; i++)
        b.len += frame(b.buf + b.len, &req.base);
    nghttp2_nv nva[8] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
        {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
        {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0},
        {(uint8_t *)"grpc-timeout", (uint8_t *)"1S", 12, 2, 0},
    };
    size_t n = 7;
    if (extra_k)
        nva[n++] = (nghttp2_nv){(uint8_t *)extra_k, (uint8_t *)extra_v, strlen(extra_k),
                                strlen(extra_v), 0};
    nghttp2_data_provider prd = {.source.ptr = &b, .read_callback = read_body};
    int32_t id = nghttp2_submit_request(s, NULL, nva, n, &prd, NULL);
    if (ping)
        nghttp2_submit_ping(s, NGHTTP2_FLAG_NONE, NULL);
    drain(s);
    if (reset) {
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        drain(s);
    }
    nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
    drain(s);
    nghttp2_session_del(s);
    save(dir, "h2_server", name, out, out_len);
    save(dir, "deframe", name, b.buf, b.len);
}

/* Server answers: SETTINGS ack, response HEADERS, DATA, trailers. */
static void client_seeds(const char *dir)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session *s;
    nghttp2_session_server_new(&s, cbs, NULL);
    nghttp2_session_callbacks_del(cbs);
    /* Feed a client preface + two requests so the server session accepts
     * responses on streams 1 and 3. */
    nghttp2_session_callbacks *ccbs;
    nghttp2_session_callbacks_new(&ccbs);
    nghttp2_session *c;
    nghttp2_session_client_new(&c, ccbs, NULL);
    nghttp2_session_callbacks_del(ccbs);
    nghttp2_submit_settings(c, NGHTTP2_FLAG_NONE, NULL, 0);
    nghttp2_nv req[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":path", (uint8_t *)"/a/b", 5, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
    };
    nghttp2_submit_request(c, NULL, req, 4, NULL, NULL);
    nghttp2_submit_request(c, NULL, req, 4, NULL, NULL);
    const uint8_t *p;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(c, &p)) > 0)
        nghttp2_session_mem_recv(s, p, (size_t)n);
    nghttp2_session_del(c);
    out_len = 0;
    drain(s);
    /* Drop the server's own SETTINGS (the target sends one). */
    if (out_len >= 9) {
        size_t flen = (size_t)out[0] << 16 | (size_t)out[1] << 8 | out[2];
        memmove(out, out + 9 + flen, out_len - 9 - flen);
        out_len -= 9 + flen;
    }
    static struct body b;
    memset(&b, 0, sizeof b);
    Metcd__Test__EchoResponse resp = METCD__TEST__ECHO_RESPONSE__INIT;
    resp.message = "hi";
    b.len = frame(b.buf, (const ProtobufCMessage *)&resp);
    nghttp2_nv hdr[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
    };
    nghttp2_nv trl[] = {
        {(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, 0},
        {(uint8_t *)"grpc-message", (uint8_t *)"ok%20then", 12, 9, 0},
    };
    nghttp2_data_provider prd = {.source.ptr = &b, .read_callback = read_body};
    nghttp2_submit_headers(s, NGHTTP2_FLAG_NONE, 1, NULL, hdr, 2, NULL);
    nghttp2_submit_data(s, NGHTTP2_FLAG_NONE, 1, &prd);
    drain(s);
    nghttp2_submit_trailer(s, 1, trl, 2);
    nghttp2_nv only[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
        {(uint8_t *)"grpc-status", (uint8_t *)"5", 11, 1, 0},
    };
    nghttp2_submit_headers(s, NGHTTP2_FLAG_END_STREAM, 3, NULL, only, 3, NULL);
    nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, 3, NGHTTP2_NO_ERROR, NULL, 0);
    drain(s);
    nghttp2_session_del(s);
    save(dir, "client", "answers", out, out_len);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    mkdir(dir, 0755);
    h2_seed(dir, "unary", "/metcd.test.Echo/Unary", 1, "token", "t", 0, 0);
    h2_seed(dir, "bidi", "/metcd.test.Echo/Bidi", 3, NULL, NULL, 0, 1);
    h2_seed(dir, "client_stream", "/metcd.test.Echo/ClientStream", 4, NULL, NULL, 0, 0);
    h2_seed(dir, "server_stream", "/metcd.test.Echo/ServerStream", 1, NULL, NULL, 1, 0);
    h2_seed(dir, "unknown", "/no.Such/Method", 1, NULL, NULL, 0, 0);
    h2_seed(dir, "gzip", "/metcd.test.Echo/Unary", 1, "grpc-encoding", "gzip", 0, 0);
    h2_seed(dir, "health", "/grpc.health.v1.Health/Check", 1, NULL, NULL, 0, 0);
    h2_seed(dir, "channelz", "/grpc.channelz.v1.Channelz/GetServers", 1, NULL, NULL, 0, 1);
    client_seeds(dir);
    static const char *http1[] = {
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /v3/kv/range HTTP/1.1\r\nContent-Length: 4\r\n\r\n{}{}GET /v3/x HTTP/1.1\r\n\r\n",
        "GET /nope?x=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "POST /v3/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof http1 / sizeof http1[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "req%zu", i);
        save(dir, "sniff_http1", name, (const uint8_t *)http1[i], strlen(http1[i]));
    }
    static const char *pbjson[] = {
        "etcdserverpb.PutRequest\n{\"key\":\"Zm9v\",\"value\":\"YmFy\",\"lease\":\"7\",\"prev_kv\":true}",
        "etcdserverpb.RangeRequest\n{\"key\":\"YS8=\",\"range_end\":\"YTA=\",\"limit\":2,"
        "\"sort_order\":\"DESCEND\",\"sortTarget\":\"MOD\",\"keysOnly\":true,"
        "\"min_mod_revision\":-1,\"max_create_revision\":\"9223372036854775807\"}",
        "etcdserverpb.TxnRequest\n{\"compare\":[{\"key\":\"Zm9v\",\"target\":\"VALUE\","
        "\"result\":\"EQUAL\",\"value\":\"YmFy\"},{\"target\":1,\"create_revision\":null}],"
        "\"success\":[{\"request_put\":{\"key\":[102,111,111]}},{\"requestTxn\":{\"failure\":"
        "[{\"request_range\":{}}]}}],\"failure\":[null]}",
        "etcdserverpb.WatchRequest\n{\"create_request\":{\"key\":\"Zm9v\",\"start_revision\":1,"
        "\"filters\":[\"NOPUT\",1],\"prev_kv\":true}} {\"cancel_request\":{\"watch_id\":\"3\"}}"
        "{\"progress_request\":{}} null",
        "etcdserverpb.MemberAddRequest\n{\"peerURLs\":[\"http://\\u00e9\\ud83d\\ude00\\ud800\"],"
        "\"isLearner\":true}",
        "etcdserverpb.MemberRemoveRequest\n{\"ID\":18446744073709551615}",
        "etcdserverpb.AlarmRequest\n{\"action\":\"ACTIVATE\",\"memberID\":\"1\",\"alarm\":\"NOSPACE\"}",
        "etcdserverpb.LeaseKeepAliveRequest\n{\"ID\":1000}{\"ID\":\"1e3\"}[1,2]{\"ID\":5",
        "authpb.Role\n{\"name\":\"cm9vdA==\",\"keyPermission\":[{\"permType\":\"READWRITE\","
        "\"key\":\"YQ==\",\"range_end\":\"Yg==\"}]}",
    };
    for (size_t i = 0; i < sizeof pbjson / sizeof pbjson[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "body%zu", i);
        save(dir, "pbjson", name, (const uint8_t *)pbjson[i], strlen(pbjson[i]));
    }
    return 0;
}
