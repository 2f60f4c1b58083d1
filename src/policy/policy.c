/*
 * policy.c: the license policy file, license identifiers, model-card front
 * matter, and the decisions (policy.h).
 *
 * The card reader is a line scanner, not a YAML parser: it reads only the
 * front matter's top-level `license` and `license_name` keys, which is all a
 * card's license takes, and it never allocates, so hostile bytes can do no
 * more than make it refuse the card.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "core/limits.h"
#include "gguf/gguf.h"
#include "policy/policy.h"

/* ---- the built-in table ----
 * Sources of judgement (docs/internals/policy.md): the license texts; SPDX's
 * list for the open licenses; the model licenses' own terms for their
 * redistribution clauses. "conditions" means redistribution is allowed but
 * carries duties the operator should acknowledge (attribution, passing on a
 * use policy, non-commercial use, share-alike); "forbidden" means the terms
 * grant no right to redistribute. */
struct known {
    const char *id;
    enum al_redist redist;
    const char *note;
};

static const struct known table[] = {
    {"0bsd", AL_REDIST_FREE, "permissive"},
    {"afl-3.0", AL_REDIST_FREE, "permissive, with attribution"},
    {"agpl-3.0", AL_REDIST_CONDITIONS, "copyleft: source and license passed on, network use counts"},
    {"apache-2.0", AL_REDIST_FREE, "permissive, with the license and notices kept"},
    {"apple-ascl", AL_REDIST_CONDITIONS, "Apple sample code license: notices kept"},
    {"artistic-2.0", AL_REDIST_FREE, "permissive"},
    {"bigcode-openrail-m", AL_REDIST_CONDITIONS, "use restrictions must be passed on"},
    {"bigscience-bloom-rail-1.0", AL_REDIST_CONDITIONS, "use restrictions must be passed on"},
    {"bigscience-openrail-m", AL_REDIST_CONDITIONS, "use restrictions must be passed on"},
    {"bsd-2-clause", AL_REDIST_FREE, "permissive, with attribution"},
    {"bsd-3-clause", AL_REDIST_FREE, "permissive, with attribution"},
    {"bsl-1.0", AL_REDIST_FREE, "permissive"},
    {"cc-by-2.0", AL_REDIST_FREE, "attribution"},
    {"cc-by-3.0", AL_REDIST_FREE, "attribution"},
    {"cc-by-4.0", AL_REDIST_FREE, "attribution"},
    {"cc-by-nc-2.0", AL_REDIST_CONDITIONS, "non-commercial use only"},
    {"cc-by-nc-3.0", AL_REDIST_CONDITIONS, "non-commercial use only"},
    {"cc-by-nc-4.0", AL_REDIST_CONDITIONS, "non-commercial use only"},
    {"cc-by-nc-nd-3.0", AL_REDIST_CONDITIONS, "non-commercial, unmodified copies only"},
    {"cc-by-nc-nd-4.0", AL_REDIST_CONDITIONS, "non-commercial, unmodified copies only"},
    {"cc-by-nc-sa-2.0", AL_REDIST_CONDITIONS, "non-commercial, share-alike"},
    {"cc-by-nc-sa-3.0", AL_REDIST_CONDITIONS, "non-commercial, share-alike"},
    {"cc-by-nc-sa-4.0", AL_REDIST_CONDITIONS, "non-commercial, share-alike"},
    {"cc-by-nd-4.0", AL_REDIST_CONDITIONS, "unmodified copies only"},
    {"cc-by-sa-3.0", AL_REDIST_CONDITIONS, "share-alike: derivatives under the same license"},
    {"cc-by-sa-4.0", AL_REDIST_CONDITIONS, "share-alike: derivatives under the same license"},
    {"cc0-1.0", AL_REDIST_FREE, "public domain dedication"},
    {"creativeml-openrail-m", AL_REDIST_CONDITIONS, "use restrictions must be passed on"},
    {"deepfloyd-if-license", AL_REDIST_FORBIDDEN, "research license: no right to redistribute the weights"},
    {"deepseek", AL_REDIST_CONDITIONS, "use restrictions must be passed on"},
    {"epl-2.0", AL_REDIST_CONDITIONS, "weak copyleft"},
    {"falcon", AL_REDIST_CONDITIONS, "TII Falcon license: acceptable use policy passed on"},
    {"gemma", AL_REDIST_CONDITIONS, "Gemma terms: prohibited use policy passed on, notice kept"},
    {"gpl-2.0", AL_REDIST_CONDITIONS, "copyleft: source and license passed on"},
    {"gpl-3.0", AL_REDIST_CONDITIONS, "copyleft: source and license passed on"},
    {"isc", AL_REDIST_FREE, "permissive"},
    {"lgpl-2.1", AL_REDIST_CONDITIONS, "weak copyleft"},
    {"lgpl-3.0", AL_REDIST_CONDITIONS, "weak copyleft"},
    {"llama2", AL_REDIST_CONDITIONS, "Llama 2 community license: agreement and acceptable use policy passed on"},
    {"llama3", AL_REDIST_CONDITIONS, "Llama 3 community license: attribution, acceptable use policy passed on"},
    {"llama3.1", AL_REDIST_CONDITIONS, "Llama 3.1 community license: attribution, acceptable use policy passed on"},
    {"llama3.2", AL_REDIST_CONDITIONS, "Llama 3.2 community license: attribution, acceptable use policy passed on"},
    {"llama3.3", AL_REDIST_CONDITIONS, "Llama 3.3 community license: attribution, acceptable use policy passed on"},
    {"llama4", AL_REDIST_CONDITIONS, "Llama 4 community license: attribution, acceptable use policy passed on"},
    {"mit", AL_REDIST_FREE, "permissive, with the notice kept"},
    {"mpl-2.0", AL_REDIST_CONDITIONS, "weak copyleft"},
    {"odc-by", AL_REDIST_FREE, "attribution"},
    {"openrail", AL_REDIST_CONDITIONS, "use restrictions must be passed on"},
    {"openrail++", AL_REDIST_CONDITIONS, "use restrictions must be passed on"},
    {"other", AL_REDIST_UNKNOWN, "a license the card does not name: read it"},
    {"proprietary", AL_REDIST_FORBIDDEN, "no license granted to redistribute"},
    {"qwen", AL_REDIST_CONDITIONS, "Qwen license: attribution, large-service clause"},
    {"unlicense", AL_REDIST_FREE, "public domain dedication"},
    {"wtfpl", AL_REDIST_FREE, "permissive"},
    {"zlib", AL_REDIST_FREE, "permissive"},
};
#define TABLE_N (sizeof table / sizeof table[0])

/* Spellings seen in cards and GGUF files, mapped to the table's ids (after
 * lowercasing and blanks turned into '-'). */
static const struct {
    const char *from, *to;
} aliases[] = {
    {"apache", "apache-2.0"},         {"apache2", "apache-2.0"},       {"apache-2", "apache-2.0"},
    {"apache2.0", "apache-2.0"},      {"apache-license-2.0", "apache-2.0"},
    {"mit-license", "mit"},           {"bsd-3", "bsd-3-clause"},       {"bsd", "bsd-3-clause"},
    {"llama-2", "llama2"},            {"llama-3", "llama3"},           {"llama-3.1", "llama3.1"},
    {"llama-3.2", "llama3.2"},        {"llama-3.3", "llama3.3"},       {"llama-4", "llama4"},
    {"gemma-terms-of-use", "gemma"},  {"cc0", "cc0-1.0"},              {"gpl-3.0-only", "gpl-3.0"},
    {"gpl-2.0-only", "gpl-2.0"},      {"lgpl-2.1-only", "lgpl-2.1"},   {"lgpl-3.0-only", "lgpl-3.0"},
    {"agpl-3.0-only", "agpl-3.0"},
};

static int cmp_known(const void *k, const void *e)
{
    return strcmp(k, ((const struct known *)e)->id);
}

enum al_redist al_license_redist(const char *id, const char **note)
{
    const struct known *k = bsearch(id, table, TABLE_N, sizeof table[0], cmp_known);
    if (note)
        *note = k ? k->note : "not in airlock's table: read the license";
    return k ? k->redist : AL_REDIST_UNKNOWN;
}

const char *al_license_table_id(size_t i)
{
    return i < TABLE_N ? table[i].id : NULL;
}

enum al_rc al_license_normalize(const char *in, char *out, struct al_err *err)
{
    const char *s = in, *e = in + strlen(in);
    while (s < e && (isspace((unsigned char)*s) || *s == '"' || *s == '\''))
        s++;
    while (e > s && (isspace((unsigned char)e[-1]) || e[-1] == '"' || e[-1] == '\''))
        e--;
    size_t n = 0;
    for (const char *c = s; c < e; c++) {
        unsigned char ch = (unsigned char)*c;
        if (n == AL_LICENSE_ID_MAX)
            return al_err_set(err, AL_ERR_INVALID, "license identifier '%.*s...' is longer than %d characters", 32,
                              s, AL_LICENSE_ID_MAX);
        if (isspace(ch)) {
            if (n && out[n - 1] != '-')
                out[n++] = '-';
            continue;
        }
        ch = (unsigned char)tolower(ch);
        if (!(isalnum(ch) || ch == '.' || ch == '+' || ch == '-' || ch == '_'))
            return al_err_set(err, AL_ERR_INVALID, "license identifier '%.*s' has a character outside "
                              "[A-Za-z0-9.+_-]", (int)(e - s > 64 ? 64 : e - s), s);
        out[n++] = (char)ch;
    }
    out[n] = '\0';
    if (n == 0)
        return al_err_set(err, AL_ERR_INVALID, "empty license identifier");
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(out, aliases[i].from) == 0) {
            snprintf(out, AL_LICENSE_ID_MAX + 1, "%s", aliases[i].to);
            break;
        }
    return AL_OK;
}

/* ---- names ---- */

static const char *const rule_names[] = {"allow", "ack", "deny"};

const char *al_license_rule_name(enum al_license_rule r)
{
    return (unsigned)r < 3 ? rule_names[r] : "?";
}

bool al_license_rule_parse(const char *s, enum al_license_rule *out)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, rule_names[i]) == 0) {
            *out = (enum al_license_rule)i;
            return true;
        }
    return false;
}

const char *al_redist_name(enum al_redist r)
{
    static const char *const n[] = {"free", "conditions", "forbidden", "unknown"};
    return (unsigned)r < 4 ? n[r] : "?";
}

const char *al_policy_scan_name(int v)
{
    static const char *const n[] = {"ok", "warn", "dangerous"};
    return v >= 0 && v < 3 ? n[v] : "?";
}

bool al_policy_scan_parse(const char *s, int *out)
{
    if (strcmp(s, "ok") == 0)
        *out = AL_POLICY_SCAN_OK;
    else if (strcmp(s, "warn") == 0)
        *out = AL_POLICY_SCAN_WARN;
    else
        return false;
    return true;
}

const char *al_decision_name(enum al_decision d)
{
    static const char *const n[] = {"allow", "ack-needed", "deny"};
    return (unsigned)d < 3 ? n[d] : "?";
}

/* ---- the policy ---- */

void al_policy_init(struct al_policy *p)
{
    memset(p, 0, sizeof *p);
    p->unknown = AL_RULE_ACK;
    p->scan_max = AL_POLICY_SCAN_WARN;
}

void al_policy_release(struct al_policy *p)
{
    free(p->rules);
    p->rules = NULL;
    p->n = 0;
}

enum al_rc al_policy_path(const char *home, char *out, size_t size, struct al_err *err)
{
    return al_path_fmt(out, size, err, "%s/policy.json", home);
}

static int cmp_rule(const void *a, const void *b)
{
    return strcmp(((const struct al_policy_license *)a)->id, ((const struct al_policy_license *)b)->id);
}

const struct al_policy_license *al_policy_find(const struct al_policy *p, const char *id)
{
    struct al_policy_license key;
    if (strlen(id) > AL_LICENSE_ID_MAX || p->n == 0)
        return NULL;
    snprintf(key.id, sizeof key.id, "%s", id);
    return bsearch(&key, p->rules, p->n, sizeof p->rules[0], cmp_rule);
}

enum al_rc al_policy_set(struct al_policy *p, const char *id, enum al_license_rule rule, struct al_err *err)
{
    char norm[AL_LICENSE_ID_MAX + 1];
    enum al_rc rc = al_license_normalize(id, norm, err);
    if (rc)
        return rc;
    struct al_policy_license *found = (struct al_policy_license *)al_policy_find(p, norm);
    if (found) {
        found->rule = rule;
        return AL_OK;
    }
    if (p->n >= AL_POLICY_RULES_MAX)
        return al_err_set(err, AL_ERR_LIMIT, "the policy has %d license rules already, the most it may hold",
                          AL_POLICY_RULES_MAX);
    struct al_policy_license *r = realloc(p->rules, (p->n + 1) * sizeof *r);
    if (r == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    p->rules = r;
    memset(&r[p->n], 0, sizeof r[p->n]);
    snprintf(r[p->n].id, sizeof r[p->n].id, "%s", norm);
    r[p->n].rule = rule;
    p->n++;
    qsort(p->rules, p->n, sizeof p->rules[0], cmp_rule);
    return AL_OK;
}

enum al_rc al_policy_unset(struct al_policy *p, const char *id, struct al_err *err)
{
    char norm[AL_LICENSE_ID_MAX + 1];
    enum al_rc rc = al_license_normalize(id, norm, err);
    if (rc)
        return rc;
    const struct al_policy_license *f = al_policy_find(p, norm);
    if (f == NULL)
        return al_err_set(err, AL_ERR_NOT_FOUND, "the policy has no rule for license '%s'; see 'airlock policy "
                          "show'", norm);
    size_t i = (size_t)(f - p->rules);
    memmove(&p->rules[i], &p->rules[i + 1], (p->n - i - 1) * sizeof p->rules[0]);
    p->n--;
    return AL_OK;
}

static enum al_rc corrupt(struct al_err *err, const char *path, const char *why)
{
    return al_err_set(err, AL_ERR_CORRUPT, "policy file '%s' is not valid: %s; fix or remove it (the default "
                      "policy then applies)", path, why);
}

static enum al_rc parse(const char *path, const char *text, size_t len, struct al_policy *out, struct al_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return corrupt(err, path, je.text);
    struct al_policy p;
    al_policy_init(&p);
    enum al_rc rc = AL_OK;
    const char *key;
    json_t *v;
    if (!json_is_object(root)) {
        rc = corrupt(err, path, "not a JSON object");
        goto out;
    }
    json_object_foreach(root, key, v) {
        if (strcmp(key, "version") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) != 1) {
                rc = corrupt(err, path, "\"version\" must be 1");
                goto out;
            }
        } else if (strcmp(key, "unknown") == 0) {
            if (!json_is_string(v) || !al_license_rule_parse(json_string_value(v), &p.unknown)) {
                rc = corrupt(err, path, "\"unknown\" must be \"allow\", \"ack\" or \"deny\"");
                goto out;
            }
        } else if (strcmp(key, "scan") == 0) {
            if (!json_is_string(v) || !al_policy_scan_parse(json_string_value(v), &p.scan_max)) {
                rc = corrupt(err, path, "\"scan\" must be \"ok\" or \"warn\"");
                goto out;
            }
        } else if (strcmp(key, "licenses") == 0) {
            if (!json_is_object(v)) {
                rc = corrupt(err, path, "\"licenses\" must be an object");
                goto out;
            }
            if (json_object_size(v) > AL_POLICY_RULES_MAX) {
                rc = al_err_set(err, AL_ERR_LIMIT, "policy file '%s' has more than %d license rules", path,
                                AL_POLICY_RULES_MAX);
                goto out;
            }
            const char *id;
            json_t *r;
            json_object_foreach(v, id, r) {
                char norm[AL_LICENSE_ID_MAX + 1];
                struct al_err e = AL_ERR_INIT;
                enum al_license_rule rule;
                if (al_license_normalize(id, norm, &e) || strcmp(norm, id) != 0) {
                    rc = corrupt(err, path, "a license id is not in normalized form");
                    goto out;
                }
                if (!json_is_string(r) || !al_license_rule_parse(json_string_value(r), &rule)) {
                    rc = corrupt(err, path, "a license rule must be \"allow\", \"ack\" or \"deny\"");
                    goto out;
                }
                if (al_policy_find(&p, norm)) { /* two ids that normalize alike cannot occur: checked above */
                    rc = corrupt(err, path, "a license is listed twice");
                    goto out;
                }
                if ((rc = al_policy_set(&p, norm, rule, err)))
                    goto out;
            }
        } else {
            rc = corrupt(err, path, "unknown key (version, licenses, unknown, scan are known)");
            goto out;
        }
    }
out:
    json_decref(root);
    if (rc)
        al_policy_release(&p);
    else
        *out = p;
    return rc;
}

enum al_rc al_policy_load(const char *path, struct al_policy *out, struct al_err *err)
{
    char *text = NULL;
    size_t len = 0;
    if (!al_fs_exists(path)) {
        al_policy_init(out);
        return AL_OK;
    }
    enum al_rc rc = al_fs_read_file(path, AL_POLICY_FILE_MAX, &text, &len, err);
    if (rc)
        return rc;
    rc = parse(path, text, len, out, err);
    free(text);
    return rc;
}

enum al_rc al_policy_serialize(const struct al_policy *p, char **out, struct al_err *err)
{
    json_t *lic = json_object();
    for (size_t i = 0; i < p->n; i++)
        json_object_set_new(lic, p->rules[i].id, json_string(al_license_rule_name(p->rules[i].rule)));
    json_t *root = json_pack("{s:i, s:o, s:s, s:s}", "version", 1, "licenses", lic, "unknown",
                             al_license_rule_name(p->unknown), "scan", al_policy_scan_name(p->scan_max));
    char *s = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    if (s == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (t == NULL) {
        free(s);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    *out = t;
    return AL_OK;
}

enum al_rc al_policy_save(const char *path, const struct al_policy *p, struct al_err *err)
{
    char *text = NULL;
    enum al_rc rc = al_policy_serialize(p, &text, err);
    if (rc)
        return rc;
    rc = al_fs_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

bool al_policy_scan_allows(const struct al_policy *p, int verdict)
{
    return verdict >= AL_POLICY_SCAN_OK && verdict <= p->scan_max;
}

/* ---- model cards ---- */

/* The next line of [*pos, end) without its end of line; false at the end. */
static bool next_line(const char **pos, const char *end, const char **ls, size_t *ll)
{
    if (*pos >= end)
        return false;
    const char *s = *pos, *nl = memchr(s, '\n', (size_t)(end - s));
    const char *e = nl ? nl : end;
    *pos = nl ? nl + 1 : end;
    if (e > s && e[-1] == '\r')
        e--;
    *ls = s;
    *ll = (size_t)(e - s);
    return true;
}

static bool line_is(const char *s, size_t n, const char *word)
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n == strlen(word) && memcmp(s, word, n) == 0;
}

/* Copies a scalar value (comment and blanks dropped) into out, "" if none. */
static void scalar(const char *s, size_t n, char *out, size_t size)
{
    const char *e = s + n;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    if (s < e && (*s == '"' || *s == '\'')) {
        const char *q = memchr(s + 1, *s, (size_t)(e - s - 1));
        if (q)
            e = q + 1;
    } else {
        for (const char *c = s; c < e; c++)
            if (*c == '#' && (c == s || c[-1] == ' ' || c[-1] == '\t')) {
                e = c;
                break;
            }
    }
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    size_t len = (size_t)(e - s);
    if (len >= size)
        len = size - 1; /* long enough to be refused by normalize */
    memcpy(out, s, len);
    out[len] = '\0';
}

static enum al_rc add_id(struct al_card_license *out, const char *raw, struct al_err *err)
{
    if (*raw == '\0')
        return AL_OK;
    if (out->n == AL_POLICY_CARD_LICENSES)
        return al_err_set(err, AL_ERR_LIMIT, "the model card lists more than %d licenses", AL_POLICY_CARD_LICENSES);
    struct al_err e = AL_ERR_INIT;
    if (al_license_normalize(raw, out->ids[out->n], &e))
        return al_err_set(err, AL_ERR_INVALID, "model card: %s", e.msg);
    for (size_t i = 0; i < out->n; i++)
        if (strcmp(out->ids[i], out->ids[out->n]) == 0)
            return AL_OK;
    out->n++;
    return AL_OK;
}

/* A flow list "[a, b]" (one line). */
static enum al_rc flow_list(const char *s, size_t n, struct al_card_license *out, struct al_err *err)
{
    const char *e = s + n, *close = memchr(s, ']', n);
    if (close == NULL)
        return al_err_set(err, AL_ERR_INVALID, "model card: the license list does not close on its line");
    s++;
    e = close;
    while (s < e) {
        const char *c = memchr(s, ',', (size_t)(e - s));
        const char *ie = c ? c : e;
        char item[AL_LICENSE_ID_MAX + 8];
        scalar(s, (size_t)(ie - s), item, sizeof item);
        enum al_rc rc = add_id(out, item, err);
        if (rc)
            return rc;
        s = c ? c + 1 : e;
    }
    return AL_OK;
}

enum al_rc al_license_from_card(const char *text, size_t len, struct al_card_license *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    if (len > AL_POLICY_CARD_MAX)
        return al_err_set(err, AL_ERR_LIMIT, "the model card is %zu bytes, over the cap of %u", len,
                          AL_POLICY_CARD_MAX);
    const char *pos = text, *end = text + len, *ls;
    size_t ll;
    if (len >= 3 && memcmp(pos, "\xef\xbb\xbf", 3) == 0)
        pos += 3;
    if (!next_line(&pos, end, &ls, &ll) || !line_is(ls, ll, "---"))
        return AL_OK; /* no front matter */
    out->front_matter = true;
    struct al_card_license found;
    memset(&found, 0, sizeof found);
    char name[AL_LICENSE_ID_MAX + 8] = "";
    bool closed = false, in_list = false, other = false;
    enum al_rc rc = AL_OK;
    while (next_line(&pos, end, &ls, &ll)) {
        if (line_is(ls, ll, "---") || line_is(ls, ll, "...")) {
            closed = true;
            break;
        }
        if (memchr(ls, '\0', ll))
            return al_err_set(err, AL_ERR_INVALID, "model card: a NUL byte in the front matter");
        if (in_list) {
            size_t i = 0;
            while (i < ll && (ls[i] == ' ' || ls[i] == '\t'))
                i++;
            if (i < ll && ls[i] == '-' && (i + 1 == ll || ls[i + 1] == ' ')) {
                char item[AL_LICENSE_ID_MAX + 8];
                scalar(ls + i + 1, ll - i - 1, item, sizeof item);
                if ((rc = add_id(&found, item, err)))
                    return rc;
                continue;
            }
            if (i == ll || ls[i] == '#')
                continue;
            in_list = false;
        }
        if (ll >= 8 && memcmp(ls, "license:", 8) == 0) {
            const char *v = ls + 8, *ve = ls + ll;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            if (v < ve && *v == '[') {
                if ((rc = flow_list(v, (size_t)(ve - v), &found, err)))
                    return rc;
            } else {
                char item[AL_LICENSE_ID_MAX + 8];
                scalar(v, (size_t)(ve - v), item, sizeof item);
                if (*item == '\0')
                    in_list = true;
                else if ((rc = add_id(&found, item, err)))
                    return rc;
            }
        } else if (ll >= 13 && memcmp(ls, "license_name:", 13) == 0) {
            scalar(ls + 13, ll - 13, name, sizeof name);
        }
    }
    if (!closed)
        return al_err_set(err, AL_ERR_INVALID, "model card: the front matter opened by '---' never closes");
    for (size_t i = 0; i < found.n; i++)
        if (strcmp(found.ids[i], "other") == 0)
            other = true;
    if (other && *name) {
        /* `license: other` names its license in license_name */
        struct al_card_license named;
        memset(&named, 0, sizeof named);
        for (size_t i = 0; i < found.n; i++)
            if (strcmp(found.ids[i], "other") != 0 && (rc = add_id(&named, found.ids[i], err)))
                return rc;
        if ((rc = add_id(&named, name, err)))
            return rc;
        found = named;
    }
    memcpy(out->ids, found.ids, sizeof out->ids);
    out->n = found.n;
    return AL_OK;
}

enum al_rc al_license_from_gguf_fd(int fd, const char *name, char *out, size_t size, struct al_err *err)
{
    struct al_gguf_info info;
    enum al_rc rc = al_gguf_inspect_fd(fd, name, &info, err);
    if (rc)
        return rc;
    snprintf(out, size, "%s", info.license);
    return AL_OK;
}

/* ---- decisions ---- */

static void decide_one(const struct al_policy *p, const char *declared, bool acked, struct al_license_decision *d,
                       enum al_decision *v)
{
    char id[AL_LICENSE_ID_MAX + 1];
    struct al_err e = AL_ERR_INIT;
    bool valid = declared && *declared && !al_license_normalize(declared, id, &e);
    if (declared && *declared && !valid)
        snprintf(id, sizeof id, "%s", "(unreadable)");
    const struct al_policy_license *r = valid ? al_policy_find(p, id) : NULL;
    enum al_license_rule rule = r ? r->rule : p->unknown;
    *v = rule == AL_RULE_DENY ? AL_DECIDE_DENY : rule == AL_RULE_ACK && !acked ? AL_DECIDE_ACK_NEEDED
                                                                                : AL_DECIDE_ALLOW;
    snprintf(d->license, sizeof d->license, "%s", declared && *declared ? id : "");
    d->acked = rule == AL_RULE_ACK && acked;
    if (r)
        snprintf(d->rule, sizeof d->rule, "license %s: rule %s (set by 'airlock policy license %s %s')", id,
                 al_license_rule_name(rule), al_license_rule_name(rule), id);
    else if (declared && *declared)
        snprintf(d->rule, sizeof d->rule, "license %s: no rule for it, so 'unknown: %s' decides (set a rule with "
                 "'airlock policy license allow|ack|deny %s')", id, al_license_rule_name(rule), valid ? id : "ID");
    else
        snprintf(d->rule, sizeof d->rule, "no license declared (card nor GGUF), so 'unknown: %s' decides (set by "
                 "'airlock policy license unknown %s')", al_license_rule_name(rule), al_license_rule_name(rule));
}

static void pack_one(const struct al_policy *p, const char *declared, bool acked, struct al_license_decision *d,
                     enum al_decision *v)
{
    char id[AL_LICENSE_ID_MAX + 1] = "";
    struct al_err e = AL_ERR_INIT;
    bool valid = declared && *declared && !al_license_normalize(declared, id, &e);
    if (declared && *declared && !valid)
        snprintf(id, sizeof id, "%s", "(unreadable)");
    const struct al_policy_license *r = valid && p ? al_policy_find(p, id) : NULL;
    const char *note;
    enum al_redist red = valid ? al_license_redist(id, &note) : AL_REDIST_UNKNOWN;
    if (!valid)
        note = declared && *declared ? "the declared license is unreadable" : "no license declared (card nor GGUF)";
    snprintf(d->license, sizeof d->license, "%s", id);
    d->acked = false;
    if (r && r->rule == AL_RULE_DENY) {
        *v = AL_DECIDE_DENY;
        snprintf(d->rule, sizeof d->rule, "license %s: rule deny (set by 'airlock policy license deny %s')", id, id);
        return;
    }
    if (red == AL_REDIST_FREE) {
        *v = AL_DECIDE_ALLOW;
    } else if (acked) {
        *v = AL_DECIDE_ALLOW;
        d->acked = true;
    } else {
        *v = red == AL_REDIST_FORBIDDEN ? AL_DECIDE_DENY : AL_DECIDE_ACK_NEEDED;
    }
    snprintf(d->rule, sizeof d->rule, "license %s: redistribution %s (%s)%s", *id ? id : "(none)",
             al_redist_name(red), note,
             red == AL_REDIST_FREE ? "" : acked ? ", acknowledged with --ack-license"
                                              : "; pack with --ack-license to acknowledge");
}

typedef void one_fn(const struct al_policy *p, const char *declared, bool acked, struct al_license_decision *d,
                    enum al_decision *v);

static void decide(one_fn *fn, const struct al_policy *p, const char *const *card, size_t n_card, const char *gguf,
                   bool acked, struct al_license_decision *d)
{
    memset(d, 0, sizeof *d);
    bool has_gguf = gguf && *gguf;
    if (has_gguf && n_card) {
        char g[AL_LICENSE_ID_MAX + 1], c[AL_LICENSE_ID_MAX + 1];
        struct al_err e = AL_ERR_INIT;
        bool gv = !al_license_normalize(gguf, g, &e), same = false;
        for (size_t i = 0; gv && i < n_card; i++)
            same |= !al_license_normalize(card[i], c, &e) && strcmp(c, g) == 0;
        if (!same) {
            d->disagree = true;
            snprintf(d->finding, sizeof d->finding, "the model card declares '%.64s'%s but the GGUF file's "
                     "general.license is '%.64s'", card[0], n_card > 1 ? " (and more)" : "", gguf);
        }
    }
    struct al_license_decision best, cur;
    enum al_decision bv = AL_DECIDE_ALLOW, cv;
    bool any = false;
    for (size_t i = 0; i <= n_card; i++) {
        const char *lic = i < n_card ? card[i] : has_gguf ? gguf : NULL;
        if (i == n_card && !has_gguf)
            break;
        memset(&cur, 0, sizeof cur);
        fn(p, lic, acked, &cur, &cv);
        if (!any || cv > bv) {
            best = cur;
            bv = cv;
            any = true;
        }
    }
    if (!any) {
        memset(&best, 0, sizeof best);
        fn(p, NULL, acked, &best, &bv);
    }
    snprintf(d->license, sizeof d->license, "%s", best.license);
    memcpy(d->rule, best.rule, sizeof d->rule);
    d->acked = best.acked;
    d->verdict = bv;
}

static const struct al_policy *default_policy(void)
{
    static struct al_policy def = {NULL, 0, AL_RULE_ACK, AL_POLICY_SCAN_WARN};
    return &def;
}

void al_policy_license_decide(const struct al_policy *p, const char *const *card, size_t n_card, const char *gguf,
                              bool acked, struct al_license_decision *d)
{
    decide(decide_one, p ? p : default_policy(), card, n_card, gguf, acked, d);
}

void al_policy_pack_decide(const struct al_policy *p, const char *const *card, size_t n_card, const char *gguf,
                           bool acked, struct al_license_decision *d)
{
    decide(pack_one, p, card, n_card, gguf, acked, d);
}
