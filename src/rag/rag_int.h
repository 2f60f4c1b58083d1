/*
 * rag_int.h: shared by the files of src/rag; nothing outside includes it.
 *
 *   extract.c     text, Markdown, HTML into blocks   extract_pdf.c  PDF (poppler-glib)
 *   chunk.c       blocks into chunks (token budget)  chunks_db.c    SQLite (only includer of sqlite3.h here)
 *   collection.c  create/open/info/vector index      add.c          walking, hashing, embedding, storing
 *   query.c       BM25, vector, fusion, JSON          ask.c          prompts and answers
 *   attach.c      python-written FAISS indexes        faiss_shim.cpp FAISS (vindex.h)
 */
#ifndef AL_RAG_RAG_INT_H
#define AL_RAG_RAG_INT_H

#include <pthread.h>

#include "core/buf.h"
#include "core/limits.h"
#include "core/utf8.h"
#include "rag/rag.h"
#include "rag/vindex.h"

/* ---- extraction ---- */

enum al_rag_format { AL_FMT_UNKNOWN = 0, AL_FMT_TEXT, AL_FMT_MARKDOWN, AL_FMT_HTML, AL_FMT_PDF };
const char *al_rag_format_name(enum al_rag_format f);
/* From the extension (and "%PDF-" magic); named: a file the user named
 * explicitly (unknown extensions are text unless the bytes look binary). */
enum al_rag_format al_rag_format_guess(const char *path, const char *data, size_t len, bool named);

/* A position in the block's text and the source byte it came from; the bytes
 * after it map one to one up to the next anchor. */
struct al_rag_anchor {
    size_t pos;
    uint64_t src;
};

enum al_rag_block_kind { AL_BLOCK_PARA = 0, AL_BLOCK_HEADING };

struct al_rag_block {
    enum al_rag_block_kind kind;
    int level;            /* headings: 1..6 */
    int page;             /* 1-based, 0 without pages */
    char *text;           /* NUL-terminated */
    size_t len;
    struct al_rag_anchor *anchors; /* NULL: text[i] is source byte start + i */
    size_t n_anchors;
    uint64_t start, end;  /* source span */
};

struct al_rag_doctext {
    struct al_rag_block *blocks;
    size_t n, cap;
    int pages;
    char *title;          /* HTML <title>, Markdown's first heading, or NULL */
};

void al_rag_doctext_release(struct al_rag_doctext *d);
/* Appends a block; takes text (malloc'd) and anchors (malloc'd or NULL). */
enum al_rc al_rag_doctext_push(struct al_rag_doctext *d, enum al_rag_block_kind kind, int level, int page,
                               char *text, size_t len, struct al_rag_anchor *anchors, size_t n_anchors,
                               uint64_t start, uint64_t end, struct al_err *err);
/* The source offset of text position pos of a block. */
uint64_t al_rag_block_src(const struct al_rag_block *b, size_t pos);

/* AL_ERR_INVALID with what to do when data is not UTF-8 text: UTF-16 or
 * UTF-32 with a byte order mark, or more than one byte in ten NUL, another
 * control byte or invalid UTF-8 (binary). A few such bytes are accepted: the
 * chunker turns NUL and control bytes into spaces and invalid UTF-8 into '?'. */
enum al_rc al_rag_check_text(const char *data, size_t len, struct al_err *err);
/* Text, Markdown and HTML are checked with al_rag_check_text first. Block
 * texts keep every byte of their source slice, NUL bytes included. */
enum al_rc al_rag_extract(enum al_rag_format fmt, const char *data, size_t len, struct al_rag_doctext *out,
                          struct al_err *err);
enum al_rc al_rag_extract_text(const char *data, size_t len, int page, uint64_t base, bool markdown,
                               struct al_rag_doctext *out, struct al_err *err);
enum al_rc al_rag_extract_html(const char *data, size_t len, struct al_rag_doctext *out, struct al_err *err);
enum al_rc al_rag_extract_pdf(const char *data, size_t len, struct al_rag_doctext *out, struct al_err *err);

/* ---- chunking ---- */

/* Counts the tokens of text with the embedding model's tokenizer. */
typedef enum al_rc al_rag_count_fn(void *ud, const char *text, size_t len, int *n, struct al_err *err);

struct al_rag_chunk {
    char id[AL_SHA256_HEX + 1];
    int page;
    char *heading;        /* " > " joined path, "" when none */
    char *text;           /* whitespace collapsed */
    uint64_t start, end;
    int ntok;
};

struct al_rag_chunks {
    struct al_rag_chunk *v;
    size_t n, cap;
};
void al_rag_chunks_release(struct al_rag_chunks *c);

struct al_rag_chunk_params {
    int budget;           /* tokens per chunk */
    int overlap;          /* tokens repeated between windows of one long block */
    al_rag_count_fn *count;
    void *ud;
};

/* Splits a document into chunks: a heading or a new page ends a chunk;
 * paragraphs are joined while the joined text fits the budget; a paragraph
 * over the budget is cut at word boundaries into windows of at most budget
 * tokens that overlap by about overlap tokens. doc_digest feeds the ids. */
enum al_rc al_rag_chunk_doc(const struct al_rag_doctext *d, const char *doc_digest,
                            const struct al_rag_chunk_params *p, struct al_rag_chunks *out, struct al_err *err);

/* The text given to the embedding model for a chunk: heading path, blank
 * line, text (malloc'd). */
char *al_rag_embed_text(const char *heading, const char *text);

/* ---- words, as BM25 query terms and document frequencies see them ---- */

#define AL_RAG_WORD_MAX 64      /* bytes of a word, NUL included (longer ones are cut) */
#define AL_RAG_WORDS_MAX 4096   /* words taken from one text */

/* Splits text into lowercase runs of ASCII letters and digits and non-ASCII
 * bytes, at least 2 bytes long, in order; unique: sorted, without
 * duplicates. Returns the count (at most max). */
size_t al_rag_words(const char *text, char (*out)[AL_RAG_WORD_MAX], size_t max, bool unique);

/* ---- the SQLite store of a collection ---- */

struct al_rag_db;

enum al_rc al_rag_db_open(const char *path, bool create, bool writable, struct al_rag_db **out,
                          struct al_err *err);
void al_rag_db_free(struct al_rag_db *db);
enum al_rc al_rag_db_begin(struct al_rag_db *db, struct al_err *err);
enum al_rc al_rag_db_commit(struct al_rag_db *db, struct al_err *err);
void al_rag_db_rollback(struct al_rag_db *db);

/* *val malloc'd; AL_ERR_NOT_FOUND when absent. */
enum al_rc al_rag_db_meta_get(struct al_rag_db *db, const char *key, char **val, struct al_err *err);
enum al_rc al_rag_db_meta_set(struct al_rag_db *db, const char *key, const char *val, struct al_err *err);

struct al_rag_docrow {
    int64_t id;
    const char *path, *digest, *format;
    uint64_t size;
    int pages;
};
/* Finds a document by key (or_digest: or by digest); digest_out may be
 * NULL. AL_ERR_NOT_FOUND without a message when absent. */
enum al_rc al_rag_db_doc_find(struct al_rag_db *db, const char *key, bool or_digest, int64_t *id,
                              char digest_out[AL_DIGEST_SIZE], struct al_err *err);
enum al_rc al_rag_db_doc_insert(struct al_rag_db *db, const struct al_rag_docrow *d, int64_t *id,
                                struct al_err *err);
/* Deletes a document and its chunks; *n_chunks counts them. */
enum al_rc al_rag_db_doc_delete(struct al_rag_db *db, int64_t id, size_t *n_chunks, struct al_err *err);
/* Inserts a chunk with its vector (dim floats, may be NULL); rowid < 0:
 * SQLite chooses; *rowid_out gets it. */
enum al_rc al_rag_db_chunk_insert(struct al_rag_db *db, int64_t doc, int64_t rowid, const struct al_rag_chunk *c,
                                  const float *vec, int dim, int64_t *rowid_out, struct al_err *err);
/* Sets the vector of an existing chunk; AL_ERR_INVALID when no such row. */
enum al_rc al_rag_db_set_vector(struct al_rag_db *db, int64_t rowid, const float *vec, int dim, struct al_err *err);
enum al_rc al_rag_db_counts(struct al_rag_db *db, size_t *docs, size_t *chunks, struct al_err *err);

/* BM25 over chunks_fts with an FTS5 query expression; best first. scores
 * are -bm25() (higher is better). */
enum al_rc al_rag_db_bm25(struct al_rag_db *db, const char *match, int k, int64_t *ids, double *scores,
                          size_t *n, struct al_err *err);
/* Chunks holding word (from the terms table, kept in step with the chunks
 * by insert and delete); 0 when none. */
enum al_rc al_rag_db_term_df(struct al_rag_db *db, const char *word, int64_t *df, struct al_err *err);
/* Fills doc, heading, text, page, offsets and chunk_id of a hit by rowid. */
enum al_rc al_rag_db_hit(struct al_rag_db *db, struct al_rag_hit *h, struct al_err *err);

/* Calls fn for every chunk's vector in rowid order; a non-zero return stops
 * with AL_ERR_INTERNAL unless it already set err. */
typedef enum al_rc al_rag_vec_fn(void *ud, int64_t rowid, const float *vec, struct al_err *err);
enum al_rc al_rag_db_each_vector(struct al_rag_db *db, int dim, al_rag_vec_fn *fn, void *ud, struct al_err *err);

/* The canonical dump of al_rag_dump(). */
enum al_rc al_rag_db_dump(struct al_rag_db *db, FILE *out, struct al_err *err);

/* Writes a snapshot of the database to path (a new file): VACUUM INTO, then
 * marked read-only, rollback journal, 4096-byte pages, vacuumed again, so
 * the same collection gives the same bytes. */
enum al_rc al_rag_db_snapshot(struct al_rag_db *db, const char *path, struct al_err *err);

enum al_rc al_rag_db_list_docs(struct al_rag_db *db, al_rag_doc_fn *fn, void *ud, struct al_err *err);

/* ---- the open collection ---- */

struct al_rag {
    char dir[AL_LIMIT_PATH];
    char name[AL_LIMIT_RAG_NAME + 1];
    struct al_rag_db *db;
    bool writable;
    int lock_fd;                 /* directory lock held by writers, else -1 */
    struct al_rag_info info;
    pthread_mutex_t vlock;       /* guards loading vi */
    struct al_vindex *vi;        /* loaded on first vector query */
    int64_t vi_generation;
};

/* Reloads info from the database. */
enum al_rc al_rag__load_info(struct al_rag *r, struct al_err *err);
/* Makes vi current for the collection's generation: reads
 * vectors-<gen>.faiss, or builds it from the stored vectors (and writes it
 * when writable). */
enum al_rc al_rag__vindex(struct al_rag *r, struct al_err *err);
/* After a change committed as generation gen: brings the index file up to
 * date (appending new rows to the old index when only rows were added). */
enum al_rc al_rag__vindex_update(struct al_rag *r, int64_t old_gen, const int64_t *new_ids,
                                 const float *new_vecs, size_t n_new, bool removed, struct al_err *err);
enum al_rc al_rag__lock(struct al_rag *r, struct al_err *err);
void al_rag__unlock(struct al_rag *r);
/* Commits a new generation number in the meta table (inside a transaction). */
enum al_rc al_rag__bump_generation(struct al_rag *r, int64_t *gen, struct al_err *err);

double al_rag__now_ms(void);

/* rerank.c: reorders h (hits with their texts) by reranker's scores of
 * question and keeps the k best; h is unchanged on failure. ctl (may be
 * NULL) stops the scoring between pairs (al_engine_rerank). */
enum al_rc al_rag__rerank(struct al_rag_hits *h, const char *question, struct al_engine_model *reranker,
                          const struct al_engine_embed_ctl *ctl, size_t k, struct al_err *err);

#endif
