/* add_checks.c: the checks of an add shared by add, quantize and finetune
 * (add_checks.h). */
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/add_checks.h"
#include "core/fs.h"
#include "oci/oci.h"

/* No file a GGUF: the version is labelled by what its weights are (the
 * scan's kind of the first weight file, else of the first file), and the user
 * is told that it can be stored but not served. */
static void label_not_gguf(struct al_cli_add_checks *s)
{
    const struct al_scan_report *pick = NULL;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->reports[i]->kind, "gguf") == 0)
            return;
        if (pick == NULL && strcmp(al_oci_media_type_for(s->reports[i]->file), AL_MT_WEIGHT) == 0)
            pick = s->reports[i];
    }
    if (pick == NULL && s->n)
        pick = s->reports[0];
    if (pick == NULL)
        return;
    snprintf(s->format, sizeof s->format, "%s", pick->kind);
    fprintf(stderr, "airlock: warning: no file is a GGUF: '%s' is %s; stored with format '%s', but 'airlock serve' "
            "and 'airlock run' load GGUF models only (convert it first, e.g. with llama.cpp's "
            "convert_hf_to_gguf.py)\n", pick->file, pick->kind, s->format);
}

enum al_rc al_cli_add_check_file(void *ud, const char *path, const char *name, struct al_err *err)
{
    struct al_cli_add_checks *s = ud;
    struct al_scan_report *r = NULL;
    enum al_rc rc = al_bundle_license_file(path, name, &s->lic, err);
    if (rc || (rc = al_scan_file_named(path, name, 0, &r, err)))
        return rc;
    s->reports[s->n++] = r;
    if (r->verdict == AL_SCAN_WARN && !al_policy_scan_allows(s->policy, AL_POLICY_SCAN_WARN)) {
        s->refused = r;
        return al_scan_refuse_rule(r, "add", "the site's policy says scan: ok (policy.json)",
                                   "'airlock scan FILE' lists every finding; remove the file, or let warnings in "
                                   "with 'airlock policy scan require warn'", err);
    }
    if (r->verdict < AL_SCAN_DANGEROUS)
        return AL_OK;
    if (s->allow_dangerous) {
        s->overridden = true;
        fprintf(stderr, "airlock: warning: '%s' is dangerous (%s); added anyway (--allow-dangerous, recorded)\n",
                path, r->kind);
        return AL_OK;
    }
    s->refused = r;
    return al_scan_refuse(r, "add", "'airlock scan FILE' lists every finding; remove the file, or add it with "
                          "--allow-dangerous if you trust it (recorded)", err);
}

enum al_rc al_cli_add_check_record(void *ud, char **detail, const char **note_kind, char **note_detail,
                                   struct al_err *err)
{
    struct al_cli_add_checks *s = ud;
    label_not_gguf(s);
    /* The license, after every file's scan and before anything is copied. */
    struct al_license_decision d;
    al_bundle_license_decide(s->policy, &s->lic, false, s->ack, &d);
    char by[160], who[128];
    struct passwd *pw = getpwuid(geteuid());
    snprintf(who, sizeof who, "%s", pw ? pw->pw_name : "?");
    snprintf(by, sizeof by, "operator %s (--ack-license)", who);
    if ((s->license = al_bundle_license_json(&s->lic, &d, s->ack, by)) == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (d.verdict != AL_DECIDE_ALLOW && s->enforce) {
        s->license_refused = true;
        char hint[256];
        if (d.verdict == AL_DECIDE_DENY)
            snprintf(hint, sizeof hint, "nothing was added; the site's policy denies it");
        else
            snprintf(hint, sizeof hint, "nothing was added; read the license, then add with --ack-license %s "
                     "(recorded)%s", d.license[0] ? d.license : "none",
                     s->ack ? "; the --ack-license given does not name it" : "");
        return al_bundle_license_refuse(&d, "add", hint, err);
    }
    char *scan = al_scan_record_json((const struct al_scan_report *const *)s->reports, s->n);
    json_t *sc = scan ? json_loads(scan, 0, NULL) : NULL;
    json_t *all = sc ? json_pack("{s:O, s:o}", "scan", sc, "license", json_loads(s->license, 0, NULL)) : NULL;
    *detail = all ? json_dumps(all, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(all);
    if (*detail && s->overridden) {
        *note_kind = "scan-override";
        json_t *o = json_pack("{s:s, s:O}", "option", "--allow-dangerous", "scan", sc);
        *note_detail = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(o);
        if (*note_detail == NULL) {
            free(*detail);
            *detail = NULL;
        }
    }
    json_decref(sc);
    free(scan);
    return *detail ? AL_OK : al_err_set(err, AL_ERR_NOMEM, "out of memory");
}

/* The one "license-refused" or "scan-refused" event of a refused add: the
 * reason and KEY's record (the license decision, or the refused file's scan:
 * verdict, rules, first findings). A failure to record is the user's to see. */
enum al_rc al_cli_add_refusal(struct al_repo *r, const char *ref, const char *kind, const char *key,
                              const char *record, struct al_err *err)
{
    char name[AL_LIMIT_NAME + 1];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(ref, ":@"), ref);
    json_t *o = record ? json_pack("{s:s, s:s, s:o}", "operation", "add", "reason", err->msg, key,
                                   json_loads(record, 0, NULL))
                       : NULL;
    char *detail = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    enum al_rc rc = al_repo_record_refusal(r, kind, name, detail, AL_ERR_DENIED, NULL, err);
    free(detail);
    return rc;
}

bool al_cli_add_checks_refused(struct al_repo *r, const char *ref, const struct al_cli_add_checks *c,
                               enum al_rc *rc, struct al_err *err)
{
    if (c->refused) {
        char *rec = al_scan_record_json((const struct al_scan_report *const *)&c->refused, 1);
        *rc = al_cli_add_refusal(r, ref, "scan-refused", "scan", rec, err);
        free(rec);
        return true;
    }
    if (c->license_refused) {
        *rc = al_cli_add_refusal(r, ref, "license-refused", "license", c->license, err);
        return true;
    }
    return false;
}

/* The source version's other files, carried into the quantized one: each
 * file beside the weights (a tokenizer, a README card, a license, a
 * template) read from its blob, checked against its digest (al_repo_read_blob,
 * up to AL_LIMIT_CARRIED_FILE) and written into dir under its name; files
 * in a folder (a bundle's bench/ suite: the source's golden recording) and
 * other GGUFs are left behind. The card of the manifest (AL_ANN_CARD) is
 * written to dir/.card.json, *card set to it. paths[*n...] get the files. */
enum al_rc al_cli_carry_files(struct al_repo *r, const struct al_weights *w, const char *dir, char **paths,
                              size_t *n, char *card, size_t card_size, struct al_err *err)
{
    enum al_rc rc = AL_OK;
    for (size_t i = 0; i < w->n_files && !rc; i++) {
        const struct al_file *f = &w->files[i];
        if (strcmp(f->digest, w->digest) == 0 || strchr(f->path, '/') || al_repo_weights_named(f->path) ||
            f->path[0] == '.' || *n >= AL_LIMIT_FILES_PER_MODEL)
            continue;
        char *data = NULL;
        size_t len = 0;
        char path[AL_LIMIT_PATH];
        snprintf(path, sizeof path, "%s/%s", dir, f->path);
        if (!(rc = al_repo_read_blob(r, f->digest, AL_LIMIT_CARRIED_FILE, &data, &len, err)) &&
            !(rc = al_fs_write_atomic(path, data, len, err))) {
            paths[*n] = strdup(path);
            if (!paths[*n])
                rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
            else
                (*n)++;
        }
        free(data);
    }
    char *text = NULL;
    size_t len = 0;
    if (rc || (rc = al_repo_read_blob(r, w->version.manifest, AL_LIMIT_MANIFEST, &text, &len, err)))
        return rc;
    json_t *m = json_loadb(text, len, 0, NULL);
    const char *c = json_string_value(json_object_get(json_object_get(m, "annotations"), AL_ANN_CARD));
    if (c && *c) {
        snprintf(card, card_size, "%s/.card.json", dir);
        rc = al_fs_write_atomic(card, c, strlen(c), err);
        if (rc)
            card[0] = '\0';
    }
    json_decref(m);
    free(text);
    return rc;
}
