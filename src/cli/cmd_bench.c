/*
 * cmd_bench.c: airlock bench REF | --server URL, and --compare A.json B.json.
 * Prints a line per cell, writes the JSON and HTML reports, checks the
 * suite's targets (exit 1 naming each one missed and the measured value).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench/bench.h"
#include "cli/cli.h"
#include "cli/cli_util.h"
#include "cli/model_ref.h"
#include "core/fs.h"
#include "suite/suite.h"

int al_cmd_bench(int argc, char **argv);

static void usage(void)
{
    printf("usage: airlock bench REF [options]\n"
           "       airlock bench --server URL [options]\n"
           "       airlock bench --compare A.json B.json\n\n"
           "Measures prompt processing and decode tokens/s, time to first token,\n"
           "inter-token and request latency (p50/p95/p99), peak memory, CPU use and\n"
           "temperatures, over a grid of concurrency levels and prompt lengths, in this\n"
           "process (REF: a store reference or a GGUF file) or against a running\n"
           "OpenAI-compatible server (streaming /v1/completions). Then checks the\n"
           "suite's targets: exits 1 naming each target missed and the measured value.\n\n"
           "  --suite DIR               settings and targets from DIR/suite.json (default: the\n"
           "                            suite stored with REF, if it has one)\n"
           "  --concurrency 1,2,4       concurrency levels (requests in flight)\n"
           "  --prompt-lengths 16,512   prompt lengths in tokens\n"
           "  --gen-tokens N            tokens generated per request (default 64)\n"
           "  --requests N              requests per cell (default 4 x concurrency)\n"
           "  -t, --threads N           CPU threads (default 2)\n"
           "  -g, --gpu-layers N        layers on the GPU, where the build has a GPU backend\n"
           "                            (make vulkan) and the machine a device (default 0)\n"
           "  --json OUT                the report with every raw sample\n"
           "  --html OUT                a self-contained HTML report with charts\n"
           "  --from REPORT.json        render --html from a saved report, run nothing\n"
           "  --compare A.json B.json   show B against A per cell; exits 1 when a figure\n"
           "                            regressed beyond --threshold percent and the noise\n"
           "  --threshold PCT           (default 5)\n");
}

static int write_text(const char *path, const char *text, size_t len)
{
    struct al_err err = AL_ERR_INIT;
    if (al_fs_write_atomic(path, text, len, &err))
        return al_cli_fail(&err);
    return 0;
}

static int load_report(const char *path, json_t **out)
{
    char *data = NULL;
    size_t len = 0;
    struct al_err err = AL_ERR_INIT;
    if (al_fs_read_file(path, AL_LIMIT_SUITE_FILE * 4, &data, &len, &err))
        return al_cli_fail(&err);
    json_error_t je;
    *out = json_loadb(data, len, 0, &je);
    free(data);
    const char *fmt = json_string_value(json_object_get(*out, "format"));
    if (!*out || !fmt || strcmp(fmt, AL_BENCH_FORMAT) != 0) {
        json_decref(*out);
        *out = NULL;
        al_err_set(&err, AL_ERR_INVALID, "'%s' is not a bench report (format \"%s\")", path, AL_BENCH_FORMAT);
        return al_cli_fail(&err);
    }
    return 0;
}

static int compare(const char *a_path, const char *b_path, double threshold)
{
    json_t *a = NULL, *b = NULL;
    int status = load_report(a_path, &a);
    if (!status)
        status = load_report(b_path, &b);
    if (!status) {
        struct al_buf out;
        al_buf_init(&out, 1u << 20);
        struct al_err err = AL_ERR_INIT;
        int regressions = 0;
        if (al_bench_compare(a, b, threshold, &out, &regressions, &err)) {
            status = al_cli_fail(&err);
        } else {
            fputs(al_buf_str(&out), stdout);
            status = regressions ? AL_EXIT_FAILURE : AL_EXIT_OK;
        }
        al_buf_release(&out);
    }
    json_decref(a);
    json_decref(b);
    return status;
}

static int outputs(json_t *rep, const char *json_out, const char *html_out)
{
    int status = 0;
    if (json_out) {
        char *text = json_dumps(rep, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        status = text ? write_text(json_out, text, strlen(text)) : AL_EXIT_INTERNAL;
        free(text);
        if (!status)
            fprintf(stderr, "wrote %s\n", json_out);
    }
    if (html_out && !status) {
        struct al_buf b;
        al_buf_init(&b, 64u << 20);
        struct al_err err = AL_ERR_INIT;
        if (al_bench_html(rep, &b, &err))
            status = al_cli_fail(&err);
        else
            status = write_text(html_out, b.data, b.len);
        al_buf_release(&b);
        if (!status)
            fprintf(stderr, "wrote %s\n", html_out);
    }
    return status;
}

/* The grid as given on the command line; zeros take the suite's. */
struct grid {
    const int *conc, *lens;
    int n_conc, n_lens, gen, requests, threads, gpu_layers;
};

/* The suite: --suite DIR, else the one stored with REF, else the defaults.
 * Returns an exit status. */
static int pick_suite(const char *suite_dir, const char *ref, struct al_suite **s)
{
    struct al_err err = AL_ERR_INIT;
    if (suite_dir)
        return al_suite_load(suite_dir, s, &err) ? al_cli_fail(&err) : 0;
    if (ref) {
        /* The suite stored with the version (bench/ of its bundle), else the defaults. */
        int st = al_cli_version_suite(ref, true, s, NULL);
        if (st && st != AL_EXIT_NOT_FOUND)
            return st;
        if (!st) {
            fprintf(stderr, "bench: suite stored with %s (%s)\n", ref, (*s)->dir);
            return 0;
        }
    }
    return al_suite_default(s, &err) ? al_cli_fail(&err) : 0;
}

static void fill_opts(struct al_bench_opts *o, const struct grid *g, const struct al_suite *s)
{
    memcpy(o->concurrency, g->n_conc ? g->conc : s->concurrency, sizeof o->concurrency);
    o->n_concurrency = g->n_conc ? g->n_conc : s->n_concurrency;
    memcpy(o->prompt_lengths, g->n_lens ? g->lens : s->prompt_lengths, sizeof o->prompt_lengths);
    o->n_prompt_lengths = g->n_lens ? g->n_lens : s->n_prompt_lengths;
    o->gen_tokens = g->gen ? g->gen : s->gen_tokens;
    o->requests = g->requests > 0 ? g->requests : s->requests;
    o->texts = (const char *const *)s->bench_prompts;
    o->n_texts = s->n_bench_prompts;
}

/* Runs the grid in this process (REF) or against the server; *rep is the
 * report. Returns an exit status. */
static int measure(const char *ref, const char *server, const struct al_bench_opts *o, json_t **rep)
{
    struct al_err err = AL_ERR_INIT;
    fprintf(stderr, "bench: %s, concurrency", ref ? ref : server);
    for (int i = 0; i < o->n_concurrency; i++)
        fprintf(stderr, "%s%d", i ? "," : " ", o->concurrency[i]);
    fprintf(stderr, ", prompt lengths");
    for (int i = 0; i < o->n_prompt_lengths; i++)
        fprintf(stderr, "%s%d", i ? "," : " ", o->prompt_lengths[i]);
    fprintf(stderr, ", %d tokens each, %d threads\n", o->gen_tokens, o->threads);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (!server && cores > 0 && o->threads != cores)
        fprintf(stderr, "bench: %d threads on %ld cores: decoding is usually fastest with threads = cores "
                        "(-t %ld; a Pi 5: -t 4, docs/internals/platforms.md)\n", o->threads, cores, cores);
    if (server)
        return al_bench_server(server, o, rep, &err) ? al_cli_fail(&err) : 0;
    struct al_model_ref mr;
    struct al_engine_model *m = NULL;
    int max_c, max_len;
    al_bench_extent(o, &max_c, &max_len);
    int st = al_cli_model_ref(ref, &mr);
    mr.gpu_layers = o->gpu_layers;
    if (!st && al_bench_fits(o, mr.n_ctx_train, &err))
        st = al_cli_fail(&err);
    if (!st)
        st = al_cli_model_load(&mr, o->threads, max_c, max_len + o->gen_tokens + 16, &m);
    if (!st && al_bench_engine(m, o, rep, &err))
        st = al_cli_fail(&err);
    al_engine_model_free(m);
    return st;
}

/* Checks the suite's targets, records them in the report, writes the
 * outputs and prints the verdict. Returns an exit status. */
static int verdict(json_t *rep, const struct al_suite *s, const char *json_out, const char *html_out)
{
    double dec, ttft, rss;
    al_bench_overall(rep, &dec, &ttft, &rss);
    struct al_target_check tc[3];
    struct al_bench_target bt[3];
    int nt = al_targets_check(&s->targets, dec, ttft, rss, tc), missed = 0;
    for (int i = 0; i < nt; i++)
        bt[i] = (struct al_bench_target){tc[i].name, tc[i].target, tc[i].measured, tc[i].met};
    al_bench_record_targets(rep, dec, ttft, rss, bt, nt);
    int status = outputs(rep, json_out, html_out);
    printf("decode %.1f tokens/s per stream (the median of every request at the lowest concurrency, all prompt "
           "lengths together); TTFT p95 %.1f ms (every request); ", dec, ttft);
    if (rss >= 0)
        printf("peak RSS %.1f MiB\n", rss);
    else
        printf("peak RSS not measured (a server)\n");
    for (int i = 0; i < nt; i++) {
        printf("target %-5s %s\n", tc[i].met ? "ok" : "FAIL", tc[i].line);
        missed += !tc[i].met;
    }
    if (missed && !status) {
        printf("result: FAILED: %d target%s missed:", missed, missed == 1 ? "" : "s");
        for (int i = 0; i < nt; i++)
            if (!tc[i].met)
                printf(" %s %g (measured %.2f)", tc[i].name, tc[i].target, tc[i].measured);
        printf("\n");
        status = AL_EXIT_FAILURE;
    }
    return status;
}

static int run(const char *ref, const char *server, const char *suite_dir, const struct grid *g,
               const char *json_out, const char *html_out)
{
    struct al_suite *s = NULL;
    json_t *rep = NULL;
    int st = pick_suite(suite_dir, ref, &s);
    if (st)
        goto out;
    struct al_bench_opts o = {.threads = g->threads, .gpu_layers = g->gpu_layers, .progress = true,
                              .model_ref = ref ? ref : server};
    fill_opts(&o, g, s);
    if (!(st = measure(ref, server, &o, &rep)))
        st = verdict(rep, s, json_out, html_out);
out:
    json_decref(rep);
    al_suite_free(s);
    return st;
}

int al_cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        {"suite", required_argument, NULL, 's'},       {"server", required_argument, NULL, 'S'},
        {"concurrency", required_argument, NULL, 'c'}, {"prompt-lengths", required_argument, NULL, 'p'},
        {"gen-tokens", required_argument, NULL, 'n'},  {"requests", required_argument, NULL, 'r'},
        {"threads", required_argument, NULL, 't'},     {"json", required_argument, NULL, 'j'},
        {"html", required_argument, NULL, 'H'},        {"from", required_argument, NULL, 'f'},
        {"compare", no_argument, NULL, 'C'},           {"threshold", required_argument, NULL, 'T'},
        {"gpu-layers", required_argument, NULL, 'g'},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *suite_dir = NULL, *server = NULL, *json_out = NULL, *html_out = NULL, *from = NULL;
    int conc[AL_BENCH_LEVELS_MAX], n_conc = 0, lens[AL_BENCH_LEVELS_MAX], n_lens = 0;
    int gen = 0, requests = -1, threads = 2, gpu_layers = 0, c;
    bool do_compare = false;
    double threshold = 5;
    optind = 0;
    while ((c = getopt_long(argc, argv, "t:g:h", opts, NULL)) != -1) {
        int st = 0;
        switch (c) {
        case 's': suite_dir = optarg; break;
        case 'S': server = optarg; break;
        case 'j': json_out = optarg; break;
        case 'H': html_out = optarg; break;
        case 'f': from = optarg; break;
        case 'C': do_compare = true; break;
        case 'c':
            st = al_cli_opt_list("bench", "--concurrency", optarg, 1, AL_LIMIT_SEQS, conc, AL_BENCH_LEVELS_MAX, &n_conc);
            break;
        case 'p':
            st = al_cli_opt_list("bench", "--prompt-lengths", optarg, 1, 1 << 20, lens, AL_BENCH_LEVELS_MAX, &n_lens);
            break;
        case 'n': st = al_cli_opt_i("bench", "--gen-tokens", optarg, 1, AL_LIMIT_GOLDEN_TOKENS, &gen); break;
        case 'r': st = al_cli_opt_i("bench", "--requests", optarg, 1, AL_LIMIT_BENCH_REQUESTS, &requests); break;
        case 't': st = al_cli_opt_threads("bench", optarg, &threads); break;
        case 'g': st = al_cli_opt_i("bench", "--gpu-layers", optarg, 0, 100000, &gpu_layers); break;
        case 'T': st = al_cli_opt_num("bench", "--threshold", optarg, 0, 1000, &threshold); break;
        case 'h': usage(); return AL_EXIT_OK;
        default: return al_cli_usage_error("bench", "unknown option");
        }
        if (st)
            return st;
    }
    if (do_compare) {
        if (argc - optind != 2)
            return al_cli_usage_error("bench", "--compare needs two reports: A.json B.json");
        return compare(argv[optind], argv[optind + 1], threshold);
    }
    if (from) {
        json_t *rep = NULL;
        int st = load_report(from, &rep);
        if (!st)
            st = outputs(rep, NULL, html_out);
        json_decref(rep);
        return st;
    }
    const char *ref = optind < argc ? argv[optind] : NULL;
    if (!ref && !server)
        return al_cli_usage_error("bench", "needs a REF or --server URL");
    if (optind + (ref ? 1 : 0) < argc)
        return al_cli_usage_error("bench", "too many arguments");
    struct grid g = {.conc = conc, .n_conc = n_conc, .lens = lens, .n_lens = n_lens, .gen = gen,
                     .requests = requests, .threads = threads, .gpu_layers = gpu_layers};
    return run(ref, server, suite_dir, &g, json_out, html_out);
}
