/*
 * verdict.h: the --json verdict of a model brought in from elsewhere
 * (`airlock import`, `airlock registry pull`), one shape for both.
 */
#ifndef AL_CLI_VERDICT_H
#define AL_CLI_VERDICT_H

#include <jansson.h>

#include "bundle/bundle.h"

/* Adds to j (the command's own members: source, manifest, ...) "verdict",
 * then "reason" (err's message) when e is set or "version" otherwise, and
 * "overrides" when the report has any; prints it on one line with sorted
 * keys and releases j. */
void al_cli_print_verdict(json_t *j, enum al_rc e, const struct al_err *err, const struct al_bundle_report *rep);

#endif
