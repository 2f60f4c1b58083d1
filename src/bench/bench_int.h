/* bench_int.h: shared by the files of src/bench only. */
#ifndef AL_BENCH_INT_H
#define AL_BENCH_INT_H

#include "bench/bench.h"

/* One request as measured; times in ms, < 0 when unknown. */
struct al_bsample {
    int n_prompt, n_gen;
    int n_cached;             /* prompt tokens reused from the KV cache, not computed */
    double ttft_ms, prompt_ms, gen_ms, latency_ms;
    double *itl_ms;           /* gaps between streamed tokens */
    int n_itl;
    char error[160];
};

/* One cell's measurements, turned into JSON by al_bench_cell_json. */
struct al_bcell {
    int concurrency, prompt_length;
    struct al_bsample *s;
    int n;
    double wall_ms;
    double cpu_util, proc_util, max_temp; /* < 0 when unknown */
};

/* The report's skeleton: format, time, machine, runtime, settings. */
json_t *al_bench_report_new(const struct al_bench_opts *o, const char *kind);

/* The cell as JSON (summary and raw samples); frees nothing. */
json_t *al_bench_cell_json(const struct al_bcell *c);

/* Checks the options both runners share (see bench.h); who names the
 * function in the message. AL_ERR_USAGE when they cannot run. */
enum al_rc al_bench_opts_check(const struct al_bench_opts *o, const char *who, struct al_err *err);

/* The requests of a cell: o->requests or 4 x concurrency, at least 4. */
int al_bench_cell_requests(const struct al_bench_opts *o, int concurrency);

/* Prints a cell's one-line summary on stderr. */
void al_bench_cell_progress(json_t *cell);

/* Adds the health figures read at the end of a run (temperatures, RSS). */
void al_bench_report_finish(json_t *report, double wall_ms);

#endif
