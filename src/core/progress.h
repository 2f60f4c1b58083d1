/*
 * progress.h: a progress bar on stderr for long work (hashing, copying).
 *
 * Drawn only when stderr is a terminal and AIRLOCK_NO_PROGRESS is unset, at
 * most ten times a second; otherwise every call is a cheap no-op. All
 * functions accept NULL.
 */
#ifndef AL_CORE_PROGRESS_H
#define AL_CORE_PROGRESS_H

#include <stdint.h>

struct al_progress;

/* total may be 0 when unknown (then only bytes and rate are shown; with a
 * total also the percentage and the time left, "ETA 3m05s", at the rate so
 * far). Returns NULL when no bar is to be drawn. */
struct al_progress *al_progress_new(const char *label, uint64_t total);
void al_progress_add(struct al_progress *p, uint64_t done);
/* Done: clears the bar's line (the cursor back at its start), frees p. */
void al_progress_free(struct al_progress *p);

#endif
