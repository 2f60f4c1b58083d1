/*
 * tu_httpd.h: a small real HTTP server on loopback (libmicrohttpd, a thread
 * per connection) for the unit tests of HTTP clients. The test's handler sees
 * each request (method, path, body, Authorization header) once its body has
 * arrived and fills the reply; a reply may go out in chunks of a few bytes,
 * so that a client's parser meets lines and events split across reads.
 * Header-only (static inline) so that only the tests that use it link it.
 */
#ifndef AL_TU_HTTPD_H
#define AL_TU_HTTPD_H

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

struct tu_req {
    const char *method, *url, *auth; /* auth: the Authorization header or NULL */
    const char *body;                /* NUL-terminated */
    size_t body_len;
};

struct tu_reply {
    int status;               /* 200 unless set */
    char *body;               /* malloc'd, taken by the server */
    size_t len;
    const char *content_type; /* NULL: none */
    const char *location;     /* a Location header, or NULL */
    const char *www_auth;     /* a WWW-Authenticate header, or NULL */
    size_t chunk;             /* > 0: sent chunked, this many bytes a chunk */
    size_t fake_len;          /* > 0: send this many bytes of 'x' instead of body */
};

typedef void tu_handler(void *ud, const struct tu_req *rq, struct tu_reply *rp);

struct tu_httpd {
    struct MHD_Daemon *d;
    tu_handler *fn;
    void *ud;
    int port;
    char url[64]; /* "http://127.0.0.1:PORT" */
};

struct tu_conn {
    char *body;
    size_t len;
};

struct tu_stream {
    char *body;
    size_t len, chunk, fake;
};

static inline ssize_t tu_httpd_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct tu_stream *s = cls;
    size_t total = s->fake ? s->fake : s->len;
    if (pos >= total)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = total - (size_t)pos;
    if (s->chunk && n > s->chunk)
        n = s->chunk;
    if (n > max)
        n = max;
    if (s->fake)
        memset(buf, 'x', n);
    else
        memcpy(buf, s->body + pos, n);
    return (ssize_t)n;
}

static inline void tu_httpd_stream_free(void *cls)
{
    struct tu_stream *s = cls;
    free(s->body);
    free(s);
}

static inline enum MHD_Result tu_httpd_access(void *cls, struct MHD_Connection *c, const char *url,
                                              const char *method, const char *version, const char *upload,
                                              size_t *upload_size, void **con_cls)
{
    struct tu_httpd *h = cls;
    struct tu_conn *cc = *con_cls;
    if (cc == NULL) {
        cc = calloc(1, sizeof *cc);
        *con_cls = cc;
        return cc ? MHD_YES : MHD_NO;
    }
    if (*upload_size) {
        char *nb = realloc(cc->body, cc->len + *upload_size + 1);
        if (!nb)
            return MHD_NO;
        memcpy(nb + cc->len, upload, *upload_size);
        cc->body = nb;
        cc->len += *upload_size;
        cc->body[cc->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    struct tu_req rq = {method, url, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
                        cc->body ? cc->body : "", cc->len};
    struct tu_reply rp = {.status = 200};
    h->fn(h->ud, &rq, &rp);
    struct tu_stream *s = calloc(1, sizeof *s);
    if (!s) {
        free(rp.body);
        return MHD_NO;
    }
    s->body = rp.body;
    s->len = rp.body ? (rp.len ? rp.len : strlen(rp.body)) : 0;
    s->chunk = rp.chunk;
    s->fake = rp.fake_len;
    uint64_t size = rp.chunk ? MHD_SIZE_UNKNOWN : (uint64_t)(s->fake ? s->fake : s->len);
    struct MHD_Response *r = MHD_create_response_from_callback(size, 64 * 1024, tu_httpd_read, s,
                                                               tu_httpd_stream_free);
    if (!r) {
        tu_httpd_stream_free(s);
        return MHD_NO;
    }
    if (rp.content_type)
        MHD_add_response_header(r, "Content-Type", rp.content_type);
    if (rp.location)
        MHD_add_response_header(r, "Location", rp.location);
    if (rp.www_auth)
        MHD_add_response_header(r, "WWW-Authenticate", rp.www_auth);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)rp.status, r);
    MHD_destroy_response(r);
    return ret;
}

static inline void tu_httpd_done(void *cls, struct MHD_Connection *c, void **con_cls,
                                 enum MHD_RequestTerminationCode toe)
{
    struct tu_conn *cc = *con_cls;
    if (cc) {
        free(cc->body);
        free(cc);
    }
    *con_cls = NULL;
}

/* Starts a server on 127.0.0.1 and a free port; fails the test when it cannot. */
static inline struct tu_httpd *tu_httpd_start(tu_handler *fn, void *ud)
{
    struct tu_httpd *h = calloc(1, sizeof *h);
    if (!h)
        fail_msg("out of memory");
    h->fn = fn;
    h->ud = ud;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0,
                            NULL, NULL, tu_httpd_access, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_NOTIFY_COMPLETED, tu_httpd_done, NULL, MHD_OPTION_END);
    if (!h->d)
        fail_msg("cannot start the test HTTP server on loopback");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || !info->port)
        fail_msg("the test HTTP server has no port");
    h->port = info->port;
    snprintf(h->url, sizeof h->url, "http://127.0.0.1:%d", h->port);
    return h;
}

static inline void tu_httpd_stop(struct tu_httpd *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}

/* A malloc'd copy of s, for tu_reply.body. */
static inline char *tu_strdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        fail_msg("out of memory");
    return d;
}

#endif
