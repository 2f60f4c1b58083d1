/*
 * airlock-ggufgen: writes a llama-architecture GGUF model of any shape with
 * seeded random weights and a real vocabulary, for tests and benchmarks.
 *
 * The metadata is built with ggml's gguf.h writer (tokenizer.* keys copied
 * from a llama.cpp models/ggml-vocab-*.gguf), written alone, and the tensor
 * data is then streamed after it tensor by tensor in 1 MiB chunks, so a model
 * of any size needs only a few MiB of memory. Quantized types are made from an
 * F16 temporary with llama_model_quantize (pure: every 2-D tensor gets the
 * type). The output appears under its name only once complete (.part, rename).
 * Same options and seed: same bytes. --plant writes one NaN or Inf into the
 * finished file (a value, or a quantized block's scale) for the value scan's
 * tests (src/gguf/values.c). --lora-for BASE writes a LoRA adapter for a
 * base model instead (lora.c); --reranker a BERT cross-encoder with a
 * classification head and rank pooling (bert.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <ggml.h>
#include <gguf.h> /* ggml's; ours is "gguf/gguf.h" */
#include <llama.h>

#include "core/version.h"
#include "bert.h"
#include "lora.h"

#define CHUNK (1u << 18) /* floats per write */
#define DEFAULT_VOCAB AIRLOCK_LLAMA_SRC "/models/ggml-vocab-llama-spm.gguf"
#define BERT_VOCAB AIRLOCK_LLAMA_SRC "/models/ggml-vocab-bert-bge.gguf"
/* A reranker's weights are Normal(0, 0.02 * BERT_WEIGHT_SCALE): at 0.02 the
 * first token's output hardly depends on the other tokens, and documents
 * would score alike to 1e-4; post-layer norms keep the larger ones bounded. */
#ifndef BERT_WEIGHT_SCALE
#define BERT_WEIGHT_SCALE 10.0f
#endif

enum wtype { W_F32, W_F16, W_Q8_0, W_Q4_0 };

struct opts {
    const char *out, *vocab, *name, *chat_template, *license;
    const char *plant, *plant_tensor; /* "nan" or "inf"; NULL: first 2-D tensor */
    uint64_t plant_at;
    long layers, embd, ff, heads, kv_heads, ctx;
    enum wtype type;
    uint64_t seed, params;
    int threads;
    bool verbose;
    bool reranker;          /* a BERT reranker (bert.c) instead of a llama model */
    int n_fim;              /* --fim: token ids of FIM pre, suf, mid[, rep, sep] */
    long fim[5];
    struct lora_opts lora;  /* with lora.base set: write an adapter */
};

/* The whole of a text file, NUL-terminated, or NULL (a test tool: the
 * file is the test's own; 16 MiB at most). One static buffer, read once: no
 * allocation for the leak checker of the sanitizer builds to report. */
static char *read_text(const char *path)
{
    static char buf[(16u << 20) + 1];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: airlock-ggufgen --out FILE [options]\n"
        "Writes a llama-architecture GGUF model with seeded random weights and the\n"
        "vocabulary of a llama.cpp models/ggml-vocab-*.gguf file.\n\n"
        "  --out FILE          output path (required)\n"
        "  --type T            f32 (default), f16, q8_0 or q4_0\n"
        "  --params N          pick a realistic shape near N parameters (e.g. 100M, 1.5G);\n"
        "                      explicit --embd/--layers/... still win\n"
        "  --layers N          transformer blocks (default 2)\n"
        "  --embd N            embedding width (default 64)\n"
        "  --ff N              feed-forward width (default 8/3*embd rounded up to 32)\n"
        "  --heads N           attention heads (default embd/16, /64 from 256, /128 from 2048)\n"
        "  --kv-heads N        key/value heads, dividing --heads (default = heads)\n"
        "  --ctx N             context length (default 512)\n"
        "  --seed S            random seed (default 1)\n"
        "  --name NAME         general.name (default \"airlock-ggufgen\")\n"
        "  --license ID        general.license (default: none written)\n"
        "  --chat-template S   tokenizer.chat_template (Jinja text)\n"
        "  --chat-template-file FILE  the same, read from FILE (for templates over argv's\n"
        "                      128 KiB a string)\n"
        "  --vocab FILE        vocabulary GGUF (default %s)\n"
        "  --threads N         quantization threads (default 2)\n"
        "  --plant nan|inf     write one NaN or Inf into the finished model: the value\n"
        "                      itself (f32, f16 tensors) or its block's scale (q8_0, q4_0)\n"
        "  --plant-tensor NAME where (default: the first 2-D tensor in the file)\n"
        "  --plant-at N        at which element of that tensor, row-major (default 0)\n"
        "  --fim P,S,M[,R,F]   fill-in-the-middle tokens: the ids of the vocabulary's tokens\n"
        "                      that serve as FIM prefix, suffix, middle (and repository,\n"
        "                      file separator): tokenizer.ggml.fim_*_token_id\n"
        "  --verbose           show llama.cpp's log while quantizing\n"
        "  --reranker          write a BERT cross-encoder instead: classification head\n"
        "                      (cls, cls.output), bert.pooling_type rank, so llama.cpp\n"
        "                      gives one score per (query, document); f32 or f16; the\n"
        "                      vocabulary defaults to %s\n"
        "LoRA adapters (instead of a model):\n"
        "  --lora-for BASE     write a LoRA adapter for the model BASE (general.type adapter,\n"
        "                      <tensor>.lora_a [n_in, rank] and .lora_b [rank, n_out], F32)\n"
        "  --lora-targets L    block tensors to adapt (default attn_q,attn_v)\n"
        "  --lora-rank N       rank (default 4)\n"
        "  --lora-alpha X      adapter.lora.alpha (default: the rank)\n"
        "  --lora-strength X   standard deviation of the added weights, in units of the\n"
        "                      generated models' 0.02 (default 1); --seed and --name apply\n"
        "  --help              this text\n",
        DEFAULT_VOCAB, BERT_VOCAB);
}

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("airlock-ggufgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

/* A positive integer with an optional K/M/G/T suffix (powers of 1000) and an
 * optional fraction ("1.5G"). */
static bool parse_count(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || !(v > 0))
        return false;
    double mul = 1;
    switch (*end) {
    case 'k': case 'K': mul = 1e3; end++; break;
    case 'm': case 'M': mul = 1e6; end++; break;
    case 'g': case 'G': mul = 1e9; end++; break;
    case 't': case 'T': mul = 1e12; end++; break;
    default: break;
    }
    if (*end != '\0' || v * mul > 1e15)
        return false;
    *out = (uint64_t)llround(v * mul);
    return *out > 0;
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* ---- shape ---- */

static long round_up(long x, long m) { return (x + m - 1) / m * m; }
static long default_ff(long e) { return round_up((8 * e + 2) / 3, 32); }
static long default_heads(long e)
{
    long hd = e >= 2048 ? 128 : e >= 256 ? 64 : 16;
    return e % hd == 0 ? e / hd : 1;
}

static uint64_t per_layer(long e, long ff, long heads, long kvh)
{
    uint64_t ekv = (uint64_t)e / (uint64_t)heads * (uint64_t)kvh;
    return 2u * (uint64_t)e * (uint64_t)e + 2u * (uint64_t)e * ekv + 3u * (uint64_t)e * (uint64_t)ff +
           2u * (uint64_t)e;
}

static uint64_t total_params(const struct opts *o, uint64_t n_vocab)
{
    return 2 * n_vocab * (uint64_t)o->embd + (uint64_t)o->embd +
           (uint64_t)o->layers * per_layer(o->embd, o->ff, o->heads, o->kv_heads);
}

/* Fills in what --params leaves open: the width whose layer count for the
 * target is closest (relatively) to a realistic depth of embd/128 blocks. */
static void shape_for_params(struct opts *o, uint64_t n_vocab)
{
    static const long widths[] = {64, 128, 192, 256, 384, 512, 640, 768, 1024, 1280, 1536,
                                  2048, 2560, 3072, 4096, 5120, 6144, 8192};
    double best_score = 1e30;
    long best_e = 64, best_l = 1;
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        long e = o->embd > 0 ? o->embd : widths[i];
        long heads = o->heads > 0 ? o->heads : default_heads(e);
        long kvh = o->kv_heads > 0 ? o->kv_heads : heads;
        long ff = o->ff > 0 ? o->ff : default_ff(e);
        double fixed = 2.0 * (double)n_vocab * (double)e + (double)e;
        double l = o->layers > 0 ? (double)o->layers
                                 : round(((double)o->params - fixed) / (double)per_layer(e, ff, heads, kvh));
        if (l < 1)
            l = 1;
        double ideal = e / 128.0 < 2 ? 2 : e / 128.0;
        double total = fixed + l * (double)per_layer(e, ff, heads, kvh);
        double score = fabs(l - ideal) / ideal + 4 * fabs(total - (double)o->params) / (double)o->params;
        if (score < best_score) {
            best_score = score;
            best_e = e;
            best_l = (long)l;
        }
        if (o->embd > 0)
            break;
    }
    o->embd = best_e;
    if (o->layers <= 0)
        o->layers = best_l;
}

/* ---- random weights: splitmix64 seeds xoshiro256**, Box-Muller ---- */

struct rng { uint64_t s[4]; };

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return res;
}

/* Normal(0, 0.02) into out[n], n even or not. */
static void rng_fill(struct rng *r, float *out, size_t n)
{
    for (size_t i = 0; i < n; i += 2) {
        double u1 = ((double)(rng_next(r) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
        double u2 = (double)(rng_next(r) >> 11) * 0x1.0p-53;
        double rad = sqrt(-2.0 * log(u1)) * 0.02;
        out[i] = (float)(rad * cos(6.283185307179586 * u2));
        if (i + 1 < n)
            out[i + 1] = (float)(rad * sin(6.283185307179586 * u2));
    }
}

/* ---- writing ---- */

/* Streams one tensor's data (random, or ones for norms) then the padding. */
static int write_tensor(FILE *f, const struct ggml_tensor *t, uint64_t seed, uint64_t index,
                        size_t alignment, float scale, float *fbuf, ggml_fp16_t *hbuf)
{
    struct rng r;
    rng_seed(&r, seed, index + 1);
    bool ones = strstr(t->name, "norm") != NULL;
    int64_t left = ggml_nelements(t);
    while (left > 0) {
        size_t n = left > (int64_t)CHUNK ? CHUNK : (size_t)left;
        if (ones)
            for (size_t i = 0; i < n; i++)
                fbuf[i] = 1.0f;
        else
            rng_fill(&r, fbuf, n);
        if (!ones && scale != 1.0f)
            for (size_t i = 0; i < n; i++)
                fbuf[i] *= scale;
        size_t w;
        if (t->type == GGML_TYPE_F16) {
            ggml_fp32_to_fp16_row(fbuf, hbuf, (int64_t)n);
            w = fwrite(hbuf, sizeof *hbuf, n, f);
        } else {
            w = fwrite(fbuf, sizeof *fbuf, n, f);
        }
        if (w != n)
            return -1;
        left -= (int64_t)n;
    }
    static const char zeros[64];
    size_t nb = ggml_nbytes(t), pad = GGML_PAD(nb, alignment) - nb;
    while (pad > 0) {
        size_t k = pad > sizeof zeros ? sizeof zeros : pad;
        if (fwrite(zeros, 1, k, f) != k)
            return -1;
        pad -= k;
    }
    return 0;
}

static struct ggml_tensor *add(struct ggml_context *tc, struct gguf_context *g, const char *name,
                               enum ggml_type type, int64_t ne0, int64_t ne1)
{
    struct ggml_tensor *t = ne1 > 0 ? ggml_new_tensor_2d(tc, type, ne0, ne1)
                                    : ggml_new_tensor_1d(tc, GGML_TYPE_F32, ne0);
    ggml_set_name(t, name);
    gguf_add_tensor(g, t);
    return t;
}

/* Builds the metadata and tensor table; the tensors live in tc. */
static int build_meta(const struct opts *o, const struct gguf_context *vocab, int64_t n_vocab,
                      enum ggml_type wt, struct gguf_context *g, struct ggml_context *tc)
{
    /* only the tokenizer's keys come from the vocabulary file */
    gguf_set_kv(g, vocab);
    for (int64_t i = gguf_get_n_kv(g) - 1; i >= 0; i--) {
        const char *key = gguf_get_key(g, i);
        if (strncmp(key, "tokenizer.", 10) != 0)
            gguf_remove_key(g, key);
    }
    long head_dim = o->embd / o->heads;
    gguf_set_val_str(g, "general.architecture", "llama");
    gguf_set_val_str(g, "general.name", o->name);
    if (o->license)
        gguf_set_val_str(g, "general.license", o->license);
    gguf_set_val_u32(g, "general.file_type", wt == GGML_TYPE_F16 ? 1 : 0);
    gguf_set_val_u32(g, "llama.vocab_size", (uint32_t)n_vocab);
    gguf_set_val_u32(g, "llama.context_length", (uint32_t)o->ctx);
    gguf_set_val_u32(g, "llama.embedding_length", (uint32_t)o->embd);
    gguf_set_val_u32(g, "llama.block_count", (uint32_t)o->layers);
    gguf_set_val_u32(g, "llama.feed_forward_length", (uint32_t)o->ff);
    gguf_set_val_u32(g, "llama.rope.dimension_count", (uint32_t)head_dim);
    gguf_set_val_f32(g, "llama.rope.freq_base", 10000.0f);
    gguf_set_val_u32(g, "llama.attention.head_count", (uint32_t)o->heads);
    gguf_set_val_u32(g, "llama.attention.head_count_kv", (uint32_t)o->kv_heads);
    gguf_set_val_f32(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    if (o->chat_template != NULL)
        gguf_set_val_str(g, "tokenizer.chat_template", o->chat_template);
    static const char *const fim_keys[] = {"tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id",
                                           "tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.fim_rep_token_id",
                                           "tokenizer.ggml.fim_sep_token_id"};
    for (int i = 0; i < o->n_fim; i++) /* checked against n_vocab in main */
        gguf_set_val_u32(g, fim_keys[i], (uint32_t)o->fim[i]);

    int64_t e = o->embd, ekv = head_dim * o->kv_heads;
    add(tc, g, "token_embd.weight", wt, e, n_vocab);
    for (long l = 0; l < o->layers; l++) {
        char n[GGML_MAX_NAME];
#define BLK(suffix, ne0, ne1)                                          \
        do {                                                           \
            snprintf(n, sizeof n, "blk.%ld." suffix ".weight", l);     \
            add(tc, g, n, wt, ne0, ne1);                               \
        } while (0)
        BLK("attn_norm", e, 0);
        BLK("attn_q", e, e);
        BLK("attn_k", e, ekv);
        BLK("attn_v", e, ekv);
        BLK("attn_output", e, e);
        BLK("ffn_norm", e, 0);
        BLK("ffn_gate", e, o->ff);
        BLK("ffn_up", e, o->ff);
        BLK("ffn_down", o->ff, e);
#undef BLK
    }
    add(tc, g, "output_norm.weight", wt, e, 0);
    add(tc, g, "output.weight", wt, e, n_vocab);
    return 0;
}

/* Writes an F32 or F16 model to path. */
static int write_model(const struct opts *o, const struct gguf_context *vocab, int64_t n_vocab,
                       enum ggml_type wt, const char *path)
{
    size_t n_tensors = o->reranker ? ggufgen_bert_n_tensors(o->layers) : 3 + 9 * (size_t)o->layers + 1;
    struct ggml_init_params ip = {
        .mem_size = n_tensors * ggml_tensor_overhead() + 4096, .mem_buffer = NULL, .no_alloc = true};
    struct ggml_context *tc = ggml_init(ip);
    struct gguf_context *g = gguf_init_empty();
    float *fbuf = malloc(CHUNK * sizeof *fbuf);
    ggml_fp16_t *hbuf = malloc(CHUNK * sizeof *hbuf);
    FILE *f = NULL;
    int rc = 1;
    if (tc == NULL || g == NULL || fbuf == NULL || hbuf == NULL) {
        die("out of memory");
        goto out;
    }
    if (o->reranker) {
        struct bert_shape bs = {o->layers, o->embd, o->ff, o->heads, o->ctx, o->name};
        ggufgen_bert_meta(&bs, vocab, n_vocab, wt, g, tc);
    } else {
        build_meta(o, vocab, n_vocab, wt, g, tc);
    }
    f = fopen(path, "wb");
    if (f == NULL) {
        die("cannot create '%s': %s", path, strerror(errno));
        goto out;
    }
    if (!gguf_write_to_file_ptr(g, f, true)) {
        die("cannot write the metadata of '%s'", path);
        goto out;
    }
    size_t align = gguf_get_alignment(g);
    for (int64_t i = 0; i < gguf_get_n_tensors(g); i++) {
        struct ggml_tensor *t = ggml_get_tensor(tc, gguf_get_tensor_name(g, i));
        if (write_tensor(f, t, o->seed, (uint64_t)i, align, o->reranker ? BERT_WEIGHT_SCALE : 1.0f, fbuf,
                         hbuf) != 0) {
            die("cannot write '%s': %s", path, strerror(errno));
            goto out;
        }
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        die("cannot write '%s': %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (f != NULL && fclose(f) != 0 && rc == 0)
        rc = die("cannot close '%s': %s", path, strerror(errno));
    free(hbuf);
    free(fbuf);
    if (g != NULL)
        gguf_free(g);
    if (tc != NULL)
        ggml_free(tc);
    return rc;
}

static void quiet_log(enum ggml_log_level level, const char *text, void *ud)
{
    if (level == GGML_LOG_LEVEL_ERROR)
        fputs(text, stderr);
}

static int quantize(const struct opts *o, const char *src, const char *dst)
{
    llama_backend_init();
    struct llama_model_quantize_params qp = llama_model_quantize_default_params();
    qp.nthread = o->threads;
    qp.ftype = o->type == W_Q8_0 ? LLAMA_FTYPE_MOSTLY_Q8_0 : LLAMA_FTYPE_MOSTLY_Q4_0;
    qp.pure = true; /* every 2-D tensor, output and embeddings too, in the asked type */
    uint32_t r = llama_model_quantize(src, dst, &qp);
    llama_backend_free();
    return r == 0 ? 0 : die("llama_model_quantize failed on '%s'", src);
}

/* The tensor to plant in: by name, else the first with more than one row. */
static int64_t plant_target(const struct opts *o, const struct gguf_context *g)
{
    for (int64_t i = 0; i < gguf_get_n_tensors(g); i++) {
        const char *name = gguf_get_tensor_name(g, i);
        if (o->plant_tensor != NULL ? strcmp(name, o->plant_tensor) == 0
                                    : gguf_get_tensor_ne(g, i)[1] > 1)
            return i;
    }
    return -1;
}

/* Writes the NaN or Inf of --plant into the finished file at path: at the
 * element for F32 and F16, at the fp16 scale that starts the element's block
 * for Q8_0 and Q4_0. */
static int plant(const struct opts *o, const char *path)
{
    struct gguf_init_params p = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *g = gguf_init_from_file(path, p);
    if (g == NULL)
        return die("cannot read back '%s'", path);
    int64_t id = plant_target(o, g);
    int rc = 1;
    if (id < 0) {
        die("no tensor '%s' to plant in", o->plant_tensor != NULL ? o->plant_tensor : "(2-D)");
        goto out;
    }
    enum ggml_type t = gguf_get_tensor_type(g, id);
    const int64_t *ne = gguf_get_tensor_ne(g, id);
    uint64_t n = (uint64_t)(ne[0] * ne[1] * ne[2] * ne[3]);
    if (o->plant_at >= n) {
        die("--plant-at %" PRIu64 " is past the %" PRIu64 " elements of '%s'", o->plant_at, n,
            gguf_get_tensor_name(g, id));
        goto out;
    }
    bool nan = strcmp(o->plant, "nan") == 0;
    uint32_t f32 = nan ? 0x7fc00000u : 0x7f800000u;
    uint16_t f16 = nan ? 0x7e00 : 0x7c00;
    const void *bytes = &f16;
    size_t len = sizeof f16;
    if (t == GGML_TYPE_F32) {
        bytes = &f32;
        len = sizeof f32;
    } else if (t != GGML_TYPE_F16 && t != GGML_TYPE_Q8_0 && t != GGML_TYPE_Q4_0) {
        die("cannot plant in a %s tensor", ggml_type_name(t));
        goto out;
    }
    uint64_t at = gguf_get_data_offset(g) + gguf_get_tensor_offset(g, id) +
                  o->plant_at / (uint64_t)ggml_blck_size(t) * ggml_type_size(t);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || pwrite(fd, bytes, len, (off_t)at) != (ssize_t)len || fsync(fd) != 0) {
        die("cannot plant in '%s': %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out;
    }
    close(fd);
    fprintf(stderr, "airlock-ggufgen: planted %s in '%s' (%s) at file offset %" PRIu64 "\n",
            o->plant, gguf_get_tensor_name(g, id), ggml_type_name(t), at);
    rc = 0;
out:
    gguf_free(g);
    return rc;
}

/* --fim PRE,SUF,MID[,REP,SEP]: three or five token ids. */
static bool parse_fim(const char *arg, struct opts *o)
{
    o->n_fim = 0;
    for (const char *p = arg;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno != 0 || end == p || v < 0 || v > INT32_MAX || o->n_fim == 5)
            return false;
        o->fim[o->n_fim++] = v;
        if (*end == '\0')
            break;
        if (*end != ',')
            return false;
        p = end + 1;
    }
    return o->n_fim == 3 || o->n_fim == 5;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        {"out", 1, 0, 'o'},    {"type", 1, 0, 't'},     {"params", 1, 0, 'P'},
        {"layers", 1, 0, 'l'}, {"embd", 1, 0, 'e'},     {"ff", 1, 0, 'f'},
        {"heads", 1, 0, 'H'},  {"kv-heads", 1, 0, 'k'}, {"ctx", 1, 0, 'c'},
        {"seed", 1, 0, 's'},   {"name", 1, 0, 'n'},     {"chat-template", 1, 0, 'T'},
        {"vocab", 1, 0, 'v'},  {"threads", 1, 0, 'j'},  {"verbose", 0, 0, 'V'},
        {"help", 0, 0, 'h'},   {"plant", 1, 0, 'x'},   {"plant-tensor", 1, 0, 'X'},
        {"plant-at", 1, 0, 'A'}, {"license", 1, 0, 'L'},
        {"chat-template-file", 1, 0, 'F'}, {"lora-for", 1, 0, 'B'},
        {"lora-targets", 1, 0, 'G'}, {"lora-rank", 1, 0, 'R'}, {"lora-alpha", 1, 0, 'Y'},
        {"lora-strength", 1, 0, 'S'}, {"reranker", 0, 0, 'K'}, {"fim", 1, 0, 'M'}, {0, 0, 0, 0}};
    long th = 2;
    int c, li = -1;
    while ((c = getopt_long(argc, argv, "o:t:h", lo, &li)) != -1) {
        bool ok = true;
        char *end;
        switch (c) {
        case 'o': o->out = optarg; break;
        case 't':
            if (strcmp(optarg, "f32") == 0) o->type = W_F32;
            else if (strcmp(optarg, "f16") == 0) o->type = W_F16;
            else if (strcmp(optarg, "q8_0") == 0) o->type = W_Q8_0;
            else if (strcmp(optarg, "q4_0") == 0) o->type = W_Q4_0;
            else ok = false;
            break;
        case 'P': ok = parse_count(optarg, &o->params); break;
        case 'l': ok = parse_long(optarg, 1, 1000, &o->layers); break;
        case 'e': ok = parse_long(optarg, 2, 65536, &o->embd); break;
        case 'f': ok = parse_long(optarg, 1, 1 << 20, &o->ff); break;
        case 'H': ok = parse_long(optarg, 1, 4096, &o->heads); break;
        case 'k': ok = parse_long(optarg, 1, 4096, &o->kv_heads); break;
        case 'c': ok = parse_long(optarg, 1, 1 << 24, &o->ctx); break;
        case 's':
            errno = 0;
            o->seed = strtoull(optarg, &end, 0);
            ok = errno == 0 && end != optarg && *end == '\0' && optarg[0] != '-';
            break;
        case 'n': o->name = optarg; break;
        case 'T': o->chat_template = optarg; break;
        case 'F': ok = (o->chat_template = read_text(optarg)) != NULL; break;
        case 'L': o->license = optarg; break;
        case 'v': o->vocab = optarg; break;
        case 'j': ok = parse_long(optarg, 1, 256, &th); break;
        case 'V': o->verbose = true; break;
        case 'K': o->reranker = true; break;
        case 'x':
            o->plant = optarg;
            ok = strcmp(optarg, "nan") == 0 || strcmp(optarg, "inf") == 0;
            break;
        case 'X': o->plant_tensor = optarg; break;
        case 'A':
            errno = 0;
            o->plant_at = strtoull(optarg, &end, 10);
            ok = errno == 0 && end != optarg && *end == '\0' && optarg[0] != '-';
            break;
        case 'M': ok = parse_fim(optarg, o); break;
        case 'B': o->lora.base = optarg; break;
        case 'G': o->lora.targets = optarg; break;
        case 'R': ok = parse_long(optarg, 1, 4096, &o->lora.rank); break;
        case 'Y':
        case 'S': {
            errno = 0;
            double v = strtod(optarg, &end);
            ok = errno == 0 && end != optarg && *end == '\0' && v >= 0 && v < 1e6 && (c == 'S' || v > 0);
            if (c == 'Y')
                o->lora.alpha = v;
            else
                o->lora.strength = v;
            break;
        }
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return 2;
        }
        if (!ok) {
            die("invalid value '%s' for --%s", optarg, li >= 0 ? lo[li].name : "type");
            return 2;
        }
        li = -1;
    }
    o->threads = (int)th;
    if (optind < argc) {
        die("unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (o->out == NULL) {
        usage(stderr);
        return 2;
    }
    return 0;
}

/* Completes and checks the shape; 0 when usable. */
static int finish_shape(struct opts *o, int64_t n_vocab)
{
    if (o->params > 0)
        shape_for_params(o, (uint64_t)n_vocab);
    if (o->embd <= 0) o->embd = 64;
    if (o->layers <= 0) o->layers = 2;
    if (o->heads <= 0) o->heads = default_heads(o->embd);
    if (o->kv_heads <= 0) o->kv_heads = o->heads;
    if (o->ff <= 0) o->ff = default_ff(o->embd);
    if (o->ctx <= 0) o->ctx = 512;
    if (o->embd % o->heads != 0 || (o->embd / o->heads) % 2 != 0)
        return die("--embd %ld must be a multiple of --heads %ld with an even head size", o->embd, o->heads);
    if (o->heads % o->kv_heads != 0)
        return die("--kv-heads %ld must divide --heads %ld", o->kv_heads, o->heads);
    if (o->reranker && (o->type != W_F32 && o->type != W_F16))
        return die("--reranker writes f32 or f16 only");
    if (o->reranker && o->kv_heads != o->heads)
        return die("--reranker has no --kv-heads (BERT's keys and values have every head)");
    if (o->type >= W_Q8_0 && (o->embd % 32 != 0 || o->ff % 32 != 0))
        return die("quantized types need --embd and --ff multiples of 32");
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.vocab = NULL, .name = "airlock-ggufgen", .seed = 1,
                     .lora = {.rank = 4, .strength = 1.0}};
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    if (!o.verbose)
        llama_log_set(quiet_log, NULL); /* also ggml's */
    if (o.lora.base != NULL) {
        char lpart[4096];
        if ((size_t)snprintf(lpart, sizeof lpart, "%s.part", o.out) >= sizeof lpart)
            return die("output path too long");
        o.lora.seed = o.seed;
        o.lora.shown = o.out;
        if (o.name != NULL && strcmp(o.name, "airlock-ggufgen") != 0)
            o.lora.name = o.name;
        if (o.lora.alpha <= 0)
            o.lora.alpha = (double)o.lora.rank;
        rc = ggufgen_lora(&o.lora, lpart);
        if (rc == 0 && rename(lpart, o.out) != 0)
            rc = die("cannot rename '%s' to '%s': %s", lpart, o.out, strerror(errno));
        if (rc != 0)
            unlink(lpart);
        return rc;
    }

    if (o.vocab == NULL)
        o.vocab = o.reranker ? BERT_VOCAB : DEFAULT_VOCAB;
    struct gguf_init_params vp = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *vocab = gguf_init_from_file(o.vocab, vp);
    if (vocab == NULL)
        return die("cannot read vocabulary '%s'", o.vocab);
    int64_t tok = gguf_find_key(vocab, "tokenizer.ggml.tokens");
    if (tok < 0 || gguf_get_kv_type(vocab, tok) != GGUF_TYPE_ARRAY) {
        gguf_free(vocab);
        return die("'%s' has no tokenizer.ggml.tokens", o.vocab);
    }
    int64_t n_vocab = (int64_t)gguf_get_arr_n(vocab, tok);
    if (finish_shape(&o, n_vocab) != 0) {
        gguf_free(vocab);
        return 2;
    }
    for (int i = 0; i < o.n_fim; i++)
        if (o.fim[i] >= n_vocab) {
            gguf_free(vocab);
            return die("--fim token %ld is not in the vocabulary of %" PRId64 " tokens", o.fim[i], n_vocab);
        }
    if (o.reranker)
        fprintf(stderr, "airlock-ggufgen: %s: BERT reranker, vocab %" PRId64 ", layers %ld, embd %ld, ff %ld, "
                "heads %ld, ctx %ld\n", o.out, n_vocab, o.layers, o.embd, o.ff, o.heads, o.ctx);
    else
        fprintf(stderr,
                "airlock-ggufgen: %s: vocab %" PRId64 ", layers %ld, embd %ld, ff %ld, heads %ld/%ld, "
                "ctx %ld, %" PRIu64 " parameters\n",
                o.out, n_vocab, o.layers, o.embd, o.ff, o.heads, o.kv_heads, o.ctx,
                total_params(&o, (uint64_t)n_vocab));

    char part[4096], tmp[4096];
    if ((size_t)snprintf(part, sizeof part, "%s.part", o.out) >= sizeof part ||
        (size_t)snprintf(tmp, sizeof tmp, "%s.f16.tmp", o.out) >= sizeof tmp) {
        gguf_free(vocab);
        return die("output path too long");
    }
    bool quant = o.type == W_Q8_0 || o.type == W_Q4_0;
    enum ggml_type wt = o.type == W_F32 ? GGML_TYPE_F32 : GGML_TYPE_F16;
    rc = write_model(&o, vocab, n_vocab, wt, quant ? tmp : part);
    gguf_free(vocab);
    if (rc == 0 && quant) {
        rc = quantize(&o, tmp, part);
        unlink(tmp);
    }
    if (rc == 0 && o.plant != NULL)
        rc = plant(&o, part);
    if (rc == 0 && rename(part, o.out) != 0)
        rc = die("cannot rename '%s' to '%s': %s", part, o.out, strerror(errno));
    if (rc != 0) {
        unlink(part);
        unlink(tmp);
    }
    return rc;
}
