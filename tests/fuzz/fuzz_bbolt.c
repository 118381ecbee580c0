/* tests/fuzz/fuzz_bbolt.c - snapshot files (backend/bbolt.c).
 *
 * A snapshot file comes from whoever hands it to `snapshot status` or
 * `restore`, so bbolt_read must refuse any damage cleanly. Random bytes
 * rarely get past the meta page checksum, so each input is a recipe: its
 * tail drives the writer (buckets and keys of any size, out-of-order ones
 * included, which must be refused), and its head is a list of byte flips
 * applied to the file the writer made. Checked:
 *  - the unflipped file reads back with exactly the keys the writer took,
 *    in order (writer and reader agree);
 *  - the flipped file reads or is refused with BBOLT_ECORRUPT, never a
 *    crash, an out-of-bounds read, a leak or a hang. */
#include "backend/bbolt.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct count {
    size_t keys, buckets;
    uint64_t sum;
};

static int visit(void *arg, const uint8_t *b, size_t bl, const uint8_t *k, size_t kl,
                 const uint8_t *v, size_t vl)
{
    (void)b;
    (void)bl;
    struct count *c = arg;
    if (!k) {
        c->buckets++;
        return 0;
    }
    c->keys++;
    for (size_t i = 0; i < kl; i++)
        c->sum = c->sum * 31 + k[i];
    c->sum = c->sum * 37 + vl;
    (void)v;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t nflips = data[0] % 16;
    size_t pos = 1;
    const uint8_t *flips = data + pos;
    if (size < pos + nflips * 3)
        return 0;
    pos += nflips * 3;

    int fd = memfd_create("fuzz_bbolt", 0);
    if (fd < 0)
        abort();
    bbolt_writer *w = NULL;
    if (bbolt_writer_new(&w, fd) != 0)
        abort();
    static uint8_t val[16384];
    struct count want = {0};
    bool in_bucket = false;
    while (pos < size) {
        uint8_t c = data[pos++];
        if (c & 0x80) { /* a bucket named by the next 1..8 bytes */
            size_t n = (size_t)(c & 0x7) + 1;
            if (pos + n > size)
                break;
            int rc = bbolt_writer_bucket(w, data + pos, n);
            if (rc != 0 && rc != BBOLT_EORDER)
                abort();
            if (rc == 0) {
                want.buckets++;
                in_bucket = true;
            }
            pos += n;
            continue;
        }
        /* a key of the next 1..64 bytes, a value of 0..10200 bytes */
        size_t kl = (size_t)(c & 0x3f) + 1;
        if (pos + kl + 1 > size)
            break;
        const uint8_t *k = data + pos;
        size_t vl = (size_t)data[pos + kl] * 40;
        pos += kl + 1;
        for (size_t i = 0; i < vl; i++)
            val[i] = (uint8_t)(i * 7 + kl);
        int rc = bbolt_writer_put(w, k, kl, val, vl);
        if (rc == BBOLT_EORDER)
            continue; /* out of order, or before any bucket */
        if (rc != 0 || !in_bucket)
            abort();
        want.keys++;
        for (size_t i = 0; i < kl; i++)
            want.sum = want.sum * 31 + k[i];
        want.sum = want.sum * 37 + vl;
    }
    int64_t fsize = 0;
    if (bbolt_writer_finish(w, &fsize) != 0)
        abort();
    bbolt_writer_free(w);
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size != fsize)
        abort();
    uint8_t *buf = malloc((size_t)fsize);
    if (!buf || pread(fd, buf, (size_t)fsize, 0) != fsize)
        abort();
    close(fd);

    /* the writer and the reader agree */
    struct count got = {0};
    char err[256];
    bbolt_info info;
    if (bbolt_read(buf, (size_t)fsize, &info, visit, &got, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_bbolt: the writer's own file refused: %s\n", err);
        abort();
    }
    if (got.keys != want.keys || got.buckets != want.buckets || got.sum != want.sum ||
        info.high_water * info.page_size != (uint64_t)fsize)
        abort();

    /* damaged: read or refused, nothing else */
    for (size_t i = 0; i < nflips; i++) {
        const uint8_t *f = flips + 3 * i;
        size_t at = (size_t)((((uint64_t)f[0] << 8 | f[1]) * (uint64_t)fsize) >> 16);
        buf[at] ^= f[2] ? f[2] : 0xff;
    }
    struct count any = {0};
    int rc = bbolt_read(buf, (size_t)fsize, NULL, visit, &any, err, sizeof(err));
    if (rc != 0 && rc != BBOLT_ECORRUPT)
        abort();
    /* and cut short, in a buffer of exactly that size (ASan sees past it) */
    if (nflips) {
        size_t cut = (size_t)(((uint64_t)flips[0] * (uint64_t)fsize) >> 8);
        uint8_t *part = malloc(cut ? cut : 1);
        if (!part)
            abort();
        memcpy(part, buf, cut);
        rc = bbolt_read(part, cut, NULL, visit, &any, err, sizeof(err));
        if (rc != 0 && rc != BBOLT_ECORRUPT)
            abort();
        free(part);
    }
    free(buf);
    return 0;
}
