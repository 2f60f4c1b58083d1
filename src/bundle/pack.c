/*
 * pack.c: writing a native bundle (see bundle.h for the layout).
 *
 * Determinism: the entry order is fixed (checksums.txt, signatures, the OCI
 * layout, the manifest, the config, the layers in manifest order); every
 * entry has mode 0444, uid/gid 0, no owner names and the creation date as
 * mtime; minisign signatures (Ed25519) are deterministic and their trusted
 * comment is made from the manifest, not the clock; the creation date comes
 * from the caller, SOURCE_DATE_EPOCH, or the newest input's mtime.
 *
 * Files are hashed once to build the manifest and checksums.txt (which come
 * first in the archive), then streamed into the archive and hashed again: a
 * file changed between the two reads fails the pack instead of shipping a
 * bundle that cannot verify.
 */
#include "bundle/bundle_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <jansson.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "core/buf.h"
#include "core/fs.h"
#include "core/progress.h"
#include "scan/scan.h"

#define BLOCK (1u << 20)

struct pk_file {
    struct al_oci_layer l;
    char src[AL_LIMIT_PATH];
    /* A delta: how this file travels. via 'b': the base has it (not shipped);
     * 'p': a patch (entry delta/<layer hex>, made into patch_src); else whole. */
    char via;
    char entry[AL_LIMIT_FILE_NAME + 1]; /* the archive name when not the blob name */
    char patch_src[AL_LIMIT_PATH];
    char patch_digest[AL_DIGEST_SIZE];
    uint64_t patch_size;
    char base_file[AL_DIGEST_SIZE];
};

struct pk {
    struct pk_file *files;
    size_t n;
    time_t newest;
    char *delta_json; /* a delta's delta.json, else NULL */
    char *card;       /* the model card for the manifest's AL_ANN_CARD, else NULL */
};

static enum al_rc add_file(struct pk *p, const char *src, const char *path, struct al_err *err)
{
    if (p->n >= AL_LIMIT_FILES_PER_MODEL)
        return al_err_set(err, AL_ERR_LIMIT, "more than %u files (AL_LIMIT_FILES_PER_MODEL)", AL_LIMIT_FILES_PER_MODEL);
    if (!al_oci_path_safe(path))
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not a usable file name inside a bundle", path);
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->files[i].l.path, path) == 0)
            return al_err_set(err, AL_ERR_INVALID, "two files are named '%s'; each file needs its own name", path);
    struct stat st;
    if (stat(src, &st) != 0)
        return al_err_sys(err, errno == ENOENT ? AL_ERR_NOT_FOUND : AL_ERR_IO, "cannot stat '%s'", src);
    if (!S_ISREG(st.st_mode))
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not a regular file", src);
    if (st.st_mtime > p->newest)
        p->newest = st.st_mtime;
    struct pk_file *f = &p->files[p->n++];
    memset(f, 0, sizeof *f);
    snprintf(f->l.path, sizeof f->l.path, "%s", path);
    snprintf(f->l.media_type, sizeof f->l.media_type, "%s", al_oci_media_type_for(path));
    return al_path_fmt(f->src, sizeof f->src, err, "%s", src);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Adds the regular files of dir (sorted, not recursive) as prefix/<name>. */
static enum al_rc add_dir(struct pk *p, const char *dir, const char *prefix, struct al_err *err)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return al_err_sys(err, AL_ERR_NOT_FOUND, "cannot open directory '%s'", dir);
    char *names[AL_LIMIT_FILES_PER_MODEL];
    size_t n = 0;
    enum al_rc rc = AL_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && !rc) {
        if (de->d_name[0] == '.')
            continue;
        if (n >= AL_LIMIT_FILES_PER_MODEL)
            rc = al_err_set(err, AL_ERR_LIMIT, "'%s' holds more than %u files", dir, AL_LIMIT_FILES_PER_MODEL);
        else if ((names[n] = strdup(de->d_name)) == NULL)
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        else
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_str);
    for (size_t i = 0; i < n && !rc; i++) {
        char src[AL_LIMIT_PATH], path[AL_LIMIT_FILE_NAME + 1];
        struct stat st;
        if ((rc = al_path_fmt(src, sizeof src, err, "%s/%s", dir, names[i])))
            break;
        if (stat(src, &st) == 0 && !S_ISREG(st.st_mode))
            continue;
        if ((rc = al_path_fmt(path, sizeof path, err, "%s/%s", prefix, names[i])))
            break;
        rc = add_file(p, src, path, err);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return rc;
}

/* ---- the archive ----
 * zstd is applied here with libzstd's streaming API rather than through
 * libarchive's zstd write filter, whose output libarchive 3.6.2 itself cannot
 * read back ("Unknown frame descriptor"). One frame, single-threaded, so the
 * bytes are deterministic. */
struct sink {
    int fd;
    struct al_sha256 *hash;
    uint64_t bytes;
    ZSTD_CCtx *z;       /* NULL: no compression */
    unsigned char *zbuf;
    size_t zcap;
};

static int sink_raw(struct sink *s, const void *buf, size_t len, struct al_err *e)
{
    if (al_fs_write_all(s->fd, buf, len, e))
        return -1;
    al_sha256_update(s->hash, buf, len);
    s->bytes += len;
    return 0;
}

static int sink_zstd(struct sink *s, const void *buf, size_t len, ZSTD_EndDirective mode, struct al_err *e)
{
    ZSTD_inBuffer in = {buf, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {s->zbuf, s->zcap, 0};
        size_t left = ZSTD_compressStream2(s->z, &out, &in, mode);
        if (ZSTD_isError(left)) {
            al_err_set(e, AL_ERR_INTERNAL, "zstd: %s", ZSTD_getErrorName(left));
            return -1;
        }
        if (out.pos && sink_raw(s, s->zbuf, out.pos, e))
            return -1;
        if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
            return 0;
    }
}

static la_ssize_t sink_write(struct archive *a, void *ud, const void *buf, size_t len)
{
    struct sink *s = ud;
    struct al_err e = AL_ERR_INIT;
    int r = s->z ? sink_zstd(s, buf, len, ZSTD_e_continue, &e) : sink_raw(s, buf, len, &e);
    if (r) {
        archive_set_error(a, errno ? errno : EIO, "%s", e.msg);
        return -1;
    }
    return (la_ssize_t)len;
}

static enum al_rc put_header(struct archive *a, const char *name, uint64_t size, time_t mtime, struct al_err *err)
{
    struct archive_entry *e = archive_entry_new();
    if (e == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0444);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_mtime(e, mtime, 0);
    int r = archive_write_header(a, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK)
        return al_err_set(err, AL_ERR_IO, "cannot write entry '%s': %s", name, archive_error_string(a));
    return AL_OK;
}

static enum al_rc put_mem(struct archive *a, const char *name, const void *data, size_t len, time_t mtime,
                          struct al_err *err)
{
    enum al_rc rc = put_header(a, name, len, mtime, err);
    if (!rc && len && archive_write_data(a, data, len) != (la_ssize_t)len)
        rc = al_err_set(err, AL_ERR_IO, "cannot write entry '%s': %s", name, archive_error_string(a));
    return rc;
}

static enum al_rc put_file(struct archive *a, const struct pk_file *f, unsigned char *buf, time_t mtime,
                           struct al_progress *progress, struct al_err *err)
{
    char name[AL_LIMIT_FILE_NAME + 1];
    enum al_rc rc = f->entry[0] ? AL_OK : al_bundle_blob_name(f->l.digest, name, err);
    if (f->entry[0])
        snprintf(name, sizeof name, "%s", f->entry);
    if (!rc)
        rc = put_header(a, name, f->l.size, mtime, err);
    if (rc)
        return rc;
    int fd = open(f->src, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return al_err_sys(err, AL_ERR_IO, "cannot open '%s'", f->src);
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    struct al_sha256 *h = al_sha256_new();
    uint64_t done = 0;
    while (!rc) {
        ssize_t n = read(fd, buf, BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = al_err_sys(err, AL_ERR_IO, "cannot read '%s'", f->src);
        if (n <= 0)
            break;
        if (done + (uint64_t)n > f->l.size) {
            rc = al_err_set(err, AL_ERR_IO, "'%s' grew while it was packed", f->src);
            break;
        }
        al_sha256_update(h, buf, (size_t)n);
        if (archive_write_data(a, buf, (size_t)n) != n)
            rc = al_err_set(err, AL_ERR_IO, "cannot write '%s' into the bundle: %s", f->src, archive_error_string(a));
        done += (uint64_t)n;
        al_progress_add(progress, (uint64_t)n);
    }
    close(fd);
    uint8_t raw[AL_SHA256_BYTES];
    char got[AL_DIGEST_SIZE];
    al_sha256_final(h, raw);
    al_sha256_free(h);
    al_digest_format(raw, got);
    if (!rc && (done != f->l.size || strcmp(got, f->l.digest) != 0))
        rc = al_err_set(err, AL_ERR_IO, "'%s' changed while it was packed; pack again", f->src);
    return rc;
}

/* ---- pack ---- */

static enum al_rc collect_ref(struct al_repo *r, const struct al_bundle_pack_opts *o, struct pk *p,
                              struct al_version *v, char **config, char *previous, struct al_err *err)
{
    struct al_file *files = NULL;
    size_t n = 0;
    enum al_rc rc = al_repo_resolve(r, o->ref, v, err);
    if (!rc)
        rc = al_repo_list_files(r, v, &files, &n, err);
    for (size_t i = 0; !rc && i < n; i++) {
        char src[AL_LIMIT_PATH];
        if ((rc = al_repo_blob_path(r, files[i].digest, src, sizeof src, err)) ||
            (rc = add_file(p, src, files[i].path, err)))
            break;
        struct pk_file *f = &p->files[p->n - 1];
        memcpy(f->l.digest, files[i].digest, AL_DIGEST_SIZE);
        f->l.size = files[i].size;
        snprintf(f->l.media_type, sizeof f->l.media_type, "%s", files[i].media_type);
    }
    free(files);
    size_t len = 0;
    if (!rc)
        rc = al_repo_read_blob(r, v->config, AL_LIMIT_MANIFEST, config, &len, err);
    /* The card travels in the stored manifest's annotation. */
    char *text = NULL;
    struct al_oci_manifest sm;
    if (!rc && !(rc = al_repo_read_blob(r, v->manifest, AL_LIMIT_MANIFEST, &text, &len, err)) &&
        !(rc = al_oci_manifest_parse(text, len, &sm, err))) {
        p->card = sm.card;
        sm.card = NULL;
        al_oci_manifest_release(&sm);
    }
    free(text);
    struct al_version pv;
    if (!rc && al_repo_previous(r, v, &pv, NULL) == AL_OK)
        snprintf(previous, AL_DIGEST_SIZE, "%s", pv.manifest);
    return rc;
}

static enum al_rc collect_files(struct al_repo *r, const struct al_bundle_pack_opts *o, struct pk *p,
                                char **config, char *previous, struct al_err *err)
{
    enum al_rc rc = AL_OK;
    for (size_t i = 0; i < o->n_files && !rc; i++) {
        const char *base = strrchr(o->files[i], '/');
        rc = add_file(p, o->files[i], base ? base + 1 : o->files[i], err);
    }
    if (!rc && o->prompts_dir)
        rc = add_dir(p, o->prompts_dir, "prompts", err);
    if (!rc && o->bench_dir)
        rc = add_dir(p, o->bench_dir, "bench", err);
    if (rc)
        return rc;
    if (p->n == 0)
        return al_err_set(err, AL_ERR_USAGE, "no files to pack");
    struct al_model_facts facts;
    memset(&facts, 0, sizeof facts);
    bool gguf = false;
    for (size_t i = 0; i < p->n && !rc; i++) {
        struct al_progress *pr = o->progress ? al_progress_new(p->files[i].l.path, 0) : NULL;
        rc = al_sha256_path(p->files[i].src, p->files[i].l.digest, &p->files[i].l.size, pr, err);
        al_progress_free(pr);
        if (!rc && !gguf && strcmp(p->files[i].l.media_type, AL_MT_WEIGHT) == 0) {
            if ((rc = al_repo_facts(p->files[i].src, &facts, err)))
                break;
            gguf = facts.architecture[0] != '\0';
        }
    }
    char *card = NULL;
    size_t clen = 0;
    if (!rc && o->card_path)
        rc = al_fs_read_file(o->card_path, AL_LIMIT_CARD, &card, &clen, err);
    if (rc) {
        free(card);
        return rc;
    }
    struct al_oci_layer *layers = calloc(p->n, sizeof *layers);
    if (layers == NULL) {
        free(card);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < p->n; i++)
        layers[i] = p->files[i].l;
    struct al_oci_model m = {
        .name = o->name, .version = o->tag, .architecture = facts.architecture, .format = gguf ? "gguf" : "",
        .param_size = facts.param_size, .precision = facts.precision, .quantization = facts.quantization,
        .card_json = card, .layers = layers, .n_layers = p->n,
    };
    rc = al_oci_config_build(&m, config, err);
    free(layers);
    p->card = card; /* for the manifest */
    struct al_version cur;
    if (!rc && r && al_repo_resolve(r, o->name, &cur, NULL) == AL_OK)
        snprintf(previous, AL_DIGEST_SIZE, "%s", cur.manifest);
    return rc;
}

/* The build host's license check (al_policy_pack_decide): the card and the
 * GGUF's general.license of the files, judged by the built-in table and any
 * deny rule of this host's policy (r NULL: none). A license that needs an
 * acknowledgement, or forbids redistribution, refuses the pack unless ack
 * (--ack-license, or the kept manifest's) names it. Before anything is
 * written. */
static enum al_rc check_license(struct al_repo *r, const struct pk *p, const char *ack,
                                struct al_license_decision *d, struct al_err *err)
{
    struct al_bundle_license l;
    memset(&l, 0, sizeof l);
    enum al_rc rc = AL_OK;
    for (size_t i = 0; i < p->n && !rc; i++)
        rc = al_bundle_license_file(p->files[i].src, p->files[i].l.path, &l, err);
    if (rc)
        return rc;
    struct al_policy pol;
    al_policy_init(&pol);
    char path[AL_LIMIT_PATH];
    if (r && ((rc = al_policy_path(al_repo_home(r), path, sizeof path, err)) ||
              (rc = al_policy_load(path, &pol, err))))
        return rc;
    al_bundle_license_decide(&pol, &l, true, ack, d);
    al_policy_release(&pol);
    if (d->verdict == AL_DECIDE_ALLOW)
        return AL_OK;
    if (d->verdict == AL_DECIDE_ACK_NEEDED && l.card.n == 0 && !l.gguf[0]) {
        /* Nothing declared: nothing to acknowledge here; the site's `unknown` rule decides at ingest. */
        fprintf(stderr, "airlock: warning: the files declare no license (no README.md card, no GGUF "
                "general.license); the receiving site's 'unknown' rule will decide\n");
        return AL_OK;
    }
    char hint[256];
    if (d->verdict == AL_DECIDE_DENY && d->license[0] && strstr(d->rule, "rule deny"))
        snprintf(hint, sizeof hint, "nothing was written");
    else
        snprintf(hint, sizeof hint, "nothing was written; read the license, then pack with --ack-license %s "
                 "(recorded in the signed manifest)%s", d->license[0] ? d->license : "none",
                 ack && ack[0] && !d->acked ? "; the --ack-license given does not name it" : "");
    return al_bundle_license_refuse(d, "pack", hint, err);
}

/* The build host's scan: every file, before anything is written, so a
 * dangerous file never leaves in a bundle by accident. The tar entries are
 * written without executable bits, so an executable is a warning here (it
 * is dangerous only where a bit is set inside a bundle, at ingest). */
static enum al_rc scan_files(const struct al_bundle_pack_opts *o, const struct pk *p, char *worst, size_t size,
                             struct al_err *err)
{
    enum al_scan_verdict w = AL_SCAN_OK;
    for (size_t i = 0; i < p->n; i++) {
        struct al_scan_report *r = NULL;
        enum al_rc rc = al_scan_file_named(p->files[i].src, p->files[i].l.path, 0, &r, err);
        if (rc)
            return rc;
        if (r->verdict > w)
            w = r->verdict;
        if (r->verdict == AL_SCAN_DANGEROUS && !o->allow_dangerous) {
            rc = al_scan_refuse(r, "pack", "nothing was written; 'airlock scan FILE' lists every finding; "
                                "remove the file, or pack with --allow-dangerous (ingest scans it again)", err);
            al_scan_report_free(r);
            return rc;
        }
        if (r->verdict == AL_SCAN_DANGEROUS)
            fprintf(stderr, "airlock: warning: '%s' is dangerous (%s); packed anyway (--allow-dangerous)\n",
                    r->file, r->kind);
        al_scan_report_free(r);
    }
    snprintf(worst, size, "%s", al_scan_verdict_name(w));
    return AL_OK;
}

static enum al_rc write_archive(const struct al_bundle_pack_opts *o, const char *out_path, struct pk *p,
                                const char *sums, char **sigs, const char *index, const char *manifest,
                                const char *man_d, const char *config, const char *cfg_d, time_t mtime,
                                struct al_bundle_packed *res, struct al_err *err)
{
    char tmp[AL_LIMIT_PATH];
    enum al_rc rc = al_path_fmt(tmp, sizeof tmp, err, "%s.tmp.XXXXXX", out_path);
    if (rc)
        return rc;
    struct sink sk = {.fd = mkostemp(tmp, O_CLOEXEC), .hash = al_sha256_new()};
    if (sk.fd < 0) {
        al_sha256_free(sk.hash);
        return al_err_sys(err, AL_ERR_IO, "cannot create '%s'", tmp);
    }
    fchmod(sk.fd, 0644);
    unsigned char *buf = malloc(BLOCK);
    struct archive *a = archive_write_new();
    uint64_t total = 0;
    for (size_t i = 0; i < p->n; i++)
        total += p->files[i].l.size;
    struct al_progress *pr = o->progress ? al_progress_new("pack", total) : NULL;
    archive_write_set_format_pax_restricted(a);
    if (o->zstd) {
        sk.zcap = ZSTD_CStreamOutSize();
        sk.zbuf = malloc(sk.zcap);
        sk.z = ZSTD_createCCtx();
        if (!sk.zbuf || !sk.z || ZSTD_isError(ZSTD_CCtx_setParameter(sk.z, ZSTD_c_compressionLevel, 3)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(sk.z, ZSTD_c_checksumFlag, 1))) {
            rc = al_err_set(err, AL_ERR_NOMEM, "cannot set up zstd");
            goto out;
        }
    }
    if (buf == NULL || archive_write_open(a, &sk, NULL, sink_write, NULL) != ARCHIVE_OK) {
        rc = al_err_set(err, AL_ERR_IO, "cannot start the archive: %s", archive_error_string(a));
        goto out;
    }
    char name[AL_LIMIT_FILE_NAME + 1];
    if ((rc = put_mem(a, AL_BUNDLE_CHECKSUMS, sums, strlen(sums), mtime, err)))
        goto out;
    for (size_t i = 0; i < o->n_keys && !rc; i++) {
        if (i == 0)
            snprintf(name, sizeof name, AL_BUNDLE_CHECKSUMS ".minisig");
        else
            snprintf(name, sizeof name, AL_BUNDLE_CHECKSUMS ".%zu.minisig", i + 1);
        rc = put_mem(a, name, sigs[i], strlen(sigs[i]), mtime, err);
    }
    static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
    if (rc || (rc = put_mem(a, "oci-layout", layout, sizeof layout - 1, mtime, err)) ||
        (rc = put_mem(a, "index.json", index, strlen(index), mtime, err)))
        goto out;
    if ((rc = al_bundle_blob_name(man_d, name, err)) ||
        (rc = put_mem(a, name, manifest, strlen(manifest), mtime, err)))
        goto out;
    if ((rc = al_bundle_blob_name(cfg_d, name, err)) || (rc = put_mem(a, name, config, strlen(config), mtime, err)))
        goto out;
    if (p->delta_json && (rc = put_mem(a, AL_BUNDLE_DELTA_JSON, p->delta_json, strlen(p->delta_json), mtime, err)))
        goto out;
    for (size_t i = 0; i < p->n && !rc && !o->meta_only; i++) {
        bool dup = strcmp(p->files[i].l.digest, man_d) == 0 || strcmp(p->files[i].l.digest, cfg_d) == 0;
        for (size_t j = 0; j < i; j++)
            dup = dup || strcmp(p->files[j].l.digest, p->files[i].l.digest) == 0;
        if (dup || p->files[i].via == 'b')
            continue;
        if (p->files[i].via == 'p') {
            struct pk_file pf = p->files[i];
            memcpy(pf.l.digest, pf.patch_digest, AL_DIGEST_SIZE);
            pf.l.size = pf.patch_size;
            snprintf(pf.src, sizeof pf.src, "%s", pf.patch_src);
            rc = put_file(a, &pf, buf, mtime, pr, err);
        } else {
            rc = put_file(a, &p->files[i], buf, mtime, pr, err);
        }
    }
    if (!rc && archive_write_close(a) != ARCHIVE_OK)
        rc = al_err_set(err, AL_ERR_IO, "cannot finish the archive: %s", archive_error_string(a));
    if (!rc && sk.z && sink_zstd(&sk, "", 0, ZSTD_e_end, err))
        rc = err->rc ? err->rc : AL_ERR_IO;
    if (!rc && fsync(sk.fd) != 0)
        rc = al_err_sys(err, AL_ERR_IO, "cannot fsync '%s'", tmp);
    if (!rc && rename(tmp, out_path) != 0)
        rc = al_err_sys(err, AL_ERR_IO, "cannot rename '%s' to '%s'", tmp, out_path);
out:
    archive_write_free(a);
    ZSTD_freeCCtx(sk.z);
    free(sk.zbuf);
    al_progress_free(pr);
    close(sk.fd);
    if (rc)
        unlink(tmp);
    uint8_t raw[AL_SHA256_BYTES];
    al_sha256_final(sk.hash, raw);
    al_sha256_free(sk.hash);
    al_digest_format(raw, res->bundle);
    res->bytes = sk.bytes;
    free(buf);
    return rc;
}

/* One "<hex>  blobs/sha256/<hex>" line; false when digest is not a digest. */
static bool add_blob_sum(struct al_buf *sb, const char *digest)
{
    const char *hex = al_digest_hex(digest);
    if (hex)
        al_buf_addf(sb, "%s  " AL_BUNDLE_BLOB_DIR "%s\n", hex, hex);
    return hex != NULL;
}

/* checksums.txt: every file after it, in archive order (a blob once). */
static enum al_rc build_sums(const struct pk *p, const char *index, const char *man_d, const char *cfg_d,
                             char **out, struct al_err *err)
{
    static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
    uint8_t raw[AL_SHA256_BYTES];
    char hex[AL_SHA256_HEX + 1];
    struct al_buf sb;
    al_buf_init(&sb, AL_BUNDLE_CHECKSUMS_MAX);
    al_sha256_buf(layout, sizeof layout - 1, raw);
    al_hex(raw, AL_SHA256_BYTES, hex);
    al_buf_addf(&sb, "%s  oci-layout\n", hex);
    al_sha256_buf(index, strlen(index), raw);
    al_hex(raw, AL_SHA256_BYTES, hex);
    al_buf_addf(&sb, "%s  index.json\n", hex);
    bool digests_ok = add_blob_sum(&sb, man_d) && add_blob_sum(&sb, cfg_d);
    if (p->delta_json) {
        al_sha256_buf(p->delta_json, strlen(p->delta_json), raw);
        al_hex(raw, AL_SHA256_BYTES, hex);
        al_buf_addf(&sb, "%s  " AL_BUNDLE_DELTA_JSON "\n", hex);
    }
    for (size_t i = 0; i < p->n && digests_ok; i++) {
        bool dup = strcmp(p->files[i].l.digest, man_d) == 0 || strcmp(p->files[i].l.digest, cfg_d) == 0;
        for (size_t j = 0; j < i; j++)
            dup = dup || strcmp(p->files[j].l.digest, p->files[i].l.digest) == 0;
        if (dup || p->files[i].via == 'b')
            continue;
        if (p->files[i].via == 'p') {
            const char *ph = al_digest_hex(p->files[i].patch_digest);
            digests_ok = ph != NULL;
            if (ph)
                al_buf_addf(&sb, "%s  %s\n", ph, p->files[i].entry);
        } else {
            digests_ok = add_blob_sum(&sb, p->files[i].l.digest);
        }
    }
    if (!digests_ok) {
        al_buf_release(&sb);
        return al_err_set(err, AL_ERR_INTERNAL, "a packed blob has no sha256 digest");
    }
    if (al_buf_failed(&sb)) {
        al_buf_release(&sb);
        return al_err_set(err, AL_ERR_LIMIT, "checksums.txt is over its cap");
    }
    *out = al_buf_take(&sb);
    al_buf_release(&sb);
    return AL_OK;
}

/* The creation date: given, SOURCE_DATE_EPOCH, or the newest input. */
static enum al_rc creation_time(const struct al_bundle_pack_opts *o, const struct pk *p, int64_t *when,
                                struct al_err *err)
{
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (o->created)
        return al_time_parse(o->created, when, err);
    *when = sde && *sde ? strtoll(sde, NULL, 10) : (int64_t)p->newest;
    return AL_OK;
}

/* ---- delta (docs/internals/delta.md) ---- */

/* The base file a new file is patched from: the base's file of the same
 * path, else (a weight) the base's first weight file; NULL: none. */
static const struct al_file *delta_counterpart(const struct al_file *bf, size_t bn, const struct pk_file *f)
{
    for (size_t j = 0; j < bn; j++)
        if (strcmp(bf[j].path, f->l.path) == 0)
            return &bf[j];
    if (strcmp(f->l.media_type, AL_MT_WEIGHT) != 0)
        return NULL;
    for (size_t j = 0; j < bn; j++)
        if (strcmp(bf[j].media_type, AL_MT_WEIGHT) == 0)
            return &bf[j];
    return NULL;
}

/* Makes the patch of f from the base blob at base_src: into a temporary
 * file beside out_path (its digest and size into f), or only its plan when
 * out_path is NULL (a dry run). */
static enum al_rc delta_file(struct pk_file *f, const char *base_src, const char *out_path, bool progress,
                             struct al_delta_stats *st, struct al_err *err)
{
    int bfd = open(base_src, O_RDONLY | O_CLOEXEC), nfd = open(f->src, O_RDONLY | O_CLOEXEC), ofd = -1;
    enum al_rc rc = AL_OK;
    if (bfd < 0 || nfd < 0) {
        rc = al_err_sys(err, AL_ERR_IO, "cannot open '%s'", bfd < 0 ? base_src : f->src);
        goto out;
    }
    if (out_path) {
        if ((rc = al_path_fmt(f->patch_src, sizeof f->patch_src, err, "%s.delta.XXXXXX", out_path)))
            goto out;
        if ((ofd = mkostemp(f->patch_src, O_CLOEXEC)) < 0) {
            rc = al_err_sys(err, AL_ERR_IO, "cannot create '%s'", f->patch_src);
            f->patch_src[0] = '\0';
            goto out;
        }
    }
    struct al_progress *pr = progress ? al_progress_new(f->l.path, f->l.size) : NULL;
    rc = al_delta_make(bfd, base_src, nfd, f->src, ofd, pr, st, err);
    al_progress_free(pr);
    if (!rc && ofd >= 0)
        rc = al_sha256_path(f->patch_src, f->patch_digest, &f->patch_size, NULL, err);
    const char *hex = al_digest_hex(f->l.digest);
    if (!rc && ofd >= 0 && hex)
        snprintf(f->entry, sizeof f->entry, AL_BUNDLE_DELTA_DIR "%s", hex);
out:
    if (bfd >= 0)
        close(bfd);
    if (nfd >= 0)
        close(nfd);
    if (ofd >= 0)
        close(ofd);
    return rc;
}

/* A delta from o->delta_base: each file's route into res->delta, the patches
 * made (none when out_path is NULL: a dry run), and delta.json, which names
 * the base (manifest, ref, every file), the result's manifest (man_d) and
 * every result file with its digest and route. */
static enum al_rc plan_delta(struct al_repo *r, const struct al_bundle_pack_opts *o, struct pk *p,
                             const char *out_path, const char *man_d, struct al_bundle_packed *res,
                             struct al_err *err)
{
    struct al_version bv;
    struct al_file *bf = NULL;
    size_t bn = 0;
    enum al_rc rc = al_repo_resolve(r, o->delta_base, &bv, err);
    if (!rc)
        rc = al_repo_list_files(r, &bv, &bf, &bn, err);
    if (rc)
        return rc;
    char first[AL_LIMIT_TAG + 1] = "";
    sscanf(bv.tags, "%128[^,]", first);
    snprintf(res->delta_base, sizeof res->delta_base, "%s", bv.manifest);
    snprintf(res->delta_base_ref, sizeof res->delta_base_ref, "%s%s%s", bv.model, first[0] ? ":" : "", first);
    res->delta = calloc(p->n + 1, sizeof *res->delta);
    json_t *jb = json_array(), *jf = json_array();
    if (res->delta == NULL || !jb || !jf) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t j = 0; j < bn; j++)
        json_array_append_new(jb, json_pack("{s:s, s:s, s:I}", "path", bf[j].path, "digest", bf[j].digest, "size",
                                            (json_int_t)bf[j].size));
    for (size_t i = 0; i < p->n && !rc; i++) {
        struct pk_file *f = &p->files[i];
        struct al_bundle_delta_file *d = &res->delta[i];
        snprintf(d->path, sizeof d->path, "%s", f->l.path);
        d->size = f->l.size;
        f->via = 'w';
        for (size_t j = 0; j < bn && f->via == 'w'; j++)
            if (strcmp(bf[j].digest, f->l.digest) == 0)
                f->via = 'b';
        const struct al_file *c = f->via == 'w' ? delta_counterpart(bf, bn, f) : NULL;
        if (c) {
            char base_src[AL_LIMIT_PATH];
            if ((rc = al_repo_blob_path(r, c->digest, base_src, sizeof base_src, err)) ||
                (rc = delta_file(f, base_src, out_path, o->progress, &d->st, err)))
                break;
            f->via = 'p';
            memcpy(f->base_file, c->digest, AL_DIGEST_SIZE);
            snprintf(d->base_path, sizeof d->base_path, "%s", c->path);
        }
        snprintf(d->via, sizeof d->via, "%s", f->via == 'b' ? "base" : f->via == 'p' ? "patch" : "whole");
        json_t *e = json_pack("{s:s, s:s, s:I, s:s}", "path", f->l.path, "digest", f->l.digest, "size",
                              (json_int_t)f->l.size, "via", d->via);
        if (f->via == 'p' && out_path)
            json_object_update_new(e, json_pack("{s:s, s:s, s:s, s:I}", "base_file", f->base_file, "patch", f->entry,
                                                "patch_digest", f->patch_digest, "patch_size",
                                                (json_int_t)f->patch_size));
        json_array_append_new(jf, e);
    }
    if (!rc && out_path) {
        json_t *root = json_pack("{s:i, s:{s:s, s:s, s:o}, s:{s:s, s:O}}", "airlock_delta", 1, "base", "manifest",
                                 bv.manifest, "ref", res->delta_base_ref, "files", jb, "result", "manifest", man_d,
                                 "files", jf);
        jb = NULL;
        p->delta_json = root ? json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(root);
        if (p->delta_json == NULL)
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        else if (strlen(p->delta_json) > AL_LIMIT_MANIFEST)
            rc = al_err_set(err, AL_ERR_LIMIT, "delta.json is over %u bytes (AL_LIMIT_MANIFEST)", AL_LIMIT_MANIFEST);
    }
out:
    json_decref(jb);
    json_decref(jf);
    free(bf);
    return rc;
}

void al_bundle_packed_release(struct al_bundle_packed *res)
{
    free(res->delta);
    res->delta = NULL;
}

enum al_rc al_bundle_pack(struct al_repo *r, const struct al_bundle_pack_opts *o, const char *out_path,
                          struct al_bundle_packed *res, struct al_err *err)
{
    memset(res, 0, sizeof *res);
    if (o->delta_base && !o->ref)
        return al_err_set(err, AL_ERR_USAGE, "a delta is made between two stored versions");
    if (o->n_keys == 0 && !o->delta_dry_run)
        return al_err_set(err, AL_ERR_USAGE, "a bundle must be signed: give --sign KEY");
    if (o->ref && (o->prompts_dir || o->bench_dir || o->card_path || o->n_files))
        return al_err_set(err, AL_ERR_USAGE, "a stored version is packed as it is: --prompts, --bench and --card "
                          "go with files");
    struct pk p = {.files = calloc(AL_LIMIT_FILES_PER_MODEL, sizeof(struct pk_file))};
    char *config = NULL, *manifest = NULL, *index = NULL, *sums = NULL;
    char *sigs[AL_BUNDLE_MAX_SIGS] = {0};
    char previous[AL_DIGEST_SIZE] = "", created[40] = "", cfg_d[AL_DIGEST_SIZE], man_d[AL_DIGEST_SIZE];
    struct al_version v;
    const char *name = o->name, *tag = o->tag;
    char first[AL_LIMIT_TAG + 1] = "";
    bool keep_manifest = false;
    char ack[AL_LICENSE_ID_MAX + 1] = "", kept_ack[72] = "";
    struct al_adapter_binding adapter;
    memset(&adapter, 0, sizeof adapter);
    char *quantized = NULL, *finetuned = NULL;
    enum al_rc rc = AL_OK;
    if (p.files == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (o->ack_license && al_license_normalize(o->ack_license, ack, err)) {
        free(p.files);
        return al_err_set(err, AL_ERR_USAGE, "--ack-license: '%s' is not a license identifier", o->ack_license);
    }
    if (o->n_keys > AL_BUNDLE_MAX_SIGS) {
        rc = al_err_set(err, AL_ERR_LIMIT, "at most %u signing keys", AL_BUNDLE_MAX_SIGS);
        goto out;
    }
    int64_t seq = o->seq, when = 0;
    if (o->ref) {
        if (r == NULL) {
            rc = al_err_set(err, AL_ERR_USAGE, "packing a stored version needs a store");
            goto out;
        }
        if ((rc = collect_ref(r, o, &p, &v, &config, previous, err)))
            goto out;
        if (o->delta_base && o->delta_dry_run) {
            rc = plan_delta(r, o, &p, NULL, "", res, err);
            res->n_files = p.n;
            goto out;
        }
        name = v.model;
        sscanf(v.tags, "%128[^,]", first);
        /* A version that came in a bundle leaves with its signed manifest unchanged, so its
         * digest is the same at every site; new dates or a new sequence make a new one. */
        keep_manifest = v.seq > 0 && o->seq == 0 && o->expires == NULL && o->created == NULL && !ack[0];
        if (keep_manifest) {
            /* Its acknowledgement travels with it. */
            char *text = NULL;
            size_t mlen = 0;
            struct al_oci_manifest pm;
            if ((rc = al_repo_read_blob(r, v.manifest, AL_LIMIT_MANIFEST, &text, &mlen, err)) == AL_OK &&
                (rc = al_oci_manifest_parse(text, mlen, &pm, err)) == AL_OK) {
                snprintf(kept_ack, sizeof kept_ack, "%s", pm.license_ack);
                al_oci_manifest_release(&pm);
            }
            free(text);
            if (rc)
                goto out;
        }
        /* An adapter version leaves bound to its base's weights (the manifest's
         * annotations; the config it keeps says so too). */
        if ((rc = al_repo_version_adapter(r, &v, &adapter, err)))
            goto out;
        /* A quantized version leaves with its provenance. */
        if ((rc = al_repo_version_annotation(r, &v, AL_ANN_QUANTIZED, &quantized, err)))
            goto out;
        /* So does a fine-tuned one. */
        if ((rc = al_repo_version_annotation(r, &v, AL_ANN_FINETUNED, &finetuned, err)))
            goto out;
        tag = o->tag ? o->tag : first[0] ? first : "latest";
        if (al_time_parse(v.created, &when, NULL) == AL_OK)
            p.newest = (time_t)when;
        if (seq == 0 && v.seq > 0)
            seq = v.seq;
    } else {
        if (name == NULL || !al_name_valid(name) || (tag && !al_tag_valid(tag))) {
            rc = al_err_set(err, AL_ERR_USAGE, "packing files needs a valid NAME[:TAG]");
            goto out;
        }
        if ((rc = collect_files(r, o, &p, &config, previous, err)))
            goto out;
        tag = tag ? tag : "latest";
    }
    if ((rc = scan_files(o, &p, res->scan, sizeof res->scan, err)) ||
        (rc = check_license(r, &p, ack[0] ? ack : kept_ack, &res->license, err)) ||
        (rc = creation_time(o, &p, &when, err)))
        goto out;
    al_time_format(when, 0, AL_TIME_SECONDS, created, sizeof created);
    /* A delta is a new shipment of a version made here: its sequence is the time
     * it is made, so it is above the base's bundle however late that was packed
     * (a base packed with a suite recorded today, a result added last week). */
    if (seq == 0 && o->delta_base) {
        time_t now = time(NULL);
        seq = (int64_t)now > when ? (int64_t)now : when;
    }
    if (seq == 0)
        seq = when > 0 ? when : 1;
    int64_t exp = 0;
    if (o->expires && (rc = al_time_parse(o->expires, &exp, err)))
        goto out;
    struct al_oci_layer *layers = calloc(p.n, sizeof *layers);
    if (layers == NULL) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < p.n; i++)
        layers[i] = p.files[i].l;
    struct al_oci_model m = {
        .name = name, .version = tag, .created = created, .seq = seq, .expires = o->expires,
        .previous = previous[0] ? previous : NULL, .license_ack = ack[0] ? ack : NULL, .card_json = p.card,
        .layers = layers, .n_layers = p.n, .adapter_type = adapter.base[0] ? adapter.type : NULL,
        .adapter_base = adapter.base[0] ? adapter.base : NULL, .quantized = quantized,
        .finetuned = finetuned,
    };
    uint8_t raw[AL_SHA256_BYTES];
    al_sha256_buf(config, strlen(config), raw);
    al_digest_format(raw, cfg_d);
    if (keep_manifest) {
        size_t mlen = 0;
        struct al_oci_manifest pm;
        rc = al_repo_read_blob(r, v.manifest, AL_LIMIT_MANIFEST, &manifest, &mlen, err);
        if (!rc && !(rc = al_oci_manifest_parse(manifest, mlen, &pm, err))) {
            snprintf(created, sizeof created, "%s", pm.created);
            al_oci_manifest_release(&pm);
        }
    } else {
        rc = al_oci_manifest_build(&m, cfg_d, strlen(config), &manifest, err);
    }
    free(layers);
    if (rc)
        goto out;
    al_sha256_buf(manifest, strlen(manifest), raw);
    al_digest_format(raw, man_d);
    struct al_oci_index_entry ie = {.digest = "", .size = strlen(manifest)};
    snprintf(ie.ref_name, sizeof ie.ref_name, "%s:%s", name, tag);
    memcpy(ie.digest, man_d, AL_DIGEST_SIZE);
    if ((rc = al_oci_index_build(&ie, 1, &index, err)))
        goto out;
    if (o->delta_base && (rc = plan_delta(r, o, &p, out_path, man_d, res, err)))
        goto out;
    if ((rc = build_sums(&p, index, man_d, cfg_d, &sums, err)))
        goto out;
    char comment[512];
    snprintf(comment, sizeof comment, "airlock bundle %s:%s sequence %" PRId64 " manifest %s", name, tag, seq, man_d);
    for (size_t i = 0; i < o->n_keys && !rc; i++)
        rc = al_minisign_sign(o->keys[i], sums, strlen(sums), comment, NULL, &sigs[i], err);
    if (rc)
        goto out;
    if ((rc = write_archive(o, out_path, &p, sums, sigs, index, manifest, man_d, config, cfg_d, (time_t)when, res,
                            err)))
        goto out;
    memcpy(res->manifest, man_d, AL_DIGEST_SIZE);
    res->seq = seq;
    snprintf(res->created, sizeof res->created, "%s", created);
    res->n_files = p.n;
out:
    for (size_t i = 0; i < AL_BUNDLE_MAX_SIGS; i++)
        free(sigs[i]);
    free(sums);
    free(index);
    free(manifest);
    free(config);
    for (size_t i = 0; p.files && i < p.n; i++)
        if (p.files[i].patch_src[0])
            unlink(p.files[i].patch_src);
    free(p.delta_json);
    free(quantized);
    free(finetuned);
    free(p.card);
    free(p.files);
    return rc;
}
