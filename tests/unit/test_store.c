/* Unit tests of src/store: blobs are proven before they are visible. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "store/store.h"

static void test_put_read_verify(void **state)
{
    char *home = tu_mkdtemp();
    struct al_err err = AL_ERR_INIT;
    struct al_store *s = NULL;
    assert_int_equal(al_store_open(home, false, &s, &err), AL_ERR_NOT_FOUND);
    al_err_clear(&err);
    assert_int_equal(al_store_open(home, true, &s, &err), AL_OK);
    char d[AL_DIGEST_SIZE];
    assert_int_equal(al_store_put(s, "abc", 3, d, &err), AL_OK);
    assert_string_equal(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(al_store_has(s, d));
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(al_store_read(s, d, 100, &data, &len, &err), AL_OK);
    assert_int_equal(len, 3);
    free(data);
    assert_int_equal(al_store_verify(s, d, NULL, NULL, &err), AL_OK);

    /* damage it: verify and read both say so */
    char path[4096];
    assert_int_equal(al_store_blob_path(s, d, path, sizeof path, &err), AL_OK);
    chmod(path, 0644);
    tu_write_file(path, "abd", 3);
    assert_int_equal(al_store_verify(s, d, NULL, NULL, &err), AL_ERR_CORRUPT);
    al_err_clear(&err);
    assert_int_equal(al_store_read(s, d, 100, &data, &len, &err), AL_ERR_CORRUPT);
    assert_null(data);
    al_err_clear(&err);
    /* putting the right content again repairs it (sizes equal: kept) ... quarantine then re-put */
    assert_int_equal(al_store_quarantine(s, d, &err), AL_OK);
    assert_false(al_store_has(s, d));
    assert_int_equal(al_store_put(s, "abc", 3, d, &err), AL_OK);
    assert_int_equal(al_store_verify(s, d, NULL, NULL, &err), AL_OK);
    al_store_free(s);
    tu_rmrf(home);
    free(home);
}

static void test_writer_mismatch_leaves_nothing(void **state)
{
    char *home = tu_mkdtemp();
    struct al_err err = AL_ERR_INIT;
    struct al_store *s = NULL;
    assert_int_equal(al_store_open(home, true, &s, &err), AL_OK);
    struct al_blob_writer *w = NULL;
    assert_int_equal(al_blob_writer_new(s, &w, &err), AL_OK);
    assert_int_equal(al_blob_writer_write(w, "hello", 5, &err), AL_OK);
    char d[AL_DIGEST_SIZE];
    assert_int_equal(
        al_blob_writer_commit(w, "sha256:0000000000000000000000000000000000000000000000000000000000000000", d, NULL,
                              &err),
        AL_ERR_VERIFY);
    assert_non_null(strstr(err.msg, "does not match"));
    al_blob_writer_free(w);
    char p[4096];
    snprintf(p, sizeof p, "%s/tmp", home);
    assert_int_equal(tu_count_files(p), 0);
    snprintf(p, sizeof p, "%s/blobs/sha256", home);
    assert_int_equal(tu_count_files(p), 0);
    al_store_free(s);
    tu_rmrf(home);
    free(home);
}

static void test_import_file_and_sweep(void **state)
{
    char *home = tu_mkdtemp();
    struct al_err err = AL_ERR_INIT;
    struct al_store *s = NULL;
    assert_int_equal(al_store_open(home, true, &s, &err), AL_OK);
    char src[4096];
    snprintf(src, sizeof src, "%s/src.bin", home);
    size_t n = 9 << 20; /* spans several copy blocks */
    char *buf = malloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)(i * 2654435761u >> 13);
    tu_write_file(src, buf, n);
    char d[AL_DIGEST_SIZE], d2[AL_DIGEST_SIZE];
    uint64_t size = 0;
    assert_int_equal(al_store_import_file(s, src, d, &size, NULL, &err), AL_OK);
    assert_int_equal(size, n);
    assert_int_equal(al_sha256_path(src, d2, NULL, NULL, &err), AL_OK);
    assert_string_equal(d, d2);
    assert_int_equal(al_store_verify(s, d, NULL, NULL, &err), AL_OK);
    /* stale temporary file from a crash: swept when old and unlocked */
    char stale[4096];
    snprintf(stale, sizeof stale, "%s/tmp/blob.crash1", home);
    tu_write_file(stale, "x", 1);
    assert_int_equal(al_store_sweep_tmp(s), 0); /* too fresh */
    assert_int_equal(tu_system("touch -d '1 hour ago' '%s'", stale), 0);
    assert_int_equal(al_store_sweep_tmp(s), 1);
    free(buf);
    al_store_free(s);
    tu_rmrf(home);
    free(home);
}

/* Writes data at path in place, as a library given the path does (fopen "wb"
 * truncates the existing file: the same inode). */
static void write_in_place(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* al_blob_writer_adopt: what another wrote at the writer's path is hashed
 * where it lies and committed; a file put in its place, or a writer that was
 * written through, is refused, and freeing removes the file. */
static void test_writer_adopt(void **state)
{
    char *home = tu_mkdtemp();
    struct al_err err = AL_ERR_INIT;
    struct al_store *s = NULL;
    assert_int_equal(al_store_open(home, true, &s, &err), AL_OK);
    struct al_blob_writer *w = NULL;
    assert_int_equal(al_blob_writer_new(s, &w, &err), AL_OK);
    char path[4096];
    snprintf(path, sizeof path, "%s", al_blob_writer_path(w));
    write_in_place(path, "abc", 3);
    assert_int_equal(al_store_sweep_tmp(s), 0); /* locked by the writer, not debris */
    assert_int_equal(tu_system("touch -d '1 hour ago' '%s'", path), 0);
    assert_int_equal(al_store_sweep_tmp(s), 0); /* old, still locked */
    assert_int_equal(al_blob_writer_adopt(w, NULL, &err), AL_OK);
    char d[AL_DIGEST_SIZE];
    uint64_t size = 0;
    assert_int_equal(al_blob_writer_commit(w, NULL, d, &size, &err), AL_OK);
    assert_string_equal(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(size, 3);
    assert_int_equal(al_store_verify(s, d, NULL, NULL, &err), AL_OK);
    assert_int_equal(access(path, F_OK), -1);
    al_blob_writer_free(w);

    /* another file renamed over the writer's: not the inode it locked */
    w = NULL;
    assert_int_equal(al_blob_writer_new(s, &w, &err), AL_OK);
    snprintf(path, sizeof path, "%s", al_blob_writer_path(w));
    char other[4096];
    snprintf(other, sizeof other, "%s/other", home);
    tu_write_file(other, "xyz", 3);
    assert_int_equal(rename(other, path), 0);
    assert_int_equal(al_blob_writer_adopt(w, NULL, &err), AL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "was replaced by another file"));
    al_err_clear(&err);
    al_blob_writer_free(w);
    assert_int_equal(access(path, F_OK), -1); /* free removed it */

    /* written through the writer: adopting would drop those bytes */
    w = NULL;
    assert_int_equal(al_blob_writer_new(s, &w, &err), AL_OK);
    assert_int_equal(al_blob_writer_write(w, "q", 1, &err), AL_OK);
    assert_int_equal(al_blob_writer_adopt(w, NULL, &err), AL_ERR_INTERNAL);
    al_err_clear(&err);
    al_blob_writer_free(w);

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/tmp", home);
    DIR *dir = opendir(tmp);
    assert_non_null(dir);
    struct dirent *e;
    int left = 0;
    while ((e = readdir(dir)) != NULL)
        left += e->d_name[0] != '.';
    closedir(dir);
    assert_int_equal(left, 0);
    al_store_free(s);
    tu_rmrf(home);
    free(home);
}

static void test_bad_digest_path(void **state)
{
    char *home = tu_mkdtemp();
    struct al_err err = AL_ERR_INIT;
    struct al_store *s = NULL;
    assert_int_equal(al_store_open(home, true, &s, &err), AL_OK);
    char p[4096];
    assert_int_equal(al_store_blob_path(s, "sha256:../../etc/passwd", p, sizeof p, &err), AL_ERR_INVALID);
    al_store_free(s);
    tu_rmrf(home);
    free(home);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_read_verify),
        cmocka_unit_test(test_writer_mismatch_leaves_nothing),
        cmocka_unit_test(test_import_file_and_sweep),
        cmocka_unit_test(test_writer_adopt),
        cmocka_unit_test(test_bad_digest_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
