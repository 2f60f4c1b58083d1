/* Unit tests of src/gguf: the real fixture, a generated model, and a corpus of
 * malformed files built here byte by byte. Every bad file must give an error
 * code and a message, never a crash or an abort. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "core/err.h"
#include "core/limits.h"
#include "gguf/gguf.h"

/* ---- a tiny GGUF writer, little-endian, for hand-made files ---- */

struct gb {
    unsigned char d[4096];
    size_t len;
    size_t kv_end, info_end, data_off; /* section boundaries */
};

static void gb_add(struct gb *b, const void *p, size_t n)
{
    assert_true(b->len + n <= sizeof b->d);
    memcpy(b->d + b->len, p, n);
    b->len += n;
}
static void gb_u32(struct gb *b, uint32_t v) { gb_add(b, &v, 4); }
static void gb_u64(struct gb *b, uint64_t v) { gb_add(b, &v, 8); }
static void gb_str(struct gb *b, const char *s)
{
    gb_u64(b, strlen(s));
    gb_add(b, s, strlen(s));
}

/* A valid file: 3 KVs, two F32 tensors (4x2 and 8), 64 bytes of data. */
static void gb_valid(struct gb *b)
{
    memset(b, 0, sizeof *b);
    gb_add(b, "GGUF", 4);
    gb_u32(b, 3);
    gb_u64(b, 2); /* tensors */
    gb_u64(b, 3); /* kv */
    gb_str(b, "general.architecture");
    gb_u32(b, 8);
    gb_str(b, "llama");
    gb_str(b, "general.name");
    gb_u32(b, 8);
    gb_str(b, "tiny\x01test");
    gb_str(b, "llama.block_count");
    gb_u32(b, 4);
    gb_u32(b, 1);
    b->kv_end = b->len;
    gb_str(b, "a.weight");
    gb_u32(b, 2);
    gb_u64(b, 4);
    gb_u64(b, 2);
    gb_u32(b, 0); /* F32 */
    gb_u64(b, 0);
    gb_str(b, "b.weight");
    gb_u32(b, 1);
    gb_u64(b, 8);
    gb_u32(b, 0);
    gb_u64(b, 32);
    b->info_end = b->len;
    while (b->len % 32 != 0)
        gb_add(b, "", 1);
    b->data_off = b->len;
    for (int i = 0; i < 16; i++) {
        float f = (float)i;
        gb_add(b, &f, 4);
    }
}

static char *g_dir;

static int setup(void **state)
{
    g_dir = tu_mkdtemp();
    return 0;
}

static int teardown(void **state)
{
    tu_rmrf(g_dir);
    free(g_dir);
    return 0;
}

/* Writes data to a file in the test directory and inspects it. */
static enum al_rc inspect_bytes(const void *data, size_t len, struct al_gguf_info *info,
                                struct al_err *err)
{
    char path[512];
    snprintf(path, sizeof path, "%s/x.gguf", g_dir);
    tu_write_file(path, data, len);
    al_err_clear(err);
    return al_gguf_inspect(path, info, err);
}

/* Bad bytes: an error code and the standard message, nothing else. */
static void expect_bad(const void *data, size_t len, enum al_rc want, const char *what)
{
    struct al_gguf_info info;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = inspect_bytes(data, len, &info, &err);
    if (rc != want)
        fail_msg("%s: rc %s, want %s (%s)", what, al_rc_name(rc), al_rc_name(want), err.msg);
    assert_true(err.msg[0] != '\0');
    if (want == AL_ERR_INVALID && strstr(err.msg, "is not a valid GGUF file: ") == NULL)
        fail_msg("%s: unexpected message: %s", what, err.msg);
}

/* ---- good files ---- */

static void test_hand_made_valid(void **state)
{
    struct gb b;
    gb_valid(&b);
    struct al_gguf_info info;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(inspect_bytes(b.d, b.len, &info, &err), AL_OK);
    assert_int_equal(info.version, 3);
    assert_int_equal(info.n_kv, 3);
    assert_int_equal(info.n_tensors, 2);
    assert_string_equal(info.arch, "llama");
    assert_string_equal(info.name, "tiny?test"); /* control character replaced */
    assert_int_equal(info.block_count, 1);
    assert_int_equal(info.n_params, 16);
    assert_int_equal(info.data_size, 64);
    assert_int_equal(info.data_offset, b.data_off);
    assert_int_equal(info.file_size, b.len);
    assert_string_equal(info.file_type, "F32");
    assert_int_equal(info.file_type_id, -1);
    assert_int_equal(info.n_types, 1);
    assert_int_equal(info.types[0].tensors, 2);

    char path[512];
    snprintf(path, sizeof path, "%s/x.gguf", g_dir);
    assert_true(al_gguf_has_magic(path));
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(lseek(fd, 7, SEEK_SET), 7);
    assert_int_equal(al_gguf_inspect_fd(fd, "x", &info, &err), AL_OK);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 7); /* position untouched */
    close(fd);
}

static void test_fixture(void **state)
{
    char path[1024];
    snprintf(path, sizeof path, "%s", tu_fixture("stories260K.gguf"));
    struct al_gguf_info info;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_gguf_inspect(path, &info, &err), AL_OK);
    assert_string_equal(info.arch, "llama");
    assert_int_equal(info.vocab_size, 512);
    assert_string_equal(info.file_type, "F32");
    assert_true(info.n_params > 292000 && info.n_params < 293500);
    assert_true(info.block_count > 0 && info.embedding_length > 0 && info.head_count > 0);
    assert_true(info.data_offset + info.data_size <= info.file_size);
    assert_true(al_gguf_has_magic(path));
}

static void test_generated(void **state)
{
    const char *build = tu_env("AL_BUILD");
    const char *vocab = tu_env("AL_VOCAB_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/gen.gguf", g_dir);
    assert_int_equal(tu_system("'%s/airlock-ggufgen' --out '%s' --layers 2 --embd 64 --ff 192 "
                               "--heads 4 --kv-heads 2 --ctx 256 --name gen-test "
                               "--chat-template '{{ x }}' --vocab '%s/ggml-vocab-llama-spm.gguf' "
                               "2>/dev/null",
                               build, path, vocab),
                     0);
    struct al_gguf_info info;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_gguf_inspect(path, &info, &err), AL_OK);
    assert_string_equal(info.arch, "llama");
    assert_string_equal(info.name, "gen-test");
    assert_string_equal(info.file_type, "F32");
    assert_string_equal(info.tokenizer_model, "llama");
    assert_true(info.has_chat_template);
    assert_int_equal(info.vocab_size, 32000);
    assert_int_equal(info.block_count, 2);
    assert_int_equal(info.embedding_length, 64);
    assert_int_equal(info.feed_forward_length, 192);
    assert_int_equal(info.head_count, 4);
    assert_int_equal(info.head_count_kv, 2);
    assert_int_equal(info.context_length, 256);
    assert_int_equal(info.n_tensors, 3 + 9 * 2);
    /* 2*V*E + E + L*(2E^2 + 2*E*Ekv + 3*E*F + 2E), Ekv = 16*2 */
    uint64_t per = 2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 192 + 2 * 64;
    assert_int_equal(info.n_params, 2ull * 32000 * 64 + 64 + 2 * per);

    /* the same model cut inside its tensor data */
    size_t len;
    char *data = tu_read_file(path, &len);
    assert_non_null(data);
    expect_bad(data, len - 1, AL_ERR_INVALID, "generated, last byte cut");
    expect_bad(data, (size_t)info.data_offset + 100, AL_ERR_INVALID, "generated, data cut");
    expect_bad(data, (size_t)info.data_offset - 10, AL_ERR_INVALID, "generated, info cut");
    expect_bad(data, 100000, AL_ERR_INVALID, "generated, vocabulary cut");
    free(data);
}

/* ---- bad files ---- */

static void test_missing_and_odd_paths(void **state)
{
    struct al_gguf_info info;
    struct al_err err = AL_ERR_INIT;
    char path[512];
    snprintf(path, sizeof path, "%s/none.gguf", g_dir);
    assert_int_equal(al_gguf_inspect(path, &info, &err), AL_ERR_NOT_FOUND);
    assert_false(al_gguf_has_magic(path));
    al_err_clear(&err);
    assert_int_equal(al_gguf_inspect(g_dir, &info, &err), AL_ERR_INVALID);
    expect_bad("", 0, AL_ERR_INVALID, "empty");
}

static void test_random_bytes(void **state)
{
    unsigned char buf[2048];
    unsigned s = 12345;
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            s = s * 1103515245u + 12345u;
            buf[i] = (unsigned char)(s >> 16);
        }
        size_t len = 1 + (size_t)(s % sizeof buf);
        expect_bad(buf, len, AL_ERR_INVALID, "random");
        memcpy(buf, "GGUF\x03\0\0\0", 8); /* a plausible start, random after */
        struct al_gguf_info info;
        struct al_err err = AL_ERR_INIT;
        enum al_rc rc = inspect_bytes(buf, len, &info, &err);
        assert_true(rc == AL_ERR_INVALID || rc == AL_ERR_LIMIT);
    }
}

static void test_truncated_everywhere(void **state)
{
    struct gb b;
    gb_valid(&b);
    for (size_t cut = 0; cut < b.len; cut++) {
        char what[64];
        snprintf(what, sizeof what, "cut at %zu of %zu", cut, b.len);
        expect_bad(b.d, cut, AL_ERR_INVALID, what);
    }
}

static void test_header_fields(void **state)
{
    struct gb b;
    gb_valid(&b);
    memcpy(b.d, "GGUX", 4);
    expect_bad(b.d, b.len, AL_ERR_INVALID, "wrong magic");
    gb_valid(&b);
    b.d[4] = 1;
    expect_bad(b.d, b.len, AL_ERR_INVALID, "version 1");
    gb_valid(&b);
    memcpy(b.d + 4, "\0\0\0\3", 4);
    expect_bad(b.d, b.len, AL_ERR_INVALID, "big-endian version");
    gb_valid(&b);
    uint64_t huge = 1ull << 40;
    memcpy(b.d + 16, &huge, 8);
    expect_bad(b.d, b.len, AL_ERR_LIMIT, "huge kv count");
    memcpy(b.d + 8, &huge, 8);
    expect_bad(b.d, b.len, AL_ERR_LIMIT, "huge tensor count");
    gb_valid(&b);
    uint64_t neg = (uint64_t)-5;
    memcpy(b.d + 8, &neg, 8);
    expect_bad(b.d, b.len, AL_ERR_INVALID, "negative tensor count");
    gb_valid(&b);
    uint64_t under_cap = AL_LIMIT_GGUF_KV; /* allowed by the cap, but no such data */
    memcpy(b.d + 16, &under_cap, 8);
    expect_bad(b.d, b.len, AL_ERR_INVALID, "kv count past the data");
}

static void test_huge_lengths(void **state)
{
    struct gb b;
    gb_valid(&b);
    uint64_t huge = 1ull << 62;
    memcpy(b.d + 24, &huge, 8); /* length of the first key */
    expect_bad(b.d, b.len, AL_ERR_INVALID, "huge key length");
    huge = 1ull << 31;
    memcpy(b.d + 24, &huge, 8);
    expect_bad(b.d, b.len, AL_ERR_INVALID, "2 GiB key length");

    /* an array of 2^60 u8 */
    memset(&b, 0, sizeof b);
    gb_add(&b, "GGUF", 4);
    gb_u32(&b, 3);
    gb_u64(&b, 0);
    gb_u64(&b, 1);
    gb_str(&b, "x.arr");
    gb_u32(&b, 9);
    gb_u32(&b, 0);
    gb_u64(&b, 1ull << 60);
    gb_add(&b, "abcd", 4);
    expect_bad(b.d, b.len, AL_ERR_INVALID, "huge array");
}

/* Values of a wrong type where we read them must not reach ggml's aborting
 * getters. */
static void test_wrong_value_types(void **state)
{
    struct gb b;
    memset(&b, 0, sizeof b);
    gb_add(&b, "GGUF", 4);
    gb_u32(&b, 3);
    gb_u64(&b, 0);
    gb_u64(&b, 5);
    gb_str(&b, "general.architecture");
    gb_u32(&b, 4);
    gb_u32(&b, 7);
    gb_str(&b, "general.file_type");
    gb_u32(&b, 8);
    gb_str(&b, "Q4_0");
    gb_str(&b, "tokenizer.ggml.tokens");
    gb_u32(&b, 8);
    gb_str(&b, "not an array");
    gb_str(&b, "general.name");
    gb_u32(&b, 9); /* array of strings */
    gb_u32(&b, 8);
    gb_u64(&b, 1);
    gb_str(&b, "n");
    gb_str(&b, "tokenizer.chat_template");
    gb_u32(&b, 6);
    float f = 1;
    gb_add(&b, &f, 4);
    struct al_gguf_info info;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(inspect_bytes(b.d, b.len, &info, &err), AL_OK);
    assert_string_equal(info.arch, "");
    assert_string_equal(info.name, "");
    assert_int_equal(info.file_type_id, -1);
    assert_int_equal(info.vocab_size, 0);
    assert_false(info.has_chat_template);
    assert_int_equal(info.n_tensors, 0);
}

static void test_tensor_info(void **state)
{
    struct gb b;
    size_t a_ndims = 0;
    gb_valid(&b);
    a_ndims = b.kv_end + 8 + strlen("a.weight");
    uint32_t v = 5;
    memcpy(b.d + a_ndims, &v, 4);
    expect_bad(b.d, b.len, AL_ERR_INVALID, "5 dimensions");
    gb_valid(&b);
    int64_t neg = -4;
    memcpy(b.d + a_ndims + 4, &neg, 8);
    expect_bad(b.d, b.len, AL_ERR_INVALID, "negative dimension");
    gb_valid(&b);
    v = 999;
    memcpy(b.d + a_ndims + 20, &v, 4);
    expect_bad(b.d, b.len, AL_ERR_INVALID, "type 999");
    gb_valid(&b);
    v = 2; /* Q4_0: 4 elements per row is not a multiple of 32 */
    memcpy(b.d + a_ndims + 20, &v, 4);
    expect_bad(b.d, b.len, AL_ERR_INVALID, "block size");
    gb_valid(&b);
    uint64_t off = 1ull << 50; /* b.weight far away */
    memcpy(b.d + b.info_end - 8, &off, 8);
    expect_bad(b.d, b.len, AL_ERR_INVALID, "offset far away");
    gb_valid(&b);
    int64_t big = 1ll << 40; /* a.weight huge: data not in the file */
    memcpy(b.d + a_ndims + 4, &big, 8);
    expect_bad(b.d, b.len, AL_ERR_INVALID, "tensor larger than file");
    gb_valid(&b);
    memcpy(b.d + b.kv_end + 8 + 8 + 4 + 16 + 4 + 8 + 8, "a", 1); /* b.weight -> a.weight */
    expect_bad(b.d, b.len, AL_ERR_INVALID, "duplicate tensor name");
}

/* Every byte set to a few nasty values in turn: no crash, an answer. */
static void test_byte_mutations(void **state)
{
    struct gb b;
    static const unsigned char vals[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    gb_valid(&b);
    for (size_t i = 0; i < b.data_off; i++) {
        for (size_t k = 0; k < sizeof vals; k++) {
            struct gb m = b;
            m.d[i] = vals[k];
            struct al_gguf_info info;
            struct al_err err = AL_ERR_INIT;
            enum al_rc rc = inspect_bytes(m.d, m.len, &info, &err);
            assert_true(rc == AL_OK || rc == AL_ERR_INVALID || rc == AL_ERR_LIMIT);
            assert_true(rc == AL_OK || err.msg[0] != '\0');
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_made_valid),
        cmocka_unit_test(test_fixture),
        cmocka_unit_test(test_generated),
        cmocka_unit_test(test_missing_and_odd_paths),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_huge_lengths),
        cmocka_unit_test(test_wrong_value_types),
        cmocka_unit_test(test_tensor_info),
        cmocka_unit_test(test_byte_mutations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
