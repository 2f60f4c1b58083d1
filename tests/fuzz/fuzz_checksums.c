/*
 * fuzz_checksums.c: checksums.txt of a bundle (sha256sum format), the first
 * file ingest reads and the one the signatures cover; also the names a
 * signature file may have.
 */
#include <stdlib.h>
#include <string.h>

#include "bundle/bundle_int.h"
#include "fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct al_err err = AL_ERR_INIT;
    struct al_sum *sums = NULL;
    size_t n = 0;
    /* The parser takes a length, not a C string: pass an exact-size copy so
     * that a read past the end is caught. */
    char *text = malloc(size ? size : 1);
    if (text == NULL)
        abort();
    if (size)
        memcpy(text, data, size);
    if (al_sums_parse(text, size, &sums, &n, &err) == AL_OK) {
        for (size_t i = 0; i < n; i++) {
            if (al_sums_find(sums, n, sums[i].name) != &sums[i])
                abort(); /* names are unique */
            (void)al_bundle_sig_kind(sums[i].name);
        }
        free(sums);
    } else if (sums != NULL || err.msg[0] == '\0') {
        abort(); /* a refusal leaves nothing behind and says why */
    }
    free(text);
    char *name = fz_strndup(data, size < 300 ? size : 300);
    (void)al_bundle_sig_kind(name);
    free(name);
    return 0;
}
