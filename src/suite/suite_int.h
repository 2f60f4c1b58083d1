/* suite_int.h: shared by the files of src/suite only. */
#ifndef AL_SUITE_INT_H
#define AL_SUITE_INT_H

#include <jansson.h>

#include "suite/suite.h"

/* Parses text as JSON, refusing more than AL_LIMIT_SUITE_FILE bytes; label
 * names it in messages. *out is the caller's on success. */
enum al_rc al_suite_parse_json(const char *label, const char *text, size_t len, json_t **out, struct al_err *err);

/* Reads a JSON object from path (capped at AL_LIMIT_SUITE_FILE). With
 * optional, a missing file returns AL_ERR_NOT_FOUND without touching err. */
enum al_rc al_suite_read_json(const char *path, bool optional, json_t **out, struct al_err *err);

/* Writes j, indented, as dir/file, atomically. */
enum al_rc al_suite_write_json(const char *dir, const char *file, json_t *j, struct al_err *err);

/* A new, empty run for every golden prompt of s (checks s has some). */
enum al_rc al_golden__run_new(const struct al_suite *s, struct al_golden_run **out, struct al_err *err);

/* Fills the parts of cond that describe this machine and build. */
void al_golden_cond_local(struct al_golden_cond *cond);

#endif
