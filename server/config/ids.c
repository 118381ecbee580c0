/* server/config/ids.c - etcd's member / cluster ID derivation and the
 * --initial-cluster bootstrap checks. */
#include "server/config/ids.h"
#include "server/config/config.h"
#include "common/mem.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ids_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case IDS_ERR_NOMEM:
        return "out of memory";
    case IDS_ERR_PARSE:
        return "malformed initial cluster";
    case IDS_ERR_BOOTSTRAP:
        return "initial cluster does not match this member";
    case IDS_ERR_CRYPTO:
        return "SHA-1 failed";
    default:
        return "unknown ids error";
    }
}

static int sha1_u64(const void *data, size_t len, uint64_t *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen < 8)
        return IDS_ERR_CRYPTO;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | md[i];
    *out = v;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int ids_member_id(const char *const *peer_urls, size_t n, const char *token,
                  const int64_t *unix_now, uint64_t *out)
{
    const char **sorted = metcd_malloc((n ? n : 1) * sizeof(*sorted));
    if (!sorted)
        return IDS_ERR_NOMEM;
    size_t len = strlen(token) + 32;
    for (size_t i = 0; i < n; i++) {
        sorted[i] = peer_urls[i];
        len += strlen(peer_urls[i]);
    }
    qsort(sorted, n, sizeof(*sorted), cmp_str);
    char *buf = metcd_malloc(len);
    if (!buf) {
        metcd_free(sorted);
        return IDS_ERR_NOMEM;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(sorted[i]);
        memcpy(buf + o, sorted[i], l);
        o += l;
    }
    size_t tl = strlen(token);
    memcpy(buf + o, token, tl);
    o += tl;
    if (unix_now)
        o += (size_t)snprintf(buf + o, len - o, "%lld", (long long)*unix_now);
    int rc = sha1_u64(buf, o, out);
    metcd_free(buf);
    metcd_free(sorted);
    return rc;
}

int ids_cluster_id(const uint64_t *member_ids, size_t n, uint64_t *out)
{
    uint64_t *ids = metcd_malloc((n ? n : 1) * sizeof(*ids));
    unsigned char *b = metcd_malloc((n ? n : 1) * 8);
    int rc = IDS_ERR_NOMEM;
    if (!ids || !b)
        goto out;
    memcpy(ids, member_ids, n * sizeof(*ids));
    qsort(ids, n, sizeof(*ids), cmp_u64);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 8; k++)
            b[8 * i + (size_t)k] = (unsigned char)(ids[i] >> (56 - 8 * k));
    rc = sha1_u64(b, 8 * n, out);
out:
    metcd_free(ids);
    metcd_free(b);
    return rc;
}

void ids_cluster_free(struct ids_cluster *c)
{
    for (size_t i = 0; i < c->n; i++) {
        for (size_t j = 0; j < c->members[i].nurls; j++)
            metcd_free(c->members[i].urls[j]);
        metcd_free(c->members[i].urls);
        metcd_free(c->members[i].name);
    }
    metcd_free(c->members);
    memset(c, 0, sizeof(*c));
}

const struct ids_member *ids_cluster_member(const struct ids_cluster *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->members[i].name, name) == 0)
            return &c->members[i];
    return NULL;
}

static struct ids_member *member_get(struct ids_cluster *c, const char *name, size_t nl)
{
    for (size_t i = 0; i < c->n; i++)
        if (strlen(c->members[i].name) == nl && memcmp(c->members[i].name, name, nl) == 0)
            return &c->members[i];
    struct ids_member *nm = metcd_realloc(c->members, (c->n + 1) * sizeof(*nm));
    if (!nm)
        return NULL;
    c->members = nm;
    struct ids_member *m = &c->members[c->n];
    memset(m, 0, sizeof(*m));
    m->name = metcd_malloc(nl + 1);
    if (!m->name)
        return NULL;
    memcpy(m->name, name, nl);
    m->name[nl] = '\0';
    c->n++;
    return m;
}

static int cmp_member(const void *a, const void *b)
{
    return cmp_u64(&((const struct ids_member *)a)->id, &((const struct ids_member *)b)->id);
}

int ids_cluster_parse(struct ids_cluster *out, const char *s, const char *token, char *errmsg,
                      size_t errlen)
{
    struct ids_cluster c = {0};
    int rc = 0;
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t il = comma ? (size_t)(comma - p) : strlen(p);
        const char *next = comma ? comma + 1 : p + il;
        if (il == 0) {
            p = next;
            continue;
        }
        const char *eq = memchr(p, '=', il);
        size_t nl = eq ? (size_t)(eq - p) : il;
        const char *val = eq ? eq + 1 : p + il;
        size_t vl = il - nl - (eq ? 1 : 0);
        struct ids_member *m = member_get(&c, p, nl);
        if (!m) {
            rc = IDS_ERR_NOMEM;
            goto err;
        }
        /* etcd trims spaces around each URL (types.NewURLs). */
        while (vl && (*val == ' ' || *val == '\t')) {
            val++;
            vl--;
        }
        while (vl && (val[vl - 1] == ' ' || val[vl - 1] == '\t'))
            vl--;
        char *u = metcd_malloc(vl + 1);
        if (!u) {
            rc = IDS_ERR_NOMEM;
            goto err;
        }
        memcpy(u, val, vl);
        u[vl] = '\0';
        if (config_url_check(u, errmsg, errlen)) {
            metcd_free(u);
            rc = IDS_ERR_PARSE;
            goto err;
        }
        char **nu = metcd_realloc(m->urls, (m->nurls + 1) * sizeof(*nu));
        if (!nu) {
            metcd_free(u);
            rc = IDS_ERR_NOMEM;
            goto err;
        }
        m->urls = nu;
        m->urls[m->nurls++] = u;
        p = next;
    }
    uint64_t *idv = metcd_malloc((c.n ? c.n : 1) * sizeof(*idv));
    if (!idv) {
        rc = IDS_ERR_NOMEM;
        goto err;
    }
    for (size_t i = 0; i < c.n; i++) {
        struct ids_member *m = &c.members[i];
        qsort(m->urls, m->nurls, sizeof(*m->urls), cmp_str);
        if ((rc = ids_member_id((const char *const *)m->urls, m->nurls, token, NULL, &m->id))) {
            metcd_free(idv);
            goto err;
        }
        idv[i] = m->id;
    }
    rc = ids_cluster_id(idv, c.n, &c.cluster_id);
    metcd_free(idv);
    if (rc)
        goto err;
    qsort(c.members, c.n, sizeof(*c.members), cmp_member);
    *out = c;
    return 0;
err:
    ids_cluster_free(&c);
    memset(out, 0, sizeof(*out));
    if (rc == IDS_ERR_NOMEM)
        snprintf(errmsg, errlen, "%s", ids_strerror(rc));
    return rc;
}

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_add(struct sbuf *b, const char *s)
{
    size_t l = strlen(s);
    if (b->oom)
        return;
    if (b->len + l + 1 > b->cap) {
        size_t nc = (b->cap ? b->cap * 2 : 64) + l;
        char *np = metcd_realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, l + 1);
    b->len += l;
}

/* Sorted "name=url" pairs joined with ','; NULL on OOM. */
static char *pairs_string(const char *const *names, const char *const *urls, size_t n)
{
    char **pairs = metcd_calloc(n ? n : 1, sizeof(*pairs));
    struct sbuf b = {0};
    if (!pairs)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]) + strlen(urls[i]) + 2;
        pairs[i] = metcd_malloc(l);
        if (!pairs[i]) {
            b.oom = true;
            goto out;
        }
        snprintf(pairs[i], l, "%s=%s", names[i], urls[i]);
    }
    qsort(pairs, n, sizeof(*pairs), cmp_str);
    sb_add(&b, "");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_add(&b, ",");
        sb_add(&b, pairs[i]);
    }
out:
    for (size_t i = 0; i < n; i++)
        metcd_free(pairs[i]);
    metcd_free(pairs);
    if (b.oom) {
        metcd_free(b.p);
        return NULL;
    }
    return b.p;
}

char *ids_cluster_string(const struct ids_cluster *c)
{
    size_t total = 0;
    for (size_t i = 0; i < c->n; i++)
        total += c->members[i].nurls;
    const char **names = metcd_malloc((total ? total : 1) * sizeof(*names));
    const char **urls = metcd_malloc((total ? total : 1) * sizeof(*urls));
    char *s = NULL;
    if (names && urls) {
        size_t k = 0;
        for (size_t i = 0; i < c->n; i++)
            for (size_t j = 0; j < c->members[i].nurls; j++) {
                names[k] = c->members[i].name;
                urls[k++] = c->members[i].urls[j];
            }
        s = pairs_string(names, urls, total);
    }
    metcd_free(names);
    metcd_free(urls);
    return s;
}

/* Go %q of a []string into b. */
static void sb_quote_list(struct sbuf *b, const char *const *v, size_t n)
{
    sb_add(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_add(b, " ");
        sb_add(b, "\"");
        sb_add(b, v[i]);
        sb_add(b, "\"");
    }
    sb_add(b, "]");
}

static bool has_dup_url(const struct ids_cluster *c)
{
    for (size_t i = 0; i < c->n; i++)
        for (size_t j = 0; j < c->members[i].nurls; j++)
            for (size_t k = i; k < c->n; k++)
                for (size_t l = (k == i ? j + 1 : 0); l < c->members[k].nurls; l++)
                    if (strcmp(c->members[i].urls[j], c->members[k].urls[l]) == 0)
                        return true;
    return false;
}

static bool in_list(const char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static int advertise_matches(const struct ids_member *m, const char *name, const char *const *ap_in,
                             size_t n, char *errmsg, size_t errlen)
{
    int rc = IDS_ERR_NOMEM;
    const char **ap = metcd_malloc((n ? n : 1) * sizeof(*ap));
    const char **nm = metcd_malloc((n ? n : 1) * sizeof(*nm));
    struct sbuf why = {0}, miss = {0}, apstr = {0};
    char *umap = NULL;
    if (!ap || !nm)
        goto out;
    for (size_t i = 0; i < n; i++) {
        ap[i] = ap_in[i];
        nm[i] = name;
    }
    qsort(ap, n, sizeof(*ap), cmp_str);
    bool equal = n == m->nurls;
    for (size_t i = 0; equal && i < n; i++)
        equal = strcmp(ap[i], m->urls[i]) == 0;
    if (equal) {
        rc = 0;
        goto out;
    }
    if (n != m->nurls) {
        sb_add(&why, "len(");
        sb_quote_list(&why, ap, n);
        sb_add(&why, ") != len(");
        sb_quote_list(&why, (const char *const *)m->urls, m->nurls);
        sb_add(&why, ")");
    } else {
        for (size_t i = 0; i < n; i++)
            if (strcmp(ap[i], m->urls[i]) != 0) {
                sb_add(&why, "resolved urls: \"");
                sb_add(&why, ap[i]);
                sb_add(&why, "\" != \"");
                sb_add(&why, m->urls[i]);
                sb_add(&why, "\"");
                break;
            }
    }
    sb_add(&apstr, "");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_add(&apstr, ",");
        sb_add(&apstr, ap[i]);
    }
    /* URLs in --initial-cluster but not advertised (set semantics). */
    sb_add(&miss, "");
    bool any = false;
    for (size_t i = 0; i < m->nurls; i++) {
        if (in_list(ap, n, m->urls[i]) || (i && strcmp(m->urls[i], m->urls[i - 1]) == 0))
            continue;
        if (any)
            sb_add(&miss, ",");
        sb_add(&miss, name);
        sb_add(&miss, "=");
        sb_add(&miss, m->urls[i]);
        any = true;
    }
    if (why.oom || miss.oom || apstr.oom)
        goto out;
    rc = IDS_ERR_BOOTSTRAP;
    if (any) {
        snprintf(errmsg, errlen,
                 "--initial-cluster has %s but missing from --initial-advertise-peer-urls=%s (%s)",
                 miss.p, apstr.p, why.p ? why.p : "");
        goto out;
    }
    umap = pairs_string(nm, ap, n);
    if (!umap) {
        rc = IDS_ERR_NOMEM;
        goto out;
    }
    miss.len = 0;
    miss.p[0] = '\0';
    any = false;
    for (size_t i = 0; i < n; i++) {
        if (in_list((const char *const *)m->urls, m->nurls, ap[i]))
            continue;
        if (any)
            sb_add(&miss, ",");
        sb_add(&miss, ap[i]);
        any = true;
    }
    if (miss.oom) {
        rc = IDS_ERR_NOMEM;
        goto out;
    }
    if (any)
        snprintf(errmsg, errlen,
                 "--initial-advertise-peer-urls has %s but missing from --initial-cluster=%s",
                 miss.p, umap);
    else
        snprintf(errmsg, errlen, "failed to resolve %s to match --initial-cluster=%s (%s)", apstr.p,
                 umap, why.p ? why.p : "");
out:
    if (rc == IDS_ERR_NOMEM)
        snprintf(errmsg, errlen, "%s", ids_strerror(rc));
    metcd_free(umap);
    metcd_free(why.p);
    metcd_free(miss.p);
    metcd_free(apstr.p);
    metcd_free(ap);
    metcd_free(nm);
    return rc;
}

int ids_verify_bootstrap(const struct ids_cluster *c, const char *name,
                         const char *const *adv_peer_urls, size_t n, bool existing, char *errmsg,
                         size_t errlen)
{
    const struct ids_member *m = ids_cluster_member(c, name);
    if (!m) {
        snprintf(errmsg, errlen,
                 "couldn't find local name \"%s\" in the initial cluster configuration", name);
        return IDS_ERR_BOOTSTRAP;
    }
    if (!existing) {
        int rc = advertise_matches(m, name, adv_peer_urls, n, errmsg, errlen);
        if (rc)
            return rc;
    }
    if (has_dup_url(c)) {
        char *s = ids_cluster_string(c);
        if (!s) {
            snprintf(errmsg, errlen, "%s", ids_strerror(IDS_ERR_NOMEM));
            return IDS_ERR_NOMEM;
        }
        snprintf(errmsg, errlen, "initial cluster %s has duplicate url", s);
        metcd_free(s);
        return IDS_ERR_BOOTSTRAP;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (c->members[i].id == 0) {
            snprintf(errmsg, errlen, "cannot use 0 as member id");
            return IDS_ERR_BOOTSTRAP;
        }
        if (i && c->members[i].id == c->members[i - 1].id) {
            snprintf(errmsg, errlen, "member exists with identical ID %016llx",
                     (unsigned long long)c->members[i].id);
            return IDS_ERR_BOOTSTRAP;
        }
    }
    if (!existing && c->n == 0) {
        snprintf(errmsg, errlen, "initial cluster unset and no discovery URL found");
        return IDS_ERR_BOOTSTRAP;
    }
    return 0;
}

int ids_cluster_from_config(struct ids_cluster *out, struct config *cfg)
{
    char err[sizeof(cfg->errmsg) - 64];
    int rc =
        ids_cluster_parse(out, cfg->initial_cluster, cfg->initial_cluster_token, err, sizeof(err));
    if (rc == IDS_ERR_NOMEM)
        return CONFIG_ERR_NOMEM;
    if (rc) {
        snprintf(cfg->errmsg, sizeof(cfg->errmsg), "error setting up initial cluster: %s", err);
        return CONFIG_ERR_CLUSTER;
    }
    bool existing = strcmp(cfg->initial_cluster_state, "existing") == 0;
    rc = ids_verify_bootstrap(out, cfg->name,
                              (const char *const *)cfg->initial_advertise_peer_urls.v,
                              cfg->initial_advertise_peer_urls.n, existing, err, sizeof(err));
    if (rc) {
        ids_cluster_free(out);
        if (rc == IDS_ERR_NOMEM)
            return CONFIG_ERR_NOMEM;
        snprintf(cfg->errmsg, sizeof(cfg->errmsg), "%s", err);
        return CONFIG_ERR_CLUSTER;
    }
    return 0;
}
