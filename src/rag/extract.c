/*
 * extract.c: documents into blocks (headings and paragraphs) with their
 * source offsets: plain text, Markdown and HTML. PDF is in extract_pdf.c.
 *
 * Text and Markdown blocks are slices of the file (no anchors: offsets map
 * one to one). HTML blocks are decoded text with whitespace collapsed and
 * entities replaced; anchors record where each run of text came from, so a
 * chunk's offsets point into the HTML file. Every step is deterministic.
 */
#include "rag/rag_int.h"

#include <ctype.h>

const char *al_rag_format_name(enum al_rag_format f)
{
    switch (f) {
    case AL_FMT_TEXT: return "text";
    case AL_FMT_MARKDOWN: return "markdown";
    case AL_FMT_HTML: return "html";
    case AL_FMT_PDF: return "pdf";
    default: return "unknown";
    }
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

enum al_rag_format al_rag_format_guess(const char *path, const char *data, size_t len, bool named)
{
    if (len >= 5 && memcmp(data, "%PDF-", 5) == 0)
        return AL_FMT_PDF;
    if (ends_with(path, ".pdf"))
        return AL_FMT_PDF;
    if (ends_with(path, ".md") || ends_with(path, ".markdown"))
        return AL_FMT_MARKDOWN;
    if (ends_with(path, ".html") || ends_with(path, ".htm") || ends_with(path, ".xhtml"))
        return AL_FMT_HTML;
    if (ends_with(path, ".txt") || ends_with(path, ".text") || ends_with(path, ".rst"))
        return AL_FMT_TEXT;
    if (!named)
        return AL_FMT_UNKNOWN;
    size_t probe = len < 8192 ? len : 8192;
    return memchr(data, 0, probe) ? AL_FMT_UNKNOWN : AL_FMT_TEXT;
}

/* One byte in NOT_TEXT_RATIO may be NUL, another control byte or not UTF-8
 * (a stray NUL in a log, a Latin-1 accent); more and the file is taken for
 * binary. UTF-16 without a byte order mark is half NULs and lands here too. */
#define NOT_TEXT_RATIO 10

enum al_rc al_rag_check_text(const char *data, size_t len, struct al_err *err)
{
    const unsigned char *u = (const unsigned char *)data;
    if (len >= 4 && (memcmp(u, "\xff\xfe\0\0", 4) == 0 || memcmp(u, "\0\0\xfe\xff", 4) == 0))
        return al_err_set(err, AL_ERR_INVALID, "UTF-32 text (it starts with a byte order mark): convert it to "
                          "UTF-8 first, e.g. with 'iconv -f UTF-32 -t UTF-8'");
    if (len >= 2 && (memcmp(u, "\xff\xfe", 2) == 0 || memcmp(u, "\xfe\xff", 2) == 0))
        return al_err_set(err, AL_ERR_INVALID, "UTF-16 text (it starts with a byte order mark): convert it to "
                          "UTF-8 first, e.g. with 'iconv -f UTF-16 -t UTF-8'");
    size_t bad = 0;
    for (size_t i = 0; i < len;) {
        size_t l = al_utf8_char_len(data + i, len - i);
        if (l == 0 || (l == 1 && ((u[i] < 0x20 && !isspace(u[i])) || u[i] == 0x7f)))
            bad++;
        i += l ? l : 1;
    }
    if (bad > len / NOT_TEXT_RATIO)
        return al_err_set(err, AL_ERR_INVALID, "not UTF-8 text: %zu of its %zu bytes are NUL, control or invalid "
                          "UTF-8 bytes (binary data, or text in another encoding: convert it to UTF-8)", bad, len);
    return AL_OK;
}

void al_rag_doctext_release(struct al_rag_doctext *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->blocks[i].text);
        free(d->blocks[i].anchors);
    }
    free(d->blocks);
    free(d->title);
    memset(d, 0, sizeof *d);
}

enum al_rc al_rag_doctext_push(struct al_rag_doctext *d, enum al_rag_block_kind kind, int level, int page,
                               char *text, size_t len, struct al_rag_anchor *anchors, size_t n_anchors,
                               uint64_t start, uint64_t end, struct al_err *err)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        struct al_rag_block *b = realloc(d->blocks, cap * sizeof *b);
        if (!b) {
            free(text);
            free(anchors);
            return al_err_set(err, AL_ERR_NOMEM, "out of memory extracting text");
        }
        d->blocks = b;
        d->cap = cap;
    }
    d->blocks[d->n++] = (struct al_rag_block){kind, level, page, text, len, anchors, n_anchors, start, end};
    if (kind == AL_BLOCK_HEADING && !d->title && level <= 2)
        d->title = strndup(text, len);
    return AL_OK;
}

uint64_t al_rag_block_src(const struct al_rag_block *b, size_t pos)
{
    if (!b->anchors || b->n_anchors == 0)
        return b->start + pos;
    size_t lo = 0, hi = b->n_anchors; /* the last anchor with anchor.pos <= pos */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (b->anchors[mid].pos <= pos)
            lo = mid;
        else
            hi = mid;
    }
    uint64_t s = b->anchors[lo].src + (pos >= b->anchors[lo].pos ? pos - b->anchors[lo].pos : 0);
    return s < b->end ? s : b->end;
}

static enum al_rc push_slice(struct al_rag_doctext *d, enum al_rag_block_kind kind, int level, int page,
                             const char *data, size_t s, size_t e, uint64_t base, struct al_err *err)
{
    while (s < e && isspace((unsigned char)data[s]))
        s++;
    while (e > s && isspace((unsigned char)data[e - 1]))
        e--;
    if (s == e)
        return AL_OK;
    /* memcpy, not strndup: the slice may hold NUL bytes, and the block's
     * length must be the length of what was copied. */
    char *t = malloc(e - s + 1);
    if (!t)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory extracting text");
    memcpy(t, data + s, e - s);
    t[e - s] = 0;
    return al_rag_doctext_push(d, kind, level, page, t, e - s, NULL, 0, base + s, base + e, err);
}

static bool blank_line(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return false;
    return true;
}

/* A plain-text heading: a short line at column 0 with at least two letters
 * and no lowercase ones ("DESCRIPTION", "3. SAFETY CHECKS"). */
static bool caps_heading(const char *s, size_t n)
{
    if (n == 0 || n > 60 || isspace((unsigned char)s[0]))
        return false;
    int letters = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (islower(c) || c >= 0x80)
            return false;
        letters += isupper(c) != 0;
    }
    return letters >= 2;
}

/* "## Title ##" -> level 2 and the span of "Title"; 0 when not a heading. */
static int atx_heading(const char *s, size_t n, size_t *ts, size_t *te)
{
    size_t i = 0;
    while (i < n && i < 3 && s[i] == ' ')
        i++;
    int level = 0;
    while (i < n && s[i] == '#' && level < 7) {
        level++;
        i++;
    }
    if (level < 1 || level > 6 || (i < n && s[i] != ' ' && s[i] != '\t'))
        return 0;
    size_t e = n;
    while (e > i && isspace((unsigned char)s[e - 1]))
        e--;
    while (e > i && s[e - 1] == '#')
        e--;
    while (i < e && isspace((unsigned char)s[i]))
        i++;
    while (e > i && isspace((unsigned char)s[e - 1]))
        e--;
    *ts = i;
    *te = e;
    return e > i ? level : 0;
}

static int setext_level(const char *s, size_t n)
{
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n < 2)
        return 0;
    char c = s[0];
    if (c != '=' && c != '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != c)
            return 0;
    return c == '=' ? 1 : 2;
}

static bool fence(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && i < 3 && s[i] == ' ')
        i++;
    return n - i >= 3 && (memcmp(s + i, "```", 3) == 0 || memcmp(s + i, "~~~", 3) == 0);
}

enum al_rc al_rag_extract_text(const char *data, size_t len, int page, uint64_t base, bool markdown,
                               struct al_rag_doctext *out, struct al_err *err)
{
    enum al_rc rc = AL_OK;
    size_t para = SIZE_MAX, para_end = 0; /* the paragraph being collected */
    size_t para_lines = 0, last_line = 0;
    bool in_fence = false;
    for (size_t pos = 0; pos < len && !rc;) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t e = nl ? (size_t)(nl - data) : len;
        const char *line = data + pos;
        size_t n = e - pos;
        size_t next = nl ? e + 1 : len;
        if (markdown && fence(line, n)) {
            if (!in_fence && para != SIZE_MAX) {
                rc = push_slice(out, AL_BLOCK_PARA, 0, page, data, para, para_end, base, err);
                para = SIZE_MAX;
            }
            if (para == SIZE_MAX)
                para = pos;
            para_end = e;
            if (in_fence) {
                rc = rc ? rc : push_slice(out, AL_BLOCK_PARA, 0, page, data, para, para_end, base, err);
                para = SIZE_MAX;
            }
            in_fence = !in_fence;
            pos = next;
            continue;
        }
        if (in_fence) {
            para_end = e;
            pos = next;
            continue;
        }
        size_t ts, te;
        int level = 0, sl = 0;
        if (blank_line(line, n)) {
            if (para != SIZE_MAX)
                rc = push_slice(out, AL_BLOCK_PARA, 0, page, data, para, para_end, base, err);
            para = SIZE_MAX;
        } else if (markdown && (level = atx_heading(line, n, &ts, &te)) > 0) {
            if (para != SIZE_MAX)
                rc = push_slice(out, AL_BLOCK_PARA, 0, page, data, para, para_end, base, err);
            para = SIZE_MAX;
            rc = rc ? rc : push_slice(out, AL_BLOCK_HEADING, level, page, data, pos + ts, pos + te, base, err);
        } else if (markdown && para != SIZE_MAX && para_lines == 1 && (sl = setext_level(line, n)) > 0) {
            rc = push_slice(out, AL_BLOCK_HEADING, sl, page, data, last_line, para_end, base, err);
            para = SIZE_MAX;
        } else if (!markdown && para == SIZE_MAX && caps_heading(line, n)) {
            rc = push_slice(out, AL_BLOCK_HEADING, 1, page, data, pos, e, base, err);
        } else {
            if (para == SIZE_MAX) {
                para = pos;
                para_lines = 0;
            }
            para_end = e;
            last_line = pos;
            para_lines++;
        }
        pos = next;
    }
    if (!rc && para != SIZE_MAX)
        rc = push_slice(out, AL_BLOCK_PARA, 0, page, data, para, para_end, base, err);
    return rc;
}

/* ---- HTML ---- */

struct html {
    struct al_rag_doctext *out;
    const char *data;
    size_t len;
    struct al_buf text;
    struct al_rag_anchor *anchors;
    size_t n_anchors, cap_anchors;
    uint64_t first, last;   /* source span of the block being built */
    bool space;             /* a space is pending before the next character */
    int heading;            /* level of the heading being built, 0: paragraph */
    bool in_title;
    struct al_buf title;
};

static enum al_rc html_flush(struct html *h, struct al_err *err)
{
    enum al_rc rc = AL_OK;
    if (al_buf_failed(&h->text))
        rc = al_err_set(err, AL_ERR_LIMIT, "a block of text is over %u bytes", AL_LIMIT_RAG_DOC_BYTES);
    else if (h->text.len > 0) {
        size_t n = h->text.len;
        char *t = al_buf_take(&h->text);
        rc = al_rag_doctext_push(h->out, h->heading ? AL_BLOCK_HEADING : AL_BLOCK_PARA, h->heading, 0, t, n,
                                 h->anchors, h->n_anchors, h->first, h->last, err);
        h->anchors = NULL;
        h->n_anchors = h->cap_anchors = 0;
        al_buf_init(&h->text, AL_LIMIT_RAG_DOC_BYTES); /* take() released it */
    }
    al_buf_reset(&h->text);
    free(h->anchors);
    h->anchors = NULL;
    h->n_anchors = h->cap_anchors = 0;
    h->space = false;
    return rc;
}

/* Appends the bytes s[0..n) that came from source offset src. */
static enum al_rc html_put(struct html *h, const char *s, size_t n, uint64_t src, uint64_t src_end,
                           struct al_err *err)
{
    if (h->in_title) {
        if (h->space && h->title.len > 0)
            al_buf_addch(&h->title, ' ');
        h->space = false;
        al_buf_add(&h->title, s, n);
        return AL_OK;
    }
    if (h->space && h->text.len > 0)
        al_buf_addch(&h->text, ' ');
    h->space = false;
    size_t pos = h->text.len;
    const struct al_rag_anchor *a = h->n_anchors ? &h->anchors[h->n_anchors - 1] : NULL;
    if (!a || a->src + (pos - a->pos) != src) {
        if (h->n_anchors == h->cap_anchors) {
            size_t cap = h->cap_anchors ? h->cap_anchors * 2 : 16;
            struct al_rag_anchor *na = realloc(h->anchors, cap * sizeof *na);
            if (!na)
                return al_err_set(err, AL_ERR_NOMEM, "out of memory extracting HTML");
            h->anchors = na;
            h->cap_anchors = cap;
        }
        h->anchors[h->n_anchors++] = (struct al_rag_anchor){pos, src};
    }
    if (pos == 0)
        h->first = src;
    h->last = src_end;
    al_buf_add(&h->text, s, n);
    return AL_OK;
}

static size_t utf8_put(uint32_t cp, char *o)
{
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static const struct { const char *name; uint32_t cp; } entities[] = {
    {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", ' '},
    {"mdash", 0x2014}, {"ndash", 0x2013}, {"hellip", 0x2026}, {"copy", 0xA9}, {"reg", 0xAE},
    {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"laquo", 0xAB},
    {"raquo", 0xBB}, {"middot", 0xB7}, {"bull", 0x2022}, {"times", 0xD7}, {"deg", 0xB0},
    {"trade", 0x2122}, {"euro", 0x20AC}, {"shy", 0xAD},
};

/* Decodes the entity at data[i] ('&'); *used: its length; 0 when none. */
static size_t entity(const char *d, size_t i, size_t len, size_t *used, char *o)
{
    size_t j = i + 1, lim = i + 12 < len ? i + 12 : len;
    while (j < lim && d[j] != ';' && (isalnum((unsigned char)d[j]) || d[j] == '#'))
        j++;
    if (j >= lim || d[j] != ';' || j == i + 1)
        return 0;
    *used = j + 1 - i;
    if (d[i + 1] == '#') {
        bool hex = d[i + 2] == 'x' || d[i + 2] == 'X';
        char num[16];
        size_t s = i + (hex ? 3 : 2);
        if (j - s == 0 || j - s >= sizeof num)
            return 0;
        memcpy(num, d + s, j - s);
        num[j - s] = 0;
        char *end = NULL;
        unsigned long cp = strtoul(num, &end, hex ? 16 : 10);
        return end && *end == 0 ? utf8_put((uint32_t)(cp > 0x10FFFF ? 0xFFFD : cp), o) : 0;
    }
    for (size_t k = 0; k < sizeof entities / sizeof entities[0]; k++)
        if (strlen(entities[k].name) == j - i - 1 && memcmp(entities[k].name, d + i + 1, j - i - 1) == 0)
            return utf8_put(entities[k].cp, o);
    return 0;
}

static const char *const block_tags[] = {
    "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header", "footer", "nav",
    "aside", "main", "pre", "blockquote", "dl", "dt", "dd", "hr", "form", "figure", "figcaption",
    "address", "details", "summary", "body", "html", "caption", "thead", "tbody", "h1", "h2", "h3",
    "h4", "h5", "h6", "title", "head",
};
static const char *const skip_tags[] = {"script", "style", "noscript", "template", "svg", "iframe", "object"};

static bool in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return true;
    return false;
}

/* Finds "</name" (case-insensitive) from i; returns the offset after its '>'. */
static size_t skip_to_close(const char *d, size_t i, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (; i + 2 + nl <= len; i++)
        if (d[i] == '<' && d[i + 1] == '/' && strncasecmp(d + i + 2, name, nl) == 0 &&
            (i + 2 + nl == len || !isalnum((unsigned char)d[i + 2 + nl]))) {
            const char *gt = memchr(d + i, '>', len - i);
            return gt ? (size_t)(gt - d) + 1 : len;
        }
    return len;
}

enum al_rc al_rag_extract_html(const char *d, size_t len, struct al_rag_doctext *out, struct al_err *err)
{
    struct html h = {.out = out, .data = d, .len = len};
    al_buf_init(&h.text, AL_LIMIT_RAG_DOC_BYTES);
    al_buf_init(&h.title, 1024);
    enum al_rc rc = AL_OK;
    size_t i = 0;
    while (i < len && !rc) {
        char c = d[i];
        if (c == '<' && i + 3 < len && memcmp(d + i, "<!--", 4) == 0) {
            const char *e = memmem(d + i + 4, len - i - 4, "-->", 3);
            i = e ? (size_t)(e - d) + 3 : len;
            h.space = true;
        } else if (c == '<' && i + 1 < len && (d[i + 1] == '!' || d[i + 1] == '?')) {
            const char *e = memchr(d + i, '>', len - i);
            i = e ? (size_t)(e - d) + 1 : len;
        } else if (c == '<' && i + 1 < len && (isalpha((unsigned char)d[i + 1]) || d[i + 1] == '/')) {
            bool closing = d[i + 1] == '/';
            size_t j = i + 1 + closing;
            char name[16];
            size_t nn = 0;
            while (j < len && (isalnum((unsigned char)d[j]) || d[j] == '-') && nn < sizeof name - 1)
                name[nn++] = (char)tolower((unsigned char)d[j++]);
            name[nn] = 0;
            char quote = 0; /* find the tag's end, honouring quoted attributes */
            while (j < len && (quote || d[j] != '>')) {
                if (quote && d[j] == quote)
                    quote = 0;
                else if (!quote && (d[j] == '"' || d[j] == '\''))
                    quote = d[j];
                j++;
            }
            i = j < len ? j + 1 : len;
            if (!closing && in_list(name, skip_tags, sizeof skip_tags / sizeof skip_tags[0])) {
                i = skip_to_close(d, i, len, name);
                h.space = true;
                continue;
            }
            bool heading = name[0] == 'h' && name[1] >= '1' && name[1] <= '6' && name[2] == 0;
            if (in_list(name, block_tags, sizeof block_tags / sizeof block_tags[0])) {
                rc = html_flush(&h, err);
                h.heading = !closing && heading ? name[1] - '0' : 0;
                h.in_title = !closing && strcmp(name, "title") == 0;
            } else {
                h.space = h.space || strcmp(name, "td") == 0 || strcmp(name, "th") == 0;
            }
        } else if (c == '&') {
            char buf[4];
            size_t used = 0, n = entity(d, i, len, &used, buf);
            if (n == 1 && buf[0] == ' ') {
                h.space = true;
                i += used;
            } else if (n > 0) {
                rc = html_put(&h, buf, n, i, i + used, err);
                i += used;
            } else {
                rc = html_put(&h, "&", 1, i, i + 1, err);
                i++;
            }
        } else if (isspace((unsigned char)c)) {
            h.space = true;
            i++;
        } else {
            /* Text up to the next markup. c itself is taken as text even when
             * it is a '<' that opens no tag ("a < b", "<3", a '<' at the end),
             * so every pass moves on. */
            size_t j = i + 1;
            while (j < len && d[j] != '<' && d[j] != '&' && !isspace((unsigned char)d[j]))
                j++;
            rc = html_put(&h, d + i, j - i, i, j, err);
            i = j;
        }
    }
    if (!rc)
        rc = html_flush(&h, err);
    if (!rc && h.title.len > 0 && !al_buf_failed(&h.title)) {
        free(out->title);
        out->title = al_buf_take(&h.title);
    }
    al_buf_release(&h.text);
    al_buf_release(&h.title);
    free(h.anchors);
    return rc;
}

enum al_rc al_rag_extract(enum al_rag_format fmt, const char *data, size_t len, struct al_rag_doctext *out,
                          struct al_err *err)
{
    if (fmt == AL_FMT_TEXT || fmt == AL_FMT_MARKDOWN || fmt == AL_FMT_HTML) {
        enum al_rc rc = al_rag_check_text(data, len, err);
        if (rc)
            return rc;
    }
    switch (fmt) {
    case AL_FMT_TEXT: return al_rag_extract_text(data, len, 0, 0, false, out, err);
    case AL_FMT_MARKDOWN: return al_rag_extract_text(data, len, 0, 0, true, out, err);
    case AL_FMT_HTML: return al_rag_extract_html(data, len, out, err);
    case AL_FMT_PDF: return al_rag_extract_pdf(data, len, out, err);
    default: return al_err_set(err, AL_ERR_INVALID, "unsupported document format");
    }
}
