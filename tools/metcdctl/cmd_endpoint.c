/* tools/metcdctl/cmd_endpoint.c - etcdctl 3.4's `endpoint health|status|
 * hashkv` (each endpoint asked on its own connection; --cluster asks every
 * client URL of the member list instead of --endpoints), and the helpers
 * defrag and move-leader share (ctl.h: ctl_target_endpoints,
 * ctl_open_endpoint).
 *
 * Shapes as etcdctl's: -w json is a JSON array of {"endpoint","health",
 * "took","error"} / {"Endpoint","Status"} / {"Endpoint","HashKV"}; -w
 * protobuf is refused ("protobuf not supported as output format", after
 * the endpoints were asked); health's simple lines go to stderr. */
#include "tools/metcdctl/ctl.h"

#include "common/mem.h"
#include "server/etcdserverpb/rpc.pb-c.h"
#include "server/rpc/rpc.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* Endpoint lists and per-endpoint connections                              */

void ctl_endpoint_list_free(struct ctl_endpoint_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        metcd_free(l->eps[i]);
    l->n = 0;
}

static int list_add(struct ctl *c, struct ctl_endpoint_list *l, const char *ep)
{
    if (l->n == CTL_MAX_ENDPOINTS * 4)
        return 0;
    if (!(l->eps[l->n] = metcd_strdup(ep)))
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    l->n++;
    return 0;
}

int ctl_target_endpoints(struct ctl *c, bool cluster, struct ctl_endpoint_list *l)
{
    l->n = 0;
    int rc = 0;
    if (!cluster) {
        for (size_t i = 0; i < c->n_endpoints && rc == 0; i++)
            rc = list_add(c, l, c->endpoints[i]);
        return rc;
    }
    if ((rc = ctl_connect(c)) != 0)
        return rc;
    Etcdserverpb__MemberListRequest req = ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
    ProtobufCMessage *m = NULL;
    int code;
    char *msg;
    rc = ctl_unary_quiet(c, "/etcdserverpb.Cluster/MemberList", &req.base,
                         &etcdserverpb__member_list_response__descriptor, c->command_timeout_ms, &m,
                         &code, &msg);
    if (rc != 0 || code != RPC_CODE_OK) {
        const char *text =
            rc != 0 || code == RPC_CODE_DEADLINE_EXCEEDED ||
                    (code == RPC_CODE_UNAVAILABLE && rpc_client_endpoint(c->client) < 0)
                ? "context deadline exceeded"
            : msg && msg[0] ? msg
                            : rpc_code_name(code);
        rc = ctl_fail(c, CTL_EXIT_ERROR,
                      "failed to fetch endpoints from etcd cluster member list: %s", text);
        metcd_free(msg);
        if (m)
            protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
        return rc;
    }
    metcd_free(msg);
    Etcdserverpb__MemberListResponse *r = (Etcdserverpb__MemberListResponse *)m;
    for (size_t i = 0; i < r->n_members && rc == 0; i++)
        for (size_t k = 0; k < r->members[i]->n_clienturls && rc == 0; k++)
            rc = list_add(c, l, r->members[i]->clienturls[k]);
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    if (rc != 0)
        ctl_endpoint_list_free(l);
    return rc;
}

int ctl_open_endpoint(struct ctl *c, const char *ep, struct ctl *sub)
{
    *sub = *c;
    sub->endpoints[0] = ep;
    sub->n_endpoints = 1;
    sub->base = NULL;
    sub->client = NULL;
    sub->tls = NULL;
    sub->token = NULL;
    return ctl_connect(sub);
}

int ctl_endpoint_call(struct ctl *sub, const char *path, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                      char *err, size_t errlen)
{
    int code;
    char *msg;
    int rc = ctl_unary_quiet(sub, path, req, resp_desc, sub->command_timeout_ms, resp, &code, &msg);
    if (rc == 0 && code == RPC_CODE_OK) {
        metcd_free(msg);
        return 0;
    }
    bool unreached =
        rc != 0 || (code == RPC_CODE_UNAVAILABLE && rpc_client_endpoint(sub->client) < 0);
    const char *text;
    if (unreached || code == RPC_CODE_DEADLINE_EXCEEDED)
        text = "context deadline exceeded";
    else
        text = msg && msg[0] ? msg : rpc_code_name(code);
    snprintf(err, errlen, "%s", text);
    metcd_free(msg);
    if (*resp)
        protobuf_c_message_free_unpacked(*resp, &metcd_pb_allocator);
    *resp = NULL;
    if (code == RPC_CODE_PERMISSION_DENIED)
        return 1;
    return unreached ? -2 : -1;
}

/* ------------------------------------------------------------------------ */
/* Output helpers                                                           */

/* Go's time.Duration.String() for a duration under an hour. */
static void go_duration(int64_t ns, char *buf, size_t len)
{
    if (ns == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    const char *unit;
    int64_t div;
    if (ns < 1000) {
        snprintf(buf, len, "%" PRId64 "ns", ns);
        return;
    } else if (ns < 1000000) {
        unit = "µs", div = 1000;
    } else if (ns < 1000000000) {
        unit = "ms", div = 1000000;
    } else {
        int64_t s = ns / 1000000000, frac = ns % 1000000000;
        char f[16] = "";
        if (frac) {
            snprintf(f, sizeof(f), ".%09" PRId64, frac);
            size_t n = strlen(f);
            while (f[n - 1] == '0')
                f[--n] = 0;
        }
        if (s >= 60)
            snprintf(buf, len, "%" PRId64 "m%" PRId64 "%ss", s / 60, s % 60, f);
        else
            snprintf(buf, len, "%" PRId64 "%ss", s, f);
        return;
    }
    int64_t whole = ns / div, frac = ns % div;
    char f[16] = "";
    if (frac) {
        snprintf(f, sizeof(f), ".%0*" PRId64, div == 1000 ? 3 : 6, frac);
        size_t n = strlen(f);
        while (f[n - 1] == '0')
            f[--n] = 0;
    }
    snprintf(buf, len, "%" PRId64 "%s%s", whole, f, unit);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* go-humanize's Bytes: SI units, one decimal under 10. */
void ctl_humanize_bytes(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
    if (n < 10) {
        snprintf(buf, len, "%" PRIu64 " B", n);
        return;
    }
    size_t e = 0;
    double v = (double)n;
    while (v >= 1000 && e < 6) {
        v /= 1000;
        e++;
    }
    /* humanize rounds to one decimal first: floor(v*10+0.5)/10 */
    double r = (double)(int64_t)(v * 10 + 0.5) / 10;
    if (r < 10)
        snprintf(buf, len, "%.1f %s", r, units[e]);
    else
        snprintf(buf, len, "%.0f %s", r, units[e]);
}

static int unsupported(struct ctl *c)
{
    static const char *const names[] = {"simple", "json", "fields", "table", "protobuf"};
    return ctl_fail(c, CTL_EXIT_BAD_FEATURE, "%s not supported as output format", names[c->format]);
}

/* ------------------------------------------------------------------------ */
/* endpoint health                                                          */

struct health {
    char ep[256];
    bool ok;
    char took[32];
    char error[256];
};

static int cmd_health(struct ctl *c, const struct ctl_args *a)
{
    struct ctl_endpoint_list l;
    int rc = ctl_target_endpoints(c, ctl_bool(a, "cluster"), &l);
    if (rc != 0)
        return rc;
    struct health *hs = metcd_calloc(l.n ? l.n : 1, sizeof(*hs));
    if (!hs) {
        ctl_endpoint_list_free(&l);
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    }
    bool errs = false;
    for (size_t i = 0; i < l.n; i++) {
        struct health *h = &hs[i];
        snprintf(h->ep, sizeof(h->ep), "%s", l.eps[i]);
        struct ctl sub;
        FILE *quiet = fopen("/dev/null", "w");
        struct ctl tmp = *c;
        if (quiet)
            tmp.err = quiet;
        int64_t st = now_ns();
        if (ctl_open_endpoint(&tmp, l.eps[i], &sub) != 0) {
            snprintf(h->error, sizeof(h->error), "context deadline exceeded");
        } else {
            Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
            req.key.data = (uint8_t *)"health";
            req.key.len = 6;
            ProtobufCMessage *m = NULL;
            int r = ctl_endpoint_call(&sub, "/etcdserverpb.KV/Range", &req.base,
                                      &etcdserverpb__range_response__descriptor, &m, h->error,
                                      sizeof(h->error));
            go_duration(now_ns() - st, h->took, sizeof(h->took));
            if (m)
                protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
            h->ok = r >= 0;
            if (r > 0)
                h->error[0] = 0;
        }
        ctl_close(&sub);
        if (quiet)
            fclose(quiet);
        if (h->error[0])
            errs = true;
    }
    switch (c->format) {
    case CTL_FORMAT_JSON:
        fputc('[', c->out);
        for (size_t i = 0; i < l.n; i++) {
            fprintf(c->out, "%s{\"endpoint\":", i ? "," : "");
            ctl_json_str(c->out, hs[i].ep);
            fprintf(c->out, ",\"health\":%s,\"took\":", hs[i].ok ? "true" : "false");
            ctl_json_str(c->out, hs[i].took);
            if (hs[i].error[0]) {
                fputs(",\"error\":", c->out);
                ctl_json_str(c->out, hs[i].error);
            }
            fputc('}', c->out);
        }
        fputs("]\n", c->out);
        break;
    case CTL_FORMAT_FIELDS:
        for (size_t i = 0; i < l.n; i++) {
            fputs("\"Endpoint\" : ", c->out);
            ctl_go_quote(c->out, hs[i].ep, strlen(hs[i].ep));
            fprintf(c->out, "\n\"Health\" : %s\n\"Took\" : %s\n\"Error\" : %s\n\n",
                    hs[i].ok ? "true" : "false", hs[i].took, hs[i].error);
        }
        break;
    case CTL_FORMAT_TABLE: {
        static const char *const hdr[] = {"endpoint", "health", "took", "error"};
        struct ctl_table *t = ctl_table_new(4, hdr);
        if (!t) {
            rc = ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
            break;
        }
        for (size_t i = 0; i < l.n && rc == 0; i++) {
            const char *cells[] = {hs[i].ep, hs[i].ok ? "true" : "false", hs[i].took, hs[i].error};
            if (ctl_table_row(t, cells) != 0)
                rc = ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
        }
        if (rc == 0)
            ctl_table_render(t, c->out);
        ctl_table_free(t);
        break;
    }
    case CTL_FORMAT_PROTOBUF:
        rc = unsupported(c);
        break;
    default:
        for (size_t i = 0; i < l.n; i++)
            if (!hs[i].error[0])
                fprintf(c->err, "%s is healthy: successfully committed proposal: took = %s\n",
                        hs[i].ep, hs[i].took);
            else
                fprintf(c->err, "%s is unhealthy: failed to commit proposal: %s\n", hs[i].ep,
                        hs[i].error);
    }
    metcd_free(hs);
    ctl_endpoint_list_free(&l);
    if (rc == 0 && errs)
        rc = ctl_fail(c, CTL_EXIT_ERROR, "unhealthy cluster");
    return rc;
}

/* ------------------------------------------------------------------------ */
/* endpoint status and hashkv                                               */

/* Asks every target endpoint `path`; answers[i] NULL where it failed
 * (the failure printed as etcdctl prints it). */
static int ask_all(struct ctl *c, const struct ctl_endpoint_list *l, const char *path,
                   const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
                   const char *what, ProtobufCMessage **answers, char *last_err, size_t errlen)
{
    int failed = 0;
    for (size_t i = 0; i < l->n; i++) {
        answers[i] = NULL;
        struct ctl sub;
        char err[256] = "context deadline exceeded";
        FILE *quiet = fopen("/dev/null", "w");
        struct ctl tmp = *c;
        if (quiet)
            tmp.err = quiet;
        if (ctl_open_endpoint(&tmp, l->eps[i], &sub) == 0 &&
            ctl_endpoint_call(&sub, path, req, desc, &answers[i], err, sizeof(err)) != 0)
            answers[i] = NULL;
        ctl_close(&sub);
        if (quiet)
            fclose(quiet);
        if (!answers[i]) {
            fprintf(c->err, "Failed to get the %s of endpoint %s (%s)\n", what, l->eps[i], err);
            snprintf(last_err, errlen, "%s", err);
            failed++;
        }
    }
    return failed;
}

static void status_row(const char *ep, const Etcdserverpb__StatusResponse *s, char (*buf)[64],
                       const char **cells, char *errors, size_t errlen)
{
    uint64_t mid = s->header ? s->header->member_id : 0;
    cells[0] = ep;
    snprintf(buf[0], 64, "%" PRIx64, mid);
    cells[1] = buf[0];
    cells[2] = s->version;
    ctl_humanize_bytes((uint64_t)s->dbsize, buf[1], 64);
    cells[3] = buf[1];
    cells[4] = s->leader == mid ? "true" : "false";
    cells[5] = s->islearner ? "true" : "false";
    snprintf(buf[2], 64, "%" PRIu64, s->raftterm);
    cells[6] = buf[2];
    snprintf(buf[3], 64, "%" PRIu64, s->raftindex);
    cells[7] = buf[3];
    snprintf(buf[4], 64, "%" PRIu64, s->raftappliedindex);
    cells[8] = buf[4];
    size_t at = 0;
    errors[0] = 0;
    for (size_t k = 0; k < s->n_errors && at < errlen; k++)
        at += (size_t)snprintf(errors + at, errlen - at, "%s%s", k ? ", " : "", s->errors[k]);
    cells[9] = errors;
}

static int cmd_status(struct ctl *c, const struct ctl_args *a)
{
    struct ctl_endpoint_list l;
    int rc = ctl_target_endpoints(c, ctl_bool(a, "cluster"), &l);
    if (rc != 0)
        return rc;
    ProtobufCMessage *ans[CTL_MAX_ENDPOINTS * 4];
    char err[256];
    Etcdserverpb__StatusRequest req = ETCDSERVERPB__STATUS_REQUEST__INIT;
    int failed =
        ask_all(c, &l, "/etcdserverpb.Maintenance/Status", &req.base,
                &etcdserverpb__status_response__descriptor, "status", ans, err, sizeof(err));
    static const char *const hdr[] = {"endpoint",           "ID",         "version",   "db size",
                                      "is leader",          "is learner", "raft term", "raft index",
                                      "raft applied index", "errors"};
    struct ctl_table *t = NULL;
    if (c->format == CTL_FORMAT_TABLE && !(t = ctl_table_new(10, hdr)))
        rc = ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    if (c->format == CTL_FORMAT_JSON)
        fputc('[', c->out);
    bool first = true;
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        const Etcdserverpb__StatusResponse *s = (const Etcdserverpb__StatusResponse *)ans[i];
        if (!s)
            continue;
        char buf[5][64], errors[1024];
        const char *cells[10];
        switch (c->format) {
        case CTL_FORMAT_JSON:
            fprintf(c->out, "%s{\"Endpoint\":", first ? "" : ",");
            ctl_json_str(c->out, l.eps[i]);
            fputs(",\"Status\":", c->out);
            ctl_json_msg(c->out, &s->base);
            fputc('}', c->out);
            break;
        case CTL_FORMAT_FIELDS:
            ctl_fields_header(c, s->header ? &s->header->base : NULL);
            fputs("\"Version\" : ", c->out);
            ctl_go_quote(c->out, s->version, strlen(s->version));
            fprintf(c->out,
                    "\n\"DBSize\" : %" PRId64 "\n\"Leader\" : %" PRIu64 "\n\"IsLearner\" : %s\n"
                    "\"RaftIndex\" : %" PRIu64 "\n\"RaftTerm\" : %" PRIu64
                    "\n\"RaftAppliedIndex\" : %" PRIu64 "\n\"Errors\" : [",
                    s->dbsize, s->leader, s->islearner ? "true" : "false", s->raftindex,
                    s->raftterm, s->raftappliedindex);
            for (size_t k = 0; k < s->n_errors; k++)
                fprintf(c->out, "%s%s", k ? " " : "", s->errors[k]);
            fputs("]\n\"Endpoint\" : ", c->out);
            ctl_go_quote(c->out, l.eps[i], strlen(l.eps[i]));
            fputs("\n\n", c->out);
            break;
        case CTL_FORMAT_TABLE:
            status_row(l.eps[i], s, buf, cells, errors, sizeof(errors));
            if (ctl_table_row(t, cells) != 0)
                rc = ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
            break;
        case CTL_FORMAT_SIMPLE:
            status_row(l.eps[i], s, buf, cells, errors, sizeof(errors));
            for (size_t k = 0; k < 10; k++)
                fprintf(c->out, "%s%s", k ? ", " : "", cells[k]);
            fputc('\n', c->out);
            break;
        default:
            break;
        }
        first = false;
    }
    if (c->format == CTL_FORMAT_JSON)
        fputs("]\n", c->out);
    if (t && rc == 0)
        ctl_table_render(t, c->out);
    ctl_table_free(t);
    if (rc == 0 && c->format == CTL_FORMAT_PROTOBUF)
        rc = unsupported(c);
    for (size_t i = 0; i < l.n; i++)
        if (ans[i])
            protobuf_c_message_free_unpacked(ans[i], &metcd_pb_allocator);
    ctl_endpoint_list_free(&l);
    if (rc == 0 && failed)
        rc = CTL_EXIT_ERROR;
    return rc;
}

static int cmd_hashkv(struct ctl *c, const struct ctl_args *a)
{
    struct ctl_endpoint_list l;
    int rc = ctl_target_endpoints(c, ctl_bool(a, "cluster"), &l);
    if (rc != 0)
        return rc;
    ProtobufCMessage *ans[CTL_MAX_ENDPOINTS * 4];
    char err[256];
    Etcdserverpb__HashKVRequest req = ETCDSERVERPB__HASH_KVREQUEST__INIT;
    req.revision = ctl_int(a, "rev");
    int failed = ask_all(c, &l, "/etcdserverpb.Maintenance/HashKV", &req.base,
                         &etcdserverpb__hash_kvresponse__descriptor, "hash", ans, err, sizeof(err));
    static const char *const hdr[] = {"endpoint", "hash"};
    struct ctl_table *t = NULL;
    if (c->format == CTL_FORMAT_TABLE && !(t = ctl_table_new(2, hdr)))
        rc = ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    if (c->format == CTL_FORMAT_JSON)
        fputc('[', c->out);
    bool first = true;
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        const Etcdserverpb__HashKVResponse *h = (const Etcdserverpb__HashKVResponse *)ans[i];
        if (!h)
            continue;
        char hash[16];
        snprintf(hash, sizeof(hash), "%" PRIu32, h->hash);
        switch (c->format) {
        case CTL_FORMAT_JSON:
            fprintf(c->out, "%s{\"Endpoint\":", first ? "" : ",");
            ctl_json_str(c->out, l.eps[i]);
            fputs(",\"HashKV\":", c->out);
            ctl_json_msg(c->out, &h->base);
            fputc('}', c->out);
            break;
        case CTL_FORMAT_FIELDS:
            ctl_fields_header(c, h->header ? &h->header->base : NULL);
            fputs("\"Endpoint\" : ", c->out);
            ctl_go_quote(c->out, l.eps[i], strlen(l.eps[i]));
            fprintf(c->out, "\n\"Hash\" : %s\n\n", hash);
            break;
        case CTL_FORMAT_TABLE: {
            const char *cells[] = {l.eps[i], hash};
            if (ctl_table_row(t, cells) != 0)
                rc = ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
            break;
        }
        case CTL_FORMAT_SIMPLE:
            fprintf(c->out, "%s, %s\n", l.eps[i], hash);
            break;
        default:
            break;
        }
        first = false;
    }
    if (c->format == CTL_FORMAT_JSON)
        fputs("]\n", c->out);
    if (t && rc == 0)
        ctl_table_render(t, c->out);
    ctl_table_free(t);
    if (rc == 0 && c->format == CTL_FORMAT_PROTOBUF)
        rc = unsupported(c);
    for (size_t i = 0; i < l.n; i++)
        if (ans[i])
            protobuf_c_message_free_unpacked(ans[i], &metcd_pb_allocator);
    ctl_endpoint_list_free(&l);
    if (rc == 0 && failed)
        rc = ctl_fail(c, CTL_EXIT_ERROR, "%s", err);
    return rc;
}

static const struct ctl_flag cluster_flag[] = {
    {"cluster", 0, CTL_FLAG_BOOL, "false", "use all endpoints from the cluster member list"},
};
static const struct ctl_flag hashkv_flags[] = {
    {"cluster", 0, CTL_FLAG_BOOL, "false", "use all endpoints from the cluster member list"},
    {"rev", 0, CTL_FLAG_INT, "0", "maximum revision to hash (default: all revisions)"},
};

static const struct ctl_cmd ep_hashkv = {
    .name = "hashkv",
    .use = "hashkv",
    .summary = "Prints the KV history hash for each endpoint in --endpoints",
    .flags = hashkv_flags,
    .n_flags = 2,
    .run = cmd_hashkv};
static const struct ctl_cmd ep_health = {
    .name = "health",
    .use = "health",
    .summary = "Checks the healthiness of endpoints specified in `--endpoints` flag",
    .flags = cluster_flag,
    .n_flags = 1,
    .run = cmd_health};
static const struct ctl_cmd ep_status = {
    .name = "status",
    .use = "status",
    .summary = "Prints out the status of endpoints specified in `--endpoints` flag",
    .description =
        "When --write-out is set to simple, this command prints out comma-separated status "
        "lists for each endpoint.\nThe items in the lists are endpoint, ID, version, db size, "
        "is leader, is learner, raft term, raft index, raft applied index, errors.\n",
    .flags = cluster_flag,
    .n_flags = 1,
    .run = cmd_status};

static const struct ctl_cmd *const ep_subs[] = {&ep_hashkv, &ep_health, &ep_status, NULL};

const struct ctl_cmd ctl_cmd_endpoint = {
    .name = "endpoint",
    .use = "endpoint <subcommand>",
    .summary = "Endpoint related commands",
    .subs = ep_subs,
};
