/*
 * trust.c: the policy file ($AIRLOCK_HOME/trust/keys.json) and its changes.
 * Changes run under the store's write lock: load, change, write atomically,
 * record the event. The file is small (capped) and read whole.
 */
#include "trust/trust.h"

#include <ctype.h>
#include <fnmatch.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "index/index.h"

#define LOCK_TIMEOUT_MS 60000

const char *al_trust_kind_name(enum al_trust_kind kind) { return kind == AL_TRUST_GPG ? "gpg" : "minisign"; }

static enum al_rc trust_paths(const char *home, char *file, char *gnupg, struct al_err *err)
{
    enum al_rc rc = al_path_fmt(file, AL_LIMIT_PATH, err, "%s/trust/keys.json", home);
    if (!rc)
        rc = al_path_fmt(gnupg, AL_LIMIT_PATH, err, "%s/trust/gnupg", home);
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

enum al_rc al_trust_load(const char *home, struct al_trust *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    char file[AL_LIMIT_PATH];
    enum al_rc rc = trust_paths(home, file, out->gnupg, err);
    if (rc)
        return rc;
    char *text = NULL;
    size_t len = 0;
    if (!al_fs_exists(file)) {
        /* Room for one key, which al_trust_add relies on. */
        if ((out->keys = calloc(1, sizeof *out->keys)) == NULL)
            return al_err_set(err, AL_ERR_NOMEM, "out of memory");
        return AL_OK;
    }
    if ((rc = al_fs_read_file(file, AL_TRUST_FILE_MAX, &text, &len, err)))
        return rc;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
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
    for (size_t i = 0; i < json_array_size(keys) && !rc; i++)
        if (!(rc = parse_key(json_array_get(keys, i), &out->keys[i], err)))
            out->n++;
    json_decref(root);
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

static enum al_rc save(const char *home, const struct al_trust *t, struct al_err *err)
{
    char file[AL_LIMIT_PATH], gnupg[AL_LIMIT_PATH], dir[AL_LIMIT_PATH];
    enum al_rc rc = trust_paths(home, file, gnupg, err);
    if (rc)
        return rc;
    al_fs_dirname(file, dir, sizeof dir);
    if ((rc = al_fs_mkdirs(dir, 0755, err)))
        return rc;
    json_t *keys = json_array();
    for (size_t i = 0; i < t->n; i++)
        json_array_append_new(keys, key_json(&t->keys[i]));
    json_t *root = json_pack("{s:i, s:o}", "version", 1, "keys", keys);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (text == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "cannot serialize the trust policy");
    rc = al_fs_write_atomic(file, text, strlen(text), err);
    free(text);
    return rc;
}

static enum al_rc record(struct al_repo *r, const char *kind, const struct al_trust_key *k, struct al_err *err)
{
    json_t *d = key_json(k);
    char *detail = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(d);
    enum al_rc rc = al_index_event_append(al_repo_index(r), kind, "", "", detail, err);
    free(detail);
    return rc;
}

/* The policy file and its event change together: the event is appended in
 * a transaction, the file replaced, then the transaction committed. When
 * the file cannot be written or the commit fails, the event is rolled back
 * and the previous file put back, so neither changes alone. */
static enum al_rc save_recorded(struct al_repo *r, const char *home, const char *kind, const struct al_trust *t,
                                const struct al_trust_key *changed, struct al_err *err)
{
    struct al_index *ix = al_repo_index(r);
    char file[AL_LIMIT_PATH], gnupg[AL_LIMIT_PATH];
    char *old = NULL;
    size_t old_len = 0;
    enum al_rc rc = trust_paths(home, file, gnupg, err);
    if (rc)
        return rc;
    bool had = al_fs_exists(file);
    if (had && (rc = al_fs_read_file(file, AL_TRUST_FILE_MAX, &old, &old_len, err)))
        return rc;
    if ((rc = al_index_begin(ix, err)))
        goto out;
    struct al_err e = AL_ERR_INIT, re = AL_ERR_INIT;
    bool saving = false;
    if (!(rc = record(r, kind, changed, &e))) {
        saving = true;
        if (!(rc = save(home, t, &e)))
            rc = al_index_commit(ix, &e);
    }
    if (!rc)
        goto out;
    al_index_rollback(ix);
    if (!saving || (had ? al_fs_write_atomic(file, old, old_len, &re) == AL_OK : unlink(file) == 0 || errno == ENOENT))
        al_err_set(err, rc, "%s", e.msg);
    else
        al_err_set(err, rc, "%s; and the trust policy '%s' could not be put back (%s): it holds a change the "
                   "event log does not record", e.msg, file, re.msg[0] ? re.msg : strerror(errno));
out:
    free(old);
    return rc;
}

/* Runs fn on the loaded policy under the write lock; saves and records the
 * event when fn succeeds. */
typedef enum al_rc change_fn(struct al_repo *r, struct al_trust *t, void *ud, struct al_trust_key *changed,
                             struct al_err *err);

static enum al_rc change(struct al_repo *r, const char *kind, change_fn *fn, void *ud, struct al_trust_key *out,
                         struct al_err *err)
{
    struct al_store *s = al_repo_store(r);
    const char *home = al_store_home(s);
    enum al_rc rc = al_store_lock(s, AL_LOCK_WRITE, LOCK_TIMEOUT_MS, err);
    if (rc)
        return rc;
    struct al_trust t;
    struct al_trust_key changed;
    memset(&changed, 0, sizeof changed);
    if (!(rc = al_trust_load(home, &t, err))) {
        rc = fn(r, &t, ud, &changed, err);
        if (!rc)
            rc = save_recorded(r, home, kind, &t, &changed, err);
        al_trust_release(&t);
    }
    al_store_unlock(s, AL_LOCK_WRITE);
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
    al_now_iso(k->added);
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
    al_now_iso(t->keys[i].revoked_at);
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
