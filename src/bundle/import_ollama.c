/*
 * import_ollama.c: a model from an Ollama models directory
 * (docs/internals/import.md).
 *
 * Ollama keeps a model as a Docker-style manifest at
 * manifests/<host>/<namespace>/<name>/<tag> whose config and layers are
 * files blobs/sha256-<hex>. The layers' media types say what each is:
 * application/vnd.ollama.image.model (the GGUF weights), .template (a Go
 * template), .params (JSON), .system, .license (texts), .messages (JSON),
 * .adapter (a LoRA GGUF) and .projector (a multimodal projector GGUF).
 * The weights become model.gguf; the texts are kept as files under ollama/
 * (the licenses as LICENSE, LICENSE-2, ...) and in the version's model card
 * (template, parameters, system, license_text, source), each at most
 * AL_IMPORT_TEXT_MAX bytes and UTF-8. Adapters and projectors are refused:
 * airlock binds an adapter to its base with 'add --base', and its engine
 * loads no projector. Every blob, the config too, is re-hashed against its
 * digest and size. The directory is walked without following any link.
 */
#include "bundle/import_int.h"

#include <ctype.h>
#include <fcntl.h>
#include <jansson.h>
#include <unistd.h>

#include "core/utf8.h"

#define OLLAMA_HOST      "registry.ollama.ai"
#define OLLAMA_NAMESPACE "library"
#define OLLAMA_MT        "application/vnd.ollama.image."
#define OLLAMA_PART_MAX  128u /* one component of a model name */

/* name[:tag] into host, namespace, model and tag (Ollama's defaults fill in). */
static enum al_rc parse_name(const char *s, char *host, char *ns, char *model, char *tag, struct al_err *err)
{
    char buf[4 * OLLAMA_PART_MAX];
    if (strlen(s) >= sizeof buf)
        return al_err_set(err, AL_ERR_LIMIT, "model name '%.40s...' is over %zu bytes", s, sizeof buf - 1);
    snprintf(buf, sizeof buf, "%s", s);
    char *colon = strrchr(buf, ':'), *slash = strrchr(buf, '/');
    snprintf(tag, OLLAMA_PART_MAX + 1, "latest");
    if (colon && (!slash || colon > slash)) {
        *colon = '\0';
        snprintf(tag, OLLAMA_PART_MAX + 1, "%.128s", colon + 1);
    }
    char *parts[4];
    size_t n = 0;
    for (char *p = buf, *q; n < 4; p = q + 1) {
        parts[n++] = p;
        if ((q = strchr(p, '/')) == NULL)
            break;
        *q = '\0';
        if (n == 3)
            return al_err_set(err, AL_ERR_USAGE, "'%s' is not NAME[:TAG], NAMESPACE/NAME[:TAG] or "
                              "HOST/NAMESPACE/NAME[:TAG]", s);
    }
    char *all[4] = {parts[0], tag, NULL, NULL};
    if (n == 2)
        all[2] = parts[1];
    if (n == 3)
        all[2] = parts[1], all[3] = parts[2];
    for (size_t i = 0; i < 4; i++) {
        const char *p = all[i];
        if (p == NULL)
            continue;
        bool okc = p[0] != '\0' && strcmp(p, ".") != 0 && strcmp(p, "..") != 0 && strlen(p) <= OLLAMA_PART_MAX;
        for (const char *c = p; okc && *c; c++)
            okc = isalnum((unsigned char)*c) || *c == '.' || *c == '_' || *c == '-';
        if (!okc)
            return al_err_set(err, AL_ERR_USAGE, "'%s' is not a valid Ollama model name: each part is letters, "
                              "digits, '.', '_' or '-' (no '..', no '/' at either end)", s);
    }
    snprintf(host, OLLAMA_PART_MAX + 1, "%.128s", n == 3 ? parts[0] : OLLAMA_HOST);
    snprintf(ns, OLLAMA_PART_MAX + 1, "%.128s", n == 1 ? OLLAMA_NAMESPACE : parts[n - 2]);
    snprintf(model, OLLAMA_PART_MAX + 1, "%.128s", parts[n - 1]);
    return AL_OK;
}

/* A blob's file: blobs/sha256-<hex>, named by a digest that must be valid. */
static enum al_rc open_blob(int root, const char *digest, int *fd, struct al_err *err)
{
    if (digest == NULL || !al_digest_valid(digest))
        return al_err_set(err, AL_ERR_INVALID, "the manifest names a blob without a valid sha256 digest ('%.80s')",
                          digest ? digest : "(none)");
    char rel[AL_LIMIT_PATH];
    snprintf(rel, sizeof rel, "blobs/sha256-%s", al_digest_hex(digest));
    enum al_rc rc = al_imp_open_beneath(root, rel, false, fd, err);
    if (rc == AL_ERR_NOT_FOUND) {
        /* Older Ollama versions named their blobs sha256:<hex>. */
        char old[AL_LIMIT_PATH];
        snprintf(old, sizeof old, "blobs/sha256:%s", al_digest_hex(digest));
        al_err_clear(err);
        rc = al_imp_open_beneath(root, old, false, fd, err);
    }
    if (rc == AL_ERR_NOT_FOUND) {
        al_err_clear(err);
        return al_err_set(err, AL_ERR_NOT_FOUND, "blob %s is missing from the models directory (%s)", digest, rel);
    }
    return rc;
}

static bool utf8_valid(const char *s, size_t len)
{
    for (size_t i = 0, k; i < len; i += k)
        if ((k = al_utf8_char_len(s + i, len - i)) == 0)
            return false;
    return true;
}

/* A small text layer, proven and kept in memory (UTF-8, at most AL_IMPORT_TEXT_MAX). */
static enum al_rc read_text(int root, const char *what, const char *digest, uint64_t size, char **out, size_t *len,
                            struct al_err *err)
{
    int fd = -1;
    enum al_rc rc = open_blob(root, digest, &fd, err);
    if (!rc)
        rc = al_imp_read_capped(fd, what, AL_IMPORT_TEXT_MAX, "AL_IMPORT_TEXT_MAX", out, len, err);
    if (fd >= 0)
        close(fd);
    if (!rc && (rc = al_imp_check_mem(what, *out, *len, digest, size, err)) == AL_OK && !utf8_valid(*out, *len))
        rc = al_err_set(err, AL_ERR_INVALID, "%s is not UTF-8 text", what);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* The kind of layer: the media type's suffix after OLLAMA_MT. */
static const char *layer_kind(const char *mt)
{
    return mt && strncmp(mt, OLLAMA_MT, sizeof OLLAMA_MT - 1) == 0 ? mt + sizeof OLLAMA_MT - 1 : NULL;
}

/* Each layer into an entry, its texts into the card. */
static enum al_rc read_layers(struct al_imp *im, int root, json_t *layers, json_t *card, json_t *mts,
                              struct al_err *err)
{
    size_t i, n_license = 0;
    json_t *l;
    bool have_model = false;
    json_t *licenses = json_array();
    enum al_rc rc = AL_OK;
    json_array_foreach(layers, i, l) {
        const char *mt = json_string_value(json_object_get(l, "mediaType"));
        const char *d = json_string_value(json_object_get(l, "digest"));
        json_t *js = json_object_get(l, "size");
        const char *kind = layer_kind(mt);
        if (!json_is_integer(js) || json_integer_value(js) < 0) {
            rc = al_err_set(err, AL_ERR_INVALID, "layer %zu of the manifest has no valid size", i);
            break;
        }
        uint64_t size = (uint64_t)json_integer_value(js);
        if (kind == NULL) {
            rc = al_err_set(err, AL_ERR_INVALID, "layer %zu has media type '%.100s', not an Ollama layer (%s*)", i,
                            mt ? mt : "(none)", OLLAMA_MT);
            break;
        }
        json_array_append_new(mts, json_string(mt));
        if (strcmp(kind, "adapter") == 0 || strcmp(kind, "projector") == 0) {
            rc = al_err_set(err, AL_ERR_INVALID, "layer %zu is %s (%s): not imported; %s", i,
                            kind[0] == 'a' ? "a LoRA adapter" : "a multimodal projector", mt,
                            kind[0] == 'a' ? "import the base model, then 'airlock add NAME ADAPTER.gguf --base REF'"
                                           : "airlock's engine loads no projector");
            break;
        }
        if (strcmp(kind, "model") == 0) {
            if (have_model) {
                rc = al_err_set(err, AL_ERR_INVALID, "the manifest has more than one model layer");
                break;
            }
            have_model = true;
            int fd = -1;
            if (!(rc = open_blob(root, d, &fd, err)))
                rc = al_imp_add_fd(im, "model.gguf", fd, d, size, err);
            if (fd >= 0)
                close(fd);
            if (rc)
                break;
            continue;
        }
        const char *file = NULL, *key = NULL;
        char lic_name[32];
        if (strcmp(kind, "template") == 0)
            file = "ollama/template", key = "template";
        else if (strcmp(kind, "params") == 0)
            file = "ollama/params.json", key = "parameters";
        else if (strcmp(kind, "system") == 0)
            file = "ollama/system.txt", key = "system";
        else if (strcmp(kind, "messages") == 0)
            file = "ollama/messages.json", key = "messages";
        else if (strcmp(kind, "license") == 0) {
            snprintf(lic_name, sizeof lic_name, n_license ? "LICENSE-%zu" : "LICENSE", n_license + 1);
            n_license++;
            file = lic_name;
        } else {
            rc = al_err_set(err, AL_ERR_INVALID, "layer %zu has media type '%.100s', which this import does not know",
                            i, mt);
            break;
        }
        char what[96], *text = NULL;
        size_t len = 0;
        snprintf(what, sizeof what, "the %s layer (%s)", kind, file);
        if ((rc = read_text(root, what, d, size, &text, &len, err)))
            break;
        if (key && json_object_get(card, key)) {
            free(text);
            rc = al_err_set(err, AL_ERR_INVALID, "the manifest has more than one %s layer", kind);
            break;
        }
        json_t *v = NULL;
        if (key && (strcmp(key, "parameters") == 0 || strcmp(key, "messages") == 0)) {
            v = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
            if (v == NULL || (key[0] == 'p' ? !json_is_object(v) : !json_is_array(v))) {
                json_decref(v);
                free(text);
                rc = al_err_set(err, AL_ERR_INVALID, "%s is not a JSON %s", what, key[0] == 'p' ? "object" : "array");
                break;
            }
        } else {
            v = json_stringn(text, len);
        }
        if (key)
            json_object_set_new(card, key, v);
        else
            json_array_append_new(licenses, v);
        rc = al_ing_add_mem(&im->g, file, text, len, err);
        free(text);
        if (rc)
            break;
    }
    if (!rc && !have_model)
        rc = al_err_set(err, AL_ERR_INVALID, "the manifest has no model layer (%smodel)", OLLAMA_MT);
    if (!rc && json_array_size(licenses) == 1)
        json_object_set(card, "license_text", json_array_get(licenses, 0));
    else if (!rc && json_array_size(licenses) > 1)
        json_object_set(card, "license_text", licenses);
    json_decref(licenses);
    return rc;
}

enum al_rc al_bundle_import_ollama(struct al_repo *r, const char *dir, const char *name,
                                   const struct al_bundle_opts *o, struct al_bundle_imported *res,
                                   struct al_bundle_report *rep, struct al_err *err)
{
    memset(res, 0, sizeof *res);
    char host[OLLAMA_PART_MAX + 1], ns[OLLAMA_PART_MAX + 1], model[OLLAMA_PART_MAX + 1], tag[OLLAMA_PART_MAX + 1];
    struct al_bundle_opts oo = *o;
    char as[3 * OLLAMA_PART_MAX + 4];
    struct al_imp im;
    enum al_rc rc = al_imp_begin(&im, r, &oo, rep, err);
    if (!rc)
        rc = parse_name(name, host, ns, model, tag, err);
    if (rc)
        return al_imp_end(&im, rc, err);
    if (!oo.as) {
        /* The name as Ollama shows it (no default host or namespace), the same tag. */
        snprintf(as, sizeof as, "%s%s%s:%s", strcmp(ns, OLLAMA_NAMESPACE) ? ns : "", strcmp(ns, OLLAMA_NAMESPACE) ? "/" : "",
                 model, tag);
        for (char *c = as; *c && *c != ':'; c++)
            *c = (char)tolower((unsigned char)*c);
        oo.as = as;
    }
    snprintf(im.source, sizeof im.source, "ollama://%s/%s/%s:%s", host, ns, model, tag);
    snprintf(res->source, sizeof res->source, "%s", im.source);
    char abs[AL_LIMIT_PATH];
    if (realpath(dir, abs) == NULL)
        snprintf(abs, sizeof abs, "%s", dir);
    int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return al_imp_end(&im, al_err_set(err, errno == ENOENT ? AL_ERR_NOT_FOUND : AL_ERR_IO,
                                          "cannot open the Ollama models directory '%s': %s", dir, strerror(errno)),
                          err);
    char rel[AL_LIMIT_PATH], *man = NULL;
    size_t man_len = 0;
    int fd = -1;
    json_t *root_j = NULL, *card = json_object(), *mts = json_array(), *imp = NULL;
    snprintf(rel, sizeof rel, "manifests/%s/%s/%s/%s", host, ns, model, tag);
    if ((rc = al_imp_lock(&im, err)))
        goto out;
    rc = al_imp_open_beneath(root, rel, false, &fd, err);
    if (rc == AL_ERR_NOT_FOUND) {
        al_err_clear(err);
        rc = al_err_set(err, AL_ERR_NOT_FOUND, "no model '%s' in '%s' (%s is missing)", name, dir, rel);
    }
    if (!rc)
        rc = al_imp_read_capped(fd, "the manifest", AL_LIMIT_MANIFEST, "AL_LIMIT_MANIFEST", &man, &man_len, err);
    if (rc)
        goto out;
    uint8_t raw[AL_SHA256_BYTES];
    al_sha256_buf(man, man_len, raw);
    al_digest_format(raw, res->manifest);
    snprintf(rep->bundle, sizeof rep->bundle, "%s", res->manifest);
    rep->bundle_bytes = man_len;
    json_error_t je;
    root_j = json_loadb(man, man_len, JSON_REJECT_DUPLICATES, &je);
    json_t *cfg = json_object_get(root_j, "config"), *layers = json_object_get(root_j, "layers");
    if (!json_is_object(root_j) || !json_is_object(cfg) || !json_is_array(layers)) {
        rc = al_err_set(err, AL_ERR_INVALID, "the manifest %s is not an Ollama manifest (JSON with config and layers)%s%s",
                        rel, root_j ? "" : ": ", root_j ? "" : je.text);
        goto out;
    }
    if (json_array_size(layers) == 0 || json_array_size(layers) > AL_LIMIT_FILES_PER_MODEL) {
        rc = al_err_set(err, AL_ERR_LIMIT, "the manifest has %zu layers (1 to %u, AL_LIMIT_FILES_PER_MODEL)",
                        json_array_size(layers), AL_LIMIT_FILES_PER_MODEL);
        goto out;
    }
    uint64_t total = 0;
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l) total += (uint64_t)json_integer_value(json_object_get(l, "size"));
    al_imp_progress(&im, total);
    /* The config: proven, not kept (its facts are the GGUF's). */
    const char *cd = json_string_value(json_object_get(cfg, "digest"));
    json_int_t cs = json_integer_value(json_object_get(cfg, "size"));
    char *ctext = NULL;
    size_t clen = 0;
    int cfd = -1;
    if (!(rc = open_blob(root, cd, &cfd, err)))
        rc = al_imp_read_capped(cfd, "the config", AL_LIMIT_MANIFEST, "AL_LIMIT_MANIFEST", &ctext, &clen, err);
    if (cfd >= 0)
        close(cfd);
    if (!rc)
        rc = al_imp_check_mem("the config", ctext, clen, cd, cs < 0 ? UINT64_MAX : (uint64_t)cs, err);
    free(ctext);
    if (rc || (rc = read_layers(&im, root, layers, card, mts, err)))
        goto out;
    json_object_set_new(card, "source", json_string(im.source));
    imp = json_pack("{s:s, s:s, s:s, s:s, s:O}", "from", "ollama", "name", im.source + strlen("ollama://"), "path",
                    abs, "manifest", res->manifest, "media_types", mts);
    im.g.card = json_dumps(card, JSON_COMPACT | JSON_SORT_KEYS);
    im.g.import = imp ? json_dumps(imp, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (!im.g.card || !im.g.import) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < json_array_size(mts); k++) {
        size_t n = strlen(res->media_types);
        snprintf(res->media_types + n, sizeof res->media_types - n, "%s%s", n ? "," : "",
                 json_string_value(json_array_get(mts, k)));
    }
    rc = al_imp_finish(&im, err);
out:
    if (fd >= 0)
        close(fd);
    close(root);
    free(man);
    json_decref(root_j);
    json_decref(card);
    json_decref(mts);
    json_decref(imp);
    return al_imp_end(&im, rc, err);
}
