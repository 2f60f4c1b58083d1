/*
 * extract_pdf.c: PDF text per page through poppler-glib (the only includer
 * of poppler.h). Offsets are into the extracted text of the whole document:
 * the pages' texts joined by form feeds, which is what `rag show` and the
 * hits' offsets refer to for PDFs.
 *
 * Headings: a PDF has no structure we can rely on, so a line is a heading
 * when every character of it is set larger than the page's body text (the
 * size covering most characters), or bold: larger by 40% is level 1, larger
 * by 15% level 2, bold at body size level 3. Lines of other text are joined
 * into paragraphs, split at blank lines and headings.
 */
#include "rag/rag_int.h"

#include <math.h>

#include <poppler.h>

struct style {
    float size;
    bool bold;
};

static bool is_bold(const char *font)
{
    return font && (strstr(font, "Bold") || strstr(font, "bold") || strstr(font, "Black") || strstr(font, "Heavy"));
}

/* Per byte of text: the style of the character that covers it. */
static struct style *page_styles(PopplerPage *page, const char *text, size_t len, float *body)
{
    struct style *st = calloc(len + 1, sizeof *st);
    size_t n_chars = (size_t)g_utf8_strlen(text, (gssize)len);
    size_t *byte_of = malloc((n_chars + 1) * sizeof *byte_of);
    if (!st || !byte_of) {
        free(st);
        free(byte_of);
        return NULL;
    }
    const char *p = text;
    for (size_t c = 0; c <= n_chars; c++) {
        byte_of[c] = (size_t)(p - text);
        if (c < n_chars)
            p = g_utf8_next_char(p);
    }
    GList *attrs = poppler_page_get_text_attributes(page);
    /* the body size: the size that covers the most characters */
    float sizes[64];
    size_t weight[64], n_sizes = 0;
    for (GList *l = attrs; l; l = l->next) {
        PopplerTextAttributes *a = l->data;
        if (a->start_index < 0 || a->end_index < a->start_index || (size_t)a->start_index >= n_chars)
            continue;
        size_t from = byte_of[a->start_index];
        size_t to = byte_of[(size_t)a->end_index + 1 <= n_chars ? (size_t)a->end_index + 1 : n_chars];
        bool bold = is_bold(a->font_name);
        for (size_t b = from; b < to; b++)
            st[b] = (struct style){(float)a->font_size, bold};
        size_t k = 0;
        while (k < n_sizes && fabsf(sizes[k] - (float)a->font_size) > 0.01f)
            k++;
        if (k == n_sizes && n_sizes < 64) {
            sizes[n_sizes] = (float)a->font_size;
            weight[n_sizes++] = 0;
        }
        if (k < n_sizes)
            weight[k] += to - from;
    }
    size_t best = 0;
    for (size_t k = 1; k < n_sizes; k++)
        if (weight[k] > weight[best])
            best = k;
    *body = n_sizes ? sizes[best] : 0;
    poppler_page_free_text_attributes(attrs);
    free(byte_of);
    return st;
}

static int line_heading(const struct style *st, const char *s, size_t from, size_t to, float body)
{
    if (!st || body <= 0 || to - from > 120)
        return 0;
    bool any_letter = false, all_bold = true;
    float min = 1e9f;
    for (size_t b = from; b < to; b++) {
        unsigned char c = (unsigned char)s[b];
        if (c == ' ' || c == '\t')
            continue;
        any_letter = any_letter || g_ascii_isalpha((char)c) || c >= 0x80;
        all_bold = all_bold && st[b].bold;
        if (st[b].size < min)
            min = st[b].size;
    }
    if (!any_letter)
        return 0;
    if (min >= body * 1.4f)
        return 1;
    if (min >= body * 1.15f)
        return 2;
    return all_bold ? 3 : 0;
}

static enum al_rc push(struct al_rag_doctext *out, enum al_rag_block_kind kind, int level, int page,
                       const char *text, size_t from, size_t to, uint64_t base, struct al_err *err)
{
    while (from < to && g_ascii_isspace(text[from]))
        from++;
    while (to > from && g_ascii_isspace(text[to - 1]))
        to--;
    if (from == to)
        return AL_OK;
    char *t = strndup(text + from, to - from);
    if (!t)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory extracting a PDF");
    return al_rag_doctext_push(out, kind, level, page, t, to - from, NULL, 0, base + from, base + to, err);
}

static enum al_rc page_blocks(PopplerPage *page, int pageno, uint64_t base, const char *text,
                              struct al_rag_doctext *out, struct al_err *err)
{
    size_t len = strlen(text);
    float body = 0;
    struct style *st = page_styles(page, text, len, &body);
    enum al_rc rc = AL_OK;
    size_t para = SIZE_MAX, para_end = 0;
    for (size_t pos = 0; pos < len && !rc;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t e = nl ? (size_t)(nl - text) : len;
        size_t next = nl ? e + 1 : len;
        bool blank = true;
        for (size_t b = pos; b < e && blank; b++)
            blank = g_ascii_isspace(text[b]);
        int level = blank ? 0 : line_heading(st, text, pos, e, body);
        if (blank || level) {
            if (para != SIZE_MAX)
                rc = push(out, AL_BLOCK_PARA, 0, pageno, text, para, para_end, base, err);
            para = SIZE_MAX;
            if (level && !rc)
                rc = push(out, AL_BLOCK_HEADING, level, pageno, text, pos, e, base, err);
        } else {
            if (para == SIZE_MAX)
                para = pos;
            para_end = e;
        }
        pos = next;
    }
    if (!rc && para != SIZE_MAX)
        rc = push(out, AL_BLOCK_PARA, 0, pageno, text, para, para_end, base, err);
    free(st);
    return rc;
}

enum al_rc al_rag_extract_pdf(const char *data, size_t len, struct al_rag_doctext *out, struct al_err *err)
{
    GError *gerr = NULL;
    GBytes *bytes = g_bytes_new_static(data, len);
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &gerr);
    g_bytes_unref(bytes);
    if (!doc) {
        enum al_rc rc = al_err_set(err, AL_ERR_INVALID, "poppler cannot read the PDF: %s",
                                   gerr ? gerr->message : "unknown error");
        if (gerr)
            g_error_free(gerr);
        return rc;
    }
    int n = poppler_document_get_n_pages(doc);
    enum al_rc rc = AL_OK;
    if (n > AL_LIMIT_RAG_PDF_PAGES)
        rc = al_err_set(err, AL_ERR_LIMIT, "the PDF has %d pages, over the cap of %d (AL_LIMIT_RAG_PDF_PAGES)", n,
                        AL_LIMIT_RAG_PDF_PAGES);
    uint64_t base = 0;
    for (int i = 0; i < n && !rc; i++) {
        PopplerPage *page = poppler_document_get_page(doc, i);
        if (!page)
            continue;
        char *text = poppler_page_get_text(page);
        if (text) {
            rc = page_blocks(page, i + 1, base, text, out, err);
            base += strlen(text) + 1; /* the form feed between pages */
            g_free(text);
        } else {
            base += 1;
        }
        g_object_unref(page);
    }
    out->pages = n;
    if (!out->title) {
        char *t = poppler_document_get_title(doc);
        if (t && *t)
            out->title = strdup(t);
        g_free(t);
    }
    g_object_unref(doc);
    return rc;
}
