/*
 * fuzz_gguf.c: the header, key/value pairs and tensor table of a GGUF file
 * through the gguf module (our caps and type checks, then ggml's reader), as
 * `add`, `ingest` and `inspect` see a model file. The input is the whole file,
 * in a memfd.
 */
#include <stdlib.h>
#include <unistd.h>

#include "fuzzutil.h"
#include "gguf/gguf.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = fz_memfd("model.gguf", data, size);
    struct al_gguf_info info;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_gguf_inspect_fd(fd, "model.gguf", &info, &err);
    if (rc == AL_OK) {
        if (info.n_types < 0 || info.n_types > AL_GGUF_TYPES_MAX || info.data_offset > info.file_size)
            abort();
    } else if (err.msg[0] == '\0') {
        abort();
    }
    close(fd);
    return 0;
}
