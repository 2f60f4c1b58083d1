/*
 * fuzz_gguf.c: the header, key/value pairs and tensor table of a GGUF file
 * through the gguf module (our caps and type checks, then ggml's reader), as
 * `add`, `ingest` and `inspect` see a model file; then the value scan of the
 * same file (tensor data read and checked, data past the end a finding). The
 * input is the whole file, in a memfd.
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
    static struct al_gguf_value_report rep;
    struct al_err err2 = AL_ERR_INIT;
    rc = al_gguf_scan_values(fd, "model.gguf", &rep, &err2);
    if (rc == AL_OK) {
        if (rep.n_listed < 0 || rep.n_listed > AL_GGUF_FINDINGS_MAX ||
            (uint64_t)rep.n_listed > rep.n_findings || rep.bytes_checked > size ||
            rep.tensors_checked > rep.n_tensors)
            abort();
        for (int i = 0; i < rep.n_listed; i++)
            if (rep.findings[i].what == NULL)
                abort();
    } else if (err2.msg[0] == '\0') {
        abort();
    }
    close(fd);
    return 0;
}
