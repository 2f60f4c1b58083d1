/* Unit tests of src/audit: the PII scrubber, the hash chain and its
 * verification (edited, deleted, reordered, truncated), retention, threads. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "audit/audit_int.h"
#include "index/index.h"

#define DAY 86400
#define T0 1893456000 /* 2030-01-01T00:00:00Z */

struct fx {
    char *home;
    struct al_audit *a;
};

static struct al_audit *open_audit(const char *home, int retention, bool capture, const char *extra)
{
    struct al_audit_opts o = {capture, retention, extra};
    struct al_audit *a = NULL;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_audit_open(home, &o, &a, &err);
    if (rc)
        fail_msg("al_audit_open: %s", err.msg);
    return a;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->home = tu_mkdtemp();
    f->a = open_audit(f->home, 0, true, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    al_audit_free(f->a);
    tu_rmrf(f->home);
    free(f->home);
    free(f);
    return 0;
}

static void append(struct al_audit *a, int i)
{
    char id[32];
    snprintf(id, sizeof id, "req-%d", i);
    struct al_audit_record r = {id, "alice", "sha256:00", "/v1/chat/completions", 200, 10 + i, 20, 1.25 * i,
                                "hi", "hello", NULL, NULL};
    struct al_err err = AL_ERR_INIT;
    if (al_audit_append(a, &r, &err))
        fail_msg("append: %s", err.msg);
}

/* ---- scrubber ---- */

static void expect_scrub(const struct al_audit *a, const char *in, const char *want)
{
    char out[1024];
    size_t n = al_audit_scrub(a, in, out, sizeof out);
    if (strcmp(out, want) != 0)
        fail_msg("scrub(\"%s\")\n  got  \"%s\"\n  want \"%s\"", in, out, want);
    assert_int_equal(n, strlen(want));
}

static void test_scrub_classes(void **state)
{
    struct fx *f = *state;
    const struct al_audit *a = f->a;
    expect_scrub(a, "write to jane.doe+x@mail.example.org today", "write to [EMAIL] today");
    expect_scrub(a, "call 555-123-4567 or (555) 123-4567", "call [PHONE] or [PHONE]");
    expect_scrub(a, "ring +44 20 7946 0958 or +1-555-123-4567.", "ring [PHONE] or [PHONE].");
    expect_scrub(a, "from 192.168.1.20, to 10.0.0.1", "from [IPV4], to [IPV4]");
    expect_scrub(a, "v6 2001:db8::8a2e:370:7334 and fe80::1%x and ::ffff:192.0.2.1",
                 "v6 [IPV6] and [IPV6]%x and [IPV6]");
    expect_scrub(a, "ssn 123-45-6789.", "ssn [SSN].");
    expect_scrub(a, "key al-2BseDFl88VYMcRc7FzuHh6EOi2DtOC7i and sk-proj-abcdefghijklmnop1234",
                 "key [SECRET] and [SECRET]");
    expect_scrub(a, "token 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 end",
                 "token [SECRET] end");
    expect_scrub(a, "auth dGhpcyBpcyBhIHNlY3JldCB0b2tlbiAxMjM0NTY3ODkw==.", "auth [SECRET].");
}

static void test_scrub_luhn(void **state)
{
    struct fx *f = *state;
    expect_scrub(f->a, "visa 4111 1111 1111 1111 ok", "visa [CARD] ok");
    expect_scrub(f->a, "visa 4111-1111-1111-1111", "visa [CARD]");
    expect_scrub(f->a, "amex 378282246310005", "amex [CARD]");
    /* one digit off: not Luhn-valid, left alone */
    expect_scrub(f->a, "visa 4111 1111 1111 1112 ok", "visa 4111 1111 1111 1112 ok");
    expect_scrub(f->a, "id 1234567890123456", "id 1234567890123456");
    /* a valid card followed by more digits after a space */
    expect_scrub(f->a, "4111 1111 1111 1111 2030", "[CARD] 2030");
}

static void test_scrub_no_false_positives(void **state)
{
    struct fx *f = *state;
    const char *plain[] = {
        "In 2023, 1500 people paid 12.50 each and 3 left at 10:30:45.",
        "Order 12345 shipped on 2024-01-15; invoice 2023-2024 total 1 500 000.",
        "Use std::vector and a::b, see section 3.2.1 and pi 3.14159 2.71828.",
        "The quick brown fox jumps over the lazy dog; ask at the desk.",
        "ISBN 978-3-16-148410-0 and the number 42 and 1e10 and 0x1F.",
        "A very long ordinary word: supercalifragilisticexpialidocious.",
        "Note: this is fine; a:b:c and ratio 16:9.",
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        expect_scrub(f->a, plain[i], plain[i]);
    /* SSN rules: area 000, 666 and 9xx are never issued */
    expect_scrub(f->a, "000-12-3456 666-12-3456 900-12-3456", "000-12-3456 666-12-3456 900-12-3456");
}

static void test_scrub_extra_patterns_and_cut(void **state)
{
    struct fx *f = *state;
    char path[4096];
    snprintf(path, sizeof path, "%s/pii.txt", f->home);
    const char *pats = "# site patterns\nEMPLOYEE_ID  EMP-[0-9]{6}\n\nPROJECT\tPRJ-[A-Z]{3}\n";
    tu_write_file(path, pats, strlen(pats));
    al_audit_free(f->a);
    f->a = open_audit(f->home, 0, true, path);
    expect_scrub(f->a, "EMP-123456 on PRJ-ABC mail a@b.io", "[EMPLOYEE_ID] on [PROJECT] mail [EMAIL]");
    /* the snprintf contract */
    char small[8];
    size_t n = al_audit_scrub(f->a, "mail a@b.io now", small, sizeof small);
    assert_int_equal(n, strlen("mail [EMAIL] now"));
    assert_string_equal(small, "mail [E");

    /* a bad pattern file is refused, naming the line */
    const char *bad = "OK x\nBAD (unclosed\n";
    tu_write_file(path, bad, strlen(bad));
    al_audit_free(f->a);
    f->a = NULL;
    struct al_audit_opts o = {true, 0, path};
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_audit_open(f->home, &o, &f->a, &err), AL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "pii.txt:2"));
    const char *lower = "lower x\n";
    tu_write_file(path, lower, strlen(lower));
    al_err_clear(&err);
    assert_int_equal(al_audit_open(f->home, &o, &f->a, &err), AL_ERR_INVALID);
    f->a = open_audit(f->home, 0, true, NULL);
}

/* ---- the chain ---- */

struct probs {
    size_t n, first_line;
    char first_msg[512];
};

static void on_problem(void *ud, const char *file, size_t line, const char *msg)
{
    struct probs *p = ud;
    if (p->n++ == 0) {
        p->first_line = line;
        snprintf(p->first_msg, sizeof p->first_msg, "%s", msg);
    }
}

static enum al_rc verify(const char *home, struct probs *p, size_t *records)
{
    memset(p, 0, sizeof *p);
    struct al_err err = AL_ERR_INIT;
    return al_audit_verify(home, on_problem, p, records, &err);
}

static char *day_file(const char *home, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    char day[16];
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    char *path = NULL;
    if (asprintf(&path, "%s/audit/audit-%s.jsonl", home, day) < 0)
        fail_msg("oom");
    return path;
}

/* Rewrites a file through a shell command on its lines (sed, awk, head). */
static void mangle(const char *path, const char *cmd)
{
    assert_int_equal(tu_system("%s '%s' > '%s.tmp' && mv '%s.tmp' '%s'", cmd, path, path, path, path), 0);
}

static void test_chain_detects_damage(void **state)
{
    struct fx *f = *state;
    al_audit__set_now(f->a, T0);
    for (int i = 0; i < 20; i++)
        append(f->a, i);
    struct probs p;
    size_t records = 0;
    assert_int_equal(verify(f->home, &p, &records), AL_OK);
    assert_int_equal(records, 20);
    char *path = day_file(f->home, T0);
    size_t len = 0;
    char *orig = tu_read_file(path, &len);
    assert_non_null(strstr(orig, "\"prompt\":\"hi\""));

    /* edited */
    mangle(path, "sed '7s/\"status\":200/\"status\":201/'");
    assert_int_equal(verify(f->home, &p, NULL), AL_ERR_CORRUPT);
    assert_int_equal(p.first_line, 7);
    assert_non_null(strstr(p.first_msg, "edited"));
    assert_int_equal(p.n, 1);
    tu_write_file(path, orig, len);

    /* deleted in the middle */
    mangle(path, "sed '12d'");
    assert_int_equal(verify(f->home, &p, NULL), AL_ERR_CORRUPT);
    assert_int_equal(p.first_line, 12);
    assert_non_null(strstr(p.first_msg, "record 12 before this line is missing (deleted)"));
    tu_write_file(path, orig, len);

    /* reordered */
    mangle(path, "awk 'NR==4{h=$0;next} NR==5{print;print h;next} {print}'");
    assert_int_equal(verify(f->home, &p, NULL), AL_ERR_CORRUPT);
    assert_int_equal(p.first_line, 4);
    assert_non_null(strstr(p.first_msg, "reordered"));
    tu_write_file(path, orig, len);

    /* truncated mid-line */
    tu_write_file(path, orig, len - 30);
    assert_int_equal(verify(f->home, &p, NULL), AL_ERR_CORRUPT);
    assert_int_equal(p.first_line, 20);
    assert_non_null(strstr(p.first_msg, "truncated"));

    /* truncated by whole lines: HEAD knows */
    mangle(path, "head -n 17");
    assert_int_equal(verify(f->home, &p, NULL), AL_ERR_CORRUPT);
    assert_non_null(strstr(p.first_msg, "records 18-20 are missing at the end (truncated)"));
    tu_write_file(path, orig, len);

    /* edited and re-hashed: the next line's prev gives it away */
    mangle(path, "python3 -c \"import hashlib,sys\nL=open(sys.argv[1]).read().split('\\n')\n"
                 "l=L[8].replace('alice','mallory')\nb=l[:-75]+'}'\n"
                 "L[8]=l[:-75]+',\\\"hash\\\":\\\"'+hashlib.sha256(b.encode()).hexdigest()+'\\\"}'\n"
                 "print('\\n'.join(L),end='')\"");
    assert_int_equal(verify(f->home, &p, NULL), AL_ERR_CORRUPT);
    assert_int_equal(p.first_line, 10);
    assert_non_null(strstr(p.first_msg, "does not follow"));
    tu_write_file(path, orig, len);

    assert_int_equal(verify(f->home, &p, NULL), AL_OK);
    free(orig);
    free(path);
}

/* Records the writer could not write are never a silent gap: counted in
 * HEAD at once (verify names them), then marked by a line of the chain the
 * next append writes first; a reopened log keeps the count from HEAD. */
static void test_lost_records_marked(void **state)
{
    struct fx *f = *state;
    al_audit__set_now(f->a, T0);
    for (int i = 0; i < 3; i++)
        append(f->a, i);
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_audit_note_lost(f->a, 2, "disk full", &err), AL_OK);
    struct probs p;
    assert_int_equal(verify(f->home, &p, NULL), AL_ERR_CORRUPT);
    assert_non_null(strstr(p.first_msg, "2 records were lost after record 3"));
    /* Another process (a restarted server) finds the count in HEAD. */
    al_audit_free(f->a);
    f->a = open_audit(f->home, 0, true, NULL);
    al_audit__set_now(f->a, T0);
    assert_int_equal(al_audit_note_lost(f->a, 1, "disk full", &err), AL_OK);
    append(f->a, 3);
    size_t records = 0;
    assert_int_equal(verify(f->home, &p, &records), AL_ERR_CORRUPT);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.first_line, 4);
    assert_non_null(strstr(p.first_msg, "3 records lost since 2030-01-01T00:00:00Z"));
    assert_int_equal(records, 5); /* 4 records and the marker, one chain */
    char *path = day_file(f->home, T0);
    size_t len = 0;
    char *text = tu_read_file(path, &len);
    assert_non_null(strstr(text, "{\"seq\":4,\"time\":\"2030-01-01T00:00:00.000Z\",\"lost\":3,"));
    assert_non_null(strstr(text, "{\"seq\":5,"));
    free(text);
    free(path);
    append(f->a, 4); /* no second marker */
    assert_int_equal(verify(f->home, &p, &records), AL_ERR_CORRUPT);
    assert_int_equal(p.n, 1);
    assert_int_equal(records, 6);
}

static void test_reopen_continues_and_trims(void **state)
{
    struct fx *f = *state;
    al_audit__set_now(f->a, T0);
    for (int i = 0; i < 3; i++)
        append(f->a, i);
    al_audit_free(f->a);
    /* a crash mid-write leaves a cut last line: the next open removes it */
    char *path = day_file(f->home, T0);
    FILE *fp = fopen(path, "a");
    fputs("{\"seq\":4,\"time\":\"20", fp);
    fclose(fp);
    f->a = open_audit(f->home, 0, false, NULL);
    al_audit__set_now(f->a, T0 + DAY);
    append(f->a, 3);
    struct probs p;
    size_t records = 0;
    assert_int_equal(verify(f->home, &p, &records), AL_OK);
    assert_int_equal(records, 4);
    /* capture off: no text */
    char *next = day_file(f->home, T0 + DAY);
    char *text = tu_read_file(next, NULL);
    assert_non_null(strstr(text, "\"seq\":4,"));
    assert_null(strstr(text, "\"prompt\""));
    free(text);
    /* two writers (two servers on one store) share one chain: each append
     * finds the true tail under the lock file */
    struct al_audit *second = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_audit_open(f->home, NULL, &second, &err), AL_OK);
    al_audit__set_now(second, T0 + DAY);
    append(second, 4);
    append(f->a, 5);
    append(second, 6);
    al_audit_free(second);
    assert_int_equal(verify(f->home, &p, &records), AL_OK);
    assert_int_equal(records, 7);
    free(path);
    free(next);
}

static void test_prune_keeps_chain(void **state)
{
    struct fx *f = *state;
    al_audit_free(f->a);
    f->a = open_audit(f->home, 7, false, NULL);
    time_t now = T0 + 20 * DAY;
    int days[] = {-12, -10, -5, 0};
    for (int d = 0; d < 4; d++) {
        al_audit__set_now(f->a, now + days[d] * DAY);
        for (int i = 0; i < 3; i++)
            append(f->a, d * 3 + i);
    }
    al_audit__set_now(f->a, now);
    struct al_err err = AL_ERR_INIT;
    /* prune records its anchor in the store's index, and never creates one */
    char dbpath[4096];
    struct al_index *made = NULL;
    snprintf(dbpath, sizeof dbpath, "%s/airlock.db", f->home);
    assert_int_equal(al_index_open(dbpath, &made, &err), AL_OK);
    al_index_free(made);
    assert_int_equal(al_audit_prune(f->a, &err), AL_OK);
    char *gone = day_file(f->home, now - 10 * DAY), *first = day_file(f->home, now - 5 * DAY);
    assert_false(access(gone, F_OK) == 0);
    char *text = tu_read_file(first, NULL);
    assert_true(strncmp(text, "{\"anchor\":true", 14) == 0);
    assert_non_null(strstr(text, "\"pruned_through_seq\":6,"));
    free(text);
    append(f->a, 99);
    struct probs p;
    size_t records = 0;
    assert_int_equal(verify(f->home, &p, &records), AL_OK);
    assert_int_equal(records, 7);
    /* pruning again changes nothing */
    assert_int_equal(al_audit_prune(f->a, &err), AL_OK);
    assert_int_equal(verify(f->home, &p, &records), AL_OK);

    /* an edited anchor is caught */
    size_t len = 0;
    char *orig = tu_read_file(first, &len);
    mangle(first, "sed '1s/\"pruned_through_seq\":6/\"pruned_through_seq\":5/'");
    assert_int_equal(verify(f->home, &p, NULL), AL_ERR_CORRUPT);
    assert_int_equal(p.first_line, 1);
    tu_write_file(first, orig, len);

    /* a forged anchor (re-hashed, chain re-written) is not in the event log */
    struct al_index *ix = NULL;
    char db[4096];
    snprintf(db, sizeof db, "%s/airlock.db", f->home);
    assert_int_equal(al_index_open(db, &ix, &err), AL_OK);
    struct al_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(al_index_list_events(ix, NULL, NULL, &ev, &n, &err), AL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ev[0].kind, "audit-prune");
    al_index_events_free(ev, n);
    al_index_free(ix);

    /* everything older than the window, today included: the anchor moves to a new file */
    al_audit__set_now(f->a, now + 30 * DAY);
    assert_int_equal(al_audit_prune(f->a, &err), AL_OK);
    assert_int_equal(verify(f->home, &p, &records), AL_OK);
    assert_int_equal(records, 0);
    append(f->a, 100);
    assert_int_equal(verify(f->home, &p, &records), AL_OK);
    assert_int_equal(records, 1);
    free(orig);
    free(gone);
    free(first);
}

struct worker {
    struct al_audit *a;
    int base;
};

static void *writer(void *p)
{
    struct worker *w = p;
    for (int i = 0; i < 100; i++)
        append(w->a, w->base + i);
    return NULL;
}

static void test_threads(void **state)
{
    struct fx *f = *state;
    pthread_t th[8];
    struct worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){f->a, i * 1000};
        pthread_create(&th[i], NULL, writer, &w[i]);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    struct probs p;
    size_t records = 0;
    assert_int_equal(verify(f->home, &p, &records), AL_OK);
    assert_int_equal(records, 800);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scrub_classes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scrub_luhn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scrub_no_false_positives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scrub_extra_patterns_and_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_detects_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_continues_and_trims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_records_marked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_keeps_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
