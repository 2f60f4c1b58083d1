/*
 * verify.c: reading the audit log back and checking it: each line's own
 * hash (edited), the chain of prev hashes (edited and re-hashed), the
 * sequence (deleted, reordered), a cut line at the end of a file
 * (truncated), HEAD (whole lines cut from the end), and the anchors of
 * pruning against the index's event log.
 *
 * A first pass collects every record's seq, so a gap can be told apart:
 * the missing record found elsewhere means lines were reordered, not found
 * means it was deleted. After each problem the check resynchronises on the
 * line it complained about, so one edit gives one complaint.
 */
#include "audit/audit_int.h"

#include <jansson.h>

#include "core/buf.h"
#include "core/fs.h"
#include "index/index.h"

struct vstate {
    al_audit_problem_fn *fn;
    void *ud;
    size_t problems;
    char first[AL_ERR_MSG_MAX - 64];
    int64_t *seqs; /* sorted */
    size_t n_seqs, cap_seqs;
    struct al_event *events; /* audit-prune events, for anchors */
    size_t n_events;
    /* the chain */
    int64_t want_seq;
    char want_prev[AL_SHA256_HEX + 1];
    bool resync; /* after an unreadable line: accept the next prev */
    size_t records;
};

static void problem(struct vstate *v, const char *path, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void problem(struct vstate *v, const char *path, size_t line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (v->problems++ == 0) {
        if (line)
            snprintf(v->first, sizeof v->first, "%s:%zu: %s", name, line, msg);
        else
            snprintf(v->first, sizeof v->first, "%s: %s", name, msg);
    }
    if (v->fn)
        v->fn(v->ud, name, line, msg);
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* Reads each line of path, calling fn with its text (without '\n'), its
 * number and whether it ended in a newline. */
typedef void line_fn(struct vstate *v, const char *path, size_t no, const char *line, size_t len, bool complete,
                     size_t file_index);

static enum al_rc each_line(struct vstate *v, const char *path, size_t fi, line_fn *fn, struct al_err *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return al_err_sys(err, AL_ERR_IO, "cannot open '%s'", path);
    char *line = NULL;
    size_t cap = 0, no = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        no++;
        bool complete = line[n - 1] == '\n';
        size_t len = (size_t)n - (complete ? 1 : 0);
        if (len > AL_LIMIT_AUDIT_LINE) {
            problem(v, path, no, "line over %u bytes (AL_LIMIT_AUDIT_LINE): not an audit record", AL_LIMIT_AUDIT_LINE);
            v->resync = true;
            continue;
        }
        fn(v, path, no, line, len, complete, fi);
    }
    bool bad = ferror(f);
    free(line);
    fclose(f);
    return bad ? al_err_sys(err, AL_ERR_IO, "cannot read '%s'", path) : AL_OK;
}

static void collect(struct vstate *v, const char *path, size_t no, const char *line, size_t len, bool complete,
                    size_t fi)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    json_t *s = json_object_get(j, "seq");
    if (json_is_integer(s) && !json_is_true(json_object_get(j, "anchor"))) {
        if (v->n_seqs == v->cap_seqs) {
            size_t cap = v->cap_seqs ? v->cap_seqs * 2 : 1024;
            int64_t *p = realloc(v->seqs, cap * sizeof *p);
            if (p) {
                v->seqs = p;
                v->cap_seqs = cap;
            }
        }
        if (v->n_seqs < v->cap_seqs)
            v->seqs[v->n_seqs++] = json_integer_value(s);
    }
    json_decref(j);
}

static bool seq_exists(const struct vstate *v, int64_t s)
{
    return v->n_seqs && bsearch(&s, v->seqs, v->n_seqs, sizeof s, cmp_i64) != NULL;
}

static void check_anchor(struct vstate *v, const char *path, size_t no, json_t *j, size_t fi, const char *hash)
{
    const char *prev = json_string_value(json_object_get(j, "prev"));
    json_t *t = json_object_get(j, "pruned_through_seq");
    if (prev == NULL || !al_hex64_valid(prev) || !json_is_integer(t)) {
        problem(v, path, no, "malformed anchor line");
        v->resync = true;
        return;
    }
    int64_t through = json_integer_value(t);
    if (no != 1 || (fi > 0 && (strcmp(prev, v->want_prev) != 0 || through + 1 != v->want_seq)))
        problem(v, path, no, "an anchor line where the log does not begin (inserted or moved)");
    bool recorded = v->events == NULL; /* no index: nothing to compare with */
    for (size_t i = 0; i < v->n_events && !recorded; i++) {
        json_t *d = json_loads(v->events[i].detail, 0, NULL);
        const char *h = json_string_value(json_object_get(d, "last_hash"));
        recorded = h && !strcmp(h, prev) && json_integer_value(json_object_get(d, "through_seq")) == through;
        json_decref(d);
    }
    if (!recorded)
        problem(v, path, no, "anchor (records through %" PRId64 " pruned) is not in the event log (forged?)",
                through);
    memcpy(v->want_prev, prev, sizeof v->want_prev);
    v->want_seq = through + 1;
    v->resync = false;
    (void)hash;
}

static void check(struct vstate *v, const char *path, size_t no, const char *line, size_t len, bool complete,
                  size_t fi)
{
    char computed[AL_SHA256_HEX + 1], stated[AL_SHA256_HEX + 1];
    if (!complete) {
        problem(v, path, no, "the last line is cut short (truncated)");
        v->resync = true;
        return;
    }
    json_t *j = json_loadb(line, len, 0, NULL);
    if (j == NULL || !al_audit__line_hash(line, len, computed, stated)) {
        problem(v, path, no, "not an audit record (malformed: edited or cut)");
        json_decref(j);
        v->resync = true;
        return;
    }
    if (strcmp(computed, stated) != 0)
        problem(v, path, no, "edited: the line does not match its own hash");
    if (json_is_true(json_object_get(j, "anchor"))) {
        check_anchor(v, path, no, j, fi, stated);
        json_decref(j);
        return;
    }
    json_t *sj = json_object_get(j, "seq");
    const char *prev = json_string_value(json_object_get(j, "prev"));
    int64_t seq = json_integer_value(sj);
    if (!json_is_integer(sj) || prev == NULL) {
        problem(v, path, no, "not an audit record (no seq or prev)");
        json_decref(j);
        v->resync = true;
        return;
    }
    if (seq > v->want_seq) {
        if (seq_exists(v, v->want_seq))
            problem(v, path, no, "out of order: record %" PRId64 " belongs here, found record %" PRId64
                    " (lines reordered)", v->want_seq, seq);
        else if (seq == v->want_seq + 1)
            problem(v, path, no, "record %" PRId64 " before this line is missing (deleted)", v->want_seq);
        else
            problem(v, path, no, "records %" PRId64 "-%" PRId64 " before this line are missing (deleted)",
                    v->want_seq, seq - 1);
    } else if (seq < v->want_seq) {
        /* Keep counting from the highest record seen; the next line's prev
         * cannot be judged against this one. */
        problem(v, path, no, "record %" PRId64 " is out of order or repeated (lines reordered or copied)", seq);
        v->resync = true;
        v->records++;
        json_decref(j);
        return;
    } else if (!v->resync && strcmp(prev, v->want_prev) != 0) {
        problem(v, path, no, "does not follow the line before it (that line was edited and re-hashed, "
                "or lines were removed)");
    }
    json_t *lost = json_object_get(j, "lost");
    if (lost) {
        /* A loss marker: records the writer could not write (full disk ...).
         * It keeps the chain whole, and the log is still not intact. */
        const char *since = json_string_value(json_object_get(j, "lost_since"));
        const char *why = json_string_value(json_object_get(j, "reason"));
        problem(v, path, no, "%" JSON_INTEGER_FORMAT " record%s lost since %s: %s", json_integer_value(lost),
                json_integer_value(lost) == 1 ? "" : "s", since ? since : "?", why ? why : "?");
    }
    memcpy(v->want_prev, stated, sizeof v->want_prev);
    v->want_seq = seq + 1;
    v->resync = false;
    v->records++;
    json_decref(j);
}

static void load_events(struct vstate *v, const char *home)
{
    char db[AL_LIMIT_PATH];
    snprintf(db, sizeof db, "%s/airlock.db", home);
    struct al_index *ix = NULL;
    struct al_err err = AL_ERR_INIT;
    struct al_event *rows = NULL;
    size_t n = 0;
    if (!al_fs_exists(db) || al_index_open_mode(db, AL_INDEX_EXISTING, &ix, &err) || al_index_list_events(ix, NULL, NULL, &rows, &n, &err)) {
        al_index_free(ix);
        return;
    }
    al_index_free(ix);
    v->events = calloc(n + 1, sizeof *v->events);
    for (size_t i = 0; i < n; i++) {
        if (v->events && strcmp(rows[i].kind, "audit-prune") == 0) {
            v->events[v->n_events++] = rows[i];
            rows[i].detail = NULL;
        }
    }
    al_index_events_free(rows, n);
}

enum al_rc al_audit_verify(const char *home, al_audit_problem_fn *fn, void *ud, size_t *records, struct al_err *err)
{
    struct vstate v;
    memset(&v, 0, sizeof v);
    v.fn = fn;
    v.ud = ud;
    v.want_seq = 1;
    memset(v.want_prev, '0', AL_SHA256_HEX);
    char **files = NULL, dir[AL_LIMIT_PATH];
    size_t n = 0;
    enum al_rc rc = al_path_fmt(dir, sizeof dir, err, "%s/audit", home);
    if (!rc)
        rc = al_audit_files(home, &files, &n, err);
    if (!rc)
        load_events(&v, home);
    for (size_t i = 0; i < n && !rc; i++)
        rc = each_line(&v, files[i], i, collect, err);
    if (v.n_seqs)
        qsort(v.seqs, v.n_seqs, sizeof *v.seqs, cmp_i64);
    for (size_t i = 0; i < n && !rc; i++)
        rc = each_line(&v, files[i], i, check, err);
    int64_t hseq = 0;
    char hhash[AL_SHA256_HEX + 1];
    int64_t hlost = 0;
    if (!rc && al_audit__read_head(dir, &hseq, hhash, &hlost, NULL)) {
        const char *last = n ? files[n - 1] : "HEAD";
        if (hseq == v.want_seq)
            problem(&v, last, 0, "record %" PRId64 " is missing at the end (truncated)", hseq);
        else if (hseq > v.want_seq)
            problem(&v, last, 0, "records %" PRId64 "-%" PRId64 " are missing at the end (truncated)", v.want_seq,
                    hseq);
        else if (hseq == v.want_seq - 1 && hseq > 0 && strcmp(hhash, v.want_prev) != 0)
            problem(&v, last, 0, "the last record is not the one HEAD names (replaced)");
        if (hlost > 0)
            problem(&v, "HEAD", 0, "%" PRId64 " record%s lost after record %" PRId64
                    " (the audit could not write them; the next record written marks the loss)",
                    hlost, hlost == 1 ? " was" : "s were", hseq);
    }
    if (records)
        *records = v.records;
    al_audit_files_free(files, n);
    free(v.seqs);
    al_index_events_free(v.events, v.n_events);
    if (!rc && v.problems)
        rc = al_err_set(err, AL_ERR_CORRUPT, "%s%s", v.first,
                        v.problems > 1 ? " (and more problems: see above)" : "");
    return rc;
}
