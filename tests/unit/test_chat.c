/*
 * Unit tests of engine/chat.h (chat_shim.cpp over llama.cpp's common chat
 * library) on the real fixture model, tests/fixtures/stories260K.gguf, which
 * has no chat template of its own: it gets Qwen2.5's tool-capable template
 * from the pinned llama.cpp's models/templates ($AL_VOCAB_DIR/templates) as
 * an override, the way a bundle's template file reaches the engine.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "testutil.h"
#include "core/err.h"
#include "engine/chat.h"
#include "engine/engine.h"

#define FIXTURE_DIGEST "sha256:270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"

static const char *MSGS = "[{\"role\":\"user\",\"content\":\"What is the weather in Paris?\"}]";
static const char *TOOLS =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\",\"enum\":[\"Paris\",\"London\"]},\"days\":{\"type\":\"integer\","
    "\"minimum\":1,\"maximum\":7}},\"required\":[\"city\",\"days\"]}}}]";

static enum al_rc load(const char *tmpl, struct al_engine_model **m, struct al_err *err)
{
    struct al_engine_model_params mp = al_engine_model_params_default();
    mp.threads = 2;
    mp.n_ctx = 2048; /* the template's tool prompt is longer than the fixture's 512 */
    mp.chat_template = tmpl;
    return al_engine_model_load(tu_fixture("stories260K.gguf"), FIXTURE_DIGEST, &mp, m, err);
}

static char *qwen_template(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/templates/Qwen-Qwen2.5-7B-Instruct.jinja", tu_env("AL_VOCAB_DIR"));
    size_t len = 0;
    return tu_read_file(path, &len);
}

/* No template in the GGUF: none here either (the builtin formats serve it). */
static void test_no_template(void **state)
{
    struct al_engine_model *m = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(load(NULL, &m, &err), AL_OK);
    assert_false(al_engine_chat_has_template(m));
    assert_false(al_engine_chat_supports_tools(m));
    struct al_engine_chat *c = NULL;
    struct al_engine_chat_in in = {.messages = MSGS};
    assert_int_equal(al_engine_chat_apply(m, &in, &c, &err), AL_ERR_USAGE);
    assert_null(c);
    al_engine_model_free(m);
}

/* An override that does not parse fails the load. */
static void test_bad_override(void **state)
{
    struct al_engine_model *m = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(load("{% for x in %}", &m, &err), AL_ERR_INVALID);
    assert_null(m);
    assert_non_null(strstr(err.msg, "chat template"));
}

/* A template without tools: rendered; a required call refused, auto plain. */
static void test_template_without_tools(void **state)
{
    struct al_engine_model *m = NULL;
    struct al_err err = AL_ERR_INIT;
    const char *t = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}<|assistant|>";
    assert_int_equal(load(t, &m, &err), AL_OK);
    assert_true(al_engine_chat_has_template(m));
    assert_false(al_engine_chat_supports_tools(m));
    struct al_engine_chat *c = NULL;
    struct al_engine_chat_in in = {.messages = MSGS, .tools = TOOLS, .tool_choice = AL_ENGINE_TOOLS_REQUIRED};
    assert_int_equal(al_engine_chat_apply(m, &in, &c, &err), AL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "cannot call tools"));
    in.tool_choice = AL_ENGINE_TOOLS_AUTO;
    al_err_clear(&err);
    assert_int_equal(al_engine_chat_apply(m, &in, &c, &err), AL_OK);
    assert_string_equal(al_engine_chat_prompt(c), "<|user|>What is the weather in Paris?\n<|assistant|>");
    assert_false(al_engine_chat_parses_tools(c));
    al_engine_chat_free(c);
    al_engine_model_free(m);
}

/* Malformed messages and tools: AL_ERR_INVALID, nothing applied. */
static void test_malformed(void **state)
{
    char *tmpl = qwen_template();
    struct al_engine_model *m = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(load(tmpl, &m, &err), AL_OK);
    struct al_engine_chat *c = NULL;
    struct al_engine_chat_in in = {.messages = "[{\"content\":\"no role\"}]"};
    assert_int_equal(al_engine_chat_apply(m, &in, &c, &err), AL_ERR_INVALID);
    assert_null(c);
    in.messages = "not json";
    al_err_clear(&err);
    assert_int_equal(al_engine_chat_apply(m, &in, &c, &err), AL_ERR_INVALID);
    in.messages = MSGS;
    in.tools = "[{\"type\":\"function\"}]";
    al_err_clear(&err);
    assert_int_equal(al_engine_chat_apply(m, &in, &c, &err), AL_ERR_INVALID);
    assert_null(c);
    al_engine_model_free(m);
    free(tmpl);
}

/* A required call: the grammar makes even this story model call get_weather
 * with arguments valid against the schema; the streamed deltas add up to the
 * whole call. */
static void test_required_call(void **state)
{
    char *tmpl = qwen_template();
    struct al_engine_model *m = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(load(tmpl, &m, &err), AL_OK);
    assert_true(al_engine_chat_supports_tools(m));
    struct al_engine_chat *c = NULL;
    struct al_engine_chat_in in = {.messages = MSGS, .tools = TOOLS, .tool_choice = AL_ENGINE_TOOLS_REQUIRED,
                                   .call_id_prefix = "call_t_"};
    assert_int_equal(al_engine_chat_apply(m, &in, &c, &err), AL_OK);
    assert_true(al_engine_chat_parses_tools(c));
    assert_non_null(strstr(al_engine_chat_prompt(c), "get_weather"));

    struct al_engine_gen_params gp = al_engine_gen_params_default();
    gp.temperature = 0;
    gp.max_tokens = 120;
    gp.chat = c;
    char *text = NULL;
    struct al_engine_gen_result res;
    if (al_engine_generate(m, al_engine_chat_prompt(c), &gp, &text, &res, &err))
        fail_msg("generate: %s", err.msg);
    assert_int_equal(res.finish, AL_ENGINE_FINISH_STOP);

    /* Streamed: every prefix, as the server parses it; the argument deltas
     * add up to the whole call's arguments. */
    static char acc[8192];
    acc[0] = '\0';
    size_t len = strlen(text);
    for (size_t i = 1; i <= len; i++) {
        char *deltas = NULL;
        assert_int_equal(al_engine_chat_parse(c, text, i, i < len, &deltas, NULL, NULL, &err), AL_OK);
        json_error_t je;
        json_t *arr = json_loads(deltas, 0, &je);
        assert_non_null(arr);
        size_t k;
        json_t *d;
        json_array_foreach(arr, k, d)
        {
            json_t *tc = json_array_get(json_object_get(d, "tool_calls"), 0);
            const char *a = json_string_value(json_object_get(json_object_get(tc, "function"), "arguments"));
            if (a)
                strncat(acc, a, sizeof acc - strlen(acc) - 1);
        }
        json_decref(arr);
        free(deltas);
    }
    char *msg = NULL;
    size_t n_calls = 0;
    assert_int_equal(al_engine_chat_parse(c, text, len, false, NULL, &msg, &n_calls, &err), AL_OK);
    assert_int_equal(n_calls, 1);
    json_error_t je;
    json_t *jm = json_loads(msg, 0, &je);
    json_t *call = json_array_get(json_object_get(jm, "tool_calls"), 0);
    assert_string_equal(json_string_value(json_object_get(call, "id")), "call_t_0");
    json_t *fn = json_object_get(call, "function");
    assert_string_equal(json_string_value(json_object_get(fn, "name")), "get_weather");
    const char *args = json_string_value(json_object_get(fn, "arguments"));
    json_t *ja = json_loads(args, 0, &je);
    assert_non_null(ja);
    const char *city = json_string_value(json_object_get(ja, "city"));
    assert_non_null(city);
    assert_true(strcmp(city, "Paris") == 0 || strcmp(city, "London") == 0);
    json_int_t days = json_integer_value(json_object_get(ja, "days"));
    assert_true(json_is_integer(json_object_get(ja, "days")) && days >= 1 && days <= 7);
    assert_int_equal(json_object_size(ja), 2);
    assert_string_equal(acc, args);
    json_decref(ja);
    json_decref(jm);
    free(msg);
    free(text);
    al_engine_chat_free(c);
    al_engine_model_free(m);
    free(tmpl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_template),
        cmocka_unit_test(test_bad_override),
        cmocka_unit_test(test_template_without_tools),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_required_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
