/*
 * gguf.c: GGUF inspection on top of ggml's reader (see gguf.h).
 *
 * Order of work for one file: stat it, read the 24-byte header ourselves only
 * to hold its counts against our caps (ggml would otherwise loop until end of
 * file on an absurd count), hand ggml a pread callback bounded by the file
 * size with no_alloc and no ggml context (so no tensor data is read), then
 * check that every tensor's data lies inside the file, then copy out what the
 * caller wants with type-checked getters.
 */
#include "gguf/gguf.h"
#include "gguf/gguf_int.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ggml.h>
#include <gguf.h> /* ggml's; ours is "gguf/gguf.h" */

#include "core/limits.h"
#include "core/log.h"

void al_gguf__copy_clean(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; src[i] != '\0' && i + 1 < size; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    dst[i] = '\0';
}

/* ---- ggml's log, captured while we call it ---- */

/* ggml's log callback is process-wide, so calls into ggml's reader are
 * serialized here; while one runs, its thread's log lines are captured and
 * lines from any other thread go on to the callback that was installed
 * before. These are the only mutable statics of the module. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

struct capture {
    pthread_t owner;
    ggml_log_callback prev_cb;
    void *prev_ud;
    char line[512];  /* the line being assembled (ggml may send pieces) */
    size_t line_len;
    char first[256]; /* first error line: usually the precise cause */
    char last[256];  /* last error line: the stage that failed */
};

static void capture_line(struct capture *c, enum ggml_log_level level)
{
    char *s = c->line;
    c->line[c->line_len] = '\0';
    c->line_len = 0;
    /* ggml prefixes "function_name: "; drop it */
    char *colon = strstr(s, ": ");
    if (colon != NULL && memchr(s, ' ', (size_t)(colon - s)) == NULL)
        s = colon + 2;
    if (*s == '\0')
        return;
    al_log(AL_LOG_DEBUG, "ggml: %s", s);
    if (level != GGML_LOG_LEVEL_ERROR && level != GGML_LOG_LEVEL_WARN)
        return;
    if (c->first[0] == '\0')
        al_gguf__copy_clean(c->first, sizeof c->first, s);
    al_gguf__copy_clean(c->last, sizeof c->last, s);
}

static void capture_cb(enum ggml_log_level level, const char *text, void *ud)
{
    struct capture *c = ud;
    if (!pthread_equal(pthread_self(), c->owner)) {
        if (c->prev_cb != NULL)
            c->prev_cb(level, text, c->prev_ud);
        return;
    }
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '\n') {
            capture_line(c, level);
        } else if (c->line_len + 1 < sizeof c->line) {
            c->line[c->line_len++] = *p;
        }
    }
}

/* ggml's reason for a failure, for our message. */
static void capture_reason(const struct capture *c, char *out, size_t size)
{
    if (c->first[0] == '\0')
        snprintf(out, size, "rejected by ggml's reader");
    else if (strcmp(c->first, c->last) == 0)
        snprintf(out, size, "%s", c->first);
    else
        snprintf(out, size, "%s (%s)", c->last, c->first);
}

/* ---- reading ---- */

#define READAHEAD (64u << 10) /* ggml reads the header a field at a time */

struct reader {
    int fd;
    int errnum;          /* first read error, 0 when none */
    unsigned char *buf;  /* READAHEAD bytes, or NULL: every read is a pread */
    uint64_t buf_off;    /* file offset of buf[0] */
    size_t buf_len;      /* bytes valid in buf */
};

/* Up to len bytes at offset straight from the file; short only at end of
 * file or on an error (kept in errnum). */
static size_t read_direct(struct reader *r, void *output, uint64_t offset, size_t len)
{
    size_t done = 0;
    while (done < len) {
        if (offset + done > (uint64_t)INT64_MAX)
            break;
        ssize_t n = pread(r->fd, (char *)output + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (r->errnum == 0)
                r->errnum = errno;
            break;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return done;
}

/* gguf_reader_callback_t: read_direct through a read-ahead window, so the
 * tens of thousands of small reads of a vocabulary cost a few syscalls. */
static size_t read_cb(void *ud, void *output, uint64_t offset, size_t len)
{
    struct reader *r = ud;
    if (r->buf == NULL || len >= READAHEAD)
        return read_direct(r, output, offset, len);
    if (offset < r->buf_off || offset + len > r->buf_off + r->buf_len) {
        r->buf_off = offset;
        r->buf_len = read_direct(r, r->buf, offset, READAHEAD);
        if (len > r->buf_len)
            len = r->buf_len;
    }
    memcpy(output, r->buf + (offset - r->buf_off), len);
    return len;
}

static uint64_t rd_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Our only look at the raw bytes: the counts in the fixed header, held
 * against our caps before ggml trusts them. Anything else odd in these bytes
 * (magic, version) is left for ggml to report. */
static enum al_rc guard_header(int fd, const char *name, struct al_err *err)
{
    unsigned char h[24];
    struct reader r = {fd, 0, NULL, 0, 0};
    if (read_cb(&r, h, 0, sizeof h) < sizeof h)
        return AL_OK;
    uint32_t version = (uint32_t)rd_le(h + 4, 4);
    if (memcmp(h, GGUF_MAGIC, 4) != 0 || version < 2 || version > GGUF_VERSION)
        return AL_OK;
    int64_t n_tensors = (int64_t)rd_le(h + 8, 8);
    int64_t n_kv = (int64_t)rd_le(h + 16, 8);
    if (n_tensors < 0 || n_kv < 0)
        return al_err_set(err, AL_ERR_INVALID,
                          "'%s' is not a valid GGUF file: negative count in header", name);
    if (n_kv > AL_LIMIT_GGUF_KV)
        return al_err_set(err, AL_ERR_LIMIT,
                          "'%s' declares %" PRId64 " key/value pairs, over AL_LIMIT_GGUF_KV (%d)",
                          name, n_kv, AL_LIMIT_GGUF_KV);
    if (n_tensors > AL_LIMIT_GGUF_TENSORS)
        return al_err_set(err, AL_ERR_LIMIT,
                          "'%s' declares %" PRId64 " tensors, over AL_LIMIT_GGUF_TENSORS (%d)",
                          name, n_tensors, AL_LIMIT_GGUF_TENSORS);
    return AL_OK;
}

/* ---- type-checked getters: ggml aborts on a getter of the wrong type ---- */

static bool kv_str(const struct gguf_context *g, const char *key, char *dst, size_t size)
{
    int64_t id = gguf_find_key(g, key);
    if (id < 0 || gguf_get_kv_type(g, id) != GGUF_TYPE_STRING)
        return false;
    if (dst != NULL)
        al_gguf__copy_clean(dst, size, gguf_get_val_str(g, id));
    return true;
}

/* An unsigned value from any integer type at p; false when negative. */
static bool int_at(enum gguf_type t, const void *p, uint64_t *v)
{
    switch (t) {
    case GGUF_TYPE_UINT8:  { uint8_t x;  memcpy(&x, p, sizeof x); *v = x; return true; }
    case GGUF_TYPE_UINT16: { uint16_t x; memcpy(&x, p, sizeof x); *v = x; return true; }
    case GGUF_TYPE_UINT32: { uint32_t x; memcpy(&x, p, sizeof x); *v = x; return true; }
    case GGUF_TYPE_UINT64: { uint64_t x; memcpy(&x, p, sizeof x); *v = x; return true; }
    case GGUF_TYPE_INT8:   { int8_t x;  memcpy(&x, p, sizeof x); *v = (uint64_t)x; return x >= 0; }
    case GGUF_TYPE_INT16:  { int16_t x; memcpy(&x, p, sizeof x); *v = (uint64_t)x; return x >= 0; }
    case GGUF_TYPE_INT32:  { int32_t x; memcpy(&x, p, sizeof x); *v = (uint64_t)x; return x >= 0; }
    case GGUF_TYPE_INT64:  { int64_t x; memcpy(&x, p, sizeof x); *v = (uint64_t)x; return x >= 0; }
    default: return false;
    }
}

static size_t int_size(enum gguf_type t)
{
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: return 8;
    default: return 0;
    }
}

/* An integer KV, or the largest element of an integer array (per-layer
 * values). False when absent, of another type, negative or empty. */
static bool kv_uint(const struct gguf_context *g, const char *key, uint64_t *v)
{
    int64_t id = gguf_find_key(g, key);
    if (id < 0)
        return false;
    enum gguf_type t = gguf_get_kv_type(g, id);
    if (t != GGUF_TYPE_ARRAY)
        return int_size(t) != 0 && int_at(t, gguf_get_val_data(g, id), v);
    enum gguf_type et = gguf_get_arr_type(g, id);
    size_t es = int_size(et), n = gguf_get_arr_n(g, id);
    if (es == 0 || n == 0)
        return false;
    const unsigned char *p = gguf_get_arr_data(g, id);
    uint64_t best = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t x;
        if (!int_at(et, p + i * es, &x))
            return false;
        if (x > best)
            best = x;
    }
    *v = best;
    return true;
}

static uint32_t clamp32(uint64_t v) { return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v; }

static uint32_t arch_u32(const struct gguf_context *g, const char *arch, const char *suffix)
{
    char key[160];
    uint64_t v = 0;
    if (arch[0] == '\0' || (size_t)snprintf(key, sizeof key, "%s.%s", arch, suffix) >= sizeof key)
        return 0;
    return kv_uint(g, key, &v) ? clamp32(v) : 0;
}

/* llama_ftype values (llama.h) to short names; stable, they are in files. */
static const char *ftype_name(uint64_t id)
{
    static const char *const names[] = {
        [0] = "F32",       [1] = "F16",       [2] = "Q4_0",     [3] = "Q4_1",
        [7] = "Q8_0",      [8] = "Q5_0",      [9] = "Q5_1",     [10] = "Q2_K",
        [11] = "Q3_K_S",   [12] = "Q3_K_M",   [13] = "Q3_K_L",  [14] = "Q4_K_S",
        [15] = "Q4_K_M",   [16] = "Q5_K_S",   [17] = "Q5_K_M",  [18] = "Q6_K",
        [19] = "IQ2_XXS",  [20] = "IQ2_XS",   [21] = "Q2_K_S",  [22] = "IQ3_XS",
        [23] = "IQ3_XXS",  [24] = "IQ1_S",    [25] = "IQ4_NL",  [26] = "IQ3_S",
        [27] = "IQ3_M",    [28] = "IQ2_S",    [29] = "IQ2_M",   [30] = "IQ4_XS",
        [31] = "IQ1_M",    [32] = "BF16",     [36] = "TQ1_0",   [37] = "TQ2_0",
        [38] = "MXFP4_MOE", [39] = "NVFP4",   [40] = "Q1_0",    [41] = "Q2_0",
    };
    if (id >= sizeof names / sizeof names[0])
        return NULL;
    return names[id];
}

/* ---- the tensor table ---- */

static struct al_gguf_type_count *type_slot(struct al_gguf_info *out, const char *tname)
{
    char up[16];
    size_t i = 0;
    for (; tname[i] != '\0' && i + 1 < sizeof up; i++)
        up[i] = (tname[i] >= 'a' && tname[i] <= 'z') ? (char)(tname[i] - 'a' + 'A') : tname[i];
    up[i] = '\0';
    for (int k = 0; k < out->n_types; k++)
        if (strcmp(out->types[k].type, up) == 0)
            return &out->types[k];
    if (out->n_types >= AL_GGUF_TYPES_MAX)
        return NULL;
    struct al_gguf_type_count *s = &out->types[out->n_types++];
    memcpy(s->type, up, i + 1);
    return s;
}

/* Tensor sizes, counts and the bounds check that ggml skips without data. */
static enum al_rc scan_tensors(const struct gguf_context *g, const char *name,
                               struct al_gguf_info *out, struct al_err *err)
{
    uint64_t dominant_2d[AL_GGUF_TYPES_MAX] = {0};
    for (int64_t i = 0; i < out->n_tensors; i++) {
        const int64_t *ne = gguf_get_tensor_ne(g, i);
        uint64_t elems = 1;
        for (int d = 0; d < GGML_MAX_DIMS; d++)
            elems *= (uint64_t)ne[d]; /* ggml checked: non-negative, product < INT64_MAX */
        uint64_t size = gguf_get_tensor_size(g, i);
        uint64_t start, end;
        if (__builtin_add_overflow(out->data_offset, (uint64_t)gguf_get_tensor_offset(g, i), &start) ||
            __builtin_add_overflow(start, size, &end) || end > out->file_size)
            return al_err_set(err, AL_ERR_INVALID,
                              "'%s' is not a valid GGUF file: data of tensor '%s' (%" PRIu64
                              " bytes at offset %" PRIu64 ") runs past the end of the file (%" PRIu64
                              " bytes); truncated?",
                              name, gguf_get_tensor_name(g, i), size,
                              out->data_offset + (uint64_t)gguf_get_tensor_offset(g, i),
                              out->file_size);
        out->n_params += elems;
        out->data_size += size;
        struct al_gguf_type_count *s = type_slot(out, ggml_type_name(gguf_get_tensor_type(g, i)));
        if (s == NULL)
            continue;
        s->tensors++;
        s->elements += elems;
        s->bytes += size;
        if (ne[1] > 1)
            dominant_2d[s - out->types] += elems;
    }
    if (out->file_type[0] == '\0' && out->n_types > 0) {
        int best = 0;
        bool any_2d = false;
        for (int k = 0; k < out->n_types; k++)
            any_2d = any_2d || dominant_2d[k] > 0;
        for (int k = 1; k < out->n_types; k++) {
            uint64_t a = any_2d ? dominant_2d[k] : out->types[k].elements;
            uint64_t b = any_2d ? dominant_2d[best] : out->types[best].elements;
            if (a > b)
                best = k;
        }
        snprintf(out->file_type, sizeof out->file_type, "%s", out->types[best].type);
    }
    return AL_OK;
}

static void fill_kv(const struct gguf_context *g, struct al_gguf_info *out)
{
    uint64_t v;
    kv_str(g, "general.architecture", out->arch, sizeof out->arch);
    kv_str(g, "general.name", out->name, sizeof out->name);
    kv_str(g, "general.license", out->license, sizeof out->license);
    kv_str(g, "tokenizer.ggml.model", out->tokenizer_model, sizeof out->tokenizer_model);
    out->has_chat_template = kv_str(g, "tokenizer.chat_template", NULL, 0);
    kv_str(g, "general.type", out->general_type, sizeof out->general_type);
    kv_str(g, "adapter.type", out->adapter_type, sizeof out->adapter_type);
    int64_t alpha = gguf_find_key(g, "adapter.lora.alpha");
    if (alpha >= 0 && gguf_get_kv_type(g, alpha) == GGUF_TYPE_FLOAT32)
        out->lora_alpha = gguf_get_val_f32(g, alpha);

    out->file_type_id = -1;
    if (kv_uint(g, "general.file_type", &v) && v <= INT32_MAX) {
        out->file_type_id = (int32_t)v;
        if (ftype_name(v) != NULL)
            snprintf(out->file_type, sizeof out->file_type, "%s", ftype_name(v));
    }

    out->vocab_size = arch_u32(g, out->arch, "vocab_size");
    if (out->vocab_size == 0) {
        int64_t id = gguf_find_key(g, "tokenizer.ggml.tokens");
        if (id >= 0 && gguf_get_kv_type(g, id) == GGUF_TYPE_ARRAY)
            out->vocab_size = clamp32(gguf_get_arr_n(g, id));
    }
    out->context_length = arch_u32(g, out->arch, "context_length");
    out->embedding_length = arch_u32(g, out->arch, "embedding_length");
    out->block_count = arch_u32(g, out->arch, "block_count");
    out->head_count = arch_u32(g, out->arch, "attention.head_count");
    out->head_count_kv = arch_u32(g, out->arch, "attention.head_count_kv");
    out->feed_forward_length = arch_u32(g, out->arch, "feed_forward_length");
}

/* ---- public ---- */

enum al_rc al_gguf__open(int fd, const char *name, struct gguf_context **out, uint64_t *file_size,
                         struct al_err *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return al_err_sys(err, AL_ERR_IO, "cannot stat '%s'", name);
    if (!S_ISREG(st.st_mode))
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not a regular file", name);
    *file_size = (uint64_t)st.st_size;
    if (*file_size == 0)
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not a valid GGUF file: empty file", name);

    enum al_rc rc = guard_header(fd, name, err);
    if (rc != AL_OK)
        return rc;

    struct reader r = {fd, 0, malloc(READAHEAD), 0, 0};
    if (r.buf == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory reading '%s'", name);
    struct gguf_init_params params = {.no_alloc = true, .ctx = NULL};
    struct capture cap = {0};
    cap.owner = pthread_self();

    pthread_mutex_lock(&g_lock);
    ggml_log_get(&cap.prev_cb, &cap.prev_ud);
    ggml_log_set(capture_cb, &cap);
    struct gguf_context *g = gguf_init_from_callback(read_cb, &r, 0, *file_size, params);
    ggml_log_set(cap.prev_cb, cap.prev_ud);
    pthread_mutex_unlock(&g_lock);
    free(r.buf);
    if (cap.line_len > 0)
        capture_line(&cap, GGML_LOG_LEVEL_ERROR);

    if (g == NULL) {
        if (r.errnum != 0) {
            errno = r.errnum;
            return al_err_sys(err, AL_ERR_IO, "cannot read '%s'", name);
        }
        char why[600];
        capture_reason(&cap, why, sizeof why);
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not a valid GGUF file: %s", name, why);
    }
    *out = g;
    return AL_OK;
}

enum al_rc al_gguf_inspect_fd(int fd, const char *name, struct al_gguf_info *out,
                              struct al_err *err)
{
    memset(out, 0, sizeof *out);
    out->file_type_id = -1;
    if (name == NULL)
        name = "(fd)";

    struct gguf_context *g = NULL;
    enum al_rc rc = al_gguf__open(fd, name, &g, &out->file_size, err);
    if (rc != AL_OK)
        return rc;
    out->version = gguf_get_version(g);
    out->n_kv = gguf_get_n_kv(g);
    out->n_tensors = gguf_get_n_tensors(g);
    out->alignment = (uint32_t)gguf_get_alignment(g);
    out->data_offset = gguf_get_data_offset(g);
    fill_kv(g, out);
    rc = scan_tensors(g, name, out, err);
    gguf_free(g);
    return rc;
}

enum al_rc al_gguf_table_fd(int fd, const char *name, struct al_gguf_table *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    if (name == NULL)
        name = "(fd)";
    struct gguf_context *g = NULL;
    enum al_rc rc = al_gguf__open(fd, name, &g, &out->file_size, err);
    if (rc != AL_OK)
        return rc;
    out->data_offset = gguf_get_data_offset(g);
    int64_t n = gguf_get_n_tensors(g);
    out->t = calloc(n > 0 ? (size_t)n : 1, sizeof *out->t);
    if (out->t == NULL) {
        gguf_free(g);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < n && !rc; i++) {
        struct al_gguf_tensor *t = &out->t[out->n++];
        snprintf(t->name, sizeof t->name, "%s", gguf_get_tensor_name(g, i));
        t->type = (int32_t)gguf_get_tensor_type(g, i);
        const int64_t *ne = gguf_get_tensor_ne(g, i);
        for (int d = 0; d < 4; d++)
            t->ne[d] = d < GGML_MAX_DIMS ? ne[d] : 1;
        t->size = gguf_get_tensor_size(g, i);
        uint64_t end;
        if (__builtin_add_overflow(out->data_offset, (uint64_t)gguf_get_tensor_offset(g, i), &t->offset) ||
            __builtin_add_overflow(t->offset, t->size, &end) || end > out->file_size)
            rc = al_err_set(err, AL_ERR_INVALID, "'%s' is not a valid GGUF file: data of tensor '%s' runs past "
                            "the end of the file", name, t->name);
    }
    gguf_free(g);
    if (rc)
        al_gguf_table_release(out);
    return rc;
}

void al_gguf_table_release(struct al_gguf_table *t)
{
    free(t->t);
    t->t = NULL;
    t->n = 0;
}

enum al_rc al_gguf_chat_templates_fd(int fd, const char *name, al_gguf_template_fn *fn, void *ud,
                                     struct al_err *err)
{
    static const char prefix[] = "tokenizer.chat_template";
    struct gguf_context *g = NULL;
    uint64_t file_size;
    if (name == NULL)
        name = "(fd)";
    enum al_rc rc = al_gguf__open(fd, name, &g, &file_size, err);
    if (rc != AL_OK)
        return rc;
    int64_t n = gguf_get_n_kv(g);
    for (int64_t i = 0; i < n; i++) {
        const char *key = gguf_get_key(g, i);
        if (strncmp(key, prefix, sizeof prefix - 1) != 0 || (key[sizeof prefix - 1] != '\0' && key[sizeof prefix - 1] != '.'))
            continue;
        if (gguf_get_kv_type(g, i) != GGUF_TYPE_STRING)
            continue;
        const char *text = gguf_get_val_str(g, i);
        fn(ud, key, text, strlen(text));
    }
    gguf_free(g);
    return AL_OK;
}

enum al_rc al_gguf_inspect(const char *path, struct al_gguf_info *out, struct al_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        memset(out, 0, sizeof *out);
        return al_err_sys(err, errno == ENOENT ? AL_ERR_NOT_FOUND : AL_ERR_IO,
                          "cannot open '%s'", path);
    }
    enum al_rc rc = al_gguf_inspect_fd(fd, path, out, err);
    close(fd);
    return rc;
}

bool al_gguf_has_magic(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    unsigned char m[4];
    struct reader r = {fd, 0, NULL, 0, 0};
    bool ok = read_cb(&r, m, 0, sizeof m) == sizeof m && al_gguf_is_magic(m, sizeof m);
    close(fd);
    return ok;
}

bool al_gguf_is_magic(const void *head, size_t len)
{
    return len >= 4 && memcmp(head, GGUF_MAGIC, 4) == 0;
}

bool al_gguf_named(const char *name)
{
    size_t n = strlen(name);
    return n >= 5 && strcasecmp(name + n - 5, ".gguf") == 0;
}
