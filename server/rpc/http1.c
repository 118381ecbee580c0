/* server/rpc/http1.c - HTTP/1.1 on the client port: a small request parser
 * (Content-Length bodies, keep-alive, one request at a time; pipelined
 * bytes wait in the input buffer) and the router other parts register
 * paths on (/health, /version, /metrics, the JSON gateway). Responses may
 * come later, from the loop. */
#include "server/rpc/internal.h"

#include "common/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_HEADERS 64

struct rpc_http_req {
    struct rpc_conn *conn;
    const struct rpc_route *route;
    char *head;          /* owned copy of the request head, split in place */
    char *method, *path, *query;
    char *hname[MAX_HEADERS], *hvalue[MAX_HEADERS];
    size_t n_headers;
    uint8_t *body;       /* owned */
    size_t body_len;
    bool keep_alive;
    bool streaming;      /* chunked answer begun */
    bool answered;       /* respond or stream_begin called */
    char *extra;         /* owned: added response header lines, "Name: value\r\n"... */
    size_t extra_len;
    void (*on_drain)(struct rpc_http_req *req, void *data);
    void *drain_data;
    bool want_drain;     /* a stream write found the output full */
    void *data;          /* the handler's */
};

struct rpc_http_conn {
    struct rpc_http_req *req; /* the request being answered, or NULL */
    bool continue_sent;       /* "100 Continue" written for the request waiting */
};

static void req_free(struct rpc_http_req *r)
{
    if (!r)
        return;
    metcd_free(r->head);
    metcd_free(r->body);
    metcd_free(r->extra);
    metcd_free(r);
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Request Entity Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

static void on_h1_readable(struct bufferevent *bev, void *arg)
{
    (void)bev;
    rpc_http1_on_read(arg);
}

static void on_h1_written(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct rpc_conn *c = arg;
    struct rpc_http_req *r = c->h1 ? c->h1->req : NULL;
    if (r && r->streaming && r->want_drain && r->on_drain) {
        r->want_drain = false;
        r->on_drain(r, r->drain_data); /* may end the request */
        return;
    }
    rpc_http1_on_written(arg);
}

static void on_h1_event(struct bufferevent *bev, short what, void *arg)
{
    struct rpc_conn *c = arg;
    if ((what & BEV_EVENT_TIMEOUT) && c->h1 && c->h1->req) {
        /* Idle only because the handler takes its time: keep waiting. */
        bufferevent_enable(bev, EV_READ);
        return;
    }
    /* EOF, error or idle timeout: like Go's net/http, a request still being handled is
     * aborted (its route's on_abort runs when the connection is freed). */
    rpc_conn_kill(arg);
}

int rpc_http1_start(struct rpc_conn *c)
{
    c->h1 = metcd_calloc(1, sizeof *c->h1);
    if (!c->h1)
        return RPC_ERR_NOMEM;
    c->bev = bufferevent_socket_new(c->srv->base, c->fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev)
        return RPC_ERR_NOMEM;
    c->fd = -1;
    bufferevent_setcb(c->bev, on_h1_readable, on_h1_written, on_h1_event, c);
    struct timeval tv = {c->srv->cfg.handshake_timeout_ms / 1000,
                         (c->srv->cfg.handshake_timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    /* Reading goes on while a request is handled (to notice the client
     * leaving), bounded: one more request head and body at most. */
    bufferevent_setwatermark(c->bev, EV_READ, 0,
                             2 * RPC_HTTP1_MAX_HEAD + c->srv->cfg.max_http_body);
    if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0)
        return RPC_ERR_IO;
    rpc_conn_schedule(c); /* bytes are already waiting */
    return 0;
}

bool rpc_http1_idle(const struct rpc_conn *c)
{
    return !c->h1 || !c->h1->req;
}

void rpc_http1_drop(struct rpc_conn *c)
{
    if (!c->h1)
        return;
    struct rpc_http_req *r = c->h1->req;
    if (r) {
        c->h1->req = NULL;
        if (r->route && r->route->on_abort)
            r->route->on_abort(r, r->route->data);
        req_free(r);
    }
    metcd_free(c->h1);
    c->h1 = NULL;
}

/* Writes a complete response; body copied; extra: added header lines. */
static int write_response(struct rpc_conn *c, int status, const char *ctype, const void *body,
                          size_t len, bool close, const char *extra, size_t extra_len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int rc = evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, reason(status));
    if (rc >= 0 && ctype)
        rc = evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype);
    if (rc >= 0 && extra_len)
        rc = evbuffer_add(out, extra, extra_len);
    if (rc >= 0)
        rc = evbuffer_add_printf(out, "Content-Length: %zu\r\n%s\r\n", len,
                                 close ? "Connection: close\r\n" : "");
    if (rc >= 0 && len)
        rc = evbuffer_add(out, body, len);
    return rc < 0 ? RPC_ERR_NOMEM : 0;
}

static void fail(struct rpc_conn *c, int status, const char *text)
{
    write_response(c, status, "text/plain; charset=utf-8", text, strlen(text), true, NULL, 0);
    c->close_after_write = true;
    bufferevent_disable(c->bev, EV_READ);
}

/* Splits the head in place. Returns 0, or an HTTP status to fail with. */
static int parse_head(struct rpc_http_req *r, size_t head_len)
{
    char *p = r->head, *end = r->head + head_len;
    char *eol = strstr(p, "\r\n");
    if (!eol)
        return 400;
    *eol = 0;
    char *sp1 = strchr(p, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return 400;
    *sp1 = *sp2 = 0;
    r->method = p;
    r->path = sp1 + 1;
    if (r->path[0] != '/')
        return 400;
    char *q = strchr(r->path, '?');
    if (q) {
        *q = 0;
        r->query = q + 1;
    } else {
        r->query = sp2; /* "" */
    }
    r->keep_alive = strcmp(sp2 + 1, "HTTP/1.0") != 0;
    for (p = eol + 2; p < end && *p; p = eol + 2) {
        eol = strstr(p, "\r\n");
        if (!eol)
            return 400;
        *eol = 0;
        if (eol == p)
            break;
        char *colon = strchr(p, ':');
        if (!colon || colon == p)
            return 400;
        if (r->n_headers == MAX_HEADERS)
            return 431;
        *colon = 0;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        char *ve = eol;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            *--ve = 0;
        r->hname[r->n_headers] = p;
        r->hvalue[r->n_headers++] = v;
    }
    const char *conn = rpc_http_header(r, "connection");
    if (conn && strcasecmp(conn, "close") == 0)
        r->keep_alive = false;
    else if (conn && strcasecmp(conn, "keep-alive") == 0)
        r->keep_alive = true;
    return 0;
}

void rpc_http1_on_read(struct rpc_conn *c)
{
    static const char not_found[] = "404 page not found\n";
    if (c->dead || !c->h1 || c->h1->req || c->close_after_write)
        return;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer_ptr pos = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (pos.pos < 0) {
        if (evbuffer_get_length(in) > RPC_HTTP1_MAX_HEAD)
            fail(c, 431, "431 Request Header Fields Too Large");
        return;
    }
    size_t head_len = (size_t)pos.pos + 4;
    if (head_len > RPC_HTTP1_MAX_HEAD) {
        fail(c, 431, "431 Request Header Fields Too Large");
        return;
    }
    struct rpc_http_req *r = metcd_calloc(1, sizeof *r);
    if (!r || !(r->head = metcd_malloc(head_len + 1))) {
        metcd_free(r);
        fail(c, 500, "out of memory");
        return;
    }
    r->conn = c;
    evbuffer_copyout(in, r->head, head_len);
    r->head[head_len] = 0;
    int st = parse_head(r, head_len);
    size_t body_len = 0;
    if (st == 0) {
        const char *te = rpc_http_header(r, "transfer-encoding");
        const char *cl = rpc_http_header(r, "content-length");
        if (te && strcasecmp(te, "identity") != 0) {
            st = 501;
        } else if (cl) {
            char *e;
            unsigned long long v = strtoull(cl, &e, 10);
            if (*e || e == cl)
                st = 400;
            else if (v > c->srv->cfg.max_http_body)
                st = 413;
            else
                body_len = (size_t)v;
        }
    }
    if (st != 0) {
        req_free(r);
        fail(c, st, reason(st));
        return;
    }
    if (evbuffer_get_length(in) < head_len + body_len) {
        const char *expect = rpc_http_header(r, "expect");
        if (expect && strcasecmp(expect, "100-continue") == 0 && !c->h1->continue_sent &&
            evbuffer_add_printf(bufferevent_get_output(c->bev),
                                "HTTP/1.1 100 Continue\r\n\r\n") > 0)
            c->h1->continue_sent = true;
        req_free(r); /* wait for the body; parse again then */
        return;
    }
    c->h1->continue_sent = false;
    evbuffer_drain(in, head_len);
    r->body = metcd_malloc(body_len ? body_len : 1);
    if (!r->body) {
        req_free(r);
        fail(c, 500, "out of memory");
        return;
    }
    evbuffer_remove(in, r->body, body_len);
    r->body_len = body_len;
    r->route = rpc_server_route_find(c->srv, r->path);
    if (!r->route) {
        bool ka = r->keep_alive && !c->srv->shutting_down;
        req_free(r);
        write_response(c, 404, "text/plain; charset=utf-8", not_found, sizeof not_found - 1,
                       !ka, NULL, 0);
        if (!ka)
            c->close_after_write = true;
        else
            rpc_conn_schedule(c); /* pipelined requests */
        return;
    }
    c->h1->req = r; /* one request at a time: the rest waits in the input */
    r->route->fn(r, r->route->data);
}

void rpc_http1_on_written(struct rpc_conn *c)
{
    if (c->close_after_write && !c->h1->req)
        rpc_conn_kill(c);
}

const char *rpc_http_method(const struct rpc_http_req *req) { return req->method; }
const char *rpc_http_path(const struct rpc_http_req *req) { return req->path; }
const char *rpc_http_query(const struct rpc_http_req *req) { return req->query; }

const char *rpc_http_header(const struct rpc_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->hname[i], name) == 0)
            return req->hvalue[i];
    return NULL;
}

const void *rpc_http_body(const struct rpc_http_req *req, size_t *len)
{
    *len = req->body_len;
    return req->body;
}

int rpc_http_respond(struct rpc_http_req *req, int status, const char *content_type,
                     const void *body, size_t len)
{
    if (!req || req->streaming)
        return RPC_ERR_INVAL;
    struct rpc_conn *c = req->conn;
    bool close = !req->keep_alive || c->close_after_write || c->srv->shutting_down;
    /* Write first: body may point into the request (an echo). */
    int rc = write_response(c, status, content_type, body, len, close, req->extra,
                            req->extra_len);
    c->h1->req = NULL;
    req_free(req);
    if (close || rc != 0) {
        c->close_after_write = true;
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            rpc_conn_kill(c);
    } else {
        rpc_conn_schedule(c); /* pipelined requests already buffered */
    }
    return rc;
}

int rpc_http_stream_begin(struct rpc_http_req *req, int status, const char *content_type)
{
    if (!req || req->streaming)
        return RPC_ERR_INVAL;
    struct evbuffer *out = bufferevent_get_output(req->conn->bev);
    int rc = evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, reason(status));
    if (rc >= 0 && content_type)
        rc = evbuffer_add_printf(out, "Content-Type: %s\r\n", content_type);
    if (rc >= 0 && req->extra_len)
        rc = evbuffer_add(out, req->extra, req->extra_len);
    if (rc >= 0)
        rc = evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n\r\n");
    if (rc < 0)
        return RPC_ERR_NOMEM;
    req->streaming = true;
    req->answered = true;
    return 0;
}

void rpc_http_set_data(struct rpc_http_req *req, void *data)
{
    if (req)
        req->data = data;
}

void *rpc_http_get_data(const struct rpc_http_req *req)
{
    return req ? req->data : NULL;
}

void rpc_http_stream_on_drain(struct rpc_http_req *req,
                              void (*fn)(struct rpc_http_req *req, void *data), void *data)
{
    if (!req)
        return;
    req->on_drain = fn;
    req->drain_data = data;
}

int rpc_http_add_header(struct rpc_http_req *req, const char *name, const char *value)
{
    if (!req || !name || !value || !*name)
        return RPC_ERR_INVAL;
    if (req->answered)
        return RPC_ERR_STATE;
    if (strpbrk(name, "\r\n: ") || strpbrk(value, "\r\n"))
        return RPC_ERR_INVAL;
    size_t nl = strlen(name), vl = strlen(value);
    char *n = metcd_realloc(req->extra, req->extra_len + nl + vl + 5);
    if (!n)
        return RPC_ERR_NOMEM;
    req->extra = n;
    memcpy(n + req->extra_len, name, nl);
    memcpy(n + req->extra_len + nl, ": ", 2);
    memcpy(n + req->extra_len + nl + 2, value, vl);
    memcpy(n + req->extra_len + nl + 2 + vl, "\r\n", 2);
    req->extra_len += nl + vl + 4;
    return 0;
}

int rpc_http_stream_write(struct rpc_http_req *req, const void *data, size_t len)
{
    if (!req || !req->streaming)
        return RPC_ERR_INVAL;
    if (len == 0)
        return 0; /* a zero chunk would end the body */
    struct rpc_conn *c = req->conn;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) >= c->srv->cfg.conn_queue_bytes) {
        req->want_drain = true;
        return RPC_ERR_FULL;
    }
    if (evbuffer_add_printf(out, "%zx\r\n", len) < 0 || evbuffer_add(out, data, len) != 0 ||
        evbuffer_add(out, "\r\n", 2) != 0)
        return RPC_ERR_NOMEM;
    return 0;
}

int rpc_http_stream_end(struct rpc_http_req *req)
{
    if (!req || !req->streaming)
        return RPC_ERR_INVAL;
    struct rpc_conn *c = req->conn;
    bool close = !req->keep_alive || c->close_after_write || c->srv->shutting_down;
    int rc = evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5) ? RPC_ERR_NOMEM : 0;
    c->h1->req = NULL;
    req_free(req);
    if (close || rc != 0) {
        c->close_after_write = true;
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            rpc_conn_kill(c);
    } else {
        rpc_conn_schedule(c);
    }
    return rc;
}
