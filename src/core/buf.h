/*
 * buf.h: a growable byte buffer with a hard maximum and a sticky error.
 *
 * Append freely, check once: after an allocation failure or an append that
 * would pass `max`, every later append is a no-op and al_buf_failed() is true.
 * The data is always NUL-terminated (the terminator is not counted in len).
 *
 *   struct al_buf b;
 *   al_buf_init(&b, AL_LIMIT_MANIFEST);
 *   al_buf_addf(&b, "%s:%s", name, tag);
 *   if (al_buf_failed(&b)) ...
 *   al_buf_release(&b);
 */
#ifndef AL_CORE_BUF_H
#define AL_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct al_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;  /* len never exceeds this */
    bool failed; /* sticky: out of memory or over max */
    bool over;   /* the failure was the maximum, not memory */
};

void al_buf_init(struct al_buf *b, size_t max);
void al_buf_release(struct al_buf *b);
void al_buf_reset(struct al_buf *b); /* len = 0, keeps memory, clears errors */

void al_buf_add(struct al_buf *b, const void *data, size_t len);
void al_buf_addstr(struct al_buf *b, const char *s);
void al_buf_addch(struct al_buf *b, char c);
void al_buf_addf(struct al_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline bool al_buf_failed(const struct al_buf *b) { return b->failed; }

/* The contents as a C string ("" when empty); valid until the next append. */
const char *al_buf_str(const struct al_buf *b);

/* Hands the malloc'd string to the caller (NULL after a failure) and resets b. */
char *al_buf_take(struct al_buf *b);

#endif
