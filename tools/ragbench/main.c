/*
 * airlock-ragbench: measurements for bench/rag.sh.
 *
 *   airlock-ragbench embed MODEL DIGEST CHUNKS.txt [-t THREADS] [-r ROUNDS]
 *       embeds every line of CHUNKS.txt through al_engine_embed (32 texts a
 *       call, as 'rag add' does) and prints chunks/s of the best round.
 *   airlock-ragbench query HOME N DIM [-q QUERIES]
 *       builds a collection of N synthetic chunks (clustered unit vectors,
 *       Zipf-distributed words) through the collection's own storage code,
 *       then times al_rag_query_vec in hybrid, vector and bm25 mode (query
 *       embedding excluded) and measures HNSW recall@10 against an exact
 *       index of the same vectors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fs.h"
#include "rag/rag_int.h"

static double now_ms(void) { return al_rag__now_ms(); }

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double unif(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }
static float gauss(void)
{
    double u = unif() + 1e-12, v = unif();
    return (float)(sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}
static void normalize(float *x, int d)
{
    double s = 0;
    for (int i = 0; i < d; i++)
        s += (double)x[i] * x[i];
    float k = (float)(1 / sqrt(s));
    for (int i = 0; i < d; i++)
        x[i] *= k;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int bench_embed(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    int threads = 2, rounds = 3;
    for (int i = 5; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-t"))
            threads = (int)strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-r"))
            rounds = (int)strtol(argv[i + 1], NULL, 10);
    }
    struct al_err err = AL_ERR_INIT;
    char *data = NULL;
    size_t len = 0;
    if (al_fs_read_file(argv[4], 256u << 20, &data, &len, &err))
        return fprintf(stderr, "%s\n", err.msg), 1;
    size_t n = 0, cap = 1024;
    char **lines = malloc(cap * sizeof *lines);
    for (char *l = data, *nl; l && *l; l = nl ? nl + 1 : NULL) {
        nl = strchr(l, '\n');
        if (nl)
            *nl = 0;
        if (!*l)
            continue;
        if (n == cap)
            lines = realloc(lines, (cap *= 2) * sizeof *lines);
        lines[n++] = l;
    }
    struct al_engine_model_params mp = al_engine_model_params_default();
    mp.threads = threads;
    struct al_engine_model *m = NULL;
    if (al_engine_model_load(argv[2], argv[3], &mp, &m, &err))
        return fprintf(stderr, "%s\n", err.msg), 1;
    struct al_engine_model_info mi;
    al_engine_model_info(m, &mi);
    float *out = malloc(32 * (size_t)mi.n_embd * sizeof *out);
    al_engine_embed(m, (const char *const *)lines, 1, out, &err); /* creates the context */
    double best = 0;
    for (int r = 0; r < rounds; r++) {
        double t = now_ms();
        for (size_t i = 0; i < n; i += 32) {
            size_t k = n - i < 32 ? n - i : 32;
            if (al_engine_embed(m, (const char *const *)lines + i, k, out, &err))
                return fprintf(stderr, "%s\n", err.msg), 1;
        }
        double cps = (double)n / ((now_ms() - t) / 1e3);
        best = cps > best ? cps : best;
    }
    printf("airlock embed: %zu chunks, %d threads, n_ctx %d: %.1f chunks/s (best of %d)\n", n, threads, mi.n_ctx,
           best, rounds);
    free(out);
    free(lines);
    free(data);
    al_engine_model_free(m);
    return 0;
}

#define VOCAB 20000
#define CLUSTERS 2000

static void word(char *out, size_t size, int rank)
{
    static const char *syl[] = {"ka", "lo", "mi", "ne", "ru", "ta", "vi", "so", "pe", "du", "ga", "fo", "zi", "be", "xu", "ha"};
    size_t k = 0;
    int r = rank + 1;
    do {
        k += (size_t)snprintf(out + k, size - k, "%s", syl[r % 16]);
        r /= 16;
    } while (r && k + 3 < size);
}

static int zipf(void)
{
    /* rank ~ 1/r over VOCAB words, by inverse transform on the harmonic sum */
    double u = unif() * (log(VOCAB) + 0.5772);
    int r = (int)exp(u - 0.5772);
    return r < 1 ? 0 : r >= VOCAB ? VOCAB - 1 : r - 1;
}

static void text(char *out, size_t size, int words)
{
    size_t k = 0;
    for (int i = 0; i < words && k + 24 < size; i++) {
        char w[24];
        word(w, sizeof w, zipf());
        k += (size_t)snprintf(out + k, size - k, "%s%s", i ? " " : "", w);
    }
}

static int bench_query(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    const char *home = argv[2];
    int n = (int)strtol(argv[3], NULL, 10), d = (int)strtol(argv[4], NULL, 10), nq = 500;
    if (argc > 6 && !strcmp(argv[5], "-q"))
        nq = (int)strtol(argv[6], NULL, 10);
    struct al_err err = AL_ERR_INIT;
    char digest[AL_DIGEST_SIZE] = "sha256:";
    memset(digest + 7, 'a', 64);
    digest[71] = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct al_rag_create_opts co = {.embed_ref = "synthetic", .embed_model = "synthetic", .embed_manifest = digest,
                                    .embed_digest = digest, .dim = d, .hnsw_threshold = 50000};
    struct al_rag *r = NULL;
    enum al_rc crc = al_rag_create(home, "bench", &co, &err);
    bool reuse = crc == AL_ERR_EXISTS; /* a collection built by an earlier run */
    if (reuse)
        al_err_clear(&err);
    if ((crc && !reuse) || al_rag_open(home, "bench", true, &r, &err) || al_rag__lock(r, &err))
        return fprintf(stderr, "%s\n", err.msg), 1;
    float *centers = malloc((size_t)CLUSTERS * d * sizeof *centers), *x = malloc((size_t)n * d * sizeof *x);
    for (int c = 0; c < CLUSTERS; c++) {
        for (int i = 0; i < d; i++)
            centers[(size_t)c * d + i] = gauss();
        normalize(centers + (size_t)c * d, d);
    }
    double t = now_ms();
    int64_t doc = 0, gen;
    if (reuse)
        goto built;
    al_rag_db_begin(r->db, &err);
    char tx[2048], key[64];
    for (int i = 0; i < n && !err.rc; i++) {
        if (i % 20 == 0) {
            snprintf(key, sizeof key, "doc%06d.txt", i / 20);
            struct al_rag_docrow dr = {0, key, digest, "text", 0, 0};
            al_rag_db_doc_insert(r->db, &dr, &doc, &err);
        }
        int c = (int)(rnd() % CLUSTERS);
        float *v = x + (size_t)i * d;
        for (int j = 0; j < d; j++)
            v[j] = centers[(size_t)c * d + j] + 0.35f * gauss() / sqrtf((float)d) * 3;
        normalize(v, d);
        text(tx, sizeof tx, 120);
        struct al_rag_chunk ch = {.page = 0, .heading = "", .text = tx, .start = (uint64_t)i, .end = (uint64_t)i + 1};
        snprintf(ch.id, sizeof ch.id, "%064d", i);
        al_rag_db_chunk_insert(r->db, doc, -1, &ch, v, d, NULL, &err);
    }
    if (!err.rc)
        al_rag__bump_generation(r, &gen, &err);
    if (err.rc || al_rag_db_commit(r->db, &err) || al_rag__load_info(r, &err))
        return fprintf(stderr, "%s\n", err.msg), 1;
    printf("collection: %d chunks of %d dimensions stored in %.1f s\n", n, d, (now_ms() - t) / 1e3);
built:
    n = (int)r->info.chunks;
    t = now_ms();
    if (al_rag__vindex(r, &err))
        return fprintf(stderr, "%s\n", err.msg), 1;
    printf("vector index: %s, built in %.1f s\n", al_vindex_describe(r->vi), (now_ms() - t) / 1e3);
    /* queries: a cluster centre plus noise, and six Zipf words */
    float *qs = malloc((size_t)nq * d * sizeof *qs);
    char(*qt)[256] = malloc((size_t)nq * sizeof *qt);
    for (int i = 0; i < nq; i++) {
        int c = (int)(rnd() % CLUSTERS);
        for (int j = 0; j < d; j++)
            qs[(size_t)i * d + j] = centers[(size_t)c * d + j] + 0.35f * gauss() / sqrtf((float)d) * 3;
        normalize(qs + (size_t)i * d, d);
        text(qt[i], sizeof qt[i], 6);
    }
    double *lat = malloc((size_t)nq * sizeof *lat);
    const enum al_rag_mode modes[] = {AL_RAG_HYBRID, AL_RAG_VECTOR, AL_RAG_BM25};
    for (int mi = 0; mi < 3; mi++) {
        struct al_rag_query_opts qo = {.k = 10, .mode = modes[mi]};
        for (int i = 0; i < nq; i++) {
            struct al_rag_hits h;
            double t0 = now_ms();
            if (al_rag_query_vec(r, qs + (size_t)i * d, d, digest, qt[i], &qo, &h, &err))
                return fprintf(stderr, "%s\n", err.msg), 1;
            lat[i] = now_ms() - t0;
            al_rag_hits_release(&h);
        }
        qsort(lat, (size_t)nq, sizeof *lat, cmp_double);
        printf("query %-6s k=10 over %d chunks: p50 %.2f ms  p95 %.2f ms  p99 %.2f ms  (%d queries)\n",
               al_rag_mode_name(modes[mi]), n, lat[nq / 2], lat[nq * 95 / 100], lat[nq * 99 / 100], nq);
    }
    /* HNSW recall@10 against an exact index of the same vectors */
    if (al_vindex_kind(r->vi) == AL_VINDEX_HNSW) {
        struct al_vindex *flat = NULL;
        int64_t *ids = malloc((size_t)n * sizeof *ids);
        for (size_t p = 0; p < (size_t)n; p++)
            al_vindex_get(r->vi, p, x + p * (size_t)d, &ids[p], &err);
        al_vindex_new(d, AL_VINDEX_FLAT, 0, 0, &flat, &err);
        al_vindex_add(flat, (size_t)n, x, ids, &err);
        long found = 0;
        double tf = 0, th = 0;
        for (int i = 0; i < nq; i++) {
            float s1[10], s2[10];
            int64_t a[10], b[10];
            double t0 = now_ms();
            al_vindex_search(flat, qs + (size_t)i * d, 10, 0, s1, a, &err);
            double t1 = now_ms();
            al_vindex_search(r->vi, qs + (size_t)i * d, 10, 128, s2, b, &err);
            th += now_ms() - t1;
            tf += t1 - t0;
            for (int p = 0; p < 10; p++)
                for (int q = 0; q < 10; q++)
                    found += a[p] == b[q];
        }
        printf("HNSW recall@10 vs exact (efSearch 128): %.4f over %d queries; mean search %.2f ms HNSW, %.2f ms exact\n",
               (double)found / (10.0 * nq), nq, th / nq, tf / nq);
        al_vindex_free(flat);
        free(ids);
    }
    al_rag_free(r);
    free(centers);
    free(x);
    free(qs);
    free(qt);
    free(lat);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "embed"))
        return bench_embed(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "query"))
        return bench_query(argc, argv);
    fprintf(stderr, "usage: airlock-ragbench embed MODEL DIGEST CHUNKS.txt [-t T] [-r R]\n"
                    "       airlock-ragbench query HOME N DIM [-q QUERIES]\n");
    return 2;
}
