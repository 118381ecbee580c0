/* tools/metcdctl/flags.c - flag parsing with pflag's rules and error
 * texts, Go's value parsers, and help in etcdctl's layout (ctl.h). */
#include "tools/metcdctl/ctl.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Go value parsers                                                         */

int ctl_go_parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (!strcmp(s, t[i])) {
            *out = true;
            return 0;
        }
        if (!strcmp(s, f[i])) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* strconv's digits (base 0: 0x, 0o, 0b prefixes and underscores, as
 * pflag's ParseInt(s, 0, 64)). Returns 0, -1 syntax, -2 range. */
static int go_digits(const char *s, uint64_t limit, uint64_t *out)
{
    int base = 10;
    const char *p = s;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    } else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) {
        base = 2;
        p += 2;
    } else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) {
        base = 8;
        p += 2;
    } else if (p[0] == '0' && p[1]) {
        base = 8;
        p += 1;
    }
    if (!*p)
        return -1;
    uint64_t v = 0;
    bool over = false, digit = false;
    for (; *p; p++) {
        if (*p == '_' && base != 10)
            continue;
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (*p >= 'a' && *p <= 'z')
            d = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'Z')
            d = *p - 'A' + 10;
        else
            return -1;
        if (d >= base)
            return -1;
        digit = true;
        if (v > (limit - (uint64_t)d) / (uint64_t)base)
            over = true;
        else
            v = v * (uint64_t)base + (uint64_t)d;
    }
    if (!digit)
        return -1;
    *out = v;
    return over ? -2 : 0;
}

int ctl_go_parse_int(const char *s, int64_t *out, char *err, size_t errlen)
{
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    uint64_t v = 0;
    int rc = go_digits(p, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &v);
    if (rc != 0) {
        snprintf(err, errlen, "strconv.ParseInt: parsing \"%s\": %s", s,
                 rc == -1 ? "invalid syntax" : "value out of range");
        return -1;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

int ctl_go_parse_uint(const char *s, uint64_t *out, char *err, size_t errlen)
{
    int rc = s[0] == '+' || s[0] == '-' ? -1 : go_digits(s, UINT64_MAX, out);
    if (rc != 0) {
        snprintf(err, errlen, "strconv.ParseUint: parsing \"%s\": %s", s,
                 rc == -1 ? "invalid syntax" : "value out of range");
        return -1;
    }
    return 0;
}

int ctl_go_parse_duration_ms(const char *s, int64_t *ms, char *err, size_t errlen)
{
    /* time.ParseDuration: [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+ , "0" alone ok */
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!strcmp(p, "0")) {
        *ms = 0;
        return 0;
    }
    if (!*p)
        goto bad;
    double total = 0; /* ns */
    while (*p) {
        if (!((*p >= '0' && *p <= '9') || *p == '.'))
            goto bad;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno)
            goto bad;
        p = end;
        const char *u = p;
        while (*p && !(*p >= '0' && *p <= '9') && *p != '.')
            p++;
        size_t ul = (size_t)(p - u);
        double mult;
        if (ul == 0) {
            snprintf(err, errlen, "time: missing unit in duration \"%s\"", s);
            return -1;
        } else if (ul == 2 && !strncmp(u, "ns", 2))
            mult = 1;
        else if (ul == 2 && (!strncmp(u, "us", 2)))
            mult = 1e3;
        else if (ul == 2 && !strncmp(u, "ms", 2))
            mult = 1e6;
        else if (ul == 1 && *u == 's')
            mult = 1e9;
        else if (ul == 1 && *u == 'm')
            mult = 60e9;
        else if (ul == 1 && *u == 'h')
            mult = 3600e9;
        else if ((ul == 3 && !strncmp(u, "\xc2\xb5s", 3)) || (ul == 3 && !strncmp(u, "\xce\xbcs", 3)))
            mult = 1e3;
        else {
            snprintf(err, errlen, "time: unknown unit \"%.*s\" in duration \"%s\"", (int)ul, u, s);
            return -1;
        }
        total += v * mult;
        if (total > 9.2e18)
            goto bad;
    }
    *ms = (int64_t)(total / 1e6);
    if (neg)
        *ms = -*ms;
    return 0;
bad:
    snprintf(err, errlen, "time: invalid duration \"%s\"", s);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                  */

static int flag_index(const struct ctl_cmd *cmd, const char *name)
{
    for (size_t i = 0; i < cmd->n_flags; i++)
        if (!strcmp(cmd->flags[i].name, name))
            return (int)i;
    return -1;
}

/* Checks a value as pflag's Set would; 0 or -1 with Go's text in err. */
static int check_value(const struct ctl_flag *f, const char *v, char *err, size_t errlen)
{
    bool b;
    int64_t i;
    uint64_t u;
    switch (f->type) {
    case CTL_FLAG_BOOL:
        if (ctl_go_parse_bool(v, &b) != 0) {
            snprintf(err, errlen, "strconv.ParseBool: parsing \"%s\": invalid syntax", v);
            return -1;
        }
        return 0;
    case CTL_FLAG_INT:
        return ctl_go_parse_int(v, &i, err, errlen);
    case CTL_FLAG_UINT:
        return ctl_go_parse_uint(v, &u, err, errlen);
    case CTL_FLAG_DURATION:
        return ctl_go_parse_duration_ms(v, &i, err, errlen);
    default:
        return 0;
    }
}

/* Prints a flag error as etcdctl does (cobra's line, the usage on stdout,
 * etcdctl's own line) and returns ExitError. */
static int flag_error(struct ctl *c, const struct ctl_cmd *cmd, const char *path,
                      const char *msg)
{
    fprintf(c->err, "Error: %s\n", msg);
    ctl_help(c, c->out, cmd, path);
    fprintf(c->err, "\nError: %s\n", msg);
    return CTL_EXIT_ERROR;
}

static int invalid(struct ctl *c, const struct ctl_cmd *cmd, const char *path,
                   const struct ctl_flag *f, const char *v, const char *why)
{
    char msg[512];
    if (f->shorthand)
        snprintf(msg, sizeof(msg), "invalid argument \"%s\" for \"-%c, --%s\" flag: %s", v,
                 f->shorthand, f->name, why);
    else
        snprintf(msg, sizeof(msg), "invalid argument \"%s\" for \"--%s\" flag: %s", v, f->name,
                 why);
    return flag_error(c, cmd, path, msg);
}

/* Stores value v of flag f: the command's own (idx >= 0) or global. */
static int store(struct ctl *c, const struct ctl_cmd *cmd, const char *path,
                 struct ctl_args *a, int idx, const struct ctl_flag *f, const char *v)
{
    char why[256];
    if (check_value(f, v, why, sizeof(why)) != 0)
        return invalid(c, cmd, path, f, v, why);
    if (idx < 0) {
        int rc = ctl_apply_global(c, f, v);
        return rc;
    }
    a->val[idx] = v;
    a->set[idx] = true;
    if (f->type == CTL_FLAG_STRINGS && a->n_multi[idx] < 8)
        a->multi[idx][a->n_multi[idx]++] = v;
    return 0;
}

/* Finds a flag by long name or shorthand: the command's first, then the
 * globals. *idx is the command's index or -1 for a global. */
static const struct ctl_flag *lookup(const struct ctl_cmd *cmd, const char *name, size_t nl,
                                     char shorthand, int *idx)
{
    for (size_t i = 0; i < cmd->n_flags; i++) {
        const struct ctl_flag *f = &cmd->flags[i];
        if ((name && strlen(f->name) == nl && !strncmp(f->name, name, nl)) ||
            (!name && shorthand && f->shorthand == shorthand)) {
            *idx = (int)i;
            return f;
        }
    }
    for (size_t i = 0; i < ctl_n_global_flags; i++) {
        const struct ctl_flag *f = &ctl_global_flags[i];
        if ((name && strlen(f->name) == nl && !strncmp(f->name, name, nl)) ||
            (!name && shorthand && f->shorthand == shorthand)) {
            *idx = -1;
            return f;
        }
    }
    return NULL;
}

int ctl_parse_args(struct ctl *c, const struct ctl_cmd *cmd, const char *path, int argc,
                   char **argv, struct ctl_args *a)
{
    memset(a, 0, sizeof(*a));
    a->cmd = cmd;
    a->path = path;
    assert(cmd->n_flags <= CTL_MAX_FLAGS);
    bool dash = false, help = false;
    char msg[512];
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (dash || s[0] != '-' || !s[1]) {
            if (a->n_pos == CTL_MAX_ARGS)
                return flag_error(c, cmd, path, "too many arguments");
            a->pos[a->n_pos++] = s;
            continue;
        }
        if (!strcmp(s, "--")) {
            dash = true;
            a->dashed = true;
            a->dash_at = a->n_pos;
            continue;
        }
        if (s[1] == '-') {
            const char *name = s + 2;
            const char *eq = strchr(name, '=');
            size_t nl = eq ? (size_t)(eq - name) : strlen(name);
            if (nl == 4 && !strncmp(name, "help", 4)) {
                help = true;
                continue;
            }
            int idx;
            const struct ctl_flag *f = lookup(cmd, name, nl, 0, &idx);
            if (!f) {
                snprintf(msg, sizeof(msg), "unknown flag: --%.*s", (int)nl, name);
                return flag_error(c, cmd, path, msg);
            }
            const char *v;
            if (eq)
                v = eq + 1;
            else if (f->type == CTL_FLAG_BOOL)
                v = "true";
            else if (i + 1 < argc)
                v = argv[++i];
            else {
                snprintf(msg, sizeof(msg), "flag needs an argument: --%s", f->name);
                return flag_error(c, cmd, path, msg);
            }
            int rc = store(c, cmd, path, a, idx, f, v);
            if (rc != 0)
                return rc;
            continue;
        }
        /* shorthands: -abc, -wjson, -w json, -w=json */
        for (const char *p = s + 1; *p; p++) {
            if (*p == 'h') {
                help = true;
                continue;
            }
            int idx;
            const struct ctl_flag *f = lookup(cmd, NULL, 0, *p, &idx);
            if (!f) {
                snprintf(msg, sizeof(msg), "unknown shorthand flag: '%c' in %s", *p, s);
                return flag_error(c, cmd, path, msg);
            }
            const char *v;
            bool last = true; /* the value used the rest of the word */
            if (p[1] == '=') {
                v = p + 2;
            } else if (f->type == CTL_FLAG_BOOL) {
                v = "true";
                last = false;
            } else if (p[1]) {
                v = p + 1;
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                snprintf(msg, sizeof(msg), "flag needs an argument: '%c' in %s", *p, s);
                return flag_error(c, cmd, path, msg);
            }
            int rc = store(c, cmd, path, a, idx, f, v);
            if (rc != 0)
                return rc;
            if (last)
                break;
        }
    }
    if (!dash)
        a->dash_at = a->n_pos;
    if (help)
        return CTL_HELP_SHOWN;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Getters                                                                  */

static const char *value_of(const struct ctl_args *a, const char *name)
{
    int i = flag_index(a->cmd, name);
    assert(i >= 0);
    return a->set[i] ? a->val[i] : a->cmd->flags[i].def;
}

bool ctl_changed(const struct ctl_args *a, const char *name)
{
    int i = flag_index(a->cmd, name);
    assert(i >= 0);
    return a->set[i];
}

bool ctl_bool(const struct ctl_args *a, const char *name)
{
    bool b = false;
    const char *v = value_of(a, name);
    if (v)
        (void)ctl_go_parse_bool(v, &b);
    return b;
}

const char *ctl_str(const struct ctl_args *a, const char *name)
{
    const char *v = value_of(a, name);
    return v ? v : "";
}

int64_t ctl_int(const struct ctl_args *a, const char *name)
{
    int64_t v = 0;
    char err[128];
    const char *s = value_of(a, name);
    if (s)
        (void)ctl_go_parse_int(s, &v, err, sizeof(err));
    return v;
}

uint64_t ctl_uint(const struct ctl_args *a, const char *name)
{
    uint64_t v = 0;
    char err[128];
    const char *s = value_of(a, name);
    if (s)
        (void)ctl_go_parse_uint(s, &v, err, sizeof(err));
    return v;
}

uint32_t ctl_duration_ms(const struct ctl_args *a, const char *name)
{
    int64_t v = 0;
    char err[128];
    const char *s = value_of(a, name);
    if (s)
        (void)ctl_go_parse_duration_ms(s, &v, err, sizeof(err));
    return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* ------------------------------------------------------------------------ */
/* Help                                                                     */

static void flag_line(char *buf, size_t len, const struct ctl_flag *f)
{
    bool noopt = f->type == CTL_FLAG_BOOL;
    const char *def = f->def ? f->def : "";
    char sh[8];
    if (f->shorthand)
        snprintf(sh, sizeof(sh), "  -%c, ", f->shorthand);
    else
        snprintf(sh, sizeof(sh), "      ");
    if (f->type == CTL_FLAG_STRING)
        snprintf(buf, len, "%s--%s%s=\"%s\"%s", sh, f->name, noopt ? "[" : "", def,
                 noopt ? "]" : "");
    else if (f->type == CTL_FLAG_STRINGS)
        snprintf(buf, len, "%s--%s=[%s]", sh, f->name, def);
    else
        snprintf(buf, len, "%s--%s%s=%s%s", sh, f->name, noopt ? "[" : "", def[0] ? def : "0",
                 noopt ? "]" : "");
}

/* Go's tabwriter with tab padding: the column is the widest cell plus
 * one, rounded up to 8; each cell is followed by enough tabs. */
static void flag_block(FILE *out, const struct ctl_flag *const *fs, size_t n)
{
    char lines[64][160];
    size_t width = 0;
    if (n > 64)
        n = 64;
    for (size_t i = 0; i < n; i++) {
        flag_line(lines[i], sizeof(lines[i]), fs[i]);
        size_t l = strlen(lines[i]);
        if (l > width)
            width = l;
    }
    size_t col = (width + 1 + 7) / 8 * 8;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(lines[i]);
        fputs(lines[i], out);
        for (size_t t = 0; t < (col - l + 7) / 8; t++)
            fputc('\t', out);
        fprintf(out, "%s\n", fs[i]->usage ? fs[i]->usage : "");
    }
}

static int cmp_flag(const void *x, const void *y)
{
    const struct ctl_flag *a = *(const struct ctl_flag *const *)x;
    const struct ctl_flag *b = *(const struct ctl_flag *const *)y;
    return strcmp(a->name, b->name);
}

static const struct ctl_flag help_flag = {"help", 'h', CTL_FLAG_BOOL, "false", "help for "};

void ctl_help(struct ctl *c, FILE *out, const struct ctl_cmd *cmd, const char *path)
{
    (void)c;
    const char *tool = "metcdctl";
    fprintf(out, "NAME:\n\t%s - %s\n\n", path && path[0] ? path : tool, cmd->summary);
    /* the use line: the parent path, then the command's use text */
    const char *sp = path ? strrchr(path, ' ') : NULL;
    fprintf(out, "USAGE:\n\t%s %.*s%s%s [flags]\n", tool, sp ? (int)(sp - path + 1) : 0,
            sp ? path : "", cmd->use, "");
    if (cmd->subs) {
        fputs("\nAPI VERSION:\n\t3.4\n\n\nCOMMANDS:\n", out);
        for (const struct ctl_cmd *const *s = cmd->subs; *s; s++)
            if ((*s)->run)
                fprintf(out, "\t%s\t%s\n", (*s)->name, (*s)->summary);
    }
    if (cmd->description) {
        fputs("\nDESCRIPTION:\n", out);
        const char *p = cmd->description;
        while (*p) {
            const char *nl = strchr(p, '\n');
            size_t l = nl ? (size_t)(nl - p) : strlen(p);
            fprintf(out, "\t%.*s\n", (int)l, p);
            p += l + (nl ? 1 : 0);
        }
    }
    const struct ctl_flag *local[CTL_MAX_FLAGS + 1];
    size_t n = 0;
    for (size_t i = 0; i < cmd->n_flags; i++)
        local[n++] = &cmd->flags[i];
    struct ctl_flag h = help_flag;
    char hu[96];
    snprintf(hu, sizeof(hu), "help for %s", cmd->name);
    h.usage = hu;
    local[n++] = &h;
    qsort(local, n, sizeof(local[0]), cmp_flag);
    fputs("\nOPTIONS:\n", out);
    flag_block(out, local, n);
    fputs("\nGLOBAL OPTIONS:\n", out);
    ctl_help_flags(out, ctl_global_flags, ctl_n_global_flags);
    fputc('\n', out);
}

void ctl_help_flags(FILE *out, const struct ctl_flag *flags, size_t n)
{
    const struct ctl_flag *sorted[64];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 64; i++)
        sorted[k++] = &flags[i];
    qsort(sorted, k, sizeof(sorted[0]), cmp_flag);
    flag_block(out, sorted, k);
}
