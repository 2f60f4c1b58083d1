#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

/* The log sink is the one mutable global the style allows. */
static al_log_sink_fn *sink_fn;
static void *sink_ud;
static enum al_log_level min_level = AL_LOG_WARN;

void al_log_set_sink(al_log_sink_fn *fn, void *ud)
{
    sink_fn = fn;
    sink_ud = ud;
}

void al_log_set_level(enum al_log_level min) { min_level = min; }

enum al_log_level al_log_get_level(void) { return min_level; }

void al_log(enum al_log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (sink_fn) {
        sink_fn(level, line, sink_ud);
        return;
    }
    static const char *const tag[] = {"debug", "info", "warning", "error", ""};
    fprintf(stderr, "airlock: %s: %s\n", tag[level], line);
}
