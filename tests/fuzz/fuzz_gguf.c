/*
 * fuzz_gguf.c: the header, key/value pairs and tensor table of a GGUF file
 * through the gguf module (our caps and type checks, then ggml's reader), as
 * `add`, `ingest` and `inspect` see a model file; then the value scan of the
 * same file (tensor data read and checked, data past the end a finding), and
 * the same scan on a stream of its bytes (al_gguf_value_stream, in pieces
 * whose size the input's last byte picks): whenever the stream follows the
 * file to its end, its report must be the file scan's. The input is the
 * whole file, in a memfd.
 */
#include <stdlib.h>
#include <string.h>
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
    enum al_rc file_rc = rc;
    struct al_gguf_value_stream *vs = NULL;
    struct al_err err3 = AL_ERR_INIT;
    if (al_gguf_value_stream_new(size, "model.gguf", &vs, &err3) == AL_OK) {
        size_t step = size ? 1 + (size_t)data[size - 1] * 97 : 1;
        for (size_t at = 0; at < size; at += step)
            al_gguf_value_stream_feed(vs, data + at, size - at < step ? size - at : step);
        static struct al_gguf_value_report got;
        if (al_gguf_value_stream_finish(vs, &got)) {
            if (file_rc != AL_OK || got.n_tensors != rep.n_tensors || got.tensors_checked != rep.tensors_checked ||
                got.bytes_checked != rep.bytes_checked || got.n_findings != rep.n_findings ||
                got.n_listed != rep.n_listed)
                abort();
            for (int i = 0; i < got.n_listed; i++)
                if (strcmp(got.findings[i].tensor, rep.findings[i].tensor) != 0 ||
                    got.findings[i].offset != rep.findings[i].offset ||
                    strcmp(got.findings[i].what, rep.findings[i].what) != 0)
                    abort();
        }
        al_gguf_value_stream_free(vs);
    }
    close(fd);
    return 0;
}
