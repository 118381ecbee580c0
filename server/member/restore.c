/* server/member/restore.c - `metcd-restore`: a data dir from a `snapshot
 * save` file, as `etcdctl snapshot restore` makes one for etcd (which needs
 * etcd's bbolt format; metcd's snapshots are LMDB databases).
 *
 *   metcd-restore FILE --name NAME --data-dir DIR --initial-cluster C
 *                 --initial-cluster-token T --initial-advertise-peer-urls U
 *                 [--skip-hash-check]
 *
 * The file is the database followed by its SHA-256 (as the Snapshot RPC
 * sends it); the hash is checked unless --skip-hash-check. The database
 * becomes DIR/member/db with its membership replaced by --initial-cluster
 * (members, removed members, alarms, configuration and consistent index are
 * reset), so `metcd` with the same flags starts a new cluster over the
 * restored keys. Run it once per member with that member's name and URLs. */
#include "backend/backend.h"
#include "common/mem.h"
#include "server/config/ids.h"
#include "server/etcdserverpb/rpc.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = n > 0 ? metcd_malloc((size_t)n) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        metcd_free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = buf ? (size_t)n : 0;
    return buf;
}

struct keys {
    char **k;
    size_t *l;
    size_t n, cap;
};

static int collect(void *arg, backend_val k, backend_val v)
{
    (void)v;
    struct keys *ks = arg;
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 16;
        char **nk = metcd_realloc(ks->k, cap * sizeof(*nk));
        size_t *nl = metcd_realloc(ks->l, cap * sizeof(*nl));
        if (!nk || !nl)
            return -1;
        ks->k = nk;
        ks->l = nl;
        ks->cap = cap;
    }
    ks->k[ks->n] = metcd_memdup(k.data, k.len);
    ks->l[ks->n++] = k.len;
    return 0;
}

static int clear_bucket(backend *be, int bucket)
{
    struct keys ks = {0};
    int rc = backend_range(be, bucket, NULL, 0, NULL, 0, 0, collect, &ks);
    for (size_t i = 0; i < ks.n; i++) {
        if (rc == 0)
            rc = backend_del(be, bucket, ks.k[i], ks.l[i]);
        metcd_free(ks.k[i]);
    }
    metcd_free(ks.k);
    metcd_free(ks.l);
    return rc;
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
    size_t len;
    uint8_t *buf = read_file(file, &len);
    if (!buf || len < 32) {
        fprintf(stderr, "Error: cannot read snapshot %s: %s\n", file,
                buf ? "too short" : strerror(errno));
        metcd_free(buf);
        return 1;
    }
    size_t dblen = len - 32;
    if (!skip_hash) {
        uint8_t sum[32];
        unsigned int sl = 0;
        EVP_Digest(buf, dblen, sum, &sl, EVP_sha256(), NULL);
        if (memcmp(sum, buf + dblen, 32) != 0) {
            fprintf(stderr, "Error: expected sha256 of the snapshot does not match its data "
                            "(use --skip-hash-check for a database copied from a data dir)\n");
            metcd_free(buf);
            return 1;
        }
    } else {
        dblen = len;
    }
    struct ids_cluster cl = {0};
    char err[512];
    if (ids_cluster_parse(&cl, initial, token, err, sizeof(err)) != 0) {
        fprintf(stderr, "Error: %s\n", err);
        metcd_free(buf);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/member/db", dir);
    char db[4200];
    snprintf(db, sizeof(db), "%s/data.mdb", path);
    int fd = -1;
    if (mkdirs(path) != 0 || (fd = open(db, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0 ||
        write(fd, buf, dblen) != (ssize_t)dblen || fsync(fd) != 0) {
        fprintf(stderr, "Error: cannot write %s: %s\n", db, strerror(errno));
        if (fd >= 0)
            close(fd);
        metcd_free(buf);
        ids_cluster_free(&cl);
        return 1;
    }
    close(fd);
    metcd_free(buf);
    backend *be;
    if (backend_open(&be, path, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "Error: the snapshot is not a metcd database: %s\n", err);
        ids_cluster_free(&cl);
        return 1;
    }
    int rc = clear_bucket(be, BACKEND_MEMBERS);
    if (rc == 0)
        rc = clear_bucket(be, BACKEND_MEMBERS_REMOVED);
    if (rc == 0)
        rc = clear_bucket(be, BACKEND_ALARM);
    if (rc == 0)
        rc = backend_del(be, BACKEND_META, "confState", 9);
    if (rc == 0)
        rc = backend_del(be, BACKEND_META, "consistent_index", 16);
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
