/*
 * routes_rerank.c: POST /v1/rerank (and llama-server's aliases /rerank,
 * /v1/reranking, /reranking): a reranking model's score for each document
 * against a query, in the shapes llama-server, Jina and Cohere use.
 *
 * Request: {"model", "query": string, "documents": [string | {"text":
 * string}], "top_n", "return_text", "return_documents"}; TEI's "texts" in
 * place of "documents" gets TEI's answer, a bare array with "score", as
 * llama-server gives. Response: {"model", "object": "list", "usage":
 * {"prompt_tokens", "total_tokens"}, "results": [{"index",
 * "relevance_score"}]} sorted by score, highest first, ties by index; the
 * first top_n. return_text adds "text" and return_documents Jina's and
 * Cohere's "document": {"text"} to each result.
 *
 * Caps: AL_LIMIT_RERANK_DOCS documents, AL_LIMIT_RERANK_DOC_BYTES for the
 * query and each document, and each pair within the model's context (the
 * engine's AL_ERR_LIMIT). A model that is not a reranker is a 400 before any
 * work. Scope: embed (serve --help; docs/internals/server.md says why).
 */
#include "server/http_int.h"

#include "core/limits.h"

struct ranked {
    size_t index;
    float score;
};

static int by_score(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Stops the scoring when the client goes, the time is up or the server
 * stops (the rag routes' reranking too: http_int.h). */
enum al_rc al_server_rerank_check(void *ud, struct al_err *err)
{
    struct al_server_rerank_watch *w = ud;
    w->why = al_http_stop_reason(w->h);
    return w->why ? al_err_set(err, AL_ERR_BUSY, "reranking stopped (%s)", w->why) : AL_OK;
}

/* The documents of the request into *docs (borrowed from body; the caller
 * frees the array); false with the refusal queued in *res. */
static bool rerank_docs(struct al_http_req *h, json_t *docs_j, const char *param, const char ***docs, size_t *n,
                        enum MHD_Result *res)
{
    *n = json_array_size(docs_j);
    if (*n == 0) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", param, NULL,
                                   "'%s' must be a non-empty array of strings", param);
        return false;
    }
    if (*n > AL_LIMIT_RERANK_DOCS) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", param, "limit",
                                   "'%s' has %zu documents, over the cap of %d (AL_LIMIT_RERANK_DOCS)", param, *n,
                                   AL_LIMIT_RERANK_DOCS);
        return false;
    }
    if (!(*docs = calloc(*n, sizeof **docs))) {
        *res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        return false;
    }
    for (size_t i = 0; i < *n; i++) {
        json_t *d = json_array_get(docs_j, i);
        if (json_is_object(d))
            d = json_object_get(d, "text"); /* Cohere's and Jina's {"text": ...} */
        if (!json_is_string(d)) {
            *res = al_http_reply_error(h, 400, "invalid_request_error", param, NULL,
                                       "'%s' item %zu must be a string (or an object with a string 'text')",
                                       param, i);
            goto fail;
        }
        if (json_string_length(d) > AL_LIMIT_RERANK_DOC_BYTES) {
            *res = al_http_reply_error(h, 400, "invalid_request_error", param, "limit",
                                       "'%s' item %zu has %zu bytes, over the cap of %u (AL_LIMIT_RERANK_DOC_BYTES)",
                                       param, i, json_string_length(d), AL_LIMIT_RERANK_DOC_BYTES);
            goto fail;
        }
        (*docs)[i] = json_string_value(d);
    }
    return true;
fail:
    free(*docs);
    *docs = NULL;
    return false;
}

static enum MHD_Result rerank_reply(struct al_http_req *h, json_t *body, const char *const *docs,
                                    struct ranked *r, size_t n, size_t top_n, bool tei, size_t tokens)
{
    bool text = json_is_true(json_object_get(body, "return_text"));
    bool document = json_is_true(json_object_get(body, "return_documents"));
    qsort(r, n, sizeof *r, by_score);
    json_t *results = json_array();
    for (size_t i = 0; i < n && i < top_n; i++) {
        json_t *e = json_pack("{s:I, s:f}", "index", (json_int_t)r[i].index, tei ? "score" : "relevance_score",
                              (double)r[i].score);
        if (text)
            json_object_set_new(e, "text", json_string(docs[r[i].index]));
        if (document && !tei)
            json_object_set_new(e, "document", json_pack("{s:s}", "text", docs[r[i].index]));
        json_array_append_new(results, e);
    }
    if (tei)
        return al_http_reply_json(h, 200, results);
    json_t *jm = json_object_get(body, "model");
    const char *name = json_is_string(jm) ? json_string_value(jm) : al_serve_lease_name(h->lease);
    return al_http_reply_json(h, 200,
                              json_pack("{s:s, s:s, s:{s:I, s:I}, s:o}", "model", name, "object", "list", "usage",
                                        "prompt_tokens", (json_int_t)tokens, "total_tokens", (json_int_t)tokens,
                                        "results", results));
}

enum MHD_Result al_server_route_rerank(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    json_t *q = json_object_get(body, "query");
    if (!json_is_string(q))
        return al_http_reply_error(h, 400, "invalid_request_error", "query", NULL, "'query' must be a string");
    if (json_string_length(q) > AL_LIMIT_RERANK_DOC_BYTES)
        return al_http_reply_error(h, 400, "invalid_request_error", "query", "limit",
                                   "'query' has %zu bytes, over the cap of %u (AL_LIMIT_RERANK_DOC_BYTES)",
                                   json_string_length(q), AL_LIMIT_RERANK_DOC_BYTES);
    bool tei = !json_object_get(body, "documents") && json_object_get(body, "texts");
    const char *param = tei ? "texts" : "documents";
    json_t *tn = json_object_get(body, "top_n");
    if (tn && !json_is_null(tn) && !(json_is_integer(tn) && json_integer_value(tn) > 0))
        return al_http_reply_error(h, 400, "invalid_request_error", "top_n", NULL,
                                   "'top_n' must be a positive integer");
    const char **docs = NULL;
    size_t n = 0;
    if (!rerank_docs(h, json_object_get(body, param), param, &docs, &n, &res))
        return res;
    size_t top_n = json_is_integer(tn) ? (size_t)json_integer_value(tn) : n;
    if (!al_http_lease(h, body, &res)) {
        free(docs);
        return res;
    }
    struct al_engine_model *m = al_serve_lease_engine(h->lease);
    if (!al_engine_model_is_reranker(m)) {
        free(docs);
        return al_http_reply_error(h, 400, "invalid_request_error", "model", "not_reranker",
                                   "model '%s' is not a reranker: its GGUF declares no rank pooling "
                                   "(<arch>.pooling_type 4, a cross-encoder with a classification head)",
                                   al_serve_lease_name(h->lease));
    }
    float *scores = malloc(n * sizeof *scores);
    struct ranked *r = malloc(n * sizeof *r);
    if (!scores || !r) {
        free(docs);
        free(scores);
        free(r);
        return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    }
    struct al_err err = AL_ERR_INIT;
    struct al_server_rerank_watch w = {.h = h};
    struct al_engine_embed_ctl ctl = {.check = al_server_rerank_check, .ud = &w};
    size_t tokens = 0;
    enum al_rc rc = al_engine_rerank(m, json_string_value(q), docs, n, &ctl, scores, &tokens, &err);
    if (rc) {
        free(docs);
        free(scores);
        free(r);
        if (w.why) {
            al_server_metrics_cancelled(h->srv->metrics);
            return al_http_reply_stopped(h, w.why);
        }
        return al_http_reply_rc(h, &err, param);
    }
    for (size_t i = 0; i < n; i++)
        r[i] = (struct ranked){i, scores[i]};
    h->tokens_in = tokens > INT32_MAX ? INT32_MAX : (int)tokens;
    res = rerank_reply(h, body, docs, r, n, top_n, tei, tokens);
    free(docs);
    free(scores);
    free(r);
    return res;
}
