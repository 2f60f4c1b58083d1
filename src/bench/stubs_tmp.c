#include "bench/bench_int.h"
enum al_rc al_bench_server(const char *url, const struct al_bench_opts *o, json_t **out, struct al_err *err) { return al_err_set(err, AL_ERR_USAGE, "todo"); }
