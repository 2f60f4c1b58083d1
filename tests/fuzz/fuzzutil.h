/*
 * fuzzutil.h: what the libFuzzer harnesses under tests/fuzz share.
 *
 * Each fuzz_<parser>.c defines LLVMFuzzerTestOneInput for one entry point of
 * hostile input and links with airlock_lib and libFuzzer (see
 * docs/internals/fuzz.md). A harness must not leak, must not write outside
 * the temporary directory it made, and must stay deterministic: the same
 * input gives the same path through the code.
 */
#ifndef AL_FUZZ_FUZZUTIL_H
#define AL_FUZZ_FUZZUTIL_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry points (declared for -Wmissing-prototypes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A NUL-terminated malloc'd copy of data (the parsers that take C strings);
 * aborts when out of memory, which libFuzzer reports as a crash. */
char *fz_strndup(const uint8_t *data, size_t size);

/* A fresh memfd holding data, positioned at 0; aborts on failure. The
 * caller closes it. Its path is /proc/self/fd/<fd>. */
int fz_memfd(const char *name, const uint8_t *data, size_t size);

/* A private temporary directory for this process (made once, removed at
 * exit), e.g. an AIRLOCK_HOME. Returns a borrowed path. */
const char *fz_tmpdir(void);

/* Writes data to path (created or truncated); aborts on failure. */
void fz_write_file(const char *path, const uint8_t *data, size_t size);

/* Quiets airlock's log sink so that fuzzing output stays readable. */
void fz_quiet(void);

#endif
