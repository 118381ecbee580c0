/* server/member/auth_perm.c - see auth_perm.h. */
#include "server/member/auth_perm.h"

#include <stdlib.h>
#include <string.h>

int auth_bytes_cmp(auth_bytes a, auth_bytes b)
{
    if (a.n == 0)
        return b.n == 0 ? 0 : 1;
    if (b.n == 0)
        return -1;
    size_t n = a.n < b.n ? a.n : b.n;
    int c = memcmp(a.p, b.p, n);
    if (c)
        return c;
    return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
}

static int ivl_cmp(const void *x, const void *y)
{
    return auth_bytes_cmp(((const auth_ivl *)x)->b, ((const auth_ivl *)y)->b);
}

bool auth_range_permitted(auth_ivl *v, size_t n, const uint8_t *key, size_t klen,
                          const uint8_t *end, size_t elen)
{
    auth_bytes k = {key, klen};
    if (elen == 0) {
        /* a point: some interval holds it */
        for (size_t i = 0; i < n; i++)
            if (auth_bytes_cmp(v[i].b, k) <= 0 && auth_bytes_cmp(k, v[i].e) < 0)
                return true;
        return false;
    }
    auth_bytes e = (elen == 1 && end[0] == 0) ? (auth_bytes){NULL, 0} : (auth_bytes){end, elen};
    /* the intervals overlapping [k, e), by begin, must cover it without a gap */
    if (n > 1)
        qsort(v, n, sizeof(*v), ivl_cmp);
    bool seen = false;
    auth_bytes min_b = {0}, max_e = {0};
    for (size_t i = 0; i < n; i++) {
        if (!(auth_bytes_cmp(v[i].b, e) < 0 && auth_bytes_cmp(k, v[i].e) < 0))
            continue;
        if (!seen) {
            seen = true;
            min_b = v[i].b;
            max_e = v[i].e;
            continue;
        }
        if (auth_bytes_cmp(max_e, v[i].b) < 0)
            return false;
        if (auth_bytes_cmp(v[i].e, max_e) > 0)
            max_e = v[i].e;
    }
    return seen && auth_bytes_cmp(max_e, e) >= 0 && auth_bytes_cmp(min_b, k) <= 0;
}
