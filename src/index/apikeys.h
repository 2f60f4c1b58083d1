/*
 * apikeys.h: the index's table of API keys (part of src/index; the access
 * module builds on it and is its only user). Rows hold a key's name, its
 * public lookup id, the hex SHA-256 that proves its secret, its scopes,
 * model patterns, expiry and revocation time; never the secret itself.
 * Kept apart from index.h so the access work touches index.h not at all.
 */
#ifndef AL_INDEX_APIKEYS_H
#define AL_INDEX_APIKEYS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/limits.h"
#include "index/index.h"

#define AL_APIKEY_LOOKUP_LEN 8 /* characters of the public lookup id */

struct al_apikey_row {
    int64_t id;
    char name[AL_LIMIT_APIKEY_NAME + 1];
    char lookup[AL_APIKEY_LOOKUP_LEN + 1];
    char hash[AL_SHA256_HEX + 1];
    char scopes[AL_LIMIT_APIKEY_LIST + 1];
    char models[AL_LIMIT_APIKEY_LIST + 1];
    char created[32];
    int64_t expires;  /* Unix time; 0 = never */
    char revoked[32]; /* ISO 8601 UTC, "" while live */
};

/* Inserts a key (id is ignored). AL_ERR_EXISTS when a live key already has
 * the name or the lookup id is taken. Call inside a transaction to pair it
 * with its event. */
enum al_rc al_index_apikey_insert(struct al_index *ix, const struct al_apikey_row *row, struct al_err *err);

/* Marks the live key called name revoked now; AL_ERR_NOT_FOUND when there is
 * none. *row receives the key as it was (may be NULL). */
enum al_rc al_index_apikey_revoke(struct al_index *ix, const char *name, struct al_apikey_row *row,
                                  struct al_err *err);

/* Every key, oldest first (at most AL_LIMIT_APIKEYS); *rows is malloc'd. */
enum al_rc al_index_apikey_list(struct al_index *ix, struct al_apikey_row **rows, size_t *n, struct al_err *err);

/* SQLite's PRAGMA data_version: changes whenever another connection commits,
 * so a long-lived reader can tell cheaply whether to re-read. */
enum al_rc al_index_data_version(struct al_index *ix, int64_t *out, struct al_err *err);

#endif
