/*
 * golden.c: running the golden prompts (on a loaded model or a server), and
 * recording.json. Runs are greedy and one prompt at a time, so that nothing
 * but the model, the runtime and the machine can change the output.
 */
#include "suite/suite_int.h"

#include <math.h>
#include <pthread.h>
#include <time.h>

#include "core/limits.h"
#include "core/time.h"
#include "core/version.h"
#include "health/health.h"
#include "loadgen/loadgen.h"

static void token_release(struct al_golden_token *t)
{
    free(t->text);
    for (int k = 0; k < t->n_top; k++)
        free(t->top[k].text);
    free(t->top);
}

void al_golden_run_free(struct al_golden_run *run)
{
    if (!run)
        return;
    for (size_t i = 0; i < run->n_res; i++) {
        struct al_golden_result *r = &run->res[i];
        free(r->id);
        free(r->prompt_ids);
        for (int t = 0; t < r->n_tok; t++)
            token_release(&r->tok[t]);
        free(r->tok);
    }
    free(run->res);
    free(run);
}

void al_golden_cond_local(struct al_golden_cond *c)
{
    struct al_machine mach;
    al_health_machine(&mach);
    snprintf(c->llama_commit, sizeof c->llama_commit, "%s", al_engine_llama_commit());
    snprintf(c->system_info, sizeof c->system_info, "%s", al_engine_system_info());
    snprintf(c->cpu_model, sizeof c->cpu_model, "%s", mach.cpu_model);
    snprintf(c->cpu_flags, sizeof c->cpu_flags, "%s", mach.cpu_flags);
    snprintf(c->airlock_version, sizeof c->airlock_version, "%s", AIRLOCK_VERSION);
    al_time_format((int64_t)time(NULL), 0, AL_TIME_SECONDS, c->recorded_at, sizeof c->recorded_at);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Figures for the targets, from the per-prompt timings. */
static void measure(struct al_golden_run *run)
{
    double gen_ms = 0, toks = 0;
    double *ttft = calloc(run->n_res ? run->n_res : 1, sizeof *ttft);
    size_t n = 0;
    for (size_t i = 0; i < run->n_res; i++) {
        const struct al_golden_result *r = &run->res[i];
        if (r->gen_ms > 0 && r->n_tok > 1) {
            gen_ms += r->gen_ms;
            toks += r->n_tok - 1;
        }
        if (ttft && r->ttft_ms >= 0)
            ttft[n++] = r->ttft_ms;
    }
    run->decode_tps = gen_ms > 0 ? toks / (gen_ms / 1e3) : -1;
    run->ttft_p95_ms = -1;
    if (n) {
        qsort(ttft, n, sizeof *ttft, cmp_double);
        size_t k = (size_t)ceil(0.95 * (double)n);
        run->ttft_p95_ms = ttft[k ? k - 1 : 0];
    }
    free(ttft);
    struct al_health h;
    al_health_read(&h);
    run->rss_peak_mb = h.rss_peak ? (double)h.rss_peak / (1024.0 * 1024.0) : -1;
}

/* ---- on a loaded model ---- */

struct collect {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done, nomem;
    struct al_golden_token *tok;
    int n, cap;
    struct al_engine_gen_result res;
};

static void on_probs(void *ud, const struct al_engine_token_probs *tp)
{
    struct collect *c = ud;
    if (c->nomem || c->n >= AL_LIMIT_GOLDEN_TOKENS)
        return;
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 64;
        struct al_golden_token *t = realloc(c->tok, (size_t)cap * sizeof *t);
        if (!t) {
            c->nomem = true;
            return;
        }
        c->tok = t;
        c->cap = cap;
    }
    struct al_golden_token *t = &c->tok[c->n];
    memset(t, 0, sizeof *t);
    t->id = tp->token;
    t->logprob = tp->logprob;
    t->top = calloc((size_t)(tp->n ? tp->n : 1), sizeof *t->top);
    if (!t->top) {
        c->nomem = true;
        return;
    }
    for (int k = 0; k < tp->n; k++) {
        t->top[k].id = tp->ids[k];
        t->top[k].logprob = tp->logprobs[k];
    }
    t->n_top = tp->n;
    c->n++;
}

static void on_done(void *ud, const struct al_engine_gen_result *res)
{
    struct collect *c = ud;
    pthread_mutex_lock(&c->mu);
    c->res = *res;
    c->res.error = NULL;
    c->done = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static char *piece(struct al_engine_model *m, int32_t id)
{
    char buf[256];
    if (al_engine_token_piece(m, id, true, buf, sizeof buf) < 0)
        buf[0] = '\0';
    return strdup(buf);
}

static enum al_rc run_one(struct al_engine_model *m, const struct al_golden_prompt *gp, int top_k,
                          struct al_golden_result *out, struct al_err *err)
{
    struct collect c = {.done = false};
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    struct al_engine_gen_params p = al_engine_gen_params_default();
    p.temperature = 0;
    p.max_tokens = gp->max_tokens;
    p.n_probs = top_k;
    p.on_probs = on_probs;
    p.probs_ud = &c;
    size_t n_ids = 0;
    enum al_rc rc = al_engine_tokenize(m, gp->prompt, strlen(gp->prompt), p.add_bos, p.parse_special,
                                       &out->prompt_ids, &n_ids, err);
    out->n_prompt_ids = (int)n_ids;
    if (!rc)
        rc = al_engine_submit(m, gp->prompt, &p, NULL, on_done, &c, NULL, err);
    if (!rc) {
        pthread_mutex_lock(&c.mu);
        while (!c.done)
            pthread_cond_wait(&c.cv, &c.mu);
        pthread_mutex_unlock(&c.mu);
        if (c.nomem)
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory recording '%s'", gp->id);
        else if (c.res.finish != AL_ENGINE_FINISH_STOP && c.res.finish != AL_ENGINE_FINISH_LENGTH)
            rc = al_err_set(err, AL_ERR_INTERNAL, "golden prompt '%s' ended with '%s'", gp->id,
                            al_engine_finish_name(c.res.finish));
    }
    out->tok = c.tok;
    out->n_tok = c.n;
    snprintf(out->finish, sizeof out->finish, "%s", al_engine_finish_name(c.res.finish));
    out->ttft_ms = c.res.ttft_ms;
    out->gen_ms = c.res.gen_ms;
    for (int t = 0; !rc && t < c.n; t++) {
        c.tok[t].text = piece(m, c.tok[t].id);
        for (int k = 0; k < c.tok[t].n_top; k++)
            c.tok[t].top[k].text = piece(m, c.tok[t].top[k].id);
    }
    pthread_cond_destroy(&c.cv);
    pthread_mutex_destroy(&c.mu);
    return rc;
}

enum al_rc al_golden__run_new(const struct al_suite *s, struct al_golden_run **out, struct al_err *err)
{
    if (!s || !out || *out)
        return al_err_set(err, AL_ERR_USAGE, "golden run: bad arguments");
    if (s->n_golden == 0)
        return al_err_set(err, AL_ERR_INVALID, "the suite in '%s' has no golden prompts (golden.json)", s->dir);
    struct al_golden_run *run = calloc(1, sizeof *run);
    if (run)
        run->res = calloc(s->n_golden, sizeof *run->res);
    if (!run || !run->res) {
        free(run);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    run->top_k = s->top_k;
    *out = run;
    return AL_OK;
}

enum al_rc al_golden_run_engine(struct al_engine_model *m, const struct al_suite *s, int threads,
                                struct al_golden_run **out, struct al_err *err)
{
    struct al_golden_run *run = NULL;
    enum al_rc rc = al_golden__run_new(s, &run, err);
    if (rc || !run)
        return rc ? rc : AL_ERR_INTERNAL;
    al_golden_cond_local(&run->cond);
    snprintf(run->cond.source, sizeof run->cond.source, "engine");
    struct al_engine_model_info info;
    al_engine_model_info(m, &info);
    snprintf(run->cond.model_digest, sizeof run->cond.model_digest, "%s", info.digest);
    snprintf(run->cond.model_desc, sizeof run->cond.model_desc, "%s", info.desc);
    run->cond.threads = threads;
    char where[sizeof run->cond.device];
    if (al_engine_model_placement(m, where, sizeof where) > 0)
        snprintf(run->cond.device, sizeof run->cond.device, "%s", where);
    else
        snprintf(run->cond.device, sizeof run->cond.device, "CPU");
    /* A first request pays for graph allocation and cold caches: keep it out
     * of the figures the targets are checked against. */
    struct al_engine_gen_params wp = al_engine_gen_params_default();
    wp.temperature = 0;
    wp.max_tokens = 4;
    char *warm = NULL;
    struct al_err werr = AL_ERR_INIT;
    if (al_engine_generate(m, s->golden[0].prompt, &wp, &warm, NULL, &werr) == AL_OK)
        free(warm);
    for (size_t i = 0; !rc && i < s->n_golden; i++) {
        struct al_golden_result *r = &run->res[i];
        run->n_res = i + 1;
        r->id = strdup(s->golden[i].id);
        if (!r->id)
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        else
            rc = run_one(m, &s->golden[i], s->top_k, r, err);
    }
    if (rc) {
        al_golden_run_free(run);
        return rc;
    }
    measure(run);
    *out = run;
    return AL_OK;
}

enum al_rc al_golden_record(struct al_engine_model *m, const struct al_suite *s, int threads,
                            struct al_golden_run **out, struct al_err *err)
{
    struct al_golden_run *run = NULL;
    enum al_rc rc = al_golden_run_engine(m, s, threads, &run, err);
    if (!rc)
        rc = al_golden_save(run, s->dir, err);
    if (rc || !out)
        al_golden_run_free(run);
    else
        *out = run;
    return rc;
}
