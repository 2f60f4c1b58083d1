/* Unit tests of src/access: API keys and the per-request check. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "access/access_int.h"

/* Interposes OpenSSL's CRYPTO_memcmp to prove the check uses it; same
 * contract: constant time in the length, 0 when equal. */
static int memcmp_calls;
int CRYPTO_memcmp(const void *a, const void *b, size_t len);
int CRYPTO_memcmp(const void *a, const void *b, size_t len)
{
    const unsigned char *x = a, *y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < len; i++)
        d |= x[i] ^ y[i];
    __atomic_add_fetch(&memcmp_calls, 1, __ATOMIC_SEQ_CST);
    return d != 0;
}

struct fx {
    char *home;
    struct al_index *ix;
    struct al_access *a;
};

static struct al_index *open_index(const char *home)
{
    char db[4096];
    snprintf(db, sizeof db, "%s/airlock.db", home);
    struct al_index *ix = NULL;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_index_open(db, &ix, &err), AL_OK);
    return ix;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->home = tu_mkdtemp();
    f->ix = open_index(f->home);
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_access_open(f->home, &f->a, &err), AL_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    al_access_free(f->a);
    al_index_free(f->ix);
    tu_rmrf(f->home);
    free(f->home);
    free(f);
    return 0;
}

static void create(struct fx *f, const char *name, const char *scopes, const char *models, const char *expires,
                   char token[AL_APIKEY_TOKEN_SIZE])
{
    struct al_apikey_spec spec = {name, scopes, models, expires};
    struct al_err err = AL_ERR_INIT;
    struct al_apikey_info info;
    assert_int_equal(al_apikey_create(f->ix, &spec, token, &info, &err), AL_OK);
    assert_int_equal(strlen(token), AL_APIKEY_TOKEN_LEN);
    assert_memory_equal(token, "al-", 3);
    assert_string_equal(info.state, "active");
}

/* Checks and returns the code; msg gets the message. */
static enum al_rc chk(struct fx *f, const char *token, const char *scope, const char *model, char who[128],
                      char msg[AL_ERR_MSG_MAX])
{
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_access_check(f->a, token, scope, model, who, &err);
    snprintf(msg, AL_ERR_MSG_MAX, "%s", err.msg);
    return rc;
}

static void test_open_until_first_key(void **state)
{
    struct fx *f = *state;
    char who[128], msg[AL_ERR_MSG_MAX];
    assert_false(al_access_required(f->a));
    assert_int_equal(chk(f, NULL, "chat", "llama", who, msg), AL_OK);
    assert_string_equal(who, "anonymous");
    al_access_set_required(f->a, true);
    assert_int_equal(chk(f, NULL, "chat", "llama", who, msg), AL_ERR_AUTH);
    assert_string_equal(msg, "invalid or missing API key");
    al_access_set_required(f->a, false);
    char tok[AL_APIKEY_TOKEN_SIZE];
    create(f, "alice", "chat", NULL, NULL, tok);
    assert_true(al_access_required(f->a)); /* seen through data_version, no reopen */
    assert_int_equal(chk(f, NULL, "chat", "llama", who, msg), AL_ERR_AUTH);
}

static void test_check_outcomes(void **state)
{
    struct fx *f = *state;
    char who[128], msg[AL_ERR_MSG_MAX], tok[AL_APIKEY_TOKEN_SIZE], other[AL_APIKEY_TOKEN_SIZE];
    create(f, "alice", "chat,embed", "llama*,qwen2:7b", "30d", tok);
    create(f, "bob", "chat", NULL, NULL, other);
    assert_string_not_equal(tok, other);

    assert_int_equal(chk(f, tok, "chat", "llama3:8b", who, msg), AL_OK);
    assert_string_equal(who, "alice");
    assert_int_equal(chk(f, tok, "embed", "qwen2:7b", who, msg), AL_OK);
    assert_int_equal(chk(f, tok, "embed", "qwen2", who, msg), AL_ERR_DENIED); /* pattern is qwen2:7b only */
    assert_int_equal(chk(f, tok, NULL, NULL, who, msg), AL_OK);

    /* 401s: all with one message, which says nothing about the key */
    const char *expect = "invalid or missing API key";
    assert_int_equal(chk(f, NULL, "chat", "llama", who, msg), AL_ERR_AUTH);
    assert_string_equal(msg, expect);
    assert_string_equal(who, "");
    assert_int_equal(chk(f, "", "chat", "llama", who, msg), AL_ERR_AUTH);
    assert_string_equal(msg, expect);
    assert_int_equal(chk(f, "Bearer nonsense", "chat", "llama", who, msg), AL_ERR_AUTH);
    assert_string_equal(msg, expect);

    /* wrong secret behind a real lookup id: compared in constant time */
    char wrong[AL_APIKEY_TOKEN_SIZE];
    memcpy(wrong, tok, sizeof wrong);
    wrong[AL_APIKEY_TOKEN_LEN - 1] = wrong[AL_APIKEY_TOKEN_LEN - 1] == 'a' ? 'b' : 'a';
    int before = memcmp_calls;
    assert_int_equal(chk(f, wrong, "chat", "llama", who, msg), AL_ERR_AUTH);
    assert_string_equal(msg, expect);
    assert_true(memcmp_calls > before);
    /* unknown lookup id: the same comparison still runs */
    memcpy(wrong, tok, sizeof wrong);
    wrong[3] = wrong[3] == 'Z' ? 'Y' : 'Z';
    before = memcmp_calls;
    assert_int_equal(chk(f, wrong, "chat", "llama", who, msg), AL_ERR_AUTH);
    assert_string_equal(msg, expect);
    assert_true(memcmp_calls > before);

    /* 403s: the key is valid, so the refusal names it (for the audit) */
    assert_int_equal(chk(f, other, "embed", "llama", who, msg), AL_ERR_DENIED);
    assert_string_equal(msg, "this key lacks the 'embed' scope");
    assert_string_equal(who, "bob");
    assert_int_equal(chk(f, tok, "chat", "mistral:7b", who, msg), AL_ERR_DENIED);
    assert_string_equal(msg, "this key may not use model 'mistral:7b'");
    assert_string_equal(who, "alice");
    assert_int_equal(chk(f, tok, "rag:docs", NULL, who, msg), AL_ERR_DENIED);
    assert_int_equal(chk(f, tok, "admin", NULL, who, msg), AL_ERR_DENIED);
}

static void test_revoked_expired(void **state)
{
    struct fx *f = *state;
    char who[128], msg[AL_ERR_MSG_MAX], tok[AL_APIKEY_TOKEN_SIZE], old[AL_APIKEY_TOKEN_SIZE];
    create(f, "alice", "chat", NULL, NULL, tok);
    assert_int_equal(chk(f, tok, "chat", "m", who, msg), AL_OK);

    /* revoked through another connection (another process in real life):
     * the open handle sees it on the next check */
    struct al_index *other = open_index(f->home);
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_apikey_revoke(other, "alice", &err), AL_OK);
    assert_int_equal(al_apikey_revoke(other, "alice", &err), AL_ERR_NOT_FOUND);
    al_index_free(other);
    assert_int_equal(chk(f, tok, "chat", "m", who, msg), AL_ERR_AUTH);
    assert_string_equal(msg, "invalid or missing API key");
    /* every key revoked: still closed */
    assert_true(al_access_required(f->a));
    assert_int_equal(chk(f, NULL, "chat", "m", who, msg), AL_ERR_AUTH);

    /* a name comes free again after revocation */
    create(f, "alice", "chat", NULL, NULL, tok);
    assert_int_equal(chk(f, tok, "chat", "m", who, msg), AL_OK);

    /* expired: created two days ago for one day */
    struct al_apikey_spec spec = {"old", "chat", NULL, "1d"};
    al_err_clear(&err);
    assert_int_equal(al_apikey__create_at(f->ix, &spec, time(NULL) - 2 * 86400, old, NULL, &err), AL_OK);
    assert_int_equal(chk(f, old, "chat", "m", who, msg), AL_ERR_AUTH);
    assert_string_equal(msg, "invalid or missing API key");

    struct al_apikey_info *rows = NULL;
    size_t n = 0;
    assert_int_equal(al_apikey_list(f->ix, &rows, &n, &err), AL_OK);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].state, "revoked");
    assert_string_equal(rows[1].state, "active");
    assert_string_equal(rows[2].state, "expired");
    for (size_t i = 0; i < n; i++) /* the listing never carries a secret */
        assert_int_equal(strlen(rows[i].id), 3 + AL_APIKEY_LOOKUP_LEN + 3);
    free(rows);

    /* create and revoke are in the event log */
    struct al_event *ev = NULL;
    assert_int_equal(al_index_list_events(f->ix, NULL, NULL, &ev, &n, &err), AL_OK);
    assert_int_equal(n, 4);
    assert_string_equal(ev[0].kind, "apikey-create");
    assert_string_equal(ev[1].kind, "apikey-revoke");
    assert_null(strstr(ev[0].detail, tok));
    al_index_events_free(ev, n);
}

static void test_scopes_and_patterns(void **state)
{
    struct fx *f = *state;
    assert_true(al_access__scope_ok("admin", "embed"));
    assert_true(al_access__scope_ok("admin", "rag:docs"));
    assert_true(al_access__scope_ok("chat,rag:*", "rag:docs"));
    assert_true(al_access__scope_ok("rag:docs", "rag:docs"));
    assert_false(al_access__scope_ok("rag:docs", "rag:hr"));
    assert_false(al_access__scope_ok("chat", "chatx"));
    assert_true(al_access__scope_ok("pull", "pull"));
    assert_true(al_access__scope_ok("admin", "pull"));
    assert_false(al_access__scope_ok("chat,metrics", "pull"));
    assert_true(al_access__model_ok("*", "anything:tag"));
    assert_true(al_access__model_ok("llama*", "llama3@sha256:00"));
    assert_true(al_access__model_ok("stories", "stories:1.0"));
    assert_false(al_access__model_ok("stories", "stories2"));

    char tok[AL_APIKEY_TOKEN_SIZE];
    struct al_err err = AL_ERR_INIT;
    const struct al_apikey_spec bad[] = {
        {"", "chat", NULL, NULL},        {"-x", "chat", NULL, NULL},     {"a b", "chat", NULL, NULL},
        {"k", "root", NULL, NULL},       {"k", "chat,", NULL, NULL},     {"k", "rag:", NULL, NULL},
        {"k", "chat", "a b", NULL},      {"k", "chat", ",", NULL},       {"k", "chat", NULL, "yesterday"},
        {"k", "chat", NULL, "2001-01-01"}, {"k", NULL, NULL, NULL},   {"k", "pulls", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        al_err_clear(&err);
        assert_int_equal(al_apikey_create(f->ix, &bad[i], tok, NULL, &err), AL_ERR_INVALID);
    }
    int64_t t = 0;
    assert_int_equal(al_access__parse_expiry("2030-01-02", 0, &t, &err), AL_OK);
    assert_int_equal(t, 1893542400);
    assert_int_equal(al_access__parse_expiry("2030-01-02T00:00:01Z", 0, &t, &err), AL_OK);
    assert_int_equal(t, 1893542401);
    /* Dates outside the calendar are refused, not rolled over (strptime and
     * timegm read 2031-02-29 as 1 March). */
    assert_int_equal(al_access__parse_expiry("2031-02-29", 0, &t, &err), AL_ERR_INVALID);
    assert_int_equal(al_access__parse_expiry("2030-04-31T00:00:00Z", 0, &t, &err), AL_ERR_INVALID);
    assert_int_equal(al_access__parse_expiry("2032-02-29", 0, &t, &err), AL_OK);
    assert_int_equal(al_access__parse_expiry("2h", 100, &t, &err), AL_OK);
    assert_int_equal(t, 7300);
}

struct worker {
    struct fx *f;
    const char *tok;
    int ok;
};

static void *hammer(void *p)
{
    struct worker *w = p;
    char who[128], msg[AL_ERR_MSG_MAX];
    for (int i = 0; i < 300; i++)
        if (chk(w->f, w->tok, "chat", "m", who, msg) == AL_OK && strcmp(who, "alice") == 0)
            w->ok++;
    return NULL;
}

static void test_threads(void **state)
{
    struct fx *f = *state;
    char tok[AL_APIKEY_TOKEN_SIZE], tok2[AL_APIKEY_TOKEN_SIZE];
    create(f, "alice", "chat", NULL, NULL, tok);
    pthread_t th[6];
    struct worker w[6];
    for (int i = 0; i < 6; i++) {
        w[i] = (struct worker){f, tok, 0};
        pthread_create(&th[i], NULL, hammer, &w[i]);
    }
    /* keys change under the checkers: each change makes them re-read */
    struct al_index *other = open_index(f->home);
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "k%d", i);
        struct al_apikey_spec spec = {name, "chat", NULL, NULL};
        struct al_err err = AL_ERR_INIT;
        assert_int_equal(al_apikey_create(other, &spec, tok2, NULL, &err), AL_OK);
    }
    al_index_free(other);
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].ok, 300);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_until_first_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scopes_and_patterns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
