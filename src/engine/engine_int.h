/*
 * engine_int.h: what the files of src/engine share and nothing outside may
 * see. This header includes llama.h; only the .c files of src/engine may include it.
 *
 *   engine.c  verified load, model info, chat templates, log routing
 *   tokens.c  tokenizing, detokenizing, token-id prompts, FIM tokens
 *   sched.c   the scheduler: queue, sequences, continuous batching, adapter switches
 *   batch.c   what one step decodes (its adapter set, by turns); room in a shared KV cache
 *   submit.c  submitting a request (checks, tokens, sampler, adapter set), stats
 *             (sched_int.h: the structures those three share)
 *   generate.c  the synchronous wrapper
 *   sample.c  sampler chains, stop strings, UTF-8 boundaries
 *   embed.c   embeddings on a second context
 *   rerank.c  scores of (query, document) pairs on a third (rank pooling)
 *   finetune.c  full fine-tuning through llama.cpp's training API (finetune.h)
 *   devices.c  compute devices (CPU, GPU backends) and a model's placement
 *   chat_shim.cpp  Jinja templates, tool-call grammars and parsing through
 *             llama.cpp's common/chat.h (chat.h is its public side)
 */
#ifndef AL_ENGINE_INT_H
#define AL_ENGINE_INT_H

#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include <llama.h>

#include "core/hash.h"
#include "core/limits.h"
#include "engine/engine.h"

struct al_engine_sched; /* sched.c */
struct al_engine_chat_tmpls; /* chat_shim.cpp: a model's parsed Jinja templates */
struct al_engine_embedder; /* embed.c */
struct al_engine_ranker; /* rerank.c */

struct al_engine_model {
    struct llama_model *model;
    const struct llama_vocab *vocab;
    FILE *file;                       /* the verified, open blob; kept until free */
    struct al_engine_model_params params;    /* with defaults resolved */
    int n_ctx_seq;                    /* most context one request gets, resolved */
    int n_ctx;                        /* the context asked of llama.cpp: per sequence, or the
                                         whole cache with params.kv_unified */
    char digest[AL_DIGEST_SIZE];
    struct al_engine_sched *sched;
    pthread_mutex_t embed_lock;       /* serializes al_engine_embed and _rerank; guards embedder, ranker */
    struct al_engine_embedder *embedder;     /* created on first use */
    struct al_engine_ranker *ranker;         /* created on first use (rerank.c) */
    struct al_engine_chat_tmpls *chat;       /* NULL: no Jinja template (builtin formats only) */
    /* LoRA adapters: those of the load, then those al_engine_lora_add
     * loaded on demand. Entries are appended, never removed, under
     * lora_mu; lora_scales are the defaults (a request naming none). The
     * scheduler's worker holds lora_mu around llama_decode, as
     * llama_adapter_lora_init changes the model's set of adapters. */
    pthread_mutex_t lora_mu;
    pthread_mutex_t lora_add_mu;      /* serializes al_engine_lora_add */
    struct llama_adapter_lora *loras[AL_LIMIT_LORAS];
    float lora_scales[AL_LIMIT_LORAS];
    char lora_digests[AL_LIMIT_LORAS][AL_DIGEST_SIZE];
    int n_loras;
};

/* Opens path and proves its digest (the verified load's first half, see
 * engine.c), the stream at offset 0 in *out (NULL on entry; fclose it). Also
 * initializes llama.cpp's backend and log routing once. finetune.c. */
enum al_rc al_engine_open_verified(const char *path, const char *expected, FILE **out, struct al_err *err);

/* Applies the model's adapters at their default scales to a context of it
 * (embed.c, rerank.c; the scheduler applies each step's set itself). */
enum al_rc al_engine_apply_loras(struct al_engine_model *m, struct llama_context *ctx, struct al_err *err);

/* Monotonic clock in milliseconds. */
double al_engine_now_ms(void);
/* CLOCK_MONOTONIC ms from now, for pthread_cond_timedwait on a condition
 * set to that clock. */
struct timespec al_engine_ms_from_now(double ms);

/* The thread's last error line from llama.cpp's log ("" when none). */
const char *al_engine_llama_last_error(void);
void al_engine_llama_clear_error(void);

/* Tokenizes into a malloc'd array (see al_engine_tokenize). */
enum al_rc al_engine_tokenize_int(const struct llama_vocab *vocab, const char *text, size_t len,
                                  bool add_special, bool parse_special, llama_token **out,
                                  int *n_out, struct al_err *err);
/* Copies n token ids into a malloc'd array, each checked against the
 * vocabulary (AL_ERR_INVALID), n against AL_LIMIT_PROMPT_TOKENS. */
enum al_rc al_engine_tokens_copy_int(const struct llama_vocab *vocab, const int32_t *t, size_t n, llama_token **out,
                                     int *n_out, struct al_err *err);

/* ---- sched.c ---- */
enum al_rc al_engine_sched_new(struct al_engine_model *m, struct al_engine_sched **out, struct al_err *err);
void al_engine_sched_free(struct al_engine_sched *s);

/* ---- sample.c ---- */

/* Checks p against its ranges and caps (AL_ERR_USAGE, AL_ERR_LIMIT). */
enum al_rc al_engine_sample_check(const struct al_engine_gen_params *p, struct al_err *err);

/* Builds the sampler chain of one request; the caller frees it with
 * llama_sampler_free(). AL_ERR_INVALID when the grammar does not parse. */
enum al_rc al_engine_sample_chain_new(const struct llama_vocab *vocab, const struct al_engine_gen_params *p,
                               struct llama_sampler **out, struct al_err *err);

/* True when p's chain is the logit bias of al_engine_sample_banned (if any) and
 * the greedy sampler: nothing else, so nothing in it keeps state. */
bool al_engine_sample_plain_greedy(const struct al_engine_gen_params *p);

/* The tokens the chain bans with a bias of minus infinity: the vocabulary's
 * suppressed tokens and, with ignore_eos, every end-of-generation token. A
 * malloc'd array (NULL when none). */
enum al_rc al_engine_sample_banned(const struct llama_vocab *vocab, const struct al_engine_gen_params *p,
                                   llama_token **out, int *n_out, struct al_err *err);

/* What a plain greedy chain picks from logits[0..n_vocab): the first
 * maximum, when it is not banned; LLAMA_TOKEN_NULL when it is (the caller
 * then runs the chain). Equal to the chain's choice in every case it returns
 * a token: an earlier banned token tying the maximum would have been the
 * first maximum itself. It skips copying n_vocab candidates and applying
 * the bias on each token. */
llama_token al_engine_sample_greedy_fast(const float *logits, int n_vocab, const llama_token *banned, int n_banned);

/* Stop strings of one request, copied. */
struct al_engine_stops {
    char **s;
    size_t *len;
    int n;
    size_t max_len;
};

enum al_rc al_engine_stops_init(struct al_engine_stops *st, const char *const *stop, int n, struct al_err *err);
void al_engine_stops_release(struct al_engine_stops *st);

/* Looks for a stop string in text[0..len). Returns the offset of the earliest
 * match, or -1; with no match, *hold gets how many trailing bytes must be held
 * back because they begin some stop string (or an incomplete UTF-8
 * character), so that only text[0..len-*hold) may be emitted. On a match,
 * *which is the index of the stop string found. */
long al_engine_stops_scan(const struct al_engine_stops *st, const char *text, size_t len, size_t *hold, int *which);

/* Fills out with the log-probability of tok and the k most likely tokens of
 * logits[0..n_vocab) (softmax over raw logits), into the caller's ids and lps
 * of k entries each. */
void al_engine_probs_compute(const float *logits, int n_vocab, llama_token tok, int k, int32_t *ids, float *lps,
                      struct al_engine_token_probs *out);

/* What llama_sampler_sample does (no backend sampler), keeping what the
 * chain leaves: applies chain to logits[0..n_vocab) copied into cand (n_vocab
 * entries of scratch), accepts and returns the token drawn, and fills out
 * with the probabilities of the draw (post_sampling: the chosen token's and
 * the k likeliest above 0, into ids and ps of k entries, most likely first).
 * greedy: the chain ends with the greedy sampler, which computes none: the
 * chosen token gets 1, as llama-server's chain gives it at temperature 0. */
llama_token al_engine_sample_post(struct llama_sampler *chain, const float *logits, int n_vocab, bool greedy,
                                  llama_token_data *cand, int k, int32_t *ids, float *ps,
                                  struct al_engine_token_probs *out);

/* ---- chat_shim.cpp (C linkage; nothing throws) ---- */

/* Parses model's chat template(s), or override (Jinja text) instead, with
 * llama.cpp's Jinja engine. A model without a template and no override:
 * *out stays NULL and AL_OK. A template that does not parse: AL_ERR_INVALID. */
enum al_rc al_engine_chat_tmpls_new(const struct llama_model *model, const char *override,
                                    struct al_engine_chat_tmpls **out, struct al_err *err);
void al_engine_chat_tmpls_free(struct al_engine_chat_tmpls *t);

/* The grammar sampler of an applied chat, NULL in *out when it has no
 * grammar: lazy (from a trigger word, pattern or token) for tool_choice
 * auto, else from the first token with the generation prompt's tokens
 * accepted first (as llama.cpp's common sampler does). AL_ERR_INVALID when
 * the grammar does not parse. */
enum al_rc al_engine_chat_grammar_sampler(const struct al_engine_chat *c, const struct llama_vocab *vocab,
                                          struct llama_sampler **out, struct al_err *err);
/* Extra stop strings of the chat's format (borrowed from c, n in *n). */
const char *const *al_engine_chat_stops(const struct al_engine_chat *c, int *n);
/* Tokens that generation renders as text although special (tool-call
 * markers the parser must see), sorted; borrowed from c. */
const llama_token *al_engine_chat_preserved(const struct al_engine_chat *c, int *n);

/* ---- embed.c ---- */
void al_engine_embedder_free(struct al_engine_embedder *e);
/* Takes m->embed_lock, asking ctl between waits (embed.c says how). */
enum al_rc al_engine_embed_lock(struct al_engine_model *m, const struct al_engine_embed_ctl *ctl, struct al_err *err);
/* ctl's check (AL_OK when ctl or its check is NULL). */
enum al_rc al_engine_embed_check(const struct al_engine_embed_ctl *ctl, struct al_err *err);

/* ---- rerank.c ---- */
void al_engine_ranker_free(struct al_engine_ranker *r);

#endif
