/*
 * minisign_int.h: private to src/sign/minisign*.c. The byte layouts of
 * minisign's structures, the secret key's in-memory form, and the text helpers
 * (strict base64, capped line reading) that the key and signature parsers
 * share.
 *
 * Layouts (all packed, multi-byte integers little-endian), after minisign.h:
 *   public key  (42): sig_alg "Ed" | key id (8) | Ed25519 public key (32)
 *   signature   (74): sig_alg "ED" or "Ed" | key id (8) | Ed25519 signature (64)
 *   global sig  (64): Ed25519 over signature (64) || trusted comment text
 *   secret key (158): sig_alg "Ed" | kdf_alg "Sc" or 0,0 | chk_alg "B2" |
 *                     salt (32) | opslimit (8) | memlimit (8) |
 *                     key id (8) | seed (32) | public key (32) | chk (32)
 * In a secret key, the last 104 bytes (key id to chk) are XORed with scrypt
 * output when kdf_alg is "Sc"; chk is the 32-byte BLAKE2b of
 * sig_alg || key id || seed || public key.
 */
#ifndef AL_SIGN_MINISIGN_INT_H
#define AL_SIGN_MINISIGN_INT_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sign/minisign.h"

#define MS_ID   AL_MINISIGN_KEYID_BYTES
#define MS_PK   AL_MINISIGN_PK_BYTES
#define MS_SEED 32
#define MS_SIG  64
#define MS_CHK  32
#define MS_SALT 32

#define MS_PUB_BYTES (2 + MS_ID + MS_PK)
#define MS_SIG_BYTES (2 + MS_ID + MS_SIG)
#define MS_SEC_BYTES (6 + MS_SALT + 8 + 8 + MS_ID + MS_SEED + MS_PK + MS_CHK)

/* Offsets inside the secret key structure. */
#define MS_SEC_SALT   6
#define MS_SEC_OPS    (MS_SEC_SALT + MS_SALT)
#define MS_SEC_MEM    (MS_SEC_OPS + 8)
#define MS_SEC_KEYNUM (MS_SEC_MEM + 8) /* start of the encrypted part */
#define MS_SEC_SEED   (MS_SEC_KEYNUM + MS_ID)
#define MS_SEC_PK     (MS_SEC_SEED + MS_SEED)
#define MS_SEC_CHK    (MS_SEC_PK + MS_PK)

#define MS_B64_LEN(n) ((((n) + 2) / 3) * 4)

#define MS_UNTRUSTED_PREFIX "untrusted comment: "
#define MS_TRUSTED_PREFIX   "trusted comment: "

/* minisign reads the first line of a key file with fgets(1024). */
#define MS_KEY_COMMENT_LINE_MAX 1022

struct al_mkey_sec {
    uint8_t id[MS_ID];
    uint8_t pk[MS_PK];
    EVP_PKEY *pkey; /* Ed25519 private key */
};

/* Decodes exactly outlen bytes from the len characters at s: standard
 * alphabet, '=' padding required and only at the end, canonical (unused bits
 * zero). False on any deviation; out may be partly written then and is wiped. */
bool al_ms_b64_decode(const char *s, size_t len, uint8_t *out, size_t outlen);

/* Encodes len bytes (len <= 192) into out, which holds MS_B64_LEN(len) + 1. */
void al_ms_b64_encode(const uint8_t *in, size_t len, char *out);

enum ms_line_rc { MS_LINE_OK, MS_LINE_END, MS_LINE_LONG };

/* Reads the next line at *cur: a line ends at LF or at the end of the text;
 * one CR before the LF is dropped. MS_LINE_END when *cur is at the end;
 * MS_LINE_LONG when the line (without its CR LF) is longer than max. */
enum ms_line_rc al_ms_line(const char **cur, size_t max, const char **line, size_t *len);

/* True when only spaces, tabs, CR and LF remain at s. */
bool al_ms_rest_blank(const char *s);

uint64_t al_ms_le64(const uint8_t *p);
void al_ms_le64_put(uint8_t *p, uint64_t v);

/* An algorithm tag for messages: 'Ed' when printable, 0x4564 otherwise. */
void al_ms_alg_name(const uint8_t alg[2], char out[12]);

#endif
