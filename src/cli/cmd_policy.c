/*
 * cmd_policy.c: the site's license policy and scan requirement (policy
 * license, policy scan, policy show, policy check).
 *
 * A change runs under the store's write lock: the policy is loaded (a corrupt
 * file stops here, nothing changed), changed, its event ("policy-change",
 * naming the SHA-256 of the new file) appended to the event log, and only
 * then the file replaced atomically. So no change is ever in force without
 * its event; a crash between the two leaves an event whose "policy" digest
 * the file does not have, which `airlock policy show` reports (as it reports
 * a file edited by hand, outside the audited path).
 */
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_util.h"
#include "core/fs.h"
#include "core/hash.h"
#include "policy/policy.h"

int al_cmd_policy(int argc, char **argv);

static const char *const license_help =
    "usage: airlock policy license allow|ack|deny ID...\n"
    "       airlock policy license rm ID...\n"
    "       airlock policy license unknown allow|ack|deny\n\n"
    "Sets which model licenses may enter this store. ID is an SPDX identifier or a\n"
    "model license name (llama3.1, gemma, openrail++, cc-by-nc-4.0), without case.\n"
    "  allow    models under ID are let in\n"
    "  ack      let in only with an operator's acknowledgement (recorded)\n"
    "  deny     refused\n"
    "  rm       forget the rule: 'unknown' decides again\n"
    "  unknown  the answer for a license without a rule, or none declared\n"
    "           (default ack)\n"
    "Every change is recorded in the event log ('airlock log').\n\n"
    "example: airlock policy license allow apache-2.0 mit\n"
    "         airlock policy license ack llama3.1 gemma\n";

static const char *const scan_help =
    "usage: airlock policy scan require ok|warn\n\n"
    "The highest scan verdict ('airlock scan') a model may have to enter:\n"
    "  warn  refuse only dangerous files (default)\n"
    "  ok    refuse warnings too\n"
    "Recorded in the event log.\n";

static const char *const show_help =
    "usage: airlock policy show [--json] [--table]\n\n"
    "Prints the policy in force: the license rules, the answer for unknown\n"
    "licenses, the scan requirement. --table prints airlock's built-in table of\n"
    "what each known license says of redistribution (guidance, not legal advice;\n"
    "see docs/internals/policy.md). Exits 5 (after printing the policy) when the\n"
    "file is not the one the newest policy-change event recorded: edited by hand,\n"
    "or a change recorded but not written.\n";

static const char *const check_help =
    "usage: airlock policy check [--ack] [--pack] [--json] FILE...\n\n"
    "Reads the license one model declares, in its model card (README.md: YAML front\n"
    "matter 'license:') and its GGUF file (general.license), and prints what this\n"
    "store's policy decides: allow, ack-needed or deny, with the rule that decided.\n"
    "Give one model's files: at most one card and one GGUF file. Card and GGUF\n"
    "naming different licenses is reported as a finding.\n"
    "  --ack   decide as if the operator acknowledged the license\n"
    "  --pack  decide as the build host does before packing: from the built-in\n"
    "          table of redistribution terms (and deny rules of this policy)\n"
    "  --json  one JSON object\n"
    "Exit status: 0 allow; 6 ack-needed or deny.\n";

/* The policy file of the CLI's home, for commands that only read it (no
 * store needed: a build host may have none). */
static int home_policy_file(char *path, size_t size)
{
    char home[AL_LIMIT_PATH];
    struct al_err err = AL_ERR_INIT;
    al_cli_home(home, sizeof home);
    if (al_policy_path(home, path, size, &err))
        return al_cli_fail(&err);
    return 0;
}

/* The policy file of r's store. */
static int policy_file(struct al_repo *r, char *path, size_t size)
{
    struct al_err err = AL_ERR_INIT;
    if (al_policy_path(al_repo_home(r), path, size, &err))
        return al_cli_fail(&err);
    return 0;
}

typedef enum al_rc change_fn(struct al_policy *p, int argc, char **argv, int value, struct al_err *err);

/* Loads, changes, records, saves (the header comment), under the write lock.
 * what names the change in the event ("license allow"); args are its ids;
 * value (a rule or a verdict) goes to fn. */
static int change(const char *what, change_fn *fn, int argc, char **argv, int value)
{
    struct al_repo *r = NULL;
    int st = al_cli_open_repo(false, &r);
    if (st)
        return st;
    char path[AL_LIMIT_PATH];
    if ((st = policy_file(r, path, sizeof path))) {
        al_repo_free(r);
        return st;
    }
    struct al_err err = AL_ERR_INIT;
    struct al_policy p;
    char *before = NULL, *after = NULL, *detail = NULL;
    bool locked = false, loaded = false, same = false;
    enum al_rc rc = al_repo_write_lock(r, &err);
    if (rc)
        goto out;
    locked = true;
    if ((rc = al_policy_load(path, &p, &err)))
        goto out;
    loaded = true;
    if ((rc = al_policy_serialize(&p, &before, &err)) || (rc = fn(&p, argc, argv, value, &err)) ||
        (rc = al_policy_serialize(&p, &after, &err)))
        goto out;
    same = strcmp(before, after) == 0 && al_fs_exists(path);
    if (same)
        goto out;
    uint8_t raw[AL_SHA256_BYTES];
    char digest[AL_DIGEST_SIZE];
    al_sha256_buf(after, strlen(after), raw);
    al_digest_format(raw, digest);
    json_t *ids = json_array();
    for (int i = 0; i < argc; i++)
        json_array_append_new(ids, json_string(argv[i]));
    json_t *d = json_pack("{s:s, s:o, s:s}", "change", what, "args", ids, "policy", digest);
    detail = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(d);
    if (detail == NULL) {
        rc = al_err_set(&err, AL_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = al_repo_append_event(r, "policy-change", "", "", detail, &err)))
        goto out;
    if ((rc = al_policy_save(path, &p, &err))) {
        struct al_err e = err;
        al_err_clear(&err);
        al_err_set(&err, e.rc, "the policy change is recorded in the event log but not in force: %s; run the "
                   "command again", e.msg);
    }
out:
    if (locked)
        al_repo_write_unlock(r);
    if (!rc)
        printf("%s%s %s", same ? "unchanged: " : "", "policy", what);
    for (int i = 0; !rc && i < argc; i++)
        printf(" %s", argv[i]);
    if (!rc)
        printf("\nnext: airlock policy show; airlock policy check CARD|GGUF\n");
    free(before);
    free(after);
    free(detail);
    if (loaded)
        al_policy_release(&p);
    al_repo_free(r);
    return rc ? al_cli_fail(&err) : AL_EXIT_OK;
}

static enum al_rc set_rules(struct al_policy *p, int argc, char **argv, int rule, struct al_err *err)
{
    for (int i = 0; i < argc; i++) {
        enum al_rc rc = al_policy_set(p, argv[i], (enum al_license_rule)rule, err);
        if (rc)
            return rc;
    }
    return AL_OK;
}

static enum al_rc rm_rules(struct al_policy *p, int argc, char **argv, int unused, struct al_err *err)
{
    for (int i = 0; i < argc; i++) {
        enum al_rc rc = al_policy_unset(p, argv[i], err);
        if (rc)
            return rc;
    }
    return AL_OK;
}

static enum al_rc set_unknown(struct al_policy *p, int argc, char **argv, int rule, struct al_err *err)
{
    p->unknown = (enum al_license_rule)rule;
    return AL_OK;
}

static enum al_rc set_scan(struct al_policy *p, int argc, char **argv, int verdict, struct al_err *err)
{
    p->scan_max = verdict;
    return AL_OK;
}

static int cmd_license(int argc, char **argv)
{
    if (al_cli_wants_help(argc, argv) || argc < 2) {
        if (argc < 2)
            return al_cli_usage_error("policy license", "needs allow, ack, deny, rm or unknown");
        fputs(license_help, stdout);
        return AL_EXIT_OK;
    }
    const char *verb = argv[1];
    enum al_license_rule rule;
    if (strcmp(verb, "unknown") == 0) {
        if (argc != 3 || !al_license_rule_parse(argv[2], &rule))
            return al_cli_usage_error("policy license", "unknown needs one of allow, ack or deny");
        return change("license unknown", set_unknown, 1, argv + 2, (int)rule);
    }
    if (argc < 3)
        return al_cli_usage_error("policy license", "%s needs at least one license ID", verb);
    for (int i = 2; i < argc; i++) {
        char norm[AL_LICENSE_ID_MAX + 1];
        struct al_err err = AL_ERR_INIT;
        if (al_license_normalize(argv[i], norm, &err))
            return al_cli_usage_error("policy license", "%s", err.msg);
    }
    if (strcmp(verb, "rm") == 0)
        return change("license rm", rm_rules, argc - 2, argv + 2, 0);
    if (!al_license_rule_parse(verb, &rule))
        return al_cli_usage_error("policy license", "needs allow, ack, deny, rm or unknown (got '%s')", verb);
    char what[32];
    snprintf(what, sizeof what, "license %s", verb);
    return change(what, set_rules, argc - 2, argv + 2, (int)rule);
}

static int cmd_scan(int argc, char **argv)
{
    if (al_cli_wants_help(argc, argv)) {
        fputs(scan_help, stdout);
        return AL_EXIT_OK;
    }
    int verdict;
    if (argc != 3 || strcmp(argv[1], "require") != 0 || !al_policy_scan_parse(argv[2], &verdict))
        return al_cli_usage_error("policy scan", "needs 'require ok' or 'require warn'");
    return change("scan require", set_scan, 1, argv + 2, verdict);
}

/* Compares the policy file with the digest the newest policy-change event
 * names; a mismatch (a change recorded but not written, or the file edited
 * by hand) is reported on stderr and returns false. Best effort: without a
 * readable store there is nothing to compare with. */
static bool matches_log(const char *path)
{
    char home[AL_LIMIT_PATH];
    al_cli_home(home, sizeof home);
    struct al_repo *r = NULL;
    struct al_err err = AL_ERR_INIT;
    struct al_event *ev = NULL;
    size_t n = 0;
    if (al_repo_open_read(home, &r, &err))
        return true; /* no store here (a build host): nothing recorded to compare with */
    if (al_repo_list_events(r, NULL, NULL, &ev, &n, &err)) {
        al_repo_free(r);
        fprintf(stderr, "airlock: warning: cannot read the event log to check the policy file: %s\n", err.msg);
        return false;
    }
    al_repo_free(r);
    char want[AL_DIGEST_SIZE] = "", have[AL_DIGEST_SIZE] = "none";
    for (size_t i = n; i-- > 0;) {
        if (strcmp(ev[i].kind, "policy-change") != 0)
            continue;
        json_t *d = ev[i].detail ? json_loads(ev[i].detail, 0, NULL) : NULL;
        const char *pol = json_string_value(json_object_get(d, "policy"));
        snprintf(want, sizeof want, "%s", pol ? pol : "?");
        json_decref(d);
        break;
    }
    al_index_events_free(ev, n);
    if (al_fs_exists(path) && al_sha256_path(path, have, NULL, NULL, &err))
        snprintf(have, sizeof have, "unreadable");
    if ((*want == '\0' && strcmp(have, "none") == 0) || strcmp(want, have) == 0)
        return true;
    fprintf(stderr, "airlock: warning: '%s' is %s but the newest policy-change event recorded %s: the file "
            "was changed outside 'airlock policy', or a change was recorded but not written; check it and "
            "set the rules again with 'airlock policy license ...' (see 'airlock log')\n", path, have,
            *want ? want : "no change at all");
    return false;
}

static void print_table(bool json)
{
    json_t *a = json ? json_array() : NULL;
    if (!json)
        printf("%-28s %-11s %s\n", "LICENSE", "REDIST", "NOTE");
    for (size_t i = 0; al_license_table_id(i); i++) {
        const char *id = al_license_table_id(i), *note;
        enum al_redist r = al_license_redist(id, &note);
        if (json)
            json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "id", id, "redistribution", al_redist_name(r),
                                               "note", note));
        else
            printf("%-28s %-11s %s\n", id, al_redist_name(r), note);
    }
    if (json) {
        char *s = json_dumps(a, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(a);
    }
}

static int cmd_show(int argc, char **argv)
{
    if (al_cli_wants_help(argc, argv)) {
        fputs(show_help, stdout);
        return AL_EXIT_OK;
    }
    bool json = false, table = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--table") == 0)
            table = true;
        else
            return al_cli_usage_error("policy show", "unknown argument '%s'", argv[i]);
    }
    if (table) {
        print_table(json);
        return AL_EXIT_OK;
    }
    char path[AL_LIMIT_PATH];
    struct al_err err = AL_ERR_INIT;
    struct al_policy p;
    int st = home_policy_file(path, sizeof path);
    if (st)
        return st;
    bool recorded = matches_log(path);
    if (al_policy_load(path, &p, &err))
        return al_cli_fail(&err);
    if (json) {
        char *s = NULL;
        if (al_policy_serialize(&p, &s, &err)) {
            al_policy_release(&p);
            return al_cli_fail(&err);
        }
        fputs(s, stdout);
        free(s);
    } else {
        printf("policy  %s%s\n", path, al_fs_exists(path) ? "" : " (not written yet: the default policy)");
        printf("unknown licenses  %s\nscan required     %s or better (refused: %s)\n",
               al_license_rule_name(p.unknown), al_policy_scan_name(p.scan_max),
               p.scan_max == AL_POLICY_SCAN_OK ? "warn, dangerous" : "dangerous");
        if (p.n == 0)
            printf("no license rules; add some with 'airlock policy license allow|ack|deny ID...'\n");
        else
            printf("%-28s %-6s %s\n", "LICENSE", "RULE", "REDISTRIBUTION (built-in table)");
        for (size_t i = 0; i < p.n; i++)
            printf("%-28s %-6s %s\n", p.rules[i].id, al_license_rule_name(p.rules[i].rule),
                   al_redist_name(al_license_redist(p.rules[i].id, NULL)));
    }
    al_policy_release(&p);
    return recorded ? AL_EXIT_OK : AL_EXIT_VERIFY;
}

/* Reads FILE as a GGUF file when it starts with "GGUF", else as a card. */
static int read_one(const char *file, bool *is_gguf, struct al_card_license *card, char *gguf, size_t gsize)
{
    struct al_err err = AL_ERR_INIT;
    int fd = -1;
    char magic[4] = {0};
    if (al_fs_open_regular(file, &fd, &err))
        return al_cli_fail(&err);
    ssize_t got = pread(fd, magic, 4, 0);
    *is_gguf = got == 4 && memcmp(magic, "GGUF", 4) == 0;
    if (*is_gguf) {
        enum al_rc rc = al_license_from_gguf_fd(fd, file, gguf, gsize, &err);
        close(fd);
        return rc ? al_cli_fail(&err) : 0;
    }
    close(fd);
    char *text = NULL;
    size_t len = 0;
    if (al_fs_read_file(file, AL_POLICY_CARD_MAX, &text, &len, &err) ||
        al_license_from_card(text, len, card, &err)) {
        free(text);
        fprintf(stderr, "airlock: error: '%s': %s\n", file, err.msg);
        return al_cli_exit_code(err.rc);
    }
    free(text);
    return 0;
}

static int cmd_check(int argc, char **argv)
{
    if (al_cli_wants_help(argc, argv)) {
        fputs(check_help, stdout);
        return AL_EXIT_OK;
    }
    bool ack = false, pack = false, json = false;
    const char *card_file = NULL, *gguf_file = NULL;
    const char *files[2];
    size_t nf = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ack") == 0)
            ack = true;
        else if (strcmp(argv[i], "--pack") == 0)
            pack = true;
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (argv[i][0] == '-' && argv[i][1])
            return al_cli_usage_error("policy check", "unknown option '%s'", argv[i]);
        else if (nf == 2)
            return al_cli_usage_error("policy check", "check one model at a time: one card and one GGUF file");
        else
            files[nf++] = argv[i];
    }
    if (nf == 0)
        return al_cli_usage_error("policy check", "needs a model card or GGUF file");
    struct al_card_license card;
    memset(&card, 0, sizeof card);
    char gguf[256] = "";
    for (size_t i = 0; i < nf; i++) {
        bool is_gguf = false;
        struct al_card_license c;
        memset(&c, 0, sizeof c);
        char g[256] = "";
        int st = read_one(files[i], &is_gguf, &c, g, sizeof g);
        if (st)
            return st;
        if (is_gguf ? gguf_file != NULL : card_file != NULL)
            return al_cli_usage_error("policy check", "check one model at a time: one card and one GGUF file");
        if (is_gguf) {
            gguf_file = files[i];
            snprintf(gguf, sizeof gguf, "%s", g);
        } else {
            card_file = files[i];
            card = c;
        }
    }
    /* The home's policy; where none was written (a build host) the default
     * policy applies. */
    struct al_policy p;
    struct al_err err = AL_ERR_INIT;
    char path[AL_LIMIT_PATH];
    int st = home_policy_file(path, sizeof path);
    if (st)
        return st;
    if (al_policy_load(path, &p, &err))
        return al_cli_fail(&err);
    const char *ids[AL_POLICY_CARD_LICENSES];
    for (size_t i = 0; i < card.n; i++)
        ids[i] = card.ids[i];
    struct al_license_decision d;
    if (pack)
        al_policy_pack_decide(&p, ids, card.n, gguf, ack, &d);
    else
        al_policy_license_decide(&p, ids, card.n, gguf, ack, &d);
    al_policy_release(&p);
    if (json) {
        json_t *cl = json_array();
        for (size_t i = 0; i < card.n; i++)
            json_array_append_new(cl, json_string(card.ids[i]));
        json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:s?, s:o, s:s?, s:s, s:b}", "decision",
                              al_decision_name(d.verdict), "license", d.license, "rule", d.rule, "acknowledged",
                              d.acked, "card", card_file, "card_licenses", cl, "gguf", gguf_file, "gguf_license",
                              gguf, "disagree", d.disagree);
        if (o && d.disagree)
            json_object_set_new(o, "finding", json_string(d.finding));
        char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        if (card_file) {
            printf("card  %s: ", card_file);
            if (card.n == 0)
                printf("%s\n", card.front_matter ? "no license in its front matter" : "no front matter");
            for (size_t i = 0; i < card.n; i++)
                printf("%s%s", card.ids[i], i + 1 < card.n ? ", " : "\n");
        }
        if (gguf_file)
            printf("gguf  %s: %s\n", gguf_file, *gguf ? gguf : "no general.license");
        if (d.disagree)
            printf("finding: %s\n", d.finding);
        printf("%s: %s\n", al_decision_name(d.verdict), d.rule);
        if (d.verdict == AL_DECIDE_ACK_NEEDED)
            printf("next: %s, or set a rule: airlock policy license allow|deny %s\n",
                   pack ? "airlock pack --ack-license" : "acknowledge it at ingest", *d.license ? d.license : "ID");
    }
    return d.verdict == AL_DECIDE_ALLOW ? AL_EXIT_OK : AL_EXIT_DENIED;
}

int al_cmd_policy(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "license") == 0)
        return cmd_license(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "scan") == 0)
        return cmd_scan(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "show") == 0)
        return cmd_show(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (al_cli_wants_help(argc, argv)) {
        printf("usage: airlock policy license|scan|show|check ...\n\n"
               "The site's policy for what may enter this store: model licenses (allow, ack,\n"
               "deny; unknown) and the scan verdict required. Each subcommand takes --help.\n");
        return AL_EXIT_OK;
    }
    return al_cli_usage_error("policy", "needs license, scan, show or check");
}
