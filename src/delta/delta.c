/*
 * delta.c: making and applying patches made of tensors (see delta.h).
 *
 * Invariants: no op produces more than AL_DELTA_CHUNK bytes nor names a
 * prefix over AL_DELTA_CHUNK, so both sides hold at most three chunk buffers
 * whatever the file or tensor size. Frames are made with ZSTD_compress2 in
 * one call (deterministic for the same inputs and level) and carry their
 * content size, which apply checks before and after decompressing.
 */
#include "delta/delta.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "core/fs.h"
#include "core/progress.h"
#include "gguf/gguf.h"

#define IO_BLOCK (1u << 20)

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static enum al_rc pread_all(int fd, void *buf, size_t len, uint64_t off, const char *name, struct al_err *err)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return al_err_sys(err, AL_ERR_IO, "cannot read '%s'", name);
        if (n == 0)
            return al_err_set(err, AL_ERR_IO, "cannot read '%s': it ended early (changed while read?)", name);
        p += n, off += (uint64_t)n, len -= (size_t)n;
    }
    return AL_OK;
}

static enum al_rc file_size(int fd, const char *name, uint64_t *out, struct al_err *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return al_err_sys(err, AL_ERR_IO, "cannot stat '%s'", name);
    if (!S_ISREG(st.st_mode))
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not a regular file", name);
    *out = (uint64_t)st.st_size;
    return AL_OK;
}

/* ZSTD window for a frame of len bytes after a prefix of plen bytes. */
static int window_log(uint64_t plen, uint64_t len)
{
    int w = 10;
    while (w < 30 && ((uint64_t)1 << w) < plen + len)
        w++;
    return w;
}

/* ---- make ---- */

struct mk {
    int base_fd, new_fd, out_fd; /* out_fd -1: dry run */
    const char *base_name, *new_name;
    uint64_t base_size, new_size, pos; /* pos: result bytes planned so far */
    unsigned char *bbuf, *nbuf, *cbuf;
    size_t ccap;
    ZSTD_CCtx *z;
    struct al_progress *progress;
    struct al_delta_stats *st;
    uint64_t copy_off, copy_len; /* a 'C' op not written yet: consecutive copies become one */
};

static enum al_rc out_write(struct mk *m, const void *p, size_t len, struct al_err *err)
{
    m->st->patch_bytes += len;
    return m->out_fd < 0 ? AL_OK : al_fs_write_all(m->out_fd, p, len, err);
}

/* Writes the pending copy, if any. */
static enum al_rc flush_copy(struct mk *m, struct al_err *err)
{
    if (m->copy_len == 0)
        return AL_OK;
    unsigned char op[17] = {'C'};
    put64(op + 1, m->copy_off);
    put64(op + 9, m->copy_len);
    m->copy_len = 0;
    return out_write(m, op, sizeof op, err);
}

/* A copy that continues the pending one extends it: an unchanged run of
 * tensors (and the padding between them) is one op, not one per tensor. */
static enum al_rc op_copy(struct mk *m, uint64_t base_off, uint64_t len, struct al_err *err)
{
    enum al_rc rc = AL_OK;
    if (m->copy_len && m->copy_off + m->copy_len == base_off) {
        m->copy_len += len;
    } else {
        rc = flush_copy(m, err);
        m->copy_off = base_off;
        m->copy_len = len;
    }
    m->pos += len;
    return rc;
}

#define ZEROS_IN_COPY_MAX 4096u /* padding between tensors is at most the alignment */

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static enum al_rc op_zeros(struct mk *m, uint64_t len, struct al_err *err)
{
    /* Zeros where the base has zeros too, right after a pending copy: the
     * copy goes on through them. */
    unsigned char z[ZEROS_IN_COPY_MAX];
    if (m->copy_len && len <= sizeof z && m->copy_off + m->copy_len + len <= m->base_size) {
        enum al_rc rc = pread_all(m->base_fd, z, (size_t)len, m->copy_off + m->copy_len, m->base_name, err);
        if (rc)
            return rc;
        if (all_zero(z, (size_t)len)) {
            m->copy_len += len;
            m->pos += len;
            return AL_OK;
        }
    }
    enum al_rc rc = flush_copy(m, err);
    if (rc)
        return rc;
    unsigned char op[9] = {'Z'};
    put64(op + 1, len);
    m->pos += len;
    return out_write(m, op, sizeof op, err);
}

/* One 'L' or 'P' op: the new bytes [new_off, +len) (len <= chunk), with the
 * base bytes [base_off, +base_len) as prefix when base_len > 0. */
static enum al_rc op_frame(struct mk *m, uint64_t new_off, size_t len, uint64_t base_off, size_t base_len,
                           struct al_err *err)
{
    enum al_rc rc = flush_copy(m, err);
    if (!rc)
        rc = pread_all(m->new_fd, m->nbuf, len, new_off, m->new_name, err);
    if (!rc && base_len)
        rc = pread_all(m->base_fd, m->bbuf, base_len, base_off, m->base_name, err);
    if (rc)
        return rc;
    ZSTD_CCtx_reset(m->z, ZSTD_reset_session_and_parameters);
    size_t zr = ZSTD_CCtx_setParameter(m->z, ZSTD_c_compressionLevel, AL_DELTA_LEVEL);
    if (!ZSTD_isError(zr))
        zr = ZSTD_CCtx_setParameter(m->z, ZSTD_c_enableLongDistanceMatching, 1);
    if (!ZSTD_isError(zr))
        zr = ZSTD_CCtx_setParameter(m->z, ZSTD_c_windowLog, window_log(base_len, len));
    if (!ZSTD_isError(zr) && base_len)
        zr = ZSTD_CCtx_refPrefix(m->z, m->bbuf, base_len);
    if (!ZSTD_isError(zr))
        zr = ZSTD_compress2(m->z, m->cbuf, m->ccap, m->nbuf, len);
    if (ZSTD_isError(zr))
        return al_err_set(err, AL_ERR_INTERNAL, "zstd cannot compress '%s' at offset %" PRIu64 ": %s", m->new_name,
                          new_off, ZSTD_getErrorName(zr));
    unsigned char op[33];
    size_t n = 0;
    op[n++] = base_len ? 'P' : 'L';
    if (base_len) {
        put64(op + n, base_off), n += 8;
        put64(op + n, base_len), n += 8;
    }
    put64(op + n, len), n += 8;
    put64(op + n, zr), n += 8;
    m->pos += len;
    if ((rc = out_write(m, op, n, err)))
        return rc;
    return out_write(m, m->cbuf, zr, err);
}

/* The new bytes [off, +len) that are not a tensor: zeros are a count, other
 * bytes a frame with the base's bytes [boff, +blen) as prefix (blen may be
 * 0), chunk by chunk. */
static enum al_rc emit_other(struct mk *m, uint64_t off, uint64_t len, uint64_t boff, uint64_t blen,
                             struct al_err *err)
{
    enum al_rc rc = AL_OK;
    for (uint64_t done = 0; done < len && !rc; done += AL_DELTA_CHUNK) {
        size_t n = len - done < AL_DELTA_CHUNK ? (size_t)(len - done) : AL_DELTA_CHUNK;
        if ((rc = pread_all(m->new_fd, m->nbuf, n, off + done, m->new_name, err)))
            break;
        m->st->bytes_meta += n;
        if (all_zero(m->nbuf, n)) {
            rc = op_zeros(m, n, err);
            continue;
        }
        if (m->out_fd < 0) {
            m->pos += n;
            continue;
        }
        size_t bl = 0;
        if (done < blen)
            bl = blen - done < AL_DELTA_CHUNK ? (size_t)(blen - done) : AL_DELTA_CHUNK;
        rc = op_frame(m, off + done, n, boff + done, bl, err);
    }
    return rc;
}

/* Compares [a, +len) of the new file with [b, +len) of the base. */
static enum al_rc same_bytes(struct mk *m, uint64_t a, uint64_t b, uint64_t len, bool *same, struct al_err *err)
{
    *same = true;
    for (uint64_t done = 0; done < len && *same; done += AL_DELTA_CHUNK) {
        size_t n = len - done < AL_DELTA_CHUNK ? (size_t)(len - done) : AL_DELTA_CHUNK;
        enum al_rc rc = pread_all(m->new_fd, m->nbuf, n, a + done, m->new_name, err);
        if (!rc)
            rc = pread_all(m->base_fd, m->bbuf, n, b + done, m->base_name, err);
        if (rc)
            return rc;
        *same = memcmp(m->nbuf, m->bbuf, n) == 0;
    }
    return AL_OK;
}

/* A region of the new file [off, +len) against the base region [boff, +blen):
 * equal chunks are copies, others frames with the base chunk at the same
 * offset as prefix (none when with_prefix is false). *changed: any chunk
 * differed. */
static enum al_rc emit_region(struct mk *m, uint64_t off, uint64_t len, uint64_t boff, uint64_t blen,
                              bool with_prefix, bool *changed, struct al_err *err)
{
    enum al_rc rc = AL_OK;
    *changed = false;
    for (uint64_t done = 0; done < len && !rc; done += AL_DELTA_CHUNK) {
        size_t n = len - done < AL_DELTA_CHUNK ? (size_t)(len - done) : AL_DELTA_CHUNK;
        size_t bl = 0;
        if (done < blen)
            bl = blen - done < AL_DELTA_CHUNK ? (size_t)(blen - done) : AL_DELTA_CHUNK;
        bool same = false;
        if (bl == n && (rc = same_bytes(m, off + done, boff + done, n, &same, err)))
            break;
        if (same) {
            rc = op_copy(m, boff + done, n, err);
            continue;
        }
        *changed = true;
        if (m->out_fd < 0)
            m->pos += n;
        else
            rc = op_frame(m, off + done, n, boff + done, with_prefix ? bl : 0, err);
    }
    al_progress_add(m->progress, len);
    return rc;
}

static int cmp_off(const void *a, const void *b)
{
    const struct al_gguf_tensor *x = *(const struct al_gguf_tensor *const *)a;
    const struct al_gguf_tensor *y = *(const struct al_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_name(const void *a, const void *b)
{
    const struct al_gguf_tensor *x = *(const struct al_gguf_tensor *const *)a;
    const struct al_gguf_tensor *y = *(const struct al_gguf_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static const struct al_gguf_tensor *find_base(const struct al_gguf_tensor **by_name, size_t n, const char *name)
{
    struct al_gguf_tensor key;
    snprintf(key.name, sizeof key.name, "%s", name);
    const struct al_gguf_tensor *k = &key;
    const struct al_gguf_tensor **hit = bsearch(&k, by_name, n, sizeof *by_name, cmp_name);
    return hit ? *hit : NULL;
}

static enum al_rc make_gguf(struct mk *m, const struct al_gguf_table *bt, const struct al_gguf_table *nt,
                            struct al_err *err)
{
    const struct al_gguf_tensor **order = calloc(nt->n + 1, sizeof *order);
    const struct al_gguf_tensor **by_name = calloc(bt->n + 1, sizeof *by_name);
    enum al_rc rc = AL_OK;
    if (!order || !by_name) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nt->n; i++)
        order[i] = &nt->t[i];
    for (size_t i = 0; i < bt->n; i++)
        by_name[i] = &bt->t[i];
    qsort(order, nt->n, sizeof *order, cmp_off);
    qsort(by_name, bt->n, sizeof *by_name, cmp_name);
    /* The header and metadata, with the base's as prefix. */
    if ((rc = emit_other(m, 0, nt->data_offset, 0, bt->data_offset, err)))
        goto out;
    al_progress_add(m->progress, nt->data_offset);
    uint64_t pos = nt->data_offset;
    for (size_t i = 0; i < nt->n && !rc; i++) {
        const struct al_gguf_tensor *t = order[i];
        if (t->offset < pos) { /* overlapping tensors: ggml allows none; ship them as bytes */
            rc = al_err_set(err, AL_ERR_INVALID, "'%s' is not a valid GGUF file: tensor '%s' overlaps another",
                            m->new_name, t->name);
            break;
        }
        if (t->offset > pos && (rc = emit_other(m, pos, t->offset - pos, 0, 0, err)))
            break;
        const struct al_gguf_tensor *b = find_base(by_name, bt->n, t->name);
        bool same_shape = b && b->type == t->type && b->size == t->size && memcmp(b->ne, t->ne, sizeof t->ne) == 0;
        bool changed = true;
        if ((rc = emit_region(m, t->offset, t->size, same_shape ? b->offset : 0, same_shape ? b->size : 0,
                              same_shape, &changed, err)))
            break;
        if (!changed) {
            m->st->tensors_unchanged++;
            m->st->bytes_unchanged += t->size;
        } else if (b) {
            m->st->tensors_changed++;
            m->st->bytes_changed += t->size;
        } else {
            m->st->tensors_new++;
            m->st->bytes_new += t->size;
        }
        pos = t->offset + t->size;
    }
    if (!rc && pos < m->new_size)
        rc = emit_other(m, pos, m->new_size - pos, 0, 0, err);
out:
    free(order);
    free(by_name);
    return rc;
}

/* Both files are GGUF when both start with the magic and their tables parse;
 * a file that starts with the magic and does not parse is an error. */
static enum al_rc tables(struct mk *m, struct al_gguf_table *bt, struct al_gguf_table *nt, bool *gguf,
                         struct al_err *err)
{
    unsigned char hb[4] = {0}, hn[4] = {0};
    *gguf = false;
    if (m->base_size < 4 || m->new_size < 4)
        return AL_OK;
    enum al_rc rc = pread_all(m->base_fd, hb, 4, 0, m->base_name, err);
    if (!rc)
        rc = pread_all(m->new_fd, hn, 4, 0, m->new_name, err);
    if (rc || !al_gguf_is_magic(hb, 4) || !al_gguf_is_magic(hn, 4))
        return rc;
    if ((rc = al_gguf_table_fd(m->base_fd, m->base_name, bt, err)))
        return rc;
    if ((rc = al_gguf_table_fd(m->new_fd, m->new_name, nt, err))) {
        al_gguf_table_release(bt);
        return rc;
    }
    *gguf = true;
    return AL_OK;
}

enum al_rc al_delta_make(int base_fd, const char *base_name, int new_fd, const char *new_name, int out_fd,
                         struct al_progress *progress, struct al_delta_stats *st, struct al_err *err)
{
    memset(st, 0, sizeof *st);
    struct mk m = {.base_fd = base_fd, .new_fd = new_fd, .out_fd = out_fd, .base_name = base_name,
                   .new_name = new_name, .progress = progress, .st = st};
    struct al_gguf_table bt = {0}, nt = {0};
    enum al_rc rc = file_size(base_fd, base_name, &m.base_size, err);
    if (!rc)
        rc = file_size(new_fd, new_name, &m.new_size, err);
    if (rc)
        return rc;
    st->result_size = m.new_size;
    m.ccap = ZSTD_compressBound(AL_DELTA_CHUNK);
    m.bbuf = malloc(AL_DELTA_CHUNK);
    m.nbuf = malloc(AL_DELTA_CHUNK);
    m.cbuf = out_fd >= 0 ? malloc(m.ccap) : NULL;
    m.z = out_fd >= 0 ? ZSTD_createCCtx() : NULL;
    if (!m.bbuf || !m.nbuf || (out_fd >= 0 && (!m.cbuf || !m.z))) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    unsigned char hdr[AL_DELTA_HDR_SIZE];
    memcpy(hdr, AL_DELTA_MAGIC, 8);
    put64(hdr + 8, m.base_size);
    put64(hdr + 16, m.new_size);
    if ((rc = out_write(&m, hdr, sizeof hdr, err)))
        goto out;
    bool gguf = false;
    if ((rc = tables(&m, &bt, &nt, &gguf, err)))
        goto out;
    st->gguf = gguf;
    if (gguf) {
        rc = make_gguf(&m, &bt, &nt, err);
    } else {
        bool changed = false;
        rc = emit_region(&m, 0, m.new_size, 0, m.base_size, true, &changed, err);
        /* Chunks, not tensors: the bytes say what was shipped. */
        if (!rc && changed)
            st->bytes_changed = m.new_size;
        else if (!rc)
            st->bytes_unchanged = m.new_size;
    }
    if (!rc && m.pos != m.new_size)
        rc = al_err_set(err, AL_ERR_INTERNAL, "delta of '%s' planned %" PRIu64 " bytes of %" PRIu64, new_name, m.pos,
                        m.new_size);
    if (!rc)
        rc = flush_copy(&m, err);
    if (!rc)
        rc = out_write(&m, "E", 1, err);
    if (out_fd < 0)
        st->patch_bytes = 0;
out:
    al_gguf_table_release(&bt);
    al_gguf_table_release(&nt);
    ZSTD_freeCCtx(m.z);
    free(m.bbuf);
    free(m.nbuf);
    free(m.cbuf);
    return rc;
}

/* ---- apply ---- */

/* A sequential reader of the patch. */
struct rd {
    int fd;
    unsigned char *buf;
    size_t len, pos;
    uint64_t off; /* patch offset of buf[pos], for messages */
};

static enum al_rc rd_fill(struct rd *r, struct al_err *err)
{
    if (r->pos < r->len)
        return AL_OK;
    for (;;) {
        ssize_t n = read(r->fd, r->buf, IO_BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return al_err_sys(err, AL_ERR_IO, "cannot read the patch");
        r->len = (size_t)n, r->pos = 0;
        return AL_OK;
    }
}

/* Reads exactly len bytes; a short patch is malformed. */
static enum al_rc rd_get(struct rd *r, void *out, size_t len, struct al_err *err)
{
    unsigned char *p = out;
    while (len > 0) {
        enum al_rc rc = rd_fill(r, err);
        if (rc)
            return rc;
        if (r->len == 0)
            return al_err_set(err, AL_ERR_INVALID, "the patch is truncated at offset %" PRIu64, r->off);
        size_t k = r->len - r->pos < len ? r->len - r->pos : len;
        memcpy(p, r->buf + r->pos, k);
        r->pos += k, r->off += k, p += k, len -= k;
    }
    return AL_OK;
}

static enum al_rc rd_u64s(struct rd *r, uint64_t *v, int n, struct al_err *err)
{
    unsigned char b[32];
    enum al_rc rc = rd_get(r, b, (size_t)n * 8, err);
    for (int i = 0; i < n && !rc; i++)
        v[i] = get64(b + 8 * i);
    return rc;
}

enum al_rc al_delta_header(int patch_fd, uint64_t *base_size, uint64_t *result_size, struct al_err *err)
{
    unsigned char hdr[AL_DELTA_HDR_SIZE];
    ssize_t n = pread(patch_fd, hdr, sizeof hdr, 0);
    if (n < 0)
        return al_err_sys(err, AL_ERR_IO, "cannot read the patch");
    if ((size_t)n < sizeof hdr || memcmp(hdr, AL_DELTA_MAGIC, 8) != 0)
        return al_err_set(err, AL_ERR_INVALID, "not an airlock delta patch (no " AL_DELTA_MAGIC " header)");
    *base_size = get64(hdr + 8);
    *result_size = get64(hdr + 16);
    return AL_OK;
}

struct ap {
    int base_fd;
    uint64_t base_size, result_size, done;
    unsigned char *bbuf, *obuf, *cbuf;
    size_t ccap;
    ZSTD_DCtx *z;
    al_delta_write_fn *fn;
    void *ud;
    struct al_progress *progress;
};

static enum al_rc ap_out(struct ap *a, uint64_t len, struct al_err *err)
{
    if (len == 0 || len > a->result_size - a->done)
        return al_err_set(err, AL_ERR_INVALID, "the patch writes %" PRIu64 " bytes at %" PRIu64 ", past the result's "
                          "%" PRIu64 " (or an empty op)", len, a->done, a->result_size);
    return AL_OK;
}

static enum al_rc ap_base(struct ap *a, uint64_t off, uint64_t len, struct al_err *err)
{
    if (off > a->base_size || len > a->base_size - off)
        return al_err_set(err, AL_ERR_INVALID, "the patch reads base bytes [%" PRIu64 ", +%" PRIu64 ") outside the "
                          "base's %" PRIu64, off, len, a->base_size);
    return AL_OK;
}

static enum al_rc ap_emit(struct ap *a, const void *p, size_t len, struct al_err *err)
{
    enum al_rc rc = a->fn(a->ud, p, len, err);
    a->done += len;
    al_progress_add(a->progress, len);
    return rc;
}

static enum al_rc ap_copy(struct ap *a, uint64_t off, uint64_t len, struct al_err *err)
{
    enum al_rc rc = AL_OK;
    for (uint64_t d = 0; d < len && !rc; d += IO_BLOCK) {
        size_t n = len - d < IO_BLOCK ? (size_t)(len - d) : IO_BLOCK;
        if (!(rc = pread_all(a->base_fd, a->bbuf, n, off + d, "the base", err)))
            rc = ap_emit(a, a->bbuf, n, err);
    }
    return rc;
}

static enum al_rc ap_zeros(struct ap *a, uint64_t len, struct al_err *err)
{
    memset(a->obuf, 0, IO_BLOCK);
    enum al_rc rc = AL_OK;
    for (uint64_t d = 0; d < len && !rc; d += IO_BLOCK)
        rc = ap_emit(a, a->obuf, len - d < IO_BLOCK ? (size_t)(len - d) : IO_BLOCK, err);
    return rc;
}

static enum al_rc ap_frame(struct ap *a, struct rd *r, uint64_t boff, uint64_t blen, uint64_t len, uint64_t clen,
                           struct al_err *err)
{
    if (len > AL_DELTA_CHUNK || blen > AL_DELTA_CHUNK || clen > a->ccap)
        return al_err_set(err, AL_ERR_INVALID, "a patch op at offset %" PRIu64 " is over the chunk cap of %u bytes "
                          "(AL_DELTA_CHUNK)", r->off, AL_DELTA_CHUNK);
    enum al_rc rc = rd_get(r, a->cbuf, (size_t)clen, err);
    if (!rc && blen)
        rc = pread_all(a->base_fd, a->bbuf, (size_t)blen, boff, "the base", err);
    if (rc)
        return rc;
    unsigned long long fcs = ZSTD_getFrameContentSize(a->cbuf, (size_t)clen);
    if (fcs != len)
        return al_err_set(err, AL_ERR_INVALID, "a patch frame before offset %" PRIu64 " does not declare its %" PRIu64
                          " bytes", r->off, len);
    ZSTD_DCtx_reset(a->z, ZSTD_reset_session_and_parameters);
    size_t zr = blen ? ZSTD_DCtx_refPrefix(a->z, a->bbuf, (size_t)blen) : 0;
    if (!ZSTD_isError(zr))
        zr = ZSTD_decompressDCtx(a->z, a->obuf, (size_t)len, a->cbuf, (size_t)clen);
    if (ZSTD_isError(zr) || zr != len)
        return al_err_set(err, AL_ERR_INVALID, "a patch frame before offset %" PRIu64 " does not decompress: %s",
                          r->off, ZSTD_isError(zr) ? ZSTD_getErrorName(zr) : "wrong length");
    return ap_emit(a, a->obuf, (size_t)len, err);
}

enum al_rc al_delta_apply(int base_fd, int patch_fd, uint64_t result_size, al_delta_write_fn *fn, void *ud,
                          struct al_progress *progress, struct al_err *err)
{
    struct ap a = {.base_fd = base_fd, .result_size = result_size, .fn = fn, .ud = ud, .progress = progress};
    struct rd r = {.fd = patch_fd};
    enum al_rc rc = file_size(base_fd, "the base", &a.base_size, err);
    if (rc)
        return rc;
    a.ccap = ZSTD_compressBound(AL_DELTA_CHUNK);
    a.bbuf = malloc(AL_DELTA_CHUNK);
    a.obuf = malloc(AL_DELTA_CHUNK);
    a.cbuf = malloc(a.ccap);
    r.buf = malloc(IO_BLOCK);
    a.z = ZSTD_createDCtx();
    if (!a.bbuf || !a.obuf || !a.cbuf || !r.buf || !a.z) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    unsigned char hdr[AL_DELTA_HDR_SIZE];
    if ((rc = rd_get(&r, hdr, sizeof hdr, err)))
        goto out;
    if (memcmp(hdr, AL_DELTA_MAGIC, 8) != 0) {
        rc = al_err_set(err, AL_ERR_INVALID, "not an airlock delta patch (no " AL_DELTA_MAGIC " header)");
        goto out;
    }
    if (get64(hdr + 8) != a.base_size || get64(hdr + 16) != result_size) {
        rc = al_err_set(err, AL_ERR_VERIFY, "the patch is for a base of %" PRIu64 " bytes and a result of %" PRIu64
                        "; the base here is %" PRIu64 " and the result must be %" PRIu64, get64(hdr + 8),
                        get64(hdr + 16), a.base_size, result_size);
        goto out;
    }
    for (;;) {
        unsigned char tag;
        uint64_t v[4];
        if ((rc = rd_get(&r, &tag, 1, err)))
            break;
        if (tag == 'E')
            break;
        switch (tag) {
        case 'C':
            if (!(rc = rd_u64s(&r, v, 2, err)) && !(rc = ap_out(&a, v[1], err)) && !(rc = ap_base(&a, v[0], v[1], err)))
                rc = ap_copy(&a, v[0], v[1], err);
            break;
        case 'Z':
            if (!(rc = rd_u64s(&r, v, 1, err)) && !(rc = ap_out(&a, v[0], err)))
                rc = ap_zeros(&a, v[0], err);
            break;
        case 'L':
            if (!(rc = rd_u64s(&r, v, 2, err)) && !(rc = ap_out(&a, v[0], err)))
                rc = ap_frame(&a, &r, 0, 0, v[0], v[1], err);
            break;
        case 'P':
            if (!(rc = rd_u64s(&r, v, 4, err)) && !(rc = ap_out(&a, v[2], err)) && !(rc = ap_base(&a, v[0], v[1], err)))
                rc = ap_frame(&a, &r, v[0], v[1], v[2], v[3], err);
            break;
        default:
            rc = al_err_set(err, AL_ERR_INVALID, "unknown op 0x%02x in the patch at offset %" PRIu64, tag, r.off - 1);
        }
        if (rc)
            break;
    }
    if (!rc && a.done != result_size)
        rc = al_err_set(err, AL_ERR_INVALID, "the patch ends after %" PRIu64 " of the result's %" PRIu64 " bytes",
                        a.done, result_size);
    if (!rc && (rc = rd_fill(&r, err)) == AL_OK && r.len > r.pos)
        rc = al_err_set(err, AL_ERR_INVALID, "bytes follow the end of the patch at offset %" PRIu64, r.off);
out:
    ZSTD_freeDCtx(a.z);
    free(a.bbuf);
    free(a.obuf);
    free(a.cbuf);
    free(r.buf);
    return rc;
}
