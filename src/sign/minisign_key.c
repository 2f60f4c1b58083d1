/*
 * minisign_key.c: minisign key pairs: generation, public key files, secret
 * key files (plain or scrypt-encrypted), with OpenSSL's Ed25519 and scrypt.
 *
 * minisign keeps a secret key as libsodium does, seed || public key (64
 * bytes); OpenSSL's raw Ed25519 private key is the 32-byte seed, so the
 * public half is recomputed on load and must match the stored one.
 *
 * The password-derived stream comes from scrypt with the cost libsodium's
 * crypto_pwhash_scryptsalsa208sha256() picks from (opslimit, memlimit), which
 * is reproduced in pick_params() so that minisign's key files decrypt here.
 * Every buffer that held key material or password-derived bytes is wiped
 * before it goes out of scope.
 */
#include "sign/minisign_int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <string.h>

#include "core/limits.h"
#include "sign/blake2b_int.h"

#define KDF_OPS_MIN 32768ull      /* libsodium's OPSLIMIT_MIN */
#define KDF_MEM_MIN (1ull << 24)  /* libsodium's MEMLIMIT_MIN */
#define ENC_BYTES   (MS_SEC_BYTES - MS_SEC_KEYNUM)

/* libsodium's pickparams(): r = 8 and N, p from the two limits. */
static void pick_params(uint64_t ops, uint64_t mem, uint64_t *n, uint64_t *r, uint64_t *p)
{
    unsigned log2n;
    if (ops < KDF_OPS_MIN)
        ops = KDF_OPS_MIN;
    *r = 8;
    if (ops < mem / 32) {
        *p = 1;
        uint64_t maxn = ops / (*r * 4);
        for (log2n = 1; log2n < 63; log2n++)
            if ((1ull << log2n) > maxn / 2)
                break;
    } else {
        uint64_t maxn = mem / (*r * 128);
        for (log2n = 1; log2n < 63; log2n++)
            if ((1ull << log2n) > maxn / 2)
                break;
        uint64_t maxrp = (ops / 4) / (1ull << log2n);
        if (maxrp > 0x3fffffff)
            maxrp = 0x3fffffff;
        *p = maxrp / *r;
    }
    *n = 1ull << log2n;
}

/* XORs the encrypted part of a secret key structure with scrypt(password). */
static enum al_rc kdf_xor(uint8_t sec[MS_SEC_BYTES], const char *password, struct al_err *err)
{
    uint64_t ops = al_ms_le64(sec + MS_SEC_OPS), mem = al_ms_le64(sec + MS_SEC_MEM);
    if (ops > AL_LIMIT_MINISIGN_KDF_OPS || mem > AL_LIMIT_MINISIGN_KDF_MEM)
        return al_err_set(err, AL_ERR_LIMIT,
                          "scrypt cost of the secret key (opslimit %" PRIu64 ", memlimit %" PRIu64
                          ") is over the caps (AL_LIMIT_MINISIGN_KDF_OPS, AL_LIMIT_MINISIGN_KDF_MEM)",
                          ops, mem);
    size_t pwlen = strnlen(password, AL_LIMIT_MINISIGN_PASSWORD + 1);
    if (pwlen > AL_LIMIT_MINISIGN_PASSWORD)
        return al_err_set(err, AL_ERR_LIMIT, "password longer than %u bytes (AL_LIMIT_MINISIGN_PASSWORD)",
                          AL_LIMIT_MINISIGN_PASSWORD);
    uint64_t n, r, p;
    pick_params(ops, mem, &n, &r, &p);
    /* OpenSSL refuses to use more than maxmem: V (128 r (N + 2)) plus B (128 r p). */
    uint64_t maxmem = 128 * r * (n + 2) + 128 * r * p + (1u << 20);
    uint8_t stream[ENC_BYTES];
    if (EVP_PBE_scrypt(password, pwlen, sec + MS_SEC_SALT, MS_SALT, n, r, p, maxmem, stream,
                       sizeof stream) != 1) {
        OPENSSL_cleanse(stream, sizeof stream);
        return al_err_set(err, AL_ERR_NOMEM,
                          "scrypt failed for the secret key (N %" PRIu64 ", r %" PRIu64 ", p %" PRIu64
                          "): out of memory",
                          n, r, p);
    }
    for (size_t i = 0; i < sizeof stream; i++)
        sec[MS_SEC_KEYNUM + i] ^= stream[i];
    OPENSSL_cleanse(stream, sizeof stream);
    return AL_OK;
}

static void sec_checksum(const uint8_t sec[MS_SEC_BYTES], uint8_t chk[MS_CHK])
{
    uint8_t in[2 + MS_ID + MS_SEED + MS_PK];
    memcpy(in, sec, 2);
    memcpy(in + 2, sec + MS_SEC_KEYNUM, MS_ID + MS_SEED + MS_PK);
    al_blake2b(chk, MS_CHK, in, sizeof in);
    OPENSSL_cleanse(in, sizeof in);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* Returns "untrusted comment: <comment>\n<base64 of bin>\n" in one exact
 * allocation, so that no stray copy of a secret is left behind by realloc. */
static enum al_rc key_file(const char *comment, const uint8_t *bin, size_t len, char **out,
                           struct al_err *err)
{
    char b64[MS_B64_LEN(MS_SEC_BYTES) + 1];
    al_ms_b64_encode(bin, len, b64);
    size_t size = strlen(MS_UNTRUSTED_PREFIX) + strlen(comment) + strlen(b64) + 3;
    char *s = malloc(size);
    if (s == NULL) {
        OPENSSL_cleanse(b64, sizeof b64);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory writing a minisign key");
    }
    snprintf(s, size, "%s%s\n%s\n", MS_UNTRUSTED_PREFIX, comment, b64);
    OPENSSL_cleanse(b64, sizeof b64);
    *out = s;
    return AL_OK;
}

static enum al_rc pub_text(const uint8_t id[MS_ID], const uint8_t pk[MS_PK], char **out,
                           struct al_err *err)
{
    uint8_t bin[MS_PUB_BYTES];
    char comment[64];
    memcpy(bin, "Ed", 2);
    memcpy(bin + 2, id, MS_ID);
    memcpy(bin + 2 + MS_ID, pk, MS_PK);
    /* minisign prints the id with PRIX64, without leading zeros; match it byte for byte. */
    snprintf(comment, sizeof comment, "minisign public key %" PRIX64, al_ms_le64(id));
    return key_file(comment, bin, sizeof bin, out, err);
}

static enum al_rc pkey_from_seed(const uint8_t seed[MS_SEED], EVP_PKEY **pkey, uint8_t pk[MS_PK],
                                 struct al_err *err)
{
    size_t pklen = MS_PK;
    *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, MS_SEED);
    if (*pkey == NULL || EVP_PKEY_get_raw_public_key(*pkey, pk, &pklen) != 1 || pklen != MS_PK) {
        EVP_PKEY_free(*pkey);
        *pkey = NULL;
        return al_err_set(err, AL_ERR_INTERNAL, "openssl cannot make an ed25519 key");
    }
    return AL_OK;
}

enum al_rc al_minisign_keygen_kdf(const char *password, uint64_t opslimit, uint64_t memlimit,
                                  char **pub_out, char **sec_out, struct al_err *err)
{
    *pub_out = *sec_out = NULL;
    if (password != NULL && (opslimit < KDF_OPS_MIN || opslimit > AL_LIMIT_MINISIGN_KDF_OPS ||
                             memlimit < KDF_MEM_MIN || memlimit > AL_LIMIT_MINISIGN_KDF_MEM))
        return al_err_set(err, AL_ERR_USAGE,
                          "scrypt cost (opslimit %" PRIu64 ", memlimit %" PRIu64 ") out of range",
                          opslimit, memlimit);
    uint8_t sec[MS_SEC_BYTES] = {0};
    EVP_PKEY *pkey = NULL;
    memcpy(sec, "Ed", 2);
    memcpy(sec + 4, "B2", 2);
    enum al_rc rc = AL_OK;
    if (RAND_bytes(sec + MS_SEC_KEYNUM, MS_ID) != 1 || RAND_priv_bytes(sec + MS_SEC_SEED, MS_SEED) != 1) {
        rc = al_err_set(err, AL_ERR_INTERNAL, "openssl cannot get random bytes");
        goto out;
    }
    rc = pkey_from_seed(sec + MS_SEC_SEED, &pkey, sec + MS_SEC_PK, err);
    if (rc)
        goto out;
    rc = pub_text(sec + MS_SEC_KEYNUM, sec + MS_SEC_PK, pub_out, err);
    if (rc)
        goto out;
    /* minisign leaves chk zero in unencrypted keys; a real checksum costs
     * nothing, minisign ignores it there, and we check it when present. */
    sec_checksum(sec, sec + MS_SEC_CHK);
    if (password != NULL) {
        memcpy(sec + 2, "Sc", 2);
        if (RAND_bytes(sec + MS_SEC_SALT, MS_SALT) != 1) {
            rc = al_err_set(err, AL_ERR_INTERNAL, "openssl cannot get random bytes");
            goto out;
        }
        al_ms_le64_put(sec + MS_SEC_OPS, opslimit);
        al_ms_le64_put(sec + MS_SEC_MEM, memlimit);
        rc = kdf_xor(sec, password, err);
        if (rc)
            goto out;
    }
    rc = key_file(password ? "minisign encrypted secret key" : "minisign unencrypted secret key", sec,
                  sizeof sec, sec_out, err);
out:
    EVP_PKEY_free(pkey);
    OPENSSL_cleanse(sec, sizeof sec);
    if (rc) {
        free(*pub_out);
        *pub_out = NULL;
    }
    return rc;
}

enum al_rc al_minisign_keygen(const char *password, char **pub_out, char **sec_out,
                              struct al_err *err)
{
    return al_minisign_keygen_kdf(password, AL_LIMIT_MINISIGN_KDF_OPS, AL_LIMIT_MINISIGN_KDF_MEM,
                                  pub_out, sec_out, err);
}

enum al_rc al_minisign_pub_parse(const char *text, struct al_mkey_pub *out, struct al_err *err)
{
    memset(out, 0, sizeof *out);
    if (strnlen(text, AL_LIMIT_MINISIGN_KEY_FILE + 1) > AL_LIMIT_MINISIGN_KEY_FILE)
        return al_err_set(err, AL_ERR_LIMIT, "minisign public key larger than %u bytes (AL_LIMIT_MINISIGN_KEY_FILE)",
                          AL_LIMIT_MINISIGN_KEY_FILE);
    const char *cur = text, *line;
    size_t len;
    /* A file starts with its untrusted comment; a bare key is the base64 alone. */
    if (strncmp(text, "untrusted comment:", 18) == 0 &&
        al_ms_line(&cur, MS_KEY_COMMENT_LINE_MAX, &line, &len) != MS_LINE_OK)
        return al_err_set(err, AL_ERR_INVALID, "malformed minisign public key: comment line too long");
    while (*cur == ' ' || *cur == '\t')
        cur++;
    if (al_ms_line(&cur, MS_B64_LEN(MS_PUB_BYTES) + 8, &line, &len) != MS_LINE_OK)
        return al_err_set(err, AL_ERR_INVALID, "malformed minisign public key: no key line");
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    uint8_t bin[MS_PUB_BYTES];
    if (!al_ms_b64_decode(line, len, bin, sizeof bin))
        return al_err_set(err, AL_ERR_INVALID,
                          "malformed minisign public key: the key line is not base64 of %d bytes",
                          MS_PUB_BYTES);
    if (!al_ms_rest_blank(cur))
        return al_err_set(err, AL_ERR_INVALID, "malformed minisign public key: unexpected data after the key");
    if (memcmp(bin, "Ed", 2) != 0) {
        char alg[12];
        al_ms_alg_name(bin, alg);
        return al_err_set(err, AL_ERR_INVALID, "unsupported public key algorithm %s (want 'Ed')", alg);
    }
    memcpy(out->id, bin + 2, MS_ID);
    memcpy(out->pk, bin + 2 + MS_ID, MS_PK);
    return AL_OK;
}

enum al_rc al_minisign_pub_format(const struct al_mkey_pub *pub, char **text, struct al_err *err)
{
    *text = NULL;
    return pub_text(pub->id, pub->pk, text, err);
}

/* Decodes a secret key file into sec[] and checks its algorithms. */
static enum al_rc sec_decode(const char *text, uint8_t sec[MS_SEC_BYTES], bool *encrypted,
                             struct al_err *err)
{
    if (strnlen(text, AL_LIMIT_MINISIGN_KEY_FILE + 1) > AL_LIMIT_MINISIGN_KEY_FILE)
        return al_err_set(err, AL_ERR_LIMIT, "minisign secret key larger than %u bytes (AL_LIMIT_MINISIGN_KEY_FILE)",
                          AL_LIMIT_MINISIGN_KEY_FILE);
    const char *cur = text, *line;
    size_t len;
    if (al_ms_line(&cur, MS_KEY_COMMENT_LINE_MAX, &line, &len) != MS_LINE_OK)
        return al_err_set(err, AL_ERR_INVALID, "malformed minisign secret key: no comment line");
    if (al_ms_line(&cur, MS_B64_LEN(MS_SEC_BYTES), &line, &len) != MS_LINE_OK ||
        !al_ms_b64_decode(line, len, sec, MS_SEC_BYTES))
        return al_err_set(err, AL_ERR_INVALID,
                          "malformed minisign secret key: the key line is not base64 of %d bytes",
                          MS_SEC_BYTES);
    if (!al_ms_rest_blank(cur))
        return al_err_set(err, AL_ERR_INVALID, "malformed minisign secret key: unexpected data after the key");
    char alg[12];
    if (memcmp(sec, "Ed", 2) != 0) {
        al_ms_alg_name(sec, alg);
        return al_err_set(err, AL_ERR_INVALID, "unsupported secret key algorithm %s (want 'Ed')", alg);
    }
    if (memcmp(sec + 4, "B2", 2) != 0) {
        al_ms_alg_name(sec + 4, alg);
        return al_err_set(err, AL_ERR_INVALID, "unsupported secret key checksum %s (want 'B2')", alg);
    }
    if (memcmp(sec + 2, "Sc", 2) == 0) {
        *encrypted = true;
    } else if (sec[2] == 0 && sec[3] == 0) {
        *encrypted = false;
    } else {
        al_ms_alg_name(sec + 2, alg);
        return al_err_set(err, AL_ERR_INVALID, "unsupported secret key encryption %s (want 'Sc' or none)",
                          alg);
    }
    return AL_OK;
}

enum al_rc al_minisign_sec_encrypted(const char *text, bool *encrypted, struct al_err *err)
{
    uint8_t sec[MS_SEC_BYTES];
    enum al_rc rc = sec_decode(text, sec, encrypted, err);
    OPENSSL_cleanse(sec, sizeof sec);
    return rc;
}

enum al_rc al_minisign_sec_load(const char *text, const char *password, struct al_mkey_sec **out,
                                struct al_err *err)
{
    *out = NULL;
    uint8_t sec[MS_SEC_BYTES], chk[MS_CHK], pk[MS_PK];
    bool encrypted = false;
    EVP_PKEY *pkey = NULL;
    enum al_rc rc = sec_decode(text, sec, &encrypted, err);
    if (rc)
        goto out;
    if (encrypted) {
        if (password == NULL) {
            rc = al_err_set(err, AL_ERR_USAGE, "the minisign secret key is encrypted: a password is needed");
            goto out;
        }
        rc = kdf_xor(sec, password, err);
        if (rc)
            goto out;
    }
    sec_checksum(sec, chk);
    /* Unencrypted keys made by minisign carry a zero checksum. */
    if ((encrypted || !all_zero(sec + MS_SEC_CHK, MS_CHK)) &&
        CRYPTO_memcmp(chk, sec + MS_SEC_CHK, MS_CHK) != 0) {
        rc = encrypted ? al_err_set(err, AL_ERR_VERIFY, "wrong password for the minisign secret key")
                       : al_err_set(err, AL_ERR_CORRUPT, "minisign secret key fails its checksum");
        goto out;
    }
    rc = pkey_from_seed(sec + MS_SEC_SEED, &pkey, pk, err);
    if (rc)
        goto out;
    if (CRYPTO_memcmp(pk, sec + MS_SEC_PK, MS_PK) != 0) {
        rc = al_err_set(err, AL_ERR_CORRUPT,
                        "minisign secret key is inconsistent: its public half does not match its seed");
        goto out;
    }
    struct al_mkey_sec *k = calloc(1, sizeof *k);
    if (k == NULL) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory loading a minisign secret key");
        goto out;
    }
    memcpy(k->id, sec + MS_SEC_KEYNUM, MS_ID);
    memcpy(k->pk, pk, MS_PK);
    k->pkey = pkey;
    pkey = NULL;
    *out = k;
out:
    EVP_PKEY_free(pkey);
    OPENSSL_cleanse(sec, sizeof sec);
    OPENSSL_cleanse(chk, sizeof chk);
    return rc;
}

void al_minisign_sec_free(struct al_mkey_sec *sec)
{
    if (sec == NULL)
        return;
    EVP_PKEY_free(sec->pkey); /* OpenSSL wipes the private key it holds */
    OPENSSL_cleanse(sec, sizeof *sec);
    free(sec);
}

void al_minisign_sec_pub(const struct al_mkey_sec *sec, struct al_mkey_pub *out)
{
    memcpy(out->id, sec->id, MS_ID);
    memcpy(out->pk, sec->pk, MS_PK);
}
