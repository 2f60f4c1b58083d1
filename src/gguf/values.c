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
#include <sys/mman.h>
#include <stdlib.h>
#include <unistd.h>

#include <ggml.h>
#include <gguf.h> /* ggml's; ours is "gguf/gguf.h" */

#include "core/fs.h"

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

/* Whether a tensor's data can be checked at all: a type with a block size
 * ggml knows, whole blocks, a check ggml has. Else a "bad type" finding. */
static bool data_checkable(enum ggml_type type, uint64_t size, size_t ts)
{
    return ts != 0 && ggml_blck_size(type) > 0 && ts <= CHUNK_BYTES && size % ts == 0 && type_checkable(type, ts);
}

/* Reads and checks one tensor's data, [start, start + size) of the file. */
static enum al_rc scan_tensor(struct scan *s, const char *name, const char *tname,
                              enum ggml_type type, uint64_t start, uint64_t size,
                              struct al_err *err)
{
    size_t ts = ggml_type_size(type);
    if (!data_checkable(type, size, ts)) {
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

/* ---- the same scan on a stream ---- */

/* The header is kept until it parses: at most this much (a header is
 * mostly the vocabulary; 151k-token vocabularies take about 4 MiB). */
#define STREAM_HEAD_MAX (32u << 20)
#define STREAM_HEAD_FIRST (1u << 20) /* the first parse is tried at this size */

struct stream_tensor {
    uint64_t start, size;
    enum ggml_type type;
    int64_t index; /* in the table: its name */
};

struct al_gguf_value_stream {
    char name[256];
    uint64_t file_size;
    uint64_t pos;          /* bytes fed so far */
    bool gave_up;          /* not a GGUF we can follow: the caller scans the file */
    unsigned char *head;   /* until the table is known */
    size_t head_len, head_cap, next_try;
    struct gguf_context *g;
    struct stream_tensor *t;
    int64_t n, cur;        /* tensors, the one the stream is in or before */
    uint64_t done;         /* bytes of the current tensor consumed */
    bool found;            /* the current tensor has its finding: skip its data */
    unsigned char *buf;    /* one chunk of the current tensor, as scan_tensor reads it */
    size_t fill;
    struct al_gguf_value_report out;
};

static void stream_give_up(struct al_gguf_value_stream *s)
{
    s->gave_up = true;
    free(s->head);
    s->head = NULL;
    free(s->buf);
    s->buf = NULL;
}

/* Parses the kept header through the same reader as the file scan: a memfd
 * holds the bytes so far, sized to the whole file, so ggml sees the file's
 * size. The parse counts only when the data offset lies within the real
 * bytes: everything it read was the file's, not the memfd's zeros. */
static bool stream_parse(struct al_gguf_value_stream *s, bool *retry)
{
    *retry = false;
    int fd = memfd_create("airlock-gguf-head", MFD_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = false;
    uint64_t size = 0;
    struct al_err err = AL_ERR_INIT;
    struct gguf_context *g = NULL;
    if (al_fs_write_all(fd, s->head, s->head_len, &err) == AL_OK && ftruncate(fd, (off_t)s->file_size) == 0 &&
        al_gguf__open(fd, s->name, &g, &size, &err) == AL_OK) {
        ok = gguf_get_data_offset(g) <= s->head_len;
        if (!ok) {
            gguf_free(g);
            g = NULL;
        }
    }
    close(fd);
    if (!ok) {
        *retry = true;
        return false;
    }
    s->g = g;
    return true;
}

/* The tensors in file order, each after the last: what a stream can follow.
 * A table in another order (legal, never written by ggml) is scanned from
 * the file, where the findings keep the table's order. */
static bool stream_table(struct al_gguf_value_stream *s)
{
    s->n = gguf_get_n_tensors(s->g);
    s->t = calloc(s->n > 0 ? (size_t)s->n : 1, sizeof *s->t);
    s->buf = aligned_alloc(64, CHUNK_BYTES);
    if (s->t == NULL || s->buf == NULL)
        return false;
    uint64_t data = gguf_get_data_offset(s->g), prev_end = data;
    for (int64_t i = 0; i < s->n; i++) {
        struct stream_tensor *t = &s->t[i];
        t->index = i;
        t->type = gguf_get_tensor_type(s->g, i);
        t->size = gguf_get_tensor_size(s->g, i);
        uint64_t end;
        if (__builtin_add_overflow(data, (uint64_t)gguf_get_tensor_offset(s->g, i), &t->start) ||
            __builtin_add_overflow(t->start, t->size, &end))
            return false;
        if (t->start < prev_end)
            return false;
        prev_end = end;
    }
    return true;
}

/* Findings for the tensors at s->cur that need no data (past the end of the
 * file, a type that cannot be checked, no bytes), as scan_tensor gives them. */
static void stream_skip_dataless(struct al_gguf_value_stream *s)
{
    while (s->cur < s->n && s->done == 0 && !s->found) {
        const struct stream_tensor *t = &s->t[s->cur];
        const char *tname = gguf_get_tensor_name(s->g, t->index);
        if (t->start + t->size > s->file_size)
            add_finding(&s->out, tname, t->type, t->start, "out of file");
        else if (!data_checkable(t->type, t->size, ggml_type_size(t->type)))
            add_finding(&s->out, tname, t->type, t->start, "bad type");
        else if (t->size == 0)
            s->out.tensors_checked++;
        else
            return;
        s->cur++;
    }
}

/* Checks the chunk in s->buf: the same chunks as scan_tensor reads. */
static void stream_check_chunk(struct al_gguf_value_stream *s, const struct stream_tensor *t)
{
    size_t ts = ggml_type_size(t->type), at;
    const char *what;
    s->out.bytes_checked += s->fill;
    if (check_chunk(t->type, s->buf, s->fill, ts, &at, &what)) {
        add_finding(&s->out, gguf_get_tensor_name(s->g, t->index), t->type, t->start + (s->done - s->fill) + at,
                    what);
        s->found = true;
    }
    s->fill = 0;
}

/* Tensor data from p, which is at file offset s->pos. */
static void stream_data(struct al_gguf_value_stream *s, const unsigned char *p, size_t len)
{
    while (len > 0) {
        stream_skip_dataless(s);
        if (s->cur >= s->n)
            return;
        const struct stream_tensor *t = &s->t[s->cur];
        uint64_t at = s->pos;
        if (at < t->start) { /* padding before the tensor */
            size_t k = t->start - at < len ? (size_t)(t->start - at) : len;
            p += k, len -= k, s->pos += k;
            continue;
        }
        size_t chunk = CHUNK_BYTES / ggml_type_size(t->type) * ggml_type_size(t->type);
        uint64_t left = t->size - s->done;
        size_t k = left < len ? (size_t)left : len;
        if (!s->found) {
            size_t room = chunk - s->fill;
            k = k < room ? k : room;
            memcpy(s->buf + s->fill, p, k);
            s->fill += k;
        }
        s->done += k;
        p += k, len -= k, s->pos += k;
        if (!s->found && (s->fill == chunk || s->done == t->size))
            stream_check_chunk(s, t);
        if (s->done == t->size) {
            s->out.tensors_checked++;
            s->cur++;
            s->done = 0;
            s->found = false;
        }
    }
}

enum al_rc al_gguf_value_stream_new(uint64_t file_size, const char *name, struct al_gguf_value_stream **out,
                                    struct al_err *err)
{
    struct al_gguf_value_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    snprintf(s->name, sizeof s->name, "%s", name ? name : "(stream)");
    s->file_size = file_size;
    s->next_try = file_size < STREAM_HEAD_FIRST ? (size_t)file_size : STREAM_HEAD_FIRST;
    *out = s;
    return AL_OK;
}

void al_gguf_value_stream_feed(struct al_gguf_value_stream *s, const void *data, size_t len)
{
    const unsigned char *p = data;
    if (s == NULL || s->gave_up || len == 0)
        return;
    if (s->pos + len > s->file_size || s->pos + len < s->pos) {
        stream_give_up(s);
        return;
    }
    if (s->g != NULL) {
        stream_data(s, p, len);
        return;
    }
    /* Still in the header: keep the bytes until they parse. */
    if (s->head_len + len > s->head_cap) {
        size_t cap = s->head_cap ? s->head_cap : 64u << 10;
        while (cap < s->head_len + len && cap < STREAM_HEAD_MAX)
            cap *= 2;
        unsigned char *h = cap >= s->head_len + len ? realloc(s->head, cap) : NULL;
        if (h == NULL) {
            stream_give_up(s);
            return;
        }
        s->head = h;
        s->head_cap = cap;
    }
    memcpy(s->head + s->head_len, p, len);
    s->head_len += len;
    s->pos += len;
    if (s->head_len >= 4 && memcmp(s->head, "GGUF", 4) != 0) {
        stream_give_up(s); /* not a GGUF: nothing to do */
        return;
    }
    if (s->head_len < s->next_try)
        return;
    bool retry;
    if (!stream_parse(s, &retry)) {
        size_t next = s->next_try * 2;
        if (!retry || s->head_len >= s->file_size || next > STREAM_HEAD_MAX) {
            stream_give_up(s); /* the file scan reports what is wrong */
            return;
        }
        s->next_try = next < s->file_size ? next : (size_t)s->file_size;
        return;
    }
    if (!stream_table(s)) {
        stream_give_up(s);
        return;
    }
    s->out.n_tensors = s->n;
    /* The kept bytes past the header are tensor data already. */
    uint64_t off = gguf_get_data_offset(s->g);
    unsigned char *h = s->head;
    size_t hl = s->head_len;
    s->head = NULL;
    s->pos = off;
    stream_data(s, h + off, hl - (size_t)off);
    free(h);
}

bool al_gguf_value_stream_finish(struct al_gguf_value_stream *s, struct al_gguf_value_report *out)
{
    if (s == NULL || s->gave_up || s->g == NULL || s->pos != s->file_size)
        return false;
    stream_skip_dataless(s);
    if (s->cur != s->n)
        return false;
    *out = s->out;
    return true;
}

void al_gguf_value_stream_free(struct al_gguf_value_stream *s)
{
    if (s == NULL)
        return;
    free(s->head);
    free(s->buf);
    free(s->t);
    if (s->g != NULL)
        gguf_free(s->g);
    free(s);
}
