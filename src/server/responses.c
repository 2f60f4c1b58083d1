/*
 * responses.c: POST /v1/responses, the OpenAI Responses API's text,
 * streaming and function-call subset, over the chat path: the request's
 * `instructions` and `input` (a string, or message, function_call and
 * function_call_output items) become chat messages, its flat function tools
 * chat tools, and the chat runs as usual (routes_gen.c, tools.c, gen.c).
 * gen.c then answers with a response object (al_server_responses_object)
 * or, streaming, the Responses events (al_server_responses_event).
 * Not served: previous_response_id and store (nothing is stored), built-in
 * tools (web search, file search, ...), images and files in input.
 */
#include "server/http_int.h"

#include "core/limits.h"
#include "core/utf8.h"

#define BAD(...) al_http_reply_error(h, 400, "invalid_request_error", __VA_ARGS__)

/* The text of a content value: a string, or parts of type input_text,
 * output_text or text. NULL when it is neither. */
static json_t *content_text(json_t *c)
{
    if (json_is_string(c))
        return json_incref(c);
    if (!json_is_array(c))
        return NULL;
    json_t *parts = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(c, i, p)
    {
        const char *type = json_string_value(json_object_get(p, "type"));
        json_t *t = json_object_get(p, "text");
        if (!type || !json_is_string(t) ||
            (strcmp(type, "input_text") != 0 && strcmp(type, "output_text") != 0 && strcmp(type, "text") != 0)) {
            json_decref(parts);
            return NULL;
        }
        json_array_append_new(parts, json_pack("{s:s, s:O}", "type", "text", "text", t));
    }
    return parts;
}

/* input -> messages (appended); false with *why set. */
static bool input_messages(json_t *input, json_t *msgs, const char **why)
{
    if (json_is_string(input)) {
        json_array_append_new(msgs, json_pack("{s:s, s:O}", "role", "user", "content", input));
        return true;
    }
    if (!json_is_array(input) || json_array_size(input) == 0) {
        *why = "'input' must be a string or a non-empty array of items";
        return false;
    }
    if (json_array_size(input) > AL_LIMIT_CHAT_MSGS) {
        *why = "'input' has more items than the cap (AL_LIMIT_CHAT_MSGS)";
        return false;
    }
    size_t i;
    json_t *it;
    json_array_foreach(input, i, it)
    {
        const char *type = json_string_value(json_object_get(it, "type"));
        const char *role = json_string_value(json_object_get(it, "role"));
        if ((!type || strcmp(type, "message") == 0) && role) {
            json_t *c = content_text(json_object_get(it, "content"));
            if (!c) {
                *why = "an input message needs 'content': a string or input_text/output_text parts";
                return false;
            }
            json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", role, "content", c));
        } else if (type && strcmp(type, "function_call") == 0) {
            json_t *id = json_object_get(it, "call_id"), *name = json_object_get(it, "name"),
                   *args = json_object_get(it, "arguments");
            if (!json_is_string(id) || !json_is_string(name) || !json_is_string(args)) {
                *why = "a function_call item needs 'call_id', 'name' and 'arguments' (strings)";
                return false;
            }
            /* Consecutive calls are one assistant message, as chat has them. */
            json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
            json_t *calls = json_object_get(last, "tool_calls");
            json_t *call = json_pack("{s:O, s:s, s:{s:O, s:O}}", "id", id, "type", "function", "function", "name", name,
                                     "arguments", args);
            if (calls)
                json_array_append_new(calls, call);
            else
                json_array_append_new(msgs, json_pack("{s:s, s:n, s:[o]}", "role", "assistant", "content",
                                                      "tool_calls", call));
        } else if (type && strcmp(type, "function_call_output") == 0) {
            json_t *id = json_object_get(it, "call_id"), *out = json_object_get(it, "output");
            json_t *c = out ? content_text(out) : NULL;
            if (!json_is_string(id) || !c) {
                json_decref(c);
                *why = "a function_call_output item needs 'call_id' and 'output' (strings)";
                return false;
            }
            json_array_append_new(msgs, json_pack("{s:s, s:O, s:o}", "role", "tool", "tool_call_id", id, "content", c));
        } else {
            *why = "input items may be messages, function_call and function_call_output";
            return false;
        }
    }
    return true;
}

/* The Responses body as a chat completion's: NULL with the 400 queued in *res. */
static json_t *to_chat(struct al_http_req *h, json_t *body, enum MHD_Result *res)
{
    json_t *prev = json_object_get(body, "previous_response_id");
    if (prev && !json_is_null(prev)) {
        *res = BAD("previous_response_id", NULL,
                   "'previous_response_id' is not supported: nothing is stored; send the whole conversation in 'input'");
        return NULL;
    }
    json_t *chat = json_object();
    json_t *msgs = json_array();
    json_object_set_new(chat, "messages", msgs);
    const char *why = NULL;
    json_t *ins = json_object_get(body, "instructions");
    if (json_is_string(ins))
        json_array_append_new(msgs, json_pack("{s:s, s:O}", "role", "system", "content", ins));
    else if (ins && !json_is_null(ins))
        why = "'instructions' must be a string";
    if (!why)
        input_messages(json_object_get(body, "input"), msgs, &why);
    if (why) {
        json_decref(chat);
        *res = BAD("input", NULL, "%s", why);
        return NULL;
    }
    json_t *tools = json_object_get(body, "tools");
    if (json_is_array(tools) && json_array_size(tools) > 0) {
        json_t *ct = json_array();
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t)
        {
            const char *type = json_string_value(json_object_get(t, "type"));
            if (!type || strcmp(type, "function") != 0) {
                json_decref(ct);
                json_decref(chat);
                *res = BAD("tools", NULL, "tools[%zu]: only tools of type 'function' are supported", i);
                return NULL;
            }
            json_t *fn = json_object();
            const char *keys[] = {"name", "description", "parameters"};
            for (size_t k = 0; k < 3; k++)
                if (json_object_get(t, keys[k]))
                    json_object_set(fn, keys[k], json_object_get(t, keys[k]));
            json_array_append_new(ct, json_pack("{s:s, s:o}", "type", "function", "function", fn));
        }
        json_object_set_new(chat, "tools", ct);
    } else if (tools && !json_is_null(tools) && !json_is_array(tools)) {
        json_decref(chat);
        *res = BAD("tools", NULL, "'tools' must be an array");
        return NULL;
    }
    json_t *tc = json_object_get(body, "tool_choice");
    if (json_is_object(tc) && json_is_string(json_object_get(tc, "name")))
        json_object_set_new(chat, "tool_choice", json_pack("{s:s, s:{s:O}}", "type", "function", "function", "name",
                                                           json_object_get(tc, "name")));
    else if (tc)
        json_object_set(chat, "tool_choice", tc);
    /* Sampling and the rest, under chat's names. */
    const char *same[] = {"model", "stream", "temperature", "top_p", "parallel_tool_calls", "seed", "airlock"};
    for (size_t k = 0; k < sizeof same / sizeof *same; k++)
        if (json_object_get(body, same[k]))
            json_object_set(chat, same[k], json_object_get(body, same[k]));
    json_t *mot = json_object_get(body, "max_output_tokens");
    if (mot && !json_is_null(mot))
        json_object_set(chat, "max_tokens", mot);
    json_t *text = json_object_get(body, "text");
    json_t *fmt = json_object_get(text, "format");
    const char *ft = json_string_value(json_object_get(fmt, "type"));
    if (ft && strcmp(ft, "text") != 0) {
        json_decref(chat);
        *res = BAD("text", NULL, "only text.format 'text' is supported");
        return NULL;
    }
    return chat;
}

enum MHD_Result al_server_route_responses(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    json_t *chat = to_chat(h, body, &res);
    if (!chat)
        return res;
    res = al_server_chat_run(h, chat, AL_SERVER_GEN_RESPONSES);
    json_decref(chat);
    return res;
}

/* llama-server's POST /v1/responses/input_tokens: the token count of the
 * prompt the same body would have, as /v1/chat/completions/input_tokens. */
enum MHD_Result al_server_route_responses_tokens(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    json_t *chat = to_chat(h, body, &res);
    if (!chat)
        return res;
    res = al_server_route_chat_tokens(h, chat);
    json_decref(chat);
    return res;
}

json_t *al_server_responses_object(const char *id, long long created, const char *model, const char *text, size_t len,
                                   json_t *parsed, const struct al_engine_gen_result *res)
{
    json_t *output = json_array();
    json_t *content = parsed ? json_object_get(parsed, "content") : NULL;
    char *t = NULL;
    if (!parsed)
        t = al_utf8_valid_dup(text ? text : "", len, NULL);
    const char *msg_text = parsed ? json_string_value(content) : t;
    if (msg_text && (msg_text[0] || !json_array_size(json_object_get(parsed, "tool_calls"))))
        json_array_append_new(output, json_pack("{s:s+, s:s, s:s, s:s, s:[{s:s, s:s, s:[]}]}", "id", "msg_", id + 5,
                                                "type", "message", "status", "completed", "role", "assistant",
                                                "content", "type", "output_text", "text", msg_text, "annotations"));
    size_t i;
    json_t *call;
    json_array_foreach(json_object_get(parsed, "tool_calls"), i, call)
    {
        json_t *fn = json_object_get(call, "function");
        const char *cid = json_string_value(json_object_get(call, "id"));
        json_array_append_new(output, json_pack("{s:s+, s:s, s:s, s:s, s:O, s:O}", "id", "fc_", cid ? cid : "",
                                                "type", "function_call", "status", "completed", "call_id",
                                                cid ? cid : "", "name", json_object_get(fn, "name"), "arguments",
                                                json_object_get(fn, "arguments")));
    }
    free(t);
    bool cut = res->finish == AL_ENGINE_FINISH_LENGTH;
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:n, s:{s:i, s:i, s:i, s:{s:i}, s:{s:i}}, s:{}, s:{s:{s:s}}}",
                     "id", id, "object", "response", "created_at", created, "status", cut ? "incomplete" : "completed",
                     "model", model, "output", output, "incomplete_details",
                     cut ? json_pack("{s:s}", "reason", "max_output_tokens") : json_null(), "error", "usage",
                     "input_tokens", res->n_prompt, "output_tokens", res->n_gen, "total_tokens",
                     res->n_prompt + res->n_gen, "input_tokens_details", "cached_tokens", res->n_cached,
                     "output_tokens_details", "reasoning_tokens", 0, "metadata", "text", "format", "type", "text");
}

void al_server_responses_event(struct al_buf *b, int *seq, const char *type, json_t *fields)
{
    if (!fields)
        return;
    json_object_set_new(fields, "type", json_string(type));
    json_object_set_new(fields, "sequence_number", json_integer((*seq)++));
    char *d = json_dumps(fields, JSON_COMPACT);
    json_decref(fields);
    if (!d)
        return;
    al_buf_addf(b, "event: %s\ndata: ", type);
    al_buf_addstr(b, d);
    al_buf_addstr(b, "\n\n");
    free(d);
}
