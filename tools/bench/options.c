/* tools/bench/options.c - metcd-bench's command line (see bench.h). */
#include "tools/bench/bench.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void bench_usage(FILE *out)
{
    fputs("Usage: metcd-bench put|range|txn|mixed|watch|lease [flags]\n"
          "\n"
          "Sends --total requests to an etcd v3 server, keeping --clients of them in\n"
          "flight over --conns gRPC connections, and prints a latency summary.\n"
          "\n"
          "Modes:\n"
          "  put      Put keys with values of --val-size bytes\n"
          "  range    Range single keys (--consistency l: linearizable, s: serializable)\n"
          "  txn      Txns of --txn-ops puts each, to keys k, k+1, ... (k drawn as for\n"
          "           put), after one always-true compare with --txn-compare\n"
          "  mixed    Range a key with probability --read-ratio, else put it\n"
          "  watch    Create --watchers watchers on --keys keys over --streams Watch\n"
          "           streams (on --conns connections), then put --total times to\n"
          "           those keys (--rate, --clients): events/s delivered, put-to-event\n"
          "           latency, and the server's VmRSS per watcher (--server-pid)\n"
          "  lease    Grant --leases leases of --ttl s (--clients in flight), then keep\n"
          "           them alive over --clients LeaseKeepAlive streams, one keep-alive\n"
          "           in flight each, --total in all (--rate): keep-alives/s, latency,\n"
          "           and the server's VmRSS (--server-pid)\n"
          "\n"
          "Flags:\n"
          "  --endpoints LIST   comma-separated host:port or http://host:port\n"
          "                     (default 127.0.0.1:2379); connection i starts at entry\n"
          "                     i mod n and fails over to the next ones\n"
          "  --conns N          gRPC connections (default 1)\n"
          "  --clients N        requests in flight over all connections (default 1)\n"
          "  --total N          requests to send (default 10000)\n"
          "  --key-size N       key bytes: decimal key number padded with '0' (default 8)\n"
          "  --val-size N       value bytes for put, txn and mixed (default 8)\n"
          "  --key-space N      draw keys uniformly from N keys; 0: sequential 0, 1, ...\n"
          "                     (default 0)\n"
          "  --consistency l|s  range and mixed: range consistency (default l)\n"
          "  --txn-ops N        txn: puts per txn, 1..128 (default 1)\n"
          "  --txn-compare      txn: add the compare version(first key) > -1\n"
          "  --read-ratio R     mixed: share of ranges, 0..1 (default 0.9)\n"
          "  --compare LIST     put, range, txn, mixed: then run the same load (same\n"
          "                     seed and flags) against LIST and print both summaries\n"
          "                     and a table of first/second ratios\n"
          "  --rate R           requests per second over all clients; 0: unlimited\n"
          "                     (default 0)\n"
          "  --timeout-ms N     deadline of each request; 0: none (default 10000)\n"
          "  --seed N           seed of the random key choice (default 1)\n"
          "  --watchers N       watch: watchers (default 100000)\n"
          "  --keys N           watch: keys watched, watcher i on key i mod N (default 1000)\n"
          "  --streams N        watch: Watch streams, stream i on connection i mod\n"
          "                     --conns (default 100); puts use one more connection\n"
          "  --server-pid PID   watch, lease: read the server's VmRSS and CPU time from /proc;\n"
          "                     \"port\": the process listening on the first endpoint's\n"
          "                     port (default: none)\n"
          "  --settle-ms N      watch: wait after the creates before VmRSS (default 2000)\n"
          "  --drain-ms N       watch: wait for events after the last put (default 10000)\n"
          "  --max-samples N    watch, lease: latency samples kept (default 20000000)\n"
          "  --leases N         lease: leases granted and kept alive (default 100000)\n"
          "  --ttl S            lease: their TTL in seconds (default 60)\n"
          "  --json             print the summary as one JSON object\n"
          "  --no-progress      no progress bar (it is shown only on a terminal)\n"
          "  -h, --help         this text\n"
          "\n"
          "Exit status: 0 when at least one request succeeded, 1 when none did or a\n"
          "connection failed its warm-up call, 2 for bad flags, 130 after SIGINT.\n",
          out);
}

static int bad(FILE *err, const char *flag, const char *val, const char *want)
{
    fprintf(err, "metcd-bench: invalid value \"%s\" for %s: %s\n", val, flag, want);
    return 2;
}

/* Strict unsigned decimal in [lo, hi]; 0 on success. */
static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!s[0])
        return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Splits val into buf (bufsize bytes) and eps[]: --endpoints, --compare. */
static int split_endpoints(const char *flag, char *buf, size_t bufsize, const char **eps,
                           size_t *n_eps, const char *val, FILE *err)
{
    size_t len = strlen(val);
    if (len == 0)
        return bad(err, flag, val, "want at least one host:port");
    if (len >= bufsize)
        return bad(err, flag, val, "list too long");
    memcpy(buf, val, len + 1);
    *n_eps = 0;
    char *save = NULL;
    char *p = buf;
    /* strtok_r would skip empty entries; refuse them instead. */
    for (char *tok = p;; tok = save) {
        char *comma = strchr(tok, ',');
        save = comma ? comma + 1 : NULL;
        if (comma)
            *comma = '\0';
        if (!tok[0])
            return bad(err, flag, val, "empty entry in the list");
        if (strncmp(tok, "https://", 8) == 0 || strncmp(tok, "unix", 4) == 0)
            return bad(err, flag, val, "only plain http:// or host:port endpoints");
        const char *hp = strncmp(tok, "http://", 7) == 0 ? tok + 7 : tok;
        const char *colon = strrchr(hp, ':');
        uint64_t port;
        if (!colon || colon == hp || parse_u64(colon + 1, 1, 65535, &port) != 0)
            return bad(err, flag, val, "each entry needs host:port");
        if (*n_eps == BENCH_MAX_ENDPOINTS)
            return bad(err, flag, val, "at most 16 endpoints");
        eps[(*n_eps)++] = tok;
        if (!save)
            break;
    }
    return 0;
}

uint32_t bench_digits(uint64_t n)
{
    uint32_t d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

int bench_format_key(char *buf, uint32_t key_size, uint64_t n)
{
    uint32_t d = bench_digits(n);
    if (d > key_size)
        return BENCH_ERR_INVAL;
    memset(buf, '0', key_size - d);
    for (uint32_t i = key_size; i > key_size - d; i--) {
        buf[i - 1] = (char)('0' + n % 10);
        n /= 10;
    }
    return 0;
}

/* Which flags take a value. */
static bool takes_value(const char *name)
{
    static const char *const with_value[] = {
        "--endpoints", "--conns",      "--clients",     "--total",   "--key-size",
        "--val-size",  "--key-space",  "--consistency", "--rate",    "--timeout-ms",
        "--seed",      "--watchers",   "--keys",        "--streams", "--server-pid",
        "--settle-ms", "--drain-ms",   "--max-samples", "--leases",  "--ttl",
        "--txn-ops",   "--read-ratio", "--compare",
    };
    for (size_t i = 0; i < sizeof with_value / sizeof with_value[0]; i++)
        if (strcmp(name, with_value[i]) == 0)
            return true;
    return false;
}

static int set_flag(struct bench_options *o, const char *name, const char *val, FILE *err)
{
    uint64_t v;
    if (strcmp(name, "--endpoints") == 0)
        return split_endpoints(name, o->endpoints_buf, sizeof o->endpoints_buf, o->endpoints,
                               &o->n_endpoints, val, err);
    if (strcmp(name, "--compare") == 0)
        return split_endpoints(name, o->compare_buf, sizeof o->compare_buf, o->compare,
                               &o->n_compare, val, err);
    if (strcmp(name, "--conns") == 0) {
        if (parse_u64(val, 1, 1000, &v) != 0)
            return bad(err, name, val, "want an integer in 1..1000");
        o->conns = (uint32_t)v;
    } else if (strcmp(name, "--clients") == 0) {
        if (parse_u64(val, 1, 100000, &v) != 0)
            return bad(err, name, val, "want an integer in 1..100000");
        o->clients = (uint32_t)v;
    } else if (strcmp(name, "--total") == 0) {
        if (parse_u64(val, 1, 100000000, &v) != 0)
            return bad(err, name, val, "want an integer in 1..100000000");
        o->total = v;
    } else if (strcmp(name, "--key-size") == 0) {
        if (parse_u64(val, 1, 65536, &v) != 0)
            return bad(err, name, val, "want an integer in 1..65536");
        o->key_size = (uint32_t)v;
    } else if (strcmp(name, "--val-size") == 0) {
        if (parse_u64(val, 0, 16u << 20, &v) != 0)
            return bad(err, name, val, "want an integer in 0..16777216");
        o->val_size = (uint32_t)v;
    } else if (strcmp(name, "--key-space") == 0) {
        if (parse_u64(val, 0, UINT64_MAX / 2, &v) != 0)
            return bad(err, name, val, "want a non-negative integer");
        o->key_space = v;
    } else if (strcmp(name, "--consistency") == 0) {
        if (strcmp(val, "l") == 0)
            o->serializable = false;
        else if (strcmp(val, "s") == 0)
            o->serializable = true;
        else
            return bad(err, name, val, "want l (linearizable) or s (serializable)");
    } else if (strcmp(name, "--rate") == 0) {
        char *end;
        errno = 0;
        double r = strtod(val, &end);
        if (!val[0] || *end || errno || !isfinite(r) || r < 0 || r > 1e9)
            return bad(err, name, val, "want a number of requests/s in 0..1e9");
        o->rate = r;
    } else if (strcmp(name, "--timeout-ms") == 0) {
        if (parse_u64(val, 0, 3600000, &v) != 0)
            return bad(err, name, val, "want milliseconds in 0..3600000");
        o->timeout_ms = (uint32_t)v;
    } else if (strcmp(name, "--seed") == 0) {
        if (parse_u64(val, 0, UINT64_MAX, &v) != 0)
            return bad(err, name, val, "want a non-negative integer");
        o->seed = v;
    } else if (strcmp(name, "--watchers") == 0) {
        if (parse_u64(val, 1, 10000000, &v) != 0)
            return bad(err, name, val, "want an integer in 1..10000000");
        o->watchers = (uint32_t)v;
    } else if (strcmp(name, "--keys") == 0) {
        if (parse_u64(val, 1, 10000000, &v) != 0)
            return bad(err, name, val, "want an integer in 1..10000000");
        o->keys = (uint32_t)v;
    } else if (strcmp(name, "--streams") == 0) {
        if (parse_u64(val, 1, 100000, &v) != 0)
            return bad(err, name, val, "want an integer in 1..100000");
        o->streams = (uint32_t)v;
    } else if (strcmp(name, "--server-pid") == 0) {
        if (strcmp(val, "port") == 0)
            o->server_pid = -1;
        else if (parse_u64(val, 0, INT32_MAX, &v) == 0)
            o->server_pid = (int64_t)v;
        else
            return bad(err, name, val, "want a process id or \"port\"");
    } else if (strcmp(name, "--settle-ms") == 0) {
        if (parse_u64(val, 0, 600000, &v) != 0)
            return bad(err, name, val, "want milliseconds in 0..600000");
        o->settle_ms = (uint32_t)v;
    } else if (strcmp(name, "--drain-ms") == 0) {
        if (parse_u64(val, 0, 600000, &v) != 0)
            return bad(err, name, val, "want milliseconds in 0..600000");
        o->drain_ms = (uint32_t)v;
    } else if (strcmp(name, "--leases") == 0) {
        if (parse_u64(val, 1, 10000000, &v) != 0)
            return bad(err, name, val, "want an integer in 1..10000000");
        o->leases = (uint32_t)v;
    } else if (strcmp(name, "--ttl") == 0) {
        if (parse_u64(val, 1, 9000000000ULL, &v) != 0)
            return bad(err, name, val, "want seconds in 1..9000000000");
        o->ttl = (int64_t)v;
    } else if (strcmp(name, "--txn-ops") == 0) {
        if (parse_u64(val, 1, BENCH_MAX_TXN_OPS, &v) != 0)
            return bad(err, name, val, "want an integer in 1..128");
        o->txn_ops = (uint32_t)v;
    } else if (strcmp(name, "--read-ratio") == 0) {
        char *end;
        errno = 0;
        double r = strtod(val, &end);
        if (!val[0] || *end || errno || !(r >= 0 && r <= 1))
            return bad(err, name, val, "want a number in 0..1");
        o->read_ratio = r;
    } else if (strcmp(name, "--max-samples") == 0) {
        if (parse_u64(val, 1, 1000000000, &v) != 0)
            return bad(err, name, val, "want an integer in 1..1000000000");
        o->max_samples = v;
    }
    return 0;
}

/* watch: the puts carry their send time in the value's first 8 bytes. */
static int check_watch(const struct bench_options *o, FILE *err)
{
    if (o->val_size < 8) {
        fprintf(err, "metcd-bench: watch needs --val-size >= 8 (the send time)\n");
        return 2;
    }
    if (o->streams > o->watchers) {
        fprintf(err,
                "metcd-bench: --streams (%" PRIu32 ") must be at most --watchers (%" PRIu32
                ")\n",
                o->streams, o->watchers);
        return 2;
    }
    if (o->conns > o->streams) {
        fprintf(err,
                "metcd-bench: --conns (%" PRIu32 ") must be at most --streams (%" PRIu32 ")\n",
                o->conns, o->streams);
        return 2;
    }
    if (bench_digits(o->keys - 1) > o->key_size) {
        fprintf(err,
                "metcd-bench: --key-size %" PRIu32 " cannot hold key number %" PRIu32
                "; raise --key-size\n",
                o->key_size, o->keys - 1);
        return 2;
    }
    return 0;
}

static void defaults(struct bench_options *o)
{
    memset(o, 0, sizeof *o);
    strcpy(o->endpoints_buf, "127.0.0.1:2379");
    o->endpoints[0] = o->endpoints_buf;
    o->n_endpoints = 1;
    o->conns = 1;
    o->clients = 1;
    o->total = 10000;
    o->key_size = 8;
    o->val_size = 8;
    o->timeout_ms = 10000;
    o->progress = true;
    o->seed = 1;
    o->watchers = 100000;
    o->keys = 1000;
    o->streams = 100;
    o->settle_ms = 2000;
    o->drain_ms = 10000;
    o->max_samples = 20000000;
    o->leases = 100000;
    o->ttl = 60;
    o->txn_ops = 1;
    o->read_ratio = 0.9;
}

int bench_options_parse(struct bench_options *o, int argc, char **argv, FILE *out, FILE *err)
{
    defaults(o);
    if (argc < 2) {
        fprintf(err,
                "metcd-bench: missing mode: put, range, txn, mixed, watch or lease (see --help)\n");
        return 2;
    }
    int i = 1;
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        bench_usage(out);
        return 1;
    } else if (strcmp(argv[1], "put") == 0) {
        o->mode = BENCH_PUT;
    } else if (strcmp(argv[1], "range") == 0) {
        o->mode = BENCH_RANGE;
    } else if (strcmp(argv[1], "txn") == 0) {
        o->mode = BENCH_TXN;
    } else if (strcmp(argv[1], "mixed") == 0) {
        o->mode = BENCH_MIXED;
    } else if (strcmp(argv[1], "watch") == 0) {
        o->mode = BENCH_WATCH;
    } else if (strcmp(argv[1], "lease") == 0) {
        o->mode = BENCH_LEASE;
    } else {
        fprintf(err,
                "metcd-bench: unknown mode \"%s\": want put, range, txn, mixed, watch or "
                "lease\n",
                argv[1]);
        return 2;
    }
    for (i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            bench_usage(out);
            return 1;
        }
        if (strcmp(arg, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strcmp(arg, "--no-progress") == 0) {
            o->progress = false;
            continue;
        }
        if (strcmp(arg, "--txn-compare") == 0) {
            o->txn_compare = true;
            continue;
        }
        char name[32];
        const char *eq = strchr(arg, '=');
        size_t nl = eq ? (size_t)(eq - arg) : strlen(arg);
        if (strncmp(arg, "--", 2) != 0 || nl >= sizeof name) {
            fprintf(err, "metcd-bench: unknown flag or argument \"%s\" (see --help)\n", arg);
            return 2;
        }
        memcpy(name, arg, nl);
        name[nl] = '\0';
        if (!takes_value(name)) {
            if (eq && (strcmp(name, "--json") == 0 || strcmp(name, "--no-progress") == 0 ||
                       strcmp(name, "--txn-compare") == 0))
                fprintf(err, "metcd-bench: flag %s takes no value\n", name);
            else
                fprintf(err, "metcd-bench: unknown flag %s (see --help)\n", name);
            return 2;
        }
        const char *val;
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(err, "metcd-bench: flag %s needs a value\n", name);
            return 2;
        }
        int rc = set_flag(o, name, val, err);
        if (rc)
            return rc;
    }
    if (o->n_compare > 0 && (o->mode == BENCH_WATCH || o->mode == BENCH_LEASE)) {
        fprintf(err, "metcd-bench: --compare works with put, range, txn and mixed only\n");
        return 2;
    }
    if (o->mode == BENCH_WATCH) /* --clients are the puts, on a connection of their own */
        return check_watch(o, err);
    if (o->mode == BENCH_LEASE) {
        if (o->clients > o->leases || o->conns > o->clients) {
            fprintf(err, "metcd-bench: lease needs --conns <= --clients <= --leases\n");
            return 2;
        }
        return 0;
    }
    if (o->clients < o->conns) {
        fprintf(err,
                "metcd-bench: --clients (%" PRIu32 ") must be at least --conns (%" PRIu32 ")\n",
                o->clients, o->conns);
        return 2;
    }
    uint64_t per_req = o->mode == BENCH_TXN ? o->txn_ops : 1;
    if (o->key_space && o->key_space < per_req) {
        /* a txn may not put the same key twice (etcd: duplicate key given) */
        fprintf(err,
                "metcd-bench: --key-space (%" PRIu64 ") must be at least --txn-ops (%" PRIu32 ")\n",
                o->key_space, o->txn_ops);
        return 2;
    }
    uint64_t top = o->key_space ? o->key_space - 1 : o->total * per_req - 1;
    if (bench_digits(top) > o->key_size) {
        fprintf(err,
                "metcd-bench: --key-size %" PRIu32 " cannot hold key number %" PRIu64 " (%" PRIu32
                " digits); raise --key-size\n",
                o->key_size, top, bench_digits(top));
        return 2;
    }
    return 0;
}
