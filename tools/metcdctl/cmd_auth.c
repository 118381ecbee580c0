/* tools/metcdctl/cmd_auth.c - etcdctl 3.4's user, role and auth commands:
 *
 *   user add <name|name:password> [--interactive=false]
 *            [--new-user-password P] [--no-password]
 *   user delete|get [--detail]|list|passwd [--interactive=false]
 *   user grant-role|revoke-role <user> <role>
 *   role add|delete|get|list
 *   role grant-permission [--prefix|--from-key] <role> <read|write|readwrite> <key> [end]
 *   role revoke-permission [--prefix|--from-key] <role> <key> [end]
 *   auth enable|disable
 *
 * -w json and -w protobuf print the protobuf responses; -w fields prints
 * the header (and a role's permissions, the role list), and refuses user
 * get and user list as etcdctl does; no command has a table. The refusal
 * comes after the call, as in etcdctl. */
#include "tools/metcdctl/ctl.h"

#include "common/mem.h"
#include "server/authpb/auth.pb-c.h"
#include "server/etcdserverpb/rpc.pb-c.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The formats etcdctl's printers give these responses: 0, or the
 * refusal's exit status (error printed). fields_ok: the fields printer
 * has its own method for the response. */
static int unsupported(struct ctl *c, bool fields_ok)
{
    if (c->format == CTL_FORMAT_TABLE || (c->format == CTL_FORMAT_FIELDS && !fields_ok))
        return ctl_fail(c, CTL_EXIT_BAD_FEATURE, "%s not supported as output format",
                        c->format == CTL_FORMAT_TABLE ? "table" : "fields");
    return 0;
}

static const Etcdserverpb__ResponseHeader *header_of(const ProtobufCMessage *m)
{
    /* every Auth* response has the header as its field 1 */
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "header");
    return f ? *(Etcdserverpb__ResponseHeader *const *)((const char *)m + f->offset) : NULL;
}

/* Prints a response whose simple form is one line (already formatted in
 * line); returns 0 or the refusal's status. */
static int print_simple_response(struct ctl *c, const ProtobufCMessage *m, const char *line)
{
    int rc = unsupported(c, true);
    if (rc != 0)
        return rc;
    const Etcdserverpb__ResponseHeader *h = header_of(m);
    switch (c->format) {
    case CTL_FORMAT_JSON:
        ctl_print_json(c, m);
        return 0;
    case CTL_FORMAT_PROTOBUF:
        return ctl_print_protobuf(c, m);
    case CTL_FORMAT_FIELDS:
        ctl_fields_header(c, h ? &h->base : NULL);
        return 0;
    default:
        fputs(line, c->out);
        return 0;
    }
}

/* One unary Auth call, printing a one-line answer. */
static int auth_call(struct ctl *c, const char *method, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *desc, const char *line)
{
    char path[96];
    snprintf(path, sizeof(path), "/etcdserverpb.Auth/%s", method);
    ProtobufCMessage *m;
    int rc = ctl_unary(c, path, req, desc, &m);
    if (rc != 0)
        return rc;
    rc = print_simple_response(c, m, line);
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Passwords                                                                */

/* fmt.Scanf("%s"): one word from stdin, "" at EOF. */
static void scan_word(struct ctl *c, char *buf, size_t len)
{
    size_t n = 0;
    int ch;
    while ((ch = fgetc(c->in)) != EOF && ch != '\n' && isspace(ch))
        ;
    while (ch != EOF && !isspace(ch)) {
        if (n + 1 < len)
            buf[n++] = (char)ch;
        ch = fgetc(c->in);
    }
    buf[n] = 0;
}

/* speakeasy.Ask: the prompt and then a newline on stdout, a line from
 * stdin (echo off on a terminal); "" at EOF. */
static void ask_line(struct ctl *c, const char *prompt, char *buf, size_t len)
{
    fputs(prompt, c->out);
    fflush(c->out);
    if (!fgets(buf, (int)len, c->in))
        buf[0] = 0;
    fputc('\n', c->out);
    fflush(c->out);
    buf[strcspn(buf, "\r\n")] = 0;
}

/* etcdctl's readPasswordInteractive: asks twice. 0, or the error printed
 * and its exit status. */
static int ask_password(struct ctl *c, const char *name, char *buf, size_t len)
{
    char prompt[320], again[256];
    snprintf(prompt, sizeof(prompt), "Password of %s: ", name);
    ask_line(c, prompt, buf, len);
    if (!buf[0])
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "empty password");
    snprintf(prompt, sizeof(prompt), "Type password of %s again for confirmation: ", name);
    ask_line(c, prompt, again, sizeof(again));
    if (strcmp(buf, again) != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "given passwords are different");
    return 0;
}

/* ------------------------------------------------------------------------ */
/* user                                                                     */

static int cmd_user_add(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "user add command requires user name as its argument");
    char user[256], pass[256] = "";
    Authpb__UserAddOptions opts = AUTHPB__USER_ADD_OPTIONS__INIT;
    const char *arg = a->pos[0];
    snprintf(user, sizeof(user), "%s", arg);
    if (ctl_bool(a, "no-password")) {
        opts.no_password = 1;
    } else if (ctl_str(a, "new-user-password")[0]) {
        snprintf(pass, sizeof(pass), "%s", ctl_str(a, "new-user-password"));
    } else if (strchr(arg, ':')) {
        const char *colon = strchr(arg, ':');
        snprintf(user, sizeof(user), "%.*s", (int)(colon - arg), arg);
        snprintf(pass, sizeof(pass), "%s", colon + 1);
        if (!user[0])
            return ctl_fail(c, CTL_EXIT_BAD_ARGS, "empty user name is not allowed");
    } else if (!ctl_bool(a, "interactive")) {
        scan_word(c, pass, sizeof(pass));
    } else {
        int rc = ask_password(c, arg, pass, sizeof(pass));
        if (rc != 0)
            return rc;
    }
    Etcdserverpb__AuthUserAddRequest req = ETCDSERVERPB__AUTH_USER_ADD_REQUEST__INIT;
    req.name = user;
    req.password = pass;
    req.options = &opts;
    char line[320];
    snprintf(line, sizeof(line), "User %s created\n", user);
    return auth_call(c, "UserAdd", &req.base, &etcdserverpb__auth_user_add_response__descriptor,
                     line);
}

static int cmd_user_delete(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "user delete command requires user name as its argument");
    Etcdserverpb__AuthUserDeleteRequest req = ETCDSERVERPB__AUTH_USER_DELETE_REQUEST__INIT;
    req.name = (char *)a->pos[0];
    char line[320];
    snprintf(line, sizeof(line), "User %s deleted\n", a->pos[0]);
    return auth_call(c, "UserDelete", &req.base,
                     &etcdserverpb__auth_user_delete_response__descriptor, line);
}

/* clientv3.GetPrefixRangeEnd */
static size_t prefix_end(const uint8_t *k, size_t n, uint8_t *out)
{
    for (size_t i = n; i-- > 0;)
        if (k[i] < 0xff) {
            memcpy(out, k, i);
            out[i] = (uint8_t)(k[i] + 1);
            return i + 1;
        }
    out[0] = 0;
    return 1;
}

static void print_perm_range(struct ctl *c, const Authpb__Permission *p)
{
    FILE *o = c->out;
    if (!p->range_end.len) {
        fputc('\t', o);
        fwrite(p->key.data, 1, p->key.len, o);
        fputc('\n', o);
        return;
    }
    fputs("\t[", o);
    fwrite(p->key.data, 1, p->key.len, o);
    if (p->range_end.len == 1 && p->range_end.data[0] == 0) {
        fputs(", <open ended>", o);
    } else {
        fputs(", ", o);
        fwrite(p->range_end.data, 1, p->range_end.len, o);
        fputc(')', o);
    }
    uint8_t *end = metcd_malloc(p->key.len + 1);
    if (end) {
        size_t n = prefix_end(p->key.data, p->key.len, end);
        if (n == p->range_end.len && !memcmp(end, p->range_end.data, n)) {
            fputs(" (prefix ", o);
            fwrite(p->key.data, 1, p->key.len, o);
            fputc(')', o);
        }
        metcd_free(end);
    }
    fputc('\n', o);
}

static int print_role_get(struct ctl *c, const char *role, const ProtobufCMessage *m)
{
    const Etcdserverpb__AuthRoleGetResponse *r = (const Etcdserverpb__AuthRoleGetResponse *)m;
    int rc = unsupported(c, true);
    if (rc != 0)
        return rc;
    switch (c->format) {
    case CTL_FORMAT_JSON:
        ctl_print_json(c, m);
        return 0;
    case CTL_FORMAT_PROTOBUF:
        return ctl_print_protobuf(c, m);
    case CTL_FORMAT_FIELDS: {
        static const char *const names[] = {"READ", "WRITE", "READWRITE"};
        ctl_fields_header(c, r->header ? &r->header->base : NULL);
        for (size_t i = 0; i < r->n_perm; i++) {
            const Authpb__Permission *p = r->perm[i];
            fprintf(c->out, "\"PermType\" :  %s\n\"Key\" : ",
                    (unsigned)p->permtype < 3 ? names[p->permtype] : "UNKNOWN");
            ctl_go_quote(c->out, p->key.data, p->key.len);
            fputs("\n\"RangeEnd\" : ", c->out);
            ctl_go_quote(c->out, p->range_end.data, p->range_end.len);
            fputc('\n', c->out);
        }
        return 0;
    }
    default:
        break;
    }
    fprintf(c->out, "Role %s\nKV Read:\n", role);
    for (size_t i = 0; i < r->n_perm; i++)
        if (r->perm[i]->permtype == AUTHPB__PERMISSION__TYPE__READ ||
            r->perm[i]->permtype == AUTHPB__PERMISSION__TYPE__READWRITE)
            print_perm_range(c, r->perm[i]);
    fputs("KV Write:\n", c->out);
    for (size_t i = 0; i < r->n_perm; i++)
        if (r->perm[i]->permtype == AUTHPB__PERMISSION__TYPE__WRITE ||
            r->perm[i]->permtype == AUTHPB__PERMISSION__TYPE__READWRITE)
            print_perm_range(c, r->perm[i]);
    return 0;
}

static int fetch_role(struct ctl *c, const char *role)
{
    Etcdserverpb__AuthRoleGetRequest req = ETCDSERVERPB__AUTH_ROLE_GET_REQUEST__INIT;
    req.role = (char *)role;
    ProtobufCMessage *m;
    int rc = ctl_unary(c, "/etcdserverpb.Auth/RoleGet", &req.base,
                       &etcdserverpb__auth_role_get_response__descriptor, &m);
    if (rc != 0)
        return rc;
    rc = print_role_get(c, role, m);
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return rc;
}

static int cmd_user_get(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "user get command requires user name as its argument");
    Etcdserverpb__AuthUserGetRequest req = ETCDSERVERPB__AUTH_USER_GET_REQUEST__INIT;
    req.name = (char *)a->pos[0];
    ProtobufCMessage *m;
    int rc = ctl_unary(c, "/etcdserverpb.Auth/UserGet", &req.base,
                       &etcdserverpb__auth_user_get_response__descriptor, &m);
    if (rc != 0)
        return rc;
    Etcdserverpb__AuthUserGetResponse *r = (Etcdserverpb__AuthUserGetResponse *)m;
    if (ctl_bool(a, "detail")) {
        fprintf(c->out, "User: %s\n", a->pos[0]);
        for (size_t i = 0; i < r->n_roles && rc == 0; i++) {
            fputc('\n', c->out);
            rc = fetch_role(c, r->roles[i]);
        }
    } else if ((rc = unsupported(c, false)) == 0) {
        if (c->format == CTL_FORMAT_JSON) {
            ctl_print_json(c, m);
        } else if (c->format == CTL_FORMAT_PROTOBUF) {
            rc = ctl_print_protobuf(c, m);
        } else {
            fprintf(c->out, "User: %s\nRoles:", a->pos[0]);
            for (size_t i = 0; i < r->n_roles; i++)
                fprintf(c->out, " %s", r->roles[i]);
            fputc('\n', c->out);
        }
    }
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return rc;
}

static int cmd_user_list(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "user list command requires no arguments");
    Etcdserverpb__AuthUserListRequest req = ETCDSERVERPB__AUTH_USER_LIST_REQUEST__INIT;
    ProtobufCMessage *m;
    int rc = ctl_unary(c, "/etcdserverpb.Auth/UserList", &req.base,
                       &etcdserverpb__auth_user_list_response__descriptor, &m);
    if (rc != 0)
        return rc;
    Etcdserverpb__AuthUserListResponse *r = (Etcdserverpb__AuthUserListResponse *)m;
    if ((rc = unsupported(c, false)) == 0) {
        if (c->format == CTL_FORMAT_JSON)
            ctl_print_json(c, m);
        else if (c->format == CTL_FORMAT_PROTOBUF)
            rc = ctl_print_protobuf(c, m);
        else
            for (size_t i = 0; i < r->n_users; i++)
                fprintf(c->out, "%s\n", r->users[i]);
    }
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return rc;
}

static int cmd_user_passwd(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "user passwd command requires user name as its argument");
    char pass[256] = "";
    if (!ctl_bool(a, "interactive")) {
        scan_word(c, pass, sizeof(pass));
    } else {
        int rc = ask_password(c, a->pos[0], pass, sizeof(pass));
        if (rc != 0)
            return rc;
    }
    Etcdserverpb__AuthUserChangePasswordRequest req =
        ETCDSERVERPB__AUTH_USER_CHANGE_PASSWORD_REQUEST__INIT;
    req.name = (char *)a->pos[0];
    req.password = pass;
    return auth_call(c, "UserChangePassword", &req.base,
                     &etcdserverpb__auth_user_change_password_response__descriptor,
                     "Password updated\n");
}

static int cmd_user_grant_role(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 2)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "user grant command requires user name and role name as its argument");
    Etcdserverpb__AuthUserGrantRoleRequest req = ETCDSERVERPB__AUTH_USER_GRANT_ROLE_REQUEST__INIT;
    req.user = (char *)a->pos[0];
    req.role = (char *)a->pos[1];
    char line[600];
    snprintf(line, sizeof(line), "Role %s is granted to user %s\n", a->pos[1], a->pos[0]);
    return auth_call(c, "UserGrantRole", &req.base,
                     &etcdserverpb__auth_user_grant_role_response__descriptor, line);
}

static int cmd_user_revoke_role(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 2)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "user revoke-role requires user name and role name as its argument");
    Etcdserverpb__AuthUserRevokeRoleRequest req = ETCDSERVERPB__AUTH_USER_REVOKE_ROLE_REQUEST__INIT;
    req.name = (char *)a->pos[0];
    req.role = (char *)a->pos[1];
    char line[600];
    snprintf(line, sizeof(line), "Role %s is revoked from user %s\n", a->pos[1], a->pos[0]);
    return auth_call(c, "UserRevokeRole", &req.base,
                     &etcdserverpb__auth_user_revoke_role_response__descriptor, line);
}

/* ------------------------------------------------------------------------ */
/* role                                                                     */

static int cmd_role_add(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "role add command requires role name as its argument");
    Etcdserverpb__AuthRoleAddRequest req = ETCDSERVERPB__AUTH_ROLE_ADD_REQUEST__INIT;
    req.name = (char *)a->pos[0];
    char line[320];
    snprintf(line, sizeof(line), "Role %s created\n", a->pos[0]);
    return auth_call(c, "RoleAdd", &req.base, &etcdserverpb__auth_role_add_response__descriptor,
                     line);
}

static int cmd_role_delete(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "role delete command requires role name as its argument");
    Etcdserverpb__AuthRoleDeleteRequest req = ETCDSERVERPB__AUTH_ROLE_DELETE_REQUEST__INIT;
    req.role = (char *)a->pos[0];
    char line[320];
    snprintf(line, sizeof(line), "Role %s deleted\n", a->pos[0]);
    return auth_call(c, "RoleDelete", &req.base,
                     &etcdserverpb__auth_role_delete_response__descriptor, line);
}

static int cmd_role_get(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "role get command requires role name as its argument");
    return fetch_role(c, a->pos[0]);
}

static int cmd_role_list(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "role list command requires no arguments");
    Etcdserverpb__AuthRoleListRequest req = ETCDSERVERPB__AUTH_ROLE_LIST_REQUEST__INIT;
    ProtobufCMessage *m;
    int rc = ctl_unary(c, "/etcdserverpb.Auth/RoleList", &req.base,
                       &etcdserverpb__auth_role_list_response__descriptor, &m);
    if (rc != 0)
        return rc;
    Etcdserverpb__AuthRoleListResponse *r = (Etcdserverpb__AuthRoleListResponse *)m;
    if ((rc = unsupported(c, true)) == 0) {
        if (c->format == CTL_FORMAT_JSON) {
            ctl_print_json(c, m);
        } else if (c->format == CTL_FORMAT_PROTOBUF) {
            rc = ctl_print_protobuf(c, m);
        } else if (c->format == CTL_FORMAT_FIELDS) {
            ctl_fields_header(c, r->header ? &r->header->base : NULL);
            fputs("\"Roles\" :", c->out);
            for (size_t i = 0; i < r->n_roles; i++) {
                fputc(' ', c->out);
                ctl_go_quote(c->out, r->roles[i], strlen(r->roles[i]));
            }
            fputc('\n', c->out);
        } else {
            for (size_t i = 0; i < r->n_roles; i++)
                fprintf(c->out, "%s\n", r->roles[i]);
        }
    }
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    return rc;
}

/* etcdctl's permRange: the key and range end a permission command's
 * arguments and --prefix/--from-key name. 0 or the error's status. end
 * must hold strlen(args[0]) + 1 bytes. */
static int perm_range(struct ctl *c, const struct ctl_args *a, const char *const *args, size_t n,
                      ProtobufCBinaryData *key, ProtobufCBinaryData *end, uint8_t *endbuf)
{
    bool prefix = ctl_bool(a, "prefix"), from_key = ctl_bool(a, "from-key");
    static uint8_t zero[1] = {0};
    *key = (ProtobufCBinaryData){strlen(args[0]), (uint8_t *)args[0]};
    *end = (ProtobufCBinaryData){0, NULL};
    if (!args[0][0]) {
        if (prefix && from_key)
            return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                            "--from-key and --prefix flags are mutually exclusive");
        *key = (ProtobufCBinaryData){1, zero};
        if (prefix || from_key)
            *end = (ProtobufCBinaryData){1, zero};
        return 0;
    }
    if (n == 1) {
        if (prefix && from_key)
            return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                            "--from-key and --prefix flags are mutually exclusive");
        if (prefix)
            *end = (ProtobufCBinaryData){prefix_end(key->data, key->len, endbuf), endbuf};
        else if (from_key)
            *end = (ProtobufCBinaryData){1, zero};
        return 0;
    }
    if (prefix)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "unexpected endkey argument with --prefix flag");
    if (from_key)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "unexpected endkey argument with --from-key flag");
    *end = (ProtobufCBinaryData){strlen(args[1]), (uint8_t *)args[1]};
    return 0;
}

static int cmd_role_grant(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos < 3)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "role grant command requires role name, permission type, and key "
                        "[endkey] as its argument");
    Authpb__Permission perm = AUTHPB__PERMISSION__INIT;
    const char *t = a->pos[1];
    if (!strcasecmp(t, "read"))
        perm.permtype = AUTHPB__PERMISSION__TYPE__READ;
    else if (!strcasecmp(t, "write"))
        perm.permtype = AUTHPB__PERMISSION__TYPE__WRITE;
    else if (!strcasecmp(t, "readwrite"))
        perm.permtype = AUTHPB__PERMISSION__TYPE__READWRITE;
    else
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "invalid permission type: %s", t);
    uint8_t *endbuf = metcd_malloc(strlen(a->pos[2]) + 1);
    if (!endbuf)
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    int rc = perm_range(c, a, a->pos + 2, a->n_pos - 2, &perm.key, &perm.range_end, endbuf);
    if (rc == 0) {
        Etcdserverpb__AuthRoleGrantPermissionRequest req =
            ETCDSERVERPB__AUTH_ROLE_GRANT_PERMISSION_REQUEST__INIT;
        req.name = (char *)a->pos[0];
        req.perm = &perm;
        char line[320];
        snprintf(line, sizeof(line), "Role %s updated\n", a->pos[0]);
        rc = auth_call(c, "RoleGrantPermission", &req.base,
                       &etcdserverpb__auth_role_grant_permission_response__descriptor, line);
    }
    metcd_free(endbuf);
    return rc;
}

static int cmd_role_revoke(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos < 2)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "role revoke-permission command requires role name and key [endkey] as "
                        "its argument");
    Etcdserverpb__AuthRoleRevokePermissionRequest req =
        ETCDSERVERPB__AUTH_ROLE_REVOKE_PERMISSION_REQUEST__INIT;
    req.role = (char *)a->pos[0];
    uint8_t *endbuf = metcd_malloc(strlen(a->pos[1]) + 1);
    if (!endbuf)
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    int rc = perm_range(c, a, a->pos + 1, a->n_pos - 1, &req.key, &req.range_end, endbuf);
    if (rc == 0) {
        /* etcdctl names the key as given and the computed range end */
        char *line = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&line, &len);
        if (!f) {
            metcd_free(endbuf);
            return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
        }
        const ProtobufCBinaryData *e = &req.range_end;
        if (!e->len) {
            fprintf(f, "Permission of key %s is revoked from role %s\n", a->pos[1], a->pos[0]);
        } else if (e->len == 1 && e->data[0] == 0) {
            fprintf(f, "Permission of range [%s, <open ended> is revoked from role %s\n", a->pos[1],
                    a->pos[0]);
        } else {
            fprintf(f, "Permission of range [%s, ", a->pos[1]);
            fwrite(e->data, 1, e->len, f);
            fprintf(f, ") is revoked from role %s\n", a->pos[0]);
        }
        fclose(f);
        rc = auth_call(c, "RoleRevokePermission", &req.base,
                       &etcdserverpb__auth_role_revoke_permission_response__descriptor, line);
        free(line); /* open_memstream's buffer is libc's */
    }
    metcd_free(endbuf);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* auth                                                                     */

static int cmd_auth_enable(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "auth enable command does not accept any arguments");
    int rc = ctl_connect(c);
    if (rc != 0)
        return rc;
    /* etcdctl: when root lacks the root role, create the role, grant it
     * and try again */
    for (;;) {
        Etcdserverpb__AuthEnableRequest req = ETCDSERVERPB__AUTH_ENABLE_REQUEST__INIT;
        ProtobufCMessage *m;
        int code;
        char *msg;
        rc = ctl_unary_quiet(c, "/etcdserverpb.Auth/AuthEnable", &req.base,
                             &etcdserverpb__auth_enable_response__descriptor, c->command_timeout_ms,
                             &m, &code, &msg);
        if (m)
            protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
        bool no_root_role =
            rc == 0 && msg && !strcmp(msg, "etcdserver: root user does not have root role");
        if (rc != 0 || code != 0) {
            if (!no_root_role) {
                rc = ctl_fail(c, CTL_EXIT_ERROR, "%s",
                              rc != 0 || code == 4 /* DEADLINE_EXCEEDED */
                                  ? "context deadline exceeded"
                                  : msg && msg[0] ? msg : "unknown error");
                metcd_free(msg);
                return rc;
            }
            metcd_free(msg);
            Etcdserverpb__AuthRoleAddRequest ra = ETCDSERVERPB__AUTH_ROLE_ADD_REQUEST__INIT;
            ra.name = "root";
            if ((rc = ctl_unary(c, "/etcdserverpb.Auth/RoleAdd", &ra.base,
                                &etcdserverpb__auth_role_add_response__descriptor, &m)) != 0)
                return rc;
            protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
            Etcdserverpb__AuthUserGrantRoleRequest gr =
                ETCDSERVERPB__AUTH_USER_GRANT_ROLE_REQUEST__INIT;
            gr.user = "root";
            gr.role = "root";
            if ((rc = ctl_unary(c, "/etcdserverpb.Auth/UserGrantRole", &gr.base,
                                &etcdserverpb__auth_user_grant_role_response__descriptor, &m)) != 0)
                return rc;
            protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
            continue;
        }
        metcd_free(msg);
        break;
    }
    fputs("Authentication Enabled\n", c->out);
    return 0;
}

static int cmd_auth_disable(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "auth disable command does not accept any arguments");
    Etcdserverpb__AuthDisableRequest req = ETCDSERVERPB__AUTH_DISABLE_REQUEST__INIT;
    ProtobufCMessage *m;
    int rc = ctl_unary(c, "/etcdserverpb.Auth/AuthDisable", &req.base,
                       &etcdserverpb__auth_disable_response__descriptor, &m);
    if (rc != 0)
        return rc;
    protobuf_c_message_free_unpacked(m, &metcd_pb_allocator);
    fputs("Authentication Disabled\n", c->out);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Tables                                                                   */

static const struct ctl_flag user_add_flags[] = {
    {"interactive", 0, CTL_FLAG_BOOL, "true",
     "Read password from stdin instead of interactive terminal"},
    {"new-user-password", 0, CTL_FLAG_STRING, "", "Supply password from the command line flag"},
    {"no-password", 0, CTL_FLAG_BOOL, "false",
     "Create a user without password (CN based auth only)"},
};
static const struct ctl_flag user_get_flags[] = {
    {"detail", 0, CTL_FLAG_BOOL, "false", "Show permissions of roles granted to the user"},
};
static const struct ctl_flag user_passwd_flags[] = {
    {"interactive", 0, CTL_FLAG_BOOL, "true",
     "If true, read password from stdin instead of interactive terminal"},
};
static const struct ctl_flag grant_flags[] = {
    {"prefix", 0, CTL_FLAG_BOOL, "false", "grant a prefix permission"},
    {"from-key", 0, CTL_FLAG_BOOL, "false",
     "grant a permission of keys that are greater than or equal to the given key using byte "
     "compare"},
};
static const struct ctl_flag revoke_flags[] = {
    {"prefix", 0, CTL_FLAG_BOOL, "false", "revoke a prefix permission"},
    {"from-key", 0, CTL_FLAG_BOOL, "false",
     "revoke a permission of keys that are greater than or equal to the given key using byte "
     "compare"},
};

static const struct ctl_cmd user_add = {.name = "add",
                                        .use = "add <user name or user:password> [options]",
                                        .summary = "Adds a new user",
                                        .flags = user_add_flags,
                                        .n_flags = 3,
                                        .run = cmd_user_add};
static const struct ctl_cmd user_delete = {.name = "delete",
                                           .use = "delete <user name>",
                                           .summary = "Deletes a user",
                                           .run = cmd_user_delete};
static const struct ctl_cmd user_get = {.name = "get",
                                        .use = "get <user name> [options]",
                                        .summary = "Gets detailed information of a user",
                                        .flags = user_get_flags,
                                        .n_flags = 1,
                                        .run = cmd_user_get};
static const struct ctl_cmd user_list = {
    .name = "list", .use = "list", .summary = "Lists all users", .run = cmd_user_list};
static const struct ctl_cmd user_passwd = {.name = "passwd",
                                           .use = "passwd <user name> [options]",
                                           .summary = "Changes password of user",
                                           .flags = user_passwd_flags,
                                           .n_flags = 1,
                                           .run = cmd_user_passwd};
static const struct ctl_cmd user_grant_role = {.name = "grant-role",
                                               .use = "grant-role <user name> <role name>",
                                               .summary = "Grants a role to a user",
                                               .run = cmd_user_grant_role};
static const struct ctl_cmd user_revoke_role = {.name = "revoke-role",
                                                .use = "revoke-role <user name> <role name>",
                                                .summary = "Revokes a role from a user",
                                                .run = cmd_user_revoke_role};

static const struct ctl_cmd *const user_subs[] = {
    &user_add,    &user_delete,     &user_get,         &user_list,
    &user_passwd, &user_grant_role, &user_revoke_role, NULL,
};

const struct ctl_cmd ctl_cmd_user = {.name = "user",
                                     .use = "user <subcommand>",
                                     .summary = "User related commands",
                                     .subs = user_subs};

static const struct ctl_cmd role_add = {
    .name = "add", .use = "add <role name>", .summary = "Adds a new role", .run = cmd_role_add};
static const struct ctl_cmd role_delete = {.name = "delete",
                                           .use = "delete <role name>",
                                           .summary = "Deletes a role",
                                           .run = cmd_role_delete};
static const struct ctl_cmd role_get = {.name = "get",
                                        .use = "get <role name>",
                                        .summary = "Gets detailed information of a role",
                                        .run = cmd_role_get};
static const struct ctl_cmd role_list = {
    .name = "list", .use = "list", .summary = "Lists all roles", .run = cmd_role_list};
static const struct ctl_cmd role_grant = {
    .name = "grant-permission",
    .use = "grant-permission [options] <role name> <permission type> <key> [endkey]",
    .summary = "Grants a key to a role",
    .flags = grant_flags,
    .n_flags = 2,
    .run = cmd_role_grant};
static const struct ctl_cmd role_revoke = {.name = "revoke-permission",
                                           .use = "revoke-permission <role name> <key> [endkey]",
                                           .summary = "Revokes a key from a role",
                                           .flags = revoke_flags,
                                           .n_flags = 2,
                                           .run = cmd_role_revoke};

static const struct ctl_cmd *const role_subs[] = {
    &role_add, &role_delete, &role_get, &role_list, &role_grant, &role_revoke, NULL,
};

const struct ctl_cmd ctl_cmd_role = {.name = "role",
                                     .use = "role <subcommand>",
                                     .summary = "Role related commands",
                                     .subs = role_subs};

static const struct ctl_cmd auth_enable = {
    .name = "enable", .use = "enable", .summary = "Enables authentication", .run = cmd_auth_enable};
static const struct ctl_cmd auth_disable = {.name = "disable",
                                            .use = "disable",
                                            .summary = "Disables authentication",
                                            .run = cmd_auth_disable};

static const struct ctl_cmd *const auth_subs[] = {&auth_enable, &auth_disable, NULL};

const struct ctl_cmd ctl_cmd_auth = {.name = "auth",
                                     .use = "auth <enable or disable>",
                                     .summary = "Enable or disable authentication",
                                     .subs = auth_subs};
