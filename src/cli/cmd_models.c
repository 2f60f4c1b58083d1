/*
 * cmd_models.c: the commands that change the store: init, add, tag, rm,
 * activate, rollback; and path, which prints where a model's weights are.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "cli/add_checks.h"
#include "cli/cli.h"
#include "cli/cli_util.h"
#include "core/fs.h"
#include "core/limits.h"
#include "engine/engine.h"
#include "oci/oci.h"
#include "policy/policy.h"
#include "scan/scan.h"

int al_cmd_init(int argc, char **argv);
int al_cmd_add(int argc, char **argv);
int al_cmd_tag(int argc, char **argv);
int al_cmd_rm(int argc, char **argv);
int al_cmd_activate(int argc, char **argv);
int al_cmd_rollback(int argc, char **argv);
int al_cmd_path(int argc, char **argv);
int al_cmd_quantize(int argc, char **argv);

/* The version by a ref that show and serve take: name:tag with its first
 * tag, or name@digest when it has none; its other tags after. */
static void print_version_line(const char *verb, const struct al_version *v)
{
    char size[32];
    al_cli_human_size(v->total_size, size, sizeof size);
    int first = (int)strcspn(v->tags, ",");
    if (first)
        printf("%s %s:%.*s  %s  %s%s", verb, v->model, first, v->tags, v->manifest, size,
               v->active ? "  (active)" : "");
    else
        printf("%s %s@%s  %s%s", verb, v->model, v->manifest, size, v->active ? "  (active)" : "");
    if (v->tags[first])
        printf("  also tagged %s", v->tags + first + 1);
    printf("\n");
}

static const char init_help[] =
    "usage: airlock init\n\n"
    "Creates an empty store in $AIRLOCK_HOME (default ~/.local/share/airlock):\n"
    "an OCI image layout, the SQLite index and the event log. Safe to run again.\n";

int al_cmd_init(int argc, char **argv)
{
    if (al_cli_help(argc, argv, init_help))
        return AL_EXIT_OK;
    struct al_repo *r = NULL;
    int st = al_cli_start("init", argc > 1 ? "takes no arguments" : NULL, true, &r);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_repo_sync_index_json(r, &err);
    if (!rc)
        printf("initialized airlock store in %s\n", al_repo_home(r));
    al_repo_free(r);
    return rc ? al_cli_fail(&err) : AL_EXIT_OK;
}



/* The one "adapter-refused" event of an add --base that did not fit. */
static enum al_rc adapter_refusal(struct al_repo *r, const char *ref, const char *base, const char *file,
                                  enum al_rc why, struct al_err *err)
{
    char name[AL_LIMIT_NAME + 1];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(ref, ":@"), ref);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "operation", "add", "reason", err->msg, "base", base, "file",
                          file);
    char *detail = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    enum al_rc rc = al_repo_record_refusal(r, "adapter-refused", al_name_valid(name) ? name : "", detail, why,
                                           NULL, err);
    free(detail);
    return rc;
}

int al_cmd_add(int argc, char **argv)
{
    static const struct option opts[] = {
        {"card", required_argument, NULL, 'c'},
        {"no-activate", no_argument, NULL, 'n'},
        {"allow-dangerous", no_argument, NULL, 'D'},
        {"ack-license", required_argument, NULL, 'L'},
        {"base", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct al_cli_add_checks scan = {0};
    bool adapter_refused = false;
    struct al_add_opts ao = {.show_progress = true, .check = al_cli_add_check_file,
                             .record = al_cli_add_check_record, .check_key = NULL, .check_ud = &scan,
                             .format = scan.format,
                             .adapter_refused = &adapter_refused};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "c:nhb:", opts, NULL)) != -1) {
        switch (c) {
        case 'c': ao.card_path = optarg; break;
        case 'n': ao.no_activate = true; break;
        case 'D': scan.allow_dangerous = true; break;
        case 'L': scan.ack = optarg; break;
        case 'b': ao.base_ref = optarg; break;
        case 'h':
            printf("usage: airlock add NAME[:TAG] FILE... [--card CARD.json] [--no-activate]\n"
                   "                                     [--allow-dangerous] [--ack-license ID]\n"
                   "       airlock add NAME[:TAG] ADAPTER.gguf --base REF   (a LoRA adapter)\n\n"
                   "Imports local files (GGUF weights, tokenizer, model card, license, prompt\n"
                   "templates) as a new version of NAME. The files are hashed while copied (one\n"
                   "read pass; a reflink clone where the file system supports it) into the\n"
                   "content-addressed store. TAG defaults to 'latest'. The new version becomes\n"
                   "the active one unless --no-activate is given.\n\n"
                   "Every file is scanned first ('airlock scan'): a dangerous one (a pickle that\n"
                   "imports os.system, a GGUF with NaN weights, ...) refuses the add with exit\n"
                   "status 6, nothing copied, and one 'scan-refused' event; a warning is allowed\n"
                   "unless the site's policy says 'scan: ok' ('airlock policy scan require ok').\n"
                   "The verdict is recorded in the add event ('airlock show' prints it).\n"
                   "Files without a GGUF among them (safetensors, a pickle) are stored with a\n"
                   "warning and labelled by what they are; serve and run load GGUF models only.\n\n"
                   "The license (a README.md card's front matter, a GGUF's general.license) is\n"
                   "decided by the site's policy ('airlock policy'): deny, or a rule 'ack' without\n"
                   "--ack-license naming it, refuses with exit status 6 and one 'license-refused'\n"
                   "event. Without a policy file the decision is only recorded.\n\n"
                   "With --base, the version is a LoRA adapter bound to the weights of REF (their\n"
                   "digest, recorded in the manifest and the add event): the GGUF must say\n"
                   "general.type 'adapter' and adapter.type 'lora', and every .lora_a/.lora_b pair\n"
                   "must name a tensor of the base with the shapes llama.cpp requires. A misfit\n"
                   "or an unknown base refuses the add (exit status 3 or 4), nothing copied, and one\n"
                   "'adapter-refused' event. 'airlock run NAME:TAG' then loads base + adapter.\n"
                   "An adapter GGUF added without --base is refused (exit status 4).\n\n"
                   "  --card FILE        a model card (JSON object: origin, license, date, ...)\n"
                   "  --no-activate      keep the currently active version\n"
                   "  --allow-dangerous  add a dangerous file anyway (a 'scan-override' event)\n"
                   "  --ack-license ID   acknowledge the model's license ID (recorded)\n"
                   "  --base REF         the file is a LoRA adapter for the model REF\n\n"
                   "example: airlock add stories:1.0 stories260K.gguf --card card.json\n");
            return AL_EXIT_OK;
        default: return al_cli_usage_error("add", "unknown option");
        }
    }
    struct al_repo *r = NULL;
    int st = al_cli_start("add", argc - optind < 2 ? "needs NAME[:TAG] and at least one FILE" : NULL, true, &r);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    struct al_version v;
    bool existed = false;
    struct al_policy pol;
    char ppath[AL_LIMIT_PATH];
    enum al_rc rc = al_policy_path(al_repo_home(r), ppath, sizeof ppath, &err);
    if (!rc)
        rc = al_policy_load(ppath, &pol, &err);
    if (rc) {
        al_repo_free(r);
        return al_cli_fail(&err);
    }
    scan.policy = &pol;
    struct stat pst;
    scan.enforce = stat(ppath, &pst) == 0;
    rc = al_repo_add(r, argv[optind], (const char *const *)argv + optind + 1, (size_t)(argc - optind - 1), &ao, &v,
                     &existed, &err);
    if (rc && !al_cli_add_checks_refused(r, argv[optind], &scan, &rc, &err) && adapter_refused) {
        rc = adapter_refusal(r, argv[optind], ao.base_ref, argv[optind + 1], rc, &err);
    }
    free(scan.license);
    al_policy_release(&pol);
    for (size_t i = 0; i < scan.n; i++)
        al_scan_report_free(scan.reports[i]);
    al_repo_free(r);
    if (rc)
        return al_cli_fail(&err);
    print_version_line(existed ? "already present:" : "added", &v);
    return AL_EXIT_OK;
}

static const char quantize_help[] =
    "usage: airlock quantize SRC_REF NAME[:TAG] --type TYPE [--threads N] [--no-activate]\n\n"
    "Makes a new version NAME:TAG from the weights of the stored version SRC_REF\n"
    "(an F32, F16 or BF16 GGUF model) quantized to TYPE with the llama.cpp this\n"
    "binary is built with (llama_model_quantize, as its llama-quantize does).\n"
    "The source blob is checked against its digest before llama.cpp reads it\n"
    "(through the descriptor that was hashed). llama.cpp writes the result into\n"
    "the store's tmp/ (locked while it is written; a crash leaves it to be\n"
    "swept), and it is added where it lies as 'airlock add' adds a file: scanned,\n"
    "its license decided, hashed and committed (not copied), one 'add' event.\n"
    "The source's other files and the card are copied through $TMPDIR.\n"
    "That event and the new manifest (so\n"
    "its bundles too) record the provenance: the source version, the source\n"
    "weights' digest, TYPE and the llama.cpp commit; 'airlock show' prints it.\n"
    "The source's other files (tokenizer, README, license, templates; each\n"
    "checked against its digest) and its model card come along; files in a\n"
    "folder (a bundle's bench/ suite) do not.\n\n"
    "Refused, with the store unchanged: an unknown TYPE (exit status 2), a\n"
    "source that is not a GGUF model (an adapter, other files), one already\n"
    "quantized to TYPE or to another quantized type (exit status 4), a source\n"
    "blob that does not match its digest (exit status 5).\n\n"
    "  --type TYPE     F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q5_1, Q5_0,\n"
    "                  Q4_K_M, Q4_K_S, Q4_1, Q4_0, Q3_K_L, Q3_K_M, Q3_K_S, Q2_K\n"
    "                  (the types that need no importance matrix)\n"
    "  --threads N     threads for llama.cpp (default: all cores)\n"
    "  --no-activate   keep the currently active version of NAME\n\n"
    "example: airlock quantize stories:f32 stories:q8 --type Q8_0\n";

/* Whether a GGUF's file type is one a quantization starts from. */
static bool unquantized(const char *ft)
{
    return strcmp(ft, "F32") == 0 || strcmp(ft, "F16") == 0 || strcmp(ft, "BF16") == 0;
}

/* The checks of quantize's source, before anything is written: a GGUF
 * model, not yet quantized. They read the blob's GGUF header only (the
 * bounded parser of src/gguf); llama.cpp reads it after the digest check
 * in al_engine_quantize. */
static enum al_rc quantize_source_ok(const char *src, const struct al_weights *w, const char *type,
                                     struct al_err *err)
{
    const struct al_file *wf = al_repo_pick_weights(w->files, w->n_files);
    if (!wf || !al_repo_weights_named(wf->path))
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not a GGUF model (its weights are '%s'); quantize takes a "
                          "GGUF model", src, wf ? wf->path : "");
    struct al_gguf_info gi;
    enum al_rc rc = al_repo_weights_info(w->path, &gi, err);
    if (rc)
        return rc;
    if (gi.general_type[0] && strcmp(gi.general_type, "model") != 0)
        return al_err_set(err, AL_ERR_INVALID, "'%s' is a%s %s, not a GGUF model; quantize takes a model", src,
                          strcmp(gi.general_type, "adapter") == 0 ? "n" : "", gi.general_type);
    if (strcmp(gi.file_type, type) == 0)
        return al_err_set(err, AL_ERR_INVALID, "'%s' is already %s; nothing to quantize", src, type);
    if (!unquantized(gi.file_type))
        return al_err_set(err, AL_ERR_INVALID, "'%s' is already quantized (%s); quantize from an F32, F16 or BF16 "
                          "version", src, gi.file_type);
    return AL_OK;
}


int al_cmd_quantize(int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'},
        {"threads", required_argument, NULL, 'j'},
        {"no-activate", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *type = NULL;
    int threads = 0;
    struct al_cli_add_checks scan = {0};
    struct al_add_opts ao = {.show_progress = true, .check = al_cli_add_check_file,
                             .record = al_cli_add_check_record, .check_ud = &scan};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "t:j:nh", opts, NULL)) != -1) {
        switch (c) {
        case 't': type = optarg; break;
        case 'j': {
            char *end = NULL;
            long n = strtol(optarg, &end, 10);
            if (!*optarg || *end || n < 1 || n > 512)
                return al_cli_usage_error("quantize", "--threads takes a number from 1 to 512, not '%s'", optarg);
            threads = (int)n;
            break;
        }
        case 'n': ao.no_activate = true; break;
        case 'h': fputs(quantize_help, stdout); return AL_EXIT_OK;
        default: return al_cli_usage_error("quantize", "unknown option");
        }
    }
    if (argc - optind != 2)
        return al_cli_usage_error("quantize", "needs SRC_REF and NAME[:TAG]");
    if (!type)
        return al_cli_usage_error("quantize", "needs --type (one of: %s)", al_engine_quant_types());
    if (al_engine_quant_type(type) < 0)
        return al_cli_usage_error("quantize", "unknown quantization type '%s' (one of: %s)", type,
                                  al_engine_quant_types());
    const char *src = argv[optind], *dst_ref = argv[optind + 1];
    struct al_repo *r = NULL;
    int st = al_cli_start("quantize", NULL, false, &r);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    struct al_weights w;
    memset(&w, 0, sizeof w);
    struct al_adapter_binding ab;
    struct al_policy pol;
    bool pol_loaded = false, existed = false;
    struct al_version v;
    char dir[AL_LIMIT_PATH] = "", card[AL_LIMIT_PATH] = "", qname[AL_LIMIT_NAME + 32];
    char *prov = NULL;
    char *paths[AL_LIMIT_FILES_PER_MODEL];
    struct al_blob_writer *spools[AL_LIMIT_FILES_PER_MODEL] = {NULL};
    const char *names[AL_LIMIT_FILES_PER_MODEL] = {NULL};
    size_t np = 0;
    enum al_rc rc = al_repo_resolve_weights(r, src, &w, &err);
    if (!rc && !(rc = al_repo_version_adapter(r, &w.version, &ab, &err)) && ab.base[0])
        rc = al_err_set(&err, AL_ERR_INVALID, "'%s' is a LoRA adapter, not a model; quantize takes a model", src);
    if (!rc)
        rc = quantize_source_ok(src, &w, type, &err);
    char ppath[AL_LIMIT_PATH];
    if (!rc && !(rc = al_policy_path(al_repo_home(r), ppath, sizeof ppath, &err)) &&
        !(rc = al_policy_load(ppath, &pol, &err))) {
        pol_loaded = true;
        scan.policy = &pol;
        struct stat pst;
        scan.enforce = stat(ppath, &pst) == 0;
    }
    if (rc)
        goto out;
    /* The carried files and the card: outside the store, whose tmp/ is swept
     * of what nobody holds locked. The result goes into a spool (below). */
    const char *tmp = getenv("TMPDIR");
    if ((rc = al_path_fmt(dir, sizeof dir, &err, "%s/airlock-quantize-XXXXXX", tmp && *tmp ? tmp : "/tmp"))) {
        dir[0] = '\0';
        goto out;
    }
    if (!mkdtemp(dir)) {
        rc = al_err_sys(&err, AL_ERR_IO, "cannot make a temporary directory '%s'", dir);
        dir[0] = '\0';
        goto out;
    }
    char name[AL_LIMIT_NAME + 1];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(dst_ref, ":@"), dst_ref);
    snprintf(qname, sizeof qname, "%s-%s.gguf", al_name_valid(name) ? name : "model", type);
    /* llama.cpp writes the result straight into the store's tmp/, into a
     * locked file that the add adopts (hashes where it lies, commits) rather
     * than copies: docs/internals/engine.md, "Quantization". */
    if ((rc = al_repo_spool_new(r, &spools[0], &err)))
        goto out;
    const char *qpath = al_repo_spool_path(spools[0]);
    fprintf(stderr, "quantizing %s (%s) to %s\n", src, w.digest, type);
    if ((rc = al_engine_quantize(w.path, w.digest, qpath, type, threads, &err)))
        goto out;
    char sref[AL_LIMIT_REF + 80];
    snprintf(sref, sizeof sref, "%s@%s", w.version.model, w.version.manifest);
    json_t *pj = json_pack("{s:s, s:s, s:s, s:s, s:s}", "source", sref, "source_ref", src, "source_weights",
                           w.digest, "type", type, "llama_cpp", al_engine_llama_commit());
    prov = pj ? json_dumps(pj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(pj);
    if (!prov) {
        rc = al_err_set(&err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    ao.quantized_json = prov;
    ao.spools = spools;
    names[0] = qname;
    ao.names = names;
    paths[0] = strdup(qpath);
    if (!paths[0]) {
        rc = al_err_set(&err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    np = 1;
    if ((rc = al_cli_carry_files(r, &w, dir, paths, &np, card, sizeof card, &err)))
        goto out;
    if (card[0])
        ao.card_path = card;
    rc = al_repo_add(r, dst_ref, (const char *const *)paths, np, &ao, &v, &existed, &err);
    if (rc)
        (void)al_cli_add_checks_refused(r, dst_ref, &scan, &rc, &err);
out:
    /* A spool's file is removed by its free unless the add committed it; its
     * path is not unlinked here, as after a commit the name may be another
     * writer's. */
    for (size_t i = 0; i < np; i++) {
        if (!spools[i])
            unlink(paths[i]);
        free(paths[i]);
    }
    al_repo_spool_free(spools[0]);
    if (card[0])
        unlink(card);
    if (dir[0])
        rmdir(dir);
    free(prov);
    free(scan.license);
    if (pol_loaded)
        al_policy_release(&pol);
    for (size_t i = 0; i < scan.n; i++)
        al_scan_report_free(scan.reports[i]);
    al_repo_weights_release(&w);
    al_repo_free(r);
    if (rc)
        return al_cli_fail(&err);
    print_version_line(existed ? "already present:" : "quantized", &v);
    return AL_EXIT_OK;
}

static const char tag_help[] =
    "usage: airlock tag REF TAG\n       airlock tag --delete NAME TAG\n\n"
    "Points TAG of the model at the version REF names (REF: name, name:tag or\n"
    "name@sha256:<hex>), moving the tag if it pointed elsewhere; --delete removes it.\n\n"
    "example: airlock tag stories@sha256:1f2e... stable\n";

int al_cmd_tag(int argc, char **argv)
{
    bool del = argc > 1 && (strcmp(argv[1], "-d") == 0 || strcmp(argv[1], "--delete") == 0);
    if (al_cli_help(argc, argv, tag_help))
        return AL_EXIT_OK;
    struct al_repo *r = NULL;
    int st = al_cli_start("tag", argc - del != 3 ? "needs REF and TAG" : NULL, false, &r);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = del ? al_repo_untag(r, argv[2], argv[3], &err) : al_repo_tag(r, argv[1], argv[2], &err);
    al_repo_free(r);
    if (rc)
        return al_cli_fail(&err);
    if (del)
        printf("removed tag %s:%s\n", argv[2], argv[3]);
    else
        printf("tagged %s as %s\n", argv[1], argv[2]);
    return AL_EXIT_OK;
}

static const char rm_help[] =
    "usage: airlock rm REF...\n\n"
    "Removes versions from the index: name:tag or name@sha256:<hex> removes one\n"
    "version, a bare name removes every version of the model. When the active\n"
    "version goes, the newest remaining one becomes active. The blobs stay until\n"
    "'airlock gc' removes what nothing references.\n";

int al_cmd_rm(int argc, char **argv)
{
    if (al_cli_help(argc, argv, rm_help))
        return AL_EXIT_OK;
    struct al_repo *r = NULL;
    int st = al_cli_start("rm", argc < 2 ? "needs at least one REF" : NULL, false, &r);
    if (st)
        return st;
    int status = AL_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        struct al_err err = AL_ERR_INIT;
        size_t n = 0;
        if (al_repo_rm(r, argv[i], &n, &err) != AL_OK)
            status = al_cli_fail(&err);
        else
            printf("removed %s (%zu version%s)\n", argv[i], n, n == 1 ? "" : "s");
    }
    al_repo_free(r);
    return status;
}

static const char activate_help[] =
    "usage: airlock activate REF\n\n"
    "Makes the version REF names (name:tag or name@sha256:<hex>) the one that\n"
    "'NAME' resolves to and that 'airlock serve' serves. Recorded in the event log.\n";

static const char rollback_help[] =
    "usage: airlock rollback NAME\n\n"
    "Makes the version recorded before the active one active again. A running\n"
    "'airlock serve' picks it up on SIGHUP. Recorded in the event log.\n";

static int activate_like(int argc, char **argv, bool rollback)
{
    if (al_cli_help(argc, argv, rollback ? rollback_help : activate_help))
        return AL_EXIT_OK;
    const char *bad = rollback ? "needs exactly one NAME" : "needs exactly one REF";
    struct al_repo *r = NULL;
    int st = al_cli_start(rollback ? "rollback" : "activate", argc != 2 ? bad : NULL, false, &r);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    struct al_version v;
    enum al_rc rc = rollback ? al_repo_rollback(r, argv[1], &v, &err) : al_repo_activate(r, argv[1], &v, &err);
    al_repo_free(r);
    if (rc)
        return al_cli_fail(&err);
    print_version_line(rollback ? "rolled back to" : "activated", &v);
    return AL_EXIT_OK;
}

int al_cmd_activate(int argc, char **argv) { return activate_like(argc, argv, false); }
int al_cmd_rollback(int argc, char **argv) { return activate_like(argc, argv, true); }

static const char path_help[] =
    "usage: airlock path REF\n\n"
    "Prints the path of the version's weight file (its GGUF blob, or the file\n"
    "stored as its weights when it has no GGUF) for other tools, for example:\n"
    "sha256sum \"$(airlock path stories)\". The blob is read-only.\n";

/* A store query, not a load: any format has a path (a pickle or safetensors
 * version too), so this does not go through al_repo_resolve_weights, which
 * refuses what the engine cannot load. */
int al_cmd_path(int argc, char **argv)
{
    if (al_cli_help(argc, argv, path_help))
        return AL_EXIT_OK;
    struct al_repo *r = NULL;
    int st = al_cli_start_read("path", argc != 2 ? "needs exactly one REF" : NULL, &r);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    struct al_version v;
    char path[AL_LIMIT_PATH];
    enum al_rc rc = al_repo_resolve(r, argv[1], &v, &err);
    if (!rc)
        rc = al_repo_weight_path(r, &v, path, sizeof path, &err);
    al_repo_free(r);
    if (rc)
        return al_cli_fail(&err);
    printf("%s\n", path);
    return AL_EXIT_OK;
}
