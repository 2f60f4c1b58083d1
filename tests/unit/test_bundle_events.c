/*
 * Unit tests of the events an ingest records on a real store: a refused
 * bundle leaves exactly one "ingest-refused" event, and when that event
 * cannot be written the ingest says so instead of dropping it (the refusal
 * used to be appended with its result ignored). The failure is injected with
 * a trigger planted in the real airlock.db that aborts the insert.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "testutil.h"
#include "bundle/bundle.h"
#include "repo/repo.h"

struct fx {
    char *home;
    char bundle[4096];
    struct al_repo *r;
};

/* A plain bundle with checksums.txt but no signature: refused by ingest. */
static struct fx *fx_new(void)
{
    struct fx *f = calloc(1, sizeof *f);
    tu_store_new(&f->home, &f->r);
    char dir[2048], file[4096];
    snprintf(dir, sizeof dir, "%s/src", f->home);
    snprintf(file, sizeof file, "%s/notes.txt", dir);
    assert_int_equal(tu_system("mkdir -p '%s'", dir), 0);
    tu_write_file(file, "hello\n", 6);
    snprintf(f->bundle, sizeof f->bundle, "%s/unsigned.tar", f->home);
    assert_int_equal(tu_system("cd '%s' && sha256sum notes.txt > checksums.txt && tar cf '%s' checksums.txt notes.txt",
                               dir, f->bundle),
                     0);
    return f;
}

static void fx_free(struct fx *f)
{
    tu_store_free(f->home, f->r);
    free(f);
}

static size_t n_events(struct fx *f, const char *kind)
{
    struct al_event *ev = NULL;
    size_t n = 0, k = 0;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_repo_list_events(f->r, NULL, NULL, &ev, &n, &err), AL_OK);
    for (size_t i = 0; i < n; i++)
        k += strcmp(ev[i].kind, kind) == 0;
    al_index_events_free(ev, n);
    return k;
}

static void plant(struct fx *f, const char *sql)
{
    char db[4096];
    snprintf(db, sizeof db, "%s/airlock.db", f->home);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("plant: %s", msg ? msg : "?");
    sqlite3_close(h);
}

static void test_refusal_recorded(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct al_bundle_opts o = {.as = "notes:1"};
    struct al_bundle_report rep;
    struct al_err err = AL_ERR_INIT;
    assert_int_not_equal(al_bundle_ingest(f->r, f->bundle, &o, &rep, &err), AL_OK);
    al_bundle_report_release(&rep);
    assert_null(strstr(err.msg, "could not be recorded"));
    assert_int_equal(n_events(f, "ingest-refused"), 1);
    fx_free(f);
}

/* The event log refuses the refusal's event: the ingest fails with a message
 * that says the refusal is not on record, and nothing is recorded. */
static void test_refusal_record_failure_reported(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    plant(f, "CREATE TRIGGER no_refusals BEFORE INSERT ON events WHEN NEW.kind = 'ingest-refused' "
             "BEGIN SELECT RAISE(ABORT, 'planted failure'); END;");
    struct al_bundle_opts o = {.as = "notes:1"};
    struct al_bundle_report rep;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_bundle_ingest(f->r, f->bundle, &o, &rep, &err);
    al_bundle_report_release(&rep);
    assert_int_not_equal(rc, AL_OK);
    if (strstr(err.msg, "could not be recorded") == NULL)
        fail_msg("the lost refusal event is not reported: '%s'", err.msg);
    assert_non_null(strstr(err.msg, "planted failure"));
    assert_int_equal(n_events(f, "ingest-refused"), 0);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusal_recorded),
        cmocka_unit_test(test_refusal_record_failure_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
