/*
 * finetune.c: full fine-tuning through llama.cpp's training API (finetune.h).
 *
 * llama_opt_epoch takes a ggml_opt dataset of windows of llama_n_ctx tokens
 * (their labels the next tokens) and trains on those before idata_split,
 * then evaluates the rest; it neither shuffles nor skips. So two datasets:
 * the training windows, rewritten before each epoch in that epoch's order,
 * and the held-out ones. A pass that only measures (before and after) hands
 * llama_opt_epoch a split of 0: every window is evaluated, none trained.
 *
 * The context is padded by llama.cpp to a multiple of 256 tokens, and
 * llama_opt_init sets the model's n_ctx_train to it (so the saved GGUF's
 * context length is the window's); n_batch and n_ubatch equal the window,
 * one optimizer step per window. K and V are F32 (OUT_PROD has no F16
 * backward pass), flash attention off, as llama.cpp's finetune example does.
 */
#include "engine/engine_int.h"
#include "engine/finetune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/limits.h"
#include "core/log.h"

struct al_engine_ft {
    const struct al_engine_ft_params *p;
    struct llama_model *model;
    struct llama_context *ctx;
    int n_ctx;
    int epoch;          /* 1-based, of the pass in progress */
    int64_t steps_left; /* windows of every pass after the one in progress, for the estimate */
    double t0_ms;       /* start of the first pass that trained or measured */
    int64_t steps_done; /* windows evaluated since t0_ms */
    struct ggml_opt_optimizer_params opt;
};

/* llama.cpp's epoch callback has no user data: the run on this thread. */
static __thread struct al_engine_ft *cur;

static struct ggml_opt_optimizer_params opt_pars(void *ud)
{
    return ((struct al_engine_ft *)ud)->opt;
}

static void epoch_cb(bool train, ggml_opt_context_t opt_ctx, ggml_opt_dataset_t dataset, ggml_opt_result_t result,
                     int64_t ibatch, int64_t ibatch_max, int64_t t_start_us)
{
    (void)opt_ctx;
    (void)dataset;
    struct al_engine_ft *ft = cur;
    if (!ft || !ft->p->progress)
        return;
    ft->steps_done++;
    double loss = 0;
    ggml_opt_result_loss(result, &loss, NULL);
    double el_s = (double)(ggml_time_us() - t_start_us) / 1e6;
    double all_s = (al_engine_now_ms() - ft->t0_ms) / 1e3;
    double per_step = ft->steps_done > 0 ? all_s / (double)ft->steps_done : 0;
    struct al_engine_ft_progress pr = {
        .train = train, .epoch = ft->epoch, .epochs = ft->p->epochs, .step = ibatch, .steps = ibatch_max,
        .loss = loss, .tokens_per_s = el_s > 0 ? (double)ibatch * ft->n_ctx / el_s : 0,
        .eta_s = per_step > 0 ? per_step * (double)(ibatch_max - ibatch + ft->steps_left) : -1,
    };
    ft->p->progress(ft->p->ud, &pr);
}

/* A pseudo-random order of n windows for (seed, epoch): splitmix64 driving
 * a Fisher-Yates shuffle, so a resumed run trains epoch e as the first run
 * would have. */
static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Fills ds (n windows) with windows of tokens starting at starts[order[i]]. */
static void fill_windows(ggml_opt_dataset_t ds, const llama_token *tok, const int64_t *starts, const int64_t *order,
                         int64_t n, int n_ctx)
{
    llama_token *data = ggml_opt_dataset_data(ds)->data;
    llama_token *labels = ggml_opt_dataset_labels(ds)->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t s = starts[order ? order[i] : i];
        memcpy(data + i * n_ctx, tok + s, (size_t)n_ctx * sizeof *tok);
        memcpy(labels + i * n_ctx, tok + s + 1, (size_t)n_ctx * sizeof *tok);
    }
}

/* One pass over ds: trains on it (train) or measures it; the mean loss. */
static double pass(struct al_engine_ft *ft, ggml_opt_dataset_t ds, bool train)
{
    ggml_opt_result_t res = ggml_opt_result_init();
    int64_t n = ggml_opt_dataset_ndata(ds);
    ft->steps_left -= n;
    llama_opt_epoch(ft->ctx, ds, train ? res : NULL, train ? NULL : res, train ? n : 0, train ? epoch_cb : NULL,
                    train ? NULL : epoch_cb);
    double loss = NAN;
    ggml_opt_result_loss(res, &loss, NULL);
    ggml_opt_result_free(res);
    return loss;
}

enum al_rc al_engine_ft_save(struct al_engine_ft *ft, const char *path, struct al_err *err)
{
    unlink(path);
    llama_model_save_to_file(ft->model, path);
    struct stat st;
    if (stat(path, &st) != 0 || st.st_size == 0)
        return al_err_set(err, AL_ERR_IO, "llama.cpp wrote no model to '%s'", path);
    return AL_OK;
}

static enum al_rc check_params(const struct al_engine_ft_params *p, const char *out_path, struct al_err *err)
{
    if (!p || !out_path || !p->model_path || !p->model_digest || !al_digest_valid(p->model_digest) || !p->text)
        return al_err_set(err, AL_ERR_USAGE, "al_engine_finetune: bad arguments");
    if (p->n_ctx < 256 || p->n_ctx % 256 || p->n_ctx > AL_LIMIT_FINETUNE_CTX)
        return al_err_set(err, AL_ERR_USAGE, "a training window of %d tokens: it must be a multiple of 256 from 256 "
                          "to %d (AL_LIMIT_FINETUNE_CTX)", p->n_ctx, AL_LIMIT_FINETUNE_CTX);
    if (p->epochs < 1 || p->epochs > AL_LIMIT_FINETUNE_EPOCHS || p->start_epoch < 0 || p->start_epoch > p->epochs)
        return al_err_set(err, AL_ERR_USAGE, "%d epochs (from %d): 1 to %d (AL_LIMIT_FINETUNE_EPOCHS)", p->epochs,
                          p->start_epoch, AL_LIMIT_FINETUNE_EPOCHS);
    if (!(p->lr > 0 && p->lr < 1))
        return al_err_set(err, AL_ERR_USAGE, "a learning rate of %g: it must be above 0 and below 1", (double)p->lr);
    if (p->text_len > AL_LIMIT_FINETUNE_BYTES)
        return al_err_set(err, AL_ERR_LIMIT, "%zu bytes of training text is over the cap of %u "
                          "(AL_LIMIT_FINETUNE_BYTES)", p->text_len, AL_LIMIT_FINETUNE_BYTES);
    return AL_OK;
}

/* Tokenizes the whole text; *out malloc'd. */
static enum al_rc tokenize_all(const struct llama_vocab *vocab, const char *text, size_t len, llama_token **out,
                               int64_t *n_out, struct al_err *err)
{
    /* A token is at least one byte, plus BOS and EOS. */
    size_t cap = len + 2;
    llama_token *t = malloc(cap * sizeof *t);
    if (!t)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory tokenizing the training text");
    int32_t n = llama_tokenize(vocab, text, (int32_t)len, t, (int32_t)cap, true, false);
    if (n < 0) {
        free(t);
        return al_err_set(err, AL_ERR_INTERNAL, "cannot tokenize the training text (%d tokens)", -n);
    }
    *out = t;
    *n_out = n;
    return AL_OK;
}

enum al_rc al_engine_finetune(const struct al_engine_ft_params *p, const char *out_path,
                              struct al_engine_ft_result *res, struct al_err *err)
{
    enum al_rc rc = check_params(p, out_path, err);
    if (rc)
        return rc;
    memset(res, 0, sizeof *res);
    struct al_engine_ft ft = {.p = p, .n_ctx = p->n_ctx};
    ft.opt = ggml_opt_get_default_optimizer_params(NULL);
    ft.opt.adamw.alpha = p->lr;
    FILE *f = NULL;
    llama_token *tok = NULL;
    int64_t *starts = NULL, *order = NULL;
    ggml_opt_dataset_t dtrain = NULL, dval = NULL;
    if ((rc = al_engine_open_verified(p->model_path, p->model_digest, &f, err)))
        return rc;
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.load_mode = LLAMA_LOAD_MODE_NONE; /* training writes the weights: in memory, not mapped */
    al_engine_llama_clear_error();
    ft.model = llama_model_load_from_file_ptr(f, mp);
    if (!ft.model) {
        const char *why = al_engine_llama_last_error();
        rc = al_err_set(err, AL_ERR_CORRUPT, "llama.cpp cannot load '%s'%s%s", p->model_path, *why ? ": " : "", why);
        goto out;
    }
    int64_t n_tok = 0;
    if ((rc = tokenize_all(llama_model_get_vocab(ft.model), p->text, p->text_len, &tok, &n_tok, err)))
        goto out;
    res->n_tokens = n_tok;
    /* The held-out part: the last tenth, at least one window. */
    int64_t need = (int64_t)p->n_ctx + 1;
    int64_t n_val_tok = n_tok / 10 > need ? n_tok / 10 : need;
    int64_t n_train_tok = n_tok - n_val_tok;
    if (n_train_tok < need) {
        rc = al_err_set(err, AL_ERR_INVALID, "the training text is too short: %lld tokens, and a window of --ctx %d "
                        "needs %lld to train on and %lld held out for validation (%lld in all)", (long long)n_tok,
                        p->n_ctx, (long long)need, (long long)need, (long long)(2 * need));
        goto out;
    }
    int64_t ntr = (n_train_tok - 1) / p->n_ctx, nva = (n_val_tok - 1) / p->n_ctx;
    res->n_train_windows = ntr;
    res->n_val_windows = nva;
    res->n_val_tokens = n_val_tok;
    starts = malloc((size_t)(ntr + nva) * sizeof *starts);
    order = malloc((size_t)ntr * sizeof *order);
    if (!starts || !order) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < ntr; i++)
        starts[i] = i * p->n_ctx;
    for (int64_t i = 0; i < nva; i++)
        starts[ntr + i] = n_train_tok + i * p->n_ctx;

    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)p->n_ctx;
    cp.n_batch = cp.n_ubatch = (uint32_t)p->n_ctx;
    cp.n_seq_max = 1;
    cp.n_threads = cp.n_threads_batch = p->threads > 0 ? p->threads : 2;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.no_perf = true;
    ft.ctx = llama_init_from_model(ft.model, cp);
    if (!ft.ctx || (int)llama_n_ctx(ft.ctx) != p->n_ctx) {
        const char *why = al_engine_llama_last_error();
        rc = al_err_set(err, AL_ERR_INTERNAL, "cannot make a training context of %d tokens%s%s", p->n_ctx,
                        *why ? ": " : "", why);
        goto out;
    }
    struct llama_opt_params op = {
        .n_ctx_train = 0, .param_filter = llama_opt_param_filter_all, .param_filter_ud = NULL,
        .get_opt_pars = opt_pars, .get_opt_pars_ud = &ft, .optimizer_type = GGML_OPT_OPTIMIZER_TYPE_ADAMW,
    };
    llama_opt_init(ft.ctx, ft.model, op);
    dtrain = ggml_opt_dataset_init(GGML_TYPE_I32, GGML_TYPE_I32, p->n_ctx, p->n_ctx, ntr, 1);
    dval = ggml_opt_dataset_init(GGML_TYPE_I32, GGML_TYPE_I32, p->n_ctx, p->n_ctx, nva, 1);
    if (!dtrain || !dval) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    fill_windows(dtrain, tok, starts, NULL, ntr, p->n_ctx);
    fill_windows(dval, tok, starts + ntr, NULL, nva, p->n_ctx);
    cur = &ft;
    int epochs_left = p->epochs - p->start_epoch;
    ft.steps_left = 2 * (ntr + nva) + (int64_t)epochs_left * (ntr + nva);
    ft.t0_ms = al_engine_now_ms();
    ft.epoch = p->start_epoch;
    res->train_before = pass(&ft, dtrain, false);
    res->val_before = pass(&ft, dval, false);
    al_info("finetune: %lld tokens, %lld training and %lld held-out windows of %d; loss before: train %.4f, "
            "held-out %.4f", (long long)n_tok, (long long)ntr, (long long)nva, p->n_ctx, res->train_before,
            res->val_before);
    for (int e = p->start_epoch + 1; e <= p->epochs; e++) {
        ft.epoch = e;
        uint64_t s = ((uint64_t)p->seed << 32) ^ (uint64_t)e;
        for (int64_t i = 0; i < ntr; i++)
            order[i] = i;
        for (int64_t i = ntr - 1; i > 0; i--) {
            int64_t j = (int64_t)(splitmix(&s) % (uint64_t)(i + 1));
            int64_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        fill_windows(dtrain, tok, starts, order, ntr, p->n_ctx);
        double tl = pass(&ft, dtrain, true);
        double vl = pass(&ft, dval, false);
        al_info("finetune: epoch %d/%d: train loss %.4f, held-out loss %.4f", e, p->epochs, tl, vl);
        if (p->on_epoch && (rc = p->on_epoch(p->ud, &ft, e, tl, vl, err)))
            goto out;
    }
    fill_windows(dtrain, tok, starts, NULL, ntr, p->n_ctx);
    res->train_after = pass(&ft, dtrain, false);
    res->val_after = pass(&ft, dval, false);
    rc = al_engine_ft_save(&ft, out_path, err);
out:
    cur = NULL;
    if (dtrain)
        ggml_opt_dataset_free(dtrain);
    if (dval)
        ggml_opt_dataset_free(dval);
    if (ft.ctx)
        llama_free(ft.ctx);
    if (ft.model)
        llama_model_free(ft.model);
    if (f)
        fclose(f);
    free(tok);
    free(starts);
    free(order);
    return rc;
}
