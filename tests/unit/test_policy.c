/* Unit tests of src/policy: license identifiers, model-card front matter
 * (every edge the line scanner has, caps, random bytes), the policy file
 * (round trip, every kind of corruption refused with the file unchanged), the
 * ingest decision table, the pack decision, card/GGUF disagreement. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "policy/policy.h"

#define LIT(s) s, sizeof(s) - 1

static void norm_ok(const char *in, const char *want)
{
    char out[AL_LICENSE_ID_MAX + 1];
    struct al_err err = AL_ERR_INIT;
    if (al_license_normalize(in, out, &err))
        fail_msg("'%s' refused: %s", in, err.msg);
    assert_string_equal(out, want);
}

static void norm_bad(const char *in)
{
    char out[AL_LICENSE_ID_MAX + 1];
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_license_normalize(in, out, &err), AL_ERR_INVALID);
    assert_true(err.msg[0] != '\0');
}

static void test_normalize(void **state)
{
    norm_ok("Apache-2.0", "apache-2.0");
    norm_ok("  \"MIT\" ", "mit");
    norm_ok("Apache 2.0", "apache-2.0");
    norm_ok("apache2", "apache-2.0");
    norm_ok("LLaMA-3.1", "llama3.1");
    norm_ok("llama3.2", "llama3.2");
    norm_ok("OpenRAIL++", "openrail++");
    norm_ok("CC-BY-NC-SA-4.0", "cc-by-nc-sa-4.0");
    norm_ok("'gemma'", "gemma");
    norm_bad("");
    norm_bad("   ");
    norm_bad("\"\"");
    norm_bad("mit; rm -rf /");
    norm_bad("lic\xc3\xa9nse");
    char longid[AL_LICENSE_ID_MAX + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    norm_bad(longid);
    longid[AL_LICENSE_ID_MAX] = '\0'; /* exactly the cap */
    norm_ok(longid, longid);
}

static void test_table(void **state)
{
    assert_int_equal(al_license_redist("apache-2.0", NULL), AL_REDIST_FREE);
    assert_int_equal(al_license_redist("mit", NULL), AL_REDIST_FREE);
    assert_int_equal(al_license_redist("llama3.1", NULL), AL_REDIST_CONDITIONS);
    assert_int_equal(al_license_redist("gemma", NULL), AL_REDIST_CONDITIONS);
    assert_int_equal(al_license_redist("cc-by-nc-4.0", NULL), AL_REDIST_CONDITIONS);
    assert_int_equal(al_license_redist("proprietary", NULL), AL_REDIST_FORBIDDEN);
    assert_int_equal(al_license_redist("no-such-license", NULL), AL_REDIST_UNKNOWN);
    /* sorted and normalized: the bsearch and the ids depend on it */
    for (size_t i = 0; al_license_table_id(i); i++) {
        char n[AL_LICENSE_ID_MAX + 1];
        struct al_err err = AL_ERR_INIT;
        assert_int_equal(al_license_normalize(al_license_table_id(i), n, &err), AL_OK);
        assert_string_equal(n, al_license_table_id(i));
        if (i)
            assert_true(strcmp(al_license_table_id(i - 1), al_license_table_id(i)) < 0);
    }
}

static struct al_card_license card_ok(const char *text, size_t len)
{
    struct al_card_license c;
    struct al_err err = AL_ERR_INIT;
    if (al_license_from_card(text, len, &c, &err))
        fail_msg("card refused: %s", err.msg);
    return c;
}

static void test_card(void **state)
{
    struct al_card_license c = card_ok(LIT("---\nlicense: apache-2.0\nlanguage: en\n---\n# Model\n"));
    assert_true(c.front_matter);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.ids[0], "apache-2.0");

    /* CRLF, BOM, quotes, a comment, "..." closing */
    c = card_ok(LIT("\xef\xbb\xbf---\r\nlicense: \"Llama3.1\" # meta\r\n...\r\n"));
    assert_int_equal(c.n, 1);
    assert_string_equal(c.ids[0], "llama3.1");

    /* other + license_name */
    c = card_ok(LIT("---\nlicense: other\nlicense_name: deepseek\nlicense_link: LICENSE\n---\n"));
    assert_int_equal(c.n, 1);
    assert_string_equal(c.ids[0], "deepseek");
    /* other without a name stays other */
    c = card_ok(LIT("---\nlicense: other\n---\n"));
    assert_string_equal(c.ids[0], "other");

    /* flow and block lists, duplicates folded */
    c = card_ok(LIT("---\nlicense: [mit, Apache-2.0, mit]\n---\n"));
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[1], "apache-2.0");
    c = card_ok(LIT("---\nlicense:\n  - mit\n  # note\n  - gemma\ntags:\n  - x\n---\n"));
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[0], "mit");
    assert_string_equal(c.ids[1], "gemma");

    /* nested or indented license keys are not the card's license */
    c = card_ok(LIT("---\nmodel-index:\n  license: mit\n---\n"));
    assert_int_equal(c.n, 0);
    /* a license in the Markdown body is not read */
    c = card_ok(LIT("---\ntags: [x]\n---\nlicense: mit\n"));
    assert_int_equal(c.n, 0);
    assert_true(c.front_matter);
    /* no front matter at all, and an empty card */
    c = card_ok(LIT("# A model\nlicense: mit\n"));
    assert_false(c.front_matter);
    assert_int_equal(c.n, 0);
    c = card_ok("", 0);
    assert_int_equal(c.n, 0);
    /* "---" must be the whole first line */
    c = card_ok(LIT("----\nlicense: mit\n---\n"));
    assert_int_equal(c.n, 0);
}

static void card_bad(const char *text, size_t len, enum al_rc want)
{
    struct al_card_license c;
    struct al_err err = AL_ERR_INIT;
    assert_int_equal(al_license_from_card(text, len, &c, &err), want);
    assert_true(err.msg[0] != '\0');
}

static void test_card_refused(void **state)
{
    card_bad(LIT("---\nlicense: mit\n"), AL_ERR_INVALID);          /* never closes */
    card_bad(LIT("---\nlicense: [mit, apache\n---\n"), AL_ERR_INVALID); /* list never closes */
    card_bad(LIT("---\nlicense: m\xc3\xaft\n---\n"), AL_ERR_INVALID);
    card_bad(LIT("---\nlicense: a\0b\n---\n"), AL_ERR_INVALID);
    card_bad(LIT("---\nlicense: [a, b, c, d, e, f, g, h, i]\n---\n"), AL_ERR_LIMIT);
    /* over the cap: refused unread */
    size_t n = AL_POLICY_CARD_MAX + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'x', n);
    memcpy(big, "---\nlicense: mit\n---\n", 21);
    card_bad(big, n, AL_ERR_LIMIT);
    /* exactly the cap is read */
    struct al_card_license c = card_ok(big, n - 1);
    assert_string_equal(c.ids[0], "mit");
    free(big);
}

/* Random bytes, and random bytes after an opening "---": never a crash, never
 * an id that is not normalized. */
static void test_card_random(void **state)
{
    srand(18);
    char buf[512];
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)rand() % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            int k = rand() % 8;
            buf[i] = k == 0 ? '\n' : k == 1 ? '-' : k == 2 ? ':' : k == 3 ? ' ' : (char)(rand() % 256);
        }
        if (round % 2 && n > 16)
            memcpy(buf, "---\nlicense: ", 13);
        struct al_card_license c;
        struct al_err err = AL_ERR_INIT;
        enum al_rc rc = al_license_from_card(buf, n, &c, &err);
        assert_true(rc == AL_OK || rc == AL_ERR_INVALID || rc == AL_ERR_LIMIT);
        for (size_t i = 0; rc == AL_OK && i < c.n; i++) {
            char again[AL_LICENSE_ID_MAX + 1];
            assert_int_equal(al_license_normalize(c.ids[i], again, &err), AL_OK);
        }
    }
}

static void test_file(void **state)
{
    char *dir = tu_mkdtemp();
    char path[4096];
    snprintf(path, sizeof path, "%s/policy.json", dir);
    struct al_err err = AL_ERR_INIT;
    struct al_policy p;
    /* none: the default */
    assert_int_equal(al_policy_load(path, &p, &err), AL_OK);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.unknown, AL_RULE_ACK);
    assert_int_equal(p.scan_max, AL_POLICY_SCAN_WARN);
    assert_int_equal(al_policy_set(&p, "Llama3.1", AL_RULE_ACK, &err), AL_OK);
    assert_int_equal(al_policy_set(&p, "mit", AL_RULE_ALLOW, &err), AL_OK);
    assert_int_equal(al_policy_set(&p, "cc-by-nc-4.0", AL_RULE_DENY, &err), AL_OK);
    assert_int_equal(al_policy_set(&p, "MIT", AL_RULE_DENY, &err), AL_OK); /* replaces */
    assert_int_equal(al_policy_set(&p, "bad id!", AL_RULE_DENY, &err), AL_ERR_INVALID);
    assert_int_equal(p.n, 3);
    p.unknown = AL_RULE_DENY;
    p.scan_max = AL_POLICY_SCAN_OK;
    assert_int_equal(al_policy_save(path, &p, &err), AL_OK);
    al_policy_release(&p);

    struct al_policy q;
    assert_int_equal(al_policy_load(path, &q, &err), AL_OK);
    assert_int_equal(q.n, 3);
    assert_int_equal(al_policy_find(&q, "mit")->rule, AL_RULE_DENY);
    assert_int_equal(al_policy_find(&q, "llama3.1")->rule, AL_RULE_ACK);
    assert_int_equal(q.unknown, AL_RULE_DENY);
    assert_int_equal(q.scan_max, AL_POLICY_SCAN_OK);
    assert_false(al_policy_scan_allows(&q, AL_POLICY_SCAN_WARN));
    assert_true(al_policy_scan_allows(&q, AL_POLICY_SCAN_OK));
    assert_int_equal(al_policy_unset(&q, "llama3.1", &err), AL_OK);
    assert_int_equal(al_policy_unset(&q, "llama3.1", &err), AL_ERR_NOT_FOUND);
    assert_int_equal(q.n, 2);
    al_policy_release(&q);

    /* every corruption is refused, *out untouched, the file unchanged */
    static const char *const bad[] = {
        "", "[]", "{", "{\"version\":2}", "{\"unknown\":\"maybe\"}", "{\"scan\":\"dangerous\"}",
        "{\"licenses\":{\"MIT\":\"allow\"}}", "{\"licenses\":{\"mit\":\"perhaps\"}}",
        "{\"licenses\":{\"mit\":\"allow\",\"mit\":\"deny\"}}", "{\"licenses\":[]}", "{\"extra\":1}",
        "{\"licenses\":{\"a b\":\"allow\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_write_file(path, bad[i], strlen(bad[i]));
        struct al_policy r;
        memset(&r, 0x5a, sizeof r);
        al_err_clear(&err);
        enum al_rc rc = al_policy_load(path, &r, &err);
        if (rc != AL_ERR_CORRUPT)
            fail_msg("'%s': %s (%d)", bad[i], err.msg, rc);
        assert_non_null(strstr(err.msg, "policy.json"));
        assert_int_equal(((unsigned char *)&r)[0], 0x5a);
        size_t len;
        char *now = tu_read_file(path, &len);
        assert_int_equal(len, strlen(bad[i]));
        free(now);
    }
    /* over the file cap */
    char *big = calloc(1, AL_POLICY_FILE_MAX + 2);
    memset(big, ' ', AL_POLICY_FILE_MAX + 1);
    tu_write_file(path, big, AL_POLICY_FILE_MAX + 1);
    assert_int_equal(al_policy_load(path, &p, &err), AL_ERR_LIMIT);
    free(big);
    tu_rmrf(dir);
    free(dir);
}

static void test_rules_cap(void **state)
{
    struct al_policy p;
    al_policy_init(&p);
    struct al_err err = AL_ERR_INIT;
    char id[32];
    for (int i = 0; i < AL_POLICY_RULES_MAX; i++) {
        snprintf(id, sizeof id, "lic-%d", i);
        assert_int_equal(al_policy_set(&p, id, AL_RULE_ALLOW, &err), AL_OK);
    }
    assert_int_equal(al_policy_set(&p, "one-more", AL_RULE_ALLOW, &err), AL_ERR_LIMIT);
    assert_int_equal(al_policy_set(&p, "lic-7", AL_RULE_DENY, &err), AL_OK); /* replacing is fine */
    al_policy_release(&p);
}

static struct al_license_decision decide(const struct al_policy *p, const char *card, const char *gguf, bool acked)
{
    struct al_license_decision d;
    const char *ids[1] = {card};
    al_policy_license_decide(p, ids, card ? 1 : 0, gguf, acked, &d);
    return d;
}

static void test_decide(void **state)
{
    struct al_policy p;
    al_policy_init(&p);
    struct al_err err = AL_ERR_INIT;
    al_policy_set(&p, "apache-2.0", AL_RULE_ALLOW, &err);
    al_policy_set(&p, "llama3.1", AL_RULE_ACK, &err);
    al_policy_set(&p, "cc-by-nc-4.0", AL_RULE_DENY, &err);

    struct al_license_decision d = decide(&p, "Apache-2.0", NULL, false);
    assert_int_equal(d.verdict, AL_DECIDE_ALLOW);
    assert_string_equal(d.license, "apache-2.0");
    assert_non_null(strstr(d.rule, "rule allow"));

    d = decide(&p, NULL, "llama3.1", false);
    assert_int_equal(d.verdict, AL_DECIDE_ACK_NEEDED);
    assert_non_null(strstr(d.rule, "license llama3.1: rule ack (set by 'airlock policy license ack llama3.1')"));
    d = decide(&p, NULL, "llama3.1", true);
    assert_int_equal(d.verdict, AL_DECIDE_ALLOW);
    assert_true(d.acked);

    /* deny is not acknowledged away */
    d = decide(&p, "cc-by-nc-4.0", NULL, true);
    assert_int_equal(d.verdict, AL_DECIDE_DENY);
    assert_string_equal(d.license, "cc-by-nc-4.0");

    /* unknown: a license without a rule, and no license at all */
    d = decide(&p, "gemma", NULL, false);
    assert_int_equal(d.verdict, AL_DECIDE_ACK_NEEDED);
    assert_non_null(strstr(d.rule, "unknown: ack"));
    d = decide(&p, NULL, NULL, false);
    assert_int_equal(d.verdict, AL_DECIDE_ACK_NEEDED);
    assert_string_equal(d.license, "");
    assert_non_null(strstr(d.rule, "no license declared"));
    p.unknown = AL_RULE_DENY;
    d = decide(&p, NULL, NULL, true);
    assert_int_equal(d.verdict, AL_DECIDE_DENY);
    d = decide(&p, "gemma", NULL, true);
    assert_int_equal(d.verdict, AL_DECIDE_DENY);
    /* an unreadable declaration is unknown, never allowed by a rule */
    d = decide(&p, "apache-2.0; evil", NULL, false);
    assert_int_equal(d.verdict, AL_DECIDE_DENY);
    p.unknown = AL_RULE_ALLOW;
    d = decide(&p, "gemma", NULL, false);
    assert_int_equal(d.verdict, AL_DECIDE_ALLOW);

    /* card and GGUF: agreeing is no finding, whatever the spelling */
    d = decide(&p, "Apache 2.0", "apache-2.0", false);
    assert_false(d.disagree);
    assert_int_equal(d.verdict, AL_DECIDE_ALLOW);
    /* disagreeing is a finding, and the stricter license decides */
    d = decide(&p, "apache-2.0", "cc-by-nc-4.0", false);
    assert_true(d.disagree);
    assert_non_null(strstr(d.finding, "'apache-2.0'"));
    assert_non_null(strstr(d.finding, "'cc-by-nc-4.0'"));
    assert_int_equal(d.verdict, AL_DECIDE_DENY);
    assert_string_equal(d.license, "cc-by-nc-4.0");
    d = decide(&p, "cc-by-nc-4.0", "apache-2.0", false);
    assert_true(d.disagree);
    assert_int_equal(d.verdict, AL_DECIDE_DENY);
    d = decide(&p, "apache-2.0", "llama3.1", false);
    assert_int_equal(d.verdict, AL_DECIDE_ACK_NEEDED);

    /* a card listing several licenses: the strictest */
    const char *two[] = {"apache-2.0", "cc-by-nc-4.0"};
    al_policy_license_decide(&p, two, 2, NULL, false, &d);
    assert_int_equal(d.verdict, AL_DECIDE_DENY);
    al_policy_license_decide(&p, two, 2, "cc-by-nc-4.0", false, &d);
    assert_false(d.disagree); /* the GGUF names one of the card's */
    /* NULL policy: the default */
    al_policy_license_decide(NULL, two, 1, NULL, false, &d);
    assert_int_equal(d.verdict, AL_DECIDE_ACK_NEEDED);
    al_policy_release(&p);
}

static void test_pack_decide(void **state)
{
    struct al_license_decision d;
    const char *mit[] = {"mit"}, *llama[] = {"llama3.1"}, *prop[] = {"proprietary"}, *odd[] = {"weird-1.0"};
    al_policy_pack_decide(NULL, mit, 1, NULL, false, &d);
    assert_int_equal(d.verdict, AL_DECIDE_ALLOW);
    al_policy_pack_decide(NULL, llama, 1, NULL, false, &d);
    assert_int_equal(d.verdict, AL_DECIDE_ACK_NEEDED);
    assert_non_null(strstr(d.rule, "--ack-license"));
    al_policy_pack_decide(NULL, llama, 1, NULL, true, &d);
    assert_int_equal(d.verdict, AL_DECIDE_ALLOW);
    assert_true(d.acked);
    al_policy_pack_decide(NULL, prop, 1, NULL, false, &d);
    assert_int_equal(d.verdict, AL_DECIDE_DENY);
    assert_non_null(strstr(d.rule, "forbidden"));
    al_policy_pack_decide(NULL, prop, 1, NULL, true, &d);
    assert_int_equal(d.verdict, AL_DECIDE_ALLOW);
    al_policy_pack_decide(NULL, odd, 1, NULL, false, &d);
    assert_int_equal(d.verdict, AL_DECIDE_ACK_NEEDED);
    al_policy_pack_decide(NULL, NULL, 0, NULL, false, &d);
    assert_int_equal(d.verdict, AL_DECIDE_ACK_NEEDED);
    /* a free card with a forbidden GGUF: the finding, and the GGUF decides */
    al_policy_pack_decide(NULL, mit, 1, "proprietary", false, &d);
    assert_true(d.disagree);
    assert_int_equal(d.verdict, AL_DECIDE_DENY);
    /* a deny rule of the build host's policy wins over --ack-license */
    struct al_policy p;
    al_policy_init(&p);
    struct al_err err = AL_ERR_INIT;
    al_policy_set(&p, "llama3.1", AL_RULE_DENY, &err);
    al_policy_pack_decide(&p, llama, 1, NULL, true, &d);
    assert_int_equal(d.verdict, AL_DECIDE_DENY);
    assert_non_null(strstr(d.rule, "rule deny"));
    al_policy_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),   cmocka_unit_test(test_table),
        cmocka_unit_test(test_card),        cmocka_unit_test(test_card_refused),
        cmocka_unit_test(test_card_random), cmocka_unit_test(test_file),
        cmocka_unit_test(test_rules_cap),   cmocka_unit_test(test_decide),
        cmocka_unit_test(test_pack_decide),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
