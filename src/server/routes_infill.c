/*
 * routes_infill.c: two more of llama-server's own routes.
 *
 * POST /infill: fill in the middle, for code editor plugins (llama.vim,
 * llama.vscode). The prompt is built from tokens as llama-server's
 * format_prompt_infill builds it (its repo-level pattern, arXiv 2409.12186):
 *
 *   [FIM_REP]myproject\n [FIM_SEP]file\n text ... [FIM_SEP]filename\n
 *   [BOS] [FIM_PRE] prefix prompt [FIM_SUF] suffix [FIM_MID]
 *
 * the extra chunks only as far as the context leaves room, the prefix cut to
 * its last 3/4 of a batch, the suffix to what is left of the batch's last
 * quarter. Prefix, suffix and extra texts are tokenized without reading
 * special tokens (text that spells "<|fim_prefix|>" stays text); "prompt" is
 * read with them, as llama-server reads it. The answer is /completion's
 * (routes_llama.c). A model without the three FIM tokens: 501, as
 * llama-server answers.
 *
 * GET /slots: one object per sequence of the default model
 * {id, n_ctx, speculative, is_processing}; 501 under serve --no-slots.
 * llama-server adds the parameters and text of a slot's last task; airlock
 * keeps no request's text once it is answered, so they are left out.
 */
#include "server/http_int.h"

#include "core/limits.h"

/* A token array that refuses to grow past AL_LIMIT_PROMPT_TOKENS. */
struct toks {
    int32_t *v;
    size_t n, cap;
    bool over, nomem;
};

static void toks_add(struct toks *t, const int32_t *v, size_t n)
{
    if (n == 0 || t->over || t->nomem) /* v may be NULL when n is 0 */
        return;
    if (t->n + n > AL_LIMIT_PROMPT_TOKENS) {
        t->over = true;
        return;
    }
    if (t->n + n > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->n + n)
            cap *= 2;
        int32_t *nv = realloc(t->v, cap * sizeof *nv);
        if (!nv) {
            t->nomem = true;
            return;
        }
        t->v = nv;
        t->cap = cap;
    }
    memcpy(t->v + t->n, v, n * sizeof *v);
    t->n += n;
}

static void toks_add1(struct toks *t, int32_t id)
{
    toks_add(t, &id, 1);
}

/* Appends the tokens of text (no BOS; special tokens read when special). */
static enum al_rc toks_text(struct al_engine_model *m, struct toks *t, const char *text, size_t len, bool special,
                            struct al_err *err)
{
    if (len == 0)
        return AL_OK;
    int32_t *v = NULL;
    size_t n = 0;
    enum al_rc rc = al_engine_tokenize(m, text, len, false, special, &v, &n, err);
    if (rc == AL_OK)
        toks_add(t, v, n);
    free(v);
    return rc;
}

/* Checks the body's shapes as llama-server does, plus airlock's caps; NULL
 * when it is fine, else the 400's message (a static string or in why). */
static const char *infill_check(json_t *body, char *why, size_t size)
{
    json_t *p = json_object_get(body, "prompt");
    if (p && !json_is_string(p))
        return "\"prompt\" must be a string";
    if (!json_is_string(json_object_get(body, "input_prefix")))
        return "\"input_prefix\" is required and must be a string";
    if (!json_is_string(json_object_get(body, "input_suffix")))
        return "\"input_suffix\" is required and must be a string";
    json_t *extra = json_object_get(body, "input_extra");
    if (extra && !json_is_null(extra) && !json_is_array(extra))
        return "\"input_extra\" must be an array of {\"filename\": string, \"text\": string}";
    if (json_array_size(extra) > AL_LIMIT_INFILL_EXTRA) {
        snprintf(why, size, "\"input_extra\" has %zu chunks, over the cap of %d (AL_LIMIT_INFILL_EXTRA)",
                 json_array_size(extra), AL_LIMIT_INFILL_EXTRA);
        return why;
    }
    size_t i;
    json_t *c;
    json_array_foreach(extra, i, c)
    {
        if (!json_is_string(json_object_get(c, "text")))
            return "extra_context chunk must contain a \"text\" field with a string value";
        json_t *f = json_object_get(c, "filename");
        if (f && !json_is_string(f))
            return "extra_context chunk's \"filename\" field must be a string";
        if (f && json_string_length(f) > AL_LIMIT_INFILL_FILENAME) {
            snprintf(why, size, "an input_extra filename of %zu bytes is over the cap of %u (AL_LIMIT_INFILL_FILENAME)",
                     json_string_length(f), AL_LIMIT_INFILL_FILENAME);
            return why;
        }
    }
    return NULL;
}

/* The prompt's tokens into *out (format_prompt_infill); n_predict is the
 * request's (or the server's default, -1 when none). */
static enum al_rc infill_tokens(struct al_engine_model *m, const struct al_engine_fim *fim, json_t *body,
                                int n_predict, struct toks *out, struct al_err *err)
{
    struct al_engine_model_info info;
    al_engine_model_info(m, &info);
    struct toks extra = {0}, pre = {0}, suf = {0}, prompt = {0};
    json_t *jp = json_object_get(body, "input_prefix"), *js = json_object_get(body, "input_suffix");
    json_t *jq = json_object_get(body, "prompt");
    enum al_rc rc = toks_text(m, &pre, json_string_value(jp), json_string_length(jp), false, err);
    if (!rc)
        rc = toks_text(m, &suf, json_string_value(js), json_string_length(js), false, err);
    if (!rc && jq)
        rc = toks_text(m, &prompt, json_string_value(jq), json_string_length(jq), true, err);
    if (!rc && fim->rep >= 0) {
        toks_add1(&extra, fim->rep);
        rc = toks_text(m, &extra, "myproject\n", 10, false, err);
    }
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(body, "input_extra"), i, c)
    {
        if (rc)
            break;
        json_t *jf = json_object_get(c, "filename"), *jt = json_object_get(c, "text");
        if (fim->sep >= 0) {
            char name[AL_LIMIT_INFILL_FILENAME + 2];
            int n = snprintf(name, sizeof name, "%s\n", jf ? json_string_value(jf) : "tmp");
            toks_add1(&extra, fim->sep);
            rc = toks_text(m, &extra, name, (size_t)n, false, err);
        } else {
            rc = toks_text(m, &extra, "\n\n--- snippet ---\n\n", 19, false, err);
        }
        if (!rc)
            rc = toks_text(m, &extra, json_string_value(jt), json_string_length(jt), false, err);
    }
    if (!rc && fim->sep >= 0) {
        toks_add1(&extra, fim->sep);
        rc = toks_text(m, &extra, "filename\n", 9, false, err);
    }
    if (!rc && (extra.over || pre.over || suf.over || prompt.over))
        rc = al_err_set(err, AL_ERR_LIMIT, "the infill prompt is over the cap of %d tokens (AL_LIMIT_PROMPT_TOKENS)",
                        AL_LIMIT_PROMPT_TOKENS);
    if (!rc && (extra.nomem || pre.nomem || suf.nomem || prompt.nomem))
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory building the infill prompt");
    if (!rc) {
        /* What fits: llama-server's ratios, in long arithmetic (no overflow). */
        long nb = info.n_batch, np = n_predict;
        long pre_take = (long)pre.n < 3 * (nb / 4) ? (long)pre.n : 3 * (nb / 4);
        long suf_room = nb / 4 - (2 + (long)prompt.n);
        long suf_take = (long)suf.n < suf_room ? (long)suf.n : suf_room > 0 ? suf_room : 0;
        long extra_room = info.n_ctx - nb - 2 * np;
        long extra_take = (long)extra.n < extra_room ? (long)extra.n : extra_room > 0 ? extra_room : 0;
        if (extra_take > 0)
            toks_add(out, extra.v + extra.n - (size_t)extra_take, (size_t)extra_take);
        if (fim->bos >= 0)
            toks_add1(out, fim->bos);
        toks_add1(out, fim->pre);
        if (pre_take > 0)
            toks_add(out, pre.v + pre.n - (size_t)pre_take, (size_t)pre_take);
        toks_add(out, prompt.v, prompt.n);
        toks_add1(out, fim->suf);
        toks_add(out, suf.v, (size_t)suf_take);
        toks_add1(out, fim->mid);
        if (out->nomem)
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory building the infill prompt");
    }
    free(extra.v);
    free(pre.v);
    free(suf.v);
    free(prompt.v);
    return rc;
}

enum MHD_Result al_server_route_infill(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    char why[160];
    const char *bad = infill_check(body, why, sizeof why);
    if (bad)
        return al_http_reply_error(h, 400, "invalid_request_error", NULL, NULL, "%s", bad);
    json_t *np = json_object_get(body, "n_predict");
    if (np && !json_is_null(np) &&
        (!json_is_integer(np) || (json_integer_value(np) < 1 && json_integer_value(np) != -1)))
        return al_http_reply_error(h, 400, "invalid_request_error", "n_predict", NULL,
                                   "'n_predict' must be -1 (as many as allowed) or a positive integer");
    if (!al_http_lease(h, body, &res))
        return res;
    struct al_engine_model *m = al_serve_lease_engine(h->lease);
    struct al_engine_fim fim;
    al_engine_fim_tokens(m, &fim);
    if (fim.pre < 0 || fim.suf < 0 || fim.mid < 0)
        return al_http_reply_error(h, 501, "not_supported_error", NULL, NULL,
                                   "Infill is not supported by this model: %s%s%s'%s' has no fill-in-the-middle tokens",
                                   fim.pre < 0 ? "prefix token is missing. " : "",
                                   fim.suf < 0 ? "suffix token is missing. " : "",
                                   fim.mid < 0 ? "middle token is missing. " : "", al_serve_lease_name(h->lease));
    /* The request as /completion's OpenAI parameters read it. */
    json_t *b2 = json_copy(body);
    if (!b2)
        return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    json_object_del(b2, "max_completion_tokens");
    json_object_del(b2, "logprobs");
    json_object_del(b2, "n");
    json_t *nprobs = json_object_get(body, "n_probs");
    if (json_is_integer(nprobs) && json_integer_value(nprobs) > 0)
        json_object_set(b2, "logprobs", nprobs);
    if (json_is_integer(np) && json_integer_value(np) > 0)
        json_object_set(b2, "max_tokens", np);
    else
        json_object_del(b2, "max_tokens");
    int n_predict = json_is_integer(np) ? (int)json_integer_value(np) : h->srv->o.sampling.n_predict;
    struct toks t = {0};
    struct al_err err = AL_ERR_INIT;
    if (infill_tokens(m, &fim, body, n_predict > 0 ? n_predict : -1, &t, &err)) {
        free(t.v);
        json_decref(b2);
        return al_http_reply_rc(h, &err, "input_prefix");
    }
    if (t.n > (size_t)h->limits.prompt_tokens) {
        free(t.v);
        json_decref(b2);
        return al_http_reply_error(h, 400, "invalid_request_error", "input_prefix", "limit",
                                   "the infill prompt has %zu tokens, over the server's cap of %d (--max-prompt-tokens)",
                                   t.n, h->limits.prompt_tokens);
    }
    struct al_server_gen_opts go = {.kind = AL_SERVER_GEN_COMPLETION, .prompt = "", .fmt = al_server_native_fmt(),
                                    .prompt_tokens = t.v, .n_prompt_tokens = t.n};
    if (al_server_read_stream(h, b2, &go, &res)) {
        if (h->srv->o.audit_text && !(h->prompt = strdup(json_string_value(json_object_get(body, "input_prefix")))))
            res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        else
            res = al_server_completion_run(h, b2, &go, h->limits.max_tokens);
    }
    free(t.v);
    json_decref(b2);
    return res;
}

enum MHD_Result al_server_route_slots(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    if (h->srv->o.no_slots)
        return al_http_reply_error(h, 501, "not_supported_error", NULL, NULL,
                                   "This server does not support slots endpoint. Start it with `--slots`");
    if (!al_http_lease(h, body, &res))
        return res;
    struct al_engine_model *m = al_serve_lease_engine(h->lease);
    struct al_engine_model_info info;
    al_engine_model_info(m, &info);
    bool busy[AL_LIMIT_SEQS];
    int n = al_engine_seq_busy(m, busy, AL_LIMIT_SEQS);
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, json_pack("{s:i, s:i, s:b, s:b}", "id", i, "n_ctx", info.n_ctx, "speculative", 0,
                                                 "is_processing", busy[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    if (!arr)
        return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    return al_http_reply_json(h, 200, arr);
}
