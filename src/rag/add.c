/*
 * add.c: documents into a collection. Walk the paths, sort the files by
 * document key (so the order of the arguments and of readdir() cannot
 * change the result), then per document: read (capped), hash, skip when
 * unchanged, extract, chunk, embed in batches, and store the document, its
 * chunks and their vectors in one transaction. The vector index is brought
 * up to date once at the end.
 */
#include "rag/rag_int.h"

#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>

#include "core/fs.h"
#include "core/log.h"
#include "core/progress.h"

#define EMBED_BATCH 32
#define APPEND_MAX 200000 /* new vectors kept in memory to append; beyond: rebuild */

enum al_rc al_rag_resolve_model(struct al_repo *repo, const char *ref, struct al_rag_model *out,
                                struct al_err *err)
{
    memset(out, 0, sizeof *out);
    struct al_weights w;
    enum al_rc rc = al_repo_resolve_weights(repo, ref, &w, err);
    if (rc)
        return rc;
    snprintf(out->path, sizeof out->path, "%s", w.path);
    snprintf(out->name, sizeof out->name, "%s", w.version.model);
    snprintf(out->manifest, sizeof out->manifest, "%s", w.version.manifest);
    snprintf(out->digest, sizeof out->digest, "%s", w.digest);
    al_repo_weights_release(&w);
    return AL_OK;
}

enum al_rc al_rag_load_embedder(struct al_rag *r, struct al_repo *repo, int threads,
                                struct al_engine_model **out, struct al_err *err)
{
    char ref[AL_LIMIT_REF];
    struct al_rag_model m;
    enum al_rc rc = al_path_fmt(ref, sizeof ref, err, "%s@%s", r->info.embed_model, r->info.embed_manifest);
    if (rc || (rc = al_rag_resolve_model(repo, ref, &m, err)))
        return rc;
    if (strcmp(m.digest, r->info.embed_digest) != 0)
        return al_err_set(err, AL_ERR_VERIFY, "the store's '%s' has weights %s, the collection was built with %s", ref,
                          m.digest, r->info.embed_digest);
    struct al_engine_model_params p = al_engine_model_params_default();
    p.threads = threads > 0 ? threads : 2;
    return al_engine_model_load(m.path, m.digest, &p, out, err);
}

struct file {
    char *key, *path;
    uint64_t size;
    bool named;
    char *refused;  /* why it is skipped without reading it, or NULL */
};

struct walk {
    struct file *v;
    size_t n, cap;
    bool follow_links;
    char root[PATH_MAX];      /* the real path of the directory being walked */
};

static enum al_rc walk_push(struct walk *w, const char *key, const char *path, uint64_t size, bool named,
                            const char *refused, struct al_err *err)
{
    if (w->n >= AL_LIMIT_RAG_FILES)
        return al_err_set(err, AL_ERR_LIMIT, "more than %u files (AL_LIMIT_RAG_FILES)", AL_LIMIT_RAG_FILES);
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct file *v = realloc(w->v, cap * sizeof *v);
        if (!v)
            return al_err_set(err, AL_ERR_NOMEM, "out of memory");
        w->v = v;
        w->cap = cap;
    }
    struct file *f = &w->v[w->n];
    f->key = strdup(key);
    f->path = strdup(path);
    f->size = size;
    f->named = named;
    f->refused = refused ? strdup(refused) : NULL;
    if (!f->key || !f->path || (refused && !f->refused)) {
        free(f->key);
        free(f->path);
        free(f->refused);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    w->n++;
    return AL_OK;
}

/* "./a//b/" -> "a/b" */
static void normalize_key(const char *in, char *out, size_t size)
{
    size_t k = 0;
    while (in[0] == '.' && in[1] == '/')
        in += 2;
    for (size_t i = 0; in[i] && k + 1 < size; i++) {
        if (in[i] == '/' && k > 0 && out[k - 1] == '/')
            continue;
        if (in[i] == '/' && in[i + 1] == '.' && in[i + 2] == '/') {
            i++;
            continue;
        }
        out[k++] = in[i];
    }
    while (k > 1 && out[k - 1] == '/')
        k--;
    out[k] = 0;
}

/* A link to a file found in a walk: its target is read (under the target's
 * own path, so the link cannot be swapped between this check and the read)
 * when it resolves inside the walked tree, or anywhere with follow_links;
 * else it is recorded as refused, to be reported by name. */
static enum al_rc walk_link(struct walk *w, const char *path, const char *key, uint64_t size, struct al_err *err)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return AL_OK; /* vanished, or a dangling link */
    size_t rl = strlen(w->root);
    bool inside = strcmp(w->root, "/") == 0 || (strncmp(real, w->root, rl) == 0 && real[rl] == '/');
    if (inside || w->follow_links)
        return walk_push(w, key, real, size, false, NULL, err);
    char why[2 * PATH_MAX + 128]; /* room for both paths: never cut */
    snprintf(why, sizeof why, "a link to '%s', outside '%s': not followed (use --follow-links to follow links "
             "out of the tree)", real, w->root);
    return walk_push(w, key, path, size, false, why, err);
}

static enum al_rc walk_dir(struct walk *w, const char *dir, const char *key, int depth, struct al_err *err)
{
    if (depth > AL_LIMIT_RAG_DEPTH)
        return al_err_set(err, AL_ERR_LIMIT, "'%s' is nested deeper than %d directories (AL_LIMIT_RAG_DEPTH)", dir,
                          AL_LIMIT_RAG_DEPTH);
    DIR *d = opendir(dir);
    if (!d)
        return al_err_sys(err, AL_ERR_IO, "cannot read directory '%s'", dir);
    enum al_rc rc = AL_OK;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue; /* hidden files, ".", ".." */
        char p[AL_LIMIT_PATH], k[AL_LIMIT_PATH];
        if ((rc = al_path_fmt(p, sizeof p, err, "%s/%s", dir, e->d_name)) ||
            (rc = al_path_fmt(k, sizeof k, err, "%s/%s", key, e->d_name)))
            break;
        struct stat lst, st;
        if (lstat(p, &lst) != 0 || stat(p, &st) != 0)
            continue; /* vanished or a dangling link */
        if (S_ISDIR(st.st_mode)) {
            if (!S_ISLNK(lst.st_mode))
                rc = walk_dir(w, p, k, depth + 1, err);
        } else if (S_ISREG(st.st_mode) && al_rag_format_guess(e->d_name, "", 0, false) != AL_FMT_UNKNOWN) {
            rc = S_ISLNK(lst.st_mode) ? walk_link(w, p, k, (uint64_t)st.st_size, err)
                                      : walk_push(w, k, p, (uint64_t)st.st_size, false, NULL, err);
        }
    }
    closedir(d);
    return rc;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const struct file *)a)->key, ((const struct file *)b)->key);
}

static enum al_rc count_tokens(void *ud, const char *text, size_t len, int *n, struct al_err *err)
{
    int32_t *toks = NULL;
    size_t nt = 0;
    enum al_rc rc = al_engine_tokenize(ud, text, len, false, false, &toks, &nt, err);
    free(toks);
    *n = (int)nt;
    return rc;
}

struct adder {
    struct al_rag *r;
    struct al_engine_model *m;
    struct al_rag_add_stats *st;
    al_rag_add_cb *cb;
    void *ud;
    int64_t *new_ids;   /* appended vectors, for the index update */
    float *new_vecs;
    size_t n_new, cap_new;
    bool removed, overflow;
};

static enum al_rc keep_new(struct adder *a, int64_t id, const float *vec, struct al_err *err)
{
    if (a->overflow)
        return AL_OK;
    int dim = a->r->info.dim;
    if (a->n_new == a->cap_new) {
        size_t cap = a->cap_new ? a->cap_new * 2 : 256;
        if (cap > APPEND_MAX) {
            a->overflow = true; /* the index will be rebuilt from the database */
            return AL_OK;
        }
        int64_t *ids = realloc(a->new_ids, cap * sizeof *ids);
        if (ids)
            a->new_ids = ids;
        float *v = ids ? realloc(a->new_vecs, cap * (size_t)dim * sizeof *v) : NULL;
        if (v)
            a->new_vecs = v;
        if (!ids || !v)
            return al_err_set(err, AL_ERR_NOMEM, "out of memory");
        a->cap_new = cap;
    }
    a->new_ids[a->n_new] = id;
    memcpy(a->new_vecs + a->n_new * (size_t)dim, vec, (size_t)dim * sizeof(float));
    a->n_new++;
    return AL_OK;
}

static enum al_rc embed_chunks(struct adder *a, const struct al_rag_chunks *ch, float *vecs, struct al_err *err)
{
    const int dim = a->r->info.dim;
    char *texts[EMBED_BATCH];
    enum al_rc rc = AL_OK;
    for (size_t i = 0; i < ch->n && !rc; i += EMBED_BATCH) {
        size_t n = ch->n - i < EMBED_BATCH ? ch->n - i : EMBED_BATCH;
        size_t made = 0;
        for (; made < n; made++)
            if (!(texts[made] = al_rag_embed_text(ch->v[i + made].heading, ch->v[i + made].text)))
                break;
        if (made < n)
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        else
            rc = al_engine_embed(a->m, (const char *const *)texts, n, vecs + i * (size_t)dim, err);
        for (size_t k = 0; k < made; k++)
            free(texts[k]);
    }
    return rc;
}

/* One document: AL_OK also when skipped (reported through the callback). */
/* One document, its chunks and their vectors in one transaction, replacing
 * the document old_id (when >= 0); counts it. */
static enum al_rc store_doc(struct adder *a, struct al_rag_docrow *row, int64_t old_id,
                            const struct al_rag_chunks *ch, const float *vecs, struct al_err *err)
{
    struct al_rag *r = a->r;
    int64_t gen, doc_id = 0;
    enum al_rc rc = al_rag_db_begin(r->db, err);
    if (rc)
        return rc;
    if (old_id >= 0 && (rc = al_rag_db_doc_delete(r->db, old_id, NULL, err)))
        goto rollback;
    if ((rc = al_rag_db_doc_insert(r->db, row, &doc_id, err)))
        goto rollback;
    size_t first_new = a->n_new;
    for (size_t i = 0; i < ch->n && !rc; i++) {
        int64_t id;
        const float *v = vecs + i * (size_t)r->info.dim;
        rc = al_rag_db_chunk_insert(r->db, doc_id, -1, &ch->v[i], v, r->info.dim, &id, err);
        if (!rc)
            rc = keep_new(a, id, v, err);
    }
    if (rc || (rc = al_rag__bump_generation(r, &gen, err)) || (rc = al_rag_db_commit(r->db, err))) {
        a->n_new = first_new;
        goto rollback;
    }
    r->info.generation = gen;
    a->removed = a->removed || old_id >= 0;
    a->st->chunks += ch->n;
    if (old_id >= 0)
        a->st->replaced++;
    else
        a->st->added++;
    return AL_OK;
rollback:
    al_rag_db_rollback(r->db);
    return rc;
}

static enum al_rc add_one(struct adder *a, const struct file *f, struct al_err *err)
{
    struct al_rag *r = a->r;
    char *data = NULL, why[AL_ERR_MSG_MAX] = "";
    size_t len = 0;
    struct al_err e2 = AL_ERR_INIT;
    double t0 = al_rag__now_ms();
    if (f->refused) {
        a->st->skipped++;
        a->cb(a->ud, f->key, "skipped", f->refused);
        return AL_OK;
    }
    enum al_rc rc = al_fs_read_file(f->path, AL_LIMIT_RAG_DOC_BYTES, &data, &len, &e2);
    if (rc == AL_ERR_NOMEM)
        return al_err_set(err, rc, "%s: %s", f->key, e2.msg);
    if (rc) { /* this file's problem: report it and go on with the others */
        if (rc == AL_ERR_LIMIT)
            snprintf(why, sizeof why, "%" PRIu64 " bytes, over the cap of %u (AL_LIMIT_RAG_DOC_BYTES)", f->size,
                     AL_LIMIT_RAG_DOC_BYTES);
        else
            snprintf(why, sizeof why, "%s", e2.msg);
        a->st->skipped++;
        a->cb(a->ud, f->key, "skipped", why);
        return AL_OK;
    }
    uint8_t raw[AL_SHA256_BYTES];
    char digest[AL_DIGEST_SIZE], old[AL_DIGEST_SIZE] = "";
    al_sha256_buf(data, len, raw);
    al_digest_format(raw, digest);
    int64_t old_id = -1;
    rc = al_rag_db_doc_find(r->db, f->key, false, &old_id, old, err);
    if (rc == AL_ERR_NOT_FOUND) {
        old_id = -1;
        rc = AL_OK;
    }
    if (rc) {
        free(data);
        return rc;
    }
    if (old_id >= 0 && strcmp(old, digest) == 0) {
        free(data);
        a->st->unchanged++;
        a->cb(a->ud, f->key, "unchanged", NULL);
        return AL_OK;
    }
    enum al_rag_format fmt = al_rag_format_guess(f->path, data, len, f->named);
    struct al_rag_doctext dt = {0};
    struct al_rag_chunks ch = {0};
    float *vecs = NULL;
    if (fmt == AL_FMT_UNKNOWN) {
        snprintf(why, sizeof why, "not a supported format (text, Markdown, HTML, PDF)");
        goto skip;
    }
    al_err_clear(&e2);
    if ((rc = al_rag_extract(fmt, data, len, &dt, &e2))) {
        if (rc == AL_ERR_NOMEM)
            goto fail_e2;
        snprintf(why, sizeof why, "%s", e2.msg);
        rc = AL_OK;
        goto skip;
    }
    struct al_rag_chunk_params cp = {r->info.chunk_tokens, r->info.overlap_tokens, count_tokens, a->m};
    al_err_clear(&e2);
    if ((rc = al_rag_chunk_doc(&dt, digest, &cp, &ch, &e2))) {
        if (rc == AL_ERR_NOMEM || rc == AL_ERR_INTERNAL)
            goto fail_e2;
        snprintf(why, sizeof why, "%s", e2.msg); /* over a cap: this document only */
        rc = AL_OK;
        goto skip;
    }
    double t1 = al_rag__now_ms();
    a->st->ms_extract += t1 - t0;
    if (ch.n && !(vecs = malloc(ch.n * (size_t)r->info.dim * sizeof *vecs))) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    al_err_clear(&e2);
    if (ch.n && (rc = embed_chunks(a, &ch, vecs, &e2))) {
        if (rc != AL_ERR_LIMIT && rc != AL_ERR_INVALID)
            goto fail_e2;
        snprintf(why, sizeof why, "%s", e2.msg);
        rc = AL_OK;
        goto skip;
    }
    double t2 = al_rag__now_ms();
    a->st->ms_embed += t2 - t1;
    struct al_rag_docrow row = {0, f->key, digest, al_rag_format_name(fmt), (uint64_t)len, dt.pages};
    if (!(rc = store_doc(a, &row, old_id, &ch, vecs, err))) {
        a->st->ms_store += al_rag__now_ms() - t2;
        a->cb(a->ud, f->key, old_id >= 0 ? "replaced" : "added", NULL);
    }
    goto out;
fail_e2:
    al_err_set(err, rc, "%s: %s", f->key, e2.msg);
    goto out;
skip:
    a->st->skipped++;
    a->cb(a->ud, f->key, "skipped", why);
out:
    free(vecs);
    al_rag_chunks_release(&ch);
    al_rag_doctext_release(&dt);
    free(data);
    return rc;
}

static void quiet_cb(void *ud, const char *doc, const char *status, const char *why) {}

/* A path named on the command line: a directory is walked, anything else
 * but a regular file (a FIFO would block the read) is refused by name. */
static enum al_rc walk_named(struct walk *w, const char *path, struct al_err *err)
{
    char key[AL_LIMIT_PATH];
    struct stat st;
    normalize_key(path, key, sizeof key);
    if (stat(path, &st) != 0)
        return al_err_sys(err, errno == ENOENT ? AL_ERR_NOT_FOUND : AL_ERR_IO, "cannot read '%s'", path);
    if (S_ISREG(st.st_mode))
        return walk_push(w, key, path, (uint64_t)st.st_size, true, NULL, err);
    if (!S_ISDIR(st.st_mode))
        return walk_push(w, key, path, 0, true, "not a regular file or a directory", err);
    if (!realpath(path, w->root))
        return al_err_sys(err, AL_ERR_IO, "cannot resolve '%s'", path);
    return walk_dir(w, path, key, 0, err);
}

enum al_rc al_rag_add(struct al_rag *r, struct al_engine_model *embedder, const char *const *paths,
                      size_t n_paths, unsigned flags, al_rag_add_cb *cb, void *ud,
                      struct al_rag_add_stats *stats, struct al_err *err)
{
    memset(stats, 0, sizeof *stats);
    enum al_rc rc = al_rag__lock(r, err);
    if (rc)
        return rc;
    struct walk w = {.follow_links = (flags & AL_RAG_ADD_FOLLOW_LINKS) != 0};
    const bool progress = (flags & AL_RAG_ADD_PROGRESS) != 0;
    struct adder a = {.r = r, .m = embedder, .st = stats, .cb = cb ? cb : quiet_cb, .ud = ud};
    struct al_engine_model_info mi;
    al_engine_model_info(embedder, &mi);
    if (r->info.readonly) {
        rc = al_err_set(err, AL_ERR_DENIED, "collection '%s' is read-only (imported or attached)", r->name);
        goto out;
    }
    if (strcmp(mi.digest, r->info.embed_digest) != 0 || mi.n_embd != r->info.dim) {
        rc = al_err_set(err, AL_ERR_DENIED, "collection '%s' is embedded with %s (%d dimensions), not %s (%d)", r->name,
                        r->info.embed_digest, r->info.dim, mi.digest, mi.n_embd);
        goto out;
    }
    for (size_t i = 0; i < n_paths && !rc; i++)
        rc = walk_named(&w, paths[i], err);
    if (rc)
        goto out;
    if (w.n)
        qsort(w.v, w.n, sizeof *w.v, cmp_file);
    uint64_t total = 0;
    for (size_t i = 0; i < w.n; i++)
        total += w.v[i].size;
    struct al_progress *pb = progress ? al_progress_new("indexing", total) : NULL;
    int64_t old_gen = r->info.generation;
    for (size_t i = 0; i < w.n && !rc; i++) {
        if (i > 0 && strcmp(w.v[i].key, w.v[i - 1].key) == 0)
            continue; /* named twice */
        stats->files_seen++;
        rc = add_one(&a, &w.v[i], err);
        al_progress_add(pb, w.v[i].size);
    }
    al_progress_free(pb);
    if (r->info.generation != old_gen) {
        struct al_err e2 = AL_ERR_INIT;
        enum al_rc rc2 = al_rag__load_info(r, &e2);
        if (!rc2)
            rc2 = al_rag__vindex_update(r, old_gen, a.overflow ? NULL : a.new_ids, a.new_vecs, a.n_new,
                                        a.removed || a.overflow, &e2);
        if (rc2 && !rc)
            rc = al_err_set(err, rc2, "%s", e2.msg);
    }
out:
    for (size_t i = 0; i < w.n; i++) {
        free(w.v[i].key);
        free(w.v[i].path);
        free(w.v[i].refused);
    }
    free(w.v);
    free(a.new_ids);
    free(a.new_vecs);
    al_rag__unlock(r);
    return rc;
}
