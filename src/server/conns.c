/*
 * conns.c: see conns.h. The connections are a list in the order they last
 * started receiving (a connection that goes back to receiving moves to the
 * tail), so the oldest receiving ones are found from the head.
 */
#include "server/conns.h"

#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#include "core/log.h"

struct al_server_conn {
    struct al_server_conn *prev, *next;
    int fd;
    double since;   /* when it started receiving */
    bool receiving; /* else handling a request */
    bool shut;      /* shut down by us: waiting for libmicrohttpd's close */
};

struct al_server_conns {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* stop */
    pthread_t thread;
    bool started, stop;
    int cap, reserve;
    double timeout_s;
    struct al_server_conn *head, *tail;
    int n_open;    /* not shut */
    uint64_t timed_out, shed;
};

enum al_rc al_server_conns_new(int cap, double receive_timeout_s, struct al_server_conns **out, struct al_err *err)
{
    *out = NULL;
    if (cap < 1 || !(receive_timeout_s > 0))
        return al_err_set(err, AL_ERR_USAGE, "the receive timeout and the connection cap must be positive");
    struct al_server_conns *cs = calloc(1, sizeof *cs);
    if (!cs)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&cs->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cs->cv, &ca);
    pthread_condattr_destroy(&ca);
    cs->cap = cap;
    cs->reserve = cap / 4 > 0 ? cap / 4 : 1;
    cs->timeout_s = receive_timeout_s;
    *out = cs;
    return AL_OK;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *watchdog(void *arg)
{
    struct al_server_conns *cs = arg;
    pthread_mutex_lock(&cs->mu);
    while (!cs->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += AL_SERVER_CONNS_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cs->cv, &cs->mu, &ts);
        if (cs->stop)
            break;
        pthread_mutex_unlock(&cs->mu);
        al_server_conns_sweep(cs, mono_now());
        pthread_mutex_lock(&cs->mu);
    }
    pthread_mutex_unlock(&cs->mu);
    return NULL;
}

enum al_rc al_server_conns_start(struct al_server_conns *cs, struct al_err *err)
{
    int e = pthread_create(&cs->thread, NULL, watchdog, cs);
    if (e)
        return al_err_set(err, AL_ERR_INTERNAL, "cannot start the connection watchdog: %s", strerror(e));
    cs->started = true;
    return AL_OK;
}

void al_server_conns_free(struct al_server_conns *cs)
{
    if (!cs)
        return;
    if (cs->started) {
        pthread_mutex_lock(&cs->mu);
        cs->stop = true;
        pthread_cond_signal(&cs->cv);
        pthread_mutex_unlock(&cs->mu);
        pthread_join(cs->thread, NULL);
    }
    for (struct al_server_conn *c = cs->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    pthread_cond_destroy(&cs->cv);
    pthread_mutex_destroy(&cs->mu);
    free(cs);
}

void al_server_conns_set_timeout(struct al_server_conns *cs, double receive_timeout_s)
{
    pthread_mutex_lock(&cs->mu);
    if (receive_timeout_s > 0)
        cs->timeout_s = receive_timeout_s;
    pthread_mutex_unlock(&cs->mu);
}

/* List operations, with the mutex held. */
static void unlink_conn(struct al_server_conns *cs, struct al_server_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        cs->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        cs->tail = c->prev;
    c->prev = c->next = NULL;
}

static void append(struct al_server_conns *cs, struct al_server_conn *c)
{
    c->prev = cs->tail;
    c->next = NULL;
    if (cs->tail)
        cs->tail->next = c;
    else
        cs->head = c;
    cs->tail = c;
}

struct al_server_conn *al_server_conns_add(struct al_server_conns *cs, int fd, double now)
{
    struct al_server_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->since = now;
    c->receiving = true;
    pthread_mutex_lock(&cs->mu);
    append(cs, c);
    cs->n_open++;
    pthread_mutex_unlock(&cs->mu);
    return c;
}

void al_server_conns_remove(struct al_server_conns *cs, struct al_server_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&cs->mu);
    unlink_conn(cs, c);
    if (!c->shut)
        cs->n_open--;
    pthread_mutex_unlock(&cs->mu);
    free(c);
}

void al_server_conn_handling(struct al_server_conns *cs, struct al_server_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&cs->mu);
    c->receiving = false;
    pthread_mutex_unlock(&cs->mu);
}

void al_server_conn_receiving(struct al_server_conns *cs, struct al_server_conn *c, double now)
{
    if (!c)
        return;
    pthread_mutex_lock(&cs->mu);
    c->receiving = true;
    c->since = now;
    unlink_conn(cs, c);
    append(cs, c);
    pthread_mutex_unlock(&cs->mu);
}

/* With the mutex held. The descriptor is still libmicrohttpd's and open:
 * it closes it only after al_server_conns_remove, which waits for our mutex. */
static void shut(struct al_server_conns *cs, struct al_server_conn *c)
{
    shutdown(c->fd, SHUT_RDWR);
    c->shut = true;
    cs->n_open--;
}

int al_server_conns_sweep(struct al_server_conns *cs, double now)
{
    int timed_out = 0, shed = 0;
    pthread_mutex_lock(&cs->mu);
    for (struct al_server_conn *c = cs->head; c; c = c->next)
        if (c->receiving && !c->shut && now - c->since > cs->timeout_s) {
            shut(cs, c);
            timed_out++;
        }
    /* The reserve: oldest first, only past the grace, so that a burst of
     * new clients is not closed before it could send anything. */
    for (struct al_server_conn *c = cs->head; c && cs->n_open > cs->cap - cs->reserve; c = c->next)
        if (c->receiving && !c->shut && now - c->since >= AL_SERVER_CONNS_GRACE_S) {
            shut(cs, c);
            shed++;
        }
    cs->timed_out += (uint64_t)timed_out;
    cs->shed += (uint64_t)shed;
    double limit = cs->timeout_s;
    int open = cs->n_open;
    pthread_mutex_unlock(&cs->mu);
    if (timed_out)
        al_info("closed %d connections whose request was not in after %.0f s (limits.receive_timeout_s)", timed_out,
                limit);
    if (shed)
        al_info("closed %d connections slow to send their request, to keep room for new ones (%d open)", shed, open);
    return timed_out + shed;
}

void al_server_conns_stats(struct al_server_conns *cs, struct al_server_conns_stats *st)
{
    pthread_mutex_lock(&cs->mu);
    st->open = cs->n_open;
    st->receiving = 0;
    for (struct al_server_conn *c = cs->head; c; c = c->next)
        st->receiving += c->receiving && !c->shut;
    st->timed_out = cs->timed_out;
    st->shed = cs->shed;
    pthread_mutex_unlock(&cs->mu);
}
