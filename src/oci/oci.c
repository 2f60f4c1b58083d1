/*
 * oci.c: building and parsing manifests with jansson. Parsing is defensive:
 * the manifest may come from a bundle, so every field is type-checked and
 * every size capped before anything trusts it.
 */
#include "oci/oci.h"

#include <jansson.h>
#include <stdlib.h>

#include "core/time.h"

#define JSON_OUT_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

const char *al_oci_media_type_for(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    const char *ext = dot ? dot + 1 : "";
    if (!strcasecmp(ext, "gguf") || !strcasecmp(ext, "safetensors") || !strcasecmp(ext, "bin"))
        return AL_MT_WEIGHT;
    if (!strncasecmp(base, "tokenizer", 9) || !strcasecmp(base, "config.json") ||
        !strcasecmp(base, "generation_config.json") || !strcasecmp(ext, "jinja") || !strcasecmp(ext, "model"))
        return AL_MT_WEIGHT_CONFIG;
    if (!strcasecmp(ext, "py") || !strcasecmp(ext, "sh") || !strcasecmp(ext, "gbnf") || !strcasecmp(ext, "tmpl"))
        return AL_MT_CODE;
    return AL_MT_DOC;
}

bool al_oci_path_safe(const char *path)
{
    size_t n = strlen(path);
    if (n == 0 || n > AL_LIMIT_FILE_NAME || path[0] == '/')
        return false;
    const char *p = path;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\')
                return false;
        p += len;
        if (*p == '/')
            p++;
        if (slash && *p == '\0')
            return false; /* trailing slash */
    }
    return true;
}

static enum al_rc dump(json_t *root, char **out, struct al_err *err)
{
    *out = root ? json_dumps(root, JSON_OUT_FLAGS) : NULL;
    json_decref(root);
    if (*out == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "cannot serialize JSON");
    return AL_OK;
}

static void set_str(json_t *obj, const char *key, const char *val)
{
    if (val && *val)
        json_object_set_new(obj, key, json_string(val));
}

static bool strings_array(json_t *v)
{
    size_t i;
    json_t *x;
    if (!json_is_array(v))
        return false;
    json_array_foreach(v, i, x) if (!json_is_string(x)) return false;
    return true;
}

/* The card's value for a ModelPack array of strings: KEY as such, or the
 * singular ALT (a string) as a one-item array; NULL when neither fits. */
static json_t *card_strings(json_t *card, const char *key, const char *alt)
{
    json_t *v = json_object_get(card, key);
    if (strings_array(v))
        return json_incref(v);
    v = json_object_get(card, alt);
    if (json_is_string(v))
        return json_pack("[O]", v);
    return strings_array(v) ? json_incref(v) : NULL;
}

/* The card's fields that the ModelPack descriptor has, in its own names
 * and types: licenses (or license), authors (or author), sourceURL (or
 * source, origin), createdAt (or date; any form al_time_parse reads, written
 * as RFC 3339), family, title, description, vendor, docURL, revision,
 * datasetsURL. A field of another type is left to the card annotation. */
static void card_descriptor(json_t *card, json_t *desc)
{
    static const char *const strs[] = {"family", "title", "description", "vendor", "docURL", "revision"};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        json_t *v = json_object_get(card, strs[i]);
        if (json_is_string(v) && json_string_length(v))
            json_object_set(desc, strs[i], v);
    }
    static const char *const arrs[][2] = {{"licenses", "license"}, {"authors", "author"},
                                          {"datasetsURL", "datasetURL"}};
    for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) {
        json_t *v = card_strings(card, arrs[i][0], arrs[i][1]);
        if (v)
            json_object_set_new(desc, arrs[i][0], v);
    }
    static const char *const src[] = {"sourceURL", "source", "origin"};
    for (size_t i = 0; i < sizeof src / sizeof src[0]; i++) {
        json_t *v = json_object_get(card, src[i]);
        if (json_is_string(v) && json_string_length(v)) {
            json_object_set(desc, "sourceURL", v);
            break;
        }
    }
    static const char *const date[] = {"createdAt", "date"};
    for (size_t i = 0; i < sizeof date / sizeof date[0]; i++) {
        int64_t t = 0;
        char iso[AL_TIME_SIZE];
        const char *v = json_string_value(json_object_get(card, date[i]));
        if (v && al_time_parse(v, &t, NULL) == AL_OK && al_time_format(t, 0, AL_TIME_SECONDS, iso, sizeof iso)) {
            json_object_set_new(desc, "createdAt", json_string(iso));
            break;
        }
    }
}

/* The card as the manifest's AL_ANN_CARD: canonical compact JSON, or NULL. */
static char *card_annotation(const char *card_json)
{
    if (card_json == NULL || !*card_json)
        return NULL;
    json_t *card = json_loads(card_json, JSON_REJECT_DUPLICATES, NULL);
    char *s = json_is_object(card) ? json_dumps(card, JSON_OUT_FLAGS) : NULL;
    json_decref(card);
    return s;
}

enum al_rc al_oci_config_build(const struct al_oci_model *m, char **out, struct al_err *err)
{
    json_t *root = json_object(), *desc = json_object(), *cfg = json_object(), *fs = json_object();
    json_t *ids = json_array();
    set_str(desc, "name", m->name);
    set_str(desc, "version", m->version);
    set_str(desc, "createdAt", m->created);
    if (m->card_json && *m->card_json) {
        json_error_t je;
        json_t *card = json_loads(m->card_json, JSON_REJECT_DUPLICATES, &je);
        if (card == NULL || !json_is_object(card)) {
            json_decref(card);
            json_decref(root), json_decref(desc), json_decref(cfg), json_decref(fs), json_decref(ids);
            return al_err_set(err, AL_ERR_INVALID, "model card is not a JSON object: %s", je.text);
        }
        /* The config holds the ModelPack fields only (its schema allows no
         * others); the card whole is the manifest's AL_ANN_CARD. */
        card_descriptor(card, desc);
        json_decref(card);
    }
    set_str(cfg, "architecture", m->architecture);
    set_str(cfg, "format", m->format);
    set_str(cfg, "paramSize", m->param_size);
    set_str(cfg, "precision", m->precision);
    set_str(cfg, "quantization", m->quantization);
    for (size_t i = 0; i < m->n_layers; i++)
        json_array_append_new(ids, json_string(m->layers[i].digest));
    json_object_set_new(fs, "type", json_string("layers"));
    json_object_set_new(fs, "diffIds", ids);
    if (m->adapter_base && *m->adapter_base)
        json_object_set_new(root, "io.airlock.adapter",
                            json_pack("{s:s, s:s}", "type", m->adapter_type ? m->adapter_type : "lora",
                                      "baseWeights", m->adapter_base));
    json_object_set_new(root, "descriptor", desc);
    json_object_set_new(root, "config", cfg);
    json_object_set_new(root, "modelfs", fs);
    return dump(root, out, err);
}

static json_t *descriptor(const char *mt, const char *digest, uint64_t size)
{
    return json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", digest, "size", (json_int_t)size);
}

enum al_rc al_oci_manifest_build(const struct al_oci_model *m, const char *config_digest, uint64_t config_size,
                                 char **out, struct al_err *err)
{
    json_t *root = json_object(), *layers = json_array(), *ann = json_object();
    json_object_set_new(root, "schemaVersion", json_integer(2));
    json_object_set_new(root, "mediaType", json_string(AL_MT_MANIFEST));
    json_object_set_new(root, "artifactType", json_string(AL_MT_MODEL));
    json_object_set_new(root, "config", descriptor(AL_MT_MODEL_CONFIG, config_digest, config_size));
    for (size_t i = 0; i < m->n_layers; i++) {
        const struct al_oci_layer *l = &m->layers[i];
        json_t *d = descriptor(l->media_type, l->digest, l->size);
        json_object_set_new(d, "annotations", json_pack("{s:s}", AL_ANN_FILEPATH, l->path));
        json_array_append_new(layers, d);
    }
    json_object_set_new(root, "layers", layers);
    set_str(ann, "org.opencontainers.image.created", m->created);
    set_str(ann, "org.opencontainers.image.title", m->name);
    set_str(ann, "org.opencontainers.image.version", m->version);
    if (m->seq > 0) {
        char seq[32];
        snprintf(seq, sizeof seq, "%" PRId64, m->seq);
        json_object_set_new(ann, AL_ANN_SEQUENCE, json_string(seq));
    }
    set_str(ann, AL_ANN_EXPIRES, m->expires);
    set_str(ann, AL_ANN_PREVIOUS, m->previous);
    set_str(ann, AL_ANN_LICENSE_ACK, m->license_ack);
    char *card = card_annotation(m->card_json);
    set_str(ann, AL_ANN_CARD, card);
    free(card);
    if (m->adapter_base && *m->adapter_base) {
        set_str(ann, AL_ANN_ADAPTER_TYPE, m->adapter_type ? m->adapter_type : "lora");
        set_str(ann, AL_ANN_ADAPTER_BASE, m->adapter_base);
    }
    set_str(ann, AL_ANN_QUANTIZED, m->quantized);
    set_str(ann, AL_ANN_FINETUNED, m->finetuned);
    json_object_set_new(root, "annotations", ann);
    return dump(root, out, err);
}

static enum al_rc parse_descriptor(json_t *d, const char *what, char digest[AL_DIGEST_SIZE], uint64_t *size,
                                   const char **mt, struct al_err *err)
{
    json_t *jd = json_object_get(d, "digest"), *js = json_object_get(d, "size"), *jm = json_object_get(d, "mediaType");
    if (!json_is_object(d) || !json_is_string(jd) || !json_is_integer(js) || !json_is_string(jm))
        return al_err_set(err, AL_ERR_INVALID, "manifest: %s is not a valid descriptor", what);
    if (!al_digest_valid(json_string_value(jd)))
        return al_err_set(err, AL_ERR_INVALID, "manifest: %s has an invalid digest", what);
    if (json_integer_value(js) < 0)
        return al_err_set(err, AL_ERR_INVALID, "manifest: %s has a negative size", what);
    snprintf(digest, AL_DIGEST_SIZE, "%s", json_string_value(jd));
    *size = (uint64_t)json_integer_value(js);
    *mt = json_string_value(jm);
    return AL_OK;
}

enum al_rc al_oci_manifest_parse(const char *text, size_t len, struct al_oci_manifest *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    if (len > AL_LIMIT_MANIFEST)
        return al_err_set(err, AL_ERR_LIMIT, "manifest is over %u bytes (AL_LIMIT_MANIFEST)", AL_LIMIT_MANIFEST);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    enum al_rc rc = AL_OK;
    const char *mt = NULL;
    if (root == NULL || !json_is_object(root)) {
        rc = al_err_set(err, AL_ERR_INVALID, "manifest is not valid JSON: %s (line %d)", je.text, je.line);
        goto out;
    }
    if (json_integer_value(json_object_get(root, "schemaVersion")) != 2) {
        rc = al_err_set(err, AL_ERR_INVALID, "manifest: schemaVersion is not 2");
        goto out;
    }
    if ((rc = parse_descriptor(json_object_get(root, "config"), "config", out->config_digest, &out->config_size, &mt,
                               err)))
        goto out;
    if (strcmp(mt, AL_MT_MODEL_CONFIG) != 0) {
        rc = al_err_set(err, AL_ERR_INVALID, "manifest: config media type '%s' is not a model config", mt);
        goto out;
    }
    json_t *layers = json_object_get(root, "layers");
    if (!json_is_array(layers) || json_array_size(layers) > AL_LIMIT_FILES_PER_MODEL) {
        rc = al_err_set(err, AL_ERR_INVALID, "manifest: layers missing or more than %u (AL_LIMIT_FILES_PER_MODEL)",
                        AL_LIMIT_FILES_PER_MODEL);
        goto out;
    }
    out->n_layers = json_array_size(layers);
    out->layers = calloc(out->n_layers ? out->n_layers : 1, sizeof *out->layers);
    if (out->layers == NULL) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < out->n_layers; i++) {
        struct al_oci_layer *l = &out->layers[i];
        json_t *d = json_array_get(layers, i);
        if ((rc = parse_descriptor(d, "a layer", l->digest, &l->size, &mt, err)))
            goto out;
        snprintf(l->media_type, sizeof l->media_type, "%s", mt);
        const char *fp = json_string_value(json_object_get(json_object_get(d, "annotations"), AL_ANN_FILEPATH));
        if (fp == NULL || !al_oci_path_safe(fp)) {
            rc = al_err_set(err, AL_ERR_INVALID, "manifest: layer %zu has a missing or unsafe file path", i);
            goto out;
        }
        snprintf(l->path, sizeof l->path, "%s", fp);
        for (size_t j = 0; j < i; j++)
            if (strcmp(out->layers[j].path, l->path) == 0) {
                rc = al_err_set(err, AL_ERR_INVALID, "manifest: file '%s' is listed twice", l->path);
                goto out;
            }
    }
    json_t *ann = json_object_get(root, "annotations");
    const char *created = json_string_value(json_object_get(ann, "org.opencontainers.image.created"));
    snprintf(out->created, sizeof out->created, "%s", created ? created : "");
    const char *title = json_string_value(json_object_get(ann, "org.opencontainers.image.title"));
    const char *version = json_string_value(json_object_get(ann, "org.opencontainers.image.version"));
    const char *expires = json_string_value(json_object_get(ann, AL_ANN_EXPIRES));
    const char *previous = json_string_value(json_object_get(ann, AL_ANN_PREVIOUS));
    const char *seq = json_string_value(json_object_get(ann, AL_ANN_SEQUENCE));
    const char *ack = json_string_value(json_object_get(ann, AL_ANN_LICENSE_ACK));
    snprintf(out->license_ack, sizeof out->license_ack, "%s", ack && strlen(ack) < sizeof out->license_ack ? ack : "");
    /* The card: a JSON object, under the manifest's own cap; else absent. */
    const char *card = json_string_value(json_object_get(ann, AL_ANN_CARD));
    json_t *cj = card ? json_loads(card, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (json_is_object(cj) && (out->card = strdup(card)) == NULL)
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    json_decref(cj);
    const char *atype = json_string_value(json_object_get(ann, AL_ANN_ADAPTER_TYPE));
    const char *abase = json_string_value(json_object_get(ann, AL_ANN_ADAPTER_BASE));
    snprintf(out->adapter_type, sizeof out->adapter_type, "%s",
             atype && strlen(atype) < sizeof out->adapter_type ? atype : "");
    snprintf(out->adapter_base, sizeof out->adapter_base, "%s", abase && al_digest_valid(abase) ? abase : "");
    snprintf(out->title, sizeof out->title, "%s", title ? title : "");
    snprintf(out->version, sizeof out->version, "%s", version ? version : "");
    snprintf(out->expires, sizeof out->expires, "%s", expires ? expires : "");
    snprintf(out->previous, sizeof out->previous, "%s", previous && al_digest_valid(previous) ? previous : "");
    if (seq) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(seq, &end, 10);
        out->seq = (errno || end == seq || *end || v < 0) ? -1 : (int64_t)v;
    }
out:
    json_decref(root);
    if (rc)
        al_oci_manifest_release(out);
    return rc;
}

void al_oci_manifest_release(struct al_oci_manifest *m)
{
    free(m->layers);
    m->layers = NULL;
    m->n_layers = 0;
    free(m->card);
    m->card = NULL;
}

enum al_rc al_oci_index_build(const struct al_oci_index_entry *e, size_t n, char **out, struct al_err *err)
{
    json_t *root = json_object(), *list = json_array();
    json_object_set_new(root, "schemaVersion", json_integer(2));
    json_object_set_new(root, "mediaType", json_string(AL_MT_INDEX));
    for (size_t i = 0; i < n; i++) {
        json_t *d = descriptor(AL_MT_MANIFEST, e[i].digest, e[i].size);
        json_object_set_new(d, "artifactType", json_string(AL_MT_MODEL));
        json_t *ann = json_pack("{s:s}", AL_ANN_REF_NAME, e[i].ref_name);
        if (e[i].tags && *e[i].tags)
            json_object_set_new(ann, "io.airlock.tags", json_string(e[i].tags));
        if (e[i].active)
            json_object_set_new(ann, "io.airlock.active", json_string("true"));
        json_object_set_new(d, "annotations", ann);
        json_array_append_new(list, d);
    }
    json_object_set_new(root, "manifests", list);
    *out = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (*out == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "cannot serialize index.json");
    return AL_OK;
}

static enum al_rc index_item(json_t *d, size_t i, struct al_oci_index_item *it, struct al_err *err)
{
    const char *mt = NULL;
    enum al_rc rc = parse_descriptor(d, "an index.json entry", it->digest, &it->size, &mt, err);
    if (rc)
        return al_err_set(err, rc, "index.json: entry %zu is not a valid descriptor", i);
    json_t *ann = json_object_get(d, "annotations");
    const char *ref = json_string_value(json_object_get(ann, AL_ANN_REF_NAME));
    const char *tags = json_string_value(json_object_get(ann, "io.airlock.tags"));
    const char *active = json_string_value(json_object_get(ann, "io.airlock.active"));
    if (ref == NULL || strlen(ref) > AL_LIMIT_REF)
        return al_err_set(err, AL_ERR_INVALID, "index.json: entry %zu has no ref name of at most %u bytes", i,
                          AL_LIMIT_REF);
    if (tags && strlen(tags) >= sizeof it->tags)
        return al_err_set(err, AL_ERR_LIMIT, "index.json: entry %zu lists tags over %zu bytes", i,
                          sizeof it->tags - 1);
    snprintf(it->ref_name, sizeof it->ref_name, "%s", ref);
    snprintf(it->tags, sizeof it->tags, "%s", tags ? tags : "");
    it->active = active && strcmp(active, "true") == 0;
    return AL_OK;
}

enum al_rc al_oci_index_parse(const char *text, size_t len, struct al_oci_index_item **items, size_t *n,
                              struct al_err *err)
{
    *items = NULL;
    *n = 0;
    if (len > AL_LIMIT_INDEX_JSON)
        return al_err_set(err, AL_ERR_LIMIT, "index.json is over %u bytes (AL_LIMIT_INDEX_JSON)", AL_LIMIT_INDEX_JSON);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    json_t *list = json_object_get(root, "manifests");
    enum al_rc rc = AL_OK;
    if (!json_is_object(root) || !json_is_array(list)) {
        rc = al_err_set(err, AL_ERR_INVALID, "index.json is not an OCI image index (no manifests list)");
        goto out;
    }
    size_t count = json_array_size(list);
    *items = calloc(count ? count : 1, sizeof **items);
    if (*items == NULL) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < count && !rc; i++)
        rc = index_item(json_array_get(list, i), i, &(*items)[i], err);
    if (rc) {
        free(*items);
        *items = NULL;
    } else {
        *n = count;
    }
out:
    json_decref(root);
    return rc;
}
