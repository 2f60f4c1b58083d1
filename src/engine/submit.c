/*
 * submit.c: a request's way into the scheduler (sched.c): its checks, its
 * tokens, sampler chain, stop strings and adapter set, the bounded queue;
 * the scheduler's statistics and which of its sequences are busy.
 */
#include "engine/sched_int.h"

#include "core/limits.h"
#include "engine/chat.h"

/* ---- submitting ---- */

/* al_engine_submit less the refusal's on_submitted: *submitted is called
 * and set NULL under the lock as the request is queued, so that the worker
 * (and its admission hook) never sees a queued request its host still
 * counts as on its way. */
/* The request's stop strings (its own and its chat format's) and the
 * tokens its chat streams as text although special. */
static enum al_rc stops_and_chat(struct al_engine_req *r, const struct al_engine_gen_params *p, struct al_err *err)
{
    int n_extra = 0, n_pres = 0;
    const char *const *extra = p->chat ? al_engine_chat_stops(p->chat, &n_extra) : NULL;
    const llama_token *pres = p->chat ? al_engine_chat_preserved(p->chat, &n_pres) : NULL;
    if (n_pres > 0) {
        if (!(r->preserved = malloc((size_t)n_pres * sizeof *pres)))
            return al_err_set(err, AL_ERR_NOMEM, "out of memory submitting a request");
        memcpy(r->preserved, pres, (size_t)n_pres * sizeof *pres);
        r->n_preserved = n_pres;
    }
    if (n_extra == 0)
        return al_engine_stops_init(&r->stops, p->stop, p->n_stop, err);
    if (p->n_stop + n_extra > AL_LIMIT_STOP_STRINGS + 8)
        return al_err_set(err, AL_ERR_LIMIT, "too many stop strings with the chat format's own");
    const char *all[AL_LIMIT_STOP_STRINGS + 8];
    int n = 0;
    for (int i = 0; i < p->n_stop; i++)
        all[n++] = p->stop[i];
    for (int i = 0; i < n_extra; i++)
        all[n++] = extra[i];
    return al_engine_stops_init(&r->stops, all, n, err);
}

/* The scale of every adapter of m for a request asking p->loras (or the
 * defaults), into out[AL_LIMIT_LORAS]; zeros as +0 so sets compare bytewise. */
static enum al_rc lora_set(struct al_engine_model *m, const struct al_engine_gen_params *p, float *out,
                           struct al_err *err)
{
    memset(out, 0, AL_LIMIT_LORAS * sizeof *out);
    pthread_mutex_lock(&m->lora_mu);
    int n = m->n_loras;
    if (p->n_loras < 0)
        memcpy(out, m->lora_scales, (size_t)n * sizeof *out);
    pthread_mutex_unlock(&m->lora_mu);
    if (p->n_loras > AL_LIMIT_LORAS)
        return al_err_set(err, AL_ERR_LIMIT, "%d LoRA adapters is over the cap of %d (AL_LIMIT_LORAS)", p->n_loras,
                          AL_LIMIT_LORAS);
    for (int i = 0; i < p->n_loras; i++) {
        const struct al_engine_lora_use *u = &p->loras[i];
        if (u->id < 0 || u->id >= n)
            return al_err_set(err, AL_ERR_USAGE, "no LoRA adapter %d in the model (%d loaded)", u->id, n);
        if (!(u->scale >= -100.0f && u->scale <= 100.0f))
            return al_err_set(err, AL_ERR_USAGE, "a LoRA scale of %g is outside -100..100", (double)u->scale);
        out[u->id] = u->scale;
    }
    for (int i = 0; i < AL_LIMIT_LORAS; i++)
        if (out[i] == 0.0f)
            out[i] = 0.0f;
    return AL_OK;
}

static enum al_rc submit(struct al_engine_model *m, const char *prompt, const struct al_engine_gen_params *p,
                         al_engine_token_cb *on_token, al_engine_done_cb *on_done, void *ud, struct al_engine_req **out,
                         al_engine_submitted_cb **submitted, struct al_err *err)
{
    if (!m || !prompt || (out && *out))
        return al_err_set(err, AL_ERR_USAGE, "al_engine_submit: bad arguments");
    struct al_engine_gen_params dp = al_engine_gen_params_default();
    if (!p)
        p = &dp;
    if (al_engine_model_is_reranker(m))
        return al_err_set(err, AL_ERR_USAGE, "the model is a reranker: it scores (query, document) pairs "
                                             "and cannot generate");
    enum al_rc rc = al_engine_sample_check(p, err);
    if (rc)
        return rc;
    struct al_engine_sched *s = m->sched;
    struct al_engine_req *r = calloc(1, sizeof *r);
    if (!r)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory submitting a request");
    atomic_init(&r->refs, 1);
    atomic_init(&r->cancel, false);
    r->s = s;
    r->t_submit = al_engine_now_ms();
    r->stop_word = -1;
    r->max_tokens = p->max_tokens;
    r->cache_prompt = p->cache_prompt;
    r->on_token = on_token;
    r->on_done = on_done;
    r->ud = ud;
    if (p->n_probs > 0 && p->on_probs) {
        r->n_probs = p->n_probs;
        r->on_probs = p->on_probs;
        r->probs_ud = p->probs_ud;
        r->post_sampling = p->post_sampling_probs && !p->probs_ids_only;
        r->ids_only = p->probs_ids_only;
        r->greedy = p->temperature <= 0.0f;
    }
    r->on_progress = p->on_progress;
    r->progress_ud = p->progress_ud;
    rc = lora_set(m, p, r->lora, err);
    if (rc)
        goto fail;
    if (p->prompt_tokens)
        rc = al_engine_tokens_copy_int(m->vocab, p->prompt_tokens, p->n_prompt_tokens, &r->prompt, &r->n_prompt, err);
    else
        rc = al_engine_tokenize_int(m->vocab, prompt, strlen(prompt), p->add_bos, p->parse_special, &r->prompt,
                                    &r->n_prompt, err);
    if (rc)
        goto fail;
    if (r->n_prompt == 0) {
        rc = al_err_set(err, AL_ERR_INVALID, "the prompt has no tokens");
        goto fail;
    }
    if (r->n_prompt >= s->n_ctx_seq) {
        rc = al_err_set(err, AL_ERR_LIMIT, "a prompt of %d tokens does not fit the context of %d tokens per sequence",
                        r->n_prompt, s->n_ctx_seq);
        goto fail;
    }
    rc = al_engine_sample_chain_new(m->vocab, p, &r->smpl, err);
    if (rc)
        goto fail;
    if (al_engine_sample_plain_greedy(p)) {
        rc = al_engine_sample_banned(m->vocab, p, &r->banned, &r->n_banned, err);
        if (rc)
            goto fail;
        r->greedy_fast = true;
    }
    rc = stops_and_chat(r, p, err);
    if (rc)
        goto fail;

    pthread_mutex_lock(&s->lock);
    if (s->quit) {
        pthread_mutex_unlock(&s->lock);
        rc = al_err_set(err, AL_ERR_BUSY, "the model is being unloaded");
        goto fail;
    }
    if (s->n_queued >= s->queue_max) {
        pthread_mutex_unlock(&s->lock);
        rc = al_err_set(err, AL_ERR_BUSY, "%d requests are waiting already (the queue's bound): try again later",
                        s->n_queued);
        goto fail;
    }
    if (out)
        atomic_fetch_add(&r->refs, 1);
    /* Once queued, the worker may finish and free r (when the caller keeps
     * no handle): read what we need first. */
    int n_prompt = r->n_prompt;
    if (s->q_tail)
        s->q_tail->next = r;
    else
        s->q_head = r;
    s->q_tail = r;
    s->n_queued++;
    if (*submitted)
        (*submitted)(p->submitted_ud);
    *submitted = NULL;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add(&s->tokens_prompt, (uint64_t)n_prompt);
    if (out)
        *out = r;
    return AL_OK;
fail:
    al_engine_req_unref(r);
    return rc;
}

enum al_rc al_engine_submit(struct al_engine_model *m, const char *prompt, const struct al_engine_gen_params *p,
                            al_engine_token_cb *on_token, al_engine_done_cb *on_done, void *ud,
                            struct al_engine_req **out, struct al_err *err)
{
    al_engine_submitted_cb *submitted = p ? p->on_submitted : NULL;
    enum al_rc rc = submit(m, prompt, p, on_token, on_done, ud, out, &submitted, err);
    if (submitted)
        submitted(p->submitted_ud); /* refused before it was queued */
    return rc;
}

void al_engine_stats(const struct al_engine_model *m, struct al_engine_stats *out)
{
    struct al_engine_sched *s = m->sched;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->lock);
    out->n_active = s->n_active;
    out->n_queued = s->n_queued;
    pthread_mutex_unlock(&s->lock);
    out->n_seq = s->n_seq;
    out->kv_cells_used = atomic_load(&s->kv_used);
    out->kv_cells_total = s->unified ? (uint64_t)s->n_cells : (uint64_t)s->n_seq * (uint64_t)s->n_ctx_seq;
    out->tokens_prompt = atomic_load(&s->tokens_prompt);
    out->tokens_cached = atomic_load(&s->tokens_cached);
    out->tokens_gen = atomic_load(&s->tokens_gen);
    out->requests_done = atomic_load(&s->requests_done);
    out->decode_calls = atomic_load(&s->decode_calls);
    out->lora_switches = atomic_load(&s->lora_switches);
    out->lora_mixed_steps = atomic_load(&s->lora_mixed_steps);
}

int al_engine_seq_busy(const struct al_engine_model *m, bool *busy, int cap)
{
    struct al_engine_sched *s = m->sched;
    int n = s->n_seq < cap ? s->n_seq : cap;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < n; i++)
        busy[i] = s->slots[i].req != NULL;
    pthread_mutex_unlock(&s->lock);
    return n;
}
