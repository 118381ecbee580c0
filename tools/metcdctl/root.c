/* tools/metcdctl/root.c - metcdctl's root: global flags and their
 * ETCDCTL_* variables, the command table, dispatch (ctl.h).
 *
 *   metcdctl [global flags] COMMAND [SUBCOMMAND] [arguments and flags]
 *
 * As etcdctl (cobra with EnablePrefixMatching): global flags may come
 * anywhere, a unique prefix names a command ("memb li"), and
 * ETCDCTL_<FLAG> sets a global flag not given on the command line (both
 * given is fatal: pkg/flags' "conflicting environment variable"). */
#include "tools/metcdctl/ctl.h"

#include "common/mem.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char **environ;

const struct ctl_flag ctl_global_flags[] = {
    {"endpoints", 0, CTL_FLAG_STRINGS, "127.0.0.1:2379", "gRPC endpoints"},
    {"debug", 0, CTL_FLAG_BOOL, "false", "enable client-side debug logging"},
    {"write-out", 'w', CTL_FLAG_STRING, "simple",
     "set the output format (fields, json, protobuf, simple, table)"},
    {"hex", 0, CTL_FLAG_BOOL, "false", "print byte strings as hex encoded strings"},
    {"dial-timeout", 0, CTL_FLAG_DURATION, "2s", "dial timeout for client connections"},
    {"command-timeout", 0, CTL_FLAG_DURATION, "5s",
     "timeout for short running command (excluding dial timeout)"},
    {"keepalive-time", 0, CTL_FLAG_DURATION, "2s", "keepalive time for client connections"},
    {"keepalive-timeout", 0, CTL_FLAG_DURATION, "6s", "keepalive timeout for client connections"},
    {"insecure-transport", 0, CTL_FLAG_BOOL, "true",
     "disable transport security for client connections"},
    {"insecure-discovery", 0, CTL_FLAG_BOOL, "true",
     "accept insecure SRV records describing cluster endpoints"},
    {"insecure-skip-tls-verify", 0, CTL_FLAG_BOOL, "false",
     "skip server certificate verification (CAUTION: this option should be enabled only for "
     "testing purposes)"},
    {"cert", 0, CTL_FLAG_STRING, "", "identify secure client using this TLS certificate file"},
    {"key", 0, CTL_FLAG_STRING, "", "identify secure client using this TLS key file"},
    {"cacert", 0, CTL_FLAG_STRING, "",
     "verify certificates of TLS-enabled secure servers using this CA bundle"},
    {"user", 0, CTL_FLAG_STRING, "",
     "username[:password] for authentication (prompt if password is not supplied)"},
    {"password", 0, CTL_FLAG_STRING, "",
     "password for authentication (if this option is used, --user option shouldn't include "
     "password)"},
    {"discovery-srv", 'd', CTL_FLAG_STRING, "",
     "domain name to query for SRV records describing cluster endpoints"},
    {"discovery-srv-name", 0, CTL_FLAG_STRING, "",
     "service name to query when using DNS discovery"},
};
const size_t ctl_n_global_flags = sizeof(ctl_global_flags) / sizeof(ctl_global_flags[0]);

/* Which globals the command line gave (for the env conflict check). */
static bool given_on_line[sizeof(ctl_global_flags) / sizeof(ctl_global_flags[0])];
static bool from_env;

static int set_format(struct ctl *c, const char *v)
{
    static const char *const names[] = {"simple", "json", "fields", "table", "protobuf"};
    static const int fmts[] = {CTL_FORMAT_SIMPLE, CTL_FORMAT_JSON, CTL_FORMAT_FIELDS,
                               CTL_FORMAT_TABLE, CTL_FORMAT_PROTOBUF};
    for (size_t i = 0; i < 5; i++)
        if (!strcmp(v, names[i])) {
            c->format = fmts[i];
            return 0;
        }
    return ctl_fail(c, CTL_EXIT_BAD_FEATURE, "unsupported output format");
}

int ctl_apply_global(struct ctl *c, const struct ctl_flag *f, const char *v)
{
    size_t k = (size_t)(f - ctl_global_flags);
    if (k >= ctl_n_global_flags)
        return ctl_fail(c, CTL_EXIT_ERROR, "not a global flag: --%s", f->name);
    if (!from_env)
        given_on_line[k] = true;
    int64_t ms = 0;
    char err[160];
    bool b = false;
    if (f->type == CTL_FLAG_DURATION && ctl_go_parse_duration_ms(v, &ms, err, sizeof(err)) != 0)
        return ctl_fail(c, CTL_EXIT_ERROR, "%s", err);
    if (f->type == CTL_FLAG_BOOL && ctl_go_parse_bool(v, &b) != 0)
        return ctl_fail(c, CTL_EXIT_ERROR, "strconv.ParseBool: parsing \"%s\": invalid syntax", v);
    uint32_t ms32 = ms < 0 ? 0 : ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
    const char *n = f->name;
    if (!strcmp(n, "endpoints")) {
        if (ctl_set_endpoints(c, v) != 0)
            return ctl_fail(c, CTL_EXIT_BAD_ARGS, "invalid --endpoints \"%s\"", v);
    } else if (!strcmp(n, "debug")) {
        c->debug = b;
    } else if (!strcmp(n, "write-out")) {
        /* checked when the command runs (etcdctl: ExitBadFeature then) */
        c->format_name = v;
    } else if (!strcmp(n, "hex")) {
        c->hex = b;
    } else if (!strcmp(n, "dial-timeout")) {
        c->dial_timeout_ms = ms32;
    } else if (!strcmp(n, "command-timeout")) {
        c->command_timeout_ms = ms32;
    } else if (!strcmp(n, "keepalive-time")) {
        c->keepalive_time_ms = ms32;
    } else if (!strcmp(n, "keepalive-timeout")) {
        c->keepalive_timeout_ms = ms32;
    } else if (!strcmp(n, "insecure-transport")) {
        c->insecure_transport = b;
    } else if (!strcmp(n, "insecure-skip-tls-verify")) {
        c->insecure_skip_verify = b;
    } else if (!strcmp(n, "cert")) {
        if (!v[0])
            return ctl_fail(c, CTL_EXIT_BAD_ARGS, "empty string is passed to --cert option");
        c->cert = v;
    } else if (!strcmp(n, "key")) {
        if (!v[0])
            return ctl_fail(c, CTL_EXIT_BAD_ARGS, "empty string is passed to --key option");
        c->key = v;
    } else if (!strcmp(n, "cacert")) {
        if (!v[0])
            return ctl_fail(c, CTL_EXIT_BAD_ARGS, "empty string is passed to --cacert option");
        c->cacert = v;
    } else if (!strcmp(n, "user")) {
        c->user = v;
    } else if (!strcmp(n, "password")) {
        c->password = v;
    } else if (!strcmp(n, "discovery-srv") || !strcmp(n, "discovery-srv-name")) {
        if (v[0])
            return ctl_fail(c, CTL_EXIT_BAD_FEATURE,
                            "--%s: DNS SRV discovery is not supported by metcdctl; "
                            "list the members with --endpoints",
                            n);
    }
    return 0;
}

static void stamp(FILE *err)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    char buf[32];
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(err, "%s.%06ld ", buf, ts.tv_nsec / 1000);
}

/* pkg/flags.SetPflagsFromEnv("ETCDCTL", ...) after the command line. */
static int apply_env(struct ctl *c, bool watch)
{
    from_env = true;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "ETCDCTL_", 8) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char name[64];
        size_t nl = (size_t)(eq - *e) - 8;
        if (nl >= sizeof(name))
            nl = sizeof(name) - 1;
        for (size_t i = 0; i < nl; i++) {
            char ch = (*e)[8 + i];
            name[i] = ch == '_' ? '-' : ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
        }
        name[nl] = 0;
        size_t k = 0;
        while (k < ctl_n_global_flags && strcmp(ctl_global_flags[k].name, name))
            k++;
        if (k == ctl_n_global_flags) {
            if (!strcmp(name, "api") ||
                (watch && (!strcmp(name, "watch-key") || !strcmp(name, "watch-range-end"))))
                continue;
            stamp(c->err);
            fprintf(c->err, "W | pkg/flags: unrecognized environment variable %s\n", *e);
            continue;
        }
        if (given_on_line[k]) {
            stamp(c->err);
            fprintf(c->err,
                    "C | pkg/flags: conflicting environment variable \"%.*s\" is shadowed by "
                    "corresponding command-line flag (either unset environment variable or "
                    "disable flag)\n",
                    (int)(eq - *e), *e);
            return CTL_EXIT_ERROR;
        }
        if (!eq[1])
            continue;
        /* pkg/flags ignores a value the flag refuses */
        const struct ctl_flag *f = &ctl_global_flags[k];
        int64_t ms;
        bool b;
        char err[160];
        if ((f->type == CTL_FLAG_DURATION &&
             ctl_go_parse_duration_ms(eq + 1, &ms, err, sizeof(err)) != 0) ||
            (f->type == CTL_FLAG_BOOL && ctl_go_parse_bool(eq + 1, &b) != 0))
            continue;
        int rc = ctl_apply_global(c, f, eq + 1);
        if (rc != 0)
            return rc;
    }
    from_env = false;
    return 0;
}

static void defaults(struct ctl *c)
{
    c->out = stdout;
    c->err = stderr;
    c->in = stdin;
    c->dial_timeout_ms = 2000;
    c->command_timeout_ms = 5000;
    c->keepalive_time_ms = 2000;
    c->keepalive_timeout_ms = 6000;
    c->insecure_transport = true;
    c->format_name = "simple";
    (void)ctl_set_endpoints(c, "127.0.0.1:2379");
}

/* The root command: its "subcommands" are the top-level commands. */
static const struct ctl_cmd root = {
    .name = "metcdctl",
    .use = "",
    .summary = "A simple command line client for etcd3 and metcd.",
    .subs = ctl_commands,
};

static void root_help(FILE *out)
{
    fputs("NAME:\n\tmetcdctl - A simple command line client for etcd3 and metcd.\n\n"
          "USAGE:\n\tmetcdctl [flags]\n\nVERSION:\n\t" CTL_VERSION "\n\n"
          "API VERSION:\n\t3.4\n\n\nCOMMANDS:\n",
          out);
    for (const struct ctl_cmd *const *p = ctl_commands; *p; p++) {
        if ((*p)->run)
            fprintf(out, "\t%s\t\t%s\n", (*p)->name, (*p)->summary);
        for (const struct ctl_cmd *const *s = (*p)->subs; s && *s; s++)
            fprintf(out, "\t%s %s\t\t%s\n", (*p)->name, (*s)->name, (*s)->summary);
    }
    fputs("\nOPTIONS:\n", out);
    ctl_help_flags(out, ctl_global_flags, ctl_n_global_flags);
}

/* cobra's command lookup: an exact name, else a unique prefix. */
static const struct ctl_cmd *find(const struct ctl_cmd *const *list, const char *name)
{
    const struct ctl_cmd *hit = NULL;
    size_t n = 0, l = strlen(name);
    for (const struct ctl_cmd *const *p = list; p && *p; p++) {
        if (!strcmp((*p)->name, name))
            return *p;
        if (!strncmp((*p)->name, name, l)) {
            hit = *p;
            n++;
        }
    }
    return n == 1 ? hit : NULL;
}

static bool is_global_with_value(const char *a)
{
    if (a[0] != '-' || strchr(a, '='))
        return false;
    if (a[1] != '-')
        return a[1] == 'w' || a[1] == 'd' ? a[2] == 0 : false;
    for (size_t k = 0; k < ctl_n_global_flags; k++)
        if (!strcmp(ctl_global_flags[k].name, a + 2))
            return ctl_global_flags[k].type != CTL_FLAG_BOOL;
    return false;
}

int ctl_main(struct ctl *c, int argc, char **argv)
{
    memset(given_on_line, 0, sizeof(given_on_line));
    from_env = false;
    /* the command words: the first words that are neither flags nor the
     * values of global flags */
    const struct ctl_cmd *cmd = &root;
    char path[128] = "";
    int at = -1; /* argv index of the command word */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--"))
            break;
        if (a[0] == '-' && a[1]) {
            if (is_global_with_value(a))
                i++;
            continue;
        }
        if (cmd->run && cmd != &root)
            break; /* a leaf: the rest are its arguments */
        if (!cmd->subs)
            break;
        const struct ctl_cmd *next = find(cmd->subs, a);
        if (!next) {
            if (cmd == &root) {
                if (!strcmp(a, "help"))
                    break;
                fprintf(c->err, "Error: unknown command \"%s\" for \"metcdctl\"\n"
                                "Run 'metcdctl --help' for usage.\n", a);
                return CTL_EXIT_ERROR;
            }
            break; /* a group's help shows the subcommands */
        }
        cmd = next;
        at = i;
        size_t pl = strlen(path);
        snprintf(path + pl, sizeof(path) - pl, "%s%s", pl ? " " : "", cmd->name);
    }
    /* the arguments of the command: everything but the command words */
    char **rest = metcd_calloc((size_t)argc + 1, sizeof(*rest));
    if (!rest)
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    int n = 0;
    rest[n++] = (char *)cmd->name;
    for (int i = 1; i < argc; i++) {
        bool word = false;
        if (at >= 0 && i <= at && !(argv[i][0] == '-' && argv[i][1])) {
            /* a command word, unless it is a global flag's value */
            word = !(i > 1 && is_global_with_value(argv[i - 1]));
        }
        if (!word)
            rest[n++] = argv[i];
    }
    struct ctl_args *a = metcd_calloc(1, sizeof(*a));
    int rc = CTL_EXIT_ERROR;
    if (!a) {
        rc = ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
        goto out;
    }
    if (cmd == &root) {
        rc = ctl_parse_args(c, cmd, "", n, rest, a);
        if (rc == CTL_HELP_SHOWN || (rc == 0 && a->n_pos == 0) ||
            (rc == 0 && !strcmp(a->pos[0], "help"))) {
            root_help(c->out);
            rc = 0;
        }
        goto out;
    }
    rc = ctl_parse_args(c, cmd, path, n, rest, a);
    if (rc == CTL_HELP_SHOWN) {
        ctl_help(c, c->out, cmd, path);
        rc = 0;
        goto out;
    }
    if (rc != 0)
        goto out;
    if ((rc = apply_env(c, !strcmp(cmd->name, "watch"))) != 0)
        goto out;
    if ((rc = set_format(c, c->format_name)) != 0)
        goto out;
    if (!cmd->run) {
        ctl_help(c, c->out, cmd, path);
        rc = 0;
        goto out;
    }
    rc = cmd->run(c, a);
out:
    metcd_free(a);
    metcd_free(rest);
    return rc;
}

void ctl_defaults(struct ctl *c)
{
    defaults(c);
}
