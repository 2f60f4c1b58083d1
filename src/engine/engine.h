/*
 * engine.h: inference on llama.cpp, behind an interface that names no llama
 * type. This module is the only one that includes llama.h.
 *
 * A model is loaded from a store blob with a verified load: the file is opened
 * once, hashed, compared with the digest the caller expects, rewound, and the
 * same open file is handed to llama.cpp, so nothing can be swapped between the
 * check and the load. A verification cache (keyed by device, inode, size and
 * modification time) may skip re-hashing when the caller passes one.
 *
 * Each loaded model owns one scheduler: one llama.cpp context with n_seq
 * sequences and a worker thread that batches prompt chunks of new requests
 * together with one decode step of every active request in each llama_decode
 * (continuous batching). A request whose prompt shares a prefix with what a
 * free sequence already holds in the KV cache reuses that prefix. Requests
 * wait in a bounded queue; submit answers AL_ERR_BUSY when it is full.
 *
 * Callbacks (al_engine_token_cb, al_engine_done_cb) run on the worker thread: they must be
 * quick and must not call back into the scheduler of the same model except
 * al_engine_cancel() and al_engine_stats(). Every submitted request gets
 * exactly one al_engine_done_cb call, also when it is cancelled or the model is freed.
 *
 * LoRA adapters (al_engine_lora) are loaded with the model they adapt, or
 * later, on demand (al_engine_lora_add), into the same model: one base in
 * memory and any number of adapters. Each request names the adapters it
 * wants and their scales (al_engine_gen_params.loras), else gets the
 * model's default scales. llama.cpp applies adapters per context, to a
 * whole llama_decode, so one step of the scheduler decodes only sequences
 * that want the same adapters; sets take turns (the sequence served least
 * recently goes next), so none starves (docs/internals/engine.md). An adapter blob is verified like the model: it is
 * opened once and hashed, and llama.cpp, which opens adapters by path only,
 * is given /proc/self/fd/<n> of that same open file (docs/internals/engine.md
 * says why nothing can be swapped in between, and what is left).
 *
 * Embeddings use a second context of the same model, created on first use,
 * with the pooling the model declares (mean pooling when it declares none);
 * vectors come back L2-normalized. A reranker (a GGUF that declares rank
 * pooling) scores (query, document) pairs on a context of its own
 * (al_engine_rerank) and cannot generate.
 *
 * All functions are thread-safe unless said otherwise.
 */
#ifndef AL_ENGINE_ENGINE_H
#define AL_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct al_engine_model;   /* opaque: a loaded model and its scheduler */
struct al_engine_req;     /* opaque: one submitted generation request */
struct al_engine_verify_cache;   /* opaque: remembered verifications of blobs */
struct al_engine_chat;    /* opaque: a conversation applied to a Jinja template (engine/chat.h) */

/* ---- verification cache ---- */

/* A cache of successful verifications keyed by (st_dev, st_ino, size, mtime).
 * Passing one to al_engine_model_load() lets a second load of an unchanged
 * blob skip hashing; a changed size or mtime, or another inode, hashes again.
 * Owned by the caller; must outlive the loads that use it. */
struct al_engine_verify_cache *al_engine_verify_cache_new(void);
void al_engine_verify_cache_free(struct al_engine_verify_cache *c);

/* ---- admission ----
 * Before a step that starts from idle (no request active, some queued,
 * sequences left free), the scheduler asks its admission hook how long to
 * wait for more requests first, so that a host that knows requests are on
 * their way (a server counting connections) can have them start in one
 * batch. The engine itself never waits: without a hook a step starts at
 * once. The hook runs on the worker thread under the scheduler's lock: it
 * must be quick and must call nothing of the engine. It returns the
 * milliseconds to wait before it is asked again (a newly queued request ends
 * the wait early); 0 or less starts the step. It is not asked when every
 * sequence would be busy, nor once the model is being freed. */
struct al_engine_admit_info {
    int n_queued;            /* requests queued, fewer than n_seq */
    int n_seq;               /* sequences */
    double waited_ms;        /* waited so far before this step */
    double prompt_step_ms;   /* median duration of the last steps that read prompt
                              * tokens (up to 8); < 0: none yet */
    int last_finished;       /* requests finished by the step that left the scheduler
                              * idle; 0: none yet */
    double last_finished_ms; /* with last_finished > 0: how long before the first ask
                              * that step ended */
};
typedef double al_engine_admit_fn(void *ud, const struct al_engine_admit_info *info);

/* Called once per submitted request when al_engine_submit is done with it:
 * under the scheduler's lock as it is queued, before the worker (and so the
 * admission hook) can see it in the queue, or before submit returns an
 * error. So a host that counts requests on their way can uncount it without
 * the hook ever seeing it both queued and on its way. Must be quick. */
typedef void al_engine_submitted_cb(void *ud);

/* ---- loading ---- */

/* A LoRA adapter to apply to a model as it is loaded: a GGUF with
 * general.type "adapter" and adapter.type "lora" whose tensors fit the
 * model's. */
struct al_engine_lora {
    const char *path;    /* the adapter's blob */
    const char *digest;  /* its expected "sha256:<64 hex>" */
    float scale;         /* 1: as trained; 0: no effect */
};

struct al_engine_model_params {
    int threads;       /* CPU threads for decoding; <= 0: 2 */
    int n_ctx;         /* context in tokens, per sequence or with kv_unified of the whole
                          cache; <= 0: the model's n_ctx_train */
    int n_batch;       /* most tokens in one llama_decode; <= 0: 512 */
    int n_seq;         /* parallel sequences (requests generating at once); <= 0: 1 */
    /* One KV cache of n_ctx cells shared by the n_seq sequences (llama.cpp's
     * kv_unified, as llama-server's slots share theirs) instead of n_ctx
     * cells for each. A request may then hold up to n_ctx_seq of them, and
     * when the shared cells run out the youngest request holding some is
     * stopped (AL_ENGINE_FINISH_ERROR) so that the others finish
     * (docs/internals/engine.md). */
    bool kv_unified;
    int n_ctx_seq;     /* with kv_unified: most cells one request holds; <= 0: all n_ctx */
    int queue_max;     /* requests waiting for a sequence; <= 0: 64; beyond: AL_ERR_BUSY */
    int n_gpu_layers;  /* layers offloaded to a GPU; negative: all (where there is one) */
    bool use_mmap;
    bool use_mlock;
    /* NULL: always hash. Otherwise a blob verified before, unchanged since
     * (same device, inode, size, mtime), is not hashed again. */
    struct al_engine_verify_cache *verify_cache;
    al_engine_admit_fn *admit;    /* NULL: steps start at once (see admission) */
    void *admit_ud;               /* passed to admit */
    /* Jinja chat template used instead of the GGUF's (a bundle's template
     * file); NULL: the GGUF's. Copied by the load (engine/chat.h). */
    const char *chat_template;
    /* LoRA adapters applied to every context of the model, in order; each
     * proven against its digest before llama.cpp reads it. Borrowed, read
     * during the load. Up to AL_LIMIT_LORAS. */
    const struct al_engine_lora *loras;
    int n_loras;
};

/* threads 2, n_ctx 0 (from the model), n_batch 512, n_seq 1, kv_unified
 * false, n_ctx_seq 0, queue_max 64, n_gpu_layers -1, use_mmap true, use_mlock false, no cache, no admission
 * hook. */
struct al_engine_model_params al_engine_model_params_default(void);

/* The shapes a model's KV cache is sized by, as its GGUF header gives them
 * (<arch>.block_count, .embedding_length, .attention.head_count and
 * .head_count_kv, .context_length). */
struct al_engine_kv_shape {
    uint32_t n_layer, n_embd, n_head, n_head_kv, n_ctx_train;
};

/* Bytes of the KV cache a model of this shape gets under p: K and V in f16
 * for every layer, head_dim = n_embd / n_head per KV head, for the cells
 * al_engine_model_load gives it: the context (p->n_ctx, else n_ctx_train,
 * else 4096), times n_seq unless p->kv_unified, the total rounded up to 256
 * cells as llama.cpp does. So a
 * memory budget can count a model before it is loaded. 0 when a shape is 0.
 * Not counted: compute buffers (tens of MiB at n_batch 512) and head
 * dimensions that differ from n_embd / n_head. */
uint64_t al_engine_kv_bytes(const struct al_engine_model_params *p, const struct al_engine_kv_shape *shape);

/* Loads the GGUF at blob_path after proving that its SHA-256 is
 * expected_digest ("sha256:<64 hex>") and starts its scheduler. params may be
 * NULL for the defaults. *out must be NULL; it is the caller's on success and
 * is released with al_engine_model_free(). The adapters of params->loras are
 * loaded after the model, each verified the same way.
 * Errors: AL_ERR_USAGE (malformed digest or params), AL_ERR_IO (cannot open or
 * read), AL_ERR_VERIFY (digest mismatch of the model or an adapter, or an
 * adapter blob changed while llama.cpp read it: nothing is loaded),
 * AL_ERR_CORRUPT (llama.cpp refuses the file or an adapter, e.g. one whose
 * tensors do not fit the model), AL_ERR_LIMIT (more than AL_LIMIT_LORAS adapters), AL_ERR_LIMIT (n_seq over AL_LIMIT_SEQS ...),
 * AL_ERR_NOMEM, AL_ERR_INTERNAL (context or thread creation failed). */
enum al_rc al_engine_model_load(const char *blob_path, const char *expected_digest,
                                const struct al_engine_model_params *params,
                                struct al_engine_model **out, struct al_err *err);

/* Replaces the admission hook of a loaded model (NULL: steps start at once).
 * Once it returns, the scheduler never calls the old hook again, so its ud
 * may be freed. */
void al_engine_set_admit(struct al_engine_model *m, al_engine_admit_fn *admit, void *admit_ud);

/* Stops the scheduler (queued and active requests finish as "cancelled",
 * each with its al_engine_done_cb), then frees the contexts and the model.
 * NULL is a no-op. No other call on m may be in progress or follow. */
void al_engine_model_free(struct al_engine_model *m);

struct al_engine_model_info {
    int n_ctx_train;        /* context the model was trained with */
    int n_ctx;              /* most context one request gets (per sequence) */
    int n_seq;              /* parallel sequences */
    int n_batch;            /* most tokens in one llama_decode */
    int n_ctx_cells;        /* cells of the KV cache, all sequences */
    bool kv_unified;        /* one cache shared by the sequences */
    int n_vocab;
    int n_embd;             /* length of an embedding vector */
    int n_layer;
    uint64_t n_params;
    uint64_t size_bytes;    /* tensor data */
    uint64_t kv_bytes;      /* the scheduler's KV cache (al_engine_kv_bytes) */
    bool has_chat_template;
    char desc[128];         /* llama.cpp's description, e.g. "llama ?B all F32" */
    char digest[72];        /* the verified "sha256:<hex>" */
    int n_loras;            /* LoRA adapters loaded (at load and on demand) */
};

void al_engine_model_info(const struct al_engine_model *m, struct al_engine_model_info *out);

/* What the inference runtime is, for reports and golden recordings: the
 * llama.cpp commit this binary is built from ("80fb11a", "unknown"), and
 * llama.cpp's list of the CPU features its build uses and this CPU has
 * ("CPU : SSE3 = 1 | AVX = 1 | ..."). Both static strings. */
const char *al_engine_llama_commit(void);
const char *al_engine_system_info(void);

/* A compute device of this build (devices.c): the CPU, and GPUs where the
 * build has a GPU backend (make vulkan) and the machine shows a device. */
struct al_engine_device {
    char name[64];          /* "CPU", "Vulkan0" */
    char description[128];  /* "llvmpipe (LLVM 15.0.6, 256 bits)" */
    char type[8];           /* "cpu", "gpu", "igpu", "accel" */
    bool offload;           /* --gpu-layers puts layers here */
    uint64_t mem_free, mem_total; /* bytes, as the backend reports them */
};

/* Fills out[0..max) in llama.cpp's order; returns how many. */
int al_engine_devices(struct al_engine_device *out, int max);

/* Where a loaded model's layers run, as one line ("Vulkan0 (llvmpipe ...):
 * 5 of 5 layers and the output", "CPU: all 5 layers"); returns the number
 * of layers on a device (0: CPU only). */
int al_engine_model_placement(const struct al_engine_model *m, char *buf, size_t n);

/* True when some of m's layers run on a Vulkan device. */
bool al_engine_model_on_vulkan(const struct al_engine_model *m);

/* ---- quantization ---- */

/* The quantization types al_engine_quantize writes, by llama-quantize's
 * names ("Q8_0", "Q4_0", "Q4_K_M", ...): those that need no importance
 * matrix. Returns the llama_ftype number, or -1 for a name not in the list
 * (case-sensitive). al_engine_quant_types() is the list, comma-separated,
 * for messages and --help (a static string). */
int al_engine_quant_type(const char *name);
const char *al_engine_quant_types(void);

/* Writes a quantized copy of the GGUF model blob at src_path, whose content
 * must have expected_digest, to dst_path (created or truncated; the caller
 * removes it on error) with llama.cpp's llama_model_quantize, at the type
 * named type (al_engine_quant_type) with n_threads threads (<= 0: all
 * cores). The source is proven as a LoRA adapter is (docs/internals/
 * engine.md): opened, hashed through that descriptor, and handed to llama.cpp
 * as /proc/self/fd/<n>, its size and modification time compared before the
 * hash and after the quantization; the hash runs on a helper thread beside
 * the quantization, and a digest that does not match fails the call (the
 * result is discarded: nothing derived from unproven bytes is kept). AL_ERR_USAGE (unknown type, bad
 * arguments), AL_ERR_VERIFY (the blob does not match its digest, or changed),
 * AL_ERR_IO, AL_ERR_CORRUPT (llama.cpp refused or failed; its message).
 * Blocks for the whole quantization. Any thread. */
enum al_rc al_engine_quantize(const char *src_path, const char *expected_digest, const char *dst_path,
                              const char *type, int n_threads, struct al_err *err);

/* ---- LoRA adapters on demand ---- */

/* Loads the LoRA adapter at path, proven against digest as at load, into the
 * loaded model m, with a default scale of 0 (it applies only to requests
 * that name it). *id is its index, for al_engine_gen_params.loras. An adapter
 * of that digest loaded already: its id, nothing read again. Blocks for the
 * load (a decode of m waits only while llama.cpp links it in). Errors:
 * those of the load's adapters (AL_ERR_VERIFY, AL_ERR_CORRUPT for one that
 * does not fit m, AL_ERR_IO), AL_ERR_LIMIT (AL_LIMIT_LORAS loaded). */
enum al_rc al_engine_lora_add(struct al_engine_model *m, const char *path, const char *digest, int *id,
                              struct al_err *err);

/* Sets the default scale of adapter id (what requests naming no adapters
 * get from then on). AL_ERR_USAGE: no such id, a scale outside -100..100. */
enum al_rc al_engine_lora_set_default(struct al_engine_model *m, int id, float scale, struct al_err *err);

/* The default scale of the adapter with digest in *scale; false (and 0)
 * when it is not loaded into m. */
bool al_engine_lora_default(struct al_engine_model *m, const char *digest, float *scale);

/* One adapter of a request: its id in the model and its scale. */
struct al_engine_lora_use {
    int id;
    float scale;
};

/* ---- text and tokens ---- */

/* Tokenizes len bytes of text. add_special adds BOS/EOS as the model asks;
 * parse_special reads special tokens written as text ("<|im_end|>").
 * *out must be NULL; the caller frees it. Over AL_LIMIT_PROMPT_TOKENS tokens or
 * AL_LIMIT_PROMPT_BYTES bytes: AL_ERR_LIMIT. */
enum al_rc al_engine_tokenize(const struct al_engine_model *m, const char *text, size_t len,
                              bool add_special, bool parse_special,
                              int32_t **out, size_t *n_out, struct al_err *err);

/* Turns tokens back into text (NUL-terminated, *len_out without the NUL);
 * special renders special tokens. A token outside the vocabulary:
 * AL_ERR_INVALID. *out must be NULL; the caller frees it. */
enum al_rc al_engine_detokenize(const struct al_engine_model *m, const int32_t *tokens, size_t n,
                                bool special, char **out, size_t *len_out, struct al_err *err);

/* The text of one token as generation streams it (llama_token_to_piece, no
 * leading space removed); special renders special tokens. Written into
 * out[size] NUL-terminated (truncated when longer). Returns the piece's full
 * length, or -1 for a token outside the vocabulary. */
int al_engine_token_piece(const struct al_engine_model *m, int32_t token, bool special, char *out, size_t size);

struct al_engine_chat_msg {
    const char *role;    /* "system", "user", "assistant" */
    const char *content;
};

/* Formats a conversation with the chat template stored in the GGUF. A model
 * without one, or with one llama.cpp cannot interpret without Jinja, uses
 * fallback_tmpl: a template llama.cpp knows by name ("chatml", "llama3",
 * "mistral-v7", ... see llama_chat_builtin_templates) or by its text; NULL
 * means "chatml". add_assistant ends with the opening of the assistant's
 * turn. *out (NUL-terminated) must be NULL; the caller frees it.
 * Errors: AL_ERR_INVALID (no usable template), AL_ERR_LIMIT. */
enum al_rc al_engine_chat_format(const struct al_engine_model *m, const struct al_engine_chat_msg *msgs,
                                 size_t n_msgs, bool add_assistant, const char *fallback_tmpl,
                                 char **out, struct al_err *err);

/* The model's fill-in-the-middle tokens, as llama.cpp reads them from the
 * GGUF (tokenizer.ggml.fim_*_token_id, or found by their text such as
 * "<|fim_prefix|>"); -1 where the model has none. bos is the BOS token when
 * the model asks for one at the start of a prompt, else -1. */
struct al_engine_fim {
    int32_t pre, suf, mid; /* all three: the model can fill in the middle */
    int32_t rep, sep;      /* optional: repository name, file separator */
    int32_t bos;
};
void al_engine_fim_tokens(const struct al_engine_model *m, struct al_engine_fim *out);

/* ---- generation ---- */

#define AL_ENGINE_SEED_RANDOM UINT32_MAX

/* The log-probabilities of one sampled token, for golden recordings and API
 * logprobs. Computed as llama-server does for n_probs: a softmax over the raw
 * logits of the whole vocabulary (before any sampler), natural logarithm.
 * ids/logprobs hold the n most likely tokens, most likely first.
 * With post_sampling (al_engine_gen_params.post_sampling_probs) the figures
 * are instead probabilities (0..1, not logarithms) of the candidates the
 * sampler chain left, as its draw saw them (llama-server's
 * post_sampling_probs): tokens the chain ruled out (probability 0) are not
 * among the n, which may then be fewer than asked for; a greedy chain gives
 * the chosen token 1 and no other. */
struct al_engine_token_probs {
    int32_t token;          /* the sampled token */
    float logprob;          /* its log-probability (with post_sampling: its probability) */
    int n;                  /* entries in ids and logprobs */
    const int32_t *ids;
    const float *logprobs;
    bool post_sampling;     /* the figures are probabilities after the sampler chain */
};

/* Called on the worker thread for every sampled token, an end-of-generation
 * token included, before that token's text goes to al_engine_token_cb. tp is valid
 * during the call only. */
typedef void al_engine_probs_cb(void *ud, const struct al_engine_token_probs *tp);

/* Called on the worker thread as a request reads its prompt (llama-server's
 * return_progress): once when it gets its sequence (processed == cache, the
 * tokens reused from the KV cache), then after each decode step that read
 * some of its prompt, the last with processed == total. ms: since the
 * sequence was assigned. */
typedef void al_engine_progress_cb(void *ud, int total, int cache, int processed, double ms);

struct al_engine_gen_params {
    int max_tokens;          /* < 0: until the sequence's context is full */
    float temperature;       /* <= 0: greedy (deterministic) */
    float top_p;             /* 1: off */
    float min_p;             /* 0: off */
    int top_k;               /* <= 0: off */
    float repeat_penalty;    /* 1: off */
    float frequency_penalty; /* 0: off */
    float presence_penalty;  /* 0: off */
    int penalty_last_n;      /* tokens the penalties look back at; 0: off */
    uint32_t seed;           /* AL_ENGINE_SEED_RANDOM: a fresh one */
    const char *grammar;     /* GBNF with a "root" rule, or NULL */
    const char *const *stop; /* stop strings, excluded from the output */
    int n_stop;              /* up to AL_LIMIT_STOP_STRINGS */
    bool ignore_eos;         /* never sample an end-of-generation token (benchmarks) */
    bool add_bos;            /* add BOS/EOS as the model asks (llama-server does) */
    bool parse_special;      /* read special tokens in the prompt (llama-server does) */
    bool cache_prompt;       /* reuse the KV cache of a prompt prefix an earlier request left;
                              * false computes every prompt token (llama-server's cache_prompt) */
    al_engine_submitted_cb *on_submitted; /* NULL: none; else called once (see admission) */
    void *submitted_ud;      /* passed to on_submitted */
    int n_probs;             /* > 0: top log-probabilities per token, up to AL_LIMIT_TOP_PROBS */
    al_engine_probs_cb *on_probs;   /* with n_probs > 0: receives them; NULL: none are computed */
    void *probs_ud;          /* passed to on_probs */
    bool post_sampling_probs; /* on_probs gets probabilities after the sampler chain
                              * (al_engine_token_probs.post_sampling), not raw log-probabilities */
    bool probs_ids_only;     /* on_probs gets the sampled token's id alone (n 0, logprob 0): no
                              * softmax over the vocabulary is computed (a stream's token ids) */
    /* An applied chat (engine/chat.h) whose tool-call grammar (with its
     * triggers), extra stop strings and preserved tokens (special tokens
     * streamed as text, so the parser sees tool-call markers) apply; NULL:
     * none. Read during al_engine_submit only. With a tool-call grammar,
     * grammar must be NULL. */
    const struct al_engine_chat *chat;
    /* Biases added to the logits of these tokens before sampling (OpenAI's
     * logit_bias; -INFINITY bans a token); NULL: none. Every token must be
     * below the model's n_vocab. Read during al_engine_submit only. */
    const struct al_engine_logit_bias *logit_bias;
    int n_logit_bias;        /* up to AL_LIMIT_LOGIT_BIAS */
    /* Non-NULL: the prompt is these n_prompt_tokens token ids as they are
     * (no BOS added, no text read; the prompt argument is ignored), each
     * checked against the vocabulary (AL_ERR_INVALID). Read during
     * al_engine_submit only. */
    const int32_t *prompt_tokens;
    size_t n_prompt_tokens;
    al_engine_progress_cb *on_progress; /* NULL: none */
    void *progress_ud;
    /* The request's adapters: n_loras entries (ids from al_engine_lora_add
     * or the load's order), every other adapter at scale 0. n_loras < 0:
     * the model's default scales. An unknown id or a scale outside
     * -100..100: AL_ERR_USAGE. Read during al_engine_submit only. */
    const struct al_engine_lora_use *loras;
    int n_loras;
};

struct al_engine_logit_bias {
    int32_t token;
    float bias;
};

/* max_tokens -1, temperature 0.8, top_p 0.95, min_p 0.05, top_k 40,
 * penalties off (1, 0, 0, last_n 64), seed random, no grammar, no stop
 * strings, ignore_eos false, add_bos, parse_special and cache_prompt true,
 * n_probs 0, on_probs NULL, post_sampling_probs and probs_ids_only false, on_submitted NULL, no logit_bias, n_loras -1
 * (the model's default adapter scales). */
struct al_engine_gen_params al_engine_gen_params_default(void);

enum al_engine_finish {
    AL_ENGINE_FINISH_STOP,      /* end of generation token or a stop string */
    AL_ENGINE_FINISH_LENGTH,    /* max_tokens or the sequence's context */
    AL_ENGINE_FINISH_CANCELLED, /* al_engine_cancel(), a callback said false, or shutdown */
    AL_ENGINE_FINISH_ERROR,     /* llama.cpp failed to decode */
};

/* "stop", "length", "cancelled", "error" */
const char *al_engine_finish_name(enum al_engine_finish f);

struct al_engine_gen_result {
    enum al_engine_finish finish;
    int n_prompt;      /* prompt tokens */
    int n_cached;      /* of them, reused from the KV cache (not computed) */
    int n_gen;         /* tokens generated */
    double queue_ms;   /* submit to a sequence being assigned */
    double prompt_ms;  /* sequence assigned to the first token sampled */
    double gen_ms;     /* first token sampled to the end */
    double ttft_ms;    /* submit to the first token sampled */
    const char *error; /* with AL_ENGINE_FINISH_ERROR: what failed; valid during the callback */
    int stop_word;     /* with AL_ENGINE_FINISH_STOP: the stop string that ended it (its index in
                        * params.stop), or -1 (an end-of-generation token) */
};

/* Called with new text: one token's piece, or several once a held-back part
 * turns out not to start a stop string, or none when a piece is an incomplete
 * UTF-8 sequence (text arrives only in whole characters). token is the latest
 * token. Return false to cancel the request. len is never 0. */
typedef bool al_engine_token_cb(void *ud, const char *piece, size_t len, int32_t token);
/* Called once, last; res is valid during the call. */
typedef void al_engine_done_cb(void *ud, const struct al_engine_gen_result *res);

/* Tokenizes prompt, checks p, builds the request's sampler and queues it.
 * on_token may be NULL; on_done may be NULL. With out non-NULL (*out NULL),
 * the caller gets a handle for al_engine_cancel() and must release it with
 * al_engine_req_free(), before or after on_done.
 * Errors: AL_ERR_USAGE (params out of range), AL_ERR_INVALID (grammar does not
 * parse), AL_ERR_LIMIT (prompt over AL_LIMIT_PROMPT_TOKENS or not fitting the
 * context of a sequence, too many stop strings), AL_ERR_BUSY (queue full: try
 * later), AL_ERR_NOMEM. On error no callback is ever called but
 * p->on_submitted, which is called either way. */
enum al_rc al_engine_submit(struct al_engine_model *m, const char *prompt,
                            const struct al_engine_gen_params *p, al_engine_token_cb *on_token,
                            al_engine_done_cb *on_done, void *ud, struct al_engine_req **out,
                            struct al_err *err);

/* Asks the request to stop; any thread, any time while the handle is held
 * and the model is loaded. A queued request leaves the queue, an active one
 * frees its sequence, at the next step of the worker; on_done follows with
 * AL_ENGINE_FINISH_CANCELLED unless it finished before. */
void al_engine_cancel(struct al_engine_req *r);

/* Releases the caller's handle. NULL is a no-op. */
void al_engine_req_free(struct al_engine_req *r);

/* Synchronous convenience: submits, waits, returns the whole text in *text
 * (NUL-terminated, caller frees; must be NULL on entry) and the result in res
 * (may be NULL). A decode error: AL_ERR_INTERNAL. */
enum al_rc al_engine_generate(struct al_engine_model *m, const char *prompt,
                              const struct al_engine_gen_params *p, char **text,
                              struct al_engine_gen_result *res, struct al_err *err);

struct al_engine_stats {
    int n_seq;                 /* sequences */
    int n_active;              /* sequences busy with a request */
    int n_queued;              /* requests waiting for a sequence */
    uint64_t kv_cells_used;    /* tokens held in the KV cache, all sequences */
    uint64_t kv_cells_total;   /* cells of the KV cache (n_seq * n_ctx unless unified) */
    uint64_t tokens_prompt;    /* prompt tokens submitted, cumulative */
    uint64_t tokens_cached;    /* of them reused from the KV cache */
    uint64_t tokens_gen;       /* tokens generated */
    uint64_t requests_done;
    uint64_t decode_calls;     /* llama_decode calls */
    uint64_t lora_switches;    /* steps that changed the context's adapter set */
    uint64_t lora_mixed_steps; /* steps that decoded sequences of different adapter sets together */
};

void al_engine_stats(const struct al_engine_model *m, struct al_engine_stats *out);

/* Whether each sequence is busy with a request now (reading its prompt or
 * generating): busy[i] for i below the count returned, n_seq or cap if
 * fewer. Any thread; takes the scheduler's lock briefly. */
int al_engine_seq_busy(const struct al_engine_model *m, bool *busy, int cap);

/* ---- embeddings ---- */

/* Embeds n texts into out (n * n_embd floats, row i for texts[i]), each
 * vector L2-normalized. Runs on the calling thread; calls on one model are
 * serialized. A text over the context of a sequence: AL_ERR_LIMIT; n over
 * AL_LIMIT_EMBED_INPUTS: AL_ERR_LIMIT; a reranking model: AL_ERR_USAGE.
 * Never stopped early: al_engine_embed_ctl with ctl NULL. */
enum al_rc al_engine_embed(struct al_engine_model *m, const char *const *texts, size_t n,
                           float *out, struct al_err *err);

/* Asked by al_engine_embed_ctl on the calling thread, before each batch of
 * texts and while it waits for another embedding call on the same model to
 * end (at least every AL_ENGINE_EMBED_WAIT_MS): AL_OK goes on; any other
 * code, with its message set in err, stops the call, which returns that code
 * and err as the hook left it. So a server can stop for a deadline, a client
 * that went away or a shutdown, and decide itself what each means. */
typedef enum al_rc al_engine_embed_check_fn(void *ud, struct al_err *err);
#define AL_ENGINE_EMBED_WAIT_MS 50

struct al_engine_embed_ctl {
    al_engine_embed_check_fn *check; /* NULL: never stopped */
    void *ud;                 /* passed to check */
};

/* al_engine_embed, stopped between batches when ctl->check says so (out is
 * then partly written and must not be used). A batch is at most 8 texts and
 * the context of one sequence in tokens, so a stop comes within one batch's
 * decode. *n_tokens (may be NULL) receives the tokens embedded, special
 * tokens included. ctl may be NULL. */
enum al_rc al_engine_embed_ctl(struct al_engine_model *m, const char *const *texts, size_t n,
                               const struct al_engine_embed_ctl *ctl, float *out, size_t *n_tokens,
                               struct al_err *err);

/* ---- reranking ---- */

/* True when m's GGUF declares rank pooling (<arch>.pooling_type 4): a
 * cross-encoder with a classification head, which scores pairs and neither
 * generates nor embeds. */
bool al_engine_model_is_reranker(const struct al_engine_model *m);

/* Scores docs[0..n) against query into scores[0..n) (higher: more relevant),
 * as llama-server's /rerank does on the same model: the pair is the model's
 * "rerank" template, else [BOS] query [EOS] [SEP] document [EOS] with the
 * special tokens the vocabulary adds, and the score is the first output of
 * the classification head, raw. Runs on the calling thread; serialized with
 * al_engine_embed on the same model; stopped between batches by ctl as
 * al_engine_embed_ctl is (scores then must not be used). *n_tokens (may be
 * NULL) receives the tokens scored. A model that is not a reranker:
 * AL_ERR_USAGE; n over AL_LIMIT_RERANK_DOCS or a pair over the context of a
 * sequence: AL_ERR_LIMIT. n == 0 scores nothing. */
enum al_rc al_engine_rerank(struct al_engine_model *m, const char *query, const char *const *docs, size_t n,
                            const struct al_engine_embed_ctl *ctl, float *scores, size_t *n_tokens,
                            struct al_err *err);

#endif
