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

/* The stream scan of data[0..len) fed in pieces of step bytes. When it
 * follows the stream to its end, the file scan of the same bytes must have
 * succeeded with the very same report: returns whether it did. */
static bool stream_matches(const void *data, size_t len, size_t step, enum al_rc file_rc,
                           const struct al_gguf_value_report *want)
{
    struct al_gguf_value_stream *vs = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_gguf_value_stream_new(len, "s.gguf", &vs, &err), AL_OK);
    for (size_t at = 0; at < len; at += step)
        al_gguf_value_stream_feed(vs, (const char *)data + at, len - at < step ? len - at : step);
    struct al_gguf_value_report got;
    bool done = al_gguf_value_stream_finish(vs, &got);
    al_gguf_value_stream_free(vs);
    if (!done)
        return false;
    if (file_rc != AL_OK)
        fail_msg("the stream scan finished where the file scan failed (%d)", (int)file_rc);
    if (got.n_tensors != want->n_tensors || got.tensors_checked != want->tensors_checked ||
        got.bytes_checked != want->bytes_checked || got.n_findings != want->n_findings ||
        got.n_listed != want->n_listed)
        fail_msg("stream (step %zu): %lld tensors, %lld checked, %llu bytes, %llu findings; file: %lld, %lld, %llu, "
                 "%llu", step, (long long)got.n_tensors, (long long)got.tensors_checked,
                 (unsigned long long)got.bytes_checked, (unsigned long long)got.n_findings,
                 (long long)want->n_tensors, (long long)want->tensors_checked,
                 (unsigned long long)want->bytes_checked, (unsigned long long)want->n_findings);
    for (int i = 0; i < got.n_listed; i++) {
        const struct al_gguf_finding *a = &got.findings[i], *b = &want->findings[i];
        if (strcmp(a->tensor, b->tensor) != 0 || strcmp(a->type, b->type) != 0 || a->offset != b->offset ||
            strcmp(a->what, b->what) != 0)
            fail_msg("stream finding %d: '%s' %s at %llu: %s; file: '%s' %s at %llu: %s", i, a->tensor, a->type,
                     (unsigned long long)a->offset, a->what, b->tensor, b->type, (unsigned long long)b->offset,
                     b->what);
    }
    return true;
}

/* Whether the stream scan follows data to its end in pieces of a few sizes,
 * each time with the file scan's report. */
static bool stream_all_steps(const void *data, size_t len, enum al_rc file_rc, const struct al_gguf_value_report *want)
{
    static const size_t steps[] = {1, 7, 4099, (1u << 20) + 3};
    bool all = true, any = false;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (steps[i] == 1 && len > (256u << 10))
            continue; /* byte by byte only for small files */
        bool done = stream_matches(data, len, steps[i], file_rc, want);
        all = all && done;
        any = any || done;
    }
    bool whole = stream_matches(data, len, len ? len : 1, file_rc, want);
    if (any != whole || all != whole)
        fail_msg("the stream scan followed some piece sizes and not others");
    return whole;
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
            /* the value scan of the same bytes: tensor types, shapes and
             * offsets changed under it, never a crash */
            struct al_gguf_value_report rep;
            struct al_err err2 = AL_ERR_INIT;
            char path[512];
            snprintf(path, sizeof path, "%s/x.gguf", g_dir);
            enum al_rc rc2 = al_gguf_scan_values_path(path, &rep, &err2);
            assert_true(rc2 == AL_OK || rc2 == AL_ERR_INVALID || rc2 == AL_ERR_LIMIT);
            if (rc2 == AL_OK)
                assert_true(rep.n_listed <= AL_GGUF_FINDINGS_MAX && rep.bytes_checked <= m.len);
            /* and the stream scan: the same report whenever it follows */
            (void)stream_all_steps(m.d, m.len, rc2, &rep);
        }
    }
}

/* ---- tensor values (al_gguf_scan_values) ---- */

static enum al_rc scan_bytes(const void *data, size_t len, struct al_gguf_value_report *rep)
{
    char path[512];
    snprintf(path, sizeof path, "%s/v.gguf", g_dir);
    tu_write_file(path, data, len);
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_gguf_scan_values_path(path, rep, &err);
    if (rc != AL_OK)
        print_message("scan: %s\n", err.msg);
    (void)stream_all_steps(data, len, rc, rep);
    return rc;
}

/* The file scan of path, and the stream scan of its bytes, which must
 * follow it to the end with the same report. */
static enum al_rc scan_path_and_stream(const char *path, struct al_gguf_value_report *rep, struct al_err *err)
{
    enum al_rc rc = al_gguf_scan_values_path(path, rep, err);
    size_t len;
    char *data = tu_read_file(path, &len);
    assert_non_null(data);
    if (!stream_all_steps(data, len, rc, rep))
        fail_msg("the stream scan did not follow '%s' (a GGUF written by ggml)", path);
    free(data);
    return rc;
}

static void expect_finding(const struct al_gguf_value_report *rep, int i, const char *tensor,
                           uint64_t offset, const char *what)
{
    assert_true(i < rep->n_listed);
    const struct al_gguf_finding *f = &rep->findings[i];
    if (strcmp(f->tensor, tensor) != 0 || f->offset != offset || strcmp(f->what, what) != 0)
        fail_msg("finding %d: '%s' at %llu: %s; want '%s' at %llu: %s", i, f->tensor,
                 (unsigned long long)f->offset, f->what, tensor, (unsigned long long)offset, what);
}

static void test_values_hand_made(void **state)
{
    struct gb b;
    struct al_gguf_value_report rep;
    gb_valid(&b);
    assert_int_equal(scan_bytes(b.d, b.len, &rep), AL_OK);
    assert_int_equal(rep.n_tensors, 2);
    assert_int_equal(rep.tensors_checked, 2);
    assert_int_equal(rep.bytes_checked, 64);
    assert_int_equal(rep.n_findings, 0);

    uint32_t nan = 0x7fc00001u, inf = 0xff800000u; /* a payload NaN, -Inf */
    memcpy(b.d + b.data_off + 4 * 5, &nan, 4);
    memcpy(b.d + b.data_off + 32 + 4 * 6, &inf, 4);
    memcpy(b.d + b.data_off + 32 + 4 * 7, &nan, 4); /* after the first: not reported */
    assert_int_equal(scan_bytes(b.d, b.len, &rep), AL_OK);
    assert_int_equal(rep.n_findings, 2);
    assert_int_equal(rep.n_listed, 2);
    expect_finding(&rep, 0, "a.weight", b.data_off + 20, "nan");
    expect_finding(&rep, 1, "b.weight", b.data_off + 32 + 24, "inf");
    assert_string_equal(rep.findings[0].type, "F32");

    /* cut inside the data of the second tensor: a finding, not an error */
    gb_valid(&b);
    assert_int_equal(scan_bytes(b.d, b.data_off + 40, &rep), AL_OK);
    assert_int_equal(rep.n_findings, 1);
    assert_int_equal(rep.tensors_checked, 1);
    expect_finding(&rep, 0, "b.weight", b.data_off + 32, "out of file");
    assert_int_equal(scan_bytes(b.d, b.data_off + 3, &rep), AL_OK);
    assert_int_equal(rep.n_findings, 2);
    assert_int_equal(rep.tensors_checked, 0);

    /* not a GGUF file: an error, as for inspection */
    assert_int_equal(scan_bytes("GGUF", 4, &rep), AL_ERR_INVALID);
    struct al_err err = AL_ERR_INIT;
    char path[512];
    snprintf(path, sizeof path, "%s/none.gguf", g_dir);
    assert_int_equal(al_gguf_scan_values_path(path, &rep, &err), AL_ERR_NOT_FOUND);
}

/* A one-tensor file of ggml type id, two blocks of zeros; the block size and
 * element count are given. */
static void gb_one_tensor(struct gb *b, uint32_t type, uint64_t elems, size_t nbytes)
{
    memset(b, 0, sizeof *b);
    gb_add(b, "GGUF", 4);
    gb_u32(b, 3);
    gb_u64(b, 1);
    gb_u64(b, 0);
    gb_str(b, "q.weight");
    gb_u32(b, 1);
    gb_u64(b, elems);
    gb_u32(b, type);
    gb_u64(b, 0);
    while (b->len % 32 != 0)
        gb_add(b, "", 1);
    b->data_off = b->len;
    assert_true(b->len + nbytes <= sizeof b->d);
    b->len += nbytes;
}

/* NaN and Inf in the fp16 scales of every block layout in values.c's table,
 * located and named; MXFP4 (no table entry) through ggml's check alone. */
static void test_values_quant_scales(void **state)
{
    static const struct {
        const char *name;
        uint32_t id, qk, size;
        int off; /* a scale, negative from the block's end */
        const char *what;
    } q[] = {
        {"Q4_0", 2, 32, 18, 0, "nan"},      {"Q4_1", 3, 32, 20, 2, "inf"},
        {"Q5_0", 6, 32, 22, 0, "inf"},      {"Q5_1", 7, 32, 24, 2, "nan"},
        {"Q8_0", 8, 32, 34, 0, "nan"},      {"Q2_K", 10, 256, 84, -4, "nan"},
        {"Q3_K", 11, 256, 110, -2, "inf"},  {"Q4_K", 12, 256, 144, 2, "nan"},
        {"Q5_K", 13, 256, 176, 0, "inf"},   {"Q6_K", 14, 256, 210, -2, "nan"},
        {"IQ4_NL", 20, 32, 18, 0, "inf"},   {"IQ4_XS", 23, 256, 136, 0, "nan"},
        {"MXFP4", 39, 32, 17, 0, "nan or inf"},
        {"Q8_1", 9, 32, 36, 0, "bad type"}, /* ggml's check does not know it */
    };
    for (size_t k = 0; k < sizeof q / sizeof q[0]; k++) {
        struct gb b;
        struct al_gguf_value_report rep;
        gb_one_tensor(&b, q[k].id, 2 * q[k].qk, 2 * q[k].size);
        if (strcmp(q[k].what, "bad type") == 0) {
            assert_int_equal(scan_bytes(b.d, b.len, &rep), AL_OK);
            assert_int_equal(rep.n_findings, 1);
            assert_int_equal(rep.bytes_checked, 0);
            expect_finding(&rep, 0, "q.weight", b.data_off, "bad type");
            continue;
        }
        if (scan_bytes(b.d, b.len, &rep) != AL_OK || rep.n_findings != 0)
            fail_msg("%s: clean blocks gave %llu findings", q[k].name,
                     (unsigned long long)rep.n_findings);
        assert_string_equal(rep.findings[0].tensor, ""); /* untouched */
        size_t at = b.data_off + q[k].size + (size_t)(q[k].off < 0 ? (int)q[k].size + q[k].off : q[k].off);
        if (q[k].id == 39) {
            b.d[b.data_off + q[k].size] = 0xff; /* e8m0 all ones */
            at = b.data_off + q[k].size;
        } else {
            uint16_t h = strcmp(q[k].what, "nan") == 0 ? 0xfe01 : 0x7c00;
            memcpy(b.d + at, &h, 2);
        }
        assert_int_equal(scan_bytes(b.d, b.len, &rep), AL_OK);
        if (rep.n_findings != 1)
            fail_msg("%s: %llu findings", q[k].name, (unsigned long long)rep.n_findings);
        expect_finding(&rep, 0, "q.weight", at, q[k].what);
        assert_string_equal(rep.findings[0].type, q[k].name);
    }
}

/* Generates a small model with airlock-ggufgen; extra options appended. */
static void gen(const char *path, const char *opts)
{
    assert_int_equal(tu_system("'%s/airlock-ggufgen' --out '%s' --layers 1 --embd 32 --ff 64 "
                               "--heads 2 --ctx 128 --seed 3 --vocab '%s/ggml-vocab-llama-spm.gguf' "
                               "%s 2>/dev/null",
                               tu_env("AL_BUILD"), path, tu_env("AL_VOCAB_DIR"), opts),
                     0);
}

/* airlock-ggufgen --plant, through the scan: each planted value is found in
 * its tensor, at its element or its block's scale. */
static void test_values_generated(void **state)
{
    static const struct {
        const char *opts, *tensor, *what;
        uint64_t elem_bytes, block; /* a value's or block's bytes, elements per block */
    } c[] = {
        {"--type f32", NULL, NULL, 0, 0},
        {"--type f16", NULL, NULL, 0, 0},
        {"--type q8_0", NULL, NULL, 0, 0},
        {"--type q4_0", NULL, NULL, 0, 0},
        {"--type f32 --plant nan --plant-at 5", "token_embd.weight", "nan", 4, 1},
        {"--type f32 --plant inf --plant-tensor output_norm.weight --plant-at 31", "output_norm.weight", "inf", 4, 1},
        {"--type f16 --plant nan --plant-tensor blk.0.attn_q.weight --plant-at 100", "blk.0.attn_q.weight", "nan", 2, 1},
        {"--type f16 --plant inf", "token_embd.weight", "inf", 2, 1},
        {"--type q8_0 --plant nan --plant-tensor output.weight --plant-at 70", "output.weight", "nan", 34, 32},
        {"--type q8_0 --plant inf", "output.weight", "inf", 34, 32}, /* first in llama.cpp's order */
        {"--type q4_0 --plant inf --plant-tensor blk.0.ffn_down.weight --plant-at 64", "blk.0.ffn_down.weight", "inf", 18, 32},
        {"--type q4_0 --plant nan", "output.weight", "nan", 18, 32},
    };
    char path[512];
    snprintf(path, sizeof path, "%s/p.gguf", g_dir);
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        gen(path, c[k].opts);
        struct al_gguf_value_report rep;
        struct al_err err = AL_ERR_INIT;
        assert_int_equal(scan_path_and_stream(path, &rep, &err), AL_OK);
        assert_int_equal(rep.n_tensors, 12);
        assert_int_equal(rep.tensors_checked, 12);
        assert_true(rep.bytes_checked > 32000 * 32 / 2);
        if (c[k].tensor == NULL) {
            if (rep.n_findings != 0)
                fail_msg("%s: %llu findings in a clean model", c[k].opts,
                         (unsigned long long)rep.n_findings);
            char cpath[512];
            snprintf(cpath, sizeof cpath, "%s/clean-%s.gguf", g_dir, c[k].opts + 7);
            assert_int_equal(rename(path, cpath), 0);
            continue;
        }
        if (rep.n_findings != 1)
            fail_msg("%s: %llu findings", c[k].opts, (unsigned long long)rep.n_findings);
        const struct al_gguf_finding *f = &rep.findings[0];
        assert_string_equal(f->tensor, c[k].tensor);
        assert_string_equal(f->what, c[k].what);
        /* the first byte that differs from the clean model of the same type
         * lies in the reported value (or scale): 4 bytes for F32, else 2 */
        char cpath[512];
        snprintf(cpath, sizeof cpath, "%s/clean-%s.gguf", g_dir, c[k].opts + 7);
        *strchr(cpath + strlen(g_dir), ' ') = '\0';
        strcat(cpath, ".gguf");
        size_t lp, lc, first = 0;
        char *dp = tu_read_file(path, &lp), *dc = tu_read_file(cpath, &lc);
        assert_true(dp != NULL && dc != NULL && lp == lc);
        while (first < lp && dp[first] == dc[first])
            first++;
        if (!(first >= f->offset && first < f->offset + (c[k].elem_bytes == 4 ? 4 : 2)))
            fail_msg("%s: first changed byte %zu, finding at %llu", c[k].opts, first,
                     (unsigned long long)f->offset);
        free(dp);
        free(dc);
    }
}

/* Same seed, same bytes, with a plant too; the plant is the only difference. */
static void test_values_plant_deterministic(void **state)
{
    char a[512], b2[512], clean[512];
    snprintf(a, sizeof a, "%s/d1.gguf", g_dir);
    snprintf(b2, sizeof b2, "%s/d2.gguf", g_dir);
    snprintf(clean, sizeof clean, "%s/d0.gguf", g_dir);
    gen(a, "--type q8_0 --plant nan --plant-at 33");
    gen(b2, "--type q8_0 --plant nan --plant-at 33");
    gen(clean, "--type q8_0");
    size_t la, lb, lc;
    char *da = tu_read_file(a, &la), *db = tu_read_file(b2, &lb), *dc = tu_read_file(clean, &lc);
    assert_true(la == lb && la == lc);
    assert_memory_equal(da, db, la);
    size_t diff = 0, first = 0;
    for (size_t i = 0; i < la; i++)
        if (da[i] != dc[i] && diff++ == 0)
            first = i;
    assert_true(diff >= 1 && diff <= 2);
    struct al_gguf_value_report rep;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_gguf_scan_values_path(a, &rep, &err), AL_OK);
    assert_int_equal(rep.n_findings, 1);
    /* element 33 is in block 1: the scale 34 bytes into the tensor */
    assert_true(rep.findings[0].offset == first || rep.findings[0].offset + 1 == first);
    free(da);
    free(db);
    free(dc);
    assert_int_not_equal(tu_system("'%s/airlock-ggufgen' --out '%s/x.gguf' --plant zero 2>/dev/null",
                                   tu_env("AL_BUILD"), g_dir), 0);
}

/* A generated model cut inside its tensor data: "out of file" for each tensor
 * past the cut, listed up to the cap and all counted; never a crash. */
static void test_values_truncated(void **state)
{
    char path[512];
    snprintf(path, sizeof path, "%s/t.gguf", g_dir);
    assert_int_equal(tu_system("'%s/airlock-ggufgen' --out '%s' --layers 4 --embd 32 --ff 64 "
                               "--heads 2 --ctx 128 --vocab '%s/ggml-vocab-llama-spm.gguf' 2>/dev/null",
                               tu_env("AL_BUILD"), path, tu_env("AL_VOCAB_DIR")),
                     0);
    struct al_gguf_info info;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_gguf_inspect(path, &info, &err), AL_OK);
    assert_int_equal(info.n_tensors, 3 + 9 * 4);
    size_t len;
    char *data = tu_read_file(path, &len);
    assert_non_null(data);
    struct al_gguf_value_report rep;

    assert_int_equal(scan_bytes(data, len - 1, &rep), AL_OK); /* the last tensor cut */
    assert_int_equal(rep.n_findings, 1);
    assert_int_equal(rep.tensors_checked, info.n_tensors - 1);
    assert_string_equal(rep.findings[0].what, "out of file");
    assert_string_equal(rep.findings[0].tensor, "output.weight");

    assert_int_equal(scan_bytes(data, (size_t)info.data_offset + 100, &rep), AL_OK);
    assert_int_equal(rep.n_findings, (uint64_t)info.n_tensors);
    assert_int_equal(rep.n_listed, AL_GGUF_FINDINGS_MAX);
    assert_int_equal(rep.tensors_checked, 0);
    expect_finding(&rep, 0, "token_embd.weight", info.data_offset, "out of file");
    free(data);
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
        cmocka_unit_test(test_values_hand_made),
        cmocka_unit_test(test_values_quant_scales),
        cmocka_unit_test(test_values_generated),
        cmocka_unit_test(test_values_plant_deterministic),
        cmocka_unit_test(test_values_truncated),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
