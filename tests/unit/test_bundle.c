/* test_bundle.c: checksums.txt parsing, signature file names, dates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "bundle/bundle_int.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_sums_ok(void **state)
{
    const char *t = H64 "  foo.gguf\n" H64 " *./tokenizer.json\n\n";
    struct al_sum *s = NULL;
    size_t n = 0;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_sums_parse(t, strlen(t), &s, &n, &err), AL_OK);
    assert_int_equal(n, 2);
    assert_string_equal(s[1].name, "tokenizer.json");
    assert_non_null(al_sums_find(s, n, "foo.gguf"));
    free(s);
}

static void test_sums_bad(void **state)
{
    const char *bad[] = {
        H64 " foo\n",                    /* one space */
        H64 "  ../etc/passwd\n",         /* traversal */
        H64 "  /abs\n",                  /* absolute */
        H64 "  a\n" H64 "  a\n",         /* duplicate */
        "xyz" H64 "  a\n",               /* not hex */
        H64 "  checksums.txt.minisig\n", /* cannot cover itself */
        "",                              /* empty */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct al_sum *s = NULL;
        size_t n = 0;
        struct al_err err = AL_ERR_INIT;
        assert_int_not_equal(al_sums_parse(bad[i], strlen(bad[i]), &s, &n, &err), AL_OK);
        assert_null(s);
    }
}

static void test_sig_kind(void **state)
{
    assert_int_equal(al_bundle_sig_kind("checksums.txt.minisig"), 'm');
    assert_int_equal(al_bundle_sig_kind("checksums.txt.2.minisig"), 'm');
    assert_int_equal(al_bundle_sig_kind("checksums.txt.asc"), 'g');
    assert_int_equal(al_bundle_sig_kind("checksums.txt.sig"), 'g');
    assert_int_equal(al_bundle_sig_kind("checksums.txt"), 0);
    assert_int_equal(al_bundle_sig_kind("checksums.txt.x.minisig"), 0);
    assert_int_equal(al_bundle_sig_kind("foo.minisig"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sums_ok),
        cmocka_unit_test(test_sums_bad),
        cmocka_unit_test(test_sig_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
