/* server/channelz/registry.c - the channelz registry: id generator, nodes
 * kept in ascending id order, parent/child links, bounded traces and the
 * removal rule (a node asked to go stays while it has children or is
 * referenced from a trace; A14-channelz.md "Lifetime"). */
#include "server/channelz/channelz.h"

#include "common/mem.h"

#include <stdbool.h>
#include <string.h>

struct channelz_node {
    struct channelz *cz;
    uint64_t id;
    enum channelz_kind kind;
    char *name;
    struct channelz_node *parent;
    int64_t created_ns;
    bool removed;
    size_t n_children;
    size_t trace_refs;
    enum channelz_state state;
    struct channelz_calls calls;
    struct channelz_socket_data sock;
    struct sockaddr_storage local, remote;
    socklen_t local_len, remote_len;
    struct channelz_tls *tls; /* sockets over TLS only */
    struct channelz_event *events; /* oldest first, up to cz->max_events */
    size_t n_events;
    uint64_t logged;
};

struct channelz {
    uint64_t next_id;
    struct channelz_node **nodes; /* ascending id */
    size_t n, cap;
    size_t max_events;
};

static void tls_clear(struct channelz_node *n)
{
    if (!n->tls)
        return;
    metcd_free(n->tls->standard_name);
    metcd_free(n->tls->other_name);
    metcd_free(n->tls->local_cert);
    metcd_free(n->tls->remote_cert);
    metcd_free(n->tls);
    n->tls = NULL;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t len, bool *failed)
{
    if (!p || !len)
        return NULL;
    uint8_t *d = metcd_malloc(len);
    if (!d) {
        *failed = true;
        return NULL;
    }
    memcpy(d, p, len);
    return d;
}

int channelz_set_tls(struct channelz_node *n, const char *standard_name, const char *other_name,
                     const uint8_t *local_cert, size_t local_len, const uint8_t *remote_cert,
                     size_t remote_len)
{
    if (!n)
        return 0;
    tls_clear(n);
    struct channelz_tls *t = metcd_calloc(1, sizeof(*t));
    if (!t)
        return -1;
    bool failed = false;
    if (standard_name && !(t->standard_name = metcd_strdup(standard_name)))
        failed = true;
    if (other_name && !(t->other_name = metcd_strdup(other_name)))
        failed = true;
    t->local_cert = dup_bytes(local_cert, local_len, &failed);
    t->local_cert_len = t->local_cert ? local_len : 0;
    t->remote_cert = dup_bytes(remote_cert, remote_len, &failed);
    t->remote_cert_len = t->remote_cert ? remote_len : 0;
    n->tls = t;
    if (failed) {
        tls_clear(n);
        return -1;
    }
    return 0;
}

const struct channelz_tls *channelz_tls_of(const struct channelz_node *n)
{
    return n ? n->tls : NULL;
}

const char *channelz_strerror(int err)
{
    switch (err) {
    case CHANNELZ_OK: return "success";
    case CHANNELZ_ERR_NOMEM: return "channelz: out of memory";
    case CHANNELZ_ERR_INVAL: return "channelz: invalid argument";
    default: return "channelz: unknown error";
    }
}

int channelz_new(struct channelz **out, size_t max_events)
{
    struct channelz *cz = metcd_calloc(1, sizeof *cz);
    if (!cz)
        return CHANNELZ_ERR_NOMEM;
    cz->next_id = 1;
    cz->max_events = max_events;
    *out = cz;
    return 0;
}

static void node_release(struct channelz_node *n);

static void events_clear(struct channelz_node *n)
{
    /* Detach first: releasing a reference may free other nodes. */
    struct channelz_event *ev = n->events;
    size_t cnt = n->n_events;
    n->events = NULL;
    n->n_events = 0;
    for (size_t i = 0; i < cnt; i++) {
        metcd_free(ev[i].description);
        if (ev[i].ref) {
            ev[i].ref->trace_refs--;
            node_release(ev[i].ref);
        }
    }
    metcd_free(ev);
}

static size_t index_of(const struct channelz *cz, uint64_t id, bool *found)
{
    size_t lo = 0, hi = cz->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cz->nodes[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < cz->n && cz->nodes[lo]->id == id;
    return lo;
}

/* Frees n if it was asked to go and nothing holds it any more. */
static void node_release(struct channelz_node *n)
{
    while (n && n->removed && n->n_children == 0 && n->trace_refs == 0) {
        struct channelz *cz = n->cz;
        bool found;
        size_t i = index_of(cz, n->id, &found);
        if (found) {
            memmove(&cz->nodes[i], &cz->nodes[i + 1], (cz->n - i - 1) * sizeof cz->nodes[0]);
            cz->n--;
        }
        struct channelz_node *parent = n->parent;
        events_clear(n);
        tls_clear(n);
        metcd_free(n->name);
        metcd_free(n);
        if (parent)
            parent->n_children--;
        n = parent;
    }
}

void channelz_free(struct channelz *cz)
{
    if (!cz)
        return;
    for (size_t i = 0; i < cz->n; i++) {
        struct channelz_node *n = cz->nodes[i];
        for (size_t j = 0; j < n->n_events; j++)
            metcd_free(n->events[j].description);
        metcd_free(n->events);
        tls_clear(n);
        metcd_free(n->name);
        metcd_free(n);
    }
    metcd_free(cz->nodes);
    metcd_free(cz);
}

static bool parent_fits(enum channelz_kind kind, const struct channelz_node *p)
{
    switch (kind) {
    case CHANNELZ_CHANNEL:
    case CHANNELZ_SERVER:
        return p == NULL;
    case CHANNELZ_SUBCHANNEL:
        return p && (p->kind == CHANNELZ_CHANNEL || p->kind == CHANNELZ_SUBCHANNEL);
    case CHANNELZ_LISTEN_SOCKET:
        return p && p->kind == CHANNELZ_SERVER;
    case CHANNELZ_SOCKET:
        return p && (p->kind == CHANNELZ_SERVER || p->kind == CHANNELZ_SUBCHANNEL);
    }
    return false;
}

int channelz_add(struct channelz *cz, enum channelz_kind kind, struct channelz_node *parent,
                 const char *name, int64_t now_ns, struct channelz_node **out)
{
    if (!cz || !out || !parent_fits(kind, parent) || (parent && parent->removed))
        return CHANNELZ_ERR_INVAL;
    if (cz->n == cz->cap) {
        size_t cap = cz->cap ? cz->cap * 2 : 16;
        struct channelz_node **nn = metcd_realloc(cz->nodes, cap * sizeof *nn);
        if (!nn)
            return CHANNELZ_ERR_NOMEM;
        cz->nodes = nn;
        cz->cap = cap;
    }
    struct channelz_node *n = metcd_calloc(1, sizeof *n);
    if (!n)
        return CHANNELZ_ERR_NOMEM;
    n->name = metcd_strdup(name ? name : "");
    if (!n->name) {
        metcd_free(n);
        return CHANNELZ_ERR_NOMEM;
    }
    n->cz = cz;
    n->id = cz->next_id++;
    n->kind = kind;
    n->parent = parent;
    n->created_ns = now_ns;
    n->state = CHANNELZ_STATE_IDLE;
    n->sock.local_window = n->sock.remote_window = -1;
    if (parent)
        parent->n_children++;
    cz->nodes[cz->n++] = n; /* ids only grow: order kept */
    *out = n;
    return 0;
}

static bool children_all_removed(const struct channelz_node *n)
{
    const struct channelz *cz = n->cz;
    for (size_t i = 0; i < cz->n; i++)
        if (cz->nodes[i]->parent == n && !cz->nodes[i]->removed)
            return false;
    return true;
}

/* A removed node whose children are all removed too lets go of its trace:
 * otherwise a child referenced only from that trace (the usual
 * "subchannel created" event) and the parent would hold each other. */
static void settle(struct channelz_node *n)
{
    if (!n || !n->removed)
        return;
    if (n->n_events && children_all_removed(n)) {
        n->trace_refs++; /* pin: clearing may free children, then n */
        events_clear(n);
        n->trace_refs--;
    }
    node_release(n);
}

void channelz_remove(struct channelz_node *n)
{
    if (!n || n->removed)
        return;
    n->removed = true;
    struct channelz_node *parent = n->parent;
    bool parent_waits = parent && parent->removed;
    if (parent_waits)
        parent->trace_refs++; /* pin while n settles */
    settle(n);
    if (parent_waits) {
        parent->trace_refs--;
        settle(parent);
    }
}

uint64_t channelz_id(const struct channelz_node *n) { return n->id; }
enum channelz_kind channelz_kind_of(const struct channelz_node *n) { return n->kind; }
const char *channelz_name(const struct channelz_node *n) { return n->name; }
struct channelz_node *channelz_parent(const struct channelz_node *n) { return n->parent; }
int64_t channelz_created_ns(const struct channelz_node *n) { return n->created_ns; }

struct channelz_calls *channelz_calls_of(struct channelz_node *n)
{
    return n->kind == CHANNELZ_CHANNEL || n->kind == CHANNELZ_SUBCHANNEL ||
                   n->kind == CHANNELZ_SERVER
               ? &n->calls
               : NULL;
}

struct channelz_socket_data *channelz_socket_of(struct channelz_node *n)
{
    return n->kind == CHANNELZ_SOCKET || n->kind == CHANNELZ_LISTEN_SOCKET ? &n->sock : NULL;
}

void channelz_set_state(struct channelz_node *n, enum channelz_state st)
{
    if (n)
        n->state = st;
}

enum channelz_state channelz_state_of(const struct channelz_node *n) { return n->state; }

void channelz_set_addrs(struct channelz_node *n, const struct sockaddr *local,
                        socklen_t local_len, const struct sockaddr *remote,
                        socklen_t remote_len)
{
    if (local && local_len <= sizeof n->local) {
        memcpy(&n->local, local, local_len);
        n->local_len = local_len;
    }
    if (remote && remote_len <= sizeof n->remote) {
        memcpy(&n->remote, remote, remote_len);
        n->remote_len = remote_len;
    }
}

const struct sockaddr *channelz_local_addr(const struct channelz_node *n, socklen_t *len)
{
    *len = n->local_len;
    return (const struct sockaddr *)&n->local;
}

const struct sockaddr *channelz_remote_addr(const struct channelz_node *n, socklen_t *len)
{
    *len = n->remote_len;
    return (const struct sockaddr *)&n->remote;
}

int channelz_trace(struct channelz_node *n, enum channelz_severity sev, const char *desc,
                   struct channelz_node *ref, int64_t now_ns)
{
    if (!n || !desc)
        return CHANNELZ_ERR_INVAL;
    size_t max = n->cz->max_events;
    if (max == 0 || (n->kind != CHANNELZ_CHANNEL && n->kind != CHANNELZ_SUBCHANNEL))
        return 0;
    if (ref && ref->kind != CHANNELZ_CHANNEL && ref->kind != CHANNELZ_SUBCHANNEL)
        return CHANNELZ_ERR_INVAL;
    char *d = metcd_strdup(desc);
    if (!d)
        return CHANNELZ_ERR_NOMEM;
    if (!n->events) {
        n->events = metcd_calloc(max, sizeof *n->events);
        if (!n->events) {
            metcd_free(d);
            return CHANNELZ_ERR_NOMEM;
        }
    }
    n->logged++;
    if (ref)
        ref->trace_refs++;
    struct channelz_event old = {0};
    if (n->n_events == max) {
        old = n->events[0];
        memmove(&n->events[0], &n->events[1], (max - 1) * sizeof n->events[0]);
        n->n_events--;
    }
    n->events[n->n_events++] = (struct channelz_event){d, sev, now_ns, ref};
    metcd_free(old.description);
    if (old.ref) {
        old.ref->trace_refs--;
        node_release(old.ref);
    }
    return 0;
}

int channelz_trace_parent(struct channelz_node *child, enum channelz_severity sev,
                          const char *desc, int64_t now_ns)
{
    if (!child || !child->parent)
        return CHANNELZ_ERR_INVAL;
    return channelz_trace(child->parent, sev, desc, child, now_ns);
}

const struct channelz_event *channelz_events(const struct channelz_node *n, size_t *n_events,
                                             uint64_t *logged, int64_t *created_ns)
{
    *n_events = n->n_events;
    if (logged)
        *logged = n->logged;
    if (created_ns)
        *created_ns = n->created_ns;
    return n->events;
}

static bool kind_matches(enum channelz_kind want, enum channelz_kind have)
{
    if (want == CHANNELZ_SOCKET)
        return have == CHANNELZ_SOCKET || have == CHANNELZ_LISTEN_SOCKET;
    return want == have;
}

struct channelz_node *channelz_find(const struct channelz *cz, enum channelz_kind kind,
                                    uint64_t id)
{
    bool found;
    size_t i = index_of(cz, id, &found);
    if (!found || !kind_matches(kind, cz->nodes[i]->kind))
        return NULL;
    return cz->nodes[i];
}

size_t channelz_list(const struct channelz *cz, enum channelz_kind kind,
                     const struct channelz_node *parent, uint64_t start_id, size_t max,
                     struct channelz_node **out, int *end)
{
    if (max == 0)
        max = 50;
    bool found;
    size_t i = index_of(cz, start_id, &found), n = 0;
    *end = 1;
    for (; i < cz->n; i++) {
        struct channelz_node *nd = cz->nodes[i];
        if (nd->kind != kind || (parent && nd->parent != parent))
            continue;
        if (n == max) {
            *end = 0;
            break;
        }
        out[n++] = nd;
    }
    return n;
}

size_t channelz_children(const struct channelz_node *n, enum channelz_kind kind,
                         struct channelz_node **out, size_t cap)
{
    const struct channelz *cz = n->cz;
    size_t cnt = 0;
    for (size_t i = 0; i < cz->n && cnt < cap; i++)
        if (cz->nodes[i]->parent == n && cz->nodes[i]->kind == kind)
            out[cnt++] = cz->nodes[i];
    return cnt;
}

size_t channelz_count(const struct channelz *cz) { return cz->n; }
