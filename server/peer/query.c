/* server/peer/query.c - the joining member's question "who is the cluster?"
 * (peer_query_members): one blocking, bounded exchange before the member's
 * loop runs: connect, send a HELLO_MEMBERS hello, read the hello answer and
 * one FRAME_MEMBERS frame. */
#include "server/peer/internal.h"
#include "server/peer/peer.h"

#include "common/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MEMBERS_MAX (1u << 20)

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for fd to be ready for `ev` until deadline: 0, or -1 on timeout. */
static int wait_fd(int fd, short ev, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = ev};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static int read_full(int fd, uint8_t *buf, size_t n, int64_t deadline)
{
    size_t got = 0;
    while (got < n) {
        if (wait_fd(fd, POLLIN, deadline) != 0)
            return -1;
        ssize_t r = read(fd, buf + got, n - got);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            return -1;
        if (r > 0)
            got += (size_t)r;
    }
    return 0;
}

int peer_query_members(const char *url, uint32_t timeout_ms, uint64_t *cluster_id,
                       uint8_t **payload, size_t *len, char *errbuf, size_t errlen)
{
    *payload = NULL;
    *len = 0;
    struct peer_url u;
    if (peer_url_parse(url, &u) != 0) {
        snprintf(errbuf, errlen, "%s: not a peer URL", url);
        return PEER_ERR_INVAL;
    }
    if (u.scheme == SCHEME_HTTPS) {
        snprintf(errbuf, errlen, "%s: joining over https peer URLs is not supported yet", url);
        peer_url_clear(&u);
        return PEER_ERR_INVAL;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = PEER_ERR_IO;
    int fd = -1;
    int64_t deadline = mono_ms() + (timeout_ms ? timeout_ms : 5000);
    if (peer_url_sockaddr(&u, &ss, &sl) != 0) {
        snprintf(errbuf, errlen, "%s: cannot resolve", url);
        rc = PEER_ERR_ADDR;
        goto out;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || (connect(fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS)) {
        snprintf(errbuf, errlen, "%s: %s", url, strerror(errno));
        goto out;
    }
    int soerr = 0;
    socklen_t el = sizeof(soerr);
    if (wait_fd(fd, POLLOUT, deadline) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) != 0 || soerr) {
        snprintf(errbuf, errlen, "%s: %s", url, soerr ? strerror(soerr) : "connect timed out");
        goto out;
    }
    struct peer_hello h = {.version = PEER_VERSION, .kind = HELLO_MEMBERS};
    uint8_t hello[PEER_HELLO_LEN], hdr[PEER_FRAME_HDR];
    peer_hello_encode(&h, hello);
    if (send(fd, hello, sizeof(hello), MSG_NOSIGNAL) != (ssize_t)sizeof(hello) ||
        read_full(fd, hello, sizeof(hello), deadline) != 0) {
        snprintf(errbuf, errlen, "%s: no answer to the members query", url);
        goto out;
    }
    struct peer_hello ans;
    if (peer_hello_decode(hello, &ans) != 0 || ans.status != HELLO_OK ||
        ans.kind != HELLO_MEMBERS) {
        snprintf(errbuf, errlen, "%s: members query refused (%s)", url,
                 peer_hello_status_text(ans.status));
        rc = PEER_ERR_INVAL;
        goto out;
    }
    if (read_full(fd, hdr, sizeof(hdr), deadline) != 0 || hdr[4] != FRAME_MEMBERS) {
        snprintf(errbuf, errlen, "%s: bad members answer", url);
        goto out;
    }
    uint32_t n = peer_get_u32(hdr);
    if (n > MEMBERS_MAX) {
        snprintf(errbuf, errlen, "%s: members answer of %u bytes is too large", url, n);
        rc = PEER_ERR_TOO_BIG;
        goto out;
    }
    uint8_t *buf = metcd_malloc(n ? n : 1);
    if (!buf) {
        rc = PEER_ERR_NOMEM;
        goto out;
    }
    if (read_full(fd, buf, n, deadline) != 0) {
        metcd_free(buf);
        snprintf(errbuf, errlen, "%s: members answer cut short", url);
        goto out;
    }
    *payload = buf;
    *len = n;
    *cluster_id = ans.cluster_id;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    peer_url_clear(&u);
    return rc;
}
