/*
 * oci.h: OCI manifests for model versions, with CNCF ModelPack media types,
 * and the store's index.json. Pure functions over JSON text: no I/O.
 *
 * A model version is an OCI image manifest (artifactType
 * application/vnd.cncf.model.manifest.v1+json) whose config is a ModelPack
 * model config and whose layers are the version's files, each named by the
 * annotation org.cncf.model.filepath. JSON is written canonically (sorted
 * keys, compact), so the same inputs give the same digest.
 */
#ifndef AL_OCI_OCI_H
#define AL_OCI_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/limits.h"

#define AL_MT_MANIFEST      "application/vnd.oci.image.manifest.v1+json"
#define AL_MT_INDEX         "application/vnd.oci.image.index.v1+json"
#define AL_MT_MODEL         "application/vnd.cncf.model.manifest.v1+json"
#define AL_MT_MODEL_CONFIG  "application/vnd.cncf.model.config.v1+json"
#define AL_MT_WEIGHT        "application/vnd.cncf.model.weight.v1.raw"
#define AL_MT_WEIGHT_CONFIG "application/vnd.cncf.model.weight.config.v1.raw"
#define AL_MT_DOC           "application/vnd.cncf.model.doc.v1.raw"
#define AL_MT_CODE          "application/vnd.cncf.model.code.v1.raw"
#define AL_ANN_FILEPATH     "org.cncf.model.filepath"
#define AL_ANN_REF_NAME     "org.opencontainers.image.ref.name"
#define AL_ANN_SEQUENCE     "io.airlock.sequence"
#define AL_ANN_EXPIRES      "io.airlock.expires"
#define AL_ANN_PREVIOUS     "io.airlock.previous"
#define AL_ANN_LICENSE_ACK  "io.airlock.license-ack" /* pack --ack-license: the license acknowledged */
#define AL_ANN_CARD         "io.airlock.card" /* the model card whole (compact JSON); its ModelPack fields are
                                                 also in the config's descriptor */
#define AL_ANN_ADAPTER_TYPE "io.airlock.adapter.type" /* an adapter version: "lora" */
#define AL_ANN_ADAPTER_BASE "io.airlock.adapter.base" /* the digest of the base's weight file */
#define AL_ANN_QUANTIZED    "io.airlock.quantized" /* a quantized version's provenance: compact JSON (source,
                                                     source_ref, source_weights, type, llama_cpp) */
#define AL_ANN_FINETUNED    "io.airlock.finetuned" /* a fine-tuned version's provenance: compact JSON (base,
                                                     data digests, hyperparameters, losses, operator) */

struct al_oci_layer {
    char path[AL_LIMIT_FILE_NAME + 1];
    char digest[AL_DIGEST_SIZE];
    uint64_t size;
    char media_type[96];
};

/* What goes into a version's config and manifest. Strings may be "" . */
struct al_oci_model {
    const char *name;
    const char *version;      /* the tag it was created with */
    const char *created;      /* ISO 8601 */
    const char *architecture; /* from the GGUF, e.g. "llama" */
    const char *format;       /* "gguf" */
    const char *param_size;   /* e.g. "292.8K" */
    const char *precision;    /* e.g. "F32" */
    const char *quantization; /* e.g. "Q4_0" */
    const char *card_json;    /* a model card (JSON object text) or NULL */
    int64_t seq;              /* monotonic sequence number, 0 when none */
    const char *expires;      /* ISO 8601 expiry of a bundle's manifest, or NULL */
    const char *previous;     /* digest of the previous version's manifest, or NULL */
    const char *license_ack;  /* the license the packer acknowledged (pack --ack-license), or NULL */
    /* An adapter version: its type ("lora") and the digest of the base's
     * weight file it is bound to (manifest annotations, and "io.airlock.adapter"
     * in the config); NULL for a model. */
    const char *adapter_type;
    const char *adapter_base;
    const char *quantized;    /* AL_ANN_QUANTIZED's text (airlock quantize), or NULL */
    const char *finetuned;    /* AL_ANN_FINETUNED's text (airlock finetune), or NULL */
    const struct al_oci_layer *layers;
    size_t n_layers;
};

/* The media type for a file of a model version, from its name. */
const char *al_oci_media_type_for(const char *path);

/* True when path is a safe relative file name inside a version: no "..",
 * no leading '/', no empty or "." components, no control characters. */
bool al_oci_path_safe(const char *path);

/* Canonical config JSON (malloc'd). */
enum al_rc al_oci_config_build(const struct al_oci_model *m, char **out, struct al_err *err);
/* Canonical manifest JSON (malloc'd) referencing a stored config. */
enum al_rc al_oci_manifest_build(const struct al_oci_model *m, const char *config_digest, uint64_t config_size,
                                 char **out, struct al_err *err);

/* A parsed manifest. layers is malloc'd; free with al_oci_manifest_release. */
struct al_oci_manifest {
    char config_digest[AL_DIGEST_SIZE];
    uint64_t config_size;
    struct al_oci_layer *layers;
    size_t n_layers;
    char created[40];
    /* Annotations of a bundle's manifest; "" / 0 when absent. */
    char title[AL_LIMIT_NAME + 1];   /* org.opencontainers.image.title */
    char version[AL_LIMIT_TAG + 1];  /* org.opencontainers.image.version */
    int64_t seq;                     /* io.airlock.sequence (-1 when malformed) */
    char expires[40];                /* io.airlock.expires */
    char previous[AL_DIGEST_SIZE];   /* io.airlock.previous */
    char license_ack[72];            /* io.airlock.license-ack ("" when absent or too long) */
    char *card;                      /* AL_ANN_CARD, a JSON object's text (malloc'd), NULL when absent or not one */
    char adapter_type[16];           /* io.airlock.adapter.type ("" when absent or too long) */
    char adapter_base[AL_DIGEST_SIZE]; /* io.airlock.adapter.base ("" when absent or not a digest) */
};
/* Parses and validates (media types, digests, safe unique paths, caps). */
enum al_rc al_oci_manifest_parse(const char *json, size_t len, struct al_oci_manifest *out, struct al_err *err);
void al_oci_manifest_release(struct al_oci_manifest *m);

/* One entry of index.json. */
struct al_oci_index_entry {
    char ref_name[AL_LIMIT_REF + 1]; /* name:tag, or name when untagged */
    char digest[AL_DIGEST_SIZE];
    uint64_t size;
    const char *tags; /* comma-separated, all tags of the version */
    bool active;
};
enum al_rc al_oci_index_build(const struct al_oci_index_entry *e, size_t n, char **out, struct al_err *err);

/* One entry of index.json as read back (al_oci_index_parse). */
struct al_oci_index_item {
    char ref_name[AL_LIMIT_REF + 1];
    char digest[AL_DIGEST_SIZE];
    uint64_t size;
    char tags[512]; /* comma-separated, "" when none */
    bool active;
};
/* Parses index.json as al_oci_index_build writes it (at most
 * AL_LIMIT_INDEX_JSON bytes); *items is malloc'd, in file order. Every
 * descriptor is checked: a valid digest, a size, a ref name within
 * AL_LIMIT_REF; AL_ERR_INVALID naming the first bad one. */
enum al_rc al_oci_index_parse(const char *json, size_t len, struct al_oci_index_item **items, size_t *n,
                              struct al_err *err);

#endif
