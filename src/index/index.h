/*
 * index.h: the model index in SQLite (WAL, foreign keys, migrations through
 * PRAGMA user_version): models, versions, their files, tags, the active
 * version of each model, and the append-only, hash-chained event log.
 *
 * This module is the only one that includes sqlite3.h. Every mutation runs
 * inside al_index_begin()/al_index_commit() (BEGIN IMMEDIATE, so two
 * processes serialize instead of deadlocking); readers see the last commit.
 *
 * Event chain: row n stores prev = hash of row n-1 (64 zeros for the first)
 * and hash = SHA-256 over its own fields and prev. An edited row breaks its
 * own hash; a deleted row breaks the next row's prev, or (the last row) the
 * id sequence SQLite keeps in sqlite_sequence.
 *
 * Ownership: an al_index is the caller's from al_index_open/_open_mode until
 * al_index_free. Rows come back by value (struct al_version, al_file) or in
 * malloc'd arrays that the caller frees with free(), except events, whose
 * detail strings are malloc'd too: free them with al_index_events_free. No
 * function returns a pointer into the index; text goes into the caller's
 * buffers. Out-arrays (*rows, *digests) are overwritten, so they must not
 * hold anything still to be freed.
 *
 * Threads: SQLite is opened without its own mutex (SQLITE_OPEN_NOMUTEX, the
 * multi-thread mode), and an al_index keeps state of its own (the connection,
 * the depth of al_index_begin). So one al_index must never be used by two
 * threads at once: a caller that shares one serializes every call, a
 * transaction from begin to commit included, under its own lock (the model
 * manager, serve/models.h, does), or gives each thread its own al_index.
 * Separate al_index objects on the same file, in one process or several, are
 * safe: SQLite's file locks order them, and a writer waits up to 30 s
 * (busy timeout) for another's transaction before AL_ERR_BUSY.
 */
#ifndef AL_INDEX_INDEX_H
#define AL_INDEX_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/limits.h"

struct al_index;

/* How an index is opened:
 *  CREATE     makes the database and its schema when missing or empty, and
 *             migrates an older schema (only the repo, after it has made sure
 *             the store has no history that a fresh index would hide, and tests);
 *  EXISTING   opens read-write, but never creates: a missing or empty file, or
 *             one without our schema, is AL_ERR_NOT_FOUND and is left untouched;
 *  READ_ONLY  opens without writing anything (for a read-only file system or
 *             files the user may not write): SQLite's read-only mode, or, where
 *             even the WAL index cannot be made, an immutable open when no
 *             write-ahead log is left over. An older schema is refused
 *             (migrating needs a write); every change fails. */
enum al_index_mode { AL_INDEX_CREATE, AL_INDEX_EXISTING, AL_INDEX_READ_ONLY };
enum al_rc al_index_open_mode(const char *db_path, enum al_index_mode mode, struct al_index **out,
                              struct al_err *err);
/* al_index_open_mode(db_path, AL_INDEX_CREATE, ...). */
enum al_rc al_index_open(const char *db_path, struct al_index **out, struct al_err *err);
void al_index_free(struct al_index *ix);
bool al_index_read_only(const struct al_index *ix);

/* True when the event log has never recorded anything (no row, and SQLite's
 * sequence for it never advanced): a fresh index. */
enum al_rc al_index_never_recorded(struct al_index *ix, bool *out, struct al_err *err);

enum al_rc al_index_begin(struct al_index *ix, struct al_err *err);
enum al_rc al_index_commit(struct al_index *ix, struct al_err *err);
void al_index_rollback(struct al_index *ix);
/* A consistent view for several reads: between read_begin and read_end every
 * statement sees the same commit, not the ones other processes make
 * meanwhile (a SAVEPOINT: they nest). Nothing may be written inside one,
 * since al_index_begin cannot start within it. */
enum al_rc al_index_read_begin(struct al_index *ix, struct al_err *err);
void al_index_read_end(struct al_index *ix);

/* ---- references: name, name:tag, name@sha256:<hex> ---- */
struct al_ref {
    char name[AL_LIMIT_NAME + 1];
    char tag[AL_LIMIT_TAG + 1];     /* "" when absent */
    char digest[AL_DIGEST_SIZE];    /* "" when absent */
};
enum al_rc al_index_ref_parse(const char *text, struct al_ref *out, struct al_err *err);
bool al_name_valid(const char *name);
/* Who runs this process, as the event log records it: $AIRLOCK_OPERATOR,
 * else the user name of the uid, else "uid:<n>". */
void al_index_operator(char *out, size_t size);
bool al_tag_valid(const char *tag);

/* ---- versions ---- */
struct al_version {
    int64_t id;
    char model[AL_LIMIT_NAME + 1];
    char manifest[AL_DIGEST_SIZE];
    char config[AL_DIGEST_SIZE];
    uint64_t manifest_size;
    int64_t seq;           /* monotonic sequence number from a bundle; 0 for local adds */
    char created[32];      /* ISO 8601 UTC */
    char tags[512];        /* comma-separated, "" when none */
    uint64_t total_size;   /* sum of its files */
    bool active;
};

struct al_file {
    char path[AL_LIMIT_FILE_NAME + 1];
    char digest[AL_DIGEST_SIZE];
    uint64_t size;
    char media_type[96];
};

/* Records a version and its files; creates the model on first use. When the
 * same manifest is already recorded for the model, AL_ERR_EXISTS and *id is
 * the existing version. */
enum al_rc al_index_add_version(struct al_index *ix, const char *model, const char *manifest,
                                uint64_t manifest_size, const char *config, int64_t seq,
                                const struct al_file *files, size_t n_files, int64_t *id,
                                struct al_err *err);
enum al_rc al_index_remove_version(struct al_index *ix, int64_t version_id, struct al_err *err);

/* Resolves a ref: name → active version; name:tag → tagged version;
 * name@digest → that manifest. Unknown names get close matches in the message. */
enum al_rc al_index_resolve(struct al_index *ix, const char *ref, struct al_version *out, struct al_err *err);
enum al_rc al_index_get_version(struct al_index *ix, int64_t id, struct al_version *out, struct al_err *err);

/* Lists versions (of one model, or all when model is NULL), oldest first.
 * *rows is malloc'd; the caller frees it. */
enum al_rc al_index_list_versions(struct al_index *ix, const char *model, struct al_version **rows,
                                  size_t *n, struct al_err *err);
enum al_rc al_index_list_files(struct al_index *ix, int64_t version_id, struct al_file **rows, size_t *n,
                               struct al_err *err);

enum al_rc al_index_set_tag(struct al_index *ix, const char *model, const char *tag, int64_t version_id,
                            struct al_err *err);
enum al_rc al_index_remove_tag(struct al_index *ix, const char *model, const char *tag, struct al_err *err);

enum al_rc al_index_set_active(struct al_index *ix, const char *model, int64_t version_id, struct al_err *err);
/* The version recorded just before version_id for the same model, or
 * AL_ERR_NOT_FOUND when version_id is the oldest. */
enum al_rc al_index_previous_version(struct al_index *ix, int64_t version_id, int64_t *prev, struct al_err *err);

/* The highest sequence number ever recorded for a model (0 if none). */
enum al_rc al_index_max_seq(struct al_index *ix, const char *model, int64_t *seq, struct al_err *err);

/* The signatures a version arrived with: a referrer artifact (its manifest's
 * digest referrer) whose blobs are blobs (its manifest not among them; it is
 * recorded too). Already recorded rows are kept. */
enum al_rc al_index_add_referrer(struct al_index *ix, int64_t version_id, const char *referrer,
                                 const char (*blobs)[AL_DIGEST_SIZE], size_t n, struct al_err *err);
/* The referrer manifests recorded for a version, oldest first; *out malloc'd
 * (NULL when none), the caller frees it. */
enum al_rc al_index_referrers(struct al_index *ix, int64_t version_id, char (**out)[AL_DIGEST_SIZE], size_t *n,
                              struct al_err *err);

/* Every digest the index references (manifests, configs, files, referrers), sorted and
 * unique; *digests is a malloc'd array of AL_DIGEST_SIZE strings. */
enum al_rc al_index_referenced(struct al_index *ix, char (**digests)[AL_DIGEST_SIZE], size_t *n,
                               struct al_err *err);

/* ---- events ---- */
struct al_event {
    int64_t id;
    char time[32];
    char kind[32];
    char model[AL_LIMIT_NAME + 1];
    char digest[AL_DIGEST_SIZE];
    char actor[64];
    char *detail;          /* JSON text, malloc'd */
    char prev[AL_SHA256_HEX + 1];
    char hash[AL_SHA256_HEX + 1];
};

/* Appends an event (detail: a JSON object text, may be NULL). Inside a
 * transaction when one is open, else in its own. */
enum al_rc al_index_event_append(struct al_index *ix, const char *kind, const char *model,
                                 const char *digest, const char *detail, struct al_err *err);
/* Lists events, oldest first, optionally only those of a model or digest. */
enum al_rc al_index_list_events(struct al_index *ix, const char *model, const char *digest,
                                struct al_event **rows, size_t *n, struct al_err *err);
void al_index_events_free(struct al_event *rows, size_t n);

/* Checks the whole chain. Each problem is reported through fn (the event id,
 * or 0, and a message). Returns AL_OK when intact, AL_ERR_CORRUPT otherwise. */
typedef void al_chain_problem_fn(void *ud, int64_t id, const char *msg);
enum al_rc al_index_verify_events(struct al_index *ix, al_chain_problem_fn *fn, void *ud, size_t *checked,
                                  struct al_err *err);

/* True when the log records an "index-rebuilt" event: the index was rebuilt
 * from the OCI layout, so what it held besides models (API keys, history)
 * is unknown. The server then requires a key even with none on record. */
enum al_rc al_index_keys_lost(struct al_index *ix, bool *out, struct al_err *err);

/* Names of models within a small edit distance of name, comma-separated. */
void al_index_close_matches(struct al_index *ix, const char *name, char *out, size_t size);

#endif
