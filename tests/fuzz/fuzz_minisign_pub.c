/*
 * fuzz_minisign_pub.c: minisign key files, as `trust add` reads a public key
 * and `bundle pack` a secret key: the public key parser, and the secret key
 * parser without a password (an encrypted key stops before scrypt, whose
 * cost would make the run a benchmark of scrypt).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "sign/minisign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_strndup(data, size);
    struct al_err err = AL_ERR_INIT;
    struct al_mkey_pub pub;
    if (al_minisign_pub_parse(text, &pub, &err) == AL_OK) {
        char *again = NULL;
        struct al_mkey_pub back;
        /* A parsed key formats into a file that parses to the same key. */
        if (al_minisign_pub_format(&pub, &again, &err) != AL_OK || al_minisign_pub_parse(again, &back, &err) != AL_OK ||
            memcmp(&pub, &back, sizeof pub) != 0)
            abort();
        free(again);
    }
    bool encrypted = false;
    al_err_clear(&err);
    (void)al_minisign_sec_encrypted(text, &encrypted, &err);
    struct al_mkey_sec *sec = NULL;
    al_err_clear(&err);
    if (al_minisign_sec_load(text, NULL, &sec, &err) == AL_OK) {
        al_minisign_sec_pub(sec, &pub);
        al_minisign_sec_free(sec);
    }
    free(text);
    return 0;
}
