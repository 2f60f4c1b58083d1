/* test_delta.c: patches made of tensors (src/delta): round trips on a real
 * GGUF (tensor changed, metadata changed, tensor unchanged) and on other
 * files, and every malformed patch refused with its message. */
#include "testutil.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delta/delta.h"
#include "gguf/gguf.h"

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = tu_mkdtemp();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmrf(dir);
    free(dir);
    return 0;
}

struct mem {
    unsigned char *p;
    size_t len, cap;
};

static enum al_rc to_mem(void *ud, const void *data, size_t len, struct al_err *err)
{
    struct mem *m = ud;
    if (m->len + len > m->cap) {
        size_t cap = (m->len + len) * 2;
        unsigned char *p = realloc(m->p, cap);
        if (p == NULL)
            return al_err_set(err, AL_ERR_NOMEM, "out of memory");
        m->p = p, m->cap = cap;
    }
    memcpy(m->p + m->len, data, len);
    m->len += len;
    return AL_OK;
}

static const char *path_of(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/* Makes the patch base -> new at path "patch", applies it, and compares. */
static void round_trip(const char *base, const char *new, struct al_delta_stats *st)
{
    struct al_err err = AL_ERR_INIT;
    int b = open(path_of(base), O_RDONLY), n = open(path_of(new), O_RDONLY);
    int out = open(path_of("patch"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(b >= 0 && n >= 0 && out >= 0);
    assert_int_equal(al_delta_make(b, base, n, new, out, NULL, st, &err), AL_OK);
    close(out);
    struct al_delta_stats dry;
    assert_int_equal(al_delta_make(b, base, n, new, -1, NULL, &dry, &err), AL_OK);
    assert_int_equal(dry.tensors_changed, st->tensors_changed);
    assert_int_equal(dry.tensors_unchanged, st->tensors_unchanged);
    assert_int_equal(dry.bytes_unchanged, st->bytes_unchanged);
    size_t want_len = 0;
    char *want = tu_read_file(path_of(new), &want_len);
    int p = open(path_of("patch"), O_RDONLY);
    struct mem m = {0};
    assert_int_equal(al_delta_apply(b, p, want_len, to_mem, &m, NULL, &err), AL_OK);
    assert_int_equal(m.len, want_len);
    assert_memory_equal(m.p, want, want_len);
    free(m.p);
    free(want);
    close(p);
    close(b);
    close(n);
}

static void copy_file(const char *from, const char *to)
{
    size_t len = 0;
    char *d = tu_read_file(from, &len);
    tu_write_file(path_of(to), d, len);
    free(d);
}

static void test_gguf_tensor_changed(void **state)
{
    (void)state;
    copy_file(tu_fixture("stories260K.gguf"), "base.gguf");
    /* Change bytes in the middle of one tensor. */
    int fd = open(path_of("base.gguf"), O_RDONLY);
    struct al_gguf_table t;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_gguf_table_fd(fd, "base.gguf", &t, &err), AL_OK);
    close(fd);
    assert_true(t.n > 3);
    size_t len = 0;
    unsigned char *d = (unsigned char *)tu_read_file(path_of("base.gguf"), &len);
    size_t k = 0;
    while (k < t.n && t.t[k].size < 64)
        k++;
    assert_true(k < t.n);
    for (int i = 0; i < 16; i++)
        d[t.t[k].offset + t.t[k].size / 2 + (size_t)i] ^= 0x5a;
    tu_write_file(path_of("new.gguf"), d, len);
    free(d);
    struct al_delta_stats st;
    round_trip("base.gguf", "new.gguf", &st);
    assert_true(st.gguf);
    assert_int_equal(st.tensors_changed, 1);
    assert_int_equal(st.tensors_new, 0);
    assert_int_equal(st.tensors_unchanged, t.n - 1);
    /* A small change ships much less than the file. */
    assert_true(st.patch_bytes < len / 4);
    al_gguf_table_release(&t);
}

static void test_gguf_identical(void **state)
{
    (void)state;
    copy_file(tu_fixture("stories260K.gguf"), "base.gguf");
    copy_file(tu_fixture("stories260K.gguf"), "new.gguf");
    struct al_delta_stats st;
    round_trip("base.gguf", "new.gguf", &st);
    assert_int_equal(st.tensors_changed, 0);
    assert_true(st.tensors_unchanged > 0);
    /* The header frame and one copy: unchanged tensors and the padding
     * between them coalesce into a single op (one per tensor was 26 bytes
     * each, and lost (a) of bench/delta.sh to xdelta3). */
    fprintf(stderr, "identical: %llu tensors, patch %llu bytes\n", (unsigned long long)st.tensors_unchanged,
            (unsigned long long)st.patch_bytes);
    assert_true(st.patch_bytes < 26u * st.tensors_unchanged);
    assert_true(st.patch_bytes < 512);
}

static void test_other_file(void **state)
{
    (void)state;
    size_t n = AL_DELTA_CHUNK + 12345;
    unsigned char *d = malloc(n);
    srand(7);
    for (size_t i = 0; i < n; i++)
        d[i] = (unsigned char)rand();
    tu_write_file(path_of("a.bin"), d, n);
    d[100] ^= 1;
    tu_write_file(path_of("b.bin"), d, n - 10); /* changed first chunk, shorter tail */
    free(d);
    struct al_delta_stats st;
    round_trip("a.bin", "b.bin", &st);
    assert_false(st.gguf);
    /* The changed chunk is a prefix match, not the random bytes again. */
    assert_true(st.patch_bytes < 1u << 20);
    /* From an empty base: everything is new. */
    tu_write_file(path_of("empty"), "", 0);
    round_trip("empty", "b.bin", &st);
}

/* A patch whose bytes were changed is refused, never applied in part silently. */
static void expect_refused(const unsigned char *patch, size_t len, const char *base, uint64_t result,
                           const char *msg)
{
    tu_write_file(path_of("bad"), patch, len);
    int b = open(path_of(base), O_RDONLY), p = open(path_of("bad"), O_RDONLY);
    struct mem m = {0};
    struct al_err err = AL_ERR_INIT;
    assert_int_not_equal(al_delta_apply(b, p, result, to_mem, &m, NULL, &err), AL_OK);
    if (strstr(err.msg, msg) == NULL)
        fail_msg("message '%s' lacks '%s'", err.msg, msg);
    free(m.p);
    close(b);
    close(p);
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void test_malformed(void **state)
{
    (void)state;
    tu_write_file(path_of("base"), "0123456789", 10);
    unsigned char p[128];
    memcpy(p, "ALDELTA1", 8);
    put64(p + 8, 10);
    put64(p + 16, 4);
    /* a copy outside the base */
    p[24] = 'C';
    put64(p + 25, 8);
    put64(p + 33, 4);
    p[41] = 'E';
    expect_refused(p, 42, "base", 4, "outside the base");
    /* a copy past the result */
    put64(p + 25, 0);
    put64(p + 33, 5);
    expect_refused(p, 42, "base", 4, "past the result");
    /* good op, then bytes after the end */
    put64(p + 33, 4);
    p[42] = 'x';
    expect_refused(p, 43, "base", 4, "bytes follow the end");
    /* truncated */
    expect_refused(p, 30, "base", 4, "truncated");
    /* the end before the result is complete */
    p[24] = 'E';
    expect_refused(p, 25, "base", 4, "ends after 0");
    /* an unknown op */
    p[24] = 'Q';
    expect_refused(p, 25, "base", 4, "unknown op");
    /* a frame over the chunk cap */
    p[24] = 'L';
    put64(p + 25, 4);
    put64(p + 33, (uint64_t)1 << 40);
    expect_refused(p, 41, "base", 4, "chunk cap");
    /* a frame that is not zstd */
    put64(p + 33, 8);
    memset(p + 41, 0x11, 8);
    p[49] = 'E';
    expect_refused(p, 50, "base", 4, "does not declare");
    /* another base or result size */
    expect_refused(p, 50, "base", 5, "for a base of 10 bytes");
    /* not a patch */
    expect_refused((const unsigned char *)"hello world, not a patch", 24, "base", 4, "not an airlock delta");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gguf_tensor_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gguf_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
