/* tools/metcdctl/cmd_watch.c - metcdctl watch: etcdctl 3.4's watch
 * (key, [range_end], --prefix, --rev, --prev-kv, -i, "-- command args",
 * ETCDCTL_WATCH_KEY / ETCDCTL_WATCH_RANGE_END) over one
 * etcdserverpb.Watch/Watch stream, in every output format.
 *
 * Beyond etcdctl:
 *   - failover without gap or duplicate: when the stream breaks (the
 *     member died, lost its leader), the watch is created again on the
 *     next endpoint from the revision after the last one seen (the last
 *     event's, or the creation's or a progress notification's header);
 *     events below that revision are never printed twice;
 *   - a compacted start revision names the oldest revision still there;
 *   - on a terminal, -w simple prints one aligned line per event (type,
 *     revision, local time, key, value); on a pipe, etcdctl's lines.
 *   - --progress-notify asks the member for periodic progress
 *     notifications (etcdctl 3.5's flag).
 */
#include "tools/metcdctl/ctl.h"

#include "common/mem.h"
#include "mvcc/mvccpb/kv.pb-c.h"
#include "server/etcdserverpb/rpc.pb-c.h"
#include "server/rpc/rpc.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_WATCHERS 64 /* interactive mode's watches on the stream */
#define MAX_LINE 65536  /* an interactive request line */
#define MAX_EXEC_ARGS CTL_MAX_ARGS
#define BACKOFF_MAX_MS 1000

/* One watch as asked. Strings owned (metcd_free). */
struct wspec {
    uint8_t *key, *end;
    size_t key_len, end_len;
    int64_t rev;
    bool prev_kv, progress_notify;
    char *exec[MAX_EXEC_ARGS + 1]; /* NULL-terminated; exec[0] NULL: none */
};

struct watcher {
    struct wspec spec;
    int64_t next_rev; /* first revision not yet printed; 0 until known */
    int64_t id;       /* the member's watch ID on the current stream, -1 none */
    bool done;        /* canceled for good */
};

struct wsession {
    struct ctl *c;
    bool interactive, tty;
    struct watcher *w[MAX_WATCHERS];
    size_t n_w;
    /* watchers whose create request awaits its "created" answer, in the
     * order sent (the member answers creates in order) */
    struct watcher *fifo[MAX_WATCHERS];
    size_t fifo_n;
    struct rpc_ccall *call;
    struct event *retry_ev, *in_ev;
    uint32_t backoff_ms;
    struct rpc_md md[2];
    size_t n_md;
    int in_fd;
    char *line; /* MAX_LINE */
    size_t line_len;
    const char *env_key, *env_range;
    size_t key_width; /* terminal lines: widest key so far */
    int exit;
    bool stop;
    bool recreate; /* we cancel the stream to open it again */
};

/* ------------------------------------------------------------------------ */
/* Specs                                                                    */

static void spec_clear(struct wspec *s)
{
    metcd_free(s->key);
    metcd_free(s->end);
    for (size_t i = 0; s->exec[i]; i++)
        metcd_free(s->exec[i]);
    memset(s, 0, sizeof(*s));
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *d = metcd_malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

/* clientv3.GetPrefixRangeEnd: the key with its last byte below 0xff
 * incremented and the rest dropped; "\0" when every byte is 0xff. */
static int prefix_end(const uint8_t *key, size_t len, uint8_t **end, size_t *end_len)
{
    size_t i = len;
    while (i > 0 && key[i - 1] == 0xff)
        i--;
    if (i == 0) {
        *end = dup_bytes("", 1);
        *end_len = 1;
    } else {
        *end = dup_bytes(key, i);
        *end_len = i;
        if (*end)
            (*end)[i - 1]++;
    }
    return *end ? 0 : -1;
}

/* getWatchChan: key [range_end] (a third argument is ignored, as there)
 * with the flags. 0, or -1 with the reason in err. */
static int spec_make(struct wspec *s, const char *const *args, size_t n, bool prefix, char *err,
                     size_t errlen)
{
    if (n < 1) {
        snprintf(err, errlen, "bad number of arguments");
        return -1;
    }
    if (n == 2 && prefix) {
        snprintf(err, errlen, "`range_end` and `--prefix` are mutually exclusive");
        return -1;
    }
    s->key_len = strlen(args[0]);
    if (prefix && s->key_len == 0) {
        /* clientv3.WithPrefix on "": every key from "\0" on */
        s->key = dup_bytes("", 1);
        s->end = dup_bytes("", 1);
        s->key_len = s->end_len = 1;
    } else {
        s->key = dup_bytes(args[0], s->key_len);
        if (prefix && s->key && prefix_end(s->key, s->key_len, &s->end, &s->end_len) != 0)
            s->end = NULL;
        else if (n == 2) {
            s->end_len = strlen(args[1]);
            s->end = dup_bytes(args[1], s->end_len);
        }
    }
    if (!s->key || ((prefix || n == 2) && !s->end)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int spec_set_exec(struct wspec *s, const char *const *args, size_t n)
{
    if (n > MAX_EXEC_ARGS)
        n = MAX_EXEC_ARGS;
    for (size_t i = 0; i < n; i++)
        if (!(s->exec[i] = metcd_strdup(args[i])))
            return -1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */

static const char *type_name(int t)
{
    return t == MVCCPB__EVENT__EVENT_TYPE__DELETE ? "DELETE" : "PUT";
}

/* -w json: Go's json.Marshal of clientv3.WatchResponse. */
static void print_json(struct ctl *c, const Etcdserverpb__WatchResponse *r)
{
    fputs("{\"Header\":", c->out);
    if (r->header)
        ctl_json_msg(c->out, &r->header->base);
    else
        fputs("{}", c->out);
    fputs(",\"Events\":[", c->out);
    for (size_t i = 0; i < r->n_events; i++) {
        if (i)
            fputc(',', c->out);
        ctl_json_msg(c->out, &r->events[i]->base);
    }
    fprintf(c->out, "],\"CompactRevision\":%" PRId64 ",\"Canceled\":%s,\"Created\":%s}\n",
            r->compact_revision, r->canceled ? "true" : "false", r->created ? "true" : "false");
}

/* A byte string on a terminal line: raw when printable, else Go-quoted. */
static size_t tty_bytes(struct ctl *c, const ProtobufCBinaryData *b)
{
    if (c->hex) {
        ctl_hex_bytes(c->out, b->data, b->len);
        return b->len * 4;
    }
    bool plain = b->len > 0;
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i] < 0x20 || b->data[i] == 0x7f || b->data[i] == ' ')
            plain = false;
    if (plain) {
        fwrite(b->data, 1, b->len, c->out);
        size_t w = 0;
        for (size_t i = 0; i < b->len; i++)
            w += (b->data[i] & 0xc0) != 0x80;
        return w;
    }
    long before = ftell(c->out);
    ctl_go_quote(c->out, b->data, b->len);
    long after = ftell(c->out);
    return before >= 0 && after >= before ? (size_t)(after - before) : b->len + 2;
}

/* "PUT     rev 12  14:03:07.123  foo   = bar" */
static void tty_event(struct wsession *s, const Mvccpb__Event *ev)
{
    struct ctl *c = s->c;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    time_t secs = tv.tv_sec;
    localtime_r(&secs, &tm);
    char when[16];
    strftime(when, sizeof(when), "%H:%M:%S", &tm);
    const Mvccpb__KeyValue *kv = ev->kv;
    static const Mvccpb__KeyValue none = MVCCPB__KEY_VALUE__INIT;
    if (!kv)
        kv = &none;
    fprintf(c->out, "%-6s  rev %-8" PRId64 "  %s.%03ld  ", type_name(ev->type), kv->mod_revision,
            when, (long)(tv.tv_usec / 1000));
    size_t w = tty_bytes(c, &kv->key);
    if (w > s->key_width)
        s->key_width = w < 48 ? w : 48;
    fprintf(c->out, "%*s", (int)(s->key_width > w ? s->key_width - w : 0), "");
    if (ev->type == MVCCPB__EVENT__EVENT_TYPE__DELETE) {
        if (ev->prev_kv) {
            fputs("  (was ", c->out);
            tty_bytes(c, &ev->prev_kv->value);
            fputc(')', c->out);
        }
    } else {
        fputs("  = ", c->out);
        tty_bytes(c, &kv->value);
        if (ev->prev_kv) {
            fputs("  (was ", c->out);
            tty_bytes(c, &ev->prev_kv->value);
            fputc(')', c->out);
        }
    }
    fputc('\n', c->out);
}

/* display.Watch(resp) for the events not printed before (evs). 0 or the
 * exit status (-w table). */
static int display(struct wsession *s, const Etcdserverpb__WatchResponse *r, Mvccpb__Event **evs,
                   size_t n)
{
    struct ctl *c = s->c;
    Etcdserverpb__WatchResponse v = *r; /* what clientv3 hands etcdctl */
    v.events = evs;
    v.n_events = n;
    v.watch_id = 0;
    v.cancel_reason = (char *)"";
    v.fragment = 0;
    switch (c->format) {
    case CTL_FORMAT_SIMPLE:
        for (size_t i = 0; i < n; i++) {
            if (s->tty) {
                tty_event(s, evs[i]);
                continue;
            }
            fprintf(c->out, "%s\n", type_name(evs[i]->type));
            if (evs[i]->prev_kv)
                ctl_simple_kv(c, evs[i]->prev_kv, false);
            if (evs[i]->kv)
                ctl_simple_kv(c, evs[i]->kv, false);
        }
        return 0;
    case CTL_FORMAT_JSON:
        print_json(c, &v);
        return 0;
    case CTL_FORMAT_FIELDS:
        ctl_fields_header(c, r->header ? &r->header->base : NULL);
        for (size_t i = 0; i < n; i++) {
            fprintf(c->out, "\"Type\" : %s\n", type_name(evs[i]->type));
            if (evs[i]->prev_kv)
                ctl_fields_kv(c, "Prev", evs[i]->prev_kv);
            if (evs[i]->kv)
                ctl_fields_kv(c, "", evs[i]->kv);
        }
        return 0;
    case CTL_FORMAT_PROTOBUF:
        return ctl_print_protobuf(c, &v.base);
    default:
        return ctl_fail(c, CTL_EXIT_BAD_FEATURE, "table not supported as output format");
    }
}

/* ------------------------------------------------------------------------ */
/* -- command args                                                          */

/* Go's exec.LookPath: the path of an executable file, or the error text. */
static char *look_path(const char *name, char *err, size_t errlen)
{
    struct stat st;
    if (strchr(name, '/')) {
        if (stat(name, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111))
            return metcd_strdup(name);
        int e = stat(name, &st) == 0 ? EACCES : errno;
        char msg[128];
        snprintf(msg, sizeof(msg), "%s", strerror(e));
        if (msg[0] >= 'A' && msg[0] <= 'Z')
            msg[0] = (char)(msg[0] - 'A' + 'a');
        snprintf(err, errlen, "fork/exec %s: %s", name, msg);
        return NULL;
    }
    const char *path = getenv("PATH");
    for (const char *p = path ? path : ""; p;) {
        const char *colon = strchr(p, ':');
        size_t dl = colon ? (size_t)(colon - p) : strlen(p);
        size_t nl = strlen(name);
        char *full = metcd_malloc(dl + nl + 3);
        if (!full)
            break;
        if (dl == 0)
            snprintf(full, dl + nl + 3, "./%s", name);
        else
            snprintf(full, dl + nl + 3, "%.*s/%s", (int)dl, p, name);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111))
            return full;
        metcd_free(full);
        p = colon ? colon + 1 : NULL;
    }
    snprintf(err, errlen, "exec: \"%s\": executable file not found in $PATH", name);
    return NULL;
}

static char *quoted(const void *p, size_t n, const char *prefix)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return NULL;
    fputs(prefix, m);
    ctl_go_quote(m, p, n);
    if (fclose(m) != 0) {
        free(buf); /* open_memstream's buffer comes from libc */
        return NULL;
    }
    return buf;
}

static bool is_ours(const char *e)
{
    static const char *const names[] = {
        "ETCD_WATCH_REVISION=", "ETCD_WATCH_EVENT_TYPE=", "ETCD_WATCH_KEY=", "ETCD_WATCH_VALUE="};
    for (size_t i = 0; i < 4; i++)
        if (!strncmp(e, names[i], strlen(names[i])))
            return true;
    return false;
}

/* "command [\"a\" \"b\"] error (exit status 1)" as etcdctl words it. */
static void exec_fail(struct wsession *s, char *const *argv, const char *why)
{
    fputs("command [", s->c->err);
    for (size_t i = 0; argv[i]; i++) {
        if (i)
            fputc(' ', s->c->err);
        ctl_go_quote(s->c->err, argv[i], strlen(argv[i]));
    }
    fprintf(s->c->err, "] error (%s)\n", why);
}

/* Runs the watch's command for one event with etcdctl's environment
 * (ETCD_WATCH_REVISION is the response header's revision; the others Go's
 * %q of the type, key and value) and waits for it. 0, or 1 after printing
 * etcdctl's message (etcdctl exits 1). */
static int run_exec(struct wsession *s, const struct watcher *w,
                    const Etcdserverpb__WatchResponse *r, const Mvccpb__Event *ev)
{
    char *const *argv = w->spec.exec;
    char why[512];
    char *path = look_path(argv[0], why, sizeof(why));
    if (!path) {
        exec_fail(s, argv, why);
        return 1;
    }
    size_t n_env = 0;
    while (environ[n_env])
        n_env++;
    char **env = metcd_calloc(n_env + 5, sizeof(char *));
    char rev[64];
    snprintf(rev, sizeof(rev), "ETCD_WATCH_REVISION=%" PRId64, r->header ? r->header->revision : 0);
    const char *tn = type_name(ev->type);
    static const ProtobufCBinaryData empty = {0, NULL};
    const ProtobufCBinaryData *k = ev->kv ? &ev->kv->key : &empty;
    const ProtobufCBinaryData *v = ev->kv ? &ev->kv->value : &empty;
    char *et = quoted(tn, strlen(tn), "ETCD_WATCH_EVENT_TYPE=");
    char *ek = quoted(k->data, k->len, "ETCD_WATCH_KEY=");
    char *ev_ = quoted(v->data, v->len, "ETCD_WATCH_VALUE=");
    int rc = 1;
    if (!env || !et || !ek || !ev_) {
        exec_fail(s, argv, "out of memory");
        goto out;
    }
    size_t m = 0;
    for (size_t i = 0; i < n_env; i++)
        if (!is_ours(environ[i]))
            env[m++] = environ[i];
    env[m++] = rev;
    env[m++] = et;
    env[m++] = ek;
    env[m++] = ev_;
    env[m] = NULL;
    fflush(s->c->out);
    fflush(s->c->err);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, sizeof(why), "fork/exec %s: %s", path, strerror(errno));
        exec_fail(s, argv, why);
        goto out;
    }
    if (pid == 0) {
        int ofd = fileno(s->c->out), efd = fileno(s->c->err);
        if (ofd >= 0 && ofd != 1)
            dup2(ofd, 1);
        if (efd >= 0 && efd != 2)
            dup2(efd, 2);
        execve(path, argv, env);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        rc = 0;
    } else {
        if (WIFEXITED(st))
            snprintf(why, sizeof(why), "exit status %d", WEXITSTATUS(st));
        else
            snprintf(why, sizeof(why), "signal: %s", strsignal(WTERMSIG(st)));
        exec_fail(s, argv, why);
    }
out:
    metcd_free(path);
    metcd_free(env);
    free(et);
    free(ek);
    free(ev_);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The stream                                                               */

static void finish(struct wsession *s, int code)
{
    if (s->stop)
        return;
    s->exit = code;
    s->stop = true;
    event_base_loopbreak(s->c->base);
}

static int send_create(struct wsession *s, struct watcher *w)
{
    Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    cr.key.data = w->spec.key;
    cr.key.len = w->spec.key_len;
    if (w->spec.end) {
        cr.range_end.data = w->spec.end;
        cr.range_end.len = w->spec.end_len;
    }
    cr.start_revision = w->next_rev ? w->next_rev : w->spec.rev;
    cr.prev_kv = w->spec.prev_kv;
    cr.progress_notify = w->spec.progress_notify;
    Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
    req.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    req.create_request = &cr;
    int rc = rpc_ccall_send(s->call, &req.base);
    if (rc != 0)
        return rc;
    s->fifo[s->fifo_n++] = w;
    return 0;
}

static void on_watch_message(struct rpc_ccall *call, const ProtobufCMessage *msg, void *data);
static void on_watch_close(struct rpc_ccall *call, enum rpc_code code, const char *msg, void *data);
static const struct rpc_ccall_ops watch_ops = {
    .on_message = on_watch_message,
    .on_close = on_watch_close,
};

static void schedule_retry(struct wsession *s)
{
    struct timeval tv = {s->backoff_ms / 1000, (s->backoff_ms % 1000) * 1000};
    evtimer_add(s->retry_ev, &tv);
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : 50;
    if (s->backoff_ms > BACKOFF_MAX_MS)
        s->backoff_ms = BACKOFF_MAX_MS;
}

/* Opens the stream and creates every live watcher on it. */
static void start_stream(struct wsession *s)
{
    s->fifo_n = 0;
    bool any = false;
    for (size_t i = 0; i < s->n_w; i++)
        any |= !s->w[i]->done;
    if (!any)
        return;
    int rc = rpc_ccall_start(s->c->client, "/etcdserverpb.Watch/Watch",
                             &etcdserverpb__watch_response__descriptor, s->md, s->n_md, 0,
                             &watch_ops, s, &s->call);
    if (rc != 0) {
        s->call = NULL;
        schedule_retry(s);
        return;
    }
    for (size_t i = 0; i < s->n_w; i++) {
        s->w[i]->id = -1;
        if (!s->w[i]->done && send_create(s, s->w[i]) != 0) {
            s->recreate = true;
            rpc_ccall_cancel(s->call); /* on_watch_close schedules the retry */
            return;
        }
    }
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wsession *s = arg;
    if (!s->stop && !s->call)
        start_stream(s);
}

/* A watcher ends (canceled by the member): etcdctl's "watch is canceled
 * by the server", or in interactive mode just this watcher. */
static void watcher_end(struct wsession *s, struct watcher *w, const char *fatal)
{
    w->done = true;
    if (s->interactive)
        return;
    if (fatal)
        ctl_fail(s->c, CTL_EXIT_INTERRUPTED, "%s", fatal);
    else
        ctl_fail(s->c, CTL_EXIT_INTERRUPTED, "watch is canceled by the server");
    finish(s, CTL_EXIT_INTERRUPTED);
}

static struct watcher *by_id(struct wsession *s, int64_t id)
{
    for (size_t i = 0; i < s->n_w; i++)
        if (!s->w[i]->done && s->w[i]->id == id)
            return s->w[i];
    return NULL;
}

/* One response for watcher w (progress notifications reach each). */
static void deliver(struct wsession *s, struct watcher *w, const Etcdserverpb__WatchResponse *r)
{
    struct ctl *c = s->c;
    int64_t hrev = r->header ? r->header->revision : 0;
    if (r->canceled) {
        int rc = display(s, r, r->events, 0);
        if (rc != 0) {
            finish(s, rc);
            return;
        }
        fflush(c->out);
        if (r->compact_revision) {
            char text[256];
            snprintf(text, sizeof(text),
                     "watch start revision %" PRId64 " has been compacted; the oldest available "
                     "revision is %" PRId64 " (use --rev %" PRId64 " or later)",
                     w->next_rev ? w->next_rev : w->spec.rev, r->compact_revision,
                     r->compact_revision);
            if (s->interactive)
                fprintf(c->err, "%s\n", text);
            watcher_end(s, w, text);
            return;
        }
        fprintf(c->err, "watch was canceled (%s)\n",
                r->cancel_reason && r->cancel_reason[0] ? r->cancel_reason : "<nil>");
        watcher_end(s, w, NULL);
        return;
    }
    /* the events not printed yet: a resumed watch never repeats one */
    Mvccpb__Event **keep = metcd_malloc((r->n_events ? r->n_events : 1) * sizeof(*keep));
    if (!keep) {
        finish(s, ctl_fail(c, CTL_EXIT_ERROR, "out of memory"));
        return;
    }
    size_t n = 0;
    int64_t last = 0;
    for (size_t i = 0; i < r->n_events; i++) {
        const Mvccpb__KeyValue *kv = r->events[i]->kv;
        int64_t rev = kv ? kv->mod_revision : 0;
        if (w->next_rev && rev < w->next_rev)
            continue;
        keep[n++] = r->events[i];
        if (rev > last)
            last = rev;
    }
    if (r->n_events && !n)
        goto out;
    bool progress = r->n_events == 0 && !r->created && r->compact_revision == 0 && hrev != 0;
    if (progress) {
        fprintf(c->out, "progress notify: %" PRId64 "\n", hrev);
        if (hrev + 1 > w->next_rev)
            w->next_rev = hrev + 1;
    }
    if (last)
        w->next_rev = last + 1;
    int rc = display(s, r, keep, n);
    fflush(c->out);
    if (rc != 0) {
        finish(s, rc);
        goto out;
    }
    if (w->spec.exec[0])
        for (size_t i = 0; i < n; i++)
            if (run_exec(s, w, r, keep[i]) != 0) {
                finish(s, CTL_EXIT_ERROR);
                break;
            }
out:
    metcd_free(keep);
}

static void on_watch_message(struct rpc_ccall *call, const ProtobufCMessage *msg, void *data)
{
    (void)call;
    struct wsession *s = data;
    if (s->stop)
        return;
    const Etcdserverpb__WatchResponse *r = (const Etcdserverpb__WatchResponse *)msg;
    if (r->created) {
        if (s->fifo_n == 0)
            return;
        struct watcher *w = s->fifo[0];
        memmove(s->fifo, s->fifo + 1, --s->fifo_n * sizeof(s->fifo[0]));
        w->id = r->watch_id;
        s->backoff_ms = 0;
        /* a watch from "now" starts after the creation's revision */
        if (!w->next_rev && !w->spec.rev && r->header)
            w->next_rev = r->header->revision + 1;
        if (r->canceled)
            deliver(s, w, r);
        return;
    }
    if (r->watch_id == -1) {
        /* a progress answer to every watcher on the stream */
        for (size_t i = 0; i < s->n_w && !s->stop; i++)
            if (!s->w[i]->done && s->w[i]->id >= 0)
                deliver(s, s->w[i], r);
        return;
    }
    struct watcher *w = by_id(s, r->watch_id);
    if (w)
        deliver(s, w, r);
}

static void on_watch_close(struct rpc_ccall *call, enum rpc_code code, const char *msg, void *data)
{
    (void)call;
    struct wsession *s = data;
    s->call = NULL;
    s->fifo_n = 0;
    if (s->stop)
        return;
    /* clientv3 resumes on Unavailable and Internal; any other status ends
     * the watch */
    if (s->recreate || code == RPC_CODE_OK || code == RPC_CODE_UNAVAILABLE ||
        code == RPC_CODE_INTERNAL) {
        s->recreate = false;
        schedule_retry(s);
        return;
    }
    for (size_t i = 0; i < s->n_w && !s->stop; i++) {
        if (s->w[i]->done)
            continue;
        fprintf(s->c->err, "watch was canceled (%s)\n", msg && msg[0] ? msg : rpc_code_name(code));
        watcher_end(s, s->w[i], NULL);
    }
}

/* ------------------------------------------------------------------------ */
/* Interactive mode                                                         */

/* util.go's argify: words, "double quoted" (Go unquoting) or 'single
 * quoted'. Writes into buf (the line, modified) and argv. n or -1 (a
 * malformed double-quoted word). */
static int argify(char *line, char **argv, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (*p && n < max) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\v' || *p == '\f')
            p++;
        if (!*p)
            break;
        if (*p == '"' || *p == '\'') {
            char q = *p++;
            char *out = p, *start = p;
            while (*p && *p != q) {
                if (q == '"' && *p == '\\' && p[1]) {
                    p++;
                    switch (*p) {
                    case 'n':
                        *out++ = '\n';
                        break;
                    case 't':
                        *out++ = '\t';
                        break;
                    case 'r':
                        *out++ = '\r';
                        break;
                    case '\\':
                        *out++ = '\\';
                        break;
                    case '"':
                        *out++ = '"';
                        break;
                    default:
                        return -1;
                    }
                    p++;
                    continue;
                }
                *out++ = *p++;
            }
            if (!*p)
                return -1;
            p++;
            *out = 0;
            argv[n++] = start;
            if (*p && *p != ' ' && *p != '\t')
                return -1;
            if (*p)
                *p++ = 0;
            continue;
        }
        argv[n++] = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' && *p != '\v' &&
               *p != '\f')
            p++;
        if (*p)
            *p++ = 0;
    }
    return (int)n;
}

/* pflag over the line's words (after "watch"): the watch flags, "--".
 * 0, or -1 with pflag's error text. */
struct line_args {
    const char *pos[CTL_MAX_ARGS];
    size_t n_pos, dash_at;
    bool dashed, prefix, prev_kv, progress_notify;
    int64_t rev;
};

static int parse_bool_val(const char *v, bool *out, const char *flag, char *err, size_t errlen)
{
    if (ctl_go_parse_bool(v, out) != 0) {
        snprintf(err, errlen,
                 "invalid argument \"%s\" for \"%s\" flag: strconv.ParseBool: parsing \"%s\": "
                 "invalid syntax",
                 v, flag, v);
        return -1;
    }
    return 0;
}

static int parse_line_flags(char **argv, size_t argc, struct line_args *la, char *err,
                            size_t errlen)
{
    memset(la, 0, sizeof(*la));
    for (size_t i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (la->dashed || s[0] != '-' || !s[1]) {
            if (la->n_pos < CTL_MAX_ARGS)
                la->pos[la->n_pos++] = s;
            continue;
        }
        if (!strcmp(s, "--")) {
            la->dashed = true;
            la->dash_at = la->n_pos;
            continue;
        }
        if (s[1] == '-') {
            const char *name = s + 2, *eq = strchr(name, '=');
            size_t nl = eq ? (size_t)(eq - name) : strlen(name);
            bool *b = NULL;
            const char *full = NULL;
            if (nl == 6 && !strncmp(name, "prefix", 6))
                b = &la->prefix, full = "--prefix";
            else if (nl == 7 && !strncmp(name, "prev-kv", 7))
                b = &la->prev_kv, full = "--prev-kv";
            else if (nl == 15 && !strncmp(name, "progress-notify", 15))
                b = &la->progress_notify, full = "--progress-notify";
            else if (nl == 11 && !strncmp(name, "interactive", 11)) {
                bool ignored;
                if (eq && parse_bool_val(eq + 1, &ignored, "-i, --interactive", err, errlen))
                    return -1;
                continue;
            } else if (nl == 3 && !strncmp(name, "rev", 3)) {
                const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
                if (!v) {
                    snprintf(err, errlen, "flag needs an argument: --rev");
                    return -1;
                }
                char why[200];
                if (ctl_go_parse_int(v, &la->rev, why, sizeof(why)) != 0) {
                    snprintf(err, errlen, "invalid argument \"%s\" for \"--rev\" flag: %s", v, why);
                    return -1;
                }
                continue;
            } else {
                snprintf(err, errlen, "unknown flag: --%.*s", (int)nl, name);
                return -1;
            }
            *b = true;
            if (eq && parse_bool_val(eq + 1, b, full, err, errlen))
                return -1;
            continue;
        }
        for (const char *p = s + 1; *p; p++) {
            if (*p != 'i') {
                snprintf(err, errlen, "unknown shorthand flag: '%c' in %s", *p, s);
                return -1;
            }
            if (p[1] == '=') {
                bool ignored;
                if (parse_bool_val(p + 2, &ignored, "-i, --interactive", err, errlen))
                    return -1;
                break;
            }
        }
    }
    if (!la->dashed)
        la->dash_at = la->n_pos;
    return 0;
}

static void free_watcher(struct watcher *w)
{
    if (!w)
        return;
    spec_clear(&w->spec);
    metcd_free(w);
}

/* Adds a watcher and creates it on the stream (opening the stream when
 * needed). Takes the spec. */
static int add_watcher(struct wsession *s, struct wspec *spec)
{
    if (s->n_w == MAX_WATCHERS) {
        spec_clear(spec);
        return -1;
    }
    struct watcher *w = metcd_calloc(1, sizeof(*w));
    if (!w) {
        spec_clear(spec);
        return -1;
    }
    w->spec = *spec;
    memset(spec, 0, sizeof(*spec));
    w->id = -1;
    s->w[s->n_w++] = w;
    if (s->call) {
        if (send_create(s, w) != 0) {
            s->recreate = true;
            rpc_ccall_cancel(s->call); /* recreates everything */
        }
    } else if (!evtimer_pending(s->retry_ev, NULL)) {
        start_stream(s);
    }
    return 0;
}

/* One request line of watch -i. 0, or the exit status. */
static int interactive_line(struct wsession *s, char *line)
{
    struct ctl *c = s->c;
    char *copy = metcd_strdup(line);
    char *argv[CTL_MAX_ARGS + 1];
    if (!copy)
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    int n = argify(copy, argv, CTL_MAX_ARGS);
    int rc = 0;
    char err[512];
    struct line_args la;
    struct wspec spec = {0};
    if (n < 0) {
        rc = ctl_fail(c, CTL_EXIT_INVALID_INPUT, "invalid syntax");
        goto out;
    }
    if (n < 1) {
        fprintf(c->err, "Invalid command: %s (watch and progress supported)\n", line);
        goto out;
    }
    if (!strcmp(argv[0], "progress")) {
        if (s->call) {
            Etcdserverpb__WatchProgressRequest pr = ETCDSERVERPB__WATCH_PROGRESS_REQUEST__INIT;
            Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
            req.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST;
            req.progress_request = &pr;
            rpc_ccall_send(s->call, &req.base);
        }
        goto out;
    }
    if (strcmp(argv[0], "watch") != 0) {
        fprintf(c->err, "Invalid command %s (only support watch)\n", line);
        goto out;
    }
    if (n < 2 && !s->env_key[0]) {
        fprintf(c->err, "Invalid command %s (command type or key is not provided)\n", line);
        goto out;
    }
    if (parse_line_flags(argv + 1, (size_t)n - 1, &la, err, sizeof(err)) != 0) {
        rc = ctl_fail(c, CTL_EXIT_BAD_ARGS, "%s", err);
        goto out;
    }
    if (la.dashed && la.dash_at == la.n_pos) {
        rc = ctl_fail(c, CTL_EXIT_BAD_ARGS,
                      "bad number of arguments (found separator --, but no commands)");
        goto out;
    }
    if (!la.dashed && !s->env_key[0] && la.n_pos < 1) {
        rc = ctl_fail(c, CTL_EXIT_BAD_ARGS, "bad number of arguments");
        goto out;
    }
    if (!la.dashed && la.n_pos > 0 && s->env_key[0]) {
        rc = ctl_fail(c, CTL_EXIT_BAD_ARGS,
                      "bad number of arguments (found conflicting environment key)");
        goto out;
    }
    const char *wargs[CTL_MAX_ARGS + 2];
    size_t nw = 0;
    if (s->env_key[0]) {
        wargs[nw++] = s->env_key;
        if (s->env_range[0])
            wargs[nw++] = s->env_range;
    }
    for (size_t i = 0; i < la.dash_at; i++)
        wargs[nw++] = la.pos[i];
    if (spec_make(&spec, wargs, nw, la.prefix, err, sizeof(err)) != 0) {
        spec_clear(&spec);
        fprintf(c->err, "Invalid command %s (%s)\n", line, err);
        goto out;
    }
    spec.rev = la.rev;
    spec.prev_kv = la.prev_kv;
    spec.progress_notify = la.progress_notify;
    if (spec_set_exec(&spec, la.pos + la.dash_at, la.n_pos - la.dash_at) != 0 ||
        add_watcher(s, &spec) != 0) {
        spec_clear(&spec);
        fprintf(c->err, "Invalid command %s (too many watches)\n", line);
    }
out:
    metcd_free(copy);
    return rc;
}

static ssize_t read_in(struct wsession *s, char *buf, size_t n)
{
    if (s->in_fd >= 0) {
        ssize_t r;
        while ((r = read(s->in_fd, buf, n)) < 0 && errno == EINTR)
            ;
        return r;
    }
    size_t r = fread(buf, 1, n, s->c->in);
    return r == 0 && ferror(s->c->in) ? -1 : (ssize_t)r;
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wsession *s = arg;
    for (;;) {
        if (s->stop)
            return;
        ssize_t r = read_in(s, s->line + s->line_len, MAX_LINE - 1 - s->line_len);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            ctl_fail(s->c, CTL_EXIT_INVALID_INPUT, "Error reading watch request line: %s",
                     r == 0 ? "EOF" : strerror(errno));
            finish(s, CTL_EXIT_INVALID_INPUT);
            return;
        }
        s->line_len += (size_t)r;
        char *nl;
        while (!s->stop && (nl = memchr(s->line, '\n', s->line_len)) != NULL) {
            *nl = 0;
            int rc = interactive_line(s, s->line);
            size_t used = (size_t)(nl + 1 - s->line);
            memmove(s->line, nl + 1, s->line_len - used);
            s->line_len -= used;
            if (rc != 0)
                finish(s, rc);
        }
        if (s->line_len == MAX_LINE - 1) {
            ctl_fail(s->c, CTL_EXIT_INVALID_INPUT, "Error reading watch request line: too long");
            finish(s, CTL_EXIT_INVALID_INPUT);
            return;
        }
        /* a pipe or terminal: wait for the loop to say there is more */
        if (s->in_ev)
            return;
    }
}

/* ------------------------------------------------------------------------ */
/* The command                                                              */

static int session_init(struct wsession *s, struct ctl *c)
{
    memset(s, 0, sizeof(*s));
    s->c = c;
    s->in_fd = -1;
    s->tty = c->format == CTL_FORMAT_SIMPLE && fileno(c->out) >= 0 && isatty(fileno(c->out));
    size_t n;
    const struct rpc_md *md = ctl_md(c, &n);
    for (size_t i = 0; i < n && i < 1; i++)
        s->md[s->n_md++] = md[i];
    /* clientv3.WithRequireLeader */
    s->md[s->n_md].key = "hasleader";
    s->md[s->n_md++].value = "true";
    s->retry_ev = evtimer_new(c->base, on_retry, s);
    return s->retry_ev ? 0 : -1;
}

static void session_close(struct wsession *s)
{
    s->stop = true;
    if (s->call)
        rpc_ccall_cancel(s->call);
    s->call = NULL;
    if (s->retry_ev)
        event_free(s->retry_ev);
    if (s->in_ev)
        event_free(s->in_ev);
    for (size_t i = 0; i < s->n_w; i++)
        free_watcher(s->w[i]);
    metcd_free(s->line);
}

static int run_interactive(struct wsession *s)
{
    struct ctl *c = s->c;
    s->interactive = true;
    s->line = metcd_malloc(MAX_LINE);
    if (!s->line)
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    int fd = fileno(c->in);
    if (fd >= 0) {
        s->in_fd = fd;
        s->in_ev = event_new(c->base, fd, EV_READ | EV_PERSIST, on_stdin, s);
        if (s->in_ev && event_add(s->in_ev, NULL) != 0) {
            event_free(s->in_ev); /* a regular file: read it straight */
            s->in_ev = NULL;
        }
    }
    if (!s->in_ev)
        on_stdin(-1, 0, s);
    if (!s->stop)
        event_base_loop(c->base, 0);
    return s->exit;
}

static int run(struct ctl *c, const struct ctl_args *a)
{
    const char *env_key = getenv("ETCDCTL_WATCH_KEY");
    const char *env_range = getenv("ETCDCTL_WATCH_RANGE_END");
    env_key = env_key ? env_key : "";
    env_range = env_range ? env_range : "";
    if (!env_key[0] && env_range[0]) {
        fputs("Error: ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=", c->err);
        ctl_go_quote(c->err, env_range, strlen(env_range));
        fputc('\n', c->err);
        return CTL_EXIT_BAD_ARGS;
    }
    bool interactive = ctl_bool(a, "interactive");
    struct wspec spec = {0};
    if (!interactive) {
        if (a->dashed && a->dash_at == a->n_pos)
            return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                            "bad number of arguments (found separator --, but no commands)");
        if ((a->dashed && env_key[0] && a->dash_at > 0) ||
            (!a->dashed && a->n_pos > 0 && env_key[0]))
            return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                            "bad number of arguments (found conflicting environment key)");
        const char *wargs[CTL_MAX_ARGS + 2];
        size_t nw = 0;
        if (env_key[0]) {
            wargs[nw++] = env_key;
            if (env_range[0])
                wargs[nw++] = env_range;
        }
        for (size_t i = 0; i < a->dash_at; i++)
            wargs[nw++] = a->pos[i];
        char err[256];
        if (spec_make(&spec, wargs, nw, ctl_bool(a, "prefix"), err, sizeof(err)) != 0) {
            spec_clear(&spec);
            return ctl_fail(c, CTL_EXIT_BAD_ARGS, "%s", err);
        }
        spec.rev = ctl_int(a, "rev");
        spec.prev_kv = ctl_bool(a, "prev-kv");
        spec.progress_notify = ctl_bool(a, "progress-notify");
        if (spec_set_exec(&spec, a->pos + a->dash_at, a->n_pos - a->dash_at) != 0) {
            spec_clear(&spec);
            return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
        }
    }
    int rc = ctl_connect(c);
    if (rc != 0) {
        spec_clear(&spec);
        return rc;
    }
    struct wsession s;
    if (session_init(&s, c) != 0) {
        spec_clear(&spec);
        session_close(&s);
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    }
    s.env_key = env_key;
    s.env_range = env_range;
    if (interactive) {
        rc = run_interactive(&s);
    } else if (add_watcher(&s, &spec) != 0) {
        rc = ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    } else {
        event_base_loop(c->base, 0);
        rc = s.stop ? s.exit : ctl_fail(c, CTL_EXIT_INTERRUPTED, "watch is canceled by the server");
    }
    session_close(&s);
    return rc;
}

static const struct ctl_flag watch_flags[] = {
    {"interactive", 'i', CTL_FLAG_BOOL, "false", "Interactive mode"},
    {"prefix", 0, CTL_FLAG_BOOL, "false", "Watch on a prefix if prefix is set"},
    {"prev-kv", 0, CTL_FLAG_BOOL, "false",
     "get the previous key-value pair before the event happens"},
    {"progress-notify", 0, CTL_FLAG_BOOL, "false",
     "get periodic watch progress notification from server"},
    {"rev", 0, CTL_FLAG_INT, "0", "Revision to start watching"},
};

const struct ctl_cmd ctl_cmd_watch = {
    .name = "watch",
    .use = "watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]",
    .summary = "Watches events stream on keys or prefixes",
    .flags = watch_flags,
    .n_flags = sizeof(watch_flags) / sizeof(watch_flags[0]),
    .run = run,
};
