/*
 * routes_webui.c: GET /, /app.js, /app.css, the offline web chat
 * (src/webui). The files are compiled into the binary; no key is needed for
 * them (there is nothing secret in them), while every API call the page makes
 * carries the key its user enters, checked as any client's.
 *
 * The headers make the page's own files the only thing a browser runs or
 * loads: the Content-Security-Policy allows scripts, styles, images and
 * fetches from this origin alone (no inline script or style, no eval, no
 * other host, no plugin, no framing, no form posted anywhere), nosniff keeps
 * a file to its declared type, and no Referer leaves the page.
 */
#include <string.h>

#include "server/http_int.h"
#include "webui/webui.h"

#define WEBUI_CSP                                                                                                  \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "            \
    "font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

enum MHD_Result al_server_route_webui(struct al_http_req *h, json_t *body)
{
    (void)body;
    const struct al_webui_file *f = h->srv->o.no_webui ? NULL : al_webui_find(h->url);
    if (!f)
        return al_http_reply_error(h, 404, "invalid_request_error", NULL, "unknown_url",
                                   "unknown request URL: GET %s%s", h->url,
                                   h->srv->o.no_webui ? " (the web chat is off: --no-webui)" : "");
    struct MHD_Response *r =
        MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Security-Policy", WEBUI_CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    return al_http_reply_response(h, 200, r, f->ctype);
}
