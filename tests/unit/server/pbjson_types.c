/* tests/unit/server/pbjson_types.c - see pbjson_types.h. */
#include "pbjson_types.h"

#include "server/authpb/auth.pb-c.h"
#include "server/etcdserverpb/rpc.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define MAX_TYPES 256

static const ProtobufCMessageDescriptor *types[MAX_TYPES];
static size_t n_types;

static void add(const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < n_types; i++)
        if (types[i] == d)
            return;
    if (n_types == MAX_TYPES)
        abort();
    types[n_types++] = d;
    for (unsigned f = 0; f < d->n_fields; f++)
        if (d->fields[f].type == PROTOBUF_C_TYPE_MESSAGE)
            add(d->fields[f].descriptor);
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const ProtobufCMessageDescriptor *const *)a)->name,
                  (*(const ProtobufCMessageDescriptor *const *)b)->name);
}

const ProtobufCMessageDescriptor *const *pbjson_types_all(size_t *n)
{
    if (!n_types) {
        const ProtobufCServiceDescriptor *svcs[] = {
            &etcdserverpb__kv__descriptor,      &etcdserverpb__watch__descriptor,
            &etcdserverpb__lease__descriptor,   &etcdserverpb__cluster__descriptor,
            &etcdserverpb__maintenance__descriptor, &etcdserverpb__auth__descriptor,
        };
        for (size_t s = 0; s < sizeof svcs / sizeof *svcs; s++)
            for (unsigned m = 0; m < svcs[s]->n_methods; m++) {
                add(svcs[s]->methods[m].input);
                add(svcs[s]->methods[m].output);
            }
        /* types no method uses */
        add(&authpb__role__descriptor);
        add(&authpb__user__descriptor);
        add(&etcdserverpb__lease_checkpoint__descriptor);
        add(&etcdserverpb__lease_checkpoint_request__descriptor);
        add(&etcdserverpb__lease_checkpoint_response__descriptor);
        qsort(types, n_types, sizeof *types, by_name);
    }
    *n = n_types;
    return types;
}

const ProtobufCMessageDescriptor *pbjson_types_find(const char *full_name)
{
    size_t n;
    const ProtobufCMessageDescriptor *const *all = pbjson_types_all(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i]->name, full_name) == 0)
            return all[i];
    return NULL;
}
