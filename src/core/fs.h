/*
 * fs.h: file system helpers with the durability rules of the store:
 * write to a temporary name in the same directory, fsync, rename, fsync the
 * directory. A reader never sees a half-written file under its final name.
 */
#ifndef AL_CORE_FS_H
#define AL_CORE_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

/* mkdir -p with the given mode for created directories. */
enum al_rc al_fs_mkdirs(const char *path, mode_t mode, struct al_err *err);

/* fsync a directory so that renames and creations in it are durable. */
enum al_rc al_fs_fsync_dir(const char *dir, struct al_err *err);

/* Atomically replaces path with data (mode 0644): tmp, fsync, rename, fsync dir. */
enum al_rc al_fs_write_atomic(const char *path, const void *data, size_t len, struct al_err *err);

/* Reads a whole file of at most max bytes into a malloc'd NUL-terminated
 * buffer (*out, caller frees); AL_ERR_LIMIT when larger. */
enum al_rc al_fs_read_file(const char *path, size_t max, char **out, size_t *len,
                           struct al_err *err);

/* Writes all of data to fd, retrying short writes and EINTR. */
enum al_rc al_fs_write_all(int fd, const void *data, size_t len, struct al_err *err);

/* Starts the disk writeback of what was written to fd since *flushed once
 * 8 MiB have gathered, and waits for the range before it, so the fsync at
 * the end has little left to do and the disk works while we read and hash.
 * A hint: errors are left to the final fsync to report. */
void al_fs_start_writeback(int fd, uint64_t *flushed, uint64_t written);

/* Where a large file's data goes on its way to disk. Whole, aligned 4 KiB
 * multiples are written with O_DIRECT where the filesystem takes it: no copy
 * into the page cache and no writeback to wait for, which on this kind of
 * virtual disk writes 2 GiB in 2 s against 4.7-6.5 s buffered (dd, with the
 * final fsync either way). The first write that is not aligned (the tail)
 * turns O_DIRECT off and the rest goes through the page cache, with
 * al_fs_start_writeback. The caller still fsyncs before trusting the data. */
struct al_fs_sink {
    int fd;
    bool direct;
    uint64_t off;     /* bytes written so far (the file starts empty) */
    uint64_t flushed; /* for al_fs_start_writeback */
};
#define AL_FS_DIRECT_ALIGN 4096

/* fd: an empty regular file open for writing. */
void al_fs_sink_init(struct al_fs_sink *k, int fd);
enum al_rc al_fs_sink_write(struct al_fs_sink *k, const void *data, size_t len, struct al_err *err);

/* snprintf into out[size]; AL_ERR_LIMIT naming the cap when truncated. */
enum al_rc al_path_fmt(char *out, size_t size, struct al_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

bool al_fs_exists(const char *path);

/* Opens path for reading only when it is a regular file: opened with
 * O_NONBLOCK so that a FIFO without a writer (or a device) cannot make the
 * open hang, checked with fstat, then O_NONBLOCK cleared for plain blocking
 * reads. *fd is the caller's to close. AL_ERR_NOT_FOUND when absent,
 * AL_ERR_INVALID naming what it is when it is not a regular file. */
enum al_rc al_fs_open_regular(const char *path, int *fd, struct al_err *err);

/* Byte counts for people: "512 B", "1.5 KiB", ... "3.0 TiB"; a negative
 * count keeps its sign ("-1.0 KiB"), so a damaged size is shown as what it
 * is, never as an unsigned wrap-around. */
void al_fmt_size(int64_t bytes, char *out, size_t size);

/* The directory part of path into out (like dirname(1)). */
void al_fs_dirname(const char *path, char *out, size_t size);

#endif
