/*
 * prune.c: retention. Whole day files older than the window go; the oldest
 * file kept gets an anchor line at its head that carries the hash and seq
 * of the last pruned record, so verification starts from there. The anchor
 * is also recorded in the index's event log ("audit-prune"), a second
 * chain that a forger would have to rewrite as well.
 *
 * Crash order: event, then the rewritten first file (tmp, fsync, rename,
 * fsync dir), then the deletions. A crash before the deletions leaves old
 * files before an anchor that continues their chain: verify accepts that,
 * and the next prune finishes the job (replacing the anchor it finds).
 */
#include "audit/audit_int.h"

#include <jansson.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/fs.h"
#include "index/index.h"

static enum al_rc record_event(struct al_audit *a, int64_t through, const char *hash, size_t files,
                               struct al_err *err)
{
    char db[AL_LIMIT_PATH];
    enum al_rc rc = al_path_fmt(db, sizeof db, err, "%s/airlock.db", a->home);
    struct al_index *ix = NULL;
    if (!rc)
        rc = al_index_open_mode(db, AL_INDEX_EXISTING, &ix, err);
    if (rc)
        return rc;
    json_t *j = json_pack("{s:I, s:s, s:I}", "through_seq", (json_int_t)through, "last_hash", hash, "files",
                          (json_int_t)files);
    char *detail = j ? json_dumps(j, JSON_COMPACT) : NULL;
    rc = detail ? al_index_event_append(ix, "audit-prune", NULL, NULL, detail, err)
                : al_err_set(err, AL_ERR_NOMEM, "out of memory");
    free(detail);
    json_decref(j);
    al_index_free(ix);
    return rc;
}

/* Writes anchor then target's lines (less a leading anchor) to a temporary
 * file and renames it over target. */
static enum al_rc rewrite_head(struct al_audit *a, const char *target, const char *anchor, struct al_err *err)
{
    char tmp[AL_LIMIT_PATH];
    enum al_rc rc = al_path_fmt(tmp, sizeof tmp, err, "%s/.prune.tmp", a->dir);
    if (rc)
        return rc;
    FILE *out = fopen(tmp, "we");
    if (out == NULL)
        return al_err_sys(err, AL_ERR_IO, "cannot create '%s'", tmp);
    fputs(anchor, out);
    FILE *in = fopen(target, "re");
    if (in == NULL && errno != ENOENT)
        rc = al_err_sys(err, AL_ERR_IO, "cannot open '%s'", target);
    if (in) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, in);
        if (n > 0) {
            json_t *j = json_loadb(line, (size_t)n, 0, NULL);
            if (!json_is_true(json_object_get(j, "anchor")))
                fwrite(line, 1, (size_t)n, out);
            json_decref(j);
        }
        free(line);
        char buf[1 << 16];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, in)) > 0)
            fwrite(buf, 1, got, out);
        if (ferror(in))
            rc = al_err_sys(err, AL_ERR_IO, "cannot read '%s'", target);
        fclose(in);
    }
    if (fflush(out) != 0 || fsync(fileno(out)) != 0)
        rc = al_err_sys(err, AL_ERR_IO, "cannot write '%s'", tmp);
    fclose(out);
    if (!rc && rename(tmp, target) != 0)
        rc = al_err_sys(err, AL_ERR_IO, "cannot rename '%s'", tmp);
    if (rc)
        unlink(tmp);
    return rc ? rc : al_fs_fsync_dir(a->dir, err);
}

static enum al_rc prune_locked(struct al_audit *a, struct al_err *err)
{
    time_t now = al_audit__now(a), cut = now - (time_t)a->retention_days * 86400;
    char cutoff[16], today[16], day[16];
    al_time_format(cut, 0, AL_TIME_DAY, cutoff, sizeof cutoff);
    al_time_format(now, 0, AL_TIME_DAY, today, sizeof today);
    char **files = NULL;
    size_t n = 0, k = 0;
    enum al_rc rc = al_audit_files(a->home, &files, &n, err);
    if (rc)
        return rc;
    while (k < n && al_audit__file_day(strrchr(files[k], '/') + 1, day) && strcmp(day, cutoff) < 0)
        k++;
    int64_t through = -1;
    char hash[AL_SHA256_HEX + 1] = "";
    struct al_buf line;
    al_buf_init(&line, AL_LIMIT_AUDIT_LINE);
    for (size_t i = k; i-- > 0 && !rc && through < 0;) {
        bool found = false;
        rc = al_audit__last_line(files[i], false, &line, &found, err);
        if (!rc && found)
            rc = al_audit__line_state(files[i], line.data, line.len, &through, hash, err);
    }
    al_buf_release(&line);
    char target[AL_LIMIT_PATH];
    if (!rc && k > 0 && through >= 0) {
        if (k < n)
            snprintf(target, sizeof target, "%s", files[k]);
        else
            rc = al_path_fmt(target, sizeof target, err, "%s/audit-%s.jsonl", a->dir, today);
        char iso[32];
        al_time_format(now, 0, AL_TIME_SECONDS, iso, sizeof iso);
        json_t *j = json_pack("{s:b, s:s, s:I, s:I, s:s}", "anchor", 1, "time", iso, "pruned_through_seq",
                              (json_int_t)through, "pruned_files", (json_int_t)k, "prev", hash);
        char *body = j ? json_dumps(j, AL_AUDIT_DUMP_FLAGS) : NULL;
        char h[AL_SHA256_HEX + 1];
        char *anchor = body ? al_audit__seal(body, h) : NULL;
        if (!rc && anchor == NULL)
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        if (!rc)
            rc = record_event(a, through, hash, k, err);
        if (!rc) {
            /* The open day file may be the one replaced: reopen it on the next append. */
            if (a->fd >= 0) {
                close(a->fd);
                a->fd = -1;
            }
            rc = rewrite_head(a, target, anchor, err);
        }
        json_decref(j);
        free(body);
        free(anchor);
    }
    for (size_t i = 0; i < k && !rc; i++)
        if (unlink(files[i]) != 0 && errno != ENOENT)
            rc = al_err_sys(err, AL_ERR_IO, "cannot remove '%s'", files[i]);
    if (!rc && k > 0)
        rc = al_fs_fsync_dir(a->dir, err);
    al_audit_files_free(files, n);
    return rc;
}

enum al_rc al_audit_prune(struct al_audit *a, struct al_err *err)
{
    if (a->retention_days <= 0)
        return AL_OK;
    pthread_mutex_lock(&a->mu);
    enum al_rc rc = al_audit__lock(a, err);
    if (!rc) {
        rc = prune_locked(a, err);
        al_audit__unlock(a);
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}
