/*
 * pull.c: a model version from an OCI registry, through the same checks as
 * a bundle's ingest (docs/internals/registry.md).
 *
 * The registry plays the archive: the signature referrer (an artifact whose
 * subject is the model manifest, artifactType AL_MT_AIRLOCK_SIGS) carries
 * the bundle's checksums.txt, its signatures, oci-layout and index.json; the
 * manifest, config and layers are the bundle's blobs/sha256/<hex>. They fill
 * the same ingest state (struct al_ing) in the order of a native bundle:
 * checksums and signatures proven first, before a byte of any large blob is
 * fetched; each blob streamed into an uncommitted blob writer, hashed as it
 * is written, exactly the size its descriptor gives; then al_ing_finish runs
 * every remaining check (names, trust policy, dates, sequence, weights, scan,
 * license) and the one commit. A refusal is one event, the store unchanged.
 *
 * Content without an airlock signature referrer is refused unless
 * allow_unsigned. It is then read as a plain bundle: each layer a file named
 * by its org.cncf.model.filepath or org.opencontainers.image.title annotation
 * (a Docker Model Runner GGUF layer without one is model.gguf), digests
 * proven against the registry's manifest, a manifest built here, and the
 * "unsigned" override recorded.
 */
#include "bundle/bundle_int.h"

#include <jansson.h>

#include "core/buf.h"
#include "core/progress.h"
#include "registry/registry.h"

#define SMALL_MAX (1u << 20) /* a referrer's file (checksums.txt, a signature, index.json) */

static enum al_rc mem_sink(void *ud, const void *data, size_t len, struct al_err *err)
{
    struct al_buf *b = ud;
    al_buf_add(b, data, len);
    return al_buf_failed(b) ? al_err_set(err, AL_ERR_LIMIT, "a referrer file is over %u bytes", SMALL_MAX) : AL_OK;
}

/* Fetches a small blob whole and proves its digest. */
static enum al_rc get_small(struct al_reg *reg, const char *digest, uint64_t size, char **out, size_t *len,
                            struct al_err *err)
{
    if (!al_digest_valid(digest) || size > SMALL_MAX)
        return al_err_set(err, AL_ERR_LIMIT, "referrer blob %s: %" PRIu64 " bytes, over the cap of %u", digest, size,
                          SMALL_MAX);
    struct al_buf b;
    al_buf_init(&b, SMALL_MAX);
    enum al_rc rc = al_reg_blob_get(reg, digest, size, mem_sink, &b, err);
    char d[AL_DIGEST_SIZE];
    if (!rc) {
        uint8_t raw[AL_SHA256_BYTES];
        al_sha256_buf(b.data ? b.data : "", b.len, raw);
        al_digest_format(raw, d);
        if (strcmp(d, digest) != 0)
            rc = al_err_set(err, AL_ERR_VERIFY, "referrer blob %s: its bytes hash to %s", digest, d);
    }
    if (!rc) {
        *len = b.len;
        if ((*out = al_buf_take(&b)) == NULL && (*out = strdup("")) == NULL)
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    al_buf_release(&b);
    return rc;
}

enum al_rc al_ing_add_mem(struct al_ing *g, const char *name, const char *data, size_t len, struct al_err *err)
{
    if (g->n_ents >= AL_BUNDLE_MAX_ENTRIES)
        return al_err_set(err, AL_ERR_LIMIT, "more than %u files (AL_BUNDLE_MAX_ENTRIES)", AL_BUNDLE_MAX_ENTRIES);
    if (al_ing_find(g, name))
        return al_err_set(err, AL_ERR_INVALID, "'%s' appears twice", name);
    struct al_ing_entry *en = &g->ents[g->n_ents++];
    memset(en, 0, sizeof *en);
    snprintf(en->name, sizeof en->name, "%s", name);
    enum al_rc rc;
    if ((rc = al_repo_blob_writer_new(g->r, &en->w, err)) || (rc = al_blob_writer_write(en->w, data, len, err)) ||
        (rc = al_blob_writer_digest(en->w, en->digest, &en->size, err)))
        return rc;
    if ((en->mem = malloc(len + 1)) == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    memcpy(en->mem, data, len);
    en->mem[len] = '\0';
    en->mem_len = len;
    en->head_len = len < sizeof en->head ? len : sizeof en->head;
    memcpy(en->head, data, en->head_len);
    struct al_sum *s = g->sums ? al_sums_find(g->sums, g->n_sums, name) : NULL;
    if (g->sums && !s)
        return al_err_set(err, AL_ERR_VERIFY, "'%s' is not listed in checksums.txt", name);
    if (s && !al_digest_hex_eq(en->digest, s->hex))
        return al_err_set(err, AL_ERR_VERIFY, "'%s' does not match checksums.txt: listed sha256:%s, content is %s",
                          name, s->hex, en->digest);
    return AL_OK;
}

struct blob_sink {
    struct al_ing *g;
    struct al_ing_entry *en;
    struct al_progress *p;
};

static enum al_rc blob_sink(void *ud, const void *data, size_t len, struct al_err *err)
{
    struct blob_sink *s = ud;
    struct al_ing_entry *en = s->en;
    if (en->head_len < sizeof en->head) {
        size_t k = len < sizeof en->head - en->head_len ? len : sizeof en->head - en->head_len;
        memcpy(en->head + en->head_len, data, k);
        en->head_len += k;
    }
    en->size += len;
    s->g->total += len;
    if (en->size > s->g->max_entry || s->g->total > s->g->max_total)
        return al_err_set(err, AL_ERR_LIMIT, "'%s' passes the %s cap (%s)", en->name,
                          en->size > s->g->max_entry ? "per-entry" : "total",
                          en->size > s->g->max_entry ? "--max-entry-size" : "--max-total-size");
    al_progress_add(s->p, len);
    enum al_rc rc = al_blob_writer_write(en->w, data, len, err);
    if (!rc)
        al_ing_values_feed(en, data, len);
    return rc;
}

/* Streams one blob into a new entry named name; proves its digest. */
static enum al_rc fetch_blob(struct al_ing *g, struct al_reg *reg, const char *name, const char *digest,
                             uint64_t size, struct al_progress *p, struct al_err *err)
{
    if (g->n_ents >= AL_BUNDLE_MAX_ENTRIES)
        return al_err_set(err, AL_ERR_LIMIT, "more than %u files (AL_BUNDLE_MAX_ENTRIES)", AL_BUNDLE_MAX_ENTRIES);
    if (al_ing_find(g, name))
        return AL_OK; /* the same blob twice in one manifest */
    if (size > g->max_entry || g->total + size > g->max_total)
        return al_err_set(err, AL_ERR_LIMIT, "'%s' is %" PRIu64 " bytes, over the cap (--max-entry-size, "
                          "--max-total-size; default the store's free space less a margin)", name, size);
    struct al_ing_entry *en = &g->ents[g->n_ents++];
    memset(en, 0, sizeof *en);
    snprintf(en->name, sizeof en->name, "%s", name);
    enum al_rc rc = al_repo_blob_writer_new(g->r, &en->w, err);
    struct blob_sink s = {g, en, p};
    if (!rc)
        al_ing_values_begin(en, size);
    if (!rc)
        rc = al_reg_blob_get(reg, digest, size, blob_sink, &s, err);
    al_ing_values_end(en);
    if (!rc)
        rc = al_blob_writer_digest(en->w, en->digest, NULL, err);
    if (!rc && strcmp(en->digest, digest) != 0)
        rc = al_err_set(err, AL_ERR_VERIFY, "blob %s ('%s'): its bytes hash to %s; the registry sent other content "
                        "than its manifest names", digest, name, en->digest);
    struct al_sum *sum = g->sums ? al_sums_find(g->sums, g->n_sums, name) : NULL;
    if (!rc && g->sums && !sum)
        rc = al_err_set(err, AL_ERR_VERIFY, "'%s' is not listed in the signed checksums.txt", name);
    if (!rc && sum && !al_digest_hex_eq(en->digest, sum->hex))
        rc = al_err_set(err, AL_ERR_VERIFY, "'%s' does not match the signed checksums.txt: listed sha256:%s, content "
                        "is %s", name, sum->hex, en->digest);
    return rc;
}

#define MAX_SIG_REFERRERS AL_BUNDLE_MAX_SIGS

/* One signature referrer (manifest digest sd) into g: its checksums.txt must
 * be the one already taken (when one is), its signatures are added, its
 * oci-layout and index.json taken when not yet there. *used false when its
 * checksums.txt differs (another packing of the same manifest: ignored). */
static enum al_rc read_referrer(struct al_ing *g, struct al_reg *reg, const char *subject, const char *sd,
                                bool *used, struct al_err *err)
{
    *used = false;
    char *man = NULL, mt[AL_REG_MT_MAX + 1], got[AL_DIGEST_SIZE];
    size_t man_len = 0;
    enum al_rc rc = al_reg_manifest_get(reg, sd, &man, &man_len, mt, got, err);
    if (rc)
        return rc;
    if (strcmp(got, sd) != 0) {
        free(man);
        return al_err_set(err, AL_ERR_VERIFY, "the signature referrer %s: the registry sent a manifest that hashes to %s",
                          sd, got);
    }
    json_t *root = json_loadb(man, man_len, 0, NULL);
    free(man);
    const char *subj = json_string_value(json_object_get(json_object_get(root, "subject"), "digest"));
    if (!subj || strcmp(subj, subject) != 0) {
        json_decref(root);
        return al_err_set(err, AL_ERR_VERIFY, "the signature referrer %s names another subject than %s", sd, subject);
    }
    json_t *layers = json_object_get(root, "layers"), *l;
    size_t i;
    /* checksums.txt first: it decides whether this referrer counts. */
    bool have_sums = false;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        json_array_foreach(layers, i, l) {
            const char *d = json_string_value(json_object_get(l, "digest"));
            json_int_t size = json_integer_value(json_object_get(l, "size"));
            const char *name =
                json_string_value(json_object_get(json_object_get(l, "annotations"), "org.opencontainers.image.title"));
            if (!d || !name || size < 0) {
                rc = al_err_set(err, AL_ERR_INVALID, "the signature referrer %s has a layer without digest, size or "
                                "title", sd);
                break;
            }
            bool is_sums = strcmp(name, AL_BUNDLE_CHECKSUMS) == 0;
            if ((pass == 0) != is_sums)
                continue;
            char kind = al_bundle_sig_kind(name);
            bool layout = strcmp(name, "oci-layout") == 0 || strcmp(name, "index.json") == 0;
            if (!is_sums && !kind && !layout) {
                rc = al_err_set(err, AL_ERR_INVALID, "the signature referrer %s holds an unexpected file '%.80s'", sd,
                                name);
                break;
            }
            if ((layout && al_ing_find(g, name)) || (kind && g->n_sigs >= AL_BUNDLE_MAX_SIGS))
                continue;
            char *text = NULL;
            size_t len = 0;
            if ((rc = get_small(reg, d, (uint64_t)size, &text, &len, err)))
                break;
            if (is_sums) {
                have_sums = true;
                if (g->sums_text && (len != g->sums_len || memcmp(text, g->sums_text, len) != 0)) {
                    free(text);
                    json_decref(root);
                    return AL_OK; /* another packing: not used */
                }
                if (g->sums_text) {
                    free(text);
                } else {
                    g->sums_text = text, g->sums_len = len;
                    rc = al_sums_parse(g->sums_text, g->sums_len, &g->sums, &g->n_sums, err);
                }
            } else if (kind) {
                struct al_ing_sig *s = &g->sigs[g->n_sigs++];
                snprintf(s->name, sizeof s->name, "%.63s", name);
                s->kind = kind, s->text = text, s->len = len;
            } else {
                rc = al_ing_add_mem(g, name, text, len, err);
                free(text);
            }
            if (rc)
                break;
        }
        if (pass == 0 && !rc && !have_sums) {
            json_decref(root);
            return al_err_set(err, AL_ERR_INVALID, "the signature referrer %s holds no checksums.txt", sd);
        }
    }
    json_decref(root);
    *used = rc == AL_OK;
    return rc;
}

/* The signature referrers of the model manifest: their files into g (every
 * referrer with the same checksums.txt adds its signatures: k-of-n from
 * separate pushes). *found false when the registry has none. */
static enum al_rc read_signatures(struct al_ing *g, struct al_reg *reg, const char *subject, bool *found,
                                  bool *api, struct al_err *err)
{
    *found = false;
    char *idx = NULL;
    size_t idx_len = 0;
    enum al_rc rc = al_reg_referrers(reg, subject, &idx, &idx_len, api, err);
    if (rc == AL_ERR_NOT_FOUND) {
        al_err_clear(err);
        return AL_OK;
    }
    if (rc)
        return rc;
    json_t *root = json_loadb(idx, idx_len, 0, NULL);
    free(idx);
    json_t *ms = json_object_get(root, "manifests"), *m;
    size_t i, seen = 0;
    json_array_foreach(ms, i, m) {
        const char *at = json_string_value(json_object_get(m, "artifactType"));
        const char *sd = json_string_value(json_object_get(m, "digest"));
        if (!at || strcmp(at, AL_MT_AIRLOCK_SIGS) != 0)
            continue;
        if (!sd || !al_digest_valid(sd)) {
            rc = al_err_set(err, AL_ERR_INVALID, "the referrers of %s list a signature artifact without a valid digest",
                            subject);
            break;
        }
        if (++seen > MAX_SIG_REFERRERS) {
            rc = al_err_set(err, AL_ERR_LIMIT, "more than %u signature referrers for %s", MAX_SIG_REFERRERS, subject);
            break;
        }
        bool used = false;
        if ((rc = read_referrer(g, reg, subject, sd, &used, err)))
            break;
        *found = *found || used;
    }
    json_decref(root);
    if (rc || !*found)
        return rc;
    /* Entries added before checksums.txt arrived are checked now. */
    for (size_t k = 0; k < g->n_ents; k++) {
        struct al_sum *s = al_sums_find(g->sums, g->n_sums, g->ents[k].name);
        if (!s || !al_digest_hex_eq(g->ents[k].digest, s->hex))
            return al_err_set(err, AL_ERR_VERIFY, "'%s' does not match the signed checksums.txt", g->ents[k].name);
    }
    return AL_OK;
}

void al_ing_layer_name(json_t *l, size_t i, char *out, size_t size)
{
    json_t *ann = json_object_get(l, "annotations");
    const char *n = json_string_value(json_object_get(ann, AL_ANN_FILEPATH));
    if (!n)
        n = json_string_value(json_object_get(ann, "org.opencontainers.image.title"));
    const char *mt = json_string_value(json_object_get(l, "mediaType"));
    if (n && al_oci_path_safe(n))
        snprintf(out, size, "%s", n);
    else if (mt && (strstr(mt, "gguf") || strstr(mt, "weight")))
        snprintf(out, size, i ? "model-%zu.gguf" : "model.gguf", i);
    else
        snprintf(out, size, "layer-%zu", i);
}

/* Unsigned: every layer as a plain file; checksums.txt made from what was
 * proven against the registry's manifest. */
static enum al_rc pull_plain(struct al_ing *g, struct al_reg *reg, const char *man, size_t man_len,
                             struct al_progress **p, struct al_err *err)
{
    json_t *root = json_loadb(man, man_len, JSON_REJECT_DUPLICATES, NULL);
    json_t *layers = json_object_get(root, "layers"), *l;
    if (!json_is_array(layers) || json_array_size(layers) == 0 || json_array_size(layers) > AL_LIMIT_FILES_PER_MODEL) {
        json_decref(root);
        return al_err_set(err, AL_ERR_INVALID, "the manifest has no layers (or more than %u)", AL_LIMIT_FILES_PER_MODEL);
    }
    uint64_t total = 0;
    size_t i;
    json_array_foreach(layers, i, l) total += (uint64_t)json_integer_value(json_object_get(l, "size"));
    if (g->o->progress)
        *p = al_progress_new("pull", total);
    struct al_buf sums;
    al_buf_init(&sums, AL_BUNDLE_CHECKSUMS_MAX);
    enum al_rc rc = AL_OK;
    json_array_foreach(layers, i, l) {
        const char *d = json_string_value(json_object_get(l, "digest"));
        json_int_t sz = json_integer_value(json_object_get(l, "size"));
        char name[AL_LIMIT_FILE_NAME + 1];
        al_ing_layer_name(l, i, name, sizeof name);
        if (!d || !al_digest_valid(d) || sz < 0) {
            rc = al_err_set(err, AL_ERR_INVALID, "layer %zu of the manifest has no valid digest or size", i);
            break;
        }
        if (al_ing_find(g, name)) {
            rc = al_err_set(err, AL_ERR_INVALID, "two layers are named '%s'", name);
            break;
        }
        if ((rc = fetch_blob(g, reg, name, d, (uint64_t)sz, *p, err)))
            break;
        al_buf_addf(&sums, "%s  %s\n", al_digest_hex(d), name);
    }
    json_decref(root);
    if (!rc && al_buf_failed(&sums))
        rc = al_err_set(err, AL_ERR_LIMIT, "the file list is over %u bytes", AL_BUNDLE_CHECKSUMS_MAX);
    if (!rc) {
        g->sums_len = sums.len;
        g->sums_text = al_buf_take(&sums);
        rc = g->sums_text ? al_sums_parse(g->sums_text, g->sums_len, &g->sums, &g->n_sums, err)
                          : al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    al_buf_release(&sums);
    return rc;
}

/* Signed: the manifest, then config and layers as blobs/sha256/<hex>. */
static enum al_rc pull_native(struct al_ing *g, struct al_reg *reg, const char *man_d, const char *man,
                              size_t man_len, struct al_progress **p, struct al_err *err)
{
    char name[AL_LIMIT_FILE_NAME + 1];
    enum al_rc rc;
    if ((rc = al_bundle_blob_name(man_d, name, err)) || (rc = al_ing_add_mem(g, name, man, man_len, err)) ||
        (rc = al_ing_parse_native(g, err)))
        return rc;
    if (!g->have_man)
        return al_err_set(err, AL_ERR_VERIFY, "the signed index.json does not name manifest %s", man_d);
    uint64_t total = g->man.config_size;
    for (size_t i = 0; i < g->man.n_layers; i++)
        total += g->man.layers[i].size;
    if (g->o->progress)
        *p = al_progress_new("pull", total);
    if ((rc = al_bundle_blob_name(g->man.config_digest, name, err)) ||
        (rc = fetch_blob(g, reg, name, g->man.config_digest, g->man.config_size, *p, err)))
        return rc;
    for (size_t i = 0; i < g->man.n_layers; i++)
        if ((rc = al_bundle_blob_name(g->man.layers[i].digest, name, err)) ||
            (rc = fetch_blob(g, reg, name, g->man.layers[i].digest, g->man.layers[i].size, *p, err)))
            return rc;
    return AL_OK;
}

enum al_rc al_bundle_pull(struct al_repo *r, const char *src, const struct al_reg_opts *ro,
                          const struct al_bundle_opts *o, struct al_bundle_pulled *res, struct al_bundle_report *rep,
                          struct al_err *err)
{
    memset(rep, 0, sizeof *rep);
    memset(res, 0, sizeof *res);
    if (o->dry_run)
        return al_err_set(err, AL_ERR_USAGE, "pull has no dry run");
    struct al_reg_ref ref;
    enum al_rc rc = al_reg_ref_parse(src, &ref, err);
    if (rc)
        return rc;
    struct al_ing g;
    memset(&g, 0, sizeof g);
    g.r = r, g.o = o, g.rep = rep;
    uint64_t cap = al_ing_default_cap(r);
    g.max_entry = o->max_entry ? o->max_entry : cap;
    g.max_total = o->max_total ? o->max_total : cap;
    struct al_reg *reg = NULL;
    struct al_progress *p = NULL;
    char *man = NULL, mt[AL_REG_MT_MAX + 1] = "", man_d[AL_DIGEST_SIZE] = "";
    size_t man_len = 0;
    bool locked = false, tried = false;
    char source[AL_REG_HOST_MAX + AL_REG_REPO_MAX + AL_REG_TAG_MAX + AL_DIGEST_SIZE + 16];
    snprintf(source, sizeof source, "docker://%s/%s%s%s", ref.host, ref.repo, ref.digest[0] ? "@" : ":",
             ref.digest[0] ? ref.digest : ref.tag);
    if ((rc = al_trust_load(r, &g.trust, err)))
        return rc;
    if ((g.ents = calloc(AL_BUNDLE_MAX_ENTRIES, sizeof *g.ents)) == NULL) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = al_reg_open(&ref, ro, &reg, err)))
        goto out;
    if ((rc = al_reg_manifest_get(reg, ref.digest[0] ? ref.digest : ref.tag, &man, &man_len, mt, man_d, err)))
        goto out;
    snprintf(res->manifest, sizeof res->manifest, "%s", man_d);
    snprintf(res->media_type, sizeof res->media_type, "%s", mt);
    snprintf(source, sizeof source, "docker://%s/%s@%s", ref.host, ref.repo, man_d);
    if ((rc = al_repo_writer_begin(r, err)))
        goto out;
    locked = true;
    tried = true; /* from here a refusal is recorded */
    snprintf(rep->bundle, sizeof rep->bundle, "%s", man_d);
    rep->bundle_bytes = man_len;
    if (ref.digest[0] && strcmp(ref.digest, man_d) != 0) {
        rc = al_err_set(err, AL_ERR_VERIFY, "the registry sent a manifest that hashes to %s, not the %s asked for", man_d,
                        ref.digest);
        goto out;
    }
    if (strcmp(mt, AL_MT_OCI_INDEX) == 0 || strstr(mt, "manifest.list")) {
        rc = al_err_set(err, AL_ERR_INVALID, "%s is an image index (several manifests); pull one of its manifests by "
                        "digest", source);
        goto out;
    }
    bool found = false;
    if ((rc = read_signatures(&g, reg, man_d, &found, &res->referrers_api, err)))
        goto out;
    res->signed_ = found;
    if (!found && !o->allow_unsigned) {
        rc = al_err_set(err, AL_ERR_VERIFY, "%s is not signed: the registry holds no airlock signature referrer for "
                        "%s; ask the publisher to push with --sign, or pull --allow-unsigned to accept it (recorded)",
                        source, man_d);
        goto out;
    }
    if (found) {
        /* Signatures and the trust policy before a byte of any large blob. */
        if ((rc = al_ing_check_sigs(&g, err)) || (rc = pull_native(&g, reg, man_d, man, man_len, &p, err)))
            goto out;
    } else {
        if (!o->as) {
            rc = al_err_set(err, AL_ERR_USAGE, "an unsigned pull does not name its model: give --as NAME:TAG");
            goto out;
        }
        al_ing_check(&g, "unsigned");
        if ((rc = pull_plain(&g, reg, man, man_len, &p, err)))
            goto out;
    }
    al_progress_free(p);
    p = NULL;
    al_ing_check(&g, "registry");
    rc = al_ing_finish(&g, source, err);
out:
    al_progress_free(p);
    snprintf(rep->checks, sizeof rep->checks, "%s", g.checks);
    if (rc && tried)
        rc = al_ing_record_refusal(&g, source, rc, err);
    if (g.ents)
        al_ing_release(&g);
    else
        al_trust_release(&g.trust);
    if (locked)
        al_repo_writer_end(r);
    al_reg_free(reg);
    free(man);
    return rc;
}
