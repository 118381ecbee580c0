/* tests/unit/server/pbjson_types.h - every message type of the etcd v3
 * API (etcdserverpb, mvccpb, authpb), found by walking the services'
 * methods and the message fields they reach. For the pbjson tests, the
 * fuzz target and the differential driver. */
#ifndef METCD_TESTS_PBJSON_TYPES_H
#define METCD_TESTS_PBJSON_TYPES_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* All types, sorted by full name; *n receives the count. Static storage. */
const ProtobufCMessageDescriptor *const *pbjson_types_all(size_t *n);
/* The type named "etcdserverpb.PutRequest", or NULL. */
const ProtobufCMessageDescriptor *pbjson_types_find(const char *full_name);

#endif
