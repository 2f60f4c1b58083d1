/*
 * values.c: NaN and Inf in a GGUF file's tensor data (see gguf.h,
 * al_gguf_scan_values, and docs/internals/gguf.md).
 *
 * The tensor table comes from ggml's reader (al_gguf__open); each tensor's
 * data is then read with pread in chunks of whole blocks into one buffer.
 * F32, F16 and BF16 are checked here: a value is NaN or Inf exactly when its
 * exponent bits are all ones, so a chunk is tested with a branch-free OR over
 * fixed runs of words (the compiler vectorizes it) and only a run with a hit
 * is looked at word by word. Every other type goes to ggml_validate_row_data,
 * which is silent on good data; a failing chunk is then narrowed to its first
 * bad block, by our table of scale offsets for the common block layouts, or
 * block by block through ggml for the others.
 */
#include "gguf/gguf.h"
#include "gguf/gguf_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <ggml.h>
#include <gguf.h> /* ggml's; ours is "gguf/gguf.h" */

#define CHUNK_BYTES (8u << 20) /* one pread; the buffer is this size */
#define RUN 1024               /* words per branch-free test */

/* ---- float types: exponent all ones ---- */

/* The index of the first word of w[0..n) whose exponent bits (mask) are all
 * set (NaN or Inf), or n. Branch-free over runs of RUN words, so that the
 * compiler vectorizes the common case (no hit). One body for both widths. */
#define DEFINE_FIRST_BAD(name, T)                      \
    static size_t name(const T *w, size_t n, T mask)   \
    {                                                  \
        size_t i = 0;                                  \
        for (; i + RUN <= n; i += RUN) {               \
            T hit = 0;                                 \
            for (size_t j = 0; j < RUN; j++)           \
                hit |= (T)((w[i + j] & mask) == mask); \
            if (hit != 0)                              \
                break;                                 \
        }                                              \
        for (; i < n; i++)                             \
            if ((w[i] & mask) == mask)                 \
                return i;                              \
        return n;                                      \
    }

DEFINE_FIRST_BAD(first_bad32, uint32_t)
DEFINE_FIRST_BAD(first_bad16, uint16_t)

static const char *kind16(uint16_t h, uint16_t exp_mask)
{
    uint16_t mant = (uint16_t)(~exp_mask & 0x7fff);
    return (h & mant) != 0 ? "nan" : "inf";
}

/* ---- quantized types ---- */

/* Where the fp16 scales sit in a block, for the layouts of ggml-common.h
 * that models use; negative offsets count from the block's end. The unit
 * test holds every entry against ggml_validate_row_data. */
static const struct {
    enum ggml_type type;
    int n;
    int off[2];
} scale_at[] = {
    {GGML_TYPE_Q4_0, 1, {0}},       {GGML_TYPE_Q4_1, 2, {0, 2}}, {GGML_TYPE_Q5_0, 1, {0}},
    {GGML_TYPE_Q5_1, 2, {0, 2}},    {GGML_TYPE_Q8_0, 1, {0}},    {GGML_TYPE_Q2_K, 2, {-4, -2}},
    {GGML_TYPE_Q3_K, 1, {-2}},      {GGML_TYPE_Q4_K, 2, {0, 2}}, {GGML_TYPE_Q5_K, 2, {0, 2}},
    {GGML_TYPE_Q6_K, 1, {-2}},      {GGML_TYPE_IQ4_NL, 1, {0}},  {GGML_TYPE_IQ4_XS, 1, {0}},
    {GGML_TYPE_IQ2_XXS, 1, {0}},    {GGML_TYPE_IQ2_XS, 1, {0}},  {GGML_TYPE_IQ2_S, 1, {0}},
    {GGML_TYPE_IQ3_XXS, 1, {0}},    {GGML_TYPE_IQ3_S, 1, {0}},   {GGML_TYPE_IQ1_S, 1, {0}},
    {GGML_TYPE_TQ1_0, 1, {-2}},     {GGML_TYPE_TQ2_0, 1, {-2}},  {GGML_TYPE_Q1_0, 1, {0}},
    {GGML_TYPE_Q2_0, 1, {0}},
};

/* The first bad scale of the blocks p[0..nbytes): its offset in p and kind.
 * False when the type is not in the table or no scale is bad. */
static bool find_scale(enum ggml_type type, const unsigned char *p, size_t nbytes, size_t ts,
                       size_t *at, const char **what)
{
    for (size_t k = 0; k < sizeof scale_at / sizeof scale_at[0]; k++) {
        if (scale_at[k].type != type)
            continue;
        for (size_t b = 0; b + ts <= nbytes; b += ts) {
            for (int s = 0; s < scale_at[k].n; s++) {
                int o = scale_at[k].off[s];
                size_t pos = b + (o < 0 ? ts - (size_t)-o : (size_t)o);
                uint16_t h;
                memcpy(&h, p + pos, sizeof h);
                if ((h & 0x7c00) == 0x7c00) {
                    *at = pos;
                    *what = kind16(h, 0x7c00);
                    return true;
                }
            }
        }
        return false;
    }
    return false;
}

/* ---- the scan ---- */

struct scan {
    int fd;
    unsigned char *buf;
    struct al_gguf_value_report *out;
};

static void add_finding(struct al_gguf_value_report *out, const char *tensor, enum ggml_type type,
                        uint64_t offset, const char *what)
{
    out->n_findings++;
    if (out->n_listed >= AL_GGUF_FINDINGS_MAX)
        return;
    struct al_gguf_finding *f = &out->findings[out->n_listed++];
    al_gguf__copy_clean(f->tensor, sizeof f->tensor, tensor);
    const char *tn = ggml_type_name(type);
    size_t i = 0;
    for (; tn != NULL && tn[i] != '\0' && i + 1 < sizeof f->type; i++)
        f->type[i] = (tn[i] >= 'a' && tn[i] <= 'z') ? (char)(tn[i] - 'a' + 'A') : tn[i];
    f->type[i] = '\0';
    f->offset = offset;
    f->what = what;
}

/* Checks n bytes of one type at p (whole blocks). True with *at (offset in p)
 * and *what when a value is bad. */
static bool check_chunk(enum ggml_type type, const unsigned char *p, size_t n, size_t ts,
                        size_t *at, const char **what)
{
    size_t i;
    switch (type) {
    case GGML_TYPE_F32:
        i = first_bad32((const uint32_t *)p, n / 4, 0x7f800000u);
        if (i == n / 4)
            return false;
        *at = i * 4;
        *what = (((const uint32_t *)p)[i] & 0x007fffffu) != 0 ? "nan" : "inf";
        return true;
    case GGML_TYPE_F16:
    case GGML_TYPE_BF16: {
        uint16_t mask = type == GGML_TYPE_F16 ? 0x7c00 : 0x7f80;
        i = first_bad16((const uint16_t *)p, n / 2, mask);
        if (i == n / 2)
            return false;
        *at = i * 2;
        *what = kind16(((const uint16_t *)p)[i], mask);
        return true;
    }
    default:
        break;
    }
    if (ggml_validate_row_data(type, p, n))
        return false;
    if (find_scale(type, p, n, ts, at, what))
        return true;
    /* a layout we do not know: the first block ggml refuses */
    *what = "nan or inf";
    for (size_t b = 0; b + ts <= n; b += ts) {
        if (!ggml_validate_row_data(type, p + b, ts)) {
            *at = b;
            return true;
        }
    }
    *at = 0;
    return true;
}

/* Whether ggml's check knows the type: a block of zeros (every scale 0) is
 * good data in every type it knows; it refuses the others outright (Q8_1,
 * for one, is a type of intermediate results, never of a model file). */
static bool type_checkable(enum ggml_type type, size_t ts)
{
    static const unsigned char zeros[1024];
    if (type == GGML_TYPE_F32 || type == GGML_TYPE_F16 || type == GGML_TYPE_BF16)
        return true;
    return ts <= sizeof zeros && ggml_validate_row_data(type, zeros, ts);
}

/* Reads and checks one tensor's data, [start, start + size) of the file. */
static enum al_rc scan_tensor(struct scan *s, const char *name, const char *tname,
                              enum ggml_type type, uint64_t start, uint64_t size,
                              struct al_err *err)
{
    size_t ts = ggml_type_size(type);
    if (ts == 0 || ggml_blck_size(type) <= 0 || ts > CHUNK_BYTES || size % ts != 0) {
        add_finding(s->out, tname, type, start, "bad type");
        return AL_OK;
    }
    if (!type_checkable(type, ts)) {
        add_finding(s->out, tname, type, start, "bad type");
        return AL_OK;
    }
    size_t chunk = CHUNK_BYTES / ts * ts;
    uint64_t done = 0;
    while (done < size) {
        size_t want = size - done < chunk ? (size_t)(size - done) : chunk;
        size_t got = 0;
        while (got < want) {
            ssize_t r = pread(s->fd, s->buf + got, want - got, (off_t)(start + done + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return al_err_sys(err, AL_ERR_IO, "cannot read '%s'", name);
            if (r == 0)
                break;
            got += (size_t)r;
        }
        if (got < want) { /* the file shrank under us */
            add_finding(s->out, tname, type, start, "out of file");
            return AL_OK;
        }
        size_t at;
        const char *what;
        s->out->bytes_checked += want;
        if (check_chunk(type, s->buf, want, ts, &at, &what)) {
            add_finding(s->out, tname, type, start + done + at, what);
            break;
        }
        done += want;
    }
    s->out->tensors_checked++;
    return AL_OK;
}

enum al_rc al_gguf_scan_values(int fd, const char *name, struct al_gguf_value_report *out,
                               struct al_err *err)
{
    memset(out, 0, sizeof *out);
    if (name == NULL)
        name = "(fd)";
    struct gguf_context *g = NULL;
    uint64_t file_size = 0;
    struct scan s = {fd, NULL, out};
    enum al_rc rc = al_gguf__open(fd, name, &g, &file_size, err);
    if (rc != AL_OK)
        return rc;
    s.buf = aligned_alloc(64, CHUNK_BYTES);
    if (s.buf == NULL) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory scanning '%s'", name);
        goto out;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    out->n_tensors = gguf_get_n_tensors(g);
    uint64_t data = gguf_get_data_offset(g);
    for (int64_t i = 0; i < out->n_tensors; i++) {
        const char *tname = gguf_get_tensor_name(g, i);
        enum ggml_type type = gguf_get_tensor_type(g, i);
        uint64_t size = gguf_get_tensor_size(g, i), start, end;
        if (__builtin_add_overflow(data, (uint64_t)gguf_get_tensor_offset(g, i), &start) ||
            __builtin_add_overflow(start, size, &end) || end > file_size) {
            add_finding(out, tname, type, start, "out of file");
            continue;
        }
        rc = scan_tensor(&s, name, tname, type, start, size, err);
        if (rc != AL_OK)
            goto out;
    }
out:
    free(s.buf);
    gguf_free(g);
    return rc;
}

enum al_rc al_gguf_scan_values_path(const char *path, struct al_gguf_value_report *out,
                                    struct al_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        memset(out, 0, sizeof *out);
        return al_err_sys(err, errno == ENOENT ? AL_ERR_NOT_FOUND : AL_ERR_IO,
                          "cannot open '%s'", path);
    }
    enum al_rc rc = al_gguf_scan_values(fd, path, out, err);
    close(fd);
    return rc;
}
