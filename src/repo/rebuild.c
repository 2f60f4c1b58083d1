/*
 * rebuild.c: telling a lost index from a new one, and rebuilding a lost one
 * from the OCI layout.
 *
 * The index is created before the first blob is written and before
 * index.json is first written, and every version is recorded with an event.
 * So a store with blobs or an index.json but no index, or with an index that
 * never recorded an event while index.json lists versions, had an index that
 * is gone: creating a fresh one would empty the store (ls shows nothing, gc
 * deletes every blob) and drop the API keys (the server would answer without
 * one). That is damage; only fsck --repair rebuilds, and it says what is lost.
 */
#include "repo/repo_int.h"

#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>

#include "core/fs.h"
#include "core/time.h"
#include "oci/oci.h"

#define LOCK_TIMEOUT_MS 60000

static bool any_blob(void *ud, const char *digest, uint64_t size)
{
    (*(size_t *)ud)++;
    return true;
}

/* index.json's entries; *present tells whether the file exists at all. */
static enum al_rc read_index_json(struct al_store *s, struct al_oci_index_item **items, size_t *n, bool *present,
                                  struct al_err *err)
{
    char path[AL_LIMIT_PATH], *text = NULL;
    size_t len = 0;
    *items = NULL;
    *n = 0;
    enum al_rc rc = al_path_fmt(path, sizeof path, err, "%s/index.json", al_store_home(s));
    if (rc)
        return rc;
    *present = al_fs_exists(path);
    if (!*present)
        return AL_OK;
    if ((rc = al_fs_read_file(path, AL_LIMIT_INDEX_JSON, &text, &len, err)))
        return rc;
    rc = al_oci_index_parse(text, len, items, n, err);
    free(text);
    return rc;
}

enum al_rc al_repo__index_lost(struct al_store *s, struct al_index *ix, const char *what, bool *lost,
                               struct al_err *err)
{
    *lost = false;
    bool fresh = false;
    if (ix && al_index_never_recorded(ix, &fresh, err))
        return AL_ERR_IO;
    if (ix && !fresh)
        return AL_OK; /* the common case: one query, nothing else read */
    size_t blobs = 0, listed = 0;
    bool present = false;
    struct al_oci_index_item *items = NULL;
    struct al_err je = AL_ERR_INIT;
    bool readable = read_index_json(s, &items, &listed, &present, &je) == AL_OK;
    free(items);
    if (ix == NULL)
        al_store_each_blob(s, any_blob, &blobs, NULL);
    if (ix ? listed == 0 : blobs == 0 && !present)
        return AL_OK;
    *lost = true;
    const char *tail = ": the index was lost, not new, so no fresh one is made over it and nothing was changed; run "
                       "'airlock fsck --repair' to rebuild it from the OCI layout (index.json and the manifests)";
    if (ix)
        return al_err_set(err, AL_ERR_CORRUPT, "the index of '%s' has never recorded an event, but index.json lists %zu "
                          "version%s%s", al_store_home(s), listed, listed == 1 ? "" : "s", tail);
    return al_err_set(err, AL_ERR_CORRUPT, "%s, but the store holds %zu blob%s and %s%s", what, blobs,
                      blobs == 1 ? "" : "s",
                      !present   ? "no index.json"
                      : readable ? (listed ? "an index.json that lists versions" : "an index.json")
                                 : "an unreadable index.json",
                      tail);
}

bool al_repo_index_lost(const char *home)
{
    struct al_store *s = NULL;
    struct al_index *ix = NULL;
    struct al_err miss = AL_ERR_INIT;
    char db[AL_LIMIT_PATH];
    bool lost = false;
    if (al_store_open_read(home, &s, NULL) || al_path_fmt(db, sizeof db, NULL, "%s/airlock.db", home)) {
        al_store_free(s);
        return false;
    }
    enum al_rc rc = al_index_open_mode(db, AL_INDEX_READ_ONLY, &ix, &miss);
    if (rc == AL_OK || rc == AL_ERR_NOT_FOUND)
        al_repo__index_lost(s, ix, miss.msg, &lost, NULL);
    al_index_free(ix);
    al_store_free(s);
    return lost;
}

/* Moves what is left of the lost index (airlock.db, -wal, -shm) into
 * quarantine/ as evidence; *moved names the database file ("" when there
 * was none). */
static enum al_rc move_aside(const char *home, char *moved, size_t size, struct al_err *err)
{
    char now[32], dir[AL_LIMIT_PATH];
    moved[0] = '\0';
    al_time_now_iso(now);
    enum al_rc rc = al_path_fmt(dir, sizeof dir, err, "%s/quarantine", home);
    if (rc || (rc = al_fs_mkdirs(dir, 0755, err)))
        return rc;
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        char from[AL_LIMIT_PATH], to[AL_LIMIT_PATH];
        if ((rc = al_path_fmt(from, sizeof from, err, "%s/airlock.db%s", home, suffix[i])) ||
            (rc = al_path_fmt(to, sizeof to, err, "%s/airlock.db.%s%s", dir, now, suffix[i])))
            return rc;
        if (!al_fs_exists(from))
            continue;
        if (rename(from, to) != 0)
            return al_err_sys(err, AL_ERR_IO, "cannot move '%s' to '%s'", from, to);
        if (i == 0)
            snprintf(moved, size, "%s", to);
    }
    if ((rc = al_fs_fsync_dir(dir, err)))
        return rc;
    return al_fs_fsync_dir(home, err);
}

/* Records one index.json entry: its manifest (read and checked against its
 * digest) gives the config, the files and a bundle's sequence number. */
static enum al_rc recover_entry(struct al_repo *r, const struct al_oci_index_item *it, bool *new_model,
                                struct al_rebuild_result *res, struct al_err *err)
{
    struct al_ref ref;
    enum al_rc rc = al_index_ref_parse(it->ref_name, &ref, err);
    if (rc)
        return rc;
    struct al_version *known = NULL;
    size_t n_known = 0;
    if ((rc = al_index_list_versions(r->index, ref.name, &known, &n_known, err)))
        return rc;
    free(known);
    *new_model = n_known == 0;
    char *text = NULL;
    size_t len = 0;
    struct al_oci_manifest m;
    if ((rc = al_store_read(r->store, it->digest, AL_LIMIT_MANIFEST, &text, &len, err)))
        return rc;
    rc = al_oci_manifest_parse(text, len, &m, err);
    free(text);
    if (rc)
        return rc;
    struct al_file *files = calloc(m.n_layers ? m.n_layers : 1, sizeof *files);
    int64_t id = 0;
    if (files == NULL) {
        al_oci_manifest_release(&m);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < m.n_layers; i++) {
        snprintf(files[i].path, sizeof files[i].path, "%s", m.layers[i].path);
        memcpy(files[i].digest, m.layers[i].digest, AL_DIGEST_SIZE);
        files[i].size = m.layers[i].size;
        snprintf(files[i].media_type, sizeof files[i].media_type, "%s", m.layers[i].media_type);
    }
    struct al_err add_err = AL_ERR_INIT;
    rc = al_index_add_version(r->index, ref.name, it->digest, len, m.config_digest, m.seq > 0 ? m.seq : 0, files,
                              m.n_layers, &id, &add_err);
    free(files);
    al_oci_manifest_release(&m);
    if (rc && rc != AL_ERR_EXISTS) /* listed twice (once per tag): one version */
        return al_err_set(err, rc, "%s", add_err.msg);
    bool again = rc == AL_ERR_EXISTS;
    res->versions += !again;
    rc = AL_OK;
    /* Listed again with the list of all tags: the first listing set them. */
    if (again && it->tags[0])
        return AL_OK;
    /* All tags of the version; the ref name's tag when the list is absent. */
    char tags[sizeof it->tags + AL_LIMIT_TAG + 1];
    snprintf(tags, sizeof tags, "%s", it->tags[0] ? it->tags : ref.tag);
    for (char *save = NULL, *t = strtok_r(tags, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
        if (!(rc = al_index_set_tag(r->index, ref.name, t, id, err)))
            res->tags++;
    }
    if (!rc && it->active && !(rc = al_index_set_active(r->index, ref.name, id, err)))
        res->active++;
    return rc;
}

static char *rebuilt_detail(const char *reason, const struct al_rebuild_result *res)
{
    json_t *d = json_pack("{s:s, s:s, s:{s:I, s:I, s:I, s:I}, s:I, s:[s,s,s], s:s}", "reason", reason,
                          "previous_index", res->previous, "recovered", "models", (json_int_t)res->models,
                          "versions", (json_int_t)res->versions, "tags", (json_int_t)res->tags, "active",
                          (json_int_t)res->active, "not_recovered", (json_int_t)res->not_recovered, "lost",
                          "the event log before this event", "api keys", "creation times", "access",
                          "an API key is required from now on; create keys with 'airlock apikey create'");
    char *s = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(d);
    return s;
}

/* The fresh index's contents, in one transaction with its first event. */
static enum al_rc fill_index(struct al_repo *r, const struct al_oci_index_item *items, size_t n, const char *reason,
                             al_fsck_report_fn *fn, void *ud, struct al_rebuild_result *res, struct al_err *err)
{
    enum al_rc rc = al_index_begin(r->index, err);
    for (size_t i = 0; i < n && !rc; i++) {
        struct al_err e = AL_ERR_INIT;
        bool new_model = false;
        if (recover_entry(r, &items[i], &new_model, res, &e) == AL_OK) {
            res->models += new_model;
            continue;
        }
        res->not_recovered++;
        if (fn) {
            char msg[sizeof items[i].ref_name + AL_DIGEST_SIZE + AL_ERR_MSG_MAX + 64];
            snprintf(msg, sizeof msg, "index.json lists %s (%s), not recovered: %s", items[i].ref_name,
                     items[i].digest, e.msg);
            fn(ud, AL_FSCK_DAMAGE, msg);
        }
    }
    char *detail = rc ? NULL : rebuilt_detail(reason, res);
    if (!rc && detail == NULL)
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (!rc)
        rc = al_index_event_append(r->index, "index-rebuilt", "", "", detail, err);
    free(detail);
    if (rc)
        al_index_rollback(r->index);
    else
        rc = al_index_commit(r->index, err);
    return rc;
}

enum al_rc al_repo_rebuild_index(const char *home, al_fsck_report_fn *fn, void *ud, struct al_rebuild_result *res,
                                 struct al_err *err)
{
    memset(res, 0, sizeof *res);
    struct al_repo r = {NULL, NULL};
    struct al_oci_index_item *items = NULL;
    size_t n = 0;
    bool present = false, lost = false;
    char db[AL_LIMIT_PATH], reason[AL_ERR_MSG_MAX];
    enum al_rc rc = al_path_fmt(db, sizeof db, err, "%s/airlock.db", home);
    if (rc || (rc = al_store_open(home, false, &r.store, err)))
        return rc;
    if ((rc = al_store_lock(r.store, AL_LOCK_GC_EXCLUSIVE, LOCK_TIMEOUT_MS, err)))
        goto out;
    if ((rc = al_store_lock(r.store, AL_LOCK_WRITE, LOCK_TIMEOUT_MS, err)))
        goto unlock_gc;
    /* Decide again under the locks: never replace an index that is not lost. */
    struct al_err why = AL_ERR_INIT, miss = AL_ERR_INIT;
    enum al_rc orc = al_index_open_mode(db, AL_INDEX_READ_ONLY, &r.index, &miss);
    if (orc && orc != AL_ERR_NOT_FOUND)
        rc = al_err_set(err, orc, "%s", miss.msg);
    else if ((rc = al_repo__index_lost(r.store, r.index, miss.msg, &lost, &why)) && !lost)
        rc = al_err_set(err, rc, "%s", why.msg);
    else if (!lost)
        rc = al_err_set(err, AL_ERR_INVALID, "the index of '%s' is not lost; there is nothing to rebuild", home);
    else
        rc = AL_OK;
    al_index_free(r.index);
    r.index = NULL;
    if (rc)
        goto unlock;
    snprintf(reason, sizeof reason, "%.*s", (int)(strcspn(why.msg, ":")), why.msg);
    if ((rc = read_index_json(r.store, &items, &n, &present, err)))
        goto unlock;
    if ((rc = move_aside(home, res->previous, sizeof res->previous, err)) ||
        (rc = al_index_open_mode(db, AL_INDEX_CREATE, &r.index, err)) ||
        (rc = fill_index(&r, items, n, reason, fn, ud, res, err)))
        goto unlock;
    rc = al_repo__write_index_json(&r, err);
unlock:
    al_store_unlock(r.store, AL_LOCK_WRITE);
unlock_gc:
    al_store_unlock(r.store, AL_LOCK_GC_EXCLUSIVE);
out:
    free(items);
    al_index_free(r.index);
    al_store_free(r.store);
    return rc;
}
