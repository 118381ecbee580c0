/* tools/metcdctl/main.c - metcdctl's main(): the root (root.c) on the
 * process's streams. */
#include "tools/metcdctl/ctl.h"

int main(int argc, char **argv)
{
    static struct ctl ctl;
    ctl_defaults(&ctl);
    int rc = ctl_main(&ctl, argc, argv);
    ctl_close(&ctl);
    if (fflush(stdout) != 0 && rc == 0)
        rc = CTL_EXIT_IO;
    return rc;
}
