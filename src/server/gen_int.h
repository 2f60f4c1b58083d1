/*
 * gen_int.h: a generation in flight (gen.c), shared with gen_json.c, which
 * writes its JSON text: escaping and log-probabilities. Only those two
 * include it.
 */
#ifndef AL_SERVER_GEN_INT_H
#define AL_SERVER_GEN_INT_H

#include "server/http_int.h"

#include "core/limits.h"

/* choices: OpenAI's 'n', or llama-server's batch of prompts */
#define MAX_CHOICES (AL_LIMIT_CHOICES > AL_LIMIT_PROMPTS ? AL_LIMIT_CHOICES : AL_LIMIT_PROMPTS)

struct al_server_gen {
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct al_server *srv;
    struct al_http_req *h;      /* NULL after the finish path */
    enum al_server_gen_kind kind;
    bool stream, include_usage;
    char id[48];
    char fingerprint[20];   /* fp_ and the weights' digest, shortened */
    long long created;
    struct al_buf head;     /* `data: {"id":...,"choices":[{"index":0,` */
    struct al_buf sse;      /* bytes not yet given to libmicrohttpd */
    size_t sse_off;
    struct al_buf text;     /* the whole text */
    struct al_engine_req *req;
    atomic_bool cancel;
    const char *cancel_why; /* "timeout", "client", "shutdown" */
    bool done;              /* lead: every choice has finished */
    bool fin;               /* this choice has finished (on_done, or never submitted) */
    struct al_server_gen *lead; /* the first choice (itself for the first) */
    struct al_server_gen *choices[MAX_CHOICES]; /* lead: every choice, [0] itself */
    bool prompts;           /* lead: each choice has a prompt of its own (al_server_gen_opts.prompts) */
    int n_choices, n_fin;   /* lead: choices asked for, finished */
    int index;              /* this choice's index */
    bool error_sent;        /* lead: a stream's error event is out */
    struct al_engine_gen_result res;
    char error[256];
    double t0, t_first, t_last;
    int n_pieces;
    double interval_s;      /* coalescing (see above); 0: every token */
    double t_flush;         /* when the connection thread last took events */
    bool idle_wait;         /* it waits with nothing due: the next token wakes it */
    /* log-probabilities (the request asked for them: lp_top >= 0) */
    struct al_engine_model *m; /* for the tokens' text; leased until the finish path */
    int lp_top;             /* alternatives per token to report */
    bool post;              /* the figures are probabilities after the sampler chain
                             * (llama-server's post_sampling_probs): "prob", "top_probs" */
    bool has_stop;          /* stop strings: tokens past the returned text are left out */
    struct lp_tok *lp;      /* every sampled token, from on_probs */
    size_t n_lp, cap_lp, lp_sent; /* recorded; already sent (streaming) */
    size_t lp_off;          /* text offset of the next token to format */
    bool lp_nomem;
    json_t *citations;      /* retrieval: the passages, returned with the message */
    /* tool calls (tools.c): the answer is parsed by llama.cpp's chat library;
     * a stream sends its deltas (content, tool_calls) instead of raw text */
    struct al_engine_chat *chat; /* owned; NULL: plain text */
    bool tools;             /* chat parses tool calls */
    size_t n_calls;         /* tool calls parsed so far */
    /* the Responses API (responses.c): its events' numbering, whether the
     * message item is open, the model's name for the final object */
    int seq;
    bool msg_open;
    char *model;            /* the name echoed (owned) */
    const struct al_server_gen_fmt *fmt; /* another API's shapes (ollama.c); NULL: OpenAI's */
    json_t *extra;          /* the fmt's request fields (al_server_gen_opts.extra) */
    bool ids;               /* the token ids are recorded in lp (al_server_gen_opts.token_ids) */
};

struct lp_tok {
    int32_t id;
    float logprob;
    int n;
    int32_t ids[AL_LIMIT_TOP_PROBS];
    float lps[AL_LIMIT_TOP_PROBS];
};

/* gen_json.c: log-probabilities. The engine calls on_probs (its ud a
 * struct al_server_gen) before a token's text reaches on_token. */
void al_server_gen_on_probs(void *ud, const struct al_engine_token_probs *tp);
/* The entries [{id, token, logprob, bytes, top_logprobs}] of tokens [from, to). */
void al_server_gen_lp_content(const struct al_server_gen *g, struct al_buf *b, size_t from, size_t to);
/* The logprobs object for tokens [from, to) of g->lp; advances g->lp_off. */
void al_server_gen_lp_object(struct al_server_gen *g, struct al_buf *b, size_t from, size_t to);
/* The whole answer's logprobs object, or JSON null when none was asked for. */
json_t *al_server_gen_lp_whole(struct al_server_gen *g);

#endif
