/*
 * bom.h: a stored version as a CycloneDX 1.6 ML-BOM (`airlock show --bom`).
 */
#ifndef AL_CLI_BOM_H
#define AL_CLI_BOM_H

#include <jansson.h>
#include <stddef.h>

#include "repo/repo.h"

/* What show has read of one version; every pointer is borrowed. */
struct al_bom_input {
    const struct al_version *version;
    const struct al_file *files;
    size_t n_files;
    const struct al_event *events; /* the version's events, oldest first */
    size_t n_events;
    const struct al_gguf_info *gguf; /* NULL when the version has no GGUF weight */
    json_t *scan;                    /* the recorded scan (al_scan_record_json's shape), or NULL */
    json_t *license;                 /* the recorded license decision, or NULL */
};

/* The BOM as a new JSON object, or NULL when out of memory. */
json_t *al_cli_bom(const struct al_bom_input *in);

#endif
