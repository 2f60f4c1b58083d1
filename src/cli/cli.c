#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/version.h"

/* The subcommands; each one's function is defined in cmd_<name>.c. */
extern al_cmd_fn al_cmd_version, al_cmd_init, al_cmd_add, al_cmd_ls, al_cmd_show, al_cmd_tag, al_cmd_rm,
    al_cmd_activate, al_cmd_rollback, al_cmd_path, al_cmd_quantize, al_cmd_finetune, al_cmd_fsck, al_cmd_gc, al_cmd_log;
extern al_cmd_fn al_cmd_key, al_cmd_trust, al_cmd_pack, al_cmd_export, al_cmd_verify, al_cmd_ingest, al_cmd_delta;
extern al_cmd_fn al_cmd_push, al_cmd_pull, al_cmd_import;
extern al_cmd_fn al_cmd_apikey, al_cmd_audit;
extern al_cmd_fn al_cmd_validate, al_cmd_bench;
extern al_cmd_fn al_cmd_serve, al_cmd_run, al_cmd_ps;
extern al_cmd_fn al_cmd_rag, al_cmd_ask;
extern al_cmd_fn al_cmd_scan, al_cmd_policy;

static const struct al_cmd commands[] = {
    {"init", al_cmd_init, "create an empty store"},
    {"add", al_cmd_add, "import local files as a new model version"},
    {"ls", al_cmd_ls, "list models and versions"},
    {"show", al_cmd_show, "show a version: files, GGUF facts, provenance"},
    {"tag", al_cmd_tag, "point a tag at a version, or remove it"},
    {"activate", al_cmd_activate, "make a version the one a name resolves to"},
    {"rollback", al_cmd_rollback, "make the previous version active again"},
    {"rm", al_cmd_rm, "remove versions or models from the index"},
    {"quantize", al_cmd_quantize, "make a quantized version of a stored F32/F16 model (llama.cpp)"},
    {"finetune", al_cmd_finetune, "train a new version of a stored model on local text (llama.cpp, CPU)"},
    {"path", al_cmd_path, "print the path of a version's weight file"},
    {"fsck", al_cmd_fsck, "re-hash and check the whole store and event log"},
    {"gc", al_cmd_gc, "remove unreferenced blobs and old versions"},
    {"log", al_cmd_log, "print or verify the hash-chained event log"},
    {"key", al_cmd_key, "make or show a signing key (minisign format)"},
    {"trust", al_cmd_trust, "keys trusted to sign bundles: add, ls, rm, revoke"},
    {"pack", al_cmd_pack, "pack files or a version into a signed bundle"},
    {"export", al_cmd_export, "re-pack a stored version as a signed bundle"},
    {"delta", al_cmd_delta, "pack what changed between two versions as a signed delta bundle"},
    {"scan", al_cmd_scan, "look inside files for known dangers: pickle, safetensors, executables"},
    {"policy", al_cmd_policy, "the site's license policy and scan requirement: license, scan, show, check"},
    {"verify", al_cmd_verify, "check a bundle without changing anything"},
    {"ingest", al_cmd_ingest, "verify a bundle and add it to the store"},
    {"push", al_cmd_push, "push a version to an OCI registry, its signatures as a referrer"},
    {"pull", al_cmd_pull, "pull a version from an OCI registry through the checks of ingest"},
    {"import", al_cmd_import, "import a model from an Ollama models directory or an OCI layout/archive"},
    {"apikey", al_cmd_apikey, "create, list, revoke API keys for the server"},
    {"audit", al_cmd_audit, "verify or tail the server's audit log"},
    {"validate", al_cmd_validate, "check a model or server against the suite's golden outputs"},
    {"bench", al_cmd_bench, "measure speed and latency; check the suite's targets"},
    {"serve", al_cmd_serve, "serve models over an OpenAI-compatible HTTP API"},
    {"run", al_cmd_run, "answer a prompt, or chat, with a model (here or on a server)"},
    {"ps", al_cmd_ps, "list the models a running server has loaded"},
    {"rag", al_cmd_rag, "document collections for retrieval: create, add, query, ..."},
    {"ask", al_cmd_ask, "answer a question from a collection, with citations"},
    {"version", al_cmd_version, "print the version of airlock"},
};

static int exit_table[AL_RC_COUNT] = {
    [AL_OK] = AL_EXIT_OK,
    [AL_ERR_USAGE] = AL_EXIT_USAGE,
    [AL_ERR_NOT_FOUND] = AL_EXIT_NOT_FOUND,
    [AL_ERR_EXISTS] = AL_EXIT_DENIED,
    [AL_ERR_IO] = AL_EXIT_IO,
    [AL_ERR_CORRUPT] = AL_EXIT_VERIFY,
    [AL_ERR_INVALID] = AL_EXIT_INVALID,
    [AL_ERR_LIMIT] = AL_EXIT_INVALID,
    [AL_ERR_VERIFY] = AL_EXIT_VERIFY,
    [AL_ERR_DENIED] = AL_EXIT_DENIED,
    [AL_ERR_BUSY] = AL_EXIT_BUSY,
    [AL_ERR_NOMEM] = AL_EXIT_INTERNAL,
    [AL_ERR_INTERNAL] = AL_EXIT_INTERNAL,
    [AL_ERR_AUTH] = AL_EXIT_VERIFY, /* an API key that does not authenticate: 5, as before the split */
};

int al_cli_exit_code(enum al_rc rc)
{
    if ((unsigned)rc >= AL_RC_COUNT)
        return AL_EXIT_INTERNAL;
    return exit_table[rc];
}

int al_cli_fail(const struct al_err *err)
{
    fprintf(stderr, "airlock: error: %s\n", err->msg[0] ? err->msg : al_rc_name(err->rc));
    return al_cli_exit_code(err->rc);
}

int al_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "airlock %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'airlock %s --help'.\n", cmd);
    return AL_EXIT_USAGE;
}

bool al_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    }
    return false;
}

void al_cli_home(char *out, size_t size)
{
    const char *h = getenv("AIRLOCK_HOME");
    if (h && *h) {
        snprintf(out, size, "%s", h);
        return;
    }
    const char *xdg = getenv("XDG_DATA_HOME");
    if (xdg && *xdg) {
        snprintf(out, size, "%s/airlock", xdg);
        return;
    }
    const char *home = getenv("HOME");
    snprintf(out, size, "%s/.local/share/airlock", home && *home ? home : ".");
}

static void print_help(void)
{
    printf("airlock %s: run and manage LLMs inside an air gap\n\n", AIRLOCK_VERSION);
    printf("usage: airlock <command> [options] [args]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        printf("  %-12s %s\n", commands[i].name, commands[i].summary);
    printf("\nEvery command takes --help.\n"
           "The store lives in $AIRLOCK_HOME (default ~/.local/share/airlock).\n\n"
           "exit status:\n"
           "  0  success\n"
           "  1  failure, or a check found problems (fsck, verify)\n"
           "  2  bad command line\n"
           "  3  not found: model, ref, file or key\n"
           "  4  malformed or over-limit input\n"
           "  5  a digest or signature does not verify; damaged store; API key not valid\n"
           "  6  refused by policy (trust, expiry, replay, already exists, a dangerous scan)\n"
           "  7  input/output error from the operating system\n"
           "  8  the store is busy (locked by another process)\n"
           "  9  scan: warnings only\n"
           " 10  scan: something dangerous\n"
           " 70  internal error\n");
}

int al_cli_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        if (argc >= 3 && strcmp(argv[1], "help") == 0) {
            char *sub[] = {argv[2], (char *)"--help", NULL};
            for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                if (strcmp(commands[i].name, argv[2]) == 0)
                    return commands[i].fn(2, sub);
        }
        print_help();
        return argc < 2 ? AL_EXIT_USAGE : AL_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return al_cmd_version(1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, argv[1]) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "airlock: '%s' is not a command. See 'airlock help'.\n", argv[1]);
    return AL_EXIT_USAGE;
}
