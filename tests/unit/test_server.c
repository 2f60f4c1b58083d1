/*
 * test_server.c: the server's pure parts: JSON schema to GBNF (every grammar
 * it writes must parse in llama.cpp and constrain real output: checked on the
 * fixture model), the sampling parameters of a request body, the config file,
 * the audit writer queue, request framing, JSON body errors, the receive
 * deadlines of connections, the arrivals as the schedulers' admission hook,
 * llama-server's logit_bias and response_fields (llparams.c).
 */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "audit/audit.h"
#include "engine/engine.h"
#include "server/arrivals.h"
#include "server/audit_queue.h"
#include "server/config.h"
#include "server/http_int.h"
#include "tu_engine.h"

#define FIXTURE_DIGEST "sha256:270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"

static char *convert(const char *schema_text, enum al_rc want)
{
    json_t *schema = schema_text ? json_loads(schema_text, 0, NULL) : NULL;
    char *g = NULL;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_server_json_schema_to_gbnf(schema, "response_format", &g, &err);
    json_decref(schema);
    if (rc != want)
        fail_msg("schema %s: rc %d (%s), wanted %d", schema_text, rc, err.msg, want);
    return g;
}

static void test_gbnf_shapes(void **state)
{
    char *g = convert(NULL, AL_OK);
    assert_non_null(strstr(g, "root ::= object\n"));
    free(g);
    g = convert("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"},\"b\":{\"enum\":[1,\"x\",null]}},"
                "\"required\":[\"b\"]}", AL_OK);
    assert_non_null(strstr(g, "\"\\\"b\\\"\""));           /* the key literal "\"b\"" */
    assert_non_null(strstr(g, "\"1\" ws | \"\\\"x\\\"\" ws | \"null\" ws"));
    free(g);
    convert("{\"$ref\":\"#/defs/x\"}", AL_ERR_INVALID);
    convert("{\"type\":\"wat\"}", AL_ERR_INVALID);
    /* Nesting over AL_LIMIT_JSON_DEPTH */
    char deep[8192] = "";
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"type\":\"array\",\"items\":");
    n += (size_t)snprintf(deep + n, sizeof deep - n, "true");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n, "}");
    convert(deep, AL_ERR_LIMIT);
}

static void test_gbnf_on_model(void **state)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", tu_fixture("stories260K.gguf"));
    struct al_engine_model *m = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_engine_model_load(path, FIXTURE_DIGEST, NULL, &m, &err), AL_OK);
    const char *schemas[] = {
        NULL,
        "{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"},\"n\":{\"type\":\"integer\"},"
        "\"xs\":{\"type\":\"array\",\"items\":{\"type\":\"number\"},\"minItems\":1}},\"required\":[\"ok\",\"n\",\"xs\"]}",
        "{\"type\":\"object\",\"properties\":{\"a\":{\"const\":\"A\"},\"b\":{\"type\":[\"string\",\"null\"]}}}",
        "{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"k\":{\"enum\":[\"v\"]}},\"required\":[\"k\"]},{\"type\":\"null\"}]}",
    };
    for (size_t i = 0; i < sizeof schemas / sizeof schemas[0]; i++) {
        char *g = convert(schemas[i], AL_OK);
        struct al_engine_gen_params p = al_engine_gen_params_default();
        p.grammar = g;
        p.max_tokens = 150;
        p.seed = 7;
        char *text = NULL;
        struct al_engine_gen_result res;
        enum al_rc rc = al_engine_generate(m, "Once upon a time", &p, &text, &res, &err);
        if (rc != AL_OK)
            fail_msg("schema %zu: %s\n%s", i, err.msg, g);
        if (res.finish == AL_ENGINE_FINISH_STOP) {
            json_error_t je;
            json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
            if (!v)
                fail_msg("schema %zu gave '%s', not JSON: %s", i, text, je.text);
            json_decref(v);
        }
        free(text);
        free(g);
    }
    al_engine_model_free(m);
}

static void test_params(void **state)
{
    struct al_server_opts o;
    al_server_opts_default(&o);
    const char *stops[AL_LIMIT_STOP_STRINGS];
    const char *param = NULL;
    struct {
        const char *body;
        enum al_rc rc;
        const char *param;
    } cases[] = {
        {"{\"temperature\":0.5,\"top_p\":0.9,\"top_k\":5,\"min_p\":0.1,\"seed\":42,\"stop\":[\"a\",\"b\"],\"max_tokens\":7}",
         AL_OK, NULL},
        {"{\"temperature\":3}", AL_ERR_INVALID, "temperature"},
        {"{\"max_tokens\":100000}", AL_ERR_LIMIT, "max_tokens"},
        {"{\"max_completion_tokens\":0}", AL_ERR_INVALID, "max_completion_tokens"},
        /* n is read by the routes (several choices, routes_gen.c), not here */
        {"{\"n\":3}", AL_OK, NULL},
        {"{\"response_format\":{\"type\":\"json_object\",\"schema\":123}}", AL_ERR_INVALID, "response_format"},
        {"{\"response_format\":{\"type\":\"json_object\",\"schema\":{\"type\":\"hiccup\"}}}", AL_ERR_INVALID,
         "response_format"},
        {"{\"stop\":5}", AL_ERR_INVALID, "stop"},
        {"{\"seed\":\"x\"}", AL_ERR_INVALID, "seed"},
        {"{\"response_format\":{\"type\":\"yaml\"}}", AL_ERR_INVALID, "response_format"},
        {"{\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{}}}", AL_ERR_INVALID, "response_format"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *body = json_loads(cases[i].body, 0, NULL);
        struct al_engine_gen_params p = al_engine_gen_params_default();
        char *grammar = NULL;
        struct al_err err = AL_ERR_INIT;
        param = NULL;
        enum al_rc rc = al_server_params_from_json(body, &o.limits, &p, stops, &grammar, &param, &err);
        if (rc != cases[i].rc || (cases[i].param && (!param || strcmp(param, cases[i].param) != 0)))
            fail_msg("%s: rc %d param %s (%s)", cases[i].body, rc, param ? param : "-", err.msg);
        if (i == 0) {
            assert_int_equal(p.top_k, 5);
            assert_int_equal(p.seed, 42);
            assert_int_equal(p.n_stop, 2);
            assert_int_equal(p.max_tokens, 7);
        }
        free(grammar);
        json_decref(body);
    }
}

static void test_config(void **state)
{
    char *dir = tu_mkdtemp();
    char path[4096];
    snprintf(path, sizeof path, "%s/c.json", dir);
    const char *good = "{\"listen\":{\"port\":9000,\"socket\":\"/tmp/x.sock\",\"socket_mode\":\"0600\"},"
                       "\"models\":[\"a\",\"b:1\"],\"defaults\":{\"threads\":3,\"mmap\":false},"
                       "\"model_settings\":{\"a\":{\"ctx\":512}},\"memory_budget_mb\":100,\"keep_alive_s\":-1,"
                       "\"limits\":{\"max_tokens\":99},\"registry\":true,\"registry_sign_key\":\"site.key\"}";
    tu_write_file(path, good, strlen(good));
    struct al_server_config c;
    al_server_config_default(&c);
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_server_config_load(&c, path, &err), AL_OK);
    assert_int_equal(c.server.port, 9000);
    assert_string_equal(c.server.socket_path, "/tmp/x.sock");
    assert_int_equal(c.server.socket_mode, 0600);
    assert_int_equal(c.models.n_pinned, 2);
    assert_string_equal(c.models.pinned[1], "b:1");
    assert_int_equal(c.models.defaults.threads, 3);
    assert_int_equal(c.models.defaults.mmap, 0);
    assert_int_equal(c.models.overrides[0].s.ctx, 512);
    assert_true(c.models.budget_bytes == 100ull << 20);
    assert_int_equal(c.server.limits.max_tokens, 99);
    assert_true(c.server.registry);
    assert_string_equal(c.registry_sign, "site.key");
    const char *typo = "{\"limits\":{\"max_token\":5}}";
    tu_write_file(path, typo, strlen(typo));
    al_err_clear(&err);
    assert_int_equal(al_server_config_load(&c, path, &err), AL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "limits.max_token"));
    tu_rmrf(dir);
    free(dir);
}

static void *post_some(void *arg)
{
    struct al_server_audit_queue *q = arg;
    for (int i = 0; i < 50; i++) {
        char id[32];
        snprintf(id, sizeof id, "req-%d", i);
        struct al_audit_record rec = {.request_id = id, .caller = "t", .route = "/v1/completions", .status = 200,
                                      .tokens_in = i, .tokens_out = 1, .latency_ms = 1};
        al_server_audit_queue_post(q, &rec); /* copies: id is reused at once */
    }
    return NULL;
}

static void no_problem(void *ud, const char *file, size_t line, const char *msg)
{
    (void)ud;
    fail_msg("%s:%zu: %s", file, line, msg);
}

/* Records posted from several threads, more than the queue holds, are all
 * written by the time stop returns, and the chain verifies. */
static void test_audit_queue(void **state)
{
    (void)state;
    char *home = tu_mkdtemp();
    struct al_audit *a = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_audit_open(home, NULL, &a, &err), AL_OK);
    struct al_server_audit_queue *q = NULL;
    assert_int_equal(al_server_audit_queue_start(a, 8, &q, &err), AL_OK);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, post_some, q);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    al_server_audit_queue_stop(q);
    size_t n = 0;
    assert_int_equal(al_audit_verify(home, no_problem, NULL, &n, &err), AL_OK);
    assert_int_equal(n, 200);
    al_audit_free(a);
    tu_rmrf(home);
    free(home);
}

/* Framing (RFC 9112 6.1-6.3): what could be read two ways is refused. */
static void test_framing(void **state)
{
    (void)state;
    struct {
        const char *version;
        struct al_http_field f[3];
        size_t n;
        enum al_rc rc;
        const char *why;
    } cases[] = {
        {"HTTP/1.1", {{"Content-Length", "12"}}, 1, AL_OK, NULL},
        {"HTTP/1.1", {{"Transfer-Encoding", "chunked"}}, 1, AL_OK, NULL},
        {"HTTP/1.1", {{"transfer-encoding", " Chunked "}}, 1, AL_OK, NULL},
        {"HTTP/1.1", {{"Content-Length", "5"}, {"content-length", "5"}}, 2, AL_OK, NULL},
        {"HTTP/1.1", {{"Content-Length", "5, 5"}}, 1, AL_OK, NULL},
        {"HTTP/1.1", {{"Host", "x"}}, 1, AL_OK, NULL},
        {"HTTP/1.1", {{"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}}, 2, AL_ERR_INVALID,
         "both Content-Length and Transfer-Encoding"},
        {"HTTP/1.1", {{"Transfer-Encoding", "chunked"}, {"Content-Length", "0"}}, 2, AL_ERR_INVALID,
         "both Content-Length and Transfer-Encoding"},
        {"HTTP/1.1", {{"Content-Length", "5"}, {"Content-Length", "7"}}, 2, AL_ERR_INVALID,
         "two different Content-Length values (5 and 7)"},
        {"HTTP/1.1", {{"Content-Length", "5,7"}}, 1, AL_ERR_INVALID, "two different Content-Length values"},
        {"HTTP/1.1", {{"Content-Length", "+5"}}, 1, AL_ERR_INVALID, "'Content-Length: +5' is not a length"},
        {"HTTP/1.1", {{"Content-Length", ""}}, 1, AL_ERR_INVALID, "is not a length"},
        {"HTTP/1.1", {{"Content-Length", "99999999999999999999"}}, 1, AL_ERR_INVALID, "is not a length"},
        {"HTTP/1.1", {{"Transfer-Encoding", "gzip"}}, 1, AL_ERR_INVALID, "'Transfer-Encoding: gzip' is not supported"},
        {"HTTP/1.1", {{"Transfer-Encoding", "gzip, chunked"}}, 1, AL_ERR_INVALID, "is not supported"},
        {"HTTP/1.1", {{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}, 2, AL_ERR_INVALID,
         "two Transfer-Encoding headers"},
        {"HTTP/1.1", {{"Transfer-Encoding", "\x01\xff"}}, 1, AL_ERR_INVALID, "'Transfer-Encoding: ?" "?' is not"},
        {"HTTP/1.0", {{"Transfer-Encoding", "chunked"}}, 1, AL_ERR_INVALID, "HTTP/1.0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct al_err err = AL_ERR_INIT;
        enum al_rc rc = al_http_framing_check(cases[i].version, cases[i].f, cases[i].n, &err);
        if (rc != cases[i].rc || (cases[i].why && !strstr(err.msg, cases[i].why)))
            fail_msg("case %zu (%s: %s): rc %d, '%s'", i, cases[i].f[0].name, cases[i].f[0].value, rc, err.msg);
    }
}

/* The one table from al_rc to HTTP: a row for every code; a bad API key is
 * 401 while a blob that fails its digest or is damaged stays a 500. */
static void test_rc_http(void **state)
{
    assert_int_equal(al_http_rc_status(AL_OK), 200);
    for (int i = 1; i < AL_RC_COUNT; i++) {
        int st = al_http_rc_status((enum al_rc)i);
        assert_true(st >= 400 && st <= 599);
    }
    assert_int_equal(al_http_rc_status(AL_ERR_AUTH), 401);
    assert_int_equal(al_http_rc_status(AL_ERR_DENIED), 403);
    assert_int_equal(al_http_rc_status(AL_ERR_VERIFY), 500);
    assert_int_equal(al_http_rc_status(AL_ERR_CORRUPT), 500);
    assert_int_equal(al_http_rc_status(AL_ERR_NOT_FOUND), 404);
    assert_int_equal(al_http_rc_status(AL_RC_COUNT), 500);
}

/* A body jansson refuses: the message says where, and for a number out of
 * range, which field. */
static void test_json_body_error(void **state)
{
    (void)state;
    struct {
        const char *body, *want;
    } cases[] = {
        {"{\"prompt\":\"x\",\"seed\":123456789012345678901234567890}",
         "'seed' in the request body is out of range: integers must be between -2^63 and 2^63-1"},
        {"{\"a\":{\"b\":[1,-99999999999999999999]}}", "'a.b[1]' in the request body is out of range"},
        {"{\"a\":1e999}", "a number in the request body is out of range (line 1"},
        {"{\"prompt\":", "the request body is not valid JSON: "},
        {"{\"p\xff\":", "the request body is not valid JSON: "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_error_t je;
        json_t *j = json_loadb(cases[i].body, strlen(cases[i].body), JSON_REJECT_DUPLICATES, &je);
        assert_null(j);
        char msg[AL_ERR_MSG_MAX];
        al_server_json_body_error(cases[i].body, strlen(cases[i].body), &je, msg, sizeof msg);
        if (!strstr(msg, cases[i].want))
            fail_msg("%s: '%s', wanted '%s'", cases[i].body, msg, cases[i].want);
        for (const char *p = msg; *p; p++)
            assert_true(*p >= 0x20 && *p < 0x7f); /* goes into JSON: printable ASCII only */
    }
}

/* Whether the peer of fd has been shut down by the server side. */
static bool peer_closed(int fd)
{
    char c;
    return recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

/* Receive deadlines and the reserve, with explicit clock values: a
 * connection past its deadline is closed; one being handled is not; under
 * pressure the oldest receiving ones past the grace go first. */
static void test_conns(void **state)
{
    (void)state;
    struct al_server_conns *cs = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_server_conns_new(8, 5.0, &cs, &err), AL_OK); /* reserve: 2 of 8 */
    int sp[8][2];
    struct al_server_conn *c[8];
    for (int i = 0; i < 8; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp[i]), 0);
        c[i] = NULL;
    }
    /* Six connections: at cap - reserve, nothing to shed; none past 5 s. */
    for (int i = 0; i < 6; i++)
        c[i] = al_server_conns_add(cs, sp[i][0], 100.0 + i * 0.1);
    al_server_conn_handling(cs, c[0]);
    assert_int_equal(al_server_conns_sweep(cs, 104.0), 0);
    /* A seventh: one over; the oldest receiving past the grace (c[1], as
     * c[0] is being handled) is shed. A new one within the grace is not. */
    c[6] = al_server_conns_add(cs, sp[6][0], 104.0);
    assert_int_equal(al_server_conns_sweep(cs, 104.5), 1);
    assert_true(peer_closed(sp[1][1]));
    assert_false(peer_closed(sp[0][1]));
    assert_false(peer_closed(sp[2][1]));
    /* Past the deadline: every receiving one from the first batch; the one
     * handled is not, and one that went back to receiving at 103 has until 108. */
    al_server_conn_receiving(cs, c[2], 103.0);
    assert_int_equal(al_server_conns_sweep(cs, 105.6), 3); /* c[3], c[4], c[5] */
    assert_false(peer_closed(sp[0][1]));
    assert_false(peer_closed(sp[2][1]));
    assert_false(peer_closed(sp[6][1]));
    for (int i = 3; i < 6; i++)
        assert_true(peer_closed(sp[i][1]));
    struct al_server_conns_stats st;
    al_server_conns_stats(cs, &st);
    assert_int_equal(st.open, 3);
    assert_int_equal(st.receiving, 2);
    assert_int_equal(st.timed_out, 3);
    assert_int_equal(st.shed, 1);
    /* A removed connection is never touched again. */
    al_server_conns_remove(cs, c[2]);
    assert_int_equal(al_server_conns_sweep(cs, 200.0), 1); /* c[6]; c[0] is handled */
    assert_false(peer_closed(sp[2][1]));
    for (int i = 0; i < 7; i++)
        if (i != 2)
            al_server_conns_remove(cs, c[i]);
    al_server_conns_free(cs);
    for (int i = 0; i < 8; i++) {
        close(sp[i][0]);
        close(sp[i][1]);
    }
}

/* The arrivals (arrivals.h) as the engine's admission hook: a step from
 * idle waits for requests known to be on their way, and after a step that
 * finished several requests for as many new ones, so that they start in one
 * batch; a lone request, or one that never comes, is not waited for beyond
 * its own count. On the real scheduler and the fixture model. */
static struct al_engine_model *load_gathering(struct al_server_arrivals *a)
{
    struct al_engine_model_params mp = al_engine_model_params_default();
    mp.threads = 2;
    mp.n_seq = 2;
    mp.n_ctx = 256;
    mp.admit = al_server_arrivals_admit;
    mp.admit_ud = a;
    struct al_engine_model *m = NULL;
    struct al_err err = AL_ERR_INIT;
    if (al_engine_model_load(tu_fixture("stories260K.gguf"), FIXTURE_DIGEST, &mp, &m, &err))
        fail_msg("load: %s", err.msg);
    return m;
}

static uint64_t decode_calls(struct al_engine_model *m)
{
    struct al_engine_stats st;
    al_engine_stats(m, &st);
    return st.decode_calls;
}

/* Submits one request, checks that no step starts for 100 ms, then a
 * second: both are decoded in one step. */
static void two_in_one_step(struct al_engine_model *m, const struct al_engine_gen_params *p1,
                            const struct al_engine_gen_params *p2, uint64_t calls_before)
{
    struct tu_collect c1, c2;
    tu_collect_init(&c1);
    tu_collect_init(&c2);
    tu_submit(m, "Tom and Sue went", p1, NULL, &c1, NULL);
    usleep(100 * 1000);
    assert_int_equal(decode_calls(m), calls_before);
    tu_submit(m, "One day, a big bird", p2, NULL, &c2, NULL);
    tu_wait_done(&c1);
    tu_wait_done(&c2);
    assert_int_equal(decode_calls(m), calls_before + 1);
    assert_true(c1.res.queue_ms >= 90);
}

static void test_gather_arrivals(void **state)
{
    struct al_server_arrivals *a = al_server_arrivals_new(3000); /* far longer than any wait below: no timing luck */
    assert_non_null(a);
    struct al_engine_model *m = load_gathering(a);
    struct al_engine_gen_params p = tu_greedy(1); /* sampled from the prompt's logits: one step each */
    struct al_engine_gen_params pc = p;        /* a request the server counted */
    pc.on_submitted = al_server_arrivals_submitted;
    pc.submitted_ud = a;

    /* B is on its way when A arrives: A waits for it, both take one step. */
    al_server_arrivals_add(a, 1);
    two_in_one_step(m, &p, &pc, 0);
    assert_int_equal(al_server_arrivals_pending(a), 0);

    /* That step finished two: the first next request waits for a second,
     * not yet counted (its client's headers are still on the way). */
    two_in_one_step(m, &p, &p, 1);
    al_engine_model_free(m);

    /* A lone counted request is uncounted as it is queued: no wait. */
    m = load_gathering(a);
    struct tu_collect ce;
    tu_collect_init(&ce);
    al_server_arrivals_add(a, 1);
    tu_submit(m, "Once upon a time", &pc, NULL, &ce, NULL);
    tu_wait_done(&ce);
    /* Waiting would take the whole cap: the bound is the cap itself, so a
     * slow machine cannot fail it, only a wait can. */
    assert_true(ce.res.queue_ms < 3000);

    /* A counted request refused before the engine (a bad key, say) only
     * uncounts itself: the step starts then, not at the cap. */
    al_server_arrivals_add(a, 1);
    struct tu_collect cf;
    tu_collect_init(&cf);
    tu_submit(m, "Tom and Sue went", &p, NULL, &cf, NULL);
    usleep(100 * 1000);
    assert_int_equal(decode_calls(m), 1);
    al_server_arrivals_add(a, -1);
    tu_wait_done(&cf);
    assert_true(cf.res.queue_ms < 3000);

    /* One the engine refuses is uncounted too. */
    al_server_arrivals_add(a, 1);
    struct al_engine_gen_params pe = pc;
    pe.grammar = "root ::= (";
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_engine_submit(m, "Hi", &pe, NULL, tu_on_done, NULL, NULL, &err), AL_ERR_INVALID);
    assert_int_equal(al_server_arrivals_pending(a), 0);
    al_engine_model_free(m);
    al_server_arrivals_free(a);

    /* A count quiet for 4 caps (a connection that sends nothing) is not
     * waited for: the cap is 1 s, the count at least 4.1 s old (the sleep
     * only lets the count age; a slow machine makes it older, never
     * younger). Waiting would take the whole cap. */
    a = al_server_arrivals_new(1000);
    assert_non_null(a);
    m = load_gathering(a);
    al_server_arrivals_add(a, 1);
    usleep(4100 * 1000);
    struct tu_collect cg;
    tu_collect_init(&cg);
    tu_submit(m, "Once upon a time", &p, NULL, &cg, NULL);
    tu_wait_done(&cg);
    assert_true(cg.res.queue_ms < 1000);
    al_server_arrivals_add(a, -1);
    al_engine_model_free(m);
    al_server_arrivals_free(a);
}

/* logit_bias (llparams.c) read into the engine's entries, the engine's own
 * checks of them and their effect on a greedy answer; a stop string's index
 * in the result; response_fields' nested paths. */
static json_t *lb_body(const char *lb)
{
    char text[4096];
    snprintf(text, sizeof text, "{\"logit_bias\":%s}", lb);
    json_t *b = json_loads(text, 0, NULL);
    assert_non_null(b);
    return b;
}

static enum al_rc lb_parse(struct al_engine_model *m, const char *lb, struct al_engine_logit_bias **out, int *n)
{
    json_t *b = lb_body(lb);
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_server_logit_bias_from_json(b, m, out, n, &err);
    json_decref(b);
    return rc;
}

static void test_llparams(void **state)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", tu_fixture("stories260K.gguf"));
    struct al_engine_model *m = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_engine_model_load(path, FIXTURE_DIGEST, NULL, &m, &err), AL_OK);
    struct al_engine_logit_bias *lb = NULL;
    int n = 0;
    assert_int_equal(lb_parse(m, "{\"5\":-2.5,\"7\":false}", &lb, &n), AL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(lb[0].token, 5);
    assert_true(lb[0].bias == -2.5f);
    assert_int_equal(lb[1].token, 7);
    assert_true(isinf(lb[1].bias) && lb[1].bias < 0);
    free(lb);
    lb = NULL;
    /* a text: each of its tokens, without BOS */
    assert_int_equal(lb_parse(m, "[[\" the little\",1],[9,2]]", &lb, &n), AL_OK);
    int32_t *toks = NULL;
    size_t nt = 0;
    assert_int_equal(al_engine_tokenize(m, " the little", 11, false, false, &toks, &nt, &err), AL_OK);
    assert_int_equal(n, (int)nt + 1);
    for (size_t i = 0; i < nt; i++)
        assert_int_equal(lb[i].token, toks[i]);
    assert_int_equal(lb[nt].token, 9);
    free(toks);
    free(lb);
    lb = NULL;
    assert_int_equal(lb_parse(m, "{}", &lb, &n), AL_OK);
    assert_null(lb);
    const char *bad[] = {"1", "\"x\"", "{\"5\":\"x\"}", "{\"5\":true}", "[[5]]", "[5]", "[[5,1,2]]", "[[{},1]]",
                         "{\"-1\":1}", "{\"99999999\":1}", "[[-3,1]]", "{\"\":1}", "{\"5\":1e7}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (lb_parse(m, bad[i], &lb, &n) != AL_ERR_INVALID)
            fail_msg("logit_bias %s was not refused", bad[i]);
    assert_null(lb);

    /* The engine: a token biased up is the greedy choice; its checks. */
    struct al_engine_gen_params p = al_engine_gen_params_default();
    p.temperature = 0;
    p.max_tokens = 4;
    char *text = NULL;
    struct al_engine_gen_result res;
    assert_int_equal(al_engine_generate(m, "Once upon a time", &p, &text, &res, &err), AL_OK);
    struct al_engine_logit_bias ban = {300, 100};
    p.logit_bias = &ban;
    p.n_logit_bias = 1;
    char *text2 = NULL, piece[64];
    int np = al_engine_token_piece(m, 300, true, piece, sizeof piece - 1);
    assert_true(np > 0);
    piece[np] = 0;
    assert_int_equal(al_engine_generate(m, "Once upon a time", &p, &text2, &res, &err), AL_OK);
    assert_true(strncmp(text2, piece, (size_t)np) == 0);
    assert_string_not_equal(text, text2);
    free(text2);
    text2 = NULL;
    ban.token = 1 << 30;
    assert_int_equal(al_engine_generate(m, "Once upon a time", &p, &text2, &res, &err), AL_ERR_INVALID);
    ban.token = 5;
    ban.bias = NAN;
    err = (struct al_err)AL_ERR_INIT;
    assert_int_equal(al_engine_generate(m, "Once upon a time", &p, &text2, &res, &err), AL_ERR_USAGE);
    p.n_logit_bias = AL_LIMIT_LOGIT_BIAS + 1;
    err = (struct al_err)AL_ERR_INIT;
    assert_int_equal(al_engine_generate(m, "Once upon a time", &p, &text2, &res, &err), AL_ERR_LIMIT);

    /* stop_word: the index of the stop string that ended the answer. */
    p = al_engine_gen_params_default();
    p.temperature = 0;
    p.max_tokens = 16;
    char word[8] = "";
    memcpy(word, text + 3, 3); /* three bytes the greedy answer holds */
    const char *stops[] = {"zzzz", word};
    p.stop = stops;
    p.n_stop = 2;
    err = (struct al_err)AL_ERR_INIT;
    assert_int_equal(al_engine_generate(m, "Once upon a time", &p, &text2, &res, &err), AL_OK);
    assert_int_equal(res.finish, AL_ENGINE_FINISH_STOP);
    assert_int_equal(res.stop_word, 1);
    free(text2);
    free(text);
    al_engine_model_free(m);

    json_t *doc = json_loads("{\"a\":1,\"b\":{\"c\":[2],\"d\":{\"e\":3}}}", 0, NULL);
    json_t *fields = json_loads("[\"a\",\"b/d/e\",\"b/c\",\"b/x\",\"a/b\"]", 0, NULL);
    json_t *got = al_server_response_fields_pick(doc, fields);
    char *s = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"a\":1,\"b/c\":[2],\"b/d/e\":3}");
    free(s);
    json_decref(got);
    json_decref(fields);
    fields = json_loads("[]", 0, NULL);
    got = al_server_response_fields_pick(doc, fields);
    assert_ptr_equal(got, doc);
    json_decref(got);
    json_decref(fields);
    json_decref(doc);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gbnf_shapes),
        cmocka_unit_test(test_gbnf_on_model),
        cmocka_unit_test(test_llparams),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_audit_queue),
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_rc_http),
        cmocka_unit_test(test_json_body_error),
        cmocka_unit_test(test_conns),
        cmocka_unit_test(test_gather_arrivals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
