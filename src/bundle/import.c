/*
 * import.c: what the imports from other tools' stores share: a directory
 * walked without following links, blobs streamed into the store's blob
 * writers and proven against their digests and sizes, and the ingest's
 * final checks and commit (import_int.h; docs/internals/import.md).
 */
#include "bundle/import_int.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/progress.h"

#define COPY_BLOCK (1u << 20)

enum al_rc al_imp_begin(struct al_imp *im, struct al_repo *r, const struct al_bundle_opts *o,
                        struct al_bundle_report *rep, struct al_err *err)
{
    memset(im, 0, sizeof *im);
    memset(rep, 0, sizeof *rep);
    struct al_ing *g = &im->g;
    g->r = r, g->o = o, g->rep = rep, g->local = true;
    uint64_t cap = al_ing_default_cap(r);
    g->max_entry = o->max_entry ? o->max_entry : cap;
    g->max_total = o->max_total ? o->max_total : cap;
    if (o->dry_run)
        return al_err_set(err, AL_ERR_USAGE, "import has no dry run");
    if ((g->ents = calloc(AL_BUNDLE_MAX_ENTRIES, sizeof *g->ents)) == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    return AL_OK;
}

enum al_rc al_imp_lock(struct al_imp *im, struct al_err *err)
{
    enum al_rc rc = al_repo_writer_begin(im->g.r, err);
    if (!rc)
        im->locked = im->tried = true;
    return rc;
}

void al_imp_progress(struct al_imp *im, uint64_t total)
{
    if (im->g.o->progress && im->p == NULL)
        im->p = al_progress_new("import", total);
}

enum al_rc al_imp_open_beneath(int root, const char *rel, bool dir, int *fd, struct al_err *err)
{
    *fd = -1;
    if (rel[0] == '/')
        return al_err_set(err, AL_ERR_INVALID, "'%s' is an absolute path; an import reads only beneath its directory",
                          rel);
    if (strlen(rel) >= AL_LIMIT_PATH)
        return al_err_set(err, AL_ERR_LIMIT, "a path of %zu bytes is over the cap of %u (AL_LIMIT_PATH)", strlen(rel),
                          AL_LIMIT_PATH);
    char buf[AL_LIMIT_PATH];
    snprintf(buf, sizeof buf, "%s", rel);
    int cur = root;
    char *p = buf;
    enum al_rc rc = AL_OK;
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (p[0] == '\0' || strcmp(p, ".") == 0 || strcmp(p, "..") == 0) {
            rc = al_err_set(err, AL_ERR_INVALID, "'%s' has an empty, '.' or '..' component; an import reads only "
                            "beneath its directory", rel);
            break;
        }
        bool last = slash == NULL;
        int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (last && !dir ? O_NONBLOCK : O_DIRECTORY);
        int next = openat(cur, p, flags);
        if (next < 0) {
            int e = errno;
            struct stat st;
            if ((e == ELOOP || e == ENOTDIR) && fstatat(cur, p, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                rc = al_err_set(err, AL_ERR_INVALID, "'%s' is a symbolic link; an import follows none", rel);
            else if (e == ENOENT)
                rc = al_err_set(err, AL_ERR_NOT_FOUND, "'%s' does not exist", rel);
            else
                rc = al_err_set(err, AL_ERR_IO, "cannot open '%s': %s", rel, strerror(e));
            break;
        }
        if (cur != root)
            close(cur);
        cur = next;
        if (last)
            break;
        p = slash + 1;
    }
    if (rc) {
        if (cur != root)
            close(cur);
        return rc;
    }
    struct stat st;
    if (fstat(cur, &st) != 0 || (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))) {
        close(cur);
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not a %s", rel, dir ? "directory" : "regular file");
    }
    if (!dir) {
        int fl = fcntl(cur, F_GETFL);
        if (fl >= 0)
            (void)fcntl(cur, F_SETFL, fl & ~O_NONBLOCK);
    }
    *fd = cur;
    return AL_OK;
}

enum al_rc al_imp_read_capped(int fd, const char *what, size_t cap, const char *cap_name, char **out, size_t *len,
                              struct al_err *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return al_err_set(err, AL_ERR_IO, "cannot stat %s: %s", what, strerror(errno));
    if ((uint64_t)st.st_size > cap)
        return al_err_set(err, AL_ERR_LIMIT, "%s is %lld bytes, over the cap of %zu bytes (%s)", what,
                          (long long)st.st_size, cap, cap_name);
    struct al_buf b;
    al_buf_init(&b, cap);
    char chunk[65536];
    for (;;) {
        ssize_t k = read(fd, chunk, sizeof chunk);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            al_buf_release(&b);
            return al_err_set(err, AL_ERR_IO, "cannot read %s: %s", what, strerror(errno));
        }
        if (k == 0)
            break;
        al_buf_add(&b, chunk, (size_t)k);
        if (al_buf_failed(&b)) {
            al_buf_release(&b);
            return al_err_set(err, AL_ERR_LIMIT, "%s is over the cap of %zu bytes (%s)", what, cap, cap_name);
        }
    }
    *len = b.len;
    if ((*out = al_buf_take(&b)) == NULL && (*out = strdup("")) == NULL) {
        al_buf_release(&b);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    al_buf_release(&b);
    return AL_OK;
}

enum al_rc al_imp_check_mem(const char *what, const void *data, size_t len, const char *digest, uint64_t size,
                            struct al_err *err)
{
    uint8_t raw[AL_SHA256_BYTES];
    char d[AL_DIGEST_SIZE];
    al_sha256_buf(data, len, raw);
    al_digest_format(raw, d);
    if (len != size)
        return al_err_set(err, AL_ERR_VERIFY, "%s is %zu bytes; its manifest says %" PRIu64, what, len, size);
    if (strcmp(d, digest) != 0)
        return al_err_set(err, AL_ERR_VERIFY, "%s: its bytes hash to %s, not %s", what, d, digest);
    return AL_OK;
}

static ssize_t fd_read(void *ud, void *buf, size_t cap)
{
    ssize_t k;
    do
        k = read(*(int *)ud, buf, cap);
    while (k < 0 && errno == EINTR);
    return k;
}

enum al_rc al_imp_add_fd(struct al_imp *im, const char *name, int fd, const char *digest, uint64_t size,
                         struct al_err *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return al_err_set(err, AL_ERR_IO, "cannot stat blob %s: %s", digest, strerror(errno));
    if ((uint64_t)st.st_size != size)
        return al_err_set(err, AL_ERR_VERIFY, "blob %s ('%s') is %lld bytes; its manifest says %" PRIu64, digest, name,
                          (long long)st.st_size, size);
    return al_imp_add_stream(im, name, fd_read, &fd, digest, size, err);
}

enum al_rc al_imp_add_stream(struct al_imp *im, const char *name, al_imp_read_fn *rd, void *ud, const char *digest,
                             uint64_t size, struct al_err *err)
{
    struct al_ing *g = &im->g;
    if (g->n_ents >= AL_BUNDLE_MAX_ENTRIES)
        return al_err_set(err, AL_ERR_LIMIT, "more than %u files (AL_BUNDLE_MAX_ENTRIES)", AL_BUNDLE_MAX_ENTRIES);
    if (al_ing_find(g, name))
        return al_err_set(err, AL_ERR_INVALID, "two layers are named '%s'", name);
    if (size > g->max_entry || g->total + size > g->max_total)
        return al_err_set(err, AL_ERR_LIMIT, "'%s' is %" PRIu64 " bytes, over the cap (--max-entry-size, "
                          "--max-total-size; default the store's free space less a margin)", name, size);
    struct al_ing_entry *en = &g->ents[g->n_ents++];
    memset(en, 0, sizeof *en);
    snprintf(en->name, sizeof en->name, "%s", name);
    enum al_rc rc = al_repo_blob_writer_new(g->r, &en->w, err);
    char *buf = rc ? NULL : malloc(COPY_BLOCK);
    if (!rc && buf == NULL)
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    while (!rc) {
        ssize_t k = rd(ud, buf, COPY_BLOCK);
        if (k < 0) {
            rc = al_err_set(err, AL_ERR_IO, "cannot read blob %s: %s", digest, strerror(errno));
            break;
        }
        if (k == 0)
            break;
        if (en->size + (uint64_t)k > size) {
            rc = al_err_set(err, AL_ERR_VERIFY, "blob %s ('%s') is longer than the %" PRIu64 " bytes its manifest "
                            "says", digest, name, size);
            break;
        }
        if (en->head_len < sizeof en->head) {
            size_t h = (size_t)k < sizeof en->head - en->head_len ? (size_t)k : sizeof en->head - en->head_len;
            memcpy(en->head + en->head_len, buf, h);
            en->head_len += h;
        }
        en->size += (uint64_t)k;
        g->total += (uint64_t)k;
        al_progress_add(im->p, (uint64_t)k);
        rc = al_blob_writer_write(en->w, buf, (size_t)k, err);
    }
    free(buf);
    if (!rc && en->size != size)
        rc = al_err_set(err, AL_ERR_VERIFY, "blob %s ('%s') is %" PRIu64 " bytes; its manifest says %" PRIu64, digest,
                        name, en->size, size);
    if (!rc)
        rc = al_blob_writer_digest(en->w, en->digest, NULL, err);
    if (!rc && strcmp(en->digest, digest) != 0)
        rc = al_err_set(err, AL_ERR_VERIFY, "blob %s ('%s'): its bytes hash to %s; the file is not what its manifest "
                        "names", digest, name, en->digest);
    return rc;
}

enum al_rc al_imp_finish(struct al_imp *im, struct al_err *err)
{
    struct al_ing *g = &im->g;
    al_progress_free(im->p);
    im->p = NULL;
    struct al_buf sums;
    al_buf_init(&sums, AL_BUNDLE_CHECKSUMS_MAX);
    for (size_t i = 0; i < g->n_ents; i++)
        al_buf_addf(&sums, "%s  %s\n", al_digest_hex(g->ents[i].digest), g->ents[i].name);
    enum al_rc rc = AL_OK;
    if (al_buf_failed(&sums))
        rc = al_err_set(err, AL_ERR_LIMIT, "the file list is over %u bytes", AL_BUNDLE_CHECKSUMS_MAX);
    if (!rc) {
        g->sums_len = sums.len;
        g->sums_text = al_buf_take(&sums);
        rc = g->sums_text ? al_sums_parse(g->sums_text, g->sums_len, &g->sums, &g->n_sums, err)
                          : al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    al_buf_release(&sums);
    if (rc)
        return rc;
    g->sigs_checked = true; /* an operator's local action, like add: nothing to verify a signature of */
    al_ing_check(g, "import");
    return al_ing_finish(g, im->source, err);
}

enum al_rc al_imp_end(struct al_imp *im, enum al_rc rc, struct al_err *err)
{
    struct al_ing *g = &im->g;
    al_progress_free(im->p);
    im->p = NULL;
    if (g->rep)
        snprintf(g->rep->checks, sizeof g->rep->checks, "%s", g->checks);
    if (rc && im->tried)
        rc = al_ing_record_refusal(g, im->source, rc, err);
    if (g->ents)
        al_ing_release(g);
    else
        free(g->card), free(g->import);
    if (im->locked)
        al_repo_writer_end(g->r);
    return rc;
}
