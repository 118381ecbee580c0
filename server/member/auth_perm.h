/* server/member/auth_perm.h - the key-range arithmetic of etcd's
 * permission checks (auth/range_perm_cache.go over pkg/adt's interval
 * tree); pure, shared by auth.c and the unit tests only. */
#ifndef METCD_SERVER_MEMBER_AUTH_PERM_H
#define METCD_SERVER_MEMBER_AUTH_PERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A key where the empty one stands for +infinity (adt's
 * BytesAffineComparable). Borrowed bytes. */
typedef struct auth_bytes {
    const uint8_t *p;
    size_t n;
} auth_bytes;

/* A granted interval [b, e). A single-key permission is [key, key "\0"). */
typedef struct auth_ivl {
    auth_bytes b, e;
    uint8_t *own; /* auth.c's: storage of a single key's end */
} auth_ivl;

/* The byte order of keys, with the empty key after every other. */
int auth_bytes_cmp(auth_bytes a, auth_bytes b);

/* Whether the n intervals grant [key, end): with elen 0, the key alone
 * (some interval holds it); with end "\0", every key from key; otherwise
 * the intervals that overlap [key, end), merged where they touch or
 * overlap, must cover it without a gap (adt's Contains). Sorts v. */
bool auth_range_permitted(auth_ivl *v, size_t n, const uint8_t *key, size_t klen,
                          const uint8_t *end, size_t elen);

#endif
