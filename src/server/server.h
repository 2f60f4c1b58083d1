/*
 * server.h: the HTTP front end of `airlock serve`: an OpenAI-compatible API
 * over libmicrohttpd. It routes, checks access, parses and checks request
 * bodies, streams tokens as server-sent events, counts metrics and writes
 * one audit record per request; the models come from the model manager
 * (serve/models.h) and the inference from the engine.
 *
 * Routes: POST /v1/chat/completions, /v1/completions, /v1/embeddings,
 * /tokenize, /detokenize, /v1/rag/{collection}/query; GET /v1/models,
 * /v1/models/{id}, /health, /metrics; the same without /v1 (llama-server's
 * paths) as aliases; with registry, GET and HEAD under /v2/ (the store as a
 * read-only OCI registry). Chat completions retrieve from a
 * collection when the body carries {"airlock": {"collection": ..}}.
 * Errors have OpenAI's shape: {"error":{"message","type","param","code"}}.
 *
 * Connections: one thread per connection (a generating request blocks its
 * thread while the engine streams into a per-request queue). A client that
 * goes away cancels its request in the engine. A request must arrive whole
 * within limits.receive_timeout_s, and a quarter of the connections are kept
 * free for new clients by closing the slowest senders first (conns.h).
 * Requests whose body could be delimited two ways are refused (framing.c).
 *
 * Listening: a TCP address (loopback unless listen_any) or a Unix socket
 * whose file mode decides who may connect; optional TLS, and with a client CA
 * mutual TLS, in which case the certificate's subject is the caller.
 */
#ifndef AL_SERVER_SERVER_H
#define AL_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "serve/models.h"

struct al_server;
struct al_access; /* src/access: API keys; NULL = no keys needed */
struct al_audit;  /* src/audit: audit log; NULL = none */
struct al_reg_view; /* src/registry: a version as a registry serves it */

#define AL_SERVER_DEFAULT_PORT 8741

/* CORS: origins a server allows at most, and the length of one. */
#define AL_SERVER_CORS_ORIGINS    32
#define AL_SERVER_CORS_ORIGIN_MAX 255

/* The longest receive timeout a config may ask for, in seconds. */
#define AL_SERVER_RECEIVE_TIMEOUT_MAX 3600

struct al_server_limits {
    size_t body_bytes;      /* a request body */
    int prompt_tokens;      /* a prompt after templating */
    int max_tokens;         /* the most a request may ask for; also the default */
    int concurrent;         /* requests being handled at once, beyond: 503 */
    double timeout_s;       /* time one request may take; <= 0: none */
    double receive_timeout_s; /* time for a request's headers and body to arrive, from the
                                 accept (or the previous response); > 0 */
};

/* Sampling defaults for the requests that do not set the field themselves
 * (serve --seed, --temp, --n-predict; llama-server's flags of those names):
 * a fixed seed makes requests without one reproducible. */
/* Thinking in chat templates that offer it (llama-server's --reasoning):
 * auto is the template's default, off renders enable_thinking false. */
enum al_server_reasoning {
    AL_SERVER_REASONING_AUTO,
    AL_SERVER_REASONING_OFF,
    AL_SERVER_REASONING_ON,
};

struct al_server_sampling {
    bool seed_set;
    uint32_t seed;
    bool temp_set;
    float temperature;      /* 0..2 */
    int n_predict;          /* > 0: max_tokens of a request that gives none (capped by
                               limits.max_tokens); <= 0: chat limits.max_tokens, completions 16 */
};

struct al_server_opts {
    const char *host;        /* numeric address or name; default 127.0.0.1 */
    int port;                /* 0: any free port (see al_server_port) */
    bool listen_any;         /* allow a non-loopback address */
    const char *socket_path; /* a Unix socket instead of TCP */
    int socket_mode;         /* its file mode, e.g. 0660 */
    const char *tls_cert;    /* PEM files; both or neither */
    const char *tls_key;
    const char *tls_client_ca; /* mutual TLS: clients need a certificate from this CA */
    struct al_server_limits limits;
    struct al_access *access;
    struct al_audit *audit;
    bool audit_text;         /* give the audit module prompt and response text */
    bool audit_fail_open;    /* while the audit cannot write: serve anyway (true) or refuse
                                every request but /health with 503 (false, the default) */
    double stream_interval_ms; /* streamed events go out at most this often (the first at
                                  once); 0: every token as it comes. Default 5 */
    const char *home;        /* AIRLOCK_HOME: document collections (rag/); NULL: no retrieval */
    bool no_webui;           /* no web chat at / (404); served by default */
    enum al_server_reasoning reasoning; /* thinking in chat templates (serve --reasoning) */
    bool no_slots;           /* GET /slots answers 501 (llama-server's --no-slots); served by default */
    bool registry;           /* serve the store (home) read-only under /v2/, the OCI distribution
                                API's pull half (routes_registry.c); off: /v2/ is 404 */
    /* With registry: makes the signed view of the stored version ref
     * ("name@sha256:..."), as `airlock push --sign` would put it in a
     * registry (bundle/push.c); called once per version, one call at a time,
     * on a connection's thread; out is the server's after AL_OK. NULL: the
     * stored manifests are served unsigned. */
    enum al_rc (*registry_view)(void *cls, const char *ref, struct al_reg_view *out, struct al_err *err);
    void *registry_view_cls;
    struct al_server_sampling sampling; /* defaults for requests; set at start */
    const char *cors_origins; /* comma-separated origins ("http://localhost:5173") whose browser
                                 pages may call the API, or "*" for any; NULL: none (no CORS) */
};

/* body 4 MiB, prompt tokens 32768, max_tokens 4096, concurrent 64, timeout 600 s,
 * receive timeout 30 s; 127.0.0.1:AL_SERVER_DEFAULT_PORT. */
void al_server_opts_default(struct al_server_opts *o);

/* Starts listening. The manager must outlive the server. Errors: AL_ERR_USAGE
 * (bad options, non-loopback without listen_any, a cors_origins entry that is
 * not "*" or scheme://host[:port], more than AL_SERVER_CORS_ORIGINS), AL_ERR_IO (cannot bind,
 * cannot read the TLS files), AL_ERR_INTERNAL. */
enum al_rc al_server_start(const struct al_server_opts *o, struct al_serve_models *mm, struct al_server **out,
                           struct al_err *err);

/* New limits and stream interval for requests from now on (a SIGHUP); those
 * in flight keep theirs. The connection cap set at start (limits.concurrent
 * * 2 + 32 connections) stays. AL_ERR_USAGE: a limit not positive. */
enum al_rc al_server_set_limits(struct al_server *s, const struct al_server_limits *l, double stream_interval_ms,
                                struct al_err *err);

/* The TCP port listened on (0 for a Unix socket). */
int al_server_port(const struct al_server *s);

/* Stops accepting connections and waits up to timeout_s for the requests in
 * flight to finish; then cancels what remains (generations at their next
 * tick, embeddings before their next batch) and waits a few seconds more
 * (AL_SERVER_CANCEL_GRACE_S in http.c) for their 503 to go out. */
void al_server_drain(struct al_server *s, double timeout_s);

/* Stops and frees. NULL: no-op. */
void al_server_free(struct al_server *s);

#endif
