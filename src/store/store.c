/*
 * store.c: blobs on disk. Invariants:
 *  - blobs/sha256/<hex> always holds bytes whose SHA-256 is <hex>, unless the
 *    disk was damaged after the fact (fsck finds that);
 *  - a file in tmp/ is being written while its creator holds an flock on it;
 *    an unlocked, older file in tmp/ is debris of a crash and may be removed.
 */
#include "store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/limits.h"
#include "core/progress.h"

#define TMP_MIN_AGE_S 5 /* a fresh tmp file may not be locked yet */

struct al_store {
    char home[AL_LIMIT_PATH];
    char blobs[AL_LIMIT_PATH]; /* home/blobs/sha256 */
    char tmp[AL_LIMIT_PATH];
    int gc_fd, write_fd;       /* lock files, -1 when closed */
    bool read_only;            /* al_store_open_read on a store we cannot write */
};

struct al_blob_writer {
    struct al_store *store;
    char path[AL_LIMIT_PATH];
    int fd;
    struct al_fs_sink sink;      /* O_DIRECT for whole slots where the filesystem allows */
    struct al_hash_stream *hash; /* hashes on a helper thread while we write */
    unsigned char *slot;         /* the hash stream's slot being filled, or NULL */
    size_t slot_cap, slot_fill;
    uint64_t size;
    bool committed;
    bool external_digest; /* set when the content was hashed elsewhere (reflink), or finished */
    char digest[AL_DIGEST_SIZE];
};

static const char layout_json[] = "{\"imageLayoutVersion\":\"1.0.0\"}";

const char *al_store_home(const struct al_store *s) { return s->home; }

enum al_rc al_store_open(const char *home, bool create, struct al_store **out, struct al_err *err)
{
    *out = NULL;
    struct al_store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    s->gc_fd = s->write_fd = -1;
    enum al_rc rc = al_path_fmt(s->home, sizeof s->home, err, "%s", home);
    if (!rc)
        rc = al_path_fmt(s->blobs, sizeof s->blobs, err, "%s/blobs/sha256", home);
    if (!rc)
        rc = al_path_fmt(s->tmp, sizeof s->tmp, err, "%s/tmp", home);
    if (rc)
        goto fail;
    char path[AL_LIMIT_PATH];
    if ((rc = al_path_fmt(path, sizeof path, err, "%s/oci-layout", home)))
        goto fail;
    if (!al_fs_exists(path)) {
        if (!create) {
            rc = al_err_set(err, AL_ERR_NOT_FOUND,
                            "no airlock store at '%s'; run 'airlock init' or set AIRLOCK_HOME", home);
            goto fail;
        }
        if ((rc = al_fs_mkdirs(s->blobs, 0755, err)) || (rc = al_fs_mkdirs(s->tmp, 0700, err)))
            goto fail;
        if ((rc = al_fs_write_atomic(path, layout_json, sizeof layout_json - 1, err)))
            goto fail;
    }
    if ((rc = al_fs_mkdirs(s->blobs, 0755, err)) || (rc = al_fs_mkdirs(s->tmp, 0700, err)))
        goto fail;
    if ((rc = al_path_fmt(path, sizeof path, err, "%s/locks", home)) || (rc = al_fs_mkdirs(path, 0755, err)))
        goto fail;
    al_store_sweep_tmp(s);
    *out = s;
    return AL_OK;
fail:
    al_store_free(s);
    return rc;
}

enum al_rc al_store_open_read(const char *home, struct al_store **out, struct al_err *err)
{
    *out = NULL;
    struct al_store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    s->gc_fd = s->write_fd = -1;
    s->read_only = true;
    char path[AL_LIMIT_PATH];
    enum al_rc rc = al_path_fmt(s->home, sizeof s->home, err, "%s", home);
    if (!rc)
        rc = al_path_fmt(s->blobs, sizeof s->blobs, err, "%s/blobs/sha256", home);
    if (!rc)
        rc = al_path_fmt(s->tmp, sizeof s->tmp, err, "%s/tmp", home);
    if (!rc)
        rc = al_path_fmt(path, sizeof path, err, "%s/oci-layout", home);
    if (!rc && !al_fs_exists(path))
        rc = al_err_set(err, AL_ERR_NOT_FOUND, "no airlock store at '%s'; run 'airlock init' or set AIRLOCK_HOME",
                        home);
    if (rc) {
        al_store_free(s);
        return rc;
    }
    *out = s;
    return AL_OK;
}


void al_store_free(struct al_store *s)
{
    if (s == NULL)
        return;
    if (s->gc_fd >= 0)
        close(s->gc_fd);
    if (s->write_fd >= 0)
        close(s->write_fd);
    free(s);
}

/* ---- locks ---- */

static int *lock_slot(struct al_store *s, enum al_store_lock which)
{
    return which == AL_LOCK_WRITE ? &s->write_fd : &s->gc_fd;
}

enum al_rc al_store_lock(struct al_store *s, enum al_store_lock which, int timeout_ms, struct al_err *err)
{
    int *fd = lock_slot(s, which);
    if (s->read_only && which != AL_LOCK_GC_SHARED)
        return al_err_set(err, AL_ERR_DENIED, "the store at '%s' is read-only here; this needs a writable store",
                          s->home);
    if (*fd < 0 && s->read_only) {
        /* A reader of a read-only store: share the lock where the lock file
         * can be opened; where it cannot, nothing can write the store either. */
        char path[AL_LIMIT_PATH];
        if (snprintf(path, sizeof path, "%s/locks/gc", s->home) >= (int)sizeof path ||
            (*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            return AL_OK;
    }
    if (*fd < 0) {
        char path[AL_LIMIT_PATH];
        enum al_rc rc = al_path_fmt(path, sizeof path, err, "%s/locks/%s", s->home,
                                    which == AL_LOCK_WRITE ? "write" : "gc");
        if (rc)
            return rc;
        *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (*fd < 0)
            return al_err_sys(err, AL_ERR_IO, "cannot open lock '%s'", path);
    }
    int op = which == AL_LOCK_GC_SHARED ? LOCK_SH : LOCK_EX;
    struct timespec nap = {0, 10 * 1000 * 1000};
    for (long waited = 0;; waited += 10) {
        if (flock(*fd, op | LOCK_NB) == 0)
            return AL_OK;
        if (errno != EWOULDBLOCK && errno != EINTR)
            return al_err_sys(err, AL_ERR_IO, "cannot lock the store");
        if (timeout_ms > 0 && waited >= timeout_ms)
            return al_err_set(err, AL_ERR_BUSY,
                              "the store at '%s' is locked by another airlock process; try again", s->home);
        nanosleep(&nap, NULL);
    }
}

void al_store_unlock(struct al_store *s, enum al_store_lock which)
{
    int *fd = lock_slot(s, which);
    if (*fd >= 0)
        flock(*fd, LOCK_UN);
}

/* ---- writing ---- */

enum al_rc al_blob_writer_new(struct al_store *s, struct al_blob_writer **out, struct al_err *err)
{
    *out = NULL;
    struct al_blob_writer *w = calloc(1, sizeof *w);
    if (w == NULL || (w->hash = al_hash_stream_new()) == NULL) {
        free(w);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    w->store = s;
    w->fd = -1;
    if (al_path_fmt(w->path, sizeof w->path, err, "%s/blob.XXXXXX", s->tmp) == AL_OK)
        w->fd = mkostemp(w->path, O_CLOEXEC);
    if (w->fd < 0) {
        enum al_rc rc = al_err_sys(err, AL_ERR_IO, "cannot create a temporary file in '%s'", s->tmp);
        al_hash_stream_free(w->hash);
        free(w);
        return rc;
    }
    flock(w->fd, LOCK_EX); /* marks it live for al_store_sweep_tmp() */
    al_fs_sink_init(&w->sink, w->fd);
    *out = w;
    return AL_OK;
}

/* Hands the filled slot to the hasher and to the disk, which both read it. */
static enum al_rc flush_slot(struct al_blob_writer *w, struct al_err *err)
{
    if (w->slot == NULL)
        return AL_OK;
    size_t n = w->slot_fill;
    unsigned char *p = w->slot;
    w->slot = NULL;
    w->slot_fill = 0;
    al_hash_stream_submit(w->hash, n);
    enum al_rc rc = n ? al_fs_sink_write(&w->sink, p, n, err) : AL_OK;
    return rc ? al_err_set(err, rc, "cannot write '%s'", w->path) : AL_OK;
}

/* Data is gathered in the hash stream's page-aligned slots: one copy, then
 * each full slot is hashed and written (directly, see al_fs_sink) from there. */
enum al_rc al_blob_writer_write(struct al_blob_writer *w, const void *data, size_t len, struct al_err *err)
{
    const unsigned char *p = data;
    w->size += len;
    while (len > 0) {
        if (w->slot == NULL)
            w->slot = al_hash_stream_slot(w->hash, &w->slot_cap);
        size_t n = w->slot_cap - w->slot_fill < len ? w->slot_cap - w->slot_fill : len;
        memcpy(w->slot + w->slot_fill, p, n);
        w->slot_fill += n;
        p += n;
        len -= n;
        if (w->slot_fill == w->slot_cap) {
            enum al_rc rc = flush_slot(w, err);
            if (rc)
                return rc;
        }
    }
    return AL_OK;
}

/* The last, partial slot, then the digest. */
static enum al_rc finish(struct al_blob_writer *w, struct al_err *err)
{
    if (w->external_digest)
        return AL_OK;
    enum al_rc rc = flush_slot(w, err);
    al_hash_stream_final(w->hash, w->digest);
    w->external_digest = true;
    return rc;
}

enum al_rc al_blob_writer_commit(struct al_blob_writer *w, const char *expected,
                                 char digest[AL_DIGEST_SIZE], uint64_t *size, struct al_err *err)
{
    enum al_rc rc = finish(w, err);
    if (rc)
        return rc;
    if (expected && strcmp(expected, w->digest) != 0)
        return al_err_set(err, AL_ERR_VERIFY, "content does not match its digest: expected %s, got %s",
                          expected, w->digest);
    if (fsync(w->fd) != 0)
        return al_err_sys(err, AL_ERR_IO, "cannot fsync '%s'", w->path);
    if (fchmod(w->fd, 0444) != 0)
        return al_err_sys(err, AL_ERR_IO, "cannot chmod '%s'", w->path);
    char final[AL_LIMIT_PATH];
    rc = al_store_blob_path(w->store, w->digest, final, sizeof final, err);
    if (rc)
        return rc;
    struct stat st;
    if (stat(final, &st) == 0 && (uint64_t)st.st_size == w->size) {
        /* Same content already stored: keep the existing file. */
        unlink(w->path);
    } else if (rename(w->path, final) != 0) {
        return al_err_sys(err, AL_ERR_IO, "cannot move blob into '%s'", final);
    }
    w->committed = true;
    if ((rc = al_fs_fsync_dir(w->store->blobs, err)))
        return rc;
    if (digest)
        memcpy(digest, w->digest, AL_DIGEST_SIZE);
    if (size)
        *size = w->size;
    return AL_OK;
}

enum al_rc al_blob_writer_digest(struct al_blob_writer *w, char digest[AL_DIGEST_SIZE], uint64_t *size,
                                 struct al_err *err)
{
    enum al_rc rc = finish(w, err);
    if (digest)
        memcpy(digest, w->digest, AL_DIGEST_SIZE);
    if (size)
        *size = w->size;
    return rc;
}

/* The file is read through a descriptor of its own: w->fd may carry O_DIRECT
 * (al_fs_sink_init), which wants aligned reads. Same inode before, same size
 * and change time after: the bytes hashed are the bytes commit fsyncs and
 * renames, unless a process of the store's own user writes into tmp/, which
 * the copy path does not guard against either. */
enum al_rc al_blob_writer_adopt(struct al_blob_writer *w, struct al_progress *progress, struct al_err *err)
{
    if (w->size || w->slot || w->external_digest || w->committed)
        return al_err_set(err, AL_ERR_INTERNAL, "'%s' was written through the blob writer; it cannot be adopted",
                          w->path);
    int fd = open(w->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return al_err_sys(err, AL_ERR_IO, "cannot open '%s'", w->path);
    struct stat mine, st, after;
    enum al_rc rc = AL_OK;
    if (fstat(w->fd, &mine) != 0 || fstat(fd, &st) != 0)
        rc = al_err_sys(err, AL_ERR_IO, "cannot stat '%s'", w->path);
    else if (st.st_dev != mine.st_dev || st.st_ino != mine.st_ino || !S_ISREG(st.st_mode))
        rc = al_err_set(err, AL_ERR_INVALID, "'%s' was replaced by another file while it was written; not adopted",
                        w->path);
    uint64_t n = 0;
    if (!rc) {
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        rc = al_sha256_fd(fd, w->digest, &n, progress, err);
    }
    if (!rc && (fstat(fd, &after) != 0 || after.st_size != st.st_size || (uint64_t)after.st_size != n ||
                after.st_ctim.tv_sec != st.st_ctim.tv_sec || after.st_ctim.tv_nsec != st.st_ctim.tv_nsec))
        rc = al_err_set(err, AL_ERR_IO, "'%s' changed while it was hashed; not adopted", w->path);
    close(fd);
    if (rc)
        return rc;
    w->size = n;
    w->external_digest = true;
    return AL_OK;
}

const char *al_blob_writer_path(const struct al_blob_writer *w)
{
    return w->path;
}

void al_blob_writer_free(struct al_blob_writer *w)
{
    if (w == NULL)
        return;
    if (!w->committed)
        unlink(w->path);
    if (w->fd >= 0)
        close(w->fd);
    al_hash_stream_free(w->hash);
    free(w);
}

enum al_rc al_store_import_file(struct al_store *s, const char *path, char digest[AL_DIGEST_SIZE],
                                uint64_t *size, struct al_progress *progress, struct al_err *err)
{
    int src = -1;
    enum al_rc orc = al_fs_open_regular(path, &src, err);
    if (orc)
        return orc;
    (void)posix_fadvise(src, 0, 0, POSIX_FADV_SEQUENTIAL);
    struct al_blob_writer *w = NULL;
    enum al_rc rc = al_blob_writer_new(s, &w, err);
    if (rc)
        goto out;
    if (ioctl(w->fd, FICLONE, src) == 0) {
        /* Reflink: the data is shared copy-on-write; one pass to hash it. */
        uint64_t n = 0;
        if ((rc = al_sha256_fd(src, w->digest, &n, progress, err)))
            goto out;
        w->size = n;
        w->external_digest = true;
    } else {
        /* One read pass: the data is written here while a helper thread hashes it. */
        uint64_t n = 0;
        if ((rc = al_sha256_copy(src, w->fd, w->digest, &n, progress, err))) {
            al_err_set(err, rc, "cannot import '%s'", path);
            goto out;
        }
        w->size = n;
        w->external_digest = true;
    }
    rc = al_blob_writer_commit(w, NULL, digest, size, err);
out:
    al_blob_writer_free(w);
    close(src);
    return rc;
}

enum al_rc al_store_put(struct al_store *s, const void *data, size_t len, char digest[AL_DIGEST_SIZE],
                        struct al_err *err)
{
    struct al_blob_writer *w = NULL;
    enum al_rc rc = al_blob_writer_new(s, &w, err);
    if (!rc)
        rc = al_blob_writer_write(w, data, len, err);
    if (!rc)
        rc = al_blob_writer_commit(w, NULL, digest, NULL, err);
    al_blob_writer_free(w);
    return rc;
}

/* ---- reading ---- */

enum al_rc al_store_blob_path(const struct al_store *s, const char *digest, char *out, size_t size,
                              struct al_err *err)
{
    const char *hex = al_digest_hex(digest);
    if (hex == NULL)
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not a sha256 digest", digest);
    return al_path_fmt(out, size, err, "%s/%s", s->blobs, hex);
}

bool al_store_has(const struct al_store *s, const char *digest)
{
    char path[AL_LIMIT_PATH];
    return al_store_blob_path(s, digest, path, sizeof path, NULL) == AL_OK && al_fs_exists(path);
}

enum al_rc al_store_read(const struct al_store *s, const char *digest, size_t max, char **out,
                         size_t *len, struct al_err *err)
{
    char path[AL_LIMIT_PATH];
    size_t n = 0;
    enum al_rc rc = al_store_blob_path(s, digest, path, sizeof path, err);
    if (rc || (rc = al_fs_read_file(path, max, out, &n, err)))
        return rc;
    uint8_t raw[AL_SHA256_BYTES];
    char got[AL_DIGEST_SIZE];
    al_sha256_buf(*out, n, raw);
    al_digest_format(raw, got);
    if (strcmp(got, digest) != 0) {
        free(*out);
        *out = NULL;
        return al_err_set(err, AL_ERR_CORRUPT, "blob %s is damaged (its content hashes to %s)", digest, got);
    }
    if (len)
        *len = n;
    return AL_OK;
}

enum al_rc al_store_verify(const struct al_store *s, const char *digest, uint64_t *size_out,
                           struct al_progress *progress, struct al_err *err)
{
    char path[AL_LIMIT_PATH], got[AL_DIGEST_SIZE];
    enum al_rc rc = al_store_blob_path(s, digest, path, sizeof path, err);
    if (rc)
        return rc;
    uint64_t size = 0;
    if (!al_fs_exists(path))
        return al_err_set(err, AL_ERR_NOT_FOUND, "blob %s is missing", digest);
    if ((rc = al_sha256_path(path, got, &size, progress, err)))
        return rc;
    if (size_out)
        *size_out = size;
    if (strcmp(got, digest) != 0)
        return al_err_set(err, AL_ERR_CORRUPT, "blob %s is damaged: its content hashes to %s", digest, got);
    return AL_OK;
}

enum al_rc al_store_each_blob(const struct al_store *s, al_blob_visit_fn *fn, void *ud, struct al_err *err)
{
    DIR *d = opendir(s->blobs);
    if (d == NULL)
        return al_err_sys(err, AL_ERR_IO, "cannot list '%s'", s->blobs);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char digest[AL_DIGEST_SIZE];
        if (!al_digest_from_hex(e->d_name, digest))
            continue;
        struct stat st;
        uint64_t size = fstatat(dirfd(d), e->d_name, &st, 0) == 0 ? (uint64_t)st.st_size : 0;
        if (!fn(ud, digest, size))
            break;
    }
    closedir(d);
    return AL_OK;
}

enum al_rc al_store_quarantine(struct al_store *s, const char *digest, struct al_err *err)
{
    char from[AL_LIMIT_PATH], dir[AL_LIMIT_PATH], to[AL_LIMIT_PATH];
    enum al_rc rc = al_store_blob_path(s, digest, from, sizeof from, err);
    if (rc || (rc = al_path_fmt(dir, sizeof dir, err, "%s/quarantine", s->home)) ||
        (rc = al_fs_mkdirs(dir, 0700, err)))
        return rc;
    /* al_store_blob_path() checked the digest: its hex part is there. */
    if ((rc = al_path_fmt(to, sizeof to, err, "%s/%s.%ld", dir, al_digest_hex(digest), (long)time(NULL))))
        return rc;
    if (rename(from, to) != 0)
        return al_err_sys(err, AL_ERR_IO, "cannot move '%s' to quarantine", from);
    return al_fs_fsync_dir(s->blobs, err);
}

enum al_rc al_store_remove(struct al_store *s, const char *digest, struct al_err *err)
{
    char path[AL_LIMIT_PATH];
    enum al_rc rc = al_store_blob_path(s, digest, path, sizeof path, err);
    if (rc)
        return rc;
    if (unlink(path) != 0 && errno != ENOENT)
        return al_err_sys(err, AL_ERR_IO, "cannot remove '%s'", path);
    return AL_OK;
}

int al_store_sweep_tmp(struct al_store *s)
{
    DIR *d = opendir(s->tmp);
    if (d == NULL)
        return 0;
    int removed = 0;
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        struct stat st;
        if (fstat(fd, &st) == 0 && now - st.st_mtime >= TMP_MIN_AGE_S && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            unlinkat(dirfd(d), e->d_name, 0) == 0)
            removed++;
        close(fd);
    }
    closedir(d);
    return removed;
}
