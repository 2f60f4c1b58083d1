/* audit_int.h: private to src/audit (and its unit tests). */
#ifndef AL_AUDIT_AUDIT_INT_H
#define AL_AUDIT_AUDIT_INT_H

#include <pthread.h>
#include <regex.h>
#include <stdint.h>
#include <time.h>

#include "audit/audit.h"
#include "core/hash.h"
#include "core/limits.h"
#include "core/time.h"

#define AL_AUDIT_HASH_SUFFIX 75 /* strlen(",\"hash\":\"") + 64 + strlen("\"}") */

enum al_scrub_check { SCRUB_PLAIN, SCRUB_LUHN, SCRUB_SSN, SCRUB_PHONE, SCRUB_IPV4, SCRUB_IPV6, SCRUB_MIXED };

struct al_scrub_rule {
    char label[32];
    regex_t re;
    enum al_scrub_check check;
    bool boundary;  /* the match may not touch a letter or digit on either side */
    bool skip_run;  /* after a rejected match resume at its end, not one byte on */
};

struct al_audit {
    pthread_mutex_t mu;
    char dir[AL_LIMIT_PATH];
    char home[AL_LIMIT_PATH];
    bool capture;
    int retention_days;
    struct al_scrub_rule *rules;
    size_t n_rules;
    int lock_fd, fd; /* fd: the open day file, -1 when none */
    char day[16];             /* the open day file's date */
    int64_t seq;              /* last record written */
    char prev[AL_SHA256_HEX + 1];
    time_t fake_now;          /* tests: the clock, when non-zero */
    /* Lost records (al_audit_note_lost) not yet marked in the log: those
     * HEAD holds, read with the tail, and those not yet in HEAD. */
    int64_t head_lost, mem_lost;
    time_t lost_since;        /* the first loss not yet marked */
    char lost_why[160];       /* why, when this process saw it */
};

/* Builds the rule list: extras (from file, may be NULL) then the built-ins. */
/* The cross-process append lock (see audit.c). */
enum al_rc al_audit__lock(struct al_audit *a, struct al_err *err);
void al_audit__unlock(struct al_audit *a);

enum al_rc al_audit__rules_load(struct al_audit *a, const char *extra_file, struct al_err *err);
void al_audit__rules_free(struct al_audit *a);

/* The hash of one line (no newline) by the suffix rule; false when the line
 * does not end in a well-formed hash member. stated gets the hash it claims. */
bool al_audit__line_hash(const char *line, size_t len, char computed[AL_SHA256_HEX + 1],
                         char stated[AL_SHA256_HEX + 1]);

/* Reads the HEAD file: seq and hash of the last record, and the records
 * lost after it and not yet marked (*lost, since *since; 0 in a HEAD of the
 * older two-field format); false when absent. lost and since may be NULL. */
bool al_audit__read_head(const char *dir, int64_t *seq, char hash[AL_SHA256_HEX + 1], int64_t *lost,
                         int64_t *since);

/* "YYYY-MM-DD" of a file name audit-YYYY-MM-DD.jsonl; false otherwise. */
bool al_audit__file_day(const char *name, char day[16]);

/* The clock (a->fake_now when set). */
time_t al_audit__now(const struct al_audit *a);

/* Where the chain stands after one line of path: a record gives its seq and
 * hash; an anchor its pruned_through_seq and prev. AL_ERR_CORRUPT when the
 * line is not one of ours. */
enum al_rc al_audit__line_state(const char *path, const char *line, size_t len, int64_t *seq,
                                char hash[AL_SHA256_HEX + 1], struct al_err *err);

/* The last complete line of path (no newline) into line; *found false when
 * there is none. With trim, a cut last line (crash mid-write) is removed. */
struct al_buf;
enum al_rc al_audit__last_line(const char *path, bool trim, struct al_buf *line, bool *found, struct al_err *err);

/* The line for a JSON object text body (no hash member yet): body with
 * ',"hash":"<hex>"}' and '\n'; malloc'd. hash receives the hex. */
char *al_audit__seal(const char *body, char hash[AL_SHA256_HEX + 1]);

#define AL_AUDIT_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))

/* Tests: pretend it is now t (0: the real clock). */
void al_audit__set_now(struct al_audit *a, time_t t);

#endif
