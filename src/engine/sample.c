/*
 * sample.c: the sampler chain of one request, and stop strings.
 *
 * The chain follows llama.cpp's common sampler (so that a request gives what
 * llama-server gives for the same settings): grammar first (it masks what the
 * grammar forbids), then the model's suppressed tokens, penalties, top_k,
 * top_p, min_p, temperature, and a seeded draw. A temperature of zero or less
 * ends the chain with the greedy sampler instead, which is deterministic.
 * llama_sampler_sample() both samples and accepts, so the grammar and the
 * penalties see every generated token.
 */
#include "engine/engine_int.h"

#include "engine/chat.h"

#include <math.h>

#include "core/limits.h"
#include "core/utf8.h"

struct al_engine_gen_params al_engine_gen_params_default(void)
{
    struct al_engine_gen_params p = {
        .max_tokens = -1,
        .temperature = 0.8f,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .top_k = 40,
        .repeat_penalty = 1.0f,
        .frequency_penalty = 0.0f,
        .presence_penalty = 0.0f,
        .penalty_last_n = 64,
        .seed = AL_ENGINE_SEED_RANDOM,
        .grammar = NULL,
        .stop = NULL,
        .n_stop = 0,
        .ignore_eos = false,
        .add_bos = true,
        .parse_special = true,
        .cache_prompt = true,
        .n_loras = -1,
    };
    return p;
}

const char *al_engine_finish_name(enum al_engine_finish f)
{
    switch (f) {
    case AL_ENGINE_FINISH_STOP: return "stop";
    case AL_ENGINE_FINISH_LENGTH: return "length";
    case AL_ENGINE_FINISH_CANCELLED: return "cancelled";
    case AL_ENGINE_FINISH_ERROR: return "error";
    }
    return "error";
}

enum al_rc al_engine_sample_check(const struct al_engine_gen_params *p, struct al_err *err)
{
    if (!isfinite(p->temperature))
        return al_err_set(err, AL_ERR_USAGE, "temperature %g is not a number", (double)p->temperature);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return al_err_set(err, AL_ERR_USAGE, "top_p %g is outside (0, 1]", (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return al_err_set(err, AL_ERR_USAGE, "min_p %g is outside [0, 1]", (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f) || !isfinite(p->repeat_penalty))
        return al_err_set(err, AL_ERR_USAGE, "repeat_penalty %g must be above 0", (double)p->repeat_penalty);
    if (!(fabsf(p->frequency_penalty) <= 2.0f))
        return al_err_set(err, AL_ERR_USAGE, "frequency_penalty %g is outside [-2, 2]",
                          (double)p->frequency_penalty);
    if (!(fabsf(p->presence_penalty) <= 2.0f))
        return al_err_set(err, AL_ERR_USAGE, "presence_penalty %g is outside [-2, 2]",
                          (double)p->presence_penalty);
    if (p->penalty_last_n < -1)
        return al_err_set(err, AL_ERR_USAGE, "penalty_last_n %d is below -1", p->penalty_last_n);
    if (p->n_probs < 0 || p->n_probs > AL_LIMIT_TOP_PROBS)
        return al_err_set(err, AL_ERR_LIMIT, "n_probs %d is outside [0, %d] (AL_LIMIT_TOP_PROBS)", p->n_probs,
                          AL_LIMIT_TOP_PROBS);
    if (p->n_stop < 0 || (p->n_stop > 0 && !p->stop))
        return al_err_set(err, AL_ERR_USAGE, "bad stop strings");
    if (p->n_stop > AL_LIMIT_STOP_STRINGS)
        return al_err_set(err, AL_ERR_LIMIT, "%d stop strings is over the cap of %d (AL_LIMIT_STOP_STRINGS)",
                          p->n_stop, AL_LIMIT_STOP_STRINGS);
    for (int i = 0; i < p->n_stop; i++) {
        if (!p->stop[i] || !p->stop[i][0])
            return al_err_set(err, AL_ERR_USAGE, "stop string %d is empty", i);
        if (strlen(p->stop[i]) > AL_LIMIT_STOP_LEN)
            return al_err_set(err, AL_ERR_LIMIT, "stop string %d is over the cap of %u bytes (AL_LIMIT_STOP_LEN)",
                              i, AL_LIMIT_STOP_LEN);
    }
    if (p->n_logit_bias < 0 || (p->n_logit_bias > 0 && !p->logit_bias))
        return al_err_set(err, AL_ERR_USAGE, "bad logit_bias");
    if (p->n_logit_bias > AL_LIMIT_LOGIT_BIAS)
        return al_err_set(err, AL_ERR_LIMIT, "%d logit biases is over the cap of %d (AL_LIMIT_LOGIT_BIAS)",
                          p->n_logit_bias, AL_LIMIT_LOGIT_BIAS);
    for (int i = 0; i < p->n_logit_bias; i++)
        if (isnan(p->logit_bias[i].bias) || p->logit_bias[i].bias == INFINITY)
            return al_err_set(err, AL_ERR_USAGE, "logit bias %d is not a number below infinity", i);
    if (p->grammar && strlen(p->grammar) > AL_LIMIT_GRAMMAR)
        return al_err_set(err, AL_ERR_LIMIT, "the grammar is over the cap of %u bytes (AL_LIMIT_GRAMMAR)",
                          AL_LIMIT_GRAMMAR);
    return AL_OK;
}

bool al_engine_sample_plain_greedy(const struct al_engine_gen_params *p)
{
    bool penalties = p->penalty_last_n != 0 &&
                     (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f);
    return p->temperature <= 0.0f && !(p->grammar && p->grammar[0]) && !penalties && p->n_logit_bias == 0 &&
           !(p->chat && al_engine_chat_parses_tools(p->chat));
}

enum al_rc al_engine_sample_banned(const struct llama_vocab *vocab, const struct al_engine_gen_params *p,
                                   llama_token **out, int *n_out, struct al_err *err)
{
    *out = NULL;
    *n_out = 0;
    int n_vocab = llama_vocab_n_tokens(vocab);
    int32_t n_suppress = 0;
    const llama_token *suppress = llama_vocab_get_suppress_tokens(vocab, &n_suppress);
    int n_eog = 0;
    if (p->ignore_eos)
        for (llama_token t = 0; t < n_vocab; t++)
            n_eog += llama_vocab_is_eog(vocab, t);
    if (n_suppress + n_eog == 0)
        return AL_OK;
    llama_token *b = malloc((size_t)(n_suppress + n_eog) * sizeof *b);
    if (!b)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory building a sampler");
    int n = 0;
    for (int32_t i = 0; i < n_suppress; i++)
        b[n++] = suppress[i];
    for (llama_token t = 0; p->ignore_eos && t < n_vocab; t++)
        if (llama_vocab_is_eog(vocab, t))
            b[n++] = t;
    *out = b;
    *n_out = n;
    return AL_OK;
}

llama_token al_engine_sample_greedy_fast(const float *logits, int n_vocab, const llama_token *banned, int n_banned)
{
    /* The greedy sampler's rule exactly: the first index whose logit is
     * above every earlier one. */
    int best = 0;
    float mx = logits[0];
    for (int i = 1; i < n_vocab; i++) {
        if (logits[i] > mx) {
            mx = logits[i];
            best = i;
        }
    }
    for (int i = 0; i < n_banned; i++)
        if (banned[i] == best)
            return LLAMA_TOKEN_NULL;
    return best;
}

enum al_rc al_engine_sample_chain_new(const struct llama_vocab *vocab, const struct al_engine_gen_params *p,
                               struct llama_sampler **out, struct al_err *err)
{
    struct llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    struct llama_sampler *chain = llama_sampler_chain_init(cp);
    if (!chain)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory building a sampler");
    int n_vocab = llama_vocab_n_tokens(vocab);

    if (p->grammar && p->grammar[0]) {
        al_engine_llama_clear_error();
        struct llama_sampler *g = llama_sampler_init_grammar(vocab, p->grammar, "root");
        if (!g) {
            const char *why = al_engine_llama_last_error();
            llama_sampler_free(chain);
            return al_err_set(err, AL_ERR_INVALID, "the grammar does not parse%s%s", *why ? ": " : "", why);
        }
        llama_sampler_chain_add(chain, g);
    }
    if (p->chat) {
        /* The tool-call grammar of an applied chat (engine/chat.h). */
        struct llama_sampler *g = NULL;
        enum al_rc grc = al_engine_chat_grammar_sampler(p->chat, vocab, &g, err);
        if (grc) {
            llama_sampler_free(chain);
            return grc;
        }
        if (g)
            llama_sampler_chain_add(chain, g);
    }

    /* The model's suppressed tokens, and with ignore_eos every end of
     * generation token, get a bias of minus infinity (as llama-server does). */
    llama_token *banned = NULL;
    int n_banned = 0;
    enum al_rc rc = al_engine_sample_banned(vocab, p, &banned, &n_banned, err);
    if (rc) {
        llama_sampler_free(chain);
        return rc;
    }
    if (n_banned > 0) {
        llama_logit_bias *bias = calloc((size_t)n_banned, sizeof *bias);
        if (!bias) {
            free(banned);
            llama_sampler_free(chain);
            return al_err_set(err, AL_ERR_NOMEM, "out of memory building a sampler");
        }
        for (int i = 0; i < n_banned; i++)
            bias[i] = (llama_logit_bias){banned[i], -INFINITY};
        llama_sampler_chain_add(chain, llama_sampler_init_logit_bias(n_vocab, n_banned, bias));
        free(bias);
    }
    free(banned);
    if (p->n_logit_bias > 0) {
        /* The request's own biases, as llama-server's chain puts them:
         * before the penalties and the truncations. */
        llama_logit_bias *bias = calloc((size_t)p->n_logit_bias, sizeof *bias);
        if (!bias) {
            llama_sampler_free(chain);
            return al_err_set(err, AL_ERR_NOMEM, "out of memory building a sampler");
        }
        for (int i = 0; i < p->n_logit_bias; i++) {
            if (p->logit_bias[i].token < 0 || p->logit_bias[i].token >= n_vocab) {
                free(bias);
                llama_sampler_free(chain);
                return al_err_set(err, AL_ERR_INVALID, "logit_bias names token %d; the model has %d tokens",
                                  (int)p->logit_bias[i].token, n_vocab);
            }
            bias[i] = (llama_logit_bias){p->logit_bias[i].token, p->logit_bias[i].bias};
        }
        llama_sampler_chain_add(chain, llama_sampler_init_logit_bias(n_vocab, p->n_logit_bias, bias));
        free(bias);
    }

    bool penalties = p->penalty_last_n != 0 &&
                     (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f);
    if (penalties)
        llama_sampler_chain_add(chain, llama_sampler_init_penalties(n_vocab, p->penalty_last_n, p->repeat_penalty,
                                                                    p->frequency_penalty, p->presence_penalty));
    if (p->temperature <= 0.0f) {
        llama_sampler_chain_add(chain, llama_sampler_init_greedy());
    } else {
        if (p->top_k > 0)
            llama_sampler_chain_add(chain, llama_sampler_init_top_k(p->top_k));
        if (p->top_p < 1.0f)
            llama_sampler_chain_add(chain, llama_sampler_init_top_p(p->top_p, 1));
        if (p->min_p > 0.0f)
            llama_sampler_chain_add(chain, llama_sampler_init_min_p(p->min_p, 1));
        llama_sampler_chain_add(chain, llama_sampler_init_temp(p->temperature));
        llama_sampler_chain_add(chain, llama_sampler_init_dist(p->seed));
    }
    *out = chain;
    return AL_OK;
}

/* ---- stop strings ---- */

enum al_rc al_engine_stops_init(struct al_engine_stops *st, const char *const *stop, int n, struct al_err *err)
{
    memset(st, 0, sizeof *st);
    if (n <= 0)
        return AL_OK;
    st->s = calloc((size_t)n, sizeof *st->s);
    st->len = calloc((size_t)n, sizeof *st->len);
    if (!st->s || !st->len)
        goto nomem;
    for (int i = 0; i < n; i++) {
        st->s[i] = strdup(stop[i]);
        if (!st->s[i])
            goto nomem;
        st->n = i + 1;
        st->len[i] = strlen(stop[i]);
        if (st->len[i] > st->max_len)
            st->max_len = st->len[i];
    }
    return AL_OK;
nomem:
    al_engine_stops_release(st);
    return al_err_set(err, AL_ERR_NOMEM, "out of memory copying stop strings");
}

void al_engine_stops_release(struct al_engine_stops *st)
{
    for (int i = 0; i < st->n; i++)
        free(st->s[i]);
    free(st->s);
    free(st->len);
    memset(st, 0, sizeof *st);
}

/* Invariant kept by the caller: text is what has not been emitted yet, and
 * no stop string can begin in what has (its beginning would have been held
 * back). So a match, if any, lies entirely in text. */
long al_engine_stops_scan(const struct al_engine_stops *st, const char *text, size_t len, size_t *hold, int *which)
{
    long best = -1;
    for (int i = 0; i < st->n; i++) {
        const char *hit = memmem(text, len, st->s[i], st->len[i]);
        if (hit && (best < 0 || hit - text < best)) {
            best = hit - text;
            *which = i;
        }
    }
    if (best >= 0) {
        *hold = 0;
        return best;
    }
    size_t h = 0;
    for (int i = 0; i < st->n; i++) {
        size_t k = st->len[i] - 1 < len ? st->len[i] - 1 : len;
        for (; k > h; k--) {
            if (memcmp(text + len - k, st->s[i], k) == 0) {
                h = k;
                break;
            }
        }
    }
    size_t u = al_utf8_partial_tail(text, len); /* a client never sees half a character */
    *hold = u > h ? u : h;
    return -1;
}

/* One pass for the maximum, one for the normalizer, one for the k best by
 * insertion into a k-long list: O(n_vocab * k), k at most AL_LIMIT_TOP_PROBS,
 * nothing allocated. Sums in double so that the figures do not depend on the
 * vocabulary's order more than llama-server's own. */
void al_engine_probs_compute(const float *logits, int n_vocab, llama_token tok, int k, int32_t *ids, float *lps,
                      struct al_engine_token_probs *out)
{
    float mx = -INFINITY;
    for (int i = 0; i < n_vocab; i++)
        if (logits[i] > mx)
            mx = logits[i];
    double sum = 0;
    for (int i = 0; i < n_vocab; i++)
        sum += exp((double)(logits[i] - mx));
    double log_z = (double)mx + log(sum);
    if (k > n_vocab)
        k = n_vocab;
    int n = 0;
    for (int i = 0; i < n_vocab; i++) {
        float v = logits[i];
        if (n == k && v <= lps[n - 1])
            continue;
        int j = n < k ? n++ : n - 1;
        while (j > 0 && lps[j - 1] < v) {
            lps[j] = lps[j - 1];
            ids[j] = ids[j - 1];
            j--;
        }
        lps[j] = v;
        ids[j] = i;
    }
    for (int i = 0; i < n; i++)
        lps[i] = (float)((double)lps[i] - log_z);
    out->token = tok;
    out->logprob = (tok >= 0 && tok < n_vocab) ? (float)((double)logits[tok] - log_z) : -INFINITY;
    out->n = n;
    out->ids = ids;
    out->logprobs = lps;
    out->post_sampling = false;
}

llama_token al_engine_sample_post(struct llama_sampler *chain, const float *logits, int n_vocab, bool greedy,
                                  llama_token_data *cand, int k, int32_t *ids, float *ps,
                                  struct al_engine_token_probs *out)
{
    for (int i = 0; i < n_vocab; i++)
        cand[i] = (llama_token_data){i, logits[i], 0.0f};
    llama_token_data_array cur = {cand, (size_t)n_vocab, -1, false};
    llama_sampler_apply(chain, &cur);
    if (cur.selected < 0 || cur.selected >= (int64_t)cur.size)
        cur.selected = 0; /* llama_sampler_sample asserts it; no chain of ours leaves it so */
    llama_token tok = cur.data[cur.selected].id;
    llama_sampler_accept(chain, tok);
    if (greedy) {
        /* llama-server's chain at temperature 0 sets every other logit to
         * minus infinity before its draw: the chosen token has it all. */
        for (size_t i = 0; i < cur.size; i++)
            cur.data[i].p = 0.0f;
        cur.data[cur.selected].p = 1.0f;
    }
    int n = 0;
    for (size_t i = 0; i < cur.size && k > 0; i++) {
        float v = cur.data[i].p;
        if (!(v > 0.0f) || (n == k && v <= ps[n - 1]))
            continue;
        int j = n < k ? n++ : n - 1;
        while (j > 0 && ps[j - 1] < v) {
            ps[j] = ps[j - 1];
            ids[j] = ids[j - 1];
            j--;
        }
        ps[j] = v;
        ids[j] = cur.data[i].id;
    }
    out->token = tok;
    out->logprob = cur.data[cur.selected].p;
    out->n = n;
    out->ids = ids;
    out->logprobs = ps;
    out->post_sampling = true;
    return tok;
}
