/*
 * bert.c: airlock-ggufgen --reranker: a BERT cross-encoder with a
 * classification head, in the layout llama.cpp's src/models/bert.cpp loads
 * and its rank pooling (llama-graph.cpp, LLAMA_POOLING_TYPE_RANK) runs: the
 * first token's output goes through cls (dense, tanh) and cls.output (one
 * label), and that one number is the pair's score.
 *
 * The weights are ggufgen's seeded Normal(0, 0.02), norms ones (ggufgen.c
 * writes them by name), so a file is the same bytes for the same options.
 * Only the layout is here; ggufgen.c writes the data.
 */
#include "bert.h"

#include <stdio.h>
#include <string.h>

/* token_embd, token_types, position_embd, token_embd_norm (2); per block
 * q, k, v, output, up, down and two norms, each with its bias (16); cls (2)
 * and cls.output (2). */
size_t ggufgen_bert_n_tensors(long layers)
{
    return 5 + 16 * (size_t)layers + 4;
}

static void add(struct ggml_context *tc, struct gguf_context *g, const char *name, enum ggml_type type,
                int64_t ne0, int64_t ne1)
{
    struct ggml_tensor *t = ne1 > 0 ? ggml_new_tensor_2d(tc, type, ne0, ne1)
                                    : ggml_new_tensor_1d(tc, GGML_TYPE_F32, ne0);
    ggml_set_name(t, name);
    gguf_add_tensor(g, t);
}

void ggufgen_bert_meta(const struct bert_shape *s, const struct gguf_context *vocab, int64_t n_vocab,
                       enum ggml_type wt, struct gguf_context *g, struct ggml_context *tc)
{
    gguf_set_kv(g, vocab);
    for (int64_t i = gguf_get_n_kv(g) - 1; i >= 0; i--) {
        const char *key = gguf_get_key(g, i);
        if (strncmp(key, "tokenizer.", 10) != 0)
            gguf_remove_key(g, key);
    }
    /* bert.cpp refuses a model without token types; the BERT vocabularies
     * say 2, others say nothing */
    if (gguf_find_key(g, "tokenizer.ggml.token_type_count") < 0)
        gguf_set_val_u32(g, "tokenizer.ggml.token_type_count", 2);
    gguf_set_val_str(g, "general.architecture", "bert");
    gguf_set_val_str(g, "general.name", s->name);
    gguf_set_val_u32(g, "general.file_type", wt == GGML_TYPE_F16 ? 1 : 0);
    gguf_set_val_u32(g, "bert.context_length", (uint32_t)s->ctx);
    gguf_set_val_u32(g, "bert.embedding_length", (uint32_t)s->embd);
    gguf_set_val_u32(g, "bert.block_count", (uint32_t)s->layers);
    gguf_set_val_u32(g, "bert.feed_forward_length", (uint32_t)s->ff);
    gguf_set_val_u32(g, "bert.attention.head_count", (uint32_t)s->heads);
    gguf_set_val_f32(g, "bert.attention.layer_norm_epsilon", 1e-12f);
    gguf_set_val_bool(g, "bert.attention.causal", false);
    gguf_set_val_u32(g, "bert.pooling_type", 4); /* LLAMA_POOLING_TYPE_RANK */
    const char *labels[] = {"relevance"};
    gguf_set_arr_str(g, "bert.classifier.output_labels", labels, 1);

    int64_t e = s->embd, types = 2;
    add(tc, g, "token_embd.weight", wt, e, n_vocab);
    add(tc, g, "token_types.weight", wt, e, types);
    add(tc, g, "position_embd.weight", wt, e, s->ctx);
    add(tc, g, "token_embd_norm.weight", wt, e, 0);
    add(tc, g, "token_embd_norm.bias", wt, e, 0);
    for (long l = 0; l < s->layers; l++) {
        char n[GGML_MAX_NAME];
#define BLK(suffix, ne0, ne1)                                  \
        do {                                                   \
            snprintf(n, sizeof n, "blk.%ld." suffix, l);       \
            add(tc, g, n, wt, ne0, ne1);                       \
        } while (0)
        BLK("attn_q.weight", e, e);
        BLK("attn_q.bias", e, 0);
        BLK("attn_k.weight", e, e);
        BLK("attn_k.bias", e, 0);
        BLK("attn_v.weight", e, e);
        BLK("attn_v.bias", e, 0);
        BLK("attn_output.weight", e, e);
        BLK("attn_output.bias", e, 0);
        BLK("attn_output_norm.weight", e, 0);
        BLK("attn_output_norm.bias", e, 0);
        BLK("ffn_up.weight", e, s->ff);
        BLK("ffn_up.bias", s->ff, 0);
        BLK("ffn_down.weight", s->ff, e);
        BLK("ffn_down.bias", e, 0);
        BLK("layer_output_norm.weight", e, 0);
        BLK("layer_output_norm.bias", e, 0);
#undef BLK
    }
    add(tc, g, "cls.weight", wt, e, e);
    add(tc, g, "cls.bias", wt, e, 0);
    add(tc, g, "cls.output.weight", wt, e, 1);
    add(tc, g, "cls.output.bias", wt, 1, 0);
}
