/*
 * http.c: the daemon, listening, routing, the access check and the finish
 * path. Every request passes through exactly one finish path
 * (on_completed, libmicrohttpd's request-completed callback): metrics, the
 * audit record, the log line, the model lease and the concurrency count are
 * all settled there and nowhere else.
 */
#include "server/http_int.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/limits.h"
#include "core/log.h"
#include "access/access.h"
#include "audit/audit.h"
#include "server/audit_queue.h"

/* Audit records waiting for the writer before a finishing request waits. */
#define AL_SERVER_AUDIT_QUEUE 1024
/* Seconds after the drain timeout for cancelled requests to send their 503. */
#define AL_SERVER_CANCEL_GRACE_S 5

double al_http_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void al_server_opts_default(struct al_server_opts *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = AL_SERVER_DEFAULT_PORT;
    o->socket_mode = 0660;
    o->stream_interval_ms = 5;
    o->limits = (struct al_server_limits){
        .body_bytes = 4u << 20, .prompt_tokens = 32768, .max_tokens = 4096, .concurrent = 64, .timeout_s = 600,
        .receive_timeout_s = 30};
}

/* ---- the one table from al_rc to HTTP ---- */

/* status, OpenAI's error type, and the error code when it is not the al_rc's
 * name. Authentication (401) and integrity (VERIFY, CORRUPT: 500) are
 * different codes, so no caller needs a case of its own. */
static const struct {
    int status;
    const char *type;
    const char *code;
} rc_http[AL_RC_COUNT] = {
    [AL_OK] = {200, NULL, NULL},
    [AL_ERR_USAGE] = {400, "invalid_request_error", NULL},
    [AL_ERR_NOT_FOUND] = {404, "invalid_request_error", NULL},
    [AL_ERR_EXISTS] = {409, "invalid_request_error", NULL},
    [AL_ERR_IO] = {500, "server_error", NULL},
    [AL_ERR_CORRUPT] = {500, "server_error", NULL},
    [AL_ERR_INVALID] = {400, "invalid_request_error", NULL},
    [AL_ERR_LIMIT] = {400, "invalid_request_error", NULL},
    [AL_ERR_VERIFY] = {500, "server_error", NULL}, /* a model blob that fails its digest */
    [AL_ERR_DENIED] = {403, "permission_error", NULL},
    [AL_ERR_BUSY] = {503, "server_error", NULL},
    [AL_ERR_NOMEM] = {500, "server_error", NULL},
    [AL_ERR_INTERNAL] = {500, "server_error", NULL},
    [AL_ERR_AUTH] = {401, "invalid_request_error", "invalid_api_key"},
};

int al_http_rc_status(enum al_rc rc)
{
    return (unsigned)rc < AL_RC_COUNT ? rc_http[rc].status : 500;
}

static enum MHD_Result queue(struct al_http_req *h, int status, struct MHD_Response *r, const char *ctype)
{
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "X-Request-Id", h->id);
    if (status == 503)
        MHD_add_response_header(r, "Retry-After", "1");
    if (status == 401 && h->registry) /* what skopeo and airlock pull answer with credentials */
        MHD_add_response_header(r, "WWW-Authenticate", "Basic realm=\"airlock\"");
    if (h->close)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    al_http_cors_headers(h, r);
    h->status = status;
    enum MHD_Result ret = MHD_queue_response(h->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result al_http_reply_response(struct al_http_req *h, int status, struct MHD_Response *r, const char *ctype)
{
    return queue(h, status, r, ctype);
}

enum MHD_Result al_http_reply_text(struct al_http_req *h, int status, const char *ctype, const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return MHD_NO;
    memcpy(copy, text, len);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, copy, MHD_RESPMEM_MUST_FREE);
    if (!r)
        free(copy);
    return queue(h, status, r, ctype);
}

enum MHD_Result al_http_reply_json(struct al_http_req *h, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s && status != 500) /* a value jansson refused, or out of memory: still an answer */
        return al_http_reply_error(h, 500, "server_error", NULL, "encode", "the response could not be encoded as JSON");
    if (!s)
        return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    if (!r)
        free(s);
    return queue(h, status, r, "application/json");
}

static json_t *error_body(const char *type, const char *param, const char *code, const char *msg)
{
    return json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", msg, "type", type, "param", param, "code",
                     code);
}

enum MHD_Result al_http_reply_error(struct al_http_req *h, int status, const char *type, const char *param,
                                    const char *code, const char *fmt, ...)
{
    char msg[AL_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (status >= 500)
        al_warn("%s: %d %s", h->id, status, msg);
    if (h->ollama) /* Ollama's clients read a string */
        return al_http_reply_json(h, status, json_pack("{s:s}", "error", msg));
    return al_http_reply_json(h, status, error_body(type, param, code, msg));
}

enum MHD_Result al_http_reply_rc(struct al_http_req *h, const struct al_err *err, const char *param)
{
    enum al_rc rc = (unsigned)err->rc < AL_RC_COUNT && err->rc != AL_OK ? err->rc : AL_ERR_INTERNAL;
    const char *code = rc_http[rc].code ? rc_http[rc].code : al_rc_name(rc);
    if (rc == AL_ERR_NOT_FOUND && param && strcmp(param, "model") == 0)
        code = "model_not_found";
    return al_http_reply_error(h, al_http_rc_status(rc), rc_http[rc].type, param, code, "%s",
                               err->msg[0] ? err->msg : al_rc_name(rc));
}

/* ---- CORS ----
 * Off unless the operator names origins (serve --cors-origins): a browser
 * page of an allowed origin may call the API (its preflight answered, every
 * response carrying Access-Control-Allow-Origin); any other origin gets no
 * CORS header, so the browser keeps the answer from the page, and its
 * preflight is refused (403). The API key check is unchanged: a preflight
 * carries no key and is answered before it, the request that follows needs
 * one as usual. */

/* Parses "a,b,c" (or "*") into s->cors; AL_ERR_USAGE for an entry that is not
 * scheme://host[:port] with nothing after. */
static enum al_rc cors_parse(struct al_server *s, const char *list, struct al_err *err)
{
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        while (len && (*p == ' ')) {
            p++;
            len--;
        }
        size_t n = len;
        while (n && p[n - 1] == ' ')
            n--;
        if (n == 1 && *p == '*') {
            s->cors_any = true;
        } else {
            const char *sep = n > 3 ? memmem(p, n, "://", 3) : NULL;
            const char *host = sep ? sep + 3 : NULL;
            bool ok = sep && sep > p && host < p + n && n <= AL_SERVER_CORS_ORIGIN_MAX;
            for (const char *c = p; ok && c < p + n; c++)
                ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                     strchr(".-:/[]", *c);
            if (ok && memchr(host, '/', (size_t)(p + n - host)))
                ok = false; /* a path: an origin has none */
            if (!ok)
                return al_err_set(err, AL_ERR_USAGE,
                                  "CORS origin '%.*s' is not '*' or scheme://host[:port] (e.g. http://localhost:5173)",
                                  (int)(n < 80 ? n : 80), p);
            if (s->n_cors == AL_SERVER_CORS_ORIGINS)
                return al_err_set(err, AL_ERR_USAGE, "more than %d CORS origins", AL_SERVER_CORS_ORIGINS);
            snprintf(s->cors[s->n_cors++], sizeof s->cors[0], "%.*s", (int)n, p);
        }
        p += len + (p[len] == ',');
    }
    return AL_OK;
}

/* The request's Origin into h->cors_origin when the server allows it. */
static void cors_origin(struct al_http_req *h)
{
    struct al_server *s = h->srv;
    const char *o = MHD_lookup_connection_value(h->conn, MHD_HEADER_KIND, "Origin");
    if (!o || (!s->cors_any && s->n_cors == 0) || strlen(o) > AL_SERVER_CORS_ORIGIN_MAX)
        return;
    bool ok = s->cors_any;
    for (int i = 0; !ok && i < s->n_cors; i++)
        ok = strcasecmp(s->cors[i], o) == 0;
    if (ok)
        snprintf(h->cors_origin, sizeof h->cors_origin, "%s", o);
}

void al_http_cors_headers(struct al_http_req *h, struct MHD_Response *r)
{
    if (!h->cors_origin[0])
        return;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", h->srv->cors_any ? "*" : h->cors_origin);
    MHD_add_response_header(r, "Vary", "Origin");
    MHD_add_response_header(r, "Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
    if (!h->preflight)
        return;
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    /* The headers the page asked for (the openai SDK sends x-stainless-*),
     * when they are a plain list of names; else the ones the API reads. */
    const char *want = MHD_lookup_connection_value(h->conn, MHD_HEADER_KIND, "Access-Control-Request-Headers");
    bool plain = want && *want && strlen(want) <= 1024 &&
                 strspn(want, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_, ") == strlen(want);
    MHD_add_response_header(r, "Access-Control-Allow-Headers", plain ? want : "Authorization, Content-Type");
    MHD_add_response_header(r, "Access-Control-Max-Age", "600");
}

/* An OPTIONS request on a route: a preflight from an allowed origin gets
 * 204 and the CORS headers; any other, 403 and none. */
static enum MHD_Result cors_preflight(struct al_http_req *h)
{
    const char *o = MHD_lookup_connection_value(h->conn, MHD_HEADER_KIND, "Origin");
    const char *m = MHD_lookup_connection_value(h->conn, MHD_HEADER_KIND, "Access-Control-Request-Method");
    if (!h->cors_origin[0] || !m)
        return al_http_reply_error(h, 403, "permission_error", NULL, "cors_denied",
                                   "%s%s%s: cross-origin requests are allowed from the origins of serve --cors-origins",
                                   o ? "origin '" : "not a CORS preflight", o ? o : "",
                                   o ? "' is not allowed" : "");
    h->preflight = true;
    return al_http_reply_text(h, 204, "text/plain", "", 0);
}

bool al_http_client_gone(struct al_http_req *h)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(h->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

const char *al_http_stop_reason(struct al_http_req *h)
{
    if (al_http_client_gone(h))
        return "client";
    if (h->limits.timeout_s > 0 && al_http_now() - h->t0 > h->limits.timeout_s)
        return "timeout";
    pthread_mutex_lock(&h->srv->mu);
    bool stopping = h->srv->stopping;
    pthread_mutex_unlock(&h->srv->mu);
    return stopping ? "shutdown" : NULL;
}

bool al_http_lease(struct al_http_req *h, json_t *body, enum MHD_Result *res)
{
    json_t *jm = body ? json_object_get(body, "model") : NULL;
    if (json_is_null(jm)) /* "model": null is no model named, as in llama-server */
        jm = NULL;
    if (jm && !json_is_string(jm)) {
        *res = al_http_reply_error(h, 400, "invalid_request_error", "model", NULL, "'model' must be a string");
        return false;
    }
    struct al_err err = AL_ERR_INIT;
    /* The model that will serve the request, defaults applied: the key's
     * model patterns are checked against it, and it is acquired by this very
     * name, so a reload between the two cannot make them differ. */
    const char *named = jm ? json_string_value(jm) : NULL;
    char def[AL_LIMIT_REF + 1];
    if (!named || !*named) {
        if (al_serve_default_ref(h->srv->mm, def, sizeof def, &err) != AL_OK) {
            *res = al_http_reply_rc(h, &err, "model");
            return false;
        }
        named = def;
    }
    char real[AL_LIMIT_REF + 1]; /* what an alias (serve --alias) stands for */
    if (al_serve_unalias(h->srv->mm, named, real, sizeof real, &err) != AL_OK) {
        *res = al_http_reply_rc(h, &err, "model");
        return false;
    }
    named = real;
    if (strncmp(named, "rag/", 4) == 0) {
        *res = al_http_reply_error(h, 404, "invalid_request_error", "model", "model_not_found",
                                   "'%s' is a collection snapshot, not a model", named);
        return false;
    }
    if (!al_http_model_access(h, named, res))
        return false;
    if (al_serve_acquire(h->srv->mm, named, &h->lease, &err) != AL_OK) {
        *res = al_http_reply_rc(h, &err, "model");
        return false;
    }
    snprintf(h->model_digest, sizeof h->model_digest, "%s", al_serve_lease_digest(h->lease));
    al_server_lora_lease(h);
    return true;
}

/* ---- new connections ----
 * A new connection is counted in the server's arrivals from its accept until
 * its first request's headers are read: a client that opens connections to
 * start several requests at once has them accepted at once, but each
 * connection's thread reads its request in turn, and without the count the
 * first request took a step alone (docs/internals/server.md, "Arrivals"). A
 * connection that sends nothing is not waited for once the count has been
 * quiet a while (arrivals.h). */

struct conn_state {
    atomic_bool counted_new;
    struct al_server_conn *dl; /* its receive deadline (conns.h) */
};

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct al_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn_state *c = malloc(sizeof *c);
        if (c) {
            atomic_init(&c->counted_new, true);
            al_server_arrivals_add(s->arrivals, 1);
            const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
            c->dl = ci ? al_server_conns_add(s->conns, ci->connect_fd, al_http_now()) : NULL;
        }
        *socket_context = c;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        /* Called before libmicrohttpd closes the descriptor (conns.h). */
        struct conn_state *c = *socket_context;
        if (c && atomic_exchange(&c->counted_new, false))
            al_server_arrivals_add(s->arrivals, -1);
        if (c)
            al_server_conns_remove(s->conns, c->dl);
        free(c);
        *socket_context = NULL;
    }
}

/* The connection's first request has its headers in: it is no longer a new
 * connection in the arrivals. Returns its receive deadline. */
static struct al_server_conn *conn_first_request(struct al_server *s, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_state *c = ci ? ci->socket_context : NULL;
    if (c && atomic_exchange(&c->counted_new, false))
        al_server_arrivals_add(s->arrivals, -1);
    return c ? c->dl : NULL;
}

static enum MHD_Result dispatch(struct al_http_req *h)
{
    enum MHD_Result res = MHD_NO;
    if (al_buf_failed(&h->body))
        return al_http_reply_error(h, 413, "invalid_request_error", NULL, "body_too_large",
                                   "the request body is over the cap of %zu bytes (limits.body_bytes)",
                                   h->limits.body_bytes);
    json_t *body = NULL;
    if (strcmp(h->method, "POST") == 0) {
        json_error_t je;
        const char *data = h->body.data ? h->body.data : "";
        body = json_loadb(data, h->body.len, JSON_REJECT_DUPLICATES, &je);
        if (!body) {
            char msg[AL_ERR_MSG_MAX];
            al_server_json_body_error(data, h->body.len, &je, msg, sizeof msg);
            return al_http_reply_error(h, 400, "invalid_request_error", NULL, "invalid_json", "%s", msg);
        }
        /* POST /lora-adapters takes an array, as llama-server's does. */
        if (!json_is_object(body) && !(json_is_array(body) && h->handler == al_server_route_lora_set)) {
            json_decref(body);
            return al_http_reply_error(h, 400, "invalid_request_error", NULL, "invalid_json",
                                       "the request body is not a JSON object");
        }
    }
    if (al_http_check_access(h, &res))
        res = h->handler(h, body);
    json_decref(body);
    return res;
}

struct framing_fields {
    struct al_http_field f[AL_HTTP_FRAMING_FIELDS];
    size_t n;
    bool over;
};

static enum MHD_Result collect_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct framing_fields *ff = cls;
    (void)kind;
    if (strcasecmp(key, "Content-Length") != 0 && strcasecmp(key, "Transfer-Encoding") != 0)
        return MHD_YES;
    if (ff->n == AL_HTTP_FRAMING_FIELDS) {
        ff->over = true;
        return MHD_NO;
    }
    ff->f[ff->n++] = (struct al_http_field){key, value};
    return MHD_YES;
}

/* Refuses a request whose body could be delimited two ways (see framing.c);
 * false with the 400 queued, which also closes the connection: its bytes
 * after the headers are never read as another request. */
static bool framing_ok(struct al_http_req *h, const char *version, enum MHD_Result *res)
{
    struct framing_fields ff = {.n = 0};
    MHD_get_connection_values(h->conn, MHD_HEADER_KIND, collect_framing, &ff);
    struct al_err err = AL_ERR_INIT;
    if (ff.over)
        al_err_set(&err, AL_ERR_INVALID, "the request has more than %d Content-Length and Transfer-Encoding headers",
                   AL_HTTP_FRAMING_FIELDS);
    else if (al_http_framing_check(version, ff.f, ff.n, &err) == AL_OK)
        return true;
    h->close = true;
    *res = al_http_reply_error(h, 400, "invalid_request_error", NULL, "bad_framing", "%s", err.msg);
    return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    struct al_server *s = cls;
    struct al_http_req *h = *con_cls;
    if (!h) {
        h = calloc(1, sizeof *h);
        if (!h)
            return MHD_NO;
        *con_cls = h;
        h->srv = s;
        h->conn = conn;
        h->t0 = al_http_now();
        h->url = strdup(url);
        snprintf(h->method, sizeof h->method, "%s", method);
        snprintf(h->id, sizeof h->id, "req-%s%06" PRIuFAST64, s->id_prefix, atomic_fetch_add(&s->next_id, 1));
        snprintf(h->caller, sizeof h->caller, "-");
        h->ollama = strncmp(url, "/api/", 5) == 0;
        h->registry = strncmp(url, "/v2/", 4) == 0;
        if (h->registry)
            al_server_registry_basic_key(h, h->reg_key, sizeof h->reg_key);
        pthread_mutex_lock(&s->mu);
        h->limits = s->o.limits;
        h->stream_interval_ms = s->o.stream_interval_ms;
        pthread_mutex_unlock(&s->mu);
        al_buf_init(&h->body, h->limits.body_bytes);
        bool known = false;
        const struct al_http_route *r = al_http_find_route(method, url, &known);
        h->route = r ? al_http_route_label(r) : "other";
        /* Counted as on its way from now until it reaches the engine (or
         * its finish path); then the connection no longer counts as new.
         * In this order, so that the count does not dip between the two. */
        if (r && r->generates) {
            al_server_arrivals_add(s->arrivals, 1);
            h->arriving = true;
        }
        h->dl = conn_first_request(s, conn);
        if (!h->url)
            return MHD_NO;
        enum MHD_Result res;
        cors_origin(h);
        if (!framing_ok(h, version, &res))
            return res;
        if (!r && known && strcmp(method, "OPTIONS") == 0)
            return cors_preflight(h);
        if (!r) {
            if (known)
                return al_http_reply_error(h, 405, "invalid_request_error", NULL, "method_not_allowed",
                                           "%s is not allowed on %s", method, url);
            return al_http_reply_error(h, 404, "invalid_request_error", NULL, "unknown_url",
                                       "unknown request URL: %s %s", method, url);
        }
        h->scope = r->scope;
        h->handler = r->handler;
        if (r->scope && strcmp(r->scope, "rag") == 0) {
            /* The scope names the collection: rag:NAME. */
            char name[AL_LIMIT_RAG_NAME + 1];
            if (!al_server_rag_url_collection(url, name, sizeof name))
                return al_http_reply_error(h, 404, "invalid_request_error", NULL, "unknown_url",
                                           "unknown request URL: %s %s (expected /v1/rag/{collection}/query)", method,
                                           url);
            snprintf(h->scope_buf, sizeof h->scope_buf, "rag:%s", name);
            h->scope = h->scope_buf;
        }
        /* Fail closed: a request that could not be audited is not served. */
        char why[AL_ERR_MSG_MAX / 2];
        if (r->handler != al_server_route_health && !s->o.audit_fail_open &&
            al_server_audit_queue_failing(s->audit_q, why, sizeof why))
            return al_http_reply_error(h, 503, "server_error", NULL, "audit_unavailable",
                                       "the audit log cannot be written (%s): requests are refused until it can "
                                       "(audit_fail = closed)",
                                       why);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > h->limits.body_bytes)
            return al_http_reply_error(h, 413, "invalid_request_error", NULL, "body_too_large",
                                       "the request body is over the cap of %zu bytes (limits.body_bytes)",
                                       h->limits.body_bytes);
        if (r->counted) {
            pthread_mutex_lock(&s->mu);
            bool refuse = s->draining || s->in_flight >= h->limits.concurrent;
            bool draining = s->draining;
            if (!refuse) {
                s->in_flight++;
                h->counted = true;
            }
            pthread_mutex_unlock(&s->mu);
            if (refuse)
                return al_http_reply_error(h, 503, "server_error", NULL, draining ? "shutting_down" : "too_many_requests",
                                           draining ? "the server is shutting down"
                                                    : "%d requests are being handled already (limits.concurrent): "
                                                      "try again later",
                                           h->limits.concurrent);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (h->status == 0)
            al_buf_add(&h->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (h->status)
        return MHD_YES; /* a refusal is queued already */
    al_server_conn_handling(s->conns, h->dl); /* the request is in: its deadline is met */
    return dispatch(h);
}

/* The finish path. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct al_server *s = cls;
    struct al_http_req *h = *con_cls;
    if (!h)
        return;
    *con_cls = NULL;
    const char *text = h->gen ? al_server_gen_finish(h->gen, h) : NULL;
    double secs = al_http_now() - h->t0;
    /* A client that went away is no server error: counted apart, and a
     * request it left unanswered is recorded as 499. */
    bool gone = h->gone || toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT || toe == MHD_REQUEST_TERMINATED_READ_ERROR ||
                (!h->status && al_http_client_gone(h));
    int status = h->status ? h->status : gone ? AL_HTTP_CLIENT_CLOSED : 500;
    if (gone)
        al_server_metrics_client_gone(s->metrics);
    al_server_metrics_request(s->metrics, h->route, status, secs);
    al_server_metrics_tokens(s->metrics, h->tokens_in, h->tokens_out);
    if (h->lora[0] && status < 400)
        al_server_lora_count(h);
    if (s->o.audit) {
        struct al_audit_record rec = {
            .request_id = h->id, .caller = h->caller, .model_digest = h->model_digest[0] ? h->model_digest : NULL,
            .route = h->route, .status = status, .tokens_in = h->tokens_in, .tokens_out = h->tokens_out,
            .latency_ms = secs * 1000, .lora = h->lora[0] ? h->lora : NULL,
            .reranker = h->reranker[0] ? h->reranker : NULL,
            .prompt = s->o.audit_text ? h->prompt : NULL,
            .response = s->o.audit_text ? text : NULL};
        al_server_audit_queue_post(s->audit_q, &rec);
    }
    al_info("%s %s %s %d %.1f ms caller=%s in=%d out=%d%s", h->id, h->method, h->url ? h->url : "?", status,
            secs * 1000, h->caller, h->tokens_in, h->tokens_out,
            toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection ended early)");
    if (h->arriving) /* never reached the engine */
        al_server_arrivals_add(s->arrivals, -1);
    al_server_gen_unref(h->gen);
    al_serve_release(h->lease);
    al_serve_release(h->embed_lease);
    al_serve_release(h->rerank_lease);
    if (h->counted) {
        pthread_mutex_lock(&s->mu);
        if (--s->in_flight == 0)
            pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    /* A kept-alive connection waits for its next request, which has its
     * deadline from now. (One being closed is removed right after.) */
    al_server_conn_receiving(s->conns, h->dl, al_http_now());
    al_buf_release(&h->body);
    explicit_bzero(h->reg_key, sizeof h->reg_key);
    free(h->prompt);
    free(h->url);
    free(h);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = 0;
    al_debug("libmicrohttpd: %s", line);
}

/* ---- listening ---- */

static enum al_rc open_unix(struct al_server *s, struct al_err *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(s->o.socket_path) >= sizeof sa.sun_path)
        return al_err_set(err, AL_ERR_USAGE, "socket path '%s' is too long", s->o.socket_path);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", s->o.socket_path);
    struct stat st;
    if (lstat(s->o.socket_path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return al_err_set(err, AL_ERR_EXISTS, "'%s' exists and is not a socket", s->o.socket_path);
        unlink(s->o.socket_path); /* a stale socket of an earlier run */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return al_err_sys(err, AL_ERR_IO, "cannot create a unix socket");
    /* Bind under a umask that leaves nobody access until the chmod. */
    mode_t old = umask(0177);
    int rb = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rb != 0 || chmod(s->o.socket_path, (mode_t)s->o.socket_mode) != 0 || listen(fd, 128) != 0) {
        al_err_sys(err, AL_ERR_IO, "cannot listen on '%s'", s->o.socket_path);
        close(fd);
        return err->rc;
    }
    s->unix_fd = fd;
    snprintf(s->socket_path, sizeof s->socket_path, "%s", s->o.socket_path);
    return AL_OK;
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

static enum al_rc check_limits(const struct al_server_limits *l, double stream_interval_ms, struct al_err *err)
{
    if (l->concurrent <= 0 || l->body_bytes == 0 || l->max_tokens <= 0 || l->prompt_tokens <= 0 ||
        !(l->receive_timeout_s > 0))
        return al_err_set(err, AL_ERR_USAGE, "server limits must be positive");
    if (!(stream_interval_ms >= 0 && stream_interval_ms <= 1000))
        return al_err_set(err, AL_ERR_USAGE, "the stream interval must be between 0 and 1000 ms");
    return AL_OK;
}

enum al_rc al_server_start(const struct al_server_opts *o, struct al_serve_models *mm, struct al_server **out,
                           struct al_err *err)
{
    if ((o->tls_cert == NULL) != (o->tls_key == NULL) || (o->tls_client_ca && !o->tls_cert))
        return al_err_set(err, AL_ERR_USAGE, "TLS needs both a certificate and a key (and them for a client CA)");
    enum al_rc rc = check_limits(&o->limits, o->stream_interval_ms, err);
    if (rc)
        return rc;
    struct al_server *s = calloc(1, sizeof *s);
    if (!s)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    s->o = *o;
    s->o.cors_origins = NULL; /* parsed into s->cors; the string is the caller's */
    s->mm = mm;
    s->unix_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    uint32_t rnd = 0;
    FILE *ur = fopen("/dev/urandom", "rbe");
    if (ur) {
        if (fread(&rnd, sizeof rnd, 1, ur) != 1)
            rnd = (uint32_t)time(NULL);
        fclose(ur);
    }
    snprintf(s->id_prefix, sizeof s->id_prefix, "%08x", rnd);
    struct addrinfo *ai = NULL;
    /* Connections: twice the requests handled at once (a client may keep
     * one waiting while another is answered) and a margin for /health and
     * /metrics, which are not counted against limits.concurrent. */
    int conn_cap = o->limits.concurrent * 2 + 32;
    rc = o->cors_origins ? cors_parse(s, o->cors_origins, err) : AL_OK;
    if (!rc)
        rc = al_server_metrics_new(&s->metrics, err);
    if (!rc && !(s->arrivals = al_server_arrivals_new(0)))
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    if (!rc)
        al_serve_set_admit(mm, al_server_arrivals_admit, s->arrivals);
    if (!rc)
        rc = al_server_conns_new(conn_cap, o->limits.receive_timeout_s, &s->conns, err);
    if (!rc)
        rc = al_server_conns_start(s->conns, err);
    if (!rc && o->registry)
        rc = al_server_reg_new(&s->reg, err);
    if (!rc && o->audit)
        rc = al_server_audit_queue_start(o->audit, AL_SERVER_AUDIT_QUEUE, &s->audit_q, err);
    if (rc)
        goto fail;
    if (o->tls_cert) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            rc = al_err_set(err, AL_ERR_USAGE, "this libmicrohttpd is built without TLS");
            goto fail;
        }
        if ((rc = al_server_tls_read_pem(o->tls_cert, &s->tls_cert, err)) || (rc = al_server_tls_read_pem(o->tls_key, &s->tls_key, err)))
            goto fail;
        if (o->tls_client_ca && (rc = al_server_tls_read_pem(o->tls_client_ca, &s->tls_ca, err)))
            goto fail;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    struct MHD_OptionItem ops[16];
    int n = 0;
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, s};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, conn_cap, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 300, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL};
    if (o->socket_path) {
        if ((rc = open_unix(s, err)))
            goto fail;
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, s->unix_fd, NULL};
    } else {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
        char port[16];
        snprintf(port, sizeof port, "%d", o->port);
        int g = getaddrinfo(o->host ? o->host : "127.0.0.1", port, &hints, &ai);
        if (g != 0) {
            rc = al_err_set(err, AL_ERR_USAGE, "cannot resolve '%s': %s", o->host, gai_strerror(g));
            goto fail;
        }
        if (!is_loopback(ai->ai_addr) && !o->listen_any) {
            rc = al_err_set(err, AL_ERR_USAGE,
                            "'%s' is not a loopback address: listening on it needs --listen-any", o->host);
            goto fail;
        }
        if (ai->ai_family == AF_INET6)
            flags |= MHD_USE_IPv6;
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr};
    }
    if (s->tls_cert) {
        flags |= MHD_USE_TLS;
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key};
        if (s->tls_ca)
            ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, s->tls_ca};
    }
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    s->d = MHD_start_daemon(flags, (uint16_t)(o->socket_path ? 0 : o->port), NULL, NULL, on_request, s,
                            MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
    if (!s->d) {
        rc = al_err_set(err, AL_ERR_IO, "cannot listen on %s%s%s%s: the address may be in use",
                        o->socket_path ? o->socket_path : o->host, o->socket_path ? "" : ":",
                        o->socket_path ? "" : "", o->socket_path ? "" : "port");
        goto fail;
    }
    if (!o->socket_path) {
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
        s->port = di ? di->port : o->port;
    }
    freeaddrinfo(ai);
    *out = s;
    return AL_OK;
fail:
    if (ai)
        freeaddrinfo(ai);
    al_server_free(s);
    return rc;
}

int al_server_port(const struct al_server *s) { return s->port; }

enum al_rc al_server_set_limits(struct al_server *s, const struct al_server_limits *l, double stream_interval_ms,
                                struct al_err *err)
{
    enum al_rc rc = check_limits(l, stream_interval_ms, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->mu);
    s->o.limits = *l;
    s->o.stream_interval_ms = stream_interval_ms;
    pthread_mutex_unlock(&s->mu);
    al_server_conns_set_timeout(s->conns, l->receive_timeout_s);
    return AL_OK;
}

void al_server_drain(struct al_server *s, double timeout_s)
{
    pthread_mutex_lock(&s->mu);
    s->draining = true;
    pthread_mutex_unlock(&s->mu);
    if (s->d)
        MHD_quiesce_daemon(s->d);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)timeout_s;
    pthread_mutex_lock(&s->mu);
    while (s->in_flight > 0)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0)
            break;
    if (s->in_flight > 0) {
        /* Cancelled requests notice at their next check (a tick or an
         * embedding batch) and still answer 503 shutting_down, while the
         * daemon runs: a short grace for that, then al_server_free cuts. */
        al_warn("drain: %d requests still running after %.0f s; cancelling them", s->in_flight, timeout_s);
        s->stopping = true;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += AL_SERVER_CANCEL_GRACE_S;
        while (s->in_flight > 0)
            if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0)
                break;
    }
    pthread_mutex_unlock(&s->mu);
}

void al_server_free(struct al_server *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_mutex_unlock(&s->mu);
    if (s->d)
        MHD_stop_daemon(s->d);
    /* Every connection has ended and cancelled its generation; the engine
     * still calls on_done for each, and those touch s. */
    pthread_mutex_lock(&s->mu);
    while (s->n_gens > 0)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (s->unix_fd >= 0) {
        close(s->unix_fd);
        unlink(s->socket_path);
    }
    al_server_audit_queue_stop(s->audit_q); /* after the last finish path: writes what waits */
    if (s->arrivals)
        al_serve_set_admit(s->mm, NULL, NULL); /* no scheduler asks the count from now on */
    al_server_arrivals_free(s->arrivals);
    al_server_conns_free(s->conns);         /* after the daemon: no connection is left */
    al_server_metrics_free(s->metrics);
    al_server_rag_free(s->rag);
    al_server_reg_free(s->reg);
    free(s->tls_cert);
    if (s->tls_key) {
        explicit_bzero(s->tls_key, strlen(s->tls_key));
        free(s->tls_key);
    }
    free(s->tls_ca);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
