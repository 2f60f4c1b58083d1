/* access_int.h: private to src/access (and its unit tests). */
#ifndef AL_ACCESS_ACCESS_INT_H
#define AL_ACCESS_ACCESS_INT_H

#include <time.h>

#include "access/access.h"
#include "core/time.h"
#include "index/apikeys.h"

/* The hash stored for a token: hex SHA-256 of "airlock-apikey-v1" US token. */
void al_access__token_hash(const char *token, char out[AL_SHA256_HEX + 1]);

/* al_apikey_create() with the clock given, for tests (an expired key is one
 * created in the past). */
enum al_rc al_apikey__create_at(struct al_index *ix, const struct al_apikey_spec *spec, time_t now,
                                char token[AL_APIKEY_TOKEN_SIZE], struct al_apikey_info *info,
                                struct al_err *err);

/* Parses an expiry (see al_apikey_spec) relative to now into Unix time. */
enum al_rc al_access__parse_expiry(const char *text, time_t now, int64_t *out, struct al_err *err);

/* Whether a comma-separated scope list grants scope; patterns allow model. */
bool al_access__scope_ok(const char *scopes, const char *scope);
bool al_access__model_ok(const char *patterns, const char *model);

#endif
