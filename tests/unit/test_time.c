/* Unit tests of src/core/time: the one ISO 8601 parser and formatter. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "core/err.h"
#include "core/limits.h"
#include "core/time.h"

static int64_t parse_ok(const char *text)
{
    struct al_err err = AL_ERR_INIT;
    int64_t t = -1;
    if (al_time_parse(text, &t, &err) != AL_OK)
        fail_msg("'%s' refused: %s", text, err.msg);
    return t;
}

static void expect_refused(const char *text, enum al_rc want)
{
    struct al_err err = AL_ERR_INIT;
    int64_t t = 12345;
    enum al_rc rc = al_time_parse(text, &t, &err);
    if (rc != want)
        fail_msg("'%s': got %s, want %s", text, al_rc_name(rc), al_rc_name(want));
    assert_int_equal(t, 12345); /* *out untouched */
    assert_non_null(strchr(err.msg, '\''));
}

static void test_valid_forms(void **state)
{
    assert_int_equal(parse_ok("1970-01-01"), 0);
    assert_int_equal(parse_ok("1970-01-02"), 86400);
    assert_int_equal(parse_ok("2000-01-01T00:00:01.250Z"), 946684801);
    assert_int_equal(parse_ok("2000-01-01T00:00:01.2Z"), 946684801);
    assert_int_equal(parse_ok("2030-01-02"), 1893542400);
    assert_int_equal(parse_ok("2030-01-02T00:00:01Z"), 1893542401);
    assert_int_equal(parse_ok("1969-12-31T23:59:59Z"), -1);
    assert_int_equal(parse_ok("0000-01-01"), -62167219200);
    assert_int_equal(parse_ok("9999-12-31T23:59:59Z"), 253402300799);
    /* A leap second reads as the next second. */
    assert_int_equal(parse_ok("2016-12-31T23:59:60Z"), 1483228800);
    /* The longest text accepted: AL_LIMIT_TIME_TEXT bytes. */
    char longest[AL_LIMIT_TIME_TEXT + 1];
    snprintf(longest, sizeof longest, "2000-01-01T00:00:01.%0*dZ", (int)AL_LIMIT_TIME_TEXT - 21, 0);
    assert_int_equal(strlen(longest), AL_LIMIT_TIME_TEXT);
    assert_int_equal(parse_ok(longest), 946684801);
}

static void test_bad_forms(void **state)
{
    static const char *const bad[] = {
        "", "tomorrow", "2000", "2000-01", "2000-01-01T00:00:00", "2000-01-01T00:00:00z", "2000-01-01t00:00:00Z",
        "2000-01-01 00:00:00Z", "2000-1-01", "2000-01-1", "+200-01-01", " 2000-01-01", "2000-01-01 ",
        "2000-01-01Z", "2000-01-01T", "2000-01-01T00:00Z", "2000-01-01T0:00:00Z", "2000-01-01T00:00:00.Z",
        "2000-01-01T00:00:00,5Z", "2000-01-01T00:00:00+01:00", "2000-01-01T00:00:00ZZ", "20000-01-01",
        "2000/01/01", "2000-01-01x", "-001-01-01", "2000-0a-01",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refused(bad[i], AL_ERR_INVALID);
    char over[AL_LIMIT_TIME_TEXT + 2];
    snprintf(over, sizeof over, "2000-01-01T00:00:01.%0*dZ", (int)AL_LIMIT_TIME_TEXT - 20, 0);
    assert_int_equal(strlen(over), AL_LIMIT_TIME_TEXT + 1);
    expect_refused(over, AL_ERR_LIMIT);
}

static void test_leap_years(void **state)
{
    assert_int_equal(parse_ok("2000-02-29"), 951782400);  /* divisible by 400 */
    assert_int_equal(parse_ok("2024-02-29"), 1709164800); /* by 4 */
    assert_int_equal(parse_ok("2024-03-01") - parse_ok("2024-02-28"), 2 * 86400);
    assert_int_equal(parse_ok("2023-03-01") - parse_ok("2023-02-28"), 86400);
    expect_refused("1900-02-29", AL_ERR_INVALID); /* by 100, not 400 */
    expect_refused("2100-02-29", AL_ERR_INVALID);
    expect_refused("2031-02-29", AL_ERR_INVALID);
    expect_refused("2024-02-30", AL_ERR_INVALID);
}

static void test_out_of_range(void **state)
{
    static const char *const bad[] = {
        "2000-00-01", "2000-13-01", "2000-01-00", "2000-01-32", "2000-04-31", "2000-06-31", "2000-09-31",
        "2000-11-31", "2000-01-01T24:00:00Z", "2000-01-01T00:60:00Z", "2000-01-01T00:00:61Z",
        "2000-01-01T99:99:99Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refused(bad[i], AL_ERR_INVALID);
    assert_int_equal(parse_ok("2000-12-31T23:59:59Z"), 978307199);
}

static void test_format(void **state)
{
    char out[AL_TIME_SIZE];
    assert_string_equal(al_time_format(0, 0, AL_TIME_SECONDS, out, sizeof out), "1970-01-01T00:00:00Z");
    assert_string_equal(al_time_format(0, 7, AL_TIME_MILLIS, out, sizeof out), "1970-01-01T00:00:00.007Z");
    assert_string_equal(al_time_format(-1, 0, AL_TIME_SECONDS, out, sizeof out), "1969-12-31T23:59:59Z");
    assert_string_equal(al_time_format(951782400 + 86399, 0, AL_TIME_DAY, out, sizeof out), "2000-02-29");
    assert_string_equal(al_time_format(1483228800, 999, AL_TIME_MILLIS, out, sizeof out),
                        "2017-01-01T00:00:00.999Z");
    /* Outside years 0000-9999: the nearest end, so that it reads back. */
    assert_string_equal(al_time_format(INT64_MIN, 5, AL_TIME_MILLIS, out, sizeof out), "0000-01-01T00:00:00.000Z");
    assert_string_equal(al_time_format(INT64_MAX, 0, AL_TIME_SECONDS, out, sizeof out), "9999-12-31T23:59:59Z");
    char small[11];
    assert_string_equal(al_time_format(0, 0, AL_TIME_SECONDS, small, sizeof small), "1970-01-01");
    al_time_now_iso(out);
    assert_int_equal(strlen(out), 24);
    int64_t now = parse_ok(out);
    assert_true(now > 1700000000);
}

/* Formatting then parsing gives back the time, in each form, across the
 * whole range; and the formatter agrees with the C library where both work. */
static void test_round_trip(void **state)
{
    const int64_t lo = -62167219200, hi = 253402300799;
    uint64_t x = 88172645463325252ull;
    char out[AL_TIME_SIZE], libc[AL_TIME_SIZE];
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t t = i < 4 ? (int64_t[]){lo, hi, 0, 951868799}[i] : lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
        assert_int_equal(parse_ok(al_time_format(t, 0, AL_TIME_SECONDS, out, sizeof out)), t);
        assert_int_equal(parse_ok(al_time_format(t, 123, AL_TIME_MILLIS, out, sizeof out)), t);
        int64_t day = parse_ok(al_time_format(t, 0, AL_TIME_DAY, out, sizeof out));
        assert_true(day <= t && t - day < 86400 && day % 86400 == 0);
        time_t tt = (time_t)t;
        struct tm tm;
        if (t >= 0 && gmtime_r(&tt, &tm) != NULL) {
            strftime(libc, sizeof libc, "%Y-%m-%dT%H:%M:%SZ", &tm);
            assert_string_equal(al_time_format(t, 0, AL_TIME_SECONDS, out, sizeof out), libc);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_forms), cmocka_unit_test(test_bad_forms),  cmocka_unit_test(test_leap_years),
        cmocka_unit_test(test_out_of_range), cmocka_unit_test(test_format),    cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
