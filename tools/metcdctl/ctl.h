/* tools/metcdctl/ctl.h - metcdctl, metcd's command line client: etcdctl
 * 3.4's commands, flags, environment and output formats, plus metcd's own
 * (id, channelz).
 *
 * Structure:
 *   main.c     the root command: global flags (etcdctl's, with their
 *              ETCDCTL_* variables), the command table, dispatch;
 *   flags.c    flag parsing with pflag's rules (--name value, --name=value,
 *              -x value, bool flags take no separate value, "--" ends the
 *              flags, flags may come between arguments) and its error
 *              texts; help in etcdctl's NAME/USAGE/OPTIONS layout; cobra's
 *              unique-prefix command matching;
 *   ctl.c      the connection (endpoints with failover, TLS, the auth
 *              token), blocking unary calls with the command timeout,
 *              "Error: ..." lines and exit codes, number parsing;
 *   print.c    what output formats share: Go encoding/json of a protobuf-c
 *              message as etcdctl's -w json prints it, -w protobuf, the
 *              ResponseHeader in -w fields, --hex, the tables of -w table;
 *   cmd_<x>.c  one file per command or group of commands; each exports a
 *              `const struct ctl_cmd ctl_cmd_<x>` listed in main.c.
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
    CTL_EXIT_INVALID_INPUT = 3, /* txn, watch */
    CTL_EXIT_BAD_FEATURE = 4,   /* a valid flag with an unsupported value */
    CTL_EXIT_INTERRUPTED = 5,
    CTL_EXIT_IO = 6,
    CTL_EXIT_BAD_ARGS = 128,
};

enum ctl_format {
    CTL_FORMAT_SIMPLE = 0,
    CTL_FORMAT_JSON,
    CTL_FORMAT_FIELDS,
    CTL_FORMAT_TABLE,
    CTL_FORMAT_PROTOBUF,
};

#define CTL_MAX_ENDPOINTS 16
#define CTL_MAX_FLAGS 24 /* per command, globals apart */
#define CTL_MAX_ARGS 64  /* positional arguments of one command */

struct event_base;
struct rpc_client;
struct rpc_md;
struct ssl_ctx_st;

/* Global state: the global flags' values and the connection. */
struct ctl {
    const char *endpoints[CTL_MAX_ENDPOINTS];
    size_t n_endpoints;
    char endpoints_buf[1024];
    uint32_t dial_timeout_ms;
    uint32_t command_timeout_ms;
    uint32_t keepalive_time_ms;
    uint32_t keepalive_timeout_ms;
    int format; /* enum ctl_format */
    const char *format_name; /* --write-out as given, checked at run */
    bool hex;
    bool debug;
    bool insecure_transport;   /* default true, as etcdctl's */
    bool insecure_skip_verify;
    const char *cert, *key, *cacert; /* borrowed from argv/environ */
    const char *user, *password;
    FILE *out, *err;
    FILE *in; /* stdin for txn, put without a value, interactive watch */
    /* made on the first call (ctl_connect) */
    struct event_base *base;
    struct rpc_client *client;
    struct ssl_ctx_st *tls;
    char *token; /* auth token once authenticated; metcd_free */
};

/* ------------------------------------------------------------------------ */
/* Commands and flags                                                       */

enum ctl_flag_type {
    CTL_FLAG_BOOL,     /* --x, --x=true|false; never takes the next word */
    CTL_FLAG_STRING,
    CTL_FLAG_INT,      /* Go int64 (strconv.ParseInt) */
    CTL_FLAG_UINT,     /* Go uint64 (strconv.ParseUint) */
    CTL_FLAG_DURATION, /* Go time.ParseDuration: "5s", "1m30s", "500ms" */
    CTL_FLAG_STRINGS,  /* StringSlice: comma-separated, repeatable */
};

struct ctl_flag {
    const char *name; /* long name, without "--" */
    char shorthand;   /* 0, or the letter of "-x" */
    enum ctl_flag_type type;
    const char *def;  /* default as etcdctl's help shows it ("0", "", "5s") */
    const char *usage;
};

struct ctl_args;

struct ctl_cmd {
    const char *name;    /* "get" */
    const char *use;     /* "get [options] <key> [range_end]" */
    const char *summary; /* "Gets the key or a range of keys" */
    const char *description; /* longer text for --help, may be NULL */
    const struct ctl_flag *flags;
    size_t n_flags;
    /* A leaf runs; a group (run NULL) has subcommands. */
    int (*run)(struct ctl *c, const struct ctl_args *a);
    const struct ctl_cmd *const *subs; /* NULL-terminated, or NULL */
};

/* One command's parsed line. Values are borrowed from argv. */
struct ctl_args {
    const struct ctl_cmd *cmd;
    const char *path;   /* "lease grant" (for messages) */
    const char *pos[CTL_MAX_ARGS]; /* arguments, in order ("--" dropped) */
    size_t n_pos;
    size_t dash_at; /* index in pos of the first argument after "--", or n_pos */
    bool dashed;    /* "--" was given (even as the last word) */
    const char *val[CTL_MAX_FLAGS]; /* per cmd->flags[i]: last value, or NULL */
    bool set[CTL_MAX_FLAGS];
    const char *multi[CTL_MAX_FLAGS][8]; /* STRINGS: each occurrence */
    size_t n_multi[CTL_MAX_FLAGS];
};

/* Flag getters by long name (the name must be one of the command's flags:
 * asserted). Values were validated by parsing; these return the value, or
 * the flag's default when not given. */
bool ctl_bool(const struct ctl_args *a, const char *name);
const char *ctl_str(const struct ctl_args *a, const char *name);
int64_t ctl_int(const struct ctl_args *a, const char *name);
uint64_t ctl_uint(const struct ctl_args *a, const char *name);
uint32_t ctl_duration_ms(const struct ctl_args *a, const char *name);
bool ctl_changed(const struct ctl_args *a, const char *name);

/* Parses argv (argv[0] is the command's own name) for cmd into *a.
 * Global flags may come anywhere and are applied at once
 * (ctl_apply_global). 0; CTL_HELP_SHOWN when -h/--help asks for the help
 * (the caller prints it);
 * or the error printed as etcdctl prints a flag error and its exit
 * status. path is the command's full name ("lease grant"), borrowed. */
#define CTL_HELP_SHOWN (-1)
int ctl_parse_args(struct ctl *c, const struct ctl_cmd *cmd, const char *path, int argc,
                   char **argv, struct ctl_args *a);

/* Writes the command's help (etcdctl's layout) to out. */
void ctl_help(struct ctl *c, FILE *out, const struct ctl_cmd *cmd, const char *path);

/* The version metcdctl reports (the etcd API it speaks). */
#define CTL_VERSION "3.4.23"

/* Writes a block of flag lines (sorted by name, etcdctl's layout). */
void ctl_help_flags(FILE *out, const struct ctl_flag *flags, size_t n);

/* Global flags (root.c): the table, for help and completion. */
extern const struct ctl_flag ctl_global_flags[];
extern const size_t ctl_n_global_flags;
/* Applies one global flag; 0, or prints and returns the exit status. */
int ctl_apply_global(struct ctl *c, const struct ctl_flag *f, const char *value);

/* The root's commands, NULL-terminated (commands.c). */
extern const struct ctl_cmd *const ctl_commands[];
extern const struct ctl_cmd ctl_cmd_alarm;       /* cmd_maint.c */
extern const struct ctl_cmd ctl_cmd_check;       /* cmd_check.c */
extern const struct ctl_cmd ctl_cmd_defrag;      /* cmd_maint.c */
extern const struct ctl_cmd ctl_cmd_endpoint;    /* cmd_endpoint.c */
extern const struct ctl_cmd ctl_cmd_member;      /* cmd_member.c */
extern const struct ctl_cmd ctl_cmd_move_leader; /* cmd_maint.c */
extern const struct ctl_cmd ctl_cmd_snapshot;    /* cmd_maint.c */
extern const struct ctl_cmd ctl_cmd_snapshot_status;  /* cmd_snapshot.c */
extern const struct ctl_cmd ctl_cmd_snapshot_restore; /* cmd_snapshot.c */
extern const struct ctl_cmd ctl_cmd_version;     /* cmd_maint.c */
extern const struct ctl_cmd ctl_cmd_channelz;   /* cmd_channelz.c */
extern const struct ctl_cmd ctl_cmd_completion; /* cmd_completion.c */
extern const struct ctl_cmd ctl_cmd_id; /* cmd_id.c */
extern const struct ctl_cmd ctl_cmd_compaction, ctl_cmd_del, ctl_cmd_get, ctl_cmd_put; /* cmd_kv.c */
extern const struct ctl_cmd ctl_cmd_txn; /* cmd_txn.c */
extern const struct ctl_cmd ctl_cmd_lease; /* cmd_lease.c */
extern const struct ctl_cmd ctl_cmd_auth, ctl_cmd_role, ctl_cmd_user; /* cmd_auth.c */
extern const struct ctl_cmd ctl_cmd_elect, ctl_cmd_lock; /* cmd_lock.c */
extern const struct ctl_cmd ctl_cmd_make_mirror; /* cmd_mirror.c */
extern const struct ctl_cmd ctl_cmd_watch; /* cmd_watch.c */

/* Sets the defaults of every global flag (streams: stdout, stderr,
 * stdin). */
void ctl_defaults(struct ctl *c);
/* Runs one command line (argv[0] is the program): parses, applies the
 * ETCDCTL_* variables, runs; returns the exit status. The connection
 * stays open for ctl_close. */
int ctl_main(struct ctl *c, int argc, char **argv);

/* Go value checks with Go's error texts, 0 or -1 with the text in err. */
int ctl_go_parse_bool(const char *s, bool *out);
int ctl_go_parse_int(const char *s, int64_t *out, char *err, size_t errlen);
int ctl_go_parse_uint(const char *s, uint64_t *out, char *err, size_t errlen);
int ctl_go_parse_duration_ms(const char *s, int64_t *ms, char *err, size_t errlen);

/* ------------------------------------------------------------------------ */
/* Connection and calls                                                     */

/* Dials (once): builds the TLS context from --cert/--key/--cacert when
 * asked, then the client over the endpoints, then authenticates when
 * --user is given. 0 or the exit status (error printed). */
int ctl_connect(struct ctl *c);

/* The metadata every call carries (the auth token), for stream callers:
 * *n entries at the returned array (valid until ctl_close). */
const struct rpc_md *ctl_md(struct ctl *c, size_t *n);

/* Blocking unary call with the command timeout. On success *resp gets the
 * answer (free with protobuf_c_message_free_unpacked(*resp,
 * &metcd_pb_allocator)) and 0 is returned; otherwise the error is printed
 * ("Error: <message>") and the exit status returned. */
int ctl_unary(struct ctl *c, const char *path, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp);
/* The same with an explicit timeout (0: none) and no printing: *code and
 * *msg (metcd_free; may be NULL) say how it ended. 0 when a status was
 * obtained, else a negative rpc error (connection). */
int ctl_unary_quiet(struct ctl *c, const char *path, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, uint32_t timeout_ms,
                    ProtobufCMessage **resp, int *code, char **msg);

/* ctl_unary_quiet that prints a failure as "Error: <server text>" (or the
 * connection error) and returns exit_code for it; 0 and *resp on success
 * (etcdctl's commands that exit with their own code, without the
 * command timeout mapping of ctl_unary). */
int ctl_unary_exit(struct ctl *c, const char *path, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *resp_desc, uint32_t timeout_ms,
                   int exit_code, ProtobufCMessage **resp);

/* Prints "Error: <text>" to c->err and returns code. */
int ctl_fail(struct ctl *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Closes the connection (idempotent). */
void ctl_close(struct ctl *c);

/* The endpoints a per-endpoint command (endpoint, defrag) asks: --endpoints
 * as given, or with cluster every client URL of the member list (etcdctl's
 * endpointsFromCluster). Free with ctl_endpoint_list_free. 0 or the exit
 * status (error printed). */
struct ctl_endpoint_list {
    char *eps[CTL_MAX_ENDPOINTS * 4];
    size_t n;
};
int ctl_target_endpoints(struct ctl *c, bool cluster, struct ctl_endpoint_list *l);
void ctl_endpoint_list_free(struct ctl_endpoint_list *l);
/* A connection to the one endpoint ep (borrowed) with c's settings, in
 * *sub; close it with ctl_close(sub) whatever this returns. 0 or the exit
 * status (error printed to c->err). */
int ctl_open_endpoint(struct ctl *c, const char *ep, struct ctl *sub);
/* A unary call on such a connection that prints nothing: 0 with *resp;
 * otherwise the error text (etcdctl's) in err and 1 when the server said
 * permission denied, -2 when the endpoint could not be reached, -1 for
 * anything else. */
int ctl_endpoint_call(struct ctl *sub, const char *path, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                      char *err, size_t errlen);

/* ------------------------------------------------------------------------ */
/* Output                                                                   */

/* Prints msg as Go's json.Marshal prints the gogo-protobuf struct (what
 * etcdctl -w json shows): fields in .proto order under their .proto names,
 * zero values omitted, 64-bit integers as numbers, bytes as base64, enums
 * as numbers, a set oneof as {"<OneofCamel>":{"<FieldCamel>":...}}; then a
 * newline. */
void ctl_print_json(struct ctl *c, const ProtobufCMessage *msg);
/* The same into a stream without the newline (for wrappers such as
 * clientv3.WatchResponse). */
void ctl_json_msg(FILE *out, const ProtobufCMessage *msg);
/* -w protobuf: the message's wire bytes. 0 or CTL_EXIT_ERROR. */
int ctl_print_protobuf(struct ctl *c, const ProtobufCMessage *msg);
/* Writes s[0..len) as a Go JSON string (encoding/json escaping). */
void ctl_json_bytes_str(FILE *out, const void *s, size_t len);
void ctl_json_str(FILE *out, const char *s);
/* Writes data as standard padded base64 (no quotes). */
void ctl_base64(FILE *out, const void *data, size_t len);
/* Writes s[0..len) as Go's %q (strconv.Quote) would, quotes included. */
void ctl_go_quote(FILE *out, const void *s, size_t len);
/* etcdctl's --hex form of a byte string: "\x66\x6f\x6f". */
void ctl_hex_bytes(FILE *out, const void *s, size_t len);
/* A byte string as simple output prints it: raw, or --hex. */
void ctl_print_bytes(struct ctl *c, const void *s, size_t len);

struct Mvccpb__KeyValue;
/* A key-value as etcdctl's simple printer shows it: the key and the value
 * on lines of their own (the value alone with value_only; --hex applies). */
void ctl_simple_kv(struct ctl *c, const struct Mvccpb__KeyValue *kv, bool value_only);
/* A key-value's -w fields lines ("Key" : "foo" ... "Lease" : 0), each
 * name prefixed with pfx ("" or "Prev"). */
void ctl_fields_kv(struct ctl *c, const char *pfx, const struct Mvccpb__KeyValue *kv);

/* -w fields' header lines ("ClusterID" : 1 ...) from an
 * etcdserverpb.ResponseHeader (NULL prints nothing). */
void ctl_fields_header(struct ctl *c, const ProtobufCMessage *hdr);

/* A table as etcdctl's tablewriter draws it (ASCII borders, headers
 * upper-cased and centred, cells right-aligned). Cells are copied. */
struct ctl_table;
struct ctl_table *ctl_table_new(size_t n_cols, const char *const *headers);
int ctl_table_row(struct ctl_table *t, const char *const *cells);
void ctl_table_render(struct ctl_table *t, FILE *out);
void ctl_table_free(struct ctl_table *t);

/* go-humanize's Bytes (SI units: "20 kB", "1.2 MB"), as etcdctl's tables
 * print sizes. */
void ctl_humanize_bytes(uint64_t n, char *buf, size_t len);

/* Go's text of an errno (syscall.Errno.Error): strerror's with a
 * lower-case first letter ("no such file or directory"). */
void ctl_go_errno(int e, char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Small parsers                                                            */

/* Strict decimal in [lo, hi]. 0 or -1. */
int ctl_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
/* Splits a comma-separated endpoint list into c->endpoints. 0 or -1. */
int ctl_set_endpoints(struct ctl *c, const char *list);

#endif
