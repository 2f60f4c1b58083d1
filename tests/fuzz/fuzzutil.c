/*
 * fuzzutil.c: helpers shared by the harnesses. Failures of the harness
 * itself (no memory, no temporary directory) abort: libFuzzer then stops
 * with a report, which is what a broken harness deserves.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzzutil.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"

static char tmpdir[64];

char *fz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static void write_all(int fd, const uint8_t *data, size_t size)
{
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n <= 0)
            abort();
        data += n;
        size -= (size_t)n;
    }
}

int fz_memfd(const char *name, const uint8_t *data, size_t size)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0)
        abort();
    write_all(fd, data, size);
    if (lseek(fd, 0, SEEK_SET) != 0)
        abort();
    return fd;
}

void fz_write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    write_all(fd, data, size);
    close(fd);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void rm_tmpdir(void)
{
    /* Only the process that made it removes it (libFuzzer may fork). */
    if (tmpdir[0])
        nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fz_tmpdir(void)
{
    if (tmpdir[0] == '\0') {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/airlock-fuzz.XXXXXX");
        if (mkdtemp(tmpdir) == NULL)
            abort();
        atexit(rm_tmpdir);
    }
    return tmpdir;
}

static void drop(enum al_log_level level, const char *line, void *ud)
{
    (void)level, (void)line, (void)ud;
}

void fz_quiet(void)
{
    al_log_set_sink(drop, NULL);
    al_log_set_level(AL_LOG_SILENT);
}
