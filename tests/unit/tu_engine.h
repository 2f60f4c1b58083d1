/*
 * tu_engine.h: driving the real scheduler from a test: greedy parameters, one
 * whole generation, a collector for one request (its text, its result, and a
 * gate that holds the worker in the token callback), and submit. Shared by
 * the test_engine*.c and test_server.c. Header-only (static inline), like
 * tu_model.h.
 */
#ifndef AL_TU_ENGINE_H
#define AL_TU_ENGINE_H

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "testutil.h"
#include "engine/engine.h"

/* The engine's defaults with temperature 0 and max_tokens. */
static inline struct al_engine_gen_params tu_greedy(int max_tokens)
{
    struct al_engine_gen_params p = al_engine_gen_params_default();
    p.temperature = 0;
    p.max_tokens = max_tokens;
    return p;
}

/* One greedy or sampled generation to the end: its text (the caller frees
 * it), *res when not NULL; a failure fails the test with the engine's message. */
static inline char *tu_gen(struct al_engine_model *m, const char *prompt, const struct al_engine_gen_params *p,
                           struct al_engine_gen_result *res)
{
    char *text = NULL;
    struct al_err err = AL_ERR_INIT;
    if (al_engine_generate(m, prompt, p, &text, res, &err))
        fail_msg("generate: %s", err.msg);
    return text;
}

/* What one request's callbacks saw; every field under mu. */
struct tu_collect {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    char text[8192];
    size_t len;
    int n_calls;
    int cancel_after;      /* return false after this many calls; 0: never */
    bool block;            /* wait in the callback until released */
    bool started;
    bool empty_piece;      /* a callback had len 0 (must never happen) */
    struct al_engine_gen_result res;
};

static inline void tu_collect_init(struct tu_collect *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
}

/* The token callback: appends the piece, counts, and waits while c->block. */
static inline bool tu_on_token(void *ud, const char *piece, size_t len, int32_t token)
{
    struct tu_collect *c = ud;
    pthread_mutex_lock(&c->mu);
    if (len == 0)
        c->empty_piece = true;
    if (c->len + len < sizeof c->text) {
        memcpy(c->text + c->len, piece, len);
        c->len += len;
        c->text[c->len] = '\0';
    }
    c->n_calls++;
    c->started = true;
    pthread_cond_broadcast(&c->cv);
    while (c->block)
        pthread_cond_wait(&c->cv, &c->mu);
    bool go = c->cancel_after == 0 || c->n_calls < c->cancel_after;
    pthread_mutex_unlock(&c->mu);
    return go;
}

/* The done callback; ud may be NULL (a request nobody waits for). */
static inline void tu_on_done(void *ud, const struct al_engine_gen_result *res)
{
    struct tu_collect *c = ud;
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->res = *res;
    c->done = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static inline void tu_wait_started(struct tu_collect *c)
{
    pthread_mutex_lock(&c->mu);
    while (!c->started && !c->done)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

static inline void tu_wait_done(struct tu_collect *c)
{
    pthread_mutex_lock(&c->mu);
    while (!c->done)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

/* Opens the gate: a callback waiting on c->block goes on. */
static inline void tu_release(struct tu_collect *c)
{
    pthread_mutex_lock(&c->mu);
    c->block = false;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Submits prompt with c as the collector, failing the test on error;
 * on_token is tu_on_token or NULL (only the result is wanted); r as in
 * al_engine_submit. */
static inline void tu_submit(struct al_engine_model *m, const char *prompt, const struct al_engine_gen_params *p,
                             al_engine_token_cb *on_token, struct tu_collect *c, struct al_engine_req **r)
{
    struct al_err err = AL_ERR_INIT;
    if (al_engine_submit(m, prompt, p, on_token, tu_on_done, c, r, &err))
        fail_msg("submit: %s", err.msg);
}

#endif
