/*
 * index.c: schema, migrations, versions, tags and active pointers.
 */
#include "index/index_int.h"

#include "core/fs.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 30000

/* Migrations: entry i brings the schema from user_version i to i+1. Never
 * edit a shipped entry; append a new one. */
static const char *const migrations[] = {
    "CREATE TABLE models("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created TEXT NOT NULL,"
    "  max_seq INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE versions("
    "  id INTEGER PRIMARY KEY,"
    "  model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,"
    "  manifest TEXT NOT NULL,"
    "  manifest_size INTEGER NOT NULL,"
    "  config TEXT NOT NULL,"
    "  seq INTEGER NOT NULL DEFAULT 0,"
    "  created TEXT NOT NULL,"
    "  UNIQUE(model_id, manifest));"
    "CREATE TABLE files("
    "  version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,"
    "  path TEXT NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  media_type TEXT NOT NULL,"
    "  PRIMARY KEY(version_id, path));"
    "CREATE INDEX files_digest ON files(digest);"
    "CREATE TABLE tags("
    "  model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,"
    "  tag TEXT NOT NULL,"
    "  version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,"
    "  PRIMARY KEY(model_id, tag));"
    "CREATE TABLE active("
    "  model_id INTEGER PRIMARY KEY REFERENCES models(id) ON DELETE CASCADE,"
    "  version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,"
    "  changed TEXT NOT NULL);"
    "CREATE TABLE events("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  time TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  model TEXT NOT NULL DEFAULT '',"
    "  digest TEXT NOT NULL DEFAULT '',"
    "  actor TEXT NOT NULL DEFAULT '',"
    "  detail TEXT NOT NULL DEFAULT '{}',"
    "  prev TEXT NOT NULL,"
    "  hash TEXT NOT NULL);"
    /* Append-only, enforced at the SQL level too: edits must go around SQLite. */
    "CREATE TRIGGER events_no_update BEFORE UPDATE ON events"
    "  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;"
    "CREATE TRIGGER events_no_delete BEFORE DELETE ON events"
    "  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;",
    /* 2: API keys (src/access). Only a hash of each secret is stored; a
     * revoked key keeps its row, so its name and id stay on record. */
    "CREATE TABLE api_keys("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  lookup TEXT NOT NULL UNIQUE,"
    "  hash TEXT NOT NULL,"
    "  scopes TEXT NOT NULL,"
    "  models TEXT NOT NULL,"
    "  created TEXT NOT NULL,"
    "  expires INTEGER NOT NULL DEFAULT 0,"
    "  revoked TEXT NOT NULL DEFAULT '');"
    "CREATE UNIQUE INDEX api_keys_live_name ON api_keys(name) WHERE revoked='';",
    /* 3: the signatures a version arrived with (docs/internals/registry.md):
     * each an OCI referrer artifact in the blob store, one row per blob of
     * it (its manifest included, digest = referrer), so gc keeps them. */
    "CREATE TABLE referrers("
    "  version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,"
    "  referrer TEXT NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  PRIMARY KEY(version_id, referrer, digest));",
};

enum al_rc al_index__sqlerr(struct al_index *ix, struct al_err *err, const char *what)
{
    int code = sqlite3_errcode(ix->db);
    enum al_rc rc = (code == SQLITE_BUSY || code == SQLITE_LOCKED) ? AL_ERR_BUSY
                    : (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) ? AL_ERR_CORRUPT
                    : (code == SQLITE_CONSTRAINT) ? AL_ERR_EXISTS
                    : AL_ERR_IO;
    /* SQLite opens the file read-only when it cannot open it for writing
     * (an I/O error, a full disk); its "readonly database" then misleads. */
    if ((code & 0xff) == SQLITE_READONLY && sqlite3_db_readonly(ix->db, "main") == 1)
        return al_err_set(err, rc, "index '%s': %s: the file could not be opened for writing; check the disk and "
                          "the file's permissions", ix->path, what);
    return al_err_set(err, rc, "index '%s': %s: %s", ix->path, what, sqlite3_errmsg(ix->db));
}

void al_index__col(sqlite3_stmt *st, int i, char *out, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, size, "%s", t ? (const char *)t : "");
}

static enum al_rc exec(struct al_index *ix, const char *sql, struct al_err *err)
{
    if (sqlite3_exec(ix->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return al_index__sqlerr(ix, err, "cannot run statement");
    return AL_OK;
}

static enum al_rc migrate(struct al_index *ix, struct al_err *err)
{
    enum al_rc rc = exec(ix, "BEGIN IMMEDIATE", err);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(ix->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    int latest = (int)(sizeof migrations / sizeof migrations[0]);
    if (version > latest) {
        exec(ix, "ROLLBACK", NULL);
        return al_err_set(err, AL_ERR_INVALID,
                          "index '%s' has schema version %d, newer than this airlock knows (%d); upgrade airlock",
                          ix->path, version, latest);
    }
    for (int v = version; v < latest && rc == AL_OK; v++) {
        char pragma[48];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", v + 1);
        if (!(rc = exec(ix, migrations[v], err)))
            rc = exec(ix, pragma, err);
    }
    if (rc) {
        exec(ix, "ROLLBACK", NULL);
        return rc;
    }
    return exec(ix, "COMMIT", err);
}

static int user_version(struct al_index *ix)
{
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(ix->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* -1 when the database cannot be read at all. */
static int table_count(struct al_index *ix)
{
    sqlite3_stmt *st = NULL;
    int n = -1;
    if (sqlite3_prepare_v2(ix->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* An SQLite URI for path with immutable=1: '%', '?' and '#' escaped. */
static enum al_rc immutable_uri(const char *path, char *out, size_t size, struct al_err *err)
{
    static const char head[] = "file:", tail[] = "?immutable=1";
    size_t o = sizeof head - 1;
    memcpy(out, head, o);
    for (const char *p = path; *p; p++) {
        if (o + 4 + sizeof tail > size)
            return al_err_set(err, AL_ERR_LIMIT, "index path '%s' is too long (AL_LIMIT_PATH)", path);
        if (*p == '%' || *p == '?' || *p == '#')
            o += (size_t)snprintf(out + o, size - o, "%%%02X", (unsigned char)*p);
        else
            out[o++] = *p;
    }
    memcpy(out + o, tail, sizeof tail);
    return AL_OK;
}

/* Read-only: SQLite's read-only mode needs the WAL index (-shm), which a
 * read-only file system cannot give it after a clean close. Then the file is
 * opened immutable, which is exact only while nothing writes it: true on a
 * read-only mount, and a leftover -wal (unfinished writes) is refused. */
static enum al_rc open_read_only(struct al_index *ix, struct al_err *err)
{
    if (sqlite3_open_v2(ix->path, &ix->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK &&
        table_count(ix) >= 0)
        return AL_OK;
    sqlite3_close_v2(ix->db);
    ix->db = NULL;
    char wal[AL_LIMIT_PATH], uri[AL_LIMIT_PATH * 3];
    struct stat st;
    enum al_rc rc = al_path_fmt(wal, sizeof wal, err, "%s-wal", ix->path);
    if (rc)
        return rc;
    if (stat(wal, &st) == 0 && st.st_size > 0)
        return al_err_set(err, AL_ERR_IO,
                          "index '%s' cannot be written and has unfinished writes in '%s'; open the store once "
                          "where it can be written",
                          ix->path, wal);
    if ((rc = immutable_uri(ix->path, uri, sizeof uri, err)))
        return rc;
    if (sqlite3_open_v2(uri, &ix->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK)
        return al_index__sqlerr(ix, err, "cannot open read-only");
    return AL_OK;
}

static enum al_rc open_db(struct al_index *ix, enum al_index_mode mode, struct al_err *err)
{
    if (mode != AL_INDEX_CREATE) {
        /* Never let SQLite create (or start writing into) what is not there. */
        struct stat st;
        if (stat(ix->path, &st) != 0)
            return errno == ENOENT ? al_err_set(err, AL_ERR_NOT_FOUND, "index '%s' is missing", ix->path)
                                   : al_err_sys(err, AL_ERR_IO, "cannot open index '%s'", ix->path);
        if (st.st_size == 0)
            return al_err_set(err, AL_ERR_NOT_FOUND, "index '%s' is empty (0 bytes)", ix->path);
    }
    if (mode == AL_INDEX_READ_ONLY)
        return open_read_only(ix, err);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (mode == AL_INDEX_CREATE ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(ix->path, &ix->db, flags, NULL) != SQLITE_OK)
        return al_index__sqlerr(ix, err, "cannot open");
    return AL_OK;
}

enum al_rc al_index_open_mode(const char *db_path, enum al_index_mode mode, struct al_index **out,
                              struct al_err *err)
{
    *out = NULL;
    struct al_index *ix = calloc(1, sizeof *ix);
    if (ix == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    snprintf(ix->path, sizeof ix->path, "%s", db_path);
    ix->read_only = mode == AL_INDEX_READ_ONLY;
    enum al_rc rc = open_db(ix, mode, err);
    if (rc)
        goto fail;
    sqlite3_busy_timeout(ix->db, BUSY_TIMEOUT_MS);
    int version = user_version(ix), latest = (int)(sizeof migrations / sizeof migrations[0]);
    if (version < 0 || table_count(ix) < 0) {
        rc = al_index__sqlerr(ix, err, "cannot read");
        goto fail;
    }
    if (mode != AL_INDEX_CREATE && version == 0 && table_count(ix) == 0) {
        rc = al_err_set(err, AL_ERR_NOT_FOUND, "index '%s' is empty (no tables)", ix->path);
        goto fail;
    }
    if (ix->read_only) {
        if (version != latest)
            rc = al_err_set(err, AL_ERR_INVALID,
                            "index '%s' has schema version %d, this airlock %d; it cannot be %s read-only",
                            ix->path, version, latest, version > latest ? "read (upgrade airlock)" : "upgraded");
        else
            rc = exec(ix, "PRAGMA foreign_keys=ON;", err);
    } else {
        rc = exec(ix, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", err);
        if (!rc)
            rc = migrate(ix, err);
    }
    if (rc)
        goto fail;
    *out = ix;
    return AL_OK;
fail:
    al_index_free(ix);
    return rc;
}

enum al_rc al_index_open(const char *db_path, struct al_index **out, struct al_err *err)
{
    return al_index_open_mode(db_path, AL_INDEX_CREATE, out, err);
}

bool al_index_read_only(const struct al_index *ix) { return ix->read_only; }

enum al_rc al_index_never_recorded(struct al_index *ix, bool *out, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    *out = false;
    if (sqlite3_prepare_v2(ix->db,
                           "SELECT NOT EXISTS(SELECT 1 FROM events) AND"
                           " NOT EXISTS(SELECT 1 FROM sqlite_sequence WHERE name='events' AND seq>0)",
                           -1, &st, NULL) != SQLITE_OK)
        return al_index__sqlerr(ix, err, "cannot read the event log");
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0) != 0;
    sqlite3_finalize(st);
    return r == SQLITE_ROW ? AL_OK : al_index__sqlerr(ix, err, "cannot read the event log");
}

enum al_rc al_index_keys_lost(struct al_index *ix, bool *out, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    *out = false;
    if (sqlite3_prepare_v2(ix->db, "SELECT EXISTS(SELECT 1 FROM events WHERE kind='index-rebuilt')", -1, &st, NULL) !=
        SQLITE_OK)
        return al_index__sqlerr(ix, err, "cannot read the event log");
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0) != 0;
    sqlite3_finalize(st);
    return r == SQLITE_ROW ? AL_OK : al_index__sqlerr(ix, err, "cannot read the event log");
}

void al_index_free(struct al_index *ix)
{
    if (ix == NULL)
        return;
    sqlite3_close_v2(ix->db);
    free(ix);
}

enum al_rc al_index_begin(struct al_index *ix, struct al_err *err)
{
    if (ix->read_only)
        return al_err_set(err, AL_ERR_DENIED,
                          "index '%s' is open read-only (the store cannot be written here); this needs a writable store",
                          ix->path);
    enum al_rc rc = exec(ix, "BEGIN IMMEDIATE", err);
    if (!rc)
        ix->depth++;
    return rc;
}

enum al_rc al_index_commit(struct al_index *ix, struct al_err *err)
{
    enum al_rc rc = exec(ix, "COMMIT", err);
    if (!rc)
        ix->depth--;
    return rc;
}

void al_index_rollback(struct al_index *ix)
{
    if (ix->depth > 0) {
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
        ix->depth--;
    }
}

enum al_rc al_index_read_begin(struct al_index *ix, struct al_err *err)
{
    return exec(ix, "SAVEPOINT al_read", err);
}

void al_index_read_end(struct al_index *ix) { sqlite3_exec(ix->db, "RELEASE al_read", NULL, NULL, NULL); }

/* ---- helpers ---- */

static enum al_rc prepare(struct al_index *ix, const char *sql, sqlite3_stmt **st, struct al_err *err)
{
    if (sqlite3_prepare_v2(ix->db, sql, -1, st, NULL) != SQLITE_OK)
        return al_index__sqlerr(ix, err, "cannot prepare statement");
    return AL_OK;
}

static enum al_rc model_id(struct al_index *ix, const char *name, bool create, int64_t *id, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(ix, "SELECT id FROM models WHERE name=?", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return AL_OK;
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return al_index__sqlerr(ix, err, "cannot look up model");
    if (!create) {
        char close[256];
        al_index_close_matches(ix, name, close, sizeof close);
        if (close[0])
            return al_err_set(err, AL_ERR_NOT_FOUND, "no model named '%s'; did you mean: %s", name, close);
        return al_err_set(err, AL_ERR_NOT_FOUND, "no model named '%s'; 'airlock ls' lists the models", name);
    }
    char now[32];
    al_time_now_iso(now);
    if ((rc = prepare(ix, "INSERT INTO models(name, created) VALUES(?, ?)", &st, err)))
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
    r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return al_index__sqlerr(ix, err, "cannot add model");
    *id = sqlite3_last_insert_rowid(ix->db);
    return AL_OK;
}

#define VERSION_COLUMNS                                                                         \
    "SELECT v.id, m.name, v.manifest, v.config, v.manifest_size, v.seq, v.created,"             \
    " (SELECT group_concat(tag, ',') FROM (SELECT tag FROM tags t WHERE t.version_id=v.id ORDER BY tag)),"\
    " (SELECT coalesce(sum(size),0) FROM files f WHERE f.version_id=v.id),"                     \
    " EXISTS(SELECT 1 FROM active a WHERE a.version_id=v.id)"                                   \
    " FROM versions v JOIN models m ON m.id=v.model_id "

static void read_version(sqlite3_stmt *st, struct al_version *v)
{
    memset(v, 0, sizeof *v);
    v->id = sqlite3_column_int64(st, 0);
    al_index__col(st, 1, v->model, sizeof v->model);
    al_index__col(st, 2, v->manifest, sizeof v->manifest);
    al_index__col(st, 3, v->config, sizeof v->config);
    v->manifest_size = (uint64_t)sqlite3_column_int64(st, 4);
    v->seq = sqlite3_column_int64(st, 5);
    al_index__col(st, 6, v->created, sizeof v->created);
    al_index__col(st, 7, v->tags, sizeof v->tags);
    v->total_size = (uint64_t)sqlite3_column_int64(st, 8);
    v->active = sqlite3_column_int(st, 9) != 0;
}

/* Runs a one-row version query; AL_ERR_NOT_FOUND with msg when empty. */
static enum al_rc one_version(struct al_index *ix, sqlite3_stmt *st, struct al_version *out, struct al_err *err,
                              const char *not_found)
{
    int r = sqlite3_step(st);
    enum al_rc rc = AL_OK;
    if (r == SQLITE_ROW)
        read_version(st, out);
    else if (r == SQLITE_DONE)
        rc = al_err_set(err, AL_ERR_NOT_FOUND, "%s", not_found);
    else
        rc = al_index__sqlerr(ix, err, "cannot read version");
    sqlite3_finalize(st);
    return rc;
}

/* ---- versions ---- */

enum al_rc al_index_add_version(struct al_index *ix, const char *model, const char *manifest,
                                uint64_t manifest_size, const char *config, int64_t seq,
                                const struct al_file *files, size_t n_files, int64_t *id,
                                struct al_err *err)
{
    int64_t mid = 0;
    enum al_rc rc = model_id(ix, model, true, &mid, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = prepare(ix, "SELECT id FROM versions WHERE model_id=? AND manifest=?", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, mid);
    sqlite3_bind_text(st, 2, manifest, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return al_err_set(err, AL_ERR_EXISTS, "'%s@%s' is already in the store", model, manifest);
    }
    sqlite3_finalize(st);
    char now[32];
    al_time_now_iso(now);
    if ((rc = prepare(ix,
                      "INSERT INTO versions(model_id, manifest, manifest_size, config, seq, created)"
                      " VALUES(?,?,?,?,?,?)",
                      &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, mid);
    sqlite3_bind_text(st, 2, manifest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)manifest_size);
    sqlite3_bind_text(st, 4, config, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, seq);
    sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return al_index__sqlerr(ix, err, "cannot add version");
    *id = sqlite3_last_insert_rowid(ix->db);
    if ((rc = prepare(ix, "INSERT INTO files(version_id, path, digest, size, media_type) VALUES(?,?,?,?,?)", &st,
                      err)))
        return rc;
    for (size_t i = 0; i < n_files; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, *id);
        sqlite3_bind_text(st, 2, files[i].path, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, files[i].digest, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (int64_t)files[i].size);
        sqlite3_bind_text(st, 5, files[i].media_type, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = al_index__sqlerr(ix, err, "cannot add file");
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc)
        return rc;
    if (seq > 0) {
        if ((rc = prepare(ix, "UPDATE models SET max_seq=max(max_seq, ?) WHERE id=?", &st, err)))
            return rc;
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_int64(st, 2, mid);
        r = sqlite3_step(st);
        sqlite3_finalize(st);
        if (r != SQLITE_DONE)
            return al_index__sqlerr(ix, err, "cannot update sequence");
    }
    return AL_OK;
}

enum al_rc al_index_remove_version(struct al_index *ix, int64_t version_id, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(ix, "DELETE FROM versions WHERE id=?", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, version_id);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return al_index__sqlerr(ix, err, "cannot remove version");
    /* A model without versions is dropped; its max_seq survives in the events. */
    return sqlite3_exec(ix->db, "DELETE FROM models WHERE id NOT IN (SELECT model_id FROM versions)", NULL, NULL,
                        NULL) == SQLITE_OK
               ? AL_OK
               : al_index__sqlerr(ix, err, "cannot drop empty model");
}

enum al_rc al_index_get_version(struct al_index *ix, int64_t id, struct al_version *out, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(ix, VERSION_COLUMNS "WHERE v.id=?", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    return one_version(ix, st, out, err, "no such version");
}

enum al_rc al_index_resolve(struct al_index *ix, const char *text, struct al_version *out, struct al_err *err)
{
    struct al_ref ref;
    enum al_rc rc = al_index_ref_parse(text, &ref, err);
    int64_t mid = 0;
    if (rc || (rc = model_id(ix, ref.name, false, &mid, err)))
        return rc;
    sqlite3_stmt *st = NULL;
    char msg[512];
    if (ref.digest[0]) {
        rc = prepare(ix, VERSION_COLUMNS "WHERE v.model_id=? AND v.manifest=?", &st, err);
        if (rc)
            return rc;
        sqlite3_bind_text(st, 2, ref.digest, -1, SQLITE_STATIC);
        snprintf(msg, sizeof msg, "'%s' has no version %s; 'airlock ls %s' lists its versions", ref.name,
                 ref.digest, ref.name);
    } else if (ref.tag[0]) {
        rc = prepare(ix, VERSION_COLUMNS "JOIN tags t ON t.version_id=v.id WHERE v.model_id=? AND t.tag=?", &st,
                     err);
        if (rc)
            return rc;
        sqlite3_bind_text(st, 2, ref.tag, -1, SQLITE_STATIC);
        snprintf(msg, sizeof msg, "'%s' has no tag '%s'; 'airlock ls %s' lists its tags", ref.name, ref.tag,
                 ref.name);
    } else {
        rc = prepare(ix, VERSION_COLUMNS "JOIN active a ON a.version_id=v.id WHERE v.model_id=?", &st, err);
        if (rc)
            return rc;
        snprintf(msg, sizeof msg, "'%s' has no active version; activate one with 'airlock activate'", ref.name);
    }
    sqlite3_bind_int64(st, 1, mid);
    return one_version(ix, st, out, err, msg);
}

enum al_rc al_index_list_versions(struct al_index *ix, const char *model, struct al_version **rows,
                                  size_t *n, struct al_err *err)
{
    *rows = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(ix, model ? VERSION_COLUMNS "WHERE m.name=? ORDER BY m.name, v.id"
                                      : VERSION_COLUMNS "ORDER BY m.name, v.id",
                            &st, err);
    if (rc)
        return rc;
    if (model)
        sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
    size_t cap = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct al_version *p = realloc(*rows, cap * sizeof **rows);
            if (p == NULL) {
                rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
                break;
            }
            *rows = p;
        }
        read_version(st, &(*rows)[(*n)++]);
    }
    if (!rc && r != SQLITE_DONE)
        rc = al_index__sqlerr(ix, err, "cannot list versions");
    sqlite3_finalize(st);
    if (rc) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return rc;
}

enum al_rc al_index_list_files(struct al_index *ix, int64_t version_id, struct al_file **rows, size_t *n,
                               struct al_err *err)
{
    *rows = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(ix, "SELECT path, digest, size, media_type FROM files WHERE version_id=? ORDER BY rowid",
                            &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, version_id);
    size_t cap = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            struct al_file *p = realloc(*rows, cap * sizeof **rows);
            if (p == NULL) {
                rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
                break;
            }
            *rows = p;
        }
        struct al_file *f = &(*rows)[(*n)++];
        al_index__col(st, 0, f->path, sizeof f->path);
        al_index__col(st, 1, f->digest, sizeof f->digest);
        f->size = (uint64_t)sqlite3_column_int64(st, 2);
        al_index__col(st, 3, f->media_type, sizeof f->media_type);
    }
    if (!rc && r != SQLITE_DONE)
        rc = al_index__sqlerr(ix, err, "cannot list files");
    sqlite3_finalize(st);
    if (rc) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- tags and active pointers ---- */

static enum al_rc version_model(struct al_index *ix, const char *model, int64_t version_id, int64_t *mid,
                                struct al_err *err)
{
    enum al_rc rc = model_id(ix, model, false, mid, err);
    if (rc)
        return rc;
    struct al_version v;
    if ((rc = al_index_get_version(ix, version_id, &v, err)))
        return rc;
    if (strcmp(v.model, model) != 0)
        return al_err_set(err, AL_ERR_INVALID, "version %s belongs to '%s', not '%s'", v.manifest, v.model, model);
    return AL_OK;
}

enum al_rc al_index_set_tag(struct al_index *ix, const char *model, const char *tag, int64_t version_id,
                            struct al_err *err)
{
    if (!al_tag_valid(tag))
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not a valid tag (letters, digits, '_', '.', '-'; at most %u)",
                          tag, AL_LIMIT_TAG);
    int64_t mid = 0;
    sqlite3_stmt *st = NULL;
    enum al_rc rc = version_model(ix, model, version_id, &mid, err);
    if (rc || (rc = prepare(ix, "INSERT OR REPLACE INTO tags(model_id, tag, version_id) VALUES(?,?,?)", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, mid);
    sqlite3_bind_text(st, 2, tag, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, version_id);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    return r == SQLITE_DONE ? AL_OK : al_index__sqlerr(ix, err, "cannot set tag");
}

enum al_rc al_index_remove_tag(struct al_index *ix, const char *model, const char *tag, struct al_err *err)
{
    int64_t mid = 0;
    sqlite3_stmt *st = NULL;
    enum al_rc rc = model_id(ix, model, false, &mid, err);
    if (rc || (rc = prepare(ix, "DELETE FROM tags WHERE model_id=? AND tag=?", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, mid);
    sqlite3_bind_text(st, 2, tag, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return al_index__sqlerr(ix, err, "cannot remove tag");
    if (sqlite3_changes(ix->db) == 0)
        return al_err_set(err, AL_ERR_NOT_FOUND, "'%s' has no tag '%s'", model, tag);
    return AL_OK;
}

enum al_rc al_index_set_active(struct al_index *ix, const char *model, int64_t version_id, struct al_err *err)
{
    int64_t mid = 0;
    sqlite3_stmt *st = NULL;
    enum al_rc rc = version_model(ix, model, version_id, &mid, err);
    if (rc || (rc = prepare(ix, "INSERT OR REPLACE INTO active(model_id, version_id, changed) VALUES(?,?,?)", &st,
                            err)))
        return rc;
    char now[32];
    al_time_now_iso(now);
    sqlite3_bind_int64(st, 1, mid);
    sqlite3_bind_int64(st, 2, version_id);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    return r == SQLITE_DONE ? AL_OK : al_index__sqlerr(ix, err, "cannot set active version");
}

enum al_rc al_index_previous_version(struct al_index *ix, int64_t version_id, int64_t *prev, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(ix,
                            "SELECT p.id FROM versions p JOIN versions v ON v.model_id=p.model_id"
                            " WHERE v.id=? AND p.id<v.id ORDER BY p.id DESC LIMIT 1",
                            &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, version_id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *prev = sqlite3_column_int64(st, 0);
    else if (r == SQLITE_DONE)
        rc = al_err_set(err, AL_ERR_NOT_FOUND, "there is no older version to roll back to");
    else
        rc = al_index__sqlerr(ix, err, "cannot find previous version");
    sqlite3_finalize(st);
    return rc;
}

enum al_rc al_index_max_seq(struct al_index *ix, const char *model, int64_t *seq, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    *seq = 0;
    enum al_rc rc = prepare(ix, "SELECT max_seq FROM models WHERE name=?", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        *seq = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return AL_OK;
}

enum al_rc al_index_referenced(struct al_index *ix, char (**digests)[AL_DIGEST_SIZE], size_t *n,
                               struct al_err *err)
{
    *digests = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(ix,
                            "SELECT manifest FROM versions UNION SELECT config FROM versions"
                            " UNION SELECT digest FROM files UNION SELECT digest FROM referrers ORDER BY 1",
                            &st, err);
    if (rc)
        return rc;
    size_t cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char(*p)[AL_DIGEST_SIZE] = realloc(*digests, cap * sizeof *p);
            if (p == NULL) {
                rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
                break;
            }
            *digests = p;
        }
        al_index__col(st, 0, (*digests)[(*n)++], AL_DIGEST_SIZE);
    }
    sqlite3_finalize(st);
    return rc;
}

enum al_rc al_index_add_referrer(struct al_index *ix, int64_t version_id, const char *referrer,
                                 const char (*blobs)[AL_DIGEST_SIZE], size_t n, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(ix, "INSERT OR IGNORE INTO referrers(version_id, referrer, digest) VALUES(?,?,?)", &st,
                            err);
    for (size_t i = 0; i <= n && !rc; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, version_id);
        sqlite3_bind_text(st, 2, referrer, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, i < n ? blobs[i] : referrer, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = al_index__sqlerr(ix, err, "cannot record a referrer");
    }
    sqlite3_finalize(st);
    return rc;
}

enum al_rc al_index_referrers(struct al_index *ix, int64_t version_id, char (**out)[AL_DIGEST_SIZE], size_t *n,
                              struct al_err *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(ix, "SELECT DISTINCT referrer FROM referrers WHERE version_id=? ORDER BY rowid", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, version_id);
    size_t cap = 0;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            char(*p)[AL_DIGEST_SIZE] = realloc(*out, cap * sizeof *p);
            if (p == NULL) {
                rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
                break;
            }
            *out = p;
        }
        al_index__col(st, 0, (*out)[(*n)++], AL_DIGEST_SIZE);
    }
    if (!rc && s != SQLITE_DONE)
        rc = al_index__sqlerr(ix, err, "cannot list referrers");
    sqlite3_finalize(st);
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}
