/*
 * query.c: the repo's door for callers above it: reads of versions, files,
 * blobs and events, the weights of a version, and the event and blob paths
 * of changes made above the repo (ingest, trust). The lower layers' handles
 * never leave src/repo.
 */
#include "repo/repo_int.h"

#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "gguf/gguf.h"

#define LOCK_TIMEOUT_MS 60000

const char *al_repo_home(const struct al_repo *r) { return al_store_home(r->store); }

struct al_index *al_repo_index(struct al_repo *r) { return r->index; }

enum al_rc al_repo_resolve(struct al_repo *r, const char *ref, struct al_version *out, struct al_err *err)
{
    return al_index_resolve(r->index, ref, out, err);
}

enum al_rc al_repo_list_versions(struct al_repo *r, const char *model, struct al_version **rows, size_t *n,
                                 struct al_err *err)
{
    return al_index_list_versions(r->index, model, rows, n, err);
}

enum al_rc al_repo_list_files(struct al_repo *r, const struct al_version *v, struct al_file **rows, size_t *n,
                              struct al_err *err)
{
    return al_index_list_files(r->index, v->id, rows, n, err);
}

enum al_rc al_repo_previous(struct al_repo *r, const struct al_version *v, struct al_version *out,
                            struct al_err *err)
{
    int64_t prev = 0;
    enum al_rc rc = al_index_previous_version(r->index, v->id, &prev, err);
    return rc ? rc : al_index_get_version(r->index, prev, out, err);
}

enum al_rc al_repo_max_seq(struct al_repo *r, const char *model, int64_t *seq, struct al_err *err)
{
    return al_index_max_seq(r->index, model, seq, err);
}

enum al_rc al_repo_blob_path(struct al_repo *r, const char *digest, char *out, size_t size, struct al_err *err)
{
    return al_store_blob_path(r->store, digest, out, size, err);
}

enum al_rc al_repo_read_blob(struct al_repo *r, const char *digest, size_t max, char **out, size_t *len,
                             struct al_err *err)
{
    return al_store_read(r->store, digest, max, out, len, err);
}

enum al_rc al_repo_read_file(struct al_repo *r, const struct al_version *v, const char *path, size_t max,
                             char **out, size_t *len, struct al_err *err)
{
    *out = NULL;
    struct al_file *files = NULL;
    size_t n = 0;
    enum al_rc rc = al_index_list_files(r->index, v->id, &files, &n, err);
    if (rc)
        return rc;
    const struct al_file *f = NULL;
    for (size_t i = 0; i < n && !f; i++)
        if (strcmp(files[i].path, path) == 0)
            f = &files[i];
    if (f)
        rc = al_store_read(r->store, f->digest, max, out, len, err);
    else
        rc = al_err_set(err, AL_ERR_NOT_FOUND, "'%s@%s' has no file '%s'", v->model, v->manifest, path);
    free(files);
    return rc;
}

enum al_rc al_repo_list_events(struct al_repo *r, const char *model, const char *digest, struct al_event **rows,
                               size_t *n, struct al_err *err)
{
    return al_index_list_events(r->index, model, digest, rows, n, err);
}

enum al_rc al_repo_verify_events(struct al_repo *r, al_chain_problem_fn *fn, void *ud, size_t *checked,
                                 struct al_err *err)
{
    return al_index_verify_events(r->index, fn, ud, checked, err);
}

enum al_rc al_repo_keys_lost(struct al_repo *r, bool *out, struct al_err *err)
{
    return al_index_keys_lost(r->index, out, err);
}

/* ---- weights ---- */

const struct al_file *al_repo_pick_weights(const struct al_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (al_gguf_named(files[i].path))
            return &files[i];
    return n ? &files[0] : NULL;
}

bool al_repo_weights_named(const char *name) { return al_gguf_named(name); }

bool al_repo_ref_is_file(const char *ref)
{
    struct stat st;
    return (strchr(ref, '/') || al_gguf_named(ref)) && stat(ref, &st) == 0 && S_ISREG(st.st_mode);
}

enum al_rc al_repo_weights_info(const char *path, struct al_gguf_info *out, struct al_err *err)
{
    return al_gguf_inspect(path, out, err);
}

enum al_rc al_repo_version_gguf(struct al_repo *r, const struct al_file *files, size_t n,
                                struct al_gguf_info *out, bool *found, struct al_err *err)
{
    *found = false;
    const struct al_file *pick = al_repo_pick_weights(files, n);
    if (!pick || !al_gguf_named(pick->path))
        return AL_OK;
    char path[AL_LIMIT_PATH];
    enum al_rc rc = al_store_blob_path(r->store, pick->digest, path, sizeof path, err);
    if (!rc)
        rc = al_gguf_inspect(path, out, err);
    *found = rc == AL_OK;
    return rc;
}

enum al_rc al_repo_weight_path(struct al_repo *r, const struct al_version *v, char *out, size_t size,
                               struct al_err *err)
{
    struct al_file *files = NULL;
    size_t n = 0;
    enum al_rc rc = al_index_list_files(r->index, v->id, &files, &n, err);
    if (rc)
        return rc;
    const struct al_file *pick = al_repo_pick_weights(files, n);
    if (!pick)
        rc = al_err_set(err, AL_ERR_NOT_FOUND, "'%s@%s' has no files", v->model, v->manifest);
    else
        rc = al_store_blob_path(r->store, pick->digest, out, size, err);
    free(files);
    return rc;
}

/* The engine loads GGUF only: a version without one (safetensors, a pickle,
 * ...; `airlock add` warned) is refused here by name, before a load would
 * fail with a message about the blob. */
static enum al_rc weights_are_gguf(const struct al_weights *w, const struct al_file *pick, const char *ref,
                                   struct al_err *err)
{
    int fd = -1;
    enum al_rc rc = al_fs_open_regular(w->path, &fd, err);
    if (rc)
        return rc;
    unsigned char head[4];
    ssize_t got = pread(fd, head, sizeof head, 0);
    close(fd);
    if (got > 0 && al_gguf_is_magic(head, (size_t)got))
        return AL_OK;
    return al_err_set(err, AL_ERR_INVALID, "'%s' is not a GGUF model: its file '%s' is not a GGUF (see 'airlock show "
                      "%s'); airlock serves and runs GGUF models only: convert it (llama.cpp's "
                      "convert_hf_to_gguf.py) and add the .gguf", ref, pick->path, ref);
}

enum al_rc al_repo_resolve_weights(struct al_repo *r, const char *ref, struct al_weights *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    struct al_weights w;
    memset(&w, 0, sizeof w);
    enum al_rc rc = al_index_resolve(r->index, ref, &w.version, err);
    if (!rc)
        rc = al_index_list_files(r->index, w.version.id, &w.files, &w.n_files, err);
    const struct al_file *pick = rc ? NULL : al_repo_pick_weights(w.files, w.n_files);
    if (!rc && !pick)
        rc = al_err_set(err, AL_ERR_NOT_FOUND, "'%s@%s' has no files", w.version.model, w.version.manifest);
    if (!rc && !(rc = al_store_blob_path(r->store, pick->digest, w.path, sizeof w.path, err)))
        snprintf(w.digest, sizeof w.digest, "%s", pick->digest);
    if (!rc)
        rc = weights_are_gguf(&w, pick, ref, err);
    if (rc) {
        al_repo_weights_release(&w);
        return rc;
    }
    *out = w;
    return AL_OK;
}

void al_repo_weights_release(struct al_weights *w)
{
    free(w->files);
    w->files = NULL;
    w->n_files = 0;
}

/* ---- events and blobs of changes made above the repo ---- */

enum al_rc al_repo_write_lock(struct al_repo *r, struct al_err *err)
{
    return al_store_lock(r->store, AL_LOCK_WRITE, LOCK_TIMEOUT_MS, err);
}

void al_repo_write_unlock(struct al_repo *r) { al_store_unlock(r->store, AL_LOCK_WRITE); }

enum al_rc al_repo_append_event(struct al_repo *r, const char *kind, const char *model, const char *digest,
                                const char *detail, struct al_err *err)
{
    enum al_rc rc = al_index_begin(r->index, err);
    if (rc)
        return rc;
    if ((rc = al_index_event_append(r->index, kind, model, digest, detail, err)) ||
        (rc = al_index_commit(r->index, err)))
        al_index_rollback(r->index);
    return rc;
}

enum al_rc al_repo_record_event(struct al_repo *r, const char *kind, const char *model, const char *digest,
                                const char *detail, struct al_err *err)
{
    enum al_rc rc = al_repo_write_lock(r, err);
    if (rc)
        return rc;
    rc = al_repo_append_event(r, kind, model, digest, detail, err);
    al_repo_write_unlock(r);
    return rc;
}

enum al_rc al_repo_record_refusal(struct al_repo *r, const char *kind, const char *model, const char *detail,
                                  enum al_rc why, const char *hint, struct al_err *err)
{
    struct al_err e2 = AL_ERR_INIT;
    enum al_rc rc = detail ? al_repo_record_event(r, kind, model && al_name_valid(model) ? model : "", "", detail,
                                                  &e2)
                           : al_err_set(&e2, AL_ERR_NOMEM, "out of memory");
    if (!rc)
        return why;
    char refused[AL_ERR_MSG_MAX];
    snprintf(refused, sizeof refused, "%s", err->msg);
    al_err_clear(err);
    return al_err_set(err, rc, "%s; and the refusal could not be recorded in the event log (%s)%s%s", refused,
                      e2.msg, hint ? "; " : "", hint ? hint : "");
}

enum al_rc al_repo_writer_begin(struct al_repo *r, struct al_err *err)
{
    return al_store_lock(r->store, AL_LOCK_GC_SHARED, LOCK_TIMEOUT_MS, err);
}

void al_repo_writer_end(struct al_repo *r) { al_store_unlock(r->store, AL_LOCK_GC_SHARED); }

enum al_rc al_repo_blob_writer_new(struct al_repo *r, struct al_blob_writer **out, struct al_err *err)
{
    return al_blob_writer_new(r->store, out, err);
}

enum al_rc al_repo_put(struct al_repo *r, const void *data, size_t len, char digest[AL_DIGEST_SIZE],
                       struct al_err *err)
{
    return al_store_put(r->store, data, len, digest, err);
}
