/* server/peer/wire.c - the hello, frame headers and peer URLs. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "common/mem.h"
#include "server/peer/internal.h"

void peer_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

uint64_t peer_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

uint32_t peer_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void peer_frame_hdr(uint8_t out[PEER_FRAME_HDR], uint32_t len, uint8_t type)
{
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    out[4] = type;
}

void peer_hello_encode(const struct peer_hello *h, uint8_t out[PEER_HELLO_LEN])
{
    out[0] = (uint8_t)(PEER_MAGIC >> 24);
    out[1] = (uint8_t)(PEER_MAGIC >> 16);
    out[2] = (uint8_t)(PEER_MAGIC >> 8);
    out[3] = (uint8_t)PEER_MAGIC;
    out[4] = (uint8_t)(h->version >> 8);
    out[5] = (uint8_t)h->version;
    out[6] = h->kind;
    out[7] = h->status;
    peer_put_u64(out + 8, h->cluster_id);
    peer_put_u64(out + 16, h->from);
    peer_put_u64(out + 24, h->to);
}

int peer_hello_decode(const uint8_t in[PEER_HELLO_LEN], struct peer_hello *h)
{
    if (peer_get_u32(in) != PEER_MAGIC)
        return -1;
    h->version = (uint16_t)((in[4] << 8) | in[5]);
    h->kind = in[6];
    h->status = in[7];
    h->cluster_id = peer_get_u64(in + 8);
    h->from = peer_get_u64(in + 16);
    h->to = peer_get_u64(in + 24);
    return 0;
}

const char *peer_hello_status_text(int status)
{
    switch (status) {
    case HELLO_OK:
        return "ok";
    case HELLO_BAD_CLUSTER:
        return "cluster ID mismatch";
    case HELLO_UNKNOWN_SENDER:
        return "sender is not a known member";
    case HELLO_WRONG_RECIPIENT:
        return "recipient member ID mismatch";
    case HELLO_BAD_VERSION:
        return "unsupported protocol version";
    case HELLO_BAD_KIND:
        return "unknown stream kind";
    default:
        return "refused";
    }
}

void peer_url_clear(struct peer_url *u)
{
    metcd_free(u->text);
    metcd_free(u->host);
    memset(u, 0, sizeof(*u));
}

int peer_url_parse(const char *s, struct peer_url *u)
{
    memset(u, 0, sizeof(*u));
    const char *rest;
    if (strncmp(s, "http://", 7) == 0) {
        u->scheme = SCHEME_HTTP;
        rest = s + 7;
    } else if (strncmp(s, "https://", 8) == 0) {
        u->scheme = SCHEME_HTTPS;
        rest = s + 8;
    } else if (strncmp(s, "unix://", 7) == 0) {
        u->scheme = SCHEME_UNIX;
        rest = s + 7;
    } else {
        return PEER_ERR_INVAL;
    }
    if (u->scheme == SCHEME_UNIX) {
        if (!*rest || strlen(rest) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return PEER_ERR_INVAL;
        u->host = metcd_strdup(rest);
    } else {
        const char *hs = rest, *he, *colon;
        if (*rest == '[') {
            hs = rest + 1;
            he = strchr(hs, ']');
            if (!he || he[1] != ':')
                return PEER_ERR_INVAL;
            colon = he + 1;
        } else {
            colon = strrchr(rest, ':');
            if (!colon)
                return PEER_ERR_INVAL;
            he = colon;
        }
        if (he == hs)
            return PEER_ERR_INVAL;
        char *end;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (end == colon + 1 || port > 65535 || (*end && strcmp(end, "/") != 0))
            return PEER_ERR_INVAL;
        u->port = (uint16_t)port;
        u->host = metcd_malloc((size_t)(he - hs) + 1);
        if (u->host) {
            memcpy(u->host, hs, (size_t)(he - hs));
            u->host[he - hs] = 0;
        }
    }
    u->text = metcd_strdup(s);
    if (!u->host || !u->text) {
        peer_url_clear(u);
        return PEER_ERR_NOMEM;
    }
    return 0;
}

int peer_url_sockaddr(const struct peer_url *u, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (u->scheme == SCHEME_UNIX) {
        struct sockaddr_un *un = (struct sockaddr_un *)ss;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, u->host, strlen(u->host) + 1);
        *len = (socklen_t)sizeof(*un);
        return 0;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, u->host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(u->port);
        *len = (socklen_t)sizeof(*in4);
        return 0;
    }
    if (inet_pton(AF_INET6, u->host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(u->port);
        *len = (socklen_t)sizeof(*in6);
        return 0;
    }
    /* A name ("localhost"): its first IPv4 address, as Go does for
     * localhost; then any. getaddrinfo reads /etc/hosts or asks DNS. */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(u->host, NULL, &hints, &res) != 0 || !res)
        return PEER_ERR_ADDR;
    struct addrinfo *pick = res;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    }
    if (pick->ai_addrlen > sizeof(*ss)) {
        freeaddrinfo(res);
        return PEER_ERR_ADDR;
    }
    memcpy(ss, pick->ai_addr, pick->ai_addrlen);
    *len = pick->ai_addrlen;
    if (ss->ss_family == AF_INET)
        in4->sin_port = htons(u->port);
    else if (ss->ss_family == AF_INET6)
        in6->sin6_port = htons(u->port);
    freeaddrinfo(res);
    return 0;
}
