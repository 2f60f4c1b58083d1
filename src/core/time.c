/*
 * time.c: ISO 8601 dates and UTC times (see time.h). The calendar is
 * computed, not asked of the C library: timegm() normalises out-of-range
 * fields (30 February becomes 2 March) where a parser must refuse them, and
 * gmtime_r() depends on the width of time_t. The day counts are Howard
 * Hinnant's days_from_civil / civil_from_days.
 */
#include "core/time.h"

#include "core/limits.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define DAY_SECONDS 86400

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

char *al_time_format(int64_t sec, int ms, enum al_time_form form, char *out, size_t size)
{
    const int64_t lo = days_from_civil(0, 1, 1) * DAY_SECONDS;
    const int64_t hi = days_from_civil(9999, 12, 31) * DAY_SECONDS + DAY_SECONDS - 1;
    if (sec < lo)
        sec = lo, ms = 0;
    else if (sec > hi)
        sec = hi, ms = 999;
    ms = ms < 0 ? 0 : ms > 999 ? 999 : ms;
    int64_t days = sec / DAY_SECONDS, rem = sec % DAY_SECONDS;
    if (rem < 0)
        days--, rem += DAY_SECONDS;
    int y, m, d, hh = (int)(rem / 3600), mm = (int)(rem / 60 % 60), ss = (int)(rem % 60);
    civil_from_days(days, &y, &m, &d);
    if (form == AL_TIME_DAY)
        snprintf(out, size, "%04d-%02d-%02d", y, m, d);
    else if (form == AL_TIME_SECONDS)
        snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, hh, mm, ss);
    else
        snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, hh, mm, ss, ms);
    return out;
}

void al_time_now_iso(char out[AL_TIME_SIZE])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    al_time_format((int64_t)ts.tv_sec, (int)(ts.tv_nsec / 1000000), AL_TIME_MILLIS, out, AL_TIME_SIZE);
}

/* Exactly n ASCII digits at s; no sign, no space. */
static bool digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

enum al_rc al_time_parse(const char *text, int64_t *out, struct al_err *err)
{
    size_t n = strnlen(text, AL_LIMIT_TIME_TEXT + 1);
    if (n > AL_LIMIT_TIME_TEXT)
        return al_err_set(err, AL_ERR_LIMIT, "'%.*s...' is longer than a date or UTC time may be (%u bytes)",
                          (int)AL_LIMIT_TIME_TEXT, text, AL_LIMIT_TIME_TEXT);
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
    bool ok = n >= 10 && digits(text, 4, &y) && text[4] == '-' && digits(text + 5, 2, &mo) && text[7] == '-' &&
              digits(text + 8, 2, &d);
    if (ok && n > 10) {
        const char *t = text + 10, *rest = text + 19;
        ok = n >= 20 && t[0] == 'T' && digits(t + 1, 2, &h) && t[3] == ':' && digits(t + 4, 2, &mi) &&
             t[6] == ':' && digits(t + 7, 2, &s);
        if (ok && *rest == '.') {
            size_t f = strspn(rest + 1, "0123456789");
            ok = f > 0;
            rest += 1 + f;
        }
        ok = ok && strcmp(rest, "Z") == 0;
    }
    if (!ok)
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not a date (YYYY-MM-DD) or UTC time (YYYY-MM-DDTHH:MM:SSZ)",
                          text);
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60)
        return al_err_set(err, AL_ERR_INVALID, "'%s' is not a date of the calendar: month 1-12, a day of that "
                          "month, time up to 23:59:60", text);
    *out = days_from_civil(y, mo, d) * DAY_SECONDS + h * 3600 + mi * 60 + s;
    return AL_OK;
}
