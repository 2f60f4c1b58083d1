/*
 * Unit tests of the CLI's option parsers (src/cli/cli_util.c): every form of
 * value each accepts, and every kind of bad input refused with AL_EXIT_USAGE,
 * *out untouched, and the one message that names the option, the accepted
 * form and the argument.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "cli/cli.h"
#include "cli/cli_util.h"

static char g_msg[1024]; /* what the last call printed on stderr */

/* Runs call with stderr sent to a temporary file, then keeps what it printed
 * in g_msg. */
#define CAPTURE(call)                                                                                                  \
    ({                                                                                                                 \
        fflush(stderr);                                                                                                \
        FILE *tmp_ = tmpfile();                                                                                        \
        assert_non_null(tmp_);                                                                                         \
        int saved_ = dup(2);                                                                                           \
        dup2(fileno(tmp_), 2);                                                                                         \
        int st_ = (call);                                                                                              \
        fflush(stderr);                                                                                                \
        dup2(saved_, 2);                                                                                               \
        close(saved_);                                                                                                 \
        rewind(tmp_);                                                                                                  \
        size_t n_ = fread(g_msg, 1, sizeof g_msg - 1, tmp_);                                                           \
        g_msg[n_] = 0;                                                                                                 \
        fclose(tmp_);                                                                                                  \
        st_;                                                                                                           \
    })

/* The one table from al_rc to exit status: a row for every code, no error
 * exits 0, and the statuses scripts rely on stay as they were. */
static void test_exit_codes(void **state)
{
    assert_int_equal(al_cli_exit_code(AL_OK), AL_EXIT_OK);
    for (int i = 1; i < AL_RC_COUNT; i++)
        assert_int_not_equal(al_cli_exit_code((enum al_rc)i), AL_EXIT_OK);
    assert_int_equal(al_cli_exit_code(AL_ERR_VERIFY), 5);
    assert_int_equal(al_cli_exit_code(AL_ERR_CORRUPT), 5);
    assert_int_equal(al_cli_exit_code(AL_ERR_AUTH), 5); /* `apikey check` with a bad key, as before */
    assert_int_equal(al_cli_exit_code(AL_ERR_DENIED), 6);
    assert_int_equal(al_cli_exit_code(AL_RC_COUNT), AL_EXIT_INTERNAL);
}

static void assert_msg(const char *want)
{
    if (!strstr(g_msg, want))
        fail_msg("expected '%s' in: %s", want, g_msg);
}

static void test_int(void **state)
{
    long long v = 0;
    assert_int_equal(CAPTURE(al_cli_opt_int("gc", "--keep", "7", 1, 100, &v)), 0);
    assert_true(v == 7);
    assert_string_equal(g_msg, "");
    assert_int_equal(al_cli_opt_int("gc", "--keep", "1", 1, 100, &v), 0);
    assert_true(v == 1);
    assert_int_equal(al_cli_opt_int("gc", "--keep", "100", 1, 100, &v), 0);
    assert_true(v == 100);
    assert_int_equal(al_cli_opt_int("x", "--n", "-5", -10, 10, &v), 0);
    assert_true(v == -5);
    assert_int_equal(al_cli_opt_int("x", "--n", "007", 0, 10, &v), 0); /* decimal, not octal */
    assert_true(v == 7);
    static const char *const bad[] = {"",    "x",  "7x", "0x10", " 7", "7 ",  "+7", "-7", "101",
                                      "0",   "1.5", "1e2", "99999999999999999999999", "--", "7,8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 42;
        assert_int_equal(CAPTURE(al_cli_opt_int("gc", "--keep", bad[i], 1, 100, &v)), AL_EXIT_USAGE);
        assert_true(v == 42);
        assert_msg("airlock gc: --keep needs a whole number from 1 to 100, e.g. 4 (got '");
        assert_msg("Try 'airlock gc --help'.");
    }
    /* a negative number where the range has none, and one below it */
    assert_int_equal(CAPTURE(al_cli_opt_int("x", "--n", "-11", -10, 10, &v)), AL_EXIT_USAGE);
    assert_msg("--n needs a whole number from -10 to 10");
    int iv = 3;
    assert_int_equal(al_cli_opt_i("rag query", "-k", "64", 1, 64, &iv), 0);
    assert_int_equal(iv, 64);
    assert_int_equal(CAPTURE(al_cli_opt_i("rag query", "-k", "65", 1, 64, &iv)), AL_EXIT_USAGE);
    assert_int_equal(iv, 64);
    assert_msg("airlock rag query: -k needs a whole number from 1 to 64, e.g. 4 (got '65')");
}

static void test_threads(void **state)
{
    int t = 0;
    assert_int_equal(al_cli_opt_threads("bench", "1", &t), 0);
    assert_int_equal(t, 1);
    assert_int_equal(al_cli_opt_threads("bench", "1024", &t), 0);
    assert_int_equal(t, 1024);
    static const char *const bad[] = {"0", "1025", "-1", "two", "", "4 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = 9;
        assert_int_equal(CAPTURE(al_cli_opt_threads("bench", bad[i], &t)), AL_EXIT_USAGE);
        assert_int_equal(t, 9);
        assert_msg("airlock bench: --threads needs a whole number from 1 to 1024, e.g. 4 (got '");
    }
}

static void test_size(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } good[] = {
        {"1", 1},           {"4096", 4096},     {"512K", 512ull << 10}, {"512k", 512ull << 10},
        {"512M", 512ull << 20}, {"512m", 512ull << 20}, {"4G", 4ull << 30}, {"4g", 4ull << 30},
        {"2T", 2ull << 40}, {"2t", 2ull << 40}, {"512Mi", 512ull << 20}, {"512MiB", 512ull << 20},
        {"4GB", 4ull << 30}, {"100B", 100},     {"16777215T", 16777215ull << 40},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 0;
        assert_int_equal(CAPTURE(al_cli_opt_size("verify", "--max-entry", good[i].s, 1, UINT64_MAX, &v)), 0);
        if (v != good[i].v)
            fail_msg("'%s' gave %llu", good[i].s, (unsigned long long)v);
    }
    static const char *const bad[] = {"",   "M",  "-1",  "+1", " 1", "1 ", "1.5G", "4X",    "4GiBs", "4iB",
                                      "4Bi", "0", "0x10", "16777216T", "99999999999999999999", "4KM", "1e3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 5;
        assert_int_equal(CAPTURE(al_cli_opt_size("verify", "--max-entry", bad[i], 1, UINT64_MAX, &v)),
                         AL_EXIT_USAGE);
        assert_true(v == 5);
        assert_msg("airlock verify: --max-entry needs a size from 1 B to ");
        assert_msg(": bytes, or a whole number with K, M, G or T, e.g. 512M or 4G (got '");
    }
    /* over the range given */
    uint64_t v = 5;
    assert_int_equal(CAPTURE(al_cli_opt_size("x", "--max", "2G", 1, 1ull << 30, &v)), AL_EXIT_USAGE);
    assert_msg("--max needs a size from 1 B to 1.0 GiB");
    assert_int_equal(al_cli_opt_size("x", "--max", "1G", 1, 1ull << 30, &v), 0);
    assert_true(v == 1ull << 30);
}

static void test_seconds(void **state)
{
    static const struct {
        const char *s;
        double v;
    } good[] = {
        {"30", 30}, {"2.5", 2.5}, {"0", 0}, {".5", 0.5}, {"500ms", 0.5}, {"30s", 30}, {"5m", 300},
        {"2h", 7200}, {"1d", 86400}, {"1.5m", 90}, {"-1", -1}, {"-2s", -2},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        double v = 0;
        assert_int_equal(CAPTURE(al_cli_opt_seconds("serve", "--keep-alive", good[i].s, -1e9, 1e9, &v)), 0);
        if (v != good[i].v)
            fail_msg("'%s' gave %g", good[i].s, v);
    }
    static const char *const bad[] = {"", "s", "5x", "5 m", "5M", "5min", "1e3", "inf", "nan", "0x10",
                                      "1..2", ".", "+5", " 5", "5ms5", "--1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double v = 7;
        assert_int_equal(CAPTURE(al_cli_opt_seconds("serve", "--keep-alive", bad[i], -1e9, 1e9, &v)), AL_EXIT_USAGE);
        assert_true(v == 7);
        assert_msg("airlock serve: --keep-alive needs a duration from -1e+09 to 1e+09 seconds: seconds, or a number "
                   "with ms, s, m, h or d, e.g. 30s or 5m (got '");
    }
    double v = 7;
    /* no sign where the range has no negative values; the range after the unit */
    assert_int_equal(CAPTURE(al_cli_opt_seconds("serve", "--timeout", "-1", 0, 3600, &v)), AL_EXIT_USAGE);
    assert_msg("--timeout needs a duration from 0 to 3600 seconds");
    assert_int_equal(CAPTURE(al_cli_opt_seconds("serve", "--timeout", "2h", 0, 3600, &v)), AL_EXIT_USAGE);
    assert_msg("(got '2h')");
    assert_int_equal(al_cli_opt_seconds("serve", "--timeout", "1h", 0, 3600, &v), 0);
    assert_true(v == 3600);
}

static void test_num(void **state)
{
    double v = 0;
    assert_int_equal(al_cli_opt_num("bench", "--threshold", "5", 0, 1000, &v), 0);
    assert_true(v == 5);
    assert_int_equal(al_cli_opt_num("bench", "--threshold", "2.25", 0, 1000, &v), 0);
    assert_true(v == 2.25);
    assert_int_equal(al_cli_opt_num("x", "--t", "-0.5", -1, 1, &v), 0);
    assert_true(v == -0.5);
    static const char *const bad[] = {"", "x", "5%", "1001", "-1", "1e2", "nan", "inf", " 5", "5 ", "1.2.3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 3;
        assert_int_equal(CAPTURE(al_cli_opt_num("bench", "--threshold", bad[i], 0, 1000, &v)), AL_EXIT_USAGE);
        assert_true(v == 3);
        assert_msg("airlock bench: --threshold needs a number from 0 to 1000, e.g. 5 (got '");
    }
}

static void test_list(void **state)
{
    int out[4] = {0}, n = 0;
    assert_int_equal(al_cli_opt_list("bench", "--concurrency", "1,2,4", 1, 64, out, 4, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 2);
    assert_int_equal(out[2], 4);
    assert_int_equal(al_cli_opt_list("bench", "--concurrency", "8", 1, 64, out, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 8);
    static const char *const bad[] = {"", ",", "1,", ",1", "1,,2", "0", "65", "1,x", "1;2", "1, 2", "1,2,3,4,5",
                                      "-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = 77;
        assert_int_equal(CAPTURE(al_cli_opt_list("bench", "--concurrency", bad[i], 1, 64, out, 4, &n)),
                         AL_EXIT_USAGE);
        assert_int_equal(n, 77);
        assert_msg("airlock bench: --concurrency needs a list of up to 4 whole numbers from 1 to 64, separated by "
                   "commas, e.g. 1,2,4 (got '");
    }
}

static void test_mode(void **state)
{
    int m = 0;
    assert_int_equal(al_cli_opt_mode("serve", "--socket-mode", "660", &m), 0);
    assert_int_equal(m, 0660);
    assert_int_equal(al_cli_opt_mode("serve", "--socket-mode", "0777", &m), 0);
    assert_int_equal(m, 0777);
    assert_int_equal(al_cli_opt_mode("serve", "--socket-mode", "0", &m), 0);
    assert_int_equal(m, 0);
    static const char *const bad[] = {"", "8", "1777", "01777", "rw", "-1", "66 ", "0x1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = 5;
        assert_int_equal(CAPTURE(al_cli_opt_mode("serve", "--socket-mode", bad[i], &m)), AL_EXIT_USAGE);
        assert_int_equal(m, 5);
        assert_msg("airlock serve: --socket-mode needs file permissions in octal from 0 to 0777, e.g. 660 (got '");
    }
}

/* An argument over AL_CLI_OPT_ARG_MAX is refused, and the message quotes at
 * most that much of it. */
static void test_long_argument(void **state)
{
    char arg[AL_CLI_OPT_ARG_MAX + 40];
    memset(arg, '1', sizeof arg - 1);
    arg[sizeof arg - 1] = 0;
    long long v = 0;
    assert_int_equal(CAPTURE(al_cli_opt_int("x", "--n", arg, 0, LLONG_MAX, &v)), AL_EXIT_USAGE);
    char quoted[AL_CLI_OPT_ARG_MAX + 8];
    snprintf(quoted, sizeof quoted, "'%.*s')", AL_CLI_OPT_ARG_MAX, arg);
    assert_msg(quoted);
    double d = 0;
    assert_int_equal(CAPTURE(al_cli_opt_seconds("x", "--t", arg, 0, 1e300, &d)), AL_EXIT_USAGE);
    uint64_t u = 0;
    assert_int_equal(CAPTURE(al_cli_opt_size("x", "--s", arg, 0, UINT64_MAX, &u)), AL_EXIT_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_int),     cmocka_unit_test(test_threads), cmocka_unit_test(test_size),
        cmocka_unit_test(test_seconds), cmocka_unit_test(test_num),     cmocka_unit_test(test_list),
        cmocka_unit_test(test_mode),    cmocka_unit_test(test_long_argument),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
