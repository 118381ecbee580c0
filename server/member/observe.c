/* server/member/observe.c - what an operator looks at besides /metrics:
 * /health as etcd 3.4 answers it (etcdhttp.checkHealth), the extra
 * --listen-metrics-urls listeners (only /metrics and /health, as etcd's
 * metrics mux), and /debug/channelz (the member's connections, as an HTML
 * page for a person or JSON with Accept: application/json).
 *
 * /health: GET only (405 otherwise). Unhealthy (503, {"health":"false"})
 * when an alarm is active that ?exclude=NAME does not name, when there is
 * no leader, or when a linearizable read barrier (ReadIndex, then applied
 * up to it; etcd uses a quorum QGET) does not finish within a second.
 * ?serializable=true skips the barrier (etcd 3.5's option), so a member cut
 * off from its quorum but with a leader it last heard of answers from its
 * own state. Counted in etcd_server_health_success / _failures. */
#include "server/member/internal.h"

#include "common/mem.h"
#include "server/channelz/channelz.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define HEALTH_TIMEOUT_MS 1000

struct health_check {
    member *m;
    struct rpc_http_req *req;
    pending_read *rd;
    struct event *timer;
    struct health_check *prev, *next;
};

static struct health_check *checks; /* in flight (one member per process) */

static void health_answer(member *m, struct rpc_http_req *req, bool ok)
{
    if (ok)
        m->health_success++;
    else
        m->health_failures++;
    /* etcd: w.Write on success, http.Error (a trailing newline) on failure */
    const char *body = ok ? "{\"health\":\"true\"}" : "{\"health\":\"false\"}\n";
    rpc_http_respond(req, ok ? 200 : 503, "text/plain; charset=utf-8", body, strlen(body));
}

static void check_free(struct health_check *hc)
{
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        checks = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    if (hc->timer)
        event_free(hc->timer);
    member_read_cancel(hc->rd);
    metcd_free(hc);
}

static void on_barrier(member *m, void *arg, int rc)
{
    struct health_check *hc = arg;
    hc->rd = NULL; /* done: the handle is dead */
    if (rc) {
        enum rpc_code code;
        const char *msg;
        member_error_status(rc, &code, &msg);
        member_logf(m, MLOG_WARN, "etcdserver/api/etcdhttp",
                    "/health error; QGET failed %s (status code 503)", msg);
    }
    health_answer(m, hc->req, rc == 0);
    check_free(hc);
}

static void on_health_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct health_check *hc = arg;
    member_logf(hc->m, MLOG_WARN, "etcdserver/api/etcdhttp",
                "/health error; QGET failed context deadline exceeded (status code 503)");
    health_answer(hc->m, hc->req, false);
    check_free(hc);
}

static void health_abort(struct rpc_http_req *req, void *data)
{
    (void)data;
    for (struct health_check *hc = checks; hc; hc = hc->next)
        if (hc->req == req) {
            check_free(hc);
            return;
        }
}

/* Does the query name `key=value`, or `key` among the values of `exclude`? */
static bool query_has(const char *q, const char *key, const char *value)
{
    size_t kl = strlen(key), vl = strlen(value);
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len == kl + 1 + vl && !strncmp(q, key, kl) && q[kl] == '=' &&
            !strncmp(q + kl + 1, value, vl))
            return true;
        q = amp ? amp + 1 : NULL;
    }
    return false;
}

static const char *alarm_name(int type)
{
    return type == ETCDSERVERPB__ALARM_TYPE__NOSPACE   ? "NOSPACE"
           : type == ETCDSERVERPB__ALARM_TYPE__CORRUPT ? "CORRUPT"
                                                       : "NONE";
}

static void http_health(struct rpc_http_req *req, void *data)
{
    member *m = data;
    if (strcmp(rpc_http_method(req), "GET") != 0) {
        /* net/http's Error: the text and a newline */
        rpc_http_respond(req, 405, "text/plain; charset=utf-8", "Method Not Allowed\n", 19);
        return;
    }
    const char *q = rpc_http_query(req);
    for (size_t i = 0; i < m->n_alarms; i++) {
        if (query_has(q, "exclude", alarm_name(m->alarms[i].type)))
            continue;
        member_logf(m, MLOG_WARN, "etcdserver/api/etcdhttp", "/health error due to memberID:%llu alarm:%s ",
                    (unsigned long long)m->alarms[i].member_id, alarm_name(m->alarms[i].type));
        health_answer(m, req, false);
        return;
    }
    if (!m->serving || !member_has_leader(m)) {
        member_logf(m, MLOG_WARN, "etcdserver/api/etcdhttp",
                    "/health error; no leader (status code 503)");
        health_answer(m, req, false);
        return;
    }
    if (query_has(q, "serializable", "true")) {
        health_answer(m, req, true);
        return;
    }
    struct health_check *hc = metcd_calloc(1, sizeof(*hc));
    if (!hc) {
        health_answer(m, req, false);
        return;
    }
    hc->m = m;
    hc->req = req;
    hc->timer = evtimer_new(m->base, on_health_timeout, hc);
    struct timeval tv = {0, HEALTH_TIMEOUT_MS * 1000};
    if (!hc->timer || evtimer_add(hc->timer, &tv) != 0) {
        if (hc->timer)
            event_free(hc->timer);
        metcd_free(hc);
        health_answer(m, req, false);
        return;
    }
    hc->next = checks;
    if (checks)
        checks->prev = hc;
    checks = hc;
    if (member_read_index(m, on_barrier, hc, &hc->rd) != 0) {
        hc->rd = NULL;
        health_answer(m, req, false);
        check_free(hc);
    }
}

void observe_stop(member *m)
{
    (void)m;
    while (checks) {
        health_answer(checks->m, checks->req, false);
        check_free(checks);
    }
}

/* ---- /debug/channelz ------------------------------------------------------------ */

static const char *kind_name(enum channelz_kind k)
{
    switch (k) {
    case CHANNELZ_CHANNEL:
        return "channel";
    case CHANNELZ_SUBCHANNEL:
        return "subchannel";
    case CHANNELZ_SERVER:
        return "server";
    case CHANNELZ_LISTEN_SOCKET:
        return "listen_socket";
    default:
        return "socket";
    }
}

static const char *state_name(enum channelz_state s)
{
    static const char *const n[] = {"UNKNOWN", "IDLE", "CONNECTING", "READY",
                                    "TRANSIENT_FAILURE", "SHUTDOWN"};
    return (unsigned)s < 6 ? n[s] : "UNKNOWN";
}

static void addr_text(const struct sockaddr *sa, socklen_t len, char *out, size_t cap)
{
    out[0] = 0;
    if (!sa || !len)
        return;
    char ip[INET6_ADDRSTRLEN] = "";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in->sin6_addr, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, ntohs(in->sin6_port));
    }
}

static json_t *node_json(struct channelz_node *n, int depth);

static json_t *children_json(struct channelz_node *n, enum channelz_kind kind, int depth)
{
    json_t *arr = json_array();
    struct channelz_node *kids[256];
    size_t nk = channelz_children(n, kind, kids, 256);
    for (size_t i = 0; arr && i < nk; i++)
        json_array_append_new(arr, node_json(kids[i], depth + 1));
    return arr;
}

static json_t *node_json(struct channelz_node *n, int depth)
{
    enum channelz_kind k = channelz_kind_of(n);
    json_t *o = json_pack("{s:I,s:s,s:s}", "id", (json_int_t)channelz_id(n), "kind",
                          kind_name(k), "name", channelz_name(n));
    if (!o)
        return NULL;
    if (k == CHANNELZ_CHANNEL || k == CHANNELZ_SUBCHANNEL)
        json_object_set_new(o, "state", json_string(state_name(channelz_state_of(n))));
    struct channelz_calls *c = channelz_calls_of(n);
    if (c)
        json_object_set_new(o, "calls", json_pack("{s:I,s:I,s:I}", "started",
                                                  (json_int_t)c->started, "succeeded",
                                                  (json_int_t)c->succeeded, "failed",
                                                  (json_int_t)c->failed));
    struct channelz_socket_data *sd = channelz_socket_of(n);
    if (sd) {
        socklen_t ll, rl;
        char la[64], ra[64];
        addr_text(channelz_local_addr(n, &ll), ll, la, sizeof(la));
        addr_text(channelz_remote_addr(n, &rl), rl, ra, sizeof(ra));
        json_object_set_new(o, "local", json_string(la));
        json_object_set_new(o, "remote", json_string(ra));
        json_object_set_new(
            o, "data",
            json_pack("{s:I,s:I,s:I,s:I,s:I}", "streams_started", (json_int_t)sd->streams_started,
                      "streams_succeeded", (json_int_t)sd->streams_succeeded, "streams_failed",
                      (json_int_t)sd->streams_failed, "messages_sent",
                      (json_int_t)sd->messages_sent, "messages_received",
                      (json_int_t)sd->messages_received));
    }
    if (depth < 3) {
        if (k == CHANNELZ_SERVER) {
            json_object_set_new(o, "listen_sockets",
                                children_json(n, CHANNELZ_LISTEN_SOCKET, depth));
            json_object_set_new(o, "sockets", children_json(n, CHANNELZ_SOCKET, depth));
        } else if (k == CHANNELZ_CHANNEL || k == CHANNELZ_SUBCHANNEL) {
            json_object_set_new(o, "subchannels", children_json(n, CHANNELZ_SUBCHANNEL, depth));
            json_object_set_new(o, "sockets", children_json(n, CHANNELZ_SOCKET, depth));
        }
    }
    return o;
}

static json_t *all_json(member *m, enum channelz_kind kind)
{
    json_t *arr = json_array();
    uint64_t start = 0;
    int end = 0;
    while (arr && !end) {
        struct channelz_node *v[50];
        size_t n = channelz_list(m->cz, kind, NULL, start, 50, v, &end);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, node_json(v[i], 0));
        if (!n)
            break;
        start = channelz_id(v[n - 1]) + 1;
    }
    return arr;
}

static void html_escape(struct evbuffer *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            evbuffer_add(b, "&lt;", 4);
        else if (*s == '>')
            evbuffer_add(b, "&gt;", 4);
        else if (*s == '&')
            evbuffer_add(b, "&amp;", 5);
        else
            evbuffer_add(b, s, 1);
    }
}

static void html_node(struct evbuffer *b, json_t *n)
{
    evbuffer_add_printf(b, "<li><b>%s %lld</b> ", json_string_value(json_object_get(n, "kind")),
                        (long long)json_integer_value(json_object_get(n, "id")));
    html_escape(b, json_string_value(json_object_get(n, "name")));
    json_t *st = json_object_get(n, "state");
    if (st)
        evbuffer_add_printf(b, " &mdash; %s", json_string_value(st));
    json_t *rem = json_object_get(n, "remote");
    if (rem && json_string_length(rem)) {
        evbuffer_add_printf(b, " &mdash; ");
        html_escape(b, json_string_value(json_object_get(n, "local")));
        evbuffer_add_printf(b, " &harr; ");
        html_escape(b, json_string_value(rem));
    }
    json_t *c = json_object_get(n, "calls");
    if (c)
        evbuffer_add_printf(b, " &mdash; calls %lld started, %lld ok, %lld failed",
                            (long long)json_integer_value(json_object_get(c, "started")),
                            (long long)json_integer_value(json_object_get(c, "succeeded")),
                            (long long)json_integer_value(json_object_get(c, "failed")));
    json_t *d = json_object_get(n, "data");
    if (d)
        evbuffer_add_printf(b, " &mdash; streams %lld, messages %lld sent / %lld received",
                            (long long)json_integer_value(json_object_get(d, "streams_started")),
                            (long long)json_integer_value(json_object_get(d, "messages_sent")),
                            (long long)json_integer_value(json_object_get(d, "messages_received")));
    static const char *const lists[] = {"listen_sockets", "subchannels", "sockets"};
    for (size_t i = 0; i < 3; i++) {
        json_t *arr = json_object_get(n, lists[i]);
        if (!arr || !json_array_size(arr))
            continue;
        evbuffer_add_printf(b, "<ul>");
        size_t j;
        json_t *v;
        json_array_foreach(arr, j, v) html_node(b, v);
        evbuffer_add_printf(b, "</ul>");
    }
    evbuffer_add_printf(b, "</li>\n");
}

static void http_channelz(struct rpc_http_req *req, void *data)
{
    member *m = data;
    json_t *root = json_pack("{s:o,s:o}", "servers", all_json(m, CHANNELZ_SERVER), "channels",
                             all_json(m, CHANNELZ_CHANNEL));
    const char *accept = rpc_http_header(req, "Accept");
    if (!root) {
        rpc_http_respond(req, 500, "text/plain; charset=utf-8", "out of memory\n", 14);
        return;
    }
    if (accept && strstr(accept, "application/json")) {
        char *s = json_dumps(root, JSON_INDENT(2));
        if (s)
            rpc_http_respond(req, 200, "application/json", s, strlen(s));
        else
            rpc_http_respond(req, 500, "text/plain; charset=utf-8", "out of memory\n", 14);
        json_free_t jfree;
        json_get_alloc_funcs(NULL, &jfree);
        jfree(s);
        json_decref(root);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        json_decref(root);
        rpc_http_respond(req, 500, "text/plain; charset=utf-8", "out of memory\n", 14);
        return;
    }
    evbuffer_add_printf(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>channelz: ");
    html_escape(b, m->opt.name ? m->opt.name : "");
    evbuffer_add_printf(b, "</title></head><body>\n<h1>channelz of member ");
    html_escape(b, m->opt.name ? m->opt.name : "");
    evbuffer_add_printf(b, " (%016llx)</h1>\n", (unsigned long long)m->id);
    static const char *const sections[] = {"servers", "channels"};
    static const char *const titles[] = {"Servers (client connections)",
                                         "Channels (peers and forwarding)"};
    for (size_t i = 0; i < 2; i++) {
        evbuffer_add_printf(b, "<h2>%s</h2>\n<ul>\n", titles[i]);
        size_t j;
        json_t *v;
        json_array_foreach(json_object_get(root, sections[i]), j, v) html_node(b, v);
        evbuffer_add_printf(b, "</ul>\n");
    }
    evbuffer_add_printf(b, "<p>JSON: send <code>Accept: application/json</code>.</p></body></html>\n");
    size_t len = evbuffer_get_length(b);
    rpc_http_respond(req, 200, "text/html; charset=utf-8", evbuffer_pullup(b, -1), len);
    evbuffer_free(b);
    json_decref(root);
}

/* ---- registration ----------------------------------------------------------------- */

int observe_register(member *m, struct rpc_server *srv, bool debug)
{
    int rc = rpc_server_route(srv, "/health", http_health, health_abort, m);
    if (rc == 0 && debug)
        rc = rpc_server_route(srv, "/debug/channelz", http_channelz, NULL, m);
    return rc;
}
