/*
 * loadgen.h: HTTP clients for measuring and validating a running
 * OpenAI-compatible server (airlock serve, llama-server): a one-shot request,
 * and a load generator on libcurl's multi interface that keeps N streaming
 * completions in flight and timestamps every server-sent event.
 *
 * The only module that includes curl.h. AIRLOCK_API_KEY, when set, is sent as
 * a bearer token. Responses are capped at AL_LIMIT_HTTP_RESPONSE.
 */
#ifndef AL_LOADGEN_LOADGEN_H
#define AL_LOADGEN_LOADGEN_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

/* POSTs body (JSON; NULL: a GET) to url and waits for the whole response:
 * *resp (NUL-terminated, must be NULL on entry, caller frees) and the HTTP
 * status in *status. Errors: AL_ERR_IO (connection or transfer failed, with
 * curl's reason), AL_ERR_LIMIT (response over the cap), AL_ERR_NOMEM. An HTTP
 * error status is not an error here: look at *status. */
enum al_rc al_http_request(const char *url, const char *body, long timeout_s, char **resp, long *status,
                           struct al_err *err);

/* Called with each piece of a response body as it arrives; status is the
 * response's HTTP status. Return false to stop the transfer (the call then
 * returns AL_OK). */
typedef bool al_http_data_fn(void *ud, long status, const char *data, size_t len);

/* POSTs body (JSON) to url and hands the response body to fn as it arrives
 * (a streamed answer, NDJSON or server-sent events), without a cap of its
 * own: fn decides what it keeps. *status is the HTTP status. Errors as
 * al_http_request, but AL_ERR_LIMIT never. */
enum al_rc al_http_stream(const char *url, const char *body, long timeout_s, al_http_data_fn *fn, void *ud,
                          long *status, struct al_err *err);

/* One streamed completion as the load generator saw it. Times in ms from
 * the request's start. */
struct al_lg_sample {
    int index;            /* order of submission */
    int n_prompt;         /* prompt tokens the server reports; -1 when it does not say */
    int n_gen;            /* tokens: the server's count, else the events with text */
    double ttft_ms;       /* first event with text */
    double latency_ms;    /* the whole request */
    double *itl_ms;       /* gaps between events with text, n_itl of them (malloc'd) */
    int n_itl;
    long status;          /* HTTP status; 0: no response */
    char error[160];      /* "" when it went well */
};

struct al_lg_opts {
    const char *url;      /* base URL, "http://127.0.0.1:8080" */
    const char *model;    /* "model" field of the request, or NULL */
    int concurrency;      /* requests in flight */
    int requests;         /* requests in all */
    int max_tokens;
    bool ignore_eos;      /* ask for exactly max_tokens (llama-server and airlock honour it) */
    long timeout_s;       /* per request */
    /* prompts[i % n_prompts] is request i's prompt */
    const char *const *prompts;
    int n_prompts;
};

/* Runs the load: keeps opts->concurrency streaming POSTs to url/v1/completions
 * in flight until opts->requests have finished. out (opts->requests entries,
 * the caller's) gets one sample per request; *wall_ms the whole run. Failed
 * requests are samples with error set, not an error of the call; the call
 * fails only when it cannot run at all (AL_ERR_NOMEM, AL_ERR_USAGE). */
enum al_rc al_loadgen_run(const struct al_lg_opts *opts, struct al_lg_sample *out, double *wall_ms,
                          struct al_err *err);

/* Frees what samples hold (not the array). */
void al_lg_samples_release(struct al_lg_sample *s, int n);

#endif
