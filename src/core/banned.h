/*
 * banned.h: functions that invite overflows or silent truncation. Included
 * last by every file of ours (through the compiler's -include), so a use is a
 * compile error. Use snprintf, al_buf, strtol/strtoull with checks instead.
 */
#ifndef AL_CORE_BANNED_H
#define AL_CORE_BANNED_H

#define AL_BANNED(f) sorry_##f##_is_banned_in_airlock

#undef strcpy
#define strcpy(x, y) AL_BANNED(strcpy)
#undef strcat
#define strcat(x, y) AL_BANNED(strcat)
#undef sprintf
#define sprintf(...) AL_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) AL_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) AL_BANNED(strtok)
#undef atoi
#define atoi(x) AL_BANNED(atoi)
#undef atol
#define atol(x) AL_BANNED(atol)
#undef gets
#define gets(x) AL_BANNED(gets)

#endif
