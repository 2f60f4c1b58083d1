/*
 * cmd_access.c: airlock apikey create|ls|revoke|check.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#include "access/access.h"
#include "cli/cli.h"
#include "cli/cli_util.h"
#include "core/limits.h"

int al_cmd_apikey(int argc, char **argv);

static const char usage[] =
    "usage: airlock apikey create NAME --scopes LIST [--models PATTERNS] [--expires DATE] [--json]\n"
    "       airlock apikey ls [--json]\n"
    "       airlock apikey revoke NAME\n"
    "       airlock apikey check [--scope SCOPE] [--model MODEL] < token\n\n"
    "API keys for 'airlock serve' (Authorization: Bearer al-...).\n"
    "  --scopes   chat, embed, metrics (GET /metrics), pull (serve --registry),\n"
    "             admin (grants every scope),\n"
    "             rag:COLLECTION, rag:*\n"
    "  --models   comma-separated patterns such as 'llama*,qwen2:7b' (default '*')\n"
    "  --expires  YYYY-MM-DD (00:00 UTC that day), YYYY-MM-DDTHH:MM:SSZ, Nd or Nh\n"
    "create prints the secret once; only its hash is stored. Once any key exists\n"
    "the server requires one, even after every key is revoked.\n"
    "check reads a token on stdin and says whether the server would let it in.\n";

static int create(int argc, char **argv)
{
    static const struct option opts[] = {{"scopes", required_argument, NULL, 's'},
                                         {"models", required_argument, NULL, 'm'},
                                         {"expires", required_argument, NULL, 'e'},
                                         {"json", no_argument, NULL, 'j'},
                                         {NULL, 0, NULL, 0}};
    struct al_apikey_spec spec = {0};
    bool json = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 's')
            spec.scopes = optarg;
        else if (c == 'm')
            spec.models = optarg;
        else if (c == 'e')
            spec.expires = optarg;
        else if (c == 'j')
            json = true;
        else
            return al_cli_usage_error("apikey create", "unknown option");
    }
    bool bad = optind + 1 != argc || spec.scopes == NULL;
    struct al_repo *r = NULL;
    int st = al_cli_start("apikey create", bad ? "expected NAME and --scopes" : NULL, true, &r);
    if (st)
        return st;
    spec.name = argv[optind];
    struct al_err err = AL_ERR_INIT;
    char token[AL_APIKEY_TOKEN_SIZE];
    struct al_apikey_info info;
    enum al_rc rc = al_apikey_create(al_repo_index(r), &spec, token, &info, &err);
    al_repo_free(r);
    if (rc)
        return al_cli_fail(&err);
    if (json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", info.name, "id", info.id, "token", token,
                              "scopes", info.scopes, "models", info.models, "expires", info.expires);
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("%s\n", s ? s : "{}");
        if (s)
            al_access_wipe(s, strlen(s));
        free(s);
        json_decref(j);
    } else {
        printf("created API key '%s' (%s)\n  scopes   %s\n  models   %s\n  expires  %s\n"
               "This secret is shown once and cannot be recovered; store it now:\n%s\n",
               info.name, info.id, info.scopes, info.models, info.expires[0] ? info.expires : "never", token);
    }
    fflush(stdout);
    al_access_wipe(token, sizeof token);
    return AL_EXIT_OK;
}

static int list(int argc, char **argv)
{
    bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
    bool bad = argc > 2 || (argc == 2 && !json);
    struct al_repo *r = NULL;
    int st = al_cli_start("apikey ls", bad ? "expected no argument but --json" : NULL, true, &r);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    struct al_apikey_info *k = NULL;
    size_t n = 0;
    bool lost = false;
    enum al_rc rc = al_apikey_list(al_repo_index(r), &k, &n, &err);
    if (!rc)
        rc = al_repo_keys_lost(r, &lost, &err);
    al_repo_free(r);
    if (rc)
        return al_cli_fail(&err);
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name", k[i].name, "id",
                                                 k[i].id, "state", k[i].state, "scopes", k[i].scopes, "models",
                                                 k[i].models, "created", k[i].created, "expires", k[i].expires,
                                                 "revoked", k[i].revoked));
        char *s = json_dumps(arr, JSON_INDENT(2));
        printf("%s\n", s ? s : "[]");
        free(s);
        json_decref(arr);
    } else if (n == 0 && lost) {
        printf("no API keys: the index was rebuilt and its keys are lost; the server requires a key,\n"
               "so it refuses every request until one is created: 'airlock apikey create NAME --scopes chat'\n");
    } else if (n == 0) {
        printf("no API keys: the server is open to every local caller; create one with\n"
               "'airlock apikey create NAME --scopes chat'\n");
    } else {
        printf("%-20s %-14s %-8s %-24s %-20s %s\n", "NAME", "ID", "STATE", "SCOPES", "MODELS", "EXPIRES");
        for (size_t i = 0; i < n; i++)
            printf("%-20s %-14s %-8s %-24s %-20s %s\n", k[i].name, k[i].id, k[i].state, k[i].scopes, k[i].models,
                   k[i].expires[0] ? k[i].expires : "never");
    }
    free(k);
    return AL_EXIT_OK;
}

static int revoke(int argc, char **argv)
{
    struct al_repo *r = NULL;
    int st = al_cli_start("apikey revoke", argc != 2 ? "expected NAME" : NULL, false, &r);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_apikey_revoke(al_repo_index(r), argv[1], &err);
    al_repo_free(r);
    if (rc)
        return al_cli_fail(&err);
    printf("revoked API key '%s'; a running server refuses it from its next request\n", argv[1]);
    return AL_EXIT_OK;
}

static int check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"scope", required_argument, NULL, 's'}, {"model", required_argument, NULL, 'm'}, {NULL, 0, NULL, 0}};
    const char *scope = NULL, *model = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 's')
            scope = optarg;
        else if (c == 'm')
            model = optarg;
        else
            return al_cli_usage_error("apikey check", "unknown option");
    }
    char token[256] = "";
    if (fgets(token, sizeof token, stdin) != NULL)
        token[strcspn(token, "\r\n")] = '\0';
    char home[AL_LIMIT_PATH], who[128];
    al_cli_home(home, sizeof home);
    struct al_err err = AL_ERR_INIT;
    struct al_access *a = NULL;
    enum al_rc rc = al_access_open(home, &a, &err);
    if (!rc)
        rc = al_access_check(a, token[0] ? token : NULL, scope, model, who, &err);
    al_access_free(a);
    al_access_wipe(token, sizeof token);
    if (rc)
        return al_cli_fail(&err);
    printf("allowed: %s\n", who);
    return AL_EXIT_OK;
}

int al_cmd_apikey(int argc, char **argv)
{
    if (argc < 2 || al_cli_wants_help(argc, argv)) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? AL_EXIT_USAGE : AL_EXIT_OK;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "create"))
        return create(argc - 1, argv + 1);
    if (!strcmp(sub, "ls"))
        return list(argc - 1, argv + 1);
    if (!strcmp(sub, "revoke"))
        return revoke(argc - 1, argv + 1);
    if (!strcmp(sub, "check"))
        return check(argc - 1, argv + 1);
    return al_cli_usage_error("apikey", "unknown subcommand '%s'", sub);
}
