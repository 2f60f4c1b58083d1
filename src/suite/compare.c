/*
 * compare.c: a golden run against its recording.
 *
 * Up to the first divergent token both runs saw the same context, so their
 * distributions are comparable position by position: the drift is the largest
 * |difference| of a log-probability among the tokens both list in their top
 * k, and the overlap is the share of top-k tokens they have in common. After
 * a divergence the contexts differ and nothing more is compared.
 *
 *   float noise    drift within tolerance; tokens equal, or diverging where
 *                  the two candidates were within the tie margin
 *   weights        top-k sets agree, log-probabilities drift beyond tolerance
 *                  (another quantization, a damaged tensor)
 *   another model  top-k sets largely disjoint, or a confident divergence
 *   tokenizer      the prompt's token ids differ (checked first)
 *
 * Tokens are matched by id where both sides have ids, else by text.
 */
#include "suite/suite_int.h"

#include <math.h>

/* Below this, two log-probabilities are the same float computation. */
#define EXACT_EPS 1e-6
/* The smallest top-k spread a relative drift is measured against: a near tie
 * of all k candidates must not turn float noise into a failure. */
#define SPREAD_FLOOR 0.02

const char *al_verdict_name(enum al_verdict v)
{
    switch (v) {
    case AL_VERDICT_IDENTICAL: return "identical";
    case AL_VERDICT_FLOAT_NOISE: return "float-noise";
    case AL_VERDICT_MISSING: return "missing";
    case AL_VERDICT_NONDETERMINISM: return "nondeterministic";
    case AL_VERDICT_TOKENIZER: return "tokenizer-differs";
    case AL_VERDICT_WEIGHTS: return "weights-differ";
    case AL_VERDICT_OTHER_MODEL: return "other-model";
    }
    return "unknown";
}

bool al_verdict_ok(enum al_verdict v) { return v == AL_VERDICT_IDENTICAL || v == AL_VERDICT_FLOAT_NOISE; }

static bool same_tok(int32_t ida, const char *ta, int32_t idb, const char *tb)
{
    if (ida >= 0 && idb >= 0)
        return ida == idb;
    return strcmp(ta ? ta : "", tb ? tb : "") == 0;
}

/* The log-probability t has in g's top list, or NAN. */
static double lp_in(const struct al_golden_token *g, int32_t id, const char *text)
{
    if (same_tok(g->id, g->text, id, text))
        return g->logprob;
    for (int k = 0; k < g->n_top; k++)
        if (same_tok(g->top[k].id, g->top[k].text, id, text))
            return g->top[k].logprob;
    return NAN;
}

static void cond_note(const struct al_golden_cond *a, const struct al_golden_cond *b, struct al_validation *v)
{
    char *o = v->conditions_note;
    size_t size = sizeof v->conditions_note, len = 0;
    o[0] = '\0';
#define NOTE(...)                                                                                                      \
    do {                                                                                                               \
        int n_ = snprintf(o + len, size - len, __VA_ARGS__);                                                           \
        if (n_ > 0 && (size_t)n_ < size - len)                                                                         \
            len += (size_t)n_;                                                                                         \
    } while (0)
    if (strcmp(a->llama_commit, b->llama_commit) != 0)
        NOTE("%sllama.cpp %s (recorded) vs %s", len ? "; " : "", a->llama_commit[0] ? a->llama_commit : "unknown",
             b->llama_commit[0] ? b->llama_commit : "unknown");
    if (strcmp(a->system_info, b->system_info) != 0)
        NOTE("%sCPU features differ (%s vs %s)", len ? "; " : "", a->cpu_model[0] ? a->cpu_model : "unknown",
             b->cpu_model[0] ? b->cpu_model : "unknown");
    /* Another backend computes in another order: float differences expected */
    const char *da = a->device[0] ? a->device : "CPU", *db = b->device[0] ? b->device : "CPU";
    if (strcmp(da, db) != 0)
        NOTE("%sdevice %s (recorded) vs %s", len ? "; " : "", da, db);
    if (strcmp(a->model_digest, b->model_digest) != 0)
        NOTE("%smodel %.19s (recorded) vs %.19s", len ? "; " : "", a->model_digest[0] ? a->model_digest : "unknown",
             b->model_digest[0] ? b->model_digest : "unknown");
    if (strcmp(b->source, "engine") != 0)
        NOTE("%sserver %s: CPU and model not known", len ? "; " : "", b->source);
#undef NOTE
    v->conditions_match = len == 0 && a->llama_commit[0] && a->system_info[0] && a->model_digest[0];
}

static void compare_one(const struct al_suite *s, bool exact, const struct al_golden_result *r,
                        const struct al_golden_result *x, struct al_prompt_cmp *c)
{
    c->diverge_at = c->drift_at = -1;
    c->margin = 0;
    if (r->prompt_ids && x->prompt_ids) {
        int n = r->n_prompt_ids < x->n_prompt_ids ? r->n_prompt_ids : x->n_prompt_ids, i = 0;
        while (i < n && r->prompt_ids[i] == x->prompt_ids[i])
            i++;
        if (i < n || r->n_prompt_ids != x->n_prompt_ids) {
            c->verdict = AL_VERDICT_TOKENIZER;
            snprintf(c->detail, sizeof c->detail,
                     "the prompt tokenizes differently from position %d (%d tokens recorded, %d now): "
                     "another tokenizer or vocabulary",
                     i, r->n_prompt_ids, x->n_prompt_ids);
            return;
        }
    }
    int n = r->n_tok < x->n_tok ? r->n_tok : x->n_tok;
    double overlap_sum = 0;
    int p;
    for (p = 0; p < n; p++) {
        const struct al_golden_token *a = &r->tok[p], *b = &x->tok[p];
        double drift = 0;
        int common = 0;
        for (int k = 0; k < a->n_top; k++) {
            double lb = lp_in(b, a->top[k].id, a->top[k].text);
            if (isnan(lb))
                continue;
            common++;
            double d = fabs(lb - a->top[k].logprob);
            if (d > drift)
                drift = d;
        }
        double lb = lp_in(b, a->id, a->text);
        if (!isnan(lb) && fabs(lb - a->logprob) > drift)
            drift = fabs(lb - a->logprob);
        int width = a->n_top > b->n_top ? a->n_top : b->n_top;
        overlap_sum += width ? (double)common / width : 1.0;
        double spread = a->n_top > 1 ? a->top[0].logprob - a->top[a->n_top - 1].logprob : 0;
        double rel = drift / (spread > SPREAD_FLOOR ? spread : SPREAD_FLOOR);
        if (drift > c->max_drift)
            c->max_drift = drift;
        if (rel > c->max_rel)
            c->max_rel = rel;
        if (c->drift_at < 0 && (exact ? drift > EXACT_EPS : drift > s->tol_logprob || rel > s->tol_relative))
            c->drift_at = p;
        if (!same_tok(a->id, a->text, b->id, b->text)) {
            /* How close the two candidates were, seen from either side. */
            double ra = a->logprob - lp_in(a, b->id, b->text);
            double rb = b->logprob - lp_in(b, a->id, a->text);
            if (isnan(ra))
                ra = a->n_top ? a->logprob - a->top[a->n_top - 1].logprob : INFINITY;
            if (isnan(rb))
                rb = b->n_top ? b->logprob - b->top[b->n_top - 1].logprob : INFINITY;
            c->margin = ra > rb ? ra : rb;
            c->diverge_at = p;
            p++;
            break;
        }
    }
    c->n_compared = p;
    c->overlap = p ? overlap_sum / p : 1.0;
    /* One side ended: an end-of-generation token may be listed by one source
     * and not by the other; more than that is a divergence. */
    if (c->diverge_at < 0 && r->n_tok != x->n_tok && abs(r->n_tok - x->n_tok) > 1) {
        c->diverge_at = n;
        c->margin = INFINITY;
    }
    char where[256] = "";
    if (c->diverge_at >= 0 && c->diverge_at < r->n_tok && c->diverge_at < x->n_tok)
        snprintf(where, sizeof where, "tokens diverge at position %d: recorded '%.40s' (%.3f), got '%.40s' (%.3f), "
                 "margin %.3f", c->diverge_at, r->tok[c->diverge_at].text, (double)r->tok[c->diverge_at].logprob,
                 x->tok[c->diverge_at].text, (double)x->tok[c->diverge_at].logprob, c->margin);
    else if (c->diverge_at >= 0)
        snprintf(where, sizeof where, "tokens diverge at position %d: %d tokens recorded, %d now", c->diverge_at,
                 r->n_tok, x->n_tok);
    else
        snprintf(where, sizeof where, "all %d tokens match", n);
    char drift[160] = "";
    if (c->drift_at >= 0)
        snprintf(drift, sizeof drift, "; log-probabilities drift up to %.4g (%.0f%% of the top-%d spread) from position %d",
                 c->max_drift, 100 * c->max_rel, s->top_k, c->drift_at);
    else
        snprintf(drift, sizeof drift, "; largest log-probability difference %.3g", c->max_drift);

    const char *why;
    if (exact) {
        bool same = c->diverge_at < 0 && c->max_drift <= EXACT_EPS;
        c->verdict = same ? AL_VERDICT_IDENTICAL : AL_VERDICT_NONDETERMINISM;
        why = same ? "" : " (recorded under the same conditions: the output must be identical)";
    } else if (c->diverge_at < 0 && c->max_drift <= EXACT_EPS) {
        c->verdict = AL_VERDICT_IDENTICAL;
        why = "";
    } else if (c->overlap < s->min_overlap) {
        c->verdict = AL_VERDICT_OTHER_MODEL;
        why = ": the top candidates are largely different: another model";
    } else if (c->drift_at < 0 && (c->diverge_at < 0 || c->margin <= s->tol_tie)) {
        c->verdict = AL_VERDICT_FLOAT_NOISE;
        why = c->diverge_at >= 0 ? ": a near tie, harmless floating-point difference" : ": within tolerance";
    } else if (c->drift_at >= 0) {
        c->verdict = AL_VERDICT_WEIGHTS;
        /* Re-quantizing a trained model moves log-probabilities by tenths at
         * most and keeps the candidates; a damaged tensor moves them more. */
        why = c->max_drift < 0.5 && c->overlap >= 0.9
                  ? ": the same candidates, a little shifted: the weights differ slightly (another quantization?)"
                  : ": the same candidates, much shifted: the weights differ (a damaged tensor, a broken "
                    "quantization?)";
    } else {
        c->verdict = AL_VERDICT_OTHER_MODEL;
        why = ": a confident divergence: another model";
    }
    snprintf(c->detail, sizeof c->detail, "%s%s; top-%d overlap %.2f%s", where, drift, s->top_k, c->overlap, why);
}

enum al_rc al_golden_compare(const struct al_suite *s, const struct al_golden_run *rec,
                             const struct al_golden_run *run, struct al_validation *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    cond_note(&rec->cond, &run->cond, out);
    /* Room for every recorded prompt and every prompt of the run besides. */
    out->cmp = calloc(rec->n_res + run->n_res + 1, sizeof *out->cmp);
    if (!out->cmp)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < rec->n_res; i++) {
        struct al_prompt_cmp *c = &out->cmp[i];
        const struct al_golden_result *r = &rec->res[i], *x = NULL;
        for (size_t k = 0; k < run->n_res && !x; k++)
            if (strcmp(run->res[k].id, r->id) == 0)
                x = &run->res[k];
        c->id = r->id;
        out->n_cmp = i + 1;
        if (!x) {
            c->verdict = AL_VERDICT_MISSING;
            c->diverge_at = c->drift_at = -1;
            snprintf(c->detail, sizeof c->detail, "recorded, but not in the suite's golden.json any more");
        } else {
            compare_one(s, out->conditions_match, r, x, c);
        }
        if (!al_verdict_ok(c->verdict))
            out->n_failed++;
    }
    /* A golden prompt that was never recorded cannot pass unchecked. */
    for (size_t k = 0; k < run->n_res; k++) {
        bool recorded = false;
        for (size_t i = 0; i < rec->n_res && !recorded; i++)
            recorded = strcmp(rec->res[i].id, run->res[k].id) == 0;
        if (recorded)
            continue;
        struct al_prompt_cmp *c = &out->cmp[out->n_cmp++];
        c->id = run->res[k].id;
        c->verdict = AL_VERDICT_MISSING;
        c->diverge_at = c->drift_at = -1;
        snprintf(c->detail, sizeof c->detail, "in the suite's golden.json, but not in the recording: record again");
        out->n_failed++;
    }
    return AL_OK;
}

void al_validation_release(struct al_validation *v)
{
    free(v->cmp);
    memset(v, 0, sizeof *v);
}
