/* import_int.h: private to src/bundle's imports (import.c, import_ollama.c,
 * import_oci.c; docs/internals/import.md).
 *
 * An import reads another tool's model store on this machine and turns it
 * into a plain bundle's entries: each blob streamed from its file into an
 * uncommitted blob writer, hashed while written, its size and digest proven
 * against the source's manifest; then al_ing_finish runs the checks of an
 * ingest (weights, scan, license) and the one commit. Like add, an import is
 * a local operator action: unsigned by nature, no trust policy. A refusal
 * after the store's write lock is one "import-refused" (or "scan-refused",
 * "license-refused") event; the blobs and index.json are untouched. */
#ifndef AL_BUNDLE_IMPORT_INT_H
#define AL_BUNDLE_IMPORT_INT_H

#include <sys/types.h>

#include "bundle/bundle_int.h"

#define AL_IMPORT_TEXT_MAX (64u << 10) /* a template, parameters, system prompt or license kept in the card */

struct al_progress;

struct al_imp {
    struct al_ing g;
    struct al_progress *p;
    bool locked, tried;
    char source[AL_LIMIT_PATH + 256]; /* where from, as the events record it */
};

/* Sets up im for an import into r (caps from o or the store's free space). */
enum al_rc al_imp_begin(struct al_imp *im, struct al_repo *r, const struct al_bundle_opts *o,
                        struct al_bundle_report *rep, struct al_err *err);
/* Takes the store's writer lock; from here a refusal is recorded. */
enum al_rc al_imp_lock(struct al_imp *im, struct al_err *err);
/* Starts the progress bar over total bytes (when o->progress). */
void al_imp_progress(struct al_imp *im, uint64_t total);

/* Opens rel beneath the directory root, component by component, following
 * no symbolic link (O_NOFOLLOW): an absolute path, "..", "." or an empty
 * component is refused (AL_ERR_INVALID), so is a link (AL_ERR_INVALID naming
 * it). The last component must be a regular file (dir false) or a
 * directory. *fd is the caller's to close. AL_ERR_NOT_FOUND when absent. */
enum al_rc al_imp_open_beneath(int root, const char *rel, bool dir, int *fd, struct al_err *err);

/* Reads all of fd (a regular file of at most cap bytes; more is
 * AL_ERR_LIMIT naming cap_name) into *out (malloc'd, NUL-terminated). */
enum al_rc al_imp_read_capped(int fd, const char *what, size_t cap, const char *cap_name, char **out, size_t *len,
                              struct al_err *err);

/* AL_ERR_VERIFY unless data hashes to digest and is size bytes long. */
enum al_rc al_imp_check_mem(const char *what, const void *data, size_t len, const char *digest, uint64_t size,
                            struct al_err *err);

/* Streams fd (a regular file) into a new entry name: exactly size bytes, or
 * AL_ERR_VERIFY saying it is longer or shorter than the manifest says; its
 * bytes must hash to digest (AL_ERR_VERIFY otherwise). Caps as a pull's. */
enum al_rc al_imp_add_fd(struct al_imp *im, const char *name, int fd, const char *digest, uint64_t size,
                         struct al_err *err);

/* The same from a reader (an archive entry): rd returns bytes read, 0 at
 * the end, -1 with errno set on an error. */
typedef ssize_t al_imp_read_fn(void *ud, void *buf, size_t cap);
enum al_rc al_imp_add_stream(struct al_imp *im, const char *name, al_imp_read_fn *rd, void *ud, const char *digest,
                             uint64_t size, struct al_err *err);

/* Every entry is in: lists them as the checksums, then al_ing_finish under
 * source (checks "import", weights, scan, license; the commit). */
enum al_rc al_imp_finish(struct al_imp *im, struct al_err *err);

/* Records a refusal (rc != AL_OK after al_imp_lock), releases everything,
 * gives the lock back; returns rc (or the recording's failure). */
enum al_rc al_imp_end(struct al_imp *im, enum al_rc rc, struct al_err *err);

#endif
