/* cmd_check.c: fsck and gc. */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_util.h"

int al_cmd_fsck(int argc, char **argv);
int al_cmd_gc(int argc, char **argv);

static void print_report(void *ud, enum al_fsck_kind kind, const char *msg)
{
    static const char *const tag[] = {"ok", "note", "DAMAGED", "repaired"};
    FILE *out = kind == AL_FSCK_DAMAGE ? stdout : stdout;
    fprintf(out, "%-8s %s\n", tag[kind], msg);
}

int al_cmd_fsck(int argc, char **argv)
{
    static const struct option opts[] = {
        {"repair", no_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    bool repair = false;
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
                   "             then re-add or re-ingest the versions named\n");
            return AL_EXIT_OK;
        } else {
            return al_cli_usage_error("fsck", "unknown option");
        }
    }
    struct al_repo *r = NULL;
    int st = al_cli_open_repo(false, &r);
    if (st)
        return st;
    struct al_err err = AL_ERR_INIT;
    struct al_fsck_result res;
    enum al_rc rc = al_repo_fsck(r, repair, true, print_report, NULL, &res, &err);
    al_repo_free(r);
    char size[32];
    al_cli_human_size(res.bytes_hashed, size, sizeof size);
    printf("checked %zu blobs (%s), %zu versions, %zu events: %zu problem%s%s\n", res.blobs_checked, size,
           res.versions_checked, res.events_checked, res.damaged, res.damaged == 1 ? "" : "s",
           res.repaired ? " (some quarantined)" : "");
    if (rc)
        return al_cli_fail(&err);
    return AL_EXIT_OK;
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
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 1000000)
                return al_cli_usage_error("gc", "--keep needs a positive number");
            keep = (int)v;
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
    al_cli_human_size(res.bytes_freed, size, sizeof size);
    printf("%s %zu version%s and %zu blob%s (%s)\n", dry ? "would remove" : "removed", res.versions_removed,
           res.versions_removed == 1 ? "" : "s", res.blobs_removed, res.blobs_removed == 1 ? "" : "s", size);
    return AL_EXIT_OK;
}
