/* cmd_check.c: fsck and gc. */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_util.h"
#include "core/limits.h"

int al_cmd_fsck(int argc, char **argv);
int al_cmd_gc(int argc, char **argv);

static void print_report(void *ud, enum al_fsck_kind kind, const char *msg)
{
    static const char *const tag[] = {"ok", "note", "DAMAGED", "repaired"};
    printf("%-8s %s\n", tag[kind], msg);
}

/* fsck --repair on a lost index: rebuild it from the OCI layout, say what
 * came back and what did not. */
static enum al_rc rebuild(const char *home, struct al_err *err)
{
    struct al_rebuild_result rr;
    enum al_rc rc = al_repo_rebuild_index(home, print_report, NULL, &rr, err);
    if (rc)
        return rc;
    char msg[AL_LIMIT_PATH + 512];
    snprintf(msg, sizeof msg,
             "index rebuilt from index.json and the manifests: %zu model%s, %zu version%s, %zu tag%s, %zu active "
             "pointer%s%s%s",
             rr.models, rr.models == 1 ? "" : "s", rr.versions, rr.versions == 1 ? "" : "s", rr.tags,
             rr.tags == 1 ? "" : "s", rr.active, rr.active == 1 ? "" : "s", rr.previous[0] ? "; the old index is " : "",
             rr.previous);
    print_report(NULL, AL_FSCK_REPAIRED, msg);
    if (rr.not_recovered)
        printf("%-8s %zu entr%s of index.json could not be recovered (above)\n", "DAMAGED", rr.not_recovered,
               rr.not_recovered == 1 ? "y" : "ies");
    print_report(NULL, AL_FSCK_INFO,
                 "lost with the old index: its event log (an 'index-rebuilt' event starts the new one), API keys and "
                 "creation times; the server now requires an API key: create keys with 'airlock apikey create'");
    return AL_OK;
}

int al_cmd_fsck(int argc, char **argv)
{
    static const struct option opts[] = {
        {"repair", no_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    bool repair = false, rebuilt = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "rh", opts, NULL)) != -1) {
        if (c == 'r') {
            repair = true;
        } else if (c == 'h') {
            printf("usage: airlock fsck [--repair]\n\n"
                   "Re-hashes every blob the index references, checks every manifest against\n"
                   "the index, and verifies the hash chain of the event log. Names what is\n"
                   "damaged and which versions use it; exits 5 when anything is damaged.\n\n"
                   "  --repair   move damaged blobs to quarantine/ (recorded in the event log);\n"
                   "             then re-add or re-ingest the versions named. A lost index\n"
                   "             (airlock.db missing or emptied) is rebuilt from index.json and\n"
                   "             the manifests; its API keys and event log are gone for good\n");
            return AL_EXIT_OK;
        } else {
            return al_cli_usage_error("fsck", "unknown option");
        }
    }
    char home[AL_LIMIT_PATH];
    al_cli_home(home, sizeof home);
    struct al_repo *r = NULL;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = repair ? al_repo_open(home, false, &r, &err) : al_repo_open_read(home, &r, &err);
    if (rc == AL_ERR_CORRUPT && al_repo_index_lost(home)) {
        print_report(NULL, AL_FSCK_DAMAGE, err.msg);
        if (!repair) {
            printf("the index is lost: 1 problem; nothing else was checked\n");
            return al_cli_exit_code(AL_ERR_CORRUPT);
        }
        al_err_clear(&err);
        if ((rc = rebuild(home, &err)) || (rc = al_repo_open(home, false, &r, &err)))
            return al_cli_fail(&err);
        rebuilt = true;
    }
    if (rc)
        return al_cli_fail(&err);
    if (al_repo_read_only(r))
        fprintf(stderr, "airlock: note: the store at '%s' cannot be written here; it is opened read-only\n", home);
    struct al_fsck_result res;
    rc = al_repo_fsck(r, repair, true, print_report, NULL, &res, &err);
    al_repo_free(r);
    char size[32];
    al_cli_human_size((int64_t)res.bytes_hashed, size, sizeof size);
    printf("checked %zu blob%s (%s), %zu version%s, %zu event%s: %zu problem%s%s\n", res.blobs_checked,
           res.blobs_checked == 1 ? "" : "s", size, res.versions_checked, res.versions_checked == 1 ? "" : "s",
           res.events_checked, res.events_checked == 1 ? "" : "s", res.damaged + rebuilt,
           res.damaged + rebuilt == 1 ? "" : "s",
           rebuilt ? " (the index was rebuilt)" : res.repaired ? " (some quarantined)" : "");
    if (rc)
        return al_cli_fail(&err);
    return rebuilt ? al_cli_exit_code(AL_ERR_CORRUPT) : AL_EXIT_OK;
}

int al_cmd_gc(int argc, char **argv)
{
    static const struct option opts[] = {{"keep", required_argument, NULL, 'k'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int keep = 0, c;
    bool dry = false;
    optind = 0;
    while ((c = getopt_long(argc, argv, "k:nh", opts, NULL)) != -1) {
        if (c == 'k') {
            int st = al_cli_opt_i("gc", "--keep", optarg, 1, 1000000, &keep);
            if (st)
                return st;
        } else if (c == 'n') {
            dry = true;
        } else if (c == 'h') {
            printf("usage: airlock gc [--keep N] [--dry-run]\n\n"
                   "Removes blobs that no version references. With --keep N, first removes all\n"
                   "but the newest N versions of each model (never the active one).\n"
                   "  --dry-run   say what would go, change nothing\n");
            return AL_EXIT_OK;
        } else {
            return al_cli_usage_error("gc", "unknown option");
        }
    }
    struct al_repo *r = NULL;
    int st = al_cli_open_repo(false, &r);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    struct al_gc_result res;
    enum al_rc rc = al_repo_gc(r, keep, dry, print_report, NULL, &res, &err);
    al_repo_free(r);
    if (rc)
        return al_cli_fail(&err);
    char size[32];
    al_cli_human_size((int64_t)res.bytes_freed, size, sizeof size);
    printf("%s %zu version%s and %zu blob%s (%s)\n", dry ? "would remove" : "removed", res.versions_removed,
           res.versions_removed == 1 ? "" : "s", res.blobs_removed, res.blobs_removed == 1 ? "" : "s", size);
    return AL_EXIT_OK;
}
