/* tools/metcdctl/cmd_txn.c - etcdctl 3.4's txn: compares, then success
 * requests, then failure requests from the standard input, each block
 * ended by an empty line (etcdctl/ctlv3/command/txn_command.go; the
 * grammar is documented in etcdctl's README):
 *
 *   <target>("<key>") <op> "<value>"   target ver|version, c|create,
 *                                      m|mod, val|value; op = != < >
 *   get|put|del <args and flags as the commands take them>
 *
 * Request lines are split into words as etcdctl's argify does (bare
 * words, "Go-quoted" and 'single-quoted' strings, the last with etcdctl's
 * own trimming) and parsed with the get/put/del flag tables. Errors in
 * the input end the command with ExitInvalidInput (3); argument errors of
 * the requests with the commands' own codes; the inputs on which etcdctl
 * panics (an unknown operator, a lease compare) exit 2 with Go's panic
 * line. -i prints the three prompts. */
#include "tools/metcdctl/kv.h"

#include "common/mem.h"

#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* Go's panic: the first line of its report and exit status 2. */
static int go_panic(struct ctl *c, const char *what)
{
    fprintf(c->err, "panic: %s\n\ngoroutine 1 [running]:\n", what);
    return 2;
}

/* ------------------------------------------------------------------------ */
/* Go string literals                                                       */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

static size_t put_utf8(uint8_t *o, uint32_t r)
{
    if (r < 0x80) {
        o[0] = (uint8_t)r;
        return 1;
    }
    if (r < 0x800) {
        o[0] = (uint8_t)(0xc0 | r >> 6);
        o[1] = (uint8_t)(0x80 | (r & 0x3f));
        return 2;
    }
    if (r < 0x10000) {
        o[0] = (uint8_t)(0xe0 | r >> 12);
        o[1] = (uint8_t)(0x80 | ((r >> 6) & 0x3f));
        o[2] = (uint8_t)(0x80 | (r & 0x3f));
        return 3;
    }
    o[0] = (uint8_t)(0xf0 | r >> 18);
    o[1] = (uint8_t)(0x80 | ((r >> 12) & 0x3f));
    o[2] = (uint8_t)(0x80 | ((r >> 6) & 0x3f));
    o[3] = (uint8_t)(0x80 | (r & 0x3f));
    return 4;
}

/* strconv.Unquote of s[0..n) ("..." or `...`) into memory of m, NUL
 * terminated. 0; -1 on a syntax error; -2 when out of memory. */
static int go_unquote(struct kv_mem *m, const char *s, size_t n, char **out, size_t *outlen)
{
    if (n < 2 || s[0] != s[n - 1] || (s[0] != '"' && s[0] != '`'))
        return -1;
    uint8_t *o = kv_alloc(m, n + 1);
    if (!o)
        return -2;
    size_t k = 0;
    const char *p = s + 1, *end = s + n - 1;
    if (s[0] == '`') {
        for (; p < end; p++) {
            if (*p == '`')
                return -1;
            if (*p != '\r')
                o[k++] = (uint8_t)*p;
        }
        goto done;
    }
    while (p < end) {
        char ch = *p++;
        if (ch == '"' || ch == '\n')
            return -1;
        if (ch != '\\') {
            o[k++] = (uint8_t)ch;
            continue;
        }
        if (p == end)
            return -1;
        ch = *p++;
        uint32_t v = 0;
        int digits = 0;
        switch (ch) {
        case 'a': o[k++] = '\a'; continue;
        case 'b': o[k++] = '\b'; continue;
        case 'f': o[k++] = '\f'; continue;
        case 'n': o[k++] = '\n'; continue;
        case 'r': o[k++] = '\r'; continue;
        case 't': o[k++] = '\t'; continue;
        case 'v': o[k++] = '\v'; continue;
        case '\\': o[k++] = '\\'; continue;
        case '"': o[k++] = '"'; continue;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
            v = (uint32_t)(ch - '0');
            for (int i = 0; i < 2; i++, p++) {
                if (p == end || *p < '0' || *p > '7')
                    return -1;
                v = v * 8 + (uint32_t)(*p - '0');
            }
            if (v > 255)
                return -1;
            o[k++] = (uint8_t)v;
            continue;
        default:
            return -1;
        }
        for (int i = 0; i < digits; i++, p++) {
            int d = p < end ? hexval(*p) : -1;
            if (d < 0)
                return -1;
            v = v << 4 | (uint32_t)d;
        }
        if (ch == 'x') {
            o[k++] = (uint8_t)v;
            continue;
        }
        if (v > 0x10ffff || (v >= 0xd800 && v < 0xe000))
            return -1;
        /* an escape's UTF-8 is never longer than its text */
        k += put_utf8(o + k, v);
    }
done:
    o[k] = 0;
    *out = (char *)o;
    *outlen = k;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Compares: fmt.Sscanf(rest, "%q) %s %q", &key, &op, &val)                 */

static bool fmt_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

static void skip_space(const char **p)
{
    while (fmt_space(**p))
        (*p)++;
}

/* fmt's %q: a "..." or `...` literal. 1 read, 0 not, -2 out of memory. */
static int scan_quoted(struct kv_mem *m, const char **pp, char **out, size_t *len)
{
    const char *p = *pp;
    skip_space(&p);
    const char *start = p;
    if (*p == '`') {
        const char *q = strchr(p + 1, '`');
        if (!q)
            return 0;
        p = q + 1;
    } else if (*p == '"') {
        for (p++;; p++) {
            if (!*p)
                return 0;
            if (*p == '\\') {
                if (!*++p)
                    return 0;
            } else if (*p == '"') {
                p++;
                break;
            }
        }
    } else {
        return 0;
    }
    int rc = go_unquote(m, start, (size_t)(p - start), out, len);
    if (rc == -2)
        return -2;
    if (rc != 0)
        return 0;
    *pp = p;
    return 1;
}

/* A space of the format: at least one space in the input, or its end. */
static bool scan_space(const char **p)
{
    if (**p && !fmt_space(**p))
        return false;
    skip_space(p);
    return true;
}

struct cmp_text {
    char *key, *op, *val;
    size_t key_len, val_len;
};

/* The number of values scanned (3: all), or -2 out of memory. */
static int scan_compare(struct kv_mem *m, const char *p, struct cmp_text *t)
{
    int rc = scan_quoted(m, &p, &t->key, &t->key_len);
    if (rc != 1)
        return rc;
    if (*p != ')')
        return 1;
    p++;
    if (!scan_space(&p))
        return 1;
    skip_space(&p);
    if (!*p)
        return 1;
    const char *start = p;
    while (*p && !fmt_space(*p))
        p++;
    if (!(t->op = kv_alloc(m, (size_t)(p - start) + 1)))
        return -2;
    memcpy(t->op, start, (size_t)(p - start));
    if (!scan_space(&p))
        return 2;
    rc = scan_quoted(m, &p, &t->val, &t->val_len);
    return rc == 1 ? 3 : rc < 0 ? rc : 2;
}

static int oom(struct ctl *c)
{
    return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
}

static int parse_compare(struct ctl *c, struct kv_mem *m, const char *line,
                         Etcdserverpb__Compare **out)
{
    const char *paren = strchr(line, '(');
    if (!paren)
        return ctl_fail(c, CTL_EXIT_INVALID_INPUT, "malformed comparison: %s", line);
    size_t tlen = (size_t)(paren - line);
    struct cmp_text t = {.key = "", .op = "", .val = ""};
    int n = scan_compare(m, paren + 1, &t);
    if (n == -2)
        return oom(c);
    if (n != 3) {
        fprintf(c->err, "Error: malformed comparison: %s; got %.*s(", line, (int)tlen, line);
        ctl_go_quote(c->err, t.key, t.key_len);
        fprintf(c->err, ") %s ", t.op);
        ctl_go_quote(c->err, t.val, t.val_len);
        fputc('\n', c->err);
        return CTL_EXIT_INVALID_INPUT;
    }
    Etcdserverpb__Compare *cmp = kv_alloc(m, sizeof(*cmp));
    if (!cmp)
        return oom(c);
    etcdserverpb__compare__init(cmp);
    cmp->key.data = (uint8_t *)t.key;
    cmp->key.len = t.key_len;
    static const struct {
        const char *a, *b;
        Etcdserverpb__Compare__CompareTarget target;
        Etcdserverpb__Compare__TargetUnionCase which;
    } targets[] = {
        {"ver", "version", ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION,
         ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION},
        {"c", "create", ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE,
         ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION},
        {"m", "mod", ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD,
         ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION},
        {"val", "value", ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE,
         ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE},
        {"lease", "lease", ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE,
         ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE},
    };
    size_t i = 0;
    for (; i < sizeof(targets) / sizeof(targets[0]); i++)
        if ((strlen(targets[i].a) == tlen && !strncmp(line, targets[i].a, tlen)) ||
            (strlen(targets[i].b) == tlen && !strncmp(line, targets[i].b, tlen)))
            break;
    if (i == sizeof(targets) / sizeof(targets[0]))
        return ctl_fail(c, CTL_EXIT_INVALID_INPUT, "malformed comparison: %s (unknown target %.*s)",
                        line, (int)tlen, line);
    cmp->target = targets[i].target;
    cmp->target_union_case = targets[i].which;
    int64_t v = 0;
    bool number = cmp->target != ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE &&
                  cmp->target != ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE;
    char err[256];
    if (number && (memchr(t.val, 0, t.val_len) ||
                   ctl_go_parse_int(t.val, &v, err, sizeof(err)) != 0))
        return ctl_fail(c, CTL_EXIT_INVALID_INPUT, "invalid txn compare request: %s", line);
    /* clientv3.Compare */
    if (!strcmp(t.op, "="))
        cmp->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
    else if (!strcmp(t.op, "!="))
        cmp->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__NOT_EQUAL;
    else if (!strcmp(t.op, ">"))
        cmp->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__GREATER;
    else if (!strcmp(t.op, "<"))
        cmp->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__LESS;
    else
        return go_panic(c, "Unknown result op");
    switch (cmp->target) {
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE:
        cmp->value.data = (uint8_t *)t.val;
        cmp->value.len = t.val_len;
        break;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE:
        return go_panic(c, "bad value"); /* etcdctl passes the value as a string */
    default:
        cmp->version = v; /* the union's int64 member, whichever it is */
        break;
    }
    *out = cmp;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */

static bool re_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\f' || ch == '\r';
}

/* etcdctl's argify: the words of a request line. 0, or the exit status
 * (error printed). */
static int argify(struct ctl *c, struct kv_mem *m, const char *s, char **words, size_t *n)
{
    const char *start[CTL_MAX_ARGS];
    size_t len[CTL_MAX_ARGS];
    size_t k = 0;
    for (const char *p = s; *p;) {
        const char *q = NULL;
        if (*p == '"') {
            for (const char *r = p + 1; *r; r++) {
                if (*r == '\\') {
                    if (!r[1])
                        break;
                    r++;
                } else if (*r == '"') {
                    q = r + 1;
                    break;
                }
            }
        } else if (*p == '\'') {
            const char *r = strchr(p + 1, '\'');
            if (r)
                q = r + 1;
        } else if (!re_space(*p)) {
            for (q = p + 1; *q && !re_space(*q); q++)
                ;
        }
        if (!q) {
            p++;
            continue;
        }
        if (k == CTL_MAX_ARGS)
            return ctl_fail(c, CTL_EXIT_INVALID_INPUT, "invalid txn request: %s", s);
        start[k] = p;
        len[k++] = (size_t)(q - p);
        p = q;
    }
    for (size_t i = 0; i < k; i++) {
        size_t l = len[i];
        if (start[i][0] == '"') {
            size_t ol;
            int rc = go_unquote(m, start[i], l, &words[i], &ol);
            if (rc == -2)
                return oom(c);
            if (rc != 0)
                return ctl_fail(c, CTL_EXIT_INVALID_INPUT, "invalid syntax");
            continue;
        }
        const char *from = start[i];
        if (from[0] == '\'') {
            /* etcdctl slices the word to [1, number of words - 1) */
            if (k < 2 || k - 1 > l) {
                fprintf(c->err, "panic: runtime error: slice bounds out of range\n");
                return 2;
            }
            from++;
            l = k - 2;
        }
        if (!(words[i] = kv_alloc(m, l + 1)))
            return oom(c);
        memcpy(words[i], from, l);
    }
    *n = k;
    return 0;
}

/* cobra's lookup of the request's command: the name, or (etcdctl enables
 * prefix matching) an unambiguous prefix of one. */
static const struct ctl_cmd *find_op(const char *w)
{
    static const struct ctl_cmd *const ops[] = {&ctl_cmd_put, &ctl_cmd_get, &ctl_cmd_del};
    const struct ctl_cmd *hit = NULL;
    size_t hits = 0, wl = strlen(w);
    for (size_t i = 0; i < 3; i++) {
        if (!strcmp(ops[i]->name, w))
            return ops[i];
        if (wl && !strncmp(ops[i]->name, w, wl)) {
            hit = ops[i];
            hits++;
        }
    }
    /* "h..." names cobra's help command: no request */
    if (wl && !strncmp("help", w, wl))
        return NULL;
    return hits == 1 ? hit : NULL;
}

/* Only the command's own flags are known inside a txn request. */
static bool flags_known(const struct ctl_cmd *cmd, char **w, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        const char *s = w[i];
        if (!strcmp(s, "--"))
            return true;
        if (s[0] != '-' || !s[1])
            continue;
        if (s[1] != '-')
            return false; /* get, put and del have no shorthands; -h is help */
        const char *eq = strchr(s + 2, '=');
        size_t nl = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
        const struct ctl_flag *f = NULL;
        for (size_t k = 0; k < cmd->n_flags && !f; k++)
            if (strlen(cmd->flags[k].name) == nl && !strncmp(cmd->flags[k].name, s + 2, nl))
                f = &cmd->flags[k];
        if (!f)
            return false;
        if (!eq && f->type != CTL_FLAG_BOOL)
            i++;
    }
    return true;
}

static int parse_request(struct ctl *c, struct kv_mem *m, const char *line,
                         Etcdserverpb__RequestOp **out)
{
    char *w[CTL_MAX_ARGS + 1];
    size_t n = 0;
    int rc = argify(c, m, line, w, &n);
    if (rc != 0)
        return rc;
    if (n < 2)
        return ctl_fail(c, CTL_EXIT_INVALID_INPUT, "invalid txn compare request: %s", line);
    w[n] = NULL;
    const struct ctl_cmd *cmd = find_op(w[0]);
    if (!cmd || !flags_known(cmd, w, n))
        return ctl_fail(c, CTL_EXIT_INVALID_INPUT, "invalid txn request: %s", line);
    struct ctl quiet = *c;
    quiet.out = quiet.err = fopen("/dev/null", "w");
    if (!quiet.out)
        return ctl_fail(c, CTL_EXIT_ERROR, "/dev/null: cannot open");
    struct ctl_args *a = kv_alloc(m, sizeof(*a));
    if (!a) {
        fclose(quiet.out);
        return oom(c);
    }
    rc = ctl_parse_args(&quiet, cmd, cmd->name, (int)n, w, a);
    fclose(quiet.out);
    if (rc != 0)
        return ctl_fail(c, CTL_EXIT_INVALID_INPUT, "invalid txn request: %s", line);
    Etcdserverpb__RequestOp *op = kv_alloc(m, sizeof(*op));
    if (!op)
        return oom(c);
    etcdserverpb__request_op__init(op);
    if (cmd == &ctl_cmd_get) {
        Etcdserverpb__RangeRequest *r = kv_alloc(m, sizeof(*r));
        if (!r)
            return oom(c);
        etcdserverpb__range_request__init(r);
        op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
        op->request_range = r;
        rc = kv_get_op(c, m, a, r);
    } else if (cmd == &ctl_cmd_put) {
        Etcdserverpb__PutRequest *r = kv_alloc(m, sizeof(*r));
        if (!r)
            return oom(c);
        etcdserverpb__put_request__init(r);
        op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
        op->request_put = r;
        rc = kv_put_op(c, m, a, true, r);
    } else {
        Etcdserverpb__DeleteRangeRequest *r = kv_alloc(m, sizeof(*r));
        if (!r)
            return oom(c);
        etcdserverpb__delete_range_request__init(r);
        op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
        op->request_delete_range = r;
        rc = kv_del_op(c, m, a, r);
    }
    if (rc != 0)
        return rc;
    *out = op;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The command                                                              */

/* One line as bufio.Reader.ReadString('\n') then strings.TrimSpace give
 * it: 1 a line (*s, trimmed, in m), 0 end of input before a newline. */
static int read_line(struct ctl *c, struct kv_mem *m, char **s)
{
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getline(&buf, &cap, c->in);
    if (n <= 0 || buf[n - 1] != '\n') {
        free(buf);
        return 0;
    }
    char *p = buf, *e = buf + n;
    while (p < e && (fmt_space(*p)))
        p++;
    while (e > p && fmt_space(e[-1]))
        e--;
    char *keep = kv_alloc(m, (size_t)(e - p) + 1);
    if (keep)
        memcpy(keep, p, (size_t)(e - p));
    free(buf);
    if (!keep)
        return -1;
    *s = keep;
    return 1;
}

/* Appends item to a growing array of m. */
static int push(struct kv_mem *m, void ***arr, size_t *n, void *item)
{
    if ((*n & (*n - 1)) == 0) { /* 0, 1, 2, 4 ...: grow to the next power */
        void **na = kv_alloc(m, (*n ? *n * 2 : 1) * sizeof(void *));
        if (!na)
            return -1;
        if (*n)
            memcpy(na, *arr, *n * sizeof(void *));
        *arr = na;
    }
    (*arr)[(*n)++] = item;
    return 0;
}

static void prompt(struct ctl *c, bool interactive, const char *text)
{
    if (!interactive)
        return;
    fprintf(c->out, "%s\n", text);
    fflush(c->out);
}

static int read_block(struct ctl *c, struct kv_mem *m, bool compares, void ***arr, size_t *n)
{
    for (;;) {
        char *line;
        int got = read_line(c, m, &line);
        if (got < 0)
            return oom(c);
        if (got == 0)
            return ctl_fail(c, CTL_EXIT_INVALID_INPUT, "EOF");
        if (!line[0])
            return 0;
        Etcdserverpb__Compare *cmp = NULL;
        Etcdserverpb__RequestOp *op = NULL;
        int rc = compares ? parse_compare(c, m, line, &cmp) : parse_request(c, m, line, &op);
        if (rc != 0)
            return rc;
        if (push(m, arr, n, compares ? (void *)cmp : (void *)op) != 0)
            return oom(c);
    }
}

static int cmd_txn(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 0)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "txn command does not accept argument");
    bool interactive = ctl_bool(a, "interactive");
    int rc = ctl_connect(c);
    if (rc != 0)
        return rc;
    struct kv_mem m = {0};
    Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
    void **cmps = NULL, **then = NULL, **other = NULL;
    prompt(c, interactive, "compares:");
    if ((rc = read_block(c, &m, true, &cmps, &req.n_compare)) != 0)
        goto out;
    prompt(c, interactive, "success requests (get, put, del):");
    if ((rc = read_block(c, &m, false, &then, &req.n_success)) != 0)
        goto out;
    prompt(c, interactive, "failure requests (get, put, del):");
    if ((rc = read_block(c, &m, false, &other, &req.n_failure)) != 0)
        goto out;
    req.compare = (Etcdserverpb__Compare **)cmps;
    req.success = (Etcdserverpb__RequestOp **)then;
    req.failure = (Etcdserverpb__RequestOp **)other;
    ProtobufCMessage *resp;
    rc = ctl_unary(c, "/etcdserverpb.KV/Txn", &req.base, &etcdserverpb__txn_response__descriptor,
                   &resp);
    if (rc != 0)
        goto out;
    rc = kv_display(c, resp, false);
    protobuf_c_message_free_unpacked(resp, &metcd_pb_allocator);
out:
    kv_mem_free(&m);
    return rc;
}

static const struct ctl_flag txn_flags[] = {
    {"interactive", 'i', CTL_FLAG_BOOL, "false", "Input transaction in interactive mode"},
};

const struct ctl_cmd ctl_cmd_txn = {
    .name = "txn",
    .use = "txn [options]",
    .summary = "Txn processes all the requests in one transaction",
    .flags = txn_flags,
    .n_flags = 1,
    .run = cmd_txn,
};
