/*
 * webui.c: looks a request path up in the embedded files (files.c, written
 * by embed.cmake at build time).
 */
#include "webui/webui.h"

#include <string.h>

const struct al_webui_file *al_webui_find(const char *path)
{
    if (!path || path[0] != '/')
        return NULL;
    const char *name = strcmp(path, "/") == 0 ? "index.html" : path + 1;
    for (size_t i = 0; i < al_webui_n_files; i++)
        if (strcmp(al_webui_files[i].name, name) == 0)
            return &al_webui_files[i];
    return NULL;
}
