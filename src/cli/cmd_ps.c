/*
 * cmd_ps.c: `airlock ps`: the models a running `airlock serve` has loaded,
 * from its /api/ps (Ollama's route, with airlock's device and idle fields):
 * memory, device, context, idle time and when it will be unloaded.
 */
#include <getopt.h>
#include <stdio.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/cli_util.h"
#include "core/limits.h"
#include "loadgen/loadgen.h"
#include "server/server.h"

int al_cmd_ps(int argc, char **argv);

static int usage(void)
{
    printf("usage: airlock ps [--server URL] [--json]\n\n"
           "Lists the models loaded by a running 'airlock serve': their memory (weights and KV\n"
           "cache), device, context, how long they have been idle and when they will be unloaded.\n"
           "  --server URL  the server (default $AIRLOCK_SERVER, else http://127.0.0.1:%d);\n"
           "                a server with keys needs $AIRLOCK_API_KEY (any key that may chat or embed)\n"
           "  --json        the server's answer as it is ({\"models\": [...]})\n",
           AL_SERVER_DEFAULT_PORT);
    return AL_EXIT_OK;
}

static void human_seconds(double s, char *out, size_t size)
{
    if (s < 120)
        snprintf(out, size, "%.0f s", s);
    else if (s < 7200)
        snprintf(out, size, "%.0f min", s / 60);
    else
        snprintf(out, size, "%.1f h", s / 3600);
}

int al_cmd_ps(int argc, char **argv)
{
    static const struct option opts[] = {{"server", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    if (al_cli_wants_help(argc, argv))
        return usage();
    const char *env = getenv("AIRLOCK_SERVER");
    char def[64];
    snprintf(def, sizeof def, "http://127.0.0.1:%d", AL_SERVER_DEFAULT_PORT);
    const char *server = env && *env ? env : def;
    bool json = false;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 's')
            server = optarg;
        else if (ch == 'j')
            json = true;
        else
            return al_cli_usage_error("ps", "unknown option");
    }
    if (optind != argc)
        return al_cli_usage_error("ps", "takes no arguments");
    char url[AL_LIMIT_PATH];
    size_t n = strlen(server);
    while (n && server[n - 1] == '/')
        n--;
    snprintf(url, sizeof url, "%.*s/api/ps", (int)n, server);
    char *resp = NULL;
    long status = 0;
    struct al_err err = AL_ERR_INIT;
    if (al_http_request(url, NULL, 30, &resp, &status, &err) != AL_OK) {
        fprintf(stderr, "airlock: error: %s\nIs 'airlock serve' running there? Name it with --server URL or "
                        "$AIRLOCK_SERVER.\n", err.msg);
        return al_cli_exit_code(err.rc);
    }
    json_error_t je;
    json_t *j = json_loads(resp, 0, &je);
    int st = AL_EXIT_OK;
    if (status != 200) {
        const char *e = json_string_value(json_object_get(j, "error"));
        fprintf(stderr, "airlock: error: %s answered %ld: %s\n", url, status, e ? e : resp);
        if (status == 401)
            fprintf(stderr, "This server needs a key: set AIRLOCK_API_KEY (airlock apikey create NAME --scopes chat).\n");
        st = status == 401 ? al_cli_exit_code(AL_ERR_AUTH) : status == 403 ? AL_EXIT_DENIED : AL_EXIT_FAILURE;
    } else if (!json_is_array(json_object_get(j, "models"))) {
        fprintf(stderr, "airlock: error: %s is not an airlock (or Ollama) server: its answer has no model list\n", url);
        st = AL_EXIT_INVALID;
    } else if (json) {
        printf("%s\n", resp);
    } else {
        json_t *models = json_object_get(j, "models"), *m;
        size_t i;
        printf("%-24s %-12s %10s %-8s %8s %8s  %s\n", "NAME", "ID", "SIZE", "DEVICE", "CONTEXT", "IDLE", "UNTIL");
        json_array_foreach(models, i, m)
        {
            char size[32], idle[32], until[40];
            al_cli_human_size((int64_t)json_integer_value(json_object_get(m, "size")), size, sizeof size);
            json_t *jidle = json_object_get(m, "idle_s");
            int busy = (int)json_integer_value(json_object_get(m, "requests"));
            if (busy)
                snprintf(idle, sizeof idle, "busy (%d)", busy);
            else if (json_is_number(jidle))
                human_seconds(json_number_value(jidle), idle, sizeof idle);
            else
                snprintf(idle, sizeof idle, "-");
            const char *exp = json_string_value(json_object_get(m, "expires_at"));
            if (json_is_true(json_object_get(m, "pinned")) || (exp && strncmp(exp, "2318", 4) == 0))
                snprintf(until, sizeof until, "kept loaded");
            else
                snprintf(until, sizeof until, "%s", exp ? exp : "-");
            const char *dev = json_string_value(json_object_get(m, "device"));
            const char *name = json_string_value(json_object_get(m, "name"));
            const char *digest = json_string_value(json_object_get(m, "digest"));
            printf("%-24s %-12.12s %10s %-8s %8lld %8s  %s\n", name ? name : "?", digest ? digest : "",
                   size, dev ? dev : "-", (long long)json_integer_value(json_object_get(m, "context_length")), idle,
                   until);
        }
        if (json_array_size(models) == 0)
            printf("(no model is loaded)\n");
    }
    json_decref(j);
    free(resp);
    return st;
}
