/*
 * fuzz_params.c: the JSON body of /v1/chat/completions and /v1/completions
 * (and the parameters the retrieval chat route shares with them), parsed as
 * the server parses a body (http.c: json_loadb, duplicates refused), then
 * read into sampling parameters, stop strings, grammar or response_format
 * (server/params.c) and log-probability options, for chat and for legacy
 * completions.
 */
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "fuzzutil.h"
#include "server/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    struct al_server_opts so;
    al_server_opts_default(&so);
    struct al_engine_gen_params p = al_engine_gen_params_default();
    const char *stops[AL_LIMIT_STOP_STRINGS];
    char *grammar = NULL;
    const char *param = NULL;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_server_params_from_json(body, &so.limits, &p, stops, &grammar, &param, &err);
    if (rc == AL_OK) {
        if (p.n_stop > AL_LIMIT_STOP_STRINGS || (p.n_stop && p.stop != stops) || p.grammar != grammar)
            abort();
        for (int i = 0; i < p.n_stop; i++)
            (void)strlen(p.stop[i]);
        if (p.max_tokens > so.limits.max_tokens)
            abort();
    } else if (err.msg[0] == '\0' || param == NULL) {
        abort(); /* a refusal names the field: the client is told which */
    }
    free(grammar);
    for (int chat = 0; chat <= 1; chat++) {
        int top_n = 0;
        param = NULL;
        al_err_clear(&err);
        rc = al_server_logprobs_from_json(body, chat, &top_n, &param, &err);
        if (rc == AL_OK ? (top_n < -1 || top_n > AL_LIMIT_TOP_PROBS) : (param == NULL || err.msg[0] == '\0'))
            abort();
    }
    json_decref(body);
    return 0;
}
