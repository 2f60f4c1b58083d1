/*
 * err.h: return codes and the error record every fallible function fills.
 *
 * A fallible function returns an enum al_rc and takes a caller-owned
 * struct al_err * as its last argument. The first message recorded wins:
 * later calls to al_err_set() on an already-set record change nothing, so the
 * innermost, most specific cause survives as the error bubbles up.
 * Messages are lowercase, without a full stop, the subject quoted:
 *     cannot open 'models/x.gguf': permission denied
 * Only the CLI maps codes to exit statuses and only the server to HTTP
 * statuses, each from one table.
 */
#ifndef AL_CORE_ERR_H
#define AL_CORE_ERR_H

#include <stddef.h>

enum al_rc {
    AL_OK = 0,
    AL_ERR_USAGE,     /* the caller asked for something malformed */
    AL_ERR_NOT_FOUND, /* a named thing does not exist */
    AL_ERR_EXISTS,    /* it exists already and may not be replaced */
    AL_ERR_IO,        /* the operating system refused: open, read, write, fsync */
    AL_ERR_CORRUPT,   /* stored data fails its own checks: digest, chain, format */
    AL_ERR_INVALID,   /* external input is malformed */
    AL_ERR_LIMIT,     /* external input is over a named cap */
    AL_ERR_VERIFY,    /* integrity: a signature or digest does not verify */
    AL_ERR_DENIED,    /* policy refuses a known caller: untrusted key, expired, replay, scope */
    AL_ERR_BUSY,      /* another process holds what we need */
    AL_ERR_NOMEM,
    AL_ERR_INTERNAL,
    AL_ERR_AUTH,      /* authentication: an API key missing, unknown, revoked or expired */
    AL_RC_COUNT       /* new codes go last: values are stable; every table has a row for each */
};

#define AL_ERR_MSG_MAX 1024

struct al_err {
    enum al_rc rc;
    char msg[AL_ERR_MSG_MAX];
};

#define AL_ERR_INIT {AL_OK, {0}}

/* Records rc and a formatted message unless one is recorded already; returns
 * rc either way so that `return al_err_set(err, ...)` is one line. err may be
 * NULL. */
enum al_rc al_err_set(struct al_err *err, enum al_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like al_err_set(), appending ": strerror(errno)" to the message. */
enum al_rc al_err_sys(struct al_err *err, enum al_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void al_err_clear(struct al_err *err);

/* Short stable name of a code ("not-found"), for logs and JSON. */
const char *al_rc_name(enum al_rc rc);

#endif
