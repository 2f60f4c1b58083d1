/*
 * cmd_validate.c: airlock validate REF --suite DIR [--record] [--server URL].
 * Records golden outputs (the build host) or checks a model, or a running
 * server, against them (inside the air gap); also checks the suite's
 * service-level targets against what the golden run measured.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/cli_util.h"
#include "cli/model_ref.h"
#include "suite/suite.h"

int al_cmd_validate(int argc, char **argv);

static void usage(void)
{
    printf("usage: airlock validate REF [--suite DIR] [-t THREADS]\n"
           "       airlock validate REF --suite DIR --record [-t THREADS]\n"
           "       airlock validate [REF] --server URL [--suite DIR]\n"
           "       airlock validate --init-suite DIR\n\n"
           "Runs the suite's golden prompts greedily and compares each generated token\n"
           "and its top log-probabilities with DIR/recording.json. Where the recording was\n"
           "made under the same conditions (llama.cpp commit, CPU features, model digest)\n"
           "the output must be identical; elsewhere a small floating-point drift is\n"
           "allowed, and a failure says what differs: the tokenizer, the weights (another\n"
           "or a broken quantization, a damaged tensor) or the whole model. Then checks the\n"
           "suite's targets (min_decode_tps, max_ttft_p95_ms, max_rss_mb) against what\n"
           "the golden run measured. Exits 1 naming each prompt that diverged and where,\n"
           "and each target missed with the measured value.\n\n"
           "REF is a store reference (name, name:tag, name@sha256:...) or a GGUF file.\n"
           "Without --suite, the suite stored with REF is used: the bench/ files of the\n"
           "bundle it was ingested from ('airlock pack --bench DIR --record-golden').\n\n"
           "  --suite DIR     the suite (a bundle's bench/ folder): suite.json, golden.json,\n"
           "                  recording.json\n"
           "  --record        record DIR/recording.json on this machine instead of checking\n"
           "  --server URL    validate a running OpenAI-compatible server (POST /v1/completions\n"
           "                  with logprobs) instead of loading REF; REF then only names the\n"
           "                  stored suite\n"
           "  -t, --threads N CPU threads (default 2)\n"
           "  -g, --gpu-layers N  layers on the GPU, where the build has a GPU backend\n"
           "                  (make vulkan) and the machine a device (default 0); the\n"
           "                  suite's tolerance absorbs the backends' float differences\n"
           "  --init-suite DIR  write a starter suite into DIR\n");
}

static int report(const struct al_suite *s, const struct al_golden_run *run, const struct al_validation *v,
                  const char *what)
{
    printf("validate: suite '%s', %zu golden prompts, against %s\n", s->name, v->n_cmp, what);
    if (v->conditions_match)
        printf("conditions: as recorded (llama.cpp %s, same CPU features, same model): exact match required\n",
               run->cond.llama_commit);
    else
        printf("conditions: %s: tolerance %g (and %g%% of the top-%d spread) on log-probabilities, %g on ties\n",
               v->conditions_note, s->tol_logprob, 100 * s->tol_relative, s->top_k, s->tol_tie);
    const struct al_prompt_cmp *first = NULL;
    for (size_t i = 0; i < v->n_cmp; i++) {
        const struct al_prompt_cmp *c = &v->cmp[i];
        bool ok = al_verdict_ok(c->verdict);
        if (!ok && !first)
            first = c;
        printf("  %-5s %-20s %s: %s\n", ok ? "ok" : "FAIL", c->id, al_verdict_name(c->verdict), c->detail);
    }
    struct al_target_check tc[3];
    int nt = al_targets_check(&s->targets, run->decode_tps, run->ttft_p95_ms, run->rss_peak_mb, tc);
    int missed = 0;
    for (int i = 0; i < nt; i++) {
        if (i == 0)
            printf("targets (from the golden run):\n");
        printf("  %-5s %s\n", tc[i].met ? "ok" : "FAIL", tc[i].line);
        missed += !tc[i].met;
    }
    if (v->n_failed == 0 && missed == 0) {
        printf("result: all %zu prompts pass%s\n", v->n_cmp, nt ? ", all targets met" : "");
        return AL_EXIT_OK;
    }
    printf("result: FAILED:");
    if (first) {
        int pos = first->diverge_at >= 0 ? first->diverge_at : first->drift_at;
        printf(" %zu of %zu prompts diverged, first '%s'", v->n_failed, v->n_cmp, first->id);
        if (pos >= 0)
            printf(" at position %d", pos);
        printf(" (%s)%s", al_verdict_name(first->verdict), missed ? ";" : "");
    }
    for (int i = 0; i < nt; i++)
        if (!tc[i].met)
            printf(" target %s %g missed: measured %.2f%s", tc[i].name, tc[i].target, tc[i].measured,
                   --missed ? ";" : "");
    printf("\n");
    return AL_EXIT_FAILURE;
}

int al_cmd_validate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"suite", required_argument, NULL, 's'},  {"record", no_argument, NULL, 'r'},
        {"server", required_argument, NULL, 'S'}, {"threads", required_argument, NULL, 't'},
        {"init-suite", required_argument, NULL, 'i'}, {"gpu-layers", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *suite_dir = NULL, *server = NULL, *init = NULL;
    bool record = false;
    int threads = 2, gpu_layers = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "t:g:h", opts, NULL)) != -1) {
        if (c == 's') {
            suite_dir = optarg;
        } else if (c == 'r') {
            record = true;
        } else if (c == 'S') {
            server = optarg;
        } else if (c == 'i') {
            init = optarg;
        } else if (c == 't') {
            int st = al_cli_opt_threads("validate", optarg, &threads);
            if (st)
                return st;
        } else if (c == 'g') {
            int st = al_cli_opt_i("validate", "--gpu-layers", optarg, 0, 100000, &gpu_layers);
            if (st)
                return st;
        } else if (c == 'h') {
            usage();
            return AL_EXIT_OK;
        } else {
            return al_cli_usage_error("validate", "unknown option");
        }
    }
    struct al_err err = AL_ERR_INIT;
    if (init) {
        if (al_suite_init_dir(init, &err))
            return al_cli_fail(&err);
        printf("wrote a starter suite into %s (suite.json, golden.json)\n", init);
        return AL_EXIT_OK;
    }
    const char *ref = optind < argc ? argv[optind] : NULL;
    if (!suite_dir && record)
        return al_cli_usage_error("validate", "--record writes DIR/recording.json: needs --suite DIR");
    if (!suite_dir && !ref)
        return al_cli_usage_error("validate", "needs --suite DIR, or a REF whose stored suite to use");
    if (!ref && !server)
        return al_cli_usage_error("validate", "needs a REF or --server URL");
    if (server && record)
        return al_cli_usage_error("validate", "--record runs on a model, not on a server");
    if (optind + (ref ? 1 : 0) < argc)
        return al_cli_usage_error("validate", "too many arguments");

    struct al_suite *s = NULL;
    struct al_golden_run *rec = NULL, *run = NULL;
    struct al_engine_model *m = NULL;
    struct al_validation v = {0};
    int status = AL_EXIT_OK;
    if (!suite_dir) {
        /* The suite that came with the version (bench/ of its bundle). */
        if ((status = al_cli_version_suite(ref, false, &s, &rec)))
            goto out;
    } else {
        if (al_suite_load(suite_dir, &s, &err)) {
            status = al_cli_fail(&err);
            goto out;
        }
        if (!record && al_golden_load(suite_dir, &rec, &err)) {
            status = al_cli_fail(&err);
            goto out;
        }
    }
    if (!suite_dir)
        printf("suite: stored with %s (%s)\n", ref, s->dir);
    char what[AL_LIMIT_PATH + 128];
    if (server) {
        snprintf(what, sizeof what, "server %s", server);
        if (al_golden_run_server(server, s, &run, &err)) {
            status = al_cli_fail(&err);
            goto out;
        }
    } else {
        struct al_model_ref mr;
        status = al_cli_model_ref(ref, &mr);
        mr.gpu_layers = gpu_layers;
        if (!status)
            status = al_cli_model_load(&mr, threads, 1, 4096, &m);
        if (status)
            goto out;
        snprintf(what, sizeof what, "%s (%.19s)", ref, mr.digest);
        if (record) {
            status = al_cli_record_golden(m, s, threads, what, suite_dir);
            goto out;
        }
        if (al_golden_run_engine(m, s, threads, &run, &err)) {
            status = al_cli_fail(&err);
            goto out;
        }
    }
    if (al_golden_compare(s, rec, run, &v, &err)) {
        status = al_cli_fail(&err);
        goto out;
    }
    status = report(s, run, &v, what);
out:
    al_validation_release(&v);
    al_golden_run_free(rec);
    al_golden_run_free(run);
    al_engine_model_free(m);
    al_suite_free(s);
    return status;
}
