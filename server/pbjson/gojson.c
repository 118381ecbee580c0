/* server/pbjson/gojson.c - the parts of Go's encoding/json, encoding/base64
 * and strconv whose behaviour the gateway shows (see internal.h).
 *
 * The scanner is a byte-at-a-time state machine with the same states as
 * Go's (encoding/json/scanner.go), so an input is accepted or refused at
 * the same byte with the same words. The tree builder listens to its
 * opcodes and builds jansson values. */
#include "server/pbjson/internal.h"

#include "common/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GJ_MAX_DEPTH 10000 /* Go's maxNestingDepth */

/* ---- allocator ---- */

static void *jansson_malloc(size_t n)
{
    return metcd_malloc(n);
}

static void jansson_free(void *p)
{
    metcd_free(p);
}

static pthread_once_t alloc_once = PTHREAD_ONCE_INIT;

static void set_alloc(void)
{
    json_set_alloc_funcs(jansson_malloc, jansson_free);
}

void pbjson_init_alloc(void)
{
    pthread_once(&alloc_once, set_alloc);
}

/* ---- output buffer ---- */

void gj_put(struct gj_buf *b, const char *s, size_t n)
{
    if (b->nomem)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = metcd_realloc(b->p, cap);
        if (!p) {
            b->nomem = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void put_c(struct gj_buf *b, char c)
{
    gj_put(b, &c, 1);
}

/* ---- UTF-8 (utf8.DecodeRune) ---- */

/* Decodes one rune of s[0..n) (n > 0): returns its width, or 0 for an
 * invalid encoding (Go's RuneError of width 1). */
static int utf8_decode(const unsigned char *s, size_t n, uint32_t *r)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *r = c;
        return 1;
    }
    int w;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        w = 2;
        *r = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        w = 3;
        *r = c & 0x0f;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        w = 4;
        *r = c & 0x07;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if ((size_t)w > n)
        return 0;
    for (int i = 1; i < w; i++) {
        unsigned char x = s[i];
        if (x < lo || x > hi)
            return 0;
        lo = 0x80;
        hi = 0xbf;
        *r = (*r << 6) | (x & 0x3f);
    }
    return w;
}

static void put_rune(struct gj_buf *b, uint32_t r)
{
    char t[4];
    size_t n;
    if (r < 0x80) {
        t[0] = (char)r;
        n = 1;
    } else if (r < 0x800) {
        t[0] = (char)(0xc0 | (r >> 6));
        t[1] = (char)(0x80 | (r & 0x3f));
        n = 2;
    } else if (r < 0x10000) {
        t[0] = (char)(0xe0 | (r >> 12));
        t[1] = (char)(0x80 | ((r >> 6) & 0x3f));
        t[2] = (char)(0x80 | (r & 0x3f));
        n = 3;
    } else {
        t[0] = (char)(0xf0 | (r >> 18));
        t[1] = (char)(0x80 | ((r >> 12) & 0x3f));
        t[2] = (char)(0x80 | ((r >> 6) & 0x3f));
        t[3] = (char)(0x80 | (r & 0x3f));
        n = 4;
    }
    gj_put(b, t, n);
}

/* ---- strconv.Quote ---- */

/* strconv.IsPrint, close enough outside ASCII: Latin-1 and general
 * punctuation controls, spaces and format characters are not printable. */
static bool is_print(uint32_t r)
{
    if (r < 0x80)
        return r >= 0x20 && r < 0x7f;
    if (r < 0xa1 || r == 0xad)
        return false;
    if (r >= 0x2000 && r <= 0x200f)
        return false;
    if (r >= 0x2028 && r <= 0x202f)
        return false;
    if (r >= 0x205f && r <= 0x206f)
        return false;
    if (r == 0x3000 || r == 0xfeff || (r >= 0xfff9 && r <= 0xfffb))
        return false;
    if ((r & 0xfffe) == 0xfffe || (r >= 0xe000 && r <= 0xf8ff) || r >= 0xf0000)
        return false;
    return true;
}

/* One rune as strconv.Quote writes it inside its quotes (quote: the
 * quote character being used). */
static void quote_rune(struct gj_buf *b, uint32_t r, bool valid, unsigned char raw, char quote)
{
    char t[16];
    if (!valid) {
        snprintf(t, sizeof t, "\\x%02x", raw);
        gj_put(b, t, strlen(t));
        return;
    }
    if (r == (uint32_t)quote || r == '\\') {
        put_c(b, '\\');
        put_c(b, (char)r);
        return;
    }
    if (is_print(r)) {
        put_rune(b, r);
        return;
    }
    switch (r) {
    case '\a': gj_put(b, "\\a", 2); return;
    case '\b': gj_put(b, "\\b", 2); return;
    case '\f': gj_put(b, "\\f", 2); return;
    case '\n': gj_put(b, "\\n", 2); return;
    case '\r': gj_put(b, "\\r", 2); return;
    case '\t': gj_put(b, "\\t", 2); return;
    case '\v': gj_put(b, "\\v", 2); return;
    default: break;
    }
    if (r < ' ' || r == 0x7f)
        snprintf(t, sizeof t, "\\x%02x", (unsigned)r);
    else if (r < 0x10000)
        snprintf(t, sizeof t, "\\u%04x", (unsigned)r);
    else
        snprintf(t, sizeof t, "\\U%08x", (unsigned)r);
    gj_put(b, t, strlen(t));
}

static void copy_out(struct gj_buf *b, char *buf, size_t bufsize)
{
    if (!bufsize)
        return;
    size_t n = b->nomem || !b->p ? 0 : b->len;
    if (n >= bufsize)
        n = bufsize - 1;
    if (n)
        memcpy(buf, b->p, n);
    buf[n] = 0;
    metcd_free(b->p);
}

/* strconv.Quote of s[0..n) appended to b. */
static void put_quoted(struct gj_buf *b, const unsigned char *u, size_t n)
{
    put_c(b, '"');
    for (size_t i = 0; i < n;) {
        uint32_t r = 0;
        int w = utf8_decode(u + i, n - i, &r);
        quote_rune(b, r, w > 0, u[i], '"');
        i += w > 0 ? (size_t)w : 1;
    }
    put_c(b, '"');
}

void gj_quote(const char *s, size_t n, char *buf, size_t bufsize)
{
    struct gj_buf b = {0};
    put_quoted(&b, (const unsigned char *)s, n);
    copy_out(&b, buf, bufsize);
}

int pbjson_go_quote(const void *s, size_t n, char **out, size_t *len)
{
    struct gj_buf b = {0};
    put_quoted(&b, s, n);
    put_c(&b, 0);
    if (b.nomem) {
        metcd_free(b.p);
        return PBJSON_ERR_NOMEM;
    }
    *out = b.p;
    *len = b.len - 1;
    return 0;
}

int pbjson_go_string(const void *s, size_t n, char **out, size_t *len)
{
    struct gj_buf b = {0};
    gj_put_string(&b, s, n);
    put_c(&b, 0);
    if (b.nomem) {
        metcd_free(b.p);
        return PBJSON_ERR_NOMEM;
    }
    *out = b.p;
    *len = b.len - 1;
    return 0;
}

/* scanner.go quoteChar: the byte as a rune, in single quotes. */
static void quote_char(struct gj_buf *b, unsigned char c)
{
    if (c == '\'') {
        gj_put(b, "'\\''", 4);
        return;
    }
    if (c == '"') {
        gj_put(b, "'\"'", 3);
        return;
    }
    put_c(b, '\'');
    quote_rune(b, c, true, c, '"');
    put_c(b, '\'');
}

/* ---- the scanner ---- */

enum op {
    OP_CONTINUE,
    OP_BEGIN_LITERAL,
    OP_BEGIN_OBJECT,
    OP_OBJECT_KEY,   /* ':' after a key */
    OP_OBJECT_VALUE, /* ',' after a member's value */
    OP_END_OBJECT,
    OP_BEGIN_ARRAY,
    OP_ARRAY_VALUE, /* ',' after an element */
    OP_END_ARRAY,
    OP_SKIP_SPACE,
    OP_END,   /* top-level value ended before this byte */
    OP_ERROR,
};

enum state {
    ST_BEGIN_VALUE_OR_EMPTY,
    ST_BEGIN_VALUE,
    ST_BEGIN_STRING_OR_EMPTY,
    ST_BEGIN_STRING,
    ST_END_VALUE,
    ST_END_TOP,
    ST_IN_STRING,
    ST_IN_STRING_ESC,
    ST_ESC_U1, /* \u and 0..3 hex digits seen */
    ST_ESC_U2,
    ST_ESC_U3,
    ST_ESC_U4,
    ST_NEG,
    ST_1,
    ST_0,
    ST_DOT,
    ST_DOT0,
    ST_E,
    ST_E_SIGN,
    ST_E0,
    ST_LIT, /* inside true/false/null: `lit` and `lit_i` say where */
    ST_ERROR,
};

enum parse_state { PS_OBJECT_KEY, PS_OBJECT_VALUE, PS_ARRAY_VALUE };

struct scanner {
    enum state st;
    const char *lit; /* "true", "false" or "null" */
    size_t lit_i;    /* next expected character of lit */
    unsigned char *ps;
    size_t depth, cap;
    bool end_top;
    bool has_err;
    char err[160];
};

static void sc_init(struct scanner *s)
{
    memset(s, 0, sizeof *s);
    s->st = ST_BEGIN_VALUE;
}

static void sc_free(struct scanner *s)
{
    metcd_free(s->ps);
    s->ps = NULL;
}

static int sc_error(struct scanner *s, unsigned char c, const char *context)
{
    struct gj_buf b = {0};
    gj_put(&b, "invalid character ", 18);
    quote_char(&b, c);
    put_c(&b, ' ');
    gj_put(&b, context, strlen(context));
    copy_out(&b, s->err, sizeof s->err);
    s->has_err = true;
    s->st = ST_ERROR;
    return OP_ERROR;
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Returns OP_ERROR with s->err "out of memory" on allocation failure
 * (the caller tells it apart by nomem). */
static int sc_push(struct scanner *s, unsigned char c, enum parse_state p, int op, bool *nomem)
{
    if (s->depth == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        unsigned char *n = metcd_realloc(s->ps, cap);
        if (!n) {
            *nomem = true;
            s->st = ST_ERROR;
            return OP_ERROR;
        }
        s->ps = n;
        s->cap = cap;
    }
    s->ps[s->depth++] = (unsigned char)p;
    if (s->depth <= GJ_MAX_DEPTH)
        return op;
    return sc_error(s, c, "exceeded max depth");
}

static void sc_pop(struct scanner *s)
{
    s->depth--;
    if (s->depth == 0) {
        s->st = ST_END_TOP;
        s->end_top = true;
    } else {
        s->st = ST_END_VALUE;
    }
}

static int sc_step(struct scanner *s, unsigned char c, bool *nomem);

static int st_end_top(struct scanner *s, unsigned char c)
{
    if (!is_space(c)) {
        sc_error(s, c, "after top-level value");
        s->st = ST_ERROR;
    }
    return OP_END;
}

static int st_end_value(struct scanner *s, unsigned char c)
{
    if (s->depth == 0) {
        s->st = ST_END_TOP;
        s->end_top = true;
        return st_end_top(s, c);
    }
    if (is_space(c)) {
        s->st = ST_END_VALUE;
        return OP_SKIP_SPACE;
    }
    unsigned char *p = &s->ps[s->depth - 1];
    switch (*p) {
    case PS_OBJECT_KEY:
        if (c == ':') {
            *p = PS_OBJECT_VALUE;
            s->st = ST_BEGIN_VALUE;
            return OP_OBJECT_KEY;
        }
        return sc_error(s, c, "after object key");
    case PS_OBJECT_VALUE:
        if (c == ',') {
            *p = PS_OBJECT_KEY;
            s->st = ST_BEGIN_STRING;
            return OP_OBJECT_VALUE;
        }
        if (c == '}') {
            sc_pop(s);
            return OP_END_OBJECT;
        }
        return sc_error(s, c, "after object key:value pair");
    default:
        if (c == ',') {
            s->st = ST_BEGIN_VALUE;
            return OP_ARRAY_VALUE;
        }
        if (c == ']') {
            sc_pop(s);
            return OP_END_ARRAY;
        }
        return sc_error(s, c, "after array element");
    }
}

static int st_begin_value(struct scanner *s, unsigned char c, bool *nomem)
{
    if (is_space(c))
        return OP_SKIP_SPACE;
    switch (c) {
    case '{':
        s->st = ST_BEGIN_STRING_OR_EMPTY;
        return sc_push(s, c, PS_OBJECT_KEY, OP_BEGIN_OBJECT, nomem);
    case '[':
        s->st = ST_BEGIN_VALUE_OR_EMPTY;
        return sc_push(s, c, PS_ARRAY_VALUE, OP_BEGIN_ARRAY, nomem);
    case '"':
        s->st = ST_IN_STRING;
        return OP_BEGIN_LITERAL;
    case '-':
        s->st = ST_NEG;
        return OP_BEGIN_LITERAL;
    case '0':
        s->st = ST_0;
        return OP_BEGIN_LITERAL;
    case 't':
        s->st = ST_LIT;
        s->lit = "true";
        s->lit_i = 1;
        return OP_BEGIN_LITERAL;
    case 'f':
        s->st = ST_LIT;
        s->lit = "false";
        s->lit_i = 1;
        return OP_BEGIN_LITERAL;
    case 'n':
        s->st = ST_LIT;
        s->lit = "null";
        s->lit_i = 1;
        return OP_BEGIN_LITERAL;
    default:
        break;
    }
    if (c >= '1' && c <= '9') {
        s->st = ST_1;
        return OP_BEGIN_LITERAL;
    }
    return sc_error(s, c, "looking for beginning of value");
}

static int sc_step(struct scanner *s, unsigned char c, bool *nomem)
{
    switch (s->st) {
    case ST_BEGIN_VALUE_OR_EMPTY:
        if (is_space(c))
            return OP_SKIP_SPACE;
        if (c == ']')
            return st_end_value(s, c);
        return st_begin_value(s, c, nomem);
    case ST_BEGIN_VALUE:
        return st_begin_value(s, c, nomem);
    case ST_BEGIN_STRING_OR_EMPTY:
        if (is_space(c))
            return OP_SKIP_SPACE;
        if (c == '}') {
            s->ps[s->depth - 1] = PS_OBJECT_VALUE;
            return st_end_value(s, c);
        }
        /* fall through */
    case ST_BEGIN_STRING:
        if (is_space(c))
            return OP_SKIP_SPACE;
        if (c == '"') {
            s->st = ST_IN_STRING;
            return OP_BEGIN_LITERAL;
        }
        return sc_error(s, c, "looking for beginning of object key string");
    case ST_END_VALUE:
        return st_end_value(s, c);
    case ST_END_TOP:
        return st_end_top(s, c);
    case ST_IN_STRING:
        if (c == '"') {
            s->st = ST_END_VALUE;
            return OP_CONTINUE;
        }
        if (c == '\\') {
            s->st = ST_IN_STRING_ESC;
            return OP_CONTINUE;
        }
        if (c < 0x20)
            return sc_error(s, c, "in string literal");
        return OP_CONTINUE;
    case ST_IN_STRING_ESC:
        switch (c) {
        case 'b': case 'f': case 'n': case 'r': case 't': case '\\': case '/': case '"':
            s->st = ST_IN_STRING;
            return OP_CONTINUE;
        case 'u':
            s->st = ST_ESC_U1;
            return OP_CONTINUE;
        default:
            return sc_error(s, c, "in string escape code");
        }
    case ST_ESC_U1:
    case ST_ESC_U2:
    case ST_ESC_U3:
    case ST_ESC_U4:
        if (!is_hex(c))
            return sc_error(s, c, "in \\u hexadecimal character escape");
        s->st = s->st == ST_ESC_U4 ? ST_IN_STRING : (enum state)(s->st + 1);
        return OP_CONTINUE;
    case ST_NEG:
        if (c == '0') {
            s->st = ST_0;
            return OP_CONTINUE;
        }
        if (c >= '1' && c <= '9') {
            s->st = ST_1;
            return OP_CONTINUE;
        }
        return sc_error(s, c, "in numeric literal");
    case ST_1:
        if (c >= '0' && c <= '9')
            return OP_CONTINUE;
        /* fall through */
    case ST_0:
        if (c == '.') {
            s->st = ST_DOT;
            return OP_CONTINUE;
        }
        if (c == 'e' || c == 'E') {
            s->st = ST_E;
            return OP_CONTINUE;
        }
        return st_end_value(s, c);
    case ST_DOT:
        if (c >= '0' && c <= '9') {
            s->st = ST_DOT0;
            return OP_CONTINUE;
        }
        return sc_error(s, c, "after decimal point in numeric literal");
    case ST_DOT0:
        if (c >= '0' && c <= '9')
            return OP_CONTINUE;
        if (c == 'e' || c == 'E') {
            s->st = ST_E;
            return OP_CONTINUE;
        }
        return st_end_value(s, c);
    case ST_E:
        if (c == '+' || c == '-') {
            s->st = ST_E_SIGN;
            return OP_CONTINUE;
        }
        /* fall through */
    case ST_E_SIGN:
        if (c >= '0' && c <= '9') {
            s->st = ST_E0;
            return OP_CONTINUE;
        }
        return sc_error(s, c, "in exponent of numeric literal");
    case ST_E0:
        if (c >= '0' && c <= '9')
            return OP_CONTINUE;
        return st_end_value(s, c);
    case ST_LIT:
        if ((unsigned char)s->lit[s->lit_i] == c) {
            if (s->lit[++s->lit_i] == 0)
                s->st = ST_END_VALUE;
            return OP_CONTINUE;
        } else {
            char ctx[48];
            snprintf(ctx, sizeof ctx, "in literal %s (expecting '%c')", s->lit,
                     s->lit[s->lit_i]);
            return sc_error(s, c, ctx);
        }
    case ST_ERROR:
    default:
        return OP_ERROR;
    }
}

/* json.Unmarshal's checkValid: the whole text must be one value. */
static int check_valid(const char *text, size_t len, char *err, size_t errlen, bool *nomem)
{
    struct scanner s;
    sc_init(&s);
    int rc = 0;
    for (size_t i = 0; i < len; i++) {
        if (sc_step(&s, (unsigned char)text[i], nomem) == OP_ERROR) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && !s.has_err && !s.end_top) {
        sc_step(&s, ' ', nomem);
        if (!s.end_top && !s.has_err) {
            snprintf(s.err, sizeof s.err, "unexpected end of JSON input");
            s.has_err = true;
        }
    }
    if (s.has_err)
        snprintf(err, errlen, "%s", s.err);
    sc_free(&s);
    return s.has_err || *nomem ? -1 : 0;
}

/* ---- unquote (decode.go unquoteBytes) ---- */

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

static long getu4(const unsigned char *s, size_t n)
{
    if (n < 6 || s[0] != '\\' || s[1] != 'u')
        return -1;
    long r = 0;
    for (int i = 2; i < 6; i++) {
        if (!is_hex(s[i]))
            return -1;
        r = r * 16 + hex_val(s[i]);
    }
    return r;
}

/* s[0..n) is a scanned string literal with its quotes. */
static int unquote(const char *raw, size_t n, struct gj_buf *b)
{
    const unsigned char *s = (const unsigned char *)raw + 1;
    n -= 2;
    gj_put(b, "", 0); /* an empty string still gets a buffer */
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c == '\\') {
            unsigned char e = s[i + 1];
            switch (e) {
            case '"': case '\\': case '/': case '\'':
                put_c(b, (char)e);
                i += 2;
                continue;
            case 'b': put_c(b, '\b'); i += 2; continue;
            case 'f': put_c(b, '\f'); i += 2; continue;
            case 'n': put_c(b, '\n'); i += 2; continue;
            case 'r': put_c(b, '\r'); i += 2; continue;
            case 't': put_c(b, '\t'); i += 2; continue;
            default: break;
            }
            long r = getu4(s + i, n - i); /* the scanner saw \u and 4 hex digits */
            i += 6;
            if (r >= 0xd800 && r < 0xe000) {
                long r2 = getu4(s + i, n - i);
                if (r < 0xdc00 && r2 >= 0xdc00 && r2 < 0xe000) {
                    put_rune(b, (uint32_t)(0x10000 + ((r - 0xd800) << 10) + (r2 - 0xdc00)));
                    i += 6;
                    continue;
                }
                r = 0xfffd;
            }
            put_rune(b, (uint32_t)r);
            continue;
        }
        uint32_t r;
        int w = utf8_decode(s + i, n - i, &r);
        if (w == 0) {
            put_rune(b, 0xfffd);
            i++;
        } else {
            gj_put(b, (const char *)s + i, (size_t)w);
            i += (size_t)w;
        }
    }
    return b->nomem ? PBJSON_ERR_NOMEM : 0;
}

/* ---- the decoder: one value of a stream into a tree ---- */

struct frame {
    json_t *v;     /* object or array being filled (owned until attached) */
    char *key;     /* pending member name (owned) */
    size_t key_len;
    bool have_key;
};

struct builder {
    struct gj_doc *doc;
    struct frame *fr;
    size_t n, cap;
    size_t lit_start;
    bool in_lit;
};

static int add_span(struct gj_doc *doc, const json_t *v, size_t off, size_t len, bool number)
{
    if (doc->n_spans == doc->cap_spans) {
        size_t cap = doc->cap_spans ? doc->cap_spans * 2 : 16;
        struct gj_span *n = metcd_realloc(doc->spans, cap * sizeof *n);
        if (!n)
            return PBJSON_ERR_NOMEM;
        doc->spans = n;
        doc->cap_spans = cap;
    }
    doc->spans[doc->n_spans++] = (struct gj_span){v, off, len, number};
    return 0;
}

/* Hands v (owned) to the enclosing container, or makes it the root. */
static int attach(struct builder *b, json_t *v)
{
    if (b->n == 0) {
        b->doc->root = v;
        return 0;
    }
    struct frame *f = &b->fr[b->n - 1];
    int rc;
    if (json_is_array(f->v)) {
        rc = json_array_append_new(f->v, v);
    } else {
        rc = json_object_setn_new_nocheck(f->v, f->key, f->key_len, v);
        metcd_free(f->key);
        f->key = NULL;
        f->have_key = false;
    }
    return rc ? PBJSON_ERR_NOMEM : 0;
}

/* The literal text[start..end) is complete. */
static int end_literal(struct builder *b, const char *text, size_t end)
{
    size_t start = b->lit_start;
    b->in_lit = false;
    const char *p = text + start;
    size_t n = end - start;
    json_t *v = NULL;
    if (p[0] == '"') {
        struct gj_buf s = {0};
        if (unquote(p, n, &s) != 0) {
            metcd_free(s.p);
            return PBJSON_ERR_NOMEM;
        }
        struct frame *f = b->n ? &b->fr[b->n - 1] : NULL;
        if (f && json_is_object(f->v) && !f->have_key) {
            f->key = s.p;
            f->key_len = s.len;
            f->have_key = true;
            return 0;
        }
        v = json_stringn_nocheck(s.p, s.len);
        metcd_free(s.p);
        if (!v || add_span(b->doc, v, start, n, false) != 0) {
            json_decref(v);
            return PBJSON_ERR_NOMEM;
        }
    } else if (p[0] == 't') {
        v = json_true();
    } else if (p[0] == 'f') {
        v = json_false();
    } else if (p[0] == 'n') {
        v = json_null();
    } else {
        v = json_stringn_nocheck(p, n);
        if (!v || add_span(b->doc, v, start, n, true) != 0) {
            json_decref(v);
            return PBJSON_ERR_NOMEM;
        }
    }
    return attach(b, v);
}

static int push_frame(struct builder *b, json_t *v)
{
    if (!v)
        return PBJSON_ERR_NOMEM;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct frame *n = metcd_realloc(b->fr, cap * sizeof *n);
        if (!n) {
            json_decref(v);
            return PBJSON_ERR_NOMEM;
        }
        b->fr = n;
        b->cap = cap;
    }
    b->fr[b->n++] = (struct frame){.v = v};
    return 0;
}

static int pop_frame(struct builder *b)
{
    struct frame f = b->fr[--b->n];
    metcd_free(f.key);
    return attach(b, f.v);
}

static void builder_free(struct builder *b)
{
    for (size_t i = 0; i < b->n; i++) {
        json_decref(b->fr[i].v);
        metcd_free(b->fr[i].key);
    }
    metcd_free(b->fr);
}

static int cmp_span(const void *a, const void *b)
{
    const json_t *x = ((const struct gj_span *)a)->v, *y = ((const struct gj_span *)b)->v;
    return x < y ? -1 : x > y;
}

void gj_doc_free(struct gj_doc *doc)
{
    json_decref(doc->root);
    metcd_free(doc->spans);
    memset(doc, 0, sizeof *doc);
}

/* Feeds one scanner opcode to the builder. i: the byte's offset. */
static int build(struct builder *b, const char *text, size_t i, int op)
{
    int rc = 0;
    if (b->in_lit && op != OP_CONTINUE) {
        rc = end_literal(b, text, i);
        if (rc)
            return rc;
    }
    switch (op) {
    case OP_BEGIN_LITERAL:
        b->in_lit = true;
        b->lit_start = i;
        break;
    case OP_BEGIN_OBJECT:
        rc = push_frame(b, json_object());
        break;
    case OP_BEGIN_ARRAY:
        rc = push_frame(b, json_array());
        break;
    case OP_END_OBJECT:
    case OP_END_ARRAY:
        rc = pop_frame(b);
        break;
    default:
        break;
    }
    return rc;
}

int gj_read(const char *buf, size_t len, size_t *pos, struct gj_doc *doc, char *err,
            size_t errlen)
{
    memset(doc, 0, sizeof *doc);
    doc->text = buf;
    struct scanner s;
    sc_init(&s);
    struct builder b = {.doc = doc};
    bool nomem = false;
    int rc = 0;
    size_t i = *pos;
    for (; i < len; i++) {
        int op = sc_step(&s, (unsigned char)buf[i], &nomem);
        if (op == OP_ERROR) {
            rc = nomem ? PBJSON_ERR_NOMEM : PBJSON_ERR_SYNTAX;
            goto out;
        }
        if (op == OP_END) /* ended before this byte */
            break;
        rc = build(&b, buf, i, op);
        if (rc)
            goto out;
        if ((op == OP_END_OBJECT || op == OP_END_ARRAY) && s.depth == 0) {
            i++;
            goto done;
        }
    }
    if (i == len) {
        /* the stream ends: the value must be complete with a space after it */
        int op = sc_step(&s, ' ', &nomem);
        if (op != OP_END) {
            bool blank = true;
            for (size_t j = *pos; j < len && blank; j++)
                blank = is_space((unsigned char)buf[j]);
            if (blank) {
                rc = PBJSON_EOF;
            } else {
                snprintf(s.err, sizeof s.err, "unexpected EOF");
                rc = PBJSON_ERR_SYNTAX;
            }
            goto out;
        }
    }
    rc = build(&b, buf, i, OP_END);
    if (rc)
        goto out;
done:
    *pos = i;
    if (doc->n_spans)
        qsort(doc->spans, doc->n_spans, sizeof *doc->spans, cmp_span);
out:
    if (rc == PBJSON_ERR_SYNTAX)
        snprintf(err, errlen, "%s", s.err);
    else if (rc == PBJSON_ERR_NOMEM)
        snprintf(err, errlen, "out of memory");
    builder_free(&b);
    sc_free(&s);
    if (rc)
        gj_doc_free(doc);
    return rc;
}

static const struct gj_span *find_span(const struct gj_doc *doc, const json_t *v)
{
    struct gj_span key = {.v = v};
    if (!doc->n_spans)
        return NULL;
    return bsearch(&key, doc->spans, doc->n_spans, sizeof key, cmp_span);
}

enum gj_kind gj_kind_of(const struct gj_doc *doc, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return GJ_OBJECT;
    case JSON_ARRAY: return GJ_ARRAY;
    case JSON_TRUE:
    case JSON_FALSE: return GJ_BOOL;
    case JSON_NULL: return GJ_NULL;
    case JSON_STRING: {
        const struct gj_span *sp = find_span(doc, v);
        return sp && sp->number ? GJ_NUMBER : GJ_STRING;
    }
    default: return GJ_NUMBER;
    }
}

const char *gj_kind_name(enum gj_kind k)
{
    static const char *const names[] = {"null", "bool", "number", "string", "object", "array"};
    return names[k];
}

bool gj_raw(const struct gj_doc *doc, const json_t *v, const char **p, size_t *n)
{
    const struct gj_span *sp = find_span(doc, v);
    if (!sp)
        return false;
    *p = doc->text + sp->off;
    *n = sp->len;
    return true;
}

/* ---- json.Unmarshal of a scalar ---- */

/* strconv.ParseInt / ParseUint (base 10, 64 bits) of s[0..n). */
static bool parse_int(const char *s, size_t n, bool is_signed, union gj_num *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '-' || s[i] == '+')) {
        if (!is_signed)
            return false;
        neg = s[i] == '-';
        i++;
    }
    if (i == n)
        return false;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (!is_signed) {
        out->u = v;
        return true;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        out->i = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return false;
        out->i = (int64_t)v;
    }
    return true;
}

int gj_unmarshal_number(const char *text, size_t len, enum gj_num_type t,
                        const char *type_name, union gj_num *out, bool *set, char *err,
                        size_t errlen)
{
    bool nomem = false;
    *set = false;
    if (check_valid(text, len, err, errlen, &nomem) != 0) {
        if (nomem) {
            snprintf(err, errlen, "out of memory");
            return PBJSON_ERR_NOMEM;
        }
        return PBJSON_ERR_SYNTAX;
    }
    while (len && is_space((unsigned char)*text)) {
        text++;
        len--;
    }
    while (len && is_space((unsigned char)text[len - 1]))
        len--;
    const char *what;
    switch (text[0]) {
    case 'n':
        return 0;
    case 't':
    case 'f':
        what = "bool";
        break;
    case '"':
        what = "string";
        break;
    case '{':
        what = "object";
        break;
    case '[':
        what = "array";
        break;
    default:
        what = NULL;
        break;
    }
    if (what) {
        snprintf(err, errlen, "json: cannot unmarshal %s into Go value of type %s", what,
                 type_name);
        return PBJSON_ERR_VALUE;
    }
    bool ok;
    union gj_num v = {0};
    switch (t) {
    case GJ_INT64:
        ok = parse_int(text, len, true, &v);
        break;
    case GJ_INT32:
        ok = parse_int(text, len, true, &v) && v.i >= INT32_MIN && v.i <= INT32_MAX;
        break;
    case GJ_UINT64:
        ok = parse_int(text, len, false, &v);
        break;
    case GJ_UINT32:
        ok = parse_int(text, len, false, &v) && v.u <= UINT32_MAX;
        break;
    default: {
        char tmp[400];
        ok = len < sizeof tmp;
        if (ok) {
            memcpy(tmp, text, len);
            tmp[len] = 0;
            errno = 0;
            char *end;
            v.d = t == GJ_FLOAT32 ? (double)strtof(tmp, &end) : strtod(tmp, &end);
            ok = errno != ERANGE || fabs(v.d) < 1; /* Go accepts underflow to 0 */
            if (!ok || isinf(v.d))
                ok = false;
        }
        break;
    }
    }
    if (!ok) {
        snprintf(err, errlen, "json: cannot unmarshal number %.*s into Go value of type %s",
                 (int)(len > 200 ? 200 : len), text, type_name);
        return PBJSON_ERR_VALUE;
    }
    *out = v;
    *set = true;
    return 0;
}

/* ---- base64.StdEncoding ---- */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* decodeQuantum of Go's base64 (padding '=', not strict). Returns 0 or
 * -1 with *bad set; *si advances; *n gets the bytes written; *stop is set
 * when padding ended the data. */
static int decode_quantum(const unsigned char *src, size_t len, size_t *si, uint8_t *dst,
                          size_t *n, size_t *bad)
{
    int dbuf[4] = {0};
    int dlen = 4;
    for (int j = 0; j < 4; j++) {
        if (*si == len) {
            if (j == 0) {
                *n = 0;
                return 0;
            }
            *bad = *si - (size_t)j; /* padding is required */
            return -1;
        }
        unsigned char in = src[(*si)++];
        int out = b64val(in);
        if (out >= 0) {
            dbuf[j] = out;
            continue;
        }
        if (in == '\n' || in == '\r') {
            j--;
            continue;
        }
        if (in != '=') {
            *bad = *si - 1;
            return -1;
        }
        /* padding */
        if (j == 0 || j == 1) {
            *bad = *si - 1;
            return -1;
        }
        if (j == 2) {
            while (*si < len && (src[*si] == '\n' || src[*si] == '\r'))
                (*si)++;
            if (*si == len) {
                *bad = len;
                return -1;
            }
            if (src[*si] != '=') {
                *bad = *si - 1;
                return -1;
            }
            (*si)++;
        }
        while (*si < len && (src[*si] == '\n' || src[*si] == '\r'))
            (*si)++;
        if (*si < len) {
            /* the quantum's bytes count, then the error */
            dlen = j;
            uint32_t val = (uint32_t)dbuf[0] << 18 | (uint32_t)dbuf[1] << 12 |
                           (uint32_t)dbuf[2] << 6 | (uint32_t)dbuf[3];
            uint8_t t[3] = {(uint8_t)(val >> 16), (uint8_t)(val >> 8), (uint8_t)val};
            memcpy(dst, t, (size_t)(dlen - 1));
            *n = (size_t)(dlen - 1);
            *bad = *si;
            return -1;
        }
        dlen = j;
        break;
    }
    uint32_t val = (uint32_t)dbuf[0] << 18 | (uint32_t)dbuf[1] << 12 | (uint32_t)dbuf[2] << 6 |
                   (uint32_t)dbuf[3];
    uint8_t t[3] = {(uint8_t)(val >> 16), (uint8_t)(val >> 8), (uint8_t)val};
    memcpy(dst, t, (size_t)(dlen - 1));
    *n = (size_t)(dlen - 1);
    return 0;
}

long gj_base64_decode(const char *s, size_t n, uint8_t *dst, size_t *bad_at)
{
    const unsigned char *src = (const unsigned char *)s;
    size_t si = 0, out = 0;
    while (si < n) {
        size_t k = 0;
        if (decode_quantum(src, n, &si, dst + out, &k, bad_at) != 0)
            return -1;
        out += k;
        if (k < 3)
            break; /* padding or the end */
    }
    /* after padding, only the end may follow (decode_quantum checked) */
    return (long)out;
}

int gj_base64_encode(const uint8_t *p, size_t n, char **out, size_t *olen)
{
    size_t len = (n + 2) / 3 * 4;
    char *s = metcd_malloc(len + 1);
    if (!s)
        return PBJSON_ERR_NOMEM;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        s[o++] = b64chars[v >> 18];
        s[o++] = b64chars[(v >> 12) & 63];
        s[o++] = b64chars[(v >> 6) & 63];
        s[o++] = b64chars[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        s[o++] = b64chars[v >> 18];
        s[o++] = b64chars[(v >> 12) & 63];
        s[o++] = '=';
        s[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        s[o++] = b64chars[v >> 18];
        s[o++] = b64chars[(v >> 12) & 63];
        s[o++] = b64chars[(v >> 6) & 63];
        s[o++] = '=';
    }
    s[o] = 0;
    *out = s;
    *olen = o;
    return 0;
}

/* ---- Marshal's string and float forms (encode.go) ---- */

void gj_put_string(struct gj_buf *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    put_c(b, '"');
    size_t start = 0, i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
                i++;
                continue;
            }
            gj_put(b, str + start, i - start);
            switch (c) {
            case '\\': gj_put(b, "\\\\", 2); break;
            case '"': gj_put(b, "\\\"", 2); break;
            case '\n': gj_put(b, "\\n", 2); break;
            case '\r': gj_put(b, "\\r", 2); break;
            case '\t': gj_put(b, "\\t", 2); break;
            default: {
                char t[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                gj_put(b, t, 6);
                break;
            }
            }
            i++;
            start = i;
            continue;
        }
        uint32_t r;
        int w = utf8_decode(s + i, n - i, &r);
        if (w == 0) {
            gj_put(b, str + start, i - start);
            gj_put(b, "\\ufffd", 6);
            i++;
            start = i;
            continue;
        }
        if (r == 0x2028 || r == 0x2029) {
            gj_put(b, str + start, i - start);
            gj_put(b, r == 0x2028 ? "\\u2028" : "\\u2029", 6);
            i += (size_t)w;
            start = i;
            continue;
        }
        i += (size_t)w;
    }
    gj_put(b, str + start, n - start);
    put_c(b, '"');
}

/* The shortest decimal digits that read back as f (strconv's -1
 * precision): digits (no dot) and the decimal exponent of the first one. */
static void shortest(double f, int bits, char *digits, int *exp10)
{
    char tmp[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, f);
        bool same = bits == 32 ? (float)strtod(tmp, NULL) == (float)f : strtod(tmp, NULL) == f;
        if (same)
            break;
    }
    /* tmp: d[.ddd]e[+-]xx */
    char *e = strchr(tmp, 'e');
    *exp10 = atoi(e + 1);
    size_t k = 0;
    for (char *p = tmp; p < e; p++)
        if (*p >= '0' && *p <= '9')
            digits[k++] = *p;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = 0;
}

void gj_put_float(struct gj_buf *b, double f, int bits)
{
    if (isnan(f) || isinf(f)) {
        gj_put(b, "null", 4); /* Go refuses to marshal them; jsonpb quotes them earlier */
        return;
    }
    if (f == 0) {
        gj_put(b, signbit(f) ? "-0" : "0", signbit(f) ? 2 : 1);
        return;
    }
    double a = fabs(f);
    bool expo = bits == 64 ? (a < 1e-6 || a >= 1e21)
                           : ((float)a < 1e-6f || (float)a >= 1e21f);
    char digits[40];
    int e10;
    shortest(f, bits, digits, &e10);
    char out[80];
    size_t o = 0;
    if (f < 0)
        out[o++] = '-';
    size_t nd = strlen(digits);
    if (expo) {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, nd - 1);
            o += nd - 1;
        }
        /* Go: e+21, e-7 (two digits minimum, then e-09 cleaned to e-9) */
        int ae = e10 < 0 ? -e10 : e10;
        o += (size_t)snprintf(out + o, sizeof out - o, "e%c%s%d", e10 < 0 ? '-' : '+',
                              (ae < 10 && e10 >= 0) ? "0" : "", ae);
    } else if (e10 < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int z = -1; z > e10; z--)
            out[o++] = '0';
        memcpy(out + o, digits, nd);
        o += nd;
    } else {
        for (int i = 0; i <= e10 || (size_t)i < nd; i++) {
            if (i == e10 + 1)
                out[o++] = '.';
            out[o++] = (size_t)i < nd ? digits[i] : '0';
        }
    }
    gj_put(b, out, o);
}
