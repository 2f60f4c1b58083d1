/*
 * referrer.c: the signature referrer artifact (docs/internals/registry.md,
 * "Original signatures"): what push sends beside a model manifest, and what
 * ingest and pull keep in the store so that a version that arrived signed
 * travels on with the signatures it arrived with.
 *
 * The artifact is an OCI image manifest, artifactType AL_MT_AIRLOCK_SIGS,
 * the empty config, one layer per small file of the native bundle (titled
 * by org.opencontainers.image.title: checksums.txt, its signatures,
 * oci-layout, index.json) and subject the model manifest. The signatures
 * cover checksums.txt, whose line for blobs/sha256/<hex> names the model
 * manifest: the subject is only where to find them, the tie is signed.
 * Its JSON is canonical (compact, sorted keys), so the same files over the
 * same subject give the same digest at every site.
 */
#include "bundle/bundle_int.h"

#include <jansson.h>

#include "registry/registry.h"

/* Files a kept artifact may hold: checksums.txt, signatures, oci-layout, index.json. */
#define KEPT_MAX (AL_BUNDLE_MAX_SIGS + 3)

char *al_bundle_referrer_json(const struct al_bundle_part *p, size_t n, const char *subject, uint64_t subject_size)
{
    json_t *layers = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *name = p[i].name;
        if (strncmp(name, AL_BUNDLE_BLOB_DIR, sizeof AL_BUNDLE_BLOB_DIR - 1) == 0)
            continue;
        json_array_append_new(layers, json_pack("{s:s, s:s, s:I, s:{s:s}}", "mediaType", AL_MT_BUNDLE_FILE, "digest",
                                                p[i].digest, "size", (json_int_t)p[i].len, "annotations",
                                                "org.opencontainers.image.title", name));
    }
    json_t *m = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:o, s:{s:s, s:s, s:I}}", "schemaVersion", 2,
                          "mediaType", AL_MT_MANIFEST, "artifactType", AL_MT_AIRLOCK_SIGS, "config", "mediaType",
                          AL_MT_OCI_EMPTY, "digest", AL_BUNDLE_EMPTY_DIGEST, "size", 2, "layers", layers, "subject",
                          "mediaType", AL_MT_MANIFEST, "digest", subject, "size", (json_int_t)subject_size);
    char *s = m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(m);
    return s;
}

void al_bundle_parts_free(struct al_bundle_part *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++)
        free(p[i].data);
    free(p);
}

/* Stores one small file as a blob; the part borrows data. */
static enum al_rc keep_one(struct al_ing *g, struct al_bundle_part *p, const char *name, const char *data, size_t len,
                           struct al_err *err)
{
    snprintf(p->name, sizeof p->name, "%s", name);
    p->data = (char *)data;
    p->len = len;
    return al_repo_put(g->r, data, len, p->digest, err);
}

enum al_rc al_ing_keep_referrer(struct al_ing *g, const char *manifest, uint64_t manifest_size,
                                struct al_ing_kept *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    struct al_ing_entry *lay = al_ing_find(g, "oci-layout"), *ix = al_ing_find(g, "index.json");
    /* A native, whole bundle only: a plain bundle's signature does not name
     * a manifest (it is built here) and a delta's checksums.txt lists its
     * patches, not the version's blobs. */
    if (g->n_sigs == 0 || !g->sums_text || !g->rep->native || g->delta.on || !lay || !lay->mem || !ix || !ix->mem)
        return AL_OK;
    struct al_bundle_part parts[KEPT_MAX];
    size_t n = 0;
    enum al_rc rc = keep_one(g, &parts[n++], AL_BUNDLE_CHECKSUMS, g->sums_text, g->sums_len, err);
    for (size_t i = 0; i < g->n_sigs && !rc; i++)
        rc = keep_one(g, &parts[n++], g->sigs[i].name, g->sigs[i].text, g->sigs[i].len, err);
    if (!rc)
        rc = keep_one(g, &parts[n++], "oci-layout", lay->mem, lay->mem_len, err);
    if (!rc)
        rc = keep_one(g, &parts[n++], "index.json", ix->mem, ix->mem_len, err);
    char *json = rc ? NULL : al_bundle_referrer_json(parts, n, manifest, manifest_size);
    if (!rc && !json)
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    char empty[AL_DIGEST_SIZE];
    if (!rc && !(rc = al_repo_put(g->r, "{}", 2, empty, err)))
        rc = al_repo_put(g->r, json, strlen(json), out->referrer, err);
    free(json);
    if (!rc && (out->blobs = calloc(n + 1, sizeof *out->blobs)) == NULL)
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (rc) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(out->blobs[out->n++], parts[i].digest, AL_DIGEST_SIZE);
    memcpy(out->blobs[out->n++], empty, AL_DIGEST_SIZE);
    return AL_OK;
}

enum al_rc al_bundle_referrer_load(struct al_repo *r, const char *digest, const char *subject,
                                   struct al_bundle_part **parts, size_t *n, uint64_t *subject_size,
                                   struct al_err *err)
{
    *parts = NULL;
    *n = 0;
    char *man = NULL;
    size_t len = 0;
    enum al_rc rc = al_repo_read_blob(r, digest, AL_LIMIT_MANIFEST, &man, &len, err);
    if (rc)
        return rc;
    json_t *root = json_loadb(man, len, JSON_REJECT_DUPLICATES, NULL);
    free(man);
    json_t *subj = json_object_get(root, "subject"), *layers = json_object_get(root, "layers"), *l;
    const char *at = json_string_value(json_object_get(root, "artifactType"));
    const char *sd = json_string_value(json_object_get(subj, "digest"));
    json_int_t ss = json_integer_value(json_object_get(subj, "size"));
    if (!at || strcmp(at, AL_MT_AIRLOCK_SIGS) != 0 || !sd || strcmp(sd, subject) != 0 || ss <= 0 ||
        !json_is_array(layers) || json_array_size(layers) > KEPT_MAX) {
        json_decref(root);
        return al_err_set(err, AL_ERR_CORRUPT, "the kept signatures %s are not a signature artifact of %s", digest,
                          subject);
    }
    *subject_size = (uint64_t)ss;
    struct al_bundle_part *p = calloc(json_array_size(layers) + 1, sizeof *p);
    if (!p)
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    size_t i;
    json_array_foreach(layers, i, l) {
        if (rc)
            break;
        const char *d = json_string_value(json_object_get(l, "digest"));
        const char *t =
            json_string_value(json_object_get(json_object_get(l, "annotations"), "org.opencontainers.image.title"));
        if (!d || !t || !al_digest_valid(d) || strlen(t) >= sizeof p->name) {
            rc = al_err_set(err, AL_ERR_CORRUPT, "the kept signatures %s have a layer without digest or title",
                            digest);
            break;
        }
        struct al_bundle_part *q = &p[(*n)++];
        snprintf(q->name, sizeof q->name, "%s", t);
        snprintf(q->digest, sizeof q->digest, "%s", d);
        rc = al_repo_read_blob(r, d, AL_LIMIT_MANIFEST, &q->data, &q->len, err);
    }
    json_decref(root);
    if (rc) {
        al_bundle_parts_free(p, *n);
        *n = 0;
        return rc;
    }
    *parts = p;
    return AL_OK;
}
