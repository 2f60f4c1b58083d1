/*
 * minisign.c: minisign signature files: parse, sign, verify.
 *
 * A signature file is four lines:
 *   untrusted comment: <text>
 *   base64(sig_alg | key id | Ed25519 signature)
 *   trusted comment: <text>
 *   base64(Ed25519 over signature || trusted comment text)
 * "ED" signs BLAKE2b-512(message), "Ed" (legacy) the message itself. The
 * parser is stricter than minisign's where strictness costs no compatibility:
 * it wants the canonical base64 of the exact length and nothing but blank
 * space after the fourth line. It is exactly as strict on the comment caps,
 * so that every file minisign writes is read here and the reverse.
 */
#include "sign/minisign_int.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/fs.h"
#include "core/limits.h"

#define PREHASH_BYTES 64
#define READ_BLOCK    (64u << 10)

struct sig {
    bool prehashed;
    uint8_t id[MS_ID];
    uint8_t sig[MS_SIG];
    uint8_t global[MS_SIG];
    const char *tc; /* trusted comment, inside the parsed text */
    size_t tc_len;
};

static enum al_rc malformed(struct al_err *err, const char *why)
{
    return al_err_set(err, AL_ERR_INVALID, "malformed minisign signature: %s", why);
}

static enum al_rc sig_parse(const char *text, struct sig *s, struct al_err *err)
{
    const size_t upre = strlen(MS_UNTRUSTED_PREFIX), tpre = strlen(MS_TRUSTED_PREFIX);
    const char *cur = text, *line;
    size_t len;
    memset(s, 0, sizeof *s);
    if (strnlen(text, AL_LIMIT_MINISIGN_SIG_FILE + 1) > AL_LIMIT_MINISIGN_SIG_FILE)
        return al_err_set(err, AL_ERR_LIMIT, "minisign signature larger than %u bytes (AL_LIMIT_MINISIGN_SIG_FILE)",
                          AL_LIMIT_MINISIGN_SIG_FILE);

    enum ms_line_rc lr = al_ms_line(&cur, upre + AL_LIMIT_MINISIGN_COMMENT, &line, &len);
    if (lr == MS_LINE_LONG)
        return al_err_set(err, AL_ERR_LIMIT, "untrusted comment longer than %u bytes (AL_LIMIT_MINISIGN_COMMENT)",
                          AL_LIMIT_MINISIGN_COMMENT);
    if (lr != MS_LINE_OK || len < upre || memcmp(line, MS_UNTRUSTED_PREFIX, upre) != 0)
        return malformed(err, "the first line does not start with 'untrusted comment: '");

    uint8_t bin[MS_SIG_BYTES];
    if (al_ms_line(&cur, MS_B64_LEN(MS_SIG_BYTES), &line, &len) != MS_LINE_OK ||
        !al_ms_b64_decode(line, len, bin, sizeof bin))
        return malformed(err, "the second line is not base64 of 74 bytes");
    if (memcmp(bin, "ED", 2) == 0) {
        s->prehashed = true;
    } else if (memcmp(bin, "Ed", 2) != 0) {
        char alg[12];
        al_ms_alg_name(bin, alg);
        return al_err_set(err, AL_ERR_INVALID, "unsupported signature algorithm %s (want 'ED' or 'Ed')", alg);
    }
    memcpy(s->id, bin + 2, MS_ID);
    memcpy(s->sig, bin + 2 + MS_ID, MS_SIG);

    lr = al_ms_line(&cur, tpre + AL_LIMIT_MINISIGN_TRUSTED, &line, &len);
    if (lr == MS_LINE_LONG)
        return al_err_set(err, AL_ERR_LIMIT, "trusted comment longer than %u bytes (AL_LIMIT_MINISIGN_TRUSTED)",
                          AL_LIMIT_MINISIGN_TRUSTED);
    if (lr != MS_LINE_OK || len < tpre || memcmp(line, MS_TRUSTED_PREFIX, tpre) != 0)
        return malformed(err, "the third line does not start with 'trusted comment: '");
    s->tc = line + tpre;
    s->tc_len = len - tpre;
    /* minisign cuts a comment at its first CR; refuse rather than guess. */
    if (memchr(s->tc, '\r', s->tc_len) != NULL)
        return malformed(err, "carriage return inside the trusted comment");

    if (al_ms_line(&cur, MS_B64_LEN(MS_SIG), &line, &len) != MS_LINE_OK ||
        !al_ms_b64_decode(line, len, s->global, MS_SIG))
        return malformed(err, "the fourth line is not base64 of 64 bytes");
    if (!al_ms_rest_blank(cur))
        return malformed(err, "unexpected data after the global signature");
    return AL_OK;
}

static bool ed25519_verify(const uint8_t pk[MS_PK], const uint8_t sig[MS_SIG], const void *msg,
                           size_t len)
{
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk, MS_PK);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = pkey && ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
              EVP_DigestVerify(ctx, sig, MS_SIG, msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ok;
}

static enum al_rc ed25519_sign(EVP_PKEY *pkey, const void *msg, size_t len, uint8_t sig[MS_SIG],
                               struct al_err *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t siglen = MS_SIG;
    bool ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
              EVP_DigestSign(ctx, sig, &siglen, msg, len) == 1 && siglen == MS_SIG;
    EVP_MD_CTX_free(ctx);
    return ok ? AL_OK : al_err_set(err, AL_ERR_INTERNAL, "openssl cannot make an ed25519 signature");
}

static enum al_rc prehash(const void *msg, size_t len, uint8_t out[PREHASH_BYTES], struct al_err *err)
{
    unsigned int n = 0;
    if (EVP_Digest(msg, len, out, &n, EVP_blake2b512(), NULL) != 1 || n != PREHASH_BYTES)
        return al_err_set(err, AL_ERR_INTERNAL, "openssl cannot compute blake2b-512");
    return AL_OK;
}

/* Steps 2 to 4 of verification (see minisign.h); signed_data is the message
 * for a legacy signature and its BLAKE2b-512 for a prehashed one. */
static enum al_rc sig_check(const struct al_mkey_pub *pub, const struct sig *s, const void *signed_data,
                            size_t len, char **tc_out, struct al_err *err)
{
    char want[AL_MINISIGN_KEYID_HEX], got[AL_MINISIGN_KEYID_HEX];
    al_minisign_keyid_hex(pub->id, want);
    al_minisign_keyid_hex(s->id, got);
    if (CRYPTO_memcmp(pub->id, s->id, MS_ID) != 0)
        return al_err_set(err, AL_ERR_DENIED, "signed by minisign key %s, not by trusted key %s", got, want);
    if (!ed25519_verify(pub->pk, s->sig, signed_data, len))
        return al_err_set(err, AL_ERR_VERIFY,
                          "bad minisign signature by key %s: the signed data or the signature was altered",
                          got);

    uint8_t *both = malloc(MS_SIG + s->tc_len);
    if (both == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory verifying a minisign signature");
    memcpy(both, s->sig, MS_SIG);
    memcpy(both + MS_SIG, s->tc, s->tc_len);
    bool ok = ed25519_verify(pub->pk, s->global, both, MS_SIG + s->tc_len);
    free(both);
    if (!ok)
        return al_err_set(err, AL_ERR_VERIFY,
                          "bad global minisign signature by key %s: the trusted comment was altered", got);
    if (tc_out != NULL) {
        *tc_out = strndup(s->tc, s->tc_len);
        if (*tc_out == NULL)
            return al_err_set(err, AL_ERR_NOMEM, "out of memory verifying a minisign signature");
    }
    return AL_OK;
}

enum al_rc al_minisign_verify(const struct al_mkey_pub *pub, const void *msg, size_t len,
                              const char *sig_text, char **trusted_comment_out, struct al_err *err)
{
    struct sig s;
    uint8_t h[PREHASH_BYTES];
    if (trusted_comment_out)
        *trusted_comment_out = NULL;
    enum al_rc rc = sig_parse(sig_text, &s, err);
    if (rc)
        return rc;
    if (!s.prehashed)
        return sig_check(pub, &s, msg, len, trusted_comment_out, err);
    rc = prehash(msg, len, h, err);
    if (rc)
        return rc;
    return sig_check(pub, &s, h, sizeof h, trusted_comment_out, err);
}

/* BLAKE2b-512 of a whole file, read in blocks. */
static enum al_rc prehash_file(const char *path, uint8_t out[PREHASH_BYTES], struct al_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return al_err_sys(err, errno == ENOENT ? AL_ERR_NOT_FOUND : AL_ERR_IO, "cannot open '%s'", path);
    enum al_rc rc = AL_OK;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t *buf = malloc(READ_BLOCK);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        /* A device or a pipe could stream forever. */
        rc = al_err_set(err, AL_ERR_INVALID, "'%s' is not a regular file", path);
        goto out;
    }
    if (ctx == NULL || buf == NULL || EVP_DigestInit_ex(ctx, EVP_blake2b512(), NULL) != 1) {
        rc = al_err_set(err, AL_ERR_NOMEM, "cannot set up blake2b-512 for '%s'", path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, READ_BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = al_err_sys(err, AL_ERR_IO, "cannot read '%s'", path);
            goto out;
        }
        if (n == 0)
            break;
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
            rc = al_err_set(err, AL_ERR_INTERNAL, "openssl cannot compute blake2b-512");
            goto out;
        }
    }
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx, out, &len) != 1 || len != PREHASH_BYTES)
        rc = al_err_set(err, AL_ERR_INTERNAL, "openssl cannot compute blake2b-512");
out:
    free(buf);
    EVP_MD_CTX_free(ctx);
    close(fd);
    return rc;
}

enum al_rc al_minisign_verify_file(const struct al_mkey_pub *pub, const char *path,
                                   const char *sig_text, char **trusted_comment_out,
                                   struct al_err *err)
{
    struct sig s;
    uint8_t h[PREHASH_BYTES];
    if (trusted_comment_out)
        *trusted_comment_out = NULL;
    enum al_rc rc = sig_parse(sig_text, &s, err);
    if (rc)
        return rc;
    if (s.prehashed) {
        rc = prehash_file(path, h, err);
        return rc ? rc : sig_check(pub, &s, h, sizeof h, trusted_comment_out, err);
    }
    struct stat st;
    if (stat(path, &st) == 0 && (uint64_t)st.st_size > AL_LIMIT_MINISIGN_LEGACY_MSG)
        return al_err_set(err, AL_ERR_LIMIT,
                          "'%s' is over %u bytes (AL_LIMIT_MINISIGN_LEGACY_MSG) for a legacy minisign "
                          "signature; sign it prehashed",
                          path, AL_LIMIT_MINISIGN_LEGACY_MSG);
    char *msg = NULL;
    size_t len = 0;
    rc = al_fs_read_file(path, AL_LIMIT_MINISIGN_LEGACY_MSG, &msg, &len, err);
    if (rc == AL_OK)
        rc = sig_check(pub, &s, msg, len, trusted_comment_out, err);
    free(msg);
    return rc;
}

enum al_rc al_minisign_sig_keyid(const char *sig_text, uint8_t id[AL_MINISIGN_KEYID_BYTES],
                                 struct al_err *err)
{
    struct sig s;
    enum al_rc rc = sig_parse(sig_text, &s, err);
    if (rc == AL_OK)
        memcpy(id, s.id, MS_ID);
    return rc;
}

static enum al_rc comment_ok(const char *what, const char *c, size_t max, const char *cap,
                             struct al_err *err)
{
    size_t n = strnlen(c, max + 1);
    if (n > max)
        return al_err_set(err, AL_ERR_LIMIT, "%s longer than %zu bytes (%s)", what, max, cap);
    if (strpbrk(c, "\r\n") != NULL)
        return al_err_set(err, AL_ERR_USAGE, "%s may not contain a line break", what);
    return AL_OK;
}

enum al_rc al_minisign_sign(const struct al_mkey_sec *sec, const void *msg, size_t len,
                            const char *trusted_comment, const char *untrusted_comment,
                            char **sig_text, struct al_err *err)
{
    char deftc[64];
    *sig_text = NULL;
    if (trusted_comment == NULL) {
        snprintf(deftc, sizeof deftc, "timestamp:%lld", (long long)time(NULL));
        trusted_comment = deftc;
    }
    if (untrusted_comment == NULL)
        untrusted_comment = "signature from airlock secret key";
    enum al_rc rc = comment_ok("trusted comment", trusted_comment, AL_LIMIT_MINISIGN_TRUSTED,
                               "AL_LIMIT_MINISIGN_TRUSTED", err);
    if (rc == AL_OK)
        rc = comment_ok("untrusted comment", untrusted_comment, AL_LIMIT_MINISIGN_COMMENT,
                        "AL_LIMIT_MINISIGN_COMMENT", err);
    if (rc)
        return rc;

    uint8_t h[PREHASH_BYTES], bin[MS_SIG_BYTES], global[MS_SIG];
    rc = prehash(msg, len, h, err);
    if (rc)
        return rc;
    memcpy(bin, "ED", 2);
    memcpy(bin + 2, sec->id, MS_ID);
    rc = ed25519_sign(sec->pkey, h, sizeof h, bin + 2 + MS_ID, err);
    if (rc)
        return rc;

    size_t tclen = strlen(trusted_comment);
    uint8_t *both = malloc(MS_SIG + tclen);
    if (both == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory signing");
    memcpy(both, bin + 2 + MS_ID, MS_SIG);
    memcpy(both + MS_SIG, trusted_comment, tclen);
    rc = ed25519_sign(sec->pkey, both, MS_SIG + tclen, global, err);
    free(both);
    if (rc)
        return rc;

    char b64sig[MS_B64_LEN(MS_SIG_BYTES) + 1], b64global[MS_B64_LEN(MS_SIG) + 1];
    al_ms_b64_encode(bin, sizeof bin, b64sig);
    al_ms_b64_encode(global, sizeof global, b64global);
    struct al_buf b;
    al_buf_init(&b, AL_LIMIT_MINISIGN_SIG_FILE);
    al_buf_addf(&b, "%s%s\n%s\n%s%s\n%s\n", MS_UNTRUSTED_PREFIX, untrusted_comment, b64sig,
                MS_TRUSTED_PREFIX, trusted_comment, b64global);
    if (al_buf_failed(&b)) {
        rc = b.over ? al_err_set(err, AL_ERR_LIMIT, "signature over AL_LIMIT_MINISIGN_SIG_FILE")
                    : al_err_set(err, AL_ERR_NOMEM, "out of memory signing");
        al_buf_release(&b);
        return rc;
    }
    *sig_text = al_buf_take(&b);
    return AL_OK;
}
