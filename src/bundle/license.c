/* license.c: the license of a model's files, as pack, ingest and add read
 * and decide it (issue 18): the card (README.md) and the GGUF's
 * general.license, decided by the policy module; the record and the refusal
 * message shared by the three. */
#include "bundle/bundle.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/fs.h"

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcasecmp(s + n - t, tail) == 0;
}

enum al_rc al_bundle_license_file(const char *path, const char *name, struct al_bundle_license *l,
                                  struct al_err *err)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    enum al_rc rc = AL_OK;
    if (strcasecmp(base, "README.md") == 0 && !l->card_file[0]) {
        char *text = NULL;
        size_t len = 0;
        if ((rc = al_fs_read_file(path, AL_POLICY_CARD_MAX, &text, &len, err)) == AL_OK)
            rc = al_license_from_card(text, len, &l->card, err);
        free(text);
        if (rc) {
            char msg[AL_ERR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err->msg);
            al_err_clear(err);
            return al_err_set(err, rc, "model card '%s': %s", name, msg);
        }
        snprintf(l->card_file, sizeof l->card_file, "%s", name);
    } else if (ends_with(base, ".gguf") && !l->gguf[0]) {
        int fd = -1;
        if ((rc = al_fs_open_regular(path, &fd, err)))
            return rc;
        rc = al_license_from_gguf_fd(fd, name, l->gguf, sizeof l->gguf, err);
        close(fd);
        if (rc)
            return rc;
        if (l->gguf[0])
            snprintf(l->gguf_file, sizeof l->gguf_file, "%s", name);
    }
    return AL_OK;
}

static bool ack_matches(const struct al_bundle_license *l, const char *ack)
{
    char a[AL_LICENSE_ID_MAX + 1], g[AL_LICENSE_ID_MAX + 1];
    struct al_err e = AL_ERR_INIT;
    if (ack == NULL || !ack[0] || al_license_normalize(ack, a, &e) != AL_OK)
        return false;
    for (size_t i = 0; i < l->card.n; i++)
        if (strcmp(l->card.ids[i], a) == 0)
            return true;
    if (l->gguf[0] && al_license_normalize(l->gguf, g, &e) == AL_OK && strcmp(g, a) == 0)
        return true;
    return l->card.n == 0 && !l->gguf[0] && strcmp(a, "none") == 0;
}

void al_bundle_license_decide(const struct al_policy *p, const struct al_bundle_license *l, bool pack,
                              const char *ack, struct al_license_decision *d)
{
    const char *ids[AL_POLICY_CARD_LICENSES];
    for (size_t i = 0; i < l->card.n; i++)
        ids[i] = l->card.ids[i];
    bool acked = ack_matches(l, ack);
    if (pack)
        al_policy_pack_decide(p, ids, l->card.n, l->gguf, acked, d);
    else
        al_policy_license_decide(p, ids, l->card.n, l->gguf, acked, d);
}

char *al_bundle_license_json(const struct al_bundle_license *l, const struct al_license_decision *d,
                             const char *ack, const char *acked_by)
{
    json_t *card = json_array();
    for (size_t i = 0; i < l->card.n; i++)
        json_array_append_new(card, json_string(l->card.ids[i]));
    /* The GGUF's declaration is raw file content: kept only when it is valid UTF-8. */
    json_t *o = json_pack("{s:s, s:s, s:s, s:o}", "license", d->license[0] ? d->license : "none", "decision",
                          al_decision_name(d->verdict), "rule", d->rule, "card", card);
    if (o == NULL)
        return NULL;
    json_t *g = json_string(l->gguf);
    json_object_set_new(o, "gguf", g ? g : json_string("(not UTF-8)"));
    if (d->disagree)
        json_object_set_new(o, "finding", json_string(d->finding));
    if (d->acked && ack) {
        json_object_set_new(o, "ack", json_string(ack));
        json_object_set_new(o, "acked_by", json_string(acked_by ? acked_by : ""));
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

enum al_rc al_bundle_license_refuse(const struct al_license_decision *d, const char *op, const char *hint,
                                    struct al_err *err)
{
    return al_err_set(err, AL_ERR_DENIED, "%s refused: license '%s' is %s: %s%s%s%s%s", op,
                      d->license[0] ? d->license : "none", al_decision_name(d->verdict), d->rule,
                      d->disagree ? "; " : "", d->disagree ? d->finding : "", hint && hint[0] ? "; " : "",
                      hint ? hint : "");
}
