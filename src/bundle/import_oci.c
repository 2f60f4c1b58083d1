/*
 * import_oci.c: a model from an OCI image layout directory or an
 * oci-archive tar (docs/internals/import.md).
 *
 * The manifest is chosen in index.json by its ref name; its config and every
 * layer are proven against their digests and sizes. Layers are named as an
 * unsigned pull names them (al_ing_layer_name: ModelPack filepath, the
 * image title, a GGUF media type such as Docker Model Runner's or an ORAS
 * push's becomes model.gguf). A directory is walked without following
 * links. An archive is read twice, never extracted: the first pass keeps
 * index.json and the small blobs (manifests, configs) in memory, the second
 * streams the layers into the store's blob writers; links, devices and
 * unsafe names in it are refused.
 */
#include "bundle/import_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#define SMALL_TOTAL (16u << 20) /* small blobs of an archive kept in memory in its first pass */
#define REFS_SHOWN  512u        /* bytes of ref names an error lists */

struct small {
    char digest[AL_DIGEST_SIZE];
    char *data;
    size_t len;
};

struct oci_src {
    const char *path;
    bool archive;
    int root;             /* a layout directory, or -1 */
    struct small *smalls; /* an archive's index.json (digest "") and small blobs */
    size_t n_small, kept;
};

static void src_release(struct oci_src *s)
{
    for (size_t i = 0; i < s->n_small; i++)
        free(s->smalls[i].data);
    free(s->smalls);
    if (s->root >= 0)
        close(s->root);
}

/* An archive entry's name, "./" dropped, checked: NULL when unsafe. */
static const char *entry_name(struct archive_entry *e)
{
    const char *n = archive_entry_pathname(e);
    while (n && n[0] == '.' && n[1] == '/')
        n += 2;
    if (n == NULL || n[0] == '/' || strstr(n, "..") != NULL)
        return NULL;
    return n;
}

static enum al_rc archive_open(const char *path, struct archive **out, struct al_err *err)
{
    struct archive *a = archive_read_new();
    if (a == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    archive_read_support_format_tar(a);
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        enum al_rc rc = al_err_set(err, AL_ERR_INVALID, "cannot read the archive '%s': %s", path,
                                   archive_error_string(a) ? archive_error_string(a) : "?");
        archive_read_free(a);
        return rc;
    }
    *out = a;
    return AL_OK;
}

/* The blob digest an archive or layout name stands for, or "" when it is no blob. */
static void blob_digest(const char *name, char out[AL_DIGEST_SIZE])
{
    out[0] = '\0';
    if (strncmp(name, AL_BUNDLE_BLOB_DIR, sizeof AL_BUNDLE_BLOB_DIR - 1) != 0)
        return;
    const char *hex = name + sizeof AL_BUNDLE_BLOB_DIR - 1;
    if (strlen(hex) != AL_SHA256_HEX)
        return;
    char d[AL_DIGEST_SIZE];
    memcpy(d, "sha256:", 7);
    memcpy(d + 7, hex, AL_SHA256_HEX + 1);
    if (al_digest_valid(d))
        memcpy(out, d, AL_DIGEST_SIZE);
}

/* Pass 1 of an archive: index.json and the small blobs into memory; links
 * and other non-files refused. */
static enum al_rc archive_scan(struct oci_src *s, struct al_err *err)
{
    struct archive *a = NULL;
    enum al_rc rc = archive_open(s->path, &a, err);
    if (rc)
        return rc;
    size_t cap = 64;
    if ((s->smalls = calloc(cap, sizeof *s->smalls)) == NULL) {
        archive_read_free(a);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    struct archive_entry *e;
    int ar;
    size_t n_entries = 0;
    while (!rc && (ar = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = entry_name(e);
        mode_t type = archive_entry_filetype(e);
        if (++n_entries > 4 * AL_BUNDLE_MAX_ENTRIES) {
            rc = al_err_set(err, AL_ERR_LIMIT, "the archive has more than %u entries", 4 * AL_BUNDLE_MAX_ENTRIES);
            break;
        }
        if (name == NULL) {
            rc = al_err_set(err, AL_ERR_INVALID, "the archive has an entry with an absolute or '..' path ('%.100s')",
                            archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
            break;
        }
        if (type == AE_IFDIR)
            continue;
        if (type != AE_IFREG || archive_entry_hardlink(e)) {
            rc = al_err_set(err, AL_ERR_INVALID, "the archive entry '%.100s' is not a regular file (a link, a device?)",
                            name);
            break;
        }
        char d[AL_DIGEST_SIZE];
        blob_digest(name, d);
        bool index = strcmp(name, "index.json") == 0;
        int64_t size = archive_entry_size(e);
        if ((!index && !d[0]) || size < 0 || (uint64_t)size > AL_LIMIT_MANIFEST || s->kept + (size_t)size > SMALL_TOTAL)
            continue;
        if (s->n_small == cap) {
            struct small *ns = realloc(s->smalls, 2 * cap * sizeof *ns);
            if (ns == NULL) {
                rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
                break;
            }
            s->smalls = ns, cap *= 2;
        }
        struct small *sm = &s->smalls[s->n_small];
        memset(sm, 0, sizeof *sm);
        snprintf(sm->digest, sizeof sm->digest, "%s", index ? "" : d);
        if ((sm->data = malloc((size_t)size + 1)) == NULL) {
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
            break;
        }
        la_ssize_t k = archive_read_data(a, sm->data, (size_t)size);
        if (k != (la_ssize_t)size) {
            free(sm->data);
            rc = al_err_set(err, AL_ERR_INVALID, "cannot read '%s' in the archive: %s", name,
                            archive_error_string(a) ? archive_error_string(a) : "short read");
            break;
        }
        sm->data[size] = '\0';
        sm->len = (size_t)size;
        s->kept += (size_t)size;
        s->n_small++;
    }
    if (!rc && ar != ARCHIVE_EOF)
        rc = al_err_set(err, AL_ERR_INVALID, "cannot read the archive '%s': %s", s->path,
                        archive_error_string(a) ? archive_error_string(a) : "?");
    archive_read_free(a);
    return rc;
}

/* A small file of the source: index.json (digest NULL) or a blob, capped at
 * AL_LIMIT_MANIFEST; *out malloc'd. */
static enum al_rc read_small(struct oci_src *s, const char *digest, char **out, size_t *len, struct al_err *err)
{
    const char *what = digest ? digest : "index.json";
    if (s->archive) {
        for (size_t i = 0; i < s->n_small; i++)
            if (strcmp(s->smalls[i].digest, digest ? digest : "") == 0) {
                if ((*out = malloc(s->smalls[i].len + 1)) == NULL)
                    return al_err_set(err, AL_ERR_NOMEM, "out of memory");
                memcpy(*out, s->smalls[i].data, s->smalls[i].len + 1);
                *len = s->smalls[i].len;
                return AL_OK;
            }
        return al_err_set(err, AL_ERR_NOT_FOUND, "%s is missing from the archive (or over the cap of %u bytes, "
                          "AL_LIMIT_MANIFEST)", what, AL_LIMIT_MANIFEST);
    }
    char rel[AL_LIMIT_PATH];
    snprintf(rel, sizeof rel, digest ? AL_BUNDLE_BLOB_DIR "%s" : "index.json", digest ? al_digest_hex(digest) : "");
    int fd = -1;
    enum al_rc rc = al_imp_open_beneath(s->root, rel, false, &fd, err);
    if (rc == AL_ERR_NOT_FOUND) {
        al_err_clear(err);
        rc = al_err_set(err, AL_ERR_NOT_FOUND, "%s is missing from the layout '%s'", what, s->path);
    }
    if (!rc)
        rc = al_imp_read_capped(fd, what, AL_LIMIT_MANIFEST, "AL_LIMIT_MANIFEST", out, len, err);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* The manifest of index.json named ref (or the only one): digest and size. */
static enum al_rc choose(const char *idx, size_t len, const char *ref, char digest[AL_DIGEST_SIZE], uint64_t *size,
                         char *ref_out, size_t ref_size, struct al_err *err)
{
    json_t *root = json_loadb(idx, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *ms = json_object_get(root, "manifests"), *m, *pick = NULL;
    if (!json_is_array(ms) || json_array_size(ms) == 0) {
        json_decref(root);
        return al_err_set(err, AL_ERR_INVALID, "index.json lists no manifests");
    }
    char refs[REFS_SHOWN] = "";
    size_t i, n_match = 0;
    json_array_foreach(ms, i, m) {
        const char *rn = json_string_value(json_object_get(json_object_get(m, "annotations"), AL_ANN_REF_NAME));
        size_t k = strlen(refs);
        snprintf(refs + k, sizeof refs - k, "%s'%.100s'", k ? ", " : "", rn ? rn : "(no ref name)");
        if (ref ? (rn && strcmp(rn, ref) == 0) : true)
            pick = m, n_match++;
    }
    enum al_rc rc = AL_OK;
    if (n_match != 1) {
        if (ref)
            rc = al_err_set(err, AL_ERR_NOT_FOUND, "no manifest is named '%s' in index.json; its refs: %s", ref, refs);
        else
            rc = al_err_set(err, AL_ERR_NOT_FOUND, "index.json lists %zu manifests; name one as PATH:REF; its refs: %s",
                            json_array_size(ms), refs);
    } else {
        const char *d = json_string_value(json_object_get(pick, "digest"));
        const char *mt = json_string_value(json_object_get(pick, "mediaType"));
        json_int_t sz = json_integer_value(json_object_get(pick, "size"));
        const char *rn = json_string_value(json_object_get(json_object_get(pick, "annotations"), AL_ANN_REF_NAME));
        if (!d || !al_digest_valid(d) || sz <= 0)
            rc = al_err_set(err, AL_ERR_INVALID, "index.json names a manifest without a valid digest or size");
        else if (mt && (strcmp(mt, AL_MT_OCI_INDEX) == 0 || strstr(mt, "manifest.list")))
            rc = al_err_set(err, AL_ERR_INVALID, "the ref names an image index, not one manifest");
        else {
            snprintf(digest, AL_DIGEST_SIZE, "%s", d);
            *size = (uint64_t)sz;
            snprintf(ref_out, ref_size, "%s", rn ? rn : "");
        }
    }
    json_decref(root);
    return rc;
}

struct want {
    char name[AL_LIMIT_FILE_NAME + 1];
    char digest[AL_DIGEST_SIZE];
    uint64_t size;
    bool done;
};

static ssize_t archive_rd(void *ud, void *buf, size_t cap)
{
    la_ssize_t k = archive_read_data(ud, buf, cap);
    if (k < 0)
        errno = EIO;
    return k < 0 ? -1 : (ssize_t)k;
}

/* The layers into entries: from files of the layout, or pass 2 of an archive. */
static enum al_rc read_layers(struct al_imp *im, struct oci_src *s, struct want *w, size_t n, struct al_err *err)
{
    enum al_rc rc = AL_OK;
    if (!s->archive) {
        for (size_t i = 0; i < n && !rc; i++) {
            char rel[AL_LIMIT_PATH];
            snprintf(rel, sizeof rel, AL_BUNDLE_BLOB_DIR "%s", al_digest_hex(w[i].digest));
            int fd = -1;
            rc = al_imp_open_beneath(s->root, rel, false, &fd, err);
            if (rc == AL_ERR_NOT_FOUND) {
                al_err_clear(err);
                rc = al_err_set(err, AL_ERR_NOT_FOUND, "blob %s ('%s') is missing from the layout", w[i].digest,
                                w[i].name);
            }
            if (!rc)
                rc = al_imp_add_fd(im, w[i].name, fd, w[i].digest, w[i].size, err);
            if (fd >= 0)
                close(fd);
        }
        return rc;
    }
    struct archive *a = NULL;
    if ((rc = archive_open(s->path, &a, err)))
        return rc;
    struct archive_entry *e;
    int ar;
    while (!rc && (ar = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = entry_name(e);
        char d[AL_DIGEST_SIZE];
        if (name == NULL || archive_entry_filetype(e) != AE_IFREG)
            continue; /* refused by pass 1 already */
        blob_digest(name, d);
        for (size_t i = 0; i < n && d[0]; i++)
            if (!w[i].done && strcmp(w[i].digest, d) == 0) {
                if (archive_entry_size(e) != (int64_t)w[i].size) {
                    rc = al_err_set(err, AL_ERR_VERIFY, "blob %s ('%s') is %lld bytes in the archive; its manifest "
                                    "says %" PRIu64, d, w[i].name, (long long)archive_entry_size(e), w[i].size);
                    break;
                }
                rc = al_imp_add_stream(im, w[i].name, archive_rd, a, d, w[i].size, err);
                w[i].done = true;
                break; /* a blob shared by two layers is read once: the second is missing below */
            }
    }
    if (!rc && ar != ARCHIVE_EOF)
        rc = al_err_set(err, AL_ERR_INVALID, "cannot read the archive '%s': %s", s->path,
                        archive_error_string(a) ? archive_error_string(a) : "?");
    archive_read_free(a);
    for (size_t i = 0; i < n && !rc; i++)
        if (!w[i].done)
            rc = al_err_set(err, AL_ERR_NOT_FOUND, "blob %s ('%s') is missing from the archive", w[i].digest,
                            w[i].name);
    /* The entries in the manifest's order, as a layout gives them. */
    struct al_ing *g = &im->g;
    for (size_t i = 0; i < n && !rc; i++)
        for (size_t j = i; j < g->n_ents; j++)
            if (strcmp(g->ents[j].name, w[i].name) == 0) {
                struct al_ing_entry t = g->ents[i];
                g->ents[i] = g->ents[j];
                g->ents[j] = t;
                break;
            }
    return rc;
}

/* PATH[:REF]: the longest prefix before a ':' that exists is PATH (a ref
 * may hold ':' itself, as "stories:1.0" does). */
static enum al_rc split_src(const char *src, char *path, size_t psize, char *ref, size_t rsize, struct al_err *err)
{
    struct stat st;
    ref[0] = '\0';
    snprintf(path, psize, "%s", src);
    if (stat(src, &st) != 0) {
        bool found = false;
        for (const char *c = src + strlen(src); c-- > src && !found;) {
            if (*c != ':' || (size_t)(c - src) >= psize)
                continue;
            snprintf(path, psize, "%.*s", (int)(c - src), src);
            if (stat(path, &st) == 0) {
                found = true;
                if (strlen(c + 1) >= rsize)
                    return al_err_set(err, AL_ERR_LIMIT, "the ref '%.40s...' is over %zu bytes", c + 1, rsize - 1);
                snprintf(ref, rsize, "%s", c + 1);
            }
        }
        if (!found)
            return al_err_set(err, AL_ERR_NOT_FOUND, "'%s' does not exist (nor does any PATH of it as PATH:REF)", src);
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        return al_err_set(err, AL_ERR_INVALID, "'%s' is neither an OCI layout directory nor an archive", path);
    return AL_OK;
}

enum al_rc al_bundle_import_oci(struct al_repo *r, const char *src, const struct al_bundle_opts *o,
                                struct al_bundle_imported *res, struct al_bundle_report *rep, struct al_err *err)
{
    memset(res, 0, sizeof *res);
    struct al_bundle_opts oo = *o;
    struct al_imp im;
    struct oci_src s = {.root = -1};
    char path[AL_LIMIT_PATH], ref[AL_LIMIT_NAME + AL_LIMIT_TAG + 2], chosen[256] = "", abs[AL_LIMIT_PATH];
    char *idx = NULL, *man = NULL, *cfg = NULL, man_d[AL_DIGEST_SIZE];
    size_t idx_len = 0, man_len = 0, cfg_len = 0;
    uint64_t man_size = 0;
    json_t *mj = NULL, *mts = json_array(), *imp = NULL;
    struct want *w = NULL;
    enum al_rc rc = al_imp_begin(&im, r, &oo, rep, err);
    if (!rc)
        rc = split_src(src, path, sizeof path, ref, sizeof ref, err);
    if (rc)
        goto out;
    struct stat st;
    s.path = path;
    s.archive = stat(path, &st) == 0 && S_ISREG(st.st_mode);
    if (realpath(path, abs) == NULL)
        snprintf(abs, sizeof abs, "%s", path);
    if (!s.archive && (s.root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = al_err_set(err, AL_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
        goto out;
    }
    int sn = snprintf(im.source, sizeof im.source, "%s:%s%s%s", s.archive ? "oci-archive" : "oci", abs,
                      ref[0] ? ":" : "", ref);
    if (sn < 0 || (size_t)sn >= sizeof im.source) {
        rc = al_err_set(err, AL_ERR_LIMIT, "the source '%s' is too long to record (at most %zu bytes)", path,
                        sizeof im.source - 1);
        goto out;
    }
    snprintf(res->source, sizeof res->source, "%s", im.source);
    if ((rc = al_imp_lock(&im, err)))
        goto out;
    if ((s.archive && (rc = archive_scan(&s, err))) || (rc = read_small(&s, NULL, &idx, &idx_len, err)) ||
        (rc = choose(idx, idx_len, ref[0] ? ref : NULL, man_d, &man_size, chosen, sizeof chosen, err)) ||
        (rc = read_small(&s, man_d, &man, &man_len, err)) ||
        (rc = al_imp_check_mem("the manifest", man, man_len, man_d, man_size, err)))
        goto out;
    snprintf(res->manifest, sizeof res->manifest, "%s", man_d);
    snprintf(rep->bundle, sizeof rep->bundle, "%s", man_d);
    rep->bundle_bytes = man_len;
    mj = json_loadb(man, man_len, JSON_REJECT_DUPLICATES, NULL);
    json_t *layers = json_object_get(mj, "layers"), *l, *c = json_object_get(mj, "config");
    if (!json_is_array(layers) || json_array_size(layers) == 0 ||
        json_array_size(layers) > AL_LIMIT_FILES_PER_MODEL || !json_is_object(c)) {
        rc = al_err_set(err, AL_ERR_INVALID, "manifest %s has no config or no layers (or more than %u)", man_d,
                        AL_LIMIT_FILES_PER_MODEL);
        goto out;
    }
    const char *cd = json_string_value(json_object_get(c, "digest"));
    json_int_t cs = json_integer_value(json_object_get(c, "size"));
    if (!cd || !al_digest_valid(cd) || cs < 0) {
        rc = al_err_set(err, AL_ERR_INVALID, "manifest %s has a config without a valid digest or size", man_d);
        goto out;
    }
    if ((rc = read_small(&s, cd, &cfg, &cfg_len, err)) ||
        (rc = al_imp_check_mem("the config", cfg, cfg_len, cd, (uint64_t)cs, err)))
        goto out;
    size_t n = json_array_size(layers), i;
    if ((w = calloc(n, sizeof *w)) == NULL) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    uint64_t total = 0;
    json_array_foreach(layers, i, l) {
        const char *d = json_string_value(json_object_get(l, "digest"));
        json_int_t sz = json_integer_value(json_object_get(l, "size"));
        const char *mt = json_string_value(json_object_get(l, "mediaType"));
        if (!d || !al_digest_valid(d) || sz < 0) {
            rc = al_err_set(err, AL_ERR_INVALID, "layer %zu of the manifest has no valid digest or size", i);
            goto out;
        }
        al_ing_layer_name(l, i, w[i].name, sizeof w[i].name);
        snprintf(w[i].digest, sizeof w[i].digest, "%s", d);
        w[i].size = (uint64_t)sz;
        total += w[i].size;
        json_array_append_new(mts, json_string(mt ? mt : ""));
        size_t k = strlen(res->media_types);
        snprintf(res->media_types + k, sizeof res->media_types - k, "%s%s", k ? "," : "", mt ? mt : "");
    }
    if (!oo.as) {
        if (!chosen[0] || strchr(chosen, '@')) {
            rc = al_err_set(err, AL_ERR_USAGE, "the manifest has no ref name to store it under: give --as NAME:TAG");
            goto out;
        }
        snprintf(ref, sizeof ref, "%s", chosen);
        oo.as = ref;
    }
    al_imp_progress(&im, total);
    if ((rc = read_layers(&im, &s, w, n, err)))
        goto out;
    imp = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O}", "from", s.archive ? "oci-archive" : "oci", "name", chosen,
                    "path", abs, "manifest", man_d, "config", cd, "media_types", mts);
    /* An airlock manifest's card (io.airlock.card) comes along; source is the import's. */
    const char *ct = json_string_value(json_object_get(json_object_get(mj, "annotations"), AL_ANN_CARD));
    json_t *card = ct ? json_loads(ct, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (!json_is_object(card)) {
        json_decref(card);
        card = json_object();
    }
    json_object_set_new(card, "source", json_string(im.source));
    im.g.card = card ? json_dumps(card, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(card);
    im.g.import = imp ? json_dumps(imp, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (!im.g.card || !im.g.import) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = al_imp_finish(&im, err);
out:
    free(w);
    free(idx);
    free(man);
    free(cfg);
    json_decref(mj);
    json_decref(mts);
    json_decref(imp);
    src_release(&s);
    return al_imp_end(&im, rc, err);
}
