/* Unit tests of src/index: refs, versions, tags, active pointers, event chain. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "index/index.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define D4 "sha256:4444444444444444444444444444444444444444444444444444444444444444"
#define D5 "sha256:5555555555555555555555555555555555555555555555555555555555555555"
#define D6 "sha256:6666666666666666666666666666666666666666666666666666666666666666"

static void test_ref_parse(void **state)
{
    struct al_ref r;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_index_ref_parse("llama", &r, &err), AL_OK);
    assert_string_equal(r.name, "llama");
    assert_string_equal(r.tag, "");
    assert_int_equal(al_index_ref_parse("org/llama-3.1:q4_0", &r, &err), AL_OK);
    assert_string_equal(r.name, "org/llama-3.1");
    assert_string_equal(r.tag, "q4_0");
    assert_int_equal(al_index_ref_parse("x@" D1, &r, &err), AL_OK);
    assert_string_equal(r.digest, D1);
    const char *bad[] = {"", "Upper", "../x", "a//b", "a/", "x:", "x:-bad", "x@sha256:12", "x:t@" D1, "a..b", "-a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        al_err_clear(&err);
        assert_int_not_equal(al_index_ref_parse(bad[i], &r, &err), AL_OK);
        assert_true(err.msg[0] != '\0');
    }
    char longname[400];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    al_err_clear(&err);
    assert_int_equal(al_index_ref_parse(longname, &r, &err), AL_ERR_LIMIT);
}

static struct al_index *open_ix(char **dir)
{
    *dir = tu_mkdtemp();
    char path[4096];
    snprintf(path, sizeof path, "%s/airlock.db", *dir);
    struct al_index *ix = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_index_open(path, &ix, &err), AL_OK);
    return ix;
}

static void test_versions_tags_active(void **state)
{
    char *dir;
    struct al_index *ix = open_ix(&dir);
    struct al_err err = AL_ERR_INIT;
    struct al_file f = {"m.gguf", D3, 10, "application/vnd.cncf.model.weight.v1.raw"};
    int64_t a = 0, b = 0, c = 0, prev = 0;
    assert_int_equal(al_index_begin(ix, &err), AL_OK);
    assert_int_equal(al_index_add_version(ix, "m", D1, 100, D3, 0, &f, 1, &a, &err), AL_OK);
    assert_int_equal(al_index_add_version(ix, "m", D2, 100, D3, 5, &f, 1, &b, &err), AL_OK);
    assert_int_equal(al_index_add_version(ix, "m", D1, 100, D3, 0, &f, 1, &c, &err), AL_ERR_EXISTS);
    al_err_clear(&err);
    assert_int_equal(c, a);
    assert_int_equal(al_index_set_tag(ix, "m", "1.0", a, &err), AL_OK);
    assert_int_equal(al_index_set_tag(ix, "m", "2.0", b, &err), AL_OK);
    assert_int_equal(al_index_set_active(ix, "m", b, &err), AL_OK);
    assert_int_equal(al_index_commit(ix, &err), AL_OK);

    struct al_version v;
    assert_int_equal(al_index_resolve(ix, "m", &v, &err), AL_OK);
    assert_int_equal(v.id, b);
    assert_true(v.active);
    assert_int_equal(al_index_resolve(ix, "m:1.0", &v, &err), AL_OK);
    assert_int_equal(v.id, a);
    assert_int_equal(al_index_resolve(ix, "m@" D2, &v, &err), AL_OK);
    assert_string_equal(v.tags, "2.0");
    assert_int_equal(al_index_previous_version(ix, b, &prev, &err), AL_OK);
    assert_int_equal(prev, a);
    assert_int_equal(al_index_previous_version(ix, a, &prev, &err), AL_ERR_NOT_FOUND);
    al_err_clear(&err);
    int64_t seq = 0;
    assert_int_equal(al_index_max_seq(ix, "m", &seq, &err), AL_OK);
    assert_int_equal(seq, 5);
    assert_int_equal(al_index_resolve(ix, "n", &v, &err), AL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "did you mean: m"));
    al_err_clear(&err);
    assert_int_equal(al_index_set_tag(ix, "m", "bad tag", a, &err), AL_ERR_INVALID);
    al_err_clear(&err);

    char(*refs)[AL_DIGEST_SIZE] = NULL;
    size_t n = 0;
    assert_int_equal(al_index_referenced(ix, &refs, &n, &err), AL_OK);
    assert_int_equal(n, 3);
    free(refs);
    al_index_free(ix);
    tu_rmrf(dir);
    free(dir);
}

/* The signature referrers a version arrived with (schema 3): listed per
 * version, counted as referenced (gc keeps them), gone with the version. */
static void test_referrers(void **state)
{
    char *dir;
    struct al_index *ix = open_ix(&dir);
    struct al_err err = AL_ERR_INIT;
    struct al_file f = {"m.gguf", D3, 10, "application/vnd.cncf.model.weight.v1.raw"};
    const char blobs[2][AL_DIGEST_SIZE] = {D4, D5};
    int64_t a = 0;
    assert_int_equal(al_index_begin(ix, &err), AL_OK);
    assert_int_equal(al_index_add_version(ix, "m", D1, 100, D2, 0, &f, 1, &a, &err), AL_OK);
    assert_int_equal(al_index_add_referrer(ix, a, D6, blobs, 2, &err), AL_OK);
    assert_int_equal(al_index_add_referrer(ix, a, D6, blobs, 2, &err), AL_OK); /* again: kept once */
    assert_int_equal(al_index_commit(ix, &err), AL_OK);
    char(*refs)[AL_DIGEST_SIZE] = NULL;
    size_t n = 0;
    assert_int_equal(al_index_referrers(ix, a, &refs, &n, &err), AL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(refs[0], D6);
    free(refs);
    assert_int_equal(al_index_referenced(ix, &refs, &n, &err), AL_OK);
    assert_int_equal(n, 6); /* manifest, config, file, the referrer and its two blobs */
    free(refs);
    assert_int_equal(al_index_begin(ix, &err), AL_OK);
    assert_int_equal(al_index_remove_version(ix, a, &err), AL_OK);
    assert_int_equal(al_index_commit(ix, &err), AL_OK);
    assert_int_equal(al_index_referenced(ix, &refs, &n, &err), AL_OK);
    assert_int_equal(n, 0);
    free(refs);
    al_index_free(ix);
    tu_rmrf(dir);
    free(dir);
}

static int problems;
static void count_problem(void *ud, int64_t id, const char *msg) { problems++; }

static void test_event_chain(void **state)
{
    char *dir;
    struct al_index *ix = open_ix(&dir);
    struct al_err err = AL_ERR_INIT;
    for (int i = 0; i < 5; i++)
        assert_int_equal(al_index_event_append(ix, "add", "m", D1, "{\"i\":1}", &err), AL_OK);
    size_t checked = 0;
    problems = 0;
    assert_int_equal(al_index_verify_events(ix, count_problem, NULL, &checked, &err), AL_OK);
    assert_int_equal(checked, 5);
    struct al_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(al_index_list_events(ix, "m", NULL, &ev, &n, &err), AL_OK);
    assert_int_equal(n, 5);
    assert_string_equal(ev[1].prev, ev[0].hash);
    al_index_events_free(ev, n);
    al_index_free(ix);

    /* go around SQLite's triggers, as an attacker with file access would */
    assert_int_equal(tu_system("sqlite3 '%s/airlock.db' \"DROP TRIGGER events_no_update;"
                               " UPDATE events SET detail='{}' WHERE id=3\"", dir), 0);
    {
        char path[4096];
        snprintf(path, sizeof path, "%s/airlock.db", dir);
        assert_int_equal(al_index_open(path, &ix, &err), AL_OK);
    }
    problems = 0;
    assert_int_equal(al_index_verify_events(ix, count_problem, NULL, &checked, &err), AL_ERR_CORRUPT);
    assert_int_equal(problems, 1);
    al_index_free(ix);
    tu_rmrf(dir);
    free(dir);
}

/* Only CREATE makes an index: EXISTING and READ_ONLY leave a missing or
 * empty file as it is (a lost index must not become a fresh one), and a
 * read-only index refuses every change. */
static void test_open_modes(void **state)
{
    char *dir = tu_mkdtemp();
    char path[4096];
    snprintf(path, sizeof path, "%s/airlock.db", dir);
    struct al_index *ix = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_index_open_mode(path, AL_INDEX_EXISTING, &ix, &err), AL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "is missing"));
    assert_int_equal(tu_system("test ! -e '%s'", path), 0);
    tu_write_file(path, "", 0);
    al_err_clear(&err);
    assert_int_equal(al_index_open_mode(path, AL_INDEX_READ_ONLY, &ix, &err), AL_ERR_NOT_FOUND);
    al_err_clear(&err);
    assert_int_equal(al_index_open_mode(path, AL_INDEX_EXISTING, &ix, &err), AL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "is empty"));
    assert_int_equal(tu_system("test ! -s '%s'", path), 0);

    assert_int_equal(al_index_open_mode(path, AL_INDEX_CREATE, &ix, &err), AL_OK);
    bool fresh = false, lost = true;
    assert_int_equal(al_index_never_recorded(ix, &fresh, &err), AL_OK);
    assert_true(fresh);
    assert_int_equal(al_index_event_append(ix, "index-rebuilt", "", "", NULL, &err), AL_OK);
    assert_int_equal(al_index_never_recorded(ix, &fresh, &err), AL_OK);
    assert_false(fresh);
    assert_int_equal(al_index_keys_lost(ix, &lost, &err), AL_OK);
    assert_true(lost);
    al_index_free(ix);

    assert_int_equal(al_index_open_mode(path, AL_INDEX_READ_ONLY, &ix, &err), AL_OK);
    assert_true(al_index_read_only(ix));
    struct al_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(al_index_list_events(ix, NULL, NULL, &ev, &n, &err), AL_OK);
    assert_int_equal(n, 1);
    al_index_events_free(ev, n);
    al_err_clear(&err);
    assert_int_equal(al_index_event_append(ix, "add", "m", D1, NULL, &err), AL_ERR_DENIED);
    assert_non_null(strstr(err.msg, "read-only"));
    al_index_free(ix);
    tu_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_parse),
        cmocka_unit_test(test_versions_tags_active),
        cmocka_unit_test(test_referrers),
        cmocka_unit_test(test_event_chain),
        cmocka_unit_test(test_open_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
