/*
 * query.c: retrieval. BM25 through FTS5, vectors through the FAISS index,
 * and reciprocal rank fusion of both (score = sum over the retrievers that
 * found a chunk of 1 / (RRF_K + rank)). Ties are broken by chunk rowid, so the
 * same collection and question always give the same list.
 */
#include "rag/rag_int.h"

#include <ctype.h>

#define RRF_K 60
#define MAX_TERMS 32
#define MATCH_BUDGET 3000 /* chunks BM25 may score for one question (see fts_query) */

const char *al_rag_mode_name(enum al_rag_mode m)
{
    return m == AL_RAG_VECTOR ? "vector" : m == AL_RAG_BM25 ? "bm25" : "hybrid";
}

enum al_rc al_rag_mode_parse(const char *s, enum al_rag_mode *out, struct al_err *err)
{
    if (strcmp(s, "hybrid") == 0)
        *out = AL_RAG_HYBRID;
    else if (strcmp(s, "vector") == 0)
        *out = AL_RAG_VECTOR;
    else if (strcmp(s, "bm25") == 0)
        *out = AL_RAG_BM25;
    else
        return al_err_set(err, AL_ERR_USAGE, "'%s' is not a retrieval mode (hybrid, vector, bm25)", s);
    return AL_OK;
}

/* Frequent English words: matching them costs time and ranks nothing. */
static const char *const stopwords[] = {
    "a", "about", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
    "i", "if", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "that", "the", "their",
    "them", "then", "there", "these", "this", "to", "was", "what", "when", "where", "which", "who", "why",
    "will", "with", "you", "your",
};

static bool is_stopword(const char *w)
{
    for (size_t i = 0; i < sizeof stopwords / sizeof stopwords[0]; i++)
        if (strcmp(w, stopwords[i]) == 0)
            return true;
    return false;
}

/* The question as an FTS5 expression: its words, quoted, joined by OR.
 * Quoting makes every word a plain string (no operators, no columns).
 *
 * FTS5 scores every chunk that holds any of the words, at a few
 * microseconds each, so a question with common words costs tens of
 * milliseconds on a large collection. The words are therefore taken rarest
 * first (document frequencies from the terms table) while their posting lists
 * add up to at most MATCH_BUDGET chunks; the rarest word is always taken.
 * The words left out are the most common ones of the question, those with
 * the lowest IDF. Frequencies come from the terms table (exact words;
 * FTS5 also matches other forms of the same stem, which this does not
 * count). Small collections keep every word. */
static int cmp_word(const void *a, const void *b) { return strcmp(a, b); }

size_t al_rag_words(const char *text, char (*out)[AL_RAG_WORD_MAX], size_t max, bool unique)
{
    size_t n = 0;
    for (size_t i = 0; text[i] && n < max;) {
        while (text[i] && !(isalnum((unsigned char)text[i]) || (unsigned char)text[i] >= 0x80))
            i++;
        size_t k = 0;
        while (text[i] && (isalnum((unsigned char)text[i]) || (unsigned char)text[i] >= 0x80)) {
            if (k < AL_RAG_WORD_MAX - 1)
                out[n][k++] = (char)tolower((unsigned char)text[i]);
            i++;
        }
        out[n][k] = 0;
        n += k >= 2;
    }
    if (unique && n > 1) {
        qsort(out, n, sizeof *out, cmp_word);
        size_t u = 1;
        for (size_t i = 1; i < n; i++)
            if (strcmp(out[i], out[u - 1]) != 0)
                memcpy(out[u++], out[i], AL_RAG_WORD_MAX);
        n = u;
    }
    return n;
}

static char *fts_query(struct al_rag *r, const char *q)
{
    struct al_buf b;
    al_buf_init(&b, 8192);
    char all[MAX_TERMS][AL_RAG_WORD_MAX], words[MAX_TERMS][AL_RAG_WORD_MAX];
    int64_t df[MAX_TERMS];
    int order[MAX_TERMS];
    int nw = 0;
    size_t na = al_rag_words(q, all, MAX_TERMS, false);
    for (size_t i = 0; i < na; i++) {
        const char *w = all[i];
        if (is_stopword(w))
            continue;
        bool dup = false;
        for (int j = 0; j < nw && !dup; j++)
            dup = strcmp(words[j], w) == 0;
        if (dup)
            continue;
        memcpy(words[nw], all[i], sizeof words[nw]); /* same size, NUL inside */
        df[nw] = 0;
        if (r->info.chunks > MATCH_BUDGET && al_rag_db_term_df(r->db, w, &df[nw], NULL))
            df[nw] = 0;
        order[nw] = nw;
        nw++;
    }
    for (int i = 1; i < nw; i++) /* rarest first; ties in question order */
        for (int j = i; j > 0 && df[order[j]] < df[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int64_t total = 0;
    bool keep[MAX_TERMS] = {false};
    for (int i = 0; i < nw; i++) {
        if (i > 0 && total + df[order[i]] > MATCH_BUDGET)
            break;
        total += df[order[i]];
        keep[order[i]] = true;
    }
    int kept = 0;
    for (int j = 0; j < nw; j++) {
        if (!keep[j])
            continue;
        if (kept++)
            al_buf_addstr(&b, " OR ");
        al_buf_addf(&b, "\"%s\"", words[j]);
    }
    char *s = al_buf_take(&b);
    al_buf_release(&b);
    return s;
}

struct cand {
    int64_t id;
    int brank, vrank;
    double bm25, cos, score;
};

static int cmp_cand(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int cmp_id(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    return a->id < b->id ? -1 : a->id > b->id;
}

void al_rag_hits_release(struct al_rag_hits *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].doc);
        free(h->v[i].heading);
        free(h->v[i].text);
    }
    free(h->v);
    memset(h, 0, sizeof *h);
}

enum al_rc al_rag_query_vec(struct al_rag *r, const float *qvec, int dim, const char *model_digest,
                            const char *question, const struct al_rag_query_opts *o,
                            struct al_rag_hits *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    double t0 = al_rag__now_ms();
    struct al_rag_query_opts q = o ? *o : (struct al_rag_query_opts){0};
    int k = q.k > 0 ? q.k : 5;
    if (k > AL_LIMIT_RAG_K)
        return al_err_set(err, AL_ERR_LIMIT, "k = %d is over the cap of %d (AL_LIMIT_RAG_K)", k, AL_LIMIT_RAG_K);
    int nc = q.candidates > 0 ? q.candidates : (4 * k > 50 ? 4 * k : 50);
    if (nc < k)
        nc = k;
    if (nc > 4 * AL_LIMIT_RAG_K)
        nc = 4 * AL_LIMIT_RAG_K;
    bool want_vec = q.mode != AL_RAG_BM25, want_bm25 = q.mode != AL_RAG_VECTOR;
    if (want_vec) {
        if (!qvec || !model_digest || strcmp(model_digest, r->info.embed_digest) != 0)
            return al_err_set(err, AL_ERR_DENIED, "collection '%s' is embedded with %s; a query vector from %s cannot be"
                              " compared with it", r->name, r->info.embed_digest, model_digest ? model_digest : "no model");
        if (dim != r->info.dim)
            return al_err_set(err, AL_ERR_USAGE, "the query vector has %d dimensions, the collection %d", dim,
                              r->info.dim);
    }
    if (want_bm25 && !question)
        return al_err_set(err, AL_ERR_USAGE, "a %s query needs the question's text", al_rag_mode_name(q.mode));
    if (question && strlen(question) > AL_LIMIT_RAG_QUERY_BYTES)
        return al_err_set(err, AL_ERR_LIMIT, "the question is over %u bytes (AL_LIMIT_RAG_QUERY_BYTES)",
                          AL_LIMIT_RAG_QUERY_BYTES);
    out->mode = q.mode;
    struct cand *c = calloc(2 * (size_t)nc, sizeof *c);
    int64_t *ids = calloc((size_t)nc, sizeof *ids);
    float *fs = calloc((size_t)nc, sizeof *fs);
    double *ds = calloc((size_t)nc, sizeof *ds);
    size_t n = 0;
    enum al_rc rc = c && ids && fs && ds ? AL_OK : al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (!rc && want_vec && r->info.chunks > 0) {
        double t = al_rag__now_ms();
        rc = al_rag__vindex(r, err);
        if (!rc)
            rc = al_vindex_search(r->vi, qvec, nc, q.ef_search > 0 ? q.ef_search : (nc > 128 ? nc : 128), fs, ids, err);
        for (int i = 0; !rc && i < nc; i++)
            if (ids[i] >= 0)
                c[n++] = (struct cand){.id = ids[i], .vrank = i + 1, .cos = fs[i]};
        out->ms_vector = al_rag__now_ms() - t;
    }
    size_t nv = n;
    if (!rc && want_bm25) {
        double t = al_rag__now_ms();
        char *match = fts_query(r, question);
        size_t nb = 0;
        if (!match)
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        else if (*match)
            rc = al_rag_db_bm25(r->db, match, nc, ids, ds, &nb, err);
        free(match);
        qsort(c, nv, sizeof *c, cmp_id);
        for (size_t i = 0; !rc && i < nb; i++) {
            struct cand key = {.id = ids[i]};
            struct cand *hit = nv ? bsearch(&key, c, nv, sizeof *c, cmp_id) : NULL;
            if (!hit)
                hit = &c[n++];
            hit->id = ids[i];
            hit->brank = (int)i + 1;
            hit->bm25 = ds[i];
        }
        out->ms_bm25 = al_rag__now_ms() - t;
    }
    for (size_t i = 0; i < n; i++)
        c[i].score = q.mode == AL_RAG_VECTOR ? c[i].cos
                     : q.mode == AL_RAG_BM25 ? c[i].bm25
                                             : (c[i].vrank ? 1.0 / (RRF_K + c[i].vrank) : 0) +
                                                   (c[i].brank ? 1.0 / (RRF_K + c[i].brank) : 0);
    if (!rc && n)
        qsort(c, n, sizeof *c, cmp_cand);
    size_t want = (size_t)k;
    if (q.reranker) {
        if (!question)
            rc = rc ? rc : al_err_set(err, AL_ERR_USAGE, "reranking needs the question's text");
        int rn = q.rerank_candidates > 0 ? q.rerank_candidates : (2 * k > 20 ? 2 * k : 20);
        want = (size_t)(rn < k ? k : rn > AL_LIMIT_RERANK_DOCS ? AL_LIMIT_RERANK_DOCS : rn);
    }
    size_t nh = n < want ? n : want;
    if (!rc && nh && !(out->v = calloc(nh, sizeof *out->v)))
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !rc && i < nh; i++) {
        struct al_rag_hit *h = &out->v[i];
        h->rowid = c[i].id;
        h->score = c[i].score;
        h->bm25_rank = c[i].brank;
        h->vector_rank = c[i].vrank;
        h->bm25 = c[i].bm25;
        h->cosine = c[i].cos;
        out->n = i + 1;
        rc = al_rag_db_hit(r->db, h, err);
    }
    free(c);
    free(ids);
    free(fs);
    free(ds);
    if (!rc && q.reranker)
        rc = al_rag__rerank(out, question, q.reranker, q.rerank_ctl, (size_t)k, err);
    if (rc)
        al_rag_hits_release(out);
    out->ms_total = al_rag__now_ms() - t0;
    return rc;
}

enum al_rc al_rag_query(struct al_rag *r, struct al_engine_model *embedder, const char *question,
                        const struct al_rag_query_opts *o, struct al_rag_hits *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    enum al_rag_mode mode = o ? o->mode : AL_RAG_HYBRID;
    if (!question)
        return al_err_set(err, AL_ERR_USAGE, "no question");
    if (strlen(question) > AL_LIMIT_RAG_QUERY_BYTES)
        return al_err_set(err, AL_ERR_LIMIT, "the question is over %u bytes (AL_LIMIT_RAG_QUERY_BYTES)",
                          AL_LIMIT_RAG_QUERY_BYTES);
    if (mode == AL_RAG_BM25)
        return al_rag_query_vec(r, NULL, 0, NULL, question, o, out, err);
    if (!embedder)
        return al_err_set(err, AL_ERR_USAGE, "a %s query needs the embedding model", al_rag_mode_name(mode));
    struct al_engine_model_info mi;
    al_engine_model_info(embedder, &mi);
    if (strcmp(mi.digest, r->info.embed_digest) != 0)
        return al_err_set(err, AL_ERR_DENIED, "collection '%s' is embedded with %s, not with %s", r->name,
                          r->info.embed_digest, mi.digest);
    float *v = malloc((size_t)mi.n_embd * sizeof *v);
    if (!v)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    double t = al_rag__now_ms();
    enum al_rc rc = al_engine_embed(embedder, &question, 1, v, err);
    double ms = al_rag__now_ms() - t;
    if (!rc)
        rc = al_rag_query_vec(r, v, mi.n_embd, mi.digest, question, o, out, err);
    out->ms_embed = ms;
    free(v);
    return rc;
}

json_t *al_rag_hits_json(const struct al_rag_hits *h, bool with_text)
{
    json_t *arr = json_array(), *root = json_object();
    for (size_t i = 0; arr && i < h->n; i++) {
        const struct al_rag_hit *x = &h->v[i];
        json_t *o = json_pack("{s:I,s:s,s:s,s:i,s:s,s:I,s:I,s:f,s:i,s:i,s:f,s:f}", "rank", (json_int_t)(i + 1),
                              "chunk_id", x->chunk_id, "doc", x->doc, "page", x->page, "heading", x->heading,
                              "start", (json_int_t)x->start, "end", (json_int_t)x->end, "score", x->score,
                              "bm25_rank", x->bm25_rank, "vector_rank", x->vector_rank, "bm25", x->bm25,
                              "cosine", x->cosine);
        if (o && h->reranked) {
            json_object_set_new(o, "fused_rank", json_integer(x->fused_rank));
            json_object_set_new(o, "rerank_score", json_real(x->rerank));
        }
        if (o && with_text)
            json_object_set_new(o, "text", json_string(x->text));
        json_array_append_new(arr, o);
    }
    json_t *t = json_pack("{s:f,s:f,s:f,s:f}", "embed", h->ms_embed, "vector", h->ms_vector, "bm25", h->ms_bm25,
                          "total", h->ms_total);
    if (!root || !arr || !t) {
        json_decref(arr);
        json_decref(root);
        json_decref(t);
        return NULL;
    }
    if (h->reranked) {
        json_object_set_new(root, "reranked", json_true());
        json_object_set_new(t, "rerank", json_real(h->ms_rerank));
    }
    json_object_set_new(root, "mode", json_string(al_rag_mode_name(h->mode)));
    json_object_set_new(root, "hits", arr);
    json_object_set_new(root, "timing_ms", t);
    return root;
}
