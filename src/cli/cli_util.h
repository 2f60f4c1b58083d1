/* cli_util.h: helpers shared by the subcommands: the store, option values,
 * formatting. */
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

/* ---- option values ----
 * One parser per kind of value, used by every command, so that `--threads x`
 * is refused the same way everywhere. Each takes the command (as in its usage
 * errors: "rag add"), the option as the user spells it ("--threads", "-k")
 * and the argument. On success it sets *out and returns 0; otherwise *out is
 * left alone and one usage error names the option, the accepted form and the
 * argument:
 *     airlock bench: --threads needs a whole number from 1 to 1024, e.g. 4 (got 'x')
 *     Try 'airlock bench --help'.
 * and the return is AL_EXIT_USAGE. Numbers are decimal, with no sign unless
 * lo < 0 and no white space; an argument longer than AL_CLI_OPT_ARG_MAX is
 * refused unread. */

#define AL_CLI_OPT_ARG_MAX 64   /* characters of a numeric option's argument */
#define AL_CLI_THREADS_MAX 1024 /* --threads of every command */

/* A whole number in [lo, hi]: counts, ports, days. */
int al_cli_opt_int(const char *cmd, const char *opt, const char *arg, long long lo, long long hi, long long *out);

/* The same into an int; [lo, hi] must lie within int. */
int al_cli_opt_i(const char *cmd, const char *opt, const char *arg, int lo, int hi, int *out);

/* --threads N: a whole number from 1 to AL_CLI_THREADS_MAX. */
int al_cli_opt_threads(const char *cmd, const char *arg, int *out);

/* A size in bytes in [lo, hi]: a whole number with an optional binary
 * suffix K, M, G or T (any case; 512M is 512 MiB), optionally followed by
 * "i", "iB" or "B" (512MiB, 4GB). */
int al_cli_opt_size(const char *cmd, const char *opt, const char *arg, uint64_t lo, uint64_t hi, uint64_t *out);

/* A duration in seconds in [lo, hi]: a decimal number of seconds (30, 2.5,
 * -1 where lo allows it) or a number with a unit: ms, s, m, h or d (500ms,
 * 30s, 5m, 2h, 1d). */
int al_cli_opt_seconds(const char *cmd, const char *opt, const char *arg, double lo, double hi, double *out);

/* A decimal number in [lo, hi] (a percentage, a temperature). */
int al_cli_opt_num(const char *cmd, const char *opt, const char *arg, double lo, double hi, double *out);

/* A comma-separated list of 1..max whole numbers, each in [lo, hi] (1,2,4);
 * *n is their count. */
int al_cli_opt_list(const char *cmd, const char *opt, const char *arg, int lo, int hi, int *out, int max, int *n);

/* File permissions in octal, 0 to 0777 (660, 0660). */
int al_cli_opt_mode(const char *cmd, const char *opt, const char *arg, int *out);

#endif
