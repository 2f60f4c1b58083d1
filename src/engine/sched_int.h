/*
 * sched_int.h: the scheduler's state, shared by sched.c (the queue, the
 * worker, sampling and finishing, switching adapters), batch.c (what one
 * step decodes: its adapter set, its tokens, room for them in a unified KV
 * cache) and submit.c (a request's way in, stats). Only these three files
 * include it.
 */
#ifndef AL_ENGINE_SCHED_INT_H
#define AL_ENGINE_SCHED_INT_H

#include <stdatomic.h>
#include <string.h>

#include <ggml-cpu.h>

#include "engine/engine_int.h"

#define PROMPT_STEPS 8 /* the admission hook gets the median of this many recent prompt steps */

struct al_engine_req {
    atomic_int refs;
    atomic_bool cancel;
    struct al_engine_sched *s;
    llama_token *prompt;
    int n_prompt;
    int max_tokens;
    bool cache_prompt;         /* false: no prefix of the slot's KV cache is reused */
    struct llama_sampler *smpl;
    bool greedy_fast;          /* plain greedy: argmax on the logits, chain only as fallback */
    llama_token *banned;       /* the chain's banned tokens, for greedy_fast */
    int n_banned;
    struct al_engine_stops stops;
    llama_token *preserved;    /* special tokens streamed as text (tool-call markers), sorted */
    int n_preserved;
    al_engine_token_cb *on_token;
    al_engine_done_cb *on_done;
    void *ud;
    int n_probs;               /* > 0 with on_probs: log-probabilities per token */
    al_engine_probs_cb *on_probs;
    void *probs_ud;
    bool post_sampling;        /* with on_probs: probabilities after the chain (sample.c) */
    bool ids_only;             /* with on_probs: the token id alone, no probabilities computed */
    bool greedy;               /* the chain ends with the greedy sampler (temperature <= 0) */
    al_engine_progress_cb *on_progress;
    void *progress_ud;
    int32_t probs_ids[AL_LIMIT_TOP_PROBS];
    float probs_lps[AL_LIMIT_TOP_PROBS];
    double t_submit;
    int stop_word;             /* the stop string that ended it, or -1 */
    float lora[AL_LIMIT_LORAS]; /* the scale of every adapter of the model (0: off) */
    struct al_engine_req *next; /* queue link */
};

struct al_engine_slot {
    llama_seq_id id;
    struct al_engine_req *req; /* NULL: free */
    llama_token *cache;        /* tokens in the KV cache, n_ctx_seq of room */
    int n_cache;
    int n_fed;                 /* prompt tokens in the cache or the batch */
    int n_cached;              /* prompt tokens reused from an earlier request */
    bool generating;
    llama_token next;          /* sampled, to be decoded at position n_cache */
    int i_batch;               /* index of this slot's logits in the batch, or -1 */
    int n_batch_tokens;        /* tokens this slot put in the batch */
    int n_gen;
    char *pending;             /* generated text not yet emitted */
    size_t n_pending, cap_pending;
    double t_start, t_first;
    uint64_t last_used;
    uint64_t order;            /* when the request was assigned: prompts go first come, first served */
    float kv_lora[AL_LIMIT_LORAS]; /* the adapter set its KV cache was computed with */
    uint64_t served;           /* the step that last decoded it (adapter sets take turns) */
    bool tried;                /* batch.c's scratch: its set was tried for this step */
};

struct al_engine_sched {
    struct al_engine_model *m;
    struct llama_context *ctx;
    struct ggml_threadpool *pool;   /* the context's compute threads, kept between steps */
    al_engine_admit_fn *admit;      /* lock: the admission hook, or NULL */
    void *admit_ud;                 /* lock */
    int step_finished;              /* worker: requests the current step finished */
    int burst_n;                    /* worker: requests finished by the step that left it idle */
    double burst_end_ms;            /* worker: when */
    double prompt_step_ms[PROMPT_STEPS]; /* worker: how long the last steps with prompt tokens took */
    unsigned n_prompt_steps;
    llama_memory_t mem;
    struct llama_batch batch;
    int n_batch, n_seq, n_ctx_seq, queue_max, n_vocab;
    bool unified;              /* one KV cache of n_cells shared by the sequences (batch.c) */
    int n_cells;               /* with unified: the cells of the cache */
    char full_msg[192];        /* the error of a request stopped for room (batch.c) */
    struct al_engine_slot *slots;
    char *piece;               /* scratch for one token's text */
    llama_token_data *cand;    /* worker: n_vocab candidates for post-sampling probabilities,
                                * made on first use */
    struct al_engine_slot **fresh;       /* scratch: slots assigned in this step */
    struct al_engine_slot **reading;     /* scratch: slots reading their prompt, oldest first */
    int cap_piece;
    uint64_t clock;
    uint64_t n_assigned;
    uint64_t n_steps;
    float cur_lora[AL_LIMIT_LORAS];  /* worker: the adapter set applied to ctx */
    bool cur_lora_valid;
    float step_lora[AL_LIMIT_LORAS]; /* worker: the set of the step being built (batch.c) */
    bool step_switches;             /* worker: this step changes the context's set */
    double lora_since_ms;           /* worker: when the context's set was applied */
    double switch_ms;               /* worker: what a switch adds to a step (moving average) */
    double plain_step_ms;           /* worker: a step that generates only, without a switch (same) */
    atomic_uint_fast64_t lora_switches, lora_mixed_steps;
    /* Per-sequence adapters (llama_set_adapters_lora_seq, airlock's llama.cpp
     * patch): one step decodes every set together, each sequence's tokens at
     * its own request's scales. False: sets take turns (batch.c). */
    bool lora_per_seq;
    float *lora_scales;             /* worker: n_seq x AL_LIMIT_LORAS, the step's scales */

    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool quit;                                 /* lock */
    struct al_engine_req *q_head, *q_tail;     /* lock */
    int n_queued, n_active;                    /* lock */

    atomic_uint cancels;                       /* bumped by al_engine_cancel */
    unsigned cancels_seen;                     /* worker */
    atomic_uint_fast64_t tokens_prompt, tokens_cached, tokens_gen, requests_done, decode_calls, kv_used;
};

/* Drops a reference to r; the last frees it. */
void al_engine_req_unref(struct al_engine_req *r);

/* Whether two adapter sets are the same (zeros are stored as +0). */
static inline bool al_engine_same_lora(const float *a, const float *b)
{
    return memcmp(a, b, AL_LIMIT_LORAS * sizeof *a) == 0;
}

/* Ends the slot's request with why (error: the message of
 * AL_ENGINE_FINISH_ERROR, valid during the call): emits held-back text
 * where the answer is complete, frees the slot, calls on_done. Worker only. */
void al_engine_slot_finish(struct al_engine_sched *s, struct al_engine_slot *sl, enum al_engine_finish why,
                           const char *error);

/* Picks the step's adapter set (s->step_lora, s->step_switches) and fills
 * s->batch with that set's slots: every generating slot's pending token,
 * then prompt chunks, first come, first served. With a unified KV cache it
 * first makes room (batch.c says how), which may finish requests. Empty:
 * nothing to decode. Worker only. */
void al_engine_sched_fill(struct al_engine_sched *s);

#endif
