/*
 * Unit tests of the KV cache shared by a model's sequences (kv_unified, as
 * serve loads every model): how the scheduler makes room (batch.c) on the
 * real llama.cpp and the fixture (tests/fixtures/stories260K.gguf).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "core/err.h"
#include "engine/engine.h"
#include "tu_engine.h"

#define FIXTURE_DIGEST "sha256:270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"

/* A finished request's sequence keeps its tokens for prefix reuse, in cells
 * the other sequences share. When a generating sequence or a new prompt
 * finds too few cells free, the idle tokens are dropped (least recently used
 * first) and every request answers as it would alone; a dropped prefix is
 * then computed again, not reused. B's prompt has no BOS token, so that it
 * shares no prefix with A's and the two land in different sequences. */
static void test_idle_tokens_make_room(void **state)
{
    (void)state;
    struct al_engine_model_params mp = al_engine_model_params_default();
    mp.n_ctx = 256; /* cells for both sequences together */
    mp.n_seq = 2;
    mp.kv_unified = true;
    struct al_engine_model *m = NULL;
    struct al_err err = AL_ERR_INIT;
    if (al_engine_model_load(tu_fixture("stories260K.gguf"), FIXTURE_DIGEST, &mp, &m, &err))
        fail_msg("load: %s", err.msg);
    struct al_engine_gen_params ap = tu_greedy(30), bp = tu_greedy(30), longp = tu_greedy(250);
    ap.ignore_eos = bp.ignore_eos = longp.ignore_eos = true;
    bp.add_bos = false;
    struct al_engine_gen_result res;

    char *a1 = tu_gen(m, "Once upon a time", &ap, &res);       /* sequence 0 */
    char *b_alone = tu_gen(m, "The dog", &bp, &res);           /* sequence 1: 32 cells kept */
    /* A again, 250 tokens: 255 cells with B's 32 kept is more than 256,
     * so B's kept tokens go while A generates. */
    char *a_long = tu_gen(m, "Once upon a time", &longp, &res);
    assert_int_equal(res.finish, AL_ENGINE_FINISH_LENGTH);
    assert_int_equal(res.n_gen, 250);
    assert_true(res.n_cached > 0); /* A's own prefix was reused */
    /* B again: its tokens went, and its prompt finds one cell free: A's
     * kept tokens go before the prompt is fed. */
    char *b = tu_gen(m, "The dog", &bp, &res);
    assert_int_equal(res.finish, AL_ENGINE_FINISH_LENGTH);
    assert_int_equal(res.n_cached, 0);
    assert_string_equal(b, b_alone);
    /* A's prefix went too: computed again, the same text. */
    char *a2 = tu_gen(m, "Once upon a time", &ap, &res);
    assert_int_equal(res.n_cached, 0);
    assert_string_equal(a2, a1);
    struct al_engine_stats st;
    al_engine_stats(m, &st);
    assert_int_equal(st.kv_cells_total, 256);
    free(a2);
    free(b);
    free(a_long);
    free(b_alone);
    free(a1);
    al_engine_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_tokens_make_room),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
