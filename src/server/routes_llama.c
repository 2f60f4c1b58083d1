/*
 * routes_llama.c: llama-server's native POST /completion: its shapes over the
 * generation of /v1/completions (routes_gen.c, gen.c's formatter hooks): the
 * answer {content, tokens, stop, model, tokens_predicted, tokens_evaluated,
 * generation_settings, stop_type, timings, ...}; streamed, one `data: {...}`
 * event per piece {index, tokens, content, stop: false} (with n_probs, its
 * completion_probabilities) and a last one with stop: true and the rest, no
 * [DONE]. Its request fields beyond OpenAI's: n_predict, n_probs,
 * return_tokens, response_fields, and a prompt that is text, token ids, a mix
 * of both, or an array of such prompts (one answer each, in an array; streamed
 * with their index).
 */
#include "server/http_int.h"

#include "core/limits.h"

static const char *native_stop_type(const struct al_engine_gen_result *res)
{
    if (res->finish == AL_ENGINE_FINISH_STOP)
        return res->stop_word >= 0 ? "word" : "eos";
    return res->finish == AL_ENGINE_FINISH_LENGTH ? "limit" : "none";
}

static json_t *native_timings(const struct al_engine_gen_result *res)
{
    int prompt_n = res->n_prompt - res->n_cached;
    return json_pack("{s:i, s:i, s:f, s:f, s:f, s:i, s:f, s:f, s:f}", "cache_n", res->n_cached, "prompt_n", prompt_n,
                     "prompt_ms", res->prompt_ms, "prompt_per_token_ms", prompt_n ? res->prompt_ms / prompt_n : 0.0,
                     "prompt_per_second", res->prompt_ms > 0 ? 1e3 * prompt_n / res->prompt_ms : 0.0, "predicted_n",
                     res->n_gen, "predicted_ms", res->gen_ms, "predicted_per_token_ms",
                     res->n_gen ? res->gen_ms / res->n_gen : 0.0, "predicted_per_second",
                     res->gen_ms > 0 ? 1e3 * res->n_gen / res->gen_ms : 0.0);
}

/* The last object: text is the whole answer, or "" at the end of a stream. */
static json_t *native_final(const char *model, const char *text, const struct al_engine_gen_result *res,
                            json_t *extra)
{
    /* truncated: stopped by the sequence's context before n_predict, as llama-server marks it. */
    json_t *settings = json_object_get(extra, "generation_settings");
    json_t *np = json_object_get(settings, "n_predict");
    bool truncated = res->finish == AL_ENGINE_FINISH_LENGTH && res->n_gen < json_integer_value(np);
    /* The stop string that ended it: the request's own (generation_settings.stop). */
    json_t *word = res->finish == AL_ENGINE_FINISH_STOP && res->stop_word >= 0
                       ? json_array_get(json_object_get(settings, "stop"), (size_t)res->stop_word)
                       : NULL;
    json_t *j = json_pack("{s:i, s:s, s:[], s:i, s:b, s:s, s:i, s:i, s:b, s:b, s:s, s:s, s:i, s:o}", "index", 0,
                          "content", text, "tokens", "id_slot", -1, "stop", 1, "model", model, "tokens_predicted",
                          res->n_gen, "tokens_evaluated", res->n_prompt, "has_new_line", strchr(text, '\n') != NULL,
                          "truncated", truncated, "stop_type", native_stop_type(res), "stopping_word",
                          json_is_string(word) ? json_string_value(word) : "",
                          "tokens_cached", res->n_prompt + res->n_gen, "timings", native_timings(res));
    if (j && extra && json_object_update(j, extra) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* tail: "index", "tokens" and with n_probs "completion_probabilities" (gen.c). */
static void native_piece(struct al_buf *b, const char *model, const char *text, size_t len, const char *tail)
{
    (void)model;
    al_buf_addstr(b, "data: {");
    al_buf_addstr(b, tail ? tail : "\"index\":0,\"tokens\":[]");
    al_buf_addstr(b, ",\"content\":");
    al_server_json_escape(b, text, len);
    al_buf_addstr(b, ",\"stop\":false,\"id_slot\":-1}\n\n");
}

static void native_done(struct al_buf *b, const char *model, double t0, const struct al_engine_gen_result *res,
                        const char *error, json_t *extra, int index)
{
    (void)t0;
    json_t *j = error ? json_pack("{s:{s:i, s:s, s:s}}", "error", "code", 500, "message", error, "type", "server_error")
                      : native_final(model, "", res, extra);
    if (j && !error && json_object_set_new(j, "index", json_integer(index)) != 0) {
        json_decref(j);
        j = NULL;
    }
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
        b->failed = true;
        return;
    }
    al_buf_addstr(b, "data: ");
    al_buf_addstr(b, s);
    al_buf_addstr(b, "\n\n");
    free(s);
}

static json_t *native_whole(const char *model, double t0, const char *text, const struct al_engine_gen_result *res,
                            json_t *extra)
{
    (void)t0;
    return native_final(model, text, res, extra);
}

/* llama-server's generation_settings: the parameters the request ran with
 * (adaptive-p sampling is not built: its "off" values); with echo, the
 * prompt as llama-server shows it ("prompt", asked for by response_fields). */
static json_t *native_settings(const struct al_server_gen_opts *go)
{
    const struct al_engine_gen_params *p = &go->params;
    json_t *stop = json_array();
    for (int i = 0; stop && i < p->n_stop; i++)
        json_array_append_new(stop, json_string(p->stop[i]));
    json_t *j = json_pack("{s:{s:I, s:f, s:i, s:f, s:f, s:i, s:f, s:f, s:f, s:i, s:b, s:b, s:s, s:o, s:i, s:b, "
                          "s:f, s:f}}",
                          "generation_settings", "seed", (json_int_t)p->seed, "temperature", (double)p->temperature,
                          "top_k", p->top_k, "top_p", (double)p->top_p, "min_p", (double)p->min_p, "n_predict",
                          p->max_tokens, "repeat_penalty", (double)p->repeat_penalty, "presence_penalty",
                          (double)p->presence_penalty, "frequency_penalty", (double)p->frequency_penalty,
                          "repeat_last_n", p->penalty_last_n, "ignore_eos", p->ignore_eos, "stream", go->stream,
                          "model", go->model, "stop", stop, "n_probs", go->logprobs > 0 ? go->logprobs : 0,
                          "post_sampling_probs", p->post_sampling_probs, "adaptive_target", -1.0, "adaptive_decay", 0.9);
    if (j && go->echo && json_object_set_new(j, "prompt", json_string(go->echo)) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static const struct al_server_gen_fmt native_fmt = {"text/event-stream", native_piece, native_done, native_whole,
                                                    native_settings};

const struct al_server_gen_fmt *al_server_native_fmt(void)
{
    return &native_fmt;
}

/* Appends the text of n token ids to b: special tokens rendered (the engine
 * reads them again, parse_special), a leading BOS left out when skip_bos
 * (the engine adds its own). False with the error queued. */
static bool ids_text(struct al_http_req *h, const int32_t *toks, size_t n, bool skip_bos, struct al_buf *b,
                     enum MHD_Result *res)
{
    struct al_engine_model *m = al_serve_lease_engine(h->lease);
    struct al_err err = AL_ERR_INIT;
    int32_t *bos = NULL;
    size_t nb = 0, len = 0, skip = 0;
    if (skip_bos && al_engine_tokenize(m, "", 0, true, false, &bos, &nb, &err) == AL_OK && nb == 1 && n > 0 &&
        toks[0] == bos[0])
        skip = 1;
    free(bos);
    err = (struct al_err)AL_ERR_INIT;
    char *text = NULL;
    if (al_engine_detokenize(m, toks + skip, n - skip, true, &text, &len, &err) != AL_OK) {
        *res = al_http_reply_rc(h, &err, "prompt");
        return false;
    }
    al_buf_add(b, text, len);
    free(text);
    return true;
}

/* One prompt of a /completion body, as text (*out, malloc'd): a string, an
 * array of token ids and strings (a mix is one prompt, as llama-server's
 * tokenize_mixed reads it), or {"prompt_string": one of those}. False with
 * the 400 queued. */
static bool one_prompt(struct al_http_req *h, json_t *jp, char **out, enum MHD_Result *res)
{
    static const char shape[] = "'prompt' must be a string, an array of token ids and strings, an object with a "
                                "'prompt_string', or an array of such prompts";
    if (json_is_object(jp)) {
        if (json_object_get(jp, "multimodal_data")) {
            *res = al_http_reply_error(h, 400, "invalid_request_error", "prompt", NULL,
                                       "'prompt' carries multimodal data, which this server does not take");
            return false;
        }
        jp = json_object_get(jp, "prompt_string");
    }
    if (json_is_string(jp)) {
        if (!(*out = strdup(json_string_value(jp))))
            *res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        return *out != NULL;
    }
    if (!json_is_array(jp)) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "prompt", NULL, "%s", shape);
        return false;
    }
    size_t n = json_array_size(jp);
    if (n > AL_LIMIT_PROMPT_TOKENS) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "prompt", "limit",
                                   "'prompt' has %zu tokens, over the cap of %d (AL_LIMIT_PROMPT_TOKENS)", n,
                                   AL_LIMIT_PROMPT_TOKENS);
        return false;
    }
    int32_t *toks = malloc((n ? n : 1) * sizeof *toks);
    struct al_buf b;
    al_buf_init(&b, AL_LIMIT_PROMPT_BYTES);
    bool ok = toks != NULL;
    if (!ok)
        *res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    size_t run = 0; /* token ids not yet turned into text */
    for (size_t i = 0; ok && i <= n; i++) {
        json_t *v = json_array_get(jp, i);
        if (json_is_integer(v)) {
            if (json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
                *res = al_http_reply_error(h, 400, "invalid_request_error", "prompt", NULL,
                                           "'prompt[%zu]' is not a token id", i);
                ok = false;
                break;
            }
            toks[run++] = (int32_t)json_integer_value(v);
            continue;
        }
        if (run > 0 && !(ok = ids_text(h, toks, run, b.len == 0, &b, res)))
            break;
        run = 0;
        if (json_is_string(v)) {
            al_buf_add(&b, json_string_value(v), json_string_length(v));
        } else if (v) {
            *res = al_http_reply_error(h, 400, "invalid_request_error", "prompt", NULL, "%s", shape);
            ok = false;
        }
    }
    if (ok && al_buf_failed(&b)) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "prompt", "limit",
                                   "'prompt' is over the cap of %u bytes (AL_LIMIT_PROMPT_BYTES)",
                                   AL_LIMIT_PROMPT_BYTES);
        ok = false;
    }
    if (ok && !(*out = strdup(al_buf_str(&b)))) {
        *res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        ok = false;
    }
    free(toks);
    al_buf_release(&b);
    return ok;
}

/* The prompts of a /completion body: an array holding no token id is a
 * batch, one prompt an element (as llama-server's tokenize_input_prompts
 * reads it); anything else is one prompt. texts[0..*n) are malloc'd. */
static bool native_prompts(struct al_http_req *h, json_t *jp, char *texts[AL_LIMIT_PROMPTS], int *n,
                           enum MHD_Result *res)
{
    *n = 0;
    bool batch = json_is_array(jp) && json_array_size(jp) > 0;
    size_t i;
    json_t *v;
    json_array_foreach(jp, i, v)
    {
        if (json_is_integer(v))
            batch = false;
    }
    if (!batch) {
        if (!one_prompt(h, jp, &texts[0], res))
            return false;
        *n = 1;
        return true;
    }
    if (json_array_size(jp) > AL_LIMIT_PROMPTS) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "prompt", "limit",
                                   "'prompt' has %zu prompts; at most %d are allowed (AL_LIMIT_PROMPTS)",
                                   json_array_size(jp), AL_LIMIT_PROMPTS);
        return false;
    }
    json_array_foreach(jp, i, v)
    {
        if (json_is_string(v) || json_is_array(v) || json_is_object(v)) {
            if (!one_prompt(h, v, &texts[*n], res))
                return false;
            (*n)++;
            continue;
        }
        *res = al_http_reply_error(h, 400, "invalid_request_error", "prompt", NULL,
                                   "'prompt[%zu]' must be a string, an array of token ids and strings or an object "
                                   "with a 'prompt_string'",
                                   i);
        return false;
    }
    return true;
}

/* The prompt as llama-server echoes it: its tokens, BOS included, as text
 * with special tokens rendered. NULL when out of memory or on error. */
static char *echo_prompt(struct al_http_req *h, const char *text)
{
    struct al_engine_model *m = al_serve_lease_engine(h->lease);
    struct al_err err = AL_ERR_INIT;
    int32_t *toks = NULL;
    size_t n = 0, len = 0;
    char *out = NULL;
    if (al_engine_tokenize(m, text, strlen(text), true, true, &toks, &n, &err) == AL_OK)
        al_engine_detokenize(m, toks, n, true, &out, &len, &err);
    free(toks);
    return out;
}

static bool names_field(json_t *fields, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        if (strcmp(json_string_value(f), name) == 0)
            return true;
    }
    return false;
}

enum MHD_Result al_server_route_completion(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    json_t *jp = json_object_get(body, "prompt");
    if (!jp || json_is_null(jp))
        return al_http_reply_error(h, 400, "invalid_request_error", "prompt", NULL, "'prompt' is required");
    /* n_predict: -1 (llama-server's default) is until the end, here the
     * server's cap (limits.max_tokens), as max_tokens is on the other routes. */
    json_t *np = json_object_get(body, "n_predict");
    if (np && !json_is_null(np) &&
        (!json_is_integer(np) || (json_integer_value(np) < 1 && json_integer_value(np) != -1)))
        return al_http_reply_error(h, 400, "invalid_request_error", "n_predict", NULL,
                                   "'n_predict' must be -1 (as many as allowed) or a positive integer");
    json_t *rt = json_object_get(body, "return_tokens");
    if (rt && !json_is_null(rt) && !json_is_boolean(rt))
        return al_http_reply_error(h, 400, "invalid_request_error", "return_tokens", NULL,
                                   "'return_tokens' must be a boolean");
    json_t *rf = json_object_get(body, "response_fields");
    struct al_err err = AL_ERR_INIT;
    if (al_server_response_fields_check(rf, &err) != AL_OK)
        return al_http_reply_rc(h, &err, "response_fields");
    json_t *b2 = json_copy(body); /* the request as the OpenAI parameters read it */
    if (!b2)
        return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    json_object_del(b2, "max_completion_tokens");
    json_object_del(b2, "logprobs");
    json_object_del(b2, "n");
    /* n_probs: the log-probabilities of the answer's tokens, as
     * /v1/completions' "logprobs": N reads them (0..AL_LIMIT_TOP_PROBS). */
    json_t *nprobs = json_object_get(body, "n_probs");
    if (json_is_integer(nprobs) && json_integer_value(nprobs) > 0)
        json_object_set(b2, "logprobs", nprobs);
    if (json_is_integer(np) && json_integer_value(np) > 0)
        json_object_set(b2, "max_tokens", np);
    else
        json_object_del(b2, "max_tokens");
    char *texts[AL_LIMIT_PROMPTS] = {0};
    char *echo = NULL;
    int n = 0;
    if (!al_http_lease(h, b2, &res) || !native_prompts(h, jp, texts, &n, &res))
        goto out;
    for (int i = 1; i < n; i++) /* the first is checked with the parameters */
        if (!al_server_prompt_fits(h, texts[i], "prompt", &res))
            goto out;
    bool fields = json_array_size(rf) > 0;
    if (fields && n == 1 && names_field(rf, "prompt") && !(echo = echo_prompt(h, texts[0]))) {
        res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        goto out;
    }
    struct al_server_gen_opts go = {.kind = AL_SERVER_GEN_COMPLETION, .prompt = texts[0], .fmt = &native_fmt,
                                    .prompts = n > 1 ? (const char *const *)texts : NULL, .n_prompts = n,
                                    .response_fields = fields ? rf : NULL, .echo = echo};
    if (al_server_read_stream(h, b2, &go, &res)) {
        go.token_ids = go.stream || json_is_true(rt);
        if (h->srv->o.audit_text && !(h->prompt = strdup(go.prompt)))
            res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        else
            res = al_server_completion_run(h, b2, &go, h->limits.max_tokens);
    }
out:
    for (int i = 0; i < n; i++)
        free(texts[i]);
    free(echo);
    json_decref(b2);
    return res;
}
