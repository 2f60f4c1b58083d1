/*
 * suite.h: the benchmark and validation suite that travels with a model
 * (the bundle's bench/ folder), golden recordings, and their comparison.
 *
 * A suite is a directory (format in docs/internals/suite.md):
 *   suite.json      format "airlock-suite/1": name, bench settings (prompts,
 *                   concurrency levels, prompt lengths, tokens to generate),
 *                   service-level targets, golden settings and tolerances
 *   golden.json     the golden prompts: id, prompt, max_tokens
 *   recording.json  written by al_golden_record(): per golden prompt, the
 *                   prompt's token ids, every generated token id with its
 *                   log-probability and the top-k alternatives, plus the
 *                   recording conditions (llama.cpp commit, CPU features,
 *                   model digest)
 *
 * Validation (al_golden_compare) runs the same prompts greedily and compares.
 * Where the conditions match (same llama.cpp commit, same CPU feature set,
 * same model digest) the output must be identical, token for token and
 * log-probability for log-probability. Elsewhere floating-point results may
 * differ a little, so each prompt gets a verdict: identical, float noise
 * (log-probabilities within tolerance, tokens equal or diverging only at a
 * near tie), or a failure that says what kind: the tokenizer differs, the
 * weights differ (small drift: another or a broken quantization), or another
 * model (unrelated distributions).
 *
 * Caps: suite files AL_LIMIT_SUITE_FILE, golden prompts AL_LIMIT_SUITE_PROMPTS,
 * tokens per golden prompt AL_LIMIT_GOLDEN_TOKENS.
 */
#ifndef AL_SUITE_SUITE_H
#define AL_SUITE_SUITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "engine/engine.h"

struct al_repo;
struct al_version;
struct al_golden_run;

#define AL_SUITE_FORMAT "airlock-suite/1"
#define AL_RECORDING_FORMAT "airlock-golden/1"
#define AL_SUITE_LEVELS_MAX 16

/* Service-level targets; a value <= 0 means no target. */
struct al_targets {
    double min_decode_tps;    /* per-stream decode tokens/s at concurrency 1 */
    double max_ttft_p95_ms;   /* time to first token, 95th percentile */
    double max_rss_mb;        /* peak resident memory of the process, MiB */
};

struct al_golden_prompt {
    char *id;
    char *prompt;
    int max_tokens;
};

struct al_suite {
    char *dir;
    char *name;
    /* bench */
    char **bench_prompts;     /* base texts that prompts of each length are cut from */
    size_t n_bench_prompts;
    int concurrency[AL_SUITE_LEVELS_MAX], n_concurrency;
    int prompt_lengths[AL_SUITE_LEVELS_MAX], n_prompt_lengths;
    int gen_tokens;           /* tokens generated per bench request */
    int requests;             /* requests per (concurrency, length) cell; 0: 4 x concurrency */
    struct al_targets targets;
    /* golden */
    struct al_golden_prompt *golden;
    size_t n_golden;
    int top_k;                /* log-probabilities kept per token, <= AL_LIMIT_TOP_PROBS */
    double tol_logprob;       /* largest harmless |difference| of a log-probability */
    double tol_relative;      /* ... and relative to the spread of the recorded top k (a flat
                                 distribution makes absolute differences small) */
    double tol_tie;           /* a divergence is harmless when the two tokens were this close */
    double min_overlap;       /* below this mean top-k overlap: another model */
};

/* A suite with the defaults (no golden prompts, no targets) for when none is
 * given: bench prompts, concurrency 1,2,4, prompt lengths 16,128,512, 64
 * tokens. *out must be NULL; release with al_suite_free. */
enum al_rc al_suite_default(struct al_suite **out, struct al_err *err);

/* Reads suite.json and golden.json (optional) from dir. Errors: AL_ERR_IO,
 * AL_ERR_NOT_FOUND (no suite.json), AL_ERR_INVALID (malformed, wrong format
 * version), AL_ERR_LIMIT. */
enum al_rc al_suite_load(const char *dir, struct al_suite **out, struct al_err *err);
void al_suite_free(struct al_suite *s);

/* The same from memory: suite.json's and golden.json's text (golden_text
 * NULL: none), as read from a version's bench/ files in the store. label
 * stands for the directory in messages and in s->dir ("stories:1.0 bench").
 * Same checks and errors as al_suite_load. */
enum al_rc al_suite_parse(const char *label, const char *suite_text, size_t suite_len, const char *golden_text,
                          size_t golden_len, struct al_suite **out, struct al_err *err);

/* The suite stored with version v of repo r: its bench/suite.json,
 * bench/golden.json (optional) and, when rec is not NULL,
 * bench/recording.json, each read through the repo with its digest checked.
 * ref is the name the user gave, for messages. *s (and *rec) must be NULL;
 * the caller's on success. AL_ERR_NOT_FOUND when the version has no
 * suite.json, or no recording.json while rec is wanted (the message says how
 * to pack one); the errors of al_repo_read_file, al_suite_parse and
 * al_golden_parse otherwise. */
enum al_rc al_suite_load_stored(struct al_repo *r, const struct al_version *v, const char *ref,
                                struct al_suite **s, struct al_golden_run **rec, struct al_err *err);

/* Loads the weight file at path (proven against digest) to run a suite or a
 * bench on this machine: the engine's defaults with threads, n_seq parallel
 * sequences (a queue of n_seq * 4 + 64) and a context of n_ctx tokens, or
 * n_ctx_train when that is known (> 0) and smaller (a model trained for less
 * gives nonsense past it), with the n_loras adapters of loras (may be NULL
 * with 0) applied and gpu_layers layers on a GPU device (0: the CPU alone;
 * negative: all, where the build and the machine have a device). *out must be NULL; the caller's on success, freed
 * with al_engine_model_free. Errors as al_engine_model_load. */
enum al_rc al_suite_model_load(const char *path, const char *digest, const struct al_engine_lora *loras, int n_loras,
                               int n_ctx_train, int threads, int gpu_layers, int n_seq,
                               int n_ctx, struct al_engine_model **out, struct al_err *err);

/* Writes a starter suite (suite.json, golden.json) into dir, which must not
 * hold a suite.json yet. */
enum al_rc al_suite_init_dir(const char *dir, struct al_err *err);

/* One service-level target checked against a measured figure. */
struct al_target_check {
    const char *name;         /* "min_decode_tps", "max_ttft_p95_ms", "max_rss_mb" */
    double target;
    double measured;          /* < 0: not measured */
    bool met;                 /* true when it could not be measured (the line says so) */
    char line[200];           /* "min_decode_tps 100: measured 85.2 tokens/s: MISSED" */
};

/* Checks every target that is set; out gets up to 3 entries; returns how
 * many. A measured value < 0 is "not measured": reported, not a miss (a
 * server's memory cannot be seen from its client). */
int al_targets_check(const struct al_targets *t, double decode_tps, double ttft_p95_ms, double rss_mb,
                     struct al_target_check out[3]);

/* ---- golden runs ---- */

struct al_golden_top {
    int32_t id;               /* -1 when the source gave text only */
    float logprob;
    char *text;
};

struct al_golden_token {
    int32_t id;               /* -1 when the source gave text only */
    float logprob;
    char *text;
    struct al_golden_top *top;
    int n_top;
};

struct al_golden_result {
    char *id;
    int32_t *prompt_ids;      /* NULL when the source does not say (a server) */
    int n_prompt_ids;
    struct al_golden_token *tok;
    int n_tok;
    char finish[16];          /* "stop", "length" */
    double ttft_ms, gen_ms;   /* < 0 when not measured */
};

/* The conditions of a run: what decides whether results must be identical. */
struct al_golden_cond {
    char source[256];         /* "engine" or the server's URL */
    char llama_commit[64];
    char system_info[1024];   /* llama.cpp's CPU feature list */
    char cpu_model[128];
    char cpu_flags[512];
    char model_digest[80];
    char model_desc[128];
    char airlock_version[32];
    int threads;
    char recorded_at[32];     /* ISO 8601 UTC */
    /* Where the layers ran: "CPU", or the GPU device ("Vulkan0 (llvmpipe
     * ...)"); empty in recordings made before it was kept (the CPU). */
    char device[192];
};

struct al_golden_run {
    struct al_golden_cond cond;
    int top_k;
    struct al_golden_result *res;
    size_t n_res;
    /* measured while running, for the targets; < 0 when not measured */
    double decode_tps, ttft_p95_ms, rss_peak_mb;
};

void al_golden_run_free(struct al_golden_run *run);

/* Runs every golden prompt of the suite greedily, one at a time, on a loaded
 * model, collecting token ids and top-k log-probabilities. threads is only
 * recorded. *out must be NULL; release with al_golden_run_free. */
enum al_rc al_golden_run_engine(struct al_engine_model *m, const struct al_suite *s, int threads,
                                struct al_golden_run **out, struct al_err *err);

/* The same against an OpenAI-compatible server: POST url/v1/completions
 * with temperature 0 and "logprobs": top_k, reading choices[0].logprobs in
 * either shape: {"content": [{id, token, logprob, top_logprobs: [...]}]}
 * (llama-server, airlock serve) or the legacy {tokens, token_logprobs,
 * top_logprobs: [{text: logprob}]} (ids then -1, compared as text). */
enum al_rc al_golden_run_server(const char *url, const struct al_suite *s, struct al_golden_run **out,
                                struct al_err *err);

/* Writes run as dir/recording.json (atomically). This is what
 * `airlock validate --record` and `airlock pack --record-golden` call. */
enum al_rc al_golden_save(const struct al_golden_run *run, const char *dir, struct al_err *err);

/* Reads dir/recording.json. AL_ERR_NOT_FOUND when there is none. */
enum al_rc al_golden_load(const char *dir, struct al_golden_run **out, struct al_err *err);
/* The same from memory (a recording read from the store); label names it. */
enum al_rc al_golden_parse(const char *label, const char *text, size_t len, struct al_golden_run **out,
                           struct al_err *err);

/* Records: runs the goldens on m and saves them into the suite's directory. */
enum al_rc al_golden_record(struct al_engine_model *m, const struct al_suite *s, int threads,
                            struct al_golden_run **out, struct al_err *err);

/* ---- comparison ---- */

enum al_verdict {
    AL_VERDICT_IDENTICAL,     /* same tokens, same log-probabilities */
    AL_VERDICT_FLOAT_NOISE,   /* within tolerance: harmless */
    AL_VERDICT_MISSING,       /* the prompt is not in the recording, or not in the run */
    AL_VERDICT_NONDETERMINISM,/* conditions match, yet the output differs */
    AL_VERDICT_TOKENIZER,     /* the prompt tokenizes differently */
    AL_VERDICT_WEIGHTS,       /* same model family of outputs, log-probabilities drift: quantization */
    AL_VERDICT_OTHER_MODEL,   /* unrelated distributions or a confident divergence */
};

/* "identical", "float-noise", ... */
const char *al_verdict_name(enum al_verdict v);
bool al_verdict_ok(enum al_verdict v);

struct al_prompt_cmp {
    const char *id;           /* borrowed from the run */
    enum al_verdict verdict;
    int n_compared;           /* positions compared (the common prefix and the divergence) */
    int diverge_at;           /* first position where the tokens differ; -1: none */
    int drift_at;             /* first position whose log-probabilities exceed tolerance; -1: none */
    double max_drift;         /* largest |difference| of a log-probability, common positions */
    double max_rel;           /* largest difference relative to the recorded top-k spread */
    double overlap;           /* mean top-k overlap (0..1) over the compared positions */
    double margin;            /* at the divergence: recorded logprob(golden) - logprob(new) */
    char detail[512];         /* one line for the report */
};

struct al_validation {
    bool conditions_match;    /* exact match required */
    char conditions_note[512];/* what differs between recording and run */
    struct al_prompt_cmp *cmp;
    size_t n_cmp;
    size_t n_failed;
};

/* Compares a run with the recording using the suite's tolerances. *out is
 * filled (release with al_validation_release); the return is AL_OK even
 * when prompts fail: look at out->n_failed. */
enum al_rc al_golden_compare(const struct al_suite *s, const struct al_golden_run *rec,
                             const struct al_golden_run *run, struct al_validation *out, struct al_err *err);
void al_validation_release(struct al_validation *v);

#endif
