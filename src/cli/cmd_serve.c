/*
 * cmd_serve.c: `airlock serve`: the configuration (file, then flags), the
 * model manager, the HTTP server, signals (SIGHUP reloads, SIGTERM/SIGINT
 * drain and stop) and systemd's readiness protocol.
 */
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_util.h"
#include "core/log.h"
#include "access/access.h"
#include "repo/repo.h"
#include "audit/audit.h"
#include "bundle/bundle.h"
#include "cli/cli_key.h"
#include "server/config.h"
#include "trust/trust.h"

int al_cmd_serve(int argc, char **argv);

/* glibc malloc arenas for the server process (see bound_malloc_arenas). */
#define SERVE_MALLOC_ARENAS 2

/*
 * Why: libmicrohttpd runs each connection on a thread of its own, and glibc
 * hands threads out over up to 8 arenas per core. Every arena keeps the
 * memory its requests freed, fragmented, and gives little of it back, so
 * with short-lived connection threads spreading over a growing set of
 * arenas RSS rose steadily under the soak's mixed load (about 0.75 MiB a
 * minute for 10 minutes, live heap flat; tests/soak, docs/internals/server.md).
 * With two arenas it levels off within a minute. The server's requests
 * spend their time in the engine, not in malloc, so the lost concurrency
 * costs nothing measurable. MALLOC_ARENA_MAX in the environment wins.
 */
static void bound_malloc_arenas(void)
{
#ifdef __GLIBC__
    if (getenv("MALLOC_ARENA_MAX") == NULL)
        mallopt(M_ARENA_MAX, SERVE_MALLOC_ARENAS);
#endif
}

enum {
    O_PORT = 256, O_HOST, O_ANY, O_SOCKET, O_SOCKET_MODE, O_THREADS, O_CTX, O_CTX_SEQ, O_BATCH, O_PARALLEL, O_QUEUE, O_GPU,
    O_NO_MMAP, O_MLOCK, O_BUDGET, O_MAX_MODELS, O_KEEP_ALIVE, O_TEMPLATE, O_CERT, O_KEY, O_CA, O_MAX_TOKENS,
    O_MAX_BODY, O_MAX_PROMPT, O_MAX_CONC, O_TIMEOUT, O_DRAIN, O_REQUIRE_KEY, O_NO_AUDIT, O_AUDIT_TEXT,
    O_AUDIT_DAYS, O_STREAM_INTERVAL, O_RECV_TIMEOUT, O_AUDIT_FAIL, O_NO_WEBUI, O_REGISTRY, O_REGISTRY_SIGN,
    O_SEED, O_TEMP, O_N_PREDICT, O_TEMPLATE_FILE, O_CORS, O_SLOTS, O_NO_SLOTS, O_REASONING, O_ALIAS, O_TAGS,
};

/* Access and audit settings: flags only (they need a restart to change). */
static struct {
    bool require_key, no_audit, audit_text;
    int audit_days;
} serve_flags;

static const struct option opts[] = {
    {"config", required_argument, NULL, 'c'}, {"port", required_argument, NULL, O_PORT},
    {"host", required_argument, NULL, O_HOST}, {"listen-any", no_argument, NULL, O_ANY},
    {"socket", required_argument, NULL, O_SOCKET}, {"socket-mode", required_argument, NULL, O_SOCKET_MODE},
    {"threads", required_argument, NULL, O_THREADS}, {"ctx", required_argument, NULL, O_CTX},
    {"ctx-per-seq", required_argument, NULL, O_CTX_SEQ},
    {"batch", required_argument, NULL, O_BATCH}, {"parallel", required_argument, NULL, O_PARALLEL},
    {"queue", required_argument, NULL, O_QUEUE}, {"gpu-layers", required_argument, NULL, O_GPU},
    {"no-mmap", no_argument, NULL, O_NO_MMAP}, {"mlock", no_argument, NULL, O_MLOCK},
    {"budget-mb", required_argument, NULL, O_BUDGET}, {"max-models", required_argument, NULL, O_MAX_MODELS},
    {"keep-alive", required_argument, NULL, O_KEEP_ALIVE}, {"chat-template", required_argument, NULL, O_TEMPLATE},
    {"tls-cert", required_argument, NULL, O_CERT}, {"tls-key", required_argument, NULL, O_KEY},
    {"tls-client-ca", required_argument, NULL, O_CA}, {"max-tokens", required_argument, NULL, O_MAX_TOKENS},
    {"max-body", required_argument, NULL, O_MAX_BODY}, {"max-prompt-tokens", required_argument, NULL, O_MAX_PROMPT},
    {"max-concurrent", required_argument, NULL, O_MAX_CONC}, {"timeout", required_argument, NULL, O_TIMEOUT},
    {"receive-timeout", required_argument, NULL, O_RECV_TIMEOUT},
    {"drain-timeout", required_argument, NULL, O_DRAIN}, {"verbose", no_argument, NULL, 'v'},
    {"stream-interval", required_argument, NULL, O_STREAM_INTERVAL},
    {"require-key", no_argument, NULL, O_REQUIRE_KEY}, {"no-audit", no_argument, NULL, O_NO_AUDIT},
    {"audit-text", no_argument, NULL, O_AUDIT_TEXT}, {"audit-retention", required_argument, NULL, O_AUDIT_DAYS},
    {"audit-fail", required_argument, NULL, O_AUDIT_FAIL}, {"no-webui", no_argument, NULL, O_NO_WEBUI},
    {"registry", no_argument, NULL, O_REGISTRY}, {"registry-sign", required_argument, NULL, O_REGISTRY_SIGN},
    {"seed", required_argument, NULL, O_SEED}, {"temp", required_argument, NULL, O_TEMP},
    {"n-predict", required_argument, NULL, O_N_PREDICT}, {"chat-template-file", required_argument, NULL, O_TEMPLATE_FILE},
    {"cors-origins", required_argument, NULL, O_CORS}, {"slots", no_argument, NULL, O_SLOTS},
    {"no-slots", no_argument, NULL, O_NO_SLOTS}, {"reasoning", required_argument, NULL, O_REASONING},
    {"alias", required_argument, NULL, O_ALIAS}, {"tags", required_argument, NULL, O_TAGS},
    {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
};

static void usage(void)
{
    printf("usage: airlock serve [REF...] [--config FILE] [options]\n\n"
           "Serves models of the store over an OpenAI-compatible HTTP API, and Ollama's.\n"
           "Routes and the API key scope each needs (once keys exist; 'admin' grants every scope):\n"
           "  POST /v1/chat/completions (tools) /v1/responses                  chat\n"
           "  POST /v1/completions /tokenize /detokenize                        chat\n"
           "  POST /apply-template (llama-server's: the chat's prompt)          chat\n"
           "  POST /v1/chat/completions/input_tokens (its token count)          chat\n"
           "  POST /chat/completions/input_tokens (alias)                       chat\n"
           "  POST /v1/responses/input_tokens (the same for a Responses body)   chat\n"
           "  POST /responses/input_tokens (alias)                              chat\n"
           "  GET  /props (llama-server's: context, slots, defaults, template)  chat\n"
           "  POST /completion (llama-server's native completion)               chat\n"
           "  GET  /lora-adapters (llama-server's: the LoRA adapters; ?model=)  chat\n"
           "  POST /lora-adapters (llama-server's: their default scales)        admin\n"
           "  POST /infill (llama-server's: fill in the middle, FIM models)      chat\n"
           "  GET  /slots (llama-server's: the sequences, busy or idle)          admin\n"
           "  POST /v1/embeddings                                               embed\n"
           "  POST /v1/rerank /rerank /v1/reranking /reranking (a reranker)     embed\n"
           "  GET  /v1/models /v1/models/{id}                                   chat or embed\n"
           "  POST /chat/completions /completions /responses (no /v1: aliases)  chat\n"
           "  POST /embeddings (alias of /v1/embeddings)                        embed\n"
           "  GET  /models /models/{id} (aliases)                               chat or embed\n"
           "  POST /v1/rag/{collection}/query                                   rag:{collection}\n"
           "  GET  /v1/rag (the collections the key may query)                  any key\n"
           "  POST /api/chat /api/generate (Ollama)                             chat\n"
           "  POST /api/embed /api/embeddings (Ollama)                          embed\n"
           "  GET  /api/tags /api/ps, POST /api/show (Ollama)                   chat or embed\n"
           "  GET  /metrics                                                     metrics\n"
           "  GET  /health /api/version                                         none\n"
           "  GET  / /app.js /app.css (the web chat; its API calls need keys)   none\n"
           "  GET  /v2/ /v2/{name}/... (also HEAD; with --registry)              pull\n"
           "Chat completions that retrieve from a collection also need rag:{collection}.\n"
           "A retrieval that names a reranker (\"rerank\": MODEL) also needs embed.\n"
           "REFs (name, name:tag, name@sha256:...) are loaded at start and never unloaded for\n"
           "idleness; the first is the default model. Other models load on first request.\n"
           "  --alias [REF=]A,B    other names requests may give for REF (default: the first\n"
           "                       REF), as llama-server's --alias; /v1/models lists it under the\n"
           "                       first in sort order. An API key's model patterns are checked\n"
           "                       against REF, not the alias. Repeat for more models (config:\n"
           "                       \"aliases\")\n"
           "  --tags [REF=]X,Y     the tags /v1/models shows for REF (config: \"tags\")\n\n"
           "listening (default 127.0.0.1:%d):\n"
           "  --host ADDR          address to listen on; not loopback needs --listen-any\n"
           "  --port N             TCP port (0: any free one, printed at start)\n"
           "  --listen-any         allow a non-loopback address\n"
           "  --socket PATH        listen on a Unix socket instead; --socket-mode 0660 (octal)\n"
           "  --tls-cert PEM --tls-key PEM   HTTPS; --tls-client-ca PEM: require client certificates\n"
           "  --no-webui           serve no web chat at / (404; config: \"webui\": false)\n"
           "  --slots, --no-slots  serve GET /slots, or answer it 501 (default: served; config:\n"
           "                       \"slots\": false)\n"
           "  --cors-origins LIST  comma-separated origins (http://localhost:5173) whose browser pages\n"
           "                       may call the API, '*' for any; OPTIONS preflights from them are\n"
           "                       answered, others refused (default: none, no CORS headers)\n"
           "registry (every node a mirror; docs/internals/registry.md):\n"
           "  --registry           serve the store read-only as an OCI registry under /v2/:\n"
           "                       manifests, blobs (Range), tags, referrers; a repository is a\n"
           "                       model name, its tags the version tags; API keys with 'pull',\n"
           "                       sent as the password of Basic credentials (skopeo --creds,\n"
           "                       airlock pull --user) or as a Bearer token (config: \"registry\")\n"
           "  --registry-sign KEY  serve each version as 'airlock push --sign KEY' would push it:\n"
           "                       signed, with its signature referrer (config: \"registry_sign_key\")\n"
           "models (per-model settings in the config file's model_settings):\n"
           "  --threads N --batch N --queue N --gpu-layers N --no-mmap --mlock\n"
           "  --parallel N         requests a model generates at once (default %d, as llama-server)\n"
           "  --ctx N              tokens of the model's KV cache, one cache shared by its --parallel\n"
           "                       sequences (default: the model's training context), as llama-server's\n"
           "                       --ctx-size; when it is full, the youngest request holding cells fails\n"
           "                       (500) so that the others finish\n"
           "  --ctx-per-seq N      most tokens (prompt and answer) one request holds in it (default 0: all\n"
           "                       of --ctx; llama-server's --kv-unified-per-slot)\n"
           "  --budget-mb N        memory budget for loaded models (weights + KV cache);\n"
           "                       least recently used idle models are unloaded beyond it\n"
           "  --max-models N       most models loaded at once\n"
           "  --keep-alive S       unload an on-demand model idle this long (default 300; <0 never)\n"
           "  --chat-template T    a builtin name (chatml, llama3, ...: the format of models without a\n"
           "                       template; default chatml), or Jinja text that every model is\n"
           "                       rendered with, over its own (as llama-server's flag)\n"
           "  --chat-template-file PATH   that Jinja from a file (at most 64 KiB)\n"
           "  --reasoning MODE     thinking in templates that offer it: off renders enable_thinking\n"
           "                       false (an empty thinking block where the template has one), on\n"
           "                       true, auto (default) the template's own default\n"
           "sampling defaults, for requests that do not set the field (llama-server's flags):\n"
           "  --seed N             seed of every request without one (-1: a fresh one each, the\n"
           "                       default); with it, such requests are reproducible\n"
           "  --temp T             temperature (0 to 2; default 0.8; 0: greedy)\n"
           "  --n-predict N        max_tokens of a request without one, within --max-tokens\n"
           "                       (default: chat --max-tokens, completions 16; -1: that default)\n"
           "  These apply from the start; a reload (SIGHUP) keeps the values the server started with.\n"
           "limits (each refusal is a JSON error):\n"
           "  --max-body BYTES --max-prompt-tokens N --max-tokens N --max-concurrent N --timeout S\n"
           "  --receive-timeout S  a request's headers and body must arrive within S seconds of the\n"
           "                       connection's accept or its previous response (default 30)\n"
           "  --drain-timeout S    on SIGTERM, wait this long for requests in flight (default 30)\n"
           "  --stream-interval MS send streamed tokens at most every MS ms, the first at once\n"
           "                       (default 5; 0: each token as it comes)\n"
           "access and audit:\n"
           "  --require-key        refuse requests without an API key even before the first key\n"
           "                       exists (keys: airlock apikey create; once one exists, always)\n"
           "  --audit-text         record prompt and response text, scrubbed of PII\n"
           "  --audit-retention D  prune audit records older than D days (default: keep all)\n"
           "  --audit-fail MODE    while the audit log cannot be written (disk full): closed\n"
           "                       (default) refuses requests with 503 until it can; open serves\n"
           "                       on, and a loss marker in the log counts the records lost\n"
           "  --no-audit           write no audit log (one JSON line per request by default)\n"
           "  -v, --verbose  -q, --quiet\n\n"
           "Signals: SIGHUP reloads the config and resolves names again, so a version made active\n"
           "since (airlock activate/rollback) is served; requests in flight finish on the old one.\n"
           "Its limits apply to requests from then on; the address and TLS need a restart.\n"
           "SIGTERM drains and stops. Under systemd (Type=notify) readiness is reported on\n"
           "$NOTIFY_SOCKET. See dist/airlock.service.\n",
           AL_SERVER_DEFAULT_PORT, AL_SERVE_DEFAULT_PARALLEL);
}

/* Builds the configuration: defaults, then the file, then the flags, then
 * the REFs. Returns 0 or an exit status (the message printed). */
static int build_config(int argc, char **argv, struct al_server_config *c, int *verbosity)
{
    al_server_config_default(c);
    const char *file = NULL;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "c:vqh", opts, NULL)) != -1)
        if (ch == 'c')
            file = optarg;
    struct al_err err = AL_ERR_INIT;
    if (file && al_server_config_load(c, file, &err)) {
        al_server_config_release(c);
        return al_cli_fail(&err);
    }
    struct al_serve_settings *d = &c->models.defaults;
    struct al_server_limits *l = &c->server.limits;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "c:vqh", opts, NULL)) != -1) {
        int st = 0, iv = 0;
        double dv = 0;
        switch (ch) {
        case 'c': break;
        case 'v': *verbosity = 1; break;
        case 'q': *verbosity = -1; break;
        case O_PORT: st = al_cli_opt_i("serve", "--port", optarg, 0, 65535, &c->server.port); break;
        case O_HOST: snprintf(c->host, sizeof c->host, "%s", optarg); break;
        case O_ANY: c->server.listen_any = true; break;
        case O_NO_WEBUI: c->server.no_webui = true; break;
        case O_SLOTS: c->server.no_slots = false; break;
        case O_NO_SLOTS: c->server.no_slots = true; break;
        case O_REASONING:
            /* llama-server's words for on and off (is_truthy, is_falsey) */
            if (strcmp(optarg, "auto") == 0)
                c->server.reasoning = AL_SERVER_REASONING_AUTO;
            else if (!strcmp(optarg, "off") || !strcmp(optarg, "disabled") || !strcmp(optarg, "false") ||
                     !strcmp(optarg, "0"))
                c->server.reasoning = AL_SERVER_REASONING_OFF;
            else if (!strcmp(optarg, "on") || !strcmp(optarg, "enabled") || !strcmp(optarg, "true") ||
                     !strcmp(optarg, "1"))
                c->server.reasoning = AL_SERVER_REASONING_ON;
            else
                st = al_cli_usage_error("serve", "--reasoning must be on, off or auto, not '%s'", optarg);
            break;
        case O_ALIAS:
        case O_TAGS:
            if (al_serve_alias_set(c->models.aliases, &c->models.n_aliases, optarg, ch == O_TAGS, &err) != AL_OK)
                st = al_cli_usage_error("serve", "%s", err.msg);
            break;
        case O_REGISTRY: c->server.registry = true; break;
        case O_REGISTRY_SIGN: snprintf(c->registry_sign, sizeof c->registry_sign, "%s", optarg); break;
        case O_SOCKET: snprintf(c->socket, sizeof c->socket, "%s", optarg); break;
        case O_SOCKET_MODE: st = al_cli_opt_mode("serve", "--socket-mode", optarg, &c->server.socket_mode); break;
        case O_THREADS: st = al_cli_opt_threads("serve", optarg, &d->threads); break;
        case O_CTX: st = al_cli_opt_i("serve", "--ctx", optarg, 0, 1 << 24, &d->ctx); break;
        case O_CTX_SEQ: st = al_cli_opt_i("serve", "--ctx-per-seq", optarg, 0, 1 << 24, &d->ctx_seq); break;
        case O_BATCH: st = al_cli_opt_i("serve", "--batch", optarg, 1, 1 << 20, &d->batch); break;
        case O_PARALLEL: st = al_cli_opt_i("serve", "--parallel", optarg, 1, 64, &d->n_seq); break;
        case O_QUEUE: st = al_cli_opt_i("serve", "--queue", optarg, 1, 4096, &d->queue); break;
        case O_GPU: st = al_cli_opt_i("serve", "--gpu-layers", optarg, 0, 100000, &d->gpu_layers); break;
        case O_NO_MMAP: d->mmap = 0; break;
        case O_MLOCK: d->mlock = 1; break;
        case O_BUDGET:
            st = al_cli_opt_i("serve", "--budget-mb", optarg, 0, 1 << 30, &iv);
            c->models.budget_bytes = st ? c->models.budget_bytes : (uint64_t)iv << 20;
            break;
        case O_MAX_MODELS: st = al_cli_opt_i("serve", "--max-models", optarg, 0, 1024, &c->models.max_loaded); break;
        case O_KEEP_ALIVE:
            st = al_cli_opt_seconds("serve", "--keep-alive", optarg, -1e9, 1e9, &c->models.keep_alive_s);
            break;
        case O_TEMPLATE:
        case O_TEMPLATE_FILE:
            if (al_server_config_chat_template(c, optarg, ch == O_TEMPLATE_FILE, &err) != AL_OK) {
                al_server_config_release(c);
                return al_cli_fail(&err);
            }
            break;
        case O_CERT: snprintf(c->tls_cert, sizeof c->tls_cert, "%s", optarg); break;
        case O_CORS:
            if (strlen(optarg) >= sizeof c->cors)
                st = al_cli_usage_error("serve", "--cors-origins is longer than %zu bytes", sizeof c->cors - 1);
            else
                snprintf(c->cors, sizeof c->cors, "%s", optarg);
            break;
        case O_KEY: snprintf(c->tls_key, sizeof c->tls_key, "%s", optarg); break;
        case O_CA: snprintf(c->tls_ca, sizeof c->tls_ca, "%s", optarg); break;
        case O_MAX_TOKENS: st = al_cli_opt_i("serve", "--max-tokens", optarg, 1, 1 << 24, &l->max_tokens); break;
        case O_MAX_BODY:
            st = al_cli_opt_i("serve", "--max-body", optarg, 1, 1 << 30, &iv);
            l->body_bytes = st ? l->body_bytes : (size_t)iv;
            break;
        case O_MAX_PROMPT: st = al_cli_opt_i("serve", "--max-prompt-tokens", optarg, 1, 1 << 24, &l->prompt_tokens); break;
        case O_MAX_CONC: st = al_cli_opt_i("serve", "--max-concurrent", optarg, 1, 100000, &l->concurrent); break;
        case O_TIMEOUT: st = al_cli_opt_seconds("serve", "--timeout", optarg, -1e9, 1e9, &l->timeout_s); break;
        case O_RECV_TIMEOUT:
            st = al_cli_opt_seconds("serve", "--receive-timeout", optarg, 1e-3, AL_SERVER_RECEIVE_TIMEOUT_MAX,
                                    &l->receive_timeout_s);
            break;
        case O_DRAIN: st = al_cli_opt_seconds("serve", "--drain-timeout", optarg, -1e9, 1e9, &c->drain_timeout_s); break;
        case O_STREAM_INTERVAL:
            st = al_cli_opt_num("serve", "--stream-interval", optarg, 0, 1000, &c->server.stream_interval_ms);
            break;
        case O_SEED:
            st = al_cli_opt_num("serve", "--seed", optarg, -1, 4294967294.0, &dv);
            if (!st && dv != (double)(int64_t)dv)
                st = al_cli_usage_error("serve", "--seed needs a whole number (got '%s')", optarg);
            c->server.sampling.seed_set = !st && dv >= 0;
            c->server.sampling.seed = c->server.sampling.seed_set ? (uint32_t)dv : 0;
            break;
        case O_TEMP:
            st = al_cli_opt_num("serve", "--temp", optarg, 0, 2, &dv);
            c->server.sampling.temp_set = !st;
            c->server.sampling.temperature = (float)dv;
            break;
        case O_N_PREDICT: st = al_cli_opt_i("serve", "--n-predict", optarg, -1, 1 << 24, &c->server.sampling.n_predict); break;
        case O_REQUIRE_KEY: serve_flags.require_key = true; break;
        case O_NO_AUDIT: serve_flags.no_audit = true; break;
        case O_AUDIT_TEXT: serve_flags.audit_text = true; break;
        case O_AUDIT_FAIL:
            if (al_server_audit_fail_parse(optarg, &c->server.audit_fail_open) != AL_OK)
                st = al_cli_usage_error("serve", "bad value '%s'", optarg);
            break;
        case O_AUDIT_DAYS:
            st = al_cli_opt_i("serve", "--audit-retention", optarg, 1, 36500,
                              &serve_flags.audit_days);
            break;
        default: al_server_config_release(c); return al_cli_usage_error("serve", "unknown option");
        }
        if (st) {
            al_server_config_release(c);
            return st;
        }
    }
    /* REFs on the command line come first: the first is the default model. */
    int n_refs = argc - optind;
    if (n_refs + c->models.n_pinned > AL_SERVE_MAX_PINNED) {
        al_server_config_release(c);
        return al_cli_usage_error("serve", "at most %d models may be named", AL_SERVE_MAX_PINNED);
    }
    memmove(c->models.pinned[n_refs], c->models.pinned[0], (size_t)c->models.n_pinned * sizeof c->models.pinned[0]);
    for (int i = 0; i < n_refs; i++) {
        if (strlen(argv[optind + i]) >= sizeof c->models.pinned[0]) {
            al_server_config_release(c);
            return al_cli_usage_error("serve", "'%s' is too long a reference", argv[optind + i]);
        }
        snprintf(c->models.pinned[i], sizeof c->models.pinned[0], "%s", argv[optind + i]);
    }
    c->models.n_pinned += n_refs;
    al_server_config_fix(c);
    return 0;
}

/* systemd's readiness protocol: one datagram to $NOTIFY_SOCKET. */
static void sd_notify_msg(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@'))
        return;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = 0; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        al_warn("cannot notify systemd on '%s': %s", path, strerror(errno));
    close(fd);
}

/* SIGHUP: the configuration built again (file and flags) and applied to
 * the models and to new requests; the address and TLS need a restart. */
static void reload(int argc, char **argv, struct al_server_config *cfg, struct al_serve_models *mm,
                   struct al_server *srv, int verbosity)
{
    sd_notify_msg("RELOADING=1");
    struct al_server_config fresh;
    int fv = verbosity;
    if (build_config(argc, argv, &fresh, &fv) == 0) {
        struct al_err e2 = AL_ERR_INIT;
        if (al_serve_reload(mm, &fresh.models, &e2))
            al_log(AL_LOG_ERROR, "reload: %s", e2.msg);
        else if (al_server_set_limits(srv, &fresh.server.limits, fresh.server.stream_interval_ms, &e2))
            al_log(AL_LOG_ERROR, "reload: limits kept: %s", e2.msg);
        else
            al_info("reloaded: models resolved again, limits applied to new requests%s",
                    cfg->server.port != fresh.server.port || strcmp(cfg->host, fresh.host) ||
                            strcmp(cfg->socket, fresh.socket) || strcmp(cfg->tls_cert, fresh.tls_cert) ||
                            strcmp(cfg->tls_key, fresh.tls_key) || strcmp(cfg->tls_ca, fresh.tls_ca)
                        ? " (listening address and TLS changes need a restart)"
                        : "");
        cfg->drain_timeout_s = fresh.drain_timeout_s;
        al_server_config_release(&fresh); /* the manager keeps a copy of the template */
    }
    sd_notify_msg("READY=1");
}

/* The view hook of serve --registry (server.h), from a repo of its own: with
 * --registry-sign the version packed and signed as push --sign packs it,
 * without it what push without --sign sends (the original signatures). */
struct sign_ctx {
    const char *home;
    struct al_mkey_sec *key;
};

static enum al_rc registry_view(void *cls, const char *ref, struct al_reg_view *out, struct al_err *err)
{
    struct sign_ctx *sc = cls;
    struct al_repo *r = NULL;
    enum al_rc rc = al_repo_open_read(sc->home, &r, err);
    if (rc)
        return rc;
    struct al_mkey_sec *keys[1] = {sc->key};
    struct al_bundle_pack_opts po = {.ref = ref, .keys = keys, .n_keys = sc->key ? 1 : 0};
    rc = al_bundle_view_make(r, ref, &po, out, err);
    al_repo_free(r);
    return rc;
}

int al_cmd_serve(int argc, char **argv)
{
    if (al_cli_wants_help(argc, argv)) {
        usage();
        return AL_EXIT_OK;
    }
    struct al_server_config cfg;
    int verbosity = 0;
    int st = build_config(argc, argv, &cfg, &verbosity);
    if (st)
        return st;
    bound_malloc_arenas(); /* before any thread starts */
    if (verbosity > 0)
        al_log_set_level(AL_LOG_DEBUG);
    else if (verbosity == 0)
        al_log_set_level(AL_LOG_INFO);

    /* Every thread inherits this mask; the main thread takes the signals with sigwait. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char home[AL_LIMIT_PATH];
    al_cli_home(home, sizeof home);
    struct al_err err = AL_ERR_INIT;
    struct al_serve_models *mm = NULL;
    struct al_server *srv = NULL;
    struct al_access *access = NULL;
    struct al_audit *audit = NULL;
    struct sign_ctx sign = {.home = home, .key = NULL};
    /* The store first: a lost index (al_repo_open) refuses to serve before
     * anything reads the key table, which a lost index has lost too. */
    struct al_repo *probe = NULL;
    if (al_repo_open(home, false, &probe, &err))
        goto out;
    al_repo_free(probe);
    /* API keys: open until the first key exists (or --require-key, or after
     * an index rebuild); every request audited unless --no-audit. */
    if (al_access_open(home, &access, &err))
        goto out;
    if (serve_flags.require_key)
        al_access_set_required(access, true);
    struct al_audit_opts ao = {.capture_text = cfg.server.audit_text || serve_flags.audit_text,
                               .retention_days = serve_flags.audit_days};
    if (!serve_flags.no_audit && al_audit_open(home, &ao, &audit, &err))
        goto out;
    if (audit && al_audit_prune(audit, &err) != AL_OK) {
        al_log(AL_LOG_WARN, "audit retention: %s", err.msg);
        al_err_clear(&err);
    }
    cfg.server.access = access;
    cfg.server.home = home; /* document collections for /v1/rag */
    cfg.server.audit = audit;
    cfg.server.audit_text = ao.capture_text;
    if (cfg.registry_sign[0]) {
        if (!cfg.server.registry) {
            al_err_set(&err, AL_ERR_USAGE, "--registry-sign needs --registry");
            goto out;
        }
        if (al_cli_load_secret_key(cfg.registry_sign, &sign.key, &err))
            goto out;
    }
    if (cfg.server.registry) { /* without a key: the stored manifests and the signatures they arrived with */
        cfg.server.registry_view = registry_view;
        cfg.server.registry_view_cls = &sign;
    }
    if (al_serve_new(home, &cfg.models, &mm, &err) || al_server_start(&cfg.server, mm, &srv, &err))
        goto out;
    if (cfg.server.socket_path)
        fprintf(stderr, "airlock: listening on unix:%s\n", cfg.server.socket_path);
    else
        fprintf(stderr, "airlock: listening on %s://%s%s%s:%d\n", cfg.server.tls_cert ? "https" : "http",
                strchr(cfg.host, ':') ? "[" : "", cfg.host, strchr(cfg.host, ':') ? "]" : "", al_server_port(srv));
    if (al_serve_preload(mm, &err))
        goto out;
    fprintf(stderr, "airlock: ready (%d model%s loaded)\n", cfg.models.n_pinned, cfg.models.n_pinned == 1 ? "" : "s");
    sd_notify_msg("READY=1\nSTATUS=serving");

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            reload(argc, argv, &cfg, mm, srv, verbosity);
            continue;
        }
        al_info("%s: draining (up to %.0f s)", sig == SIGTERM ? "SIGTERM" : "SIGINT", cfg.drain_timeout_s);
        sd_notify_msg("STOPPING=1");
        break;
    }
    al_server_drain(srv, cfg.drain_timeout_s);
out:
    al_server_free(srv);
    al_serve_free(mm);
    al_audit_free(audit);
    al_access_free(access);
    al_trust_key_free(sign.key);
    al_server_config_release(&cfg);
    if (err.rc)
        return al_cli_fail(&err);
    fprintf(stderr, "airlock: stopped\n");
    return AL_EXIT_OK;
}
