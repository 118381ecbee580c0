/* server/member/auth_jwt.h - etcd 3.4's JWT auth tokens (auth/jwt.go);
 * shared by auth.c and the unit tests only. */
#ifndef METCD_SERVER_MEMBER_AUTH_JWT_H
#define METCD_SERVER_MEMBER_AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct auth_jwt;

#define AUTH_JWT_VERIFY_ONLY (-2) /* only a public key: cannot sign */

/* True when --auth-token names JWT ("jwt" or "jwt,..."). */
bool auth_jwt_wanted(const char *opts);

/* Parses "jwt,pub-key=FILE,priv-key=FILE,sign-method=M,ttl=D" (etcd's
 * options; ttl a Go duration, default 5m) and loads the key. Returns 0, or
 * -1 with the reason in err. Caller frees with auth_jwt_close. */
int auth_jwt_open(struct auth_jwt **out, const char *opts, char *err, size_t errlen);
void auth_jwt_close(struct auth_jwt *j); /* NULL-safe */

/* A token for user at auth revision, expiring ttl after now_s. *out is
 * the caller's (metcd_free). Returns 0, AUTH_JWT_VERIFY_ONLY, or -1. */
int auth_jwt_sign(const struct auth_jwt *j, const char *user, uint64_t revision, int64_t now_s,
                  char **out);

/* Checks token's algorithm, signature and expiry; fills user (truncated
 * to user_len) and the revision claim. Returns 0 or -1 (invalid). */
int auth_jwt_verify(const struct auth_jwt *j, const char *token, int64_t now_s, char *user,
                    size_t user_len, uint64_t *revision);

int64_t auth_jwt_now_s(void);

#endif
