/*
 * checksums.c: checksums.txt in the format sha256sum writes and `sha256sum -c`
 * reads, and the names of signature files beside it.
 */
#include "bundle/bundle_int.h"

#include <ctype.h>

#include "oci/oci.h"

char al_bundle_sig_kind(const char *name)
{
    if (strncmp(name, AL_BUNDLE_CHECKSUMS ".", sizeof AL_BUNDLE_CHECKSUMS) != 0)
        return 0;
    const char *rest = name + sizeof AL_BUNDLE_CHECKSUMS; /* after "checksums.txt." */
    if (strcmp(rest, "minisig") == 0)
        return 'm';
    if (strcmp(rest, "asc") == 0 || strcmp(rest, "sig") == 0)
        return 'g';
    /* checksums.txt.<n>.minisig: further signers of a k-of-n threshold. */
    size_t digits = strspn(rest, "0123456789");
    if (digits > 0 && digits < 4 && strcmp(rest + digits, ".minisig") == 0)
        return 'm';
    return 0;
}

struct al_sum *al_sums_find(struct al_sum *sums, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(sums[i].name, name) == 0)
            return &sums[i];
    return NULL;
}

enum al_rc al_sums_parse(const char *text, size_t len, struct al_sum **sums, size_t *n, struct al_err *err)
{
    *sums = NULL;
    *n = 0;
    if (len > AL_BUNDLE_CHECKSUMS_MAX)
        return al_err_set(err, AL_ERR_LIMIT, "checksums.txt is over %u bytes (AL_BUNDLE_CHECKSUMS_MAX)",
                          AL_BUNDLE_CHECKSUMS_MAX);
    if (memchr(text, '\0', len))
        return al_err_set(err, AL_ERR_INVALID, "checksums.txt holds a NUL byte");
    struct al_sum *out = calloc(AL_BUNDLE_MAX_ENTRIES, sizeof *out);
    if (out == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    size_t count = 0, line_no = 0;
    const char *p = text, *end = text + len;
    enum al_rc rc = AL_OK;
    while (p < end && !rc) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line_no++;
        if (ll == 0) {
            p += 1;
            continue;
        }
        /* <64 hex><space><space or *><name> */
        if (ll < AL_SHA256_HEX + 3 || p[AL_SHA256_HEX] != ' ' || (p[AL_SHA256_HEX + 1] != ' ' && p[AL_SHA256_HEX + 1] != '*')) {
            rc = al_err_set(err, AL_ERR_INVALID, "checksums.txt line %zu is not in sha256sum format", line_no);
            break;
        }
        if (count >= AL_BUNDLE_MAX_ENTRIES) {
            rc = al_err_set(err, AL_ERR_LIMIT, "checksums.txt lists more than %u files (AL_BUNDLE_MAX_ENTRIES)",
                            AL_BUNDLE_MAX_ENTRIES);
            break;
        }
        struct al_sum *s = &out[count];
        for (size_t i = 0; i < AL_SHA256_HEX; i++)
            s->hex[i] = (char)tolower((unsigned char)p[i]);
        s->hex[AL_SHA256_HEX] = '\0';
        const char *name = p + AL_SHA256_HEX + 2;
        size_t nl_len = ll - AL_SHA256_HEX - 2;
        while (nl_len >= 2 && name[0] == '.' && name[1] == '/')
            name += 2, nl_len -= 2;
        if (!al_hex64_valid(s->hex)) {
            rc = al_err_set(err, AL_ERR_INVALID, "checksums.txt line %zu: not a SHA-256 digest", line_no);
        } else if (nl_len == 0 || nl_len > AL_LIMIT_FILE_NAME) {
            rc = al_err_set(err, AL_ERR_INVALID, "checksums.txt line %zu: file name empty or over %u bytes", line_no,
                            AL_LIMIT_FILE_NAME);
        } else {
            memcpy(s->name, name, nl_len);
            s->name[nl_len] = '\0';
            if (!al_oci_path_safe(s->name))
                rc = al_err_set(err, AL_ERR_INVALID, "checksums.txt line %zu: unsafe file name", line_no);
            else if (al_sums_find(out, count, s->name))
                rc = al_err_set(err, AL_ERR_INVALID, "checksums.txt lists '%s' twice", s->name);
            else if (strcmp(s->name, AL_BUNDLE_CHECKSUMS) == 0 || al_bundle_sig_kind(s->name))
                rc = al_err_set(err, AL_ERR_INVALID, "checksums.txt lists '%s', which it cannot cover", s->name);
        }
        count++;
        p += ll + (nl ? 1 : 0);
    }
    if (!rc && count == 0)
        rc = al_err_set(err, AL_ERR_INVALID, "checksums.txt lists no files");
    if (rc) {
        free(out);
        return rc;
    }
    *sums = out;
    *n = count;
    return AL_OK;
}

enum al_rc al_bundle_blob_name(const char *digest, char out[AL_LIMIT_FILE_NAME + 1], struct al_err *err)
{
    const char *hex = al_digest_hex(digest);
    out[0] = '\0';
    if (hex == NULL)
        return al_err_set(err, AL_ERR_INVALID, "'%.80s' is not a sha256 digest", digest ? digest : "(none)");
    snprintf(out, AL_LIMIT_FILE_NAME + 1, AL_BUNDLE_BLOB_DIR "%s", hex);
    return AL_OK;
}
