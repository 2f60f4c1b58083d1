/*
 * arrivals.c: the count of requests on their way to the engine and the
 * admission rule built on it (arrivals.h).
 */
#include "server/arrivals.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

struct al_server_arrivals {
    atomic_int n;
    _Atomic double last_add_ms; /* when n last went up */
    double gather_ms;           /* > 0: a fixed cap */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct al_server_arrivals *al_server_arrivals_new(double gather_ms)
{
    struct al_server_arrivals *a = calloc(1, sizeof *a);
    if (a) {
        atomic_init(&a->n, 0);
        atomic_init(&a->last_add_ms, 0.0);
        a->gather_ms = gather_ms;
    }
    return a;
}

void al_server_arrivals_free(struct al_server_arrivals *a)
{
    free(a);
}

void al_server_arrivals_add(struct al_server_arrivals *a, int delta)
{
    if (!a)
        return;
    if (delta > 0)
        atomic_store(&a->last_add_ms, now_ms());
    atomic_fetch_add(&a->n, delta);
}

int al_server_arrivals_pending(const struct al_server_arrivals *a)
{
    return atomic_load(&a->n);
}

void al_server_arrivals_submitted(void *ud)
{
    al_server_arrivals_add(ud, -1);
}

/* The cap: waiting longer than a step gains nothing (a request that comes
 * later joins the next step); half of one, so that a fast model is not held
 * the whole AL_SERVER_GATHER_MS for stragglers. */
static double cap_ms(const struct al_server_arrivals *a, const struct al_engine_admit_info *ai)
{
    if (a->gather_ms > 0)
        return a->gather_ms;
    double half = ai->prompt_step_ms / 2;
    return ai->prompt_step_ms >= 0 && half < AL_SERVER_GATHER_MS ? half : AL_SERVER_GATHER_MS;
}

/* Requests not yet counted are expected too after a burst: when the step
 * that left the scheduler idle finished several requests, their clients (a
 * closed loop: streams that started together end together) are asking
 * again, with their headers still in flight where the count cannot see
 * them. A count quiet for four caps is a connection that sends nothing, not
 * a burst on its way. The 1 ms ticks: a request refused before it reaches
 * the engine only uncounts itself, and nothing wakes the scheduler. */
double al_server_arrivals_admit(void *ud, const struct al_engine_admit_info *ai)
{
    struct al_server_arrivals *a = ud;
    double cap = cap_ms(a, ai);
    double now = now_ms(), t0 = now - ai->waited_ms;
    int expect = ai->last_finished_ms < 4.0 * cap ? ai->last_finished : 0;
    bool arriving = t0 - atomic_load(&a->last_add_ms) < 4.0 * cap;
    if (!((arriving && atomic_load(&a->n) > 0) || ai->n_queued < expect))
        return 0;
    double left = cap - ai->waited_ms;
    if (left <= 0)
        return 0;
    return left < 1 ? left : 1;
}
