/*
 * targets.c: what a grid needs of a model (its context) and the outcome of
 * the suite's targets recorded in the report. The targets are checked by
 * src/suite (al_targets_check), which owns their rule; this file only writes
 * the outcome into the report, so that a saved report says what it met.
 */
#include "bench/bench_int.h"

void al_bench_extent(const struct al_bench_opts *o, int *max_concurrency, int *max_prompt)
{
    *max_concurrency = 1;
    *max_prompt = 1;
    for (int i = 0; i < o->n_concurrency; i++)
        *max_concurrency = o->concurrency[i] > *max_concurrency ? o->concurrency[i] : *max_concurrency;
    for (int i = 0; i < o->n_prompt_lengths; i++)
        *max_prompt = o->prompt_lengths[i] > *max_prompt ? o->prompt_lengths[i] : *max_prompt;
}

enum al_rc al_bench_fits(const struct al_bench_opts *o, int n_ctx_train, struct al_err *err)
{
    int max_c, max_len;
    al_bench_extent(o, &max_c, &max_len);
    if (n_ctx_train > 0 && max_len + o->gen_tokens + 8 > n_ctx_train)
        return al_err_set(err, AL_ERR_USAGE, "a prompt of %d tokens and %d generated do not fit the model's context of %d",
                          max_len, o->gen_tokens, n_ctx_train);
    return AL_OK;
}

void al_bench_record_targets(json_t *report, double decode_tps, double ttft_p95_ms, double rss_mb,
                             const struct al_bench_target *t, int n)
{
    json_t *tj = json_array();
    for (int i = 0; tj && i < n; i++)
        json_array_append_new(tj, json_pack("{s:s, s:f, s:o, s:b}", "name", t[i].name, "target", t[i].target,
                                            "measured", t[i].measured >= 0 ? json_real(t[i].measured) : json_null(),
                                            "met", t[i].met));
    json_object_set_new(report, "targets", tj ? tj : json_array());
    json_object_set_new(report, "overall", json_pack("{s:f, s:f, s:o}", "decode_tps", decode_tps, "ttft_p95_ms",
                                                     ttft_p95_ms, "rss_peak_mb",
                                                     rss_mb >= 0 ? json_real(rss_mb) : json_null()));
}
