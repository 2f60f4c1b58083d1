/*
 * batch.c: what one step of the scheduler decodes, and room for it in a
 * unified KV cache.
 *
 * A batch holds the pending token of every generating slot first (decode
 * latency must not wait behind long prompts), then prompt chunks, the oldest
 * request's first, up to n_batch tokens.
 *
 * With a unified cache (kv_unified) the n_seq sequences share n_cells cells.
 * Every token a sequence holds takes one cell, free slots included (their
 * tokens are kept for prefix reuse), so the free cells are n_cells less the
 * sum of every slot's n_cache. A batch never asks llama_decode for more than
 * that (llama_decode would fail with 1, "no KV slot"). Room is made in this
 * order, and only when needed:
 *   1. the tokens a free slot keeps are dropped, least recently used first
 *      (llama-server's try_clear_idle_slots);
 *   2. a prompt is fed only when its whole rest fits beside the generating
 *      tokens and the rests of the older prompts fed in this step; a younger
 *      prompt never overtakes an older one that waits for room;
 *   3. when the generating slots need more cells than are free, or nothing
 *      at all can be decoded, the youngest request that holds cells is
 *      stopped with AL_ENGINE_FINISH_ERROR (s->full_msg) and its cells freed,
 *      again until the step fits.
 * Each step so decodes something or stops a request, and the oldest request
 * always fits once alone (its context is under n_ctx_seq <= n_cells): no
 * request waits forever, and no sequence's cells are touched but by its own
 * request. llama-server, out of room, halves its batch down to one token and
 * then fails every request in flight; stopping only the youngest lets the
 * others finish.
 */
#include "engine/sched_int.h"

#include <limits.h>

#include "core/log.h"

static void batch_add(struct llama_batch *b, llama_token t, llama_pos pos, llama_seq_id seq, bool logits)
{
    int i = b->n_tokens++;
    b->token[i] = t;
    b->pos[i] = pos;
    b->n_seq_id[i] = 1;
    b->seq_id[i][0] = seq;
    b->logits[i] = logits;
}

static int cells_free(const struct al_engine_sched *s)
{
    int used = 0;
    for (int i = 0; i < s->n_seq; i++)
        used += s->slots[i].n_cache;
    return s->n_cells - used;
}

/* Drops the tokens the least recently used free slot keeps. Returns the
 * cells freed, 0 when no free slot keeps any. */
static int evict_idle(struct al_engine_sched *s)
{
    struct al_engine_slot *lru = NULL;
    for (int i = 0; i < s->n_seq; i++) {
        struct al_engine_slot *sl = &s->slots[i];
        if (!sl->req && sl->n_cache > 0 && (!lru || sl->last_used < lru->last_used))
            lru = sl;
    }
    if (!lru)
        return 0;
    int n = lru->n_cache;
    llama_memory_seq_rm(s->mem, lru->id, -1, -1);
    lru->n_cache = 0;
    return n;
}

/* Stops the request assigned last among those holding cells, and frees
 * them. Returns the cells freed, 0 when no request holds any. */
static int evict_youngest(struct al_engine_sched *s)
{
    struct al_engine_slot *v = NULL;
    for (int i = 0; i < s->n_seq; i++) {
        struct al_engine_slot *sl = &s->slots[i];
        if (sl->req && sl->n_cache > 0 && (!v || sl->order > v->order))
            v = sl;
    }
    if (!v)
        return 0;
    int n = v->n_cache;
    al_warn("the KV cache of %d cells shared by %d sequences is full: stopping the youngest request, which holds %d",
            s->n_cells, s->n_seq, n);
    llama_memory_seq_rm(s->mem, v->id, -1, -1);
    v->n_cache = 0;
    al_engine_slot_finish(s, v, AL_ENGINE_FINISH_ERROR, s->full_msg);
    return n;
}

static int n_generating(const struct al_engine_sched *s)
{
    int n = 0;
    for (int i = 0; i < s->n_seq; i++)
        n += s->slots[i].req && s->slots[i].generating;
    return n;
}

/* One try at filling the batch. avail: the cells this step may take
 * (INT_MAX without a unified cache, where each sequence has its own). */
static void fill(struct al_engine_sched *s)
{
    struct llama_batch *b = &s->batch;
    b->n_tokens = 0;
    int avail = INT_MAX;
    if (s->unified) {
        avail = cells_free(s);
        while (avail < n_generating(s)) {
            int n = evict_idle(s);
            if (n == 0)
                n = evict_youngest(s);
            if (n == 0)
                break;
            avail += n;
        }
        avail -= n_generating(s);
    }
    for (int i = 0; i < s->n_seq; i++) {
        struct al_engine_slot *sl = &s->slots[i];
        sl->i_batch = -1;
        sl->n_batch_tokens = 0;
        if (sl->req && sl->generating) {
            sl->i_batch = b->n_tokens;
            sl->n_batch_tokens = 1;
            batch_add(b, sl->next, sl->n_cache, sl->id, true);
        }
    }
    /* Prompt chunks first come, first served: the oldest request's prompt
     * gets the room left, so its first token is not delayed by prompts that
     * arrived after it (time to first token p95 under load). */
    int n_reading = 0;
    for (int i = 0; i < s->n_seq; i++) {
        struct al_engine_slot *sl = &s->slots[i];
        if (!sl->req || sl->generating)
            continue;
        int j = n_reading++;
        while (j > 0 && s->reading[j - 1]->order > sl->order) {
            s->reading[j] = s->reading[j - 1];
            j--;
        }
        s->reading[j] = sl;
    }
    for (int k = 0; k < n_reading && b->n_tokens < s->n_batch; k++) {
        struct al_engine_slot *sl = s->reading[k];
        int left = sl->req->n_prompt - sl->n_fed;
        if (s->unified) {
            int n = 1;
            while (left > avail && n > 0)
                avail += (n = evict_idle(s));
            if (left > avail)
                break; /* it waits for room, and the younger prompts behind it */
            avail -= left;
        }
        int take = s->n_batch - b->n_tokens;
        if (take > left)
            take = left;
        for (int j = 0; j < take; j++) {
            int p = sl->n_fed + j;
            batch_add(b, sl->req->prompt[p], p, sl->id, p == sl->req->n_prompt - 1);
        }
        if (sl->n_fed + take == sl->req->n_prompt)
            sl->i_batch = b->n_tokens - 1;
        sl->n_batch_tokens = take;
    }
}

void al_engine_sched_fill(struct al_engine_sched *s)
{
    for (;;) {
        fill(s);
        if (!s->unified || s->batch.n_tokens > 0)
            return;
        /* Nothing fits: no slot generates, and the oldest prompt's rest is
         * over the free cells, even with every free slot's tokens dropped.
         * Another request holds the cells it needs. */
        bool active = false;
        for (int i = 0; i < s->n_seq; i++)
            active |= s->slots[i].req != NULL;
        if (!active || evict_youngest(s) == 0)
            return;
    }
}
