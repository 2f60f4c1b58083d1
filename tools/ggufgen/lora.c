/*
 * lora.c: airlock-ggufgen --lora-for BASE: a LoRA adapter GGUF for a given
 * base model, in the layout llama.cpp's llama-adapter.cpp loads.
 *
 * For each chosen weight W of the base (ne = [n_in, n_out]) the adapter holds
 * W.lora_a with ne = [n_in, rank] and W.lora_b with ne = [rank, n_out], both
 * F32; llama.cpp adds scale * alpha / rank * B(A x) to W x. The metadata is
 * what llama-adapter.cpp checks: general.type "adapter", general.architecture
 * the base's, adapter.type "lora", adapter.lora.alpha. Seeded: same base,
 * options and seed, same bytes. --lora-strength sets the standard deviation
 * of the added weights (alpha / rank * B A) to strength * 0.02, the deviation
 * of the generated models' weights, so 1 is a change as large as the weights.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ggml.h>
#include <gguf.h>

#include "lora.h"

#define MAX_TARGETS 16

/* splitmix64 and Box-Muller, as for the models (another stream per tensor). */
static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void fill_normal(float *out, int64_t n, double sd, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull) ^ 0x4c6f5241ull; /* "LoRA" */
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = ((double)(splitmix(&x) >> 11) + 1.0) * 0x1.0p-53;
        double u2 = (double)(splitmix(&x) >> 11) * 0x1.0p-53;
        double rad = sqrt(-2.0 * log(u1)) * sd;
        out[i] = (float)(rad * cos(6.283185307179586 * u2));
        if (i + 1 < n)
            out[i + 1] = (float)(rad * sin(6.283185307179586 * u2));
    }
}

/* Whether a base tensor is one of the targets: "blk.<n>.<target>.weight". */
static bool targeted(const char *name, char targets[][32], int n_targets)
{
    if (strncmp(name, "blk.", 4) != 0)
        return false;
    const char *p = strchr(name + 4, '.');
    if (p == NULL)
        return false;
    p++;
    for (int i = 0; i < n_targets; i++) {
        size_t k = strlen(targets[i]);
        if (strncmp(p, targets[i], k) == 0 && strcmp(p + k, ".weight") == 0)
            return true;
    }
    return false;
}

static int parse_targets(const char *list, char targets[][32], int *n)
{
    *n = 0;
    const char *p = list;
    while (*p) {
        size_t k = strcspn(p, ",");
        if (k == 0 || k >= 32 || *n >= MAX_TARGETS)
            return -1;
        memcpy(targets[*n], p, k);
        targets[(*n)++][k] = '\0';
        p += k;
        if (*p == ',')
            p++;
    }
    return *n > 0 ? 0 : -1;
}

int ggufgen_lora(const struct lora_opts *o, const char *out_path)
{
    char targets[MAX_TARGETS][32];
    int n_targets = 0;
    if (parse_targets(o->targets ? o->targets : "attn_q,attn_v", targets, &n_targets) != 0) {
        fprintf(stderr, "airlock-ggufgen: invalid --lora-targets '%s'\n", o->targets);
        return 2;
    }
    struct gguf_init_params bp = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *base = gguf_init_from_file(o->base, bp);
    if (base == NULL) {
        fprintf(stderr, "airlock-ggufgen: cannot read base model '%s'\n", o->base);
        return 1;
    }
    int rc = 1;
    struct ggml_context *tc = NULL;
    struct gguf_context *g = NULL;
    FILE *f = NULL;
    int64_t arch_id = gguf_find_key(base, "general.architecture");
    const char *arch = arch_id >= 0 && gguf_get_kv_type(base, arch_id) == GGUF_TYPE_STRING
                           ? gguf_get_val_str(base, arch_id) : "llama";

    /* First pass: which tensors, and how much memory their pairs take. */
    size_t n_pairs = 0, bytes = 0;
    for (int64_t i = 0; i < gguf_get_n_tensors(base); i++) {
        const char *name = gguf_get_tensor_name(base, i);
        const int64_t *ne = gguf_get_tensor_ne(base, i);
        if (!targeted(name, targets, n_targets) || ne[1] <= 1)
            continue;
        n_pairs++;
        bytes += (size_t)(ne[0] + ne[1]) * (size_t)o->rank * sizeof(float) + 2 * GGML_MEM_ALIGN;
    }
    if (n_pairs == 0) {
        fprintf(stderr, "airlock-ggufgen: '%s' has no 2-D tensor named blk.N.{%s}.weight\n", o->base,
                o->targets ? o->targets : "attn_q,attn_v");
        goto out;
    }
    struct ggml_init_params ip = {.mem_size = 2 * n_pairs * ggml_tensor_overhead() + bytes + 4096,
                                  .mem_buffer = NULL, .no_alloc = false};
    tc = ggml_init(ip);
    g = gguf_init_empty();
    if (tc == NULL || g == NULL) {
        fprintf(stderr, "airlock-ggufgen: out of memory\n");
        goto out;
    }
    gguf_set_val_str(g, "general.architecture", arch);
    gguf_set_val_str(g, "general.type", "adapter");
    gguf_set_val_str(g, "general.name", o->name ? o->name : "airlock-ggufgen-lora");
    gguf_set_val_str(g, "adapter.type", "lora");
    gguf_set_val_f32(g, "adapter.lora.alpha", (float)o->alpha);
    /* std(alpha / r * sum_k b a) = alpha / r * sd^2 * sqrt(r) = strength * 0.02 */
    double sd = sqrt(o->strength * 0.02 * (double)o->rank / (o->alpha * sqrt((double)o->rank)));
    uint64_t stream = 0;
    for (int64_t i = 0; i < gguf_get_n_tensors(base); i++) {
        const char *name = gguf_get_tensor_name(base, i);
        const int64_t *ne = gguf_get_tensor_ne(base, i);
        if (!targeted(name, targets, n_targets) || ne[1] <= 1)
            continue;
        char an[GGML_MAX_NAME], bn[GGML_MAX_NAME];
        if ((size_t)snprintf(an, sizeof an, "%s.lora_a", name) >= sizeof an ||
            (size_t)snprintf(bn, sizeof bn, "%s.lora_b", name) >= sizeof bn) {
            fprintf(stderr, "airlock-ggufgen: tensor name '%s' too long for .lora_a\n", name);
            goto out;
        }
        struct ggml_tensor *a = ggml_new_tensor_2d(tc, GGML_TYPE_F32, ne[0], o->rank);
        struct ggml_tensor *b = ggml_new_tensor_2d(tc, GGML_TYPE_F32, o->rank, ne[1]);
        ggml_set_name(a, an);
        ggml_set_name(b, bn);
        fill_normal(a->data, ggml_nelements(a), sd, o->seed, ++stream);
        fill_normal(b->data, ggml_nelements(b), sd, o->seed, ++stream);
        gguf_add_tensor(g, a);
        gguf_add_tensor(g, b);
    }
    f = fopen(out_path, "wb");
    if (f == NULL) {
        fprintf(stderr, "airlock-ggufgen: cannot create '%s': %s\n", out_path, strerror(errno));
        goto out;
    }
    if (!gguf_write_to_file_ptr(g, f, false) || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fprintf(stderr, "airlock-ggufgen: cannot write '%s'\n", out_path);
        goto out;
    }
    fprintf(stderr, "airlock-ggufgen: %s: LoRA adapter for '%s' (%s): %zu tensor pairs, rank %ld, alpha %g, "
            "strength %g\n", o->shown ? o->shown : out_path, o->base, arch, n_pairs, o->rank, o->alpha, o->strength);
    rc = 0;
out:
    if (f != NULL && fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "airlock-ggufgen: cannot close '%s': %s\n", out_path, strerror(errno));
        rc = 1;
    }
    if (g != NULL)
        gguf_free(g);
    if (tc != NULL)
        ggml_free(tc);
    gguf_free(base);
    return rc;
}
