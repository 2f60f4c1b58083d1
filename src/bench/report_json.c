/*
 * report_json.c: the bench report as JSON: machine and runtime, settings,
 * per cell the summary and every raw sample, health figures.
 */
#include "bench/bench_int.h"

#include <math.h>
#include <time.h>

#include "core/limits.h"
#include "core/time.h"
#include "core/version.h"
#include "health/health.h"

static json_t *num(double v) { return isfinite(v) && v >= 0 ? json_real(v) : json_null(); }

static json_t *int_list(const int *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

/* A level list: 1 to AL_BENCH_LEVELS_MAX entries, each in [1, hi]. */
static bool levels_ok(const int *v, int n, int hi)
{
    if (n < 1 || n > AL_BENCH_LEVELS_MAX)
        return false;
    for (int i = 0; i < n; i++)
        if (v[i] < 1 || v[i] > hi)
            return false;
    return true;
}

enum al_rc al_bench_opts_check(const struct al_bench_opts *o, const char *who, struct al_err *err)
{
    if (!o->texts || o->n_texts == 0)
        return al_err_set(err, AL_ERR_USAGE, "%s: no texts to cut prompts from", who);
    if (!levels_ok(o->concurrency, o->n_concurrency, AL_LIMIT_SEQS))
        return al_err_set(err, AL_ERR_USAGE, "%s: concurrency needs 1 to %d levels, each from 1 to %d", who,
                          AL_BENCH_LEVELS_MAX, AL_LIMIT_SEQS);
    if (!levels_ok(o->prompt_lengths, o->n_prompt_lengths, AL_LIMIT_PROMPT_TOKENS))
        return al_err_set(err, AL_ERR_USAGE, "%s: prompt lengths need 1 to %d levels, each from 1 to %d tokens", who,
                          AL_BENCH_LEVELS_MAX, AL_LIMIT_PROMPT_TOKENS);
    if (o->gen_tokens < 1)
        return al_err_set(err, AL_ERR_USAGE, "%s: gen_tokens must be at least 1", who);
    if (o->requests > AL_LIMIT_BENCH_REQUESTS)
        return al_err_set(err, AL_ERR_USAGE, "%s: %d requests a cell is over AL_LIMIT_BENCH_REQUESTS (%d)", who,
                          o->requests, AL_LIMIT_BENCH_REQUESTS);
    return AL_OK;
}

int al_bench_cell_requests(const struct al_bench_opts *o, int concurrency)
{
    if (o->requests > 0)
        return o->requests;
    return concurrency * 4 > 4 ? concurrency * 4 : 4;
}

/* The compute devices of this build and machine (engine/devices.c). */
static json_t *devices_json(void)
{
    struct al_engine_device d[8];
    int n = al_engine_devices(d, 8);
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:I}", "name", d[i].name, "description", d[i].description,
                                           "type", d[i].type, "mem_total", (json_int_t)d[i].mem_total));
    return a;
}

json_t *al_bench_report_new(const struct al_bench_opts *o, const char *kind)
{
    struct al_machine m;
    al_health_machine(&m);
    char when[32];
    al_time_format((int64_t)time(NULL), 0, AL_TIME_SECONDS, when, sizeof when);
    json_t *rep = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:i, s:s, s:s, s:I, s:s, s:s, s:i, s:s, s:i}, "
                            "s:{s:o, s:o, s:i, s:i}, s:[]}",
                            "format", AL_BENCH_FORMAT, "started_at", when, "kind", kind, "machine", "cpu_model",
                            m.cpu_model, "cpu_flags", m.cpu_flags, "n_cpus", m.n_cpus, "kernel", m.kernel, "hostname",
                            m.hostname, "mem_total", (json_int_t)m.mem_total, "llama_commit", al_engine_llama_commit(),
                            "system_info", al_engine_system_info(), "threads", o->threads, "airlock_version",
                            AIRLOCK_VERSION, "gpu_layers", o->gpu_layers, "settings", "concurrency",
                            int_list(o->concurrency, o->n_concurrency), "prompt_lengths",
                            int_list(o->prompt_lengths, o->n_prompt_lengths), "gen_tokens", o->gen_tokens, "requests",
                            o->requests, "cells");
    if (rep)
        json_object_set_new(json_object_get(rep, "machine"), "devices", devices_json());
    return rep;
}

static json_t *pcts(double *v, size_t n)
{
    if (n == 0)
        return json_pack("{s:n, s:n, s:n, s:n}", "p50", "p95", "p99", "mean");
    double mean = 0;
    for (size_t i = 0; i < n; i++)
        mean += v[i];
    mean /= (double)n;
    double p50 = al_stat_quantile(v, n, 0.5), p95 = al_stat_quantile(v, n, 0.95);
    double p99 = al_stat_quantile(v, n, 0.99);
    return json_pack("{s:o, s:o, s:o, s:o}", "p50", num(p50), "p95", num(p95), "p99", num(p99), "mean", num(mean));
}

json_t *al_bench_cell_json(const struct al_bcell *c)
{
    size_t n = (size_t)c->n, n_itl = 0;
    for (int i = 0; i < c->n; i++)
        n_itl += (size_t)c->s[i].n_itl;
    double *ttft = calloc(n + 1, sizeof *ttft), *lat = calloc(n + 1, sizeof *lat);
    double *pp = calloc(n + 1, sizeof *pp), *dec = calloc(n + 1, sizeof *dec);
    double *itl = calloc(n_itl + 1, sizeof *itl);
    json_t *samples = json_array();
    if (!ttft || !lat || !pp || !dec || !itl || !samples) {
        free(ttft), free(lat), free(pp), free(dec), free(itl);
        json_decref(samples);
        return NULL;
    }
    size_t k = 0, ok = 0, npp = 0, ndec = 0, nit = 0;
    double gen_total = 0;
    for (int i = 0; i < c->n; i++) {
        const struct al_bsample *s = &c->s[i];
        json_t *gaps = json_array();
        for (int g = 0; gaps && g < s->n_itl; g++)
            json_array_append_new(gaps, json_real(round(s->itl_ms[g] * 1000) / 1000));
        json_array_append_new(samples,
                              json_pack("{s:i, s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:s}", "n_prompt", s->n_prompt,
                                        "n_cached", s->n_cached, "n_gen", s->n_gen, "ttft_ms", num(s->ttft_ms),
                                        "prompt_ms", num(s->prompt_ms), "gen_ms", num(s->gen_ms), "latency_ms",
                                        num(s->latency_ms), "itl_ms", gaps ? gaps : json_array(), "error",
                                        s->error));
        if (s->error[0])
            continue;
        ok++;
        gen_total += s->n_gen;
        ttft[k] = s->ttft_ms;
        lat[k++] = s->latency_ms;
        if (s->prompt_ms > 0 && s->n_prompt - s->n_cached > 0)
            pp[npp++] = (s->n_prompt - s->n_cached) / (s->prompt_ms / 1e3);
        if (s->gen_ms > 0 && s->n_gen > 1)
            dec[ndec++] = (s->n_gen - 1) / (s->gen_ms / 1e3);
        for (int g = 0; g < s->n_itl; g++)
            itl[nit++] = s->itl_ms[g];
    }
    double agg = c->wall_ms > 0 ? gen_total / (c->wall_ms / 1e3) : -1;
    json_t *cell = json_pack("{s:i, s:i, s:i, s:i, s:o, s:{s:o, s:o, s:o, s:o, s:o, s:o}, s:o, s:o, s:o, s:o}",
                             "concurrency", c->concurrency, "prompt_length", c->prompt_length, "n_ok", (int)ok,
                             "n_errors", c->n - (int)ok, "wall_ms", num(c->wall_ms), "summary", "pp_tps",
                             num(al_stat_quantile(pp, npp, 0.5)), "decode_tps", num(al_stat_quantile(dec, ndec, 0.5)),
                             "aggregate_tps", num(agg), "ttft_ms", pcts(ttft, k), "itl_ms", pcts(itl, nit),
                             "latency_ms", pcts(lat, k), "cpu_util", num(c->cpu_util), "proc_util",
                             num(c->proc_util), "max_temp", num(c->max_temp), "samples", samples);
    free(ttft), free(lat), free(pp), free(dec), free(itl);
    return cell;
}

void al_bench_cell_progress(json_t *cell)
{
    json_t *s = json_object_get(cell, "summary");
    fprintf(stderr, "  c=%-3lld len=%-5lld pp %8.1f t/s  decode %8.1f t/s/stream  aggregate %8.1f t/s  "
                    "TTFT p50 %7.1f ms  p95 %7.1f ms%s\n",
            json_integer_value(json_object_get(cell, "concurrency")),
            json_integer_value(json_object_get(cell, "prompt_length")),
            json_number_value(json_object_get(s, "pp_tps")), json_number_value(json_object_get(s, "decode_tps")),
            json_number_value(json_object_get(s, "aggregate_tps")),
            json_number_value(json_object_get(json_object_get(s, "ttft_ms"), "p50")),
            json_number_value(json_object_get(json_object_get(s, "ttft_ms"), "p95")),
            json_integer_value(json_object_get(cell, "n_errors")) ? "  (errors)" : "");
}

void al_bench_report_finish(json_t *report, double wall_ms)
{
    struct al_health h;
    al_health_read(&h);
    json_t *temps = json_array();
    for (int i = 0; temps && i < h.n_temps; i++)
        json_array_append_new(temps, json_pack("{s:s, s:f}", "sensor", h.temps[i].name, "celsius", h.temps[i].celsius));
    double max_temp = -1;
    json_t *cell;
    size_t i;
    json_array_foreach(json_object_get(report, "cells"), i, cell) {
        double t = json_number_value(json_object_get(cell, "max_temp"));
        if (json_is_number(json_object_get(cell, "max_temp")) && t > max_temp)
            max_temp = t;
    }
    bool local = strcmp(json_string_value(json_object_get(report, "kind")), "engine") == 0;
    json_object_set_new(report, "health",
                        json_pack("{s:o, s:o, s:o, s:o}", "temperatures", temps ? temps : json_array(), "max_temp",
                                  num(max_temp), "rss_peak_mb",
                                  local ? num((double)h.rss_peak / (1024.0 * 1024.0)) : json_null(), "wall_ms",
                                  num(wall_ms)));
}

void al_bench_overall(json_t *report, double *decode_tps, double *ttft_p95_ms, double *rss_mb)
{
    json_t *cells = json_object_get(report, "cells"), *cell;
    size_t i, n = 0, nd = 0;
    long long cmin = -1;
    json_array_foreach(cells, i, cell) {
        long long c = json_integer_value(json_object_get(cell, "concurrency"));
        if (cmin < 0 || c < cmin)
            cmin = c;
        n += json_array_size(json_object_get(cell, "samples"));
    }
    double *ttft = calloc(n + 1, sizeof *ttft), *dec = calloc(n + 1, sizeof *dec);
    size_t nt = 0;
    json_array_foreach(cells, i, cell) {
        bool lowest = json_integer_value(json_object_get(cell, "concurrency")) == cmin;
        json_t *s;
        size_t k;
        json_array_foreach(json_object_get(cell, "samples"), k, s) {
            if (!ttft || !dec || json_string_length(json_object_get(s, "error")))
                continue;
            double g = json_number_value(json_object_get(s, "gen_ms"));
            long long ng = json_integer_value(json_object_get(s, "n_gen"));
            if (json_is_number(json_object_get(s, "ttft_ms")))
                ttft[nt++] = json_number_value(json_object_get(s, "ttft_ms"));
            if (lowest && g > 0 && ng > 1)
                dec[nd++] = (double)(ng - 1) / (g / 1e3);
        }
    }
    *decode_tps = nd ? al_stat_quantile(dec, nd, 0.5) : -1;
    *ttft_p95_ms = nt ? al_stat_quantile(ttft, nt, 0.95) : -1;
    json_t *rss = json_object_get(json_object_get(report, "health"), "rss_peak_mb");
    *rss_mb = json_is_number(rss) ? json_number_value(rss) : -1;
    free(ttft);
    free(dec);
}
