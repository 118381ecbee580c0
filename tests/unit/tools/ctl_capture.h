/* tests/unit/tools/ctl_capture.h - runs metcdctl command lines in-process
 * (ctl_main) with stdout, stderr and stdin in memory, for the metcdctl
 * unit tests. */
#ifndef METCD_TESTS_UNIT_TOOLS_CTL_CAPTURE_H
#define METCD_TESTS_UNIT_TOOLS_CTL_CAPTURE_H

#include "tools/metcdctl/ctl.h"

#include <stdbool.h>
#include <stdio.h>

struct cap {
    struct ctl c;
    char *out, *err; /* what the last run wrote, NUL-terminated */
    size_t outlen, errlen;
    FILE *in;
    bool open;
};

/* A fresh ctl with its streams in memory (what cap_run starts from), for
 * calling a command's helpers directly. */
void cap_open(struct cap *k, const char *stdin_text);

/* Runs "metcdctl <line>" (words split on single spaces) in a fresh ctl,
 * with stdin_text as stdin (NULL: none); the output stays in k until the
 * next run or cap_close. Returns the exit status. */
int cap_run(struct cap *k, const char *line, const char *stdin_text);

/* Frees what the last run left (idempotent; k may be zeroed). */
void cap_close(struct cap *k);

#endif
