/*
 * airlock-scanvalues: runs al_gguf_scan_values on GGUF files and prints the
 * report and its speed, for bench/scan_gguf.sh and by hand. Not installed;
 * `airlock scan` is the command for users.
 *
 *   airlock-scanvalues FILE...
 *
 * Per file: one line "FILE: T tensors, B bytes, F findings, wall W s, cpu C s,
 * X GB/s wall, Y GB/s cpu" (cpu: user + system time of this process, the
 * figure that holds on a loaded machine), then one line per listed finding.
 * Exit 0 when every file is clean, 1 on findings, 2 on an error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include "core/err.h"
#include "gguf/gguf.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: airlock-scanvalues FILE...\n");
        return 2;
    }
    int status = 0;
    static struct al_gguf_value_report rep;
    for (int i = 1; i < argc; i++) {
        struct al_err err = AL_ERR_INIT;
        double w0 = now(), c0 = cpu();
        enum al_rc rc = al_gguf_scan_values_path(argv[i], &rep, &err);
        double w = now() - w0, c = cpu() - c0;
        if (rc != AL_OK) {
            fprintf(stderr, "airlock-scanvalues: %s\n", err.msg);
            status = 2;
            continue;
        }
        printf("%s: %" PRId64 " tensors, %" PRIu64 " bytes, %" PRIu64 " findings, wall %.3f s, "
               "cpu %.3f s, %.2f GB/s wall, %.2f GB/s cpu\n",
               argv[i], rep.tensors_checked, rep.bytes_checked, rep.n_findings, w, c,
               (double)rep.bytes_checked / 1e9 / (w > 0 ? w : 1e-9),
               (double)rep.bytes_checked / 1e9 / (c > 0 ? c : 1e-9));
        for (int k = 0; k < rep.n_listed; k++)
            printf("  %s (%s) at %" PRIu64 ": %s\n", rep.findings[k].tensor, rep.findings[k].type,
                   rep.findings[k].offset, rep.findings[k].what);
        if (rep.n_findings > (uint64_t)rep.n_listed)
            printf("  ... %" PRIu64 " findings in all\n", rep.n_findings);
        if (rep.n_findings > 0 && status == 0)
            status = 1;
    }
    return status;
}
