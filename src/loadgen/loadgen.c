/*
 * loadgen.c: a closed-loop load generator on libcurl's multi interface. One
 * thread drives every connection: it keeps `concurrency` streaming POSTs to
 * /v1/completions in flight, splits each response into server-sent events
 * and timestamps the ones that carry text. The first such event is the time
 * to first token; the gaps between them are the inter-token latencies.
 *
 * A server may pack several tokens into one event; the token count then comes
 * from the final event's "usage" (OpenAI, stream_options.include_usage) or
 * "timings" (llama-server) when present, else from the events.
 */
#include "loadgen/loadgen_int.h"

#include <jansson.h>
#include <time.h>

#include "core/buf.h"
#include "core/limits.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct conn {
    CURL *h;
    struct al_lg_sample *s;
    struct curl_slist *hdr;
    char *body;
    struct al_buf line;       /* the event data not yet ended by a newline */
    double t0, last;
    int cap_itl, events;
    int usage_gen, usage_prompt;
};

static void text_event(struct conn *c)
{
    double t = now_ms() - c->t0;
    if (c->events == 0)
        c->s->ttft_ms = t;
    else if (c->s->n_itl < c->cap_itl)
        c->s->itl_ms[c->s->n_itl++] = t - c->last;
    c->last = t;
    c->events++;
}

/* Most events carry one token's text and nothing else the report needs; a
 * scan finds it without building a JSON tree. jansson took 10-20 us an
 * event, CPU that on a two-core machine came out of the measured server's
 * decoding (the same for every server: their token events have the same
 * shape). Events with usage, timings or an error get the full parse. Inside
 * a JSON string a quote is escaped, so these keys cannot match text. */
static bool quick_event(struct conn *c, const char *data)
{
    if (strstr(data, "\"usage\"") || strstr(data, "\"timings\"") || strstr(data, "\"error\""))
        return false;
    const char *t = strstr(data, "\"text\":\"");
    if (!t)
        return false;
    if (t[8] != '"')
        text_event(c);
    return true;
}

static void on_event(struct conn *c, const char *data)
{
    if (strcmp(data, "[DONE]") == 0 || quick_event(c, data))
        return;
    json_error_t je;
    json_t *j = json_loads(data, 0, &je);
    if (!j)
        return;
    json_t *err = json_object_get(j, "error");
    if (err && !c->s->error[0]) {
        const char *msg = json_string_value(json_object_get(err, "message"));
        snprintf(c->s->error, sizeof c->s->error, "server error: %.140s", msg ? msg : "unknown");
    }
    const char *text = json_string_value(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "text"));
    if (text && *text)
        text_event(c);
    json_t *usage = json_object_get(j, "usage"), *timings = json_object_get(j, "timings");
    if (json_is_integer(json_object_get(usage, "completion_tokens")))
        c->usage_gen = (int)json_integer_value(json_object_get(usage, "completion_tokens"));
    if (json_is_integer(json_object_get(usage, "prompt_tokens")))
        c->usage_prompt = (int)json_integer_value(json_object_get(usage, "prompt_tokens"));
    if (c->usage_gen < 0 && json_is_integer(json_object_get(timings, "predicted_n")))
        c->usage_gen = (int)json_integer_value(json_object_get(timings, "predicted_n"));
    if (c->usage_prompt < 0 && json_is_integer(json_object_get(timings, "prompt_n")))
        c->usage_prompt = (int)json_integer_value(json_object_get(timings, "prompt_n"));
    json_decref(j);
}

static size_t on_data(char *data, size_t size, size_t n, void *ud)
{
    struct conn *c = ud;
    size_t len = size * n;
    for (size_t i = 0; i < len; i++) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t run = nl ? (size_t)(nl - (data + i)) : len - i;
        al_buf_add(&c->line, data + i, run);
        i += run;
        if (!nl)
            break;
        const char *l = al_buf_str(&c->line);
        if (strncmp(l, "data:", 5) == 0)
            on_event(c, l[5] == ' ' ? l + 6 : l + 5);
        else if (l[0] == '{')
            on_event(c, l); /* a JSON error body instead of a stream */
        al_buf_reset(&c->line);
    }
    return al_buf_failed(&c->line) ? 0 : len;
}

static enum al_rc conn_start(CURLM *multi, const struct al_lg_opts *o, struct conn *c, struct al_lg_sample *s,
                             int index, const char *endpoint, struct al_err *err)
{
    memset(c, 0, sizeof *c);
    memset(s, 0, sizeof *s);
    s->index = index;
    s->n_prompt = -1;
    s->ttft_ms = -1;
    c->s = s;
    c->usage_gen = c->usage_prompt = -1;
    c->cap_itl = o->max_tokens + 1;
    s->itl_ms = calloc((size_t)c->cap_itl, sizeof *s->itl_ms);
    al_buf_init(&c->line, AL_LIMIT_HTTP_RESPONSE);
    json_t *req = json_pack("{s:s, s:i, s:f, s:b, s:b, s:{s:b}}", "prompt", o->prompts[index % o->n_prompts],
                            "max_tokens", o->max_tokens, "temperature", 0.0, "stream", 1, "ignore_eos", o->ignore_eos,
                            "stream_options", "include_usage", 1);
    if (req && o->model)
        json_object_set_new(req, "model", json_string(o->model));
    c->body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    c->h = curl_easy_init();
    if (!s->itl_ms || !c->body || !c->h)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory starting a request");
    c->hdr = curl_slist_append(NULL, "Content-Type: application/json");
    const char *key = getenv("AIRLOCK_API_KEY");
    char auth[512];
    if (key && *key && snprintf(auth, sizeof auth, "Authorization: Bearer %s", key) < (int)sizeof auth)
        c->hdr = curl_slist_append(c->hdr, auth);
    curl_easy_setopt(c->h, CURLOPT_URL, endpoint);
    curl_easy_setopt(c->h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT, o->timeout_s > 0 ? o->timeout_s : 600L);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdr);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->h, CURLOPT_PRIVATE, c);
    c->t0 = now_ms();
    if (curl_multi_add_handle(multi, c->h) != CURLM_OK)
        return al_err_set(err, AL_ERR_INTERNAL, "cannot add a request to the load generator");
    return AL_OK;
}

static void conn_finish(CURLM *multi, struct conn *c, CURLcode result)
{
    struct al_lg_sample *s = c->s;
    s->latency_ms = now_ms() - c->t0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &s->status);
    if (c->line.len && !c->events)
        on_event(c, al_buf_str(&c->line)); /* a last line without its newline */
    s->n_gen = c->usage_gen >= 0 ? c->usage_gen : c->events;
    s->n_prompt = c->usage_prompt;
    if (result != CURLE_OK && !s->error[0])
        snprintf(s->error, sizeof s->error, "%s", curl_easy_strerror(result));
    else if (s->status != 200 && !s->error[0])
        snprintf(s->error, sizeof s->error, "HTTP status %ld", s->status);
    else if (c->events == 0 && !s->error[0])
        snprintf(s->error, sizeof s->error, "no tokens streamed");
    curl_multi_remove_handle(multi, c->h);
    curl_easy_cleanup(c->h);
    curl_slist_free_all(c->hdr);
    free(c->body);
    al_buf_release(&c->line);
    c->h = NULL;
}

enum al_rc al_loadgen_run(const struct al_lg_opts *o, struct al_lg_sample *out, double *wall_ms, struct al_err *err)
{
    if (!o || !o->url || !out || o->concurrency < 1 || o->requests < 1 || o->n_prompts < 1 || o->max_tokens < 1)
        return al_err_set(err, AL_ERR_USAGE, "al_loadgen_run: bad arguments");
    al_loadgen_curl_init();
    char endpoint[AL_LIMIT_PATH];
    if (snprintf(endpoint, sizeof endpoint, "%s/v1/completions", o->url) >= (int)sizeof endpoint)
        return al_err_set(err, AL_ERR_LIMIT, "the server URL is over %u bytes", AL_LIMIT_PATH);
    CURLM *multi = curl_multi_init();
    struct conn *conns = calloc((size_t)o->concurrency, sizeof *conns);
    enum al_rc rc = AL_OK;
    if (!multi || !conns) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    double t0 = now_ms();
    int next = 0, active = 0;
    for (; next < o->requests && next < o->concurrency && !rc; next++, active++)
        rc = conn_start(multi, o, &conns[next], &out[next], next, endpoint, err);
    while (!rc && active > 0) {
        int running = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct conn *c = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            conn_finish(multi, c, msg->data.result);
            active--;
            if (next < o->requests && !rc) {
                rc = conn_start(multi, o, c, &out[next], next, endpoint, err);
                next++;
                active++;
            }
        }
        if (active > 0)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    *wall_ms = now_ms() - t0;
out:
    if (conns)
        for (int i = 0; i < o->concurrency; i++)
            if (conns[i].h)
                conn_finish(multi, &conns[i], CURLE_ABORTED_BY_CALLBACK);
    free(conns);
    if (multi)
        curl_multi_cleanup(multi);
    return rc;
}

void al_lg_samples_release(struct al_lg_sample *s, int n)
{
    for (int i = 0; s && i < n; i++) {
        free(s[i].itl_ms);
        s[i].itl_ms = NULL;
    }
}
