/* tests/interop/echo_service.h - the metcd.test.Echo service over
 * server/rpc, shared by the interop server, the unit tests and the bench. */
#ifndef METCD_TESTS_ECHO_SERVICE_H
#define METCD_TESTS_ECHO_SERVICE_H

#include "server/rpc/rpc.h"
#include "echo.pb-c.h"

struct event_base;

/* Registers metcd.test.Echo on srv; timers run on base (borrowed). */
int echo_service_register(struct rpc_server *srv, struct event_base *base);

/* Calls the service's handlers saw end by on_cancel, and live streams. */
extern unsigned long echo_cancelled;
extern long echo_live;

#endif
