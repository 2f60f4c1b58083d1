/*
 * models.h: the model manager behind `airlock serve`. It turns a reference
 * ("name", "name:tag", "name@sha256:<hex>") into a loaded engine model:
 * resolved through the index, loaded with the engine's verified load, kept
 * while in use, shared by every request for the same version.
 *
 * Several models may be loaded at once under a memory budget (bytes of weight
 * files and KV caches, estimated from the GGUF header before a load) and a
 * count; loading one more first evicts the least recently used idle ones. A model not named at start ("pinned") is unloaded after it has
 * been idle for keep_alive seconds. A lease holds a model loaded; the last
 * release of a retired version frees it.
 *
 * References are resolved once and remembered. al_serve_reload() forgets
 * them and resolves again, so a version activated since (`airlock activate`,
 * `airlock rollback`) is served from then on; versions no reference points at
 * any more are retired: requests in flight finish on them, then they are freed.
 *
 * A LoRA adapter version ('airlock add --base') has an entry of its own that
 * holds a lease on its base's entry (the version with the weights it is
 * bound to, loaded once) and shares its engine model: the adapter is loaded
 * into that model (al_engine_lora_add) and requests through the adapter's
 * name apply it at scale 1 (al_serve_lease_lora_id), while requests through
 * the base's name, or naming other adapters by id (al_serve_adapters), run
 * on the same model. An adapter's entry counts only its own bytes; its base
 * stays loaded while it is.
 *
 * Thread-safe. The index is used under the manager's lock only.
 */
#ifndef AL_SERVE_MODELS_H
#define AL_SERVE_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "engine/engine.h"
#include "serve/aliases.h"

struct al_serve_models;
struct al_serve_lease;

/* Settings of one model; -1 (or for the booleans -1) means "inherit". Every
 * model's sequences (n_seq, AL_SERVE_DEFAULT_PARALLEL unless set) share one
 * KV cache of ctx cells, as llama-server's slots share theirs; ctx_seq caps
 * the cells one request holds (0: all of them; llama-server's
 * --kv-unified-per-slot). */
struct al_serve_settings {
    int threads, ctx, batch, n_seq, queue, gpu_layers, ctx_seq;
    int mmap, mlock; /* -1, 0, 1 */
};

#define AL_SERVE_SETTINGS_UNSET {-1, -1, -1, -1, -1, -1, -1, -1, -1}

#define AL_SERVE_DEFAULT_PARALLEL 4 /* sequences of a model, as llama-server's slots */

struct al_serve_override {
    char name[129];                  /* a model name (not a ref) */
    struct al_serve_settings s;
};

#define AL_SERVE_MAX_OVERRIDES 32
#define AL_SERVE_MAX_PINNED    16

struct al_serve_config {
    struct al_serve_settings defaults;   /* unset fields: the engine's defaults */
    struct al_serve_override overrides[AL_SERVE_MAX_OVERRIDES];
    int n_overrides;
    char pinned[AL_SERVE_MAX_PINNED][336]; /* refs loaded at start, never idle-unloaded */
    int n_pinned;
    uint64_t budget_bytes;               /* 0: no budget */
    int max_loaded;                      /* 0: no cap */
    double keep_alive_s;                 /* < 0: forever */
    char chat_fallback[64];              /* builtin format for models without a template; "" = chatml */
    struct al_serve_alias aliases[AL_SERVE_MAX_ALIASES]; /* serve --alias, --tags (aliases.h) */
    int n_aliases;
    const char *chat_template;           /* Jinja for every model, over its own (serve --chat-template
                                            TEXT or --chat-template-file); NULL: none. Borrowed for the
                                            call of al_serve_new/al_serve_reload: the manager copies it */
};

/* Everything unset, no budget, max_loaded 0, keep_alive 300 s, "chatml". */
void al_serve_config_default(struct al_serve_config *c);

/* Opens the store at home (not created) and starts the idle reaper. Pinned
 * models are not loaded yet: call al_serve_preload(). Refuses (AL_ERR_USAGE)
 * aliases that stand for nothing, or that are the name of another model in
 * the store (a request for it would be ambiguous); al_serve_reload too. */
enum al_rc al_serve_new(const char *home, const struct al_serve_config *cfg, struct al_serve_models **out,
                         struct al_err *err);
/* Frees every model (requests in flight finish as cancelled). NULL: no-op. */
void al_serve_free(struct al_serve_models *mm);

/* The reference name stands for when it is an alias (aliases.h), else name
 * itself, copied into out: what a caller checks an API key against before
 * it acquires by that reference (acquire, exists and versions also take
 * aliases). AL_ERR_LIMIT when out is too small. */
enum al_rc al_serve_unalias(struct al_serve_models *mm, const char *name, char *out, size_t size, struct al_err *err);

/* The aliases and tags the operator gave the model called name (its
 * entry's reference names that model), copied into *out; false when none. */
bool al_serve_alias_of(struct al_serve_models *mm, const char *name, struct al_serve_alias *out);

/* Loads the pinned models. Errors of the first failing one. */
enum al_rc al_serve_preload(struct al_serve_models *mm, struct al_err *err);

/* True while a pinned model is being loaded or has not been loaded yet. */
bool al_serve_loading(struct al_serve_models *mm);

/* Applies a new configuration, forgets every resolved reference, resolves the
 * pinned ones again and loads what changed. In-flight requests keep their
 * leases on the old versions. */
enum al_rc al_serve_reload(struct al_serve_models *mm, const struct al_serve_config *cfg, struct al_err *err);

/* Resolves ref (NULL or "": the first pinned ref) and returns a lease on its
 * loaded model, loading it when needed. Errors: AL_ERR_NOT_FOUND (unknown
 * ref), AL_ERR_BUSY (the budget is taken by models in use), and those of
 * al_engine_model_load(). *out must be NULL. */
enum al_rc al_serve_acquire(struct al_serve_models *mm, const char *ref, struct al_serve_lease **out,
                             struct al_err *err);
/* Gives the lease back. NULL is a no-op. */
void al_serve_release(struct al_serve_lease *l);

/* The reference a request that names no model is served by (the first pinned
 * ref), copied into out, so that a caller can check it before acquiring it by
 * that name (a SIGHUP may change the default in between). AL_ERR_USAGE when
 * there is no default model, AL_ERR_LIMIT when out is too small. */
enum al_rc al_serve_default_ref(struct al_serve_models *mm, char *out, size_t size, struct al_err *err);

/* Sets the admission hook (engine.h) of every model loaded and to be loaded;
 * NULL: steps start at once. Once it returns no model calls the old hook
 * again, so its ud may be freed. The server sets its own (server/arrivals.h). */
void al_serve_set_admit(struct al_serve_models *mm, al_engine_admit_fn *admit, void *admit_ud);

/* Valid while the lease is held. */
struct al_engine_model *al_serve_lease_engine(const struct al_serve_lease *l);
const char *al_serve_lease_name(const struct al_serve_lease *l);     /* model name */
const char *al_serve_lease_digest(const struct al_serve_lease *l);   /* the weight blob's digest */
const char *al_serve_lease_chat_fallback(const struct al_serve_lease *l);

/* With an adapter version's lease: its LoRA id in the engine model (which is
 * its base's) and its blob's digest; -1 and "" for a model. */
int al_serve_lease_lora_id(const struct al_serve_lease *l);
const char *al_serve_lease_lora_digest(const struct al_serve_lease *l);

/* An adapter version bound to a base's weights, as the store lists it. */
struct al_serve_adapter {
    char name[129];              /* its model name */
    char tags[512];              /* comma-separated */
    char manifest[72];
    char digest[72];             /* the adapter blob's "sha256:<hex>" */
    char base[72];               /* the weights digest it is bound to */
    char path[4096];             /* the blob */
};

/* The adapter versions bound to the weights digest (al_serve_lease_digest),
 * oldest first: their index is the id of llama-server's /lora-adapters and
 * of a request's "lora". *rows malloc'd (NULL when none; caller frees). */
enum al_rc al_serve_adapters(struct al_serve_models *mm, const char *digest, struct al_serve_adapter **rows,
                             size_t *n, struct al_err *err);

/* Loads a (once per model) into the lease's engine model; *id is its id
 * there (al_engine_gen_params.loras). AL_ERR_INVALID when a is bound to
 * other weights than the lease's; the errors of al_engine_lora_add. */
enum al_rc al_serve_adapter_load(struct al_serve_lease *l, const struct al_serve_adapter *a, int *id,
                                 struct al_err *err);

/* Calls fn for every loaded model, under the manager's lock (fn must be quick
 * and must not call back into the manager). */
struct al_serve_loaded {
    const char *name, *manifest, *digest;
    const struct al_engine_model_info *info;
    struct al_engine_model *engine;
    int leases;
    bool pinned, retired;
    double idle_s;
    uint64_t mem_bytes; /* what it counts against the budget: tensors and KV cache */
    double keep_alive_s; /* unloaded after idle this long unless pinned; < 0: never */
    const char *base;    /* an adapter version: its base's name (engine and info are the base's); NULL */
};
typedef void al_serve_loaded_fn(void *ud, const struct al_serve_loaded *m);
void al_serve_foreach_loaded(struct al_serve_models *mm, al_serve_loaded_fn *fn, void *ud);

/* The names of every model with an active version, for /v1/models: a
 * malloc'd array of malloc'd strings (free with al_serve_names_free). */
enum al_rc al_serve_names(struct al_serve_models *mm, char ***names, size_t *n, struct al_err *err);
void al_serve_names_free(char **names, size_t n);

/* A version that can be served, as the index and its GGUF header say,
 * without loading it (Ollama's /api/tags and /api/show). The header fields
 * are 0 or "" when the weight file is not a GGUF that can be read. */
struct al_serve_version {
    char name[129];             /* model name (AL_LIMIT_NAME) */
    char tags[512];             /* comma-separated, "" when none */
    char manifest[72];          /* "sha256:<hex>" of its manifest */
    char created[32];           /* ISO 8601 UTC */
    uint64_t size;              /* bytes of its files */
    char arch[64], file_type[32], license[256];
    uint64_t n_params;
    uint32_t context_length, embedding_length, block_count, head_count, vocab_size;
    bool has_chat_template;
};

/* The active version of every model (ref NULL), or the one version ref
 * resolves to: *rows malloc'd (caller frees), *n entries. Errors:
 * AL_ERR_NOT_FOUND (unknown ref), those of the index, AL_ERR_NOMEM. */
enum al_rc al_serve_versions(struct al_serve_models *mm, const char *ref, struct al_serve_version **rows, size_t *n,
                             struct al_err *err);

/* Resolves a ref without loading (for /v1/models/{id}): AL_ERR_NOT_FOUND or AL_OK. */
enum al_rc al_serve_exists(struct al_serve_models *mm, const char *ref, struct al_err *err);

#endif
