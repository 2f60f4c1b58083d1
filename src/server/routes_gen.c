/*
 * routes_gen.c: POST /v1/chat/completions and POST /v1/completions. Both read
 * their prompt and parameters here and hand the generation to gen.c. And
 * llama-server's POST /apply-template: the chat's prompt, rendered as a chat
 * completion would render it, without generating; and its
 * /v1/chat/completions/input_tokens: that prompt's token count.
 */
#include "server/http_int.h"

#include "core/limits.h"

/* Refuses a prompt over limits.prompt_tokens. A token is at least one byte,
 * so a prompt shorter than the cap in bytes needs no tokenizing here. */
bool al_server_prompt_fits(struct al_http_req *h, const char *prompt, const char *param, enum MHD_Result *res)
{
    int cap = h->limits.prompt_tokens;
    size_t len = strlen(prompt);
    if (len <= (size_t)cap)
        return true;
    int32_t *toks = NULL;
    size_t n = 0;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_engine_tokenize(al_serve_lease_engine(h->lease), prompt, len, true, true, &toks, &n, &err);
    free(toks);
    if (rc) {
        *res = al_http_reply_rc(h, &err, param);
        return false;
    }
    if (n > (size_t)cap) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", param, "context_length_exceeded",
                                   "the prompt has %zu tokens; the server allows at most %d (limits.prompt_tokens)", n,
                                   cap);
        return false;
    }
    return true;
}

bool al_server_read_stream(struct al_http_req *h, json_t *body, struct al_server_gen_opts *go, enum MHD_Result *res)
{
    json_t *st = json_object_get(body, "stream");
    if (st && !json_is_boolean(st) && !json_is_null(st)) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "stream", NULL, "'stream' must be a boolean");
        return false;
    }
    go->stream = json_is_true(st);
    json_t *so = json_object_get(body, "stream_options");
    go->include_usage = go->stream && json_is_true(json_object_get(so, "include_usage"));
    return true;
}

enum MHD_Result al_server_completion_run(struct al_http_req *h, json_t *body, struct al_server_gen_opts *go,
                                         int default_max)
{
    const char *stops[AL_LIMIT_STOP_STRINGS];
    char *grammar = NULL;
    const char *param = NULL;
    struct al_err err = AL_ERR_INIT;
    enum MHD_Result res;
    go->params = al_engine_gen_params_default();
    go->params.max_tokens = default_max;
    al_server_params_defaults(h->srv, &h->limits, &go->params);
    if (al_server_params_from_json(body, &h->limits, &go->params, stops, &grammar, &param, &err) != AL_OK ||
        al_server_logprobs_from_json(body, go->kind != AL_SERVER_GEN_COMPLETION, &go->logprobs, &param, &err) != AL_OK ||
        al_server_post_sampling_from_json(body, &go->params.post_sampling_probs, &param, &err) != AL_OK) {
        free(grammar);
        al_engine_chat_free(go->chat);
        return al_http_reply_rc(h, &err, param);
    }
    struct al_engine_logit_bias *bias = NULL;
    if (al_server_logit_bias_from_json(body, al_serve_lease_engine(h->lease), &bias, &go->params.n_logit_bias,
                                       &err) != AL_OK) {
        free(grammar);
        al_engine_chat_free(go->chat);
        return al_http_reply_rc(h, &err, "logit_bias");
    }
    go->params.logit_bias = bias;
    if (!al_server_lora_request(h, body, &res) ||
        !al_server_prompt_fits(h, go->prompt, go->kind != AL_SERVER_GEN_COMPLETION ? "messages" : "prompt", &res)) {
        free(bias);
        free(grammar);
        al_engine_chat_free(go->chat);
        return res;
    }
    /* n: choices, one engine request each (gen.c), at most AL_LIMIT_CHOICES. */
    json_t *jn = json_object_get(body, "n");
    go->n = 1;
    const char *n_why = NULL;
    if (jn && !json_is_null(jn)) {
        if (!json_is_integer(jn) || json_integer_value(jn) < 1 || json_integer_value(jn) > AL_LIMIT_CHOICES) {
            free(bias);
            free(grammar);
            al_engine_chat_free(go->chat);
            return al_http_reply_error(h, 400, "invalid_request_error", "n", "limit",
                                       "'n' must be an integer from 1 to %d (AL_LIMIT_CHOICES)", AL_LIMIT_CHOICES);
        } else
            go->n = (int)json_integer_value(jn);
    }
    if (!n_why && go->n > 1 && go->chat && al_engine_chat_parses_tools(go->chat))
        n_why = "above 1 cannot be combined with 'tools': one answer calls the tools";
    else if (!n_why && go->n > 1 && go->citations)
        n_why = "above 1 cannot be combined with retrieval ('airlock')";
    else if (!n_why && go->n > 1 && go->kind == AL_SERVER_GEN_RESPONSES)
        n_why = "above 1 is not supported on /v1/responses";
    if (n_why) {
        free(bias);
        free(grammar);
        al_engine_chat_free(go->chat);
        return al_http_reply_error(h, 400, "invalid_request_error", "n", NULL, "'n' %s", n_why);
    }
    /* llama-server's return_progress: how far a streamed request has read its prompt. */
    go->progress = json_is_true(json_object_get(body, "return_progress"));
    json_t *jm = json_object_get(body, "model");
    go->model = json_is_string(jm) ? json_string_value(jm) : al_serve_lease_name(h->lease);
    /* A formatter's fields of the request (llama-server's generation_settings). */
    if (go->fmt && go->fmt->extra && !(go->extra = go->fmt->extra(go))) {
        free(bias);
        free(grammar);
        al_engine_chat_free(go->chat);
        return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    }
    res = al_server_gen_run(h, go);
    json_decref(go->extra);
    free(bias);
    free(grammar);
    return res;
}

enum MHD_Result al_server_route_completions(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    json_t *jp = json_object_get(body, "prompt");
    if (json_is_array(jp) && json_array_size(jp) == 1)
        jp = json_array_get(jp, 0);
    /* An array of strings: one choice a prompt, its index the prompt's. */
    const char *prompts[AL_LIMIT_PROMPTS];
    int n_prompts = 0;
    if (json_is_array(jp) && json_array_size(jp) > AL_LIMIT_PROMPTS)
        return al_http_reply_error(h, 400, "invalid_request_error", "prompt", "limit",
                                   "'prompt' has %zu prompts; at most %d are allowed (AL_LIMIT_PROMPTS)",
                                   json_array_size(jp), AL_LIMIT_PROMPTS);
    size_t i;
    json_t *v;
    json_array_foreach(jp, i, v)
    {
        if (!json_is_string(v))
            return al_http_reply_error(h, 400, "invalid_request_error", "prompt", NULL,
                                       "'prompt' must be a string or an array of strings");
        prompts[n_prompts++] = json_string_value(v);
    }
    if (!json_is_string(jp) && n_prompts < 2)
        return al_http_reply_error(h, 400, "invalid_request_error", "prompt", NULL,
                                   "'prompt' must be a string or an array of strings");
    json_t *jn = json_object_get(body, "n");
    if (n_prompts > 1 && json_is_integer(jn) && json_integer_value(jn) > 1)
        return al_http_reply_error(h, 400, "invalid_request_error", "n", NULL,
                                   "'n' above 1 cannot be combined with several prompts");
    if (json_is_true(json_object_get(body, "echo")))
        return al_http_reply_error(h, 400, "invalid_request_error", "echo", NULL, "'echo' is not supported");
    json_t *sfx = json_object_get(body, "suffix");
    if (sfx && !json_is_null(sfx))
        return al_http_reply_error(h, 400, "invalid_request_error", "suffix", NULL, "'suffix' is not supported");
    json_t *tl = json_object_get(body, "tools");
    if (json_is_array(tl) && json_array_size(tl) > 0)
        return al_http_reply_error(h, 400, "invalid_request_error", "tools", NULL,
                                   "'tools' are for /v1/chat/completions and /v1/responses, not /v1/completions");
    json_t *bo = json_object_get(body, "best_of");
    if (bo && !json_is_null(bo) && !(json_is_integer(bo) && json_integer_value(bo) == 1))
        return al_http_reply_error(h, 400, "invalid_request_error", "best_of", NULL, "'best_of' must be 1");
    if (!al_http_lease(h, body, &res))
        return res;
    struct al_server_gen_opts go = {.kind = AL_SERVER_GEN_COMPLETION,
                                    .prompt = n_prompts ? prompts[0] : json_string_value(jp),
                                    .prompts = n_prompts ? prompts : NULL, .n_prompts = n_prompts};
    for (int k = 1; k < n_prompts; k++) /* the first is checked with the parameters */
        if (!al_server_prompt_fits(h, prompts[k], "prompt", &res))
            return res;
    if (!al_server_read_stream(h, body, &go, &res))
        return res;
    if (h->srv->o.audit_text && !(h->prompt = strdup(go.prompt)))
        return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    /* OpenAI's legacy completions default to 16 tokens. */
    return al_server_completion_run(h, body, &go, 16);
}

/* The text of a message's content: a string, or the text parts of an array
 * joined as llama.cpp's chat library joins them (one newline between parts,
 * none before the first), so a prompt has the same tokens on both servers. */
static bool content_text(json_t *c, struct al_buf *b)
{
    if (!c || json_is_null(c))
        return true;
    if (json_is_string(c)) {
        al_buf_add(b, json_string_value(c), json_string_length(c));
        return true;
    }
    if (!json_is_array(c))
        return false;
    size_t i;
    json_t *part;
    json_array_foreach(c, i, part)
    {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *t = json_object_get(part, "text");
        if (!type || strcmp(type, "text") != 0 || !json_is_string(t))
            return false;
        if (b->len > 0)
            al_buf_addch(b, '\n');
        al_buf_add(b, json_string_value(t), json_string_length(t));
    }
    return true;
}

enum MHD_Result al_server_route_chat(struct al_http_req *h, json_t *body)
{
    return al_server_chat_run(h, body, AL_SERVER_GEN_CHAT);
}

/* continue_final_message (vLLM's and transformers' name): the answer goes on
 * from the last, assistant, message instead of opening a new turn. As
 * llama-server: true, "content" or "reasoning_content" ask for it, and it
 * needs add_generation_prompt false; without it, two assistant messages at
 * the end are refused (llama-server would continue the last one). False
 * with the 400 queued in *res. */
bool al_server_chat_continues(json_t *body)
{
    json_t *c = json_object_get(body, "continue_final_message");
    return json_is_true(c) || (json_is_string(c) && (strcmp(json_string_value(c), "content") == 0 ||
                                                     strcmp(json_string_value(c), "reasoning_content") == 0));
}

static bool chat_continuation(struct al_http_req *h, json_t *body, const struct al_engine_chat_msg *cm, size_t n,
                              enum MHD_Result *res)
{
    json_t *c = json_object_get(body, "continue_final_message");
    const char *why = NULL;
    if (c && !json_is_null(c) && !json_is_boolean(c) && !json_is_string(c))
        why = "'continue_final_message' must be a boolean";
    else if (al_server_chat_continues(body) && !json_is_false(json_object_get(body, "add_generation_prompt")))
        why = "Cannot set both add_generation_prompt and continue_final_message to true.";
    else if (al_server_chat_continues(body) && strcmp(cm[n - 1].role, "assistant") != 0)
        why = "continue_final_message needs an assistant message last";
    else if (!al_server_chat_continues(body) && n >= 2 && strcmp(cm[n - 1].role, "assistant") == 0 &&
             strcmp(cm[n - 2].role, "assistant") == 0)
        why = "Cannot have 2 or more assistant messages at the end of the list.";
    if (!why)
        return true;
    *res = al_http_reply_error(h, 400, "invalid_request_error", "messages", NULL, "%s", why);
    return false;
}

/* The messages of body as the builtin formats read them: (*cm)[i] borrows
 * (*texts)[i]. Both arrays are the caller's to free (chat_messages_free),
 * also on failure; false with the 400 queued in *res. */
static bool chat_messages(struct al_http_req *h, json_t *body, struct al_engine_chat_msg **cm, struct al_buf **texts,
                          size_t *n, enum MHD_Result *res)
{
    json_t *msgs = json_object_get(body, "messages");
    *n = json_array_size(msgs);
    if (!json_is_array(msgs) || *n == 0) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "messages", NULL,
                                   "'messages' must be a non-empty array");
        return false;
    }
    if (*n > AL_LIMIT_CHAT_MSGS) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "messages", "limit",
                                   "'messages' has %zu entries; at most %d are allowed", *n, AL_LIMIT_CHAT_MSGS);
        return false;
    }
    *cm = calloc(*n, sizeof **cm);
    *texts = calloc(*n, sizeof **texts);
    if (!*cm || !*texts) {
        *res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        return false;
    }
    for (size_t i = 0; i < *n; i++)
        al_buf_init(&(*texts)[i], AL_LIMIT_PROMPT_BYTES);
    for (size_t i = 0; i < *n; i++) {
        json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role || !content_text(json_object_get(m, "content"), &(*texts)[i])) {
            *res = al_http_reply_error(h, 400, "invalid_request_error", "messages", NULL,
                                       "messages[%zu] needs a 'role' and a 'content' of text", i);
            return false;
        }
        if (al_buf_failed(&(*texts)[i])) {
            *res = al_http_reply_error(h, 400, "invalid_request_error", "messages", "limit",
                                       "messages[%zu] is over the cap of %u bytes", i, AL_LIMIT_PROMPT_BYTES);
            return false;
        }
        (*cm)[i].role = strcmp(role, "developer") == 0 ? "system" : role;
        (*cm)[i].content = al_buf_str(&(*texts)[i]);
    }
    json_t *agp = json_object_get(body, "add_generation_prompt");
    if (agp && !json_is_boolean(agp) && !json_is_null(agp)) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "add_generation_prompt", NULL,
                                   "'add_generation_prompt' must be a boolean");
        return false;
    }
    return chat_continuation(h, body, *cm, *n, res);
}

static void chat_messages_free(struct al_engine_chat_msg *cm, struct al_buf *texts, size_t n)
{
    for (size_t i = 0; texts && i < n; i++)
        al_buf_release(&texts[i]);
    free(texts);
    free(cm);
}

/* With the leased model: the conversation rendered with its Jinja template
 * (tools.c) into *chat and *prompt, else with the builtin formats into
 * *prompt (the caller frees both). add_generation_prompt: false ends it
 * without the opening of the assistant's turn. False with the error queued. */
static bool chat_render(struct al_http_req *h, json_t *body, const struct al_server_tools *tools,
                        const struct al_engine_chat_msg *cm, size_t n, struct al_engine_chat **chat, char **prompt,
                        enum MHD_Result *res)
{
    struct al_err err = AL_ERR_INIT;
    if (!al_server_tools_apply(h, body, tools, chat, res))
        return false;
    if (*chat && !(*prompt = strdup(al_engine_chat_prompt(*chat)))) {
        *res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        return false;
    }
    bool add_gen = !json_is_false(json_object_get(body, "add_generation_prompt"));
    if (!*chat && al_engine_chat_format(al_serve_lease_engine(h->lease), cm, n, add_gen,
                                        al_serve_lease_chat_fallback(h->lease), prompt, &err) != AL_OK) {
        *res = al_http_reply_rc(h, &err, "messages");
        return false;
    }
    return true;
}

enum MHD_Result al_server_route_apply_template(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    struct al_engine_chat_msg *cm = NULL;
    struct al_buf *texts = NULL;
    size_t n = 0;
    char *prompt = NULL;
    struct al_engine_chat *chat = NULL;
    struct al_server_tools tools;
    if (chat_messages(h, body, &cm, &texts, &n, &res) && al_server_tools_read(h, body, &tools, &res) &&
        al_http_lease(h, body, &res) && chat_render(h, body, &tools, cm, n, &chat, &prompt, &res))
        res = al_http_reply_json(h, 200, json_pack("{s:s}", "prompt", prompt));
    al_engine_chat_free(chat);
    free(prompt);
    chat_messages_free(cm, texts, n);
    return res;
}

/* llama-server's POST /v1/chat/completions/input_tokens: the prompt's token
 * count (BOS included, as a chat completion counts it), nothing generated. */
enum MHD_Result al_server_route_chat_tokens(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    struct al_engine_chat_msg *cm = NULL;
    struct al_buf *texts = NULL;
    size_t n = 0;
    char *prompt = NULL;
    struct al_engine_chat *chat = NULL;
    struct al_server_tools tools;
    if (chat_messages(h, body, &cm, &texts, &n, &res) && al_server_tools_read(h, body, &tools, &res) &&
        al_http_lease(h, body, &res) && chat_render(h, body, &tools, cm, n, &chat, &prompt, &res)) {
        int32_t *toks = NULL;
        size_t nt = 0;
        struct al_err err = AL_ERR_INIT;
        if (al_engine_tokenize(al_serve_lease_engine(h->lease), prompt, strlen(prompt), true, true, &toks, &nt, &err))
            res = al_http_reply_rc(h, &err, "messages");
        else
            res = al_http_reply_json(h, 200, json_pack("{s:I, s:s}", "input_tokens", (json_int_t)nt, "object",
                                                       "response.input_tokens"));
        free(toks);
    }
    al_engine_chat_free(chat);
    free(prompt);
    chat_messages_free(cm, texts, n);
    return res;
}

enum MHD_Result al_server_chat_run(struct al_http_req *h, json_t *body, enum al_server_gen_kind kind)
{
    enum MHD_Result res;
    struct al_engine_chat_msg *cm = NULL;
    struct al_buf *texts = NULL;
    size_t n = 0;
    char *prompt = NULL;
    json_t *citations = NULL;
    struct al_engine_chat *chat = NULL;
    if (!chat_messages(h, body, &cm, &texts, &n, &res))
        goto out;
    struct al_server_tools tools;
    if (!al_server_tools_read(h, body, &tools, &res))
        goto out;
    if (!al_http_lease(h, body, &res))
        goto out;
    json_t *ext = json_object_get(body, "airlock");
    if (ext && !json_is_null(ext)) {
        /* Retrieval: the passages go into the prompt, the citations into the response. */
        if (!al_server_rag_chat(h, body, cm, n, &prompt, &citations, &res))
            goto out;
    } else if (!chat_render(h, body, &tools, cm, n, &chat, &prompt, &res)) {
        goto out;
    }
    struct al_server_gen_opts go = {.kind = kind, .prompt = prompt, .citations = citations};
    if (!al_server_read_stream(h, body, &go, &res))
        goto out;
    if (h->srv->o.audit_text && !(h->prompt = strdup(prompt))) {
        res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        goto out;
    }
    go.chat = chat; /* run takes it */
    chat = NULL;
    res = al_server_completion_run(h, body, &go, h->limits.max_tokens);
out:
    al_engine_chat_free(chat);
    chat_messages_free(cm, texts, n);
    free(prompt);
    json_decref(citations);
    return res;
}
