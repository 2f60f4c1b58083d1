/*
 * fuzz_pickle.c: the scan module's readers of hostile model files. The first
 * byte picks the entry point (mod 3), the rest is the input:
 *   0  al_scan_pickle, the opcode walker (a .pkl, or a checkpoint's data.pkl)
 *   1  al_scan_safetensors, a whole safetensors file
 *   2  al_scan_file on a memfd: magic numbers, the zip checkpoint reader
 *      (libarchive), GGUF
 * Beyond not crashing: the verdict is the worst of the findings kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzzutil.h"
#include "scan/scan.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] % 3;
    data++, size--;
    struct al_scan_report *r = NULL;
    if (mode == 2) {
        int fd = fz_memfd("model.pt", data, size);
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        struct al_err err = AL_ERR_INIT;
        if (al_scan_file(path, 0, &r, &err) != AL_OK)
            abort();
        close(fd);
    } else {
        r = al_scan_report_new(mode ? "model.safetensors" : "data.pkl");
        if (!r)
            abort();
        if (mode == 0)
            al_scan_pickle(data, size, "", r);
        else
            al_scan_safetensors(data, size, r);
    }
    enum al_scan_verdict worst = AL_SCAN_OK;
    for (size_t i = 0; i < r->n_findings; i++)
        if (r->findings[i].severity > worst)
            worst = r->findings[i].severity;
    if (r->n_findings > AL_LIMIT_SCAN_FINDINGS || (r->n_dropped == 0 && worst != r->verdict) ||
        r->verdict > AL_SCAN_DANGEROUS)
        abort();
    al_scan_report_free(r);
    return 0;
}
