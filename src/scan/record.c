/* record.c: what pack, ingest and add keep of a scan: the JSON record for
 * the event log, and the message of a refusal; and the full report that
 * `airlock scan --json` prints. One home, so the three
 * operations say the same thing about the same file. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/version.h"
#include "scan/scan.h"

static json_t *finding_json(const struct al_scan_finding *f)
{
    json_t *o = json_pack("{s:s, s:s}", "severity", al_scan_verdict_name(f->severity), "what", f->what);
    if (o == NULL)
        return NULL;
    if (f->member[0])
        json_object_set_new(o, "member", json_string(f->member));
    if (f->offset != AL_SCAN_NO_OFFSET)
        json_object_set_new(o, "offset", json_integer((json_int_t)f->offset));
    if (f->opcode[0])
        json_object_set_new(o, "opcode", json_string(f->opcode));
    if (f->tensor[0])
        json_object_set_new(o, "tensor", json_string(f->tensor));
    return o;
}

json_t *al_scan_report_json(const struct al_scan_report *r)
{
    json_t *fs = json_array();
    for (size_t i = 0; i < r->n_findings; i++)
        json_array_append_new(fs, finding_json(&r->findings[i]));
    return json_pack("{s:s, s:s, s:s, s:o, s:I}", "file", r->file, "kind", r->kind, "verdict",
                     al_scan_verdict_name(r->verdict), "findings", fs, "findings_omitted", (json_int_t)r->n_dropped);
}

char *al_scan_record_json(const struct al_scan_report *const *reports, size_t n)
{
    enum al_scan_verdict worst = AL_SCAN_OK;
    json_t *files = json_array();
    for (size_t i = 0; i < n && files; i++) {
        const struct al_scan_report *r = reports[i];
        json_t *first = json_array();
        for (size_t k = 0; k < r->n_findings && k < AL_SCAN_RECORD_FINDINGS; k++)
            json_array_append_new(first, finding_json(&r->findings[k]));
        /* Every string here was made printable ASCII by the scan, so packing cannot fail on UTF-8. */
        json_array_append_new(files, json_pack("{s:s, s:s, s:s, s:I, s:o}", "file", r->file, "kind", r->kind,
                                               "verdict", al_scan_verdict_name(r->verdict), "findings",
                                               (json_int_t)(r->n_findings + r->n_dropped), "first", first));
        if (r->verdict > worst)
            worst = r->verdict;
    }
    json_t *o = json_pack("{s:s, s:i, s:s, s:o}", "scanner", "airlock " AIRLOCK_VERSION, "rules",
                          AL_SCAN_RULES_VERSION, "verdict", al_scan_verdict_name(worst), "files", files);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    return s;
}

/* The refusal of r for findings of severity at least min, with the site's
 * rule (NULL: the built-in one, refuse dangerous) named. */
static enum al_rc refuse(const struct al_scan_report *r, enum al_scan_verdict min, const char *op, const char *rule,
                         const char *hint, struct al_err *err)
{
    char first[1024] = "";
    size_t len = 0, shown = 0;
    for (size_t k = 0; k < r->n_findings && shown < 2 && len < sizeof first; k++) {
        const struct al_scan_finding *f = &r->findings[k];
        if (f->severity < min)
            continue;
        shown++;
        char at[512] = "";
        size_t a = 0;
        if (f->tensor[0])
            a += (size_t)snprintf(at + a, sizeof at - a, ", tensor '%s'", f->tensor);
        if (f->opcode[0] && a < sizeof at)
            a += (size_t)snprintf(at + a, sizeof at - a, ", %s", f->opcode);
        if (f->offset != AL_SCAN_NO_OFFSET && a < sizeof at)
            a += (size_t)snprintf(at + a, sizeof at - a, ", offset %llu", (unsigned long long)f->offset);
        if (f->member[0] && a < sizeof at)
            snprintf(at + a, sizeof at - a, ", member '%s'", f->member);
        int w = snprintf(first + len, sizeof first - len, "%s%s%s%s%s", len ? "; " : "", f->what, at[0] ? " (" : "",
                         at[0] ? at + 2 : "", at[0] ? ")" : "");
        len = w < 0 ? sizeof first : len + (size_t)w;
    }
    size_t total = r->n_findings + r->n_dropped;
    return al_err_set(err, AL_ERR_DENIED, "%s refused: '%s' is %s (%s, scan rules %d): %s%s%s%s%s%s", op, r->file,
                      al_scan_verdict_name(r->verdict), r->kind, AL_SCAN_RULES_VERSION,
                      first[0] ? first : "see the scan", total > shown ? " (and more)" : "", rule ? "; the rule: " : "",
                      rule ? rule : "", hint && hint[0] ? "; " : "", hint ? hint : "");
}

enum al_rc al_scan_refuse(const struct al_scan_report *r, const char *op, const char *hint, struct al_err *err)
{
    return refuse(r, AL_SCAN_DANGEROUS, op, NULL, hint, err);
}

enum al_rc al_scan_refuse_rule(const struct al_scan_report *r, const char *op, const char *rule, const char *hint,
                               struct al_err *err)
{
    return refuse(r, AL_SCAN_WARN, op, rule, hint, err);
}
