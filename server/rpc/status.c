/* server/rpc/status.c - error texts, status names, grpc-message
 * percent-encoding and grpc-timeout (gRPC over HTTP/2, "Requests" and
 * "Responses"), clocks and the nghttp2 allocator. */
#include "server/rpc/internal.h"

#include "common/mem.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *rpc_strerror(int err)
{
    switch (err) {
    case RPC_OK: return "success";
    case RPC_ERR_NOMEM: return "rpc: out of memory";
    case RPC_ERR_INVAL: return "rpc: invalid argument";
    case RPC_ERR_EXISTS: return "rpc: already registered";
    case RPC_ERR_ADDR: return "rpc: cannot resolve or bind address";
    case RPC_ERR_IO: return "rpc: socket error";
    case RPC_ERR_CLOSED: return "rpc: call or connection closed";
    case RPC_ERR_FULL: return "rpc: outbound queue full";
    case RPC_ERR_TOO_BIG: return "rpc: message larger than the limit";
    case RPC_ERR_PROTO: return "rpc: protocol error";
    case RPC_ERR_STATE: return "rpc: not allowed in this state";
    default: return "rpc: unknown error";
    }
}

static const char *const code_names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
};

const char *rpc_code_name(int code)
{
    if (code < 0 || code > RPC_CODE_UNAUTHENTICATED)
        return "UNKNOWN";
    return code_names[code];
}

static bool pct_unreserved(unsigned char ch)
{
    return ch >= 0x20 && ch <= 0x7e && ch != '%';
}

char *rpc_pct_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += pct_unreserved(*p) ? 1 : 3;
    char *out = metcd_malloc(n + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (pct_unreserved(*p)) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = 0;
    return out;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

char *rpc_pct_decode(const char *s, size_t len)
{
    char *out = metcd_malloc(len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = 0;
    return out;
}

int64_t rpc_timeout_parse(const char *s, size_t len)
{
    if (len < 2 || len > 9)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    switch (s[len - 1]) {
    case 'H': return (int64_t)(v * 3600000);
    case 'M': return (int64_t)(v * 60000);
    case 'S': return (int64_t)(v * 1000);
    case 'm': return (int64_t)v;
    case 'u': return (int64_t)((v + 999) / 1000);
    case 'n': return (int64_t)((v + 999999) / 1000000);
    default: return -1;
    }
}

void rpc_timeout_format(uint64_t ms, char *buf, size_t cap)
{
    if (ms < 100000000)
        snprintf(buf, cap, "%llum", (unsigned long long)ms);
    else if (ms / 1000 < 100000000)
        snprintf(buf, cap, "%lluS", (unsigned long long)((ms + 999) / 1000));
    else
        snprintf(buf, cap, "%lluM", (unsigned long long)((ms / 60000 + 1) % 100000000));
}

const struct addrinfo *rpc_addrinfo_pick(const struct addrinfo *res)
{
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET)
            return a;
    return res;
}

void rpc_ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

uint64_t rpc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t rpc_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t rpc_loop_wall_ns(struct event_base *base)
{
    struct timeval tv;
    if (event_base_gettimeofday_cached(base, &tv) != 0)
        return rpc_wall_ns();
    return (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
}

void rpc_addr_format(const struct sockaddr *sa, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        port = ntohs(in->sin_port);
        snprintf(buf, cap, "%s:%u", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        port = ntohs(in6->sin6_port);
        snprintf(buf, cap, "[%s]:%u", ip, port);
    } else {
        snprintf(buf, cap, "local");
    }
}

static void *h2_malloc(size_t n, void *ud)
{
    (void)ud;
    return metcd_malloc(n);
}

static void h2_free(void *p, void *ud)
{
    (void)ud;
    metcd_free(p);
}

static void *h2_calloc(size_t n, size_t sz, void *ud)
{
    (void)ud;
    return metcd_calloc(n, sz);
}

static void *h2_realloc(void *p, size_t n, void *ud)
{
    (void)ud;
    return metcd_realloc(p, n);
}

nghttp2_mem rpc_nghttp2_mem = {NULL, h2_malloc, h2_free, h2_calloc, h2_realloc};
