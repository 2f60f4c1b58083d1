#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/limits.h"

enum al_rc al_path_fmt(char *out, size_t size, struct al_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        return al_err_set(err, AL_ERR_LIMIT, "path longer than %zu bytes (AL_LIMIT_PATH)", size - 1);
    return AL_OK;
}

enum al_rc al_fs_mkdirs(const char *path, mode_t mode, struct al_err *err)
{
    char tmp[AL_LIMIT_PATH];
    enum al_rc rc = al_path_fmt(tmp, sizeof tmp, err, "%s", path);
    if (rc)
        return rc;
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(tmp, mode) != 0 && errno != EEXIST)
            return al_err_sys(err, AL_ERR_IO, "cannot create directory '%s'", tmp);
        *p = saved;
        if (saved == '\0')
            break;
    }
    return AL_OK;
}

enum al_rc al_fs_fsync_dir(const char *dir, struct al_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return al_err_sys(err, AL_ERR_IO, "cannot open directory '%s'", dir);
    int r = fsync(fd);
    close(fd);
    if (r != 0 && errno != EINVAL)
        return al_err_sys(err, AL_ERR_IO, "cannot fsync directory '%s'", dir);
    return AL_OK;
}

/* A failed write names its file: callers pass only the descriptor, and the
 * first message recorded is the one the user sees. */
static enum al_rc write_error(int fd, struct al_err *err)
{
    int saved = errno;
    char link[64], name[AL_LIMIT_PATH];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, name, sizeof name - 1);
    if (n < 0 || (size_t)n >= sizeof name - 1)
        n = snprintf(name, sizeof name, "descriptor %d", fd);
    name[n] = '\0';
    errno = saved;
    return al_err_sys(err, AL_ERR_IO, "cannot write '%s'", name);
}

enum al_rc al_fs_write_all(int fd, const void *data, size_t len, struct al_err *err)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return write_error(fd, err);
        p += n;
        len -= (size_t)n;
    }
    return AL_OK;
}

void al_fs_dirname(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(out, size, ".");
        return;
    }
    size_t n = (size_t)(slash - path);
    if (n == 0)
        n = 1;
    snprintf(out, size, "%.*s", (int)n, path);
}

enum al_rc al_fs_write_atomic(const char *path, const void *data, size_t len, struct al_err *err)
{
    char tmp[AL_LIMIT_PATH], dir[AL_LIMIT_PATH];
    enum al_rc rc = al_path_fmt(tmp, sizeof tmp, err, "%s.tmp.%ld", path, (long)getpid());
    if (rc)
        return rc;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return al_err_sys(err, AL_ERR_IO, "cannot create '%s'", tmp);
    rc = al_fs_write_all(fd, data, len, err);
    if (rc == AL_OK && fsync(fd) != 0)
        rc = al_err_sys(err, AL_ERR_IO, "cannot fsync '%s'", tmp);
    if (close(fd) != 0 && rc == AL_OK)
        rc = al_err_sys(err, AL_ERR_IO, "cannot close '%s'", tmp);
    if (rc == AL_OK && rename(tmp, path) != 0)
        rc = al_err_sys(err, AL_ERR_IO, "cannot rename '%s' to '%s'", tmp, path);
    if (rc) {
        unlink(tmp);
        return rc;
    }
    al_fs_dirname(path, dir, sizeof dir);
    return al_fs_fsync_dir(dir, err);
}

enum al_rc al_fs_read_file(const char *path, size_t max, char **out, size_t *len,
                           struct al_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return al_err_sys(err, errno == ENOENT ? AL_ERR_NOT_FOUND : AL_ERR_IO, "cannot open '%s'", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return al_err_sys(err, AL_ERR_IO, "cannot stat '%s'", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return al_err_set(err, AL_ERR_LIMIT, "'%s' is %lld bytes, over the cap of %zu", path,
                          (long long)st.st_size, max);
    }
    size_t cap = (size_t)st.st_size;
    char *buf = malloc(cap + 1);
    if (buf == NULL) {
        close(fd);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory reading '%s'", path);
    }
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            close(fd);
            return al_err_sys(err, AL_ERR_IO, "cannot read '%s'", path);
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    if (len)
        *len = got;
    return AL_OK;
}

bool al_fs_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static const char *file_kind(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket"
           : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device" : "not a regular file";
}

enum al_rc al_fs_open_regular(const char *path, int *fd, struct al_err *err)
{
    *fd = -1;
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (f < 0)
        return al_err_sys(err, errno == ENOENT ? AL_ERR_NOT_FOUND : AL_ERR_IO, "cannot open '%s'", path);
    struct stat st;
    if (fstat(f, &st) != 0) {
        enum al_rc rc = al_err_sys(err, AL_ERR_IO, "cannot stat '%s'", path);
        close(f);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return al_err_set(err, AL_ERR_INVALID, "'%s' is %s; only regular files can be added", path,
                          file_kind(st.st_mode));
    }
    int fl = fcntl(f, F_GETFL);
    if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        enum al_rc rc = al_err_sys(err, AL_ERR_IO, "cannot read '%s'", path);
        close(f);
        return rc;
    }
    *fd = f;
    return AL_OK;
}

void al_fmt_size(int64_t bytes, char *out, size_t size)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    /* The magnitude in unsigned arithmetic: -INT64_MIN does not fit an int64_t. */
    uint64_t mag = bytes < 0 ? 0 - (uint64_t)bytes : (uint64_t)bytes;
    double v = (double)mag;
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    snprintf(out, size, u ? "%s%.1f %s" : "%s%.0f %s", bytes < 0 ? "-" : "", v, unit[u]);
}

#define WRITEBACK_CHUNK (8ull << 20)

void al_fs_sink_init(struct al_fs_sink *k, int fd)
{
    k->fd = fd;
    k->off = 0;
    k->flushed = 0;
    int fl = fcntl(fd, F_GETFL);
    k->direct = fl >= 0 && fcntl(fd, F_SETFL, fl | O_DIRECT) == 0;
}

static void sink_buffered(struct al_fs_sink *k)
{
    int fl = fcntl(k->fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(k->fd, F_SETFL, fl & ~O_DIRECT);
    k->direct = false;
}

static enum al_rc sink_pwrite(struct al_fs_sink *k, const char *p, size_t len, struct al_err *err)
{
    while (len > 0) {
        ssize_t n = pwrite(k->fd, p, len, (off_t)k->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EINVAL && k->direct) {
            sink_buffered(k); /* a filesystem that takes the flag, not the writes */
            continue;
        }
        if (n < 0)
            return write_error(k->fd, err);
        p += n;
        len -= (size_t)n;
        k->off += (uint64_t)n;
        if (k->direct && len > 0 && (n % AL_FS_DIRECT_ALIGN) != 0)
            sink_buffered(k); /* a short direct write left us unaligned */
    }
    return AL_OK;
}

enum al_rc al_fs_sink_write(struct al_fs_sink *k, const void *data, size_t len, struct al_err *err)
{
    if (k->direct && (((uintptr_t)data | len | k->off) % AL_FS_DIRECT_ALIGN) != 0)
        sink_buffered(k);
    enum al_rc rc = sink_pwrite(k, data, len, err);
    if (!rc && !k->direct)
        al_fs_start_writeback(k->fd, &k->flushed, k->off);
    return rc;
}

void al_fs_start_writeback(int fd, uint64_t *flushed, uint64_t written)
{
    if (written - *flushed < WRITEBACK_CHUNK)
        return;
    /* Wait for the previous chunk (already started), then start this one:
     * dirty pages stay bounded and the device stays busy. */
    if (*flushed >= WRITEBACK_CHUNK)
        (void)sync_file_range(fd, (off_t)(*flushed - WRITEBACK_CHUNK), (off_t)WRITEBACK_CHUNK,
                              SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    (void)sync_file_range(fd, (off_t)*flushed, (off_t)(written - *flushed), SYNC_FILE_RANGE_WRITE);
    *flushed = written;
}
