/*
 * compare.c: two bench reports, cell by cell. Each figure is the median of
 * the cell's raw samples; the noise of a figure is three times the combined
 * median absolute deviation of both sides' samples, relative to A's median.
 * A change is a regression when it is worse than both the threshold and the
 * noise: a figure that moved within the spread of its own samples is not
 * flagged, however large the percentage.
 */
#include "bench/bench_int.h"

#include <math.h>

struct metric {
    const char *name;
    bool higher_better;
};

static const struct metric metrics[] = {
    {"pp_tps", true}, {"decode_tps", true}, {"ttft_ms", false}, {"latency_ms", false}, {"itl_ms", false}};

/* The per-sample values of a metric in a cell; count in *n (array malloc'd). */
static double *values(json_t *cell, const char *metric, size_t *n)
{
    json_t *samples = json_object_get(cell, "samples"), *s;
    size_t cap = 0, i;
    json_array_foreach(samples, i, s) cap += 1 + json_array_size(json_object_get(s, "itl_ms"));
    double *v = calloc(cap + 1, sizeof *v);
    *n = 0;
    if (!v)
        return NULL;
    json_array_foreach(samples, i, s) {
        if (json_string_length(json_object_get(s, "error")))
            continue;
        double np = json_number_value(json_object_get(s, "n_prompt")), ng = json_number_value(json_object_get(s, "n_gen"));
        double pm = json_number_value(json_object_get(s, "prompt_ms")), gm = json_number_value(json_object_get(s, "gen_ms"));
        if (strcmp(metric, "pp_tps") == 0) {
            if (pm > 0 && np > 0)
                v[(*n)++] = np / (pm / 1e3);
        } else if (strcmp(metric, "decode_tps") == 0) {
            if (gm > 0 && ng > 1)
                v[(*n)++] = (ng - 1) / (gm / 1e3);
        } else if (strcmp(metric, "itl_ms") == 0) {
            json_t *g;
            size_t k;
            json_array_foreach(json_object_get(s, "itl_ms"), k, g) v[(*n)++] = json_number_value(g);
        } else if (json_is_number(json_object_get(s, metric))) {
            v[(*n)++] = json_number_value(json_object_get(s, metric));
        }
    }
    return v;
}

static json_t *find(json_t *cells, json_t *like)
{
    size_t i;
    json_t *c;
    json_array_foreach(cells, i, c) if (json_integer_value(json_object_get(c, "concurrency")) ==
                                            json_integer_value(json_object_get(like, "concurrency")) &&
                                        json_integer_value(json_object_get(c, "prompt_length")) ==
                                            json_integer_value(json_object_get(like, "prompt_length"))) return c;
    return NULL;
}

enum al_rc al_bench_compare(json_t *a, json_t *b, double min_pct, struct al_buf *out, int *regressions,
                            struct al_err *err)
{
    *regressions = 0;
    json_t *ma = json_object_get(a, "model"), *mb = json_object_get(b, "model");
    al_buf_addf(out, "A: %s %s, %s, llama.cpp %s, %s\n", json_string_value(json_object_get(a, "started_at")),
                json_string_value(json_object_get(ma, "ref")), json_string_value(json_object_get(ma, "digest")),
                json_string_value(json_object_get(json_object_get(a, "machine"), "llama_commit")),
                json_string_value(json_object_get(json_object_get(a, "machine"), "cpu_model")));
    al_buf_addf(out, "B: %s %s, %s, llama.cpp %s, %s\n", json_string_value(json_object_get(b, "started_at")),
                json_string_value(json_object_get(mb, "ref")), json_string_value(json_object_get(mb, "digest")),
                json_string_value(json_object_get(json_object_get(b, "machine"), "llama_commit")),
                json_string_value(json_object_get(json_object_get(b, "machine"), "cpu_model")));
    al_buf_addf(out, "%-4s %-6s %-11s %12s %12s %9s %9s\n", "in", "prompt", "figure", "A (median)", "B (median)",
                "change", "noise");
    json_t *ca = json_object_get(a, "cells"), *cell;
    size_t i;
    int compared = 0;
    json_array_foreach(ca, i, cell) {
        json_t *other = find(json_object_get(b, "cells"), cell);
        if (!other)
            continue;
        for (size_t m = 0; m < sizeof metrics / sizeof metrics[0]; m++) {
            size_t na = 0, nb = 0;
            double *va = values(cell, metrics[m].name, &na), *vb = values(other, metrics[m].name, &nb);
            if (!va || !vb) {
                free(va);
                free(vb);
                return al_err_set(err, AL_ERR_NOMEM, "out of memory");
            }
            if (na && nb) {
                double meda = al_stat_quantile(va, na, 0.5), medb = al_stat_quantile(vb, nb, 0.5);
                double mada = al_stat_mad(va, na), madb = al_stat_mad(vb, nb);
                double change = meda != 0 ? 100 * (medb - meda) / fabs(meda) : 0;
                double noise = meda != 0 ? 300 * sqrt(mada * mada + madb * madb) / fabs(meda) : 0;
                double worse = metrics[m].higher_better ? -change : change;
                bool reg = worse > min_pct && worse > noise;
                *regressions += reg;
                compared++;
                al_buf_addf(out, "%-4lld %-6lld %-11s %12.2f %12.2f %+8.1f%% %8.1f%%%s\n",
                            json_integer_value(json_object_get(cell, "concurrency")),
                            json_integer_value(json_object_get(cell, "prompt_length")), metrics[m].name, meda, medb,
                            change, noise, reg ? "  REGRESSION" : "");
            }
            free(va);
            free(vb);
        }
    }
    if (!compared)
        return al_err_set(err, AL_ERR_INVALID, "the two reports have no cell in common (same concurrency and prompt length)");
    al_buf_addf(out, "%d regression%s beyond %.1f%% and the noise\n", *regressions, *regressions == 1 ? "" : "s",
                min_pct);
    if (al_buf_failed(out))
        return al_err_set(err, AL_ERR_LIMIT, "the comparison is over its output cap");
    return AL_OK;
}
