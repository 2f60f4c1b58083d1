/* lora.h: the LoRA adapter writer of airlock-ggufgen (lora.c). */
#ifndef AL_GGUFGEN_LORA_H
#define AL_GGUFGEN_LORA_H

#include <stdint.h>

struct lora_opts {
    const char *base;     /* the base model GGUF */
    const char *targets;  /* comma-separated block tensors ("attn_q,attn_v"); NULL: those */
    const char *name;     /* general.name; NULL: "airlock-ggufgen-lora" */
    const char *shown;    /* the output's name in messages */
    long rank;
    double alpha, strength;
    uint64_t seed;
};

/* Writes the adapter to out_path (the caller renames it into place).
 * 0 on success, 1 on a failure (said on stderr), 2 on a bad option. */
int ggufgen_lora(const struct lora_opts *o, const char *out_path);

#endif
