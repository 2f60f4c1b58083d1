/*
 * cmd_registry.c: push and pull through OCI registries. The work is in
 * src/bundle (push.c, pull.c) over src/registry; this file parses, prints
 * and advises.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "cli/cli.h"
#include "cli/cli_key.h"
#include "cli/cli_util.h"
#include "cli/verdict.h"
#include "core/limits.h"
#include "registry/registry.h"

int al_cmd_push(int argc, char **argv);
int al_cmd_pull(int argc, char **argv);

#define PASSWORD_MAX 1024u

enum { O_PLAIN = 1000, O_CA, O_CERT, O_KEY, O_USER, O_AUTHFILE, O_JSON, O_UNSIGNED, O_EXPIRED, O_DOWNGRADE, O_DANGEROUS, O_ACK,
       O_NOACT, O_MAXE, O_MAXT, O_EXPIRES, O_SEQ };

/* The common registry options; the password of --user is read from stdin. */
struct reg_cli {
    struct al_reg_opts ro;
    const char *user;
    char password[PASSWORD_MAX + 1];
    bool json;
};

static int reg_opt(const char *cmd, int c, struct reg_cli *rc)
{
    switch (c) {
    case O_PLAIN: rc->ro.plain_http = true; return 0;
    case O_CA: rc->ro.ca_file = optarg; return 0;
    case O_CERT: rc->ro.cert_file = optarg; return 0;
    case O_KEY: rc->ro.key_file = optarg; return 0;
    case O_USER: rc->user = optarg; return 0;
    case O_AUTHFILE: rc->ro.auth_file = optarg; return 0;
    case O_JSON: rc->json = true; return 0;
    default: return al_cli_usage_error(cmd, "unknown option");
    }
}

static int reg_finish(const char *cmd, struct reg_cli *rc)
{
    if (rc->ro.key_file && !rc->ro.cert_file)
        return al_cli_usage_error(cmd, "--key needs --cert (the client certificate it belongs to)");
    if (rc->ro.cert_file && rc->ro.plain_http)
        return al_cli_usage_error(cmd, "--cert is a TLS client certificate: it cannot go with --plain-http");
    if (!rc->user)
        return 0;
    if (isatty(STDIN_FILENO))
        fprintf(stderr, "password for %s: ", rc->user);
    if (!fgets(rc->password, sizeof rc->password, stdin))
        return al_cli_usage_error(cmd, "--user needs the password on stdin (echo \"$PW\" | airlock %s --user NAME "
                                  "...)", cmd);
    rc->password[strcspn(rc->password, "\r\n")] = '\0';
    rc->ro.user = rc->user;
    rc->ro.password = rc->password;
    return 0;
}

static void reg_chunk(struct reg_cli *rc)
{
    const char *cs = getenv("AIRLOCK_REGISTRY_CHUNK_SIZE"); /* tests: chunked uploads of small blobs */
    if (cs && *cs) {
        char *end = NULL;
        unsigned long long v = strtoull(cs, &end, 10);
        if (end && *end == '\0' && v >= 1024)
            rc->ro.chunk_size = v;
    }
}

static void reg_wipe(struct reg_cli *rc)
{
    volatile char *p = rc->password;
    for (size_t i = 0; i < sizeof rc->password; i++)
        p[i] = 0;
}

#define REG_LONGOPTS                                                                                                   \
    {"plain-http", no_argument, NULL, O_PLAIN}, {"ca-file", required_argument, NULL, O_CA},                            \
        {"cert", required_argument, NULL, O_CERT}, {"key", required_argument, NULL, O_KEY},                            \
        {"user", required_argument, NULL, O_USER}, {"authfile", required_argument, NULL, O_AUTHFILE},                  \
        {"json", no_argument, NULL, O_JSON}, {"help", no_argument, NULL, 'h'}

#define REG_HELP                                                                                                       \
    "  --plain-http          talk http:// (a registry without TLS)\n"                                              \
    "  --ca-file PEM         trust this CA for the registry's TLS certificate\n"                                   \
    "  --cert PEM            present this client certificate (mTLS, as curl --cert)\n"                             \
    "  --key PEM             its private key, unencrypted (default: in the --cert file)\n"                        \
    "  --user NAME           log in as NAME; the password is read from stdin\n"                                    \
    "  --authfile FILE       credentials from this auth.json (default: ${XDG_RUNTIME_DIR}/\n"                      \
    "                        containers/auth.json, ~/.config/containers/auth.json,\n"                              \
    "                        ~/.docker/config.json: what `skopeo login` writes)\n"                                 \
    "  --json                print the result as JSON\n"

int al_cmd_push(int argc, char **argv)
{
    static const struct option opts[] = {
        REG_LONGOPTS,
        {"sign", required_argument, NULL, 's'},
        {"expires", required_argument, NULL, O_EXPIRES},
        {"seq", required_argument, NULL, O_SEQ},
        {"allow-dangerous", no_argument, NULL, O_DANGEROUS},
        {"ack-license", required_argument, NULL, O_ACK},
        {NULL, 0, NULL, 0},
    };
    struct reg_cli rc = {.ro = {.plain_http = false}};
    struct al_bundle_pack_opts po = {.progress = true};
    const char *key_paths[AL_BUNDLE_MAX_SIGS];
    size_t n_keys = 0;
    int c, st = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (n_keys >= AL_BUNDLE_MAX_SIGS)
                return al_cli_usage_error("push", "at most %u --sign keys", AL_BUNDLE_MAX_SIGS);
            key_paths[n_keys++] = optarg;
            break;
        case O_EXPIRES: po.expires = optarg; break;
        case O_SEQ: {
            long long seq = 0;
            if ((st = al_cli_opt_int("push", "--seq", optarg, 1, INT64_MAX, &seq)))
                return st;
            po.seq = seq;
            break;
        }
        case O_DANGEROUS: po.allow_dangerous = true; break;
        case O_ACK: po.ack_license = optarg; break;
        case 'h':
            printf("usage: airlock push REF HOST[:PORT]/REPO[:TAG] [--sign KEY]... [options]\n\n"
                   "Pushes a stored version to an OCI registry (distribution spec v1.1): the\n"
                   "blobs the registry lacks (HEAD first; one PUT for small blobs, PATCH chunks\n"
                   "for large), then the manifest under TAG (default latest).\n\n"
                   "With --sign the version is packed as 'airlock export' packs it (the same\n"
                   "signed manifest: a version that came in a bundle keeps its digest; the same\n"
                   "scan and license checks) and checksums.txt with its signatures travels as an\n"
                   "OCI referrer of the manifest: listed by the registry's referrers API when it\n"
                   "has one, else in the image index tagged sha256-<hex>. 'airlock pull' checks\n"
                   "it under its trust policy exactly as 'airlock ingest' checks a bundle.\n"
                   "Without --sign the stored manifest is pushed as it is, with the signatures\n"
                   "the version arrived with (a signed bundle's at ingest, a registry's at pull)\n"
                   "as its referrer: pullers prove the original signers. A version that arrived\n"
                   "unsigned (add, pull --allow-unsigned) goes unsigned: pullers need\n"
                   "--allow-unsigned.\n\n"
                   "  -s, --sign KEY        minisign secret key; repeat for k-of-n\n"
                   "  --expires DATE        pullers refuse it after DATE\n"
                   "  --seq N               sequence number (default: as 'airlock export')\n"
                   "  --allow-dangerous     push a file the scan calls dangerous\n"
                   "  --ack-license ID      acknowledge the model's license (signed manifest)\n"
                   REG_HELP
                   "\nexample: airlock push demo:1.0 registry.site:5000/models/demo:1.0 --sign build.key\n");
            return AL_EXIT_OK;
        default:
            if ((st = reg_opt("push", c, &rc)))
                return st;
        }
    }
    if (argc - optind != 2)
        return al_cli_usage_error("push", "needs REF and HOST[:PORT]/REPO[:TAG]");
    if ((st = reg_finish("push", &rc)))
        return st;
    reg_chunk(&rc);
    struct al_mkey_sec *keys[AL_BUNDLE_MAX_SIGS] = {0};
    struct al_repo *r = NULL;
    struct al_err err = AL_ERR_INIT;
    struct al_bundle_pushed res;
    struct al_bundle_pack_opts pre = po;
    pre.ref = argv[optind];
    st = n_keys ? al_cli_pack_preflight("push", &pre) : 0;
    for (size_t i = 0; i < n_keys && !st; i++)
        if (al_cli_load_secret_key(key_paths[i], &keys[i], &err))
            st = al_cli_fail(&err);
    if (st || (st = al_cli_open_repo(false, &r)))
        goto out;
    po.keys = keys;
    po.n_keys = n_keys;
    po.progress = !rc.json;
    if (al_bundle_push(r, argv[optind], argv[optind + 1], &rc.ro, &po, &res, &err)) {
        st = al_cli_fail(&err);
        goto out;
    }
    if (rc.json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:s?, s:s, s:I, s:I, s:I, s:I}", "ref", argv[optind], "destination",
                              argv[optind + 1], "manifest", res.manifest, "signed", res.signed_, "referrer",
                              res.referrer[0] ? res.referrer : NULL, "referrers", res.referrers_api ? "api" : "tag",
                              "sequence", (json_int_t)res.seq, "blobs_sent", (json_int_t)res.blobs_sent,
                              "blobs_skipped", (json_int_t)res.blobs_skipped, "bytes_sent", (json_int_t)res.bytes_sent);
        char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(j);
    } else {
        char size[32];
        al_cli_human_size(res.bytes_sent, size, sizeof size);
        printf("pushed %s to %s\n  manifest   %s\n  blobs      %zu sent (%s), %zu already there\n", argv[optind],
               argv[optind + 1], res.manifest, res.blobs_sent, size, res.blobs_skipped);
        if (res.signed_)
            printf("  signatures referrer %s (%s%s)\n", res.referrer,
                   res.referrers_api ? "referrers API" : "fallback tag sha256-<hex>",
                   res.kept ? "; the signatures it arrived with" : "");
        else
            printf("  UNSIGNED: pullers must pass --allow-unsigned; push with --sign KEY to sign it\n");
        printf("next: on another node, airlock pull %s\n", argv[optind + 1]);
    }
out:
    for (size_t i = 0; i < n_keys; i++)
        al_trust_key_free(keys[i]);
    al_repo_free(r);
    reg_wipe(&rc);
    return st;
}

int al_cmd_pull(int argc, char **argv)
{
    static const struct option opts[] = {
        REG_LONGOPTS,
        {"as", required_argument, NULL, 'a'},
        {"allow-unsigned", no_argument, NULL, O_UNSIGNED},
        {"allow-expired", no_argument, NULL, O_EXPIRED},
        {"allow-downgrade", no_argument, NULL, O_DOWNGRADE},
        {"allow-dangerous", no_argument, NULL, O_DANGEROUS},
        {"ack-license", required_argument, NULL, O_ACK},
        {"no-activate", no_argument, NULL, O_NOACT},
        {"max-entry-size", required_argument, NULL, O_MAXE},
        {"max-total-size", required_argument, NULL, O_MAXT},
        {NULL, 0, NULL, 0},
    };
    struct reg_cli rc = {.ro = {.plain_http = false}};
    struct al_bundle_opts bo = {.progress = true};
    int c, st = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, "a:h", opts, NULL)) != -1) {
        switch (c) {
        case 'a': bo.as = optarg; break;
        case O_UNSIGNED: bo.allow_unsigned = true; break;
        case O_EXPIRED: bo.allow_expired = true; break;
        case O_DOWNGRADE: bo.allow_downgrade = true; break;
        case O_DANGEROUS: bo.allow_dangerous = true; break;
        case O_ACK: bo.ack_license = optarg; break;
        case O_NOACT: bo.no_activate = true; break;
        case O_MAXE:
            if ((st = al_cli_opt_size("pull", "--max-entry-size", optarg, 1, UINT64_MAX, &bo.max_entry)))
                return st;
            break;
        case O_MAXT:
            if ((st = al_cli_opt_size("pull", "--max-total-size", optarg, 1, UINT64_MAX, &bo.max_total)))
                return st;
            break;
        case 'h':
            printf("usage: airlock pull HOST[:PORT]/REPO[:TAG|@sha256:HEX] [--as NAME:TAG] [options]\n\n"
                   "Pulls a model version from an OCI registry through the checks of 'airlock\n"
                   "ingest': the signature referrer (checksums.txt and its signatures, pushed by\n"
                   "'airlock push --sign') is proven under the trust policy first (trusted keys,\n"
                   "model patterns, k-of-n, revocation, expiry, replay by sequence number); then\n"
                   "each blob streams into the store's temporary area, hashed while written,\n"
                   "exactly the size its descriptor gives (a dropped connection resumes with a\n"
                   "Range request); every file is scanned and the license decided. Nothing is\n"
                   "visible before all of it is proven; a refusal changes nothing and is one\n"
                   "event in the log.\n\n"
                   "Content without an airlock signature is refused unless --allow-unsigned\n"
                   "(recorded): each layer is then a file named by its annotation\n"
                   "(org.cncf.model.filepath, org.opencontainers.image.title; a GGUF layer\n"
                   "without one is model.gguf), its digest proven, under --as NAME:TAG.\n\n"
                   "  --as NAME[:TAG]       the name to store it under (default: the signed one)\n"
                   "  --allow-unsigned      accept content nobody signed (recorded)\n"
                   "  --allow-expired       accept an expired manifest (recorded)\n"
                   "  --allow-downgrade     accept a sequence not above the last (recorded)\n"
                   "  --allow-dangerous     accept a file the scan calls dangerous (recorded)\n"
                   "  --ack-license ID      acknowledge the model's license ID (recorded)\n"
                   "  --no-activate         do not make it the active version\n"
                   "  --max-entry-size SIZE, --max-total-size SIZE   caps (default: free space)\n"
                   REG_HELP
                   "\nexample: airlock pull registry.site:5000/models/demo:1.0 --ca-file site-ca.pem\n");
            return AL_EXIT_OK;
        default:
            if ((st = reg_opt("pull", c, &rc)))
                return st;
        }
    }
    if (argc - optind != 1)
        return al_cli_usage_error("pull", "needs one HOST[:PORT]/REPO[:TAG|@sha256:HEX]");
    if ((st = reg_finish("pull", &rc)))
        return st;
    const char *src = argv[optind];
    bo.progress = !rc.json;
    struct al_repo *r = NULL;
    if ((st = al_cli_open_repo(true, &r))) {
        reg_wipe(&rc);
        return st;
    }
    struct al_err err = AL_ERR_INIT;
    struct al_bundle_report rep;
    struct al_bundle_pulled res;
    enum al_rc e = al_bundle_pull(r, src, &rc.ro, &bo, &res, &rep, &err);
    al_repo_free(r);
    reg_wipe(&rc);
    if (rc.json) {
        al_cli_print_verdict(json_pack("{s:s, s:s, s:b, s:s}", "source", src, "manifest", res.manifest, "signed",
                                       res.signed_, "checks", rep.checks),
                             e, &err, &rep);
    }
    if (e) {
        if (!rc.json)
            printf("verdict   REFUSED: %s\n", err.msg);
        fprintf(stderr, "airlock: nothing was changed; the refusal is recorded in the event log ('airlock log')\n");
        st = al_cli_fail(&err);
    } else if (!rc.json) {
        char signers[512] = "";
        for (size_t i = 0; i < rep.n_signers; i++)
            if (rep.signers[i].good) {
                size_t n = strlen(signers);
                snprintf(signers + n, sizeof signers - n, "%s%s key %.64s ('%.64s')", n ? ", " : "",
                         rep.signers[i].kind, rep.signers[i].id, rep.signers[i].key_name);
            }
        printf("%s %s:%s  %s%s\n  from       %s (%s)\n  signed by  %s\n  checks     %s\n",
               rep.existed ? "already present:" : "pulled", rep.version.model, rep.tag, rep.version.manifest,
               rep.version.active ? "  (active)" : "", src, res.manifest, signers[0] ? signers : "nobody",
               rep.checks);
        if (rep.overrides[0])
            printf("  overrides  %s (recorded)\n", rep.overrides);
        printf("next: airlock show %s:%s\n", rep.version.model, rep.tag);
    }
    al_bundle_report_release(&rep);
    return st;
}
