/*
 * chat_shim.cpp: chat.h (and the chat part of engine_int.h) over llama.cpp's
 * common chat library (common/chat.h), the only includer of it. Like
 * rag/faiss_shim.cpp for FAISS: every entry point catches what the library
 * throws and turns it into an al_err; nothing C++ crosses the boundary.
 *
 * We write no template engine and no per-family parser: rendering
 * (common_chat_templates_apply, Jinja), the tool-call grammar with its
 * triggers, and parsing the answer back (common_chat_parse, with the PEG
 * parser the apply step serialized) are llama.cpp's. What is ours is the
 * plumbing llama-server does around them: trigger words that are one token
 * become token triggers, preserved tokens are looked up in the vocabulary,
 * a non-lazy grammar accepts the generation prompt's tokens first, and the
 * parsed message is turned into OpenAI's deltas.
 */
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

/* llama.cpp's common library, by its folder and with <>: "chat.h" would be ours. */
#include <common/chat.h>
#include <common/common.h>

extern "C" {
#include "engine/engine_int.h"
#include "core/limits.h"
#include "core/log.h"
}

#include "engine/chat.h"

struct al_engine_chat_tmpls {
    common_chat_templates_ptr t;
    bool tools = false; /* supports_tool_calls */
    std::string source; /* the default template's text */
};

struct al_engine_chat {
    std::string prompt;
    std::string grammar;
    bool lazy = false;
    std::vector<std::string> patterns;
    std::vector<llama_token> trigger_tokens;
    std::vector<llama_token> prefill;   /* accepted by a non-lazy grammar first */
    std::vector<llama_token> preserved; /* sorted */
    std::vector<std::string> stops;
    std::vector<const char *> stop_ptrs;
    common_chat_parser_params pp;
    bool parse_tools = false;
    std::string id_prefix;
    common_chat_msg prev;               /* the message as parsed last time */
    std::vector<std::string> ids;       /* the calls' ids, stable across parses */
};

static enum al_rc fail(struct al_err *err, enum al_rc rc, const char *what, const std::exception &e)
{
    return al_err_set(err, rc, "%s: %s", what, e.what());
}

extern "C" enum al_rc al_engine_chat_tmpls_new(const struct llama_model *model, const char *override,
                                               struct al_engine_chat_tmpls **out, struct al_err *err)
{
    *out = nullptr;
    if (!override && !llama_model_chat_template(model, nullptr) && !llama_model_chat_template(model, "tool_use"))
        return AL_OK;
    if (override && strlen(override) > AL_LIMIT_CHAT_TEMPLATE)
        return al_err_set(err, AL_ERR_LIMIT, "the chat template is over the cap of %u bytes (AL_LIMIT_CHAT_TEMPLATE)",
                          AL_LIMIT_CHAT_TEMPLATE);
    auto *t = new (std::nothrow) al_engine_chat_tmpls;
    if (!t)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory parsing a chat template");
    try {
        t->t = common_chat_templates_init(model, override ? override : "");
        auto caps = common_chat_templates_get_caps(t->t.get());
        t->tools = caps["supports_tool_calls"];
        t->source = common_chat_templates_source(t->t.get(), "");
    } catch (const std::exception &e) {
        delete t;
        return fail(err, AL_ERR_INVALID, "the chat template does not parse", e);
    }
    *out = t;
    return AL_OK;
}

extern "C" enum al_rc al_engine_chat_template_check(const char *tmpl, struct al_err *err)
{
    if (strlen(tmpl) > AL_LIMIT_CHAT_TEMPLATE)
        return al_err_set(err, AL_ERR_LIMIT, "the chat template is over the cap of %u bytes (AL_LIMIT_CHAT_TEMPLATE)",
                          AL_LIMIT_CHAT_TEMPLATE);
    if (!*tmpl)
        return al_err_set(err, AL_ERR_INVALID, "the chat template is empty");
    try {
        /* As llama.cpp's common_chat_verify_template does with Jinja. */
        auto t = common_chat_templates_init(nullptr, tmpl);
        common_chat_msg msg;
        msg.role = "user";
        msg.content = "test";
        common_chat_templates_inputs inputs;
        inputs.messages = {msg};
        common_chat_templates_apply(t.get(), inputs);
    } catch (const std::bad_alloc &e) {
        return fail(err, AL_ERR_NOMEM, "out of memory checking the chat template", e);
    } catch (const std::exception &e) {
        return fail(err, AL_ERR_INVALID, "the chat template does not parse or render", e);
    }
    return AL_OK;
}

extern "C" void al_engine_chat_tmpls_free(struct al_engine_chat_tmpls *t)
{
    delete t;
}

extern "C" bool al_engine_chat_has_template(const struct al_engine_model *m)
{
    return m->chat != nullptr;
}

extern "C" const char *al_engine_chat_template_text(const struct al_engine_model *m)
{
    return m->chat ? m->chat->source.c_str() : nullptr;
}

extern "C" bool al_engine_chat_supports_tools(const struct al_engine_model *m)
{
    return m->chat && m->chat->tools;
}

/* The rule named name ("root") as [start, end of line) in g; false if none. */
static bool find_rule(const std::string &g, const char *name, size_t *start, size_t *eol)
{
    std::string head = std::string(name) + " ::= ";
    size_t at = g.compare(0, head.size(), head) == 0 ? 0 : g.find("\n" + head);
    if (at == std::string::npos)
        return false;
    *start = at == 0 ? 0 : at + 1;
    *eol = g.find('\n', *start);
    if (*eol == std::string::npos)
        *eol = g.size();
    return true;
}

/* With a call required, llama.cpp's grammar still lets free text come
 * first (the root rule is `prefix space until-N? tool-calls`, until-N being
 * any text that does not contain the call's marker): a small model may then
 * write text until max_tokens and never call. The optional until-N in the
 * root rule is dropped, so that the call starts at the first token. Only the
 * root rule is touched, only an optional until rule; a grammar of another
 * shape is left as it is. */
static void drop_leading_text(std::string &g)
{
    size_t root, eol;
    if (!find_rule(g, "root", &root, &eol))
        return;
    size_t u = g.find(" until-", root);
    if (u == std::string::npos || u > eol)
        return;
    size_t e = u + 7;
    while (e < eol && isdigit((unsigned char)g[e]))
        e++;
    if (e == u + 7 || e >= eol || g[e] != '?')
        return;
    g.erase(u, e + 1 - u);
}

/* Required calls: besides the leading text (drop_leading_text), one call
 * unless parallel calls are asked for (the library's "tool-calls" rule
 * repeats), and JSON with at most one blank between tokens (its "space"
 * rule allows 22 whitespace characters at every gap, which a small model
 * fills). Each rewrite applies only to a rule of exactly the shape named. */
static void tighten_required(std::string &g, bool parallel)
{
    drop_leading_text(g);
    size_t a, e;
    if (!parallel && find_rule(g, "tool-calls", &a, &e) && e - a > 2 && g.compare(e - 2, 2, ")+") == 0 &&
        g.compare(a, 16, "tool-calls ::= (") == 0)
        g.erase(e - 1, 1);
    if (find_rule(g, "space", &a, &e))
        g.replace(a, e - a, "space ::= | \" \"");
}

static std::vector<llama_token> tokenize(const llama_vocab *vocab, const std::string &s)
{
    return common_tokenize(vocab, s, false, true);
}

extern "C" enum al_rc al_engine_chat_apply(struct al_engine_model *m, const struct al_engine_chat_in *in,
                                           struct al_engine_chat **out, struct al_err *err)
{
    *out = nullptr;
    if (!m->chat)
        return al_err_set(err, AL_ERR_USAGE, "the model has no Jinja chat template");
    auto *c = new (std::nothrow) al_engine_chat;
    if (!c)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory applying a chat template");
    common_chat_templates_inputs inputs;
    try {
        inputs.messages = common_chat_msgs_parse_oaicompat(common_json::parse(in->messages));
        if (in->tools && in->tools[0])
            inputs.tools = common_chat_tools_parse_oaicompat(common_json::parse(in->tools));
    } catch (const std::exception &e) {
        delete c;
        return fail(err, AL_ERR_INVALID, "malformed 'messages' or 'tools'", e);
    }
    bool want_tools = !inputs.tools.empty() && in->tool_choice != AL_ENGINE_TOOLS_NONE;
    if (want_tools && in->tool_choice == AL_ENGINE_TOOLS_REQUIRED && !m->chat->tools) {
        delete c;
        return al_err_set(err, AL_ERR_INVALID,
                          "the model's chat template cannot call tools, and tool_choice requires a call: use "
                          "tool_choice \"auto\" or \"none\", or give the model a tool-capable template");
    }
    if (!m->chat->tools) {
        /* A template that cannot render tools gets none: auto then answers in
         * text, as "none" does. */
        inputs.tools.clear();
        want_tools = false;
    }
    inputs.tool_choice = in->tool_choice == AL_ENGINE_TOOLS_REQUIRED ? COMMON_CHAT_TOOL_CHOICE_REQUIRED
                         : in->tool_choice == AL_ENGINE_TOOLS_NONE   ? COMMON_CHAT_TOOL_CHOICE_NONE
                                                                     : COMMON_CHAT_TOOL_CHOICE_AUTO;
    inputs.parallel_tool_calls = in->parallel_tool_calls;
    inputs.use_jinja = true;
    inputs.add_generation_prompt = !in->no_generation_prompt && !in->continue_final;
    if (in->continue_final)
        inputs.continue_final_message = COMMON_CHAT_CONTINUATION_AUTO;
    if (in->reasoning != AL_ENGINE_REASONING_AUTO) {
        /* As llama-server's --reasoning: the flag and the template's kwarg. */
        inputs.enable_thinking = in->reasoning == AL_ENGINE_REASONING_ON;
        inputs.chat_template_kwargs["enable_thinking"] = inputs.enable_thinking ? "true" : "false";
    }
    inputs.reasoning_format = COMMON_REASONING_FORMAT_NONE;
    const llama_vocab *vocab = m->vocab;
    try {
        common_chat_params cp = common_chat_templates_apply(m->chat->t.get(), inputs);
        if (cp.prompt.size() > AL_LIMIT_PROMPT_BYTES) {
            delete c;
            return al_err_set(err, AL_ERR_LIMIT, "the formatted chat is over the cap of %u bytes (AL_LIMIT_PROMPT_BYTES)",
                              AL_LIMIT_PROMPT_BYTES);
        }
        c->prompt = std::move(cp.prompt);
        c->parse_tools = want_tools;
        c->pp = common_chat_parser_params(cp);
        c->pp.reasoning_format = COMMON_REASONING_FORMAT_NONE;
        c->pp.parse_tool_calls = want_tools;
        if (!cp.parser.empty())
            c->pp.parser.load(cp.parser);
        c->id_prefix = in->call_id_prefix ? in->call_id_prefix : "call_";
        for (const auto &s : cp.additional_stops)
            if (!s.empty())
                c->stops.push_back(s);
        for (const auto &s : c->stops)
            c->stop_ptrs.push_back(s.c_str());
        if (want_tools && !cp.grammar.empty()) {
            c->grammar = cp.grammar;
            if (in->tool_choice == AL_ENGINE_TOOLS_REQUIRED && !cp.grammar_lazy)
                tighten_required(c->grammar, in->parallel_tool_calls);
            c->lazy = cp.grammar_lazy;
            for (const auto &s : cp.preserved_tokens) {
                auto ids = tokenize(vocab, s);
                if (ids.size() == 1)
                    c->preserved.push_back(ids[0]);
            }
            for (const auto &t : cp.grammar_triggers) {
                switch (t.type) {
                case COMMON_GRAMMAR_TRIGGER_TYPE_WORD: {
                    auto ids = tokenize(vocab, t.value);
                    if (ids.size() == 1) {
                        c->trigger_tokens.push_back(ids[0]);
                        c->preserved.push_back(ids[0]);
                    } else {
                        c->patterns.push_back(regex_escape(t.value));
                    }
                    break;
                }
                case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN: c->patterns.push_back(t.value); break;
                case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL: {
                    std::string a = "^$";
                    if (!t.value.empty())
                        a = (t.value.front() != '^' ? "^" : "") + t.value + (t.value.back() != '$' ? "$" : "");
                    c->patterns.push_back(a);
                    break;
                }
                case COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN:
                    if (t.token != LLAMA_TOKEN_NULL)
                        c->trigger_tokens.push_back(t.token);
                    break;
                }
            }
            if (c->lazy && c->patterns.empty() && c->trigger_tokens.empty()) {
                delete c;
                return al_err_set(err, AL_ERR_INTERNAL, "the chat format gave a lazy grammar without triggers");
            }
            if (!c->lazy && !cp.generation_prompt.empty()) {
                auto toks = tokenize(vocab, cp.generation_prompt);
                char piece[256];
                for (size_t i = 0; i < toks.size(); i++) {
                    int n = llama_token_to_piece(vocab, toks[i], piece, sizeof piece, 0, true);
                    /* Some tokenizers put a space before a first special token. */
                    if (i == 0 && n > 0 && isspace((unsigned char)piece[0]) &&
                        !isspace((unsigned char)cp.generation_prompt[0]))
                        continue;
                    c->prefill.push_back(toks[i]);
                }
            }
            std::sort(c->preserved.begin(), c->preserved.end());
        }
        al_debug("chat: format %s, grammar %zu bytes%s, %zu trigger patterns, %zu trigger tokens, %zu preserved, "
                 "%zu prefill tokens, parser %zu bytes",
                 common_chat_format_name(cp.format), c->grammar.size(), c->lazy ? " (lazy)" : "", c->patterns.size(),
                 c->trigger_tokens.size(), c->preserved.size(), c->prefill.size(), cp.parser.size());
        if (getenv("AL_DEBUG_CHAT"))
            al_debug("chat: grammar:\n%s\ngeneration prompt: '%s'", c->grammar.c_str(), cp.generation_prompt.c_str());
    } catch (const std::exception &e) {
        delete c;
        return fail(err, AL_ERR_INVALID, "cannot apply the chat template", e);
    }
    *out = c;
    return AL_OK;
}

extern "C" void al_engine_chat_free(struct al_engine_chat *c)
{
    delete c;
}

extern "C" const char *al_engine_chat_prompt(const struct al_engine_chat *c)
{
    return c->prompt.c_str();
}

extern "C" bool al_engine_chat_parses_tools(const struct al_engine_chat *c)
{
    return c->parse_tools;
}

extern "C" enum al_rc al_engine_chat_grammar_sampler(const struct al_engine_chat *c, const struct llama_vocab *vocab,
                                                     struct llama_sampler **out, struct al_err *err)
{
    *out = nullptr;
    if (!c || c->grammar.empty())
        return AL_OK;
    if (c->grammar.size() > AL_LIMIT_GRAMMAR)
        return al_err_set(err, AL_ERR_LIMIT, "the tool-call grammar is over the cap of %u bytes (AL_LIMIT_GRAMMAR)",
                          AL_LIMIT_GRAMMAR);
    llama_sampler *g = nullptr;
    try {
        al_engine_llama_clear_error();
        if (c->lazy) {
            std::vector<const char *> pats;
            for (const auto &p : c->patterns)
                pats.push_back(p.c_str());
            g = llama_sampler_init_grammar_lazy_patterns(vocab, c->grammar.c_str(), "root", pats.data(), pats.size(),
                                                         c->trigger_tokens.data(), c->trigger_tokens.size());
        } else {
            g = llama_sampler_init_grammar(vocab, c->grammar.c_str(), "root");
        }
        if (!g) {
            const char *why = al_engine_llama_last_error();
            return al_err_set(err, AL_ERR_INVALID, "the tool-call grammar does not parse%s%s", *why ? ": " : "", why);
        }
        for (llama_token t : c->prefill)
            llama_sampler_accept(g, t);
    } catch (const std::exception &e) {
        llama_sampler_free(g);
        return fail(err, AL_ERR_INTERNAL, "the tool-call grammar refuses the generation prompt", e);
    }
    *out = g;
    return AL_OK;
}

extern "C" const char *const *al_engine_chat_stops(const struct al_engine_chat *c, int *n)
{
    *n = (int)c->stop_ptrs.size();
    return c->stop_ptrs.data();
}

extern "C" const llama_token *al_engine_chat_preserved(const struct al_engine_chat *c, int *n)
{
    *n = (int)c->preserved.size();
    return c->preserved.data();
}

static common_json call_json(const common_chat_tool_call &tc)
{
    common_json f = common_json::object();
    f["name"] = tc.name;
    f["arguments"] = tc.arguments;
    common_json j = common_json::object();
    j["id"] = tc.id;
    j["type"] = "function";
    j["function"] = f;
    return j;
}

static common_json delta_json(const common_chat_msg_diff &d)
{
    common_json delta = common_json::object();
    if (!d.reasoning_content_delta.empty())
        delta["reasoning_content"] = d.reasoning_content_delta;
    if (!d.content_delta.empty())
        delta["content"] = d.content_delta;
    if (d.tool_call_index != std::string::npos) {
        common_json tc = common_json::object();
        tc["index"] = (uint64_t)d.tool_call_index;
        if (!d.tool_call_delta.id.empty()) {
            tc["id"] = d.tool_call_delta.id;
            tc["type"] = "function";
        }
        common_json f = common_json::object();
        if (!d.tool_call_delta.name.empty())
            f["name"] = d.tool_call_delta.name;
        f["arguments"] = d.tool_call_delta.arguments;
        tc["function"] = f;
        common_json arr = common_json::array();
        arr.push_back(tc);
        delta["tool_calls"] = arr;
    }
    return delta;
}

static char *dup(const std::string &s)
{
    char *p = (char *)malloc(s.size() + 1);
    if (p)
        memcpy(p, s.c_str(), s.size() + 1);
    return p;
}

extern "C" enum al_rc al_engine_chat_parse(struct al_engine_chat *c, const char *text, size_t len, bool partial,
                                           char **deltas, char **message, size_t *n_calls, struct al_err *err)
{
    common_chat_msg msg;
    try {
        msg = common_chat_parse(std::string(text, len), partial, c->pp);
    } catch (const std::exception &e) {
        if (partial) { /* not parseable yet: nothing new */
            msg = c->prev;
        } else {
            return fail(err, AL_ERR_INVALID, "the answer does not match the model's tool-call format", e);
        }
    }
    try {
        msg.set_tool_call_ids(c->ids, [&]() { return c->id_prefix + std::to_string(c->ids.size()); });
        common_json arr = common_json::array();
        if (deltas) {
            std::vector<common_chat_msg_diff> diffs;
            try {
                diffs = common_chat_msg_diff::compute_diffs(c->prev, msg);
            } catch (const std::exception &) {
                /* A partial parse that took something back: wait for more. */
                if (!partial)
                    throw;
                msg = c->prev;
            }
            for (const auto &d : diffs)
                arr.push_back(delta_json(d));
        }
        c->prev = msg;
        if (n_calls)
            *n_calls = msg.tool_calls.size();
        if (deltas && !(*deltas = dup(arr.dump())))
            return al_err_set(err, AL_ERR_NOMEM, "out of memory parsing an answer");
        if (message) {
            common_json j = common_json::object();
            j["role"] = "assistant";
            if (msg.content.empty() && !msg.tool_calls.empty())
                j["content"] = nullptr;
            else
                j["content"] = msg.content;
            if (!msg.reasoning_content.empty())
                j["reasoning_content"] = msg.reasoning_content;
            if (!msg.tool_calls.empty()) {
                common_json calls = common_json::array();
                for (const auto &tc : msg.tool_calls)
                    calls.push_back(call_json(tc));
                j["tool_calls"] = calls;
            }
            if (!(*message = dup(j.dump()))) {
                if (deltas) {
                    free(*deltas);
                    *deltas = nullptr;
                }
                return al_err_set(err, AL_ERR_NOMEM, "out of memory parsing an answer");
            }
        }
    } catch (const std::exception &e) {
        return fail(err, AL_ERR_INVALID, "the answer does not match the model's tool-call format", e);
    }
    return AL_OK;
}
