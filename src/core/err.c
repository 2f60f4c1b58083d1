#include "core/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The format attribute lets clang check callers' formats (-Wformat-nonliteral). */
static enum al_rc vset(struct al_err *err, enum al_rc rc, int errnum, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static enum al_rc vset(struct al_err *err, enum al_rc rc, int errnum, const char *fmt, va_list ap)
{
    if (err == NULL || err->rc != AL_OK)
        return rc;
    err->rc = rc;
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    if (errnum != 0 && n >= 0 && (size_t)n < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(errnum));
    return rc;
}

enum al_rc al_err_set(struct al_err *err, enum al_rc rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, rc, 0, fmt, ap);
    va_end(ap);
    return rc;
}

enum al_rc al_err_sys(struct al_err *err, enum al_rc rc, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    vset(err, rc, saved ? saved : EIO, fmt, ap);
    va_end(ap);
    errno = saved;
    return rc;
}

void al_err_clear(struct al_err *err)
{
    if (err == NULL)
        return;
    err->rc = AL_OK;
    err->msg[0] = '\0';
}

const char *al_rc_name(enum al_rc rc)
{
    static const char *const names[AL_RC_COUNT] = {
        [AL_OK] = "ok",           [AL_ERR_USAGE] = "usage",     [AL_ERR_NOT_FOUND] = "not-found",
        [AL_ERR_EXISTS] = "exists", [AL_ERR_IO] = "io",          [AL_ERR_CORRUPT] = "corrupt",
        [AL_ERR_INVALID] = "invalid", [AL_ERR_LIMIT] = "limit",  [AL_ERR_VERIFY] = "verify",
        [AL_ERR_DENIED] = "denied", [AL_ERR_BUSY] = "busy",      [AL_ERR_NOMEM] = "nomem",
        [AL_ERR_INTERNAL] = "internal", [AL_ERR_AUTH] = "auth",
    };
    if ((unsigned)rc >= AL_RC_COUNT)
        return "unknown";
    return names[rc];
}
