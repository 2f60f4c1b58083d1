/* model_ref.c: see model_ref.h. */
#include "cli/model_ref.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_util.h"
#include "engine/engine.h"
#include "suite/suite.h"

int al_cli_model_ref(const char *ref, struct al_model_ref *out)
{
    struct al_err err = AL_ERR_INIT;
    memset(out, 0, sizeof *out);
    if (al_repo_ref_is_file(ref)) {
        snprintf(out->path, sizeof out->path, "%s", ref);
        if (al_sha256_path(ref, out->digest, NULL, NULL, &err))
            return al_cli_fail(&err);
    } else {
        struct al_repo *r = NULL;
        int status = al_cli_open_repo_read(&r);
        if (status)
            return status;
        struct al_weights w;
        struct al_adapted ad;
        enum al_rc rc = al_repo_resolve_adapted(r, ref, &w, &ad, &err);
        al_repo_free(r);
        if (rc)
            return al_cli_fail(&err);
        if (ad.is_adapter) {
            out->lora = true;
            out->lora_scale = 1.0f;
            snprintf(out->lora_path, sizeof out->lora_path, "%s", w.path);
            snprintf(out->lora_digest, sizeof out->lora_digest, "%s", w.digest);
            snprintf(out->path, sizeof out->path, "%s", ad.base_path);
            snprintf(out->digest, sizeof out->digest, "%s", ad.binding.base);
        } else {
            snprintf(out->path, sizeof out->path, "%s", w.path);
            snprintf(out->digest, sizeof out->digest, "%s", w.digest);
        }
        al_repo_weights_release(&w);
    }
    struct al_gguf_info info;
    if (al_repo_weights_info(out->path, &info, &err) == AL_OK)
        out->n_ctx_train = (int)info.context_length;
    return 0;
}

int al_cli_model_load(const struct al_model_ref *ref, int threads, int n_seq, int n_ctx,
                      struct al_engine_model **out)
{
    struct al_err err = AL_ERR_INIT;
    struct al_engine_lora lora = {.path = ref->lora_path, .digest = ref->lora_digest, .scale = ref->lora_scale};
    if (al_suite_model_load(ref->path, ref->digest, ref->lora ? &lora : NULL, ref->lora ? 1 : 0, ref->n_ctx_train,
                            threads, ref->gpu_layers, n_seq, n_ctx, out, &err))
        return al_cli_fail(&err);
    char where[256];
    if (al_engine_model_placement(*out, where, sizeof where) > 0 || ref->gpu_layers != 0)
        fprintf(stderr, "model runs on %s\n", where);
    return 0;
}

int al_cli_version_suite(const char *ref, bool quiet, struct al_suite **s, struct al_golden_run **rec)
{
    struct al_err err = AL_ERR_INIT;
    if (al_repo_ref_is_file(ref)) {
        al_err_set(&err, AL_ERR_NOT_FOUND, "'%s' is a file, which carries no suite; give --suite DIR", ref);
        if (!quiet)
            al_cli_fail(&err);
        return AL_EXIT_NOT_FOUND;
    }
    struct al_repo *r = NULL;
    int status = al_cli_open_repo(false, &r);
    if (status)
        return status;
    struct al_version v;
    enum al_rc rc = al_repo_resolve(r, ref, &v, &err);
    if (rc) {
        status = al_cli_fail(&err);
        goto out;
    }
    rc = al_suite_load_stored(r, &v, ref, s, rec, &err);
    /* quiet (bench) only asks whether there is a suite: no recording is
     * wanted, so NOT_FOUND can only mean "no suite.json". */
    if (rc == AL_ERR_NOT_FOUND && quiet)
        status = AL_EXIT_NOT_FOUND;
    else if (rc)
        status = al_cli_fail(&err);
out:
    al_repo_free(r);
    return status;
}

int al_cli_record_golden(struct al_engine_model *m, const struct al_suite *s, int threads, const char *what,
                         const char *dir)
{
    struct al_err err = AL_ERR_INIT;
    struct al_golden_run *run = NULL;
    if (al_golden_record(m, s, threads, &run, &err))
        return al_cli_fail(&err);
    int toks = 0;
    for (size_t i = 0; i < run->n_res; i++)
        toks += run->res[i].n_tok;
    printf("recorded %zu golden prompts (%d tokens, top-%d log-probabilities) of %s into %s/recording.json\n"
           "  conditions: llama.cpp %s, %s, %d threads\n",
           run->n_res, toks, run->top_k, what, dir, run->cond.llama_commit, run->cond.cpu_model, threads);
    al_golden_run_free(run);
    return AL_EXIT_OK;
}
