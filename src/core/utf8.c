/*
 * utf8.c: validation by RFC 3629's table (see utf8.h).
 */
#include "core/utf8.h"

#include "core/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The bytes a character starting with lead takes, and the range its second
 * byte must fall in (which rules out overlong forms, surrogates and values
 * above U+10FFFF); 0 for a byte that cannot start one. */
static size_t lead_info(unsigned char c, unsigned char *lo, unsigned char *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0; /* continuation byte, or an overlong 2-byte lead */
    if (c < 0xE0)
        return 2;
    if (c < 0xF0) {
        if (c == 0xE0)
            *lo = 0xA0;
        else if (c == 0xED)
            *hi = 0x9F;
        return 3;
    }
    if (c < 0xF5) {
        if (c == 0xF0)
            *lo = 0x90;
        else if (c == 0xF4)
            *hi = 0x8F;
        return 4;
    }
    return 0;
}

/* How many bytes of s[0..len) agree with a character starting at s[0]. */
static size_t prefix_ok(const unsigned char *s, size_t len, size_t need, unsigned char lo, unsigned char hi)
{
    size_t i = 1;
    if (i < len && i < need) {
        if (s[i] < lo || s[i] > hi)
            return i;
        i++;
    }
    while (i < len && i < need && (s[i] & 0xC0) == 0x80)
        i++;
    return i;
}

size_t al_utf8_char_len(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    const unsigned char *u = (const unsigned char *)s;
    unsigned char lo, hi;
    size_t need = lead_info(u[0], &lo, &hi);
    if (need == 0 || need > len)
        return 0;
    return prefix_ok(u, len, need, lo, hi) == need ? need : 0;
}

size_t al_utf8_partial_tail(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t k = 1; k <= 3 && k <= len; k++) {
        unsigned char lo, hi;
        size_t need = lead_info(u[len - k], &lo, &hi);
        if (need == 0)
            continue; /* a continuation byte: the lead is further back */
        /* A lead with fewer bytes after it than it needs, all fitting so far. */
        return need > k && prefix_ok(u + len - k, k, need, lo, hi) == k ? k : 0;
    }
    return 0;
}

static void add_valid(struct al_buf *b, const char *s, size_t len)
{
    size_t run = 0, i = 0;
    while (i < len) {
        size_t n = al_utf8_char_len(s + i, len - i);
        if (n > 0) {
            i += n;
            continue;
        }
        al_buf_add(b, s + run, i - run);
        al_buf_add(b, "\xEF\xBF\xBD", 3);
        run = ++i;
    }
    al_buf_add(b, s + run, len - run);
}

char *al_utf8_valid_dup(const char *s, size_t len, size_t *out_len)
{
    struct al_buf b;
    al_buf_init(&b, SIZE_MAX / 4);
    add_valid(&b, s, len);
    if (out_len)
        *out_len = b.len;
    return al_buf_take(&b);
}
