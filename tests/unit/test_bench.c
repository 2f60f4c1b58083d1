/*
 * Unit tests of src/bench: the order statistics, options refused before
 * anything runs, a real grid on the fixture model in this process and
 * against airlock's own server on loopback (the report's shape and the
 * figures al_bench_overall derives from its raw samples), the HTML page
 * (self-contained, escaped, capped) and the comparison of two reports
 * (a regression flagged beyond the threshold and the noise only).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "testutil.h"
#include "tu_model.h"
#include "bench/bench.h"
#include "core/limits.h"

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

static void test_stats(void **state)
{
    double v[] = {3, 1, 2};
    assert_true(al_stat_quantile(v, 3, 0.5) == 2);
    assert_true(v[0] == 1 && v[1] == 2 && v[2] == 3); /* sorted in place */
    double w[] = {4, 1, 3, 2};
    assert_true(al_stat_quantile(w, 4, 0.5) == 2.5); /* interpolated */
    assert_true(al_stat_quantile(w, 4, 0) == 1);
    assert_true(al_stat_quantile(w, 4, 1) == 4);
    assert_true(fabs(al_stat_quantile(w, 4, 0.95) - 3.85) < 1e-12);
    double one[] = {7};
    assert_true(al_stat_quantile(one, 1, 0.99) == 7);
    assert_true(isnan(al_stat_quantile(NULL, 0, 0.5)));
    double m[] = {1, 2, 3, 4, 100};
    assert_true(al_stat_mad(m, 5) == 1); /* |x - 3|: 2 1 0 1 97 */
    assert_true(isnan(al_stat_mad(NULL, 0)));
}

static const char *const texts[] = {"Once upon a time, there was a little girl named Lily. She loved to play "};

static struct al_bench_opts grid(void)
{
    struct al_bench_opts o;
    memset(&o, 0, sizeof o);
    o.concurrency[0] = 1;
    o.concurrency[1] = 2;
    o.n_concurrency = 2;
    o.prompt_lengths[0] = 1;
    o.prompt_lengths[1] = 16;
    o.n_prompt_lengths = 2;
    o.gen_tokens = 4;
    o.requests = 0;
    o.threads = 2;
    o.texts = texts;
    o.n_texts = 1;
    o.model_ref = "stories:1.0";
    return o;
}

static struct al_engine_model *load_fixture(int n_seq)
{
    struct al_engine_model_params mp = al_engine_model_params_default();
    mp.threads = 2;
    mp.n_ctx = 128;
    mp.n_seq = n_seq;
    struct al_engine_model *m = NULL;
    struct al_err err = AL_ERR_INIT;
    if (al_engine_model_load(tu_fixture("stories260K.gguf"), TU_FIXTURE_DIGEST, &mp, &m, &err))
        fail_msg("load: %s", err.msg);
    return m;
}

/* Options that cannot run are refused at once by both runners; *out stays. */
static void test_bad_options(void **state)
{
    struct al_engine_model *m = load_fixture(2);
    struct al_err err = AL_ERR_INIT;
    json_t *out = NULL;
    struct al_bench_opts o = grid();
    assert_int_equal(al_bench_engine(NULL, &o, &out, &err), AL_ERR_USAGE);
    al_err_clear(&err);
    assert_int_equal(al_bench_engine(m, NULL, &out, &err), AL_ERR_USAGE);
    json_t *keep = json_object();
    out = keep;
    al_err_clear(&err);
    assert_int_equal(al_bench_engine(m, &o, &out, &err), AL_ERR_USAGE);
    assert_ptr_equal(out, keep);
    al_err_clear(&err);
    assert_int_equal(al_bench_server("http://127.0.0.1:1", &o, &out, &err), AL_ERR_USAGE);
    assert_ptr_equal(out, keep);
    json_decref(keep);

    struct al_bench_opts bad[9];
    for (int i = 0; i < 9; i++)
        bad[i] = grid();
    bad[0].n_texts = 0;
    bad[1].gen_tokens = 0;
    bad[2].concurrency[1] = 0;     /* nothing could ever be in flight */
    bad[3].n_concurrency = 0;
    bad[4].n_concurrency = AL_BENCH_LEVELS_MAX + 1;
    bad[5].n_prompt_lengths = 0;
    bad[6].prompt_lengths[0] = 0;
    bad[7].requests = AL_LIMIT_BENCH_REQUESTS + 1;
    bad[8].concurrency[0] = -4;
    for (int i = 0; i < 9; i++) {
        out = NULL;
        al_err_clear(&err);
        if (al_bench_engine(m, &bad[i], &out, &err) != AL_ERR_USAGE)
            fail_msg("engine, case %d: '%s'", i, err.msg);
        assert_null(out);
        al_err_clear(&err);
        if (al_bench_server("http://127.0.0.1:1", &bad[i], &out, &err) != AL_ERR_USAGE)
            fail_msg("server, case %d: '%s'", i, err.msg);
        assert_null(out);
    }
    al_engine_model_free(m);
}

/* The figures al_bench_overall reports, recomputed from the raw samples. */
static void check_overall(json_t *rep, bool local)
{
    double dec = 0, ttft = 0, rss = 0;
    al_bench_overall(rep, &dec, &ttft, &rss);
    double d[256], t[256];
    size_t nd = 0, nt = 0, i, k;
    json_t *cell, *s;
    json_array_foreach(json_object_get(rep, "cells"), i, cell) json_array_foreach(json_object_get(cell, "samples"), k,
                                                                                  s)
    {
        if (json_string_length(json_object_get(s, "error")))
            continue;
        assert_true(nt < 256);
        t[nt++] = json_number_value(json_object_get(s, "ttft_ms"));
        if (json_integer_value(json_object_get(cell, "concurrency")) == 1)
            d[nd++] = (double)(json_integer_value(json_object_get(s, "n_gen")) - 1) /
                      (json_number_value(json_object_get(s, "gen_ms")) / 1e3);
    }
    assert_true(nd > 0 && nt > 0);
    assert_true(dec == al_stat_quantile(d, nd, 0.5));
    assert_true(ttft == al_stat_quantile(t, nt, 0.95));
    if (local)
        assert_true(rss == json_number_value(json_object_get(json_object_get(rep, "health"), "rss_peak_mb")) &&
                    rss > 0);
    else
        assert_true(rss == -1); /* a server's memory cannot be seen from its client */
}

/* Checks the shape every report shares; requests per cell as documented. */
static void check_cells(json_t *rep, const struct al_bench_opts *o, int gen, bool every_gap)
{
    json_t *cells = json_object_get(rep, "cells");
    assert_int_equal(json_array_size(cells), (size_t)(o->n_concurrency * o->n_prompt_lengths));
    size_t i = 0;
    for (int l = 0; l < o->n_prompt_lengths; l++)
        for (int c = 0; c < o->n_concurrency; c++, i++) {
            json_t *cell = json_array_get(cells, i);
            int conc = o->concurrency[c];
            int want = o->requests > 0 ? o->requests : (4 * conc > 4 ? 4 * conc : 4);
            assert_int_equal(json_integer_value(json_object_get(cell, "concurrency")), conc);
            assert_int_equal(json_integer_value(json_object_get(cell, "prompt_length")), o->prompt_lengths[l]);
            assert_int_equal(json_integer_value(json_object_get(cell, "n_ok")), want);
            assert_int_equal(json_integer_value(json_object_get(cell, "n_errors")), 0);
            json_t *samples = json_object_get(cell, "samples"), *s;
            assert_int_equal(json_array_size(samples), (size_t)want);
            size_t k;
            json_array_foreach(samples, k, s) {
                assert_string_equal(json_string_value(json_object_get(s, "error")), "");
                assert_int_equal(json_integer_value(json_object_get(s, "n_gen")), gen);
                /* a server may pack tokens into one event: fewer gaps, never more */
                size_t gaps = json_array_size(json_object_get(s, "itl_ms"));
                assert_true(every_gap ? gaps == (size_t)gen - 1 : gaps <= (size_t)gen - 1);
                double tt = json_number_value(json_object_get(s, "ttft_ms"));
                assert_true(tt >= 0 && json_number_value(json_object_get(s, "latency_ms")) >= tt);
            }
            json_t *sum = json_object_get(cell, "summary"), *q = json_object_get(sum, "ttft_ms");
            assert_true(json_number_value(json_object_get(sum, "decode_tps")) > 0);
            assert_true(json_number_value(json_object_get(sum, "aggregate_tps")) > 0);
            assert_true(json_number_value(json_object_get(q, "p50")) <= json_number_value(json_object_get(q, "p95")));
            assert_true(json_number_value(json_object_get(q, "p95")) <= json_number_value(json_object_get(q, "p99")));
        }
}

static void check_html(json_t *rep)
{
    struct al_buf b;
    al_buf_init(&b, 8u << 20);
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_bench_html(rep, &b, &err), AL_OK);
    const char *h = al_buf_str(&b);
    assert_int_equal(strncmp(h, "<!DOCTYPE html>", 15), 0);
    assert_non_null(strstr(h, "</html>\n"));
    const char *ids[] = {"id=\"chart-latency\"", "id=\"chart-tps\"", "id=\"chart-ttft\""};
    for (int i = 0; i < 3; i++) {
        const char *c = strstr(h, ids[i]);
        assert_non_null(c);
        const char *end = strstr(c, "</svg>");
        const char *mark = strstr(c, "class=\"mark");
        assert_true(mark && mark < end); /* something plotted in each chart */
    }
    /* self-contained: no external script, style, font or image */
    assert_null(strstr(h, "src="));
    assert_null(strstr(h, "href="));
    assert_null(strstr(h, "url("));
    const char *ref = json_string_value(json_object_get(json_object_get(rep, "model"), "ref"));
    for (const char *p = h; (p = strstr(p, "http")) != NULL; p++)
        assert_true(strncmp(p, "http://www.w3.org/2000/svg", 26) == 0 || strncmp(p, ref, strlen(ref)) == 0);
    al_buf_release(&b);
}

static void test_engine_grid(void **state)
{
    struct al_engine_model *m = load_fixture(2);
    struct al_bench_opts o = grid();
    json_t *rep = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_bench_engine(m, &o, &rep, &err), AL_OK);
    assert_string_equal(json_string_value(json_object_get(rep, "format")), AL_BENCH_FORMAT);
    assert_string_equal(json_string_value(json_object_get(rep, "kind")), "engine");
    json_t *model = json_object_get(rep, "model");
    assert_string_equal(json_string_value(json_object_get(model, "ref")), "stories:1.0");
    assert_string_equal(json_string_value(json_object_get(model, "digest")), TU_FIXTURE_DIGEST);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(rep, "machine"), "threads")), 2);
    check_cells(rep, &o, 4, true);
    /* in-process: every prompt token computed, none from the cache; length 1 is BOS alone */
    json_t *s0 = json_array_get(json_object_get(json_array_get(json_object_get(rep, "cells"), 0), "samples"), 0);
    assert_int_equal(json_integer_value(json_object_get(s0, "n_prompt")), 1);
    json_t *cell, *s;
    size_t i, k;
    json_array_foreach(json_object_get(rep, "cells"), i, cell) json_array_foreach(json_object_get(cell, "samples"), k,
                                                                                  s)
        assert_int_equal(json_integer_value(json_object_get(s, "n_cached")), 0);
    check_overall(rep, true);
    check_html(rep);

    /* a report compared with itself: no regression, every figure listed */
    struct al_buf b;
    al_buf_init(&b, 1 << 20);
    int regs = -1;
    assert_int_equal(al_bench_compare(rep, rep, 5, &b, &regs, &err), AL_OK);
    assert_int_equal(regs, 0);
    assert_null(strstr(al_buf_str(&b), "REGRESSION"));
    assert_non_null(strstr(al_buf_str(&b), "0 regressions beyond 5.0% and the noise"));
    int rows = 0;
    for (const char *p = al_buf_str(&b); (p = strstr(p, "decode_tps")) != NULL; p++)
        rows++;
    assert_int_equal(rows, 4);
    al_buf_release(&b);
    json_decref(rep);
    al_engine_model_free(m);
}

static void test_server_grid(void **state)
{
    char home[4096], url[64];
    snprintf(home, sizeof home, "%s/home", g_dir);
    tu_store_with_fixture(home, "stories:1.0");
    struct al_serve_models *mm = NULL;
    struct al_server *srv = NULL;
    tu_serve(home, "stories", &mm, &srv, url);
    struct al_bench_opts o = grid();
    o.prompt_lengths[0] = 8;
    o.n_prompt_lengths = 1;
    o.requests = 3;
    json_t *rep = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_bench_server(url, &o, &rep, &err), AL_OK);
    assert_string_equal(json_string_value(json_object_get(rep, "kind")), "server");
    assert_string_equal(json_string_value(json_object_get(json_object_get(rep, "model"), "ref")), url);
    /* airlock serve has /tokenize and /detokenize: prompts are cut by its tokenizer */
    assert_string_equal(json_string_value(json_object_get(rep, "prompt_tokens_from")), "server tokenizer");
    check_cells(rep, &o, 4, false);
    check_overall(rep, false);
    check_html(rep);
    json_decref(rep);
    al_server_free(srv);
    al_serve_free(mm);

    /* the server gone: the run completes, every request a failed sample */
    rep = NULL;
    o.n_concurrency = 1;
    o.n_prompt_lengths = 1;
    o.requests = 2;
    assert_int_equal(al_bench_server(url, &o, &rep, &err), AL_OK);
    json_t *cell = json_array_get(json_object_get(rep, "cells"), 0);
    assert_int_equal(json_integer_value(json_object_get(cell, "n_ok")), 0);
    assert_int_equal(json_integer_value(json_object_get(cell, "n_errors")), 2);
    assert_string_equal(json_string_value(json_object_get(rep, "prompt_tokens_from")), "words (approximate)");
    double dec = 0, ttft = 0, rss = 0;
    al_bench_overall(rep, &dec, &ttft, &rss);
    assert_true(dec == -1 && ttft == -1 && rss == -1);
    json_decref(rep);
}

/* ---- reports as saved files: external input ---- */

/* A report with one cell of n samples whose decode tokens/s are base +- spread. */
static json_t *report(const char *ref, int conc, int len, double base, double spread, int n)
{
    json_t *samples = json_array();
    for (int i = 0; i < n; i++) {
        double tps = base + spread * ((i % 3) - 1);
        double gen_ms = 9 / tps * 1e3; /* 10 tokens: 9 gaps */
        json_array_append_new(samples, json_pack("{s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:[f,f], s:s}", "n_prompt", 16,
                                                 "n_cached", 0, "n_gen", 10, "ttft_ms", 20.0, "prompt_ms", 20.0,
                                                 "gen_ms", gen_ms, "latency_ms", 20.0 + gen_ms, "itl_ms", 5.0, 5.0,
                                                 "error", ""));
    }
    /* a failed request's figures never count */
    json_array_append_new(samples, json_pack("{s:i, s:i, s:f, s:f, s:f, s:s}", "n_prompt", 16, "n_gen", 10, "ttft_ms",
                                             1e9, "gen_ms", 1e-3, "latency_ms", 1e9, "error", "timeout"));
    json_t *cell = json_pack("{s:i, s:i, s:i, s:i, s:o, s:o}", "concurrency", conc, "prompt_length", len, "n_ok", n,
                             "n_errors", 1, "summary", json_object(), "samples", samples);
    return json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:[o]}", "format", AL_BENCH_FORMAT, "kind",
                     "engine", "started_at", "2025-01-01T00:00:00Z", "model", "ref", ref, "digest", "sha256:00",
                     "machine", "cpu_model", "cpu <x> & \"y\"", "llama_commit", "abc", "cells", cell);
}

static int compare(json_t *a, json_t *b, double pct, char **text)
{
    struct al_buf out;
    al_buf_init(&out, 1 << 20);
    struct al_err err = AL_ERR_INIT;
    int regs = -1;
    if (al_bench_compare(a, b, pct, &out, &regs, &err) != AL_OK)
        fail_msg("compare: %s", err.msg);
    *text = al_buf_take(&out);
    return regs;
}

static void test_compare(void **state)
{
    char *text = NULL;
    json_t *a = report("a", 1, 16, 100, 1, 9);
    /* 20% slower, well beyond the samples' spread: a regression */
    json_t *b = report("b", 1, 16, 80, 1, 9);
    assert_int_equal(compare(a, b, 5, &text), 2); /* decode tokens/s, and so request latency */
    assert_non_null(strstr(text, "decode_tps"));
    const char *line = strstr(text, "decode_tps");
    const char *eol = strchr(line, '\n');
    const char *flag = strstr(line, "REGRESSION");
    assert_true(flag && flag < eol);
    assert_non_null(strstr(text, "-20.0%"));
    free(text);
    /* B faster than A: an improvement is never a regression */
    assert_int_equal(compare(b, a, 5, &text), 0);
    free(text);
    json_decref(b);
    /* the same 20%, within the samples' own spread: noise, not flagged */
    b = report("b", 1, 16, 80, 40, 9);
    assert_int_equal(compare(a, b, 5, &text), 0);
    free(text);
    json_decref(b);
    /* 3% slower, under the 5% threshold: not flagged */
    b = report("b", 1, 16, 97, 0, 9);
    json_t *a0 = report("a", 1, 16, 100, 0, 9);
    assert_int_equal(compare(a0, b, 5, &text), 0);
    free(text);
    assert_int_equal(compare(a0, b, 2, &text), 2); /* 3% and 2.5% */
    free(text);
    json_decref(b);
    json_decref(a0);

    /* no cell in common */
    b = report("b", 2, 16, 100, 1, 9);
    struct al_buf out;
    al_buf_init(&out, 1 << 20);
    struct al_err err = AL_ERR_INIT;
    int regs = -1;
    assert_int_equal(al_bench_compare(a, b, 5, &out, &regs, &err), AL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "no cell in common"));
    assert_int_equal(regs, 0);
    al_buf_release(&out);
    json_decref(b);
    /* over the output's cap */
    al_buf_init(&out, 64);
    al_err_clear(&err);
    assert_int_equal(al_bench_compare(a, a, 5, &out, &regs, &err), AL_ERR_LIMIT);
    assert_true(out.len <= 64);
    al_buf_release(&out);
    json_decref(a);
}

static void test_html_hostile_report(void **state)
{
    json_t *r = report("<script>alert(1)</script>", 1, 16, 100, 1, 5);
    struct al_buf b;
    al_buf_init(&b, 1 << 20);
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_bench_html(r, &b, &err), AL_OK);
    const char *h = al_buf_str(&b);
    assert_null(strstr(h, "<script>alert"));
    assert_non_null(strstr(h, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_non_null(strstr(h, "cpu &lt;x&gt; &amp; &quot;y&quot;"));
    al_buf_release(&b);
    json_decref(r);
    /* a report with nothing in it still renders, with empty charts */
    json_t *empty = json_object();
    al_buf_init(&b, 1 << 20);
    assert_int_equal(al_bench_html(empty, &b, &err), AL_OK);
    assert_non_null(strstr(al_buf_str(&b), "id=\"chart-tps\""));
    assert_null(strstr(al_buf_str(&b), "class=\"mark"));
    al_buf_release(&b);
    /* the page over the caller's cap: refused, naming the cap */
    al_buf_init(&b, 100);
    assert_int_equal(al_bench_html(empty, &b, &err), AL_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "over its cap of 100 bytes"));
    al_buf_release(&b);
    json_decref(empty);
}

/* What a grid needs of the model's context, and the targets' outcome as the
 * report records it (moved out of the CLI: same figures, same JSON). */
static void test_fits_and_targets(void **state)
{
    struct al_bench_opts o = {.concurrency = {1, 4, 2}, .n_concurrency = 3, .prompt_lengths = {16, 100},
                              .n_prompt_lengths = 2, .gen_tokens = 20};
    int c = 0, len = 0;
    al_bench_extent(&o, &c, &len);
    assert_int_equal(c, 4);
    assert_int_equal(len, 100);
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_bench_fits(&o, 0, &err), AL_OK);   /* unknown context */
    assert_int_equal(al_bench_fits(&o, 128, &err), AL_OK); /* 100 + 20 + 8 */
    assert_int_equal(al_bench_fits(&o, 127, &err), AL_ERR_USAGE);
    assert_string_equal(err.msg, "a prompt of 100 tokens and 20 generated do not fit the model's context of 127");

    json_t *rep = json_object();
    struct al_bench_target t[2] = {{"min_decode_tps", 100, 85.5, false}, {"max_rss_mb", 512, -1, true}};
    al_bench_record_targets(rep, 85.5, 12.25, -1, t, 2);
    char *s = json_dumps(rep, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"overall\":{\"decode_tps\":85.5,\"rss_peak_mb\":null,\"ttft_p95_ms\":12.25},"
                           "\"targets\":[{\"measured\":85.5,\"met\":false,\"name\":\"min_decode_tps\",\"target\":100.0},"
                           "{\"measured\":null,\"met\":true,\"name\":\"max_rss_mb\",\"target\":512.0}]}");
    free(s);
    json_decref(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_fits_and_targets),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_engine_grid),
        cmocka_unit_test(test_server_grid),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_html_hostile_report),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
