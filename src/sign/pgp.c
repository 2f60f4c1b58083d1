/*
 * pgp.c: OpenPGP detached signatures through gpgme, against a keyring kept
 * in a dedicated GnuPG home. The only file that includes gpgme.h.
 *
 * Each call makes its own gpgme context pointed at the home with
 * gpgme_ctx_set_engine_info(), so that nothing depends on $GNUPGHOME or on
 * process-wide engine settings, and sets it offline: in an air-gapped network
 * GnuPG must never try to fetch a missing key.
 */
#include "sign/pgp.h"

#include <gpgme.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/limits.h"

static pthread_once_t gpgme_once = PTHREAD_ONCE_INIT;

/* gpgme wants gpgme_check_version() before anything else, once. */
static void gpgme_init(void) { gpgme_check_version(NULL); }

static enum al_rc new_ctx(const char *home, gpgme_ctx_t *ctx, struct al_err *err)
{
    *ctx = NULL;
    struct stat st;
    if (stat(home, &st) != 0 || !S_ISDIR(st.st_mode))
        return al_err_set(err, AL_ERR_NOT_FOUND, "keyring '%s' is not a directory", home);
    pthread_once(&gpgme_once, gpgme_init);
    gpgme_error_t e = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP);
    if (e)
        return al_err_set(err, AL_ERR_IO, "gnupg is not usable: %s", gpgme_strerror(e));
    e = gpgme_new(ctx);
    if (e == 0)
        e = gpgme_set_protocol(*ctx, GPGME_PROTOCOL_OpenPGP);
    if (e == 0)
        e = gpgme_ctx_set_engine_info(*ctx, GPGME_PROTOCOL_OpenPGP, NULL, home);
    if (e) {
        gpgme_release(*ctx);
        *ctx = NULL;
        return al_err_set(err, AL_ERR_IO, "cannot set up gnupg with keyring '%s': %s", home,
                          gpgme_strerror(e));
    }
    gpgme_set_offline(*ctx, 1);
    return AL_OK;
}

static const char *validity_name(gpgme_validity_t v)
{
    switch (v) {
    case GPGME_VALIDITY_UNDEFINED: return "undefined";
    case GPGME_VALIDITY_NEVER: return "never";
    case GPGME_VALIDITY_MARGINAL: return "marginal";
    case GPGME_VALIDITY_FULL: return "full";
    case GPGME_VALIDITY_ULTIMATE: return "ultimate";
    case GPGME_VALIDITY_UNKNOWN:
    default: return "unknown";
    }
}

static const char *status_name(gpgme_error_t status)
{
    switch (gpgme_err_code(status)) {
    case GPG_ERR_NO_ERROR: return "good";
    case GPG_ERR_BAD_SIGNATURE: return "bad signature";
    case GPG_ERR_NO_PUBKEY: return "no public key";
    case GPG_ERR_KEY_EXPIRED: return "key expired";
    case GPG_ERR_SIG_EXPIRED: return "signature expired";
    case GPG_ERR_CERT_REVOKED: return "key revoked";
    default: return gpgme_strerror(status);
    }
}

/* The primary key's fingerprint of the key that holds subkey fpr: trust is
 * given to a primary key (what `trust add --gpg` imports and names), while
 * most keys sign with a signing subkey. "" when the keyring lacks it. */
static void primary_of(gpgme_ctx_t ctx, const char *fpr, char out[AL_PGP_FPR_MAX])
{
    out[0] = '\0';
    gpgme_key_t key = NULL;
    if (gpgme_get_key(ctx, fpr, &key, 0) != 0 || key == NULL)
        return;
    /* Only a subkey of this key may have made the signature. */
    for (gpgme_subkey_t sk = key->subkeys; sk; sk = sk->next)
        if (sk->fpr && strcasecmp(sk->fpr, fpr) == 0 && key->subkeys->fpr) {
            snprintf(out, AL_PGP_FPR_MAX, "%s", key->subkeys->fpr);
            break;
        }
    gpgme_key_unref(key);
}

/* Copies the verify result into plain structs; returns the count. */
static enum al_rc collect(gpgme_ctx_t ctx, gpgme_verify_result_t res, struct al_pgp_signer **out, size_t *n,
                          struct al_err *err)
{
    size_t count = 0;
    for (gpgme_signature_t s = res ? res->signatures : NULL; s; s = s->next)
        count++;
    if (count == 0)
        return AL_OK;
    struct al_pgp_signer *v = calloc(count, sizeof *v);
    if (v == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory reading openpgp signatures");
    size_t i = 0;
    const gpgme_sigsum_t unusable =
        GPGME_SIGSUM_KEY_REVOKED | GPGME_SIGSUM_KEY_EXPIRED | GPGME_SIGSUM_SIG_EXPIRED | GPGME_SIGSUM_RED;
    for (gpgme_signature_t s = res->signatures; s; s = s->next, i++) {
        snprintf(v[i].fpr, sizeof v[i].fpr, "%s", s->fpr ? s->fpr : "?");
        if (s->fpr)
            primary_of(ctx, s->fpr, v[i].primary);
        v[i].good = gpgme_err_code(s->status) == GPG_ERR_NO_ERROR && (s->summary & unusable) == 0 &&
                    !s->wrong_key_usage;
        v[i].status = status_name(s->status);
        v[i].validity = validity_name(s->validity);
        v[i].created = (long long)s->timestamp;
    }
    *out = v;
    *n = count;
    return AL_OK;
}

enum al_rc al_pgp_verify(const char *home, const void *msg, size_t len, const void *sig,
                         size_t siglen, struct al_pgp_signer **signers, size_t *n,
                         struct al_err *err)
{
    *signers = NULL;
    *n = 0;
    if (siglen > AL_LIMIT_PGP_SIG)
        return al_err_set(err, AL_ERR_LIMIT, "openpgp signature larger than %u bytes (AL_LIMIT_PGP_SIG)",
                          AL_LIMIT_PGP_SIG);
    gpgme_ctx_t ctx = NULL;
    gpgme_data_t dsig = NULL, dmsg = NULL;
    enum al_rc rc = new_ctx(home, &ctx, err);
    if (rc)
        return rc;
    gpgme_error_t e = gpgme_data_new_from_mem(&dsig, sig, siglen, 0);
    if (e == 0)
        e = gpgme_data_new_from_mem(&dmsg, msg, len, 0);
    if (e) {
        rc = al_err_set(err, AL_ERR_NOMEM, "cannot hand data to gnupg: %s", gpgme_strerror(e));
        goto out;
    }
    e = gpgme_op_verify(ctx, dsig, dmsg, NULL);
    if (gpgme_err_code(e) == GPG_ERR_NO_DATA) {
        rc = al_err_set(err, AL_ERR_INVALID, "no openpgp signature in the signature data");
        goto out;
    }
    if (e) {
        rc = al_err_set(err, AL_ERR_IO, "gnupg cannot verify with keyring '%s': %s", home, gpgme_strerror(e));
        goto out;
    }
    rc = collect(ctx, gpgme_op_verify_result(ctx), signers, n, err);
    if (rc)
        goto out;
    if (*n == 0) {
        rc = al_err_set(err, AL_ERR_INVALID, "no openpgp signature in the signature data");
        goto out;
    }
    /* Good if any is good; otherwise report the most telling failure. */
    const struct al_pgp_signer *bad = NULL, *unknown = NULL;
    for (size_t i = 0; i < *n; i++) {
        const struct al_pgp_signer *s = &(*signers)[i];
        if (s->good)
            goto out;
        if (strcmp(s->status, "no public key") == 0) {
            if (unknown == NULL)
                unknown = s;
        } else if (bad == NULL) {
            bad = s;
        }
    }
    if (bad != NULL)
        rc = al_err_set(err, AL_ERR_VERIFY, "openpgp signature by key %s does not verify: %s", bad->fpr,
                        bad->status);
    else
        rc = al_err_set(err, AL_ERR_DENIED, "signed by openpgp key %s, which is not in the keyring '%s'",
                        unknown->fpr, home);
out:
    gpgme_data_release(dsig);
    gpgme_data_release(dmsg);
    gpgme_release(ctx);
    return rc;
}

/* True when the data starts as a secret key: armored, or a first packet with
 * tag 5 (secret key) or 7 (secret subkey), in the old or new packet format. */
static bool looks_secret(const uint8_t *p, size_t len)
{
    static const char armor[] = "PRIVATE KEY BLOCK";
    if (memmem(p, len, armor, sizeof armor - 1) != NULL)
        return true;
    if (len == 0 || (p[0] & 0x80) == 0)
        return false;
    unsigned tag = (p[0] & 0x40) ? (p[0] & 0x3f) : ((p[0] >> 2) & 0x0f);
    return tag == 5 || tag == 7;
}

enum al_rc al_pgp_import(const char *home, const void *key, size_t len, size_t *imported,
                         struct al_err *err)
{
    return al_pgp_import_fprs(home, key, len, imported, NULL, 0, err);
}

enum al_rc al_pgp_import_fprs(const char *home, const void *key, size_t len, size_t *imported,
                              char (*fprs)[AL_PGP_FPR_MAX], size_t max_fprs, struct al_err *err)
{
    if (imported)
        *imported = 0;
    if (len > AL_LIMIT_PGP_KEY)
        return al_err_set(err, AL_ERR_LIMIT, "openpgp key data larger than %u bytes (AL_LIMIT_PGP_KEY)",
                          AL_LIMIT_PGP_KEY);
    if (looks_secret(key, len))
        return al_err_set(err, AL_ERR_INVALID,
                          "refusing to import an openpgp secret key into keyring '%s'", home);
    gpgme_ctx_t ctx = NULL;
    gpgme_data_t d = NULL;
    enum al_rc rc = new_ctx(home, &ctx, err);
    if (rc)
        return rc;
    gpgme_error_t e = gpgme_data_new_from_mem(&d, key, len, 0);
    if (e == 0)
        e = gpgme_op_import(ctx, d);
    if (e) {
        rc = al_err_set(err, AL_ERR_IO, "gnupg cannot import into keyring '%s': %s", home, gpgme_strerror(e));
        goto out;
    }
    gpgme_import_result_t res = gpgme_op_import_result(ctx);
    if (res == NULL || res->considered == 0 || res->not_imported == res->considered) {
        rc = al_err_set(err, AL_ERR_INVALID, "no importable openpgp public key in the data");
        goto out;
    }
    if (res->secret_read > 0) {
        rc = al_err_set(err, AL_ERR_INVALID, "the openpgp key data held a secret key, which gnupg may have stored in keyring '%s'", home);
        goto out;
    }
    if (imported)
        *imported = (size_t)(res->considered - res->not_imported);
    size_t k = 0;
    for (gpgme_import_status_t st = res->imports; fprs && st && k < max_fprs; st = st->next)
        if (st->result == 0 && st->fpr) {
            bool dup = false;
            for (size_t j = 0; j < k; j++)
                dup = dup || strcmp(fprs[j], st->fpr) == 0;
            if (!dup)
                snprintf(fprs[k++], AL_PGP_FPR_MAX, "%s", st->fpr);
        }
    for (; fprs && k < max_fprs; k++)
        fprs[k][0] = '\0';
out:
    gpgme_data_release(d);
    gpgme_release(ctx);
    return rc;
}

/* ---- the issuer of a signature, read without GnuPG ---- */

/* Base64 of an armored block into out (at most cap bytes); *n its length.
 * Stops at the checksum line ("=XXXX") or the END line. */
static bool dearmor(const char *s, size_t len, uint8_t *out, size_t cap, size_t *n)
{
    static const char begin[] = "-----BEGIN PGP SIGNATURE-----";
    const char *p = memmem(s, len, begin, sizeof begin - 1), *end = s + len;
    if (p == NULL)
        return false;
    /* The header lines end at the first empty line. */
    const char *q = p;
    for (;;) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        if (nl == NULL)
            return false;
        q = nl + 1;
        if (q < end && (*q == '\n' || (*q == '\r' && q + 1 < end && q[1] == '\n'))) {
            q += *q == '\r' ? 2 : 1;
            break;
        }
    }
    uint32_t acc = 0;
    int bits = 0;
    *n = 0;
    for (bool line_start = true; q < end; q++) {
        char c = *q;
        if (c == '\n') {
            line_start = true;
            continue;
        }
        if (line_start && (c == '=' || c == '-'))
            break; /* the checksum or END line */
        line_start = false;
        int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
              : c == '+' ? 62 : c == '/' ? 63 : -1;
        if (v < 0) {
            if (c == '=' || c == '\r' || c == ' ')
                continue;
            return false;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (*n >= cap)
                return false;
            out[(*n)++] = (uint8_t)(acc >> bits);
        }
    }
    return *n > 0;
}

static void hex_upper(const uint8_t *p, size_t n, char out[AL_PGP_FPR_MAX])
{
    static const char digits[] = "0123456789ABCDEF";
    size_t i = 0;
    for (; i < n && 2 * i + 2 < AL_PGP_FPR_MAX; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * i] = '\0';
}

/* The subpackets of area [p, p + len): the issuer fingerprint (33) into fpr,
 * the issuer key id (16) into id. False when malformed. */
static bool issuer_subpackets(const uint8_t *p, size_t len, char fpr[AL_PGP_FPR_MAX], char id[AL_PGP_FPR_MAX])
{
    size_t i = 0;
    while (i < len) {
        size_t sl, hl;
        if (p[i] < 192) {
            sl = p[i], hl = 1;
        } else if (p[i] < 255) {
            if (i + 1 >= len)
                return false;
            sl = ((size_t)(p[i] - 192) << 8) + p[i + 1] + 192, hl = 2;
        } else {
            if (i + 4 >= len)
                return false;
            sl = (size_t)p[i + 1] << 24 | (size_t)p[i + 2] << 16 | (size_t)p[i + 3] << 8 | p[i + 4], hl = 5;
        }
        if (sl == 0 || sl > len - i - hl)
            return false;
        const uint8_t *d = p + i + hl;
        unsigned type = d[0] & 0x7f;
        if (type == 33 && (sl == 22 || sl == 34))
            hex_upper(d + 2, sl - 2, fpr);
        else if (type == 16 && sl == 9)
            hex_upper(d + 1, 8, id);
        i += hl + sl;
    }
    return true;
}

enum al_rc al_pgp_sig_issuer(const void *sig, size_t len, char out[AL_PGP_FPR_MAX], struct al_err *err)
{
    out[0] = '\0';
    if (len > AL_LIMIT_PGP_SIG)
        return al_err_set(err, AL_ERR_LIMIT, "openpgp signature larger than %u bytes (AL_LIMIT_PGP_SIG)",
                          AL_LIMIT_PGP_SIG);
    uint8_t *bin = malloc(len ? len : 1);
    if (bin == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    size_t n = 0;
    const uint8_t *p = sig;
    if (len && (p[0] & 0x80)) {
        memcpy(bin, sig, len);
        n = len;
    } else if (!dearmor(sig, len, bin, len, &n)) {
        free(bin);
        return al_err_set(err, AL_ERR_INVALID, "not an openpgp signature (neither armored nor binary)");
    }
    /* The first packet: a signature (tag 2), old or new format. */
    size_t hl = 0, bl = 0;
    bool ok = n >= 2 && (bin[0] & 0x80);
    unsigned tag = ok ? ((bin[0] & 0x40) ? (bin[0] & 0x3fu) : ((bin[0] >> 2) & 0x0fu)) : 0;
    if (ok && (bin[0] & 0x40)) {
        if (bin[1] < 192)
            hl = 2, bl = bin[1];
        else if (bin[1] < 224 && n >= 3)
            hl = 3, bl = ((size_t)(bin[1] - 192) << 8) + bin[2] + 192;
        else if (bin[1] == 255 && n >= 6)
            hl = 6, bl = (size_t)bin[2] << 24 | (size_t)bin[3] << 16 | (size_t)bin[4] << 8 | bin[5];
        else
            ok = false; /* partial lengths: not for a signature */
    } else if (ok) {
        unsigned lt = bin[0] & 3;
        if (lt == 0)
            hl = 2, bl = bin[1];
        else if (lt == 1 && n >= 3)
            hl = 3, bl = (size_t)bin[1] << 8 | bin[2];
        else if (lt == 2 && n >= 5)
            hl = 5, bl = (size_t)bin[1] << 24 | (size_t)bin[2] << 16 | (size_t)bin[3] << 8 | bin[4];
        else if (lt == 3)
            hl = 1, bl = n - 1;
        else
            ok = false;
    }
    ok = ok && tag == 2 && bl <= n - hl && bl >= 1;
    const uint8_t *b = bin + hl;
    char fpr[AL_PGP_FPR_MAX] = "", id[AL_PGP_FPR_MAX] = "";
    if (ok && b[0] == 3) {
        ok = bl >= 15 && b[1] == 5;
        if (ok)
            hex_upper(b + 7, 8, id);
    } else if (ok && b[0] >= 4 && b[0] <= 6) {
        size_t w = b[0] == 6 ? 4 : 2, at = 4;
        for (int area = 0; area < 2 && ok; area++) {
            size_t al = 0;
            ok = at + w <= bl;
            for (size_t k = 0; ok && k < w; k++)
                al = al << 8 | b[at + k];
            at += w;
            ok = ok && al <= bl - at && issuer_subpackets(b + at, al, fpr, id);
            at += al;
        }
    } else {
        ok = false;
    }
    free(bin);
    if (!ok)
        return al_err_set(err, AL_ERR_INVALID, "malformed openpgp signature packet");
    snprintf(out, AL_PGP_FPR_MAX, "%s", fpr[0] ? fpr : id);
    return out[0] ? AL_OK : al_err_set(err, AL_ERR_INVALID, "the openpgp signature names no issuer");
}
