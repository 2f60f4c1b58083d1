/*
 * sigs.c: the signatures over checksums.txt and the trust policy.
 *
 * Order: every signature file is checked first (so the report names every
 * signer); a signature by a revoked key or a bad signature by a trusted key
 * (a forgery, or a checksums.txt changed after signing) refuses the bundle
 * whatever else signed it. Untrusted signers are reported and ignored. Then
 * at least one good signature by a trusted key is required before anything
 * checksums.txt says is believed; the model-name patterns and the threshold
 * are applied once the name is known (al_ing_check_policy).
 */
#include "bundle/bundle_int.h"

#include "sign/minisign.h"
#include "sign/pgp.h"

static struct al_bundle_signer *add_signer(struct al_ing *g, const char *kind, const char *file)
{
    struct al_bundle_report *rep = g->rep;
    if (rep->n_signers >= sizeof rep->signers / sizeof rep->signers[0])
        return NULL;
    struct al_bundle_signer *s = &rep->signers[rep->n_signers++];
    memset(s, 0, sizeof *s);
    snprintf(s->kind, sizeof s->kind, "%s", kind);
    snprintf(s->file, sizeof s->file, "%s", file);
    return s;
}

static enum al_rc check_minisign(struct al_ing *g, const struct al_ing_sig *sig, struct al_err *err)
{
    uint8_t id[AL_MINISIGN_KEYID_BYTES];
    char hex[AL_MINISIGN_KEYID_HEX];
    struct al_err e2 = AL_ERR_INIT;
    enum al_rc rc = al_minisign_sig_keyid(sig->text, id, &e2);
    if (rc)
        return al_err_set(err, rc, "%s: %s", sig->name, e2.msg);
    al_minisign_keyid_hex(id, hex);
    struct al_bundle_signer *s = add_signer(g, "minisign", sig->name);
    if (s == NULL)
        return al_err_set(err, AL_ERR_LIMIT, "too many signatures");
    snprintf(s->id, sizeof s->id, "%s", hex);
    const struct al_trust_key *k = al_trust_find(&g->trust, hex);
    if (k == NULL || k->kind != AL_TRUST_MINISIGN) {
        snprintf(s->status, sizeof s->status, "untrusted key");
        return AL_OK;
    }
    snprintf(s->key_name, sizeof s->key_name, "%s", k->name);
    if (k->revoked) {
        snprintf(s->status, sizeof s->status, "revoked key");
        return al_err_set(err, AL_ERR_DENIED, "%s: signed by minisign key %s ('%s'), which was revoked on %.10s; "
                          "bundles it signed are refused", sig->name, hex, k->name, k->revoked_at);
    }
    char *tc = NULL;
    rc = al_minisign_verify(&k->pub, g->sums_text, g->sums_len, sig->text, &tc, &e2);
    free(tc);
    if (rc) {
        snprintf(s->status, sizeof s->status, "bad signature");
        return al_err_set(err, AL_ERR_VERIFY, "%s: the signature by trusted key '%s' (%s) does not verify: %s; "
                          "checksums.txt was changed or the signature forged", sig->name, k->name, hex, e2.msg);
    }
    snprintf(s->status, sizeof s->status, "good");
    s->good = true;
    return AL_OK;
}

static enum al_rc check_gpg(struct al_ing *g, const struct al_ing_sig *sig, struct al_err *err)
{
    struct al_pgp_signer *ps = NULL;
    size_t n = 0;
    struct al_err e2 = AL_ERR_INIT;
    bool have_ring = false;
    for (size_t i = 0; i < g->trust.n; i++)
        have_ring = have_ring || g->trust.keys[i].kind == AL_TRUST_GPG;
    if (!have_ring) {
        /* No openpgp key is trusted: GnuPG is not run, the key is named from the packet. */
        struct al_bundle_signer *s = add_signer(g, "gpg", sig->name);
        if (s) {
            char fpr[AL_PGP_FPR_MAX];
            snprintf(s->status, sizeof s->status, "no trusted openpgp key");
            if (al_pgp_sig_issuer(sig->text, sig->len, fpr, NULL) == AL_OK)
                snprintf(s->id, sizeof s->id, "%s", fpr);
        }
        return AL_OK;
    }
    enum al_rc rc = al_pgp_verify(g->trust.gnupg, g->sums_text, g->sums_len, sig->text, sig->len, &ps, &n, &e2);
    if (rc == AL_ERR_INVALID || rc == AL_ERR_LIMIT || rc == AL_ERR_IO || n == 0) {
        free(ps);
        return al_err_set(err, rc ? rc : AL_ERR_INVALID, "%s: %s", sig->name, rc ? e2.msg : "no signature found");
    }
    for (size_t i = 0; i < n; i++) {
        struct al_bundle_signer *s = add_signer(g, "gpg", sig->name);
        if (s == NULL)
            break;
        snprintf(s->id, sizeof s->id, "%s", ps[i].fpr);
        /* Trust names primary keys; a signing subkey counts as its primary. */
        const struct al_trust_key *k = al_trust_find(&g->trust, ps[i].fpr);
        if (k == NULL && ps[i].primary[0])
            k = al_trust_find(&g->trust, ps[i].primary);
        if (k == NULL || k->kind != AL_TRUST_GPG) {
            snprintf(s->status, sizeof s->status, "untrusted key");
            continue;
        }
        snprintf(s->id, sizeof s->id, "%s", k->id);
        snprintf(s->key_name, sizeof s->key_name, "%s", k->name);
        if (k->revoked) {
            snprintf(s->status, sizeof s->status, "revoked key");
            free(ps);
            return al_err_set(err, AL_ERR_DENIED, "%s: signed by openpgp key %s ('%s'), which was revoked on %.10s; "
                              "bundles it signed are refused", sig->name, k->id, k->name, k->revoked_at);
        }
        if (!ps[i].good) {
            snprintf(s->status, sizeof s->status, "%s", ps[i].status ? ps[i].status : "bad signature");
            rc = al_err_set(err, AL_ERR_VERIFY, "%s: the signature by trusted key '%s' (%s) does not verify (%s); "
                            "checksums.txt was changed or the signature forged", sig->name, k->name, k->id,
                            s->status);
            free(ps);
            return rc;
        }
        snprintf(s->status, sizeof s->status, "good");
        s->good = true;
    }
    free(ps);
    return AL_OK;
}

enum al_rc al_ing_check_sigs(struct al_ing *g, struct al_err *err)
{
    g->sigs_checked = true;
    if (g->sums == NULL)
        return al_err_set(err, AL_ERR_VERIFY, "the bundle has no checksums.txt; nothing in it can be verified");
    if (g->n_sigs == 0 && g->o->allow_unsigned) {
        /* pull --allow-unsigned: the digests are still proven; the override is recorded. */
        size_t n = strlen(g->rep->overrides);
        snprintf(g->rep->overrides + n, sizeof g->rep->overrides - n, "%sunsigned", n ? "," : "");
        return AL_OK;
    }
    if (g->n_sigs == 0)
        return al_err_set(err, AL_ERR_VERIFY, "checksums.txt is not signed: the bundle has no checksums.txt.minisig "
                          "or checksums.txt.asc");
    enum al_rc rc = AL_OK;
    for (size_t i = 0; i < g->n_sigs && !rc; i++)
        rc = g->sigs[i].kind == 'm' ? check_minisign(g, &g->sigs[i], err) : check_gpg(g, &g->sigs[i], err);
    if (rc)
        return rc;
    size_t good = 0;
    for (size_t i = 0; i < g->rep->n_signers; i++)
        good += g->rep->signers[i].good;
    if (good == 0) {
        const struct al_bundle_signer *s = g->rep->n_signers ? &g->rep->signers[0] : NULL;
        if (s && strcmp(s->kind, "gpg") == 0)
            return al_err_set(err, AL_ERR_DENIED, "no signature by a trusted key: signed by openpgp key %s; if you "
                              "trust it, check that fingerprint with the signer, export their public key ('gpg "
                              "--armor --export %s > KEY.asc') and add it with 'airlock trust add NAME --gpg KEY.asc'",
                              s->id[0] ? s->id : "(not named in the signature)", s->id[0] ? s->id : "KEY");
        return al_err_set(err, AL_ERR_DENIED, "no signature by a trusted key: %s%s%s%s; if you trust it, add it with "
                          "'airlock trust add NAME --minisign KEY.pub' (or --gpg KEY.asc)",
                          s ? "signed by " : "no signer found", s ? s->kind : "", s ? " key " : "",
                          s ? (s->id[0] ? s->id : s->status) : "");
    }
    al_ing_check(g, "signature");
    return AL_OK;
}

enum al_rc al_ing_check_policy(struct al_ing *g, const char *name, struct al_err *err)
{
    struct al_bundle_report *rep = g->rep;
    if (g->local)
        return AL_OK; /* an import: an operator's local action, like add */
    if (g->n_sigs == 0 && g->o->allow_unsigned)
        return AL_OK; /* recorded as the "unsigned" override by al_ing_check_sigs */
    int need = al_trust_threshold(&g->trust, name);
    int have = 0;
    char names[256] = "", refused[256] = "";
    for (size_t i = 0; i < rep->n_signers; i++) {
        struct al_bundle_signer *s = &rep->signers[i];
        if (!s->good)
            continue;
        const struct al_trust_key *k = al_trust_find(&g->trust, s->id);
        bool dup = false;
        for (size_t j = 0; j < i; j++)
            dup = dup || (rep->signers[j].good && strcmp(rep->signers[j].id, s->id) == 0);
        if (k == NULL || dup)
            continue;
        if (!al_trust_allows(k, name)) {
            size_t n = strlen(refused);
            snprintf(refused + n, sizeof refused - n, "%s'%.64s' (only '%.60s')", n ? ", " : "", k->name, k->models);
            snprintf(s->status, sizeof s->status, "good, not for this model");
            continue;
        }
        have++;
        size_t n = strlen(names);
        snprintf(names + n, sizeof names - n, "%s'%s'", n ? ", " : "", k->name);
    }
    rep->threshold = need;
    rep->good_signers = have;
    if (have == 0)
        return al_err_set(err, AL_ERR_DENIED, "no trusted key may sign model '%s': signed by %s; see 'airlock trust "
                          "ls'", name, refused[0] ? refused : "nobody allowed");
    if (have < need)
        return al_err_set(err, AL_ERR_DENIED, "model '%s' needs %d signatures by trusted keys, the bundle has %d (%s)",
                          name, need, have, names);
    al_ing_check(g, "trust-policy");
    al_ing_check(g, "threshold");
    return AL_OK;
}
