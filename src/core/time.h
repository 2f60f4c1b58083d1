/*
 * time.h: times as text, in one place. Every time airlock writes or reads is
 * UTC in one of the ISO 8601 forms below (RFC 3339 profile, 'T' and 'Z'
 * upper case, no offsets):
 *
 *     2026-01-02                  AL_TIME_DAY      (midnight UTC when read)
 *     2026-01-02T03:04:05Z        AL_TIME_SECONDS
 *     2026-01-02T03:04:05.678Z    AL_TIME_MILLIS   (any 1 or more digits when read)
 *
 * Times are int64_t seconds since the epoch; the conversions are arithmetic
 * (proleptic Gregorian calendar), independent of TZ and of the width of
 * time_t. Years 0000 to 9999 only: what is written can always be read back.
 */
#ifndef AL_CORE_TIME_H
#define AL_CORE_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Room for the longest form written, AL_TIME_MILLIS, and its NUL. */
#define AL_TIME_SIZE 32

enum al_time_form {
    AL_TIME_DAY,     /* YYYY-MM-DD */
    AL_TIME_SECONDS, /* YYYY-MM-DDTHH:MM:SSZ */
    AL_TIME_MILLIS,  /* YYYY-MM-DDTHH:MM:SS.mmmZ */
};

/* Writes sec (and ms, 0 to 999, for AL_TIME_MILLIS) in form to out[size],
 * cut to fit; returns out. A time outside years 0000 to 9999 is written as
 * the nearest end of that range. */
char *al_time_format(int64_t sec, int ms, enum al_time_form form, char *out, size_t size);

/* The current time (CLOCK_REALTIME) as AL_TIME_MILLIS. */
void al_time_now_iso(char out[AL_TIME_SIZE]);

/* Reads text, one of the forms above (a fraction of a second is read and
 * dropped), into *out. Every field is checked against the calendar:
 * month 1-12, the day against its month (29 February only in a leap year),
 * hour 0-23, minute 0-59, second 0-60 (a leap second reads as the next
 * second). AL_ERR_INVALID for anything else, AL_ERR_LIMIT for text longer
 * than AL_LIMIT_TIME_TEXT; *out is unchanged then. */
enum al_rc al_time_parse(const char *text, int64_t *out, struct al_err *err);

#endif
