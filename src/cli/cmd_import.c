/*
 * cmd_import.c: `airlock import ollama|oci`: models from other tools' stores
 * on this machine. The work is in src/bundle (import*.c); this file parses
 * and prints.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "bundle/bundle.h"
#include "cli/cli.h"
#include "cli/cli_util.h"
#include "cli/verdict.h"

int al_cmd_import(int argc, char **argv);

enum { O_FROM = 1000, O_AS, O_JSON, O_DANGEROUS, O_ACK, O_NOACT, O_MAXE, O_MAXT };

static const char import_help[] =
    "usage: airlock import ollama NAME[:TAG] [--from DIR] [options]\n"
    "       airlock import oci DIR|ARCHIVE.tar[:REF] [options]\n\n"
    "Imports a model from another tool's store on this machine. Every blob is\n"
    "re-hashed while it is copied into the store (the same path as 'airlock add')\n"
    "and refused when its bytes do not match its digest or size; then every file\n"
    "is scanned and the license decided, as 'add' and 'ingest' do. A refusal\n"
    "changes nothing in the store and is one event in the log; the version's\n"
    "'import' event says where it came from ('airlock show' prints it).\n\n"
    "An import is a local operator action like 'airlock add': unsigned by nature,\n"
    "no trust policy applies. To carry a model across the gap with proof, pack\n"
    "it ('airlock export --sign') after importing it.\n\n"
    "ollama: reads an Ollama models directory (default ~/.ollama/models, or\n"
    "$OLLAMA_MODELS): manifests/HOST/NAMESPACE/NAME/TAG and blobs/sha256-<hex>.\n"
    "NAME may be NAME, NAMESPACE/NAME or HOST/NAMESPACE/NAME (registry.ollama.ai,\n"
    "library by default). The weights become model.gguf; the template, parameters,\n"
    "system prompt, messages and license are kept as files (ollama/..., LICENSE)\n"
    "and in the model card (template, parameters, system, license_text, source).\n"
    "Adapter and projector layers are refused. Links are not followed.\n\n"
    "oci: reads an OCI image layout directory or an oci-archive tar (as 'skopeo\n"
    "copy ... oci:DIR:REF' or 'oci-archive:FILE:REF' and oras write them). The\n"
    "manifest is the one index.json names REF (org.opencontainers.image.ref.name),\n"
    "or the only one; the refs are listed when REF is missing and there are\n"
    "several. Layers are named as an unsigned 'airlock pull' names them: ModelPack\n"
    "(application/vnd.cncf.model.*), Docker Model Runner\n"
    "(application/vnd.docker.ai.gguf.v3) and ORAS GGUF layers.\n\n"
    "  --from DIR            ollama: the models directory\n"
    "  --as NAME[:TAG]       the name to store it under (default: ollama's name,\n"
    "                        oci's REF when it is a valid NAME[:TAG])\n"
    "  --allow-dangerous     accept a file the scan calls dangerous (recorded)\n"
    "  --ack-license ID      acknowledge the model's license ID (recorded)\n"
    "  --no-activate         do not make it the active version\n"
    "  --max-entry-size SIZE, --max-total-size SIZE   caps (default: free space)\n"
    "  --json                one JSON object on stdout (no progress bar)\n\n"
    "Exit status: 0 imported, 2 usage, 3 model, ref or blob not found, 4 malformed\n"
    "or over a cap (a '..' or absolute path, a link, an oversized manifest), 5 a\n"
    "blob does not match its digest or size, 6 refused by the scan or license\n"
    "policy, 7 I/O.\n\n"
    "examples: airlock import ollama llama3.2:1b\n"
    "          airlock import oci ./layout:stories-1.0 --as stories:1.0\n";

int al_cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, O_FROM},
        {"as", required_argument, NULL, O_AS},
        {"json", no_argument, NULL, O_JSON},
        {"allow-dangerous", no_argument, NULL, O_DANGEROUS},
        {"ack-license", required_argument, NULL, O_ACK},
        {"no-activate", no_argument, NULL, O_NOACT},
        {"max-entry-size", required_argument, NULL, O_MAXE},
        {"max-total-size", required_argument, NULL, O_MAXT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct al_bundle_opts bo = {0};
    const char *from = NULL;
    bool json = false;
    int c, st;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_FROM: from = optarg; break;
        case O_AS: bo.as = optarg; break;
        case O_JSON: json = true; break;
        case O_DANGEROUS: bo.allow_dangerous = true; break;
        case O_ACK: bo.ack_license = optarg; break;
        case O_NOACT: bo.no_activate = true; break;
        case O_MAXE:
            if ((st = al_cli_opt_size("import", "--max-entry-size", optarg, 1, UINT64_MAX, &bo.max_entry)))
                return st;
            break;
        case O_MAXT:
            if ((st = al_cli_opt_size("import", "--max-total-size", optarg, 1, UINT64_MAX, &bo.max_total)))
                return st;
            break;
        case 'h': fputs(import_help, stdout); return AL_EXIT_OK;
        default: return al_cli_usage_error("import", "unknown option");
        }
    }
    if (argc - optind != 2)
        return al_cli_usage_error("import", "needs 'ollama NAME[:TAG]' or 'oci DIR|ARCHIVE.tar[:REF]'");
    const char *kind = argv[optind], *what = argv[optind + 1];
    bool ollama = strcmp(kind, "ollama") == 0;
    if (!ollama && strcmp(kind, "oci") != 0)
        return al_cli_usage_error("import", "unknown source '%s' (ollama or oci)", kind);
    if (from && !ollama)
        return al_cli_usage_error("import", "--from is for 'import ollama'");
    char dir[4096];
    if (ollama && !from) {
        const char *env = getenv("OLLAMA_MODELS"), *home = getenv("HOME");
        if (env && env[0])
            snprintf(dir, sizeof dir, "%s", env);
        else
            snprintf(dir, sizeof dir, "%s/.ollama/models", home ? home : "");
        from = dir;
    }
    bo.progress = !json;
    struct al_repo *r = NULL;
    if ((st = al_cli_open_repo(true, &r)))
        return st;
    struct al_err err = AL_ERR_INIT;
    struct al_bundle_report rep;
    struct al_bundle_imported res;
    enum al_rc e = ollama ? al_bundle_import_ollama(r, from, what, &bo, &res, &rep, &err)
                          : al_bundle_import_oci(r, what, &bo, &res, &rep, &err);
    al_repo_free(r);
    if (json) {
        al_cli_print_verdict(json_pack("{s:s, s:s, s:s, s:s}", "source", res.source, "manifest", res.manifest,
                                       "media_types", res.media_types, "checks", rep.checks),
                             e, &err, &rep);
    }
    if (e) {
        st = al_cli_fail(&err);
        fprintf(stderr, "airlock: nothing was stored; a refusal is recorded in the event log ('airlock log')\n");
    } else {
        if (!json) {
            printf("%s %s:%s  %s%s\n  from       %s (manifest %s)\n  layers     %s\n  checks     %s\n",
                   rep.existed ? "already present:" : "imported", rep.version.model, rep.tag, rep.version.manifest,
                   rep.version.active ? "  (active)" : "", res.source, res.manifest, res.media_types, rep.checks);
            if (rep.overrides[0])
                printf("  overrides  %s (recorded)\n", rep.overrides);
            printf("  signed     no (an import is a local action, like 'add')\nnext: airlock show %s:%s\n",
                   rep.version.model, rep.tag);
        }
        st = AL_EXIT_OK;
    }
    al_bundle_report_release(&rep);
    return st;
}
