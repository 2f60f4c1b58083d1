/*
 * pgp.h: OpenPGP detached signatures (checksums.txt.asc), verified with
 * GnuPG through gpgme against a dedicated keyring.
 *
 * The keyring is a GnuPG home directory given by path (for example
 * $AIRLOCK_HOME/trust/gnupg), never the user's ~/.gnupg: every key in it is
 * trusted for bundles, which is why it holds nothing else. A signature counts
 * as good when GnuPG finds it cryptographically valid by a key in that home
 * and the key is neither expired nor revoked; GnuPG's web of trust (owner
 * trust, key validity) is reported but not required, since putting a key into
 * the dedicated home is the act of trusting it. Which fingerprints may sign
 * which models is the trust policy's business, not this module's.
 *
 * This header is the only place gpgme is included from (pgp.c); the types
 * below are plain C. Inputs are capped by AL_LIMIT_PGP_SIG and
 * AL_LIMIT_PGP_KEY (core/limits.h). The home directory must exist, be
 * writable (GnuPG keeps its trust database there) and short enough for
 * GnuPG's socket paths.
 */
#ifndef AL_SIGN_PGP_H
#define AL_SIGN_PGP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define AL_PGP_FPR_MAX 72 /* fingerprint (40 or 64 hex digits) or key id, and the NUL */

/* One signature found in a detached signature file. */
struct al_pgp_signer {
    char fpr[AL_PGP_FPR_MAX]; /* signing key's fingerprint; a key id when the key is unknown */
    char primary[AL_PGP_FPR_MAX]; /* its primary key's fingerprint (= fpr unless a subkey signed; "" when unknown) */
    bool good;                /* valid, by a key in the keyring, not expired or revoked */
    const char *status;       /* GnuPG's word for it: "good", "bad signature", "no public key" ... */
    const char *validity;     /* GnuPG's key validity: "unknown", "full", "ultimate" ... */
    long long created;        /* signature creation time, seconds since the epoch */
};

/* Verifies a detached signature (armored or binary) over msg against the
 * keyring in home. On return, *signers (malloc'd array, caller frees; NULL
 * when none) and *n describe every signature in sig, whatever the outcome.
 * AL_OK when at least one is good. Otherwise: AL_ERR_DENIED when no key in
 * the keyring made any of them ("signed by key X, which is not in the keyring
 * 'home'"), AL_ERR_VERIFY when a signature is bad or its key expired or
 * revoked, AL_ERR_INVALID when sig holds no signature, AL_ERR_LIMIT over
 * AL_LIMIT_PGP_SIG, AL_ERR_IO when GnuPG cannot be run. */
enum al_rc al_pgp_verify(const char *home, const void *msg, size_t len, const void *sig,
                         size_t siglen, struct al_pgp_signer **signers, size_t *n,
                         struct al_err *err);

/* Imports public keys (armored or binary) into the keyring in home.
 * *imported, when non-NULL, gets the number of keys from the data that are
 * now in the keyring (new, updated or already there).
 * AL_ERR_INVALID when the data holds no key, AL_ERR_LIMIT over
 * AL_LIMIT_PGP_KEY. Data that starts as a secret key (an armored PRIVATE
 * KEY BLOCK, or a first packet that is a secret key) is refused
 * (AL_ERR_INVALID): the keyring is for verifying only. */
enum al_rc al_pgp_import(const char *home, const void *key, size_t len, size_t *imported,
                         struct al_err *err);

/* Like al_pgp_import(), also writing the fingerprints of the imported
 * primary keys into fprs[0..max_fprs) (unused slots ""). */
enum al_rc al_pgp_import_fprs(const char *home, const void *key, size_t len, size_t *imported,
                              char (*fprs)[AL_PGP_FPR_MAX], size_t max_fprs, struct al_err *err);

/* The issuer of the first signature in sig (armored or binary), read from
 * the packet without GnuPG or a keyring, so that a refusal can name the key:
 * its fingerprint (issuer fingerprint subpacket, uppercase hex) or else its
 * 16-digit key id. Only to name the key: nothing here is verified.
 * AL_ERR_INVALID when sig is no signature packet or names no issuer,
 * AL_ERR_LIMIT over AL_LIMIT_PGP_SIG. */
enum al_rc al_pgp_sig_issuer(const void *sig, size_t len, char out[AL_PGP_FPR_MAX], struct al_err *err);

#endif
