/*
 * registry.c: the distribution client (registry.h). One curl easy handle per
 * al_reg, reused across requests (keep-alive); every request goes through
 * do_req, which answers one authentication challenge and retries once.
 * References (al_reg_ref_parse) are parsed in ref.c.
 */
#include "registry/registry.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/fs.h"
#include "core/limits.h"
#include "core/progress.h"

#define ERR_BODY_MAX   (64u << 10)
#define TOKEN_MAX      (64u << 10)
#define AUTH_FILE_MAX  (1u << 20)
#define HDR_MAX        2048u
#define AUTH_HDR_MAX   (TOKEN_MAX + 64u)

struct al_reg {
    struct al_reg_ref ref;
    struct al_reg_opts o;
    char base[AL_REG_HOST_MAX + 16]; /* scheme://host[:port] */
    CURL *c;
    char *user, *pass;               /* credentials, or NULL */
    char cred_src[AL_LIMIT_PATH];
    char *auth;                      /* the Authorization header in force, or NULL */
    char *ca_file;
    char cert[AL_LIMIT_PATH], key[AL_LIMIT_PATH]; /* the client certificate (mTLS) and its key, or "" */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- credentials ---- */

static void wipe_free(char *s)
{
    if (s) {
        volatile char *p = s;
        while (*p)
            *p++ = 0;
        free(s);
    }
}


static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes base64 into a malloc'd NUL-terminated string, or NULL. */
static char *b64dec(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    unsigned v = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        int d = b64val((unsigned char)s[i]);
        if (d < 0) {
            free(out);
            return NULL;
        }
        v = (v << 6) | (unsigned)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (char)((v >> bits) & 0xff);
        }
    }
    out[k] = '\0';
    return out;
}

static char *b64enc(const char *s)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s), k = 0;
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        out[k++] = t[(v >> 18) & 63];
        out[k++] = t[(v >> 12) & 63];
        out[k++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[k++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[k] = '\0';
    return out;
}

/* Looks host up in one auth.json ("auths" -> host -> "auth"). */
static bool creds_from_file(struct al_reg *r, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    struct al_err e = AL_ERR_INIT;
    if (al_fs_read_file(path, AUTH_FILE_MAX, &text, &len, &e))
        return false;
    json_t *root = json_loadb(text, len, 0, NULL);
    free(text);
    json_t *auths = json_object_get(root, "auths");
    static const char *const pre[] = {"", "https://", "http://", "https://", "http://"};
    static const char *const post[] = {"", "", "", "/v2/", "/v2/"};
    bool found = false;
    for (size_t i = 0; i < sizeof pre / sizeof *pre && !found; i++) {
        char key[AL_REG_HOST_MAX + 32];
        snprintf(key, sizeof key, "%s%s%s", pre[i], r->ref.host, post[i]);
        const char *a = json_string_value(json_object_get(json_object_get(auths, key), "auth"));
        char *dec = a ? b64dec(a) : NULL;
        char *colon = dec ? strchr(dec, ':') : NULL;
        if (colon) {
            *colon = '\0';
            r->user = strdup(dec);
            r->pass = strdup(colon + 1);
            found = r->user && r->pass;
            snprintf(r->cred_src, sizeof r->cred_src, "%s", path);
        }
        wipe_free(dec);
    }
    json_decref(root);
    return found;
}

static void find_creds(struct al_reg *r)
{
    if (r->o.user && r->o.password) {
        r->user = strdup(r->o.user);
        r->pass = strdup(r->o.password);
        snprintf(r->cred_src, sizeof r->cred_src, "options");
        return;
    }
    if (r->o.auth_file) {
        creds_from_file(r, r->o.auth_file);
        return;
    }
    char path[AL_LIMIT_PATH];
    const char *xdg = getenv("XDG_RUNTIME_DIR"), *home = getenv("HOME");
    const char *cfg = getenv("REGISTRY_AUTH_FILE");
    if (cfg && *cfg && creds_from_file(r, cfg))
        return;
    if (xdg && *xdg && snprintf(path, sizeof path, "%s/containers/auth.json", xdg) < (int)sizeof path &&
        creds_from_file(r, path))
        return;
    if (home && *home && snprintf(path, sizeof path, "%s/.config/containers/auth.json", home) < (int)sizeof path &&
        creds_from_file(r, path))
        return;
    if (home && *home && snprintf(path, sizeof path, "%s/.docker/config.json", home) < (int)sizeof path)
        creds_from_file(r, path);
}

/* ---- open / free ---- */

enum al_rc al_reg_open(const struct al_reg_ref *ref, const struct al_reg_opts *o, struct al_reg **out,
                       struct al_err *err)
{
    pthread_once(&curl_once, curl_init);
    struct al_reg *r = calloc(1, sizeof *r);
    if (!r)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    r->ref = *ref;
    if (o)
        r->o = *o;
    r->o.user = r->o.password = NULL; /* copied below; the caller may wipe its own */
    if (o && o->user && o->password) {
        r->user = strdup(o->user);
        r->pass = strdup(o->password);
        snprintf(r->cred_src, sizeof r->cred_src, "options");
    } else {
        if (o && o->auth_file)
            r->o.auth_file = o->auth_file;
        find_creds(r);
    }
    r->o.auth_file = NULL;
    if (!r->cred_src[0])
        snprintf(r->cred_src, sizeof r->cred_src, "none");
    if (o && o->ca_file)
        r->ca_file = strdup(o->ca_file);
    r->o.ca_file = r->ca_file;
    snprintf(r->cert, sizeof r->cert, "%s", o && o->cert_file ? o->cert_file : "");
    snprintf(r->key, sizeof r->key, "%s", o && o->key_file ? o->key_file : "");
    r->o.cert_file = r->o.key_file = NULL;
    const char *files[2] = {r->cert, r->key};
    for (int i = 0; i < 2; i++)
        if (files[i][0] && access(files[i], R_OK) != 0) {
            enum al_rc rc = al_err_sys(err, AL_ERR_IO, "cannot read the client certificate file '%s'", files[i]);
            al_reg_free(r);
            return rc;
        }
    snprintf(r->base, sizeof r->base, "%s://%s", r->o.plain_http ? "http" : "https", ref->host);
    r->c = curl_easy_init();
    if (!r->c || (o && o->ca_file && !r->ca_file)) {
        al_reg_free(r);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    *out = r;
    return AL_OK;
}

void al_reg_free(struct al_reg *r)
{
    if (!r)
        return;
    if (r->c)
        curl_easy_cleanup(r->c);
    wipe_free(r->user);
    wipe_free(r->pass);
    wipe_free(r->auth);
    free(r->ca_file);
    free(r);
}

const char *al_reg_cred_source(const struct al_reg *r) { return r->cred_src; }

/* ---- one request ---- */

struct req {
    const char *method;
    char url[AL_LIMIT_PATH];
    const char *ctype, *accept, *range, *content_range;
    bool no_auth;                 /* the token request itself */
    const char *basic;            /* that request's Authorization, or NULL */
    /* upload: from memory or from fd */
    bool upload;
    const unsigned char *mem;
    int fd;
    uint64_t up_off, up_len, up_done;
    struct al_progress *p;
    /* download */
    al_reg_sink_fn *sink;
    void *ud;
    struct al_err sink_err;
    enum al_rc sink_rc;
    uint64_t max, got;
    bool over;
    struct al_buf *body;
    /* response */
    long status;
    char location[HDR_MAX], rtype[AL_REG_MT_MAX + 1], www[HDR_MAX];
    struct al_buf errbody;
};

static void req_init(struct req *q, const char *method)
{
    memset(q, 0, sizeof *q);
    q->method = method;
    q->fd = -1;
    al_buf_init(&q->errbody, ERR_BODY_MAX);
}

static void copy_value(char *out, size_t size, const char *v, size_t n)
{
    while (n > 0 && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    snprintf(out, size, "%.*s", (int)(n < size - 1 ? n : size - 1), v);
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    struct req *q = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new response (redirect, 100): start over */
        q->location[0] = q->rtype[0] = q->www[0] = '\0';
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon)
        return len;
    size_t kn = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vn = len - kn - 1;
    if (kn == 8 && strncasecmp(data, "location", 8) == 0)
        copy_value(q->location, sizeof q->location, v, vn);
    else if (kn == 12 && strncasecmp(data, "content-type", 12) == 0)
        copy_value(q->rtype, sizeof q->rtype, v, vn);
    else if (kn == 16 && strncasecmp(data, "www-authenticate", 16) == 0)
        copy_value(q->www, sizeof q->www, v, vn);
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct req *q = ud;
    size_t len = size * n;
    long st = q->status; /* from the status line: on_header_status */
    if (st < 200 || st > 299) {
        al_buf_add(&q->errbody, data, len);
        return len; /* an oversized error body is cut, not fatal */
    }
    if (q->got + len > q->max || q->got + len < q->got) {
        q->over = true;
        return 0;
    }
    q->got += len;
    if (q->sink) {
        if ((q->sink_rc = q->sink(q->ud, data, len, &q->sink_err)))
            return 0;
        return len;
    }
    al_buf_add(q->body, data, len);
    return al_buf_failed(q->body) ? 0 : len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
    struct req *q = ud;
    uint64_t left = q->up_len - q->up_done;
    size_t want = size * n < left ? size * n : (size_t)left;
    if (want == 0)
        return 0;
    if (q->mem) {
        memcpy(buf, q->mem + q->up_off + q->up_done, want);
    } else {
        ssize_t k;
        do
            k = pread(q->fd, buf, want, (off_t)(q->up_off + q->up_done));
        while (k < 0 && errno == EINTR);
        if (k <= 0)
            return CURL_READFUNC_ABORT;
        want = (size_t)k;
    }
    q->up_done += want;
    al_progress_add(q->p, want);
    return want;
}

/* The status code becomes known before the body; libcurl's header callback
 * sees the status line, so the code is read there. */
static size_t on_header_status(char *data, size_t size, size_t n, void *ud)
{
    struct req *q = ud;
    size_t len = size * n;
    if (len >= 12 && strncmp(data, "HTTP/", 5) == 0) {
        const char *sp = memchr(data, ' ', len);
        if (sp && sp + 4 <= data + len)
            q->status = strtol(sp + 1, NULL, 10);
    }
    return on_header(data, size, n, ud);
}

static enum al_rc perform(struct al_reg *r, struct req *q, struct al_err *err)
{
    CURL *c = r->c;
    curl_easy_reset(c);
    struct curl_slist *h = NULL;
    char line[HDR_MAX + 64];
    h = curl_slist_append(h, "Expect:");
    if (q->accept && snprintf(line, sizeof line, "Accept: %s", q->accept) < (int)sizeof line)
        h = curl_slist_append(h, line);
    if (q->ctype && snprintf(line, sizeof line, "Content-Type: %s", q->ctype) < (int)sizeof line)
        h = curl_slist_append(h, line);
    if (q->range && snprintf(line, sizeof line, "Range: %s", q->range) < (int)sizeof line)
        h = curl_slist_append(h, line);
    if (q->content_range && snprintf(line, sizeof line, "Content-Range: %s", q->content_range) < (int)sizeof line)
        h = curl_slist_append(h, line);
    if (q->basic)
        h = curl_slist_append(h, q->basic);
    else if (!q->no_auth && r->auth)
        h = curl_slist_append(h, r->auth);
    curl_easy_setopt(c, CURLOPT_URL, q->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, r->o.timeout_s > 0 ? r->o.timeout_s : 60L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header_status);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, q);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, q);
    if (r->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, r->ca_file);
    if (r->cert[0]) /* PEM; without a key file the key is in the certificate's file, as curl --cert */
        curl_easy_setopt(c, CURLOPT_SSLCERT, r->cert);
    if (r->key[0])
        curl_easy_setopt(c, CURLOPT_SSLKEY, r->key);
    if (strcmp(q->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (q->upload) {
        q->up_done = 0;
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, q);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->up_len);
        if (strcmp(q->method, "PUT") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
    } else if (strcmp(q->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    } else if (strcmp(q->method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
    }
    q->status = 0;
    al_buf_reset(&q->errbody);
    CURLcode cc = curl_easy_perform(c);
    curl_slist_free_all(h);
    long st = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    if (st)
        q->status = st;
    if (q->sink_rc) {
        al_err_set(err, q->sink_rc, "%s", q->sink_err.msg);
        return q->sink_rc;
    }
    if (q->over)
        return al_err_set(err, q->sink ? AL_ERR_VERIFY : AL_ERR_LIMIT, "%s %s: the registry sent more than the %" PRIu64
                          " bytes expected", q->method, q->url, q->max);
    if (cc != CURLE_OK)
        return al_err_set(err, AL_ERR_IO, "%s %s failed: %s", q->method, q->url, curl_easy_strerror(cc));
    return AL_OK;
}

/* The registry's own words for a failed request (its errors[0]), or "". */
static void reg_message(struct req *q, char *out, size_t size)
{
    out[0] = '\0';
    if (q->errbody.len == 0)
        return;
    json_t *j = json_loadb(q->errbody.data, q->errbody.len, 0, NULL);
    json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
    if (!e0) /* airlock serve's access hook answers in its own shape: {"error":{"message","code"}} */
        e0 = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(e0, "code"));
    const char *msg = json_string_value(json_object_get(e0, "message"));
    if (code || msg)
        snprintf(out, size, ": %s%s%s", code ? code : "", code && msg ? " " : "", msg ? msg : "");
    json_decref(j);
}

static enum al_rc status_error(struct req *q, const char *what, struct al_err *err)
{
    char m[512];
    reg_message(q, m, sizeof m);
    enum al_rc rc = q->status == 401 ? AL_ERR_AUTH : q->status == 403 ? AL_ERR_DENIED
                  : q->status == 404 ? AL_ERR_NOT_FOUND : q->status >= 500 ? AL_ERR_IO : AL_ERR_INVALID;
    return al_err_set(err, rc, "%s: the registry answered %ld to %s %s%s%s", what, q->status, q->method, q->url, m,
                      q->status == 401 && strstr(m, "client certificate") ? "; give one: --cert FILE --key FILE"
                      : q->status == 401 ? "; give credentials: --user NAME (password on stdin) or `skopeo login`"
                      : "");
}

/* One parameter of a challenge: key="value" (or key=value). */
static bool challenge_param(const char *ch, const char *key, char *out, size_t size)
{
    size_t kl = strlen(key);
    for (const char *p = ch; (p = strstr(p, key)) != NULL; p += kl) {
        if ((p != ch && p[-1] != ' ' && p[-1] != ',') || p[kl] != '=')
            continue;
        const char *v = p + kl + 1;
        const char *end;
        if (*v == '"') {
            v++;
            end = strchr(v, '"');
        } else {
            end = v + strcspn(v, ", ");
        }
        if (!end)
            return false;
        snprintf(out, size, "%.*s", (int)((size_t)(end - v) < size - 1 ? (size_t)(end - v) : size - 1), v);
        return true;
    }
    return false;
}

static char *basic_header(struct al_reg *r)
{
    if (!r->user || !r->pass)
        return NULL;
    size_t n = strlen(r->user) + strlen(r->pass) + 2;
    char *up = malloc(n);
    if (!up)
        return NULL;
    snprintf(up, n, "%s:%s", r->user, r->pass);
    char *b = b64enc(up);
    wipe_free(up);
    if (!b)
        return NULL;
    size_t hn = strlen(b) + 32;
    char *h = malloc(hn);
    if (h)
        snprintf(h, hn, "Authorization: Basic %s", b);
    wipe_free(b);
    return h;
}

/* Answers the challenge in www: sets r->auth. */
static enum al_rc authenticate(struct al_reg *r, const char *www, struct al_err *err)
{
    wipe_free(r->auth);
    r->auth = NULL;
    if (strncasecmp(www, "Basic", 5) == 0) {
        if (!r->user)
            return al_err_set(err, AL_ERR_AUTH, "registry %s asks for credentials: give --user NAME (password on "
                              "stdin) or log in with `skopeo login %s`", r->ref.host, r->ref.host);
        if ((r->auth = basic_header(r)) == NULL)
            return al_err_set(err, AL_ERR_NOMEM, "out of memory");
        return AL_OK;
    }
    if (strncasecmp(www, "Bearer", 6) != 0)
        return al_err_set(err, AL_ERR_AUTH, "registry %s asks for an authentication scheme airlock does not speak: %.80s",
                          r->ref.host, www);
    char realm[1024] = "", service[256] = "", scope[512] = "";
    if (!challenge_param(www, "realm", realm, sizeof realm) || strncmp(realm, "http", 4) != 0)
        return al_err_set(err, AL_ERR_AUTH, "registry %s sent a Bearer challenge without a usable realm", r->ref.host);
    challenge_param(www, "service", service, sizeof service);
    challenge_param(www, "scope", scope, sizeof scope);
    struct req q;
    req_init(&q, "GET");
    char *es = curl_easy_escape(r->c, service, 0), *esc = curl_easy_escape(r->c, scope, 0);
    snprintf(q.url, sizeof q.url, "%s%sservice=%s%s%s", realm, strchr(realm, '?') ? "&" : "?", es ? es : "",
             scope[0] ? "&scope=" : "", scope[0] && esc ? esc : "");
    curl_free(es);
    curl_free(esc);
    struct al_buf body;
    al_buf_init(&body, TOKEN_MAX);
    q.body = &body;
    q.max = TOKEN_MAX;
    q.no_auth = true;
    char *basic = basic_header(r);
    q.basic = basic;
    enum al_rc rc = perform(r, &q, err);
    wipe_free(basic);
    if (!rc && q.status != 200)
        rc = status_error(&q, "the token request", err);
    json_t *j = rc ? NULL : json_loadb(body.data ? body.data : "", body.len, 0, NULL);
    const char *tok = json_string_value(json_object_get(j, "token"));
    if (!tok)
        tok = json_string_value(json_object_get(j, "access_token"));
    if (!rc && (!tok || !*tok || strlen(tok) > TOKEN_MAX))
        rc = al_err_set(err, AL_ERR_AUTH, "the token service %s gave no token", realm);
    if (!rc) {
        size_t n = strlen(tok) + 32;
        if ((r->auth = malloc(n)) == NULL)
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        else
            snprintf(r->auth, n, "Authorization: Bearer %s", tok);
    }
    json_decref(j);
    if (body.data)
        memset(body.data, 0, body.len);
    al_buf_release(&body);
    al_buf_release(&q.errbody);
    return rc;
}

/* perform, answering one 401 challenge. */
static enum al_rc do_req(struct al_reg *r, struct req *q, struct al_err *err)
{
    enum al_rc rc = perform(r, q, err);
    if (rc || q->status != 401 || !q->www[0] || q->got > 0)
        return rc;
    char www[HDR_MAX];
    snprintf(www, sizeof www, "%s", q->www);
    if ((rc = authenticate(r, www, err)))
        return rc;
    if (q->body)
        al_buf_reset(q->body);
    return perform(r, q, err);
}

static enum al_rc set_url(struct al_reg *r, struct req *q, struct al_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum al_rc set_url(struct al_reg *r, struct req *q, struct al_err *err, const char *fmt, ...)
{
    char path[AL_LIMIT_PATH];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof path)
        return al_err_set(err, AL_ERR_LIMIT, "a registry URL is too long");
    if (strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0)
        n = snprintf(q->url, sizeof q->url, "%s", path);
    else
        n = snprintf(q->url, sizeof q->url, "%s%s", r->base, path);
    if (n < 0 || (size_t)n >= sizeof q->url)
        return al_err_set(err, AL_ERR_LIMIT, "a registry URL is too long");
    return AL_OK;
}

/* ---- the API ---- */

enum al_rc al_reg_ping(struct al_reg *r, struct al_err *err)
{
    struct req q;
    req_init(&q, "GET");
    enum al_rc rc = set_url(r, &q, err, "/v2/");
    struct al_buf b;
    al_buf_init(&b, ERR_BODY_MAX);
    q.body = &b, q.max = ERR_BODY_MAX;
    if (!rc)
        rc = do_req(r, &q, err);
    if (!rc && q.status != 200)
        rc = status_error(&q, "version check", err);
    al_buf_release(&b);
    al_buf_release(&q.errbody);
    return rc;
}

enum al_rc al_reg_blob_exists(struct al_reg *r, const char *digest, bool *exists, struct al_err *err)
{
    *exists = false;
    struct req q;
    req_init(&q, "HEAD");
    enum al_rc rc = set_url(r, &q, err, "/v2/%s/blobs/%s", r->ref.repo, digest);
    if (!rc)
        rc = do_req(r, &q, err);
    if (!rc && q.status == 200)
        *exists = true;
    else if (!rc && q.status != 404)
        rc = status_error(&q, "blob check", err);
    al_buf_release(&q.errbody);
    return rc;
}

static enum al_rc next_location(struct al_reg *r, struct req *q, char *loc, size_t size, struct al_err *err)
{
    if (!q->location[0])
        return al_err_set(err, AL_ERR_INVALID, "%s %s: the registry gave no upload location", q->method, q->url);
    if (q->location[0] == '/')
        snprintf(loc, size, "%s%s", r->base, q->location);
    else
        snprintf(loc, size, "%s", q->location);
    return AL_OK;
}

/* The blob upload: POST, then one PUT or PATCH chunks and an empty PUT. */
static enum al_rc blob_put(struct al_reg *r, const char *digest, const unsigned char *mem, int fd, uint64_t size,
                           struct al_progress *p, struct al_err *err)
{
    char loc[AL_LIMIT_PATH];
    struct req q;
    req_init(&q, "POST");
    enum al_rc rc = set_url(r, &q, err, "/v2/%s/blobs/uploads/", r->ref.repo);
    if (!rc)
        rc = do_req(r, &q, err);
    if (!rc && q.status != 202)
        rc = status_error(&q, "upload start", err);
    if (!rc)
        rc = next_location(r, &q, loc, sizeof loc, err);
    al_buf_release(&q.errbody);
    uint64_t limit = r->o.chunk_size ? r->o.chunk_size : AL_REG_CHUNK;
    bool chunked = size > limit;
    /* The default streams a large blob in one PATCH (as skopeo does): distribution
     * handles 256 MiB Content-Range chunks at about half the speed. */
    uint64_t piece = r->o.chunk_size ? r->o.chunk_size : size;
    uint64_t off = 0;
    while (!rc && chunked && off < size) {
        uint64_t n = size - off < piece ? size - off : piece;
        char cr[64];
        snprintf(cr, sizeof cr, "%" PRIu64 "-%" PRIu64, off, off + n - 1);
        req_init(&q, "PATCH");
        q.upload = true, q.mem = mem, q.fd = fd, q.up_off = off, q.up_len = n, q.p = p;
        q.ctype = "application/octet-stream", q.content_range = cr;
        if (!(rc = set_url(r, &q, err, "%s", loc)) && !(rc = do_req(r, &q, err)) && q.status != 202)
            rc = status_error(&q, "upload chunk", err);
        if (!rc)
            rc = next_location(r, &q, loc, sizeof loc, err);
        al_buf_release(&q.errbody);
        off += n;
    }
    if (rc)
        return rc;
    req_init(&q, "PUT");
    q.upload = true;
    if (!chunked)
        q.mem = mem, q.fd = fd, q.up_len = size, q.p = p;
    q.ctype = "application/octet-stream";
    if (!(rc = set_url(r, &q, err, "%s%sdigest=%s", loc, strchr(loc, '?') ? "&" : "?", digest)) &&
        !(rc = do_req(r, &q, err)) && q.status != 201)
        rc = status_error(&q, "upload", err);
    al_buf_release(&q.errbody);
    return rc;
}

enum al_rc al_reg_blob_put_fd(struct al_reg *r, const char *digest, int fd, uint64_t size, struct al_progress *p,
                              struct al_err *err)
{
    return blob_put(r, digest, NULL, fd, size, p, err);
}

enum al_rc al_reg_blob_put_mem(struct al_reg *r, const char *digest, const void *data, size_t len,
                               struct al_err *err)
{
    static const unsigned char empty[1];
    return blob_put(r, digest, data ? data : empty, -1, len, NULL, err);
}

enum al_rc al_reg_manifest_put(struct al_reg *r, const char *reference, const char *media_type, const void *data,
                               size_t len, struct al_err *err)
{
    struct req q;
    req_init(&q, "PUT");
    q.upload = true, q.mem = data, q.up_len = len, q.ctype = media_type;
    enum al_rc rc = set_url(r, &q, err, "/v2/%s/manifests/%s", r->ref.repo, reference);
    if (!rc && !(rc = do_req(r, &q, err)) && q.status != 201)
        rc = status_error(&q, "manifest upload", err);
    al_buf_release(&q.errbody);
    return rc;
}

enum al_rc al_reg_manifest_get(struct al_reg *r, const char *reference, char **body, size_t *len,
                               char media_type[AL_REG_MT_MAX + 1], char digest[AL_DIGEST_SIZE], struct al_err *err)
{
    *body = NULL;
    *len = 0;
    struct req q;
    req_init(&q, "GET");
    struct al_buf b;
    al_buf_init(&b, AL_LIMIT_MANIFEST + 1);
    q.body = &b, q.max = AL_LIMIT_MANIFEST;
    q.accept = AL_MT_OCI_MANIFEST ", " AL_MT_OCI_INDEX ", " AL_MT_DOCKER_V2;
    enum al_rc rc = set_url(r, &q, err, "/v2/%s/manifests/%s", r->ref.repo, reference);
    if (!rc)
        rc = do_req(r, &q, err);
    if (!rc && q.status != 200)
        rc = status_error(&q, "manifest", err);
    if (!rc) {
        uint8_t raw[AL_SHA256_BYTES];
        al_sha256_buf(b.data ? b.data : "", b.len, raw);
        al_digest_format(raw, digest);
        char *semi = strchr(q.rtype, ';');
        if (semi)
            *semi = '\0';
        snprintf(media_type, AL_REG_MT_MAX + 1, "%s", q.rtype);
        *len = b.len;
        if ((*body = al_buf_take(&b)) == NULL && (*body = strdup("")) == NULL)
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    al_buf_release(&b);
    al_buf_release(&q.errbody);
    return rc;
}

enum al_rc al_reg_blob_get(struct al_reg *r, const char *digest, uint64_t size, al_reg_sink_fn *sink, void *ud,
                           struct al_err *err)
{
    uint64_t got = 0;
    for (int attempt = 0; attempt <= AL_REG_RESUMES; attempt++) {
        struct req q;
        req_init(&q, "GET");
        q.sink = sink, q.ud = ud, q.max = size - got;
        char range[64];
        bool resuming = got > 0;
        if (resuming) {
            snprintf(range, sizeof range, "bytes=%" PRIu64 "-", got);
            q.range = range;
        }
        struct al_err e = AL_ERR_INIT;
        enum al_rc rc = set_url(r, &q, err, "/v2/%s/blobs/%s", r->ref.repo, digest);
        if (rc) {
            al_buf_release(&q.errbody);
            return rc;
        }
        rc = do_req(r, &q, &e);
        got += q.got;
        long want = resuming ? 206 : 200;
        if (rc == AL_ERR_IO && q.status == want && q.got > 0 && got < size) {
            al_buf_release(&q.errbody);
            continue; /* dropped mid-blob after some progress: resume from got */
        }
        if (rc)
            al_err_set(err, rc, "blob %s: %s", digest, e.msg);
        else if (q.status != want)
            rc = resuming && q.status == 200
                 ? al_err_set(err, AL_ERR_IO, "blob %s: the registry ignored the Range request when resuming", digest)
                 : status_error(&q, "blob download", err);
        else if (got < size)
            rc = al_err_set(err, AL_ERR_IO, "blob %s: the registry sent %" PRIu64 " of %" PRIu64 " bytes", digest,
                            got, size);
        al_buf_release(&q.errbody);
        return rc;
    }
    return al_err_set(err, AL_ERR_IO, "blob %s: the connection dropped %d times; got %" PRIu64 " of %" PRIu64 " bytes",
                      digest, AL_REG_RESUMES + 1, got, size);
}

enum al_rc al_reg_referrers(struct al_reg *r, const char *digest, char **body, size_t *len, bool *api,
                            struct al_err *err)
{
    *api = false;
    *body = NULL;
    *len = 0;
    struct req q;
    req_init(&q, "GET");
    struct al_buf b;
    al_buf_init(&b, AL_LIMIT_MANIFEST + 1);
    q.body = &b, q.max = AL_LIMIT_MANIFEST, q.accept = AL_MT_OCI_INDEX;
    enum al_rc rc = set_url(r, &q, err, "/v2/%s/referrers/%s", r->ref.repo, digest);
    if (!rc)
        rc = do_req(r, &q, err);
    bool is_index = strncmp(q.rtype, AL_MT_OCI_INDEX, strlen(AL_MT_OCI_INDEX)) == 0;
    if (!rc && q.status == 200 && is_index) {
        *api = true;
        *len = b.len;
        if ((*body = al_buf_take(&b)) == NULL && (*body = strdup("")) == NULL)
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
        al_buf_release(&b);
        al_buf_release(&q.errbody);
        return rc;
    }
    al_buf_release(&b);
    al_buf_release(&q.errbody);
    if (rc)
        return rc;
    char tag[AL_REG_TAG_MAX + 1], mt[AL_REG_MT_MAX + 1], d[AL_DIGEST_SIZE];
    al_reg_referrers_tag(digest, tag);
    return al_reg_manifest_get(r, tag, body, len, mt, d, err);
}

const struct al_reg_blob *al_reg_view_find(const struct al_reg_view *v, const char *digest)
{
    for (size_t i = 0; v && i < v->n; i++)
        if (strcmp(v->blobs[i].digest, digest) == 0)
            return &v->blobs[i];
    return NULL;
}

void al_reg_view_release(struct al_reg_view *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++)
        free(v->blobs[i].data);
    free(v->blobs);
    memset(v, 0, sizeof *v);
}
