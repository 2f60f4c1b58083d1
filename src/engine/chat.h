/*
 * chat.h: chat templates and tool calls through llama.cpp's own chat library
 * (common/chat.h of the pinned llama.cpp), behind a C interface that names no
 * llama.cpp or C++ type. chat_shim.cpp implements it, and is the only file of
 * airlock that includes common/chat.h.
 *
 * What llama.cpp's library does and airlock does not redo: render the GGUF's
 * Jinja chat template (or an override) with the conversation, the tools and
 * the tool results; know the tool-call formats of the model families it
 * knows (Hermes/Qwen, Llama 3.x, Mistral, ...) and generate the grammar that
 * constrains a model to them (lazily, from a trigger, for tool_choice auto;
 * from the first token for required); and parse the generated text back
 * into content, reasoning and tool calls, also while it is still growing.
 *
 * Inputs are JSON text in OpenAI's chat shapes (messages with tool_calls and
 * role "tool", tools of type "function"); outputs are JSON text too, so that
 * nothing of llama.cpp's JSON library crosses the boundary. No function
 * throws: llama.cpp's exceptions become AL_ERR_INVALID (the request's input)
 * or AL_ERR_INTERNAL with its message.
 *
 * An applied chat (struct al_engine_chat) is used by one thread at a time.
 */
#ifndef AL_ENGINE_CHAT_H
#define AL_ENGINE_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "core/err.h"

struct al_engine_model;
struct al_engine_chat; /* opaque: one conversation applied to a model's template */

/* Whether m has a Jinja template (its own or an override) that
 * al_engine_chat_apply renders. */
bool al_engine_chat_has_template(const struct al_engine_model *m);
/* Whether that template can render tools and tool calls (llama.cpp's
 * capability detection: supports_tool_calls). False without a template. */
bool al_engine_chat_supports_tools(const struct al_engine_model *m);

/* The text of m's Jinja template (its own or the override), as llama.cpp's
 * library reads it (common_chat_templates_source); NULL without one. Valid
 * while m is loaded. */
const char *al_engine_chat_template_text(const struct al_engine_model *m);

/* Whether name is one of llama.cpp's builtin chat formats ("chatml",
 * "llama3", ...: llama_chat_builtin_templates), which the builtin formatter
 * (al_engine_chat_format) applies by name. */
bool al_engine_chat_builtin(const char *name);

/* Checks that tmpl is a Jinja chat template llama.cpp's engine parses and
 * can render a one-message conversation with, without a model (the operator's
 * override, checked before any model loads). Errors: AL_ERR_LIMIT (over
 * AL_LIMIT_CHAT_TEMPLATE bytes), AL_ERR_INVALID (with llama.cpp's reason),
 * AL_ERR_NOMEM. */
enum al_rc al_engine_chat_template_check(const char *tmpl, struct al_err *err);

enum al_engine_tool_choice {
    AL_ENGINE_TOOLS_AUTO,     /* the model may call a tool */
    AL_ENGINE_TOOLS_NONE,     /* the tools are described, never called */
    AL_ENGINE_TOOLS_REQUIRED, /* the model must call one (grammar from the first token) */
};

/* Thinking in templates that offer it (llama-server's --reasoning): auto
 * leaves it to the template; off renders enable_thinking false (an empty
 * thinking block where the template writes one); on, true. */
enum al_engine_reasoning {
    AL_ENGINE_REASONING_AUTO,
    AL_ENGINE_REASONING_OFF,
    AL_ENGINE_REASONING_ON,
};

struct al_engine_chat_in {
    const char *messages;       /* JSON text: OpenAI's messages array */
    const char *tools;          /* JSON text: OpenAI's tools array; NULL or "[]": none */
    enum al_engine_tool_choice tool_choice;
    bool parallel_tool_calls;   /* more than one call in one answer */
    const char *call_id_prefix; /* ids given to parsed calls: prefix + index ("call_ab12_0") */
    bool no_generation_prompt; /* end without the opening of the assistant's turn
                                  (llama-server's add_generation_prompt: false) */
    bool continue_final;        /* end inside the last (assistant) message, which the
                                  answer continues (continue_final_message) */
    enum al_engine_reasoning reasoning; /* thinking, for templates that offer it */
};

/* Renders the conversation with m's Jinja template and prepares the grammar,
 * its triggers, the extra stop strings and the parser of the answer. m must
 * have a template (al_engine_chat_has_template). *out must be NULL; free it
 * with al_engine_chat_free, after the generation that used it was submitted.
 * Errors: AL_ERR_INVALID (messages or tools malformed, the template fails
 * on them, or tools required of a template that cannot call them),
 * AL_ERR_LIMIT (prompt over AL_LIMIT_PROMPT_BYTES), AL_ERR_NOMEM,
 * AL_ERR_INTERNAL. */
enum al_rc al_engine_chat_apply(struct al_engine_model *m, const struct al_engine_chat_in *in,
                                struct al_engine_chat **out, struct al_err *err);
void al_engine_chat_free(struct al_engine_chat *c);

/* The rendered prompt, valid while c lives. */
const char *al_engine_chat_prompt(const struct al_engine_chat *c);
/* Whether the answer is parsed for tool calls (tools given, choice not none). */
bool al_engine_chat_parses_tools(const struct al_engine_chat *c);

/* Parses the generated text so far (partial: more may come) and returns in
 * *deltas (JSON text, malloc'd, caller frees; may be NULL to skip) what is
 * new since the previous call, as an array of OpenAI chat deltas:
 *   {"content": "..."}
 *   {"reasoning_content": "..."}
 *   {"tool_calls": [{"index": i, "id": "...", "type": "function",
 *                    "function": {"name": "...", "arguments": "..."}}]}
 * (a call's first delta carries id, type and name; later ones only argument
 * text), and in *message (may be NULL to skip) the whole message so far:
 *   {"role": "assistant", "content": "..." | null, "reasoning_content"?,
 *    "tool_calls"?: [{"id", "type": "function", "function": {"name", "arguments"}}]}
 * *n_calls gets the number of tool calls parsed so far (may be NULL).
 * A final text (partial false) that does not match the format:
 * AL_ERR_INVALID; a partial one never fails on that. */
enum al_rc al_engine_chat_parse(struct al_engine_chat *c, const char *text, size_t len, bool partial,
                                char **deltas, char **message, size_t *n_calls, struct al_err *err);

#ifdef __cplusplus
}
#endif

#endif
