/* tests/unit/tools/ctl_capture.c - see ctl_capture.h. */
#include "tests/unit/tools/ctl_capture.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

void cap_close(struct cap *k)
{
    if (!k->open)
        return;
    ctl_close(&k->c);
    fclose(k->c.out);
    fclose(k->c.err);
    if (k->in)
        fclose(k->in);
    free(k->out);
    free(k->err);
    memset(k, 0, sizeof(*k));
}

void cap_open(struct cap *k, const char *stdin_text)
{
    cap_close(k);
    ctl_defaults(&k->c);
    k->c.out = open_memstream(&k->out, &k->outlen);
    k->c.err = open_memstream(&k->err, &k->errlen);
    ck_assert_ptr_nonnull(k->c.out);
    ck_assert_ptr_nonnull(k->c.err);
    if (stdin_text) {
        k->in = fmemopen((void *)stdin_text, strlen(stdin_text), "r");
        ck_assert_ptr_nonnull(k->in);
        k->c.in = k->in;
    }
    k->open = true;
}

int cap_run(struct cap *k, const char *line, const char *stdin_text)
{
    char buf[1024];
    char *argv[96];
    int argc = 0;
    snprintf(buf, sizeof(buf), "metcdctl %s", line);
    for (char *t = strtok(buf, " "); t && argc < 95; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    cap_open(k, stdin_text);
    int rc = ctl_main(&k->c, argc, argv);
    fflush(k->c.out);
    fflush(k->c.err);
    return rc;
}
