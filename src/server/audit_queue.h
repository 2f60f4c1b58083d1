/*
 * audit_queue.h: audit records written by a thread of their own, so that a
 * finishing request does not hold its connection for the record's fdatasync
 * (see audit_queue.c).
 */
#ifndef AL_SERVER_AUDIT_QUEUE_H
#define AL_SERVER_AUDIT_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

struct al_audit;
struct al_audit_record;
struct al_server_audit_queue;

/* Starts the writer for audit, which must outlive the queue. At most max
 * records wait; a post beyond waits for room. */
enum al_rc al_server_audit_queue_start(struct al_audit *audit, int max, struct al_server_audit_queue **out, struct al_err *err);

/* Queues a copy of rec; waits while the queue is full, unless the writer is
 * failing: then the record is dropped and counted as lost (al_audit_note_lost).
 * Not after stop. */
void al_server_audit_queue_post(struct al_server_audit_queue *q, const struct al_audit_record *rec);

/* True while the last write failed (the record is kept and retried); why
 * (may be NULL) receives the error. NULL: false. */
bool al_server_audit_queue_failing(struct al_server_audit_queue *q, char *why, size_t size);

/* Writes every queued record (one more try each while failing; the rest are
 * noted as lost), then stops the writer and frees q. NULL: no-op. */
void al_server_audit_queue_stop(struct al_server_audit_queue *q);

#endif
