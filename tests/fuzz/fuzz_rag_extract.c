/*
 * fuzz_rag_extract.c: a document given to `rag add` (text, Markdown or HTML;
 * PDF goes to poppler and is not fuzzed here), extracted into blocks and cut
 * into chunks, the path every byte of a hostile document takes before it is
 * embedded.
 *
 * Input: byte 0 picks the format (0 text, 1 Markdown, 2 HTML, 3 guessed from
 * the content as for a file named "doc"), byte 1 the chunk budget (8..263
 * tokens), byte 2 the overlap (below the budget); the rest is the document.
 * Tokens are counted by a stand-in for the embedding model's tokenizer (a
 * word is one token per 4 bytes, any other non-blank byte one token): the
 * chunker only needs a deterministic count, and loading a model per run
 * would cost more than the chunking.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "rag/rag_int.h"

static enum al_rc count(void *ud, const char *text, size_t len, int *n, struct al_err *err)
{
    (void)ud, (void)err;
    int tokens = 0;
    for (size_t i = 0; i < len;) {
        unsigned char ch = (unsigned char)text[i];
        if (isalnum(ch) || ch >= 0x80) {
            size_t run = 0;
            while (i < len && (isalnum((unsigned char)text[i]) || (unsigned char)text[i] >= 0x80))
                i++, run++;
            tokens += (int)((run + 3) / 4);
        } else {
            tokens += !isspace(ch);
            i++;
        }
    }
    *n = tokens;
    return AL_OK;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    static const enum al_rag_format formats[] = {AL_FMT_TEXT, AL_FMT_MARKDOWN, AL_FMT_HTML};
    int budget = 8 + data[1];
    int overlap = data[2] % budget;
    size_t len = size - 3;
    /* An exact-size copy: the extractors take a length, and a read past it
     * must be caught. */
    char *doc = malloc(len ? len : 1);
    if (doc == NULL)
        abort();
    if (len)
        memcpy(doc, data + 3, len);
    enum al_rag_format fmt = (data[0] & 3) < 3 ? formats[data[0] & 3] : al_rag_format_guess("doc", doc, len, true);
    if (fmt == AL_FMT_PDF || fmt == AL_FMT_UNKNOWN) {
        free(doc);
        return 0;
    }
    struct al_rag_doctext dt;
    memset(&dt, 0, sizeof dt);
    struct al_err err = AL_ERR_INIT;
    if (al_rag_extract(fmt, doc, len, &dt, &err) == AL_OK) {
        for (size_t i = 0; i < dt.n; i++) {
            const struct al_rag_block *b = &dt.blocks[i];
            if (b->text == NULL || b->text[b->len] != '\0' || b->start > b->end || b->end > len)
                abort();
            (void)al_rag_block_src(b, b->len);
        }
        struct al_rag_chunk_params cp = {budget, overlap, count, NULL};
        struct al_rag_chunks ch;
        memset(&ch, 0, sizeof ch);
        if (al_rag_chunk_doc(&dt, "sha256:0000000000000000000000000000000000000000000000000000000000000000", &cp, &ch,
                             &err) == AL_OK) {
            for (size_t i = 0; i < ch.n; i++) {
                char *e = al_rag_embed_text(ch.v[i].heading, ch.v[i].text);
                free(e);
            }
        }
        al_rag_chunks_release(&ch);
    }
    al_rag_doctext_release(&dt);
    free(doc);
    return 0;
}
