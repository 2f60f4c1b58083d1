/* bert.h: the reranker writer of airlock-ggufgen (bert.c). */
#ifndef AL_GGUFGEN_BERT_H
#define AL_GGUFGEN_BERT_H

#include <stddef.h>
#include <stdint.h>

#include <ggml.h>
#include <gguf.h>

struct bert_shape {
    long layers, embd, ff, heads, ctx;
    const char *name;
};

/* The tensors a reranker of `layers` blocks has (for the tensor context). */
size_t ggufgen_bert_n_tensors(long layers);

/* Builds a BERT reranker's metadata and tensor table into g and tc: the
 * tokenizer.* keys of vocab, bert.* hyperparameters with pooling_type rank
 * (4), the tensors llama.cpp's bert.cpp loads, and the classification head
 * (cls, cls.output with one label) that rank pooling applies. */
void ggufgen_bert_meta(const struct bert_shape *s, const struct gguf_context *vocab, int64_t n_vocab,
                       enum ggml_type wt, struct gguf_context *g, struct ggml_context *tc);

#endif
