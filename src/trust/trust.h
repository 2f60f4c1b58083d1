/*
 * trust.h: the trust policy of the air-gapped side (TUF-inspired): which keys
 * may sign bundles for which models, how many signatures a model needs, and
 * which keys are revoked.
 *
 * The policy is a file, $AIRLOCK_HOME/trust/keys.json, rewritten under the
 * store's write lock; OpenPGP keys live in the dedicated GnuPG home
 * $AIRLOCK_HOME/trust/gnupg (src/sign/pgp.h). Every change (add, rm, revoke)
 * is appended to the hash-chained event log, so the history of the policy is
 * as tamper-evident as the rest of the store.
 *
 * A change and its event are atomic together, whatever stops the process:
 * the new policy is first written whole to keys.json.pending, then its event,
 * which names the SHA-256 of that file ("policy" in the event's detail), is
 * committed, then the pending file is renamed over keys.json. A pending file
 * counts exactly when the newest trust event names its content: a load then
 * reads it as the policy (the rename did not happen yet), and the next change
 * moves it into place; any other pending file is ignored, and removed by the
 * next change (its event was never committed).
 *
 * Each key has a name, a kind (minisign or OpenPGP), an id (minisign's 16 hex
 * digit key id, or the OpenPGP primary key fingerprint), a model-name pattern
 * (fnmatch(3), "*" for all) and a threshold. The threshold a model needs is
 * the largest threshold of the non-revoked keys whose pattern matches its
 * name (1 when none sets more): k-of-n, where n are the keys allowed for it.
 * A revoked key stays in the file so that anything it signed, old or new, is
 * refused; `rm` forgets a key entirely.
 */
#ifndef AL_TRUST_TRUST_H
#define AL_TRUST_TRUST_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "repo/repo.h"
#include "sign/minisign.h"
#include "sign/pgp.h"

#define AL_TRUST_NAME_MAX    64   /* a key's name */
#define AL_TRUST_PATTERN_MAX 255  /* a model-name pattern */
#define AL_TRUST_MAX_KEYS    1024 /* keys in one policy */
#define AL_TRUST_FILE_MAX    (1u << 20)

enum al_trust_kind { AL_TRUST_MINISIGN, AL_TRUST_GPG };

struct al_trust_key {
    char name[AL_TRUST_NAME_MAX + 1];
    enum al_trust_kind kind;
    char id[AL_PGP_FPR_MAX];         /* minisign key id (hex) or OpenPGP fingerprint */
    struct al_mkey_pub pub;          /* minisign keys only */
    char models[AL_TRUST_PATTERN_MAX + 1];
    int threshold;
    bool revoked;
    char added[32], revoked_at[32];
};

struct al_trust {
    struct al_trust_key *keys;
    size_t n;
    char gnupg[4096]; /* the dedicated GnuPG home */
};

/* Loads the policy in force in r's store (an empty policy when there is
 * none): keys.json, or a pending file whose change was committed (above).
 * Writes nothing and takes no lock, so it works on a read-only store.
 * AL_ERR_CORRUPT for a malformed policy file; *out is the caller's to
 * release after success. */
enum al_rc al_trust_load(struct al_repo *r, struct al_trust *out, struct al_err *err);
void al_trust_release(struct al_trust *t);

/* The key with this id (minisign hex id, or OpenPGP fingerprint, compared
 * without case; a 16-digit OpenPGP key id matches the end of a fingerprint),
 * or NULL. Borrowed from t. */
const struct al_trust_key *al_trust_find(const struct al_trust *t, const char *id);

/* True when key may sign model (its pattern matches). */
bool al_trust_allows(const struct al_trust_key *key, const char *model);

/* The number of signatures a model needs (>= 1). */
int al_trust_threshold(const struct al_trust *t, const char *model);

/* Adds a key under name from a key file's content: a minisign public key
 * (kind AL_TRUST_MINISIGN) or OpenPGP public key(s) (AL_TRUST_GPG, imported
 * into the dedicated keyring; exactly one primary key). models NULL means "*";
 * threshold 0 means 1. AL_ERR_EXISTS when the name or key is there already.
 * Records a "trust-add" event. *out (optional) gets the new entry. */
enum al_rc al_trust_add(struct al_repo *r, const char *name, enum al_trust_kind kind, const void *data,
                        size_t len, const char *models, int threshold, struct al_trust_key *out,
                        struct al_err *err);
/* Forgets a key ("trust-rm" event); OpenPGP keys stay in the keyring but no
 * longer count. */
enum al_rc al_trust_remove(struct al_repo *r, const char *name, struct al_err *err);
/* Marks a key revoked ("trust-revoke" event): it is refused from now on. */
enum al_rc al_trust_revoke(struct al_repo *r, const char *name, struct al_err *err);

const char *al_trust_kind_name(enum al_trust_kind kind);

/* ---- signing key files (the build host's side) ----
 * The files `airlock key gen` writes and `pack --sign` reads, in minisign's
 * formats (sign/minisign.h). Secrets are wiped before they are freed. */

/* Asked for the password of the encrypted secret key file at path: sets *out
 * to a malloc'd password (the trust module wipes and frees it), or returns
 * an error saying why none can be had. */
typedef enum al_rc al_trust_password_fn(void *ud, const char *path, char **out, struct al_err *err);

/* Makes a key pair and writes it, each file created new and synced: first
 * the secret key to sec_path (mode 0600), then the public key to pub_path
 * (0644). AL_ERR_EXISTS when a file exists (a key is never overwritten); a
 * file whose write failed is removed (a secret key written before a failed
 * public key stays). password NULL stores the secret key unencrypted
 * (minisign -W); otherwise it is encrypted with minisign's scrypt cost (about
 * 1 GiB of memory and a few seconds). id gets the new key's id in hex. */
enum al_rc al_trust_keygen(const char *pub_path, const char *sec_path, const char *password,
                           char id[AL_MINISIGN_KEYID_HEX], struct al_err *err);

/* Loads the secret key file at path (capped at AL_LIMIT_MINISIGN_KEY_FILE),
 * calling ask for its password when it is encrypted. Errors: ask's, those of
 * reading the file, and al_minisign_sec_load's (a wrong password is
 * AL_ERR_VERIFY). *out is the caller's on success, freed with
 * al_trust_key_free. */
enum al_rc al_trust_key_load(const char *path, al_trust_password_fn *ask, void *ud, struct al_mkey_sec **out,
                             struct al_err *err);
/* Wipes and frees a secret key; NULL is a no-op. */
void al_trust_key_free(struct al_mkey_sec *sec);

/* The public half of the key file at path, public or secret (a secret one
 * is loaded as al_trust_key_load does, asking for its password): id gets its
 * id in hex, *pub_text (malloc'd, the caller frees) the minisign.pub text. */
enum al_rc al_trust_key_public(const char *path, al_trust_password_fn *ask, void *ud,
                               char id[AL_MINISIGN_KEYID_HEX], char **pub_text, struct al_err *err);

#endif
