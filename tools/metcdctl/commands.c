/* tools/metcdctl/commands.c - the root's commands, in the order help
 * lists them (etcdctl's, then metcd's own). Each lives in its cmd_*.c. */
#include "tools/metcdctl/ctl.h"

const struct ctl_cmd *const ctl_commands[] = {
    &ctl_cmd_alarm,
    &ctl_cmd_auth,
    &ctl_cmd_channelz,
    &ctl_cmd_check,
    &ctl_cmd_compaction,
    &ctl_cmd_completion,
    &ctl_cmd_defrag,
    &ctl_cmd_del,
    &ctl_cmd_elect,
    &ctl_cmd_endpoint,
    &ctl_cmd_get,
    &ctl_cmd_id,
    &ctl_cmd_lease,
    &ctl_cmd_lock,
    &ctl_cmd_make_mirror,
    &ctl_cmd_member,
    &ctl_cmd_move_leader,
    &ctl_cmd_put,
    &ctl_cmd_role,
    &ctl_cmd_snapshot,
    &ctl_cmd_txn,
    &ctl_cmd_user,
    &ctl_cmd_version,
    &ctl_cmd_watch,
    NULL,
};
