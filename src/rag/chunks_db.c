/*
 * chunks_db.c: a collection's SQLite database, chunks.db. The one file of
 * src/rag that includes sqlite3.h (the index module owns the main database;
 * a collection is a separate database, see docs/ARCHITECTURE.md).
 *
 * Tables: meta (key/value), docs, chunks (text, metadata, the vector as a
 * float32 BLOB), chunks_fts (FTS5, external content over chunks, porter
 * stemming) kept in step by triggers. Vectors live here so that the FAISS
 * file can always be rebuilt from the database, which is the truth.
 */
#include "rag/rag_int.h"

#include <sqlite3.h>

#define SCHEMA_VERSION 1

struct al_rag_db {
    sqlite3 *db;
    sqlite3_stmt *ins_chunk;
    sqlite3_stmt *df_add; /* terms: df += ?2 for term ?1 */
};

static enum al_rc db_fail(struct al_rag_db *db, struct al_err *err, const char *what)
{
    int code = sqlite3_errcode(db->db);
    const char *file = sqlite3_db_filename(db->db, "main");
    file = file ? file : "";
    enum al_rc rc = code == SQLITE_BUSY || code == SQLITE_LOCKED ? AL_ERR_BUSY
                    : code == SQLITE_CORRUPT || code == SQLITE_NOTADB ? AL_ERR_CORRUPT
                    : code == SQLITE_NOMEM ? AL_ERR_NOMEM
                                              : AL_ERR_IO;
    /* A collection opened for writing reports "readonly" when SQLite could
     * not open the file or its WAL for writing (an I/O error, a full disk):
     * an I/O error, not a refusal. Read-only collections are refused before. */
    if (code == SQLITE_READONLY)
        return al_err_set(err, AL_ERR_IO, "collection database '%s': %s: the file could not be opened for writing; "
                          "check the disk and the file's permissions", file, what);
    return al_err_set(err, rc, "collection database '%s': %s: %s", file, what, sqlite3_errmsg(db->db));
}

static enum al_rc exec(struct al_rag_db *db, const char *sql, struct al_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        enum al_rc rc = db_fail(db, err, msg ? msg : sql);
        sqlite3_free(msg);
        return rc;
    }
    return AL_OK;
}

static enum al_rc prepare(struct al_rag_db *db, const char *sql, sqlite3_stmt **st, struct al_err *err)
{
    if (sqlite3_prepare_v2(db->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_fail(db, err, "prepare");
    return AL_OK;
}

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS docs(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE,"
    "  digest TEXT NOT NULL, format TEXT NOT NULL, size INTEGER NOT NULL, pages INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS docs_digest ON docs(digest);"
    "CREATE TABLE IF NOT EXISTS chunks(id INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL,"
    "  doc INTEGER NOT NULL REFERENCES docs(id), page INTEGER NOT NULL, heading TEXT NOT NULL,"
    "  start INTEGER NOT NULL, \"end\" INTEGER NOT NULL, ntok INTEGER NOT NULL, text TEXT NOT NULL, vec BLOB);"
    "CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc);"
    "CREATE INDEX IF NOT EXISTS chunks_cid ON chunks(chunk_id);"
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(heading, text, content='chunks',"
    "  content_rowid='id', tokenize='porter unicode61 remove_diacritics 2');"
    "CREATE TABLE IF NOT EXISTS terms(term TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN"
    "  INSERT INTO chunks_fts(rowid, heading, text) VALUES (new.id, new.heading, new.text); END;"
    "CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN"
    "  INSERT INTO chunks_fts(chunks_fts, rowid, heading, text) VALUES ('delete', old.id, old.heading, old.text);"
    "  END;";

enum al_rc al_rag_db_open(const char *path, bool create, bool writable, struct al_rag_db **out,
                          struct al_err *err)
{
    struct al_rag_db *db = calloc(1, sizeof *db);
    if (!db)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    int flags = (writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | (create ? SQLITE_OPEN_CREATE : 0) |
                SQLITE_OPEN_FULLMUTEX;
    enum al_rc rc = AL_OK;
    if (sqlite3_open_v2(path, &db->db, flags, NULL) != SQLITE_OK) {
        rc = al_err_set(err, create ? AL_ERR_IO : AL_ERR_NOT_FOUND, "cannot open '%s': %s", path,
                        db->db ? sqlite3_errmsg(db->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(db->db, 30000);
    if (writable && (rc = exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err)))
        goto fail;
    if (create) {
        if ((rc = exec(db, "BEGIN IMMEDIATE", err)))
            goto fail;
        if ((rc = exec(db, schema, err)) || (rc = exec(db, "PRAGMA user_version=1; COMMIT", err))) {
            sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
    }
    sqlite3_stmt *st = NULL;
    if ((rc = prepare(db, "PRAGMA user_version", &st, err)))
        goto fail;
    int ver = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (ver != SCHEMA_VERSION) {
        rc = al_err_set(err, AL_ERR_CORRUPT, "'%s' is not a collection database of this version (schema %d)",
                        path, ver);
        goto fail;
    }
    *out = db;
    return AL_OK;
fail:
    al_rag_db_free(db);
    return rc;
}

void al_rag_db_free(struct al_rag_db *db)
{
    if (!db)
        return;
    sqlite3_finalize(db->ins_chunk);
    sqlite3_finalize(db->df_add);
    sqlite3_close(db->db);
    free(db);
}

enum al_rc al_rag_db_begin(struct al_rag_db *db, struct al_err *err) { return exec(db, "BEGIN IMMEDIATE", err); }
enum al_rc al_rag_db_commit(struct al_rag_db *db, struct al_err *err) { return exec(db, "COMMIT", err); }
void al_rag_db_rollback(struct al_rag_db *db) { sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL); }

enum al_rc al_rag_db_meta_get(struct al_rag_db *db, const char *key, char **val, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(db, "SELECT value FROM meta WHERE key = ?", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        *val = strdup((const char *)sqlite3_column_text(st, 0));
        if (!*val)
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    } else if (s == SQLITE_DONE) {
        rc = al_err_set(err, AL_ERR_NOT_FOUND, "collection database has no '%s'", key);
    } else {
        rc = db_fail(db, err, "read meta");
    }
    sqlite3_finalize(st);
    return rc;
}

enum al_rc al_rag_db_meta_set(struct al_rag_db *db, const char *key, const char *val, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(db, "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, val, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(db, err, "write meta");
    sqlite3_finalize(st);
    return rc;
}

enum al_rc al_rag_db_doc_find(struct al_rag_db *db, const char *key, bool or_digest, int64_t *id,
                              char digest_out[AL_DIGEST_SIZE], struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(db, or_digest ? "SELECT id, digest FROM docs WHERE path = ?1 OR digest = ?1"
                                            " ORDER BY path = ?1 DESC, path LIMIT 1"
                                          : "SELECT id, digest FROM docs WHERE path = ?1",
                            &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        if (digest_out)
            snprintf(digest_out, AL_DIGEST_SIZE, "%s", (const char *)sqlite3_column_text(st, 1));
    } else if (s == SQLITE_DONE) {
        rc = AL_ERR_NOT_FOUND; /* quiet: callers decide whether it is an error */
    } else {
        rc = db_fail(db, err, "find document");
    }
    sqlite3_finalize(st);
    return rc;
}

enum al_rc al_rag_db_doc_insert(struct al_rag_db *db, const struct al_rag_docrow *d, int64_t *id,
                                struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(db, "INSERT INTO docs(path, digest, format, size, pages) VALUES (?, ?, ?, ?, ?)", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, d->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, d->digest, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, d->format, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)d->size);
    sqlite3_bind_int(st, 5, d->pages);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(db, err, "insert document");
    else
        *id = sqlite3_last_insert_rowid(db->db);
    sqlite3_finalize(st);
    return rc;
}

/* Adds delta to the document frequency of every distinct word of text (the
 * words as al_rag_words splits them), in the open transaction. */
static enum al_rc df_update(struct al_rag_db *db, const char *text, int delta, struct al_err *err)
{
    enum al_rc rc;
    if (!db->df_add &&
        (rc = prepare(db, "INSERT INTO terms(term, df) VALUES (?1, ?2) ON CONFLICT(term) DO UPDATE SET df = df + ?2",
                      &db->df_add, err)))
        return rc;
    char(*w)[AL_RAG_WORD_MAX] = malloc(AL_RAG_WORDS_MAX * sizeof *w);
    if (!w)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    size_t n = al_rag_words(text, w, AL_RAG_WORDS_MAX, true);
    rc = AL_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        sqlite3_reset(db->df_add);
        sqlite3_bind_text(db->df_add, 1, w[i], -1, SQLITE_STATIC);
        sqlite3_bind_int(db->df_add, 2, delta);
        if (sqlite3_step(db->df_add) != SQLITE_DONE)
            rc = db_fail(db, err, "update term frequencies");
    }
    sqlite3_reset(db->df_add);
    free(w);
    return rc;
}

enum al_rc al_rag_db_doc_delete(struct al_rag_db *db, int64_t id, size_t *n_chunks, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(db, "SELECT text FROM chunks WHERE doc = ?", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int s;
    while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW)
        rc = df_update(db, (const char *)sqlite3_column_text(st, 0), -1, err);
    sqlite3_finalize(st);
    if (rc || (rc = prepare(db, "DELETE FROM chunks WHERE doc = ?", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(db, err, "delete chunks");
    else if (n_chunks)
        *n_chunks = (size_t)sqlite3_changes(db->db);
    sqlite3_finalize(st);
    if (rc || (rc = prepare(db, "DELETE FROM docs WHERE id = ?", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(db, err, "delete document");
    sqlite3_finalize(st);
    return rc;
}

enum al_rc al_rag_db_chunk_insert(struct al_rag_db *db, int64_t doc, int64_t rowid, const struct al_rag_chunk *c,
                                  const float *vec, int dim, int64_t *rowid_out, struct al_err *err)
{
    enum al_rc rc;
    if (!db->ins_chunk &&
        (rc = prepare(db,
                      "INSERT INTO chunks(id, chunk_id, doc, page, heading, start, \"end\", ntok, text, vec)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      &db->ins_chunk, err)))
        return rc;
    sqlite3_stmt *st = db->ins_chunk;
    sqlite3_reset(st);
    if (rowid >= 0)
        sqlite3_bind_int64(st, 1, rowid);
    else
        sqlite3_bind_null(st, 1);
    sqlite3_bind_text(st, 2, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, doc);
    sqlite3_bind_int(st, 4, c->page);
    sqlite3_bind_text(st, 5, c->heading ? c->heading : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)c->start);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)c->end);
    sqlite3_bind_int(st, 8, c->ntok);
    sqlite3_bind_text(st, 9, c->text, -1, SQLITE_STATIC);
    if (vec)
        sqlite3_bind_blob(st, 10, vec, (int)((size_t)dim * sizeof(float)), SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 10);
    rc = sqlite3_step(st) == SQLITE_DONE ? AL_OK : db_fail(db, err, "insert chunk");
    if (!rc && rowid_out)
        *rowid_out = sqlite3_last_insert_rowid(db->db);
    sqlite3_clear_bindings(st);
    sqlite3_reset(st);
    return rc ? rc : df_update(db, c->text, 1, err);
}

static enum al_rc count(struct al_rag_db *db, const char *sql, size_t *n, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(db, sql, &st, err);
    if (rc)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = (size_t)sqlite3_column_int64(st, 0);
    else
        rc = db_fail(db, err, "count");
    sqlite3_finalize(st);
    return rc;
}

enum al_rc al_rag_db_counts(struct al_rag_db *db, size_t *docs, size_t *chunks, struct al_err *err)
{
    enum al_rc rc = count(db, "SELECT count(*) FROM docs", docs, err);
    return rc ? rc : count(db, "SELECT count(*) FROM chunks", chunks, err);
}

enum al_rc al_rag_db_bm25(struct al_rag_db *db, const char *match, int k, int64_t *ids, double *scores,
                          size_t *n, struct al_err *err)
{
    *n = 0;
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(db,
                            "SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ?"
                            " ORDER BY s, rowid LIMIT ?",
                            &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, k);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW && *n < (size_t)k) {
        ids[*n] = sqlite3_column_int64(st, 0);
        scores[*n] = -sqlite3_column_double(st, 1);
        (*n)++;
    }
    if (s != SQLITE_DONE && s != SQLITE_ROW)
        rc = db_fail(db, err, "full-text search");
    sqlite3_finalize(st);
    return rc;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return strdup(s ? s : "");
}

enum al_rc al_rag_db_hit(struct al_rag_db *db, struct al_rag_hit *h, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(db,
                            "SELECT c.chunk_id, d.path, c.heading, c.text, c.page, c.start, c.\"end\""
                            " FROM chunks c JOIN docs d ON d.id = c.doc WHERE c.id = ?",
                            &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, h->rowid);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        snprintf(h->chunk_id, sizeof h->chunk_id, "%s", (const char *)sqlite3_column_text(st, 0));
        h->doc = col_dup(st, 1);
        h->heading = col_dup(st, 2);
        h->text = col_dup(st, 3);
        h->page = sqlite3_column_int(st, 4);
        h->start = (uint64_t)sqlite3_column_int64(st, 5);
        h->end = (uint64_t)sqlite3_column_int64(st, 6);
        if (!h->doc || !h->heading || !h->text)
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    } else {
        rc = s == SQLITE_DONE ? al_err_set(err, AL_ERR_CORRUPT, "the vector index names chunk %lld, which is not"
                                                                " in the collection", (long long)h->rowid)
                              : db_fail(db, err, "read chunk");
    }
    sqlite3_finalize(st);
    return rc;
}

enum al_rc al_rag_db_each_vector(struct al_rag_db *db, int dim, al_rag_vec_fn *fn, void *ud, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(db, "SELECT id, vec FROM chunks ORDER BY id", &st, err);
    if (rc)
        return rc;
    int s;
    while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const void *blob = sqlite3_column_blob(st, 1);
        if (!blob || sqlite3_column_bytes(st, 1) != (int)((size_t)dim * sizeof(float))) {
            rc = al_err_set(err, AL_ERR_CORRUPT, "chunk %lld has no vector of %d dimensions", (long long)id, dim);
            break;
        }
        rc = fn(ud, id, blob, err);
    }
    if (!rc && s != SQLITE_DONE)
        rc = db_fail(db, err, "read vectors");
    sqlite3_finalize(st);
    return rc;
}

enum al_rc al_rag_db_dump(struct al_rag_db *db, FILE *out, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(db,
                            "SELECT c.chunk_id, d.path, d.digest, c.page, c.heading, c.start, c.\"end\", c.ntok,"
                            " c.text, c.vec FROM chunks c JOIN docs d ON d.id = c.doc"
                            " ORDER BY d.path, c.start, c.\"end\", c.chunk_id",
                            &st, err);
    if (rc)
        return rc;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        uint8_t raw[AL_SHA256_BYTES];
        char th[AL_SHA256_HEX + 1], vh[AL_SHA256_HEX + 1];
        const char *text = (const char *)sqlite3_column_text(st, 8);
        al_sha256_buf(text, (size_t)sqlite3_column_bytes(st, 8), raw);
        al_hex(raw, sizeof raw, th);
        al_sha256_buf(sqlite3_column_blob(st, 9), (size_t)sqlite3_column_bytes(st, 9), raw);
        al_hex(raw, sizeof raw, vh);
        fprintf(out, "%s\t%s\t%s\t%d\t%s\t%lld\t%lld\t%d\t%s\t%s\n", sqlite3_column_text(st, 0),
                sqlite3_column_text(st, 1), sqlite3_column_text(st, 2), sqlite3_column_int(st, 3),
                sqlite3_column_text(st, 4), (long long)sqlite3_column_int64(st, 5),
                (long long)sqlite3_column_int64(st, 6), sqlite3_column_int(st, 7), th, vh);
    }
    if (s != SQLITE_DONE)
        rc = db_fail(db, err, "dump");
    sqlite3_finalize(st);
    return rc;
}

enum al_rc al_rag_db_list_docs(struct al_rag_db *db, al_rag_doc_fn *fn, void *ud, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(db,
                            "SELECT d.path, d.digest, d.format, d.pages, (SELECT count(*) FROM chunks c"
                            " WHERE c.doc = d.id) FROM docs d ORDER BY d.path",
                            &st, err);
    if (rc)
        return rc;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        fn(ud, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           (const char *)sqlite3_column_text(st, 2), sqlite3_column_int(st, 3),
           (size_t)sqlite3_column_int64(st, 4));
    if (s != SQLITE_DONE)
        rc = db_fail(db, err, "list documents");
    sqlite3_finalize(st);
    return rc;
}

enum al_rc al_rag_db_set_vector(struct al_rag_db *db, int64_t rowid, const float *vec, int dim, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(db, "UPDATE chunks SET vec = ? WHERE id = ?", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_blob(st, 1, vec, (int)((size_t)dim * sizeof(float)), SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, rowid);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(db, err, "store a vector");
    else if (sqlite3_changes(db->db) != 1)
        rc = al_err_set(err, AL_ERR_INVALID, "the vector index has id %lld, which the chunk table lacks",
                        (long long)rowid);
    sqlite3_finalize(st);
    return rc;
}

enum al_rc al_rag_db_term_df(struct al_rag_db *db, const char *word, int64_t *df, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(db, "SELECT df FROM terms WHERE term = ?", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, word, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    *df = s == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        rc = db_fail(db, err, "term statistics");
    sqlite3_finalize(st);
    return rc;
}

/* ---- snapshots ---- */

enum al_rc al_rag_db_snapshot(struct al_rag_db *db, const char *path, struct al_err *err)
{
    sqlite3_stmt *st = NULL;
    enum al_rc rc = prepare(db, "VACUUM INTO ?1", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(db, err, "VACUUM INTO");
    sqlite3_finalize(st);
    if (rc)
        return rc;
    /* The copy: read-only, rollback journal (no -wal/-shm beside a file in
     * the store), 4096-byte pages, rewritten whole so its bytes depend only
     * on its content. */
    struct al_rag_db cp = {0};
    if (sqlite3_open_v2(path, &cp.db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = al_err_set(err, AL_ERR_IO, "cannot open '%s': %s", path, cp.db ? sqlite3_errmsg(cp.db) : "out of memory");
    } else {
        rc = exec(&cp, "PRAGMA journal_mode=DELETE; UPDATE meta SET value='1' WHERE key='readonly';"
                       "PRAGMA page_size=4096; VACUUM;", err);
    }
    if (cp.db && sqlite3_close(cp.db) != SQLITE_OK && !rc)
        rc = al_err_set(err, AL_ERR_IO, "cannot close '%s'", path);
    return rc;
}
