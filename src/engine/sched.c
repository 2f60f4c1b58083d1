/*
 * sched.c: one scheduler per loaded model. One llama_context with n_seq
 * sequences (slots), their KV cache each its own or one shared (kv_unified,
 * batch.c), and one worker thread running continuous batching.
 *
 * Each step of the worker:
 *   0. under the lock, when the step would start from idle: ask the admission
 *      hook, if any, how long to wait for more requests (see engine.h);
 *   1. under the lock: move queued requests into free slots (the slot whose
 *      KV cache shares the longest prefix with the prompt, else the least
 *      recently used one), pick up a quit request;
 *   2. without the lock: finish cancelled requests; pick the step's adapter
 *      set and build one batch with the pending token of every generating
 *      slot of that set, then prompt chunks of its slots still reading their
 *      prompt, up to n_batch tokens, within the free cells of a shared cache
 *      (batch.c); switch the context's adapters if the set changed;
 *      llama_decode it;
 *   3. sample every slot whose logits were requested, stream its text through
 *      the stop-string filter, and finish it on EOS, a stop string, max_tokens
 *      or a full context.
 *
 * Invariants:
 *   - slot->cache[0..n_cache) are exactly the tokens of that sequence in the
 *     KV cache, at positions 0..n_cache-1. A free slot keeps them, for reuse.
 *   - a generating slot has one sampled token (slot->next) not yet decoded.
 *   - only the worker touches slots, the llama_context and the batch; the lock
 *     guards the queue and the counters that stats() reads, and is never held
 *     during llama_decode or a callback.
 *   - every request gets exactly one on_done, always from the worker thread.
 *
 * LoRA adapters: with airlock's llama.cpp patch a step decodes every busy
 * slot, each sequence at its request's scales (apply_lora_seq); the graph is
 * rebuilt only when the adapters in use change. Without it llama.cpp applies
 * them to the whole context, so a step decodes only slots whose requests
 * want the same adapter set (the same scale for every adapter of the model);
 * batch.c picks the set, the worker switches the context's adapters only
 * when the set changes (apply_lora).
 * A slot's cached prefix is reused only by a request of the set that
 * computed it (kv_lora).
 *
 * Per token nothing is allocated: the batch is made once, each slot's pending
 * text buffer grows only when a stop string needs it.
 */
#include "engine/sched_int.h"

#include "core/limits.h"
#include "core/log.h"
#include "engine/chat.h"

void al_engine_req_unref(struct al_engine_req *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->smpl)
        llama_sampler_free(r->smpl);
    free(r->banned);
    free(r->preserved);
    al_engine_stops_release(&r->stops);
    free(r->prompt);
    free(r);
}

/* Only a flag and a counter: the worker never sleeps while a request is
 * queued or active, so it sees both at its next step. */
void al_engine_cancel(struct al_engine_req *r)
{
    if (!r || atomic_exchange(&r->cancel, true))
        return;
    atomic_fetch_add(&r->s->cancels, 1);
}

void al_engine_req_free(struct al_engine_req *r) { al_engine_req_unref(r); }

/* ---- finishing ---- */

static void finish_req(struct al_engine_sched *s, struct al_engine_req *r, struct al_engine_slot *sl, enum al_engine_finish why,
                       const char *error)
{
    double now = al_engine_now_ms();
    struct al_engine_gen_result res = {.finish = why, .n_prompt = r->n_prompt, .error = error,
                                       .stop_word = why == AL_ENGINE_FINISH_STOP ? r->stop_word : -1};
    if (sl) {
        res.n_cached = sl->n_cached;
        res.n_gen = sl->n_gen;
        double t_first = sl->t_first > 0 ? sl->t_first : now;
        res.queue_ms = sl->t_start - r->t_submit;
        res.prompt_ms = t_first - sl->t_start;
        res.gen_ms = now - t_first;
        res.ttft_ms = t_first - r->t_submit;
    } else {
        res.queue_ms = now - r->t_submit;
        res.ttft_ms = res.queue_ms;
    }
    atomic_fetch_add(&s->requests_done, 1);
    if (r->on_done)
        r->on_done(r->ud, &res);
    al_engine_req_unref(r);
}

/* Emits pending[0..n) and keeps the rest. False when the callback cancels. */
static bool emit(struct al_engine_slot *sl, size_t n, llama_token tok)
{
    bool go = true;
    if (n > 0 && sl->req->on_token)
        go = sl->req->on_token(sl->req->ud, sl->pending, n, tok);
    memmove(sl->pending, sl->pending + n, sl->n_pending - n);
    sl->n_pending -= n;
    return go;
}

void al_engine_slot_finish(struct al_engine_sched *s, struct al_engine_slot *sl, enum al_engine_finish why,
                           const char *error)
{
    struct al_engine_req *r = sl->req;
    if ((why == AL_ENGINE_FINISH_STOP || why == AL_ENGINE_FINISH_LENGTH) && sl->n_pending > 0)
        emit(sl, sl->n_pending, sl->next); /* no stop string came: what was held back is text */
    sl->n_pending = 0;
    sl->generating = false;
    sl->last_used = ++s->clock;
    if (why == AL_ENGINE_FINISH_STOP || why == AL_ENGINE_FINISH_LENGTH)
        s->step_finished++;
    /* Free before on_done, so that stats read from on_done's waiter agree.
     * sl->req is written under the lock (read so by al_engine_seq_busy). */
    pthread_mutex_lock(&s->lock);
    sl->req = NULL;
    s->n_active--;
    pthread_mutex_unlock(&s->lock);
    finish_req(s, r, sl, why, error);
}

/* ---- assignment and prefix reuse ---- */

static int common_prefix(const llama_token *a, int na, const llama_token *b, int nb)
{
    int n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* The free slot for r: the longest shared prefix, ties to the least recently
 * used, so that a slot holding a useful prefix is not overwritten needlessly. */
static struct al_engine_slot *pick_slot(struct al_engine_sched *s, const struct al_engine_req *r)
{
    struct al_engine_slot *best = NULL;
    int best_lcp = -1;
    for (int i = 0; i < s->n_seq; i++) {
        struct al_engine_slot *sl = &s->slots[i];
        if (sl->req)
            continue;
        int lcp = al_engine_same_lora(sl->kv_lora, r->lora)
                      ? common_prefix(sl->cache, sl->n_cache, r->prompt, r->n_prompt) : 0;
        if (lcp > best_lcp || (lcp == best_lcp && sl->last_used < best->last_used)) {
            best = sl;
            best_lcp = lcp;
        }
    }
    return best;
}

/* Keeps the shared prefix of the slot's cache and drops the rest. At least
 * one prompt token is always decoded again: its logits start the answer. */
static void slot_start(struct al_engine_sched *s, struct al_engine_slot *sl)
{
    struct al_engine_req *r = sl->req;
    int keep = r->cache_prompt && al_engine_same_lora(sl->kv_lora, r->lora)
                   ? common_prefix(sl->cache, sl->n_cache, r->prompt, r->n_prompt) : 0;
    memcpy(sl->kv_lora, r->lora, sizeof sl->kv_lora);
    if (keep >= r->n_prompt)
        keep = r->n_prompt - 1;
    if (keep < sl->n_cache && !llama_memory_seq_rm(s->mem, sl->id, keep, -1)) {
        llama_memory_seq_rm(s->mem, sl->id, -1, -1);
        keep = 0;
    }
    sl->n_cache = keep;
    sl->n_fed = keep;
    sl->n_cached = keep;
    sl->n_gen = 0;
    sl->n_pending = 0;
    sl->generating = false;
    sl->t_start = al_engine_now_ms();
    sl->t_first = 0;
    if (r->on_progress)
        r->on_progress(r->progress_ud, r->n_prompt, keep, keep, 0);
    sl->order = ++s->n_assigned;
    atomic_fetch_add(&s->tokens_cached, (uint64_t)keep);
}

/* ---- one step ---- */

static int cmp_token(const void *a, const void *b)
{
    llama_token x = *(const llama_token *)a, y = *(const llama_token *)b;
    return (x > y) - (x < y);
}

static const char *token_text(struct al_engine_sched *s, const struct al_engine_req *r, llama_token tok, int *len)
{
    bool special = r->n_preserved > 0 &&
                   bsearch(&tok, r->preserved, (size_t)r->n_preserved, sizeof tok, cmp_token) != NULL;
    int n = llama_token_to_piece(s->m->vocab, tok, s->piece, s->cap_piece, 0, special);
    if (n < 0) {
        char *p = realloc(s->piece, (size_t)-n);
        if (!p) {
            *len = 0;
            return s->piece;
        }
        s->piece = p;
        s->cap_piece = -n;
        n = llama_token_to_piece(s->m->vocab, tok, s->piece, s->cap_piece, 0, special);
    }
    *len = n > 0 ? n : 0;
    return s->piece;
}

/* Samples the slot's next token and streams its text. */
static void slot_sample(struct al_engine_sched *s, struct al_engine_slot *sl)
{
    struct al_engine_req *r = sl->req;
    llama_token tok = LLAMA_TOKEN_NULL;
    struct al_engine_token_probs tp = {.token = LLAMA_TOKEN_NULL};
    if (r->on_probs && r->post_sampling && !s->cand && !(s->cand = malloc((size_t)s->n_vocab * sizeof *s->cand))) {
        al_engine_slot_finish(s, sl, AL_ENGINE_FINISH_ERROR, "out of memory");
        return;
    }
    if (r->on_probs && r->post_sampling) {
        tok = al_engine_sample_post(r->smpl, llama_get_logits_ith(s->ctx, sl->i_batch), s->n_vocab, r->greedy,
                                    s->cand, r->n_probs, r->probs_ids, r->probs_lps, &tp);
    } else if (r->greedy_fast) {
        tok = al_engine_sample_greedy_fast(llama_get_logits_ith(s->ctx, sl->i_batch), s->n_vocab, r->banned,
                                           r->n_banned);
        if (tok != LLAMA_TOKEN_NULL)
            llama_sampler_accept(r->smpl, tok); /* what llama_sampler_sample does after choosing */
    }
    if (tok == LLAMA_TOKEN_NULL)
        tok = llama_sampler_sample(r->smpl, s->ctx, sl->i_batch);
    if (sl->t_first == 0)
        sl->t_first = al_engine_now_ms();
    sl->n_gen++;
    atomic_fetch_add(&s->tokens_gen, 1);
    sl->next = tok;
    if (r->on_probs) {
        if (r->ids_only)
            tp.token = tok;
        else if (!r->post_sampling)
            al_engine_probs_compute(llama_get_logits_ith(s->ctx, sl->i_batch), llama_vocab_n_tokens(s->m->vocab),
                                    tok, r->n_probs, r->probs_ids, r->probs_lps, &tp);
        r->on_probs(r->probs_ud, &tp);
    }
    if (llama_vocab_is_eog(s->m->vocab, tok)) {
        al_engine_slot_finish(s, sl, AL_ENGINE_FINISH_STOP, NULL);
        return;
    }
    int n = 0;
    const char *piece = token_text(s, r, tok, &n);
    if (sl->n_pending + (size_t)n > sl->cap_pending) {
        size_t cap = (sl->n_pending + (size_t)n) * 2;
        char *p = realloc(sl->pending, cap);
        if (!p) {
            al_engine_slot_finish(s, sl, AL_ENGINE_FINISH_ERROR, "out of memory");
            return;
        }
        sl->pending = p;
        sl->cap_pending = cap;
    }
    memcpy(sl->pending + sl->n_pending, piece, (size_t)n);
    sl->n_pending += (size_t)n;

    size_t hold = 0;
    long at = al_engine_stops_scan(&r->stops, sl->pending, sl->n_pending, &hold, &r->stop_word);
    if (at >= 0) {
        emit(sl, (size_t)at, tok);
        sl->n_pending = 0;
        al_engine_slot_finish(s, sl, AL_ENGINE_FINISH_STOP, NULL);
        return;
    }
    if (!emit(sl, sl->n_pending - hold, tok) || atomic_load(&r->cancel)) {
        al_engine_slot_finish(s, sl, AL_ENGINE_FINISH_CANCELLED, NULL);
        return;
    }
    if ((r->max_tokens >= 0 && sl->n_gen >= r->max_tokens) || sl->n_cache >= s->n_ctx_seq) {
        al_engine_slot_finish(s, sl, AL_ENGINE_FINISH_LENGTH, NULL);
        return;
    }
    sl->generating = true;
}

/* After a successful decode the batch's tokens are in the KV cache. */
static void commit_batch(struct al_engine_sched *s)
{
    uint64_t used = 0;
    for (int i = 0; i < s->n_seq; i++) {
        struct al_engine_slot *sl = &s->slots[i];
        if (sl->n_batch_tokens > 0) {
            if (sl->generating) {
                sl->cache[sl->n_cache++] = sl->next;
            } else {
                memcpy(sl->cache + sl->n_cache, sl->req->prompt + sl->n_fed,
                       (size_t)sl->n_batch_tokens * sizeof(llama_token));
                sl->n_cache += sl->n_batch_tokens;
                sl->n_fed += sl->n_batch_tokens;
                if (sl->req->on_progress)
                    sl->req->on_progress(sl->req->progress_ud, sl->req->n_prompt, sl->n_cached, sl->n_fed,
                                         al_engine_now_ms() - sl->t_start);
            }
        }
        used += (uint64_t)sl->n_cache;
    }
    atomic_store(&s->kv_used, used);
}

static void fail_batch(struct al_engine_sched *s, int ret)
{
    char why[64];
    snprintf(why, sizeof why, "llama_decode failed (%d)", ret);
    al_warn("%s", why);
    for (int i = 0; i < s->n_seq; i++) {
        struct al_engine_slot *sl = &s->slots[i];
        if (sl->n_batch_tokens == 0)
            continue;
        /* The sequence's cache is unknown now: drop it all. */
        llama_memory_seq_rm(s->mem, sl->id, -1, -1);
        sl->n_cache = 0;
        al_engine_slot_finish(s, sl, AL_ENGINE_FINISH_ERROR, why);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median duration of the last PROMPT_STEPS steps that read prompt
 * tokens, or -1 before the first: one step slowed by a busy machine must not
 * move it, nor one lone short prompt. */
static double prompt_step_median(const struct al_engine_sched *s)
{
    unsigned n = s->n_prompt_steps < PROMPT_STEPS ? s->n_prompt_steps : PROMPT_STEPS;
    if (n == 0)
        return -1;
    double v[PROMPT_STEPS];
    memcpy(v, s->prompt_step_ms, n * sizeof v[0]);
    qsort(v, n, sizeof v[0], cmp_double);
    return v[n / 2];
}

/* Under the lock, before a step from idle: waits as long as the admission
 * hook says, asking it again after each wait; submit signals wake, so a
 * queued request ends a wait early. The facts the hook gets about the
 * past (the prompt steps, the step that left the scheduler idle) are taken
 * once, at the first ask. */
static void admit_wait(struct al_engine_sched *s)
{
    double t0 = al_engine_now_ms();
    struct al_engine_admit_info ai = {
        .n_seq = s->n_seq,
        .prompt_step_ms = prompt_step_median(s),
        .last_finished = s->burst_n,
        .last_finished_ms = s->burst_n > 0 ? t0 - s->burst_end_ms : 0,
    };
    while (s->admit && !s->quit && s->n_queued < s->n_seq) {
        ai.n_queued = s->n_queued;
        ai.waited_ms = al_engine_now_ms() - t0;
        double ms = s->admit(s->admit_ud, &ai);
        if (!(ms > 0))
            break;
        struct timespec ts = al_engine_ms_from_now(ms);
        pthread_cond_timedwait(&s->wake, &s->lock, &ts);
    }
}

void al_engine_set_admit(struct al_engine_model *m, al_engine_admit_fn *admit, void *admit_ud)
{
    struct al_engine_sched *s = m->sched;
    pthread_mutex_lock(&s->lock);
    s->admit = admit;
    s->admit_ud = admit_ud;
    pthread_mutex_unlock(&s->lock);
}

/* After a step that generated only (no prompt tokens): its duration feeds
 * the estimate of what a switch costs (batch.c's quantum). */
static void lora_timing(struct al_engine_sched *s, double ms)
{
    if (!s->step_switches) {
        s->plain_step_ms = s->plain_step_ms > 0 ? 0.8 * s->plain_step_ms + 0.2 * ms : ms;
        return;
    }
    if (s->plain_step_ms <= 0)
        return;
    double extra = ms > s->plain_step_ms ? ms - s->plain_step_ms : 0;
    s->switch_ms = s->switch_ms > 0 ? 0.8 * s->switch_ms + 0.2 * extra : extra;
}

/* Under m->lora_mu, per-sequence mode: the adapters some request of the
 * batch uses, each sequence's scales for them. A change in which adapters
 * are used is a switch (llama.cpp reserves its graph again); the scales
 * alone are an input of the graph and cost nothing. */
static void apply_lora_seq(struct al_engine_sched *s)
{
#ifdef LLAMA_HAS_ADAPTERS_LORA_SEQ
    struct llama_adapter_lora *a[AL_LIMIT_LORAS];
    int used[AL_LIMIT_LORAS], k = 0;
    float mask[AL_LIMIT_LORAS] = {0};
    for (int i = 0; i < s->m->n_loras; i++) {
        bool any = false;
        for (int j = 0; j < s->n_seq && !any; j++) {
            const struct al_engine_slot *sl = &s->slots[j];
            any = sl->req && sl->n_batch_tokens > 0 && sl->req->lora[i] != 0.0f;
        }
        if (any) {
            a[k] = s->m->loras[i];
            used[k++] = i;
            mask[i] = 1.0f;
        }
    }
    const float *first = NULL;
    bool mixed = false;
    for (int j = 0; j < s->n_seq; j++) {
        const struct al_engine_slot *sl = &s->slots[j];
        for (int u = 0; u < k; u++)
            s->lora_scales[(size_t)sl->id * (size_t)k + (size_t)u] = sl->req ? sl->req->lora[used[u]] : 0.0f;
        if (sl->req && sl->n_batch_tokens > 0) {
            mixed |= first && !al_engine_same_lora(first, sl->req->lora);
            first = first ? first : sl->req->lora;
        }
    }
    if (mixed)
        atomic_fetch_add(&s->lora_mixed_steps, 1);
    llama_set_adapters_lora_seq(s->ctx, k ? a : NULL, (size_t)k, k ? s->lora_scales : NULL, k ? s->n_seq : 0);
    s->step_switches = !s->cur_lora_valid || !al_engine_same_lora(s->cur_lora, mask);
    if (s->step_switches) {
        memcpy(s->cur_lora, mask, sizeof s->cur_lora);
        s->cur_lora_valid = true;
        s->lora_since_ms = al_engine_now_ms();
        atomic_fetch_add(&s->lora_switches, 1);
    }
#else
    (void)s;
#endif
}

/* Under m->lora_mu: sets the context's adapters to the step's set when it
 * differs from what the context has (llama.cpp then reserves its graph
 * again, the cost of a switch). */
static void apply_lora(struct al_engine_sched *s)
{
    if (s->lora_per_seq) {
        apply_lora_seq(s);
        return;
    }
    if (!s->step_switches)
        return;
    struct llama_adapter_lora *a[AL_LIMIT_LORAS];
    float sc[AL_LIMIT_LORAS];
    int n = s->m->n_loras;
    for (int i = 0; i < n; i++) {
        a[i] = s->m->loras[i];
        sc[i] = s->step_lora[i];
    }
    llama_set_adapters_lora(s->ctx, n ? a : NULL, (size_t)n, n ? sc : NULL);
    memcpy(s->cur_lora, s->step_lora, sizeof s->cur_lora);
    s->cur_lora_valid = true;
    s->lora_since_ms = al_engine_now_ms();
    atomic_fetch_add(&s->lora_switches, 1);
}

/* Generating slots in this step's batch. */
static int n_generating(const struct al_engine_sched *s)
{
    int n = 0;
    for (int i = 0; i < s->n_seq; i++)
        n += s->slots[i].req && s->slots[i].generating && s->slots[i].n_batch_tokens > 0;
    return n;
}

static void *worker(void *arg)
{
    struct al_engine_sched *s = arg;
    struct al_engine_slot **fresh = s->fresh;
    for (;;) {
        struct al_engine_req *dropped = NULL;
        int n_fresh = 0;
        pthread_mutex_lock(&s->lock);
        if (s->n_active == 0 && s->step_finished > 0) {
            s->burst_n = s->step_finished;
            s->burst_end_ms = al_engine_now_ms();
        }
        s->step_finished = 0;
        while (!s->quit && s->n_active == 0 && s->q_head == NULL)
            pthread_cond_wait(&s->wake, &s->lock);
        if (s->admit && s->n_active == 0)
            admit_wait(s);
        bool quit = s->quit;
        unsigned cancels = atomic_load(&s->cancels);
        if (cancels != s->cancels_seen) {
            /* A cancelled request leaves the queue now, not when a slot frees. */
            s->cancels_seen = cancels;
            struct al_engine_req **pp = &s->q_head;
            s->q_tail = NULL;
            while (*pp) {
                struct al_engine_req *r = *pp;
                if (atomic_load(&r->cancel)) {
                    *pp = r->next;
                    s->n_queued--;
                    r->next = dropped;
                    dropped = r;
                } else {
                    s->q_tail = r;
                    pp = &r->next;
                }
            }
        }
        while (!quit && s->q_head && s->n_active < s->n_seq) {
            struct al_engine_req *r = s->q_head;
            s->q_head = r->next;
            if (!s->q_head)
                s->q_tail = NULL;
            s->n_queued--;
            if (atomic_load(&r->cancel)) {
                r->next = dropped;
                dropped = r;
                continue;
            }
            struct al_engine_slot *sl = pick_slot(s, r);
            sl->req = r;
            s->n_active++;
            fresh[n_fresh++] = sl;
        }
        if (quit) {
            while (s->q_head) {
                struct al_engine_req *r = s->q_head;
                s->q_head = r->next;
                r->next = dropped;
                dropped = r;
            }
            s->q_tail = NULL;
            s->n_queued = 0;
        }
        pthread_mutex_unlock(&s->lock);

        while (dropped) {
            struct al_engine_req *r = dropped;
            dropped = r->next;
            finish_req(s, r, NULL, AL_ENGINE_FINISH_CANCELLED, NULL);
        }
        for (int i = 0; i < n_fresh; i++)
            slot_start(s, fresh[i]);
        for (int i = 0; i < s->n_seq; i++) {
            struct al_engine_slot *sl = &s->slots[i];
            if (sl->req && (quit || atomic_load(&sl->req->cancel)))
                al_engine_slot_finish(s, sl, AL_ENGINE_FINISH_CANCELLED, NULL);
        }
        if (quit)
            break;

        al_engine_sched_fill(s);
        if (s->batch.n_tokens == 0)
            continue;
        bool reads_prompt = s->batch.n_tokens > n_generating(s);
        double t_step = al_engine_now_ms();
        pthread_mutex_lock(&s->m->lora_mu);
        apply_lora(s);
        int ret = llama_decode(s->ctx, s->batch);
        pthread_mutex_unlock(&s->m->lora_mu);
        s->n_steps++;
        for (int i = 0; i < s->n_seq; i++)
            if (s->slots[i].n_batch_tokens > 0)
                s->slots[i].served = s->n_steps;
        atomic_fetch_add(&s->decode_calls, 1);
        if (reads_prompt)
            s->prompt_step_ms[s->n_prompt_steps++ % PROMPT_STEPS] = al_engine_now_ms() - t_step;
        else if (ret == 0)
            lora_timing(s, al_engine_now_ms() - t_step);
        if (ret != 0) {
            fail_batch(s, ret);
            continue;
        }
        commit_batch(s);
        for (int i = 0; i < s->n_seq; i++) {
            struct al_engine_slot *sl = &s->slots[i];
            if (sl->req && sl->i_batch >= 0)
                slot_sample(s, sl);
        }
    }
    return NULL;
}

/* ---- lifecycle ---- */

enum al_rc al_engine_sched_new(struct al_engine_model *m, struct al_engine_sched **out, struct al_err *err)
{
    struct al_engine_sched *s = calloc(1, sizeof *s);
    if (!s)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory creating a scheduler");
    s->m = m;
    s->n_seq = m->params.n_seq;
    s->n_batch = m->params.n_batch;
    s->queue_max = m->params.queue_max;
    s->n_vocab = llama_vocab_n_tokens(m->vocab);
    s->admit = m->params.admit;
    s->admit_ud = m->params.admit_ud;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca; /* admit_wait() waits by the monotonic clock */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    enum al_rc rc = AL_OK;

    struct llama_context_params cp = llama_context_default_params();
    s->unified = m->params.kv_unified;
    cp.n_ctx = (uint32_t)m->n_ctx * (uint32_t)(s->unified ? 1 : s->n_seq);
    cp.n_batch = (uint32_t)s->n_batch;
    cp.n_ubatch = s->n_batch < 512 ? (uint32_t)s->n_batch : 512;
    cp.n_seq_max = (uint32_t)s->n_seq;
    cp.n_threads = m->params.threads;
    cp.n_threads_batch = m->params.threads;
    /* Unified: one cache shared by the sequences, as llama-server's slots
     * share theirs (batch.c makes room in it). Otherwise each sequence has
     * its own n_ctx_seq cells and no request starves another. */
    cp.kv_unified = s->unified;
    cp.no_perf = true;
    al_engine_llama_clear_error();
    s->ctx = llama_init_from_model(m->model, cp);
    if (!s->ctx) {
        const char *why = al_engine_llama_last_error();
        rc = al_err_set(err, AL_ERR_INTERNAL, "cannot create a context of %u tokens for %d sequences%s%s",
                        cp.n_ctx, s->n_seq, *why ? ": " : "", why);
        goto fail;
    }
    /* The adapters are applied by each step (apply_lora), for its set. */
    /* Without a pool of its own, ggml sets up its compute threads on every
     * llama_decode. A persistent pool, as llama-bench and llama-server
     * attach, keeps them (docs/internals/engine.md says what it gained). */
    struct ggml_threadpool_params tpp = ggml_threadpool_params_default(m->params.threads);
    s->pool = ggml_threadpool_new(&tpp);
    if (s->pool)
        llama_attach_threadpool(s->ctx, s->pool, NULL);
    else
        al_warn("cannot start a pool of %d compute threads; each step starts its own", m->params.threads);
    /* llama.cpp may round the context; never promise more than it has. */
    if ((int)llama_n_ctx_seq(s->ctx) < m->n_ctx_seq)
        m->n_ctx_seq = (int)llama_n_ctx_seq(s->ctx);
    s->n_ctx_seq = m->n_ctx_seq;
    if (s->unified) {
        m->n_ctx = s->n_cells = (int)llama_n_ctx(s->ctx); /* rounded up to 256 by llama.cpp */
        snprintf(s->full_msg, sizeof s->full_msg,
                 "the KV cache of %d cells shared by %d sequences (serve --ctx, --parallel) is full: this "
                 "request, the youngest holding cells, was stopped so that the others finish",
                 s->n_cells, s->n_seq);
    }
    s->mem = llama_get_memory(s->ctx);
    s->batch = llama_batch_init(s->n_batch, 0, 1);
    s->slots = calloc((size_t)s->n_seq, sizeof *s->slots);
    s->cap_piece = 256;
    s->piece = malloc((size_t)s->cap_piece);
    s->fresh = calloc((size_t)s->n_seq, sizeof *s->fresh);
    s->reading = calloc((size_t)s->n_seq, sizeof *s->reading);
    s->lora_scales = calloc((size_t)s->n_seq * AL_LIMIT_LORAS, sizeof *s->lora_scales);
    if (!s->slots || !s->piece || !s->fresh || !s->reading || !s->lora_scales || !s->batch.token)
        goto nomem;
#ifdef LLAMA_HAS_ADAPTERS_LORA_SEQ
    /* AIRLOCK_LORA_TURNS=1: sets take turns as without the patch (to measure one against the other). */
    const char *turns = getenv("AIRLOCK_LORA_TURNS");
    s->lora_per_seq = !(turns && strcmp(turns, "1") == 0);
#endif
    for (int i = 0; i < s->n_seq; i++) {
        struct al_engine_slot *sl = &s->slots[i];
        sl->id = i;
        sl->cache = malloc((size_t)s->n_ctx_seq * sizeof *sl->cache);
        sl->cap_pending = 2 * AL_LIMIT_STOP_LEN + 256;
        sl->pending = malloc(sl->cap_pending);
        if (!sl->cache || !sl->pending)
            goto nomem;
    }
    if (pthread_create(&s->thread, NULL, worker, s) != 0) {
        rc = al_err_sys(err, AL_ERR_INTERNAL, "cannot start the scheduler thread");
        goto fail;
    }
    s->started = true;
    *out = s;
    return AL_OK;
nomem:
    rc = al_err_set(err, AL_ERR_NOMEM, "out of memory creating a scheduler");
fail:
    al_engine_sched_free(s);
    return rc;
}

void al_engine_sched_free(struct al_engine_sched *s)
{
    if (!s)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->lock);
        s->quit = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
    }
    if (s->slots) {
        for (int i = 0; i < s->n_seq; i++) {
            free(s->slots[i].cache);
            free(s->slots[i].pending);
        }
        free(s->slots);
    }
    free(s->piece);
    free(s->cand);
    free(s->fresh);
    free(s->reading);
    free(s->lora_scales);
    if (s->batch.token)
        llama_batch_free(s->batch);
    if (s->ctx)
        llama_free(s->ctx);
    if (s->pool)
        ggml_threadpool_free(s->pool); /* after the context: it may still point at the pool */
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
