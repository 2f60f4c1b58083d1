/*
 * run_server.c: the bench grid against a running server, through the load
 * generator (src/loadgen). Prompt lengths are met with the server's own
 * tokenizer where it offers /tokenize and /detokenize (llama-server does),
 * else approximated by words (about 4 tokens for 3 words of English). The
 * prompt time of a request is not visible from outside: prompt tokens/s is
 * computed from the time to first token, which also holds the HTTP round trip
 * and any queueing, so it reads low at higher concurrency.
 */
#include "bench/bench_int.h"

#include <time.h>

#include "core/buf.h"
#include "core/limits.h"
#include "health/health.h"
#include "loadgen/loadgen.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The server's tokens for text, cut to n and turned back into text; NULL when
 * the server has no /tokenize. */
static char *server_cut(const char *url, const char *text, int n)
{
    char ep[AL_LIMIT_PATH];
    json_t *req = json_pack("{s:s, s:b}", "content", text, "add_special", 0);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL, *resp = NULL, *out = NULL;
    json_decref(req);
    long status = 0;
    struct al_err err = AL_ERR_INIT;
    json_t *j = NULL, *toks;
    if (!body || snprintf(ep, sizeof ep, "%s/tokenize", url) >= (int)sizeof ep ||
        al_http_request(ep, body, 60, &resp, &status, &err) || status != 200)
        goto out;
    j = json_loads(resp, 0, NULL);
    toks = json_object_get(j, "tokens");
    if (!json_is_array(toks))
        goto out;
    while (json_array_size(toks) > (size_t)n)
        json_array_remove(toks, json_array_size(toks) - 1);
    free(body);
    free(resp);
    resp = NULL;
    req = json_pack("{s:O}", "tokens", toks);
    body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body || snprintf(ep, sizeof ep, "%s/detokenize", url) >= (int)sizeof ep ||
        al_http_request(ep, body, 60, &resp, &status, &err) || status != 200)
        goto out;
    json_decref(j);
    j = json_loads(resp, 0, NULL);
    if (json_string_value(json_object_get(j, "content")))
        out = strdup(json_string_value(json_object_get(j, "content")));
out:
    json_decref(j);
    free(body);
    free(resp);
    return out;
}

static char *make_prompt(const char *url, const struct al_bench_opts *o, int idx, int len, bool *tokenizer)
{
    if (len <= 1)
        return strdup(""); /* BOS alone, as in run_engine.c */
    const char *base = o->texts[(size_t)idx % o->n_texts];
    struct al_buf b;
    al_buf_init(&b, AL_LIMIT_PROMPT_BYTES);
    al_buf_addf(&b, "%d. ", idx);
    while (!al_buf_failed(&b) && b.len < (size_t)len * 8 + 64)
        al_buf_addstr(&b, base);
    if (al_buf_failed(&b)) {
        al_buf_release(&b);
        return NULL;
    }
    char *cut = *tokenizer ? server_cut(url, b.data, len > 1 ? len - 1 : 1) : NULL;
    if (cut || !*tokenizer) {
        if (cut) {
            al_buf_release(&b);
            return cut;
        }
    }
    *tokenizer = false;
    /* Words: keep about 3 for every 4 tokens. */
    int words = len * 3 / 4 > 1 ? len * 3 / 4 : 1, seen = 0;
    size_t i = 0;
    for (; i < b.len && seen < words; i++)
        if (b.data[i] == ' ')
            seen++;
    b.data[i] = '\0';
    char *text = strdup(b.data);
    al_buf_release(&b);
    return text;
}

enum al_rc al_bench_server(const char *url, const struct al_bench_opts *o, json_t **out, struct al_err *err)
{
    if (!url || !o || !out || *out)
        return al_err_set(err, AL_ERR_USAGE, "al_bench_server: bad arguments");
    enum al_rc rc = al_bench_opts_check(o, "al_bench_server", err);
    if (rc)
        return rc;
    json_t *rep = al_bench_report_new(o, "server");
    if (!rep)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    json_object_set_new(rep, "model", json_pack("{s:s, s:s, s:s}", "ref", url, "digest", "", "desc", "server"));
    bool tokenizer = true;
    int counter = 0;
    double t_run = now_ms();
    int wlen = o->prompt_lengths[0]; /* the warm-up's: the longest, as in run_engine.c */
    for (int i = 1; i < o->n_prompt_lengths; i++)
        if (o->prompt_lengths[i] > wlen)
            wlen = o->prompt_lengths[i];
    for (int l = -1; !rc && l < o->n_prompt_lengths; l++) {
        for (int k = 0; !rc && k < o->n_concurrency; k++) {
            /* l == -1: one warm-up request, not reported. */
            struct al_bcell c = {.concurrency = l < 0 ? 1 : o->concurrency[k],
                                 .prompt_length = l < 0 ? wlen : o->prompt_lengths[l]};
            c.n = l < 0 ? 1 : al_bench_cell_requests(o, c.concurrency);
            char **prompts = calloc((size_t)c.n, sizeof *prompts);
            struct al_lg_sample *ls = calloc((size_t)c.n, sizeof *ls);
            c.s = calloc((size_t)c.n, sizeof *c.s);
            if (!prompts || !ls || !c.s)
                rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
            for (int i = 0; !rc && i < c.n; i++)
                if (!(prompts[i] = make_prompt(url, o, counter++, c.prompt_length, &tokenizer)))
                    rc = al_err_set(err, AL_ERR_LIMIT, "a prompt of %d tokens is over AL_LIMIT_PROMPT_BYTES",
                                    c.prompt_length);
            struct al_lg_opts lo = {.url = url, .concurrency = c.concurrency, .requests = c.n,
                                    .max_tokens = o->gen_tokens, .ignore_eos = true, .timeout_s = 600,
                                    .prompts = (const char *const *)prompts, .n_prompts = c.n};
            struct al_health h0, h1;
            al_health_read(&h0);
            if (!rc)
                rc = al_loadgen_run(&lo, ls, &c.wall_ms, err);
            al_health_read(&h1);
            c.cpu_util = al_health_cpu_util(&h0, &h1);
            c.proc_util = -1;
            double t0 = al_health_max_temp(&h0), t1 = al_health_max_temp(&h1);
            c.max_temp = t1 > t0 ? t1 : t0;
            for (int i = 0; !rc && i < c.n; i++) {
                struct al_bsample *s = &c.s[i];
                s->n_prompt = ls[i].n_prompt;
                s->n_gen = ls[i].n_gen;
                s->ttft_ms = ls[i].ttft_ms;
                s->prompt_ms = ls[i].ttft_ms;
                s->latency_ms = ls[i].latency_ms;
                s->gen_ms = ls[i].ttft_ms >= 0 ? ls[i].latency_ms - ls[i].ttft_ms : -1;
                s->itl_ms = ls[i].itl_ms;
                s->n_itl = ls[i].n_itl;
                snprintf(s->error, sizeof s->error, "%s", ls[i].error);
            }
            if (!rc && l >= 0) {
                json_t *cell = al_bench_cell_json(&c);
                if (!cell || json_array_append_new(json_object_get(rep, "cells"), cell))
                    rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
                else if (o->progress)
                    al_bench_cell_progress(cell);
            }
            if (ls)
                al_lg_samples_release(ls, c.n);
            for (int i = 0; prompts && i < c.n; i++)
                free(prompts[i]);
            free(prompts);
            free(ls);
            free(c.s);
            if (l < 0)
                break;
        }
    }
    json_object_set_new(rep, "prompt_tokens_from", json_string(tokenizer ? "server tokenizer" : "words (approximate)"));
    if (rc) {
        json_decref(rep);
        return rc;
    }
    al_bench_report_finish(rep, now_ms() - t_run);
    *out = rep;
    return AL_OK;
}
