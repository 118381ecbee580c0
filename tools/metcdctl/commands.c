/* tools/metcdctl/commands.c - the root's commands, in the order help
 * lists them (etcdctl's, then metcd's own). Each lives in its cmd_*.c. */
#include "tools/metcdctl/ctl.h"

const struct ctl_cmd *const ctl_commands[] = {
    &ctl_cmd_alarm,
    &ctl_cmd_check,
    &ctl_cmd_defrag,
    &ctl_cmd_endpoint,
    &ctl_cmd_member,
    &ctl_cmd_move_leader,
    &ctl_cmd_snapshot,
    &ctl_cmd_version,
    &ctl_cmd_id,
    NULL,
};
