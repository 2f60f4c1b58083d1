/*
 * routes_rag.c: retrieval over the HTTP API.
 *
 *   POST /v1/rag/{collection}/query  {"query": "...", "k": 5, "mode": "hybrid",
 *                                     "rerank": "MODEL", "rerank_candidates": N}
 *       -> {"object": "rag.query", "collection", "mode", "hits": [{rank, chunk_id, doc, page, heading,
 *           start, end, score, bm25_rank, vector_rank, bm25, cosine, text}], "timing_ms"}; with
 *           "rerank", "reranked": true, "reranker" and each hit's fused_rank and rerank_score
 *   POST /v1/chat/completions with {"airlock": {"collection": "manuals", "k": 4, "mode": "hybrid",
 *                                               "rerank": "MODEL", "rerank_candidates": N}}
 *       -> the last user message is the question; the passages go into the prompt with the template of
 *          `airlock ask`; choices[0].message.citations lists them.
 *   GET /v1/rag -> {"object": "list", "data": [{"id", "object": "rag.collection"}]}: the collections
 *       the key may query (any valid key may ask).
 *
 * "rerank" names a reranker (a model with rank pooling) that rescores the
 * first rerank_candidates fused hits, as `airlock rag query --rerank
 * --rerank-candidates` does; it serves the request as /v1/rerank's model
 * would, so the key needs the embed scope and the model in its patterns too.
 *
 * The first two need the key's scope rag:COLLECTION (or rag:*, or admin). The question
 * is embedded with the collection's own model, "name@manifest" exactly as
 * recorded at create, leased from the model manager: verified when loaded,
 * shared with every other request, counted in its budget.
 *
 * Collections are opened read-only on first use and kept open (queries on
 * one handle may run from many threads). A collection whose chunks.db was
 * replaced (removed and imported again) is opened again; the old handle is
 * kept until the server stops, as a request may still be using it.
 */
#include "server/http_int.h"

#include <sys/stat.h>

#include "core/fs.h"
#include "core/limits.h"
#include "rag/rag.h"

#define SRV_RAG_MAX 64 /* open collections (and retired handles) */

struct srv_coll {
    char name[AL_LIMIT_RAG_NAME + 1];
    struct al_rag *r;
    dev_t dev;
    ino_t ino;
};

struct al_server_rag {
    pthread_mutex_t mu;
    struct srv_coll v[SRV_RAG_MAX];
    size_t n;
    struct al_rag *retired[SRV_RAG_MAX];
    size_t n_retired;
};

void al_server_rag_free(struct al_server_rag *sr)
{
    if (!sr)
        return;
    for (size_t i = 0; i < sr->n; i++)
        al_rag_free(sr->v[i].r);
    for (size_t i = 0; i < sr->n_retired; i++)
        al_rag_free(sr->retired[i]);
    pthread_mutex_destroy(&sr->mu);
    free(sr);
}

bool al_server_rag_url_collection(const char *url, char *out, size_t size)
{
    const char *p = url + strlen("/v1/rag/");
    const char *slash = strchr(p, '/');
    if (strncmp(url, "/v1/rag/", 8) != 0 || !slash || strcmp(slash, "/query") != 0)
        return false;
    size_t n = (size_t)(slash - p);
    if (n == 0 || n >= size)
        return false;
    memcpy(out, p, n);
    out[n] = 0;
    return al_rag_name_valid(out);
}

/* The open collection called name; false with the reply queued. */
static bool collection(struct al_http_req *h, const char *name, struct al_rag **out, enum MHD_Result *res)
{
    struct al_server *s = h->srv;
    if (!s->o.home) {
        *res = al_http_reply_error(h, 404, "invalid_request_error", "collection", "collection_not_found",
                                   "this server has no document collections");
        return false;
    }
    char db[AL_LIMIT_PATH];
    struct al_err err = AL_ERR_INIT;
    struct stat st;
    if (!al_rag_name_valid(name) || al_path_fmt(db, sizeof db, NULL, "%s/rag/%s/chunks.db", s->o.home, name) ||
        stat(db, &st) != 0) {
        *res = al_http_reply_error(h, 404, "invalid_request_error", "collection", "collection_not_found",
                                   "no collection '%s'", name);
        return false;
    }
    pthread_mutex_lock(&s->mu);
    if (!s->rag && (s->rag = calloc(1, sizeof *s->rag)))
        pthread_mutex_init(&s->rag->mu, NULL);
    struct al_server_rag *sr = s->rag;
    pthread_mutex_unlock(&s->mu);
    if (!sr) {
        *res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        return false;
    }
    pthread_mutex_lock(&sr->mu);
    struct srv_coll *c = NULL;
    for (size_t i = 0; i < sr->n && !c; i++)
        if (strcmp(sr->v[i].name, name) == 0)
            c = &sr->v[i];
    enum al_rc rc = AL_OK;
    if (c && (c->dev != st.st_dev || c->ino != st.st_ino)) { /* replaced since: open it again */
        if (sr->n_retired < SRV_RAG_MAX) {
            sr->retired[sr->n_retired++] = c->r;
            c->r = NULL;
        } else {
            rc = al_err_set(&err, AL_ERR_BUSY, "collection '%s' was replaced too often; restart the server", name);
        }
    }
    if (!rc && (!c || !c->r)) {
        if (!c && sr->n >= SRV_RAG_MAX)
            rc = al_err_set(&err, AL_ERR_LIMIT, "this server keeps at most %d collections open", SRV_RAG_MAX);
        struct al_rag *r = NULL;
        if (!rc && !(rc = al_rag_open(s->o.home, name, false, &r, &err))) {
            if (!c) {
                c = &sr->v[sr->n++];
                snprintf(c->name, sizeof c->name, "%s", name);
            }
            c->r = r;
            c->dev = st.st_dev;
            c->ino = st.st_ino;
        }
    }
    if (!rc)
        *out = c->r;
    pthread_mutex_unlock(&sr->mu);
    if (rc) {
        *res = al_http_reply_rc(h, &err, "collection");
        return false;
    }
    return true;
}

/* Leases the collection's embedding model into h->embed_lease. */
static bool lease_embedder(struct al_http_req *h, struct al_rag *r, enum MHD_Result *res)
{
    struct al_rag_info info;
    struct al_err err = AL_ERR_INIT;
    char ref[AL_LIMIT_REF + 1];
    if (al_rag_info(r, &info, &err) != AL_OK) {
        *res = al_http_reply_rc(h, &err, "collection");
        return false;
    }
    snprintf(ref, sizeof ref, "%s@%s", info.embed_model, info.embed_manifest);
    /* The embedding model serves the request too: the key's patterns apply. */
    if (!al_http_model_access(h, ref, res))
        return false;
    if (al_serve_acquire(h->srv->mm, ref, &h->embed_lease, &err) != AL_OK) {
        if (err.rc == AL_ERR_NOT_FOUND)
            *res = al_http_reply_error(h, 404, "invalid_request_error", "collection", "model_not_found",
                                       "collection '%s' needs its embedding model %s, which this store does not hold",
                                       info.name, ref);
        else
            *res = al_http_reply_rc(h, &err, "collection");
        return false;
    }
    if (strcmp(al_serve_lease_digest(h->embed_lease), info.embed_digest) != 0) {
        *res = al_http_reply_error(h, 500, "server_error", "collection", "verify",
                                   "the store's %s has weights %s; collection '%s' was built with %s", ref,
                                   al_serve_lease_digest(h->embed_lease), info.name, info.embed_digest);
        return false;
    }
    if (!h->model_digest[0])
        snprintf(h->model_digest, sizeof h->model_digest, "%s", al_serve_lease_digest(h->embed_lease));
    return true;
}

/* k, mode, rerank and rerank_candidates of a query object; *rerank is the
 * reranker named (borrowed from o), NULL when none. Shapes only: the model
 * is leased by retrieve. False with the reply queued. */
static bool query_opts(struct al_http_req *h, json_t *o, int def_k, int max_k, struct al_rag_query_opts *qo,
                       const char **rerank, enum MHD_Result *res)
{
    memset(qo, 0, sizeof *qo);
    *rerank = NULL;
    json_t *jr = json_object_get(o, "rerank");
    if (jr && !json_is_null(jr)) {
        if (!json_is_string(jr) || json_string_length(jr) == 0 || json_string_length(jr) > AL_LIMIT_REF) {
            *res = al_http_reply_error(h, 400, "invalid_request_error", "rerank", NULL,
                                       "'rerank' must name a reranking model (a string of 1..%d bytes)", AL_LIMIT_REF);
            return false;
        }
        *rerank = json_string_value(jr);
    }
    json_t *jn = json_object_get(o, "rerank_candidates");
    if (jn && !json_is_null(jn)) {
        if (!*rerank) {
            *res = al_http_reply_error(h, 400, "invalid_request_error", "rerank_candidates", NULL,
                                       "'rerank_candidates' needs a reranker in 'rerank'");
            return false;
        }
        if (!json_is_integer(jn) || json_integer_value(jn) < 1 || json_integer_value(jn) > AL_LIMIT_RERANK_DOCS) {
            *res = al_http_reply_error(h, 400, "invalid_request_error", "rerank_candidates", "limit",
                                       "'rerank_candidates' must be an integer 1..%d (AL_LIMIT_RERANK_DOCS)",
                                       AL_LIMIT_RERANK_DOCS);
            return false;
        }
        qo->rerank_candidates = (int)json_integer_value(jn);
    }
    qo->k = def_k;
    json_t *jk = json_object_get(o, "k");
    if (jk && !json_is_null(jk)) {
        if (!json_is_integer(jk) || json_integer_value(jk) < 1 || json_integer_value(jk) > max_k) {
            *res = al_http_reply_error(h, 400, "invalid_request_error", "k", NULL, "'k' must be an integer 1..%d",
                                       max_k);
            return false;
        }
        qo->k = (int)json_integer_value(jk);
    }
    json_t *jm = json_object_get(o, "mode");
    if (jm && !json_is_null(jm)) {
        struct al_err err = AL_ERR_INIT;
        if (!json_is_string(jm) || al_rag_mode_parse(json_string_value(jm), &qo->mode, &err) != AL_OK) {
            *res = al_http_reply_error(h, 400, "invalid_request_error", "mode", NULL,
                                       "'mode' must be \"hybrid\", \"vector\" or \"bm25\"");
            return false;
        }
    }
    return true;
}

/* Leases the reranker ref into h->rerank_lease. It serves the request as
 * /v1/rerank's model does: the key needs the embed scope (that route's) and
 * ref in its model patterns, and ref must be a reranker. */
static bool lease_reranker(struct al_http_req *h, const char *ref, enum MHD_Result *res)
{
    if (strncmp(ref, "rag/", 4) == 0) {
        *res = al_http_reply_error(h, 404, "invalid_request_error", "rerank", "model_not_found",
                                   "'%s' is a collection snapshot, not a model", ref);
        return false;
    }
    if (!al_http_access(h, "embed", res) || !al_http_model_access(h, ref, res))
        return false;
    struct al_err err = AL_ERR_INIT;
    if (al_serve_acquire(h->srv->mm, ref, &h->rerank_lease, &err) != AL_OK) {
        if (err.rc == AL_ERR_NOT_FOUND)
            *res = al_http_reply_error(h, 404, "invalid_request_error", "rerank", "model_not_found", "%s", err.msg);
        else
            *res = al_http_reply_rc(h, &err, "rerank");
        return false;
    }
    snprintf(h->reranker, sizeof h->reranker, "%s@%s", al_serve_lease_name(h->rerank_lease),
             al_serve_lease_digest(h->rerank_lease));
    if (!al_engine_model_is_reranker(al_serve_lease_engine(h->rerank_lease))) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "rerank", "not_reranker",
                                   "model '%s' is not a reranker: its GGUF declares no rank pooling "
                                   "(<arch>.pooling_type 4, a cross-encoder with a classification head)",
                                   al_serve_lease_name(h->rerank_lease));
        return false;
    }
    return true;
}

/* Retrieves, reranked by rerank when not NULL; false with the reply queued. */
static bool retrieve(struct al_http_req *h, const char *name, const char *question, const struct al_rag_query_opts *qo,
                     const char *rerank, struct al_rag_hits *hits, enum MHD_Result *res)
{
    struct al_rag *r = NULL;
    if (!collection(h, name, &r, res))
        return false;
    if (qo->mode != AL_RAG_BM25 && !lease_embedder(h, r, res))
        return false;
    struct al_rag_query_opts q = *qo;
    struct al_server_rerank_watch w = {.h = h};
    struct al_engine_embed_ctl ctl = {.check = al_server_rerank_check, .ud = &w};
    if (rerank) {
        if (!lease_reranker(h, rerank, res))
            return false;
        q.reranker = al_serve_lease_engine(h->rerank_lease);
        q.rerank_ctl = &ctl;
    }
    struct al_err err = AL_ERR_INIT;
    struct al_engine_model *embed = h->embed_lease ? al_serve_lease_engine(h->embed_lease) : NULL;
    if (al_rag_query(r, embed, question, &q, hits, &err) != AL_OK) {
        if (w.why) {
            al_server_metrics_cancelled(h->srv->metrics);
            *res = al_http_reply_stopped(h, w.why);
        } else {
            *res = al_http_reply_rc(h, &err, "query");
        }
        return false;
    }
    return true;
}

enum MHD_Result al_server_route_rag_query(struct al_http_req *h, json_t *body)
{
    enum MHD_Result res;
    char name[AL_LIMIT_RAG_NAME + 1];
    if (!al_server_rag_url_collection(h->url, name, sizeof name))
        return al_http_reply_error(h, 404, "invalid_request_error", NULL, "unknown_url", "unknown request URL");
    json_t *jq = json_object_get(body, "query");
    if (!json_is_string(jq) || json_string_length(jq) == 0)
        return al_http_reply_error(h, 400, "invalid_request_error", "query", NULL, "'query' must be a non-empty string");
    struct al_rag_query_opts qo;
    const char *rerank = NULL;
    if (!query_opts(h, body, 5, AL_LIMIT_RAG_K, &qo, &rerank, &res))
        return res;
    if (h->srv->o.audit_text && !(h->prompt = strdup(json_string_value(jq))))
        return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    struct al_rag_hits hits;
    if (!retrieve(h, name, json_string_value(jq), &qo, rerank, &hits, &res))
        return res;
    json_t *j = al_rag_hits_json(&hits, true);
    al_rag_hits_release(&hits);
    if (!j)
        return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    json_object_set_new(j, "object", json_string("rag.query"));
    json_object_set_new(j, "collection", json_string(name));
    if (h->rerank_lease)
        json_object_set_new(j, "reranker", json_string(al_serve_lease_name(h->rerank_lease)));
    return al_http_reply_json(h, 200, j);
}

/* Tokens kept free for the answer: max_tokens when the request gives one
 * (at most half the context), else a quarter of the context. */
static int answer_room(json_t *body, int n_ctx)
{
    json_t *mt = json_object_get(body, "max_completion_tokens");
    if (!json_is_integer(mt))
        mt = json_object_get(body, "max_tokens");
    if (json_is_integer(mt) && json_integer_value(mt) > 0)
        return json_integer_value(mt) < n_ctx / 2 ? (int)json_integer_value(mt) : n_ctx / 2;
    return n_ctx / 4;
}

bool al_server_rag_chat(struct al_http_req *h, json_t *body, const struct al_engine_chat_msg *msgs, size_t n,
                        char **prompt, json_t **citations, enum MHD_Result *res)
{
    json_t *ext = json_object_get(body, "airlock");
    json_t *jc = json_object_get(ext, "collection");
    char name[AL_LIMIT_RAG_NAME + 1];
    if (!json_is_object(ext) || !json_is_string(jc) || json_string_length(jc) >= sizeof name) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "airlock", NULL,
                                   "'airlock' must be an object naming a 'collection'");
        return false;
    }
    snprintf(name, sizeof name, "%s", json_string_value(jc));
    char scope[96];
    snprintf(scope, sizeof scope, "rag:%s", name);
    if (!al_http_access(h, scope, res))
        return false;
    struct al_rag_query_opts qo;
    const char *rerank = NULL;
    if (!query_opts(h, ext, 4, 64, &qo, &rerank, res))
        return false;
    size_t at = n;
    for (size_t i = n; i-- > 0 && at == n;)
        if (strcmp(msgs[i].role, "user") == 0)
            at = i;
    if (at == n) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "messages", NULL,
                                   "retrieval needs a user message to use as the question");
        return false;
    }
    const char *question = msgs[at].content;
    struct al_rag_hits hits;
    if (!retrieve(h, name, question, &qo, rerank, &hits, res))
        return false;
    struct al_engine_model_info gi;
    al_engine_model_info(al_serve_lease_engine(h->lease), &gi);
    int room = gi.n_ctx - answer_room(body, gi.n_ctx) - 8;
    if (room > h->limits.prompt_tokens)
        room = h->limits.prompt_tokens;
    struct al_rag_prompt_opts po = {.msgs = msgs, .n_msgs = n, .question_at = at,
                                    .chat_fallback = al_serve_lease_chat_fallback(h->lease), .max_tokens = room};
    char version[64];
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_rag_prompt(al_serve_lease_engine(h->lease), &po, question, &hits, prompt, version, &err);
    if (rc) {
        al_rag_hits_release(&hits);
        if (rc == AL_ERR_LIMIT)
            *res = al_http_reply_error(h, 400, "invalid_request_error", "messages", "context_length_exceeded", "%s",
                                       err.msg);
        else
            *res = al_http_reply_rc(h, &err, "messages");
        return false;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < hits.n; i++) {
        const struct al_rag_hit *x = &hits.v[i];
        json_t *c = json_pack("{s:I, s:s, s:s, s:s, s:i, s:s, s:I, s:I, s:f, s:s, s:s, s:b}", "index",
                              (json_int_t)(i + 1), "collection", name, "chunk_id", x->chunk_id, "doc", x->doc, "page",
                              x->page, "heading", x->heading, "start", (json_int_t)x->start, "end",
                              (json_int_t)x->end, "score", x->score, "text", x->text, "template", version, "cited", 0);
        if (c && hits.reranked) {
            json_object_set_new(c, "fused_rank", json_integer(x->fused_rank));
            json_object_set_new(c, "rerank_score", json_real(x->rerank));
        }
        json_array_append_new(arr, c);
    }
    al_rag_hits_release(&hits);
    if (!arr) {
        free(*prompt);
        *prompt = NULL;
        *res = al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        return false;
    }
    *citations = arr;
    return true;
}

void al_server_rag_mark_cited(json_t *citations, const char *text)
{
    size_t n = json_array_size(citations);
    bool cited[64] = {false};
    al_rag_cited(text, n < 64 ? n : 64, cited);
    for (size_t i = 0; i < n && i < 64; i++)
        json_object_set_new(json_array_get(citations, i), "cited", json_boolean(cited[i]));
}

/* GET /v1/rag: {"object": "list", "data": [{"id": NAME, "object":
 * "rag.collection"}]}, the collections under AIRLOCK_HOME whose rag:NAME
 * scope the key has (rag:*, admin), sorted by name: what a picker (the web
 * chat's) offers. Any valid key may ask; one without rag scopes gets an empty
 * list. Names only: describing each would open its database. */
enum MHD_Result al_server_route_rag_list(struct al_http_req *h, json_t *body)
{
    (void)body;
    json_t *data = json_array();
    if (!data)
        return MHD_NO;
    if (h->srv->o.home) {
        char **names = NULL;
        size_t n = 0;
        struct al_err err = AL_ERR_INIT;
        if (al_rag_list(h->srv->o.home, &names, &n, &err)) {
            json_decref(data);
            return al_http_reply_rc(h, &err, NULL);
        }
        for (size_t i = 0; i < n; i++) {
            char scope[AL_LIMIT_RAG_NAME + 8];
            int len = snprintf(scope, sizeof scope, "rag:%s", names[i]);
            if (len > 0 && (size_t)len < sizeof scope && al_http_scope_allowed(h, scope))
                json_array_append_new(data, json_pack("{s:s, s:s}", "id", names[i], "object", "rag.collection"));
            free(names[i]);
        }
        free(names);
    }
    return al_http_reply_json(h, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}
