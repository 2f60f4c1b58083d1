/* cli_util.h: helpers shared by the subcommands: the store, formatting. */
#ifndef AL_CLI_UTIL_H
#define AL_CLI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/repo.h"

/* Opens the repo at the CLI's home; prints the error and returns the exit
 * status on failure (0 on success). */
int al_cli_open_repo(bool create, struct al_repo **out);

/* 1.1 MiB style sizes. */
void al_cli_human_size(uint64_t bytes, char *out, size_t size);

/* A digest shortened for tables: the first 12 hex digits. */
const char *al_cli_short(const char *digest);

#endif
