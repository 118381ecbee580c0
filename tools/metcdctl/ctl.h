/* tools/metcdctl/ctl.h - metcdctl, metcd's command line client.
 *
 * Structure (meant to grow into the full etcdctl-compatible CLI):
 *   main.c     global flags (etcdctl's --endpoints, --dial-timeout,
 *              --command-timeout, -w/--write-out, and ETCDCTL_* variables),
 *              the table of command groups, help, dispatch;
 *   ctl.c      what every command needs: the gRPC connection, a blocking
 *              unary call with the command timeout, error reporting with
 *              etcdctl's "Error: ..." lines and exit codes, number parsing;
 *   cmd_<group>.c  one file per group of commands; a group is a table of
 *              commands, each with its own flags.
 * Groups so far: id (the ID service, idgen/idgenpb/idgen.proto).
 */
#ifndef METCD_TOOLS_METCDCTL_CTL_H
#define METCD_TOOLS_METCDCTL_CTL_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* etcdctl's exit codes (etcdctl/ctlv3/command/error.go). */
enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_ERROR = 1,
    CTL_EXIT_BAD_CONNECTION = 2,
    CTL_EXIT_INVALID_INPUT = 3,
    CTL_EXIT_BAD_ARGS = 128,
};

enum ctl_format { CTL_FORMAT_SIMPLE = 0, CTL_FORMAT_JSON = 1 };

#define CTL_MAX_ENDPOINTS 16

struct event_base;
struct rpc_client;

struct ctl {
    const char *endpoints[CTL_MAX_ENDPOINTS];
    size_t n_endpoints;
    char endpoints_buf[1024];
    uint32_t dial_timeout_ms;
    uint32_t command_timeout_ms;
    int format; /* enum ctl_format */
    FILE *out, *err;
    /* made on the first call */
    struct event_base *base;
    struct rpc_client *client;
};

/* A command: run gets its own arguments (argv[0] is the command's name)
 * and returns an exit status. */
struct ctl_command {
    const char *name;
    const char *args;    /* "TAG [--count N]" */
    const char *summary; /* one line */
    int (*run)(struct ctl *c, int argc, char **argv);
};

struct ctl_group {
    const char *name;
    const char *summary;
    const struct ctl_command *commands;
    size_t n_commands;
};

extern const struct ctl_group ctl_id_group; /* cmd_id.c */

/* Blocking unary call on the first usable endpoint, with the command
 * timeout. On success *resp gets the answer (free with
 * protobuf_c_message_free_unpacked(*resp, &metcd_pb_allocator)) and 0 is
 * returned; otherwise the error is printed ("Error: <message>") and the
 * exit status returned. */
int ctl_unary(struct ctl *c, const char *path, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp);

/* Prints "Error: <text>" to c->err and returns code. */
int ctl_fail(struct ctl *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses a command's flags: every "--name value" or "--name=value" whose
 * name is in `names` (NULL-terminated) goes to values[i]; the rest, in
 * order, into pos (at most max_pos; *n_pos set). Returns 0, or prints the
 * error and returns CTL_EXIT_BAD_ARGS. */
int ctl_flags(struct ctl *c, int argc, char **argv, const char *const *names, const char **values,
              const char **pos, size_t max_pos, size_t *n_pos);

/* Strict decimal in [lo, hi]. 0 or -1. */
int ctl_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
/* A Go duration as etcdctl takes it ("5s", "500ms", "1m", "2"): ms. */
int ctl_parse_duration_ms(const char *s, uint32_t *ms);
/* Splits a comma-separated endpoint list into c->endpoints. 0 or -1. */
int ctl_set_endpoints(struct ctl *c, const char *list);
/* Writes s as a JSON string (quotes and escapes). */
void ctl_json_str(FILE *out, const char *s);

/* Closes the connection. */
void ctl_close(struct ctl *c);

#endif
