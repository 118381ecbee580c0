/* tools/metcdctl/cmd_snapshot.c - `snapshot status <file>` and `snapshot
 * restore <file>` for the files `snapshot save` writes, from metcd or etcd.
 *
 * restore takes etcdctl's flags and runs metcd-restore
 * (server/member/restore.c, linked in): the database becomes
 * DATA-DIR/member/db with its membership replaced by --initial-cluster.
 * etcd's separate WAL directory has no counterpart (--wal-dir is refused).
 * As etcdctl, it prints nothing on stdout (metcd-restore's progress lines
 * go to stderr, where etcdctl logs).
 *
 * A snapshot is a bbolt file (backend/bbolt.h), as etcd's; the status is
 * computed as etcdctl computes it: a CRC-32C over every bucket in name
 * order (bucket name, then each key and value), the main revision of the
 * last key of the "key" bucket, the number of keys in all buckets, and
 * bbolt's size (high-water page times page size). Printed in etcdctl's
 * shapes: simple "hash, revision, keys, size", -w json {"hash","revision",
 * "totalKey","totalSize"}, -w fields, -w table; -w protobuf refused as
 * etcdctl refuses it. */
#include "tools/metcdctl/ctl.h"

#include "backend/backend.h"
#include "backend/bbolt.h"
#include "common/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void ctl_go_errno(int e, char *buf, size_t len)
{
    snprintf(buf, len, "%s", strerror(e));
    if (buf[0] >= 'A' && buf[0] <= 'Z')
        buf[0] = (char)(buf[0] - 'A' + 'a');
}

struct db_status {
    uint32_t hash;
    int64_t revision;
    int64_t total_key;
    int64_t total_size;
};

/* etcdctl's walk: a CRC-32C over each bucket's name, then its keys and
 * values; the main revision of the last key of "key"; every key counted */
struct walk {
    uint32_t crc;
    int64_t keys;
    int64_t rev;
    bool is_key;
};

static int visit(void *arg, const uint8_t *b, size_t bl, const uint8_t *k, size_t kl,
                 const uint8_t *v, size_t vl)
{
    struct walk *w = arg;
    if (!k) {
        w->crc = backend_crc32c(w->crc, b, bl);
        w->is_key = bl == 3 && !memcmp(b, "key", 3);
        return 0;
    }
    w->crc = backend_crc32c(w->crc, k, kl);
    w->crc = backend_crc32c(w->crc, v, vl);
    if (w->is_key && kl >= 8) {
        uint64_t main = 0;
        for (int i = 0; i < 8; i++)
            main = main << 8 | k[i];
        w->rev = (int64_t)main;
    }
    w->keys++;
    return 0;
}

/* Reads the snapshot file (a bbolt database, a SHA-256 after it or not)
 * and computes its status. 0, or the error (etcdctl-style text) in err. */
static int db_status(const char *file, struct db_status *st, char *err, size_t errlen)
{
    struct stat sb;
    char e[128];
    if (stat(file, &sb) != 0) {
        ctl_go_errno(errno, e, sizeof(e));
        snprintf(err, errlen, "stat %s: %s", file, e);
        return -1;
    }
    int fd = open(file, O_RDONLY);
    if (fd < 0) {
        ctl_go_errno(errno, e, sizeof(e));
        snprintf(err, errlen, "open %s: %s", file, e);
        return -1;
    }
    size_t len = (size_t)sb.st_size;
    void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED) {
        if (len) {
            snprintf(err, errlen, "mmap %s: %s", file, strerror(errno));
        } else {
            /* what etcdctl says: bbolt tries to initialise the empty file
             * it opened read-only */
            snprintf(err, errlen, "write %s: bad file descriptor", file);
        }
        return -1;
    }
    struct walk w = {0};
    bbolt_info info;
    char berr[256] = "";
    int rc = bbolt_read(map, len, &info, visit, &w, berr, sizeof(berr));
    if (rc == BBOLT_ECORRUPT && backend_looks_like_lmdb(map, len))
        snprintf(berr, sizeof(berr), "%s is a metcd data dir's LMDB database, not a snapshot "
                 "(take one with `snapshot save`)", file);
    munmap(map, len);
    if (rc) {
        snprintf(err, errlen, "%s", rc == BBOLT_ECORRUPT ? berr : bbolt_strerror(rc));
        return -1;
    }
    st->hash = w.crc;
    st->revision = w.rev;
    st->total_key = w.keys;
    st->total_size = (int64_t)(info.high_water * info.page_size); /* bbolt's Tx.Size */
    return 0;
}

static int cmd_status(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "snapshot status requires exactly one argument");
    struct db_status st;
    char err[512];
    if (db_status(a->pos[0], &st, err, sizeof(err)) != 0)
        return ctl_fail(c, CTL_EXIT_ERROR, "%s", err);
    char hash[16], rev[24], keys[24], size[32];
    snprintf(hash, sizeof(hash), "%" PRIx32, st.hash);
    snprintf(rev, sizeof(rev), "%" PRId64, st.revision);
    snprintf(keys, sizeof(keys), "%" PRId64, st.total_key);
    ctl_humanize_bytes((uint64_t)st.total_size, size, sizeof(size));
    switch (c->format) {
    case CTL_FORMAT_JSON:
        fprintf(c->out,
                "{\"hash\":%" PRIu32 ",\"revision\":%" PRId64 ",\"totalKey\":%" PRId64
                ",\"totalSize\":%" PRId64 "}\n",
                st.hash, st.revision, st.total_key, st.total_size);
        return 0;
    case CTL_FORMAT_FIELDS:
        fprintf(c->out,
                "\"Hash\" : %" PRIu32 "\n\"Revision\" : %" PRId64 "\n\"Keys\" : %" PRId64
                "\n\"Size\" : %" PRId64 "\n",
                st.hash, st.revision, st.total_key, st.total_size);
        return 0;
    case CTL_FORMAT_TABLE: {
        static const char *const hdr[] = {"hash", "revision", "total keys", "total size"};
        const char *cells[] = {hash, rev, keys, size};
        struct ctl_table *t = ctl_table_new(4, hdr);
        if (!t || ctl_table_row(t, cells) != 0) {
            ctl_table_free(t);
            return ctl_fail(c, CTL_EXIT_ERROR, "out of memory");
        }
        ctl_table_render(t, c->out);
        ctl_table_free(t);
        return 0;
    }
    case CTL_FORMAT_PROTOBUF:
        return ctl_fail(c, CTL_EXIT_BAD_FEATURE, "protobuf not supported as output format");
    default:
        fprintf(c->out, "%s, %s, %s, %s\n", hash, rev, keys, size);
        return 0;
    }
}

int metcd_restore_main(int argc, char **argv); /* server/member/restore.c */

static int cmd_restore(struct ctl *c, const struct ctl_args *a)
{
    if (a->n_pos != 1)
        return ctl_fail(c, CTL_EXIT_BAD_ARGS, "snapshot restore requires exactly one argument");
    if (ctl_str(a, "wal-dir")[0])
        return ctl_fail(c, CTL_EXIT_BAD_ARGS,
                        "--wal-dir is not supported: metcd keeps its log in the data directory");
    const char *name = ctl_str(a, "name");
    char dir[4096];
    if (ctl_str(a, "data-dir")[0])
        snprintf(dir, sizeof(dir), "%s", ctl_str(a, "data-dir"));
    else
        snprintf(dir, sizeof(dir), "%s.etcd", name);
    /* etcdctl's checks, in its order */
    char e[128];
    if (access(dir, F_OK) == 0)
        return ctl_fail(c, CTL_EXIT_ERROR, "data-dir \"%s\" exists", dir);
    int fd = open(a->pos[0], O_RDONLY);
    if (fd < 0) {
        ctl_go_errno(errno, e, sizeof(e));
        return ctl_fail(c, CTL_EXIT_ERROR, "open %s: %s", a->pos[0], e);
    }
    close(fd);
    char *argv[12];
    int n = 0;
    argv[n++] = (char *)"metcd-restore";
    argv[n++] = (char *)a->pos[0];
    argv[n++] = (char *)"--name";
    argv[n++] = (char *)name;
    argv[n++] = (char *)"--data-dir";
    argv[n++] = dir;
    argv[n++] = (char *)"--initial-cluster";
    argv[n++] = (char *)ctl_str(a, "initial-cluster");
    argv[n++] = (char *)"--initial-cluster-token";
    argv[n++] = (char *)ctl_str(a, "initial-cluster-token");
    if (ctl_bool(a, "skip-hash-check"))
        argv[n++] = (char *)"--skip-hash-check";
    argv[n] = NULL;
    /* its stdout lines to stderr */
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    if (saved < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        if (saved >= 0)
            close(saved);
        return ctl_fail(c, CTL_EXIT_ERROR, "dup: %s", strerror(errno));
    }
    int rc = metcd_restore_main(n, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    return rc == 0 ? 0 : CTL_EXIT_ERROR;
}

static const struct ctl_flag restore_flags[] = {
    {"data-dir", 0, CTL_FLAG_STRING, "", "Path to the data directory"},
    {"initial-advertise-peer-urls", 0, CTL_FLAG_STRING, "http://localhost:2380",
     "List of this member's peer URLs to advertise to the rest of the cluster"},
    {"initial-cluster", 0, CTL_FLAG_STRING, "default=http://localhost:2380",
     "Initial cluster configuration for restore bootstrap"},
    {"initial-cluster-token", 0, CTL_FLAG_STRING, "etcd-cluster",
     "Initial cluster token for the etcd cluster during restore bootstrap"},
    {"name", 0, CTL_FLAG_STRING, "default", "Human-readable name for this member"},
    {"skip-hash-check", 0, CTL_FLAG_BOOL, "false",
     "Ignore snapshot integrity hash value (required if copied from data directory)"},
    {"wal-dir", 0, CTL_FLAG_STRING, "", "Path to the WAL directory (use --data-dir if none given)"},
};

const struct ctl_cmd ctl_cmd_snapshot_restore = {
    .name = "restore",
    .use = "restore <filename> [options]",
    .summary = "Restores an etcd member snapshot to an etcd directory",
    .flags = restore_flags,
    .n_flags = sizeof(restore_flags) / sizeof(restore_flags[0]),
    .run = cmd_restore,
};

const struct ctl_cmd ctl_cmd_snapshot_status = {
    .name = "status",
    .use = "status <filename>",
    .summary = "Gets backend snapshot status of a given file",
    .description = "When --write-out is set to simple, this command prints out comma-separated "
                   "status lists for each endpoint.\nThe items in the lists are hash, revision, "
                   "total keys, total size.\n",
    .run = cmd_status,
};
