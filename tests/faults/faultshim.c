/*
 * faultshim.c: an LD_PRELOAD library that makes one chosen I/O call fail,
 * for the fault-injection sweep (tests/faults/, docs/internals/faults.md).
 *
 * It wraps write, pwrite, fsync, fdatasync, rename and open/openat (with
 * write intent) and counts the calls whose file lies under FAULT_PREFIX.
 * SQLite and libarchive write through these libc entry points, so their
 * writes are counted like ours. Environment:
 *
 *   FAULT_PREFIX  absolute path; only calls on files under it count (required)
 *   FAULT_OPS     comma list of ops to count: write,pwrite,fsync,fdatasync,
 *                 rename,open (default: all)
 *   FAULT_N       the counted call that fails, from 1 (0 or unset: none)
 *   FAULT_MODE    eio (that one call fails with EIO: a bad sector)
 *                 enospc (that call and every later counted one fail with
 *                 ENOSPC, as on a disk that has filled up)
 *                 short (a write or pwrite writes half of its bytes, then
 *                 every later counted call fails with ENOSPC)
 *                 kill (the process gets SIGKILL just before the call)
 *   FAULT_REPORT  file that receives "N OP PATH" when the fault fires and
 *                 "count N" at exit (calls counted in this process)
 *   FAULT_TRACE   when set, every counted call goes to FAULT_REPORT as
 *                 "N OP PATH" (the sweep picks its sample points from it)
 *
 * Calls made before main (the dynamic loader's) and calls on other paths
 * pass through untouched. The shim itself writes only with raw syscalls.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

enum op { OP_WRITE, OP_PWRITE, OP_FSYNC, OP_FDATASYNC, OP_RENAME, OP_OPEN, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"write", "pwrite", "fsync", "fdatasync", "rename", "open"};
enum mode { MODE_NONE, MODE_EIO, MODE_ENOSPC, MODE_SHORT, MODE_KILL };

static struct {
    char prefix[4096];
    size_t prefix_len;
    bool ops[OP_COUNT];
    long n;
    enum mode mode;
    char report[4096];
    bool trace;
} cfg;
static atomic_long counted;
static atomic_bool fired;

static void report_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void report_line(const char *fmt, ...)
{
    if (!cfg.report[0])
        return;
    char line[4200];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, cfg.report, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    (void)syscall(SYS_write, fd, line, (size_t)n);
    (void)syscall(SYS_close, fd);
}

static void at_exit_report(void) { report_line("count %ld\n", atomic_load(&counted)); }

__attribute__((constructor)) static void shim_init(void)
{
    /* Faults go to this process only: a helper it starts (gpg) runs clean,
     * so the call numbers of one run are the numbers of the next. */
    unsetenv("LD_PRELOAD");
    const char *p = getenv("FAULT_PREFIX");
    if (p == NULL || p[0] != '/')
        return;
    snprintf(cfg.prefix, sizeof cfg.prefix, "%s", p);
    cfg.prefix_len = strlen(cfg.prefix);
    while (cfg.prefix_len > 1 && cfg.prefix[cfg.prefix_len - 1] == '/')
        cfg.prefix[--cfg.prefix_len] = '\0';
    const char *ops = getenv("FAULT_OPS");
    for (int i = 0; i < OP_COUNT; i++)
        cfg.ops[i] = ops == NULL || ops[0] == '\0';
    for (int i = 0; ops && i < OP_COUNT; i++) {
        size_t len = strlen(op_names[i]);
        for (const char *s = ops; (s = strstr(s, op_names[i])) != NULL; s += len)
            if ((s == ops || s[-1] == ',') && (s[len] == ',' || s[len] == '\0'))
                cfg.ops[i] = true;
    }
    const char *n = getenv("FAULT_N");
    cfg.n = n ? strtol(n, NULL, 10) : 0;
    const char *m = getenv("FAULT_MODE");
    cfg.mode = !m ? MODE_NONE
               : !strcmp(m, "eio") ? MODE_EIO
               : !strcmp(m, "enospc") ? MODE_ENOSPC
               : !strcmp(m, "short") ? MODE_SHORT
               : !strcmp(m, "kill") ? MODE_KILL
               : MODE_NONE;
    const char *r = getenv("FAULT_REPORT");
    if (r)
        snprintf(cfg.report, sizeof cfg.report, "%s", r);
    cfg.trace = getenv("FAULT_TRACE") != NULL;
    atexit(at_exit_report);
}

static bool under_prefix(const char *path)
{
    return path && cfg.prefix_len && strncmp(path, cfg.prefix, cfg.prefix_len) == 0 &&
           (path[cfg.prefix_len] == '/' || path[cfg.prefix_len] == '\0');
}

static bool fd_path(int fd, char *out, size_t size)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, size - 1);
    if (n < 0)
        return false;
    out[n] = '\0';
    return true;
}

/* dirfd + relative name to an absolute path (best effort). */
static bool at_path(int dirfd, const char *name, char *out, size_t size)
{
    if (name == NULL)
        return false;
    if (name[0] == '/') {
        snprintf(out, size, "%s", name);
        return true;
    }
    char dir[4096];
    if (dirfd == AT_FDCWD) {
        if (getcwd(dir, sizeof dir) == NULL)
            return false;
    } else if (!fd_path(dirfd, dir, sizeof dir)) {
        return false;
    }
    int n = snprintf(out, size, "%s/%s", dir, name);
    return n > 0 && (size_t)n < size;
}

/* What the wrapper does with this call. */
enum verdict { PASS, FAIL, SHORT };

static enum verdict decide(enum op op, const char *path)
{
    if (cfg.mode == MODE_NONE && !cfg.report[0])
        return PASS;
    if (!cfg.ops[op] || !under_prefix(path))
        return PASS;
    long k = atomic_fetch_add(&counted, 1) + 1;
    if (cfg.trace)
        report_line("%ld %s %s\n", k, op_names[op], path);
    if (atomic_load(&fired))
        return cfg.mode == MODE_ENOSPC || cfg.mode == MODE_SHORT ? FAIL : PASS; /* a full disk stays full */
    if (cfg.n <= 0 || k != cfg.n || cfg.mode == MODE_NONE)
        return PASS;
    atomic_store(&fired, true);
    report_line("%ld %s %s\n", k, op_names[op], path);
    if (cfg.mode == MODE_KILL) {
        report_line("count %ld\n", k);
        raise(SIGKILL);
    }
    if (cfg.mode == MODE_SHORT && (op == OP_WRITE || op == OP_PWRITE))
        return SHORT;
    return FAIL;
}

static int fail_errno(void) { return cfg.mode == MODE_EIO ? EIO : ENOSPC; }

#define REAL(ret, name, ...)                                                                                           \
    static ret (*real_##name)(__VA_ARGS__);                                                                           \
    if (real_##name == NULL)                                                                                           \
        real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

static enum verdict decide_fd(enum op op, int fd)
{
    if (!cfg.prefix_len || !cfg.ops[op])
        return PASS;
    char path[4096];
    return fd_path(fd, path, sizeof path) ? decide(op, path) : PASS;
}

ssize_t write(int fd, const void *buf, size_t len)
{
    REAL(ssize_t, write, int, const void *, size_t);
    enum verdict v = decide_fd(OP_WRITE, fd);
    if (v == FAIL) {
        errno = fail_errno();
        return -1;
    }
    if (v == SHORT && len > 1)
        len /= 2;
    return real_write(fd, buf, len);
}

static ssize_t do_pwrite(ssize_t (*real)(int, const void *, size_t, off_t), int fd, const void *buf, size_t len,
                         off_t off)
{
    enum verdict v = decide_fd(OP_PWRITE, fd);
    if (v == FAIL) {
        errno = fail_errno();
        return -1;
    }
    if (v == SHORT && len > 1)
        len /= 2;
    return real(fd, buf, len, off);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    REAL(ssize_t, pwrite, int, const void *, size_t, off_t);
    return do_pwrite(real_pwrite, fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
    REAL(ssize_t, pwrite64, int, const void *, size_t, off_t);
    return do_pwrite(real_pwrite64, fd, buf, len, off);
}

int fsync(int fd)
{
    REAL(int, fsync, int);
    if (decide_fd(OP_FSYNC, fd) != PASS) {
        errno = EIO; /* fsync reports a lost write as EIO, also on a full disk */
        return -1;
    }
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    REAL(int, fdatasync, int);
    if (decide_fd(OP_FDATASYNC, fd) != PASS) {
        errno = EIO;
        return -1;
    }
    return real_fdatasync(fd);
}

static enum verdict decide_rename(int olddir, const char *from, int newdir, const char *to)
{
    if (!cfg.prefix_len || !cfg.ops[OP_RENAME])
        return PASS;
    char a[4096], b[4096];
    bool in = (at_path(olddir, from, a, sizeof a) && under_prefix(a)) ||
              (at_path(newdir, to, b, sizeof b) && under_prefix(b));
    return in ? decide(OP_RENAME, under_prefix(a) ? a : b) : PASS;
}

int rename(const char *from, const char *to)
{
    REAL(int, rename, const char *, const char *);
    if (decide_rename(AT_FDCWD, from, AT_FDCWD, to) != PASS) {
        errno = fail_errno();
        return -1;
    }
    return real_rename(from, to);
}

int renameat(int olddir, const char *from, int newdir, const char *to)
{
    REAL(int, renameat, int, const char *, int, const char *);
    if (decide_rename(olddir, from, newdir, to) != PASS) {
        errno = fail_errno();
        return -1;
    }
    return real_renameat(olddir, from, newdir, to);
}

int renameat2(int olddir, const char *from, int newdir, const char *to, unsigned flags)
{
    REAL(int, renameat2, int, const char *, int, const char *, unsigned);
    if (decide_rename(olddir, from, newdir, to) != PASS) {
        errno = fail_errno();
        return -1;
    }
    return real_renameat2(olddir, from, newdir, to, flags);
}

/* Only opens that can change the disk: for writing or creating. */
static bool open_fails(int dirfd, const char *path, int flags)
{
    if (!cfg.prefix_len || !cfg.ops[OP_OPEN] || !(flags & (O_WRONLY | O_RDWR | O_CREAT)))
        return false;
    char abs[4096];
    return at_path(dirfd, path, abs, sizeof abs) && decide(OP_OPEN, abs) != PASS;
}

/* The mode argument is there only when a file may be created. */
#define OPEN_MODE(flags, mode)                                                                                         \
    do {                                                                                                               \
        if ((flags) & (O_CREAT | O_TMPFILE)) {                                                                         \
            va_list ap;                                                                                                \
            va_start(ap, flags);                                                                                       \
            (mode) = (mode_t)va_arg(ap, int);                                                                          \
            va_end(ap);                                                                                                \
        }                                                                                                              \
    } while (0)

int open(const char *path, int flags, ...)
{
    REAL(int, open, const char *, int, ...);
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    if (open_fails(AT_FDCWD, path, flags)) {
        errno = fail_errno();
        return -1;
    }
    return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    REAL(int, open64, const char *, int, ...);
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    if (open_fails(AT_FDCWD, path, flags)) {
        errno = fail_errno();
        return -1;
    }
    return real_open64(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    REAL(int, openat, int, const char *, int, ...);
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    if (open_fails(dirfd, path, flags)) {
        errno = fail_errno();
        return -1;
    }
    return real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    REAL(int, openat64, int, const char *, int, ...);
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    if (open_fails(dirfd, path, flags)) {
        errno = fail_errno();
        return -1;
    }
    return real_openat64(dirfd, path, flags, mode);
}
