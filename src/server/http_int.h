/*
 * http_int.h: what the files of src/server share. Only src/server includes
 * microhttpd.h (and gnutls, in tls.c).
 *
 *   http.c         daemon, listening, the request's life, the finish path
 *   routes.c       the route table: method, path, scope, limits, handler
 *   http_access.c  the caller (key, client certificate) and its scopes
 *   routes_gen.c   /v1/chat/completions and /v1/completions; /apply-template, input_tokens
 *   routes_llama.c llama-server's native /completion
 *   routes_infill.c llama-server's /infill (fill in the middle) and /slots
 *   routes_rag.c   /v1/rag/{collection}/query, retrieval inside chat completions
 *   routes_registry.c  /v2/: the store as a read-only OCI registry (serve --registry)
 *   gen.c          a generation in flight: engine callbacks, the SSE queue
 *   gen_json.c     its JSON text: escaping, log-probabilities (gen_int.h)
 *   tools.c        tools and tool_choice in chat; Jinja templates (engine/chat.h)
 *   responses.c    /v1/responses: its input into a chat, the answer back as a response
 *   routes_misc.c  models, embeddings, tokenize, detokenize, health, metrics, props
 *   routes_rerank.c  /v1/rerank and its aliases: a reranker's scores of documents
 *   params.c       sampling parameters and response_format from a request body
 *   json_schema_gbnf.c  JSON schema to GBNF
 *   metrics.c      counters and histograms, Prometheus text
 *   framing.c      Content-Length and Transfer-Encoding: what is refused
 *   conns.c        the deadline for a request to arrive, the reserve of connections
 *   arrivals.c     requests on their way to the engine: the schedulers' admission hook
 *   tls.c          TLS files, the client certificate's subject
 *   config.c       the JSON config file (config.h)
 *   audit_queue.c  the audit writer thread (audit_queue.h)
 */
#ifndef AL_SERVER_HTTP_INT_H
#define AL_SERVER_HTTP_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <jansson.h>
#include <microhttpd.h>

#include "core/buf.h"
#include "core/hash.h"
#include "core/limits.h"
#include "engine/chat.h"
#include "engine/engine.h"
#include "server/arrivals.h"
#include "server/conns.h"
#include "server/metrics.h"
#include "server/server.h"

struct al_server {
    struct al_server_opts o;
    struct al_serve_models *mm;
    struct MHD_Daemon *d;
    int port;
    int unix_fd;
    char socket_path[4096];
    char *tls_cert, *tls_key, *tls_ca; /* PEM text */
    struct al_server_metrics *metrics;
    struct al_server_conns *conns;         /* receive deadlines and the reserve (conns.h) */
    struct al_server_arrivals *arrivals; /* generation requests on their way (arrivals.h) */
    struct al_server_audit_queue *audit_q; /* with o.audit: its writer (audit_queue.h) */
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* in_flight or n_gens reached 0 */
    int in_flight;          /* requests counted against limits.concurrent */
    int n_gens;             /* generations the engine has not finished (on_done) */
    bool draining;
    bool stopping;          /* cancel what still runs */
    atomic_uint_fast64_t next_id;
    char id_prefix[16];
    struct al_server_rag *rag;  /* open collections (routes_rag.c) */
    struct al_server_reg *reg;  /* with o.registry: the signed views made (routes_registry.c) */
    char cors[AL_SERVER_CORS_ORIGINS][AL_SERVER_CORS_ORIGIN_MAX + 1]; /* allowed origins */
    int n_cors;
    bool cors_any;              /* "*": every origin */
};

struct al_server_gen; /* gen.c */
struct al_server_rag; /* routes_rag.c */
struct al_server_reg; /* routes_registry.c */

/* One HTTP request, from its first byte to the finish path. */
struct al_http_req {
    struct al_server *srv;
    struct MHD_Connection *conn;
    char id[40];
    char method[8];
    const char *route;          /* metrics label, e.g. "/v1/completions" */
    const char *scope;          /* "chat", "embed", "admin", "rag:NAME", NULL: none needed */
    char scope_buf[96];         /* "rag:NAME" for /v1/rag/{NAME}/query */
    enum MHD_Result (*handler)(struct al_http_req *h, json_t *body);
    char *url;                  /* for /v1/models/{id} */
    struct al_buf body;
    struct al_server_limits limits; /* the server's when the request came (SIGHUP may change them) */
    double stream_interval_ms;
    double t0;                  /* monotonic seconds */
    int status;
    bool counted;               /* in srv->in_flight */
    bool close;                 /* answer with "Connection: close" and close */
    bool gone;                  /* the client went away before the response ended */
    struct al_server_conn *dl;         /* its connection's receive deadline (conns.h) */
    bool arriving;              /* in srv->arrivals: al_engine_submit uncounts it (on_submitted) */
    char caller[128];
    char model_digest[AL_DIGEST_SIZE];
    /* The LoRA adapters of the request (lora.c): an adapter version's name,
     * or its "lora" list; n_lora_use 0: the model's default scales. lora is
     * "name@digest*scale,..." for the audit log, "" when none. */
    struct al_engine_lora_use lora_use[AL_LIMIT_LORAS];
    int n_lora_use;
    char lora[AL_LIMIT_LORAS * (AL_LIMIT_NAME + 96)];
    int tokens_in, tokens_out;
    struct al_serve_lease *lease;
    struct al_serve_lease *embed_lease; /* a collection's embedding model (retrieval) */
    struct al_serve_lease *rerank_lease; /* the reranker a retrieval names ("rerank") */
    char reranker[AL_LIMIT_NAME + AL_DIGEST_SIZE + 2]; /* its "name@digest" for the audit log, "" when none */
    struct al_server_gen *gen;         /* a generation, held until the finish path */
    char *prompt;               /* for audit text capture */
    bool ollama;                /* under /api/: errors in Ollama's shape {"error": "..."} */
    bool registry;              /* under /v2/: a 401 carries a Basic WWW-Authenticate challenge */
    char reg_key[256];          /* the API key of a /v2/ request's Basic credentials */
    char cors_origin[AL_SERVER_CORS_ORIGIN_MAX + 1]; /* the request's Origin when allowed, else "" */
    bool preflight;             /* an OPTIONS preflight being answered */
};

/* The status recorded (metrics, audit) for a request whose client went away
 * before it was answered: nginx's "client closed request", not a server error. */
#define AL_HTTP_CLIENT_CLOSED 499

double al_http_now(void);

/* Replies; each returns MHD's result of queueing the response. */
enum MHD_Result al_http_reply_json(struct al_http_req *h, int status, json_t *j); /* steals j */
enum MHD_Result al_http_reply_text(struct al_http_req *h, int status, const char *ctype, const char *text, size_t len);
enum MHD_Result al_http_reply_error(struct al_http_req *h, int status, const char *type, const char *param,
                                    const char *code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Queues r (NULL: MHD_NO) with the headers every reply gets: Content-Type,
 * X-Request-Id, and Connection: close when h->close; consumes r. */
enum MHD_Result al_http_reply_response(struct al_http_req *h, int status, struct MHD_Response *r, const char *ctype);
/* Maps an al_rc through the server's one table of HTTP statuses. */
enum MHD_Result al_http_reply_rc(struct al_http_req *h, const struct al_err *err, const char *param);
/* That table's status for rc (500 for a value outside enum al_rc). */
int al_http_rc_status(enum al_rc rc);

/* The answer to a request the server stopped: why "timeout" is 504,
 * "shutdown" 503, "client" (gone) no answer at all (MHD_NO). */
enum MHD_Result al_http_reply_stopped(struct al_http_req *h, const char *why);

/* Adds the CORS headers of h's answer to r (none unless h's Origin is
 * allowed): every response (errors too, so a page can read them), and the
 * preflight's own. */
void al_http_cors_headers(struct al_http_req *h, struct MHD_Response *r);

/* True once the peer has closed its side of the connection. */
bool al_http_client_gone(struct al_http_req *h);

/* Why long work for h (an embedding, a reranking) should stop now: "client"
 * (gone), "timeout" (limits.timeout_s is up) or "shutdown" (the server is
 * stopping); NULL while it may go on. Asked between batches. */
const char *al_http_stop_reason(struct al_http_req *h);

/* Acquires the model named by body's "model" (or the default when it names
 * none or ""), after checking that the request's key may use that model. On
 * failure the error reply is queued and *res is set: return it. */
bool al_http_lease(struct al_http_req *h, json_t *body, enum MHD_Result *res);

/* routes.c */
struct al_http_route {
    const char *method, *path;
    bool prefix;
    const char *scope; /* NULL: no key needed */
    bool counted;      /* against limits.concurrent */
    bool generates;    /* counted in the server's arrivals until submitted (arrivals.h) */
    enum MHD_Result (*handler)(struct al_http_req *h, json_t *body);
};
/* The route for a method and URL, NULL when none; *path_known tells a 405
 * (the path has a route for another method) from a 404. */
const struct al_http_route *al_http_find_route(const char *method, const char *url, bool *path_known);
/* The label of metrics and audit: an alias gets its /v1 route's. */
const char *al_http_route_label(const struct al_http_route *r);

/* http_access.c: the client certificate and the route's scope, before the
 * handler runs; false with the refusal queued in *res. */
bool al_http_check_access(struct al_http_req *h, enum MHD_Result *res);

/* Runs the access check for one more scope (a collection named in the body);
 * false with the refusal (401/403) queued in *res. */
bool al_http_access(struct al_http_req *h, const char *scope, enum MHD_Result *res);

/* Checks that the request's key may use the model ref (its patterns); false
 * with the refusal (401/403) queued in *res. Every model that serves a
 * request passes here before it is acquired. */
bool al_http_model_access(struct al_http_req *h, const char *ref, enum MHD_Result *res);

/* The model id a /v1/models/{id} (or /models/{id}) URL names; NULL for
 * another URL. Borrowed from url. */
const char *al_http_model_id(const char *url);

/* Whether the request's key may use model name (for /v1/models); no reply. */
bool al_http_model_visible(struct al_http_req *h, const char *name);

/* Whether the request's key has scope (for GET /v1/rag: "rag:NAME"); no reply. */
bool al_http_scope_allowed(struct al_http_req *h, const char *scope);

/* ---- framing.c ---- */
/* One request header, as libmicrohttpd parsed it. */
struct al_http_field {
    const char *name, *value;
};
/* The Content-Length and Transfer-Encoding headers a request may carry at most. */
#define AL_HTTP_FRAMING_FIELDS 8

/* Checks how the request's body is delimited (RFC 9112 6.1-6.3), given its
 * version ("HTTP/1.1") and its Content-Length and Transfer-Encoding headers
 * (others are ignored): AL_ERR_INVALID, with the reason, for both headers at
 * once, Content-Length values that differ or are not numbers, more than one
 * Transfer-Encoding, or one other than "chunked" (or any under HTTP/1.0).
 * The server answers 400 and closes the connection. */
enum al_rc al_http_framing_check(const char *version, const struct al_http_field *fields, size_t n,
                                 struct al_err *err);

/* ---- routes ---- */
/* Refuses a prompt over limits.prompt_tokens (routes_gen.c); false with the
 * 400 queued in *res, naming param. */
bool al_server_prompt_fits(struct al_http_req *h, const char *prompt, const char *param, enum MHD_Result *res);

enum MHD_Result al_server_route_rag_query(struct al_http_req *h, json_t *body);
/* GET /v1/rag: the collections the request's key may read. */
enum MHD_Result al_server_route_rag_list(struct al_http_req *h, json_t *body);
enum MHD_Result al_server_route_chat(struct al_http_req *h, json_t *body);
enum MHD_Result al_server_route_completions(struct al_http_req *h, json_t *body);
/* llama-server's native POST /completion (its shapes, the same generation). */
enum MHD_Result al_server_route_completion(struct al_http_req *h, json_t *body);
/* The shapes of /completion's answers, for /infill (routes_infill.c). */
const struct al_server_gen_fmt *al_server_native_fmt(void);
/* llama-server's POST /infill: fill in the middle with the model's FIM tokens. */
enum MHD_Result al_server_route_infill(struct al_http_req *h, json_t *body);
/* llama-server's GET /slots: one object per sequence (serve --no-slots: 501). */
enum MHD_Result al_server_route_slots(struct al_http_req *h, json_t *body);
/* llama-server's POST /apply-template: {"prompt": the rendered chat}. */
enum MHD_Result al_server_route_apply_template(struct al_http_req *h, json_t *body);
/* llama-server's POST /v1/chat/completions/input_tokens: {"input_tokens": N}. */
enum MHD_Result al_server_route_chat_tokens(struct al_http_req *h, json_t *body);
enum MHD_Result al_server_route_embeddings(struct al_http_req *h, json_t *body);
/* POST /v1/rerank (and /rerank, /v1/reranking, /reranking): routes_rerank.c. */
enum MHD_Result al_server_route_rerank(struct al_http_req *h, json_t *body);
/* routes_rerank.c: the check (al_engine_embed_ctl) that stops a reranking on
 * the request's thread when its client went away, its timeout passed or the
 * server stops; why is then "client", "timeout" or "shutdown" (for
 * al_http_reply_stopped), NULL while it goes on. */
struct al_server_rerank_watch {
    struct al_http_req *h;
    const char *why;
};
enum al_rc al_server_rerank_check(void *ud, struct al_err *err);
enum MHD_Result al_server_route_models(struct al_http_req *h, json_t *body);
enum MHD_Result al_server_route_model_get(struct al_http_req *h, json_t *body);
enum MHD_Result al_server_route_tokenize(struct al_http_req *h, json_t *body);
enum MHD_Result al_server_route_detokenize(struct al_http_req *h, json_t *body);
enum MHD_Result al_server_route_health(struct al_http_req *h, json_t *body);
/* llama-server's GET /props (the default model's; a "model" body names another). */
enum MHD_Result al_server_route_props(struct al_http_req *h, json_t *body);

/* ---- lora.c: LoRA adapters per request (llama-server's extension) ---- */
/* After a lease: an adapter version's name asks for its adapter at scale 1. */
void al_server_lora_lease(struct al_http_req *h);
/* The body's "lora" list, if any, into h->lora_use (loading the adapters
 * into the leased model); false with the 400 queued in *res. */
bool al_server_lora_request(struct al_http_req *h, json_t *body, enum MHD_Result *res);
/* At the end of an answered request: counts it for each adapter it named
 * (/metrics). */
void al_server_lora_count(struct al_http_req *h);
enum MHD_Result al_server_route_lora_list(struct al_http_req *h, json_t *body);
enum MHD_Result al_server_route_lora_set(struct al_http_req *h, json_t *body);
enum MHD_Result al_server_route_metrics(struct al_http_req *h, json_t *body);

/* ---- ollama.c: Ollama's API (/api/...) ---- */
enum MHD_Result al_server_route_ollama_chat(struct al_http_req *h, json_t *body);
enum MHD_Result al_server_route_ollama_generate(struct al_http_req *h, json_t *body);
enum MHD_Result al_server_route_ollama_embed(struct al_http_req *h, json_t *body);
enum MHD_Result al_server_route_ollama_embeddings(struct al_http_req *h, json_t *body);
enum MHD_Result al_server_route_ollama_tags(struct al_http_req *h, json_t *body);
enum MHD_Result al_server_route_ollama_show(struct al_http_req *h, json_t *body);
enum MHD_Result al_server_route_ollama_ps(struct al_http_req *h, json_t *body);
enum MHD_Result al_server_route_ollama_version(struct al_http_req *h, json_t *body);

/* ---- routes_webui.c ---- */
/* GET /, /app.js, /app.css: the web chat's embedded files (webui/webui.h),
 * with a strict Content-Security-Policy; 404 under --no-webui. */
enum MHD_Result al_server_route_webui(struct al_http_req *h, json_t *body);

/* ---- routes_registry.c ---- */
/* GET/HEAD /v2/...: the store's pull API (--registry; 404 without). */
enum MHD_Result al_server_route_registry(struct al_http_req *h, json_t *body);
enum al_rc al_server_reg_new(struct al_server_reg **out, struct al_err *err);
void al_server_reg_free(struct al_server_reg *g);
/* The password of the request's Basic credentials (registry clients send
 * the API key so) into out; false when there are none or they are malformed. */
bool al_server_registry_basic_key(struct al_http_req *h, char *out, size_t size);

/* ---- routes_rag.c ---- */
/* The collection name of a /v1/rag/{name}/query URL into out; false when the
 * URL is not of that shape. */
bool al_server_rag_url_collection(const char *url, char *out, size_t size);
void al_server_rag_free(struct al_server_rag *sr);

/* Retrieval for a chat completion whose body carries "airlock":
 * {"collection", "k", "mode", "rerank", "rerank_candidates"}: checks the
 * rag:COLLECTION scope (and with "rerank" the embed scope), embeds the
 * last user message with the collection's model (leased from the model
 * manager) and rewrites the prompt with the numbered passages (the template
 * of `airlock ask`). On success *prompt is the new prompt (malloc'd) and
 * *citations the passages as JSON; false with the error reply queued. */
bool al_server_rag_chat(struct al_http_req *h, json_t *body, const struct al_engine_chat_msg *msgs, size_t n,
                        char **prompt, json_t **citations, enum MHD_Result *res);
/* Marks "cited": true on the citations the answer text refers to as [n]. */
void al_server_rag_mark_cited(json_t *citations, const char *text);

/* ---- gen.c ---- */
struct al_server_gen_opts;

/* The response shapes of an API other than OpenAI's (Ollama's NDJSON,
 * ollama.c). piece and done run on the engine's worker thread under the
 * generation's lock and append one streamed line each; whole runs on the
 * connection's thread and returns the non-streamed body (NULL: out of
 * memory). t0 is the request's start (al_http_now). done gets error NULL, or
 * why the generation failed or was stopped. extra is the request's
 * al_server_gen_opts.extra (borrowed; may be NULL). */
struct al_server_gen_fmt {
    const char *stream_type; /* Content-Type of a stream */
    /* tail: NULL, or JSON members ("k":v,...) for the piece's object:
     * its token ids and log-probabilities (al_server_gen_opts.token_ids) */
    void (*piece)(struct al_buf *b, const char *model, const char *text, size_t len, const char *tail);
    void (*done)(struct al_buf *b, const char *model, double t0, const struct al_engine_gen_result *res,
                 const char *error, json_t *extra, int index);
    json_t *(*whole)(const char *model, double t0, const char *text, const struct al_engine_gen_result *res,
                     json_t *extra);
    /* NULL, or the request's own fields (a JSON object, the caller's),
     * made once its parameters are read: al_server_gen_opts.extra. */
    json_t *(*extra)(const struct al_server_gen_opts *go);
};


enum al_server_gen_kind { AL_SERVER_GEN_CHAT, AL_SERVER_GEN_COMPLETION, AL_SERVER_GEN_RESPONSES };

/* routes_gen.c: a chat completion of body (OpenAI's chat shape), answered as
 * kind (chat, or the Responses API for responses.c's converted body). */
enum MHD_Result al_server_chat_run(struct al_http_req *h, json_t *body, enum al_server_gen_kind kind);

/* ---- responses.c: the Responses API over the chat path ---- */
enum MHD_Result al_server_route_responses(struct al_http_req *h, json_t *body);
/* llama-server's POST /v1/responses/input_tokens: {"input_tokens": N}. */
enum MHD_Result al_server_route_responses_tokens(struct al_http_req *h, json_t *body);
/* The response object: text (len bytes) or, with tools, parsed (the
 * engine's parsed message, borrowed; may be NULL). */
json_t *al_server_responses_object(const char *id, long long created, const char *model, const char *text, size_t len,
                                   json_t *parsed, const struct al_engine_gen_result *res);
/* Appends one server-sent event of the Responses API: `event: type`, and
 * data with "type" and "sequence_number" (*seq, incremented) added to
 * fields (stolen). */
void al_server_responses_event(struct al_buf *b, int *seq, const char *type, json_t *fields);

struct al_server_gen_opts {
    enum al_server_gen_kind kind;
    bool stream;
    bool include_usage;
    const char *model;     /* the name echoed in responses */
    const char *prompt;
    struct al_engine_gen_params params;
    int logprobs;          /* -1: none; else top alternatives per token (0..AL_LIMIT_TOP_PROBS) */
    json_t *citations;     /* retrieval: the passages, returned with the message (borrowed) */
    struct al_engine_chat *chat; /* a Jinja-rendered chat (tools.c), or NULL; al_server_gen_run takes it */
    const struct al_server_gen_fmt *fmt; /* NULL: OpenAI's shapes; else another API's (ollama.c) */
    json_t *extra;         /* handed to fmt's done and whole (borrowed; gen.c keeps a reference) */
    int n;                 /* choices (OpenAI's 'n'), 1..AL_LIMIT_CHOICES; 0: one. More than one
                              only for OpenAI's chat and completions, without tools or retrieval */
    bool token_ids;        /* with fmt: the generated token ids go to each streamed piece ("tokens",
                              with logprobs "completion_probabilities": the tail) and the whole answer */
    json_t *response_fields; /* with fmt: the whole answer keeps only these paths
                              (llama-server's response_fields; borrowed); NULL: all */
    const char *echo;      /* the prompt as the answer's "prompt" (the fmt's extra reads it), or NULL */
    const char *const *prompts; /* n_prompts prompts, one generation each: OpenAI's choices, their
                              index the prompt's, or with fmt (llama-server's batch) an array of answers,
                              streamed with their "index"; prompt is prompts[0]; NULL: one prompt */
    int n_prompts;         /* 2..AL_LIMIT_PROMPTS with prompts */
    bool progress;         /* return_progress: prompt_progress chunks in a stream (OpenAI's shapes) */
    const int32_t *prompt_tokens; /* non-NULL: the prompt as token ids (/infill), prompt unused */
    size_t n_prompt_tokens;
};

/* routes_gen.c: whether body's continue_final_message asks the answer to go
 * on from the last (assistant) message; checked with the messages. */
bool al_server_chat_continues(json_t *body);
/* routes_gen.c: reads "stream" and "stream_options" of body into go; false
 * with the 400 queued in *res. */
bool al_server_read_stream(struct al_http_req *h, json_t *body, struct al_server_gen_opts *go, enum MHD_Result *res);
/* routes_gen.c: the shared tail of the completion routes: body's sampling
 * parameters (default_max: max_tokens when it sets none), the limits, 'n',
 * then the generation. Takes go->chat. */
enum MHD_Result al_server_completion_run(struct al_http_req *h, json_t *body, struct al_server_gen_opts *go,
                                         int default_max);

/* Submits a generation and answers: streaming, a callback response fed by
 * the engine; otherwise waits and replies with the whole completion. */
enum MHD_Result al_server_gen_run(struct al_http_req *h, const struct al_server_gen_opts *go);
/* Finish path: cancels an unfinished generation, fills h's token counts and
 * returns the generated text for the audit (borrowed until al_server_gen_unref). */
const char *al_server_gen_finish(struct al_server_gen *g, struct al_http_req *h);
void al_server_gen_unref(struct al_server_gen *g);

/* Appends s as a JSON string literal (with quotes) to b. */
void al_server_json_escape(struct al_buf *b, const char *s, size_t len);

/* ---- tools.c ---- */
struct al_server_tools {
    json_t *tools;          /* the request's non-empty "tools" array (borrowed), or NULL */
    enum al_engine_tool_choice choice;
    const char *named;      /* tool_choice names this function (choice is required) */
    bool parallel;          /* parallel_tool_calls: true */
};
/* Reads and checks tools, tool_choice and parallel_tool_calls (caps:
 * AL_LIMIT_TOOLS, AL_LIMIT_TOOLS_BYTES, AL_LIMIT_TOOL_NAME); false with the
 * 400 queued in *res. Needs no model. */
bool al_server_tools_read(struct al_http_req *h, json_t *body, struct al_server_tools *t, enum MHD_Result *res);
/* With the leased model: renders body's messages and t's tools with its
 * Jinja template into *chat (the caller's, al_engine_chat_free). *chat stays
 * NULL for a model without one (the builtin formats then; tools ignored).
 * A required call the model's template cannot make: 400 "tools_unsupported".
 * False with the error reply queued in *res. */
bool al_server_tools_apply(struct al_http_req *h, json_t *body, const struct al_server_tools *t,
                           struct al_engine_chat **chat, enum MHD_Result *res);

/* ---- params.c ---- */
/* Reads the sampling parameters, stop strings, max_tokens and
 * response_format/grammar of an OpenAI request body into p. Strings stay
 * owned by body, except the grammar, written to *grammar (caller frees).
 * On error, err has the message and *param the offending field. */
enum al_rc al_server_params_from_json(json_t *body, const struct al_server_limits *lim, struct al_engine_gen_params *p,
                               const char *stops[], char **grammar, const char **param, struct al_err *err);

/* ---- llparams.c: llama-server's own request fields ---- */
/* body's "logit_bias": {token id or text: bias} (OpenAI's form, ids as
 * decimal keys) or [[token id or text, bias], ...] (llama-server's); a
 * text's tokens each get the bias, false is minus infinity (banned). *out
 * (NULL on entry, caller frees) gets *n_out entries, NULL when none. At most
 * AL_LIMIT_LOGIT_BIAS entries and tokens (AL_ERR_LIMIT); an id outside the
 * vocabulary or a malformed entry: AL_ERR_INVALID. */
enum al_rc al_server_logit_bias_from_json(json_t *body, const struct al_engine_model *m,
                                          struct al_engine_logit_bias **out, int *n_out, struct al_err *err);
/* body's "post_sampling_probs" (llama-server's): a boolean, absent or null
 * false; with log-probabilities asked for, they are the probabilities after
 * the sampler chain (gen_json.c). *param names the field on error. */
enum al_rc al_server_post_sampling_from_json(json_t *body, bool *out, const char **param, struct al_err *err);
/* "response_fields": null, or an array of at most 64 paths ("a/b"). */
enum al_rc al_server_response_fields_check(json_t *fields, struct al_err *err);
/* The fields of res that fields names, each under its whole path (a new
 * reference); res itself (a new reference) when fields is empty or not an
 * array; NULL when out of memory. */
json_t *al_server_response_fields_pick(json_t *res, json_t *fields);

/* The server's sampling defaults (al_server_sampling: serve --seed, --temp,
 * --n-predict) into p, before the request's own fields are read over them:
 * max_tokens only when n_predict is set, capped by lim->max_tokens. */
void al_server_params_defaults(const struct al_server *s, const struct al_server_limits *lim,
                               struct al_engine_gen_params *p);

/* The message for a request body jansson could not parse (je from
 * json_loadb of data): where the syntax broke, or, for a number out of range,
 * which field holds it ("'seed' in the request body is out of range ..."). */
void al_server_json_body_error(const char *data, size_t len, const json_error_t *je, char *out, size_t size);

/* Reads the request's log-probability fields: for chat "logprobs": true and
 * "top_logprobs": N, for completions "logprobs": N. *top_n is -1 when none
 * are asked for, else the number of alternatives per token (0..20). */
enum al_rc al_server_logprobs_from_json(json_t *body, bool chat, int *top_n, const char **param, struct al_err *err);

/* ---- json_schema_gbnf.c ---- */
/* Converts a JSON schema into a GBNF grammar (root rule "root"); schema NULL
 * gives a grammar of any JSON object. field names the request field it came
 * in ("response_format"), for the messages. *out must be NULL; the caller
 * frees it. Errors: AL_ERR_INVALID (unsupported or malformed schema), AL_ERR_LIMIT. */
enum al_rc al_server_json_schema_to_gbnf(json_t *schema, const char *field, char **out, struct al_err *err);

/* ---- tls.c ---- */
/* Reads a PEM file into *out (caller frees); capped at 1 MiB. */
enum al_rc al_server_tls_read_pem(const char *path, char **out, struct al_err *err);
/* The verified client certificate's subject DN into out; false when the
 * client presented none or it does not verify. */
bool al_server_tls_client_subject(struct MHD_Connection *c, char *out, size_t size);

#endif
