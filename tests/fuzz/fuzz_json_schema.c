/*
 * fuzz_json_schema.c: response_format.json_schema.schema of a request body,
 * turned into a GBNF grammar for the sampler (server/json_schema_gbnf.c).
 * The input is the schema's JSON text, parsed as the server parses bodies.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "server/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *schema = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    char *gbnf = NULL;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_server_json_schema_to_gbnf(json_is_object(schema) ? schema : NULL, "response_format", &gbnf, &err);
    if (rc == AL_OK) {
        if (gbnf == NULL || strstr(gbnf, "root ::=") == NULL)
            abort();
    } else if (gbnf != NULL || err.msg[0] == '\0') {
        abort();
    }
    free(gbnf);
    json_decref(schema);
    return 0;
}
