#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void al_buf_init(struct al_buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

void al_buf_release(struct al_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void al_buf_reset(struct al_buf *b)
{
    b->len = 0;
    b->failed = b->over = false;
    if (b->data)
        b->data[0] = '\0';
}

static bool grow(struct al_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > b->max || b->len > b->max - extra) {
        b->failed = b->over = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void al_buf_add(struct al_buf *b, const void *data, size_t len)
{
    if (!grow(b, len))
        return;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void al_buf_addstr(struct al_buf *b, const char *s) { al_buf_add(b, s, strlen(s)); }

void al_buf_addch(struct al_buf *b, char c) { al_buf_add(b, &c, 1); }

void al_buf_addf(struct al_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        al_buf_add(b, small, (size_t)n);
        return;
    }
    if (!grow(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *al_buf_str(const struct al_buf *b) { return b->data ? b->data : ""; }

char *al_buf_take(struct al_buf *b)
{
    char *s = NULL;
    if (!b->failed) {
        s = b->data ? b->data : strdup("");
        b->data = NULL;
    }
    al_buf_release(b);
    return s;
}
