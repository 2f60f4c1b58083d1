/*
 * config.h: the configuration of `airlock serve`: a small JSON file, with
 * command-line flags on top. Everything a reload (SIGHUP) may change is in
 * al_serve_config; the listening address, TLS and limits need a restart.
 *
 *   {
 *     "listen": {"host": "127.0.0.1", "port": 8741, "listen_any": false,
 *                "socket": "/run/airlock/airlock.sock", "socket_mode": "0660"},
 *     "tls": {"cert": "server.pem", "key": "server.key", "client_ca": "ca.pem"},
 *     "models": ["stories", "tiny:1.0"],
 *     "defaults": {"threads": 2, "ctx": 4096, "batch": 512, "parallel": 4,
 *                  "queue": 64, "gpu_layers": 0, "mmap": true, "mlock": false},
 *     "model_settings": {"stories": {"ctx": 512, "parallel": 8}},
 *     "memory_budget_mb": 8192, "max_models": 4, "keep_alive_s": 300,
 *     "chat_template": "chatml",        (a builtin name, or Jinja text)
 *     "chat_template_file": "tmpl.jinja",
 *     "limits": {"body_bytes": 4194304, "prompt_tokens": 32768, "max_tokens": 4096,
 *                "concurrent": 64, "timeout_s": 600},
 *     "drain_timeout_s": 30,
 *     "audit_text": false,
 *     "audit_fail": "closed",
 *     "webui": true, "slots": true,
 *     "registry": false, "registry_sign_key": "site.key",
 *     "cors_origins": ["http://localhost:5173"],
 *     "sampling": {"seed": 42, "temperature": 0.8, "n_predict": 256},
 *     "aliases": {"stories": ["tiny", "code"]}, "tags": {"stories": "chat,small"}
 *   }
 * audit_fail: while the audit log cannot be written (a full disk), "closed"
 * refuses every request but /health with 503 until it can; "open" serves and
 * counts the records it loses (a loss marker in the log says how many).
 * webui: false serves no web chat at / (as --no-webui).
 * slots: false answers GET /slots 501 (as --no-slots).
 * registry: true serves the store read-only under /v2/ (as --registry);
 * registry_sign_key signs what it serves (as --registry-sign).
 * chat_template: one of llama.cpp's builtin names ("chatml", "llama3", ...) is
 * the format for models without a template of their own; anything else is
 * Jinja that every model is rendered with, over its own (as llama-server's
 * --chat-template); chat_template_file reads that Jinja from a file (at most
 * AL_LIMIT_CHAT_TEMPLATE bytes). The Jinja is checked when it is read.
 * aliases, tags: other names a model is served under and the tags /v1/models
 * shows for it, by reference (as --alias REF=a,b and --tags REF=x,y;
 * serve/aliases.h).
 * Unknown keys are errors, so that a typo does not pass silently.
 */
#ifndef AL_SERVER_CONFIG_H
#define AL_SERVER_CONFIG_H

#include "core/limits.h"
#include "serve/models.h"
#include "server/server.h"

struct al_server_config {
    struct al_server_opts server;   /* its strings point into the arrays below */
    struct al_serve_config models;
    double drain_timeout_s;
    char host[256];
    char socket[AL_LIMIT_PATH];
    char tls_cert[AL_LIMIT_PATH], tls_key[AL_LIMIT_PATH], tls_ca[AL_LIMIT_PATH];
    char registry_sign[AL_LIMIT_PATH]; /* serve --registry-sign: a minisign secret key, "" none */
    char *chat_template;            /* the Jinja override (owned; models.chat_template points at it) */
    char cors[4096];                /* --cors-origins, "" none */
};

/* The built-in defaults. */
void al_server_config_default(struct al_server_config *c);

/* Frees what c owns (the Jinja override). */
void al_server_config_release(struct al_server_config *c);

/* Sets the chat template from value: a builtin name into
 * models.chat_fallback, anything else as the Jinja override; with is_file,
 * value is a path whose text is the Jinja (capped at AL_LIMIT_CHAT_TEMPLATE
 * bytes). The Jinja is checked (al_engine_chat_template_check). Errors:
 * AL_ERR_IO (the file), AL_ERR_LIMIT, AL_ERR_INVALID, AL_ERR_NOMEM. */
enum al_rc al_server_config_chat_template(struct al_server_config *c, const char *value, bool is_file,
                                          struct al_err *err);

/* Reads path on top of what c holds. Errors: AL_ERR_IO, AL_ERR_INVALID
 * (malformed, unknown key, wrong type), AL_ERR_LIMIT. */
enum al_rc al_server_config_load(struct al_server_config *c, const char *path, struct al_err *err);

/* "closed" (refuse requests while the audit cannot write) or "open" (serve
 * anyway) into *open; AL_ERR_INVALID for anything else (no message). */
enum al_rc al_server_audit_fail_parse(const char *s, bool *open);

/* Makes the string pointers of c->server point into c's own arrays (after a
 * copy of the struct). */
void al_server_config_fix(struct al_server_config *c);

#endif
