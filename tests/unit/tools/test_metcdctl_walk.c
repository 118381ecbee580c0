/* metcdctl's command table walked in-process: every command and
 * subcommand in ctl_commands answers "<path> --help" with exit 0, the
 * NAME/USAGE help naming it and each of its flags; the bash completion
 * script lists every group's subcommands and every command's flags. */
#include "tests/unit/tools/ctl_capture.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* Runs `metcdctl <path words> <extra>` in a fresh ctl; out/err captured
 * (free with cap_close). */
static int run(struct cap *k, const char *path, const char *extra)
{
    char buf[600];
    snprintf(buf, sizeof(buf), "%s %s", path, extra);
    memset(k, 0, sizeof(*k));
    return cap_run(k, buf, NULL);
}

static size_t walked;

static void walk_help(const struct ctl_cmd *const *list, const char *parent)
{
    for (const struct ctl_cmd *const *p = list; p && *p; p++) {
        const struct ctl_cmd *cmd = *p;
        char path[256];
        snprintf(path, sizeof(path), "%s%s%s", parent, parent[0] ? " " : "", cmd->name);
        for (int h = 0; h < 2; h++) {
            struct cap k = {0};
            int rc = run(&k, path, h ? "-h" : "--help");
            ck_assert_msg(rc == 0, "%s --help: exit %d", path, rc);
            char want[300];
            snprintf(want, sizeof(want), "NAME:\n\t%s - %s\n", path, cmd->summary);
            ck_assert_msg(!strncmp(k.out, want, strlen(want)), "%s --help: %.80s", path, k.out);
            ck_assert_msg(strstr(k.out, "\nUSAGE:\n\tmetcdctl ") != NULL, "%s: no USAGE", path);
            ck_assert_msg(k.errlen == 0, "%s --help wrote to stderr: %s", path, k.err);
            for (size_t i = 0; i < cmd->n_flags; i++) {
                char fl[96];
                snprintf(fl, sizeof(fl), "--%s", cmd->flags[i].name);
                ck_assert_msg(strstr(k.out, fl) != NULL, "%s --help lacks %s", path, fl);
            }
            cap_close(&k);
        }
        walked++;
        walk_help(cmd->subs, path);
    }
}

START_TEST(test_every_command_has_help)
{
    walked = 0;
    walk_help(ctl_commands, "");
    ck_assert_uint_gt(walked, 2);
}
END_TEST

static void walk_completion(const char *script, const struct ctl_cmd *const *list,
                            const char *parent)
{
    if (list && list[0]) {
        char line[512];
        int n = snprintf(line, sizeof(line), "    \"%s\") echo \"", parent);
        for (const struct ctl_cmd *const *p = list; *p; p++)
            n += snprintf(line + n, sizeof(line) - (size_t)n, "%s%s", p == list ? "" : " ",
                          (*p)->name);
        ck_assert_msg(strstr(script, line) != NULL, "no subcommand line for \"%s\"", parent);
    }
    for (const struct ctl_cmd *const *p = list; p && *p; p++) {
        char path[256];
        snprintf(path, sizeof(path), "%s%s%s", parent, parent[0] ? " " : "", (*p)->name);
        if ((*p)->n_flags) {
            char label[300];
            snprintf(label, sizeof(label), "    \"%s\") echo \"--%s", path, (*p)->flags[0].name);
            ck_assert_msg(strstr(script, label) != NULL, "no flags line for \"%s\"", path);
        }
        walk_completion(script, (*p)->subs, path);
    }
}

START_TEST(test_completion_lists_the_table)
{
    struct cap k = {0};
    ck_assert_int_eq(run(&k, "completion bash", ""), 0);
    walk_completion(k.out, ctl_commands, "");
    const char *g = strstr(k.out, "\n__metcdctl_global_flags=\"");
    ck_assert_ptr_nonnull(g);
    g = strchr(g, '"');
    const char *end = strchr(g + 1, '"');
    ck_assert_ptr_nonnull(end);
    for (size_t i = 0; i < ctl_n_global_flags; i++) {
        char fl[96];
        int n = snprintf(fl, sizeof(fl), "--%s", ctl_global_flags[i].name);
        bool found = false;
        for (const char *p = g + 1; p < end && !found; p = strchr(p, ' ') + 1) {
            found = !strncmp(p, fl, (size_t)n) && (p[n] == ' ' || p[n] == '"');
            if (!strchr(p, ' '))
                break;
        }
        ck_assert_msg(found, "global %s missing", fl);
    }
    cap_close(&k);
    ck_assert_int_eq(run(&k, "completion zsh", ""), 0);
    ck_assert_ptr_nonnull(strstr(k.out, "#compdef metcdctl\n"));
    walk_completion(k.out, ctl_commands, "");
    cap_close(&k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metcdctl_walk");
    TCase *tc = tcase_create("walk");
    tcase_add_test(tc, test_every_command_has_help);
    tcase_add_test(tc, test_completion_lists_the_table);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
