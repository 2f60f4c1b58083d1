/*
 * ingest.c: the one pass over the archive. Each entry is judged from its
 * header before a byte of it is read (type, name, duplicates, listing, sizes,
 * caps), then streamed into an uncommitted blob writer while hashed. Small
 * control files (checksums.txt, signatures, index.json, manifests) are also
 * kept in memory, under caps. Nothing is committed here: see commit.c.
 *
 * The raw bundle bytes are hashed as libarchive reads them (the bundle
 * digest of the provenance), so the file is read exactly once.
 */
#include "bundle/bundle_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/progress.h"

#define READ_BLOCK   (1u << 20)
#define SPACE_MARGIN (256ull << 20)

struct source {
    int fd;
    struct al_hash_stream *hash; /* the bundle digest, hashed on a helper thread */
    uint64_t bytes;
    struct al_progress *progress;
};

static la_ssize_t src_read(struct archive *a, void *ud, const void **out)
{
    struct source *s = ud;
    /* libarchive keeps using the block it was given only until it asks for
     * the next one; the hash stream reuses a slot much later than that. */
    size_t cap = 0;
    unsigned char *buf = al_hash_stream_slot(s->hash, &cap);
    for (;;) {
        ssize_t n = read(s->fd, buf, cap < READ_BLOCK ? cap : READ_BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (a)
                archive_set_error(a, errno, "cannot read the bundle");
            return -1;
        }
        al_hash_stream_submit(s->hash, (size_t)n);
        s->bytes += (uint64_t)n;
        al_progress_add(s->progress, (uint64_t)n);
        *out = buf;
        return n;
    }
}

/* Reads what libarchive left unread, so the bundle digest covers the file. */
static void src_drain(struct source *s)
{
    const void *p;
    while (src_read(NULL, s, &p) > 0) {
    }
}

void al_ing_check(struct al_ing *g, const char *what)
{
    if (strstr(g->checks, what))
        return;
    size_t n = strlen(g->checks);
    snprintf(g->checks + n, sizeof g->checks - n, "%s%s", n ? "," : "", what);
}

struct al_ing_entry *al_ing_find(struct al_ing *g, const char *name)
{
    for (size_t i = 0; i < g->n_ents; i++)
        if (strcmp(g->ents[i].name, name) == 0)
            return &g->ents[i];
    return NULL;
}

/* The size a native bundle's signed manifest gives a blob, or UINT64_MAX. */
static uint64_t listed_size(struct al_ing *g, const char *name)
{
    if (!g->have_man || strncmp(name, AL_BUNDLE_BLOB_DIR, sizeof AL_BUNDLE_BLOB_DIR - 1) != 0)
        return UINT64_MAX;
    const char *hex = name + sizeof AL_BUNDLE_BLOB_DIR - 1;
    if (al_digest_hex_eq(g->man.config_digest, hex))
        return g->man.config_size;
    for (size_t i = 0; i < g->man.n_layers; i++)
        if (al_digest_hex_eq(g->man.layers[i].digest, hex))
            return g->man.layers[i].size;
    return UINT64_MAX;
}

static void human(uint64_t n, char *out, size_t size)
{
    if (n >= (1ull << 30))
        snprintf(out, size, "%.1f GiB", (double)n / (double)(1ull << 30));
    else if (n >= (1ull << 20))
        snprintf(out, size, "%.1f MiB", (double)n / (double)(1ull << 20));
    else
        snprintf(out, size, "%" PRIu64 " bytes", n);
}

/* Judges an entry from its header alone. *skip for directories allowed in an
 * OCI layout. Writes the normalized name into name. */
static enum al_rc judge_header(struct al_ing *g, struct archive_entry *e, char *name, bool *skip,
                               struct al_err *err)
{
    *skip = false;
    const char *raw = archive_entry_pathname(e);
    if (raw == NULL)
        return al_err_set(err, AL_ERR_INVALID, "an entry has no usable name");
    size_t rl = strlen(raw);
    if (rl > AL_BUNDLE_ENTRY_NAME)
        return al_err_set(err, AL_ERR_LIMIT, "an entry name is %zu bytes, over the cap of %u (AL_BUNDLE_ENTRY_NAME)",
                          rl, AL_BUNDLE_ENTRY_NAME);
    if (raw[0] == '/')
        return al_err_set(err, AL_ERR_INVALID, "entry '%s' has an absolute path", raw);
    const char *p = raw;
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    for (const char *c = p; *c; c = strchr(c, '/') ? strchr(c, '/') + 1 : c + strlen(c))
        if (c[0] == '.' && c[1] == '.' && (c[2] == '/' || c[2] == '\0'))
            return al_err_set(err, AL_ERR_INVALID, "entry '%s' has a '..' path component", raw);
    const char *link = archive_entry_hardlink(e);
    if (link)
        return al_err_set(err, AL_ERR_INVALID, "entry '%s' is a hard link to '%s'; bundles hold regular files only",
                          raw, link);
    mode_t type = archive_entry_filetype(e);
    if (type == AE_IFLNK)
        return al_err_set(err, AL_ERR_INVALID, "entry '%s' is a symbolic link to '%s'; bundles hold regular files only",
                          raw, archive_entry_symlink(e) ? archive_entry_symlink(e) : "?");
    if (type == AE_IFCHR || type == AE_IFBLK)
        return al_err_set(err, AL_ERR_INVALID, "entry '%s' is a device; bundles hold regular files only", raw);
    if (type == AE_IFIFO)
        return al_err_set(err, AL_ERR_INVALID, "entry '%s' is a FIFO; bundles hold regular files only", raw);
    if (type == AE_IFDIR) {
        char d[AL_BUNDLE_ENTRY_NAME + 1];
        snprintf(d, sizeof d, "%s", p);
        size_t dl = strlen(d);
        while (dl > 0 && d[dl - 1] == '/')
            d[--dl] = '\0';
        if (dl == 0 || strcmp(d, "blobs") == 0 || strcmp(d, "blobs/sha256") == 0 || strcmp(d, ".") == 0) {
            *skip = true;
            return AL_OK;
        }
        return al_err_set(err, AL_ERR_INVALID, "entry '%s' is a directory a bundle does not have", raw);
    }
    if (type != AE_IFREG)
        return al_err_set(err, AL_ERR_INVALID, "entry '%s' is not a regular file", raw);
    if (!al_oci_path_safe(p))
        return al_err_set(err, AL_ERR_INVALID, "entry '%s' has an unsafe name", raw);
    snprintf(name, AL_LIMIT_FILE_NAME + 1, "%s", p);
    if (al_ing_find(g, name) || (strcmp(name, AL_BUNDLE_CHECKSUMS) == 0 && g->sums_text))
        return al_err_set(err, AL_ERR_INVALID, "entry '%s' appears twice in the bundle", name);
    for (size_t i = 0; i < g->n_sigs; i++)
        if (strcmp(g->sigs[i].name, name) == 0)
            return al_err_set(err, AL_ERR_INVALID, "entry '%s' appears twice in the bundle", name);
    if (archive_entry_size_is_set(e) && archive_entry_size(e) < 0)
        return al_err_set(err, AL_ERR_INVALID, "entry '%s' has a negative size", name);
    return AL_OK;
}

/* Reads a small control entry whole, capped. */
static enum al_rc read_small(struct archive *a, const char *name, size_t cap, char **out, size_t *len,
                             struct al_err *err)
{
    char *buf = malloc(cap + 1);
    size_t n = 0;
    if (buf == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    for (;;) {
        la_ssize_t k = archive_read_data(a, buf + n, cap + 1 - n);
        if (k < 0) {
            free(buf);
            return al_err_set(err, AL_ERR_INVALID, "archive is damaged or truncated in '%s': %s", name,
                              archive_error_string(a) ? archive_error_string(a) : "read error");
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (n > cap) {
            free(buf);
            return al_err_set(err, AL_ERR_LIMIT, "'%s' is over %zu bytes", name, cap);
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return AL_OK;
}

/* Streams one file entry into a blob writer (or only a hash in a dry run). */
static enum al_rc stream_entry(struct al_ing *g, struct archive *a, struct archive_entry *e, const char *name,
                               struct al_err *err)
{
    if (g->n_ents >= AL_BUNDLE_MAX_ENTRIES)
        return al_err_set(err, AL_ERR_LIMIT, "the bundle has more than %u entries (AL_BUNDLE_MAX_ENTRIES)",
                          AL_BUNDLE_MAX_ENTRIES);
    if (g->sums && !al_sums_find(g->sums, g->n_sums, name))
        return al_err_set(err, AL_ERR_VERIFY, "entry '%s' is not listed in checksums.txt", name);
    char h1[32], h2[32];
    uint64_t declared = archive_entry_size_is_set(e) ? (uint64_t)archive_entry_size(e) : 0;
    uint64_t listed = listed_size(g, name);
    if (listed != UINT64_MAX && declared > listed)
        return al_err_set(err, AL_ERR_VERIFY, "entry '%s' is %" PRIu64 " bytes, more than the %" PRIu64
                          " bytes its manifest lists", name, declared, listed);
    if (declared > g->max_entry) {
        human(g->max_entry, h1, sizeof h1);
        return al_err_set(err, AL_ERR_LIMIT, "entry '%s' declares %" PRIu64 " bytes, over the per-entry cap of %s "
                          "(--max-entry-size)", name, declared, h1);
    }
    struct al_ing_entry *en = &g->ents[g->n_ents++];
    memset(en, 0, sizeof *en);
    snprintf(en->name, sizeof en->name, "%s", name);
    en->exec = (archive_entry_perm(e) & 0111) != 0;
    struct al_sha256 *h = NULL;
    enum al_rc rc = AL_OK;
    if (g->o->dry_run) {
        if ((h = al_sha256_new()) == NULL)
            return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    } else if ((rc = al_repo_blob_writer_new(g->r, &en->w, err))) {
        return rc;
    }
    bool keep = (strcmp(name, "index.json") == 0 || strcmp(name, "oci-layout") == 0 ||
                 strcmp(name, AL_BUNDLE_DELTA_JSON) == 0 ||
                 strncmp(name, AL_BUNDLE_BLOB_DIR, sizeof AL_BUNDLE_BLOB_DIR - 1) == 0) &&
                declared <= AL_LIMIT_MANIFEST && g->kept + declared <= AL_BUNDLE_KEEP_MAX;
    if (!keep)
        al_ing_values_begin(en, declared);
    if (keep && (en->mem = malloc(declared + 1)) == NULL) {
        al_sha256_free(h);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    for (;;) {
        const void *buf;
        size_t len;
        la_int64_t off;
        int r = archive_read_data_block(a, &buf, &len, &off);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = al_err_set(err, AL_ERR_INVALID, "archive is damaged or truncated in '%s': %s", name,
                            archive_error_string(a) ? archive_error_string(a) : "read error");
            break;
        }
        if (off < 0 || (uint64_t)off != en->size) {
            rc = al_err_set(err, AL_ERR_INVALID, "entry '%s' is sparse or has holes; not accepted", name);
            break;
        }
        if (en->head_len < sizeof en->head) {
            size_t k = len < sizeof en->head - en->head_len ? len : sizeof en->head - en->head_len;
            memcpy(en->head + en->head_len, buf, k);
            en->head_len += k;
        }
        en->size += len;
        g->total += len;
        if (en->size > listed) {
            rc = al_err_set(err, AL_ERR_VERIFY, "entry '%s' is longer than the %" PRIu64 " bytes its manifest lists",
                            name, listed);
            break;
        }
        if (en->size > g->max_entry || g->total > g->max_total) {
            human(en->size > g->max_entry ? g->max_entry : g->max_total, h1, sizeof h1);
            human(g->total, h2, sizeof h2);
            rc = al_err_set(err, AL_ERR_LIMIT, "entry '%s' passes the %s cap of %s after %s in all (%s); a "
                            "decompression bomb, or raise the cap", name,
                            en->size > g->max_entry ? "per-entry" : "total", h1, h2,
                            en->size > g->max_entry ? "--max-entry-size" : "--max-total-size");
            break;
        }
        if (en->mem) {
            if (en->size > declared) {
                rc = al_err_set(err, AL_ERR_INVALID, "entry '%s' is longer than its header says", name);
                break;
            }
            memcpy(en->mem + en->mem_len, buf, len);
            en->mem_len += len;
        }
        if (h)
            al_sha256_update(h, buf, len);
        else if ((rc = al_blob_writer_write(en->w, buf, len, err)))
            break;
        al_ing_values_feed(en, buf, len);
    }
    al_ing_values_end(en);
    if (en->mem) {
        en->mem[en->mem_len] = '\0';
        g->kept += en->mem_len;
    }
    if (h) {
        uint8_t raw[AL_SHA256_BYTES];
        al_sha256_final(h, raw);
        al_digest_format(raw, en->digest);
        al_sha256_free(h);
    } else {
        enum al_rc drc = al_blob_writer_digest(en->w, en->digest, NULL, rc ? NULL : err);
        if (!rc)
            rc = drc;
    }
    if (rc)
        return rc;
    if (listed != UINT64_MAX && en->size != listed)
        return al_err_set(err, AL_ERR_VERIFY, "entry '%s' is %" PRIu64 " bytes, not the %" PRIu64
                          " its manifest lists", name, en->size, listed);
    struct al_sum *s = g->sums ? al_sums_find(g->sums, g->n_sums, name) : NULL;
    if (s && !al_digest_hex_eq(en->digest, s->hex))
        return al_err_set(err, AL_ERR_VERIFY, "'%s' does not match checksums.txt: listed sha256:%s, content is %s",
                          name, s->hex, en->digest);
    return AL_OK;
}

static enum al_rc on_entry(struct al_ing *g, struct archive *a, struct archive_entry *e, struct al_err *err)
{
    char name[AL_LIMIT_FILE_NAME + 1];
    bool skip = false;
    enum al_rc rc = judge_header(g, e, name, &skip, err);
    if (rc || skip)
        return rc;
    if (strcmp(name, AL_BUNDLE_CHECKSUMS) == 0) {
        if ((rc = read_small(a, name, AL_BUNDLE_CHECKSUMS_MAX, &g->sums_text, &g->sums_len, err)) ||
            (rc = al_sums_parse(g->sums_text, g->sums_len, &g->sums, &g->n_sums, err)))
            return rc;
        /* Entries streamed before checksums.txt (a plain bundle) are checked now. */
        for (size_t i = 0; i < g->n_ents; i++) {
            struct al_sum *s = al_sums_find(g->sums, g->n_sums, g->ents[i].name);
            if (s == NULL)
                return al_err_set(err, AL_ERR_VERIFY, "entry '%s' is not listed in checksums.txt", g->ents[i].name);
            if (!al_digest_hex_eq(g->ents[i].digest, s->hex))
                return al_err_set(err, AL_ERR_VERIFY, "'%s' does not match checksums.txt: listed sha256:%s, "
                                  "content is %s", g->ents[i].name, s->hex, g->ents[i].digest);
        }
        return AL_OK;
    }
    char kind = al_bundle_sig_kind(name);
    if (kind) {
        if (g->n_sigs >= AL_BUNDLE_MAX_SIGS)
            return al_err_set(err, AL_ERR_LIMIT, "more than %u signature files (AL_BUNDLE_MAX_SIGS)",
                              AL_BUNDLE_MAX_SIGS);
        if (g->sigs_checked)
            return al_err_set(err, AL_ERR_INVALID, "signature '%s' comes after the signed files; a bundle puts its "
                              "signatures first or last", name);
        struct al_ing_sig *s = &g->sigs[g->n_sigs];
        if ((rc = read_small(a, name, kind == 'm' ? AL_LIMIT_MINISIGN_SIG_FILE : AL_LIMIT_PGP_SIG, &s->text,
                             &s->len, err)))
            return rc;
        snprintf(s->name, sizeof s->name, "%.63s", name);
        s->kind = kind;
        g->n_sigs++;
        return AL_OK;
    }
    /* checksums.txt and its signatures came first: prove them before streaming any blob. */
    if (!g->sigs_checked && g->sums && g->n_sigs > 0) {
        if ((rc = al_ing_check_sigs(g, err)))
            return rc;
    }
    if ((rc = stream_entry(g, a, e, name, err)))
        return rc;
    return al_ing_parse_native(g, err);
}

uint64_t al_ing_default_cap(struct al_repo *r)
{
    struct statvfs sv;
    if (statvfs(al_repo_home(r), &sv) != 0)
        return UINT64_MAX;
    uint64_t free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
    uint64_t margin = SPACE_MARGIN + free_bytes / 50;
    return free_bytes > margin ? free_bytes - margin : 0;
}

void al_bundle_report_release(struct al_bundle_report *rep)
{
    free(rep->files);
    rep->files = NULL;
    rep->n_files = 0;
}

void al_ing_release(struct al_ing *g)
{
    for (size_t i = 0; i < g->n_ents; i++) {
        al_blob_writer_free(g->ents[i].w);
        free(g->ents[i].mem);
        al_ing_values_free(&g->ents[i]);
    }
    free(g->ents);
    for (size_t i = 0; i < g->n_sigs; i++)
        free(g->sigs[i].text);
    free(g->sums_text);
    free(g->sums);
    free(g->scan);
    free(g->scan_refused);
    free(g->license);
    free(g->card);
    free(g->import);
    al_oci_manifest_release(&g->man);
    al_trust_release(&g->trust);
    al_ing_delta_release(&g->delta);
}

enum al_rc al_bundle_ingest(struct al_repo *r, const char *path, const struct al_bundle_opts *o,
                            struct al_bundle_report *rep, struct al_err *err)
{
    memset(rep, 0, sizeof *rep);
    struct al_ing g;
    memset(&g, 0, sizeof g);
    g.r = r, g.o = o, g.rep = rep;
    uint64_t cap = al_ing_default_cap(r);
    g.max_entry = o->max_entry ? o->max_entry : cap;
    g.max_total = o->max_total ? o->max_total : cap;
    struct source src = {.fd = -1};
    struct archive *a = NULL;
    bool locked = false;
    char abs[AL_LIMIT_PATH];
    if (realpath(path, abs) == NULL)
        snprintf(abs, sizeof abs, "%s", path);
    enum al_rc rc = al_trust_load(r, &g.trust, err);
    if (rc)
        return rc;
    src.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (src.fd < 0) {
        rc = al_err_sys(err, errno == ENOENT ? AL_ERR_NOT_FOUND : AL_ERR_IO, "cannot open bundle '%s'", path);
        al_trust_release(&g.trust);
        return rc;
    }
    struct stat st;
    if (fstat(src.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = al_err_set(err, AL_ERR_INVALID, "bundle '%s' is not a regular file", path);
        goto out;
    }
    (void)posix_fadvise(src.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    src.hash = al_hash_stream_new();
    g.ents = calloc(AL_ING_MAX_ENTRIES, sizeof *g.ents);
    if (!src.hash || !g.ents) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (o->progress)
        src.progress = al_progress_new(o->dry_run ? "verify" : "ingest", (uint64_t)st.st_size);
    if (!o->dry_run) {
        /* Writers hold the gc lock shared so gc cannot take their blobs before the commit. */
        if ((rc = al_repo_writer_begin(r, err)))
            goto out;
        locked = true;
    }
    a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_format_tar(a);
    if (st.st_size == 0) {
        rc = al_err_set(err, AL_ERR_INVALID, "bundle '%s' is empty (0 bytes)", path);
        goto out;
    }
    if (archive_read_open(a, &src, NULL, src_read, NULL) != ARCHIVE_OK) {
        const char *why = archive_error_string(a) ? archive_error_string(a) : "unknown format";
        if (archive_filter_count(a) > 1)
            rc = al_err_set(err, AL_ERR_INVALID, "bundle '%s': the %s stream is corrupt or holds no tar archive: %s",
                            path, archive_filter_name(a, 0), why);
        else
            rc = al_err_set(err, AL_ERR_INVALID, "'%s' is not a tar archive (plain, gzip or zstd): %s", path, why);
        goto out;
    }
    size_t entries = 0;
    for (;;) {
        struct archive_entry *e = NULL;
        int hr = archive_read_next_header(a, &e);
        if (hr == ARCHIVE_EOF)
            break;
        if (hr < ARCHIVE_WARN) {
            rc = al_err_set(err, AL_ERR_INVALID, "archive is damaged or truncated after %zu entries: %s", entries,
                            archive_error_string(a) ? archive_error_string(a) : "read error");
            break;
        }
        entries++;
        if ((rc = on_entry(&g, a, e, err)))
            break;
    }
    if (!rc && entries == 0)
        rc = al_err_set(err, AL_ERR_INVALID, "bundle '%s' is empty", path);
    if (!rc)
        al_ing_check(&g, "archive");
    if (!rc) {
        /* The raw bytes after the tar end (padding) belong to the digest too. */
        src_drain(&src);
        al_hash_stream_final(src.hash, rep->bundle);
        rep->bundle_bytes = src.bytes;
        rc = al_ing_finish(&g, abs, err);
    }
out:
    if (a)
        archive_read_free(a);
    if (src.hash && src.fd >= 0 && rep->bundle[0] == '\0') {
        src_drain(&src);
        al_hash_stream_final(src.hash, rep->bundle);
        rep->bundle_bytes = src.bytes;
    }
    al_progress_free(src.progress);
    snprintf(rep->checks, sizeof rep->checks, "%s", g.checks);
    rep->files = calloc(g.n_ents + 1, sizeof *rep->files);
    for (size_t i = 0; rep->files && i < g.n_ents; i++) {
        struct al_bundle_file *f = &rep->files[rep->n_files++];
        snprintf(f->name, sizeof f->name, "%s", g.ents[i].name);
        memcpy(f->digest, g.ents[i].digest, AL_DIGEST_SIZE);
        f->size = g.ents[i].size;
        struct al_sum *s = g.sums ? al_sums_find(g.sums, g.n_sums, f->name) : NULL;
        snprintf(f->status, sizeof f->status, "%s",
                 !s ? (g.delta.on && f->name[0] == 'b' ? "rebuilt" : "not listed")
                    : al_digest_hex_eq(f->digest, s->hex) ? "ok" : "MISMATCH");
    }
    if (rc && !o->dry_run && src.hash)
        rc = al_ing_record_refusal(&g, abs, rc, err);
    al_ing_release(&g); /* frees uncommitted writers: their tmp files go */
    if (locked)
        al_repo_writer_end(r);
    al_hash_stream_free(src.hash);
    if (src.fd >= 0)
        close(src.fd);
    return rc;
}
