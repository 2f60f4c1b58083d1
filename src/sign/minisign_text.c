/*
 * minisign_text.c: the text layer under minisign's files: strict base64,
 * capped line reading, key ids in minisign's notation.
 *
 * Base64 goes through OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock, but
 * EVP_DecodeBlock is lenient (it skips surrounding whitespace, decodes
 * padding as zero bytes and does not care about unused bits), so every input
 * is first checked for exact length and alphabet, and the result is
 * re-encoded and compared with the input: only the one canonical encoding of
 * the expected number of bytes is accepted.
 */
#include "sign/minisign_int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#define B64_BIN_MAX 192 /* largest structure we decode (158) rounded up */

static bool b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

void al_ms_b64_encode(const uint8_t *in, size_t len, char *out)
{
    if (len > B64_BIN_MAX) {
        out[0] = '\0';
        return;
    }
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

bool al_ms_b64_decode(const char *s, size_t len, uint8_t *out, size_t outlen)
{
    if (outlen == 0 || outlen > B64_BIN_MAX || len != MS_B64_LEN(outlen))
        return false;
    size_t pad = (3 - outlen % 3) % 3;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= len - pad ? c != '=' : !b64_char(c))
            return false;
    }
    uint8_t tmp[B64_BIN_MAX + 3];
    char again[MS_B64_LEN(B64_BIN_MAX) + 1];
    bool ok = false;
    int n = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len);
    if (n == (int)(outlen + pad)) {
        memcpy(out, tmp, outlen);
        al_ms_b64_encode(out, outlen, again);
        ok = strlen(again) == len && memcmp(again, s, len) == 0;
    }
    /* The decoded bytes may be a secret key. */
    OPENSSL_cleanse(tmp, sizeof tmp);
    OPENSSL_cleanse(again, sizeof again);
    if (!ok)
        OPENSSL_cleanse(out, outlen);
    return ok;
}

enum ms_line_rc al_ms_line(const char **cur, size_t max, const char **line, size_t *len)
{
    const char *p = *cur;
    if (*p == '\0')
        return MS_LINE_END;
    /* Look no further than a line of max bytes plus CR LF could reach. */
    size_t avail = strnlen(p, max + 2);
    const char *nl = memchr(p, '\n', avail);
    size_t n = nl ? (size_t)(nl - p) : avail;
    if (nl == NULL && avail == max + 2)
        return MS_LINE_LONG;
    size_t next = nl ? n + 1 : n;
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (n > max)
        return MS_LINE_LONG;
    *line = p;
    *len = n;
    *cur = p + next;
    return MS_LINE_OK;
}

bool al_ms_rest_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return false;
    return true;
}

uint64_t al_ms_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void al_ms_le64_put(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void al_ms_alg_name(const uint8_t alg[2], char out[12])
{
    if (alg[0] >= 0x21 && alg[0] < 0x7f && alg[1] >= 0x21 && alg[1] < 0x7f)
        snprintf(out, 12, "'%c%c'", alg[0], alg[1]);
    else
        snprintf(out, 12, "0x%02x%02x", alg[0], alg[1]);
}

void al_minisign_keyid_hex(const uint8_t id[AL_MINISIGN_KEYID_BYTES],
                           char out[AL_MINISIGN_KEYID_HEX])
{
    snprintf(out, AL_MINISIGN_KEYID_HEX, "%016" PRIX64, al_ms_le64(id));
}
