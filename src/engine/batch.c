/*
 * batch.c: what one step of the scheduler decodes (its adapter set, its
 * tokens), and room for it in a unified KV cache.
 *
 * LoRA adapters: with airlock's llama.cpp patch (llama_set_adapters_lora_seq,
 * s->lora_per_seq) a step decodes every busy slot whatever its adapter set:
 * llama.cpp scales each adapter's product per token, by the sequence's
 * request. Without it, adapters apply to the whole llama_context, so a step
 * decodes the slots of one adapter set only (the same scale for every
 * adapter of the model), and the rest of this paragraph is how sets take
 * turns. The context keeps its set for a quantum while its slots are busy
 * (10x the measured cost of a switch, at most 500 ms: llama.cpp reserves its
 * graph again on a switch); then the set of the busy slot decoded least
 * recently goes, ties to the oldest request. So sets take turns, none
 * starves, and the requests of one set are batched together. When the set
 * picked cannot decode anything (its prompts wait for room in a unified
 * cache), the other sets are tried, least recently served first, before a
 * request is stopped for room.
 *
 * A batch holds the pending token of every generating slot of the set first
 * (decode latency must not wait behind long prompts), then the set's prompt
 * chunks, the oldest request's first, up to n_batch tokens.
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
 *      tokens (of every set: each needs a cell at its turn) and the rests of
 *      the older prompts (of every set too); a younger prompt never
 *      overtakes an older one that waits for room;
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

/* Whether the slot's request belongs to this step's adapter set. */
static bool in_step(const struct al_engine_sched *s, const struct al_engine_slot *sl)
{
    return sl->req && (s->lora_per_seq || al_engine_same_lora(sl->req->lora, s->step_lora));
}

/* Generating slots of every set: each needs one cell at its set's turn. */
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
        if (in_step(s, sl) && sl->generating) {
            sl->i_batch = b->n_tokens;
            sl->n_batch_tokens = 1;
            batch_add(b, sl->next, sl->n_cache, sl->id, true);
        }
    }
    /* Prompt chunks first come, first served: the oldest request's prompt
     * gets the room left, so its first token is not delayed by prompts that
     * arrived after it (time to first token p95 under load). The prompts of
     * other sets are not fed, but an older one keeps its room in a unified
     * cache, so that a younger prompt never overtakes it there either. */
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
        if (!in_step(s, sl))
            continue;
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

/* How long the context keeps its adapter set while other sets wait: long
 * enough that a switch costs at most about 1/LORA_QUANTUM_SWITCHES of the
 * time, never more than LORA_QUANTUM_MAX_MS, so a waiting set always gets
 * its turn. */
#define LORA_QUANTUM_SWITCHES 10.0
#define LORA_QUANTUM_MAX_MS 500.0

/* The busy slot decoded least recently, ties to the oldest request, among
 * those whose set was not tried in this step; NULL: none. */
static struct al_engine_slot *least_served(struct al_engine_sched *s)
{
    struct al_engine_slot *best = NULL;
    for (int i = 0; i < s->n_seq; i++) {
        struct al_engine_slot *sl = &s->slots[i];
        if (sl->req && !sl->tried &&
            (!best || sl->served < best->served || (sl->served == best->served && sl->order < best->order)))
            best = sl;
    }
    return best;
}

/* Makes set the step's set, marks its slots tried. */
static void step_set(struct al_engine_sched *s, const float *set)
{
    memcpy(s->step_lora, set, sizeof s->step_lora);
    s->step_switches = !s->cur_lora_valid || !al_engine_same_lora(s->cur_lora, s->step_lora);
    for (int i = 0; i < s->n_seq; i++)
        if (in_step(s, &s->slots[i]))
            s->slots[i].tried = true;
}

/* The step's first choice of set: the context's own while it has busy
 * slots and its quantum lasts, else that of least_served. False when no
 * slot is busy. */
static bool pick_lora(struct al_engine_sched *s)
{
    if (s->lora_per_seq) { /* every set in one step; sched.c's apply_lora sets the scales */
        bool busy = false;
        for (int i = 0; i < s->n_seq; i++) {
            busy |= s->slots[i].req != NULL;
            s->slots[i].tried = s->slots[i].req != NULL;
        }
        s->step_switches = false;
        return busy;
    }
    bool cur_busy = false;
    for (int i = 0; i < s->n_seq; i++) {
        struct al_engine_slot *sl = &s->slots[i];
        sl->tried = false;
        cur_busy |= sl->req && s->cur_lora_valid && al_engine_same_lora(sl->req->lora, s->cur_lora);
    }
    struct al_engine_slot *best = least_served(s);
    if (!best)
        return false;
    double quantum = s->switch_ms * LORA_QUANTUM_SWITCHES;
    if (quantum > LORA_QUANTUM_MAX_MS)
        quantum = LORA_QUANTUM_MAX_MS;
    if (cur_busy && al_engine_now_ms() - s->lora_since_ms < quantum)
        step_set(s, s->cur_lora);
    else
        step_set(s, best->req->lora);
    return true;
}

void al_engine_sched_fill(struct al_engine_sched *s)
{
    for (;;) {
        s->batch.n_tokens = 0;
        if (!pick_lora(s))
            return;
        fill(s);
        if (!s->unified || s->batch.n_tokens > 0)
            return;
        /* The set's prompts wait for room (or its requests were stopped
         * for it): another set may still decode. */
        for (;;) {
            struct al_engine_slot *next = least_served(s);
            if (!next)
                break;
            step_set(s, next->req->lora);
            fill(s);
            if (s->batch.n_tokens > 0)
                return;
        }
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
