/*
 * framing.c: how a request's body is delimited (RFC 9112 section 6). Where
 * two parties could read the framing differently, the request is refused and
 * its connection closed: that is how request smuggling works, a proxy taking
 * one length and this server another, the rest of the bytes read as a second
 * request. libmicrohttpd 0.9.75 takes Transfer-Encoding over Content-Length,
 * the first of two Content-Length values, and reads a body of an unknown
 * Transfer-Encoding until the connection closes; so the check is ours, made
 * when the headers are in and before any byte of the body is read.
 */
#include "server/http_int.h"

#include <strings.h>

/* Trims optional whitespace (RFC 9110's OWS) from both ends of [*p, *p+*n). */
static void trim_ows(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\t'))
        (*p)++, (*n)--;
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

/* A header value for an error message: at most 40 bytes, anything but
 * printable ASCII shown as '?' (the message goes into JSON, which must be
 * UTF-8, and into the log). */
static const char *shown(const char *v, char out[41])
{
    size_t i = 0;
    for (; v[i] && i < 40; i++)
        out[i] = v[i] >= 0x20 && v[i] < 0x7f ? v[i] : '?';
    out[i] = 0;
    return out;
}

/* Reads one Content-Length field value: a comma-separated list of decimal
 * numbers, all equal (RFC 9110 8.6 allows repeats of one value). Each must
 * also equal *len when *have is set. */
static enum al_rc content_length(const char *v, uint64_t *len, bool *have, struct al_err *err)
{
    const char *p = v;
    char buf[41];
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *s = p;
        trim_ows(&s, &n);
        if (n == 0 || n > 19)
            return al_err_set(err, AL_ERR_INVALID, "'Content-Length: %s' is not a length in bytes", shown(v, buf));
        uint64_t x = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return al_err_set(err, AL_ERR_INVALID, "'Content-Length: %s' is not a length in bytes", shown(v, buf));
            x = x * 10 + (uint64_t)(s[i] - '0');
        }
        if (*have && x != *len)
            return al_err_set(err, AL_ERR_INVALID,
                              "the request has two different Content-Length values (%" PRIu64 " and %" PRIu64 ")",
                              *len, x);
        *len = x;
        *have = true;
        if (!comma)
            return AL_OK;
        p = comma + 1;
    }
}

enum al_rc al_http_framing_check(const char *version, const struct al_http_field *fields, size_t n,
                                 struct al_err *err)
{
    uint64_t len = 0;
    bool have_len = false;
    const char *te = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(fields[i].name, "Content-Length") == 0) {
            enum al_rc rc = content_length(fields[i].value ? fields[i].value : "", &len, &have_len, err);
            if (rc)
                return rc;
        } else if (strcasecmp(fields[i].name, "Transfer-Encoding") == 0) {
            if (te)
                return al_err_set(err, AL_ERR_INVALID, "the request has two Transfer-Encoding headers");
            te = fields[i].value ? fields[i].value : "";
        }
    }
    if (!te)
        return AL_OK;
    if (have_len)
        return al_err_set(err, AL_ERR_INVALID,
                          "the request has both Content-Length and Transfer-Encoding: send one of them");
    if (version && strcmp(version, "HTTP/1.0") == 0)
        return al_err_set(err, AL_ERR_INVALID, "an HTTP/1.0 request may not have a Transfer-Encoding");
    /* Only "chunked" alone: the server decodes no other coding, and a list
     * ending in chunked ("gzip, chunked") would hand the handler bytes it
     * cannot read. */
    const char *p = te;
    size_t tn = strlen(te);
    char buf[41];
    trim_ows(&p, &tn);
    if (tn != 7 || strncasecmp(p, "chunked", 7) != 0)
        return al_err_set(err, AL_ERR_INVALID,
                          "'Transfer-Encoding: %s' is not supported: send the body with Content-Length or "
                          "'Transfer-Encoding: chunked'",
                          shown(te, buf));
    return AL_OK;
}
