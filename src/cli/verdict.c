#include "cli/verdict.h"

#include <stdio.h>
#include <stdlib.h>

void al_cli_print_verdict(json_t *j, enum al_rc e, const struct al_err *err, const struct al_bundle_report *rep)
{
    if (j) {
        json_object_set_new(j, "verdict", json_string(e ? "refused" : "accepted"));
        if (e)
            json_object_set_new(j, "reason", json_string(err->msg));
        else
            json_object_set_new(j, "version", json_pack("{s:s, s:s, s:s, s:b, s:b}", "name", rep->version.model,
                                                        "tag", rep->tag, "manifest", rep->version.manifest,
                                                        "active", rep->version.active, "existed", rep->existed));
        if (rep->overrides[0])
            json_object_set_new(j, "overrides", json_string(rep->overrides));
    }
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    printf("%s\n", s ? s : "{}");
    free(s);
    json_decref(j);
}
