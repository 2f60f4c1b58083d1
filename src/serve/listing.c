/*
 * listing.c: what the store offers to a server without loading anything:
 * the names of the models with an active version (/v1/models), and their
 * versions with what their GGUF headers say (Ollama's /api/tags, /api/show).
 * Part of the model manager (models.h); its lock guards the repo.
 */
#include "serve/models.h"
#include "serve/models_int.h"

#include "core/limits.h"
#include "repo/repo.h"

enum al_rc al_serve_names(struct al_serve_models *mm, char ***names, size_t *n, struct al_err *err)
{
    struct al_version *rows = NULL;
    size_t nrows = 0;
    pthread_mutex_lock(&mm->mu);
    enum al_rc rc = al_repo_list_versions(mm->repo, NULL, &rows, &nrows, err);
    pthread_mutex_unlock(&mm->mu);
    if (rc)
        return rc;
    char **out = calloc(nrows + 1, sizeof *out);
    size_t k = 0;
    for (size_t i = 0; out && i < nrows; i++) {
        if (!rows[i].active)
            continue;
        bool dup = false;
        for (size_t j = 0; j < k && !dup; j++)
            dup = strcmp(out[j], rows[i].model) == 0;
        if (!dup && !(out[k] = strdup(rows[i].model))) {
            al_serve_names_free(out, k);
            out = NULL;
        } else if (!dup) {
            k++;
        }
    }
    free(rows);
    if (!out)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    *names = out;
    *n = k;
    return AL_OK;
}

void al_serve_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

static void version_row(struct al_serve_version *o, const struct al_version *v, const char *weights)
{
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", v->model);
    snprintf(o->tags, sizeof o->tags, "%s", v->tags);
    snprintf(o->manifest, sizeof o->manifest, "%s", v->manifest);
    snprintf(o->created, sizeof o->created, "%s", v->created);
    o->size = v->total_size;
    struct al_gguf_info gi;
    struct al_err gerr = AL_ERR_INIT;
    if (!weights || al_repo_weights_info(weights, &gi, &gerr) != AL_OK)
        return; /* not a GGUF, or unreadable: the index's fields only */
    snprintf(o->arch, sizeof o->arch, "%s", gi.arch);
    snprintf(o->file_type, sizeof o->file_type, "%s", gi.file_type);
    snprintf(o->license, sizeof o->license, "%s", gi.license);
    o->n_params = gi.n_params;
    o->context_length = gi.context_length;
    o->embedding_length = gi.embedding_length;
    o->block_count = gi.block_count;
    o->head_count = gi.head_count;
    o->vocab_size = gi.vocab_size;
    o->has_chat_template = gi.has_chat_template;
}

enum al_rc al_serve_versions(struct al_serve_models *mm, const char *ref, struct al_serve_version **rows, size_t *n,
                             struct al_err *err)
{
    enum al_rc rc;
    *rows = NULL;
    *n = 0;
    if (ref) {
        struct al_weights w;
        pthread_mutex_lock(&mm->mu);
        rc = al_repo_resolve_weights(mm->repo, al_serve__unalias(mm, ref), &w, err);
        pthread_mutex_unlock(&mm->mu);
        if (rc)
            return rc;
        struct al_serve_version *o = malloc(sizeof *o);
        if (o)
            version_row(o, &w.version, w.path);
        al_repo_weights_release(&w);
        if (!o)
            return al_err_set(err, AL_ERR_NOMEM, "out of memory");
        *rows = o;
        *n = 1;
        return AL_OK;
    }
    struct al_version *vs = NULL;
    size_t nv = 0;
    pthread_mutex_lock(&mm->mu);
    rc = al_repo_list_versions(mm->repo, NULL, &vs, &nv, err);
    struct al_serve_version *out = rc ? NULL : calloc(nv + 1, sizeof *out);
    size_t k = 0;
    for (size_t i = 0; out && i < nv; i++) {
        if (!vs[i].active)
            continue;
        char path[AL_LIMIT_PATH];
        struct al_err perr = AL_ERR_INIT;
        bool have = al_repo_weight_path(mm->repo, &vs[i], path, sizeof path, &perr) == AL_OK;
        version_row(&out[k++], &vs[i], have ? path : NULL);
    }
    pthread_mutex_unlock(&mm->mu);
    free(vs);
    if (rc)
        return rc;
    if (!out)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    *rows = out;
    *n = k;
    return AL_OK;
}
