/*
 * audit.h: the audit log of the server: one JSON line per request in
 * $AIRLOCK_HOME/audit/audit-YYYY-MM-DD.jsonl (UTC day of the record),
 * hash-chained across lines and files.
 *
 * A record line, keys in this order:
 *   {"seq":N,"time":"...Z","request_id":"..","caller":"..","model_digest":"..",
 *    "route":"..","status":200,"tokens_in":..,"tokens_out":..,"latency_ms":..,
 *    ["lora":"name@sha256:..*scale,..",]["prompt":"..","response":"..",]
 *    "prev":"<hex>","hash":"<hex>"}
 * hash is SHA-256 of the line's own bytes with the ',"hash":"<64 hex>"' member
 * cut out (so: everything before it, then '}'); prev is the hash of the
 * record before (64 zeros for the first). seq counts records from 1 over the
 * whole log. Any tool can check a line: strip the last 75 bytes, add '}',
 * hash.
 *
 * Pruning (al_audit_prune) deletes whole day files older than the retention
 * window and puts an anchor line at the head of the oldest file kept:
 *   {"anchor":true,"time":..,"pruned_through_seq":N,"pruned_files":K,
 *    "prev":"<hash of record N>","hash":..}
 * so the chain still verifies from there; each prune is also recorded in the
 * index's event log ("audit-prune"), which verify cross-checks.
 * audit/HEAD holds the seq and hash of the last record, so a log cut short
 * by whole lines is detected too, and the count of records lost after it
 * (al_audit_note_lost) until a loss marker line records them.
 *
 * Durability: each record is written with one write(2) and fdatasync'd
 * before al_audit_append returns; HEAD is updated after that. One process
 * writes a log at a time (an flock on audit/.lock; a second al_audit_open
 * gets AL_ERR_BUSY); within it, every function is thread-safe.
 *
 * Captured text (opts.capture_text) is cut to AL_LIMIT_AUDIT_TEXT and
 * scrubbed of PII before it is written: e-mail addresses, phone numbers,
 * IPv4/IPv6 addresses, Luhn-valid card numbers, US SSNs, API-key-like
 * secrets, and the patterns of extra_patterns_file (lines "LABEL REGEX",
 * POSIX extended syntax, '#' comments; applied before the built-ins), each
 * replaced by "[LABEL]" ([EMAIL], [PHONE], [IPV4], [IPV6], [CARD], [SSN],
 * [SECRET]).
 */
#ifndef AL_AUDIT_AUDIT_H
#define AL_AUDIT_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct al_audit;

struct al_audit_opts {
    bool capture_text;
    int retention_days;              /* <= 0: keep everything */
    const char *extra_patterns_file; /* NULL = builtins only */
};

enum al_rc al_audit_open(const char *home, const struct al_audit_opts *opts, struct al_audit **out,
                         struct al_err *err);
void al_audit_free(struct al_audit *a);

struct al_audit_record {
    const char *request_id, *caller, *model_digest, *route; /* NULL = "" */
    int status;
    int tokens_in, tokens_out;
    double latency_ms;
    const char *prompt, *response; /* NULL unless capture */
    const char *lora;              /* the LoRA adapters that answered, "name@digest*scale,..."; NULL: none */
    const char *reranker;          /* the reranker that ordered a retrieval's passages, "name@digest"; NULL: none */
};

/* Appends one record (string fields over AL_LIMIT_AUDIT_FIELD are cut,
 * invalid UTF-8 becomes '?'); durable when it returns AL_OK. */
enum al_rc al_audit_append(struct al_audit *a, const struct al_audit_record *rec, struct al_err *err);

/* Records that k records could not be written (the disk full, an I/O
 * error) and are gone; why says what failed. The count goes into HEAD at
 * once (HEAD is rewritten in place, so that needs no new space on a full
 * disk) and the next al_audit_append first writes a loss marker line into
 * the chain:
 *   {"seq":N,"time":..,"lost":K,"lost_since":"..Z","reason":"..","prev":..,"hash":..}
 * al_audit_verify reports both a marker and a count still in HEAD as
 * problems: a loss is never silent. AL_ERR_IO when even HEAD cannot be
 * written (the count is kept in memory for the next append). */
enum al_rc al_audit_note_lost(struct al_audit *a, int64_t k, const char *why, struct al_err *err);

/* Deletes day files older than retention_days (a no-op when <= 0), leaving
 * the chain verifiable through an anchor line. Call at start and daily. */
enum al_rc al_audit_prune(struct al_audit *a, struct al_err *err);

/* Writes in with PII replaced into out[out_size] (always NUL-terminated
 * when out_size > 0) and returns the length of the whole scrubbed text,
 * like snprintf: a result >= out_size means out was cut. On allocation
 * failure out is "" and 0 is returned. */
size_t al_audit_scrub(const struct al_audit *a, const char *in, char *out, size_t out_size);

/* ---- reading (the CLI) ---- */

/* Called for each problem verify finds: the file's name (no directory), its
 * 1-based line (0: the file or the log as a whole), and what is wrong. */
typedef void al_audit_problem_fn(void *ud, const char *file, size_t line, const char *msg);

/* Checks every file of $home/audit in order: each line's hash, the chain,
 * the sequence (a deleted line, reordered lines), a cut last line, HEAD
 * (lines cut from the end), anchors against the event log. AL_OK when
 * intact; AL_ERR_CORRUPT with the first problem in err otherwise. *records
 * counts the records read. Works while a server appends. */
enum al_rc al_audit_verify(const char *home, al_audit_problem_fn *fn, void *ud, size_t *records,
                           struct al_err *err);

/* The audit files, oldest first: malloc'd array of malloc'd full paths. */
enum al_rc al_audit_files(const char *home, char ***paths, size_t *n, struct al_err *err);
void al_audit_files_free(char **paths, size_t n);

#endif
