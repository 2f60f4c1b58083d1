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
 *
 * Memory stays bounded by the budget, not by the paragraph: a paragraph is
 * counted whole only when its collapsed text is at most PARA_COUNT_BYTES per
 * budget token (larger ones cannot fit and go straight to windows), windows
 * read words from a queue that holds only the words of the current window,
 * and a word longer than the budget in bytes is cut into pieces of that size
 * (each piece is at most about that many tokens). Tokenizing a 10 MB line
 * whole used to take ~48 bytes of memory per byte.
 */
#include "rag/rag_int.h"

#define HEADING_MAX 6
#define EMBED_HEADING_BYTES 200
#define HEADING_BYTES 1024  /* a heading's text is cut here (it is repeated in every chunk under it) */
#define PARA_COUNT_BYTES 64 /* more collapsed bytes per budget token than any tokenizer's tokens hold */

void al_rag_chunks_release(struct al_rag_chunks *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].heading);
        free(c->v[i].text);
    }
    free(c->v);
    memset(c, 0, sizeof *c);
}

/* Whitespace, NUL and the other control bytes all separate words: a stray
 * NUL in a text file must neither end a string early nor reach FTS, JSON or
 * the tokenizer. */
static bool sep(unsigned char c)
{
    return c <= 0x20 || c == 0x7f;
}

/* Separator runs become one space; leading and trailing ones go; bytes that
 * are not UTF-8 become '?' (text must be valid for FTS and JSON). At most max
 * bytes are written (cut before a character that would not fit); *cut says
 * whether text was left out. */
static char *collapse_max(const char *s, size_t n, size_t max, bool *cut)
{
    char *o = malloc((n < max ? n : max) + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    bool sp = false;
    *cut = false;
    for (size_t i = 0; i < n;) {
        if (sep((unsigned char)s[i])) {
            sp = k > 0;
            i++;
            continue;
        }
        size_t l = al_utf8_char_len(s + i, n - i);
        if (k + sp + (l ? l : 1) > max) {
            *cut = true;
            break;
        }
        if (sp)
            o[k++] = ' ';
        sp = false;
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

static char *collapse(const char *s, size_t n)
{
    bool cut;
    return collapse_max(s, n, SIZE_MAX - 1, &cut);
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
    if (o->n >= AL_LIMIT_RAG_DOC_CHUNKS)
        return al_err_set(err, AL_ERR_LIMIT, "more than %u chunks in one document (AL_LIMIT_RAG_DOC_CHUNKS): "
                          "split it, or create the collection with a larger --chunk-tokens",
                          AL_LIMIT_RAG_DOC_CHUNKS);
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

/* The words of one block, read on demand: v holds words first .. first+n-1
 * (their source span in the block and their token count alone). */
struct words {
    const struct al_rag_block *b;
    size_t piece;   /* longest word in bytes; longer ones are cut */
    size_t scan;    /* where the next word is looked for */
    size_t first, n, cap;
    struct word {
        size_t s, e;
        int tok;
    } *v;
};

/* Reads the next word into the queue; *more = false at the end of the block. */
static enum al_rc words_next(struct chunker *c, struct words *w, bool *more, struct al_err *err)
{
    const struct al_rag_block *b = w->b;
    const char *t = b->text;
    size_t i = w->scan;
    while (i < b->len && sep((unsigned char)t[i]))
        i++;
    *more = i < b->len;
    if (!*more)
        return AL_OK;
    size_t s = i, lim = b->len - s > w->piece ? s + w->piece : b->len;
    while (i < lim && !sep((unsigned char)t[i]))
        i++;
    for (int k = 0; k < 3 && i < b->len && i > s + 1 && ((unsigned char)t[i] & 0xC0) == 0x80; k++)
        i--; /* a piece ends on a character boundary */
    w->scan = i;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        struct word *v = realloc(w->v, cap * sizeof *v);
        if (!v)
            return al_err_set(err, AL_ERR_NOMEM, "out of memory chunking");
        w->v = v;
        w->cap = cap;
    }
    struct word *x = &w->v[w->n];
    x->s = s;
    x->e = i;
    enum al_rc rc = c->p->count(c->p->ud, t + s, i - s, &x->tok, err);
    if (x->tok < 1)
        x->tok = 1; /* so a window holds at most budget words */
    if (!rc)
        w->n++;
    return rc;
}

/* *x = word idx of the block, reading on; NULL past the last word. */
static enum al_rc word_at(struct chunker *c, struct words *w, size_t idx, const struct word **x, struct al_err *err)
{
    bool more = true;
    enum al_rc rc = AL_OK;
    while (!rc && more && idx >= w->first + w->n)
        rc = words_next(c, w, &more, err);
    *x = !rc && idx < w->first + w->n ? &w->v[idx - w->first] : NULL;
    return rc;
}

/* Forgets the words before idx: the queue holds one window and what follows. */
static void words_drop(struct words *w, size_t idx)
{
    size_t d = idx - w->first;
    memmove(w->v, w->v + d, (w->n - d) * sizeof *w->v);
    w->n -= d;
    w->first = idx;
}

/* Emits the window of words i .. *j-1, shrunk from the end (*j lowered)
 * until its exact count fits the budget; a single word goes alone. */
static enum al_rc window(struct chunker *c, struct words *w, size_t i, size_t *j, struct al_err *err)
{
    const struct al_rag_block *b = w->b;
    const struct word *wi = &w->v[i - w->first];
    char *text = NULL;
    int exact = 0;
    enum al_rc rc = AL_OK;
    for (;;) {
        const struct word *last = &w->v[*j - 1 - w->first];
        free(text);
        text = collapse(b->text + wi->s, last->e - wi->s);
        if (!text)
            return al_err_set(err, AL_ERR_NOMEM, "out of memory chunking");
        if ((rc = count(c, text, &exact, err)) || exact <= c->p->budget || *j == i + 1)
            break;
        (*j)--;
    }
    if (!rc)
        rc = emit(c, text, b->page, al_rag_block_src(b, wi->s), al_rag_block_src(b, w->v[*j - 1 - w->first].e),
                  exact, err);
    free(text);
    return rc;
}

/* Cuts one paragraph over the budget into overlapping windows of words. */
static enum al_rc windows(struct chunker *c, const struct al_rag_block *b, struct al_err *err)
{
    const int budget = c->p->budget, overlap = c->p->overlap;
    struct words w = {.b = b, .piece = (size_t)budget};
    const struct word *x;
    enum al_rc rc = AL_OK;
    for (size_t i = 0; !rc;) {
        if ((rc = word_at(c, &w, i, &x, err)) || !x)
            break;
        size_t j = i;
        long est = 0;
        while (!(rc = word_at(c, &w, j, &x, err)) && x && est + x->tok <= budget) {
            est += x->tok;
            j++;
        }
        if (rc)
            break;
        if (j == i)
            j = i + 1; /* one word over the budget on its own: it goes alone */
        if ((rc = window(c, &w, i, &j, err)) || (rc = word_at(c, &w, j, &x, err)) || !x)
            break;
        size_t back = j;
        long ov = 0;
        while (back > i + 1 && ov + w.v[back - 1 - w.first].tok <= overlap)
            ov += w.v[--back - w.first].tok;
        i = back;
        words_drop(&w, i);
    }
    free(w.v);
    return rc;
}

enum al_rc al_rag_chunk_doc(const struct al_rag_doctext *d, const char *doc_digest,
                            const struct al_rag_chunk_params *p, struct al_rag_chunks *out, struct al_err *err)
{
    struct chunker c = {.p = p, .digest = doc_digest, .out = out};
    const size_t para_max = (size_t)p->budget * PARA_COUNT_BYTES;
    al_buf_init(&c.acc, AL_LIMIT_RAG_DOC_BYTES);
    enum al_rc rc = AL_OK;
    for (size_t i = 0; i < d->n && !rc; i++) {
        const struct al_rag_block *b = &d->blocks[i];
        bool heading = b->kind == AL_BLOCK_HEADING, cut = false;
        char *t = collapse_max(b->text, b->len, heading ? HEADING_BYTES : para_max, &cut);
        if (!t) {
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory chunking");
            break;
        }
        if (heading) {
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
        int n = p->budget + 1; /* a paragraph cut by collapse_max is over the budget uncounted */
        if (!rc && !cut)
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
