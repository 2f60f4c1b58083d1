/*
 * cmd_audit.c: airlock audit verify|tail|prune.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "audit/audit.h"
#include "cli/cli.h"
#include "cli/cli_util.h"
#include "core/limits.h"

int al_cmd_audit(int argc, char **argv);

#define TAIL_MAX 100000

static const char usage[] =
    "usage: airlock audit verify\n"
    "       airlock audit tail [-n N] [-f]\n"
    "       airlock audit prune --days N\n\n"
    "The server's audit log: one hash-chained JSON line per request in\n"
    "$AIRLOCK_HOME/audit/audit-YYYY-MM-DD.jsonl.\n"
    "  verify  checks every line, the chain, the sequence and HEAD; names the\n"
    "          first bad line (edited, deleted, reordered, truncated); exit 5 if damaged\n"
    "  tail    prints the last N records (default 10); -f follows new ones\n"
    "  prune   removes day files older than N days, leaving an anchor so the\n"
    "          rest still verifies (fails while a server holds the log)\n";

static void print_problem(void *ud, const char *file, size_t line, const char *msg)
{
    if (line)
        printf("%s:%zu: %s\n", file, line, msg);
    else
        printf("%s: %s\n", file, msg);
}

static int verify(int argc, char **argv)
{
    if (argc != 1)
        return al_cli_usage_error("audit verify", "expected no argument");
    char home[AL_LIMIT_PATH];
    al_cli_home(home, sizeof home);
    struct al_err err = AL_ERR_INIT;
    size_t records = 0;
    enum al_rc rc = al_audit_verify(home, print_problem, NULL, &records, &err);
    fflush(stdout);
    if (rc)
        return al_cli_fail(&err);
    printf("audit log intact: %zu record%s\n", records, records == 1 ? "" : "s");
    return AL_EXIT_OK;
}

/* Keeps the last n lines of a file in a ring of n strings. */
static void ring_file(const char *path, char **ring, size_t n, size_t *count)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        size_t slot = *count % n;
        free(ring[slot]);
        ring[slot] = strdup(line);
        (*count)++;
    }
    free(line);
    fclose(f);
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) { stop = 1; }

/* Prints whatever was appended to the newest file since *off; moves to a
 * newer file when one appears. */
static void follow(const char *home)
{
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    char cur[AL_LIMIT_PATH] = "";
    off_t off = 0;
    struct al_err err = AL_ERR_INIT;
    char **files = NULL;
    size_t n = 0;
    if (al_audit_files(home, &files, &n, &err) == AL_OK && n) {
        struct stat st;
        snprintf(cur, sizeof cur, "%s", files[n - 1]);
        off = stat(cur, &st) == 0 ? st.st_size : 0;
    }
    al_audit_files_free(files, n);
    while (!stop) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        files = NULL;
        n = 0;
        al_err_clear(&err);
        if (al_audit_files(home, &files, &n, &err) != AL_OK || n == 0) {
            al_audit_files_free(files, n);
            continue;
        }
        bool newer = strcmp(files[n - 1], cur) > 0;
        for (int pass = 0; pass < (newer ? 2 : 1); pass++) {
            if (pass == 1) {
                snprintf(cur, sizeof cur, "%s", files[n - 1]);
                off = 0;
            }
            FILE *f = cur[0] ? fopen(cur, "re") : NULL;
            if (f == NULL)
                continue;
            struct stat st;
            if (fstat(fileno(f), &st) == 0 && st.st_size < off)
                off = 0; /* rewritten by prune */
            fseeko(f, off, SEEK_SET);
            char *line = NULL;
            size_t cap = 0;
            ssize_t len;
            while ((len = getline(&line, &cap, f)) > 0 && line[len - 1] == '\n') {
                fputs(line, stdout);
                off += len;
            }
            free(line);
            fclose(f);
        }
        fflush(stdout);
        al_audit_files_free(files, n);
    }
}

/* Prints the last n lines of the audit files (oldest first). Returns an
 * exit status. */
static int print_last(char *const *files, size_t nf, size_t n)
{
    if (n == 0)
        return AL_EXIT_OK;
    char **ring = calloc(n, sizeof *ring);
    if (ring == NULL)
        return AL_EXIT_INTERNAL;
    /* Only as many of the newest files as it takes to find n lines. */
    size_t first = nf, lines = 0;
    while (first > 0 && lines < n) {
        size_t count = 0;
        char *probe[1] = {NULL};
        first--;
        ring_file(files[first], probe, 1, &count);
        free(probe[0]);
        lines += count;
    }
    size_t count = 0;
    for (size_t i = first; i < nf; i++)
        ring_file(files[i], ring, n, &count);
    size_t start = count > n ? count - n : 0;
    for (size_t i = start; i < count; i++)
        fputs(ring[i % n], stdout);
    for (size_t i = 0; i < n; i++)
        free(ring[i]);
    free(ring);
    return AL_EXIT_OK;
}

static int tail(int argc, char **argv)
{
    size_t n = 10;
    bool f = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow")) {
            f = true;
        } else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            long long v = 0;
            int st = al_cli_opt_int("audit tail", "-n", argv[++i], 0, TAIL_MAX, &v);
            if (st)
                return st;
            n = (size_t)v;
        } else {
            return al_cli_usage_error("audit tail", "unknown argument '%s'", argv[i]);
        }
    }
    char home[AL_LIMIT_PATH];
    al_cli_home(home, sizeof home);
    struct al_err err = AL_ERR_INIT;
    char **files = NULL;
    size_t nf = 0;
    if (al_audit_files(home, &files, &nf, &err))
        return al_cli_fail(&err);
    int st = print_last(files, nf, n);
    al_audit_files_free(files, nf);
    if (st)
        return st;
    fflush(stdout);
    if (f)
        follow(home);
    return AL_EXIT_OK;
}

static int prune(int argc, char **argv)
{
    int days = 0;
    if (argc != 3 || strcmp(argv[1], "--days") != 0)
        return al_cli_usage_error("audit prune", "expected --days N (N > 0)");
    int st = al_cli_opt_i("audit prune", "--days", argv[2], 1, 36500, &days);
    if (st)
        return st;
    char home[AL_LIMIT_PATH];
    al_cli_home(home, sizeof home);
    struct al_err err = AL_ERR_INIT;
    struct al_audit_opts o = {.retention_days = days};
    struct al_audit *a = NULL;
    enum al_rc rc = al_audit_open(home, &o, &a, &err);
    if (!rc)
        rc = al_audit_prune(a, &err);
    al_audit_free(a);
    if (rc)
        return al_cli_fail(&err);
    printf("pruned audit files older than %d day%s\n", days, days == 1 ? "" : "s");
    return AL_EXIT_OK;
}

int al_cmd_audit(int argc, char **argv)
{
    if (argc < 2 || al_cli_wants_help(argc, argv)) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? AL_EXIT_USAGE : AL_EXIT_OK;
    }
    if (!strcmp(argv[1], "verify"))
        return verify(argc - 1, argv + 1);
    if (!strcmp(argv[1], "tail"))
        return tail(argc - 1, argv + 1);
    if (!strcmp(argv[1], "prune"))
        return prune(argc - 1, argv + 1);
    return al_cli_usage_error("audit", "unknown subcommand '%s'", argv[1]);
}
