/*
 * log.h: the one log sink. stderr by default; a program may replace it
 * (al_log_set_sink: the fuzz harnesses silence it). Server lines carry
 * their request id in the text itself. llama.cpp's own logs are
 * routed here by the engine. Never log secrets or prompt text at info level.
 */
#ifndef AL_CORE_LOG_H
#define AL_CORE_LOG_H

enum al_log_level { AL_LOG_DEBUG, AL_LOG_INFO, AL_LOG_WARN, AL_LOG_ERROR, AL_LOG_SILENT };

typedef void al_log_sink_fn(enum al_log_level level, const char *line, void *ud);

void al_log_set_sink(al_log_sink_fn *fn, void *ud); /* NULL restores stderr */
void al_log_set_level(enum al_log_level min);
enum al_log_level al_log_get_level(void);

void al_log(enum al_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define al_debug(...) al_log(AL_LOG_DEBUG, __VA_ARGS__)
#define al_info(...)  al_log(AL_LOG_INFO, __VA_ARGS__)
#define al_warn(...)  al_log(AL_LOG_WARN, __VA_ARGS__)

#endif
