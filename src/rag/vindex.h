/*
 * vindex.h: vectors in FAISS, through the C++ shim faiss_shim.cpp (one of
 * two C++ files, with engine/chat_shim.cpp). Internal to src/rag; no FAISS type appears here.
 *
 * An index maps 64-bit ids to L2-normalized float vectors of one dimension
 * and answers inner-product (cosine) nearest-neighbour searches. Two kinds:
 * exact (faiss IndexFlatIP) and approximate (IndexHNSWFlat, inner product),
 * each wrapped in an IndexIDMap2 so that ids are ours. Files are FAISS's own
 * format (faiss::write_index), so Python's faiss reads what we write and we
 * read what it writes, including a bare IndexFlatIP or IndexHNSWFlat whose
 * ids are the positions 0..n-1.
 *
 * No function throws: FAISS's exceptions become AL_ERR_* with its message.
 * Searching is thread-safe on an index nobody modifies (HNSW searches are
 * serialized inside).
 */
#ifndef AL_RAG_VINDEX_H
#define AL_RAG_VINDEX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "core/err.h"

struct al_vindex;

enum al_vindex_kind { AL_VINDEX_FLAT = 0, AL_VINDEX_HNSW = 1 };

/* A new empty index. hnsw_m: neighbours per node (HNSW only, e.g. 32);
 * ef_construction: search width while building (HNSW only). */
enum al_rc al_vindex_new(int dim, enum al_vindex_kind kind, int hnsw_m, int ef_construction,
                         struct al_vindex **out, struct al_err *err);
void al_vindex_free(struct al_vindex *v);

/* Adds n vectors (n * dim floats) with their ids. An index read from a
 * file without an id map only takes ids equal to its positions. */
enum al_rc al_vindex_add(struct al_vindex *v, size_t n, const float *x, const int64_t *ids,
                         struct al_err *err);

/* The k nearest to q (dim floats) by inner product, best first. Unused
 * slots get id -1. ef_search: HNSW search width (>= k; ignored by flat). */
enum al_rc al_vindex_search(const struct al_vindex *v, const float *q, int k, int ef_search,
                            float *scores, int64_t *ids, struct al_err *err);

/* Vector and id stored at position pos (0 <= pos < size). */
enum al_rc al_vindex_get(const struct al_vindex *v, size_t pos, float *vec, int64_t *id,
                         struct al_err *err);

size_t al_vindex_size(const struct al_vindex *v);
int al_vindex_dim(const struct al_vindex *v);
enum al_vindex_kind al_vindex_kind(const struct al_vindex *v);
/* "flat", "hnsw", or FAISS's name for another kind read from a file. */
const char *al_vindex_describe(const struct al_vindex *v);

/* Writes the index to path in FAISS's format (written to path.tmp, fsync'd,
 * renamed). */
enum al_rc al_vindex_write(const struct al_vindex *v, const char *path, struct al_err *err);

/* Reads a FAISS index file. Accepts IndexFlatIP and IndexHNSWFlat with
 * inner product, bare or in an IndexIDMap/IndexIDMap2; anything else (L2
 * metric, quantized codes) is AL_ERR_INVALID. */
enum al_rc al_vindex_read(const char *path, struct al_vindex **out, struct al_err *err);

#ifdef __cplusplus
}
#endif

#endif
