/*
 * rerank.c: scores of (query, document) pairs from a cross-encoder, the
 * models whose GGUF declares rank pooling (<arch>.pooling_type 4).
 *
 * A third llama_context of the model, created on first use and kept, with
 * embeddings on and the model's own pooling: llama.cpp's rank pooling takes
 * the first token's output (the last for Qwen3 rerankers) through the
 * classification head (cls, cls.output), and the first value of what it
 * gives per sequence is the pair's score, raw, as llama-server's /rerank
 * reports it. The pair is built as llama-server's format_prompt_rerank does
 * (tools/server/server-common.cpp): the model's "rerank" template with
 * {query} and {document} replaced when it has one, else
 * [BOS] query [EOS] [SEP] document [EOS] with each special token only when
 * the vocabulary adds it (EOS falls back to SEP). So the scores equal
 * llama-server's on the same model, to float rounding.
 *
 * Pairs are decoded one at a time (RANK_SEQS says why); the work shares the
 * model's embedding lock and its stop hook, asked before every pair.
 */
#include "engine/engine_int.h"

#include "core/buf.h"
#include "core/limits.h"
#include "core/log.h"

/* Pairs per llama_decode: one. Packing several (as embed.c packs texts)
 * changes a pair's score with its neighbours in the batch (by 1e-3 on the
 * generated reranker: the attention kernels take another path for a longer
 * batch), so the same document could rank otherwise in another request.
 * One pair per decode gives each pair the same score whatever else is
 * asked, and llama-server's own (docs/internals/engine.md). */
#define RANK_SEQS 1

struct al_engine_ranker {
    struct llama_context *ctx;
    llama_memory_t mem;
    struct llama_batch batch;
    int n_batch;
    pthread_mutex_t *lora_mu;   /* the model's: held around llama_decode (engine_int.h) */
};

void al_engine_ranker_free(struct al_engine_ranker *r)
{
    if (!r)
        return;
    if (r->batch.token)
        llama_batch_free(r->batch);
    if (r->ctx)
        llama_free(r->ctx);
    free(r);
}

bool al_engine_model_is_reranker(const struct al_engine_model *m)
{
    char arch[64], key[128], val[32];
    if (!m || llama_model_meta_val_str(m->model, "general.architecture", arch, sizeof arch) < 0)
        return false;
    snprintf(key, sizeof key, "%s.pooling_type", arch);
    return llama_model_meta_val_str(m->model, key, val, sizeof val) >= 0 && strcmp(val, "4") == 0;
}

static enum al_rc ranker_new(struct al_engine_model *m, struct al_engine_ranker **out, struct al_err *err)
{
    struct al_engine_ranker *r = calloc(1, sizeof *r);
    if (!r)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory creating a reranking context");
    enum al_rc rc = AL_OK;
    r->lora_mu = &m->lora_mu;
    r->n_batch = m->n_ctx_seq;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)r->n_batch;
    cp.n_batch = (uint32_t)r->n_batch;
    cp.n_ubatch = (uint32_t)r->n_batch; /* non-causal: a sequence in one ubatch */
    cp.n_seq_max = RANK_SEQS;
    cp.kv_unified = true;
    cp.n_threads = m->params.threads;
    cp.n_threads_batch = m->params.threads;
    cp.embeddings = true;
    cp.pooling_type = LLAMA_POOLING_TYPE_RANK;
    cp.no_perf = true;
    al_engine_llama_clear_error();
    r->ctx = llama_init_from_model(m->model, cp);
    if (!r->ctx) {
        const char *why = al_engine_llama_last_error();
        rc = al_err_set(err, AL_ERR_INTERNAL, "cannot create a reranking context%s%s", *why ? ": " : "", why);
        goto fail;
    }
    if ((rc = al_engine_apply_loras(m, r->ctx, err)))
        goto fail;
    r->mem = llama_get_memory(r->ctx);
    r->batch = llama_batch_init(r->n_batch, 0, 1);
    if (!r->batch.token) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory creating a reranking batch");
        goto fail;
    }
    *out = r;
    return AL_OK;
fail:
    al_engine_ranker_free(r);
    return rc;
}

/* Appends the tokens of text (no specials added, none parsed) to *toks. */
static enum al_rc append_text(const struct llama_vocab *vocab, const char *text, bool parse_special,
                              llama_token **toks, int *n, int cap, struct al_err *err)
{
    llama_token *t = NULL;
    int nt = 0;
    enum al_rc rc = al_engine_tokenize_int(vocab, text, strlen(text), false, parse_special, &t, &nt, err);
    if (rc)
        return rc;
    if (*n + nt > cap) {
        free(t);
        return al_err_set(err, AL_ERR_LIMIT, "over");
    }
    memcpy(*toks + *n, t, (size_t)nt * sizeof *t);
    *n += nt;
    free(t);
    return AL_OK;
}

static void append_tok(llama_token *toks, int *n, int cap, llama_token t)
{
    if (*n < cap)
        toks[*n] = t;
    (*n)++;
}

/* The tokens of one pair into toks[0..cap) (cap = the context): see the
 * top of the file. AL_ERR_LIMIT, said by the caller, when over cap. */
static enum al_rc pair_tokens(const struct al_engine_model *m, const char *query, const char *doc,
                              llama_token *toks, int cap, int *n, struct al_err *err)
{
    const struct llama_vocab *v = m->vocab;
    *n = 0;
    const char *tmpl = llama_model_chat_template(m->model, "rerank");
    if (tmpl) {
        struct al_buf b;
        al_buf_init(&b, (size_t)AL_LIMIT_PROMPT_BYTES);
        for (const char *p = tmpl; *p;) {
            if (strncmp(p, "{query}", 7) == 0) {
                al_buf_addstr(&b, query);
                p += 7;
            } else if (strncmp(p, "{document}", 10) == 0) {
                al_buf_addstr(&b, doc);
                p += 10;
            } else {
                al_buf_addch(&b, *p++);
            }
        }
        enum al_rc rc = al_buf_failed(&b) ? al_err_set(err, AL_ERR_LIMIT, "over")
                                          : append_text(v, b.data, true, &toks, n, cap, err);
        al_buf_release(&b);
        return rc;
    }
    llama_token eos = llama_vocab_eos(v);
    if (eos == LLAMA_TOKEN_NULL)
        eos = llama_vocab_sep(v);
    if (llama_vocab_get_add_bos(v))
        append_tok(toks, n, cap, llama_vocab_bos(v));
    enum al_rc rc = *n > cap ? AL_ERR_LIMIT : append_text(v, query, false, &toks, n, cap, err);
    if (rc)
        return rc;
    if (llama_vocab_get_add_eos(v))
        append_tok(toks, n, cap, eos);
    if (llama_vocab_get_add_sep(v))
        append_tok(toks, n, cap, llama_vocab_sep(v));
    rc = *n > cap ? AL_ERR_LIMIT : append_text(v, doc, false, &toks, n, cap, err);
    if (rc)
        return rc;
    if (llama_vocab_get_add_eos(v))
        append_tok(toks, n, cap, eos);
    return *n > cap ? AL_ERR_LIMIT : AL_OK;
}

static enum al_rc run_batch(struct al_engine_ranker *r, int n_seqs, size_t first, float *scores,
                            struct al_err *err)
{
    if (r->mem)
        llama_memory_clear(r->mem, true);
    pthread_mutex_lock(r->lora_mu);
    int ret = llama_decode(r->ctx, r->batch);
    pthread_mutex_unlock(r->lora_mu);
    if (ret != 0)
        return al_err_set(err, AL_ERR_INTERNAL, "llama_decode failed (%d) scoring documents", ret);
    for (int s = 0; s < n_seqs; s++) {
        const float *v = llama_get_embeddings_seq(r->ctx, s);
        if (!v)
            return al_err_set(err, AL_ERR_INTERNAL, "llama.cpp gave no score for document %zu",
                              first + (size_t)s);
        scores[first + (size_t)s] = v[0];
    }
    return AL_OK;
}

enum al_rc al_engine_rerank(struct al_engine_model *m, const char *query, const char *const *docs, size_t n,
                            const struct al_engine_embed_ctl *ctl, float *scores, size_t *n_tokens,
                            struct al_err *err)
{
    if (n_tokens)
        *n_tokens = 0;
    if (!m || !query || (n > 0 && (!docs || !scores)))
        return al_err_set(err, AL_ERR_USAGE, "al_engine_rerank: bad arguments");
    if (!al_engine_model_is_reranker(m))
        return al_err_set(err, AL_ERR_USAGE,
                          "the model is not a reranker: its GGUF declares no rank pooling (<arch>.pooling_type 4)");
    if (n > AL_LIMIT_RERANK_DOCS)
        return al_err_set(err, AL_ERR_LIMIT, "%zu documents is over the cap of %d (AL_LIMIT_RERANK_DOCS)", n,
                          AL_LIMIT_RERANK_DOCS);
    enum al_rc rc = al_engine_embed_lock(m, ctl, err);
    if (rc)
        return rc;
    if (!m->ranker)
        rc = ranker_new(m, &m->ranker, err);
    struct al_engine_ranker *r = m->ranker;
    llama_token *toks = rc ? NULL : malloc((size_t)r->n_batch * sizeof *toks);
    if (!rc && !toks)
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory scoring documents");
    size_t first = 0, tokens = 0;
    int n_seqs = 0;
    if (r)
        r->batch.n_tokens = 0;
    for (size_t i = 0; rc == AL_OK && i < n; i++) {
        int nt = 0;
        struct al_err terr = AL_ERR_INIT;
        rc = pair_tokens(m, query, docs[i] ? docs[i] : "", toks, r->n_batch, &nt, &terr);
        if (rc == AL_ERR_LIMIT) {
            rc = al_err_set(err, AL_ERR_LIMIT, "the query with document %zu is over the context of %d tokens", i,
                            r->n_batch);
            break;
        }
        if (rc) {
            al_err_set(err, rc, "document %zu: %s", i, terr.msg);
            break;
        }
        if (n_seqs == RANK_SEQS || r->batch.n_tokens + nt > r->n_batch) {
            rc = al_engine_embed_check(ctl, err);
            if (!rc)
                rc = run_batch(r, n_seqs, first, scores, err);
            first = i;
            n_seqs = 0;
            r->batch.n_tokens = 0;
        }
        for (int j = 0; rc == AL_OK && j < nt; j++) {
            int k = r->batch.n_tokens++;
            r->batch.token[k] = toks[j];
            r->batch.pos[k] = j;
            r->batch.n_seq_id[k] = 1;
            r->batch.seq_id[k][0] = n_seqs;
            r->batch.logits[k] = true;
        }
        n_seqs++;
        tokens += (size_t)nt;
    }
    if (rc == AL_OK && n_seqs > 0)
        rc = al_engine_embed_check(ctl, err);
    if (rc == AL_OK && n_seqs > 0)
        rc = run_batch(r, n_seqs, first, scores, err);
    pthread_mutex_unlock(&m->embed_lock);
    free(toks);
    if (rc == AL_OK && n_tokens)
        *n_tokens = tokens;
    al_debug("reranked %zu documents (%zu tokens)", n, tokens);
    return rc;
}
