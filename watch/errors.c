/* watch/errors.c - watch_strerror. */
#include "watch/watch.h"

const char *watch_strerror(int code)
{
    switch (code) {
    case WATCH_OK:
        return "ok";
    case WATCH_ENOMEM:
        return "watch: out of memory";
    case WATCH_EINVALID:
        return "watch: invalid argument";
    case WATCH_EBACKEND:
        return "watch: reading history failed";
    case WATCH_ENOT_FOUND:
        return "mvcc: watcher does not exist";
    case WATCH_ECLOSED:
        return "watch: stream closed";
    case WATCH_SEND_FULL:
        return "watch: stream outbound queue full";
    default:
        return "watch: unknown error";
    }
}
