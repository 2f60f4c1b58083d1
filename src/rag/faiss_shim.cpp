/*
 * faiss_shim.cpp: the C interface of vindex.h over FAISS, one of airlock's
 * two C++ files (engine/chat_shim.cpp is the other). Every entry point catches what FAISS throws and
 * turns it into an al_err; nothing C++ crosses the boundary.
 *
 * Layout of an index we make: IndexIDMap2 over IndexFlatIP or
 * IndexHNSWFlat(METRIC_INNER_PRODUCT). Searches go to the inner index and
 * positions are mapped to ids here. Flat searches may run concurrently; HNSW
 * searches take turns, because FAISS 1.7.3 reads the search width (efSearch)
 * from the index, not from per-call parameters.
 */
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>

#include <fcntl.h>
#include <omp.h>
#include <unistd.h>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/impl/HNSW.h>
#include <faiss/index_io.h>

#include "rag/vindex.h"

using idx_t = faiss::Index::idx_t;

struct al_vindex {
    faiss::Index *top = nullptr;     /* what is written: the id map, or a bare index */
    faiss::Index *inner = nullptr;   /* the flat or HNSW index that holds the vectors */
    faiss::IndexIDMap *idmap = nullptr; /* nullptr: ids are positions */
    faiss::IndexHNSW *hnsw = nullptr;
    std::string desc;
    std::mutex hnsw_lock; /* efSearch is index state in FAISS 1.7.3 */
};

static enum al_rc fail(struct al_err *err, enum al_rc rc, const char *what, const std::exception &e)
{
    return al_err_set(err, rc, "faiss: %s: %s", what, e.what());
}

extern "C" enum al_rc al_vindex_new(int dim, enum al_vindex_kind kind, int hnsw_m, int ef_construction,
                                    struct al_vindex **out, struct al_err *err)
{
    if (dim <= 0 || dim > 65536 || (kind == AL_VINDEX_HNSW && (hnsw_m < 4 || hnsw_m > 256)))
        return al_err_set(err, AL_ERR_USAGE, "faiss: bad index shape (dimension %d, M %d)", dim, hnsw_m);
    al_vindex *v = new (std::nothrow) al_vindex;
    if (!v)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory creating a vector index");
    try {
        if (kind == AL_VINDEX_HNSW) {
            auto *h = new faiss::IndexHNSWFlat(dim, hnsw_m, faiss::METRIC_INNER_PRODUCT);
            h->hnsw.efConstruction = ef_construction > 0 ? ef_construction : 80;
            v->inner = h;
            v->hnsw = h;
            v->desc = "hnsw";
        } else {
            v->inner = new faiss::IndexFlatIP(dim);
            v->desc = "flat";
        }
        auto *m = new faiss::IndexIDMap2(v->inner);
        m->own_fields = true;
        v->idmap = m;
        v->top = m;
    } catch (const std::exception &e) {
        delete v->inner;
        delete v;
        return fail(err, AL_ERR_NOMEM, "cannot create an index", e);
    }
    *out = v;
    return AL_OK;
}

extern "C" void al_vindex_free(struct al_vindex *v)
{
    if (!v)
        return;
    delete v->top; /* owns inner */
    delete v;
}

extern "C" enum al_rc al_vindex_add(struct al_vindex *v, size_t n, const float *x, const int64_t *ids,
                                    struct al_err *err)
{
    if (n == 0)
        return AL_OK;
    try {
        if (v->idmap) {
            static_assert(sizeof(idx_t) == sizeof(int64_t), "faiss ids are 64-bit");
            /* HNSW insertion in parallel depends on thread timing; one
             * thread makes the graph a function of the input alone. */
            int threads = omp_get_max_threads();
            if (v->hnsw)
                omp_set_num_threads(1);
            try {
                v->idmap->add_with_ids((idx_t)n, x, reinterpret_cast<const idx_t *>(ids));
            } catch (...) {
                omp_set_num_threads(threads);
                throw;
            }
            omp_set_num_threads(threads);
        } else {
            size_t base = (size_t)v->inner->ntotal;
            for (size_t i = 0; i < n; i++)
                if (ids[i] != (int64_t)(base + i))
                    return al_err_set(err, AL_ERR_USAGE,
                                      "faiss: this index has no id map: id %lld must be its position %zu",
                                      (long long)ids[i], base + i);
            v->inner->add((idx_t)n, x);
        }
    } catch (const std::exception &e) {
        return fail(err, AL_ERR_INTERNAL, "cannot add vectors", e);
    }
    return AL_OK;
}

extern "C" enum al_rc al_vindex_search(const struct al_vindex *v, const float *q, int k, int ef_search,
                                       float *scores, int64_t *ids, struct al_err *err)
{
    if (k <= 0)
        return al_err_set(err, AL_ERR_USAGE, "faiss: k must be positive");
    /* One query gains nothing from FAISS's OpenMP loops, and waking a team
     * of threads per query costs more than the search on a busy machine.
     * omp_set_num_threads acts on the calling thread only. */
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    struct restore {
        int n;
        ~restore() { omp_set_num_threads(n); }
    } restore_threads{threads};
    try {
        idx_t *labels = reinterpret_cast<idx_t *>(ids);
        if (v->hnsw) {
            /* FAISS 1.7.3's IndexHNSW ignores SearchParametersHNSW: the
             * width is set on the index, so HNSW searches take turns. */
            std::lock_guard<std::mutex> g(const_cast<al_vindex *>(v)->hnsw_lock);
            v->hnsw->hnsw.efSearch = ef_search > k ? ef_search : k;
            v->inner->search(1, q, k, scores, labels);
        } else {
            v->inner->search(1, q, k, scores, labels);
        }
        if (v->idmap)
            for (int i = 0; i < k; i++)
                if (labels[i] >= 0)
                    labels[i] = v->idmap->id_map[(size_t)labels[i]];
    } catch (const std::exception &e) {
        return fail(err, AL_ERR_INTERNAL, "search failed", e);
    }
    return AL_OK;
}

extern "C" enum al_rc al_vindex_get(const struct al_vindex *v, size_t pos, float *vec, int64_t *id,
                                    struct al_err *err)
{
    if (pos >= (size_t)v->inner->ntotal)
        return al_err_set(err, AL_ERR_USAGE, "faiss: position %zu is past the end", pos);
    try {
        v->inner->reconstruct((idx_t)pos, vec);
        *id = v->idmap ? v->idmap->id_map[pos] : (int64_t)pos;
    } catch (const std::exception &e) {
        return fail(err, AL_ERR_INVALID, "cannot read a vector back", e);
    }
    return AL_OK;
}

extern "C" size_t al_vindex_size(const struct al_vindex *v) { return (size_t)v->inner->ntotal; }
extern "C" int al_vindex_dim(const struct al_vindex *v) { return (int)v->inner->d; }
extern "C" enum al_vindex_kind al_vindex_kind(const struct al_vindex *v)
{
    return v->hnsw ? AL_VINDEX_HNSW : AL_VINDEX_FLAT;
}
extern "C" const char *al_vindex_describe(const struct al_vindex *v) { return v->desc.c_str(); }

extern "C" enum al_rc al_vindex_write(const struct al_vindex *v, const char *path, struct al_err *err)
{
    std::string tmp = std::string(path) + ".tmp";
    try {
        faiss::write_index(v->top, tmp.c_str());
    } catch (const std::exception &e) {
        unlink(tmp.c_str());
        return al_err_set(err, AL_ERR_IO, "faiss: cannot write '%s': %s", tmp.c_str(), e.what());
    }
    int fd = open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        unlink(tmp.c_str());
        return al_err_set(err, AL_ERR_IO, "cannot fsync '%s': %s", tmp.c_str(), strerror(e));
    }
    close(fd);
    if (rename(tmp.c_str(), path) != 0) {
        int e = errno;
        unlink(tmp.c_str());
        return al_err_set(err, AL_ERR_IO, "cannot rename '%s': %s", tmp.c_str(), strerror(e));
    }
    return AL_OK;
}

extern "C" enum al_rc al_vindex_read(const char *path, struct al_vindex **out, struct al_err *err)
{
    faiss::Index *idx = nullptr;
    try {
        idx = faiss::read_index(path);
    } catch (const std::exception &e) {
        return al_err_set(err, AL_ERR_INVALID, "faiss: cannot read '%s': %s", path, e.what());
    }
    std::unique_ptr<faiss::Index> owner(idx);
    al_vindex *v = new (std::nothrow) al_vindex;
    if (!v)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory reading a vector index");
    v->top = idx;
    v->idmap = dynamic_cast<faiss::IndexIDMap *>(idx);
    v->inner = v->idmap ? v->idmap->index : idx;
    v->hnsw = dynamic_cast<faiss::IndexHNSWFlat *>(v->inner);
    bool flat = dynamic_cast<faiss::IndexFlat *>(v->inner) != nullptr;
    if ((!flat && !v->hnsw) || v->inner->metric_type != faiss::METRIC_INNER_PRODUCT) {
        delete v;
        return al_err_set(err, AL_ERR_INVALID,
                          "faiss: '%s' is not an inner-product flat or HNSW-flat index (metric %d)", path,
                          (int)idx->metric_type);
    }
    if (v->idmap && v->idmap->id_map.size() != (size_t)v->inner->ntotal) {
        size_t n_ids = v->idmap->id_map.size();
        long long n_vec = (long long)v->inner->ntotal;
        delete v;
        return al_err_set(err, AL_ERR_CORRUPT, "faiss: '%s' has %zu ids for %lld vectors", path, n_ids, n_vec);
    }
    v->desc = v->hnsw ? "hnsw" : "flat";
    owner.release();
    *out = v;
    return AL_OK;
}
