/*
 * cmd_rag.c: `airlock rag ...` (collections: create, add, rm, ls, info,
 * dump, attach, query) and `airlock ask`.
 */
#include <getopt.h>
#include <stdio.h>

#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "cli/cli.h"
#include "cli/cli_key.h"
#include "cli/cli_util.h"
#include "core/fs.h"
#include "core/limits.h"
#include "rag/rag.h"

int al_cmd_rag(int argc, char **argv);
int al_cmd_ask(int argc, char **argv);

static const char rag_usage[] =
    "usage: airlock rag <command> COLLECTION ...\n\n"
    "Collections of local documents, indexed for retrieval with a local embedding model.\n\n"
    "  create COLL --embed MODEL [--chunk-tokens N] [--overlap N] [--hnsw-threshold N]\n"
    "  add COLL PATH... [-v] [--threads N] [--follow-links]\n"
    "                                        index files and directories (text, Markdown, HTML, PDF)\n"
    "  rm COLL DOC...                        drop documents (by path as added, or digest)\n"
    "  query COLL QUESTION [-k N] [--mode hybrid|vector|bm25] [--json] [--text] [--vector FILE]\n"
    "        [--rerank REF [--rerank-candidates N]]\n"
    "                                        --rerank: a reranker REF rescores the first N fused\n"
    "                                        hits (default max(20, 2k)) and the k best are kept\n"
    "  query COLL --batch FILE [-k N] [--mode M]   one question a line, JSON Lines out\n"
    "  ls [COLL]                             list collections, or a collection's documents\n"
    "  info COLL [--json]                    embedding model, chunker, counts\n"
    "  dump COLL                             the chunk table as canonical TSV (for comparisons)\n"
    "  attach COLL --index FILE.faiss --chunks FILE.jsonl\n"
    "                                        use a FAISS index written elsewhere (Python's faiss)\n"
    "  export COLL -o BUNDLE.tar --sign KEY [--zstd] [--expires DATE] [--seq N] [--created TIME]\n"
    "                                        a signed snapshot bundle (model rag/COLL, tag g<generation>)\n"
    "  import BUNDLE|rag/COLL[:TAG] [--as COLL] [--allow-expired] [--allow-downgrade]\n"
    "                                        ingest a snapshot bundle (or take an ingested one) and\n"
    "                                        install it as a read-only collection\n\n"
    "Collections live in $AIRLOCK_HOME/rag/COLL/. See 'airlock ask' for answers with citations.\n";

static const char rag_add_usage[] =
    "usage: airlock rag add COLLECTION PATH... [-v] [--threads N] [--follow-links]\n\n"
    "Indexes files and directories (recursively) into the collection: text (.txt .text .rst),\n"
    "Markdown (.md .markdown), HTML (.html .htm .xhtml) and PDF; a file named explicitly is read\n"
    "as text unless it looks binary. Unchanged documents are left alone, changed ones replaced.\n\n"
    "  -v, --verbose      print each document's outcome (added, replaced, unchanged)\n"
    "  --threads N        threads of the embedding model (default 2)\n"
    "  --follow-links     follow links to files that lead out of a directory being added;\n"
    "                     by default only links whose target is inside it are followed\n"
    "                     (links to directories and hidden entries are never followed)\n\n"
    "A document that cannot be taken is named with the reason on stderr and skipped, and the\n"
    "others are still added: a file over a cap (64 MiB, AL_LIMIT_RAG_DOC_BYTES; 65536 chunks,\n"
    "AL_LIMIT_RAG_DOC_CHUNKS), text that is not UTF-8 (UTF-16 or UTF-32 with a byte order mark:\n"
    "convert it with iconv; binary data), a refused link, anything but a regular file.\n"
    "NUL and control bytes in text become spaces, invalid UTF-8 becomes '?'.\n\n"
    "exit status: 0 all taken; 4 some documents were skipped (the rest are in the collection);\n"
    "others as for every command (see 'airlock help').\n";

static int open_coll(const char *name, bool writable, struct al_rag **out, struct al_rag_info *info)
{
    char home[AL_LIMIT_PATH];
    al_cli_home(home, sizeof home);
    struct al_err err = AL_ERR_INIT;
    if (al_rag_open(home, name, writable, out, &err) || al_rag_info(*out, info, &err)) {
        al_rag_free(*out);
        *out = NULL;
        return al_cli_fail(&err);
    }
    return 0;
}

/* Opens the store and loads the reranker ref (NULL: none, *m stays NULL). */
static int load_reranker(const char *ref, int threads, struct al_engine_model **m)
{
    if (!ref)
        return 0;
    struct al_repo *repo = NULL;
    int st = al_cli_open_repo(false, &repo);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_rag_load_reranker(repo, ref, threads, m, &err);
    al_repo_free(repo);
    return rc ? al_cli_fail(&err) : 0;
}

/* Opens the store and loads the collection's embedding model. */
static int load_embedder(struct al_rag *r, int threads, struct al_engine_model **m)
{
    struct al_repo *repo = NULL;
    int st = al_cli_open_repo(false, &repo);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_rag_load_embedder(r, repo, threads, m, &err);
    al_repo_free(repo);
    return rc ? al_cli_fail(&err) : 0;
}

static int rag_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"embed", required_argument, NULL, 'e'}, {"chunk-tokens", required_argument, NULL, 'c'},
        {"overlap", required_argument, NULL, 'o'}, {"hnsw-threshold", required_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    struct al_rag_create_opts co = {.overlap_tokens = -1};
    int c, st = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, "e:c:o:H:", opts, NULL)) != -1) {
        switch (c) {
        case 'e': co.embed_ref = optarg; break;
        case 'c': st = al_cli_opt_i("rag create", "--chunk-tokens", optarg, 16, AL_LIMIT_RAG_CHUNK_TOKENS, &co.chunk_tokens); break;
        case 'o': st = al_cli_opt_i("rag create", "--overlap", optarg, 0, AL_LIMIT_RAG_CHUNK_TOKENS, &co.overlap_tokens); break;
        case 'H': st = al_cli_opt_i("rag create", "--hnsw-threshold", optarg, 1, 1 << 30, &co.hnsw_threshold); break;
        default: return al_cli_usage_error("rag create", "unknown option");
        }
        if (st)
            return st;
    }
    if (argc - optind != 1 || !co.embed_ref)
        return al_cli_usage_error("rag create", "needs COLLECTION and --embed MODEL");
    struct al_repo *repo = NULL;
    if ((st = al_cli_open_repo(false, &repo)))
        return st;
    struct al_err err = AL_ERR_INIT;
    struct al_rag_model m;
    struct al_engine_model *em = NULL;
    struct al_engine_model_info mi = {0};
    enum al_rc rc = al_rag_resolve_model(repo, co.embed_ref, &m, &err);
    al_repo_free(repo);
    if (!rc)
        rc = al_engine_model_load(m.path, m.digest, NULL, &em, &err);
    if (!rc)
        al_engine_model_info(em, &mi);
    al_engine_model_free(em); /* only its shape is wanted */
    int budget = co.chunk_tokens > 0 ? co.chunk_tokens : 200;
    if (!rc && budget + 64 > mi.n_ctx)
        rc = al_err_set(&err, AL_ERR_USAGE, "a chunk of %d tokens and its heading do not fit the model's context of "
                        "%d; use --chunk-tokens %d or less", budget, mi.n_ctx, mi.n_ctx - 64);
    if (!rc) {
        co.embed_model = m.name;
        co.embed_manifest = m.manifest;
        co.embed_digest = m.digest;
        co.dim = mi.n_embd;
        char home[AL_LIMIT_PATH];
        al_cli_home(home, sizeof home);
        rc = al_rag_create(home, argv[optind], &co, &err);
    }
    if (rc)
        return al_cli_fail(&err);
    printf("created collection %s: embeddings from %s@%s (%d dimensions, weights %s)\n", argv[optind], m.name,
           al_cli_short(m.manifest), co.dim, al_cli_short(m.digest));
    return AL_EXIT_OK;
}

static void add_cb(void *ud, const char *doc, const char *status, const char *why)
{
    bool verbose = *(bool *)ud;
    if (why)
        fprintf(stderr, "airlock: skipped '%s': %s\n", doc, why);
    else if (verbose)
        printf("%-9s %s\n", status, doc);
}

static int rag_add(int argc, char **argv)
{
    static const struct option opts[] = {
        {"verbose", no_argument, NULL, 'v'}, {"threads", required_argument, NULL, 't'},
        {"follow-links", no_argument, NULL, 'L'}, {NULL, 0, NULL, 0},
    };
    bool verbose = false;
    unsigned flags = AL_RAG_ADD_PROGRESS;
    int threads = 2, c, st;
    optind = 0;
    while ((c = getopt_long(argc, argv, "vt:", opts, NULL)) != -1) {
        if (c == 'v')
            verbose = true;
        else if (c == 'L')
            flags |= AL_RAG_ADD_FOLLOW_LINKS;
        else if (c == 't') {
            if ((st = al_cli_opt_threads("rag add", optarg, &threads)))
                return st;
        } else
            return al_cli_usage_error("rag add", "unknown option");
    }
    if (argc - optind < 2)
        return al_cli_usage_error("rag add", "needs COLLECTION and at least one PATH");
    struct al_rag *r = NULL;
    struct al_rag_info info;
    struct al_engine_model *m = NULL;
    struct al_err err = AL_ERR_INIT;
    struct al_rag_add_stats s;
    if ((st = open_coll(argv[optind], true, &r, &info)))
        return st;
    if (info.readonly) { /* before loading a model the store may not even hold */
        al_err_set(&err, AL_ERR_DENIED, "collection '%s' is read-only (imported or attached): it cannot change; "
                   "create a new collection to add documents", info.name);
        st = al_cli_fail(&err);
        goto out;
    }
    if ((st = load_embedder(r, threads, &m)))
        goto out;
    if (al_rag_add(r, m, (const char *const *)argv + optind + 1, (size_t)(argc - optind - 1), flags, add_cb,
                   &verbose, &s, &err)) {
        st = al_cli_fail(&err);
        goto out;
    }
    printf("%zu documents: %zu added, %zu replaced, %zu unchanged, %zu skipped; %zu chunks"
           " (extract+chunk %.1f s, embed %.1f s, store %.1f s)\n",
           s.files_seen, s.added, s.replaced, s.unchanged, s.skipped, s.chunks, s.ms_extract / 1e3,
           s.ms_embed / 1e3, s.ms_store / 1e3);
    /* skipped documents are malformed or over-limit input: the code of that
     * class, after the others were added */
    st = s.skipped ? AL_EXIT_INVALID : AL_EXIT_OK;
out:
    al_engine_model_free(m);
    al_rag_free(r);
    return st;
}

static int rag_rm(int argc, char **argv)
{
    if (argc < 3)
        return al_cli_usage_error("rag rm", "needs COLLECTION and at least one DOC");
    struct al_rag *r = NULL;
    struct al_rag_info info;
    int st = open_coll(argv[1], true, &r, &info);
    if (st)
        return st;
    for (int i = 2; i < argc; i++) {
        struct al_err err = AL_ERR_INIT;
        size_t n = 0;
        if (al_rag_rm(r, argv[i], &n, &err))
            st = al_cli_fail(&err);
        else
            printf("removed %s (%zu chunks)\n", argv[i], n);
    }
    al_rag_free(r);
    return st;
}

/* Reads a query vector: dim float32 values, native byte order. */
static int read_vector(const char *path, int dim, float **out)
{
    struct al_err err = AL_ERR_INIT;
    char *data = NULL;
    size_t len = 0;
    if (al_fs_read_file(path, (size_t)dim * sizeof(float) + 1, &data, &len, &err))
        return al_cli_fail(&err);
    if (len != (size_t)dim * sizeof(float)) {
        free(data);
        fprintf(stderr, "airlock: error: '%s' has %zu bytes, not %d float32 values\n", path, len, dim);
        return AL_EXIT_INVALID;
    }
    *out = (float *)(void *)data;
    return 0;
}

static void print_hits(const struct al_rag_hits *h, bool text)
{
    for (size_t i = 0; i < h->n; i++) {
        const struct al_rag_hit *x = &h->v[i];
        printf("%2zu. %.4f  %s", i + 1, x->score, x->doc);
        if (x->page)
            printf("  p.%d", x->page);
        if (x->heading[0])
            printf("  [%s]", x->heading);
        printf("  (bm25 #%d, vector #%d", x->bm25_rank, x->vector_rank);
        if (h->reranked)
            printf(", fused #%d, reranked %.4f", x->fused_rank, x->rerank);
        printf(")\n");
        if (text)
            printf("    %s\n", x->text);
    }
}

/* One question per line of path; one JSON object per line on stdout. */
static int query_batch(const char *coll, const char *path, struct al_rag_query_opts *qo, const char *rerank,
                       int threads)
{
    struct al_rag *r = NULL;
    struct al_rag_info info;
    struct al_engine_model *m = NULL;
    struct al_err err = AL_ERR_INIT;
    char *data = NULL;
    size_t len = 0;
    int st = open_coll(coll, false, &r, &info);
    if (st)
        return st;
    if (al_fs_read_file(path, 64u << 20, &data, &len, &err)) {
        st = al_cli_fail(&err);
        goto out;
    }
    if (qo->mode != AL_RAG_BM25 && (st = load_embedder(r, threads, &m)))
        goto out;
    if ((st = load_reranker(rerank, threads, &qo->reranker)))
        goto out;
    for (char *line = data, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (!*line)
            continue;
        struct al_rag_hits h = {0};
        if (al_rag_query(r, m, line, qo, &h, &err)) {
            st = al_cli_fail(&err);
            break;
        }
        json_t *j = al_rag_hits_json(&h, false);
        json_object_set_new(j, "question", json_string(line));
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(j);
        al_rag_hits_release(&h);
    }
out:
    free(data);
    al_engine_model_free(qo->reranker);
    al_engine_model_free(m);
    al_rag_free(r);
    return st;
}

static int rag_query(int argc, char **argv)
{
    static const struct option opts[] = {
        {"mode", required_argument, NULL, 'm'}, {"json", no_argument, NULL, 'j'}, {"text", no_argument, NULL, 'T'},
        {"vector", required_argument, NULL, 'V'}, {"threads", required_argument, NULL, 't'},
        {"batch", required_argument, NULL, 'b'}, {"rerank", required_argument, NULL, 'R'},
        {"rerank-candidates", required_argument, NULL, 'C'}, {NULL, 0, NULL, 0},
    };
    const char *batch = NULL, *rerank = NULL;
    struct al_rag_query_opts qo = {.k = 5};
    bool json = false, text = false;
    const char *vec_path = NULL;
    int threads = 2, c, st = 0;
    struct al_err err = AL_ERR_INIT;
    optind = 0;
    while ((c = getopt_long(argc, argv, "k:m:jTV:t:", opts, NULL)) != -1) {
        switch (c) {
        case 'k': st = al_cli_opt_i("rag query", "-k", optarg, 1, AL_LIMIT_RAG_K, &qo.k); break;
        case 'm':
            if (al_rag_mode_parse(optarg, &qo.mode, &err))
                return al_cli_usage_error("rag query", "%s", err.msg);
            break;
        case 'j': json = true; break;
        case 'T': text = true; break;
        case 'V': vec_path = optarg; break;
        case 'b': batch = optarg; break;
        case 'R': rerank = optarg; break;
        case 'C':
            st = al_cli_opt_i("rag query", "--rerank-candidates", optarg, 1, AL_LIMIT_RERANK_DOCS,
                              &qo.rerank_candidates);
            break;
        case 't': st = al_cli_opt_threads("rag query", optarg, &threads); break;
        default: return al_cli_usage_error("rag query", "unknown option");
        }
        if (st)
            return st;
    }
    if (argc - optind != 2 && !((vec_path || batch) && argc - optind == 1))
        return al_cli_usage_error("rag query", "needs COLLECTION and QUESTION");
    if (batch)
        return query_batch(argv[optind], batch, &qo, rerank, threads);
    const char *question = argc - optind == 2 ? argv[optind + 1] : NULL;
    struct al_rag *r = NULL;
    struct al_rag_info info;
    struct al_engine_model *m = NULL;
    float *vec = NULL;
    if ((st = open_coll(argv[optind], false, &r, &info)))
        return st;
    struct al_rag_hits h = {0};
    if ((st = load_reranker(rerank, threads, &qo.reranker)))
        goto out;
    enum al_rc rc;
    if (vec_path) {
        /* A vector made outside, taken to come from the collection's model. */
        if ((st = read_vector(vec_path, info.dim, &vec)))
            goto out;
        rc = al_rag_query_vec(r, vec, info.dim, info.embed_digest, question, &qo, &h, &err);
    } else {
        if (qo.mode != AL_RAG_BM25 && (st = load_embedder(r, threads, &m)))
            goto out;
        rc = al_rag_query(r, m, question, &qo, &h, &err);
    }
    if (rc) {
        st = al_cli_fail(&err);
        goto out;
    }
    if (json) {
        json_t *j = al_rag_hits_json(&h, true);
        char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
        if (s)
            printf("%s\n", s);
        else
            st = AL_EXIT_INTERNAL;
        free(s);
        json_decref(j);
    } else {
        print_hits(&h, text);
    }
out:
    al_rag_hits_release(&h);
    free(vec);
    al_engine_model_free(qo.reranker);
    al_engine_model_free(m);
    al_rag_free(r);
    return st;
}

static void doc_line(void *ud, const char *path, const char *digest, const char *format, int pages, size_t chunks)
{
    printf("%-40s %-9s %5d %6zu  %s\n", path, format, pages, chunks, al_cli_short(digest));
}

static int rag_ls(int argc, char **argv)
{
    char home[AL_LIMIT_PATH];
    al_cli_home(home, sizeof home);
    struct al_err err = AL_ERR_INIT;
    if (argc == 1) {
        char **names = NULL;
        size_t n = 0;
        if (al_rag_list(home, &names, &n, &err))
            return al_cli_fail(&err);
        for (size_t i = 0; i < n; i++) {
            struct al_rag *r = NULL;
            struct al_rag_info ci;
            if (!al_rag_open(home, names[i], false, &r, &err) && !al_rag_info(r, &ci, &err))
                printf("%-24s %6zu docs %8zu chunks  %s%s\n", names[i], ci.docs, ci.chunks, ci.embed_model,
                       ci.readonly ? "  (read-only)" : "");
            al_rag_free(r);
            free(names[i]);
        }
        free(names);
        return AL_EXIT_OK;
    }
    struct al_rag *r = NULL;
    struct al_rag_info info;
    int st = open_coll(argv[1], false, &r, &info);
    if (st)
        return st;
    printf("%-40s %-9s %5s %6s  %s\n", "DOCUMENT", "FORMAT", "PAGES", "CHUNKS", "DIGEST");
    if (al_rag_docs(r, doc_line, NULL, &err))
        st = al_cli_fail(&err);
    al_rag_free(r);
    return st;
}

static int rag_info(int argc, char **argv)
{
    if (argc < 2)
        return al_cli_usage_error("rag info", "needs COLLECTION");
    struct al_rag *r = NULL;
    struct al_rag_info info;
    int st = open_coll(argv[1], false, &r, &info);
    if (st)
        return st;
    const struct al_rag_info *i = &info;
    if (argc > 2 && strcmp(argv[2], "--json") == 0) {
        json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:i,s:i,s:i,s:s,s:I,s:I,s:I,s:b}", "name", i->name,
                              "embed_ref", i->embed_ref, "embed_model", i->embed_model, "embed_manifest",
                              i->embed_manifest, "embed_digest", i->embed_digest, "dim", i->dim, "chunker",
                              i->chunker, "chunk_tokens", i->chunk_tokens, "overlap_tokens", i->overlap_tokens,
                              "hnsw_threshold", i->hnsw_threshold, "index", i->index_kind, "generation",
                              (json_int_t)i->generation, "docs", (json_int_t)i->docs, "chunks",
                              (json_int_t)i->chunks, "readonly", i->readonly);
        char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(j);
    } else {
        printf("collection   %s%s\nembedding    %s@%s (%d dimensions)\nweights      %s\n"
               "chunker      %s, %d tokens, overlap %d\nindex        %s (HNSW from %d chunks)\n"
               "documents    %zu\nchunks       %zu\ngeneration   %" PRId64 "\n",
               i->name, i->readonly ? " (read-only)" : "", i->embed_model, al_cli_short(i->embed_manifest), i->dim,
               i->embed_digest, i->chunker, i->chunk_tokens, i->overlap_tokens, i->index_kind, i->hnsw_threshold,
               i->docs, i->chunks, i->generation);
    }
    al_rag_free(r);
    return AL_EXIT_OK;
}

static int rag_dump(int argc, char **argv)
{
    if (argc != 2)
        return al_cli_usage_error("rag dump", "needs COLLECTION");
    struct al_rag *r = NULL;
    struct al_rag_info info;
    int st = open_coll(argv[1], false, &r, &info);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    if (al_rag_dump(r, stdout, &err))
        st = al_cli_fail(&err);
    al_rag_free(r);
    return st;
}

static int rag_attach(int argc, char **argv)
{
    static const struct option opts[] = {
        {"index", required_argument, NULL, 'i'}, {"chunks", required_argument, NULL, 'c'}, {NULL, 0, NULL, 0},
    };
    const char *index = NULL, *chunks = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "i:c:", opts, NULL)) != -1) {
        if (c == 'i')
            index = optarg;
        else if (c == 'c')
            chunks = optarg;
        else
            return al_cli_usage_error("rag attach", "unknown option");
    }
    if (argc - optind != 1 || !index || !chunks)
        return al_cli_usage_error("rag attach", "needs COLLECTION, --index FILE and --chunks FILE");
    struct al_rag *r = NULL;
    struct al_rag_info info;
    int st = open_coll(argv[optind], true, &r, &info);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    if (al_rag_attach(r, index, chunks, &err) || al_rag_info(r, &info, &err))
        st = al_cli_fail(&err);
    else
        printf("attached %zu chunks of %zu documents to %s (read-only)\n", info.chunks, info.docs, info.name);
    al_rag_free(r);
    return st;
}

/* ---- snapshots: export and import (src/rag makes the files, src/bundle the bundle) ---- */

static int rag_export(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"sign", required_argument, NULL, 's'},
        {"zstd", no_argument, NULL, 'z'},         {"expires", required_argument, NULL, 'E'},
        {"seq", required_argument, NULL, 'S'},    {"created", required_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *key_paths[AL_BUNDLE_MAX_SIGS];
    size_t n_keys = 0;
    struct al_bundle_pack_opts po = {.progress = true};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "o:s:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 's':
            if (n_keys == AL_BUNDLE_MAX_SIGS)
                return al_cli_usage_error("rag export", "at most %d keys", AL_BUNDLE_MAX_SIGS);
            key_paths[n_keys++] = optarg;
            break;
        case 'z': po.zstd = true; break;
        case 'E': po.expires = optarg; break;
        case 'C': po.created = optarg; break;
        case 'S': {
            long long seq = 0;
            int st = al_cli_opt_int("rag export", "--seq", optarg, 1, INT64_MAX, &seq);
            if (st)
                return st;
            po.seq = seq;
            break;
        }
        default: return al_cli_usage_error("rag export", "unknown option");
        }
    }
    if (argc - optind != 1 || !out || n_keys == 0)
        return al_cli_usage_error("rag export", "needs COLLECTION, -o BUNDLE.tar and --sign KEY");
    struct al_rag *r = NULL;
    struct al_rag_info info;
    int st = open_coll(argv[optind], true, &r, &info);
    if (st)
        return st;
    char home[AL_LIMIT_PATH];
    al_cli_home(home, sizeof home);
    struct al_err err = AL_ERR_INIT;
    struct al_rag_export ex;
    struct al_mkey_sec *keys[AL_BUNDLE_MAX_SIGS] = {0};
    struct al_repo *repo = NULL;
    struct al_bundle_packed res;
    enum al_rc rc = al_rag_export_prepare(r, home, &ex, &err);
    al_rag_free(r);
    for (size_t i = 0; i < n_keys && !rc; i++)
        rc = al_cli_load_secret_key(key_paths[i], &keys[i], &err);
    if (rc)
        goto out;
    po.name = ex.name;
    po.tag = ex.tag;
    po.files = ex.files;
    po.n_files = 3;
    po.keys = keys;
    po.n_keys = n_keys;
    if (!po.created && !getenv("SOURCE_DATE_EPOCH"))
        po.created = ex.snap.changed; /* the same collection exports the same bytes */
    /* for the previous snapshot's digest, when this store has one */
    if (al_repo_open(home, false, &repo, NULL) != AL_OK)
        repo = NULL;
    if ((rc = al_bundle_pack(repo, &po, out, &res, &err)))
        goto out;
    char size[32];
    al_cli_human_size(res.bytes, size, sizeof size);
    printf("exported collection '%s' (generation %" PRId64 ", %zu documents, %zu chunks) as %s:%s\n"
           "  bundle    %s (%s)\n  digest    %s\n  manifest  %s\n  sequence  %" PRId64 "\n  created   %s\n",
           info.name, ex.snap.generation, info.docs, info.chunks, ex.name, ex.tag, out, size, res.bundle, res.manifest,
           res.seq, res.created);
    printf("\nnext: carry %s across; inside run 'airlock rag import %s' (the embedding model %s@%s\n"
           "must be in that store too)\n", out, out, info.embed_model, info.embed_manifest);
out:
    al_repo_free(repo);
    for (size_t i = 0; i < n_keys; i++)
        al_trust_key_free(keys[i]);
    al_rag_export_release(&ex);
    return rc ? al_cli_fail(&err) : AL_EXIT_OK;
}

static int rag_import(int argc, char **argv)
{
    static const struct option opts[] = {
        {"as", required_argument, NULL, 'a'},
        {"allow-expired", no_argument, NULL, 'E'},
        {"allow-downgrade", no_argument, NULL, 'D'},
        {NULL, 0, NULL, 0},
    };
    const char *as = NULL;
    struct al_bundle_opts bo = {.progress = true};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "a:", opts, NULL)) != -1) {
        switch (c) {
        case 'a': as = optarg; break;
        case 'E': bo.allow_expired = true; break;
        case 'D': bo.allow_downgrade = true; break;
        default: return al_cli_usage_error("rag import", "unknown option");
        }
    }
    if (argc - optind != 1)
        return al_cli_usage_error("rag import", "needs one BUNDLE or rag/COLLECTION[:TAG]");
    const char *arg = argv[optind];
    struct stat sb;
    bool is_bundle = stat(arg, &sb) == 0 && S_ISREG(sb.st_mode);
    struct al_repo *repo = NULL;
    int st = al_cli_open_repo(is_bundle, &repo);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    struct al_version v;
    enum al_rc rc = AL_OK;
    if (is_bundle) {
        /* The bundle goes through the same checks as a model's: signatures,
         * the trust policy for the name rag/COLL, expiry, sequence. */
        struct al_bundle_report rep;
        rc = al_bundle_ingest(repo, arg, &bo, &rep, &err);
        if (!rc) {
            v = rep.version;
            printf("%s %s:%s  %s\n", rep.existed ? "already present:" : "ingested", rep.version.model, rep.tag,
                   rep.version.manifest);
        } else {
            fprintf(stderr, "airlock: the bundle was refused; nothing was changed (see 'airlock verify %s')\n", arg);
        }
        al_bundle_report_release(&rep);
    } else {
        rc = al_rag_snapshot_resolve(repo, arg, &v, &err);
    }
    char home[AL_LIMIT_PATH];
    al_cli_home(home, sizeof home);
    struct al_rag_imported im;
    if (!rc)
        rc = al_rag_snapshot_import(repo, home, &v, as, arg, &im, &err);
    al_repo_free(repo);
    if (rc)
        return al_cli_fail(&err);
    printf("imported %s as the read-only collection '%s' (generation %" PRId64 ", %zu documents, %zu chunks)\n",
           im.source, im.coll, im.info.generation, im.info.docs, im.info.chunks);
    if (!im.embedder_present)
        fprintf(stderr, "airlock: warning: its embedding model %s is not in this store: bm25 queries work; "
                "vector and hybrid queries need it (ingest its bundle)\n", im.embed_ref);
    return AL_EXIT_OK;
}

int al_cmd_rag(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } subs[] = {
        {"create", rag_create}, {"add", rag_add}, {"rm", rag_rm}, {"query", rag_query}, {"ls", rag_ls},
        {"info", rag_info}, {"dump", rag_dump}, {"attach", rag_attach},
        {"export", rag_export}, {"import", rag_import},
    };
    if (argc >= 2 && strcmp(argv[1], "add") == 0 && al_cli_wants_help(argc - 1, argv + 1)) {
        printf("%s", rag_add_usage);
        return AL_EXIT_OK;
    }
    if (argc < 2 || al_cli_wants_help(argc, argv)) {
        printf("%s", rag_usage);
        return argc < 2 ? AL_EXIT_USAGE : AL_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(argv[1], subs[i].name) == 0)
            return subs[i].fn(argc - 1, argv + 1);
    return al_cli_usage_error("rag", "'%s' is not a rag command", argv[1]);
}
