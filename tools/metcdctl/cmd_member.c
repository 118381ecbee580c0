/* tools/metcdctl/cmd_member.c - etcdctl 3.4's `member add|remove|update|
 * list|promote` (etcdserverpb.Cluster).
 *
 * Output as etcdctl prints it: -w simple one line per change ("Member <id>
 * added to cluster <id>", add then the ETCD_* lines a new member starts
 * with), list as comma-separated rows; -w json and -w protobuf the
 * response; -w fields and -w table only for list (etcdctl refuses the
 * others with "<format> not supported as output format" after the change
 * is made). */
#include "tools/metcdctl/ctl.h"

#include "common/mem.h"
#include "server/etcdserverpb/rpc.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The response of a change in a format other than simple. */
static int print_change(struct ctl *c, const ProtobufCMessage *m)
{
    switch (c->format) {
    case CTL_FORMAT_JSON:
        ctl_print_json(c, m);
        return 0;
    case CTL_FORMAT_PROTOBUF:
        return ctl_print_protobuf(c, m);
    case CTL_FORMAT_FIELDS:
        return ctl_fail(c, CTL_EXIT_BAD_FEATURE, "fields not supported as output format");
    default:
        return ctl_fail(c, CTL_EXIT_BAD_FEATURE, "table not supported as output format");
    }
}

/* strconv.ParseUint(s, 16, 64) with its error text inside etcdctl's. */
static int parse_member_id(struct ctl *c, const struct ctl_args *a, uint64_t *id)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "member ID is not provided");
    const char *s = a->pos[0];
    bool ok = s[0] != 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
            ok = false;
    errno = 0;
    char *end;
    unsigned long long v = ok ? strtoull(s, &end, 16) : 0;
    if (!ok || errno == ERANGE) {
        fputs("Error: bad member ID arg (strconv.ParseUint: parsing ", c->err);
        ctl_go_quote(c->err, s, strlen(s));
        fprintf(c->err, ": %s), expecting ID in Hex\n",
                ok ? "value out of range" : "invalid syntax");
        return CTL_EXIT_BAD_ARGS;
    }
    *id = v;
    return 0;
}

/* Splits --peer-urls at commas (strings.Split: empty parts kept) into
 * urls[], pointing into buf. */
static size_t split_urls(char *buf, char **urls, size_t max)
{
    size_t n = 0;
    for (char *p = buf; p && n < max;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = 0;
        urls[n++] = p;
        p = comma ? comma + 1 : NULL;
    }
    return n;
}

#define MAX_URLS 16

static uint64_t cluster_id(const Etcdserverpb__ResponseHeader *h)
{
    return h ? h->cluster_id : 0;
}

static int cmd_add(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos < 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "member name not provided");
    if (a->n_pos > 1) {
        fputs("Error: too many arguments", c->err);
        for (size_t i = 0; i < a->n_pos; i++)
            if (!strncasecmp(a->pos[i], "http", 4))
                fprintf(c->err, ", did you mean --peer-urls=%s", a->pos[i]);
        fputc('\n', c->err);
        return CTL_EXIT_BAD_ARGS;
    }
    const char *name = a->pos[0];
    const char *peer_urls = ctl_str(a, "peer-urls");
    if (!peer_urls[0])
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "member peer urls not provided");
    char *buf = metcd_strdup(peer_urls);
    if (!buf)
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    char *urls[MAX_URLS];
    Etcdserverpb__MemberAddRequest req = ETCDSERVERPB__MEMBER_ADD_REQUEST__INIT;
    req.n_peerurls = split_urls(buf, urls, MAX_URLS);
    req.peerurls = urls;
    req.islearner = ctl_bool(a, "learner");
    ProtobufCMessage *m;
    int rc = ctl_unary(c, "/etcdserverpb.Cluster/MemberAdd", &req.base,
                       &etcdserverpb__member_add_response__descriptor, &m);
    metcd_free(buf);
    if (rc != 0)
        return rc;
    Etcdserverpb__MemberAddResponse *r = (Etcdserverpb__MemberAddResponse *)m;
    uint64_t new_id = r->member ? r->member->id : 0;
    if (c->format != CTL_FORMAT_SIMPLE) {
        rc = print_change(c, m);
        protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
        return rc;
    }
    fprintf(c->out, "Member %16" PRIx64 " added to cluster %16" PRIx64 "\n", new_id,
            cluster_id(r->header));
    fputs("\nETCD_NAME=", c->out);
    ctl_go_quote(c->out, name, strlen(name));
    /* name=url for every peer URL of every member, the new one under the
     * name given here (it has none yet) */
    size_t len = 0;
    for (size_t i = 0; i < r->n_members; i++) {
        const Etcdserverpb__Member *mb = r->members[i];
        const char *nm = mb->id == new_id ? name : mb->name;
        for (size_t k = 0; k < mb->n_peerurls; k++)
            len += strlen(nm) + strlen(mb->peerurls[k]) + 2;
    }
    char *conf = metcd_malloc(len + 1);
    if (!conf) {
        protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    }
    size_t at = 0;
    conf[0] = 0;
    for (size_t i = 0; i < r->n_members; i++) {
        const Etcdserverpb__Member *mb = r->members[i];
        const char *nm = mb->id == new_id ? name : mb->name;
        for (size_t k = 0; k < mb->n_peerurls; k++)
            at += (size_t)snprintf(conf + at, len + 1 - at, "%s%s=%s", at ? "," : "", nm,
                                   mb->peerurls[k]);
    }
    fputs("\nETCD_INITIAL_CLUSTER=", c->out);
    ctl_go_quote(c->out, conf, at);
    fputs("\nETCD_INITIAL_ADVERTISE_PEER_URLS=", c->out);
    ctl_go_quote(c->out, peer_urls, strlen(peer_urls));
    fputs("\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n", c->out);
    metcd_free(conf);
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return 0;
}

/* remove, update and promote: one ID, one call, one line. */
static int change(struct ctl *c, uint64_t id, const char *path, const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *desc, const char *verb)
{
    ProtobufCMessage *m;
    int rc = ctl_unary(c, path, req, desc, &m);
    if (rc != 0)
        return rc;
    if (c->format == CTL_FORMAT_SIMPLE) {
        /* every Member*Response starts with its header (field 1) */
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(desc, "header");
        const Etcdserverpb__ResponseHeader *h =
            f ? *(Etcdserverpb__ResponseHeader *const *)((const char *)m + f->offset) : NULL;
        fprintf(c->out, "Member %16" PRIx64 " %s cluster %16" PRIx64 "\n", id, verb, cluster_id(h));
    } else {
        rc = print_change(c, m);
    }
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return rc;
}

static int cmd_remove(struct ctl *c, const struct ctl_args *a)
{
    Etcdserverpb__MemberRemoveRequest req = ETCDSERVERPB__MEMBER_REMOVE_REQUEST__INIT;
    int rc = parse_member_id(c, a, &req.id);
    if (rc != 0)
        return rc;
    return change(c, req.id, "/etcdserverpb.Cluster/MemberRemove", &req.base,
                  &etcdserverpb__member_remove_response__descriptor, "removed from");
}

static int cmd_promote(struct ctl *c, const struct ctl_args *a)
{
    Etcdserverpb__MemberPromoteRequest req = ETCDSERVERPB__MEMBER_PROMOTE_REQUEST__INIT;
    int rc = parse_member_id(c, a, &req.id);
    if (rc != 0)
        return rc;
    return change(c, req.id, "/etcdserverpb.Cluster/MemberPromote", &req.base,
                  &etcdserverpb__member_promote_response__descriptor, "promoted in");
}

static int cmd_update(struct ctl *c, const struct ctl_args *a)
{
    Etcdserverpb__MemberUpdateRequest req = ETCDSERVERPB__MEMBER_UPDATE_REQUEST__INIT;
    int rc = parse_member_id(c, a, &req.id);
    if (rc != 0)
        return rc;
    const char *peer_urls = ctl_str(a, "peer-urls");
    if (!peer_urls[0])
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "member peer urls not provided");
    char *buf = metcd_strdup(peer_urls);
    if (!buf)
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    char *urls[MAX_URLS];
    req.n_peerurls = split_urls(buf, urls, MAX_URLS);
    req.peerurls = urls;
    rc = change(c, req.id, "/etcdserverpb.Cluster/MemberUpdate", &req.base,
                &etcdserverpb__member_update_response__descriptor, "updated in");
    metcd_free(buf);
    return rc;
}

/* A member's row: ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.
 * cells[] point into buf (cap bytes). */
static void member_row(const Etcdserverpb__Member *mb, char *buf, size_t cap, const char **cells)
{
    size_t at = 0;
    cells[0] = buf + at;
    at += (size_t)snprintf(buf + at, cap - at, "%" PRIx64, mb->id) + 1;
    cells[1] = mb->name[0] ? "started" : "unstarted";
    cells[2] = mb->name;
    cells[3] = buf + at;
    for (size_t k = 0; k < mb->n_peerurls && at < cap; k++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%s", k ? "," : "", mb->peerurls[k]);
    if (at < cap)
        buf[at++] = 0;
    cells[4] = buf + (at < cap ? at : cap - 1);
    for (size_t k = 0; k < mb->n_clienturls && at < cap; k++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%s", k ? "," : "", mb->clienturls[k]);
    if (at < cap)
        buf[at] = 0;
    cells[5] = mb->islearner ? "true" : "false";
}

static int cmd_list(struct ctl *c, const struct ctl_args *a)
{
    (void)a;
    Etcdserverpb__MemberListRequest req = ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
    ProtobufCMessage *m;
    int rc = ctl_unary(c, "/etcdserverpb.Cluster/MemberList", &req.base,
                       &etcdserverpb__member_list_response__descriptor, &m);
    if (rc != 0)
        return rc;
    Etcdserverpb__MemberListResponse *r = (Etcdserverpb__MemberListResponse *)m;
    static const char *const hdr[] = {"ID",         "Status",       "Name",
                                      "Peer Addrs", "Client Addrs", "Is Learner"};
    struct ctl_table *t = NULL;
    char buf[4096];
    const char *cells[6];
    switch (c->format) {
    case CTL_FORMAT_JSON:
        ctl_print_json(c, m);
        break;
    case CTL_FORMAT_PROTOBUF:
        rc = ctl_print_protobuf(c, m);
        break;
    case CTL_FORMAT_FIELDS:
        ctl_fields_header(c, r->header ? &r->header->base : NULL);
        for (size_t i = 0; i < r->n_members; i++) {
            const Etcdserverpb__Member *mb = r->members[i];
            fprintf(c->out, "\"ID\" : %" PRIu64 "\n\"Name\" : ", mb->id);
            ctl_go_quote(c->out, mb->name, strlen(mb->name));
            for (size_t k = 0; k < mb->n_peerurls; k++) {
                fputs("\n\"PeerURL\" : ", c->out);
                ctl_go_quote(c->out, mb->peerurls[k], strlen(mb->peerurls[k]));
            }
            for (size_t k = 0; k < mb->n_clienturls; k++) {
                fputs("\n\"ClientURL\" : ", c->out);
                ctl_go_quote(c->out, mb->clienturls[k], strlen(mb->clienturls[k]));
            }
            fprintf(c->out, "\n\"IsLearner\" : %s\n\n", mb->islearner ? "true" : "false");
        }
        break;
    case CTL_FORMAT_TABLE:
        if (!(t = ctl_table_new(6, hdr))) {
            rc = ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
            break;
        }
        for (size_t i = 0; i < r->n_members && rc == 0; i++) {
            member_row(r->members[i], buf, sizeof(buf), cells);
            if (ctl_table_row(t, cells) != 0)
                rc = ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
        }
        if (rc == 0)
            ctl_table_render(t, c->out);
        ctl_table_free(t);
        break;
    default:
        for (size_t i = 0; i < r->n_members; i++) {
            member_row(r->members[i], buf, sizeof(buf), cells);
            fprintf(c->out, "%s, %s, %s, %s, %s, %s\n", cells[0], cells[1], cells[2], cells[3],
                    cells[4], cells[5]);
        }
    }
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return rc;
}

static const struct ctl_flag add_flags[] = {
    {"learner", 0, CTL_FLAG_BOOL, "false", "indicates if the new member is raft learner"},
    {"peer-urls", 0, CTL_FLAG_STRING, "", "comma separated peer URLs for the new member."},
};
static const struct ctl_flag update_flags[] = {
    {"peer-urls", 0, CTL_FLAG_STRING, "", "comma separated peer URLs for the updated member."},
};

static const struct ctl_cmd member_add = {.name = "add",
                                          .use = "add <memberName> [options]",
                                          .summary = "Adds a member into the cluster",
                                          .flags = add_flags,
                                          .n_flags = 2,
                                          .run = cmd_add};
static const struct ctl_cmd member_list = {
    .name = "list",
    .use = "list",
    .summary = "Lists all members in the cluster",
    .description = "When --write-out is set to simple, this command prints out comma-separated "
                   "member lists for each endpoint.\nThe items in the lists are ID, Status, "
                   "Name, Peer Addrs, Client Addrs, Is Learner.\n",
    .run = cmd_list};
static const struct ctl_cmd member_promote = {
    .name = "promote",
    .use = "promote <memberID>",
    .summary = "Promotes a non-voting member in the cluster",
    .description = "Promotes a non-voting learner member to a voting one in the cluster.\n",
    .run = cmd_promote};
static const struct ctl_cmd member_remove = {.name = "remove",
                                             .use = "remove <memberID>",
                                             .summary = "Removes a member from the cluster",
                                             .run = cmd_remove};
static const struct ctl_cmd member_update = {.name = "update",
                                             .use = "update <memberID> [options]",
                                             .summary = "Updates a member in the cluster",
                                             .flags = update_flags,
                                             .n_flags = 1,
                                             .run = cmd_update};

static const struct ctl_cmd *const member_subs[] = {
    &member_add, &member_list, &member_promote, &member_remove, &member_update, NULL,
};

const struct ctl_cmd ctl_cmd_member = {
    .name = "member",
    .use = "member <subcommand>",
    .summary = "Membership related commands",
    .subs = member_subs,
};
