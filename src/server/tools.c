/*
 * tools.c: tool calling in /v1/chat/completions. Reads and checks `tools`,
 * `tool_choice` and `parallel_tool_calls` (OpenAI's shapes, with caps), and
 * renders the conversation with the model's Jinja template through
 * engine/chat.h, which is llama.cpp's chat library: the grammar that makes
 * a call valid, and the parser of the answer, are its, not ours.
 *
 * Which path a chat takes: a model with a Jinja chat template (the GGUF's or
 * the bundle's template file) is always rendered by it; a model without one
 * keeps llama.cpp's builtin formats (al_engine_chat_format) and cannot call
 * tools: tools are then ignored, unless a call is required (400).
 */
#include "server/http_int.h"

#include <ctype.h>

#include "core/limits.h"
#include "core/log.h"
#include "engine/chat.h"

static bool tool_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > AL_LIMIT_TOOL_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

#define BAD(...) (*res = al_http_reply_error(h, 400, "invalid_request_error", __VA_ARGS__), false)

bool al_server_tools_read(struct al_http_req *h, json_t *body, struct al_server_tools *t, enum MHD_Result *res)
{
    memset(t, 0, sizeof *t);
    t->choice = AL_ENGINE_TOOLS_AUTO;
    json_t *tools = json_object_get(body, "tools");
    if (tools && !json_is_null(tools)) {
        if (!json_is_array(tools))
            return BAD("tools", NULL, "'tools' must be an array of {\"type\": \"function\", \"function\": {...}}");
        size_t n = json_array_size(tools);
        if (n > AL_LIMIT_TOOLS)
            return BAD("tools", "limit", "'tools' has %zu entries; at most %d are allowed", n, AL_LIMIT_TOOLS);
        size_t i, j;
        json_t *tl;
        json_array_foreach(tools, i, tl)
        {
            const char *type = json_string_value(json_object_get(tl, "type"));
            json_t *fn = json_object_get(tl, "function");
            if (!type || strcmp(type, "function") != 0 || !json_is_object(fn))
                return BAD("tools", NULL, "tools[%zu] must be {\"type\": \"function\", \"function\": {\"name\", ...}}",
                           i);
            const char *name = json_string_value(json_object_get(fn, "name"));
            if (!name || !tool_name_ok(name))
                return BAD("tools", NULL,
                           "tools[%zu].function.name must be 1 to %d letters, digits, '_' or '-'", i,
                           AL_LIMIT_TOOL_NAME);
            json_t *d = json_object_get(fn, "description");
            if (d && !json_is_null(d) && !json_is_string(d))
                return BAD("tools", NULL, "tools[%zu].function.description must be a string", i);
            json_t *p = json_object_get(fn, "parameters");
            if (p && !json_is_null(p) && !json_is_object(p))
                return BAD("tools", NULL, "tools[%zu].function.parameters must be a JSON schema object", i);
            for (j = 0; j < i; j++)
                if (strcmp(name, json_string_value(json_object_get(
                                     json_object_get(json_array_get(tools, j), "function"), "name"))) == 0)
                    return BAD("tools", NULL, "tools[%zu] repeats the function name '%s'", i, name);
        }
        /* The whole array's size, as the template will see it. */
        char *dump = json_dumps(tools, JSON_COMPACT);
        size_t len = dump ? strlen(dump) : 0;
        free(dump);
        if (!dump)
            return *res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory"), false;
        if (len > AL_LIMIT_TOOLS_BYTES)
            return BAD("tools", "limit", "'tools' is %zu bytes of JSON; at most %u are allowed", len,
                       AL_LIMIT_TOOLS_BYTES);
        if (n > 0)
            t->tools = tools;
    }
    json_t *tc = json_object_get(body, "tool_choice");
    if (tc && !json_is_null(tc)) {
        const char *s = json_string_value(tc);
        if (s && strcmp(s, "auto") == 0)
            t->choice = AL_ENGINE_TOOLS_AUTO;
        else if (s && strcmp(s, "none") == 0)
            t->choice = AL_ENGINE_TOOLS_NONE;
        else if (s && strcmp(s, "required") == 0)
            t->choice = AL_ENGINE_TOOLS_REQUIRED;
        else if (json_is_object(tc)) {
            const char *type = json_string_value(json_object_get(tc, "type"));
            const char *name = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
            if (!type || strcmp(type, "function") != 0 || !name)
                return BAD("tool_choice", NULL,
                           "'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", "
                           "\"function\": {\"name\": NAME}}");
            t->choice = AL_ENGINE_TOOLS_REQUIRED;
            t->named = name;
        } else {
            return BAD("tool_choice", NULL, "'tool_choice' must be \"none\", \"auto\", \"required\" or a named function");
        }
        if (t->choice == AL_ENGINE_TOOLS_REQUIRED && !t->tools)
            return BAD("tool_choice", NULL, "'tool_choice' requires a tool call, but 'tools' offers none");
        if (t->named) {
            size_t i;
            json_t *tl;
            bool found = false;
            json_array_foreach(t->tools, i, tl)
            {
                const char *nm = json_string_value(json_object_get(json_object_get(tl, "function"), "name"));
                found |= strcmp(nm, t->named) == 0;
            }
            if (!found)
                return BAD("tool_choice", NULL, "'tool_choice' names the function '%s', which 'tools' does not offer",
                           t->named);
        }
    }
    json_t *ptc = json_object_get(body, "parallel_tool_calls");
    if (ptc && !json_is_null(ptc) && !json_is_boolean(ptc))
        return BAD("parallel_tool_calls", NULL, "'parallel_tool_calls' must be a boolean");
    /* OpenAI's default is true; one call per answer is what small models do best,
     * so an explicit true is needed. */
    t->parallel = json_is_true(ptc);
    if (t->tools && t->choice != AL_ENGINE_TOOLS_NONE) {
        json_t *rf = json_object_get(body, "response_format");
        const char *rft = json_string_value(json_object_get(rf, "type"));
        json_t *gr = json_object_get(body, "grammar");
        if ((rft && strcmp(rft, "text") != 0) || (gr && !json_is_null(gr)))
            return BAD("tools", NULL, "'tools' cannot be combined with 'response_format' or 'grammar': use "
                                      "tool_choice \"none\" or leave them out");
    }
    return true;
}

bool al_server_tools_apply(struct al_http_req *h, json_t *body, const struct al_server_tools *t,
                           struct al_engine_chat **chat, enum MHD_Result *res)
{
    *chat = NULL;
    struct al_engine_model *m = al_serve_lease_engine(h->lease);
    bool calls = t->tools && t->choice != AL_ENGINE_TOOLS_NONE;
    if (calls && t->choice == AL_ENGINE_TOOLS_REQUIRED && !al_engine_chat_supports_tools(m))
        return BAD("tool_choice", "tools_unsupported",
                   "model '%s' has %s chat template that can call tools, and 'tool_choice' requires a call: use "
                   "\"auto\" or \"none\", or add a tool-capable template to the model's bundle",
                   al_serve_lease_name(h->lease), al_engine_chat_has_template(m) ? "no" : "no Jinja");
    if (!al_engine_chat_has_template(m))
        return true; /* builtin formats; tools ignored */
    char *msgs = json_dumps(json_object_get(body, "messages"), JSON_COMPACT);
    char *tools = NULL;
    if (t->tools && t->named) {
        json_t *one = json_array();
        size_t i;
        json_t *tl;
        json_array_foreach(t->tools, i, tl)
        {
            const char *nm = json_string_value(json_object_get(json_object_get(tl, "function"), "name"));
            if (strcmp(nm, t->named) == 0)
                json_array_append(one, tl);
        }
        tools = json_dumps(one, JSON_COMPACT);
        json_decref(one);
    } else if (t->tools) {
        tools = json_dumps(t->tools, JSON_COMPACT);
    }
    char prefix[64];
    snprintf(prefix, sizeof prefix, "call_%s_", h->id + 4);
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = AL_ERR_NOMEM;
    if (msgs && (tools || !t->tools)) {
        struct al_engine_chat_in in = {.messages = msgs,
                                       .tools = tools,
                                       .tool_choice = t->choice,
                                       .parallel_tool_calls = t->parallel,
                                       .call_id_prefix = prefix,
                                       .no_generation_prompt = json_is_false(json_object_get(body, "add_generation_prompt")),
                                       .continue_final = al_server_chat_continues(body),
                                       .reasoning = h->srv->o.reasoning == AL_SERVER_REASONING_OFF  ? AL_ENGINE_REASONING_OFF
                                                    : h->srv->o.reasoning == AL_SERVER_REASONING_ON ? AL_ENGINE_REASONING_ON
                                                                                                    : AL_ENGINE_REASONING_AUTO};
        rc = al_engine_chat_apply(m, &in, chat, &err);
    } else {
        al_err_set(&err, rc, "out of memory");
    }
    free(msgs);
    free(tools);
    if (rc == AL_ERR_INVALID && !calls) {
        /* A chat without tool calls that the Jinja template fails on keeps
         * what it had before templates were rendered here: the builtin formats. */
        al_log(AL_LOG_WARN, "%s: %s; using the builtin chat formats", h->id, err.msg);
        return true;
    }
    if (rc) {
        *res = al_http_reply_rc(h, &err, "messages");
        return false;
    }
    return true;
}
