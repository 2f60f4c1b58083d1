/*
 * Unit tests of src/suite: suite files (every documented refusal, nothing
 * handed out on failure), the targets, recording.json written and read back
 * bit for bit, each verdict of the comparison on hand-made runs, and golden
 * runs for real: on the fixture model in this process, against airlock's own
 * server on loopback, and against a stub server speaking the legacy shape.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "tu_httpd.h"
#include "tu_model.h"
#include "core/buf.h"
#include "core/limits.h"
#include "suite/suite.h"

static char *g_dir;

static int setup(void **state)
{
    g_dir = tu_mkdtemp();
    return 0;
}

static int teardown(void **state)
{
    tu_rmrf(g_dir);
    free(g_dir);
    return 0;
}

/* A fresh directory below g_dir holding suite.json (and golden.json). */
static char *suite_dir(const char *name, const char *suite, const char *golden)
{
    char *d = NULL;
    if (asprintf(&d, "%s/%s", g_dir, name) < 0 || mkdir(d, 0755) != 0)
        fail_msg("cannot create %s", d);
    char p[4096];
    if (suite) {
        snprintf(p, sizeof p, "%s/suite.json", d);
        tu_write_file(p, suite, strlen(suite));
    }
    if (golden) {
        snprintf(p, sizeof p, "%s/golden.json", d);
        tu_write_file(p, golden, strlen(golden));
    }
    return d;
}

/* Loads and expects rc with msg in the message and nothing handed out. */
static void load_refused(const char *name, const char *suite, const char *golden, enum al_rc want, const char *msg)
{
    char *d = suite_dir(name, suite, golden);
    struct al_suite *s = NULL;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_suite_load(d, &s, &err);
    if (rc != want || !strstr(err.msg, msg))
        fail_msg("%s: rc %d '%s', wanted %d with '%s'", name, rc, err.msg, want, msg);
    assert_null(s);
    /* the same text from memory: the same refusal */
    al_err_clear(&err);
    rc = al_suite_parse("mem", suite, strlen(suite), golden, golden ? strlen(golden) : 0, &s, &err);
    if (rc != want || !strstr(err.msg, msg))
        fail_msg("%s (parse): rc %d '%s', wanted %d with '%s'", name, rc, err.msg, want, msg);
    assert_null(s);
    free(d);
}

#define FMT "\"format\":\"airlock-suite/1\""

static void test_default(void **state)
{
    struct al_suite *s = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_suite_default(&s, &err), AL_OK);
    assert_int_equal(s->n_concurrency, 3);
    assert_int_equal(s->concurrency[0], 1);
    assert_int_equal(s->concurrency[2], 4);
    assert_int_equal(s->n_prompt_lengths, 3);
    assert_int_equal(s->prompt_lengths[2], 512);
    assert_int_equal(s->gen_tokens, 64);
    assert_int_equal(s->n_golden, 0);
    assert_true(s->n_bench_prompts >= 1 && s->bench_prompts[0][0]);
    assert_true(s->targets.min_decode_tps <= 0 && s->targets.max_ttft_p95_ms <= 0 && s->targets.max_rss_mb <= 0);
    /* *out must be NULL on entry */
    struct al_suite *keep = s;
    assert_int_equal(al_suite_default(&s, &err), AL_ERR_USAGE);
    assert_ptr_equal(s, keep);
    al_suite_free(s);
    al_suite_free(NULL);
}

static void test_init_and_load(void **state)
{
    struct al_err err = AL_ERR_INIT;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/new/starter", g_dir); /* parents are made */
    assert_int_equal(al_suite_init_dir(dir, &err), AL_OK);
    struct al_suite *s = NULL;
    assert_int_equal(al_suite_load(dir, &s, &err), AL_OK);
    assert_string_equal(s->name, "starter");
    assert_string_equal(s->dir, dir);
    assert_int_equal(s->n_golden, 4);
    assert_string_equal(s->golden[0].id, "story-once");
    assert_int_equal(s->golden[0].max_tokens, 32);
    assert_int_equal(s->top_k, 5);
    assert_true(s->tol_logprob == 0.01 && s->tol_tie == 0.05 && s->min_overlap == 0.5);
    /* *out must be NULL on entry: refused, the suite untouched */
    struct al_suite *keep = s;
    al_err_clear(&err);
    assert_int_equal(al_suite_load(dir, &s, &err), AL_ERR_USAGE);
    assert_ptr_equal(s, keep);
    al_suite_free(s);

    /* a second init refuses and leaves the files as they were */
    char p[4200];
    snprintf(p, sizeof p, "%s/suite.json", dir);
    size_t n0 = 0, n1 = 0;
    char *before = tu_read_file(p, &n0);
    al_err_clear(&err);
    assert_int_equal(al_suite_init_dir(dir, &err), AL_ERR_EXISTS);
    assert_non_null(strstr(err.msg, "exists already"));
    char *after = tu_read_file(p, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
}

static void test_load_refusals(void **state)
{
    struct al_suite *s = NULL;
    struct al_err err = AL_ERR_INIT;
    char *d = suite_dir("empty", NULL, NULL);
    assert_int_equal(al_suite_load(d, &s, &err), AL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "suite.json' does not exist"));
    assert_null(s);
    free(d);

    load_refused("notjson", "{\"format\": ", NULL, AL_ERR_INVALID, "is not valid JSON: line 1");
    load_refused("array", "[1]", NULL, AL_ERR_INVALID, "is not a JSON object");
    load_refused("dupkey", "{" FMT ", \"name\":\"a\", \"name\":\"b\"}", NULL, AL_ERR_INVALID, "not valid JSON");
    load_refused("noformat", "{\"name\":\"x\"}", NULL, AL_ERR_INVALID, "(found none)");
    load_refused("format2", "{\"format\":\"airlock-suite/2\"}", NULL, AL_ERR_INVALID,
                 "\"format\" must be \"airlock-suite/1\" (found \"airlock-suite/2\")");
    load_refused("conc0", "{" FMT ", \"bench\":{\"concurrency\":[0]}}", NULL, AL_ERR_INVALID,
                 "\"concurrency\" entries must be whole numbers in [1, 64]");
    load_refused("conc65", "{" FMT ", \"bench\":{\"concurrency\":[1,65]}}", NULL, AL_ERR_INVALID, "[1, 64]");
    load_refused("concempty", "{" FMT ", \"bench\":{\"concurrency\":[]}}", NULL, AL_ERR_INVALID,
                 "\"concurrency\" must be a list of 1 to 16 numbers");
    load_refused("conc17", "{" FMT ", \"bench\":{\"concurrency\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}}", NULL,
                 AL_ERR_INVALID, "a list of 1 to 16");
    load_refused("lenstr", "{" FMT ", \"bench\":{\"prompt_lengths\":[\"16\"]}}", NULL, AL_ERR_INVALID,
                 "\"prompt_lengths\" entries");
    load_refused("genfrac", "{" FMT ", \"bench\":{\"gen_tokens\":1.5}}", NULL, AL_ERR_INVALID,
                 "\"gen_tokens\" must be a whole number");
    load_refused("gen0", "{" FMT ", \"bench\":{\"gen_tokens\":0}}", NULL, AL_ERR_INVALID,
                 "\"gen_tokens\" must be a number in [1, 4096]");
    load_refused("reqneg", "{" FMT ", \"bench\":{\"requests\":-1}}", NULL, AL_ERR_INVALID, "\"requests\"");
    load_refused("prompts0", "{" FMT ", \"bench\":{\"prompts\":[]}}", NULL, AL_ERR_INVALID,
                 "bench \"prompts\" must be a list of 1 to 1024 texts");
    load_refused("promptempty", "{" FMT ", \"bench\":{\"prompts\":[\"a\",\"\"]}}", NULL, AL_ERR_INVALID,
                 "bench prompt 1 is not a non-empty text");
    load_refused("target", "{" FMT ", \"targets\":{\"max_rss_mb\":-5}}", NULL, AL_ERR_INVALID, "\"max_rss_mb\"");
    load_refused("topk", "{" FMT ", \"golden\":{\"top_k\":21}}", NULL, AL_ERR_INVALID, "\"top_k\"");
    load_refused("overlap", "{" FMT ", \"golden\":{\"tolerance\":{\"min_overlap\":1.5}}}", NULL, AL_ERR_INVALID,
                 "\"min_overlap\" must be a number in [0, 1]");
    load_refused("gnotobj", "{" FMT "}", "[]", AL_ERR_INVALID, "golden.json' is not a JSON object");
    load_refused("gnolist", "{" FMT "}", "{\"prompts\":{}}", AL_ERR_INVALID, "\"prompts\" must be a list");
    load_refused("gnoid", "{" FMT "}", "{\"prompts\":[{\"prompt\":\"x\"}]}", AL_ERR_INVALID,
                 "prompt 0 needs a non-empty \"id\" and \"prompt\"");
    load_refused("gdup", "{" FMT "}", "{\"prompts\":[{\"id\":\"a\",\"prompt\":\"x\"},{\"id\":\"a\",\"prompt\":\"y\"}]}",
                 AL_ERR_INVALID, "prompt id 'a' appears twice");
    load_refused("gmax", "{" FMT "}", "{\"prompts\":[{\"id\":\"a\",\"prompt\":\"x\",\"max_tokens\":4097}]}",
                 AL_ERR_INVALID, "\"max_tokens\" must be a number in [1, 4096]");

    /* over the caps */
    struct al_buf b;
    al_buf_init(&b, 1 << 20);
    al_buf_addstr(&b, "{\"prompts\":[");
    for (int i = 0; i <= AL_LIMIT_SUITE_PROMPTS; i++)
        al_buf_addf(&b, "%s{\"id\":\"p%d\",\"prompt\":\"x\"}", i ? "," : "", i);
    al_buf_addstr(&b, "]}");
    load_refused("gmany", "{" FMT "}", al_buf_str(&b), AL_ERR_LIMIT, "1025 prompts is over the cap of 1024");
    al_buf_release(&b);

    d = suite_dir("huge", NULL, NULL);
    char p[4096];
    snprintf(p, sizeof p, "%s/suite.json", d);
    size_t big = AL_LIMIT_SUITE_FILE + 1;
    char *text = malloc(big);
    memset(text, ' ', big);
    memcpy(text, "{" FMT "}", strlen("{" FMT "}"));
    tu_write_file(p, text, big);
    al_err_clear(&err);
    assert_int_equal(al_suite_load(d, &s, &err), AL_ERR_LIMIT);
    assert_null(s);
    al_err_clear(&err);
    assert_int_equal(al_suite_parse("mem", text, big, NULL, 0, &s, &err), AL_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "AL_LIMIT_SUITE_FILE"));
    assert_null(s);
    free(text);
    free(d);
}

static void test_parse_from_memory(void **state)
{
    const char *suite = "{" FMT ", \"name\":\"stories\", \"bench\":{\"prompts\":[\"abc\",\"def\"], "
                        "\"concurrency\":[2,8], \"prompt_lengths\":[1,32], \"gen_tokens\":16, \"requests\":3}, "
                        "\"targets\":{\"min_decode_tps\":100, \"max_ttft_p95_ms\":0}, "
                        "\"golden\":{\"top_k\":3, \"tolerance\":{\"logprob\":0.2}}}";
    const char *golden = "{\"prompts\":[{\"id\":\"g1\",\"prompt\":\"Once\",\"max_tokens\":7}]}";
    struct al_suite *s = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_suite_parse("stories:1.0 bench", suite, strlen(suite), golden, strlen(golden), &s, &err),
                     AL_OK);
    assert_string_equal(s->dir, "stories:1.0 bench");
    assert_string_equal(s->name, "stories");
    assert_int_equal(s->n_bench_prompts, 2);
    assert_string_equal(s->bench_prompts[1], "def");
    assert_int_equal(s->n_concurrency, 2);
    assert_int_equal(s->concurrency[1], 8);
    assert_int_equal(s->prompt_lengths[0], 1);
    assert_int_equal(s->gen_tokens, 16);
    assert_int_equal(s->requests, 3);
    assert_true(s->targets.min_decode_tps == 100 && s->targets.max_ttft_p95_ms == 0);
    assert_int_equal(s->top_k, 3);
    assert_true(s->tol_logprob == 0.2);
    assert_true(s->tol_tie == 0.05); /* unset: the default */
    assert_int_equal(s->n_golden, 1);
    assert_int_equal(s->golden[0].max_tokens, 7);
    /* the same from a directory gives the same suite */
    char *d = suite_dir("mem", suite, golden);
    struct al_suite *t = NULL;
    assert_int_equal(al_suite_load(d, &t, &err), AL_OK);
    assert_int_equal(t->n_golden, 1);
    assert_int_equal(t->concurrency[1], 8);
    assert_true(t->tol_logprob == 0.2);
    al_suite_free(t);
    free(d);
    /* messages name the label */
    struct al_suite *u = NULL;
    assert_int_equal(al_suite_parse("stories:1.0 bench", "{}", 2, NULL, 0, &u, &err), AL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "'stories:1.0 bench/suite.json'"));
    assert_null(u);
    al_err_clear(&err);
    assert_int_equal(al_suite_parse("x", suite, strlen(suite), NULL, 0, &s, &err), AL_ERR_USAGE); /* *out set */
    al_err_clear(&err);
    assert_int_equal(al_suite_parse(NULL, suite, strlen(suite), NULL, 0, &u, &err), AL_ERR_USAGE);
    al_suite_free(s);
}

static void test_targets(void **state)
{
    struct al_target_check c[3];
    struct al_targets none = {0, 0, 0};
    assert_int_equal(al_targets_check(&none, 5, 5, 5, c), 0);
    struct al_targets t = {100, 500, 2048};
    assert_int_equal(al_targets_check(&t, 85.2, 500, -1, c), 3);
    assert_string_equal(c[0].name, "min_decode_tps");
    assert_false(c[0].met);
    assert_string_equal(c[0].line, "min_decode_tps 100: measured 85.20 tokens/s: MISSED");
    assert_true(c[1].met); /* exactly at the limit: met */
    assert_string_equal(c[1].line, "max_ttft_p95_ms 500: measured 500.00 ms: met");
    assert_true(c[2].met); /* not measured: reported, not a miss */
    assert_true(c[2].measured < 0);
    assert_string_equal(c[2].line, "max_rss_mb 2048: not measured here (skipped)");
    struct al_targets one = {0, 0, 10};
    assert_int_equal(al_targets_check(&one, 1, 1, 10.5, c), 1);
    assert_string_equal(c[0].name, "max_rss_mb");
    assert_false(c[0].met);
}

static void test_verdict_names(void **state)
{
    const char *names[] = {"identical", "float-noise", "missing", "nondeterministic", "tokenizer-differs",
                           "weights-differ", "other-model"};
    for (int v = AL_VERDICT_IDENTICAL; v <= AL_VERDICT_OTHER_MODEL; v++) {
        assert_string_equal(al_verdict_name((enum al_verdict)v), names[v]);
        assert_int_equal(al_verdict_ok((enum al_verdict)v), v == AL_VERDICT_IDENTICAL || v == AL_VERDICT_FLOAT_NOISE);
    }
}

/* ---- hand-made runs ---- */

struct pos {
    int tok;
    float lp;
    int tid[3];
    float tlp[3];
};

static struct al_golden_run *run_new(const char *source, size_t n)
{
    struct al_golden_run *r = calloc(1, sizeof *r);
    r->res = calloc(n, sizeof *r->res);
    r->n_res = n;
    r->top_k = 3;
    snprintf(r->cond.source, sizeof r->cond.source, "%s", source);
    snprintf(r->cond.llama_commit, sizeof r->cond.llama_commit, "abc1234");
    snprintf(r->cond.system_info, sizeof r->cond.system_info, "CPU : AVX2 = 1 |");
    snprintf(r->cond.model_digest, sizeof r->cond.model_digest, "%s", TU_FIXTURE_DIGEST);
    r->decode_tps = r->ttft_p95_ms = r->rss_peak_mb = -1;
    return r;
}

static char *txt(int id)
{
    char b[16];
    snprintf(b, sizeof b, "t%d", id);
    return strdup(b);
}

static void res_set(struct al_golden_result *r, const char *id, const int *prompt, int n_prompt, const struct pos *p,
                    int n)
{
    r->id = strdup(id);
    if (prompt) {
        r->prompt_ids = calloc((size_t)n_prompt, sizeof *r->prompt_ids);
        for (int i = 0; i < n_prompt; i++)
            r->prompt_ids[i] = prompt[i];
        r->n_prompt_ids = n_prompt;
    }
    r->tok = calloc((size_t)n + 1, sizeof *r->tok);
    r->n_tok = n;
    for (int t = 0; t < n; t++) {
        struct al_golden_token *g = &r->tok[t];
        g->id = p[t].tok;
        g->logprob = p[t].lp;
        g->text = txt(p[t].tok);
        g->top = calloc(3, sizeof *g->top);
        g->n_top = 3;
        for (int k = 0; k < 3; k++) {
            g->top[k].id = p[t].tid[k];
            g->top[k].logprob = p[t].tlp[k];
            g->top[k].text = txt(p[t].tid[k]);
        }
    }
    snprintf(r->finish, sizeof r->finish, "length");
    r->ttft_ms = r->gen_ms = -1;
}

static const int PROMPT[] = {1, 100, 200};
static const struct pos BASE[3] = {
    {10, -0.1f, {10, 11, 12}, {-0.1f, -2.0f, -3.0f}},
    {20, -0.700f, {20, 21, 22}, {-0.700f, -0.701f, -2.5f}},
    {30, -0.3f, {30, 31, 32}, {-0.3f, -1.5f, -2.8f}},
};

static void shifted(struct pos *out, float d)
{
    for (int t = 0; t < 3; t++) {
        out[t] = BASE[t];
        out[t].lp += d;
        for (int k = 0; k < 3; k++)
            out[t].tlp[k] += d;
    }
}

static struct al_suite *default_suite(void)
{
    struct al_suite *s = NULL;
    struct al_err err = AL_ERR_INIT;
    if (al_suite_default(&s, &err))
        fail_msg("%s", err.msg);
    s->top_k = 3;
    return s;
}

/* Compares one recorded prompt (BASE) with one run prompt; returns the verdict. */
static enum al_verdict verdict_of(const char *source, const int *prompt, const struct pos *p, int n,
                                  struct al_prompt_cmp *out)
{
    struct al_suite *s = default_suite();
    struct al_golden_run *rec = run_new("engine", 1), *run = run_new(source, 1);
    res_set(&rec->res[0], "p1", PROMPT, 3, BASE, 3);
    res_set(&run->res[0], "p1", prompt, 3, p, n);
    struct al_validation v;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_golden_compare(s, rec, run, &v, &err), AL_OK);
    assert_int_equal(v.n_cmp, 1);
    enum al_verdict verdict = v.cmp[0].verdict;
    assert_int_equal(v.n_failed, al_verdict_ok(verdict) ? 0 : 1);
    if (out) {
        *out = v.cmp[0];
        out->id = NULL; /* borrowed from the run, freed below */
    }
    al_validation_release(&v);
    assert_null(v.cmp);
    al_golden_run_free(rec);
    al_golden_run_free(run);
    al_suite_free(s);
    return verdict;
}

static void test_compare_verdicts(void **state)
{
    const char *server = "http://127.0.0.1:1";
    struct pos p[3];
    struct al_prompt_cmp c;

    /* same conditions: identical, or any difference is nondeterminism */
    assert_int_equal(verdict_of("engine", PROMPT, BASE, 3, &c), AL_VERDICT_IDENTICAL);
    assert_int_equal(c.diverge_at, -1);
    assert_int_equal(c.n_compared, 3);
    shifted(p, 0.003f);
    assert_int_equal(verdict_of("engine", PROMPT, p, 3, NULL), AL_VERDICT_NONDETERMINISM);

    /* other conditions: judged with the tolerances */
    assert_int_equal(verdict_of(server, PROMPT, BASE, 3, NULL), AL_VERDICT_IDENTICAL);
    assert_int_equal(verdict_of(server, PROMPT, p, 3, &c), AL_VERDICT_FLOAT_NOISE);
    assert_true(fabs(c.max_drift - 0.003) < 1e-4);
    assert_int_equal(c.drift_at, -1);
    shifted(p, 0.3f);
    assert_int_equal(verdict_of(server, PROMPT, p, 3, &c), AL_VERDICT_WEIGHTS);
    assert_int_equal(c.drift_at, 0);
    assert_non_null(strstr(c.detail, "differ slightly"));
    shifted(p, 0.9f);
    assert_int_equal(verdict_of(server, PROMPT, p, 3, &c), AL_VERDICT_WEIGHTS);
    assert_non_null(strstr(c.detail, "much shifted"));

    /* the prompt tokenizes differently: said first, whatever the tokens */
    const int other_prompt[] = {1, 100, 201};
    assert_int_equal(verdict_of(server, other_prompt, BASE, 3, &c), AL_VERDICT_TOKENIZER);
    assert_non_null(strstr(c.detail, "from position 2"));
    /* no prompt ids on one side (a server): not a tokenizer difference */
    assert_int_equal(verdict_of(server, NULL, BASE, 3, NULL), AL_VERDICT_IDENTICAL);

    /* a near tie flips: harmless */
    memcpy(p, BASE, sizeof p);
    p[1] = (struct pos){21, -0.7005f, {21, 20, 22}, {-0.7005f, -0.7015f, -2.5f}};
    assert_int_equal(verdict_of(server, PROMPT, p, 3, &c), AL_VERDICT_FLOAT_NOISE);
    assert_int_equal(c.diverge_at, 1);
    assert_int_equal(c.n_compared, 2); /* nothing after a divergence */
    assert_true(c.margin <= 0.05);
    /* a confident divergence with the same distribution: another model */
    memcpy(p, BASE, sizeof p);
    p[0] = (struct pos){12, -3.0f, {10, 11, 12}, {-0.1f, -2.0f, -3.0f}};
    assert_int_equal(verdict_of(server, PROMPT, p, 3, &c), AL_VERDICT_OTHER_MODEL);
    assert_int_equal(c.diverge_at, 0);
    assert_non_null(strstr(c.detail, "confident divergence"));
    /* unrelated candidates */
    for (int t = 0; t < 3; t++)
        p[t] = (struct pos){40 + t, -0.2f, {40 + t, 50, 60}, {-0.2f, -1.0f, -2.0f}};
    assert_int_equal(verdict_of(server, PROMPT, p, 3, &c), AL_VERDICT_OTHER_MODEL);
    assert_true(c.overlap < 0.5);

    /* one token fewer (an end-of-generation token one side lists): fine; two: not */
    assert_true(al_verdict_ok(verdict_of(server, PROMPT, BASE, 2, NULL)));
    assert_false(al_verdict_ok(verdict_of(server, PROMPT, BASE, 1, &c)));
    assert_int_equal(c.diverge_at, 1);
}

/* A prompt on one side only is MISSING, either way round (suite.h). */
static void test_compare_missing(void **state)
{
    struct al_suite *s = default_suite();
    struct al_golden_run *rec = run_new("engine", 2), *run = run_new("http://127.0.0.1:1", 2);
    res_set(&rec->res[0], "p1", PROMPT, 3, BASE, 3);
    res_set(&rec->res[1], "gone", PROMPT, 3, BASE, 3);
    res_set(&run->res[0], "p1", PROMPT, 3, BASE, 3);
    res_set(&run->res[1], "new", PROMPT, 3, BASE, 3);
    struct al_validation v;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_golden_compare(s, rec, run, &v, &err), AL_OK);
    assert_false(v.conditions_match);
    assert_non_null(strstr(v.conditions_note, "server http://127.0.0.1:1"));
    assert_int_equal(v.n_cmp, 3);
    assert_string_equal(v.cmp[0].id, "p1");
    assert_int_equal(v.cmp[0].verdict, AL_VERDICT_IDENTICAL);
    assert_string_equal(v.cmp[1].id, "gone");
    assert_int_equal(v.cmp[1].verdict, AL_VERDICT_MISSING);
    assert_non_null(strstr(v.cmp[1].detail, "not in the suite's golden.json"));
    /* a golden prompt never recorded cannot pass unchecked */
    assert_string_equal(v.cmp[2].id, "new");
    assert_int_equal(v.cmp[2].verdict, AL_VERDICT_MISSING);
    assert_non_null(strstr(v.cmp[2].detail, "not in the recording"));
    assert_int_equal(v.n_failed, 2);
    al_validation_release(&v);
    al_golden_run_free(rec);
    al_golden_run_free(run);
    al_suite_free(s);
    al_golden_run_free(NULL);
}

static void test_recording_roundtrip(void **state)
{
    struct al_golden_run *run = run_new("engine", 2);
    res_set(&run->res[0], "p1", PROMPT, 3, BASE, 3);
    struct pos odd[1] = {{7, -1.0f / 3.0f, {7, 8, 9}, {-1.0f / 3.0f, -2.718281828f, -31.4159f}}};
    res_set(&run->res[1], "p2", NULL, 0, odd, 1);
    free(run->res[1].tok[0].text);
    run->res[1].tok[0].text = strdup("quote \" and \xc3\xa9");
    run->decode_tps = 123.5;
    run->cond.threads = 3;
    snprintf(run->cond.recorded_at, sizeof run->cond.recorded_at, "2025-01-02T03:04:05Z");
    char *d = suite_dir("rec", NULL, NULL);
    struct al_err err = AL_ERR_INIT;
    struct al_golden_run *back = NULL;
    assert_int_equal(al_golden_load(d, &back, &err), AL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "has no recording.json: record one first"));
    assert_null(back);
    al_err_clear(&err);
    assert_int_equal(al_golden_save(run, d, &err), AL_OK);
    assert_int_equal(al_golden_load(d, &back, &err), AL_OK);
    assert_string_equal(back->cond.source, "engine");
    assert_string_equal(back->cond.model_digest, TU_FIXTURE_DIGEST);
    assert_int_equal(back->cond.threads, 3);
    assert_string_equal(back->cond.recorded_at, "2025-01-02T03:04:05Z");
    assert_true(back->decode_tps == 123.5);
    assert_true(back->ttft_p95_ms == -1); /* not measured stays not measured */
    assert_int_equal(back->n_res, 2);
    assert_int_equal(back->res[0].n_prompt_ids, 3);
    assert_null(back->res[1].prompt_ids);
    for (size_t i = 0; i < 2; i++) {
        const struct al_golden_result *a = &run->res[i], *b = &back->res[i];
        assert_string_equal(a->id, b->id);
        assert_int_equal(a->n_tok, b->n_tok);
        for (int t = 0; t < a->n_tok; t++) {
            assert_int_equal(a->tok[t].id, b->tok[t].id);
            assert_memory_equal(&a->tok[t].logprob, &b->tok[t].logprob, sizeof(float)); /* bit for bit */
            assert_string_equal(a->tok[t].text, b->tok[t].text);
            assert_int_equal(a->tok[t].n_top, b->tok[t].n_top);
            for (int k = 0; k < a->tok[t].n_top; k++)
                assert_memory_equal(&a->tok[t].top[k].logprob, &b->tok[t].top[k].logprob, sizeof(float));
        }
    }
    /* read back, it compares identical under the same conditions */
    struct al_suite *s = default_suite();
    struct al_validation v;
    assert_int_equal(al_golden_compare(s, run, back, &v, &err), AL_OK);
    assert_true(v.conditions_match);
    assert_int_equal(v.n_failed, 0);
    assert_int_equal(v.cmp[1].verdict, AL_VERDICT_IDENTICAL);
    al_validation_release(&v);
    /* *out must be NULL on entry */
    struct al_golden_run *keep = back;
    assert_int_equal(al_golden_load(d, &back, &err), AL_ERR_USAGE);
    assert_ptr_equal(back, keep);
    al_golden_run_free(back);

    /* from memory, and the refusals */
    char p[4096];
    snprintf(p, sizeof p, "%s/recording.json", d);
    size_t len = 0;
    char *text = tu_read_file(p, &len);
    back = NULL;
    al_err_clear(&err);
    assert_int_equal(al_golden_parse("stories bench/recording.json", text, len, &back, &err), AL_OK);
    assert_int_equal(back->n_res, 2);
    al_golden_run_free(back);
    free(text);
    const char *bad[][2] = {
        {"{\"format\":\"airlock-golden/2\",\"conditions\":{},\"results\":[]}", "is not a recording in format"},
        {"{\"format\":\"airlock-golden/1\",\"results\":[]}", "is not a recording in format"},
        {"{\"format\":\"airlock-golden/1\",\"conditions\":{},\"results\":[{\"tokens\":[]}]}", "result 0 is malformed"},
        {"{\"format\":\"airlock-golden/1\",\"conditions\":{},\"results\":[{\"id\":\"a\",\"tokens\":[{\"id\":\"x\","
         "\"logprob\":0,\"top\":[]}]}]}", "result 0 is malformed"},
        {"{\"format\":\"airlock-golden/1\",\"conditions\":{},\"results\":[{\"id\":\"a\",\"tokens\":[{\"id\":1,"
         "\"logprob\":0,\"top\":[[1,0,\"a\"],[\"b\"]]}]}]}", "result 0 is malformed"},
        {"[]", "is not a recording"},
        {"{", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        back = NULL;
        al_err_clear(&err);
        assert_int_not_equal(al_golden_parse("lbl", bad[i][0], strlen(bad[i][0]), &back, &err), AL_OK);
        if (!strstr(err.msg, bad[i][1]))
            fail_msg("recording %zu: '%s' lacks '%s'", i, err.msg, bad[i][1]);
        assert_null(back);
    }
    /* more top entries than AL_LIMIT_TOP_PROBS */
    struct al_buf b;
    al_buf_init(&b, 1 << 16);
    al_buf_addstr(&b, "{\"format\":\"airlock-golden/1\",\"conditions\":{},\"results\":[{\"id\":\"a\",\"tokens\":[{\"id\":1,"
                      "\"logprob\":0,\"top\":[");
    for (int k = 0; k <= AL_LIMIT_TOP_PROBS; k++)
        al_buf_addf(&b, "%s[%d,-1.0,\"x\"]", k ? "," : "", k);
    al_buf_addstr(&b, "]}]}]}");
    back = NULL;
    al_err_clear(&err);
    assert_int_equal(al_golden_parse("lbl", al_buf_str(&b), b.len, &back, &err), AL_ERR_INVALID);
    assert_null(back);
    al_buf_release(&b);
    al_suite_free(s);
    al_golden_run_free(run);
    free(d);
}

/* ---- golden runs on the real fixture ---- */

static struct al_engine_model *load_fixture(void)
{
    struct al_engine_model_params mp = al_engine_model_params_default();
    mp.threads = 2;
    mp.n_ctx = 256;
    struct al_engine_model *m = NULL;
    struct al_err err = AL_ERR_INIT;
    if (al_engine_model_load(tu_fixture("stories260K.gguf"), TU_FIXTURE_DIGEST, &mp, &m, &err))
        fail_msg("load: %s", err.msg);
    return m;
}

static const char *GOLDEN = "{\"prompts\":[{\"id\":\"once\",\"prompt\":\"Once upon a time\",\"max_tokens\":8},"
                            "{\"id\":\"dog\",\"prompt\":\"The little dog was sad because\",\"max_tokens\":6}]}";

static void test_golden_engine(void **state)
{
    char *d = suite_dir("engine", "{" FMT ", \"golden\":{\"top_k\":4}}", GOLDEN);
    struct al_suite *s = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_suite_load(d, &s, &err), AL_OK);
    struct al_engine_model *m = load_fixture();
    struct al_golden_run *rec = NULL;
    assert_int_equal(al_golden_record(m, s, 2, &rec, &err), AL_OK);
    assert_string_equal(rec->cond.source, "engine");
    assert_string_equal(rec->cond.model_digest, TU_FIXTURE_DIGEST);
    assert_true(rec->cond.llama_commit[0] && rec->cond.system_info[0]);
    assert_int_equal(rec->cond.threads, 2);
    assert_int_equal(rec->n_res, 2);
    assert_int_equal(rec->res[0].n_tok, 8);
    assert_int_equal(rec->res[1].n_tok, 6);
    assert_string_equal(rec->res[0].finish, "length");
    assert_true(rec->res[0].n_prompt_ids >= 5); /* BOS and the prompt */
    for (int t = 0; t < rec->res[0].n_tok; t++) {
        const struct al_golden_token *g = &rec->res[0].tok[t];
        assert_int_equal(g->n_top, 4);
        assert_int_equal(g->top[0].id, g->id); /* greedy: the most likely */
        assert_true(g->logprob <= 0);
        for (int k = 1; k < 4; k++)
            assert_true(g->top[k].logprob <= g->top[k - 1].logprob);
    }
    assert_true(rec->decode_tps > 0 && rec->ttft_p95_ms >= 0 && rec->rss_peak_mb > 0);

    /* validate: run again, read the recording, compare: exact match required, and met */
    struct al_golden_run *run = NULL, *saved = NULL;
    assert_int_equal(al_golden_run_engine(m, s, 2, &run, &err), AL_OK);
    assert_int_equal(al_golden_load(d, &saved, &err), AL_OK);
    struct al_validation v;
    assert_int_equal(al_golden_compare(s, saved, run, &v, &err), AL_OK);
    assert_true(v.conditions_match);
    assert_int_equal(v.n_failed, 0);
    for (size_t i = 0; i < v.n_cmp; i++)
        assert_int_equal(v.cmp[i].verdict, AL_VERDICT_IDENTICAL);
    al_validation_release(&v);
    al_golden_run_free(run);
    al_golden_run_free(saved);

    /* a suite without golden prompts is refused, nothing handed out */
    struct al_suite *empty = NULL;
    assert_int_equal(al_suite_default(&empty, &err), AL_OK);
    run = NULL;
    assert_int_equal(al_golden_run_engine(m, empty, 2, &run, &err), AL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "has no golden prompts"));
    assert_null(run);
    al_suite_free(empty);
    al_golden_run_free(rec);
    al_engine_model_free(m);
    al_suite_free(s);
    free(d);
}

/* The same prompts against airlock's own server on loopback: the
 * recording of the engine holds, within tolerance. */
static void test_golden_real_server(void **state)
{
    char *d = suite_dir("server", "{" FMT ", \"golden\":{\"top_k\":4}}", GOLDEN);
    struct al_suite *s = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_suite_load(d, &s, &err), AL_OK);
    struct al_engine_model *m = load_fixture();
    struct al_golden_run *rec = NULL;
    assert_int_equal(al_golden_run_engine(m, s, 2, &rec, &err), AL_OK);
    al_engine_model_free(m);

    char home[4096], url[64];
    snprintf(home, sizeof home, "%s/home", g_dir);
    tu_store_with_fixture(home, "stories:1.0");
    struct al_serve_models *mm = NULL;
    struct al_server *srv = NULL;
    tu_serve(home, "stories", &mm, &srv, url);

    struct al_golden_run *run = NULL;
    assert_int_equal(al_golden_run_server(url, s, &run, &err), AL_OK);
    assert_string_equal(run->cond.source, url);
    assert_int_equal(run->n_res, 2);
    assert_null(run->res[0].prompt_ids); /* a server does not say */
    assert_int_equal(run->res[0].n_tok, 8);
    assert_int_equal(run->res[0].tok[0].n_top, 4);
    struct al_validation v;
    assert_int_equal(al_golden_compare(s, rec, run, &v, &err), AL_OK);
    assert_false(v.conditions_match);
    for (size_t i = 0; i < v.n_cmp; i++)
        if (!al_verdict_ok(v.cmp[i].verdict))
            fail_msg("'%s': %s: %s", v.cmp[i].id, al_verdict_name(v.cmp[i].verdict), v.cmp[i].detail);
    al_validation_release(&v);
    al_golden_run_free(run);
    al_golden_run_free(rec);
    al_server_free(srv);
    al_serve_free(mm);
    al_suite_free(s);
    free(d);
}

/* ---- a stub server: the legacy shape and the refusals ---- */

static const char *stub_body;
static int stub_status;

static void stub(void *ud, const struct tu_req *rq, struct tu_reply *rp)
{
    rp->status = stub_status;
    rp->body = tu_strdup(stub_body);
}

static void test_golden_stub_server(void **state)
{
    struct tu_httpd *h = tu_httpd_start(stub, NULL);
    struct al_suite *s = NULL;
    struct al_err err = AL_ERR_INIT;
    const char *golden = "{\"prompts\":[{\"id\":\"p1\",\"prompt\":\"x\",\"max_tokens\":2}]}";
    assert_int_equal(al_suite_parse("stub", "{" FMT "}", strlen("{" FMT "}"), golden, strlen(golden), &s, &err),
                     AL_OK);
    s->top_k = 2;
    stub_status = 200;
    stub_body = "{\"system_fingerprint\":\"b4567-1a2b3c4\",\"choices\":[{\"text\":\"ab\",\"finish_reason\":\"length\","
                "\"logprobs\":{\"tokens\":[\"a\",\"b\"],\"token_logprobs\":[-0.1,-0.2],"
                "\"top_logprobs\":[{\"x\":-2.0,\"a\":-0.1,\"y\":-1.0},{\"b\":-0.2}]}}]}";
    struct al_golden_run *run = NULL;
    assert_int_equal(al_golden_run_server(h->url, s, &run, &err), AL_OK);
    assert_string_equal(run->cond.llama_commit, "1a2b3c4");
    const struct al_golden_result *r = &run->res[0];
    assert_string_equal(r->finish, "length");
    assert_int_equal(r->n_tok, 2);
    assert_int_equal(r->tok[0].id, -1); /* text only */
    assert_string_equal(r->tok[0].text, "a");
    assert_int_equal(r->tok[0].n_top, 2); /* top_k of three offered, sorted */
    assert_string_equal(r->tok[0].top[0].text, "a");
    assert_string_equal(r->tok[0].top[1].text, "y"); /* the two most likely of three, not the first two listed */
    assert_true(r->tok[0].top[0].logprob >= r->tok[0].top[1].logprob);
    assert_int_equal(r->tok[1].n_top, 1);
    assert_true(run->decode_tps < 0 && run->ttft_p95_ms < 0 && run->rss_peak_mb < 0);
    al_golden_run_free(run);

    /* airlock's fingerprint names no llama.cpp commit */
    stub_body = "{\"system_fingerprint\":\"fp_270cba1bd510\",\"choices\":[{\"finish_reason\":\"stop\","
                "\"logprobs\":{\"content\":[{\"id\":5,\"token\":\"a\",\"logprob\":-0.5,\"top_logprobs\":"
                "[{\"id\":5,\"token\":\"a\",\"logprob\":-0.5},{\"id\":6,\"token\":\"b\",\"logprob\":-1.5},"
                "{\"id\":7,\"token\":\"c\",\"logprob\":-2.5}]}]}}]}";
    run = NULL;
    assert_int_equal(al_golden_run_server(h->url, s, &run, &err), AL_OK);
    assert_string_equal(run->cond.llama_commit, "");
    assert_int_equal(run->res[0].tok[0].id, 5);
    assert_int_equal(run->res[0].tok[0].n_top, 2);
    assert_int_equal(run->res[0].tok[0].top[1].id, 6);
    al_golden_run_free(run);

    /* refusals: nothing handed out */
    struct {
        int status;
        const char *body;
        enum al_rc rc;
        const char *msg;
    } bad[] = {
        {500, "{\"error\":{\"message\":\"boom\"}}", AL_ERR_INVALID, "answered 500 for golden prompt 'p1'"},
        {200, "{\"choices\":[{\"text\":\"a\"}]}", AL_ERR_INVALID, "gave no logprobs for golden prompt 'p1'"},
        {200, "not json", AL_ERR_INVALID, "answered 200"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        stub_status = bad[i].status;
        stub_body = bad[i].body;
        run = NULL;
        al_err_clear(&err);
        assert_int_equal(al_golden_run_server(h->url, s, &run, &err), bad[i].rc);
        if (!strstr(err.msg, bad[i].msg))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].msg);
        assert_null(run);
    }
    char gone[64];
    snprintf(gone, sizeof gone, "%s", h->url);
    tu_httpd_stop(h);
    run = NULL;
    al_err_clear(&err);
    assert_int_equal(al_golden_run_server(gone, s, &run, &err), AL_ERR_IO);
    assert_null(run);
    al_err_clear(&err);
    struct al_golden_run *keep = (struct al_golden_run *)s; /* any non-NULL */
    run = keep;
    assert_int_equal(al_golden_run_server(gone, s, &run, &err), AL_ERR_USAGE);
    assert_ptr_equal(run, keep);
    al_suite_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_init_and_load),
        cmocka_unit_test(test_load_refusals),
        cmocka_unit_test(test_parse_from_memory),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_verdict_names),
        cmocka_unit_test(test_compare_verdicts),
        cmocka_unit_test(test_compare_missing),
        cmocka_unit_test(test_recording_roundtrip),
        cmocka_unit_test(test_golden_engine),
        cmocka_unit_test(test_golden_real_server),
        cmocka_unit_test(test_golden_stub_server),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
