/*
 * routes_llama.c: llama-server's native POST /completion: its shapes over the
 * generation of /v1/completions (routes_gen.c, gen.c's formatter hooks): the
 * answer {content, tokens, stop, model, tokens_predicted, tokens_evaluated,
 * generation_settings, stop_type, timings, ...}; streamed, one `data: {...}`
 * event per piece {content, stop: false} and a last one with stop: true and
 * the rest, no [DONE]. */
#include "server/http_int.h"

#include "core/limits.h"

static const char *native_stop_type(const struct al_engine_gen_result *res)
{
    return res->finish == AL_ENGINE_FINISH_STOP ? "eos" : res->finish == AL_ENGINE_FINISH_LENGTH ? "limit" : "none";
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
    json_t *np = json_object_get(json_object_get(extra, "generation_settings"), "n_predict");
    bool truncated = res->finish == AL_ENGINE_FINISH_LENGTH && res->n_gen < json_integer_value(np);
    json_t *j = json_pack("{s:i, s:s, s:[], s:i, s:b, s:s, s:i, s:i, s:b, s:b, s:s, s:s, s:i, s:o}", "index", 0,
                          "content", text, "tokens", "id_slot", -1, "stop", 1, "model", model, "tokens_predicted",
                          res->n_gen, "tokens_evaluated", res->n_prompt, "has_new_line", strchr(text, '\n') != NULL,
                          "truncated", truncated, "stop_type", native_stop_type(res), "stopping_word", "",
                          "tokens_cached", res->n_prompt + res->n_gen, "timings", native_timings(res));
    if (j && extra && json_object_update(j, extra) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static void native_piece(struct al_buf *b, const char *model, const char *text, size_t len)
{
    (void)model;
    al_buf_addstr(b, "data: {\"index\":0,\"content\":");
    al_server_json_escape(b, text, len);
    al_buf_addstr(b, ",\"tokens\":[],\"stop\":false,\"id_slot\":-1}\n\n");
}

static void native_done(struct al_buf *b, const char *model, double t0, const struct al_engine_gen_result *res,
                        const char *error, json_t *extra)
{
    (void)t0;
    json_t *j = error ? json_pack("{s:{s:i, s:s, s:s}}", "error", "code", 500, "message", error, "type", "server_error")
                      : native_final(model, "", res, extra);
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

/* llama-server's generation_settings: the parameters the request ran with. */
static json_t *native_settings(const struct al_server_gen_opts *go)
{
    const struct al_engine_gen_params *p = &go->params;
    return json_pack("{s:{s:I, s:f, s:i, s:f, s:f, s:i, s:f, s:f, s:f, s:i, s:b, s:b, s:s}}", "generation_settings",
                     "seed", (json_int_t)p->seed, "temperature", (double)p->temperature, "top_k", p->top_k, "top_p",
                     (double)p->top_p, "min_p", (double)p->min_p, "n_predict", p->max_tokens, "repeat_penalty",
                     (double)p->repeat_penalty, "presence_penalty", (double)p->presence_penalty, "frequency_penalty",
                     (double)p->frequency_penalty, "repeat_last_n", p->penalty_last_n, "ignore_eos", p->ignore_eos,
                     "stream", go->stream, "model", go->model);
}

static const struct al_server_gen_fmt native_fmt = {"text/event-stream", native_piece, native_done, native_whole,
                                                    native_settings};

const struct al_server_gen_fmt *al_server_native_fmt(void)
{
    return &native_fmt;
}

/* A prompt given as token ids, as text the engine tokenizes back to them:
 * special tokens rendered (and read again, parse_special), the BOS the
 * engine adds itself left out. *out is malloc'd; false with the error queued. */
static bool tokens_prompt(struct al_http_req *h, json_t *arr, char **out, enum MHD_Result *res)
{
    size_t n = json_array_size(arr);
    if (n > AL_LIMIT_PROMPT_TOKENS) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "prompt", "limit",
                                   "'prompt' has %zu tokens, over the cap of %d (AL_LIMIT_PROMPT_TOKENS)", n,
                                   AL_LIMIT_PROMPT_TOKENS);
        return false;
    }
    int32_t *toks = malloc((n ? n : 1) * sizeof *toks), *bos = NULL;
    if (!toks) {
        *res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++)
        toks[i] = (int32_t)json_integer_value(json_array_get(arr, i)); /* checked by the caller */
    struct al_engine_model *m = al_serve_lease_engine(h->lease);
    struct al_err err = AL_ERR_INIT;
    size_t nb = 0, len = 0, skip = 0;
    if (al_engine_tokenize(m, "", 0, true, false, &bos, &nb, &err) == AL_OK && nb == 1 && n > 0 && toks[0] == bos[0])
        skip = 1;
    free(bos);
    err = (struct al_err)AL_ERR_INIT;
    enum al_rc rc = al_engine_detokenize(m, toks + skip, n - skip, true, out, &len, &err);
    free(toks);
    if (rc) {
        *res = al_http_reply_rc(h, &err, "prompt");
        return false;
    }
    return true;
}

/* The prompt of a /completion body: a string, an array of token ids, either
 * alone in an array, or {"prompt_string": ...}. NULL with *why set for
 * another shape; *tokens is the array of ids when the prompt is that. */
static const char *native_prompt(json_t *jp, json_t **tokens, const char **why)
{
    *tokens = NULL;
    if (json_is_object(jp)) {
        if (json_object_get(jp, "multimodal_data")) {
            *why = "'prompt' carries multimodal data, which this server does not take";
            return NULL;
        }
        jp = json_object_get(jp, "prompt_string");
    }
    if (json_is_array(jp) && json_array_size(jp) == 1 && !json_is_integer(json_array_get(jp, 0)))
        jp = json_array_get(jp, 0);
    if (json_is_string(jp))
        return json_string_value(jp);
    *why = "'prompt' must be a string or an array of token ids (one prompt: batches are not supported)";
    if (!json_is_array(jp))
        return NULL;
    size_t i;
    json_t *v;
    json_array_foreach(jp, i, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
            return NULL;
    }
    *tokens = jp;
    return "";
}

enum MHD_Result al_server_route_completion(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    json_t *tokens = NULL;
    const char *why = NULL;
    const char *text = native_prompt(json_object_get(body, "prompt"), &tokens, &why);
    if (!text)
        return al_http_reply_error(h, 400, "invalid_request_error", "prompt", NULL, "%s", why);
    /* n_predict: -1 (llama-server's default) is until the end, here the
     * server's cap (limits.max_tokens), as max_tokens is on the other routes. */
    json_t *np = json_object_get(body, "n_predict");
    if (np && !json_is_null(np) &&
        (!json_is_integer(np) || (json_integer_value(np) < 1 && json_integer_value(np) != -1)))
        return al_http_reply_error(h, 400, "invalid_request_error", "n_predict", NULL,
                                   "'n_predict' must be -1 (as many as allowed) or a positive integer");
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
    char *owned = NULL;
    if (!al_http_lease(h, b2, &res) || (tokens && !tokens_prompt(h, tokens, &owned, &res))) {
        json_decref(b2);
        return res;
    }
    struct al_server_gen_opts go = {.kind = AL_SERVER_GEN_COMPLETION, .prompt = owned ? owned : text,
                                    .fmt = &native_fmt};
    if (al_server_read_stream(h, b2, &go, &res)) {
        if (h->srv->o.audit_text && !(h->prompt = strdup(go.prompt)))
            res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        else
            res = al_server_completion_run(h, b2, &go, h->limits.max_tokens);
    }
    free(owned);
    json_decref(b2);
    return res;
}
