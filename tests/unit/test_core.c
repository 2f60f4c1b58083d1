/* Unit tests of src/core: buffers, errors, hashing, atomic writes. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/hash.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_sticky_max),
        cmocka_unit_test(test_buf_long_format),
        cmocka_unit_test(test_err_first_wins),
        cmocka_unit_test(test_sha256_known),
        cmocka_unit_test(test_sha256_file_and_atomic_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
