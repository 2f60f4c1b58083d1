/*
 * airlock-auditgen: appends synthetic records to $AIRLOCK_HOME's audit log
 * through the library, as the server does; for tests and demos.
 *   airlock-auditgen N [--capture] [--at UNIX_TIME] [--prompt TEXT]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/audit_int.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: airlock-auditgen N [--capture] [--at UNIX_TIME] [--prompt TEXT]\n");
        return 2;
    }
    long n = strtol(argv[1], NULL, 10);
    long long at = 0;
    const char *prompt = "hello";
    struct al_audit_opts o = {0};
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--capture"))
            o.capture_text = true;
        else if (!strcmp(argv[i], "--at") && i + 1 < argc)
            at = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--prompt") && i + 1 < argc)
            prompt = argv[++i];
    }
    const char *home = getenv("AIRLOCK_HOME");
    struct al_err err = AL_ERR_INIT;
    struct al_audit *a = NULL;
    if (home == NULL || al_audit_open(home, &o, &a, &err)) {
        fprintf(stderr, "airlock-auditgen: %s\n", err.msg[0] ? err.msg : "AIRLOCK_HOME unset");
        return 1;
    }
    if (at)
        al_audit__set_now(a, (time_t)at);
    int rc = 0;
    for (long i = 0; i < n && !rc; i++) {
        char id[32];
        snprintf(id, sizeof id, "req-%ld", i);
        struct al_audit_record r = {id, "alice", "sha256:0123", "/v1/completions", 200, 12, 34, 5.5 + (double)i,
                                    prompt, "a response", NULL, NULL};
        if (al_audit_append(a, &r, &err)) {
            fprintf(stderr, "airlock-auditgen: %s\n", err.msg);
            rc = 1;
        }
    }
    al_audit_free(a);
    return rc;
}
