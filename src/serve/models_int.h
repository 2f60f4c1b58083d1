/*
 * models_int.h: the model manager's state, shared by the files of
 * src/serve that make it up (models.c: resolving, loading, leases, eviction;
 * listing.c: what the store offers, without loading). Nothing outside
 * src/serve may include it.
 */
#ifndef AL_SERVE_MODELS_INT_H
#define AL_SERVE_MODELS_INT_H

#include <pthread.h>

#include "serve/models.h"

struct rref;
struct al_repo;
struct al_engine_verify_cache;

struct al_serve_models {
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* an entry finished loading; or stop */
    struct al_repo *repo;
    struct al_serve_config cfg;   /* cfg.chat_template is NULL: the copy is chat_template */
    char *chat_template;          /* the operator's Jinja for every model (owned), or NULL */
    struct al_engine_verify_cache *vcache;
    al_engine_admit_fn *admit;    /* every model's admission hook (al_serve_set_admit) */
    void *admit_ud;
    struct rref *refs;
    struct al_serve_lease *entries;
    bool preload_done;
    bool stop;
    pthread_t reaper;
    bool reaper_started;
};

/* Under mu: the reference name stands for (the configuration's aliases),
 * or name itself. */
static inline const char *al_serve__unalias(const struct al_serve_models *mm, const char *name)
{
    return al_serve_alias_target(mm->cfg.aliases, mm->cfg.n_aliases, mm->cfg.n_pinned ? mm->cfg.pinned[0] : NULL,
                                 name);
}

#endif
