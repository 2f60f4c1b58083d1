/*
 * gen.c: one generation in flight, between the engine's worker thread and the
 * connection's thread.
 *
 * The engine's callbacks (worker thread) format server-sent events straight
 * into g->sse under g->mu and signal; the connection's thread sleeps in the
 * content reader (streaming) or in al_server_gen_run (not streaming) and, every
 * TICK_MS while it waits, checks whether the client has gone, the request's
 * time is up or the server is stopping, and cancels the engine request then.
 *
 * Handing over: after a stream's first token and after the end of any
 * request the worker yields its CPU, so the connection thread, woken or still
 * on its way to the wait, runs now. The compute threads keep every core busy
 * (they spin between steps), and Linux's scheduler (EEVDF, 6.6+) would
 * otherwise let the worker finish its slice before the woken thread runs: the
 * event then waits up to a timer tick in memory. Not after every token: a
 * switch per token lowers the decode rate, while tokens that wait for a
 * tick go out together in one write (docs/internals/server.md, "Threads",
 * has the numbers).
 *
 * Coalescing: a stream's events go out at most every stream_interval_ms
 * (default 5): the worker wakes the connection thread for the first token,
 * for a token that comes when the thread waits with nothing due, and when the
 * last write is an interval old; otherwise the event waits in g->sse for the
 * thread's timed wake, one interval after its last write. A model slower than
 * one token an interval streams every token at once; a fast one sends them in
 * bursts, one write and two wake-ups an interval instead of per token: per
 * token they cost CPU that on a small machine comes out of decoding
 * (docs/internals/server.md). A non-streaming request is woken only at the end.
 *
 * References: the request (h->gen, dropped in the finish path), the engine
 * (until on_done) and a streaming response (until libmicrohttpd frees it)
 * each hold one; the last one frees.
 *
 * Choices ('n' > 1): one engine request per choice, each with a struct of its
 * own (its text, result, log-probabilities and stream head with its
 * "index"), all led by the first (g->lead), which holds what they share: the
 * lock, the condition, the stream's bytes, the cancel flag, the references
 * (each engine request holds one on the lead) and the choices themselves. The
 * lead's "done" means every choice is done; a choice's own end is "fin". With
 * one choice the lead is the only choice and nothing changes.
 */
#include "server/gen_int.h"

#include <sched.h>
#include <time.h>

#include "core/limits.h"
#include "core/log.h"
#include "core/utf8.h"

#define TICK_MS 50

/* A choice other than the lead: what is its own. */
static void choice_free(struct al_server_gen *c)
{
    al_engine_req_free(c->req);
    al_buf_release(&c->head);
    al_buf_release(&c->text);
    free(c->lp);
    free(c);
}

static void gen_free(struct al_server_gen *g)
{
    for (int i = 1; i < g->n_choices; i++)
        if (g->choices[i])
            choice_free(g->choices[i]);
    al_engine_req_free(g->req);
    al_buf_release(&g->head);
    al_buf_release(&g->sse);
    al_buf_release(&g->text);
    free(g->lp);
    json_decref(g->citations);
    json_decref(g->extra);
    al_engine_chat_free(g->chat);
    free(g->model);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void al_server_gen_unref(struct al_server_gen *g)
{
    if (g && atomic_fetch_sub(&g->refs, 1) == 1)
        gen_free(g);
}

static const char *finish_reason(const struct al_server_gen *g)
{
    if (g->res.finish == AL_ENGINE_FINISH_LENGTH)
        return "length"; /* a call cut short too, as OpenAI says */
    return g->n_calls > 0 ? "tool_calls" : "stop";
}

static void resp_done(struct al_server_gen *g);

/* Under g->mu: a Responses stream's text, opening its message item first. */
static void resp_text(struct al_server_gen *g, const char *piece, size_t len)
{
    char item[64];
    snprintf(item, sizeof item, "msg_%s", g->id + 5);
    if (!g->msg_open) {
        g->msg_open = true;
        al_server_responses_event(&g->sse, &g->seq, "response.output_item.added",
                                  json_pack("{s:i, s:{s:s, s:s, s:s, s:s, s:[]}}", "output_index", 0, "item", "id",
                                            item, "type", "message", "status", "in_progress", "role", "assistant",
                                            "content"));
        al_server_responses_event(&g->sse, &g->seq, "response.content_part.added",
                                  json_pack("{s:s, s:i, s:i, s:{s:s, s:s, s:[]}}", "item_id", item, "output_index", 0,
                                            "content_index", 0, "part", "type", "output_text", "text", "",
                                            "annotations"));
    }
    al_server_responses_event(&g->sse, &g->seq, "response.output_text.delta",
                              json_pack("{s:s, s:i, s:i, s:s%}", "item_id", item, "output_index", 0, "content_index",
                                        0, "delta", piece, len));
}

/* Under g->mu, with tools: parses the text so far and queues one chunk per
 * delta (content, tool_calls) that is new. A final text that does not parse
 * is sent as content (what the model said) and logged. */
static void tool_deltas(struct al_server_gen *g, bool partial)
{
    char *deltas = NULL;
    struct al_err err = AL_ERR_INIT;
    if (al_engine_chat_parse(g->chat, g->text.data ? g->text.data : "", g->text.len, partial, &deltas, NULL,
                             &g->n_calls, &err) != AL_OK) {
        al_log(AL_LOG_WARN, "%s: %s", g->id, err.msg);
        return;
    }
    json_error_t je;
    json_t *arr = json_loads(deltas, 0, &je);
    free(deltas);
    size_t i;
    json_t *d;
    json_array_foreach(arr, i, d)
    {
        if (g->kind == AL_SERVER_GEN_RESPONSES) { /* text as it comes; calls at the end */
            json_t *c = json_object_get(d, "content");
            if (json_is_string(c))
                resp_text(g, json_string_value(c), json_string_length(c));
            continue;
        }
        char *dj = json_dumps(d, JSON_COMPACT);
        if (!dj)
            continue;
        al_buf_add(&g->sse, g->head.data, g->head.len);
        al_buf_addstr(&g->sse, "\"delta\":");
        al_buf_addstr(&g->sse, dj);
        al_buf_addstr(&g->sse, ",\"logprobs\":null,\"finish_reason\":null}]}\n\n");
        free(dj);
    }
    json_decref(arr);
}

/* OpenAI's usage; cached_tokens are the prompt tokens the KV cache held. */
static void add_usage(struct al_buf *b, const struct al_engine_gen_result *r)
{
    al_buf_addf(b,
                "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d,"
                "\"prompt_tokens_details\":{\"cached_tokens\":%d}}",
                r->n_prompt, r->n_gen, r->n_prompt + r->n_gen, r->n_cached);
}

static bool on_token(void *ud, const char *piece, size_t len, int32_t token)
{
    struct al_server_gen *g = ud, *L = g->lead;
    double now = al_http_now();
    pthread_mutex_lock(&L->mu);
    if (g->n_pieces++ == 0)
        g->t_first = now;
    g->t_last = now;
    al_buf_add(&g->text, piece, len);
    if (g->stream && g->fmt && g->ids) {
        /* The tokens this piece's text came from, and their probabilities. */
        struct al_buf t;
        al_buf_init(&t, AL_LIMIT_PROMPT_BYTES);
        al_buf_addf(&t, "\"index\":%d,\"tokens\":[", g->index);
        for (size_t i = g->lp_sent; i < g->n_lp; i++)
            al_buf_addf(&t, "%s%d", i > g->lp_sent ? "," : "", g->lp[i].id);
        al_buf_addch(&t, ']');
        if (g->lp_top >= 0) {
            al_buf_addstr(&t, ",\"completion_probabilities\":");
            al_server_gen_lp_content(g, &t, g->lp_sent, g->n_lp);
        }
        g->lp_sent = g->n_lp;
        if (al_buf_failed(&t))
            g->lp_nomem = true;
        else
            g->fmt->piece(&L->sse, L->model, piece, len, al_buf_str(&t));
        al_buf_release(&t);
    } else if (g->stream && g->fmt) {
        g->fmt->piece(&L->sse, L->model, piece, len, NULL);
    } else if (g->stream && g->tools) {
        tool_deltas(g, true);
    } else if (g->stream && g->kind == AL_SERVER_GEN_RESPONSES) {
        char *t = al_utf8_valid_dup(piece, len, NULL);
        if (t)
            resp_text(g, t, strlen(t));
        free(t);
    } else if (g->stream) {
        struct al_buf *b = &L->sse; /* the choices' chunks go out in one stream */
        al_buf_add(b, g->head.data, g->head.len);
        al_buf_addstr(b, g->kind == AL_SERVER_GEN_CHAT ? "\"delta\":{\"content\":" : "\"text\":");
        al_server_json_escape(b, piece, len);
        al_buf_addstr(b, g->kind == AL_SERVER_GEN_CHAT ? "},\"logprobs\":" : ",\"logprobs\":");
        if (g->lp_top >= 0 && g->n_lp > g->lp_sent) {
            /* The tokens whose text this chunk carries. */
            al_server_gen_lp_object(g, b, g->lp_sent, g->n_lp);
            g->lp_sent = g->n_lp;
        } else {
            al_buf_addstr(b, "null");
        }
        al_buf_addstr(b, ",\"finish_reason\":null}]}\n\n");
    }
    bool ok = !al_buf_failed(&L->sse) && !al_buf_failed(&g->text) && !g->lp_nomem;
    bool first = g->stream && g->n_pieces == 1;
    if (g->stream && (first || L->idle_wait || now - L->t_flush >= L->interval_s))
        pthread_cond_signal(&L->cv);
    pthread_mutex_unlock(&L->mu);
    if (first)
        sched_yield(); /* see "Handing over" above */
    return ok && !atomic_load(&L->cancel);
}

/* return_progress (the first choice's): llama-server's chunk with no choices
 * and prompt_progress {total, cache, processed, time_ms}; worker thread. */
static void on_progress(void *ud, int total, int cache, int processed, double ms)
{
    struct al_server_gen *g = ud, *L = g->lead;
    pthread_mutex_lock(&L->mu);
    const char *c = strstr(al_buf_str(&g->head), "\"choices\":[");
    if (c) {
        al_buf_add(&L->sse, g->head.data, (size_t)(c - g->head.data) + strlen("\"choices\":["));
        al_buf_addf(&L->sse, "],\"prompt_progress\":{\"total\":%d,\"cache\":%d,\"processed\":%d,\"time_ms\":%.0f}}\n\n",
                    total, cache, processed, ms);
        pthread_cond_signal(&L->cv);
    }
    pthread_mutex_unlock(&L->mu);
}

/* The usage of every choice: the prompt once (each choice has the same
 * prompt), the tokens generated summed, as OpenAI counts n choices. */
static struct al_engine_gen_result group_usage(const struct al_server_gen *L)
{
    struct al_engine_gen_result r = L->res;
    for (int i = 1; i < L->n_choices; i++) {
        r.n_gen += L->choices[i]->res.n_gen;
        if (L->prompts) {
            r.n_prompt += L->choices[i]->res.n_prompt;
            r.n_cached += L->choices[i]->res.n_cached;
        }
    }
    return r;
}

static void on_done(void *ud, const struct al_engine_gen_result *res)
{
    struct al_server_gen *g = ud, *L = g->lead;
    struct al_server_metrics *m = g->srv->metrics;
    pthread_mutex_lock(&L->mu);
    g->res = *res;
    g->res.error = NULL;
    if (res->error)
        snprintf(g->error, sizeof g->error, "%s", res->error);
    g->fin = true;
    bool all = ++L->n_fin == L->n_choices;
    const char *cancel_why = L->cancel_why;
    if (g->stream && g->fmt) {
        bool failed = res->finish == AL_ENGINE_FINISH_ERROR ||
                      (res->finish == AL_ENGINE_FINISH_CANCELLED && cancel_why && strcmp(cancel_why, "client") != 0);
        const char *why = res->finish == AL_ENGINE_FINISH_ERROR ? g->error
                          : cancel_why && strcmp(cancel_why, "timeout") == 0
                              ? "the request took longer than the server allows (limits.timeout_s)"
                              : "the server is shutting down";
        g->fmt->done(&L->sse, L->model, g->t0, res, failed ? why : NULL, L->extra, g->index);
    } else if (g->stream) {
        struct al_buf *b = &L->sse;
        if (res->finish == AL_ENGINE_FINISH_ERROR || (res->finish == AL_ENGINE_FINISH_CANCELLED && cancel_why &&
                                                      strcmp(cancel_why, "client") != 0)) {
            if (!L->error_sent) { /* once for the stream, whichever choice failed first */
                L->error_sent = true;
                bool timeout = cancel_why && strcmp(cancel_why, "timeout") == 0;
                al_buf_addstr(b, "data: {\"error\":{\"message\":");
                const char *msg = res->finish == AL_ENGINE_FINISH_ERROR ? g->error
                                  : timeout ? "the request took longer than the server allows (limits.timeout_s)"
                                            : "the server is shutting down";
                al_server_json_escape(b, msg, strlen(msg));
                al_buf_addf(b, ",\"type\":\"server_error\",\"param\":null,\"code\":\"%s\"}}\n\n",
                            res->finish == AL_ENGINE_FINISH_ERROR ? "internal" : cancel_why);
            }
        } else if (g->kind == AL_SERVER_GEN_RESPONSES) {
            if (g->tools)
                tool_deltas(g, false);
            resp_done(g);
        } else {
            if (g->tools)
                tool_deltas(g, false);
            al_buf_add(b, g->head.data, g->head.len);
            al_buf_addf(b, "%s,\"logprobs\":", g->kind == AL_SERVER_GEN_CHAT ? "\"delta\":{}" : "\"text\":\"\"");
            /* Tokens without text: an end-of-generation token (listed, as llama-server
             * does); with stop strings, the held-back tokens of the stop string (not). */
            if (g->lp_top >= 0 && g->n_lp > g->lp_sent && !g->has_stop)
                al_server_gen_lp_object(g, b, g->lp_sent, g->n_lp);
            else
                al_buf_addstr(b, "null");
            g->lp_sent = g->n_lp;
            al_buf_addf(b, ",\"finish_reason\":\"%s\"}]}\n\n", finish_reason(g));
            if (all && L->include_usage && !L->error_sent) {
                /* The usage chunk: the head without its choice, then usage. */
                const char *cut = strstr(L->head.data, "\"choices\":[");
                struct al_engine_gen_result u = group_usage(L);
                al_buf_add(b, L->head.data, (size_t)(cut - L->head.data));
                al_buf_addstr(b, "\"choices\":[],");
                add_usage(b, &u);
                al_buf_addstr(b, "}\n\n");
            }
        }
        if (all && g->kind != AL_SERVER_GEN_RESPONSES)
            al_buf_addstr(b, "data: [DONE]\n\n");
    }
    if (all)
        L->done = true;
    pthread_cond_broadcast(&L->cv);
    double ttft = g->n_pieces ? g->t_first - L->t0 : -1;
    double tpot = g->n_pieces > 1 && res->n_gen > 1 ? (g->t_last - g->t_first) / (res->n_gen - 1) : -1;
    pthread_mutex_unlock(&L->mu);
    if (ttft >= 0)
        al_server_metrics_ttft(m, ttft);
    if (tpot >= 0)
        al_server_metrics_token_latency(m, tpot);
    if (res->finish == AL_ENGINE_FINISH_CANCELLED)
        al_server_metrics_cancelled(m);
    /* The last touch of the server: al_server_free waits for n_gens == 0. */
    struct al_server *srv = g->srv;
    pthread_mutex_lock(&srv->mu);
    if (--srv->n_gens == 0)
        pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
    al_server_gen_unref(L); /* the engine's reference, held on the lead */
    sched_yield();
}

/* Under the lead's lock: cancels every choice's engine request. */
static void request_cancel(struct al_server_gen *g, const char *why)
{
    if (atomic_exchange(&g->cancel, true))
        return;
    g->cancel_why = why;
    for (int i = 0; i < g->n_choices; i++)
        if (g->choices[i] && g->choices[i]->req && !g->choices[i]->fin)
            al_engine_cancel(g->choices[i]->req);
}

/* Under g->mu: sleeps up to ms (at most a tick), then checks the client, the
 * clock and the server. Returns false when the client is gone. */
static bool wait_tick(struct al_server_gen *g, struct al_http_req *h, double ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)((ms < TICK_MS ? ms : TICK_MS) * 1e6);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    if (g->done)
        return true;
    if (al_http_client_gone(h)) {
        request_cancel(g, "client");
        h->gone = true;
        return false;
    }
    double limit = h->limits.timeout_s;
    if (limit > 0 && al_http_now() - h->t0 > limit)
        request_cancel(g, "timeout");
    pthread_mutex_lock(&g->srv->mu);
    bool stopping = g->srv->stopping;
    pthread_mutex_unlock(&g->srv->mu);
    if (stopping)
        request_cancel(g, "shutdown");
    return true;
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct al_server_gen *g = cls;
    ssize_t n = MHD_CONTENT_READER_END_OF_STREAM;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        if (g->sse.len > g->sse_off) {
            size_t k = g->sse.len - g->sse_off;
            if (k > max)
                k = max;
            memcpy(buf, g->sse.data + g->sse_off, k);
            g->sse_off += k;
            if (g->sse_off == g->sse.len) {
                al_buf_reset(&g->sse);
                g->sse_off = 0;
            }
            n = (ssize_t)k;
            g->t_flush = al_http_now();
            g->idle_wait = false;
            break;
        }
        if (g->done)
            break;
        /* Nothing to send: wait for the next write's time, or idle. */
        double due_ms = TICK_MS;
        if (!g->idle_wait) {
            due_ms = (g->t_flush + g->interval_s - al_http_now()) * 1e3;
            if (due_ms <= 0) {
                g->idle_wait = true;
                continue;
            }
        }
        if (!g->h || !wait_tick(g, g->h, due_ms)) {
            n = MHD_CONTENT_READER_END_WITH_ERROR;
            break;
        }
    }
    pthread_mutex_unlock(&g->mu);
    return n;
}

static void reader_free(void *cls)
{
    al_server_gen_unref(cls);
}

/* With tools, the message as llama.cpp's parser reads it (content,
 * tool_calls; the caller's); NULL without tools or when it does not parse. */
static json_t *parsed_message(struct al_server_gen *g)
{
    if (!g->tools)
        return NULL;
    json_t *parsed = NULL;
    char *mj = NULL;
    struct al_err err = AL_ERR_INIT;
    if (al_engine_chat_parse(g->chat, g->text.data ? g->text.data : "", g->text.len, false, NULL, &mj, &g->n_calls,
                             &err) == AL_OK) {
        json_error_t je;
        parsed = json_loads(mj, 0, &je);
    } else {
        al_log(AL_LOG_WARN, "%s: %s", g->id, err.msg);
    }
    free(mj);
    return parsed;
}

/* Under g->mu, at the end of a Responses stream: closes the message item,
 * sends each function call as an item, then response.completed (or
 * response.incomplete) with the whole response. */
static void resp_done(struct al_server_gen *g)
{
    json_t *parsed = parsed_message(g);
    json_t *r = al_server_responses_object(g->id, g->created, g->model, g->text.data, g->text.len, parsed, &g->res);
    json_decref(parsed);
    if (!r)
        return;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(r, "output"), i, item)
    {
        const char *type = json_string_value(json_object_get(item, "type"));
        const char *id = json_string_value(json_object_get(item, "id"));
        if (strcmp(type, "message") == 0) {
            if (!g->msg_open)
                resp_text(g, "", 0);
            json_t *part = json_array_get(json_object_get(item, "content"), 0);
            al_server_responses_event(&g->sse, &g->seq, "response.output_text.done",
                                      json_pack("{s:s, s:I, s:i, s:O}", "item_id", id, "output_index", (json_int_t)i,
                                                "content_index", 0, "text", json_object_get(part, "text")));
            al_server_responses_event(&g->sse, &g->seq, "response.content_part.done",
                                      json_pack("{s:s, s:I, s:i, s:O}", "item_id", id, "output_index", (json_int_t)i,
                                                "content_index", 0, "part", part));
        } else {
            json_t *added = json_deep_copy(item);
            json_object_set_new(added, "status", json_string("in_progress"));
            json_object_set_new(added, "arguments", json_string(""));
            al_server_responses_event(&g->sse, &g->seq, "response.output_item.added",
                                      json_pack("{s:I, s:o}", "output_index", (json_int_t)i, "item", added));
            al_server_responses_event(&g->sse, &g->seq, "response.function_call_arguments.delta",
                                      json_pack("{s:s, s:I, s:O}", "item_id", id, "output_index", (json_int_t)i,
                                                "delta", json_object_get(item, "arguments")));
            al_server_responses_event(&g->sse, &g->seq, "response.function_call_arguments.done",
                                      json_pack("{s:s, s:I, s:O}", "item_id", id, "output_index", (json_int_t)i,
                                                "arguments", json_object_get(item, "arguments")));
        }
        al_server_responses_event(&g->sse, &g->seq, "response.output_item.done",
                                  json_pack("{s:I, s:O}", "output_index", (json_int_t)i, "item", item));
    }
    bool cut = g->res.finish == AL_ENGINE_FINISH_LENGTH;
    al_server_responses_event(&g->sse, &g->seq, cut ? "response.incomplete" : "response.completed",
                              json_pack("{s:o}", "response", r));
}

/* One choice of a whole answer, with its index. */
static json_t *whole_choice(struct al_server_gen *g)
{
    json_t *choice;
    json_t *parsed = parsed_message(g);
    char *text = al_utf8_valid_dup(g->text.data ? g->text.data : "", g->text.len, NULL);
    if (!text) {
        json_decref(parsed);
        return NULL;
    }
    if (g->kind == AL_SERVER_GEN_CHAT && parsed) {
        choice = json_pack("{s:i, s:o, s:o, s:s}", "index", g->index, "message", parsed, "logprobs",
                           al_server_gen_lp_whole(g), "finish_reason", finish_reason(g));
    } else if (g->kind == AL_SERVER_GEN_CHAT) {
        choice = json_pack("{s:i, s:{s:s, s:s}, s:o, s:s}", "index", g->index, "message", "role", "assistant",
                           "content", text, "logprobs", al_server_gen_lp_whole(g), "finish_reason", finish_reason(g));
        if (choice && g->citations) { /* retrieval: the passages, marked when the answer cites them */
            al_server_rag_mark_cited(g->citations, text);
            json_object_set(json_object_get(choice, "message"), "citations", g->citations);
        }
    } else {
        choice = json_pack("{s:s, s:i, s:o, s:s}", "text", text, "index", g->index, "logprobs", al_server_gen_lp_whole(g),
                           "finish_reason", finish_reason(g));
    }
    free(text);
    return choice;
}

static json_t *whole_response(struct al_server_gen *g, const char *model)
{
    if (g->kind == AL_SERVER_GEN_RESPONSES) {
        json_t *parsed = parsed_message(g);
        json_t *r = al_server_responses_object(g->id, g->created, model, g->text.data, g->text.len, parsed, &g->res);
        json_decref(parsed);
        return r;
    }
    json_t *choices = json_array();
    for (int i = 0; choices && i < g->n_choices; i++) {
        json_t *c = whole_choice(g->choices[i]);
        if (!c || json_array_append_new(choices, c)) {
            json_decref(choices);
            return NULL;
        }
    }
    struct al_engine_gen_result u = group_usage(g);
    return json_pack("{s:s, s:s, s:I, s:s, s:o, s:{s:i, s:i, s:i, s:{s:i}}, s:s}", "id", g->id, "object",
                     g->kind == AL_SERVER_GEN_CHAT ? "chat.completion" : "text_completion", "created", g->created, "model",
                     model, "choices", choices, "usage", "prompt_tokens", u.n_prompt, "completion_tokens",
                     u.n_gen, "total_tokens", u.n_prompt + u.n_gen, "prompt_tokens_details",
                     "cached_tokens", u.n_cached, "system_fingerprint", g->fingerprint);
}

/* One choice's whole answer in another API's shape (go->fmt): the fmt's
 * object, with the choice's log-probabilities (llama-server's /completion
 * n_probs: completion_probabilities, the "content" list of the OpenAI
 * object), its token ids, and only the response_fields asked for. */
static json_t *fmt_whole(struct al_server_gen *c, const struct al_server_gen_opts *go)
{
    struct al_server_gen *L = c->lead;
    char *text = al_utf8_valid_dup(c->text.data ? c->text.data : "", c->text.len, NULL);
    json_t *j = text ? go->fmt->whole(go->model, L->t0, text, &c->res, L->extra) : NULL;
    free(text);
    if (j && L->prompts)
        json_object_set_new(j, "index", json_integer(c->index));
    if (j && c->lp_top >= 0) {
        json_t *lp = al_server_gen_lp_whole(c);
        json_object_set(j, "completion_probabilities", json_object_get(lp, "content"));
        json_decref(lp);
    }
    json_t *ids = j && c->ids ? json_array() : NULL;
    for (size_t i = 0; ids && i < c->n_lp; i++)
        json_array_append_new(ids, json_integer(c->lp[i].id));
    if (ids)
        json_object_set_new(j, "tokens", ids);
    if (j && go->response_fields) {
        json_t *picked = al_server_response_fields_pick(j, go->response_fields);
        json_decref(j);
        j = picked;
    }
    return j;
}

enum MHD_Result al_server_gen_run(struct al_http_req *h, const struct al_server_gen_opts *go)
{
    struct al_server_gen *g = calloc(1, sizeof *g);
    if (!g) {
        al_engine_chat_free(go->chat);
        return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    }
    atomic_init(&g->refs, 1);
    pthread_mutex_init(&g->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    g->srv = h->srv;
    g->h = h;
    g->kind = go->kind;
    g->stream = go->stream;
    g->include_usage = go->include_usage;
    g->interval_s = h->stream_interval_ms / 1e3;
    g->created = (long long)time(NULL);
    g->t0 = h->t0;
    g->m = al_serve_lease_engine(h->lease);
    g->lp_top = go->logprobs;
    g->post = go->logprobs >= 0 && go->params.post_sampling_probs;
    g->has_stop = go->params.n_stop > 0;
    g->citations = json_incref(go->citations);
    g->chat = go->chat; /* ours now, freed with g */
    g->tools = g->chat && al_engine_chat_parses_tools(g->chat);
    g->fmt = go->fmt;
    g->extra = json_incref(go->extra);
    g->ids = go->fmt && go->token_ids;
    if (!(g->model = strdup(go->model))) {
        gen_free(g);
        return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    }
    snprintf(g->id, sizeof g->id, "%s%s", go->kind == AL_SERVER_GEN_CHAT ? "chatcmpl-" : go->kind == AL_SERVER_GEN_RESPONSES ? "resp_" : "cmpl-", h->id + 4);
    al_buf_init(&g->head, 4096);
    al_buf_init(&g->sse, AL_LIMIT_PROMPT_BYTES);
    al_buf_init(&g->text, AL_LIMIT_PROMPT_BYTES);
    h->gen = g;
    al_buf_addf(&g->head, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", g->id,
                go->kind == AL_SERVER_GEN_CHAT ? "chat.completion.chunk" : "text_completion", g->created);
    al_server_json_escape(&g->head, go->model, strlen(go->model));
    const char *hex = al_digest_hex(al_serve_lease_digest(h->lease));
    if (hex == NULL)
        return al_http_reply_error(h, 500, "server_error", "model", NULL, "model '%s' has no sha256 digest",
                                   go->model);
    snprintf(g->fingerprint, sizeof g->fingerprint, "fp_%.12s", hex);
    al_buf_addf(&g->head, ",\"system_fingerprint\":\"%s\",\"choices\":[{\"index\":0,", g->fingerprint);
    if (al_buf_failed(&g->head))
        return al_http_reply_error(h, 400, "invalid_request_error", "model", NULL, "the model name is too long");
    /* The choices: the lead is the first; the others have their own text,
     * result and head (the same but for "index"). */
    int n = go->prompts ? go->n_prompts : go->n > 1 ? go->n : 1;
    g->prompts = go->prompts != NULL;
    g->lead = g;
    g->choices[0] = g;
    g->n_choices = n;
    size_t head_cut = (size_t)(strstr(g->head.data, "\"choices\":[") - g->head.data) + strlen("\"choices\":[");
    for (int i = 1; i < n; i++) {
        struct al_server_gen *c = calloc(1, sizeof *c);
        if (!c)
            return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
        g->choices[i] = c;
        c->lead = g;
        c->index = i;
        c->srv = g->srv;
        c->kind = g->kind;
        c->stream = g->stream;
        c->include_usage = g->include_usage;
        c->created = g->created;
        c->t0 = g->t0;
        c->m = g->m;
        c->lp_top = g->lp_top;
        c->post = g->post;
        c->has_stop = g->has_stop;
        c->fmt = g->fmt;
        c->ids = g->ids;
        memcpy(c->id, g->id, sizeof c->id);
        memcpy(c->fingerprint, g->fingerprint, sizeof c->fingerprint);
        al_buf_init(&c->head, 4096);
        al_buf_init(&c->text, AL_LIMIT_PROMPT_BYTES);
        al_buf_add(&c->head, g->head.data, head_cut);
        al_buf_addf(&c->head, "{\"index\":%d,", i);
        if (al_buf_failed(&c->head))
            return al_http_reply_error(h, 500, "server_error", NULL, "nomem", "out of memory");
    }
    if (go->stream && go->kind == AL_SERVER_GEN_RESPONSES)
        al_server_responses_event(&g->sse, &g->seq, "response.created",
                                  json_pack("{s:{s:s, s:s, s:I, s:s, s:s, s:[]}}", "response", "id", g->id, "object",
                                            "response", "created_at", (json_int_t)g->created, "status", "in_progress",
                                            "model", go->model, "output"));
    for (int i = 0; i < n && go->stream && go->kind == AL_SERVER_GEN_CHAT && !go->fmt; i++) {
        /* The first chunk of each choice names the role, as OpenAI's does,
         * its content null as llama-server's (OpenAI's is "" there, null in
         * a tool call's chunks): every content delta a client sees holds text. */
        al_buf_add(&g->sse, g->choices[i]->head.data, g->choices[i]->head.len);
        al_buf_addstr(&g->sse, "\"delta\":{\"role\":\"assistant\",\"content\":null");
        if (g->citations) { /* retrieval: the passages come first, without "cited" (not known yet) */
            char *cj = json_dumps(g->citations, JSON_COMPACT);
            if (cj) {
                al_buf_addstr(&g->sse, ",\"citations\":");
                al_buf_addstr(&g->sse, cj);
                free(cj);
            }
        }
        al_buf_addstr(&g->sse, "},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
    }

    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = AL_OK;
    for (int i = 0; i < n && !rc; i++) {
        struct al_server_gen *c = g->choices[i];
        atomic_fetch_add(&g->refs, 1); /* the engine's, on the lead */
        pthread_mutex_lock(&h->srv->mu);
        h->srv->n_gens++;
        pthread_mutex_unlock(&h->srv->mu);
        struct al_engine_gen_params gp = go->params;
        gp.chat = g->chat;
        if (h->n_lora_use > 0) { /* lora.c */
            gp.loras = h->lora_use;
            gp.n_loras = h->n_lora_use;
        }
        gp.prompt_tokens = go->prompt_tokens;
        gp.n_prompt_tokens = go->n_prompt_tokens;
        if (i == 0 && go->progress && go->stream && !go->fmt && !c->tools &&
            (go->kind == AL_SERVER_GEN_CHAT || go->kind == AL_SERVER_GEN_COMPLETION)) {
            gp.on_progress = on_progress;
            gp.progress_ud = c;
        }
        /* Under a fixed seed the choices would all be the same text: each
         * its own seed, the request's plus its index. */
        if (i > 0 && gp.seed != AL_ENGINE_SEED_RANDOM && !go->prompts) {
            uint32_t seed = gp.seed + (uint32_t)i;
            gp.seed = seed == AL_ENGINE_SEED_RANDOM ? 0 : seed;
        }
        if (c->lp_top >= 0 || g->ids) {
            gp.n_probs = c->lp_top > 0 ? c->lp_top : 1;
            gp.on_probs = al_server_gen_on_probs;
            gp.probs_ud = c;
            gp.probs_ids_only = c->lp_top < 0; /* the stream's "tokens": no figures wanted */
        }
        gp.post_sampling_probs = c->post;
        if (h->arriving) {
            gp.on_submitted = al_server_arrivals_submitted;
            gp.submitted_ud = h->srv->arrivals;
            h->arriving = false;
        }
        rc = al_engine_submit(al_serve_lease_engine(h->lease), go->prompts ? go->prompts[i] : go->prompt, &gp,
                              on_token, on_done, c, &c->req, &err);
        if (rc) {
            atomic_fetch_sub(&g->refs, 1);
            pthread_mutex_lock(&h->srv->mu);
            h->srv->n_gens--;
            pthread_mutex_unlock(&h->srv->mu);
            /* The choices not submitted never finish: counted as finished,
             * and those submitted are cancelled (the answer is the error). */
            pthread_mutex_lock(&g->mu);
            for (int k = i; k < n; k++)
                g->choices[k]->fin = true;
            g->n_fin += n - i;
            g->done = g->n_fin == n;
            if (i > 0)
                request_cancel(g, "shutdown");
            pthread_mutex_unlock(&g->mu);
        }
    }
    if (rc) {
        if (rc == AL_ERR_LIMIT && strstr(err.msg, "context"))
            return al_http_reply_error(h, 400, "invalid_request_error",
                                       go->kind == AL_SERVER_GEN_CHAT ? "messages" : "prompt", "context_length_exceeded",
                                       "%s", err.msg);
        return al_http_reply_rc(h, &err, rc == AL_ERR_INVALID ? "grammar" : NULL);
    }
    if (go->stream) {
        atomic_fetch_add(&g->refs, 1); /* the response's */
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, reader, g, reader_free);
        if (!r) {
            atomic_fetch_sub(&g->refs, 1);
            return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", go->fmt ? go->fmt->stream_type : "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        MHD_add_response_header(r, "X-Request-Id", h->id);
        al_http_cors_headers(h, r);
        h->status = 200;
        enum MHD_Result ret = MHD_queue_response(h->conn, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    pthread_mutex_lock(&g->mu);
    bool gone = false;
    while (!g->done)
        if (!wait_tick(g, h, TICK_MS))
            gone = true;
    pthread_mutex_unlock(&g->mu);
    if (gone)
        return MHD_NO; /* nobody to answer */
    for (int i = 0; i < n; i++) {
        const struct al_server_gen *c = g->choices[i];
        if (c->res.finish == AL_ENGINE_FINISH_ERROR)
            return al_http_reply_error(h, 500, "server_error", NULL, "internal", "generation failed: %s", c->error);
        if (c->res.finish == AL_ENGINE_FINISH_CANCELLED)
            return al_http_reply_stopped(h, g->cancel_why && strcmp(g->cancel_why, "timeout") == 0 ? "timeout"
                                                                                                    : "shutdown");
        if (al_buf_failed(&c->text))
            return al_http_reply_error(h, 500, "server_error", NULL, "limit",
                                       "the response is over the cap of %u bytes", AL_LIMIT_PROMPT_BYTES);
    }
    if (go->fmt && !go->prompts)
        return al_http_reply_json(h, 200, fmt_whole(g->choices[0], go));
    if (go->fmt) {
        json_t *arr = json_array();
        for (int i = 0; arr && i < n; i++) {
            json_t *j = fmt_whole(g->choices[i], go);
            if (!j || json_array_append_new(arr, j) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        return al_http_reply_json(h, 200, arr);
    }
    return al_http_reply_json(h, 200, whole_response(g, go->model));
}

enum MHD_Result al_http_reply_stopped(struct al_http_req *h, const char *why)
{
    if (strcmp(why, "client") == 0)
        return MHD_NO; /* nobody to answer */
    if (strcmp(why, "timeout") == 0)
        return al_http_reply_error(h, 504, "server_error", NULL, "timeout",
                                   "the request took longer than the server allows (limits.timeout_s = %.0f s)",
                                   h->limits.timeout_s);
    return al_http_reply_error(h, 503, "server_error", NULL, "shutting_down", "the server is shutting down");
}

const char *al_server_gen_finish(struct al_server_gen *g, struct al_http_req *h)
{
    pthread_mutex_lock(&g->mu);
    if (!g->done)
        request_cancel(g, "client");
    g->h = NULL;
    if (g->done) {
        struct al_engine_gen_result u = group_usage(g);
        h->tokens_in = u.n_prompt;
        h->tokens_out = u.n_gen;
    } else {
        h->tokens_out = 0;
        for (int i = 0; i < g->n_choices; i++)
            h->tokens_out += g->choices[i] ? g->choices[i]->n_pieces : 0;
    }
    const char *text = g->done ? al_buf_str(&g->text) : NULL;
    pthread_mutex_unlock(&g->mu);
    return text;
}
