/*
 * params.c: sampling parameters of an OpenAI request body. Unset fields keep
 * the engine's defaults, which are llama-server's (temperature 0.8, top_k 40,
 * top_p 0.95, min_p 0.05), so a request means the same on both servers.
 */
#include "server/http_int.h"

#include "core/limits.h"

static enum al_rc bad(const char **param, const char *name, struct al_err *err, const char *why)
{
    *param = name;
    return al_err_set(err, AL_ERR_INVALID, "'%s' %s", name, why);
}

/* Reads an optional number within [lo, hi]; *set tells whether it was there. */
static enum al_rc num(json_t *body, const char *name, double lo, double hi, double *out, bool *set,
                      const char **param, struct al_err *err)
{
    json_t *v = json_object_get(body, name);
    *set = false;
    if (!v || json_is_null(v))
        return AL_OK;
    if (!json_is_number(v))
        return bad(param, name, err, "must be a number");
    double d = json_number_value(v);
    if (d < lo || d > hi) {
        *param = name;
        return al_err_set(err, AL_ERR_INVALID, "'%s' is %g; it must be between %g and %g", name, d, lo, hi);
    }
    *out = d;
    *set = true;
    return AL_OK;
}

enum al_rc al_server_params_from_json(json_t *body, const struct al_server_limits *lim, struct al_engine_gen_params *p,
                               const char *stops[], char **grammar, const char **param, struct al_err *err)
{
    double d;
    bool set;
    enum al_rc rc;
#define NUM(name, lo, hi, field, type)                                                                               \
    do {                                                                                                           \
        if ((rc = num(body, name, lo, hi, &d, &set, param, err)))                                                  \
            return rc;                                                                                             \
        if (set)                                                                                                   \
            p->field = (type)d;                                                                                    \
    } while (0)
    NUM("temperature", 0, 2, temperature, float);
    NUM("top_p", 0, 1, top_p, float);
    NUM("min_p", 0, 1, min_p, float);
    NUM("top_k", 0, 1e6, top_k, int);
    NUM("repeat_penalty", 0, 10, repeat_penalty, float);
    NUM("frequency_penalty", -2, 2, frequency_penalty, float);
    NUM("presence_penalty", -2, 2, presence_penalty, float);
#undef NUM
    json_t *seed = json_object_get(body, "seed");
    if (json_is_integer(seed))
        p->seed = (uint32_t)json_integer_value(seed);
    else if (seed && !json_is_null(seed))
        return bad(param, "seed", err, "must be an integer");

    /* max_completion_tokens is the newer name of max_tokens. */
    const char *mt_name = json_object_get(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if ((rc = num(body, mt_name, 1, 1e12, &d, &set, param, err)))
        return rc;
    if (set) {
        if (d > lim->max_tokens) {
            *param = mt_name;
            return al_err_set(err, AL_ERR_LIMIT, "'%s' is %.0f; the server allows at most %d (limits.max_tokens)",
                              mt_name, d, lim->max_tokens);
        }
        p->max_tokens = (int)d;
    }

    json_t *ie = json_object_get(body, "ignore_eos");
    if (json_is_boolean(ie))
        p->ignore_eos = json_is_true(ie);
    json_t *cp = json_object_get(body, "cache_prompt");
    if (json_is_boolean(cp))
        p->cache_prompt = json_is_true(cp);

    json_t *stop = json_object_get(body, "stop");
    p->n_stop = 0;
    if (json_is_string(stop)) {
        stops[0] = json_string_value(stop);
        p->n_stop = 1;
    } else if (json_is_array(stop)) {
        if (json_array_size(stop) > AL_LIMIT_STOP_STRINGS) {
            *param = "stop";
            return al_err_set(err, AL_ERR_LIMIT, "'stop' has %zu strings; at most %d are allowed",
                              json_array_size(stop), AL_LIMIT_STOP_STRINGS);
        }
        size_t i;
        json_t *v;
        json_array_foreach(stop, i, v)
        {
            if (!json_is_string(v))
                return bad(param, "stop", err, "must be a string or an array of strings");
            if (json_string_length(v) == 0)
                continue;
            stops[p->n_stop++] = json_string_value(v);
        }
    } else if (stop && !json_is_null(stop)) {
        return bad(param, "stop", err, "must be a string or an array of strings");
    }
    p->stop = p->n_stop ? stops : NULL;

    json_t *g = json_object_get(body, "grammar");
    json_t *rf = json_object_get(body, "response_format");
    if (g && !json_is_null(g)) {
        if (!json_is_string(g))
            return bad(param, "grammar", err, "must be a string (GBNF)");
        if (json_string_length(g) > AL_LIMIT_GRAMMAR) {
            *param = "grammar";
            return al_err_set(err, AL_ERR_LIMIT, "'grammar' is over the cap of %u bytes", AL_LIMIT_GRAMMAR);
        }
        if (!(*grammar = strdup(json_string_value(g))))
            return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    if (rf && !json_is_null(rf)) {
        const char *type = json_string_value(json_object_get(rf, "type"));
        if (!json_is_object(rf) || !type)
            return bad(param, "response_format", err, "must be an object with a 'type'");
        if (strcmp(type, "text") != 0 && *grammar)
            return bad(param, "response_format", err, "cannot be combined with 'grammar'");
        if (strcmp(type, "json_object") == 0) {
            /* llama-server's extension: json_object with a "schema" of its
             * own, held to the same checks as json_schema's (an invalid
             * one is a 400, never a generic object instead). */
            json_t *schema = json_object_get(rf, "schema");
            if (schema && !json_is_null(schema) && !json_is_object(schema))
                return bad(param, "response_format", err, "has a 'schema' that is not an object");
            rc = al_server_json_schema_to_gbnf(json_is_object(schema) ? schema : NULL, "response_format", grammar, err);
        } else if (strcmp(type, "json_schema") == 0) {
            json_t *js = json_object_get(rf, "json_schema");
            json_t *schema = json_object_get(js, "schema");
            if (!json_is_object(schema))
                return bad(param, "response_format", err, "needs json_schema.schema, an object");
            rc = al_server_json_schema_to_gbnf(schema, "response_format", grammar, err);
        } else if (strcmp(type, "text") != 0) {
            return bad(param, "response_format", err, "type must be 'text', 'json_object' or 'json_schema'");
        }
        if (rc) {
            *param = "response_format";
            return rc;
        }
    }
    /* llama-server's extension: a top-level "json_schema", the schema
     * itself, held to response_format's checks. */
    json_t *js = json_object_get(body, "json_schema");
    if (js && !json_is_null(js)) {
        if (!json_is_object(js))
            return bad(param, "json_schema", err, "must be an object (a JSON schema)");
        if (*grammar)
            return bad(param, "json_schema", err, "cannot be combined with 'grammar' or a 'response_format' schema");
        if ((rc = al_server_json_schema_to_gbnf(js, "json_schema", grammar, err))) {
            *param = "json_schema";
            return rc;
        }
    }
    p->grammar = *grammar;
    return AL_OK;
}

void al_server_params_defaults(const struct al_server *s, const struct al_server_limits *lim,
                               struct al_engine_gen_params *p)
{
    const struct al_server_sampling *d = &s->o.sampling;
    if (d->seed_set)
        p->seed = d->seed;
    if (d->temp_set)
        p->temperature = d->temperature;
    if (d->n_predict > 0)
        p->max_tokens = d->n_predict < lim->max_tokens ? d->n_predict : lim->max_tokens;
}

enum al_rc al_server_logprobs_from_json(json_t *body, bool chat, int *top_n, const char **param, struct al_err *err)
{
    json_t *lp = json_object_get(body, "logprobs"), *tl = json_object_get(body, "top_logprobs");
    *top_n = -1;
    if (chat) {
        /* Chat: "logprobs": true, "top_logprobs": 0..20 alternatives per token. */
        if (lp && !json_is_null(lp) && !json_is_boolean(lp))
            return bad(param, "logprobs", err, "must be a boolean (the number of alternatives is 'top_logprobs')");
        bool on = json_is_true(lp);
        if (tl && !json_is_null(tl)) {
            if (!json_is_integer(tl) || json_integer_value(tl) < 0 || json_integer_value(tl) > AL_LIMIT_TOP_PROBS) {
                *param = "top_logprobs";
                return al_err_set(err, AL_ERR_INVALID, "'top_logprobs' must be an integer from 0 to %d",
                                  AL_LIMIT_TOP_PROBS);
            }
            if (!on)
                return bad(param, "top_logprobs", err, "needs 'logprobs': true");
        }
        if (on)
            *top_n = json_is_integer(tl) ? (int)json_integer_value(tl) : 0;
        return AL_OK;
    }
    /* Legacy completions: "logprobs": N alternatives per token (0: the chosen token only). */
    if (!lp || json_is_null(lp) || json_is_false(lp))
        return AL_OK;
    if (!json_is_integer(lp) || json_integer_value(lp) < 0 || json_integer_value(lp) > AL_LIMIT_TOP_PROBS) {
        *param = "logprobs";
        return al_err_set(err, AL_ERR_INVALID, "'logprobs' must be an integer from 0 to %d", AL_LIMIT_TOP_PROBS);
    }
    *top_n = (int)json_integer_value(lp);
    return AL_OK;
}

static void truncate_to(struct al_buf *b, size_t n)
{
    b->len = n;
    if (b->data)
        b->data[n] = 0;
}

/* The path of the first number out of the range of a 64-bit integer, in a
 * body parsed with every integer as a real; false when there is none. */
static bool find_big(json_t *v, struct al_buf *path)
{
    size_t mark = path->len;
    if (json_is_real(v)) {
        double d = json_real_value(v);
        return d >= 9223372036854775808.0 || d < -9223372036854775808.0;
    }
    if (json_is_object(v)) {
        const char *key;
        json_t *m;
        json_object_foreach(v, key, m)
        {
            al_buf_addf(path, "%s%s", path->len ? "." : "", key);
            if (find_big(m, path))
                return true;
            truncate_to(path, mark);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            al_buf_addf(path, "[%zu]", i);
            if (find_big(m, path))
                return true;
            truncate_to(path, mark);
        }
    }
    return false;
}

void al_server_json_body_error(const char *data, size_t len, const json_error_t *je, char *out, size_t size)
{
    if (json_error_code(je) != json_error_numeric_overflow) {
        snprintf(out, size, "the request body is not valid JSON: %s (line %d, column %d)", je->text, je->line,
                 je->column);
        return;
    }
    /* jansson says only "too big integer": find which field it was. */
    json_t *root = json_loadb(data, len, JSON_DECODE_INT_AS_REAL, NULL);
    struct al_buf path;
    al_buf_init(&path, 256);
    if (root && find_big(root, &path) && !al_buf_failed(&path))
        snprintf(out, size, "'%s' in the request body is out of range: integers must be between -2^63 and 2^63-1",
                 al_buf_str(&path));
    else
        snprintf(out, size, "a number in the request body is out of range (line %d, column %d)", je->line,
                 je->column);
    al_buf_release(&path);
    json_decref(root);
    /* jansson quotes the client's bytes ("near '...'"): the message goes
     * into JSON, which must be UTF-8, so only printable ASCII stays. */
    for (char *p = out; *p; p++)
        if (*p < 0x20 || *p >= 0x7f)
            *p = '?';
}
