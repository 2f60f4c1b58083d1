/* gguf_int.h: private to src/gguf: the reader shared by inspection (gguf.c)
 * and the value scan (values.c). */
#ifndef AL_GGUF_GGUF_INT_H
#define AL_GGUF_GGUF_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct gguf_context; /* ggml's */

/* Parses the header, key/value pairs and tensor table of the regular file fd
 * through ggml's reader (our caps first, ggml's log captured), reading no
 * tensor data and checking no tensor bounds. On success *g is the caller's
 * (gguf_free) and *file_size is from fstat. Errors as al_gguf_inspect_fd. */
enum al_rc al_gguf__open(int fd, const char *name, struct gguf_context **g, uint64_t *file_size,
                         struct al_err *err);

/* Copies src into dst[size], control characters replaced by '?', truncated. */
void al_gguf__copy_clean(char *dst, size_t size, const char *src);

#endif
