/*
 * access.h: API keys, and the check the server runs on every request.
 *
 * A key is "al-" followed by 52 base62 characters drawn from RAND_bytes
 * (about 309 bits); the first 8 are its public lookup id, shown by
 * `airlock apikey ls` as "al-XXXXXXXX...". The index stores only
 * SHA-256("airlock-apikey-v1" US token) in hex: a token this long cannot be
 * guessed, so a slow password hash would add cost to every request and no
 * safety. The stored hash is compared with CRYPTO_memcmp.
 *
 * Scopes: "chat", "embed", "metrics" (the server's /metrics), "pull" (serve --registry's
 * /v2/: a model's manifests and blobs, under its model patterns), "admin",
 * "rag:COLLECTION" ("rag:*" for all collections). "admin" grants every scope. Models: comma-separated
 * fnmatch(3) patterns ("llama*,qwen2:7b"), matched against the model the
 * request names, and against its bare name (before ':' or '@'); "*" when
 * not given.
 *
 * Auth required or open: the server is open (every caller is "anonymous")
 * until the first key is created; from then on a key is required, even when
 * every key has been revoked or has expired (revoking the last key must not
 * open the server). al_access_set_required(a, true) makes a key required
 * with no key on record (for a server configured so, or listening beyond
 * loopback).
 *
 * Revocation takes effect at once: every check asks SQLite for its
 * data_version (one cheap PRAGMA, no disk read when nothing changed) and
 * re-reads the key table only when another connection has committed.
 */
#ifndef AL_ACCESS_ACCESS_H
#define AL_ACCESS_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/limits.h"
#include "index/index.h"

#define AL_APIKEY_TOKEN_LEN  (3 + 52)                 /* "al-" + 52 base62 characters */
#define AL_APIKEY_TOKEN_SIZE (AL_APIKEY_TOKEN_LEN + 1)

/* ---- the server's check ---- */

struct al_access; /* opaque; opened once by the server, safe to call from many threads */

/* Opens $home/airlock.db for checks. */
enum al_rc al_access_open(const char *home, struct al_access **out, struct al_err *err);
void al_access_free(struct al_access *a);

/* AL_OK: allowed, identity filled (key name, or "anonymous" when auth is off);
 * AL_ERR_AUTH: no key / unknown / revoked / expired (HTTP 401), identity "";
 * AL_ERR_DENIED: key lacks the scope or the model (HTTP 403), identity filled
 * with the key's name (the refusal is the key's, and audited as such).
 * The caller checks the model that will serve the request: the default model
 * when the request names none (model NULL here checks no model).
 * The message in err is safe to show to the client: it never says whether a
 * key exists ("invalid or missing API key", "this key may not use model 'x'",
 * "this key lacks the 'embed' scope"). scope or model NULL or "": not
 * checked. Other codes (AL_ERR_IO, ...) mean the key table could not be read:
 * the server should answer 500 and not let the request in. */
enum al_rc al_access_check(struct al_access *a, const char *bearer_token, const char *scope, const char *model,
                           char identity[128], struct al_err *err);

/* Requires a key even while none is on record. */
void al_access_set_required(struct al_access *a, bool required);
/* Whether a key is required now (re-reads the table when it changed). */
bool al_access_required(struct al_access *a);

/* ---- management (the CLI) ---- */

struct al_apikey_spec {
    const char *name;    /* [A-Za-z0-9][A-Za-z0-9._-]*, at most AL_LIMIT_APIKEY_NAME */
    const char *scopes;  /* "chat,embed,admin,rag:docs" */
    const char *models;  /* "llama*,qwen*"; NULL = "*" */
    const char *expires; /* NULL = never; "YYYY-MM-DD" (00:00 UTC that day),
                            "YYYY-MM-DDTHH:MM:SSZ", or "Nd" / "Nh" from now */
};

struct al_apikey_info {
    char name[AL_LIMIT_APIKEY_NAME + 1];
    char id[AL_APIKEY_TOKEN_LEN];  /* "al-XXXXXXXX...": the public prefix */
    char scopes[AL_LIMIT_APIKEY_LIST + 1];
    char models[AL_LIMIT_APIKEY_LIST + 1];
    char created[32];
    char expires[32];              /* ISO 8601 UTC, "" = never */
    char revoked[32];              /* ISO 8601 UTC, "" = live */
    const char *state;             /* "active", "expired" or "revoked" (static) */
};

/* Creates a key, records an "apikey-create" event in the same transaction,
 * and writes the secret token into token (shown once; the caller wipes it
 * with al_access_wipe). AL_ERR_EXISTS when a live key has the
 * name; AL_ERR_INVALID for a bad name, scope, pattern or date; a date in the
 * past is AL_ERR_INVALID too. */
enum al_rc al_apikey_create(struct al_index *ix, const struct al_apikey_spec *spec,
                            char token[AL_APIKEY_TOKEN_SIZE], struct al_apikey_info *info, struct al_err *err);

/* Wipes a token (or any secret) so the compiler cannot skip it. */
void al_access_wipe(void *p, size_t n);

/* Revokes the live key called name; records an "apikey-revoke" event. */
enum al_rc al_apikey_revoke(struct al_index *ix, const char *name, struct al_err *err);

/* Every key on record, oldest first; *out is malloc'd (caller frees). */
enum al_rc al_apikey_list(struct al_index *ix, struct al_apikey_info **out, size_t *n, struct al_err *err);

#endif
