/*
 * fuzz_minisign_sig.c: a detached minisign signature file (checksums.txt.minisig
 * in a bundle), checked against a fixed trusted key over a fixed message. The
 * seeds are real signatures by that key (tests/fuzz/fuzz-test.key), so both
 * the shape checks and the two Ed25519 verifications are reached.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "sign/minisign.h"

/* tests/fuzz/fuzz-test.pub; its secret half signs the seeds. */
static const char PUB[] = "untrusted comment: minisign public key F3C2445DF2EE0408\n"
                          "RWQIBO7yXUTC82vC4BXqZpKZXVxf8C4Fx/uFD8UdTpkhRKTFhDtJyeNM\n";
static const char MSG[] = "airlock fuzz message\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct al_mkey_pub pub;
    static bool have_pub;
    struct al_err err = AL_ERR_INIT;
    if (!have_pub) {
        if (al_minisign_pub_parse(PUB, &pub, &err) != AL_OK)
            abort();
        have_pub = true;
    }
    char *text = fz_strndup(data, size);
    uint8_t id[AL_MINISIGN_KEYID_BYTES];
    char hex[AL_MINISIGN_KEYID_HEX];
    if (al_minisign_sig_keyid(text, id, &err) == AL_OK)
        al_minisign_keyid_hex(id, hex);
    char *comment = NULL;
    al_err_clear(&err);
    if (al_minisign_verify(&pub, MSG, sizeof MSG - 1, text, &comment, &err) == AL_OK) {
        if (comment == NULL || strchr(comment, '\n') || strchr(comment, '\r'))
            abort(); /* the trusted comment is one line */
    } else if (comment != NULL || err.msg[0] == '\0') {
        abort();
    }
    free(comment);
    free(text);
    return 0;
}
