/* bundle_int.h: private to src/bundle. */
#ifndef AL_BUNDLE_BUNDLE_INT_H
#define AL_BUNDLE_BUNDLE_INT_H

#include "bundle/bundle.h"
#include "core/hash.h"
#include "core/time.h"

#define AL_BUNDLE_CHECKSUMS "checksums.txt"
#define AL_BUNDLE_BLOB_DIR  "blobs/sha256/"
#define AL_BUNDLE_DELTA_JSON "delta.json"   /* a delta bundle's routes (docs/internals/delta.md) */
#define AL_BUNDLE_DELTA_DIR  "delta/"       /* its patches: delta/<hex of the result file> */

/* One line of checksums.txt. */
struct al_sum {
    char hex[AL_SHA256_HEX + 1];
    char name[AL_LIMIT_FILE_NAME + 1];
    bool seen; /* an entry of this name was found */
};

/* Parses sha256sum output ("<hex>  <name>" or "<hex> *<name>" lines).
 * Names are normalized (a leading "./" dropped) and must be safe relative
 * paths; duplicates and malformed lines are refused. *sums is malloc'd. */
enum al_rc al_sums_parse(const char *text, size_t len, struct al_sum **sums, size_t *n, struct al_err *err);
struct al_sum *al_sums_find(struct al_sum *sums, size_t n, const char *name);

/* The archive name of a blob, AL_BUNDLE_BLOB_DIR "<hex>", into out;
 * AL_ERR_INVALID when digest is not a sha256 digest string. */
enum al_rc al_bundle_blob_name(const char *digest, char out[AL_LIMIT_FILE_NAME + 1], struct al_err *err);

/* The kind of signature file a name is: 'm' minisign, 'g' OpenPGP, 0 none. */
char al_bundle_sig_kind(const char *name);

#endif

/* ---- ingest state, shared by ingest.c (the archive pass), sigs.c
 * (signatures, policy) and commit.c (the final checks and the commit) ---- */
#include "oci/oci.h"
#include "store/store.h"
#include "trust/trust.h"

struct al_ing_entry {
    char name[AL_LIMIT_FILE_NAME + 1];
    char digest[AL_DIGEST_SIZE];
    uint64_t size;
    struct al_blob_writer *w; /* uncommitted; NULL in a dry run */
    char *mem;                /* a copy of a small entry (index.json, manifests), or NULL */
    size_t mem_len;
    unsigned char head[4];    /* the first bytes (a weight's magic, checked in a dry run too) */
    size_t head_len;
    bool exec;                /* the tar entry had an executable bit */
    struct al_gguf_value_stream *vs;     /* the value scan while it is written (values.c) */
    struct al_gguf_value_report *values; /* its report when it followed the whole entry: the
                                            scan gate then does not read the file again */
};

/* The tensor-value scan of an entry as it is written (gguf.h,
 * al_gguf_value_stream): begin with the entry's size (best effort: out of
 * memory or a dry run leaves the gate to read the file), feed what is
 * written, end when the entry is whole. Freed with the ingest. */
void al_ing_values_begin(struct al_ing_entry *en, uint64_t size);
void al_ing_values_feed(struct al_ing_entry *en, const void *data, size_t len);
void al_ing_values_end(struct al_ing_entry *en);
void al_ing_values_free(struct al_ing_entry *en);

struct al_ing_sig {
    char name[64];
    char kind; /* 'm' or 'g' */
    char *text;
    size_t len;
};

/* A delta bundle's delta.json, once parsed (delta.c). */
struct al_ing_dfile {
    char path[AL_LIMIT_FILE_NAME + 1];
    char digest[AL_DIGEST_SIZE];
    uint64_t size;
    char via;                          /* 'b' base, 'p' patch, 'w' whole */
    char base_file[AL_DIGEST_SIZE];    /* a patch's base file */
    char patch[AL_LIMIT_FILE_NAME + 1]; /* a patch's entry, delta/<hex> */
};

struct al_ing_delta {
    bool on;                           /* the bundle carries delta.json */
    char base[AL_DIGEST_SIZE];         /* the base manifest it names */
    char base_ref[AL_LIMIT_NAME + AL_LIMIT_TAG + 2];
    struct al_file *bfiles;            /* the base's files it names */
    size_t bn;
    struct al_ing_dfile *files;        /* the result's files, in manifest order */
    size_t n;
    struct al_version found;           /* the base found in the store */
    bool have_found;
};

struct al_ing {
    struct al_repo *r;
    const struct al_bundle_opts *o;
    struct al_bundle_report *rep;
    struct al_trust trust;
    struct al_ing_entry *ents;
    size_t n_ents;
    char *sums_text;
    size_t sums_len;
    struct al_sum *sums;
    size_t n_sums;
    struct al_ing_sig sigs[AL_BUNDLE_MAX_SIGS];
    size_t n_sigs;
    bool sigs_checked;
    uint64_t max_entry, max_total, total, kept;
    struct al_oci_manifest man; /* a native bundle's manifest, once parsed */
    bool have_man;
    struct al_ing_entry *man_entry, *cfg_entry;
    char checks[512];
    char *scan;               /* the scan record of the files (al_scan_record_json), once scanned */
    char *scan_refused;       /* the record of the dangerous file that refused the ingest, or NULL */
    char *license;            /* the license decision's record (al_bundle_license_json), once decided */
    bool license_refused;     /* the license refused the ingest: "license-refused" */
    struct al_ing_delta delta;
    /* An import (import.c): a local operator action like add, unsigned by
     * nature; no trust policy applies, the events are "import" and
     * "import-refused", the version's model card is card, and the event
     * records import (JSON object text: where it came from). */
    bool local;
    char *card;
    char *import;
};

/* Entries an ingest may hold: the bundle's, and the files a delta rebuilds. */
#define AL_ING_MAX_ENTRIES (2u * AL_BUNDLE_MAX_ENTRIES)

/* delta.c: parses delta.json (when the bundle has one) against the manifest. */
enum al_rc al_ing_parse_delta(struct al_ing *g, struct al_err *err);
/* True when name is an entry a delta bundle may carry besides blobs. */
bool al_ing_delta_entry(const struct al_ing *g, const char *name);
/* True when the delta provides the layer with this digest (from the base or a patch). */
bool al_ing_delta_provides(const struct al_ing *g, const char *digest);
/* Finds the base in the store (by manifest, else by the same files);
 * AL_ERR_NOT_FOUND naming it when absent, AL_ERR_VERIFY when the store has
 * another version under its name and tag. */
enum al_rc al_ing_delta_base(struct al_ing *g, struct al_err *err);
/* Rebuilds every patched file into an uncommitted blob, checked against the
 * signed manifest's digest; adds each as an entry blobs/sha256/<hex>. */
enum al_rc al_ing_delta_apply(struct al_ing *g, struct al_err *err);
/* The "delta" object of the provenance (a new reference), or NULL when not a delta. */
struct json_t;
struct json_t *al_ing_delta_json(const struct al_ing *g);
void al_ing_delta_release(struct al_ing_delta *d);

void al_ing_check(struct al_ing *g, const char *what);
/* Verifies every signature over checksums.txt and applies revocation; refuses
 * when no trusted key signed. Fills rep->signers. */
enum al_rc al_ing_check_sigs(struct al_ing *g, struct al_err *err);
/* Applies the model-name patterns and the threshold for the final name. */
enum al_rc al_ing_check_policy(struct al_ing *g, const char *name, struct al_err *err);
/* Parses index.json and the manifest of a native bundle when both are in. */
enum al_rc al_ing_parse_native(struct al_ing *g, struct al_err *err);
/* After the archive pass: every remaining check, then the commit (unless a
 * dry run). */
enum al_rc al_ing_finish(struct al_ing *g, const char *source, struct al_err *err);
/* Records the refusal (not in a dry run) whose code is why and whose message
 * is in err. Returns why when the "ingest-refused" event is on record;
 * otherwise the code of that failure, with err saying both what was refused
 * and that the refusal is not recorded: a lost record is never silent. */
enum al_rc al_ing_record_refusal(struct al_ing *g, const char *source, enum al_rc why, struct al_err *err);
struct al_ing_entry *al_ing_find(struct al_ing *g, const char *name);
/* The default cap on one entry and on all: the store's free space less a margin. */
uint64_t al_ing_default_cap(struct al_repo *r);
/* pull.c: a new entry whose content is in memory (written to a blob writer
 * too, checked against checksums.txt when there is one). */
enum al_rc al_ing_add_mem(struct al_ing *g, const char *name, const char *data, size_t len, struct al_err *err);
/* pull.c: the file name of layer i of a foreign manifest (ModelPack, Docker
 * Model Runner, ORAS): its org.cncf.model.filepath or
 * org.opencontainers.image.title annotation when safe, else model.gguf
 * (model-<i>.gguf) for a GGUF or weight media type, else layer-<i>. */
void al_ing_layer_name(struct json_t *layer, size_t i, char *out, size_t size);
/* Frees what g holds; uncommitted writers remove their tmp files. */
void al_ing_release(struct al_ing *g);

/* ---- the signature referrer artifact (referrer.c) ---- */
#define AL_MT_BUNDLE_FILE      "application/vnd.airlock.bundle.file.v1"
#define AL_BUNDLE_EMPTY_DIGEST "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" /* "{}" */

/* One small file of a bundle in memory, named as in the bundle. */
struct al_bundle_part {
    char name[AL_LIMIT_FILE_NAME + 1];
    char *data;
    size_t len;
    char digest[AL_DIGEST_SIZE];
};
/* The referrer manifest over the parts not under blobs/ (malloc'd canonical
 * JSON; NULL when out of memory). */
char *al_bundle_referrer_json(const struct al_bundle_part *p, size_t n, const char *subject, uint64_t subject_size);
/* Frees n parts' data and the array (NULL is a no-op). */
void al_bundle_parts_free(struct al_bundle_part *p, size_t n);

/* What al_ing_keep_referrer stored: the artifact's manifest and its blobs
 * (blobs malloc'd, the caller frees it). referrer "" when nothing was kept. */
struct al_ing_kept {
    char referrer[AL_DIGEST_SIZE];
    char (*blobs)[AL_DIGEST_SIZE];
    size_t n;
};
/* Stores the signatures a native signed bundle (or pull) brought as a
 * referrer artifact of manifest: its files and its manifest as blobs (they
 * stay unreferenced until the commit records them). Nothing is kept, and
 * AL_OK, for an unsigned, plain or delta bundle. */
enum al_rc al_ing_keep_referrer(struct al_ing *g, const char *manifest, uint64_t manifest_size,
                                struct al_ing_kept *out, struct al_err *err);
/* Reads a kept referrer artifact back from the store: its files (named by
 * their titles, each proven against its digest) into *parts (malloc'd; free
 * with al_bundle_parts_free), the subject's size into *subject_size.
 * AL_ERR_CORRUPT when it is not a signature artifact of subject. */
enum al_rc al_bundle_referrer_load(struct al_repo *r, const char *digest, const char *subject,
                                   struct al_bundle_part **parts, size_t *n, uint64_t *subject_size,
                                   struct al_err *err);
