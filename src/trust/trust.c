/*
 * trust.c: the policy file ($AIRLOCK_HOME/trust/keys.json) and its changes.
 * The file is small (capped) and read whole.
 *
 * A change and its event are one step, with a roll-forward (see trust.h):
 *   1. the new policy is written whole to keys.json.pending (tmp, fsync,
 *      rename, fsync dir);
 *   2. one index transaction appends the event, whose detail names the
 *      pending file's SHA-256 ("policy"), and commits;
 *   3. pending is renamed over keys.json and the directory fsynced.
 * The commit in 2 is the moment of the change. Before it, a pending file is
 * not named by the newest trust event and counts for nothing; after it, it
 * is, and it is the policy until 3 has happened. So a reader needs no lock
 * (al_trust_load picks the file in force), and a writer, under the write
 * lock, first finishes (3) or removes what a killed writer left.
 */
#include "trust/trust.h"

#include <ctype.h>
#include <fnmatch.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/hash.h"
#include "core/time.h"
#include "index/index.h"

const char *al_trust_kind_name(enum al_trust_kind kind) { return kind == AL_TRUST_GPG ? "gpg" : "minisign"; }

/* The policy file, its pending successor and the GnuPG home, each AL_LIMIT_PATH. */
struct paths {
    char file[AL_LIMIT_PATH], pending[AL_LIMIT_PATH], dir[AL_LIMIT_PATH], gnupg[AL_LIMIT_PATH];
};

static enum al_rc trust_paths(const char *home, struct paths *p, struct al_err *err)
{
    enum al_rc rc = al_path_fmt(p->file, sizeof p->file, err, "%s/trust/keys.json", home);
    if (!rc)
        rc = al_path_fmt(p->pending, sizeof p->pending, err, "%s/trust/keys.json.pending", home);
    if (!rc)
        rc = al_path_fmt(p->gnupg, sizeof p->gnupg, err, "%s/trust/gnupg", home);
    al_fs_dirname(p->file, p->dir, sizeof p->dir);
    return rc;
}

static bool name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > AL_TRUST_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.' || s[i] == '@'))
            return false;
    return true;
}

static enum al_rc parse_key(json_t *o, struct al_trust_key *k, struct al_err *err)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *kind = json_string_value(json_object_get(o, "kind"));
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *models = json_string_value(json_object_get(o, "models"));
    json_t *th = json_object_get(o, "threshold");
    if (!name || !kind || !id || !models || !json_is_integer(th) || !name_valid(name) ||
        strlen(id) >= sizeof k->id || strlen(models) > AL_TRUST_PATTERN_MAX || json_integer_value(th) < 1 ||
        json_integer_value(th) > AL_TRUST_MAX_KEYS)
        return al_err_set(err, AL_ERR_CORRUPT, "trust policy: a key entry is malformed");
    snprintf(k->name, sizeof k->name, "%s", name);
    snprintf(k->id, sizeof k->id, "%s", id);
    snprintf(k->models, sizeof k->models, "%s", models);
    k->threshold = (int)json_integer_value(th);
    k->revoked = json_is_true(json_object_get(o, "revoked"));
    const char *added = json_string_value(json_object_get(o, "added"));
    const char *rev = json_string_value(json_object_get(o, "revoked_at"));
    snprintf(k->added, sizeof k->added, "%s", added ? added : "");
    snprintf(k->revoked_at, sizeof k->revoked_at, "%s", rev ? rev : "");
    if (strcmp(kind, "minisign") == 0) {
        k->kind = AL_TRUST_MINISIGN;
        const char *pub = json_string_value(json_object_get(o, "key"));
        struct al_err e2 = AL_ERR_INIT;
        if (!pub || al_minisign_pub_parse(pub, &k->pub, &e2))
            return al_err_set(err, AL_ERR_CORRUPT, "trust policy: key '%s' has no valid minisign public key", name);
    } else if (strcmp(kind, "gpg") == 0) {
        k->kind = AL_TRUST_GPG;
    } else {
        return al_err_set(err, AL_ERR_CORRUPT, "trust policy: key '%s' has unknown kind '%s'", name, kind);
    }
    return AL_OK;
}

/* The policy the newest trust event recorded ("policy" in its detail), or ""
 * when that event names none (recorded before policies were named) or there
 * is no trust event. Runs only when a pending file exists: it lists the log. */
static enum al_rc last_policy(struct al_repo *r, char digest[AL_DIGEST_SIZE], struct al_err *err)
{
    digest[0] = '\0';
    struct al_event *ev = NULL;
    size_t n = 0;
    enum al_rc rc = al_repo_list_events(r, NULL, NULL, &ev, &n, err);
    if (rc)
        return rc;
    for (size_t i = n; i-- > 0;) {
        if (strncmp(ev[i].kind, "trust-", 6) != 0)
            continue;
        json_t *d = ev[i].detail ? json_loads(ev[i].detail, 0, NULL) : NULL;
        const char *pol = json_string_value(json_object_get(d, "policy"));
        if (pol && al_digest_valid(pol))
            snprintf(digest, AL_DIGEST_SIZE, "%s", pol);
        json_decref(d);
        break;
    }
    al_index_events_free(ev, n);
    return AL_OK;
}

/* A pending policy: *exists when the file is there; *text (malloc'd) only
 * when the newest trust event names its content, i.e. its change was
 * committed and it is the policy in force. A pending file over the cap was
 * never written by us, so it counts for nothing. */
static enum al_rc read_pending(struct al_repo *r, const struct paths *p, char **text, size_t *len, bool *exists,
                               struct al_err *err)
{
    *text = NULL, *len = 0, *exists = false;
    char *t = NULL;
    size_t n = 0;
    struct al_err e = AL_ERR_INIT;
    enum al_rc rc = al_fs_read_file(p->pending, AL_TRUST_FILE_MAX, &t, &n, &e);
    if (rc == AL_ERR_NOT_FOUND)
        return AL_OK;
    *exists = true;
    if (rc == AL_ERR_LIMIT)
        return AL_OK;
    if (rc)
        return al_err_set(err, rc, "%s", e.msg);
    uint8_t raw[AL_SHA256_BYTES];
    char have[AL_DIGEST_SIZE], want[AL_DIGEST_SIZE];
    al_sha256_buf(t, n, raw);
    al_digest_format(raw, have);
    if ((rc = last_policy(r, want, err)) == AL_OK && strcmp(have, want) == 0) {
        *text = t, *len = n;
        return AL_OK;
    }
    free(t);
    return rc;
}

static enum al_rc parse_policy(const char *file, const char *text, size_t len, struct al_trust *out,
                               struct al_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    json_t *keys = json_object_get(root, "keys");
    if (!json_is_array(keys) || json_array_size(keys) > AL_TRUST_MAX_KEYS) {
        json_decref(root);
        return al_err_set(err, AL_ERR_CORRUPT, "trust policy '%s' is malformed", file);
    }
    out->keys = calloc(json_array_size(keys) + 1, sizeof *out->keys);
    if (out->keys == NULL) {
        json_decref(root);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    enum al_rc rc = AL_OK;
    for (size_t i = 0; i < json_array_size(keys) && !rc; i++)
        if (!(rc = parse_key(json_array_get(keys, i), &out->keys[i], err)))
            out->n++;
    json_decref(root);
    return rc;
}

/* Reads nothing but files and the log, and writes nothing: safe without a
 * lock and on a read-only store. */
enum al_rc al_trust_load(struct al_repo *r, struct al_trust *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    struct paths p;
    enum al_rc rc = trust_paths(al_repo_home(r), &p, err);
    if (rc)
        return rc;
    snprintf(out->gnupg, sizeof out->gnupg, "%s", p.gnupg);
    char *text = NULL;
    size_t len = 0;
    bool pending = false;
    if ((rc = read_pending(r, &p, &text, &len, &pending, err)))
        return rc;
    const char *from = text ? p.pending : p.file;
    if (text == NULL && !al_fs_exists(p.file)) {
        /* Room for one key, which al_trust_add relies on. */
        if ((out->keys = calloc(1, sizeof *out->keys)) == NULL)
            return al_err_set(err, AL_ERR_NOMEM, "out of memory");
        return AL_OK;
    }
    if (text == NULL && (rc = al_fs_read_file(p.file, AL_TRUST_FILE_MAX, &text, &len, err)))
        return rc;
    rc = parse_policy(from, text, len, out, err);
    free(text);
    if (rc)
        al_trust_release(out);
    return rc;
}

void al_trust_release(struct al_trust *t)
{
    free(t->keys);
    t->keys = NULL;
    t->n = 0;
}

const struct al_trust_key *al_trust_find(const struct al_trust *t, const char *id)
{
    size_t n = strlen(id);
    for (size_t i = 0; i < t->n; i++) {
        const char *kid = t->keys[i].id;
        size_t kn = strlen(kid);
        if (strcasecmp(kid, id) == 0)
            return &t->keys[i];
        /* An OpenPGP key id (16 hex digits) is the end of the fingerprint. */
        if (t->keys[i].kind == AL_TRUST_GPG && n == 16 && kn > n && strcasecmp(kid + kn - n, id) == 0)
            return &t->keys[i];
    }
    return NULL;
}

bool al_trust_allows(const struct al_trust_key *key, const char *model)
{
    return fnmatch(key->models, model, 0) == 0;
}

int al_trust_threshold(const struct al_trust *t, const char *model)
{
    int k = 1;
    for (size_t i = 0; i < t->n; i++)
        if (!t->keys[i].revoked && al_trust_allows(&t->keys[i], model) && t->keys[i].threshold > k)
            k = t->keys[i].threshold;
    return k;
}

/* ---- changes ---- */

static json_t *key_json(const struct al_trust_key *k)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:b, s:s}", "name", k->name, "kind",
                          al_trust_kind_name(k->kind), "id", k->id, "models", k->models, "threshold",
                          k->threshold, "revoked", k->revoked, "added", k->added);
    if (k->revoked_at[0])
        json_object_set_new(o, "revoked_at", json_string(k->revoked_at));
    if (k->kind == AL_TRUST_MINISIGN) {
        char *text = NULL;
        if (al_minisign_pub_format(&k->pub, &text, NULL) == AL_OK) {
            /* Keep the base64 line only: the comment line is not part of the key. */
            char *nl = strchr(text, '\n');
            char *line = nl ? nl + 1 : text;
            line[strcspn(line, "\r\n")] = '\0';
            json_object_set_new(o, "key", json_string(line));
        }
        free(text);
    }
    return o;
}

/* The policy as the text written to disk, and its digest. */
static enum al_rc serialize(const struct al_trust *t, char **text, char digest[AL_DIGEST_SIZE], struct al_err *err)
{
    json_t *keys = json_array();
    for (size_t i = 0; i < t->n; i++)
        json_array_append_new(keys, key_json(&t->keys[i]));
    json_t *root = json_pack("{s:i, s:o}", "version", 1, "keys", keys);
    *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (*text == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "cannot serialize the trust policy");
    size_t len = strlen(*text);
    if (len > AL_TRUST_FILE_MAX) {
        free(*text);
        *text = NULL;
        return al_err_set(err, AL_ERR_LIMIT, "the trust policy would be over %u bytes (AL_TRUST_FILE_MAX)",
                          AL_TRUST_FILE_MAX);
    }
    uint8_t raw[AL_SHA256_BYTES];
    al_sha256_buf(*text, len, raw);
    al_digest_format(raw, digest);
    return AL_OK;
}

/* The event of a change: the changed key, and the digest of the policy
 * after it ("policy"), which is what makes a pending file count. */
static enum al_rc record(struct al_repo *r, const char *kind, const struct al_trust_key *k, const char *policy,
                         struct al_err *err)
{
    json_t *d = key_json(k);
    json_object_set_new(d, "policy", json_string(policy));
    char *detail = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(d);
    if (detail == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    enum al_rc rc = al_repo_append_event(r, kind, "", "", detail, err);
    free(detail);
    return rc;
}

/* Finishes what a killed or failed change left (under the write lock): a
 * pending file the newest trust event names is moved into place; any other
 * is removed, its change never happened. */
static enum al_rc settle(struct al_repo *r, const struct paths *p, struct al_err *err)
{
    char *text = NULL;
    size_t len = 0;
    bool exists = false;
    enum al_rc rc = read_pending(r, p, &text, &len, &exists, err);
    if (rc || !exists)
        return rc;
    if (text) {
        free(text);
        if (rename(p->pending, p->file) != 0)
            return al_err_sys(err, AL_ERR_IO, "cannot rename '%s' to '%s'", p->pending, p->file);
    } else if (unlink(p->pending) != 0 && errno != ENOENT) {
        return al_err_sys(err, AL_ERR_IO, "cannot remove '%s'", p->pending);
    }
    return al_fs_fsync_dir(p->dir, err);
}

/* The three steps of the header comment. A failure before the commit leaves
 * at most a pending file no event names: inert, and removed by the next
 * change (kept rather than removed here, since a failed SQLite commit may
 * still surface at recovery, and then the file is what it names). A failure
 * after the commit is reported, but the change is whole and in force. */
static enum al_rc save_recorded(struct al_repo *r, const struct paths *p, const char *kind, const struct al_trust *t,
                                const struct al_trust_key *changed, struct al_err *err)
{
    char *text = NULL;
    char digest[AL_DIGEST_SIZE];
    enum al_rc rc = serialize(t, &text, digest, err);
    if (rc)
        return rc;
    if (!(rc = al_fs_mkdirs(p->dir, 0755, err)))
        rc = al_fs_write_atomic(p->pending, text, strlen(text), err);
    free(text);
    if (rc || (rc = record(r, kind, changed, digest, err)))
        return rc;
    if (rename(p->pending, p->file) != 0)
        return al_err_sys(err, AL_ERR_IO, "the trust change is recorded and in force, but '%s' could not be renamed "
                          "to '%s' (the next trust command finishes it)", p->pending, p->file);
    struct al_err e = AL_ERR_INIT;
    if (al_fs_fsync_dir(p->dir, &e))
        return al_err_set(err, AL_ERR_IO, "the trust change is recorded and in force, but %s", e.msg);
    return AL_OK;
}

/* Runs fn on the loaded policy under the write lock; saves and records the
 * event when fn succeeds. */
typedef enum al_rc change_fn(struct al_repo *r, struct al_trust *t, void *ud, struct al_trust_key *changed,
                             struct al_err *err);

static enum al_rc change(struct al_repo *r, const char *kind, change_fn *fn, void *ud, struct al_trust_key *out,
                         struct al_err *err)
{
    struct paths p;
    enum al_rc rc = trust_paths(al_repo_home(r), &p, err);
    if (rc || (rc = al_repo_write_lock(r, err)))
        return rc;
    struct al_trust t;
    struct al_trust_key changed;
    memset(&changed, 0, sizeof changed);
    if (!(rc = settle(r, &p, err)) && !(rc = al_trust_load(r, &t, err))) {
        rc = fn(r, &t, ud, &changed, err);
        if (!rc)
            rc = save_recorded(r, &p, kind, &t, &changed, err);
        al_trust_release(&t);
    }
    al_repo_write_unlock(r);
    if (!rc && out)
        *out = changed;
    return rc;
}

struct add_args {
    const char *name, *models;
    enum al_trust_kind kind;
    const void *data;
    size_t len;
    int threshold;
};

static enum al_rc do_add(struct al_repo *r, struct al_trust *t, void *ud, struct al_trust_key *k,
                         struct al_err *err)
{
    struct add_args *a = ud;
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->keys[i].name, a->name) == 0)
            return al_err_set(err, AL_ERR_EXISTS, "a trusted key named '%s' exists already; remove it first",
                              a->name);
    if (t->n >= AL_TRUST_MAX_KEYS)
        return al_err_set(err, AL_ERR_LIMIT, "the trust policy holds %u keys already (AL_TRUST_MAX_KEYS)",
                          AL_TRUST_MAX_KEYS);
    snprintf(k->name, sizeof k->name, "%s", a->name);
    snprintf(k->models, sizeof k->models, "%s", a->models);
    k->kind = a->kind;
    k->threshold = a->threshold;
    al_time_now_iso(k->added);
    enum al_rc rc;
    if (a->kind == AL_TRUST_MINISIGN) {
        char *text = strndup(a->data, a->len);
        if (text == NULL)
            return al_err_set(err, AL_ERR_NOMEM, "out of memory");
        rc = al_minisign_pub_parse(text, &k->pub, err);
        free(text);
        if (rc)
            return rc;
        char hex[AL_MINISIGN_KEYID_HEX];
        al_minisign_keyid_hex(k->pub.id, hex);
        snprintf(k->id, sizeof k->id, "%s", hex);
    } else {
        if ((rc = al_fs_mkdirs(t->gnupg, 0700, err)))
            return rc;
        chmod(t->gnupg, 0700);
        char fprs[2][AL_PGP_FPR_MAX];
        size_t n = 0;
        if ((rc = al_pgp_import_fprs(t->gnupg, a->data, a->len, &n, fprs, 2, err)))
            return rc;
        if (fprs[0][0] == '\0' || fprs[1][0] != '\0')
            return al_err_set(err, AL_ERR_INVALID,
                              "the key file must hold exactly one openpgp public key (found %zu); export one "
                              "with 'gpg --export --armor FINGERPRINT'", n);
        snprintf(k->id, sizeof k->id, "%s", fprs[0]);
    }
    const struct al_trust_key *dup = al_trust_find(t, k->id);
    if (dup)
        return al_err_set(err, AL_ERR_EXISTS, "key %s is trusted already as '%s'", k->id, dup->name);
    t->keys[t->n++] = *k;
    return AL_OK;
}

enum al_rc al_trust_add(struct al_repo *r, const char *name, enum al_trust_kind kind, const void *data,
                        size_t len, const char *models, int threshold, struct al_trust_key *out,
                        struct al_err *err)
{
    if (!name_valid(name))
        return al_err_set(err, AL_ERR_USAGE, "'%s' is not a key name (letters, digits, '-', '_', '.', '@'; at "
                          "most %d)", name, AL_TRUST_NAME_MAX);
    if (models == NULL || *models == '\0')
        models = "*";
    if (strlen(models) > AL_TRUST_PATTERN_MAX)
        return al_err_set(err, AL_ERR_LIMIT, "model pattern over %d characters", AL_TRUST_PATTERN_MAX);
    if (threshold < 0 || threshold > 64)
        return al_err_set(err, AL_ERR_USAGE, "threshold %d is not between 1 and 64", threshold);
    if (len > AL_LIMIT_PGP_KEY)
        return al_err_set(err, AL_ERR_LIMIT, "key file over %u bytes", AL_LIMIT_PGP_KEY);
    struct add_args a = {name, models, kind, data, len, threshold ? threshold : 1};
    /* The loaded array has room for one more (al_trust_load allocates n + 1). */
    return change(r, "trust-add", do_add, &a, out, err);
}

static enum al_rc find_named(struct al_trust *t, const char *name, size_t *at, struct al_err *err)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->keys[i].name, name) == 0) {
            *at = i;
            return AL_OK;
        }
    return al_err_set(err, AL_ERR_NOT_FOUND, "no trusted key named '%s'; see 'airlock trust ls'", name);
}

static enum al_rc do_rm(struct al_repo *r, struct al_trust *t, void *ud, struct al_trust_key *k,
                        struct al_err *err)
{
    size_t i = 0;
    enum al_rc rc = find_named(t, ud, &i, err);
    if (rc)
        return rc;
    *k = t->keys[i];
    memmove(&t->keys[i], &t->keys[i + 1], (t->n - i - 1) * sizeof *t->keys);
    t->n--;
    return AL_OK;
}

static enum al_rc do_revoke(struct al_repo *r, struct al_trust *t, void *ud, struct al_trust_key *k,
                            struct al_err *err)
{
    size_t i = 0;
    enum al_rc rc = find_named(t, ud, &i, err);
    if (rc)
        return rc;
    if (t->keys[i].revoked)
        return al_err_set(err, AL_ERR_EXISTS, "key '%s' is revoked already", t->keys[i].name);
    t->keys[i].revoked = true;
    al_time_now_iso(t->keys[i].revoked_at);
    *k = t->keys[i];
    return AL_OK;
}

enum al_rc al_trust_remove(struct al_repo *r, const char *name, struct al_err *err)
{
    return change(r, "trust-rm", do_rm, (void *)name, NULL, err);
}

enum al_rc al_trust_revoke(struct al_repo *r, const char *name, struct al_err *err)
{
    return change(r, "trust-revoke", do_revoke, (void *)name, NULL, err);
}
