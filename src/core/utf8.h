/*
 * utf8.h: UTF-8 as model output needs it.
 *
 * A model's tokens are bytes. A byte-fallback vocabulary (Llama's SPM) spells
 * one character over several tokens, and a model may emit bytes that are
 * never valid UTF-8 (a random or broken model does). JSON must carry valid
 * UTF-8 (RFC 8259; jansson refuses anything else), so streamed text is held
 * back while a character is incomplete, and what is invalid becomes U+FFFD,
 * as llama-server and OpenAI's API do.
 */
#ifndef AL_CORE_UTF8_H
#define AL_CORE_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 character at s[0..len): 1 to 4, or 0 when it is
 * invalid (a stray continuation byte, an overlong form, a surrogate, above
 * U+10FFFF, 0xF8-0xFF) or cut short by len. */
size_t al_utf8_char_len(const char *s, size_t len);

/* How many bytes at the end of s[0..len) start a character that is not
 * complete yet but may still be: 0 to 3. */
size_t al_utf8_partial_tail(const char *s, size_t len);

/* A malloc'd, NUL-terminated copy of s[0..len) with each byte that does not
 * start a valid character replaced by U+FFFD (EF BF BD), its length in
 * *out_len (may be NULL). NULL when out of memory. */
char *al_utf8_valid_dup(const char *s, size_t len, size_t *out_len);

#endif
