/*
 * airlock-engine-bench: decode speed of the engine's scheduler, for side by
 * side runs with llama-bench and llama-server (same model, same threads).
 *
 *   airlock-engine-bench MODEL DIGEST [-t THREADS] [-n TOKENS] [-c CLIENTS] [-r ROUNDS]
 *
 * Each round submits CLIENTS greedy requests at once ("Once upon a time",
 * end of generation ignored, TOKENS tokens each) and waits for all. Prints
 * single-stream decode tokens/s (from each request's own generation time) and
 * aggregate tokens/s (all tokens over the round's wall time), best round.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "engine/engine.h"

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int left;
    double gen_ms_sum, ttft_ms_sum;
    int n_gen_sum;
};

static void on_done(void *ud, const struct al_engine_gen_result *res)
{
    struct waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->gen_ms_sum += res->gen_ms;
    w->ttft_ms_sum += res->ttft_ms;
    /* The first token ends the prompt phase: gen_ms covers n_gen - 1 decodes. */
    w->n_gen_sum += res->n_gen - 1;
    if (--w->left == 0)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int arg_int(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!end || *end || v <= 0 || v > 1000000) {
        fprintf(stderr, "airlock-engine-bench: '%s' is not a positive number\n", s);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: airlock-engine-bench MODEL DIGEST [-t THREADS] [-n TOKENS] [-c CLIENTS] [-r ROUNDS]\n");
        return 2;
    }
    int threads = 2, tokens = 128, clients = 1, rounds = 5;
    for (int i = 3; i + 1 < argc; i += 2) {
        int v = arg_int(argv[i + 1]);
        if (strcmp(argv[i], "-t") == 0)
            threads = v;
        else if (strcmp(argv[i], "-n") == 0)
            tokens = v;
        else if (strcmp(argv[i], "-c") == 0)
            clients = v;
        else if (strcmp(argv[i], "-r") == 0)
            rounds = v;
    }
    struct al_engine_model_params mp = al_engine_model_params_default();
    mp.threads = threads;
    mp.n_seq = clients;
    mp.n_ctx = tokens + 64;
    mp.queue_max = clients;
    struct al_engine_model *m = NULL;
    struct al_err err = AL_ERR_INIT;
    if (al_engine_model_load(argv[1], argv[2], &mp, &m, &err)) {
        fprintf(stderr, "airlock-engine-bench: %s\n", err.msg);
        return 1;
    }
    struct al_engine_gen_params p = al_engine_gen_params_default();
    p.temperature = 0;
    p.max_tokens = tokens;
    p.ignore_eos = true;
    double best_single = 0, best_agg = 0, best_ttft = 1e30;
    for (int r = 0; r < rounds; r++) {
        struct waiter w = {.left = clients};
        pthread_mutex_init(&w.mu, NULL);
        pthread_cond_init(&w.cv, NULL);
        double t0 = now_ms();
        for (int c = 0; c < clients; c++) {
            /* A different prompt per round, so no round reuses the last one's cache. */
            char prompt[128];
            snprintf(prompt, sizeof prompt, "Once upon a time %d %d", r, c);
            if (al_engine_submit(m, prompt, &p, NULL, on_done, &w, NULL, &err)) {
                fprintf(stderr, "airlock-engine-bench: %s\n", err.msg);
                return 1;
            }
        }
        pthread_mutex_lock(&w.mu);
        while (w.left > 0)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        double wall = now_ms() - t0;
        double single = w.n_gen_sum / (w.gen_ms_sum / 1e3);
        double agg = (double)clients * tokens / (wall / 1e3);
        double ttft = w.ttft_ms_sum / clients;
        if (single > best_single)
            best_single = single;
        if (agg > best_agg)
            best_agg = agg;
        if (ttft < best_ttft)
            best_ttft = ttft;
    }
    printf("{\"threads\": %d, \"clients\": %d, \"tokens\": %d, \"rounds\": %d, "
           "\"per_stream_tps\": %.1f, \"aggregate_tps\": %.1f, \"ttft_ms\": %.2f}\n",
           threads, clients, tokens, rounds, best_single, best_agg, best_ttft);
    al_engine_model_free(m);
    return 0;
}
