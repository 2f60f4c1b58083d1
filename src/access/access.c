/*
 * access.c: the per-request check. Keys live in memory, re-read from the
 * index whenever SQLite's data_version says another connection committed;
 * a mutex makes one handle safe for every server thread (the SQLite
 * connection is opened without its own mutex and is only used under ours).
 */
#include "access/access_int.h"

#include "core/fs.h"
#include "core/log.h"
#include <openssl/crypto.h>
#include <pthread.h>

struct key {
    char name[AL_LIMIT_APIKEY_NAME + 1];
    char lookup[AL_APIKEY_LOOKUP_LEN + 1];
    uint8_t hash[AL_SHA256_BYTES];
    char scopes[AL_LIMIT_APIKEY_LIST + 1];
    char models[AL_LIMIT_APIKEY_LIST + 1];
    int64_t expires;
    bool revoked;
};

struct al_access {
    pthread_mutex_t mu;
    struct al_index *ix;
    struct key *keys;
    size_t n_keys;
    int64_t data_version;
    bool loaded;
    bool forced;     /* al_access_set_required(true) */
    bool keys_lost;  /* the index was rebuilt: keys may have existed */
};

static const char invalid_msg[] = "invalid or missing API key";

static bool unhex(const char *hex, uint8_t out[AL_SHA256_BYTES])
{
    if (strlen(hex) != AL_SHA256_HEX)
        return false;
    for (size_t i = 0; i < AL_SHA256_BYTES; i++) {
        unsigned v = 0;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return false;
        out[i] = (uint8_t)v;
    }
    return true;
}

/* Re-reads the key table when it changed; called with the mutex held. */
static enum al_rc refresh(struct al_access *a, struct al_err *err)
{
    int64_t v = 0;
    enum al_rc rc = al_index_data_version(a->ix, &v, err);
    if (rc)
        return rc;
    if (a->loaded && v == a->data_version)
        return AL_OK;
    struct al_apikey_row *rows = NULL;
    size_t n = 0;
    bool lost = false;
    if ((rc = al_index_keys_lost(a->ix, &lost, err)) || (rc = al_index_apikey_list(a->ix, &rows, &n, err)))
        return rc;
    struct key *keys = calloc(n ? n : 1, sizeof *keys);
    if (keys == NULL) {
        free(rows);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        struct key *k = &keys[i];
        snprintf(k->name, sizeof k->name, "%s", rows[i].name);
        snprintf(k->lookup, sizeof k->lookup, "%s", rows[i].lookup);
        snprintf(k->scopes, sizeof k->scopes, "%s", rows[i].scopes);
        snprintf(k->models, sizeof k->models, "%s", rows[i].models);
        k->expires = rows[i].expires;
        /* A row whose hash cannot be read can never match: treat it as revoked. */
        k->revoked = rows[i].revoked[0] != '\0' || !unhex(rows[i].hash, k->hash);
    }
    free(rows);
    free(a->keys);
    a->keys = keys;
    a->n_keys = n;
    a->data_version = v;
    a->keys_lost = lost;
    a->loaded = true;
    return AL_OK;
}

enum al_rc al_access_open(const char *home, struct al_access **out, struct al_err *err)
{
    *out = NULL;
    char db[AL_LIMIT_PATH];
    enum al_rc rc = al_path_fmt(db, sizeof db, err, "%s/airlock.db", home);
    if (rc)
        return rc;
    struct al_access *a = calloc(1, sizeof *a);
    if (a == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&a->mu, NULL);
    /* Never create the index here: a missing one means a damaged store, and
     * a fresh key table would make the server open. */
    if (!(rc = al_index_open_mode(db, AL_INDEX_EXISTING, &a->ix, err)))
        rc = refresh(a, err);
    if (rc) {
        al_access_free(a);
        return rc;
    }
    *out = a;
    return AL_OK;
}

void al_access_free(struct al_access *a)
{
    if (a == NULL)
        return;
    al_index_free(a->ix);
    if (a->keys)
        OPENSSL_cleanse(a->keys, a->n_keys * sizeof *a->keys);
    free(a->keys);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

void al_access_set_required(struct al_access *a, bool required)
{
    pthread_mutex_lock(&a->mu);
    a->forced = required;
    pthread_mutex_unlock(&a->mu);
}

bool al_access_required(struct al_access *a)
{
    pthread_mutex_lock(&a->mu);
    struct al_err err = AL_ERR_INIT;
    /* When the table cannot be read, say "required": failing closed. */
    /* After an index rebuild the key table's past is unknown: required. */
    bool req = refresh(a, &err) != AL_OK || a->forced || a->n_keys > 0 || a->keys_lost;
    pthread_mutex_unlock(&a->mu);
    return req;
}

static bool token_shape_ok(const char *t)
{
    if (strncmp(t, "al-", 3) != 0 || strlen(t) != AL_APIKEY_TOKEN_LEN)
        return false;
    for (const char *p = t + 3; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
            return false;
    return true;
}

/* Decides with the mutex held. The token's hash is computed and compared
 * (CRYPTO_memcmp) even when no key has its lookup id, so a miss and a wrong
 * secret take the same path. */
static enum al_rc decide(struct al_access *a, const char *token, const char *scope, const char *model,
                         char identity[128], struct al_err *err)
{
    if (!a->forced && !a->keys_lost && a->n_keys == 0) {
        snprintf(identity, 128, "anonymous");
        return AL_OK;
    }
    if (token == NULL || !token_shape_ok(token))
        return al_err_set(err, AL_ERR_AUTH, "%s", invalid_msg);
    char hex[AL_SHA256_HEX + 1];
    uint8_t presented[AL_SHA256_BYTES];
    al_access__token_hash(token, hex);
    bool parsed = unhex(hex, presented);
    OPENSSL_cleanse(hex, sizeof hex);
    static const uint8_t none[AL_SHA256_BYTES] = {0};
    const struct key *found = NULL;
    for (size_t i = 0; i < a->n_keys; i++)
        if (memcmp(a->keys[i].lookup, token + 3, AL_APIKEY_LOOKUP_LEN) == 0 && !a->keys[i].revoked)
            found = &a->keys[i];
    bool equal = CRYPTO_memcmp(presented, found ? found->hash : none, AL_SHA256_BYTES) == 0;
    OPENSSL_cleanse(presented, sizeof presented);
    if (!parsed || found == NULL || !equal)
        return al_err_set(err, AL_ERR_AUTH, "%s", invalid_msg);
    if (found->expires && found->expires <= (int64_t)time(NULL))
        return al_err_set(err, AL_ERR_AUTH, "%s", invalid_msg);
    /* A valid key is named from here on, refused or not: its refusals are
     * audited under its name. */
    snprintf(identity, 128, "%s", found->name);
    if (scope && *scope && !al_access__scope_ok(found->scopes, scope))
        return al_err_set(err, AL_ERR_DENIED, "this key lacks the '%.64s' scope", scope);
    if (model && *model && !al_access__model_ok(found->models, model))
        return al_err_set(err, AL_ERR_DENIED, "this key may not use model '%.*s'", (int)AL_LIMIT_REF, model);
    return AL_OK;
}

enum al_rc al_access_check(struct al_access *a, const char *bearer_token, const char *scope, const char *model,
                           char identity[128], struct al_err *err)
{
    identity[0] = '\0';
    pthread_mutex_lock(&a->mu);
    struct al_err inner = AL_ERR_INIT;
    enum al_rc rc = refresh(a, &inner);
    if (rc) {
        /* The details (paths, SQLite's words) go to the log, not the client. */
        al_log(AL_LOG_ERROR, "access: cannot read the API keys: %s", inner.msg);
        rc = al_err_set(err, rc, "the API key table cannot be read");
    } else {
        rc = decide(a, bearer_token, scope, model, identity, err);
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}
