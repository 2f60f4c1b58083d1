/*
 * embed.c: embeddings on a second llama_context of the same model, created
 * on the first call and kept, with embeddings on and the model's pooling.
 *
 * A model that declares a pooling type (an embedding model) uses its own; a
 * model that declares none (a chat model) gets mean pooling, so that it can
 * embed in a pinch. Texts are packed several to a batch, one sequence each;
 * the cache is cleared before every batch, so texts never see each other.
 * The whole text of a sequence goes into one ubatch (n_ubatch = n_batch =
 * n_ctx), which non-causal models require.
 *
 * Stopping: a call can take minutes (thousands of long texts), so the
 * caller's check (al_embed_ctl) is asked before every batch and while the
 * call waits for the model's embedding lock; the work done so far is
 * dropped. A batch is the unit that cannot be interrupted.
 */
#include "engine/engine_int.h"

#include <math.h>

#include "core/limits.h"
#include "core/log.h"

#define EMBED_SEQS 8 /* sequences packed into one batch */

struct al_engine_embedder {
    struct llama_context *ctx;
    llama_memory_t mem;
    struct llama_batch batch;
    int n_batch;
    int n_embd;
    pthread_mutex_t *lora_mu;   /* the model's: held around llama_decode (engine_int.h) */
};

void al_engine_embedder_free(struct al_engine_embedder *e)
{
    if (!e)
        return;
    if (e->batch.token)
        llama_batch_free(e->batch);
    if (e->ctx)
        llama_free(e->ctx);
    free(e);
}

/* LLAMA_POOLING_TYPE_UNSPECIFIED (the model's own) when the GGUF declares a
 * pooling other than none, else MEAN. */
static enum llama_pooling_type pick_pooling(const struct llama_model *model)
{
    char arch[64], key[128], val[32];
    if (llama_model_meta_val_str(model, "general.architecture", arch, sizeof arch) < 0)
        return LLAMA_POOLING_TYPE_MEAN;
    snprintf(key, sizeof key, "%s.pooling_type", arch);
    if (llama_model_meta_val_str(model, key, val, sizeof val) < 0)
        return LLAMA_POOLING_TYPE_MEAN;
    return strcmp(val, "0") == 0 ? LLAMA_POOLING_TYPE_MEAN : LLAMA_POOLING_TYPE_UNSPECIFIED;
}

static enum al_rc embedder_new(struct al_engine_model *m, struct al_engine_embedder **out, struct al_err *err)
{
    struct al_engine_embedder *e = calloc(1, sizeof *e);
    if (!e)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory creating an embeddings context");
    enum al_rc rc = AL_OK;
    e->n_batch = m->n_ctx_seq;
    e->lora_mu = &m->lora_mu;
    e->n_embd = llama_model_n_embd_out(m->model);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)e->n_batch;
    cp.n_batch = (uint32_t)e->n_batch;
    cp.n_ubatch = (uint32_t)e->n_batch;
    cp.n_seq_max = EMBED_SEQS;
    cp.kv_unified = true; /* the texts of a batch share the n_ctx cells */
    cp.n_threads = m->params.threads;
    cp.n_threads_batch = m->params.threads;
    cp.embeddings = true;
    cp.pooling_type = pick_pooling(m->model);
    cp.no_perf = true;
    al_engine_llama_clear_error();
    e->ctx = llama_init_from_model(m->model, cp);
    if (!e->ctx) {
        const char *why = al_engine_llama_last_error();
        rc = al_err_set(err, AL_ERR_INTERNAL, "cannot create an embeddings context%s%s", *why ? ": " : "", why);
        goto fail;
    }
    if ((rc = al_engine_apply_loras(m, e->ctx, err)))
        goto fail;
    enum llama_pooling_type pt = llama_pooling_type(e->ctx);
    if (pt == LLAMA_POOLING_TYPE_RANK || pt == LLAMA_POOLING_TYPE_NONE) {
        rc = al_err_set(err, AL_ERR_USAGE, "the model's pooling (%s) does not give one vector per text",
                        pt == LLAMA_POOLING_TYPE_RANK ? "rank: a reranker" : "none");
        goto fail;
    }
    al_debug("embeddings context: pooling %d, %d dimensions", (int)pt, e->n_embd);
    e->mem = llama_get_memory(e->ctx);
    e->batch = llama_batch_init(e->n_batch, 0, 1);
    if (!e->batch.token) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory creating an embeddings batch");
        goto fail;
    }
    *out = e;
    return AL_OK;
fail:
    al_engine_embedder_free(e);
    return rc;
}

static void normalize(const float *in, float *out, int n)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)in[i] * in[i];
    float scale = sum > 0 ? (float)(1.0 / sqrt(sum)) : 0.0f;
    for (int i = 0; i < n; i++)
        out[i] = in[i] * scale;
}

/* Decodes the texts first..first+n_seqs-1 already in the batch. */
static enum al_rc run_batch(struct al_engine_embedder *e, int n_seqs, size_t first, float *out, struct al_err *err)
{
    if (e->mem)
        llama_memory_clear(e->mem, true);
    pthread_mutex_lock(e->lora_mu);
    int ret = llama_decode(e->ctx, e->batch);
    pthread_mutex_unlock(e->lora_mu);
    if (ret != 0)
        return al_err_set(err, AL_ERR_INTERNAL, "llama_decode failed (%d) computing embeddings", ret);
    for (int s = 0; s < n_seqs; s++) {
        const float *v = llama_get_embeddings_seq(e->ctx, s);
        if (!v)
            return al_err_set(err, AL_ERR_INTERNAL, "llama.cpp gave no embedding for text %zu", first + (size_t)s);
        normalize(v, out + (first + (size_t)s) * (size_t)e->n_embd, e->n_embd);
    }
    return AL_OK;
}

enum al_rc al_engine_embed_check(const struct al_engine_embed_ctl *ctl, struct al_err *err)
{
    if (!ctl || !ctl->check)
        return AL_OK;
    enum al_rc rc = ctl->check(ctl->ud, err);
    if (rc && err && err->rc == AL_OK) /* a hook that said stop without saying why */
        al_err_set(err, rc, "embedding stopped by its caller");
    return rc;
}

/* Takes m->embed_lock. Another call may hold it for a long request: the
 * wait is in slices of AL_ENGINE_EMBED_WAIT_MS, each followed by the
 * caller's check, so a request whose client went away or whose time is up
 * does not queue behind it. */
enum al_rc al_engine_embed_lock(struct al_engine_model *m, const struct al_engine_embed_ctl *ctl, struct al_err *err)
{
    enum al_rc rc = al_engine_embed_check(ctl, err);
    if (rc)
        return rc;
    if (!ctl || !ctl->check) {
        pthread_mutex_lock(&m->embed_lock);
        return AL_OK;
    }
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts); /* pthread_mutex_timedlock's clock */
        ts.tv_nsec += AL_ENGINE_EMBED_WAIT_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        int e = pthread_mutex_timedlock(&m->embed_lock, &ts);
        if (e == 0)
            return AL_OK;
        if (e != ETIMEDOUT)
            return al_err_set(err, AL_ERR_INTERNAL, "cannot take the embeddings lock: %s", strerror(e));
        if ((rc = al_engine_embed_check(ctl, err)))
            return rc;
    }
}

/* Puts text i into the batch as sequence n_seqs, decoding the batch first
 * when it is full. Under m->embed_lock. */
static enum al_rc add_text(struct al_engine_model *m, struct al_engine_embedder *e, const char *t, size_t i,
                           const struct al_engine_embed_ctl *ctl, size_t *first, int *n_seqs, float *out,
                           size_t *n_tokens, struct al_err *err)
{
    llama_token *toks = NULL;
    int nt = 0;
    enum al_rc rc = al_engine_tokenize_int(m->vocab, t, strlen(t), true, true, &toks, &nt, err);
    if (rc)
        return rc;
    if (nt == 0 || nt > e->n_batch) {
        rc = nt == 0 ? al_err_set(err, AL_ERR_INVALID, "text %zu has no tokens", i)
                     : al_err_set(err, AL_ERR_LIMIT, "text %zu has %d tokens, over the context of %d", i, nt,
                                  e->n_batch);
        free(toks);
        return rc;
    }
    if (*n_seqs == EMBED_SEQS || e->batch.n_tokens + nt > e->n_batch) {
        rc = al_engine_embed_check(ctl, err);
        if (!rc)
            rc = run_batch(e, *n_seqs, *first, out, err);
        *first = i;
        *n_seqs = 0;
        e->batch.n_tokens = 0;
    }
    for (int j = 0; rc == AL_OK && j < nt; j++) {
        int k = e->batch.n_tokens++;
        e->batch.token[k] = toks[j];
        e->batch.pos[k] = j;
        e->batch.n_seq_id[k] = 1;
        e->batch.seq_id[k][0] = *n_seqs;
        e->batch.logits[k] = true;
    }
    (*n_seqs)++;
    *n_tokens += (size_t)nt;
    free(toks);
    return rc;
}

enum al_rc al_engine_embed_ctl(struct al_engine_model *m, const char *const *texts, size_t n,
                               const struct al_engine_embed_ctl *ctl, float *out, size_t *n_tokens,
                               struct al_err *err)
{
    size_t tokens = 0;
    if (n_tokens)
        *n_tokens = 0;
    if (!m || (n > 0 && (!texts || !out)))
        return al_err_set(err, AL_ERR_USAGE, "al_engine_embed: bad arguments");
    if (n > AL_LIMIT_EMBED_INPUTS)
        return al_err_set(err, AL_ERR_LIMIT, "%zu texts is over the cap of %d (AL_LIMIT_EMBED_INPUTS)", n,
                          AL_LIMIT_EMBED_INPUTS);
    enum al_rc rc = al_engine_embed_lock(m, ctl, err);
    if (rc)
        return rc;
    if (!m->embedder)
        rc = embedder_new(m, &m->embedder, err);
    struct al_engine_embedder *e = m->embedder;
    size_t first = 0; /* the first text of the batch being filled */
    int n_seqs = 0;
    if (e)
        e->batch.n_tokens = 0;
    for (size_t i = 0; rc == AL_OK && i < n; i++)
        rc = add_text(m, e, texts[i] ? texts[i] : "", i, ctl, &first, &n_seqs, out, &tokens, err);
    if (rc == AL_OK && n_seqs > 0)
        rc = al_engine_embed_check(ctl, err);
    if (rc == AL_OK && n_seqs > 0)
        rc = run_batch(e, n_seqs, first, out, err);
    pthread_mutex_unlock(&m->embed_lock);
    if (rc == AL_OK && n_tokens)
        *n_tokens = tokens;
    return rc;
}

enum al_rc al_engine_embed(struct al_engine_model *m, const char *const *texts, size_t n,
                           float *out, struct al_err *err)
{
    return al_engine_embed_ctl(m, texts, n, NULL, out, NULL, err);
}
