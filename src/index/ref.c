/*
 * ref.c: parsing and validating references, and close matches for typos.
 *
 * name:  lowercase letters, digits, and '.', '_', '-', '/' inside; starts with
 *        a letter or digit; no "..", no "//"; at most AL_LIMIT_NAME bytes.
 * tag:   the OCI tag grammar [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
 */
#include "index/index_int.h"

#include <ctype.h>

bool al_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > AL_LIMIT_NAME || !(islower((unsigned char)name[0]) || isdigit((unsigned char)name[0])))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(islower(c) || isdigit(c) || c == '.' || c == '_' || c == '-' || c == '/'))
            return false;
        if (i > 0 && (c == '.' || c == '/') && name[i - 1] == c)
            return false;
    }
    return name[n - 1] != '/' && strstr(name, "/.") == NULL;
}

bool al_tag_valid(const char *tag)
{
    size_t n = strlen(tag);
    if (n == 0 || n > AL_LIMIT_TAG || !(isalnum((unsigned char)tag[0]) || tag[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)tag[i];
        if (!(isalnum(c) || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

enum al_rc al_index_ref_parse(const char *text, struct al_ref *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    size_t len = strlen(text);
    if (len > AL_LIMIT_REF)
        return al_err_set(err, AL_ERR_LIMIT, "reference is longer than %u bytes (AL_LIMIT_REF)", AL_LIMIT_REF);
    const char *at = strchr(text, '@');
    size_t name_end = at ? (size_t)(at - text) : len;
    if (at) {
        if (!al_digest_valid(at + 1))
            return al_err_set(err, AL_ERR_INVALID, "'%s' is not a valid reference: expected NAME@sha256:<64 hex digits>",
                              text);
        memcpy(out->digest, at + 1, AL_DIGEST_SIZE);
    }
    const char *colon = memchr(text, ':', name_end);
    if (colon) {
        size_t tl = name_end - (size_t)(colon - text) - 1;
        if (tl > AL_LIMIT_TAG)
            return al_err_set(err, AL_ERR_LIMIT, "tag is longer than %u bytes (AL_LIMIT_TAG)", AL_LIMIT_TAG);
        memcpy(out->tag, colon + 1, tl);
        out->tag[tl] = '\0';
        name_end = (size_t)(colon - text);
        if (!al_tag_valid(out->tag))
            return al_err_set(err, AL_ERR_INVALID, "'%s' is not a valid tag (letters, digits, '_', '.', '-')", out->tag);
    }
    if (name_end > AL_LIMIT_NAME)
        return al_err_set(err, AL_ERR_LIMIT, "model name is longer than %u bytes (AL_LIMIT_NAME)", AL_LIMIT_NAME);
    memcpy(out->name, text, name_end);
    out->name[name_end] = '\0';
    if (!al_name_valid(out->name))
        return al_err_set(err, AL_ERR_INVALID,
                          "'%s' is not a valid model name (lowercase letters, digits, '.', '_', '-', '/')",
                          out->name);
    if (out->tag[0] && out->digest[0])
        return al_err_set(err, AL_ERR_INVALID, "'%s': give a tag or a digest, not both", text);
    return AL_OK;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

void al_index_close_matches(struct al_index *ix, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ix->db, "SELECT name FROM models ORDER BY name", -1, &st, NULL) != SQLITE_OK)
        return;
    size_t used = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *cand = (const char *)sqlite3_column_text(st, 0);
        if (cand == NULL)
            continue;
        size_t limit = strlen(name) <= 4 ? 1 : 2;
        if (edit_distance(name, cand) > limit && strstr(cand, name) == NULL)
            continue;
        int n = snprintf(out + used, size - used, "%s%s", used ? ", " : "", cand);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
    sqlite3_finalize(st);
}
