/* Unit tests of src/sign/pgp: detached OpenPGP signatures made by the real
 * gpg in a throwaway home, verified against a separate dedicated keyring. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "core/err.h"
#include "sign/pgp.h"

struct fx {
    char *dir;    /* everything lives below */
    char *signer; /* GnuPG home with the signing key */
    char *fpr;    /* its fingerprint */
    char *msg;
    size_t msglen;
};

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        fail_msg("out of memory");
    va_end(ap);
    return s;
}

static char *readf(const struct fx *f, const char *name, size_t *len)
{
    char *p = xasprintf("%s/%s", f->dir, name);
    char *s = tu_read_file(p, len);
    if (s == NULL)
        fail_msg("cannot read %s", p);
    free(p);
    return s;
}

/* A fresh, empty keyring home below the fixture directory. */
static char *new_home(const struct fx *f, const char *name)
{
    char *h = xasprintf("%s/%s", f->dir, name);
    if (mkdir(h, 0700) != 0)
        fail_msg("cannot create %s", h);
    return h;
}

static void kill_agent(const char *home)
{
    tu_system("gpgconf --homedir '%s' --kill all >/dev/null 2>&1", home);
}

static int setup(void **state)
{
    if (tu_system("command -v gpg >/dev/null 2>&1 && command -v gpgconf >/dev/null 2>&1") != 0) {
        *state = NULL;
        return 0;
    }
    struct fx *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp();
    f->signer = xasprintf("%s/signer", f->dir);
    const char *g = "gpg --batch --quiet --homedir";
    int rc = tu_system(
        "set -e; cd '%s'; mkdir -m 700 signer; "
        "%s signer --passphrase '' --pinentry-mode loopback --quick-gen-key 'Airlock Test <t@example.org>' "
        "ed25519 sign never 2>/dev/null; "
        "printf '0123  model.gguf\\n' > checksums.txt; "
        "%s signer --armor --export > key.asc; %s signer --export > key.gpg; "
        "%s signer --passphrase '' --pinentry-mode loopback --armor --export-secret-keys > secret.asc; "
        "%s signer --detach-sign --armor -o checksums.txt.asc checksums.txt; "
        "%s signer --detach-sign -o checksums.txt.sig checksums.txt; "
        "%s signer --with-colons --list-keys | awk -F: '/^fpr/ {print $10; exit}' | tr -d '\\n' > fpr",
        f->dir, g, g, g, g, g, g, g);
    if (rc != 0)
        fail_msg("gpg setup failed (%d)", rc);
    f->fpr = readf(f, "fpr", NULL);
    f->msg = readf(f, "checksums.txt", &f->msglen);
    assert_int_equal(strlen(f->fpr), 40);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f == NULL)
        return 0;
    kill_agent(f->signer);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f->signer);
    free(f->fpr);
    free(f->msg);
    free(f);
    return 0;
}

static void test_verify_good(void **state)
{
    struct fx *f = *state;
    if (f == NULL)
        tu_skip("gpg or gpgconf missing (scripts/bootstrap.sh installs gnupg)");
    struct al_err err = AL_ERR_INIT;
    char *home = new_home(f, "trust-good");
    size_t keylen, siglen, n = 0;
    char *key = readf(f, "key.asc", &keylen);
    size_t imported = 0;
    assert_int_equal(al_pgp_import(home, key, keylen, &imported, &err), AL_OK);
    assert_int_equal(imported, 1);

    struct al_pgp_signer *s = NULL;
    const char *sigs[] = {"checksums.txt.asc", "checksums.txt.sig"};
    for (int i = 0; i < 2; i++) {
        char *sig = readf(f, sigs[i], &siglen);
        assert_int_equal(al_pgp_verify(home, f->msg, f->msglen, sig, siglen, &s, &n, &err), AL_OK);
        assert_int_equal(n, 1);
        assert_true(s[0].good);
        assert_string_equal(s[0].fpr, f->fpr);
        assert_string_equal(s[0].status, "good");
        assert_true(s[0].created > 0);
        free(s);
        free(sig);
    }
    kill_agent(home);
    free(key);
    free(home);
}

static void test_binary_key_and_tamper(void **state)
{
    struct fx *f = *state;
    if (f == NULL)
        tu_skip("gpg or gpgconf missing (scripts/bootstrap.sh installs gnupg)");
    struct al_err err = AL_ERR_INIT;
    char *home = new_home(f, "trust-tamper");
    size_t keylen, siglen, n = 0;
    char *key = readf(f, "key.gpg", &keylen);
    assert_int_equal(al_pgp_import(home, key, keylen, NULL, &err), AL_OK);
    char *sig = readf(f, "checksums.txt.asc", &siglen);
    struct al_pgp_signer *s = NULL;
    char *bad = strdup(f->msg);
    bad[0] ^= 1;
    assert_int_equal(al_pgp_verify(home, bad, f->msglen, sig, siglen, &s, &n, &err), AL_ERR_VERIFY);
    assert_non_null(strstr(err.msg, "bad signature"));
    assert_int_equal(n, 1);
    assert_false(s[0].good);
    free(s);
    kill_agent(home);
    free(bad);
    free(sig);
    free(key);
    free(home);
}

static void test_unknown_key(void **state)
{
    struct fx *f = *state;
    if (f == NULL)
        tu_skip("gpg or gpgconf missing (scripts/bootstrap.sh installs gnupg)");
    struct al_err err = AL_ERR_INIT;
    char *home = new_home(f, "trust-empty");
    size_t siglen, n = 0;
    char *sig = readf(f, "checksums.txt.asc", &siglen);
    struct al_pgp_signer *s = NULL;
    assert_int_equal(al_pgp_verify(home, f->msg, f->msglen, sig, siglen, &s, &n, &err), AL_ERR_DENIED);
    assert_non_null(strstr(err.msg, "which is not in the keyring"));
    assert_int_equal(n, 1);
    assert_false(s[0].good);
    assert_string_equal(s[0].status, "no public key");
    /* GnuPG 2.2 signatures carry the issuer's fingerprint. */
    assert_non_null(strstr(f->fpr, s[0].fpr));
    free(s);
    kill_agent(home);
    free(sig);
    free(home);
}

static void test_bad_input(void **state)
{
    struct fx *f = *state;
    if (f == NULL)
        tu_skip("gpg or gpgconf missing (scripts/bootstrap.sh installs gnupg)");
    struct al_err err = AL_ERR_INIT;
    char *home = new_home(f, "trust-bad");
    struct al_pgp_signer *s = NULL;
    size_t n = 0, len;

    assert_int_equal(al_pgp_verify(home, "m", 1, "hello", 5, &s, &n, &err), AL_ERR_INVALID);
    assert_null(s);
    al_err_clear(&err);
    assert_int_equal(al_pgp_import(home, "garbage", 7, NULL, &err), AL_ERR_INVALID);
    al_err_clear(&err);
    char *secret = readf(f, "secret.asc", &len);
    assert_int_equal(al_pgp_import(home, secret, len, NULL, &err), AL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "refusing"));
    al_err_clear(&err);
    char *missing = xasprintf("%s/nope", f->dir);
    assert_int_equal(al_pgp_verify(missing, "m", 1, "x", 1, &s, &n, &err), AL_ERR_NOT_FOUND);
    al_err_clear(&err);
    char *big = calloc(1, (64u << 10) + 1);
    assert_int_equal(al_pgp_verify(home, "m", 1, big, (64u << 10) + 1, &s, &n, &err), AL_ERR_LIMIT);

    kill_agent(home);
    free(big);
    free(missing);
    free(secret);
    free(home);
}

/* The issuer read from the packet alone, armored and binary, no keyring; and
 * what is not a signature packet refused, never read past its end. */
static void test_sig_issuer(void **state)
{
    struct fx *f = *state;
    if (f == NULL)
        tu_skip("gpg or gpgconf missing (scripts/bootstrap.sh installs gnupg)");
    struct al_err err = AL_ERR_INIT;
    char out[AL_PGP_FPR_MAX];
    size_t alen, blen, klen;
    char *asc = readf(f, "checksums.txt.asc", &alen);
    char *bin = readf(f, "checksums.txt.sig", &blen);
    char *key = readf(f, "key.gpg", &klen);
    assert_int_equal(al_pgp_sig_issuer(asc, alen, out, &err), AL_OK);
    assert_string_equal(out, f->fpr);
    assert_int_equal(al_pgp_sig_issuer(bin, blen, out, &err), AL_OK);
    assert_string_equal(out, f->fpr);
    /* Every truncation of the binary packet: refused or named, never a crash. */
    for (size_t n = 0; n < blen; n++) {
        al_err_clear(&err);
        enum al_rc rc = al_pgp_sig_issuer(bin, n, out, &err);
        assert_true(rc == AL_ERR_INVALID || (rc == AL_OK && strcmp(out, f->fpr) == 0));
    }
    al_err_clear(&err);
    assert_int_equal(al_pgp_sig_issuer("hello", 5, out, &err), AL_ERR_INVALID);
    assert_string_equal(out, "");
    al_err_clear(&err);
    assert_int_equal(al_pgp_sig_issuer(key, klen, out, &err), AL_ERR_INVALID); /* a key, not a signature */
    al_err_clear(&err);
    /* A lying length: a new-format packet claiming more than there is. */
    unsigned char lie[] = {0xC2, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0x04, 0x00};
    assert_int_equal(al_pgp_sig_issuer(lie, sizeof lie, out, &err), AL_ERR_INVALID);
    al_err_clear(&err);
    char *big = calloc(1, (64u << 10) + 1);
    assert_int_equal(al_pgp_sig_issuer(big, (64u << 10) + 1, out, &err), AL_ERR_LIMIT);
    free(big);
    free(key);
    free(bin);
    free(asc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_good),
        cmocka_unit_test(test_binary_key_and_tamper),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_sig_issuer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
