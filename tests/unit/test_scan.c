/* Unit tests of src/scan: pickles written byte by byte (every protocol, the
 * memo, frames, truncation at every offset), safetensors headers, magic
 * numbers and executable bits of real files. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "scan/scan.h"

#define LIT(s) (const uint8_t *)(s), sizeof(s) - 1

static struct al_scan_report *pickle(const uint8_t *d, size_t n)
{
    struct al_scan_report *r = al_scan_report_new("mem.pkl");
    assert_non_null(r);
    al_scan_pickle(d, n, "", r);
    return r;
}

/* The finding whose text holds want, or a failure listing them all. */
static const struct al_scan_finding *find(const struct al_scan_report *r, const char *want)
{
    for (size_t i = 0; i < r->n_findings; i++)
        if (strstr(r->findings[i].what, want))
            return &r->findings[i];
    for (size_t i = 0; i < r->n_findings; i++)
        print_message("finding: %s\n", r->findings[i].what);
    fail_msg("no finding with '%s'", want);
    return NULL;
}

/* Protocol 0: GLOBAL 'os\nsystem\n' and the REDUCE that calls it. */
static void test_protocol0_global(void **state)
{
    struct al_scan_report *r = pickle(LIT("cos\nsystem\n(S'true'\ntR."));
    assert_int_equal(r->verdict, AL_SCAN_DANGEROUS);
    const struct al_scan_finding *f = find(r, "imports os.system");
    assert_string_equal(f->opcode, "GLOBAL");
    assert_int_equal(f->offset, 0);
    f = find(r, "calls os.system");
    assert_string_equal(f->opcode, "REDUCE");
    assert_int_equal(f->offset, 21);
    al_scan_report_free(r);
}

/* Protocol 2: STACK_GLOBAL of two SHORT_BINUNICODE strings. */
static void test_stack_global(void **state)
{
    struct al_scan_report *r = pickle(LIT("\x80\x02\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R."));
    assert_int_equal(r->verdict, AL_SCAN_DANGEROUS);
    const struct al_scan_finding *f = find(r, "imports os.system");
    assert_string_equal(f->opcode, "STACK_GLOBAL");
    assert_int_equal(f->offset, 14);
    find(r, "calls os.system");
    al_scan_report_free(r);
}

/* Protocol 4: the strings reach STACK_GLOBAL through the memo. */
static void test_memo(void **state)
{
    struct al_scan_report *r =
        pickle(LIT("\x80\x04\x8c\x08" "builtins\x94\x8c\x04" "eval\x94N0h\x00h\x01\x93\x8c\x01" "1\x85R."));
    assert_int_equal(r->verdict, AL_SCAN_DANGEROUS);
    find(r, "imports builtins.eval: evaluates code");
    find(r, "calls builtins.eval");
    al_scan_report_free(r);
}

/* Protocol 5 with FRAME, subprocess.Popen through NEWOBJ. */
static void test_protocol5_frame(void **state)
{
    static const uint8_t body[] = "\x8c\x0asubprocess\x8c\x05Popen\x93]\x85\x81.";
    uint8_t d[64] = {0x80, 5, 0x95};
    size_t n = sizeof body - 1;
    d[3] = (uint8_t)n;
    memcpy(d + 11, body, n);
    struct al_scan_report *r = pickle(d, 11 + n);
    assert_int_equal(r->verdict, AL_SCAN_DANGEROUS);
    find(r, "imports subprocess.Popen: runs commands");
    assert_string_equal(find(r, "calls subprocess.Popen")->opcode, "NEWOBJ");
    al_scan_report_free(r);
    d[3] = (uint8_t)(n + 1); /* a frame longer than the stream */
    r = pickle(d, 11 + n);
    find(r, "frame runs past the end");
    al_scan_report_free(r);
}

/* What torch.save writes for a state dict: rebuild functions, a storage, an
 * OrderedDict. */
static const char tensor_pickle[] =
    "\x80\x02}q\x00(X\x06\x00\x00\x00weightctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage"
    "ctorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x04tQK\x00K\x04\x85K\x01\x85\x89"
    "ccollections\nOrderedDict\n)RtRu.";

static void test_tensor_pickle_ok(void **state)
{
    struct al_scan_report *r = pickle((const uint8_t *)tensor_pickle, sizeof tensor_pickle - 1);
    for (size_t i = 0; i < r->n_findings; i++)
        print_message("finding: %s\n", r->findings[i].what);
    assert_int_equal(r->verdict, AL_SCAN_OK);
    assert_int_equal(r->n_findings, 0);
    assert_string_equal(r->kind, "pickle");
    al_scan_report_free(r);
}

/* A prefix of a pickle is never ok, whatever the offset; it never crashes
 * (the test runs under ASan in make test). */
static void test_truncated_everywhere(void **state)
{
    static const char *const streams[] = {"cos\nsystem\n(S'true'\ntR.",
                                          "\x80\x02\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R.",
                                          tensor_pickle};
    for (size_t s = 0; s < 3; s++) {
        size_t n = strlen(streams[s]); /* none has a NUL before its end but the tensor one */
        if (s == 2)
            n = sizeof tensor_pickle - 1;
        for (size_t k = 0; k < n; k++) {
            uint8_t *copy = malloc(k ? k : 1); /* exactly k bytes readable, for ASan */
            memcpy(copy, streams[s], k);
            struct al_scan_report *r = pickle(copy, k);
            if (r->verdict == AL_SCAN_OK)
                fail_msg("stream %zu cut at %zu bytes says ok", s, k);
            al_scan_report_free(r);
            free(copy);
        }
    }
}

static void test_malformed(void **state)
{
    static const struct {
        const char *d;
        size_t n;
        const char *want;
        enum al_scan_verdict v;
    } cases[] = {
        {"\x80\x02\xff", 3, "unknown opcode 0xff", AL_SCAN_DANGEROUS},
        {"\x80\x02R.", 4, "stack underflow", AL_SCAN_DANGEROUS},
        {"\x80\x02h\x07.", 5, "memo index 7 was never set", AL_SCAN_DANGEROUS},
        {"\x80\x02Nr\xff\xff\xff\xff.", 9, "over AL_LIMIT_PICKLE_MEMO", AL_SCAN_DANGEROUS},
        {"\x80\x09N.", 4, "unsupported protocol 9", AL_SCAN_DANGEROUS},
        {"\x80\x02X\xff\xff\xff\x7f" "ab.", 10, "truncated", AL_SCAN_DANGEROUS},
        {"\x80\x02N1.", 5, "no MARK to pop to", AL_SCAN_DANGEROUS},
        {"\x80\x02]N\x93.", 6, "not a string the scanner can follow", AL_SCAN_DANGEROUS},
        {"\x80\x02\x82\x05.", 5, "extension code 5", AL_SCAN_WARN},
        {"(S'ls'\nios\nsystem\n.", 19, "imports os.system", AL_SCAN_DANGEROUS},
        {"(cos\nsystem\nS'ls'\no.", 20, "calls os.system", AL_SCAN_DANGEROUS},
        {"cfoo\nbar\n.", 10, "imports foo.bar: not on the safe list", AL_SCAN_DANGEROUS},
        {"\x00\x01\x02", 3, "not a pickle stream", AL_SCAN_WARN},
        /* a second pickle after the first is walked too */
        {"N.cos\nsystem\n.", 14, "imports os.system", AL_SCAN_DANGEROUS},
        /* ... with the memo of the first: strings memoized there name the import */
        {"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x86.\x80\x04h\x00h\x01\x93.", 26, "imports os.system",
         AL_SCAN_DANGEROUS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct al_scan_report *r = pickle((const uint8_t *)cases[i].d, cases[i].n);
        if (r->verdict != cases[i].v)
            fail_msg("case %zu: verdict %d, want %d", i, r->verdict, cases[i].v);
        find(r, cases[i].want);
        al_scan_report_free(r);
    }
}

/* Many imports: the findings stop at the cap and the rest are counted. */
static void test_findings_cap(void **state)
{
    size_t n = 0, k = 200;
    uint8_t *d = malloc(k * 12 + 1);
    for (size_t i = 0; i < k; i++)
        memcpy(d + n, "cos\nsystem\n0", 12), n += 12;
    d[n++] = 'N';
    struct al_scan_report *r = pickle(d, n);
    assert_int_equal(r->n_findings, AL_LIMIT_SCAN_FINDINGS);
    assert_true(r->n_dropped > 0);
    assert_int_equal(r->verdict, AL_SCAN_DANGEROUS);
    al_scan_report_free(r);
    free(d);
}

static struct al_scan_report *safetensors(const char *header, size_t data_len)
{
    size_t h = strlen(header), n = 8 + h + data_len;
    uint8_t *d = calloc(1, n);
    for (int i = 0; i < 8; i++)
        d[i] = (uint8_t)(h >> (8 * i));
    memcpy(d + 8, header, h);
    struct al_scan_report *r = al_scan_report_new("mem.safetensors");
    al_scan_safetensors(d, n, r);
    free(d);
    return r;
}

static void test_safetensors(void **state)
{
    struct al_scan_report *r = safetensors(
        "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]}}", 22);
    assert_int_equal(r->verdict, AL_SCAN_OK);
    al_scan_report_free(r);

    r = safetensors("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
    assert_int_equal(r->verdict, AL_SCAN_DANGEROUS);
    assert_string_equal(find(r, "overlaps tensor 'a'")->tensor, "b");
    al_scan_report_free(r);

    r = safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
    assert_string_equal(find(r, "make 12 bytes, data_offsets give 8")->tensor, "w");
    al_scan_report_free(r);

    r = safetensors("{\"w\":{\"dtype\":\"U8\",\"shape\":[100],\"data_offsets\":[0,100]}}", 8);
    find(r, "run past the end of the file");
    assert_int_equal(r->verdict, AL_SCAN_DANGEROUS);
    al_scan_report_free(r);

    r = safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8);
    find(r, "make over");
    al_scan_report_free(r);

    r = safetensors("{\"w\":{\"dtype\":\"Q9\",\"shape\":[1],\"data_offsets\":[0,4]}}", 6);
    assert_int_equal(r->verdict, AL_SCAN_WARN);
    find(r, "unknown dtype 'Q9'");
    find(r, "at the end belong to no tensor");
    al_scan_report_free(r);

    r = safetensors("{\"w\":1,\"w\":2}", 0);
    find(r, "not a JSON object");
    al_scan_report_free(r);

    static const uint8_t huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{'};
    r = al_scan_report_new("x.safetensors");
    al_scan_safetensors(huge, sizeof huge, r);
    find(r, "over AL_LIMIT_SAFETENSORS_HEADER");
    al_scan_report_free(r);
}

/* Real files: the kind from the magic, the executable bit, GGUF. */
static void test_files(void **state)
{
    char *dir = tu_mkdtemp();
    char path[512];
    struct al_err err = AL_ERR_INIT;
    struct al_scan_report *r = NULL;

    snprintf(path, sizeof path, "%s/run.sh", dir);
    tu_write_file(path, "#!/bin/sh\necho hi\n", 18);
    chmod(path, 0755);
    assert_int_equal(al_scan_file(path, 0, &r, &err), AL_OK);
    assert_int_equal(r->verdict, AL_SCAN_WARN);
    assert_string_equal(r->kind, "script");
    find(r, "a script for '/bin/sh', with an executable bit set");
    al_scan_report_free(r), r = NULL;
    assert_int_equal(al_scan_file(path, AL_SCAN_EXEC_DANGEROUS, &r, &err), AL_OK);
    assert_int_equal(r->verdict, AL_SCAN_DANGEROUS);
    al_scan_report_free(r), r = NULL;

    snprintf(path, sizeof path, "%s/x.tar.zst", dir);
    tu_write_file(path, "\x28\xb5\x2f\xfd\x00\x00", 6);
    assert_int_equal(al_scan_file(path, AL_SCAN_EXEC_DANGEROUS, &r, &err), AL_OK);
    assert_int_equal(r->verdict, AL_SCAN_WARN);
    find(r, "a nested zstd archive");
    al_scan_report_free(r), r = NULL;

    snprintf(path, sizeof path, "%s/model.bin", dir);
    tu_write_file(path, "cos\nsystem\n.", 12);
    assert_int_equal(al_scan_file(path, 0, &r, &err), AL_OK);
    find(r, "imports os.system");
    al_scan_report_free(r), r = NULL;

    /* A safetensors header of 0x280 bytes starts with \x80\x02, like a pickle. */
    {
        static const char h[] = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
        uint8_t st[8 + 0x280 + 1] = {0x80, 0x02};
        memset(st + 8, ' ', 0x280);
        memcpy(st + 8, h, sizeof h - 1);
        snprintf(path, sizeof path, "%s/weights", dir);
        tu_write_file(path, st, sizeof st);
        assert_int_equal(al_scan_file(path, 0, &r, &err), AL_OK);
        assert_string_equal(r->kind, "safetensors");
        assert_int_equal(r->verdict, AL_SCAN_OK);
        al_scan_report_free(r), r = NULL;
    }

    snprintf(path, sizeof path, "%s/broken.gguf", dir);
    tu_write_file(path, "GGUF\x03\x00\x00\x00\xff", 9);
    assert_int_equal(al_scan_file(path, 0, &r, &err), AL_OK);
    assert_string_equal(r->kind, "gguf");
    assert_int_equal(r->verdict, AL_SCAN_DANGEROUS);
    al_scan_report_free(r), r = NULL;

    assert_int_equal(al_scan_file(tu_fixture("stories260K.gguf"), 0, &r, &err), AL_OK);
    assert_int_equal(r->verdict, AL_SCAN_OK);
    al_scan_report_free(r), r = NULL;

    snprintf(path, sizeof path, "%s/missing", dir);
    assert_int_equal(al_scan_file(path, 0, &r, &err), AL_ERR_NOT_FOUND);
    assert_null(r);
    tu_rmrf(dir);
    free(dir);
}

/* A file known under another name (a bundle entry in its temporary file):
 * the name picks the pickle reader and names the report; AL_SCAN_EXEC_BIT
 * stands for the tar entry's bit the temporary file lacks. Then the record
 * for the event log and the refusal message. */
static void test_named_record_refuse(void **state)
{
    char *dir = tu_mkdtemp();
    char path[512];
    struct al_err err = AL_ERR_INIT;
    struct al_scan_report *r = NULL, *s = NULL;

    snprintf(path, sizeof path, "%s/tmp-1234", dir);
    tu_write_file(path, "cos\nsystem\n(S'true'\ntR.", 23);
    assert_int_equal(al_scan_file_named(path, "evil.pkl", 0, &r, &err), AL_OK);
    assert_string_equal(r->file, "evil.pkl");
    assert_int_equal(r->verdict, AL_SCAN_DANGEROUS);
    assert_int_equal(al_scan_refuse(r, "ingest", "do this", &err), AL_ERR_DENIED);
    assert_non_null(strstr(err.msg, "ingest refused: 'evil.pkl' is dangerous (pickle, scan rules "));
    assert_non_null(strstr(err.msg, "imports os.system"));
    assert_non_null(strstr(err.msg, "GLOBAL, offset 0"));
    assert_non_null(strstr(err.msg, "; do this"));

    snprintf(path, sizeof path, "%s/tmp-5678", dir);
    tu_write_file(path, "#!/bin/sh\necho hi\n", 18);
    assert_int_equal(al_scan_file_named(path, "tool", AL_SCAN_EXEC_DANGEROUS, &s, &err), AL_OK);
    assert_int_equal(s->verdict, AL_SCAN_WARN);
    al_scan_report_free(s), s = NULL;
    assert_int_equal(al_scan_file_named(path, "tool", AL_SCAN_EXEC_DANGEROUS | AL_SCAN_EXEC_BIT, &s, &err), AL_OK);
    assert_int_equal(s->verdict, AL_SCAN_DANGEROUS);

    const struct al_scan_report *both[] = {r, s};
    char *rec = al_scan_record_json(both, 2);
    assert_non_null(rec);
    assert_non_null(strstr(rec, "\"rules\":1"));
    assert_non_null(strstr(rec, "\"scanner\":\"airlock "));
    assert_non_null(strstr(rec, "\"verdict\":\"dangerous\""));
    assert_non_null(strstr(rec, "\"file\":\"evil.pkl\""));
    assert_non_null(strstr(rec, "\"file\":\"tool\""));
    free(rec);
    al_scan_report_free(r);
    al_scan_report_free(s);
    tu_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocol0_global), cmocka_unit_test(test_stack_global),
        cmocka_unit_test(test_memo),             cmocka_unit_test(test_protocol5_frame),
        cmocka_unit_test(test_tensor_pickle_ok), cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_malformed),        cmocka_unit_test(test_findings_cap),
        cmocka_unit_test(test_safetensors),      cmocka_unit_test(test_files),
        cmocka_unit_test(test_named_record_refuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
