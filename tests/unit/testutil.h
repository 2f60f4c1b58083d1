/*
 * testutil.h: helpers shared by the unit tests (cmocka). Each test program is
 * its own process and works in its own temporary directory.
 */
#ifndef AL_TESTUTIL_H
#define AL_TESTUTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* Creates a fresh directory under $TMPDIR and returns its malloc'd path. */
char *tu_mkdtemp(void);
/* rm -rf path. */
void tu_rmrf(const char *path);
/* Writes len bytes to path (creating it), failing the test on error. */
void tu_write_file(const char *path, const void *data, size_t len);
/* Reads a whole file into a malloc'd buffer; *len gets its size. */
char *tu_read_file(const char *path, size_t *len);
/* Runs a shell command and returns its exit status. */
int tu_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An environment variable that must be set by ctest, or skip the test. */
const char *tu_env(const char *name);
/* Skips the current test, saying why on stderr. Under CI=true it fails
 * instead: CI installs every tool the tests need (scripts/bootstrap.sh), so a
 * skip there is a broken setup. Does not return. */
void tu_skip(const char *why);
/* The path of a fixture in $AL_FIXTURES (tests/fixtures, part of the tree);
 * fails the test when it is missing. Valid until the next call. */
const char *tu_fixture(const char *name);

#endif
