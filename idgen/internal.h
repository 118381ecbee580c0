/* idgen/internal.h - shared by idgen's own files only. */
#ifndef METCD_IDGEN_INTERNAL_H
#define METCD_IDGEN_INTERNAL_H

#include "idgen/idgen.h"

#include <stdarg.h>

/* Key names under the prefix. */
#define IDGEN_WORKERS_DIR "workers/"
#define IDGEN_TS_DIR "ts/"
#define IDGEN_OWNERS_DIR "owners/"
#define IDGEN_SEGMENTS_DIR "segments/"

/* A growable string (keys and values). Allocation failures are sticky:
 * once one fails, `oom` stays set and the text is incomplete. */
typedef struct idgen_buf {
    char *p;
    size_t len, cap;
    bool oom;
} idgen_buf;

void idgen_buf_printf(idgen_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string (quotes and escapes included). */
void idgen_buf_json_str(idgen_buf *b, const char *s);
void idgen_buf_reset(idgen_buf *b);
void idgen_buf_free(idgen_buf *b);

/* Parses a decimal int64 (optional leading '-', nothing else) of len bytes. */
int idgen_parse_i64(const char *s, size_t len, int64_t *out);

/* A stored tag value (segments/<tag>). description is owned. */
typedef struct idgen_tag_value {
    uint64_t max_id;
    int64_t step;
    char *description;
    int64_t update_time_ms;
} idgen_tag_value;

/* Encodes v as JSON into b (appended). */
void idgen_tag_encode(idgen_buf *b, const idgen_tag_value *v);
/* Decodes a stored value: IDGEN_ECORRUPT for anything but an object with
 * a non-negative integer max_id and a step >= 1 (description and
 * update_time are optional), IDGEN_ENOMEM. On success the caller frees
 * out->description with metcd_free. */
int idgen_tag_decode(const char *s, size_t len, idgen_tag_value *out);

/* Returns the normalised prefix (copied, ends in '/'), NULL when out of
 * memory. NULL or "" gives IDGEN_DEFAULT_PREFIX. */
char *idgen_prefix_dup(const char *prefix);

#endif
