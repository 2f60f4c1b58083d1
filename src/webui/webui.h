/*
 * webui.h: the files of the offline web chat that `airlock serve` answers at
 * `/` (index.html, app.js, app.css in this folder). They are compiled into
 * the binary: CMake runs embed.cmake at build time, which writes them as byte
 * arrays into generated/webui/files.c; nothing is read from disk at run time
 * and nothing is fetched from elsewhere (no CDN, no fonts, no framework).
 *
 * Only lookups: the server decides whether to answer (--no-webui), adds the
 * headers (Content-Security-Policy, nosniff) and needs no key for the files;
 * the page's own API calls carry the key the user enters.
 */
#ifndef AL_WEBUI_WEBUI_H
#define AL_WEBUI_WEBUI_H

#include <stddef.h>

struct al_webui_file {
    const char *name;          /* "index.html", "app.js", "app.css" */
    const char *ctype;         /* its Content-Type, with charset */
    const unsigned char *data; /* static, never freed */
    size_t len;
};

/* The file a request path names, or NULL: "/" and "/index.html" are the
 * page, "/NAME" a file of the folder by its exact name (no other path is
 * looked at, so "..", "//" or a query string find nothing). The result is
 * static. */
const struct al_webui_file *al_webui_find(const char *path);

/* The table embed.cmake generates (files.c); use al_webui_find. */
extern const struct al_webui_file al_webui_files[];
extern const size_t al_webui_n_files;

#endif
