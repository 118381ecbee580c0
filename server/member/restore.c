/* server/member/restore.c - `metcd-restore`: a data dir from a `snapshot
 * save` file, as `etcdctl snapshot restore` makes one for etcd.
 *
 *   metcd-restore FILE --name NAME --data-dir DIR --initial-cluster C
 *                 --initial-cluster-token T --initial-advertise-peer-urls U
 *                 [--skip-hash-check]
 *
 * The file is a bbolt database (backend/bbolt.h), metcd's or etcd 3.4's
 * own, followed by its SHA-256 as the Snapshot RPC sends it; as etcdctl,
 * a file whose size is 32 past a multiple of 512 carries the hash, which is
 * checked unless --skip-hash-check, and one without it (a db copied from a
 * data dir) needs --skip-hash-check. Its buckets become DIR/member/db (LMDB)
 * with the membership replaced by --initial-cluster (members, removed
 * members, alarms, configuration and consistent index are reset), so `metcd`
 * with the same flags starts a new cluster over the restored keys. Run it
 * once per member with that member's name and URLs. */
#include "backend/backend.h"
#include "backend/bbolt.h"
#include "common/mem.h"
#include "server/config/ids.h"
#include "server/etcdserverpb/rpc.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int usage(void)
{
    fprintf(stderr, "usage: metcd-restore FILE --name NAME --data-dir DIR --initial-cluster C "
                    "--initial-cluster-token T --initial-advertise-peer-urls U "
                    "[--skip-hash-check]\n");
    return 2;
}

static int mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* Maps the snapshot file read-only (a large one is not copied into the
 * heap); NULL with errno set, or EINVAL for an empty file. */
static uint8_t *map_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    void *p = MAP_FAILED;
    if (fstat(fd, &st) == 0) {
        errno = EINVAL;
        if (st.st_size > 0)
            p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    }
    int e = errno;
    close(fd);
    errno = e;
    if (p == MAP_FAILED)
        return NULL;
    *len = (size_t)st.st_size;
    return p;
}

/* Go's %v of a []byte: [1 2 3] */
static void go_bytes(FILE *f, const uint8_t *b, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, i ? " %u" : "%u", b[i]);
    fputc(']', f);
}

/* Copies the snapshot's buckets into the new database, leaving out what a
 * new cluster must not inherit: its membership, alarms, configuration and
 * consistent index. */
struct load {
    backend *be;
    int bucket; /* the current bucket's index, -1 to skip it */
    int rc;
};

static int load_one(void *arg, const uint8_t *b, size_t bl, const uint8_t *k, size_t kl,
                    const uint8_t *v, size_t vl)
{
    struct load *ld = arg;
    if (!k) {
        ld->bucket = -1;
        for (int i = 0; i < BACKEND_NBUCKETS; i++) {
            const char *name = backend_bucket_name(i);
            if (strlen(name) == bl && !memcmp(name, b, bl))
                ld->bucket = i;
        }
        if (ld->bucket == BACKEND_MEMBERS || ld->bucket == BACKEND_MEMBERS_REMOVED ||
            ld->bucket == BACKEND_ALARM)
            ld->bucket = -1;
        return 0;
    }
    if (ld->bucket < 0)
        return 0;
    if (ld->bucket == BACKEND_META &&
        ((kl == 9 && !memcmp(k, "confState", 9)) ||
         (kl == 16 && !memcmp(k, "consistent_index", 16))))
        return 0;
    ld->rc = backend_put(ld->be, ld->bucket, k, kl, v, vl, BACKEND_PUT_APPEND);
    return ld->rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *file = NULL, *name = NULL, *dir = NULL, *initial = NULL, *token = "etcd-cluster",
               *adv = NULL;
    int skip_hash = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (!strncmp(a, "--", 2)) {
            const char *eq = strchr(a, '=');
            char flag[64];
            size_t fl = eq ? (size_t)(eq - a) : strlen(a);
            if (fl >= sizeof(flag))
                return usage();
            memcpy(flag, a, fl);
            flag[fl] = 0;
            if (!strcmp(flag, "--skip-hash-check")) {
                skip_hash = 1;
                continue;
            }
            if (!strcmp(flag, "--name"))
                dst = &name;
            else if (!strcmp(flag, "--data-dir"))
                dst = &dir;
            else if (!strcmp(flag, "--initial-cluster"))
                dst = &initial;
            else if (!strcmp(flag, "--initial-cluster-token"))
                dst = &token;
            else if (!strcmp(flag, "--initial-advertise-peer-urls"))
                dst = &adv;
            else {
                fprintf(stderr, "metcd-restore: unknown flag %s\n", flag);
                return usage();
            }
            if (eq)
                *dst = eq + 1;
            else if (i + 1 < argc)
                *dst = argv[++i];
            else
                return usage();
        } else if (!file) {
            file = a;
        } else {
            return usage();
        }
    }
    if (!file || !name || !dir || !initial)
        return usage();
    (void)adv;
    char path[4096];
    snprintf(path, sizeof(path), "%s/member", dir);
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "Error: data-dir \"%s\" exists\n", dir);
        return 1;
    }
    size_t len = 0;
    uint8_t *buf = map_file(file, &len);
    if (!buf) {
        fprintf(stderr, "Error: open %s: %s\n", file,
                errno == EINVAL ? "empty file" : strerror(errno));
        return 1;
    }
    size_t dblen = len;
    if (len % 512 == 32) { /* etcdctl's test for an appended hash */
        dblen = len - 32;
        uint8_t sum[32];
        unsigned int sl = 0;
        EVP_Digest(buf, dblen, sum, &sl, EVP_sha256(), NULL);
        if (!skip_hash && memcmp(sum, buf + dblen, 32) != 0) {
            fprintf(stderr, "Error: expected sha256 ");
            go_bytes(stderr, buf + dblen, 32);
            fprintf(stderr, ", got ");
            go_bytes(stderr, sum, 32);
            fprintf(stderr, "\n");
            munmap(buf, len);
            return 1;
        }
    } else if (!skip_hash) {
        fprintf(stderr, "Error: snapshot missing hash but --skip-hash-check=false\n");
        munmap(buf, len);
        return 1;
    }
    char err[512];
    int brc = bbolt_read(buf, dblen, NULL, NULL, NULL, err, sizeof(err));
    if (brc) {
        if (backend_looks_like_lmdb(buf, len))
            snprintf(err, sizeof(err), "it is a metcd data dir's LMDB database; "
                                       "take a snapshot with `etcdctl snapshot save`");
        fprintf(stderr, "Error: %s is not a snapshot: %s\n", file,
                brc == BBOLT_ECORRUPT ? err : bbolt_strerror(brc));
        munmap(buf, len);
        return 1;
    }
    struct ids_cluster cl = {0};
    if (ids_cluster_parse(&cl, initial, token, err, sizeof(err)) != 0) {
        fprintf(stderr, "Error: %s\n", err);
        munmap(buf, len);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/member/db", dir);
    backend *be = NULL;
    if (mkdirs(path) != 0)
        snprintf(err, sizeof(err), "%s", strerror(errno));
    else
        backend_open(&be, path, NULL, err, sizeof(err));
    if (!be) {
        fprintf(stderr, "Error: cannot create %s: %s\n", path, err);
        munmap(buf, len);
        ids_cluster_free(&cl);
        return 1;
    }
    struct load ld = {.be = be};
    brc = bbolt_read(buf, dblen, NULL, load_one, &ld, err, sizeof(err));
    munmap(buf, len);
    if (brc) {
        fprintf(stderr, "Error: cannot restore %s: %s\n", file,
                brc == BBOLT_ECORRUPT ? err : ld.rc ? backend_strerror(ld.rc) : bbolt_strerror(brc));
        backend_close(be);
        ids_cluster_free(&cl);
        return 1;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < cl.n; i++) {
        Etcdserverpb__Member pm = ETCDSERVERPB__MEMBER__INIT;
        pm.id = cl.members[i].id;
        pm.name = (char *)"";
        pm.peerurls = cl.members[i].urls;
        pm.n_peerurls = cl.members[i].nurls;
        size_t pl = etcdserverpb__member__get_packed_size(&pm);
        uint8_t *pb = metcd_malloc(pl ? pl : 1);
        if (!pb) {
            rc = -1;
            break;
        }
        etcdserverpb__member__pack(&pm, pb);
        char key[17];
        snprintf(key, sizeof(key), "%016llx", (unsigned long long)pm.id);
        rc = backend_put(be, BACKEND_MEMBERS, key, 16, pb, pl, 0);
        metcd_free(pb);
        if (rc == 0)
            printf("added member %016llx %s to cluster %016llx\n", (unsigned long long)pm.id,
                   cl.members[i].nurls ? cl.members[i].urls[0] : "",
                   (unsigned long long)cl.cluster_id);
    }
    if (rc == 0)
        rc = backend_commit(be);
    backend_close(be);
    ids_cluster_free(&cl);
    if (rc) {
        fprintf(stderr, "Error: cannot rewrite the membership: %s\n", backend_strerror(rc));
        return 1;
    }
    printf("restored snapshot %s into %s (start metcd with --name %s and the same "
           "--initial-cluster)\n",
           file, dir, name);
    return 0;
}
