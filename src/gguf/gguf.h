/*
 * gguf.h: what a GGUF file is, without loading it.
 *
 * Reads the header, key/value pairs and tensor table of a GGUF model through
 * ggml's own reader (ggml/include/gguf.h, the one llama.cpp loads with), so
 * what airlock accepts is what llama.cpp will parse. This module is the only
 * one that includes gguf.h or ggml.h; the result is plain data.
 *
 * On top of ggml's checks it adds the ones ggml skips when tensor data is not
 * loaded: the header counts are compared with AL_LIMIT_GGUF_KV and
 * AL_LIMIT_GGUF_TENSORS before ggml reads them, every tensor's data must lie
 * inside the file, and every value is type-checked before it is read (ggml
 * aborts on a getter of the wrong type). A malformed file is an error, never
 * a crash: AL_ERR_INVALID "'<path>' is not a valid GGUF file: <why>", or
 * AL_ERR_LIMIT naming the cap. ggml's log lines during a call are captured
 * (the first and last become the <why>) and sent to the al_log sink at debug
 * level, never straight to stderr.
 *
 * Strings copied into the info are truncated to their field and control
 * characters are replaced by '?', so they are safe to print. Calls may run
 * from several threads; they are serialized inside the module because ggml's
 * log callback is process-wide (see docs/internals/gguf.md).
 */
#ifndef AL_GGUF_GGUF_H
#define AL_GGUF_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define AL_GGUF_TYPES_MAX 48 /* distinct tensor types in the histogram (ggml has 43) */

struct al_gguf_type_count {
    char type[16];     /* ggml type name, upper case: "F32", "Q4_0", "Q6_K" */
    uint64_t tensors;  /* tensors of this type */
    uint64_t elements; /* their elements (parameters) */
    uint64_t bytes;    /* their data size */
};

struct al_gguf_info {
    uint32_t version;      /* GGUF format version (2 or 3) */
    int64_t n_kv;          /* key/value pairs */
    int64_t n_tensors;
    uint64_t file_size;    /* bytes, as found by fstat */
    uint64_t data_offset;  /* where the tensor data section starts */
    uint64_t data_size;    /* sum of the tensors' data sizes (no padding) */
    uint64_t n_params;     /* sum of the tensors' elements */
    uint32_t alignment;

    char arch[64];         /* general.architecture, "" when absent */
    char name[256];        /* general.name */
    char license[256];     /* general.license */
    char file_type[32];    /* general.file_type as a name ("Q4_0", "F16", "Q4_K_M"), else
                              the dominant tensor type of 2-D tensors by elements */
    int32_t file_type_id;  /* general.file_type (llama_ftype), -1 when absent */

    /* <arch>.* hyper-parameters; 0 when absent. A per-layer array counts as
     * its largest element. vocab_size falls back to the tokenizer's list. */
    uint32_t vocab_size, context_length, embedding_length, block_count;
    uint32_t head_count, head_count_kv, feed_forward_length;

    bool has_chat_template;  /* tokenizer.chat_template is a string */

    /* An adapter (llama.cpp's llama-adapter.cpp reads these): general.type
     * ("adapter"; "" when absent), adapter.type ("lora"), adapter.lora.alpha
     * (0 when absent or not an F32, which llama.cpp reads as "no scaling by
     * alpha / rank"). */
    char general_type[32];
    char adapter_type[32];
    float lora_alpha;
    char tokenizer_model[32]; /* tokenizer.ggml.model: "llama", "gpt2", ... */

    struct al_gguf_type_count types[AL_GGUF_TYPES_MAX]; /* by first appearance */
    int n_types;
};

/* Inspects the GGUF file at path into *out (overwritten; nothing to free).
 * Errors: AL_ERR_IO (cannot open or read), AL_ERR_INVALID (not a valid GGUF
 * file, with ggml's reason), AL_ERR_LIMIT (over AL_LIMIT_GGUF_KV or
 * AL_LIMIT_GGUF_TENSORS). */
enum al_rc al_gguf_inspect(const char *path, struct al_gguf_info *out, struct al_err *err);

/* The same on an open, readable, seekable file descriptor, read with pread
 * from offset 0 (the fd's position is left alone; the fd stays the caller's).
 * name is used in messages only. */
enum al_rc al_gguf_inspect_fd(int fd, const char *name, struct al_gguf_info *out,
                              struct al_err *err);

/* Calls fn once per chat template the GGUF carries (tokenizer.chat_template
 * and the named ones, tokenizer.chat_template.<name>), with the key and the
 * template's bytes as stored (not cleaned: the scanner looks at them; len
 * excludes the NUL). The text is borrowed for the call only. Errors as
 * al_gguf_inspect_fd; a file with no template calls fn never. */
typedef void al_gguf_template_fn(void *ud, const char *key, const char *text, size_t len);
enum al_rc al_gguf_chat_templates_fd(int fd, const char *name, al_gguf_template_fn *fn, void *ud,
                                     struct al_err *err);

/* True when the file starts with the 4 bytes "GGUF". No other check. */
bool al_gguf_has_magic(const char *path);
/* True when the len bytes at head start with them. */
bool al_gguf_is_magic(const void *head, size_t len);
/* The one rule for a name that says GGUF: it ends in ".gguf", in any case.
 * Such a file is loaded as GGUF by the engine, so its content must be one
 * (al_gguf_is_magic, then the header checks). */
bool al_gguf_named(const char *name);

/* ---- the tensor table ---- */

/* One tensor of a GGUF file, as its table says. The name is copied exactly
 * (ggml caps names at 63 bytes), not cleaned: it identifies the tensor. */
struct al_gguf_tensor {
    char name[64];
    int32_t type;       /* ggml type id */
    int64_t ne[4];      /* shape, unused dimensions 1 */
    uint64_t offset;    /* absolute file offset of the data */
    uint64_t size;      /* data bytes (no padding) */
};

struct al_gguf_table {
    uint64_t file_size;
    uint64_t data_offset;       /* where the tensor data section starts */
    struct al_gguf_tensor *t;   /* n entries, in table order; malloc'd */
    size_t n;
};

/* Reads the tensor table of the GGUF file open on fd into *out (overwritten;
 * release with al_gguf_table_release). Every tensor's data lies inside the
 * file (checked). Errors as al_gguf_inspect_fd, AL_ERR_NOMEM. */
enum al_rc al_gguf_table_fd(int fd, const char *name, struct al_gguf_table *out, struct al_err *err);
void al_gguf_table_release(struct al_gguf_table *t);

/* ---- tensor values ---- */

#define AL_GGUF_FINDINGS_MAX 32 /* findings listed in a value report; all are counted */

/* One finding of al_gguf_scan_values. */
struct al_gguf_finding {
    char tensor[64];   /* tensor name, cleaned like the info's strings */
    char type[16];     /* its ggml type name, upper case */
    uint64_t offset;   /* file offset: of the first bad value, of the bad block (scale of a
                          quantized block), or of the tensor's data ("out of file", "bad type") */
    const char *what;  /* static: "nan", "inf", "nan or inf" (a quantized type whose block
                          layout we do not know: ggml's check failed on the block at offset),
                          "out of file", "bad type" (ggml has no check for the type,
                          Q8_1 for one: llama.cpp's --check-tensors refuses it too) */
};

struct al_gguf_value_report {
    int64_t n_tensors;        /* tensors in the file */
    int64_t tensors_checked;  /* tensors whose data was read to the end (or to a finding) */
    uint64_t bytes_checked;   /* tensor data bytes read and checked */
    uint64_t n_findings;      /* every finding, listed or not */
    int n_listed;             /* findings[0..n_listed), in tensor order */
    struct al_gguf_finding findings[AL_GGUF_FINDINGS_MAX];
};

/* Reads every tensor's data from the GGUF file open on fd (pread in 8 MiB
 * chunks from the fd's own offsets; its position and the fd stay the
 * caller's) and looks for NaN and Inf: in every value of F32, F16 and BF16
 * tensors, and in the scales of quantized blocks, through ggml's
 * ggml_validate_row_data (the check behind llama.cpp's --check-tensors) for
 * every type it knows. Each tensor gives at most one finding, its first bad
 * value; the rest of that tensor is not read. A tensor whose data runs past
 * the end of the file is an "out of file" finding, not an error. name is used
 * in messages only.
 *
 * *out is overwritten (nothing to free). Findings are not errors: the call
 * returns AL_OK with out->n_findings > 0. Errors: AL_ERR_IO (cannot read),
 * AL_ERR_INVALID (not a valid GGUF file: header or tensor table, as
 * al_gguf_inspect_fd), AL_ERR_LIMIT (a header cap), AL_ERR_NOMEM. ggml's
 * check writes one line to stderr for a bad quantized block (it has no log
 * hook); float types are checked by our own code and print nothing. Runs at
 * page-cache speed (docs/internals/gguf.md has the numbers). */
enum al_rc al_gguf_scan_values(int fd, const char *name, struct al_gguf_value_report *out,
                               struct al_err *err);

/* The same on a path (opened read-only, closed before return); AL_ERR_NOT_FOUND
 * when it does not exist. */
enum al_rc al_gguf_scan_values_path(const char *path, struct al_gguf_value_report *out,
                                    struct al_err *err);

/* The same scan on the bytes of a file as they are written, for a writer
 * that has them in hand (a delta applied, a bundle entry, a pulled blob), so
 * that the finished file need not be read again. file_size: the bytes the
 * stream will carry. Feed every byte in order; finish gives the report
 * al_gguf_scan_values would give on the same bytes, or false when the
 * stream could not be followed: not a GGUF, a header that does not parse or
 * is over 32 MiB, a tensor table not in file order, fewer or more bytes than
 * file_size. Then scan the file. Memory: the header, then one 8 MiB chunk. */
struct al_gguf_value_stream;
enum al_rc al_gguf_value_stream_new(uint64_t file_size, const char *name, struct al_gguf_value_stream **out,
                                    struct al_err *err);
void al_gguf_value_stream_feed(struct al_gguf_value_stream *s, const void *data, size_t len);
bool al_gguf_value_stream_finish(struct al_gguf_value_stream *s, struct al_gguf_value_report *out);
void al_gguf_value_stream_free(struct al_gguf_value_stream *s);

#endif
