/* Unit tests of src/rag that need no model: extraction, chunking under a
 * budget (a word counter stands in for the tokenizer), the vector index, and
 * the refusal of a query vector from another model. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "rag/rag_int.h"

static enum al_rc count_words(void *ud, const char *text, size_t len, int *n, struct al_err *err)
{
    int c = 0;
    bool in = false;
    for (size_t i = 0; i < len; i++) {
        bool sp = text[i] == ' ' || text[i] == '\n' || text[i] == '\t';
        c += !sp && !in;
        in = !sp;
    }
    *n = c;
    return AL_OK;
}

static void test_html(void **state)
{
    const char *html = "<html><head><title>T &amp; C</title><style>p{}</style></head><body>"
                       "<script>var a = '<h1>x</h1>';</script><!-- <h1>no</h1> -->"
                       "<h1>Main</h1><p>One &lt;two&gt; &#65;&#x42;</p><h2 class=\"a>b\">Sub</h2><p>Three</p></body></html>";
    struct al_rag_doctext d = {0};
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_rag_extract_html(html, strlen(html), &d, &err), AL_OK);
    assert_int_equal(d.n, 4);
    assert_string_equal(d.title, "T & C");
    assert_int_equal(d.blocks[0].kind, AL_BLOCK_HEADING);
    assert_string_equal(d.blocks[0].text, "Main");
    assert_string_equal(d.blocks[1].text, "One <two> AB");
    assert_int_equal(d.blocks[2].level, 2);
    assert_string_equal(d.blocks[2].text, "Sub");
    /* offsets point at the source text */
    assert_memory_equal(html + d.blocks[3].start, "Three", 5);
    assert_int_equal(al_rag_block_src(&d.blocks[1], 0), (uint64_t)(strstr(html, "One") - html));
    al_rag_doctext_release(&d);
}

static void test_markdown_and_text(void **state)
{
    const char *md = "Title\n=====\n\nintro text\n\n## Part\n\n```\n# not a heading\n\ncode\n```\n\nend\n";
    struct al_rag_doctext d = {0};
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_rag_extract_text(md, strlen(md), 0, 0, true, &d, &err), AL_OK);
    assert_int_equal(d.n, 5);
    assert_string_equal(d.blocks[0].text, "Title");
    assert_int_equal(d.blocks[0].level, 1);
    assert_string_equal(d.blocks[2].text, "Part");
    assert_memory_equal(d.blocks[3].text, "```\n# not a heading\n\ncode\n```", 29);
    al_rag_doctext_release(&d);
    const char *txt = "NAME\n   ls - list\n\nDESCRIPTION\n   Lists files.\n";
    assert_int_equal(al_rag_extract_text(txt, strlen(txt), 0, 0, false, &d, &err), AL_OK);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.blocks[2].kind, AL_BLOCK_HEADING);
    assert_string_equal(d.blocks[2].text, "DESCRIPTION");
    al_rag_doctext_release(&d);
}

static void test_chunk_budget_overlap(void **state)
{
    char big[8192];
    size_t k = 0;
    k += (size_t)snprintf(big + k, sizeof big - k, "# H\n\nshort one\n\nshort two\n\n");
    for (int i = 0; i < 100; i++)
        k += (size_t)snprintf(big + k, sizeof big - k, "w%d ", i);
    struct al_rag_doctext d = {0};
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_rag_extract_text(big, k, 0, 0, true, &d, &err), AL_OK);
    struct al_rag_chunk_params p = {.budget = 30, .overlap = 5, .count = count_words};
    struct al_rag_chunks c = {0}, c2 = {0};
    assert_int_equal(al_rag_chunk_doc(&d, "sha256:x", &p, &c, &err), AL_OK);
    /* the two short paragraphs are joined; the long one is cut in windows */
    assert_string_equal(c.v[0].text, "short one\n\nshort two");
    assert_string_equal(c.v[0].heading, "H");
    assert_true(c.n >= 5);
    for (size_t i = 1; i < c.n; i++) {
        assert_true(c.v[i].ntok <= 30);
        if (i >= 2) /* consecutive windows overlap */
            assert_true(c.v[i].start < c.v[i - 1].end);
    }
    assert_memory_equal(big + c.v[1].start, "w0 ", 3);
    assert_memory_equal(big + c.v[c.n - 1].end - 3, "w99", 3);
    assert_int_equal(al_rag_chunk_doc(&d, "sha256:x", &p, &c2, &err), AL_OK);
    assert_int_equal(c.n, c2.n);
    for (size_t i = 0; i < c.n; i++)
        assert_string_equal(c.v[i].id, c2.v[i].id);
    al_rag_chunks_release(&c);
    al_rag_chunks_release(&c2);
    al_rag_doctext_release(&d);
}

/* Text with NUL bytes: the block keeps every byte of its slice (the copy once
 * stopped at the first NUL while the length was kept, and the chunker read
 * past the buffer), and the chunker turns NULs into spaces. */
static void test_chunk_nul_bytes(void **state)
{
    size_t n = 0, cap = 64 << 10;
    char *txt = malloc(cap);
    assert_non_null(txt);
    memcpy(txt, "alpha\0beta ", 11);
    n = 11;
    for (int i = 0; n + 16 < cap; i++) { /* every 7th word ends with a NUL instead of a space */
        n += (size_t)snprintf(txt + n, cap - n, "w%d ", i);
        if (i % 7 == 0)
            txt[n - 1] = 0;
    }
    n += (size_t)snprintf(txt + n, cap - n, "end ");
    struct al_rag_doctext d = {0};
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_rag_extract_text(txt, n, 0, 0, false, &d, &err), AL_OK);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.blocks[0].len, n - 1); /* the trailing space trimmed */
    assert_memory_equal(d.blocks[0].text, txt, n - 1);
    struct al_rag_chunk_params p = {.budget = 30, .overlap = 5, .count = count_words};
    struct al_rag_chunks c = {0};
    assert_int_equal(al_rag_chunk_doc(&d, "sha256:x", &p, &c, &err), AL_OK);
    assert_true(c.n > 10);
    assert_memory_equal(c.v[0].text, "alpha beta w0 w1", 16);
    for (size_t i = 0; i < c.n; i++) {
        assert_true(c.v[i].ntok <= 30);
        assert_true(c.v[i].end <= n);
    }
    al_rag_chunks_release(&c);
    al_rag_doctext_release(&d);
    free(txt);
}

/* Bytes that only look like UTF-8 (a surrogate, overlong forms, a value above
 * U+10FFFF) become '?' in chunks, as other invalid bytes do: chunk text goes
 * to JSON, which jansson refuses unless it is valid UTF-8. rag once had its
 * own decoder that let these through. */
static void test_chunk_strict_utf8(void **state)
{
    static const char txt[] = "surrogate \xED\xA0\x80 overlong \xE0\x80\xAF and \xF0\x80\x80\xAF "
                              "above \xF4\x90\x80\x80 and \xF5\x80\x80\x80 fine \xC3\xA9t\xC3\xA9 end";
    struct al_rag_doctext d = {0};
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_rag_extract_text(txt, sizeof txt - 1, 0, 0, false, &d, &err), AL_OK);
    struct al_rag_chunk_params p = {.budget = 100, .overlap = 0, .count = count_words};
    struct al_rag_chunks c = {0};
    assert_int_equal(al_rag_chunk_doc(&d, "sha256:x", &p, &c, &err), AL_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.v[0].text, "surrogate ??? overlong ??? and ???? above ???? and ???? fine \xC3\xA9t\xC3\xA9 end");
    json_t *j = json_string(c.v[0].text);
    assert_non_null(j);
    json_decref(j);
    al_rag_chunks_release(&c);
    al_rag_doctext_release(&d);
}

/* UTF-16 or UTF-32 with a byte order mark, and bytes that are not text, are
 * refused with a message; text with a few NULs is accepted. */
static void test_extract_refuses_non_text(void **state)
{
    struct al_rag_doctext d = {0};
    struct al_err err = AL_ERR_INIT;
    const char u16[] = "\xff\xfeh\0i\0\n\0";
    assert_int_equal(al_rag_extract(AL_FMT_TEXT, u16, sizeof u16 - 1, &d, &err), AL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "UTF-16"));
    al_err_clear(&err);
    const char u32[] = "\xff\xfe\0\0h\0\0\0";
    assert_int_equal(al_rag_extract(AL_FMT_MARKDOWN, u32, sizeof u32 - 1, &d, &err), AL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "UTF-32"));
    al_err_clear(&err);
    char bin[4096];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (char)((i * 2654435761u) >> 13);
    assert_int_equal(al_rag_extract(AL_FMT_HTML, bin, sizeof bin, &d, &err), AL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "not UTF-8 text"));
    al_err_clear(&err);
    const char some[] = "one two\0three four five six seven eight nine ten";
    assert_int_equal(al_rag_extract(AL_FMT_TEXT, some, sizeof some - 1, &d, &err), AL_OK);
    assert_int_equal(d.n, 1);
    al_rag_doctext_release(&d);
}

/* The tokenizer is never handed a whole long paragraph: a 1 MB line, one
 * paragraph and one word of 256 KB are chunked while no text over 64 KB is
 * counted (the engine refuses large texts, and tokenizing them whole took
 * ~48 bytes of memory per byte). */
static enum al_rc count_small(void *ud, const char *text, size_t len, int *n, struct al_err *err)
{
    if (len > (64u << 10))
        return al_err_set(err, AL_ERR_LIMIT, "a text of %zu bytes counted whole", len);
    return count_words(ud, text, len, n, err);
}

static void test_chunk_long_line_streams(void **state)
{
    size_t n = 0, cap = 1u << 20;
    char *txt = malloc(cap);
    assert_non_null(txt);
    while (n + 16 < cap)
        n += (size_t)snprintf(txt + n, cap - n, "word%zu ", n);
    struct al_rag_doctext d = {0};
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_rag_extract_text(txt, n, 0, 0, false, &d, &err), AL_OK);
    struct al_rag_chunk_params p = {.budget = 200, .overlap = 32, .count = count_small};
    struct al_rag_chunks c = {0};
    assert_int_equal(al_rag_chunk_doc(&d, "sha256:x", &p, &c, &err), AL_OK);
    assert_true(c.n > 100);
    for (size_t i = 0; i < c.n; i++)
        assert_true(c.v[i].ntok <= 200);
    assert_memory_equal(txt + c.v[c.n - 1].end - 4, txt + n - 5, 4); /* the last word is in */
    al_rag_chunks_release(&c);
    al_rag_doctext_release(&d);
    /* one word of 256 KB: cut into pieces, not one chunk of 256 KB */
    memset(txt, 'a', 256u << 10);
    assert_int_equal(al_rag_extract_text(txt, 256u << 10, 0, 0, false, &d, &err), AL_OK);
    assert_int_equal(al_rag_chunk_doc(&d, "sha256:x", &p, &c, &err), AL_OK);
    assert_true(c.n > 1);
    for (size_t i = 0; i < c.n; i++)
        assert_true(strlen(c.v[i].text) <= 200u * 200u);
    al_rag_chunks_release(&c);
    al_rag_doctext_release(&d);
    free(txt);
}

/* A document of more chunks than AL_LIMIT_RAG_DOC_CHUNKS is refused with a
 * message naming the cap (its chunks and vectors are held in memory). */
static void test_chunk_cap(void **state)
{
    size_t words = (size_t)AL_LIMIT_RAG_DOC_CHUNKS * 16 + 32, n = words * 2;
    char *txt = malloc(n);
    assert_non_null(txt);
    for (size_t i = 0; i < words; i++)
        memcpy(txt + 2 * i, "x ", 2);
    struct al_rag_doctext d = {0};
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_rag_extract_text(txt, n, 0, 0, false, &d, &err), AL_OK);
    struct al_rag_chunk_params p = {.budget = 16, .overlap = 0, .count = count_words};
    struct al_rag_chunks c = {0};
    assert_int_equal(al_rag_chunk_doc(&d, "sha256:x", &p, &c, &err), AL_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "AL_LIMIT_RAG_DOC_CHUNKS"));
    al_rag_chunks_release(&c);
    al_rag_doctext_release(&d);
    free(txt);
}

/* Found by fuzz_rag_extract (seed tests/fuzz/corpus/fuzz_rag_extract/binary-ish):
 * text holding NUL bytes. A block's text was copied with strndup, which stops
 * at the first NUL, while the block kept the slice's length, so everything
 * after (the chunker, the embedder) read past the copy. */
static void test_fuzz_text_with_nul_bytes(void **state)
{
    char data[256];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)i;
    struct al_rag_doctext d = {0};
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_rag_extract_text(data, sizeof data, 0, 0, false, &d, &err), AL_OK);
    assert_true(d.n > 0);
    for (size_t i = 0; i < d.n; i++) {
        const struct al_rag_block *b = &d.blocks[i];
        /* the block's text is its source slice, byte for byte, NULs included */
        assert_true(b->end - b->start == b->len);
        assert_memory_equal(b->text, data + b->start, b->len);
        assert_int_equal(b->text[b->len], 0);
    }
    struct al_rag_chunk_params p = {.budget = 8, .overlap = 0, .count = count_words};
    struct al_rag_chunks c = {0};
    assert_int_equal(al_rag_chunk_doc(&d, "sha256:x", &p, &c, &err), AL_OK);
    al_rag_chunks_release(&c);
    al_rag_doctext_release(&d);
}

/* Found by fuzz_rag_extract: HTML with a '<' that opens no tag ("a < b",
 * "<3", a '<' at the very end) made the extractor loop forever, taking no
 * byte on each pass. The alarm turns a regression into a failure, not a hang. */
static void test_fuzz_html_lone_lt(void **state)
{
    const char *html = "<p>a < b</p><p>I <3 you</p><p>x <";
    struct al_rag_doctext d = {0};
    struct al_err err = AL_ERR_INIT;
    alarm(60);
    assert_int_equal(al_rag_extract_html(html, strlen(html), &d, &err), AL_OK);
    alarm(0);
    assert_int_equal(d.n, 3);
    assert_string_equal(d.blocks[0].text, "a < b");
    assert_string_equal(d.blocks[1].text, "I <3 you");
    assert_string_equal(d.blocks[2].text, "x <");
    al_rag_doctext_release(&d);
}

static void test_vindex_roundtrip(void **state)
{
    char *dir = tu_mkdtemp();
    char path[512];
    snprintf(path, sizeof path, "%s/v.faiss", dir);
    struct al_err err = AL_ERR_INIT;
    for (int kind = 0; kind < 2; kind++) {
        struct al_vindex *v = NULL, *r = NULL;
        assert_int_equal(al_vindex_new(4, kind, 16, 40, &v, &err), AL_OK);
        float x[3][4] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 0.6f, 0.8f}};
        int64_t ids[3] = {10, 20, 30};
        assert_int_equal(al_vindex_add(v, 3, &x[0][0], ids, &err), AL_OK);
        assert_int_equal(al_vindex_write(v, path, &err), AL_OK);
        assert_int_equal(al_vindex_read(path, &r, &err), AL_OK);
        assert_int_equal(al_vindex_size(r), 3);
        assert_int_equal(al_vindex_kind(r), kind);
        float q[4] = {0, 0, 0.8f, 0.6f}, s[2];
        int64_t got[2];
        assert_int_equal(al_vindex_search(r, q, 2, 16, s, got, &err), AL_OK);
        assert_int_equal(got[0], 30);
        float back[4];
        int64_t id;
        assert_int_equal(al_vindex_get(r, 1, back, &id, &err), AL_OK);
        assert_int_equal(id, 20);
        assert_true(back[1] == 1.0f);
        al_vindex_free(v);
        al_vindex_free(r);
    }
    tu_write_file(path, "not faiss", 9);
    struct al_vindex *bad = NULL;
    assert_int_not_equal(al_vindex_read(path, &bad, &err), AL_OK);
    tu_rmrf(dir);
    free(dir);
}

static void test_other_model_refused(void **state)
{
    char *home = tu_mkdtemp();
    struct al_err err = AL_ERR_INIT;
    char mine[AL_DIGEST_SIZE] = "sha256:", other[AL_DIGEST_SIZE] = "sha256:";
    memset(mine + 7, 'a', 64);
    memset(other + 7, 'b', 64);
    mine[71] = other[71] = 0;
    struct al_rag_create_opts co = {.embed_model = "m", .embed_manifest = mine, .embed_digest = mine, .dim = 4};
    assert_int_equal(al_rag_create(home, "c", &co, &err), AL_OK);
    assert_int_equal(al_rag_create(home, "c", &co, &err), AL_ERR_EXISTS);
    assert_int_equal(al_rag_create(home, "Bad/Name", &co, &err), AL_ERR_USAGE);
    struct al_rag *r = NULL;
    assert_int_equal(al_rag_open(home, "c", false, &r, &err), AL_OK);
    float q[4] = {1, 0, 0, 0};
    struct al_rag_hits h;
    struct al_rag_query_opts o = {.k = 3, .mode = AL_RAG_VECTOR};
    al_err_clear(&err);
    assert_int_equal(al_rag_query_vec(r, q, 4, other, NULL, &o, &h, &err), AL_ERR_DENIED);
    al_err_clear(&err);
    assert_int_equal(al_rag_query_vec(r, q, 4, mine, NULL, &o, &h, &err), AL_OK);
    assert_int_equal(h.n, 0);
    al_rag_hits_release(&h);
    al_rag_free(r);
    tu_rmrf(home);
    free(home);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_html),
        cmocka_unit_test(test_markdown_and_text),
        cmocka_unit_test(test_chunk_budget_overlap),
        cmocka_unit_test(test_chunk_nul_bytes),
        cmocka_unit_test(test_chunk_strict_utf8),
        cmocka_unit_test(test_extract_refuses_non_text),
        cmocka_unit_test(test_chunk_long_line_streams),
        cmocka_unit_test(test_chunk_cap),
        cmocka_unit_test(test_fuzz_text_with_nul_bytes),
        cmocka_unit_test(test_fuzz_html_lone_lt),
        cmocka_unit_test(test_vindex_roundtrip),
        cmocka_unit_test(test_other_model_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
