/* idgen/codec.c - error texts, key and value text: the growable buffer,
 * decimal numbers, and the JSON of segments/<tag> (decoded with jansson so
 * values written by hand with etcdctl are read as any JSON reader would). */
#include "idgen/internal.h"

#include "common/mem.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *idgen_strerror(int err)
{
    switch (err) {
    case IDGEN_OK:
        return "ok";
    case IDGEN_ENOMEM:
        return "idgen: out of memory";
    case IDGEN_EINVAL:
        return "idgen: invalid argument";
    case IDGEN_ENOT_READY:
        return "worker is not ready to serve request";
    case IDGEN_EDRIFT:
        return "clock drift. try later";
    case IDGEN_EDRIFT_LEAVE:
        return "clock drift too large to cover";
    case IDGEN_EWAIT:
        return "idgen: wait for the clock";
    case IDGEN_EEPOCH:
        return "idgen: the clock is outside the range of the epoch";
    case IDGEN_ETAG_NOT_FOUND:
        return "idgen: tag not found";
    case IDGEN_ETAG_EXISTS:
        return "idgen: tag already exists";
    case IDGEN_ESEGMENTS:
        return "idgen: both segments not ready (the cluster cannot be reached)";
    case IDGEN_EPENDING:
        return "idgen: segment loading";
    case IDGEN_EKV:
        return "idgen: the key-value store failed";
    case IDGEN_ENO_WORKER_ID:
        return "idgen: every worker id is taken";
    case IDGEN_ECORRUPT:
        return "idgen: a stored value cannot be parsed";
    case IDGEN_ESTOPPED:
        return "idgen: worker stopped";
    case IDGEN_ELOST:
        return "idgen: the worker lost its registration";
    case IDGEN_ETOO_MANY:
        return "idgen: too many tags";
    default:
        return "idgen: unknown error";
    }
}

/* ---- buffers ------------------------------------------------------------------------ */

static bool buf_reserve(idgen_buf *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t nc = b->cap ? b->cap : 64;
    while (nc < b->len + more + 1)
        nc *= 2;
    char *p = metcd_realloc(b->p, nc);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = nc;
    return true;
}

void idgen_buf_printf(idgen_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[128];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if (!buf_reserve(b, (size_t)n))
        return;
    if ((size_t)n < sizeof(small)) {
        memcpy(b->p + b->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void idgen_buf_json_str(idgen_buf *b, const char *s)
{
    idgen_buf_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            idgen_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            idgen_buf_printf(b, "\\u%04x", *p);
        else
            idgen_buf_printf(b, "%c", *p);
    }
    idgen_buf_printf(b, "\"");
}

void idgen_buf_reset(idgen_buf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->p)
        b->p[0] = 0;
}

void idgen_buf_free(idgen_buf *b)
{
    metcd_free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ---- numbers and prefixes -------------------------------------------------------------- */

int idgen_parse_i64(const char *s, size_t len, int64_t *out)
{
    char tmp[24];
    if (len == 0 || len >= sizeof(tmp))
        return IDGEN_ECORRUPT;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    for (size_t i = tmp[0] == '-' ? 1 : 0; i < len; i++)
        if (tmp[i] < '0' || tmp[i] > '9')
            return IDGEN_ECORRUPT;
    if (tmp[0] == '-' && len == 1)
        return IDGEN_ECORRUPT;
    errno = 0;
    char *end;
    long long v = strtoll(tmp, &end, 10);
    if (errno || *end)
        return IDGEN_ECORRUPT;
    *out = v;
    return 0;
}

char *idgen_prefix_dup(const char *prefix)
{
    if (!prefix || !prefix[0])
        prefix = IDGEN_DEFAULT_PREFIX;
    size_t n = strlen(prefix);
    bool slash = prefix[n - 1] == '/';
    char *p = metcd_malloc(n + (slash ? 1 : 2));
    if (!p)
        return NULL;
    memcpy(p, prefix, n);
    if (!slash)
        p[n++] = '/';
    p[n] = 0;
    return p;
}

bool idgen_tag_valid(const char *tag, size_t len)
{
    if (!tag || len == 0 || len > IDGEN_MAX_TAG_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = tag[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

/* ---- segments/<tag> ------------------------------------------------------------------ */

void idgen_tag_encode(idgen_buf *b, const idgen_tag_value *v)
{
    idgen_buf_printf(b, "{\"max_id\":%llu,\"step\":%lld,\"description\":",
                     (unsigned long long)v->max_id, (long long)v->step);
    idgen_buf_json_str(b, v->description ? v->description : "");
    idgen_buf_printf(b, ",\"update_time\":%lld}", (long long)v->update_time_ms);
}

int idgen_tag_decode(const char *s, size_t len, idgen_tag_value *out)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *o = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o)
        return jerr.text[0] && strstr(jerr.text, "memory") ? IDGEN_ENOMEM : IDGEN_ECORRUPT;
    int rc = IDGEN_ECORRUPT;
    json_t *max_id = json_object_get(o, "max_id");
    json_t *step = json_object_get(o, "step");
    json_t *desc = json_object_get(o, "description");
    json_t *ut = json_object_get(o, "update_time");
    if (!json_is_object(o) || !json_is_integer(max_id) || json_integer_value(max_id) < 0 ||
        !json_is_integer(step) || json_integer_value(step) < 1 || (desc && !json_is_string(desc)) ||
        (ut && !json_is_integer(ut)))
        goto out;
    out->max_id = (uint64_t)json_integer_value(max_id);
    out->step = json_integer_value(step);
    out->update_time_ms = ut ? json_integer_value(ut) : 0;
    out->description = metcd_strdup(desc ? json_string_value(desc) : "");
    rc = out->description ? 0 : IDGEN_ENOMEM;
out:
    json_decref(o);
    return rc;
}
