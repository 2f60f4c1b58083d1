/*
 * cmd_trust.c: signing keys (key gen, key show) and the trust policy of the
 * air-gapped side (trust add, ls, rm, revoke).
 */
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_key.h"
#include "cli/cli_util.h"
#include "core/fs.h"
#include "core/limits.h"
#include "trust/trust.h"

int al_cmd_key(int argc, char **argv);
int al_cmd_trust(int argc, char **argv);

/* Reads a password: AIRLOCK_KEY_PASSWORD, else a prompt on the terminal. */
char *al_cli_password(const char *prompt, bool confirm)
{
    const char *env = getenv("AIRLOCK_KEY_PASSWORD");
    if (env)
        return strdup(env);
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *out = NULL;
    for (int round = 0; round < (confirm ? 2 : 1); round++) {
        struct termios old, t;
        bool tty = tcgetattr(fd, &old) == 0;
        t = old;
        t.c_lflag &= ~(tcflag_t)ECHO;
        if (tty)
            tcsetattr(fd, TCSAFLUSH, &t);
        dprintf(fd, "%s", round ? "Password (again): " : prompt);
        char buf[AL_LIMIT_MINISIGN_PASSWORD + 2];
        size_t n = 0;
        char c;
        while (n + 1 < sizeof buf && read(fd, &c, 1) == 1 && c != '\n')
            buf[n++] = c;
        buf[n] = '\0';
        if (tty)
            tcsetattr(fd, TCSAFLUSH, &old);
        dprintf(fd, "\n");
        if (round == 0) {
            out = strdup(buf);
        } else if (out && strcmp(out, buf) != 0) {
            explicit_bzero(out, strlen(out));
            free(out);
            out = NULL;
            dprintf(fd, "passwords differ\n");
        }
        explicit_bzero(buf, sizeof buf);
    }
    close(fd);
    return out;
}

/* The CLI's answer when a secret key asks for its password. */
static enum al_rc ask_password(void *ud, const char *path, char **out, struct al_err *err)
{
    (void)ud;
    char prompt[AL_LIMIT_PATH + 32];
    snprintf(prompt, sizeof prompt, "Password for %s: ", path);
    if ((*out = al_cli_password(prompt, false)) == NULL)
        return al_err_set(err, AL_ERR_USAGE, "secret key '%s' is encrypted: set AIRLOCK_KEY_PASSWORD or run on a "
                          "terminal", path);
    /* scrypt at minisign's cost takes seconds: say so, or it looks hung. */
    fprintf(stderr, "airlock: unlocking '%s': deriving the key from the password (scrypt, a few seconds)...\n", path);
    return AL_OK;
}

enum al_rc al_cli_load_secret_key(const char *path, struct al_mkey_sec **out, struct al_err *err)
{
    return al_trust_key_load(path, ask_password, NULL, out, err);
}

static int key_gen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"no-password", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *prefix = "airlock";
    bool nopw = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "o:nh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': prefix = optarg; break;
        case 'n': nopw = true; break;
        case 'h':
            printf("usage: airlock key gen [-o PREFIX] [--no-password]\n\n"
                   "Makes an Ed25519 signing key pair in minisign's formats: PREFIX.pub (give it to\n"
                   "the air-gapped side: 'airlock trust add NAME --minisign PREFIX.pub') and\n"
                   "PREFIX.key (keep it on the build host; 'airlock pack ... --sign PREFIX.key').\n"
                   "The secret key is encrypted with a password (scrypt, minisign's cost) read from\n"
                   "AIRLOCK_KEY_PASSWORD or asked for; --no-password stores it unencrypted.\n"
                   "PREFIX defaults to 'airlock'. Existing files are never overwritten.\n");
            return AL_EXIT_OK;
        default: return al_cli_usage_error("key gen", "unknown option");
        }
    }
    if (optind != argc)
        return al_cli_usage_error("key gen", "takes no arguments besides options");
    struct al_err err = AL_ERR_INIT;
    char pub_path[AL_LIMIT_PATH], sec_path[AL_LIMIT_PATH];
    if (al_path_fmt(pub_path, sizeof pub_path, &err, "%s.pub", prefix) ||
        al_path_fmt(sec_path, sizeof sec_path, &err, "%s.key", prefix))
        return al_cli_fail(&err);
    if (al_fs_exists(pub_path) || al_fs_exists(sec_path)) {
        al_err_set(&err, AL_ERR_EXISTS, "'%s' or '%s' exists already; choose another -o PREFIX", pub_path, sec_path);
        return al_cli_fail(&err);
    }
    char *pw = NULL;
    if (!nopw && (pw = al_cli_password("Password for the new secret key: ", true)) == NULL) {
        al_err_set(&err, AL_ERR_USAGE, "no password: set AIRLOCK_KEY_PASSWORD, run on a terminal, or use "
                   "--no-password");
        return al_cli_fail(&err);
    }
    char hex[AL_MINISIGN_KEYID_HEX];
    if (pw)
        fprintf(stderr, "airlock: deriving the encryption key from the password (scrypt, a few seconds)...\n");
    enum al_rc rc = al_trust_keygen(pub_path, sec_path, pw, hex, &err);
    if (pw) {
        explicit_bzero(pw, strlen(pw));
        free(pw);
    }
    if (rc)
        return al_cli_fail(&err);
    printf("key %s\n  public  %s\n  secret  %s%s\n\nnext: copy %s to the air-gapped side and run\n"
           "  airlock trust add NAME --minisign %s\n",
           hex, pub_path, sec_path, nopw ? " (not encrypted)" : "", pub_path, pub_path);
    return AL_EXIT_OK;
}

static int key_show(int argc, char **argv)
{
    if (al_cli_wants_help(argc, argv)) {
        printf("usage: airlock key show KEY.pub|KEY.key\n\nPrints a key's id and its public key line (what\n"
               "'minisign -P' takes). A secret key may ask for its password.\n");
        return AL_EXIT_OK;
    }
    if (argc != 2)
        return al_cli_usage_error("key show", "needs one key file");
    struct al_err err = AL_ERR_INIT;
    char hex[AL_MINISIGN_KEYID_HEX], *pub = NULL;
    if (al_trust_key_public(argv[1], ask_password, NULL, hex, &pub, &err))
        return al_cli_fail(&err);
    printf("key id  %s\n%s", hex, pub);
    free(pub);
    return AL_EXIT_OK;
}

int al_cmd_key(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "gen") == 0)
        return key_gen(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "show") == 0)
        return key_show(argc - 1, argv + 1);
    if (al_cli_wants_help(argc, argv)) {
        printf("usage: airlock key gen [-o PREFIX] [--no-password]\n       airlock key show KEY\n\n"
               "Signing keys for bundles, in minisign's formats (minisign -V verifies them).\n");
        return AL_EXIT_OK;
    }
    return al_cli_usage_error("key", "needs 'gen' or 'show'");
}

/* ---- trust ---- */

static int trust_add(int argc, char **argv)
{
    static const struct option opts[] = {
        {"minisign", required_argument, NULL, 'm'}, {"gpg", required_argument, NULL, 'g'},
        {"models", required_argument, NULL, 'p'},   {"threshold", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *mini = NULL, *gpg = NULL, *models = NULL;
    int threshold = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "m:g:p:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': mini = optarg; break;
        case 'g': gpg = optarg; break;
        case 'p': models = optarg; break;
        case 't': {
            int st = al_cli_opt_i("trust add", "--threshold", optarg, 1, INT_MAX, &threshold);
            if (st)
                return st;
            break;
        }
        case 'h':
            printf("usage: airlock trust add NAME --minisign KEY.pub | --gpg KEY.asc [--models PATTERN]\n"
                   "                         [--threshold K]\n\n"
                   "Trusts a key to sign bundles: a minisign public key, or an OpenPGP public key\n"
                   "(imported into the store's own keyring, $AIRLOCK_HOME/trust/gnupg).\n"
                   "  --models PATTERN  model names it may sign (shell pattern, default '*')\n"
                   "  --threshold K     models matching PATTERN need K signatures by trusted keys\n"
                   "The change is recorded in the event log.\n\n"
                   "example: airlock trust add build-host --minisign build.pub --models 'llama-*'\n");
            return AL_EXIT_OK;
        default: return al_cli_usage_error("trust add", "unknown option");
        }
    }
    if (argc - optind != 1 || (!mini == !gpg))
        return al_cli_usage_error("trust add", "needs NAME and one of --minisign KEY.pub or --gpg KEY.asc");
    struct al_err err = AL_ERR_INIT;
    char *data = NULL;
    size_t len = 0;
    struct al_repo *r = NULL;
    struct al_trust_key k;
    int st = AL_EXIT_OK;
    if (al_fs_read_file(mini ? mini : gpg, AL_LIMIT_PGP_KEY, &data, &len, &err)) {
        st = al_cli_fail(&err);
        goto out;
    }
    if ((st = al_cli_open_repo(true, &r)))
        goto out;
    if (al_trust_add(r, argv[optind], mini ? AL_TRUST_MINISIGN : AL_TRUST_GPG, data, len, models, threshold, &k,
                     &err)) {
        st = al_cli_fail(&err);
        goto out;
    }
    printf("trusted %s key %s as '%s' for models '%s'", al_trust_kind_name(k.kind), k.id, k.name, k.models);
    if (k.threshold > 1)
        printf(", %d signatures needed", k.threshold);
    printf("\nnext: airlock verify BUNDLE, then airlock ingest BUNDLE\n");
out:
    free(data);
    al_repo_free(r);
    return st;
}

static int trust_ls(int argc, char **argv)
{
    bool json = argc > 1 && strcmp(argv[1], "--json") == 0;
    if (al_cli_wants_help(argc, argv)) {
        printf("usage: airlock trust ls [--json]\n\nLists trusted keys: name, kind, id or fingerprint, the\n"
               "models each may sign, thresholds, revocations.\n");
        return AL_EXIT_OK;
    }
    struct al_repo *r = NULL;
    int st = al_cli_open_repo(false, &r);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    struct al_trust t;
    enum al_rc rc = al_trust_load(r, &t, &err);
    al_repo_free(r);
    if (rc)
        return al_cli_fail(&err);
    if (json) {
        json_t *a = json_array();
        for (size_t i = 0; i < t.n; i++)
            json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:i, s:b}", "name", t.keys[i].name, "kind",
                                               al_trust_kind_name(t.keys[i].kind), "id", t.keys[i].id, "models",
                                               t.keys[i].models, "threshold", t.keys[i].threshold, "revoked",
                                               t.keys[i].revoked));
        char *s = json_dumps(a, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(a);
    } else if (t.n == 0) {
        printf("no trusted keys; add one with 'airlock trust add NAME --minisign KEY.pub'\n");
    } else {
        printf("%-16s %-9s %-42s %-16s %s\n", "NAME", "KIND", "ID", "MODELS", "STATE");
        for (size_t i = 0; i < t.n; i++) {
            const struct al_trust_key *k = &t.keys[i];
            char state[64];
            if (k->revoked)
                snprintf(state, sizeof state, "revoked %.10s", k->revoked_at);
            else
                snprintf(state, sizeof state, "trusted%s", k->threshold > 1 ? ", threshold" : "");
            printf("%-16s %-9s %-42s %-16s %s", k->name, al_trust_kind_name(k->kind), k->id, k->models, state);
            if (k->threshold > 1)
                printf(" %d", k->threshold);
            printf("\n");
        }
    }
    al_trust_release(&t);
    return AL_EXIT_OK;
}

static int trust_change(int argc, char **argv, bool revoke)
{
    const char *cmd = revoke ? "trust revoke" : "trust rm";
    if (al_cli_wants_help(argc, argv)) {
        if (revoke)
            printf("usage: airlock trust revoke NAME\n\nRevokes a trusted key: every bundle it signed, old or new,\n"
                   "is refused from now on. The key stays listed as revoked. Recorded as an event.\n");
        else
            printf("usage: airlock trust rm NAME\n\nForgets a trusted key (recorded as an event). To refuse what\n"
                   "a compromised key signed, use 'airlock trust revoke' instead.\n");
        return AL_EXIT_OK;
    }
    if (argc != 2)
        return al_cli_usage_error(cmd, "needs the key's NAME");
    struct al_repo *r = NULL;
    int st = al_cli_open_repo(false, &r);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = revoke ? al_trust_revoke(r, argv[1], &err) : al_trust_remove(r, argv[1], &err);
    al_repo_free(r);
    if (rc)
        return al_cli_fail(&err);
    printf("%s key '%s'\n", revoke ? "revoked" : "removed", argv[1]);
    return AL_EXIT_OK;
}

int al_cmd_trust(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "add") == 0)
        return trust_add(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "ls") == 0)
        return trust_ls(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "rm") == 0)
        return trust_change(argc - 1, argv + 1, false);
    if (argc >= 2 && strcmp(argv[1], "revoke") == 0)
        return trust_change(argc - 1, argv + 1, true);
    if (al_cli_wants_help(argc, argv)) {
        printf("usage: airlock trust add|ls|rm|revoke ...\n\n"
               "The keys this store accepts bundles from; each subcommand takes --help.\n");
        return AL_EXIT_OK;
    }
    return al_cli_usage_error("trust", "needs add, ls, rm or revoke");
}
