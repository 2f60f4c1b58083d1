/*
 * audit.c: writing the audit log: open (find where the chain stands),
 * append (one line, fdatasync, then HEAD), rotation by UTC day.
 * Pruning is in prune.c, reading back in verify.c, scrubbing in scrub.c.
 *
 * Invariants, under a->mu: a->seq and a->prev describe the last line on
 * disk; HEAD never names a record that is not durably in a file (it is
 * written after the record's fdatasync).
 */
#include "audit/audit_int.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/utf8.h"

static const char zeros[AL_SHA256_HEX + 1] = "0000000000000000000000000000000000000000000000000000000000000000";

void al_audit__set_now(struct al_audit *a, time_t t) { a->fake_now = t; }

bool al_audit__file_day(const char *name, char day[16])
{
    /* audit-YYYY-MM-DD.jsonl */
    if (strlen(name) != 22 || strncmp(name, "audit-", 6) != 0 || strcmp(name + 16, ".jsonl") != 0)
        return false;
    for (int i = 6; i < 16; i++)
        if (!(i == 10 || i == 13 ? name[i] == '-' : isdigit((unsigned char)name[i])))
            return false;
    snprintf(day, 16, "%.10s", name + 6);
    return true;
}

static int cmp_str(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

void al_audit_files_free(char **paths, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

enum al_rc al_audit_files(const char *home, char ***paths, size_t *n, struct al_err *err)
{
    *paths = NULL;
    *n = 0;
    char dir[AL_LIMIT_PATH];
    enum al_rc rc = al_path_fmt(dir, sizeof dir, err, "%s/audit", home);
    if (rc)
        return rc;
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? AL_OK : al_err_sys(err, AL_ERR_IO, "cannot open '%s'", dir);
    size_t cap = 0;
    struct dirent *e;
    char day[16];
    while ((e = readdir(d)) != NULL && !rc) {
        if (!al_audit__file_day(e->d_name, day))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **p = realloc(*paths, cap * sizeof *p);
            if (p == NULL) {
                rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
                break;
            }
            *paths = p;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if (((*paths)[*n] = malloc(len)) == NULL) {
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
            break;
        }
        snprintf((*paths)[(*n)++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (rc) {
        al_audit_files_free(*paths, *n);
        *paths = NULL;
        *n = 0;
        return rc;
    }
    if (*n)
        qsort(*paths, *n, sizeof **paths, cmp_str);
    return AL_OK;
}

bool al_audit__line_hash(const char *line, size_t len, char computed[AL_SHA256_HEX + 1],
                         char stated[AL_SHA256_HEX + 1])
{
    if (len < AL_AUDIT_HASH_SUFFIX + 2)
        return false;
    const char *suf = line + len - AL_AUDIT_HASH_SUFFIX;
    if (strncmp(suf, ",\"hash\":\"", 9) != 0 || strncmp(line + len - 2, "\"}", 2) != 0)
        return false;
    memcpy(stated, suf + 9, AL_SHA256_HEX);
    stated[AL_SHA256_HEX] = '\0';
    if (!al_hex64_valid(stated))
        return false;
    struct al_sha256 *h = al_sha256_new();
    al_sha256_update(h, line, len - AL_AUDIT_HASH_SUFFIX);
    al_sha256_update(h, "}", 1);
    uint8_t raw[AL_SHA256_BYTES];
    al_sha256_final(h, raw);
    al_sha256_free(h);
    al_hex(raw, sizeof raw, computed);
    return true;
}

bool al_audit__read_head(const char *dir, int64_t *seq, char hash[AL_SHA256_HEX + 1], int64_t *lost,
                         int64_t *since)
{
    char path[AL_LIMIT_PATH], text[192];
    snprintf(path, sizeof path, "%s/HEAD", dir);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    bool ok = fgets(text, sizeof text, f) != NULL;
    fclose(f);
    long long s = 0, l = 0, t = 0;
    char h[AL_SHA256_HEX + 1];
    int got = ok ? sscanf(text, "%lld %64s %lld %lld", &s, h, &l, &t) : 0;
    if (got < 2 || !al_hex64_valid(h) || s < 0)
        return false;
    if (got < 4 || l < 0)
        l = t = 0;
    *seq = s;
    memcpy(hash, h, sizeof h);
    if (lost)
        *lost = l;
    if (since)
        *since = t;
    return true;
}

time_t al_audit__now(const struct al_audit *a) { return a->fake_now ? a->fake_now : time(NULL); }

static void stamp(const struct al_audit *a, char iso[40], char day[16])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (a->fake_now) {
        ts.tv_sec = a->fake_now;
        ts.tv_nsec = 0;
    }
    al_time_format(ts.tv_sec, (int)(ts.tv_nsec / 1000000), AL_TIME_MILLIS, iso, 40);
    al_time_format(ts.tv_sec, 0, AL_TIME_DAY, day, 16);
}

/* Reads at most AL_LIMIT_AUDIT_LINE + 1 bytes from the end: enough for the
 * last line, without reading a whole day of records. */
enum al_rc al_audit__last_line(const char *path, bool trim, struct al_buf *line, bool *found, struct al_err *err)
{
    *found = false;
    int fd = open(path, (trim ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return al_err_sys(err, AL_ERR_IO, "cannot open '%s'", path);
    struct stat st;
    enum al_rc rc = AL_OK;
    if (fstat(fd, &st) != 0) {
        rc = al_err_sys(err, AL_ERR_IO, "cannot stat '%s'", path);
        close(fd);
        return rc;
    }
    size_t want = (size_t)st.st_size < AL_LIMIT_AUDIT_LINE + 1 ? (size_t)st.st_size : AL_LIMIT_AUDIT_LINE + 1;
    off_t from = st.st_size - (off_t)want;
    char *buf = malloc(want + 1);
    if (buf == NULL) {
        close(fd);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    ssize_t got = want ? pread(fd, buf, want, from) : 0;
    if (got != (ssize_t)want) {
        rc = al_err_sys(err, AL_ERR_IO, "cannot read '%s'", path);
    } else {
        size_t end = want;
        if (end && buf[end - 1] != '\n') {
            char *nl = memrchr(buf, '\n', end);
            end = nl ? (size_t)(nl - buf) + 1 : 0;
            if (trim) {
                al_log(AL_LOG_WARN, "audit: removing a cut last line from '%s'", path);
                if (ftruncate(fd, from + (off_t)end) != 0)
                    rc = al_err_sys(err, AL_ERR_IO, "cannot truncate '%s'", path);
            }
        }
        if (!rc && end) {
            char *nl = end >= 2 ? memrchr(buf, '\n', end - 1) : NULL;
            size_t start = nl ? (size_t)(nl - buf) + 1 : 0;
            if (nl == NULL && from > 0)
                rc = al_err_set(err, AL_ERR_LIMIT, "the last line of '%s' is over %u bytes (AL_LIMIT_AUDIT_LINE)",
                                path, AL_LIMIT_AUDIT_LINE);
            else {
                al_buf_reset(line);
                al_buf_add(line, buf + start, end - 1 - start);
                *found = true;
            }
        }
    }
    free(buf);
    close(fd);
    return rc;
}

/* Where the chain stands after one line: a record (its seq and hash) or an
 * anchor (its pruned_through_seq and prev). */
enum al_rc al_audit__line_state(const char *path, const char *line, size_t len, int64_t *seq,
                                char hash[AL_SHA256_HEX + 1], struct al_err *err)
{
    char computed[AL_SHA256_HEX + 1], stated[AL_SHA256_HEX + 1];
    json_t *j = json_loadb(line, len, 0, NULL);
    enum al_rc rc = AL_OK;
    if (j == NULL || !al_audit__line_hash(line, len, computed, stated)) {
        rc = al_err_set(err, AL_ERR_CORRUPT,
                        "the last line of '%s' is not an audit record; 'airlock audit verify' shows more", path);
    } else if (json_is_true(json_object_get(j, "anchor"))) {
        const char *prev = json_string_value(json_object_get(j, "prev"));
        *seq = json_integer_value(json_object_get(j, "pruned_through_seq"));
        snprintf(hash, AL_SHA256_HEX + 1, "%s", prev ? prev : "");
    } else {
        *seq = json_integer_value(json_object_get(j, "seq"));
        memcpy(hash, stated, AL_SHA256_HEX + 1);
    }
    if (!rc && (*seq < 0 || !al_hex64_valid(hash)))
        rc = al_err_set(err, AL_ERR_CORRUPT, "the last line of '%s' is not an audit record", path);
    json_decref(j);
    return rc;
}

/* Finds the last line of the newest file that has one (trimming a cut one). */
static enum al_rc find_tail(struct al_audit *a, struct al_err *err)
{
    char **files = NULL;
    size_t n = 0;
    a->seq = 0;
    memcpy(a->prev, zeros, sizeof zeros);
    enum al_rc rc = al_audit_files(a->home, &files, &n, err);
    struct al_buf line;
    al_buf_init(&line, AL_LIMIT_AUDIT_LINE);
    for (size_t i = n; i-- > 0 && !rc;) {
        bool found = false;
        rc = al_audit__last_line(files[i], i == n - 1, &line, &found, err);
        if (!rc && found) {
            rc = al_audit__line_state(files[i], line.data, line.len, &a->seq, a->prev, err);
            break;
        }
    }
    al_buf_release(&line);
    al_audit_files_free(files, n);
    if (rc)
        return rc;
    int64_t hseq = 0, hlost = 0, hsince = 0;
    char hhash[AL_SHA256_HEX + 1];
    a->head_lost = 0;
    if (!al_audit__read_head(a->dir, &hseq, hhash, &hlost, &hsince))
        return AL_OK;
    a->head_lost = hlost; /* lost after the record HEAD names: not yet marked */
    if (hlost > 0 && (a->lost_since == 0 || hsince < a->lost_since))
        a->lost_since = (time_t)hsince;
    if (hseq > a->seq || (hseq == a->seq && hseq > 0 && strcmp(hhash, a->prev) != 0))
        return al_err_set(err, AL_ERR_CORRUPT,
                          "the audit log ends at record %" PRId64 " but HEAD names record %" PRId64
                          " (records were removed); 'airlock audit verify' shows more",
                          a->seq, hseq);
    return AL_OK;
}

enum al_rc al_audit_open(const char *home, const struct al_audit_opts *opts, struct al_audit **out,
                         struct al_err *err)
{
    *out = NULL;
    struct al_audit *a = calloc(1, sizeof *a);
    if (a == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&a->mu, NULL);
    a->lock_fd = a->fd = -1;
    if (opts) {
        a->capture = opts->capture_text;
        a->retention_days = opts->retention_days;
    }
    char path[AL_LIMIT_PATH];
    enum al_rc rc = al_path_fmt(a->home, sizeof a->home, err, "%s", home);
    if (!rc)
        rc = al_path_fmt(a->dir, sizeof a->dir, err, "%s/audit", home);
    if (!rc)
        rc = al_fs_mkdirs(a->dir, 0700, err);
    if (!rc)
        rc = al_path_fmt(path, sizeof path, err, "%s/.lock", a->dir);
    if (!rc && (a->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
        rc = al_err_sys(err, AL_ERR_IO, "cannot open '%s'", path);
    if (!rc)
        rc = al_audit__rules_load(a, opts ? opts->extra_patterns_file : NULL, err);
    if (!rc && !(rc = al_audit__lock(a, err))) {
        rc = find_tail(a, err);
        al_audit__unlock(a);
    }
    if (rc) {
        al_audit_free(a);
        return rc;
    }
    *out = a;
    return AL_OK;
}

/* Several processes (two servers on one store) may append to one log: each
 * append holds the lock file exclusively and first finds the chain's true
 * tail on disk, so the chain never forks. */
enum al_rc al_audit__lock(struct al_audit *a, struct al_err *err)
{
    while (flock(a->lock_fd, LOCK_EX) != 0)
        if (errno != EINTR)
            return al_err_sys(err, AL_ERR_IO, "cannot lock the audit log '%s'", a->dir);
    return AL_OK;
}

void al_audit__unlock(struct al_audit *a) { flock(a->lock_fd, LOCK_UN); }

void al_audit_free(struct al_audit *a)
{
    if (a == NULL)
        return;
    if (a->fd >= 0)
        close(a->fd);
    if (a->lock_fd >= 0)
        close(a->lock_fd);
    al_audit__rules_free(a);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* Copies s (NULL = "") cut to max bytes, invalid UTF-8 bytes turned to '?'. */
static char *clean(const char *s, size_t max)
{
    s = s ? s : "";
    size_t n = strnlen(s, max);
    char *o = malloc(n + 1);
    if (o == NULL)
        return NULL;
    size_t i = 0;
    while (i < n) {
        size_t k = al_utf8_char_len(s + i, n - i);
        if (k > 0) {
            memcpy(o + i, s + i, k);
            i += k;
        } else {
            o[i++] = '?';
        }
    }
    o[n] = '\0';
    return o;
}

static char *scrubbed(const struct al_audit *a, const char *text)
{
    char *cut = clean(text, AL_LIMIT_AUDIT_TEXT);
    if (cut == NULL)
        return NULL;
    size_t n = al_audit_scrub(a, cut, NULL, 0);
    char *o = malloc(n + 1);
    if (o)
        al_audit_scrub(a, cut, o, n + 1);
    free(cut);
    return o;
}

/* Turns the JSON text of an object (no hash yet) into the line with its hash. */
char *al_audit__seal(const char *body, char hash[AL_SHA256_HEX + 1])
{
    size_t len = strlen(body);
    uint8_t raw[AL_SHA256_BYTES];
    al_sha256_buf(body, len, raw);
    al_hex(raw, sizeof raw, hash);
    struct al_buf b;
    al_buf_init(&b, len + AL_AUDIT_HASH_SUFFIX + 2);
    al_buf_add(&b, body, len - 1);
    al_buf_addf(&b, ",\"hash\":\"%s\"}\n", hash);
    return al_buf_take(&b);
}



static enum al_rc write_line(struct al_audit *a, const char *day, const char *line, struct al_err *err)
{
    char path[AL_LIMIT_PATH];
    enum al_rc rc;
    if (a->fd < 0 || strcmp(day, a->day) != 0) {
        if (a->fd >= 0)
            close(a->fd);
        a->fd = -1;
        if ((rc = al_path_fmt(path, sizeof path, err, "%s/audit-%s.jsonl", a->dir, day)))
            return rc;
        bool is_new = !al_fs_exists(path);
        if ((a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
            return al_err_sys(err, AL_ERR_IO, "cannot open '%s'", path);
        snprintf(a->day, sizeof a->day, "%s", day);
        if (is_new && (rc = al_fs_fsync_dir(a->dir, err)))
            return rc;
    }
    off_t before = lseek(a->fd, 0, SEEK_END);
    struct al_err we = AL_ERR_INIT;
    if ((rc = al_fs_write_all(a->fd, line, strlen(line), &we)))
        al_err_set(err, rc, "cannot append to the audit file of %s (%s)", day, we.msg);
    if (!rc && fdatasync(a->fd) != 0)
        rc = al_err_sys(err, AL_ERR_IO, "cannot sync '%s/audit-%s.jsonl'", a->dir, day);
    if (rc && before >= 0 && ftruncate(a->fd, before) != 0)
        al_log(AL_LOG_ERROR, "audit: cannot remove a partly written record: %s", strerror(errno));
    return rc;
}

/* HEAD: "<seq> <hash> <lost> <since>\n", fixed width. It is replaced by a
 * rename, so a write cut short never leaves a HEAD naming no record (verify
 * would call the log tampered with). On a full disk the new file cannot be
 * written; then the fixed-width text is written in place over the old one,
 * which needs no new block: that is when lost records must be counted. A
 * HEAD left behind the log is allowed, so a failure is a warning. Called
 * under the log's lock. */
static bool write_head(struct al_audit *a, int64_t lost)
{
    char text[192], path[AL_LIMIT_PATH], tmp[AL_LIMIT_PATH];
    int n = snprintf(text, sizeof text, "%020" PRId64 " %s %020" PRId64 " %020" PRId64 "\n", a->seq, a->prev,
                     lost, lost > 0 ? (int64_t)a->lost_since : (int64_t)0);
    if (al_path_fmt(path, sizeof path, NULL, "%s/HEAD", a->dir) ||
        al_path_fmt(tmp, sizeof tmp, NULL, "%s/HEAD.tmp", a->dir))
        return false;
    errno = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write(fd, text, (size_t)n) == n;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (ok && rename(tmp, path) == 0)
        return true;
    int first = errno;
    unlink(tmp);
    if (first == ENOSPC || first == EDQUOT) {
        fd = open(path, O_WRONLY | O_CLOEXEC);
        ok = fd >= 0 && pwrite(fd, text, (size_t)n, 0) == n;
        if (fd >= 0 && close(fd) != 0)
            ok = false;
        if (ok)
            return true;
    }
    al_log(AL_LOG_WARN, "audit: cannot update '%s': %s", path, first ? strerror(first) : "short write");
    return false;
}

enum al_rc al_audit_note_lost(struct al_audit *a, int64_t k, const char *why, struct al_err *err)
{
    if (k <= 0)
        return AL_OK;
    pthread_mutex_lock(&a->mu);
    if (a->head_lost + a->mem_lost == 0) {
        a->lost_since = al_audit__now(a);
        snprintf(a->lost_why, sizeof a->lost_why, "%s", why ? why : "");
    }
    a->mem_lost += k;
    enum al_rc rc = al_audit__lock(a, err);
    if (!rc) {
        rc = find_tail(a, err);
        if (!rc && write_head(a, a->head_lost + a->mem_lost)) {
            a->head_lost += a->mem_lost;
            a->mem_lost = 0;
        }
        al_audit__unlock(a);
    }
    al_log(AL_LOG_ERROR, "audit: %" PRId64 " record%s lost (%s); the next record written marks the loss", k,
           k == 1 ? "" : "s", why ? why : "unknown");
    pthread_mutex_unlock(&a->mu);
    return rc;
}

/* Under a->mu and the lock, the tail found: writes the marker of the lost
 * records counted so far, if any, as the next line of the chain. */
static enum al_rc write_loss_marker(struct al_audit *a, const char *day, const char *iso, struct al_err *err)
{
    int64_t lost = a->head_lost + a->mem_lost;
    if (lost <= 0)
        return AL_OK;
    char since[40], hash[AL_SHA256_HEX + 1];
    time_t t = a->lost_since ? a->lost_since : al_audit__now(a);
    al_time_format(t, 0, AL_TIME_SECONDS, since, sizeof since);
    json_t *j = json_pack("{s:I, s:s, s:I, s:s, s:s, s:s}", "seq", (json_int_t)(a->seq + 1), "time", iso, "lost",
                          (json_int_t)lost, "lost_since", since, "reason",
                          a->lost_why[0] ? a->lost_why : "not known to this process (counted in HEAD)", "prev",
                          a->prev);
    char *body = j ? json_dumps(j, AL_AUDIT_DUMP_FLAGS) : NULL;
    char *line = body ? al_audit__seal(body, hash) : NULL;
    enum al_rc rc = line ? write_line(a, day, line, err) : al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (!rc) {
        a->seq++;
        memcpy(a->prev, hash, sizeof hash);
        a->head_lost = a->mem_lost = 0;
        a->lost_why[0] = '\0';
        a->lost_since = 0;
        write_head(a, 0);
        al_log(AL_LOG_WARN, "audit: record %" PRId64 " marks %" PRId64 " lost record%s", a->seq, lost,
               lost == 1 ? "" : "s");
    }
    free(line);
    free(body);
    json_decref(j);
    return rc;
}

enum al_rc al_audit_append(struct al_audit *a, const struct al_audit_record *rec, struct al_err *err)
{
    char *f[4] = {clean(rec->request_id, AL_LIMIT_AUDIT_FIELD), clean(rec->caller, AL_LIMIT_AUDIT_FIELD),
                  clean(rec->model_digest, AL_LIMIT_AUDIT_FIELD), clean(rec->route, AL_LIMIT_AUDIT_FIELD)};
    char *prompt = a->capture && rec->prompt ? scrubbed(a, rec->prompt) : NULL;
    char *lora = rec->lora ? clean(rec->lora, AL_LIMIT_AUDIT_LORA) : NULL;
    char *reranker = rec->reranker ? clean(rec->reranker, AL_LIMIT_AUDIT_FIELD) : NULL;
    char *response = a->capture && rec->response ? scrubbed(a, rec->response) : NULL;
    double lat = isfinite(rec->latency_ms) && rec->latency_ms > 0 ? round(rec->latency_ms * 1000.0) / 1000.0 : 0;
    enum al_rc rc = AL_OK;
    if (!f[0] || !f[1] || !f[2] || !f[3] || (rec->lora && !lora) || (rec->reranker && !reranker) ||
        (a->capture && rec->prompt && !prompt) ||
        (a->capture && rec->response && !response))
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&a->mu);
    char iso[40], day[16], hash[AL_SHA256_HEX + 1];
    stamp(a, iso, day);
    json_t *j = rc ? NULL : json_object();
    if (j) {
        json_object_set_new(j, "seq", json_integer(0)); /* set under the lock below */
        json_object_set_new(j, "time", json_string(iso));
        json_object_set_new(j, "request_id", json_string(f[0]));
        json_object_set_new(j, "caller", json_string(f[1]));
        json_object_set_new(j, "model_digest", json_string(f[2]));
        json_object_set_new(j, "route", json_string(f[3]));
        json_object_set_new(j, "status", json_integer(rec->status));
        json_object_set_new(j, "tokens_in", json_integer(rec->tokens_in));
        json_object_set_new(j, "tokens_out", json_integer(rec->tokens_out));
        json_object_set_new(j, "latency_ms", json_real(lat));
        if (lora)
            json_object_set_new(j, "lora", json_string(lora));
        if (reranker)
            json_object_set_new(j, "reranker", json_string(reranker));
        if (prompt)
            json_object_set_new(j, "prompt", json_string(prompt));
        if (response)
            json_object_set_new(j, "response", json_string(response));
        json_object_set_new(j, "prev", json_string(""));
    }
    char *body = NULL, *line = NULL;
    bool locked = false;
    /* The tail may have moved: another process on this store appended. */
    if (!rc && !(rc = al_audit__lock(a, err))) {
        locked = true;
        rc = find_tail(a, err);
    }
    if (!rc)
        rc = write_loss_marker(a, day, iso, err);
    if (!rc) {
        json_object_set_new(j, "seq", json_integer(a->seq + 1));
        json_object_set_new(j, "prev", json_string(a->prev));
        body = json_dumps(j, AL_AUDIT_DUMP_FLAGS);
        line = body ? al_audit__seal(body, hash) : NULL;
        if (line == NULL)
            rc = al_err_set(err, AL_ERR_NOMEM, "cannot build the audit record");
    }
    if (!rc)
        rc = write_line(a, day, line, err);
    if (!rc) {
        a->seq++;
        memcpy(a->prev, hash, sizeof hash);
        write_head(a, 0);
    }
    if (locked)
        al_audit__unlock(a);
    pthread_mutex_unlock(&a->mu);
    json_decref(j);
    free(body);
    free(line);
    free(prompt);
    free(lora);
    free(reranker);
    free(response);
    for (int i = 0; i < 4; i++)
        free(f[i]);
    return rc;
}
