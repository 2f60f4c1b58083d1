/* repo_int.h: private to src/repo. */
#ifndef AL_REPO_REPO_INT_H
#define AL_REPO_REPO_INT_H

#include "repo/repo.h"

struct al_repo {
    struct al_store *store;
    struct al_index *index;
};

/* Fills facts from a weight file (GGUF); AL_OK with empty facts for others. */
enum al_rc al_repo__facts(const char *path, struct al_model_facts *facts, struct al_err *err);

/* Whether the index is lost rather than new. ix is the opened index, or
 * NULL when there was none to open (missing, empty, no tables; `what` is the
 * index module's message saying which). Lost: no index while the store holds
 * a blob or an index.json (both only exist once an index did); or an index
 * that never recorded an event while index.json lists versions. When lost,
 * *lost is true and err holds AL_ERR_CORRUPT with the message to show. */
enum al_rc al_repo__index_lost(struct al_store *s, struct al_index *ix, const char *what, bool *lost,
                               struct al_err *err);

/* index.json as the index says it should be (malloc'd); whether the file on
 * disk is exactly that; and the rewrite (atomic, only when it changed). */
enum al_rc al_repo__build_index_json(struct al_repo *r, char **out, struct al_err *err);
bool al_repo__index_json_current(struct al_repo *r, const char *json);
enum al_rc al_repo__write_index_json(struct al_repo *r, struct al_err *err);

/* Begins a change: write lock + transaction. */
enum al_rc al_repo__begin(struct al_repo *r, struct al_err *err);
/* Ends it: commit (or rollback on rc != AL_OK), unlock, rewrite index.json. */
enum al_rc al_repo__end(struct al_repo *r, enum al_rc rc, struct al_err *err);

#endif
