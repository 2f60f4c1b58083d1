/*
 * ollama.c: Ollama's API on the same server, so that clients that speak it
 * (editor plugins, chat front ends, the `ollama` npm and Python clients) work
 * unchanged: POST /api/chat, /api/generate, /api/embed, /api/embeddings
 * (the legacy one), /api/show; GET /api/tags, /api/ps, /api/version.
 *
 * Only the shapes are Ollama's: the routes pass through the same access
 * check (chat, embed and models scopes, the key's model patterns), limits,
 * audit record and metrics as the OpenAI routes, and generate through gen.c
 * with Ollama's formatter (struct al_server_gen_fmt). Errors are
 * {"error": "..."} (http.c writes that shape for every URL under /api/).
 *
 * Streaming is Ollama's: one JSON object a line (application/x-ndjson), and
 * "stream" defaults to true. The last line has "done": true, "done_reason"
 * and the counts and durations (nanoseconds) Ollama reports; load_duration
 * is 0 (a model is loaded before the request is timed). Ollama's "options"
 * map onto the sampling parameters of params.c (num_predict is max_tokens,
 * capped by limits.max_tokens like it); num_ctx and the options that set up a
 * model (num_gpu, num_thread, ...) are accepted and not applied: the server's
 * settings decide those. Images, tools and a request's own template are
 * refused with 400 rather than ignored.
 */
#include "server/http_int.h"

#include <time.h>

#include "core/limits.h"
#include "core/version.h"

/* The Ollama API version whose routes and shapes these follow (for clients
 * that check /api/version before they talk). */
#define AL_OLLAMA_API_VERSION "0.9.0"

/* ---- shared helpers ---- */

/* Now in RFC 3339 with nanoseconds, UTC, as Ollama writes created_at. */
static void created_at(char out[48])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 48, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 48 - n, ".%09ldZ", (long)ts.tv_nsec);
}

static long long ns(double seconds) { return seconds > 0 ? (long long)(seconds * 1e9) : 0; }

static const char *done_reason(const struct al_engine_gen_result *res)
{
    return res->finish == AL_ENGINE_FINISH_LENGTH ? "length" : "stop";
}

/* The name echoed in responses: the request's "model", else the model that serves it. */
static const char *model_name(struct al_http_req *h, json_t *body)
{
    json_t *jm = json_object_get(body, "model");
    return json_is_string(jm) && json_string_length(jm) ? json_string_value(jm) : al_serve_lease_name(h->lease);
}

/* "stream": a boolean, true when absent (Ollama's default). */
static bool read_stream(struct al_http_req *h, json_t *body, bool *stream, enum MHD_Result *res)
{
    json_t *st = json_object_get(body, "stream");
    if (st && !json_is_boolean(st) && !json_is_null(st)) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "stream", NULL, "'stream' must be a boolean");
        return false;
    }
    *stream = !st || json_is_null(st) || json_is_true(st);
    return true;
}

/* A field this server does not implement, refused when it asks for
 * something (a non-empty string or array, an object): its absence, null, ""
 * and [] pass. */
static bool refuse_field(struct al_http_req *h, json_t *obj, const char *name, const char *why, enum MHD_Result *res)
{
    json_t *v = json_object_get(obj, name);
    if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0) ||
        (json_is_array(v) && json_array_size(v) == 0) || json_is_false(v))
        return true;
    *res = al_http_reply_error(h, 400, "invalid_request_error", name, NULL, "'%s' is not supported: %s", name, why);
    return false;
}

/* Ollama's "options" and "format" into engine parameters, through params.c:
 * the options become the OpenAI fields of the same meaning. Strings (stop)
 * stay owned by body; *grammar is the caller's. */
static bool read_options(struct al_http_req *h, json_t *body, struct al_engine_gen_params *p, const char *stops[],
                         char **grammar, enum MHD_Result *res)
{
    json_t *opts = json_object_get(body, "options");
    if (opts && !json_is_null(opts) && !json_is_object(opts)) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "options", NULL, "'options' must be an object");
        return false;
    }
    json_t *oai = json_object();
    if (!oai) {
        *res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        return false;
    }
    static const char *same[] = {"temperature", "top_p", "top_k", "min_p", "seed", "repeat_penalty",
                                 "frequency_penalty", "presence_penalty", "stop"};
    for (size_t i = 0; opts && i < sizeof same / sizeof same[0]; i++) {
        json_t *v = json_object_get(opts, same[i]);
        if (v)
            json_object_set(oai, same[i], v);
    }
    /* num_predict: -1 (and Ollama's -2, "fill the context") mean as many as
     * the server allows; otherwise at least 1 and within limits.max_tokens. */
    p->max_tokens = h->limits.max_tokens;
    al_server_params_defaults(h->srv, &h->limits, p); /* serve --seed, --temp, --n-predict */
    json_t *np = json_object_get(opts, "num_predict");
    if (np && !json_is_null(np)) {
        json_int_t v = json_is_integer(np) ? json_integer_value(np) : 0;
        if (!json_is_integer(np) || v == 0 || v < -2) {
            json_decref(oai);
            *res = al_http_reply_error(h, 400, "invalid_request_error", "options.num_predict", NULL,
                                       "'options.num_predict' must be a positive integer, or -1 for no limit of its own");
            return false;
        }
        if (v > h->limits.max_tokens) {
            json_decref(oai);
            *res = al_http_reply_error(h, 400, "invalid_request_error", "options.num_predict", NULL,
                                       "'options.num_predict' is %lld; the server allows at most %d (limits.max_tokens)",
                                       (long long)v, h->limits.max_tokens);
            return false;
        }
        if (v > 0)
            p->max_tokens = (int)v;
    }
    json_t *nctx = json_object_get(opts, "num_ctx");
    if (nctx && !json_is_null(nctx) && !(json_is_integer(nctx) && json_integer_value(nctx) > 0)) {
        json_decref(oai);
        *res = al_http_reply_error(h, 400, "invalid_request_error", "options.num_ctx", NULL,
                                   "'options.num_ctx' must be a positive integer");
        return false;
    }
    json_t *rln = json_object_get(opts, "repeat_last_n");
    if (rln && !json_is_null(rln)) {
        json_int_t v = json_is_integer(rln) ? json_integer_value(rln) : -2;
        if (v < -1 || v > AL_LIMIT_PROMPT_TOKENS) {
            json_decref(oai);
            *res = al_http_reply_error(h, 400, "invalid_request_error", "options.repeat_last_n", NULL,
                                       "'options.repeat_last_n' must be an integer from -1 to %d", AL_LIMIT_PROMPT_TOKENS);
            return false;
        }
        p->penalty_last_n = (int)v; /* -1: the context; the engine reads it as every token seen */
    }
    /* format: "json", or a JSON schema. */
    json_t *fmt = json_object_get(body, "format");
    if (json_is_string(fmt) && strcmp(json_string_value(fmt), "json") == 0)
        json_object_set_new(oai, "response_format", json_pack("{s:s}", "type", "json_object"));
    else if (json_is_object(fmt))
        json_object_set_new(oai, "response_format",
                            json_pack("{s:s, s:{s:s, s:O}}", "type", "json_schema", "json_schema", "name", "format",
                                      "schema", fmt));
    else if (fmt && !json_is_null(fmt) && !(json_is_string(fmt) && json_string_length(fmt) == 0)) {
        json_decref(oai);
        *res = al_http_reply_error(h, 400, "invalid_request_error", "format", NULL,
                                   "'format' must be \"json\" or a JSON schema (an object)");
        return false;
    }
    const char *param = NULL;
    struct al_err err = AL_ERR_INIT;
    /* max_tokens is settled above; the OpenAI body has none. */
    enum al_rc rc = al_server_params_from_json(oai, &h->limits, p, stops, grammar, &param, &err);
    json_decref(oai); /* the stop strings are body's too, so they live on */
    if (rc) {
        char named[64];
        snprintf(named, sizeof named, "options.%s", param ? param : "");
        *res = al_http_reply_rc(h, &err, param && strcmp(param, "response_format") == 0 ? "format" : named);
        return false;
    }
    return true;
}

/* The answer to a request with nothing to generate (no prompt, no
 * messages): Ollama loads the model and says so. */
static enum MHD_Result load_only(struct al_http_req *h, json_t *body, bool chat)
{
    char ts[48];
    created_at(ts);
    json_t *j = json_pack("{s:s, s:s, s:b, s:s}", "model", model_name(h, body), "created_at", ts, "done", 1,
                          "done_reason", "load");
    if (j && chat)
        json_object_set_new(j, "message", json_pack("{s:s, s:s}", "role", "assistant", "content", ""));
    else if (j)
        json_object_set_new(j, "response", json_string(""));
    return al_http_reply_json(h, 200, j);
}

/* ---- generation: Ollama's lines ---- */

static void line_head(struct al_buf *b, const char *model)
{
    char ts[48];
    created_at(ts);
    al_buf_addstr(b, "{\"model\":");
    al_server_json_escape(b, model, strlen(model));
    al_buf_addf(b, ",\"created_at\":\"%s\",", ts);
}

static void line_stats(struct al_buf *b, double t0, const struct al_engine_gen_result *res)
{
    al_buf_addf(b,
                ",\"done\":true,\"done_reason\":\"%s\",\"total_duration\":%lld,\"load_duration\":0,"
                "\"prompt_eval_count\":%d,\"prompt_eval_duration\":%lld,\"eval_count\":%d,\"eval_duration\":%lld}\n",
                done_reason(res), ns(al_http_now() - t0), res->n_prompt, ns(res->prompt_ms / 1e3), res->n_gen,
                ns(res->gen_ms / 1e3));
}

static void line_error(struct al_buf *b, const char *error)
{
    al_buf_addstr(b, "{\"error\":");
    al_server_json_escape(b, error, strlen(error));
    al_buf_addstr(b, "}\n");
}

static void chat_piece(struct al_buf *b, const char *model, const char *text, size_t len, const char *tail)
{
    (void)tail;
    line_head(b, model);
    al_buf_addstr(b, "\"message\":{\"role\":\"assistant\",\"content\":");
    al_server_json_escape(b, text, len);
    al_buf_addstr(b, "},\"done\":false}\n");
}

static void chat_done(struct al_buf *b, const char *model, double t0, const struct al_engine_gen_result *res,
                      const char *error, json_t *extra, int index)
{
    (void)extra;
    (void)index;
    if (error) {
        line_error(b, error);
        return;
    }
    line_head(b, model);
    al_buf_addstr(b, "\"message\":{\"role\":\"assistant\",\"content\":\"\"}");
    line_stats(b, t0, res);
}

static void generate_piece(struct al_buf *b, const char *model, const char *text, size_t len, const char *tail)
{
    (void)tail;
    line_head(b, model);
    al_buf_addstr(b, "\"response\":");
    al_server_json_escape(b, text, len);
    al_buf_addstr(b, ",\"done\":false}\n");
}

static void generate_done(struct al_buf *b, const char *model, double t0, const struct al_engine_gen_result *res,
                          const char *error, json_t *extra, int index)
{
    (void)extra;
    (void)index;
    if (error) {
        line_error(b, error);
        return;
    }
    line_head(b, model);
    al_buf_addstr(b, "\"response\":\"\"");
    line_stats(b, t0, res);
}

static json_t *whole(const char *model, double t0, const struct al_engine_gen_result *res)
{
    char ts[48];
    created_at(ts);
    return json_pack("{s:s, s:s, s:b, s:s, s:I, s:i, s:i, s:I, s:i, s:I}", "model", model, "created_at", ts, "done", 1,
                     "done_reason", done_reason(res), "total_duration", (json_int_t)ns(al_http_now() - t0),
                     "load_duration", 0, "prompt_eval_count", res->n_prompt, "prompt_eval_duration",
                     (json_int_t)ns(res->prompt_ms / 1e3), "eval_count", res->n_gen, "eval_duration",
                     (json_int_t)ns(res->gen_ms / 1e3));
}

static json_t *chat_whole(const char *model, double t0, const char *text, const struct al_engine_gen_result *res,
                       json_t *extra)
{
    (void)extra;
    json_t *j = whole(model, t0, res);
    if (j)
        json_object_set_new(j, "message", json_pack("{s:s, s:s}", "role", "assistant", "content", text));
    return j;
}

static json_t *generate_whole(const char *model, double t0, const char *text, const struct al_engine_gen_result *res,
                           json_t *extra)
{
    (void)extra;
    json_t *j = whole(model, t0, res);
    if (j)
        json_object_set_new(j, "response", json_string(text));
    return j;
}

static const struct al_server_gen_fmt chat_fmt = {"application/x-ndjson", chat_piece, chat_done, chat_whole, NULL};
static const struct al_server_gen_fmt generate_fmt = {"application/x-ndjson", generate_piece, generate_done,
                                                      generate_whole, NULL};

/* Shared tail of chat and generate: options, the prompt cap, the audit text, the generation. */
static enum MHD_Result run(struct al_http_req *h, json_t *body, struct al_server_gen_opts *go, const char *param)
{
    const char *stops[AL_LIMIT_STOP_STRINGS];
    char *grammar = NULL;
    enum MHD_Result res;
    go->params = al_engine_gen_params_default();
    go->logprobs = -1;
    go->model = model_name(h, body);
    if (!read_options(h, body, &go->params, stops, &grammar, &res))
        return res;
    if (!al_server_prompt_fits(h, go->prompt, param, &res)) {
        free(grammar);
        return res;
    }
    if (h->srv->o.audit_text && !(h->prompt = strdup(go->prompt))) {
        free(grammar);
        return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    }
    res = al_server_gen_run(h, go);
    free(grammar);
    return res;
}

enum MHD_Result al_server_route_ollama_chat(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    bool stream;
    if (!read_stream(h, body, &stream, &res) ||
        !refuse_field(h, body, "tools", "tool calling on /api/chat is not implemented yet", &res))
        return res;
    json_t *msgs = json_object_get(body, "messages");
    size_t n = json_array_size(msgs);
    if (msgs && !json_is_null(msgs) && !json_is_array(msgs))
        return al_http_reply_error(h, 400, "invalid_request_error", "messages", NULL, "'messages' must be an array");
    if (n > AL_LIMIT_CHAT_MSGS)
        return al_http_reply_error(h, 400, "invalid_request_error", "messages", "limit",
                                   "'messages' has %zu entries; at most %d are allowed", n, AL_LIMIT_CHAT_MSGS);
    struct al_engine_chat_msg *cm = calloc(n ? n : 1, sizeof *cm);
    if (!cm)
        return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *c = json_object_get(m, "content");
        if (!role || (c && !json_is_string(c) && !json_is_null(c))) {
            free(cm);
            return al_http_reply_error(h, 400, "invalid_request_error", "messages", NULL,
                                       "messages[%zu] needs a 'role' and a 'content' string", i);
        }
        if (!refuse_field(h, m, "images", "no model this server loads reads images", &res)) {
            free(cm);
            return res;
        }
        cm[i].role = role;
        cm[i].content = json_is_string(c) ? json_string_value(c) : "";
    }
    if (!al_http_lease(h, body, &res)) {
        free(cm);
        return res;
    }
    if (n == 0) {
        free(cm);
        return load_only(h, body, true);
    }
    char *prompt = NULL;
    struct al_err err = AL_ERR_INIT;
    if (al_engine_chat_format(al_serve_lease_engine(h->lease), cm, n, true, al_serve_lease_chat_fallback(h->lease),
                              &prompt, &err) != AL_OK) {
        free(cm);
        return al_http_reply_rc(h, &err, "messages");
    }
    free(cm);
    struct al_server_gen_opts go = {.kind = AL_SERVER_GEN_CHAT, .stream = stream, .prompt = prompt, .fmt = &chat_fmt};
    res = run(h, body, &go, "messages");
    free(prompt);
    return res;
}

enum MHD_Result al_server_route_ollama_generate(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    bool stream;
    if (!read_stream(h, body, &stream, &res) ||
        !refuse_field(h, body, "images", "no model this server loads reads images", &res) ||
        !refuse_field(h, body, "suffix", "fill-in-the-middle is not implemented", &res) ||
        !refuse_field(h, body, "template", "the model's own chat template is used (or 'raw': true)", &res) ||
        !refuse_field(h, body, "context", "send the conversation to /api/chat instead", &res))
        return res;
    json_t *jp = json_object_get(body, "prompt"), *js = json_object_get(body, "system"),
           *jr = json_object_get(body, "raw");
    if ((jp && !json_is_string(jp) && !json_is_null(jp)) || (js && !json_is_string(js) && !json_is_null(js)))
        return al_http_reply_error(h, 400, "invalid_request_error", jp && !json_is_string(jp) ? "prompt" : "system",
                                   NULL, "'prompt' and 'system' must be strings");
    if (jr && !json_is_boolean(jr) && !json_is_null(jr))
        return al_http_reply_error(h, 400, "invalid_request_error", "raw", NULL, "'raw' must be a boolean");
    if (!al_http_lease(h, body, &res))
        return res;
    const char *text = json_is_string(jp) ? json_string_value(jp) : "";
    const char *system = json_is_string(js) ? json_string_value(js) : "";
    if (!*text)
        return load_only(h, body, false);
    /* With a chat template (and not raw) the prompt is a user turn, as
     * Ollama's templates make it; a model without one (Ollama's default
     * template, "{{ .Prompt }}") gets the text as written, after the system
     * text when there is one. */
    struct al_engine_model *m = al_serve_lease_engine(h->lease);
    struct al_engine_model_info info;
    al_engine_model_info(m, &info);
    char *prompt = NULL;
    if (info.has_chat_template && !json_is_true(jr)) {
        struct al_engine_chat_msg cm[2] = {{"system", system}, {"user", text}};
        struct al_err err = AL_ERR_INIT;
        if (al_engine_chat_format(m, *system ? cm : cm + 1, *system ? 2 : 1, true,
                                  al_serve_lease_chat_fallback(h->lease), &prompt, &err) != AL_OK)
            return al_http_reply_rc(h, &err, "prompt");
    } else {
        struct al_buf b;
        al_buf_init(&b, AL_LIMIT_PROMPT_BYTES);
        if (*system && !json_is_true(jr))
            al_buf_addf(&b, "%s\n\n", system);
        al_buf_addstr(&b, text);
        if (al_buf_failed(&b)) {
            al_buf_release(&b);
            return al_http_reply_error(h, 400, "invalid_request_error", "prompt", "limit",
                                       "'prompt' is over the cap of %u bytes", AL_LIMIT_PROMPT_BYTES);
        }
        prompt = al_buf_take(&b);
        al_buf_release(&b);
        if (!prompt)
            return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    }
    struct al_server_gen_opts go = {
        .kind = AL_SERVER_GEN_COMPLETION, .stream = stream, .prompt = prompt, .fmt = &generate_fmt};
    res = run(h, body, &go, "prompt");
    free(prompt);
    return res;
}

/* ---- embeddings ---- */

/* Stops a long embedding when the client goes, the request's time is up or
 * the server stops (as routes_misc.c does for /v1/embeddings). */
struct watch {
    struct al_http_req *h;
    const char *why;
};

static enum al_rc embed_check(void *ud, struct al_err *err)
{
    struct watch *w = ud;
    w->why = al_http_stop_reason(w->h);
    return w->why ? al_err_set(err, AL_ERR_BUSY, "embedding stopped (%s)", w->why) : AL_OK;
}

/* Embeds texts[n] with the leased model; on success *vec (caller frees) holds
 * n rows of *n_embd floats. false with the reply queued in *res. */
static bool embed(struct al_http_req *h, const char **texts, size_t n, float **vec, int *n_embd, size_t *tokens,
                  enum MHD_Result *res)
{
    struct al_engine_model *m = al_serve_lease_engine(h->lease);
    struct al_engine_model_info info;
    al_engine_model_info(m, &info);
    *n_embd = info.n_embd;
    if (!(*vec = malloc((n ? n : 1) * (size_t)info.n_embd * sizeof **vec))) {
        *res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        return false;
    }
    struct al_err err = AL_ERR_INIT;
    struct watch w = {.h = h};
    struct al_engine_embed_ctl ctl = {.check = embed_check, .ud = &w};
    if (n && al_engine_embed_ctl(m, texts, n, &ctl, *vec, tokens, &err) != AL_OK) {
        free(*vec);
        *vec = NULL;
        if (w.why) {
            al_server_metrics_cancelled(h->srv->metrics);
            *res = al_http_reply_stopped(h, w.why);
        } else {
            *res = al_http_reply_rc(h, &err, "input");
        }
        return false;
    }
    h->tokens_in = (int)*tokens;
    return true;
}

static void add_vector(struct al_buf *b, const float *row, int n)
{
    al_buf_addch(b, '[');
    for (int k = 0; k < n; k++)
        al_buf_addf(b, "%s%.9g", k ? "," : "", (double)row[k]);
    al_buf_addch(b, ']');
}

static enum MHD_Result reply_buf(struct al_http_req *h, struct al_buf *b)
{
    enum MHD_Result res = al_buf_failed(b) ? al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory")
                                           : al_http_reply_text(h, 200, "application/json", b->data, b->len);
    al_buf_release(b);
    return res;
}

enum MHD_Result al_server_route_ollama_embed(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    json_t *in = json_object_get(body, "input");
    size_t n = json_is_string(in) ? 1 : json_array_size(in);
    if (!json_is_string(in) && !json_is_array(in))
        return al_http_reply_error(h, 400, "invalid_request_error", "input", NULL,
                                   "'input' must be a string or an array of strings");
    if (n > AL_LIMIT_EMBED_INPUTS)
        return al_http_reply_error(h, 400, "invalid_request_error", "input", "limit",
                                   "'input' has %zu texts, over the cap of %d (AL_LIMIT_EMBED_INPUTS): "
                                   "send them in several requests",
                                   n, AL_LIMIT_EMBED_INPUTS);
    const char **texts = calloc(n ? n : 1, sizeof *texts);
    if (!texts)
        return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_is_string(in) ? in : json_array_get(in, i);
        if (!json_is_string(t)) {
            free(texts);
            return al_http_reply_error(h, 400, "invalid_request_error", "input", NULL, "input[%zu] is not a string", i);
        }
        texts[i] = json_string_value(t);
    }
    if (!al_http_lease(h, body, &res)) {
        free(texts);
        return res;
    }
    struct al_engine_model_info info;
    al_engine_model_info(al_serve_lease_engine(h->lease), &info);
    json_t *dim = json_object_get(body, "dimensions");
    if (dim && !json_is_null(dim) && !(json_is_integer(dim) && json_integer_value(dim) == info.n_embd)) {
        free(texts);
        return al_http_reply_error(h, 400, "invalid_request_error", "dimensions", NULL,
                                   "this model's embeddings have %d dimensions", info.n_embd);
    }
    float *vec = NULL;
    int n_embd = 0;
    size_t tokens = 0;
    bool ok = embed(h, texts, n, &vec, &n_embd, &tokens, &res);
    free(texts);
    if (!ok)
        return res;
    struct al_buf b;
    al_buf_init(&b, (size_t)1 << 30);
    al_buf_addstr(&b, "{\"model\":");
    const char *name = model_name(h, body);
    al_server_json_escape(&b, name, strlen(name));
    al_buf_addstr(&b, ",\"embeddings\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            al_buf_addch(&b, ',');
        add_vector(&b, vec + i * (size_t)n_embd, n_embd);
    }
    al_buf_addf(&b, "],\"total_duration\":%lld,\"load_duration\":0,\"prompt_eval_count\":%zu}",
                ns(al_http_now() - h->t0), tokens);
    free(vec);
    return reply_buf(h, &b);
}

/* The legacy route: {"model", "prompt"} to {"embedding": [...]}. */
enum MHD_Result al_server_route_ollama_embeddings(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    json_t *jp = json_object_get(body, "prompt");
    if (jp && !json_is_string(jp))
        return al_http_reply_error(h, 400, "invalid_request_error", "prompt", NULL, "'prompt' must be a string");
    if (!al_http_lease(h, body, &res))
        return res;
    const char *text = jp ? json_string_value(jp) : "";
    float *vec = NULL;
    int n_embd = 0;
    size_t tokens = 0;
    if (!embed(h, &text, *text ? 1 : 0, &vec, &n_embd, &tokens, &res))
        return res;
    struct al_buf b;
    al_buf_init(&b, (size_t)16 << 20);
    al_buf_addstr(&b, "{\"embedding\":");
    add_vector(&b, vec, *text ? n_embd : 0);
    al_buf_addch(&b, '}');
    free(vec);
    return reply_buf(h, &b);
}

/* ---- models ---- */

/* "260.0K", "7.6B": Ollama's parameter_size. */
static void param_size(uint64_t n, char out[16])
{
    if (n >= 1000000000ull)
        snprintf(out, 16, "%.1fB", (double)n / 1e9);
    else if (n >= 1000000ull)
        snprintf(out, 16, "%.1fM", (double)n / 1e6);
    else
        snprintf(out, 16, "%.1fK", (double)n / 1e3);
}

static json_t *details(const char *arch, const char *file_type, uint64_t n_params)
{
    char ps[16];
    param_size(n_params, ps);
    return json_pack("{s:s, s:s, s:s, s:[s], s:s, s:s}", "parent_model", "", "format", "gguf", "family", arch,
                     "families", arch, "parameter_size", ps, "quantization_level", file_type);
}

static const char *hex_of(const char *digest)
{
    return strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest;
}

enum MHD_Result al_server_route_ollama_tags(struct al_http_req *h, json_t *body)
{
    (void)body;
    struct al_serve_version *v = NULL;
    size_t n = 0;
    struct al_err err = AL_ERR_INIT;
    if (al_serve_versions(h->srv->mm, NULL, &v, &n, &err) != AL_OK)
        return al_http_reply_rc(h, &err, NULL);
    json_t *models = json_array();
    /* Collection snapshots are not models; a key sees only the models its
     * patterns admit. A name resolves to the model's active version. */
    for (size_t i = 0; models && i < n; i++) {
        if (strncmp(v[i].name, "rag/", 4) == 0 || !al_http_model_visible(h, v[i].name))
            continue;
        json_array_append_new(models, json_pack("{s:s, s:s, s:s, s:I, s:s, s:o}", "name", v[i].name, "model",
                                                v[i].name, "modified_at", v[i].created, "size", (json_int_t)v[i].size,
                                                "digest", hex_of(v[i].manifest), "details",
                                                details(v[i].arch, v[i].file_type, v[i].n_params)));
    }
    free(v);
    return al_http_reply_json(h, 200, models ? json_pack("{s:o}", "models", models) : NULL);
}

enum MHD_Result al_server_route_ollama_show(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    json_t *jm = json_object_get(body, "model");
    if (!jm)
        jm = json_object_get(body, "name"); /* the older field */
    if (!json_is_string(jm) || json_string_length(jm) == 0)
        return al_http_reply_error(h, 400, "invalid_request_error", "model", NULL, "'model' must name a model");
    const char *ref = json_string_value(jm);
    if (strncmp(ref, "rag/", 4) == 0)
        return al_http_reply_error(h, 404, "invalid_request_error", "model", "model_not_found",
                                   "'%s' is a collection snapshot, not a model", ref);
    if (!al_http_model_access(h, ref, &res))
        return res;
    struct al_serve_version *v = NULL;
    size_t n = 0;
    struct al_err err = AL_ERR_INIT;
    if (al_serve_versions(h->srv->mm, ref, &v, &n, &err) != AL_OK)
        return al_http_reply_rc(h, &err, "model");
    char key[128];
    json_t *info = json_pack("{s:s, s:I}", "general.architecture", v->arch, "general.parameter_count",
                             (json_int_t)v->n_params);
    struct {
        const char *k;
        uint32_t val;
    } kv[] = {{"context_length", v->context_length}, {"embedding_length", v->embedding_length},
              {"block_count", v->block_count}, {"attention.head_count", v->head_count},
              {"vocab_size", v->vocab_size}};
    for (size_t i = 0; info && v->arch[0] && i < sizeof kv / sizeof kv[0]; i++)
        if (kv[i].val) {
            snprintf(key, sizeof key, "%s.%s", v->arch, kv[i].k);
            json_object_set_new(info, key, json_integer(kv[i].val));
        }
    json_t *caps = json_pack("[s, s]", "completion", "embedding");
    json_t *tags = json_array();
    for (const char *t = v->tags; tags && *t;) {
        size_t len = strcspn(t, ",");
        json_array_append_new(tags, json_stringn(t, len));
        t += len + (t[len] == ',');
    }
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:o}", "license", v->license, "modelfile", "",
                          "parameters", "", "template", v->has_chat_template ? "(the GGUF's chat template)" : "",
                          "details", details(v->arch, v->file_type, v->n_params), "model_info", info, "capabilities",
                          caps, "modified_at", v->created, "digest", hex_of(v->manifest), "tags", tags);
    free(v);
    return al_http_reply_json(h, 200, j);
}

/* The inference backend the binary offloads to, from llama.cpp's system
 * line: "cpu" unless it names a GPU backend. */
static const char *device(void)
{
    const char *s = al_engine_system_info();
    static const char *gpus[] = {"CUDA", "Vulkan", "Metal", "ROCm", "SYCL"};
    for (size_t i = 0; s && i < sizeof gpus / sizeof gpus[0]; i++)
        if (strstr(s, gpus[i]))
            return gpus[i];
    return "cpu";
}

struct ps_ctx {
    json_t *models;
};

static void ps_one(void *ud, const struct al_serve_loaded *lm)
{
    struct ps_ctx *c = ud;
    if (lm->retired || strncmp(lm->name, "rag/", 4) == 0)
        return; /* the key's patterns are checked after, outside the manager's lock */
    /* When it will be unloaded for idleness: never when pinned or kept
     * forever (Ollama writes a far future then), else after keep_alive idle. */
    char exp[48] = "2318-01-01T00:00:00Z";
    if (!lm->pinned && lm->keep_alive_s >= 0) {
        time_t t = time(NULL) + (time_t)(lm->keep_alive_s - (lm->leases ? 0 : lm->idle_s));
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    const char *dev = device();
    const char *desc = lm->info->desc; /* "llama ?B all F32": the family comes first */
    char fam[64];
    snprintf(fam, sizeof fam, "%.*s", (int)strcspn(desc, " "), desc);
    const char *ft = strrchr(desc, ' ') ? strrchr(desc, ' ') + 1 : "";
    json_t *m = json_pack("{s:s, s:s, s:I, s:s, s:o, s:s, s:I, s:i, s:s, s:f, s:i, s:b}", "name", lm->name, "model",
                          lm->name, "size", (json_int_t)lm->mem_bytes, "digest", hex_of(lm->manifest), "details",
                          details(fam, ft, lm->info->n_params), "expires_at", exp, "size_vram",
                          (json_int_t)(strcmp(dev, "cpu") ? lm->mem_bytes : 0), "context_length", lm->info->n_ctx,
                          "device", dev, "idle_s", lm->leases ? 0.0 : lm->idle_s, "requests", lm->leases, "pinned",
                          lm->pinned);
    if (m)
        json_array_append_new(c->models, m);
}

enum MHD_Result al_server_route_ollama_ps(struct al_http_req *h, json_t *body)
{
    (void)body;
    struct ps_ctx c = {json_array()};
    if (!c.models)
        return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    al_serve_foreach_loaded(h->srv->mm, ps_one, &c);
    for (size_t i = json_array_size(c.models); i-- > 0;)
        if (!al_http_model_visible(h, json_string_value(json_object_get(json_array_get(c.models, i), "name"))))
            json_array_remove(c.models, i);
    return al_http_reply_json(h, 200, json_pack("{s:o}", "models", c.models));
}

enum MHD_Result al_server_route_ollama_version(struct al_http_req *h, json_t *body)
{
    (void)body;
    return al_http_reply_json(h, 200, json_pack("{s:s, s:s}", "version", AL_OLLAMA_API_VERSION, "airlock",
                                                AIRLOCK_VERSION));
}
