/*
 * minisign.h: Ed25519 keys and detached signatures in minisign's formats
 * (https://jedisct1.github.io/minisign/), implemented with OpenSSL 3 only.
 *
 * A bundle's checksums.txt is signed into checksums.txt.minisig, which the
 * standard `minisign -V` accepts, and airlock verifies what minisign signs.
 * Signatures made here are always prehashed ("ED": Ed25519 over the BLAKE2b-512
 * of the message); verification accepts both "ED" and the legacy "Ed" (Ed25519
 * over the message itself), as minisign does without -H.
 *
 * Verification checks, in this order, and stops at the first failure:
 *   1. the signature file's shape: four lines, the comment prefixes, base64 of
 *      the exact lengths, a known algorithm, the caps below (AL_ERR_INVALID,
 *      AL_ERR_LIMIT);
 *   2. that the signature's key id is the trusted key's id (AL_ERR_DENIED,
 *      "signed by key X, not by trusted key Y");
 *   3. the signature over the message (AL_ERR_VERIFY);
 *   4. the global signature over signature || trusted comment, which protects
 *      the trusted comment (AL_ERR_VERIFY).
 * Only then is the trusted comment handed out. It is raw text from the file
 * (any bytes but CR, LF and NUL): escape it before printing it to a terminal.
 *
 * Text in and out is the content of minisign's files: a public key file is
 * "untrusted comment: minisign public key <ID>\n<base64>\n", a secret key file
 * "untrusted comment: ...\n<base64>\n", a signature file four lines. Key ids are
 * shown as minisign shows them: the 8 bytes read as a little-endian integer,
 * in 16 uppercase hex digits.
 *
 * Secret keys may be encrypted with a password (scrypt, with the cost stored
 * in the key file, capped at minisign's own defaults, AL_LIMIT_MINISIGN_KDF_*)
 * or stored in the clear (`minisign -G -W`). Secret material is wiped with
 * OPENSSL_cleanse before it is freed. Caps on every input are in core/limits.h
 * (AL_LIMIT_MINISIGN_*); the comment caps are minisign's own.
 */
#ifndef AL_SIGN_MINISIGN_H
#define AL_SIGN_MINISIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define AL_MINISIGN_KEYID_BYTES 8
#define AL_MINISIGN_PK_BYTES    32
#define AL_MINISIGN_KEYID_HEX   17 /* 16 hex digits and the NUL */

/* A public key: its id and the raw Ed25519 public key. A plain value. */
struct al_mkey_pub {
    uint8_t id[AL_MINISIGN_KEYID_BYTES];
    uint8_t pk[AL_MINISIGN_PK_BYTES];
};

/* A decrypted secret key; opaque, wiped on free. */
struct al_mkey_sec;

/* Makes a new key pair and returns both files' contents (malloc'd, caller
 * frees; *sec_text holds the secret, wipe it with OPENSSL_cleanse before
 * freeing). With a password (may be ""), the secret key is encrypted with
 * minisign's default scrypt cost (about 1 GiB of memory and a few seconds);
 * with NULL, it is stored unencrypted as `minisign -G -W` does. */
enum al_rc al_minisign_keygen(const char *password, char **pub_text, char **sec_text,
                              struct al_err *err);

/* Like al_minisign_keygen() with an explicit scrypt cost, for small machines
 * and tests (minisign reads any cost from the file). AL_ERR_USAGE when the cost
 * is outside [2^15, AL_LIMIT_MINISIGN_KDF_OPS] x [2^24, AL_LIMIT_MINISIGN_KDF_MEM];
 * ignored when password is NULL. */
enum al_rc al_minisign_keygen_kdf(const char *password, uint64_t opslimit, uint64_t memlimit,
                                  char **pub_text, char **sec_text, struct al_err *err);

/* Parses a public key: the content of a minisign.pub file or the bare base64
 * line (what `minisign -P` takes). AL_ERR_INVALID when malformed or not an
 * Ed25519 key, AL_ERR_LIMIT over AL_LIMIT_MINISIGN_KEY_FILE. */
enum al_rc al_minisign_pub_parse(const char *text, struct al_mkey_pub *out, struct al_err *err);

/* Formats a public key as a minisign.pub file (malloc'd, caller frees). */
enum al_rc al_minisign_pub_format(const struct al_mkey_pub *pub, char **text, struct al_err *err);

/* Tells whether a secret key file is encrypted (so a password must be asked
 * for) without decrypting it. AL_ERR_INVALID when malformed. */
enum al_rc al_minisign_sec_encrypted(const char *text, bool *encrypted, struct al_err *err);

/* Loads a secret key file. password is needed when the key is encrypted
 * (AL_ERR_USAGE when NULL) and ignored otherwise. A wrong password gives
 * AL_ERR_VERIFY ("wrong password for minisign secret key <ID>"); a scrypt cost
 * over the caps AL_ERR_LIMIT; a key whose halves do not match AL_ERR_CORRUPT.
 * *out is the caller's on success (al_minisign_sec_free). */
enum al_rc al_minisign_sec_load(const char *text, const char *password, struct al_mkey_sec **out,
                                struct al_err *err);

/* Wipes and frees a secret key; NULL is a no-op. */
void al_minisign_sec_free(struct al_mkey_sec *sec);

/* The public half of a secret key. */
void al_minisign_sec_pub(const struct al_mkey_sec *sec, struct al_mkey_pub *out);

/* Signs msg (prehashed, "ED") and returns the signature file's content
 * (malloc'd, caller frees). trusted_comment NULL means "timestamp:<unix time>";
 * untrusted_comment NULL means "signature from airlock secret key". Comments
 * may not hold CR or LF (AL_ERR_USAGE) and are capped by
 * AL_LIMIT_MINISIGN_TRUSTED and AL_LIMIT_MINISIGN_COMMENT (AL_ERR_LIMIT). */
enum al_rc al_minisign_sign(const struct al_mkey_sec *sec, const void *msg, size_t len,
                            const char *trusted_comment, const char *untrusted_comment,
                            char **sig_text, struct al_err *err);

/* Verifies sig_text (a signature file's content) over msg with pub, in the
 * order given at the top of this header. On success, when trusted_comment_out
 * is non-NULL, *trusted_comment_out is the verified trusted comment (malloc'd,
 * caller frees). */
enum al_rc al_minisign_verify(const struct al_mkey_pub *pub, const void *msg, size_t len,
                              const char *sig_text, char **trusted_comment_out,
                              struct al_err *err);

/* Like al_minisign_verify() over the file at path. A prehashed signature is
 * checked reading the file in blocks (bounded memory, any size); a legacy one
 * needs the whole file in memory and is refused over
 * AL_LIMIT_MINISIGN_LEGACY_MSG (AL_ERR_LIMIT). */
enum al_rc al_minisign_verify_file(const struct al_mkey_pub *pub, const char *path,
                                   const char *sig_text, char **trusted_comment_out,
                                   struct al_err *err);

/* The key id a signature file claims, so that a caller holding several trusted
 * keys can pick the one to verify with. Checks only the signature file's shape;
 * the claim means nothing until al_minisign_verify() succeeds. */
enum al_rc al_minisign_sig_keyid(const char *sig_text, uint8_t id[AL_MINISIGN_KEYID_BYTES],
                                 struct al_err *err);

/* A key id as minisign prints it: 16 uppercase hex digits. */
void al_minisign_keyid_hex(const uint8_t id[AL_MINISIGN_KEYID_BYTES],
                           char out[AL_MINISIGN_KEYID_HEX]);

#endif
