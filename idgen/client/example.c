/* idgen/client/example.c - idgen-example: snowflake IDs in an application
 * with the idgen client library (idgen_client.h).
 *
 *   idgen-example [--endpoints host:port,...] [--count N] [--hold-ms N]
 *                 [--owner NAME] [--user U --password P]
 *
 * Starts a worker (it claims a worker id from the cluster), prints
 * "worker <id>", draws --count IDs and prints them as "ids <first>
 * <count>" lines (consecutive IDs of one millisecond), keeps the worker
 * --hold-ms more, then leaves (the id is free again) and prints
 * "stopped". Exit status 0, or 1 with the reason on stderr. */
#include "idgen/client/idgen_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ENDPOINTS 16

static void on_stopped(void *arg, int reason)
{
    (void)arg;
    if (reason != 0)
        fprintf(stderr, "idgen-example: the worker left: %s\n", idgen_strerror(reason));
}

static int usage(void)
{
    fprintf(stderr, "usage: idgen-example [--endpoints host:port,...] [--count N] "
                    "[--hold-ms N] [--owner NAME] [--user U --password P]\n");
    return 2;
}

int main(int argc, char **argv)
{
    char eps_buf[1024] = "127.0.0.1:2379";
    const char *eps[MAX_ENDPOINTS];
    size_t n_eps = 0;
    unsigned long long count = 10;
    long hold_ms = 0;
    const char *owner = NULL, *user = NULL, *password = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        const char *v = argv[++i];
        if (!strcmp(argv[i - 1], "--endpoints") && strlen(v) < sizeof(eps_buf))
            strcpy(eps_buf, v);
        else if (!strcmp(argv[i - 1], "--count"))
            count = strtoull(v, NULL, 10);
        else if (!strcmp(argv[i - 1], "--hold-ms"))
            hold_ms = strtol(v, NULL, 10);
        else if (!strcmp(argv[i - 1], "--owner"))
            owner = v;
        else if (!strcmp(argv[i - 1], "--user"))
            user = v;
        else if (!strcmp(argv[i - 1], "--password"))
            password = v;
        else
            return usage();
    }
    for (char *p = eps_buf; p && n_eps < MAX_ENDPOINTS;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = 0;
        eps[n_eps++] = p;
        p = comma ? comma + 1 : NULL;
    }

    idgen_client_config cfg = {
        .endpoints = eps,
        .n_endpoints = n_eps,
        .owner = owner,
        .user = user,
        .password = password,
        .on_stopped = on_stopped,
    };
    idgen_client *c;
    char err[256];
    int rc = idgen_client_new(&c, &cfg, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "idgen-example: %s\n", err);
        return 1;
    }
    rc = idgen_client_wait_ready(c, 30000);
    if (rc != 0) {
        fprintf(stderr, "idgen-example: %s\n", idgen_strerror(rc));
        idgen_client_free(c);
        return 1;
    }
    idgen_worker_info in;
    idgen_client_info(c, &in);
    printf("worker %d\n", in.worker_id);
    for (unsigned long long left = count; left > 0;) {
        idgen_range r[4];
        size_t n;
        rc = idgen_client_next_n(c, left, r, 4, &n);
        if (rc != 0) {
            fprintf(stderr, "idgen-example: %s\n", idgen_strerror(rc));
            idgen_client_free(c);
            return 1;
        }
        for (size_t i = 0; i < n; i++) {
            printf("ids %llu %llu\n", (unsigned long long)r[i].start,
                   (unsigned long long)r[i].count);
            left -= r[i].count;
        }
    }
    fflush(stdout);
    if (hold_ms > 0) {
        struct timespec ts = {hold_ms / 1000, (hold_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    rc = idgen_client_stop(c, 10000);
    printf("%s\n", rc == 0 ? "stopped" : "stop timed out");
    idgen_client_free(c);
    return rc == 0 ? 0 : 1;
}
