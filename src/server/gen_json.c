/*
 * gen_json.c: the JSON text a generation writes (gen_int.h): strings escaped
 * from any bytes the model gives, and the log-probabilities objects.
 */
#include "server/gen_int.h"

#include <math.h>

#include "core/log.h"
#include "core/utf8.h"

void al_server_json_escape(struct al_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    al_buf_addch(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            /* Model output may be any bytes; JSON text is UTF-8. */
            size_t n = al_utf8_char_len(s + i, len - i);
            if (n > 0) {
                i += n - 1;
                continue;
            }
            al_buf_add(b, s + run, i - run);
            al_buf_add(b, "\\ufffd", 6);
            run = i + 1;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        al_buf_add(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': al_buf_add(b, "\\\"", 2); break;
        case '\\': al_buf_add(b, "\\\\", 2); break;
        case '\n': al_buf_add(b, "\\n", 2); break;
        case '\r': al_buf_add(b, "\\r", 2); break;
        case '\t': al_buf_add(b, "\\t", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            al_buf_add(b, u, 6);
        }
        }
    }
    al_buf_add(b, s + run, len - run);
    al_buf_addch(b, '"');
}

/* ---- log-probabilities ----
 * Every sampled token's probabilities arrive in on_probs (the engine calls it
 * before the token's text reaches on_token). Completions get OpenAI's legacy
 * object {tokens, token_logprobs, top_logprobs: [{text: logprob}], text_offset}
 * and, as llama-server adds, "content": [{id, token, logprob, bytes,
 * top_logprobs: [{id, token, logprob, bytes}]}], whose ids tell apart tokens
 * with the same text. Chat gets OpenAI's {content: [...], refusal: null}, the
 * entries with "id" too. A token's text is its piece with special tokens
 * rendered; "bytes" are its raw bytes, "token" the same with bytes that are
 * not valid UTF-8 (a piece of a multi-byte character) as U+FFFD.
 * With llama-server's post_sampling_probs (g->post) the figures are the
 * probabilities the sampler chain left (engine.h): the "content" entries
 * have "prob" and "top_probs" in place of "logprob" and "top_logprobs", as
 * llama-server writes them on every route; the legacy completions lists
 * (token_logprobs, top_logprobs) carry their natural logarithms. */

void al_server_gen_on_probs(void *ud, const struct al_engine_token_probs *tp)
{
    struct al_server_gen *g = ud;
    pthread_mutex_lock(&g->lead->mu);
    if (g->n_lp == g->cap_lp && !g->lp_nomem) {
        size_t cap = g->cap_lp ? g->cap_lp * 2 : 64;
        struct lp_tok *t = realloc(g->lp, cap * sizeof *t);
        if (t) {
            g->lp = t;
            g->cap_lp = cap;
        } else {
            g->lp_nomem = true;
        }
    }
    if (!g->lp_nomem) {
        struct lp_tok *t = &g->lp[g->n_lp++];
        t->id = tp->token;
        t->logprob = tp->logprob;
        t->n = tp->n < g->lp_top ? tp->n : g->lp_top > 0 ? g->lp_top : 0; /* ids only: none */
        for (int k = 0; k < t->n; k++) {
            t->ids[k] = tp->ids[k];
            t->lps[k] = tp->logprobs[k];
        }
    }
    pthread_mutex_unlock(&g->lead->mu);
}

/* The piece as a JSON string, invalid UTF-8 bytes as U+FFFD. */
static void add_text(struct al_buf *b, const char *p, size_t len)
{
    char out[4 * 256];
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = al_utf8_char_len(p + i, len - i);
        if (n) {
            memcpy(out + o, p + i, n);
            o += n;
            i += n;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    al_server_json_escape(b, out, o);
}

static void add_lp(struct al_buf *b, float lp)
{
    /* 9 significant digits give the float back exactly; JSON has no -Infinity. */
    al_buf_addf(b, "%.9g", isfinite(lp) ? (double)lp : -9999.0);
}

static size_t piece(const struct al_server_gen *g, int32_t id, char *buf, size_t size)
{
    int n = al_engine_token_piece(g->m, id, true, buf, size);
    if (n < 0)
        n = 0;
    buf[(size_t)n < size ? (size_t)n : size - 1] = '\0';
    return strlen(buf);
}

/* A figure as a log-probability: with g->post the engine gave a probability. */
static float as_lp(const struct al_server_gen *g, float v)
{
    return g->post ? logf(v) : v;
}

/* {id, token, logprob, bytes}; with g->post {id, token, prob, bytes} */
static void add_entry(const struct al_server_gen *g, struct al_buf *b, int32_t id, float lp)
{
    char p[256];
    size_t n = piece(g, id, p, sizeof p);
    al_buf_addf(b, "{\"id\":%d,\"token\":", id);
    add_text(b, p, n);
    al_buf_addstr(b, g->post ? ",\"prob\":" : ",\"logprob\":");
    add_lp(b, lp);
    al_buf_addstr(b, ",\"bytes\":[");
    for (size_t i = 0; i < n; i++)
        al_buf_addf(b, "%s%u", i ? "," : "", (unsigned char)p[i]);
    al_buf_addch(b, ']');
}

/* The entries [{id, token, logprob, bytes, top_logprobs}] of tokens [from, to). */
void al_server_gen_lp_content(const struct al_server_gen *g, struct al_buf *b, size_t from, size_t to)
{
    al_buf_addch(b, '[');
    for (size_t i = from; i < to; i++) {
        const struct lp_tok *t = &g->lp[i];
        al_buf_addstr(b, i > from ? "," : "");
        add_entry(g, b, t->id, t->logprob);
        al_buf_addstr(b, g->post ? ",\"top_probs\":[" : ",\"top_logprobs\":[");
        for (int k = 0; k < t->n; k++) {
            al_buf_addstr(b, k ? "," : "");
            add_entry(g, b, t->ids[k], t->lps[k]);
            al_buf_addch(b, '}');
        }
        al_buf_addstr(b, "]}");
    }
    al_buf_addch(b, ']');
}

/* The logprobs object for tokens [from, to) of g->lp; advances g->lp_off. */
void al_server_gen_lp_object(struct al_server_gen *g, struct al_buf *b, size_t from, size_t to)
{
    char p[256];
    al_buf_addstr(b, "{\"content\":");
    al_server_gen_lp_content(g, b, from, to);
    if (g->kind == AL_SERVER_GEN_CHAT) {
        al_buf_addstr(b, ",\"refusal\":null}");
        return;
    }
    al_buf_addstr(b, ",\"tokens\":[");
    for (size_t i = from; i < to; i++) {
        size_t n = piece(g, g->lp[i].id, p, sizeof p);
        al_buf_addstr(b, i > from ? "," : "");
        add_text(b, p, n);
    }
    al_buf_addstr(b, "],\"token_logprobs\":[");
    for (size_t i = from; i < to; i++) {
        al_buf_addstr(b, i > from ? "," : "");
        add_lp(b, as_lp(g, g->lp[i].logprob));
    }
    al_buf_addstr(b, "],\"top_logprobs\":[");
    for (size_t i = from; i < to; i++) {
        const struct lp_tok *t = &g->lp[i];
        char seen[AL_LIMIT_TOP_PROBS][256];
        al_buf_addstr(b, i > from ? ",{" : "{");
        int w = 0;
        for (int k = 0; k < t->n; k++) {
            /* An object holds each text once: the likelier token keeps it. */
            size_t n = piece(g, t->ids[k], seen[w], sizeof seen[w]);
            bool dup = false;
            for (int j = 0; j < w && !dup; j++)
                dup = strcmp(seen[j], seen[w]) == 0;
            if (dup)
                continue;
            al_buf_addstr(b, w ? "," : "");
            add_text(b, seen[w], n);
            al_buf_addch(b, ':');
            add_lp(b, as_lp(g, t->lps[k]));
            w++;
        }
        al_buf_addch(b, '}');
    }
    al_buf_addstr(b, "],\"text_offset\":[");
    for (size_t i = from; i < to; i++) {
        al_buf_addf(b, "%s%zu", i > from ? "," : "", g->lp_off);
        g->lp_off += piece(g, g->lp[i].id, p, sizeof p);
    }
    al_buf_addstr(b, "]}");
}

/* The whole logprobs object, or JSON null. With stop strings, the tokens from
 * the one where the returned text ends are left out (they made the stop string). */
json_t *al_server_gen_lp_whole(struct al_server_gen *g)
{
    if (g->lp_top < 0)
        return json_null();
    size_t keep = g->n_lp, len = g->text.len, off = 0;
    if (g->has_stop) {
        char p[256];
        for (keep = 0; keep < g->n_lp && off < len; keep++)
            off += piece(g, g->lp[keep].id, p, sizeof p);
    }
    struct al_buf b;
    al_buf_init(&b, 256u << 20);
    g->lp_off = 0;
    al_server_gen_lp_object(g, &b, 0, keep);
    json_error_t je;
    json_t *j = al_buf_failed(&b) ? NULL : json_loadb(b.data, b.len, 0, &je);
    if (!j)
        al_log(AL_LOG_WARN, "logprobs of %s could not be encoded", g->id);
    al_buf_release(&b);
    return j ? j : json_null();
}
