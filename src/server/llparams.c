/*
 * llparams.c: request fields that llama-server reads beyond OpenAI's
 * sampling parameters (params.c): logit_bias in both of its forms,
 * post_sampling_probs, and the response_fields filter of its native
 * /completion answer.
 */
#include "server/http_int.h"

#include <errno.h>
#include <math.h>

#include "core/limits.h"

#define RESPONSE_FIELDS_MAX 64   /* paths one response_fields may name */
#define RESPONSE_FIELD_LEN  256u /* bytes of one path */
#define BIAS_TEXT_LEN       256u /* bytes of one logit_bias text key */

struct bias_list {
    struct al_engine_logit_bias *v;
    int n;
};

/* A bias: a finite number, or false (the token banned: minus infinity). */
static bool bias_value(json_t *v, float *out)
{
    if (json_is_false(v)) {
        *out = -INFINITY;
        return true;
    }
    if (!json_is_number(v) || !isfinite(json_number_value(v)) || fabs(json_number_value(v)) > 1e6)
        return false;
    *out = (float)json_number_value(v);
    return true;
}

static enum al_rc add_token(struct bias_list *l, int32_t tok, float bias, struct al_err *err)
{
    if (l->n >= AL_LIMIT_LOGIT_BIAS)
        return al_err_set(err, AL_ERR_LIMIT, "'logit_bias' biases more than %d tokens (AL_LIMIT_LOGIT_BIAS)",
                          AL_LIMIT_LOGIT_BIAS);
    l->v[l->n++] = (struct al_engine_logit_bias){tok, bias};
    return AL_OK;
}

/* One entry: a token id (a JSON integer, or a key of decimal digits) or a
 * text, whose tokens (no BOS, special tokens as text) each get the bias. */
static enum al_rc add_entry(struct bias_list *l, const struct al_engine_model *m, int n_vocab, json_t *key_int,
                            const char *key, float bias, struct al_err *err)
{
    long long id = -1;
    bool key_is_id = false;
    if (key_int) {
        id = json_integer_value(key_int);
    } else {
        /* A key of decimal digits (a minus sign allowed) names a token id, as
         * llama-server's strtol reads it; any other key is text. */
        const char *digits = key + (key[0] == '-');
        bool number = *digits && strspn(digits, "0123456789") == strlen(digits);
        errno = 0;
        id = number ? strtoll(key, NULL, 10) : -1;
        if (number && errno)
            id = -1; /* out of range: refused below */
        key_is_id = number;
    }
    if (key_int || key_is_id) {
        if (id < 0 || id >= n_vocab)
            return al_err_set(err, AL_ERR_INVALID, "'logit_bias' names token %lld; the model has %d tokens", id,
                              n_vocab);
        return add_token(l, (int32_t)id, bias, err);
    }
    size_t len = strlen(key);
    if (len == 0 || len > BIAS_TEXT_LEN)
        return al_err_set(err, AL_ERR_INVALID, "'logit_bias' has a text key of %zu bytes; it must be 1 to %u", len,
                          BIAS_TEXT_LEN);
    int32_t *toks = NULL;
    size_t nt = 0;
    enum al_rc rc = al_engine_tokenize(m, key, len, false, false, &toks, &nt, err);
    for (size_t i = 0; !rc && i < nt; i++)
        rc = add_token(l, toks[i], bias, err);
    free(toks);
    return rc;
}

enum al_rc al_server_logit_bias_from_json(json_t *body, const struct al_engine_model *m,
                                          struct al_engine_logit_bias **out, int *n_out, struct al_err *err)
{
    json_t *lb = json_object_get(body, "logit_bias");
    *out = NULL;
    *n_out = 0;
    if (!lb || json_is_null(lb))
        return AL_OK;
    size_t n = json_is_object(lb) ? json_object_size(lb) : json_is_array(lb) ? json_array_size(lb) : 0;
    if (!json_is_object(lb) && !json_is_array(lb))
        return al_err_set(err, AL_ERR_INVALID,
                          "'logit_bias' must be an object {token: bias} or an array of [token, bias] pairs");
    if (n > AL_LIMIT_LOGIT_BIAS)
        return al_err_set(err, AL_ERR_LIMIT, "'logit_bias' has %zu entries; at most %d are allowed "
                          "(AL_LIMIT_LOGIT_BIAS)", n, AL_LIMIT_LOGIT_BIAS);
    if (n == 0)
        return AL_OK;
    struct al_engine_model_info info;
    al_engine_model_info(m, &info);
    struct bias_list l = {calloc(AL_LIMIT_LOGIT_BIAS, sizeof *l.v), 0};
    if (!l.v)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    enum al_rc rc = AL_OK;
    float bias;
    if (json_is_object(lb)) {
        const char *key;
        json_t *v;
        json_object_foreach(lb, key, v)
        {
            if (!bias_value(v, &bias)) {
                rc = al_err_set(err, AL_ERR_INVALID, "'logit_bias' of '%.64s' must be a number or false", key);
                break;
            }
            if ((rc = add_entry(&l, m, info.n_vocab, NULL, key, bias, err)))
                break;
        }
    } else {
        size_t i;
        json_t *pair;
        json_array_foreach(lb, i, pair)
        {
            json_t *k = json_array_get(pair, 0);
            if (!json_is_array(pair) || json_array_size(pair) != 2 || !(json_is_integer(k) || json_is_string(k)) ||
                !bias_value(json_array_get(pair, 1), &bias)) {
                rc = al_err_set(err, AL_ERR_INVALID,
                                "'logit_bias[%zu]' must be a [token id or text, bias] pair, the bias a number or false",
                                i);
                break;
            }
            if ((rc = add_entry(&l, m, info.n_vocab, json_is_integer(k) ? k : NULL, json_string_value(k), bias,
                                err)))
                break;
        }
    }
    if (rc) {
        free(l.v);
        return rc;
    }
    *out = l.v;
    *n_out = l.n;
    return AL_OK;
}

enum al_rc al_server_post_sampling_from_json(json_t *body, bool *out, const char **param, struct al_err *err)
{
    json_t *v = json_object_get(body, "post_sampling_probs");
    *out = json_is_true(v);
    if (v && !json_is_null(v) && !json_is_boolean(v)) {
        *param = "post_sampling_probs";
        return al_err_set(err, AL_ERR_INVALID, "'post_sampling_probs' must be a boolean");
    }
    return AL_OK;
}

enum al_rc al_server_response_fields_check(json_t *fields, struct al_err *err)
{
    if (!fields || json_is_null(fields))
        return AL_OK;
    if (!json_is_array(fields))
        return al_err_set(err, AL_ERR_INVALID, "'response_fields' must be an array of field paths (\"a/b\")");
    if (json_array_size(fields) > RESPONSE_FIELDS_MAX)
        return al_err_set(err, AL_ERR_LIMIT, "'response_fields' names %zu fields; at most %d are allowed",
                          json_array_size(fields), RESPONSE_FIELDS_MAX);
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        if (!json_is_string(f) || json_string_length(f) == 0 || json_string_length(f) > RESPONSE_FIELD_LEN)
            return al_err_set(err, AL_ERR_INVALID, "'response_fields[%zu]' must be a path of 1 to %u bytes", i,
                              RESPONSE_FIELD_LEN);
    }
    return AL_OK;
}

json_t *al_server_response_fields_pick(json_t *res, json_t *fields)
{
    if (!json_is_array(fields) || json_array_size(fields) == 0)
        return json_incref(res);
    json_t *out = json_object();
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        /* "a/b": res["a"]["b"], named by the whole path; a path that
         * leads nowhere is left out, as llama-server leaves it. */
        const char *path = json_string_value(f);
        json_t *cur = res;
        char key[RESPONSE_FIELD_LEN + 1];
        for (const char *p = path; cur && p;) {
            const char *slash = strchr(p, '/');
            size_t len = slash ? (size_t)(slash - p) : strlen(p);
            snprintf(key, sizeof key, "%.*s", (int)len, p);
            cur = json_is_object(cur) ? json_object_get(cur, key) : NULL;
            p = slash ? slash + 1 : NULL;
        }
        if (out && cur && json_object_set(out, path, cur) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}
