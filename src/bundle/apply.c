/*
 * apply.c: the ingest of a delta bundle (docs/internals/delta.md).
 *
 * A delta bundle is a native bundle whose manifest is the result version's,
 * plus delta.json (signed through checksums.txt like every entry) naming the
 * base (its manifest digest, ref and files) and, for every result file, how
 * it travels: "base" (the base has this very file: nothing shipped),
 * "patch" (delta/<hex>, rebuilt from a base file by src/delta), "whole" (its
 * blob, as in any bundle). Ingest streams the patches into temporary files
 * like any entry; after the signatures, policy, expiry and sequence are
 * proven, the base is found in the store, each patched file is rebuilt into
 * an uncommitted blob writer (hash while written) and must have the digest
 * the signed manifest lists. From there the rebuilt blobs are ordinary
 * entries: the weight check, the scan, the license and the one commit.
 */
#include "bundle/bundle_int.h"

#include <fcntl.h>
#include <jansson.h>
#include <unistd.h>

#include "core/progress.h"
#include "delta/delta.h"

void al_ing_delta_release(struct al_ing_delta *d)
{
    free(d->bfiles);
    free(d->files);
    d->bfiles = NULL;
    d->files = NULL;
}

static bool copy_digest(char *dst, json_t *v)
{
    const char *s = json_string_value(v);
    if (s == NULL || !al_digest_valid(s))
        return false;
    snprintf(dst, AL_DIGEST_SIZE, "%s", s);
    return true;
}

static bool copy_path(char *dst, json_t *v)
{
    const char *s = json_string_value(v);
    if (s == NULL || strlen(s) > AL_LIMIT_FILE_NAME || !al_oci_path_safe(s))
        return false;
    snprintf(dst, AL_LIMIT_FILE_NAME + 1, "%s", s);
    return true;
}

enum al_rc al_ing_parse_delta(struct al_ing *g, struct al_err *err)
{
    struct al_ing_delta *d = &g->delta;
    struct al_ing_entry *e = al_ing_find(g, AL_BUNDLE_DELTA_JSON);
    if (e == NULL || d->on)
        return AL_OK;
    if (e->mem == NULL)
        return al_err_set(err, AL_ERR_LIMIT, AL_BUNDLE_DELTA_JSON " is over %u bytes (AL_LIMIT_MANIFEST)",
                          AL_LIMIT_MANIFEST);
    json_error_t je;
    json_t *root = json_loadb(e->mem, e->mem_len, JSON_REJECT_DUPLICATES, &je);
    json_t *base = json_object_get(root, "base"), *result = json_object_get(root, "result");
    json_t *bf = json_object_get(base, "files"), *rf = json_object_get(result, "files");
    const char *ref = json_string_value(json_object_get(base, "ref"));
    char result_d[AL_DIGEST_SIZE];
    enum al_rc rc = AL_OK;
    if (root == NULL || json_integer_value(json_object_get(root, "airlock_delta")) != 1 ||
        !copy_digest(d->base, json_object_get(base, "manifest")) || !ref || strlen(ref) >= sizeof d->base_ref ||
        !copy_digest(result_d, json_object_get(result, "manifest")) || !json_is_array(bf) || !json_is_array(rf) ||
        json_array_size(bf) > AL_LIMIT_FILES_PER_MODEL || json_array_size(rf) > AL_LIMIT_FILES_PER_MODEL) {
        rc = al_err_set(err, AL_ERR_INVALID, AL_BUNDLE_DELTA_JSON " is malformed (version 1 with base and result, "
                        "at most %u files each)", AL_LIMIT_FILES_PER_MODEL);
        goto out;
    }
    snprintf(d->base_ref, sizeof d->base_ref, "%s", ref);
    if (!g->have_man || strcmp(result_d, g->man_entry->digest) != 0) {
        rc = al_err_set(err, AL_ERR_VERIFY, AL_BUNDLE_DELTA_JSON " is for the result %s, but the bundle's manifest "
                        "is %s", result_d, g->have_man ? g->man_entry->digest : "missing");
        goto out;
    }
    d->bfiles = calloc(json_array_size(bf) + 1, sizeof *d->bfiles);
    d->files = calloc(json_array_size(rf) + 1, sizeof *d->files);
    if (!d->bfiles || !d->files) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t i;
    json_t *v;
    json_array_foreach(bf, i, v)
    {
        struct al_file *f = &d->bfiles[d->bn++];
        json_int_t size = json_integer_value(json_object_get(v, "size"));
        if (!copy_path(f->path, json_object_get(v, "path")) || !copy_digest(f->digest, json_object_get(v, "digest")) ||
            size < 0) {
            rc = al_err_set(err, AL_ERR_INVALID, AL_BUNDLE_DELTA_JSON ": base file %zu is malformed", i);
            goto out;
        }
        f->size = (uint64_t)size;
    }
    if (json_array_size(rf) != g->man.n_layers) {
        rc = al_err_set(err, AL_ERR_VERIFY, AL_BUNDLE_DELTA_JSON " lists %zu result files, the manifest %zu",
                        json_array_size(rf), g->man.n_layers);
        goto out;
    }
    json_array_foreach(rf, i, v)
    {
        struct al_ing_dfile *f = &d->files[d->n++];
        const struct al_oci_layer *l = &g->man.layers[i];
        json_int_t size = json_integer_value(json_object_get(v, "size"));
        const char *via = json_string_value(json_object_get(v, "via"));
        if (!copy_path(f->path, json_object_get(v, "path")) || !copy_digest(f->digest, json_object_get(v, "digest")) ||
            size < 0 || via == NULL) {
            rc = al_err_set(err, AL_ERR_INVALID, AL_BUNDLE_DELTA_JSON ": result file %zu is malformed", i);
            goto out;
        }
        f->size = (uint64_t)size;
        if (strcmp(f->path, l->path) != 0 || strcmp(f->digest, l->digest) != 0 || f->size != l->size) {
            rc = al_err_set(err, AL_ERR_VERIFY, AL_BUNDLE_DELTA_JSON ": result file '%s' (%s) is not the manifest's "
                            "'%s' (%s)", f->path, f->digest, l->path, l->digest);
            goto out;
        }
        f->via = strcmp(via, "base") == 0 ? 'b' : strcmp(via, "patch") == 0 ? 'p' : strcmp(via, "whole") == 0 ? 'w' : 0;
        if (f->via == 0) {
            rc = al_err_set(err, AL_ERR_INVALID, AL_BUNDLE_DELTA_JSON ": file '%s' travels via '%.16s', not base, "
                            "patch or whole", f->path, via);
            goto out;
        }
        if (f->via == 'p') {
            char want[AL_LIMIT_FILE_NAME + 1];
            snprintf(want, sizeof want, AL_BUNDLE_DELTA_DIR "%s", al_digest_hex(f->digest));
            if (!copy_path(f->patch, json_object_get(v, "patch")) || strcmp(f->patch, want) != 0 ||
                !copy_digest(f->base_file, json_object_get(v, "base_file"))) {
                rc = al_err_set(err, AL_ERR_INVALID, AL_BUNDLE_DELTA_JSON ": the patch of '%s' must be '%s' with a "
                                "base_file", f->path, want);
                goto out;
            }
            bool in_base = false;
            for (size_t j = 0; j < d->bn && !in_base; j++)
                in_base = strcmp(d->bfiles[j].digest, f->base_file) == 0;
            if (!in_base) {
                rc = al_err_set(err, AL_ERR_INVALID, AL_BUNDLE_DELTA_JSON ": the patch of '%s' starts from %s, which "
                                "is not a file of the base", f->path, f->base_file);
                goto out;
            }
        }
        if (f->via == 'b') {
            bool in_base = false;
            for (size_t j = 0; j < d->bn && !in_base; j++)
                in_base = strcmp(d->bfiles[j].digest, f->digest) == 0;
            if (!in_base) {
                rc = al_err_set(err, AL_ERR_INVALID, AL_BUNDLE_DELTA_JSON ": '%s' is said to be in the base, which "
                                "does not list %s", f->path, f->digest);
                goto out;
            }
        }
    }
    d->on = true;
    g->rep->delta = true;
    snprintf(g->rep->delta_base, sizeof g->rep->delta_base, "%s", d->base);
    snprintf(g->rep->delta_base_ref, sizeof g->rep->delta_base_ref, "%s", d->base_ref);
out:
    json_decref(root);
    if (rc)
        al_ing_delta_release(d);
    return rc;
}

bool al_ing_delta_entry(const struct al_ing *g, const char *name)
{
    if (!g->delta.on)
        return false;
    if (strcmp(name, AL_BUNDLE_DELTA_JSON) == 0)
        return true;
    for (size_t i = 0; i < g->delta.n; i++)
        if (g->delta.files[i].via == 'p' && strcmp(g->delta.files[i].patch, name) == 0)
            return true;
    return false;
}

bool al_ing_delta_provides(const struct al_ing *g, const char *digest)
{
    for (size_t i = 0; g->delta.on && i < g->delta.n; i++)
        if (g->delta.files[i].via != 'w' && strcmp(g->delta.files[i].digest, digest) == 0)
            return true;
    return false;
}

/* Whether v holds the base files delta.json names: *exact when it holds those
 * and nothing else, *holds when it holds each (same path, same digest), with
 * other files beside them (a suite that a files pack of the same weights
 * added, say). The patch reads only the named files, each by its digest. */
static enum al_rc has_base_files(struct al_ing *g, const struct al_version *v, bool *exact, bool *holds,
                                 struct al_err *err)
{
    struct al_file *f = NULL;
    size_t n = 0;
    enum al_rc rc = al_repo_list_files(g->r, v, &f, &n, err);
    *holds = !rc;
    for (size_t i = 0; *holds && i < g->delta.bn; i++) {
        bool found = false;
        for (size_t j = 0; j < n && !found; j++)
            found = strcmp(f[j].path, g->delta.bfiles[i].path) == 0 &&
                    strcmp(f[j].digest, g->delta.bfiles[i].digest) == 0;
        *holds = found;
    }
    *exact = *holds && n == g->delta.bn;
    free(f);
    return rc;
}

enum al_rc al_ing_delta_base(struct al_ing *g, struct al_err *err)
{
    struct al_ing_delta *d = &g->delta;
    char name[AL_LIMIT_NAME + 1] = "", tag[AL_LIMIT_TAG + 1] = "";
    sscanf(d->base_ref, "%128[^:]:%128s", name, tag);
    struct al_version *rows = NULL;
    size_t n = 0;
    enum al_rc rc = al_name_valid(name) ? al_repo_list_versions(g->r, name, &rows, &n, err) : AL_OK;
    if (rc)
        return rc;
    /* The base by its manifest; else a version of the same files (ingested from
     * another bundle of them); else one that holds them and more. */
    for (size_t i = 0; i < n && !d->have_found; i++)
        if (strcmp(rows[i].manifest, d->base) == 0)
            d->found = rows[i], d->have_found = true;
    ptrdiff_t holder = -1;
    for (size_t i = 0; i < n && !d->have_found && !rc; i++) {
        bool exact = false, holds = false;
        if (!(rc = has_base_files(g, &rows[i], &exact, &holds, err)) && exact)
            d->found = rows[i], d->have_found = true;
        else if (holds && holder < 0)
            holder = (ptrdiff_t)i;
    }
    if (!rc && !d->have_found && holder >= 0)
        d->found = rows[holder], d->have_found = true;
    const struct al_version *other = NULL;
    for (size_t i = 0; i < n && !other && tag[0]; i++) {
        char tags[sizeof rows[i].tags + 2];
        char want[AL_LIMIT_TAG + 3];
        snprintf(tags, sizeof tags, ",%s,", rows[i].tags);
        snprintf(want, sizeof want, ",%s,", tag);
        if (strstr(tags, want))
            other = &rows[i];
    }
    if (!rc && d->have_found) {
        snprintf(g->rep->delta_base_found, sizeof g->rep->delta_base_found, "%s", d->found.manifest);
        al_ing_check(g, "base");
    } else if (!rc && other) {
        rc = al_err_set(err, AL_ERR_VERIFY, "this delta needs the base %s (manifest %s), but this store's %s is %s "
                        "with other files; it cannot be patched: ingest the full bundle of this version instead",
                        d->base_ref, d->base, d->base_ref, other->manifest);
    } else if (!rc) {
        rc = al_err_set(err, AL_ERR_NOT_FOUND, "this delta needs the base %s (manifest %s), which is not in this "
                        "store; ingest that version first (its full bundle), then this delta", d->base_ref, d->base);
    }
    free(rows);
    return rc;
}

struct sink {
    struct al_ing_entry *en;
};

static enum al_rc to_writer(void *ud, const void *data, size_t len, struct al_err *err)
{
    struct sink *s = ud;
    enum al_rc rc = al_blob_writer_write(s->en->w, data, len, err);
    if (!rc)
        al_ing_values_feed(s->en, data, len); /* the scan gate need not read it again */
    return rc;
}

/* Rebuilds one patched file into a new entry. */
static enum al_rc rebuild(struct al_ing *g, const struct al_ing_dfile *f, struct al_err *err)
{
    char blob[AL_LIMIT_FILE_NAME + 1], base_src[AL_LIMIT_PATH];
    enum al_rc rc = al_bundle_blob_name(f->digest, blob, err);
    if (rc)
        return rc;
    if (al_ing_find(g, blob))
        return AL_OK; /* the same content twice */
    struct al_ing_entry *pe = al_ing_find(g, f->patch);
    if (pe == NULL || pe->w == NULL)
        return al_err_set(err, AL_ERR_INVALID, "the patch '%s' of '%s' is missing from the bundle", f->patch, f->path);
    if (g->n_ents >= AL_ING_MAX_ENTRIES)
        return al_err_set(err, AL_ERR_LIMIT, "the bundle has more than %u entries (AL_BUNDLE_MAX_ENTRIES)",
                          AL_BUNDLE_MAX_ENTRIES);
    if ((rc = al_repo_blob_path(g->r, f->base_file, base_src, sizeof base_src, err)))
        return rc;
    int bfd = open(base_src, O_RDONLY | O_CLOEXEC);
    int pfd = open(al_blob_writer_path(pe->w), O_RDONLY | O_CLOEXEC);
    struct al_ing_entry *en = &g->ents[g->n_ents];
    memset(en, 0, sizeof *en);
    snprintf(en->name, sizeof en->name, "%s", blob);
    if (bfd < 0 || pfd < 0) {
        rc = al_err_sys(err, AL_ERR_IO, "cannot open '%s'", bfd < 0 ? base_src : al_blob_writer_path(pe->w));
        goto out;
    }
    if ((rc = al_repo_blob_writer_new(g->r, &en->w, err)))
        goto out;
    g->n_ents++; /* from here the entry's writer is freed with the ingest */
    struct al_progress *pr = NULL;
    if (g->o->progress) {
        char label[64];
        snprintf(label, sizeof label, "apply %.50s", f->path);
        pr = al_progress_new(label, f->size);
    }
    struct sink s = {en};
    al_ing_values_begin(en, f->size);
    rc = al_delta_apply(bfd, pfd, f->size, to_writer, &s, pr, err);
    al_ing_values_end(en);
    al_progress_free(pr);
    if (rc) {
        char why[AL_ERR_MSG_MAX];
        snprintf(why, sizeof why, "%s", err->msg);
        al_err_clear(err);
        rc = al_err_set(err, rc, "the patch of '%s' does not apply to the base: %s", f->path, why);
        goto out;
    }
    if ((rc = al_blob_writer_digest(en->w, en->digest, &en->size, err)))
        goto out;
    if (strcmp(en->digest, f->digest) != 0 || en->size != f->size) {
        rc = al_err_set(err, AL_ERR_VERIFY, "'%s' rebuilt from the delta is %s (%" PRIu64 " bytes), but the signed "
                        "manifest promises %s; nothing was stored", f->path, en->digest, en->size, f->digest);
        goto out;
    }
    g->rep->delta_patch_bytes += pe->size;
    g->rep->delta_patched++;
out:
    if (bfd >= 0)
        close(bfd);
    if (pfd >= 0)
        close(pfd);
    return rc;
}

enum al_rc al_ing_delta_apply(struct al_ing *g, struct al_err *err)
{
    struct al_ing_delta *d = &g->delta;
    if (!d->have_found)
        return al_err_set(err, AL_ERR_INTERNAL, "the delta's base was not looked up");
    /* Every base file the delta uses must be a file of the base found here. */
    struct al_file *bf = NULL;
    size_t bn = 0;
    enum al_rc rc = al_repo_list_files(g->r, &d->found, &bf, &bn, err);
    for (size_t i = 0; i < d->n && !rc; i++) {
        const struct al_ing_dfile *f = &d->files[i];
        if (f->via == 'w')
            continue;
        const char *need = f->via == 'b' ? f->digest : f->base_file;
        bool have = false;
        for (size_t j = 0; j < bn && !have; j++)
            have = strcmp(bf[j].digest, need) == 0;
        if (!have)
            rc = al_err_set(err, AL_ERR_VERIFY, "'%s' needs %s from the base %s, which that version here does not "
                            "have", f->path, need, d->found.manifest);
        else if (f->via == 'b')
            g->rep->delta_from_base++;
    }
    free(bf);
    for (size_t i = 0; i < d->n && !rc; i++)
        if (d->files[i].via == 'p')
            rc = rebuild(g, &d->files[i], err);
    if (!rc)
        al_ing_check(g, "delta");
    return rc;
}

json_t *al_ing_delta_json(const struct al_ing *g)
{
    const struct al_ing_delta *d = &g->delta;
    if (!d->on)
        return NULL;
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I}", "base", d->base, "base_ref", d->base_ref, "patched",
                          (json_int_t)g->rep->delta_patched, "from_base", (json_int_t)g->rep->delta_from_base,
                          "patch_bytes", (json_int_t)g->rep->delta_patch_bytes);
    if (o && d->have_found) {
        char ref[AL_LIMIT_NAME + AL_LIMIT_TAG + 2], first[AL_LIMIT_TAG + 1] = "";
        sscanf(d->found.tags, "%128[^,]", first);
        snprintf(ref, sizeof ref, "%s%s%s", d->found.model, first[0] ? ":" : "", first);
        json_object_set_new(o, "base_found", json_string(d->found.manifest));
        json_object_set_new(o, "base_found_ref", json_string(ref));
    }
    return o;
}
