/*
 * collection.c: creating, opening and describing collections; the lock for
 * changes; the vector index file and its generation; removing documents.
 *
 * The vector index is derived data. Every change commits a new generation
 * number in the meta table together with the rows; the index for generation
 * g is the file vectors-<g>.faiss. A reader whose file is missing (a writer
 * is still building it, or a crash came between commit and file) builds the
 * index in memory from the vectors in chunks.db; a writer also saves it.
 */
#include "rag/rag_int.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/log.h"
#include "core/time.h"

#define BUILD_BATCH 4096

double al_rag__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

bool al_rag_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > AL_LIMIT_RAG_NAME || !(isalnum((unsigned char)name[0])))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static enum al_rc check_name(const char *name, struct al_err *err)
{
    if (!al_rag_name_valid(name))
        return al_err_set(err, AL_ERR_USAGE,
                          "'%s' is not a collection name: 1 to %u of a-z 0-9 . _ - starting with a letter or digit",
                          name, AL_LIMIT_RAG_NAME);
    return AL_OK;
}

static enum al_rc set_int(struct al_rag_db *db, const char *key, long long v, struct al_err *err)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return al_rag_db_meta_set(db, key, buf, err);
}

enum al_rc al_rag_create(const char *home, const char *name, const struct al_rag_create_opts *o,
                         struct al_err *err)
{
    enum al_rc rc = check_name(name, err);
    if (rc)
        return rc;
    if (o->dim <= 0 || !o->embed_digest || !al_digest_valid(o->embed_digest))
        return al_err_set(err, AL_ERR_USAGE, "a collection needs its embedding model's digest and dimension");
    int budget = o->chunk_tokens > 0 ? o->chunk_tokens : 200;
    int overlap = o->overlap_tokens >= 0 ? o->overlap_tokens : 32;
    if (budget > AL_LIMIT_RAG_CHUNK_TOKENS || budget < 16)
        return al_err_set(err, AL_ERR_LIMIT, "a chunk budget of %d tokens is outside 16..%d (AL_LIMIT_RAG_CHUNK_TOKENS)",
                          budget, AL_LIMIT_RAG_CHUNK_TOKENS);
    if (overlap >= budget / 2)
        return al_err_set(err, AL_ERR_USAGE, "the overlap (%d tokens) must be under half the budget (%d)", overlap,
                          budget);
    char root[AL_LIMIT_PATH], tmp[AL_LIMIT_PATH], dir[AL_LIMIT_PATH], db_path[AL_LIMIT_PATH];
    if ((rc = al_path_fmt(root, sizeof root, err, "%s/rag", home)) ||
        (rc = al_path_fmt(dir, sizeof dir, err, "%s/%s", root, name)) ||
        (rc = al_path_fmt(tmp, sizeof tmp, err, "%s/.new-%s-XXXXXX", root, name)) ||
        (rc = al_fs_mkdirs(root, 0755, err)))
        return rc;
    if (al_fs_exists(dir))
        return al_err_set(err, AL_ERR_EXISTS, "collection '%s' exists already", name);
    if (!mkdtemp(tmp))
        return al_err_sys(err, AL_ERR_IO, "cannot create '%s'", tmp);
    chmod(tmp, 0755);
    struct al_rag_db *db = NULL;
    if ((rc = al_path_fmt(db_path, sizeof db_path, err, "%s/chunks.db", tmp)) ||
        (rc = al_rag_db_open(db_path, true, true, &db, err)))
        goto out;
    char created[32];
    al_time_now_iso(created);
    if ((rc = al_rag_db_begin(db, err)))
        goto out;
    if ((rc = al_rag_db_meta_set(db, "name", name, err)) ||
        (rc = al_rag_db_meta_set(db, "embed_ref", o->embed_ref ? o->embed_ref : "", err)) ||
        (rc = al_rag_db_meta_set(db, "embed_model", o->embed_model ? o->embed_model : "", err)) ||
        (rc = al_rag_db_meta_set(db, "embed_manifest", o->embed_manifest ? o->embed_manifest : "", err)) ||
        (rc = al_rag_db_meta_set(db, "embed_digest", o->embed_digest, err)) ||
        (rc = set_int(db, "dim", o->dim, err)) || (rc = set_int(db, "chunk_tokens", budget, err)) ||
        (rc = set_int(db, "overlap_tokens", overlap, err)) ||
        (rc = set_int(db, "hnsw_threshold", o->hnsw_threshold > 0 ? o->hnsw_threshold : 50000, err)) ||
        (rc = al_rag_db_meta_set(db, "chunker", AL_RAG_CHUNKER_VERSION, err)) ||
        (rc = set_int(db, "generation", 0, err)) || (rc = set_int(db, "readonly", 0, err)) ||
        (rc = al_rag_db_meta_set(db, "created", created, err))) {
        al_rag_db_rollback(db);
        goto out;
    }
    if ((rc = al_rag_db_commit(db, err)))
        goto out;
    al_rag_db_free(db);
    db = NULL;
    if (rename(tmp, dir) != 0) {
        rc = errno == EEXIST || errno == ENOTEMPTY ? al_err_set(err, AL_ERR_EXISTS, "collection '%s' exists already", name)
                                                   : al_err_sys(err, AL_ERR_IO, "cannot rename '%s'", tmp);
        goto out;
    }
    rc = al_fs_fsync_dir(root, err);
out:
    al_rag_db_free(db);
    if (rc && al_fs_exists(tmp)) {
        char p[AL_LIMIT_PATH];
        const char *files[] = {"chunks.db", "chunks.db-wal", "chunks.db-shm"};
        for (size_t i = 0; i < 3; i++)
            if (!al_path_fmt(p, sizeof p, NULL, "%s/%s", tmp, files[i]))
                unlink(p);
        rmdir(tmp);
    }
    return rc;
}

static enum al_rc meta_str(struct al_rag *r, const char *key, char *out, size_t size, struct al_err *err)
{
    char *v = NULL;
    enum al_rc rc = al_rag_db_meta_get(r->db, key, &v, err);
    if (!rc)
        snprintf(out, size, "%s", v);
    free(v);
    return rc;
}

static enum al_rc meta_int(struct al_rag *r, const char *key, long long *out, struct al_err *err)
{
    char buf[32];
    enum al_rc rc = meta_str(r, key, buf, sizeof buf, err);
    if (rc)
        return rc;
    char *end = NULL;
    errno = 0;
    *out = strtoll(buf, &end, 10);
    if (errno || !end || *end)
        return al_err_set(err, AL_ERR_CORRUPT, "collection '%s': meta '%s' is not a number", r->name, key);
    return AL_OK;
}

enum al_rc al_rag__load_info(struct al_rag *r, struct al_err *err)
{
    struct al_rag_info *i = &r->info;
    long long dim, budget, overlap, thr, gen, ro;
    enum al_rc rc;
    memset(i, 0, sizeof *i);
    snprintf(i->name, sizeof i->name, "%s", r->name);
    if ((rc = meta_str(r, "embed_ref", i->embed_ref, sizeof i->embed_ref, err)) ||
        (rc = meta_str(r, "embed_model", i->embed_model, sizeof i->embed_model, err)) ||
        (rc = meta_str(r, "embed_manifest", i->embed_manifest, sizeof i->embed_manifest, err)) ||
        (rc = meta_str(r, "embed_digest", i->embed_digest, sizeof i->embed_digest, err)) ||
        (rc = meta_str(r, "chunker", i->chunker, sizeof i->chunker, err)) ||
        (rc = meta_int(r, "dim", &dim, err)) || (rc = meta_int(r, "chunk_tokens", &budget, err)) ||
        (rc = meta_int(r, "overlap_tokens", &overlap, err)) || (rc = meta_int(r, "hnsw_threshold", &thr, err)) ||
        (rc = meta_int(r, "generation", &gen, err)) || (rc = meta_int(r, "readonly", &ro, err)) ||
        (rc = al_rag_db_counts(r->db, &i->docs, &i->chunks, err)))
        return rc;
    if (dim <= 0 || dim > 65536)
        return al_err_set(err, AL_ERR_CORRUPT, "collection '%s': bad dimension %lld", r->name, dim);
    i->dim = (int)dim;
    i->chunk_tokens = (int)budget;
    i->overlap_tokens = (int)overlap;
    i->hnsw_threshold = (int)thr;
    i->generation = gen;
    i->readonly = ro != 0;
    snprintf(i->index_kind, sizeof i->index_kind, "%s", i->chunks >= (size_t)thr ? "hnsw" : "flat");
    return AL_OK;
}

enum al_rc al_rag_open(const char *home, const char *name, bool writable, struct al_rag **out, struct al_err *err)
{
    enum al_rc rc = check_name(name, err);
    if (rc)
        return rc;
    struct al_rag *r = calloc(1, sizeof *r);
    if (!r)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    r->lock_fd = -1;
    r->writable = writable;
    pthread_mutex_init(&r->vlock, NULL);
    snprintf(r->name, sizeof r->name, "%s", name);
    char db_path[AL_LIMIT_PATH];
    if ((rc = al_path_fmt(r->dir, sizeof r->dir, err, "%s/rag/%s", home, name)) ||
        (rc = al_path_fmt(db_path, sizeof db_path, err, "%s/chunks.db", r->dir)))
        goto fail;
    if (!al_fs_exists(db_path)) {
        rc = al_err_set(err, AL_ERR_NOT_FOUND, "no collection '%s' (create it with 'airlock rag create')", name);
        goto fail;
    }
    if ((rc = al_rag_db_open(db_path, false, writable, &r->db, err)) || (rc = al_rag__load_info(r, err)))
        goto fail;
    *out = r;
    return AL_OK;
fail:
    al_rag_free(r);
    return rc;
}

void al_rag_free(struct al_rag *r)
{
    if (!r)
        return;
    al_vindex_free(r->vi);
    al_rag_db_free(r->db);
    if (r->lock_fd >= 0)
        close(r->lock_fd);
    pthread_mutex_destroy(&r->vlock);
    free(r);
}

enum al_rc al_rag_info(struct al_rag *r, struct al_rag_info *out, struct al_err *err)
{
    enum al_rc rc = al_rag__load_info(r, err);
    if (!rc)
        *out = r->info;
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

enum al_rc al_rag_list(const char *home, char ***names, size_t *n, struct al_err *err)
{
    *names = NULL;
    *n = 0;
    char root[AL_LIMIT_PATH];
    enum al_rc rc = al_path_fmt(root, sizeof root, err, "%s/rag", home);
    if (rc)
        return rc;
    DIR *d = opendir(root);
    if (!d)
        return errno == ENOENT ? AL_OK : al_err_sys(err, AL_ERR_IO, "cannot read '%s'", root);
    struct dirent *e;
    size_t cap = 0;
    while ((e = readdir(d))) {
        if (!al_rag_name_valid(e->d_name))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **v = realloc(*names, cap * sizeof *v);
            if (!v) {
                rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
                break;
            }
            *names = v;
        }
        if (!((*names)[*n] = strdup(e->d_name))) {
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(*names, *n, sizeof **names, cmp_str);
    return rc;
}

enum al_rc al_rag__lock(struct al_rag *r, struct al_err *err)
{
    if (!r->writable)
        return al_err_set(err, AL_ERR_USAGE, "collection '%s' was opened read-only", r->name);
    if (r->lock_fd >= 0)
        return AL_OK;
    char p[AL_LIMIT_PATH];
    enum al_rc rc = al_path_fmt(p, sizeof p, err, "%s/lock", r->dir);
    if (rc)
        return rc;
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return al_err_sys(err, AL_ERR_IO, "cannot open '%s'", p);
    if (flock(fd, LOCK_EX) != 0) {
        close(fd);
        return al_err_sys(err, AL_ERR_IO, "cannot lock '%s'", p);
    }
    r->lock_fd = fd;
    return al_rag__load_info(r, err); /* another writer may have changed it */
}

void al_rag__unlock(struct al_rag *r)
{
    if (r->lock_fd >= 0) {
        close(r->lock_fd);
        r->lock_fd = -1;
    }
}

enum al_rc al_rag__bump_generation(struct al_rag *r, int64_t *gen, struct al_err *err)
{
    *gen = r->info.generation + 1;
    char now[32];
    al_time_now_iso(now); /* when the content last changed: a snapshot's creation date */
    enum al_rc rc = set_int(r->db, "generation", *gen, err);
    return rc ? rc : al_rag_db_meta_set(r->db, "changed", now, err);
}

static enum al_rc index_path(struct al_rag *r, int64_t gen, char *out, size_t size, struct al_err *err)
{
    return al_path_fmt(out, size, err, "%s/vectors-%" PRId64 ".faiss", r->dir, gen);
}

struct builder {
    struct al_vindex *vi;
    float *x;
    int64_t *ids;
    size_t n;
    int dim;
};

static enum al_rc build_flush(struct builder *b, struct al_err *err)
{
    enum al_rc rc = al_vindex_add(b->vi, b->n, b->x, b->ids, err);
    b->n = 0;
    return rc;
}

static enum al_rc build_one(void *ud, int64_t rowid, const float *vec, struct al_err *err)
{
    struct builder *b = ud;
    memcpy(b->x + b->n * (size_t)b->dim, vec, (size_t)b->dim * sizeof(float));
    b->ids[b->n++] = rowid;
    return b->n == BUILD_BATCH ? build_flush(b, err) : AL_OK;
}

/* Builds the index of the current generation from the stored vectors. */
static enum al_rc build(struct al_rag *r, struct al_vindex **out, struct al_err *err)
{
    struct builder b = {.dim = r->info.dim};
    enum al_vindex_kind kind = r->info.chunks >= (size_t)r->info.hnsw_threshold ? AL_VINDEX_HNSW : AL_VINDEX_FLAT;
    enum al_rc rc = al_vindex_new(r->info.dim, kind, 32, 40, &b.vi, err);
    if (rc)
        return rc;
    b.x = malloc((size_t)BUILD_BATCH * (size_t)b.dim * sizeof(float));
    b.ids = malloc(BUILD_BATCH * sizeof(int64_t));
    if (!b.x || !b.ids)
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory building the vector index");
    double t0 = al_rag__now_ms();
    if (!rc)
        rc = al_rag_db_each_vector(r->db, b.dim, build_one, &b, err);
    if (!rc && b.n)
        rc = build_flush(&b, err);
    free(b.x);
    free(b.ids);
    if (rc) {
        al_vindex_free(b.vi);
        return rc;
    }
    al_debug("collection '%s': built a %s index of %zu vectors in %.0f ms", r->name, al_vindex_describe(b.vi),
             al_vindex_size(b.vi), al_rag__now_ms() - t0);
    *out = b.vi;
    return AL_OK;
}

/* Removes vectors-*.faiss files of other generations. */
static void sweep(struct al_rag *r, int64_t keep)
{
    DIR *d = opendir(r->dir);
    if (!d)
        return;
    struct dirent *e;
    char want[64], p[AL_LIMIT_PATH];
    snprintf(want, sizeof want, "vectors-%" PRId64 ".faiss", keep);
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "vectors-", 8) == 0 && strcmp(e->d_name, want) != 0 &&
            !al_path_fmt(p, sizeof p, NULL, "%s/%s", r->dir, e->d_name))
            unlink(p);
    closedir(d);
}

enum al_rc al_rag__vindex(struct al_rag *r, struct al_err *err)
{
    pthread_mutex_lock(&r->vlock);
    enum al_rc rc = AL_OK;
    if (r->vi && r->vi_generation == r->info.generation)
        goto out;
    char p[AL_LIMIT_PATH];
    struct al_vindex *vi = NULL;
    if ((rc = index_path(r, r->info.generation, p, sizeof p, err)))
        goto out;
    if (al_fs_exists(p)) {
        if ((rc = al_vindex_read(p, &vi, err)))
            goto out;
        if (al_vindex_dim(vi) != r->info.dim || al_vindex_size(vi) != r->info.chunks) {
            rc = al_err_set(err, AL_ERR_CORRUPT, "'%s' holds %zu vectors of %d dimensions; the collection has %zu of %d",
                            p, al_vindex_size(vi), al_vindex_dim(vi), r->info.chunks, r->info.dim);
            al_vindex_free(vi);
            goto out;
        }
    } else {
        if (r->info.readonly) {
            rc = al_err_set(err, AL_ERR_CORRUPT, "the vector index '%s' of a read-only collection is missing", p);
            goto out;
        }
        if ((rc = build(r, &vi, err)))
            goto out;
        if (r->writable && r->lock_fd >= 0 && (rc = al_vindex_write(vi, p, err))) {
            al_vindex_free(vi);
            goto out;
        }
    }
    al_vindex_free(r->vi);
    r->vi = vi;
    r->vi_generation = r->info.generation;
out:
    pthread_mutex_unlock(&r->vlock);
    return rc;
}

enum al_rc al_rag__vindex_update(struct al_rag *r, int64_t old_gen, const int64_t *new_ids,
                                 const float *new_vecs, size_t n_new, bool removed, struct al_err *err)
{
    enum al_rc rc;
    char p[AL_LIMIT_PATH];
    struct al_vindex *vi = NULL;
    enum al_vindex_kind want = r->info.chunks >= (size_t)r->info.hnsw_threshold ? AL_VINDEX_HNSW : AL_VINDEX_FLAT;
    if (!removed && new_ids) {
        if (r->vi && r->vi_generation == old_gen) {
            vi = r->vi;
            r->vi = NULL;
        } else if (!index_path(r, old_gen, p, sizeof p, NULL) && al_fs_exists(p) && al_vindex_read(p, &vi, NULL)) {
            vi = NULL;
        }
        if (vi && (al_vindex_kind(vi) != want || al_vindex_dim(vi) != r->info.dim ||
                   al_vindex_size(vi) + n_new != r->info.chunks)) {
            al_vindex_free(vi);
            vi = NULL;
        }
    }
    if (vi) {
        if ((rc = al_vindex_add(vi, n_new, new_vecs, new_ids, err)) ||
            (rc = index_path(r, r->info.generation, p, sizeof p, err)) || (rc = al_vindex_write(vi, p, err))) {
            al_vindex_free(vi);
            return rc;
        }
        pthread_mutex_lock(&r->vlock);
        al_vindex_free(r->vi);
        r->vi = vi;
        r->vi_generation = r->info.generation;
        pthread_mutex_unlock(&r->vlock);
    } else if ((rc = al_rag__vindex(r, err))) {
        return rc;
    }
    sweep(r, r->info.generation);
    return AL_OK;
}

enum al_rc al_rag_rm(struct al_rag *r, const char *doc, size_t *chunks_removed, struct al_err *err)
{
    enum al_rc rc = al_rag__lock(r, err);
    if (rc)
        return rc;
    if (r->info.readonly) {
        al_rag__unlock(r);
        return al_err_set(err, AL_ERR_DENIED, "collection '%s' is read-only (imported or attached)", r->name);
    }
    int64_t id = 0, old_gen = r->info.generation, gen;
    if ((rc = al_rag_db_begin(r->db, err)))
        goto out;
    rc = al_rag_db_doc_find(r->db, doc, true, &id, NULL, err);
    if (rc == AL_ERR_NOT_FOUND)
        rc = al_err_set(err, AL_ERR_NOT_FOUND, "collection '%s' has no document '%s'", r->name, doc);
    if (rc || (rc = al_rag_db_doc_delete(r->db, id, chunks_removed, err)) ||
        (rc = al_rag__bump_generation(r, &gen, err)) || (rc = al_rag_db_commit(r->db, err))) {
        al_rag_db_rollback(r->db);
        goto out;
    }
    if (!(rc = al_rag__load_info(r, err)))
        rc = al_rag__vindex_update(r, old_gen, NULL, NULL, 0, true, err);
out:
    al_rag__unlock(r);
    return rc;
}

enum al_rc al_rag_dump(struct al_rag *r, FILE *out, struct al_err *err) { return al_rag_db_dump(r->db, out, err); }

enum al_rc al_rag_docs(struct al_rag *r, al_rag_doc_fn *fn, void *ud, struct al_err *err)
{
    return al_rag_db_list_docs(r->db, fn, ud, err);
}
