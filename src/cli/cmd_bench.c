/* cmd_bench.c: airlock bench (placeholder until the runner lands). */
#include <stdio.h>

#include "cli/cli.h"

int al_cmd_bench(int argc, char **argv);

int al_cmd_bench(int argc, char **argv) { return al_cli_usage_error("bench", "not yet"); }
