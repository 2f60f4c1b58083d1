/*
 * ask.c: answers with citations. Retrieve, number the passages, fill the
 * prompt template, format it with the generator's chat template, generate,
 * and note which passages the answer cites as [n].
 *
 * The prompt must fit the generator's context with room for the answer:
 * passages are dropped from the end, then the last one is shortened, until
 * it does. The template's version goes with the answer so a reader can tell
 * which prompt produced it.
 */
#include "rag/rag_int.h"

#include <ctype.h>

static const char default_template[] =
    "#version " AL_RAG_TEMPLATE_VERSION "\n"
    "You answer questions from the numbered passages below. Use only what they say, cite each passage you use "
    "as [n], and say that you do not know when the passages do not contain the answer.\n"
    "---\n"
    "Passages:\n\n{{passages}}\n\nQuestion: {{question}}\n";

void al_rag_answer_release(struct al_rag_answer *a)
{
    free(a->text);
    free(a->prompt);
    al_rag_hits_release(&a->hits);
    memset(a, 0, sizeof *a);
}

static void fill(struct al_buf *b, const char *tmpl, const char *passages, const char *question)
{
    for (const char *p = tmpl; *p;) {
        if (strncmp(p, "{{passages}}", 12) == 0) {
            al_buf_addstr(b, passages);
            p += 12;
        } else if (strncmp(p, "{{question}}", 12) == 0) {
            al_buf_addstr(b, question);
            p += 12;
        } else {
            al_buf_addch(b, *p++);
        }
    }
}

/* Passages 1..n, the last cut to at most last_bytes (SIZE_MAX: whole). */
static void passages(struct al_buf *b, const struct al_rag_hits *h, size_t n, size_t last_bytes)
{
    for (size_t i = 0; i < n; i++) {
        const struct al_rag_hit *x = &h->v[i];
        al_buf_addf(b, "[%zu] %s", i + 1, x->doc);
        if (x->page)
            al_buf_addf(b, ", page %d", x->page);
        if (x->heading[0])
            al_buf_addf(b, ", %s", x->heading);
        al_buf_addch(b, '\n');
        size_t len = strlen(x->text);
        if (i + 1 == n && len > last_bytes) {
            len = last_bytes;
            while (len > 0 && ((unsigned char)x->text[len] & 0xC0) == 0x80)
                len--; /* not inside a UTF-8 character */
        }
        al_buf_add(b, x->text, len);
        al_buf_addstr(b, i + 1 < n ? "\n\n" : "");
    }
}

/* Splits the template into version, system part and user part. */
static enum al_rc parse_template(const char *t, char version[64], char **sys, char **user, struct al_err *err)
{
    snprintf(version, 64, "custom");
    if (strncmp(t, "#version ", 9) == 0) {
        const char *nl = strchr(t, '\n');
        size_t n = nl ? (size_t)(nl - t - 9) : strlen(t + 9);
        snprintf(version, 64, "%.*s", (int)(n < 63 ? n : 63), t + 9);
        t = nl ? nl + 1 : t + strlen(t);
    }
    if (!strstr(t, "{{passages}}") || !strstr(t, "{{question}}"))
        return al_err_set(err, AL_ERR_INVALID, "a prompt template needs {{passages}} and {{question}}");
    const char *sep = strstr(t, "\n---\n");
    *sys = sep ? strndup(t, (size_t)(sep - t)) : strdup("");
    *user = strdup(sep ? sep + 5 : t);
    if (!*sys || !*user)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    return AL_OK;
}

/* The conversation with the template applied: the template's system part
 * first (joined with the conversation's own leading system message), and
 * message o->question_at's content replaced by the filled user part. */
static enum al_rc make_prompt(struct al_engine_model *g, const struct al_rag_prompt_opts *o, const char *sys,
                              const char *user_tmpl, const struct al_rag_hits *h, size_t n, size_t last_bytes,
                              const char *question, char **out, int *ntok, struct al_err *err)
{
    struct al_buf pb, ub, sb;
    al_buf_init(&pb, AL_LIMIT_PROMPT_BYTES);
    al_buf_init(&ub, AL_LIMIT_PROMPT_BYTES);
    al_buf_init(&sb, AL_LIMIT_PROMPT_BYTES);
    passages(&pb, h, n, last_bytes);
    fill(&ub, user_tmpl, al_buf_str(&pb), question);
    bool own_sys = o->n_msgs > 0 && strcmp(o->msgs[0].role, "system") == 0;
    al_buf_addstr(&sb, sys);
    if (own_sys && o->msgs[0].content[0])
        al_buf_addf(&sb, "%s%s", *sys ? "\n\n" : "", o->msgs[0].content);
    enum al_rc rc = al_buf_failed(&pb) || al_buf_failed(&ub) || al_buf_failed(&sb)
                        ? al_err_set(err, AL_ERR_LIMIT, "the prompt is over %u bytes", AL_LIMIT_PROMPT_BYTES)
                        : AL_OK;
    const char *system = al_buf_str(&sb);
    struct al_engine_chat_msg *msgs = calloc(o->n_msgs + 1, sizeof *msgs);
    size_t nm = 0;
    if (!rc && !msgs)
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (!rc) {
        if (*system)
            msgs[nm++] = (struct al_engine_chat_msg){"system", system};
        for (size_t i = own_sys ? 1 : 0; i < o->n_msgs; i++)
            msgs[nm++] =
                i == o->question_at ? (struct al_engine_chat_msg){o->msgs[i].role, al_buf_str(&ub)} : o->msgs[i];
        struct al_err e2 = AL_ERR_INIT;
        rc = al_engine_chat_format(g, msgs, nm, true, o->chat_fallback, out, &e2);
        if (rc == AL_ERR_INVALID) { /* no usable chat template: plain text */
            struct al_buf b;
            al_buf_init(&b, AL_LIMIT_PROMPT_BYTES);
            for (size_t i = 0; i < nm; i++)
                al_buf_addf(&b, "%s%s", msgs[i].content, i + 1 < nm ? "\n\n" : "\n");
            al_buf_addstr(&b, "Answer:");
            *out = al_buf_take(&b);
            al_buf_release(&b);
            rc = *out ? AL_OK : al_err_set(err, AL_ERR_NOMEM, "out of memory");
        } else if (rc) {
            al_err_set(err, rc, "%s", e2.msg);
        }
    }
    free(msgs);
    int32_t *toks = NULL;
    size_t nt = 0;
    if (!rc && !(rc = al_engine_tokenize(g, *out, strlen(*out), true, true, &toks, &nt, err)))
        *ntok = (int)nt;
    free(toks);
    al_buf_release(&pb);
    al_buf_release(&ub);
    al_buf_release(&sb);
    return rc;
}

static void drop_hits(struct al_rag_hits *h, size_t keep)
{
    while (h->n > keep) {
        struct al_rag_hit *x = &h->v[--h->n];
        free(x->doc);
        free(x->heading);
        free(x->text);
    }
}

enum al_rc al_rag_prompt(struct al_engine_model *generator, const struct al_rag_prompt_opts *o, const char *question,
                         struct al_rag_hits *hits, char **prompt, char version[64], struct al_err *err)
{
    *prompt = NULL;
    const char *tmpl = o->template_text ? o->template_text : default_template;
    if (strlen(tmpl) > AL_LIMIT_RAG_TEMPLATE)
        return al_err_set(err, AL_ERR_LIMIT, "the prompt template is over %u bytes (AL_LIMIT_RAG_TEMPLATE)",
                          AL_LIMIT_RAG_TEMPLATE);
    if (o->n_msgs == 0 || o->question_at >= o->n_msgs)
        return al_err_set(err, AL_ERR_USAGE, "no message to put the passages into");
    char *sys = NULL, *user = NULL;
    enum al_rc rc = parse_template(tmpl, version, &sys, &user, err);
    size_t n = hits->n, last = SIZE_MAX;
    int ntok = 0;
    while (!rc) {
        free(*prompt);
        *prompt = NULL;
        if ((rc = make_prompt(generator, o, sys, user, hits, n, last, question, prompt, &ntok, err)))
            break;
        if (ntok <= o->max_tokens)
            break;
        if (n > 1) {
            n--;
            last = SIZE_MAX;
        } else if (n == 1 && last > 64) {
            size_t len = strlen(hits->v[0].text);
            last = (last == SIZE_MAX ? len : last) / 2;
        } else {
            rc = al_err_set(err, AL_ERR_LIMIT, "the question and template alone need %d tokens; at most %d fit",
                            ntok, o->max_tokens);
        }
    }
    if (!rc)
        drop_hits(hits, n); /* passages that did not fit are not cited */
    if (rc) {
        free(*prompt);
        *prompt = NULL;
    }
    free(sys);
    free(user);
    return rc;
}

void al_rag_cited(const char *text, size_t n_passages, bool *cited)
{
    for (const char *p = text; p && *p; p++) {
        if (*p != '[' || !isdigit((unsigned char)p[1]))
            continue;
        char *end = NULL;
        long v = strtol(p + 1, &end, 10);
        if (end && *end == ']' && v >= 1 && (size_t)v <= n_passages)
            cited[v - 1] = true;
    }
}

enum al_rc al_rag_ask(struct al_rag *r, struct al_engine_model *embedder, struct al_engine_model *generator,
                      const char *question, const struct al_rag_ask_opts *o, struct al_rag_answer *out,
                      struct al_err *err)
{
    memset(out, 0, sizeof *out);
    struct al_rag_ask_opts ao = o ? *o : (struct al_rag_ask_opts){0};
    enum al_rc rc = AL_OK;
    if (ao.query.k > 64)
        rc = al_err_set(err, AL_ERR_LIMIT, "ask cites at most 64 passages");
    if (!rc)
        rc = al_rag_query(r, embedder, question, &ao.query, &out->hits, err);
    struct al_engine_model_info gi;
    al_engine_model_info(generator, &gi);
    int max_tokens = ao.max_tokens > 0 ? ao.max_tokens : 256;
    int room = gi.n_ctx - max_tokens - 8;
    if (!rc && room < 32)
        rc = al_err_set(err, AL_ERR_LIMIT, "the model's context (%d tokens) leaves no room for passages and %d answer"
                        " tokens", gi.n_ctx, max_tokens);
    struct al_engine_chat_msg q = {"user", question};
    struct al_rag_prompt_opts po = {.template_text = ao.template_text, .msgs = &q, .n_msgs = 1, .question_at = 0,
                                    .max_tokens = room};
    if (!rc)
        rc = al_rag_prompt(generator, &po, question, &out->hits, &out->prompt, out->template_version, err);
    if (!rc) {
        struct al_engine_gen_params gp = al_engine_gen_params_default();
        gp.max_tokens = max_tokens;
        gp.temperature = ao.temperature > 0 ? ao.temperature : 0;
        gp.seed = ao.seed ? ao.seed : 42;
        rc = al_engine_generate(generator, out->prompt, &gp, &out->text, &out->gen, err);
    }
    if (!rc)
        al_rag_cited(out->text, out->hits.n < 64 ? out->hits.n : 64, out->cited);
    if (rc)
        al_rag_answer_release(out);
    return rc;
}
