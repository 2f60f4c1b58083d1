/* main.c: the airlock command: dispatch to one file per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/version.h"

int main(int argc, char **argv)
{
    return al_cli_main(argc, argv);
}
