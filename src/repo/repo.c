/*
 * repo.c: add, tag, activate, rollback, rm, and index.json.
 */
#include "repo/repo_int.h"

#include <jansson.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/progress.h"
#include "oci/oci.h"

#define LOCK_TIMEOUT_MS 60000

/* Whether this process may write the store: the home directory (SQLite
 * makes its -wal and -shm files there) and the index file. A read-only mount
 * answers EROFS even to root. */
static bool store_writable(const char *home, const char *db, int *why)
{
    *why = 0;
    if (faccessat(AT_FDCWD, home, W_OK, AT_EACCESS) != 0 && errno != ENOENT)
        *why = errno;
    else if (faccessat(AT_FDCWD, db, W_OK, AT_EACCESS) != 0 && errno != ENOENT)
        *why = errno;
    return *why == 0;
}

/* Opens the index of an open store: an existing one as it is; where there
 * is none (missing, empty, no tables) a fresh one only when the store has
 * no history that it would hide (al_repo__index_lost). */
static enum al_rc open_index(struct al_repo *r, const char *db, bool read_only, struct al_err *err)
{
    struct al_err miss = AL_ERR_INIT;
    enum al_rc rc = al_index_open_mode(db, read_only ? AL_INDEX_READ_ONLY : AL_INDEX_EXISTING, &r->index, &miss);
    if (rc && rc != AL_ERR_NOT_FOUND)
        return al_err_set(err, rc, "%s", miss.msg);
    bool lost = false;
    enum al_rc lrc = al_repo__index_lost(r->store, r->index, miss.msg, &lost, err);
    if (lrc || lost)
        return lrc ? lrc : AL_ERR_CORRUPT;
    if (rc == AL_OK)
        return AL_OK;
    if (read_only)
        return al_err_set(err, AL_ERR_NOT_FOUND, "%s, and the store at '%s' is read-only", miss.msg,
                          al_store_home(r->store));
    return al_index_open_mode(db, AL_INDEX_CREATE, &r->index, err);
}

enum al_rc al_repo_open(const char *home, bool create, struct al_repo **out, struct al_err *err)
{
    *out = NULL;
    char db[AL_LIMIT_PATH];
    int why = 0;
    enum al_rc rc = al_path_fmt(db, sizeof db, err, "%s/airlock.db", home);
    if (rc)
        return rc;
    if (!store_writable(home, db, &why))
        return al_err_set(err, AL_ERR_DENIED, "the store at '%s' cannot be written (%s); this command changes it",
                          home, strerror(why));
    struct al_repo *r = calloc(1, sizeof *r);
    if (r == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    rc = al_store_open(home, create, &r->store, err);
    if (!rc)
        rc = open_index(r, db, false, err);
    if (rc) {
        al_repo_free(r);
        return rc;
    }
    *out = r;
    return AL_OK;
}

enum al_rc al_repo_open_read(const char *home, struct al_repo **out, struct al_err *err)
{
    *out = NULL;
    char db[AL_LIMIT_PATH];
    int why = 0;
    enum al_rc rc = al_path_fmt(db, sizeof db, err, "%s/airlock.db", home);
    if (rc)
        return rc;
    if (store_writable(home, db, &why))
        return al_repo_open(home, false, out, err);
    struct al_repo *r = calloc(1, sizeof *r);
    if (r == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    rc = al_store_open_read(home, &r->store, err);
    if (!rc)
        rc = open_index(r, db, true, err);
    if (rc) {
        al_repo_free(r);
        return rc;
    }
    *out = r;
    return AL_OK;
}

bool al_repo_read_only(const struct al_repo *r) { return al_index_read_only(r->index); }

void al_repo_free(struct al_repo *r)
{
    if (r == NULL)
        return;
    al_index_free(r->index);
    al_store_free(r->store);
    free(r);
}

enum al_rc al_repo__begin(struct al_repo *r, struct al_err *err)
{
    enum al_rc rc = al_store_lock(r->store, AL_LOCK_WRITE, LOCK_TIMEOUT_MS, err);
    if (rc)
        return rc;
    if ((rc = al_index_begin(r->index, err)))
        al_store_unlock(r->store, AL_LOCK_WRITE);
    return rc;
}

enum al_rc al_repo__build_index_json(struct al_repo *r, char **out, struct al_err *err)
{
    *out = NULL;
    struct al_version *v = NULL;
    size_t n = 0;
    enum al_rc rc = al_index_list_versions(r->index, NULL, &v, &n, err);
    if (rc)
        return rc;
    /* One entry per tag, its ref.name name:tag, so that oci:STORE:name:tag
     * finds every tag (an untagged version: one entry, ref.name its name);
     * each carries all tags in io.airlock.tags, which a rebuild reads. */
    size_t n_e = n;
    for (size_t i = 0; i < n; i++)
        for (const char *t = v[i].tags; *t; t++)
            n_e += *t == ',';
    struct al_oci_index_entry *e = calloc(n_e ? n_e : 1, sizeof *e);
    char *json = NULL;
    if (e == NULL) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = v[i].tags;
        do {
            int len = (int)strcspn(t, ",");
            snprintf(e[k].ref_name, sizeof e[k].ref_name, len ? "%s:%.*s" : "%s", v[i].model, len, t);
            memcpy(e[k].digest, v[i].manifest, AL_DIGEST_SIZE);
            e[k].size = v[i].manifest_size;
            e[k].tags = v[i].tags;
            e[k].active = v[i].active;
            k++;
            t += len + (t[len] == ',');
        } while (*t);
    }
    if (!(rc = al_oci_index_build(e, k, &json, err))) {
        *out = json;
        json = NULL;
    }
out:
    free(json);
    free(e);
    free(v);
    return rc;
}

bool al_repo__index_json_current(struct al_repo *r, const char *json)
{
    char path[AL_LIMIT_PATH], *old = NULL;
    size_t old_len = 0;
    bool same = al_path_fmt(path, sizeof path, NULL, "%s/index.json", al_store_home(r->store)) == AL_OK &&
                al_fs_read_file(path, AL_LIMIT_INDEX_JSON, &old, &old_len, NULL) == AL_OK &&
                old_len == strlen(json) && memcmp(old, json, old_len) == 0;
    free(old);
    return same;
}

enum al_rc al_repo__write_index_json(struct al_repo *r, struct al_err *err)
{
    char *json = NULL, path[AL_LIMIT_PATH];
    enum al_rc rc = al_repo__build_index_json(r, &json, err);
    /* Rewrite only when it changed, so readers are not disturbed. */
    if (!rc && !al_repo__index_json_current(r, json) &&
        !(rc = al_path_fmt(path, sizeof path, err, "%s/index.json", al_store_home(r->store))))
        rc = al_fs_write_atomic(path, json, strlen(json), err);
    free(json);
    return rc;
}

enum al_rc al_repo__end(struct al_repo *r, enum al_rc rc, struct al_err *err)
{
    if (rc)
        al_index_rollback(r->index);
    else
        rc = al_index_commit(r->index, err);
    if (!rc)
        rc = al_repo__write_index_json(r, err);
    al_store_unlock(r->store, AL_LOCK_WRITE);
    return rc;
}

enum al_rc al_repo_sync_index_json(struct al_repo *r, struct al_err *err)
{
    enum al_rc rc = al_store_lock(r->store, AL_LOCK_WRITE, LOCK_TIMEOUT_MS, err);
    if (rc)
        return rc;
    rc = al_repo__write_index_json(r, err);
    al_store_unlock(r->store, AL_LOCK_WRITE);
    return rc;
}

/* ---- add ---- */

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static enum al_rc read_card(const char *path, char **out, struct al_err *err)
{
    size_t len = 0;
    enum al_rc rc = al_fs_read_file(path, AL_LIMIT_CARD, out, &len, err);
    if (rc)
        return rc;
    json_error_t je;
    json_t *j = json_loadb(*out, len, JSON_REJECT_DUPLICATES, &je);
    bool ok = json_is_object(j);
    json_decref(j);
    if (!ok) {
        free(*out);
        *out = NULL;
        return al_err_set(err, AL_ERR_INVALID, "model card '%s' is not a JSON object: %s (line %d)", path, je.text,
                          je.line);
    }
    return AL_OK;
}

static char *add_detail(const struct al_oci_layer *layers, size_t n, const char *const *paths, const char *tag,
                        const char *key, const char *check, json_t *adapter, json_t *quantized,
                        json_t *finetuned)
{
    json_t *files = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(files, json_pack("{s:s, s:s, s:I, s:s}", "path", layers[i].path, "digest",
                                               layers[i].digest, "size", (json_int_t)layers[i].size, "source",
                                               paths[i]));
    json_t *d = json_pack("{s:o, s:s}", "files", files, "tag", tag);
    if (adapter)
        json_object_set(d, "adapter", adapter);
    if (quantized)
        json_object_set(d, "quantized", quantized);
    if (finetuned)
        json_object_set(d, "finetuned", finetuned);
    if (check) {
        json_t *c = json_loads(check, 0, NULL);
        if (c == NULL || (!key && !json_is_object(c))) {
            json_decref(c);
            json_decref(d);
            return NULL;
        }
        if (key) {
            json_object_set_new(d, key, c);
        } else {
            json_object_update_missing(d, c); /* the record's keys beside the repo's own, never over them */
            json_decref(c);
        }
    }
    char *s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(d);
    return s;
}

enum al_rc al_repo_spool_new(struct al_repo *r, struct al_blob_writer **out, struct al_err *err)
{
    return al_blob_writer_new(r->store, out, err);
}

const char *al_repo_spool_path(const struct al_blob_writer *sp)
{
    return al_blob_writer_path(sp);
}

void al_repo_spool_free(struct al_blob_writer *sp)
{
    al_blob_writer_free(sp);
}

enum al_rc al_repo_add(struct al_repo *r, const char *ref_text, const char *const *paths, size_t n_paths,
                       const struct al_add_opts *opts, struct al_version *out, bool *existed,
                       struct al_err *err)
{
    struct al_ref ref;
    enum al_rc rc = al_index_ref_parse(ref_text, &ref, err);
    if (rc)
        return rc;
    if (ref.digest[0])
        return al_err_set(err, AL_ERR_USAGE, "add takes NAME[:TAG], not a digest");
    const char *tag = ref.tag[0] ? ref.tag : "latest";
    if (n_paths == 0)
        return al_err_set(err, AL_ERR_USAGE, "no files to add");
    if (n_paths > AL_LIMIT_FILES_PER_MODEL)
        return al_err_set(err, AL_ERR_LIMIT, "more than %u files (AL_LIMIT_FILES_PER_MODEL)",
                          AL_LIMIT_FILES_PER_MODEL);
    struct al_oci_layer *layers = calloc(n_paths, sizeof *layers);
    char *card = NULL, *config = NULL, *manifest = NULL, *detail = NULL, *check = NULL, *note = NULL;
    struct al_model_facts facts;
    memset(&facts, 0, sizeof facts);
    bool facts_done = false;
    struct al_adapter_fit fit = {0};
    json_t *adapter = NULL, *quantized = NULL, *finetuned = NULL;
    char *qtext = NULL, *ftext = NULL;
    const char *base_ref = opts ? opts->base_ref : NULL;
    struct al_weights base;
    memset(&base, 0, sizeof base);
    size_t n_weights = 0;
    if (layers == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (opts && opts->card_path && (rc = read_card(opts->card_path, &card, err)))
        goto out;
    /* An adapter: its base first (a model, resolved to its weight file). */
    if (base_ref) {
        struct al_adapter_binding bb;
        struct al_err berr = AL_ERR_INIT;
        if ((rc = al_repo_resolve_weights(r, base_ref, &base, &berr)) ||
            (rc = al_repo_version_adapter(r, &base.version, &bb, &berr))) {
            al_err_set(err, rc, "the base '%s' of the adapter: %s", base_ref, berr.msg);
            goto refused;
        }
        if (bb.base[0]) {
            rc = al_err_set(err, AL_ERR_INVALID, "the base '%s' is itself an adapter; an adapter's base is a model",
                            base_ref);
            goto refused;
        }
    }
    for (size_t i = 0; i < n_paths; i++) {
        const char *name = opts && opts->names && opts->names[i] ? opts->names[i] : base_name(paths[i]);
        struct al_blob_writer *sp = opts && opts->spools ? opts->spools[i] : NULL;
        if (sp && strcmp(paths[i], al_blob_writer_path(sp)) != 0) {
            rc = al_err_set(err, AL_ERR_INTERNAL, "'%s' is not the file of its spool", paths[i]);
            goto out;
        }
        if (!al_oci_path_safe(name)) {
            rc = al_err_set(err, AL_ERR_INVALID, "'%s' is not a usable file name", paths[i]);
            goto out;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(layers[j].path, name) == 0) {
                rc = al_err_set(err, AL_ERR_INVALID, "two files are named '%s'; each file needs its own name", name);
                goto out;
            }
        snprintf(layers[i].path, sizeof layers[i].path, "%s", name);
        snprintf(layers[i].media_type, sizeof layers[i].media_type, "%s", al_oci_media_type_for(name));
        /* Before anything is copied: only regular files (a FIFO must not
         * hang the add), and every weight file checked, a malformed GGUF
         * refused; the first one's facts go into the config. */
        int fd = -1;
        if ((rc = al_fs_open_regular(paths[i], &fd, err)))
            goto out;
        close(fd);
        if (strcmp(layers[i].media_type, AL_MT_WEIGHT) == 0) {
            struct al_model_facts f;
            if ((rc = al_repo__facts(paths[i], &f, err)))
                goto out;
            if (!facts_done && f.architecture[0]) { /* a GGUF: another weight file leaves f empty */
                facts = f;
                facts_done = true;
            }
            n_weights++;
            if (base_ref && (rc = al_repo_adapter_fits(paths[i], name, base.path, base_ref, &fit, err)))
                goto refused;
            /* An adapter added as a model would only fail at its first load. */
            struct al_gguf_info gi;
            if (!base_ref && al_gguf_named(name) && al_gguf_inspect(paths[i], &gi, NULL) == AL_OK &&
                strcmp(gi.general_type, "adapter") == 0) {
                rc = al_err_set(err, AL_ERR_INVALID,
                                "'%s' is a %s adapter, not a model; add it with --base REF naming its base model",
                                paths[i], gi.adapter_type[0] ? gi.adapter_type : "LoRA");
                goto out;
            }
        }
        if (opts && opts->check && (rc = opts->check(opts->check_ud, paths[i], name, err)))
            goto out;
    }
    if (base_ref && n_weights != 1) {
        rc = al_err_set(err, AL_ERR_INVALID, "an adapter version holds one GGUF adapter; %zu weight files were given",
                        n_weights);
        goto refused;
    }
    if (opts && opts->quantized_json) {
        quantized = json_loads(opts->quantized_json, 0, NULL);
        if (!json_is_object(quantized)) {
            rc = al_err_set(err, AL_ERR_INTERNAL, "the provenance of a quantized version is no JSON object");
            goto out;
        }
        /* Canonical, as the rest of the manifest. */
        if (!(qtext = json_dumps(quantized, JSON_COMPACT | JSON_SORT_KEYS))) {
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    if (opts && opts->finetuned_json) {
        finetuned = json_loads(opts->finetuned_json, 0, NULL);
        if (!json_is_object(finetuned)) {
            rc = al_err_set(err, AL_ERR_INTERNAL, "the provenance of a fine-tuned version is no JSON object");
            goto out;
        }
        if (!(ftext = json_dumps(finetuned, JSON_COMPACT | JSON_SORT_KEYS))) {
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    if (base_ref) {
        char bref[AL_LIMIT_REF + 80];
        snprintf(bref, sizeof bref, "%s@%s", base.version.model, base.version.manifest);
        adapter = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:f}", "type", "lora", "base", base.digest, "base_ref",
                            base_ref, "base_version", bref, "pairs", (json_int_t)fit.pairs, "rank",
                            (json_int_t)fit.rank, "alpha", (double)fit.alpha);
    }
    const char *note_kind = NULL;
    if (opts && opts->record && (rc = opts->record(opts->check_ud, &check, &note_kind, &note, err)))
        goto out;
    /* Writers hold the gc lock shared so gc cannot remove their blobs before commit. */
    if ((rc = al_store_lock(r->store, AL_LOCK_GC_SHARED, LOCK_TIMEOUT_MS, err)))
        goto out;
    for (size_t i = 0; i < n_paths && !rc; i++) {
        struct al_progress *p = NULL;
        if (opts && opts->show_progress) {
            struct stat st;
            char label[64];
            snprintf(label, sizeof label, "%.40s", layers[i].path); /* display only */
            p = al_progress_new(label, stat(paths[i], &st) == 0 ? (uint64_t)st.st_size : 0);
        }
        struct al_blob_writer *sp = opts && opts->spools ? opts->spools[i] : NULL;
        if (sp) { /* in tmp/ already: hashed where it lies, then the one commit */
            rc = al_blob_writer_adopt(sp, p, err);
            if (!rc)
                rc = al_blob_writer_commit(sp, NULL, layers[i].digest, &layers[i].size, err);
        } else {
            rc = al_store_import_file(r->store, paths[i], layers[i].digest, &layers[i].size, p, err);
        }
        al_progress_free(p);
    }
    if (rc)
        goto unlock;
    struct al_oci_model m = {
        .name = ref.name, .version = tag, .architecture = facts.architecture,
        .format = facts_done ? "gguf" : opts && opts->format ? opts->format : "", .param_size = facts.param_size, .precision = facts.precision,
        .quantization = facts.quantization, .card_json = card, .layers = layers, .n_layers = n_paths,
        .adapter_type = base_ref ? "lora" : NULL, .adapter_base = base_ref ? base.digest : NULL,
        .quantized = qtext, .finetuned = ftext,
    };
    char config_digest[AL_DIGEST_SIZE], manifest_digest[AL_DIGEST_SIZE];
    if ((rc = al_oci_config_build(&m, &config, err)) ||
        (rc = al_store_put(r->store, config, strlen(config), config_digest, err)) ||
        (rc = al_oci_manifest_build(&m, config_digest, strlen(config), &manifest, err)) ||
        (rc = al_store_put(r->store, manifest, strlen(manifest), manifest_digest, err)))
        goto unlock;
    struct al_file *files = calloc(n_paths, sizeof *files);
    if (files == NULL) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto unlock;
    }
    for (size_t i = 0; i < n_paths; i++) {
        snprintf(files[i].path, sizeof files[i].path, "%s", layers[i].path);
        memcpy(files[i].digest, layers[i].digest, AL_DIGEST_SIZE);
        files[i].size = layers[i].size;
        snprintf(files[i].media_type, sizeof files[i].media_type, "%s", layers[i].media_type);
    }
    detail = add_detail(layers, n_paths, paths, tag, opts ? opts->check_key : NULL, check, adapter, quantized,
                         finetuned);
    if (detail == NULL) {
        free(files);
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto unlock;
    }
    struct al_version_commit vc = {
        .name = ref.name, .tag = tag, .manifest = manifest_digest, .manifest_size = strlen(manifest),
        .config = config_digest, .files = files, .n_files = n_paths, .no_activate = opts && opts->no_activate,
        .event_kind = "add", .event_detail = detail, .note_kind = note ? note_kind : NULL, .note_detail = note,
    };
    rc = al_repo_commit_version(r, &vc, out, existed, err);
    free(files);
unlock:
    al_store_unlock(r->store, AL_LOCK_GC_SHARED);
    goto out;
refused:
    if (opts && opts->adapter_refused)
        *opts->adapter_refused = true;
out:
    json_decref(adapter);
    json_decref(quantized);
    free(qtext);
    json_decref(finetuned);
    free(ftext);
    al_repo_weights_release(&base);
    free(note);
    free(check);
    free(detail);
    free(manifest);
    free(config);
    free(card);
    free(layers);
    return rc;
}

enum al_rc al_repo_commit_version(struct al_repo *r, const struct al_version_commit *c, struct al_version *out,
                                  bool *existed, struct al_err *err)
{
    int64_t id = 0;
    struct al_err tmp = AL_ERR_INIT;
    enum al_rc rc = al_repo__begin(r, err);
    if (rc)
        return rc;
    enum al_rc add = al_index_add_version(r->index, c->name, c->manifest, c->manifest_size, c->config, c->seq,
                                          c->files, c->n_files, &id, &tmp);
    if (existed)
        *existed = add == AL_ERR_EXISTS;
    if (add && add != AL_ERR_EXISTS)
        rc = al_err_set(err, add, "%s", tmp.msg);
    if (!rc && c->tag)
        rc = al_index_set_tag(r->index, c->name, c->tag, id, err);
    if (!rc && !c->no_activate)
        rc = al_index_set_active(r->index, c->name, id, err);
    if (!rc && c->referrer)
        rc = al_index_add_referrer(r->index, id, c->referrer, c->referrer_blobs, c->n_referrer_blobs, err);
    if (!rc) {
        char kind[40];
        snprintf(kind, sizeof kind, "%s%s", c->event_kind, add == AL_ERR_EXISTS ? "-existing" : "");
        rc = al_index_event_append(r->index, kind, c->name, c->manifest, c->event_detail, err);
    }
    if (!rc && c->note_kind)
        rc = al_index_event_append(r->index, c->note_kind, c->name, c->manifest, c->note_detail, err);
    rc = al_repo__end(r, rc, err);
    if (!rc && out)
        rc = al_index_get_version(r->index, id, out, err);
    return rc;
}

enum al_rc al_repo_version_referrers(struct al_repo *r, const struct al_version *v, char (**out)[AL_DIGEST_SIZE],
                                     size_t *n, struct al_err *err)
{
    return al_index_referrers(r->index, v->id, out, n, err);
}

/* ---- pointers ---- */

static char *pointer_detail(const char *key, const char *value, const char *from)
{
    json_t *d = json_pack("{s:s}", key, value);
    if (from && *from)
        json_object_set_new(d, "from", json_string(from));
    char *s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(d);
    return s;
}

enum al_rc al_repo_tag(struct al_repo *r, const char *src_ref, const char *tag, struct al_err *err)
{
    struct al_version v;
    enum al_rc rc = al_index_resolve(r->index, src_ref, &v, err);
    if (rc || (rc = al_repo__begin(r, err)))
        return rc;
    char *detail = pointer_detail("tag", tag, NULL);
    rc = al_index_set_tag(r->index, v.model, tag, v.id, err);
    if (!rc)
        rc = al_index_event_append(r->index, "tag", v.model, v.manifest, detail, err);
    free(detail);
    return al_repo__end(r, rc, err);
}

enum al_rc al_repo_untag(struct al_repo *r, const char *name, const char *tag, struct al_err *err)
{
    enum al_rc rc = al_repo__begin(r, err);
    if (rc)
        return rc;
    char *detail = pointer_detail("tag", tag, NULL);
    rc = al_index_remove_tag(r->index, name, tag, err);
    if (!rc)
        rc = al_index_event_append(r->index, "untag", name, "", detail, err);
    free(detail);
    return al_repo__end(r, rc, err);
}

static enum al_rc activate_version(struct al_repo *r, const struct al_version *v, const char *kind,
                                   const char *from, struct al_err *err)
{
    enum al_rc rc = al_repo__begin(r, err);
    if (rc)
        return rc;
    char *detail = pointer_detail("active", v->manifest, from);
    rc = al_index_set_active(r->index, v->model, v->id, err);
    if (!rc)
        rc = al_index_event_append(r->index, kind, v->model, v->manifest, detail, err);
    free(detail);
    return al_repo__end(r, rc, err);
}

enum al_rc al_repo_activate(struct al_repo *r, const char *ref, struct al_version *out, struct al_err *err)
{
    struct al_version v, cur;
    enum al_rc rc = al_index_resolve(r->index, ref, &v, err);
    if (rc)
        return rc;
    struct al_ref parsed;
    al_index_ref_parse(ref, &parsed, NULL);
    bool had = al_index_resolve(r->index, parsed.name, &cur, NULL) == AL_OK;
    if ((rc = activate_version(r, &v, "activate", had ? cur.manifest : NULL, err)))
        return rc;
    return out ? al_index_get_version(r->index, v.id, out, err) : AL_OK;
}

enum al_rc al_repo_rollback(struct al_repo *r, const char *name, struct al_version *out, struct al_err *err)
{
    struct al_version cur, prev;
    int64_t prev_id = 0;
    enum al_rc rc = al_index_resolve(r->index, name, &cur, err);
    if (rc)
        return rc;
    /* The index's own message would win over this one, which names the model. */
    struct al_err prev_err = AL_ERR_INIT;
    if ((rc = al_index_previous_version(r->index, cur.id, &prev_id, &prev_err)))
        return rc == AL_ERR_NOT_FOUND
                   ? al_err_set(err, rc, "'%s' has no version older than the active one (%s)", cur.model, cur.manifest)
                   : al_err_set(err, rc, "%s", prev_err.msg);
    if ((rc = al_index_get_version(r->index, prev_id, &prev, err)) ||
        (rc = activate_version(r, &prev, "rollback", cur.manifest, err)))
        return rc;
    return out ? al_index_get_version(r->index, prev_id, out, err) : AL_OK;
}

enum al_rc al_repo_rm(struct al_repo *r, const char *ref_text, size_t *removed, struct al_err *err)
{
    struct al_ref ref;
    enum al_rc rc = al_index_ref_parse(ref_text, &ref, err);
    if (rc)
        return rc;
    struct al_version *vs = NULL;
    size_t n = 0;
    *removed = 0;
    if (ref.tag[0] || ref.digest[0]) {
        vs = calloc(1, sizeof *vs);
        if (vs == NULL)
            return al_err_set(err, AL_ERR_NOMEM, "out of memory");
        if ((rc = al_index_resolve(r->index, ref_text, vs, err))) {
            free(vs);
            return rc;
        }
        n = 1;
    } else {
        struct al_version probe;
        if ((rc = al_index_resolve(r->index, ref.name, &probe, err)) && rc != AL_ERR_NOT_FOUND)
            return rc;
        al_err_clear(err);
        if ((rc = al_index_list_versions(r->index, ref.name, &vs, &n, err)))
            return rc;
        if (n == 0) {
            free(vs);
            char close[256];
            al_index_close_matches(r->index, ref.name, close, sizeof close);
            return al_err_set(err, AL_ERR_NOT_FOUND, "no model named '%s'%s%s", ref.name,
                              close[0] ? "; did you mean: " : "", close);
        }
    }
    if ((rc = al_repo__begin(r, err))) {
        free(vs);
        return rc;
    }
    bool lost_active = false;
    for (size_t i = 0; i < n && !rc; i++) {
        lost_active |= vs[i].active;
        if (!(rc = al_index_remove_version(r->index, vs[i].id, err)))
            rc = al_index_event_append(r->index, "rm", vs[i].model, vs[i].manifest, NULL, err);
    }
    if (!rc && lost_active && n == 1) {
        struct al_version *rest = NULL;
        size_t m = 0;
        if (!(rc = al_index_list_versions(r->index, vs[0].model, &rest, &m, err)) && m > 0) {
            rc = al_index_set_active(r->index, vs[0].model, rest[m - 1].id, err);
            char *detail = pointer_detail("active", rest[m - 1].manifest, vs[0].manifest);
            if (!rc)
                rc = al_index_event_append(r->index, "activate", vs[0].model, rest[m - 1].manifest, detail, err);
            free(detail);
        }
        free(rest);
    }
    rc = al_repo__end(r, rc, err);
    if (!rc)
        *removed = n;
    free(vs);
    return rc;
}

/* Raw, not through al_oci_manifest_parse: an annotation it does not keep. */
enum al_rc al_repo_version_annotation(struct al_repo *r, const struct al_version *v, const char *key, char **out,
                                      struct al_err *err)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    enum al_rc rc = al_store_read(r->store, v->manifest, AL_LIMIT_MANIFEST, &text, &len, err);
    if (rc)
        return rc;
    json_t *m = json_loadb(text, len, 0, NULL);
    free(text);
    const char *s = json_string_value(json_object_get(json_object_get(m, "annotations"), key));
    if (s && !(*out = strdup(s)))
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    json_decref(m);
    return rc;
}
