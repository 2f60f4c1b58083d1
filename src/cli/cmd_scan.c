/* cmd_scan.c: airlock scan FILE...: a verdict per file from the scan
 * module, as text or JSON, and an exit status scripts can branch on. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/version.h"
#include "scan/scan.h"

int al_cmd_scan(int argc, char **argv);

static const char help[] =
    "usage: airlock scan [--json] FILE...\n\n"
    "Looks inside each file for known dangers without running it, and gives a\n"
    "verdict: ok, warn or dangerous, with each finding and where it is.\n"
    "  pickle (.pkl .pt .pth .bin .ckpt)  imports outside a safe list of tensor\n"
    "                                     rebuild functions are dangerous\n"
    "  PyTorch zip checkpoints            every .pkl member, as above\n"
    "  safetensors                        header, offsets, sizes, overlaps\n"
    "  GGUF                               the structure check of 'airlock add'\n"
    "  ELF, PE, Mach-O, #! scripts,       warn, naming the kind\n"
    "  nested archives\n\n"
    "  --json   one JSON object on stdout: the files, their findings, the verdict\n\n"
    "exit status: 0 every file ok; 9 warnings only; 10 something dangerous;\n"
    "3 or 7 a file could not be read (unless something was dangerous); 2 usage.\n";

static void print_text(const struct al_scan_report *r)
{
    printf("%s: %s (%s)\n", r->file, al_scan_verdict_name(r->verdict), r->kind);
    for (size_t i = 0; i < r->n_findings; i++) {
        const struct al_scan_finding *f = &r->findings[i];
        char where[512] = "";
        size_t n = 0;
        if (f->member[0])
            n += (size_t)snprintf(where + n, sizeof where - n, "member '%s', ", f->member);
        if (f->offset != AL_SCAN_NO_OFFSET && n < sizeof where)
            n += (size_t)snprintf(where + n, sizeof where - n, "offset %llu, ", (unsigned long long)f->offset);
        if (f->opcode[0] && n < sizeof where)
            n += (size_t)snprintf(where + n, sizeof where - n, "%s, ", f->opcode);
        if (f->tensor[0] && n < sizeof where)
            n += (size_t)snprintf(where + n, sizeof where - n, "tensor '%s', ", f->tensor);
        if (n >= 2 && n < sizeof where)
            where[n - 2] = '\0'; /* the last ", " */
        printf("  %-9s %s%s%s\n", al_scan_verdict_name(f->severity), where, where[0] ? ": " : "", f->what);
    }
    if (r->n_dropped)
        printf("  ... and %zu more finding%s\n", r->n_dropped, r->n_dropped == 1 ? "" : "s");
}

/* The status of the run: dangerous wins over a file that could not be read,
 * which wins over warnings: a scan that could not vouch is not a warning. */
static int run_status(enum al_scan_verdict worst, int err_status)
{
    if (worst == AL_SCAN_DANGEROUS)
        return AL_EXIT_SCAN_DANGEROUS;
    if (err_status)
        return err_status;
    return worst == AL_SCAN_WARN ? AL_EXIT_SCAN_WARN : AL_EXIT_OK;
}

int al_cmd_scan(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    bool json = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'j') {
            json = true;
        } else if (c == 'h') {
            fputs(help, stdout);
            return AL_EXIT_OK;
        } else {
            return al_cli_usage_error("scan", "unknown option");
        }
    }
    if (optind >= argc)
        return al_cli_usage_error("scan", "name at least one FILE");
    enum al_scan_verdict worst = AL_SCAN_OK;
    int err_status = 0;
    json_t *files = json_array();
    for (int i = optind; i < argc; i++) {
        struct al_scan_report *r = NULL;
        struct al_err err = AL_ERR_INIT;
        if (al_scan_file(argv[i], 0, &r, &err)) {
            int st = al_cli_fail(&err);
            err_status = err_status ? err_status : st;
            if (json) {
                /* A name that is not UTF-8 cannot be a JSON string: say so rather than drop the file. */
                json_t *e = json_pack("{s:s, s:s}", "file", argv[i], "error", err.msg);
                json_array_append_new(files, e ? e : json_pack("{s:s, s:s}", "file", "(not UTF-8)", "error",
                                                               al_rc_name(err.rc)));
            }
            continue;
        }
        if (r->verdict > worst)
            worst = r->verdict;
        if (json)
            json_array_append_new(files, al_scan_report_json(r));
        else
            print_text(r);
        al_scan_report_free(r);
    }
    int st = run_status(worst, err_status);
    if (json) {
        json_t *o = json_pack("{s:s, s:i, s:o, s:s, s:i}", "scanner", "airlock " AIRLOCK_VERSION, "rules",
                              AL_SCAN_RULES_VERSION, "files", files, "verdict",
                              worst != AL_SCAN_DANGEROUS && err_status ? "error" : al_scan_verdict_name(worst),
                              "exit_status", st);
        char *s = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
    } else {
        json_decref(files);
    }
    return st;
}
