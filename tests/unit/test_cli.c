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

/* The two table loops of these tests. In call, ARG is the input and OUT the
 * variable (of type) that the parser fills. */

/* Every input of good[] (entries {s, v}) accepted: call returns 0, prints
 * nothing and leaves OUT == v. */
#define EACH_ACCEPTED(good, type, call)                                                                                \
    for (size_t i_ = 0; i_ < sizeof(good) / sizeof(good)[0]; i_++) {                                                   \
        const char *ARG = (good)[i_].s;                                                                                \
        type OUT = 0;                                                                                                  \
        assert_int_equal(CAPTURE(call), 0);                                                                            \
        assert_string_equal(g_msg, "");                                                                                \
        if (OUT != (good)[i_].v)                                                                                       \
            fail_msg("'%s' gave %.17g", ARG, (double)OUT);                                                             \
    }

/* Every input of bad[] refused: call returns AL_EXIT_USAGE, leaves OUT at
 * sentinel and prints each of the message parts that follow. */
#define EACH_REFUSED(bad, type, sentinel, call, ...)                                                                   \
    for (size_t i_ = 0; i_ < sizeof(bad) / sizeof(bad)[0]; i_++) {                                                     \
        const char *ARG = (bad)[i_];                                                                                   \
        type OUT = (sentinel);                                                                                         \
        assert_int_equal(CAPTURE(call), AL_EXIT_USAGE);                                                                \
        assert_true(OUT == (sentinel));                                                                                \
        static const char *const want_[] = {__VA_ARGS__};                                                              \
        for (size_t j_ = 0; j_ < sizeof want_ / sizeof want_[0]; j_++)                                                 \
            assert_msg(want_[j_]);                                                                                     \
    }

static void test_int(void **state)
{
    static const struct {
        const char *s;
        long long v;
    } good[] = {{"7", 7}, {"1", 1}, {"100", 100}};
    EACH_ACCEPTED(good, long long, al_cli_opt_int("gc", "--keep", ARG, 1, 100, &OUT));
    long long v = 0;
    assert_int_equal(al_cli_opt_int("x", "--n", "-5", -10, 10, &v), 0);
    assert_true(v == -5);
    assert_int_equal(al_cli_opt_int("x", "--n", "007", 0, 10, &v), 0); /* decimal, not octal */
    assert_true(v == 7);
    static const char *const bad[] = {"",    "x",  "7x", "0x10", " 7", "7 ",  "+7", "-7", "101",
                                      "0",   "1.5", "1e2", "99999999999999999999999", "--", "7,8"};
    EACH_REFUSED(bad, long long, 42, al_cli_opt_int("gc", "--keep", ARG, 1, 100, &OUT),
                 "airlock gc: --keep needs a whole number from 1 to 100, e.g. 4 (got '", "Try 'airlock gc --help'.");
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
    EACH_REFUSED(bad, int, 9, al_cli_opt_threads("bench", ARG, &OUT),
                 "airlock bench: --threads needs a whole number from 1 to 1024, e.g. 4 (got '");
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
    EACH_ACCEPTED(good, uint64_t, al_cli_opt_size("verify", "--max-entry", ARG, 1, UINT64_MAX, &OUT));
    static const char *const bad[] = {"",   "M",  "-1",  "+1", " 1", "1 ", "1.5G", "4X",    "4GiBs", "4iB",
                                      "4Bi", "0", "0x10", "16777216T", "99999999999999999999", "4KM", "1e3"};
    EACH_REFUSED(bad, uint64_t, 5, al_cli_opt_size("verify", "--max-entry", ARG, 1, UINT64_MAX, &OUT),
                 "airlock verify: --max-entry needs a size from 1 B to ",
                 ": bytes, or a whole number with K, M, G or T, e.g. 512M or 4G (got '");
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
    EACH_ACCEPTED(good, double, al_cli_opt_seconds("serve", "--keep-alive", ARG, -1e9, 1e9, &OUT));
    static const char *const bad[] = {"", "s", "5x", "5 m", "5M", "5min", "1e3", "inf", "nan", "0x10",
                                      "1..2", ".", "+5", " 5", "5ms5", "--1"};
    EACH_REFUSED(bad, double, 7, al_cli_opt_seconds("serve", "--keep-alive", ARG, -1e9, 1e9, &OUT),
                 "airlock serve: --keep-alive needs a duration from -1e+09 to 1e+09 seconds: seconds, or a number "
                 "with ms, s, m, h or d, e.g. 30s or 5m (got '");
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
    static const struct {
        const char *s;
        double v;
    } good[] = {{"5", 5}, {"2.25", 2.25}};
    EACH_ACCEPTED(good, double, al_cli_opt_num("bench", "--threshold", ARG, 0, 1000, &OUT));
    double v = 0;
    assert_int_equal(al_cli_opt_num("x", "--t", "-0.5", -1, 1, &v), 0);
    assert_true(v == -0.5);
    static const char *const bad[] = {"", "x", "5%", "1001", "-1", "1e2", "nan", "inf", " 5", "5 ", "1.2.3"};
    EACH_REFUSED(bad, double, 3, al_cli_opt_num("bench", "--threshold", ARG, 0, 1000, &OUT),
                 "airlock bench: --threshold needs a number from 0 to 1000, e.g. 5 (got '");
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
    EACH_REFUSED(bad, int, 77, al_cli_opt_list("bench", "--concurrency", ARG, 1, 64, out, 4, &OUT),
                 "airlock bench: --concurrency needs a list of up to 4 whole numbers from 1 to 64, separated by "
                 "commas, e.g. 1,2,4 (got '");
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
    EACH_REFUSED(bad, int, 5, al_cli_opt_mode("serve", "--socket-mode", ARG, &OUT),
                 "airlock serve: --socket-mode needs file permissions in octal from 0 to 0777, e.g. 660 (got '");
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
