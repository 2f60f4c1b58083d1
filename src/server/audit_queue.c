/*
 * audit_queue.c: the server's audit records are appended by one thread of
 * their own, in the order requests finish.
 *
 * Why: al_audit_append() returns once its record is durable (fdatasync), and
 * appends are serialised. Written from the finish path, each connection's
 * next request was not read until its previous record was on disk: when 8
 * streams ended on the same step, their clients' next requests came in one
 * sync apart, missed the step the first ones started, and waited it out
 * (steps of 2 and 6 prompts, 22 ms apart, on a 100M Q4_0 model; with the
 * audit off, one step of 8).
 *
 * What is kept: every record is written, in finishing order, durably, by the
 * same al_audit_append. What changes: a record is on disk shortly after its
 * response is complete instead of before the connection is reused. The
 * queue is bounded (the server's: 1024 records): when it is full, the
 * finishing request waits for room, so memory stays capped and no record is
 * dropped. al_audit_queue_stop() writes what is queued before it returns.
 */
#include "server/audit_queue.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "core/limits.h"
#include "core/log.h"

struct item {
    struct item *next;
    struct al_audit_record rec; /* its strings are owned */
};

struct al_audit_queue {
    struct al_audit *audit;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* an item came, room was made, or stop */
    struct item *head, *tail;
    int n, max;
    bool stop;
    pthread_t thread;
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
    free(it);
}

static void write_item(struct al_audit_queue *q, struct item *it)
{
    struct al_err err = AL_ERR_INIT;
    if (al_audit_append(q->audit, &it->rec, &err) != AL_OK)
        al_log(AL_LOG_ERROR, "%s: cannot write the audit record: %s",
               it->rec.request_id ? it->rec.request_id : "?", err.msg);
}

static void *writer(void *arg)
{
    struct al_audit_queue *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stop)
            pthread_cond_wait(&q->cv, &q->mu);
        struct item *it = q->head;
        if (!it)
            break; /* stopped, and nothing left */
        q->head = it->next;
        if (!q->head)
            q->tail = NULL;
        q->n--;
        pthread_cond_broadcast(&q->cv); /* room */
        pthread_mutex_unlock(&q->mu);
        write_item(q, it);
        item_free(it);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

enum al_rc al_audit_queue_start(struct al_audit *audit, int max, struct al_audit_queue **out, struct al_err *err)
{
    struct al_audit_queue *q = calloc(1, sizeof *q);
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

void al_audit_queue_post(struct al_audit_queue *q, const struct al_audit_record *rec)
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
    }
    if (!it || (rec->request_id && !it->rec.request_id) || (rec->caller && !it->rec.caller) ||
        (rec->model_digest && !it->rec.model_digest) || (rec->route && !it->rec.route) ||
        (rec->prompt && !it->rec.prompt) || (rec->response && !it->rec.response)) {
        /* No memory for a copy: write it here, as before the queue. */
        if (it)
            item_free(it);
        struct item now = {.rec = *rec};
        write_item(q, &now);
        return;
    }
    pthread_mutex_lock(&q->mu);
    while (q->n >= q->max && !q->stop)
        pthread_cond_wait(&q->cv, &q->mu);
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->n++;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

void al_audit_queue_stop(struct al_audit_queue *q)
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
