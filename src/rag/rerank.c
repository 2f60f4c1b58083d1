/*
 * rerank.c: the second stage of retrieval. The fused candidates of a query
 * (query.c), with their texts, are scored against the question by a
 * cross-encoder (engine's al_engine_rerank) and reordered by that score,
 * highest first; ties keep the fused order, so the same collection, question
 * and model always give the same list. The k best stay.
 */
#include "rag/rag_int.h"

struct order {
    size_t at;    /* index in the fused list */
    float score;
};

static int by_score(const void *a, const void *b)
{
    const struct order *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

enum al_rc al_rag__rerank(struct al_rag_hits *h, const char *question, struct al_engine_model *reranker,
                          const struct al_engine_embed_ctl *ctl, size_t k, struct al_err *err)
{
    size_t n = h->n;
    if (n == 0)
        return AL_OK;
    const char **texts = calloc(n, sizeof *texts);
    float *scores = calloc(n, sizeof *scores);
    struct order *o = calloc(n, sizeof *o);
    struct al_rag_hit *v = calloc(n, sizeof *v);
    enum al_rc rc = texts && scores && o && v ? AL_OK : al_err_set(err, AL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++)
        texts[i] = h->v[i].text ? h->v[i].text : "";
    double t = al_rag__now_ms();
    if (!rc)
        rc = al_engine_rerank(reranker, question, texts, n, ctl, scores, NULL, err);
    h->ms_rerank = al_rag__now_ms() - t;
    if (!rc) {
        for (size_t i = 0; i < n; i++)
            o[i] = (struct order){i, scores[i]};
        qsort(o, n, sizeof *o, by_score);
        for (size_t i = 0; i < n; i++) {
            v[i] = h->v[o[i].at];
            v[i].fused_rank = (int)o[i].at + 1;
            v[i].rerank = o[i].score;
        }
        for (size_t i = k; i < n; i++) { /* the candidates that do not make it */
            free(v[i].doc);
            free(v[i].heading);
            free(v[i].text);
        }
        free(h->v);
        h->v = v;
        v = NULL;
        h->n = n < k ? n : k;
        h->reranked = true;
    }
    free(texts);
    free(scores);
    free(o);
    free(v);
    return rc;
}

enum al_rc al_rag_load_reranker(struct al_repo *repo, const char *ref, int threads, struct al_engine_model **out,
                                struct al_err *err)
{
    struct al_rag_model m;
    enum al_rc rc = al_rag_resolve_model(repo, ref, &m, err);
    if (rc)
        return rc;
    struct al_engine_model_params p = al_engine_model_params_default();
    p.threads = threads > 0 ? threads : 2;
    p.n_seq = 1; /* the generation side of a reranker is never used */
    if ((rc = al_engine_model_load(m.path, m.digest, &p, out, err)))
        return rc;
    if (!al_engine_model_is_reranker(*out)) {
        al_engine_model_free(*out);
        *out = NULL;
        return al_err_set(err, AL_ERR_USAGE,
                          "'%s' is not a reranker: its GGUF declares no rank pooling (<arch>.pooling_type 4)", ref);
    }
    return AL_OK;
}
