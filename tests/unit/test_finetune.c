/*
 * Unit tests of al_engine_finetune (src/engine/finetune.c) on the real
 * llama.cpp and the real fixture, tests/fixtures/stories260K.gguf: the
 * parameter checks and a wrong digest refused with no output file, a text
 * too short for two windows refused, and a short run whose loss goes down,
 * whose callbacks see every pass, whose checkpoint and result load, and
 * which gives the same bytes when run again with the same seed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "engine/engine.h"
#include "engine/finetune.h"

#define FIXTURE_DIGEST "sha256:270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"

static char *story(void)
{
    static const char *names[] = {"Zorbo", "Quilla", "Mexit", "Pombo"};
    size_t cap = 8192, len = 0;
    char *t = malloc(cap);
    assert_non_null(t);
    for (int i = 0; i < 40; i++)
        len += (size_t)snprintf(t + len, cap - len, "%s the robot found a lamp on the hill. %s said: beep. ",
                                names[i % 4], names[i % 4]);
    return t;
}

struct seen {
    int train_calls, eval_calls, epochs;
    double last_eta;
    char ckpt[4096];
};

static void progress(void *ud, const struct al_engine_ft_progress *p)
{
    struct seen *s = ud;
    if (p->train)
        s->train_calls++;
    else
        s->eval_calls++;
    assert_true(p->step >= 1 && p->step <= p->steps);
    assert_true(isfinite(p->loss) && p->tokens_per_s > 0);
    s->last_eta = p->eta_s;
}

static enum al_rc on_epoch(void *ud, struct al_engine_ft *ft, int epoch, double tl, double vl, struct al_err *err)
{
    struct seen *s = ud;
    s->epochs++;
    assert_int_equal(epoch, s->epochs);
    assert_true(isfinite(tl) && isfinite(vl));
    return s->ckpt[0] ? al_engine_ft_save(ft, s->ckpt, err) : AL_OK;
}

static void run_ok(struct al_engine_ft_params *p, const char *out, struct al_engine_ft_result *res)
{
    struct al_err err = AL_ERR_INIT;
    if (al_engine_finetune(p, out, res, &err))
        fail_msg("finetune: %s", err.msg);
}

static void test_refusals(void **state)
{
    const char *fixture = tu_fixture("stories260K.gguf");
    char *dir = tu_mkdtemp(), out[4096];
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    char *text = story();
    struct al_engine_ft_params p = {.model_path = fixture, .model_digest = FIXTURE_DIGEST, .text = text,
                                    .text_len = strlen(text), .n_ctx = 256, .epochs = 1, .lr = 1e-3f, .threads = 1};
    struct al_engine_ft_result res;
    struct al_err err = AL_ERR_INIT;
    struct stat st;
    struct al_engine_ft_params q = p;
    q.n_ctx = 300;
    assert_int_equal(al_engine_finetune(&q, out, &res, &err), AL_ERR_USAGE);
    assert_non_null(strstr(err.msg, "multiple of 256"));
    al_err_clear(&err);
    q = p;
    q.lr = 0;
    assert_int_equal(al_engine_finetune(&q, out, &res, &err), AL_ERR_USAGE);
    al_err_clear(&err);
    q = p;
    q.epochs = 0;
    assert_int_equal(al_engine_finetune(&q, out, &res, &err), AL_ERR_USAGE);
    al_err_clear(&err);
    q = p;
    q.model_digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    assert_int_equal(al_engine_finetune(&q, out, &res, &err), AL_ERR_VERIFY);
    assert_non_null(strstr(err.msg, "does not match its digest"));
    al_err_clear(&err);
    q = p;
    q.text_len = 300; /* about 100 tokens: not two windows of 257 */
    assert_int_equal(al_engine_finetune(&q, out, &res, &err), AL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "too short"));
    assert_int_not_equal(stat(out, &st), 0);
    free(text);
    tu_rmrf(dir);
    free(dir);
}

static void test_train(void **state)
{
    const char *fixture = tu_fixture("stories260K.gguf");
    char *dir = tu_mkdtemp(), out[4096], out2[4096];
    snprintf(out, sizeof out, "%s/a.gguf", dir);
    snprintf(out2, sizeof out2, "%s/b.gguf", dir);
    char *text = story();
    struct seen s = {0};
    snprintf(s.ckpt, sizeof s.ckpt, "%s/ckpt.gguf", dir);
    struct al_engine_ft_params p = {.model_path = fixture, .model_digest = FIXTURE_DIGEST, .text = text,
                                    .text_len = strlen(text), .n_ctx = 256, .epochs = 2, .lr = 1e-3f,
                                    .seed = 3, .threads = 2, .progress = progress, .on_epoch = on_epoch, .ud = &s};
    struct al_engine_ft_result res;
    run_ok(&p, out, &res);
    printf("# %lld tokens, %lld + %lld windows; train %.4f -> %.4f, held-out %.4f -> %.4f\n",
           (long long)res.n_tokens, (long long)res.n_train_windows, (long long)res.n_val_windows, res.train_before,
           res.train_after, res.val_before, res.val_after);
    assert_true(res.n_train_windows >= 1 && res.n_val_windows >= 1);
    assert_true(res.n_val_tokens >= 257 && res.n_val_tokens >= res.n_tokens / 10);
    assert_true(res.train_after < res.train_before);
    assert_int_equal(s.epochs, 2);
    assert_int_equal(s.train_calls, 2 * res.n_train_windows);
    /* before and after: both parts; after each epoch: the held-out part */
    assert_int_equal(s.eval_calls, 2 * (res.n_train_windows + res.n_val_windows) + 2 * res.n_val_windows);
    assert_true(s.last_eta >= 0 && s.last_eta < 60);
    /* the result and the checkpoint load through the verified path */
    const char *files[] = {out, s.ckpt};
    for (int i = 0; i < 2; i++) {
        char digest[AL_DIGEST_SIZE];
        struct al_err err = AL_ERR_INIT;
        assert_int_equal(al_sha256_path(files[i], digest, NULL, NULL, &err), AL_OK);
        struct al_engine_model_params mp = al_engine_model_params_default();
        mp.threads = 1;
        struct al_engine_model *m = NULL;
        if (al_engine_model_load(files[i], digest, &mp, &m, &err))
            fail_msg("load %s: %s", files[i], err.msg);
        struct al_engine_model_info info;
        al_engine_model_info(m, &info);
        assert_int_equal(info.n_ctx_train, 256);
        al_engine_model_free(m);
    }
    /* the same job again: the same bytes (the order is drawn from the seed,
     * and llama.cpp's CPU kernels at a fixed thread count are deterministic) */
    struct seen s2 = {0};
    p.ud = &s2;
    run_ok(&p, out2, &res);
    char d1[AL_DIGEST_SIZE], d2[AL_DIGEST_SIZE];
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_sha256_path(out, d1, NULL, NULL, &err), AL_OK);
    assert_int_equal(al_sha256_path(out2, d2, NULL, NULL, &err), AL_OK);
    assert_string_equal(d1, d2);
    free(text);
    tu_rmrf(dir);
    free(dir);
}

int main(void)
{
    if (getenv("AL_ENGINE_DEBUG"))
        al_log_set_level(AL_LOG_DEBUG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_train),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
