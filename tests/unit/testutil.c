#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "repo/repo.h"

char *tu_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char *path = NULL;
    if (asprintf(&path, "%s/altest.XXXXXX", base ? base : "/tmp") < 0)
        fail_msg("out of memory");
    if (mkdtemp(path) == NULL)
        fail_msg("mkdtemp failed");
    return path;
}

void tu_rmrf(const char *path)
{
    if (path && *path)
        tu_system("rm -rf '%s'", path);
}

void tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        fail_msg("cannot create %s", path);
    if (len && fwrite(data, 1, len, f) != len)
        fail_msg("cannot write %s", path);
    fclose(f);
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        fail_msg("short read on %s", path);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

size_t tu_count_files(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

int tu_system(const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&cmd, fmt, ap) < 0)
        fail_msg("out of memory");
    va_end(ap);
    int st = system(cmd);
    free(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void tu_skip(const char *why)
{
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0)
        fail_msg("skipped under CI=true: %s", why);
    fprintf(stderr, "SKIP: %s\n", why);
    skip();
}

const char *tu_env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        char why[256];
        snprintf(why, sizeof why, "%s is not set (run the tests through ctest)", name);
        tu_skip(why);
    }
    return v;
}

const char *tu_fixture(const char *name)
{
    static char path[4096];
    const char *dir = getenv("AL_FIXTURES");
    if (dir == NULL || *dir == '\0')
        fail_msg("AL_FIXTURES is not set (run the tests through ctest)");
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        fail_msg("fixture path too long: %s/%s", dir, name);
    if (access(path, R_OK) != 0)
        fail_msg("fixture '%s' is missing (tests/fixtures/ is part of the tree)", path);
    return path;
}

void tu_store_new(char **home, struct al_repo **r)
{
    *home = tu_mkdtemp();
    struct al_err err = AL_ERR_INIT;
    if (al_repo_open(*home, true, r, &err))
        fail_msg("open: %s", err.msg);
}

void tu_store_free(char *home, struct al_repo *r)
{
    al_repo_free(r);
    tu_rmrf(home);
    free(home);
}
