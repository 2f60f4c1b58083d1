/*
 * store.h: the content-addressed blob store, an OCI image layout on disk.
 *
 *   $AIRLOCK_HOME/oci-layout            {"imageLayoutVersion":"1.0.0"}
 *   $AIRLOCK_HOME/index.json            OCI image index (written by the repo layer)
 *   $AIRLOCK_HOME/blobs/sha256/<hex>    read-only files named by their SHA-256
 *   $AIRLOCK_HOME/tmp/                  in-flight writes, swept when not locked
 *   $AIRLOCK_HOME/quarantine/           damaged blobs moved aside by fsck --repair
 *
 * Durability: a blob is written to tmp/ under an flock, hashed while written,
 * fsync'd, checked against the expected digest if one was given, renamed to
 * its final name and the directory fsync'd. A blob is never visible under its
 * name before its digest is proven.
 *
 * Locks: writers hold the store's shared "gc" lock for their whole operation
 * and take the exclusive "write" lock around their commit; gc and repair take
 * the gc lock exclusively, so they never remove a blob that a concurrent
 * writer has put in place but not yet committed.
 *
 * Ownership: an al_store is the caller's from al_store_open/_open_read until
 * al_store_free (NULL: no-op), which closes its lock files and so drops the
 * locks it holds. A blob writer is the caller's until al_blob_writer_free,
 * also after a commit, and must be freed before its store. Buffers a function
 * fills (al_store_read's *out) are malloc'd and the caller's to free(); *out
 * is overwritten, so it must not hold anything still to be freed. Digest and
 * path out-parameters are the caller's arrays. A returned const char * is
 * borrowed: al_store_home until al_store_free, al_blob_writer_path until the
 * writer's commit or free.
 *
 * Threads: the functions that take a const struct al_store * read only what open
 * set and may run on several threads at once. The rest (locking, writers,
 * import, put, quarantine, remove, sweep) use one al_store from one thread at
 * a time: the lock files are opened lazily and kept in the al_store. The
 * locks are flock(2) locks on one open file per al_store, so they exclude
 * other processes and other al_store objects, not two threads that share one
 * al_store; such threads must serialize themselves. A blob writer belongs to
 * one thread at a time; its hashing thread is its own business.
 */
#ifndef AL_STORE_STORE_H
#define AL_STORE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "core/hash.h"

struct al_store;
struct al_blob_writer;
struct al_progress;

/* Opens the store at home; with create, makes the layout if missing. Sweeps
 * stale temporary files. AL_ERR_NOT_FOUND when absent and !create. */
enum al_rc al_store_open(const char *home, bool create, struct al_store **out, struct al_err *err);
/* Opens an existing store for reading only, changing nothing on disk: no
 * directories made, no sweep of tmp/. For a store on a read-only file system
 * or one the user may not write. The shared gc lock is taken where the lock
 * file can be opened for reading (else skipped: nothing can write such a
 * store); the write and exclusive locks fail with AL_ERR_DENIED. */
enum al_rc al_store_open_read(const char *home, struct al_store **out, struct al_err *err);
void al_store_free(struct al_store *s);
const char *al_store_home(const struct al_store *s);

enum al_store_lock { AL_LOCK_GC_SHARED, AL_LOCK_GC_EXCLUSIVE, AL_LOCK_WRITE };
/* Blocks until the lock is held (AL_ERR_BUSY after timeout_ms, 0 = wait forever). */
enum al_rc al_store_lock(struct al_store *s, enum al_store_lock which, int timeout_ms, struct al_err *err);
void al_store_unlock(struct al_store *s, enum al_store_lock which);

/* ---- writing blobs ---- */
enum al_rc al_blob_writer_new(struct al_store *s, struct al_blob_writer **out, struct al_err *err);
enum al_rc al_blob_writer_write(struct al_blob_writer *w, const void *data, size_t len, struct al_err *err);
/* fsyncs, verifies against expected (NULL = accept any), renames into place.
 * The digest and size are written to the out-parameters when non-NULL. On a
 * digest mismatch: AL_ERR_VERIFY and the temporary file is gone. */
enum al_rc al_blob_writer_commit(struct al_blob_writer *w, const char *expected,
                                 char digest[AL_DIGEST_SIZE], uint64_t *size, struct al_err *err);
/* Finishes writing and hashing without committing: the digest and size of
 * what was written, so a caller can prove a whole set of blobs before making
 * any of them visible. No more writes may follow; commit still may. An error
 * when the last data could not be written. */
enum al_rc al_blob_writer_digest(struct al_blob_writer *w, char digest[AL_DIGEST_SIZE], uint64_t *size,
                                 struct al_err *err);
/* The temporary file's path, to read what was written (whole after
 * al_blob_writer_digest) before deciding to commit. Borrowed: valid until
 * commit or free. */
const char *al_blob_writer_path(const struct al_blob_writer *w);
/* Frees; removes the temporary file unless committed. NULL is a no-op. */
void al_blob_writer_free(struct al_blob_writer *w);
/* Adopts what another writer put in the writer's temporary file: for a
 * library that writes its output to a path it opens itself
 * (llama_model_quantize), given al_blob_writer_path, so the bytes land in
 * tmp/ under the writer's flock and are not copied again. Nothing may have
 * been written through al_blob_writer_write. Checks that the path still
 * names the writer's own file (the inode its lock is on: the library must
 * truncate and write it in place, not replace it), then hashes it as it lies
 * (one read, from the page cache when just written). Commit follows as for
 * any writer (fsync, read-only, the rename into place); free without a
 * commit removes the file. AL_ERR_INVALID for a replaced file, AL_ERR_IO
 * when it cannot be read or changes while it is hashed, AL_ERR_INTERNAL
 * after writes. */
enum al_rc al_blob_writer_adopt(struct al_blob_writer *w, struct al_progress *progress, struct al_err *err);

/* Imports a local regular file (al_fs_open_regular: a FIFO or device is
 * refused without blocking) in one read pass (hash while copying), or as a reflink
 * clone plus one hashing pass where the file system supports it. */
enum al_rc al_store_import_file(struct al_store *s, const char *path, char digest[AL_DIGEST_SIZE],
                                uint64_t *size, struct al_progress *progress, struct al_err *err);
/* Stores a small in-memory blob (manifests, configs). */
enum al_rc al_store_put(struct al_store *s, const void *data, size_t len, char digest[AL_DIGEST_SIZE],
                        struct al_err *err);

/* ---- reading and checking ---- */
/* The blob's path (whether or not it exists). */
enum al_rc al_store_blob_path(const struct al_store *s, const char *digest, char *out, size_t size,
                              struct al_err *err);
bool al_store_has(const struct al_store *s, const char *digest);
/* Reads a small blob (at most max bytes) and checks its digest. */
enum al_rc al_store_read(const struct al_store *s, const char *digest, size_t max, char **out,
                         size_t *len, struct al_err *err);
/* Re-hashes a blob: AL_OK, AL_ERR_NOT_FOUND, or AL_ERR_CORRUPT naming the
 * digest found. *size_out gets the blob's size when non-NULL. */
enum al_rc al_store_verify(const struct al_store *s, const char *digest, uint64_t *size_out,
                           struct al_progress *progress, struct al_err *err);

/* Calls fn for every blob digest present, in directory order; stops early
 * when fn returns false. */
typedef bool al_blob_visit_fn(void *ud, const char *digest, uint64_t size);
enum al_rc al_store_each_blob(const struct al_store *s, al_blob_visit_fn *fn, void *ud, struct al_err *err);

/* Moves a blob to quarantine/ (fsck --repair) or deletes it (gc). */
enum al_rc al_store_quarantine(struct al_store *s, const char *digest, struct al_err *err);
enum al_rc al_store_remove(struct al_store *s, const char *digest, struct al_err *err);

/* Removes temporary files that no live writer holds; returns how many. */
int al_store_sweep_tmp(struct al_store *s);

#endif
