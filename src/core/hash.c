#include "core/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/progress.h"


struct al_sha256 {
    EVP_MD_CTX *ctx;
};

struct al_sha256 *al_sha256_new(void)
{
    struct al_sha256 *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        al_sha256_free(h);
        return NULL;
    }
    return h;
}

void al_sha256_free(struct al_sha256 *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void al_sha256_update(struct al_sha256 *h, const void *data, size_t len)
{
    EVP_DigestUpdate(h->ctx, data, len);
}

void al_sha256_final(struct al_sha256 *h, uint8_t out[AL_SHA256_BYTES])
{
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->ctx, out, &n);
}

void al_sha256_buf(const void *data, size_t len, uint8_t out[AL_SHA256_BYTES])
{
    unsigned int n = 0;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

void al_hex(const uint8_t *raw, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[raw[i] >> 4];
        out[2 * i + 1] = digits[raw[i] & 15];
    }
    out[2 * len] = '\0';
}

void al_digest_format(const uint8_t raw[AL_SHA256_BYTES], char out[AL_DIGEST_SIZE])
{
    memcpy(out, "sha256:", 7);
    al_hex(raw, AL_SHA256_BYTES, out + 7);
}

bool al_hex64_valid(const char *s)
{
    for (int i = 0; i < AL_SHA256_HEX; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return s[AL_SHA256_HEX] == '\0';
}

bool al_digest_valid(const char *s)
{
    return al_digest_hex(s) != NULL;
}

const char *al_digest_hex(const char *digest)
{
    static const char prefix[] = "sha256:";
    if (digest == NULL || strncmp(digest, prefix, sizeof prefix - 1) != 0)
        return NULL;
    const char *hex = digest + sizeof prefix - 1;
    return al_hex64_valid(hex) ? hex : NULL;
}

bool al_digest_from_hex(const char *hex, char out[AL_DIGEST_SIZE])
{
    out[0] = '\0';
    if (hex == NULL || !al_hex64_valid(hex))
        return false;
    snprintf(out, AL_DIGEST_SIZE, "sha256:%s", hex);
    return true;
}

bool al_digest_hex_eq(const char *digest, const char *hex)
{
    const char *mine = al_digest_hex(digest);
    return mine != NULL && hex != NULL && strcmp(mine, hex) == 0;
}

enum al_rc al_sha256_fd(int fd, char digest[AL_DIGEST_SIZE], uint64_t *size_out,
                        struct al_progress *progress, struct al_err *err)
{
    uint64_t n = 0;
    enum al_rc rc = al_sha256_copy(fd, -1, digest, &n, progress, err);
    if (!rc && size_out)
        *size_out += n;
    return rc;
}

enum al_rc al_sha256_path(const char *path, char digest[AL_DIGEST_SIZE], uint64_t *size_out,
                          struct al_progress *progress, struct al_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return al_err_sys(err, errno == ENOENT ? AL_ERR_NOT_FOUND : AL_ERR_IO, "cannot open '%s'", path);
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    enum al_rc rc = al_sha256_fd(fd, digest, size_out, progress, err);
    close(fd);
    return rc;
}
