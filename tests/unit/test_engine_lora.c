/*
 * Unit tests of LoRA adapters in src/engine on the real llama.cpp, the
 * fixture (tests/fixtures/stories260K.gguf) and adapters airlock-ggufgen
 * makes for it: adapters at load, adapters added on demand and picked per
 * request, and the scheduler's turns between adapter sets, with a KV cache
 * of each sequence's own and with one shared by the sequences. (Out of
 * test_engine.c, which was over 900 lines.)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/limits.h"
#include "core/log.h"
#include "engine/engine.h"
#include "tu_engine.h"

#define FIXTURE_DIGEST "sha256:270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"
#define GOLDEN_PROMPT  "Once upon a time"
#define GOLDEN_TEXT                                                                                  \
    ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a " \
    "big, red ball."
#define GOLDEN_TOKENS 40 /* tokens of GOLDEN_TEXT (test_engine.c) */

static char fixture[4096];

/* Sets fixture; a missing fixture fails the test (it is part of the tree). */
static bool have_fixture(void)
{
    snprintf(fixture, sizeof fixture, "%s", tu_fixture("stories260K.gguf"));
    return true;
}

/* Loads the fixture with the adapters of loras; the result in *rc. */
static struct al_engine_model *load_lora(const struct al_engine_lora *loras, int n, enum al_rc *rc,
                                         struct al_err *err)
{
    struct al_engine_model_params mp = al_engine_model_params_default();
    mp.n_ctx = 256;
    mp.loras = loras;
    mp.n_loras = n;
    struct al_engine_model *m = NULL;
    *rc = al_engine_model_load(fixture, FIXTURE_DIGEST, &mp, &m, err);
    return m;
}

/* LoRA adapters: applied at their scale (0 is the base's own text), each
 * blob proven against its digest before llama.cpp opens it; one for a model
 * of another shape, or a model given as adapter, refused by llama.cpp; more
 * than AL_LIMIT_LORAS refused. */
static void test_lora(void **state)
{
    if (!have_fixture())
        skip();
    char *dir = tu_mkdtemp();
    char lora[4096], other[4096], other_lora[4096], digest[AL_DIGEST_SIZE], other_digest[AL_DIGEST_SIZE];
    snprintf(lora, sizeof lora, "%s/lora.gguf", dir);
    snprintf(other, sizeof other, "%s/other.gguf", dir);
    snprintf(other_lora, sizeof other_lora, "%s/other-lora.gguf", dir);
    const char *build = getenv("AL_BUILD");
    assert_non_null(build);
    assert_int_equal(tu_system("'%s/airlock-ggufgen' --lora-for '%s' --out '%s' --seed 3 2>/dev/null", build,
                               fixture, lora), 0);
    assert_int_equal(tu_system("'%s/airlock-ggufgen' --out '%s' --layers 1 --embd 32 --ff 64 --heads 2 --ctx 128 "
                               "--vocab '%s/ggml-vocab-llama-spm.gguf' 2>/dev/null", build, other,
                               getenv("AL_VOCAB_DIR")), 0);
    assert_int_equal(tu_system("'%s/airlock-ggufgen' --lora-for '%s' --out '%s' 2>/dev/null", build, other,
                               other_lora), 0);
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_sha256_path(lora, digest, NULL, NULL, &err), AL_OK);
    assert_int_equal(al_sha256_path(other_lora, other_digest, NULL, NULL, &err), AL_OK);

    enum al_rc rc;
    struct al_engine_gen_params p = tu_greedy(GOLDEN_TOKENS);
    struct al_engine_lora l = {.path = lora, .digest = digest, .scale = 0.0f};
    struct al_engine_model *m = load_lora(&l, 1, &rc, &err);
    assert_int_equal(rc, AL_OK);
    struct al_engine_model_info info;
    al_engine_model_info(m, &info);
    assert_int_equal(info.n_loras, 1);
    char *text = tu_gen(m, GOLDEN_PROMPT, &p, NULL);
    assert_string_equal(text, GOLDEN_TEXT);
    free(text);
    al_engine_model_free(m);
    l.scale = 1.0f;
    m = load_lora(&l, 1, &rc, &err);
    assert_int_equal(rc, AL_OK);
    text = tu_gen(m, GOLDEN_PROMPT, &p, NULL);
    assert_string_not_equal(text, GOLDEN_TEXT);
    free(text);
    al_engine_model_free(m);

    /* Another adapter's digest: nothing is loaded. */
    l.digest = other_digest;
    al_err_clear(&err);
    assert_null(load_lora(&l, 1, &rc, &err));
    assert_int_equal(rc, AL_ERR_VERIFY);
    assert_non_null(strstr(err.msg, "does not match its digest"));
    /* Proven, but for another shape: llama.cpp refuses it. */
    l.path = other_lora;
    al_err_clear(&err);
    assert_null(load_lora(&l, 1, &rc, &err));
    assert_int_equal(rc, AL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "cannot load the LoRA adapter"));
    /* A model is no adapter. */
    l.path = fixture;
    l.digest = FIXTURE_DIGEST;
    al_err_clear(&err);
    assert_null(load_lora(&l, 1, &rc, &err));
    assert_int_equal(rc, AL_ERR_CORRUPT);
    /* Caps: the count and the scale. */
    struct al_engine_lora many[AL_LIMIT_LORAS + 1];
    for (int i = 0; i <= AL_LIMIT_LORAS; i++)
        many[i] = (struct al_engine_lora){.path = lora, .digest = digest, .scale = 1.0f};
    al_err_clear(&err);
    assert_null(load_lora(many, AL_LIMIT_LORAS + 1, &rc, &err));
    assert_int_equal(rc, AL_ERR_LIMIT);
    many[0].scale = 1000.0f;
    al_err_clear(&err);
    assert_null(load_lora(many, 1, &rc, &err));
    assert_int_equal(rc, AL_ERR_USAGE);
    tu_rmrf(dir);
    free(dir);
}

/* Two requests, each on its own thread. */
struct gen_job {
    struct al_engine_model *m;
    struct al_engine_gen_params p;
    char *text;
};

static void *gen_job_run(void *arg)
{
    struct gen_job *j = arg;
    j->text = tu_gen(j->m, GOLDEN_PROMPT, &j->p, NULL);
    return NULL;
}

/* Adapters on demand: loaded into a loaded base (al_engine_lora_add; the
 * same digest again is the same id), picked per request by id and scale (0
 * and the defaults give the base's golden text), an unknown id refused at
 * submit; a wrong digest and an adapter of another shape refused by the add;
 * two requests with different sets at once each give their text alone, the
 * context's adapters switched between their steps. */
static void test_lora_on_demand(void **state)
{
    if (!have_fixture())
        skip();
    char *dir = tu_mkdtemp();
    char lora[4096], other[4096], other_lora[4096], digest[AL_DIGEST_SIZE], other_digest[AL_DIGEST_SIZE];
    snprintf(lora, sizeof lora, "%s/lora.gguf", dir);
    snprintf(other, sizeof other, "%s/other.gguf", dir);
    snprintf(other_lora, sizeof other_lora, "%s/other-lora.gguf", dir);
    const char *build = getenv("AL_BUILD");
    assert_non_null(build);
    assert_int_equal(tu_system("'%s/airlock-ggufgen' --lora-for '%s' --out '%s' --seed 3 2>/dev/null", build,
                               fixture, lora), 0);
    assert_int_equal(tu_system("'%s/airlock-ggufgen' --out '%s' --layers 1 --embd 32 --ff 64 --heads 2 --ctx 128 "
                               "--vocab '%s/ggml-vocab-llama-spm.gguf' 2>/dev/null", build, other,
                               getenv("AL_VOCAB_DIR")), 0);
    assert_int_equal(tu_system("'%s/airlock-ggufgen' --lora-for '%s' --out '%s' 2>/dev/null", build, other,
                               other_lora), 0);
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_sha256_path(lora, digest, NULL, NULL, &err), AL_OK);
    assert_int_equal(al_sha256_path(other_lora, other_digest, NULL, NULL, &err), AL_OK);
    struct al_engine_model_params mp = al_engine_model_params_default();
    mp.n_ctx = 256;
    mp.n_seq = 2;
    struct al_engine_model *m = NULL;
    if (al_engine_model_load(fixture, FIXTURE_DIGEST, &mp, &m, &err))
        fail_msg("load: %s", err.msg);
    int id = -1, id2 = -1;
    if (al_engine_lora_add(m, lora, digest, &id, &err))
        fail_msg("lora_add: %s", err.msg);
    assert_int_equal(id, 0);
    assert_int_equal(al_engine_lora_add(m, lora, digest, &id2, &err), AL_OK);
    assert_int_equal(id2, 0);
    assert_int_equal(al_engine_lora_add(m, lora, other_digest, &id2, &err), AL_ERR_VERIFY);
    al_err_clear(&err);
    assert_int_equal(al_engine_lora_add(m, other_lora, other_digest, &id2, &err), AL_ERR_CORRUPT);
    al_err_clear(&err);

    struct al_engine_gen_params base = tu_greedy(GOLDEN_TOKENS);
    char *text = tu_gen(m, GOLDEN_PROMPT, &base, NULL); /* defaults: an added adapter is at 0 */
    assert_string_equal(text, GOLDEN_TEXT);
    free(text);
    struct al_engine_lora_use on = {0, 1.0f}, off = {0, 0.0f}, bad = {1, 1.0f};
    struct al_engine_gen_params pa = base;
    pa.loras = &on;
    pa.n_loras = 1;
    char *adapted = tu_gen(m, GOLDEN_PROMPT, &pa, NULL);
    assert_string_not_equal(adapted, GOLDEN_TEXT);
    pa.loras = &off;
    text = tu_gen(m, GOLDEN_PROMPT, &pa, NULL);
    assert_string_equal(text, GOLDEN_TEXT);
    free(text);
    pa.loras = &bad;
    text = NULL;
    assert_int_equal(al_engine_generate(m, GOLDEN_PROMPT, &pa, &text, NULL, &err), AL_ERR_USAGE);
    assert_non_null(strstr(err.msg, "no LoRA adapter 1"));
    al_err_clear(&err);

    /* Both at once: the base and the adapter take turns, step by step. */
    struct al_engine_stats st0, st1;
    al_engine_stats(m, &st0);
    struct gen_job jobs[2] = {{m, base, NULL}, {m, base, NULL}};
    jobs[1].p.loras = &on;
    jobs[1].p.n_loras = 1;
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, gen_job_run, &jobs[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_string_equal(jobs[0].text, GOLDEN_TEXT);
    assert_string_equal(jobs[1].text, adapted);
    al_engine_stats(m, &st1);
    assert_true(st1.lora_switches > st0.lora_switches);
    free(jobs[0].text);
    free(jobs[1].text);
    free(adapted);
    al_engine_model_free(m);
    tu_rmrf(dir);
    free(dir);
}

/* tu_on_token, then 5 ms: every step of a request takes 5 ms more than its
 * decode, however fast the machine, so two requests of different sets
 * taking turns (quanta of at most 500 ms) advance at about the same pace. */
static bool slow_on_token(void *ud, const char *piece, size_t len, int32_t token)
{
    bool go = tu_on_token(ud, piece, len, token);
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return go;
}

/* Both collectors' requests at once: a's is submitted and holds the worker
 * in its first token until b's is queued, so both are active together, and
 * both are slow (slow_on_token), so neither ends long before the other. */
static void submit_both(struct al_engine_model *m, const struct al_engine_gen_params *pa, struct tu_collect *a,
                        const struct al_engine_gen_params *pb, struct tu_collect *b)
{
    tu_collect_init(a);
    tu_collect_init(b);
    a->block = true;
    tu_submit(m, GOLDEN_PROMPT, pa, slow_on_token, a, NULL);
    tu_wait_started(a);
    tu_submit(m, GOLDEN_PROMPT, pb, slow_on_token, b, NULL);
    tu_release(a);
    tu_wait_done(a);
    tu_wait_done(b);
}

/* With one KV cache shared by the sequences (as serve loads every model):
 * a base request and an adapter request at once each give their text alone,
 * the context switching between their steps; when the cells cannot hold
 * both answers, the younger request (the adapter's) is stopped with the
 * cache's message and the older one, of the other set, finishes as alone:
 * room is counted over every set, not only the step's. */
static void lora_unified(bool turns)
{
    char *dir = tu_mkdtemp();
    char lora[4096], digest[AL_DIGEST_SIZE];
    snprintf(lora, sizeof lora, "%s/lora.gguf", dir);
    const char *build = getenv("AL_BUILD");
    assert_non_null(build);
    assert_int_equal(tu_system("'%s/airlock-ggufgen' --lora-for '%s' --out '%s' --seed 3 2>/dev/null", build,
                               fixture, lora), 0);
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_sha256_path(lora, digest, NULL, NULL, &err), AL_OK);
    struct al_engine_model_params mp = al_engine_model_params_default();
    mp.n_ctx = 256; /* cells for both sequences */
    mp.n_seq = 2;
    mp.kv_unified = true;
    struct al_engine_model *m = NULL;
    if (turns)
        setenv("AIRLOCK_LORA_TURNS", "1", 1); /* read as the model's scheduler starts */
    enum al_rc rc = al_engine_model_load(fixture, FIXTURE_DIGEST, &mp, &m, &err);
    unsetenv("AIRLOCK_LORA_TURNS");
    if (rc)
        fail_msg("load: %s", err.msg);
    int id = -1;
    if (al_engine_lora_add(m, lora, digest, &id, &err))
        fail_msg("lora_add: %s", err.msg);
    struct al_engine_lora_use on = {id, 1.0f};

    /* Room for both: each its text alone. */
    struct al_engine_gen_params base = tu_greedy(GOLDEN_TOKENS), ad = base;
    ad.loras = &on;
    ad.n_loras = 1;
    char *adapted = tu_gen(m, GOLDEN_PROMPT, &ad, NULL);
    assert_string_not_equal(adapted, GOLDEN_TEXT);
    struct al_engine_stats st0, st1;
    al_engine_stats(m, &st0);
    assert_int_equal(st0.kv_cells_total, 256);
    struct tu_collect a, b;
    submit_both(m, &base, &a, &ad, &b);
    assert_int_equal(a.res.finish, AL_ENGINE_FINISH_LENGTH);
    assert_int_equal(b.res.finish, AL_ENGINE_FINISH_LENGTH);
    assert_string_equal(a.text, GOLDEN_TEXT);
    assert_string_equal(b.text, adapted);
    al_engine_stats(m, &st1);
    assert_true(st1.lora_switches >= st0.lora_switches + 2); /* to the base, to the adapter at least */
    /* Taking turns, a step never holds both sets; per sequence, both share steps. */
    if (turns)
        assert_int_equal(st1.lora_mixed_steps, st0.lora_mixed_steps);
    else
        assert_true(st1.lora_mixed_steps > st0.lora_mixed_steps);

    /* 200 tokens each (ignore_eos) after a prompt of 5: 410 cells of 256.
     * At the same pace, neither reaches 200 while the other holds under 51
     * cells, so the cells run out while both generate: the adapter's
     * request, the younger, is stopped; the base's finishes as alone. */
    struct al_engine_gen_params lbase = tu_greedy(200), lad;
    lbase.ignore_eos = true;
    lad = lbase;
    lad.loras = &on;
    lad.n_loras = 1;
    struct al_engine_gen_result res;
    char *alone = tu_gen(m, GOLDEN_PROMPT, &lbase, &res);
    assert_int_equal(res.n_gen, 200);
    submit_both(m, &lbase, &a, &lad, &b);
    assert_int_equal(a.res.finish, AL_ENGINE_FINISH_LENGTH);
    assert_string_equal(a.text, alone);
    assert_int_equal(b.res.finish, AL_ENGINE_FINISH_ERROR);
    assert_non_null(b.res.error);
    assert_non_null(strstr(b.res.error, "the KV cache of 256 cells shared by 2 sequences"));
    assert_true(b.res.n_gen < 200);
    free(alone);
    free(adapted);
    al_engine_model_free(m);
    tu_rmrf(dir);
    free(dir);
}

static void test_lora_unified(void **state)
{
    if (!have_fixture())
        skip();
    lora_unified(false);
}

/* The same with the old turns (AIRLOCK_LORA_TURNS=1, batch.c's pick_lora):
 * the path a llama.cpp without airlock's per-sequence patch takes. */
static void test_lora_unified_turns(void **state)
{
    if (!have_fixture())
        skip();
    lora_unified(true);
}

int main(void)
{
    if (getenv("AL_ENGINE_DEBUG"))
        al_log_set_level(AL_LOG_DEBUG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lora),
        cmocka_unit_test(test_lora_on_demand),
        cmocka_unit_test(test_lora_unified),
        cmocka_unit_test(test_lora_unified_turns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
