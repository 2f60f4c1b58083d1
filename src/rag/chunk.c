/*
 * chunk.c: blocks into chunks under a token budget.
 *
 * Structure first: a heading or a change of page ends the current chunk, and
 * whole paragraphs are joined (blank line between) while the joined text,
 * counted by the embedding model's tokenizer, fits the budget. Only a
 * paragraph that alone is over the budget is cut: at word boundaries into
 * windows of at most budget tokens, each starting about `overlap` tokens
 * before the previous one ended. Word counts are estimated by tokenizing each
 * word alone; every window is then counted exactly and shrunk until it fits.
 * All of it depends only on the text and the tokenizer: deterministic.
 */
#include "rag/rag_int.h"

#include <ctype.h>

#define HEADING_MAX 6
#define EMBED_HEADING_BYTES 200

void al_rag_chunks_release(struct al_rag_chunks *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].heading);
        free(c->v[i].text);
    }
    free(c->v);
    memset(c, 0, sizeof *c);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || len > n || (len == 2 && s[0] < 0xC2))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* Whitespace runs become one space; leading and trailing space go; bytes
 * that are not UTF-8 become '?' (text must be valid for FTS and JSON). */
static char *collapse(const char *s, size_t n)
{
    char *o = malloc(n + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    bool sp = false;
    for (size_t i = 0; i < n;) {
        if (isspace((unsigned char)s[i])) {
            sp = k > 0;
            i++;
            continue;
        }
        if (sp)
            o[k++] = ' ';
        sp = false;
        size_t l = utf8_len((const unsigned char *)s + i, n - i);
        if (l == 0) {
            o[k++] = '?';
            i++;
        } else {
            memcpy(o + k, s + i, l);
            k += l;
            i += l;
        }
    }
    o[k] = 0;
    return o;
}

char *al_rag_embed_text(const char *heading, const char *text)
{
    struct al_buf b;
    al_buf_init(&b, AL_LIMIT_PROMPT_BYTES);
    if (heading && *heading) {
        size_t hl = strlen(heading);
        al_buf_add(&b, heading, hl < EMBED_HEADING_BYTES ? hl : EMBED_HEADING_BYTES);
        al_buf_addstr(&b, "\n\n");
    }
    al_buf_addstr(&b, text);
    char *s = al_buf_take(&b);
    al_buf_release(&b);
    return s;
}

struct chunker {
    const struct al_rag_chunk_params *p;
    const char *digest;
    struct al_rag_chunks *out;
    char *h[HEADING_MAX + 1];
    struct al_buf acc;
    bool any;
    int page, ntok;
    uint64_t start, end;
};

static char *heading_path(struct chunker *c)
{
    struct al_buf b;
    al_buf_init(&b, 64u << 10);
    for (int l = 1; l <= HEADING_MAX; l++)
        if (c->h[l]) {
            if (b.len)
                al_buf_addstr(&b, " > ");
            al_buf_addstr(&b, c->h[l]);
        }
    char *s = al_buf_take(&b);
    al_buf_release(&b);
    return s;
}

static enum al_rc emit(struct chunker *c, const char *text, int page, uint64_t start, uint64_t end, int ntok,
                       struct al_err *err)
{
    struct al_rag_chunks *o = c->out;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 32;
        struct al_rag_chunk *v = realloc(o->v, cap * sizeof *v);
        if (!v)
            return al_err_set(err, AL_ERR_NOMEM, "out of memory chunking");
        o->v = v;
        o->cap = cap;
    }
    struct al_rag_chunk *ch = &o->v[o->n];
    memset(ch, 0, sizeof *ch);
    ch->heading = heading_path(c);
    ch->text = strdup(text);
    if (!ch->heading || !ch->text) {
        free(ch->heading);
        free(ch->text);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory chunking");
    }
    ch->page = page;
    ch->start = start;
    ch->end = end;
    ch->ntok = ntok;
    char idsrc[256];
    int n = snprintf(idsrc, sizeof idsrc, "%s\n%" PRIu64 "\n%" PRIu64 "\n%s", c->digest, start, end,
                     AL_RAG_CHUNKER_VERSION);
    uint8_t raw[AL_SHA256_BYTES];
    al_sha256_buf(idsrc, (size_t)n, raw);
    al_hex(raw, sizeof raw, ch->id);
    o->n++;
    return AL_OK;
}

static enum al_rc flush(struct chunker *c, struct al_err *err)
{
    if (!c->any)
        return AL_OK;
    if (al_buf_failed(&c->acc))
        return al_err_set(err, AL_ERR_NOMEM, "out of memory chunking");
    enum al_rc rc = emit(c, al_buf_str(&c->acc), c->page, c->start, c->end, c->ntok, err);
    al_buf_reset(&c->acc);
    c->any = false;
    return rc;
}

static enum al_rc count(struct chunker *c, const char *s, int *n, struct al_err *err)
{
    return c->p->count(c->p->ud, s, strlen(s), n, err);
}

/* Cuts one paragraph over the budget into overlapping windows of words. */
static enum al_rc windows(struct chunker *c, const struct al_rag_block *b, struct al_err *err)
{
    size_t nw = 0, cap = 0;
    size_t *ws = NULL, *we = NULL;
    int *tok = NULL;
    enum al_rc rc = AL_OK;
    for (size_t i = 0; i < b->len && !rc;) {
        while (i < b->len && isspace((unsigned char)b->text[i]))
            i++;
        if (i >= b->len)
            break;
        size_t s = i;
        while (i < b->len && !isspace((unsigned char)b->text[i]))
            i++;
        if (nw == cap) {
            cap = cap ? cap * 2 : 256;
            size_t *a = realloc(ws, cap * sizeof *a), *e2 = a ? realloc(we, cap * sizeof *e2) : NULL;
            int *t = e2 ? realloc(tok, cap * sizeof *t) : NULL;
            if (a)
                ws = a;
            if (e2)
                we = e2;
            if (t)
                tok = t;
            if (!a || !e2 || !t) {
                rc = al_err_set(err, AL_ERR_NOMEM, "out of memory chunking");
                break;
            }
        }
        char *word = strndup(b->text + s, i - s);
        if (!word) {
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory chunking");
            break;
        }
        rc = count(c, word, &tok[nw], err);
        free(word);
        ws[nw] = s;
        we[nw] = i;
        nw++;
    }
    const int budget = c->p->budget, overlap = c->p->overlap;
    for (size_t i = 0; i < nw && !rc;) {
        size_t j = i;
        long est = 0;
        while (j < nw && est + tok[j] <= budget)
            est += tok[j++];
        if (j == i)
            j = i + 1; /* one word over the budget on its own: it goes alone */
        char *text = NULL;
        int exact = 0;
        for (;;) {
            free(text);
            text = collapse(b->text + ws[i], we[j - 1] - ws[i]);
            if (!text) {
                rc = al_err_set(err, AL_ERR_NOMEM, "out of memory chunking");
                break;
            }
            if ((rc = count(c, text, &exact, err)) || exact <= budget || j == i + 1)
                break;
            j--;
        }
        if (!rc)
            rc = emit(c, text, b->page, al_rag_block_src(b, ws[i]), al_rag_block_src(b, we[j - 1]), exact, err);
        free(text);
        if (j >= nw)
            break;
        size_t back = j;
        long ov = 0;
        while (back > i + 1 && ov + tok[back - 1] <= overlap)
            ov += tok[--back];
        i = back;
    }
    free(ws);
    free(we);
    free(tok);
    return rc;
}

enum al_rc al_rag_chunk_doc(const struct al_rag_doctext *d, const char *doc_digest,
                            const struct al_rag_chunk_params *p, struct al_rag_chunks *out, struct al_err *err)
{
    struct chunker c = {.p = p, .digest = doc_digest, .out = out};
    al_buf_init(&c.acc, AL_LIMIT_RAG_DOC_BYTES);
    enum al_rc rc = AL_OK;
    for (size_t i = 0; i < d->n && !rc; i++) {
        const struct al_rag_block *b = &d->blocks[i];
        char *t = collapse(b->text, b->len);
        if (!t) {
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory chunking");
            break;
        }
        if (b->kind == AL_BLOCK_HEADING) {
            int l = b->level < 1 ? 1 : b->level > HEADING_MAX ? HEADING_MAX : b->level;
            rc = flush(&c, err);
            for (int k = l; k <= HEADING_MAX; k++) {
                free(c.h[k]);
                c.h[k] = NULL;
            }
            c.h[l] = t;
            continue;
        }
        if (c.any && b->page != c.page)
            rc = flush(&c, err);
        int n = 0;
        if (!rc)
            rc = count(&c, t, &n, err);
        if (!rc && n > p->budget) {
            rc = flush(&c, err);
            rc = rc ? rc : windows(&c, b, err);
        } else if (!rc && c.any) {
            size_t keep = c.acc.len;
            al_buf_addstr(&c.acc, "\n\n");
            al_buf_addstr(&c.acc, t);
            int joined = 0;
            rc = count(&c, al_buf_str(&c.acc), &joined, err);
            if (!rc && joined <= p->budget) {
                c.ntok = joined;
                c.end = b->end;
            } else if (!rc) {
                c.acc.len = keep;
                c.acc.data[keep] = 0;
                rc = flush(&c, err);
                al_buf_addstr(&c.acc, t);
                c.any = true;
                c.page = b->page;
                c.start = b->start;
                c.end = b->end;
                c.ntok = n;
            }
        } else if (!rc) {
            al_buf_addstr(&c.acc, t);
            c.any = true;
            c.page = b->page;
            c.start = b->start;
            c.end = b->end;
            c.ntok = n;
        }
        free(t);
    }
    if (!rc)
        rc = flush(&c, err);
    for (int k = 0; k <= HEADING_MAX; k++)
        free(c.h[k]);
    al_buf_release(&c.acc);
    return rc;
}
