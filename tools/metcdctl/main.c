/* tools/metcdctl/main.c - metcdctl: global flags, the command groups,
 * help, dispatch (ctl.h).
 *
 *   metcdctl [global flags] GROUP COMMAND [args and flags]
 *
 * Global flags may come anywhere (as etcdctl's); ETCDCTL_ENDPOINTS,
 * ETCDCTL_DIAL_TIMEOUT, ETCDCTL_COMMAND_TIMEOUT and ETCDCTL_WRITE_OUT set
 * their defaults. */
#include "tools/metcdctl/ctl.h"

#include "common/mem.h"

#include <stdlib.h>
#include <string.h>

static const struct ctl_group *const groups[] = {
    &ctl_id_group,
};
#define N_GROUPS (sizeof(groups) / sizeof(groups[0]))

static void usage(FILE *out)
{
    fputs("Usage: metcdctl [global flags] GROUP COMMAND [arguments]\n\nGroups:\n", out);
    for (size_t i = 0; i < N_GROUPS; i++) {
        fprintf(out, "  %-10s %s\n", groups[i]->name, groups[i]->summary);
        for (size_t k = 0; k < groups[i]->n_commands; k++) {
            const struct ctl_command *cmd = &groups[i]->commands[k];
            fprintf(out, "    %s %s%s%s\n        %s\n", groups[i]->name, cmd->name,
                    cmd->args[0] ? " " : "", cmd->args, cmd->summary);
        }
    }
    fputs("\nGlobal flags:\n"
          "  --endpoints LIST        gRPC endpoints (default 127.0.0.1:2379)\n"
          "  --dial-timeout D        dial timeout (default 2s)\n"
          "  --command-timeout D     timeout of each request (default 5s)\n"
          "  -w, --write-out FORMAT  simple or json (default simple)\n"
          "  -h, --help              this text\n",
          out);
}

static int set_format(struct ctl *c, const char *v)
{
    if (!strcmp(v, "simple"))
        c->format = CTL_FORMAT_SIMPLE;
    else if (!strcmp(v, "json"))
        c->format = CTL_FORMAT_JSON;
    else
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "unsupported output format %s (simple, json)", v);
    return 0;
}

/* Applies a global flag at argv[*i] (consuming its value); 1 when it is
 * not one, 0 when applied, or an exit status. */
static int global_flag(struct ctl *c, int argc, char **argv, int *i)
{
    static const char *const names[] = {"--endpoints", "--dial-timeout", "--command-timeout",
                                        "--write-out", "-w"};
    const char *a = argv[*i];
    const char *eq = strchr(a, '=');
    size_t nl = eq ? (size_t)(eq - a) : strlen(a);
    size_t k = 0;
    while (k < sizeof(names) / sizeof(names[0]) &&
           !(strlen(names[k]) == nl && !strncmp(names[k], a, nl)))
        k++;
    if (k == sizeof(names) / sizeof(names[0]))
        return 1;
    const char *v;
    if (eq)
        v = eq + 1;
    else if (*i + 1 < argc)
        v = argv[++*i];
    else
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "flag needs an argument: %s", a);
    switch (k) {
    case 0:
        return ctl_set_endpoints(c, v) == 0
                   ? 0
                   : ctl_fail(c, CTL_EXIT_BAD_ARGS, "invalid --endpoints \"%s\"", v);
    case 1:
        return ctl_parse_duration_ms(v, &c->dial_timeout_ms) == 0
                   ? 0
                   : ctl_fail(c, CTL_EXIT_BAD_ARGS, "invalid --dial-timeout \"%s\"", v);
    case 2:
        return ctl_parse_duration_ms(v, &c->command_timeout_ms) == 0
                   ? 0
                   : ctl_fail(c, CTL_EXIT_BAD_ARGS, "invalid --command-timeout \"%s\"", v);
    default:
        return set_format(c, v);
    }
}

static int defaults(struct ctl *c)
{
    c->out = stdout;
    c->err = stderr;
    c->dial_timeout_ms = 2000;
    c->command_timeout_ms = 5000;
    const char *v = getenv("ETCDCTL_ENDPOINTS");
    if (ctl_set_endpoints(c, v && v[0] ? v : "127.0.0.1:2379") != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "invalid ETCDCTL_ENDPOINTS \"%s\"", v);
    if ((v = getenv("ETCDCTL_DIAL_TIMEOUT")) && v[0] &&
        ctl_parse_duration_ms(v, &c->dial_timeout_ms) != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "invalid ETCDCTL_DIAL_TIMEOUT \"%s\"", v);
    if ((v = getenv("ETCDCTL_COMMAND_TIMEOUT")) && v[0] &&
        ctl_parse_duration_ms(v, &c->command_timeout_ms) != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "invalid ETCDCTL_COMMAND_TIMEOUT \"%s\"", v);
    if ((v = getenv("ETCDCTL_WRITE_OUT")) && v[0])
        return set_format(c, v);
    return 0;
}

int main(int argc, char **argv)
{
    static struct ctl ctl;
    struct ctl *c = &ctl;
    int rc = defaults(c);
    if (rc != 0)
        return rc;
    /* global flags out of the way; the rest, in order, is the command */
    char **rest = metcd_calloc((size_t)argc + 1, sizeof(*rest));
    if (!rest)
        return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
    int n = 0;
    bool help = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            help = true;
            continue;
        }
        rc = global_flag(c, argc, argv, &i);
        if (rc == 1)
            rest[n++] = argv[i];
        else if (rc != 0)
            goto out;
    }
    rc = 0;
    if (help || n == 0) {
        usage(help ? stdout : stderr);
        rc = help ? 0 : CTL_EXIT_BAD_ARGS;
        goto out;
    }
    const struct ctl_group *g = NULL;
    for (size_t i = 0; i < N_GROUPS && !g; i++)
        if (!strcmp(groups[i]->name, rest[0]))
            g = groups[i];
    if (!g) {
        rc = ctl_fail(c, CTL_EXIT_BAD_ARGS, "unknown command \"%s\" for \"metcdctl\"", rest[0]);
        goto out;
    }
    const struct ctl_command *cmd = NULL;
    for (size_t k = 0; n > 1 && k < g->n_commands && !cmd; k++)
        if (!strcmp(g->commands[k].name, rest[1]))
            cmd = &g->commands[k];
    if (!cmd) {
        if (n > 1)
            ctl_fail(c, CTL_EXIT_BAD_ARGS, "unknown command \"%s\" for \"metcdctl %s\"", rest[1],
                     g->name);
        usage(stderr);
        rc = CTL_EXIT_BAD_ARGS;
        goto out;
    }
    rc = cmd->run(c, n - 1, rest + 1);
out:
    ctl_close(c);
    metcd_free(rest);
    if (fflush(stdout) != 0 && rc == 0)
        rc = CTL_EXIT_ERROR;
    return rc;
}
