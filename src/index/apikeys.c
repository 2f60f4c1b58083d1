/*
 * apikeys.c: the api_keys table (migration 2 in index.c).
 */
#include "index/apikeys.h"

#include "index/index_int.h"

enum al_rc al_index_apikey_insert(struct al_index *ix, const struct al_apikey_row *row, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ix->db,
                           "INSERT INTO api_keys(name, lookup, hash, scopes, models, created, expires)"
                           " VALUES(?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return al_index__sqlerr(ix, err, "cannot prepare key insert");
    const char *vals[] = {row->name, row->lookup, row->hash, row->scopes, row->models, row->created};
    for (int i = 0; i < 6; i++)
        sqlite3_bind_text(st, i + 1, vals[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, row->expires);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r == SQLITE_CONSTRAINT)
        return al_err_set(err, AL_ERR_EXISTS, "an API key named '%s' exists already; revoke it first", row->name);
    if (r != SQLITE_DONE)
        return al_index__sqlerr(ix, err, "cannot add API key");
    return AL_OK;
}

static void read_row(sqlite3_stmt *st, struct al_apikey_row *k)
{
    memset(k, 0, sizeof *k);
    k->id = sqlite3_column_int64(st, 0);
    al_index__col(st, 1, k->name, sizeof k->name);
    al_index__col(st, 2, k->lookup, sizeof k->lookup);
    al_index__col(st, 3, k->hash, sizeof k->hash);
    al_index__col(st, 4, k->scopes, sizeof k->scopes);
    al_index__col(st, 5, k->models, sizeof k->models);
    al_index__col(st, 6, k->created, sizeof k->created);
    k->expires = sqlite3_column_int64(st, 7);
    al_index__col(st, 8, k->revoked, sizeof k->revoked);
}

#define KEY_COLUMNS "SELECT id, name, lookup, hash, scopes, models, created, expires, revoked FROM api_keys "

enum al_rc al_index_apikey_revoke(struct al_index *ix, const char *name, struct al_apikey_row *row,
                                  struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ix->db, KEY_COLUMNS "WHERE name=? AND revoked=''", -1, &st, NULL) != SQLITE_OK)
        return al_index__sqlerr(ix, err, "cannot prepare key lookup");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    struct al_apikey_row k;
    if (r == SQLITE_ROW)
        read_row(st, &k);
    sqlite3_finalize(st);
    if (r == SQLITE_DONE)
        return al_err_set(err, AL_ERR_NOT_FOUND, "no live API key named '%s'; 'airlock apikey ls' lists them", name);
    if (r != SQLITE_ROW)
        return al_index__sqlerr(ix, err, "cannot look up API key");
    char now[32];
    al_time_now_iso(now);
    if (sqlite3_prepare_v2(ix->db, "UPDATE api_keys SET revoked=? WHERE id=?", -1, &st, NULL) != SQLITE_OK)
        return al_index__sqlerr(ix, err, "cannot prepare key revoke");
    sqlite3_bind_text(st, 1, now, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, k.id);
    r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return al_index__sqlerr(ix, err, "cannot revoke API key");
    if (row) {
        *row = k;
        snprintf(row->revoked, sizeof row->revoked, "%s", now);
    }
    return AL_OK;
}

enum al_rc al_index_apikey_list(struct al_index *ix, struct al_apikey_row **rows, size_t *n, struct al_err *err)
{
    *rows = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ix->db, KEY_COLUMNS "ORDER BY id", -1, &st, NULL) != SQLITE_OK)
        return al_index__sqlerr(ix, err, "cannot list API keys");
    size_t cap = 0;
    enum al_rc rc = AL_OK;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == AL_LIMIT_APIKEYS) {
            rc = al_err_set(err, AL_ERR_LIMIT, "more than %d API keys (AL_LIMIT_APIKEYS)", AL_LIMIT_APIKEYS);
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct al_apikey_row *p = realloc(*rows, cap * sizeof *p);
            if (p == NULL) {
                rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
                break;
            }
            *rows = p;
        }
        read_row(st, &(*rows)[(*n)++]);
    }
    if (rc == AL_OK && r != SQLITE_DONE)
        rc = al_index__sqlerr(ix, err, "cannot read API keys");
    sqlite3_finalize(st);
    if (rc) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return rc;
}

enum al_rc al_index_data_version(struct al_index *ix, int64_t *out, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ix->db, "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK)
        return al_index__sqlerr(ix, err, "cannot read data_version");
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return r == SQLITE_ROW ? AL_OK : al_index__sqlerr(ix, err, "cannot read data_version");
}
