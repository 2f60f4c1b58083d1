/*
 * routes_registry.c: `airlock serve --registry`, the read-only pull half of
 * the OCI distribution API for the server's own store under /v2/
 * (docs/internals/registry.md, "Every node a mirror").
 *
 *   GET  /v2/                                  version check
 *   GET|HEAD /v2/<name>/manifests/<tag|digest> a model manifest, a signature
 *                                              referrer, or the sha256-<hex>
 *                                              fallback index
 *   GET|HEAD /v2/<name>/blobs/<digest>         with Range; the store's file
 *                                              sent zero-copy (sendfile)
 *   GET  /v2/<name>/tags/list                 n and last, Link rel="next"
 *   GET  /v2/<name>/referrers/<digest>         the OCI 1.1 referrers API
 *
 * A repository is a model of the store, named exactly as the store names it
 * (`stories`, `team/stories`); its tags are the version's tags. With a
 * signing hook (serve --registry-sign KEY) each version is served as `airlock
 * push --sign` puts it in a registry: the signed manifest, its config and the
 * signature referrer, made once per version and kept in memory (struct
 * al_reg_view), both by the referrers API and under the fallback tag, so a
 * puller proves the signatures exactly as from a registry. Without it the
 * stored manifest is served as it is, with no referrer.
 *
 * Only what a version of the named model references is served: a digest or
 * tag of another model, or one that does not exist, is 404, and no path is
 * made from the URL: blobs are opened by the digest the manifest names, after
 * the URL's digest matched it byte for byte.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/http_int.h"

#include "core/limits.h"
#include "core/log.h"
#include "oci/oci.h"
#include "registry/registry.h"
#include "repo/repo.h"

#define REG_URL_MAX   512 /* a /v2/ URL, in bytes */
#define REG_VIEWS_MAX 256 /* signed views kept in memory; beyond, made per request */
#define REG_TAGS_MAX  4096 /* tags listed by tags/list */

struct view_entry {
    char version[AL_DIGEST_SIZE]; /* the stored version's manifest */
    struct al_reg_view v;
};

struct al_server_reg {
    pthread_mutex_t make_mu; /* held while a view is made: one pack at a time */
    pthread_mutex_t mu;      /* the entries; never held across a pack */
    struct view_entry *e;
    size_t n;
};

enum al_rc al_server_reg_new(struct al_server_reg **out, struct al_err *err)
{
    struct al_server_reg *g = calloc(1, sizeof *g);
    if (!g)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&g->mu, NULL);
    pthread_mutex_init(&g->make_mu, NULL);
    *out = g;
    return AL_OK;
}

void al_server_reg_free(struct al_server_reg *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        al_reg_view_release(&g->e[i].v);
    free(g->e);
    pthread_mutex_destroy(&g->mu);
    pthread_mutex_destroy(&g->make_mu);
    free(g);
}

/* ---- replies ---- */

static enum MHD_Result reply(struct al_http_req *h, int status, struct MHD_Response *r, const char *ctype)
{
    if (r)
        MHD_add_response_header(r, "Docker-Distribution-API-Version", "registry/2.0");
    return al_http_reply_response(h, status, r, ctype);
}

/* The distribution spec's error body: {"errors":[{"code","message"}]}. */
static enum MHD_Result reg_error(struct al_http_req *h, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum MHD_Result reg_error(struct al_http_req *h, int status, const char *code, const char *fmt, ...)
{
    char msg[AL_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (status >= 500)
        al_warn("%s: %d %s", h->id, status, msg);
    json_t *j = json_pack("{s:[{s:s, s:s}]}", "errors", "code", code, "message", msg);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s)
        return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    if (!r)
        free(s);
    return reply(h, status, r, "application/json");
}

static enum MHD_Result reg_rc(struct al_http_req *h, const struct al_err *err)
{
    int status = al_http_rc_status(err->rc);
    return reg_error(h, status == 404 ? 404 : status, status == 404 ? "NAME_UNKNOWN" : "UNKNOWN", "%s",
                     err->msg[0] ? err->msg : al_rc_name(err->rc));
}

/* Bytes from memory (copied), or the whole of a range of them. */
static struct MHD_Response *mem_response(const char *data, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return NULL;
    memcpy(copy, data, len);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, copy, MHD_RESPMEM_MUST_FREE);
    if (!r)
        free(copy);
    return r;
}

/* ---- URLs ---- */

static bool digest_valid(const char *d)
{
    if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + 64)
        return false;
    for (const char *p = d + 7; *p; p++)
        if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f'))
            return false;
    return true;
}

enum kind { K_MANIFEST, K_BLOB, K_TAGS, K_REFERRERS };

/* Splits "/v2/<name>/<what>/<ref>" (the last of the four markers wins, as a
 * name may hold '/'); false for any other shape. */
static bool parse_url(const char *url, enum kind *k, char name[AL_LIMIT_NAME + 1], char ref[AL_REG_TAG_MAX + 1])
{
    static const struct {
        const char *mark;
        enum kind k;
        bool tail;
    } marks[] = {{"/manifests/", K_MANIFEST, true}, {"/blobs/", K_BLOB, true},
                 {"/referrers/", K_REFERRERS, true}, {"/tags/list", K_TAGS, false}};
    const char *p = url + 4, *best = NULL;
    size_t bi = 0;
    for (size_t i = 0; i < sizeof marks / sizeof *marks; i++) {
        const char *f = NULL;
        for (const char *q = strstr(p, marks[i].mark); q; q = strstr(q + 1, marks[i].mark))
            f = q;
        if (f && (!best || f > best))
            best = f, bi = i;
    }
    if (!best || best == p || (size_t)(best - p) > AL_LIMIT_NAME)
        return false;
    const char *rest = best + strlen(marks[bi].mark);
    if (marks[bi].tail ? (!*rest || strlen(rest) > AL_REG_TAG_MAX || strchr(rest, '/')) : *rest != '\0')
        return false;
    memcpy(name, p, (size_t)(best - p));
    name[best - p] = '\0';
    snprintf(ref, AL_REG_TAG_MAX + 1, "%s", marks[bi].tail ? rest : "");
    *k = marks[bi].k;
    return al_name_valid(name);
}

/* ---- what a version serves ---- */

/* A deep copy of src into out (blobs NUL-terminated: manifests are read as text). */
static enum al_rc view_copy(const struct al_reg_view *src, struct al_reg_view *out, struct al_err *err)
{
    *out = *src;
    out->n = 0;
    if (!(out->blobs = calloc(src->n ? src->n : 1, sizeof *out->blobs)))
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < src->n; i++) {
        struct al_reg_blob *b = &out->blobs[out->n];
        *b = src->blobs[i];
        if (!(b->data = malloc(b->len + 1))) {
            al_reg_view_release(out);
            return al_err_set(err, AL_ERR_NOMEM, "out of memory");
        }
        memcpy(b->data, src->blobs[i].data, b->len);
        b->data[b->len] = '\0';
        out->n++;
    }
    return AL_OK;
}

/* Copies the kept view of version into out; false when none is kept. Under g->mu. */
static bool view_cached(struct al_server_reg *g, const char *version, struct al_reg_view *out, enum al_rc *rc,
                        struct al_err *err)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->e[i].version, version) == 0) {
            *rc = view_copy(&g->e[i].v, out, err);
            return true;
        }
    return false;
}

/* The view of v (a deep copy into out, the caller's): the signed one from
 * the hook, made once and kept, or without a hook the stored manifest alone.
 * A kept view is copied under the entries' lock only; a view being made
 * (a pack reads every file once) holds up the requests that need one made,
 * not those served from what is kept, and twenty pullers of a new version
 * wait for one pack. */
static enum al_rc version_view(struct al_http_req *h, struct al_repo *r, const struct al_version *v,
                               struct al_reg_view *out, struct al_err *err)
{
    struct al_server *s = h->srv;
    memset(out, 0, sizeof *out);
    if (!s->o.registry_view) {
        char *man = NULL;
        size_t len = 0;
        enum al_rc rc = al_repo_read_blob(r, v->manifest, AL_LIMIT_MANIFEST, &man, &len, err);
        if (rc)
            return rc;
        if (!(out->blobs = calloc(1, sizeof *out->blobs))) {
            free(man);
            return al_err_set(err, AL_ERR_NOMEM, "out of memory");
        }
        out->blobs[0] = (struct al_reg_blob){.data = man, .len = len};
        snprintf(out->blobs[0].digest, AL_DIGEST_SIZE, "%s", v->manifest);
        out->n = 1;
        snprintf(out->manifest, sizeof out->manifest, "%s", v->manifest);
        return AL_OK;
    }
    struct al_server_reg *g = s->reg;
    enum al_rc rc = AL_OK;
    pthread_mutex_lock(&g->mu);
    bool kept = view_cached(g, v->manifest, out, &rc, err);
    pthread_mutex_unlock(&g->mu);
    if (kept)
        return rc;
    pthread_mutex_lock(&g->make_mu);
    pthread_mutex_lock(&g->mu);
    kept = view_cached(g, v->manifest, out, &rc, err); /* made while this one waited */
    pthread_mutex_unlock(&g->mu);
    if (!kept) {
        char ref[AL_LIMIT_REF + 1];
        snprintf(ref, sizeof ref, "%s@%s", v->model, v->manifest);
        struct al_reg_view made = {.n = 0};
        if (!(rc = s->o.registry_view(s->o.registry_view_cls, ref, &made, err)))
            rc = view_copy(&made, out, err);
        pthread_mutex_lock(&g->mu);
        struct view_entry *ne = NULL;
        if (!rc && g->n < REG_VIEWS_MAX && (ne = realloc(g->e, (g->n + 1) * sizeof *ne)) != NULL) {
            g->e = ne;
            snprintf(ne[g->n].version, AL_DIGEST_SIZE, "%s", v->manifest);
            ne[g->n++].v = made; /* kept: made is the entry's now */
            memset(&made, 0, sizeof made);
        }
        pthread_mutex_unlock(&g->mu);
        al_reg_view_release(&made);
    }
    pthread_mutex_unlock(&g->make_mu);
    return rc;
}

/* The served manifest's media type (its "mediaType", else OCI's). */
static void manifest_type(const struct al_reg_blob *b, char out[AL_REG_MT_MAX + 1])
{
    json_t *j = json_loadb(b->data, b->len, 0, NULL);
    const char *mt = json_string_value(json_object_get(j, "mediaType"));
    snprintf(out, AL_REG_MT_MAX + 1, "%s", mt ? mt : AL_MT_OCI_MANIFEST);
    json_decref(j);
}

static bool has_tag(const char *tags, const char *tag)
{
    size_t n = strlen(tag);
    for (const char *p = tags; *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && strncmp(p, tag, n) == 0)
            return true;
        p += len + (c ? 1 : 0);
    }
    return false;
}

/* The referrers of the subject as an OCI image index (malloc'd JSON): the
 * signature referrer of the version whose served manifest is subject. */
static char *referrers_index(const struct al_reg_view *v, const char *subject)
{
    json_t *ms = json_array();
    const struct al_reg_blob *rb = v && v->referrer[0] && strcmp(v->manifest, subject) == 0
                                       ? al_reg_view_find(v, v->referrer)
                                       : NULL;
    if (rb)
        json_array_append_new(ms, json_pack("{s:s, s:s, s:I, s:s}", "mediaType", AL_MT_OCI_MANIFEST, "digest",
                                            rb->digest, "size", (json_int_t)rb->len, "artifactType",
                                            "application/vnd.airlock.signatures.v1+json"));
    json_t *ix = json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType", AL_MT_OCI_INDEX, "manifests", ms);
    char *s = ix ? json_dumps(ix, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(ix);
    return s;
}

/* Parses a single "bytes=A-B", "bytes=A-" or "bytes=-N" against size: true
 * with [*off, *off + *len) for a satisfiable one; *ignore for a header this
 * server answers whole (several ranges, another unit). */
static bool parse_range(const char *hdr, uint64_t size, uint64_t *off, uint64_t *len, bool *ignore)
{
    *ignore = false;
    if (strncmp(hdr, "bytes=", 6) != 0 || strchr(hdr, ',')) {
        *ignore = true;
        return true;
    }
    const char *p = hdr + 6;
    char *end;
    if (*p == '-') {
        if (!isdigit((unsigned char)p[1]))
            return false;
        unsigned long long n = strtoull(p + 1, &end, 10);
        if (*end || n == 0 || size == 0)
            return false;
        *len = n > size ? size : n;
        *off = size - *len;
        return true;
    }
    if (!isdigit((unsigned char)*p))
        return false;
    unsigned long long a = strtoull(p, &end, 10), b = size ? size - 1 : 0;
    if (*end != '-')
        return false;
    p = end + 1;
    if (*p) {
        if (!isdigit((unsigned char)*p))
            return false;
        b = strtoull(p, &end, 10);
        if (*end || b < a)
            return false;
        if (b >= size)
            b = size - 1;
    }
    if (a >= size)
        return false;
    *off = a;
    *len = b - a + 1;
    return true;
}

/* A blob's bytes (from memory, or the store's file at path) with Range. */
static enum MHD_Result send_blob(struct al_http_req *h, const char *digest, const struct al_reg_blob *mem,
                                 const char *path, uint64_t size)
{
    const char *range = MHD_lookup_connection_value(h->conn, MHD_HEADER_KIND, "Range");
    uint64_t off = 0, len = size;
    bool ignore = true;
    char cr[96] = "";
    if (range) {
        if (!parse_range(range, size, &off, &len, &ignore)) {
            struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
            snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
            if (r)
                MHD_add_response_header(r, "Content-Range", cr);
            return reply(h, 416, r, "application/octet-stream");
        }
        if (ignore)
            off = 0, len = size;
        else
            snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)off,
                     (unsigned long long)(off + len - 1), (unsigned long long)size);
    }
    struct MHD_Response *r = NULL;
    if (mem) {
        r = mem_response(mem->data + off, (size_t)len);
    } else {
        /* The path is the store's own for a digest the manifest names. */
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size != size) {
            if (fd >= 0)
                close(fd);
            return reg_error(h, 500, "UNKNOWN", "blob %s is missing or has another size in the store (airlock fsck)",
                             digest);
        }
        r = MHD_create_response_from_fd_at_offset64(len, fd, off); /* sendfile; MHD closes fd */
        if (!r)
            close(fd);
    }
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Docker-Content-Digest", digest);
    MHD_add_response_header(r, "Accept-Ranges", "bytes");
    if (cr[0])
        MHD_add_response_header(r, "Content-Range", cr);
    return reply(h, cr[0] ? 206 : 200, r, "application/octet-stream");
}

static enum MHD_Result send_manifest(struct al_http_req *h, const char *digest, const char *data, size_t len,
                                     const char *mt)
{
    struct MHD_Response *r = mem_response(data, len);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Docker-Content-Digest", digest);
    snprintf(h->model_digest, sizeof h->model_digest, "%s", digest);
    return reply(h, 200, r, mt);
}

static int tag_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* GET /v2/<name>/tags/list[?n=N&last=TAG]: the model's tags in lexical
 * order (the distribution spec's), those after last, at most n (and at most
 * REG_TAGS_MAX); when more follow, a Link header with rel="next" for the
 * next page, as the spec and distribution give it. n=0 is an empty list. */
static enum MHD_Result tags_list(struct al_http_req *h, const char *name, const struct al_version *vs, size_t nv)
{
    const char *ns = MHD_lookup_connection_value(h->conn, MHD_GET_ARGUMENT_KIND, "n");
    const char *last = MHD_lookup_connection_value(h->conn, MHD_GET_ARGUMENT_KIND, "last");
    size_t n = REG_TAGS_MAX;
    /* The page without n: REG_TAGS_MAX, or AIRLOCK_REGISTRY_TAGS_PAGE (the
     * tests use 2, so that clients must follow Link). */
    const char *pe = getenv("AIRLOCK_REGISTRY_TAGS_PAGE");
    if (pe && *pe) {
        unsigned long long v = strtoull(pe, NULL, 10);
        n = v >= 1 && v < REG_TAGS_MAX ? (size_t)v : REG_TAGS_MAX;
    }
    if (ns) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(ns, &end, 10);
        if (!*ns || *end || errno || ns[0] == '-' || ns[0] == '+')
            return reg_error(h, 400, "PAGINATION_NUMBER_INVALID", "n must be a number of tags, not '%.32s'", ns);
        n = v < REG_TAGS_MAX ? (size_t)v : REG_TAGS_MAX;
    }
    if (last && strlen(last) > AL_REG_TAG_MAX)
        return reg_error(h, 400, "TAG_INVALID", "last is over %d characters", AL_REG_TAG_MAX);
    /* Every tag of the model (comma-separated per version), copied out. */
    size_t total = 0;
    for (size_t i = 0; i < nv; i++)
        for (const char *p = vs[i].tags; *p; p++)
            total += *p == ',';
    total += nv;
    char **all = calloc(total + 1, sizeof *all);
    size_t na = 0;
    for (size_t i = 0; all && i < nv; i++)
        for (const char *p = vs[i].tags; *p;) {
            const char *c = strchr(p, ',');
            size_t len = c ? (size_t)(c - p) : strlen(p);
            if (len && (all[na] = strndup(p, len)) != NULL)
                na++;
            p += len + (c ? 1 : 0);
        }
    if (!all)
        return MHD_NO;
    qsort(all, na, sizeof *all, tag_cmp);
    json_t *tags = json_array();
    size_t i = 0;
    while (i < na && last && strcmp(all[i], last) <= 0)
        i++;
    for (; i < na && json_array_size(tags) < n; i++)
        json_array_append_new(tags, json_string(all[i]));
    char link[AL_LIMIT_NAME + AL_REG_TAG_MAX + 96] = "";
    size_t shown = json_array_size(tags);
    if (i < na && shown > 0)
        snprintf(link, sizeof link, "</v2/%s/tags/list?n=%zu&last=%s>; rel=\"next\"", name, n,
                 json_string_value(json_array_get(tags, shown - 1)));
    for (size_t k = 0; k < na; k++)
        free(all[k]);
    free(all);
    json_t *j = json_pack("{s:s, s:o}", "name", name, "tags", tags);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    struct MHD_Response *r = s ? MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE) : NULL;
    if (s && !r)
        free(s);
    if (r && link[0])
        MHD_add_response_header(r, "Link", link);
    return reply(h, 200, r, "application/json");
}

/* ---- the route ---- */

static enum MHD_Result serve_name(struct al_http_req *h, struct al_repo *repo, enum kind k, const char *name,
                                  const char *ref)
{
    struct al_err err = AL_ERR_INIT;
    struct al_version *vs = NULL;
    size_t nv = 0;
    enum MHD_Result res = MHD_NO;
    if (al_repo_list_versions(repo, name, &vs, &nv, &err))
        return reg_rc(h, &err);
    if (nv == 0) {
        free(vs);
        return reg_error(h, 404, "NAME_UNKNOWN", "repository '%s' is not a model of this store", name);
    }
    if (k == K_TAGS) {
        res = tags_list(h, name, vs, nv);
        free(vs);
        return res;
    }
    bool by_digest = strncmp(ref, "sha256:", 7) == 0;
    if (by_digest && !digest_valid(ref)) {
        free(vs);
        return reg_error(h, 400, k == K_BLOB ? "DIGEST_INVALID" : "MANIFEST_INVALID",
                         "'%s' is not a sha256 digest (sha256: and 64 lowercase hex digits)", ref);
    }
    if (k != K_MANIFEST && !by_digest) {
        free(vs);
        return reg_error(h, 400, "DIGEST_INVALID", "'%s' is not a digest", ref);
    }
    if (k == K_MANIFEST && !by_digest && !al_tag_valid(ref) && strncmp(ref, "sha256-", 7) != 0) {
        free(vs);
        return reg_error(h, 400, "TAG_INVALID", "'%s' is not a valid tag", ref);
    }
    /* The fallback tag sha256-<hex> names the subject whose referrers it lists. */
    char subject[AL_DIGEST_SIZE] = "";
    if (k == K_MANIFEST && strncmp(ref, "sha256-", 7) == 0) {
        if (strlen(ref) == 7 + 64)
            snprintf(subject, sizeof subject, "sha256:%.64s", ref + 7);
        if (!digest_valid(subject)) {
            free(vs);
            return reg_error(h, 404, "MANIFEST_UNKNOWN", "no manifest tagged '%s'", ref);
        }
    }
    for (size_t i = 0; i < nv; i++) {
        bool tagged = k == K_MANIFEST && !by_digest && !subject[0];
        if (tagged && !has_tag(vs[i].tags, ref))
            continue;
        struct al_reg_view v;
        if (version_view(h, repo, &vs[i], &v, &err)) {
            free(vs);
            return reg_rc(h, &err);
        }
        const struct al_reg_blob *mb = al_reg_view_find(&v, v.manifest);
        char mt[AL_REG_MT_MAX + 1];
        bool done = true;
        if (k == K_REFERRERS) {
            done = strcmp(v.manifest, ref) == 0;
            if (done) {
                char *s = referrers_index(&v, ref);
                struct MHD_Response *r =
                    s ? MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE) : NULL;
                if (s && !r)
                    free(s);
                res = reply(h, 200, r, AL_MT_OCI_INDEX);
            }
        } else if (subject[0]) {
            done = v.referrer[0] && strcmp(v.manifest, subject) == 0;
            if (done) {
                char *s = referrers_index(&v, subject);
                uint8_t raw[AL_SHA256_BYTES];
                char d[AL_DIGEST_SIZE] = "";
                if (s) {
                    al_sha256_buf(s, strlen(s), raw);
                    al_digest_format(raw, d);
                }
                res = s ? send_manifest(h, d, s, strlen(s), AL_MT_OCI_INDEX) : MHD_NO;
                free(s);
            }
        } else if (k == K_MANIFEST) {
            const struct al_reg_blob *b = by_digest ? NULL : mb;
            if (by_digest && (strcmp(ref, v.manifest) == 0 || (v.referrer[0] && strcmp(ref, v.referrer) == 0)))
                b = al_reg_view_find(&v, ref);
            done = b != NULL;
            if (done) {
                manifest_type(b, mt);
                res = send_manifest(h, b->digest, b->data, b->len, mt);
            }
        } else { /* K_BLOB: a blob the served manifests name, or the referrer's */
            const struct al_reg_blob *mem = NULL;
            uint64_t size = 0;
            bool named = false;
            struct al_oci_manifest m;
            struct al_err e2 = AL_ERR_INIT;
            if (mb && al_oci_manifest_parse(mb->data, mb->len, &m, &e2) == AL_OK) {
                if (strcmp(m.config_digest, ref) == 0)
                    named = true, size = m.config_size;
                for (size_t j = 0; j < m.n_layers && !named; j++)
                    if (strcmp(m.layers[j].digest, ref) == 0)
                        named = true, size = m.layers[j].size;
                al_oci_manifest_release(&m);
            }
            const struct al_reg_blob *rb = v.referrer[0] ? al_reg_view_find(&v, v.referrer) : NULL;
            if (!named && rb && strcmp(ref, v.manifest) != 0 && strcmp(ref, v.referrer) != 0 &&
                (mem = al_reg_view_find(&v, ref)) != NULL && strstr(rb->data, ref))
                named = true, size = mem->len;
            if (named && !mem && (mem = al_reg_view_find(&v, ref)) != NULL && mem->len != size)
                mem = NULL;
            done = named;
            if (done && mem) {
                res = send_blob(h, ref, mem, NULL, size);
            } else if (done) {
                char path[AL_LIMIT_PATH];
                if (al_repo_blob_path(repo, ref, path, sizeof path, &err))
                    res = reg_rc(h, &err);
                else
                    res = send_blob(h, ref, NULL, path, size);
            }
        }
        al_reg_view_release(&v);
        if (done) {
            free(vs);
            return res;
        }
    }
    free(vs);
    if (k == K_REFERRERS) { /* an unknown subject has no referrers */
        char *s = referrers_index(NULL, ref);
        struct MHD_Response *r = s ? MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE) : NULL;
        if (s && !r)
            free(s);
        return reply(h, 200, r, AL_MT_OCI_INDEX);
    }
    if (k == K_BLOB)
        return reg_error(h, 404, "BLOB_UNKNOWN", "no blob %s in repository '%s'", ref, name);
    return reg_error(h, 404, "MANIFEST_UNKNOWN", "no manifest '%s' in repository '%s'", ref, name);
}

enum MHD_Result al_server_route_registry(struct al_http_req *h, json_t *body)
{
    (void)body;
    struct al_server *s = h->srv;
    if (!s->o.registry || !s->reg || !s->o.home)
        return reg_error(h, 404, "UNSUPPORTED", "this server is no registry (airlock serve --registry)");
    if (strlen(h->url) > REG_URL_MAX)
        return reg_error(h, 414, "NAME_INVALID", "the URL is over the cap of %d bytes", REG_URL_MAX);
    if (strcmp(h->url, "/v2/") == 0)
        return reply(h, 200, mem_response("{}", 2), "application/json");
    enum kind k;
    char name[AL_LIMIT_NAME + 1], ref[AL_REG_TAG_MAX + 1];
    if (!parse_url(h->url, &k, name, ref))
        return reg_error(h, 404, "NAME_INVALID",
                         "unknown registry URL: %s (a repository is a model name of this store)", h->url);
    if ((k == K_TAGS || k == K_REFERRERS) && strcmp(h->method, "GET") != 0)
        return reg_error(h, 405, "UNSUPPORTED", "%s is not allowed on %s", h->method, h->url);
    enum MHD_Result res;
    if (!al_http_model_access(h, name, &res))
        return res;
    struct al_repo *repo = NULL;
    struct al_err err = AL_ERR_INIT;
    if (al_repo_open_read(s->o.home, &repo, &err))
        return reg_rc(h, &err);
    res = serve_name(h, repo, k, name, ref);
    al_repo_free(repo);
    return res;
}

bool al_server_registry_basic_key(struct al_http_req *h, char *out, size_t size)
{
    /* Registry clients (skopeo, airlock pull --user) send the API key as the
     * password of Basic credentials; the user name is not read. */
    const char *auth = MHD_lookup_connection_value(h->conn, MHD_HEADER_KIND, "Authorization");
    if (!auth || strncasecmp(auth, "Basic ", 6) != 0)
        return false;
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char dec[512];
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (const char *p = auth + 6; *p && *p != '='; p++) {
        const char *c = strchr(tbl, *p);
        if (!c || !*p || n >= sizeof dec - 1) {
            explicit_bzero(dec, sizeof dec);
            return false;
        }
        acc = (acc << 6) | (uint32_t)(c - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dec[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    dec[n] = '\0';
    const char *colon = memchr(dec, ':', n);
    bool ok = colon && strlen(colon + 1) + 1 <= size && strlen(colon + 1) == n - (size_t)(colon + 1 - dec);
    if (ok)
        snprintf(out, size, "%s", colon + 1);
    explicit_bzero(dec, sizeof dec);
    return ok;
}
