/*
 * cmd_show.c: the commands that read the store: ls, show, log. Each has a
 * --json form for scripts (stable keys, one JSON document on stdout).
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>

#include "cli/bom.h"
#include "cli/cli.h"
#include "cli/cli_util.h"
#include "core/limits.h"
#include "oci/oci.h"

int al_cmd_ls(int argc, char **argv);
int al_cmd_show(int argc, char **argv);
int al_cmd_log(int argc, char **argv);

/* What ls, show and log were asked for: --json, --verify (log only), and
 * where the arguments after the options start. */
struct read_args {
    bool json, verify, bom;
    int first;
};

/* begin()'s flags: log takes --verify, show exactly one REF and --bom. */
enum { TAKES_VERIFY = 1, NEEDS_REF = 2, TAKES_BOM = 4 };

/* The start ls, show and log share: help, the options, then the store.
 * Usage errors name argv[0], the command. Returns -1 when the command goes on
 * with the store open in *r; otherwise the exit status to return. */
static int begin(int argc, char **argv, const char *help, int flags, struct read_args *a, struct al_repo **r)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"verify", no_argument, NULL, 'v'}, {"bom", no_argument, NULL, 'b'},
        {NULL, 0, NULL, 0}};
    const char *cmd = argv[0];
    if (al_cli_help(argc, argv, help))
        return AL_EXIT_OK;
    int c, status = -1;
    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'j')
            a->json = true;
        else if (c == 'v' && (flags & TAKES_VERIFY))
            a->verify = true;
        else if (c == 'b' && (flags & TAKES_BOM))
            a->bom = true;
        else
            status = al_cli_usage_error(cmd, "unknown option");
    }
    a->first = optind;
    if (status >= 0)
        return status;
    bool bad = (flags & NEEDS_REF) && argc - optind != 1;
    status = al_cli_start_read(cmd, bad ? "needs exactly one REF" : NULL, r);
    return status ? status : -1;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(j);
}

/* tags: an array of the version's tags (the index keeps them comma-separated). */
static json_t *version_json(const struct al_version *v)
{
    json_t *tags = json_array();
    for (const char *t = v->tags; tags && *t;) {
        size_t len = strcspn(t, ",");
        json_array_append_new(tags, json_stringn(t, len));
        t += len + (t[len] == ',');
    }
    return json_pack("{s:s, s:s, s:o, s:s, s:I, s:b, s:I}", "name", v->model, "manifest", v->manifest, "tags", tags,
                     "created", v->created, "size", (json_int_t)v->total_size, "active", v->active, "sequence",
                     (json_int_t)v->seq);
}

/* The scan record of the version with manifest digest (the "scan" object of
 * its newest add or ingest event, al_scan_record_json), as a new reference,
 * and the event's time in *time (borrowed from ev); NULL when the version
 * was stored before scans were recorded. */
static json_t *version_record(const struct al_event *ev, size_t n, const char *digest, const char *key,
                              const char **time)
{
    for (size_t i = n; i-- > 0;) {
        if (strcmp(ev[i].digest, digest) != 0 || ev[i].detail == NULL)
            continue;
        if (strncmp(ev[i].kind, "add", 3) != 0 && strncmp(ev[i].kind, "ingest", 6) != 0 &&
            strcmp(ev[i].kind, "import") != 0)
            continue;
        json_t *d = json_loads(ev[i].detail, 0, NULL);
        json_t *sc = json_incref(json_object_get(d, key));
        json_decref(d);
        if (json_is_object(sc)) {
            if (time)
                *time = ev[i].time;
            return sc;
        }
        json_decref(sc);
    }
    return NULL;
}

static json_t *version_scan(const struct al_event *ev, size_t n, const char *digest, const char **time)
{
    return version_record(ev, n, digest, "scan", time);
}

/* The license decision recorded for the version (the "license" object of its
 * newest add or ingest event, docs/internals/bundle.md), or NULL when none
 * was recorded (stored before licenses were decided). */
static json_t *version_license(const struct al_event *ev, size_t n, const char *digest)
{
    return version_record(ev, n, digest, "license", NULL);
}

/* What ls --json carries of a license decision: the decision and the license, or null. */
static json_t *license_summary(json_t *lc)
{
    if (lc == NULL)
        return json_null();
    json_t *o = json_pack("{s:O, s:O}", "decision", json_object_get(lc, "decision"), "license",
                          json_object_get(lc, "license"));
    json_decref(lc);
    return o ? o : json_null();
}

static const char *str_or(json_t *o, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : dflt;
}

/* show's License line: the decision, the license, the rule; the
 * acknowledgement and a card/GGUF disagreement when there were any. */
static void print_license(const struct al_event *ev, size_t n, const char *digest)
{
    json_t *lc = version_license(ev, n, digest);
    if (lc == NULL) {
        printf("  license   not decided (stored before licenses were recorded)\n");
        return;
    }
    printf("  license   %s %s (%s)\n", str_or(lc, "decision", "?"), str_or(lc, "license", "?"),
           str_or(lc, "rule", "?"));
    if (json_object_get(lc, "ack"))
        printf("    acknowledged %s by %s\n", str_or(lc, "ack", "?"), str_or(lc, "acked_by", "?"));
    if (json_object_get(lc, "finding"))
        printf("    finding: %s\n", str_or(lc, "finding", "?"));
    json_decref(lc);
}

/* What ls --json carries of a scan: the verdict and the rules, or null. */
static json_t *scan_summary(json_t *sc)
{
    if (sc == NULL)
        return json_null();
    json_t *o = json_pack("{s:O, s:O, s:O}", "verdict", json_object_get(sc, "verdict"), "rules",
                          json_object_get(sc, "rules"), "scanner", json_object_get(sc, "scanner"));
    json_decref(sc);
    return o ? o : json_null();
}

/* show's Scan line: the verdict, when and by which rules; a line per file
 * that is not ok, with its first finding. */
static void print_scan(const struct al_event *ev, size_t n, const char *digest)
{
    const char *time = "";
    json_t *sc = version_scan(ev, n, digest, &time);
    if (sc == NULL) {
        printf("  scan      not scanned (stored before scans were recorded)\n");
        return;
    }
    printf("  scan      %s (scan rules %" JSON_INTEGER_FORMAT ", %s, %.19s)\n",
           json_string_value(json_object_get(sc, "verdict")) ? json_string_value(json_object_get(sc, "verdict")) : "?",
           json_integer_value(json_object_get(sc, "rules")),
           json_string_value(json_object_get(sc, "scanner")) ? json_string_value(json_object_get(sc, "scanner")) : "?",
           time);
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(sc, "files"), i, f)
    {
        const char *verdict = json_string_value(json_object_get(f, "verdict"));
        if (verdict == NULL || strcmp(verdict, "ok") == 0)
            continue;
        const char *what = json_string_value(json_object_get(json_array_get(json_object_get(f, "first"), 0), "what"));
        printf("    %-28s %s: %s\n", json_string_value(json_object_get(f, "file")) ? json_string_value(json_object_get(f, "file")) : "?",
               verdict, what ? what : "-");
    }
    json_decref(sc);
}

/* show's line for a version that arrived as a delta bundle (the "delta"
 * object of its ingest event): the base it was rebuilt from. */
static void print_delta(const struct al_event *ev, size_t n, const char *digest)
{
    json_t *d = version_record(ev, n, digest, "delta", NULL);
    if (d == NULL)
        return;
    printf("  arrived   as a delta from %s (%s): %" JSON_INTEGER_FORMAT " files rebuilt from patches, %"
           JSON_INTEGER_FORMAT " taken from the base\n", str_or(d, "base_found_ref", str_or(d, "base_ref", "?")),
           str_or(d, "base_found", str_or(d, "base", "?")), json_integer_value(json_object_get(d, "patched")),
           json_integer_value(json_object_get(d, "from_base")));
    json_decref(d);
}

/* show's line for a version made by 'airlock quantize' (the "quantized"
 * record of its add event): from which version and weights, to what type,
 * with which llama.cpp. */
static json_t *version_derived(const struct al_event *ev, size_t n, const char *digest, json_t *manifest,
                               const char *key, const char *ann)
{
    json_t *q = version_record(ev, n, digest, key, NULL);
    if (q)
        return q;
    /* An ingested version: the provenance its manifest carries. */
    const char *t = json_string_value(json_object_get(json_object_get(manifest, "annotations"), ann));
    q = t ? json_loads(t, 0, NULL) : NULL;
    if (!json_is_object(q)) {
        json_decref(q);
        return NULL;
    }
    return q;
}

static json_t *version_quantized(const struct al_event *ev, size_t n, const char *digest, json_t *manifest)
{
    return version_derived(ev, n, digest, manifest, "quantized", AL_ANN_QUANTIZED);
}

/* A version made by 'airlock finetune' ("finetuned" of its add event, or
 * of its manifest): base, data digests, hyperparameters, losses, operator. */
static json_t *version_finetuned(const struct al_event *ev, size_t n, const char *digest, json_t *manifest)
{
    return version_derived(ev, n, digest, manifest, "finetuned", AL_ANN_FINETUNED);
}

static double real_at(json_t *o, const char *a, const char *b)
{
    json_t *x = json_object_get(b ? json_object_get(o, a) : o, b ? b : a);
    return json_is_number(x) ? json_number_value(x) : NAN;
}

static void print_finetuned(const struct al_event *ev, size_t n, const char *digest, json_t *manifest)
{
    json_t *f = version_finetuned(ev, n, digest, manifest);
    if (f == NULL)
        return;
    json_t *h = json_object_get(f, "hyperparameters"), *loss = json_object_get(f, "loss");
    printf("  finetuned from %s (%s) by %s\n", str_or(f, "base", "?"), str_or(f, "base_ref", "?"),
           str_or(f, "operator", "?"));
    printf("    base weights    %s\n    llama.cpp       %s\n", str_or(f, "base_weights", "?"),
           str_or(f, "llama_cpp", "?"));
    printf("    hyperparameters %s, epochs %" JSON_INTEGER_FORMAT ", lr %g, ctx %" JSON_INTEGER_FORMAT ", seed %"
           JSON_INTEGER_FORMAT ", %s\n", str_or(h, "mode", "?"), json_integer_value(json_object_get(h, "epochs")),
           real_at(h, "lr", NULL), json_integer_value(json_object_get(h, "ctx")),
           json_integer_value(json_object_get(h, "seed")), str_or(h, "optimizer", "?"));
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(f, "data"), i, d)
        printf("    data            %s  %" JSON_INTEGER_FORMAT " bytes  %s\n", str_or(d, "file", "?"),
               json_integer_value(json_object_get(d, "bytes")), str_or(d, "sha256", "?"));
    printf("    loss before     train %.4f, held-out %.4f\n", real_at(loss, "before", "train"),
           real_at(loss, "before", "val"));
    json_array_foreach(json_object_get(loss, "epochs"), i, d)
        printf("    epoch %-9" JSON_INTEGER_FORMAT " train %.4f, held-out %.4f\n",
               json_integer_value(json_object_get(d, "epoch")), real_at(d, "train", NULL), real_at(d, "val", NULL));
    printf("    loss after      train %.4f, held-out %.4f\n", real_at(loss, "after", "train"),
           real_at(loss, "after", "val"));
    json_decref(f);
}

static void print_quantized(const struct al_event *ev, size_t n, const char *digest, json_t *manifest)
{
    json_t *q = version_quantized(ev, n, digest, manifest);
    if (q == NULL)
        return;
    printf("  quantized %s from %s (%s)\n", str_or(q, "type", "?"), str_or(q, "source", "?"),
           str_or(q, "source_ref", "?"));
    printf("    source weights  %s\n    llama.cpp       %s\n", str_or(q, "source_weights", "?"),
           str_or(q, "llama_cpp", "?"));
    json_decref(q);
}

/* show's line for an imported version (the "import" object of its import
 * event): from which tool's store, where, and the layers' media types. */
static void print_import(const struct al_event *ev, size_t n, const char *digest)
{
    json_t *im = version_record(ev, n, digest, "import", NULL);
    if (im == NULL)
        return;
    printf("  imported  from %s %s (%s), manifest %s; unsigned (a local import, like add)\n", str_or(im, "from", "?"),
           str_or(im, "name", "?"), str_or(im, "path", "?"), str_or(im, "manifest", "?"));
    json_t *mts = json_object_get(im, "media_types"), *m;
    size_t i;
    json_array_foreach(mts, i, m) printf("    layer   %s\n", json_string_value(m) ? json_string_value(m) : "?");
    json_decref(im);
}

static const char ls_help[] =
    "usage: airlock ls [NAME] [--json]\n\n"
    "Lists the models and their versions, oldest first; '*' marks the active one.\n"
    "With --json each version carries 'scan': the verdict of the scan made when\n"
    "it was added or ingested and the rules that made it (null: stored before\n"
    "scans were recorded), and 'license': the license decision recorded then\n"
    "(decision and license; null: stored before licenses were decided).\n";

int al_cmd_ls(int argc, char **argv)
{
    struct read_args a = {0};
    struct al_repo *r = NULL;
    int st = begin(argc, argv, ls_help, 0, &a, &r);
    if (st >= 0)
        return st;
    struct al_err err = AL_ERR_INIT;
    struct al_version *v = NULL;
    size_t n = 0;
    struct al_event *ev = NULL;
    size_t ne = 0;
    enum al_rc rc = al_repo_list_versions(r, a.first < argc ? argv[a.first] : NULL, &v, &n, &err);
    if (!rc && a.json)
        rc = al_repo_list_events(r, a.first < argc ? argv[a.first] : NULL, NULL, &ev, &ne, &err);
    al_repo_free(r);
    if (rc) {
        free(v);
        return al_cli_fail(&err);
    }
    if (a.json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *o = version_json(&v[i]);
            json_object_set_new(o, "scan", scan_summary(version_scan(ev, ne, v[i].manifest, NULL)));
            json_object_set_new(o, "license", license_summary(version_license(ev, ne, v[i].manifest)));
            json_array_append_new(arr, o);
        }
        al_index_events_free(ev, ne);
        print_json(arr);
    } else if (n == 0) {
        printf("no models yet; add one with 'airlock add NAME FILE.gguf' or 'airlock ingest BUNDLE'\n");
    } else {
        printf("  %-24s %-20s %-14s %10s  %s\n", "NAME", "TAGS", "VERSION", "SIZE", "CREATED");
        for (size_t i = 0; i < n; i++) {
            char size[32];
            al_cli_human_size(v[i].total_size, size, sizeof size);
            printf("%c %-24s %-20s %-14s %10s  %.19s\n", v[i].active ? '*' : ' ', v[i].model,
                   v[i].tags[0] ? v[i].tags : "-", al_cli_short(v[i].manifest), size, v[i].created);
        }
    }
    free(v);
    return AL_EXIT_OK;
}

static json_t *gguf_json(const struct al_gguf_info *g)
{
    json_t *types = json_array();
    for (int i = 0; i < g->n_types; i++)
        json_array_append_new(types, json_pack("{s:s, s:I, s:I}", "type", g->types[i].type, "tensors",
                                               (json_int_t)g->types[i].tensors, "parameters",
                                               (json_int_t)g->types[i].elements));
    return json_pack("{s:s, s:s, s:I, s:i, s:i, s:i, s:i, s:b, s:s, s:s, s:o, s:I}", "architecture", g->arch, "name",
                     g->name, "parameters", (json_int_t)g->n_params, "vocab_size", (int)g->vocab_size,
                     "context_length", (int)g->context_length, "embedding_length", (int)g->embedding_length,
                     "block_count", (int)g->block_count, "chat_template", g->has_chat_template, "license", g->license,
                     "file_type", g->file_type, "tensor_types", types, "tensors", (json_int_t)g->n_tensors);
}

void al_format_count(uint64_t n, char *out, size_t size);

static void print_gguf(const struct al_gguf_info *g)
{
    char params[32];
    al_format_count(g->n_params, params, sizeof params);
    printf("  gguf\n");
    printf("    architecture    %s\n", g->arch[0] ? g->arch : "-");
    printf("    parameters      %s (%" PRIu64 ")\n", params, g->n_params);
    printf("    vocabulary      %u tokens (%s)\n", g->vocab_size, g->tokenizer_model[0] ? g->tokenizer_model : "-");
    printf("    context length  %u\n", g->context_length);
    printf("    layers          %u, embedding %u, heads %u/%u\n", g->block_count, g->embedding_length, g->head_count,
           g->head_count_kv);
    printf("    tensor types   ");
    for (int i = 0; i < g->n_types; i++)
        printf(" %s x%" PRIu64 " (%.1f%%)%s", g->types[i].type, g->types[i].tensors,
               g->n_params ? 100.0 * (double)g->types[i].elements / (double)g->n_params : 0.0,
               i + 1 < g->n_types ? "," : "");
    printf("\n    file type       %s\n", g->file_type[0] ? g->file_type : "-");
    printf("    chat template   %s\n", g->has_chat_template ? "yes" : "no");
    printf("    license         %s\n", g->license[0] ? g->license : "-");
}

/* One scalar as text; strings as they are. */
static void scalar_text(json_t *v, char *out, size_t size)
{
    if (json_is_string(v))
        snprintf(out, size, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_true(v) || json_is_false(v))
        snprintf(out, size, "%s", json_is_true(v) ? "yes" : "no");
    else
        snprintf(out, size, "-");
}

/* An event's detail as "key: value" lines; arrays of objects one line per item. */
static void print_detail(const char *detail)
{
    json_t *d = json_loads(detail, 0, NULL);
    const char *key;
    json_t *v;
    json_object_foreach(d, key, v) {
        char text[512];
        if (json_is_array(v)) {
            size_t i;
            json_t *item;
            json_array_foreach(v, i, item) {
                printf("        %-10s ", i == 0 ? key : "");
                const char *k2;
                json_t *v2;
                if (!json_is_object(item)) {
                    scalar_text(item, text, sizeof text);
                    printf("%s", text);
                }
                json_object_foreach(item, k2, v2) {
                    scalar_text(v2, text, sizeof text);
                    printf("%s=%s ", k2, text);
                }
                printf("\n");
            }
        } else if (!json_is_object(v)) {
            scalar_text(v, text, sizeof text);
            printf("        %-10s %s\n", key, text);
        }
    }
    json_decref(d);
}

/* A JSON blob of the store (a config or a manifest), parsed into *out. */
static enum al_rc read_json_blob(struct al_repo *r, const char *digest, json_t **out, struct al_err *err)
{
    char *text = NULL;
    size_t len = 0;
    enum al_rc rc = al_repo_read_blob(r, digest, AL_LIMIT_MANIFEST, &text, &len, err);
    if (rc)
        return rc;
    json_error_t je;
    *out = json_loadb(text, len, 0, &je);
    free(text);
    return *out ? AL_OK : al_err_set(err, AL_ERR_CORRUPT, "blob %s is not JSON: %s", digest, je.text);
}

/* A card value as one printable line: strings as they are, arrays of
 * strings joined by ", ", anything else as compact JSON; control characters
 * (the card may come from a bundle) shown as '?', cut to size. */
static void card_text(json_t *v, char *out, size_t size)
{
    char *dump = NULL;
    out[0] = '\0';
    if (json_is_string(v)) {
        snprintf(out, size, "%s", json_string_value(v));
    } else if (json_is_array(v)) {
        size_t i, n = 0;
        json_t *x;
        json_array_foreach(v, i, x) {
            char *t = json_is_string(x) ? NULL : json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
            if (n < size)
                n += (size_t)snprintf(out + n, size - n, "%s%s", i ? ", " : "", t ? t : json_string_value(x));
            free(t);
        }
    } else if ((dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS)) != NULL) {
        snprintf(out, size, "%s", dump);
    }
    free(dump);
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
}

/* The version's model card: the manifest's AL_ANN_CARD (a store of before it
 * kept the card in the config, under the same name). NULL when it has none. */
static json_t *version_card(json_t *manifest, json_t *config)
{
    const char *text = json_string_value(json_object_get(json_object_get(manifest, "annotations"), AL_ANN_CARD));
    json_t *card = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(card)) {
        json_decref(card);
        card = json_incref(json_object_get(config, AL_ANN_CARD));
    }
    if (!json_is_object(card)) {
        json_decref(card);
        return NULL;
    }
    return card;
}

/* The card, a line per field, in the order stored (the annotation's keys are sorted). */
static void print_card(json_t *card)
{
    if (card == NULL)
        return;
    printf("  card\n");
    const char *k;
    json_t *v;
    json_object_foreach(card, k, v) {
        char key[64], text[512];
        card_text(v, text, sizeof text);
        snprintf(key, sizeof key, "%s", k);
        for (char *c = key; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
        printf("    %-14s %s\n", key, text);
    }
}

static const char show_help[] =
    "usage: airlock show REF [--json | --bom]\n\n"
    "Shows a version: manifest, files with sizes and digests, its model card, what\n"
    "its GGUF says (architecture, parameters, tensor types, context length, chat\n"
    "template, license), the scan verdict recorded when it was added or ingested\n"
    "(and by which scan rules; a line per file that was not ok), the license decision\n"
    "(decision, license, the rule; who acknowledged it) and its events\n"
    "(provenance). A LoRA adapter version shows the weights it is bound to and the\n"
    "version that has them (its base); a model shows the adapters bound to its\n"
    "weights. A version made by 'airlock quantize' shows its source version, the\n"
    "source weights' digest, the type and the llama.cpp commit. One made by\n"
    "'airlock finetune' shows its base, the training data files' digests, the\n"
    "hyperparameters, the loss per epoch and before and after, and the operator.\n"
    "A version that arrived signed (ingest, pull) shows the signatures it keeps:\n"
    "the OCI referrer 'airlock push' sends without --sign.\n"
    "REF: name, name:tag or name@sha256:<hex>.\n\n"
    "  --json   the same as one JSON document\n"
    "  --bom    a CycloneDX 1.6 ML-BOM of the version (JSON): the model with its\n"
    "           manifest digest, purl and license, its files with SHA-256 hashes,\n"
    "           signers, scan verdict and license decision as airlock:* properties,\n"
    "           for SBOM tools\n";

int al_cmd_show(int argc, char **argv)
{
    struct read_args a = {0};
    struct al_repo *r = NULL;
    int st = begin(argc, argv, show_help, NEEDS_REF | TAKES_BOM, &a, &r);
    if (st >= 0)
        return st;
    struct al_err err = AL_ERR_INIT;
    struct al_version v;
    struct al_file *files = NULL;
    struct al_event *ev = NULL;
    size_t nf = 0, ne = 0;
    struct al_gguf_info g;
    bool have_gguf = false;
    enum al_rc rc = al_repo_resolve(r, argv[a.first], &v, &err);
    if (!rc)
        rc = al_repo_list_files(r, &v, &files, &nf, &err);
    if (!rc)
        rc = al_repo_list_events(r, v.model, v.manifest, &ev, &ne, &err);
    if (!rc)
        rc = al_repo_version_gguf(r, files, nf, &g, &have_gguf, &err);
    json_t *config = NULL, *manifest = NULL;
    if (!rc)
        rc = read_json_blob(r, v.config, &config, &err);
    if (!rc)
        rc = read_json_blob(r, v.manifest, &manifest, &err);
    json_t *card = rc ? NULL : version_card(manifest, config);
    /* LoRA: the base this adapter is bound to, or the adapters bound to
     * this version's weights. */
    struct al_adapter_binding ab;
    memset(&ab, 0, sizeof ab);
    struct al_version base, *adapters = NULL;
    size_t na = 0;
    bool base_found = false;
    const struct al_file *wf = al_repo_pick_weights(files, nf);
    if (!rc)
        rc = al_repo_version_adapter(r, &v, &ab, &err);
    if (!rc && ab.base[0])
        rc = al_repo_find_base(r, ab.base, &base, &base_found, &err);
    else if (!rc && wf)
        rc = al_repo_list_adapters(r, wf->digest, &adapters, &na, &err);
    char(*kept)[AL_DIGEST_SIZE] = NULL; /* the signatures it arrived with (push sends them) */
    size_t nk = 0;
    if (!rc)
        rc = al_repo_version_referrers(r, &v, &kept, &nk, &err);
    al_repo_free(r);
    const char *format = json_string_value(json_object_get(json_object_get(config, "config"), "format"));
    if (rc) {
        st = al_cli_fail(&err);
        goto out;
    }
    if (a.bom) {
        json_t *sc = version_scan(ev, ne, v.manifest, NULL), *lc = version_license(ev, ne, v.manifest);
        struct al_bom_input in = {&v, files, nf, ev, ne, have_gguf ? &g : NULL, sc, lc};
        print_json(al_cli_bom(&in));
        json_decref(sc);
        json_decref(lc);
    } else if (a.json) {
        json_t *j = version_json(&v), *fa = json_array(), *ea = json_array();
        json_object_set_new(j, "config", json_string(v.config));
        for (size_t i = 0; i < nf; i++)
            json_array_append_new(fa, json_pack("{s:s, s:s, s:I, s:s}", "path", files[i].path, "digest",
                                                files[i].digest, "size", (json_int_t)files[i].size, "media_type",
                                                files[i].media_type));
        for (size_t i = 0; i < ne; i++) {
            json_t *d = json_loads(ev[i].detail, 0, NULL);
            json_array_append_new(ea, json_pack("{s:I, s:s, s:s, s:s, s:o}", "id", (json_int_t)ev[i].id, "time",
                                                ev[i].time, "kind", ev[i].kind, "actor", ev[i].actor, "detail",
                                                d ? d : json_object()));
        }
        json_object_set_new(j, "files", fa);
        json_object_set_new(j, "events", ea);
        json_t *sc = version_scan(ev, ne, v.manifest, NULL);
        json_object_set_new(j, "scan", sc ? sc : json_null());
        json_t *lc = version_license(ev, ne, v.manifest);
        json_object_set_new(j, "license", lc ? lc : json_null());
        json_t *dl = version_record(ev, ne, v.manifest, "delta", NULL);
        json_object_set_new(j, "delta", dl ? dl : json_null());
        json_t *im = version_record(ev, ne, v.manifest, "import", NULL);
        json_object_set_new(j, "import", im ? im : json_null());
        json_t *qz = version_quantized(ev, ne, v.manifest, manifest);
        json_object_set_new(j, "quantized", qz ? qz : json_null());
        json_t *ft = version_finetuned(ev, ne, v.manifest, manifest);
        json_object_set_new(j, "finetuned", ft ? ft : json_null());
        if (have_gguf)
            json_object_set_new(j, "gguf", gguf_json(&g));
        json_object_set_new(j, "format", format ? json_string(format) : json_null());
        json_object_set(j, "card", card ? card : json_null());
        if (ab.base[0]) {
            json_t *ad = json_pack("{s:s, s:s}", "type", ab.type, "base", ab.base);
            json_object_set_new(ad, "base_version", base_found ? version_json(&base) : json_null());
            json_object_set_new(j, "adapter", ad);
        } else {
            json_object_set_new(j, "adapter", json_null());
        }
        json_t *aa = json_array();
        for (size_t i = 0; i < na; i++)
            json_array_append_new(aa, version_json(&adapters[i]));
        json_object_set_new(j, "adapters", aa);
        json_t *ka = json_array();
        for (size_t i = 0; i < nk; i++)
            json_array_append_new(ka, json_string(kept[i]));
        json_object_set_new(j, "signatures_kept", ka);
        print_json(j);
    } else {
        printf("%s:%s%s\n", v.model, v.tags[0] ? v.tags : "-", v.active ? "  (active)" : "");
        printf("  manifest  %s\n  config    %s\n  created   %s\n", v.manifest, v.config, v.created);
        if (v.seq)
            printf("  sequence  %" PRId64 "\n", v.seq);
        if (format && !have_gguf)
            printf("  format    %s  (not a GGUF: 'airlock serve' and 'airlock run' load GGUF models only)\n", format);
        printf("  files\n");
        for (size_t i = 0; i < nf; i++) {
            char size[32];
            al_cli_human_size(files[i].size, size, sizeof size);
            const char *kind = strrchr(files[i].media_type, '.');
            printf("    %-28s %10s  %s  %s\n", files[i].path, size, files[i].digest,
                   strstr(files[i].media_type, "weight.config") ? "weight config"
                   : strstr(files[i].media_type, "weight")     ? "weight"
                                                               : (kind ? kind - 3 : files[i].media_type));
        }
        print_card(card);
        if (ab.base[0]) {
            printf("  adapter   %s for the weights %s\n", ab.type, ab.base);
            if (base_found)
                printf("    base    %s:%s  %s%s\n", base.model, base.tags[0] ? base.tags : "-", base.manifest,
                       base.active ? "  (active)" : "");
            else
                printf("    base    not in the store (removed?)\n");
        }
        if (na > 0) {
            printf("  adapters  (LoRA, bound to these weights)\n");
            for (size_t i = 0; i < na; i++)
                printf("    %s:%s  %s%s\n", adapters[i].model, adapters[i].tags[0] ? adapters[i].tags : "-",
                       adapters[i].manifest, adapters[i].active ? "  (active)" : "");
        }
        for (size_t i = 0; i < nk; i++)
            printf("  signatures kept  %s (the referrer 'airlock push' sends without --sign)\n", kept[i]);
        print_delta(ev, ne, v.manifest);
        print_import(ev, ne, v.manifest);
        print_quantized(ev, ne, v.manifest, manifest);
        print_finetuned(ev, ne, v.manifest, manifest);
        print_scan(ev, ne, v.manifest);
        print_license(ev, ne, v.manifest);
        if (have_gguf)
            print_gguf(&g);
        printf("  events (provenance)\n");
        for (size_t i = 0; i < ne; i++) {
            printf("    %.19s  %s by %s\n", ev[i].time, ev[i].kind, ev[i].actor);
            print_detail(ev[i].detail);
        }
    }
    st = AL_EXIT_OK;
out:
    json_decref(card);
    json_decref(manifest);
    json_decref(config);
    free(kept);
    free(adapters);
    free(files);
    al_index_events_free(ev, ne);
    return st;
}

static void print_problem(void *ud, int64_t id, const char *msg)
{
    (*(size_t *)ud)++;
    printf("DAMAGED  %s\n", msg);
}

static const char log_help[] =
    "usage: airlock log [NAME] [--json] [--verify]\n\n"
    "Prints the event log (adds, ingests, tags, activations, rollbacks, removals,\n"
    "repairs), oldest first. Every event carries the SHA-256 of the one before it;\n"
    "--verify recomputes the chain and exits 5 when a row was edited or deleted.\n";

int al_cmd_log(int argc, char **argv)
{
    struct read_args a = {0};
    struct al_repo *r = NULL;
    int st = begin(argc, argv, log_help, TAKES_VERIFY, &a, &r);
    if (st >= 0)
        return st;
    struct al_err err = AL_ERR_INIT;
    struct al_event *ev = NULL;
    size_t n = 0, problems = 0, checked = 0;
    enum al_rc rc;
    if (a.verify) {
        rc = al_repo_verify_events(r, print_problem, &problems, &checked, &err);
        al_repo_free(r);
        if (rc)
            return al_cli_fail(&err);
        printf("event log intact: %zu events, chain verified\n", checked);
        return AL_EXIT_OK;
    }
    rc = al_repo_list_events(r, a.first < argc ? argv[a.first] : NULL, NULL, &ev, &n, &err);
    al_repo_free(r);
    if (rc)
        return al_cli_fail(&err);
    if (a.json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *d = json_loads(ev[i].detail, 0, NULL);
            json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "id",
                                                 (json_int_t)ev[i].id, "time", ev[i].time, "kind", ev[i].kind, "model",
                                                 ev[i].model, "digest", ev[i].digest, "actor", ev[i].actor, "detail",
                                                 d ? d : json_object(), "prev", ev[i].prev, "hash", ev[i].hash));
        }
        print_json(arr);
    } else {
        for (size_t i = 0; i < n; i++) {
            printf("%5" PRId64 "  %.19s  %-14s %-20s %-14s by %s", ev[i].id, ev[i].time, ev[i].kind,
                   ev[i].model[0] ? ev[i].model : "-", ev[i].digest[0] ? al_cli_short(ev[i].digest) : "-",
                   ev[i].actor);
            /* An ingest of a delta bundle says from which base. */
            json_t *d = ev[i].detail && strstr(ev[i].detail, "\"delta\"") ? json_loads(ev[i].detail, 0, NULL) : NULL;
            json_t *dl = json_object_get(d, "delta");
            if (dl)
                printf("  (delta from %s)", str_or(dl, "base_found_ref", str_or(dl, "base_ref", "?")));
            json_decref(d);
            printf("\n");
        }
    }
    al_index_events_free(ev, n);
    return AL_EXIT_OK;
}
