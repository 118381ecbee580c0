/* tools/metcdctl/cmd_maint.c - etcdctl 3.4's maintenance commands: `alarm
 * list|disarm`, `defrag [--cluster]`, `move-leader <id>`, `version` and
 * `snapshot save <file>` (etcdserverpb.Maintenance).
 *
 * `snapshot status` and `snapshot restore` are in cmd_snapshot.c (metcd's
 * snapshots are LMDB databases, not etcd's bbolt files). */
#include "tools/metcdctl/ctl.h"

#include "backend/backend.h"
#include "common/mem.h"
#include "server/etcdserverpb/rpc.pb-c.h"
#include "server/rpc/rpc.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static int unsupported(struct ctl *c)
{
    static const char *const names[] = {"simple", "json", "fields", "table", "protobuf"};
    return ctl_fail(c, CTL_EXIT_BAD_FEATURE, "%s not supported as output format", names[c->format]);
}

/* ------------------------------------------------------------------------ */
/* alarm                                                                    */

static const char *alarm_name(int a)
{
    switch (a) {
    case ETCDSERVERPB__ALARM_TYPE__NOSPACE:
        return "NOSPACE";
    case ETCDSERVERPB__ALARM_TYPE__CORRUPT:
        return "CORRUPT";
    default:
        return "NONE";
    }
}

/* Prints an AlarmResponse as etcdctl's printers do. */
static int print_alarms(struct ctl *c, const Etcdserverpb__AlarmResponse *r)
{
    switch (c->format) {
    case CTL_FORMAT_JSON:
        ctl_print_json(c, &r->base);
        return 0;
    case CTL_FORMAT_PROTOBUF:
        return ctl_print_protobuf(c, &r->base);
    case CTL_FORMAT_FIELDS:
        ctl_fields_header(c, r->header ? &r->header->base : NULL);
        for (size_t i = 0; i < r->n_alarms; i++)
            fprintf(c->out, "\"MemberID\" : %" PRIu64 "\n\"AlarmType\" : %s\n\n",
                    r->alarms[i]->memberid, alarm_name(r->alarms[i]->alarm));
        return 0;
    case CTL_FORMAT_TABLE:
        return unsupported(c);
    default:
        /* %+v of the message: its compact text form, zero fields left out */
        for (size_t i = 0; i < r->n_alarms; i++) {
            const Etcdserverpb__AlarmMember *am = r->alarms[i];
            if (am->memberid)
                fprintf(c->out, "memberID:%" PRIu64 " ", am->memberid);
            if (am->alarm)
                fprintf(c->out, "alarm:%s ", alarm_name(am->alarm));
            fputc('\n', c->out);
        }
        return 0;
    }
}

static int alarm_rpc(struct ctl *c, int action, uint64_t member, int alarm,
                     Etcdserverpb__AlarmResponse **out)
{
    Etcdserverpb__AlarmRequest req = ETCDSERVERPB__ALARM_REQUEST__INIT;
    req.action = (Etcdserverpb__AlarmRequest__AlarmAction)action;
    req.memberid = member;
    req.alarm = (Etcdserverpb__AlarmType)alarm;
    ProtobufCMessage *m;
    int rc = ctl_unary(c, "/etcdserverpb.Maintenance/Alarm", &req.base,
                       &etcdserverpb__alarm_response__descriptor, &m);
    *out = rc == 0 ? (Etcdserverpb__AlarmResponse *)m : NULL;
    return rc;
}

static int cmd_alarm_list(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "alarm list command accepts no arguments");
    Etcdserverpb__AlarmResponse *r;
    int rc = alarm_rpc(c, ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET, 0, 0, &r);
    if (rc != 0)
        return rc;
    rc = print_alarms(c, r);
    protobuf_c_message_free_unpacked(&r->base, &metcd_pb_allocator);
    return rc;
}

/* As clientv3's AlarmDisarm of an empty AlarmMember: the alarms listed,
 * each deactivated on its own; the answer gathers what those calls
 * returned, without a header. */
static int cmd_alarm_disarm(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "alarm disarm command accepts no arguments");
    Etcdserverpb__AlarmResponse *list, *one[64];
    size_t n_one = 0;
    int rc = alarm_rpc(c, ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET, 0, 0, &list);
    if (rc != 0)
        return rc;
    Etcdserverpb__AlarmMember *gathered[256];
    Etcdserverpb__AlarmResponse ret = ETCDSERVERPB__ALARM_RESPONSE__INIT;
    ret.alarms = gathered;
    for (size_t i = 0; i < list->n_alarms && rc == 0 && n_one < 64; i++) {
        rc = alarm_rpc(c, ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE,
                       list->alarms[i]->memberid, list->alarms[i]->alarm, &one[n_one]);
        if (rc != 0)
            break;
        for (size_t k = 0; k < one[n_one]->n_alarms && ret.n_alarms < 256; k++)
            gathered[ret.n_alarms++] = one[n_one]->alarms[k];
        n_one++;
    }
    if (rc == 0)
        rc = print_alarms(c, &ret);
    for (size_t i = 0; i < n_one; i++)
        protobuf_c_message_free_unpacked(&one[i]->base, &metcd_pb_allocator);
    protobuf_c_message_free_unpacked(&list->base, &metcd_pb_allocator);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* defrag                                                                   */

/* defrag --data-dir: the LMDB database of a stopped member (DIR/member/db)
 * rewritten compactly. The member's WAL directory (DIR/member/wal) is
 * locked as a running metcd locks it, so a running member is waited for,
 * as etcdctl waits for etcd's bolt lock. (A member whose WAL lives
 * elsewhere, --wal-dir, is not detected.) */
static int defrag_data_dir(struct ctl *c, const char *dir)
{
    char db[4096], wal_dir[4096], data[4200], e[128];
    snprintf(db, sizeof(db), "%s/member/db", dir);
    snprintf(data, sizeof(data), "%s/data.mdb", db);
    snprintf(wal_dir, sizeof(wal_dir), "%s/member/wal", dir);
    if (access(data, F_OK) != 0) {
        ctl_go_errno(errno, e, sizeof(e));
        fprintf(c->err, "Failed to defragment etcd data[%s] (open %s: %s)\n", dir, data, e);
        return CTL_EXIT_ERROR;
    }
    int lock = open(wal_dir, O_RDONLY | O_DIRECTORY);
    if (lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) != 0) {
        fprintf(c->err,
                "waiting for etcd to close and release its lock on \"%s\". To defrag a running "
                "etcd instance, omit --data-dir.\n",
                db);
        fflush(c->err);
        flock(lock, LOCK_EX);
    }
    backend *be = NULL;
    char err[256] = "";
    int rc = backend_open(&be, db, NULL, err, sizeof(err));
    if (rc == 0)
        rc = backend_defrag(be);
    if (rc != 0 && !err[0])
        snprintf(err, sizeof(err), "%s", be ? backend_errmsg(be) : backend_strerror(rc));
    backend_close(be);
    if (lock >= 0)
        close(lock);
    if (rc != 0) {
        fprintf(c->err, "Failed to defragment etcd data[%s] (%s)\n", dir,
                err[0] ? err : backend_strerror(rc));
        return CTL_EXIT_ERROR;
    }
    return 0;
}

static int cmd_defrag(struct ctl *c, const struct ctl_args *a)
{
    const char *dir = ctl_str(a, "data-dir");
    if (dir[0])
        return defrag_data_dir(c, dir);
    struct ctl_endpoint_list l;
    int rc = ctl_target_endpoints(c, ctl_bool(a, "cluster"), &l);
    if (rc != 0)
        return rc;
    int failures = 0;
    for (size_t i = 0; i < l.n; i++) {
        struct ctl sub;
        char err[256] = "context deadline exceeded";
        FILE *quiet = fopen("/dev/null", "w");
        struct ctl tmp = *c;
        if (quiet)
            tmp.err = quiet;
        Etcdserverpb__DefragmentRequest req = ETCDSERVERPB__DEFRAGMENT_REQUEST__INIT;
        ProtobufCMessage *m = NULL;
        int r = ctl_open_endpoint(&tmp, l.eps[i], &sub) == 0
                    ? ctl_endpoint_call(&sub, "/etcdserverpb.Maintenance/Defragment", &req.base,
                                        &etcdserverpb__defragment_response__descriptor, &m, err,
                                        sizeof(err))
                    : -1;
        ctl_close(&sub);
        if (quiet)
            fclose(quiet);
        if (m)
            protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
        if (r != 0) {
            fprintf(c->err, "Failed to defragment etcd member[%s] (%s)\n", l.eps[i], err);
            failures++;
        } else {
            fprintf(c->out, "Finished defragmenting etcd member[%s]\n", l.eps[i]);
        }
    }
    ctl_endpoint_list_free(&l);
    return failures ? CTL_EXIT_ERROR : 0;
}

/* ------------------------------------------------------------------------ */
/* move-leader                                                              */

static int cmd_move_leader(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "move-leader command needs 1 argument");
    const char *s = a->pos[0];
    bool ok = s[0] != 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
            ok = false;
    errno = 0;
    uint64_t target = ok ? strtoull(s, NULL, 16) : 0;
    if (!ok || errno == ERANGE) {
        fputs("Error: strconv.ParseUint: parsing ", c->err);
        ctl_go_quote(c->err, s, strlen(s));
        fprintf(c->err, ": %s\n", ok ? "value out of range" : "invalid syntax");
        return CTL_EXIT_BAD_ARGS;
    }
    /* the leader among --endpoints: the one whose Status names itself */
    struct ctl sub;
    bool found = false;
    uint64_t leader = 0;
    for (size_t i = 0; i < c->n_endpoints && !found; i++) {
        int rc = ctl_open_endpoint(c, c->endpoints[i], &sub);
        if (rc != 0) {
            ctl_close(&sub);
            return rc;
        }
        Etcdserverpb__StatusRequest req = ETCDSERVERPB__STATUS_REQUEST__INIT;
        ProtobufCMessage *m = NULL;
        char err[256];
        if (ctl_endpoint_call(&sub, "/etcdserverpb.Maintenance/Status", &req.base,
                              &etcdserverpb__status_response__descriptor, &m, err,
                              sizeof(err)) != 0) {
            ctl_close(&sub);
            return ctl_fail(c, CTL_EXIT_ERROR, "%s", err);
        }
        Etcdserverpb__StatusResponse *st = (Etcdserverpb__StatusResponse *)m;
        if (st->header && st->header->member_id == st->leader) {
            found = true;
            leader = st->leader;
        }
        protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
        if (!found)
            ctl_close(&sub);
    }
    if (!found) {
        fputs("Error: no leader endpoint given at [", c->err);
        for (size_t i = 0; i < c->n_endpoints; i++)
            fprintf(c->err, "%s%s", i ? " " : "", c->endpoints[i]);
        fputs("]\n", c->err);
        return CTL_EXIT_BAD_ARGS;
    }
    Etcdserverpb__MoveLeaderRequest req = ETCDSERVERPB__MOVE_LEADER_REQUEST__INIT;
    req.targetid = target;
    ProtobufCMessage *m = NULL;
    int rc = ctl_unary(&sub, "/etcdserverpb.Maintenance/MoveLeader", &req.base,
                       &etcdserverpb__move_leader_response__descriptor, &m);
    ctl_close(&sub);
    if (rc != 0)
        return rc;
    switch (c->format) {
    case CTL_FORMAT_JSON:
        ctl_print_json(c, m);
        break;
    case CTL_FORMAT_PROTOBUF:
        rc = ctl_print_protobuf(c, m);
        break;
    case CTL_FORMAT_SIMPLE:
        fprintf(c->out, "Leadership transferred from %" PRIx64 " to %" PRIx64 "\n", leader, target);
        break;
    default:
        rc = unsupported(c);
    }
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* version                                                                  */

static int cmd_version(struct ctl *c, const struct ctl_args *a)
{
    (void)a;
    fprintf(c->out, "etcdctl version: %s\nAPI version: 3.4\n", CTL_VERSION);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* snapshot save                                                            */

struct save {
    struct ctl *c;
    int fd;
    bool done, io_failed;
    int code;
    char msg[256];
};

static void on_snap_message(struct rpc_ccall *call, const ProtobufCMessage *msg, void *data)
{
    struct save *s = data;
    const Etcdserverpb__SnapshotResponse *r = (const Etcdserverpb__SnapshotResponse *)msg;
    size_t off = 0;
    while (!s->io_failed && off < r->blob.len) {
        ssize_t n = write(s->fd, r->blob.data + off, r->blob.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            s->io_failed = true;
            snprintf(s->msg, sizeof(s->msg), "%s", strerror(errno));
            rpc_ccall_cancel(call);
            return;
        }
        off += (size_t)n;
    }
}

static void on_snap_close(struct rpc_ccall *call, enum rpc_code code, const char *msg, void *data)
{
    (void)call;
    struct save *s = data;
    s->done = true;
    s->code = (int)code;
    /* a member never reached: etcdctl's dial gives up with its deadline */
    bool unreached = code == RPC_CODE_DEADLINE_EXCEEDED ||
                     (code == RPC_CODE_UNAVAILABLE && rpc_client_endpoint(s->c->client) < 0);
    if (!s->io_failed && code != RPC_CODE_OK)
        snprintf(s->msg, sizeof(s->msg), "%s",
                 unreached       ? "context deadline exceeded"
                 : msg && msg[0] ? msg
                                 : rpc_code_name(code));
    event_base_loopbreak(s->c->base);
}

static int cmd_snapshot_save(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "snapshot save expects one argument");
    if (c->n_endpoints != 1) {
        fputs("Error: snapshot must be requested to one selected node, not multiple [", c->err);
        for (size_t i = 0; i < c->n_endpoints; i++)
            fprintf(c->err, "%s%s", i ? " " : "", c->endpoints[i]);
        fputs("]\n", c->err);
        return CTL_EXIT_INTERRUPTED;
    }
    const char *path = a->pos[0];
    int rc = ctl_connect(c);
    if (rc != 0)
        return rc;
    size_t plen = strlen(path) + 6;
    char *part = metcd_malloc(plen);
    if (!part)
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    snprintf(part, plen, "%s.part", path);
    struct save s = {.c = c, .fd = open(part, O_WRONLY | O_CREAT | O_TRUNC, 0600)};
    char e[128];
    if (s.fd < 0) {
        ctl_go_errno(errno, e, sizeof(e));
        rc = ctl_fail(c, CTL_EXIT_INTERRUPTED, "could not open %s (open %s: %s)", part, part, e);
        metcd_free(part);
        return rc;
    }
    static const struct rpc_ccall_ops ops = {.on_message = on_snap_message,
                                             .on_close = on_snap_close};
    size_t n_md;
    const struct rpc_md *md = ctl_md(c, &n_md);
    Etcdserverpb__SnapshotRequest req = ETCDSERVERPB__SNAPSHOT_REQUEST__INIT;
    struct rpc_ccall *call;
    rc = rpc_ccall_start(c->client, "/etcdserverpb.Maintenance/Snapshot",
                         &etcdserverpb__snapshot_response__descriptor, md, n_md,
                         0 /* etcdctl: none unless --command-timeout is given */, &ops, &s, &call);
    if (rc == 0 && (rc = rpc_ccall_send(call, &req.base)) == 0)
        rc = rpc_ccall_close_send(call);
    else if (rc == 0)
        rpc_ccall_cancel(call);
    if (rc != 0 && !s.done) {
        snprintf(s.msg, sizeof(s.msg), "%s", rpc_strerror(rc));
        s.code = RPC_CODE_UNAVAILABLE;
        s.done = true;
    }
    while (!s.done)
        event_base_loop(c->base, EVLOOP_ONCE);
    bool ok = !s.io_failed && s.code == RPC_CODE_OK;
    off_t size = lseek(s.fd, 0, SEEK_CUR);
    if (ok && size % 512 != 32) { /* the database's pages, then its SHA-256 */
        ok = false;
        snprintf(s.msg, sizeof(s.msg), "sha256 checksum not found [bytes: %lld]", (long long)size);
    }
    if (ok && fsync(s.fd) != 0) {
        ok = false;
        snprintf(s.msg, sizeof(s.msg), "%s", strerror(errno));
    }
    close(s.fd);
    if (ok && rename(part, path) != 0) {
        ok = false;
        ctl_go_errno(errno, e, sizeof(e));
        snprintf(s.msg, sizeof(s.msg), "could not rename %s to %s (rename %s %s: %s)", part, path,
                 part, path, e);
    }
    if (!ok) {
        unlink(part);
        metcd_free(part);
        return ctl_fail(c, CTL_EXIT_INTERRUPTED, "%s", s.msg);
    }
    metcd_free(part);
    fprintf(c->out, "Snapshot saved at %s\n", path);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The commands                                                             */

static const struct ctl_cmd alarm_disarm = {
    .name = "disarm", .use = "disarm", .summary = "Disarms all alarms", .run = cmd_alarm_disarm};
static const struct ctl_cmd alarm_list = {
    .name = "list", .use = "list", .summary = "Lists all alarms", .run = cmd_alarm_list};
static const struct ctl_cmd *const alarm_subs[] = {&alarm_disarm, &alarm_list, NULL};

const struct ctl_cmd ctl_cmd_alarm = {.name = "alarm",
                                      .use = "alarm <subcommand>",
                                      .summary = "Alarm related commands",
                                      .subs = alarm_subs};

static const struct ctl_flag defrag_flags[] = {
    {"cluster", 0, CTL_FLAG_BOOL, "false", "use all endpoints from the cluster member list"},
    {"data-dir", 0, CTL_FLAG_STRING, "",
     "Optional. If present, defragments a data directory not in use by etcd."},
};

const struct ctl_cmd ctl_cmd_defrag = {
    .name = "defrag",
    .use = "defrag",
    .summary = "Defragments the storage of the etcd members with given endpoints",
    .flags = defrag_flags,
    .n_flags = 2,
    .run = cmd_defrag};

const struct ctl_cmd ctl_cmd_move_leader = {
    .name = "move-leader",
    .use = "move-leader <transferee-member-id>",
    .summary = "Transfers leadership to another etcd cluster member.",
    .run = cmd_move_leader};

const struct ctl_cmd ctl_cmd_version = {.name = "version",
                                        .use = "version",
                                        .summary = "Prints the version of etcdctl",
                                        .run = cmd_version};

static const struct ctl_cmd snapshot_save = {
    .name = "save",
    .use = "save <filename>",
    .summary = "Stores an etcd node backend snapshot to a given file",
    .run = cmd_snapshot_save};
static const struct ctl_cmd *const snapshot_subs[] = {&ctl_cmd_snapshot_restore, &snapshot_save,
                                                      &ctl_cmd_snapshot_status, NULL};

const struct ctl_cmd ctl_cmd_snapshot = {.name = "snapshot",
                                         .use = "snapshot <subcommand>",
                                         .summary = "Manages etcd node snapshots",
                                         .subs = snapshot_subs};
