/*
 * golden_io.c: recording.json (format "airlock-golden/1") and golden runs
 * against an OpenAI-compatible server.
 *
 * Log-probabilities are floats; jansson writes the double they widen to with
 * 17 significant digits, so a recording read back compares bit for bit.
 */
#include "suite/suite_int.h"

#include <math.h>

#include "core/fs.h"
#include "core/limits.h"
#include "loadgen/loadgen.h"

/* ---- writing ---- */

static json_t *cond_json(const struct al_golden_cond *c)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "source", c->source, "llama_commit",
                     c->llama_commit, "system_info", c->system_info, "cpu_model", c->cpu_model, "cpu_flags",
                     c->cpu_flags, "model_digest", c->model_digest, "model_desc", c->model_desc, "airlock_version",
                     c->airlock_version, "threads", c->threads, "recorded_at", c->recorded_at, "device",
                     c->device[0] ? c->device : "CPU");
}

static json_t *num_or_null(double v) { return v >= 0 ? json_real(v) : json_null(); }

static json_t *result_json(const struct al_golden_result *r)
{
    json_t *ids = json_array(), *toks = json_array();
    json_t *o = json_pack("{s:s, s:s}", "id", r->id, "finish", r->finish);
    if (!ids || !toks || !o)
        goto nomem;
    if (r->prompt_ids) {
        for (int i = 0; i < r->n_prompt_ids; i++)
            json_array_append_new(ids, json_integer(r->prompt_ids[i]));
        json_object_set(o, "prompt_ids", ids);
    }
    for (int t = 0; t < r->n_tok; t++) {
        const struct al_golden_token *g = &r->tok[t];
        json_t *top = json_array();
        for (int k = 0; top && k < g->n_top; k++)
            json_array_append_new(top, json_pack("[i, f, s]", g->top[k].id, (double)g->top[k].logprob,
                                                 g->top[k].text ? g->top[k].text : ""));
        json_array_append_new(toks, json_pack("{s:i, s:s, s:f, s:o}", "id", g->id, "text", g->text ? g->text : "",
                                              "logprob", (double)g->logprob, "top", top ? top : json_array()));
    }
    json_object_set(o, "tokens", toks);
    json_decref(ids);
    json_decref(toks);
    return o;
nomem:
    json_decref(ids);
    json_decref(toks);
    json_decref(o);
    return NULL;
}

enum al_rc al_golden_save(const struct al_golden_run *run, const char *dir, struct al_err *err)
{
    json_t *results = json_array();
    json_t *j = json_pack("{s:s, s:o, s:i, s:{s:o, s:o, s:o}}", "format", AL_RECORDING_FORMAT, "conditions",
                          cond_json(&run->cond), "top_k", run->top_k, "measured", "decode_tps",
                          num_or_null(run->decode_tps), "ttft_p95_ms", num_or_null(run->ttft_p95_ms), "rss_peak_mb",
                          num_or_null(run->rss_peak_mb));
    if (!j || !results) {
        json_decref(j);
        json_decref(results);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < run->n_res; i++) {
        json_t *r = result_json(&run->res[i]);
        if (!r || json_array_append_new(results, r)) {
            json_decref(j);
            json_decref(results);
            return al_err_set(err, AL_ERR_NOMEM, "out of memory");
        }
    }
    json_object_set_new(j, "results", results);
    enum al_rc rc = al_suite_write_json(dir, "recording.json", j, err);
    json_decref(j);
    return rc;
}

/* ---- reading ---- */

static void get_str(json_t *o, const char *key, char *out, size_t size)
{
    const char *s = json_string_value(json_object_get(o, key));
    snprintf(out, size, "%s", s ? s : "");
}

static double get_real(json_t *o, const char *key)
{
    json_t *x = json_object_get(o, key);
    return json_is_number(x) ? json_number_value(x) : -1;
}

static bool is_id(json_t *x) { return json_is_integer(x) && json_integer_value(x) >= -1 && json_integer_value(x) < (1 << 30); }

/* Room for n tokens in r->tok; AL_ERR_LIMIT over AL_LIMIT_GOLDEN_TOKENS. */
static enum al_rc alloc_tokens(struct al_golden_result *r, size_t n)
{
    if (n > AL_LIMIT_GOLDEN_TOKENS)
        return AL_ERR_LIMIT;
    r->tok = calloc(n + 1, sizeof *r->tok);
    return r->tok ? AL_OK : AL_ERR_NOMEM;
}

/* Fills g with a copy of text (NULL reads as "") and room for top_cap
 * alternatives. On AL_ERR_NOMEM what was allocated stays for al_golden_run_free. */
static enum al_rc token_init(struct al_golden_token *g, int32_t id, float logprob, const char *text, size_t top_cap)
{
    g->id = id;
    g->logprob = logprob;
    g->text = strdup(text ? text : "");
    g->top = calloc(top_cap + 1, sizeof *g->top);
    return g->text && g->top ? AL_OK : AL_ERR_NOMEM;
}

/* Sets alternative k of g, with a copy of text (NULL reads as ""), as the
 * last one so far. */
static enum al_rc top_set(struct al_golden_token *g, size_t k, int32_t id, float logprob, const char *text)
{
    g->top[k].id = id;
    g->top[k].logprob = logprob;
    g->top[k].text = strdup(text ? text : "");
    g->n_top = (int)k + 1;
    return g->top[k].text ? AL_OK : AL_ERR_NOMEM;
}

static enum al_rc parse_token(json_t *t, int top_cap, struct al_golden_token *g)
{
    json_t *top = json_object_get(t, "top");
    if (!is_id(json_object_get(t, "id")) || !json_is_number(json_object_get(t, "logprob")) || !json_is_array(top) ||
        json_array_size(top) > (size_t)top_cap)
        return AL_ERR_INVALID;
    enum al_rc rc = token_init(g, (int32_t)json_integer_value(json_object_get(t, "id")),
                               (float)json_number_value(json_object_get(t, "logprob")),
                               json_string_value(json_object_get(t, "text")), json_array_size(top));
    if (rc)
        return rc;
    for (size_t k = 0; !rc && k < json_array_size(top); k++) {
        json_t *e = json_array_get(top, k);
        if (!is_id(json_array_get(e, 0)) || !json_is_number(json_array_get(e, 1)))
            return AL_ERR_INVALID;
        rc = top_set(g, k, (int32_t)json_integer_value(json_array_get(e, 0)),
                     (float)json_number_value(json_array_get(e, 1)), json_string_value(json_array_get(e, 2)));
    }
    return rc;
}

static enum al_rc parse_result(json_t *o, struct al_golden_result *r)
{
    const char *id = json_string_value(json_object_get(o, "id"));
    json_t *ids = json_object_get(o, "prompt_ids"), *toks = json_object_get(o, "tokens");
    if (!id || !json_is_array(toks) || json_array_size(toks) > AL_LIMIT_GOLDEN_TOKENS ||
        json_array_size(ids) > AL_LIMIT_PROMPT_TOKENS)
        return AL_ERR_INVALID;
    r->id = strdup(id);
    get_str(o, "finish", r->finish, sizeof r->finish);
    r->ttft_ms = r->gen_ms = -1;
    r->tok = calloc(json_array_size(toks) + 1, sizeof *r->tok);
    if (!r->id || !r->tok)
        return AL_ERR_NOMEM;
    if (json_is_array(ids)) {
        r->prompt_ids = calloc(json_array_size(ids) + 1, sizeof *r->prompt_ids);
        if (!r->prompt_ids)
            return AL_ERR_NOMEM;
        for (size_t i = 0; i < json_array_size(ids); i++) {
            if (!is_id(json_array_get(ids, i)))
                return AL_ERR_INVALID;
            r->prompt_ids[i] = (int32_t)json_integer_value(json_array_get(ids, i));
        }
        r->n_prompt_ids = (int)json_array_size(ids);
    }
    for (size_t t = 0; t < json_array_size(toks); t++) {
        r->n_tok = (int)t + 1;
        enum al_rc rc = parse_token(json_array_get(toks, t), AL_LIMIT_TOP_PROBS, &r->tok[t]);
        if (rc)
            return rc;
    }
    return AL_OK;
}

/* Reads a recording from its JSON object j (taken: released here); path
 * names it in messages. */
static enum al_rc golden_parse(const char *path, json_t *j, struct al_golden_run **out, struct al_err *err)
{
    enum al_rc rc = AL_OK;
    const char *fmt = json_string_value(json_object_get(j, "format"));
    json_t *results = json_object_get(j, "results"), *cond = json_object_get(j, "conditions");
    json_t *meas = json_object_get(j, "measured");
    struct al_golden_run *run = NULL;
    if (!fmt || strcmp(fmt, AL_RECORDING_FORMAT) != 0 || !json_is_array(results) || !json_is_object(cond)) {
        rc = al_err_set(err, AL_ERR_INVALID, "'%s' is not a recording in format \"%s\"", path, AL_RECORDING_FORMAT);
        goto out;
    }
    if (json_array_size(results) > AL_LIMIT_SUITE_PROMPTS) {
        rc = al_err_set(err, AL_ERR_LIMIT, "'%s': over %d results (AL_LIMIT_SUITE_PROMPTS)", path,
                        AL_LIMIT_SUITE_PROMPTS);
        goto out;
    }
    run = calloc(1, sizeof *run);
    if (run)
        run->res = calloc(json_array_size(results) + 1, sizeof *run->res);
    if (!run || !run->res) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    struct al_golden_cond *c = &run->cond;
    get_str(cond, "source", c->source, sizeof c->source);
    get_str(cond, "llama_commit", c->llama_commit, sizeof c->llama_commit);
    get_str(cond, "system_info", c->system_info, sizeof c->system_info);
    get_str(cond, "cpu_model", c->cpu_model, sizeof c->cpu_model);
    get_str(cond, "cpu_flags", c->cpu_flags, sizeof c->cpu_flags);
    get_str(cond, "model_digest", c->model_digest, sizeof c->model_digest);
    get_str(cond, "model_desc", c->model_desc, sizeof c->model_desc);
    get_str(cond, "airlock_version", c->airlock_version, sizeof c->airlock_version);
    get_str(cond, "recorded_at", c->recorded_at, sizeof c->recorded_at);
    get_str(cond, "device", c->device, sizeof c->device);
    c->threads = (int)json_integer_value(json_object_get(cond, "threads"));
    run->top_k = (int)json_integer_value(json_object_get(j, "top_k"));
    run->decode_tps = get_real(meas, "decode_tps");
    run->ttft_p95_ms = get_real(meas, "ttft_p95_ms");
    run->rss_peak_mb = get_real(meas, "rss_peak_mb");
    for (size_t i = 0; i < json_array_size(results); i++) {
        run->n_res = i + 1;
        rc = parse_result(json_array_get(results, i), &run->res[i]);
        if (rc == AL_ERR_NOMEM) {
            rc = al_err_set(err, rc, "out of memory");
            goto out;
        }
        if (rc) {
            rc = al_err_set(err, rc, "'%s': result %zu is malformed", path, i);
            goto out;
        }
    }
out:
    json_decref(j);
    if (rc) {
        al_golden_run_free(run);
        return rc;
    }
    *out = run;
    return AL_OK;
}

enum al_rc al_golden_load(const char *dir, struct al_golden_run **out, struct al_err *err)
{
    if (!dir || !out || *out)
        return al_err_set(err, AL_ERR_USAGE, "al_golden_load: bad arguments");
    char path[AL_LIMIT_PATH];
    json_t *j = NULL;
    enum al_rc rc = al_path_fmt(path, sizeof path, err, "%s/recording.json", dir);
    if (!rc)
        rc = al_suite_read_json(path, true, &j, err);
    if (rc == AL_ERR_NOT_FOUND)
        return al_err_set(err, AL_ERR_NOT_FOUND, "the suite in '%s' has no recording.json: record one first "
                                                 "(airlock validate REF --suite DIR --record)", dir);
    if (rc)
        return rc;
    return golden_parse(path, j, out, err);
}

enum al_rc al_golden_parse(const char *label, const char *text, size_t len, struct al_golden_run **out,
                           struct al_err *err)
{
    if (!label || !text || !out || *out)
        return al_err_set(err, AL_ERR_USAGE, "al_golden_parse: bad arguments");
    json_t *j = NULL;
    enum al_rc rc = al_suite_parse_json(label, text, len, &j, err);
    if (rc)
        return rc;
    return golden_parse(label, j, out, err);
}

/* ---- against a server ---- */

/* choices[0].logprobs.content: [{id, token, logprob, top_logprobs: [{id, token, logprob}]}] */
static enum al_rc parse_content(json_t *content, int top_k, struct al_golden_result *r)
{
    size_t n = json_array_size(content);
    enum al_rc rc = alloc_tokens(r, n);
    if (rc)
        return rc;
    for (size_t t = 0; t < n; t++) {
        json_t *e = json_array_get(content, t), *top = json_object_get(e, "top_logprobs");
        struct al_golden_token *g = &r->tok[t];
        r->n_tok = (int)t + 1;
        json_t *id = json_object_get(e, "id"), *lp = json_object_get(e, "logprob");
        size_t nt = json_array_size(top) < (size_t)top_k ? json_array_size(top) : (size_t)top_k;
        rc = token_init(g, is_id(id) ? (int32_t)json_integer_value(id) : -1,
                        (float)(json_is_number(lp) ? json_number_value(lp) : -INFINITY),
                        json_string_value(json_object_get(e, "token")), nt);
        for (size_t k = 0; !rc && k < nt; k++) {
            json_t *x = json_array_get(top, k), *xid = json_object_get(x, "id");
            rc = top_set(g, k, is_id(xid) ? (int32_t)json_integer_value(xid) : -1,
                         (float)json_number_value(json_object_get(x, "logprob")),
                         json_string_value(json_object_get(x, "token")));
        }
        if (rc)
            return rc;
    }
    return AL_OK;
}

/* The legacy shape: {tokens: [s], token_logprobs: [f], top_logprobs: [{s: f}]} */
static enum al_rc parse_legacy(json_t *lp, int top_k, struct al_golden_result *r)
{
    json_t *toks = json_object_get(lp, "tokens"), *lps = json_object_get(lp, "token_logprobs");
    json_t *tops = json_object_get(lp, "top_logprobs");
    size_t n = json_array_size(toks);
    enum al_rc rc = alloc_tokens(r, n);
    if (rc)
        return rc;
    for (size_t t = 0; t < n; t++) {
        struct al_golden_token *g = &r->tok[t];
        r->n_tok = (int)t + 1;
        rc = token_init(g, -1, (float)json_number_value(json_array_get(lps, t)),
                        json_string_value(json_array_get(toks, t)), (size_t)top_k);
        if (rc)
            return rc;
        json_t *obj = json_array_get(tops, t);
        const char *key;
        json_t *val;
        json_object_foreach(obj, key, val) {
            /* Objects have no order: keep the top_k most likely, sorted by
             * log-probability; a full list drops its least likely. */
            float v = (float)json_number_value(val);
            if (top_k < 1 || (g->n_top == top_k && g->top[top_k - 1].logprob >= v))
                continue;
            int k = g->n_top < top_k ? g->n_top++ : top_k - 1;
            if (k == top_k - 1 && g->top[k].text) {
                free(g->top[k].text);
                g->top[k].text = NULL;
            }
            while (k > 0 && g->top[k - 1].logprob < v) {
                g->top[k] = g->top[k - 1];
                k--;
            }
            g->top[k].id = -1;
            g->top[k].logprob = v;
            g->top[k].text = strdup(key);
            if (!g->top[k].text)
                return AL_ERR_NOMEM;
        }
    }
    return AL_OK;
}

static enum al_rc server_one(const char *url, const struct al_golden_prompt *gp, int top_k,
                             struct al_golden_result *r, char *fingerprint, size_t fp_size, struct al_err *err)
{
    json_t *req = json_pack("{s:s, s:i, s:f, s:i, s:b, s:i}", "prompt", gp->prompt, "max_tokens", gp->max_tokens,
                            "temperature", 0.0, "logprobs", top_k, "stream", 0, "seed", 0);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    char endpoint[AL_LIMIT_PATH];
    enum al_rc rc = al_path_fmt(endpoint, sizeof endpoint, err, "%s/v1/completions", url);
    char *resp = NULL;
    long status = 0;
    if (!rc)
        rc = al_http_request(endpoint, body, 600, &resp, &status, err);
    free(body);
    if (rc)
        return rc;
    json_error_t je;
    json_t *j = json_loads(resp, 0, &je);
    json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    json_t *lp = json_object_get(choice, "logprobs");
    if (status != 200 || !choice) {
        rc = al_err_set(err, AL_ERR_INVALID, "'%s' answered %ld for golden prompt '%s': %.200s", endpoint, status,
                        gp->id, resp);
        goto out;
    }
    const char *fr = json_string_value(json_object_get(choice, "finish_reason"));
    snprintf(r->finish, sizeof r->finish, "%s", fr ? fr : "");
    const char *sfp = json_string_value(json_object_get(j, "system_fingerprint"));
    if (sfp)
        snprintf(fingerprint, fp_size, "%s", sfp);
    if (json_is_array(json_object_get(lp, "content")))
        rc = parse_content(json_object_get(lp, "content"), top_k, r);
    else if (json_is_array(json_object_get(lp, "tokens")))
        rc = parse_legacy(lp, top_k, r);
    else
        rc = al_err_set(err, AL_ERR_INVALID, "'%s' gave no logprobs for golden prompt '%s' (asked with \"logprobs\": %d)",
                        endpoint, gp->id, top_k);
    if (rc == AL_ERR_NOMEM || rc == AL_ERR_LIMIT)
        rc = al_err_set(err, rc, "golden prompt '%s': %s", gp->id,
                        rc == AL_ERR_NOMEM ? "out of memory" : "too many tokens (AL_LIMIT_GOLDEN_TOKENS)");
out:
    json_decref(j);
    free(resp);
    return rc;
}

enum al_rc al_golden_run_server(const char *url, const struct al_suite *s, struct al_golden_run **out,
                                struct al_err *err)
{
    if (!url || !out || *out)
        return al_err_set(err, AL_ERR_USAGE, "al_golden_run_server: bad arguments");
    struct al_golden_run *run = NULL;
    enum al_rc first = al_golden__run_new(s, &run, err);
    if (first)
        return first;
    snprintf(run->cond.source, sizeof run->cond.source, "%s", url);
    char fp[128] = "";
    enum al_rc rc = AL_OK;
    for (size_t i = 0; !rc && i < s->n_golden; i++) {
        struct al_golden_result *r = &run->res[i];
        run->n_res = i + 1;
        r->ttft_ms = r->gen_ms = -1;
        r->id = strdup(s->golden[i].id);
        rc = r->id ? server_one(url, &s->golden[i], s->top_k, r, fp, sizeof fp, err)
                   : al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    /* llama-server's fingerprint is "b<build>-<commit>"; airlock serve's is
     * "fp_" and the start of the weights' digest, which names no llama.cpp. */
    const char *dash = strrchr(fp, '-');
    if (strncmp(fp, "fp_", 3) != 0)
        snprintf(run->cond.llama_commit, sizeof run->cond.llama_commit, "%.63s", dash ? dash + 1 : fp);
    run->decode_tps = run->ttft_p95_ms = run->rss_peak_mb = -1;
    if (rc) {
        al_golden_run_free(run);
        return rc;
    }
    *out = run;
    return AL_OK;
}
