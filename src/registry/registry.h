/*
 * registry.h: a client of the OCI distribution spec v1.1 over libcurl (one
 * of two includers of curl.h; docs/internals/registry.md). It moves bytes
 * and knows the protocol; it decides nothing: what a pulled blob means, and
 * whether it may be kept, is the caller's (src/bundle/pull.c).
 *
 * - References: HOST[:PORT]/REPO[:TAG|@sha256:HEX] (al_reg_ref_parse).
 * - Transport: https (the system CAs, or --ca-file) or http (plain_http);
 *   redirects followed within the same request (at most 3); the
 *   Authorization header never leaves the registry's host.
 * - Authentication: on a 401 the WWW-Authenticate challenge is answered once:
 *   Basic with the credentials, or Bearer through the challenge's realm
 *   (service and scope as given), with the credentials when there are any
 *   (anonymous tokens otherwise). Credentials come from the options, else
 *   from the containers auth.json (${XDG_RUNTIME_DIR}/containers/auth.json,
 *   ~/.config/containers/auth.json, ~/.docker/config.json; "auth" entries
 *   only, no credential helpers).
 * - Uploads: HEAD first (the caller's choice), then one monolithic PUT up to
 *   chunk_size, else POST + PATCH (one stream, or chunks) + closing PUT.
 * - Downloads: exactly the size the descriptor gives (more is refused), fed
 *   to a sink; a dropped connection resumes with a Range request (at most
 *   AL_REG_RESUMES times) from the bytes already received.
 * Caps: manifests and indexes AL_LIMIT_MANIFEST, error bodies 64 KiB, a
 * token response 64 KiB, auth.json 1 MiB.
 */
#ifndef AL_REGISTRY_REGISTRY_H
#define AL_REGISTRY_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/hash.h"

#define AL_REG_HOST_MAX  255u
#define AL_REG_REPO_MAX  255u
#define AL_REG_TAG_MAX   128u
#define AL_REG_CHUNK     (256u << 20) /* default: blobs up to this go in one PUT; larger in one streamed PATCH */
#define AL_REG_RESUMES   3            /* Range requests after a dropped download */
#define AL_REG_MT_MAX    128u

#define AL_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define AL_MT_OCI_INDEX    "application/vnd.oci.image.index.v1+json"
#define AL_MT_OCI_EMPTY    "application/vnd.oci.empty.v1+json"
#define AL_MT_DOCKER_V2    "application/vnd.docker.distribution.manifest.v2+json"

struct al_reg_ref {
    char host[AL_REG_HOST_MAX + 1];   /* host[:port] */
    char repo[AL_REG_REPO_MAX + 1];
    char tag[AL_REG_TAG_MAX + 1];     /* "" when a digest is given; "latest" when neither */
    char digest[AL_DIGEST_SIZE];      /* "" unless @sha256:... */
};

/* Parses HOST[:PORT]/REPO[:TAG|@sha256:HEX]. The repository follows the
 * distribution grammar (lowercase path components of [a-z0-9._-]). */
enum al_rc al_reg_ref_parse(const char *s, struct al_reg_ref *ref, struct al_err *err);

struct al_reg_opts {
    bool plain_http;        /* http:// instead of https:// */
    const char *ca_file;    /* PEM CA bundle for TLS, or NULL (the system's) */
    const char *cert_file;  /* PEM client certificate for mTLS, or NULL; AL_ERR_IO at open when unreadable */
    const char *key_file;   /* its PEM private key (unencrypted), or NULL: in cert_file */
    const char *user;       /* with password: explicit credentials */
    const char *password;
    const char *auth_file;  /* an auth.json to read credentials from; NULL: the default places */
    uint64_t chunk_size;    /* 0: one PUT up to AL_REG_CHUNK, else one streamed PATCH; N: PUT up to N, else
                               PATCH chunks of N bytes with Content-Range */
    long timeout_s;         /* per request without progress; 0: 60 s of silence aborts */
};

struct al_reg;

enum al_rc al_reg_open(const struct al_reg_ref *ref, const struct al_reg_opts *o, struct al_reg **out,
                       struct al_err *err);
void al_reg_free(struct al_reg *r);
/* Where the credentials came from: "options", an auth file's path, or "none". */
const char *al_reg_cred_source(const struct al_reg *r);

/* GET /v2/: AL_OK when the registry answers with 200 (after authenticating). */
enum al_rc al_reg_ping(struct al_reg *r, struct al_err *err);

/* HEAD the blob: *exists true on 200. */
enum al_rc al_reg_blob_exists(struct al_reg *r, const char *digest, bool *exists, struct al_err *err);

/* Uploads size bytes of fd from offset 0 as the blob digest (the registry
 * checks the digest). *done, when not NULL, gets the bytes sent so far
 * (a progress hook is core/progress.h's, p may be NULL). */
struct al_progress;
enum al_rc al_reg_blob_put_fd(struct al_reg *r, const char *digest, int fd, uint64_t size, struct al_progress *p,
                              struct al_err *err);
enum al_rc al_reg_blob_put_mem(struct al_reg *r, const char *digest, const void *data, size_t len,
                               struct al_err *err);

/* PUT a manifest (or index) under reference (a tag or the digest). */
enum al_rc al_reg_manifest_put(struct al_reg *r, const char *reference, const char *media_type, const void *data,
                               size_t len, struct al_err *err);

/* GET a manifest or index by tag or digest, capped at AL_LIMIT_MANIFEST.
 * AL_ERR_NOT_FOUND on 404. *body is malloc'd (NUL-terminated). digest gets
 * the SHA-256 of the bytes received (never the server's word). */
enum al_rc al_reg_manifest_get(struct al_reg *r, const char *reference, char **body, size_t *len,
                               char media_type[AL_REG_MT_MAX + 1], char digest[AL_DIGEST_SIZE], struct al_err *err);

/* Receives a blob's bytes in order. */
typedef enum al_rc al_reg_sink_fn(void *ud, const void *data, size_t len, struct al_err *err);

/* GET the blob: exactly size bytes go to sink; a longer body is refused
 * (AL_ERR_VERIFY), a shorter one after AL_REG_RESUMES resumes is AL_ERR_IO.
 * The caller hashes (the sink) and checks the digest. */
enum al_rc al_reg_blob_get(struct al_reg *r, const char *digest, uint64_t size, al_reg_sink_fn *sink, void *ud,
                           struct al_err *err);

/* The referrers of digest as an OCI image index: the referrers API
 * (GET /v2/<name>/referrers/<digest>) when it answers with an index, else the
 * tag-schema fallback (the manifest tagged sha256-<hex>). AL_ERR_NOT_FOUND
 * when neither has any. *api tells which answered. */
enum al_rc al_reg_referrers(struct al_reg *r, const char *digest, char **body, size_t *len, bool *api,
                            struct al_err *err);

/* The fallback tag of a subject digest: "sha256-<hex>". */
void al_reg_referrers_tag(const char *digest, char out[AL_REG_TAG_MAX + 1]);

/* ---- a registry's view of a stored version, in memory ----
 * What `airlock push --sign` would put in a registry for one version, kept in
 * memory so that `airlock serve --registry` serves it (bundle/push.c fills
 * it, server/routes_registry.c serves it): the signed model manifest, its
 * config, the signature referrer's manifest and its layers, the empty
 * config. The layers of the model stay in the store. */
struct al_reg_blob {
    char digest[AL_DIGEST_SIZE];
    char *data; /* malloc'd */
    size_t len;
};
struct al_reg_view {
    char manifest[AL_DIGEST_SIZE]; /* the signed model manifest (one of blobs) */
    char referrer[AL_DIGEST_SIZE]; /* the signature referrer's manifest (one of blobs) */
    struct al_reg_blob *blobs;     /* malloc'd, n of them */
    size_t n;
};
/* The view's blob of digest, or NULL (borrowed, as long as v). */
const struct al_reg_blob *al_reg_view_find(const struct al_reg_view *v, const char *digest);
/* Frees the blobs; v is empty after. */
void al_reg_view_release(struct al_reg_view *v);

#endif
