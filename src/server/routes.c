/*
 * routes.c: the route table (method, path, scope, limits, handler), the
 * lookup, and the labels metrics and the audit log use. A new route is a
 * line here and a handler in its routes_*.c file.
 */
#include "server/http_int.h"

#include <string.h>

/* The routes without /v1 that llama-server and many clients use are aliases:
 * the same handler, scope and limits, and the label of the /v1 route
 * (metrics, audit), so an alias is no new route to watch. */
static const struct al_http_route al_http_routes[] = {
    {"POST", "/v1/chat/completions", false, "chat", true, true, al_server_route_chat},
    {"POST", "/v1/chat/completions/input_tokens", false, "chat", true, false, al_server_route_chat_tokens},
    {"POST", "/v1/responses", false, "chat", true, true, al_server_route_responses},
    {"POST", "/v1/responses/input_tokens", false, "chat", true, false, al_server_route_responses_tokens},
    {"POST", "/v1/completions", false, "chat", true, true, al_server_route_completions},
    {"POST", "/v1/embeddings", false, "embed", true, false, al_server_route_embeddings},
    {"POST", "/v1/rerank", false, "embed", true, false, al_server_route_rerank},
    {"GET", "/v1/models", false, "models", false, false, al_server_route_models},
    {"GET", "/v1/models/", true, "models", false, false, al_server_route_model_get},
    /* aliases without /v1 (route_label gives them the /v1 label) */
    {"POST", "/chat/completions", false, "chat", true, true, al_server_route_chat},
    {"POST", "/chat/completions/input_tokens", false, "chat", true, false, al_server_route_chat_tokens},
    {"POST", "/responses", false, "chat", true, true, al_server_route_responses},
    {"POST", "/responses/input_tokens", false, "chat", true, false, al_server_route_responses_tokens},
    {"POST", "/completions", false, "chat", true, true, al_server_route_completions},
    {"POST", "/embeddings", false, "embed", true, false, al_server_route_embeddings},
    {"POST", "/rerank", false, "embed", true, false, al_server_route_rerank},
    {"POST", "/v1/reranking", false, "embed", true, false, al_server_route_rerank},
    {"POST", "/reranking", false, "embed", true, false, al_server_route_rerank},
    {"GET", "/models", false, "models", false, false, al_server_route_models},
    {"GET", "/models/", true, "models", false, false, al_server_route_model_get},
    {"POST", "/tokenize", false, "chat", true, false, al_server_route_tokenize},
    {"POST", "/detokenize", false, "chat", true, false, al_server_route_detokenize},
    /* llama-server's own routes */
    {"POST", "/apply-template", false, "chat", true, false, al_server_route_apply_template},
    {"GET", "/props", false, "chat", true, false, al_server_route_props},
    {"POST", "/completion", false, "chat", true, true, al_server_route_completion},
    {"GET", "/lora-adapters", false, "chat", false, false, al_server_route_lora_list},
    {"POST", "/lora-adapters", false, "admin", false, false, al_server_route_lora_set}, /* every request's defaults */
    {"POST", "/infill", false, "chat", true, true, al_server_route_infill},
    {"GET", "/slots", false, "admin", false, false, al_server_route_slots},
    {"POST", "/v1/rag/", true, "rag", true, false, al_server_route_rag_query}, /* scope rag:{collection} */
    {"GET", "/v1/rag", false, "", false, false, al_server_route_rag_list}, /* any valid key; lists its collections */
    {"GET", "/health", false, NULL, false, false, al_server_route_health},
    {"GET", "/metrics", false, "metrics", false, false, al_server_route_metrics},
    /* Ollama's API (ollama.c), under the same keys and scopes */
    {"POST", "/api/chat", false, "chat", true, true, al_server_route_ollama_chat},
    {"POST", "/api/generate", false, "chat", true, true, al_server_route_ollama_generate},
    {"POST", "/api/embed", false, "embed", true, false, al_server_route_ollama_embed},
    {"POST", "/api/embeddings", false, "embed", true, false, al_server_route_ollama_embeddings},
    {"GET", "/api/tags", false, "models", false, false, al_server_route_ollama_tags},
    {"POST", "/api/show", false, "models", false, false, al_server_route_ollama_show},
    {"GET", "/api/ps", false, "models", false, false, al_server_route_ollama_ps},
    {"GET", "/api/version", false, NULL, false, false, al_server_route_ollama_version},
    /* The web chat (routes_webui.c): its files need no key, its API calls do */
    {"GET", "/", false, NULL, false, false, al_server_route_webui},
    /* The store as a read-only OCI registry (routes_registry.c; --registry) */
    {"GET", "/v2/", false, "pull", false, false, al_server_route_registry},
    {"GET", "/v2/", true, "pull", false, false, al_server_route_registry},
    {"HEAD", "/v2/", false, "pull", false, false, al_server_route_registry},
    {"HEAD", "/v2/", true, "pull", false, false, al_server_route_registry},
    {"GET", "/app.js", false, NULL, false, false, al_server_route_webui},
    {"GET", "/app.css", false, NULL, false, false, al_server_route_webui},
};

#define AL_HTTP_N_ROUTES (sizeof al_http_routes / sizeof al_http_routes[0])

const struct al_http_route *al_http_find_route(const char *method, const char *url, bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < AL_HTTP_N_ROUTES; i++) {
        const struct al_http_route *r = &al_http_routes[i];
        bool match = r->prefix ? strncmp(url, r->path, strlen(r->path)) == 0 && url[strlen(r->path)]
                               : strcmp(url, r->path) == 0;
        if (!match)
            continue;
        *path_known = true;
        if (strcmp(method, r->method) == 0)
            return r;
    }
    return NULL;
}

const char *al_http_route_label(const struct al_http_route *r)
{
    if (r->prefix && strcmp(r->path, "/v2/") == 0)
        return "/v2/{name}/...";
    if (r->prefix)
        return strcmp(r->path, "/v1/rag/") == 0 ? "/v1/rag/{collection}/query" : "/v1/models/{id}";
    /* An alias is labelled as its /v1 route: the table has that route too. */
    if (strncmp(r->path, "/v1/", 4) != 0 && strncmp(r->path, "/api/", 5) != 0)
        for (size_t i = 0; i < AL_HTTP_N_ROUTES; i++)
            if (strncmp(al_http_routes[i].path, "/v1", 3) == 0 && strcmp(al_http_routes[i].path + 3, r->path) == 0)
                return al_http_routes[i].path;
    return r->path;
}

const char *al_http_model_id(const char *url)
{
    if (strncmp(url, "/v1/models/", 11) == 0)
        return url + 11;
    if (strncmp(url, "/models/", 8) == 0)
        return url + 8;
    return NULL;
}
