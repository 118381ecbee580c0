/* server/member/metrics.c - /metrics in the Prometheus text format
 * (version 0.0.4), with etcd 3.4's metric names, types and histogram
 * buckets for the member's core: raft/server, disk (WAL fsync, backend
 * commit), mvcc, versions, and the process. Every value is read from the
 * modules' own counters when scraped; nothing is sampled in the hot path
 * beyond those counters. */
#include "server/member/internal.h"

#include "common/mem.h"
#include "server/peer/peer.h"
#include "watch/watch.h"

#include <dirent.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct sb {
    char *p;
    size_t len, cap;
    bool failed;
};

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sb *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 8192;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *np = metcd_realloc(b->p, cap);
        if (!np) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static void head(struct sb *b, const char *name, const char *type, const char *help)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(struct sb *b, const char *name, const char *help, double v)
{
    head(b, name, "gauge", help);
    sb_printf(b, "%s %.17g\n", name, v);
}

static void counter(struct sb *b, const char *name, const char *help, uint64_t v)
{
    head(b, name, "counter", help);
    sb_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

/* A histogram over etcd's buckets (1 ms * 2^i, i < 14) from per-bucket
 * counts, a total count and a sum in nanoseconds. */
static void histogram(struct sb *b, const char *name, const char *help, const uint64_t *hist,
                      uint64_t count, uint64_t sum_ns)
{
    head(b, name, "histogram", help);
    uint64_t cum = 0;
    double bound = 0.001;
    for (int i = 0; i < BACKEND_LATENCY_BUCKETS; i++, bound *= 2) {
        cum += hist[i];
        sb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bound, (unsigned long long)cum);
    }
    sb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)count);
    sb_printf(b, "%s_sum %.9g\n", name, (double)sum_ns / 1e9);
    sb_printf(b, "%s_count %llu\n", name, (unsigned long long)count);
}

/* go-grpc-prometheus's label values */
static const char *const grpc_code_names[RPC_CODE_COUNT] = {
    "OK",         "Canceled",          "Unknown",           "InvalidArgument",
    "DeadlineExceeded", "NotFound",    "AlreadyExists",     "PermissionDenied",
    "ResourceExhausted", "FailedPrecondition", "Aborted",   "OutOfRange",
    "Unimplemented", "Internal",       "Unavailable",       "DataLoss",
    "Unauthenticated",
};

static const char *grpc_type_name(enum rpc_kind k)
{
    switch (k) {
    case RPC_SERVER_STREAM:
        return "server_stream";
    case RPC_CLIENT_STREAM:
        return "client_stream";
    case RPC_BIDI:
        return "bidi_stream";
    default:
        return "unary";
    }
}

struct grpc_pass {
    struct sb *b;
    bool handled;
};

/* "/etcdserverpb.KV/Range" -> service "etcdserverpb.KV", method "Range" */
static void grpc_line(void *arg, const char *path, enum rpc_kind kind, uint64_t started,
                      const uint64_t *handled)
{
    struct grpc_pass *g = arg;
    const char *svc = path[0] == '/' ? path + 1 : path;
    const char *slash = strrchr(svc, '/');
    if (!slash)
        return;
    int svc_len = (int)(slash - svc);
    if (!g->handled) {
        sb_printf(g->b,
                  "grpc_server_started_total{grpc_method=\"%s\",grpc_service=\"%.*s\",grpc_type=\"%s\"} %llu\n",
                  slash + 1, svc_len, svc, grpc_type_name(kind), (unsigned long long)started);
        return;
    }
    for (int c = 0; c < RPC_CODE_COUNT; c++)
        sb_printf(g->b,
                  "grpc_server_handled_total{grpc_code=\"%s\",grpc_method=\"%s\",grpc_service=\"%.*s\",grpc_type=\"%s\"} %llu\n",
                  grpc_code_names[c], slash + 1, svc_len, svc, grpc_type_name(kind),
                  (unsigned long long)handled[c]);
}

/* grpc_server_handling_seconds (go-grpc-prometheus, --metrics extensive) */
static void latency_line(void *arg, const char *path, enum rpc_kind kind, const uint64_t *buckets,
                         uint64_t count, double sum_s)
{
    struct sb *b = arg;
    const char *svc = path[0] == '/' ? path + 1 : path;
    const char *slash = strrchr(svc, '/');
    if (!slash)
        return;
    int svc_len = (int)(slash - svc);
    const char *type = grpc_type_name(kind);
    uint64_t cum = 0;
    for (size_t i = 0; i <= RPC_LATENCY_BUCKETS; i++) {
        cum += buckets[i];
        char le[32];
        if (i < RPC_LATENCY_BUCKETS)
            snprintf(le, sizeof(le), "%g", rpc_latency_bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        sb_printf(b,
                  "grpc_server_handling_seconds_bucket{grpc_method=\"%s\",grpc_service=\"%.*s\","
                  "grpc_type=\"%s\",le=\"%s\"} %llu\n",
                  slash + 1, svc_len, svc, type, le, (unsigned long long)cum);
    }
    sb_printf(b,
              "grpc_server_handling_seconds_sum{grpc_method=\"%s\",grpc_service=\"%.*s\","
              "grpc_type=\"%s\"} %.9g\n",
              slash + 1, svc_len, svc, type, sum_s);
    sb_printf(b,
              "grpc_server_handling_seconds_count{grpc_method=\"%s\",grpc_service=\"%.*s\","
              "grpc_type=\"%s\"} %llu\n",
              slash + 1, svc_len, svc, type, (unsigned long long)count);
}

/* etcd_network_*: bytes and failures per peer, as rafthttp labels them */
static void network_metrics(struct sb *b, member *m)
{
    if (!m->peers)
        return;
    peer_stats st[RAFT_MAX_NODES];
    size_t n = peer_get_stats(m->peers, st, RAFT_MAX_NODES);
    if (n > RAFT_MAX_NODES)
        n = RAFT_MAX_NODES;
    head(b, "etcd_network_peer_sent_bytes_total", "counter", "The total number of bytes sent to peers.");
    for (size_t i = 0; i < n; i++)
        sb_printf(b, "etcd_network_peer_sent_bytes_total{To=\"%016llx\"} %llu\n",
                  (unsigned long long)st[i].id, (unsigned long long)st[i].bytes_sent);
    head(b, "etcd_network_peer_received_bytes_total", "counter",
         "The total number of bytes received from peers.");
    for (size_t i = 0; i < n; i++)
        sb_printf(b, "etcd_network_peer_received_bytes_total{From=\"%016llx\"} %llu\n",
                  (unsigned long long)st[i].id, (unsigned long long)st[i].bytes_received);
    head(b, "etcd_network_peer_sent_failures_total", "counter",
         "The total number of send failures from peers.");
    for (size_t i = 0; i < n; i++)
        sb_printf(b, "etcd_network_peer_sent_failures_total{To=\"%016llx\"} %llu\n",
                  (unsigned long long)st[i].id, (unsigned long long)st[i].msgs_dropped);
    head(b, "etcd_network_active_peers", "gauge", "The current number of active peer connections.");
    for (size_t i = 0; i < n; i++)
        sb_printf(b, "etcd_network_active_peers{Local=\"%016llx\",Remote=\"%016llx\"} %d\n",
                  (unsigned long long)m->id, (unsigned long long)st[i].id, st[i].active ? 1 : 0);
    head(b, "etcd_network_snapshot_send_success", "counter",
         "Total number of successful snapshot sends");
    for (size_t i = 0; i < n; i++)
        sb_printf(b, "etcd_network_snapshot_send_success{To=\"%016llx\"} %llu\n",
                  (unsigned long long)st[i].id, (unsigned long long)st[i].snapshots_sent);
    head(b, "etcd_network_snapshot_send_failures", "counter",
         "Total number of snapshot send failures");
    for (size_t i = 0; i < n; i++)
        sb_printf(b, "etcd_network_snapshot_send_failures{To=\"%016llx\"} %llu\n",
                  (unsigned long long)st[i].id, (unsigned long long)st[i].snapshots_failed);
}

static void watch_metrics(struct sb *b, member *m)
{
    if (!m->watch)
        return;
    watch_stats ws;
    watch_store_stats(m->watch, &ws);
    gauge(b, "etcd_debugging_mvcc_watch_stream_total", "Total number of watch streams.",
          (double)ws.streams);
    gauge(b, "etcd_debugging_mvcc_watcher_total", "Total number of watchers.",
          (double)ws.watchers);
    gauge(b, "etcd_debugging_mvcc_slow_watcher_total", "Total number of unsynced slow watchers.",
          (double)(ws.unsynced + ws.victims));
    counter(b, "etcd_debugging_mvcc_events_total", "Total number of events sent by this member.",
            ws.events_sent);
    gauge(b, "etcd_debugging_mvcc_pending_events_total", "Total number of pending events to be sent.",
          (double)ws.pending_events);
}

static void process_metrics(struct sb *b)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            pages = resident = 0;
        fclose(f);
    }
    long psz = sysconf(_SC_PAGESIZE);
    gauge(b, "process_resident_memory_bytes", "Resident memory size in bytes.",
          (double)resident * (double)psz);
    gauge(b, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
          (double)pages * (double)psz);
    int fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                fds++;
        closedir(d);
        fds--; /* the directory's own descriptor */
    }
    gauge(b, "process_open_fds", "Number of open file descriptors.", fds);
    /* the Go runtime's heap figures, from glibc's allocator (dashboards that
     * plot go_memstats_* keep a meaning: bytes in use, bytes held) */
    struct mallinfo2 mi = mallinfo2();
    gauge(b, "go_memstats_heap_alloc_bytes",
          "Number of heap bytes allocated and still in use (glibc malloc: in-use chunks).",
          (double)(mi.uordblks + mi.hblkhd));
    gauge(b, "go_memstats_heap_sys_bytes",
          "Number of heap bytes obtained from system (glibc malloc: arenas and mmapped chunks).",
          (double)(mi.arena + mi.hblkhd));
    gauge(b, "go_memstats_heap_idle_bytes",
          "Number of heap bytes waiting to be used (glibc malloc: free chunks).",
          (double)mi.fordblks);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        gauge(b, "process_max_fds", "Maximum number of open file descriptors.",
              rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur);
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    head(b, "process_cpu_seconds_total", "counter",
         "Total user and system CPU time spent in seconds.");
    sb_printf(b, "process_cpu_seconds_total %.9g\n", (double)cpu.tv_sec + cpu.tv_nsec / 1e9);
    static double start_s;
    if (start_s == 0) {
        /* /proc/self/stat field 22: start time in clock ticks after boot */
        FILE *st = fopen("/proc/self/stat", "r");
        FILE *up = fopen("/proc/stat", "r");
        unsigned long long ticks = 0, btime = 0;
        if (st) {
            char buf[1024];
            size_t n = fread(buf, 1, sizeof(buf) - 1, st);
            buf[n] = 0;
            const char *p = strrchr(buf, ')');
            int field = 2;
            for (; p && *p && field < 22; p++)
                if (*p == ' ')
                    field++;
            if (p)
                ticks = strtoull(p, NULL, 10);
            fclose(st);
        }
        if (up) {
            char line[256];
            while (fgets(line, sizeof(line), up))
                if (sscanf(line, "btime %llu", &btime) == 1)
                    break;
            fclose(up);
        }
        long hz = sysconf(_SC_CLK_TCK);
        if (btime && hz > 0)
            start_s = (double)btime + (double)ticks / (double)hz;
    }
    if (start_s > 0)
        gauge(b, "process_start_time_seconds",
              "Start time of the process since unix epoch in seconds.", start_s);
}

static void http_metrics(struct rpc_http_req *req, void *data)
{
    member *m = data;
    struct sb b = {0};
    /* server */
    gauge(&b, "etcd_server_has_leader",
          "Whether or not a leader exists. 1 is existence, 0 is not.", member_has_leader(m));
    gauge(&b, "etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.",
          m->state == RAFT_LEADER);
    counter(&b, "etcd_server_leader_changes_seen_total", "The number of leader changes seen.",
            m->leader_changes);
    gauge(&b, "etcd_server_proposals_committed_total",
          "The total number of consensus proposals committed.", (double)m->committed);
    gauge(&b, "etcd_server_proposals_applied_total",
          "The total number of consensus proposals applied.", (double)m->applied);
    gauge(&b, "etcd_server_proposals_pending", "The current number of pending proposals to commit.",
          (double)m->n_waiters);
    counter(&b, "etcd_server_proposals_failed_total", "The total number of failed proposals seen.",
            m->proposals_failed);
    head(&b, "etcd_server_version", "gauge", "Which version is running. 1 for 'server_version' label with current version.");
    sb_printf(&b, "etcd_server_version{server_version=\"%s\"} 1\n", METCD_VERSION);
    head(&b, "etcd_cluster_version", "gauge", "Which version is running. 1 for 'cluster_version' label with current cluster version");
    sb_printf(&b, "etcd_cluster_version{cluster_version=\"%s\"} 1\n",
              m->cluster_version[0] ? m->cluster_version : "");
    head(&b, "etcd_server_id", "gauge", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.");
    sb_printf(&b, "etcd_server_id{server_id=\"%016llx\"} 1\n", (unsigned long long)m->id);
    /* disk */
    wal_stats ws;
    wal_get_stats(m->wal, &ws);
    histogram(&b, "etcd_disk_wal_fsync_duration_seconds",
              "The latency distributions of fsync called by WAL.", ws.sync_hist, ws.syncs,
              ws.sync_ns);
    backend_stats bs;
    backend_get_stats(m->be, &bs);
    histogram(&b, "etcd_disk_backend_commit_duration_seconds",
              "The latency distributions of commit called by backend.", bs.commit_hist,
              bs.commits, bs.commit_ns);
    /* mvcc */
    int64_t size = backend_size(m->be);
    gauge(&b, "etcd_mvcc_db_total_size_in_bytes",
          "Total size of the underlying database physically allocated in bytes.", (double)size);
    gauge(&b, "etcd_debugging_mvcc_db_total_size_in_bytes",
          "Total size of the underlying database physically allocated in bytes.", (double)size);
    gauge(&b, "etcd_mvcc_db_total_size_in_use_in_bytes",
          "Total size of the underlying database logically in use in bytes.",
          (double)backend_size_in_use(m->be));
    gauge(&b, "etcd_debugging_mvcc_keys_total", "Total number of keys.",
          (double)mvcc_keys_total(m->kv));
    gauge(&b, "etcd_debugging_mvcc_current_revision", "The current revision of store.",
          (double)mvcc_current_rev(m->kv));
    int64_t crev = mvcc_compact_rev(m->kv);
    gauge(&b, "etcd_debugging_mvcc_compact_revision",
          "The revision of the last compaction in store.", crev < 0 ? 0 : (double)crev);
    mvcc_stats st;
    mvcc_get_stats(m->kv, &st);
    counter(&b, "etcd_mvcc_put_total", "Total number of puts seen by this member.", st.puts);
    counter(&b, "etcd_mvcc_delete_total", "Total number of deletes seen by this member.",
            st.deletes);
    counter(&b, "etcd_mvcc_range_total", "Total number of ranges seen by this member.",
            st.ranges);
    counter(&b, "etcd_mvcc_txn_total", "Total number of txns seen by this member.", st.txns);
    /* leases, with etcd's names (lease/metrics.go, etcdserver/metrics.go) */
    counter(&b, "etcd_debugging_lease_granted_total", "The total number of granted leases.",
            m->leases_granted);
    counter(&b, "etcd_debugging_lease_revoked_total", "The total number of revoked leases.",
            m->leases_revoked);
    counter(&b, "etcd_debugging_lease_renewed_total",
            "The number of renewed leases seen by the leader.", m->leases_renewed);
    counter(&b, "etcd_debugging_server_lease_expired_total",
            "The total number of expired leases.", m->leases_expired);
    /* gRPC, as etcd's go-grpc-prometheus registers it: every method, every code */
    struct grpc_pass g = {&b, false};
    head(&b, "grpc_server_started_total", "counter", "Total number of RPCs started on the server.");
    rpc_server_method_stats(m->rpc, grpc_line, &g);
    g.handled = true;
    head(&b, "grpc_server_handled_total", "counter",
         "Total number of RPCs completed on the server, regardless of success or failure.");
    rpc_server_method_stats(m->rpc, grpc_line, &g);
    if (m->opt.metrics_extensive) {
        head(&b, "grpc_server_handling_seconds", "histogram",
             "Histogram of response latency (seconds) of gRPC that had been application-level "
             "handled by the server.");
        rpc_server_method_latency(m->rpc, latency_line, &b);
    }
    counter(&b, "etcd_server_health_success", "The total number of successful health checks",
            m->health_success);
    counter(&b, "etcd_server_health_failures", "The total number of failed health checks",
            m->health_failures);
    gauge(&b, "etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes.",
          (double)(m->opt.quota_backend_bytes > 0 ? m->opt.quota_backend_bytes
                                                  : (int64_t)2 << 30));
    struct rpc_server_stats rs;
    rpc_server_get_stats(m->rpc, &rs);
    counter(&b, "etcd_network_client_grpc_received_bytes_total",
            "The total number of bytes received from grpc clients.", rs.msg_bytes_received);
    counter(&b, "etcd_network_client_grpc_sent_bytes_total",
            "The total number of bytes sent to grpc clients.", rs.msg_bytes_sent);
    watch_metrics(&b, m);
    network_metrics(&b, m);
    process_metrics(&b);
    if (b.failed)
        rpc_http_respond(req, 500, "text/plain", "out of memory\n", 14);
    else
        rpc_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    metcd_free(b.p);
}

int metrics_register(member *m, struct rpc_server *srv)
{
    return rpc_server_route(srv, "/metrics", http_metrics, NULL, m);
}
