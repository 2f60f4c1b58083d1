/*
 * run_engine.c: the bench grid on a model loaded in this process. Requests go
 * through al_engine_submit (the scheduler the server uses), so the figures
 * include batching, sampling and streaming, as a client of the server would
 * see them less the HTTP layer.
 *
 * Prompts of a given length are cut from the suite's texts by token count:
 * the text is repeated, tokenized, cut to length - 1 tokens (BOS comes back
 * when the request is tokenized) and detokenized. A request number in front
 * makes every prompt differ from its first tokens, and requests ask for no
 * KV-cache reuse at all (cache_prompt false), so every prompt token is
 * computed, from position 0. A length of 1 is BOS alone, the start of
 * llama-bench's tg test: decode then runs from position 1.
 */
#include "bench/bench_int.h"

#include <pthread.h>
#include <time.h>

#include "core/buf.h"
#include "core/limits.h"
#include "health/health.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct runner {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int in_flight;
};

struct ereq {
    struct runner *r;
    struct al_bsample *s;
    int cap_itl;
    double t0, last;
};

static bool on_token(void *ud, const char *piece, size_t len, int32_t token)
{
    struct ereq *q = ud;
    double t = now_ms();
    if (q->last > 0 && q->s->n_itl < q->cap_itl)
        q->s->itl_ms[q->s->n_itl++] = t - q->last;
    q->last = t;
    return true;
}

static void on_done(void *ud, const struct al_engine_gen_result *res)
{
    struct ereq *q = ud;
    struct al_bsample *s = q->s;
    s->latency_ms = now_ms() - q->t0;
    s->n_prompt = res->n_prompt;
    s->n_cached = res->n_cached;
    s->n_gen = res->n_gen;
    s->ttft_ms = res->ttft_ms;
    s->prompt_ms = res->prompt_ms;
    s->gen_ms = res->gen_ms;
    if (res->finish != AL_ENGINE_FINISH_LENGTH && res->finish != AL_ENGINE_FINISH_STOP)
        snprintf(s->error, sizeof s->error, "finished with '%s'%s%s", al_engine_finish_name(res->finish),
                 res->error ? ": " : "", res->error ? res->error : "");
    pthread_mutex_lock(&q->r->mu);
    q->r->in_flight--;
    pthread_cond_signal(&q->r->cv);
    pthread_mutex_unlock(&q->r->mu);
}

/* A prompt of about len tokens (BOS included) for request idx. */
static char *make_prompt(struct al_engine_model *m, const struct al_bench_opts *o, int idx, int len,
                         struct al_err *err)
{
    if (len <= 1)
        return strdup(""); /* BOS alone */
    const char *base = o->texts[(size_t)idx % o->n_texts];
    struct al_buf b;
    al_buf_init(&b, AL_LIMIT_PROMPT_BYTES);
    al_buf_addf(&b, "%d. ", idx);
    size_t blen = strlen(base);
    /* Eight bytes a token is more than any tokenizer packs into one. */
    while (!al_buf_failed(&b) && b.len < (size_t)len * 8 + 64)
        al_buf_add(&b, base, blen);
    if (al_buf_failed(&b)) {
        al_buf_release(&b);
        al_err_set(err, AL_ERR_LIMIT, "a prompt of %d tokens is over AL_LIMIT_PROMPT_BYTES", len);
        return NULL;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    char *text = NULL;
    size_t tlen = 0;
    enum al_rc rc = al_engine_tokenize(m, b.data, b.len, false, false, &ids, &n, err);
    al_buf_release(&b);
    if (!rc) {
        size_t keep = (size_t)len - 1;
        rc = al_engine_detokenize(m, ids, n < keep ? n : keep, false, &text, &tlen, err);
    }
    free(ids);
    return rc ? NULL : text;
}

static enum al_rc run_cell(struct al_engine_model *m, const struct al_bench_opts *o, struct al_bcell *c,
                           int *counter, struct al_err *err)
{
    struct runner r = {.in_flight = 0};
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    struct ereq *q = calloc((size_t)c->n, sizeof *q);
    char **prompts = calloc((size_t)c->n, sizeof *prompts);
    enum al_rc rc = AL_OK;
    if (!q || !prompts) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Prompts are made before the clock starts. */
    for (int i = 0; i < c->n && !rc; i++) {
        prompts[i] = make_prompt(m, o, (*counter)++, c->prompt_length, err);
        c->s[i].itl_ms = calloc((size_t)o->gen_tokens + 1, sizeof(double));
        if (!prompts[i])
            rc = AL_ERR_LIMIT;
        else if (!c->s[i].itl_ms)
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    if (rc)
        goto out;
    struct al_engine_gen_params p = al_engine_gen_params_default();
    p.temperature = 0;
    p.max_tokens = o->gen_tokens;
    p.ignore_eos = true;
    /* Every prompt token is computed: a prompt of 512 is one batch of 512,
     * as llama-bench's pp512. Reusing BOS and the number's first token made
     * it a batch of 510, and ggml runs that shape about 8% slower a token
     * (tinyBLAS +7%, flash attention +18% a token, perf on a 20M model). */
    p.cache_prompt = false;
    struct al_health h0, h1;
    al_health_read(&h0);
    double t0 = now_ms(), max_temp = al_health_max_temp(&h0);
    int next = 0;
    pthread_mutex_lock(&r.mu);
    while (next < c->n || r.in_flight > 0) {
        while (next < c->n && r.in_flight < c->concurrency) {
            struct ereq *e = &q[next];
            e->r = &r;
            e->s = &c->s[next];
            e->cap_itl = o->gen_tokens;
            e->t0 = now_ms();
            r.in_flight++;
            pthread_mutex_unlock(&r.mu);
            enum al_rc src = al_engine_submit(m, prompts[next], &p, on_token, on_done, e, NULL, err);
            pthread_mutex_lock(&r.mu);
            if (src) {
                r.in_flight--;
                rc = src;
                next = c->n;
                break;
            }
            next++;
        }
        if (r.in_flight > 0)
            pthread_cond_wait(&r.cv, &r.mu);
    }
    pthread_mutex_unlock(&r.mu);
    c->wall_ms = now_ms() - t0;
    al_health_read(&h1);
    double t1 = al_health_max_temp(&h1);
    c->cpu_util = al_health_cpu_util(&h0, &h1);
    c->proc_util = al_health_proc_util(&h0, &h1);
    c->max_temp = t1 > max_temp ? t1 : max_temp;
out:
    if (prompts)
        for (int i = 0; i < c->n; i++)
            free(prompts[i]);
    free(prompts);
    free(q);
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);
    return rc;
}

/* llama.cpp's description without its guesses: "?B" (a size class it does
 * not know, as for every generated model) becomes the parameter count, and
 * "(guessed)" (a file type it inferred) goes: "llama 292.8K all F32". */
static void describe(char *desc, size_t size, uint64_t n_params)
{
    char out[sizeof ((struct al_engine_model_info *)0)->desc] = "", word[64];
    const char *p = desc;
    int n = 0;
    while (sscanf(p, "%63s%n", word, &n) == 1) {
        p += n;
        if (strcmp(word, "(guessed)") == 0)
            continue;
        if (strcmp(word, "?B") == 0) {
            double v = (double)n_params;
            const char *u = v >= 1e9 ? "B" : v >= 1e6 ? "M" : v >= 1e3 ? "K" : "";
            double d = v >= 1e9 ? 1e9 : v >= 1e6 ? 1e6 : v >= 1e3 ? 1e3 : 1;
            snprintf(word, sizeof word, n_params ? "%.1f%s" : "?", v / d, u);
        }
        size_t k = strlen(out);
        snprintf(out + k, sizeof out - k, "%s%s", k ? " " : "", word);
    }
    snprintf(desc, size, "%s", out);
}

enum al_rc al_bench_engine(struct al_engine_model *m, const struct al_bench_opts *o, json_t **out,
                           struct al_err *err)
{
    if (!m || !o || !out || *out)
        return al_err_set(err, AL_ERR_USAGE, "al_bench_engine: bad arguments");
    enum al_rc rc = al_bench_opts_check(o, "al_bench_engine", err);
    if (rc)
        return rc;
    json_t *rep = al_bench_report_new(o, "engine");
    if (!rep)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    struct al_engine_model_info info;
    al_engine_model_info(m, &info);
    describe(info.desc, sizeof info.desc, info.n_params);
    char where[256];
    int on_device = al_engine_model_placement(m, where, sizeof where);
    json_object_set_new(rep, "model",
                        json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:s, s:i}", "ref", o->model_ref ? o->model_ref : "",
                                  "digest", info.digest, "desc", info.desc, "n_params", (json_int_t)info.n_params,
                                  "size_bytes", (json_int_t)info.size_bytes, "n_ctx", info.n_ctx, "runs_on", where,
                                  "gpu_layers", on_device));
    int counter = 0;
    double t_run = now_ms();
    /* One warm-up request: graph allocation and cold caches stay out of the
     * figures. Its prompt is the longest of the grid, as llama-bench warms up
     * with the batch it measures: a prompt longer than any before it runs a
     * larger graph, first time cold (gen20m pp128 after warming with 8
     * tokens: about 40 ms against 28 ms), which made one of the cell's
     * requests an outlier and its median the slower of the others. */
    {
        int wlen = o->prompt_lengths[0];
        for (int i = 1; i < o->n_prompt_lengths; i++)
            if (o->prompt_lengths[i] > wlen)
                wlen = o->prompt_lengths[i];
        struct al_bsample ws = {0};
        struct al_bcell wc = {.concurrency = 1, .prompt_length = wlen, .s = &ws, .n = 1};
        struct al_bench_opts wo = *o;
        wo.gen_tokens = o->gen_tokens < 8 ? o->gen_tokens : 8;
        rc = run_cell(m, &wo, &wc, &counter, err);
        free(ws.itl_ms);
    }
    for (int l = 0; !rc && l < o->n_prompt_lengths; l++) {
        for (int k = 0; !rc && k < o->n_concurrency; k++) {
            struct al_bcell c = {.concurrency = o->concurrency[k], .prompt_length = o->prompt_lengths[l]};
            c.n = al_bench_cell_requests(o, c.concurrency);
            c.s = calloc((size_t)c.n, sizeof *c.s);
            if (!c.s) {
                rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
                break;
            }
            rc = run_cell(m, o, &c, &counter, err);
            if (!rc) {
                json_t *cell = al_bench_cell_json(&c);
                if (!cell || json_array_append_new(json_object_get(rep, "cells"), cell))
                    rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
                else if (o->progress)
                    al_bench_cell_progress(cell);
            }
            for (int i = 0; i < c.n; i++)
                free(c.s[i].itl_ms);
            free(c.s);
        }
    }
    if (rc) {
        json_decref(rep);
        return rc;
    }
    al_bench_report_finish(rep, now_ms() - t_run);
    *out = rep;
    return AL_OK;
}
