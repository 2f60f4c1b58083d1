/*
 * fuzz_policy.c: the license policy's parsers: a model card's front matter
 * (al_license_from_card), the policy file (al_policy_load), license ids
 * (al_license_normalize), and the decisions over what they return.
 *
 * Input: the first byte picks (mod 3): 0 a model card, 1 policy.json,
 * 2 a license id; the rest is the input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "policy/policy.h"

static char path[300];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_quiet();
    snprintf(path, sizeof path, "%s/policy.json", fz_tmpdir());
    return 0;
}

/* An id the module returned must be normalized: normalizing it again is the same. */
static void check_id(const char *id)
{
    char again[AL_LICENSE_ID_MAX + 1];
    struct al_err err = AL_ERR_INIT;
    if (al_license_normalize(id, again, &err) || strcmp(again, id) != 0)
        abort();
}

static void check_decision(const struct al_license_decision *d)
{
    if ((unsigned)d->verdict > AL_DECIDE_DENY || d->rule[0] == '\0' || (d->disagree && d->finding[0] == '\0'))
        abort();
}

static void card(const uint8_t *p, size_t n)
{
    char *copy = malloc(n ? n : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, p, n);
    struct al_card_license c;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_license_from_card(copy, n, &c, &err);
    free(copy);
    if (rc != AL_OK) {
        if (err.msg[0] == '\0')
            abort();
        return;
    }
    if (c.n > AL_POLICY_CARD_LICENSES)
        abort();
    const char *ids[AL_POLICY_CARD_LICENSES];
    for (size_t i = 0; i < c.n; i++) {
        check_id(c.ids[i]);
        ids[i] = c.ids[i];
    }
    struct al_license_decision d;
    al_policy_license_decide(NULL, ids, c.n, c.n ? c.ids[0] : "mit", false, &d);
    check_decision(&d);
    al_policy_pack_decide(NULL, ids, c.n, NULL, true, &d);
    check_decision(&d);
}

static void policy_file(const uint8_t *p, size_t n)
{
    fz_write_file(path, p, n);
    struct al_policy pol;
    struct al_err err = AL_ERR_INIT;
    if (al_policy_load(path, &pol, &err) != AL_OK) {
        if (err.msg[0] == '\0')
            abort();
        return;
    }
    /* a policy read back is what it was: serialize, load, serialize */
    char *a = NULL, *b = NULL;
    struct al_policy again;
    if (al_policy_serialize(&pol, &a, &err) || (fz_write_file(path, (const uint8_t *)a, strlen(a)), 0) ||
        al_policy_load(path, &again, &err) || al_policy_serialize(&again, &b, &err) || strcmp(a, b) != 0)
        abort();
    for (size_t i = 0; i < pol.n; i++)
        check_id(pol.rules[i].id);
    free(a);
    free(b);
    al_policy_release(&again);
    al_policy_release(&pol);
}

static void license_id(const uint8_t *p, size_t n)
{
    char *s = fz_strndup(p, n);
    char out[AL_LICENSE_ID_MAX + 1];
    struct al_err err = AL_ERR_INIT;
    if (al_license_normalize(s, out, &err) == AL_OK) {
        check_id(out);
        al_license_redist(out, NULL);
    } else if (err.msg[0] == '\0') {
        abort();
    }
    struct al_license_decision d;
    const char *ids[1] = {s};
    al_policy_license_decide(NULL, ids, 1, s, true, &d);
    check_decision(&d);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0: card(data + 1, size - 1); break;
    case 1: policy_file(data + 1, size - 1); break;
    default: license_id(data + 1, size - 1); break;
    }
    return 0;
}
