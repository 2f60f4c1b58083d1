/*
 * Unit tests of src/loadgen against a real HTTP server on loopback
 * (tu_httpd.h): the one-shot request's contract (methods, statuses, caps,
 * refused protocols, the API key) and the load generator's (requests kept
 * in flight, server-sent events split across reads, token counts from usage,
 * timings or the events, failures as samples).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "testutil.h"
#include "tu_httpd.h"
#include "core/buf.h"
#include "core/limits.h"
#include "loadgen/loadgen.h"

/* ---- what the server does, per test ---- */

enum mode {
    M_ECHO,      /* 200, "METHOD PATH BODY" */
    M_STATUS,    /* status g.status, body "status" */
    M_REDIRECT,  /* 302 to /elsewhere */
    M_BIG,       /* g.big bytes of 'x' */
    M_AUTH,      /* the Authorization header, or "none" */
    M_SSE,       /* g.events text events, then usage (when g.usage), then [DONE], in 7-byte chunks */
    M_SSE_TIMINGS, /* like M_SSE with llama-server's "timings" instead of usage */
    M_ERROR_JSON,  /* 500 {"error":{"message":"model exploded"}} */
    M_SSE_ERROR,   /* 200, one text event, then an error event */
    M_SSE_EMPTY,   /* 200, only [DONE] */
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    enum mode mode;
    int status;
    size_t big;
    int events;
    bool usage;
    int hold;          /* the first `hold` requests wait until `hold` have arrived */
    int arrivals, in_handler, max_in_handler;
    bool hold_timed_out;
    char *bodies[64];  /* request bodies, in arrival order */
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void reset(enum mode m)
{
    pthread_mutex_lock(&g.mu);
    for (int i = 0; i < 64; i++) {
        free(g.bodies[i]);
        g.bodies[i] = NULL;
    }
    g.mode = m;
    g.status = 200;
    g.big = 0;
    g.events = 0;
    g.usage = false;
    g.hold = 0;
    g.arrivals = g.in_handler = g.max_in_handler = 0;
    g.hold_timed_out = false;
    pthread_mutex_unlock(&g.mu);
}

static char *sse(int events, bool usage, bool timings)
{
    struct al_buf b;
    al_buf_init(&b, 1 << 20);
    /* An event with empty text (a role chunk) carries no token. */
    al_buf_addstr(&b, "data: {\"choices\":[{\"text\":\"\",\"index\":0}]}\n\n");
    for (int i = 0; i < events; i++)
        al_buf_addf(&b, "data: {\"choices\":[{\"text\":\"tok%d \\\"q\\\"\",\"index\":0}]}\n\n", i);
    if (usage)
        al_buf_addf(&b, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":%d}}\n\n", events);
    if (timings)
        al_buf_addf(&b, "data: {\"choices\":[{\"text\":\"\"}],\"timings\":{\"prompt_n\":9,\"predicted_n\":%d}}\n\n",
                    events);
    al_buf_addstr(&b, "data: [DONE]\n\n");
    return al_buf_take(&b);
}

static void handler(void *ud, const struct tu_req *rq, struct tu_reply *rp)
{
    pthread_mutex_lock(&g.mu);
    int me = g.arrivals++;
    if (me < 64)
        g.bodies[me] = strdup(rq->body);
    g.in_handler++;
    if (g.in_handler > g.max_in_handler)
        g.max_in_handler = g.in_handler;
    pthread_cond_broadcast(&g.cv);
    /* Readiness, not time: hold the first requests until all of them are here
     * (the deadline only turns a hang into a failure). */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 60;
    while (me < g.hold && g.arrivals < g.hold && !g.hold_timed_out)
        if (pthread_cond_timedwait(&g.cv, &g.mu, &dl) == ETIMEDOUT)
            g.hold_timed_out = true;
    enum mode m = g.mode;
    pthread_mutex_unlock(&g.mu);

    char tmp[4096];
    switch (m) {
    case M_ECHO:
        snprintf(tmp, sizeof tmp, "%s %s %s", rq->method, rq->url, rq->body);
        rp->body = tu_strdup(tmp);
        break;
    case M_STATUS:
        rp->status = g.status;
        rp->body = tu_strdup("status");
        break;
    case M_REDIRECT:
        rp->status = 302;
        rp->location = "/elsewhere";
        rp->body = tu_strdup("moved");
        break;
    case M_BIG:
        rp->fake_len = g.big;
        break;
    case M_AUTH:
        rp->body = tu_strdup(rq->auth ? rq->auth : "none");
        break;
    case M_SSE:
    case M_SSE_TIMINGS:
        rp->body = sse(g.events, g.usage, m == M_SSE_TIMINGS);
        rp->content_type = "text/event-stream";
        rp->chunk = 7;
        break;
    case M_ERROR_JSON:
        rp->status = 500;
        rp->body = tu_strdup("{\"error\":{\"message\":\"model exploded\",\"type\":\"server_error\"}}");
        rp->content_type = "application/json";
        break;
    case M_SSE_ERROR:
        rp->body = tu_strdup("data: {\"choices\":[{\"text\":\"a\"}]}\n\n"
                             "data: {\"error\":{\"message\":\"context full\"}}\n\n");
        rp->chunk = 5;
        break;
    case M_SSE_EMPTY:
        rp->body = tu_strdup("data: [DONE]\n\n");
        break;
    }
    pthread_mutex_lock(&g.mu);
    g.in_handler--;
    pthread_mutex_unlock(&g.mu);
}

static struct tu_httpd *srv;

static int arrivals(void)
{
    pthread_mutex_lock(&g.mu);
    int n = g.arrivals;
    pthread_mutex_unlock(&g.mu);
    return n;
}

static int setup(void **state)
{
    srv = tu_httpd_start(handler, NULL);
    return 0;
}

static int teardown(void **state)
{
    tu_httpd_stop(srv);
    reset(M_ECHO);
    return 0;
}

static char *url(const char *path)
{
    static char u[128];
    snprintf(u, sizeof u, "%s%s", srv->url, path);
    return u;
}

/* ---- al_http_request ---- */

static void test_request_get_post(void **state)
{
    reset(M_ECHO);
    struct al_err err = AL_ERR_INIT;
    char *resp = NULL;
    long status = 0;
    assert_int_equal(al_http_request(url("/props"), NULL, 10, &resp, &status, &err), AL_OK);
    assert_int_equal(status, 200);
    assert_string_equal(resp, "GET /props ");
    free(resp);
    resp = NULL;
    assert_int_equal(al_http_request(url("/v1/completions"), "{\"a\":1}", 10, &resp, &status, &err), AL_OK);
    assert_string_equal(resp, "POST /v1/completions {\"a\":1}");
    free(resp);
    /* an empty body comes back as "", not NULL */
    reset(M_BIG);
    resp = NULL;
    assert_int_equal(al_http_request(url("/"), NULL, 10, &resp, &status, &err), AL_OK);
    assert_non_null(resp);
    assert_string_equal(resp, "");
    free(resp);
}

static void test_request_status_is_not_error(void **state)
{
    reset(M_STATUS);
    g.status = 404;
    struct al_err err = AL_ERR_INIT;
    char *resp = NULL;
    long status = 0;
    assert_int_equal(al_http_request(url("/x"), NULL, 10, &resp, &status, &err), AL_OK);
    assert_int_equal(status, 404);
    assert_string_equal(resp, "status");
    assert_int_equal(err.rc, AL_OK);
    free(resp);
    /* a redirect is reported, not followed */
    reset(M_REDIRECT);
    resp = NULL;
    assert_int_equal(al_http_request(url("/x"), NULL, 10, &resp, &status, &err), AL_OK);
    assert_int_equal(status, 302);
    assert_string_equal(resp, "moved");
    free(resp);
    assert_int_equal(arrivals(), 1);
}

static void test_request_bad_arguments(void **state)
{
    struct al_err err = AL_ERR_INIT;
    char *resp = (char *)"kept";
    long status = -7;
    assert_int_equal(al_http_request(url("/"), NULL, 10, &resp, &status, &err), AL_ERR_USAGE);
    assert_string_equal(resp, "kept");
    assert_int_equal(status, -7);
    assert_non_null(strstr(err.msg, "bad arguments"));
    resp = NULL;
    al_err_clear(&err);
    assert_int_equal(al_http_request(NULL, NULL, 10, &resp, &status, &err), AL_ERR_USAGE);
    al_err_clear(&err);
    assert_int_equal(al_http_request(url("/"), NULL, 10, &resp, NULL, &err), AL_ERR_USAGE);
    al_err_clear(&err);
    assert_int_equal(al_http_request(url("/"), NULL, 10, NULL, &status, &err), AL_ERR_USAGE);
    assert_null(resp);
}

static void test_request_refused(void **state)
{
    /* a port nobody listens on any more */
    struct tu_httpd *gone = tu_httpd_start(handler, NULL);
    char u[128];
    snprintf(u, sizeof u, "%s/v1/models", gone->url);
    tu_httpd_stop(gone);
    struct al_err err = AL_ERR_INIT;
    char *resp = NULL;
    long status = -7;
    assert_int_equal(al_http_request(u, NULL, 10, &resp, &status, &err), AL_ERR_IO);
    assert_null(resp);
    assert_int_equal(status, -7);
    assert_non_null(strstr(err.msg, u));
    assert_non_null(strstr(err.msg, "failed: "));
    /* only http and https: no local files, whatever a config says */
    al_err_clear(&err);
    assert_int_equal(al_http_request("file:///etc/passwd", NULL, 10, &resp, &status, &err), AL_ERR_IO);
    assert_null(resp);
    assert_non_null(strstr(err.msg, "'file:///etc/passwd'"));
}

static void test_request_cap(void **state)
{
    struct al_err err = AL_ERR_INIT;
    char *resp = NULL;
    long status = 0;
    reset(M_BIG);
    g.big = AL_LIMIT_HTTP_RESPONSE;
    assert_int_equal(al_http_request(url("/"), NULL, 60, &resp, &status, &err), AL_OK);
    assert_int_equal(strlen(resp), AL_LIMIT_HTTP_RESPONSE);
    free(resp);
    resp = NULL;
    g.big = AL_LIMIT_HTTP_RESPONSE + 1;
    assert_int_equal(al_http_request(url("/"), NULL, 60, &resp, &status, &err), AL_ERR_LIMIT);
    assert_null(resp);
    assert_non_null(strstr(err.msg, "AL_LIMIT_HTTP_RESPONSE"));
}

static void test_request_api_key(void **state)
{
    reset(M_AUTH);
    struct al_err err = AL_ERR_INIT;
    char *resp = NULL;
    long status = 0;
    unsetenv("AIRLOCK_API_KEY");
    assert_int_equal(al_http_request(url("/"), NULL, 10, &resp, &status, &err), AL_OK);
    assert_string_equal(resp, "none");
    free(resp);
    resp = NULL;
    setenv("AIRLOCK_API_KEY", "al-secret", 1);
    assert_int_equal(al_http_request(url("/"), "{}", 10, &resp, &status, &err), AL_OK);
    assert_string_equal(resp, "Bearer al-secret");
    free(resp);
    unsetenv("AIRLOCK_API_KEY");
}

/* ---- al_loadgen_run ---- */

static const char *const prompts[] = {"Once upon a time", "The little dog"};

static struct al_lg_opts lg_opts(int concurrency, int requests, int max_tokens)
{
    struct al_lg_opts o = {.url = srv->url, .model = NULL, .concurrency = concurrency, .requests = requests,
                           .max_tokens = max_tokens, .ignore_eos = true, .timeout_s = 60, .prompts = prompts,
                           .n_prompts = 2};
    return o;
}

static void test_loadgen_bad_arguments(void **state)
{
    reset(M_ECHO);
    struct al_lg_sample s[2];
    memset(s, 0x5a, sizeof s);
    double wall = -7;
    struct al_err err = AL_ERR_INIT;
    struct al_lg_opts o = lg_opts(1, 2, 4);
    assert_int_equal(al_loadgen_run(NULL, s, &wall, &err), AL_ERR_USAGE);
    assert_non_null(strstr(err.msg, "bad arguments"));
    struct al_lg_opts bad[6];
    for (int i = 0; i < 6; i++)
        bad[i] = o;
    bad[0].url = NULL;
    bad[1].concurrency = 0;
    bad[2].requests = 0;
    bad[3].n_prompts = 0;
    bad[4].max_tokens = 0;
    bad[5].concurrency = -3;
    for (int i = 0; i < 6; i++) {
        al_err_clear(&err);
        assert_int_equal(al_loadgen_run(&bad[i], s, &wall, &err), AL_ERR_USAGE);
    }
    al_err_clear(&err);
    assert_int_equal(al_loadgen_run(&o, NULL, &wall, &err), AL_ERR_USAGE);
    /* a URL over the path cap */
    char *longurl = malloc(AL_LIMIT_PATH + 16);
    memset(longurl, 'a', AL_LIMIT_PATH + 15);
    memcpy(longurl, "http://", 7);
    longurl[AL_LIMIT_PATH + 15] = '\0';
    o.url = longurl;
    al_err_clear(&err);
    assert_int_equal(al_loadgen_run(&o, s, &wall, &err), AL_ERR_LIMIT);
    free(longurl);
    /* nothing was sent, nothing written */
    assert_true(wall == -7);
    unsigned char *raw = (unsigned char *)s;
    for (size_t i = 0; i < sizeof s; i++)
        assert_int_equal(raw[i], 0x5a);
    assert_int_equal(arrivals(), 0);
}

static void test_loadgen_stream(void **state)
{
    reset(M_SSE);
    g.events = 6;
    g.usage = true;
    g.hold = 3;
    struct al_lg_opts o = lg_opts(3, 7, 6);
    o.model = "stories:1.0";
    struct al_lg_sample s[7];
    double wall = -1;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_loadgen_run(&o, s, &wall, &err), AL_OK);
    /* read under the lock, asserted outside it (a failed assertion jumps) */
    pthread_mutex_lock(&g.mu);
    bool timed_out = g.hold_timed_out;
    int max_in = g.max_in_handler;
    pthread_mutex_unlock(&g.mu);
    assert_false(timed_out);
    assert_int_equal(arrivals(), 7);
    assert_int_equal(max_in, 3); /* three in flight, never more */
    for (int i = 0; i < 7; i++) {
        assert_int_equal(s[i].index, i);
        assert_string_equal(s[i].error, "");
        assert_int_equal(s[i].status, 200);
        assert_int_equal(s[i].n_gen, 6);
        assert_int_equal(s[i].n_prompt, 5);
        assert_int_equal(s[i].n_itl, 5); /* gaps between the six text events */
        assert_true(s[i].ttft_ms >= 0);
        assert_true(s[i].latency_ms >= s[i].ttft_ms);
        assert_true(wall >= s[i].latency_ms);
        for (int k = 0; k < s[i].n_itl; k++)
            assert_true(s[i].itl_ms[k] >= 0);
    }
    /* what was asked: every request streams, prompts in turn */
    int seen[2] = {0, 0};
    for (int i = 0; i < 7; i++) {
        json_t *j = json_loads(g.bodies[i], 0, NULL);
        assert_non_null(j);
        assert_true(json_is_true(json_object_get(j, "stream")));
        assert_true(json_is_true(json_object_get(j, "ignore_eos")));
        assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 6);
        assert_true(json_number_value(json_object_get(j, "temperature")) == 0);
        assert_string_equal(json_string_value(json_object_get(j, "model")), "stories:1.0");
        assert_true(json_is_true(json_object_get(json_object_get(j, "stream_options"), "include_usage")));
        const char *p = json_string_value(json_object_get(j, "prompt"));
        seen[strcmp(p, prompts[0]) == 0 ? 0 : 1]++;
        json_decref(j);
    }
    assert_int_equal(seen[0], 4);
    assert_int_equal(seen[1], 3);
    al_lg_samples_release(s, 7);
    for (int i = 0; i < 7; i++)
        assert_null(s[i].itl_ms);
    al_lg_samples_release(s, 7); /* twice: harmless */
    al_lg_samples_release(NULL, 7);
}

static void test_loadgen_counts_without_usage(void **state)
{
    /* no usage: tokens are the events with text; no prompt count */
    reset(M_SSE);
    g.events = 4;
    struct al_lg_opts o = lg_opts(1, 1, 4);
    struct al_lg_sample s[1];
    double wall = 0;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_loadgen_run(&o, s, &wall, &err), AL_OK);
    assert_string_equal(s[0].error, "");
    assert_int_equal(s[0].n_gen, 4);
    assert_int_equal(s[0].n_prompt, -1);
    json_t *j = json_loads(g.bodies[0], 0, NULL);
    assert_null(json_object_get(j, "model")); /* none asked for, none sent */
    json_decref(j);
    al_lg_samples_release(s, 1);

    /* llama-server's timings */
    reset(M_SSE_TIMINGS);
    g.events = 3;
    assert_int_equal(al_loadgen_run(&o, s, &wall, &err), AL_OK);
    assert_string_equal(s[0].error, "");
    assert_int_equal(s[0].n_gen, 3);
    assert_int_equal(s[0].n_prompt, 9);
    al_lg_samples_release(s, 1);

    /* a server that sends more events than asked for: counted, gaps capped */
    reset(M_SSE);
    g.events = 40;
    assert_int_equal(al_loadgen_run(&o, s, &wall, &err), AL_OK);
    assert_int_equal(s[0].n_gen, 40);
    assert_true(s[0].n_itl <= o.max_tokens + 1);
    al_lg_samples_release(s, 1);
}

static void test_loadgen_failures_are_samples(void **state)
{
    struct al_lg_opts o = lg_opts(2, 2, 4);
    struct al_lg_sample s[2];
    double wall = 0;
    struct al_err err = AL_ERR_INIT;

    reset(M_ERROR_JSON);
    assert_int_equal(al_loadgen_run(&o, s, &wall, &err), AL_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s[i].status, 500);
        assert_string_equal(s[i].error, "server error: model exploded");
        assert_int_equal(s[i].n_gen, 0);
    }
    al_lg_samples_release(s, 2);

    reset(M_SSE_ERROR);
    assert_int_equal(al_loadgen_run(&o, s, &wall, &err), AL_OK);
    assert_int_equal(s[0].status, 200);
    assert_string_equal(s[0].error, "server error: context full");
    al_lg_samples_release(s, 2);

    reset(M_SSE_EMPTY);
    assert_int_equal(al_loadgen_run(&o, s, &wall, &err), AL_OK);
    assert_string_equal(s[1].error, "no tokens streamed");
    al_lg_samples_release(s, 2);

    reset(M_STATUS);
    g.status = 503;
    assert_int_equal(al_loadgen_run(&o, s, &wall, &err), AL_OK);
    assert_string_equal(s[0].error, "HTTP status 503");
    al_lg_samples_release(s, 2);

    /* nobody listening: each request fails as a sample, the run does not */
    struct tu_httpd *gone = tu_httpd_start(handler, NULL);
    char u[64];
    snprintf(u, sizeof u, "%s", gone->url);
    tu_httpd_stop(gone);
    o.url = u;
    assert_int_equal(al_loadgen_run(&o, s, &wall, &err), AL_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s[i].status, 0);
        assert_true(s[i].error[0] != '\0');
        assert_true(s[i].ttft_ms < 0);
    }
    al_lg_samples_release(s, 2);
    assert_int_equal(err.rc, AL_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_get_post),
        cmocka_unit_test(test_request_status_is_not_error),
        cmocka_unit_test(test_request_bad_arguments),
        cmocka_unit_test(test_request_refused),
        cmocka_unit_test(test_request_cap),
        cmocka_unit_test(test_request_api_key),
        cmocka_unit_test(test_loadgen_bad_arguments),
        cmocka_unit_test(test_loadgen_stream),
        cmocka_unit_test(test_loadgen_counts_without_usage),
        cmocka_unit_test(test_loadgen_failures_are_samples),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
