/*
 * repo.h: the operations a user runs on the store, each one atomic: the
 * blob store (store/), the index (index/) and the manifests (oci/) moved in
 * step. A failed operation leaves the store and the index exactly as before
 * (blobs written for it may remain unreferenced until gc).
 *
 * The repo is the one door to the store and the index: every module above it
 * (bundle, trust, serve, rag, the CLI) reads and writes them through the
 * functions here, never through the lower layers' handles.
 *
 * Commit protocol for every change: blobs first (each proven against its
 * digest), then under the store's write lock one SQLite transaction with the
 * rows and the event, then index.json rewritten from the index. index.json is
 * derived: every later write and fsck bring it back in step after a crash.
 * Every event, also one that is the whole change (an ingest refused, a trust
 * change), is appended through this path: al_repo_commit_version,
 * al_repo_record_event or al_repo_append_event. A failure to record is
 * returned as an error, never dropped.
 *
 * Ownership and lifetimes:
 *  - struct al_repo is opaque; al_repo_open/al_repo_open_read give one,
 *    al_repo_free releases it (NULL is a no-op). *out must be NULL on entry
 *    and is set only on success.
 *  - const char * arguments are borrowed for the call.
 *  - Returned arrays (*rows, *files, *events) are malloc'd and the caller's:
 *    free() them, events with al_index_events_free (their details are
 *    malloc'd too), a struct al_weights with al_repo_weights_release.
 *  - A returned borrowed pointer (al_repo_home) lives as long as the repo.
 *  - Paths filled into caller buffers name blobs in the store; the file
 *    stays until gc removes it once no version references it.
 *
 * Threads: one struct al_repo belongs to one thread at a time. Its index
 * connection is opened without SQLite's mutex, so a caller that shares a
 * repo between threads serializes every call on it (the model manager in
 * serve/ holds its mutex around each). Separate repos, in one process or
 * many, may work on the same store at once: the store's file locks are
 * taken per repo (per open file), so they exclude each other like
 * processes. Functions without a repo argument (al_repo_facts*,
 * al_repo_pick_weights, al_repo_weights_named, al_repo_ref_is_file,
 * al_repo_weights_info, al_repo_index_lost) may run on any thread.
 */
#ifndef AL_REPO_REPO_H
#define AL_REPO_REPO_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "gguf/gguf.h"
#include "index/index.h"
#include "store/store.h"

struct al_repo;

/* Opens the store and its index for reading and writing; with create, makes
 * the layout and the index when missing. AL_ERR_DENIED when the store cannot
 * be written (read-only file system, permissions).
 *
 * A lost index is never replaced by a fresh one: when airlock.db is missing,
 * empty or has no tables while the store holds blobs or an index.json, or
 * the index never recorded an event while index.json lists versions, the
 * store is damaged: AL_ERR_CORRUPT, a message that says to run
 * 'airlock fsck --repair', and nothing on disk changed. */
enum al_rc al_repo_open(const char *home, bool create, struct al_repo **out, struct al_err *err);
/* For commands that only read: like al_repo_open(home, false, ...) where the
 * store can be written; where it cannot, opens store and index read-only
 * (al_store_open_read, AL_INDEX_READ_ONLY), changing nothing on disk, and
 * every change through the repo then fails with AL_ERR_DENIED. */
enum al_rc al_repo_open_read(const char *home, struct al_repo **out, struct al_err *err);
bool al_repo_read_only(const struct al_repo *r);
void al_repo_free(struct al_repo *r);
/* The store's home directory; borrowed, valid as long as r. */
const char *al_repo_home(const struct al_repo *r);
/* The index, for the API key functions of access/ only: access sits on the
 * repo's own layer (the server's per-request check opens the index without
 * a repo), so it cannot call the repo, and key changes are rows plus an
 * event in one transaction of the index's own. Borrowed, valid as long as r.
 * Every other caller goes through the functions below. */
struct al_index *al_repo_index(struct al_repo *r);

/* Hook for a file being added: fills the version's config fields from the
 * file (the GGUF inspector), or leaves them empty. Returns AL_OK or an error
 * that refuses the add (a malformed GGUF). */
struct al_model_facts {
    char architecture[64], param_size[32], precision[32], quantization[32];
};

/* Reads what a weight file says about itself (GGUF header); empty facts for
 * other files. AL_ERR_INVALID for a malformed GGUF. */
enum al_rc al_repo_facts(const char *path, struct al_model_facts *facts, struct al_err *err);
/* The same for content at path known under another name (a bundle's entry in
 * its temporary file): name decides whether it must be a GGUF and is the
 * subject of every message. */
enum al_rc al_repo_facts_named(const char *path, const char *name, struct al_model_facts *facts, struct al_err *err);
/* The part of that check that needs only the first bytes, for a pass that
 * keeps no content (a bundle's verify): the first len bytes (up to 4) of a
 * weight file called name. AL_ERR_INVALID, with the message of
 * al_repo_facts, for a .gguf name without the GGUF magic. */
enum al_rc al_repo_facts_head(const char *name, const void *head, size_t len, struct al_err *err);

/* A check of the files of an add given by a layer above the repo: the CLI
 * passes the scan this way, since repo may not include scan (same layer).
 * check is called once per file, in order, after the repo's own checks
 * (a regular file, a GGUF header that parses) and before anything is
 * copied; an error it returns refuses the add with the store unchanged.
 * After the last file, record gives what the add event keeps of the checks:
 * *detail a JSON object text (kept under check_key in the event detail), and
 * optionally a second event in the same transaction (*note_kind, static,
 * and *note_detail, JSON object text); both texts malloc'd, freed by the
 * repo. Both run on the caller's thread. */
typedef enum al_rc al_add_check_fn(void *ud, const char *path, const char *name, struct al_err *err);
typedef enum al_rc al_add_record_fn(void *ud, char **detail, const char **note_kind, char **note_detail,
                                    struct al_err *err);

struct al_add_opts {
    const char *card_path;  /* model card JSON, or NULL */
    /* With base_ref: the version is a LoRA adapter bound to the weights of
     * that version (al_repo_adapter_fits checks the one GGUF among the
     * files against them first). A refusal by that check, or a base that
     * does not resolve, sets *adapter_refused (when non-NULL) so the caller
     * can record it (al_repo_record_refusal). */
    const char *base_ref;
    bool *adapter_refused;
    /* A version derived from another one by the layer above (airlock
     * quantize): a JSON object recorded as "quantized" in the add event
     * (source version, source weight digest, type, llama.cpp commit), or
     * NULL. An invalid object refuses the add (AL_ERR_INTERNAL). */
    const char *quantized_json;
    /* A version trained from another one (airlock finetune): a JSON object
     * recorded as "finetuned" in the add event and kept in the manifest
     * (AL_ANN_FINETUNED): base, data digests, hyperparameters, losses,
     * operator. NULL: none. An invalid object refuses the add. */
    const char *finetuned_json;
    bool no_activate;       /* leave the active version as it is */
    bool show_progress;
    al_add_check_fn *check; /* NULL: no check */
    al_add_record_fn *record;
    const char *check_key;  /* the event detail's key for record's detail ("scan"); NULL: the
                               record's members go into the detail beside files and tag */
    void *check_ud;
    /* The config's format when no file is a GGUF ("safetensors", "pickle",
     * ...; the CLI names it from the scan), or NULL. Read after check and
     * record ran, so they may fill the string it points to. */
    const char *format;
    /* spools[i] (spools non-NULL and the entry too): paths[i] is that
     * spool's file (al_repo_spool_path), already in the store's tmp/; it is
     * checked and scanned there like any file, then adopted where it lies
     * (hashed, then the blob writer's one commit) instead of copied. A
     * paths[i] other than the spool's path: AL_ERR_INTERNAL. */
    struct al_blob_writer *const *spools;
    /* names[i] (names non-NULL and the entry too): the file's name in the
     * version, in place of paths[i]'s base name (a spool's is blob.XXXXXX). */
    const char *const *names;
};

/* A spool: an empty file in r's store's tmp/ for a library that writes its
 * output to a path it opens itself (llama_model_quantize), so that
 * al_repo_add adopts the bytes instead of copying them (al_add_opts.spools).
 * It is a blob writer's file: flock'd while the spool lives, so no sweep
 * removes it; a crash leaves it unlocked, and the next al_store_open sweeps
 * it as debris. The store is unchanged until the add commits. *out must be
 * NULL; al_repo_spool_free removes the file unless an add committed it. */
enum al_rc al_repo_spool_new(struct al_repo *r, struct al_blob_writer **out, struct al_err *err);
/* The spool's file; borrowed until al_repo_spool_free. */
const char *al_repo_spool_path(const struct al_blob_writer *sp);
/* NULL is a no-op. */
void al_repo_spool_free(struct al_blob_writer *sp);

/* Imports files as a new version of NAME[:TAG] (TAG defaults to "latest").
 * Each file keeps its base name inside the version; names must be unique.
 * *out describes the new (or already present, *existed = true) version. */
enum al_rc al_repo_add(struct al_repo *r, const char *ref, const char *const *paths, size_t n_paths,
                       const struct al_add_opts *opts, struct al_version *out, bool *existed,
                       struct al_err *err);

/* A version whose blobs (files, config, manifest) are all in the store and
 * proven: the last step of add and ingest. Under the write lock and in one
 * transaction: records the version (or finds it already there: *existed),
 * points tag at it (when tag is non-NULL), activates it unless no_activate,
 * appends the event (kind, detail JSON) and the note event when given, and
 * rewrites index.json. The caller holds the gc lock shared
 * (al_repo_writer_begin) from before the blobs were written. */
struct al_version_commit {
    const char *name, *tag;
    const char *manifest;     /* digest */
    uint64_t manifest_size;
    const char *config;       /* digest */
    int64_t seq;
    const struct al_file *files;
    size_t n_files;
    bool no_activate;
    const char *event_kind;   /* "add", "ingest", ... */
    const char *event_detail; /* JSON object text */
    const char *note_kind;    /* a second event in the same transaction ("ingest-override"), or NULL */
    const char *note_detail;
    /* The signatures the version arrived with (ingest, pull): the digest of
     * a referrer artifact's manifest already in the store, or NULL, and the
     * blobs it lists (also stored); recorded with the version (also one
     * already there), so gc keeps them and push can send them on. */
    const char *referrer;
    const char (*referrer_blobs)[AL_DIGEST_SIZE];
    size_t n_referrer_blobs;
};
enum al_rc al_repo_commit_version(struct al_repo *r, const struct al_version_commit *c, struct al_version *out,
                                  bool *existed, struct al_err *err);

enum al_rc al_repo_tag(struct al_repo *r, const char *src_ref, const char *tag, struct al_err *err);
enum al_rc al_repo_untag(struct al_repo *r, const char *name, const char *tag, struct al_err *err);
enum al_rc al_repo_activate(struct al_repo *r, const char *ref, struct al_version *out, struct al_err *err);
/* Activates the version recorded before the active one. */
enum al_rc al_repo_rollback(struct al_repo *r, const char *name, struct al_version *out, struct al_err *err);
/* Removes one version (name:tag, name@digest) or every version of a model
 * (bare name). When the active version goes, the newest remaining one
 * becomes active. Blobs are left for gc. *removed counts versions. */
enum al_rc al_repo_rm(struct al_repo *r, const char *ref, size_t *removed, struct al_err *err);

/* ---- reading: versions, files, blobs, events ----
 * Each works on a read-only repo too. Refs are name, name:tag or
 * name@sha256:<hex>; an unknown name is AL_ERR_NOT_FOUND with close matches
 * in the message. */

/* The version a ref names. */
enum al_rc al_repo_resolve(struct al_repo *r, const char *ref, struct al_version *out, struct al_err *err);
/* Versions of one model (all models when model is NULL), oldest first;
 * *rows is malloc'd, the caller frees it. */
enum al_rc al_repo_list_versions(struct al_repo *r, const char *model, struct al_version **rows, size_t *n,
                                 struct al_err *err);
/* The files of v in their manifest order; *rows is malloc'd, the caller frees it. */
enum al_rc al_repo_list_files(struct al_repo *r, const struct al_version *v, struct al_file **rows, size_t *n,
                              struct al_err *err);
/* The version recorded just before v for the same model; AL_ERR_NOT_FOUND
 * when v is the oldest. */
enum al_rc al_repo_previous(struct al_repo *r, const struct al_version *v, struct al_version *out,
                            struct al_err *err);
/* The referrer artifacts (signatures it arrived with) recorded for v, as
 * digests of their manifests in the store, oldest first; *out malloc'd
 * (NULL when none), the caller frees it. */
enum al_rc al_repo_version_referrers(struct al_repo *r, const struct al_version *v, char (**out)[AL_DIGEST_SIZE],
                                     size_t *n, struct al_err *err);
/* The highest bundle sequence number ever recorded for model (0 if none). */
enum al_rc al_repo_max_seq(struct al_repo *r, const char *model, int64_t *seq, struct al_err *err);

/* The path of the blob with this digest (whether or not it exists). */
enum al_rc al_repo_blob_path(struct al_repo *r, const char *digest, char *out, size_t size, struct al_err *err);
/* Reads a small blob (at most max bytes, else AL_ERR_LIMIT) and checks it
 * against its digest (AL_ERR_CORRUPT); *out is malloc'd, the caller frees it. */
enum al_rc al_repo_read_blob(struct al_repo *r, const char *digest, size_t max, char **out, size_t *len,
                             struct al_err *err);
/* The file of v whose path inside the version is path (a bundle's
 * "bench/suite.json"), read and checked as al_repo_read_blob does.
 * AL_ERR_NOT_FOUND, and *out NULL, when v has no such file. */
enum al_rc al_repo_read_file(struct al_repo *r, const struct al_version *v, const char *path, size_t max,
                             char **out, size_t *len, struct al_err *err);

/* Events, oldest first, optionally only those of a model and/or a manifest
 * digest; release with al_index_events_free. */
enum al_rc al_repo_list_events(struct al_repo *r, const char *model, const char *digest, struct al_event **rows,
                               size_t *n, struct al_err *err);
/* Checks the whole event chain (see index.h): AL_ERR_CORRUPT when broken,
 * each problem reported through fn. */
enum al_rc al_repo_verify_events(struct al_repo *r, al_chain_problem_fn *fn, void *ud, size_t *checked,
                                 struct al_err *err);
/* Whether the index was rebuilt, so its API keys are lost (al_index_keys_lost). */
enum al_rc al_repo_keys_lost(struct al_repo *r, bool *out, struct al_err *err);

/* ---- the weights of a version ---- */

/* The one rule for which file of a version is its weights: the first file
 * whose name says GGUF (al_gguf_named), else the first file. NULL when n is 0.
 * Returns a pointer into files. */
const struct al_file *al_repo_pick_weights(const struct al_file *files, size_t n);

/* The same rule for a bare file name (a build host's file, not yet in the
 * store): whether the name says GGUF (al_gguf_named: ends in ".gguf", any
 * case). Any thread. */
bool al_repo_weights_named(const char *name);
/* Whether ref, given where a REF is expected, names a weight file outside
 * the store rather than a version: a name with a '/' or one that says GGUF
 * (al_repo_weights_named), naming an existing regular file. For the build
 * host's commands (validate, bench, pack), which take either. Any thread. */
bool al_repo_ref_is_file(const char *ref);
/* What the GGUF file at path says about itself (header, hyper-parameters,
 * tensor types), without loading it: al_gguf_inspect, errors as there. For
 * a weight file outside the store and for one of al_repo_resolve_weights'
 * paths. *out is overwritten; nothing to free. Any thread. */
enum al_rc al_repo_weights_info(const char *path, struct al_gguf_info *out, struct al_err *err);
/* The same for a version's weights, given its files (al_repo_list_files):
 * the weight file (al_repo_pick_weights) when its name says GGUF, read from
 * its blob. *found is false, and *out untouched, when no file says GGUF;
 * an unreadable or malformed GGUF is an error as in al_gguf_inspect. */
enum al_rc al_repo_version_gguf(struct al_repo *r, const struct al_file *files, size_t n,
                                struct al_gguf_info *out, bool *found, struct al_err *err);

/* A ref resolved down to the file an engine loads. Release with
 * al_repo_weights_release (files is malloc'd). */
struct al_weights {
    struct al_version version;
    char path[AL_LIMIT_PATH];    /* the weight file's blob in the store */
    char digest[AL_DIGEST_SIZE]; /* its digest, which names the blob */
    struct al_file *files;       /* every file of the version */
    size_t n_files;
};
/* Resolves ref and picks its weight file (al_repo_pick_weights). On error
 * *out is empty (nothing to release, though releasing is harmless).
 * AL_ERR_NOT_FOUND for an unknown ref or a version without files. */
enum al_rc al_repo_resolve_weights(struct al_repo *r, const char *ref, struct al_weights *out, struct al_err *err);
void al_repo_weights_release(struct al_weights *w);
/* The path of v's weight file (al_repo_pick_weights). */
enum al_rc al_repo_weight_path(struct al_repo *r, const struct al_version *v, char *out, size_t size,
                               struct al_err *err);

/* ---- LoRA adapters (adapter.c) ----
 * An adapter version is bound to the digest of its base's weight file
 * (the blob llama.cpp loads as the model), not to a name: any version with
 * those weights is its base. The binding lives in the version's manifest
 * (annotations io.airlock.adapter.type and .base), its config and its add
 * event. */

/* What a LoRA GGUF is, as al_repo_adapter_fits found it. */
struct al_adapter_fit {
    size_t pairs;   /* .lora_a/.lora_b pairs, each fitting a base tensor */
    int64_t rank;   /* of the first pair */
    float alpha;    /* adapter.lora.alpha (0: none) */
};
/* Checks that the GGUF at path (called name in messages) is a LoRA adapter
 * that fits the model GGUF at base_path (called base_ref): general.type
 * "adapter" and adapter.type "lora", the base's architecture, only
 * <tensor>.lora_a/.lora_b pairs (and *_norm.weight, which llama.cpp skips),
 * each naming a tensor of the base with the shapes llama.cpp's
 * llama-adapter.cpp requires. AL_ERR_INVALID naming the first misfit; the
 * errors of al_gguf_inspect_fd and al_gguf_table_fd. Any thread. */
enum al_rc al_repo_adapter_fits(const char *path, const char *name, const char *base_path, const char *base_ref,
                                struct al_adapter_fit *out, struct al_err *err);

struct al_adapter_binding {
    char type[16];               /* "lora"; "" when the version is no adapter */
    char base[AL_DIGEST_SIZE];   /* the base's weight digest; "" when no adapter */
};
/* Reads v's manifest (checked against its digest) for its binding; an
 * all-empty *out for a model. */
enum al_rc al_repo_version_adapter(struct al_repo *r, const struct al_version *v, struct al_adapter_binding *out,
                                   struct al_err *err);
/* The string annotation key of v's manifest (checked against its digest):
 * *out malloc'd, NULL when absent. For AL_ANN_QUANTIZED, AL_ANN_FINETUNED. */
enum al_rc al_repo_version_annotation(struct al_repo *r, const struct al_version *v, const char *key, char **out,
                                      struct al_err *err);
/* A version whose weight file has digest: the active version of a model
 * first, else the newest. *found false when none has. */
enum al_rc al_repo_find_base(struct al_repo *r, const char *digest, struct al_version *out, bool *found,
                             struct al_err *err);
/* The adapter versions bound to the weights digest, oldest first; *rows is
 * malloc'd (NULL when none), the caller frees it. Reads every manifest. */
enum al_rc al_repo_list_adapters(struct al_repo *r, const char *digest, struct al_version **rows, size_t *n,
                                 struct al_err *err);

/* A ref resolved for loading when it may be an adapter. */
struct al_adapted {
    bool is_adapter;
    struct al_adapter_binding binding;
    struct al_version base;      /* the version found with the base's weights */
    char base_path[AL_LIMIT_PATH]; /* their blob; its digest is binding.base */
};
/* al_repo_resolve_weights (into *w: the version's own weight file, for an
 * adapter the adapter's blob), and for an adapter version its base
 * (al_repo_find_base). AL_ERR_NOT_FOUND when the base's weights are in no
 * version any more. On error *w needs no release. */
enum al_rc al_repo_resolve_adapted(struct al_repo *r, const char *ref, struct al_weights *w,
                                   struct al_adapted *out, struct al_err *err);

/* ---- events and blobs of changes made above the repo ---- */

/* A change that is only an event (an ingest refused): under the write lock,
 * one transaction holding the event. Every failure, the lock wait running
 * out included (AL_ERR_BUSY), is returned: the caller reports it. */
enum al_rc al_repo_record_event(struct al_repo *r, const char *kind, const char *model, const char *digest,
                                const char *detail, struct al_err *err);
/* The one event of a refused operation (ingest, add, pull): records KIND
 * for MODEL ("" when it is not a valid name) with DETAIL, a JSON object (NULL
 * when the caller ran out of memory building it), and returns WHY with err's
 * message kept. When the event cannot be recorded, that failure is returned
 * instead, with both messages and HINT (may be NULL) after them. */
enum al_rc al_repo_record_refusal(struct al_repo *r, const char *kind, const char *model, const char *detail,
                                  enum al_rc why, const char *hint, struct al_err *err);
/* For a change with steps of its own around its event (trust writes a
 * pending file before and moves it into place after): take the write lock,
 * append the event (one transaction of its own), release. Nothing else in
 * the same process may take or release the write lock in between. */
enum al_rc al_repo_write_lock(struct al_repo *r, struct al_err *err);
void al_repo_write_unlock(struct al_repo *r);
enum al_rc al_repo_append_event(struct al_repo *r, const char *kind, const char *model, const char *digest,
                                const char *detail, struct al_err *err);

/* A writer of blobs that al_repo_commit_version will reference (ingest):
 * holds the store's gc lock shared from before the first blob to after the
 * commit, so gc cannot remove them in between. */
enum al_rc al_repo_writer_begin(struct al_repo *r, struct al_err *err);
void al_repo_writer_end(struct al_repo *r);
/* A blob written as a stream; the store's writer (store.h): commit, digest,
 * path and free work on it as there. */
enum al_rc al_repo_blob_writer_new(struct al_repo *r, struct al_blob_writer **out, struct al_err *err);
/* Stores a small in-memory blob (manifests, configs); digest is filled. */
enum al_rc al_repo_put(struct al_repo *r, const void *data, size_t len, char digest[AL_DIGEST_SIZE],
                       struct al_err *err);

/* Rewrites index.json from the index (takes the write lock). */
enum al_rc al_repo_sync_index_json(struct al_repo *r, struct al_err *err);

/* ---- checks ---- */
enum al_fsck_kind { AL_FSCK_OK, AL_FSCK_INFO, AL_FSCK_DAMAGE, AL_FSCK_REPAIRED };
typedef void al_fsck_report_fn(void *ud, enum al_fsck_kind kind, const char *msg);
struct al_fsck_result {
    size_t blobs_checked, versions_checked, events_checked;
    size_t damaged, unreferenced, repaired;
    uint64_t bytes_hashed;
};
/* Re-hashes every referenced blob, checks each manifest against the index,
 * verifies the event chain. AL_ERR_CORRUPT when anything is damaged. With
 * repair, damaged blobs move to quarantine/ and the repair is recorded. On a
 * read-only repo index.json is compared, not rewritten (a note when it is
 * out of step). */
enum al_rc al_repo_fsck(struct al_repo *r, bool repair, bool progress, al_fsck_report_fn *fn, void *ud,
                        struct al_fsck_result *res, struct al_err *err);

struct al_gc_result {
    size_t versions_removed, blobs_removed;
    uint64_t bytes_freed;
};
/* With keep > 0, first removes all but the newest keep versions of each model
 * (never the active one). Then removes blobs nothing references. Refuses
 * (AL_ERR_CORRUPT, each problem reported through fn, nothing removed) while
 * the store is damaged: a manifest unreadable or out of step with its index
 * rows, a referenced blob missing, the event log broken; an index that
 * disagrees with the manifests would make gc delete blobs still in use.
 * (Re-hashing every blob is left to fsck: gc never removes a referenced one.) */
enum al_rc al_repo_gc(struct al_repo *r, int keep, bool dry_run, al_fsck_report_fn *fn, void *ud,
                      struct al_gc_result *res, struct al_err *err);

/* ---- a lost index ---- */

/* True when al_repo_open refuses the store at home because its index is lost
 * (see al_repo_open); false otherwise, also when it cannot tell. */
bool al_repo_index_lost(const char *home);

struct al_rebuild_result {
    size_t models, versions, tags, active; /* recovered */
    size_t not_recovered;                  /* index.json entries whose manifest could not be used */
    char previous[AL_LIMIT_PATH];          /* where the lost index file went ("" when there was none) */
};
/* fsck --repair's answer to a lost index: rebuilds it from the OCI layout.
 * Under the exclusive gc lock and the write lock: moves what is left of the
 * old index (airlock.db, -wal, -shm) to quarantine/, creates a fresh index
 * and, in one transaction, records every version index.json lists (its
 * manifest read from the store and checked against its digest: config,
 * files, bundle sequence number), its tags and the active pointers, and one
 * "index-rebuilt" event saying what was recovered and what is gone: the
 * event log before it, API keys, creation times. With that event on record
 * the server requires an API key even while none exists (al_index_keys_lost),
 * so a rebuilt store never serves open. Refuses (AL_ERR_INVALID) when the
 * index is not lost. Entries that cannot be recovered are reported through fn
 * and counted; blobs index.json does not list stay unreferenced for gc. */
enum al_rc al_repo_rebuild_index(const char *home, al_fsck_report_fn *fn, void *ud, struct al_rebuild_result *res,
                                 struct al_err *err);

#endif
