/*
 * cli.h: the command-line front end. Each subcommand lives in cmd_<name>.c
 * and has the signature of al_cmd_fn: it parses its own arguments (argv[0]
 * is the subcommand's name), calls the library, prints, and returns an exit
 * status from al_cli_exit_code(). Only this front end maps al_rc codes to exit
 * statuses (one table, in cli.c), and only it writes to stdout.
 */
#ifndef AL_CLI_CLI_H
#define AL_CLI_CLI_H

#include <stdbool.h>

#include "core/err.h"

/* Exit statuses; documented in `airlock help`. */
enum al_exit {
    AL_EXIT_OK = 0,
    AL_EXIT_FAILURE = 1,   /* generic failure, or a check found problems (fsck, verify) */
    AL_EXIT_USAGE = 2,     /* bad command line */
    AL_EXIT_NOT_FOUND = 3, /* unknown model, ref, file or key */
    AL_EXIT_INVALID = 4,   /* malformed or over-limit input */
    AL_EXIT_VERIFY = 5,    /* digest or signature does not verify; damaged store; API key not valid */
    AL_EXIT_DENIED = 6,    /* refused by policy: trust, expiry, replay, exists */
    AL_EXIT_IO = 7,        /* the operating system refused (disk, permissions) */
    AL_EXIT_BUSY = 8,      /* the store is locked by another process */
    AL_EXIT_SCAN_WARN = 9, /* airlock scan: warnings, nothing dangerous */
    AL_EXIT_SCAN_DANGEROUS = 10, /* airlock scan: something dangerous */
    AL_EXIT_INTERNAL = 70,
};

typedef int al_cmd_fn(int argc, char **argv);

struct al_cmd {
    const char *name;
    al_cmd_fn *fn;
    const char *summary; /* one line for `airlock help` */
};

int al_cli_main(int argc, char **argv);

/* Maps a library code to an exit status (the one table). */
int al_cli_exit_code(enum al_rc rc);

/* Prints "airlock: error: <msg>" and returns the exit status for err. */
int al_cli_fail(const struct al_err *err);

/* Prints a usage error with a hint to --help and returns AL_EXIT_USAGE. */
int al_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True when argv[i] is -h or --help. */
bool al_cli_wants_help(int argc, char **argv);

/* The store's home: $AIRLOCK_HOME, else $XDG_DATA_HOME/airlock, else
 * ~/.local/share/airlock. Written into out. */
void al_cli_home(char *out, size_t size);

#endif
