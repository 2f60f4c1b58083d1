/*
 * ref.c: registry references (HOST[:PORT]/REPO[:TAG|@DIGEST], the grammar of
 * the distribution spec, with its caps) and the referrers fallback tag; no
 * network, no libcurl (registry.h).
 */
#include "registry/registry.h"

#include <ctype.h>

#include "core/limits.h"

static bool repo_valid(const char *s)
{
    if (!*s || strlen(s) > AL_REG_REPO_MAX)
        return false;
    for (const char *c = s; *c; c++) {
        bool alnum = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9');
        if (alnum)
            continue;
        if (*c != '/' && *c != '.' && *c != '_' && *c != '-')
            return false;
        /* a separator sits between alphanumerics of one component ("__" allowed) */
        bool prev = c > s && ((c[-1] >= 'a' && c[-1] <= 'z') || (c[-1] >= '0' && c[-1] <= '9') ||
                              (*c == '_' && c[-1] == '_'));
        bool next = (c[1] >= 'a' && c[1] <= 'z') || (c[1] >= '0' && c[1] <= '9') || (*c == '_' && c[1] == '_');
        if (!prev || !next)
            return false;
    }
    return true;
}

static bool tag_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > AL_REG_TAG_MAX || !(isalnum((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (const char *c = s; *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '_' || *c == '.' || *c == '-'))
            return false;
    return true;
}

enum al_rc al_reg_ref_parse(const char *s, struct al_reg_ref *ref, struct al_err *err)
{
    memset(ref, 0, sizeof *ref);
    if (!s || strncmp(s, "docker://", 9) == 0)
        s = s ? s + 9 : s;
    if (!s || !*s)
        return al_err_set(err, AL_ERR_USAGE, "no registry reference given: HOST[:PORT]/REPO[:TAG|@sha256:HEX]");
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || (size_t)(slash - s) > AL_REG_HOST_MAX)
        return al_err_set(err, AL_ERR_USAGE, "'%s' is not a registry reference: HOST[:PORT]/REPO[:TAG|@sha256:HEX]",
                          s);
    snprintf(ref->host, sizeof ref->host, "%.*s", (int)(slash - s), s);
    for (const char *c = ref->host; *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == ':' || *c == '[' || *c == ']'))
            return al_err_set(err, AL_ERR_USAGE, "'%s' is not a valid registry host", ref->host);
    char rest[AL_REG_REPO_MAX + AL_REG_TAG_MAX + AL_DIGEST_SIZE + 4];
    if (strlen(slash + 1) >= sizeof rest)
        return al_err_set(err, AL_ERR_USAGE, "registry reference '%s' is too long", s);
    snprintf(rest, sizeof rest, "%s", slash + 1);
    char *at = strchr(rest, '@');
    if (at) {
        *at = '\0';
        if (!al_digest_valid(at + 1))
            return al_err_set(err, AL_ERR_USAGE, "'%s' is not a sha256 digest (sha256:<64 hex>)", at + 1);
        snprintf(ref->digest, sizeof ref->digest, "%s", at + 1);
    }
    char *colon = strrchr(rest, ':');
    if (colon && !strchr(colon, '/')) {
        *colon = '\0';
        if (!tag_valid(colon + 1))
            return al_err_set(err, AL_ERR_USAGE, "'%s' is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})",
                              colon + 1);
        snprintf(ref->tag, sizeof ref->tag, "%.*s", (int)AL_REG_TAG_MAX, colon + 1);
    }
    if (!repo_valid(rest))
        return al_err_set(err, AL_ERR_USAGE, "'%s' is not a valid repository name (lowercase letters, digits, '.', "
                          "'_', '-', separated by '/')", rest);
    snprintf(ref->repo, sizeof ref->repo, "%.*s", (int)AL_REG_REPO_MAX, rest);
    if (!ref->tag[0] && !ref->digest[0])
        snprintf(ref->tag, sizeof ref->tag, "latest");
    return AL_OK;
}

void al_reg_referrers_tag(const char *digest, char out[AL_REG_TAG_MAX + 1])
{
    snprintf(out, AL_REG_TAG_MAX + 1, "sha256-%.64s", al_digest_hex(digest) ? al_digest_hex(digest) : "");
}

