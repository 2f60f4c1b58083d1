/*
 * snapshot.c: a collection as files that can travel in a signed bundle, and
 * those files installed again as a read-only collection.
 *
 * The files: chunks.db (a deterministic copy: VACUUM INTO, marked read-only,
 * rollback journal, 4096-byte pages, vacuumed again), vectors.faiss (the
 * collection's FAISS index of that generation, byte for byte) and
 * rag-snapshot.json (what a reader needs without opening SQLite: format,
 * collection, generation, embedding model name, manifest and weight digest,
 * dimension, chunker and budget, counts). The bundle is made and checked by
 * src/bundle (the CLI joins the two): this module knows nothing of bundles.
 */
#include "rag/rag_int.h"

#include <dirent.h>
#include <inttypes.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"

static enum al_rc copy_file(const char *src, const char *dst, const char *want, struct al_err *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return al_err_sys(err, errno == ENOENT ? AL_ERR_NOT_FOUND : AL_ERR_IO, "cannot open '%s'", src);
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return al_err_sys(err, AL_ERR_IO, "cannot create '%s'", dst);
    }
    char got[AL_DIGEST_SIZE];
    enum al_rc rc = al_sha256_copy(in, out, got, NULL, NULL, err);
    if (!rc && fsync(out) != 0)
        rc = al_err_sys(err, AL_ERR_IO, "cannot sync '%s'", dst);
    close(in);
    if (close(out) != 0 && !rc)
        rc = al_err_sys(err, AL_ERR_IO, "cannot write '%s'", dst);
    if (!rc && want && strcmp(got, want) != 0)
        rc = al_err_set(err, AL_ERR_VERIFY, "'%s' has digest %s, expected %s", src, got, want);
    return rc;
}

enum al_rc al_rag_snapshot_write(struct al_rag *r, const char *dir, struct al_rag_snapshot *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    enum al_rc rc = al_rag__lock(r, err); /* no writer between the database and the index file */
    if (rc)
        return rc;
    char src_faiss[AL_LIMIT_PATH];
    if ((rc = al_rag__vindex(r, err)) || /* makes sure the generation's index file exists */
        (rc = al_path_fmt(src_faiss, sizeof src_faiss, err, "%s/vectors-%lld.faiss", r->dir,
                          (long long)r->info.generation)) ||
        (rc = al_path_fmt(out->db, sizeof out->db, err, "%s/chunks.db", dir)) ||
        (rc = al_path_fmt(out->faiss, sizeof out->faiss, err, "%s/vectors.faiss", dir)) ||
        (rc = al_path_fmt(out->meta, sizeof out->meta, err, "%s/rag-snapshot.json", dir)))
        goto out;
    if (!al_fs_exists(src_faiss)) {
        rc = al_err_set(err, AL_ERR_CORRUPT, "collection '%s' has no vector index file for generation %lld", r->name,
                        (long long)r->info.generation);
        goto out;
    }
    if ((rc = al_rag_db_snapshot(r->db, out->db, err)) || (rc = copy_file(src_faiss, out->faiss, NULL, err)))
        goto out;
    char *changed = NULL;
    if (al_rag_db_meta_get(r->db, "changed", &changed, NULL) != AL_OK &&
        (rc = al_rag_db_meta_get(r->db, "created", &changed, err)))
        goto out;
    snprintf(out->changed, sizeof out->changed, "%s", changed);
    free(changed);
    const struct al_rag_info *i = &r->info;
    out->generation = i->generation;
    json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:s, s:s, s:i}, s:{s:s, s:i, s:i}, s:I, s:I, s:s, s:s}",
                          "format", AL_RAG_SNAPSHOT_FORMAT, "collection", r->name, "generation",
                          (json_int_t)i->generation, "changed", out->changed, "embedding", "model", i->embed_model,
                          "manifest", i->embed_manifest, "digest", i->embed_digest, "dim", i->dim, "chunker",
                          "version", i->chunker, "tokens", i->chunk_tokens, "overlap", i->overlap_tokens, "docs",
                          (json_int_t)i->docs, "chunks", (json_int_t)i->chunks, "index", i->index_kind,
                          "database", "chunks.db");
    char *text = j ? json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (!text) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = al_fs_write_atomic(out->meta, text, strlen(text), err);
    free(text);
out:
    al_rag__unlock(r);
    return rc;
}

/* Reads and checks rag-snapshot.json. */
static enum al_rc read_meta(const char *path, json_t **out, int64_t *gen, struct al_err *err)
{
    char *text = NULL;
    size_t len = 0;
    enum al_rc rc = al_fs_read_file(path, 1u << 20, &text, &len, err);
    if (rc)
        return rc;
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    const char *fmt = json_string_value(json_object_get(j, "format"));
    json_t *jg = json_object_get(j, "generation");
    if (!j || !fmt || strcmp(fmt, AL_RAG_SNAPSHOT_FORMAT) != 0 || !json_is_integer(jg) || json_integer_value(jg) < 0) {
        json_decref(j);
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not a collection snapshot (%s)", path,
                          j ? "format " AL_RAG_SNAPSHOT_FORMAT " expected" : je.text);
    }
    *gen = json_integer_value(jg);
    *out = j;
    return AL_OK;
}

/* Removes a collection directory made by us (only the files we put there). */
static void remove_dir(const char *dir)
{
    static const char *const names[] = {"chunks.db", "chunks.db-wal", "chunks.db-shm", "chunks.db-journal",
                                        "snapshot.json", "lock"};
    char p[AL_LIMIT_PATH];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!al_path_fmt(p, sizeof p, NULL, "%s/%s", dir, names[i]))
            unlink(p);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, "vectors-", 8) == 0 && !al_path_fmt(p, sizeof p, NULL, "%s/%s", dir, e->d_name))
            unlink(p);
    if (d)
        closedir(d);
    rmdir(dir);
}

enum al_rc al_rag_snapshot_install(const char *home, const char *name, const struct al_rag_snapshot_src *src,
                                   struct al_err *err)
{
    if (!al_rag_name_valid(name))
        return al_err_set(err, AL_ERR_USAGE, "'%s' is not a collection name", name);
    json_t *meta = NULL;
    int64_t gen = 0;
    enum al_rc rc = read_meta(src->meta, &meta, &gen, err);
    if (rc)
        return rc;
    char root[AL_LIMIT_PATH], dir[AL_LIMIT_PATH], tmp[AL_LIMIT_PATH], old[AL_LIMIT_PATH], p[AL_LIMIT_PATH];
    old[0] = 0;
    bool made = false;
    struct al_rag_db *db = NULL;
    char *text = NULL;
    if ((rc = al_path_fmt(root, sizeof root, err, "%s/rag", home)) ||
        (rc = al_path_fmt(dir, sizeof dir, err, "%s/%s", root, name)) ||
        (rc = al_path_fmt(tmp, sizeof tmp, err, "%s/.new-%s-XXXXXX", root, name)) ||
        (rc = al_fs_mkdirs(root, 0755, err)))
        goto out;
    if (!mkdtemp(tmp)) {
        rc = al_err_sys(err, AL_ERR_IO, "cannot create '%s'", tmp);
        goto out;
    }
    made = true;
    chmod(tmp, 0755);
    /* The files are copied out of the store and hashed on the way: what is
     * installed is what the signed manifest lists. */
    if ((rc = al_path_fmt(p, sizeof p, err, "%s/chunks.db", tmp)) || (rc = copy_file(src->db, p, src->db_digest, err)))
        goto out;
    if ((rc = al_rag_db_open(p, false, false, &db, err)))
        goto out;
    const char *jdig = json_string_value(json_object_get(json_object_get(meta, "embedding"), "digest"));
    char *v = NULL;
    bool ok = al_rag_db_meta_get(db, "readonly", &v, err) == AL_OK && strcmp(v, "1") == 0;
    free(v);
    v = NULL;
    ok = ok && al_rag_db_meta_get(db, "generation", &v, err) == AL_OK && strtoll(v, NULL, 10) == gen;
    free(v);
    v = NULL;
    ok = ok && jdig && al_rag_db_meta_get(db, "embed_digest", &v, err) == AL_OK && strcmp(v, jdig) == 0;
    free(v);
    al_rag_db_free(db);
    db = NULL;
    if (!ok) {
        rc = al_err_set(err, AL_ERR_INVALID, "the snapshot's database does not match rag-snapshot.json "
                        "(read-only flag, generation or embedding digest)");
        goto out;
    }
    if ((rc = al_path_fmt(p, sizeof p, err, "%s/vectors-%lld.faiss", tmp, (long long)gen)) ||
        (rc = copy_file(src->faiss, p, src->faiss_digest, err)))
        goto out;
    json_object_set_new(meta, "source", json_string(src->source ? src->source : ""));
    text = json_dumps(meta, JSON_SORT_KEYS | JSON_INDENT(2));
    if (!text) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = al_path_fmt(p, sizeof p, err, "%s/snapshot.json", tmp)) ||
        (rc = al_fs_write_atomic(p, text, strlen(text), err)))
        goto out;
    /* In place: a read-only collection of this name (an earlier import) is
     * replaced; a local one is not. */
    if (al_fs_exists(dir)) {
        struct al_rag *cur = NULL;
        if ((rc = al_rag_open(home, name, false, &cur, err)))
            goto out;
        bool ro = cur->info.readonly;
        al_rag_free(cur);
        if (!ro) {
            rc = al_err_set(err, AL_ERR_EXISTS,
                            "a local collection '%s' exists; import the snapshot under another name (--as)", name);
            goto out;
        }
        if ((rc = al_path_fmt(old, sizeof old, err, "%s/.old-%s-XXXXXX", root, name)))
            goto out;
        if (!mkdtemp(old) || rmdir(old) != 0 || rename(dir, old) != 0) {
            rc = al_err_sys(err, AL_ERR_IO, "cannot move '%s' aside", dir);
            old[0] = 0;
            goto out;
        }
    }
    if (rename(tmp, dir) != 0) {
        rc = al_err_sys(err, AL_ERR_IO, "cannot rename '%s' to '%s'", tmp, dir);
        if (old[0] && rename(old, dir) == 0)
            old[0] = 0;
        goto out;
    }
    made = false;
    if (old[0])
        remove_dir(old);
    rc = al_fs_fsync_dir(root, err);
out:
    al_rag_db_free(db);
    if (made)
        remove_dir(tmp);
    free(text);
    json_decref(meta);
    return rc;
}

/* ---- export and import ---- */

enum al_rc al_rag_export_prepare(struct al_rag *r, const char *home, struct al_rag_export *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    enum al_rc rc = al_path_fmt(out->dir, sizeof out->dir, err, "%s/rag/.export-%s-XXXXXX", home, r->name);
    if (rc)
        return rc;
    if (mkdtemp(out->dir) == NULL)
        return al_err_sys(err, AL_ERR_IO, "cannot create '%s'", out->dir);
    out->made = true;
    if ((rc = al_rag_snapshot_write(r, out->dir, &out->snap, err)))
        return rc;
    snprintf(out->name, sizeof out->name, "%s%s", AL_RAG_SNAPSHOT_PREFIX, r->name);
    snprintf(out->tag, sizeof out->tag, "g%" PRId64, out->snap.generation);
    out->files[0] = out->snap.db;
    out->files[1] = out->snap.faiss;
    out->files[2] = out->snap.meta;
    return AL_OK;
}

void al_rag_export_release(struct al_rag_export *e)
{
    if (!e->made)
        return;
    /* al_rag_snapshot_write clears snap first: names it never set are "" */
    if (e->snap.db[0])
        unlink(e->snap.db);
    if (e->snap.faiss[0])
        unlink(e->snap.faiss);
    if (e->snap.meta[0])
        unlink(e->snap.meta);
    rmdir(e->dir);
    e->made = false;
}

enum al_rc al_rag_snapshot_resolve(struct al_repo *repo, const char *arg, struct al_version *out, struct al_err *err)
{
    char ref[AL_LIMIT_REF + 8];
    bool prefixed = strncmp(arg, AL_RAG_SNAPSHOT_PREFIX, strlen(AL_RAG_SNAPSHOT_PREFIX)) == 0;
    snprintf(ref, sizeof ref, "%s%s", prefixed ? "" : AL_RAG_SNAPSHOT_PREFIX, arg);
    return al_repo_resolve(repo, ref, out, err);
}

/* The stored file of a version named path: its blob and digest. */
static enum al_rc version_file(struct al_repo *repo, const struct al_file *files, size_t n, const char *path,
                               char *blob, char *digest, struct al_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(files[i].path, path) == 0) {
            snprintf(digest, AL_DIGEST_SIZE, "%s", files[i].digest);
            return al_repo_blob_path(repo, files[i].digest, blob, AL_LIMIT_PATH, err);
        }
    return al_err_set(err, AL_ERR_INVALID, "the version has no '%s': not a collection snapshot", path);
}

enum al_rc al_rag_snapshot_import(struct al_repo *repo, const char *home, const struct al_version *v,
                                  const char *as, const char *what, struct al_rag_imported *out, struct al_err *err)
{
    size_t plen = strlen(AL_RAG_SNAPSHOT_PREFIX);
    memset(out, 0, sizeof *out);
    if (strncmp(v->model, AL_RAG_SNAPSHOT_PREFIX, plen) != 0)
        return al_err_set(err, AL_ERR_INVALID, "'%s' is the model '%s', not a collection snapshot (rag/COLLECTION)",
                          what, v->model);
    snprintf(out->coll, sizeof out->coll, "%s", as ? as : v->model + plen);
    struct al_file *files = NULL;
    size_t n = 0;
    char db[AL_LIMIT_PATH], faiss[AL_LIMIT_PATH], meta[AL_LIMIT_PATH];
    char db_d[AL_DIGEST_SIZE], faiss_d[AL_DIGEST_SIZE], meta_d[AL_DIGEST_SIZE];
    enum al_rc rc = al_repo_list_files(repo, v, &files, &n, err);
    if (!rc && !(rc = version_file(repo, files, n, "chunks.db", db, db_d, err)) &&
        !(rc = version_file(repo, files, n, "vectors.faiss", faiss, faiss_d, err)) &&
        !(rc = version_file(repo, files, n, "rag-snapshot.json", meta, meta_d, err))) {
        snprintf(out->source, sizeof out->source, "%s@%s", v->model, v->manifest);
        struct al_rag_snapshot_src src = {.db = db, .faiss = faiss, .meta = meta, .db_digest = db_d,
                                          .faiss_digest = faiss_d, .source = out->source};
        rc = al_rag_snapshot_install(home, out->coll, &src, err);
    }
    free(files);
    struct al_rag *r = NULL;
    if (!rc && !(rc = al_rag_open(home, out->coll, false, &r, err)))
        rc = al_rag_info(r, &out->info, err);
    al_rag_free(r);
    if (rc)
        return rc;
    snprintf(out->embed_ref, sizeof out->embed_ref, "%s@%s", out->info.embed_model, out->info.embed_manifest);
    struct al_version ev;
    out->embedder_present = al_repo_resolve(repo, out->embed_ref, &ev, NULL) == AL_OK;
    return AL_OK;
}
