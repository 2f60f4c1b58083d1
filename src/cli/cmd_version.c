/* cmd_version.c: `airlock version`. */
#include <stdio.h>

#include "cli/cli.h"
#include "core/version.h"

int al_cmd_version(int argc, char **argv);

int al_cmd_version(int argc, char **argv)
{
    if (al_cli_wants_help(argc, argv)) {
        printf("usage: airlock version\n\nPrints the version of airlock.\n");
        return AL_EXIT_OK;
    }
    printf("airlock %s\n", AIRLOCK_VERSION);
    return AL_EXIT_OK;
}
