/*
 * bench.h: measuring a model in this process (the engine's scheduler) or a
 * running OpenAI-compatible server (streaming, through src/loadgen), across
 * concurrency levels and prompt lengths; reports as JSON and self-contained
 * HTML; comparing two reports.
 *
 * A run is a grid of cells (prompt length x concurrency). Each cell runs
 * `requests` greedy completions of `gen_tokens` tokens (end of generation
 * ignored), keeping `concurrency` of them in flight (closed loop), after one
 * warm-up request for the whole run. Every request is a raw sample: prompt
 * and generated tokens, time to first token, prompt time (the engine only),
 * generation time, request latency and every inter-token gap. Cells summarize
 * them: prompt processing tokens/s, per-stream decode tokens/s, aggregate
 * tokens/s over the cell's wall time, and p50/p95/p99 of TTFT, inter-token
 * latency and request latency; plus CPU utilization and the hottest
 * temperature during the cell (src/health).
 *
 * The report is a JSON document (format "airlock-bench/1", documented in
 * docs/internals/suite.md); the HTML report and the comparison read that
 * document, so a report saved yesterday renders and compares like a new one.
 */
#ifndef AL_BENCH_BENCH_H
#define AL_BENCH_BENCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"
#include "engine/engine.h"

#define AL_BENCH_FORMAT "airlock-bench/1"
#define AL_BENCH_LEVELS_MAX 16

struct al_bench_opts {
    int concurrency[AL_BENCH_LEVELS_MAX], n_concurrency;
    int prompt_lengths[AL_BENCH_LEVELS_MAX], n_prompt_lengths; /* in tokens */
    int gen_tokens;
    int requests;             /* per cell; <= 0: 4 x concurrency, at least 4 */
    int threads;              /* recorded (the model is loaded with them) */
    int gpu_layers;           /* the same: layers on a GPU device (0: the CPU alone) */
    const char *const *texts; /* base texts prompts are cut from; at least one */
    size_t n_texts;
    const char *model_ref;    /* recorded: what the user asked for */
    bool progress;            /* a line per cell on stderr */
};

/* Runs the grid on a loaded model, which must have at least the largest
 * concurrency as n_seq and room for the longest prompt plus gen_tokens per
 * sequence. *out (NULL on entry) is the report, the caller's (json_decref).
 * AL_ERR_USAGE, before anything runs, for options that cannot: no texts, a
 * level list empty or over AL_BENCH_LEVELS_MAX, a concurrency outside
 * [1, AL_LIMIT_SEQS], a prompt length outside [1, AL_LIMIT_PROMPT_TOKENS],
 * gen_tokens < 1, requests over AL_LIMIT_BENCH_REQUESTS. */
enum al_rc al_bench_engine(struct al_engine_model *m, const struct al_bench_opts *o, json_t **out,
                           struct al_err *err);

/* The same against a server at url (POST /v1/completions, "stream": true),
 * with the same option checks; requests that fail are samples with an
 * error, not an error of the call.
 * Prompt lengths are met with the server's /tokenize and /detokenize where it
 * has them (llama-server), else approximated by words. */
enum al_rc al_bench_server(const char *url, const struct al_bench_opts *o, json_t **out, struct al_err *err);

/* The figures targets are checked against: median per-stream decode tokens/s
 * at the lowest concurrency, TTFT p95 over every request, peak RSS in MiB
 * (-1 when the report cannot know: a server). */
void al_bench_overall(json_t *report, double *decode_tps, double *ttft_p95_ms, double *rss_mb);

/* The largest concurrency and prompt length of o's grid (1 when a list is
 * empty). */
void al_bench_extent(const struct al_bench_opts *o, int *max_concurrency, int *max_prompt);

/* AL_ERR_USAGE, naming the figures, when the longest prompt of o and its
 * gen_tokens (plus a margin of 8 for the template's tokens) do not fit a
 * model trained for n_ctx_train tokens; AL_OK when they do or n_ctx_train is
 * unknown (<= 0). Checked before a model is loaded for the run. */
enum al_rc al_bench_fits(const struct al_bench_opts *o, int n_ctx_train, struct al_err *err);

/* One target's outcome, as src/suite checked it (al_targets_check). */
struct al_bench_target {
    const char *name;   /* borrowed for the call */
    double target;
    double measured;    /* < 0: not measured (null in the report) */
    bool met;
};

/* Records in report the figures targets are checked against ("overall":
 * decode_tps, ttft_p95_ms, rss_peak_mb, null when < 0) and the n outcomes
 * ("targets"), replacing earlier ones. */
void al_bench_record_targets(json_t *report, double decode_tps, double ttft_p95_ms, double rss_mb,
                             const struct al_bench_target *t, int n);

/* Renders report as one self-contained HTML page (inline CSS and SVG charts:
 * latency distribution, tokens/s against concurrency, TTFT against prompt
 * length; no external scripts, fonts or images) appended to out. */
enum al_rc al_bench_html(json_t *report, struct al_buf *out, struct al_err *err);

/* Compares two reports cell by cell (same concurrency and prompt length):
 * medians of the raw samples, with a change flagged as a regression when it
 * is worse by more than min_pct percent and by more than the noise (three
 * times the samples' combined median absolute deviation). Appends a table
 * to out; *regressions counts the flagged figures. */
enum al_rc al_bench_compare(json_t *a, json_t *b, double min_pct, struct al_buf *out, int *regressions,
                            struct al_err *err);

/* ---- statistics (stats.c) ---- */

/* The q-quantile (0..1) of v[0..n) by linear interpolation between order
 * statistics; v is sorted in place. NAN when n is 0. */
double al_stat_quantile(double *v, size_t n, double q);
/* Median absolute deviation (unscaled); v is reordered. */
double al_stat_mad(double *v, size_t n);

#endif
