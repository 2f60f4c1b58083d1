/*
 * routes_misc.c: the routes that do not generate: models, embeddings,
 * tokenize, detokenize, health and metrics.
 */
#include "server/http_int.h"

#include <time.h>
#include <unistd.h>

#include "core/limits.h"
#include "core/time.h"
#include "core/utf8.h"
#include "core/version.h"
#include "server/audit_queue.h"

static json_t *list_array(const char *list)
{
    json_t *a = json_array();
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        json_array_append_new(a, json_stringn(p, len));
        p += len + (p[len] == ',');
    }
    return a;
}

/* OpenAI's model object for id, served by version v, plus llama-server's
 * "aliases" and "tags". Where the operator named them (serve --alias,
 * --tags, given as al), those; otherwise the other names a request may give
 * for it (name:tag for each tag of the version, and name@manifest) and the
 * version's tags. created: the version's creation time (Unix seconds; 0
 * when unreadable). */
static json_t *model_object(const char *id, const struct al_serve_version *v, const struct al_serve_alias *al)
{
    int64_t t = 0;
    struct al_err err = AL_ERR_INIT;
    if (al_time_parse(v->created, &t, &err) != AL_OK)
        t = 0;
    if (al && al->names[0])
        return json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "id", id, "object", "model", "created", (json_int_t)t,
                         "owned_by", "airlock", "aliases", list_array(al->names), "tags",
                         list_array(al->tags[0] ? al->tags : v->tags));
    json_t *aliases = json_array(), *tags = al && al->tags[0] ? list_array(al->tags) : json_array();
    char ref[sizeof v->name + sizeof v->tags + 2];
    for (const char *p = v->tags; *p;) {
        size_t len = strcspn(p, ",");
        if (len > 0) {
            if (!(al && al->tags[0]))
                json_array_append_new(tags, json_stringn(p, len));
            snprintf(ref, sizeof ref, "%s:%.*s", v->name, (int)len, p);
            if (strcmp(ref, id) != 0)
                json_array_append_new(aliases, json_string(ref));
        }
        p += len + (p[len] == ',');
    }
    if (strcmp(v->name, id) != 0)
        json_array_append_new(aliases, json_string(v->name));
    snprintf(ref, sizeof ref, "%s@%s", v->name, v->manifest);
    if (v->manifest[0] && strcmp(ref, id) != 0)
        json_array_append_new(aliases, json_string(ref));
    return json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "id", id, "object", "model", "created", (json_int_t)t,
                     "owned_by", "airlock", "aliases", aliases, "tags", tags);
}

enum MHD_Result al_server_route_models(struct al_http_req *h, json_t *body)
{
    struct al_serve_version *v = NULL;
    size_t n = 0;
    struct al_err err = AL_ERR_INIT;
    if (al_serve_versions(h->srv->mm, NULL, &v, &n, &err) != AL_OK)
        return al_http_reply_rc(h, &err, NULL);
    json_t *data = json_array();
    /* Collection snapshots are not models; a key sees only the models its
     * patterns admit. One entry per model: its active version. */
    for (size_t i = 0; i < n; i++) {
        if (strncmp(v[i].name, "rag/", 4) == 0 || !al_http_model_visible(h, v[i].name))
            continue;
        /* Named by the operator: listed under the first alias in sort order,
         * as llama-server does. */
        struct al_serve_alias al;
        bool named = al_serve_alias_of(h->srv->mm, v[i].name, &al);
        char first[AL_SERVE_ALIAS_NAME + 1];
        const char *id = v[i].name;
        if (named && al.names[0]) {
            snprintf(first, sizeof first, "%.*s", (int)strcspn(al.names, ","), al.names);
            id = first;
        }
        json_array_append_new(data, model_object(id, &v[i], named ? &al : NULL));
    }
    free(v);
    return al_http_reply_json(h, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

enum MHD_Result al_server_route_model_get(struct al_http_req *h, json_t *body)
{
    const char *id = al_http_model_id(h->url);
    struct al_serve_version *v = NULL;
    size_t n = 0;
    struct al_err err = AL_ERR_INIT;
    if (al_serve_versions(h->srv->mm, id, &v, &n, &err) != AL_OK)
        return al_http_reply_rc(h, &err, "model");
    struct al_serve_alias al;
    bool named = al_serve_alias_of(h->srv->mm, v->name, &al);
    json_t *j = model_object(id, v, named ? &al : NULL);
    free(v);
    return al_http_reply_json(h, 200, j);
}

static void base64(struct al_buf *b, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    al_buf_addch(b, '"');
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {tab[v >> 18 & 63], tab[v >> 12 & 63], i + 1 < n ? tab[v >> 6 & 63] : '=', i + 2 < n ? tab[v & 63] : '='};
        al_buf_add(b, q, 4);
    }
    al_buf_addch(b, '"');
}

/* The embeddings route's watch over a long request, asked by the engine
 * between batches (al_embed_ctl): the client gone, the request's time up
 * (limits.timeout_s) or the server stopping end the work, so that the model's
 * embedding lock is not held for work nobody will read. */
struct embed_watch {
    struct al_http_req *h;
    const char *why; /* "client", "timeout", "shutdown"; NULL while going on */
};

static enum al_rc embed_check(void *ud, struct al_err *err)
{
    struct embed_watch *w = ud;
    w->why = al_http_stop_reason(w->h);
    return w->why ? al_err_set(err, AL_ERR_BUSY, "embedding stopped (%s)", w->why) : AL_OK;
}

/* The response body: the vectors as floats or base64, the usage. */
static enum MHD_Result embed_reply(struct al_http_req *h, json_t *body, const float *vec, size_t n, int n_embd,
                                   bool b64, int tokens)
{
    struct al_buf b;
    al_buf_init(&b, (size_t)1 << 30);
    al_buf_addstr(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
        al_buf_addf(&b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        const float *row = vec + i * (size_t)n_embd;
        if (b64) {
            base64(&b, (const unsigned char *)row, (size_t)n_embd * sizeof *row);
        } else {
            al_buf_addch(&b, '[');
            for (int k = 0; k < n_embd; k++)
                al_buf_addf(&b, "%s%.9g", k ? "," : "", (double)row[k]);
            al_buf_addch(&b, ']');
        }
        al_buf_addch(&b, '}');
    }
    json_t *jm = json_object_get(body, "model");
    al_buf_addstr(&b, "],\"model\":");
    const char *name = json_is_string(jm) ? json_string_value(jm) : al_serve_lease_name(h->lease);
    al_server_json_escape(&b, name, strlen(name));
    al_buf_addf(&b, ",\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d}}", tokens, tokens);
    enum MHD_Result res = al_buf_failed(&b)
                              ? al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory")
                              : al_http_reply_text(h, 200, "application/json", b.data, b.len);
    al_buf_release(&b);
    return res;
}

/* The texts of "input" into *texts (borrowed from body; caller frees the
 * array); false with the refusal queued in *res. */
static bool embed_inputs(struct al_http_req *h, json_t *body, const char ***texts, size_t *n, enum MHD_Result *res)
{
    json_t *in = json_object_get(body, "input");
    *n = json_is_string(in) ? 1 : json_array_size(in);
    if (*n == 0) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "input", NULL,
                                   "'input' must be a string or a non-empty array of strings");
        return false;
    }
    if (*n > AL_LIMIT_EMBED_INPUTS) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "input", "limit",
                                   "'input' has %zu texts, over the cap of %d (AL_LIMIT_EMBED_INPUTS): "
                                   "send them in several requests",
                                   *n, AL_LIMIT_EMBED_INPUTS);
        return false;
    }
    if (!(*texts = calloc(*n, sizeof **texts))) {
        *res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        return false;
    }
    for (size_t i = 0; i < *n; i++) {
        json_t *t = json_is_string(in) ? in : json_array_get(in, i);
        if (!json_is_string(t)) {
            free(*texts);
            *texts = NULL;
            *res = al_http_reply_error(h, 400, "invalid_request_error", "input", NULL,
                                       "'input' must be strings (token arrays are not supported)");
            return false;
        }
        (*texts)[i] = json_string_value(t);
    }
    return true;
}

enum MHD_Result al_server_route_embeddings(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    const char *fmt = json_string_value(json_object_get(body, "encoding_format"));
    bool b64 = fmt && strcmp(fmt, "base64") == 0;
    if (fmt && !b64 && strcmp(fmt, "float") != 0)
        return al_http_reply_error(h, 400, "invalid_request_error", "encoding_format", NULL,
                                   "'encoding_format' must be 'float' or 'base64'");
    const char **texts = NULL;
    size_t n = 0;
    if (!embed_inputs(h, body, &texts, &n, &res))
        return res;
    if (!al_http_lease(h, body, &res)) {
        free(texts);
        return res;
    }
    struct al_engine_model *m = al_serve_lease_engine(h->lease);
    struct al_engine_model_info info;
    al_engine_model_info(m, &info);
    json_t *dim = json_object_get(body, "dimensions");
    if (dim && !json_is_null(dim) && !(json_is_integer(dim) && json_integer_value(dim) == info.n_embd)) {
        free(texts);
        return al_http_reply_error(h, 400, "invalid_request_error", "dimensions", NULL,
                                   "this model's embeddings have %d dimensions", info.n_embd);
    }
    float *vec = malloc(n * (size_t)info.n_embd * sizeof *vec);
    if (!vec) {
        free(texts);
        return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    }
    struct al_err err = AL_ERR_INIT;
    struct embed_watch w = {.h = h};
    struct al_engine_embed_ctl ctl = {.check = embed_check, .ud = &w};
    size_t tokens = 0;
    enum al_rc rc = al_engine_embed_ctl(m, texts, n, &ctl, vec, &tokens, &err);
    free(texts);
    if (rc) {
        free(vec);
        if (w.why) {
            al_server_metrics_cancelled(h->srv->metrics);
            return al_http_reply_stopped(h, w.why);
        }
        return al_http_reply_rc(h, &err, "input");
    }
    h->tokens_in = (int)tokens;
    res = embed_reply(h, body, vec, n, info.n_embd, b64, (int)tokens);
    free(vec);
    return res;
}

/* A token's text: a string when it is whole UTF-8 characters, else its
 * bytes as an array of numbers (a byte-fallback token), as llama-server does. */
static json_t *piece_json(const char *p, size_t len)
{
    size_t i = 0, n;
    while (i < len && (n = al_utf8_char_len(p + i, len - i)) > 0)
        i += n;
    if (i == len)
        return json_stringn(p, len);
    json_t *bytes = json_array();
    for (i = 0; bytes && i < len; i++)
        json_array_append_new(bytes, json_integer((unsigned char)p[i]));
    return bytes;
}

enum MHD_Result al_server_route_tokenize(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    json_t *c = json_object_get(body, "content");
    if (!json_is_string(c))
        return al_http_reply_error(h, 400, "invalid_request_error", "content", NULL, "'content' must be a string");
    if (!al_http_lease(h, body, &res))
        return res;
    bool add_special = json_is_true(json_object_get(body, "add_special"));
    bool pieces = json_is_true(json_object_get(body, "with_pieces"));
    struct al_engine_model *m = al_serve_lease_engine(h->lease);
    int32_t *toks = NULL;
    size_t n = 0;
    struct al_err err = AL_ERR_INIT;
    if (al_engine_tokenize(m, json_string_value(c), json_string_length(c), add_special, true, &toks, &n, &err))
        return al_http_reply_rc(h, &err, "content");
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!pieces) {
            json_array_append_new(arr, json_integer(toks[i]));
            continue;
        }
        /* Each token's own text, as llama-server gives it
         * (common_token_to_piece): its leading space kept (" T", not the
         * "T" that detokenizing a lone token leaves). */
        char piece[257]; /* the engine's pieces are at most 256 bytes */
        int len = al_engine_token_piece(m, toks[i], true, piece, sizeof piece);
        if (len >= 0)
            json_array_append_new(arr, json_pack("{s:i, s:o}", "id", toks[i], "piece",
                                                 piece_json(piece, (size_t)len < sizeof piece ? (size_t)len : sizeof piece - 1)));
    }
    free(toks);
    h->tokens_in = (int)n;
    return al_http_reply_json(h, 200, json_pack("{s:o}", "tokens", arr));
}

enum MHD_Result al_server_route_detokenize(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    json_t *t = json_object_get(body, "tokens");
    size_t n = json_array_size(t);
    if (!json_is_array(t) || n > AL_LIMIT_PROMPT_TOKENS)
        return al_http_reply_error(h, 400, "invalid_request_error", "tokens", NULL,
                                   "'tokens' must be an array of at most %d integers", AL_LIMIT_PROMPT_TOKENS);
    int32_t *toks = malloc((n ? n : 1) * sizeof *toks);
    if (!toks)
        return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(t, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
            free(toks);
            return al_http_reply_error(h, 400, "invalid_request_error", "tokens", NULL,
                                       "tokens[%zu] is not a token id", i);
        }
        toks[i] = (int32_t)json_integer_value(v);
    }
    if (!al_http_lease(h, body, &res)) {
        free(toks);
        return res;
    }
    char *text = NULL;
    size_t len = 0;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_engine_detokenize(al_serve_lease_engine(h->lease), toks, n, false, &text, &len, &err);
    free(toks);
    if (rc)
        return al_http_reply_rc(h, &err, "tokens");
    char *valid = al_utf8_valid_dup(text, len, &len);
    free(text);
    res = valid ? al_http_reply_json(h, 200, json_pack("{s:s%}", "content", valid, len))
                : al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    free(valid);
    return res;
}

/* llama-server's GET /props: what its clients read of it (the web UIs and
 * editor plugins: the context, the slots, the defaults of a request, the
 * chat template, the model's name). What is left out and why:
 * docs/internals/server.md. */
enum MHD_Result al_server_route_props(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    if (!al_http_lease(h, body, &res))
        return res;
    struct al_engine_model *m = al_serve_lease_engine(h->lease);
    struct al_engine_model_info info;
    al_engine_model_info(m, &info);
    struct al_engine_gen_params p = al_engine_gen_params_default();
    al_server_params_defaults(h->srv, &h->limits, &p);
    const char *tmpl = al_engine_chat_template_text(m);
    char build[128];
    snprintf(build, sizeof build, "airlock %s (llama.cpp %s)", AIRLOCK_VERSION, al_engine_llama_commit());
    json_t *params = json_pack("{s:I, s:f, s:i, s:f, s:f, s:i, s:f, s:f, s:f, s:i, s:b}", "seed",
                               (json_int_t)p.seed, "temperature", (double)p.temperature, "top_k", p.top_k, "top_p",
                               (double)p.top_p, "min_p", (double)p.min_p, "n_predict", p.max_tokens,
                               "repeat_penalty", (double)p.repeat_penalty, "presence_penalty",
                               (double)p.presence_penalty, "frequency_penalty", (double)p.frequency_penalty,
                               "repeat_last_n", p.penalty_last_n, "ignore_eos", p.ignore_eos);
    const char *name = al_serve_lease_name(h->lease);
    return al_http_reply_json(
        h, 200,
        json_pack("{s:{s:i, s:o}, s:i, s:s, s:s, s:{s:b, s:b, s:b}, s:s, s:s, s:b, s:b, s:b}",
                  "default_generation_settings", "n_ctx", info.n_ctx, "params", params, "total_slots", info.n_seq,
                  "model_alias", name, "model_path", name, "modalities", "vision", 0, "audio", 0, "video", 0,
                  "chat_template", tmpl ? tmpl : "", "build_info", build, "endpoint_slots", !h->srv->o.no_slots,
                  "endpoint_props", 0, "endpoint_metrics", 1));
}

/* 503 while loading, or while the audit cannot write and the server
 * refuses requests for it (audit_fail closed): a balancer then sends the
 * traffic elsewhere. With audit_fail open a failing audit is reported, 200. */
enum MHD_Result al_server_route_health(struct al_http_req *h, json_t *body)
{
    bool loading = al_serve_loading(h->srv->mm);
    char why[AL_ERR_MSG_MAX / 2];
    if (!al_server_audit_queue_failing(h->srv->audit_q, why, sizeof why))
        return al_http_reply_json(h, loading ? 503 : 200, json_pack("{s:s}", "status", loading ? "loading" : "ok"));
    bool closed = !h->srv->o.audit_fail_open;
    const char *status = closed ? "audit_unavailable" : loading ? "loading" : "ok";
    return al_http_reply_json(h, closed || loading ? 503 : 200,
                              json_pack("{s:s, s:s, s:s}", "status", status, "audit", closed ? "failing, requests refused"
                                                                                              : "failing, requests served",
                                        "audit_error", why));
}

static void gauge_head(struct al_buf *b, const char *name, const char *help)
{
    al_buf_addf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

struct gauges {
    struct al_buf *b;
    int pass;
    int count;
};

static void model_gauges(void *ud, const struct al_serve_loaded *lm)
{
    struct gauges *g = ud;
    if (lm->base)
        return; /* an adapter version: its base's model, counted as the base */
    struct al_engine_stats st;
    al_engine_stats(lm->engine, &st);
    const char *names[] = {"airlock_model_loaded", "airlock_queue_depth", "airlock_active_sequences",
                           "airlock_sequences", "airlock_kv_cache_used_cells", "airlock_kv_cache_total_cells",
                           "airlock_model_weight_bytes", "airlock_model_leases", "airlock_model_memory_bytes",
                           "airlock_lora_switches_total", "airlock_lora_mixed_steps_total"};
    uint64_t vals[] = {1, (uint64_t)st.n_queued, (uint64_t)st.n_active, (uint64_t)st.n_seq, st.kv_cells_used,
                       st.kv_cells_total, lm->info->size_bytes, (uint64_t)lm->leases, lm->mem_bytes,
                       st.lora_switches, st.lora_mixed_steps};
    g->count++;
    al_buf_addf(g->b, "%s{model=\"%s\",digest=\"%s\"} %" PRIu64 "\n", names[g->pass], lm->name, lm->digest,
                vals[g->pass]);
}

enum MHD_Result al_server_route_metrics(struct al_http_req *h, json_t *body)
{
    struct al_server *s = h->srv;
    struct al_buf b;
    al_buf_init(&b, 4u << 20);
    al_server_metrics_render(s->metrics, &b);
    static const char *helps[] = {
        "A model version is loaded.", "Requests waiting for a sequence.", "Sequences generating.",
        "Parallel sequences of the model.", "KV-cache cells in use (tokens).", "KV-cache cells in all.",
        "Bytes of the model's tensors.", "Requests holding the model.",
        "Bytes the model counts against the memory budget: tensors and KV cache.",
        "Decode steps that changed the LoRA adapters in the model's context (a graph rebuilt).",
        "Decode steps that held sequences of different LoRA adapter sets at once."};
    static const char *names[] = {"airlock_model_loaded", "airlock_queue_depth", "airlock_active_sequences",
                                  "airlock_sequences", "airlock_kv_cache_used_cells", "airlock_kv_cache_total_cells",
                                  "airlock_model_weight_bytes", "airlock_model_leases",
                                  "airlock_model_memory_bytes", "airlock_lora_switches_total",
                                  "airlock_lora_mixed_steps_total"};
    int loaded = 0;
    for (int pass = 0; pass < 11; pass++) {
        if (pass < 9)
            gauge_head(&b, names[pass], helps[pass]);
        else
            al_buf_addf(&b, "# HELP %s %s\n# TYPE %s counter\n", names[pass], helps[pass], names[pass]);
        struct gauges g = {&b, pass, 0};
        al_serve_foreach_loaded(s->mm, model_gauges, &g);
        loaded = g.count;
    }
    gauge_head(&b, "airlock_models_loaded", "Model versions loaded.");
    al_buf_addf(&b, "airlock_models_loaded %d\n", loaded);
    /* GPU memory, where the build has a GPU backend and the machine a device
     * (make vulkan); the CPU's memory is the node's and is not repeated here. */
    struct al_engine_device devs[8];
    int nd = al_engine_devices(devs, 8), n_gpu = 0;
    for (int i = 0; i < nd; i++)
        n_gpu += devs[i].offload;
    if (n_gpu)
        gauge_head(&b, "airlock_device_memory_bytes", "Memory of a GPU device, by state (total, free).");
    for (int i = 0; i < nd; i++)
        if (devs[i].offload)
            al_buf_addf(&b,
                        "airlock_device_memory_bytes{device=\"%s\",state=\"total\"} %" PRIu64 "\n"
                        "airlock_device_memory_bytes{device=\"%s\",state=\"free\"} %" PRIu64 "\n",
                        devs[i].name, devs[i].mem_total, devs[i].name, devs[i].mem_free);
    pthread_mutex_lock(&s->mu);
    int in_flight = s->in_flight;
    pthread_mutex_unlock(&s->mu);
    gauge_head(&b, "airlock_requests_in_flight", "Requests being handled.");
    al_buf_addf(&b, "airlock_requests_in_flight %d\n", in_flight);
    struct al_server_conns_stats cst;
    al_server_conns_stats(s->conns, &cst);
    gauge_head(&b, "airlock_connections_open", "Client connections open.");
    al_buf_addf(&b, "airlock_connections_open %d\n", cst.open);
    gauge_head(&b, "airlock_connections_receiving", "Connections waiting for (the rest of) a request.");
    al_buf_addf(&b, "airlock_connections_receiving %d\n", cst.receiving);
    al_buf_addf(&b,
                "# HELP airlock_connections_closed_total Connections closed while their request was arriving: past "
                "limits.receive_timeout_s, or the slowest to keep a reserve free.\n"
                "# TYPE airlock_connections_closed_total counter\n"
                "airlock_connections_closed_total{reason=\"receive_timeout\"} %" PRIu64 "\n"
                "airlock_connections_closed_total{reason=\"reserve\"} %" PRIu64 "\n",
                cst.timed_out, cst.shed);
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    gauge_head(&b, "airlock_resident_memory_bytes", "Resident memory of the server process.");
    al_buf_addf(&b, "airlock_resident_memory_bytes %ld\n", rss * sysconf(_SC_PAGESIZE));
    enum MHD_Result res = al_buf_failed(&b)
                              ? al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory")
                              : al_http_reply_text(h, 200, "text/plain; version=0.0.4", b.data, b.len);
    al_buf_release(&b);
    return res;
}
