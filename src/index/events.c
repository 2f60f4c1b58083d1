/*
 * events.c: the append-only, hash-chained event log.
 *
 * hash(n) = SHA-256(prev || US || id || US || time || US || kind || US ||
 *                   model || US || digest || US || actor || US || detail)
 * with US the ASCII unit separator; prev(n) = hash(n-1), 64 zeros for n = 1.
 * The id is inside the hash, so renumbering rows breaks the chain as well.
 */
#include "index/index_int.h"

#include <pwd.h>
#include <unistd.h>

#include "core/buf.h"

static const char zero_hash[AL_SHA256_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static void row_hash(const char *prev, int64_t id, const char *time, const char *kind, const char *model,
                     const char *digest, const char *actor, const char *detail, char out[AL_SHA256_HEX + 1])
{
    struct al_sha256 *h = al_sha256_new();
    char idtext[32];
    snprintf(idtext, sizeof idtext, "%" PRId64, id);
    const char *parts[] = {prev, idtext, time, kind, model, digest, actor, detail};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (i)
            al_sha256_update(h, "\x1f", 1);
        al_sha256_update(h, parts[i], strlen(parts[i]));
    }
    uint8_t raw[AL_SHA256_BYTES];
    al_sha256_final(h, raw);
    al_sha256_free(h);
    al_hex(raw, sizeof raw, out);
}

void al_index_operator(char *out, size_t size)
{
    const char *u = getenv("AIRLOCK_OPERATOR");
    if (u == NULL || *u == '\0') {
        struct passwd *pw = getpwuid(getuid());
        u = pw ? pw->pw_name : NULL;
    }
    if (u == NULL)
        snprintf(out, size, "uid:%ld", (long)getuid());
    else
        snprintf(out, size, "%s", u);
}

enum al_rc al_index_event_append(struct al_index *ix, const char *kind, const char *model,
                                 const char *digest, const char *detail, struct al_err *err)
{
    if (detail == NULL)
        detail = "{}";
    if (strlen(detail) > AL_LIMIT_EVENT_DETAIL)
        return al_err_set(err, AL_ERR_LIMIT, "event detail over %u bytes (AL_LIMIT_EVENT_DETAIL)",
                          AL_LIMIT_EVENT_DETAIL);
    bool own = ix->depth == 0;
    enum al_rc rc = own ? al_index_begin(ix, err) : AL_OK;
    if (rc)
        return rc;
    char prev[AL_SHA256_HEX + 1];
    memcpy(prev, zero_hash, sizeof prev);
    int64_t next_id = 1;
    sqlite3_stmt *st = NULL;
    /* The next id comes from sqlite_sequence so that a deleted last row is
     * never silently reused. */
    if (sqlite3_prepare_v2(ix->db, "SELECT hash FROM events ORDER BY id DESC LIMIT 1", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        al_index__col(st, 0, prev, sizeof prev);
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(ix->db, "SELECT seq FROM sqlite_sequence WHERE name='events'", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        next_id = sqlite3_column_int64(st, 0) + 1;
    sqlite3_finalize(st);

    char now[32], actor[64], hash[AL_SHA256_HEX + 1];
    al_time_now_iso(now);
    al_index_operator(actor, sizeof actor);
    model = model ? model : "";
    digest = digest ? digest : "";
    row_hash(prev, next_id, now, kind, model, digest, actor, detail, hash);
    if (sqlite3_prepare_v2(ix->db,
                           "INSERT INTO events(id, time, kind, model, digest, actor, detail, prev, hash)"
                           " VALUES(?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = al_index__sqlerr(ix, err, "cannot prepare event");
    } else {
        sqlite3_bind_int64(st, 1, next_id);
        const char *vals[] = {now, kind, model, digest, actor, detail, prev, hash};
        for (int i = 0; i < 8; i++)
            sqlite3_bind_text(st, i + 2, vals[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = al_index__sqlerr(ix, err, "cannot append event");
    }
    sqlite3_finalize(st);
    if (own) {
        if (rc)
            al_index_rollback(ix);
        else
            rc = al_index_commit(ix, err);
    }
    return rc;
}

static void read_event(sqlite3_stmt *st, struct al_event *e)
{
    memset(e, 0, sizeof *e);
    e->id = sqlite3_column_int64(st, 0);
    al_index__col(st, 1, e->time, sizeof e->time);
    al_index__col(st, 2, e->kind, sizeof e->kind);
    al_index__col(st, 3, e->model, sizeof e->model);
    al_index__col(st, 4, e->digest, sizeof e->digest);
    al_index__col(st, 5, e->actor, sizeof e->actor);
    const unsigned char *d = sqlite3_column_text(st, 6);
    e->detail = strdup(d ? (const char *)d : "");
    al_index__col(st, 7, e->prev, sizeof e->prev);
    al_index__col(st, 8, e->hash, sizeof e->hash);
}

enum al_rc al_index_list_events(struct al_index *ix, const char *model, const char *digest,
                                struct al_event **rows, size_t *n, struct al_err *err)
{
    *rows = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ix->db,
                           "SELECT id, time, kind, model, digest, actor, detail, prev, hash FROM events"
                           " WHERE (?1 IS NULL OR model=?1) AND (?2 IS NULL OR digest=?2) ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return al_index__sqlerr(ix, err, "cannot list events");
    if (model)
        sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
    if (digest)
        sqlite3_bind_text(st, 2, digest, -1, SQLITE_STATIC);
    size_t cap = 0;
    enum al_rc rc = AL_OK;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            struct al_event *p = realloc(*rows, cap * sizeof *p);
            if (p == NULL) {
                rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
                break;
            }
            *rows = p;
        }
        read_event(st, &(*rows)[(*n)++]);
    }
    sqlite3_finalize(st);
    return rc;
}

void al_index_events_free(struct al_event *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(rows[i].detail);
    free(rows);
}

enum al_rc al_index_verify_events(struct al_index *ix, al_chain_problem_fn *fn, void *ud, size_t *checked,
                                  struct al_err *err)
{
    struct al_event *rows = NULL;
    size_t n = 0;
    /* The rows and SQLite's sequence from one snapshot: read apart, an event
     * appended between them (a tag by another process) looked deleted. */
    enum al_rc rc = al_index_read_begin(ix, err);
    if (rc)
        return rc;
    if ((rc = al_index_list_events(ix, NULL, NULL, &rows, &n, err))) {
        al_index_read_end(ix);
        return rc;
    }
    size_t problems = 0;
    char msg[256], expect_prev[AL_SHA256_HEX + 1], h[AL_SHA256_HEX + 1];
    memcpy(expect_prev, zero_hash, sizeof expect_prev);
    int64_t expect_id = 1;
    for (size_t i = 0; i < n; i++) {
        struct al_event *e = &rows[i];
        if (e->id != expect_id) {
            snprintf(msg, sizeof msg, "event%s %" PRId64 "%s%" PRId64 " missing (deleted)",
                     e->id - expect_id > 1 ? "s" : "", expect_id, e->id - expect_id > 1 ? "-" : "",
                     e->id - expect_id > 1 ? e->id - 1 : expect_id);
            if (e->id - expect_id <= 1)
                snprintf(msg, sizeof msg, "event %" PRId64 " is missing (deleted)", expect_id);
            fn(ud, expect_id, msg);
            problems++;
        } else if (strcmp(e->prev, expect_prev) != 0) {
            snprintf(msg, sizeof msg, "event %" PRId64 " does not follow the event before it (chain broken)", e->id);
            fn(ud, e->id, msg);
            problems++;
        }
        row_hash(e->prev, e->id, e->time, e->kind, e->model, e->digest, e->actor, e->detail, h);
        if (strcmp(h, e->hash) != 0) {
            snprintf(msg, sizeof msg, "event %" PRId64 " (%s) was edited: its content does not match its hash", e->id,
                     e->kind);
            fn(ud, e->id, msg);
            problems++;
        }
        memcpy(expect_prev, e->hash, sizeof expect_prev);
        expect_id = e->id + 1;
    }
    /* A deleted last row leaves no gap; the sequence SQLite keeps shows it. */
    sqlite3_stmt *st = NULL;
    int64_t seq = 0;
    if (sqlite3_prepare_v2(ix->db, "SELECT seq FROM sqlite_sequence WHERE name='events'", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        seq = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    al_index_read_end(ix);
    if (seq > expect_id - 1) {
        snprintf(msg, sizeof msg, "event%s %" PRId64 "%s missing at the end of the log (deleted)",
                 seq > expect_id ? "s from" : "", expect_id, seq > expect_id ? " on" : " is");
        fn(ud, expect_id, msg);
        problems++;
    }
    if (checked)
        *checked = n;
    al_index_events_free(rows, n);
    if (problems)
        return al_err_set(err, AL_ERR_CORRUPT, "the event log is damaged: %zu problem%s", problems,
                          problems == 1 ? "" : "s");
    return AL_OK;
}
