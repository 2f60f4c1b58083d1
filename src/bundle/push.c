/*
 * push.c: a stored version to an OCI registry (docs/internals/registry.md).
 *
 * Signed (keys given): the version is packed exactly as `export` packs it
 * (al_bundle_pack: the same signed manifest, so a version that came in a
 * bundle keeps its digest; the same scan and license checks), its small
 * entries only (meta_only), into a temporary tar; the parts go to the
 * registry: its blobs
 * (the layers read from the store, HEAD first to skip what the registry
 * has), the manifest under the tag, then a referrer artifact (artifactType
 * AL_MT_AIRLOCK_SIGS, subject the model manifest) holding checksums.txt, its
 * signatures, oci-layout and index.json: what a puller needs to run the
 * checks of ingest. The referrer is listed by the referrers API where the
 * registry has one, else in the image index under the fallback tag
 * sha256-<hex> (merged with what that tag already lists).
 *
 * Unsigned (no keys): the stored manifest, config and layers as they are;
 * no referrer. A puller needs --allow-unsigned.
 */
#include "bundle/bundle_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <jansson.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/fs.h"
#include "core/progress.h"
#include "registry/registry.h"

#define EMPTY_JSON   "{}"
#define EMPTY_DIGEST AL_BUNDLE_EMPTY_DIGEST


struct parts {
    struct al_bundle_part p[AL_BUNDLE_MAX_SIGS + 8]; /* checksums.txt, signatures, oci-layout, index.json, manifest, config */
    size_t n;
};

static void parts_release(struct parts *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        free(ps->p[i].data);
    ps->n = 0;
}

static struct al_bundle_part *parts_find(struct parts *ps, const char *name)
{
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->p[i].name, name) == 0)
            return &ps->p[i];
    return NULL;
}

/* Reads the small entries of the packed bundle; large blobs are skipped
 * (they are read from the store). */
static enum al_rc read_parts(const char *path, struct parts *ps, struct al_err *err)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    enum al_rc rc = AL_OK;
    if (archive_read_open_filename(a, path, 1 << 20) != ARCHIVE_OK) {
        rc = al_err_set(err, AL_ERR_IO, "cannot read the packed bundle: %s", archive_error_string(a));
        goto out;
    }
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        int64_t size = archive_entry_size(e);
        bool blob = strncmp(name, AL_BUNDLE_BLOB_DIR, sizeof AL_BUNDLE_BLOB_DIR - 1) == 0;
        if (archive_entry_filetype(e) != AE_IFREG || size < 0 || (blob && size > (int64_t)AL_LIMIT_MANIFEST) ||
            size > (int64_t)AL_LIMIT_MANIFEST)
            continue;
        if (ps->n >= sizeof ps->p / sizeof *ps->p) {
            rc = al_err_set(err, AL_ERR_LIMIT, "the packed bundle has too many small entries");
            goto out;
        }
        struct al_bundle_part *p = &ps->p[ps->n];
        memset(p, 0, sizeof *p);
        snprintf(p->name, sizeof p->name, "%s", name);
        if ((p->data = malloc((size_t)size + 1)) == NULL) {
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
            goto out;
        }
        ps->n++;
        la_ssize_t k = archive_read_data(a, p->data, (size_t)size);
        if (k != size) {
            rc = al_err_set(err, AL_ERR_IO, "cannot read '%s' from the packed bundle", name);
            goto out;
        }
        p->data[size] = '\0';
        p->len = (size_t)size;
        uint8_t raw[AL_SHA256_BYTES];
        al_sha256_buf(p->data, p->len, raw);
        al_digest_format(raw, p->digest);
    }
out:
    archive_read_free(a);
    return rc;
}

/* Uploads one blob unless the registry has it: from the store when there,
 * else from memory. */
static enum al_rc put_blob(struct al_repo *r, struct al_reg *reg, const char *digest, uint64_t size,
                           const struct al_bundle_part *mem, struct al_progress *p, struct al_bundle_pushed *res,
                           struct al_err *err)
{
    bool has = false;
    enum al_rc rc = al_reg_blob_exists(reg, digest, &has, err);
    if (rc)
        return rc;
    if (has) {
        res->blobs_skipped++;
        al_progress_add(p, size);
        return AL_OK;
    }
    if (mem) {
        rc = al_reg_blob_put_mem(reg, digest, mem->data, mem->len, err);
        al_progress_add(p, mem->len);
    } else {
        char path[AL_LIMIT_PATH];
        int fd = -1;
        if ((rc = al_repo_blob_path(r, digest, path, sizeof path, err)))
            return rc;
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            return al_err_sys(err, AL_ERR_IO, "cannot open blob %s", digest);
        rc = al_reg_blob_put_fd(reg, digest, fd, size, p, err);
        close(fd);
    }
    if (!rc) {
        res->blobs_sent++;
        res->bytes_sent += size;
    }
    return rc;
}

/* Pushes the manifest's config and layers, then the manifest under tag. */
static enum al_rc push_model(struct al_repo *r, struct al_reg *reg, const char *tag, const char *man,
                             size_t man_len, struct parts *ps, bool progress, struct al_bundle_pushed *res,
                             struct al_err *err)
{
    struct al_oci_manifest m;
    enum al_rc rc = al_oci_manifest_parse(man, man_len, &m, err);
    if (rc)
        return rc;
    uint64_t total = m.config_size;
    for (size_t i = 0; i < m.n_layers; i++)
        total += m.layers[i].size;
    struct al_progress *p = progress ? al_progress_new("push", total) : NULL;
    char name[AL_LIMIT_FILE_NAME + 1];
    struct al_bundle_part *cfg = NULL;
    if (ps && al_bundle_blob_name(m.config_digest, name, NULL) == AL_OK)
        cfg = parts_find(ps, name);
    char *cfg_text = NULL;
    struct al_bundle_part cfg_store;
    if (!cfg) {
        memset(&cfg_store, 0, sizeof cfg_store);
        size_t len = 0;
        if (!(rc = al_repo_read_blob(r, m.config_digest, AL_LIMIT_MANIFEST, &cfg_text, &len, err))) {
            cfg_store.data = cfg_text, cfg_store.len = len;
            cfg = &cfg_store;
        }
    }
    if (!rc)
        rc = put_blob(r, reg, m.config_digest, m.config_size, cfg, p, res, err);
    for (size_t i = 0; i < m.n_layers && !rc; i++) {
        bool dup = false;
        for (size_t j = 0; j < i; j++)
            dup = dup || strcmp(m.layers[j].digest, m.layers[i].digest) == 0;
        if (!dup)
            rc = put_blob(r, reg, m.layers[i].digest, m.layers[i].size, NULL, p, res, err);
    }
    free(cfg_text);
    al_progress_free(p);
    al_oci_manifest_release(&m);
    if (!rc)
        rc = al_reg_manifest_put(reg, tag, AL_MT_MANIFEST, man, man_len, err);
    return rc;
}

/* Lists the referrer under the fallback tag, merged with what it lists. */
static enum al_rc fallback_index(struct al_reg *reg, const char *subject, const char *ref_d, size_t ref_len,
                                 struct al_err *err)
{
    char tag[AL_REG_TAG_MAX + 1], mt[AL_REG_MT_MAX + 1], d[AL_DIGEST_SIZE];
    al_reg_referrers_tag(subject, tag);
    char *old = NULL;
    size_t old_len = 0;
    enum al_rc rc = al_reg_manifest_get(reg, tag, &old, &old_len, mt, d, err);
    if (rc == AL_ERR_NOT_FOUND) {
        al_err_clear(err);
        rc = AL_OK;
    }
    if (rc)
        return rc;
    json_t *ms = json_array();
    json_t *prev = old ? json_loadb(old, old_len, 0, NULL) : NULL;
    free(old);
    json_t *e;
    size_t i;
    json_array_foreach(json_object_get(prev, "manifests"), i, e) {
        const char *ed = json_string_value(json_object_get(e, "digest"));
        /* Other signers' artifacts stay (pull adds their signatures); this one is listed once. */
        if (ed && strcmp(ed, ref_d) == 0)
            continue;
        json_array_append(ms, e);
    }
    json_decref(prev);
    json_array_append_new(ms, json_pack("{s:s, s:s, s:I, s:s}", "mediaType", AL_MT_MANIFEST, "digest", ref_d, "size",
                                        (json_int_t)ref_len, "artifactType", AL_MT_AIRLOCK_SIGS));
    json_t *ix = json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType", AL_MT_INDEX, "manifests", ms);
    char *s = ix ? json_dumps(ix, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(ix);
    if (!s)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    rc = al_reg_manifest_put(reg, tag, AL_MT_INDEX, s, strlen(s), err);
    free(s);
    return rc;
}

static enum al_rc push_referrer(struct al_reg *reg, const struct al_bundle_part *ps, size_t n, const char *subject,
                                uint64_t subject_size, struct al_bundle_pushed *res, struct al_err *err)
{
    enum al_rc rc = AL_OK;
    bool has = false;
    if ((rc = al_reg_blob_exists(reg, EMPTY_DIGEST, &has, err)) ||
        (!has && (rc = al_reg_blob_put_mem(reg, EMPTY_DIGEST, EMPTY_JSON, 2, err))))
        return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        if (strncmp(ps[i].name, AL_BUNDLE_BLOB_DIR, sizeof AL_BUNDLE_BLOB_DIR - 1) == 0)
            continue;
        if (!(rc = al_reg_blob_exists(reg, ps[i].digest, &has, err)) && !has)
            rc = al_reg_blob_put_mem(reg, ps[i].digest, ps[i].data, ps[i].len, err);
    }
    char *m = rc ? NULL : al_bundle_referrer_json(ps, n, subject, subject_size);
    if (!rc && !m)
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (!rc) {
        uint8_t raw[AL_SHA256_BYTES];
        al_sha256_buf(m, strlen(m), raw);
        al_digest_format(raw, res->referrer);
        rc = al_reg_manifest_put(reg, res->referrer, AL_MT_MANIFEST, m, strlen(m), err);
    }
    size_t mlen = m ? strlen(m) : 0;
    free(m);
    if (rc)
        return rc;
    /* Does the registry list it by the referrers API? Else the fallback tag. */
    char *ix = NULL;
    size_t ix_len = 0;
    bool api = false;
    struct al_err e2 = AL_ERR_INIT;
    enum al_rc r2 = al_reg_referrers(reg, subject, &ix, &ix_len, &api, &e2);
    bool listed = r2 == AL_OK && api && strstr(ix, res->referrer) != NULL;
    free(ix);
    res->referrers_api = listed;
    return listed ? AL_OK : fallback_index(reg, subject, res->referrer, mlen, err);
}

/* The signatures the version arrived with (kept by ingest or pull), each
 * referrer artifact as it came: the far side proves the original signers. */
static enum al_rc push_kept(struct al_repo *r, struct al_reg *reg, const struct al_version *v,
                            struct al_bundle_pushed *res, struct al_err *err)
{
    char(*refs)[AL_DIGEST_SIZE] = NULL;
    size_t n_refs = 0;
    enum al_rc rc = al_repo_version_referrers(r, v, &refs, &n_refs, err);
    for (size_t i = 0; i < n_refs && !rc; i++) {
        struct al_bundle_part *parts = NULL;
        size_t n = 0;
        uint64_t subject_size = 0;
        if (!(rc = al_bundle_referrer_load(r, refs[i], v->manifest, &parts, &n, &subject_size, err)))
            rc = push_referrer(reg, parts, n, v->manifest, subject_size, res, err);
        al_bundle_parts_free(parts, n);
        if (!rc && strcmp(res->referrer, refs[i]) != 0)
            rc = al_err_set(err, AL_ERR_CORRUPT, "the kept signatures %s were rebuilt as %s", refs[i], res->referrer);
        if (!rc)
            res->signed_ = res->kept = true;
    }
    free(refs);
    return rc;
}

/* Packs the version as `export --sign` would, its small entries only, into a
 * temporary tar under $TMPDIR, and reads them into ps; the tar is gone after. */
static enum al_rc pack_parts(struct al_repo *r, const char *ref, const struct al_bundle_pack_opts *po,
                             struct parts *ps, struct al_bundle_packed *packed, struct al_err *err)
{
    char dir[AL_LIMIT_PATH] = "", path[AL_LIMIT_PATH] = "";
    const char *tmp = getenv("TMPDIR");
    enum al_rc rc = al_path_fmt(dir, sizeof dir, err, "%s/airlock-push.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (rc)
        return rc;
    if (mkdtemp(dir) == NULL)
        return al_err_sys(err, AL_ERR_IO, "cannot make a temporary directory");
    if (!(rc = al_path_fmt(path, sizeof path, err, "%s/bundle.tar", dir))) {
        struct al_bundle_pack_opts o = *po;
        o.ref = ref, o.zstd = false, o.meta_only = true, o.progress = false;
        if (!(rc = al_bundle_pack(r, &o, path, packed, err)))
            rc = read_parts(path, ps, err);
        unlink(path);
    }
    rmdir(dir);
    return rc;
}

enum al_rc al_bundle_push(struct al_repo *r, const char *ref, const char *dst, const struct al_reg_opts *ro,
                          const struct al_bundle_pack_opts *po, struct al_bundle_pushed *res, struct al_err *err)
{
    memset(res, 0, sizeof *res);
    struct al_reg_ref dref;
    enum al_rc rc = al_reg_ref_parse(dst, &dref, err);
    if (rc)
        return rc;
    if (dref.digest[0])
        return al_err_set(err, AL_ERR_USAGE, "push to a tag (HOST/REPO:TAG), not a digest: the digest is the "
                          "manifest's own");
    struct al_version v;
    if ((rc = al_repo_resolve(r, ref, &v, err)))
        return rc;
    struct al_reg *reg = NULL;
    struct parts ps = {.n = 0};
    char *man = NULL;
    size_t man_len = 0;
    if ((rc = al_reg_open(&dref, ro, &reg, err)) || (rc = al_reg_ping(reg, err)))
        goto out;
    if (po && po->n_keys > 0) {
        struct al_bundle_packed packed;
        if ((rc = pack_parts(r, ref, po, &ps, &packed, err)))
            goto out;
        char mname[AL_LIMIT_FILE_NAME + 1];
        struct al_bundle_part *mp = NULL;
        if ((rc = al_bundle_blob_name(packed.manifest, mname, err)))
            goto out;
        if ((mp = parts_find(&ps, mname)) == NULL) {
            rc = al_err_set(err, AL_ERR_INTERNAL, "the packed bundle lacks its manifest");
            goto out;
        }
        snprintf(res->manifest, sizeof res->manifest, "%s", packed.manifest);
        res->seq = packed.seq;
        if ((rc = push_model(r, reg, dref.tag, mp->data, mp->len, &ps, po->progress, res, err)) ||
            (rc = push_referrer(reg, ps.p, ps.n, packed.manifest, mp->len, res, err)))
            goto out;
        res->signed_ = true;
    } else {
        if ((rc = al_repo_read_blob(r, v.manifest, AL_LIMIT_MANIFEST, &man, &man_len, err)))
            goto out;
        snprintf(res->manifest, sizeof res->manifest, "%s", v.manifest);
        res->seq = v.seq;
        if ((rc = push_model(r, reg, dref.tag, man, man_len, NULL, po && po->progress, res, err)) ||
            (rc = push_kept(r, reg, &v, res, err)))
            goto out;
    }
    snprintf(res->cred_source, sizeof res->cred_source, "%s", al_reg_cred_source(reg));
out:
    parts_release(&ps);
    free(man);
    al_reg_free(reg);
    return rc;
}

/* The blob of the view for one part (data moved out of the part). */
static void view_take(struct al_reg_view *v, char *data, size_t len, const char *digest)
{
    struct al_reg_blob *b = &v->blobs[v->n++];
    snprintf(b->digest, sizeof b->digest, "%s", digest);
    b->data = data;
    b->len = len;
}

/* The view without keys: the stored manifest and the first kept referrer. */
static enum al_rc view_kept(struct al_repo *r, const char *ref, struct al_reg_view *out, struct al_err *err)
{
    struct al_version v;
    char *man = NULL, *rm = NULL, (*refs)[AL_DIGEST_SIZE] = NULL;
    size_t man_len = 0, rm_len = 0, n_refs = 0, n = 0;
    struct al_bundle_part *parts = NULL;
    uint64_t ss = 0;
    enum al_rc rc = al_repo_resolve(r, ref, &v, err);
    if (!rc)
        rc = al_repo_read_blob(r, v.manifest, AL_LIMIT_MANIFEST, &man, &man_len, err);
    if (!rc)
        rc = al_repo_version_referrers(r, &v, &refs, &n_refs, err);
    if (!rc && n_refs > 0 && !(rc = al_bundle_referrer_load(r, refs[0], v.manifest, &parts, &n, &ss, err)))
        rc = al_repo_read_blob(r, refs[0], AL_LIMIT_MANIFEST, &rm, &rm_len, err);
    char *empty = rc || !rm ? NULL : strdup(EMPTY_JSON);
    if (!rc && ((rm && !empty) || !(out->blobs = calloc(n + 3, sizeof *out->blobs))))
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (!rc) {
        snprintf(out->manifest, sizeof out->manifest, "%s", v.manifest);
        view_take(out, man, man_len, v.manifest);
        man = NULL;
        if (rm) {
            snprintf(out->referrer, sizeof out->referrer, "%s", refs[0]);
            view_take(out, rm, rm_len, refs[0]);
            rm = NULL;
            for (size_t i = 0; i < n; i++) {
                if (al_reg_view_find(out, parts[i].digest))
                    continue;
                view_take(out, parts[i].data, parts[i].len, parts[i].digest);
                parts[i].data = NULL;
            }
            if (!al_reg_view_find(out, EMPTY_DIGEST)) {
                view_take(out, empty, 2, EMPTY_DIGEST);
                empty = NULL;
            }
        }
    }
    if (rc)
        al_reg_view_release(out);
    al_bundle_parts_free(parts, n);
    free(empty);
    free(rm);
    free(man);
    free(refs);
    return rc;
}

enum al_rc al_bundle_view_make(struct al_repo *r, const char *ref, const struct al_bundle_pack_opts *po,
                               struct al_reg_view *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    if (!po || po->n_keys == 0)
        return view_kept(r, ref, out, err);
    struct parts ps = {.n = 0};
    struct al_bundle_packed packed;
    char mname[AL_LIMIT_FILE_NAME + 1];
    struct al_bundle_part *mp = NULL;
    char *ref_m = NULL, *empty = NULL;
    enum al_rc rc = pack_parts(r, ref, po, &ps, &packed, err);
    if (!rc)
        rc = al_bundle_blob_name(packed.manifest, mname, err);
    if (!rc && (mp = parts_find(&ps, mname)) == NULL)
        rc = al_err_set(err, AL_ERR_INTERNAL, "the packed bundle lacks its manifest");
    if (!rc && (!(ref_m = al_bundle_referrer_json(ps.p, ps.n, packed.manifest, mp->len)) || !(empty = strdup(EMPTY_JSON)) ||
                !(out->blobs = calloc(ps.n + 2, sizeof *out->blobs))))
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (rc)
        goto out;
    snprintf(out->manifest, sizeof out->manifest, "%s", packed.manifest);
    uint8_t raw[AL_SHA256_BYTES];
    al_sha256_buf(ref_m, strlen(ref_m), raw);
    al_digest_format(raw, out->referrer);
    for (size_t i = 0; i < ps.n; i++) {
        if (al_reg_view_find(out, ps.p[i].digest))
            continue;
        view_take(out, ps.p[i].data, ps.p[i].len, ps.p[i].digest);
        ps.p[i].data = NULL;
    }
    view_take(out, ref_m, strlen(ref_m), out->referrer);
    ref_m = NULL;
    if (!al_reg_view_find(out, EMPTY_DIGEST)) {
        view_take(out, empty, 2, EMPTY_DIGEST);
        empty = NULL;
    }
out:
    if (rc)
        al_reg_view_release(out);
    free(ref_m);
    free(empty);
    parts_release(&ps);
    return rc;
}
