/* Unit tests of src/core: buffers, errors, hashing, atomic writes, the write sink. */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/progress.h"
#include "core/utf8.h"

static void test_buf_sticky_max(void **state)
{
    struct al_buf b;
    al_buf_init(&b, 8);
    al_buf_addstr(&b, "abcd");
    al_buf_addf(&b, "%d", 123);
    assert_false(al_buf_failed(&b));
    assert_string_equal(al_buf_str(&b), "abcd123");
    al_buf_addstr(&b, "xy"); /* 9 > 8 */
    assert_true(al_buf_failed(&b));
    assert_true(b.over);
    al_buf_addstr(&b, "z"); /* sticky: ignored */
    assert_string_equal(al_buf_str(&b), "abcd123");
    assert_null(al_buf_take(&b));
}

static void test_buf_long_format(void **state)
{
    struct al_buf b;
    al_buf_init(&b, 1 << 20);
    char big[1000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    al_buf_addf(&b, "<%s>", big);
    assert_int_equal(b.len, 1001);
    char *s = al_buf_take(&b);
    assert_int_equal(s[0], '<');
    assert_int_equal(s[1000], '>');
    free(s);
}

static void test_err_first_wins(void **state)
{
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_err_set(&err, AL_ERR_IO, "cannot open '%s'", "a"), AL_ERR_IO);
    assert_int_equal(al_err_set(&err, AL_ERR_USAGE, "later"), AL_ERR_USAGE);
    assert_int_equal(err.rc, AL_ERR_IO);
    assert_string_equal(err.msg, "cannot open 'a'");
    assert_string_equal(al_rc_name(AL_ERR_NOT_FOUND), "not-found");
}

/* Every code has its own name; the CLI's and the server's tables have a row
 * for each (tests/unit/test_cli.c, test_server.c). */
static void test_rc_names(void **state)
{
    for (int i = 0; i < AL_RC_COUNT; i++) {
        const char *name = al_rc_name((enum al_rc)i);
        assert_non_null(name);
        assert_string_not_equal(name, "unknown");
        for (int j = 0; j < i; j++)
            assert_string_not_equal(name, al_rc_name((enum al_rc)j));
    }
    assert_string_equal(al_rc_name(AL_ERR_AUTH), "auth");
    assert_string_equal(al_rc_name(AL_ERR_VERIFY), "verify");
    assert_string_equal(al_rc_name(AL_RC_COUNT), "unknown");
}

static void test_digest_hex(void **state)
{
    static const char hex[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    static const char good[] = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_ptr_equal(al_digest_hex(good), good + 7); /* a pointer into the argument */
    assert_string_equal(al_digest_hex(good), hex);
    assert_null(al_digest_hex(NULL));
    assert_null(al_digest_hex(""));
    assert_null(al_digest_hex(hex));                                                                   /* no prefix */
    assert_null(al_digest_hex("sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")); /* wrong */
    assert_null(al_digest_hex("SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    assert_null(al_digest_hex("sha256:"));
    assert_null(al_digest_hex("sha256:ba7816bf"));                                                     /* short */
    assert_null(al_digest_hex("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0")); /* long */
    assert_null(al_digest_hex("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD")); /* upper */
    assert_null(al_digest_hex("sha256:ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    assert_true(al_digest_hex_eq(good, hex));
    assert_false(al_digest_hex_eq(good, "ba7816bf"));
    assert_false(al_digest_hex_eq("sha256:ba78", "ba78"));
    assert_false(al_digest_hex_eq(NULL, hex));
    assert_false(al_digest_hex_eq(good, NULL));
    char d[AL_DIGEST_SIZE];
    assert_true(al_digest_from_hex(hex, d));
    assert_string_equal(d, good);
    assert_false(al_digest_from_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", d));
    assert_string_equal(d, "");
    assert_false(al_digest_from_hex("ba78", d));
    assert_false(al_digest_from_hex(NULL, d));
}

static void test_sha256_known(void **state)
{
    uint8_t raw[AL_SHA256_BYTES];
    char d[AL_DIGEST_SIZE];
    al_sha256_buf("abc", 3, raw);
    al_digest_format(raw, d);
    assert_string_equal(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(al_digest_valid(d));
    assert_false(al_digest_valid("sha256:BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    assert_false(al_digest_valid("sha256:ba78"));
    assert_false(al_digest_valid("md5:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
}

static void test_sha256_file_and_atomic_write(void **state)
{
    char *dir = tu_mkdtemp();
    char path[512];
    snprintf(path, sizeof path, "%s/f", dir);
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_fs_write_atomic(path, "abc", 3, &err), AL_OK);
    char d[AL_DIGEST_SIZE];
    uint64_t size = 0;
    assert_int_equal(al_sha256_path(path, d, &size, NULL, &err), AL_OK);
    assert_int_equal(size, 3);
    assert_string_equal(d + 7, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(al_fs_read_file(path, 2, &data, &len, &err), AL_ERR_LIMIT);
    assert_null(data);
    al_err_clear(&err);
    assert_int_equal(al_fs_read_file(path, 3, &data, &len, &err), AL_OK);
    assert_string_equal(data, "abc");
    free(data);
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_int_equal(al_sha256_path(path, d, NULL, NULL, &err), AL_ERR_NOT_FOUND);
    tu_rmrf(dir);
    free(dir);
}

/* The sink writes whole aligned blocks directly, then turns to the page
 * cache at the first unaligned write; the file holds exactly what was
 * written either way, and a hash while copying (al_sha256_copy) agrees. */
static void test_fs_sink_direct_then_buffered(void **state)
{
    char *dir = tu_mkdtemp();
    char path[512], copy[512];
    snprintf(path, sizeof path, "%s/f", dir);
    snprintf(copy, sizeof copy, "%s/g", dir);
    size_t block = 1u << 20, total = 3 * block + 777;
    unsigned char *data = NULL;
    assert_int_equal(posix_memalign((void **)&data, AL_FS_DIRECT_ALIGN, total + 1), 0);
    for (size_t i = 0; i < total + 1; i++)
        data[i] = (unsigned char)(i * 2654435761u >> 13);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    struct al_fs_sink k;
    struct al_err err = AL_ERR_INIT;
    al_fs_sink_init(&k, fd);
    bool direct_at_start = k.direct;
    assert_int_equal(al_fs_sink_write(&k, data, block, &err), AL_OK);
    assert_int_equal(al_fs_sink_write(&k, data + block, 2 * block, &err), AL_OK);
    assert_int_equal(k.direct, direct_at_start); /* aligned: no change */
    assert_int_equal(al_fs_sink_write(&k, data + 3 * block, 777, &err), AL_OK);
    assert_false(k.direct);                      /* the tail turned it off */
    assert_int_equal(k.off, total);
    assert_int_equal(fsync(fd), 0);
    close(fd);
    char *back = NULL;
    size_t len = 0;
    assert_int_equal(al_fs_read_file(path, total, &back, &len, &err), AL_OK);
    assert_int_equal(len, total);
    assert_memory_equal(back, data, total);
    free(back);

    /* A misaligned buffer goes through the page cache from the start. */
    fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    al_fs_sink_init(&k, fd);
    assert_int_equal(al_fs_sink_write(&k, data + 1, block, &err), AL_OK);
    assert_false(k.direct);
    close(fd);

    /* al_sha256_copy writes through a sink too. */
    int src = open(path, O_RDONLY | O_CLOEXEC), dst = open(copy, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    char d1[AL_DIGEST_SIZE], d2[AL_DIGEST_SIZE];
    uint64_t n = 0;
    assert_int_equal(al_sha256_copy(src, dst, d1, &n, NULL, &err), AL_OK);
    close(src);
    close(dst);
    assert_int_equal(n, block);
    assert_int_equal(al_sha256_path(copy, d2, NULL, NULL, &err), AL_OK);
    assert_string_equal(d1, d2);
    tu_rmrf(dir);
    free(dir);
    free(data);
}

/* Model output is bytes; what goes into JSON must be UTF-8 (core/utf8.h). */
static void test_utf8_validate_and_hold(void **state)
{
    (void)state;
    assert_int_equal(al_utf8_char_len("a", 1), 1);
    assert_int_equal(al_utf8_char_len("\xC3\xA9", 2), 2);          /* é */
    assert_int_equal(al_utf8_char_len("\xE4\xBD\xA0", 3), 3);      /* 你 */
    assert_int_equal(al_utf8_char_len("\xF0\x9F\x98\x80", 4), 4);  /* 😀 */
    assert_int_equal(al_utf8_char_len("\xE4\xBD", 2), 0);          /* cut short */
    assert_int_equal(al_utf8_char_len("\x80", 1), 0);               /* stray continuation */
    assert_int_equal(al_utf8_char_len("\xC0\xAF", 2), 0);          /* overlong '/' */
    assert_int_equal(al_utf8_char_len("\xE0\x80\xAF", 3), 0);      /* overlong */
    assert_int_equal(al_utf8_char_len("\xED\xA0\x80", 3), 0);      /* surrogate U+D800 */
    assert_int_equal(al_utf8_char_len("\xF4\x90\x80\x80", 4), 0);  /* above U+10FFFF */
    assert_int_equal(al_utf8_char_len("\xFF", 1), 0);

    assert_int_equal(al_utf8_partial_tail("ab", 2), 0);
    assert_int_equal(al_utf8_partial_tail("a\xE4", 2), 1);
    assert_int_equal(al_utf8_partial_tail("a\xE4\xBD", 3), 2);
    assert_int_equal(al_utf8_partial_tail("a\xE4\xBD\xA0", 4), 0);  /* complete */
    assert_int_equal(al_utf8_partial_tail("\xF0\x9F\x98", 3), 3);
    assert_int_equal(al_utf8_partial_tail("a\x80", 2), 0);          /* can never complete */
    assert_int_equal(al_utf8_partial_tail("a\xED\xA0", 3), 0);      /* a surrogate's start */

    size_t n = 0;
    char *v = al_utf8_valid_dup("a\xFF\xE4\xBD\xA0\xE4\xBD", 7, &n);
    assert_non_null(v);
    assert_string_equal(v, "a\xEF\xBF\xBD\xE4\xBD\xA0\xEF\xBF\xBD\xEF\xBF\xBD");
    assert_int_equal(n, strlen(v));
    free(v);
    v = al_utf8_valid_dup("", 0, &n);
    assert_non_null(v);
    assert_int_equal(n, 0);
    free(v);
}

/* A negative size (a damaged index row) keeps its sign: it once printed as
 * 16777216.0 TiB, the uint64_t wrap-around. */
static void test_fmt_size_signed(void **state)
{
    char out[32];
    al_fmt_size(0, out, sizeof out);
    assert_string_equal(out, "0 B");
    al_fmt_size(1023, out, sizeof out);
    assert_string_equal(out, "1023 B");
    al_fmt_size(1536, out, sizeof out);
    assert_string_equal(out, "1.5 KiB");
    al_fmt_size(3ll << 40, out, sizeof out);
    assert_string_equal(out, "3.0 TiB");
    al_fmt_size(-1, out, sizeof out);
    assert_string_equal(out, "-1 B");
    al_fmt_size(-2048, out, sizeof out);
    assert_string_equal(out, "-2.0 KiB");
    al_fmt_size((int64_t)(uint64_t)-1, out, sizeof out); /* what a uint64_t size holds for -1 */
    assert_string_equal(out, "-1 B");
    al_fmt_size(INT64_MIN, out, sizeof out);
    assert_string_equal(out, "-8.0 EiB");
    al_fmt_size(INT64_MAX, out, sizeof out);
    assert_string_equal(out, "8.0 EiB");
}

/* A FIFO without a writer is refused at once instead of blocking the open. */
static void test_open_regular_refuses_fifo(void **state)
{
    char *dir = tu_mkdtemp();
    char fifo[512], file[512];
    snprintf(fifo, sizeof fifo, "%s/pipe.gguf", dir);
    snprintf(file, sizeof file, "%s/plain", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    tu_write_file(file, "abc", 3);
    struct al_err err = AL_ERR_INIT;
    int fd = -1;
    assert_int_equal(al_fs_open_regular(fifo, &fd, &err), AL_ERR_INVALID);
    assert_int_equal(fd, -1);
    assert_non_null(strstr(err.msg, "is a FIFO"));
    al_err_clear(&err);
    assert_int_equal(al_fs_open_regular(dir, &fd, &err), AL_ERR_INVALID);
    al_err_clear(&err);
    assert_int_equal(al_fs_open_regular(file, &fd, &err), AL_OK);
    assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    char buf[4];
    assert_int_equal(read(fd, buf, sizeof buf), 3);
    close(fd);
    tu_rmrf(dir);
    free(dir);
}

/* The bar on a terminal (a pty as stderr): it shows the time left, and
 * once done its line is cleared, no bar and no newline left behind. */
static void test_progress_eta_and_clear(void **state)
{
    (void)state;
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(m >= 0);
    assert_int_equal(grantpt(m), 0);
    assert_int_equal(unlockpt(m), 0);
    int s = open(ptsname(m), O_RDWR | O_NOCTTY);
    assert_true(s >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0 && dup2(s, STDERR_FILENO) >= 0);
    char *env = getenv("AIRLOCK_NO_PROGRESS") ? strdup(getenv("AIRLOCK_NO_PROGRESS")) : NULL;
    unsetenv("AIRLOCK_NO_PROGRESS");
    struct al_progress *p = al_progress_new("model.gguf", 1000);
    bool made = p != NULL;
    al_progress_add(p, 100);
    struct timespec ts = {0, 150 * 1000 * 1000};
    nanosleep(&ts, NULL);
    al_progress_add(p, 100); /* drawn: 0.1 s passed */
    al_progress_free(p);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(s);
    if (env) {
        setenv("AIRLOCK_NO_PROGRESS", env, 1);
        free(env);
    }
    assert_true(made);
    char out[4096];
    ssize_t n = read(m, out, sizeof out - 1);
    close(m);
    assert_true(n > 0);
    out[n] = '\0';
    assert_non_null(strstr(out, "model.gguf"));
    assert_non_null(strstr(out, "20.0%"));
    assert_non_null(strstr(out, "ETA "));
    const char clear[] = "\r\033[K";
    assert_true((size_t)n >= sizeof clear - 1);
    assert_memory_equal(out + n - (sizeof clear - 1), clear, sizeof clear - 1);
    assert_null(strchr(out, '\n'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_sticky_max),
        cmocka_unit_test(test_buf_long_format),
        cmocka_unit_test(test_err_first_wins),
        cmocka_unit_test(test_rc_names),
        cmocka_unit_test(test_digest_hex),
        cmocka_unit_test(test_sha256_known),
        cmocka_unit_test(test_sha256_file_and_atomic_write),
        cmocka_unit_test(test_fs_sink_direct_then_buffered),
        cmocka_unit_test(test_utf8_validate_and_hold),
        cmocka_unit_test(test_fmt_size_signed),
        cmocka_unit_test(test_open_regular_refuses_fifo),
        cmocka_unit_test(test_progress_eta_and_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
