/*
 * Unit tests of src/trust (trust.h) on a real store: minisign keys made by
 * our own keygen, OpenPGP keys made by the real gpg in a throwaway home. The
 * policy's rules (patterns, thresholds, revocation, key ids), every refusal
 * leaving keys.json and the event log as they were, and a damaged policy
 * file refused rather than read as empty.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "core/limits.h"
#include "index/index.h"
#include "repo/repo.h"
#include "sign/minisign.h"
#include "trust/trust.h"

struct fx {
    char *home;
    struct al_repo *r;
    char policy[4096];
};

static struct fx *fx_new(void)
{
    struct fx *f = calloc(1, sizeof *f);
    tu_store_new(&f->home, &f->r);
    snprintf(f->policy, sizeof f->policy, "%s/trust/keys.json", f->home);
    return f;
}

static void fx_free(struct fx *f)
{
    tu_system("gpgconf --homedir '%s/trust/gnupg' --kill all >/dev/null 2>&1", f->home);
    tu_store_free(f->home, f->r);
    free(f);
}

/* A fresh minisign public key file's content (malloc'd). */
static char *minisign_pub(void)
{
    char *pub = NULL, *sec = NULL;
    struct al_err err = AL_ERR_INIT;
    if (al_minisign_keygen(NULL, &pub, &sec, &err))
        fail_msg("keygen: %s", err.msg);
    free(sec);
    return pub;
}

static size_t n_events(struct fx *f, char *last_kind, char **last_detail)
{
    struct al_event *ev = NULL;
    size_t n = 0;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_repo_list_events(f->r, NULL, NULL, &ev, &n, &err), AL_OK);
    if (last_kind)
        snprintf(last_kind, 32, "%s", n ? ev[n - 1].kind : "");
    if (last_detail)
        *last_detail = n && ev[n - 1].detail ? strdup(ev[n - 1].detail) : NULL;
    al_index_events_free(ev, n);
    return n;
}

static void test_empty_policy(void **state)
{
    struct fx *f = fx_new();
    struct al_trust t;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_trust_load(f->r, &t, &err), AL_OK);
    assert_int_equal(t.n, 0);
    char want[4200];
    snprintf(want, sizeof want, "%s/trust/gnupg", f->home);
    assert_string_equal(t.gnupg, want);
    assert_null(al_trust_find(&t, "0123456789ABCDEF"));
    assert_int_equal(al_trust_threshold(&t, "anything"), 1);
    al_trust_release(&t);
    assert_null(t.keys);
    assert_int_equal(t.n, 0);
    al_trust_release(&t); /* twice: harmless */
    assert_string_equal(al_trust_kind_name(AL_TRUST_MINISIGN), "minisign");
    assert_string_equal(al_trust_kind_name(AL_TRUST_GPG), "gpg");
    fx_free(f);
}

static void test_minisign_keys(void **state)
{
    struct fx *f = fx_new();
    char *pa = minisign_pub(), *pb = minisign_pub();
    struct al_trust_key k;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_trust_add(f->r, "alice", AL_TRUST_MINISIGN, pa, strlen(pa), "stories*", 2, &k, &err), AL_OK);
    assert_string_equal(k.name, "alice");
    assert_int_equal(k.kind, AL_TRUST_MINISIGN);
    assert_int_equal(strlen(k.id), 16);
    /* the id the file's comment shows (minisign prints it without leading zeros) */
    const char *shown = k.id;
    while (*shown == '0' && shown[1])
        shown++;
    char comment[128];
    snprintf(comment, sizeof comment, "minisign public key %s\n", shown);
    assert_non_null(strstr(pa, comment));
    assert_string_equal(k.models, "stories*");
    assert_int_equal(k.threshold, 2);
    assert_false(k.revoked);
    assert_int_equal(strlen(k.added), 24); /* ISO 8601 with milliseconds */
    char kind[32];
    char *detail = NULL;
    assert_int_equal(n_events(f, kind, &detail), 1);
    assert_string_equal(kind, "trust-add");
    assert_non_null(strstr(detail, "\"name\":\"alice\""));
    free(detail);
    /* defaults: every model, threshold 1; the bare base64 line is a key too */
    char *line = strchr(pb, '\n') + 1;
    assert_int_equal(al_trust_add(f->r, "bob.b-1_x@y", AL_TRUST_MINISIGN, line, strlen(line), NULL, 0, NULL, &err),
                     AL_OK);

    struct al_trust t;
    assert_int_equal(al_trust_load(f->r, &t, &err), AL_OK);
    assert_int_equal(t.n, 2);
    const struct al_trust_key *a = al_trust_find(&t, k.id);
    assert_non_null(a);
    assert_string_equal(a->name, "alice");
    assert_memory_equal(a->pub.id, k.pub.id, sizeof k.pub.id);
    assert_memory_equal(a->pub.pk, k.pub.pk, sizeof k.pub.pk);
    char lower[17];
    for (int i = 0; i < 17; i++)
        lower[i] = (char)(k.id[i] >= 'A' && k.id[i] <= 'F' ? k.id[i] + 32 : k.id[i]);
    assert_ptr_equal(al_trust_find(&t, lower), a); /* without case */
    const struct al_trust_key *b = al_trust_find(&t, t.keys[1].id);
    assert_string_equal(b->models, "*");
    assert_int_equal(b->threshold, 1);
    assert_null(al_trust_find(&t, "0000000000000000"));
    assert_null(al_trust_find(&t, k.id + 8)); /* a minisign id is never matched by its end */
    assert_true(al_trust_allows(a, "stories"));
    assert_true(al_trust_allows(a, "stories-1/x"));
    assert_false(al_trust_allows(a, "llama"));
    assert_true(al_trust_allows(b, "llama"));
    /* the largest threshold of the keys allowed for the model */
    assert_int_equal(al_trust_threshold(&t, "stories"), 2);
    assert_int_equal(al_trust_threshold(&t, "llama"), 1);
    al_trust_release(&t);
    free(pa);
    free(pb);
    fx_free(f);
}

/* keys.json and the event log, to show a refusal changed nothing. */
struct snap {
    char *policy;
    size_t events;
};

static void snap_take(struct fx *f, struct snap *s)
{
    s->policy = tu_read_file(f->policy, NULL);
    s->events = n_events(f, NULL, NULL);
}

static void snap_same(struct fx *f, struct snap *s)
{
    char *now = tu_read_file(f->policy, NULL);
    assert_string_equal(now ? now : "(none)", s->policy ? s->policy : "(none)");
    assert_int_equal(n_events(f, NULL, NULL), s->events);
    free(now);
    free(s->policy);
    s->policy = NULL;
}

static void test_add_refusals(void **state)
{
    struct fx *f = fx_new();
    char *pa = minisign_pub(), *pb = minisign_pub();
    struct al_err err = AL_ERR_INIT;
    struct snap s;
    /* refusals before any policy exists create none */
    snap_take(f, &s);
    assert_int_equal(al_trust_add(f->r, "x", AL_TRUST_MINISIGN, "nonsense", 8, NULL, 1, NULL, &err), AL_ERR_INVALID);
    snap_same(f, &s);
    assert_int_equal(al_trust_add(f->r, "alice", AL_TRUST_MINISIGN, pa, strlen(pa), NULL, 1, NULL, &err), AL_OK);

    char long_name[AL_TRUST_NAME_MAX + 2], long_pattern[AL_TRUST_PATTERN_MAX + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    memset(long_pattern, '*', sizeof long_pattern - 1);
    long_pattern[sizeof long_pattern - 1] = '\0';
    char *huge = calloc(1, AL_LIMIT_PGP_KEY + 2);
    struct {
        const char *name, *data, *models;
        size_t len;
        int threshold;
        enum al_rc rc;
        const char *msg;
    } bad[] = {
        {"bad name", pb, NULL, 0, 1, AL_ERR_USAGE, "'bad name' is not a key name"},
        {"", pb, NULL, 0, 1, AL_ERR_USAGE, "'' is not a key name"},
        {"../x", pb, NULL, 0, 1, AL_ERR_USAGE, "is not a key name"},
        {long_name, pb, NULL, 0, 1, AL_ERR_USAGE, "at most 64"},
        {"bob", pb, long_pattern, 0, 1, AL_ERR_LIMIT, "model pattern over 255 characters"},
        {"bob", pb, NULL, 0, 65, AL_ERR_USAGE, "threshold 65 is not between 1 and 64"},
        {"bob", pb, NULL, 0, -1, AL_ERR_USAGE, "threshold -1"},
        {"bob", huge, NULL, AL_LIMIT_PGP_KEY + 1, 1, AL_ERR_LIMIT, "key file over"},
        {"bob", "untrusted comment: x\nAAAA\n", NULL, 0, 1, AL_ERR_INVALID, ""},
        {"alice", pb, NULL, 0, 1, AL_ERR_EXISTS, "a trusted key named 'alice' exists already; remove it first"},
        {"bob", pa, NULL, 0, 1, AL_ERR_EXISTS, "is trusted already as 'alice'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snap_take(f, &s);
        struct al_trust_key out;
        memset(&out, 0x5a, sizeof out);
        al_err_clear(&err);
        size_t len = bad[i].len ? bad[i].len : strlen(bad[i].data);
        enum al_rc rc = al_trust_add(f->r, bad[i].name, AL_TRUST_MINISIGN, bad[i].data, len, bad[i].models,
                                     bad[i].threshold, &out, &err);
        if (rc != bad[i].rc || !strstr(err.msg, bad[i].msg))
            fail_msg("case %zu: rc %d '%s', wanted %d with '%s'", i, rc, err.msg, bad[i].rc, bad[i].msg);
        assert_int_equal((unsigned char)out.name[0], 0x5a); /* out untouched */
        snap_same(f, &s);
    }
    free(huge);
    free(pa);
    free(pb);
    fx_free(f);
}

static void test_revoke_remove(void **state)
{
    struct fx *f = fx_new();
    char *pa = minisign_pub(), *pb = minisign_pub();
    struct al_err err = AL_ERR_INIT;
    struct al_trust_key ka;
    assert_int_equal(al_trust_add(f->r, "alice", AL_TRUST_MINISIGN, pa, strlen(pa), "m*", 3, &ka, &err), AL_OK);
    assert_int_equal(al_trust_add(f->r, "bob", AL_TRUST_MINISIGN, pb, strlen(pb), "*", 2, NULL, &err), AL_OK);
    struct al_trust t;
    assert_int_equal(al_trust_load(f->r, &t, &err), AL_OK);
    assert_int_equal(al_trust_threshold(&t, "m1"), 3);
    al_trust_release(&t);

    assert_int_equal(al_trust_revoke(f->r, "alice", &err), AL_OK);
    char kind[32];
    n_events(f, kind, NULL);
    assert_string_equal(kind, "trust-revoke");
    assert_int_equal(al_trust_load(f->r, &t, &err), AL_OK);
    const struct al_trust_key *a = al_trust_find(&t, ka.id);
    assert_non_null(a); /* kept, so that what it signed stays refused */
    assert_true(a->revoked);
    assert_int_equal(strlen(a->revoked_at), 24);
    assert_int_equal(al_trust_threshold(&t, "m1"), 2); /* a revoked key sets no threshold */
    al_trust_release(&t);

    struct snap s;
    snap_take(f, &s);
    assert_int_equal(al_trust_revoke(f->r, "alice", &err), AL_ERR_EXISTS);
    assert_non_null(strstr(err.msg, "key 'alice' is revoked already"));
    snap_same(f, &s);
    snap_take(f, &s);
    al_err_clear(&err);
    assert_int_equal(al_trust_revoke(f->r, "carol", &err), AL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no trusted key named 'carol'; see 'airlock trust ls'"));
    snap_same(f, &s);
    snap_take(f, &s);
    al_err_clear(&err);
    assert_int_equal(al_trust_remove(f->r, "carol", &err), AL_ERR_NOT_FOUND);
    snap_same(f, &s);

    al_err_clear(&err);
    assert_int_equal(al_trust_remove(f->r, "alice", &err), AL_OK);
    n_events(f, kind, NULL);
    assert_string_equal(kind, "trust-rm");
    assert_int_equal(al_trust_load(f->r, &t, &err), AL_OK);
    assert_int_equal(t.n, 1);
    assert_null(al_trust_find(&t, ka.id));
    assert_string_equal(t.keys[0].name, "bob");
    al_trust_release(&t);
    /* forgotten entirely: the same key may be added again */
    assert_int_equal(al_trust_add(f->r, "alice2", AL_TRUST_MINISIGN, pa, strlen(pa), NULL, 1, NULL, &err), AL_OK);
    assert_int_equal(n_events(f, NULL, NULL), 5);
    free(pa);
    free(pb);
    fx_free(f);
}

static void test_damaged_policy(void **state)
{
    struct fx *f = fx_new();
    char *pa = minisign_pub();
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_trust_add(f->r, "alice", AL_TRUST_MINISIGN, pa, strlen(pa), NULL, 1, NULL, &err), AL_OK);
    const char *bad[][2] = {
        {"not json", "is malformed"},
        {"{\"keys\": {}}", "is malformed"},
        {"{\"keys\": [{\"name\":\"a\",\"kind\":\"ssh\",\"id\":\"x\",\"models\":\"*\",\"threshold\":1}]}",
         "key 'a' has unknown kind 'ssh'"},
        {"{\"keys\": [{\"name\":\"a\",\"kind\":\"gpg\",\"id\":\"x\",\"models\":\"*\",\"threshold\":0}]}",
         "a key entry is malformed"},
        {"{\"keys\": [{\"name\":\"a b\",\"kind\":\"gpg\",\"id\":\"x\",\"models\":\"*\",\"threshold\":1}]}",
         "a key entry is malformed"},
        {"{\"keys\": [{\"name\":\"a\",\"kind\":\"minisign\",\"id\":\"x\",\"models\":\"*\",\"threshold\":1,"
         "\"key\":\"AAAA\"}]}", "key 'a' has no valid minisign public key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_write_file(f->policy, bad[i][0], strlen(bad[i][0]));
        struct al_trust t;
        memset(&t, 0x5a, sizeof t);
        al_err_clear(&err);
        assert_int_equal(al_trust_load(f->r, &t, &err), AL_ERR_CORRUPT);
        if (!strstr(err.msg, bad[i][1]))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i][1]);
        assert_null(t.keys);
        assert_int_equal(t.n, 0);
        /* a change on a damaged policy is refused, not written over it */
        size_t events = n_events(f, NULL, NULL);
        al_err_clear(&err);
        assert_int_equal(al_trust_revoke(f->r, "alice", &err), AL_ERR_CORRUPT);
        char *now = tu_read_file(f->policy, NULL);
        assert_string_equal(now, bad[i][0]);
        free(now);
        assert_int_equal(n_events(f, NULL, NULL), events);
    }
    free(pa);
    fx_free(f);
}

/* The roll-forward of keys.json.pending (trust.h), in the two states a kill
 * leaves: the change committed but not renamed into place (the pending file
 * is in force, and the next change moves it), and the change never committed
 * (the pending file counts for nothing, and the next change removes it). */
static void test_pending_roll_forward(void **state)
{
    struct fx *f = fx_new();
    char *pa = minisign_pub(), *pb = minisign_pub();
    struct al_err err = AL_ERR_INIT;
    char pending[4200];
    snprintf(pending, sizeof pending, "%s.pending", f->policy);
    assert_int_equal(al_trust_add(f->r, "alice", AL_TRUST_MINISIGN, pa, strlen(pa), NULL, 1, NULL, &err), AL_OK);
    size_t p1_len = 0;
    char *p1 = tu_read_file(f->policy, &p1_len);
    assert_int_equal(al_trust_add(f->r, "bob", AL_TRUST_MINISIGN, pb, strlen(pb), NULL, 1, NULL, &err), AL_OK);
    char *detail = NULL;
    n_events(f, NULL, &detail);
    assert_non_null(strstr(detail, "\"policy\":\"sha256:")); /* the event names the policy it made */
    free(detail);
    assert_null(tu_read_file(pending, NULL));

    /* killed after the commit of "add bob", before the rename */
    assert_int_equal(rename(f->policy, pending), 0);
    tu_write_file(f->policy, p1, p1_len);
    struct al_trust t;
    assert_int_equal(al_trust_load(f->r, &t, &err), AL_OK);
    assert_int_equal(t.n, 2); /* bob's addition is in force */
    al_trust_release(&t);
    char *now = tu_read_file(f->policy, NULL);
    assert_string_equal(now, p1); /* a load writes nothing */
    free(now);
    assert_int_equal(al_trust_revoke(f->r, "alice", &err), AL_OK);
    assert_null(tu_read_file(pending, NULL));
    assert_int_equal(al_trust_load(f->r, &t, &err), AL_OK);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.keys[1].name, "bob");
    assert_true(t.keys[0].revoked);
    al_trust_release(&t);

    /* killed before the commit: a whole pending file no event names */
    const char *stale = "{\"keys\": [], \"version\": 1}";
    tu_write_file(pending, stale, strlen(stale));
    size_t events = n_events(f, NULL, NULL);
    assert_int_equal(al_trust_load(f->r, &t, &err), AL_OK);
    assert_int_equal(t.n, 2); /* ignored */
    al_trust_release(&t);
    assert_int_equal(al_trust_remove(f->r, "bob", &err), AL_OK);
    assert_null(tu_read_file(pending, NULL)); /* removed by the change */
    assert_int_equal(n_events(f, NULL, NULL), events + 1);
    assert_int_equal(al_trust_load(f->r, &t, &err), AL_OK);
    assert_int_equal(t.n, 1);
    assert_string_equal(t.keys[0].name, "alice");
    al_trust_release(&t);
    free(p1);
    free(pa);
    free(pb);
    fx_free(f);
}

/* OpenPGP keys: made by the real gpg, imported into the store's keyring. */
static void test_gpg_keys(void **state)
{
    if (tu_system("command -v gpg >/dev/null 2>&1") != 0)
        fail_msg("gpg is missing (scripts/bootstrap.sh installs gnupg)");
    struct fx *f = fx_new();
    char gh[4200];
    snprintf(gh, sizeof gh, "%s/signer", f->home);
    const char *g = "gpg --batch --quiet --homedir";
    int rc = tu_system("set -e; mkdir -m 700 '%s'; cd '%s'; "
                       "%s . --passphrase '' --pinentry-mode loopback --quick-gen-key 'A <a@example.org>' "
                       "ed25519 sign never 2>/dev/null; "
                       "%s . --passphrase '' --pinentry-mode loopback --quick-gen-key 'B <b@example.org>' "
                       "ed25519 sign never 2>/dev/null; "
                       "%s . --armor --export a@example.org > a.asc; %s . --armor --export > both.asc; "
                       "%s . --with-colons --list-keys a@example.org | awk -F: '/^fpr/ {print $10; exit}' "
                       "| tr -d '\\n' > a.fpr",
                       gh, gh, g, g, g, g, g);
    if (rc != 0)
        fail_msg("gpg setup failed (%d)", rc);
    char p[4300];
    size_t len = 0;
    snprintf(p, sizeof p, "%s/a.fpr", gh);
    char *fpr = tu_read_file(p, NULL);
    snprintf(p, sizeof p, "%s/a.asc", gh);
    char *a = tu_read_file(p, &len);
    struct al_err err = AL_ERR_INIT;
    struct al_trust_key k;
    assert_int_equal(al_trust_add(f->r, "release", AL_TRUST_GPG, a, len, "stories", 1, &k, &err), AL_OK);
    assert_int_equal(k.kind, AL_TRUST_GPG);
    assert_string_equal(k.id, fpr);
    struct stat st;
    char ring[4200];
    snprintf(ring, sizeof ring, "%s/trust/gnupg", f->home);
    assert_int_equal(stat(ring, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    struct al_trust t;
    assert_int_equal(al_trust_load(f->r, &t, &err), AL_OK);
    assert_non_null(al_trust_find(&t, fpr));
    /* an OpenPGP key id (16 hex digits) matches the end of the fingerprint, without case */
    char keyid[17];
    size_t fl = strlen(fpr);
    for (int i = 0; i < 16; i++)
        keyid[i] = (char)(fpr[fl - 16 + i] >= 'A' && fpr[fl - 16 + i] <= 'F' ? fpr[fl - 16 + i] + 32
                                                                             : fpr[fl - 16 + i]);
    keyid[16] = '\0';
    assert_non_null(al_trust_find(&t, keyid));
    assert_null(al_trust_find(&t, fpr + fl - 8)); /* a shorter suffix is not a key id */
    al_trust_release(&t);

    /* a file with two keys is refused: which one would be trusted? */
    snprintf(p, sizeof p, "%s/both.asc", gh);
    char *both = tu_read_file(p, &len);
    struct snap s;
    snap_take(f, &s);
    assert_int_equal(al_trust_add(f->r, "two", AL_TRUST_GPG, both, len, NULL, 1, NULL, &err), AL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "must hold exactly one openpgp public key"));
    snap_same(f, &s);
    /* the same key under another name */
    snap_take(f, &s);
    snprintf(p, sizeof p, "%s/a.asc", gh);
    al_err_clear(&err);
    assert_int_equal(al_trust_add(f->r, "again", AL_TRUST_GPG, a, strlen(a), NULL, 1, NULL, &err), AL_ERR_EXISTS);
    assert_non_null(strstr(err.msg, "is trusted already as 'release'"));
    snap_same(f, &s);
    free(both);
    free(a);
    free(fpr);
    tu_system("gpgconf --homedir '%s' --kill all >/dev/null 2>&1", gh);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_policy),
        cmocka_unit_test(test_minisign_keys),
        cmocka_unit_test(test_add_refusals),
        cmocka_unit_test(test_revoke_remove),
        cmocka_unit_test(test_damaged_policy),
        cmocka_unit_test(test_pending_roll_forward),
        cmocka_unit_test(test_gpg_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
