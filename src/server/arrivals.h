/*
 * arrivals.h: the server's admission policy for the engine's schedulers. The
 * server counts the generation requests on their way to al_engine_submit (a
 * new connection from its accept until its first request's headers are in,
 * a completion or chat request from its headers until it is submitted), and
 * a scheduler about to start a step from idle asks this count, through the
 * engine's admission hook, whether to wait a little for them, so that
 * clients who start together have their prompts in one batch.
 *
 * The rule (docs/internals/server.md, "Arrivals", says why and what it
 * measured): wait while the count is above zero and has gone up within the
 * last four caps, or while fewer requests are queued than the step that left
 * the scheduler idle finished, if that step ended within four caps; never
 * past the cap, which is half the median of the scheduler's recent prompt
 * steps and at most AL_SERVER_GATHER_MS (or a fixed cap, for tests). A lone
 * request is never delayed: al_server_arrivals_submitted uncounts it under
 * the scheduler's lock as it is queued.
 *
 * Thread-safe (atomics). One count may serve every model's scheduler.
 */
#ifndef AL_SERVER_ARRIVALS_H
#define AL_SERVER_ARRIVALS_H

#include "engine/engine.h"

/* The longest a scheduler waits for requests on their way, in ms. */
#define AL_SERVER_GATHER_MS 10

struct al_server_arrivals;

/* gather_ms <= 0: the adaptive cap above; > 0: that fixed cap. NULL when out
 * of memory. */
struct al_server_arrivals *al_server_arrivals_new(double gather_ms);
/* NULL is a no-op. No scheduler may use it any more (al_engine_set_admit). */
void al_server_arrivals_free(struct al_server_arrivals *a);

/* Counts delta more (or, negative, fewer) requests on their way. NULL: no-op. */
void al_server_arrivals_add(struct al_server_arrivals *a, int delta);
int al_server_arrivals_pending(const struct al_server_arrivals *a);

/* The engine's admission hook (al_engine_admit_fn), ud the count. */
double al_server_arrivals_admit(void *ud, const struct al_engine_admit_info *info);

/* al_engine_submitted_cb for a request counted here, ud the count: uncounts it. */
void al_server_arrivals_submitted(void *ud);

#endif
