/*
 * engine.c: the verified load, model information, chat templates, and the
 * routing of llama.cpp's log into ours (tokens are in tokens.c).
 *
 * The verified load opens the blob once and never by name again: the digest
 * is computed on that descriptor, the stream is rewound and the same FILE is
 * given to llama_model_load_from_file_ptr(). A rename or a replaced directory
 * entry between the check and the load therefore changes nothing. The FILE
 * stays open until the model is freed.
 *
 * LoRA adapters are loaded the same way as far as llama.cpp lets us:
 * llama_adapter_lora_init() takes a path and opens it itself (twice: the
 * header, then the tensor data). We open the blob, hash that descriptor and
 * give llama.cpp "/proc/self/fd/<n>": opening that link opens the very file
 * our descriptor holds, not whatever the blob's name points at by then, so a
 * rename or replaced entry changes nothing. What is left is a write into
 * the same file (a read-only blob, so its owner or root only): the file's
 * size and modification time are compared before the hash and after the
 * load, and a change refuses the load (docs/internals/engine.md).
 */
#include "engine/engine_int.h"
#include "engine/chat.h"

#include <pthread.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "core/limits.h"
#include "core/log.h"
#include "core/version.h"

/* ---- llama.cpp's log, into ours ---- */

/* llama.cpp writes a line in pieces (GGML_LOG_LEVEL_CONT), from any thread;
 * each thread assembles its own line. Error lines are also kept so that a
 * failed load can say why in its al_err. */
static __thread char log_line[1024];
static __thread size_t log_len;
static __thread int log_level;
static __thread char last_error[sizeof log_line];

static void log_flush(void)
{
    if (log_len == 0)
        return;
    log_line[log_len] = '\0';
    if (log_level == GGML_LOG_LEVEL_ERROR)
        snprintf(last_error, sizeof last_error, "%s", log_line);
    al_log(AL_LOG_DEBUG, "llama.cpp: %s", log_line);
    log_len = 0;
}

static void llama_log_cb(enum ggml_log_level level, const char *text, void *ud)
{
    if (level != GGML_LOG_LEVEL_CONT) {
        log_flush();
        log_level = level;
    }
    /* Errors are always assembled (for al_err); the rest only when shown. */
    if (log_level != GGML_LOG_LEVEL_ERROR && al_log_get_level() > AL_LOG_DEBUG)
        return;
    for (const char *p = text; *p; p++) {
        if (*p == '\n') {
            log_flush();
            continue;
        }
        if (log_len + 1 < sizeof log_line)
            log_line[log_len++] = *p;
    }
}

const char *al_engine_llama_last_error(void) { return last_error; }
void al_engine_llama_clear_error(void) { last_error[0] = '\0'; }

static pthread_once_t backend_once = PTHREAD_ONCE_INIT;

static void backend_init(void)
{
    llama_log_set(llama_log_cb, NULL);
    llama_backend_init();
}

const char *al_engine_llama_commit(void) { return AIRLOCK_LLAMA_COMMIT; }

/* llama_print_system_info() rebuilds a static std::string on each call; one
 * call, once, keeps the pointer stable for every thread. */
static pthread_once_t sysinfo_once = PTHREAD_ONCE_INIT;
static const char *sysinfo;

static void sysinfo_init(void)
{
    pthread_once(&backend_once, backend_init);
    sysinfo = llama_print_system_info();
}

const char *al_engine_system_info(void)
{
    pthread_once(&sysinfo_once, sysinfo_init);
    return sysinfo ? sysinfo : "";
}

double al_engine_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct timespec al_engine_ms_from_now(double ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long ns = ts.tv_nsec + (long)(ms * 1e6);
    ts.tv_sec += ns / 1000000000L;
    ts.tv_nsec = ns % 1000000000L;
    return ts;
}

/* ---- verification cache ---- */

#define VCACHE_SLOTS 256

struct vcache_entry {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    char digest[AL_DIGEST_SIZE];
    uint64_t used; /* for replacing the least recently used */
};

struct al_engine_verify_cache {
    pthread_mutex_t lock;
    struct vcache_entry e[VCACHE_SLOTS];
    int n;
    uint64_t clock;
};

struct al_engine_verify_cache *al_engine_verify_cache_new(void)
{
    struct al_engine_verify_cache *c = calloc(1, sizeof *c);
    if (c)
        pthread_mutex_init(&c->lock, NULL);
    return c;
}

void al_engine_verify_cache_free(struct al_engine_verify_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static bool same_file(const struct vcache_entry *e, const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
           e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static bool vcache_hit(struct al_engine_verify_cache *c, const struct stat *st, const char *digest)
{
    bool hit = false;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->n; i++) {
        if (same_file(&c->e[i], st) && strcmp(c->e[i].digest, digest) == 0) {
            c->e[i].used = ++c->clock;
            hit = true;
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

static void vcache_put(struct al_engine_verify_cache *c, const struct stat *st, const char *digest)
{
    pthread_mutex_lock(&c->lock);
    int slot = -1;
    for (int i = 0; i < c->n && slot < 0; i++)
        if (same_file(&c->e[i], st))
            slot = i;
    if (slot < 0 && c->n < VCACHE_SLOTS)
        slot = c->n++;
    if (slot < 0) {
        slot = 0;
        for (int i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[slot].used)
                slot = i;
    }
    struct vcache_entry *e = &c->e[slot];
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->size = st->st_size;
    e->mtime = st->st_mtim;
    snprintf(e->digest, sizeof e->digest, "%s", digest);
    e->used = ++c->clock;
    pthread_mutex_unlock(&c->lock);
}

/* ---- loading ---- */

struct al_engine_model_params al_engine_model_params_default(void)
{
    struct al_engine_model_params p = {
        .threads = 2,
        .n_ctx = 0,
        .n_batch = 512,
        .n_seq = 1,
        .kv_unified = false,
        .n_ctx_seq = 0,
        .queue_max = 64,
        .n_gpu_layers = -1,
        .use_mmap = true,
        .use_mlock = false,
        .verify_cache = NULL,
        .admit = NULL,
        .admit_ud = NULL,
    };
    return p;
}

/* The context asked for, else the model's, else 4096: per sequence, or the
 * whole cache with kv_unified. */
static int ctx_size(const struct al_engine_model_params *p, int n_ctx_train)
{
    if (p->n_ctx > 0)
        return p->n_ctx;
    return n_ctx_train > 0 ? n_ctx_train : 4096;
}

uint64_t al_engine_kv_bytes(const struct al_engine_model_params *p, const struct al_engine_kv_shape *shape)
{
    if (!shape->n_layer || !shape->n_embd || !shape->n_head || !shape->n_head_kv)
        return 0;
    uint64_t n_seq = p->n_seq > 0 ? (uint64_t)p->n_seq : 1;
    uint64_t cells = (uint64_t)ctx_size(p, (int)shape->n_ctx_train) * (p->kv_unified ? 1 : n_seq);
    cells = (cells + 255) / 256 * 256;
    uint64_t per_cell = (uint64_t)shape->n_embd / shape->n_head * shape->n_head_kv * 2 /* K, V */ * 2 /* f16 */;
    return cells * per_cell * shape->n_layer;
}

static enum al_rc resolve_params(struct al_engine_model_params *p, struct al_err *err)
{
    if (p->threads <= 0)
        p->threads = 2;
    if (p->n_batch <= 0)
        p->n_batch = 512;
    if (p->n_seq <= 0)
        p->n_seq = 1;
    if (p->queue_max <= 0)
        p->queue_max = 64;
    if (p->n_seq > AL_LIMIT_SEQS)
        return al_err_set(err, AL_ERR_LIMIT, "%d parallel sequences is over the cap of %d (AL_LIMIT_SEQS)",
                          p->n_seq, AL_LIMIT_SEQS);
    if (p->queue_max > AL_LIMIT_QUEUE)
        return al_err_set(err, AL_ERR_LIMIT, "a queue of %d requests is over the cap of %d (AL_LIMIT_QUEUE)",
                          p->queue_max, AL_LIMIT_QUEUE);
    if (p->n_batch < p->n_seq)
        return al_err_set(err, AL_ERR_USAGE, "a batch of %d tokens cannot hold a step of %d sequences",
                          p->n_batch, p->n_seq);
    return AL_OK;
}

/* Opens path, proves its digest, leaves the stream at offset 0 in *out. */
static enum al_rc open_verified(const char *path, const char *expected, struct al_engine_verify_cache *cache,
                                FILE **out, struct al_err *err)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return al_err_sys(err, AL_ERR_IO, "cannot open '%s'", path);
    enum al_rc rc = AL_OK;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        rc = al_err_sys(err, AL_ERR_IO, "cannot stat '%s'", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = al_err_set(err, AL_ERR_INVALID, "'%s' is not a regular file", path);
        goto out;
    }
    if (cache && vcache_hit(cache, &st, expected)) {
        al_debug("'%s' verified before and unchanged, not hashed again", path);
    } else {
        char got[AL_DIGEST_SIZE];
        rc = al_sha256_fd(fileno(f), got, NULL, NULL, err);
        if (rc)
            goto out;
        if (strcmp(got, expected) != 0) {
            rc = al_err_set(err, AL_ERR_VERIFY,
                            "'%s' does not match its digest: expected %s, got %s; "
                            "the store may be damaged, run 'airlock fsck'",
                            path, expected, got);
            goto out;
        }
        if (cache)
            vcache_put(cache, &st, expected);
    }
    /* The hash read the descriptor directly; stdio has buffered nothing. */
    if (fseek(f, 0, SEEK_SET) != 0) {
        rc = al_err_sys(err, AL_ERR_IO, "cannot rewind '%s'", path);
        goto out;
    }
out:
    if (rc)
        fclose(f);
    else
        *out = f;
    return rc;
}

enum al_rc al_engine_open_verified(const char *path, const char *expected, FILE **out, struct al_err *err)
{
    if (!path || !expected || !al_digest_valid(expected) || !out || *out)
        return al_err_set(err, AL_ERR_USAGE, "al_engine_open_verified: bad arguments");
    pthread_once(&backend_once, backend_init);
    return open_verified(path, expected, NULL, out, err);
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* A file llama.cpp opens by path (an adapter, a quantize source), proven
 * first: the stat baseline is taken before the hash, so a write during the
 * hash is seen too; the open, hashed file is then handed over as its
 * /proc/self/fd link, which must lead to that file. what names the file in
 * messages ("the adapter 'x'"), doing what the refusal says is not done. On
 * AL_OK *f (fclose it), *before and proc are the caller's. */
static enum al_rc open_proven(const char *path, const char *digest, struct al_engine_verify_cache *cache,
                              const char *what, const char *doing, FILE **f, struct stat *before, char *proc,
                              size_t proc_size, struct al_err *err)
{
    struct stat now, link;
    *f = NULL;
    if (stat(path, before) != 0)
        return al_err_sys(err, AL_ERR_IO, "cannot open %s", what);
    enum al_rc rc = open_verified(path, digest, cache, f, err);
    if (rc)
        return rc;
    int fd = fileno(*f);
    snprintf(proc, proc_size, "/proc/self/fd/%d", fd);
    if (fstat(fd, &now) != 0 || !same_stat(before, &now))
        rc = al_err_set(err, AL_ERR_VERIFY, "%s changed while it was verified; nothing is %s", what, doing);
    else if (stat(proc, &link) != 0 || link.st_dev != before->st_dev || link.st_ino != before->st_ino)
        rc = al_err_set(err, AL_ERR_IO, "cannot read %s through %s (is /proc mounted?)", what, proc);
    if (rc) {
        fclose(*f);
        *f = NULL;
    }
    return rc;
}

/* Loads one adapter of m, proven against its digest (see the top). */
/* With mu (a model being served): llama_adapter_lora_init adds the adapter
 * to the model's set, which a decode reads as it sizes its graph; the
 * scheduler's worker holds mu around each llama_decode. */
static enum al_rc load_lora(struct al_engine_model *m, const struct al_engine_lora *l,
                            struct al_engine_verify_cache *cache, pthread_mutex_t *mu,
                            struct llama_adapter_lora **out, struct al_err *err)
{
    if (!l->path || !l->digest || !al_digest_valid(l->digest))
        return al_err_set(err, AL_ERR_USAGE, "a LoRA adapter needs a blob path and a digest (sha256:<64 hex>)");
    if (!(l->scale >= -100.0f && l->scale <= 100.0f))
        return al_err_set(err, AL_ERR_USAGE, "a LoRA scale of %g is outside -100..100", (double)l->scale);
    /* ggml-vulkan (with lavapipe at least) crashes the process at the first
     * decode after a context's adapters change (docs/internals/platforms.md):
     * a clear refusal instead, unless the site has proven its driver. */
    const char *allow = getenv("AIRLOCK_VULKAN_LORA");
    if (al_engine_model_on_vulkan(m) && !(allow && strcmp(allow, "1") == 0))
        return al_err_set(err, AL_ERR_USAGE, "LoRA adapters are not served on a model offloaded to Vulkan: "
                          "llama.cpp's Vulkan backend crashes when a context's adapters change; serve this model "
                          "with --gpu-layers 0 to use adapters (or set AIRLOCK_VULKAN_LORA=1 on a driver proven "
                          "to work)");
    struct stat before, now;
    FILE *f = NULL;
    char what[AL_LIMIT_PATH + 16], proc[64];
    snprintf(what, sizeof what, "the adapter '%s'", l->path);
    enum al_rc rc = open_proven(l->path, l->digest, cache, what, "loaded", &f, &before, proc, sizeof proc, err);
    if (rc)
        return rc;
    int fd = fileno(f);
    al_engine_llama_clear_error();
    if (mu)
        pthread_mutex_lock(mu);
    *out = llama_adapter_lora_init(m->model, proc);
    if (mu)
        pthread_mutex_unlock(mu);
    if (!*out) {
        const char *why = al_engine_llama_last_error();
        rc = al_err_set(err, AL_ERR_CORRUPT, "llama.cpp cannot load the LoRA adapter '%s'%s%s", l->path,
                        *why ? ": " : "", why);
        goto out;
    }
    if (fstat(fd, &now) != 0 || !same_stat(&before, &now)) {
        if (mu)
            pthread_mutex_lock(mu);
        llama_adapter_lora_free(*out);
        if (mu)
            pthread_mutex_unlock(mu);
        *out = NULL;
        rc = al_err_set(err, AL_ERR_VERIFY, "the adapter '%s' changed while it was loaded; nothing is loaded",
                        l->path);
        goto out;
    }
    al_info("LoRA adapter '%s' (%s) at scale %g", l->path, l->digest, (double)l->scale);
out:
    fclose(f);
    return rc;
}

/* The types llama-quantize offers that need no importance matrix (the IQ*
 * and the 1-2 bit types refuse to run without one). */
static const struct {
    const char *name;
    enum llama_ftype ftype;
} quant_types[] = {
    {"F32", LLAMA_FTYPE_ALL_F32},         {"F16", LLAMA_FTYPE_MOSTLY_F16},
    {"BF16", LLAMA_FTYPE_MOSTLY_BF16},    {"Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},
    {"Q6_K", LLAMA_FTYPE_MOSTLY_Q6_K},    {"Q5_K_M", LLAMA_FTYPE_MOSTLY_Q5_K_M},
    {"Q5_K_S", LLAMA_FTYPE_MOSTLY_Q5_K_S}, {"Q5_1", LLAMA_FTYPE_MOSTLY_Q5_1},
    {"Q5_0", LLAMA_FTYPE_MOSTLY_Q5_0},    {"Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M},
    {"Q4_K_S", LLAMA_FTYPE_MOSTLY_Q4_K_S}, {"Q4_1", LLAMA_FTYPE_MOSTLY_Q4_1},
    {"Q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},    {"Q3_K_L", LLAMA_FTYPE_MOSTLY_Q3_K_L},
    {"Q3_K_M", LLAMA_FTYPE_MOSTLY_Q3_K_M}, {"Q3_K_S", LLAMA_FTYPE_MOSTLY_Q3_K_S},
    {"Q2_K", LLAMA_FTYPE_MOSTLY_Q2_K},
};

int al_engine_quant_type(const char *name)
{
    for (size_t i = 0; name && i < sizeof quant_types / sizeof quant_types[0]; i++)
        if (strcmp(name, quant_types[i].name) == 0)
            return (int)quant_types[i].ftype;
    return -1;
}

const char *al_engine_quant_types(void)
{
    return "F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q5_1, Q5_0, Q4_K_M, Q4_K_S, Q4_1, Q4_0, Q3_K_L, "
           "Q3_K_M, Q3_K_S, Q2_K";
}

/* The source's hash, taken beside the quantization (see al_engine_quantize). */
struct quant_hash {
    int fd;
    char got[AL_DIGEST_SIZE];
    enum al_rc rc;
    struct al_err err;
};

static void *quant_hash_main(void *arg)
{
    struct quant_hash *qh = arg;
    qh->rc = al_sha256_fd(qh->fd, qh->got, NULL, NULL, &qh->err);
    return NULL;
}

enum al_rc al_engine_quantize(const char *src_path, const char *expected_digest, const char *dst_path,
                              const char *type, int n_threads, struct al_err *err)
{
    if (!src_path || !dst_path || !expected_digest || !al_digest_valid(expected_digest))
        return al_err_set(err, AL_ERR_USAGE, "al_engine_quantize: bad arguments");
    int ft = al_engine_quant_type(type);
    if (ft < 0)
        return al_err_set(err, AL_ERR_USAGE, "unknown quantization type '%s' (one of: %s)", type ? type : "",
                          al_engine_quant_types());
    pthread_once(&backend_once, backend_init);
    struct stat before, now, link;
    char proc[64];
    if (stat(src_path, &before) != 0)
        return al_err_sys(err, AL_ERR_IO, "cannot open '%s'", src_path);
    int fd = open(src_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return al_err_sys(err, AL_ERR_IO, "cannot open '%s'", src_path);
    enum al_rc rc = AL_OK;
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (fstat(fd, &now) != 0 || !S_ISREG(now.st_mode) || !same_stat(&before, &now)) {
        close(fd);
        return al_err_set(err, AL_ERR_VERIFY, "'%s' is not a regular file, or changed as it was opened", src_path);
    }
    if (stat(proc, &link) != 0 || link.st_dev != before.st_dev || link.st_ino != before.st_ino) {
        close(fd);
        return al_err_set(err, AL_ERR_IO, "cannot read '%s' through %s (is /proc mounted?)", src_path, proc);
    }
    /* Why beside, not before: llama_model_quantize reads the source once and
     * writes a new file, nothing that is served or kept; hashing the same
     * descriptor on a helper thread as it works hides the hash (0.3 s of
     * 377 MiB) behind the quantization. The proof still comes before
     * anything derived is kept: a digest that does not match discards the
     * result (the caller removes dst_path), as does a source that changed.
     * llama.cpp opens /proc/self/fd/<n> as a description of its own, so the
     * two reads do not share an offset. */
    struct quant_hash qh = {.fd = fd, .rc = AL_OK, .err = AL_ERR_INIT};
    pthread_t hasher;
    bool hashing = pthread_create(&hasher, NULL, quant_hash_main, &qh) == 0;
    if (!hashing)
        quant_hash_main(&qh); /* no thread to spare: hash first, as before */
    struct llama_model_quantize_params qp = llama_model_quantize_default_params();
    qp.nthread = n_threads > 0 ? n_threads : 0;
    qp.ftype = (enum llama_ftype)ft;
    qp.allow_requantize = false;
    uint32_t q = 1;
    if (hashing || (qh.rc == AL_OK && strcmp(qh.got, expected_digest) == 0)) {
        al_engine_llama_clear_error();
        q = llama_model_quantize(proc, dst_path, &qp);
    }
    if (hashing)
        pthread_join(hasher, NULL);
    if (qh.rc) {
        rc = al_err_set(err, qh.rc, "%s", qh.err.msg);
    } else if (strcmp(qh.got, expected_digest) != 0) {
        rc = al_err_set(err, AL_ERR_VERIFY,
                        "'%s' does not match its digest: expected %s, got %s; the store may be damaged, run "
                        "'airlock fsck'; nothing was quantized",
                        src_path, expected_digest, qh.got);
    } else if (q != 0) {
        const char *why = al_engine_llama_last_error();
        rc = al_err_set(err, AL_ERR_CORRUPT, "llama.cpp cannot quantize '%s' to %s%s%s", src_path, type,
                        *why ? ": " : "", why);
    } else if (fstat(fd, &now) != 0 || !same_stat(&before, &now)) {
        rc = al_err_set(err, AL_ERR_VERIFY, "'%s' changed while it was quantized; the result is discarded",
                        src_path);
    } else {
        al_info("quantized '%s' (%s) to %s", src_path, expected_digest, type);
    }
    close(fd);
    return rc;
}

enum al_rc al_engine_apply_loras(struct al_engine_model *m, struct llama_context *ctx, struct al_err *err)
{
    struct llama_adapter_lora *a[AL_LIMIT_LORAS];
    float sc[AL_LIMIT_LORAS];
    pthread_mutex_lock(&m->lora_mu);
    int n = m->n_loras;
    for (int i = 0; i < n; i++) {
        a[i] = m->loras[i];
        sc[i] = m->lora_scales[i];
    }
    pthread_mutex_unlock(&m->lora_mu);
    if (n == 0)
        return AL_OK;
    if (llama_set_adapters_lora(ctx, a, (size_t)n, sc) != 0)
        return al_err_set(err, AL_ERR_INTERNAL, "cannot apply %d LoRA adapters to a context", n);
    return AL_OK;
}

enum al_rc al_engine_lora_add(struct al_engine_model *m, const char *path, const char *digest, int *id,
                              struct al_err *err)
{
    if (!m || !path || !digest || !id || !al_digest_valid(digest))
        return al_err_set(err, AL_ERR_USAGE, "al_engine_lora_add: bad arguments");
    /* One add at a time, so that two requests for the same adapter load it
     * once; the worker is held (lora_mu) only while llama.cpp links it in. */
    pthread_mutex_lock(&m->lora_add_mu);
    enum al_rc rc = AL_OK;
    int n = m->n_loras; /* only adds change it, and they hold lora_add_mu */
    for (int i = 0; i < n; i++)
        if (strcmp(m->lora_digests[i], digest) == 0) {
            *id = i;
            goto out;
        }
    if (n >= AL_LIMIT_LORAS) {
        rc = al_err_set(err, AL_ERR_LIMIT, "model %s has %d LoRA adapters loaded, the cap (AL_LIMIT_LORAS)",
                        m->digest, AL_LIMIT_LORAS);
        goto out;
    }
    struct al_engine_lora l = {.path = path, .digest = digest, .scale = 0.0f};
    struct llama_adapter_lora *a = NULL;
    if ((rc = load_lora(m, &l, m->params.verify_cache, &m->lora_mu, &a, err)))
        goto out;
    pthread_mutex_lock(&m->lora_mu);
    m->loras[n] = a;
    m->lora_scales[n] = 0.0f; /* loaded on demand: applied only where a request asks */
    snprintf(m->lora_digests[n], sizeof m->lora_digests[n], "%s", digest);
    m->n_loras = n + 1;
    pthread_mutex_unlock(&m->lora_mu);
    *id = n;
out:
    pthread_mutex_unlock(&m->lora_add_mu);
    return rc;
}

bool al_engine_lora_default(struct al_engine_model *m, const char *digest, float *scale)
{
    bool found = false;
    *scale = 0.0f;
    pthread_mutex_lock(&m->lora_mu);
    for (int i = 0; i < m->n_loras && !found; i++)
        if (strcmp(m->lora_digests[i], digest) == 0) {
            *scale = m->lora_scales[i];
            found = true;
        }
    pthread_mutex_unlock(&m->lora_mu);
    return found;
}

enum al_rc al_engine_lora_set_default(struct al_engine_model *m, int id, float scale, struct al_err *err)
{
    if (!(scale >= -100.0f && scale <= 100.0f))
        return al_err_set(err, AL_ERR_USAGE, "a LoRA scale of %g is outside -100..100", (double)scale);
    pthread_mutex_lock(&m->lora_mu);
    enum al_rc rc = AL_OK;
    if (id < 0 || id >= m->n_loras)
        rc = al_err_set(err, AL_ERR_USAGE, "no LoRA adapter %d in the model (%d loaded)", id, m->n_loras);
    else
        m->lora_scales[id] = scale == 0.0f ? 0.0f : scale;
    pthread_mutex_unlock(&m->lora_mu);
    return rc;
}

enum al_rc al_engine_model_load(const char *blob_path, const char *expected_digest,
                                const struct al_engine_model_params *params,
                                struct al_engine_model **out, struct al_err *err)
{
    if (!blob_path || !expected_digest || !out || *out)
        return al_err_set(err, AL_ERR_USAGE, "al_engine_model_load: bad arguments");
    if (!al_digest_valid(expected_digest))
        return al_err_set(err, AL_ERR_USAGE, "'%s' is not a digest (sha256:<64 hex digits>)",
                          expected_digest);
    pthread_once(&backend_once, backend_init);

    struct al_engine_model_params p = params ? *params : al_engine_model_params_default();
    enum al_rc rc = resolve_params(&p, err);
    if (rc)
        return rc;

    struct al_engine_model *m = calloc(1, sizeof *m);
    if (!m)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory loading '%s'", blob_path);
    pthread_mutex_init(&m->embed_lock, NULL);
    pthread_mutex_init(&m->lora_mu, NULL);
    pthread_mutex_init(&m->lora_add_mu, NULL);
    m->params = p;
    snprintf(m->digest, sizeof m->digest, "%s", expected_digest);

    rc = open_verified(blob_path, expected_digest, p.verify_cache, &m->file, err);
    if (rc)
        goto fail;

    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = p.n_gpu_layers;
    if (p.use_mmap)
        mp.load_mode = p.use_mlock ? LLAMA_LOAD_MODE_MMAP_MLOCK : LLAMA_LOAD_MODE_MMAP;
    else
        mp.load_mode = p.use_mlock ? LLAMA_LOAD_MODE_MLOCK : LLAMA_LOAD_MODE_NONE;
    al_engine_llama_clear_error();
    double t0 = al_engine_now_ms();
    m->model = llama_model_load_from_file_ptr(m->file, mp);
    if (!m->model) {
        const char *why = al_engine_llama_last_error();
        rc = al_err_set(err, AL_ERR_CORRUPT, "llama.cpp cannot load '%s'%s%s", blob_path,
                        *why ? ": " : "", why);
        goto fail;
    }
    m->vocab = llama_model_get_vocab(m->model);
    if (p.n_loras < 0 || p.n_loras > AL_LIMIT_LORAS) {
        rc = al_err_set(err, AL_ERR_LIMIT, "%d LoRA adapters is over the cap of %d (AL_LIMIT_LORAS)", p.n_loras,
                        AL_LIMIT_LORAS);
        goto fail;
    }
    for (int i = 0; i < p.n_loras; i++) {
        if ((rc = load_lora(m, &p.loras[i], p.verify_cache, NULL, &m->loras[i], err)))
            goto fail;
        m->lora_scales[i] = p.loras[i].scale;
        snprintf(m->lora_digests[i], sizeof m->lora_digests[i], "%s", p.loras[i].digest);
        m->n_loras = i + 1;
    }
    m->params.loras = NULL; /* borrowed: not kept */
    m->params.n_loras = 0;
    m->n_ctx = ctx_size(&p, llama_model_n_ctx_train(m->model));
    m->n_ctx_seq = m->n_ctx;
    if (p.kv_unified && p.n_ctx_seq > 0 && p.n_ctx_seq < m->n_ctx)
        m->n_ctx_seq = p.n_ctx_seq;
    if ((int64_t)m->n_ctx * (p.kv_unified ? 1 : p.n_seq) > INT32_MAX / 2) {
        rc = al_err_set(err, AL_ERR_LIMIT, "a context of %d tokens times %d sequences is too large",
                        m->n_ctx, p.n_seq);
        goto fail;
    }
    /* The Jinja template (engine/chat.h). One in the GGUF that llama.cpp's
     * Jinja engine cannot parse leaves the builtin formats; an override the
     * operator gave must parse. */
    struct al_err terr = AL_ERR_INIT;
    /* A reranker never chats: no templates (llama.cpp's chat library would
     * render one for it from a vocabulary without BOS and EOS pieces). */
    rc = al_engine_model_is_reranker(m) ? AL_OK
         : al_engine_chat_tmpls_new(m->model, p.chat_template, &m->chat, p.chat_template ? err : &terr);
    m->params.chat_template = NULL; /* borrowed: not kept */
    if (rc && p.chat_template)
        goto fail;
    if (rc)
        al_warn("'%s': %s; using llama.cpp's builtin chat formats", blob_path, terr.msg);
    rc = al_engine_sched_new(m, &m->sched, err);
    if (rc)
        goto fail;
    if (p.kv_unified)
        al_info("loaded '%s' (%s) in %.0f ms: %d sequences sharing %d cells, at most %d each", blob_path,
                expected_digest, al_engine_now_ms() - t0, p.n_seq, m->n_ctx, m->n_ctx_seq);
    else
        al_info("loaded '%s' (%s) in %.0f ms: %d sequences of %d tokens", blob_path, expected_digest,
                al_engine_now_ms() - t0, p.n_seq, m->n_ctx_seq);
    char where[256];
    al_engine_model_placement(m, where, sizeof where);
    al_info("'%s' runs on %s", blob_path, where);
    *out = m;
    return AL_OK;
fail:
    al_engine_model_free(m);
    return rc;
}

void al_engine_model_free(struct al_engine_model *m)
{
    if (!m)
        return;
    al_engine_sched_free(m->sched);
    al_engine_embedder_free(m->embedder);
    al_engine_ranker_free(m->ranker);
    al_engine_chat_tmpls_free(m->chat);
    /* Adapters are freed with their model (llama.h), not before: a context
     * may still point at them until the scheduler is gone. */
    if (m->model)
        llama_model_free(m->model);
    if (m->file)
        fclose(m->file);
    pthread_mutex_destroy(&m->embed_lock);
    pthread_mutex_destroy(&m->lora_mu);
    pthread_mutex_destroy(&m->lora_add_mu);
    free(m);
}

void al_engine_model_info(const struct al_engine_model *m, struct al_engine_model_info *out)
{
    memset(out, 0, sizeof *out);
    out->n_ctx_train = llama_model_n_ctx_train(m->model);
    out->n_ctx = m->n_ctx_seq;
    out->n_seq = m->params.n_seq;
    out->n_batch = m->params.n_batch;
    out->kv_unified = m->params.kv_unified;
    out->n_ctx_cells = m->params.kv_unified ? m->n_ctx : m->n_ctx_seq * m->params.n_seq;
    out->n_vocab = llama_vocab_n_tokens(m->vocab);
    out->n_embd = llama_model_n_embd_out(m->model);
    out->n_layer = llama_model_n_layer(m->model);
    out->n_params = llama_model_n_params(m->model);
    out->size_bytes = llama_model_size(m->model);
    struct al_engine_model_params kp = m->params;
    kp.n_ctx = m->params.kv_unified ? m->n_ctx : m->n_ctx_seq;
    struct al_engine_kv_shape shape = {(uint32_t)out->n_layer, (uint32_t)llama_model_n_embd(m->model),
                                (uint32_t)llama_model_n_head(m->model), (uint32_t)llama_model_n_head_kv(m->model),
                                (uint32_t)out->n_ctx_train};
    out->kv_bytes = al_engine_kv_bytes(&kp, &shape);
    out->has_chat_template = llama_model_chat_template(m->model, NULL) != NULL;
    if (llama_model_desc(m->model, out->desc, sizeof out->desc) < 0)
        out->desc[0] = '\0';
    snprintf(out->digest, sizeof out->digest, "%s", m->digest);
    pthread_mutex_lock((pthread_mutex_t *)&m->lora_mu); /* al_engine_lora_add may run */
    out->n_loras = m->n_loras;
    pthread_mutex_unlock((pthread_mutex_t *)&m->lora_mu);
}

/* ---- chat templates ---- */

bool al_engine_chat_builtin(const char *name)
{
    const char *names[128];
    int32_t n = llama_chat_builtin_templates(names, sizeof names / sizeof names[0]);
    for (int32_t i = 0; i < n && i < (int32_t)(sizeof names / sizeof names[0]); i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

static int apply_template(const char *tmpl, const struct llama_chat_message *msgs, size_t n,
                          bool add_ass, char **out, size_t total)
{
    size_t cap = 2 * total + 512;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (cap > AL_LIMIT_PROMPT_BYTES)
            cap = AL_LIMIT_PROMPT_BYTES;
        char *buf = malloc(cap + 1);
        if (!buf)
            return -2;
        int r = llama_chat_apply_template(tmpl, msgs, n, add_ass, buf, (int32_t)cap);
        if (r < 0) {
            free(buf);
            return -1;
        }
        if ((size_t)r <= cap) {
            buf[r] = '\0';
            *out = buf;
            return r;
        }
        free(buf);
        if ((size_t)r > AL_LIMIT_PROMPT_BYTES)
            return -3;
        cap = (size_t)r;
    }
    return -3;
}

enum al_rc al_engine_chat_format(const struct al_engine_model *m, const struct al_engine_chat_msg *msgs,
                                 size_t n_msgs, bool add_assistant, const char *fallback_tmpl,
                                 char **out, struct al_err *err)
{
    if (n_msgs > AL_LIMIT_CHAT_MSGS)
        return al_err_set(err, AL_ERR_LIMIT, "%zu messages is over the cap of %d (AL_LIMIT_CHAT_MSGS)", n_msgs,
                          AL_LIMIT_CHAT_MSGS);
    struct llama_chat_message *lm = calloc(n_msgs ? n_msgs : 1, sizeof *lm);
    if (!lm)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory formatting a chat");
    size_t total = 0;
    for (size_t i = 0; i < n_msgs; i++) {
        lm[i].role = msgs[i].role ? msgs[i].role : "user";
        lm[i].content = msgs[i].content ? msgs[i].content : "";
        total += strlen(lm[i].role) + strlen(lm[i].content);
    }
    enum al_rc rc = AL_OK;
    if (total > AL_LIMIT_PROMPT_BYTES) {
        rc = al_err_set(err, AL_ERR_LIMIT, "a chat of %zu bytes is over the cap of %u (AL_LIMIT_PROMPT_BYTES)",
                        total, AL_LIMIT_PROMPT_BYTES);
        goto out;
    }
    const char *tmpls[2] = {llama_model_chat_template(m->model, NULL),
                            fallback_tmpl ? fallback_tmpl : "chatml"};
    int r = -1;
    for (int i = 0; i < 2 && r == -1; i++) {
        if (!tmpls[i])
            continue;
        r = apply_template(tmpls[i], lm, n_msgs, add_assistant, out, total);
        if (r == -1 && i == 0)
            al_debug("the model's chat template is not one llama.cpp knows; using '%s'",
                     fallback_tmpl ? fallback_tmpl : "chatml");
    }
    if (r == -2)
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory formatting a chat");
    else if (r == -3)
        rc = al_err_set(err, AL_ERR_LIMIT, "the formatted chat is over the cap of %u bytes (AL_LIMIT_PROMPT_BYTES)",
                        AL_LIMIT_PROMPT_BYTES);
    else if (r < 0)
        rc = al_err_set(err, AL_ERR_INVALID, "no usable chat template: the model has %s and '%s' is not a known template",
                        tmpls[0] ? "one llama.cpp does not support" : "none",
                        fallback_tmpl ? fallback_tmpl : "chatml");
out:
    free(lm);
    return rc;
}
