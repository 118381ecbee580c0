/* server/config/config_internal.h - shared between the files of
 * server/config only (never included from another module). */
#ifndef METCD_SERVER_CONFIG_INTERNAL_H
#define METCD_SERVER_CONFIG_INTERNAL_H

#include "server/config/config.h"

#include <stdarg.h>

enum cfg_type {
    CT_STR,     /* char * */
    CT_BOOL,    /* bool */
    CT_UINT,    /* uint64_t, Go strconv.ParseUint(s, 0, 64) */
    CT_INT,     /* int64_t, Go strconv.ParseInt(s, 0, 64) */
    CT_UINT32,  /* uint32_t, base 10, strconv's messages */
    CT_DUR,     /* int64_t nanoseconds, Go time.ParseDuration */
    CT_URLS,    /* struct config_list, sorted + unique URLs */
    CT_STRS,    /* struct config_list, comma-separated, kept in order */
    CT_USTRS,   /* struct config_list, comma-separated, sorted + unique */
    CT_SELECT,  /* char *, one of choices */
    CT_IGNORED, /* legacy flag: accepted as a boolean, warned about */
};

enum cfg_group {
    G_NONE,
    G_MEMBER,
    G_CLUSTER,
    G_SECURITY,
    G_AUTH,
    G_MONITOR,
    G_LOGGING,
    G_PROXY,
    G_EXPERIMENTAL,
    G_UNSAFE,
    G_DEPRECATED,
    G_HIDDEN,
};

struct cfg_flag {
    const char *name;
    enum cfg_type type;
    size_t off;                 /* offsetof(struct config, field); unused for CT_IGNORED */
    const char *def;            /* default, as flag text */
    const char *const *choices; /* CT_SELECT */
    const char *allow;          /* CT_URLS: a literal also accepted ("" or "*") */
    enum cfg_group group;
    const char *shown; /* default as shown in --help (NULL: def) */
    const char *help;
};

extern const struct cfg_flag cfg_flags[];
extern const size_t cfg_nflags;

/* Index of a flag by name, or -1. */
long cfg_flag_find(const char *name);

/* Formats into cfg->errmsg. */
void cfg_errf(struct config *cfg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a note "<lvl><pkg>\t<msg>" (lvl one of D I N W E C, or R for a raw
 * stderr line). Returns 0 or CONFIG_ERR_NOMEM. */
int cfg_note(struct config *cfg, char lvl, const char *pkg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Go's %q for plain strings: quotes, escapes \ " and control bytes. Writes
 * into buf (always NUL-terminated), returns buf. */
const char *cfg_goquote(const char *s, char *buf, size_t len);

void cfg_list_free(struct config_list *l);
int cfg_list_push(struct config_list *l, const char *s);

/* YAML config file (yaml.c). */
int cfg_load_yaml(struct config *cfg, const char *text, size_t len);

#endif
