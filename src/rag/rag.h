/*
 * rag.h: offline retrieval over local documents. A collection lives in
 * $AIRLOCK_HOME/rag/<name>/: chunks.db (SQLite: documents, chunks with their
 * text, metadata and vectors, an FTS5 index for BM25) and
 * vectors-<generation>.faiss (FAISS, derived from the vectors in chunks.db and
 * rebuilt from them when missing).
 *
 * Ingestion is deterministic: documents are hashed, extracted (text,
 * Markdown, HTML, PDF per page), split on headings and paragraphs, then cut to
 * a token budget measured with the embedding model's own tokenizer, with
 * overlap; a chunk's id is SHA-256 over the document digest, its byte offsets
 * and the chunker version. One 'add' processes its files sorted by document
 * key, so the same files in any order give the same chunk table.
 *
 * A collection records the digest of its embedding model's weights; a query
 * vector made by another model is refused (AL_ERR_DENIED).
 *
 * Retrieval: BM25 (FTS5), vector (inner product on normalized vectors: exact
 * IndexFlatIP, HNSW from hnsw_threshold chunks on), or hybrid: both fused by
 * reciprocal rank fusion, score = sum of 1 / (60 + rank). Optionally a
 * second stage: a reranker (a cross-encoder, al_engine_rerank) scores the
 * first rerank_candidates of that list against the question, and the k with
 * the best scores are the hits (rerank.c).
 *
 * An open collection may be queried from several threads at once; changes
 * (add, rm) take an exclusive lock on the collection's directory.
 */
#ifndef AL_RAG_RAG_H
#define AL_RAG_RAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "core/hash.h"
#include "engine/engine.h"
#include "repo/repo.h"

#define AL_RAG_CHUNKER_VERSION "airlock-chunker-1"
#define AL_RAG_TEMPLATE_VERSION "airlock-rag-prompt-1"

struct al_rag; /* opaque: an open collection */

/* True when name is 1..AL_LIMIT_RAG_NAME of [a-z0-9._-], starting with a
 * letter or digit. */
bool al_rag_name_valid(const char *name);

/* ---- collections ---- */

struct al_rag_create_opts {
    const char *embed_ref;     /* the model as given: recorded for people */
    const char *embed_model;   /* name of the model */
    const char *embed_manifest;/* its manifest digest: queries load exactly this version */
    const char *embed_digest;  /* digest of the weights the vectors come from */
    int dim;                   /* length of its vectors */
    int chunk_tokens;          /* budget per chunk; <= 0: 200 */
    int overlap_tokens;        /* overlap between pieces of a long paragraph; < 0: 32 */
    int hnsw_threshold;        /* HNSW from this many chunks on; <= 0: 50000 */
};

/* Creates an empty collection under home. AL_ERR_EXISTS when it exists. */
enum al_rc al_rag_create(const char *home, const char *name, const struct al_rag_create_opts *o,
                         struct al_err *err);

/* Opens a collection. writable: may change it (add, rm, persisting a
 * rebuilt vector index). *out must be NULL. AL_ERR_NOT_FOUND when absent. */
enum al_rc al_rag_open(const char *home, const char *name, bool writable, struct al_rag **out,
                       struct al_err *err);
void al_rag_free(struct al_rag *r);

struct al_rag_info {
    char name[AL_LIMIT_RAG_NAME + 1];
    char embed_ref[AL_LIMIT_REF];
    char embed_model[AL_LIMIT_NAME + 1];
    char embed_manifest[AL_DIGEST_SIZE];
    char embed_digest[AL_DIGEST_SIZE];
    char index_kind[16];      /* "flat" or "hnsw" (what the next build makes) */
    char chunker[32];
    int dim, chunk_tokens, overlap_tokens, hnsw_threshold;
    int64_t generation;       /* bumped by every change */
    size_t docs, chunks;
    bool readonly;            /* imported or attached: add and rm refuse */
};
enum al_rc al_rag_info(struct al_rag *r, struct al_rag_info *out, struct al_err *err);

/* Calls fn for every document, ordered by key. */
typedef void al_rag_doc_fn(void *ud, const char *path, const char *digest, const char *format, int pages,
                           size_t chunks);
enum al_rc al_rag_docs(struct al_rag *r, al_rag_doc_fn *fn, void *ud, struct al_err *err);

/* Names of the collections under home, sorted; *names is a malloc'd array
 * of malloc'd strings (free each, then the array). */
enum al_rc al_rag_list(const char *home, char ***names, size_t *n, struct al_err *err);

/* A model version in the store: the file a load verifies and reads. */
struct al_rag_model {
    char name[AL_LIMIT_NAME + 1];
    char manifest[AL_DIGEST_SIZE];
    char digest[AL_DIGEST_SIZE];   /* of the weights (the first GGUF file) */
    char path[AL_LIMIT_PATH];      /* the blob */
};
/* Resolves ref (name, name:tag, name@sha256:..) to its weight blob. */
enum al_rc al_rag_resolve_model(struct al_repo *repo, const char *ref, struct al_rag_model *out,
                                struct al_err *err);

/* Loads the collection's embedding model from the store: the exact version
 * recorded at create, with its weights verified against the recorded digest. */
enum al_rc al_rag_load_embedder(struct al_rag *r, struct al_repo *repo, int threads,
                                struct al_engine_model **out, struct al_err *err);

/* Loads the reranker ref (name, name:tag, name@sha256:..) from the store,
 * verified like every load, for al_rag_query_opts.reranker. A model that is
 * not a reranker: AL_ERR_USAGE. */
enum al_rc al_rag_load_reranker(struct al_repo *repo, const char *ref, int threads, struct al_engine_model **out,
                                struct al_err *err);

/* ---- ingestion ---- */

struct al_rag_add_stats {
    size_t files_seen, added, replaced, unchanged, skipped, chunks;
    double ms_extract, ms_embed, ms_store;
};
/* Called once per document after it is handled: status is "added",
 * "replaced", "unchanged" or "skipped" (with a reason in why). */
typedef void al_rag_add_cb(void *ud, const char *doc, const char *status, const char *why);

#define AL_RAG_ADD_PROGRESS     1u /* a progress bar on stderr */
#define AL_RAG_ADD_FOLLOW_LINKS 2u /* follow file links that lead out of a walked directory */

/* Adds files and directories (recursively; hidden entries and links to
 * directories are not followed). In a directory, a link to a file is
 * followed when its target resolves inside that directory (or with
 * AL_RAG_ADD_FOLLOW_LINKS); else it is skipped. The document key is the path
 * as given, without "./" and duplicate slashes. A document whose content hash
 * is unchanged is left alone; one that changed is replaced. Files in
 * directories with unsupported extensions are not taken; a file named
 * explicitly is read as text unless it looks binary.
 *
 * A document that cannot be taken (unreadable, over a cap, not UTF-8 text,
 * a refused link, not a regular file) is skipped: cb gets its key and why,
 * stats->skipped counts it, and the others are added; AL_OK. Errors that are
 * not one document's (out of memory, the database, the collection's lock)
 * stop the run: what was committed stays. The embedder must be the
 * collection's own model (AL_ERR_DENIED otherwise). */
enum al_rc al_rag_add(struct al_rag *r, struct al_engine_model *embedder, const char *const *paths,
                      size_t n_paths, unsigned flags, al_rag_add_cb *cb, void *ud,
                      struct al_rag_add_stats *stats, struct al_err *err);

/* Removes a document by its key (or its digest). AL_ERR_NOT_FOUND. */
enum al_rc al_rag_rm(struct al_rag *r, const char *doc, size_t *chunks_removed, struct al_err *err);

/* ---- retrieval ---- */

enum al_rag_mode { AL_RAG_HYBRID = 0, AL_RAG_VECTOR, AL_RAG_BM25 };
const char *al_rag_mode_name(enum al_rag_mode m);
/* "hybrid", "vector", "bm25"; AL_ERR_USAGE otherwise. */
enum al_rc al_rag_mode_parse(const char *s, enum al_rag_mode *out, struct al_err *err);

struct al_rag_query_opts {
    int k;                 /* hits; <= 0: 5; at most AL_LIMIT_RAG_K */
    enum al_rag_mode mode;
    int candidates;        /* per retriever before fusion; <= 0: max(50, 4k) */
    int ef_search;         /* HNSW search width; <= 0: max(128, candidates) */
    struct al_engine_model *reranker; /* NULL: none; else a reranker (al_engine_model_is_reranker) */
    int rerank_candidates; /* fused hits the reranker scores; <= 0: max(20, 2k); at least k */
    const struct al_engine_embed_ctl *rerank_ctl; /* NULL: never stopped; else the reranking stops
                              between pairs when its check says so, the query failing with its code */
};

struct al_rag_hit {
    int64_t rowid;
    char chunk_id[AL_SHA256_HEX + 1];
    char *doc;             /* document key */
    char *heading;         /* heading path, " > " between levels; "" when none */
    char *text;
    int page;              /* 1-based; 0 when the format has no pages */
    uint64_t start, end;   /* byte offsets (source file; PDF: extracted text) */
    double score;          /* the fused score in hybrid mode, else the retriever's */
    int bm25_rank, vector_rank; /* 1-based; 0: not found by that retriever */
    double bm25, cosine;   /* raw scores (bm25: higher is better) */
    int fused_rank;        /* with a reranker: the rank before reranking (1-based) */
    double rerank;         /* with a reranker: its score (higher is better) */
};

struct al_rag_hits {
    struct al_rag_hit *v;
    size_t n;
    enum al_rag_mode mode;
    bool reranked;         /* ordered by a reranker's scores */
    double ms_embed, ms_vector, ms_bm25, ms_rerank, ms_total;
};

/* Embeds question with embedder (which must be the collection's model, else
 * AL_ERR_DENIED; may be NULL in bm25 mode) and retrieves. out is filled
 * (release with al_rag_hits_release). */
enum al_rc al_rag_query(struct al_rag *r, struct al_engine_model *embedder, const char *question,
                        const struct al_rag_query_opts *o, struct al_rag_hits *out, struct al_err *err);

/* Retrieves with a vector already made (dim floats, L2-normalized) by the
 * model whose weight digest is model_digest; a digest other than the
 * collection's is AL_ERR_DENIED. question feeds BM25 (may be NULL in vector
 * mode). The entry point for a server that embeds elsewhere. */
enum al_rc al_rag_query_vec(struct al_rag *r, const float *qvec, int dim, const char *model_digest,
                            const char *question, const struct al_rag_query_opts *o,
                            struct al_rag_hits *out, struct al_err *err);

void al_rag_hits_release(struct al_rag_hits *h);

/* The hits as JSON: {"mode":..,"hits":[{"rank","chunk_id","doc","page",
 * "heading","start","end","score","bm25_rank","vector_rank","bm25","cosine",
 * "text"}],"timing_ms":{..}}; reranked hits add "fused_rank" and
 * "rerank_score", the answer "reranked": true and timing_ms "rerank". New reference; NULL when out of memory. */
json_t *al_rag_hits_json(const struct al_rag_hits *h, bool with_text);

/* ---- answers ---- */

struct al_rag_ask_opts {
    struct al_rag_query_opts query;
    const char *template_text; /* NULL: the built-in AL_RAG_TEMPLATE_VERSION */
    int max_tokens;            /* <= 0: 256 */
    float temperature;         /* <= 0: greedy */
    uint32_t seed;
};

struct al_rag_answer {
    char *text;                /* the generated answer */
    char *prompt;              /* the full prompt given to the model */
    struct al_rag_hits hits;   /* the numbered passages, [1] first */
    bool cited[64];            /* cited[i]: the answer cites passage i+1 */
    char template_version[64];
    struct al_engine_gen_result gen;
};

/* Retrieves, fills the template with numbered passages, generates with
 * generator (any chat model) and records which passages the answer cites.
 * A template holds {{passages}} and {{question}}; its first line, when it
 * starts with "#version ", names its version; a line "---" separates a
 * system part from the user part. */
enum al_rc al_rag_ask(struct al_rag *r, struct al_engine_model *embedder, struct al_engine_model *generator,
                      const char *question, const struct al_rag_ask_opts *o, struct al_rag_answer *out,
                      struct al_err *err);
void al_rag_answer_release(struct al_rag_answer *a);

/* The prompt of an answer for a conversation (al_rag_ask's, and the
 * server's chat completions with retrieval): the template's system part
 * first (joined with the conversation's own leading system message), then
 * the conversation with the content of msgs[question_at] replaced by the
 * template's user part, filled with the numbered passages of hits and
 * question; formatted with the generator's chat template (chat_fallback for a
 * model without one; plain text when none is usable). Passages are dropped
 * from the end, then the last one shortened, until the prompt has at most
 * max_tokens tokens; hits keeps the passages used. *prompt is malloc'd;
 * version gets the template's version. */
struct al_rag_prompt_opts {
    const char *template_text;      /* NULL: the built-in AL_RAG_TEMPLATE_VERSION */
    const struct al_engine_chat_msg *msgs; /* the conversation, >= 1 message */
    size_t n_msgs, question_at;
    const char *chat_fallback;      /* NULL: chatml */
    int max_tokens;
};
enum al_rc al_rag_prompt(struct al_engine_model *generator, const struct al_rag_prompt_opts *o, const char *question,
                         struct al_rag_hits *hits, char **prompt, char version[64], struct al_err *err);

/* Marks cited[i] for every "[i+1]" in text (1..n_passages). */
void al_rag_cited(const char *text, size_t n_passages, bool *cited);

/* ---- inspection and exchange ---- */

/* Writes the chunk table as canonical TSV lines (ordered by document key,
 * then offsets): chunk_id, doc, doc digest, page, heading, start, end,
 * tokens, sha256 of the text, sha256 of the vector bytes. Two collections
 * built from the same documents with the same model print the same bytes. */
enum al_rc al_rag_dump(struct al_rag *r, FILE *out, struct al_err *err);

/* Attaches a FAISS index written elsewhere (e.g. Python's faiss.write_index)
 * and its chunk table (JSON Lines: {"id":N,"doc":..,"text":..,"page":..,
 * "heading":..}, one per vector id) to an empty collection, which becomes
 * read-only. The vectors must have the collection's dimension; the index file
 * is kept as written and answers vector queries as it is. */
enum al_rc al_rag_attach(struct al_rag *r, const char *index_path, const char *table_path,
                         struct al_err *err);

/* ---- snapshots (carried in signed bundles; see docs/internals/rag.md) ---- */

#define AL_RAG_SNAPSHOT_FORMAT "airlock-rag-snapshot-1"
#define AL_RAG_SNAPSHOT_PREFIX "rag/" /* a snapshot of COLL is stored as the version rag/COLL:g<generation> */

struct al_rag_snapshot {
    char db[AL_LIMIT_PATH], faiss[AL_LIMIT_PATH], meta[AL_LIMIT_PATH]; /* the files written */
    int64_t generation;
    char changed[40];          /* when the content last changed (ISO 8601): the bundle's date */
};

/* Writes the snapshot files of r into the existing directory dir:
 * chunks.db (deterministic copy, marked read-only), vectors.faiss (the index
 * of the current generation) and rag-snapshot.json. r must be open writable:
 * the collection's lock is held while copying, so no writer intervenes. */
enum al_rc al_rag_snapshot_write(struct al_rag *r, const char *dir, struct al_rag_snapshot *out, struct al_err *err);

struct al_rag_snapshot_src {
    const char *db, *faiss, *meta;       /* the files (blobs of the stored version) */
    const char *db_digest, *faiss_digest;/* checked while copied; NULL: not checked */
    const char *source;                  /* recorded in snapshot.json, e.g. "rag/manuals@sha256:..." */
};

/* Installs a snapshot as the read-only collection name under home (files
 * copied in, then the directory renamed into place). An existing read-only
 * collection of that name (an earlier import) is replaced; a local one is
 * AL_ERR_EXISTS. */
enum al_rc al_rag_snapshot_install(const char *home, const char *name, const struct al_rag_snapshot_src *src,
                                   struct al_err *err);

/* ---- export and import: the snapshot files on either side of a bundle ----
 * A snapshot travels as a signed bundle of the version rag/COLL:g<generation>
 * (src/bundle packs and ingests it; this module knows nothing of bundles).
 * The CLI joins the two: al_rag_export_prepare, then al_bundle_pack of its
 * files; al_bundle_ingest or al_rag_snapshot_resolve, then
 * al_rag_snapshot_import of the version. */

struct al_rag_export {
    char dir[AL_LIMIT_PATH];        /* a fresh directory under home/rag/ holding the files */
    struct al_rag_snapshot snap;    /* the files and the generation */
    char name[AL_LIMIT_NAME + 1];   /* the version's name: rag/COLL */
    char tag[32];                   /* its tag: g<generation> */
    const char *files[3];           /* snap.db, snap.faiss, snap.meta: the files to pack */
    bool made;                      /* dir exists: al_rag_export_release removes it */
};

/* Writes the snapshot of r (open writable) into a fresh directory
 * home/rag/.export-COLL-XXXXXX and names the version it is packed as. The
 * caller releases out with al_rag_export_release, also after a failure (it
 * removes what was written). AL_ERR_IO when the directory cannot be made;
 * the errors of al_rag_snapshot_write. */
enum al_rc al_rag_export_prepare(struct al_rag *r, const char *home, struct al_rag_export *out, struct al_err *err);
void al_rag_export_release(struct al_rag_export *e);

/* Resolves a stored snapshot: arg is rag/COLL[:TAG] or COLL[:TAG] ("rag/" is
 * put before a name without it). AL_ERR_NOT_FOUND as for any reference. */
enum al_rc al_rag_snapshot_resolve(struct al_repo *repo, const char *arg, struct al_version *out,
                                   struct al_err *err);

struct al_rag_imported {
    char coll[AL_LIMIT_NAME + 1];       /* the collection installed */
    char source[AL_LIMIT_REF + 80];     /* rag/COLL@sha256:... */
    char embed_ref[AL_LIMIT_REF + 1];   /* its embedding model, name@manifest */
    bool embedder_present;              /* that model is in repo's store */
    struct al_rag_info info;            /* the collection as installed */
};

/* Installs the stored snapshot version v of repo as the read-only collection
 * as (NULL: the name in v, rag/COLL) under home, its files copied from the
 * store with their digests checked (al_rag_snapshot_install). what is the
 * argument the user gave, for messages. AL_ERR_INVALID when v is not a
 * snapshot (its name lacks rag/, or a file is missing); the errors of
 * al_rag_snapshot_install and al_rag_open. out->info's strings live as long
 * as out. */
enum al_rc al_rag_snapshot_import(struct al_repo *repo, const char *home, const struct al_version *v,
                                  const char *as, const char *what, struct al_rag_imported *out, struct al_err *err);

#endif
