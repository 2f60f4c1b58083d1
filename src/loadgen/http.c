/*
 * http.c: one-shot HTTP requests on libcurl's easy interface (the suite's
 * server validation, a server's /props). Responses are capped at
 * AL_LIMIT_HTTP_RESPONSE; redirects are not followed; only http and https.
 */
#include "loadgen/loadgen_int.h"

#include "core/buf.h"
#include "core/limits.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void al_loadgen_curl_init(void) { pthread_once(&curl_once, curl_init); }

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct al_buf *b = ud;
    al_buf_add(b, data, size * n);
    return al_buf_failed(b) ? 0 : size * n;
}

enum al_rc al_http_request(const char *url, const char *body, long timeout_s, char **resp, long *status,
                           struct al_err *err)
{
    if (!url || !resp || *resp || !status)
        return al_err_set(err, AL_ERR_USAGE, "al_http_request: bad arguments");
    al_loadgen_curl_init();
    CURL *c = curl_easy_init();
    if (!c)
        return al_err_set(err, AL_ERR_NOMEM, "cannot create an HTTP client");
    struct al_buf b;
    al_buf_init(&b, AL_LIMIT_HTTP_RESPONSE);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s > 0 ? timeout_s : 600L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (body) {
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    const char *key = getenv("AIRLOCK_API_KEY");
    char auth[512];
    if (key && *key && snprintf(auth, sizeof auth, "Authorization: Bearer %s", key) < (int)sizeof auth) {
        hdr = curl_slist_append(hdr, auth);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    }
    CURLcode cc = curl_easy_perform(c);
    enum al_rc rc = AL_OK;
    if (cc != CURLE_OK) {
        if (b.over)
            rc = al_err_set(err, AL_ERR_LIMIT, "the response of '%s' is over the cap of %u bytes (AL_LIMIT_HTTP_RESPONSE)",
                            url, AL_LIMIT_HTTP_RESPONSE);
        else
            rc = al_err_set(err, AL_ERR_IO, "request to '%s' failed: %s", url, curl_easy_strerror(cc));
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        *resp = al_buf_take(&b);
        if (!*resp)
            *resp = strdup("");
        if (!*resp)
            rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
    }
    al_buf_release(&b);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return rc;
}

struct stream_ctx {
    CURL *c;
    al_http_data_fn *fn;
    void *ud;
    bool stopped;
};

static size_t on_stream(char *data, size_t size, size_t n, void *ud)
{
    struct stream_ctx *sc = ud;
    long status = 0;
    curl_easy_getinfo(sc->c, CURLINFO_RESPONSE_CODE, &status);
    if (!sc->fn(sc->ud, status, data, size * n)) {
        sc->stopped = true;
        return 0;
    }
    return size * n;
}

enum al_rc al_http_stream(const char *url, const char *body, long timeout_s, al_http_data_fn *fn, void *ud,
                          long *status, struct al_err *err)
{
    if (!url || !body || !fn || !status)
        return al_err_set(err, AL_ERR_USAGE, "al_http_stream: bad arguments");
    al_loadgen_curl_init();
    CURL *c = curl_easy_init();
    if (!c)
        return al_err_set(err, AL_ERR_NOMEM, "cannot create an HTTP client");
    struct stream_ctx sc = {.c = c, .fn = fn, .ud = ud};
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    const char *key = getenv("AIRLOCK_API_KEY");
    char auth[512];
    if (key && *key && snprintf(auth, sizeof auth, "Authorization: Bearer %s", key) < (int)sizeof auth)
        hdr = curl_slist_append(hdr, auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s > 0 ? timeout_s : 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sc);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode cc = curl_easy_perform(c);
    enum al_rc rc = AL_OK;
    *status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && sc.stopped))
        rc = al_err_set(err, AL_ERR_IO, "request to '%s' failed: %s", url, curl_easy_strerror(cc));
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return rc;
}
