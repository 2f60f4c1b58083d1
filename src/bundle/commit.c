/*
 * commit.c: after the archive pass. The checks that need the whole bundle
 * (missing entries, the OCI layout, the policy for the model's name, expiry,
 * sequence), then the commit: blobs made visible, the version recorded with
 * its provenance in one step. And the record of a refusal.
 */
#include "bundle/bundle_int.h"

#include <jansson.h>
#include <pwd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "policy/policy.h"
#include "scan/scan.h"

static void operator_name(char *out, size_t size)
{
    struct passwd *pw = getpwuid(geteuid());
    const char *u = getenv("SUDO_USER");
    snprintf(out, size, "%s%s%s", pw ? pw->pw_name : "?", u && *u ? " via sudo from " : "", u && *u ? u : "");
}

enum al_rc al_ing_parse_native(struct al_ing *g, struct al_err *err)
{
    if (g->have_man)
        return AL_OK;
    struct al_ing_entry *ix = al_ing_find(g, "index.json");
    if (ix == NULL || ix->mem == NULL)
        return AL_OK;
    json_error_t je;
    json_t *root = json_loadb(ix->mem, ix->mem_len, JSON_REJECT_DUPLICATES, &je);
    json_t *ms = json_object_get(root, "manifests");
    const char *digest = json_string_value(json_object_get(json_array_get(ms, 0), "digest"));
    char path[AL_LIMIT_FILE_NAME + 1];
    if (!json_is_array(ms) || json_array_size(ms) != 1 || al_bundle_blob_name(digest, path, NULL) != AL_OK) {
        json_decref(root);
        return al_err_set(err, AL_ERR_INVALID, "index.json of the bundle must describe exactly one manifest");
    }
    json_decref(root);
    struct al_ing_entry *m = al_ing_find(g, path);
    if (m == NULL || m->mem == NULL)
        return AL_OK; /* not read yet */
    if (!al_digest_hex_eq(m->digest, path + sizeof AL_BUNDLE_BLOB_DIR - 1))
        return al_err_set(err, AL_ERR_VERIFY, "blob '%s' does not match its name: content is %s", path, m->digest);
    enum al_rc rc = al_oci_manifest_parse(m->mem, m->mem_len, &g->man, err);
    if (rc)
        return rc;
    g->have_man = true;
    g->man_entry = m;
    return AL_OK;
}

/* A native bundle's blobs: each named by its content; config and layers there with their sizes. */
static enum al_rc check_layout(struct al_ing *g, struct al_err *err)
{
    enum al_rc rc = al_ing_parse_native(g, err);
    if (rc)
        return rc;
    if (!g->have_man)
        return al_err_set(err, AL_ERR_INVALID, "the manifest that index.json names is missing from the bundle");
    if ((rc = al_ing_parse_delta(g, err)))
        return rc;
    for (size_t i = 0; i < g->n_ents; i++) {
        const char *n = g->ents[i].name;
        if (strcmp(n, "index.json") == 0 || strcmp(n, "oci-layout") == 0 || al_ing_delta_entry(g, n))
            continue;
        if (strncmp(n, AL_BUNDLE_BLOB_DIR, sizeof AL_BUNDLE_BLOB_DIR - 1) != 0 ||
            !al_digest_hex_eq(g->ents[i].digest, n + sizeof AL_BUNDLE_BLOB_DIR - 1))
            return al_err_set(err, AL_ERR_VERIFY, "entry '%s' is not a blob named by its content (%s)", n,
                              g->ents[i].digest);
    }
    char path[AL_LIMIT_FILE_NAME + 1];
    if ((rc = al_bundle_blob_name(g->man.config_digest, path, err)))
        return rc;
    if ((g->cfg_entry = al_ing_find(g, path)) == NULL)
        return al_err_set(err, AL_ERR_INVALID, "the config blob %s is missing from the bundle", g->man.config_digest);
    for (size_t i = 0; i < g->man.n_layers; i++) {
        if ((rc = al_bundle_blob_name(g->man.layers[i].digest, path, err)))
            return rc;
        struct al_ing_entry *e = al_ing_find(g, path);
        if (e == NULL && al_ing_delta_provides(g, g->man.layers[i].digest))
            continue; /* rebuilt or taken from the base after the policy checks (apply.c) */
        if (e == NULL)
            return al_err_set(err, AL_ERR_INVALID, "file '%s' (%s) is missing from the bundle", g->man.layers[i].path,
                              g->man.layers[i].digest);
        if (e->size != g->man.layers[i].size)
            return al_err_set(err, AL_ERR_VERIFY, "file '%s' is %" PRIu64 " bytes, the manifest lists %" PRIu64,
                              g->man.layers[i].path, e->size, g->man.layers[i].size);
    }
    al_ing_check(g, "oci-layout");
    return AL_OK;
}

static enum al_rc check_dates(struct al_ing *g, const char *name, int64_t seq, struct al_err *err)
{
    struct al_bundle_report *rep = g->rep;
    if (g->have_man && g->man.expires[0]) {
        int64_t exp = 0;
        enum al_rc rc = al_time_parse(g->man.expires, &exp, err);
        if (rc)
            return rc;
        if ((int64_t)time(NULL) > exp) {
            if (!g->o->allow_expired)
                return al_err_set(err, AL_ERR_DENIED, "the bundle expired on %s; ask for a fresh one, or accept it "
                                  "with --allow-expired (recorded)", g->man.expires);
            snprintf(rep->overrides, sizeof rep->overrides, "expired");
        }
        al_ing_check(g, "expiry");
    }
    if (seq > 0) {
        int64_t max = 0;
        enum al_rc rc = al_repo_max_seq(g->r, name, &max, err);
        if (rc)
            return rc;
        rep->max_seq = max;
        /* The very bundle ingested before (its signed manifest is a version of
         * this model here): already present, not a replay; nothing will change.
         * --allow-downgrade asks to go back to it: then it is committed again
         * (tag, active pointer), recorded as the override. */
        char ref[AL_LIMIT_NAME + AL_DIGEST_SIZE + 2];
        snprintf(ref, sizeof ref, "%s@%s", name, rep->manifest);
        if (seq <= max && !g->o->allow_downgrade && rep->manifest[0] &&
            al_repo_resolve(g->r, ref, &rep->version, NULL) == AL_OK) {
            rep->existed = rep->untouched = true;
            al_ing_check(g, "already-present");
            return AL_OK;
        }
        if (seq <= max) {
            if (!g->o->allow_downgrade)
                return al_err_set(err, AL_ERR_DENIED, "replay refused: sequence %" PRId64 " of '%s' is not above %"
                                  PRId64 ", the highest ingested; to go back on purpose use --allow-downgrade "
                                  "(recorded)", seq, name, max);
            size_t n = strlen(rep->overrides);
            snprintf(rep->overrides + n, sizeof rep->overrides - n, "%sdowngrade", n ? "," : "");
        }
        al_ing_check(g, "sequence");
    }
    return AL_OK;
}

static json_t *signers_json(const struct al_bundle_report *rep)
{
    json_t *a = json_array();
    for (size_t i = 0; i < rep->n_signers; i++) {
        const struct al_bundle_signer *s = &rep->signers[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "kind", s->kind, "file", s->file, "status", s->status,
                              strcmp(s->kind, "gpg") == 0 ? "fingerprint" : "key_id", s->id);
        if (s->key_name[0])
            json_object_set_new(o, "trusted_as", json_string(s->key_name));
        json_array_append_new(a, o);
    }
    return a;
}

static char *provenance(struct al_ing *g, const char *source, const char *verdict, const char *reason)
{
    const struct al_bundle_report *rep = g->rep;
    char op[128], now[32];
    operator_name(op, sizeof op);
    al_time_now_iso(now);
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "bundle", rep->bundle, "source", source,
                          "operator", op, "time", now, "format", rep->native ? "native" : "plain", "signers",
                          signers_json(rep), "checks", g->checks, "verdict", verdict);
    if (reason)
        json_object_set_new(d, "reason", json_string(reason));
    if (rep->name[0])
        json_object_set_new(d, "name", json_string(rep->name));
    if (rep->tag[0])
        json_object_set_new(d, "tag", json_string(rep->tag));
    if (rep->seq > 0)
        json_object_set_new(d, "sequence", json_integer(rep->seq));
    if (rep->expires[0])
        json_object_set_new(d, "expires", json_string(rep->expires));
    if (rep->previous[0])
        json_object_set_new(d, "previous", json_string(rep->previous));
    if (rep->overrides[0])
        json_object_set_new(d, "overrides", json_string(rep->overrides));
    if (g->import) {
        json_t *im = json_loads(g->import, 0, NULL);
        if (im == NULL) {
            json_decref(d);
            return NULL;
        }
        json_object_set_new(d, "import", im);
    }
    if (rep->threshold)
        json_object_set_new(d, "threshold", json_integer(rep->threshold));
    /* The scan: of the file that refused the ingest, or of every file. */
    const char *scan = g->scan_refused ? g->scan_refused : g->scan;
    if (scan) {
        json_t *sc = json_loads(scan, 0, NULL);
        if (sc == NULL) {
            json_decref(d);
            return NULL;
        }
        json_object_set_new(d, "scan", sc);
    }
    json_t *dj = al_ing_delta_json(g);
    if (dj)
        json_object_set_new(d, "delta", dj);
    if (g->license) {
        json_t *lc = json_loads(g->license, 0, NULL);
        if (lc == NULL) {
            json_decref(d);
            return NULL;
        }
        json_object_set_new(d, "license", lc);
    }
    char *s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(d);
    return s;
}

enum al_rc al_ing_record_refusal(struct al_ing *g, const char *source, enum al_rc why, struct al_err *err)
{
    char *detail = provenance(g, source, "refused", err->msg);
    const char *kind = g->scan_refused      ? "scan-refused"
                       : g->license_refused ? "license-refused"
                       : g->local           ? "import-refused"
                                            : "ingest-refused";
    enum al_rc rc = al_repo_record_refusal(g->r, kind, g->rep->name, detail, why, "run the command again to record it",
                                           err);
    free(detail);
    return rc;
}

/* A LoRA adapter version (its manifest binds it to a base's weights) comes
 * in only where its base is, and only when it fits it, as `airlock add
 * --base` checks (al_repo_adapter_fits). A dry run, with no content, checks
 * that the base is here. */
static enum al_rc check_adapter(struct al_ing *g, struct al_ing_entry *e, const char *name, struct al_err *err)
{
    struct al_version base;
    bool found = false;
    enum al_rc rc = al_repo_find_base(g->r, g->man.adapter_base, &base, &found, err);
    if (rc)
        return rc;
    if (!found)
        return al_err_set(err, AL_ERR_NOT_FOUND,
                          "'%s' is a LoRA adapter for the weights %s, and no version in this store has them; "
                          "ingest its base first",
                          name, g->man.adapter_base);
    if (!e->w)
        return AL_OK;
    char path[AL_LIMIT_PATH], ref[AL_LIMIT_NAME + AL_DIGEST_SIZE + 2];
    snprintf(ref, sizeof ref, "%s@%s", base.model, base.manifest);
    struct al_adapter_fit fit;
    if ((rc = al_repo_blob_path(g->r, g->man.adapter_base, path, sizeof path, err)))
        return rc;
    return al_repo_adapter_fits(al_blob_writer_path(e->w), name, path, ref, &fit, err);
}

/* Every weight file passes the check of `airlock add` (al_repo_facts): a
 * file named .gguf must be a GGUF, and a GGUF's header must parse. Run before
 * any blob is visible, so a refusal leaves the store as it was; a dry run,
 * which keeps no content, checks the first bytes. *facts: the first GGUF's,
 * for a plain bundle's config. */
static enum al_rc check_weights(struct al_ing *g, struct al_model_facts *facts, struct al_err *err)
{
    memset(facts, 0, sizeof *facts);
    bool native = g->rep->native;
    size_t n = native ? g->man.n_layers : g->n_ents;
    for (size_t i = 0; i < n; i++) {
        const char *name = native ? g->man.layers[i].path : g->ents[i].name;
        const char *mt = native ? g->man.layers[i].media_type : al_oci_media_type_for(name);
        struct al_ing_entry *e = native ? NULL : &g->ents[i];
        if (native) {
            char blob[AL_LIMIT_FILE_NAME + 1];
            enum al_rc rc = al_bundle_blob_name(g->man.layers[i].digest, blob, err);
            if (rc)
                return rc;
            e = al_ing_find(g, blob);
        }
        if (e == NULL || strcmp(mt, AL_MT_WEIGHT) != 0)
            continue;
        struct al_model_facts f;
        enum al_rc rc = e->w ? al_repo_facts_named(al_blob_writer_path(e->w), name, &f, err)
                             : al_repo_facts_head(name, e->head, e->head_len, err);
        if (rc)
            return rc;
        if (e->w && !facts->architecture[0])
            *facts = f;
        if (native && g->man.adapter_base[0] && (rc = check_adapter(g, e, name, err)))
            return rc;
    }
    return AL_OK;
}

/* The i-th file of the bundle: its name in the bundle, and its staged entry
 * (*e NULL, or without a writer, when nothing was staged for it). A native
 * bundle's files are its manifest's layers, a plain one's its entries. */
static enum al_rc staged_file(struct al_ing *g, size_t i, const char **name, struct al_ing_entry **e,
                              struct al_err *err)
{
    if (!g->rep->native) {
        *name = g->ents[i].name;
        *e = &g->ents[i];
        return AL_OK;
    }
    char blob[AL_LIMIT_FILE_NAME + 1];
    *name = g->man.layers[i].path;
    *e = NULL;
    enum al_rc rc = al_bundle_blob_name(g->man.layers[i].digest, blob, err);
    if (!rc)
        *e = al_ing_find(g, blob);
    return rc;
}

void al_ing_values_begin(struct al_ing_entry *en, uint64_t size)
{
    struct al_err err = AL_ERR_INIT;
    if (en->w != NULL && en->vs == NULL && en->values == NULL)
        (void)al_gguf_value_stream_new(size, en->name, &en->vs, &err);
}

void al_ing_values_feed(struct al_ing_entry *en, const void *data, size_t len)
{
    al_gguf_value_stream_feed(en->vs, data, len);
}

void al_ing_values_end(struct al_ing_entry *en)
{
    struct al_gguf_value_report rep;
    if (en->vs != NULL && al_gguf_value_stream_finish(en->vs, &rep) && (en->values = malloc(sizeof rep)) != NULL)
        *en->values = rep;
    al_gguf_value_stream_free(en->vs);
    en->vs = NULL;
}

void al_ing_values_free(struct al_ing_entry *en)
{
    al_gguf_value_stream_free(en->vs);
    en->vs = NULL;
    free(en->values);
    en->values = NULL;
}

/* Every file of the version is scanned (scan.h) in its temporary file,
 * under its name in the version and with AL_SCAN_EXEC_DANGEROUS: inside a
 * bundle an executable bit (from the tar entry) on an executable or script
 * is dangerous. Before any blob is visible, so a refusal leaves the store as
 * it was. A dangerous file refuses the ingest (AL_ERR_DENIED, recorded as
 * "scan-refused") unless --allow-dangerous, which is recorded as an
 * override. A warn under the site's `scan: ok` (policy.json) refuses the
 * same way, with the rule named; --allow-dangerous does not lift it. The
 * record of every file goes into the ingest event. A dry run keeps no content
 * and scans nothing. A GGUF's tensor values were checked as it was written
 * (al_ing_values_*) when that could follow it: they are not read again. */
static enum al_rc check_scan(struct al_ing *g, const struct al_policy *pol, struct al_err *err)
{
    bool native = g->rep->native;
    size_t n = native ? g->man.n_layers : g->n_ents;
    struct al_scan_report **reps = calloc(n ? n : 1, sizeof *reps);
    if (reps == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    enum al_rc rc = AL_OK;
    size_t done = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *name;
        struct al_ing_entry *e;
        if ((rc = staged_file(g, i, &name, &e, err)))
            break;
        if (e == NULL || e->w == NULL)
            continue;
        unsigned flags = AL_SCAN_EXEC_DANGEROUS | (e->exec ? AL_SCAN_EXEC_BIT : 0u);
        if ((rc = al_scan_file_values(al_blob_writer_path(e->w), name, flags, e->values, &reps[done], err)))
            break;
        struct al_scan_report *r = reps[done++];
        if (r->verdict == AL_SCAN_WARN && !al_policy_scan_allows(pol, AL_POLICY_SCAN_WARN)) {
            g->scan_refused = al_scan_record_json((const struct al_scan_report *const *)&r, 1);
            rc = g->scan_refused ? al_scan_refuse_rule(r, "ingest", "the site's policy says scan: ok (policy.json)",
                                                       "nothing was stored; ask the sender for a clean bundle, or "
                                                       "let warnings in with 'airlock policy scan require warn'",
                                                       err)
                                 : al_err_set(err, AL_ERR_NOMEM, "out of memory");
            continue;
        }
        if (r->verdict < AL_SCAN_DANGEROUS)
            continue;
        if (g->o->allow_dangerous) {
            size_t k = strlen(g->rep->overrides);
            if (strstr(g->rep->overrides, "dangerous") == NULL)
                snprintf(g->rep->overrides + k, sizeof g->rep->overrides - k, "%sdangerous", k ? "," : "");
            continue;
        }
        g->scan_refused = al_scan_record_json((const struct al_scan_report *const *)&r, 1);
        rc = g->scan_refused ? al_scan_refuse(r, "ingest", "nothing was stored; ask the sender for a clean "
                                              "bundle, or ingest with --allow-dangerous if you trust it (recorded)",
                                              err)
                             : al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    if (!rc && (g->scan = al_scan_record_json((const struct al_scan_report *const *)reps, done)) == NULL)
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < done; i++)
        al_scan_report_free(reps[i]);
    free(reps);
    return rc;
}

/* The license (docs/internals/bundle.md): the card (README.md) and the
 * GGUF's general.license of the staged files, decided by the site's policy.
 * Acknowledged by the bundle's signed manifest (pack --ack-license) or by the
 * operator (ingest --ack-license). Deny, or ack-needed unacknowledged,
 * refuses (AL_ERR_DENIED, one "license-refused" event) when the site has a
 * policy file; without one the decision is only recorded. Before any blob is
 * visible. */
static enum al_rc check_license(struct al_ing *g, const struct al_policy *pol, bool enforce, struct al_err *err)
{
    bool native = g->rep->native;
    size_t n = native ? g->man.n_layers : g->n_ents;
    struct al_bundle_license l;
    memset(&l, 0, sizeof l);
    enum al_rc rc = AL_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *name;
        struct al_ing_entry *e;
        if ((rc = staged_file(g, i, &name, &e, err)))
            return rc;
        if (e && e->w) {
            rc = al_bundle_license_file(al_blob_writer_path(e->w), name, &l, err);
        } else if (native && g->delta.have_found) {
            /* A delta does not ship the files its base has (a model card, say):
             * the version's copy is the store's blob of that digest. */
            char src[AL_LIMIT_PATH];
            if (!(rc = al_repo_blob_path(g->r, g->man.layers[i].digest, src, sizeof src, err)))
                rc = al_bundle_license_file(src, name, &l, err);
        }
    }
    if (rc)
        return rc;
    const char *bundle_ack = native && g->man.license_ack[0] ? g->man.license_ack : NULL;
    const char *op_ack = g->o->ack_license;
    struct al_license_decision d;
    al_bundle_license_decide(pol, &l, false, bundle_ack, &d);
    const char *ack = bundle_ack, *by = "bundle (the signed manifest)";
    char op[160];
    if (!d.acked && op_ack && op_ack[0]) {
        struct al_license_decision d2;
        al_bundle_license_decide(pol, &l, false, op_ack, &d2);
        if (d2.acked) {
            d = d2;
            ack = op_ack;
            char who[128];
            operator_name(who, sizeof who);
            snprintf(op, sizeof op, "operator %s (--ack-license)", who);
            by = op;
        }
    }
    if ((g->license = al_bundle_license_json(&l, &d, ack, by)) == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (d.verdict == AL_DECIDE_ALLOW || !enforce)
        return AL_OK;
    g->license_refused = true;
    char hint[256];
    if (d.verdict == AL_DECIDE_DENY)
        snprintf(hint, sizeof hint, "nothing was stored; the site's policy denies it");
    else
        snprintf(hint, sizeof hint, "nothing was stored; read the license, then ingest with --ack-license %s "
                 "(recorded), or have the build host pack it with --ack-license%s",
                 d.license[0] ? d.license : "none",
                 op_ack && op_ack[0] ? "; the --ack-license given does not name it" : "");
    return al_bundle_license_refuse(&d, "ingest", hint, err);
}

/* A plain bundle: its files become the layers of a manifest made here. */
static enum al_rc build_plain(struct al_ing *g, const struct al_model_facts *facts, struct al_oci_layer *layers,
                              size_t n, char *config_d, uint64_t *config_size, char *manifest_d,
                              uint64_t *manifest_size, struct al_err *err)
{
    bool gguf = facts->architecture[0] != '\0';
    char created[32];
    al_time_now_iso(created);
    struct al_oci_model m = {
        .name = g->rep->name, .version = g->rep->tag, .created = created, .architecture = facts->architecture,
        .format = gguf ? "gguf" : "", .param_size = facts->param_size, .precision = facts->precision,
        .quantization = facts->quantization, .previous = g->rep->previous, .card_json = g->card,
        .layers = layers, .n_layers = n,
    };
    char *config = NULL, *manifest = NULL;
    enum al_rc rc = al_oci_config_build(&m, &config, err);
    if (!rc)
        rc = al_repo_put(g->r, config, strlen(config), config_d, err);
    if (!rc)
        rc = al_oci_manifest_build(&m, config_d, strlen(config), &manifest, err);
    if (!rc)
        rc = al_repo_put(g->r, manifest, strlen(manifest), manifest_d, err);
    if (!rc)
        *config_size = strlen(config), *manifest_size = strlen(manifest);
    free(config);
    free(manifest);
    return rc;
}

/* What the archive pass cannot check alone: signatures, every listed entry
 * present and every entry listed, and (native) the OCI layout. */
static enum al_rc check_entries(struct al_ing *g, struct al_err *err)
{
    enum al_rc rc = AL_OK;
    if (!g->sigs_checked && (rc = al_ing_check_sigs(g, err)))
        return rc;
    for (size_t i = 0; i < g->n_sums; i++)
        if (al_ing_find(g, g->sums[i].name) == NULL)
            return al_err_set(err, AL_ERR_VERIFY, "'%s' is listed in checksums.txt but missing from the bundle",
                              g->sums[i].name);
    for (size_t i = 0; i < g->n_ents; i++) {
        struct al_sum *s = al_sums_find(g->sums, g->n_sums, g->ents[i].name);
        if (s == NULL || !al_digest_hex_eq(g->ents[i].digest, s->hex))
            return al_err_set(err, AL_ERR_VERIFY, "'%s' is not listed in checksums.txt or does not match it",
                              g->ents[i].name);
    }
    if (g->n_ents == 0)
        return al_err_set(err, AL_ERR_INVALID, "the bundle holds no files besides its checksums and signatures");
    al_ing_check(g, "checksums");
    al_ing_check(g, "entries");
    g->rep->native = al_ing_find(g, "oci-layout") && al_ing_find(g, "index.json");
    return g->rep->native ? check_layout(g, err) : AL_OK;
}

/* The name and tag the version gets: --as wins; a native bundle names itself. */
static enum al_rc name_version(struct al_ing *g, struct al_err *err)
{
    struct al_bundle_report *rep = g->rep;
    struct al_ref ref;
    memset(&ref, 0, sizeof ref);
    enum al_rc rc = AL_OK;
    if (g->o->as) {
        if ((rc = al_index_ref_parse(g->o->as, &ref, err)))
            return rc;
        if (ref.digest[0])
            return al_err_set(err, AL_ERR_USAGE, "--as takes NAME[:TAG], not a digest");
    } else if (!rep->native) {
        return al_err_set(err, AL_ERR_USAGE, "a plain bundle does not name its model: give --as NAME:TAG");
    }
    if (rep->native) {
        if (!al_name_valid(g->man.title))
            return al_err_set(err, AL_ERR_INVALID, "the manifest names no valid model (org.opencontainers.image.title)");
        if (g->man.seq <= 0)
            return al_err_set(err, AL_ERR_INVALID, "the manifest has no valid sequence number (io.airlock.sequence)");
        snprintf(rep->manifest, sizeof rep->manifest, "%s", g->man_entry->digest);
        rep->seq = g->man.seq;
        snprintf(rep->created, sizeof rep->created, "%s", g->man.created);
        snprintf(rep->expires, sizeof rep->expires, "%s", g->man.expires);
        snprintf(rep->previous, sizeof rep->previous, "%s", g->man.previous);
    }
    snprintf(rep->name, sizeof rep->name, "%s", ref.name[0] ? ref.name : g->man.title);
    snprintf(rep->tag, sizeof rep->tag, "%s",
             ref.tag[0] ? ref.tag : (rep->native && al_tag_valid(g->man.version)) ? g->man.version : "latest");
    return AL_OK;
}

/* Everything is proven: makes the blobs visible, then records the version,
 * its provenance and any override in one transaction. */
static enum al_rc commit(struct al_ing *g, const char *source, const struct al_model_facts *facts,
                         struct al_err *err)
{
    struct al_bundle_report *rep = g->rep;
    enum al_rc rc = AL_OK;
    size_t n_files = rep->native ? g->man.n_layers : g->n_ents;
    struct al_oci_layer *layers = calloc(n_files + 1, sizeof *layers);
    struct al_file *files = calloc(n_files + 1, sizeof *files);
    char *detail = NULL, *override = NULL;
    struct al_ing_kept kept = {.n = 0};
    if (!layers || !files) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < g->n_ents && !rc; i++) {
        struct al_ing_entry *e = &g->ents[i];
        if (rep->native && strncmp(e->name, AL_BUNDLE_BLOB_DIR, sizeof AL_BUNDLE_BLOB_DIR - 1) != 0)
            continue;
        rc = al_blob_writer_commit(e->w, e->digest, NULL, NULL, err);
    }
    if (rc)
        goto out;
    char config_d[AL_DIGEST_SIZE], manifest_d[AL_DIGEST_SIZE];
    uint64_t config_size = 0, manifest_size = 0;
    if (rep->native) {
        memcpy(layers, g->man.layers, n_files * sizeof *layers);
        memcpy(config_d, g->man.config_digest, AL_DIGEST_SIZE);
        memcpy(manifest_d, g->man_entry->digest, AL_DIGEST_SIZE);
        manifest_size = g->man_entry->size;
    } else {
        struct al_version cur;
        if (al_repo_resolve(g->r, rep->name, &cur, NULL) == AL_OK)
            snprintf(rep->previous, sizeof rep->previous, "%s", cur.manifest);
        for (size_t i = 0; i < n_files; i++) {
            snprintf(layers[i].path, sizeof layers[i].path, "%s", g->ents[i].name);
            memcpy(layers[i].digest, g->ents[i].digest, AL_DIGEST_SIZE);
            layers[i].size = g->ents[i].size;
            snprintf(layers[i].media_type, sizeof layers[i].media_type, "%s", al_oci_media_type_for(g->ents[i].name));
        }
        if ((rc = build_plain(g, facts, layers, n_files, config_d, &config_size, manifest_d, &manifest_size, err)))
            goto out;
        snprintf(rep->manifest, sizeof rep->manifest, "%s", manifest_d);
    }
    for (size_t i = 0; i < n_files; i++) {
        snprintf(files[i].path, sizeof files[i].path, "%s", layers[i].path);
        memcpy(files[i].digest, layers[i].digest, AL_DIGEST_SIZE);
        files[i].size = layers[i].size;
        snprintf(files[i].media_type, sizeof files[i].media_type, "%s", layers[i].media_type);
    }
    al_ing_check(g, "committed");
    detail = provenance(g, source, "accepted", NULL);
    /* The overrides get an event of their own, so `airlock log` shows them at a glance. */
    if (rep->overrides[0])
        override = provenance(g, source, "accepted with override", rep->overrides);
    if (!detail || (rep->overrides[0] && !override)) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* The signatures it arrived with stay with the version (referrer.c). */
    if (rep->native && (rc = al_ing_keep_referrer(g, manifest_d, manifest_size, &kept, err)))
        goto out;
    struct al_version_commit vc = {
        .name = rep->name, .tag = rep->tag, .manifest = manifest_d, .manifest_size = manifest_size,
        .config = config_d, .seq = rep->seq, .files = files, .n_files = n_files, .no_activate = g->o->no_activate,
        .event_kind = g->local ? "import" : "ingest", .event_detail = detail,
        .note_kind = override ? "ingest-override" : NULL, .note_detail = override,
        .referrer = kept.referrer[0] ? kept.referrer : NULL,
        .referrer_blobs = (const char(*)[AL_DIGEST_SIZE])kept.blobs, .n_referrer_blobs = kept.n,
    };
    if (!(rc = al_repo_commit_version(g->r, &vc, &rep->version, &rep->existed, err)))
        rep->accepted = true;
out:
    free(kept.blobs);
    free(override);
    free(detail);
    free(layers);
    free(files);
    return rc;
}

/* The bundle's signed manifest is already a version of the model here (a
 * bundle ingested twice; check_dates): nothing is stored and no tag or active
 * version moves, since an old bundle sent again must not bring its version
 * back. One "ingest-existing" event records the attempt. */
static enum al_rc already_present(struct al_ing *g, const char *source, struct al_err *err)
{
    char *detail = provenance(g, source, "already present", NULL);
    if (detail == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    enum al_rc rc = al_repo_record_event(g->r, "ingest-existing", g->rep->name, g->rep->manifest, detail, err);
    free(detail);
    if (!rc)
        g->rep->accepted = true;
    return rc;
}

/* A delta bundle: its base must be here; then (not in a dry run) the patched
 * files are rebuilt and proven against the signed manifest (apply.c). */
static enum al_rc check_delta(struct al_ing *g, struct al_err *err)
{
    if (!g->delta.on)
        return AL_OK;
    enum al_rc rc = al_ing_delta_base(g, err);
    if (!rc && !g->o->dry_run)
        rc = al_ing_delta_apply(g, err);
    return rc;
}

enum al_rc al_ing_finish(struct al_ing *g, const char *source, struct al_err *err)
{
    struct al_model_facts facts;
    enum al_rc rc;
    if ((rc = check_entries(g, err)) || (rc = name_version(g, err)) ||
        (rc = al_ing_check_policy(g, g->rep->name, err)) || (rc = check_dates(g, g->rep->name, g->rep->seq, err)))
        return rc;
    if (g->rep->untouched && g->o->dry_run)
        g->rep->accepted = true;
    if (g->rep->untouched)
        return g->o->dry_run ? AL_OK : already_present(g, source, err);
    if ((rc = check_delta(g, err)) || (rc = check_weights(g, &facts, err)))
        return rc;
    al_ing_check(g, "weights");
    if (g->o->dry_run) {
        g->rep->accepted = true;
        return AL_OK;
    }
    struct al_policy pol;
    char path[AL_LIMIT_PATH];
    if ((rc = al_policy_path(al_repo_home(g->r), path, sizeof path, err)) || (rc = al_policy_load(path, &pol, err)))
        return rc;
    struct stat st;
    bool enforce = stat(path, &st) == 0;
    if (!(rc = check_scan(g, &pol, err)))
        al_ing_check(g, "scan");
    if (!rc && !(rc = check_license(g, &pol, enforce, err)))
        al_ing_check(g, "license");
    if (!rc)
        rc = commit(g, source, &facts, err);
    al_policy_release(&pol);
    return rc;
}
