/* server/peer/snapshot.c - database snapshots over their own connection:
 * the sender streams the file in bounded chunks as the socket drains (one
 * step per write event, never a blocking loop), the receiver writes them to
 * an unlinked file and checks the sha256 before handing it over. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/mem.h"
#include "server/channelz/channelz.h"
#include "server/peer/internal.h"

#define SNAP_OUT_HWM (1u << 20)   /* refill the socket up to this much */
#define SNAP_OUT_LWM (256u << 10) /* refill when it drained below this */

void peer_snap_clear(struct peer_conn *c)
{
    if (c->snap_fd >= 0)
        close(c->snap_fd);
    c->snap_fd = -1;
    if (c->sha)
        EVP_MD_CTX_free(c->sha);
    c->sha = NULL;
    metcd_free(c->snap_hdr);
    c->snap_hdr = NULL;
    raft_msg_free(&c->snap_msg);
    c->snap_have_hdr = false;
}

static int sha_start(struct peer_conn *c)
{
    c->sha = EVP_MD_CTX_new();
    if (!c->sha || EVP_DigestInit_ex(c->sha, EVP_sha256(), NULL) != 1)
        return PEER_ERR_NOMEM;
    return 0;
}

/* ---- sending ----------------------------------------------------------------- */

int peer_snap_start(struct peer *p, const raft_msg *m, int fd)
{
    struct peer_transport *t = p->t;
    struct stat st;
    int rc;
    if (p->n_urls == 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return PEER_ERR_INVAL;
    }
    uint8_t *enc;
    size_t enc_len;
    rc = raft_msg_encode(m, &enc, &enc_len);
    if (rc) {
        close(fd);
        return rc == RAFT_ENOMEM ? PEER_ERR_NOMEM : PEER_ERR_INVAL;
    }
    if (enc_len + 8 > PEER_MAX_MSG_FRAME) {
        metcd_free(enc);
        close(fd);
        return PEER_ERR_TOO_BIG;
    }
    struct peer_conn *c = peer_conn_new(t, CONN_OUT_SNAP);
    if (!c) {
        metcd_free(enc);
        close(fd);
        return PEER_ERR_NOMEM;
    }
    c->snap_fd = fd; /* from here peer_conn_close closes it */
    c->snap_size = (uint64_t)st.st_size;
    c->snap_index = m->snapshot->meta.index;
    c->snap_hdr_len = enc_len + 8;
    c->snap_hdr = metcd_malloc(c->snap_hdr_len);
    if (!c->snap_hdr || sha_start(c) != 0) {
        metcd_free(enc);
        peer_conn_close(c);
        return PEER_ERR_NOMEM;
    }
    peer_put_u64(c->snap_hdr, c->snap_size);
    memcpy(c->snap_hdr + 8, enc, enc_len);
    metcd_free(enc);
    /* The URL our message stream works on, else the next one to try. */
    const struct peer_url *url = &p->urls[p->next_url % p->n_urls];
    for (size_t i = 0; p->out && p->out->state == CS_ACTIVE && i < p->n_urls; i++)
        if (strcmp(p->urls[i].text, p->out->url) == 0)
            url = &p->urls[i];
    struct peer_hello h = {.version = PEER_VERSION,
                           .kind = HELLO_SNAP,
                           .cluster_id = t->cfg.cluster_id,
                           .from = t->cfg.self_id,
                           .to = p->id};
    rc = peer_conn_dial(c, url, &h);
    if (rc) {
        peer_conn_close(c);
        return rc;
    }
    c->p = p;
    p->snap_out = c;
    peer_logf(t, 'I', "start to send database snapshot [index: %llu, to %016llx, size %llu]...",
              (unsigned long long)c->snap_index, (unsigned long long)p->id,
              (unsigned long long)c->snap_size);
    return 0;
}

static void snap_out_done(struct peer_conn *c)
{
    struct peer *p = c->p;
    if (p) {
        p->st.snapshots_sent++;
        peer_logf(c->t, 'I', "database snapshot [index: %llu, to: %016llx] sent out successfully",
                  (unsigned long long)c->snap_index, (unsigned long long)p->id);
        peer_trace(p, CHANNELZ_SEV_INFO, "snapshot sent (index %llu, %llu bytes)",
                   (unsigned long long)c->snap_index, (unsigned long long)c->snap_size);
        peer_notify_snap(p, false);
    }
    peer_conn_close(c);
}

void peer_snap_out_failed(struct peer_conn *c, const char *why)
{
    struct peer *p = c->p;
    if (p) {
        p->st.snapshots_failed++;
        peer_logf(c->t, 'W',
                  "database snapshot [index: %llu, to: %016llx] failed to be sent out (%s)",
                  (unsigned long long)c->snap_index, (unsigned long long)p->id, why);
        peer_trace(p, CHANNELZ_SEV_ERROR, "snapshot failed (index %llu): %s",
                   (unsigned long long)c->snap_index, why);
        peer_notify_snap(p, true);
    }
    peer_conn_close(c);
}

void peer_snap_out_fill(struct peer_conn *c)
{
    while (c->state == CS_ACTIVE && peer_conn_queued(c) < SNAP_OUT_HWM) {
        if (c->snap_off == c->snap_size) {
            uint8_t *md = metcd_malloc(EVP_MAX_MD_SIZE);
            unsigned int md_len = 0;
            if (!md || EVP_DigestFinal_ex(c->sha, md, &md_len) != 1 || md_len != 32 ||
                peer_conn_write_frame(c, FRAME_SNAP_END, md, 32, true) != 0) {
                if (md_len != 32)
                    metcd_free(md);
                peer_snap_out_failed(c, "out of memory");
                return;
            }
            c->state = CS_AWAIT_ACK;
            return;
        }
        uint64_t left = c->snap_size - c->snap_off;
        size_t n = left < PEER_SNAP_CHUNK ? (size_t)left : PEER_SNAP_CHUNK;
        uint8_t *buf = metcd_malloc(n);
        if (!buf) {
            peer_snap_out_failed(c, "out of memory");
            return;
        }
        ssize_t got = pread(c->snap_fd, buf, n, (off_t)c->snap_off);
        if (got <= 0) {
            char why[128];
            snprintf(why, sizeof(why), "read database file: %s",
                     got < 0 ? strerror(errno) : "file shrank");
            metcd_free(buf);
            peer_snap_out_failed(c, why);
            return;
        }
        EVP_DigestUpdate(c->sha, buf, (size_t)got);
        c->snap_off += (uint64_t)got;
        if (peer_conn_write_frame(c, FRAME_SNAP_CHUNK, buf, (size_t)got, true) != 0) {
            peer_snap_out_failed(c, "out of memory");
            return;
        }
    }
}

void peer_snap_out_read(struct peer_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    char why[160];
    if (c->state == CS_CONNECTING || c->state == CS_HELLO) {
        if (evbuffer_get_length(in) < PEER_HELLO_LEN)
            return;
        if (peer_check_reply(c, why, sizeof(why))) {
            peer_snap_out_failed(c, why);
            return;
        }
        c->state = CS_ACTIVE;
        struct timeval tv = {.tv_sec = c->t->cfg.snap_timeout_ms / 1000,
                             .tv_usec = (suseconds_t)(c->t->cfg.snap_timeout_ms % 1000) * 1000};
        bufferevent_set_timeouts(c->bev, &tv, &tv);
        bufferevent_setwatermark(c->bev, EV_WRITE, SNAP_OUT_LWM, 0);
        uint8_t *hdr = c->snap_hdr;
        c->snap_hdr = NULL;
        if (peer_conn_write_frame(c, FRAME_SNAP_HDR, hdr, c->snap_hdr_len, true) != 0) {
            peer_snap_out_failed(c, "out of memory");
            return;
        }
        peer_snap_out_fill(c);
        return;
    }
    if (c->state != CS_AWAIT_ACK) {
        peer_snap_out_failed(c, "unexpected data from the peer");
        return;
    }
    if (evbuffer_get_length(in) < PEER_FRAME_HDR + 1)
        return;
    uint8_t ack[PEER_FRAME_HDR + 1];
    evbuffer_remove(in, ack, sizeof(ack));
    if (peer_get_u32(ack) != 1 || ack[4] != FRAME_SNAP_ACK)
        peer_snap_out_failed(c, "bad acknowledgement from the peer");
    else if (ack[5] != 0)
        peer_snap_out_failed(c, "the peer rejected the snapshot");
    else
        snap_out_done(c);
}

/* ---- receiving ----------------------------------------------------------------- */

static int open_tmp(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    char path[4096];
    snprintf(path, sizeof(path), "%s/metcd-snap-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int snap_in_header(struct peer_conn *c, const uint8_t *p, size_t len)
{
    struct peer_transport *t = c->t;
    uint64_t from = c->p->id;
    if (c->snap_have_hdr || len < 8) {
        peer_logf(t, 'W', "closed the snapshot stream from peer %016llx: bad header",
                  (unsigned long long)from);
        return -1;
    }
    uint64_t size = peer_get_u64(p);
    if (size > t->cfg.snap_max_bytes) {
        peer_logf(t, 'W',
                  "closed the snapshot stream from peer %016llx: database of %llu bytes "
                  "over the limit of %llu",
                  (unsigned long long)from, (unsigned long long)size,
                  (unsigned long long)t->cfg.snap_max_bytes);
        return -1;
    }
    if (raft_msg_decode(p + 8, len - 8, &c->snap_msg) != 0 || c->snap_msg.type != RAFT_MSG_SNAP ||
        !c->snap_msg.snapshot || c->snap_msg.from != from || c->snap_msg.to != t->cfg.self_id) {
        peer_logf(t, 'W',
                  "closed the snapshot stream from peer %016llx: undecodable or foreign "
                  "snapshot message",
                  (unsigned long long)from);
        return -1;
    }
    c->snap_fd = open_tmp(t->snap_dir);
    if (c->snap_fd < 0) {
        peer_logf(t, 'E', "failed to create a snapshot file in %s (%s)", t->snap_dir,
                  strerror(errno));
        return -1;
    }
    if (sha_start(c) != 0)
        return -1;
    c->snap_have_hdr = true;
    c->snap_size = size;
    c->snap_off = 0;
    c->snap_index = c->snap_msg.snapshot->meta.index;
    peer_logf(t, 'I', "receiving database snapshot [index: %llu, from: %016llx, size %llu]...",
              (unsigned long long)c->snap_index, (unsigned long long)from,
              (unsigned long long)size);
    return 0;
}

static int snap_in_end(struct peer_conn *c, const uint8_t *p, size_t len)
{
    struct peer_transport *t = c->t;
    struct peer *peer = c->p;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (len != 32 || c->snap_off != c->snap_size || EVP_DigestFinal_ex(c->sha, md, &md_len) != 1 ||
        md_len != 32 || memcmp(md, p, 32) != 0) {
        peer_logf(t, 'E', "failed to verify database snapshot [index: %llu, from: %016llx]: %s",
                  (unsigned long long)c->snap_index, (unsigned long long)peer->id,
                  c->snap_off != c->snap_size ? "short stream" : "sha256 mismatch");
        return -1;
    }
    if (lseek(c->snap_fd, 0, SEEK_SET) != 0) {
        peer_logf(t, 'E', "failed to rewind a received snapshot (%s)", strerror(errno));
        return -1;
    }
    uint8_t ok = 0;
    if (peer_conn_write_frame(c, FRAME_SNAP_ACK, &ok, 1, false) != 0)
        return -1;
    peer->st.snapshots_received++;
    peer_logf(t, 'I',
              "received and saved database snapshot [index: %llu, from: %016llx] "
              "successfully",
              (unsigned long long)c->snap_index, (unsigned long long)peer->id);
    int fd = c->snap_fd;
    c->snap_fd = -1;
    raft_msg m = c->snap_msg;
    memset(&c->snap_msg, 0, sizeof(c->snap_msg));
    c->snap_have_hdr = false;
    if (t->cb.on_snapshot)
        t->cb.on_snapshot(t->cb.arg, &m, fd);
    else
        close(fd);
    raft_msg_free(&m);
    return 0;
}

int peer_snap_in_frame(struct peer_conn *c, uint8_t type, const uint8_t *p, size_t len)
{
    switch (type) {
    case FRAME_SNAP_HDR:
        return snap_in_header(c, p, len);
    case FRAME_SNAP_CHUNK:
        if (!c->snap_have_hdr || len > c->snap_size - c->snap_off) {
            peer_logf(c->t, 'W', "closed the snapshot stream from peer %016llx: %s",
                      (unsigned long long)c->p->id,
                      c->snap_have_hdr ? "more data than announced" : "data before header");
            return -1;
        }
        if (write_all(c->snap_fd, p, len) != 0) {
            peer_logf(c->t, 'E', "failed to write a received snapshot (%s)", strerror(errno));
            return -1;
        }
        EVP_DigestUpdate(c->sha, p, len);
        c->snap_off += len;
        c->p->st.bytes_received += PEER_FRAME_HDR + len;
        return 0;
    case FRAME_SNAP_END:
        if (!c->snap_have_hdr)
            return -1;
        return snap_in_end(c, p, len);
    default:
        return -1;
    }
}
