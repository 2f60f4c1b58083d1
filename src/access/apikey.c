/*
 * apikey.c: creating, revoking and listing API keys; the rules a key's
 * name, scopes and model patterns follow; what a scope or pattern grants.
 */
#include "access/access_int.h"

#include <ctype.h>
#include <fnmatch.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

void al_access__token_hash(const char *token, char out[AL_SHA256_HEX + 1])
{
    struct al_sha256 *h = al_sha256_new();
    al_sha256_update(h, "airlock-apikey-v1\x1f", 18);
    al_sha256_update(h, token, strlen(token));
    uint8_t raw[AL_SHA256_BYTES];
    al_sha256_final(h, raw);
    al_sha256_free(h);
    al_hex(raw, sizeof raw, out);
    OPENSSL_cleanse(raw, sizeof raw);
}

/* Unbiased base62 by rejection: bytes >= 248 (4 * 62) are drawn again. */
static enum al_rc random_token(char token[AL_APIKEY_TOKEN_SIZE], struct al_err *err)
{
    uint8_t pool[128];
    size_t used = sizeof pool, n = 0;
    memcpy(token, "al-", 3);
    while (n < AL_APIKEY_TOKEN_LEN - 3) {
        if (used == sizeof pool) {
            if (RAND_bytes(pool, sizeof pool) != 1)
                return al_err_set(err, AL_ERR_INTERNAL, "the random number generator failed");
            used = 0;
        }
        uint8_t b = pool[used++];
        if (b < 248)
            token[3 + n++] = base62[b % 62];
    }
    token[AL_APIKEY_TOKEN_LEN] = '\0';
    OPENSSL_cleanse(pool, sizeof pool);
    return AL_OK;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > AL_LIMIT_APIKEY_NAME || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return false;
    return true;
}

/* Checks each comma-separated item of list with fn; the failing item goes into bad. */
static bool each_item(const char *list, bool (*fn)(const char *item), char *bad, size_t bad_size)
{
    char item[AL_LIMIT_APIKEY_LIST + 1];
    const char *p = list;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        snprintf(item, sizeof item, "%.*s", (int)len, p);
        if (!fn(item)) {
            snprintf(bad, bad_size, "%s", item);
            return false;
        }
        if (c == NULL)
            return true;
        p = c + 1;
    }
}

static bool scope_valid(const char *s)
{
    if (!strcmp(s, "chat") || !strcmp(s, "embed") || !strcmp(s, "metrics") || !strcmp(s, "pull") ||
        !strcmp(s, "admin") ||
        !strcmp(s, "rag:*"))
        return true;
    if (strncmp(s, "rag:", 4) != 0 || s[4] == '\0')
        return false;
    for (const char *p = s + 4; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
            return false;
    return true;
}

static bool pattern_valid(const char *s)
{
    if (*s == '\0' || strlen(s) > AL_LIMIT_REF)
        return false;
    for (const char *p = s; *p; p++)
        if (!isgraph((unsigned char)*p))
            return false;
    return true;
}

/* Calls fn(item) for each comma-separated item; true as soon as one does. */
static bool any_item(const char *list, const void *arg, bool (*fn)(const char *item, const void *arg))
{
    char item[AL_LIMIT_APIKEY_LIST + 1];
    const char *p = list;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        snprintf(item, sizeof item, "%.*s", (int)len, p);
        if (fn(item, arg))
            return true;
        if (c == NULL)
            return false;
        p = c + 1;
    }
}

static bool grants(const char *have, const void *arg)
{
    const char *want = arg;
    if (!strcmp(have, "admin") || !strcmp(have, want))
        return true;
    return !strcmp(have, "rag:*") && !strncmp(want, "rag:", 4);
}

bool al_access__scope_ok(const char *scopes, const char *scope)
{
    return any_item(scopes, scope, grants);
}

static bool matches(const char *pattern, const void *arg)
{
    const char *model = arg;
    if (fnmatch(pattern, model, 0) == 0)
        return true;
    char bare[AL_LIMIT_REF + 1];
    snprintf(bare, sizeof bare, "%.*s", (int)strcspn(model, ":@"), model);
    return strcmp(bare, model) != 0 && fnmatch(pattern, bare, 0) == 0;
}

bool al_access__model_ok(const char *patterns, const char *model)
{
    return any_item(patterns, model, matches);
}

enum al_rc al_access__parse_expiry(const char *text, time_t now, int64_t *out, struct al_err *err)
{
    char unit = 0;
    unsigned long n = 0;
    int used = 0;
    if (sscanf(text, "%lu%c%n", &n, &unit, &used) == 2 && text[used] == '\0' && (unit == 'd' || unit == 'h') &&
        n > 0 && n <= 36500ul * 24) {
        *out = (int64_t)now + (int64_t)n * (unit == 'd' ? 86400 : 3600);
        return AL_OK;
    }
    int64_t t = 0;
    if (al_time_parse(text, &t, NULL) != AL_OK)
        return al_err_set(err, AL_ERR_INVALID,
                          "cannot read expiry '%s': use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ, Nd or Nh", text);
    if (t <= (int64_t)now)
        return al_err_set(err, AL_ERR_INVALID, "expiry '%s' is in the past", text);
    *out = t;
    return AL_OK;
}

static void fill_info(const struct al_apikey_row *k, time_t now, struct al_apikey_info *info)
{
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", k->name);
    snprintf(info->id, sizeof info->id, "al-%s...", k->lookup);
    snprintf(info->scopes, sizeof info->scopes, "%s", k->scopes);
    snprintf(info->models, sizeof info->models, "%s", k->models);
    snprintf(info->created, sizeof info->created, "%s", k->created);
    snprintf(info->revoked, sizeof info->revoked, "%s", k->revoked);
    if (k->expires)
        al_time_format(k->expires, 0, AL_TIME_SECONDS, info->expires, sizeof info->expires);
    info->state = k->revoked[0] ? "revoked" : (k->expires && k->expires <= (int64_t)now) ? "expired" : "active";
}

static char *event_detail(const struct al_apikey_row *k)
{
    char exp[32] = "";
    if (k->expires)
        al_time_format(k->expires, 0, AL_TIME_SECONDS, exp, sizeof exp);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", k->name, "id", k->lookup, "scopes", k->scopes,
                          "models", k->models, "expires", exp);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    return s;
}

/* Inserts k, or with revoke revokes the live key called name (k receives
 * it), and records the event in the same transaction: both or neither. */
static enum al_rc change_key(struct al_index *ix, bool revoke, const char *name, struct al_apikey_row *k,
                             struct al_err *err)
{
    enum al_rc rc = al_index_begin(ix, err);
    if (rc)
        return rc;
    rc = revoke ? al_index_apikey_revoke(ix, name, k, err) : al_index_apikey_insert(ix, k, err);
    char *detail = rc ? NULL : event_detail(k);
    if (!rc && detail == NULL)
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (!rc)
        rc = al_index_event_append(ix, revoke ? "apikey-revoke" : "apikey-create", NULL, NULL, detail, err);
    if (!rc)
        rc = al_index_commit(ix, err);
    if (rc)
        al_index_rollback(ix);
    free(detail);
    return rc;
}

enum al_rc al_apikey__create_at(struct al_index *ix, const struct al_apikey_spec *spec, time_t now,
                                char token[AL_APIKEY_TOKEN_SIZE], struct al_apikey_info *info,
                                struct al_err *err)
{
    char bad[AL_LIMIT_APIKEY_LIST + 1];
    const char *models = spec->models ? spec->models : "*";
    if (spec->name == NULL || !name_ok(spec->name))
        return al_err_set(err, AL_ERR_INVALID,
                          "bad key name '%s': letters, digits, '.', '_', '-', starting with a letter or digit, "
                          "at most %u (AL_LIMIT_APIKEY_NAME)",
                          spec->name ? spec->name : "", AL_LIMIT_APIKEY_NAME);
    if (spec->scopes == NULL || strlen(spec->scopes) > AL_LIMIT_APIKEY_LIST || strlen(models) > AL_LIMIT_APIKEY_LIST)
        return al_err_set(err, AL_ERR_INVALID, "scopes and model patterns are required, each at most %u bytes "
                          "(AL_LIMIT_APIKEY_LIST)", AL_LIMIT_APIKEY_LIST);
    if (!each_item(spec->scopes, scope_valid, bad, sizeof bad))
        return al_err_set(err, AL_ERR_INVALID, "unknown scope '%s': use chat, embed, metrics, admin, rag:COLLECTION or rag:*",
                          bad);
    if (!each_item(models, pattern_valid, bad, sizeof bad))
        return al_err_set(err, AL_ERR_INVALID, "bad model pattern '%s'", bad);
    struct al_apikey_row k;
    memset(&k, 0, sizeof k);
    enum al_rc rc = AL_OK;
    if (spec->expires && (rc = al_access__parse_expiry(spec->expires, now, &k.expires, err)))
        return rc;
    snprintf(k.name, sizeof k.name, "%s", spec->name);
    snprintf(k.scopes, sizeof k.scopes, "%s", spec->scopes);
    snprintf(k.models, sizeof k.models, "%s", models);
    al_time_format((int64_t)now, 0, AL_TIME_SECONDS, k.created, sizeof k.created);
    if ((rc = random_token(token, err)))
        return rc;
    memcpy(k.lookup, token + 3, AL_APIKEY_LOOKUP_LEN);
    al_access__token_hash(token, k.hash);
    rc = change_key(ix, false, NULL, &k, err);
    if (rc) {
        OPENSSL_cleanse(token, AL_APIKEY_TOKEN_SIZE);
        return rc;
    }
    if (info)
        fill_info(&k, now, info);
    return AL_OK;
}

enum al_rc al_apikey_create(struct al_index *ix, const struct al_apikey_spec *spec,
                            char token[AL_APIKEY_TOKEN_SIZE], struct al_apikey_info *info, struct al_err *err)
{
    return al_apikey__create_at(ix, spec, time(NULL), token, info, err);
}

void al_access_wipe(void *p, size_t n) { OPENSSL_cleanse(p, n); }

enum al_rc al_apikey_revoke(struct al_index *ix, const char *name, struct al_err *err)
{
    struct al_apikey_row k;
    return change_key(ix, true, name, &k, err);
}

enum al_rc al_apikey_list(struct al_index *ix, struct al_apikey_info **out, size_t *n, struct al_err *err)
{
    *out = NULL;
    struct al_apikey_row *rows = NULL;
    enum al_rc rc = al_index_apikey_list(ix, &rows, n, err);
    if (rc)
        return rc;
    *out = calloc(*n ? *n : 1, sizeof **out);
    if (*out == NULL) {
        free(rows);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    time_t now = time(NULL);
    for (size_t i = 0; i < *n; i++)
        fill_info(&rows[i], now, &(*out)[i]);
    free(rows);
    return AL_OK;
}
