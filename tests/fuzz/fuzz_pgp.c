/*
 * fuzz_pgp.c: an OpenPGP detached signature (checksums.txt.asc in a bundle),
 * armored or binary, handed to GnuPG through gpgme and checked against a
 * keyring holding one test key (tests/fuzz/fuzz-test.asc). gpgme runs gpg
 * for every input, so this harness manages tens of executions a second, not
 * thousands: it finds what our side of the call does with odd results, not
 * bugs inside GnuPG. Each input also goes to al_pgp_sig_issuer, the packet
 * reader that names a signature's key without GnuPG.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzzutil.h"
#include "sign/pgp.h"

/* tests/fuzz/fuzz-test.asc; the seeds are signatures by its secret half,
 * which was not kept (docs/internals/fuzz.md says how to make new ones). */
static const char KEY[] =
    "-----BEGIN PGP PUBLIC KEY BLOCK-----\n"
    "\n"
    "mDMEXgvhABYJKwYBBAHaRw8BAQdAUS0+rJBMAjyGU6PvcfDmkHEtkNbImdqMvc7Q\n"
    "95rbv9O0KGFpcmxvY2sgZnV6eiB0ZXN0IDxmdXp6QGFpcmxvY2suaW52YWxpZD6I\n"
    "kAQTFggAOBYhBEJX0ut3nW8VOVSsOxqQmDD7hqAMBQJeC+EAAhsDBQsJCAcCBhUK\n"
    "CQgLAgQWAgMBAh4BAheAAAoJEBqQmDD7hqAMI3kBAOUU1XH/VJ7GDlNIa5MgHvEF\n"
    "gvw13Em7jG46S1tnlTbcAQDaYf/YVBq7FUIMQIV56xrw0JmUAnKc+9nLBZIAw17o\n"
    "CQ==\n"
    "=vS8+\n"
    "-----END PGP PUBLIC KEY BLOCK-----\n";
static const char MSG[] = "airlock fuzz message\n";

static char home[256];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_quiet();
    snprintf(home, sizeof home, "%s/gnupg", fz_tmpdir());
    if (mkdir(home, 0700) != 0)
        abort();
    struct al_err err = AL_ERR_INIT;
    size_t n = 0;
    if (al_pgp_import(home, KEY, sizeof KEY - 1, &n, &err) != AL_OK || n != 1) {
        fprintf(stderr, "fuzz_pgp: cannot import the test key: %s\n", err.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct al_err err = AL_ERR_INIT;
    struct al_pgp_signer *signers = NULL;
    size_t n = 0;
    enum al_rc rc = al_pgp_verify(home, MSG, sizeof MSG - 1, data, size, &signers, &n, &err);
    if (rc == AL_OK && n == 0)
        abort(); /* good means at least one good signer */
    for (size_t i = 0; i < n; i++)
        if (signers[i].status == NULL || signers[i].validity == NULL || memchr(signers[i].fpr, 0, sizeof signers[i].fpr) == NULL)
            abort();
    if (rc != AL_OK && err.msg[0] == '\0')
        abort();
    free(signers);
    /* The issuer read from the packet alone (no gpg): in-process, so fast. */
    char fpr[AL_PGP_FPR_MAX];
    struct al_err e2 = AL_ERR_INIT;
    rc = al_pgp_sig_issuer(data, size, fpr, &e2);
    if (rc == AL_OK && (fpr[0] == '\0' || strspn(fpr, "0123456789ABCDEF") != strlen(fpr)))
        abort();
    if (rc != AL_OK && (e2.msg[0] == '\0' || fpr[0] != '\0'))
        abort();
    return 0;
}
