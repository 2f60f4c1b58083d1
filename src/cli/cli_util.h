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

/* The same for commands that only read the store: where it cannot be written
 * (a read-only mount, no write permission) it is opened read-only
 * (al_repo_open_read) and a note on stderr says so, once. */
int al_cli_open_repo_read(struct al_repo **out);

/* Prints help on stdout and returns true when the arguments ask for it (-h or
 * --help); the command is then done, with AL_EXIT_OK. */
bool al_cli_help(int argc, char **argv, const char *help);

/* The start of a command on the store once its arguments are parsed: when
 * usage_error is not NULL, prints it as cmd's usage error and returns
 * AL_EXIT_USAGE; otherwise opens the store like al_cli_open_repo. */
int al_cli_start(const char *cmd, const char *usage_error, bool create, struct al_repo **out);

/* al_cli_start for commands that only read (al_cli_open_repo_read). */
int al_cli_start_read(const char *cmd, const char *usage_error, struct al_repo **out);

/* 1.1 MiB style sizes (al_fmt_size). Signed: sizes come as uint64_t from the
 * store, and a damaged row's negative value must print as negative, not as
 * 16777216.0 TiB. */
void al_cli_human_size(int64_t bytes, char *out, size_t size);

/* A digest shortened for tables: the first 12 hex digits. */
const char *al_cli_short(const char *digest);

#endif
