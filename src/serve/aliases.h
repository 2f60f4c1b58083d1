/*
 * aliases.h: the other names `airlock serve` answers for a model, and the
 * tags it shows for it (serve --alias, --tags: llama-server's flags of those
 * names, which editor plugins and front ends set up against).
 *
 * A request that names an alias is served by the reference the alias stands
 * for, and an API key's model patterns are checked against that reference,
 * never against the alias: an alias renames, it grants nothing. /v1/models
 * lists such a model under its first alias in sort order, with every alias
 * and the tags (llama-server's "aliases" and "tags").
 *
 * Functions of the table alone (and the store's index, for the check): the
 * model manager (models.h) keeps a table in its configuration and calls
 * them under its lock.
 */
#ifndef AL_SERVE_ALIASES_H
#define AL_SERVE_ALIASES_H

#include <stdbool.h>

#include "core/err.h"
#include "core/limits.h"

#define AL_SERVE_MAX_ALIASES 16     /* models with aliases or tags */
#define AL_SERVE_ALIAS_TEXT  512    /* bytes of one model's names, or tags, comma-separated */
#define AL_SERVE_ALIAS_NAME  128    /* bytes of one alias or tag */

struct al_serve_alias {
    char ref[AL_LIMIT_REF + 1];     /* what the names stand for; "" the default model (the first REF) */
    char names[AL_SERVE_ALIAS_TEXT]; /* comma-separated, sorted, each once; "" none */
    char tags[AL_SERVE_ALIAS_TEXT];  /* comma-separated, in the order given; "" none */
};

/* Applies spec, "[REF=]a,b,c", to the table (*n entries of at most
 * AL_SERVE_MAX_ALIASES): the entry for REF ("" without "REF=") gets the
 * names (tags false) or the tags (true), replacing those it had. Names are
 * printable ASCII without spaces, ',' or '=', up to AL_SERVE_ALIAS_NAME
 * bytes; an alias may not begin with "rag/" (collection snapshots).
 * AL_ERR_USAGE with a message that names the bad part. */
enum al_rc al_serve_alias_set(struct al_serve_alias *t, int *n, const char *spec, bool tags, struct al_err *err);

/* The entry one of whose names is name; NULL when none. */
const struct al_serve_alias *al_serve_alias_lookup(const struct al_serve_alias *t, int n, const char *name);

/* The same name given to two entries: AL_ERR_USAGE naming it. */
enum al_rc al_serve_alias_check_unique(const struct al_serve_alias *t, int n, struct al_err *err);

/* In the functions below def is the default model's reference (the first
 * REF), which entries without "REF=" stand for; NULL when there is none. */

/* The reference name stands for, or name itself when it is no alias. */
const char *al_serve_alias_target(const struct al_serve_alias *t, int n, const char *def, const char *name);

/* The entry whose reference names the model called model (its name part,
 * before ':' or '@'); NULL when none. */
const struct al_serve_alias *al_serve_alias_for_model(const struct al_serve_alias *t, int n, const char *def,
                                                      const char *model);

/* Every entry stands for a model of repo's store, and none of its names is
 * the name of another model there (a request for it would be ambiguous);
 * names unique (al_serve_alias_check_unique). AL_ERR_USAGE naming the
 * problem. */
struct al_repo;
enum al_rc al_serve_alias_check(const struct al_serve_alias *t, int n, const char *def, struct al_repo *repo,
                                struct al_err *err);

#endif
