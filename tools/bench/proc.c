/* tools/bench/proc.c - what metcd-bench watch reads about the server
 * process from /proc (proc(5)): VmRSS, CPU time, and which process listens
 * on a port. */
#include "tools/bench/bench.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int bench_proc_rss_kib(int64_t pid, uint64_t *kib)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%" PRId64 "/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return BENCH_ERR_IO;
    int rc = BENCH_ERR_IO;
    while (fgets(line, sizeof line, f)) {
        unsigned long long v;
        if (sscanf(line, "VmRSS: %llu kB", &v) == 1) {
            *kib = v;
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

int bench_proc_cpu_secs(int64_t pid, double *secs)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%" PRId64 "/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return BENCH_ERR_IO;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* comm may hold spaces and parentheses: fields resume after the last ')' */
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (!p ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return BENCH_ERR_IO;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        return BENCH_ERR_IO;
    *secs = (double)(ut + st) / (double)hz;
    return 0;
}

/* The inode of a socket listening on `port` in one /proc/net/tcp table. */
static int listen_inode(const char *table, uint16_t port, unsigned long *inode)
{
    FILE *f = fopen(table, "r");
    if (!f)
        return BENCH_ERR_IO;
    char line[512];
    int rc = BENCH_ERR_INVAL;
    if (!fgets(line, sizeof line, f)) { /* the header line */
        fclose(f);
        return BENCH_ERR_IO;
    }
    while (fgets(line, sizeof line, f)) {
        char local[64];
        unsigned st;
        unsigned long ino;
        /* sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, " %*s %63s %*s %x %*s %*s %*s %*s %*s %lu", local, &st, &ino) != 3)
            continue;
        char *colon = strrchr(local, ':');
        if (!colon || st != 0x0A) /* TCP_LISTEN */
            continue;
        if (strtoul(colon + 1, NULL, 16) == port && ino) {
            *inode = ino;
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

int bench_proc_find_listener(uint16_t port, int64_t *pid)
{
    unsigned long inode;
    if (listen_inode("/proc/net/tcp", port, &inode) != 0 &&
        listen_inode("/proc/net/tcp6", port, &inode) != 0)
        return BENCH_ERR_INVAL;
    char want[64];
    snprintf(want, sizeof want, "socket:[%lu]", inode);
    DIR *proc = opendir("/proc");
    if (!proc)
        return BENCH_ERR_IO;
    int rc = BENCH_ERR_INVAL;
    struct dirent *de;
    while (rc != 0 && (de = readdir(proc))) {
        char *end;
        long p = strtol(de->d_name, &end, 10);
        if (*end || p <= 0)
            continue;
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%ld/fd", p);
        DIR *fds = opendir(dir);
        if (!fds)
            continue; /* gone, or not ours to look at */
        struct dirent *fe;
        while ((fe = readdir(fds))) {
            char link[320], target[64];
            snprintf(link, sizeof link, "%s/%s", dir, fe->d_name);
            ssize_t n = readlink(link, target, sizeof target - 1);
            if (n <= 0)
                continue;
            target[n] = '\0';
            if (strcmp(target, want) == 0) {
                *pid = p;
                rc = 0;
                break;
            }
        }
        closedir(fds);
    }
    closedir(proc);
    return rc;
}
