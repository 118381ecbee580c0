/* bench/rpc/rpc_bench.c - rpc-bench: server/rpc figures.
 *
 *   1. Trivial unary calls/s over 1 and 16 connections with 64 calls in
 *      flight (our client against our server, loopback).
 *   2. Server heap bytes per idle HTTP/2 connection and per open stream
 *      (glibc mallinfo2 of the server process, read through an HTTP/1.1
 *      route of that server; kernel socket buffers are not included).
 *
 * The server runs in a forked child (one thread, one event loop, as the
 * member runs it); the client runs in the parent. --pin pins them to CPUs
 * 0 and 1. Besides calls/s, the server's CPU use is read from /proc so the
 * figure per server core is printed too.
 *
 * Usage: rpc-bench [--seconds N] [--inflight N] [--idle N] [--streams N] [--pin]
 */
#include "echo.pb-c.h"

#include "common/mem.h"
#include "server/channelz/channelz.h"
#include "server/rpc/rpc.h"

#include <event2/event.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---------------- server (child) ---------------- */

static void on_nop(struct rpc_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    Metcd__Test__EchoResponse resp = METCD__TEST__ECHO_RESPONSE__INIT;
    rpc_call_reply(call, &resp.base);
}

static void on_hold_msg(struct rpc_call *call, const ProtobufCMessage *msg)
{
    (void)call;
    (void)msg;
}

static void on_hold_cancel(struct rpc_call *call, enum rpc_code code)
{
    (void)call;
    (void)code;
}

static void on_hold_end(struct rpc_call *call)
{
    rpc_call_finish(call, RPC_CODE_OK, NULL);
}

static const struct rpc_method bench_methods[] = {
    {.path = "/bench.B/Nop", .kind = RPC_UNARY,
     .request = &metcd__test__echo_request__descriptor,
     .response = &metcd__test__echo_response__descriptor, .on_message = on_nop},
    {.path = "/bench.B/Hold", .kind = RPC_BIDI,
     .request = &metcd__test__echo_request__descriptor,
     .response = &metcd__test__echo_response__descriptor, .on_message = on_hold_msg,
     .on_half_close = on_hold_end, .on_cancel = on_hold_cancel},
};

static struct rpc_server *bench_srv;

static void on_mem(struct rpc_http_req *req, void *data)
{
    (void)data;
    struct mallinfo2 mi = mallinfo2();
    struct rpc_server_stats st;
    rpc_server_get_stats(bench_srv, &st);
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    char body[160];
    int n = snprintf(body, sizeof body, "%zu %llu %llu %ld", mi.uordblks,
                     (unsigned long long)st.conns_open, (unsigned long long)st.calls_open,
                     rss * sysconf(_SC_PAGESIZE));
    rpc_http_respond(req, 200, "text/plain", body, (size_t)n);
}

static void on_parent_gone(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char b[8];
    if (read(fd, b, sizeof b) <= 0)
        event_base_loopexit(arg, NULL);
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static bool pinning;

static int server_main(int port_fd, int life_fd)
{
    if (pinning)
        pin(0);
    struct event_base *base = event_base_new();
    struct channelz *cz;
    channelz_new(&cz, 30);
    struct rpc_server_config cfg = {.channelz = cz, .name = "bench"};
    uint16_t port = 0;
    if (rpc_server_new(&bench_srv, base, &cfg) != 0 ||
        rpc_server_register(bench_srv, bench_methods, 2, NULL) != 0 ||
        rpc_server_route(bench_srv, "/mem", on_mem, NULL, NULL) != 0 ||
        rpc_server_listen(bench_srv, "127.0.0.1", 0, &port) != 0)
        return 1;
    if (write(port_fd, &port, sizeof port) != sizeof port)
        return 1;
    close(port_fd);
    struct event *life = event_new(base, life_fd, EV_READ | EV_PERSIST, on_parent_gone, base);
    event_add(life, NULL);
    event_base_dispatch(base);
    event_free(life);
    rpc_server_free(bench_srv);
    channelz_free(cz);
    event_base_free(base);
    return 0;
}

/* ---------------- client (parent) ---------------- */

static struct event_base *base;
static char endpoint[64];
static uint64_t done_calls, failed_calls;
static bool measuring;
static bool stopping; /* no restarts while clients are freed */

struct slot {
    struct rpc_client *cl;
};

static void start_nop(struct slot *s);

static void on_nop_done(const ProtobufCMessage *resp, enum rpc_code code, const char *msg,
                        void *data)
{
    (void)resp;
    (void)msg;
    if (stopping)
        return;
    if (code != RPC_CODE_OK) {
        failed_calls++;
        if (failed_calls < 5)
            fprintf(stderr, "call failed: %s %s\n", rpc_code_name(code), msg);
    } else if (measuring) {
        done_calls++;
    }
    start_nop(data);
}

static void start_nop(struct slot *s)
{
    Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
    if (rpc_client_unary(s->cl, "/bench.B/Nop", &req.base,
                         &metcd__test__echo_response__descriptor, NULL, 0, 5000, on_nop_done,
                         s) != 0)
        failed_calls++;
}

static struct rpc_client *new_client(void)
{
    const char *eps[] = {endpoint};
    struct rpc_client_config cfg = {.endpoints = eps, .n_endpoints = 1};
    struct rpc_client *cl;
    if (rpc_client_new(&cl, base, &cfg) != 0) {
        fprintf(stderr, "rpc-bench: client\n");
        exit(1);
    }
    return cl;
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    event_base_loopbreak(base);
}

static void run_ms(unsigned ms)
{
    struct event *t = evtimer_new(base, on_stop, NULL);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(t, &tv);
    event_base_dispatch(base);
    event_free(t);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pid_t server_pid;

/* CPU seconds (user + system) used so far by process pid (0: self). */
static double cpu_seconds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid ? (int)pid : (int)getpid());
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double server_cpu_share, client_cpu_share;

static double throughput(int conns, int inflight, double seconds)
{
    struct rpc_client *cls[64];
    struct slot *slots = calloc((size_t)inflight, sizeof *slots);
    for (int i = 0; i < conns; i++)
        cls[i] = new_client();
    done_calls = failed_calls = 0;
    measuring = false;
    for (int i = 0; i < inflight; i++) {
        slots[i].cl = cls[i % conns];
        start_nop(&slots[i]);
    }
    run_ms(500); /* connect + warm up */
    measuring = true;
    double t0 = now_s(), s0 = cpu_seconds(server_pid), c0 = cpu_seconds(0);
    run_ms((unsigned)(seconds * 1000));
    double dt = now_s() - t0;
    server_cpu_share = (cpu_seconds(server_pid) - s0) / dt;
    client_cpu_share = (cpu_seconds(0) - c0) / dt;
    measuring = false;
    uint64_t n = done_calls;
    stopping = true; /* open calls end with CANCELLED: no restarts */
    for (int i = 0; i < conns; i++)
        rpc_client_free(cls[i]);
    stopping = false;
    free(slots);
    if (failed_calls > (uint64_t)inflight)
        fprintf(stderr, "rpc-bench: %llu failed calls\n", (unsigned long long)failed_calls);
    return (double)n / dt;
}

/* ---- memory: HTTP/1.1 GET /mem with our own tiny blocking reader ---- */

#include <arpa/inet.h>
#include <netinet/in.h>

static int server_port;

static void server_mem(size_t *heap, unsigned long long *conns, unsigned long long *calls,
                       long *rss)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)server_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        exit(1);
    }
    static const char req[] = "GET /mem HTTP/1.1\r\nConnection: close\r\n\r\n";
    if (write(fd, req, sizeof req - 1) < 0)
        exit(1);
    char buf[1024];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = 0;
    close(fd);
    char *body = strstr(buf, "\r\n\r\n");
    if (!body || sscanf(body + 4, "%zu %llu %llu %ld", heap, conns, calls, rss) != 4) {
        fprintf(stderr, "rpc-bench: bad /mem answer\n");
        exit(1);
    }
}

static void on_health_done(const ProtobufCMessage *resp, enum rpc_code code, const char *msg,
                           void *data)
{
    (void)resp;
    (void)code;
    (void)msg;
    (*(int *)data)++;
}

static const struct rpc_ccall_ops hold_ops;
static void on_hold_close(struct rpc_ccall *c, enum rpc_code code, const char *msg, void *data)
{
    (void)c;
    (void)code;
    (void)msg;
    (void)data;
}
static const struct rpc_ccall_ops hold_ops = {.on_close = on_hold_close};

static void memory(int idle, int streams)
{
    size_t h0, h1, h2;
    long r0, r1, r2;
    unsigned long long c0, c1, k0, k1;
    run_ms(200);
    server_mem(&h0, &c0, &k0, &r0);
    struct rpc_client **cls = calloc((size_t)idle, sizeof *cls);
    int answered = 0;
    for (int i = 0; i < idle; i++) {
        cls[i] = new_client();
        Metcd__Test__EchoRequest req = METCD__TEST__ECHO_REQUEST__INIT;
        rpc_client_unary(cls[i], "/bench.B/Nop", &req.base,
                         &metcd__test__echo_response__descriptor, NULL, 0, 10000,
                         on_health_done, &answered);
        if (i % 100 == 99)
            run_ms(20);
    }
    while (answered < idle)
        run_ms(50);
    run_ms(300);
    server_mem(&h1, &c1, &k1, &r1);
    printf("idle connections: %d open (one call made on each): server heap +%zu bytes = %.0f "
           "bytes per idle connection; resident +%ld bytes = %.0f bytes per idle connection\n",
           (int)(c1 - c0), h1 - h0, (double)(h1 - h0) / (double)(c1 - c0), r1 - r0,
           (double)(r1 - r0) / (double)(c1 - c0));
    /* Open streams spread over the first 10 connections. */
    struct rpc_ccall **calls = calloc((size_t)streams, sizeof *calls);
    for (int i = 0; i < streams; i++)
        rpc_ccall_start(cls[i % 10], "/bench.B/Hold", &metcd__test__echo_response__descriptor,
                        NULL, 0, 0, &hold_ops, NULL, &calls[i]);
    run_ms(500);
    server_mem(&h2, &c1, &k1, &r2);
    printf("open streams: %llu open: server heap +%zu bytes = %.0f bytes per open stream; "
           "resident +%ld bytes = %.0f bytes per open stream\n",
           k1 - k0, h2 - h1, (double)(h2 - h1) / (double)(k1 - k0 ? k1 - k0 : 1), r2 - r1,
           (double)(r2 - r1) / (double)(k1 - k0 ? k1 - k0 : 1));
    for (int i = 0; i < idle; i++)
        rpc_client_free(cls[i]);
    free(calls);
    free(cls);
}

int main(int argc, char **argv)
{
    double seconds = 3;
    int inflight = 64, idle = 1000, streams = 1000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pin") == 0) {
            pinning = true;
            continue;
        }
        if (i + 1 >= argc)
            break;
        if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--inflight") == 0)
            inflight = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--idle") == 0)
            idle = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--streams") == 0)
            streams = atoi(argv[i + 1]);
        i++;
    }
    int port_pipe[2], life_pipe[2];
    if (pipe(port_pipe) || pipe(life_pipe))
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(port_pipe[0]);
        close(life_pipe[1]);
        _exit(server_main(port_pipe[1], life_pipe[0]));
    }
    close(port_pipe[1]);
    close(life_pipe[0]);
    uint16_t port;
    if (read(port_pipe[0], &port, sizeof port) != sizeof port) {
        fprintf(stderr, "rpc-bench: server did not start\n");
        return 1;
    }
    server_port = port;
    server_pid = pid;
    if (pinning && sysconf(_SC_NPROCESSORS_ONLN) > 1)
        pin(1);
    signal(SIGPIPE, SIG_IGN);
    snprintf(endpoint, sizeof endpoint, "127.0.0.1:%u", port);
    base = event_base_new();
    printf("rpc-bench: server pid %d on %s (one event loop thread)%s\n", (int)pid, endpoint,
           pinning ? ", pinned to CPU 0, client to CPU 1" : "");
    memory(idle, streams); /* first: on a fresh server heap */
    int conns[] = {1, 16};
    for (int i = 0; i < 2; i++) {
        double r = throughput(conns[i], inflight, seconds);
        printf("unary Nop: %2d connection%s, %d in flight: %.0f calls/s (server loop %.0f%% of "
               "a core -> %.0f calls/s per server core; client %.0f%%)\n",
               conns[i], conns[i] > 1 ? "s" : " ", inflight, r, server_cpu_share * 100,
               server_cpu_share > 0 ? r / server_cpu_share : 0, client_cpu_share * 100);
        fflush(stdout);
    }
    close(life_pipe[1]);
    int st;
    waitpid(pid, &st, 0);
    event_base_free(base);
    return 0;
}
