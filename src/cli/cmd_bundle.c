/*
 * cmd_bundle.c: pack and export (build host), verify and ingest (air-gapped
 * side). The work is in src/bundle; this file parses, prints and advises.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>

#include "bundle/bundle.h"
#include "cli/cli.h"
#include "cli/cli_key.h"
#include "cli/cli_util.h"
#include "cli/model_ref.h"
#include "core/limits.h"
#include "core/time.h"
#include "suite/suite.h"

int al_cmd_pack(int argc, char **argv);
int al_cmd_export(int argc, char **argv);
int al_cmd_verify(int argc, char **argv);
int al_cmd_ingest(int argc, char **argv);
int al_cmd_delta(int argc, char **argv);

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* --record-golden: runs the suite in bench_dir on the first GGUF among files
 * and writes bench_dir/recording.json, which the pack then carries as
 * bench/recording.json. The recording holds the time and this machine's
 * facts; everything else about the pack stays deterministic (the same files,
 * recording included, give the same bundle). */
static int record_golden(const char *cmd, const char *const *files, size_t n_files, const char *bench_dir,
                         int threads)
{
    const char *gguf = NULL;
    for (size_t i = 0; i < n_files && !gguf; i++)
        if (al_repo_weights_named(files[i]))
            gguf = files[i];
    if (!gguf)
        return al_cli_usage_error(cmd, "--record-golden needs a .gguf file among the files");
    struct al_err err = AL_ERR_INIT;
    struct al_suite *s = NULL;
    struct al_engine_model *m = NULL;
    struct al_model_ref mr;
    int status = 0;
    if (al_suite_load(bench_dir, &s, &err)) {
        status = al_cli_fail(&err);
        goto out;
    }
    if ((status = al_cli_model_ref(gguf, &mr)) || (status = al_cli_model_load(&mr, threads, 1, 4096, &m)))
        goto out;
    char what[AL_LIMIT_PATH + 32];
    snprintf(what, sizeof what, "%.4000s (%.19s)", gguf, mr.digest);
    status = al_cli_record_golden(m, s, threads, what, bench_dir);
out:
    al_engine_model_free(m);
    al_suite_free(s);
    return status;
}

int al_cli_pack_preflight(const char *cmd, const struct al_bundle_pack_opts *po)
{
    struct al_err err = AL_ERR_INIT;
    int64_t t = 0;
    char id[AL_LICENSE_ID_MAX + 1];
    if ((po->expires && al_time_parse(po->expires, &t, &err)) || (po->created && al_time_parse(po->created, &t, &err)))
        return al_cli_fail(&err);
    if (po->ack_license && al_license_normalize(po->ack_license, id, &err))
        return al_cli_usage_error(cmd, "--ack-license: '%s' is not a license identifier", po->ack_license);
    const char *dirs[] = {po->bench_dir, po->prompts_dir}, *dir_opt[] = {"--bench", "--prompts"};
    for (size_t i = 0; i < 2; i++) {
        struct stat st;
        if (dirs[i] && (stat(dirs[i], &st) != 0 || !S_ISDIR(st.st_mode))) {
            al_err_set(&err, AL_ERR_NOT_FOUND, "%s: '%s' is not a directory", dir_opt[i], dirs[i]);
            return al_cli_fail(&err);
        }
    }
    for (size_t i = 0; i < po->n_files; i++)
        if (!is_file(po->files[i])) {
            al_err_set(&err, AL_ERR_NOT_FOUND, "'%s' is not a file", po->files[i]);
            return al_cli_fail(&err);
        }
    const char *refs[] = {po->ref, po->delta_base};
    for (size_t i = 0; i < 2; i++) {
        if (refs[i] == NULL)
            continue;
        struct al_repo *r = NULL;
        struct al_version v;
        int st = al_cli_open_repo_read(&r);
        if (!st && al_repo_resolve(r, refs[i], &v, &err))
            st = al_cli_fail(&err);
        al_repo_free(r);
        if (st)
            return st;
    }
    return 0;
}

/* Loads the keys, records the golden prompts when threads > 0, packs and
 * prints. Returns an exit status. */
static int pack_run(const char *cmd, struct al_bundle_pack_opts *po, const char *out, const char *const *key_paths,
                    size_t n_keys, bool from_store, int threads)
{
    struct al_mkey_sec *keys[AL_BUNDLE_MAX_SIGS] = {0};
    struct al_repo *r = NULL;
    struct al_err err = AL_ERR_INIT;
    struct al_bundle_packed res;
    int st = al_cli_pack_preflight(cmd, po);
    for (size_t i = 0; i < n_keys && !st; i++)
        if (al_cli_load_secret_key(key_paths[i], &keys[i], &err))
            st = al_cli_fail(&err);
    if (!st && threads > 0)
        st = record_golden(cmd, po->files, po->n_files, po->bench_dir, threads);
    if (st)
        goto out;
    if (from_store) {
        if ((st = al_cli_open_repo(false, &r)))
            goto out;
    } else {
        /* A build host may have a store (for the previous version's digest); none is needed. */
        char home[AL_LIMIT_PATH];
        al_cli_home(home, sizeof home);
        if (al_repo_open(home, false, &r, NULL) != AL_OK)
            r = NULL;
    }
    po->keys = keys;
    po->n_keys = n_keys;
    if (al_bundle_pack(r, po, out, &res, &err)) {
        st = al_cli_fail(&err);
        goto out;
    }
    char size[32];
    al_cli_human_size(res.bytes, size, sizeof size);
    printf("packed %s (%zu file%s, %s)\n  bundle    %s\n  manifest  %s\n  sequence  %" PRId64 "\n  created   %s\n"
           "  scan      %s\n",
           out, res.n_files, res.n_files == 1 ? "" : "s", size, res.bundle, res.manifest, res.seq, res.created, res.scan);
    printf("  license   %s %s%s\n", al_decision_name(res.license.verdict),
           res.license.license[0] ? res.license.license : "none", res.license.acked ? " (acknowledged)" : "");
    if (po->expires)
        printf("  expires   %s\n", po->expires);
    printf("\nnext: carry %s across; inside run 'airlock verify %s' and 'airlock ingest %s'\n", out, out, out);
out:
    for (size_t i = 0; i < n_keys; i++)
        al_trust_key_free(keys[i]);
    al_repo_free(r);
    return st;
}

static void pack_usage(bool export_only)
{
    if (export_only)
        printf("usage: airlock export REF -o BUNDLE.tar --sign KEY [--zstd] [--expires DATE] [--seq N]\n\n"
               "Re-packs a stored version as a signed native bundle, to carry it to another\n"
               "air-gapped site (which trusts KEY's public half). Options as for 'airlock pack'.\n");
    else
        printf("usage: airlock pack REF -o BUNDLE.tar --sign KEY [options]\n"
               "       airlock pack NAME[:TAG] FILE... -o BUNDLE.tar --sign KEY [options]\n\n"
               "Makes a native bundle: a tar holding checksums.txt (sha256sum format), its\n"
               "minisign signature(s) and an OCI image layout of the version. Deterministic:\n"
               "the same inputs and key give the same bytes. Check one without airlock:\n"
               "  tar xf B.tar && sha256sum -c checksums.txt && minisign -Vm checksums.txt -p KEY.pub\n\n"
               "  -o, --output FILE  the bundle to write\n"
               "  -s, --sign KEY     minisign secret key (airlock key gen); repeat for k-of-n\n"
               "  --zstd             compress with zstd\n"
               "  --expires DATE     refuse to ingest after DATE (YYYY-MM-DD or ...THH:MM:SSZ)\n"
               "  --seq N            sequence number (default: the creation time in seconds);\n"
               "                     the air-gapped side refuses one not above the last\n"
               "  --created TIME     creation date (default: SOURCE_DATE_EPOCH, else newest file)\n"
               "  --prompts DIR      add DIR's files as prompts/<file>\n"
               "  --bench DIR        add DIR's files as bench/<file> (a suite: suite.json,\n"
               "                     golden.json, recording.json; see 'airlock validate')\n"
               "  --record-golden    first run DIR's golden prompts greedily on the GGUF here\n"
               "                     and write DIR/recording.json (token ids, top log-\n"
               "                     probabilities, llama.cpp commit, CPU features), so the\n"
               "                     bundle carries it, signed; 'airlock validate NAME'\n"
               "                     checks against it after ingest\n"
               "  -t, --threads N    CPU threads for --record-golden (default 2)\n"
               "  --card CARD.json   model card: origin, license, date, quantization\n"
               "  --name NAME[:TAG]  name the files (instead of the first argument)\n"
               "  --allow-dangerous  pack a file the scan calls dangerous (a warning; the\n"
               "                     air-gapped side scans it again at ingest)\n"
               "  --ack-license ID   acknowledge the model's license ID (its terms read),\n"
               "                     recorded in the signed manifest for the ingesting site\n\n"
               "Every file is scanned first ('airlock scan'): a dangerous one (a pickle that\n"
               "imports os.system, a GGUF with NaN weights, ...) refuses the pack with exit\n"
               "status 6 and nothing written; warnings are allowed.\n\n"
               "The license the files declare (a README.md model card's front matter, a GGUF's\n"
               "general.license) is checked against the built-in table ('airlock policy show\n"
               "--table'): one that lets a model be redistributed only under conditions, is\n"
               "unknown, or forbids it refuses the pack (exit 6) unless --ack-license names it.\n\n"
               "example: airlock pack demo:1.0 demo.gguf -o demo-1.0.tar --sign build.key\n");
}

static int pack_common(const char *cmd, int argc, char **argv, bool export_only)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"sign", required_argument, NULL, 's'},
        {"zstd", no_argument, NULL, 'z'},         {"expires", required_argument, NULL, 'e'},
        {"seq", required_argument, NULL, 'q'},    {"prompts", required_argument, NULL, 'p'},
        {"bench", required_argument, NULL, 'b'},  {"card", required_argument, NULL, 'c'},
        {"name", required_argument, NULL, 'n'},   {"created", required_argument, NULL, 'C'},
        {"record-golden", no_argument, NULL, 'R'}, {"threads", required_argument, NULL, 't'},
        {"allow-dangerous", no_argument, NULL, 'X'}, {"help", no_argument, NULL, 'h'},
        {"ack-license", required_argument, NULL, 'L'}, {NULL, 0, NULL, 0},
    };
    struct al_bundle_pack_opts po = {.progress = true};
    bool record = false;
    int threads = 2;
    const char *out = NULL, *key_paths[AL_BUNDLE_MAX_SIGS], *name_arg = NULL;
    size_t n_keys = 0;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "o:s:zt:h", opts, NULL)) != -1) {
        int st = 0;
        switch (c) {
        case 'o': out = optarg; break;
        case 'R': record = true; break;
        case 't': st = al_cli_opt_threads(cmd, optarg, &threads); break;
        case 's':
            if (n_keys >= AL_BUNDLE_MAX_SIGS)
                return al_cli_usage_error(cmd, "at most %u --sign keys", AL_BUNDLE_MAX_SIGS);
            key_paths[n_keys++] = optarg;
            break;
        case 'z': po.zstd = true; break;
        case 'e': po.expires = optarg; break;
        case 'q': {
            long long seq = 0;
            st = al_cli_opt_int(cmd, "--seq", optarg, 1, INT64_MAX, &seq);
            po.seq = seq;
            break;
        }
        case 'p': po.prompts_dir = optarg; break;
        case 'b': po.bench_dir = optarg; break;
        case 'c': po.card_path = optarg; break;
        case 'n': name_arg = optarg; break;
        case 'C': po.created = optarg; break;
        case 'X': po.allow_dangerous = true; break;
        case 'L': po.ack_license = optarg; break;
        case 'h': pack_usage(export_only); return AL_EXIT_OK;
        default: return al_cli_usage_error(cmd, "unknown option");
        }
        if (st)
            return st;
    }
    int npos = argc - optind;
    if (out == NULL)
        return al_cli_usage_error(cmd, "needs -o BUNDLE.tar");
    if (n_keys == 0)
        return al_cli_usage_error(cmd, "needs --sign KEY (make one with 'airlock key gen')");
    if (npos < 1)
        return al_cli_usage_error(cmd, "needs a REF or NAME[:TAG] FILE...");
    struct al_ref ref;
    memset(&ref, 0, sizeof ref);
    bool from_store = export_only || (npos == 1 && !name_arg && !is_file(argv[optind]));
    struct al_err err = AL_ERR_INIT;
    if (from_store) {
        if (npos != 1 || name_arg)
            return al_cli_usage_error(cmd, "takes one REF");
        po.ref = argv[optind];
    } else {
        const char *nt = name_arg;
        int first = optind;
        if (nt == NULL) {
            if (is_file(argv[optind]))
                return al_cli_usage_error(cmd, "files need a name: airlock pack NAME[:TAG] FILE... or --name");
            nt = argv[optind];
            first++;
        }
        if (al_index_ref_parse(nt, &ref, &err) || ref.digest[0])
            return al_cli_usage_error(cmd, "'%s' is not NAME[:TAG]", nt);
        po.name = ref.name;
        po.tag = ref.tag[0] ? ref.tag : NULL;
        po.files = (const char *const *)argv + first;
        po.n_files = (size_t)(argc - first);
    }
    if (record && (from_store || !po.bench_dir))
        return al_cli_usage_error(cmd, "--record-golden needs files and --bench DIR (the suite to record)");
    return pack_run(cmd, &po, out, key_paths, n_keys, from_store, record ? threads : 0);
}

int al_cmd_pack(int argc, char **argv) { return pack_common("pack", argc, argv, false); }

static const char delta_help[] =
    "usage: airlock delta OLD_REF NEW_REF -o PATCH.tar --sign KEY [--expires DATE] [--seq N] [--zstd]\n"
    "       airlock delta --dry-run OLD_REF NEW_REF [--json]\n\n"
    "Packs NEW_REF as a signed delta bundle against OLD_REF (both in this store): a\n"
    "native bundle (same signatures, trust policy, expiry and sequence as 'pack')\n"
    "whose delta.json names the base's manifest digest, the result's, and every\n"
    "result file's digest. Files the base has are not shipped. A GGUF is patched\n"
    "tensor by tensor: unchanged tensors are copied from the base by position,\n"
    "changed ones are zstd with the base tensor as prefix, new ones compressed;\n"
    "the header and metadata travel compressed against the base's. Other files are\n"
    "patched in 16 MiB chunks. Memory stays bounded whatever the model size.\n\n"
    "The air-gapped side runs 'airlock ingest PATCH.tar': it needs the base version\n"
    "in its store, rebuilds every file while hashing it, and commits only when each\n"
    "digest matches the signed manifest. 'airlock verify PATCH.tar' names the base.\n\n"
    "  -o, --output FILE  the delta bundle to write\n"
    "  -s, --sign KEY     minisign secret key; repeat for k-of-n\n"
    "  --expires DATE     refuse to ingest after DATE\n"
    "  --seq N            sequence number (default: as 'pack')\n"
    "  --zstd             compress the bundle with zstd as well\n"
    "  --dry-run          print what would be shipped (tensors unchanged / changed /\n"
    "                     new, bytes) and write nothing\n"
    "  --json             with --dry-run: the plan as JSON\n\n"
    "example: airlock delta demo:1.0 demo:1.1 -o demo-1.1-delta.tar --sign build.key\n";

static void print_delta_plan(const struct al_bundle_packed *res, size_t n, bool json)
{
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            const struct al_bundle_delta_file *f = &res->delta[i];
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "path",
                                                 f->path, "via", f->via, "base_path", f->base_path, "size",
                                                 (json_int_t)f->size, "gguf", f->st.gguf, "tensors_unchanged",
                                                 (json_int_t)f->st.tensors_unchanged, "tensors_changed",
                                                 (json_int_t)f->st.tensors_changed, "tensors_new",
                                                 (json_int_t)f->st.tensors_new, "bytes_unchanged",
                                                 (json_int_t)f->st.bytes_unchanged, "bytes_changed",
                                                 (json_int_t)f->st.bytes_changed, "bytes_new",
                                                 (json_int_t)f->st.bytes_new, "bytes_meta", (json_int_t)f->st.bytes_meta));
        }
        json_t *o = json_pack("{s:s, s:s, s:o}", "base", res->delta_base, "base_ref", res->delta_base_ref, "files", arr);
        char *txt = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        if (txt)
            printf("%s\n", txt);
        free(txt);
        json_decref(o);
        return;
    }
    printf("base      %s  %s\n", res->delta_base_ref, res->delta_base);
    for (size_t i = 0; i < n; i++) {
        const struct al_bundle_delta_file *f = &res->delta[i];
        char a[32], b[32], c[32], d[32], e[32];
        al_cli_human_size((int64_t)f->size, a, sizeof a);
        printf("%-6s %10s  %s", f->via, a, f->path);
        if (strcmp(f->via, "patch") == 0)
            printf("  (from %s)", f->base_path);
        printf("\n");
        if (strcmp(f->via, "patch") != 0)
            continue;
        al_cli_human_size((int64_t)f->st.bytes_unchanged, a, sizeof a);
        al_cli_human_size((int64_t)f->st.bytes_changed, b, sizeof b);
        al_cli_human_size((int64_t)f->st.bytes_new, c, sizeof c);
        al_cli_human_size((int64_t)f->st.bytes_meta, d, sizeof d);
        if (f->st.gguf)
            printf("         tensors unchanged %" PRIu64 " (%s), changed %" PRIu64 " (%s), new %" PRIu64
                   " (%s); header and metadata %s\n", f->st.tensors_unchanged, a, f->st.tensors_changed, b,
                   f->st.tensors_new, c, d);
        else
            printf("         not a GGUF: bytes unchanged %s, changed %s\n", a, b);
        if (f->st.patch_bytes) {
            al_cli_human_size((int64_t)f->st.patch_bytes, e, sizeof e);
            printf("         patch %s\n", e);
        }
    }
}

int al_cmd_delta(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"sign", required_argument, NULL, 's'},
        {"zstd", no_argument, NULL, 'z'},         {"expires", required_argument, NULL, 'e'},
        {"seq", required_argument, NULL, 'q'},    {"dry-run", no_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "delta";
    struct al_bundle_pack_opts po = {.progress = true};
    const char *out = NULL, *key_paths[AL_BUNDLE_MAX_SIGS];
    size_t n_keys = 0;
    bool json = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "o:s:zh", opts, NULL)) != -1) {
        int st = 0;
        switch (c) {
        case 'o': out = optarg; break;
        case 's':
            if (n_keys >= AL_BUNDLE_MAX_SIGS)
                return al_cli_usage_error(cmd, "at most %u --sign keys", AL_BUNDLE_MAX_SIGS);
            key_paths[n_keys++] = optarg;
            break;
        case 'z': po.zstd = true; break;
        case 'e': po.expires = optarg; break;
        case 'q': {
            long long seq = 0;
            st = al_cli_opt_int(cmd, "--seq", optarg, 1, INT64_MAX, &seq);
            po.seq = seq;
            break;
        }
        case 'n': po.delta_dry_run = true; break;
        case 'j': json = true; break;
        case 'h': fputs(delta_help, stdout); return AL_EXIT_OK;
        default: return al_cli_usage_error(cmd, "unknown option");
        }
        if (st)
            return st;
    }
    if (argc - optind != 2)
        return al_cli_usage_error(cmd, "needs OLD_REF NEW_REF");
    if (json && !po.delta_dry_run)
        return al_cli_usage_error(cmd, "--json goes with --dry-run");
    if (!po.delta_dry_run && (out == NULL || n_keys == 0))
        return al_cli_usage_error(cmd, "needs -o PATCH.tar and --sign KEY (or --dry-run)");
    po.delta_base = argv[optind];
    po.ref = argv[optind + 1];
    struct al_mkey_sec *keys[AL_BUNDLE_MAX_SIGS] = {0};
    struct al_repo *r = NULL;
    struct al_err err = AL_ERR_INIT;
    struct al_bundle_packed res;
    memset(&res, 0, sizeof res);
    int st = al_cli_pack_preflight(cmd, &po);
    for (size_t i = 0; i < n_keys && !st; i++)
        if (al_cli_load_secret_key(key_paths[i], &keys[i], &err))
            st = al_cli_fail(&err);
    if (st || (st = al_cli_open_repo(false, &r)))
        goto out;
    po.keys = keys;
    po.n_keys = n_keys;
    if (po.delta_dry_run)
        po.progress = false;
    if (al_bundle_pack(r, &po, out, &res, &err)) {
        st = al_cli_fail(&err);
        goto out;
    }
    if (po.delta_dry_run) {
        print_delta_plan(&res, res.n_files, json);
        goto out;
    }
    char size[32];
    al_cli_human_size((int64_t)res.bytes, size, sizeof size);
    printf("packed delta %s (%zu files, %s)\n  bundle    %s\n  manifest  %s\n  base      %s  %s\n"
           "  sequence  %" PRId64 "\n  created   %s\n  scan      %s\n", out, res.n_files, size, res.bundle,
           res.manifest, res.delta_base_ref, res.delta_base, res.seq, res.created, res.scan);
    if (po.expires)
        printf("  expires   %s\n", po.expires);
    print_delta_plan(&res, res.n_files, false);
    printf("\nnext: carry %s across; inside, with %s in the store, run 'airlock ingest %s'\n", out,
           res.delta_base_ref, out);
out:
    for (size_t i = 0; i < n_keys; i++)
        al_trust_key_free(keys[i]);
    al_bundle_packed_release(&res);
    al_repo_free(r);
    return st;
}
int al_cmd_export(int argc, char **argv) { return pack_common("export", argc, argv, true); }

static void print_report(const struct al_bundle_report *rep, const char *path)
{
    char size[32];
    al_cli_human_size(rep->bundle_bytes, size, sizeof size);
    printf("bundle    %s\n  digest  %s (%s)\n", path, rep->bundle[0] ? rep->bundle : "-", size);
    if (rep->name[0]) {
        printf("model     %s:%s (%s bundle)", rep->name, rep->tag, rep->native ? "native" : "plain");
        if (rep->seq)
            printf("  sequence %" PRId64 " (highest ingested %" PRId64 ")", rep->seq, rep->max_seq);
        printf("\n");
        if (rep->created[0])
            printf("  created %s\n", rep->created);
        if (rep->expires[0])
            printf("  expires %s\n", rep->expires);
        if (rep->previous[0])
            printf("  previous %s\n", rep->previous);
    }
    if (rep->delta) {
        printf("delta     from base %s (manifest %s)\n", rep->delta_base_ref, rep->delta_base);
        if (rep->delta_base_found[0])
            printf("  base    present in this store as %s\n", rep->delta_base_found);
        else
            printf("  base    NOT in this store: ingest %s first\n", rep->delta_base_ref);
    }
    printf("signers\n");
    if (rep->n_signers == 0)
        printf("  (none checked)\n");
    for (size_t i = 0; i < rep->n_signers; i++) {
        const struct al_bundle_signer *s = &rep->signers[i];
        printf("  %-8s %-40s %-14s %s%s%s\n", s->kind, s->id[0] ? s->id : "-", s->status, s->file,
               s->key_name[0] ? "  trusted as " : "", s->key_name);
    }
    if (rep->threshold)
        printf("  %d of %d required signatures by trusted keys\n", rep->good_signers, rep->threshold);
    printf("files\n");
    for (size_t i = 0; i < rep->n_files; i++) {
        const struct al_bundle_file *f = &rep->files[i];
        al_cli_human_size(f->size, size, sizeof size);
        printf("  %-10s %10s  %s  %s\n", f->status, size, f->digest, f->name);
    }
    printf("checks    %s\n", rep->checks[0] ? rep->checks : "-");
    if (rep->overrides[0])
        printf("overrides %s\n", rep->overrides);
}

static int bundle_cmd(const char *cmd, int argc, char **argv, bool dry)
{
    static const struct option opts[] = {
        {"as", required_argument, NULL, 'a'},
        {"allow-expired", no_argument, NULL, 'E'},
        {"allow-downgrade", no_argument, NULL, 'D'},
        {"allow-dangerous", no_argument, NULL, 'X'},
        {"ack-license", required_argument, NULL, 'L'},
        {"max-entry-size", required_argument, NULL, 'm'},
        {"max-total-size", required_argument, NULL, 't'},
        {"no-activate", no_argument, NULL, 'n'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct al_bundle_opts bo = {.dry_run = dry, .progress = true};
    bool quiet = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "a:qh", opts, NULL)) != -1) {
        int st = 0;
        switch (c) {
        case 'a': bo.as = optarg; break;
        case 'E': bo.allow_expired = true; break;
        case 'D': bo.allow_downgrade = true; break;
        case 'X': bo.allow_dangerous = true; break;
        case 'L': bo.ack_license = optarg; break;
        case 'n': bo.no_activate = true; break;
        case 'q': quiet = true; break;
        case 'm':
            if ((st = al_cli_opt_size(cmd, "--max-entry-size", optarg, 1, UINT64_MAX, &bo.max_entry)))
                return st;
            break;
        case 't':
            if ((st = al_cli_opt_size(cmd, "--max-total-size", optarg, 1, UINT64_MAX, &bo.max_total)))
                return st;
            break;
        case 'h':
            printf("usage: airlock %s BUNDLE [--as NAME[:TAG]] [--allow-expired] [--allow-downgrade]\n"
                   "       [--max-entry-size SIZE] [--max-total-size SIZE]%s\n\n", cmd,
                   dry ? "" : " [--no-activate] [--allow-dangerous]\n       [--ack-license ID]");
            if (dry)
                printf("Checks a bundle without changing anything: reads it once, checks every entry,\n"
                       "checksums.txt, its signatures against the trust policy ('airlock trust ls'),\n"
                       "expiry and sequence. Prints who signed, every file with its digest, and the\n"
                       "verdict; the exit status is 0 only when 'airlock ingest' would accept it.\n");
            else
                printf("Verifies and imports a bundle (tar, tar.gz or tar.zst) in one streamed pass:\n"
                       "nothing enters the store until the signatures, the trust policy, every digest\n"
                       "and size, expiry and sequence are proven; then the version is added and made\n"
                       "active at once. A refusal changes nothing and is recorded in the event log.\n"
                       "A plain bundle (files + checksums.txt + checksums.txt.asc/.minisig, made by\n"
                       "hand) needs --as NAME:TAG.\n\n"
                   "Before the commit every file is scanned ('airlock scan'; an executable bit on\n"
                   "an executable or script is dangerous inside a bundle): a dangerous file\n"
                   "refuses the ingest with exit status 6 and one 'scan-refused' event; warnings\n"
                   "are allowed unless the site's policy says 'scan: ok' ('airlock policy scan\n"
                   "require ok'), which refuses them the same way. The verdict is recorded in\n"
                   "the ingest event ('airlock show').\n\n"
                   "The license (a README.md card's front matter, a GGUF's general.license) is\n"
                   "decided by the site's policy ($AIRLOCK_HOME/policy.json, 'airlock policy'):\n"
                   "deny, or a rule 'ack' not acknowledged (by the packer's --ack-license in the\n"
                   "signed manifest, or --ack-license here), refuses with exit status 6 and one\n"
                   "'license-refused' event. Without a policy file nothing is refused for its\n"
                   "license; the decision is recorded under 'license' in the ingest event.\n");
            printf("\n  --as NAME[:TAG]       the name to store it under\n"
                   "  --allow-expired       accept an expired bundle (recorded as an event)\n"
                   "  --allow-downgrade     accept a sequence not above the last (recorded)\n"
                   "%s"
                   "  --max-entry-size SIZE cap on one file (default: free space less a margin)\n"
                   "  --max-total-size SIZE cap on all files together (same default)\n",
                   dry ? "" : "  --allow-dangerous     accept a file the scan calls dangerous (recorded)\n"
                              "  --ack-license ID      acknowledge the model's license ID (recorded)\n");
            return AL_EXIT_OK;
        default: return al_cli_usage_error(cmd, "unknown option");
        }
    }
    if (argc - optind != 1)
        return al_cli_usage_error(cmd, "needs one BUNDLE");
    const char *path = argv[optind];
    struct al_repo *r = NULL;
    int st = dry ? al_cli_open_repo_read(&r) : al_cli_open_repo(true, &r);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    struct al_bundle_report rep;
    enum al_rc rc = al_bundle_ingest(r, path, &bo, &rep, &err);
    al_repo_free(r);
    if (dry || !quiet)
        if (dry || rc)
            print_report(&rep, path);
    if (rc) {
        printf("verdict   REFUSED: %s\n", err.msg);
        if (!dry)
            fprintf(stderr, "airlock: nothing was changed; the refusal is recorded in the event log ('airlock log')\n");
        st = al_cli_fail(&err);
        goto out;
    }
    char signers[512] = "";
    for (size_t i = 0; i < rep.n_signers; i++)
        if (rep.signers[i].good) {
            size_t n = strlen(signers);
            snprintf(signers + n, sizeof signers - n, "%s%s key %.64s ('%.64s')", n ? ", " : "", rep.signers[i].kind,
                     rep.signers[i].id, rep.signers[i].key_name);
        }
    if (rep.untouched) {
        /* The bundle's tag may since have moved to another version: name it by a tag it has, or its digest. */
        char ref[AL_LIMIT_NAME + AL_DIGEST_SIZE + 2];
        if (rep.version.tags[0])
            snprintf(ref, sizeof ref, "%s:%.*s", rep.version.model, (int)strcspn(rep.version.tags, ","),
                     rep.version.tags);
        else
            snprintf(ref, sizeof ref, "%s@%s", rep.version.model, rep.version.manifest);
        if (dry) {
            printf("verdict   VALID: already present as %s\n", ref);
        } else {
            printf("already present: %s  %s%s\n  bundle     %s\n  signed by  %s\n  nothing changed: the store holds "
                   "this bundle's signed manifest already; its tags and the active version stay as they are\n"
                   "next: airlock show %s\n", ref, rep.version.manifest, rep.version.active ? "  (active)" : "",
                   rep.bundle, signers, ref);
        }
    } else if (dry) {
        printf("verdict   VALID: %s:%s would be ingested\n", rep.name, rep.tag);
    } else {
        printf("%s %s:%s  %s%s\n  bundle     %s\n  signed by  %s\n  checks     %s\n",
               rep.existed ? "already present:" : "ingested", rep.version.model, rep.tag, rep.version.manifest,
               rep.version.active ? "  (active)" : "", rep.bundle, signers, rep.checks);
        if (rep.overrides[0])
            printf("  overrides  %s (recorded)\n", rep.overrides);
        if (rep.delta)
            printf("  delta      from %s (%s): %zu files rebuilt from patches, %zu taken from the base\n",
                   rep.delta_base_ref, rep.delta_base_found, rep.delta_patched, rep.delta_from_base);
        printf("next: airlock show %s:%s\n", rep.version.model, rep.tag);
    }
out:
    al_bundle_report_release(&rep);
    return st;
}

int al_cmd_verify(int argc, char **argv) { return bundle_cmd("verify", argc, argv, true); }
int al_cmd_ingest(int argc, char **argv) { return bundle_cmd("ingest", argc, argv, false); }
