/*
 * finetune.h: full fine-tuning of a model on a text, on the CPU, through
 * llama.cpp's training API (llama_opt_init, llama_opt_epoch: AdamW over
 * every weight tensor llama.cpp marks trainable). Part of the engine, which
 * alone includes llama.h; this header names no llama type.
 *
 * The pinned llama.cpp trains the tensors of a model only: its adapters
 * live outside the model and llama_opt_init cannot mark them trainable, so
 * there is no LoRA training here; the whole model is trained (fit for small
 * models such as stories260K) and the result is a complete GGUF.
 *
 * The model is loaded as al_engine_model_load loads one: the blob is opened
 * once, hashed through that descriptor, compared with the digest the caller
 * expects and the same FILE handed to llama.cpp (in memory, not mapped,
 * since training writes the weights).
 *
 * The text is tokenized whole (BOS first, as the model asks) and split: the
 * last tenth of the tokens (at least one window of n_ctx + 1) is held out
 * for validation and never trained on; the rest is cut into windows of
 * n_ctx tokens (labels: the same tokens shifted by one). Each epoch trains
 * on every training window once, in an order drawn from (seed, epoch), then
 * measures the loss on the held-out windows. Before the first epoch and
 * after the last, the loss on both parts is measured without training.
 * Losses are llama.cpp's cross-entropy per token (natural logarithm).
 *
 * The optimizer's moments (AdamW's m and v) are held inside llama.cpp's
 * context and no API reads or writes them: a run resumed from a checkpoint
 * starts the optimizer afresh (the weights are the checkpoint's).
 */
#ifndef AL_ENGINE_FINETUNE_H
#define AL_ENGINE_FINETUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct al_engine_ft; /* opaque: a model being trained, during a callback */

/* Where training is, for a progress bar: called on the calling thread after
 * every window (train or validation) that llama.cpp evaluated. */
struct al_engine_ft_progress {
    bool train;           /* false: measuring the held-out loss */
    int epoch;            /* 1-based */
    int epochs;
    int64_t step, steps;  /* windows done and to do in this pass */
    double loss;          /* mean loss of this pass so far */
    double tokens_per_s;  /* of this pass */
    double eta_s;         /* time left for the whole run, estimated; < 0: unknown */
};
typedef void al_engine_ft_progress_fn(void *ud, const struct al_engine_ft_progress *p);

/* Called after each epoch with its mean training loss and held-out loss.
 * The callback may save the weights (al_engine_ft_save) as a checkpoint.
 * An error stops the training; al_engine_finetune returns it. */
typedef enum al_rc al_engine_ft_epoch_fn(void *ud, struct al_engine_ft *ft, int epoch, double train_loss,
                                         double val_loss, struct al_err *err);

struct al_engine_ft_params {
    const char *model_path;   /* the GGUF blob to start from: a base, or a checkpoint */
    const char *model_digest; /* its expected "sha256:<64 hex>" */
    const char *text;         /* the training text, text_len bytes (borrowed) */
    size_t text_len;
    int n_ctx;          /* tokens per window: a multiple of 256 (llama.cpp pads contexts to 256) */
    int epochs;         /* 1..AL_LIMIT_FINETUNE_EPOCHS */
    int start_epoch;    /* epochs already done (a resumed run): training starts at start_epoch + 1 */
    float lr;           /* AdamW's learning rate, constant */
    uint32_t seed;      /* the order of the training windows in each epoch */
    int threads;        /* <= 0: 2 */
    al_engine_ft_progress_fn *progress; /* NULL: none */
    al_engine_ft_epoch_fn *on_epoch;    /* NULL: none */
    void *ud;
};

struct al_engine_ft_result {
    int64_t n_tokens;         /* of the whole text */
    int64_t n_train_windows;
    int64_t n_val_windows;
    int64_t n_val_tokens;     /* held out */
    double train_before, val_before;   /* measured before the first epoch trained */
    double train_after, val_after;     /* and after the last */
};

/* Trains a copy of model_path's model as p says and writes the result to
 * out_path (created or truncated; the caller removes it on error). res gets
 * the sizes and the losses. Errors: AL_ERR_USAGE (bad parameters),
 * AL_ERR_INVALID (a text that tokenizes to nothing, or too short for one
 * training and one held-out window), AL_ERR_LIMIT (over AL_LIMIT_FINETUNE_*),
 * AL_ERR_VERIFY (the blob does not match its digest), AL_ERR_IO,
 * AL_ERR_CORRUPT (llama.cpp refuses the file), AL_ERR_INTERNAL, or what
 * on_epoch returned. Blocks for the whole run. One call at a time per
 * process (llama.cpp's epoch callback carries no user data: the run in
 * progress is found through a thread-local). */
enum al_rc al_engine_finetune(const struct al_engine_ft_params *p, const char *out_path,
                              struct al_engine_ft_result *res, struct al_err *err);

/* Writes the current weights as a GGUF to path (llama_model_save_to_file),
 * during on_epoch. AL_ERR_IO when the file is not there afterwards. */
enum al_rc al_engine_ft_save(struct al_engine_ft *ft, const char *path, struct al_err *err);

#endif
