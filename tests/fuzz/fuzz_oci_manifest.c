/*
 * fuzz_oci_manifest.c: an OCI image manifest as a bundle carries it (the blob
 * index.json points to), parsed before anything trusts its digests, sizes or
 * file paths; also the file-path check every layer path goes through.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "oci/oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct al_err err = AL_ERR_INIT;
    struct al_oci_manifest man;
    char *text = malloc(size ? size : 1); /* exact size: a read past the end is caught */
    if (text == NULL)
        abort();
    if (size)
        memcpy(text, data, size);
    if (al_oci_manifest_parse(text, size, &man, &err) == AL_OK) {
        /* What the parser promises its callers. */
        if (man.n_layers > AL_LIMIT_FILES_PER_MODEL || !al_digest_valid(man.config_digest))
            abort();
        for (size_t i = 0; i < man.n_layers; i++) {
            if (!al_oci_path_safe(man.layers[i].path) || !al_digest_valid(man.layers[i].digest))
                abort();
            (void)al_oci_media_type_for(man.layers[i].path);
        }
        if (man.previous[0] && !al_digest_valid(man.previous))
            abort();
    } else if (man.layers != NULL || err.msg[0] == '\0') {
        abort();
    }
    al_oci_manifest_release(&man);
    free(text);
    char *path = fz_strndup(data, size < 512 ? size : 512);
    (void)al_oci_path_safe(path);
    (void)al_oci_media_type_for(path);
    free(path);
    return 0;
}
