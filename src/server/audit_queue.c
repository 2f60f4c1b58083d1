/*
 * audit_queue.c: the server's audit records are appended by one thread of
 * their own, in the order requests finish.
 *
 * Why: al_audit_append() returns once its record is durable (fdatasync), and
 * appends are serialised. Written from the finish path, each connection's
 * next request was not read until its previous record was on disk: when 8
 * streams ended on the same step, their clients' next requests came in one
 * sync apart, missed the step the first ones started, and waited it out
 * (docs/internals/server.md has the measurement).
 *
 * What is kept: every record is written, in finishing order, durably, by the
 * same al_audit_append. What changes: a record is on disk shortly after its
 * response is complete instead of before the connection is reused. The
 * queue is bounded (the server's: 1024 records): when it is full, the
 * finishing request waits for room, so memory stays capped and no record is
 * dropped. al_server_audit_queue_stop() writes what is queued before it returns.
 *
 * When a record cannot be written (a full disk, an I/O error), the writer
 * keeps it at the head of the queue and tries it again, RETRY_MIN_MS after
 * the failure and then less and less often (up to RETRY_MAX_MS), so that
 * nothing is lost when the disk comes back. Meanwhile the queue says it is
 * failing (al_server_audit_queue_failing): the server refuses requests with 503
 * (audit_fail = closed, the default) or goes on (open). A post to a full
 * queue that is failing does not wait, since the wait could last until an
 * operator frees the disk: the record is dropped and counted, and the count
 * goes to al_audit_note_lost, which puts a loss marker into the chain. So
 * does every record still unwritten when the queue stops.
 */
#include "server/audit_queue.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "core/limits.h"
#include "core/log.h"

#define RETRY_MIN_MS 100  /* the first retry of a record that failed */
#define RETRY_MAX_MS 2000 /* retries back off to this interval */

struct item {
    struct item *next;
    struct al_audit_record rec; /* its strings are owned */
};

struct al_server_audit_queue {
    struct al_audit *audit;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* an item came, room was made, or stop */
    struct item *head, *tail;
    int n, max;
    bool stop;
    pthread_t thread;
    atomic_bool failing;    /* the last write failed */
    int64_t dropped;        /* records not queued while failing; not yet noted as lost */
    char why[AL_ERR_MSG_MAX]; /* under mu: the last failure */
};

/* Copies no more than al_audit_append keeps (it cuts fields and text at
 * these caps), so that 1024 queued records with text stay bounded. */
static char *dup_or_null(const char *s, size_t max)
{
    return s ? strndup(s, max) : NULL;
}

static void item_free(struct item *it)
{
    free((char *)it->rec.request_id);
    free((char *)it->rec.caller);
    free((char *)it->rec.model_digest);
    free((char *)it->rec.route);
    free((char *)it->rec.prompt);
    free((char *)it->rec.response);
    free((char *)it->rec.lora);
    free((char *)it->rec.reranker);
    free(it);
}

/* Appends one record; false when it failed. The first failure of a run
 * and the recovery after it are logged, not every retry. */
static bool write_item(struct al_server_audit_queue *q, struct item *it)
{
    struct al_err err = AL_ERR_INIT;
    if (al_audit_append(q->audit, &it->rec, &err) == AL_OK) {
        if (atomic_exchange(&q->failing, false))
            al_log(AL_LOG_INFO, "audit: the log is written again");
        return true;
    }
    pthread_mutex_lock(&q->mu);
    snprintf(q->why, sizeof q->why, "%s", err.msg);
    pthread_cond_broadcast(&q->cv); /* a post waiting for room need not wait now */
    pthread_mutex_unlock(&q->mu);
    if (!atomic_exchange(&q->failing, true))
        al_log(AL_LOG_ERROR, "%s: cannot write the audit record: %s (kept and tried again)",
               it->rec.request_id ? it->rec.request_id : "?", err.msg);
    return false;
}

/* Under q->mu: hands the dropped count to the audit (which marks the loss). */
static void note_dropped(struct al_server_audit_queue *q, int64_t more)
{
    int64_t k = q->dropped + more;
    q->dropped = 0;
    if (k == 0)
        return;
    char why[sizeof q->why + 64];
    snprintf(why, sizeof why, "the audit could not write: %s", q->why[0] ? q->why : "unknown");
    pthread_mutex_unlock(&q->mu);
    struct al_err err = AL_ERR_INIT;
    if (al_audit_note_lost(q->audit, k, why, &err) != AL_OK)
        al_log(AL_LOG_ERROR, "audit: cannot count %" PRId64 " lost records in HEAD: %s", k, err.msg);
    pthread_mutex_lock(&q->mu);
}

/* Under q->mu: waits ms or until stop. */
static void wait_ms(struct al_server_audit_queue *q, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (!q->stop && pthread_cond_timedwait(&q->cv, &q->mu, &ts) == 0)
        ;
}

static void *writer(void *arg)
{
    struct al_server_audit_queue *q = arg;
    int delay = RETRY_MIN_MS;
    int64_t lost_at_stop = 0;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stop && !q->dropped)
            pthread_cond_wait(&q->cv, &q->mu);
        note_dropped(q, 0);
        struct item *it = q->head;
        if (!it) {
            if (q->stop)
                break; /* stopped, and nothing left */
            continue;
        }
        pthread_mutex_unlock(&q->mu);
        bool ok = write_item(q, it);
        pthread_mutex_lock(&q->mu);
        if (!ok && !q->stop) {
            wait_ms(q, delay); /* it stays at the head */
            delay = delay * 2 < RETRY_MAX_MS ? delay * 2 : RETRY_MAX_MS;
            continue;
        }
        if (!ok)
            lost_at_stop++; /* stopping: each record gets one more try */
        else
            delay = RETRY_MIN_MS;
        q->head = it->next;
        if (!q->head)
            q->tail = NULL;
        q->n--;
        pthread_cond_broadcast(&q->cv); /* room */
        item_free(it);
    }
    note_dropped(q, lost_at_stop);
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

bool al_server_audit_queue_failing(struct al_server_audit_queue *q, char *why, size_t size)
{
    if (!q || !atomic_load(&q->failing))
        return false;
    if (why && size) {
        pthread_mutex_lock(&q->mu);
        snprintf(why, size, "%s", q->why);
        pthread_mutex_unlock(&q->mu);
    }
    return true;
}

enum al_rc al_server_audit_queue_start(struct al_audit *audit, int max, struct al_server_audit_queue **out, struct al_err *err)
{
    struct al_server_audit_queue *q = calloc(1, sizeof *q);
    if (!q)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    q->audit = audit;
    q->max = max > 0 ? max : 1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    if (pthread_create(&q->thread, NULL, writer, q) != 0) {
        pthread_cond_destroy(&q->cv);
        pthread_mutex_destroy(&q->mu);
        free(q);
        return al_err_sys(err, AL_ERR_INTERNAL, "cannot start the audit writer thread");
    }
    *out = q;
    return AL_OK;
}

void al_server_audit_queue_post(struct al_server_audit_queue *q, const struct al_audit_record *rec)
{
    struct item *it = calloc(1, sizeof *it);
    if (it) {
        it->rec = *rec;
        it->rec.request_id = dup_or_null(rec->request_id, AL_LIMIT_AUDIT_FIELD);
        it->rec.caller = dup_or_null(rec->caller, AL_LIMIT_AUDIT_FIELD);
        it->rec.model_digest = dup_or_null(rec->model_digest, AL_LIMIT_AUDIT_FIELD);
        it->rec.route = dup_or_null(rec->route, AL_LIMIT_AUDIT_FIELD);
        it->rec.prompt = dup_or_null(rec->prompt, AL_LIMIT_AUDIT_TEXT);
        it->rec.response = dup_or_null(rec->response, AL_LIMIT_AUDIT_TEXT);
        it->rec.lora = dup_or_null(rec->lora, AL_LIMIT_AUDIT_LORA);
        it->rec.reranker = dup_or_null(rec->reranker, AL_LIMIT_AUDIT_FIELD);
    }
    if (!it || (rec->request_id && !it->rec.request_id) || (rec->caller && !it->rec.caller) ||
        (rec->model_digest && !it->rec.model_digest) || (rec->route && !it->rec.route) ||
        (rec->prompt && !it->rec.prompt) || (rec->response && !it->rec.response) || (rec->lora && !it->rec.lora) ||
        (rec->reranker && !it->rec.reranker)) {
        /* No memory for a copy: write it here, as before the queue. */
        if (it)
            item_free(it);
        struct item now = {.rec = *rec};
        if (!write_item(q, &now)) {
            pthread_mutex_lock(&q->mu);
            q->dropped++;
            pthread_cond_broadcast(&q->cv);
            pthread_mutex_unlock(&q->mu);
        }
        return;
    }
    pthread_mutex_lock(&q->mu);
    while (q->n >= q->max && !q->stop && !atomic_load(&q->failing))
        pthread_cond_wait(&q->cv, &q->mu);
    if (q->n >= q->max) {
        /* Failing and full: waiting could last until the disk is freed. */
        q->dropped++;
        pthread_cond_broadcast(&q->cv);
        pthread_mutex_unlock(&q->mu);
        item_free(it);
        return;
    }
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->n++;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

void al_server_audit_queue_stop(struct al_server_audit_queue *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}
