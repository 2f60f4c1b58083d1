/* model_ref.h: REF to a weight file and its digest, for validate and bench. */
#ifndef AL_CLI_MODEL_REF_H
#define AL_CLI_MODEL_REF_H

#include <stdbool.h>
#include <stddef.h>

#include "core/hash.h"
#include "core/limits.h"

struct al_engine_model;

struct al_model_ref {
    char path[AL_LIMIT_PATH];
    char digest[AL_DIGEST_SIZE];
    int n_ctx_train;          /* from the GGUF header; 0 when unknown */
    /* A LoRA adapter version: path and digest above are its base's weights,
     * these the adapter's blob, applied at lora_scale (1 unless the caller
     * sets another before al_cli_model_load). */
    bool lora;
    char lora_path[AL_LIMIT_PATH];
    char lora_digest[AL_DIGEST_SIZE];
    float lora_scale;
    int gpu_layers;           /* layers offloaded to a GPU (--gpu-layers); 0 by default, as serve */
};

/* REF is a store reference (name, name:tag, name@sha256:...) or, on a build
 * host without a store, the path of a GGUF file (hashed here). A reference
 * to an adapter version gives its base and the adapter (al_repo_resolve_adapted). Prints the
 * error and returns the exit status on failure, 0 on success. */
int al_cli_model_ref(const char *ref, struct al_model_ref *out);

/* Loads the model with a context of min(n_ctx, what the model was trained
 * for) (al_suite_model_load); prints the error and returns the exit status
 * on failure. */
int al_cli_model_load(const struct al_model_ref *ref, int threads, int n_seq, int n_ctx,
                      struct al_engine_model **out);

struct al_suite;
struct al_golden_run;

/* The suite stored with version REF (al_suite_load_stored, which reads it
 * through the repo with digests checked). rec may be NULL (bench needs no
 * recording); otherwise a version without bench/recording.json is an error.
 * Returns 0 and sets *s (and *rec); a version without bench/suite.json gives
 * AL_EXIT_NOT_FOUND, printing the error unless quiet; other failures print
 * and return the exit status. */
int al_cli_version_suite(const char *ref, bool quiet, struct al_suite **s, struct al_golden_run **rec);

/* Records the suite's golden prompts on m (the build host's side), writes
 * dir/recording.json and prints a summary naming what. Returns an exit status. */
int al_cli_record_golden(struct al_engine_model *m, const struct al_suite *s, int threads, const char *what,
                         const char *dir);

#endif
