/*
 * aliases.c: the names an operator serves a model under (see aliases.h).
 */
#include "serve/aliases.h"

#include <stdlib.h>
#include <string.h>

#include "repo/repo.h"

static bool name_ok(const char *p, size_t len)
{
    if (len == 0 || len > AL_SERVE_ALIAS_NAME)
        return false;
    for (size_t i = 0; i < len; i++)
        if (p[i] <= ' ' || p[i] > '~' || p[i] == '=')
            return false;
    return true;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* list, comma-separated, into out: checked, and for names sorted and each once. */
static enum al_rc set_list(char *out, const char *list, bool sort, const char *what, struct al_err *err)
{
    char buf[AL_SERVE_ALIAS_TEXT];
    char *items[AL_SERVE_ALIAS_TEXT / 2];
    size_t n = 0;
    if (strlen(list) >= sizeof buf)
        return al_err_set(err, AL_ERR_USAGE, "%s '%s' is over %zu bytes", what, list, sizeof buf - 1);
    memcpy(buf, list, strlen(list) + 1);
    for (char *p = buf;;) {
        size_t len = strcspn(p, ",");
        bool last = p[len] == '\0';
        p[len] = '\0';
        if (!name_ok(p, len))
            return al_err_set(err, AL_ERR_USAGE,
                              "%s '%s' in '%s': each must be 1 to %d printable characters, no space, ',' or '='",
                              what, p, list, AL_SERVE_ALIAS_NAME);
        if (sort && strncmp(p, "rag/", 4) == 0)
            return al_err_set(err, AL_ERR_USAGE, "alias '%s': names beginning with rag/ are collection snapshots",
                              p);
        items[n++] = p;
        if (last)
            break;
        p += len + 1;
    }
    if (sort)
        qsort(items, n, sizeof items[0], cmp_str);
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (sort && i > 0 && strcmp(items[i], items[i - 1]) == 0)
            continue;
        used += (size_t)snprintf(out + used, AL_SERVE_ALIAS_TEXT - used, "%s%s", used ? "," : "", items[i]);
    }
    return AL_OK;
}

enum al_rc al_serve_alias_set(struct al_serve_alias *t, int *n, const char *spec, bool tags, struct al_err *err)
{
    const char *what = tags ? "tag" : "alias";
    const char *eq = strchr(spec, '=');
    char ref[AL_LIMIT_REF + 1] = "";
    const char *list = spec;
    if (eq) {
        if ((size_t)(eq - spec) > AL_LIMIT_REF || eq == spec)
            return al_err_set(err, AL_ERR_USAGE, "%s '%s': the model reference before '=' is %s", what, spec,
                              eq == spec ? "empty" : "too long");
        memcpy(ref, spec, (size_t)(eq - spec));
        ref[eq - spec] = '\0';
        list = eq + 1;
    }
    struct al_serve_alias *e = NULL;
    for (int i = 0; i < *n && !e; i++)
        if (strcmp(t[i].ref, ref) == 0)
            e = &t[i];
    if (!e) {
        if (*n >= AL_SERVE_MAX_ALIASES)
            return al_err_set(err, AL_ERR_USAGE, "aliases and tags for at most %d models", AL_SERVE_MAX_ALIASES);
        e = &t[(*n)++];
        memset(e, 0, sizeof *e);
        memcpy(e->ref, ref, sizeof ref);
    }
    struct al_serve_alias tmp = *e;
    enum al_rc rc = set_list(tags ? tmp.tags : tmp.names, list, !tags, what, err);
    if (rc == AL_OK)
        *e = tmp;
    return rc;
}

static bool in_list(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (l == len && memcmp(p, name, len) == 0)
            return true;
        p += l + (p[l] == ',');
    }
    return false;
}

const struct al_serve_alias *al_serve_alias_lookup(const struct al_serve_alias *t, int n, const char *name)
{
    for (int i = 0; i < n && name && *name; i++)
        if (in_list(t[i].names, name))
            return &t[i];
    return NULL;
}

enum al_rc al_serve_alias_check_unique(const struct al_serve_alias *t, int n, struct al_err *err)
{
    for (int i = 0; i < n; i++)
        for (const char *p = t[i].names; *p;) {
            size_t l = strcspn(p, ",");
            char name[AL_SERVE_ALIAS_NAME + 1];
            snprintf(name, sizeof name, "%.*s", (int)l, p);
            for (int j = i + 1; j < n; j++)
                if (in_list(t[j].names, name))
                    return al_err_set(err, AL_ERR_USAGE, "alias '%s' is given to two models ('%s' and '%s')", name,
                                      t[i].ref[0] ? t[i].ref : "the default model",
                                      t[j].ref[0] ? t[j].ref : "the default model");
            p += l + (p[l] == ',');
        }
    return AL_OK;
}

const char *al_serve_alias_target(const struct al_serve_alias *t, int n, const char *def, const char *name)
{
    const struct al_serve_alias *a = al_serve_alias_lookup(t, n, name);
    if (!a)
        return name;
    return a->ref[0] ? a->ref : def ? def : name;
}

const struct al_serve_alias *al_serve_alias_for_model(const struct al_serve_alias *t, int n, const char *def,
                                                      const char *model)
{
    for (int i = 0; i < n; i++) {
        const char *target = t[i].ref[0] ? t[i].ref : def ? def : "";
        size_t len = strcspn(target, ":@"); /* the name part of name:tag, name@digest */
        if (len == strlen(model) && strncmp(target, model, len) == 0)
            return &t[i];
    }
    return NULL;
}

enum al_rc al_serve_alias_check(const struct al_serve_alias *t, int n, const char *def, struct al_repo *repo,
                                struct al_err *err)
{
    enum al_rc rc = al_serve_alias_check_unique(t, n, err);
    for (int i = 0; i < n && !rc; i++) {
        const struct al_serve_alias *a = &t[i];
        const char *target = a->ref[0] ? a->ref : def;
        if (!target)
            return al_err_set(err, AL_ERR_USAGE, "--alias and --tags without REF= are for the default model, "
                                                 "and none is named: give one (airlock serve REF --alias A) or "
                                                 "write REF=%s", a->names[0] ? a->names : a->tags);
        struct al_version v, other;
        struct al_err e2 = AL_ERR_INIT;
        if (al_repo_resolve(repo, target, &v, &e2) != AL_OK)
            return al_err_set(err, AL_ERR_USAGE, "the aliases or tags of '%s': %s", target, e2.msg);
        for (const char *p = a->names; *p && !rc;) {
            size_t l = strcspn(p, ",");
            char name[AL_SERVE_ALIAS_NAME + 1];
            snprintf(name, sizeof name, "%.*s", (int)l, p);
            if (strcmp(name, v.model) != 0 && al_repo_resolve(repo, name, &other, &e2) == AL_OK)
                rc = al_err_set(err, AL_ERR_USAGE,
                                "alias '%s' of '%s' is the name of another model in the store; choose another "
                                "alias, or serve that model under its own name", name, target);
            p += l + (p[l] == ',');
        }
    }
    return rc;
}
