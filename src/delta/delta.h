/*
 * delta.h: a patch from one file to the next, made of tensors.
 *
 * A GGUF is a header (key/value metadata and the tensor table) followed by
 * aligned tensor data. al_delta_make reads both tensor tables through the
 * gguf module and writes a patch that rebuilds the new file from the old one
 * (the base):
 *   - a tensor whose name, type, shape and bytes are unchanged is a copy
 *     from its position in the base (nothing shipped);
 *   - a changed tensor of the same type and shape is zstd-compressed with the
 *     base tensor's bytes at the same position as prefix (patch-from, one
 *     chunk of at most AL_DELTA_CHUNK at a time, long-distance matching with
 *     a window sized to the chunk and its prefix);
 *   - a new tensor, or one whose type or shape changed (a re-quantization),
 *     is compressed alone;
 *   - the header and metadata are compressed with the base header as prefix
 *     (a chat template added costs the template); padding of zeros is a
 *     count.
 * Any other file (tokenizer, card, not a GGUF) is cut into AL_DELTA_CHUNK
 * chunks: an equal chunk is a copy, a different one is compressed with the
 * base chunk at the same offset as prefix.
 *
 * Memory is bounded whatever the file size: making holds a base chunk, a new
 * chunk and the compressed chunk (3 x AL_DELTA_CHUNK plus zstd's tables),
 * applying a base chunk, a compressed chunk and the output chunk. Files are
 * read with pread; the patch is read and written sequentially.
 *
 * The patch format (little-endian, docs/internals/delta.md):
 *   "ALDELTA1", u64 base size, u64 result size
 *   then ops, each a tag byte:
 *     'C' u64 base offset, u64 length            copy from the base
 *     'Z' u64 length                              zeros
 *     'L' u64 length, u64 compressed length, zstd frame
 *     'P' u64 base offset, u64 base length, u64 length, u64 compressed length,
 *         zstd frame made with base[offset, +base length) as prefix
 *     'E'                                         end (the file ends here)
 * Applying checks every op against the caps and the base size, every frame's
 * decompressed length, the total against the result size, and that nothing
 * follows 'E'. It proves nothing about the result's content: the caller
 * hashes what it writes and compares with the digest it trusts.
 */
#ifndef AL_DELTA_DELTA_H
#define AL_DELTA_DELTA_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

#define AL_DELTA_CHUNK    (16u << 20) /* one compressed op's output and its prefix, at most */
#define AL_DELTA_LEVEL    3           /* zstd level of every frame */
#define AL_DELTA_MAGIC    "ALDELTA1"
#define AL_DELTA_HDR_SIZE 24u

struct al_progress;

/* What a patch holds, by kind. Tensor counts are 0 for a file that is not a
 * GGUF (then its chunks are counted in the bytes). */
struct al_delta_stats {
    bool gguf;                 /* both files were GGUF: made tensor by tensor */
    uint64_t tensors_unchanged, tensors_changed, tensors_new;
    uint64_t bytes_unchanged;  /* result bytes copied from the base */
    uint64_t bytes_changed;    /* result bytes of changed tensors (or chunks) */
    uint64_t bytes_new;        /* result bytes of new tensors */
    uint64_t bytes_meta;       /* header, metadata, padding and tail */
    uint64_t result_size;
    uint64_t patch_bytes;      /* the patch's size (0 in a dry run) */
};

/* Makes the patch from the file open on base_fd to the one on new_fd and
 * writes it to out_fd (sequentially, from its current position). out_fd -1
 * is a dry run: the files are compared and *st filled, nothing compressed.
 * The names are used in messages only. Both fds stay the caller's. progress
 * (may be NULL) advances by result bytes.
 * Errors: AL_ERR_IO (read, write), AL_ERR_INVALID (a file that says GGUF
 * and whose table does not parse), AL_ERR_NOMEM, AL_ERR_INTERNAL (zstd). */
enum al_rc al_delta_make(int base_fd, const char *base_name, int new_fd, const char *new_name, int out_fd,
                         struct al_progress *progress, struct al_delta_stats *st, struct al_err *err);

/* Where the rebuilt bytes go, in order. Returns AL_OK or an error (in err). */
typedef enum al_rc al_delta_write_fn(void *ud, const void *data, size_t len, struct al_err *err);

/* The sizes a patch declares (from its header, read with pread at 0). */
enum al_rc al_delta_header(int patch_fd, uint64_t *base_size, uint64_t *result_size, struct al_err *err);

/* Rebuilds the result from the base open on base_fd and the patch open on
 * patch_fd (read sequentially from its current position), passing every
 * byte to fn. The patch must declare exactly result_size bytes and a base of
 * the base file's size. Errors: AL_ERR_INVALID (malformed patch: bad magic,
 * an op out of the base or over a cap, a frame that does not decompress to
 * its length, bytes after the end), AL_ERR_VERIFY (the patch is for another
 * base size or result size), AL_ERR_IO, AL_ERR_NOMEM, and fn's errors. */
enum al_rc al_delta_apply(int base_fd, int patch_fd, uint64_t result_size, al_delta_write_fn *fn, void *ud,
                          struct al_progress *progress, struct al_err *err);

#endif
