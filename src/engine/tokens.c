/*
 * tokens.c: text to tokens and back, a prompt of token ids checked against
 * the vocabulary, a model's fill-in-the-middle tokens. Every count is capped
 * (AL_LIMIT_PROMPT_BYTES, AL_LIMIT_PROMPT_TOKENS) before it sizes anything.
 */
#include "engine/engine_int.h"

#include <inttypes.h>

#include "core/limits.h"

enum al_rc al_engine_tokenize_int(const struct llama_vocab *vocab, const char *text, size_t len,
                                  bool add_special, bool parse_special, llama_token **out,
                                  int *n_out, struct al_err *err)
{
    if (len > AL_LIMIT_PROMPT_BYTES)
        return al_err_set(err, AL_ERR_LIMIT, "a text of %zu bytes is over the cap of %u (AL_LIMIT_PROMPT_BYTES)",
                          len, AL_LIMIT_PROMPT_BYTES);
    /* A token covers at least one byte; the specials added come on top. */
    int cap = (int)len + 8;
    if (cap > AL_LIMIT_PROMPT_TOKENS + 8)
        cap = AL_LIMIT_PROMPT_TOKENS + 8;
    for (int attempt = 0; attempt < 2; attempt++) {
        llama_token *t = malloc((size_t)cap * sizeof *t);
        if (!t)
            return al_err_set(err, AL_ERR_NOMEM, "out of memory tokenizing %zu bytes", len);
        int n = llama_tokenize(vocab, text, (int32_t)len, t, cap, add_special, parse_special);
        if (n >= 0) {
            if (n > AL_LIMIT_PROMPT_TOKENS) {
                free(t);
                break;
            }
            *out = t;
            *n_out = n;
            return AL_OK;
        }
        free(t);
        if (n == INT32_MIN || -n > AL_LIMIT_PROMPT_TOKENS)
            break;
        cap = -n;
    }
    return al_err_set(err, AL_ERR_LIMIT, "the text is over the cap of %d tokens (AL_LIMIT_PROMPT_TOKENS)",
                      AL_LIMIT_PROMPT_TOKENS);
}

enum al_rc al_engine_tokens_copy_int(const struct llama_vocab *vocab, const int32_t *t, size_t n, llama_token **out,
                                     int *n_out, struct al_err *err)
{
    int n_vocab = llama_vocab_n_tokens(vocab);
    if (n > AL_LIMIT_PROMPT_TOKENS)
        return al_err_set(err, AL_ERR_LIMIT, "a prompt of %zu tokens is over the cap of %d (AL_LIMIT_PROMPT_TOKENS)", n,
                          AL_LIMIT_PROMPT_TOKENS);
    for (size_t i = 0; i < n; i++)
        if (t[i] < 0 || t[i] >= n_vocab)
            return al_err_set(err, AL_ERR_INVALID, "prompt token %d is not in the vocabulary of %d tokens", (int)t[i],
                              n_vocab);
    if (!(*out = malloc((n ? n : 1) * sizeof **out)))
        return al_err_set(err, AL_ERR_NOMEM, "out of memory copying a prompt of %zu tokens", n);
    memcpy(*out, t, n * sizeof **out);
    *n_out = (int)n;
    return AL_OK;
}

void al_engine_fim_tokens(const struct al_engine_model *m, struct al_engine_fim *out)
{
    const struct llama_vocab *v = m->vocab;
    out->pre = llama_vocab_fim_pre(v);
    out->suf = llama_vocab_fim_suf(v);
    out->mid = llama_vocab_fim_mid(v);
    out->rep = llama_vocab_fim_rep(v);
    out->sep = llama_vocab_fim_sep(v);
    out->bos = llama_vocab_get_add_bos(v) ? llama_vocab_bos(v) : -1;
}

enum al_rc al_engine_tokenize(const struct al_engine_model *m, const char *text, size_t len,
                              bool add_special, bool parse_special,
                              int32_t **out, size_t *n_out, struct al_err *err)
{
    llama_token *t = NULL;
    int n = 0;
    enum al_rc rc = al_engine_tokenize_int(m->vocab, text, len, add_special, parse_special, &t, &n, err);
    if (rc)
        return rc;
    *out = t; /* llama_token is int32_t */
    *n_out = (size_t)n;
    return AL_OK;
}

int al_engine_token_piece(const struct al_engine_model *m, int32_t token, bool special, char *out, size_t size)
{
    if (size == 0 || token < 0 || token >= llama_vocab_n_tokens(m->vocab))
        return -1;
    char tmp[256];
    int n = llama_token_to_piece(m->vocab, token, tmp, (int32_t)sizeof tmp, 0, special);
    if (n < 0)
        n = 0; /* a piece over 256 bytes: none of the vocabularies we know has one */
    size_t k = (size_t)n < size - 1 ? (size_t)n : size - 1;
    memcpy(out, tmp, k);
    out[k] = '\0';
    return n;
}

enum al_rc al_engine_detokenize(const struct al_engine_model *m, const int32_t *tokens, size_t n,
                                bool special, char **out, size_t *len_out, struct al_err *err)
{
    if (n > AL_LIMIT_PROMPT_TOKENS)
        return al_err_set(err, AL_ERR_LIMIT, "%zu tokens is over the cap of %d (AL_LIMIT_PROMPT_TOKENS)", n,
                          AL_LIMIT_PROMPT_TOKENS);
    int n_vocab = llama_vocab_n_tokens(m->vocab);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return al_err_set(err, AL_ERR_INVALID, "token %" PRId32 " is not in the vocabulary of %d tokens",
                              tokens[i], n_vocab);
    size_t cap = n * 8 + 16;
    for (int attempt = 0; attempt < 2; attempt++) {
        char *s = malloc(cap + 1);
        if (!s)
            return al_err_set(err, AL_ERR_NOMEM, "out of memory detokenizing %zu tokens", n);
        int r = llama_detokenize(m->vocab, tokens, (int32_t)n, s, (int32_t)cap, false, special);
        if (r >= 0) {
            s[r] = '\0';
            *out = s;
            *len_out = (size_t)r;
            return AL_OK;
        }
        free(s);
        cap = (size_t)-(int64_t)r;
    }
    return al_err_set(err, AL_ERR_INTERNAL, "cannot detokenize %zu tokens", n);
}
