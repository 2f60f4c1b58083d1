/*
 * Unit tests of src/engine on the real llama.cpp and a real trained model:
 * tests/fixtures/stories260K.gguf ($AL_FIXTURES; a missing file fails).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
/* Tokens of GOLDEN_TEXT as the model generates them (measured: see below). */
#define GOLDEN_TOKENS 40

static char fixture[4096];

/* Sets fixture; a missing fixture fails the test (it is part of the tree). */
static bool have_fixture(void)
{
    snprintf(fixture, sizeof fixture, "%s", tu_fixture("stories260K.gguf"));
    return true;
}

static struct al_engine_model *load(int n_seq, int queue_max)
{
    struct al_engine_model_params mp = al_engine_model_params_default();
    mp.threads = 2;
    mp.n_seq = n_seq;
    mp.n_ctx = 256;
    mp.queue_max = queue_max;
    struct al_engine_model *m = NULL;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_engine_model_load(fixture, FIXTURE_DIGEST, &mp, &m, &err);
    if (rc)
        fail_msg("load: %s", err.msg);
    return m;
}

/* Quantization: the type names, an unknown one refused before llama.cpp
 * opens anything (no output file), a wrong digest refused (the hash runs
 * beside llama.cpp, so its output is left to the caller), Q8_0 and Q4_0 of the
 * fixture written, loaded with their digests, and Q8_0 still telling the
 * golden story's start. */
static void test_quantize(void **state)
{
    if (!have_fixture())
        skip();
    assert_int_equal(al_engine_quant_type("Q8_0"), 7);
    assert_int_equal(al_engine_quant_type("Q4_0"), 2);
    assert_int_equal(al_engine_quant_type("F16"), 1);
    assert_int_equal(al_engine_quant_type("q8_0"), -1);
    assert_int_equal(al_engine_quant_type("IQ2_XXS"), -1); /* needs an importance matrix */
    assert_int_equal(al_engine_quant_type(NULL), -1);
    assert_non_null(strstr(al_engine_quant_types(), "Q4_K_M"));
    char *dir = tu_mkdtemp();
    char out[4096], digest[AL_DIGEST_SIZE];
    snprintf(out, sizeof out, "%s/q.gguf", dir);
    struct al_err err = AL_ERR_INIT;
    struct stat st;
    assert_int_equal(al_engine_quantize(fixture, FIXTURE_DIGEST, out, "Q9_9", 1, &err), AL_ERR_USAGE);
    assert_non_null(strstr(err.msg, "unknown quantization type 'Q9_9'"));
    assert_int_not_equal(stat(out, &st), 0);
    al_err_clear(&err);
    const char *zero = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    /* The hash runs beside the quantization: what llama.cpp wrote is the
     * caller's to remove (airlock quantize's spool; test_quantize.sh checks
     * that nothing is kept). */
    assert_int_equal(al_engine_quantize(fixture, zero, out, "Q8_0", 1, &err), AL_ERR_VERIFY);
    assert_non_null(strstr(err.msg, "does not match its digest"));
    unlink(out);
    const char *types[] = {"Q8_0", "Q4_0"};
    for (size_t i = 0; i < 2; i++) {
        al_err_clear(&err);
        if (al_engine_quantize(fixture, FIXTURE_DIGEST, out, types[i], 1, &err))
            fail_msg("quantize to %s: %s", types[i], err.msg);
        assert_int_equal(al_sha256_path(out, digest, NULL, NULL, &err), AL_OK);
        struct al_engine_model_params mp = al_engine_model_params_default();
        mp.threads = 1;
        mp.n_ctx = 128;
        struct al_engine_model *m = NULL;
        if (al_engine_model_load(out, digest, &mp, &m, &err))
            fail_msg("load the %s result: %s", types[i], err.msg);
        struct al_engine_model_info info;
        al_engine_model_info(m, &info);
        assert_non_null(strstr(info.desc, types[i]));
        struct al_engine_gen_params p = tu_greedy(12);
        struct al_engine_gen_result res;
        char *text = tu_gen(m, GOLDEN_PROMPT, &p, &res);
        assert_int_equal(res.n_gen, 12);
        if (i == 0 && strncmp(text, GOLDEN_TEXT, strlen(", there was a little girl named Lily")) != 0)
            fail_msg("Q8_0 lost the golden start: '%s'", text);
        free(text);
        al_engine_model_free(m);
    }
    tu_rmrf(dir);
    free(dir);
}

/* (a) the golden output, as llama.cpp's own server gives it */
static void test_golden(void **state)
{
    if (!have_fixture())
        skip();
    struct al_engine_model *m = load(1, 4);
    struct al_engine_model_info info;
    al_engine_model_info(m, &info);
    assert_string_equal(info.digest, FIXTURE_DIGEST);
    assert_int_equal(info.n_vocab, 512);
    assert_int_equal(info.n_embd, 64);
    assert_false(info.has_chat_template);

    struct al_engine_gen_params p = tu_greedy(GOLDEN_TOKENS);
    struct al_engine_gen_result res;
    char *text = tu_gen(m, GOLDEN_PROMPT, &p, &res);
    if (strncmp(text, GOLDEN_TEXT, strlen(GOLDEN_TEXT)) != 0)
        fail_msg("golden output differs:\n got: '%s'\nwant: '%s'", text, GOLDEN_TEXT);
    assert_string_equal(text, GOLDEN_TEXT);
    assert_int_equal(res.finish, AL_ENGINE_FINISH_LENGTH);
    assert_int_equal(res.n_gen, GOLDEN_TOKENS);
    /* BOS and the four tokens of the prompt, as llama-server counts them. */
    assert_int_equal(res.n_prompt, 5);
    free(text);
    al_engine_model_free(m);
}

/* (b) a blob that does not match its digest is refused and nothing loads */
static void test_digest_mismatch(void **state)
{
    if (!have_fixture())
        skip();
    struct al_engine_model *m = NULL;
    struct al_err err = AL_ERR_INIT;
    const char *zero = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    assert_int_equal(al_engine_model_load(fixture, zero, NULL, &m, &err), AL_ERR_VERIFY);
    assert_null(m);
    assert_non_null(strstr(err.msg, "does not match its digest"));
    assert_non_null(strstr(err.msg, FIXTURE_DIGEST)); /* what it got */
    assert_non_null(strstr(err.msg, "airlock fsck"));

    al_err_clear(&err);
    assert_int_equal(al_engine_model_load(fixture, "sha256:abc", NULL, &m, &err), AL_ERR_USAGE);
    assert_null(m);

    /* A copy with one byte changed, under the original's digest. */
    char *dir = tu_mkdtemp();
    char path[4096];
    snprintf(path, sizeof path, "%s/blob", dir);
    size_t len = 0;
    char *data = tu_read_file(fixture, &len);
    data[len / 2] ^= 1;
    tu_write_file(path, data, len);
    al_err_clear(&err);
    assert_int_equal(al_engine_model_load(path, FIXTURE_DIGEST, NULL, &m, &err), AL_ERR_VERIFY);
    assert_null(m);

    /* The verification cache: an unchanged blob is not hashed again, so a
     * byte changed behind the cache's back with the mtime put back goes
     * unseen (the operator's trade-off); a new mtime is hashed again. */
    data[len / 2] ^= 1;
    tu_write_file(path, data, len);
    struct al_engine_verify_cache *vc = al_engine_verify_cache_new();
    struct al_engine_model_params mp = al_engine_model_params_default();
    mp.verify_cache = vc;
    al_err_clear(&err);
    assert_int_equal(al_engine_model_load(path, FIXTURE_DIGEST, &mp, &m, &err), AL_OK);
    al_engine_model_free(m);
    m = NULL;
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    FILE *f = fopen(path, "r+b");
    fseek(f, (long)(len - 1), SEEK_SET); /* the last byte: tensor data, harmless */
    fputc(data[len - 1] ^ 1, f);
    fclose(f);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    assert_int_equal(al_engine_model_load(path, FIXTURE_DIGEST, &mp, &m, &err), AL_OK);
    al_engine_model_free(m);
    m = NULL;
    times[1].tv_sec -= 10;
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    assert_int_equal(al_engine_model_load(path, FIXTURE_DIGEST, &mp, &m, &err), AL_ERR_VERIFY);
    assert_null(m);
    mp.verify_cache = NULL;
    al_engine_verify_cache_free(vc);
    free(data);
    tu_rmrf(dir);
    free(dir);
}

/* ---- asynchronous helpers (the collector is tu_engine.h's) ---- */

/* Releases c once al_engine_model_free(m) has posted its quit, which a
 * submit tells ("being unloaded"; until then the full queue refuses it). No
 * sleep orders the two: released earlier, the request could run to its end. */
struct unload_probe {
    struct al_engine_model *m;
    struct tu_collect *c;
    bool unexpected; /* a submit failed otherwise than "busy" */
};

static void *release_when_unloading(void *arg)
{
    struct unload_probe *u = arg;
    struct al_engine_gen_params p = tu_greedy(1);
    for (;;) {
        struct al_err err = AL_ERR_INIT;
        enum al_rc rc = al_engine_submit(u->m, "x", &p, NULL, NULL, NULL, NULL, &err);
        if (rc != AL_ERR_BUSY) {
            u->unexpected = true;
            break;
        }
        if (strstr(err.msg, "being unloaded"))
            break;
        usleep(1000);
    }
    tu_release(u->c);
    return NULL;
}

/* (c) continuous batching: four at once give what each gives alone */
static void test_concurrent_same_as_alone(void **state)
{
    if (!have_fixture())
        skip();
    static const char *const prompts[4] = {"Once upon a time", "The little dog", "Tom and Sue went",
                                           "One day, a big bird"};
    struct al_engine_model *m = load(4, 8);
    struct al_engine_gen_params p = tu_greedy(48);
    char *alone[4];
    for (int i = 0; i < 4; i++)
        alone[i] = tu_gen(m, prompts[i], &p, NULL);

    /* Fresh model, so no prefix is reused and all four prompts are computed. */
    al_engine_model_free(m);
    m = load(4, 8);
    struct tu_collect c[4];
    for (int i = 0; i < 4; i++) {
        tu_collect_init(&c[i]);
        tu_submit(m, prompts[i], &p, tu_on_token, &c[i], NULL);
    }
    for (int i = 0; i < 4; i++) {
        tu_wait_done(&c[i]);
        assert_false(c[i].empty_piece);
        assert_string_equal(c[i].text, alone[i]);
        free(alone[i]);
    }
    struct al_engine_stats st;
    al_engine_stats(m, &st);
    assert_int_equal(st.tokens_gen, 4 * 48);
    /* Batched: far fewer decode calls than tokens generated. */
    assert_true(st.decode_calls < 2 * 48);
    assert_int_equal(st.n_active, 0);
    assert_int_equal(st.requests_done, 4);
    al_engine_model_free(m);
}

/* (d) stop strings, max_tokens, cancellation, the queue's bound */
static void test_stop_strings(void **state)
{
    if (!have_fixture())
        skip();
    struct al_engine_model *m = load(1, 4);
    struct al_engine_gen_params p = tu_greedy(64);
    const char *stop1[] = {"Lily"};
    p.stop = stop1;
    p.n_stop = 1;
    struct al_engine_gen_result res;
    char *text = tu_gen(m, GOLDEN_PROMPT, &p, &res);
    assert_string_equal(text, ", there was a little girl named ");
    assert_int_equal(res.finish, AL_ENGINE_FINISH_STOP);
    free(text);

    /* A stop string spanning tokens: its beginning is held back, never streamed. */
    const char *stop2[] = {"zzz", "little girl"};
    p.stop = stop2;
    p.n_stop = 2;
    struct tu_collect c;
    tu_collect_init(&c);
    tu_submit(m, GOLDEN_PROMPT, &p, tu_on_token, &c, NULL);
    tu_wait_done(&c);
    assert_string_equal(c.text, ", there was a ");
    assert_int_equal(c.res.finish, AL_ENGINE_FINISH_STOP);

    /* A partial match that does not complete is released. */
    const char *stop3[] = {"little boy"};
    p.stop = stop3;
    p.n_stop = 1;
    p.max_tokens = GOLDEN_TOKENS;
    text = tu_gen(m, GOLDEN_PROMPT, &p, &res);
    assert_string_equal(text, GOLDEN_TEXT);
    free(text);

    p = tu_greedy(3);
    text = tu_gen(m, GOLDEN_PROMPT, &p, &res);
    assert_int_equal(res.finish, AL_ENGINE_FINISH_LENGTH);
    assert_int_equal(res.n_gen, 3);
    assert_string_equal(text, ", there was");
    free(text);

    /* ignore_eos: the story would end well before 240 tokens; it does not. */
    p = tu_greedy(240);
    p.ignore_eos = true;
    text = tu_gen(m, GOLDEN_PROMPT, &p, &res);
    assert_int_equal(res.finish, AL_ENGINE_FINISH_LENGTH);
    assert_int_equal(res.n_gen, 240);
    free(text);
    /* Past the sequence's context (256): "length", at the context's end. */
    p.max_tokens = -1;
    text = tu_gen(m, GOLDEN_PROMPT, &p, &res);
    assert_int_equal(res.finish, AL_ENGINE_FINISH_LENGTH);
    assert_int_equal(res.n_prompt + res.n_gen, 256 + 1);
    free(text);

    struct al_err err = AL_ERR_INIT;
    const char *empty[] = {""};
    p.stop = empty;
    p.n_stop = 1;
    assert_int_equal(al_engine_submit(m, "x", &p, NULL, NULL, NULL, NULL, &err), AL_ERR_USAGE);
    al_engine_model_free(m);
}

static void test_cancel_and_busy(void **state)
{
    if (!have_fixture())
        skip();
    struct al_engine_model *m = load(1, 1);
    struct al_engine_gen_params p = tu_greedy(-1); /* until the context is full */

    /* Cancel from another thread mid-stream: the sequence is freed. */
    struct tu_collect a;
    tu_collect_init(&a);
    struct al_engine_req *ra = NULL;
    tu_submit(m, GOLDEN_PROMPT, &p, tu_on_token, &a, &ra);
    tu_wait_started(&a);
    al_engine_cancel(ra);
    tu_wait_done(&a);
    al_engine_req_free(ra);
    assert_int_equal(a.res.finish, AL_ENGINE_FINISH_CANCELLED);
    assert_true(a.res.n_gen < 200);
    struct al_engine_stats st;
    al_engine_stats(m, &st);
    assert_int_equal(st.n_active, 0);

    /* The callback says stop. */
    struct tu_collect b;
    tu_collect_init(&b);
    b.cancel_after = 2;
    tu_submit(m, GOLDEN_PROMPT, &p, tu_on_token, &b, NULL);
    tu_wait_done(&b);
    assert_int_equal(b.res.finish, AL_ENGINE_FINISH_CANCELLED);
    assert_int_equal(b.n_calls, 2);

    /* One sequence busy (its callback blocks the worker), one waiting: the
     * next is refused with AL_ERR_BUSY. */
    struct tu_collect c1, c2, c3;
    tu_collect_init(&c1);
    tu_collect_init(&c2);
    tu_collect_init(&c3);
    c1.block = true;
    struct al_engine_req *r1 = NULL;
    tu_submit(m, GOLDEN_PROMPT, &p, tu_on_token, &c1, &r1);
    tu_wait_started(&c1);
    struct tu_collect c2q;
    tu_collect_init(&c2q);
    struct al_engine_req *r2q = NULL;
    tu_submit(m, GOLDEN_PROMPT, &p, tu_on_token, &c2q, &r2q);
    al_engine_stats(m, &st);
    assert_int_equal(st.n_queued, 1);
    assert_int_equal(st.n_active, 1);
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_engine_submit(m, GOLDEN_PROMPT, &p, tu_on_token, tu_on_done, &c3, NULL, &err), AL_ERR_BUSY);
    /* Cancelling the waiting one takes it out of the queue while the
     * sequence is still busy: it never runs. */
    al_engine_cancel(r2q);
    tu_release(&c1);
    tu_wait_done(&c2q);
    al_engine_req_free(r2q);
    assert_int_equal(c2q.res.finish, AL_ENGINE_FINISH_CANCELLED);
    assert_int_equal(c2q.n_calls, 0);
    assert_int_equal(c2q.res.n_gen, 0);
    al_engine_cancel(r1);
    tu_wait_done(&c1);
    al_engine_req_free(r1);
    assert_true(c1.res.finish == AL_ENGINE_FINISH_CANCELLED || c1.res.finish == AL_ENGINE_FINISH_LENGTH);
    /* Freeing the model finishes an active request as cancelled (its
     * callback is released from another thread meanwhile, after the quit is
     * posted). A queued request fills the queue, so that a probe's submit
     * is refused as "busy" until the quit, then as "being unloaded". */
    c2.block = true;
    tu_submit(m, GOLDEN_PROMPT, &p, tu_on_token, &c2, NULL);
    tu_wait_started(&c2);
    struct tu_collect c4;
    tu_collect_init(&c4);
    tu_submit(m, GOLDEN_PROMPT, &p, tu_on_token, &c4, NULL);
    struct unload_probe u = {.m = m, .c = &c2};
    pthread_t t;
    pthread_create(&t, NULL, release_when_unloading, &u);
    al_engine_model_free(m);
    pthread_join(t, NULL);
    assert_false(u.unexpected);
    assert_true(c2.done);
    assert_int_equal(c2.res.finish, AL_ENGINE_FINISH_CANCELLED);
    assert_true(c4.done);
    assert_int_equal(c4.res.finish, AL_ENGINE_FINISH_CANCELLED);
    assert_false(c3.done);
}

/* (e) a grammar constrains the output */
static void test_grammar(void **state)
{
    if (!have_fixture())
        skip();
    struct al_engine_model *m = load(1, 4);
    struct al_engine_gen_params p = al_engine_gen_params_default();
    p.max_tokens = 16;
    p.grammar = "root ::= \"yes\" | \"no\"";
    for (uint32_t seed = 1; seed <= 4; seed++) {
        p.seed = seed;
        struct al_engine_gen_result res;
        char *text = tu_gen(m, GOLDEN_PROMPT, &p, &res);
        if (strcmp(text, "yes") != 0 && strcmp(text, "no") != 0)
            fail_msg("grammar not obeyed: '%s'", text);
        assert_int_equal(res.finish, AL_ENGINE_FINISH_STOP);
        free(text);
    }
    p.grammar = "root ::= (";
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_engine_submit(m, "x", &p, NULL, NULL, NULL, NULL, &err), AL_ERR_INVALID);
    al_engine_model_free(m);
}

/* sampling with a seed is reproducible; different seeds differ somewhere */
static void test_seeded_sampling(void **state)
{
    if (!have_fixture())
        skip();
    struct al_engine_model *m = load(2, 4);
    struct al_engine_gen_params p = al_engine_gen_params_default();
    p.max_tokens = 40;
    p.temperature = 1.0f;
    p.repeat_penalty = 1.1f;
    p.presence_penalty = 0.5f;
    p.seed = 1234;
    char *a = tu_gen(m, GOLDEN_PROMPT, &p, NULL);
    char *b = tu_gen(m, GOLDEN_PROMPT, &p, NULL);
    assert_string_equal(a, b);
    int differ = 0;
    for (uint32_t seed = 1; seed <= 3; seed++) {
        p.seed = seed;
        char *c = tu_gen(m, GOLDEN_PROMPT, &p, NULL);
        differ += strcmp(a, c) != 0;
        free(c);
    }
    assert_true(differ > 0);
    free(a);
    free(b);
    struct al_err err = AL_ERR_INIT;
    p.top_p = 1.5f;
    assert_int_equal(al_engine_submit(m, "x", &p, NULL, NULL, NULL, NULL, &err), AL_ERR_USAGE);
    al_engine_model_free(m);
}

/* (f) embeddings: shape, unit norm, determinism */
static void test_embeddings(void **state)
{
    if (!have_fixture())
        skip();
    struct al_engine_model *m = load(1, 4);
    struct al_engine_model_info info;
    al_engine_model_info(m, &info);
    int d = info.n_embd;
    const char *texts[3] = {"Once upon a time", "The cat sat on the mat.", "Once upon a time"};
    float *v = calloc((size_t)(3 * d), sizeof *v);
    float *w = calloc((size_t)(3 * d), sizeof *w);
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_engine_embed(m, texts, 3, v, &err), AL_OK);
    for (int i = 0; i < 3; i++) {
        double n = 0;
        for (int k = 0; k < d; k++)
            n += (double)v[i * d + k] * v[i * d + k];
        assert_true(fabs(sqrt(n) - 1.0) < 1e-4);
    }
    /* The same text in the same batch gives the same vector; another differs. */
    for (int k = 0; k < d; k++)
        assert_true(fabsf(v[k] - v[2 * d + k]) < 1e-5f);
    double dot = 0;
    for (int k = 0; k < d; k++)
        dot += (double)v[k] * v[d + k];
    assert_true(dot < 0.9999);
    /* Deterministic across calls, and one text alone as in a batch. */
    assert_int_equal(al_engine_embed(m, texts, 3, w, &err), AL_OK);
    assert_memory_equal(v, w, (size_t)(3 * d) * sizeof *v);
    assert_int_equal(al_engine_embed(m, texts + 1, 1, w, &err), AL_OK);
    for (int k = 0; k < d; k++)
        assert_true(fabsf(v[d + k] - w[k]) < 1e-5f);
    /* Generation still works beside the embeddings context. */
    struct al_engine_gen_params p = tu_greedy(GOLDEN_TOKENS);
    char *text = tu_gen(m, GOLDEN_PROMPT, &p, NULL);
    assert_string_equal(text, GOLDEN_TEXT);
    free(text);
    free(v);
    free(w);
    al_engine_model_free(m);
}

/* (f2) an embedding call asks its caller's check before every batch and
 * stops with the check's code and message; the model stays usable; a call
 * waiting for another one's lock asks its check between slices of the wait. */
struct stop_after {
    int calls, stop_at;
};

static enum al_rc stop_check(void *ud, struct al_err *err)
{
    struct stop_after *s = ud;
    if (++s->calls >= s->stop_at)
        return al_err_set(err, AL_ERR_BUSY, "stopped by the test");
    return AL_OK;
}

/* A call that holds the embedding lock until told to go on. */
struct holder {
    struct al_engine_model *m;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    bool holding, release;
    enum al_rc rc;
};

static enum al_rc hold_check(void *ud, struct al_err *err)
{
    struct holder *h = ud;
    pthread_mutex_lock(&h->mu);
    if (++h->calls == 2) { /* before the first batch: the lock is held */
        h->holding = true;
        pthread_cond_broadcast(&h->cv);
        while (!h->release)
            pthread_cond_wait(&h->cv, &h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return AL_OK;
}

static void *hold_thread(void *arg)
{
    struct holder *h = arg;
    const char *text = "Once upon a time";
    float v[4096];
    struct al_err err = AL_ERR_INIT;
    struct al_engine_embed_ctl ctl = {hold_check, h};
    h->rc = al_engine_embed_ctl(h->m, &text, 1, &ctl, v, NULL, &err);
    return NULL;
}

static void test_embed_stops(void **state)
{
    if (!have_fixture())
        skip();
    struct al_engine_model *m = load(1, 4);
    struct al_engine_model_info info;
    al_engine_model_info(m, &info);
    assert_true(info.n_embd <= 4096);
    enum { N = 40 }; /* 5 batches of 8 */
    const char *texts[N];
    for (int i = 0; i < N; i++)
        texts[i] = "Once upon a time";
    float *v = calloc((size_t)N * (size_t)info.n_embd, sizeof *v);
    struct al_err err = AL_ERR_INIT;
    struct stop_after s = {0, 1000};
    struct al_engine_embed_ctl ctl = {stop_check, &s};
    size_t tokens = 0;
    assert_int_equal(al_engine_embed_ctl(m, texts, N, &ctl, v, &tokens, &err), AL_OK);
    assert_int_equal(s.calls, 1 + 5); /* before the lock, before each batch */
    assert_true(tokens >= 2 * N);
    s = (struct stop_after){0, 3};
    assert_int_equal(al_engine_embed_ctl(m, texts, N, &ctl, v, &tokens, &err), AL_ERR_BUSY);
    assert_string_equal(err.msg, "stopped by the test");
    assert_int_equal(s.calls, 3);
    assert_int_equal(tokens, 0);

    struct holder h = {.m = m};
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cv, NULL);
    pthread_t t;
    pthread_create(&t, NULL, hold_thread, &h);
    pthread_mutex_lock(&h.mu);
    while (!h.holding)
        pthread_cond_wait(&h.cv, &h.mu);
    pthread_mutex_unlock(&h.mu);
    s = (struct stop_after){0, 3}; /* before the lock, then two slices of the wait */
    al_err_clear(&err);
    assert_int_equal(al_engine_embed_ctl(m, texts, 1, &ctl, v, NULL, &err), AL_ERR_BUSY);
    assert_int_equal(s.calls, 3);
    pthread_mutex_lock(&h.mu);
    h.release = true;
    pthread_cond_broadcast(&h.cv);
    pthread_mutex_unlock(&h.mu);
    pthread_join(t, NULL);
    assert_int_equal(h.rc, AL_OK);
    al_err_clear(&err);
    assert_int_equal(al_engine_embed(m, texts, 1, v, &err), AL_OK); /* usable after all that */
    pthread_cond_destroy(&h.cv);
    pthread_mutex_destroy(&h.mu);
    free(v);
    al_engine_model_free(m);
}

/* (g) a shared prefix in the KV cache is reused, not recomputed */
static void test_prefix_reuse(void **state)
{
    if (!have_fixture())
        skip();
    struct al_engine_model *m = load(2, 4);
    const char *system =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
        "One day, she saw a big, red ball. She wanted to play with it.";
    char q1[512], q2[512];
    snprintf(q1, sizeof q1, "%s Her mom said", system);
    snprintf(q2, sizeof q2, "%s The dog ran", system);
    int32_t *toks = NULL;
    size_t n_sys = 0;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_engine_tokenize(m, system, strlen(system), true, true, &toks, &n_sys, &err), AL_OK);
    free(toks);
    assert_true(n_sys > 30);

    struct al_engine_gen_params p = tu_greedy(8);
    struct al_engine_gen_result r1, r2, r3;
    char *t1 = tu_gen(m, q1, &p, &r1);
    assert_int_equal(r1.n_cached, 0);
    char *t2 = tu_gen(m, q2, &p, &r2);
    assert_true(r2.n_cached >= (int)n_sys - 1);
    assert_true(r2.n_prompt - r2.n_cached < r1.n_prompt - r1.n_cached);
    /* The same prompt again: all but its last token come from the cache, and
     * the answer is the same. (q2 went into q1's slot, the one sharing the
     * longest prefix, so it is q2 that is whole in the cache now.) */
    char *t3 = tu_gen(m, q2, &p, &r3);
    assert_int_equal(r3.n_cached, r3.n_prompt - 1);
    assert_string_equal(t2, t3);
    struct al_engine_stats st;
    al_engine_stats(m, &st);
    assert_int_equal(st.tokens_cached, (uint64_t)(r2.n_cached + r3.n_cached));
    assert_true(st.kv_cells_used > 0);
    free(t1);
    free(t2);
    free(t3);
    al_engine_model_free(m);
}

static void test_tokens_and_chat(void **state)
{
    if (!have_fixture())
        skip();
    struct al_engine_model *m = load(1, 4);
    struct al_err err = AL_ERR_INIT;
    int32_t *toks = NULL;
    size_t n = 0;
    assert_int_equal(al_engine_tokenize(m, GOLDEN_PROMPT, strlen(GOLDEN_PROMPT), false, false, &toks, &n, &err),
                     AL_OK);
    assert_int_equal(n, 4);
    char *s = NULL;
    size_t len = 0;
    assert_int_equal(al_engine_detokenize(m, toks, n, false, &s, &len, &err), AL_OK);
    assert_string_equal(s, GOLDEN_PROMPT);
    free(s);
    s = NULL;
    toks[0] = 99999;
    assert_int_equal(al_engine_detokenize(m, toks, n, false, &s, &len, &err), AL_ERR_INVALID);
    free(toks);

    /* The fixture has no chat template: the fallback applies. */
    struct al_engine_chat_msg msgs[2] = {{"system", "Be brief."}, {"user", "Hi"}};
    char *chat = NULL;
    assert_int_equal(al_engine_chat_format(m, msgs, 2, true, NULL, &chat, &err), AL_OK);
    assert_string_equal(chat, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                              "<|im_start|>assistant\n");
    free(chat);
    chat = NULL;
    assert_int_equal(al_engine_chat_format(m, msgs, 2, true, "llama3", &chat, &err), AL_OK);
    assert_non_null(strstr(chat, "<|start_header_id|>user<|end_header_id|>"));
    free(chat);
    chat = NULL;
    al_err_clear(&err);
    assert_int_equal(al_engine_chat_format(m, msgs, 2, true, "no-such-template", &chat, &err), AL_ERR_INVALID);
    assert_null(chat);

    /* A prompt given as token ids is that prompt: BOS and all, as tokenized. */
    struct al_engine_gen_params pt = tu_greedy(8);
    char *want = tu_gen(m, GOLDEN_PROMPT, &pt, NULL);
    toks = NULL;
    assert_int_equal(al_engine_tokenize(m, GOLDEN_PROMPT, strlen(GOLDEN_PROMPT), true, true, &toks, &n, &err), AL_OK);
    pt.prompt_tokens = toks;
    pt.n_prompt_tokens = n;
    char *got = tu_gen(m, "ignored", &pt, NULL);
    assert_string_equal(got, want);
    free(got);
    free(want);
    /* ... each id checked against the vocabulary, none at all refused */
    toks[1] = 99999;
    al_err_clear(&err);
    assert_int_equal(al_engine_submit(m, "", &pt, NULL, NULL, NULL, NULL, &err), AL_ERR_INVALID);
    toks[1] = -1;
    al_err_clear(&err);
    assert_int_equal(al_engine_submit(m, "", &pt, NULL, NULL, NULL, NULL, &err), AL_ERR_INVALID);
    pt.n_prompt_tokens = 0;
    al_err_clear(&err);
    assert_int_equal(al_engine_submit(m, "", &pt, NULL, NULL, NULL, NULL, &err), AL_ERR_INVALID);
    free(toks);
    /* The fixture has no FIM tokens; it wants a BOS. One sequence, idle. */
    struct al_engine_fim fim;
    al_engine_fim_tokens(m, &fim);
    assert_true(fim.pre == -1 && fim.suf == -1 && fim.mid == -1 && fim.rep == -1 && fim.sep == -1);
    assert_true(fim.bos >= 0);
    bool busy[4] = {true, true, true, true};
    assert_int_equal(al_engine_seq_busy(m, busy, 4), 1);
    assert_false(busy[0]);

    /* A prompt longer than a sequence's context is refused up front. */
    char *big = malloc(4000);
    for (int i = 0; i < 3999; i++)
        big[i] = i % 2 ? ' ' : 'a';
    big[3999] = '\0';
    struct al_engine_gen_params p = tu_greedy(4);
    al_err_clear(&err);
    assert_int_equal(al_engine_submit(m, big, &p, NULL, NULL, NULL, NULL, &err), AL_ERR_LIMIT);
    free(big);
    al_engine_model_free(m);
}

/* (k) top log-probabilities per token: greedy picks the most likely one,
 * every sampled token is reported, the figures are log-probabilities */
struct probs_seen {
    int n;
    int32_t tokens[64];
    bool ok;
};

static void on_probs(void *ud, const struct al_engine_token_probs *tp)
{
    struct probs_seen *ps = ud;
    bool ok = tp->n == 5 && tp->ids[0] == tp->token && tp->logprob <= 0.0f && tp->logprob == tp->logprobs[0];
    for (int i = 1; i < tp->n; i++)
        ok = ok && tp->logprobs[i] <= tp->logprobs[i - 1] && tp->ids[i] != tp->ids[0];
    ps->ok = ps->ok && ok;
    if (ps->n < 64)
        ps->tokens[ps->n] = tp->token;
    ps->n++;
}

static void test_token_probs(void **state)
{
    if (!have_fixture())
        skip();
    struct al_engine_model *m = load(1, 4);
    struct al_engine_gen_params p = tu_greedy(GOLDEN_TOKENS);
    struct probs_seen ps = {.ok = true};
    p.n_probs = 5;
    p.on_probs = on_probs;
    p.probs_ud = &ps;
    struct al_engine_gen_result res;
    char *text = tu_gen(m, GOLDEN_PROMPT, &p, &res);
    assert_string_equal(text, GOLDEN_TEXT);
    assert_true(ps.ok);
    assert_int_equal(ps.n, res.n_gen);
    char *back = NULL;
    size_t len = 0;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_engine_detokenize(m, ps.tokens, (size_t)ps.n, false, &back, &len, &err), AL_OK);
    assert_string_equal(back, GOLDEN_TEXT);
    free(back);
    free(text);
    p.n_probs = 21; /* AL_LIMIT_TOP_PROBS + 1 */
    assert_int_equal(al_engine_submit(m, "x", &p, NULL, NULL, NULL, NULL, &err), AL_ERR_LIMIT);
    al_engine_model_free(m);
}

/* post_sampling_probs: the probabilities the chain left for its draw. */
struct post_seen {
    int n;
    int32_t tokens[64];
    bool ok;
    int top_k;           /* the chain's top_k: at most that many candidates */
};

static void on_post(void *ud, const struct al_engine_token_probs *tp)
{
    struct post_seen *ps = ud;
    double sum = 0;
    bool ok = tp->post_sampling && tp->n >= 1 && tp->n <= ps->top_k && tp->logprob > 0.0f && tp->logprob <= 1.0f;
    for (int i = 0; i < tp->n; i++) {
        ok = ok && tp->logprobs[i] > 0.0f && (i == 0 || tp->logprobs[i] <= tp->logprobs[i - 1]);
        ok = ok && (tp->ids[i] != tp->token || tp->logprobs[i] == tp->logprob);
        sum += tp->logprobs[i];
    }
    /* Fewer than asked for (5): all the chain left, summing to 1. */
    ps->ok = ps->ok && ok && (tp->n == 5 || fabs(sum - 1.0) < 1e-4);
    if (ps->n < 64)
        ps->tokens[ps->n] = tp->token;
    ps->n++;
}

static void test_post_sampling_probs(void **state)
{
    if (!have_fixture())
        skip();
    struct al_engine_model *m = load(1, 4);
    /* Greedy: the golden text, each token alone with probability 1. */
    struct al_engine_gen_params p = tu_greedy(GOLDEN_TOKENS);
    struct post_seen ps = {.ok = true, .top_k = 1};
    p.n_probs = 5;
    p.on_probs = on_post;
    p.probs_ud = &ps;
    p.post_sampling_probs = true;
    struct al_engine_gen_result res;
    char *text = tu_gen(m, GOLDEN_PROMPT, &p, &res);
    assert_string_equal(text, GOLDEN_TEXT);
    free(text);
    assert_true(ps.ok);
    assert_int_equal(ps.n, res.n_gen);
    /* Sampled under a seed with top_k 2: at most two candidates summing to
     * 1, and the same draw as without post_sampling_probs. */
    p = al_engine_gen_params_default();
    p.max_tokens = 16;
    p.temperature = 1.0f;
    p.top_k = 2;
    p.seed = 4242;
    p.cache_prompt = false;
    p.n_probs = 5;
    p.on_probs = on_post;
    p.post_sampling_probs = true;
    struct post_seen post = {.ok = true, .top_k = 2};
    p.probs_ud = &post;
    char *a = tu_gen(m, GOLDEN_PROMPT, &p, &res);
    struct probs_seen pre = {.ok = true};
    p.post_sampling_probs = false;
    p.on_probs = on_probs;
    p.probs_ud = &pre;
    char *b = tu_gen(m, GOLDEN_PROMPT, &p, &res);
    assert_true(post.ok);
    assert_string_equal(a, b);
    assert_int_equal(post.n, pre.n);
    assert_memory_equal(post.tokens, pre.tokens, (size_t)(post.n < 64 ? post.n : 64) * sizeof post.tokens[0]);
    free(a);
    free(b);
    al_engine_model_free(m);
}

int main(void)
{
    if (getenv("AL_ENGINE_DEBUG"))
        al_log_set_level(AL_LOG_DEBUG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_quantize),
        cmocka_unit_test(test_digest_mismatch),
        cmocka_unit_test(test_concurrent_same_as_alone),
        cmocka_unit_test(test_stop_strings),
        cmocka_unit_test(test_cancel_and_busy),
        cmocka_unit_test(test_grammar),
        cmocka_unit_test(test_seeded_sampling),
        cmocka_unit_test(test_embeddings),
        cmocka_unit_test(test_embed_stops),
        cmocka_unit_test(test_prefix_reuse),
        cmocka_unit_test(test_tokens_and_chat),
        cmocka_unit_test(test_token_probs),
        cmocka_unit_test(test_post_sampling_probs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
