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
/* The entries of directory dir whose names do not start with '.' (0 when it
 * cannot be read). */
size_t tu_count_files(const char *dir);
/* Runs a shell command and returns its exit status. */
int tu_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An environment variable that must be set by ctest, or skip the test. */
const char *tu_env(const char *name);
/* Skips the current test, saying why on stderr. Under CI=true it fails
 * instead: CI installs every tool the tests need (scripts/bootstrap.sh), so a
 * skip there is a broken setup. Does not return. */
void tu_skip(const char *why);
struct al_repo;
/* A fresh store: a temporary home (*home, malloc'd) with a store created in
 * it, open as *r; fails the test when it cannot be opened. The start of the
 * tests that work on a real store (repo, trust, bundle events). */
void tu_store_new(char **home, struct al_repo **r);
/* Frees r, removes home and frees its path. */
void tu_store_free(char *home, struct al_repo *r);

/* The path of a fixture in $AL_FIXTURES (tests/fixtures, part of the tree);
 * fails the test when it is missing. Valid until the next call. */
const char *tu_fixture(const char *name);

#endif
