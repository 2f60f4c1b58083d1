/*
 * repo.h: the operations a user runs on the store, each one atomic: the
 * blob store (store/), the index (index/) and the manifests (oci/) moved in
 * step. A failed operation leaves the store and the index exactly as before
 * (blobs written for it may remain unreferenced until gc).
 *
 * Commit protocol for every change: blobs first (each proven against its
 * digest), then under the store's write lock one SQLite transaction with the
 * rows and the event, then index.json rewritten from the index. index.json is
 * derived: every later write and fsck bring it back in step after a crash.
 */
#ifndef AL_REPO_REPO_H
#define AL_REPO_REPO_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
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
struct al_store *al_repo_store(struct al_repo *r);
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

struct al_add_opts {
    const char *card_path;  /* model card JSON, or NULL */
    bool no_activate;       /* leave the active version as it is */
    bool show_progress;
};

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
 * appends the event (kind, detail JSON) and rewrites index.json. The caller
 * holds the gc lock shared (al_store_lock) from before the blobs were written. */
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

/* The path of the version's main weight file (its first GGUF layer, else its
 * first layer). */
enum al_rc al_repo_weight_path(struct al_repo *r, const struct al_version *v, char *out, size_t size,
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
