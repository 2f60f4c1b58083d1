/*
 * attach.c: a FAISS index built elsewhere (Python's faiss.write_index on an
 * ingest host, say) plus its chunk table, attached to an empty collection.
 *
 * The index file is copied byte for byte and becomes the collection's vector
 * index, so vector queries answer exactly as the writer's faiss would. The
 * vectors are also read back from it into chunks.db (the collection's
 * truth, and what an export carries). The collection becomes read-only: its
 * chunks were not made by our chunker, and new ones could not be added to an
 * index we did not build.
 */
#include "rag/rag_int.h"

#include "core/fs.h"

struct row {
    int64_t id;
    char *doc;
    struct al_rag_chunk c;
};

static int cmp_row_doc(const void *pa, const void *pb)
{
    const struct row *a = pa, *b = pb;
    int c = strcmp(a->doc, b->doc);
    return c ? c : (a->id < b->id ? -1 : a->id > b->id);
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static enum al_rc parse_table(const char *data, size_t len, struct row **rows, size_t *n, struct al_err *err)
{
    size_t cap = 0;
    enum al_rc rc = AL_OK;
    size_t lineno = 0;
    for (size_t pos = 0; pos < len && !rc;) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t e = nl ? (size_t)(nl - data) : len;
        lineno++;
        if (e > pos) {
            json_error_t je;
            json_t *o = json_loadb(data + pos, e - pos, JSON_REJECT_DUPLICATES, &je);
            json_t *id = o ? json_object_get(o, "id") : NULL;
            if (!json_is_object(o) || !json_is_integer(id) || !json_is_string(json_object_get(o, "doc")) ||
                !json_is_string(json_object_get(o, "text"))) {
                rc = al_err_set(err, AL_ERR_INVALID, "chunk table line %zu: needs an object with id, doc and text%s%s",
                                lineno, o ? "" : ": ", o ? "" : je.text);
            } else if (*n == cap) {
                cap = cap ? cap * 2 : 1024;
                struct row *v = realloc(*rows, cap * sizeof *v);
                if (!v)
                    rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
                else
                    *rows = v;
            }
            if (!rc) {
                struct row *r = &(*rows)[(*n)++];
                memset(r, 0, sizeof *r);
                r->id = json_integer_value(id);
                r->doc = strdup(jstr(o, "doc"));
                r->c.text = strdup(jstr(o, "text"));
                r->c.heading = strdup(jstr(o, "heading"));
                r->c.page = (int)json_integer_value(json_object_get(o, "page"));
                r->c.start = (uint64_t)json_integer_value(json_object_get(o, "start"));
                r->c.end = (uint64_t)json_integer_value(json_object_get(o, "end"));
                if (!r->doc || !r->c.text || !r->c.heading)
                    rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
            }
            json_decref(o);
        }
        pos = nl ? e + 1 : len;
    }
    return rc;
}

enum al_rc al_rag_attach(struct al_rag *r, const char *index_path, const char *table_path, struct al_err *err)
{
    enum al_rc rc = al_rag__lock(r, err);
    if (rc)
        return rc;
    struct al_vindex *vi = NULL;
    char *table = NULL, *ixdata = NULL;
    size_t tlen = 0, ixlen = 0, n = 0;
    struct row *rows = NULL;
    float *vec = NULL;
    if (r->info.chunks || r->info.docs || r->info.readonly) {
        rc = al_err_set(err, AL_ERR_EXISTS, "collection '%s' is not empty: attach needs a new collection", r->name);
        goto out;
    }
    if ((rc = al_vindex_read(index_path, &vi, err)) ||
        (rc = al_fs_read_file(table_path, AL_LIMIT_RAG_TABLE_BYTES, &table, &tlen, err)) ||
        (rc = al_fs_read_file(index_path, AL_LIMIT_RAG_TABLE_BYTES, &ixdata, &ixlen, err)) ||
        (rc = parse_table(table, tlen, &rows, &n, err)))
        goto out;
    size_t nv = al_vindex_size(vi);
    if (al_vindex_dim(vi) != r->info.dim) {
        rc = al_err_set(err, AL_ERR_INVALID, "'%s' holds vectors of %d dimensions; the collection's model makes %d",
                        index_path, al_vindex_dim(vi), r->info.dim);
        goto out;
    }
    if (n != nv) {
        rc = al_err_set(err, AL_ERR_INVALID, "'%s' has %zu rows for %zu vectors", table_path, n, nv);
        goto out;
    }
    qsort(rows, n, sizeof *rows, cmp_row_doc);
    if (!(vec = malloc((size_t)r->info.dim * sizeof *vec))) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = al_rag_db_begin(r->db, err)))
        goto out;
    /* each document's digest: SHA-256 over its chunk texts in id order */
    for (size_t i = 0, j; i < n && !rc; i = j) {
        struct al_sha256 *h = al_sha256_new();
        for (j = i; j < n && strcmp(rows[j].doc, rows[i].doc) == 0; j++)
            if (h)
                al_sha256_update(h, rows[j].c.text, strlen(rows[j].c.text) + 1);
        uint8_t raw[AL_SHA256_BYTES];
        char digest[AL_DIGEST_SIZE];
        if (!h) {
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
            break;
        }
        al_sha256_final(h, raw);
        al_sha256_free(h);
        al_digest_format(raw, digest);
        struct al_rag_docrow d = {0, rows[i].doc, digest, "attached", 0, 0};
        int64_t doc_id;
        rc = al_rag_db_doc_insert(r->db, &d, &doc_id, err);
        for (size_t k = i; k < j && !rc; k++) {
            char idsrc[256];
            int len = snprintf(idsrc, sizeof idsrc, "%s\n%" PRIu64 "\n%" PRIu64 "\nattached", digest, rows[k].c.start,
                               rows[k].c.end);
            al_sha256_buf(idsrc, (size_t)len, raw);
            al_hex(raw, sizeof raw, rows[k].c.id);
            rc = al_rag_db_chunk_insert(r->db, doc_id, rows[k].id, &rows[k].c, NULL, r->info.dim, NULL, err);
        }
    }
    /* the vectors, read back from the index by position */
    for (size_t p = 0; p < nv && !rc; p++) {
        int64_t id;
        if (!(rc = al_vindex_get(vi, p, vec, &id, err)))
            rc = al_rag_db_set_vector(r->db, id, vec, r->info.dim, err);
    }
    int64_t gen;
    char path[AL_LIMIT_PATH];
    if (!rc && !(rc = al_rag_db_meta_set(r->db, "readonly", "1", err)) &&
        !(rc = al_rag_db_meta_set(r->db, "chunker", "attached", err)) &&
        !(rc = al_rag__bump_generation(r, &gen, err)) &&
        !(rc = al_path_fmt(path, sizeof path, err, "%s/vectors-%" PRId64 ".faiss", r->dir, gen)))
        rc = al_fs_write_atomic(path, ixdata, ixlen, err);
    if (!rc)
        rc = al_rag_db_commit(r->db, err);
    if (rc)
        al_rag_db_rollback(r->db);
    else
        rc = al_rag__load_info(r, err);
out:
    for (size_t i = 0; i < n; i++) {
        free(rows[i].doc);
        free(rows[i].c.text);
        free(rows[i].c.heading);
    }
    free(rows);
    free(vec);
    free(table);
    free(ixdata);
    al_vindex_free(vi);
    al_rag__unlock(r);
    return rc;
}
