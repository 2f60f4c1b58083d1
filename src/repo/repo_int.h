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

/* Begins a change: write lock + transaction. */
enum al_rc al_repo__begin(struct al_repo *r, struct al_err *err);
/* Ends it: commit (or rollback on rc != AL_OK), unlock, rewrite index.json. */
enum al_rc al_repo__end(struct al_repo *r, enum al_rc rc, struct al_err *err);

#endif
